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
 * Pools must not hoard the space.  Each pool has two generations: what the
 * last purge gave (young) and what the purge before gave (old), and a take
 * looks at the young first.  Each purge sends the old generation back to the
 * tree and makes the young one old (decay: an area unused for two purges
 * goes back), moving only list heads under the node's lock; an allocation
 * that finds no room, a sync purge and vmap_unmap_aliases send everything
 * back first; so a near-full space fails no more allocations than the exact
 * policy does.  Every hold of a node's lock is bounded: a purge fills pools
 * VMAP_PURGE_CHUNK areas per hold, as it fills the tree.
 *
 * An area moves between a pool and the busy map under its node's lock and
 * then its shard's, and from a purge's list into a pool under the node's
 * lock with the lazy counters retired there, so vmap_check (which holds
 * every lock) sees it in exactly one place.
 */
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

#define NODE_SCAN 4 /* pooled areas a take looks at, per generation */

enum { YOUNG, OLD }; /* a pool's generations (struct vnode) */

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
		memset(v->pool, 0, sizeof(v->pool));
		memset(v->count, 0, sizeof(v->count));
		memset(v->used, 0, sizeof(v->used));
	}
	return 0;
}

void nodes_fini(vmap_space *s)
{
	for (unsigned n = 0; s->nodes && n < s->nnodes; n++) {
		struct vnode *v = &s->nodes[n];

		for (unsigned c = 0; c < NODE_POOL_PAGES; c++)
			for (unsigned g = YOUNG; g <= OLD; g++)
				if (!records_own_all())
					va_put_list(s, v->pool[g][c]);
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

/* v locked: class c of generation g holds n areas now; keep the class's
 * bit in step, so that a decay visits only the sizes a pool holds. */
static void set_count(struct vnode *v, unsigned g, unsigned c, uint32_t n)
{
	v->count[g][c] = n;
	if (v->count[YOUNG][c] || v->count[OLD][c])
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

/* v locked: unlink the first of the first NODE_SCAN areas of class c,
 * young generation first, that meets f; NULL if none does. */
static struct va *pick(struct vnode *v, unsigned c, const struct fit *f)
{
	for (unsigned g = YOUNG; g <= OLD; g++) {
		struct va **link = &v->pool[g][c], *va;

		for (unsigned looked = 0; (va = *link) && looked < NODE_SCAN;
		     looked++, link = &va->next) {
			if (meets(f, va->start)) {
				*link = va->next;
				set_count(v, g, c, v->count[g][c] - 1);
				return va;
			}
		}
	}
	return NULL;
}

bool node_take(vmap_space *s, const struct fit *f, unsigned kind,
	       struct vblock *vb, uint64_t *addr)
{
	uint64_t pages = space_pages(s, f->size);
	struct va *va, **retired;
	struct busy_shard *shard;
	struct vnode *v;
	unsigned here;

	if (!s->pools || f->topdown || pages > NODE_POOL_PAGES ||
	    f->size > f->hi - f->lo)
		return false;
	here = node_here(s);
	v = &s->nodes[here];
	pthread_mutex_lock(&v->lock);
	va = pick(v, (unsigned)pages - 1, f);
	if (!va) {
		pthread_mutex_unlock(&v->lock);
		return false;
	}
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

/* v locked: va into its class's young list, at the head. */
static void put(vmap_space *s, struct vnode *v, struct va *va)
{
	unsigned c = (unsigned)space_pages(s, va->end - va->start) - 1;

	va->next = v->pool[YOUNG][c];
	v->pool[YOUNG][c] = va;
	set_count(v, YOUNG, c, v->count[YOUNG][c] + 1);
}

void node_untake(vmap_space *s, struct va *va)
{
	uint64_t pages = space_pages(s, va->end - va->start);
	struct vnode *v = &s->nodes[node_of(s, va)];

	pthread_mutex_lock(&v->lock);
	put(s, v, va);
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
	/* VMAP_PURGE_CHUNK areas per hold of a node's lock, as the tree's
	 * chunks: an allocation on that CPU waits for one chunk at most,
	 * however big the batch.  The lazy counters drop under the same
	 * lock, so vmap_check sees each area either lazy or pooled. */
	for (unsigned n = 0; n < s->nnodes; n++) {
		struct vnode *v = &s->nodes[n];

		for (va = to[n]; va;) {
			uint64_t pages = 0, areas = 0;

			pthread_mutex_lock(&v->lock);
			for (; va && areas < VMAP_PURGE_CHUNK; areas++) {
				struct va *next = va->next;

				pages += space_pages(s, va->end - va->start);
				put(s, v, va);
				va = next;
			}
			vm_count(&v->pages, pages);
			vm_count(&v->areas, areas);
			lazy_retire(&s->lazy, pages, areas);
			pthread_mutex_unlock(&v->lock);
			total += areas;
		}
	}
	return total;
}

/* Areas per hold of the free lock when a pool goes back to the tree: a
 * quarter of a purge's chunk, as these inserts land anywhere in the tree
 * (a purge's are sorted, and touching ones go in as one range). */
#define TREE_CHUNK (VMAP_PURGE_CHUNK / 4)

/* Give a list of areas taken out of their pools back to the free tree,
 * TREE_CHUNK per hold of the free lock.  (In between they are in no
 * structure, with the purge mutex held: vmap_check cannot look, and
 * vmap_stats may count them in neither.) */
static void to_tree(vmap_space *s, struct va *list)
{
	while (list) {
		struct va *spent = NULL;
		uint64_t t0;

		pthread_mutex_lock(&s->free_lock);
		t0 = vm_now_ns();
		for (int k = 0; list && k < TREE_CHUNK; k++) {
			struct va *node = list;

			list = list->next;
			__tree_give(s, node->start, node->end, node, &spent);
		}
		vm_stat_max(&s->purge_max_hold_ns, vm_now_ns() - t0);
		pthread_mutex_unlock(&s->free_lock);
		va_put_list(s, spent);
	}
}

/*
 * One node: under its lock, only list heads move -- the old generation
 * (every generation, with all) of each size out into lists[], the young one
 * into its place -- so the hold is O(sizes pooled), whatever the pools
 * hold; the areas go to the tree after, in chunks.  Returns how many.
 */
static uint64_t decay_node(vmap_space *s, struct vnode *v, bool all)
{
	struct va *lists[2 * NODE_POOL_PAGES];
	uint64_t pages = 0, areas = 0;
	unsigned k = 0;

	pthread_mutex_lock(&v->lock);
	for (unsigned w = 0; w < NODE_POOL_PAGES / 64; w++) {
		/* A copy: set_count clears the bits of emptied sizes. */
		for (uint64_t bits = v->used[w]; bits; bits &= bits - 1) {
			unsigned c = w * 64 + (unsigned)__builtin_ctzll(bits);

			for (unsigned g = all ? YOUNG : OLD; g <= OLD; g++) {
				if (!v->pool[g][c])
					continue;
				lists[k++] = v->pool[g][c];
				areas += v->count[g][c];
				pages += (uint64_t)v->count[g][c] * (c + 1);
				v->pool[g][c] = NULL;
				set_count(v, g, c, 0);
			}
			if (!all) {
				v->pool[OLD][c] = v->pool[YOUNG][c];
				v->pool[YOUNG][c] = NULL;
				set_count(v, OLD, c, v->count[YOUNG][c]);
				set_count(v, YOUNG, c, 0);
			}
		}
	}
	vm_uncount(&v->pages, pages);
	vm_uncount(&v->areas, areas);
	pthread_mutex_unlock(&v->lock);
	for (unsigned i = 0; i < k; i++)
		to_tree(s, lists[i]);
	return areas;
}

bool __nodes_decay(vmap_space *s, bool all)
{
	uint64_t moved = 0, pages;

	if (!s->pools || !nodes_cached(s, &pages))
		return false;
	for (unsigned n = 0; n < s->nnodes; n++)
		moved += decay_node(s, &s->nodes[n], all);
	vm_count(&s->cached_decayed, moved);
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
		for (unsigned g = YOUNG; g <= OLD; g++)
			for (struct va *va = s->nodes[n].pool[g][c];
			     va && !err; va = va->next)
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
