/* SPDX-License-Identifier: MIT */
/*
 * purge.c - turning the lazy list into one flush and free space again.
 *
 * A purge, under the purge mutex:
 *   1. takes every node's lazy list with one exchange each (frees go on
 *      pushing onto fresh lists meanwhile);
 *   2. sorts it by address (sort.c) and coalesces touching areas into
 *      ranges;
 *   3. releases them (release.c: the flush callback once, or the memory
 *      space's batched release), holding no other lock: allocation and
 *      freeing go on meanwhile, and cannot be handed these ranges, which are
 *      in no structure but this purge's list;
 *   4. gives the areas of common sizes to their nodes' pools (node.c), and
 *      the rest back to the free tree in chunks of VMAP_PURGE_CHUNK, taking
 *      the free lock once per chunk.
 *
 * Step 4 is where the kernel's llist purge hurt: it gave a whole batch back
 * under one spinlock hold, and a batch of a few hundred thousand areas held it
 * for 24.7 ms (the reason Linux 5.11 replaced the llist).  Chunking bounds the
 * hold to what VMAP_PURGE_CHUNK inserts cost, whatever the batch size; the
 * longest hold is recorded in the stats.
 *
 * Whether and when to purge is not decided here: see reclaim.c.
 */
#include <errno.h>
#include <stdlib.h>

#include "internal.h"

void __tree_give(vmap_space *s, uint64_t start, uint64_t end,
		 struct va *node, struct va **spent)
{
	struct va *extra = ft_insert(&s->free, start, end, &node);

	if (node) {
		node->next = *spent;
		*spent = node;
	}
	if (extra) {
		extra->next = *spent;
		*spent = extra;
	}
}

/*
 * Give the sorted list back to the free tree, VMAP_PURGE_CHUNK ranges per
 * hold of the free lock, and free the records no longer needed; returns the
 * number of areas given back.  Each run of touching areas becomes one range:
 * its first record is offered to ft_insert as the new free node (`node`, set
 * to NULL if taken), the rest are `spent` at once, and so is the node a
 * merge made redundant (`extra`).  Spent records are freed after the lock is
 * dropped.
 */
static uint64_t give_back(vmap_space *s, struct va *v)
{
	uint64_t total = 0;

	while (v) {
		struct va *spent = NULL;
		uint64_t pages = 0, areas = 0, t0, hold;

		pthread_mutex_lock(&s->free_lock);
		t0 = vm_now_ns();
		for (int k = 0; v && k < VMAP_PURGE_CHUNK; k++) {
			struct va *node = v;
			uint64_t start = v->start, end = v->end;

			if (v->flags & VA_DIRTY) {
				/* Flushed, but space of a live block; the
				 * record is the block's. */
				v = v->next;
				continue;
			}

			for (v = v->next, areas++;
			     v && v->start == end && !(v->flags & VA_DIRTY) &&
			     !ft_is_cut(&s->free, end);
			     areas++) {
				struct va *next = v->next;

				end = v->end;
				v->next = spent;
				spent = v;
				v = next;
			}
			__tree_give(s, start, end, node, &spent);
			pages += space_pages(s, end - start);
		}
		/* Under the free lock, so vmap_check sees pages in exactly
		 * one of the free tree and the lazy counter. */
		lazy_retire(&s->lazy, pages, areas);
		hold = vm_now_ns() - t0;
		pthread_mutex_unlock(&s->free_lock);
		total += areas;

		vm_stat_max(&s->purge_max_hold_ns, hold);
		va_put_list(s, spent);
	}
	return total;
}

/*
 * The purge proper, with the purge mutex held.  `extra` is a list of ranges
 * to flush with the batch that are not lazy areas -- the dirty ranges of live
 * vmap blocks, from vmap_unmap_aliases: they join the one flush, then their
 * records (the blocks' own) leave the list; their space stays in the blocks.
 */
/* Past this many records, a purge's vector and sort buffers go back to the
 * heap when it ends: a purge of 20 M areas would otherwise keep ~1 GB. */
#define PURGE_KEEP 65536

static void shrink_buffers(vmap_space *s)
{
	if (s->vec_cap > PURGE_KEEP) {
		free(s->vec);
		s->vec = NULL;
		s->vec_cap = 0;
	}
	if (s->sortbuf.cap > PURGE_KEEP)
		sortbuf_free(&s->sortbuf);
}

uint64_t __vm_give(vmap_space *s, struct va *list, bool tree)
{
	uint64_t pooled = 0, total;

	/* Common sizes go to their nodes' pools, the rest to the tree. */
	if (!tree)
		pooled = __nodes_give(s, &list);
	total = give_back(s, list) + pooled;
	vm_count(&s->areas_purged, total);
	return total;
}

bool __vm_purge(vmap_space *s, unsigned how, struct va *extra,
		uint64_t nextra)
{
	uint64_t t0 = vm_now_ns(), since, n, nq = 0;
	struct va *lists[VMAP_NODES_MAX + 2], *list;
	unsigned k;

	/* Completed flights first: their space is free again. */
	__flights_settle(s);
	k = vm_take(s, &since, lists);

	/* A few quarantined areas ride along. */
	if (s->memory && (lists[k] = quarantine_retry(s, &nq)))
		k++;
	if (extra)
		lists[k++] = extra;
	if (!k && !(how & PURGE_FORCE))
		return false;
	list = batch_sort(s, lists, k, nextra, &n);
	/* Flushed -- or, with an asynchronous flush, in flight: given back by
	 * its completion (flight.c), and nothing is left here. */
	list = release_batch(s, list, n);
	/* The pools' old generation goes back to the tree (decay: once per
	 * purge), then the batch, flushed, to the pools and the tree. */
	if (!(how & PURGE_TREE))
		__nodes_decay(s, false);
	if (list)
		__vm_give(s, list, how & PURGE_TREE);
	/* And what completed while this purge ran (flight.c). */
	__flights_settle(s);
	vm_count(&s->purges, 1);
	vm_stat_max(&s->purge_max_areas, n - nextra);
	/* Areas freed during this purge have waited since t0 at most. */
	lazy_rearm(&s->lazy, t0);
	if (since)
		vm_stat_max(&s->lazy_max_wait_ns, vm_now_ns() - since);
	atomic_store_explicit(&s->purge_last_ns, vm_now_ns() - t0,
			      memory_order_relaxed);
	shrink_buffers(s);
	return true;
}
