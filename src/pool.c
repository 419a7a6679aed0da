/* SPDX-License-Identifier: MIT */
/*
 * pool.c - warm areas: a memory space keeps small freed areas populated and
 * hands them out again, zeroed, without a release or a page fault.
 *
 * In a memory space the lazy list makes releasing cheap, but a released page
 * costs a page fault the next time it is touched (1.7 us here, more than the
 * whole of vmap's own work).  So a freed area of at most VMAP_POOL_AREA_PAGES
 * pages -- guard included -- goes into a pool instead of onto the lazy list,
 * while the pooled pages stay within pool_max_pages; vmap_vmalloc of the same
 * size takes it back and zeroes it, which costs a memset instead of a fault
 * per page.  The range is never released in between, so there is no flush to
 * wait for: the no-reuse-before-flush rule is about released ranges.
 *
 * Each busy shard keeps the pool of the areas whose start hashes to it, one
 * list per size, under the shard's own lock: an area moves between the busy
 * map and the pool under one lock, so vmap_check always sees it in exactly
 * one place.  A bitmap of non-empty sizes per shard (atomic, read without the
 * lock) lets a miss skip shards without locking them.  A sync purge, and an
 * allocation that finds no room, first move every pooled area to the lazy
 * list, so pooled memory is released like any other.  A space with a purger
 * also ages its warm areas: each remembers the purger's epoch when it went
 * in, and an area left unused for two epochs goes (pool_trim), so warm
 * memory, too, is given back within the time bound once frees stop.
 */
#include <stdlib.h>

#include "internal.h"

bool __pool_put(vmap_space *s, struct busy_shard *sh, struct va *va)
{
	uint64_t pages = space_pages(s, va->end - va->start);
	unsigned c = (unsigned)pages - 1;

	if (!s->pool_max_pages || pages > VMAP_POOL_AREA_PAGES ||
	    (va->flags & (VA_FILE | VA_BLOCK | VA_PROT)))
		return false;
	if (atomic_fetch_add_explicit(&s->pool_pages, pages,
				      memory_order_relaxed) + pages >
	    s->pool_max_pages) {
		vm_uncount(&s->pool_pages, pages);
		return false;
	}
	vm_count(&s->pool_areas, 1);
	va->warm_epoch = atomic_load_explicit(&s->purger.epoch,
					      memory_order_relaxed);
	va->next = sh->pool[c];
	sh->pool[c] = va;
	atomic_fetch_or_explicit(&sh->pool_mask, 1ull << c,
				 memory_order_relaxed);
	return true;
}

static struct va *pop(vmap_space *s, struct busy_shard *sh, unsigned c)
{
	struct va *va = sh->pool[c];

	if (!va)
		return NULL;
	sh->pool[c] = va->next;
	if (!sh->pool[c])
		atomic_fetch_and_explicit(&sh->pool_mask, ~(1ull << c),
					  memory_order_relaxed);
	vm_uncount(&s->pool_pages, c + 1);
	vm_uncount(&s->pool_areas, 1);
	return va;
}

bool pool_take(vmap_space *s, uint64_t pages, uint64_t *addr)
{
	static _Thread_local unsigned hint;
	unsigned c = (unsigned)pages - 1;

	if (!s->pool_max_pages || pages > VMAP_POOL_AREA_PAGES ||
	    !atomic_load_explicit(&s->pool_areas, memory_order_relaxed))
		return false;
	/* Threads start their scans at different shards. */
	hint += 7;
	for (unsigned i = 0; i < VMAP_BUSY_SHARDS; i++) {
		struct busy_shard *sh =
			&s->busy.shard[(hint + i) % VMAP_BUSY_SHARDS];
		struct va *va, **retired = NULL;

		if (!(atomic_load_explicit(&sh->pool_mask,
					   memory_order_relaxed) &
		      (1ull << c)))
			continue;
		pthread_mutex_lock(&sh->lock);
		va = pop(s, sh, c);
		if (va) {
			*addr = va->start;
			retired = __busy_insert(sh, va);
		}
		pthread_mutex_unlock(&sh->lock);
		free(retired);
		if (va)
			return true;
	}
	return false;
}

/*
 * Move warm areas to the lazy list: every one, or (all false) those that went
 * in before epoch `before`.  A list is newest first (puts and takes both work
 * at its head), so those are a tail of it: cut there.  Epochs wrap; the
 * difference tells the age.
 */
static void unwarm(vmap_space *s, bool all, unsigned before)
{
	for (unsigned i = 0; i < VMAP_BUSY_SHARDS; i++) {
		struct busy_shard *sh = &s->busy.shard[i];

		if (!atomic_load_explicit(&sh->pool_mask, memory_order_relaxed))
			continue;
		pthread_mutex_lock(&sh->lock);
		for (unsigned c = 0; c < VMAP_POOL_AREA_PAGES; c++) {
			struct va **link = &sh->pool[c], *va, *next;

			while (!all && *link &&
			       (int)(before - (*link)->warm_epoch) <= 0)
				link = &(*link)->next;
			for (va = *link, *link = NULL; va; va = next) {
				next = va->next;
				vm_uncount(&s->pool_pages, c + 1);
				vm_uncount(&s->pool_areas, 1);
				vm_publish(s, sh, va);
			}
			if (!sh->pool[c])
				atomic_fetch_and_explicit(&sh->pool_mask,
							  ~(1ull << c),
							  memory_order_relaxed);
		}
		pthread_mutex_unlock(&sh->lock);
	}
}

void pool_drain(vmap_space *s)
{
	if (vm_read(&s->pool_areas))
		unwarm(s, true, 0);
}

bool pool_trim(vmap_space *s, unsigned before)
{
	unwarm(s, false, before);
	return vm_read(&s->pool_areas) != 0;
}

void __pool_walk_shard(struct busy_shard *sh,
		       int (*fn)(void *, const struct va *), void *arg,
		       int *err)
{
	for (unsigned c = 0; c < VMAP_POOL_AREA_PAGES && !*err; c++)
		for (struct va *v = sh->pool[c]; v && !*err; v = v->next)
			*err = fn(arg, v);
}

void __pool_walk(vmap_space *s, int (*fn)(void *, const struct va *),
		 void *arg, int *err)
{
	for (unsigned i = 0; i < VMAP_BUSY_SHARDS && !*err; i++)
		__pool_walk_shard(&s->busy.shard[i], fn, arg, err);
}

void pool_fini(vmap_space *s, void (*release)(struct va *))
{
	for (unsigned i = 0; i < VMAP_BUSY_SHARDS; i++)
		for (unsigned c = 0; c < VMAP_POOL_AREA_PAGES; c++) {
			struct va *v = s->busy.shard[i].pool[c], *next;

			for (; v; v = next) {
				next = v->next;
				release(v);
			}
			s->busy.shard[i].pool[c] = NULL;
		}
}
