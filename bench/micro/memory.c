/* SPDX-License-Identifier: MIT */
/*
 * bench/micro/memory.c - memory spaces against plain mmap/munmap, on real
 * memory.
 *
 *   churn   allocate, touch every page, free; areas of 1, 4, 16 and 64 pages;
 *           vmap lazy (the default), vmap strict (release on every free) and
 *           mmap/munmap -- each without and with a second thread spinning in
 *           the process, which is what makes every release a TLB shootdown.
 *   purge   the cost per released range of one purge of 1024 scattered
 *           one-page areas, on each release path (process_madvise vectors,
 *           one madvise per range), with the busy thread.
 *   guard   the churn of 1-page areas with and without guard pages, pool
 *           off, so that every allocation installs its guard.
 *
 * "vmap" is a default memory space: lazy frees, and the warm pool that hands
 * a freed area back as it is, without a release or a page fault.
 * "vmap nopool" is lazy frees alone: every reused page is faulted in anew.
 *
 * Usage: bench-memory [-r repeats] [-s scale]
 * Prints medians of the repeats.  Every allocation is checked to read zero
 * where no owner wrote (a warm area keeps what its last owner wrote).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "vmap.h"

static long PG;
static atomic_int spin_stop;

static uint64_t now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The second thread: running on the other CPU, so every release of mapped
 * pages must interrupt it to flush its TLB. */
static void *spin(void *arg)
{
	volatile uint64_t n = 0;

	(void)arg;
	while (!atomic_load_explicit(&spin_stop, memory_order_relaxed))
		n++;
	return NULL;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double median(double *v, int n)
{
	qsort(v, n, sizeof(*v), cmp);
	return v[n / 2];
}

/* Write first, then check another byte of the page reads zero.  (Reading
 * first would map the shared zero page, and the write after it would then
 * replace that mapping: a TLB shootdown per page, which is not what a user
 * writing their memory pays.) */
static void touch(char *p, size_t pages)
{
	for (size_t i = 0; i < pages; i++) {
		p[i * PG] = 1;
		/* Keep the compiler from hoisting the read above the write. */
		__asm__ volatile("" ::: "memory");
		if (p[i * PG + 64]) {
			fprintf(stderr, "bench-memory: memory not zero\n");
			exit(1);
		}
	}
}

static vmap_space *space(unsigned flags)
{
	struct vmap_config c;
	vmap_space *s;

	vmap_config_init(&c);
	c.flags = VMAP_SPACE_MEMORY | flags;
	c.length = 4ull << 30;
	if (vmap_space_create(&c, &s)) {
		fprintf(stderr, "bench-memory: cannot create a memory space\n");
		exit(1);
	}
	return s;
}

enum backend { LAZY, NOPOOL, STRICT, MMAP, GUARD, NBACKEND };
static const char *const name[] = { "vmap", "vmap nopool", "vmap strict",
				    "mmap/munmap", "vmap nopool+guard" };

/* ns per alloc + touch + free of `pages`-page areas. */
static double churn(enum backend b, size_t pages, unsigned ops)
{
	vmap_space *s = NULL;
	uint64_t t0, t1;

	if (b != MMAP)
		s = space(b == STRICT ? VMAP_SPACE_STRICT :
			  b == GUARD ? VMAP_SPACE_GUARD | VMAP_SPACE_NOPOOL :
			  b == NOPOOL ? VMAP_SPACE_NOPOOL : 0);
	t0 = now();
	for (unsigned i = 0; i < ops; i++) {
		char *p;

		if (b == MMAP) {
			p = mmap(NULL, pages * PG, PROT_READ | PROT_WRITE,
				 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
			if (p == MAP_FAILED)
				exit(1);
			touch(p, pages);
			munmap(p, pages * PG);
		} else {
			p = vmap_vmalloc(s, pages * PG);
			if (!p)
				exit(1);
			touch(p, pages);
			vmap_vfree(s, p);
		}
	}
	if (s)
		vmap_purge(s, VMAP_PURGE_SYNC); /* the last batch counts too */
	t1 = now();
	vmap_space_destroy(s);
	return (double)(t1 - t0) / ops;
}

/* ns per range of one purge of 1024 scattered one-page areas. */
static double purge_per_range(unsigned flags)
{
	vmap_space *s = space(flags);
	char *p[2048];
	struct vmap_stats st = { .size = sizeof(st) };

	for (int i = 0; i < 2048; i++) {
		p[i] = vmap_vmalloc(s, PG);
		touch(p[i], 1);
	}
	for (int i = 0; i < 2048; i += 2)
		vmap_vfree(s, p[i]);
	vmap_purge(s, VMAP_PURGE_SYNC);
	vmap_stats(s, &st);
	vmap_space_destroy(s);
	return (double)st.purge_last_ns / 1024;
}

int main(int argc, char **argv)
{
	static const size_t sizes[] = { 1, 4, 16, 64 };
	double v[NBACKEND][4][2], r[32];
	int reps = 5, opt;
	double scale = 1;
	pthread_t busy;

	PG = sysconf(_SC_PAGESIZE);
	while ((opt = getopt(argc, argv, "r:s:")) != -1) {
		if (opt == 'r')
			reps = atoi(optarg);
		else if (opt == 's')
			scale = atof(optarg);
		else
			return 2;
	}
	if (reps < 1 || reps > 32)
		reps = 5;
	printf("vmap memory benchmark: %ld CPUs online, page %ld, median of "
	       "%d\n\n",
	       sysconf(_SC_NPROCESSORS_ONLN), PG, reps);
	for (int with = 0; with < 2; with++) {
		if (with) {
			atomic_store(&spin_stop, 0);
			pthread_create(&busy, NULL, spin, NULL);
		}
		for (int b = 0; b < NBACKEND; b++)
			for (int z = 0; z < 4; z++) {
				unsigned ops = (unsigned)(scale * 40000 /
							  sizes[z]);

				if (b == GUARD && z)
					continue;
				for (int k = 0; k < reps; k++)
					r[k] = churn(b, sizes[z], ops);
				v[b][z][with] = median(r, reps);
			}
		if (with) {
			atomic_store(&spin_stop, 1);
			pthread_join(busy, NULL);
		}
	}
	printf("alloc + touch every page + free, ns per area (vmap: lazy "
	       "frees, warm pool on;\nvmap nopool: lazy frees only; strict: "
	       "release on every free):\n");
	printf("%-6s %-8s %10s %12s %12s %12s %10s %12s\n", "pages",
	       "busy thr", name[LAZY], name[NOPOOL], name[STRICT], name[MMAP],
	       "mmap/vmap", "mmap/nopool");
	for (int z = 0; z < 4; z++)
		for (int with = 0; with < 2; with++)
			printf("%-6zu %-8s %10.0f %12.0f %12.0f %12.0f %9.1fx "
			       "%11.1fx\n",
			       sizes[z], with ? "yes" : "no", v[LAZY][z][with],
			       v[NOPOOL][z][with], v[STRICT][z][with],
			       v[MMAP][z][with],
			       v[MMAP][z][with] / v[LAZY][z][with],
			       v[MMAP][z][with] / v[NOPOOL][z][with]);

	atomic_store(&spin_stop, 0);
	pthread_create(&busy, NULL, spin, NULL);
	printf("\none purge of 1024 scattered 1-page areas, busy thread "
	       "running, ns per released range:\n");
	for (int k = 0; k < reps; k++)
		r[k] = purge_per_range(0);
	printf("  %-28s %8.0f\n", "process_madvise (vectored)",
	       median(r, reps));
	for (int k = 0; k < reps; k++)
		r[k] = purge_per_range(VMAP_SPACE_RELEASE_MADVISE);
	printf("  %-28s %8.0f\n", "madvise (one per range)", median(r, reps));
	atomic_store(&spin_stop, 1);
	pthread_join(busy, NULL);

	printf("\nguard pages, 1-page areas, no pool (so every allocation "
	       "installs one), ns per area:\n  without %.0f, with %.0f (busy "
	       "thread); without %.0f, with %.0f (alone)\n",
	       v[NOPOOL][0][1], v[GUARD][0][1], v[NOPOOL][0][0],
	       v[GUARD][0][0]);
	printf("  (a warm area from the pool keeps its guard: reuse installs "
	       "nothing)\n");
	return 0;
}
