/* SPDX-License-Identifier: MIT */
/*
 * bench_headline.c - the seed's headline: what one purge costs against the
 * number of *busy* areas in the space.
 *
 * Before 2016 the kernel found lazy areas by walking every busy area, so a
 * purge of a thousand lazy areas cost more the more areas were live; the
 * lazy list made it independent of them.  For each busy count, the space is
 * filled with that many one-page areas (kept), then 1,000 more are allocated,
 * each followed by a busy separator so that nothing coalesces, and freed; one
 * synchronous purge of them is timed (the separators, 1,000 more busy areas
 * during the purge, are then freed untimed).  A range space: no memory is touched,
 * so this is the mechanism alone.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"
#include "vmap.h"

#define PG 4096ull
#define LAZY 1000
#define ROUNDS 5

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Median purge time, in microseconds, with `busy` areas live; <0 on error. */
static double one(uint64_t busy, int *failures)
{
	struct vmap_config c;
	struct vmap_stats st = { .size = sizeof(st) };
	vmap_space *s;
	uint64_t *lazy = malloc(2 * LAZY * sizeof(*lazy)), *sep = lazy + LAZY, a;
	double t[ROUNDS];

	vmap_config_init(&c);
	c.base = 1ull << 44;
	c.length = 1ull << 44;
	c.lazy_max_pages = UINT64_MAX; /* only the timed purge purges */
	if (!lazy || vmap_space_create(&c, &s)) {
		free(lazy);
		++*failures;
		return -1;
	}
	/* The busy areas; then each round puts 1,000 lazy areas after them,
	 * each followed by a busy separator, so nothing coalesces. */
	for (uint64_t i = 0; i < busy; i++)
		if (vmap_alloc(s, PG, 0, 0, UINT64_MAX, &a))
			++*failures;
	for (int r = 0; r < ROUNDS; r++) {
		for (int i = 0; i < LAZY; i++)
			if (vmap_alloc(s, PG, 0, 0, UINT64_MAX, &lazy[i]) ||
			    vmap_alloc(s, PG, 0, 0, UINT64_MAX, &sep[i]))
				++*failures;
		for (int i = 0; i < LAZY; i++)
			vmap_free(s, lazy[i]);
		t[r] = now_us();
		vmap_purge(s, VMAP_PURGE_SYNC);
		t[r] = now_us() - t[r];
		/* The separators go too, untimed, so every round starts with
		 * `busy` busy areas. */
		for (int i = 0; i < LAZY; i++)
			vmap_free(s, sep[i]);
		vmap_purge(s, VMAP_PURGE_SYNC);
	}
	vmap_stats(s, &st);
	if (st.areas_purged != (uint64_t)ROUNDS * LAZY * 2 ||
	    st.busy_areas != busy || vmap_check(s))
		++*failures;
	vmap_space_destroy(s);
	free(lazy);
	qsort(t, ROUNDS, sizeof(*t), cmp);
	return t[ROUNDS / 2];
}

int headline_run(const char *backend, const uint64_t *busy, int nbusy)
{
	int failures = 0;
	char metric[64], extra[64];

	for (int i = 0; i < nbusy; i++) {
		double us = one(busy[i], &failures);

		snprintf(metric, sizeof(metric), "purge_us_%llu",
			 (unsigned long long)busy[i]);
		snprintf(extra, sizeof(extra), ",\"busy\":%llu,\"lazy\":%d",
			 (unsigned long long)busy[i], LAZY);
		bench_result("headline", backend, metric, us, extra);
	}
	return failures;
}
