/* SPDX-License-Identifier: MIT */
/*
 * node.c - per-CPU nodes, and their pools of flushed areas by size.
 *
 * Through the tree, every allocation takes the one free lock, searches, and
 * carves; every purge inserts each area back, rebalancing.  But most areas
 * are of a few common sizes, and the area a purge just flushed is exactly
 * what the next allocation of its size needs.  So (as Linux 6.9's vmap
 * nodes, and Bonwick's quantum caches in front of a vmem arena) a purge puts
 * each flushed area of up to NODE_POOL_PAGES pages into a pool of its size,
 * on the node of the CPU that allocated it, and an allocation of that size on
 * that CPU takes it back: a pop under the node's lock, no free lock, no
 * search, no new record.  A space has one node per CPU.
 *
 * What changes for the caller is placement: an area from a pool is a fit,
 * not the lowest fit (VMAP_SPACE_LOWEST_FIT keeps the exact policy).  Every
 * constraint still holds -- a pooled area is taken only if it meets the
 * request's alignment, phase, boundary and window, else the tree serves it
 * -- and so does the rule that matters most: an area enters a pool only
 * after the flush that covered it, so nothing is reused before its flush,
 * whichever node it lands on.
 *
 * Pools must not hoard the space.  Each purge sends the oldest quarter of
 * every pool back to the tree (decay: a size no longer used drains away in a
 * few purges); an allocation that finds no room, a sync purge and
 * vmap_unmap_aliases send everything back first; so a near-full space fails
 * no more allocations than the exact policy does.
 *
 * An area moves between a pool and the busy map under its node's lock and
 * then its shard's, and from a purge's list into a pool under the node's
 * lock with the lazy counters retired there, so vmap_check (which holds
 * every lock) sees it in exactly one place.
 */
#include <sched.h>
#include <stdlib.h>
#include <unistd.h>

#include "internal.h"

#define NODE_SCAN 4 /* pooled areas a take looks at for one that fits */

int nodes_init(vmap_space *s, bool pools)
{
	long cpus = sysconf(_SC_NPROCESSORS_CONF);

	s->pools = pools;
	s->nnodes = cpus <= 0 ? 1 : cpus > VMAP_NODES_MAX ? VMAP_NODES_MAX
							  : (unsigned)cpus;
	s->nodes = vm_aligned_alloc(64, s->nnodes * sizeof(*s->nodes));
	if (!s->nodes)
		return -1;
	for (unsigned n = 0; n < s->nnodes; n++) {
		struct vnode *v = &s->nodes[n];

		pthread_mutex_init(&v->lock, NULL);
		atomic_init(&v->lazy, NULL);
		atomic_init(&v->pages, 0);
		atomic_init(&v->areas, 0);
		atomic_init(&v->allocs, 0);
		atomic_init(&v->frees, 0);
		atomic_init(&v->hits, 0);
		for (unsigned c = 0; c < NODE_POOL_PAGES; c++) {
			v->pool[c] = NULL;
			v->count[c] = 0;
		for (unsigned w = 0; w < NODE_POOL_PAGES / 64; w++)
			v->used[w] = 0;
		}
	}
	return 0;
}

void nodes_fini(vmap_space *s)
{
	for (unsigned n = 0; s->nodes && n < s->nnodes; n++) {
		struct vnode *v = &s->nodes[n];

		for (unsigned c = 0; c < NODE_POOL_PAGES; c++)
			if (!records_own_all())
				va_put_list(s, v->pool[c]);
		pthread_mutex_destroy(&v->lock);
	}
	free(s->nodes);
	s->nodes = NULL;
}

unsigned node_here(const vmap_space *s)
{
	int cpu = sched_getcpu();

	return cpu < 0 ? 0 : (unsigned)cpu % s->nnodes;
}

void node_count_alloc(vmap_space *s)
{
	vm_count(&s->nodes[node_here(s)].allocs, 1);
}

void node_count_free(vmap_space *s)
{
	vm_count(&s->nodes[node_here(s)].frees, 1);
}

uint64_t nodes_cached(vmap_space *s, uint64_t *pages)
{
	uint64_t areas = 0;

	*pages = 0;
	for (unsigned n = 0; n < s->nnodes; n++) {
		areas += vm_read(&s->nodes[n].areas);
		*pages += vm_read(&s->nodes[n].pages);
	}
	return areas;
}

void nodes_stats(vmap_space *s, struct vmap_stats *st)
{
	for (unsigned n = 0; n < s->nnodes; n++) {
		struct vnode *v = &s->nodes[n];

		st->allocs += vm_read(&v->allocs);
		st->frees += vm_read(&v->frees);
		st->cached_hits += vm_read(&v->hits);
		st->cached_areas += vm_read(&v->areas);
		st->cached_pages += vm_read(&v->pages);
	}
}

/* v locked: class c holds n areas now; keep its bit in step, so that a
 * decay visits only the sizes a pool holds. */
static void set_count(struct vnode *v, unsigned c, uint32_t n)
{
	v->count[c] = n;
	if (n)
		v->used[c / 64] |= 1ull << (c % 64);
	else
		v->used[c / 64] &= ~(1ull << (c % 64));
}

static unsigned node_of(const vmap_space *s, const struct va *va)
{
	unsigned n = va->flags >> VA_NODE_SHIFT;

	return n < s->nnodes ? n : 0;
}

/* Does the area at a, of f's size, meet every constraint of f? */
static bool meets(const struct fit *f, uint64_t a)
{
	return a >= f->lo && a <= f->hi - f->size &&
	       (a & (f->align - 1)) == f->phase &&
	       (!f->nocross ||
		!((a ^ (a + f->size - 1)) & ~(f->nocross - 1)));
}

bool node_take(vmap_space *s, const struct fit *f, unsigned kind,
	       struct vblock *vb, uint64_t *addr)
{
	uint64_t pages = space_pages(s, f->size);
	unsigned here, c, looked = 0;
	struct vnode *v;
	struct va **link, *va, **retired;
	struct busy_shard *shard;

	if (!s->pools || f->topdown || pages > NODE_POOL_PAGES ||
	    f->size > f->hi - f->lo)
		return false;
	here = node_here(s);
	v = &s->nodes[here];
	c = (unsigned)pages - 1;
	pthread_mutex_lock(&v->lock);
	for (link = &v->pool[c]; (va = *link) && !meets(f, va->start);
	     link = &va->next)
		if (++looked == NODE_SCAN) {
			va = NULL;
			break;
		}
	if (!va) {
		pthread_mutex_unlock(&v->lock);
		return false;
	}
	*link = va->next;
	set_count(v, c, v->count[c] - 1);
	vm_uncount(&v->pages, pages);
	vm_uncount(&v->areas, 1);
	va->flags = kind | VA_POOLED | here << VA_NODE_SHIFT;
	va->vb = vb;
	shard = busy_shard_of(&s->busy, va->start);
	pthread_mutex_lock(&shard->lock);
	retired = __busy_insert(shard, va);
	pthread_mutex_unlock(&shard->lock);
	pthread_mutex_unlock(&v->lock);
	free(retired);
	vm_count(&v->hits, 1);
	*addr = va->start;
	return true;
}

void node_untake(vmap_space *s, struct va *va)
{
	uint64_t pages = space_pages(s, va->end - va->start);
	struct vnode *v = &s->nodes[node_of(s, va)];

	pthread_mutex_lock(&v->lock);
	va->next = v->pool[pages - 1];
	v->pool[pages - 1] = va;
	set_count(v, (unsigned)pages - 1, v->count[pages - 1] + 1);
	vm_count(&v->pages, pages);
	vm_count(&v->areas, 1);
	vm_uncount(&v->hits, 1);
	pthread_mutex_unlock(&v->lock);
}

uint64_t __nodes_give(vmap_space *s, struct va **list)
{
	struct va **link = list, *va, *to[VMAP_NODES_MAX] = { NULL };
	uint64_t total = 0;

	if (!s->pools)
		return 0;
	/* Sort the pooled areas out by node, keeping the rest in order. */
	while ((va = *link)) {
		uint64_t pages = space_pages(s, va->end - va->start);
		unsigned n;

		if (pages > NODE_POOL_PAGES ||
		    (va->flags & (VA_DIRTY | VA_BLOCK))) {
			link = &va->next;
			continue;
		}
		*link = va->next;
		n = node_of(s, va);
		va->next = to[n];
		to[n] = va;
	}
	for (unsigned n = 0; n < s->nnodes; n++) {
		struct vnode *v = &s->nodes[n];
		uint64_t pages = 0, areas = 0;

		if (!to[n])
			continue;
		pthread_mutex_lock(&v->lock);
		for (va = to[n]; va;) {
			struct va *next = va->next;
			uint64_t p = space_pages(s, va->end - va->start);

			va->next = v->pool[p - 1];
			v->pool[p - 1] = va;
			set_count(v, (unsigned)p - 1, v->count[p - 1] + 1);
			pages += p;
			areas++;
			va = next;
		}
		vm_count(&v->pages, pages);
		vm_count(&v->areas, areas);
		/* Under the node lock: vmap_check sees each area either
		 * lazy or pooled. */
		lazy_retire(&s->lazy, pages, areas);
		pthread_mutex_unlock(&v->lock);
		total += areas;
	}
	return total;
}

/* Give a list of areas taken out of their pools back to the free tree,
 * VMAP_PURGE_CHUNK per hold of the free lock.  (In between they are in no
 * structure, with the purge mutex held: vmap_check cannot look, and
 * vmap_stats may count them in neither.) */
static void to_tree(vmap_space *s, struct va *list)
{
	while (list) {
		struct va *spent = NULL;
		uint64_t t0;

		pthread_mutex_lock(&s->free_lock);
		t0 = vm_now_ns();
		for (int k = 0; list && k < VMAP_PURGE_CHUNK; k++) {
			struct va *node = list;

			list = list->next;
			__tree_give(s, node->start, node->end, node, &spent);
		}
		vm_stat_max(&s->purge_max_hold_ns, vm_now_ns() - t0);
		pthread_mutex_unlock(&s->free_lock);
		va_put_list(s, spent);
	}
}

/* v locked: cut the oldest quarter of class c (all of it) onto *out; how
 * many.  The oldest are the list's tail: new areas go in at the head, and
 * takes work from the head too. */
static uint32_t cut_class(struct vnode *v, unsigned c, bool all,
			  struct va **out)
{
	uint32_t cut = all ? v->count[c] : (v->count[c] + 3) / 4;
	uint32_t keep = v->count[c] - cut;
	struct va **link = &v->pool[c], *tail;

	for (uint32_t i = 0; i < keep; i++)
		link = &(*link)->next;
	for (tail = *link; tail->next; tail = tail->next)
		;
	tail->next = *out;
	*out = *link;
	*link = NULL;
	set_count(v, c, keep);
	return cut;
}

bool __nodes_decay(vmap_space *s, bool all)
{
	struct va *out = NULL;
	uint64_t moved = 0, pages;

	if (!s->pools || !nodes_cached(s, &pages))
		return false;
	for (unsigned n = 0; n < s->nnodes; n++) {
		struct vnode *v = &s->nodes[n];
		uint64_t cut_pages = 0, cut_areas = 0;

		pthread_mutex_lock(&v->lock);
		for (unsigned w = 0; w < NODE_POOL_PAGES / 64; w++) {
			/* A copy: cut_class clears the bits it empties. */
			for (uint64_t bits = v->used[w]; bits;
			     bits &= bits - 1) {
				unsigned c = w * 64 +
					     (unsigned)__builtin_ctzll(bits);
				uint32_t cut = cut_class(v, c, all, &out);

				cut_areas += cut;
				cut_pages += (uint64_t)cut * (c + 1);
			}
		}
		vm_uncount(&v->pages, cut_pages);
		vm_uncount(&v->areas, cut_areas);
		pthread_mutex_unlock(&v->lock);
		moved += cut_areas;
	}
	vm_count(&s->cached_decayed, moved);
	to_tree(s, out);
	return moved != 0;
}

void nodes_lock_all(vmap_space *s)
{
	for (unsigned n = 0; n < s->nnodes; n++)
		pthread_mutex_lock(&s->nodes[n].lock);
}

void nodes_unlock_all(vmap_space *s)
{
	for (unsigned n = s->nnodes; n-- > 0;)
		pthread_mutex_unlock(&s->nodes[n].lock);
}

int __node_walk(vmap_space *s, unsigned n,
		int (*fn)(void *, const struct va *), void *arg)
{
	int err = 0;

	for (unsigned c = 0; c < NODE_POOL_PAGES && !err; c++)
		for (struct va *va = s->nodes[n].pool[c]; va && !err;
		     va = va->next)
			err = fn(arg, va);
	return err;
}

int __nodes_walk(vmap_space *s, int (*fn)(void *, const struct va *),
		 void *arg)
{
	int err = 0;

	for (unsigned n = 0; n < s->nnodes && !err; n++)
		err = __node_walk(s, n, fn, arg);
	return err;
}
