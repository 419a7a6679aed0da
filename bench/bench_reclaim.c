/* SPDX-License-Identifier: MIT */
/*
 * bench_reclaim.c - the reclaim scenario: what a memory space's purge thread
 * (the purger) buys, in two measurements.
 *
 * "free": the tail latency of vmap_vfree.  Without a purger, the free that
 * takes the lazy pages past lazy_max_pages runs the purge on its caller's
 * thread: ~64 MiB of MADV_DONTNEED and a TLB shootdown, milliseconds, in one
 * free of thousands.  With the purger that free only wakes the thread.  A
 * memory space holds 64 live areas; a cycle frees a random one, allocates a
 * new one of the same size and writes a byte to each of its pages (so the
 * pages are really there to release), while a second thread of the process
 * spins -- the CPU every release must interrupt, as in the churn scenario.
 * Each vmap_vfree is timed alone with clock_gettime(CLOCK_MONOTONIC): the
 * vDSO costs ~20 ns a call here (measured and reported as clock_ns), far
 * below the microsecond tails this is about, and needs no calibration, which
 * rdtsc would.  Besides the percentiles, each run counts its vfrees over
 * 100 us (stalls, not work) and keeps the first one's time: in a space with
 * a purger, the first free starts the thread.
 *
 * "rss": the time bound.  Allocate a burst of 64 KiB areas, touch them, free
 * them all, then make no further allocator call and sample the resident set
 * every 2 ms for 300 ms.  A vmap space's purger releases within
 * purge_delay_ms (10) even when no call comes; a malloc peer returns memory
 * only from a thread of its own (jemalloc's background_thread) or not at all
 * until its next call (mimalloc, tcmalloc).
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "vmap.h"

#define FREE_LIVE 64	   /* live areas in the vfree-latency loop */
#define RSS_AREA_BYTES (64 * 1024)
#define RSS_PERIOD_MS RECLAIM_PERIOD_MS /* sampling after the burst */
#define RSS_WINDOW_MS RECLAIM_WINDOW_MS /* the reported window */
#define RSS_NSAMPLES (RSS_WINDOW_MS / RSS_PERIOD_MS + 1)
#define RSS_CHECK_MS 2000  /* vmap must be back by then (checked) */
#define RSS_WITHIN_KIB 1024 /* "back": within 1 MiB of the pre-burst RSS */
/* What the check lets vmap keep after RSS_CHECK_MS: the library's records
 * of the burst's areas (a 64-byte malloc chunk each, the busy map's and the
 * purge's vectors: ~1 MiB for 10,000 areas) are freed to malloc, which need
 * not give them back.  The report uses the strict 1 MiB; the check this. */
#define RSS_CHECK_SLACK_KIB 2048

/* Under a sanitizer, shadow memory and quarantines are resident too: the
 * RSS numbers are still reported, but not checked (as in churn). */
#ifndef __has_feature
#define __has_feature(x) 0
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__) || \
	__has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define RSS_CHECK 0
#else
#define RSS_CHECK 1
#endif

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- the busy thread ---- */

struct busy {
	pthread_t tid;
	atomic_bool stop;
	bool on;
};

/* Spins in user mode doing arithmetic, so its CPU is always in this mm's
 * cpumask and every release of mapped pages must shoot down its TLB.  It
 * makes no allocator call (the rss measurement relies on that). */
static void *busy_spin(void *arg)
{
	struct busy *b = arg;
	uint64_t x = 1;

	while (!atomic_load_explicit(&b->stop, memory_order_relaxed))
		x = x * 6364136223846793005u + 1442695040888963407u;
	return (void *)(uintptr_t)x; /* the arithmetic is not dead code */
}

static bool busy_start(struct busy *b)
{
	atomic_init(&b->stop, false);
	b->on = !pthread_create(&b->tid, NULL, busy_spin, b);
	if (!b->on)
		fprintf(stderr, "reclaim: no busy thread\n");
	return b->on;
}

static void busy_stop(struct busy *b)
{
	atomic_store(&b->stop, true);
	if (b->on)
		pthread_join(b->tid, NULL);
}

/* Write one byte of every page: the pages are then resident, and a release
 * has something to give back.  Volatile keeps stores to memory freed next. */
static void touch(char *p, size_t bytes, size_t pg)
{
	for (size_t off = 0; off < bytes; off += pg)
		((volatile char *)p)[off] = 1;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return (x > y) - (x < y);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Nearest-rank percentile of sorted v[0..n): the smallest value with at
 * least q of the samples at or below it. */
static uint32_t rank(const uint32_t *v, size_t n, double q)
{
	size_t k = (size_t)(q * (double)n + 0.999999);

	return v[k ? (k > n ? n : k) - 1 : 0];
}

/* ---- part 1: vfree latency ---- */

/* What one run of the loop yields; the parent gets each one's median over
 * the runs, under these names (suffixed with the workload). */
enum {
	F_P50,
	F_P999,
	F_P9999,
	F_MAX,
	F_CPS,
	F_BACKPRESSURE,
	F_THRESHOLD,
	F_TIMER,
	F_WAKEUPS,
	F_CYCLES,
	F_SLOW,
	F_FIRST,
	F_N
};
static const char *const free_metric[F_N] = {
	"vfree_p50_ns",	    "vfree_p999_ns", "vfree_p9999_ns",
	"vfree_max_ns",	    "cycles_per_s",  "backpressure",
	"purges_threshold", "purges_timer",  "purger_wakeups",
	"cycles",	    "slow_vfrees",   "first_vfree_ns",
};
/* A vfree this slow (ns) is a stall, not work: counted as slow_vfrees. */
#define FREE_SLOW_NS 100000

/* Cost of one clock_gettime, ns: the median of back-to-back pairs. */
static double clock_cost(void)
{
	uint32_t d[1001];

	for (int i = 0; i < 1001; i++) {
		uint64_t a = now_ns();

		d[i] = (uint32_t)(now_ns() - a);
	}
	qsort(d, 1001, sizeof(d[0]), cmp_u32);
	return d[500];
}

/*
 * One run: a fresh space, FREE_LIVE live areas of `pages` pages, `cycles`
 * times (vfree a random one, timed; vmalloc it again; touch it) -- or fewer,
 * if `seconds` (> 0) pass first: where a page fault costs tens of
 * microseconds (a loaded VM), 200,000 cycles of 64 fresh pages take an
 * hour.  t is the caller's buffer of `cycles` times, already faulted in.
 * Fills out[]; returns failures.
 */
static int free_once(unsigned flags, int pages, int cycles, double seconds,
		     uint32_t *t, double *out)
{
	struct vmap_stats st = { .size = sizeof(st) };
	struct vmap_config cfg;
	size_t pg = (size_t)sysconf(_SC_PAGESIZE), bytes = (size_t)pages * pg;
	char *live[FREE_LIVE] = { 0 };
	uint64_t rng = 0x9e3779b97f4a7c15u, t0, t1, end = UINT64_MAX;
	vmap_space *s;
	int err, failures = 0, done = 0;

	vmap_config_init(&cfg);
	cfg.flags = flags;
	err = vmap_space_create(&cfg, &s);
	if (err) {
		fprintf(stderr, "reclaim: no memory space: %s\n",
			vmap_strerror(err));
		return 1;
	}
	for (int i = 0; i < FREE_LIVE; i++) {
		live[i] = vmap_vmalloc(s, bytes);
		if (!live[i]) {
			failures++;
			goto out;
		}
		touch(live[i], bytes, pg);
	}
	t0 = now_ns();
	if (seconds > 0)
		end = t0 + (uint64_t)(seconds * 1e9);
	for (; done < cycles; done++) {
		unsigned i;
		uint64_t a, b;

		rng ^= rng << 13; /* xorshift64: cheap, and the same per run */
		rng ^= rng >> 7;
		rng ^= rng << 17;
		i = (unsigned)(rng % FREE_LIVE);
		a = now_ns();
		err = vmap_vfree(s, live[i]);
		b = now_ns();
		t[done] = (uint32_t)(b - a < UINT32_MAX ? b - a : UINT32_MAX);
		live[i] = err ? NULL : vmap_vmalloc(s, bytes);
		if (!live[i]) {
			fprintf(stderr, "reclaim: %s failed at cycle %d: %s\n",
				err ? "vmap_vfree" : "vmap_vmalloc", done,
				strerror(err ? -err : errno));
			failures++;
			break;
		}
		touch(live[i], bytes, pg);
		if (b >= end) {
			done++;
			break;
		}
	}
	t1 = now_ns();
	if (!done) {
		failures++;
		goto out;
	}
	/* The first free of a space with a purger starts its thread. */
	out[F_FIRST] = t[0];
	qsort(t, (size_t)done, sizeof(*t), cmp_u32);
	out[F_P50] = rank(t, (size_t)done, 0.5);
	out[F_P999] = rank(t, (size_t)done, 0.999);
	out[F_P9999] = rank(t, (size_t)done, 0.9999);
	out[F_MAX] = t[done - 1];
	out[F_CPS] = (double)done * 1e9 / (double)(t1 - t0);
	out[F_CYCLES] = done;
	out[F_SLOW] = 0;
	for (int k = done - 1; k >= 0 && t[k] > FREE_SLOW_NS; k--)
		out[F_SLOW]++;
	/* Read before the final frees, so they describe the loop alone. */
	failures += !!vmap_stats(s, &st);
	out[F_BACKPRESSURE] = (double)st.backpressure;
	out[F_THRESHOLD] = (double)st.purges_threshold;
	out[F_TIMER] = (double)st.purges_timer;
	out[F_WAKEUPS] = (double)st.purger_wakeups;
	failures += !!vmap_check(s);
out:
	for (int i = 0; i < FREE_LIVE; i++)
		if (live[i])
			failures += !!vmap_vfree(s, live[i]);
	vmap_space_destroy(s);
	return failures;
}

int reclaim_free_run(const char *backend, int pages, bool pool, int cycles,
		     int repeats, double seconds)
{
	unsigned flags = VMAP_SPACE_MEMORY | (pool ? 0 : VMAP_SPACE_NOPOOL);
	double (*runs)[F_N], col[64];
	char metric[96], extra[128];
	uint32_t *t;
	int failures = 0;

	if (!strcmp(backend, "vmap-nopurger"))
		flags |= VMAP_SPACE_NOPURGER;
	else if (strcmp(backend, "vmap"))
		return 1;
	if (pages < 1 || cycles < 1 || repeats < 1 || repeats > 64)
		return 1;
	t = malloc((size_t)cycles * sizeof(*t));
	runs = calloc((size_t)repeats, sizeof(*runs));
	if (!t || !runs) {
		free(t);
		free(runs);
		return 1;
	}
	/* Fault the buffer in now, not inside the timed loop. */
	memset(t, 0, (size_t)cycles * sizeof(*t));
	for (int r = 0; r < repeats; r++) {
		struct busy busy;

		/* A busy thread per run: it must be running before the first
		 * purge of the run, and it must not outlive the measurement. */
		failures += !busy_start(&busy);
		failures += free_once(flags, pages, cycles, seconds, t,
				      runs[r]);
		busy_stop(&busy);
	}
	snprintf(extra, sizeof(extra),
		 ",\"pages\":%d,\"pool\":%s,\"purger\":%s,\"max_cycles\":%d,"
		 "\"max_seconds\":%g,\"repeats\":%d",
		 pages, pool ? "true" : "false",
		 flags & VMAP_SPACE_NOPURGER ? "false" : "true", cycles,
		 seconds, repeats);
	for (int m = 0; m < F_N; m++) {
		for (int r = 0; r < repeats; r++)
			col[r] = runs[r][m];
		qsort(col, (size_t)repeats, sizeof(col[0]), cmp_double);
		snprintf(metric, sizeof(metric), "%s_%dp_%s", free_metric[m],
			 pages, pool ? "pool" : "nopool");
		bench_result("reclaim", backend, metric, col[repeats / 2],
			     extra);
	}
	bench_result("reclaim", backend, "clock_ns", clock_cost(), "");
	free(runs);
	free(t);
	return failures;
}

/* ---- part 2: RSS after a burst ---- */

struct sample {
	double t_ms;	/* since the last free returned */
	long above;	/* RSS - pre-burst RSS, bytes */
};

/* The burst's allocator: a vmap memory space, or whatever malloc the
 * child was started with. */
struct burst {
	vmap_space *space; /* NULL: malloc */
	void **p;
};

static void *burst_alloc(struct burst *b)
{
	return b->space ? vmap_vmalloc(b->space, RSS_AREA_BYTES)
			: malloc(RSS_AREA_BYTES);
}

static void burst_free(struct burst *b, void *p)
{
	if (b->space)
		vmap_vfree(b->space, p);
	else
		free(p);
}

/* Sleep until t0 + ms, then one sample (no allocator call). */
static void sample_at(uint64_t t0, int ms, long base, long pg,
		      struct sample *out)
{
	uint64_t at = t0 + (uint64_t)ms * 1000000u;
	struct timespec ts = { .tv_sec = (time_t)(at / 1000000000u),
			       .tv_nsec = (long)(at % 1000000000u) };

	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) ==
	       EINTR)
		;
	out->above = bench_rss_bytes(pg) - base;
	out->t_ms = (double)(now_ns() - t0) / 1e6;
}

/* vmap only: the check.  The first time (ms) the RSS was within the
 * check's slack -- in the window's samples, or else sampling on (still no
 * allocator call) until RSS_CHECK_MS; -1 if never. */
static double rss_settles(const struct sample *smp, uint64_t t0, long base,
			  long pg)
{
	struct sample s;

	for (int k = 0; k < RSS_NSAMPLES; k++)
		if (smp[k].above <= RSS_CHECK_SLACK_KIB * 1024l)
			return smp[k].t_ms;
	for (int ms = RSS_WINDOW_MS + RSS_PERIOD_MS; ms <= RSS_CHECK_MS;
	     ms += RSS_PERIOD_MS) {
		sample_at(t0, ms, base, pg, &s);
		if (s.above <= RSS_CHECK_SLACK_KIB * 1024l)
			return s.t_ms;
	}
	return -1;
}

/* The space's view after the window: what purged, and on which thread. */
static void rss_space_report(const char *backend, vmap_space *s)
{
	struct vmap_stats st = { .size = sizeof(st) };

	if (vmap_stats(s, &st))
		return;
	bench_result("reclaim", backend, "rss_purges_threshold",
		     (double)st.purges_threshold, "");
	bench_result("reclaim", backend, "rss_purges_timer",
		     (double)st.purges_timer, "");
	bench_result("reclaim", backend, "rss_backpressure",
		     (double)st.backpressure, "");
	bench_result("reclaim", backend, "rss_lazy_max_wait_ms",
		     (double)st.lazy_max_wait_ns / 1e6, "");
}

int reclaim_rss_run(const char *backend, int areas)
{
	static struct sample smp[RSS_NSAMPLES];
	struct burst b = { 0 };
	long pg = sysconf(_SC_PAGESIZE), base, peak;
	char metric[64], extra[96];
	double back_ms = -1, settled = 0;
	struct vmap_config cfg;
	struct busy busy;
	uint64_t t0, tb;
	int failures = 0, err;

	if (areas < 1)
		return 1;
	b.p = calloc((size_t)areas, sizeof(*b.p));
	if (!b.p)
		return 1;
	if (!strcmp(backend, "vmap")) {
		vmap_config_init(&cfg);
		cfg.flags = VMAP_SPACE_MEMORY; /* purger, default delay */
		err = vmap_space_create(&cfg, &b.space);
		if (err) {
			fprintf(stderr, "reclaim: no memory space: %s\n",
				vmap_strerror(err));
			free(b.p);
			return 1;
		}
	} else {
		/* A malloc peer initialises itself (arenas, jemalloc's
		 * background thread) at its first calls: that is not the
		 * burst's memory, so it happens before the baseline. */
		free(malloc(RSS_AREA_BYTES));
	}
	failures += !busy_start(&busy);
	memset(b.p, 0, (size_t)areas * sizeof(*b.p)); /* faulted in */
	base = bench_rss_bytes(pg);
	if (base < 0) {
		fprintf(stderr, "reclaim: cannot read /proc/self/statm\n");
		failures++;
	}

	tb = now_ns();
	for (int i = 0; i < areas; i++) {
		b.p[i] = burst_alloc(&b);
		if (!b.p[i]) {
			fprintf(stderr, "reclaim: %s: allocation %d failed\n",
				backend, i);
			failures++;
			break;
		}
		touch(b.p[i], RSS_AREA_BYTES, (size_t)pg);
	}
	peak = bench_rss_bytes(pg) - base;
	for (int i = 0; i < areas && b.p[i]; i++)
		burst_free(&b, b.p[i]);
	t0 = now_ns();

	/* From here to the end of the window: no allocator call. */
	for (int k = 0; k < RSS_NSAMPLES; k++)
		sample_at(t0, k * RSS_PERIOD_MS, base, pg, &smp[k]);
	for (int k = 0; k < RSS_NSAMPLES && back_ms < 0; k++)
		if (smp[k].above <= RSS_WITHIN_KIB * 1024l)
			back_ms = smp[k].t_ms;
	if (b.space && RSS_CHECK) {
		settled = rss_settles(smp, t0, base, pg);
		if (settled < 0) {
			fprintf(stderr, "reclaim: vmap: %ld KiB above the "
				"pre-burst RSS %d ms after the frees, more "
				"than %d KiB\n",
				(bench_rss_bytes(pg) - base) / 1024, RSS_CHECK_MS,
				RSS_CHECK_SLACK_KIB);
			failures++;
		}
	}
	busy_stop(&busy);

	snprintf(extra, sizeof(extra), ",\"areas\":%d,\"area_kib\":%d", areas,
		 RSS_AREA_BYTES / 1024);
	bench_result("reclaim", backend, "rss_base_kib", (double)base / 1024,
		     extra);
	bench_result("reclaim", backend, "rss_peak_above_kib",
		     (double)peak / 1024, extra);
	bench_result("reclaim", backend, "burst_ms",
		     (double)(t0 - tb) / 1e6, extra);
	bench_result("reclaim", backend, "rss_back_ms", back_ms, extra);
	if (b.space && RSS_CHECK)
		bench_result("reclaim", backend, "rss_settled_ms", settled,
			     extra);
	for (int k = 0; k < RSS_NSAMPLES; k++) {
		snprintf(metric, sizeof(metric), "rss_above_kib_at_%dms",
			 k * RSS_PERIOD_MS);
		snprintf(extra, sizeof(extra), ",\"t_ms\":%.3f",
			 smp[k].t_ms);
		bench_result("reclaim", backend, metric,
			     (double)smp[k].above / 1024, extra);
	}
	if (b.space) {
		rss_space_report(backend, b.space);
		failures += !!vmap_check(b.space);
		vmap_space_destroy(b.space);
	}
	free(b.p);
	return failures;
}
