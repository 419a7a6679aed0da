/* SPDX-License-Identifier: MIT */
/*
 * model_test.c - the model test (model_ops.c against model_ref.c) driven by
 * a PRNG: about 20 spaces a run, alternating filling and draining.  The seed
 * is printed first; VMAP_SEED replays a run, VMAP_MODEL_OPS sets the number
 * of operations.  An operation that hangs is reported with its index.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>
#include <vmap.h>

#include "model.h"
#include "test.h"

#ifndef __has_feature
#define __has_feature(x) 0	/* gcc < 14 defines __SANITIZE_*__ instead */
#endif
#if defined(__SANITIZE_THREAD__) || __has_feature(thread_sanitizer)
#define DEFAULT_OPS 50000	/* single-threaded: TSan only costs here */
#elif defined(__SANITIZE_ADDRESS__) || __has_feature(address_sanitizer)
#define DEFAULT_OPS 200000
#else
#define DEFAULT_OPS 1000000
#endif

typedef unsigned long long ull;

static uint64_t seed;

/* A deadlock in the library (a lock left held, say) would hang the test
 * until ctest's timeout, silently: say which op instead. */
static atomic_uint_fast64_t progress;

static void *watchdog(void *arg)
{
	uint64_t last = UINT64_MAX, now;

	(void)arg;
	for (;; last = now) {
		sleep(20);
		now = atomic_load_explicit(&progress, memory_order_relaxed);
		if (now == last) {
			fprintf(stderr, "model_test.c: seed %#llx, op %llu: no "
				"progress in 20 s (a deadlock?)\n",
				(ull)seed, (ull)now);
			_exit(1);
		}
	}
	return NULL;
}

int main(void)
{
	const char *env = getenv("VMAP_MODEL_OPS");
	uint64_t total = env ? strtoull(env, NULL, 0) : DEFAULT_OPS;
	uint64_t spaces = 0, allocs = 0, fails = 0, batch = 0, blocks = 0;
	uint64_t hits = 0, decayed = 0;
	const struct vmap_stats *st = model_stats();
	const struct model_tally *at = model_tally();
	struct timespec t0, t1;
	pthread_t dog;

	seed = test_seed("model_test");
	fflush(stdout);		/* the seed before any failure on stderr */
	model_seed(seed);
	model_pin();
	REQUIRE(pthread_create(&dog, NULL, watchdog, NULL) == 0);
	pthread_detach(dog);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (; model_ops() < total; spaces++) {
		uint64_t n;
		unsigned p_alloc = 50;

		model_new_space();
		/* About 20 spaces a run; fewer ops on small-area spaces,
		 * which are slow to check (thousands of areas). */
		n = 1 + total / 40 + model_rnd(total / 20);
		if (model_small_areas())
			n = n / 4 + 1;
		for (uint64_t i = 0; i < n && model_ops() < total; i++) {
			/* Alternate filling and draining, so that both full
			 * spaces (-ENOSPC, purge and retry) and emptying
			 * ones are common. */
			if (i % 2048 == 0)
				p_alloc = 10 + (unsigned)model_rnd(70);
			model_step(p_alloc);
			atomic_store_explicit(&progress, model_ops(),
					      memory_order_relaxed);
		}
		allocs += st->allocs;
		fails += st->alloc_failures;
		blocks += st->blocks_created;
		hits += st->cached_hits;
		decayed += st->cached_decayed;
		if (st->purge_max_areas > batch)
			batch = st->purge_max_areas;
	}
	model_end_space();
	clock_gettime(CLOCK_MONOTONIC, &t1);
	printf("model_test: %llu ops on %llu spaces in %.2f s: %llu allocs, "
	       "%llu failures, largest purge %llu areas, %llu vmap blocks, "
	       "%llu from node pools, %llu pooled areas decayed\n",
	       (ull)model_ops(), (ull)spaces, (double)(t1.tv_sec - t0.tv_sec) +
	       (double)(t1.tv_nsec - t0.tv_nsec) / 1e9, (ull)allocs,
	       (ull)fails, (ull)batch, (ull)blocks, (ull)hits, (ull)decayed);
	printf("model_test: %llu fixed-address allocations: %llu placed "
	       "(%llu from node pools, %llu after draining them, %llu after "
	       "a purge), %llu -EBUSY, %llu -EAGAIN; %llu unreserved, %llu "
	       "frees of reservations refused; range states: %llu free, "
	       "%llu lazy, %llu busy\n",
	       (ull)at->at, (ull)at->placed, (ull)at->pooled,
	       (ull)at->drained, (ull)at->purged, (ull)at->busy,
	       (ull)at->again, (ull)at->unreserved, (ull)at->refused,
	       (ull)at->state[VMAP_RANGE_FREE],
	       (ull)at->state[VMAP_RANGE_LAZY],
	       (ull)at->state[VMAP_RANGE_BUSY]);
	printf("model_test: asynchronous flushes: %llu flights (%llu markers, "
	       "%llu started completed, %llu of them sharing the token of "
	       "one completed then), %llu completions (%llu out of "
	       "order, %llu of shared tokens), %llu from the callback, %llu "
	       "unknown tokens remembered, %llu -ENOENT, %llu -EINVAL; "
	       "waits forestalled: %llu by the callback, %llu by a "
	       "completion first; %llu walks\n",
	       (ull)at->flights, (ull)at->markers, (ull)at->early,
	       (ull)at->early_shared,
	       (ull)at->completed, (ull)at->out_of_order, (ull)at->shared,
	       (ull)at->in_call, (ull)at->remembered, (ull)at->unknown,
	       (ull)at->not_async, (ull)at->unblocked,
	       (ull)at->completed_first, (ull)at->walks);
	printf("model_test: spans: %llu empty spaces, %llu spans added "
	       "(%llu cuts), %llu refused (%llu -EEXIST, %llu -ERANGE, %llu "
	       "-EINVAL); %llu fixed-address calls and range states not "
	       "inside one span\n",
	       (ull)at->span_spaces, (ull)at->spans, (ull)at->cuts,
	       (ull)(at->span_bad[0] + at->span_bad[1] + at->span_bad[2]),
	       (ull)at->span_bad[0], (ull)at->span_bad[1],
	       (ull)at->span_bad[2], (ull)at->not_in_span);
	test_checks = model_checks();	/* the checks were the model's */
	return test_summary("model_test");
}
