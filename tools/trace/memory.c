/* SPDX-License-Identifier: MIT */
/*
 * memory.c - `vmap-trace replay --memory`: an strace log of a real program's
 * anonymous memory, replayed on a vmap memory space and with real
 * mmap/munmap, side by side.
 *
 * strace.c turns the log into a plan (strace.h); here each round runs the
 * plan twice, each replay in a child process of its own -- so its peak RSS,
 * page faults and system calls are its own -- with a second thread busy
 * writing its own memory throughout, as in the multi-threaded program that
 * was traced (so a munmap or madvise must shoot down that CPU's TLB).  The
 * child measures, prints nothing, and sends its numbers to the parent
 * through a pipe; the parent prints the medians of the rounds.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/perf_event.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <vmap.h>

#include "strace.h"
#include "trace.h"

#define NA UINT64_MAX		/* a measurement this machine does not give */
#define TOUCH_BYTE 0x5a
#define SPACE_LENGTH (64ull << 30)

struct opts {
	const char *log, *json;
	unsigned rounds;
	bool check, attached, plan;
};

/* One replay's numbers, sent from the child to the parent. */
struct result {
	int ok;
	char msg[512];		/* what failed, if !ok */
	uint64_t wall_ns;
	uint64_t step_ns;	/* of it, in steps other than touches */
	uint64_t syscalls;	/* measured (perf, raw_syscalls), or NA */
	uint64_t counted;	/* counted by the replay and vmap_stats */
	uint64_t tlb;		/* TLB shootdowns: the process's (tlb_ipi),
				   or all CPUs' TLB interrupts; or NA */
	bool tlb_ipi;		/* counted by the tlb_flush tracepoint */
	uint64_t minflt;
	uint64_t base_kb, hwm_kb;	/* RSS at the start, peak */
	/* the vmap replay's space, at the end */
	uint64_t purges, release_syscalls, release_path, pool_hits;
	uint64_t lazy_pages, pool_pages;
};

/* One replay in its child: the plan, and where each object is now. */
struct replay {
	const struct mplan *p;
	bool vmap, check;
	vmap_space *space;
	uintptr_t *base;	/* each object's offset 0, in this replay */
	uint64_t *vlen;		/* its vmap area's length (vmap replay) */
	uint64_t *live;		/* its live bytes, by this replay's count */
	uint64_t total_live;
	uint64_t calls;		/* system calls this replay made itself */
	uint64_t step_ns;	/* time in steps other than touches */
	const struct mop *op;	/* the step running, for messages */
	char *err;
};

static int fail(struct replay *r, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int fail(struct replay *r, const char *fmt, ...)
{
	va_list ap;
	int n = snprintf(r->err, 512, "%s:%llu: %s replay, %s step: ",
			 r->p->path, (unsigned long long)r->op->line,
			 r->vmap ? "vmap" : "mmap", mop_name(r->op->kind));

	va_start(ap, fmt);
	vsnprintf(r->err + n, (size_t)(512 - n), fmt, ap);
	va_end(ap);
	return -1;
}

/* ---- the steps ------------------------------------------------------- */

static void touch(struct replay *r, uint32_t obj, uint64_t off, uint64_t len)
{
	for (uint64_t x = off; x < off + len; x += r->p->page)
		*(volatile char *)(r->base[obj] + x) = TOUCH_BYTE;
}

static int sys_ok(struct replay *r, long rc, const char *what)
{
	r->calls++;
	return rc ? fail(r, "%s: %s", what, strerror(errno)) : 0;
}

static int prot_of(int32_t arg)
{
	return arg & (PROT_READ | PROT_WRITE | PROT_EXEC);
}

/* What the vmap area does when pages of its object leave (vact). */
static int vmap_vact(struct replay *r, uint32_t obj, unsigned vact,
		     uint64_t off, uint64_t len, uint64_t vlen)
{
	void *q;

	switch (vact) {
	case VACT_FREE:
		if (vmap_vfree(r->space, (void *)r->base[obj]))
			return fail(r, "vmap_vfree refused the area");
		r->vlen[obj] = 0;
		return 0;
	case VACT_SHRINK:
		q = vmap_vrealloc(r->space, (void *)r->base[obj], vlen);
		if (!q)
			return fail(r, "vmap_vrealloc to %llu: %s",
				    (unsigned long long)vlen, strerror(errno));
		if (r->check && (uintptr_t)q != r->base[obj])
			return fail(r, "vmap_vrealloc moved a shrinking area");
		r->base[obj] = (uintptr_t)q;
		r->vlen[obj] = vlen;
		return 0;
	case VACT_RELEASE:
		return sys_ok(r, madvise((void *)(r->base[obj] + off), len,
					 MADV_DONTNEED), "madvise");
	default:
		return 0;
	}
}

static int vmap_remap(struct replay *r, const struct mop *op)
{
	void *q;

	if (op->obj2 == op->obj) {	/* all of it moves: vrealloc */
		q = vmap_vrealloc(r->space, (void *)r->base[op->obj], op->vlen);
		if (!q)
			return fail(r, "vmap_vrealloc to %llu: %s",
				    (unsigned long long)op->vlen,
				    strerror(errno));
		r->base[op->obj] = (uintptr_t)q;
		r->vlen[op->obj] = op->vlen;
		return 0;
	}
	q = vmap_vmalloc(r->space, op->len2);	/* a piece: a new area */
	if (!q)
		return fail(r, "vmap_vmalloc(%llu): %s",
			    (unsigned long long)op->len2, strerror(errno));
	memcpy(q, (void *)(r->base[op->obj] + op->off),
	       op->len < op->len2 ? op->len : op->len2);
	r->base[op->obj2] = (uintptr_t)q;
	r->vlen[op->obj2] = op->len2;
	return vmap_vact(r, op->obj, op->vact, op->off, op->len, op->vlen);
}

static int vmap_step(struct replay *r, const struct mop *op)
{
	void *at = (void *)(r->base[op->obj] + op->off);
	void *q;

	switch (op->kind) {
	case MOP_MAP:
		q = vmap_vmalloc(r->space, op->len);
		if (!q)
			return fail(r, "vmap_vmalloc(%llu): %s",
				    (unsigned long long)op->len,
				    strerror(errno));
		r->base[op->obj] = (uintptr_t)q;
		r->vlen[op->obj] = op->len;
		return 0;
	case MOP_UNMAP:
		return vmap_vact(r, op->obj, op->vact, op->off, op->len,
				 op->vlen);
	case MOP_ADVISE:
		if (op->vact != VACT_ADVISE)
			return 0;
		return sys_ok(r, madvise(at, op->len, op->arg), "madvise");
	case MOP_FIXED:
		return vmap_vact(r, op->obj, op->vact, op->off, op->len, 0);
	case MOP_REMAP:
		return vmap_remap(r, op);
	default:		/* MOP_PROTECT: vmap memory stays RW */
		return 0;
	}
}

static int mmap_step(struct replay *r, const struct mop *op)
{
	void *at = (void *)(r->base[op->obj] + op->off);
	int anon = MAP_PRIVATE | MAP_ANONYMOUS;
	void *q;

	switch (op->kind) {
	case MOP_MAP:
		q = mmap(NULL, op->len, prot_of(op->arg), anon |
			 (op->flags & MOPF_NORESERVE ? MAP_NORESERVE : 0) |
			 (op->flags & MOPF_STACK ? MAP_STACK : 0), -1, 0);
		r->calls++;
		if (q == MAP_FAILED)
			return fail(r, "mmap(%llu): %s",
				    (unsigned long long)op->len,
				    strerror(errno));
		r->base[op->obj] = (uintptr_t)q;
		return 0;
	case MOP_UNMAP:
		return sys_ok(r, munmap(at, op->len), "munmap");
	case MOP_PROTECT:
		return sys_ok(r, mprotect(at, op->len, prot_of(op->arg)),
			      "mprotect");
	case MOP_ADVISE:	/* advice this kernel lacks is no failure */
		r->calls++;
		madvise(at, op->len, op->arg);
		return 0;
	case MOP_FIXED:
		q = mmap(at, op->len, prot_of(op->arg), anon | MAP_FIXED, -1, 0);
		return sys_ok(r, q == MAP_FAILED ? -1 : 0, "mmap(MAP_FIXED)");
	case MOP_REMAP:
		q = mremap(at, op->len, op->len2, MREMAP_MAYMOVE);
		if (sys_ok(r, q == MAP_FAILED ? -1 : 0, "mremap"))
			return -1;
		r->base[op->obj2] = (uintptr_t)q - (op->obj2 == op->obj ?
						     op->off : 0);
		return 0;
	default:
		return 0;
	}
}

/* ---- --check: the replay's own invariants ---------------------------- */

/* Every unmap matches live memory; live bytes are conserved. */
static int account(struct replay *r, const struct mop *op)
{
	uint64_t gone = 0;

	if (op->kind == MOP_MAP) {
		r->live[op->obj] = op->len;
		r->total_live += op->len;
	} else if (op->kind == MOP_UNMAP) {
		gone = op->len;
	} else if (op->kind == MOP_REMAP) {
		gone = op->len;
		r->live[op->obj2] += op->len2;
		r->total_live += op->len2;
	}
	if (gone > r->live[op->obj])
		return fail(r, "%llu bytes unmapped, but only %llu are live",
			    (unsigned long long)gone,
			    (unsigned long long)r->live[op->obj]);
	r->live[op->obj] -= gone;
	r->total_live -= gone;
	if (r->total_live != op->live || r->live[op->obj] != op->obj_live)
		return fail(r, "live bytes %llu (object %llu), the log says "
			    "%llu (%llu)", (unsigned long long)r->total_live,
			    (unsigned long long)r->live[op->obj],
			    (unsigned long long)op->live,
			    (unsigned long long)op->obj_live);
	return 0;
}

struct span { uintptr_t a, b; };

static int by_start(const void *x, const void *y)
{
	const struct span *s = x, *t = y;

	return s->a < t->a ? -1 : s->a > t->a;
}

/* The vmap areas: each the size the plan says, none overlapping, and the
 * space agreeing on how many there are. */
static int check_areas(struct replay *r)
{
	struct span *s = malloc((r->p->nobj + 1) * sizeof(*s));
	struct vmap_stats st = { .size = sizeof(st) };
	size_t n = 0, sz;
	uint64_t pages = 0;
	int rc = 0;

	if (!s)
		return fail(r, "out of memory");
	for (uint32_t i = 0; i < r->p->nobj && !rc; i++) {
		if (!r->vlen[i])
			continue;
		s[n++] = (struct span){ r->base[i], r->base[i] + r->vlen[i] };
		pages += r->vlen[i] / r->p->page;
		if (vmap_vsize(r->space, (void *)r->base[i], &sz) ||
		    sz != r->vlen[i])
			rc = fail(r, "object %u: vmap area of %zu bytes at %p, "
				  "expected %llu", i, sz, (void *)r->base[i],
				  (unsigned long long)r->vlen[i]);
	}
	qsort(s, n, sizeof(*s), by_start);
	for (size_t i = 1; i < n && !rc; i++)
		if (s[i].a < s[i - 1].b)
			rc = fail(r, "vmap areas overlap at %p", (void *)s[i].a);
	free(s);
	if (!rc && (vmap_stats(r->space, &st) || st.busy_areas != n ||
		    st.busy_pages != pages))
		rc = fail(r, "vmap_stats: %llu busy areas of %llu pages, the "
			  "replay has %zu of %llu",
			  (unsigned long long)st.busy_areas,
			  (unsigned long long)st.busy_pages, n,
			  (unsigned long long)pages);
	if (!rc && vmap_check(r->space))
		rc = fail(r, "vmap_check failed (above)");
	return rc;
}

static int check_step(struct replay *r, const struct mop *op)
{
	if (account(r, op))
		return -1;
	if (op->kind == MOP_REMAP && op->probe != UINT64_MAX &&
	    *(volatile char *)(r->base[op->obj2] + op->probe) != TOUCH_BYTE)
		return fail(r, "the moved memory lost its contents at offset "
			    "%llu", (unsigned long long)op->probe);
	return r->vmap ? check_areas(r) : 0;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int run_plan(struct replay *r)
{
	for (size_t i = 0; i < r->p->nop; i++) {
		const struct mop *op = &r->p->op[i];
		uint64_t t0;

		r->op = op;
		if (op->kind == MOP_TOUCH) {
			touch(r, op->obj, op->off, op->len);
		} else {
			t0 = now_ns();
			if (r->vmap ? vmap_step(r, op) : mmap_step(r, op))
				return -1;
			r->step_ns += now_ns() - t0;
		}
		if (r->check && check_step(r, op))
			return -1;
	}
	return 0;
}

/* ---- measurements ---------------------------------------------------- */

/* TLB shootdowns so far, summed over CPUs; NA without a "TLB:" line. */
static uint64_t tlb_shootdowns(void)
{
	FILE *f = fopen("/proc/interrupts", "r");
	char line[4096];
	uint64_t sum = NA;

	while (f && fgets(line, sizeof(line), f)) {
		char *p = line + strspn(line, " "), *e;

		if (strncmp(p, "TLB:", 4))
			continue;
		for (p += 4, sum = 0;; p = e) {
			unsigned long long v = strtoull(p, &e, 10);

			if (e == p)
				break;
			sum += v;
		}
	}
	if (f)
		fclose(f);
	return sum;
}

static uint64_t status_kb(const char *field)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	size_t n = strlen(field);
	uint64_t kb = 0;

	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, field, n))
			kb = strtoull(line + n, NULL, 10);
	if (f)
		fclose(f);
	return kb;
}

static uint64_t minflt(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (uint64_t)ru.ru_minflt;
}

/* A counter of one kernel tracepoint's events in this process, every
 * thread included (inherited; a thread's count joins when it exits), those
 * the filter passes only; -1 where perf or tracefs is not available. */
static int tracepoint_counter(const char *event, const char *filter)
{
	static const char *const roots[] = { "/sys/kernel/tracing",
					     "/sys/kernel/debug/tracing" };
	struct perf_event_attr a = { .type = PERF_TYPE_TRACEPOINT,
				     .size = sizeof(a), .disabled = 1,
				     .inherit = 1 };
	int fd;

	for (size_t i = 0; i < 2 && !a.config; i++) {
		char path[256];
		FILE *f;
		unsigned long long id;

		snprintf(path, sizeof(path), "%s/events/%s/id", roots[i],
			 event);
		f = fopen(path, "r");
		if (f && fscanf(f, "%llu", &id) == 1)
			a.config = id;
		if (f)
			fclose(f);
	}
	if (!a.config)
		return -1;
	fd = (int)syscall(SYS_perf_event_open, &a, 0, -1, -1, 0);
	if (fd >= 0 && ioctl(fd, PERF_EVENT_IOC_SET_FILTER, filter)) {
		close(fd);
		fd = -1;
	}
	return fd;
}

/* This process's system calls that change mappings (mmap, munmap, mremap,
 * mprotect, madvise, process_madvise, brk): the library's purge thread's
 * too. */
static int syscall_counter(void)
{
	char filter[256];

	snprintf(filter, sizeof(filter),
		 "id == %d || id == %d || id == %d || id == %d || id == %d || "
		 "id == %d || id == %d", SYS_mmap, SYS_munmap, SYS_mremap,
		 SYS_mprotect, SYS_madvise, SYS_brk,
#ifdef SYS_process_madvise
		 SYS_process_madvise
#else
		 440
#endif
		 );
	return tracepoint_counter("raw_syscalls/sys_enter", filter);
}

/* The TLB shootdowns this process started: x86's tlb_flush event with
 * reason TLB_REMOTE_SEND_IPI (4), once per flush that interrupts other
 * CPUs.  /proc/interrupts' TLB line is the fallback, and on some machines
 * (this KVM guest) never moves. */
static int shootdown_counter(void)
{
	return tracepoint_counter("tlb/tlb_flush", "reason == 4");
}

static uint64_t read_counter(int fd)
{
	long long count;

	if (fd >= 0 && read(fd, &count, sizeof(count)) == sizeof(count))
		return (uint64_t)count;
	return NA;
}

/* The second thread: busy on its own memory until told to stop.  The flag
 * is written by the replay thread and read here: an atomic, nothing else
 * is shared. */
static void *busy(void *arg)
{
	atomic_bool *stop = arg;
	static __thread char mem[64 << 10];
	unsigned i = 0;

	while (!atomic_load_explicit(stop, memory_order_relaxed))
		mem[(i++ * 64) % sizeof(mem)]++;
	return NULL;
}

static int make_space(struct replay *r)
{
	struct vmap_config cfg;
	int rc;

	vmap_config_init(&cfg);
	cfg.flags = VMAP_SPACE_MEMORY;
	cfg.page_size = r->p->page;
	cfg.length = SPACE_LENGTH;
	while (cfg.length < 2 * r->p->st.peak_vlen)
		cfg.length *= 2;
	rc = vmap_space_create(&cfg, &r->space);
	r->calls++;		/* the reservation */
	if (rc) {
		snprintf(r->err, 512, "%s: vmap_space_create: %s", r->p->path,
			 vmap_strerror(rc));
		return -1;
	}
	return 0;
}

static void space_numbers(struct replay *r, struct result *res)
{
	struct vmap_stats st = { .size = sizeof(st) };

	if (vmap_stats(r->space, &st))
		return;
	res->counted += st.release_syscalls + st.guard_syscalls +
			st.map_syscalls;
	res->purges = st.purges;
	res->release_syscalls = st.release_syscalls;
	res->release_path = st.release_path;
	res->pool_hits = st.pool_hits;
	res->lazy_pages = st.lazy_pages;
	res->pool_pages = st.pool_pages;
}

/* The timed part: the space (vmap), the plan, with the busy thread on. */
static int measure(struct replay *r, struct result *res, int pfd, int tfd)
{
	uint64_t t0, tlb0, flt0;
	int rc;

	if (pfd >= 0)
		ioctl(pfd, PERF_EVENT_IOC_ENABLE, 0);
	if (tfd >= 0)
		ioctl(tfd, PERF_EVENT_IOC_ENABLE, 0);
	tlb0 = tlb_shootdowns();
	flt0 = minflt();
	t0 = now_ns();
	rc = r->vmap ? make_space(r) : 0;
	if (!rc)
		rc = run_plan(r);
	res->wall_ns = now_ns() - t0;
	res->step_ns = r->step_ns;
	res->minflt = minflt() - flt0;
	res->tlb = tlb0 == NA ? NA : tlb_shootdowns() - tlb0;
	if (pfd >= 0)
		ioctl(pfd, PERF_EVENT_IOC_DISABLE, 0);
	if (tfd >= 0)
		ioctl(tfd, PERF_EVENT_IOC_DISABLE, 0);
	res->hwm_kb = status_kb("VmHWM:");
	return rc;
}

static void replay_child(const struct mplan *p, bool vmap, bool check,
			 struct result *res)
{
	struct replay r = { .p = p, .vmap = vmap, .check = check,
			    .err = res->msg };
	atomic_bool stop = false;
	pthread_t t;
	int pfd, tfd, fd;

	r.base = calloc(p->nobj + 1, sizeof(*r.base));
	r.vlen = calloc(p->nobj + 1, sizeof(*r.vlen));
	r.live = calloc(p->nobj + 1, sizeof(*r.live));
	if (!r.base || !r.vlen || !r.live) {
		snprintf(res->msg, sizeof(res->msg), "out of memory");
		return;
	}
	pfd = syscall_counter();
	tfd = shootdown_counter();
	if (pthread_create(&t, NULL, busy, &stop)) {
		snprintf(res->msg, sizeof(res->msg), "pthread_create failed");
		return;
	}
	/* The peak from here on (clear_refs 5 resets VmHWM to VmRSS). */
	fd = open("/proc/self/clear_refs", O_WRONLY);
	if (fd >= 0) {	/* if it fails: the peak since fork */
		(void)!write(fd, "5", 1);
		close(fd);
	}
	res->base_kb = status_kb("VmRSS:");
	res->ok = !measure(&r, res, pfd, tfd);
	atomic_store(&stop, true);
	pthread_join(t, NULL);
	res->counted = r.calls;
	if (r.space) {
		space_numbers(&r, res);
		vmap_space_destroy(r.space);	/* joins the purge thread */
	}
	res->syscalls = read_counter(pfd);
	/* Shootdowns: this process's own count where the kernel has the
	 * event; else the system-wide TLB interrupts. */
	res->tlb_ipi = read_counter(tfd) != NA;
	if (res->tlb_ipi)
		res->tlb = read_counter(tfd);
	if (pfd >= 0)
		close(pfd);
	if (tfd >= 0)
		close(tfd);
}

/* Run one replay in a child; its result in *res.  -1 if it failed. */
static int run_child(const struct mplan *p, bool vmap, bool check,
		     struct result *res)
{
	int pfd[2], st;
	pid_t pid;
	ssize_t n;

	memset(res, 0, sizeof(*res));
	fflush(NULL);
	if (pipe(pfd)) {
		snprintf(res->msg, sizeof(res->msg), "%s: pipe: %s", p->path,
			 strerror(errno));
		return -1;
	}
	pid = fork();
	if (pid < 0) {
		snprintf(res->msg, sizeof(res->msg), "%s: fork: %s", p->path,
			 strerror(errno));
		close(pfd[0]);
		close(pfd[1]);
		return -1;
	}
	if (!pid) {
		close(pfd[0]);
		replay_child(p, vmap, check, res);
		n = write(pfd[1], res, sizeof(*res));
		_exit(n == sizeof(*res) && res->ok ? 0 : 1);
	}
	close(pfd[1]);
	n = read(pfd[0], res, sizeof(*res));
	close(pfd[0]);
	waitpid(pid, &st, 0);
	if (n != sizeof(*res) && WIFSIGNALED(st))
		snprintf(res->msg, sizeof(res->msg), "%s: the %s replay died "
			 "of signal %d", p->path, vmap ? "vmap" : "mmap",
			 WTERMSIG(st));
	else if (n != sizeof(*res))
		snprintf(res->msg, sizeof(res->msg), "%s: the %s replay sent "
			 "no result", p->path, vmap ? "vmap" : "mmap");
	return n == sizeof(*res) && res->ok ? 0 : -1;
}

/* ---- the report ------------------------------------------------------ */

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* The median of field `off` of n results (NA if any is NA). */
static uint64_t median(const struct result *res, unsigned n, size_t off)
{
	uint64_t v[64];

	for (unsigned i = 0; i < n; i++) {
		memcpy(&v[i], (const char *)&res[i] + off, sizeof(v[i]));
		if (v[i] == NA)
			return NA;
	}
	qsort(v, n, sizeof(v[0]), cmp_u64);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

#define MED(res, n, field) median(res, n, offsetof(struct result, field))

/* The medians of each replay's rounds, as one result. */
static void medians(const struct result *res, unsigned n, struct result *m)
{
	*m = res[0];
	m->wall_ns = MED(res, n, wall_ns);
	m->step_ns = MED(res, n, step_ns);
	m->syscalls = MED(res, n, syscalls);
	m->counted = MED(res, n, counted);
	m->tlb = MED(res, n, tlb);
	m->minflt = MED(res, n, minflt);
	m->base_kb = MED(res, n, base_kb);
	m->hwm_kb = MED(res, n, hwm_kb);
	m->purges = MED(res, n, purges);
	m->release_syscalls = MED(res, n, release_syscalls);
	m->pool_hits = MED(res, n, pool_hits);
}

static void row(const char *name, uint64_t v, uint64_t m, double scale,
		const char *unit)
{
	char a[32], b[32], q[32];

	if (v == NA || m == NA) {
		printf("  %-26s %14s %14s %10s\n", name, "n/a", "n/a", "-");
		return;
	}
	snprintf(a, sizeof(a), scale == 1 ? "%.0f%s" : "%.3f%s", v / scale,
		 unit);
	snprintf(b, sizeof(b), scale == 1 ? "%.0f%s" : "%.3f%s", m / scale,
		 unit);
	if (m)
		snprintf(q, sizeof(q), "%.3f", (double)v / (double)m);
	else
		snprintf(q, sizeof(q), "%s", v ? "inf" : "-");
	printf("  %-26s %14s %14s %10s\n", name, a, b, q);
}

static void print_log(const struct mplan *p, const struct opts *o)
{
	const struct mlog_stats *s = &p->st;

	printf("vmap-trace replay --memory %s\n", p->path);
	printf("  log: %llu lines, %llu threads, %s\n",
	       (unsigned long long)s->lines, (unsigned long long)s->threads,
	       s->from_start ? "from the program's start" :
	       "attached (munmaps of memory never seen are skipped)");
	printf("  calls: mmap %llu anonymous + %llu file + %llu shared "
	       "anonymous, munmap %llu, mremap %llu, mprotect %llu, madvise "
	       "%llu, brk %llu, other %llu\n",
	       (unsigned long long)s->mmap_anon, (unsigned long long)s->mmap_file,
	       (unsigned long long)s->mmap_shared_anon,
	       (unsigned long long)s->munmap, (unsigned long long)s->mremap,
	       (unsigned long long)s->mprotect, (unsigned long long)s->madvise,
	       (unsigned long long)s->brk, (unsigned long long)s->other);
	printf("  skipped: %llu failed, %llu interrupted by an exit, %llu on "
	       "memory never seen mapped, %llu on file mappings only\n",
	       (unsigned long long)s->failed, (unsigned long long)s->interrupted,
	       (unsigned long long)s->unknown,
	       (unsigned long long)s->file_calls);
	printf("  plan: %llu anonymous mappings, %zu steps, %llu pages touched;"
	       " at most %.1f MiB mapped at once\n",
	       (unsigned long long)s->objects, p->nop,
	       (unsigned long long)s->touched_pages, s->peak_live / 1048576.0);
	printf("  vmap: %llu partial unmaps kept (head or middle), %llu tails "
	       "cut by vmap_vrealloc, %llu mremaps (%llu of a piece), %llu "
	       "mprotects and %llu madvises not done on vmap memory\n",
	       (unsigned long long)s->kept, (unsigned long long)s->shrinks,
	       (unsigned long long)s->remaps,
	       (unsigned long long)s->remap_splits,
	       (unsigned long long)s->protect_steps,
	       (unsigned long long)s->advise_skipped);
	printf("  %u round%s each, medians; a second thread busy in each "
	       "replay's process%s\n\n", o->rounds, o->rounds == 1 ? "" : "s",
	       o->check ? "; --check: times include the checks" : "");
}

static void print_table(const struct result *v, const struct result *m)
{
	printf("  %-26s %14s %14s %10s\n", "", "vmap", "mmap", "vmap/mmap");
	row("wall time", v->wall_ns, m->wall_ns, 1e6, " ms");
	row("  in mapping steps", v->step_ns, m->step_ns, 1e6, " ms");
	row("  touching memory", v->wall_ns - v->step_ns,
	    m->wall_ns - m->step_ns, 1e6, " ms");
	if (v->syscalls != NA)
		row("mapping system calls", v->syscalls, m->syscalls, 1, "");
	else
		row("mapping system calls (*)", v->counted, m->counted, 1, "");
	row(v->tlb_ipi ? "TLB shootdowns (IPIs sent)" : "TLB shootdowns",
	    v->tlb, m->tlb, 1, "");
	row("page faults", v->minflt, m->minflt, 1, "");
	row("peak RSS", v->hwm_kb, m->hwm_kb, 1024, " MiB");
	row("peak RSS above the start", v->hwm_kb - v->base_kb,
	    m->hwm_kb - m->base_kb, 1024, " MiB");
	printf("\n  vmap space: %llu purges, %llu release system calls (%s), "
	       "%llu vmallocs from the warm pool; at the end %llu pages lazy,"
	       " %llu warm\n", (unsigned long long)v->purges,
	       (unsigned long long)v->release_syscalls,
	       v->release_path == VMAP_RELEASE_PROCESS_MADVISE ?
	       "process_madvise" : "madvise",
	       (unsigned long long)v->pool_hits,
	       (unsigned long long)v->lazy_pages,
	       (unsigned long long)v->pool_pages);
	if (v->syscalls == NA)
		printf("  (*) counted by the replays and vmap_stats: the "
		       "kernel's raw_syscalls tracepoint is not available\n");
	if (v->tlb_ipi)
		printf("  TLB shootdowns: flushes that interrupted other CPUs, "
		       "counted by the kernel's tlb:tlb_flush event (reason "
		       "\"remote IPI send\") in each replay's process\n");
	else if (m->tlb == 0 && m->counted > 1)
		printf("  TLB: this kernel counted no shootdown interrupt: "
		       "remote flushes here are not IPIs (a hypervisor's "
		       "flush, or broadcast invalidation)\n");
}

/* A JSON string: the path may hold quotes, backslashes, anything. */
static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			fprintf(f, "\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			fprintf(f, "\\u%04x", (unsigned char)*s);
		else
			fputc(*s, f);
	}
	fputc('"', f);
}

static void json_result(FILE *f, const char *name, const struct result *r,
			const struct result *all, unsigned n)
{
	fprintf(f, "  \"%s\": {\"wall_ns\": %llu, \"step_ns\": %llu, "
		"\"syscalls\": ", name, (unsigned long long)r->wall_ns,
		(unsigned long long)r->step_ns);
	if (r->syscalls == NA)
		fprintf(f, "null");
	else
		fprintf(f, "%llu", (unsigned long long)r->syscalls);
	fprintf(f, ", \"syscalls_counted\": %llu, \"tlb_shootdowns\": ",
		(unsigned long long)r->counted);
	if (r->tlb == NA)
		fprintf(f, "null");
	else
		fprintf(f, "%llu", (unsigned long long)r->tlb);
	fprintf(f, ", \"minor_faults\": %llu, \"rss_start_kb\": %llu, "
		"\"peak_rss_kb\": %llu, \"purges\": %llu, "
		"\"release_syscalls\": %llu, \"pool_hits\": %llu, "
		"\"wall_ns_rounds\": [", (unsigned long long)r->minflt,
		(unsigned long long)r->base_kb, (unsigned long long)r->hwm_kb,
		(unsigned long long)r->purges,
		(unsigned long long)r->release_syscalls,
		(unsigned long long)r->pool_hits);
	for (unsigned i = 0; i < n; i++)
		fprintf(f, "%s%llu", i ? ", " : "",
			(unsigned long long)all[i].wall_ns);
	fprintf(f, "]}");
}

static void write_json(FILE *f, const struct opts *o, const struct mplan *p,
		       const struct result *v, const struct result *m,
		       const struct result *vs, const struct result *ms)
{
	const struct mlog_stats *s = &p->st;

	fprintf(f, "{\n  \"log\": ");
	json_str(f, p->path);
	fprintf(f, ",\n  \"rounds\": %u,\n  \"check\": "
		"%s,\n  \"lines\": %llu, \"threads\": %llu, \"from_start\": %s,"
		"\n  \"mmap_anon\": %llu, \"mmap_file\": %llu, \"munmap\": %llu,"
		" \"mremap\": %llu, \"mprotect\": %llu, \"madvise\": %llu,\n"
		"  \"objects\": %llu, \"steps\": %zu, \"touched_pages\": %llu, "
		"\"peak_live_bytes\": %llu, \"kept\": %llu, \"shrinks\": %llu,\n",
		o->rounds, o->check ? "true" : "false",
		(unsigned long long)s->lines, (unsigned long long)s->threads,
		s->from_start ? "true" : "false",
		(unsigned long long)s->mmap_anon,
		(unsigned long long)s->mmap_file, (unsigned long long)s->munmap,
		(unsigned long long)s->mremap, (unsigned long long)s->mprotect,
		(unsigned long long)s->madvise, (unsigned long long)s->objects,
		p->nop, (unsigned long long)s->touched_pages,
		(unsigned long long)s->peak_live, (unsigned long long)s->kept,
		(unsigned long long)s->shrinks);
	json_result(f, "vmap", v, vs, o->rounds);
	fprintf(f, ",\n");
	json_result(f, "mmap", m, ms, o->rounds);
	fprintf(f, "\n}\n");
}

/* One line per step: what the log became (--plan). */
static void print_plan(const struct mplan *p)
{
	static const char *const vact[] = { "", "vfree", "vrealloc-shrink",
					    "keep", "keep+dontneed",
					    "madvise" };

	printf("# line step obj offset length [new-length obj2] vmap: "
	       "action area-length; live bytes\n");
	for (size_t i = 0; i < p->nop; i++) {
		const struct mop *op = &p->op[i];

		printf("%llu %s %u %#llx %#llx", (unsigned long long)op->line,
		       mop_name(op->kind), op->obj,
		       (unsigned long long)op->off,
		       (unsigned long long)op->len);
		if (op->kind == MOP_REMAP)
			printf(" %#llx %u", (unsigned long long)op->len2,
			       op->obj2);
		if (op->kind == MOP_PROTECT || op->kind == MOP_ADVISE ||
		    op->kind == MOP_MAP || op->kind == MOP_FIXED)
			printf(" arg=%d", op->arg);
		if (op->flags & MOPF_IMPLICIT)
			printf(" implicit");
		printf(" vmap: %s %#llx; live %llu\n", vact[op->vact],
		       (unsigned long long)op->vlen,
		       (unsigned long long)op->live);
	}
}

/* ---- the command ----------------------------------------------------- */

static int usage(void)
{
	fprintf(stderr,
		"usage: vmap-trace replay --memory [--rounds N] [--check] "
		"[--attached] [--json FILE] [--plan]\n"
		"                                   STRACE-LOG\n"
		"  STRACE-LOG  from strace -f [-tt|-ttt|-r] -e trace=memory "
		"-o STRACE-LOG COMMAND\n"
		"  --rounds N  replay each way N times (default 3, with --check"
		" 1), report medians\n"
		"  --check     check the replays' invariants and vmap_check() "
		"after every step\n"
		"  --attached  the log did not start with the program: skip "
		"munmaps of memory never seen mapped\n"
		"  --json FILE write the results to FILE\n"
		"  --plan      print the plan the log became, replay nothing\n");
	return 2;
}

static int parse_opts(int argc, char **argv, struct opts *o)
{
	memset(o, 0, sizeof(*o));
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		char *end;

		if (!strcmp(a, "--memory"))
			continue;
		if (!strcmp(a, "--check"))
			o->check = true;
		else if (!strcmp(a, "--attached"))
			o->attached = true;
		else if (!strcmp(a, "--plan"))
			o->plan = true;
		else if (!strcmp(a, "--json") && i + 1 < argc)
			o->json = argv[++i];
		else if (!strcmp(a, "--rounds") && i + 1 < argc) {
			unsigned long n = strtoul(argv[++i], &end, 10);

			if (*end || !n || n > 64)
				return usage();
			o->rounds = (unsigned)n;
		} else if (a[0] == '-' || o->log)
			return usage();
		else
			o->log = a;
	}
	if (!o->log)
		return usage();
	if (!o->rounds)
		o->rounds = o->check ? 1 : 3;
	return 0;
}

/* Both replays, o->rounds times, alternating which goes first so neither
 * always gets the warmer machine.  -1 (reported) if one failed. */
static int run_rounds(const struct mplan *p, const struct opts *o,
		      struct result *vs, struct result *ms)
{
	for (unsigned i = 0; i < 2 * o->rounds; i++) {
		bool vmap = !((i ^ (i >> 1)) & 1);	/* vm, mv, vm, ... */
		struct result *res = vmap ? &vs[i / 2] : &ms[i / 2];

		if (run_child(p, vmap, o->check, res)) {
			fprintf(stderr, "%s\n", res->msg[0] ? res->msg :
				"replay failed");
			return -1;
		}
	}
	return 0;
}

int memory_main(int argc, char **argv)
{
	struct result vs[64], ms[64], v, m;
	struct outfile json = { 0 };
	struct mplan p;
	struct opts o;
	int rc;

	rc = parse_opts(argc, argv, &o);
	if (rc)
		return rc;
	/* A path that cannot be written fails now, not after the replays;
	 * nothing is left there unless everything succeeds. */
	if (o.json && out_open(&json, o.json, 0644)) {
		fprintf(stderr, "vmap-trace replay: %s: %s\n", o.json,
			strerror(errno));
		return 1;
	}
	rc = mplan_read(o.log, &(struct mplan_opts){ o.attached, o.check },
			&p) ? -1 : 0;
	if (!rc && o.plan) {
		print_plan(&p);
	} else if (!rc && !(rc = run_rounds(&p, &o, vs, ms))) {
		medians(vs, o.rounds, &v);
		medians(ms, o.rounds, &m);
		if (o.json && out_file(&json))
			write_json(out_file(&json), &o, &p, &v, &m, vs, ms);
		if (o.json && out_commit(&json)) {
			fprintf(stderr, "vmap-trace replay: %s: %s\n", o.json,
				strerror(errno));
			rc = -1;
		}
	}
	if (!rc && !o.plan) {
		print_log(&p, &o);
		print_table(&v, &m);
	}
	if (!rc && (fflush(stdout) || ferror(stdout))) {
		fprintf(stderr, "vmap-trace replay: writing the table: %s\n",
			strerror(errno));
		rc = -1;
	}
	if (o.json)
		out_abort(&json);
	mplan_free(&p);		/* idempotent: a failed read freed it */
	return rc ? 1 : 0;
}
