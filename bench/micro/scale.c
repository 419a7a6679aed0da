/* SPDX-License-Identifier: MIT */
/*
 * bench/micro/scale.c - the range space's general path (vmap_alloc and
 * vmap_free) with any number of threads, for the scaling projection in
 * bench/results/RESULTS.md and its model, bench/scale_model.py.
 *
 * The workload is bench-blocks' tree workload (and bench-alloc's `threads`):
 * each thread keeps a window of 16 live areas of 1..16 pages, and every step
 * frees the oldest and allocates a new one.  Thread i is pinned to the i-th
 * CPU this process may run on (modulo their number), so the same command
 * runs unchanged on a bigger machine: -t defaults to every such CPU.
 *
 * Reported, for the median run of -r (by total throughput): million
 * alloc+free pairs per second, in total and per thread (the slowest and
 * fastest thread too: a starved thread shows there), and what the space's
 * counters say about the shared resources a pair touches -- how many
 * allocations the node pools served without the free lock, how often a
 * purge ran and how big it was, and the longest free-lock hold of a purge.
 *
 * -l sets lazy_max_pages.  The default is the kernel's fls(CPUs) * 32 MiB of
 * pages, which grows with log2 of the CPUs while the frees grow with the
 * CPUs: on a machine of C CPUs each node's pool gets about
 * fls(C) * 8192 / 8.5 / C areas per purge.  A one-thread run with
 * -l fls(C) * 8192 / C reproduces that per-node flow here, and with it the
 * pool hit rate a C-CPU machine would see.  -f spins in the flush callback
 * for that many microseconds, standing in for a TLB shootdown.
 *
 * -x measures instead what the model's c comes from: the cost of moving a
 * cache line between CPUs.  The threads take turns, in order, at an atomic
 * add on one line (as frees on different CPUs do on the lazy counters):
 * each waits until the count says it is its turn, so ns per add is one
 * handoff -- the waiter's read that fetches the line, then its add's
 * upgrade, two transfers; c, one contended read-modify-write, is about
 * half of it.  A free-for-all, where each thread adds as fast as it can,
 * is printed too: a CPU then keeps the line for many adds in a row, which
 * is why it looks cheap, and why the handoff is the number to use --
 * between two frees a thread does ~100 ns of other work, so the line has
 * moved.  The ring goes through the allowed CPUs in order, mostly
 * neighbours: to time a given pair (across sockets, say), restrict the
 * CPUs, as in taskset -c 0,64 bench-scale -x -t 2.
 *
 * Usage: bench-scale [-t threads] [-n pairs per thread] [-r runs]
 *                    [-l lazy_max_pages] [-f flush usec] [-e] [-x]
 * -e: one line of key=value per run, for scripts.
 */
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "vmap.h"

#define PG 4096ull
#define WINDOW 16	/* live areas per thread, as bench-blocks */
#define MAX_RUNS 32

static unsigned long pairs = 2000000;
static unsigned long flush_us;

struct worker {
	vmap_space *s;
	int cpu;		/* -1: not pinned */
	unsigned seed;
	pthread_barrier_t *go;
	uint64_t t0, t1;	/* the thread's own start and end, ns */
} __attribute__((aligned(64)));	/* t0/t1 written by one thread each */

struct run {
	double mpairs;		/* all threads, first start to last end */
	double slow, fast;	/* per thread, Mpairs/s */
	struct vmap_stats st;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The flush stands in for a TLB shootdown: it is called once per purge,
 * with no lock of the space held, so its cost adds to the purge's wall time
 * (and the purging thread's), never to a lock's hold. */
static void flush(void *ctx, const struct vmap_range *r, size_t n)
{
	uint64_t end = now_ns() + flush_us * 1000;

	(void)ctx;
	(void)r;
	(void)n;
	while (flush_us && now_ns() < end)
		;
}

static void *work(void *arg)
{
	struct worker *w = arg;
	uint64_t addr[WINDOW] = { 0 }, x = 1 + w->seed;

	if (w->cpu >= 0) {
		cpu_set_t set;

		CPU_ZERO(&set);
		CPU_SET(w->cpu, &set);
		pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
	}
	pthread_barrier_wait(w->go);
	w->t0 = now_ns();
	for (unsigned long i = 0; i < pairs + WINDOW; i++) {
		unsigned k = i % WINDOW;
		uint64_t size;
		int err;

		if (addr[k] && (err = vmap_free(w->s, addr[k]))) {
			fprintf(stderr, "bench-scale: free: %s\n",
				vmap_strerror(err));
			exit(1);
		}
		/* The same generator and sizes as bench-blocks. */
		x = x * 6364136223846793005ull + 1442695040888963407ull;
		size = (1 + (x >> 60)) * PG;
		err = vmap_alloc(w->s, size, 0, 0, UINT64_MAX, &addr[k]);
		if (err) {
			fprintf(stderr, "bench-scale: alloc: %s\n",
				vmap_strerror(err));
			exit(1);
		}
	}
	w->t1 = now_ns();
	return NULL;
}

/* A spin-wait hint: without it a spinning CPU floods the line with reads
 * and the handoff measured here doubles or worse on some machines. */
static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield");
#endif
}

/* -x: the shared line, alone on its line; adds per thread. */
static _Atomic uint64_t line __attribute__((aligned(64)));
static uint64_t line_adds;	/* set by main */

struct adder {
	int cpu, turn, threads;	/* turn < 0: free-for-all */
	pthread_barrier_t *go;
	uint64_t t0, t1;
} __attribute__((aligned(64)));

static void *add(void *arg)
{
	struct adder *a = arg;

	if (a->cpu >= 0) {
		cpu_set_t set;

		CPU_ZERO(&set);
		CPU_SET(a->cpu, &set);
		pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
	}
	pthread_barrier_wait(a->go);
	a->t0 = now_ns();
	for (uint64_t i = 0; i < line_adds; i++) {
		/* Wait for our turn: the value last written by the thread
		 * before us in the ring. */
		while (a->turn >= 0 &&
		       atomic_load_explicit(&line, memory_order_acquire) %
				       (uint64_t)a->threads != (uint64_t)a->turn)
			cpu_relax();
		atomic_fetch_add_explicit(&line, 1, memory_order_release);
	}
	a->t1 = now_ns();
	return NULL;
}

/* ns per add, all threads together: with several threads, the time the
 * line takes to move from one CPU to the next. */
static double line_ns(int threads, const int *cpu, int ncpu, bool turns)
{
	struct adder *a = aligned_alloc(64, (size_t)threads * sizeof(*a));
	pthread_t *t = calloc((size_t)threads, sizeof(*t));
	uint64_t t0 = UINT64_MAX, t1 = 0;
	pthread_barrier_t go;

	if (!a || !t) {
		perror("bench-scale");
		exit(2);
	}
	atomic_store(&line, 0);
	pthread_barrier_init(&go, NULL, (unsigned)threads);
	for (int i = 0; i < threads; i++) {
		a[i] = (struct adder){ .go = &go, .threads = threads,
				       .turn = turns ? i : -1,
				       .cpu = ncpu ? cpu[i % ncpu] : -1 };
		if (pthread_create(&t[i], NULL, add, &a[i])) {
			perror("bench-scale: pthread_create");
			exit(2);
		}
	}
	for (int i = 0; i < threads; i++) {
		pthread_join(t[i], NULL);
		t0 = a[i].t0 < t0 ? a[i].t0 : t0;
		t1 = a[i].t1 > t1 ? a[i].t1 : t1;
	}
	pthread_barrier_destroy(&go);
	free(a);
	free(t);
	return (double)(t1 - t0) / ((double)line_adds * threads);
}

static int by_value(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* The CPUs this process may run on, in order: where thread i goes. */
static int allowed_cpus(int *cpu, int max)
{
	cpu_set_t set;
	int n = 0;

	if (sched_getaffinity(0, sizeof(set), &set))
		return 0;
	for (int c = 0; c < CPU_SETSIZE && n < max; c++)
		if (CPU_ISSET(c, &set))
			cpu[n++] = c;
	return n;
}

static void measure(int threads, const int *cpu, int ncpu,
		    uint64_t lazy_max, struct run *r)
{
	/* Aligned as the type says: each worker's times on a line of its
	 * own. */
	struct worker *w = aligned_alloc(64, (size_t)threads * sizeof(*w));
	pthread_t *t = calloc((size_t)threads, sizeof(*t));
	uint64_t t0 = UINT64_MAX, t1 = 0;
	struct vmap_config c;
	pthread_barrier_t go;
	vmap_space *s;

	if (!w || !t) {
		perror("bench-scale");
		exit(2);
	}
	vmap_config_init(&c);
	c.base = 1ull << 40;
	c.length = 1ull << 40;
	c.lazy_max_pages = lazy_max;
	c.flush = flush;
	if (vmap_space_create(&c, &s)) {
		fprintf(stderr, "bench-scale: cannot create the space\n");
		exit(2);
	}
	pthread_barrier_init(&go, NULL, (unsigned)threads);
	for (int i = 0; i < threads; i++) {
		w[i] = (struct worker){ .s = s, .seed = (unsigned)i, .go = &go,
					.cpu = ncpu ? cpu[i % ncpu] : -1 };
		if (pthread_create(&t[i], NULL, work, &w[i])) {
			perror("bench-scale: pthread_create");
			exit(2);
		}
	}
	r->slow = 1e300;
	r->fast = 0;
	for (int i = 0; i < threads; i++) {
		double rate;

		pthread_join(t[i], NULL);
		/* The workers time themselves: the main thread may run late
		 * after the barrier, with every CPU busy. */
		t0 = w[i].t0 < t0 ? w[i].t0 : t0;
		t1 = w[i].t1 > t1 ? w[i].t1 : t1;
		rate = (double)pairs / (double)(w[i].t1 - w[i].t0) * 1e3;
		r->slow = rate < r->slow ? rate : r->slow;
		r->fast = rate > r->fast ? rate : r->fast;
	}
	r->mpairs = (double)pairs * threads / (double)(t1 - t0) * 1e3;
	memset(&r->st, 0, sizeof(r->st));
	r->st.size = sizeof(r->st);
	vmap_stats(s, &r->st);
	if (vmap_check(s))
		exit(1);
	vmap_space_destroy(s);
	pthread_barrier_destroy(&go);
	free(w);
	free(t);
}

static int by_rate(const void *a, const void *b)
{
	double x = ((const struct run *)a)->mpairs;
	double y = ((const struct run *)b)->mpairs;

	return (x > y) - (x < y);
}

static double per(uint64_t a, uint64_t b)
{
	return b ? (double)a / (double)b : 0;
}

static void print_kv(int threads, const struct run *r)
{
	const struct vmap_stats *st = &r->st;

	printf("threads=%d mpairs=%.3f per_thread=%.3f slow=%.3f fast=%.3f "
	       "allocs=%llu cached_hits=%llu hit=%.4f purges=%llu "
	       "areas_per_purge=%.1f purge_max_areas=%llu "
	       "purge_max_hold_ns=%llu purge_last_ns=%llu "
	       "lazy_max_pages=%llu nodes=%llu free_blocks=%llu "
	       "decayed=%llu purges_miss=%llu\n",
	       threads, r->mpairs, r->mpairs / threads, r->slow, r->fast,
	       (unsigned long long)st->allocs,
	       (unsigned long long)st->cached_hits,
	       per(st->cached_hits, st->allocs),
	       (unsigned long long)st->purges,
	       per(st->areas_purged, st->purges),
	       (unsigned long long)st->purge_max_areas,
	       (unsigned long long)st->purge_max_hold_ns,
	       (unsigned long long)st->purge_last_ns,
	       (unsigned long long)st->lazy_max_pages,
	       (unsigned long long)st->nodes,
	       (unsigned long long)st->free_blocks,
	       (unsigned long long)st->cached_decayed,
	       (unsigned long long)st->purges_miss);
}

int main(int argc, char **argv)
{
	static int cpu[CPU_SETSIZE];
	struct run r[MAX_RUNS];
	int threads = 0, runs = 5, kv = 0, xline = 0, ncpu, opt;
	uint64_t lazy_max = 0;
	const struct vmap_stats *st;
	const struct run *m;

	while ((opt = getopt(argc, argv, "t:n:r:l:f:ex")) != -1) {
		if (opt == 't')
			threads = atoi(optarg);
		else if (opt == 'n')
			pairs = strtoul(optarg, NULL, 0);
		else if (opt == 'r')
			runs = atoi(optarg);
		else if (opt == 'l')
			lazy_max = strtoull(optarg, NULL, 0);
		else if (opt == 'f')
			flush_us = strtoul(optarg, NULL, 0);
		else if (opt == 'e')
			kv = 1;
		else if (opt == 'x')
			xline = 1;
		else
			return 2;
	}
	ncpu = allowed_cpus(cpu, CPU_SETSIZE);
	if (threads <= 0)
		threads = ncpu > 0 ? ncpu : 1;
	if (runs < 1 || runs > MAX_RUNS)
		runs = 5;
	if (!pairs)
		pairs = 1;
	if (xline) {
		double v[MAX_RUNS], ffa[MAX_RUNS];

		if (threads < 2)
			threads = 2;
		/* Fewer adds per thread than pairs: a handoff is slow. */
		line_adds = pairs < 1000000 ? pairs : 1000000;
		for (int k = 0; k < runs; k++) {
			v[k] = line_ns(threads, cpu, ncpu, true);
			ffa[k] = line_ns(threads, cpu, ncpu, false);
		}
		qsort(v, (size_t)runs, sizeof(*v), by_value);
		qsort(ffa, (size_t)runs, sizeof(*ffa), by_value);
		printf("atomic add on one shared line, %d threads on %d CPUs, "
		       "median of %d:\n", threads, ncpu, runs);
		printf("  taking turns  %6.1f ns per add = per handoff "
		       "(min %.1f, max %.1f)\n", v[runs / 2], v[0],
		       v[runs - 1]);
		printf("  free-for-all  %6.1f ns per add (min %.1f, max %.1f)\n",
		       ffa[runs / 2], ffa[0], ffa[runs - 1]);
		return 0;
	}
	for (int k = 0; k < runs; k++) {
		measure(threads, cpu, ncpu, lazy_max, &r[k]);
		if (kv)
			print_kv(threads, &r[k]);
	}
	qsort(r, (size_t)runs, sizeof(*r), by_rate);
	m = &r[runs / 2];
	st = &m->st;
	if (kv) {
		printf("median: ");
		print_kv(threads, m);
		return 0;
	}
	printf("vmap_alloc/vmap_free, 1-16 pages, %d live per thread, %d "
	       "thread%s on %d CPUs, %lu pairs each; median of %d\n",
	       WINDOW, threads, threads == 1 ? "" : "s", ncpu, pairs, runs);
	printf("  throughput       %8.2f Mpairs/s total, %.2f per thread "
	       "(slowest %.2f, fastest %.2f)\n",
	       m->mpairs, m->mpairs / threads, m->slow, m->fast);
	printf("  per pair         %8.1f ns of one thread's time\n",
	       1e3 / (m->mpairs / threads));
	printf("  node pools       %8.1f %% of allocations (%llu of %llu), "
	       "%llu decayed to the tree\n",
	       100 * per(st->cached_hits, st->allocs),
	       (unsigned long long)st->cached_hits,
	       (unsigned long long)st->allocs,
	       (unsigned long long)st->cached_decayed);
	printf("  purges           %8llu, one per %.0f frees, %.0f areas each "
	       "(largest %llu), lazy_max_pages %llu\n",
	       (unsigned long long)st->purges, per(st->frees, st->purges),
	       per(st->areas_purged, st->purges),
	       (unsigned long long)st->purge_max_areas,
	       (unsigned long long)st->lazy_max_pages);
	printf("  purge            %8.1f us the last one took, %.1f us the "
	       "longest free-lock hold (a chunk of %d)\n",
	       (double)st->purge_last_ns / 1e3,
	       (double)st->purge_max_hold_ns / 1e3, VMAP_PURGE_CHUNK);
	printf("  space            %8llu nodes, %llu free blocks in the tree "
	       "at the end\n",
	       (unsigned long long)st->nodes,
	       (unsigned long long)st->free_blocks);
	return 0;
}
