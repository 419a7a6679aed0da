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
 * busy, but no vmap_free's). */
enum { FREE, BUSY, LAZY, BLK, CACHED, RSV };

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
	struct vmap_stats st;		/* what vmap_stats() must say */
};

extern struct model m;		/* model_ref.c */
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
/* The reservation starting at addr, as an index of m.rsv; -1 if none. */
long rsv_at(uint64_t addr);
int model_ram_alloc(uint64_t size, uint64_t *addr);
int model_ram_free(uint64_t addr, uint64_t size);
void model_vmap_purge(unsigned how);
void model_unmap_aliases(void);
/* vmap against the model after an operation: return values are the
 * caller's; this compares the flushes, vmap_check() and every counter. */
void check_state(uint64_t flushes_before);
#endif /* MODEL_ENGINE */

#endif
