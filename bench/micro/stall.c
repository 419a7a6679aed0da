/* SPDX-License-Identifier: MIT */
/*
 * bench/micro/stall.c - how long vmap_dump and vmap_check stop the other
 * threads of a big space, and what a big purge leaves allocated.
 *
 * A range space holds N busy areas.  A second thread does alloc + free
 * pairs of one page without pause, timing each call; meanwhile the main
 * thread sleeps, spins, sorts and prints a listing of as many ranges without
 * vmap (the baselines), runs vmap_dump (to /dev/null), then
 * vmap_check, and the longest call of the second thread during each is the
 * stall it saw -- for the pairs, which use the heap, and for a free of an
 * address that is no area's, which takes one busy-shard lock and nothing
 * else, so its stall is vmap's locks alone.  Then all N
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
static _Atomic uint64_t worst, calls, worst_lookup;

static uint64_t now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Alloc + free pairs, and between them a free of an address that is no
 * area's: one busy-shard lock and nothing else -- no heap, no system call --
 * so its longest wait is what vmap's own locks cost it. */
static void *churn(void *arg)
{
	uint64_t x = 1;

	(void)arg;
	while (!atomic_load(&stop)) {
		uint64_t a, t0 = now(), t, t1;

		if (vmap_alloc(s, PG, 0, 0, UINT64_MAX, &a) == 0)
			vmap_free(s, a);
		t = now() - t0;
		x = x * 6364136223846793005ull + 1442695040888963407ull;
		t0 = now();
		vmap_free(s, (1ull << 40) + (x >> 20) * PG + 1);
		t1 = now() - t0;
		if (atomic_load(&measuring)) {
			if (t > atomic_load(&worst))
				atomic_store(&worst, t);
			if (t1 > atomic_load(&worst_lookup))
				atomic_store(&worst_lookup, t1);
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
		atomic_store(&worst_lookup, 0);
		atomic_store(&calls, 0);
		atomic_store(&measuring, true);
		t0 = now();
		if (fn()) {
			fprintf(stderr, "%s failed\n", what);
			exit(1);
		}
		took = (now() - t0) / 1e3;
		atomic_store(&measuring, false);
		printf("%-12s %8.0f ms   other thread, longest: alloc+free "
		       "%8.1f us, lock-only free %8.1f us (%llu pairs)\n",
		       what, took / 1e3, atomic_load(&worst) / 1e3,
		       atomic_load(&worst_lookup) / 1e3,
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

/* The baselines: what the other thread sees with nobody in its way, and
 * with this thread spinning on the other CPU, touching nothing of vmap's
 * (on a VM, two busy vCPUs may share the host's time). */
static int idle(void)
{
	usleep(1500000);
	return 0;
}

static int spin(void)
{
	for (uint64_t t0 = now(); now() - t0 < 1500000000u;)
		;
	return 0;
}

/* And with this thread doing what vmap_dump does after it has dropped its
 * last lock, without vmap: sort and print a listing of that many ranges. */
static uint64_t listing_n;

static int by_key(const void *a, const void *b)
{
	const uint64_t *x = a, *y = b;

	return (*x > *y) - (*x < *y);
}

static int sort_print(void)
{
	uint64_t (*item)[3] = malloc(listing_n * sizeof(*item)), x = 1;
	FILE *f = fopen("/dev/null", "w");

	for (uint64_t i = 0; i < listing_n; i++) {
		x = x * 6364136223846793005ull + 1442695040888963407ull;
		item[i][0] = x;
		item[i][1] = x + PG;
		item[i][2] = i;
	}
	qsort(item, listing_n, sizeof(*item), by_key);
	for (uint64_t i = 0; i < listing_n; i++)
		fprintf(f, "0x%016llx-0x%016llx %12llu busy\n",
			(unsigned long long)item[i][0],
			(unsigned long long)item[i][1], (unsigned long long)PG);
	fclose(f);
	free(item);
	return 0;
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
	stall("(idle)", idle, repeats);
	stall("(spinning)", spin, repeats);
	listing_n = n;
	stall("(sort+print)", sort_print, repeats);
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
