/* SPDX-License-Identifier: MIT */
/*
 * memory_test.c - memory spaces on real memory, through vmap.h alone:
 * zeroed reuse, data gone after the purge and never seen before it, strict
 * mode, batched release, guard pages, vmap of memfd pages, bad inputs, and
 * threads writing their own memory.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "vmap.h"
#include "test.h"

#define PG 4096u

static vmap_space *mspace(uint64_t length, uint64_t lazy_max, unsigned flags)
{
	struct vmap_config c;
	vmap_space *s = NULL;

	vmap_config_init(&c);
	/* No purge thread unless asked (MSPACE_PURGER): these tests look at
	 * the space between calls, and its timer would change it.  The
	 * threaded test runs with one, and purger_test tests it. */
	c.flags = VMAP_SPACE_MEMORY | flags;
	if (!(flags & VMAP_SPACE_PURGER))
		c.flags |= VMAP_SPACE_NOPURGER;
	c.length = length;
	c.lazy_max_pages = lazy_max;
	REQUIRE(vmap_space_create(&c, &s) == 0);
	return s;
}

static int all_zero(const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return 0;
	return 1;
}

static void test_release_path(void)
{
	vmap_space *s = mspace(0, 0, 0);
	struct vmap_stats st = test_stats(s);

	/* Linux >= 6.13 takes process_madvise(MADV_DONTNEED) on ourselves. */
	printf("memory_test: release path %s\n",
	       st.release_path == VMAP_RELEASE_PROCESS_MADVISE ?
		       "process_madvise" : "madvise");
	CHECK(st.release_path == VMAP_RELEASE_PROCESS_MADVISE ||
	      st.release_path == VMAP_RELEASE_MADVISE);
	CHECK_EQ(st.total_pages, VMAP_MEMORY_DEFAULT_LENGTH / PG);
	vmap_space_destroy(s);
}

/* Written, freed, purged: the pages read zero, and a new owner sees zero. */
static void test_zero_after_purge(void)
{
	vmap_space *s = mspace(64 * PG, 1000, VMAP_SPACE_NOPOOL);
	unsigned char *a = vmap_vmalloc(s, 4 * PG), *b, *z;

	REQUIRE(a);
	CHECK(all_zero(a, 4 * PG));
	memset(a, 0xa5, 4 * PG);
	CHECK_EQ(vmap_vfree(s, a), 0);
	/* Lazy: still mapped, still the old bytes (the documented window). */
	CHECK_EQ(a[0], 0xa5);
	/* Not reused before the purge: a new area is elsewhere, and zero. */
	b = vmap_vmalloc(s, 4 * PG);
	REQUIRE(b);
	CHECK(b != a);
	CHECK(all_zero(b, 4 * PG));
	CHECK_EQ(vmap_purge(s, VMAP_PURGE_SYNC), 0);
	CHECK(all_zero(a, 4 * PG)); /* released: the data is gone */
	/* Fill the whole space, so the old range must come back, zeroed. */
	memset(b, 0x5a, 4 * PG);
	CHECK_EQ(vmap_vfree(s, b), 0);
	CHECK_EQ(vmap_purge(s, VMAP_PURGE_SYNC), 0);
	z = vmap_vzalloc(s, 64 * PG);
	REQUIRE(z);
	CHECK(all_zero(z, 64 * PG));
	CHECK_EQ(vmap_vfree(s, z), 0);
	CHECK_EQ(vmap_check(s), 0);
	vmap_space_destroy(s);
}

/* A space too small for a second area: the allocation purges and reuses. */
static void test_reuse_after_purge(void)
{
	vmap_space *s = mspace(8 * PG, 1000, VMAP_SPACE_NOPOOL);
	unsigned char *a = vmap_vmalloc(s, 8 * PG), *b;

	REQUIRE(a);
	memset(a, 0xff, 8 * PG);
	vmap_vfree(s, a);
	b = vmap_vzalloc(s, 8 * PG);
	CHECK(b == a);
	CHECK(b && all_zero(b, 8 * PG));
	CHECK_EQ(test_stats(s).purge_retries, 1);
	vmap_space_destroy(s);
}

static void test_strict(void)
{
	vmap_space *s = mspace(64 * PG, 1000, VMAP_SPACE_STRICT);
	unsigned char *a = vmap_vmalloc(s, 2 * PG);

	REQUIRE(a);
	memset(a, 1, 2 * PG);
	CHECK_EQ(vmap_vfree(s, a), 0);
	CHECK(all_zero(a, 2 * PG)); /* released at once */
	CHECK_EQ(test_stats(s).purges, 1);
	CHECK_EQ(test_stats(s).lazy_pages, 0);
	vmap_space_destroy(s);
}

/* 3000 scattered areas go back in ceil(3000 / 1024) vectored calls. */
static void test_batching(void)
{
	vmap_space *s = mspace(8192 * PG, 100000, 0);
	static char *p[6000];
	struct vmap_stats st;

	for (int i = 0; i < 6000; i++) {
		p[i] = vmap_vmalloc(s, PG);
		REQUIRE(p[i]);
		p[i][0] = 1;
	}
	for (int i = 0; i < 6000; i += 2)
		vmap_vfree(s, p[i]);
	vmap_purge(s, VMAP_PURGE_SYNC);
	st = test_stats(s);
	CHECK_EQ(st.ranges_flushed, 3000);
	if (st.release_path == VMAP_RELEASE_PROCESS_MADVISE)
		CHECK_EQ(st.release_syscalls, 3);
	else
		CHECK_EQ(st.release_syscalls, 3000);
	CHECK_EQ(st.release_errors, 0);
	for (int i = 0; i < 6000; i++)
		CHECK_EQ(p[i][0], i % 2 ? 1 : 0);
	vmap_space_destroy(s);
}

static void test_bad_inputs(void)
{
	vmap_space *s = mspace(64 * PG, 1000, 0), *r = NULL;
	struct vmap_config c;
	char *a = vmap_vmalloc(s, 2 * PG), *m = malloc(16);
	struct vmap_stats before, after;

	REQUIRE(a && m);
	before = test_stats(s);
	errno = 0;
	CHECK(vmap_vmalloc(s, 0) == NULL && errno == EINVAL);
	CHECK(vmap_vmalloc(s, SIZE_MAX) == NULL && errno == EINVAL);
	CHECK(vmap_vmalloc(NULL, PG) == NULL && errno == EINVAL);
	CHECK_EQ(vmap_vfree(s, m), -ENOENT);	   /* a malloc pointer */
	CHECK_EQ(vmap_vfree(s, a + PG), -ENOENT); /* inside an area */
	CHECK_EQ(vmap_vfree(s, a + 1), -ENOENT);
	CHECK_EQ(vmap_vfree(NULL, a), -EINVAL);
	CHECK_EQ(vmap_vfree(s, NULL), 0);
	after = test_stats(s);
	CHECK(memcmp(&before, &after, sizeof(before)) == 0);
	CHECK_EQ(vmap_vfree(s, a), 0);
	CHECK_EQ(vmap_vfree(s, a), -ENOENT); /* double free */
	CHECK_EQ(vmap_check(s), 0);
	/* A memory space's size too big for the machine fails cleanly. */
	CHECK(vmap_vmalloc(s, 65 * PG) == NULL && errno == ENOSPC);

	vmap_config_init(&c);
	c.flags = VMAP_SPACE_MEMORY | VMAP_SPACE_NOPURGER;
	c.base = 1 << 20; /* the library picks the address */
	CHECK_EQ(vmap_space_create(&c, &r), -EINVAL);
	c.base = 0;
	c.page_size = 2 * PG;
	CHECK_EQ(vmap_space_create(&c, &r), -EINVAL);
	c.page_size = PG;
	c.flush_ctx = &c; /* the library's own release is the flush */
	CHECK_EQ(vmap_space_create(&c, &r), -EINVAL);
	c.flush_ctx = NULL;
	c.length = 1ull << 62; /* no such reservation */
	CHECK_EQ(vmap_space_create(&c, &r), -ENOMEM);
	CHECK(r == NULL);
	/* vmalloc on a range space. */
	vmap_config_init(&c);
	c.length = 16 * PG;
	REQUIRE(vmap_space_create(&c, &r) == 0);
	CHECK(vmap_vmalloc(r, PG) == NULL && errno == EINVAL);
	CHECK_EQ(vmap_vfree(r, (void *)16), -EINVAL);
	vmap_space_destroy(r);
	free(m);
	vmap_space_destroy(s);
}

/* Run fn(arg) in a forked child; return the signal that killed it, or 0. */
static int child_signal(void (*fn)(void *), void *arg)
{
	int status;
	pid_t pid = fork();

	REQUIRE(pid >= 0);
	if (pid == 0) {
		signal(SIGSEGV, SIG_DFL); /* not a sanitizer's handler */
		fn(arg);
		_exit(0);
	}
	REQUIRE(waitpid(pid, &status, 0) == pid);
	return WIFSIGNALED(status) ? WTERMSIG(status) : 0;
}

static void poke(void *p)
{
	*(volatile char *)p = 1;
}

/*
 *   AAAA g BB g ........     two areas, each with its guard page g:
 *   a write one byte past A's end faults; after free and purge, the guard
 *   pages are plain pages again and a new owner can use them.
 */
static void test_guard(void)
{
	vmap_space *s = mspace(16 * PG, 1000, VMAP_SPACE_GUARD);
	char *a = vmap_vmalloc(s, 4 * PG), *b = vmap_vmalloc(s, 2 * PG), *all;
	struct vmap_stats st = test_stats(s);

	REQUIRE(a && b);
	CHECK(b == a + 5 * PG);
	CHECK_EQ(st.busy_pages, 8);
	CHECK_EQ(st.guard_syscalls, 2);
	memset(a, 1, 4 * PG);
	CHECK_EQ(child_signal(poke, a + 4 * PG - 1), 0);
	CHECK_EQ(child_signal(poke, a + 4 * PG), SIGSEGV);
	CHECK_EQ(child_signal(poke, b + 2 * PG), SIGSEGV);
	CHECK_EQ(vmap_vfree(s, a), 0);
	CHECK_EQ(vmap_vfree(s, b), 0);
	CHECK_EQ(vmap_purge(s, VMAP_PURGE_SYNC), 0);
	st = test_stats(s);
	CHECK_EQ(st.free_pages, 16);
	/* 15 usable pages + guard: the old guards are inside, and writable. */
	all = vmap_vzalloc(s, 15 * PG);
	REQUIRE(all);
	CHECK(all_zero((unsigned char *)all, 15 * PG));
	CHECK_EQ(child_signal(poke, all + 5 * PG - 1), 0);
	CHECK_EQ(child_signal(poke, all + 15 * PG), SIGSEGV);
	vmap_vfree(s, all);
	CHECK_EQ(vmap_check(s), 0);
	vmap_space_destroy(s);
}

/*
 * Fixed addresses in a memory space with guard pages (16 pages):
 *   a warm area in the way is lazy (-EAGAIN) until a purge releases it; an
 *   area at a fixed address gets its guard page and is freed by vmap_vfree;
 *   a reservation has no guard, is refused by vmap_vfree, and its written
 *   pages are released when it is unreserved.
 */
static void test_alloc_at(void)
{
	vmap_space *s = mspace(16 * PG, 1000, VMAP_SPACE_GUARD);
	char *a = vmap_vmalloc(s, 2 * PG), *base = a;
	int st = -1;

	REQUIRE(a);
	CHECK_EQ(vmap_vfree(s, a), 0);
	CHECK_EQ(test_stats(s).pool_areas, 1);
	CHECK_EQ(vmap_range_state(s, (uintptr_t)a, 3 * PG, &st), 0);
	CHECK_EQ(st, VMAP_RANGE_LAZY);
	CHECK_EQ(vmap_alloc_at(s, (uintptr_t)a + PG, PG, 0), -EAGAIN);
	CHECK_EQ(vmap_alloc_at(s, (uintptr_t)a + PG, PG, VMAP_AT_PURGE), 0);
	CHECK_EQ(test_stats(s).pool_areas, 0);
	CHECK_EQ(test_stats(s).busy_pages, 2);
	memset(a + PG, 3, PG);
	CHECK_EQ(child_signal(poke, a + 2 * PG), SIGSEGV);
	/* Guarded: the last page of a 16-page space cannot start an area. */
	CHECK_EQ(vmap_alloc_at(s, (uintptr_t)base + 15 * PG, PG, 0), -ERANGE);
	CHECK_EQ(vmap_reserve(s, (uintptr_t)base + 15 * PG, PG, 0), 0);
	CHECK_EQ(vmap_reserve(s, (uintptr_t)base + 8 * PG, 4 * PG, 0), 0);
	CHECK_EQ(test_stats(s).busy_pages, 7);
	CHECK_EQ(vmap_vfree(s, base + 8 * PG), -EPERM);
	CHECK_EQ(vmap_unreserve(s, (uintptr_t)a + PG), -EPERM);
	memset(base + 8 * PG, 5, 4 * PG);
	CHECK_EQ(vmap_unreserve(s, (uintptr_t)base + 8 * PG), 0);
	CHECK_EQ(vmap_unreserve(s, (uintptr_t)base + 15 * PG), 0);
	CHECK_EQ(vmap_vfree(s, a + PG), 0);
	CHECK_EQ(vmap_purge(s, VMAP_PURGE_SYNC), 0);
	CHECK_EQ(test_stats(s).free_pages, 16);
	CHECK(all_zero((unsigned char *)base, 16 * PG));
	CHECK_EQ(vmap_check(s), 0);
	vmap_space_destroy(s);
}

static void fill(char *p, size_t n, char seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (char)(seed + i / PG + i % 251);
}

static int same(const char *p, size_t n, char seed)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != (char)(seed + i / PG + i % 251))
			return 0;
	return 1;
}

/*
 * vmap_vrealloc in a guarded space (64 pages, no pool: the lazy pages show):
 *   A(4)g ......   grow to 8 in place: the same pointer, contents kept, the
 *                  guard moved up (the old guard page is plain memory now);
 *   A(2)g +++++    shrink to 2: the tail, old guard and all, is lazy;
 *   A(2)g B(1)g    grow A to 20 with B after it: moved (pages, not bytes:
 *                  20 > 16), contents kept, the old area freed;
 * then the queries, size 0, NULL, and what it refuses.
 */
static void test_vrealloc(void)
{
	vmap_space *s = mspace(64 * PG, 1000,
			       VMAP_SPACE_GUARD | VMAP_SPACE_NOPOOL);
	char *a = vmap_vmalloc(s, 4 * PG), *b, *c, *p;
	uint64_t base = 0, len = 0;
	size_t size = 0;
	struct vmap_stats st;

	REQUIRE(a);
	fill(a, 4 * PG, 1);
	CHECK(vmap_vrealloc(s, a, 8 * PG) == a);
	CHECK(same(a, 4 * PG, 1));
	CHECK_EQ(vmap_vsize(s, a, &size), 0);
	CHECK_EQ(size, 8 * PG);
	CHECK_EQ(child_signal(poke, a + 4 * PG), 0);
	CHECK_EQ(child_signal(poke, a + 8 * PG - 1), 0);
	CHECK_EQ(child_signal(poke, a + 8 * PG), SIGSEGV);
	CHECK_EQ(test_stats(s).busy_pages, 9);
	CHECK_EQ(vmap_check(s), 0);

	CHECK(vmap_vrealloc(s, a, 2 * PG - 5) == a);
	CHECK(same(a, 2 * PG, 1));
	CHECK_EQ(child_signal(poke, a + 2 * PG), SIGSEGV);
	st = test_stats(s);
	CHECK_EQ(st.busy_pages, 3);
	CHECK_EQ(st.lazy_pages, 6);
	CHECK_EQ(vmap_check(s), 0);
	CHECK_EQ(vmap_purge(s, VMAP_PURGE_SYNC), 0);
	CHECK_EQ(vmap_check(s), 0);

	b = vmap_vmalloc(s, PG);
	REQUIRE(b == a + 3 * PG);
	fill(a, 2 * PG, 7);
	p = vmap_vrealloc(s, a, 20 * PG);
	REQUIRE(p && p != a);
	CHECK(same(p, 2 * PG, 7));
	CHECK_EQ(child_signal(poke, p + 20 * PG), SIGSEGV);
	CHECK_EQ(vmap_vfree(s, a), -ENOENT); /* freed by the move */
	fill(p, 20 * PG, 9);
	/* Moved again, by pages this time (20 >= 16). */
	c = vmap_vmalloc(s, PG);
	REQUIRE(c);
	a = vmap_vrealloc(s, p, 30 * PG);
	REQUIRE(a && a != p);
	CHECK(same(a, 20 * PG, 9));
	CHECK_EQ(vmap_check(s), 0);
	CHECK_EQ(vmap_purge(s, VMAP_PURGE_SYNC), 0);
	CHECK_EQ(vmap_check(s), 0); /* the moved ranges remapped, no holes */

	/* Queries. */
	CHECK(vmap_owns(s, a));
	CHECK(vmap_owns(s, a + 5));
	CHECK(!vmap_owns(s, &size));
	CHECK(!vmap_owns(NULL, a));
	CHECK_EQ(vmap_space_range(s, &base, &len), 0);
	CHECK_EQ(len, 64 * PG);
	CHECK(base <= (uintptr_t)a && (uintptr_t)a < base + len);
	CHECK_EQ(vmap_space_range(s, NULL, &len), -EINVAL);
	size = 7;
	CHECK_EQ(vmap_vsize(s, a + PG, &size), -ENOENT);
	CHECK_EQ(size, 7);
	CHECK_EQ(vmap_vsize(NULL, a, &size), -EINVAL);

	/* Refused: nothing changed. */
	errno = 0;
	CHECK(vmap_vrealloc(s, a + PG, 2 * PG) == NULL);
	CHECK_EQ(errno, ENOENT);
	CHECK(vmap_vrealloc(NULL, a, 2 * PG) == NULL);
	CHECK_EQ(errno, EINVAL);
	CHECK(vmap_vrealloc(s, a, SIZE_MAX) == NULL);
	CHECK_EQ(errno, EINVAL);
	CHECK_EQ(vmap_vprotect(s, c, PROT_READ), 0);
	CHECK(vmap_vrealloc(s, c, 2 * PG) == NULL);
	CHECK_EQ(errno, EINVAL);
	CHECK_EQ(vmap_vsize(s, a, &size), 0);
	CHECK_EQ(size, 30 * PG);

	/* NULL allocates; 0 frees. */
	p = vmap_vrealloc(s, NULL, PG);
	REQUIRE(p);
	CHECK(vmap_vrealloc(s, p, 0) == NULL);
	CHECK_EQ(vmap_vfree(s, p), -ENOENT);
	CHECK_EQ(vmap_vfree(s, a), 0);
	CHECK_EQ(vmap_vfree(s, b), 0);
	CHECK_EQ(vmap_vfree(s, c), 0);
	CHECK_EQ(vmap_purge(s, VMAP_PURGE_SYNC), 0);
	CHECK_EQ(test_stats(s).free_pages, 64);
	CHECK_EQ(vmap_check(s), 0);
	vmap_space_destroy(s);
}

/*
 *   AA g ...  [ p d d _ _ ... ]    A with its guard, and a vmap block whose
 *                                  freed pieces d are dirty
 * vmap_unmap_aliases flushes A and the block's dirty range in one batch, the
 * dirty range last by address.  A's guard must go all the same (it once
 * stayed when the batch ended in a dirty range): a new owner of A's range
 * writes where the guard was.
 */
static void test_guard_before_dirty(void)
{
	vmap_space *s = mspace(4096 * PG, 1000, VMAP_SPACE_GUARD);
	char *a = vmap_vmalloc(s, 2 * PG), *all;
	uint64_t p, q;

	REQUIRE(a);
	REQUIRE(vmap_ram_alloc(s, PG, &p) == 0);
	REQUIRE(vmap_ram_alloc(s, PG, &q) == 0);
	CHECK(p > (uint64_t)(uintptr_t)a);
	CHECK_EQ(vmap_ram_free(s, q, PG), 0);
	CHECK_EQ(vmap_vfree(s, a), 0);
	CHECK_EQ(vmap_unmap_aliases(s), 0);
	all = vmap_vmalloc(s, 3 * PG);
	REQUIRE(all == a);
	CHECK_EQ(child_signal(poke, all + 2 * PG), 0);
	CHECK_EQ(vmap_vfree(s, all), 0);
	CHECK_EQ(vmap_ram_free(s, p, PG), 0);
	CHECK_EQ(vmap_check(s), 0);
	vmap_space_destroy(s);
}

/*
 *   [ d p d _ _ ... ]    a vmap block of a memory space: a live piece p
 *                        between two freed ones d
 * vmap_unmap_aliases must not release the dirty range d p d whole: p's data
 * would read as zero.  It stays until the block's own purge.
 */
static void test_aliases_keep_live_pieces(void)
{
	vmap_space *s = mspace(4096 * PG, 1000, 0);
	uint64_t p[3];

	for (int i = 0; i < 3; i++)
		REQUIRE(vmap_ram_alloc(s, PG, &p[i]) == 0);
	memset((void *)(uintptr_t)p[1], 0x55, PG);
	CHECK_EQ(vmap_ram_free(s, p[0], PG), 0);
	CHECK_EQ(vmap_ram_free(s, p[2], PG), 0);
	CHECK_EQ(vmap_unmap_aliases(s), 0);
	CHECK_EQ(*(volatile unsigned char *)(uintptr_t)(p[1] + PG - 1), 0x55);
	CHECK_EQ(vmap_ram_free(s, p[1], PG), 0);
	CHECK_EQ(vmap_check(s), 0);
	vmap_space_destroy(s);
}

/* Does /proc/self/maps show a file mapping at addr? */
static int file_mapped(const void *addr)
{
	FILE *f = fopen("/proc/self/maps", "r");
	char line[512];
	int found = 0;

	REQUIRE(f);
	while (fgets(line, sizeof(line), f)) {
		unsigned long lo, hi;

		if (sscanf(line, "%lx-%lx", &lo, &hi) == 2 &&
		    lo <= (unsigned long)addr && (unsigned long)addr < hi)
			found = strstr(line, "memfd:") != NULL;
	}
	fclose(f);
	return found;
}

/*
 *   file pages   0 1 2 3 4 5 6 7
 *   vmap         5 6 7 1 0          three runs: {5,6,7} {1} {0}
 */
static void test_vmap(void)
{
	vmap_space *s = mspace(64 * PG, 1000, 0);
	static const uint64_t pg[] = { 5, 6, 7, 1, 0 };
	char page[PG], *v;
	int fd;

	REQUIRE(vmap_memfd_create("vmap-test", 8, &fd) == 0);
	for (int i = 0; i < 8; i++) {
		memset(page, 'A' + i, PG);
		REQUIRE(pwrite(fd, page, PG, (off_t)i * PG) == PG);
	}
	v = vmap_vmap(s, fd, pg, 5, PROT_READ | PROT_WRITE);
	REQUIRE(v);
	for (int i = 0; i < 5; i++)
		CHECK_EQ(v[i * PG + 7], 'A' + (int)pg[i]);
	CHECK_EQ(test_stats(s).map_syscalls, 3);
	v[3 * PG] = 'z'; /* file page 1 */
	REQUIRE(pread(fd, page, 1, PG) == 1);
	CHECK_EQ(page[0], 'z');
	CHECK(file_mapped(v));

	CHECK_EQ(vmap_vunmap(s, v), 0);
	CHECK(file_mapped(v)); /* lazy: still there until the purge */
	CHECK_EQ(vmap_purge(s, VMAP_PURGE_SYNC), 0);
	CHECK(!file_mapped(v)); /* plain reserved space again */
	CHECK(all_zero((unsigned char *)v, 5 * PG));
	v[3 * PG] = 'y'; /* reaches no file */
	REQUIRE(pread(fd, page, 1, PG) == 1);
	CHECK_EQ(page[0], 'z');
	memset(v, 0, 5 * PG);
	CHECK_EQ(vmap_check(s), 0);
	CHECK_EQ(test_stats(s).free_pages, 64);
	close(fd);
	vmap_space_destroy(s);
}

static void test_vmap_bad(void)
{
	vmap_space *s = mspace(64 * PG, 1000, 0);
	static const uint64_t pg[] = { 0, 1 };
	struct vmap_stats before, after;
	int fd;

	REQUIRE(vmap_memfd_create(NULL, 2, &fd) == 0);
	before = test_stats(s);
	errno = 0;
	CHECK(!vmap_vmap(s, fd, pg, 0, PROT_READ) && errno == EINVAL);
	CHECK(!vmap_vmap(s, -1, pg, 2, PROT_READ) && errno == EINVAL);
	CHECK(!vmap_vmap(s, fd, NULL, 2, PROT_READ) && errno == EINVAL);
	CHECK(!vmap_vmap(s, fd, pg, 2, 0) && errno == EINVAL);
	CHECK(!vmap_vmap(s, fd, pg, 2, PROT_EXEC) && errno == EINVAL);
	CHECK(!vmap_vmap(s, fd, pg, SIZE_MAX, PROT_READ) && errno == EINVAL);
	CHECK(!vmap_vmap(s, 1000, pg, 2, PROT_READ) && errno == EBADF);
	after = test_stats(s);
	CHECK_EQ(after.busy_areas, before.busy_areas);
	CHECK_EQ(after.free_pages, before.free_pages);
	CHECK_EQ(after.lazy_pages, before.lazy_pages);
	CHECK_EQ(vmap_check(s), 0);
	CHECK_EQ(vmap_memfd_create("x", 0, &fd), -EINVAL);
	CHECK_EQ(vmap_memfd_create("x", 1, NULL), -EINVAL);
	close(fd);
	vmap_space_destroy(s);
}

/*
 * The pool: a freed area is kept warm and handed out again as it is.
 *   AAAA....   A written, freed: warm, not lazy;
 *   BBBB....   the next vmalloc of that size is A's range, still holding
 *              A's data (vmalloc's contents are unspecified, as malloc's);
 *   ZZZZ....   freed and taken by vzalloc: the same range, zeroed.
 */
static void test_pool(void)
{
	struct vmap_config c;
	vmap_space *s;
	unsigned char *a, *b, *d[3];
	struct vmap_stats st;

	vmap_config_init(&c);
	c.flags = VMAP_SPACE_MEMORY | VMAP_SPACE_NOPURGER;
	c.length = 64 * PG;
	c.pool_max_pages = 8;
	REQUIRE(vmap_space_create(&c, &s) == 0);
	CHECK_EQ(test_stats(s).pool_max_pages, 8);
	a = vmap_vmalloc(s, 4 * PG);
	REQUIRE(a);
	memset(a, 0xee, 4 * PG);
	CHECK_EQ(vmap_vfree(s, a), 0);
	st = test_stats(s);
	CHECK_EQ(st.pool_areas, 1);
	CHECK_EQ(st.pool_pages, 4);
	CHECK_EQ(st.lazy_pages, 0);
	CHECK_EQ(vmap_check(s), 0);
	b = vmap_vmalloc(s, 4 * PG);
	CHECK(b == a);
	CHECK(b && b[0] == 0xee && b[4 * PG - 1] == 0xee);
	CHECK_EQ(test_stats(s).pool_hits, 1);
	CHECK_EQ(test_stats(s).pool_areas, 0);
	CHECK_EQ(vmap_vfree(s, b), 0);
	b = vmap_vzalloc(s, 4 * PG);
	CHECK(b == a);
	CHECK(b && all_zero(b, 4 * PG));
	CHECK_EQ(test_stats(s).pool_hits, 2);
	/* Another size does not come from the pool. */
	vmap_vfree(s, b);
	b = vmap_vmalloc(s, 3 * PG);
	CHECK(b != a);
	vmap_vfree(s, b);
	/* At most pool_max_pages: the third 4-page area goes lazy. */
	vmap_purge(s, VMAP_PURGE_SYNC); /* empties the pool */
	for (int i = 0; i < 3; i++)
		d[i] = vmap_vmalloc(s, 4 * PG);
	for (int i = 0; i < 3; i++)
		vmap_vfree(s, d[i]);
	st = test_stats(s);
	CHECK_EQ(st.pool_pages, 8);
	CHECK_EQ(st.lazy_pages, 4);
	CHECK_EQ(vmap_check(s), 0);
	/* A sync purge releases warm memory too. */
	memset(d[0], 0x11, 4 * PG); /* (the library's own memory: a test may) */
	CHECK_EQ(vmap_purge(s, VMAP_PURGE_SYNC), 0);
	st = test_stats(s);
	CHECK_EQ(st.pool_areas, 0);
	CHECK_EQ(st.lazy_pages, 0);
	CHECK_EQ(st.free_pages, 64);
	CHECK(all_zero(d[0], 4 * PG));
	/* An allocation that finds no room takes the warm areas back too. */
	a = vmap_vmalloc(s, 4 * PG);
	b = vmap_vmalloc(s, 60 * PG);
	REQUIRE(a && b);
	vmap_vfree(s, a); /* warm */
	CHECK_EQ(test_stats(s).pool_areas, 1);
	vmap_vfree(s, b); /* too big for the pool: lazy */
	a = vmap_vmalloc(s, 64 * PG);
	CHECK(a != NULL);
	CHECK_EQ(test_stats(s).pool_areas, 0);
	vmap_vfree(s, a);
	CHECK_EQ(vmap_check(s), 0);
	vmap_space_destroy(s);

	/* Guard pages stay installed on warm areas: no syscall to reuse. */
	s = mspace(16 * PG, 1000, VMAP_SPACE_GUARD);
	a = vmap_vmalloc(s, PG);
	REQUIRE(a);
	vmap_vfree(s, a);
	b = vmap_vmalloc(s, PG);
	CHECK(b == a);
	CHECK_EQ(test_stats(s).guard_syscalls, 1);
	CHECK_EQ(child_signal(poke, b + PG), SIGSEGV);
	vmap_vfree(s, b);
	vmap_space_destroy(s);
}

/* ---- threads writing and checking their own memory ---- */

struct worker {
	vmap_space *s;
	unsigned id;
	uint64_t seed;
	unsigned long bad;
};

static void *work(void *arg)
{
	struct worker *w = arg;
	enum { LIVE = 16 };
	uint32_t *live[LIVE] = { NULL };
	size_t words[LIVE] = { 0 };

	for (unsigned op = 0; op < 5000; op++) {
		unsigned k = (unsigned)(test_rand(&w->seed) % LIVE);

		if (live[k]) {
			for (size_t i = 0; i < words[k]; i++)
				if (live[k][i] != (w->id << 24 ^ (uint32_t)i))
					w->bad++;
			vmap_vfree(w->s, live[k]);
			live[k] = NULL;
		} else {
			size_t pages = 1 + test_rand(&w->seed) % 8;

			/* vzalloc: zero, so any word that is not is
			 * someone's data, or a missed memset. */
			live[k] = vmap_vzalloc(w->s, pages * PG);
			if (!live[k])
				continue; /* ENOSPC: the space is small */
			words[k] = pages * PG / 4;
			for (size_t i = 0; i < words[k]; i++) {
				if (live[k][i])
					w->bad++;
				live[k][i] = w->id << 24 ^ (uint32_t)i;
			}
		}
	}
	for (unsigned k = 0; k < LIVE; k++)
		vmap_vfree(w->s, live[k]);
	return NULL;
}

static void test_threads(unsigned flags)
{
	vmap_space *s = mspace(1024 * PG, 256, flags | VMAP_SPACE_PURGER);
	struct worker w[4];
	pthread_t t[4];
	uint64_t seed = test_seed("memory_test threads");
	struct vmap_stats st;

	for (unsigned i = 0; i < 4; i++) {
		w[i] = (struct worker){ s, i + 1, seed + i, 0 };
		REQUIRE(pthread_create(&t[i], NULL, work, &w[i]) == 0);
	}
	for (unsigned i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		CHECK_EQ(w[i].bad, 0);
	}
	vmap_purge(s, VMAP_PURGE_SYNC);
	st = test_stats(s);
	CHECK_EQ(st.busy_pages, 0);
	CHECK_EQ(st.free_pages, st.total_pages);
	CHECK(st.purges > 0);
	CHECK_EQ(vmap_check(s), 0);
	vmap_space_destroy(s);
}

int main(void)
{
	test_release_path();
	test_zero_after_purge();
	test_reuse_after_purge();
	test_strict();
	test_batching();
	test_bad_inputs();
	test_guard();
	test_alloc_at();
	test_vrealloc();
	test_guard_before_dirty();
	test_aliases_keep_live_pieces();
	test_vmap();
	test_vmap_bad();
	test_pool();
	test_threads(0);		  /* mostly warm reuse */
	test_threads(VMAP_SPACE_NOPOOL); /* lazy frees and purges */
	return test_summary("memory_test");
}
