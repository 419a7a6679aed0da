/* SPDX-License-Identifier: MIT */
/*
 * async_test.c - a GPU driver's VA heap with asynchronous TLB invalidations,
 * run hard from several threads at once.
 *
 * The space's flush_async callback does what a driver does: it records the
 * batch's ranges, marks every page of them "invalidation pending", queues the
 * invalidation under a fresh fence number -- or, now and then, under the
 * fence of the invalidation queued just before it, still unsignalled (one
 * fence for two flushes, from any call that flushes) -- and returns that
 * number.  A "GPU" thread signals the queued fences out of order, each after
 * a small random delay, clearing the pages' marks just before it calls
 * vmap_flush_complete; a shared fence may be signalled at any moment, also
 * while the call that put its second batch on it is still returning it.
 * Now and then the callback signals an earlier fence itself (the completion
 * is deferred to the end of that purge), or the very fence it is sharing,
 * before returning it; and now and then the GPU signals a fence at once,
 * new or shared, while the callback that named it has not returned yet (the
 * early path).
 *
 * Worker threads meanwhile allocate anywhere (vmap_alloc, vmap_xalloc with
 * alignments, phases, boundaries, windows, top-down and NOPURGE), at fixed
 * addresses (vmap_alloc_at, vmap_reserve, with and without VMAP_AT_PURGE;
 * often the range they have just freed, so that it is lazy or in flight),
 * query their live areas, and free them; another thread purges (TRY and
 * SYNC), reads the stats and runs vmap_check.
 *
 * What it proves, each with a check that fails when it is broken:
 *   - no reuse before completion: every page of every area handed out has no
 *     owner, was flushed since its last free, and has no invalidation
 *     pending (a per-page count the callback raises and the GPU lowers only
 *     just before the completion);
 *   - every flushed range is sorted, coalesced, page-aligned, in the space,
 *     owned by no live area, and made of pages freed since they were last
 *     flushed;
 *   - every constraint of a request holds; a fixed-address call returns 0
 *     (and the exact range is ours), -EBUSY, or -EAGAIN only without
 *     VMAP_AT_PURGE -- and -EBUSY whenever the range overlaps our own area;
 *   - a batch in flight is lazy to vmap_range_state, a live area busy;
 *   - vmap_flush_complete returns 0 for every queued fence (shared ones
 *     complete every batch that carries them), and -ENOENT for a fence never
 *     issued or already signalled when no flush call is under way;
 *   - the stats: completions between what the threads had finished and what
 *     they had started; vmap_check passes while all this runs;
 *   - no batch is lost: whenever every fence has been signalled and no
 *     flush call has run since, nothing is in flight;
 *   - at the end, with the workers gone: the GPU's last completions --
 *     racing the last purges, then the main thread's vmap_range_state and
 *     vmap_check, which hold the purge mutex -- leave nothing behind once
 *     the GPU is idle (nothing in flight, lazy or busy, all the space free);
 *     an allocation of the whole space while half of it is in flight waits
 *     for the (slow) completions and succeeds, whether that half comes back
 *     to the free tree (one area of 2048 pages) or to the node pools (areas
 *     of at most 256 pages); completions (one per fence), flushes, ranges,
 *     allocations, frees and failures equal what the threads counted.
 * A watchdog fails the test rather than let it hang (a batch whose
 * completion was lost makes an allocation that finds no room wait forever).
 *
 * Before the stress, three small regression tests, one for each library bug
 * this test found (fixed in commit 18fa0af, and each failing before it): a
 * shared fence signalled during the call that returns it again, a
 * completion while another thread holds the purge mutex for a query, and an
 * allocation that waited for a completion whose batch went to the node
 * pools.
 *
 * VMAP_ASYNC_WORKERS (default 3) and VMAP_ASYNC_OPS (per worker) size the
 * run; VMAP_SEED replays the random choices, not the interleaving.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <vmap.h>

#include "test.h"

#ifndef __has_feature
#define __has_feature(x) 0	/* gcc < 14 defines __SANITIZE_*__ instead */
#endif
#if defined(__SANITIZE_THREAD__) || __has_feature(thread_sanitizer)
#define DEFAULT_OPS 12000	/* 1 to 3 s in every build */
#elif defined(__SANITIZE_ADDRESS__) || __has_feature(address_sanitizer)
#define DEFAULT_OPS 60000
#else
#define DEFAULT_OPS 120000
#endif

#define PAGE 4096ull
#define BASE 0x40000000ull
#define NPAGES 4096ull		/* small: the space fills, and misses wait */
#define END (BASE + NPAGES * PAGE)
#define LAZY_MAX 64		/* small, so that frees purge often */
#define MAX_LIVE 128		/* per worker: ~3300 pages with 3 workers */
#define ALL_LIVE (3 * MAX_LIVE)	/* with more workers, fewer each */
#define MAX_WORKERS 16
#define BOGUS (1ull << 63)	/* no fence the callback issues has it */
#define WATCHDOG_S 120

typedef unsigned long long ull;

static vmap_space *space;
static uint64_t seed;
static _Atomic uint32_t owner[NPAGES];	/* 0, or the owning worker's id */
static atomic_uint pending[NPAGES];	/* invalidations not yet signalled */
static atomic_bool unflushed[NPAGES];	/* freed, in no flush since */
static atomic_bool failed, done;

/* Report the first failure only, and make every thread stop. */
#define FAIL(...)                                                           \
	do {                                                                \
		if (atomic_exchange(&failed, true))                         \
			break;                                              \
		fprintf(stderr, "async_test.c:%d: seed %#llx: ", __LINE__,  \
			(ull)seed);                                         \
		fprintf(stderr, __VA_ARGS__);                               \
		fputc('\n', stderr);                                        \
	} while (0)

static uint64_t rnd(uint64_t *rng, uint64_t n)
{
	return test_rand(rng) % n;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void nap_ns(long ns)
{
	struct timespec t = { 0, ns };

	nanosleep(&t, NULL);
}

/* ---- the "GPU": queued invalidations, signalled out of order ---- */

/* One fence: the invalidations of every batch the callback returned it for. */
struct inval {
	uint64_t token;
	unsigned batches;	/* flush calls that returned this token */
	bool rush;		/* signal at once, racing the call's return */
	size_t n, cap;
	struct vmap_range *r;	/* the ranges of all its batches */
};

static struct {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct inval **q;	/* queued, not yet taken to be signalled */
	size_t len, cap;
	struct inval *last;	/* the newest fence, while it is queued */
	uint64_t next_token, rng, calls, ranges;
	uint64_t shared, shared_rushed, deferred, rushed, lost_checks;
	unsigned signalling;	/* taken off the queue, not yet signalled */
	long slow_ns;		/* the end's: each invalidation takes this */
	bool pause, paused, stop;
} gpu = { .lock = PTHREAD_MUTEX_INITIALIZER,
	  .cond = PTHREAD_COND_INITIALIZER };

/* Completions started and returned 0 (callback's and GPU's), the number
 * the GPU signalled before the callback naming them had returned, and of
 * those the shared ones (signalled while the call that returned them a
 * second time was under way). */
static atomic_uint_fast64_t attempts, completed, early, early_shared;
/* The last rush fence signalled: the callback waits for it a moment. */
static atomic_uint_fast64_t rush_done;
/* Checks of -ENOENT outside any flush call, and those the gate missed. */
static uint64_t bogus_checks, bogus_missed, lazy_checks;

/*
 * Which vmap calls are running: a fence no batch has is remembered (and
 * vmap_flush_complete returns 0) while a flush call is under way, so the
 * GPU checks -ENOENT only when no call that may purge is running.  Every
 * such call is bracketed by lib_enter/lib_exit; the GPU closes the gate,
 * waits a moment for `inside` to drain, and checks only if it did.
 */
static atomic_int gate, inside;

static void lib_enter(void)
{
	for (;;) {
		atomic_fetch_add(&inside, 1);
		if (!atomic_load(&gate))
			break;
		atomic_fetch_sub(&inside, 1);
		while (atomic_load(&gate))
			sched_yield();
	}
}

static void lib_exit(void)
{
	atomic_fetch_sub(&inside, 1);
}

/* gpu.lock held: add r[0..n) to e's ranges. */
static void inval_add(struct inval *e, const struct vmap_range *r, size_t n)
{
	if (e->n + n > e->cap) {
		size_t cap = 2 * (e->n + n);
		struct vmap_range *p = realloc(e->r, cap * sizeof(*p));

		REQUIRE(p);
		e->r = p;
		e->cap = cap;
	}
	if (n)
		memcpy(e->r + e->n, r, n * sizeof(*r));
	e->n += n;
}

/* gpu.lock held: take the queued fence q[k] off the queue, to be
 * signalled. */
static struct inval *take_at(size_t k)
{
	struct inval *e = gpu.q[k];

	gpu.q[k] = gpu.q[--gpu.len];
	if (gpu.last == e)
		gpu.last = NULL;
	gpu.signalling++;
	return e;
}

/* gpu.lock held: take a queued fence -- a rush one if any, else one at
 * random -- off the queue; NULL if none.  Any fence may be taken, also one
 * that a flush call has just put a second batch on and is still
 * returning. */
static struct inval *take(uint64_t *rng)
{
	size_t k;

	if (!gpu.len)
		return NULL;
	for (k = 0; k < gpu.len; k++)
		if (gpu.q[k]->rush)
			return take_at(k);
	return take_at(rnd(rng, gpu.len));
}

/*
 * Signal e's fence: its pages' marks go first (once the completion is made,
 * an allocation may get them), then vmap_flush_complete, which must know
 * the token.  Frees e.
 */
static void signal_fence(struct inval *e, const char *who)
{
	int err;

	for (size_t i = 0; i < e->n; i++)
		for (uint64_t a = e->r[i].start; a < e->r[i].end; a += PAGE)
			if (atomic_fetch_sub(&pending[(a - BASE) / PAGE], 1) == 0)
				FAIL("%s: page %#llx of fence %llu was not "
				     "pending", who, (ull)a, (ull)e->token);
	atomic_fetch_add(&attempts, 1);
	if ((err = vmap_flush_complete(space, e->token)))
		FAIL("%s: vmap_flush_complete(%llu) of %u batch(es) "
		     "returned %d", who, (ull)e->token, e->batches, err);
	else
		atomic_fetch_add(&completed, 1);
	if (e->rush)
		atomic_store(&rush_done, e->token);
	free(e->r);
	free(e);
	pthread_mutex_lock(&gpu.lock);
	gpu.signalling--;
	pthread_mutex_unlock(&gpu.lock);
}

static void check_ranges(const struct vmap_range *r, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (r[i].start >= r[i].end || (r[i].start | r[i].end) % PAGE ||
		    r[i].start < BASE || r[i].end > END ||
		    (i && r[i - 1].end >= r[i].start)) {
			FAIL("flush range %zu [%#llx, %#llx) is bad (after "
			     "[%#llx, %#llx))", i, (ull)r[i].start,
			     (ull)r[i].end, (ull)(i ? r[i - 1].start : 0),
			     (ull)(i ? r[i - 1].end : 0));
			continue;
		}
		/* Owners give their pages up, and mark them, before they
		 * free them; a page is in one flush per free. */
		for (uint64_t a = r[i].start; a < r[i].end; a += PAGE) {
			uint32_t who = atomic_load(&owner[(a - BASE) / PAGE]);

			if (who)
				FAIL("flush of page %#llx, live in worker %u's "
				     "area", (ull)a, who);
			if (!atomic_exchange(&unflushed[(a - BASE) / PAGE],
					     false))
				FAIL("flush of page %#llx, not freed since its "
				     "last flush", (ull)a);
		}
	}
}

static uint64_t flush_async(void *ctx, const struct vmap_range *r, size_t n)
{
	struct inval *e, *defer = NULL, *self = NULL;
	uint64_t token, t0;
	bool rush = false, shared = false;

	(void)ctx;
	check_ranges(r, n);
	/* Pending from now until the GPU signals: an allocation that gets
	 * one of these pages before then got it before its completion. */
	for (size_t i = 0; i < n; i++)
		for (uint64_t a = r[i].start; a < r[i].end; a += PAGE)
			atomic_fetch_add(&pending[(a - BASE) / PAGE], 1);
	pthread_mutex_lock(&gpu.lock);
	gpu.calls++;
	gpu.ranges += n;
	/* A fence signalled from the callback: the completion is deferred to
	 * the end of this purge. */
	if (rnd(&gpu.rng, 8) == 0 && (defer = take(&gpu.rng)))
		gpu.deferred++;
	if (gpu.last && rnd(&gpu.rng, 4) == 0) {
		/* One fence for this flush and the one before it -- from any
		 * flush call, one that may wait for a completion included.
		 * Now and then it signals before this call has returned it:
		 * at once on the GPU (a rush), or from this callback. */
		e = gpu.last;
		e->batches++;
		shared = true;
		gpu.shared++;
		switch (rnd(&gpu.rng, 6)) {
		case 0:
			e->rush = rush = true;
			gpu.shared_rushed++;
			break;
		case 1:
			self = e;
			gpu.deferred++;
			break;
		}
	} else {
		REQUIRE(e = calloc(1, sizeof(*e)));
		e->token = ++gpu.next_token;
		e->batches = 1;
		e->rush = rush = rnd(&gpu.rng, 16) == 0;
		gpu.rushed += rush;
		if (gpu.len == gpu.cap) {
			size_t cap = gpu.cap ? 2 * gpu.cap : 64;
			struct inval **q = realloc(gpu.q, cap * sizeof(*q));

			REQUIRE(q);
			gpu.q = q;
			gpu.cap = cap;
		}
		gpu.q[gpu.len++] = e;
		gpu.last = e;
	}
	inval_add(e, r, n);
	token = e->token;
	if (self) {	/* every batch of it, this one's ranges included */
		for (size_t k = 0; k < gpu.len; k++)
			if (gpu.q[k] == self) {
				take_at(k);
				break;
			}
	}
	pthread_cond_broadcast(&gpu.cond);
	pthread_mutex_unlock(&gpu.lock);
	if (defer)
		signal_fence(defer, "callback");
	if (self) {
		/* The fence this call is returning a second time, signalled
		 * before it returns: this batch must start completed. */
		signal_fence(self, "callback (shared)");
		atomic_fetch_add(&early, 1);
		atomic_fetch_add(&early_shared, 1);
	}
	/* A fast GPU: give it a moment to signal this fence before we return
	 * its number, so that the completion comes first. */
	for (t0 = now_ns(); rush && now_ns() - t0 < 200000;) {
		if (atomic_load(&rush_done) == token) {
			atomic_fetch_add(&early, 1);
			if (shared)
				atomic_fetch_add(&early_shared, 1);
			break;
		}
		sched_yield();
	}
	return token;
}

/* The GPU's last fences signalled, shared ones apart (a shared fence
 * whose completion missed a batch is still known). */
#define GONE 8
struct gone {
	uint64_t any[GONE], shared[GONE];
	unsigned nany, nshared;
};

/*
 * Check that vmap_flush_complete knows no fence that was never issued, or
 * was signalled already -- while no flush call is under way, which the gate
 * makes sure of (or we skip the check).
 */
static void check_unknown(uint64_t *rng, const struct gone *g)
{
	uint64_t t0 = now_ns(), token = BOGUS | test_rand(rng) >> 1, r;
	int err;

	r = rnd(rng, 3);
	if (r == 1 && g->nany)
		token = g->any[rnd(rng, g->nany < GONE ? g->nany : GONE)];
	else if (r == 2 && g->nshared)
		token = g->shared[rnd(rng, g->nshared < GONE ? g->nshared
							     : GONE)];

	atomic_store(&gate, 1);
	while (atomic_load(&inside) && now_ns() - t0 < 200000)
		sched_yield();
	if (!atomic_load(&inside)) {
		if ((err = vmap_flush_complete(space, token)) != -ENOENT)
			FAIL("vmap_flush_complete(%#llx), a fence %s, "
			     "returned %d outside any flush call", (ull)token,
			     token & BOGUS ? "never issued"
					   : "signalled already", err);
		bogus_checks++;
	} else {
		bogus_missed++;
	}
	atomic_store(&gate, 0);
}

/*
 * No fence queued or being signalled, and no flush call since we looked:
 * then every batch's fence has been signalled, and nothing may be in
 * flight -- a batch still there was lost (a shared fence that completed
 * one batch of two, say), and an allocation that waits for it waits for
 * ever.
 */
static void check_none_lost(void)
{
	struct vmap_stats st;
	uint64_t calls;
	bool quiet;

	pthread_mutex_lock(&gpu.lock);
	quiet = !gpu.len && !gpu.signalling;
	calls = gpu.calls;
	pthread_mutex_unlock(&gpu.lock);
	if (!quiet)
		return;
	memset(&st, 0, sizeof(st));
	st.size = sizeof(st);
	if (vmap_stats(space, &st))
		FAIL("vmap_stats failed");
	pthread_mutex_lock(&gpu.lock);
	quiet = !gpu.len && !gpu.signalling && gpu.calls == calls;
	gpu.lost_checks += quiet;
	pthread_mutex_unlock(&gpu.lock);
	if (quiet && st.inflight_flushes)
		FAIL("every fence signalled, yet %llu flush(es) in flight "
		     "(%llu pages)", (ull)st.inflight_flushes,
		     (ull)st.inflight_pages);
}

/* While the fence is unsignalled its batches are in flight: lazy. */
static void check_in_flight(const struct inval *e, uint64_t *rng)
{
	const struct vmap_range *r;
	int state = -1, err;

	if (!e->n)
		return;
	r = &e->r[rnd(rng, e->n)];
	err = vmap_range_state(space, r->start, r->end - r->start, &state);
	if (err || state != VMAP_RANGE_LAZY)
		FAIL("range [%#llx, %#llx) of unsignalled fence %llu: "
		     "vmap_range_state %d, state %d (not lazy)",
		     (ull)r->start, (ull)r->end, (ull)e->token, err, state);
	lazy_checks++;
}

static void *gpu_thread(void *arg)
{
	uint64_t rng = seed ^ 0x6a09e667f3bcc908ull;
	struct gone gone = { { 0 }, { 0 }, 0, 0 };
	struct timespec until;

	(void)arg;
	for (;;) {
		struct inval *e = NULL;
		bool stop = false;
		long slow;

		pthread_mutex_lock(&gpu.lock);
		for (;;) {
			if (gpu.pause) {	/* the end: main runs alone */
				gpu.paused = true;
				pthread_cond_broadcast(&gpu.cond);
				pthread_cond_wait(&gpu.cond, &gpu.lock);
				continue;
			}
			if ((e = take(&rng)) || (stop = gpu.stop && !gpu.len))
				break;
			clock_gettime(CLOCK_REALTIME, &until);
			until.tv_nsec += 1000000;
			if (until.tv_nsec >= 1000000000) {
				until.tv_sec++;
				until.tv_nsec -= 1000000000;
			}
			if (pthread_cond_timedwait(&gpu.cond, &gpu.lock,
						   &until) == ETIMEDOUT)
				break;
		}
		slow = gpu.slow_ns;
		pthread_mutex_unlock(&gpu.lock);
		if (!e) {
			if (stop)
				break;
			check_none_lost();	/* idle */
			check_unknown(&rng, &gone);
			continue;
		}
		if (slow)
			nap_ns(slow);
		if (!e->rush) {
			/* The invalidation takes a while. */
			if (rnd(&rng, 2))
				nap_ns((long)rnd(&rng, 40000));
			if (rnd(&rng, 16) == 0)
				check_in_flight(e, &rng);
		}
		gone.any[gone.nany++ % GONE] = e->token;
		if (e->batches > 1)
			gone.shared[gone.nshared++ % GONE] = e->token;
		signal_fence(e, "gpu");
		if (rnd(&rng, 32) == 0)
			check_unknown(&rng, &gone);
	}
	return NULL;
}

/* ---- the workers ---- */

enum kind { AREA, RESERVED };

struct area {
	uint64_t a, size;
	enum kind kind;
};

struct worker {
	pthread_t thread;
	uint32_t id;
	uint64_t rng, ops;
	struct area live[MAX_LIVE];
	size_t nlive, max_live;
	uint64_t last_a, last_size;	/* the area freed last */
	uint64_t allocs, frees, failures, enospc, at_ok, at_busy, at_again;
	uint64_t reserved, queries;
};

/* Claim (or give up) every page of an area: a page someone else owns, one
 * freed and not flushed since, or one whose invalidation is still pending,
 * is a reuse the library allowed and must not have. */
static void own(struct worker *w, uint64_t a, uint64_t size, bool claim,
		const char *how)
{
	for (uint64_t p = (a - BASE) / PAGE; p * PAGE < a + size - BASE; p++) {
		uint32_t was = claim ? 0 : w->id;
		unsigned inv;

		if (!atomic_compare_exchange_strong(&owner[p], &was,
						    claim ? w->id : 0))
			FAIL("worker %u %s [%#llx, %#llx): page %#llx is "
			     "worker %u's", w->id, how, (ull)a,
			     (ull)(a + size), (ull)(BASE + p * PAGE), was);
		if (claim && (inv = atomic_load(&pending[p])))
			FAIL("worker %u %s [%#llx, %#llx): page %#llx still "
			     "has %u invalidation(s) pending", w->id, how,
			     (ull)a, (ull)(a + size), (ull)(BASE + p * PAGE),
			     inv);
		if (claim && atomic_load(&unflushed[p]))
			FAIL("worker %u %s [%#llx, %#llx): page %#llx was "
			     "freed and never flushed since", w->id, how,
			     (ull)a, (ull)(a + size), (ull)(BASE + p * PAGE));
	}
}

static void keep(struct worker *w, uint64_t a, uint64_t size, enum kind k)
{
	w->live[w->nlive++] = (struct area){ a, size, k };
}

static void worker_alloc(struct worker *w)
{
	uint64_t size = (1 + rnd(&w->rng, 16)) * PAGE, align = 0, phase = 0;
	uint64_t nocross = 0, vstart = 0, vend = UINT64_MAX, a = 0, al;
	unsigned flags = 0;
	int err;

	if (rnd(&w->rng, 3) == 0)
		align = PAGE << rnd(&w->rng, 6);
	al = align ? align : PAGE;
	if (rnd(&w->rng, 8) == 0) {	/* a window of half the space */
		vstart = BASE + rnd(&w->rng, NPAGES / 2) * PAGE;
		vend = vstart + NPAGES / 2 * PAGE;
	}
	if (rnd(&w->rng, 6) == 0)
		flags |= VMAP_XALLOC_NOPURGE;
	if (rnd(&w->rng, 4) == 0)
		flags |= VMAP_XALLOC_TOPDOWN;
	if (rnd(&w->rng, 4) == 0)
		phase = rnd(&w->rng, al / PAGE) * PAGE;
	if (rnd(&w->rng, 8) == 0)
		nocross = (32 * PAGE) << rnd(&w->rng, 3);
	lib_enter();
	if (!flags && !phase && !nocross && rnd(&w->rng, 2))
		err = vmap_alloc(space, size - rnd(&w->rng, PAGE), align,
				 vstart, vend, &a);
	else
		err = vmap_xalloc(space, size, align, phase, nocross, vstart,
				  vend, flags, &a);
	lib_exit();
	if (err == -ENOSPC) {	/* the space is small: legitimate */
		w->enospc++;
		w->failures++;
		return;
	}
	if (err) {
		FAIL("worker %u: alloc returned %d", w->id, err);
		return;
	}
	w->allocs++;
	if (a % PAGE || a < BASE || a < vstart || a + size > END ||
	    a + size > vend || (a - phase) % al ||
	    (nocross && a / nocross != (a + size - 1) / nocross)) {
		FAIL("worker %u: [%#llx, %#llx) breaks its constraints "
		     "(align %#llx phase %#llx nocross %#llx window [%#llx, "
		     "%#llx))", w->id, (ull)a, (ull)(a + size), (ull)align,
		     (ull)phase, (ull)nocross, (ull)vstart, (ull)vend);
		return;
	}
	own(w, a, size, true, "got");
	keep(w, a, size, AREA);
}

/* A fixed address: the range just freed (lazy, or in flight: the case a
 * replaying driver meets), one that overlaps a live area of ours (must be
 * -EBUSY), or anywhere. */
static void worker_at(struct worker *w)
{
	uint64_t a, size, r = rnd(&w->rng, 8);
	unsigned flags = rnd(&w->rng, 2) ? VMAP_AT_PURGE : 0;
	bool reserve = rnd(&w->rng, 4) == 0, ours = false;
	int err;

	if (r < 3 && w->last_size) {
		a = w->last_a;
		size = w->last_size;
	} else if (r == 3 && w->nlive) {
		const struct area *l = &w->live[rnd(&w->rng, w->nlive)];
		uint64_t x = l->a + rnd(&w->rng, l->size / PAGE) * PAGE;
		uint64_t back = rnd(&w->rng, 4) * PAGE;

		a = x - back >= BASE ? x - back : BASE;
		size = x + (1 + rnd(&w->rng, 4)) * PAGE - a;
		if (a + size > END)
			size = END - a;
		ours = true;
	} else {
		a = BASE + rnd(&w->rng, NPAGES) * PAGE;
		size = (1 + rnd(&w->rng, 16)) * PAGE;
		if (a + size > END)
			size = END - a;
	}
	lib_enter();
	err = reserve ? vmap_reserve(space, a, size, flags)
		      : vmap_alloc_at(space, a, size, flags);
	lib_exit();
	if (ours && err != -EBUSY) {
		FAIL("worker %u: %s [%#llx, %#llx) over its own area returned "
		     "%d, not -EBUSY", w->id, reserve ? "reserve" : "alloc_at",
		     (ull)a, (ull)(a + size), err);
		return;
	}
	if (err == -EBUSY || (err == -EAGAIN && !(flags & VMAP_AT_PURGE))) {
		w->failures++;
		if (err == -EBUSY)
			w->at_busy++;
		else
			w->at_again++;
		return;
	}
	if (err) {
		FAIL("worker %u: %s [%#llx, %#llx) flags %#x returned %d",
		     w->id, reserve ? "reserve" : "alloc_at", (ull)a,
		     (ull)(a + size), flags, err);
		return;
	}
	w->allocs++;
	w->at_ok++;
	w->reserved += reserve;
	own(w, a, size, true, reserve ? "reserved" : "got at");
	keep(w, a, size, reserve ? RESERVED : AREA);
}

static void worker_query(struct worker *w)
{
	const struct area *l = &w->live[rnd(&w->rng, w->nlive)];
	uint64_t pages = l->size / PAGE, first = rnd(&w->rng, pages);
	uint64_t len = (1 + rnd(&w->rng, pages - first)) * PAGE;
	int state = -1, err;

	err = vmap_range_state(space, l->a + first * PAGE, len, &state);
	if (err || state != VMAP_RANGE_BUSY)
		FAIL("worker %u: vmap_range_state of its live [%#llx, %#llx) "
		     "returned %d, state %d", w->id,
		     (ull)(l->a + first * PAGE),
		     (ull)(l->a + first * PAGE + len), err, state);
	w->queries++;
}

static void worker_free(struct worker *w, size_t i)
{
	struct area l = w->live[i];
	int err;

	w->live[i] = w->live[--w->nlive];
	if (l.kind == RESERVED) {
		/* A reservation is never freed as an area. */
		if (rnd(&w->rng, 8) == 0 &&
		    (err = vmap_free(space, l.a)) != -EPERM)
			FAIL("worker %u: vmap_free of reservation %#llx "
			     "returned %d", w->id, (ull)l.a, err);
		own(w, l.a, l.size, false, "unreserves");
		lib_enter();
		err = vmap_unreserve(space, l.a);
		lib_exit();
		if (err)
			FAIL("worker %u: unreserve(%#llx) returned %d", w->id,
			     (ull)l.a, err);
	} else {
		/* Inside our own live area no other area can start. */
		if (l.size > PAGE && rnd(&w->rng, 32) == 0 &&
		    (err = vmap_free(space, l.a + (1 + rnd(&w->rng,
						 l.size / PAGE - 1)) * PAGE)) !=
			    -ENOENT)
			FAIL("worker %u: free inside its area %#llx returned "
			     "%d", w->id, (ull)l.a, err);
		if (rnd(&w->rng, 32) == 0 &&
		    (err = vmap_unreserve(space, l.a)) != -EPERM)
			FAIL("worker %u: unreserve of area %#llx returned %d",
			     w->id, (ull)l.a, err);
		/* Give the pages up first: from the free on, a purge may
		 * flush them.  (A reservation's were never mapped: its
		 * range goes back with no flush.) */
		own(w, l.a, l.size, false, "frees");
		for (uint64_t a = l.a; a < l.a + l.size; a += PAGE)
			atomic_store(&unflushed[(a - BASE) / PAGE], true);
		lib_enter();
		err = vmap_free(space, l.a);
		lib_exit();
		if (err)
			FAIL("worker %u: free(%#llx) returned %d", w->id,
			     (ull)l.a, err);
		w->last_a = l.a;
		w->last_size = l.size;
	}
	w->frees++;
}

static void *worker(void *arg)
{
	struct worker *w = arg;

	for (uint64_t i = 0; i < w->ops && !atomic_load(&failed); i++) {
		uint64_t r = rnd(&w->rng, 100);

		if (w->nlive < w->max_live && (!w->nlive || r < 55)) {
			if (r < 45 || !w->nlive)
				worker_alloc(w);
			else
				worker_at(w);
		} else if (r < 63) {
			worker_query(w);
		} else {
			worker_free(w, rnd(&w->rng, w->nlive));
		}
	}
	while (w->nlive)
		worker_free(w, 0);
	return NULL;
}

/* Purges (TRY and SYNC), stats and checks while the workers run. */
static void *purger(void *arg)
{
	struct worker *self = arg;	/* for its rng and id */
	struct vmap_stats st = { .size = sizeof(st) }, last = st;
	int err;

	for (uint64_t loops = 1; !atomic_load(&done) && !atomic_load(&failed);
	     loops++) {
		unsigned how = rnd(&self->rng, 2) ? VMAP_PURGE_SYNC
						  : VMAP_PURGE_TRY;
		uint64_t ok, started;

		lib_enter();
		err = vmap_purge(space, how);
		lib_exit();
		if (err && !(err == -EBUSY && how == VMAP_PURGE_TRY))
			FAIL("vmap_purge(%u) returned %d", how, err);
		/* Completions: at least those the threads saw return, at
		 * most those they had started. */
		ok = atomic_load(&completed);
		err = vmap_stats(space, &st);
		started = atomic_load(&attempts);
		if (err || st.completions < ok || st.completions > started ||
		    st.completions < last.completions ||
		    st.flushes < last.flushes || st.allocs < last.allocs ||
		    st.frees < last.frees || st.inflight_pages > NPAGES ||
		    st.inflight_areas > NPAGES || st.free_pages > NPAGES ||
		    st.lazy_pages > NPAGES || st.total_pages != NPAGES)
			FAIL("vmap_stats() = %d, or counters out of line: "
			     "completions %llu (threads: %llu done, %llu "
			     "started), in flight %llu pages", err,
			     (ull)st.completions, (ull)ok, (ull)started,
			     (ull)st.inflight_pages);
		last = st;
		if (loops % 16 == 0 && (err = vmap_check(space)))
			FAIL("vmap_check() = %d while running", err);
		nap_ns(50000 + (long)rnd(&self->rng, 150000));
	}
	return NULL;
}

/* Fail, rather than hang, if the run does not end (a lost completion makes
 * an allocation that finds no room wait forever). */
static pthread_mutex_t dog_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t dog_cond = PTHREAD_COND_INITIALIZER;
static bool dog_off;

static void *watchdog(void *arg)
{
	uint64_t t0 = now_ns(), limit = WATCHDOG_S * 1000000000ull;
	struct timespec until;
	size_t queued;

	(void)arg;
	pthread_mutex_lock(&dog_lock);
	while (!dog_off && now_ns() - t0 < limit) {
		/* After a failure, threads may wait for a completion that
		 * will not come (a batch lost in flight): not for long. */
		if (atomic_load(&failed) && limit > now_ns() - t0 + 5000000000)
			limit = now_ns() - t0 + 5000000000;
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec++;
		pthread_cond_timedwait(&dog_cond, &dog_lock, &until);
	}
	if (!dog_off) {
		pthread_mutex_lock(&gpu.lock);
		queued = gpu.len;
		pthread_mutex_unlock(&gpu.lock);
		fprintf(stderr, "async_test.c: seed %#llx: no end after %.0f "
			"s%s: a thread waits for a completion that never "
			"comes? (%llu completions, %zu fences queued)\n",
			(ull)seed, (double)(now_ns() - t0) / 1e9,
			atomic_load(&failed) ? ", a failure above" : "",
			(ull)atomic_load(&completed), queued);
		_exit(1);
	}
	pthread_mutex_unlock(&dog_lock);
	return NULL;
}

/* ---- the end, with the workers gone ---- */

static void gpu_pause(void)
{
	pthread_mutex_lock(&gpu.lock);
	gpu.pause = true;
	pthread_cond_broadcast(&gpu.cond);
	while (!gpu.paused)
		pthread_cond_wait(&gpu.cond, &gpu.lock);
	pthread_mutex_unlock(&gpu.lock);
}

static void gpu_resume(long slow_ns, bool stop)
{
	pthread_mutex_lock(&gpu.lock);
	gpu.pause = gpu.paused = false;
	gpu.slow_ns = slow_ns;
	gpu.stop = stop;
	pthread_cond_broadcast(&gpu.cond);
	pthread_mutex_unlock(&gpu.lock);
}

/*
 * Until the GPU has signalled every fence queued and is idle; then it
 * pauses.  With query, the main thread meanwhile holds the purge mutex
 * again and again without purging (vmap_range_state of the whole space,
 * vmap_check), so that completions find it held: the holder must give
 * their batches back as it lets go.
 */
static void gpu_drain(bool query)
{
	for (unsigned i = 0;; i++) {
		int state = -1, err;
		bool busy;

		pthread_mutex_lock(&gpu.lock);
		busy = gpu.len || gpu.signalling;
		pthread_mutex_unlock(&gpu.lock);
		if (!busy)
			break;
		if (!query) {
			nap_ns(1000000);
			continue;
		}
		/* Nothing is busy: every page is free, lazy or in flight. */
		err = vmap_range_state(space, BASE, NPAGES * PAGE, &state);
		if (err || state == VMAP_RANGE_BUSY)
			FAIL("vmap_range_state of the whole space returned "
			     "%d, state %d, with no area live", err, state);
		if (i % 8 == 7 && (err = vmap_check(space)))
			FAIL("vmap_check() = %d at the end", err);
	}
	gpu_pause();	/* at the top of its loop: its last one returned */
}

/* The main thread's own areas, checked as a worker's. */
static struct worker boss = { .id = MAX_WORKERS + 2 };

static uint64_t boss_alloc(uint64_t pages, const char *why)
{
	uint64_t a = 0;
	int err;

	lib_enter();
	err = vmap_alloc(space, pages * PAGE, 0, 0, UINT64_MAX, &a);
	lib_exit();
	if (err) {
		fprintf(stderr, "async_test: %s: vmap_alloc of %llu pages "
			"returned %d\n", why, (ull)pages, err);
		CHECK_EQ(err, 0);
		return 0;
	}
	boss.allocs++;
	own(&boss, a, pages * PAGE, true, why);
	return a;
}

/* Free it, and purge: its batch is in flight when this returns. */
static void boss_free(uint64_t a, uint64_t pages)
{
	own(&boss, a, pages * PAGE, false, "frees");
	for (uint64_t p = 0; p < pages; p++)
		atomic_store(&unflushed[(a - BASE) / PAGE + p], true);
	boss.frees++;
	lib_enter();
	CHECK_EQ(vmap_free(space, a), 0);
	CHECK_EQ(vmap_purge(space, VMAP_PURGE_SYNC), 0);
	lib_exit();
}

/* Nothing running, nothing in flight: the whole space free. */
static void check_quiet(const char *when)
{
	struct vmap_stats st = test_stats(space);

	if (st.inflight_pages || st.free_pages != st.total_pages)
		fprintf(stderr, "async_test: %s: %llu pages in flight, %llu "
			"of %llu free\n", when, (ull)st.inflight_pages,
			(ull)st.free_pages, (ull)st.total_pages);
	CHECK_EQ(st.inflight_flushes, 0);
	CHECK_EQ(st.inflight_areas, 0);
	CHECK_EQ(st.inflight_pages, 0);
	CHECK_EQ(st.busy_areas, 0);
	CHECK_EQ(st.busy_pages, 0);
	CHECK_EQ(st.lazy_areas, 0);
	CHECK_EQ(st.lazy_pages, 0);
	CHECK_EQ(st.total_pages, NPAGES);
	CHECK_EQ(st.free_pages, st.total_pages);
}

/*
 * The GPU paused, nothing in flight: put half the space in flight -- one
 * area, or areas of 1 to 256 pages (one batch each) -- let the GPU signal
 * slowly, and allocate the whole space, which waits for every completion.
 * Then the whole space is freed, and its batch completed: when this
 * returns, the GPU is idle and paused again.
 */
static void wait_whole(bool small)
{
	static uint64_t at[NPAGES / 2], len[NPAGES / 2];
	size_t n = 0;
	uint64_t sum = 0, a;

	while (sum < NPAGES / 2) {
		uint64_t p = small ? 1 + rnd(&boss.rng, 256) : NPAGES / 2;

		if (p > NPAGES / 2 - sum)
			p = NPAGES / 2 - sum;
		if (!(a = boss_alloc(p, "half")))
			break;
		at[n] = a;
		len[n++] = p;
		sum += p;
	}
	for (size_t i = 0; i < n; i++)
		boss_free(at[i], len[i]);
	gpu_resume(small ? 2000000 : 20000000, false);
	if ((a = boss_alloc(NPAGES, small ? "the whole space, waiting for "
					    "batches of small areas"
					  : "the whole space, waiting"))) {
		CHECK_EQ(a, BASE);
		boss_free(a, NPAGES);
	}
	gpu_resume(0, false);
	gpu_drain(false);
}

static void stress(uint64_t ops, int nworkers)
{
	static struct worker w[MAX_WORKERS + 1];	/* + the purger */
	uint64_t allocs = 0, frees = 0, failures = 0, enospc = 0, at_ok = 0;
	uint64_t at_busy = 0, at_again = 0, reserved = 0, queries = 0;
	struct vmap_config cfg;
	struct vmap_stats st;
	struct timespec t0, t1;
	pthread_t g, dog;
	uint64_t a;
	int err;

	gpu.rng = seed ^ 0xbb67ae8584caa73bull;
	boss.rng = seed ^ 0x3c6ef372fe94f82bull;
	vmap_config_init(&cfg);
	cfg.base = BASE;
	cfg.length = NPAGES * PAGE;
	cfg.lazy_max_pages = LAZY_MAX;
	cfg.flush_async = flush_async;	/* no purger: flushes run on the
					   threads that purge, which the gate
					   relies on */
	REQUIRE(vmap_space_create(&cfg, &space) == 0);

	clock_gettime(CLOCK_MONOTONIC, &t0);
	REQUIRE(!pthread_create(&dog, NULL, watchdog, NULL));
	REQUIRE(!pthread_create(&g, NULL, gpu_thread, NULL));
	for (int i = 0; i <= nworkers; i++) {
		w[i].id = (uint32_t)i + 1;
		w[i].rng = seed + (uint64_t)(i + 1) * 0x632be59bd9b4e019ull;
		w[i].ops = ops;
		w[i].max_live = ALL_LIVE / (size_t)nworkers < MAX_LIVE
					? ALL_LIVE / (size_t)nworkers
					: MAX_LIVE;
		REQUIRE(!pthread_create(&w[i].thread, NULL,
					i < nworkers ? worker : purger, &w[i]));
	}
	for (int i = 0; i < nworkers; i++) {
		pthread_join(w[i].thread, NULL);
		allocs += w[i].allocs;
		frees += w[i].frees;
		failures += w[i].failures;
		enospc += w[i].enospc;
		at_ok += w[i].at_ok;
		at_busy += w[i].at_busy;
		at_again += w[i].at_again;
		reserved += w[i].reserved;
		queries += w[i].queries;
	}
	atomic_store(&done, true);
	pthread_join(w[nworkers].thread, NULL);

	/* Everything is freed: one last purge puts the rest in flight, and
	 * one more fence follows whatever it found -- while the GPU goes on
	 * signalling, so that its completions race the end of these purges,
	 * and then the main thread's queries and checks (gpu_drain).  A
	 * completion that finds the purge mutex held is given back by the
	 * holder as it lets go: once the GPU is idle, with nothing else
	 * running, nothing may be left in flight, lazy or busy. */
	lib_enter();
	CHECK_EQ(vmap_purge(space, VMAP_PURGE_SYNC), 0);
	lib_exit();
	if ((a = boss_alloc(1, "the last fence")))
		boss_free(a, 1);
	CHECK_EQ(test_stats(space).busy_pages, 0);
	gpu_drain(true);
	check_quiet("after the last completions");

	/* An allocation that finds no room waits for completions: half the
	 * space in flight, a slow GPU, and the whole space asked for -- once
	 * with half the space in one batch of more than 256 pages (given
	 * back to the free tree), once in batches of areas of at most 256
	 * pages (given back to the node pools, which the allocation must
	 * drain after its wait). */
	wait_whole(false);
	check_quiet("after waiting for the tree");
	wait_whole(true);
	gpu_resume(0, true);
	pthread_join(g, NULL);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	pthread_mutex_lock(&dog_lock);
	dog_off = true;
	pthread_cond_signal(&dog_cond);
	pthread_mutex_unlock(&dog_lock);
	pthread_join(dog, NULL);

	CHECK(!atomic_load(&failed));
	CHECK_EQ(gpu.len, 0);
	check_quiet("at the end");
	allocs += boss.allocs;
	frees += boss.frees;
	st = test_stats(space);
	CHECK_EQ(st.completions, atomic_load(&completed));
	CHECK_EQ(atomic_load(&completed), atomic_load(&attempts));
	CHECK_EQ(st.completions, gpu.next_token);	/* one per fence */
	CHECK_EQ(st.flushes, gpu.calls);
	CHECK_EQ(st.ranges_flushed, gpu.ranges);
	CHECK_EQ(st.allocs, allocs);
	CHECK_EQ(st.frees, frees);
	CHECK_EQ(st.alloc_failures, failures);
	for (uint64_t p = 0; p < NPAGES; p++) {
		CHECK_EQ(atomic_load(&owner[p]), 0);
		CHECK_EQ(atomic_load(&pending[p]), 0);
		CHECK_EQ(atomic_load(&unflushed[p]), 0);
	}
	CHECK_EQ(vmap_check(space), 0);
	/* Nothing in flight: no fence is known now. */
	CHECK_EQ(vmap_flush_complete(space, gpu.next_token), -ENOENT);
	CHECK_EQ(vmap_flush_complete(space, BOGUS), -ENOENT);
	CHECK_EQ(vmap_flush_complete(NULL, 1), -EINVAL);
	/* And the whole space is one area again, without a purge. */
	a = 0;
	CHECK_EQ(err = vmap_xalloc(space, NPAGES * PAGE, 0, 0, 0, 0,
				   UINT64_MAX, VMAP_XALLOC_NOPURGE, &a), 0);
	if (!err)
		CHECK_EQ(a, BASE);
	vmap_space_destroy(space);
	space = NULL;

	printf("async_test: %d workers x %llu ops in %.2f s: %llu allocs "
	       "(%llu at fixed addresses, %llu reserved), %llu -ENOSPC, "
	       "%llu -EBUSY, %llu -EAGAIN, %llu queries\n",
	       nworkers, (ull)ops, (double)(t1.tv_sec - t0.tv_sec) +
	       (double)(t1.tv_nsec - t0.tv_nsec) / 1e9, (ull)allocs,
	       (ull)at_ok, (ull)reserved, (ull)enospc, (ull)at_busy,
	       (ull)at_again, (ull)queries);
	printf("async_test: %llu flushes, %llu fences (%llu rushed, %llu "
	       "signalled by the callback), %llu shares (%llu rushed), %llu "
	       "fences signalled before their call returned (%llu while "
	       "shared), %llu misses purged, %llu in-flight checks, %llu "
	       "unknown-fence checks (%llu skipped), %llu lost-batch "
	       "checks\n",
	       (ull)gpu.calls, (ull)gpu.next_token, (ull)gpu.rushed,
	       (ull)gpu.deferred, (ull)gpu.shared, (ull)gpu.shared_rushed,
	       (ull)atomic_load(&early), (ull)atomic_load(&early_shared),
	       (ull)st.purges_miss, (ull)lazy_checks, (ull)bogus_checks,
	       (ull)bogus_missed, (ull)gpu.lost_checks);
	fflush(stdout);
	free(gpu.q);
}

/*
 * ==== Regression tests ====
 *
 * Three bugs this test found, each reduced to a small case.  Each of the
 * tests below failed before commit 18fa0af fixed it (src/flight.c,
 * src/reclaim.c and every holder of the purge mutex).
 */

struct one_fence {
	vmap_space *s;
	uint64_t token;		/* returned by every call */
	unsigned calls, signal_in;	/* signal the fence in call signal_in */
	int err;
};

static uint64_t one_fence_flush(void *ctx, const struct vmap_range *r,
				size_t n)
{
	struct one_fence *f = ctx;

	(void)r;
	(void)n;
	if (++f->calls == f->signal_in)
		f->err = vmap_flush_complete(f->s, f->token);
	return f->token;
}

/*
 * Regression 1: a shared fence signalled while the call that returns it
 * again is under way.  The header: "a completion completes every batch with
 * that token", and "A completion may arrive before the call has returned
 * the token ...: the batch then starts completed".  vmap_flush_complete
 * used to remember an early token only if no flight had it: batch 1 (token
 * 7, in flight) completed, and batch 2, returned with token 7 a moment
 * later, started in flight -- for good, as the fence does not signal again.
 * Its pages were lost, and an allocation that needed them waited for a
 * completion forever.  A driver that puts a second flush on its current,
 * unsignalled fence met this whenever the fence signalled during the call.
 * Now a token completed during a call is remembered even when flights had
 * it.  This test failed before commit 18fa0af (batch 2 stayed in flight);
 * the stress test shares fences freely and signals them during the call
 * that shares them, from the GPU and from the callback.
 */
static void regress_shared_early(void)
{
	struct one_fence f = { .token = 7, .signal_in = 2, .err = 1 };
	struct vmap_config c;
	struct vmap_stats st;
	uint64_t a, b;

	vmap_config_init(&c);
	c.base = BASE;
	c.length = 8 * PAGE;
	c.lazy_max_pages = 1000;
	c.flush_async = one_fence_flush;
	c.flush_ctx = &f;
	REQUIRE(vmap_space_create(&c, &f.s) == 0);
	REQUIRE(vmap_alloc(f.s, PAGE, 0, 0, UINT64_MAX, &a) == 0);
	REQUIRE(vmap_alloc(f.s, PAGE, 0, 0, UINT64_MAX, &b) == 0);
	CHECK_EQ(vmap_free(f.s, a), 0);
	CHECK_EQ(vmap_purge(f.s, VMAP_PURGE_SYNC), 0);	/* batch 1: fence 7 */
	CHECK_EQ(vmap_free(f.s, b), 0);
	/* Batch 2: fence 7 again, and it signals during the call. */
	CHECK_EQ(vmap_purge(f.s, VMAP_PURGE_SYNC), 0);
	CHECK_EQ(f.err, 0);
	st = test_stats(f.s);
	if (st.inflight_flushes)
		fprintf(stderr, "async_test: regression 1: a shared fence "
			"signalled during the call that returns it again "
			"leaves that batch in flight for good\n");
	CHECK_EQ(st.inflight_flushes, 0);
	CHECK_EQ(st.inflight_pages, 0);
	CHECK_EQ(st.free_pages, 8);
	CHECK_EQ(vmap_check(f.s), 0);
	vmap_space_destroy(f.s);
}

struct counter_fence {
	uint64_t next;
};

static uint64_t counter_flush(void *ctx, const struct vmap_range *r,
			      size_t n)
{
	struct counter_fence *c = ctx;

	(void)r;
	(void)n;
	return ++c->next;
}

static atomic_bool query_stop;

static void *query_loop(void *arg)
{
	vmap_space *s = arg;
	int state;

	while (!atomic_load(&query_stop))
		vmap_range_state(s, BASE, PAGE, &state);
	return NULL;
}

/*
 * Regression 2: a completion while another thread holds the purge mutex
 * without purging -- vmap_range_state here; vmap_check, a fixed-address
 * miss, or a purge past its last settle alike.  vmap_flush_complete's
 * trylock fails and leaves the batch on the done list; it used to stay
 * there until some later purge or allocation miss, though the header
 * promises it becomes free space "at once, or, if a purge is running ...,
 * when that purge ends".  Meanwhile the stats counted it neither free nor
 * in flight (inflight_flushes 0, inflight_pages not), vmap_alloc_at without
 * VMAP_AT_PURGE said -EAGAIN and a NOPURGE allocation -ENOSPC for space
 * whose invalidation was done.  Now every holder lets go through
 * purge_unlock, which gives back what completed and looks again.  A race:
 * tried until it shows (or a time bound).  This test failed before commit
 * 18fa0af (its page stranded: in flight with no flight open, 7 of 8 pages
 * free, vmap_alloc_at -EAGAIN); the stress test lets the GPU signal during
 * the last purges and the main thread's queries.
 */
static void regress_complete_during_query(void)
{
	struct counter_fence cf = { 0 };
	struct vmap_config c;
	struct vmap_stats st;
	vmap_space *s;
	pthread_t t;
	uint64_t a, t0 = now_ns();
	bool shown = false;
	unsigned rounds = 0;

	vmap_config_init(&c);
	c.base = BASE;
	c.length = 8 * PAGE;
	c.lazy_max_pages = 1000;
	c.flush_async = counter_flush;
	c.flush_ctx = &cf;
	REQUIRE(vmap_space_create(&c, &s) == 0);
	REQUIRE(!pthread_create(&t, NULL, query_loop, s));
	while (!shown && now_ns() - t0 < 500000000ull) {
		rounds++;
		REQUIRE(vmap_alloc(s, PAGE, 0, 0, UINT64_MAX, &a) == 0);
		CHECK_EQ(vmap_free(s, a), 0);
		CHECK_EQ(vmap_purge(s, VMAP_PURGE_SYNC), 0);
		CHECK_EQ(vmap_flush_complete(s, cf.next), 0);
		shown = test_stats(s).inflight_pages != 0;
	}
	atomic_store(&query_stop, true);
	pthread_join(t, NULL);
	/* Nothing runs now, and every fence has been signalled. */
	st = test_stats(s);
	if (st.inflight_pages)
		fprintf(stderr, "async_test: regression 2 (round %u): a "
			"completion during vmap_range_state on another thread "
			"is not given back\n", rounds);
	CHECK_EQ(st.inflight_flushes, 0);
	CHECK_EQ(st.inflight_pages, 0);
	CHECK_EQ(st.free_pages, 8);
	CHECK_EQ(vmap_alloc_at(s, BASE, 8 * PAGE, 0), 0);
	CHECK_EQ(vmap_check(s), 0);
	vmap_space_destroy(s);
}

struct late_fence {
	vmap_space *s;
	int err;
};

static void *signal_late(void *arg)
{
	struct late_fence *l = arg;

	nap_ns(50000000);	/* the allocation is waiting by now */
	l->err = vmap_flush_complete(l->s, 7);
	return NULL;
}

/*
 * Regression 3: an allocation that finds no room waits for a completion --
 * and then failed, with all the space free.  Its first retry drained the
 * node pools, but the completion gives the batch back like a purge, its
 * areas of up to 256 pages into the pools, and the retry after the wait
 * did not look there; the miss path (reclaim_miss) waits again only while
 * batches are in flight: -ENOSPC, though the same call succeeded at once.
 * The header: an allocation that finds no room returns the pools to the
 * tree "before they report", and after a completion "tries again".  A
 * driver whose buffers are small and whose GPU is slow saw spurious -ENOSPC
 * exactly when it waited.  Now the wait drains the pools too.  This test
 * failed before commit 18fa0af (-ENOSPC with 8 of 8 pages free, all in the
 * pools); the stress test's waiting allocation now also waits for batches
 * of areas of at most 256 pages.
 */
static void regress_wait_then_pools(void)
{
	struct one_fence f = { .token = 7 };
	struct late_fence l = { .err = 1 };
	struct vmap_config c;
	struct vmap_stats st;
	uint64_t a[4], x = 0;
	pthread_t t;
	int err;

	vmap_config_init(&c);
	c.base = BASE;
	c.length = 8 * PAGE;
	c.lazy_max_pages = 1000;
	c.flush_async = one_fence_flush;
	c.flush_ctx = &f;
	REQUIRE(vmap_space_create(&c, &f.s) == 0);
	l.s = f.s;
	for (int i = 0; i < 4; i++)
		REQUIRE(vmap_alloc(f.s, 2 * PAGE, 0, 0, UINT64_MAX, &a[i]) ==
			0);
	for (int i = 0; i < 4; i++)
		CHECK_EQ(vmap_free(f.s, a[i]), 0);
	CHECK_EQ(vmap_purge(f.s, VMAP_PURGE_SYNC), 0);	/* all in flight */
	REQUIRE(!pthread_create(&t, NULL, signal_late, &l));
	err = vmap_alloc(f.s, 8 * PAGE, 0, 0, UINT64_MAX, &x);
	pthread_join(t, NULL);
	CHECK_EQ(l.err, 0);
	st = test_stats(f.s);
	if (err)
		fprintf(stderr, "async_test: regression 3: an allocation "
			"that waited for a completion returned %d with %llu "
			"of %llu pages free (%llu in node pools)\n", err,
			(ull)st.free_pages, (ull)st.total_pages,
			(ull)st.cached_pages);
	CHECK_EQ(err, 0);
	if (err)	/* it was all free: the same call, once more */
		CHECK_EQ(vmap_alloc(f.s, 8 * PAGE, 0, 0, UINT64_MAX, &x), 0);
	CHECK_EQ(x, BASE);
	CHECK_EQ(vmap_check(f.s), 0);
	vmap_space_destroy(f.s);
}

int main(void)
{
	const char *env_w = getenv("VMAP_ASYNC_WORKERS");
	const char *env_o = getenv("VMAP_ASYNC_OPS");
	int nworkers = env_w ? atoi(env_w) : 3;
	uint64_t ops = env_o ? strtoull(env_o, NULL, 0) : DEFAULT_OPS;

	seed = test_seed("async_test");
	fflush(stdout);
	REQUIRE(nworkers >= 1 && nworkers <= MAX_WORKERS);
	/* The small cases first: on a library with one of these bugs, the
	 * stress may lose a batch and end by its watchdog. */
	regress_shared_early();
	regress_complete_during_query();
	regress_wait_then_pools();
	stress(ops, nworkers);
	return test_summary("async_test");
}
