/* SPDX-License-Identifier: MIT */
/*
 * stress_test.c - worker threads allocate and free in one space while another
 * thread purges in every mode, reads stats and runs vmap_check.  It watches
 * for what must never happen: two live areas that overlap, an area handed out
 * while a flush of its range is running, a request's constraints broken, and
 * counters that disagree with what the threads did.  VMAP_STRESS_THREADS and
 * VMAP_STRESS_OPS (per worker) size the run; VMAP_SEED replays the random
 * choices, though not the interleaving.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <vmap.h>

#include "test.h"

#ifndef __has_feature
#define __has_feature(x) 0	/* gcc < 14 defines __SANITIZE_*__ instead */
#endif
#if defined(__SANITIZE_THREAD__) || __has_feature(thread_sanitizer)
#define DEFAULT_OPS 80000	/* about 2 s in every build */
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

typedef unsigned long long ull;

static vmap_space *space;
static uint64_t seed;
static _Atomic uint32_t owner[NPAGES];	/* 0, or the owning worker's id */
static atomic_bool failed, done;
static uint64_t busy_tries;	/* TRY purges that found one running */

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
	uint64_t calls, ranges, rng, during;
} fl = { .lock = PTHREAD_MUTEX_INITIALIZER };

static void flush_cb(void *ctx, const struct vmap_range *r, size_t n)
{
	struct timespec nap = { 0, 0 };

	(void)ctx;
	for (size_t i = 0; i < n; i++)
		if (r[i].start >= r[i].end || (r[i].start | r[i].end) % PAGE ||
		    r[i].start < BASE || r[i].end > END ||
		    (i && r[i - 1].end >= r[i].start))
			FAIL("flush range %zu [%#llx, %#llx) is bad", i,
			     (ull)r[i].start, (ull)r[i].end);
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

/* Does [a, end) overlap a range that is being flushed right now? */
static bool being_flushed(uint64_t a, uint64_t end)
{
	size_t lo = 0, hi;
	bool hit = false;

	pthread_mutex_lock(&fl.lock);
	if (fl.active) {
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

struct worker {
	pthread_t thread;
	uint32_t id;
	uint64_t rng, ops, allocs, frees, enospc;
	uint64_t live[MAX_LIVE], live_size[MAX_LIVE];
	size_t nlive;
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
	if (being_flushed(a, a + size))
		FAIL("worker %u: [%#llx, %#llx) handed out while being "
		     "flushed", w->id, (ull)a, (ull)(a + size));
	own(w, a, size, true);
	w->live[w->nlive] = a;
	w->live_size[w->nlive++] = size;
}

static void worker_free(struct worker *w, size_t i)
{
	uint64_t a = w->live[i], size = w->live_size[i];
	int err;

	/* Inside our own live area no other area can start: -ENOENT. */
	if (rnd(w, 64) == 0 &&
	    (err = vmap_free(space, a + 1 + rnd(w, size - 1))) != -ENOENT)
		FAIL("worker %u: free inside an area returned %d", w->id, err);
	/* Give the pages up before the free: from then on, a purge may hand
	 * them to another worker. */
	own(w, a, size, false);
	if ((err = vmap_free(space, a)))
		FAIL("worker %u: free(%#llx) returned %d", w->id, (ull)a, err);
	w->frees++;
	w->live[i] = w->live[--w->nlive];
	w->live_size[i] = w->live_size[w->nlive];
}

static void *worker(void *arg)
{
	struct worker *w = arg;

	for (uint64_t i = 0; i < w->ops && !atomic_load(&failed); i++) {
		if (w->nlive < MAX_LIVE && (!w->nlive || rnd(w, 100) < 55))
			worker_alloc(w);
		else
			worker_free(w, rnd(w, w->nlive));
	}
	while (w->nlive)
		worker_free(w, 0);
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
		err = how == 4 ? vmap_unmap_aliases(space)
			       : vmap_purge(space, how);
		/* Only a plain TRY may find another purge running. */
		if (err == -EBUSY && how == VMAP_PURGE_TRY)
			busy_tries++;
		else if (err)
			FAIL("purge mode %u returned %d", how, err);
		/* Event counters never go back; free and lazy pages, each
		 * read at one instant, never pass the total.  (Busy pages are
		 * summed shard by shard, so an area that moves meanwhile may
		 * count twice: no bound on them.) */
		if ((err = vmap_stats(space, &st)) || st.allocs < last.allocs ||
		    st.frees < last.frees || st.purges < last.purges ||
		    st.flushes < last.flushes ||
		    st.ranges_flushed < last.ranges_flushed ||
		    st.free_pages > NPAGES || st.lazy_pages > NPAGES)
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
	uint64_t allocs = 0, frees = 0, enospc = 0;
	struct vmap_config cfg;
	struct timespec t0, t1;

	seed = test_seed("stress_test");
	fflush(stdout);
	REQUIRE(nthreads >= 1 && nthreads <= MAX_THREADS);
	fl.rng = seed ^ 0x5eed;
	vmap_config_init(&cfg);
	cfg.base = BASE;
	cfg.length = NPAGES * PAGE;
	cfg.lazy_max_pages = LAZY_MAX;
	cfg.flush = flush_cb;
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
	}
	atomic_store(&done, true);
	pthread_join(w[nthreads].thread, NULL);
	clock_gettime(CLOCK_MONOTONIC, &t1);

	/* Quiet now: one purge must leave the whole space one free block,
	 * and the counters must add up to what the threads saw. */
	CHECK(!atomic_load(&failed));
	CHECK_EQ(vmap_purge(space, VMAP_PURGE_SYNC), 0);
	CHECK_EQ(vmap_stats(space, &st), 0);
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
	CHECK_EQ(st.areas_purged, frees);
	CHECK_EQ(st.alloc_failures, enospc);
	CHECK_EQ(st.flushes, fl.calls);
	CHECK_EQ(st.ranges_flushed, fl.ranges);
	for (uint64_t p = 0; p < NPAGES; p++)
		CHECK(atomic_load(&owner[p]) == 0);
	CHECK_EQ(vmap_check(space), 0);
	vmap_space_destroy(space);
	printf("stress_test: %d workers x %llu ops in %.2f s: %llu allocs, "
	       "%llu -ENOSPC, %llu flushes, %llu allocs during one, %llu "
	       "busy TRYs\n", nthreads, (ull)ops,
	       (double)(t1.tv_sec - t0.tv_sec) +
	       (double)(t1.tv_nsec - t0.tv_nsec) / 1e9, (ull)allocs,
	       (ull)enospc, (ull)st.flushes, (ull)fl.during, (ull)busy_tries);
	return test_summary("stress_test");
}
