/* SPDX-License-Identifier: MIT */
/*
 * bench/micro/core.c - the core allocator's two speed targets, on a range space
 * (no memory is touched, so this measures the allocator alone):
 *
 *   pair   alloc + free of one page in a space already holding N busy areas,
 *          one thread, lazy mode (purges included, amortised).  Two layouts:
 *          "packed" (the busy areas side by side, one big free block after
 *          them) and "holes" (busy areas separated by one-page free holes, so
 *          the free tree holds N blocks too).
 *   purge  one purge of M lazy areas: total time, and the longest single hold
 *          of the free-space lock (the latency an allocator can see).
 *
 * Usage: bench-core [-n busy] [-m lazy] [-r repeats]
 * Prints the median of the repeats, and the min and max beside it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "vmap.h"

#define PG 4096ull

static uint64_t now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static void report(const char *what, double *v, int n, const char *unit)
{
	qsort(v, n, sizeof(*v), cmp);
	printf("%-44s median %10.1f %s   (min %.1f, max %.1f, %d runs)\n",
	       what, v[n / 2], unit, v[0], v[n - 1], n);
}

static vmap_space *space(uint64_t lazy_max)
{
	struct vmap_config c;
	vmap_space *s;

	vmap_config_init(&c);
	c.base = 1ull << 40;
	c.length = 1ull << 40;
	c.lazy_max_pages = lazy_max;
	if (vmap_space_create(&c, &s)) {
		perror("vmap_space_create");
		exit(1);
	}
	return s;
}

static uint64_t alloc1(vmap_space *s)
{
	uint64_t a;

	if (vmap_alloc(s, PG, 0, 0, UINT64_MAX, &a)) {
		fprintf(stderr, "alloc failed\n");
		exit(1);
	}
	return a;
}

/* ns per alloc+free pair with `busy` areas live. */
static double pair(uint64_t busy, int holes, uint64_t pairs)
{
	vmap_space *s = space(0);
	uint64_t *keep = malloc(2 * busy * sizeof(*keep)), t0, t1;

	for (uint64_t i = 0; i < (holes ? 2 : 1) * busy; i++)
		keep[i] = alloc1(s);
	if (holes) {
		for (uint64_t i = 0; i < 2 * busy; i += 2)
			vmap_free(s, keep[i]);
		vmap_purge(s, VMAP_PURGE_SYNC);
	}
	for (uint64_t i = 0; i < pairs / 10; i++) /* warm up */
		vmap_free(s, alloc1(s));
	t0 = now();
	for (uint64_t i = 0; i < pairs; i++)
		vmap_free(s, alloc1(s));
	t1 = now();
	if (vmap_check(s)) {
		fprintf(stderr, "vmap_check failed\n");
		exit(1);
	}
	vmap_space_destroy(s);
	free(keep);
	return (double)(t1 - t0) / (double)pairs;
}

/* One purge of `lazy` scattered one-page areas. */
static void purge(uint64_t lazy, double *total_ms, double *hold_us)
{
	vmap_space *s = space(UINT64_MAX);
	uint64_t *a = malloc(2 * lazy * sizeof(*a));
	struct vmap_stats st = { .size = sizeof(st) };

	for (uint64_t i = 0; i < 2 * lazy; i++)
		a[i] = alloc1(s);
	/* Every other area, in a shuffled order, so nothing coalesces and
	 * the list arrives unsorted. */
	for (uint64_t i = lazy - 1; i > 0; i--) {
		uint64_t j = (uint64_t)rand() % (i + 1), t = a[2 * i];

		a[2 * i] = a[2 * j];
		a[2 * j] = t;
	}
	for (uint64_t i = 0; i < lazy; i++)
		vmap_free(s, a[2 * i]);
	vmap_purge(s, VMAP_PURGE_SYNC);
	vmap_stats(s, &st);
	if (st.areas_purged != lazy || st.ranges_flushed != lazy) {
		fprintf(stderr, "purge took %llu areas\n",
			(unsigned long long)st.areas_purged);
		exit(1);
	}
	*total_ms = (double)st.purge_last_ns / 1e6;
	*hold_us = (double)st.purge_max_hold_ns / 1e3;
	vmap_space_destroy(s);
	free(a);
}

int main(int argc, char **argv)
{
	uint64_t busy = 100000, lazy = 100000;
	int reps = 5, opt;
	double v[2][64], w[64];
	char what[96];

	while ((opt = getopt(argc, argv, "n:m:r:")) != -1) {
		switch (opt) {
		case 'n': busy = strtoull(optarg, NULL, 0); break;
		case 'm': lazy = strtoull(optarg, NULL, 0); break;
		case 'r': reps = atoi(optarg); break;
		default:
			fprintf(stderr, "usage: %s [-n busy] [-m lazy] "
					"[-r repeats]\n", argv[0]);
			return 2;
		}
	}
	if (reps < 1 || reps > 64)
		reps = 5;
	srand(1);
	printf("vmap core benchmark: range space, 1 thread, %ld CPUs online\n",
	       sysconf(_SC_NPROCESSORS_ONLN));
	for (int holes = 0; holes < 2; holes++) {
		for (int r = 0; r < reps; r++)
			v[holes][r] = pair(busy, holes, 2000000);
		snprintf(what, sizeof(what), "alloc+free 1 page, %llu busy (%s)",
			 (unsigned long long)busy, holes ? "holes" : "packed");
		report(what, v[holes], reps, "ns/pair");
	}
	for (int r = 0; r < reps; r++)
		purge(lazy, &v[0][r], &w[r]);
	snprintf(what, sizeof(what), "purge of %llu lazy areas, total",
		 (unsigned long long)lazy);
	report(what, v[0], reps, "ms     ");
	snprintf(what, sizeof(what), "purge of %llu lazy areas, longest hold",
		 (unsigned long long)lazy);
	report(what, w, reps, "us     ");
	return 0;
}
