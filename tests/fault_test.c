/* SPDX-License-Identifier: MIT */
/*
 * fault_test.c - running out of memory, and the kernel saying no.
 *
 * One scenario per kind of space makes every public call: a burst of areas
 * that grows every table and buffer of the library, then a fixed sequence of
 * allocations of each family (vmap_alloc/xalloc, vmalloc/vzalloc, vmap_vmap,
 * the vmap blocks, vm_map_ram), frees, purges of each mode,
 * vmap_unmap_aliases, stats, dump and check; then everything is freed, purged
 * and the space destroyed.  It runs once for each k = 1, 2, ... with the
 * k-th allocation of the library's own heap failing (the fault build,
 * src/fault.c), and then once for each k with the k-th call into the OS seam
 * failing (a seam that wraps the real one), until a run completes with
 * nothing injected.  Then both sweeps again with the k-th *and every later*
 * allocation or OS call failing: out of memory for good, or a kernel that
 * refuses everything, until the end of the run gives it back.
 *
 * Two kinds of trouble a hostile process brings are part of the scenario, so
 * that the k-th call fails inside their handling too: a file that refuses
 * one of its pages (the seam answers ENODEV, as a socket does), mapped after
 * good pages, whose undo must leave the range plain reserved space or
 * quarantined; vmalloc areas mlock()ed before they are freed, so that
 * batches mix locked and unlocked ranges; and areas made read-only with
 * vmap_vprotect, whose purge must make them writable again.
 *
 * After every call: an error is one the header documents for that call, and
 * (after a single failure) the same call, repeated, succeeds: the space
 * stays usable; vmap_check passes; busy + lazy + free + warm pages make the
 * whole space; memory handed out reads as zero -- never as an earlier
 * owner's data or a file's.  At the end of each run, with nothing failing
 * any more, every page is free again.  Leaks are LeakSanitizer's to find:
 * the ASan build runs this test too.
 *
 * The scenario is deterministic (a fixed seed, the thread pinned to one CPU),
 * so the k-th call is the same call in every run -- all but a few: where the
 * kernel puts a memory space's reservation changes which busy-map shards
 * fill up and grow, by an allocation or two.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* sched_setaffinity */
#endif
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdbool.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <vmap.h>

#include "internal.h"
#include "test.h"

#define PG 4096u
#define BURST 600	/* areas: enough to grow most busy-map shards */
#define OPS 250		/* the mixed part of the scenario */
#define AFTER_FAULT 25	/* steps a run goes on after its fault */
#define MAX_LIVE (BURST + OPS)
#define FILE_PAGES 64

/* ---- the failing OS seam ---- */

/* As fault.c's, for seam calls: os_pending counts down to the one to fail
 * (1: the next one); with for_good, it stays there. */
static uint64_t os_pending, os_injected;
static bool os_paused, for_good;

static bool os_fail(void)
{
	if (os_paused || !os_pending)
		return false;
	if (os_pending > 1) {
		os_pending--;
		return false;
	}
	if (!for_good)
		os_pending = 0;
	os_injected++;
	return true;
}

static int f_reserve(uint64_t len, uint64_t *out)
{
	return os_fail() ? -ENOMEM : os_linux.reserve(len, out);
}

/* Not a failure point: unmapping a whole reservation cannot fail. */
static int f_unreserve(uint64_t addr, uint64_t len)
{
	return os_linux.unreserve(addr, len);
}

/* "Failing" here is the answer of a kernel without process_madvise. */
static enum os_release_path f_probe(uint64_t scratch, uint64_t len)
{
	return os_fail() ? OS_RELEASE_MADVISE : os_linux.probe(scratch, len);
}

static int f_release(enum os_release_path path, const struct vmap_range *r,
		     size_t n, uint64_t *calls)
{
	return os_fail() ? -ENOMEM : os_linux.release(path, r, n, calls);
}

/* Page REFUSED of the file is one its mmap handler refuses, as a socket's
 * or a sysfs file's does: so a vmap of good pages then that one fails half
 * way, and its undo -- where the k-th call may fail too -- has work to do. */
#define REFUSED (FILE_PAGES + 7)

static int f_map_file(uint64_t addr, uint64_t len, int fd, uint64_t off,
		      int prot)
{
	if (os_fail())
		return -ENOMEM;
	if (off <= REFUSED * PG && off + len > REFUSED * PG)
		return -ENODEV; /* not injected: the file's own answer */
	return os_linux.map_file(addr, len, fd, off, prot);
}

static int f_map_anon(uint64_t addr, uint64_t len)
{
	return os_fail() ? -ENOMEM : os_linux.map_anon(addr, len);
}

static int f_guard_install(uint64_t addr, uint64_t page, uint64_t *calls)
{
	return os_fail() ? -ENOMEM : os_linux.guard_install(addr, page, calls);
}

static int f_guard_remove(const uint64_t *addr, size_t n, uint64_t page,
			  uint64_t *calls)
{
	return os_fail() ? -ENOMEM
			 : os_linux.guard_remove(addr, n, page, calls);
}

static int f_memfd(const char *name, uint64_t size)
{
	return os_fail() ? -EMFILE : os_linux.memfd(name, size);
}

/* A refused hole filling leaves the hole: -EEXIST, as the kernel's. */
static int f_fill_hole(uint64_t addr, uint64_t len)
{
	return os_fail() ? -EEXIST : os_linux.fill_hole(addr, len);
}

static int f_protect(uint64_t addr, uint64_t len, int prot)
{
	return os_fail() ? -ENOMEM : os_linux.protect(addr, len, prot);
}

/* Not a failure point: vmap_check's look at the mappings -- after a step
 * where a fault fired, and every 16th step, as it costs a system call per
 * mapping of the reservation (mlock splits it into many). */
static bool look_at_maps;

static int f_vmas(uint64_t start, uint64_t end,
		  int (*fn)(void *arg, const struct os_vma *v), void *arg)
{
	return look_at_maps ? os_linux.vmas(start, end, fn, arg) : -ENOSYS;
}

static const struct vmap_os failing_os = {
	.reserve = f_reserve,
	.unreserve = f_unreserve,
	.probe = f_probe,
	.release = f_release,
	.map_file = f_map_file,
	.map_anon = f_map_anon,
	.fill_hole = f_fill_hole,
	.guard_install = f_guard_install,
	.guard_remove = f_guard_remove,
	.memfd = f_memfd,
	.protect = f_protect,
	.vmas = f_vmas,
};

/* Both injectors off while the test looks, so its own calls count for
 * nothing; then back as they were. */
static uint64_t paused_heap;

static void pause_faults(void)
{
	paused_heap = vm_fault_pending();
	vm_fault_arm(0, false);
	os_paused = true;
}

static void resume_faults(void)
{
	vm_fault_arm(paused_heap, for_good);
	os_paused = false;
}

/* Whatever was failing works again. */
static void disarm(void)
{
	vm_fault_arm(0, false);
	os_pending = 0;
}

static uint64_t injected(void)
{
	return vm_fault_injected() + os_injected;
}

/* ---- the run ---- */

enum family { F_ALLOC, F_VMALLOC, F_VMAP, F_RAM, F_MAP_RAM };

struct area {
	uint64_t addr, pages;
	enum family family;
};

static struct run {
	const struct kind *kind;
	vmap_space *s;
	bool memory;
	int fd;			/* memory spaces: the pages vmap_vmap shows */
	struct area live[MAX_LIVE];
	size_t nlive;
	uint64_t rng;
	uint64_t fired_at;	/* step of the injected failure, or 0 */
	uint64_t steps;
	uint64_t surfaced;	/* injected failures a call reported */
} r;

static const struct kind {
	const char *name;
	unsigned flags;
} kinds[] = {
	/* No purger: the k-th call must be the same call in every run, and a
	 * purge thread would make its calls whenever its timer says. */
	{ "range space", 0 },
	{ "memory space", VMAP_SPACE_MEMORY | VMAP_SPACE_NOPURGER },
	{ "memory space, no pool, madvise",
	  VMAP_SPACE_MEMORY | VMAP_SPACE_NOPURGER | VMAP_SPACE_NOPOOL |
		  VMAP_SPACE_RELEASE_MADVISE },
	{ "memory space, guard pages",
	  VMAP_SPACE_MEMORY | VMAP_SPACE_NOPURGER | VMAP_SPACE_GUARD },
	{ "memory space, strict, guard pages",
	  VMAP_SPACE_MEMORY | VMAP_SPACE_STRICT | VMAP_SPACE_GUARD },
};

static uint64_t ranges_seen; /* by the range space's flush callback */

static void flush_cb(void *ctx, const struct vmap_range *rg, size_t n)
{
	(void)ctx;
	(void)rg;
	ranges_seen += n;
}

static uint64_t rnd(uint64_t n)
{
	return test_rand(&r.rng) % n;
}

/* The oracle after a step; `always`: else only if a fault just fired (the
 * burst is too long to check after each of its thousand steps). */
static void settle(bool always, uint64_t before)
{
	struct vmap_stats st = { .size = sizeof(st) };

	r.steps++;
	if (injected() != before && !r.fired_at)
		r.fired_at = r.steps;
	if (!always && injected() == before)
		return;
	pause_faults();
	look_at_maps = injected() != before || r.steps % 16 == 0;
	CHECK_EQ(vmap_check(r.s), 0);
	look_at_maps = true;
	CHECK_EQ(vmap_stats(r.s, &st), 0);
	CHECK_EQ(st.busy_pages + st.lazy_pages + st.free_pages + st.pool_pages +
			 st.quarantined_pages,
		 st.total_pages);
	resume_faults();
}

/* An error from a call that may fail by injection: must be one of `ok`
 * (0-terminated), and must come from the injection. */
static void expect(int err, uint64_t before, int line, const char *call,
		   const int *ok)
{
	bool listed = false;

	for (; *ok; ok++)
		listed |= err == -*ok;
	if (!listed || injected() == before) {
		test_failures++;
		fprintf(stderr,
			"%s:%d: %s: %s: %s (%d) %s, injected %" PRIu64
			" -> %" PRIu64 "\n",
			__FILE__, line, r.kind->name, call, vmap_strerror(err),
			err, listed ? "without an injected fault"
				    : "is not documented",
			before, injected());
	} else {
		r.surfaced++;
	}
}

/*
 * CALL(expr, errnos...): make a call that returns 0 or a negative errno.
 * If it fails, the error must be a listed one caused by the injection, and
 * unless everything goes on failing, the call, repeated, must succeed.  Then
 * the oracle.
 */
#define CALL(always, expr, ...)                                             \
	do {                                                                \
		uint64_t _before = injected();                              \
		int _err = (expr);                                          \
		if (_err) {                                                 \
			expect(_err, _before, __LINE__, #expr,              \
			       (const int[]){ __VA_ARGS__ + 0, 0 });        \
			if (!for_good) {                                    \
				_err = (expr);                              \
				CHECK_EQ(_err, 0);                          \
			}                                                   \
		}                                                           \
		settle(always, _before);                                    \
	} while (0)

/* ---- the pointer-returning calls, as errno returns ---- */

static int do_vmalloc(uint64_t pages, bool zero, uint64_t *addr)
{
	void *p = zero ? vmap_vzalloc(r.s, pages * PG)
		       : vmap_vmalloc(r.s, pages * PG);

	if (!p)
		return -errno;
	*addr = (uint64_t)(uintptr_t)p;
	return 0;
}

static int do_vmap(const uint64_t *pgoff, uint64_t n, bool ram,
		   uint64_t *addr)
{
	void *p = ram ? vmap_map_ram(r.s, r.fd, pgoff, n)
		      : vmap_vmap(r.s, r.fd, pgoff, n, PROT_READ | PROT_WRITE);

	if (!p)
		return -errno;
	*addr = (uint64_t)(uintptr_t)p;
	return 0;
}

static int do_dump(void)
{
	FILE *f = fopen("/dev/null", "w");
	int err;

	REQUIRE(f);
	err = vmap_dump(r.s, f);
	fclose(f);
	return err;
}

static int do_stats(void)
{
	struct vmap_stats st = { .size = sizeof(st) };

	return vmap_stats(r.s, &st);
}

/* Memory handed out reads as zero -- or, from vmap_vmalloc (warm, zero
 * false), the test's own marks of an earlier area there and nothing else;
 * then the test writes into it, so that a range handed out again before its
 * release would be seen. */
static void take_memory(uint64_t addr, uint64_t pages, bool zero_only)
{
	static const char zero[PG];

	for (uint64_t i = 0; i < pages; i++) {
		char *page = (char *)(uintptr_t)(addr + i * PG);
		bool warm = !zero_only &&
			    (page[0] == 0 || page[0] == 0x5a) &&
			    (page[PG - 1] == 0 || page[PG - 1] == 0x5a) &&
			    !memcmp(page + 1, zero, PG - 2);

		if (!warm && memcmp(page, zero, PG)) {
			test_failures++;
			fprintf(stderr,
				"%s: step %" PRIu64 ": page %#" PRIx64
				" handed out is not zero\n",
				r.kind->name, r.steps, (uint64_t)(uintptr_t)page);
			return;
		}
		page[0] = page[PG - 1] = 0x5a;
	}
}

static void keep(uint64_t addr, uint64_t pages, enum family family)
{
	REQUIRE(r.nlive < MAX_LIVE);
	r.live[r.nlive++] = (struct area){ addr, pages, family };
}

/* ---- steps ---- */

static void step_alloc(bool always)
{
	uint64_t pages = 1 + rnd(always ? 8 : 1), a = 0;
	enum family family = F_ALLOC;
	bool x = rnd(2), zero = true;

	if (r.memory && rnd(3)) {
		zero = rnd(2);
		family = F_VMALLOC;
		CALL(always, do_vmalloc(pages, zero, &a), ENOMEM);
	} else if (x) {
		uint64_t align = PG << rnd(4), phase = align > PG ? PG : 0;
		unsigned flags = rnd(2) ? VMAP_XALLOC_TOPDOWN : 0;

		CALL(always,
		     vmap_xalloc(r.s, pages * PG, align, phase, 64 * PG, 0,
				 UINT64_MAX, flags, &a),
		     ENOMEM);
	} else {
		CALL(always, vmap_alloc(r.s, pages * PG, 0, 0, UINT64_MAX, &a),
		     ENOMEM);
	}
	if (!a)
		return; /* failed, for good */
	if (family == F_VMALLOC) {
		take_memory(a, pages, zero);
		/* Locked, and freed so: a mixed batch (not a seam call). */
		if (!rnd(16))
			mlock((void *)(uintptr_t)a, pages * PG);
		/* Read-only till it is freed: the purge must make it
		 * writable again (a seam call that may fail too). */
		else if (!rnd(8))
			CALL(always,
			     vmap_vprotect(r.s, (void *)(uintptr_t)a, PROT_READ),
			     ENOMEM);
	}
	keep(a, pages, family);
}

/* A vmap whose last page the file refuses: ENODEV, and nothing changed --
 * the oracle then checks the reservation for a hole or a leftover file. */
static void step_refused(void)
{
	uint64_t n = 1 + rnd(4), pgoff[5], a = 0, before = injected();
	bool ram = rnd(2);
	int err;

	for (uint64_t i = 0; i < n; i++)
		pgoff[i] = rnd(FILE_PAGES);
	pgoff[n] = REFUSED;
	err = do_vmap(pgoff, n + 1, ram, &a);
	if (injected() == before)
		CHECK_EQ(err, -ENODEV);
	else if (err != -ENODEV)
		expect(err, before, __LINE__, "a vmap the file refuses",
		       (const int[]){ ENOMEM, 0 });
	CHECK_EQ(a, 0);
	settle(true, before);
}

static void step_small(void)
{
	uint64_t n = 1 + rnd(8), a = 0, pgoff[8];
	bool ram = rnd(2);

	if (!r.memory) {
		CALL(true, vmap_ram_alloc(r.s, n * PG, &a), ENOMEM);
		if (a)
			keep(a, n, F_RAM);
		return;
	}
	/* Runs of consecutive pages and scattered ones: one mmap per run. */
	for (uint64_t i = 0; i < n; i++)
		pgoff[i] = i && rnd(2) ? (pgoff[i - 1] + 1) % FILE_PAGES
				       : rnd(FILE_PAGES);
	CALL(true, do_vmap(pgoff, n, ram, &a), ENOMEM);
	if (!a)
		return; /* failed, for good */
	for (uint64_t i = 0; i < n; i++)
		((char *)(uintptr_t)a)[i * PG] ^= 1; /* the file's page */
	keep(a, n, ram ? F_MAP_RAM : F_VMAP);
}

static int free_area(const struct area *v)
{
	const void *p = (const void *)(uintptr_t)v->addr;

	switch (v->family) {
	case F_ALLOC:
		return vmap_free(r.s, v->addr);
	case F_VMALLOC:
		return vmap_vfree(r.s, p);
	case F_VMAP:
		return vmap_vunmap(r.s, p);
	case F_RAM:
		return vmap_ram_free(r.s, v->addr, v->pages * PG);
	case F_MAP_RAM:
		return vmap_unmap_ram(r.s, p, v->pages);
	}
	return -EINVAL;
}

static void step_free(bool always, size_t i)
{
	struct area v = r.live[i];

	r.live[i] = r.live[--r.nlive];
	CALL(always, free_area(&v)); /* frees never fail */
}

static int see_nothing(void *arg, const struct vmap_walk_range *rg)
{
	(void)arg;
	(void)rg;
	return 0;
}

/* The address calls (issue 14): a query, a walk, the largest free run, and
 * an area at a fixed address -- which may find its range taken (-EBUSY,
 * -EAGAIN: no fault needed for those), and is freed at once if placed. */
static void step_address(void)
{
	uint64_t base = 0, len = 0, now, after, at;
	int state, err, before;

	CHECK_EQ(vmap_space_range(r.s, &base, &len), 0);
	at = base + rnd(len / PG - 4) * PG;
	switch (rnd(4)) {
	case 0:
		CALL(true, vmap_range_state(r.s, at, 4 * PG, &state), ENOMEM);
		break;
	case 1:
		CALL(true, vmap_walk(r.s, at, at + 64 * PG, VMAP_WALK_ALL,
				     see_nothing, NULL),
		     ENOMEM);
		break;
	case 2:
		CALL(true, vmap_largest_free(r.s, &now, &after), ENOMEM);
		break;
	default:
		before = (int)injected();
		err = vmap_alloc_at(r.s, at, 2 * PG,
				    rnd(2) ? VMAP_AT_PURGE : 0);
		if (err == -ENOMEM)
			expect(err, (uint64_t)before, __LINE__,
			       "vmap_alloc_at", (const int[]){ ENOMEM, 0 });
		else if (err)
			CHECK(err == -EBUSY || err == -EAGAIN ||
			      err == -ERANGE);
		else
			CALL(true, vmap_free(r.s, at));
		settle(true, (uint64_t)before);
		break;
	}
}

static void step_other(void)
{
	static const unsigned modes[] = { VMAP_PURGE_TRY, VMAP_PURGE_SYNC,
					  VMAP_PURGE_FORCE_FLUSH };

	if (rnd(3) == 0) {
		step_address();
		return;
	}
	switch (rnd(6)) {
	case 0:
		CALL(true, vmap_purge(r.s, modes[rnd(3)]));
		break;
	case 1:
		CALL(true, vmap_unmap_aliases(r.s), ENOMEM);
		break;
	case 2:
		CALL(true, do_stats());
		break;
	case 3:
		CALL(true, do_dump(), ENOMEM);
		break;
	case 4:
		CALL(true, vmap_check(r.s), ENOMEM);
		break;
	default:
		CHECK(vmap_strerror(-ENOMEM) != NULL);
		break;
	}
}

static int create(void)
{
	struct vmap_config c;

	vmap_config_init(&c);
	c.flags = r.kind->flags;
	c.lazy_max_pages = 256;
	c.block_pages = 128;
	if (r.memory) {
		c.length = 64ull << 20;
		c.pool_max_pages = 64;
	} else {
		c.base = 1ull << 32;
		c.length = 64ull << 20;
		c.flush = flush_cb;
	}
	return vmap_space_create(&c, &r.s);
}

static int make_file(void)
{
	char buf[PG];
	int fd;
	int err = vmap_memfd_create("fault_test", FILE_PAGES, &fd);

	if (err)
		return err;
	memset(buf, 0xa5, sizeof(buf));
	for (int i = 0; i < FILE_PAGES; i++)
		REQUIRE(write(fd, buf, PG) == PG);
	r.fd = fd;
	return 0;
}

/* Is this run done with its fault?  Then it can skip to the end. */
static bool done(void)
{
	return r.fired_at && r.steps > r.fired_at + AFTER_FAULT;
}

static void scenario(const struct kind *kind)
{
	struct vmap_stats st = { .size = sizeof(st) };
	uint64_t before = injected();
	int err;

	memset(&r, 0, sizeof(r));
	ranges_seen = 0;
	r.kind = kind;
	r.memory = kind->flags & VMAP_SPACE_MEMORY;
	r.rng = 0x5eed;
	r.fd = -1;

	/* Creation: nothing to check on failure but that it says so. */
	err = create();
	if (err) {
		expect(err, before, __LINE__, "vmap_space_create",
		       (const int[]){ ENOMEM, 0 });
		r.fired_at = 1;
		disarm();
		REQUIRE(create() == 0);
	}
	if (r.memory) {
		before = injected();
		if ((err = make_file())) {
			expect(err, before, __LINE__, "vmap_memfd_create",
			       (const int[]){ EMFILE, 0 });
			disarm();
			REQUIRE(make_file() == 0);
		}
	}

	/* The burst: busy map growth, long lazy lists, big purges. */
	for (int i = 0; i < BURST && !done(); i++)
		step_alloc(false);
	while (r.nlive && !done())
		step_free(false, r.nlive - 1);

	for (int i = 0; i < OPS && !done(); i++) {
		uint64_t p = rnd(100);

		if (p < 35)
			step_alloc(true);
		else if (p < 47)
			step_small();
		else if (p < 50 && r.memory)
			step_refused();
		else if (p < 85 && r.nlive)
			step_free(true, rnd(r.nlive));
		else
			step_other();
	}

	/* The end: everything freed and released, the space whole -- once
	 * the memory, if it ran out for good, comes back. */
	if (for_good)
		disarm();
	while (r.nlive)
		step_free(false, r.nlive - 1);
	CALL(true, vmap_purge(r.s, VMAP_PURGE_SYNC));
	pause_faults();
	/* What the kernel refused is quarantined, and purges retry it, twice
	 * as much each time all goes well: O(log n) purges bring it back. */
	for (int i = 0; i < 20; i++) {
		CHECK_EQ(vmap_purge(r.s, VMAP_PURGE_SYNC), 0);
		CHECK_EQ(vmap_stats(r.s, &st), 0);
		if (!st.quarantined_areas)
			break;
	}
	CHECK_EQ(st.quarantined_areas, 0);
	CHECK_EQ(vmap_check(r.s), 0);
	CHECK_EQ(vmap_stats(r.s, &st), 0);
	CHECK_EQ(st.free_pages, st.total_pages);
	CHECK_EQ(st.free_blocks, 1);
	if (!r.memory)	/* pieces or not, every range reached the callback */
		CHECK_EQ(st.ranges_flushed, ranges_seen);
	vmap_space_destroy(r.s);
	if (r.fd >= 0)
		close(r.fd);
	resume_faults();
}

/* k = 1, 2, ... until a run injects nothing; the number of runs. */
static uint64_t sweep(const struct kind *kind, bool heap, uint64_t *surfaced)
{
	uint64_t k;

	for (k = 1;; k++) {
		uint64_t before = injected();

		if (heap)
			vm_fault_arm(k, for_good);
		else
			os_pending = k;
		scenario(kind);
		disarm();
		*surfaced += r.surfaced;
		if (injected() == before)
			return k - 1;
		if (test_failures) {
			fprintf(stderr, "%s: the %s fault k = %" PRIu64 "%s\n",
				kind->name, heap ? "heap" : "OS seam", k,
				for_good ? " and on" : "");
			return k;
		}
	}
}

static void pin(void)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(sched_getcpu() < 0 ? 0 : sched_getcpu(), &set);
	sched_setaffinity(0, sizeof(set), &set);
}

/* Both sweeps over every kind of space; false on a failure. */
static bool sweeps(void)
{
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		uint64_t surfaced = 0, heap, os;

		heap = sweep(&kinds[i], true, &surfaced);
		os = test_failures ? 0 : sweep(&kinds[i], false, &surfaced);
		printf("%-36s %5" PRIu64 " heap, %4" PRIu64 " OS; %5" PRIu64
		       " reported as errors\n",
		       kinds[i].name, heap, os, surfaced);
		if (test_failures)
			return false;
	}
	return true;
}

int main(void)
{
	pin();
	vm_os = &failing_os;
	scenario(&kinds[0]);	/* nothing armed: the scenario itself passes */
	REQUIRE(test_failures == 0);
	printf("the k-th call fails, for every k (runs per kind):\n");
	if (sweeps()) {
		printf("the k-th and every later call fail:\n");
		for_good = true;
		sweeps();
	}
	return test_summary("fault_test");
}
