/* SPDX-License-Identifier: MIT */
/*
 * query.c - a range of the space by address: what it holds (free, lazy or
 * busy), an area at a fixed address, and reservations.
 *
 * Nothing indexes the space by address but the free tree; busy areas are
 * found by their start (a hash), lazy ones are on lock-free lists.  So a
 * range's state is found by elimination.  Under the purge mutex (no purge
 * can move anything out of a lazy list, a pool or the quarantine), the
 * areas of the structures that hold space which is neither free nor busy --
 * lazy lists, warm pools, the quarantine, flushes in flight -- and the node
 * pools' flushed areas, which are free, are gathered where they overlap the
 * range.  Then,
 * under the free lock, the range is tiled from its start: a page is free if
 * a free block or a pooled area holds it, lazy if a gathered lazy area does,
 * and busy otherwise -- a busy area, a reservation, a vmap block, or an
 * allocation or free in progress, which is busy until it is done.  The cost
 * is the gathering, O(lazy + pooled areas), paid only by a query and by a
 * fixed-address allocation that did not fit at once.
 *
 * A fixed-address allocation is an ordinary allocation whose window is
 * exactly the range (area.c places it, with every check of the general
 * path); when it misses, the policy (reclaim_at_miss) asks this file what
 * is in the way.
 */
#include <errno.h>
#include <stdlib.h>

#include "internal.h"

struct piece {
	uint64_t start, end;
	bool lazy; /* false: a node pool's area, flushed and free */
};

struct gather {
	uint64_t lo, hi;
	bool lazy; /* what the structure being walked holds */
	struct piece *p;
	size_t n, cap;
	int err;
};

static int gather_one(void *arg, const struct va *va)
{
	struct gather *g = arg;
	struct piece *p;

	if (va->end <= g->lo || va->start >= g->hi)
		return 0;
	if (g->n == g->cap) {
		size_t cap = g->cap ? 2 * g->cap : 16;

		if (!(p = vm_realloc(g->p, cap * sizeof(*p))))
			return -ENOMEM;
		g->p = p;
		g->cap = cap;
	}
	g->p[g->n++] = (struct piece){ va->start, va->end, g->lazy };
	return 0;
}

static int by_start(const void *a, const void *b)
{
	const struct piece *x = a, *y = b;

	return (x->start > y->start) - (x->start < y->start);
}

/* Purge mutex held: every lazy, warm, quarantined and pooled area that
 * overlaps [g->lo, g->hi), sorted. */
static int gather(vmap_space *s, struct gather *g)
{
	int err;

	g->lazy = true;
	err = __vm_lazy_walk(s, gather_one, g);
	for (unsigned i = 0; i < VMAP_BUSY_SHARDS && !err; i++) {
		struct busy_shard *sh = &s->busy.shard[i];

		pthread_mutex_lock(&sh->lock);
		__pool_walk_shard(sh, gather_one, g, &err);
		pthread_mutex_unlock(&sh->lock);
	}
	if (!err) {
		pthread_mutex_lock(&s->quarantine_lock);
		err = __quarantine_walk(s, gather_one, g);
		pthread_mutex_unlock(&s->quarantine_lock);
	}
	if (!err) {
		pthread_mutex_lock(&s->flight_lock);
		err = __flights_walk(s, gather_one, g);
		pthread_mutex_unlock(&s->flight_lock);
	}
	g->lazy = false;
	for (unsigned n = 0; n < s->nnodes && !err; n++) {
		pthread_mutex_lock(&s->nodes[n].lock);
		err = __node_walk(s, n, gather_one, g);
		pthread_mutex_unlock(&s->nodes[n].lock);
	}
	if (!err && g->n)
		qsort(g->p, g->n, sizeof(*g->p), by_start);
	return err;
}

/* The gathered area holding addr, or NULL. */
static const struct piece *piece_at(const struct gather *g, uint64_t addr)
{
	size_t lo = 0, hi = g->n;

	while (lo < hi) { /* the first piece starting after addr */
		size_t mid = lo + (hi - lo) / 2;

		if (g->p[mid].start <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo && g->p[lo - 1].end > addr ? &g->p[lo - 1] : NULL;
}

int __vm_range_state(vmap_space *s, uint64_t lo, uint64_t hi)
{
	struct gather g = { .lo = lo, .hi = hi };
	int state = VMAP_RANGE_FREE, err = gather(s, &g);

	if (err) {
		free(g.p);
		return err;
	}
	pthread_mutex_lock(&s->free_lock);
	for (uint64_t a = lo; a < hi;) {
		const struct va *b = ft_at(&s->free, a);
		const struct piece *p;

		if (b) {
			a = b->end;
		} else if ((p = piece_at(&g, a))) {
			if (p->lazy)
				state = VMAP_RANGE_LAZY;
			a = p->end;
		} else {
			state = VMAP_RANGE_BUSY;
			break;
		}
	}
	pthread_mutex_unlock(&s->free_lock);
	free(g.p);
	return state;
}

/* Check a range of the caller's: page-aligned, not empty, in the space. */
static int check_range(const vmap_space *s, uint64_t start, uint64_t size)
{
	uint64_t pmask = s->page_size - 1;

	if (!size || ((start | size) & pmask) || size - 1 > UINT64_MAX - start)
		return -EINVAL;
	/* Ending at 2^64 (start + size == 0) is past every space's end. */
	if (start < s->base || !(start + size) || start + size > s->end)
		return -ERANGE;
	return 0;
}

int vmap_range_state(vmap_space *s, uint64_t start, uint64_t size,
		     int *state)
{
	int err;

	if (!s || !state)
		return -EINVAL;
	if ((err = check_range(s, start, size)))
		return err;
	pthread_mutex_lock(&s->purge_lock);
	pthread_mutex_lock(&s->free_lock);
	err = __span_check(s, start, start + size);
	pthread_mutex_unlock(&s->free_lock);
	if (!err)
		err = __vm_range_state(s, start, start + size);
	purge_unlock(s);
	if (err < 0)
		return err;
	*state = err;
	return 0;
}

static int alloc_at(vmap_space *s, uint64_t addr, uint64_t size,
		    unsigned flags, unsigned kind)
{
	struct fit f = { .nopurge = true };
	uint64_t a;
	int err;

	if (!s)
		return -EINVAL;
	f.align = s->page_size;
	if (flags & ~VMAP_AT_PURGE)
		return -EINVAL;
	if ((err = check_range(s, addr, size)))
		return err;
	/* A memory space's area ends with its guard page; a reservation,
	 * never handed out, needs none. */
	f.size = size;
	if (s->guard && !(kind & VA_RESERVED)) {
		if (addr + size > s->end - s->page_size)
			return -ERANGE;
		f.size += s->page_size;
	}
	f.lo = addr;
	f.hi = addr + f.size;
	pthread_mutex_lock(&s->free_lock);
	err = __span_check(s, f.lo, f.hi);
	pthread_mutex_unlock(&s->free_lock);
	if (err)
		return err;
	for (unsigned tries = 0;; tries++) {
		err = vm_alloc(s, &f, kind, NULL, &a);
		if (err != -ENOSPC)
			break;
		err = reclaim_at_miss(s, f.lo, f.hi, flags & VMAP_AT_PURGE,
				      tries);
		if (err)
			break;
	}
	if (!err)
		node_count_alloc(s);
	return err;
}

int vmap_alloc_at(vmap_space *s, uint64_t addr, uint64_t size,
		  unsigned flags)
{
	return alloc_at(s, addr, size, flags, 0);
}

int vmap_reserve(vmap_space *s, uint64_t addr, uint64_t size,
		 unsigned flags)
{
	return alloc_at(s, addr, size, flags, VA_RESERVED);
}

int vmap_unreserve(vmap_space *s, uint64_t addr)
{
	uint64_t lazy;
	int err;

	if (!s)
		return -EINVAL;
	/* A memory space's reserved pages may have been written (they are
	 * the reservation's readable, writable memory): released like any
	 * area's.  A range space's were never handed out: nothing to flush,
	 * straight back to the free tree. */
	if (!s->memory)
		return vm_unreserve_now(s, addr);
	err = vm_free(s, addr, FREE_RESERVED, 0, &lazy);
	if (!err)
		reclaim_freed(s, lazy);
	return err;
}
