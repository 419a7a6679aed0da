/* SPDX-License-Identifier: MIT */
/*
 * lazy.c - the lazy-free list: freed areas waiting for a purge.
 *
 * A lock-free LIFO in the manner of the kernel's llist.  Any number of
 * threads push (a compare-and-swap on the head); a purge takes the whole list
 * with one atomic exchange, after which it alone owns those records.  Nothing
 * is ever removed one at a time, so there is no ABA problem: a record that
 * left the list can only return to it through a new push.
 *
 * The counters say how much is lazy: pages and areas pushed and not yet given
 * back to the free space by a purge.  They are raised *before* the push (the
 * pusher may no longer touch the record afterwards) and lowered by the purge
 * only after the ranges are back in the free tree, so they never under-count
 * what is unavailable.
 *
 * `since` says how long the oldest lazy area has waited, for the purger's
 * time bound (purger.c) and the stats: the push that finds no area counted
 * stamps it, the purge takes it with the list.  A push during a purge finds
 * that purge's areas still counted and stamps nothing; the purge then stamps
 * its own start for them (lazy_rearm) -- an upper bound on their wait.  Both
 * decisions read `areas` through read-modify-writes of that one counter, so
 * one of the two always sees the other.
 */
#include "internal.h"

void lazy_init(struct lazy_list *l)
{
	atomic_init(&l->head, NULL);
	atomic_init(&l->pages, 0);
	atomic_init(&l->areas, 0);
	atomic_init(&l->since, 0);
}

static void lazy_repush(struct lazy_list *l, struct va *va)
{
	struct va *old = atomic_load_explicit(&l->head, memory_order_relaxed);

	/* Release: the purge that takes va must see its start and end. */
	do
		va->next = old;
	while (!atomic_compare_exchange_weak_explicit(&l->head, &old, va,
						      memory_order_release,
						      memory_order_relaxed));
}

uint64_t lazy_count(struct lazy_list *l, uint64_t pages)
{
	uint64_t nr = atomic_fetch_add_explicit(&l->pages, pages,
						memory_order_relaxed) + pages;

	if (!atomic_fetch_add_explicit(&l->areas, 1, memory_order_relaxed)) {
		uint64_t none = 0;

		atomic_compare_exchange_strong(&l->since, &none, vm_now_ns());
	}
	return nr;
}

uint64_t lazy_push(struct lazy_list *l, struct va *va, uint64_t pages)
{
	uint64_t nr = lazy_count(l, pages);

	lazy_repush(l, va);
	return nr;
}

struct va *lazy_take_all(struct lazy_list *l, uint64_t *since)
{
	*since = atomic_exchange(&l->since, 0);
	if (!atomic_load_explicit(&l->head, memory_order_relaxed))
		return NULL;
	return atomic_exchange_explicit(&l->head, NULL, memory_order_acquire);
}

void lazy_rearm(struct lazy_list *l, uint64_t taken)
{
	uint64_t none = 0;

	if (atomic_load(&l->areas))
		atomic_compare_exchange_strong(&l->since, &none, taken);
}

void lazy_adopt(struct lazy_list *l, uint64_t pages, uint64_t areas)
{
	atomic_fetch_add_explicit(&l->pages, pages, memory_order_relaxed);
	atomic_fetch_add_explicit(&l->areas, areas, memory_order_relaxed);
}

void lazy_retire(struct lazy_list *l, uint64_t pages, uint64_t areas)
{
	atomic_fetch_sub_explicit(&l->pages, pages, memory_order_relaxed);
	atomic_fetch_sub_explicit(&l->areas, areas, memory_order_relaxed);
}

#ifndef VMAP_LEGACY
/* The mechanism (the legacy build has its own, in legacy.c). */

uint64_t vm_publish(vmap_space *s, struct busy_shard *sh, struct va *va)
{
	(void)sh;
	return lazy_push(&s->lazy, va, space_pages(s, va->end - va->start));
}

struct va *vm_take(vmap_space *s, uint64_t *since)
{
	return lazy_take_all(&s->lazy, since);
}
#endif
