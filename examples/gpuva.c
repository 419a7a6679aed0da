/* SPDX-License-Identifier: MIT */
/*
 * gpuva - a GPU virtual-address manager on a vmap range space.
 *
 * What a GPU driver's VA heap does every frame, with the calls it uses:
 *   - buffers placed anywhere (vmap_xalloc: sizes 4 KiB..2 MiB, aligned to
 *     4 KiB, 64 KiB or 2 MiB as the GPU's page sizes want);
 *   - buffers at addresses the application chose (Vulkan capture/replay:
 *     vmap_alloc_at -- a busy range is -EBUSY, a lazy one is purged only
 *     when the driver says so, VMAP_AT_PURGE);
 *   - a reserved range the heap must never hand out (vmap_reserve);
 *   - frees, and the TLB invalidation they need, batched and asynchronous:
 *     the flush_async callback queues one invalidation per batch on a
 *     "GPU" (a fence thread that takes INVALIDATE_US per invalidation, in
 *     order) and returns its fence number; the fence thread reports each one
 *     done with vmap_flush_complete.  The driver lets at most `inflight`
 *     invalidations be queued: a flush that finds the queue full waits for
 *     the oldest (as a ring buffer of `inflight` slots would).
 *
 * It prints allocations per second with 1, 4 and 16 invalidations in flight.
 * With --check (the test suite's run) it also proves the one rule that
 * matters: no address is handed out while an invalidation covering its last
 * free is still queued -- every allocation is compared with every range of
 * every invalidation not yet done -- and vmap_check() passes at the end.
 *
 * Usage: gpuva [--check] [ops]   (default 400000 operations per run)
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vmap.h"

#define KB 1024ull
#define MB (1024 * KB)
#define GB (1024 * MB)
#define VA_BASE (4 * GB)
#define VA_SIZE (64 * GB)
#define LIVE 4096	   /* live buffers the workload keeps */
#define INVALIDATE_US 20   /* one GPU TLB invalidation */
#define MAX_INFLIGHT 16
#define MAX_RANGES 4096	   /* kept per queued invalidation (--check) */

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t rnd(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

/* ---- the "GPU": a queue of invalidations, done in order ---- */

struct inval {
	uint64_t fence;
	size_t n; /* ranges kept (--check) */
	struct vmap_range *r;
};

struct gpu {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	vmap_space *space;
	struct inval q[MAX_INFLIGHT]; /* a ring: [head, head + len) */
	unsigned head, len, inflight;
	uint64_t next_fence, done_fence;
	bool check, stop;
	unsigned long waits; /* flushes that found the ring full */
};

static uint64_t flush_async(void *ctx, const struct vmap_range *r, size_t n)
{
	struct gpu *g = ctx;
	struct inval *iv;

	pthread_mutex_lock(&g->lock);
	if (g->len == g->inflight)
		g->waits++;
	while (g->len == g->inflight)
		pthread_cond_wait(&g->cond, &g->lock);
	iv = &g->q[(g->head + g->len) % MAX_INFLIGHT];
	iv->fence = ++g->next_fence;
	iv->n = 0;
	if (g->check) {
		iv->n = n < MAX_RANGES ? n : MAX_RANGES;
		memcpy(iv->r, r, iv->n * sizeof(*r));
	}
	g->len++;
	pthread_cond_broadcast(&g->cond);
	pthread_mutex_unlock(&g->lock);
	return iv->fence;
}

static void *gpu_thread(void *arg)
{
	struct gpu *g = arg;

	pthread_mutex_lock(&g->lock);
	for (;;) {
		uint64_t fence, until;

		while (!g->len && !g->stop)
			pthread_cond_wait(&g->cond, &g->lock);
		if (!g->len)
			break;
		fence = g->q[g->head].fence;
		pthread_mutex_unlock(&g->lock);
		/* The invalidation itself: the GPU is busy, the CPU waits. */
		for (until = now_ns() + INVALIDATE_US * 1000; now_ns() < until;)
			;
		/* Done: off the queue first, so that a checked allocation
		 * never sees it queued once its range may be handed out. */
		pthread_mutex_lock(&g->lock);
		g->head = (g->head + 1) % MAX_INFLIGHT;
		g->len--;
		g->done_fence = fence;
		pthread_cond_broadcast(&g->cond);
		pthread_mutex_unlock(&g->lock);
		if (vmap_flush_complete(g->space, fence)) {
			fprintf(stderr, "gpuva: fence %llu unknown\n",
				(unsigned long long)fence);
			exit(1);
		}
		pthread_mutex_lock(&g->lock);
	}
	pthread_mutex_unlock(&g->lock);
	return NULL;
}

/* Does [a, a + size) overlap a range whose invalidation is still queued? */
static bool still_queued(struct gpu *g, uint64_t a, uint64_t size)
{
	bool hit = false;

	pthread_mutex_lock(&g->lock);
	for (unsigned k = 0; k < g->len && !hit; k++) {
		const struct inval *iv = &g->q[(g->head + k) % MAX_INFLIGHT];

		for (size_t i = 0; i < iv->n && !hit; i++)
			hit = a < iv->r[i].end && iv->r[i].start < a + size;
	}
	pthread_mutex_unlock(&g->lock);
	return hit;
}

/* ---- the driver's workload ---- */

struct buf {
	uint64_t addr, size;
};

static void fail(const char *what, int err)
{
	fprintf(stderr, "gpuva: %s: %s\n", what, vmap_strerror(err));
	exit(1);
}

/* One run; returns allocations per second. */
static double run(unsigned inflight, unsigned long ops, bool check,
		  unsigned long *fixed_ok, unsigned long *fixed_busy,
		  unsigned long *waits)
{
	static struct buf live[LIVE];
	static struct vmap_range ranges[MAX_INFLIGHT][MAX_RANGES];
	struct gpu g = { .inflight = inflight, .check = check };
	struct vmap_config c;
	vmap_space *s;
	pthread_t t;
	uint64_t x = 0x9e3779b97f4a7c15ull, t0, allocs = 0;
	int err;

	pthread_mutex_init(&g.lock, NULL);
	pthread_cond_init(&g.cond, NULL);
	for (unsigned i = 0; i < MAX_INFLIGHT; i++)
		g.q[i].r = ranges[i];
	vmap_config_init(&c);
	c.base = VA_BASE;
	c.length = VA_SIZE;
	c.lazy_max_pages = 8192; /* 32 MiB of freed VA per invalidation */
	c.flush_async = flush_async;
	c.flush_ctx = &g;
	if ((err = vmap_space_create(&c, &s)))
		fail("vmap_space_create", err);
	g.space = s;
	if (pthread_create(&t, NULL, gpu_thread, &g))
		fail("pthread_create", -EAGAIN);
	/* A carve-out the heap must never hand out. */
	if ((err = vmap_reserve(s, VA_BASE + 32 * GB, 1 * GB, 0)))
		fail("vmap_reserve", err);

	t0 = now_ns();
	for (unsigned i = 0; i < LIVE; i++)
		live[i].size = 0;
	for (unsigned long op = 0; op < ops; op++) {
		struct buf *b = &live[rnd(&x) % LIVE];
		uint64_t size = 4 * KB << (rnd(&x) % 10); /* 4 KiB..2 MiB */
		uint64_t align = size >= 2 * MB ? 2 * MB
				 : size >= 64 * KB ? 64 * KB : 4 * KB;

		if (b->size) {
			if ((err = vmap_free(s, b->addr)))
				fail("vmap_free", err);
			b->size = 0;
		}
		if (rnd(&x) % 64 == 0) {
			/* A capture/replay address: where the application
			 * asks, purging only if a lazy range is in the way. */
			uint64_t at = VA_BASE + (rnd(&x) % (16 * GB / MB)) * MB;

			err = vmap_alloc_at(s, at, 64 * KB, VMAP_AT_PURGE);
			if (err == -EBUSY) {
				++*fixed_busy;
				continue;
			}
			if (err)
				fail("vmap_alloc_at", err);
			++*fixed_ok;
			b->addr = at;
			b->size = 64 * KB;
		} else {
			err = vmap_xalloc(s, size, align, 0, 0, 0, UINT64_MAX,
					  0, &b->addr);
			if (err)
				fail("vmap_xalloc", err);
			b->size = size;
		}
		allocs++;
		if (b->addr % (b->size >= 2 * MB ? 2 * MB : 4 * KB) ||
		    (b->addr < VA_BASE + 33 * GB &&
		     b->addr + b->size > VA_BASE + 32 * GB) ||
		    (check && still_queued(&g, b->addr, b->size))) {
			fprintf(stderr, "gpuva: bad area %#llx+%#llx\n",
				(unsigned long long)b->addr,
				(unsigned long long)b->size);
			exit(1);
		}
	}
	t0 = now_ns() - t0;

	for (unsigned i = 0; i < LIVE; i++)
		if (live[i].size && (err = vmap_free(s, live[i].addr)))
			fail("vmap_free", err);
	if ((err = vmap_purge(s, VMAP_PURGE_SYNC)))
		fail("vmap_purge", err);
	pthread_mutex_lock(&g.lock);
	g.stop = true;
	pthread_cond_broadcast(&g.cond);
	pthread_mutex_unlock(&g.lock);
	pthread_join(t, NULL);
	if (check) {
		struct vmap_stats st = { .size = sizeof(st) };

		vmap_stats(s, &st);
		if ((err = vmap_check(s)) || st.inflight_flushes ||
		    st.busy_pages != 1 * GB / 4096 ||
		    st.completions != g.done_fence)
			fail("the end state", err ? err : -EINVAL);
	}
	*waits = g.waits;
	vmap_space_destroy(s);
	pthread_cond_destroy(&g.cond);
	pthread_mutex_destroy(&g.lock);
	return allocs / (t0 / 1e9);
}

int main(int argc, char **argv)
{
	static const unsigned depth[] = { 1, 4, 16 };
	bool check = argc > 1 && !strcmp(argv[1], "--check");
	unsigned long ops = strtoul(argc > 1 + check ? argv[1 + check] : "0",
				    NULL, 0);

	if (!ops)
		ops = check ? 20000 : 400000;
	printf("gpuva: %lu operations per run, %u live buffers, %llu us per "
	       "invalidation%s\n",
	       ops, LIVE, (unsigned long long)INVALIDATE_US,
	       check ? ", checked" : "");
	printf("in flight   allocs/s   fixed ok/busy   flushes that waited\n");
	for (unsigned i = 0; i < 3; i++) {
		unsigned long ok = 0, busy = 0, waits = 0;
		double rate = run(depth[i], ops, check, &ok, &busy, &waits);

		printf("%9u %10.0f %8lu/%-6lu %10lu\n", depth[i], rate, ok,
		       busy, waits);
	}
	return 0;
}
