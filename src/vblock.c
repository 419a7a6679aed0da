/* SPDX-License-Identifier: MIT */
/*
 * vblock.c - per-CPU vmap blocks: small areas (up to VMAP_RAM_MAX_PAGES) carved
 * from blocks, as the kernel's vm_map_ram does.
 *
 * A block is one area of the space, block_pages long and aligned to its size.
 * Each CPU has a queue of blocks; an allocation of n pages (rounded up to a
 * power of two, an "order") takes the next n pages of a block of the current
 * CPU's queue -- a bump, never a search, as in the kernel since 2015 -- under
 * that block's lock, and the tree and its lock are not touched at all.
 *
 * A freed piece is not reused: it only widens the block's dirty range.  So
 * nothing needs flushing until the block goes: when every page is dirty, the
 * whole block goes onto the lazy list as one area.  A block with nothing live
 * but some pages never handed out is *fragmented*; a sync purge frees those
 * first (purge_fragmented_blocks).  vmap_unmap_aliases flushes the dirty
 * ranges of the blocks that stay, together with the lazy list, in one flush,
 * and forgets them (they need no second flush).
 *
 * Finding a block from an address: blocks are size-aligned, so the address
 * rounded down is the block's start, and the busy map knows the area there
 * (flagged VA_BLOCK, pointing to its struct vblock).  A vblock, once made,
 * stays a vblock until the space is destroyed (retired ones are reused), so a
 * pointer read from the busy map can always be locked and checked.
 *
 * Locks: a queue's lock, then a block's lock.  Neither is held while taking
 * the purge mutex, the free lock or a busy shard lock, except by vmap_check
 * and vmap_dump, which take them last.
 */
#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

static unsigned order_of(uint64_t pages)
{
	unsigned order = 0;

	while ((1ull << order) < pages)
		order++;
	return order;
}

/* ---- queue lists (queue lock held) ---- */

static void link_all(struct vbq *q, struct vblock *vb)
{
	vb->all_prev = NULL;
	vb->all_next = q->all;
	if (q->all)
		q->all->all_prev = vb;
	q->all = vb;
	q->blocks++;
}

static void unlink_all(struct vbq *q, struct vblock *vb)
{
	if (vb->all_prev)
		vb->all_prev->all_next = vb->all_next;
	else
		q->all = vb->all_next;
	if (vb->all_next)
		vb->all_next->all_prev = vb->all_prev;
	q->blocks--;
}

/* The free list: blocks with pages never handed out.  New blocks go to the
 * tail, so older, fuller blocks are used up first (Roman Pen's 2015 fix for
 * blocks that were never freed). */
static void link_free(struct vbq *q, struct vblock *vb)
{
	vb->on_free = true;
	vb->free_next = NULL;
	vb->free_prev = q->free_tail;
	if (q->free_tail)
		q->free_tail->free_next = vb;
	else
		q->free_head = vb;
	q->free_tail = vb;
}

static void unlink_free(struct vbq *q, struct vblock *vb)
{
	if (!vb->on_free)
		return;
	vb->on_free = false;
	if (vb->free_prev)
		vb->free_prev->free_next = vb->free_next;
	else
		q->free_head = vb->free_next;
	if (vb->free_next)
		vb->free_next->free_prev = vb->free_prev;
	else
		q->free_tail = vb->free_prev;
}

/* ---- making and retiring blocks ---- */

static struct vblock *vblock_new(vmap_space *s)
{
	struct vblock *vb;

	pthread_mutex_lock(&s->vb_dead_lock);
	vb = s->vb_dead;
	if (vb)
		s->vb_dead = vb->all_next;
	pthread_mutex_unlock(&s->vb_dead_lock);
	if (!vb) {
		vb = calloc(1, sizeof(*vb) + s->block_pages);
		if (!vb)
			return NULL;
		pthread_mutex_init(&vb->lock, NULL);
	}
	return vb;
}

static void vblock_dead(vmap_space *s, struct vblock *vb)
{
	pthread_mutex_lock(&s->vb_dead_lock);
	vb->all_next = s->vb_dead;
	s->vb_dead = vb;
	pthread_mutex_unlock(&s->vb_dead_lock);
}

/* Reset a block to describe a fresh area at start, with n pages taken. */
static void vblock_init(vmap_space *s, struct vblock *vb, uint64_t start,
			unsigned cpu, unsigned order)
{
	pthread_mutex_lock(&vb->lock);
	vb->start = start;
	vb->cpu = cpu;
	vb->free = (unsigned)s->block_pages - (1u << order);
	vb->dirty = 0;
	vb->dirty_min = (unsigned)s->block_pages;
	vb->dirty_max = 0;
	vb->live = true;
	vb->on_free = false;
	memset(vb->map, 0, s->block_pages);
	vb->map[0] = (uint8_t)(order + 1);
	pthread_mutex_unlock(&vb->lock);
}

/* With the block's lock held and vb->live just cleared: give its area back
 * (lazily, as one area) and the struct to the dead list.  No other lock is
 * held; may_purge is false when the caller holds the purge mutex. */
static void retire(vmap_space *s, struct vblock *vb, bool may_purge)
{
	uint64_t start = vb->start;

	pthread_mutex_unlock(&vb->lock);
	vm_free(s, start, FREE_BLOCK | (may_purge ? 0 : FREE_NOPURGE), 0);
	vblock_dead(s, vb);
	atomic_fetch_add_explicit(&s->blocks_freed, 1, memory_order_relaxed);
}

/* ---- allocation ---- */

static unsigned this_cpu(const vmap_space *s)
{
	int cpu = sched_getcpu();

	return cpu < 0 ? 0 : (unsigned)cpu % s->nvbq;
}

int vb_alloc(vmap_space *s, uint64_t pages, uint64_t *addr)
{
	unsigned order = order_of(pages), n = 1u << order, cpu = this_cpu(s);
	struct vbq *q = &s->vbq[cpu];
	struct vblock *vb;
	struct fit f;
	uint64_t a;
	int err;

	pthread_mutex_lock(&q->lock);
	for (vb = q->free_head; vb; vb = vb->free_next) {
		unsigned off;

		pthread_mutex_lock(&vb->lock);
		if (vb->free < n) {
			pthread_mutex_unlock(&vb->lock);
			continue;
		}
		off = (unsigned)s->block_pages - vb->free;
		vb->free -= n;
		vb->map[off] = (uint8_t)(order + 1);
		if (!vb->free)
			unlink_free(q, vb);
		*addr = vb->start + ((uint64_t)off << s->page_shift);
		pthread_mutex_unlock(&vb->lock);
		pthread_mutex_unlock(&q->lock);
		return 0;
	}
	pthread_mutex_unlock(&q->lock);

	/* A new block, its first piece ours (Roman Pen's second 2015 fix). */
	vb = vblock_new(s);
	if (!vb)
		return -ENOMEM;
	f = (struct fit){ .size = s->block_pages << s->page_shift,
			  .align = s->block_pages << s->page_shift,
			  .lo = s->base, .hi = s->end };
	err = vm_alloc(s, &f, VA_BLOCK | (s->memory ? VA_FILE : 0), vb, &a);
	if (err) {
		vblock_dead(s, vb);
		return err;
	}
	vblock_init(s, vb, a, cpu, order);
	pthread_mutex_lock(&q->lock);
	link_all(q, vb);
	if (vb->free)
		link_free(q, vb);
	pthread_mutex_unlock(&q->lock);
	atomic_fetch_add_explicit(&s->blocks_created, 1, memory_order_relaxed);
	*addr = a;
	return 0;
}

/* ---- free ---- */

/* The live block holding addr, locked; NULL if there is none. */
static struct vblock *find_locked(vmap_space *s, uint64_t addr)
{
	uint64_t bytes = s->block_pages << s->page_shift;
	uint64_t start = addr & ~(bytes - 1);
	struct busy_shard *sh = busy_shard_of(&s->busy, start);
	struct vblock *vb = NULL;
	struct va *va;

	pthread_mutex_lock(&sh->lock);
	va = __busy_find(sh, start);
	if (va && (va->flags & VA_BLOCK))
		vb = va->vb;
	pthread_mutex_unlock(&sh->lock);
	if (!vb)
		return NULL;
	pthread_mutex_lock(&vb->lock);
	if (vb->live && vb->start == start)
		return vb;
	pthread_mutex_unlock(&vb->lock);
	return NULL;
}

int vb_free(vmap_space *s, uint64_t addr, uint64_t pages, bool *undo)
{
	unsigned order = order_of(pages), n = 1u << order, off;
	struct vblock *vb = find_locked(s, addr);
	struct vbq *q;

	if (!vb || (addr & (s->page_size - 1)))
		goto not_found;
	off = (unsigned)((addr - vb->start) >> s->page_shift);
	if (!vb->map[off]) {
		pthread_mutex_unlock(&vb->lock);
		goto not_found;
	}
	if (vb->map[off] != order + 1) {
		pthread_mutex_unlock(&vb->lock);
		return -EINVAL; /* the wrong count */
	}
	vb->map[off] = 0;
	/* vmap_map_ram failing just after its allocation: if the piece is
	 * still the block's last, un-bump it rather than dirty it. */
	if (undo && off + n == s->block_pages - vb->free) {
		vb->free += n;
		*undo = true;
		q = &s->vbq[vb->cpu];
		pthread_mutex_unlock(&vb->lock);
		pthread_mutex_lock(&q->lock);
		pthread_mutex_lock(&vb->lock);
		if (vb->live && vb->free && !vb->on_free)
			link_free(q, vb);
		pthread_mutex_unlock(&vb->lock);
		pthread_mutex_unlock(&q->lock);
		return 0;
	}
	vb->dirty += n;
	if (off < vb->dirty_min)
		vb->dirty_min = off;
	if (off + n > vb->dirty_max)
		vb->dirty_max = off + n;
	if (vb->dirty < s->block_pages) {
		pthread_mutex_unlock(&vb->lock);
		return 0;
	}
	/* All dirty: the block goes, as one lazy area.  Take it off its
	 * queue first, in lock order. */
	q = &s->vbq[vb->cpu];
	vb->live = false;
	pthread_mutex_unlock(&vb->lock);
	pthread_mutex_lock(&q->lock);
	pthread_mutex_lock(&vb->lock);
	unlink_free(q, vb);
	unlink_all(q, vb);
	pthread_mutex_unlock(&q->lock);
	retire(s, vb, true);
	return 0;

not_found:
	return -ENOENT;
}

/* ---- purging ---- */

/* Free every fragmented block: nothing live, not all dirty.  The purge
 * mutex may be held. */
void purge_fragmented_blocks(vmap_space *s)
{
	for (unsigned c = 0; c < s->nvbq; c++) {
		struct vbq *q = &s->vbq[c];
		struct vblock *vb, *next, *gone = NULL;

		pthread_mutex_lock(&q->lock);
		for (vb = q->free_head; vb; vb = next) {
			next = vb->free_next;
			pthread_mutex_lock(&vb->lock);
			if (vb->free + vb->dirty == s->block_pages &&
			    vb->dirty != s->block_pages) {
				vb->live = false;
				vb->free = 0;
				vb->dirty = (unsigned)s->block_pages;
				unlink_free(q, vb);
				unlink_all(q, vb);
				vb->free_next = gone;
				gone = vb;
			}
			pthread_mutex_unlock(&vb->lock);
		}
		pthread_mutex_unlock(&q->lock);
		for (vb = gone; vb; vb = next) {
			next = vb->free_next;
			pthread_mutex_lock(&vb->lock);
			retire(s, vb, false);
		}
	}
}

/* With the purge mutex held: a record for each live block's dirty range,
 * which is then forgotten (the kernel's 6.5 fix: flushed once is enough). */
struct va *collect_dirty(vmap_space *s, uint64_t *n)
{
	struct va *list = NULL;

	*n = 0;
	for (unsigned c = 0; c < s->nvbq; c++) {
		struct vbq *q = &s->vbq[c];

		pthread_mutex_lock(&q->lock);
		for (struct vblock *vb = q->all; vb; vb = vb->all_next) {
			struct va *r;

			pthread_mutex_lock(&vb->lock);
			if (vb->dirty_max > vb->dirty_min &&
			    (r = calloc(1, sizeof(*r)))) {
				r->start = vb->start +
					   ((uint64_t)vb->dirty_min << s->page_shift);
				r->end = vb->start +
					 ((uint64_t)vb->dirty_max << s->page_shift);
				r->flags = VA_DIRTY;
				r->next = list;
				list = r;
				++*n;
				vb->dirty_min = (unsigned)s->block_pages;
				vb->dirty_max = 0;
			}
			pthread_mutex_unlock(&vb->lock);
		}
		pthread_mutex_unlock(&q->lock);
	}
	return list;
}

/* ---- set-up, teardown, introspection ---- */

int vblocks_init(vmap_space *s, uint64_t block_pages)
{
	long cpus = sysconf(_SC_NPROCESSORS_CONF);

	s->block_pages = block_pages;
	s->nvbq = cpus > 0 ? (unsigned)cpus : 1;
	s->vbq = calloc(s->nvbq, sizeof(*s->vbq));
	if (!s->vbq)
		return -ENOMEM;
	for (unsigned c = 0; c < s->nvbq; c++)
		pthread_mutex_init(&s->vbq[c].lock, NULL);
	pthread_mutex_init(&s->vb_dead_lock, NULL);
	s->vb_dead = NULL;
	return 0;
}

void vblocks_fini(vmap_space *s)
{
	struct vblock *vb, *next;

	for (unsigned c = 0; c < s->nvbq; c++) {
		for (vb = s->vbq[c].all; vb; vb = next) {
			next = vb->all_next;
			pthread_mutex_destroy(&vb->lock);
			free(vb);
		}
		pthread_mutex_destroy(&s->vbq[c].lock);
	}
	for (vb = s->vb_dead; vb; vb = next) {
		next = vb->all_next;
		pthread_mutex_destroy(&vb->lock);
		free(vb);
	}
	pthread_mutex_destroy(&s->vb_dead_lock);
	free(s->vbq);
}

void vblocks_lock_all(vmap_space *s)
{
	for (unsigned c = 0; c < s->nvbq; c++)
		pthread_mutex_lock(&s->vbq[c].lock);
}

void vblocks_unlock_all(vmap_space *s)
{
	for (unsigned c = s->nvbq; c-- > 0;)
		pthread_mutex_unlock(&s->vbq[c].lock);
}

/* With every lock of the space held: each block consistent with its map,
 * its queue and the busy map. */
int __vblocks_validate(vmap_space *s, char *msg, size_t len)
{
	for (unsigned c = 0; c < s->nvbq; c++) {
		const struct vbq *q = &s->vbq[c];
		unsigned blocks = 0;

		for (struct vblock *vb = q->all; vb; vb = vb->all_next) {
			struct busy_shard *sh = busy_shard_of(&s->busy,
							      vb->start);
			struct va *va = __busy_find(sh, vb->start);
			unsigned live = 0, next = 0;

			pthread_mutex_lock(&vb->lock);
			for (unsigned i = 0; i < s->block_pages; i++)
				if (vb->map[i]) {
					live += 1u << (vb->map[i] - 1);
					next = i + (1u << (vb->map[i] - 1));
				}
			if (!vb->live || vb->cpu != c || !va ||
			    va->vb != vb || !(va->flags & VA_BLOCK) ||
			    live + vb->free + vb->dirty != s->block_pages ||
			    next > s->block_pages - vb->free ||
			    vb->on_free != (vb->free > 0) ||
			    vb->dirty == s->block_pages) {
				snprintf(msg, len,
					 "vmap block %#llx (cpu %u): live %u + "
					 "free %u + dirty %u != %llu pages, or "
					 "its queue or busy area is wrong",
					 (unsigned long long)vb->start, c, live,
					 vb->free, vb->dirty,
					 (unsigned long long)s->block_pages);
				pthread_mutex_unlock(&vb->lock);
				return -1;
			}
			pthread_mutex_unlock(&vb->lock);
			blocks++;
		}
		if (blocks != q->blocks) {
			snprintf(msg, len, "cpu %u: %u blocks listed, %u counted",
				 c, blocks, q->blocks);
			return -1;
		}
	}
	return 0;
}

void __vblocks_stats(vmap_space *s, unsigned cpu, struct vmap_stats *st)
{
	for (struct vblock *vb = s->vbq[cpu].all; vb; vb = vb->all_next) {
		pthread_mutex_lock(&vb->lock);
		st->blocks++;
		st->block_free_pages += vb->free;
		st->block_dirty_pages += vb->dirty;
		pthread_mutex_unlock(&vb->lock);
	}
}

int __vblocks_dump(vmap_space *s, FILE *f)
{
	for (unsigned c = 0; c < s->nvbq; c++) {
		unsigned n = 0, free = 0, dirty = 0;

		for (struct vblock *vb = s->vbq[c].all; vb; vb = vb->all_next) {
			pthread_mutex_lock(&vb->lock);
			n++;
			free += vb->free;
			dirty += vb->dirty;
			pthread_mutex_unlock(&vb->lock);
		}
		if (n && fprintf(f, "vmap blocks cpu %u: %u blocks, %u pages "
				    "free, %u dirty\n", c, n, free, dirty) < 0)
			return -EIO;
	}
	return 0;
}
