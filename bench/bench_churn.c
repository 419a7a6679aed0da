/* SPDX-License-Identifier: MIT */
/*
 * bench_churn.c - the churn scenario: allocate, touch every page, free, as
 * fast as `threads` workers can, areas of 1, 4, 16 and 64 pages (one phase
 * per size, all workers in it at once), while one more thread of the process
 * spins on a CPU.  That busy thread is the point: with it, every system call
 * that drops mapped pages must interrupt it to flush its TLB (~20 us on a
 * 2-vCPU VM) -- the cost a lazy, batched release avoids, and the cost a
 * single-threaded benchmark never sees.
 *
 * Then the memory: peak RSS for all; for vmap, the most lazy pages the space
 * held (sampled every ~1 ms by the busy thread: no stats call in the hot
 * loop) must stay near lazy_max_pages, and a sync purge must give back
 * everything the churn used.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "vmap.h"

enum churn_kind { CHURN_VMAP, CHURN_STRICT, CHURN_MMAP, CHURN_MALLOC };

static const size_t churn_sizes[] = { 1, 4, 16, 64 };
#define CHURN_NSIZES (sizeof(churn_sizes) / sizeof(churn_sizes[0]))
#define CHURN_MAX_PAGES 64
#define CHURN_MAX_THREADS 64
/* What a purged space may keep above its size at creation: thread stacks
 * and malloc arenas of the new threads, and the library's records -- freed
 * to malloc, which keeps the memory: per area ever held at once, a 56-byte
 * record in its malloc chunk, plus the purge's range and sort vectors. */
#define CHURN_RSS_SLACK_KIB 2048
#define CHURN_RECORD_BYTES 128

/* Under a sanitizer, shadow memory and quarantines are resident too: the
 * RSS numbers are still reported, but not checked. */
#ifndef __has_feature
#define __has_feature(x) 0
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__) || \
	__has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define CHURN_RSS_CHECK 0
#else
#define CHURN_RSS_CHECK 1
#endif

/* One worker; a cache line of its own, so counting does not bounce. */
struct churn_worker {
	_Alignas(64) struct churn *c;
	pthread_t tid;
	uint64_t ops;	    /* this phase's; read by main after the barrier */
	unsigned failures;
};

struct churn {
	enum churn_kind kind;
	const char *backend;
	vmap_space *space;
	size_t pg;
	int threads;
	pthread_mutex_t gate;	/* held by main until the barrier exists */
	pthread_barrier_t barrier;
	atomic_bool stop;	/* end of the phase */
	atomic_bool done;	/* end of the busy thread */
	uint64_t max_lazy;	/* the busy thread's samples: lazy pages, */
	uint64_t max_areas;	/* and areas busy, lazy or warm */
	unsigned busy_failures;
	struct churn_worker w[CHURN_MAX_THREADS];
};

static uint64_t churn_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Resident set now, in KiB. */
static long churn_rss_kib(size_t pg)
{
	long bytes = bench_rss_bytes((long)pg);

	return bytes < 0 ? -1 : bytes / 1024;
}

static void *churn_alloc(struct churn *c, size_t bytes)
{
	void *p;

	switch (c->kind) {
	case CHURN_VMAP:
	case CHURN_STRICT:
		return vmap_vmalloc(c->space, bytes);
	case CHURN_MMAP:
		p = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		return p == MAP_FAILED ? NULL : p;
	default:
		/* Page-aligned, so that every page touched is the area's own
		 * and a peer that returns memory can return whole pages. */
		return aligned_alloc(c->pg, bytes);
	}
}

static int churn_free(struct churn *c, void *p, size_t bytes)
{
	switch (c->kind) {
	case CHURN_VMAP:
	case CHURN_STRICT:
		return vmap_vfree(c->space, p);
	case CHURN_MMAP:
		return munmap(p, bytes) ? -errno : 0;
	default:
		free(p);
		return 0;
	}
}

/*
 * Write one byte of every page first, then check another byte of it reads
 * zero.  (Reading first would map the shared zero page, and the write after
 * it would replace that mapping: a TLB shootdown per page, which is not what
 * a user writing their memory pays.)  Successive operations swap the two
 * offsets, so the byte checked is one an earlier owner of the page wrote: a
 * page handed out again without its release or zeroing is caught.  Volatile
 * keeps the compiler from dropping stores to memory that is freed next, and
 * from moving the read above the write.
 */
static bool churn_touch(char *p, size_t pages, size_t pg, bool check,
			uint64_t op)
{
	size_t w = op & 1 ? 64 : 0, r = w ^ 64;

	for (size_t i = 0; i < pages; i++) {
		volatile char *q = p + i * pg;

		q[w] = 1;
		if (check && q[r])
			return false;
	}
	return true;
}

static void *churn_worker(void *arg)
{
	struct churn_worker *w = arg;
	struct churn *c = w->c;
	/* Only memory that must read zero is checked: vmap_vmalloc's
	 * contents are unspecified (a warm area keeps its last owner's, as
	 * malloc's do) unless the space has no pool (strict). */
	bool check = c->kind == CHURN_STRICT || c->kind == CHURN_MMAP;

	pthread_mutex_lock(&c->gate);
	pthread_mutex_unlock(&c->gate);
	for (size_t z = 0; z < CHURN_NSIZES; z++) {
		size_t pages = churn_sizes[z], bytes = pages * c->pg;
		uint64_t ops = 0;

		pthread_barrier_wait(&c->barrier);
		while (!atomic_load_explicit(&c->stop, memory_order_relaxed)) {
			char *p = churn_alloc(c, bytes);
			const char *why = NULL;

			if (!p)
				why = "allocation failed";
			else if (!churn_touch(p, pages, c->pg, check, ops))
				why = "new memory does not read zero";
			if (p && churn_free(c, p, bytes) && !why)
				why = "free failed";
			/* One failure ends this worker's phase: counting
			 * millions of the same one would tell nothing more. */
			if (why) {
				fprintf(stderr, "churn: %s: %zu pages at %p: "
					"%s\n", c->backend, pages, (void *)p,
					why);
				w->failures++;
				break;
			}
			ops++;
		}
		w->ops = ops;
		pthread_barrier_wait(&c->barrier);
	}
	return NULL;
}

static void churn_sample(struct churn *c)
{
	struct vmap_stats st = { .size = sizeof(st) };

	if (vmap_stats(c->space, &st)) {
		c->busy_failures++;
		return;
	}
	if (st.lazy_pages > c->max_lazy)
		c->max_lazy = st.lazy_pages;
	if (st.busy_areas + st.lazy_areas + st.pool_areas > c->max_areas)
		c->max_areas = st.busy_areas + st.lazy_areas + st.pool_areas;
}

/*
 * The busy thread: spins in user mode, so its CPU is always in this mm's
 * cpumask and every release of mapped pages must shoot down its TLB.  Being
 * there anyway, it samples the space's lazy pages every millisecond -- off the
 * workers' path.  A clock read per 256 spins costs it nothing that matters.
 */
static void *churn_busy(void *arg)
{
	struct churn *c = arg;
	uint64_t next = churn_now();

	for (unsigned n = 0;
	     !atomic_load_explicit(&c->done, memory_order_relaxed); n++) {
		uint64_t t;

		if (!c->space || (n & 255))
			continue;
		t = churn_now();
		if (t < next)
			continue;
		churn_sample(c);
		next = t + 1000000;
	}
	return NULL;
}

static const struct {
	const char *name;
	enum churn_kind kind;
} churn_backends[] = {
	{ "vmap", CHURN_VMAP },	  { "legacy", CHURN_VMAP },
	{ "vmap-strict", CHURN_STRICT }, { "mmap", CHURN_MMAP },
	{ "malloc", CHURN_MALLOC },
};

static void churn_report(const struct churn *c, const char *what, double v)
{
	char metric[64], extra[32];

	snprintf(metric, sizeof(metric), "%s_%dt", what, c->threads);
	snprintf(extra, sizeof(extra), ",\"threads\":%d", c->threads);
	bench_result("churn", c->backend, metric, v, extra);
}

/* The phases: the workers churn one size for `phase` seconds each. */
static void churn_phases(struct churn *c, double phase)
{
	for (size_t z = 0; z < CHURN_NSIZES; z++) {
		char metric[64], extra[64];
		uint64_t t0, t1, ops = 0, ns;
		struct timespec end;

		atomic_store(&c->stop, false);
		pthread_barrier_wait(&c->barrier);
		t0 = churn_now();
		ns = t0 + (uint64_t)(phase * 1e9);
		end.tv_sec = (time_t)(ns / 1000000000u);
		end.tv_nsec = (long)(ns % 1000000000u);
		while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &end,
				       NULL) == EINTR)
			;
		atomic_store(&c->stop, true);
		pthread_barrier_wait(&c->barrier);
		t1 = churn_now();
		for (int i = 0; i < c->threads; i++)
			ops += c->w[i].ops;
		snprintf(metric, sizeof(metric), "ops_per_s_%zup_%dt",
			 churn_sizes[z], c->threads);
		snprintf(extra, sizeof(extra), ",\"pages\":%zu,\"threads\":%d",
			 churn_sizes[z], c->threads);
		bench_result("churn", c->backend, metric,
			     (double)ops * 1e9 / (double)(t1 - t0), extra);
	}
}

/* What stayed resident, in KiB: before anything, when the space was new,
 * after the last free, and after the purge (vmap) or a second of idle
 * (malloc: a peer gives back what it likes, when it likes). */
struct churn_rss {
	long base, space, frees, after;
};

/*
 * The verdict on memory, once the busy thread has stopped and its samples
 * can be read.  A purged space must hold no more than it did new, plus
 * slack; munmap gives everything back at once; a malloc peer is not judged.
 * Returns failures.
 */
static unsigned churn_memory(struct churn *c, const struct vmap_stats *st,
			     const struct churn_rss *r)
{
	long allowed = r->base + CHURN_RSS_SLACK_KIB;
	unsigned failures = 0;

	churn_report(c, "rss_base_kib", (double)r->base);
	churn_report(c, "rss_after_frees_kib", (double)r->frees);
	if (c->kind == CHURN_MALLOC) {
		churn_report(c, "rss_after_idle_kib", (double)r->after);
		return 0;
	}
	if (c->space) {
		/* Each worker may push its one area past the threshold
		 * before the free that crossed it has purged. */
		uint64_t bound = st->lazy_max_pages +
				 (uint64_t)c->threads * CHURN_MAX_PAGES;

		churn_report(c, "rss_after_purge_kib", (double)r->after);
		churn_report(c, "lazy_max_pages", (double)st->lazy_max_pages);
		churn_report(c, "max_lazy_pages", (double)c->max_lazy);
		if (c->max_lazy > bound) {
			fprintf(stderr, "churn: %s: %llu pages were lazy at "
				"once, more than %llu\n", c->backend,
				(unsigned long long)c->max_lazy,
				(unsigned long long)bound);
			failures++;
		}
		allowed = r->space + CHURN_RSS_SLACK_KIB +
			  (long)(c->max_areas * CHURN_RECORD_BYTES / 1024);
	}
	if (CHURN_RSS_CHECK && (r->base < 0 || r->after < 0 ||
				r->after > allowed)) {
		fprintf(stderr, "churn: %s: %ld KiB resident after the frees%s"
			", at most %ld KiB expected\n", c->backend, r->after,
			c->space ? " and a purge" : "", allowed);
		failures++;
	}
	return failures;
}

int churn_run(const char *backend, int threads, double seconds)
{
	struct vmap_stats st = { .size = sizeof(st) };
	struct vmap_config cfg;
	struct rusage ru;
	struct churn *c;
	pthread_t busy;
	struct churn_rss rss = { 0 };
	unsigned failures = 0;
	int started, err;
	bool busy_on;
	size_t b, nb = sizeof(churn_backends) / sizeof(churn_backends[0]);

	for (b = 0; backend && b < nb; b++)
		if (!strcmp(backend, churn_backends[b].name))
			break;
	if (!backend || b == nb || threads < 1 ||
	    threads > CHURN_MAX_THREADS || !(seconds > 0)) {
		fprintf(stderr, "churn: bad backend, threads or seconds\n");
		return 1;
	}
	c = aligned_alloc(64, sizeof(*c));
	if (!c)
		return 1;
	memset(c, 0, sizeof(*c));
	c->kind = churn_backends[b].kind;
	c->backend = backend;
	c->pg = (size_t)sysconf(_SC_PAGESIZE);
	rss.base = churn_rss_kib(c->pg);
	if (c->kind == CHURN_VMAP || c->kind == CHURN_STRICT) {
		vmap_config_init(&cfg);
		cfg.flags = VMAP_SPACE_MEMORY |
			    (c->kind == CHURN_STRICT ? VMAP_SPACE_STRICT : 0);
		err = vmap_space_create(&cfg, &c->space);
		if (err || vmap_stats(c->space, &st)) {
			fprintf(stderr, "churn: %s: no memory space: %s\n",
				backend, vmap_strerror(err));
			vmap_space_destroy(c->space);
			free(c);
			return 1;
		}
		rss.space = churn_rss_kib(c->pg);
	}

	atomic_init(&c->stop, false);
	atomic_init(&c->done, false);
	pthread_mutex_init(&c->gate, NULL);
	busy_on = !pthread_create(&busy, NULL, churn_busy, c);
	failures += !busy_on;
	/* Workers wait at the gate until the barrier knows how many they
	 * are: a failed pthread_create must not leave the rest waiting. */
	pthread_mutex_lock(&c->gate);
	for (started = 0; started < threads; started++) {
		c->w[started].c = c;
		if (pthread_create(&c->w[started].tid, NULL, churn_worker,
				   &c->w[started]))
			break;
	}
	if (!busy_on || started < threads) {
		fprintf(stderr, "churn: %s: %d of %d workers, busy thread "
			"%s\n", backend, started, threads,
			busy_on ? "on" : "off");
		failures += started < threads;
	}
	c->threads = started;
	pthread_barrier_init(&c->barrier, NULL, (unsigned)started + 1);
	pthread_mutex_unlock(&c->gate);
	if (started)
		churn_phases(c, seconds / CHURN_NSIZES);
	for (int i = 0; i < started; i++) {
		pthread_join(c->w[i].tid, NULL);
		failures += c->w[i].failures;
	}
	c->threads = threads; /* results are named for the run asked for */

	/* The busy thread keeps running: the purge pays its shootdown. */
	rss.frees = rss.after = churn_rss_kib(c->pg);
	if (c->space) {
		failures += !!vmap_purge(c->space, VMAP_PURGE_SYNC);
		rss.after = churn_rss_kib(c->pg);
	} else if (c->kind == CHURN_MALLOC) {
		sleep(1);
		rss.after = churn_rss_kib(c->pg);
	}
	atomic_store(&c->done, true);
	if (busy_on)
		pthread_join(busy, NULL);
	failures += c->busy_failures + churn_memory(c, &st, &rss);
	pthread_barrier_destroy(&c->barrier);
	pthread_mutex_destroy(&c->gate);
	vmap_space_destroy(c->space);
	if (!getrusage(RUSAGE_SELF, &ru))
		churn_report(c, "peak_rss_kib", (double)ru.ru_maxrss);
	free(c);
	return (int)failures;
}
