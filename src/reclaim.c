/* SPDX-License-Identifier: MIT */
/*
 * reclaim.c - the one policy: when to purge, on which thread, and how much.
 *
 * The mechanisms only report: a free says how many pages are lazy counting
 * its area (area.c, vblock.c), an allocation says it found no room, a mapping
 * says the kernel refused it.  Every decision is made here:
 *
 *   event                    no purger (range spaces)   purger (memory spaces)
 *   a free, lazy > threshold  try a purge on this thread  wake the purger
 *   a free, lazy > 2x         wait and purge here         the same: back-pressure
 *   a free, anything lazy     -                           the purger's timer
 *   a free, strict space      purge here, at once         (strict has none)
 *   no room for an area       sync purge here, retry once -- if anything that
 *                             a purge frees could make room for it (NOPURGE:
 *                             the node pools back to the tree, no purge)
 *   a mapping refused         sync purge here, retry once
 *   vmap_purge                as asked, here
 *   vmap_unmap_aliases        sync purge with the blocks' dirty ranges, here
 *
 * A sync purge releases everything it can: fragmented vmap blocks and warm
 * areas go to the lazy list first, as the kernel's does, and the node pools
 * go back to the tree after.  In a strict space
 * a purge repeats while anything is lazy: a free made by the flush callback
 * itself could not purge (this purge holds the mutex), and strict promises
 * release at once.
 *
 * The threshold is the kernel's lazy_max_pages.  The 2x rule: a try that
 * finds a purge running leaves the list growing for as long as that purge
 * takes; past twice the threshold the free waits for it and purges again, so
 * laziness stays bounded.  With a purger, that wait is the only purge a free
 * ever runs, and it is counted (`backpressure`).
 */
#include <errno.h>

#include "internal.h"

/* Purge mutex held: one purge, repeated in a strict space while anything is
 * lazy; counted in `cause` (a purges_* counter) if it did anything. */
static void run(vmap_space *s, atomic_uint_fast64_t *cause, unsigned how,
		struct va *extra, uint64_t nextra)
{
	bool did = __vm_purge(s, how, extra, nextra);

	while (s->strict && vm_read(&s->lazy.areas))
		did |= __vm_purge(s, how & PURGE_TREE, NULL, 0);
	if (did)
		vm_count(cause, 1);
}

/* Everything that can be released, released, before this returns, and
 * every node pool back in the tree (for an allocation that found no room,
 * the room pools hold; for vmap_purge's caller, a space whose free space is
 * all in the tree again).  All under the purge mutex: a second sync purge
 * must not find the pool empty and return while the areas this one took
 * from it are not yet released. */
static void __purge_all(vmap_space *s, atomic_uint_fast64_t *cause,
			bool force)
{
	__purge_fragmented_blocks(s);
	pool_drain(s);
	run(s, cause, PURGE_TREE | (force ? PURGE_FORCE : 0), NULL, 0);
	__nodes_decay(s, true);
}

static void purge_all(vmap_space *s, atomic_uint_fast64_t *cause, bool force)
{
	pthread_mutex_lock(&s->purge_lock);
	__purge_all(s, cause, force);
	purge_unlock(s);
}

/* A purge of the lazy list only; with wait false, none if one is running. */
static bool purge_lazy(vmap_space *s, atomic_uint_fast64_t *cause, bool wait)
{
	if (wait)
		pthread_mutex_lock(&s->purge_lock);
	else if (pthread_mutex_trylock(&s->purge_lock))
		return false;
	run(s, cause, 0, NULL, 0);
	purge_unlock(s);
	return true;
}

/* lazy past twice the threshold, said without 2 * max (which may wrap). */
static bool past_twice(const vmap_space *s, uint64_t lazy)
{
	return lazy > s->lazy_max_pages &&
	       lazy - s->lazy_max_pages > s->lazy_max_pages;
}

void reclaim_freed(vmap_space *s, uint64_t lazy)
{
	/* A flush callback's free must not wait for the purge running it. */
	bool may_wait = !vm_in_flush(s);

	if (s->strict && may_wait) {
		purge_lazy(s, &s->purges_strict, true);
		return;
	}
	if (past_twice(s, lazy) && may_wait) {
		if (s->purger.enabled)
			vm_count(&s->backpressure, 1);
		purge_lazy(s, &s->purges_threshold, true);
		return;
	}
	if (s->purger.enabled && lazy > s->lazy_max_pages) {
		if (atomic_load_explicit(&s->purger.urgent,
					 memory_order_relaxed) ||
		    purger_kick(s, true))
			return;
	} else if (s->purger.enabled) {
		/* Something is lazy or warm now: an idle purger must start
		 * its clock.  The fence pairs with the purger's before it
		 * goes idle (purger.c). */
		atomic_thread_fence(memory_order_seq_cst);
		if (!atomic_load_explicit(&s->purger.idle,
					  memory_order_relaxed) ||
		    purger_kick(s, false))
			return;
	}
	/* No purger (or none could be started).  An extra try on the
	 * boundary, when two frees cross it at once, is harmless: the second
	 * finds the purge running. */
	if (lazy > s->lazy_max_pages)
		purge_lazy(s, &s->purges_threshold, false);
}

/* Is anything lazy (or being purged), warm, or in a vmap block that a sync
 * purge might free? */
static bool purge_could_help(vmap_space *s)
{
	return vm_read(&s->lazy.pages) || vm_read(&s->pool_areas) ||
	       nodes_cached(s, &(uint64_t){ 0 }) || flights_pending(s) ||
	       vm_read(&s->blocks_created) != vm_read(&s->blocks_freed);
}

/* Send every node pool back to the tree, with no purge and no flush --
 * unless a purge is running (its flush is not ours to wait for); true if
 * anything moved. */
static bool drain_pools(vmap_space *s)
{
	bool moved;

	if (!nodes_cached(s, &(uint64_t){ 0 }) ||
	    pthread_mutex_trylock(&s->purge_lock))
		return false;
	moved = __nodes_decay(s, true);
	purge_unlock(s);
	return moved;
}

/* Asynchronous flushes in flight: wait for a completion, give back what
 * completed; false if nothing is in flight.  Not from a flush callback: the
 * completion it waits for may be the one its purge is to start. */
static bool wait_flights(vmap_space *s)
{
	if (vm_in_flush(s) || !flights_pending(s))
		return false;
	flights_wait(s);
	/* The completed batches, pools and all, into the tree: the caller
	 * looks there (as after a miss's purge). */
	pthread_mutex_lock(&s->purge_lock);
	__flights_settle(s);
	__nodes_decay(s, true);
	purge_unlock(s);
	return true;
}

bool reclaim_miss(vmap_space *s, const struct fit *f, unsigned tries)
{
	/* The lazy counter includes areas a running purge is flushing: they
	 * are free space a moment from now, and the sync purge waits for
	 * them.  A window that could never hold the area is not helped.  A
	 * request that may not purge still gets the pools' flushed areas,
	 * which cost no flush.  After the purge, batches still in flight are
	 * waited for, one completion at a time, while any are. */
	if (!ft_could_fit(f))
		goto fail;
	if (f->nopurge) {
		if (tries || !drain_pools(s))
			goto fail;
		return true;
	}
	if (!tries && purge_could_help(s)) {
		vm_count(&s->purge_retries, 1);
		purge_all(s, &s->purges_miss, false);
		return true;
	}
	if (wait_flights(s))
		return true;
fail:
	vm_count(&s->alloc_failures, 1);
	return false;
}

/*
 * A fixed address is a promise about one range, so the answer is about that
 * range: the node pools go back to the tree first (flushed already: no flush),
 * then the range's state decides.  A purge runs only when the caller allowed
 * it and nothing but lazy space is in the way; a range that was free when
 * looked at is tried again, twice at most (another thread may keep taking
 * it), and then reported busy.
 */
int reclaim_at_miss(vmap_space *s, uint64_t lo, uint64_t hi, bool purge,
		    unsigned tries)
{
	int state;

	pthread_mutex_lock(&s->purge_lock);
	__nodes_decay(s, true);
	state = __vm_range_state(s, lo, hi);
	if (state == VMAP_RANGE_LAZY && purge && tries < 2) {
		vm_count(&s->purge_retries, 1);
		__purge_all(s, &s->purges_miss, false);
	}
	purge_unlock(s);
	if (state == VMAP_RANGE_FREE && tries < 2)
		return 0;
	if (state == VMAP_RANGE_LAZY && purge &&
	    (tries < 2 || wait_flights(s))) /* in flight: its completion */
		return 0;
	vm_count(&s->alloc_failures, 1);
	return state < 0 ? state
	       : state == VMAP_RANGE_LAZY && !purge ? -EAGAIN
						     : -EBUSY;
}

bool reclaim_nomem(vmap_space *s)
{
	purge_all(s, &s->purges_miss, false);
	return true;
}

int vmap_purge(vmap_space *s, unsigned how)
{
	if (!s || (how & ~(VMAP_PURGE_SYNC | VMAP_PURGE_FORCE_FLUSH)))
		return -EINVAL;
	if (how)
		purge_all(s, &s->purges_called, how & VMAP_PURGE_FORCE_FLUSH);
	else if (!purge_lazy(s, &s->purges_called, false))
		return -EBUSY;
	return 0;
}

int vmap_unmap_aliases(vmap_space *s)
{
	struct va *dirty = NULL;
	uint64_t n = 0;
	int err = 0;

	if (!s)
		return -EINVAL;
	pthread_mutex_lock(&s->purge_lock);
	__purge_fragmented_blocks(s);
	pool_drain(s);
	/* A range space's dirty ranges join the flush; a memory space's
	 * freed pieces must lose their file, which a release does not do. */
	if (s->memory)
		err = __remap_freed_pieces(s);
	else
		dirty = __collect_dirty(s, &n);
	run(s, &s->purges_aliases, PURGE_FORCE | PURGE_TREE, dirty, n);
	__nodes_decay(s, true);
	purge_unlock(s);
	return err;
}
