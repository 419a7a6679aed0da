/* SPDX-License-Identifier: MIT */
/*
 * stress_test.c - worker threads allocate and free in one space while another
 * thread purges in every mode (and vmap_unmap_aliases), reads stats and runs
 * vmap_check.  The workers take areas from the tree and pieces from vmap
 * blocks (vmap_ram_alloc), and every few hundred operations move to another
 * CPU, so that pieces are freed from other CPUs than the one whose block they
 * came from.  The test watches for what must never happen: two live areas or
 * pieces that overlap, an area or piece handed out while a flush of its range
 * is running, a request's constraints broken, and counters that disagree with
 * what the threads did.  VMAP_STRESS_THREADS and VMAP_STRESS_OPS (per worker)
 * size the run; VMAP_SEED replays the random choices, though not the
 * interleaving.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE	/* sched_setaffinity, CPU_* */
#endif
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <vmap.h>

#include "test.h"

#ifndef __has_feature
#define __has_feature(x) 0	/* gcc < 14 defines __SANITIZE_*__ instead */
#endif
#if defined(__SANITIZE_THREAD__) || __has_feature(thread_sanitizer)
#define DEFAULT_OPS 80000	/* 1 to 2 s in every build */
#elif defined(__SANITIZE_ADDRESS__) || __has_feature(address_sanitizer)
#define DEFAULT_OPS 150000
#else
#define DEFAULT_OPS 300000
#endif

#ifndef VMAP_XALLOC_NOPURGE
#define VMAP_XALLOC_NOPURGE 0	/* a header from before the flag */
#endif

#define PAGE 4096ull
#define BASE 0x40000000ull
#define NPAGES 4096ull		/* small enough for -ENOSPC now and then */
#define END (BASE + NPAGES * PAGE)
#define LAZY_MAX 64		/* small, so that frees purge often */
#define MAX_LIVE 112
#define MAX_THREADS 64
#define MOVE_EVERY 300		/* ops between CPU moves, on average */


typedef unsigned long long ull;

static vmap_space *space;
static uint64_t seed;
static _Atomic uint32_t owner[NPAGES];	/* 0, or the owning worker's id */
static atomic_bool failed, done;
static uint64_t busy_tries;	/* TRY purges that found one running */
static uint64_t block_pages;	/* 128 or 256, by the seed */
static int cpus[CPU_SETSIZE], ncpus;	/* the CPUs we may run on */
static _Thread_local bool in_aliases;	/* in vmap_unmap_aliases */

/* Report the first failure only, and make every thread stop. */
#define FAIL(...)                                                           \
	do {                                                                \
		if (atomic_exchange(&failed, true))                         \
			break;                                              \
		fprintf(stderr, "stress_test.c:%d: seed %#llx: ", __LINE__, \
			(ull)seed);                                         \
		fprintf(stderr, __VA_ARGS__);                               \
		fputc('\n', stderr);                                        \
	} while (0)

/* The flush in progress, if any; its ranges are valid until it returns.
 * The purge mutex is held around the callback, so there is never more
 * than one. */
static struct {
	pthread_mutex_t lock;
	const struct vmap_range *r;
	size_t n;
	bool active;
	uint64_t calls, ranges, rng, during;	/* calls: started, ever */
} fl = { .lock = PTHREAD_MUTEX_INITIALIZER };

static void flush_cb(void *ctx, const struct vmap_range *r, size_t n)
{
	struct timespec nap = { 0, 0 };

	(void)ctx;
	for (size_t i = 0; i < n; i++) {
		if (r[i].start >= r[i].end || (r[i].start | r[i].end) % PAGE ||
		    r[i].start < BASE || r[i].end > END ||
		    (i && r[i - 1].end >= r[i].start))
			FAIL("flush range %zu [%#llx, %#llx) is bad (after "
			     "[%#llx, %#llx))%s", i, (ull)r[i].start,
			     (ull)r[i].end, (ull)(i ? r[i - 1].start : 0),
			     (ull)(i ? r[i - 1].end : 0),
			     in_aliases ? ", in vmap_unmap_aliases" : "");
	}
	pthread_mutex_lock(&fl.lock);
	if (fl.active)
		FAIL("two flushes at once");
	fl.r = r;
	fl.n = n;
	fl.active = true;
	fl.calls++;
	fl.ranges += n;
	/* Sometimes flush slowly, like a TLB shootdown, so that allocations
	 * often run while ranges are being flushed. */
	if (test_rand(&fl.rng) % 4 == 0)
		nap.tv_nsec = 2000 + test_rand(&fl.rng) % 20000;
	pthread_mutex_unlock(&fl.lock);
	if (nap.tv_nsec)
		nanosleep(&nap, NULL);
	pthread_mutex_lock(&fl.lock);
	fl.active = false;
	pthread_mutex_unlock(&fl.lock);
}

/* The number of flushes started so far. */
static uint64_t flushes_started(void)
{
	uint64_t n;

	pthread_mutex_lock(&fl.lock);
	n = fl.calls;
	pthread_mutex_unlock(&fl.lock);
	return n;
}

/*
 * Does [a, end) overlap a range that is being flushed right now -- by one of
 * the first `by` flushes, that is, one that had begun before the allocation
 * was asked for?  An area from the tree may never be in a flush while it is
 * live (by = UINT64_MAX).  A piece may: vmap_unmap_aliases flushes a block's
 * dirty range whole, pieces still live inside it included
 *   [d p d]  (p was handed out before the d after it was)
 * but not before it was handed out: a flush that began before the call had
 * collected its dirty ranges, all below the block's next free page.
 */
static bool being_flushed(uint64_t a, uint64_t end, uint64_t by)
{
	size_t lo = 0, hi;
	bool hit = false;

	pthread_mutex_lock(&fl.lock);
	if (fl.active && fl.calls <= by) {
		/* Bisect for the first range that ends after a. */
		for (hi = fl.n; lo < hi;) {
			size_t mid = lo + (hi - lo) / 2;

			if (fl.r[mid].end <= a)
				lo = mid + 1;
			else
				hi = mid;
		}
		hit = lo < fl.n && fl.r[lo].start < end;
		fl.during++;
	}
	pthread_mutex_unlock(&fl.lock);
	return hit;
}

/* A live area (RAM 0), or piece or area from vmap_ram_alloc (RAM). */
#define RAM 1
struct worker {
	pthread_t thread;
	uint32_t id;
	uint64_t rng, ops, allocs, frees, enospc;
	uint64_t ram_allocs, ram_enospc, ram_big_enospc, moves;
	uint64_t area_frees;	/* of tree areas (big ram areas included) */
	uint64_t live[MAX_LIVE], live_size[MAX_LIVE];	/* owned bytes */
	uint64_t live_req[MAX_LIVE];	/* RAM: the bytes asked for */
	unsigned live_kind[MAX_LIVE];
	size_t nlive;
	int cpu;		/* index in cpus[] */
};

static uint64_t rnd(struct worker *w, uint64_t n)
{
	return test_rand(&w->rng) % n;
}

/* Claim (or release) every page of an area in the owner map: a page that
 * someone else owns means two live areas overlap. */
static void own(struct worker *w, uint64_t a, uint64_t size, bool claim)
{
	for (uint64_t p = (a - BASE) / PAGE; p * PAGE < a + size - BASE; p++) {
		uint32_t was = claim ? 0 : w->id;

		if (!atomic_compare_exchange_strong(&owner[p], &was,
						    claim ? w->id : 0))
			FAIL("worker %u %s [%#llx, %#llx): page %#llx is "
			     "worker %u's", w->id, claim ? "got" : "frees",
			     (ull)a, (ull)(a + size), (ull)(BASE + p * PAGE),
			     was);
	}
}

static void worker_free(struct worker *w, size_t i);

static void worker_alloc(struct worker *w)
{
	uint64_t size = (1 + rnd(w, 16)) * PAGE, align = 0, phase = 0;
	uint64_t nocross = 0, vstart = 0, vend = UINT64_MAX, a = 0, al;
	unsigned flags = 0;
	int err;

	if (rnd(w, 3) == 0)
		align = PAGE << rnd(w, 5);
	if (rnd(w, 8) == 0) {	/* within half the space */
		vstart = BASE + rnd(w, NPAGES / 2) * PAGE;
		vend = vstart + NPAGES / 2 * PAGE - rnd(w, PAGE);
	}
	al = align ? align : PAGE;
	if (rnd(w, 4)) {
		err = vmap_alloc(space, size - rnd(w, PAGE), align, vstart,
				 vend, &a);
	} else {
		flags = (rnd(w, 2) ? VMAP_XALLOC_TOPDOWN : 0) |
			(rnd(w, 8) ? 0 : VMAP_XALLOC_NOPURGE);
		phase = rnd(w, al / PAGE) * PAGE;
		nocross = rnd(w, 2) ? (32 * PAGE) << rnd(w, 3) : 0;
		err = vmap_xalloc(space, size, align, phase, nocross, vstart,
				  vend, flags, &a);
	}
	if (err == -ENOSPC) {	/* legitimate: the space is small */
		w->enospc++;
		return;
	}
	if (err) {
		FAIL("worker %u: alloc returned %d", w->id, err);
		return;
	}
	w->allocs++;
	if (a < BASE || a < vstart || a + size > END || a + size > vend ||
	    (a - phase) % al ||
	    (nocross && a / nocross != (a + size - 1) / nocross))
		FAIL("worker %u: [%#llx, %#llx) breaks its constraints", w->id,
		     (ull)a, (ull)(a + size));
	if (being_flushed(a, a + size, UINT64_MAX))
		FAIL("worker %u: [%#llx, %#llx) handed out while being "
		     "flushed", w->id, (ull)a, (ull)(a + size));
	own(w, a, size, true);
	w->live[w->nlive] = a;
	w->live_kind[w->nlive] = 0;
	w->live_size[w->nlive++] = size;
}

static uint64_t pow2_up(uint64_t pages)
{
	uint64_t n = 1;

	while (n < pages)
		n <<= 1;
	return n;
}

/* A piece of 1..64 pages (2^order of them are ours), sometimes bytes that
 * are no page multiple; now and then more than 64 pages, from the tree. */
static void worker_ram_alloc(struct worker *w)
{
	uint64_t pages = 1 + rnd(w, rnd(w, 10) ? 8 : VMAP_RAM_MAX_PAGES);
	uint64_t size, a = 0, own_bytes, by;
	bool big = rnd(w, 32) == 0;
	int err;

	if (big)
		pages = VMAP_RAM_MAX_PAGES + 1 + rnd(w, 64);
	size = pages * PAGE - (rnd(w, 4) ? 0 : rnd(w, PAGE));
	own_bytes = (big ? pages : pow2_up(pages)) * PAGE;
	by = flushes_started();
	err = vmap_ram_alloc(space, size, &a);
	if (err == -ENOSPC) {
		w->enospc++;
		if (big)
			w->ram_big_enospc++;
		else
			w->ram_enospc++;
		return;
	}
	if (err) {
		FAIL("worker %u: ram alloc of %#llx returned %d", w->id,
		     (ull)size, err);
		return;
	}
	w->allocs++;
	w->ram_allocs++;
	if (a < BASE || a + own_bytes > END || a % PAGE ||
	    (!big && (a - BASE) / (block_pages * PAGE) !=
			     (a + own_bytes - 1 - BASE) / (block_pages * PAGE)))
		FAIL("worker %u: piece [%#llx, %#llx) outside the space or "
		     "across blocks", w->id, (ull)a, (ull)(a + own_bytes));
	/* A piece at a block's start came with its block, in this call: no
	 * dirty range may cover it (nothing before it in the block). */
	if (big || a % (block_pages * PAGE) == 0)
		by = UINT64_MAX;
	if (being_flushed(a, a + own_bytes, by))
		FAIL("worker %u: piece [%#llx, %#llx) handed out while being "
		     "flushed", w->id, (ull)a, (ull)(a + own_bytes));
	own(w, a, own_bytes, true);
	w->live[w->nlive] = a;
	w->live_kind[w->nlive] = RAM;
	w->live_req[w->nlive] = size;
	w->live_size[w->nlive++] = own_bytes;
	/* Most vm_map_ram mappings are brief: map, use, unmap.  The others
	 * stay a while, and are freed at random, often on another CPU. */
	if (rnd(w, 2))
		worker_free(w, w->nlive - 1);
}

/* Has w another live piece in the block of the piece at a? */
static bool shares_block(const struct worker *w, uint64_t a)
{
	uint64_t mask = ~(block_pages * PAGE - 1);

	for (size_t i = 0; i < w->nlive; i++)
		if (w->live_kind[i] == RAM && w->live[i] != a &&
		    w->live_size[i] <= VMAP_RAM_MAX_PAGES * PAGE &&
		    (w->live[i] & mask) == (a & mask))
			return true;
	return false;
}

/* Free a piece (or big area) of vmap_ram_alloc: with the size asked for, or
 * another of the same number of pages; a big one maybe with vmap_free. */
static void worker_ram_free(struct worker *w, uint64_t a, uint64_t req,
			    uint64_t size)
{
	uint64_t pages = size / PAGE, other = pages == 1 ? 2 : pages / 2;
	bool big = pages > VMAP_RAM_MAX_PAGES;
	int err;

	if (!big) {
		/* Misuse first, while the piece is ours: vmap_free knows no
		 * piece (nor block); another order is the wrong count; a
		 * page inside the piece is no piece's start. */
		if (rnd(w, 64) == 0 && (err = vmap_free(space, a)) != -ENOENT)
			FAIL("worker %u: vmap_free of piece %#llx returned %d",
			     w->id, (ull)a, err);
		if (rnd(w, 64) == 0 &&
		    (err = vmap_ram_free(space, a, other * PAGE)) != -EINVAL)
			FAIL("worker %u: ram free of piece %#llx (%llu pages) "
			     "with half the count returned %d", w->id, (ull)a,
			     (ull)pages, err);
		if (pages > 1 && rnd(w, 64) == 0 &&
		    (err = vmap_ram_free(space,
					 a + (1 + rnd(w, pages - 1)) * PAGE,
					 PAGE)) != -ENOENT)
			FAIL("worker %u: ram free inside piece %#llx returned "
			     "%d", w->id, (ull)a, err);
		if (rnd(w, 4) == 0)	/* the same pages */
			req = (req + PAGE - 1) / PAGE * PAGE - rnd(w, PAGE);
	}
	own(w, a, size, false);
	if (big && rnd(w, 4) == 0)
		err = vmap_free(space, a);
	else
		err = vmap_ram_free(space, a, req);
	if (err)
		FAIL("worker %u: ram free(%#llx, %#llx) returned %d", w->id,
		     (ull)a, (ull)req, err);
	/* A double free, at once: nothing there now -- if another piece of
	 * ours keeps the block alive; else it may have been retired, purged
	 * and made again, with someone's piece at a. */
	if (!big && rnd(w, 16) == 0 && shares_block(w, a) &&
	    (err = vmap_ram_free(space, a, req)) != -ENOENT)
		FAIL("worker %u: double ram free of %#llx returned %d", w->id,
		     (ull)a, err);
	if (big)
		w->area_frees++;
}

static void worker_free(struct worker *w, size_t i)
{
	uint64_t a = w->live[i], size = w->live_size[i];
	int err;

	if (w->live_kind[i] == RAM) {
		worker_ram_free(w, a, w->live_req[i], size);
		goto out;
	}
	/* Inside our own live area no other area can start: -ENOENT. */
	if (rnd(w, 64) == 0 &&
	    (err = vmap_free(space, a + 1 + rnd(w, size - 1))) != -ENOENT)
		FAIL("worker %u: free inside an area returned %d", w->id, err);
	/* Give the pages up before the free: from then on, a purge may hand
	 * them to another worker. */
	own(w, a, size, false);
	if ((err = vmap_free(space, a)))
		FAIL("worker %u: free(%#llx) returned %d", w->id, (ull)a, err);
	w->area_frees++;
out:
	w->frees++;
	w->nlive--;
	w->live[i] = w->live[w->nlive];
	w->live_size[i] = w->live_size[w->nlive];
	w->live_req[i] = w->live_req[w->nlive];
	w->live_kind[i] = w->live_kind[w->nlive];
}

/* To the next CPU of the cycle (or to any, with a mask of all of them). */
static void move_cpu(struct worker *w, bool anywhere)
{
	cpu_set_t set;
	int err;

	CPU_ZERO(&set);
	if (anywhere) {
		for (int c = 0; c < ncpus; c++)
			CPU_SET(cpus[c], &set);
	} else {
		w->cpu = (w->cpu + 1) % ncpus;
		CPU_SET(cpus[w->cpu], &set);
		w->moves++;
	}
	if ((err = sched_setaffinity(0, sizeof(set), &set)))
		FAIL("worker %u: sched_setaffinity: %d", w->id, errno);
}

static void *worker(void *arg)
{
	struct worker *w = arg;
	uint64_t next_move = rnd(w, 2 * MOVE_EVERY);

	w->cpu = (int)(w->id % (uint32_t)ncpus);
	move_cpu(w, false);
	for (uint64_t i = 0; i < w->ops && !atomic_load(&failed); i++) {
		if (i == next_move) {
			move_cpu(w, false);
			next_move += 1 + rnd(w, 2 * MOVE_EVERY);
		}
		if (w->nlive < MAX_LIVE && (!w->nlive || rnd(w, 100) < 55)) {
			if (rnd(w, 100) < 40)
				worker_ram_alloc(w);
			else
				worker_alloc(w);
		} else {
			worker_free(w, rnd(w, w->nlive));
		}
	}
	/* Free what is left, elsewhere than most of it came from. */
	move_cpu(w, false);
	while (w->nlive)
		worker_free(w, 0);
	move_cpu(w, true);
	return NULL;
}

/* Purges in every mode, stats and checks, while the workers run. */
static void *purger(void *arg)
{
	struct worker *self = arg;	/* for its rng */
	struct vmap_stats st = { .size = sizeof(st) }, last = st;
	struct timespec nap = { 0, 50000 };
	unsigned how;
	int err;

	for (uint64_t loops = 1; !atomic_load(&done) && !atomic_load(&failed);
	     loops++) {
		how = (unsigned)rnd(self, 5);	/* 4: unmap_aliases */
		in_aliases = how == 4;
		err = how == 4 ? vmap_unmap_aliases(space)
			       : vmap_purge(space, how);
		in_aliases = false;
		/* Only a plain TRY may find another purge running. */
		if (err == -EBUSY && how == VMAP_PURGE_TRY)
			busy_tries++;
		else if (err)
			FAIL("purge mode %u returned %d", how, err);
		/* Event counters never go back; free and lazy pages, each
		 * read at one instant, never pass the total; each block is
		 * read whole.  (Busy pages are summed shard by shard, and
		 * blocks queue by queue, so what moves meanwhile may count
		 * twice: no bound on them.) */
		if ((err = vmap_stats(space, &st)) || st.allocs < last.allocs ||
		    st.frees < last.frees || st.purges < last.purges ||
		    st.flushes < last.flushes ||
		    st.ranges_flushed < last.ranges_flushed ||
		    st.free_pages > NPAGES || st.lazy_pages > NPAGES ||
		    st.blocks_created < last.blocks_created ||
		    st.blocks_freed < last.blocks_freed ||
		    st.block_pages != block_pages ||
		    st.block_free_pages + st.block_dirty_pages >
			    st.blocks * block_pages)
			FAIL("vmap_stats() = %d, or counters out of line", err);
		last = st;
		if (loops % 32 == 0 && (err = vmap_check(space)))
			FAIL("vmap_check() = %d while running", err);
		nanosleep(&nap, NULL);
	}
	return NULL;
}

int main(void)
{
	const char *env_t = getenv("VMAP_STRESS_THREADS");
	const char *env_o = getenv("VMAP_STRESS_OPS");
	int nthreads = env_t ? atoi(env_t) : 4;
	uint64_t ops = env_o ? strtoull(env_o, NULL, 0) : DEFAULT_OPS;
	static struct worker w[MAX_THREADS + 1];	/* + the purger */
	struct vmap_stats st = { .size = sizeof(st) };
	uint64_t allocs = 0, frees = 0, enospc = 0, ram_allocs = 0;
	uint64_t area_frees = 0, failures = 0, moves = 0, ram_enospc = 0;
	struct vmap_config cfg;
	struct timespec t0, t1;
	cpu_set_t mine;

	seed = test_seed("stress_test");
	fflush(stdout);
	REQUIRE(nthreads >= 1 && nthreads <= MAX_THREADS);
	REQUIRE(sched_getaffinity(0, sizeof(mine), &mine) == 0);
	for (int c = 0; c < CPU_SETSIZE; c++)
		if (CPU_ISSET(c, &mine))
			cpus[ncpus++] = c;
	REQUIRE(ncpus > 0);
	fl.rng = seed ^ 0x5eed;
	block_pages = seed & 1 ? 128 : 256;
	vmap_config_init(&cfg);
	cfg.base = BASE;
	cfg.length = NPAGES * PAGE;
	cfg.lazy_max_pages = LAZY_MAX;
	cfg.flush = flush_cb;
	cfg.block_pages = block_pages;
	/* VMAP_STRESS_PURGER=1: most purges, and flushes, on the space's own
	 * thread, racing the workers' frees and the test's purger. */
	if (getenv("VMAP_STRESS_PURGER") &&
	    atoi(getenv("VMAP_STRESS_PURGER")))
		cfg.flags |= VMAP_SPACE_PURGER;
	REQUIRE(vmap_space_create(&cfg, &space) == 0);

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int i = 0; i <= nthreads; i++) {
		w[i].id = (uint32_t)i + 1;
		w[i].rng = seed + (uint64_t)i * 0x632be59bd9b4e019ull;
		w[i].ops = ops;
		REQUIRE(!pthread_create(&w[i].thread, NULL,
					i < nthreads ? worker : purger, &w[i]));
	}
	for (int i = 0; i < nthreads; i++) {
		pthread_join(w[i].thread, NULL);
		allocs += w[i].allocs;
		frees += w[i].frees;
		enospc += w[i].enospc;
		ram_allocs += w[i].ram_allocs;
		area_frees += w[i].area_frees;
		moves += w[i].moves;
		ram_enospc += w[i].ram_enospc + w[i].ram_big_enospc;
		failures += w[i].enospc - w[i].ram_enospc +
			    w[i].ram_enospc;
	}
	atomic_store(&done, true);
	pthread_join(w[nthreads].thread, NULL);
	clock_gettime(CLOCK_MONOTONIC, &t1);

	/* Quiet now, everything freed: every block is all dirty (retired
	 * already) or fragmented, so vmap_unmap_aliases must retire the rest
	 * and leave the whole space one free block; and the counters must
	 * add up to what the threads saw. */
	CHECK(!atomic_load(&failed));
	CHECK_EQ(vmap_unmap_aliases(space), 0);
	CHECK_EQ(vmap_stats(space, &st), 0);
	CHECK_EQ(st.blocks, 0);
	CHECK_EQ(st.block_free_pages, 0);
	CHECK_EQ(st.block_dirty_pages, 0);
	CHECK_EQ(st.blocks_created, st.blocks_freed);
	CHECK_EQ(st.block_pages, block_pages);
	CHECK_EQ(st.busy_pages + st.free_pages + st.lazy_pages, st.total_pages);
	CHECK_EQ(st.busy_areas, 0);
	CHECK_EQ(st.busy_pages, 0);
	CHECK_EQ(st.lazy_areas, 0);
	CHECK_EQ(st.lazy_pages, 0);
	CHECK_EQ(st.free_pages, NPAGES);
	CHECK_EQ(st.free_blocks, 1);
	CHECK_EQ(st.largest_free_pages, NPAGES);
	CHECK_EQ(st.allocs, allocs);
	CHECK_EQ(st.frees, frees);
	CHECK_EQ(st.areas_purged, area_frees + st.blocks_freed);
	CHECK_EQ(st.alloc_failures, failures);
	CHECK_EQ(st.flushes, fl.calls);
	CHECK_EQ(st.ranges_flushed, fl.ranges);
	for (uint64_t p = 0; p < NPAGES; p++)
		CHECK(atomic_load(&owner[p]) == 0);
	CHECK_EQ(vmap_check(space), 0);
	vmap_space_destroy(space);
	printf("stress_test%s: %d workers x %llu ops on %d CPUs in %.2f s: %llu "
	       "allocs (%llu vm_map_ram), %llu -ENOSPC (%llu vm_map_ram), "
	       "%llu blocks of %llu pages, %llu CPU moves, %llu flushes, %llu "
	       "allocs during one, %llu busy TRYs\n",
	       cfg.flags & VMAP_SPACE_PURGER ? " (purge thread)" : "",
	       nthreads, (ull)ops, ncpus, (double)(t1.tv_sec - t0.tv_sec) +
	       (double)(t1.tv_nsec - t0.tv_nsec) / 1e9, (ull)allocs,
	       (ull)ram_allocs, (ull)enospc, (ull)ram_enospc,
	       (ull)st.blocks_created, (ull)block_pages, (ull)moves,
	       (ull)st.flushes, (ull)fl.during, (ull)busy_tries);
	return test_summary("stress_test");
}
