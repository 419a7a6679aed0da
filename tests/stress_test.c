/* SPDX-License-Identifier: MIT */
/*
 * stress_test.c - worker threads allocate and free in one space while another
 * thread purges, reads stats and runs vmap_check, watching for what must never
 * happen: two live areas that overlap, an area handed out while a flush of its
 * range is still running, and counters that disagree with what the threads
 * did.  VMAP_STRESS_THREADS and VMAP_STRESS_OPS (per worker) size the run,
 * VMAP_SEED replays the random choices (not the interleaving).
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>
#include <vmap.h>

#include "test.h"

/* Per worker; about 2 s in each build (TSan costs ~10x, ASan ~3x). */
#ifndef __has_feature
#define __has_feature(x) 0	/* gcc before 14: __SANITIZE_*__ instead */
#endif
#if defined(__SANITIZE_THREAD__) || __has_feature(thread_sanitizer)
#define DEFAULT_OPS 80000u
#elif defined(__SANITIZE_ADDRESS__) || __has_feature(address_sanitizer)
#define DEFAULT_OPS 150000u
#else
#define DEFAULT_OPS 300000u
#endif

#define PAGE 4096ull
#define BASE 0x40000000ull
#define NPAGES 4096ull		/* small enough that -ENOSPC happens */
#define LAZY_MAX 64		/* small, so that frees purge often */
#define MAX_LIVE 112
#define MAX_THREADS 64

static vmap_space *space;
static uint64_t seed;
static _Atomic uint32_t owner[NPAGES];	/* 0, or the owning worker + 1 */
static atomic_bool failed, done;

/* Report the first failure only, and make every thread stop. */
#define FAIL(...)                                                           \
	do {                                                                \
		if (atomic_exchange(&failed, true))                         \
			break;                                              \
		fprintf(stderr, "stress_test.c:%d: FAILED (seed %#llx): ",  \
			__LINE__, (unsigned long long)seed);                \
		fprintf(stderr, __VA_ARGS__);                               \
		fputc('\n', stderr);                                        \
	} while (0)

/*
 * The flush in progress, if any: its ranges are valid until it returns.  The
 * purge mutex is held around the callback, so there is never more than one.
 */
static struct {
	pthread_mutex_t lock;
	const struct vmap_range *r;
	size_t n;
	bool active;
	uint64_t calls, ranges, rng;
	uint64_t overlapped;	/* allocations that ran during a flush */
} fl = { .lock = PTHREAD_MUTEX_INITIALIZER };

static void flush_cb(void *ctx, const struct vmap_range *r, size_t n)
{
	struct timespec nap = { 0, 0 };

	(void)ctx;
	for (size_t i = 0; i < n; i++)
		if (r[i].start >= r[i].end || (r[i].start | r[i].end) % PAGE ||
		    r[i].start < BASE || r[i].end > BASE + NPAGES * PAGE ||
		    (i && r[i - 1].end >= r[i].start))
			FAIL("flush range %zu [%#llx, %#llx) is bad", i,
			     (unsigned long long)r[i].start,
			     (unsigned long long)r[i].end);
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

/* Does [a, end) overlap a range being flushed right now? */
static bool being_flushed(uint64_t a, uint64_t end)
{
	size_t lo = 0, hi;
	bool hit = false;

	pthread_mutex_lock(&fl.lock);
	if (fl.active) {
		/* The first range that ends after a, by bisection. */
		for (hi = fl.n; lo < hi;) {
			size_t mid = lo + (hi - lo) / 2;

			if (fl.r[mid].end <= a)
				lo = mid + 1;
			else
				hi = mid;
		}
		hit = lo < fl.n && fl.r[lo].start < end;
		fl.overlapped++;
	}
	pthread_mutex_unlock(&fl.lock);
	return hit;
}

struct worker {
	pthread_t thread;
	uint32_t id;
	uint64_t rng, ops;
	uint64_t allocs, frees, enospc;
	uint64_t live[MAX_LIVE], live_size[MAX_LIVE];
	size_t nlive;
};

static uint64_t rnd(uint64_t *rng, uint64_t n)
{
	return test_rand(rng) % n;
}

/* Take every page of a new area; a page someone owns is an overlap. */
static void claim(struct worker *w, uint64_t a, uint64_t size)
{
	for (uint64_t p = (a - BASE) / PAGE; p < (a + size - BASE) / PAGE; p++) {
		uint32_t was = 0;

		if (!atomic_compare_exchange_strong(&owner[p], &was, w->id))
			FAIL("worker %u got [%#llx, %#llx), but page %#llx "
			     "belongs to worker %u", w->id,
			     (unsigned long long)a, (unsigned long long)(a + size),
			     (unsigned long long)(BASE + p * PAGE), was);
	}
}

static void release(struct worker *w, uint64_t a, uint64_t size)
{
	for (uint64_t p = (a - BASE) / PAGE; p < (a + size - BASE) / PAGE; p++)
		if (atomic_exchange(&owner[p], 0) != w->id)
			FAIL("worker %u lost page %#llx", w->id,
			     (unsigned long long)(BASE + p * PAGE));
}

static void worker_alloc(struct worker *w)
{
	uint64_t *rng = &w->rng, size = (1 + rnd(rng, 16)) * PAGE, a = 0;
	uint64_t align = rnd(rng, 3) ? 0 : PAGE << rnd(rng, 5), al;
	uint64_t phase = 0, nocross = 0, vstart = 0, vend = UINT64_MAX;
	unsigned flags = 0;
	int err;

	if (rnd(rng, 8) == 0) /* sometimes within half the space */
		vstart = BASE + rnd(rng, NPAGES / 2) * PAGE,
		vend = vstart + NPAGES / 2 * PAGE - rnd(rng, PAGE);
	al = align ? align : PAGE;
	if (rnd(rng, 4)) {
		err = vmap_alloc(space, size - rnd(rng, PAGE), align, vstart,
				 vend, &a);
	} else {
		flags = rnd(rng, 2) ? VMAP_XALLOC_TOPDOWN : 0;
		phase = rnd(rng, al / PAGE) * PAGE;
		if (rnd(rng, 2))
			nocross = (32 * PAGE) << rnd(rng, 3);
		err = vmap_xalloc(space, size, align, phase, nocross, vstart,
				  vend, flags, &a);
	}
	if (err == -ENOSPC) {
		w->enospc++;
		return;
	}
	if (err) {
		FAIL("worker %u: alloc returned %d", w->id, err);
		return;
	}
	w->allocs++;
	if (a < BASE || a < vstart || a + size > BASE + NPAGES * PAGE ||
	    a + size > vend || (a - phase) % al ||
	    (nocross && a / nocross != (a + size - 1) / nocross))
		FAIL("worker %u: [%#llx, %#llx) breaks its constraints", w->id,
		     (unsigned long long)a, (unsigned long long)(a + size));
	if (being_flushed(a, a + size))
		FAIL("worker %u: [%#llx, %#llx) handed out while being flushed",
		     w->id, (unsigned long long)a,
		     (unsigned long long)(a + size));
	claim(w, a, size);
	w->live[w->nlive] = a;
	w->live_size[w->nlive++] = size;
}

static void worker_free(struct worker *w, size_t i)
{
	uint64_t a = w->live[i], size = w->live_size[i];
	int err;

	/* Inside our own live area no other area can start: -ENOENT. */
	if (rnd(&w->rng, 64) == 0 &&
	    (err = vmap_free(space, a + 1 + rnd(&w->rng, size - 1))) != -ENOENT)
		FAIL("worker %u: free inside an area returned %d", w->id, err);
	/* Give the pages up first: once freed, they may come back to
	 * another worker as soon as a purge has flushed them. */
	release(w, a, size);
	err = vmap_free(space, a);
	if (err)
		FAIL("worker %u: free(%#llx) returned %d", w->id,
		     (unsigned long long)a, err);
	w->frees++;
	w->live[i] = w->live[--w->nlive];
	w->live_size[i] = w->live_size[w->nlive];
}

static void *worker(void *arg)
{
	struct worker *w = arg;

	for (uint64_t i = 0; i < w->ops && !atomic_load(&failed); i++) {
		if (w->nlive < MAX_LIVE &&
		    (!w->nlive || rnd(&w->rng, 100) < 55))
			worker_alloc(w);
		else
			worker_free(w, rnd(&w->rng, w->nlive));
	}
	while (w->nlive)
		worker_free(w, 0);
	return NULL;
}

/* Purges of every mode, stats and checks, while the workers run. */
static void *purger(void *arg)
{
	static const unsigned how[] = {
		VMAP_PURGE_TRY, VMAP_PURGE_SYNC,
		VMAP_PURGE_TRY | VMAP_PURGE_FORCE_FLUSH,
		VMAP_PURGE_SYNC | VMAP_PURGE_FORCE_FLUSH,
	};
	struct vmap_stats st = { .size = sizeof(st) }, last = st;
	uint64_t rng = seed ^ 0xabcdef, *ebusy = arg, loops = 0;
	struct timespec nap = { 0, 50000 };
	int err;

	while (!atomic_load(&done) && !atomic_load(&failed)) {
		unsigned h = how[rnd(&rng, 4)];

		err = h == (VMAP_PURGE_SYNC | VMAP_PURGE_FORCE_FLUSH) &&
				      rnd(&rng, 2)
			      ? vmap_unmap_aliases(space)
			      : vmap_purge(space, h);
		/* Only a TRY may find another purge running. */
		if (err == -EBUSY && h == VMAP_PURGE_TRY)
			++*ebusy;
		else if (err)
			FAIL("vmap_purge(%#x) returned %d", h, err);
		err = vmap_stats(space, &st);
		/* Each field is exact alone: event counters never go back,
		 * and no page count can pass the total. */
		if (err || st.allocs < last.allocs || st.frees < last.frees ||
		    st.purges < last.purges || st.flushes < last.flushes ||
		    st.ranges_flushed < last.ranges_flushed ||
		    st.busy_pages > NPAGES || st.free_pages > NPAGES ||
		    st.lazy_pages > NPAGES)
			FAIL("vmap_stats: %d, or odd counters", err);
		last = st;
		if (++loops % 32 == 0 && (err = vmap_check(space)))
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
	static struct worker w[MAX_THREADS];
	struct vmap_stats st = { .size = sizeof(st) };
	uint64_t allocs = 0, frees = 0, enospc = 0, ebusy = 0;
	struct vmap_config cfg;
	struct timespec t0, t1;
	pthread_t purge_thread;

	seed = test_seed("stress_test");
	fflush(stdout);
	REQUIRE(nthreads >= 1 && nthreads <= MAX_THREADS);
	fl.rng = seed;
	vmap_config_init(&cfg);
	cfg.base = BASE;
	cfg.length = NPAGES * PAGE;
	cfg.lazy_max_pages = LAZY_MAX;
	cfg.flush = flush_cb;
	REQUIRE(vmap_space_create(&cfg, &space) == 0);

	clock_gettime(CLOCK_MONOTONIC, &t0);
	REQUIRE(!pthread_create(&purge_thread, NULL, purger, &ebusy));
	for (int i = 0; i < nthreads; i++) {
		w[i].id = (uint32_t)i + 1;
		w[i].rng = seed + (uint64_t)i * 0x632be59bd9b4e019ull;
		w[i].ops = ops;
		REQUIRE(!pthread_create(&w[i].thread, NULL, worker, &w[i]));
	}
	for (int i = 0; i < nthreads; i++) {
		pthread_join(w[i].thread, NULL);
		allocs += w[i].allocs;
		frees += w[i].frees;
		enospc += w[i].enospc;
	}
	atomic_store(&done, true);
	pthread_join(purge_thread, NULL);
	clock_gettime(CLOCK_MONOTONIC, &t1);

	/* Quiet now: one purge must leave the whole space as one free block,
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
	CHECK_EQ(st.alloc_failures, enospc);
	CHECK(st.purge_retries >= enospc);
	CHECK_EQ(st.areas_purged, frees);
	CHECK_EQ(st.flushes, fl.calls);
	CHECK_EQ(st.ranges_flushed, fl.ranges);
	for (uint64_t p = 0; p < NPAGES; p++)
		CHECK(atomic_load(&owner[p]) == 0);
	CHECK_EQ(vmap_check(space), 0);
	vmap_space_destroy(space);
	printf("stress_test: %d workers x %llu ops in %.2f s: %llu allocs, "
	       "%llu -ENOSPC, %llu flushes, %llu allocs during one, %llu busy "
	       "TRYs\n",
	       nthreads, (unsigned long long)ops,
	       (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9,
	       (unsigned long long)allocs, (unsigned long long)enospc,
	       (unsigned long long)st.flushes, (unsigned long long)fl.overlapped,
	       (unsigned long long)ebusy);
	return test_summary("stress_test");
}
