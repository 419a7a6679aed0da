/* SPDX-License-Identifier: MIT */
/*
 * pool.c - warm areas: a memory space keeps freed areas populated and hands
 * them out again without a release or a page fault.
 *
 * In a memory space the lazy list makes releasing cheap, but a released page
 * costs a page fault the next time it is touched (1.7 us here, more than the
 * whole of vmap's own work), and a malloc-style program reuses the same
 * buffer sizes over and over.  So a freed area of any size goes into a pool
 * instead of onto the lazy list while the pooled pages stay within
 * pool_max_pages (the page budget); vmap_vmalloc of the same size takes it
 * back as it is (vmap_vzalloc zeroes it), which costs nothing per page.  The
 * range is never released in between, so there is no flush to wait for: the
 * no-reuse-before-flush rule is about released ranges.  The time bound is the
 * purger's: each area remembers the pool's epoch when it went in, and an area
 * left unused for two epochs goes to the lazy list (pool_trim), so a burst's
 * memory is given back within purge_delay_ms once frees stop.
 *
 * Each busy shard keeps the pool of the areas whose start hashes to it, one
 * list per size class, under the shard's own lock: an area moves between the
 * busy map and the pool under one lock, so vmap_check always sees it in
 * exactly one place.  Classes 0..POOL_EXACT-1 hold one size each (pages - 1);
 * above, a class holds a power-of-two range of sizes and a take looks at its
 * first POOL_SCAN areas for the exact size (a program that reuses a large
 * size finds it at once; one that never does gives it back within the time
 * bound).  A bitmap of non-empty classes per shard (atomic, read without the
 * lock) lets a miss skip shards without locking them.  A sync purge, and an
 * allocation that finds no room, first move every pooled area to the lazy
 * list, so pooled memory is released like any other.
 */
#include <stdlib.h>

#include "internal.h"

#define POOL_SCAN 8 /* areas a take of a large size looks at per shard */

static unsigned pool_class(uint64_t pages)
{
	if (pages <= POOL_EXACT)
		return (unsigned)pages - 1;
	/* (2^k, 2^(k+1)] for k >= 6: floor(log2(pages - 1)) = k. */
	return POOL_EXACT + (63u - (unsigned)__builtin_clzll(pages - 1)) - 6;
}

static bool class_set(struct busy_shard *sh, unsigned c)
{
	return atomic_load_explicit(&sh->pool_mask[c / 64],
				    memory_order_relaxed) &
	       (1ull << (c % 64));
}

/* sh locked: keep the class's bit in step with its list. */
static void class_update(struct busy_shard *sh, unsigned c)
{
	if (sh->pool[c])
		atomic_fetch_or_explicit(&sh->pool_mask[c / 64],
					 1ull << (c % 64),
					 memory_order_relaxed);
	else
		atomic_fetch_and_explicit(&sh->pool_mask[c / 64],
					  ~(1ull << (c % 64)),
					  memory_order_relaxed);
}

bool __pool_put(vmap_space *s, struct busy_shard *sh, struct va *va)
{
	uint64_t pages = space_pages(s, va->end - va->start);
	unsigned c = pool_class(pages);

	if (!s->pool_max_pages || (va->flags & (VA_FILE | VA_BLOCK | VA_PROT)))
		return false;
	if (pages > s->pool_max_pages ||
	    atomic_fetch_add_explicit(&s->pool_pages, pages,
				      memory_order_relaxed) + pages >
	    s->pool_max_pages) {
		if (pages <= s->pool_max_pages)
			vm_uncount(&s->pool_pages, pages);
		return false;
	}
	vm_count(&s->pool_areas, 1);
	va->warm_epoch = atomic_load_explicit(&s->purger.epoch,
					      memory_order_relaxed);
	va->next = sh->pool[c];
	sh->pool[c] = va;
	class_update(sh, c);
	return true;
}

/* sh locked: unlink a warm area of exactly `pages` pages from class c. */
static struct va *pop(vmap_space *s, struct busy_shard *sh, unsigned c,
		      uint64_t pages)
{
	struct va **link = &sh->pool[c], *va;
	unsigned looked = 0;

	while ((va = *link) &&
	       space_pages(s, va->end - va->start) != pages) {
		if (++looked == POOL_SCAN)
			return NULL;
		link = &va->next;
	}
	if (!va)
		return NULL;
	*link = va->next;
	class_update(sh, c);
	vm_uncount(&s->pool_pages, pages);
	vm_uncount(&s->pool_areas, 1);
	return va;
}

bool pool_take(vmap_space *s, uint64_t pages, uint64_t *addr)
{
	static _Thread_local unsigned hint;
	unsigned c;

	if (!s->pool_max_pages || pages > s->pool_max_pages ||
	    !atomic_load_explicit(&s->pool_areas, memory_order_relaxed))
		return false;
	c = pool_class(pages);
	/* Threads start their scans at different shards. */
	hint += 7;
	for (unsigned i = 0; i < VMAP_BUSY_SHARDS; i++) {
		struct busy_shard *sh =
			&s->busy.shard[(hint + i) % VMAP_BUSY_SHARDS];
		struct va *va, **retired = NULL;

		if (!class_set(sh, c))
			continue;
		pthread_mutex_lock(&sh->lock);
		va = pop(s, sh, c, pages);
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
 * in before epoch `before`.  A list is newest first (puts work at its head;
 * takes unlink anywhere, which keeps the order), so those are a tail of it:
 * cut there.  Epochs wrap; the difference tells the age.
 */
static void unwarm(vmap_space *s, bool all, unsigned before)
{
	for (unsigned i = 0; i < VMAP_BUSY_SHARDS; i++) {
		struct busy_shard *sh = &s->busy.shard[i];

		if (!atomic_load_explicit(&sh->pool_mask[0],
					  memory_order_relaxed) &&
		    !atomic_load_explicit(&sh->pool_mask[1],
					  memory_order_relaxed))
			continue;
		pthread_mutex_lock(&sh->lock);
		for (unsigned c = 0; c < POOL_CLASSES; c++) {
			struct va **link = &sh->pool[c], *va, *next;

			while (!all && *link &&
			       (int)(before - (*link)->warm_epoch) <= 0)
				link = &(*link)->next;
			for (va = *link, *link = NULL; va; va = next) {
				next = va->next;
				vm_uncount(&s->pool_pages,
					   space_pages(s, va->end - va->start));
				vm_uncount(&s->pool_areas, 1);
				vm_publish(s, sh, va);
			}
			class_update(sh, c);
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
	for (unsigned c = 0; c < POOL_CLASSES && !*err; c++)
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
		for (unsigned c = 0; c < POOL_CLASSES; c++) {
			struct va *v = s->busy.shard[i].pool[c], *next;

			for (; v; v = next) {
				next = v->next;
				release(v);
			}
			s->busy.shard[i].pool[c] = NULL;
		}
}
