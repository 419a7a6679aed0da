/* SPDX-License-Identifier: MIT */
/*
 * bench/micro/blocks.c - small areas through the per-CPU vmap blocks
 * (vmap_ram_alloc/free) against the tree (vmap_alloc/vmap_free), on a range
 * space, with 1 and 2 threads, each pinned to its own CPU.
 *
 * Each thread keeps a window of 16 live areas of 1-16 pages: every step frees
 * the oldest and allocates a new one.  Reported: million alloc+free pairs per
 * second, all threads together; medians of the repeats.
 *
 * Usage: bench-blocks [-r repeats] [-n pairs per thread]
 */

#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "vmap.h"

#define PG 4096ull
#define WINDOW 16

static unsigned long pairs = 2000000;

struct worker {
	vmap_space *s;
	int blocks, cpu;
	pthread_barrier_t *go;
};

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void *run(void *arg)
{
	struct worker *w = arg;
	uint64_t addr[WINDOW] = { 0 }, size[WINDOW] = { 0 }, x = (uint64_t)w->cpu;
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(w->cpu, &set);
	pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
	pthread_barrier_wait(w->go);
	for (unsigned long i = 0; i < pairs + WINDOW; i++) {
		unsigned k = i % WINDOW;
		int err;

		if (size[k])
			err = w->blocks ? vmap_ram_free(w->s, addr[k], size[k])
					: vmap_free(w->s, addr[k]);
		x = x * 6364136223846793005ull + 1442695040888963407ull;
		size[k] = (1 + (x >> 60)) * PG; /* 1..16 pages */
		err = w->blocks ? vmap_ram_alloc(w->s, size[k], &addr[k])
				: vmap_alloc(w->s, size[k], 0, 0, UINT64_MAX,
					     &addr[k]);
		if (err) {
			fprintf(stderr, "bench-blocks: %s\n", vmap_strerror(err));
			exit(1);
		}
	}
	return NULL;
}

/* Million pairs per second with `threads` threads. */
static double measure(int blocks, int threads)
{
	struct vmap_config c;
	struct worker w[2];
	pthread_t t[2];
	pthread_barrier_t go;
	vmap_space *s;
	double t0, t1;

	vmap_config_init(&c);
	c.base = 1ull << 40;
	c.length = 1ull << 40;
	if (vmap_space_create(&c, &s))
		exit(1);
	pthread_barrier_init(&go, NULL, (unsigned)threads + 1);
	for (int i = 0; i < threads; i++) {
		w[i] = (struct worker){ s, blocks, i, &go };
		pthread_create(&t[i], NULL, run, &w[i]);
	}
	pthread_barrier_wait(&go);
	t0 = now();
	for (int i = 0; i < threads; i++)
		pthread_join(t[i], NULL);
	t1 = now();
	if (vmap_check(s))
		exit(1);
	vmap_space_destroy(s);
	pthread_barrier_destroy(&go);
	return (double)pairs * threads / (t1 - t0) / 1e6;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
	double v[2][3], r[32];
	int reps = 5, opt;

	while ((opt = getopt(argc, argv, "r:n:")) != -1) {
		if (opt == 'r')
			reps = atoi(optarg);
		else if (opt == 'n')
			pairs = strtoul(optarg, NULL, 0);
		else
			return 2;
	}
	if (reps < 1 || reps > 32)
		reps = 5;
	if (sysconf(_SC_NPROCESSORS_ONLN) < 2)
		fprintf(stderr, "bench-blocks: one CPU: the 2-thread rows "
				"share it\n");
	for (int blocks = 0; blocks < 2; blocks++)
		for (int threads = 1; threads <= 2; threads++) {
			for (int k = 0; k < reps; k++)
				r[k] = measure(blocks, threads);
			qsort(r, reps, sizeof(*r), cmp);
			v[blocks][threads] = r[reps / 2];
		}
	printf("small areas (1-16 pages, 16 live per thread), million "
	       "alloc+free pairs/s, median of %d:\n", reps);
	printf("%-28s %10s %10s %12s\n", "", "1 thread", "2 threads",
	       "2T / 1T");
	printf("%-28s %10.2f %10.2f %11.2fx\n", "tree (vmap_alloc/free)",
	       v[0][1], v[0][2], v[0][2] / v[0][1]);
	printf("%-28s %10.2f %10.2f %11.2fx\n", "blocks (vmap_ram_alloc/free)",
	       v[1][1], v[1][2], v[1][2] / v[1][1]);
	printf("%-28s %9.2fx %9.2fx\n", "blocks / tree", v[1][1] / v[0][1],
	       v[1][2] / v[0][2]);
	return 0;
}
