/* SPDX-License-Identifier: MIT */
/*
 * bench_bigbuf.c - the bigbuf scenario: what a malloc-style user gets from a
 * memory space for large buffers.
 *
 * Two workers each run `cycles` cycles of: allocate a buffer of S bytes,
 * write one byte in every 4 KiB page of it, and free the oldest of the
 * BIGBUF_LIVE buffers the worker keeps live -- so a freed buffer comes back
 * after others were freed and allocated, not as the LIFO reuse of a loop
 * that frees what it just got.  A third thread of the process spins on a
 * counter, as in churn: its CPU is always in this mm's cpumask, so every
 * release of mapped pages must interrupt it for a TLB shootdown.  Nothing is
 * pinned: the machine has 2 CPUs for 3 threads.
 *
 * The same loop runs on a memory space (vmap_vmalloc/vmap_vfree with the
 * default flags: the warm pool, the purge thread), on malloc (glibc's, or a
 * peer preloaded into the child) and on mmap/munmap per buffer.  Measured:
 *  - cycles per second, both workers together;
 *  - page faults during the loop (ru_minflt): a fresh page costs a fault and
 *    a zeroing -- what an allocator that keeps its memory saves, and what
 *    one that gives it back pays;
 *  - the peak RSS, sampled every ~1 ms by the busy thread (bench_rss_bytes
 *    makes no allocator call);
 *  - after the loop, with no further call into the allocator, RSS every
 *    BIGBUF_PERIOD_MS for the window: when it is back near the pre-loop
 *    level with nobody calling.  The workers stay parked on a barrier until
 *    the window ends, because a thread's exit calls the allocator too (glibc
 *    and jemalloc flush its thread cache then).
 *
 * Checks (each failure makes the child exit non-zero): every buffer is
 * non-NULL and aligned -- to the page from vmap and mmap, to max_align_t
 * from malloc (what C promises; a large malloc buffer is commonly a page
 * plus 16 bytes) -- and, just before it is freed, each page's byte reads
 * back as written and the worker's tag is still at the buffer's start and
 * end: a buffer handed to both workers at once would show the other's.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "vmap.h"

#define BIGBUF_THREADS 2
#define BIGBUF_LIVE 4	     /* buffers each worker keeps live */
#define BIGBUF_STRIDE 4096   /* one byte written per 4 KiB */
#define BIGBUF_BYTE_AT 64    /* ... at this offset: clear of the tag */
#define BIGBUF_SPACE_LENGTH (16ull << 30)
#define BIGBUF_WITHIN_KIB 1024 /* "back": within 1 MiB of the base, */
#define BIGBUF_WITHIN_PCT 5    /* or 5% of it if that is more */
#define BIGBUF_MAX_SAMPLES (BIGBUF_MAX_WINDOW_MS / BIGBUF_PERIOD_MS + 1)

enum bigbuf_kind { BIGBUF_VMAP, BIGBUF_MMAP, BIGBUF_MALLOC };

/* One worker; a cache line of its own. */
struct bigbuf_worker {
	_Alignas(64) struct bigbuf *b;
	pthread_t tid;
	int id;
	unsigned failures;
};

struct bigbuf {
	enum bigbuf_kind kind;
	const char *backend;
	vmap_space *space;
	size_t bytes, pg;
	int cycles;
	pthread_mutex_t gate;	   /* held by main until the barrier exists */
	pthread_barrier_t barrier; /* start, end of loop, end of window */
	atomic_bool sampling;	   /* the busy thread samples RSS */
	atomic_bool done;	   /* end of the busy thread */
	atomic_long peak;	   /* bytes: the busy thread's highest sample */
	struct bigbuf_worker w[BIGBUF_THREADS];
};

static uint64_t bigbuf_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void *bigbuf_alloc(struct bigbuf *b)
{
	void *p;

	switch (b->kind) {
	case BIGBUF_VMAP:
		return vmap_vmalloc(b->space, b->bytes);
	case BIGBUF_MMAP:
		p = mmap(NULL, b->bytes, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		return p == MAP_FAILED ? NULL : p;
	default:
		return malloc(b->bytes); /* what a malloc user writes */
	}
}

static int bigbuf_free(struct bigbuf *b, void *p)
{
	switch (b->kind) {
	case BIGBUF_VMAP:
		return vmap_vfree(b->space, p);
	case BIGBUF_MMAP:
		return munmap(p, b->bytes) ? -errno : 0;
	default:
		free(p);
		return 0;
	}
}

/* What a worker writes into the buffer of its cycle i: the tag, at the start
 * and the end, and a byte per page -- both differ between the workers, so
 * neither can mistake the other's writes for its own. */
static uint64_t bigbuf_tag(int id, int i)
{
	return 0xb16b0f0000000000u | (uint64_t)id << 32 | (uint32_t)i;
}

static unsigned char bigbuf_byte(int id, int i)
{
	return (unsigned char)(0x10 * (id + 1) + (i & 0xf));
}

/* Volatile: the stores are to memory freed later with no read the compiler
 * can see, and the check's loads must really read it. */
static void bigbuf_fill(char *p, size_t bytes, uint64_t tag, unsigned char v)
{
	volatile char *q = p;

	for (size_t off = 0; off < bytes; off += BIGBUF_STRIDE)
		q[off + BIGBUF_BYTE_AT] = (char)v;
	*(volatile uint64_t *)p = tag;
	*(volatile uint64_t *)(p + bytes - sizeof(tag)) = tag;
}

/* The check before the free: NULL if all is as written, else why not. */
static const char *bigbuf_check(const char *p, size_t bytes, uint64_t tag,
				unsigned char v)
{
	const volatile char *q = p;

	if (*(const volatile uint64_t *)p != tag ||
	    *(const volatile uint64_t *)(p + bytes - sizeof(tag)) != tag)
		return "the tag was overwritten";
	for (size_t off = 0; off < bytes; off += BIGBUF_STRIDE)
		if ((unsigned char)q[off + BIGBUF_BYTE_AT] != v)
			return "a byte written does not read back";
	return NULL;
}

/* Turn i of a worker: check and free the buffer of slot i % BIGBUF_LIVE, if
 * one is live, then -- while i is a cycle -- allocate and fill its next.
 * NULL if all went well, else why not (*bad: the buffer concerned). */
static const char *bigbuf_turn(struct bigbuf_worker *w, char **live,
			       int *cycle, int i, char **bad)
{
	struct bigbuf *b = w->b;
	uintptr_t align = b->kind == BIGBUF_MALLOC ? _Alignof(max_align_t)
						   : b->pg;
	int k = i % BIGBUF_LIVE;
	const char *why;
	char *p = live[k];

	*bad = p;
	if (p) {
		live[k] = NULL;
		why = bigbuf_check(p, b->bytes, bigbuf_tag(w->id, cycle[k]),
				   bigbuf_byte(w->id, cycle[k]));
		if (bigbuf_free(b, p) && !why)
			why = "free failed";
		if (why)
			return why;
	}
	if (i >= b->cycles)
		return NULL;
	*bad = p = bigbuf_alloc(b);
	if (!p)
		return "allocation failed";
	if ((uintptr_t)p % align) {
		bigbuf_free(b, p);
		return "misaligned buffer";
	}
	bigbuf_fill(p, b->bytes, bigbuf_tag(w->id, i), bigbuf_byte(w->id, i));
	live[k] = p;
	cycle[k] = i;
	return NULL;
}

static void *bigbuf_worker(void *arg)
{
	struct bigbuf_worker *w = arg;
	struct bigbuf *b = w->b;
	char *live[BIGBUF_LIVE] = { 0 }, *bad;
	int cycle[BIGBUF_LIVE] = { 0 };

	pthread_mutex_lock(&b->gate);
	pthread_mutex_unlock(&b->gate);
	pthread_barrier_wait(&b->barrier);
	/* Past the last cycle, BIGBUF_LIVE more turns free what is live:
	 * the drain belongs to the loop, so the window starts with all of it
	 * freed. */
	for (int i = 0; i < b->cycles + BIGBUF_LIVE; i++) {
		const char *why = bigbuf_turn(w, live, cycle, i, &bad);

		/* One failure ends this worker's loop: the same one a
		 * thousand times would tell nothing more. */
		if (why) {
			fprintf(stderr, "bigbuf: %s: worker %d, turn %d, %zu "
				"bytes at %p: %s\n", b->backend, w->id, i,
				b->bytes, (void *)bad, why);
			w->failures++;
			break;
		}
	}
	for (int k = 0; k < BIGBUF_LIVE; k++)
		if (live[k])
			bigbuf_free(b, live[k]);
	pthread_barrier_wait(&b->barrier); /* the loop's end */
	pthread_barrier_wait(&b->barrier); /* the window's */
	return NULL;
}

/*
 * The busy thread: spins on a counter in user mode; being there anyway, it
 * samples the RSS every millisecond while the loop runs -- off the workers'
 * path.  A clock read per 256 spins costs it nothing that matters.
 */
static void *bigbuf_busy(void *arg)
{
	struct bigbuf *b = arg;
	uint64_t next = 0;

	for (unsigned n = 0;
	     !atomic_load_explicit(&b->done, memory_order_relaxed); n++) {
		uint64_t t;
		long rss;

		if ((n & 255) ||
		    !atomic_load_explicit(&b->sampling, memory_order_relaxed))
			continue;
		t = bigbuf_now();
		if (t < next)
			continue;
		rss = bench_rss_bytes((long)b->pg);
		if (rss > atomic_load_explicit(&b->peak, memory_order_relaxed))
			atomic_store_explicit(&b->peak, rss,
					      memory_order_relaxed);
		next = t + 1000000;
	}
	return NULL;
}

/* Sleep until t0 + ms; then the RSS above base, bytes, and when (ms). */
static long bigbuf_sample_at(uint64_t t0, int ms, long base, long pg,
			     double *t_ms)
{
	uint64_t at = t0 + (uint64_t)ms * 1000000u;
	struct timespec ts = { .tv_sec = (time_t)(at / 1000000000u),
			       .tv_nsec = (long)(at % 1000000000u) };
	long above;

	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) ==
	       EINTR)
		;
	above = bench_rss_bytes(pg) - base;
	*t_ms = (double)(bigbuf_now() - t0) / 1e6;
	return above;
}

static void bigbuf_report(const struct bigbuf *b, const char *what, double v,
			  const char *extra)
{
	char metric[96];

	snprintf(metric, sizeof(metric), "%s_%zuk", what, b->bytes / 1024);
	bench_result("bigbuf", b->backend, metric, v, extra);
}

/* What the space did in the loop and the window: the pool's hits, purges by
 * cause, and the release's system calls. */
static void bigbuf_space_report(const struct bigbuf *b, const char *extra)
{
	struct vmap_stats st = { .size = sizeof(st) };

	if (vmap_stats(b->space, &st))
		return;
	bigbuf_report(b, "pool_hits", (double)st.pool_hits, extra);
	bigbuf_report(b, "purges_threshold", (double)st.purges_threshold,
		      extra);
	bigbuf_report(b, "purges_timer", (double)st.purges_timer, extra);
	bigbuf_report(b, "purges_miss", (double)st.purges_miss, extra);
	bigbuf_report(b, "backpressure", (double)st.backpressure, extra);
	bigbuf_report(b, "release_syscalls", (double)st.release_syscalls,
		      extra);
}

int bigbuf_run(const char *backend, size_t bytes, int cycles, int window_ms)
{
	static double t_ms[BIGBUF_MAX_SAMPLES];
	static long above[BIGBUF_MAX_SAMPLES];
	struct bigbuf *b;
	struct vmap_config cfg;
	struct rusage r0, r1;
	pthread_t busy;
	long base, within, peak;
	uint64_t t_start, t0;
	double back_ms = -1;
	char extra[128];
	int started, err, nsamples;
	unsigned failures = 0;
	bool busy_on;

	if (bytes < 2 * BIGBUF_STRIDE || bytes % BIGBUF_STRIDE || cycles < 1 ||
	    window_ms < 0 || window_ms > BIGBUF_MAX_WINDOW_MS) {
		fprintf(stderr, "bigbuf: bad size, cycles or window\n");
		return 1;
	}
	b = aligned_alloc(64, sizeof(*b));
	if (!b)
		return 1;
	memset(b, 0, sizeof(*b));
	if (!strcmp(backend, "vmap"))
		b->kind = BIGBUF_VMAP;
	else if (!strcmp(backend, "mmap"))
		b->kind = BIGBUF_MMAP;
	else if (!strcmp(backend, "malloc"))
		b->kind = BIGBUF_MALLOC;
	else {
		fprintf(stderr, "bigbuf: bad backend %s\n", backend);
		free(b);
		return 1;
	}
	b->backend = backend;
	b->bytes = bytes;
	b->cycles = cycles;
	b->pg = (size_t)sysconf(_SC_PAGESIZE);
	if (b->kind == BIGBUF_VMAP) {
		/* The defaults but the reservation's length: the warm pool
		 * and the purge thread as a user gets them. */
		vmap_config_init(&cfg);
		cfg.flags = VMAP_SPACE_MEMORY;
		cfg.length = BIGBUF_SPACE_LENGTH;
		err = vmap_space_create(&cfg, &b->space);
		if (err) {
			fprintf(stderr, "bigbuf: no memory space: %s\n",
				vmap_strerror(err));
			free(b);
			return 1;
		}
	} else if (b->kind == BIGBUF_MALLOC) {
		/* A peer initialises itself at its first call: not the loop's
		 * memory.  A small one, so as not to move glibc's dynamic
		 * mmap threshold, which the loop's own frees move. */
		free(malloc(64));
	}

	atomic_init(&b->sampling, false);
	atomic_init(&b->done, false);
	atomic_init(&b->peak, 0);
	pthread_mutex_init(&b->gate, NULL);
	busy_on = !pthread_create(&busy, NULL, bigbuf_busy, b);
	/* Workers wait at the gate until the barrier knows how many they
	 * are: a failed pthread_create must not leave the rest waiting. */
	pthread_mutex_lock(&b->gate);
	for (started = 0; started < BIGBUF_THREADS; started++) {
		b->w[started].b = b;
		b->w[started].id = started;
		if (pthread_create(&b->w[started].tid, NULL, bigbuf_worker,
				   &b->w[started]))
			break;
	}
	if (!busy_on || started < BIGBUF_THREADS) {
		fprintf(stderr, "bigbuf: %s: %d of %d workers, busy thread "
			"%s\n", backend, started, BIGBUF_THREADS,
			busy_on ? "on" : "off");
		failures++;
	}
	pthread_barrier_init(&b->barrier, NULL, (unsigned)started + 1);
	pthread_mutex_unlock(&b->gate);

	/* The base: every thread there, nothing allocated yet. */
	base = bench_rss_bytes((long)b->pg);
	if (base < 0) {
		fprintf(stderr, "bigbuf: cannot read /proc/self/statm\n");
		failures++;
	}
	within = BIGBUF_WITHIN_KIB * 1024l;
	if (base / 100 * BIGBUF_WITHIN_PCT > within)
		within = base / 100 * BIGBUF_WITHIN_PCT;
	atomic_store(&b->peak, base);
	atomic_store(&b->sampling, true);
	getrusage(RUSAGE_SELF, &r0);
	t_start = bigbuf_now();
	pthread_barrier_wait(&b->barrier);
	pthread_barrier_wait(&b->barrier);
	t0 = bigbuf_now();
	getrusage(RUSAGE_SELF, &r1);
	atomic_store(&b->sampling, false);

	/* From here to the end of the window: no allocator call. */
	nsamples = window_ms / BIGBUF_PERIOD_MS + 1;
	for (int k = 0; k < nsamples; k++)
		above[k] = bigbuf_sample_at(t0, k * BIGBUF_PERIOD_MS, base,
					    (long)b->pg, &t_ms[k]);
	pthread_barrier_wait(&b->barrier);
	for (int i = 0; i < started; i++) {
		pthread_join(b->w[i].tid, NULL);
		failures += b->w[i].failures;
	}
	atomic_store(&b->done, true);
	if (busy_on)
		pthread_join(busy, NULL);

	peak = atomic_load(&b->peak);
	if (base + above[0] > peak)
		peak = base + above[0];
	for (int k = 0; k < nsamples && back_ms < 0; k++)
		if (above[k] <= within)
			back_ms = t_ms[k];
	snprintf(extra, sizeof(extra),
		 ",\"bytes\":%zu,\"cycles\":%d,\"threads\":%d,\"live\":%d",
		 bytes, cycles, BIGBUF_THREADS, BIGBUF_LIVE);
	bigbuf_report(b, "cycles_per_s",
		      (double)cycles * started * 1e9 / (double)(t0 - t_start),
		      extra);
	bigbuf_report(b, "loop_ms", (double)(t0 - t_start) / 1e6, extra);
	bigbuf_report(b, "faults", (double)(r1.ru_minflt - r0.ru_minflt),
		      extra);
	bigbuf_report(b, "faults_per_cycle",
		      (double)(r1.ru_minflt - r0.ru_minflt) /
			      ((double)cycles * BIGBUF_THREADS),
		      extra);
	bigbuf_report(b, "rss_base_kib", (double)base / 1024, extra);
	bigbuf_report(b, "rss_peak_above_kib", (double)(peak - base) / 1024,
		      extra);
	bigbuf_report(b, "rss_within_kib", (double)within / 1024, extra);
	bigbuf_report(b, "rss_back_ms", back_ms, extra);
	for (int k = 0; k < nsamples; k++) {
		char what[48];

		snprintf(what, sizeof(what), "rss_above_kib_at_%dms",
			 k * BIGBUF_PERIOD_MS);
		snprintf(extra, sizeof(extra), ",\"t_ms\":%.3f", t_ms[k]);
		bigbuf_report(b, what, (double)above[k] / 1024, extra);
	}
	if (b->space) {
		bigbuf_space_report(b, "");
		failures += !!vmap_check(b->space);
		vmap_space_destroy(b->space);
	}
	pthread_barrier_destroy(&b->barrier);
	pthread_mutex_destroy(&b->gate);
	free(b);
	return (int)failures;
}
