/* SPDX-License-Identifier: MIT */
/*
 * bench.h - the pieces of vmap-bench, and how they talk.
 *
 * vmap-bench runs every (scenario, backend) pair in a child process of its
 * own -- `vmap-bench --child SCENARIO BACKEND` -- so that allocators never
 * share a process (a malloc peer is loaded with LD_PRELOAD into its child;
 * the legacy backend is another executable, vmap-bench-legacy, built from
 * these sources against the legacy build of the library).  A child prints
 * its results on stdout, one per line:
 *
 *   RESULT {"scenario":"...","backend":"...","metric":"...","value":N,...}
 *
 * and anything else it prints (the kernel-style Summary lines) is passed on
 * to the user.  A child exits non-zero if any of its checks failed.
 */
#ifndef VMAP_BENCH_H
#define VMAP_BENCH_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/* test_vmalloc's module parameters, with the module's defaults. */
struct tv_params {
	int nr_threads;		   /* 0 = 1 */
	int test_loop_count;	   /* 1000000 */
	int run_test_mask;	   /* INT_MAX: every test */
	int sequential_test_order; /* 0: each worker shuffles the order */
	int test_repeat_count;	   /* 1 */
	int nr_pages;		   /* 0 = 1: fix_size_alloc_test, vm_map_ram */
};

void tv_defaults(struct tv_params *p);
/* Apply a preset of test_vmalloc.sh: "performance", "stress", "smoke". */
int tv_preset(struct tv_params *p, const char *name);
/* Parse one "key=value" module parameter; -1 if it is not one. */
int tv_param(struct tv_params *p, const char *kv);

/* Emit one result line (see above); extra is "" or ,"key":value... */
/* Resident set in bytes (pg: the page size), or -1; no allocator call, so
 * it can watch a malloc peer without disturbing it. */
long bench_rss_bytes(long pg);

void bench_result(const char *scenario, const char *backend,
		  const char *metric, double value, const char *extra);

/* ---- the scenarios, each run inside a child ---- */

/* The test_vmalloc workloads on a vmap memory space (backend "vmap",
 * "vmap-strict", or "legacy" in vmap-bench-legacy).  Prints the kernel's
 * Summary lines; returns the number of failed checks. */
int tv_run(const char *backend, const struct tv_params *p);

/* The seed's headline: the time of one purge of 1,000 lazy areas with
 * `busy` busy areas in the space (range space).  Returns failures. */
int headline_run(const char *backend, const uint64_t *busy, int nbusy);

/* Churn with a busy thread, and bounded memory.  backend: "vmap",
 * "vmap-strict", "legacy", "mmap", or "malloc" (whatever malloc the child
 * was started with).  Returns failures. */
int churn_run(const char *backend, int threads, double seconds);

/* Reclaim, part 1: the latency of vmap_vfree in a memory space with 64 live
 * areas of `pages` pages (vfree one, vmalloc one, touch it; a second thread
 * busy), `repeats` runs of `cycles` cycles -- each cut short after `seconds`
 * if that is > 0 -- each statistic's median over the runs reported.
 * backend: "vmap" (the purger) or "vmap-nopurger".  Returns failures. */
int reclaim_free_run(const char *backend, int pages, bool pool, int cycles,
		     int repeats, double seconds);

/* Reclaim, part 2: RSS every RECLAIM_PERIOD_MS for RECLAIM_WINDOW_MS after
 * `areas` 64 KiB areas were allocated, touched and freed, with no allocator
 * call after.
 * backend: "vmap" (a memory space, default purger) or "malloc" (whatever
 * malloc the child was started with).  Returns failures (vmap's RSS must be
 * back near its pre-burst level within 2 s). */
int reclaim_rss_run(const char *backend, int areas);
#define RECLAIM_PERIOD_MS 2
#define RECLAIM_WINDOW_MS 300

/* Large buffers, malloc-style: two workers each run `cycles` cycles of
 * allocate `bytes`, write a byte per 4 KiB page, free the oldest of the 4
 * it keeps live, with a third thread busy; then RSS every BIGBUF_PERIOD_MS
 * for `window_ms` with no allocator call.  backend: "vmap" (a memory space,
 * default flags), "mmap", or "malloc" (whatever malloc the child was started
 * with).  Returns failures. */
int bigbuf_run(const char *backend, size_t bytes, int cycles, int window_ms);
#define BIGBUF_PERIOD_MS 5
#define BIGBUF_WINDOW_MS 500	  /* the default window */
#define BIGBUF_MAX_WINDOW_MS 5000

#endif
