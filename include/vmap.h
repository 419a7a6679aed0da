/* SPDX-License-Identifier: MIT */
/*
 * vmap.h - the vmap-area allocator with a lock-free lazy-free list.
 *
 * This header is the reference manual of libvmap.
 *
 * ==== What it is ====
 *
 * A *space* is a range of integers [base, base + length), cut into pages of a
 * power-of-two size.  vmap hands out *areas*: page-granular, contiguous pieces
 * of the space, placed at the lowest (or, on request, highest) address that
 * satisfies the caller's size, alignment, phase, boundary and range
 * constraints.  The search runs over a balanced tree of free blocks, each node
 * knowing the largest free block below it, so it costs O(log n) in the number
 * of free blocks.
 *
 * Freeing an area does not make its range reusable at once.  The area goes onto
 * a lock-free *lazy list*; when the pages waiting there pass `lazy_max_pages`,
 * or when an allocation finds no room, the list is *purged*: taken whole in one
 * atomic exchange, sorted, coalesced, and handed to the space's *flush*
 * callback in one call.  Only after that call returns do the ranges go back to
 * the free tree.  One flush per batch instead of one per free is the point: for
 * real memory each flush is a TLB shootdown, which costs about the same for a
 * thousand ranges as for one.
 *
 * There are two kinds of space.  A *range space* manages any integer range --
 * GPU virtual addresses, IOVAs, file offsets, a simulated kernel VA space --
 * and the caller's flush callback does whatever "release" means there
 * (invalidate a TLB, flush an IOTLB, count); vmap touches no memory at those
 * addresses.  A *memory space* (VMAP_SPACE_MEMORY) is real memory of this
 * process: one reserved region from which vmap_vmalloc() hands out memory, and
 * whose freed pages a purge gives back to the kernel in batched system calls.
 *
 * ==== Conventions ====
 *
 *  - Addresses and sizes are uint64_t and in bytes unless a name says pages.
 *  - Actions return 0 on success or a negative errno.  Out-parameters are
 *    written only on success; on failure they are left untouched and the space
 *    is unchanged.
 *  - Bad input is reported, never acted on.  No function prints anything except
 *    vmap_dump() and a failing vmap_check().
 *
 * ==== The one rule that must hold: no reuse before flush ====
 *
 * A freed range is never handed out again before the flush that covers it has
 * *returned*.  Allocations that run while a flush is in progress get other
 * ranges, or wait for the purge (see vmap_alloc), never the ranges being
 * flushed.
 *
 * ==== Synchronization ====
 *
 * Every function is thread-safe: any number of threads may call any function
 * on the same space at once, except vmap_space_destroy(), which must be the
 * last call on a space.  Inside a space:
 *
 *   what                              protected by
 *   --------------------------------  ------------------------------------------
 *   free-space tree, free counters    free lock (a mutex), held for one carve
 *                                     or one bounded chunk of a purge
 *   busy map (start -> area)          one mutex per shard of the map (32 shards,
 *                                     chosen by a hash of the start address)
 *   lazy list                         lock-free: CAS push, take-all by exchange
 *   lazy page and area counters       atomic; add-and-return on free
 *   event counters (purges, ...)      atomic, relaxed
 *   purge state, flush vector         purge mutex
 *   the purge thread's state          its own mutex (the purger)
 *   warm pool (memory spaces)         the busy shard lock of each area's start
 *   node pools (flushed free areas)   one mutex per node (one node per CPU)
 *   vmap blocks of one CPU            that CPU's queue mutex (no lock per block)
 *   the space's record slabs          their own mutex, taken last
 *
 *   retired vmap blocks, for reuse    their own mutex
 *   quarantined ranges                quarantine mutex
 *   the live spaces (for fork)        one process-wide mutex
 *
 *   lock order: (process-wide space list) -> purge mutex -> purger mutex ->
 *               free lock -> node mutexes (ascending) -> busy shard locks
 *               (ascending) -> vmap block queue mutexes (ascending) ->
 *               retired-block mutex -> quarantine mutex -> record mutex.
 *
 *   - vmap_ram_alloc/vmap_ram_free take the calling CPU's queue mutex (and a
 *     free, one busy shard lock to find the block); CPUs do not contend.
 *
 *   - vmap_free() takes only one busy shard lock; pushing onto the lazy list
 *     and counting are lock-free, so a free never waits for another thread's
 *     purge or flush -- until the lazy pages pass twice lazy_max_pages.
 *     Without a purger, the free that takes them past lazy_max_pages runs the
 *     purge itself -- and so the flush callback -- on the caller's thread
 *     (and in a strict space every free does, waiting for a running purge
 *     first).  With a purger (see VMAP_SPACE_PURGER) that free only wakes the
 *     purge thread (taking its mutex for a moment), and only a free past
 *     twice the threshold purges on the caller's thread.  Either way, do not
 *     call vmap_free holding a lock your flush callback takes.
 *   - vmap_alloc() first looks in its CPU's node pool (that node's mutex,
 *     then one busy shard lock: no free lock); else it holds the free lock
 *     while it carves, and never during a flush; it waits for the purge
 *     mutex, and may run a purge and its flush on the caller's thread, only
 *     when nothing fits.
 *   - A purge holds the purge mutex throughout, calls the flush callback with
 *     no other lock held, and gives ranges back under the free lock in chunks
 *     of at most VMAP_PURGE_CHUNK ranges, so allocators wait at most one chunk.
 *   - vmap_check() takes every lock (so it waits for a running purge) and
 *     holds them all while it validates: it stops allocation and freeing for
 *     O(n log n) in the areas (about 0.7 s at 2 million areas).  It is a
 *     test oracle, not something to call on a busy production space.
 *   - vmap_dump() takes one lock at a time, each for a bounded chunk of at
 *     most 1024 records (microseconds, whatever the size of the space), and
 *     prints after dropping them; see vmap_dump for what that costs in
 *     consistency.
 *   - vmap_stats() takes the free lock and each busy shard lock in turn,
 *     never two at once; the fields are an exact, consistent snapshot only
 *     when no other call is running on the space (an area freed during the
 *     call may be counted both busy and lazy, say).
 *
 * ==== fork() ====
 *
 * A child forked while other threads are inside vmap can use every space it
 * inherited: the library registers pthread_atfork handlers that take every
 * lock of every space before the fork (so fork() waits for a running purge and
 * its flush, and for any call in progress to leave its critical section) and
 * release them in both processes after.  The child has its own copy of each
 * space -- its own free tree, busy and lazy areas, counters -- independent of
 * the parent's from then on:
 *   - range spaces: a purge in the child calls the flush callback in the child.
 *   - memory spaces: the reservation is private memory, copied on write, so
 *     each process releases only its own pages; a purge in the child never
 *     touches the parent's memory and vice versa.  vmap_vmap areas are shared
 *     mappings of the file: both processes see the file through them, and a
 *     purge in either drops only its own mapping.  Do not free in one process
 *     an area the other still uses through the file: that is the file's
 *     business, not vmap's.
 *   - the purge thread: the child has none.  A space with a purger starts
 *     its own in the child at the child's first free that needs it; until
 *     then, and in a child that never frees, nothing runs.  A purge the
 *     parent's thread was running finishes before the fork (the handlers wait
 *     for it), so the child's lazy list and free space are whole.
 * The flush callback must not call fork() (the handlers would wait for the
 * purge that is running it).  Only the thread that called fork() exists in the
 * child, as always: areas other threads of the parent were using are busy in
 * the child until it frees them.
 *
 * ==== What you may do to memory a memory space handed out ====
 *
 *   - read, write, MADV_DONTNEED / MADV_FREE / MADV_COLD / MADV_PAGEOUT /
 *     MADV_WILLNEED on it: contents only, vmap does not care.
 *   - mlock(), munlock(), mlockall() -- including MCL_ONFAULT: freed locked
 *     pages are released with MADV_DONTNEED_LOCKED (Linux >= 5.18), counted
 *     and released like any other.  The lock belongs to the address range,
 *     not to the pages: munlock() an area before vmap_vfree, or whoever gets
 *     the range next gets locked pages (VmLck in /proc/self/status).
 *     Without MCL_ONFAULT, mlockall(MCL_CURRENT) populates the whole
 *     reservation and MCL_FUTURE every range a purge remaps (file areas,
 *     mprotect guards): give such a process a small `length`.  A remap that
 *     RLIMIT_MEMLOCK refuses (the kernel counts the new locked mapping without
 *     the one it replaces) is done again unlocked, so plain reserved space
 *     never eats the process's lock budget.  Guard pages on a locked range
 *     fall back from guard markers to mprotect().
 *   - change its protection with vmap_vprotect(), which records the change so
 *     that the purge that releases the area makes it readable and writable
 *     again (and keeps it out of the warm pool).  Calling mprotect() yourself
 *     on an area is not supported: the protection would outlive vmap_vfree and
 *     reach the next owner; vmap_check() reports such a range once it is free.
 *     Pieces from vmap_ram_alloc/vmap_map_ram are the exception: their block is
 *     remapped as a whole before reuse, so mprotect() on a piece is undone then.
 *   - fork(): see above.
 *   - not: munmap/mremap/mmap(MAP_FIXED) over it, MADV_DONTFORK,
 *     MADV_WIPEONFORK, MADV_HUGEPAGE/NOHUGEPAGE, MADV_MERGEABLE, or
 *     MADV_GUARD_INSTALL: they change the mapping itself, and the change
 *     would outlive the area.  vmap_check() reports a hole in the reservation
 *     or a foreign mapping in a range that is not busy.
 *
 * ==== When the kernel says no ====
 *
 * A range the kernel refuses to release or to turn back into plain reserved
 * space (neither should happen to a mapping of ours, but a hostile process
 * can arrange it, and fault injection does) is *quarantined*: taken out of
 * use -- never handed out, never counted free, busy or lazy -- and retried
 * by later purges, oldest first, until the kernel accepts: after a purge where
 * a retry failed, VMAP_QUARANTINE_RETRY per purge; after one where all
 * succeeded, twice as many as then.  So a kernel that keeps refusing costs a
 * purge a bounded number of system calls, and one that relents gets n ranges
 * back within O(log n) purges.  One refused range never holds back the rest
 * of its batch.  vmap_stats() counts the quarantined areas and pages; vmap_dump()
 * lists them.
 */
#ifndef VMAP_H
#define VMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Exported from the shared library; everything else in it is hidden. */
#if defined(VMAP_BUILD) && defined(__GNUC__)
#define VMAP_API __attribute__((visibility("default")))
#else
#define VMAP_API
#endif

#define VMAP_VERSION_MAJOR 0
#define VMAP_VERSION_MINOR 1

/* A space.  Opaque; create with vmap_space_create(). */
typedef struct vmap_space vmap_space;

/* A half-open range [start, end) of a space, in bytes. */
struct vmap_range {
	uint64_t start;
	uint64_t end;
};

/*
 * The flush callback.  A purge calls it once with the ranges it is about to
 * give back to the free space: sorted by address, coalesced (no two ranges
 * touch or overlap), each page-aligned and inside the space.  n may be 0 when
 * a purge with VMAP_PURGE_FORCE_FLUSH found nothing lazy: flush anyway.
 *
 * The callback runs with the purge mutex held and no other lock of the space,
 * on the thread that purges: the caller's, or, in a space with a purger
 * (VMAP_SPACE_PURGER), mostly the purge thread "vmap-purge" -- every signal
 * blocked there, a stack of VMAP_PURGER_STACK bytes, and thread-local state
 * not the caller's.
 * It may take as long as it needs (allocations elsewhere in the space go on),
 * but it must not call vmap_alloc, vmap_xalloc, vmap_purge, vmap_unmap_aliases,
 * vmap_check or vmap_dump on the same space: they may wait for the purge that
 * is calling it.  vmap_free and vmap_stats are safe to call from it.
 * The ranges array is only valid during the call.
 *
 * If memory for the vector cannot be had, a purge calls the callback several
 * times with pieces of the sorted vector instead of once; none of its ranges
 * is reused before the last of those calls returns.  vmap_stats() counts every
 * call in `flushes`.
 */
typedef void (*vmap_flush_fn)(void *ctx, const struct vmap_range *ranges,
			      size_t n);

/*
 * The asynchronous flush (vmap_config.flush_async, range spaces only, instead
 * of flush): for invalidations that finish later -- a GPU's TLB invalidation
 * signalled by a fence, an IOMMU's completion interrupt, Linux's IOVA flush
 * queue.  A purge calls it as it would call flush (same ranges, same thread,
 * same rules) and it *starts* the invalidation and returns a token naming
 * it: a fence sequence number, say.  The batch then stays out of use -- not
 * reusable, not counted free (vmap_stats' inflight_*) -- until the caller
 * reports the invalidation done with vmap_flush_complete(space, token), from
 * any thread, in any order.  No range is handed out again before the
 * completion of the flush that covered its free.
 *
 * A completion may arrive before the call has returned the token -- from the
 * thread that watches the fences, or from the callback itself: the batch
 * then starts completed.  (While a call is under way every completion is
 * remembered, and a token no batch has is accepted; at any other time such
 * a token is -ENOENT.)
 * Several batches may be in flight at once, and may share a token (one fence
 * for several flushes): a completion completes every batch with that token.
 * Every call needs a completion, even one with n == 0 (VMAP_PURGE_FORCE_FLUSH)
 * or with only vmap_unmap_aliases' ranges of live blocks.  If memory for the
 * vector cannot be had, a purge calls it several times, and each call's
 * token completes that call's ranges.
 */
typedef uint64_t (*vmap_flush_async_fn)(void *ctx,
					const struct vmap_range *ranges,
					size_t n);

/*
 * vmap_config.flags.
 *
 * VMAP_SPACE_MEMORY: a *memory space*.  Instead of managing [base, base +
 *   length), the space reserves `length` bytes of this process's address space
 *   (0 = VMAP_MEMORY_DEFAULT_LENGTH) as one readable, writable mapping that
 *   commits no memory, and serves vmap_vmalloc()/vmap_vzalloc()/vmap_vfree()
 *   from it.  base must be 0, flush NULL (the library's own release is the
 *   flush), and page_size the system's page size (or left at 4096 where that
 *   is it).  A purge gives the pages of freed areas back to the kernel with
 *   MADV_DONTNEED: with one process_madvise() call per up to 1024 ranges where
 *   the kernel accepts it for the calling process (Linux >= 6.13; Linux >= 6.16
 *   shares one TLB flush per call), else one madvise() per coalesced range.
 *   Which path is in use, and how many system calls purges made, is in
 *   vmap_stats().  The reservation is unmapped by vmap_space_destroy().
 * VMAP_SPACE_STRICT: release at once: every free runs a synchronous purge.
 *   For chasing use-after-free bugs, and as the eager baseline.
 * VMAP_SPACE_GUARD (memory spaces only): every area is followed by a guard
 *   page, so an access one byte past its end faults (SIGSEGV).  The guard is
 *   part of the area (stats count it).  It is installed when the area is
 *   allocated (MADV_GUARD_INSTALL, Linux >= 6.13: no VMA split, no memory;
 *   mprotect elsewhere) and removed by the purge that releases the area, for
 *   a whole batch in one vectored call where the kernel takes it.
 * VMAP_SPACE_RELEASE_MADVISE (memory spaces only): release with one madvise()
 *   per range even where process_madvise() would take vectors: the older
 *   kernels' path, for comparison.
 *
 * The pool (memory spaces, unless VMAP_SPACE_NOPOOL or STRICT): a released
 *   page costs a page fault when it is next touched (~1.7 us here, far more
 *   than vmap's own work), so a freed area of any size is kept *warm*
 *   instead -- neither lazy nor released, its pages still mapped -- while the
 *   warm pages stay within pool_max_pages (the page budget; default
 *   VMAP_POOL_DEFAULT_BYTES worth).  A vmap_vmalloc of the same size takes it
 *   back as it is, with what this process last wrote there (vmap_vzalloc
 *   zeroes it): a program's steady-state reuse costs no page fault, no
 *   system call and no memset.  Only
 *   vmap_vmalloc/vmap_vzalloc use the pool (not vmap_alloc, whose constraints
 *   it cannot meet, and not vmap_vmap areas).  vmap_purge with
 *   VMAP_PURGE_SYNC (and vmap_unmap_aliases), and an allocation that finds no
 *   room, first move every warm area to the lazy list, so the purge releases
 *   it: the pool holds memory only until the next such purge -- or, with a
 *   purger, until it has gone unused for purge_delay_ms.
 *
 * The purger (VMAP_SPACE_PURGER; memory spaces have one unless
 *   VMAP_SPACE_NOPURGER or VMAP_SPACE_STRICT): a thread of the space's own,
 *   named "vmap-purge", started by the first free that needs it and joined
 *   by vmap_space_destroy, runs the purges that frees would otherwise run on
 *   the caller's thread:
 *   - a free that takes the lazy pages past lazy_max_pages wakes it and
 *     returns; no free runs a purge itself unless the lazy pages pass twice
 *     lazy_max_pages (back-pressure: it then waits for the running purge and
 *     purges, as without a purger; counted in vmap_stats' `backpressure`);
 *   - time bound: a freed area is released within purge_delay_ms (default
 *     VMAP_PURGE_DELAY_DEFAULT_MS) of its free even if no other call is ever
 *     made, and a warm area within purge_delay_ms of going unused (plus the
 *     time the purge itself takes, and scheduling delays);
 *   - with nothing lazy and nothing warm it sleeps without a timeout: an idle
 *     space costs no wakeups.
 *   In a range space with a purger, the flush callback runs on that thread
 *   (and, for the purges that stay on callers' threads -- an allocation that
 *   finds no room, vmap_purge, vmap_unmap_aliases, back-pressure -- on
 *   theirs).  Every signal is blocked on it.  Allocation misses, vmap_purge and
 *   vmap_unmap_aliases still purge on the calling thread, synchronously, as
 *   without a purger.  If the thread cannot be started (pthread_create fails),
 *   frees purge on their own threads as without a purger, and the next free
 *   tries again.  Without a purger, behaviour is exactly the kernel's: the
 *   free past the threshold purges, on its own thread.
 *
 * Node pools (every space, unless VMAP_SPACE_LOWEST_FIT), as Linux 6.9's
 *   vmap nodes: the space has a node per CPU (vmap_stats' `nodes`), and a
 *   purge puts each flushed area of up to 256 pages into a pool of its size
 *   on the node of the CPU that allocated it.  An allocation of that size on
 *   that CPU takes one back without the free lock, a search or a record
 *   allocation.  What each mode guarantees:
 *   - both: every constraint of the request (size, alignment, phase,
 *     boundary, window) holds; no two busy areas overlap; no range is handed
 *     out again before the flush that covered its free (pools hold only
 *     flushed areas); the counters are exact whenever no other call runs
 *     (pooled areas are free_pages, and cached_pages of them);
 *   - VMAP_SPACE_LOWEST_FIT only: each area is at the lowest (with
 *     VMAP_XALLOC_TOPDOWN, highest) address that fits at the time of the
 *     call.  With pools a bottom-up area may come from a pool instead, and
 *     a bottom-up request with an alignment above a page or a boundary
 *     takes the first fit of the tree's long blocks (the kernel's search):
 *     a fit, not the lowest.  Top-down requests never use the pools and
 *     always get the highest fit.
 *   A VMAP_XALLOC_NOPURGE request that finds no room still gets the pools'
 *   areas (they are flushed already): they go back to the tree, no purge
 *   and no flush, and it tries once more.
 *   Pools give their areas back to the free tree when unused: an area no
 *   allocation took during two purges goes back at the next, and an
 *   allocation that finds no room, vmap_purge(VMAP_PURGE_SYNC) and
 *   vmap_unmap_aliases return them all before they report -- so a nearly
 *   full space fails no more allocations than with the exact policy, and
 *   after a sync purge all free space is in the tree.  Pools are per CPU: a
 *   thread that moves to another CPU finds that CPU's pool, and what it
 *   left behind goes back to the tree in two purges.
 */
/*
 * VMAP_SPACE_EMPTY (range spaces): the space starts with no address space:
 *   [base, base + length) is only the range its spans may come from, and
 *   vmap_space_add adds them (vmem_add: a heap that gets address ranges over
 *   time, a driver adding a carve-out).  Outside its spans the range is not
 *   the space's: no area is ever there, vmap_walk skips it, vmap_dump says
 *   "absent", total_pages counts only the spans.  Declaring a large range
 *   costs nothing.
 */
#define VMAP_SPACE_MEMORY 0x1u
#define VMAP_SPACE_STRICT 0x2u
#define VMAP_SPACE_GUARD 0x4u
#define VMAP_SPACE_RELEASE_MADVISE 0x8u
#define VMAP_SPACE_NOPOOL 0x10u
#define VMAP_SPACE_PURGER 0x20u
#define VMAP_SPACE_NOPURGER 0x40u
#define VMAP_SPACE_LOWEST_FIT 0x80u
#define VMAP_SPACE_EMPTY 0x100u
#define VMAP_SPACE_FLAGS_KNOWN                                       \
	(VMAP_SPACE_MEMORY | VMAP_SPACE_STRICT | VMAP_SPACE_GUARD |     \
	 VMAP_SPACE_RELEASE_MADVISE | VMAP_SPACE_NOPOOL |               \
	 VMAP_SPACE_PURGER | VMAP_SPACE_NOPURGER | VMAP_SPACE_LOWEST_FIT | \
	 VMAP_SPACE_EMPTY)

/* The purge thread's stack, on which a range space's flush may run. */
#define VMAP_PURGER_STACK (256u << 10)

/* The purger's time bound: the default, and the largest accepted. */
#define VMAP_PURGE_DELAY_DEFAULT_MS 10
#define VMAP_PURGE_DELAY_MAX_MS 4294967295ull

/* The warm pool's page budget when pool_max_pages is 0: this many bytes. */
#define VMAP_POOL_DEFAULT_BYTES (32ull << 20)

#define VMAP_MEMORY_DEFAULT_LENGTH (64ull << 30)

/*
 * The configuration of a space.  Fill it with vmap_config_init(), then set the
 * fields you need.  `size` lets the structure grow: a caller built against an
 * older header passes a smaller size and gets defaults for the fields it does
 * not know; a caller built against a newer header may pass a larger one if
 * every byte past the fields this library knows is zero (else -E2BIG).
 */
struct vmap_config {
	size_t size;		 /* sizeof(struct vmap_config) */
	uint64_t base;		 /* first address; a multiple of page_size */
	uint64_t length;	 /* bytes; > 0, a multiple of page_size, and
				    base + length at most 2^64.  A space
				    that ends at 2^64 (length = 0 - base:
				    a heap of [4096, 2^64), say) holds all
				    but its last page, whose end a uint64_t
				    cannot hold: vmap_space_range reports
				    it one page short */
	uint64_t page_size;	 /* a power of two; default 4096 */
	uint64_t lazy_max_pages; /* lazy pages that trigger a purge; 0 = the
				    kernel's fls(online CPUs) * 32 MiB/page */
	vmap_flush_fn flush;	 /* may be NULL: purges then release silently */
	void *flush_ctx;	 /* passed to flush */
	unsigned flags;		 /* VMAP_SPACE_* */
	uint64_t pool_max_pages; /* memory spaces: warm pages kept for reuse
				    (see VMAP_SPACE_NOPOOL); 0 =
				    VMAP_POOL_DEFAULT_BYTES / page_size */
	uint64_t block_pages;	 /* pages per vmap block (vmap_ram_alloc): a
				    power of two from 128 to 65536; 0 = the
				    kernel's 1024.  block_pages * page_size
				    must not pass 2^63 (a block is aligned to
				    its size) */
	uint64_t purge_delay_ms; /* spaces with a purger: freed memory is
				    released within this; 0 = the default
				    (VMAP_PURGE_DELAY_DEFAULT_MS); at most
				    VMAP_PURGE_DELAY_MAX_MS */
	vmap_flush_async_fn flush_async; /* range spaces: instead of flush, an
				    asynchronous flush (see its type); not
				    with flush, MEMORY or STRICT */
};

/* Fill *cfg with defaults: size set, everything else 0 but page_size = 4096. */
VMAP_API void vmap_config_init(struct vmap_config *cfg);

/*
 * Create a space covering [cfg->base, cfg->base + cfg->length), all free.
 * Every value the config accepts works: lazy_max_pages up to UINT64_MAX
 * (which never purges on a free), pool_max_pages up to UINT64_MAX, page_size
 * up to 2^56 (with a block_pages that keeps a block within 2^63 bytes: up to
 * 2^53 with the default 1024).
 *
 * Errors:
 *   -EINVAL  cfg or out is NULL; cfg->size too small to hold the base fields,
 *            or ending inside a field; page_size not a power of two; base or
 *            length not a multiple of page_size; length 0; base + length
 *            past 2^64, or 2^64 with only the last page; unknown flags; block_pages not a power of two from
 *            128 to 65536, or block_pages (default 1024) * page_size above
 *            2^63; VMAP_SPACE_PURGER with VMAP_SPACE_NOPURGER or
 *            VMAP_SPACE_STRICT; purge_delay_ms above VMAP_PURGE_DELAY_MAX_MS,
 *            or not 0 in a space without a purger.
 *   -E2BIG   cfg->size is larger than this library's struct and the extra
 *            bytes are not all zero.
 *   -ENOMEM  out of memory for the space's own records.
 * Nothing is allocated on failure.
 */
VMAP_API int vmap_space_create(const struct vmap_config *cfg, vmap_space **out);

/*
 * Add the span [start, start + length) to a VMAP_SPACE_EMPTY space: free
 * address space from now on.  Spans are disjoint and may touch; no area, free
 * block or flush's give-back ever crosses from one into another (as vmem's
 * spans), so an allocation must fit inside one span, and vmap_alloc_at,
 * vmap_reserve and vmap_range_state of a range that is not inside one span
 * fail with -ERANGE.
 * Errors: -EINVAL (space NULL or not VMAP_SPACE_EMPTY; length 0; start or
 * length not a multiple of the page size; the span goes past 2^64); -ERANGE
 * (not inside the space's range); -EEXIST (it overlaps a span); -ENOMEM.
 * Nothing changes on failure.
 * Concurrency: thread-safe; takes the free lock for as long as one free
 * block's insertion.
 */
VMAP_API int vmap_space_add(vmap_space *space, uint64_t start,
		uint64_t length);

/*
 * Destroy a space: its purge thread, if one runs, finishes its purge and is
 * joined; then every busy and lazy area is dropped without a flush, and all
 * the library's memory for the space is freed.  NULL is a no-op.  Must not run
 * concurrently with any other call on the space, nor from its flush callback.
 */
VMAP_API void vmap_space_destroy(vmap_space *space);

/*
 * Allocate an area of `size` bytes (rounded up to whole pages), aligned to
 * `align` (a power of two; 0 or anything below the page size means the page
 * size), lying wholly inside [vstart, vend) intersected with the space.  Pass
 * vstart = 0 and vend = UINT64_MAX for "anywhere in the space".
 *
 * Placement: the lowest address that fits, found in O(log n) free blocks.
 * One exception keeps that bound: when the search meets more than 16 free
 * blocks that are long enough but cannot hold the area (misaligned for it),
 * it settles, as the kernel always does, for the lowest block long enough to
 * hold the area whatever its alignment (size + 2 * align + nocross), and
 * only if there is none goes on block by block.
 *
 * When nothing fits, the call runs a synchronous purge (waiting for any purge
 * already running, so ranges it is flushing come back) and tries once more --
 * if anything is lazy, and if [vstart, vend), were it all free, could hold the
 * area with its alignment, phase and boundary: a request no space could meet
 * fails at once, without a purge or a flush.  That purge runs the flush
 * callback on the calling thread.
 *
 * Errors:
 *   -EINVAL  space or addr is NULL; size 0 or so large that rounding it up
 *            overflows; align not a power of two; vstart >= vend; or
 *            [vstart, vend) holds no whole page of the space.
 *   -ENOSPC  no free range satisfies the constraints, even after the purge
 *            (this includes sizes larger than the space, and alignments no
 *            address of the space meets).
 *   -ENOMEM  out of memory for the area's record.
 * Concurrency: thread-safe; holds the free lock only while carving.
 */
VMAP_API int vmap_alloc(vmap_space *space, uint64_t size, uint64_t align,
	       uint64_t vstart, uint64_t vend, uint64_t *addr);

/*
 * Memory spaces: the vmalloc family.
 *
 * vmap_vmalloc: `size` bytes (rounded up to pages), page-aligned, readable and
 * writable, from a memory space.  Returns NULL and sets errno on failure:
 *   EINVAL  space is NULL or not a memory space; size is 0 or overflows.
 *   ENOSPC  the reservation has no room, even after a purge.
 *   ENOMEM  out of memory for the area's record.
 * Contents, as the kernel's vmalloc and as malloc: vmap_vmalloc's memory is
 * unspecified -- it reads as zero unless it comes from the warm pool, and
 * then it holds whatever this process last wrote there (never another
 * process's data: every page comes from the kernel zeroed); vmap_vzalloc's
 * reads as zero, at the cost of a memset only for a warm area.
 *
 * vmap_vfree: free an area of a memory space, lazily: its pages stay mapped
 * and keep their contents until the purge that releases them (see the
 * security note in the README); then they read as zero, and only then can the
 * range be handed out again.  NULL is a no-op returning 0.
 *   -EINVAL  space is NULL or not a memory space.
 *   -ENOENT  ptr is not the start of a busy area (never returned, inside an
 *            area, or already freed).
 * Concurrency: as vmap_alloc and vmap_free.
 */
VMAP_API void *vmap_vmalloc(vmap_space *space, size_t size);
VMAP_API void *vmap_vzalloc(vmap_space *space, size_t size);
VMAP_API int vmap_vfree(vmap_space *space, const void *ptr);

/*
 * vmap_vmap: map pages of a file -- a memfd, or any file that can be mapped
 * shared -- contiguously into a memory space: page i of the area shows page
 * pgoff[i] of fd (offsets are in pages of the space's page size), and writes
 * reach the file.  prot is PROT_READ, PROT_WRITE or both (from <sys/mman.h>).
 * Each run of consecutive offsets costs one mmap and one mapping (VMA) of the
 * process, so scattered pages cost one each: mind vm.max_map_count (65530 by
 * default).  Touching a page beyond the file's end raises SIGBUS.
 * Returns the area's address, or NULL with errno:
 *   EINVAL  space NULL or not a memory space; pgoff NULL; n 0 or too large;
 *           an offset too large; fd < 0; prot 0 or with other bits.
 *   ENOSPC  no room, even after a purge.
 *   From mmap(2) of the fd, passed on:
 *   EBADF   fd is not open.
 *   EACCES  fd is not open for reading, or prot asks for writing and it is
 *           not open for writing.
 *   ENODEV  the file cannot be mapped (a socket, a pipe, a directory, most
 *           sysfs and procfs files).
 *   EPERM   prot asks for writing and the file is sealed against it
 *           (F_SEAL_WRITE, F_SEAL_FUTURE_WRITE), or mapping is not permitted.
 *   EINVAL  the file refuses this mapping (a hugetlbfs file, whose mappings
 *           must be aligned to its huge page size).
 *   EAGAIN  the file is locked, or (under mlockall(MCL_FUTURE)) the mapping
 *           would pass RLIMIT_MEMLOCK.
 *   ETXTBSY, EOVERFLOW, and whatever else the file's own mmap handler says.
 *   ENOMEM  out of memory (a hugetlb file with no huge pages reserved, say),
 *           or the kernel refused another mapping even after a sync purge
 *           (which can turn waiting file mappings back into plain space) and
 *           a second try.
 * On failure nothing changed: every page of the range tried is plain reserved
 * space again before the call returns -- the kernel unmaps the old pages of a
 * MAP_FIXED mapping before the file's handler can refuse, so the whole range
 * is remapped, not only what had been mapped.  Should the kernel refuse even
 * that, the range is quarantined (see "When the kernel says no"): never
 * handed out until a purge has made it plain space again.
 *
 * vmap_vunmap: free a vmap_vmap area, lazily, like vmap_vfree (which also
 * takes it).  Until the purge, the file's pages stay mapped there; the purge
 * drops them (the file keeps its data) and makes the range plain reserved
 * space again.  Errors as vmap_vfree.
 */
VMAP_API void *vmap_vmap(vmap_space *space, int fd, const uint64_t *pgoff,
			 size_t n, int prot);
VMAP_API int vmap_vunmap(vmap_space *space, const void *ptr);

/*
 * vmap_vprotect: set the protection of the whole area at ptr (from
 * vmap_vmalloc, vmap_vzalloc or vmap_vmap; its guard page is left alone) to
 * prot, any combination of PROT_READ, PROT_WRITE and PROT_EXEC, or PROT_NONE.
 * The change is recorded with the area: the purge that releases it after
 * vmap_vfree makes the range readable and writable again before anyone else
 * can get it, and the area skips the warm pool.  (An area protected with
 * mprotect() directly keeps its protection after the free; do not.)
 * Errors:
 *   -EINVAL  space NULL or not a memory space; prot has other bits.
 *   -ENOENT  ptr is not the start of a busy area (or is a vmap_ram_alloc or
 *            vmap_map_ram piece: those may be mprotect()ed directly).
 *   -EACCES  PROT_WRITE on a vmap_vmap area of a file not open for writing.
 *   -ENOMEM  the kernel could not split the mapping (vm.max_map_count).
 * On failure the area is still noted as protected -- a failed mprotect may
 * have changed part of the range -- so its purge restores it all the same
 * (and counts it in protect_restores).
 * Concurrency: thread-safe; holds the area's busy-shard lock across the
 * mprotect(), so it cannot race with a free of the same area.
 */
VMAP_API int vmap_vprotect(vmap_space *space, const void *ptr, int prot);

/*
 * vmap_vrealloc: the kernel's vrealloc (Linux 6.12) -- resize the area at
 * ptr to size bytes, keeping its contents up to the smaller size:
 *   - in place when it can: a shrink always (the cut-off pages go lazy, like
 *     a free, and the guard page moves down); a grow when the range after
 *     the area is free in the tree (the guard page moves up);
 *   - else moved: a new area (as vmap_vmalloc), the contents moved into it
 *     -- from 16 pages on by moving the pages themselves (mremap), not
 *     copying bytes -- and the old area freed.  Returns the new pointer.
 * Bytes past the old size are unspecified, as vmap_vmalloc's.
 * ptr NULL: vmap_vmalloc(space, size).  size 0: vmap_vfree(space, ptr), and
 * NULL (errno untouched unless the free failed).
 * Errors (NULL, errno set; the area unchanged): EINVAL (space NULL or not a
 * memory space; size overflowing; a vmap_vmap area, a reservation, or an
 * area vmap_vprotect changed -- also at its own size); ENOENT (ptr not the
 * start of a busy area, or a vmap_ram piece);
 * ENOSPC, ENOMEM (no room for the moved area).  A shrink that cannot get
 * memory for its bookkeeping keeps the area whole and returns ptr.
 * Concurrency: thread-safe; ptr is the caller's (no other thread may use
 * or free it during the call), as for realloc.
 */
VMAP_API void *vmap_vrealloc(vmap_space *space, void *ptr, size_t size);

/*
 * Is ptr inside the space's range (vmap_space_range)?  For a program that
 * sends some of its allocations to a memory space and must tell, at free,
 * which are whose.  O(1), takes no lock; false for a NULL space.
 */
VMAP_API bool vmap_owns(vmap_space *space, const void *ptr);

/*
 * The usable size of the busy area that starts at ptr (the guard page not
 * counted), in *size: the bytes asked for, rounded up to pages.  Any space
 * (ptr is then the area's address).  Errors: -EINVAL (a NULL argument);
 * -ENOENT (no busy area starts at ptr; a vmap_ram piece).  A reservation
 * has a size too.  Concurrency: thread-safe; one busy-shard lock.
 */
VMAP_API int vmap_vsize(vmap_space *space, const void *ptr, size_t *size);

/*
 * The space's range: [*base, *base + *length) -- for a memory space, the
 * reservation's bounds.  Errors: -EINVAL (a NULL argument).  Lock-free.
 */
VMAP_API int vmap_space_range(vmap_space *space, uint64_t *base,
		uint64_t *length);

/*
 * A page pool for vmap_vmap: a new memfd of `pages` system pages, zero-filled,
 * close-on-exec, in *fd.  The caller closes it.  Errors: -EINVAL (fd NULL,
 * pages 0 or too large), or memfd_create's and ftruncate's (-EMFILE, -ENOMEM,
 * ...).
 */
VMAP_API int vmap_memfd_create(const char *name, uint64_t pages, int *fd);

/* vmap_xalloc flags */
#define VMAP_XALLOC_TOPDOWN 0x1u /* the highest fitting address, not lowest */
#define VMAP_XALLOC_NOPURGE 0x2u /* when nothing fits, fail at once */
#define VMAP_XALLOC_FLAGS_KNOWN (VMAP_XALLOC_TOPDOWN | VMAP_XALLOC_NOPURGE)

/*
 * vmap_alloc with the constraints of Bonwick and Adams' vmem_xalloc:
 *   phase    the area starts at an address a with (a - phase) % align == 0;
 *            a multiple of the page size and less than the (effective) align.
 *   nocross  0, or a power of two: the area must not cross a multiple of it
 *            (a DMA segment boundary, say).  size must not exceed it.
 *   flags    VMAP_XALLOC_TOPDOWN: place at the highest fitting address, as
 *            IOVA allocators do.  VMAP_XALLOC_NOPURGE: when nothing fits,
 *            fail with -ENOSPC instead of purging (after sending the node
 *            pools' flushed areas back to the tree, which flushes nothing;
 *            skipped if a purge is running): for a first try in a preferred
 *            window (a 32-bit IOVA range, say) before a wider one, so a miss
 *            costs no flush.
 * Errors: those of vmap_alloc, plus -EINVAL for a bad phase, a nocross that is
 * not a power of two or is smaller than the page size or than size, or an
 * unknown flag.
 */
VMAP_API int vmap_xalloc(vmap_space *space, uint64_t size, uint64_t align,
		uint64_t phase, uint64_t nocross, uint64_t vstart,
		uint64_t vend, unsigned flags, uint64_t *addr);

/*
 * Free the area that starts at addr.  The area's range is not reusable yet: it
 * goes onto the lazy list and is released by a later purge.  If this free takes
 * the lazy pages past lazy_max_pages, the call tries a purge (VMAP_PURGE_TRY):
 * it purges unless another purge is already running -- or, in a space with a
 * purger, wakes the purge thread and returns.  Past twice lazy_max_pages
 * (other threads kept freeing while a purge ran), it waits for the running
 * purge and purges (VMAP_PURGE_SYNC), so the lazy pages stay below
 * 2 * lazy_max_pages plus what frees add while one purge runs.
 *
 * Errors:
 *   -EINVAL  space is NULL.
 *   -ENOENT  addr is not the start of a busy area: never allocated, inside an
 *            area, already freed (double free), or outside the space.
 *   -EPERM   the area is a reservation (vmap_reserve): vmap_unreserve frees
 *            it.  (The same for vmap_vfree and vmap_free_sized.)
 * Concurrency: thread-safe and lock-free with respect to the lazy list; takes
 * one busy-shard lock for the lookup.  It does not wait for a running purge,
 * except in a strict space; see the synchronization notes at the top.
 */
VMAP_API int vmap_free(vmap_space *space, uint64_t addr);

/*
 * vmap_free, told the area's size -- the `size` its allocation asked for (a
 * vmem_free(addr, size)-style call, for callers that know it anyway).  The
 * library still validates it: a size that does not round up to the area's
 * pages (the guard page not counted) is -EINVAL, and nothing changes.  It
 * buys the caller a check of its own bookkeeping, not speed: the record must
 * be found from addr either way.
 * Errors: those of vmap_free, plus -EINVAL for a size that is 0, whose
 * rounding overflows, or that is not the area's.
 * Concurrency: as vmap_free.
 */
#define VMAP_HAVE_FREE_SIZED 1
VMAP_API int vmap_free_sized(vmap_space *space, uint64_t addr, uint64_t size);

/*
 * The largest run of free pages now, and after a sync purge, in pages: what
 * a driver asks before a big allocation ("will it fit, and must I purge?").
 * Free now: free blocks and node pools' areas, touching ones joined (so more
 * than vmap_stats' largest_free_pages, which is the tree's largest block,
 * when pooled areas touch it).  After a purge: also every lazy area and
 * memory spaces' warm areas -- not a batch whose asynchronous flush is in
 * flight, nor quarantined areas.  A snapshot gathered as vmap_walk does, at
 * its cost: a look at every busy area.
 * Errors: -EINVAL (a NULL argument), -ENOMEM.  Concurrency: as vmap_walk.
 */
VMAP_API int vmap_largest_free(vmap_space *space, uint64_t *now,
		uint64_t *after_purge);

/*
 * Report the asynchronous flush named `token` done (see vmap_flush_async_fn):
 * every batch in flight with that token becomes free space -- at once, or,
 * if a purge is running (this thread's flush callback included), when that
 * purge ends.  Never waits for a purge.
 * Errors: -EINVAL (space NULL, or a space without flush_async); -ENOENT (no
 * batch in flight has this token: never returned, or completed already);
 * -ENOMEM (while a flush_async call was under way, no memory to remember
 * the completion: nothing changed, complete again).
 * Concurrency: thread-safe, from any thread, the flush callback included.
 * An allocation that finds no room gives back completed batches and, if
 * batches are still in flight, waits for a completion and tries again
 * (unless VMAP_XALLOC_NOPURGE): so the thread that completes must never be
 * one that waits for an allocation in the same space.
 */
VMAP_API int vmap_flush_complete(vmap_space *space, uint64_t token);

/*
 * Areas at fixed addresses, reservations, and what a range holds.
 *
 * vmap_alloc_at: allocate exactly [addr, addr + size) as a busy area, freed
 * with vmap_free like any other (Vulkan's capture/replay addresses,
 * util_vma_heap_alloc_addr, vmem_xalloc_addr).  In a memory space with
 * VMAP_SPACE_GUARD the guard page follows it, at addr + size.  If the range
 * is not all free, the node pools' areas (flushed already) go back to the free
 * tree -- no purge, no flush -- and then:
 *   - a page of it busy (an area, a reservation, a vmap block): -EBUSY;
 *   - otherwise some page is lazy (freed, not yet flushed; or, in a memory
 *     space, warm or quarantined): -EAGAIN, and nothing else happens -- the
 *     caller decides whether the range is worth a purge.  With VMAP_AT_PURGE
 *     the call purges instead (synchronously, as vmap_purge(VMAP_PURGE_SYNC))
 *     and takes the range; if another thread takes part of it first, -EBUSY.
 *   No purge ever runs for a busy range, or without VMAP_AT_PURGE.
 * vmap_reserve: the same, but the area is a *reservation*: a range that is
 *   never handed out (an MSI window in an IOVA space, a carve-out), with no
 *   guard page.  vmap_free (and vmap_vfree, vmap_free_sized) refuse it with
 *   -EPERM; vmap_unreserve gives it back -- in a range space straight to the
 *   free tree, with no flush (nothing was ever mapped there); in a memory
 *   space like a freed area (its pages may have been written: the purge
 *   releases them).  Reservations count as busy in vmap_stats and vmap_dump.
 * vmap_range_state: what [start, start + size) holds now, in *state:
 *   VMAP_RANGE_FREE (every page free: vmap_alloc_at would take it now),
 *   VMAP_RANGE_LAZY (no page busy, some lazy: after a purge, free) or
 *   VMAP_RANGE_BUSY (some page busy).  A snapshot: other threads may change
 *   the range as soon as the call returns.
 *
 * Errors (all three, and vmap_unreserve for space NULL):
 *   -EINVAL  space or state NULL; size 0; addr (start) or size not a multiple
 *            of the page size; the range goes past 2^64; an unknown flag.
 *   -ERANGE  the range is not inside the space (for vmap_alloc_at in a guarded
 *            memory space: with its guard page).
 *   -EBUSY   (alloc_at, reserve) a page is busy, as above.
 *   -EAGAIN  (alloc_at, reserve) no page busy, some lazy, no VMAP_AT_PURGE.
 *   -ENOMEM  no memory for a record, or for the query's list of the lazy
 *            areas in the range.
 * vmap_unreserve: -ENOENT if no busy area starts at addr; -EPERM if the area
 * there is not a reservation.
 * Cost: a free range costs what an allocation costs.  A range that is not
 * all free (and every vmap_range_state) costs a look at every lazy, pooled,
 * warm and quarantined area of the space -- O(those areas) -- under the
 * purge mutex, and a walk of the range's free blocks under the free lock.
 * Concurrency: thread-safe.  They wait for a running purge (so they must not
 * be called from the flush callback); other allocations and frees go on.
 */
#define VMAP_AT_PURGE 0x1u /* a lazy range: purge, then take it */
#define VMAP_RANGE_FREE 0
#define VMAP_RANGE_LAZY 1
#define VMAP_RANGE_BUSY 2
#define VMAP_HAVE_ALLOC_AT 1
VMAP_API int vmap_alloc_at(vmap_space *space, uint64_t addr, uint64_t size,
		unsigned flags);
VMAP_API int vmap_reserve(vmap_space *space, uint64_t addr, uint64_t size,
		unsigned flags);
VMAP_API int vmap_unreserve(vmap_space *space, uint64_t addr);
VMAP_API int vmap_range_state(vmap_space *space, uint64_t start,
		uint64_t size, int *state);

/*
 * Walk the space in address order: fn is called once for each range that
 * overlaps [from, to), from the one holding `from` on, whose state is in
 * `what` (VMAP_WALK_FREE, _LAZY, _BUSY, or'ed; VMAP_WALK_ALL).  A range is
 * reported whole: a busy area (kind VMAP_KIND_AREA), a reservation
 * (_RESERVED), a vmap block (_BLOCK), a free block of the tree (_FREE), a
 * node pool's free area (_CACHED), a memory space's warm area (_WARM,
 * state LAZY), a quarantined area (_QUARANTINED, LAZY), a batch's area whose
 * asynchronous flush is in flight (_IN_FLIGHT, LAZY) -- except lazy areas
 * waiting for a purge: their lists belong to the purge, so what no structure
 * holds is reported as maximal runs of kind VMAP_KIND_LAZY, clipped to
 * [from, to).  A nonzero return from fn stops the walk, and vmap_walk returns
 * it (return a positive value to tell it from the walk's own errors).
 *
 * The ranges are gathered first, a chunk at a time (1024 records or hash
 * buckets per hold of one lock: no thread waits longer than that for the
 * walk), then sorted, and fn runs with no lock held: it may call anything,
 * vmap_free of the area it is shown included.  Not one instant's picture:
 * an area allocated or freed while the walk gathers may be missed, or seen
 * in both states, as in vmap_dump.  Costs a look at every busy area of the
 * space (the busy map is hashed, not ordered) and memory for the ranges that
 * overlap [from, to).
 * Errors: -EINVAL (space or fn NULL, from >= to, what 0 or with unknown
 * bits), -ENOMEM, or fn's nonzero return.  A window outside the space walks
 * nothing and returns 0.
 * Concurrency: thread-safe; never waits for a purge.
 */
struct vmap_walk_range {
	uint64_t start, end;
	int state;     /* VMAP_RANGE_FREE, _LAZY or _BUSY */
	unsigned kind; /* VMAP_KIND_* */
};
#define VMAP_KIND_FREE 0
#define VMAP_KIND_CACHED 1
#define VMAP_KIND_AREA 2
#define VMAP_KIND_RESERVED 3
#define VMAP_KIND_BLOCK 4
#define VMAP_KIND_LAZY 5
#define VMAP_KIND_WARM 6
#define VMAP_KIND_QUARANTINED 7
#define VMAP_KIND_IN_FLIGHT 8
#define VMAP_WALK_FREE (1u << VMAP_RANGE_FREE)
#define VMAP_WALK_LAZY (1u << VMAP_RANGE_LAZY)
#define VMAP_WALK_BUSY (1u << VMAP_RANGE_BUSY)
#define VMAP_WALK_ALL (VMAP_WALK_FREE | VMAP_WALK_LAZY | VMAP_WALK_BUSY)
typedef int (*vmap_walk_fn)(void *arg, const struct vmap_walk_range *r);
VMAP_API int vmap_walk(vmap_space *space, uint64_t from, uint64_t to,
		unsigned what, vmap_walk_fn fn, void *arg);

/* vmap_purge modes: one of TRY or SYNC, optionally or'ed with FORCE_FLUSH. */
#define VMAP_PURGE_TRY 0x0u	    /* skip if another purge is running */
#define VMAP_PURGE_SYNC 0x1u	    /* wait for a running purge, then purge */
#define VMAP_PURGE_FORCE_FLUSH 0x2u /* call flush even if nothing is lazy;
				       implies SYNC */

/* At most this many ranges go back to the free tree per hold of the free lock. */
#define VMAP_PURGE_CHUNK 64

/*
 * Purge the lazy list: take it whole, sort it, coalesce touching areas, call
 * the flush callback once with the result, and give the ranges back to the
 * free space.  With nothing lazy and no FORCE_FLUSH, no flush is called.
 *
 * Errors:
 *   -EINVAL  space is NULL or how has unknown bits.
 *   -EBUSY   VMAP_PURGE_TRY found another purge running and did nothing.
 */
VMAP_API int vmap_purge(vmap_space *space, unsigned how);

/*
 * The kernel's vm_unmap_aliases: free fragmented vmap blocks, then release
 * everything lazy *and* the dirty ranges of the vmap blocks that stay, in one
 * flush -- called even if there is nothing to release -- and forget those
 * dirty ranges, which need no second flush.  In a memory space, where the
 * flush releases pages, a block's dirty range with a live piece inside is
 * left for the block's own purge, so the piece keeps its data.  Every freed
 * piece of a memory space's blocks, though, is turned back into plain reserved
 * space (zero, no file) before the call returns, whatever lives next to it:
 * after vmap_unmap_aliases, no freed piece shows a file page.
 * Errors: -EINVAL if space is NULL; -ENOMEM if the kernel refused to remap a
 * freed piece (it is tried again by the next call, and the block's purge).
 */
VMAP_API int vmap_unmap_aliases(vmap_space *space);

/*
 * The vm_map_ram family: small areas from per-CPU vmap blocks.
 *
 * A request of up to VMAP_RAM_MAX_PAGES pages (the kernel's VMAP_MAX_ALLOC) is
 * rounded up to a power of two of pages and carved, by a bump, from a block
 * of the calling CPU (sched_getcpu()); a block is one area of block_pages
 * pages (see vmap_config), aligned to its size, made when the CPU's blocks
 * are full.  No search, no tree, no shared lock: one per-CPU queue lock and
 * one block lock.  Larger requests go to the tree, as vmap_alloc.
 *
 * Freeing a piece releases nothing and makes nothing reusable: it widens the
 * block's dirty range.  When all of a block is dirty, the block goes to the
 * lazy list as one area.  A block with nothing live but pages never handed
 * out is *fragmented*: sync purges (and allocations that find no room, and
 * vmap_unmap_aliases) free those first.
 *
 * vmap_ram_alloc: size bytes (rounded up to pages); the address in *addr.
 *   -EINVAL  space or addr NULL, size 0 or overflowing.
 *   -ENOSPC  no room for a new block (or, above the limit, for the area).
 *   -ENOMEM  out of memory for the block's records.
 * vmap_ram_free: free what vmap_ram_alloc gave, with the same size.
 *   -EINVAL  space NULL, size 0, or a size of another number of pages than
 *            the one allocated there (the kernel takes the count back; a
 *            wrong one is an error, not corruption -- 4 pages for a 3-page
 *            piece too, although both take a 4-page slot).
 *   -ENOENT  addr is not a live piece: not from a block, or already freed.
 * Both spaces.  Concurrency: thread-safe; different CPUs do not contend.
 */
#define VMAP_RAM_MAX_PAGES 64
VMAP_API int vmap_ram_alloc(vmap_space *space, uint64_t size, uint64_t *addr);
VMAP_API int vmap_ram_free(vmap_space *space, uint64_t addr, uint64_t size);

/*
 * Memory spaces: map n pages of fd (page offsets pgoff[0..n), read and write)
 * through a vmap block -- or, for n > VMAP_RAM_MAX_PAGES, as vmap_vmap does --
 * and unmap them with the same n.  A piece's pages stay mapped until its
 * block is purged (or vmap_unmap_aliases drops them).  Errors as
 * vmap_ram_alloc and vmap_vmap (NULL and errno for vmap_map_ram); on failure
 * the piece is plain reserved space again and returned, or, if another piece
 * was taken after it, left dirty.  vmap_unmap_ram: -EINVAL also for an n
 * whose size in bytes overflows.
 */
VMAP_API void *vmap_map_ram(vmap_space *space, int fd, const uint64_t *pgoff,
			    size_t n);
VMAP_API int vmap_unmap_ram(vmap_space *space, const void *ptr, size_t n);

/*
 * Counters of a space.  Pages are the space's pages.  `size` must be set by
 * the caller (to sizeof(struct vmap_stats)); fields past it are not written.
 */
struct vmap_stats {
	size_t size;		      /* set by the caller */
	uint64_t total_pages;	      /* pages in the space */
	uint64_t busy_areas;	      /* allocated, not freed */
	uint64_t busy_pages;
	uint64_t free_pages;	      /* in the free tree and the node pools
					 (cached_pages of them) */
	uint64_t free_blocks;	      /* nodes of the free tree */
	uint64_t largest_free_pages;  /* largest free block (what a purge
					 would add: vmap_largest_free) */
	uint64_t lazy_areas;	      /* freed, waiting for or in a purge */
	uint64_t lazy_pages;
	uint64_t lazy_max_pages;      /* the threshold in force */
	uint64_t allocs;	      /* successful allocations, ever */
	uint64_t frees;		      /* successful frees, ever */
	uint64_t alloc_failures;      /* allocations that failed, but for bad
					 input (-ENOSPC, -ENOMEM, mmap's) */
	uint64_t purge_retries;	      /* allocations that purged and retried */
	uint64_t purges;	      /* purges that found something lazy or were
					 forced (not skipped TRYs, not no-ops) */
	uint64_t flushes;	      /* flush callback calls */
	uint64_t ranges_flushed;      /* ranges passed to those calls */
	uint64_t areas_purged;	      /* lazy areas released by purges */
	uint64_t purge_max_areas;     /* largest batch one purge took */
	uint64_t purge_max_hold_ns;   /* longest free-lock hold by a purge */
	uint64_t purge_last_ns;	      /* wall time of the last purge */
	/* Memory spaces (0 in range spaces): */
	uint64_t release_path;	      /* VMAP_RELEASE_* */
	uint64_t release_syscalls;    /* system calls purges made to release */
	uint64_t release_errors;      /* areas the kernel refused to release or
					 restore, ever: each was quarantined */
	uint64_t guard_syscalls;      /* guard page installs and removals */
	uint64_t map_syscalls;	      /* mmaps made by vmap_vmap */
	uint64_t pool_areas;	      /* warm areas kept for reuse */
	uint64_t pool_pages;
	uint64_t pool_max_pages;      /* 0: no pool */
	uint64_t pool_hits;	      /* vmallocs served from the pool */
	uint64_t block_pages;	      /* pages per vmap block */
	uint64_t blocks;	      /* live vmap blocks (busy areas) */
	uint64_t block_free_pages;    /* in them: never handed out */
	uint64_t block_dirty_pages;   /* in them: handed out and freed */
	uint64_t blocks_created;      /* ever */
	uint64_t blocks_freed;	      /* ever: all dirty, or fragmented */
	/* Memory spaces (0 in range spaces): */
	uint64_t quarantined_areas;   /* refused by the kernel: out of use until
					 a purge's retry succeeds */
	uint64_t quarantined_pages;
	uint64_t quarantine_retries;  /* retries purges made, ever */
	uint64_t protect_restores;    /* areas a purge made read-write again
					 after vmap_vprotect, ever */
	/* The reclaim policy: decisions to purge that found something to do,
	 * by what made them (one each, though a strict space's decision may
	 * run several purges): */
	uint64_t purges_threshold;    /* a free passed lazy_max_pages */
	uint64_t purges_miss;	      /* an allocation found no room, or the
					 kernel refused a mapping */
	uint64_t purges_called;	      /* vmap_purge */
	uint64_t purges_timer;	      /* the purger's time bound */
	uint64_t purges_strict;	      /* a free in a strict space */
	uint64_t purges_aliases;      /* vmap_unmap_aliases */
	uint64_t backpressure;	      /* frees that purged on their own thread
					 although the space has a purger: the
					 lazy pages passed twice the threshold */
	uint64_t lazy_max_wait_ns;    /* the longest a freed area waited for its
					 release (measured from the first free
					 onto an empty lazy list, so an upper
					 bound), ever */
	uint64_t purger_wakeups;      /* times the purge thread woke */
	uint64_t purge_delay_ms;      /* the time bound in force; 0: no purger */
	/* The node pools (see VMAP_SPACE_LOWEST_FIT): */
	uint64_t cached_areas;	      /* flushed free areas pooled by size */
	uint64_t cached_pages;	      /* (included in free_pages) */
	uint64_t cached_hits;	      /* allocations served from a pool, ever */
	uint64_t cached_decayed;      /* pooled areas sent back to the free
					 tree unused, ever */
	uint64_t nodes;		      /* per-CPU nodes */
	uint64_t record_bytes;	      /* the library's own record memory (its
					 slabs; 0 in sanitizer builds) */
	/* Asynchronous flushes (vmap_config.flush_async; 0 otherwise): */
	uint64_t inflight_flushes;    /* flush_async calls not yet completed */
	uint64_t inflight_areas;      /* areas flushed and not yet free: in
					 flight, or completed and about to be
					 given back */
	uint64_t inflight_pages;
	uint64_t completions;	      /* vmap_flush_complete calls that
					 completed something, ever */
};

/* Quarantined areas a purge retries after a purge where a retry failed. */
#define VMAP_QUARANTINE_RETRY 16

/* vmap_stats.release_path */
#define VMAP_RELEASE_NONE 0		/* a range space: the flush callback */
#define VMAP_RELEASE_PROCESS_MADVISE 1	/* vectored, up to 1024 per call */
#define VMAP_RELEASE_MADVISE 2		/* one madvise per coalesced range */

/*
 * Fill *st.  st->size must be set; a smaller size gets the leading fields
 * (whole fields only: a size that ends inside a field excludes that field).
 * Errors: -EINVAL if space or st is NULL, or st->size is smaller than
 * offsetof(struct vmap_stats, busy_areas).
 */
VMAP_API int vmap_stats(vmap_space *space, struct vmap_stats *st);

/*
 * Print the space like /proc/vmallocinfo, one line per busy area, vmap
 * block, warm (pooled) area, quarantined area and free block, and one per run
 * of lazy pages (what is none of those: freed, waiting for or in a purge), by
 * address; then one line per CPU that has vmap blocks (blocks, pages free,
 * pages dirty):
 *   0x0000000000100000-0x0000000000103000        12288 busy
 * The listing is gathered a chunk at a time (at most 1024 records per hold of
 * any one lock), so a dump of millions of areas never stops other threads for
 * more than microseconds at once.  The price: with other calls running on the
 * space, an area that changes state during the dump may be listed in its old
 * state or its new one, and the lines may then overlap or leave a range out
 * (shown as lazy).  With no other call running, the listing is exact.
 * Errors: -EINVAL if space or f is NULL; -ENOMEM if the listing cannot be
 * allocated; -EIO if writing to f fails.
 */
VMAP_API int vmap_dump(vmap_space *space, FILE *f);

/*
 * Validate every invariant of the space: the free tree's order, balance and
 * augmentation; free blocks never touching (always merged); busy, lazy, warm,
 * quarantined and free ranges inside the space, page-aligned and never
 * overlapping; together covering the whole space; and every counter equal to
 * what the structures hold.  In a memory space, also the reservation itself,
 * from /proc/self/maps: no hole in it (but in a quarantined range), no file
 * mapped but in vmap_vmap areas, vmap blocks, lazy or quarantined ranges, and
 * every free page anonymous, readable and writable.
 * Meant as a test oracle: it holds every lock of the space for O(n log n) in
 * the areas (0.7 s at 2 million), stopping every other call meanwhile.
 *
 * Returns 0, or -EUCLEAN after printing what is wrong to stderr, or -ENOMEM if
 * the snapshot cannot be allocated, or -EINVAL if space is NULL.
 */
VMAP_API int vmap_check(vmap_space *space);

/* A static English message for a negative (or positive) errno value. */
VMAP_API const char *vmap_strerror(int err);

#ifdef __cplusplus
}
#endif

#endif /* VMAP_H */
