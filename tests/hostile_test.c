/* SPDX-License-Identifier: MIT */
/*
 * hostile_test.c - memory spaces in a hostile process, through vmap.h alone:
 * the findings of issue 11, one test function each.
 *
 *   1. A failed vmap_vmap/vmap_map_ram must not tear a hole in the
 *      reservation (MAP_FIXED unmaps the old pages before the file's mmap
 *      handler can refuse): every kind of fd that cannot be mapped, and the
 *      ones that can; then the whole space probed page by page, a thousand
 *      pages of "another component" kept out of it, and a thousand
 *      alloc/free/purge cycles that must end all-free every time; and the
 *      same raced by a thread that maps pages all the while.
 *   2. vmap_unmap_aliases must leave no freed vmap_map_ram piece showing its
 *      file.
 *   3. Locked memory (mlock, mlockall with MCL_ONFAULT) is released like any
 *      other: no refusals, a bounded lazy list, no ENOSPC, RSS falls.
 *   4. An area protected with vmap_vprotect comes back zeroed and writable
 *      to its next owner in every kind of space; vmap_vprotect's errors; a
 *      caller's own mprotect is caught by vmap_check.
 *   5. fork() while other threads are inside vmap: the child can use the
 *      space (no lock left held), and the two copies are independent.
 *
 * What may crash or hang with a broken library runs in a forked child
 * (run_child), and every access to memory that may be a hole goes through a
 * SIGSEGV/SIGBUS guard (probe), so a failure is reported check by check
 * instead of killing the test.
 */
#include <errno.h>
#include <linux/capability.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "vmap.h"
#include "test.h"

#ifndef F_SEAL_FUTURE_WRITE
#define F_SEAL_FUTURE_WRITE 0x0010
#endif
#ifndef MCL_ONFAULT
#define MCL_ONFAULT 4
#endif

#define PG 4096u
#define MIB (1ull << 20)
#define HUGE_PAGE (2 * MIB)
#define SENTINEL 0x5e471e1005e471e1ull /* another component's bytes */

static uint64_t seed;

static vmap_space *mspace(uint64_t length, uint64_t lazy_max, unsigned flags)
{
	struct vmap_config c;
	vmap_space *s = NULL;

	vmap_config_init(&c);
	c.flags = VMAP_SPACE_MEMORY | flags;
	c.length = length;
	c.lazy_max_pages = lazy_max;
	REQUIRE(vmap_space_create(&c, &s) == 0);
	return s;
}

static uint64_t quarantined(const struct vmap_stats *st)
{
	return st->quarantined_pages;
}

static uint64_t restores(const struct vmap_stats *st)
{
	return st->protect_restores;
}

/*
 * vmap_check, and every page of the space in exactly one state.  The line
 * is the caller's: this runs after nearly every step.
 */
#define CHECK_SPACE(s) check_space((s), __LINE__)
static uint64_t stats_sum(const struct vmap_stats *st)
{
	return st->busy_pages + st->lazy_pages + st->free_pages +
	       st->pool_pages + quarantined(st);
}

static void check_space(vmap_space *s, int line)
{
	struct vmap_stats st = test_stats(s);
	int err = vmap_check(s);
	uint64_t sum = stats_sum(&st);

	/* vmap_stats is exact only when no other call runs, and a purge
	 * thread may be moving areas (lazy to pool or tree) meanwhile: look
	 * again a few times before calling a difference wrong.  vmap_check,
	 * which holds every lock, is the exact oracle. */
	for (int i = 0; i < 100 && sum != st.total_pages; i++) {
		nanosleep(&(struct timespec){ 0, 1000000 }, NULL);
		st = test_stats(s);
		sum = stats_sum(&st);
	}
	test_checks += 2;
	if (err) {
		test_failures++;
		fprintf(stderr, "%s:%d: vmap_check: %d (%s)\n", __FILE__, line,
			err, vmap_strerror(err));
	}
	if (sum != st.total_pages) {
		test_failures++;
		fprintf(stderr,
			"%s:%d: busy %" PRIu64 " + lazy %" PRIu64 " + free %"
			PRIu64 " + pool %" PRIu64 " + quarantined %" PRIu64
			" != total %" PRIu64 " pages\n",
			__FILE__, line, st.busy_pages, st.lazy_pages,
			st.free_pages, st.pool_pages, quarantined(&st),
			st.total_pages);
	}
}

/* After a sync purge with nothing live: the whole space free again. */
#define CHECK_ALL_FREE(s) check_all_free((s), __LINE__)
static bool is_all_free(const struct vmap_stats *st)
{
	return st->free_pages == st->total_pages && !st->lazy_pages &&
	       !st->pool_pages && !quarantined(st) && !st->busy_pages;
}

static void check_all_free(vmap_space *s, int line)
{
	struct vmap_stats st = test_stats(s);

	test_checks++;
	if (!is_all_free(&st)) {
		test_failures++;
		fprintf(stderr,
			"%s:%d: not all free: free %" PRIu64 " of %" PRIu64
			", busy %" PRIu64 ", lazy %" PRIu64 ", pool %" PRIu64
			", quarantined %" PRIu64 ", release_errors %" PRIu64
			"\n",
			__FILE__, line, st.free_pages, st.total_pages,
			st.busy_pages, st.lazy_pages, st.pool_pages,
			quarantined(&st), st.release_errors);
	}
}

/* ---- touching memory that may be a hole ---- */

/* Per thread: a fault is delivered to the thread that faulted. */
static _Thread_local sigjmp_buf guard_env;
static _Thread_local volatile sig_atomic_t guard_armed;
static struct sigaction old_segv, old_bus;

static void on_fault(int sig)
{
	if (guard_armed) {
		guard_armed = 0;
		siglongjmp(guard_env, 1);
	}
	/* Not a probe: the previous handler (a sanitizer's, or the default)
	 * gets the fault when the access runs again. */
	sigaction(sig, sig == SIGSEGV ? &old_segv : &old_bus, NULL);
}

static void install_guard(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_fault;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_NODEFER;
	REQUIRE(sigaction(SIGSEGV, &sa, &old_segv) == 0);
	REQUIRE(sigaction(SIGBUS, &sa, &old_bus) == 0);
}

enum {
	P_READ = 1,   /* read the page's first word */
	P_ZERO = 2,   /* every word must be zero */
	P_VERIFY = 4, /* every word must be the pattern */
	P_FILL = 8,   /* write the pattern */
	P_WRITE = 16, /* write the first word back */
	P_OTHER = 32, /* another component's page: the sentinel throughout */
	P_MARK = 64,  /* write the sentinel throughout */
};

struct probe {
	size_t faults;	 /* pages that faulted */
	size_t bad;	 /* pages not zero (P_ZERO) or not the pattern */
	size_t sentinel; /* pages holding another component's bytes */
	uintptr_t first; /* the first page that faulted */
	uintptr_t first_bad;
};

/*
 * Raw pages of our own mappings: nothing there for a sanitizer to check,
 * and instrumenting every word made probing whole spaces many times slower.
 */
__attribute__((no_sanitize("address", "thread"))) static void
probe_page(uint64_t *w, unsigned how, uint64_t pat, struct probe *r)
{
	volatile uint64_t *v = w;

	if (how & P_READ)
		(void)v[0];
	if (how & (P_ZERO | P_VERIFY | P_OTHER)) {
		bool zero = true, match = true, other = true;

		for (size_t i = 0; i < PG / 8; i++) {
			zero &= w[i] == 0;
			match &= w[i] == (pat ^ (uint64_t)(uintptr_t)&w[i]);
			other &= w[i] == SENTINEL;
		}
		if (((how & P_ZERO) && !zero) ||
		    ((how & P_VERIFY) && !match) || ((how & P_OTHER) && !other))
			if (!r->bad++)
				r->first_bad = (uintptr_t)w;
		if (!(how & P_OTHER) && w[0] == SENTINEL)
			r->sentinel++;
	}
	if (how & P_FILL)
		for (size_t i = 0; i < PG / 8; i++)
			v[i] = pat ^ (uint64_t)(uintptr_t)&w[i];
	if (how & P_MARK)
		for (size_t i = 0; i < PG / 8; i++)
			v[i] = SENTINEL;
	if (how & P_WRITE)
		v[0] = v[0];
}

/* Do `how` to every page of [p, p + len), counting faults instead of dying. */
static void probe(void *p, size_t len, unsigned how, uint64_t pat,
		  struct probe *r)
{
	unsigned char *b = p;
	volatile size_t off;

	for (off = 0; off < len; off += PG) {
		if (sigsetjmp(guard_env, 1)) {
			if (!r->faults++)
				r->first = (uintptr_t)(b + off);
			continue;
		}
		guard_armed = 1;
		atomic_signal_fence(memory_order_seq_cst);
		probe_page((uint64_t *)(void *)(b + off), how, pat, r);
		atomic_signal_fence(memory_order_seq_cst);
		guard_armed = 0;
	}
}

#define CHECK_PROBE(what, r) check_probe((what), &(r), __LINE__)
static void check_probe(const char *what, const struct probe *r, int line)
{
	test_checks += 3;
	if (r->faults) {
		test_failures++;
		fprintf(stderr, "%s:%d: %s: %zu pages fault (first %#lx)\n",
			__FILE__, line, what, r->faults,
			(unsigned long)r->first);
	}
	if (r->bad) {
		test_failures++;
		fprintf(stderr,
			"%s:%d: %s: %zu pages hold the wrong bytes (first "
			"%#lx)\n",
			__FILE__, line, what, r->bad,
			(unsigned long)r->first_bad);
	}
	if (r->sentinel) {
		test_failures++;
		fprintf(stderr,
			"%s:%d: %s: %zu pages are another component's "
			"mapping\n",
			__FILE__, line, what, r->sentinel);
	}
}

/*
 * vmap_vzalloc under the guard: a library that hands out a hole, or a warm
 * area it cannot write, faults inside its own memset.  That is reported
 * (lib_faults) and the area is lost.
 */
static size_t lib_faults;

static void *guarded_vzalloc(vmap_space *s, size_t size)
{
	void *volatile p = NULL;

	if (sigsetjmp(guard_env, 1)) {
		lib_faults++;
		errno = EFAULT;
		return NULL;
	}
	guard_armed = 1;
	atomic_signal_fence(memory_order_seq_cst);
	p = vmap_vzalloc(s, size);
	atomic_signal_fence(memory_order_seq_cst);
	guard_armed = 0;
	return p;
}

/* ---- children ---- */

/*
 * Run fn(arg) in a forked child; its checks count here.  A child killed by
 * a signal is a failed check -- SIGALRM (alarm_s, 0 for none) is a hang.
 * Returns the wait status.
 */
static int run_child(const char *what, void (*fn)(void *), void *arg,
		     unsigned alarm_s)
{
	int pfd[2], status, counts[2] = { 0, 0 };
	ssize_t got = 0;
	pid_t pid;

	REQUIRE(pipe(pfd) == 0);
	fflush(NULL);
	pid = fork();
	REQUIRE(pid >= 0);
	if (pid == 0) {
		close(pfd[0]);
		test_checks = test_failures = 0;
		if (alarm_s)
			alarm(alarm_s);
		fn(arg);
		counts[0] = test_checks;
		counts[1] = test_failures;
		if (write(pfd[1], counts, sizeof(counts)) != sizeof(counts))
			_exit(2);
		fflush(NULL);
		_exit(0);
	}
	close(pfd[1]);
	while (got < (ssize_t)sizeof(counts)) {
		ssize_t n = read(pfd[0], (char *)counts + got,
				 sizeof(counts) - (size_t)got);

		if (n <= 0)
			break;
		got += n;
	}
	close(pfd[0]);
	REQUIRE(waitpid(pid, &status, 0) == pid);
	test_checks += counts[0] + 1;
	test_failures += counts[1];
	if (counts[1])
		fprintf(stderr, "%s: child %s: %d of %d checks failed\n",
			__FILE__, what, counts[1], counts[0]);
	if (WIFSIGNALED(status)) {
		test_failures++;
		fprintf(stderr, "%s: child %s: killed by signal %d (%s)%s\n",
			__FILE__, what, WTERMSIG(status),
			strsignal(WTERMSIG(status)),
			WTERMSIG(status) == SIGALRM ? ": hung" : "");
	} else if (WEXITSTATUS(status)) {
		test_failures++;
		fprintf(stderr, "%s: child %s: exit status %d\n", __FILE__,
			what, WEXITSTATUS(status));
	}
	return status;
}

/* Pieces of one vmap block need one CPU: stay on the current one. */
static void pin_cpu(void)
{
	int cpu = sched_getcpu();
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu < 0 ? 0 : cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set))
		perror("hostile_test: sched_setaffinity");
}

/* Does /proc/self/maps show a file (any inode) mapped at addr? */
static bool file_mapped(const void *addr)
{
	FILE *f = fopen("/proc/self/maps", "r");
	char line[512];
	bool found = false;

	REQUIRE(f);
	while (fgets(line, sizeof(line), f)) {
		unsigned long lo, hi, off, inode;
		unsigned maj, min;
		char perms[8];

		if (sscanf(line, "%lx-%lx %7s %lx %x:%x %lu", &lo, &hi, perms,
			   &off, &maj, &min, &inode) == 7 &&
		    lo <= (unsigned long)addr && (unsigned long)addr < hi)
			found = inode != 0;
	}
	fclose(f);
	return found;
}

static uint64_t align_up(uint64_t x, uint64_t a)
{
	return (x + a - 1) & ~(a - 1);
}

/* ==== 1. a failed vmap_vmap or vmap_map_ram leaves no hole ==== */

#define SPACE (64 * MIB)
#define TRY_PAGES 16 /* pages the fd is asked for */
#define NB_PAGES 16  /* the live neighbour, holding data */
#define FOREIGN 1000
#define CYCLES 1000
#define FILE_PAGES 16

/* A file of FILE_PAGES pages, page i full of 'A' + i; unlinked at once. */
static int open_file(int flags)
{
	char path[] = "/tmp/vmap-hostile-XXXXXX", page[PG];
	int fd = mkstemp(path), ret;

	if (fd < 0)
		return -1;
	for (int i = 0; i < FILE_PAGES; i++) {
		memset(page, 'A' + i, PG);
		REQUIRE(pwrite(fd, page, PG, (off_t)i * PG) == PG);
	}
	ret = flags == O_RDWR ? fd : open(path, flags | O_CLOEXEC);
	unlink(path);
	if (ret != fd)
		close(fd);
	return ret;
}

static int open_file_ro(bool rw)
{
	(void)rw;
	return open_file(O_RDONLY);
}

static int open_file_rw(bool rw)
{
	(void)rw;
	return open_file(O_RDWR);
}

static int open_memfd(bool rw)
{
	char page[PG];
	int fd;

	(void)rw;
	if (vmap_memfd_create("hostile", FILE_PAGES, &fd))
		return -1;
	for (int i = 0; i < FILE_PAGES; i++) {
		memset(page, 'A' + i, PG);
		REQUIRE(pwrite(fd, page, PG, (off_t)i * PG) == PG);
	}
	return fd;
}

static int open_socket(bool rw)
{
	int sv[2];

	(void)rw;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
		return -1;
	close(sv[1]);
	return sv[0];
}

static int open_pipe(bool rw)
{
	int p[2];

	(void)rw;
	if (pipe(p))
		return -1;
	close(p[1]);
	return p[0];
}

static int open_dir(bool rw)
{
	(void)rw;
	return open("/tmp", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

/* Open for writing where we may (root), so the mmap gets to kernfs's
 * handler -- which refuses after MAP_FIXED has unmapped the range. */
static int open_sysfs(bool rw)
{
	const char *path = "/sys/kernel/mm/transparent_hugepage/enabled";
	int fd = rw ? open(path, O_RDWR | O_CLOEXEC) : -1;

	return fd >= 0 ? fd : open(path, O_RDONLY | O_CLOEXEC);
}

static int open_procfs(bool rw)
{
	(void)rw;
	return open("/proc/self/status", O_RDONLY | O_CLOEXEC);
}

static int open_hugetlb(bool rw)
{
	int fd = memfd_create("hostile-huge", MFD_HUGETLB | MFD_CLOEXEC);

	(void)rw;
	if (fd >= 0) {
		/* With no huge pages at all this fails, and so does the
		 * mmap: either way it is refused. */
		int ret = ftruncate(fd, (off_t)HUGE_PAGE);

		(void)ret;
	}
	return fd;
}

static int open_sealed(unsigned seal)
{
	int fd = memfd_create("hostile-sealed",
			      MFD_ALLOW_SEALING | MFD_CLOEXEC);

	if (fd < 0)
		return -1;
	if (ftruncate(fd, (off_t)FILE_PAGES * PG) ||
	    fcntl(fd, F_ADD_SEALS, seal)) {
		close(fd);
		return -1;
	}
	return fd;
}

static int open_sealed_write(bool rw)
{
	(void)rw;
	return open_sealed(F_SEAL_WRITE);
}

static int open_sealed_future(bool rw)
{
	(void)rw;
	return open_sealed(F_SEAL_FUTURE_WRITE);
}

/*
 * A kind of fd.  err/alt: the errno the header documents for vmap_vmap with
 * prot (0: it maps); ram_err/ram_alt: the same for vmap_map_ram, which maps
 * read-write (so a read-only fd is EACCES), tried for the kinds with `ram`.
 * skew: pages past a 2 MiB boundary to try at (hugetlbfs takes only aligned
 * mappings, and rounds an aligned one up to a whole huge page).
 */
struct kind {
	const char *name;
	int (*open)(bool rw);
	int prot;
	int err, alt;
	bool ram;
	int ram_err, ram_alt;
	unsigned skew;
};

#define RW (PROT_READ | PROT_WRITE)
static const struct kind kinds[] = {
	{ .name = "AF_UNIX socket", .open = open_socket, .prot = PROT_READ,
	  .err = ENODEV, .ram = true, .ram_err = ENODEV },
	{ .name = "pipe", .open = open_pipe, .prot = PROT_READ,
	  .err = ENODEV },
	{ .name = "directory", .open = open_dir, .prot = PROT_READ,
	  .err = ENODEV },
	{ .name = "sysfs attribute", .open = open_sysfs, .prot = PROT_READ,
	  .err = ENODEV, .ram = true, .ram_err = ENODEV, .ram_alt = EACCES },
	{ .name = "procfs file", .open = open_procfs, .prot = PROT_READ,
	  .err = ENODEV },
	{ .name = "hugetlb memfd, aligned", .open = open_hugetlb, .prot = RW,
	  .err = EINVAL, .alt = ENOMEM, .ram = true, .ram_err = EINVAL,
	  .ram_alt = ENOMEM },
	{ .name = "hugetlb memfd, unaligned", .open = open_hugetlb, .prot = RW,
	  .err = EINVAL, .alt = ENOMEM, .ram = true, .ram_err = EINVAL,
	  .ram_alt = ENOMEM, .skew = 1 },
	{ .name = "memfd sealed F_SEAL_WRITE", .open = open_sealed_write,
	  .prot = RW, .err = EPERM, .ram = true, .ram_err = EPERM },
	{ .name = "memfd sealed F_SEAL_FUTURE_WRITE",
	  .open = open_sealed_future, .prot = RW, .err = EPERM },
	{ .name = "O_RDONLY file, PROT_WRITE", .open = open_file_ro,
	  .prot = RW, .err = EACCES, .ram = true, .ram_err = EACCES },
	{ .name = "O_RDONLY file, PROT_READ", .open = open_file_ro,
	  .prot = PROT_READ },
	{ .name = "O_RDWR file", .open = open_file_rw, .prot = RW,
	  .ram = true },
	{ .name = "memfd", .open = open_memfd, .prot = RW, .ram = true },
};

struct fd_case {
	const struct kind *k;
	bool ram; /* vmap_map_ram, not vmap_vmap */
	uint64_t seed;
};

#define CHECK_ERRNO(c, err, want, alt)                                      \
	do {                                                                \
		test_checks++;                                              \
		if ((err) != (want) && (!(alt) || (err) != (alt))) {        \
			test_failures++;                                    \
			fprintf(stderr,                                     \
				"%s:%d: %s %s: errno %d (%s), want %d "     \
				"(%s)\n",                                   \
				__FILE__, __LINE__,                         \
				(c)->ram ? "vmap_map_ram" : "vmap_vmap",    \
				(c)->k->name, err, strerror(err), want,     \
				strerror(want));                            \
		}                                                           \
	} while (0)

/* A mapping that worked: page i shows file page i, and writes (if it is
 * writable) reach the file. */
static void check_file_view(unsigned char *v, int fd, int prot)
{
	char c;

	for (int i = 0; i < TRY_PAGES; i++) {
		CHECK_EQ(v[(size_t)i * PG], 'A' + i);
		CHECK_EQ(v[(size_t)i * PG + PG - 1], 'A' + i);
	}
	if (prot & PROT_WRITE) {
		v[3 * PG] = 'z';
		REQUIRE(pread(fd, &c, 1, 3 * PG) == 1);
		CHECK_EQ(c, 'z');
	}
	CHECK(file_mapped(v));
}

/* After its unmap and purge: plain memory again, zero, and writes through
 * a stale pointer stay out of the file. */
static void check_file_gone(unsigned char *v, int fd, int prot)
{
	struct probe pr = { 0 };
	char c;

	CHECK(!file_mapped(v));
	probe(v, TRY_PAGES * PG, P_ZERO | P_WRITE, 0, &pr);
	CHECK_PROBE("unmapped file range", pr);
	if (pr.faults)
		return;
	v[3 * PG] = 'y';
	REQUIRE(pread(fd, &c, 1, 3 * PG) == 1);
	CHECK_EQ(c, prot & PROT_WRITE ? 'z' : 'D');
	v[3 * PG] = 0;
}

/* Another component of the process maps pages; how many land in [lo, hi)? */
static size_t foreign_map(void **f, uintptr_t lo, uintptr_t hi)
{
	size_t inside = 0;

	for (int i = 0; i < FOREIGN; i++) {
		uint64_t *w;

		f[i] = mmap(NULL, PG, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		REQUIRE(f[i] != MAP_FAILED);
		w = f[i];
		for (size_t j = 0; j < PG / 8; j++)
			w[j] = SENTINEL;
		inside += (uintptr_t)f[i] >= lo && (uintptr_t)f[i] < hi;
	}
	return inside;
}

/* The other component's pages are its own: vmap never releases, maps over
 * or writes them. */
static void check_foreign(void **f)
{
	struct probe pr = { 0 };

	for (int i = 0; i < FOREIGN; i++)
		probe(f[i], PG, P_OTHER, 0, &pr);
	CHECK_PROBE("another component's pages", pr);
}

static void foreign_unmap(void **f)
{
	for (int i = 0; i < FOREIGN; i++)
		munmap(f[i], PG);
}

struct held {
	unsigned char *p[2048];
	size_t len[2048];
	bool piece[2048];
	size_t n;
};

static void hold(struct held *h, void *p, size_t len, bool piece)
{
	REQUIRE(h->n < 2048);
	h->p[h->n] = p;
	h->len[h->n] = len;
	h->piece[h->n++] = piece;
}

static void release_held(vmap_space *s, struct held *h)
{
	for (size_t i = 0; i < h->n; i++)
		if (h->piece[i])
			CHECK_EQ(vmap_ram_free(s, (uintptr_t)h->p[i],
					       h->len[i]),
				 0);
		else
			CHECK_EQ(vmap_vfree(s, h->p[i]), 0);
	h->n = 0;
}

/*
 * Take every page the space can still hand out -- the rest of the current
 * vmap block as pieces, then vzalloc areas until ENOSPC -- and probe each
 * page: readable, zero, nobody else's, and with P_WRITE writable.
 */
static void fill_space(vmap_space *s, bool ram, struct held *h, unsigned how)
{
	struct probe pr = { 0 };
	size_t first = h->n;
	void *p;

	while (ram && test_stats(s).block_free_pages) {
		uint64_t left = test_stats(s).block_free_pages, pages = 64, a;

		while (pages > left)
			pages /= 2;
		if (vmap_ram_alloc(s, pages * PG, &a))
			break;
		hold(h, (void *)(uintptr_t)a, pages * PG, true);
	}
	for (size_t size = 64 * PG; size; size = size == PG ? 0 : PG)
		while ((p = guarded_vzalloc(s, size)))
			hold(h, p, size, false);
	CHECK_EQ(errno, ENOSPC);
	CHECK_EQ(test_stats(s).free_pages, 0);
	for (size_t i = first; i < h->n; i++)
		probe(h->p[i], h->len[i], P_ZERO | how, 0, &pr);
	CHECK_PROBE("a full space", pr);
}

/*
 * Alloc, touch, free, purge, a thousand times: after every purge the space
 * must be all free.  (A hole made the old purges fail whole batches, which
 * then waited on the lazy list forever: a 64 MiB space reached ENOSPC.)
 */
static void cycles(vmap_space *s, bool ram, uint64_t *rnd)
{
	unsigned long nospace = 0, other = 0, notfree = 0, ramfail = 0;
	struct probe pr = { 0 };

	for (int c = 0; c < CYCLES; c++) {
		unsigned k = 1 + (unsigned)(test_rand(rnd) % 4);
		unsigned char *a[4];
		struct vmap_stats st;

		for (unsigned j = 0; j < k; j++) {
			uint64_t r = test_rand(rnd);
			size_t pages = r % 8 ? 1 + (r >> 8) % 64 :
					       1 + (r >> 8) % 1024;

			a[j] = guarded_vzalloc(s, pages * PG);
			if (!a[j]) {
				if (errno == ENOSPC)
					nospace++;
				else
					other++;
				continue;
			}
			probe(a[j], PG, P_ZERO | P_WRITE, 0, &pr);
			probe(a[j] + (pages - 1) * PG, PG, P_ZERO | P_WRITE, 0,
			      &pr);
		}
		if (ram) {
			uint64_t pages = 1 + test_rand(rnd) % 64, p;

			if (vmap_ram_alloc(s, pages * PG, &p) == 0) {
				probe((void *)(uintptr_t)p, pages * PG,
				      P_ZERO | P_WRITE, 0, &pr);
				CHECK_EQ(vmap_ram_free(s, p, pages * PG), 0);
			} else {
				ramfail++;
			}
			if (c % 7 == 0)
				CHECK_EQ(vmap_unmap_aliases(s), 0);
		}
		for (unsigned j = 0; j < k; j++)
			if (a[j])
				CHECK_EQ(vmap_vfree(s, a[j]), 0);
		CHECK_EQ(vmap_purge(s, VMAP_PURGE_SYNC), 0);
		st = test_stats(s);
		if (!is_all_free(&st) && !notfree++)
			check_all_free(s, __LINE__);
		if (c % 100 == 99)
			CHECK_SPACE(s);
	}
	CHECK_EQ(nospace, 0);
	CHECK_EQ(other, 0);
	CHECK_EQ(ramfail, 0);
	CHECK_EQ(notfree, 0);
	CHECK_PROBE("cycles", pr);
}

static void fd_case(void *arg)
{
	const struct fd_case *c = arg;
	const struct kind *k = c->k;
	int want = c->ram ? k->ram_err : k->err;
	int alt = c->ram ? k->ram_alt : k->alt;
	int prot = c->ram ? RW : k->prot;
	vmap_space *s = mspace(SPACE, 0, 0);
	struct probe pr = { 0 };
	struct vmap_stats before, after;
	uint64_t pgoff[TRY_PAGES], base, filler_len = 0, rnd = c->seed;
	unsigned char *first, *filler = NULL, *nb = NULL, *v, *x;
	struct held *h = calloc(1, sizeof(*h));
	void **foreign = calloc(FOREIGN, sizeof(*foreign));
	int fd, err;

	REQUIRE(h && foreign);
	/* A fresh space hands out its base first. */
	first = vmap_vmalloc(s, PG);
	REQUIRE(first);
	base = (uintptr_t)first;
	CHECK_EQ(vmap_vfree(s, first), 0);
	CHECK_EQ(vmap_purge(s, VMAP_PURGE_SYNC), 0);
	CHECK_SPACE(s);
	fd = k->open(c->ram);
	if (fd < 0) {
		printf("hostile_test: %s: skipped (%s)\n", k->name,
		       strerror(errno));
		vmap_space_destroy(s);
		return;
	}
	for (int i = 0; i < TRY_PAGES; i++)
		pgoff[i] = (uint64_t)i;

	if (!c->ram) {
		/*
		 *   filler | tried (TRY_PAGES) | nb (NB_PAGES, data) | ...
		 *          ^ a 2 MiB boundary (+ skew pages)
		 * The tried range is made free again, so vmap_vmap gets it.
		 */
		uint64_t at = align_up(base, HUGE_PAGE) + k->skew * PG;

		if (at > base) {
			filler_len = at - base;
			filler = vmap_vmalloc(s, filler_len);
			REQUIRE(filler);
			CHECK(filler == first);
			probe(filler, filler_len, P_FILL, 0xf111, &pr);
		}
		x = vmap_vmalloc(s, TRY_PAGES * PG);
		nb = vmap_vmalloc(s, NB_PAGES * PG);
		REQUIRE(x && nb);
		CHECK_EQ((uintptr_t)x, at);
		CHECK(nb == x + TRY_PAGES * PG);
		probe(nb, NB_PAGES * PG, P_FILL, 0x0b, &pr);
		CHECK_EQ(vmap_vfree(s, x), 0);
		CHECK_EQ(vmap_purge(s, VMAP_PURGE_SYNC), 0);
		CHECK_SPACE(s);
		before = test_stats(s);
		errno = 0;
		v = vmap_vmap(s, fd, pgoff, TRY_PAGES, prot);
		err = errno;
		if (want) {
			CHECK(v == NULL);
			CHECK_ERRNO(c, err, want, alt);
			/* Nothing changed. */
			after = test_stats(s);
			CHECK_EQ(after.busy_areas, before.busy_areas);
			CHECK_EQ(after.busy_pages, before.busy_pages);
			CHECK_EQ(after.free_pages, before.free_pages);
			CHECK_EQ(after.lazy_pages, before.lazy_pages);
			CHECK_EQ(quarantined(&after), 0);
			if (v)
				vmap_vunmap(s, v);
		} else {
			CHECK(v == x);
			REQUIRE(v);
			CHECK_SPACE(s);
			check_file_view(v, fd, prot);
			CHECK_EQ(vmap_vunmap(s, v), 0);
			CHECK_EQ(vmap_purge(s, VMAP_PURGE_SYNC), 0);
			check_file_gone(v, fd, prot);
		}
	} else {
		/*
		 *   [ lead (skew pages) | tried ... ]   a fresh vmap block
		 * then once more after a live piece holding data.
		 */
		uint64_t a;

		pin_cpu();
		if (k->skew) {
			REQUIRE(vmap_ram_alloc(s, k->skew * PG, &a) == 0);
			filler = (unsigned char *)(uintptr_t)a;
			filler_len = k->skew * PG;
			probe(filler, filler_len, P_FILL, 0xf111, &pr);
		}
		errno = 0;
		v = vmap_map_ram(s, fd, pgoff, TRY_PAGES);
		err = errno;
		if (want) {
			CHECK(v == NULL);
			CHECK_ERRNO(c, err, want, alt);
		} else {
			REQUIRE(v);
			CHECK_SPACE(s);
			check_file_view(v, fd, prot);
			CHECK_EQ(vmap_unmap_ram(s, v, TRY_PAGES), 0);
			CHECK_EQ(vmap_unmap_aliases(s), 0);
			check_file_gone(v, fd, prot);
		}
		CHECK_SPACE(s);
		REQUIRE(vmap_ram_alloc(s, NB_PAGES * PG, &a) == 0);
		nb = (unsigned char *)(uintptr_t)a;
		probe(nb, NB_PAGES * PG, P_FILL, 0x0b, &pr);
		if (want) {
			errno = 0;
			v = vmap_map_ram(s, fd, pgoff, TRY_PAGES);
			err = errno;
			CHECK(v == NULL);
			CHECK_ERRNO(c, err, want, alt);
		}
	}
	CHECK_SPACE(s);
	/* The neighbours kept their data. */
	if (filler)
		probe(filler, filler_len, P_VERIFY, 0xf111, &pr);
	probe(nb, NB_PAGES * PG, P_VERIFY, 0x0b, &pr);
	CHECK_PROBE("neighbours of the tried range", pr);

	/* Every page the space hands out is usable, and zero; and it all
	 * comes back. */
	fill_space(s, c->ram, h, P_WRITE);
	CHECK_SPACE(s);
	release_held(s, h);
	CHECK_EQ(vmap_purge(s, VMAP_PURGE_SYNC), 0);
	CHECK_EQ(test_stats(s).release_errors, 0);
	CHECK_SPACE(s);
	/* Another component's pages never land in the space, and the space
	 * never hands them out. */
	CHECK_EQ(foreign_map(foreign, base, base + SPACE), 0);
	CHECK_SPACE(s);
	fill_space(s, c->ram, h, 0);
	CHECK_SPACE(s);
	if (filler && c->ram)
		CHECK_EQ(vmap_ram_free(s, (uintptr_t)filler, filler_len), 0);
	else if (filler)
		CHECK_EQ(vmap_vfree(s, filler), 0);
	if (c->ram)
		CHECK_EQ(vmap_ram_free(s, (uintptr_t)nb, NB_PAGES * PG), 0);
	else
		CHECK_EQ(vmap_vfree(s, nb), 0);
	release_held(s, h);
	CHECK_EQ(vmap_purge(s, VMAP_PURGE_SYNC), 0);
	CHECK_SPACE(s);
	CHECK_ALL_FREE(s);
	cycles(s, c->ram, &rnd);
	CHECK_ALL_FREE(s);
	CHECK_EQ(test_stats(s).release_errors, 0);
	CHECK_EQ(lib_faults, 0);
	CHECK_SPACE(s);
	check_foreign(foreign);
	close(fd);
	vmap_space_destroy(s);
	foreign_unmap(foreign);
	free(foreign);
	free(h);
}

static void test_failed_map_no_hole(void)
{
	char what[128];

	for (int ram = 0; ram < 2; ram++)
		for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
			struct fd_case c = { &kinds[i], ram, seed + i };

			if (ram && !kinds[i].ram)
				continue;
			snprintf(what, sizeof(what), "%s of %s",
				 ram ? "vmap_map_ram" : "vmap_vmap",
				 kinds[i].name);
			run_child(what, fd_case, &c, 60);
		}
}

/*
 * The same, raced: another thread maps pages all the while.  A hole that is
 * filled again only after the failed mmap returns is a window in which that
 * thread's mmap(NULL) lands in the space -- and then the refill either maps
 * over the other component's page or leaves it inside the reservation.
 */
#define RACE_TRIES 2000
#define RACE_KEEP 1000

struct mapper {
	atomic_bool stop;
	uintptr_t lo, hi;
	void *kept[RACE_KEEP], *inside[64];
	size_t nkept, ninside;
	atomic_ulong maps;
	struct probe lost; /* pages unmapped under the mapper */
};

static void *mapper(void *arg)
{
	struct mapper *m = arg;

	while (!atomic_load_explicit(&m->stop, memory_order_relaxed)) {
		size_t lost = m->lost.faults;
		void *w = mmap(NULL, PG, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		if (w == MAP_FAILED)
			break;
		atomic_fetch_add_explicit(&m->maps, 1, memory_order_relaxed);
		probe(w, PG, P_MARK, 0, &m->lost);
		if (m->lost.faults != lost)
			continue; /* someone mapped over it: counted */
		/* The first thousand fill the gaps above the space; after
		 * that, a new page goes to the highest gap left. */
		if ((uintptr_t)w >= m->lo && (uintptr_t)w < m->hi &&
		    m->ninside < 64)
			m->inside[m->ninside++] = w;
		else if (m->nkept < RACE_KEEP)
			m->kept[m->nkept++] = w;
		else
			munmap(w, PG);
	}
	return NULL;
}

static void race_case(void *arg)
{
	vmap_space *s = mspace(SPACE, 0, 0);
	struct mapper *m = calloc(1, sizeof(*m));
	struct held *h = calloc(1, sizeof(*h));
	unsigned long wrong = 0, mapped = 0;
	uint64_t pgoff[TRY_PAGES];
	struct probe pr = { 0 };
	pthread_t t;
	int fd[2];
	void *p;

	(void)arg;
	REQUIRE(m && h);
	fd[0] = open_socket(true);
	fd[1] = open_sysfs(true);
	REQUIRE(fd[0] >= 0);
	p = vmap_vmalloc(s, PG);
	REQUIRE(p);
	m->lo = (uintptr_t)p;
	m->hi = m->lo + SPACE;
	CHECK_EQ(vmap_vfree(s, p), 0);
	CHECK_EQ(vmap_purge(s, VMAP_PURGE_SYNC), 0);
	for (int i = 0; i < TRY_PAGES; i++)
		pgoff[i] = (uint64_t)i;
	atomic_init(&m->stop, false);
	atomic_init(&m->maps, 0);
	REQUIRE(pthread_create(&t, NULL, mapper, m) == 0);
	/* Once the gaps above the space are full, every new page of the
	 * mapper would land in a hole of ours. */
	while (atomic_load(&m->maps) < RACE_KEEP)
		sched_yield();
	for (int i = 0; i < 50 * RACE_TRIES &&
			(i < RACE_TRIES ||
			 atomic_load(&m->maps) < RACE_KEEP + RACE_TRIES);
	     i++) {
		int f = fd[1] >= 0 && i % 2 ? fd[1] : fd[0];

		errno = 0;
		p = i % 4 < 2 ? vmap_vmap(s, f, pgoff, TRY_PAGES, PROT_READ) :
				vmap_map_ram(s, f, pgoff, TRY_PAGES);
		if (p)
			mapped++;
		else if (errno != ENODEV && errno != EACCES)
			wrong++;
	}
	atomic_store(&m->stop, true);
	pthread_join(t, NULL);
	CHECK_EQ(mapped, 0);
	CHECK_EQ(wrong, 0);
	CHECK(atomic_load(&m->maps) >= RACE_KEEP + RACE_TRIES);
	CHECK_EQ(m->ninside, 0);
	CHECK_PROBE("pages mapped while vmap_vmap failed", m->lost);
	for (size_t i = 0; i < m->ninside; i++)
		probe(m->inside[i], PG, P_OTHER, 0, &pr);
	for (size_t i = 0; i < m->nkept; i++)
		probe(m->kept[i], PG, P_OTHER, 0, &pr);
	CHECK_PROBE("pages mapped while vmap_vmap failed", pr);
	CHECK_SPACE(s);
	fill_space(s, true, h, P_WRITE);
	release_held(s, h);
	CHECK_EQ(vmap_purge(s, VMAP_PURGE_SYNC), 0);
	CHECK_ALL_FREE(s);
	CHECK_SPACE(s);
	vmap_space_destroy(s);
	for (size_t i = 0; i < m->nkept; i++)
		munmap(m->kept[i], PG);
	for (size_t i = 0; i < m->ninside; i++)
		munmap(m->inside[i], PG);
	for (int i = 0; i < 2; i++)
		if (fd[i] >= 0)
			close(fd[i]);
	free(h);
	free(m);
}

static void test_failed_map_race(void)
{
	run_child("vmap_vmap and vmap_map_ram failing, raced by mmap",
		  race_case, NULL, 60);
}

/* ==== 2. vmap_unmap_aliases leaves no freed piece showing its file ==== */

static void aliases_case(void *arg)
{
	bool between = *(bool *)arg;
	vmap_space *s = mspace(SPACE, 0, 0);
	uint64_t off[3] = { 0, 1, 2 };
	unsigned char *p[3], page[PG];
	struct probe pr = { 0 };
	int fd, n = between ? 3 : 2;

	pin_cpu();
	REQUIRE(vmap_memfd_create("aliases", 4, &fd) == 0);
	for (int i = 0; i < 4; i++) {
		memset(page, 'a' + i, PG);
		REQUIRE(pwrite(fd, page, PG, (off_t)i * PG) == PG);
	}
	for (int i = 0; i < n; i++) {
		p[i] = vmap_map_ram(s, fd, &off[i], 1);
		REQUIRE(p[i]);
	}
	CHECK(p[1] == p[0] + PG); /* one block */
	CHECK_SPACE(s);
	memset(p[0], 'A', PG);
	REQUIRE(pread(fd, page, PG, 0) == PG);
	CHECK_EQ(page[PG - 1], 'A');

	/*
	 *   [ d p ... ]  or  [ d p d ... ]   d freed, p live
	 */
	CHECK_EQ(vmap_unmap_ram(s, p[0], 1), 0);
	if (between)
		CHECK_EQ(vmap_unmap_ram(s, p[2], 1), 0);
	CHECK_EQ(vmap_unmap_aliases(s), 0);
	CHECK_SPACE(s);
	for (int i = 0; i < n; i += 2) {
		/* Plain reserved space: zero, and no file behind it. */
		CHECK(!file_mapped(p[i]));
		probe(p[i], PG, P_ZERO, 0, &pr);
		CHECK_PROBE("freed piece after vmap_unmap_aliases", pr);
		memset(&pr, 0, sizeof(pr));
		probe(p[i], PG, P_FILL, 0x57a1e, &pr); /* a stale pointer */
		REQUIRE(pread(fd, page, PG, (off_t)i * PG) == PG);
		CHECK_EQ(page[0], i ? 'a' + i : 'A');
		CHECK_EQ(page[PG - 1], i ? 'a' + i : 'A');
	}
	/* The live piece still shows the file, both ways. */
	CHECK(file_mapped(p[1]));
	CHECK_EQ(p[1][0], 'b');
	p[1][1] = 'B';
	REQUIRE(pread(fd, page, 2, PG) == 2);
	CHECK_EQ(page[1], 'B');
	CHECK_EQ(vmap_unmap_ram(s, p[1], 1), 0);
	CHECK_EQ(vmap_purge(s, VMAP_PURGE_SYNC), 0);
	CHECK_SPACE(s);
	CHECK_ALL_FREE(s);
	CHECK(!file_mapped(p[1]));
	close(fd);
	vmap_space_destroy(s);
}

static void test_unmap_aliases_drops_files(void)
{
	bool between = false;

	run_child("vmap_unmap_aliases, freed piece before a live one",
		  aliases_case, &between, 60);
	between = true;
	run_child("vmap_unmap_aliases, live piece between freed ones",
		  aliases_case, &between, 60);
}

/* ==== 3. locked memory is released like any other ==== */

/* Resident pages of [p, p + len), or -1 if part of it is not mapped. */
static long resident(const void *p, size_t len)
{
	size_t n = len / PG;
	unsigned char *vec = malloc(n);
	long count = 0;

	REQUIRE(vec);
	if (mincore((void *)p, len, vec)) {
		free(vec);
		return -1;
	}
	for (size_t i = 0; i < n; i++)
		count += vec[i] & 1;
	free(vec);
	return count;
}

static long vm_rss_kib(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long kib = -1;

	REQUIRE(f);
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
			break;
	fclose(f);
	return kib;
}

/* One mlock()ed page, freed: released, counted, reusable -- on the madvise
 * path too (fuzz_memory found it released with plain MADV_DONTNEED there,
 * which the kernel refuses on a locked range). */
static void test_mlock_one(void)
{
	static const unsigned kinds[] = {
		VMAP_SPACE_NOPOOL, 0,
		VMAP_SPACE_NOPOOL | VMAP_SPACE_RELEASE_MADVISE,
	};

	for (int pool = 0; pool < 3; pool++) {
		unsigned flags = kinds[pool];
		vmap_space *s = mspace(64 * PG, 0, flags);
		struct probe pr = { 0 };
		unsigned char *p = vmap_vmalloc(s, PG), *all;
		struct vmap_stats st;

		REQUIRE(p);
		memset(p, 0x3c, PG);
		if (mlock(p, PG)) {
			printf("hostile_test: mlock: skipped (%s)\n",
			       strerror(errno));
			vmap_space_destroy(s);
			return;
		}
		CHECK_EQ(vmap_vfree(s, p), 0);
		CHECK_SPACE(s);
		CHECK_EQ(vmap_purge(s, VMAP_PURGE_SYNC), 0);
		st = test_stats(s);
		CHECK_EQ(st.release_errors, 0);
		CHECK_EQ(quarantined(&st), 0);
		CHECK_EQ(st.lazy_pages, 0);
		CHECK_EQ(resident(p, PG), 0);
		CHECK_ALL_FREE(s);
		CHECK_SPACE(s);
		all = vmap_vzalloc(s, 64 * PG);
		CHECK(all == p);
		if (all) {
			probe(all, 64 * PG, P_ZERO | P_WRITE, 0, &pr);
			CHECK_PROBE("space after a locked page", pr);
			CHECK_EQ(vmap_vfree(s, all), 0);
		}
		CHECK_EQ(vmap_purge(s, VMAP_PURGE_SYNC), 0);
		CHECK_ALL_FREE(s);
		CHECK_SPACE(s);
		vmap_space_destroy(s);
	}
}

/* Some freed areas locked, some not, one purge: all released, reusable. */
static void test_mlock_mixed_batch(void)
{
	enum { AREAS = 32, PAGES = 4 };
	vmap_space *s = mspace(AREAS * PAGES * PG, 1u << 20, VMAP_SPACE_NOPOOL);
	unsigned char *p[AREAS], *all;
	struct probe pr = { 0 };
	struct vmap_stats st;
	long locked = 0;

	for (int i = 0; i < AREAS; i++) {
		p[i] = vmap_vmalloc(s, PAGES * PG);
		REQUIRE(p[i]);
		memset(p[i], 0x77, PAGES * PG);
		if (i % 2 == 0)
			locked += mlock(p[i], PAGES * PG) == 0;
	}
	if (!locked)
		printf("hostile_test: mixed batch: mlock refused\n");
	for (int i = 0; i < AREAS; i++)
		CHECK_EQ(vmap_vfree(s, p[i]), 0);
	CHECK_SPACE(s);
	CHECK_EQ(test_stats(s).purges, 0);
	CHECK_EQ(vmap_purge(s, VMAP_PURGE_SYNC), 0);
	st = test_stats(s);
	CHECK_EQ(st.purges, 1);
	CHECK_EQ(st.release_errors, 0);
	CHECK_EQ(quarantined(&st), 0);
	CHECK_ALL_FREE(s);
	CHECK_EQ(resident(p[0], AREAS * PAGES * PG), 0);
	CHECK_SPACE(s);
	all = vmap_vzalloc(s, AREAS * PAGES * PG);
	CHECK(all == p[0]);
	if (all) {
		probe(all, AREAS * PAGES * PG, P_ZERO | P_WRITE, 0, &pr);
		CHECK_PROBE("space after a mixed batch", pr);
		CHECK_EQ(vmap_vfree(s, all), 0);
	}
	CHECK_EQ(vmap_purge(s, VMAP_PURGE_SYNC), 0);
	CHECK_ALL_FREE(s);
	CHECK_SPACE(s);
	vmap_space_destroy(s);
}

#define LOCKED_SPACE (256 * MIB)
#define BIG_PAGES 4096

/*
 * Under mlockall: thousands of vmalloc/touch/vfree on a 256 MiB space.
 * Every release must succeed, the lazy list stay below twice its limit,
 * no allocation fail, and after the last purge nothing stays resident.
 */
static void locked_workload(vmap_space *s, const char *name, uint64_t *rnd)
{
	enum { LIVE = 64, OPS = 3000 };
	unsigned char *live[LIVE] = { NULL }, *p;
	size_t pages[LIVE] = { 0 };
	unsigned long nospace = 0, notzero = 0, overlazy = 0;
	uint64_t base, maxlazy = 0, bound;
	struct vmap_stats st;
	long rss0, rss1, res0, res1;

	p = vmap_vmalloc(s, PG); /* a fresh space's first area: its base */
	REQUIRE(p);
	base = (uintptr_t)p;
	CHECK_EQ(vmap_vfree(s, p), 0);
	bound = 2 * test_stats(s).lazy_max_pages + 64;
	for (int op = 0; op < OPS; op++) {
		unsigned k = (unsigned)(test_rand(rnd) % LIVE);

		if (live[k]) {
			CHECK_EQ(vmap_vfree(s, live[k]), 0);
			live[k] = NULL;
		} else {
			pages[k] = 1 + test_rand(rnd) % 64;
			/* vzalloc: the zero check below is its promise. */
			live[k] = vmap_vzalloc(s, pages[k] * PG);
			if (!live[k]) {
				nospace++;
				continue;
			}
			for (size_t i = 0; i < pages[k]; i++) {
				notzero += live[k][i * PG + 8] != 0;
				live[k][i * PG + 8] = 1;
			}
		}
		st = test_stats(s);
		if (st.lazy_pages > maxlazy)
			maxlazy = st.lazy_pages;
		overlazy += st.lazy_pages > bound;
	}
	for (int k = 0; k < LIVE; k++)
		if (live[k])
			CHECK_EQ(vmap_vfree(s, live[k]), 0);
	CHECK_SPACE(s);
	CHECK_EQ(vmap_purge(s, VMAP_PURGE_SYNC), 0);
	CHECK_EQ(resident((void *)(uintptr_t)base, LOCKED_SPACE), 0);
	CHECK_ALL_FREE(s);
	/* 16 MiB locked and resident, freed: the purge must drop it all. */
	p = vmap_vmalloc(s, BIG_PAGES * PG);
	CHECK(p != NULL);
	for (size_t i = 0; p && i < BIG_PAGES; i++)
		p[i * PG] = 1;
	CHECK_EQ(vmap_vfree(s, p), 0);
	rss0 = vm_rss_kib();
	res0 = resident((void *)(uintptr_t)base, LOCKED_SPACE);
	CHECK_EQ(vmap_purge(s, VMAP_PURGE_SYNC), 0);
	res1 = resident((void *)(uintptr_t)base, LOCKED_SPACE);
	rss1 = vm_rss_kib();
	st = test_stats(s);
	printf("hostile_test: locked %s: %" PRIu64 " purges, max lazy %"
	       PRIu64 " pages (bound %" PRIu64 "), resident %ld -> %ld "
	       "pages, VmRSS %ld -> %ld KiB, release_errors %" PRIu64 "\n",
	       name, st.purges, maxlazy, bound, res0, res1, rss0, rss1,
	       st.release_errors);
	CHECK_EQ(nospace, 0);
	CHECK_EQ(notzero, 0);
	CHECK_EQ(overlazy, 0);
	CHECK_EQ(st.release_errors, 0);
	CHECK_EQ(quarantined(&st), 0);
	CHECK(st.purges > 1);
	CHECK(res0 >= BIG_PAGES);
	CHECK_EQ(res1, 0);
	CHECK(rss0 - rss1 >= BIG_PAGES * (long)(PG / 1024) / 2);
	CHECK_ALL_FREE(s);
	CHECK_SPACE(s);
}

static void mlockall_case(void *arg)
{
	uint64_t rnd = *(uint64_t *)arg;
	/* This one exists before mlockall: MCL_CURRENT locks it. */
	vmap_space *s = mspace(LOCKED_SPACE, 0, 0);

	if (mlockall(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT)) {
		printf("hostile_test: mlockall: skipped (%s)\n",
		       strerror(errno));
		vmap_space_destroy(s);
		return;
	}
	locked_workload(s, "pool (MCL_CURRENT)", &rnd);
	vmap_space_destroy(s);
	/* These are made after it: MCL_FUTURE locks them. */
	s = mspace(LOCKED_SPACE, 0, VMAP_SPACE_NOPOOL);
	locked_workload(s, "nopool (MCL_FUTURE)", &rnd);
	vmap_space_destroy(s);
	s = mspace(LOCKED_SPACE, 0, VMAP_SPACE_GUARD);
	locked_workload(s, "guard (MCL_FUTURE)", &rnd);
	vmap_space_destroy(s);
	munlockall();
}

static void test_mlockall(void)
{
	uint64_t rnd = seed ^ 0x3;

	run_child("mlockall workload", mlockall_case, &rnd, 120);
}

/*
 * A process without CAP_IPC_LOCK, at a small RLIMIT_MEMLOCK, under
 * mlockall(MCL_FUTURE | MCL_ONFAULT): every mapping it makes is locked and
 * counted against the limit, and the kernel checks a MAP_FIXED mapping
 * against it without subtracting the locked one it replaces.  The purge's
 * remaps (a vmap_vmap area, a vprotect'd one) once failed there with
 * EAGAIN, for ever: each freed area went to quarantine, still locked, and a
 * 32 MiB space ran out after ten 3 MiB areas (found by an attack program).
 */
static void memlock_case(void *arg)
{
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct none[2] = { { 0, 0, 0 }, { 0, 0, 0 } };
	struct rlimit rl = { 4 << 20, 4 << 20 };
	enum { AREA = 3 << 20 };
	vmap_space *s;
	struct vmap_stats st;
	uint64_t pgoff[AREA / PG];
	int fd = -1;

	(void)arg;
	/* The space first: a 32 MiB reservation made under the limit would
	 * be refused whole. */
	s = mspace(32 << 20, 0, VMAP_SPACE_NOPOOL);
	REQUIRE(vmap_memfd_create("memlock", AREA / PG, &fd) == 0);
	REQUIRE(syscall(SYS_capset, &h, none) == 0);
	REQUIRE(setrlimit(RLIMIT_MEMLOCK, &rl) == 0);
	REQUIRE(mlockall(MCL_FUTURE | MCL_ONFAULT) == 0);
	for (size_t i = 0; i < AREA / PG; i++)
		pgoff[i] = i;
	for (int round = 0; round < 24; round++) {
		unsigned char *p = round & 1 ?
			vmap_vmap(s, fd, pgoff, AREA / PG,
				  PROT_READ | PROT_WRITE) :
			vmap_vmalloc(s, AREA);

		CHECK(p != NULL);
		if (!p)
			break;
		memset(p, 0x6b, 2 * PG);
		if (!(round & 1))
			CHECK_EQ(vmap_vprotect(s, p, PROT_READ), 0);
		CHECK_EQ(vmap_vfree(s, p), 0);
		CHECK_EQ(vmap_purge(s, VMAP_PURGE_SYNC), 0);
		st = test_stats(s);
		CHECK_EQ(st.quarantined_areas, 0);
		CHECK_EQ(st.release_errors, 0);
		CHECK_EQ(st.free_pages, st.total_pages);
		CHECK_EQ(vmap_check(s), 0);
	}
	close(fd);
	vmap_space_destroy(s);
}

static void test_memlock_limit(void)
{
	run_child("mlockall at RLIMIT_MEMLOCK 4 MiB", memlock_case, NULL, 60);
}

/* ==== 4. vmap_vprotect, and a caller's own mprotect ==== */

#define PROT_AREA 4 /* pages */

struct prot_case {
	unsigned flags;
	int prot;
};

/*
 * A space of exactly one area: protect it, free it, and the next vmalloc of
 * the same size can only be the same range -- zeroed and writable.  (The old
 * pool handed it back still protected, and crashed in its own memset.)
 */
static void vprotect_case(void *arg)
{
	const struct prot_case *c = arg;
	bool guard = c->flags & VMAP_SPACE_GUARD;
	vmap_space *s = mspace((PROT_AREA + guard) * PG, 0, c->flags);
	unsigned char *p = vmap_vmalloc(s, PROT_AREA * PG), *q;
	struct probe pr = { 0 }, pw = { 0 }, pg = { 0 };
	struct vmap_stats st;

	REQUIRE(p);
	probe(p, PROT_AREA * PG, P_FILL, 0x9e, &pr);
	CHECK_EQ(vmap_vprotect(s, p, c->prot), 0);
	CHECK_SPACE(s);
	/* It took: writes fault, and reads too under PROT_NONE. */
	memset(&pr, 0, sizeof(pr));
	probe(p, PROT_AREA * PG, P_READ, 0, &pr);
	probe(p, PROT_AREA * PG, P_WRITE, 0, &pw);
	CHECK_EQ(pr.faults, c->prot == PROT_NONE ? PROT_AREA : 0);
	CHECK_EQ(pw.faults, PROT_AREA);
	if (guard) {
		probe(p + PROT_AREA * PG, PG, P_READ, 0, &pg);
		CHECK_EQ(pg.faults, 1); /* the guard is left alone */
	}
	CHECK_EQ(vmap_vfree(s, p), 0);
	st = test_stats(s);
	CHECK_EQ(st.pool_areas, 0); /* a protected area skips the pool */
	if (c->flags & VMAP_SPACE_STRICT)
		CHECK_EQ(restores(&st), 1);
	CHECK_SPACE(s);

	q = vmap_vmalloc(s, PROT_AREA * PG);
	CHECK(q == p);
	if (q) {
		memset(&pr, 0, sizeof(pr));
		probe(q, PROT_AREA * PG, P_ZERO | P_WRITE, 0, &pr);
		CHECK_PROBE("the next owner of a protected area", pr);
		if (guard) {
			memset(&pg, 0, sizeof(pg));
			probe(q + PROT_AREA * PG, PG, P_READ, 0, &pg);
			CHECK_EQ(pg.faults, 1);
		}
		CHECK_EQ(vmap_vfree(s, q), 0);
	}
	st = test_stats(s);
	CHECK_EQ(restores(&st), 1);
	CHECK_SPACE(s);
	CHECK_EQ(vmap_purge(s, VMAP_PURGE_SYNC), 0);
	CHECK_ALL_FREE(s);
	CHECK_SPACE(s);
	vmap_space_destroy(s);
}

static void test_vprotect_reuse(void)
{
	static const struct {
		unsigned flags;
		const char *name;
	} spaces[] = {
		{ 0, "pool" },
		{ VMAP_SPACE_NOPOOL, "nopool" },
		{ VMAP_SPACE_STRICT, "strict" },
		{ VMAP_SPACE_GUARD, "guard" },
	};
	char what[96];

	for (size_t i = 0; i < sizeof(spaces) / sizeof(spaces[0]); i++)
		for (int n = 0; n < 2; n++) {
			struct prot_case c = { spaces[i].flags,
					       n ? PROT_NONE : PROT_READ };

			snprintf(what, sizeof(what), "vmap_vprotect(%s) in a "
				 "%s space", n ? "PROT_NONE" : "PROT_READ",
				 spaces[i].name);
			run_child(what, vprotect_case, &c, 30);
		}
}

static void test_vprotect_errors(void)
{
	vmap_space *s = mspace(SPACE, 0, 0), *r = NULL;
	unsigned char *p = vmap_vmalloc(s, PROT_AREA * PG), *gone, *v, *x;
	struct probe pr = { 0 }, pw = { 0 };
	uint64_t piece, pgoff[FILE_PAGES];
	struct vmap_config c;
	struct vmap_stats st;
	char *m = malloc(64), byte;
	int fd;

	REQUIRE(p && m);
	probe(p, PROT_AREA * PG, P_FILL, 0xe4, &pr);
	gone = vmap_vmalloc(s, PG);
	REQUIRE(gone);
	CHECK_EQ(vmap_vfree(s, gone), 0);
	REQUIRE(vmap_ram_alloc(s, PG, &piece) == 0);

	CHECK_EQ(vmap_vprotect(s, p, PROT_READ | 0x10), -EINVAL);
	CHECK_EQ(vmap_vprotect(s, p, PROT_GROWSDOWN), -EINVAL);
	CHECK_EQ(vmap_vprotect(s, p, -1), -EINVAL);
	CHECK_EQ(vmap_vprotect(NULL, p, PROT_READ), -EINVAL);
	vmap_config_init(&c);
	c.length = 16 * PG;
	REQUIRE(vmap_space_create(&c, &r) == 0);
	CHECK_EQ(vmap_vprotect(r, (void *)(uintptr_t)PG, PROT_READ), -EINVAL);
	vmap_space_destroy(r);
	CHECK_EQ(vmap_vprotect(s, p + PG, PROT_READ), -ENOENT);
	CHECK_EQ(vmap_vprotect(s, p + 1, PROT_READ), -ENOENT);
	CHECK_EQ(vmap_vprotect(s, m, PROT_READ), -ENOENT);
	CHECK_EQ(vmap_vprotect(s, gone, PROT_READ), -ENOENT); /* freed */
	CHECK_EQ(vmap_vprotect(s, (void *)(uintptr_t)piece, PROT_READ),
		 -ENOENT);
	/* Any combination of read, write and exec; undone by the purge. */
	x = vmap_vmalloc(s, PG);
	REQUIRE(x);
	CHECK_EQ(vmap_vprotect(s, x, PROT_READ | PROT_EXEC), 0);
	memset(&pr, 0, sizeof(pr));
	probe(x, PG, P_WRITE, 0, &pr);
	CHECK_EQ(pr.faults, 1);
	/* Nothing restored so far -- asked before x is freed: the purge
	 * thread may release (and restore) x any time after. */
	st = test_stats(s);
	CHECK_EQ(restores(&st), 0);
	CHECK_EQ(vmap_vfree(s, x), 0);
	/* None of that touched p. */
	probe(p, PROT_AREA * PG, P_VERIFY | P_WRITE, 0xe4, &pw);
	CHECK_PROBE("an area after refused vmap_vprotect calls", pw);
	CHECK_SPACE(s);

	/* A file open read-only cannot be made writable. */
	fd = open_file(O_RDONLY);
	REQUIRE(fd >= 0);
	for (int i = 0; i < FILE_PAGES; i++)
		pgoff[i] = (uint64_t)i;
	v = vmap_vmap(s, fd, pgoff, FILE_PAGES, PROT_READ);
	REQUIRE(v);
	CHECK_EQ(vmap_vprotect(s, v, PROT_READ | PROT_WRITE), -EACCES);
	CHECK_EQ(vmap_vprotect(s, v, PROT_WRITE), -EACCES);
	CHECK_SPACE(s);
	memset(&pr, 0, sizeof(pr));
	memset(&pw, 0, sizeof(pw));
	probe(v, FILE_PAGES * PG, P_READ, 0, &pr);
	probe(v, FILE_PAGES * PG, P_WRITE, 0, &pw);
	CHECK_EQ(pr.faults, 0);
	CHECK_EQ(pw.faults, FILE_PAGES); /* still read-only */
	CHECK_EQ(v[5 * PG], 'F');
	REQUIRE(pread(fd, &byte, 1, 5 * PG) == 1);
	CHECK_EQ(byte, 'F');
	/* Taking rights away is fine, and undone by the purge. */
	CHECK_EQ(vmap_vprotect(s, v, PROT_NONE), 0);
	CHECK_EQ(vmap_vunmap(s, v), 0);
	CHECK_EQ(vmap_vfree(s, p), 0);
	CHECK_EQ(vmap_ram_free(s, piece, PG), 0);
	CHECK_EQ(vmap_purge(s, VMAP_PURGE_SYNC), 0);
	st = test_stats(s);
	CHECK_EQ(restores(&st), 2); /* v and x */
	CHECK_ALL_FREE(s);
	CHECK_SPACE(s);
	memset(&pr, 0, sizeof(pr));
	probe(v, FILE_PAGES * PG, P_ZERO | P_WRITE, 0, &pr);
	CHECK_PROBE("a vprotected file range after its purge", pr);
	close(fd);
	free(m);
	vmap_space_destroy(s);
}

/* mprotect() by the caller is unsupported; vmap_check must say so once the
 * range is free (the next owner would get it read-only). */
static void test_mprotect_caught(void)
{
	vmap_space *s = mspace(64 * PG, 0, VMAP_SPACE_NOPOOL);
	unsigned char *p = vmap_vmalloc(s, 2 * PG);

	REQUIRE(p);
	memset(p, 1, 2 * PG);
	REQUIRE(mprotect(p, 2 * PG, PROT_READ) == 0);
	CHECK_EQ(vmap_check(s), 0); /* busy: the owner's business */
	CHECK_EQ(vmap_vfree(s, p), 0);
	CHECK_EQ(vmap_purge(s, VMAP_PURGE_SYNC), 0);
	fprintf(stderr, "hostile_test: a vmap_check report is expected "
			"next:\n");
	CHECK_EQ(vmap_check(s), -EUCLEAN);
	REQUIRE(mprotect(p, 2 * PG, PROT_READ | PROT_WRITE) == 0);
	CHECK_SPACE(s);
	vmap_space_destroy(s);
}

/* ==== 5. fork while other threads are inside vmap ==== */

#define FORKS 25 /* per phase */
#define HAMMERS 3
#define DATA_PAGES 16

struct slow_flush {
	atomic_ulong calls;
};

/* Long enough that most forks land while a purge holds its mutex. */
static void slow_flush(void *ctx, const struct vmap_range *r, size_t n)
{
	struct slow_flush *f = ctx;
	struct timespec ts = { 0, 200000 };

	(void)r;
	(void)n;
	atomic_fetch_add(&f->calls, 1);
	nanosleep(&ts, NULL);
}

struct hammer {
	vmap_space *s;
	bool memory;
	unsigned id;
	uint64_t rnd;
	atomic_bool *stop;
	unsigned long bad, ops;
};

/* The first word of each page of a memory-space area: whose, and where. */
static uint64_t *word(uint64_t a, uint64_t off)
{
	return (uint64_t *)(uintptr_t)(a + off);
}

static uint64_t tag(unsigned id, uint64_t a)
{
	return (uint64_t)id << 56 ^ a;
}

static int hammer_free(struct hammer *h, uint64_t a, uint64_t size,
		       bool piece)
{
	return piece ? vmap_ram_free(h->s, a, size) : vmap_free(h->s, a);
}

static void *hammer(void *arg)
{
	enum { LIVE = 16 };
	struct hammer *h = arg;
	uint64_t a[LIVE] = { 0 }, size[LIVE] = { 0 };
	bool piece[LIVE] = { false };

	while (!atomic_load_explicit(h->stop, memory_order_relaxed)) {
		unsigned k = (unsigned)(test_rand(&h->rnd) % LIVE);
		unsigned op = (unsigned)(test_rand(&h->rnd) % 16);
		uint64_t x;

		h->ops++;
		if (a[k]) {
			for (uint64_t o = 0; h->memory && o < size[k]; o += PG)
				h->bad += *word(a[k], o) !=
					  tag(h->id, a[k] + o);
			h->bad += hammer_free(h, a[k], size[k], piece[k]) != 0;
			a[k] = 0;
			continue;
		}
		size[k] = (1 + test_rand(&h->rnd) % 8) * PG;
		piece[k] = op >= 8;
		if (op < 8 && h->memory)
			a[k] = (uintptr_t)vmap_vzalloc(h->s, size[k]);
		else if (op < 8 &&
			 vmap_alloc(h->s, size[k], 0, 0, UINT64_MAX, &a[k]))
			a[k] = 0;
		else if (op >= 8 && op < 12 &&
			 vmap_ram_alloc(h->s, size[k], &a[k]))
			a[k] = 0;
		else if (op == 12)
			vmap_purge(h->s, VMAP_PURGE_TRY);
		else if (op == 13)
			vmap_purge(h->s, VMAP_PURGE_SYNC);
		else if (op == 14)
			vmap_unmap_aliases(h->s);
		else if (op == 15 &&
			 vmap_xalloc(h->s, PG, 0, 0, 0, 0, UINT64_MAX,
				     VMAP_XALLOC_TOPDOWN, &x) == 0)
			h->bad += vmap_free(h->s, x) != 0;
		for (uint64_t o = 0; h->memory && a[k] && o < size[k];
		     o += PG) {
			if (!piece[k])
				h->bad += *word(a[k], o) != 0; /* vzalloc: 0 */
			*word(a[k], o) = tag(h->id, a[k] + o);
		}
	}
	for (unsigned k = 0; k < LIVE; k++)
		if (a[k])
			h->bad += hammer_free(h, a[k], size[k], piece[k]) != 0;
	return NULL;
}

struct fork_ctx {
	vmap_space *s;
	bool memory;
	struct slow_flush *flush;
	unsigned char *data; /* the parent's live data (memory spaces) */
};

/* In the child: the one thread, with every other thread gone mid-call. */
static void fork_child(void *arg)
{
	struct fork_ctx *c = arg;
	vmap_space *s = c->s;
	struct probe pr = { 0 };
	uint64_t a[8] = { 0 };

	CHECK_SPACE(s); /* hangs if a lock stayed held */
	for (int i = 0; i < 8; i++) {
		if (c->memory) {
			void *p = vmap_vzalloc(s, (size_t)(i + 1) * PG);

			CHECK(p != NULL);
			a[i] = (uintptr_t)p;
			if (p)
				probe(p, (size_t)(i + 1) * PG,
				      P_ZERO | P_FILL, 0xc41d, &pr);
		} else {
			CHECK_EQ(vmap_alloc(s, (uint64_t)(i + 1) * PG, 0, 0,
					    UINT64_MAX, &a[i]),
				 0);
		}
	}
	for (int i = 0; i < 8; i++)
		if (a[i])
			CHECK_EQ(vmap_free(s, a[i]), 0);
	if (c->memory) {
		uint64_t piece;

		CHECK_PROBE("memory a forked child allocated", pr);
		CHECK_EQ(vmap_ram_alloc(s, 2 * PG, &piece), 0);
		CHECK_EQ(vmap_ram_free(s, piece, 2 * PG), 0);
		CHECK_EQ(vmap_unmap_aliases(s), 0);
		/* The parent's data is here, a copy: write it, free it,
		 * purge -- the parent must see none of that. */
		memset(&pr, 0, sizeof(pr));
		probe(c->data, DATA_PAGES * PG, P_VERIFY, 0xda7a, &pr);
		CHECK_PROBE("the parent's data, seen by the child", pr);
		probe(c->data, DATA_PAGES * PG, P_FILL, 0xc41d, &pr);
		CHECK_EQ(vmap_vfree(s, c->data), 0);
	}
	{
		unsigned long before = atomic_load(&c->flush->calls);

		CHECK_EQ(vmap_purge(s, VMAP_PURGE_SYNC |
					       VMAP_PURGE_FORCE_FLUSH),
			 0);
		/* The flush ran here, in the child. */
		if (!c->memory)
			CHECK(atomic_load(&c->flush->calls) > before);
	}
	if (c->memory) {
		memset(&pr, 0, sizeof(pr));
		probe(c->data, DATA_PAGES * PG, P_ZERO, 0, &pr);
		CHECK_PROBE("the child's copy after its purge", pr);
	}
	CHECK_SPACE(s);
}

static void fork_phase(bool memory)
{
	struct slow_flush flush;
	struct fork_ctx ctx = { NULL, memory, &flush, NULL };
	struct hammer h[HAMMERS];
	pthread_t t[HAMMERS];
	atomic_bool stop;
	struct vmap_config c;
	struct probe pr = { 0 };
	char what[64];
	int forks = 0;

	atomic_init(&flush.calls, 0);
	atomic_init(&stop, false);
	vmap_config_init(&c);
	c.lazy_max_pages = 64; /* purges all the time */
	if (memory) {
		c.flags = VMAP_SPACE_MEMORY;
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
		/* The child's first free starts its purge thread: TSan
		 * cannot start one in the child of a threaded process, and
		 * ASan's allocator (gcc 12) is not fork-safe, so that thread
		 * may wait for ever on a lock a parent's thread held.  The
		 * purger's fork is left to the plain build. */
		c.flags |= VMAP_SPACE_NOPURGER;
#endif
		c.length = SPACE;
	} else {
		c.base = 1ull << 32;
		c.length = SPACE;
		c.flush = slow_flush;
		c.flush_ctx = &flush;
	}
	REQUIRE(vmap_space_create(&c, &ctx.s) == 0);
	if (memory) {
		ctx.data = vmap_vmalloc(ctx.s, DATA_PAGES * PG);
		REQUIRE(ctx.data);
		probe(ctx.data, DATA_PAGES * PG, P_FILL, 0xda7a, &pr);
	}
	for (unsigned i = 0; i < HAMMERS; i++) {
		h[i] = (struct hammer){ ctx.s, memory, i + 1, seed + 100 + i,
					&stop, 0, 0 };
		REQUIRE(pthread_create(&t[i], NULL, hammer, &h[i]) == 0);
	}
	for (int i = 0; i < FORKS; i++) {
		struct timespec ts = { 0, 300000 + 100000 * (i % 10) };
		int status;

		nanosleep(&ts, NULL);
		snprintf(what, sizeof(what), "forked from a busy %s space (%d)",
			 memory ? "memory" : "range", i);
		status = run_child(what, fork_child, &ctx, 10);
		forks++;
		if (memory) {
			/* The child's write and purge did not reach us. */
			probe(ctx.data, DATA_PAGES * PG, P_VERIFY, 0xda7a, &pr);
			CHECK_PROBE("the parent's data after a child", pr);
		}
		/* One hang costs the alarm's 10 s: one is enough to know. */
		if (WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM)
			break;
	}
	atomic_store(&stop, true);
	for (unsigned i = 0; i < HAMMERS; i++) {
		pthread_join(t[i], NULL);
		CHECK_EQ(h[i].bad, 0);
		CHECK(h[i].ops > 0);
	}
	printf("hostile_test: %d forks from a busy %s space, %lu flushes\n",
	       forks, memory ? "memory" : "range",
	       (unsigned long)atomic_load(&flush.calls));
	if (memory)
		CHECK_EQ(vmap_vfree(ctx.s, ctx.data), 0);
	CHECK_EQ(vmap_purge(ctx.s, VMAP_PURGE_SYNC), 0);
	CHECK_SPACE(ctx.s);
	if (memory)
		CHECK_ALL_FREE(ctx.s);
	vmap_space_destroy(ctx.s);
}

/* One space alive at each fork: ThreadSanitizer holds at most 64 mutexes,
 * and the atfork handler holds every one of a space's. */
static void test_fork_with_threads(void)
{
	fork_phase(false);
	fork_phase(true);
}

int main(void)
{
	REQUIRE(sysconf(_SC_PAGESIZE) == PG);
	seed = test_seed("hostile_test");
	install_guard();
	test_failed_map_no_hole();
	test_failed_map_race();
	test_unmap_aliases_drops_files();
	test_mlock_one();
	test_mlock_mixed_batch();
	test_mlockall();
	test_memlock_limit();
	test_vprotect_reuse();
	test_vprotect_errors();
	test_mprotect_caught();
	test_fork_with_threads();
	return test_summary("hostile_test");
}
