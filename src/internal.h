/* SPDX-License-Identifier: MIT */
/*
 * internal.h - the records every part of vmap shares, and the cross-file API
 * grouped by the file that defines it.  A map of the library in one page.
 */
#ifndef VMAP_INTERNAL_H
#define VMAP_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include "os.h"
#include "vmap.h"

#define VMAP_BUSY_SHARDS 32 /* all held by vmap_check: stay under TSan's 64 */

/* The warm pool's size classes (pool.c): one per size up to POOL_EXACT
 * pages, then one per power of two up to 2^64 pages. */
#define POOL_EXACT 64
#define POOL_CLASSES (POOL_EXACT + 58)

/*
 * One range of the space: a busy area (a vmap block is one too), a warm
 * area, a lazy area, a pooled (cached) area, a quarantined area, a free
 * block, or a purge's record of a block's dirty range.  A record is in
 * exactly one of those roles at a time, so the links share storage:
 *   busy: in one busy-map chain   (protected by that shard's lock)
 *   warm: on a pool list          (protected by the same shard's lock)
 *   lazy: on a node's lazy list   (immutable once pushed; owned by the purge
 *                                  that takes it) -- or, in the legacy
 *                                  build, in the busy map flagged VA_LAZY
 *   cached: on a node pool's list (protected by that node's lock)
 *   quarantined: on the quarantine list (protected by the quarantine lock)
 *   free: a node of the free tree (protected by the free lock)
 *   dirty: on one purge's list    (owned by the purge mutex; embedded
 *                                  in its vmap block, never freed alone)
 * Records live in the library's own heap (record.c's slabs), never next to
 * the caller's data.
 */
#define VA_FILE 0x1u  /* memory space: pages of a file are mapped here */
#define VA_GUARD 0x2u /* memory space: the last page is a guard page */
#define VA_BLOCK 0x4u /* a vmap block (vblock.c); not the caller's to free */
#define VA_DIRTY 0x8u /* a purge record for a live block's dirty range */
#define VA_LAZY 0x10u /* legacy build: freed, still in the busy map */
#define VA_PROT 0x20u /* memory space: vmap_vprotect changed it; written
			 under its shard lock while busy */
#define VA_GUARD_MPROT 0x40u /* the guard is an mprotect, not a marker (a
				locked range refuses markers) */
#define VA_HOLE 0x80u /* quarantined: may hold a hole, where something else
			 may have been mapped since: never MAP_FIXED over */
#define VA_QUARANTINED 0x100u /* a quarantined area a purge retries */
#define VA_STUCK 0x200u /* release.c: could not be restored, to quarantine */
#define VA_POOLED 0x400u /* busy: came from a node pool (node.c) */
#define VA_RESERVED 0x800u /* busy: a reservation (query.c); vmap_free
			      refuses it, vmap_unreserve gives it back */
#define VA_MOVED 0x1000u /* memory space: pages moved here or away by
			    mremap (vmap_vrealloc): a mapping of its own
			    until a remap joins it to the reservation again */
/* Bits 20 and up of flags: the node whose pool the area goes back to once
 * flushed (node.c) -- the node of the CPU that allocated it. */
#define VA_NODE_SHIFT 20
#define VA_KIND_MASK ((1u << VA_NODE_SHIFT) - 1)
/* What only remapping the whole area undoes: a file, an mprotect guard, a
 * quarantine's unknown state.  (A caller's protection alone is undone with
 * mprotect: no new mapping, which mlockall(MCL_FUTURE) would lock.) */
#define VA_REMAP (VA_FILE | VA_GUARD_MPROT | VA_QUARANTINED | VA_MOVED)

struct va {
	uint64_t start; /* [start, end), page-aligned */
	uint64_t end;
	unsigned flags; /* VA_*: set by the allocation, read by the purge */
	union {
		int height;	     /* free: the node's height in the tree */
		unsigned warm_epoch; /* warm: the pool epoch it went in at
					(pool.c); its shard's lock */
	};
	union {
		struct {
			struct va *next;   /* busy chain or lazy list */
			struct vblock *vb; /* busy VA_BLOCK: the block */
		};
		struct {
			struct va *left, *right, *parent;
			uint64_t max; /* largest end - start in this subtree */
		} ft;
	};
};

/* ---- freetree.c: free blocks by address, augmented with the largest ---- */

struct freetree {
	struct va *root;
	uint64_t nodes; /* free blocks */
	uint64_t bytes; /* total free bytes */
	const uint64_t *cuts; /* sorted: where no two blocks merge (spans
				 meet there); the space's, set by span.c */
	size_t ncuts;
};

/* What an allocation asks for; lo/hi already clipped to the space. */
struct fit {
	uint64_t size, align, phase, nocross;
	uint64_t lo, hi; /* the area must lie in [lo, hi) */
	bool topdown;
	bool nopurge; /* fail rather than purge when nothing fits */
	bool any_fit; /* a fit will do, not the lowest: skip the exact search
			 where it can miss (ft_find) */
};

void ft_init(struct freetree *t);
/* Misses the exact search may make before settling for a sure fit. */
#define FT_MISSES 16

/* The block holding the lowest (or highest) fitting address, which goes in
 * *addr; NULL if nothing fits.  See the comment at ft_find for the one case
 * where the address is not the lowest. */
struct va *ft_find(const struct freetree *t, const struct fit *f,
		   uint64_t *addr);
/* Remove [addr, addr + size) from block b, which holds it.  May take *spare
 * (and set it to NULL) for a right-hand remainder; returns b if b was used up
 * and unlinked (the caller frees or reuses it), else NULL. */
struct va *ft_carve(struct freetree *t, struct va *b, uint64_t addr,
		    uint64_t size, struct va **spare);
/* Add [start, end), which must not overlap any free block, merging with
 * touching neighbours.  Takes *node (setting it to NULL) only when no merge
 * happened; returns a node a three-way merge made redundant, for the caller to
 * free, or NULL. */
struct va *ft_insert(struct freetree *t, uint64_t start, uint64_t end,
		     struct va **node);
/* Could [f->lo, f->hi), were it all free, hold the area?  If not, nothing
 * a purge frees can help. */
bool ft_could_fit(const struct fit *f);
/* Unlink every node and hand it to release(); the tree is empty after. */
void ft_destroy(struct freetree *t, void (*release)(struct va *));
/* Visit up to max blocks starting at or after from, in order; returns how
 * many it visited (stops early at fn's first nonzero, stored in *err). */
uint64_t ft_walk_from(const struct freetree *t, uint64_t from, uint64_t max,
		      int (*fn)(void *, const struct va *), void *arg,
		      int *err);
/* Is addr one of the tree's cuts? */
bool ft_is_cut(const struct freetree *t, uint64_t addr);
/* The free block holding addr, or NULL. */
const struct va *ft_at(const struct freetree *t, uint64_t addr);
/* Validate order, links, balance and augmentation; message in msg. */
int ft_validate(const struct freetree *t, char *msg, size_t len);
/* In-order walk (stops at fn's first nonzero, which it returns). */
int ft_walk(const struct freetree *t, int (*fn)(void *, const struct va *),
	    void *arg);
static inline uint64_t ft_largest(const struct freetree *t)
{
	return t->root ? t->root->ft.max : 0;
}

/* ---- busy.c: start address -> busy area, sharded ---- */

struct busy_shard {
	pthread_mutex_t lock;
	/* All protected by lock: */
	struct va **buckets; /* chains */
	uint64_t mask;	     /* nbuckets - 1 */
	struct va **old;     /* while growing: the previous table, else NULL */
	uint64_t old_mask;
	uint64_t moved;	     /* old buckets [0, moved) are in buckets */
	uint64_t count;
	uint64_t bytes;
	/* Memory spaces' warm areas whose start hashes here (pool.c): */
	struct va *pool[POOL_CLASSES]; /* by size class; lock */
	_Atomic uint64_t pool_mask[2]; /* bit c: pool[c] non-empty; written
					  under lock, read without */
} __attribute__((aligned(64)));

struct busy_map {
	struct busy_shard shard[VMAP_BUSY_SHARDS];
};

int busy_init(struct busy_map *m);
void busy_fini(struct busy_map *m, void (*release)(struct va *));
struct busy_shard *busy_shard_of(struct busy_map *m, uint64_t start);
/* Caller holds the shard's lock (the leading __).  Both may finish a
 * growth step: the table it retired comes back (through the return value, or
 * *retired) for the caller to free() once its locks are dropped. */
struct va **__busy_insert(struct busy_shard *s, struct va *va);
/* Remove the area at start, unless it has a flag in `refuse`. */
struct va *__busy_remove(struct busy_shard *s, uint64_t start,
			 unsigned refuse, struct va ***retired);
struct va *__busy_find(struct busy_shard *s, uint64_t start);
void busy_lock_all(struct busy_map *m);
void busy_unlock_all(struct busy_map *m);
/* With every shard locked: visit all areas (stops at fn's first nonzero). */
int __busy_walk(struct busy_map *m, int (*fn)(void *, const struct va *),
		void *arg);
/* With s locked: visit the areas of `buckets` buckets from *pos on,
 * advancing it; true once the shard is done (fn's error in *err). */
bool __busy_walk_part(struct busy_shard *s, uint64_t *pos, uint64_t buckets,
		      int (*fn)(void *, const struct va *), void *arg,
		      int *err);
/* With s locked: visit s's warm areas (pool.c). */
void __pool_walk_shard(struct busy_shard *s,
		       int (*fn)(void *, const struct va *), void *arg,
		       int *err);
/* With every shard locked: areas in the right shard, counters right. */
int __busy_validate(struct busy_map *m, char *msg, size_t len);
/* Legacy build: keep a freed area in the map, flagged VA_LAZY and not
 * counted; and unlink every such area, as a ->next list. */
void __busy_insert_lazy(struct busy_shard *s, struct va *va);
struct va *__busy_unlink_lazy(struct busy_shard *s);

/* ---- lazy.c: the lock-free lazy lists and their counters ---- */

/* The lists themselves are per node (struct vnode's `lazy`: a free pushes
 * onto its CPU's); the counters are the space's. */
struct lazy_list {
	atomic_uint_fast64_t pages; /* pages pushed and not yet given back */
	atomic_uint_fast64_t areas;
	/* When the oldest area not yet taken by a purge was freed (ns), or 0:
	 * set by the push that finds nothing lazy, taken by the purge. */
	atomic_uint_fast64_t since;
} __attribute__((aligned(64))); /* a line of its own: every free writes it,
				   and fields every call reads (nodes) must
				   not move with it */

void lazy_init(struct lazy_list *l);
/* The counting half of a free (before the record is published); returns
 * the lazy page count including these pages. */
uint64_t lazy_count(struct lazy_list *l, uint64_t pages);
/* Publish va on a list (CAS push).  va must not be touched after. */
void lazy_push(_Atomic(struct va *) *head, struct va *va);
/* Take a whole list (exchange). */
struct va *lazy_take(_Atomic(struct va *) *head);
/* After a purge that took its list at `taken`: areas freed since then start
 * their wait no later than that. */
void lazy_rearm(struct lazy_list *l, uint64_t taken);
/* Count areas a purge adds to its batch from elsewhere (the quarantine) as
 * lazy, so that giving them back balances. */
void lazy_adopt(struct lazy_list *l, uint64_t pages, uint64_t areas);
/*
 * The lazy-free mechanism, as the rest of the library sees it.  In vmap it is
 * the lists above, one per node; the legacy build (VMAP_LEGACY, legacy.c) has
 * the pre-2016 kernel's instead -- a lazy flag on an area left in the busy
 * map, and a purge that walks every busy area -- so that the benchmark can
 * compare the two with nothing else different.
 *   vm_publish:   va has left the busy map (sh locked): make it lazy and count
 *                 it; returns the lazy pages.  va is not ours after.
 *   vm_take:      a purge takes every lazy area (purge mutex held), as up to
 *                 VMAP_NODES_MAX lists into lists[]; returns how many; *since
 *                 gets when the oldest was freed (0: unknown).
 */
uint64_t vm_publish(vmap_space *s, struct busy_shard *sh, struct va *va);
unsigned vm_take(vmap_space *s, uint64_t *since, struct va **lists);
/* Purge mutex held: visit every lazy area (stops at fn's first nonzero). */
int __vm_lazy_walk(vmap_space *s, int (*fn)(void *, const struct va *),
		   void *arg);

/* A purge has given back `pages` pages in `areas` areas. */
void lazy_retire(struct lazy_list *l, uint64_t pages, uint64_t areas);

/* ---- sort.c: a purge's batch in address order ---- */

struct sort_item {
	uint64_t key; /* page index in the space */
	struct va *va;
};

struct sortbuf {
	struct sort_item *a, *b; /* radix sort source and destination */
	size_t cap;
};

/* Sort the records of lists[0..n) into one list by start; *count gets its
 * length.  Purge mutex held; `extra` records beyond the lazy areas are on
 * the lists. */
struct va *batch_sort(vmap_space *s, struct va **lists, unsigned n,
		      uint64_t extra, uint64_t *count);
void sortbuf_free(struct sortbuf *b);

/* ---- vblock.c: per-CPU vmap blocks ---- */

#define VMAP_BLOCK_PAGES_DEFAULT 1024 /* the kernel's VMAP_BBMAP_BITS */
#define VMAP_BLOCK_PAGES_MAX 65536

/* All fields are protected by the lock of the queue the block is on
 * (vbq[cpu]); cpu, start and live are also atomic, so that a lookup can find
 * that queue, lock it, and check that the block is still the one it wanted. */
struct vblock {
	_Atomic uint64_t start;	       /* the block's area */
	_Atomic unsigned cpu;	       /* whose queue */
	_Atomic bool live;	       /* false once retired */
	unsigned free;		       /* pages never handed out; the next
					  piece starts at block_pages - free */
	unsigned dirty;		       /* pages handed out and freed */
	unsigned dirty_min, dirty_max; /* the dirty range not yet flushed, in
					  pages; empty when min >= max */
	bool on_free;
	struct vblock *free_prev, *free_next; /* blocks with free pages */
	struct vblock *all_prev, *all_next;   /* all live blocks; the dead
						 list reuses all_next */
	struct va flushing; /* the dirty range on a vmap_unmap_aliases
			       purge's list: owned by the purge mutex */
	uint8_t map[]; /* block_pages: at each live piece's start, its pages
			  (1..VMAP_RAM_MAX_PAGES, exact: a free must say the
			  same); its slot is the next power of two */
};

struct vbq {
	pthread_mutex_t lock;
	struct vblock *free_head, *free_tail; /* protected by lock */
	struct vblock *all;		      /* protected by lock */
	unsigned blocks;		      /* protected by lock */
	/* Pieces allocated and freed by threads on this CPU: counted here,
	 * not in the space's counters, which every CPU would fight over. */
	atomic_uint_fast64_t allocs, frees;
} __attribute__((aligned(64)));

int vblocks_init(vmap_space *s, uint64_t block_pages);
void vblocks_fini(vmap_space *s);
/* Both count in the calling CPU's queue.  vb_alloc's -ENOSPC: no room for a
 * new block, whose fit vb_fit gives (for reclaim_miss). */
int vb_alloc(vmap_space *s, uint64_t pages, uint64_t *addr);
void vb_fit(const vmap_space *s, struct fit *f);
/* -ENOENT: no live piece there; -EINVAL: a piece of another size.  With
 * undo, a piece that is still its block's last is un-bumped (*undo set).
 * *lazy: the lazy pages if the block went (see vm_free), else 0. */
int vb_free(vmap_space *s, uint64_t addr, uint64_t pages, bool *undo,
	    uint64_t *lazy);
void vb_uncount(vmap_space *s, bool freed);
/* Is a live piece at addr?  (Only to tell a wrong count from no piece.) */
bool vb_is_piece(vmap_space *s, uint64_t addr);
/* Purge mutex held: retire every fragmented block to the lazy list. */
void __purge_fragmented_blocks(vmap_space *s);
/* Purge mutex held, range spaces: records of every live block's dirty
 * range, reset. */
struct va *__collect_dirty(vmap_space *s, uint64_t *n);
/* Purge mutex held, memory spaces: every freed piece plain space again;
 * -ENOMEM if the kernel refused one (kept dirty, for the next try). */
int __remap_freed_pieces(vmap_space *s);
void vblocks_lock_all(vmap_space *s);
void vblocks_unlock_all(vmap_space *s);
int __vblocks_validate(vmap_space *s, char *msg, size_t len);
/* With cpu's queue locked: add its blocks to the stats. */
void __vblocks_stats(vmap_space *s, unsigned cpu, struct vmap_stats *st);

/* ---- purger.c: a space's purge thread ---- */

struct purger {
	bool enabled;		/* immutable: the space has one */
	uint64_t delay_ns;	/* immutable: the time bound */
	uint64_t watch_ns;	/* immutable: how often an unkicked thread
				   looks, with nothing pending */
	pthread_mutex_t lock;	/* below: protected by lock but where said */
	pthread_cond_t wake;	/* signalled by purger_kick and _stop */
	pthread_t thread;
	bool started;		/* the thread is in its loop (not after it
				   exited idle; a fork's child has none) */
	bool joinable;		/* a thread was made and not yet joined */
	bool stop;		/* vmap_space_destroy: leave */
	atomic_bool urgent;	/* a free passed the threshold: purge now;
				   written under lock, read without */
	atomic_bool idle;	/* gone, or not started: a free must kick
				   it; written under lock, read without
				   (see purger.c) */
	uint64_t next_trim;	/* the pool clock's next tick (ns); 0: the
				   clock is stopped; the thread's own */
	/* The pool's clock, one tick per trim; read without the lock by
	 * __pool_put, advanced by the purger with the purge mutex held. */
	atomic_uint epoch;
};

/* ---- record.c: records from slabs ---- */

struct records {
	pthread_mutex_t lock; /* a leaf: taken under any lock, takes none */
	struct va *free;      /* records to hand out; lock */
	struct record_chunk *chunks; /* to free with the space; lock */
	uint64_t bytes;	      /* in chunks; lock */
};

void records_init(struct records *r);
void records_fini(struct records *r);
/* n records into out[0..n), or -1 (none taken) with no memory. */
int va_get(vmap_space *s, struct va **out, unsigned n);
/* Give back a record, or a ->next list of them; NULL is fine. */
void va_put(vmap_space *s, struct va *va);
void va_put_list(vmap_space *s, struct va *list);
/* Does records_fini free every record (slabs), or must each be put? */
bool records_own_all(void);
/* Bytes the space holds in record chunks (0 where each is malloc's). */
uint64_t records_bytes(vmap_space *s);

/* ---- node.c: per-CPU nodes and their pools of flushed areas ---- */

#define NODE_POOL_PAGES 256 /* areas up to this many pages are pooled */
#define VMAP_NODES_MAX 64 /* CPUs past it share nodes */

struct vnode {
	pthread_mutex_t lock;
	/* Protected by lock: flushed free areas by pages - 1, newest first,
	 * in two generations -- given by the last purge (YOUNG) and by the
	 * one before (OLD); a purge sends OLD back to the tree. */
	struct va *pool[2][NODE_POOL_PAGES];
	uint32_t count[2][NODE_POOL_PAGES];
	uint64_t used[NODE_POOL_PAGES / 64]; /* bit c: either list of c */
	/* What the pools hold: written under lock, read without. */
	atomic_uint_fast64_t pages, areas;
	/* The lazy list of the areas freed on this node's CPU (lazy.c):
	 * lock-free, on a line of its own. */
	_Atomic(struct va *) lazy __attribute__((aligned(64)));
	/* Events of the threads on this node's CPU, relaxed, summed by
	 * vmap_stats: a counter every CPU shared would move between their
	 * caches on every call (allocs, frees: the space's other paths
	 * count in the space's own). */
	atomic_uint_fast64_t allocs, frees, hits;
} __attribute__((aligned(64)));

int nodes_init(vmap_space *s, bool pools);
/* Hand every pooled record to release (space destroy). */
void nodes_fini(vmap_space *s);
/* The node of the calling thread's CPU. */
unsigned node_here(const vmap_space *s);
/* Count an allocation or a free in the calling CPU's node. */
void node_count_alloc(vmap_space *s);
void node_count_free(vmap_space *s);
/* Pooled areas and pages, summed over the nodes (relaxed). */
uint64_t nodes_cached(vmap_space *s, uint64_t *pages);
/* Add the nodes' counters to st (vmap_stats). */
void nodes_stats(vmap_space *s, struct vmap_stats *st);
/* The pool fast path of an allocation: a flushed area of f's size from this
 * CPU's node that meets f, into the busy map as kind; false if none. */
bool node_take(vmap_space *s, const struct fit *f, unsigned kind,
	       struct vblock *vb, uint64_t *addr);
/* Undo node_take for an area nobody has seen (taken out of the busy map):
 * back at the head of its pool, as if never taken. */
void node_untake(vmap_space *s, struct va *va);
/* Purge mutex held, the batch flushed: move the areas pools keep from *list
 * (sorted; the rest stays, in order) into their nodes' pools, retiring
 * them from the lazy counters; returns how many. */
uint64_t __nodes_give(vmap_space *s, struct va **list); /* areas pooled */
/* Purge mutex held: send every pool's old generation back to the free tree
 * and make the young one old (decay), or (all) send everything; true if
 * anything moved. */
bool __nodes_decay(vmap_space *s, bool all);
void nodes_lock_all(vmap_space *s);
void nodes_unlock_all(vmap_space *s);
/* With every node locked: visit every pooled area. */
int __nodes_walk(vmap_space *s, int (*fn)(void *, const struct va *),
		 void *arg);
/* With node n locked: the same, for one node (vmap_dump). */
int __node_walk(vmap_space *s, unsigned n,
		int (*fn)(void *, const struct va *), void *arg);

/* ---- space.c ---- */

/*
 * The event counters, one list: each is a field of struct vmap_space (atomic,
 * counted relaxed with vm_count / vm_stat_max, read by vmap_stats into the
 * field of struct vmap_stats of the same name).
 */
#define VMAP_COUNTERS(X)                                                     \
	X(allocs) X(frees) X(alloc_failures) X(purge_retries) X(purges)      \
	X(flushes) X(ranges_flushed) X(areas_purged) X(purge_max_areas)      \
	X(purge_max_hold_ns) X(purge_last_ns) X(release_syscalls)            \
	X(release_errors) X(guard_syscalls) X(map_syscalls)                  \
	X(quarantine_retries) X(protect_restores) X(pool_pages) X(pool_areas) \
	X(pool_hits) X(blocks_created) X(blocks_freed) X(purges_threshold)   \
	X(purges_miss) X(purges_called) X(purges_timer) X(purges_strict)     \
	X(purges_aliases) X(backpressure) X(lazy_max_wait_ns)                \
	X(purger_wakeups) X(cached_decayed)

/*
 * The lock order, outermost first.  A thread holding one of these may take
 * only those below it:
 *   1. the fork handlers' list of spaces (fork.c)
 *   2. purge_lock        a purge, and the flush callback it runs
 *   3. purger.lock       the purge thread's state (a flush may free, and a
 *                        free may kick the thread)
 *   4. free_lock         the free tree
 *   4a. node locks       in index order when more than one (check, fork)
 *   5. busy shard locks  in index order when more than one (check, fork)
 *   6. vbq[cpu].lock     in cpu order when more than one; taken before a
 *                        shard lock only by check and dump, with every
 *                        shard lock already held in index order
 *   7. vb_dead_lock      retired vblock structs
 *   8. quarantine_lock
 *   8a. flight_lock      asynchronous flushes in flight (flight.c)
 *   9. records.lock      a leaf (record.c)
 * Functions named __name need a lock their comment names.
 */
struct vmap_space {
	/* Immutable after create. */
	uint64_t base, end; /* [base, end) */
	unsigned page_shift;
	uint64_t page_size;
	uint64_t lazy_max_pages;
	vmap_flush_fn flush;
	void *flush_ctx;
	bool memory; /* VMAP_SPACE_MEMORY */
	bool strict; /* VMAP_SPACE_STRICT */
	bool guard;  /* VMAP_SPACE_GUARD */
	bool pools;  /* node pools: not VMAP_SPACE_LOWEST_FIT */
	const struct vmap_os *os;  /* memory spaces: the OS seam */
	enum os_release_path path; /* memory spaces: how purges release */

	pthread_mutex_t free_lock;
	struct freetree free; /* protected by free_lock */
	/* The spans (span.c): sorted, disjoint; and where two touch, the
	 * free tree's cuts.  Protected by free_lock; `whole` is immutable. */
	bool whole; /* one span, the whole range (not VMAP_SPACE_EMPTY) */
	struct vmap_range *spans;
	size_t nspans;
	uint64_t *cuts;
	uint64_t span_bytes;

	struct busy_map busy; /* per-shard locks */

	struct records records; /* its own leaf lock */
	unsigned nnodes;	/* immutable: one node per CPU */
	struct vnode *nodes;	/* per-node locks */

	struct lazy_list lazy; /* lock-free */

	pthread_mutex_t purge_lock;
	struct vmap_range *vec; /* flush vector; protected by purge_lock */
	size_t vec_cap;		/* protected by purge_lock */
	struct sortbuf sortbuf; /* protected by purge_lock */

	struct purger purger;

	/* Memory spaces: areas the kernel refused to release or restore
	 * (quarantine.c).  All protected by quarantine_lock. */
	pthread_mutex_t quarantine_lock;
	struct va *quarantine, **quarantine_tail; /* oldest first */
	uint64_t quarantine_areas, quarantine_pages;
	uint64_t quarantine_budget; /* the next purge's retries; purge_lock */

	/* Asynchronous flushes (flight.c): batches flushed and not yet
	 * completed (flights), and completed ones not yet given back (done),
	 * each a list headed by its first record.  All protected by
	 * flight_lock; flight_cond signals a completion. */
	vmap_flush_async_fn flush_async; /* immutable; NULL: synchronous */
	pthread_mutex_t flight_lock;
	pthread_cond_t flight_cond;
	struct va *flights, *done;
	uint64_t flight_areas, flight_pages; /* in both lists */
	uint64_t flights_open;		     /* on flights */
	uint64_t completions;		     /* ever */
	bool calling;			     /* a flush_async call is under way */
	uint64_t *early;		     /* early[0..nearly): completions */
	size_t nearly, early_cap;	     /* made during that call */

	/* The list of live spaces the fork handlers lock (fork.c); protected
	 * by that list's mutex. */
	vmap_space *fork_prev, *fork_next;

#define X(name) atomic_uint_fast64_t name;
	VMAP_COUNTERS(X)
#undef X
	/* Memory spaces' pool (pool.c); pool_pages is reserved by
	 * __pool_put before it adds an area. */
	uint64_t pool_max_pages;	/* immutable; 0 = no pool */
	/* vmap blocks (vblock.c): */
	uint64_t block_pages;		/* immutable */
	unsigned nvbq;			/* immutable: one queue per CPU */
	struct vbq *vbq;
	pthread_mutex_t vb_dead_lock;
	struct vblock *vb_dead;		/* retired, for reuse; vb_dead_lock */
};

/* Count n events (relaxed: a counter orders nothing). */
static inline void vm_count(atomic_uint_fast64_t *c, uint64_t n)
{
	atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

static inline void vm_uncount(atomic_uint_fast64_t *c, uint64_t n)
{
	atomic_fetch_sub_explicit(c, n, memory_order_relaxed);
}

static inline uint64_t vm_read(atomic_uint_fast64_t *c)
{
	return atomic_load_explicit(c, memory_order_relaxed);
}

/* A guard page is an area's last page: the one ending at `end`. */
static inline uint64_t guard_page(const vmap_space *s, uint64_t end)
{
	return end - s->page_size;
}

/* The end of the caller's part of an area. */
static inline uint64_t va_usable_end(const vmap_space *s, const struct va *v)
{
	return v->flags & VA_GUARD ? guard_page(s, v->end) : v->end;
}

static inline uint64_t space_pages(const vmap_space *s, uint64_t bytes)
{
	return bytes >> s->page_shift;
}

/* ---- memory.c: memory spaces' public calls ---- */

int memory_check_config(const struct vmap_config *c);
/* Reserve the space's memory and probe how to release it. */
int memory_init(vmap_space *s, uint64_t length, unsigned flags);
void memory_fini(vmap_space *s);
/* pgoff[0..n) all within a file offset's range?  */
bool file_offsets_ok(const vmap_space *s, const uint64_t *pgoff, size_t n);
/* Map pages pgoff[0..n) of fd at a, one mmap per run of consecutive pages;
 * *mapped: how many pages were mapped before an error. */
int map_file_runs(vmap_space *s, uint64_t a, int fd, const uint64_t *pgoff,
		  size_t n, int prot, size_t *mapped);

/* ---- release.c: how a purge's batch becomes reusable space ---- */

/*
 * The one door between the purge and what releasing means.  Purge mutex
 * held; list is the batch sorted by address, n records long.  A range space
 * calls the caller's flush with the coalesced ranges; a memory space undoes
 * the caller's protections, gives the pages back to the kernel in vectors,
 * then removes file mappings and guard pages.  Returns the records whose
 * ranges may be handed out again; the others went to quarantine.
 */
struct va *release_batch(vmap_space *s, struct va *list, uint64_t n);
/* Is this thread inside s's flush callback? */
bool vm_in_flush(const vmap_space *s);
/* Turn [addr, addr + len) back into plain reserved space; on -EEXIST the
 * range may now hold a hole (see VA_HOLE). */
int memory_remap(vmap_space *s, uint64_t addr, uint64_t len);

/* ---- quarantine.c: ranges the kernel refused ---- */

/* Take va (out of every other structure, counted nowhere) out of use. */
void quarantine_add(vmap_space *s, struct va *va);
/* Purge mutex held: the oldest quarantined areas, as many as the budget
 * says, counted as lazy again and flagged VA_QUARANTINED, for this purge to
 * retry; then what came of it (failed: how many went back). */
struct va *quarantine_retry(vmap_space *s, uint64_t *n);
void quarantine_outcome(vmap_space *s, uint64_t tried, uint64_t failed);
/* With the quarantine lock held (check.c): visit every quarantined area. */
int __quarantine_walk(vmap_space *s, int (*fn)(void *, const struct va *),
		      void *arg);
void quarantine_fini(vmap_space *s, void (*release)(struct va *));

/* ---- fork.c: the fork handlers ---- */

/* Enter / leave a space in the list the handlers lock; 0 or -ENOMEM (the
 * first call registers the handlers). */
int fork_register(vmap_space *s);
void fork_unregister(vmap_space *s);
/* Every lock of s, in the documented order (check.c, fork.c). */
void space_lock_all(vmap_space *s);
void space_unlock_all(vmap_space *s);

/* ---- area.c: an area's way through the free tree and the busy map ---- */

/* Check a request and turn it into a fit (adding the guard page). */
int vm_make_fit(const vmap_space *s, uint64_t size, uint64_t align,
		uint64_t phase, uint64_t nocross, uint64_t vstart,
		uint64_t vend, unsigned flags, struct fit *f);
/* Place an area of kind VA_* and install its guard page.  -ENOSPC: nothing
 * fits now (not counted as a failure: the caller asks reclaim_miss). */
int vm_alloc(vmap_space *s, const struct fit *f, unsigned kind,
	     struct vblock *vb, uint64_t *addr);
/* Free the area at addr: into the pool, or onto the lazy list.  Never
 * purges: *lazy gets the lazy pages counting this area (0: kept warm), for
 * the caller to report to reclaim_freed.  how: FREE_BLOCK frees a vmap block
 * (and nothing else).  bytes: if not 0, the area must be that long (guard
 * page not counted), or -EINVAL. */
#define FREE_BLOCK 0x1u
#define FREE_RESERVED 0x2u /* a reservation (and nothing else) */
int vm_free(vmap_space *s, uint64_t addr, unsigned how, uint64_t bytes,
	    uint64_t *lazy);
/* A range space's reservation at addr straight back to the free tree:
 * never mapped, nothing to flush.  -ENOENT: no busy area there; -EPERM: one
 * that is not a reservation. */
int vm_unreserve_now(vmap_space *s, uint64_t addr);
/* Resize the caller's busy area at addr in place to `bytes` (a page
 * multiple; its guard page follows).  -ENOSPC: the space after it is not
 * free (grow); -EINVAL: a block, reservation, file or vprotected area;
 * -ENOENT: no busy area there; -ENOMEM.  A shrink makes its tail lazy:
 * *lazy as vm_free's. */
int vm_resize(vmap_space *s, uint64_t addr, uint64_t bytes, uint64_t *lazy);
/* Add flags to the caller's busy area at addr; its usable size in *size.
 * -ENOENT: no busy area there (or a block). */
int vm_flag(vmap_space *s, uint64_t addr, unsigned add, uint64_t *size);
/* Is a busy area of the tree (not a block) at addr? */
bool vm_is_area(vmap_space *s, uint64_t addr);
/* Undo vm_alloc for an area the caller never handed out, whose first
 * `mapped` bytes show a file: at once, or, if the kernel refuses to restore
 * the range, into quarantine. */
void vm_unalloc(vmap_space *s, uint64_t addr, uint64_t mapped);

/* ---- reclaim.c: the one policy -- when to purge, and how much ---- */

/* A free produced `lazy` lazy pages (0: the area was kept warm). */
void reclaim_freed(vmap_space *s, uint64_t lazy);
/* An allocation of f found no room on try `tries` (0 first): true if a purge
 * may have made room (the caller tries again); false if the miss is final,
 * counted as a failure. */
bool reclaim_miss(vmap_space *s, const struct fit *f, unsigned tries);
/* A fixed-address allocation of [lo, hi) found it taken on try `tries`: 0
 * if it may have room now (the caller tries again), else -EBUSY (a busy
 * page) or -EAGAIN (no busy page, but lazy ones, and no purge asked). */
int reclaim_at_miss(vmap_space *s, uint64_t lo, uint64_t hi, bool purge,
		    unsigned tries);
/* The kernel refused a mapping (vm.max_map_count): purge, so waiting file
 * mappings become plain space again.  true: try once more. */
bool reclaim_nomem(vmap_space *s);

/* ---- snapshot.c: a list of a space's ranges, each with its state ---- */

enum snap_state {
	SN_FREE, SN_BUSY, SN_LAZY, SN_POOL /* warm */, SN_BLOCK,
	SN_QUARANTINE, SN_CACHED, SN_FLIGHT, SN_RESERVED, SN_ABSENT,
	SN_CUT /* an empty item where two spans touch (walks only) */,
	SN_NSTATES
};
extern const char *const snap_name[SN_NSTATES];

struct item {
	uint64_t start, end;
	enum snap_state state;
	unsigned flags; /* VA_* */
};

struct snapshot {
	struct item *item;
	size_t n, cap;
	enum snap_state adding; /* what snap_add is given */
	uint64_t lo, hi;	/* only what overlaps [lo, hi) is kept */
};

int snap_room(struct snapshot *sn, size_t more);
/* A walker's callback: add va as sn->adding (a busy map's blocks, lazy
 * areas and reservations as what they are). */
int snap_add(void *arg, const struct va *va);
void snap_sort(struct snapshot *sn);

/* ---- span.c: the parts of the range that are address space ---- */

void spans_init(vmap_space *s, bool empty);
void spans_fini(vmap_space *s);
/* Free lock held: 0 if [lo, hi) lies in one span, else -ERANGE. */
int __span_check(const vmap_space *s, uint64_t lo, uint64_t hi);
/* Free lock held: an empty record at every cut (where two spans touch). */
int __spans_walk_cuts(const vmap_space *s,
		      int (*fn)(void *, const struct va *), void *arg);
/* Free lock held: visit the parts of the range outside every span. */
int __spans_walk_absent(const vmap_space *s,
			int (*fn)(void *, const struct va *), void *arg);

/* ---- query.c: a range by address ---- */

/* Purge mutex held: VMAP_RANGE_FREE, _LAZY or _BUSY for [lo, hi), or
 * -ENOMEM. */
int __vm_range_state(vmap_space *s, uint64_t lo, uint64_t hi);

/* ---- pool.c: warm areas of memory spaces ---- */

/* With sh's lock held, after taking va out of the busy map: keep it warm?
 * false if it is not eligible or the pool is full. */
bool __pool_put(vmap_space *s, struct busy_shard *sh, struct va *va);
/* A warm area of `pages` pages, moved into the busy map; its start in *addr. */
bool pool_take(vmap_space *s, uint64_t pages, uint64_t *addr);
/* Move every warm area to the lazy list, for a purge to release. */
void pool_drain(vmap_space *s);
/* Move the warm areas that went in before epoch `before` to the lazy list;
 * true if warm areas remain. */
bool pool_trim(vmap_space *s, unsigned before);
/* With every shard locked: visit every warm area. */
void __pool_walk(vmap_space *s, int (*fn)(void *, const struct va *),
		 void *arg, int *err);
void pool_fini(vmap_space *s, void (*release)(struct va *));

#ifdef VMAP_TEST_HOOKS
/* Test builds only: called by vm_free right after it published an area. */
extern void (*vm_test_after_publish)(vmap_space *s);
#endif

/* ---- purge.c: one purge ---- */

/* With the purge mutex held: take every lazy area (and, in memory spaces, a
 * few quarantined ones), release the batch through release_batch and give
 * the ranges back: common sizes to the node pools, the rest to the free
 * tree.  how: PURGE_FORCE calls the flush even with nothing lazy;
 * PURGE_TREE gives everything to the tree (a purge whose caller empties the
 * pools next: no pool round trip).  extra: VA_DIRTY ranges to fold into the
 * flush.  false if there was nothing to do. */
#define PURGE_FORCE 0x1u
#define PURGE_TREE 0x2u
bool __vm_purge(vmap_space *s, unsigned how, struct va *extra,
		uint64_t nextra);
/* Free lock held: [start, end) into the free tree, offering node as its
 * record; the records the tree did not keep go onto *spent, to be put after
 * the lock is dropped. */
void __tree_give(vmap_space *s, uint64_t start, uint64_t end,
		 struct va *node, struct va **spent);

/* Purge mutex held: a flushed batch (sorted) back to the free space --
 * common sizes to the node pools unless tree, the rest to the free tree --
 * retiring it from the lazy counters; returns its areas. */
uint64_t __vm_give(vmap_space *s, struct va *list, bool tree);

/* ---- flight.c: asynchronous flushes ---- */

void flights_init(vmap_space *s, vmap_flush_async_fn fn);
void flights_fini(vmap_space *s, void (*release)(struct va *));
/* Purge mutex held: call flush_async (counted), its returned token next
 * for __flight_start, which must follow. */
uint64_t __flight_call(vmap_space *s, const struct vmap_range *r, size_t n);
/* Purge mutex held: the flushed batch `list` (sorted; VA_DIRTY records are
 * dropped from it) waits for `token`, out of the lazy counters. */
void __flight_start(vmap_space *s, uint64_t token, struct va *list);
/* Purge mutex held: give back every completed flight; returns its areas. */
uint64_t __flights_settle(vmap_space *s);
/* Let go of the purge mutex, giving back every completed flight first --
 * including one completed while it was held (every holder but the fork
 * handlers unlocks with this). */
void purge_unlock(vmap_space *s);
/* Anything in flight or completed and not yet given back? */
bool flights_pending(vmap_space *s);
/* Wait until a completion arrives, unless nothing is in flight; true if
 * something is completed and waiting to be given back. */
bool flights_wait(vmap_space *s);
/* With flight_lock held: visit every area in flight or completed. */
int __flights_walk(vmap_space *s, int (*fn)(void *, const struct va *),
		   void *arg);

/* ---- purger.c: the purge thread (see struct purger) ---- */

int purger_init(vmap_space *s, bool enabled, uint64_t delay_ms);
/* Stop and join the thread. */
void purger_fini(vmap_space *s);
/* Make sure the thread will look at the space soon; urgent: purge at once
 * rather than when the time bound says.  Starts the thread the first time;
 * false if it could not (the caller purges itself). */
bool purger_kick(vmap_space *s, bool urgent);
/* Fork handlers: the purger lock with every other lock; and the child,
 * which has no thread. */
void purger_lock(vmap_space *s);
void purger_unlock(vmap_space *s);
void purger_forked(vmap_space *s);

/* ---- fault.c: the library's own heap ---- */

/*
 * Every record and buffer of the library comes from these, so that a
 * fault-injection build (VMAP_FAULT, for tests/fault_test.c) can fail the
 * k-th one; elsewhere they are libc's.  free() needs no wrapper.
 */
#ifdef VMAP_FAULT
void *vm_malloc(size_t n);
void *vm_calloc(size_t n, size_t size);
void *vm_realloc(void *p, size_t n);
void *vm_aligned_alloc(size_t align, size_t n);
/* Fail the k-th allocation from now (0: none), and with for_good every one
 * after it too, until armed again. */
void vm_fault_arm(uint64_t k, bool for_good);
/* Allocations still to go before the armed failure (1: the next one fails;
 * 0: none armed). */
uint64_t vm_fault_pending(void);
/* Allocations failed on purpose, ever. */
uint64_t vm_fault_injected(void);
#else
#define vm_malloc malloc
#define vm_calloc calloc
#define vm_realloc realloc
#define vm_aligned_alloc aligned_alloc
#endif

/* ---- util ---- */

static inline uint64_t vm_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Raise a high-water counter to v. */
static inline void vm_stat_max(atomic_uint_fast64_t *c, uint64_t v)
{
	uint64_t old = atomic_load_explicit(c, memory_order_relaxed);

	while (old < v && !atomic_compare_exchange_weak_explicit(
				  c, &old, v, memory_order_relaxed,
				  memory_order_relaxed))
		;
}

#endif /* VMAP_INTERNAL_H */
