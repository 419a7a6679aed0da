/* SPDX-License-Identifier: MIT */
/*
 * bench/stall.c - how long vmap_dump and vmap_check stop the other threads
 * of a big space, and what a big purge leaves allocated.
 *
 * A range space holds N busy areas.  A second thread does alloc + free
 * pairs of one page without pause, timing each call; meanwhile the main
 * thread runs vmap_dump (to /dev/null), then vmap_check, and the longest
 * call of the second thread during each is the stall it saw.  Then all N
 * areas are freed and purged at once, and the process's RSS is read before
 * the frees and after the purge, with the bytes of heap in use (mallinfo2):
 * a purge's sort buffers and flush vector (about 48 bytes an area) must not
 * stay behind.
 *
 * Usage: bench-stall [-n areas] [-r repeats]
 */
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "vmap.h"

#define PG 4096ull

static vmap_space *s;
static atomic_bool stop, measuring;
static _Atomic uint64_t worst, calls;

static uint64_t now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void *churn(void *arg)
{
	(void)arg;
	while (!atomic_load(&stop)) {
		uint64_t a, t0 = now(), t;

		if (vmap_alloc(s, PG, 0, 0, UINT64_MAX, &a) == 0)
			vmap_free(s, a);
		t = now() - t0;
		if (atomic_load(&measuring)) {
			if (t > atomic_load(&worst))
				atomic_store(&worst, t);
			atomic_fetch_add(&calls, 1);
		}
	}
	return NULL;
}

static long rss_kib(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long kib = -1;

	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, "VmRSS:", 6))
			kib = atol(line + 6);
	if (f)
		fclose(f);
	return kib;
}

/* Run fn once while the churn thread is measured; its wall time and the
 * churn's longest pair, in microseconds. */
static void stall(const char *what, int (*fn)(void), int repeats)
{
	for (int r = 0; r < repeats; r++) {
		uint64_t t0;
		double took;

		atomic_store(&worst, 0);
		atomic_store(&calls, 0);
		atomic_store(&measuring, true);
		t0 = now();
		if (fn()) {
			fprintf(stderr, "%s failed\n", what);
			exit(1);
		}
		took = (now() - t0) / 1e3;
		atomic_store(&measuring, false);
		printf("%-12s %10.0f us   other thread: longest alloc+free "
		       "%8.1f us over %llu pairs\n",
		       what, took, atomic_load(&worst) / 1e3,
		       (unsigned long long)atomic_load(&calls));
	}
}

static int dump(void)
{
	FILE *f = fopen("/dev/null", "w");
	int err = vmap_dump(s, f);

	fclose(f);
	return err;
}

static int check(void)
{
	return vmap_check(s);
}

int main(int argc, char **argv)
{
	uint64_t n = 2000000, *a;
	struct vmap_config c;
	int repeats = 3, opt;
	pthread_t t;
	long before, after;
	size_t heap_before, heap_after;

	while ((opt = getopt(argc, argv, "n:r:")) != -1) {
		if (opt == 'n')
			n = strtoull(optarg, NULL, 0);
		else if (opt == 'r')
			repeats = atoi(optarg);
		else {
			fprintf(stderr, "usage: %s [-n areas] [-r repeats]\n",
				argv[0]);
			return 2;
		}
	}
	vmap_config_init(&c);
	c.base = 1ull << 40;
	c.length = 1ull << 44;
	c.lazy_max_pages = UINT64_MAX; /* one purge, at the end */
	a = malloc(n * sizeof(*a));
	if (!a || vmap_space_create(&c, &s)) {
		fprintf(stderr, "set-up failed\n");
		return 1;
	}
	for (uint64_t i = 0; i < n; i++)
		if (vmap_alloc(s, PG, 0, 0, UINT64_MAX, &a[i])) {
			fprintf(stderr, "alloc failed\n");
			return 1;
		}
	printf("%llu busy areas\n", (unsigned long long)n);
	pthread_create(&t, NULL, churn, NULL);
	stall("vmap_dump", dump, repeats);
	stall("vmap_check", check, repeats);
	atomic_store(&stop, true);
	pthread_join(t, NULL);

	before = rss_kib();
	heap_before = mallinfo2().uordblks;
	for (uint64_t i = 0; i < n; i++)
		vmap_free(s, a[i]);
	vmap_purge(s, VMAP_PURGE_SYNC);
	after = rss_kib();
	heap_after = mallinfo2().uordblks;
	printf("with %llu busy areas: RSS %ld KiB, heap in use %zu KiB\n"
	       "after freeing and purging them all: RSS %ld KiB, heap in use "
	       "%zu KiB\n",
	       (unsigned long long)n, before, heap_before >> 10, after,
	       heap_after >> 10);
	vmap_space_destroy(s);
	free(a);
	return 0;
}
