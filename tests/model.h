/* SPDX-License-Identifier: MIT */
/*
 * model.h - the model test's engine (model_ref.c, model_ops.c), for its
 * drivers: model_test.c draws the choices from a PRNG, fuzz/fuzz_model.c
 * from a fuzz input's bytes, fuzz/seed_model.c records a seeded run as a
 * fuzz input.
 *
 * A driver picks the source (model_seed or model_feed), then makes a space
 * (model_new_space: the first choices say which) and runs operations on it
 * (model_step; or both, model_run_space), each checked against the model;
 * the first disagreement prints what differed and stops the process --
 * exit(1) from a seed, abort() from a fuzz input.  The thread must be
 * pinned (model_pin) first: the model knows one CPU's vmap blocks.
 *
 * A quarter of the spaces flush asynchronously (flush_async): their
 * batches stay in flight until a step, or the callback itself, completes
 * their token -- in any order, several batches with one token; the model
 * foresees every call that would wait for a completion (forever, in one
 * thread) and makes sure it does not.  Every 16 steps, and as a step of
 * its own, vmap_walk and vmap_largest_free are checked against the model's
 * pages too.  A fifth of the spaces (not async or ram ones) are
 * VMAP_SPACE_EMPTY: they start with a few spans, some touching, and a step
 * adds one now and then (or a bad one: overlapping, outside, unaligned).
 */
#ifndef VMAP_TEST_MODEL_H
#define VMAP_TEST_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <vmap.h>

void model_seed(uint64_t seed);
/* The bytes must stay valid until the next model_feed or model_seed. */
void model_feed(const uint8_t *data, size_t size);
/* A choice in [0, n) from the same source. */
uint64_t model_rnd(uint64_t n);
/* From a seed: record every choice from now on into buf, as the fuzz input
 * that makes the same choices; model_recorded() is its length, 0 if it did
 * not fit in cap. */
void model_record(uint8_t *buf, size_t cap);
size_t model_recorded(void);

void model_pin(void);
/* Destroys the previous space, if any, and makes a new one. */
void model_new_space(void);
/* One operation, checked; p_alloc: how often, in %, it allocates rather
 * than frees. */
void model_step(unsigned p_alloc);
/* A new space and steps on it, as a fuzz input runs: until the input is all
 * drawn (or max_ops steps), with a new fill/drain balance every 256. */
void model_run_space(uint64_t max_ops);
void model_end_space(void);

/* For a driver's summary. */
uint64_t model_ops(void);			/* steps since the source */
const struct vmap_stats *model_stats(void);	/* of the current space */
bool model_small_areas(void);	/* a space of 1- and 2-page areas */
int model_checks(void);
/* What the fixed-address calls came to, since the source: a run that
 * never reaches an outcome tests nothing of it. */
struct model_tally {
	uint64_t at;		/* vmap_alloc_at and vmap_reserve calls */
	uint64_t placed;	/* ... that took the range */
	uint64_t pooled;	/* ... of those, a node pool's area */
	uint64_t purged;	/* ... of those, after a VMAP_AT_PURGE purge */
	uint64_t drained;	/* ... of those, after the pools were drained
				   (no purge) */
	uint64_t busy, again;	/* ... -EBUSY, -EAGAIN */
	uint64_t unreserved;	/* vmap_unreserve calls that took one back */
	uint64_t refused;	/* frees of a reservation: -EPERM */
	uint64_t state[3];	/* vmap_range_state's answers */
	/* Asynchronous flushes (a quarter of the spaces): */
	uint64_t flights;	/* flush_async calls (batches started) */
	uint64_t markers;	/* ... of nothing lazy: a marker flight */
	uint64_t completed;	/* vmap_flush_complete calls that completed
				   a flight, outside a callback */
	uint64_t out_of_order;	/* ... not the oldest flight in flight */
	uint64_t shared;	/* ... more than one flight at once */
	uint64_t in_call;	/* completions of older flights from the
				   callback: given back as its purge ends */
	uint64_t early;		/* batches that started completed */
	uint64_t early_shared;	/* ... by a completion that also completed
				   an older flight with the token */
	uint64_t unknown;	/* -ENOENT: no flight had the token */
	uint64_t remembered;	/* unknown tokens taken during a call */
	uint64_t not_async;	/* -EINVAL: a space without flush_async */
	uint64_t unblocked;	/* allocations that would have waited for
				   a completion, forever: the callback
				   completed everything instead */
	uint64_t completed_first; /* ... or, with no purge to call it, a
				   flight completed instead of the call */
	uint64_t walks, largest; /* vmap_walk, vmap_largest_free checks */
	/* Spans (VMAP_SPACE_EMPTY spaces): */
	uint64_t span_spaces;	/* spaces made empty */
	uint64_t spans, cuts;	/* vmap_space_add calls that added one;
				   ... touching another span (a cut) */
	uint64_t span_bad[3];	/* ... refused: -EEXIST, -ERANGE, -EINVAL */
	uint64_t not_in_span;	/* fixed-address calls and range states of
				   a range not inside one span: -ERANGE */
};
const struct model_tally *model_tally(void);

#ifdef MODEL_ENGINE
/*
 * Between the engine's two halves; drivers need none of it.
 * model_ref.c is the reference model -- one state byte per page, the
 * vmap blocks, the counters vmap_stats() must show -- and the comparison
 * with vmap after every operation (check_state, the flush callback).
 * model_ops.c generates the operations, runs each on vmap and on the model
 * (model_alloc ... model_unmap_aliases), makes the spaces, and is the
 * drivers' side above.
 */
#ifndef VMAP_XALLOC_NOPURGE
#define VMAP_XALLOC_NOPURGE 0	/* a header from before the flag */
#endif

#define MAX_PAGES 4096
#define MAX_BP 256	/* the largest block_pages the ram spaces use */
#define MAX_BLOCKS (MAX_PAGES / 128)
#define RAM_MAX VMAP_RAM_MAX_PAGES

typedef unsigned long long ull;

/* BLK: a live vmap block's page; CACHED: free, in a node pool (free to
 * vmap_stats, not in the free tree); RSV: a reservation's (vmap_reserve:
 * busy, but no vmap_free's); FLT: a purged area whose asynchronous flush
 * is in flight (lazy to vmap_range_state and vmap_walk, counted in
 * flight, free only once its token is completed); ABSENT: in no span of a
 * VMAP_SPACE_EMPTY space (not the space's: never free, never walked). */
enum { FREE, BUSY, LAZY, BLK, CACHED, RSV, FLT, ABSENT };

#define POOL_PAGES 256	/* areas up to this many pages are pooled */
#define POOL_SCAN 4	/* pooled areas a take looks at */
#define NO_PAGE UINT32_MAX

struct op {
	int kind, variant;
	uint64_t size, align, phase, nocross, vstart, vend, addr;
	unsigned flags, how;
};

/*
 * A vmap block: pieces [0, bp - free) handed out, by a bump; map[off] is
 * the piece's pages where a live piece starts (its slot: 2^order pages).
 * [dmin, dmax) is the dirty range not yet flushed, empty when dmin >= dmax:
 *   pppddpp_____  free 5, dirty 2, dirty range [3, 5)
 */
struct mblock {
	bool live;
	uint32_t page;			/* first page */
	uint32_t free, dirty, dmin, dmax;
	uint8_t map[MAX_BP];
};

struct piece {
	uint64_t addr, size;		/* size: the bytes asked for */
};

/*
 * An asynchronous flush in flight: one flush_async call's batch, out of use
 * until its token is completed.  Its areas are the FLT pages whose
 * flight_of is its id (a marker, of a flush of nothing lazy, has none).
 * done: completed during a purge, given back when the purge ends, in the
 * order of the library's done list -- the highest done_seq first.
 */
#define MAX_FLIGHTS 64
/* The most completions a callback makes -- but for one that completes
 * everything, its own token first -- so that the library remembers each
 * for the batch the call starts (8 a call, until it remembered them all). */
#define FLIGHT_EARLY 8

struct mflight {
	uint64_t token;
	uint32_t id, areas, pages;
	bool done;
	uint64_t done_seq;
};

/*
 * What the flush_async callback does when it is called: the completions
 * it makes (of older flights' tokens, of the token it is about to return,
 * of unknown ones), then the token it returns.  Drawn before each
 * operation of an async space (the model must know it to foresee a wait),
 * one plan per call the operation may make; a call past the last takes
 * the last.  The callback records what vmap_flush_complete said, for the
 * model's purge to compare.
 */
#define PLAN_COMP (MAX_FLIGHTS + 12)
#define NPLANS 2

struct plan {
	unsigned ncomp;
	uint64_t comp[PLAN_COMP];
	uint64_t ret;
};

struct calls {
	struct plan plan[NPLANS];
	unsigned made, modelled;	/* calls vmap made; the model took */
	int rc[NPLANS][PLAN_COMP];
};

struct model {
	uint64_t base, end, ps, npages, lazy_max;
	uint64_t cap, purge_rate;	/* most busy pages; purges per 1000 */
	bool small, strict;		/* 1- or 2-page areas; STRICT space */
	bool ram;			/* vm_map_ram ops in this space */
	bool ram_full;			/* the last ram alloc found no room */
	uint64_t bp;			/* block_pages in force */
	uint8_t state[MAX_PAGES];
	uint32_t len_at[MAX_PAGES];	/* pages of the area starting here */
	uint32_t busy[MAX_PAGES];	/* first pages of the busy areas */
	size_t nbusy;			/* ... not counting blocks */
	uint32_t rsv[MAX_PAGES];	/* first pages of the reservations */
	size_t nrsv;
	uint32_t unreserved;		/* 1 + the first page of the last
					   reservation given back; 0: none */
	struct mblock blk[MAX_BLOCKS];	/* slots; live ones are blocks */
	uint32_t fl[MAX_BLOCKS];	/* the free list: slots, head first */
	size_t nfl, nblk;
	struct piece pc[MAX_PAGES];	/* live pieces */
	size_t npc;
	struct piece gone[64];		/* freed pieces, for double frees */
	unsigned ngone;
	size_t nexp;
	struct vmap_range exp[MAX_PAGES]; /* what the last purge flushed */
	/* The node pools (all on the one node of the pinned CPU), unless
	 * the space is VMAP_SPACE_LOWEST_FIT: by generation (0 young, 1
	 * old) and pages - 1, lists of first pages through pnext, newest
	 * first. */
	bool pools;
	uint32_t phead[2][POOL_PAGES], pcount[2][POOL_PAGES];
	uint32_t pnext[MAX_PAGES];
	bool lazy_block[MAX_PAGES];	/* a lazy area is a retired block */
	/* Asynchronous flushes (flush_async instead of flush): the flights,
	 * oldest first; the flight of each FLT page; tokens. */
	bool async;
	struct mflight flt[MAX_FLIGHTS];
	size_t nflt;
	uint32_t flight_of[MAX_PAGES];
	uint32_t next_fid;
	uint64_t done_seq;
	uint64_t tok_next;		/* the next fresh token */
	uint64_t last_ret;		/* the token the last call returned */
	bool any_ret;
	/* Spans (VMAP_SPACE_EMPTY): pages outside them are ABSENT; cut[p]:
	 * two spans touch between pages p - 1 and p, and no free block,
	 * purge run or area crosses there. */
	bool empty;
	bool cut[MAX_PAGES];
	struct vmap_stats st;		/* what vmap_stats() must say */
};

extern struct model m;		/* model_ref.c */
extern struct calls cbs;	/* model_ref.c: this operation's calls */
extern struct model_tally tally; /* model_ops.c */
extern vmap_space *space;	/* model_ops.c: the space under test */
extern int model_nchecks;	/* model_ops.c: EXPECTs, both halves */

/* Say where it went wrong -- the source of the choices, the operation, the
 * space -- and stop: exit for a test run, abort for a fuzz input. */
__attribute__((noreturn, format(printf, 3, 4)))
void model_fail(const char *file, int line, const char *fmt, ...);

#define EXPECT(cond, ...)                                                   \
	do {                                                                \
		model_nchecks++;                                            \
		if (!(cond))                                                \
			model_fail(__FILE__, __LINE__, __VA_ARGS__);        \
	} while (0)

/* model_ref.c: the model's side of each operation, as the header has it. */
void model_reset(void);		/* an empty model, no flush seen */
void flush_cb(void *ctx, const struct vmap_range *r, size_t n);
uint64_t flush_async_cb(void *ctx, const struct vmap_range *r, size_t n);
uint64_t addr_of(uint64_t page);
uint64_t to_pages(uint64_t size);
unsigned order_of(uint64_t pages);
int model_alloc(const struct op *o, uint64_t *addr);
int model_free(uint64_t addr);
/* vmap_alloc_at (reserve false) and vmap_reserve; vmap_unreserve; and
 * vmap_range_state, which changes nothing. */
int model_alloc_at(uint64_t addr, uint64_t size, unsigned flags,
		   bool reserve);
int model_unreserve(uint64_t addr);
int model_range_state(uint64_t start, uint64_t size, int *state);
/* vmap_space_add. */
int model_space_add(uint64_t start, uint64_t length);
/* The reservation starting at addr, as an index of m.rsv; -1 if none. */
long rsv_at(uint64_t addr);
int model_ram_alloc(uint64_t size, uint64_t *addr);
int model_ram_free(uint64_t addr, uint64_t size);
void model_vmap_purge(unsigned how);
void model_unmap_aliases(void);
/* vmap_flush_complete, outside any callback. */
int model_complete(uint64_t token);
/*
 * Would this call wait for a completion -- forever, single-threaded --
 * with the callback doing cbs.plan[0]?  0: no; 1: yes, after its purge
 * has called the callback (a plan that completes everything prevents it);
 * 2: yes, and no callback comes first.  The calls' arguments as they go
 * to vmap (model_alloc's op; vmap_ram_alloc's size; vmap_alloc_at's).
 */
int model_alloc_waits(const struct op *o);
int model_ram_alloc_waits(uint64_t size);
int model_at_waits(uint64_t addr, uint64_t size, unsigned flags);
/* vmap_walk of [from, to) for `what` (stopping after `stop` ranges with
 * fn's return value rv, if stop), and vmap_largest_free, against the
 * model's pages. */
void check_walk(uint64_t from, uint64_t to, unsigned what, size_t stop,
		int rv);
void check_largest(void);
/* vmap against the model after an operation: return values are the
 * caller's; this compares the flushes, vmap_check() and every counter. */
void check_state(uint64_t flushes_before);
#endif /* MODEL_ENGINE */

#endif
