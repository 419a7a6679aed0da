/* SPDX-License-Identifier: MIT */
/*
 * lazy.c - the lazy-free lists: freed areas waiting for a purge.
 *
 * Lock-free LIFOs in the manner of the kernel's llist, one per node (as Linux
 * 6.9's vmap nodes): a free pushes onto its CPU's (a compare-and-swap on a
 * head no other CPU writes, mostly), and a purge takes every node's list
 * with one atomic exchange each, after which it alone owns those records,
 * and releases them all with one flush.  Nothing is ever removed one at a
 * time, so there is no ABA problem: a record that left a list can only
 * return to one through a new push.
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
	atomic_init(&l->pages, 0);
	atomic_init(&l->areas, 0);
	atomic_init(&l->since, 0);
}

void lazy_push(_Atomic(struct va *) *head, struct va *va)
{
	struct va *old = atomic_load_explicit(head, memory_order_relaxed);

	/* Release: the purge that takes va must see its start and end. */
	do
		va->next = old;
	while (!atomic_compare_exchange_weak_explicit(head, &old, va,
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

struct va *lazy_take(_Atomic(struct va *) *head)
{
	if (!atomic_load_explicit(head, memory_order_relaxed))
		return NULL;
	return atomic_exchange_explicit(head, NULL, memory_order_acquire);
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
	/* Count first: after the push, a purge may free va at any time. */
	uint64_t nr = lazy_count(&s->lazy,
				 space_pages(s, va->end - va->start));

	(void)sh;
	lazy_push(&s->nodes[node_here(s)].lazy, va);
	return nr;
}

int __vm_lazy_walk(vmap_space *s, int (*fn)(void *, const struct va *),
		   void *arg)
{
	int err = 0;

	/* Below a head, a list does not change until a purge takes it. */
	for (unsigned n = 0; n < s->nnodes && !err; n++)
		for (struct va *v = atomic_load_explicit(&s->nodes[n].lazy,
							 memory_order_acquire);
		     v && !err; v = v->next)
			err = fn(arg, v);
	return err;
}

unsigned vm_take(vmap_space *s, uint64_t *since, struct va **lists)
{
	unsigned k = 0;

	*since = atomic_exchange(&s->lazy.since, 0);
	for (unsigned n = 0; n < s->nnodes; n++)
		if ((lists[k] = lazy_take(&s->nodes[n].lazy)))
			k++;
	return k;
}
#endif
