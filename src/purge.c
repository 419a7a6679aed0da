/* SPDX-License-Identifier: MIT */
/*
 * purge.c - turning the lazy list into one flush and free space again.
 *
 * A purge, under the purge mutex:
 *   1. takes the whole lazy list with one exchange (frees go on pushing onto
 *      a fresh list meanwhile);
 *   2. sorts it by address (sort.c) and coalesces touching areas into
 *      ranges;
 *   3. calls the flush callback once with those ranges, holding no other lock:
 *      allocation and freeing go on during the flush, and cannot be handed
 *      these ranges, which are in no structure but this purge's list;
 *   4. gives the ranges back to the free tree in chunks of VMAP_PURGE_CHUNK,
 *      taking the free lock once per chunk.
 *
 * Step 4 is where the kernel's llist purge hurt: it gave a whole batch back
 * under one spinlock hold, and a batch of a few hundred thousand areas held it
 * for 24.7 ms (the reason Linux 5.11 replaced the llist).  Chunking bounds the
 * hold to what VMAP_PURGE_CHUNK inserts cost, whatever the batch size; the
 * longest hold is recorded in the stats.
 */
#include <errno.h>
#include <stdlib.h>
#include <time.h>

#include "internal.h"

uint64_t vm_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void vm_stat_max(atomic_uint_fast64_t *c, uint64_t v)
{
	uint64_t old = atomic_load_explicit(c, memory_order_relaxed);

	while (old < v && !atomic_compare_exchange_weak_explicit(
				  c, &old, v, memory_order_relaxed,
				  memory_order_relaxed))
		;
}

static inline void count(atomic_uint_fast64_t *c, uint64_t n)
{
	atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

/*
 * Add v to the runs r[0..*n): into the last run if it touches or overlaps
 * it, else as a new run if there is room for one (cap); false if there is
 * not.  Lazy areas never overlap, but a live block's dirty range collected by
 * vmap_unmap_aliases can lie inside the block if a free retired it meanwhile
 * and this purge took it too.
 */
static bool add_run(struct vmap_range *r, size_t *n, size_t cap,
		    const struct va *v)
{
	if (*n && v->start <= r[*n - 1].end) {
		if (v->end > r[*n - 1].end)
			r[*n - 1].end = v->end;
		return true;
	}
	if (*n == cap)
		return false;
	r[(*n)++] = (struct vmap_range){ v->start, v->end };
	return true;
}

/* The space whose flush callback this thread is running, if any. */
static _Thread_local const vmap_space *flushing;

bool vm_in_flush(const vmap_space *s)
{
	return flushing == s;
}

static void call_flush(vmap_space *s, const struct vmap_range *r, size_t n)
{
	if (s->flush) {
		const vmap_space *outer = flushing;

		flushing = s;
		s->flush(s->flush_ctx, r, n);
		flushing = outer;
	}
	count(&s->flushes, 1);
	count(&s->ranges_flushed, n);
}

/* Flush the sorted list of n records: once, or in pieces if the vector
 * cannot grow. */
static void flush_list(vmap_space *s, const struct va *list, uint64_t n)
{
	struct vmap_range piece[64];
	size_t runs = 0;

	if (n > s->vec_cap) {
		struct vmap_range *v = vm_realloc(s->vec, n * sizeof(*v));

		if (v) {
			s->vec = v;
			s->vec_cap = n;
		}
	}
	if (n <= s->vec_cap) {
		for (; list; list = list->next)
			add_run(s->vec, &runs, n, list);
		call_flush(s, runs ? s->vec : piece, runs);
		return;
	}
	/* No memory for one vector: flush the sorted ranges piece by piece. */
	for (; list; list = list->next)
		if (!add_run(piece, &runs, 64, list)) {
			call_flush(s, piece, runs);
			runs = 0;
			add_run(piece, &runs, 64, list);
		}
	call_flush(s, piece, runs);
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
			struct va *node = v, *extra;
			uint64_t start = v->start, end = v->end;

			if (v->flags & VA_DIRTY) {
				/* Flushed, but space of a live block; the
				 * record is the block's. */
				v = v->next;
				continue;
			}

			for (v = v->next, areas++;
			     v && v->start == end && !(v->flags & VA_DIRTY);
			     areas++) {
				struct va *next = v->next;

				end = v->end;
				v->next = spent;
				spent = v;
				v = next;
			}
			extra = ft_insert(&s->free, start, end, &node);
			if (node) {
				node->next = spent;
				spent = node;
			}
			if (extra) {
				extra->next = spent;
				spent = extra;
			}
			pages += space_pages(s, end - start);
		}
		/* Under the free lock, so vmap_check sees pages in exactly
		 * one of the free tree and the lazy counter. */
		lazy_retire(&s->lazy, pages, areas);
		hold = vm_now_ns() - t0;
		pthread_mutex_unlock(&s->free_lock);
		total += areas;

		vm_stat_max(&s->purge_max_hold_ns, hold);
		while (spent) {
			struct va *next = spent->next;

			free(spent);
			spent = next;
		}
	}
	return total;
}

/*
 * The purge proper, with the purge mutex held.  `extra` is a list of ranges
 * to flush with the batch that are not lazy areas -- the dirty ranges of live
 * vmap blocks, from vmap_unmap_aliases: they join the one flush, then their
 * records (the blocks' own) leave the list; their space stays in the blocks.
 */
/* Put the list `more` in front of `list`. */
static struct va *prepend(struct va *more, struct va *list)
{
	struct va *tail = more;

	if (!more)
		return list;
	while (tail->next)
		tail = tail->next;
	tail->next = list;
	return more;
}

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

void __vm_purge(vmap_space *s, bool force, struct va *extra, uint64_t nextra)
{
	bool again, first = true;
	struct va *list;
	uint64_t t0, n;

	do {
		t0 = vm_now_ns();
		list = vm_take(s);
		/* A few quarantined areas ride along, once per purge. */
		if (first && s->memory) {
			uint64_t nq;

			list = prepend(quarantine_retry(s, &nq), list);
		}
		if (!list && !extra && !force)
			break;
		list = prepend(extra, list);
		extra = NULL;
		list = batch_sort(s, list, nextra, &n);
		if (s->memory)
			memory_prepare(s, list);
		flush_list(s, list, n);
		if (s->memory)
			list = memory_restore(s, list);
		count(&s->areas_purged, give_back(s, list));
		count(&s->purges, 1);
		vm_stat_max(&s->purge_max_areas, n - nextra);
		atomic_store_explicit(&s->purge_last_ns, vm_now_ns() - t0,
				      memory_order_relaxed);
		force = false;
		first = false;
		nextra = 0;
		/* In a strict space, a free made by the flush callback could
		 * not purge by itself (this purge holds the mutex): its area
		 * is released here, at once, as strict mode promises.  (What
		 * the kernel refused is in quarantine, not lazy: this ends.) */
		again = s->strict && atomic_load(&s->lazy.areas);
	} while (again);
	shrink_buffers(s);
}

int vm_purge(vmap_space *s, unsigned how)
{
	if (how & (VMAP_PURGE_SYNC | VMAP_PURGE_FORCE_FLUSH))
		pthread_mutex_lock(&s->purge_lock);
	else if (pthread_mutex_trylock(&s->purge_lock))
		return -EBUSY;
	__vm_purge(s, how & VMAP_PURGE_FORCE_FLUSH, NULL, 0);
	pthread_mutex_unlock(&s->purge_lock);
	return 0;
}
