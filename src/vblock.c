/* SPDX-License-Identifier: MIT */
/*
 * vblock.c - per-CPU vmap blocks: small areas (up to VMAP_RAM_MAX_PAGES) carved
 * from blocks, as the kernel's vm_map_ram does.
 *
 * A block is one area of the space, block_pages long and aligned to its size.
 * Each CPU has a queue of blocks; an allocation of n pages (rounded up to a
 * power of two, an "order") takes the next n pages of a block of the current
 * CPU's queue -- a bump, never a search, as in the kernel since 2015 -- under
 * that queue's lock, and the tree and its lock are not touched at all.
 *
 * A freed piece is not reused: it only widens the block's dirty range.  So
 * nothing needs flushing until the block goes: when every page is dirty, the
 * whole block goes onto the lazy list as one area.  A block with nothing live
 * but some pages never handed out is *fragmented*; a sync purge frees those
 * first (__purge_fragmented_blocks).  vmap_unmap_aliases flushes the dirty
 * ranges of the blocks that stay, together with the lazy list, in one flush,
 * and forgets them (they need no second flush).
 *
 * Finding a block from an address: blocks are size-aligned, so the address
 * rounded down is the block's start, and the busy map knows the area there
 * (flagged VA_BLOCK, pointing to its struct vblock).  A vblock, once made,
 * stays a vblock until the space is destroyed (retired ones are reused), so a
 * pointer read from the busy map can always be locked and checked.
 *
 * Locks: a block is protected by its queue's lock (the kernel needs a lock
 * per block because it walks the queue under RCU; we hold the queue's lock,
 * which only threads on that CPU, and frees of its pieces, ever take).  A
 * queue lock is never held while taking the purge mutex, the free lock or a
 * busy shard lock, except by vmap_check and vmap_dump, which take them last.
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
	return vb ? vb : vm_calloc(1, sizeof(*vb) + s->block_pages);
}

static void vblock_dead(vmap_space *s, struct vblock *vb)
{
	pthread_mutex_lock(&s->vb_dead_lock);
	vb->all_next = s->vb_dead;
	s->vb_dead = vb;
	pthread_mutex_unlock(&s->vb_dead_lock);
}

/* With q locked: make vb describe a fresh area at start with its first
 * piece (of 2^order pages) taken, and put it on q. */
static void __vblock_init(vmap_space *s, struct vbq *q, struct vblock *vb,
			  uint64_t start, unsigned cpu, unsigned pages)
{
	unsigned order = order_of(pages);

	atomic_store(&vb->start, start);
	atomic_store(&vb->cpu, cpu);
	vb->free = (unsigned)s->block_pages - (1u << order);
	vb->dirty = 0;
	vb->dirty_min = (unsigned)s->block_pages;
	vb->dirty_max = 0;
	vb->on_free = false;
	memset(vb->map, 0, s->block_pages);
	vb->map[0] = (uint8_t)pages;
	link_all(q, vb);
	if (vb->free)
		link_free(q, vb);
	atomic_store(&vb->live, true); /* last: find_locked checks it */
}

/* vb is off its queue and not live: give its area back (lazily, as one
 * area) and the struct to the dead list; returns the lazy pages (vm_free).
 * No queue lock is held. */
static uint64_t retire(vmap_space *s, struct vblock *vb)
{
	uint64_t lazy = 0;

	vm_free(s, atomic_load(&vb->start), FREE_BLOCK, 0, &lazy);
	vblock_dead(s, vb);
	vm_count(&s->blocks_freed, 1);
	return lazy;
}

/* With q locked: take vb out of service. */
static void __vblock_kill(struct vbq *q, struct vblock *vb)
{
	atomic_store(&vb->live, false);
	unlink_free(q, vb);
	unlink_all(q, vb);
}

/* ---- allocation ---- */

static unsigned this_cpu(const vmap_space *s)
{
	int cpu = sched_getcpu();

	return cpu < 0 ? 0 : (unsigned)cpu % s->nvbq;
}

void vb_fit(const vmap_space *s, struct fit *f)
{
	*f = (struct fit){ .size = s->block_pages << s->page_shift,
			   .align = s->block_pages << s->page_shift,
			   .lo = s->base, .hi = s->end };
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

		if (vb->free < n)
			continue;
		off = (unsigned)s->block_pages - vb->free;
		vb->free -= n;
		vb->map[off] = (uint8_t)pages;
		if (!vb->free)
			unlink_free(q, vb);
		*addr = atomic_load_explicit(&vb->start, memory_order_relaxed) +
			((uint64_t)off << s->page_shift);
		pthread_mutex_unlock(&q->lock);
		atomic_fetch_add_explicit(&q->allocs, 1, memory_order_relaxed);
		return 0;
	}
	pthread_mutex_unlock(&q->lock);

	/* A new block, its first piece ours (Roman Pen's second 2015 fix). */
	vb = vblock_new(s);
	if (!vb) {
		vm_count(&s->alloc_failures, 1);
		return -ENOMEM;
	}
	vb_fit(s, &f);
	err = vm_alloc(s, &f, VA_BLOCK | (s->memory ? VA_FILE : 0), vb, &a);
	if (err) {
		vblock_dead(s, vb); /* vm_alloc counted an -ENOMEM */
		return err;
	}
	pthread_mutex_lock(&q->lock);
	__vblock_init(s, q, vb, a, cpu, (unsigned)pages);
	pthread_mutex_unlock(&q->lock);
	atomic_fetch_add_explicit(&s->blocks_created, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&q->allocs, 1, memory_order_relaxed);
	*addr = a;
	return 0;
}

/* ---- free ---- */

/* The live block holding addr, with its queue locked (in *q); NULL if there
 * is none.  The vblock may be retired or reused at any moment until its queue
 * is locked, so it is checked again after: vblocks are never freed while the
 * space lives, so the pointer stays safe to look at. */
static struct vblock *find_locked(vmap_space *s, uint64_t addr,
				  struct vbq **qp)
{
	uint64_t bytes = s->block_pages << s->page_shift;
	uint64_t start = addr & ~(bytes - 1);
	struct busy_shard *sh = busy_shard_of(&s->busy, start);
	struct vblock *vb = NULL;
	struct va *va;
	unsigned cpu;

	pthread_mutex_lock(&sh->lock);
	va = __busy_find(sh, start);
	if (va && (va->flags & VA_BLOCK))
		vb = va->vb;
	pthread_mutex_unlock(&sh->lock);
	if (!vb)
		return NULL;
	cpu = atomic_load(&vb->cpu);
	*qp = &s->vbq[cpu];
	pthread_mutex_lock(&(*qp)->lock);
	if (atomic_load(&vb->live) && atomic_load(&vb->start) == start &&
	    atomic_load(&vb->cpu) == cpu)
		return vb;
	pthread_mutex_unlock(&(*qp)->lock);
	return NULL;
}

int vb_free(vmap_space *s, uint64_t addr, uint64_t pages, bool *undo,
	    uint64_t *lazy)
{
	unsigned order = order_of(pages), n = 1u << order, off;
	struct vbq *q;
	struct vblock *vb = find_locked(s, addr, &q);

	*lazy = 0;
	if (!vb)
		return -ENOENT;
	off = (unsigned)((addr - atomic_load(&vb->start)) >> s->page_shift);
	if ((addr & (s->page_size - 1)) || !vb->map[off]) {
		pthread_mutex_unlock(&q->lock);
		return -ENOENT;
	}
	if (vb->map[off] != pages) {
		/* The wrong count -- even one that takes the same slot, as
		 * 4 pages for a 3-page piece. */
		pthread_mutex_unlock(&q->lock);
		return -EINVAL;
	}
	vb->map[off] = 0;
	/* vmap_map_ram failing just after its allocation: if the piece is
	 * still the block's last, un-bump it rather than dirty it. */
	if (undo && off + n == s->block_pages - vb->free) {
		vb->free += n;
		if (!vb->on_free)
			link_free(q, vb);
		pthread_mutex_unlock(&q->lock);
		*undo = true;
		return 0;
	}
	vb->dirty += n;
	if (off < vb->dirty_min)
		vb->dirty_min = off;
	if (off + n > vb->dirty_max)
		vb->dirty_max = off + n;
	if (vb->dirty < s->block_pages) {
		pthread_mutex_unlock(&q->lock);
		atomic_fetch_add_explicit(&s->vbq[this_cpu(s)].frees, 1,
					  memory_order_relaxed);
		return 0;
	}
	/* All dirty: the block goes, as one lazy area. */
	__vblock_kill(q, vb);
	pthread_mutex_unlock(&q->lock);
	atomic_fetch_add_explicit(&s->vbq[this_cpu(s)].frees, 1,
				  memory_order_relaxed);
	*lazy = retire(s, vb);
	return 0;
}

bool vb_is_piece(vmap_space *s, uint64_t addr)
{
	struct vbq *q;
	struct vblock *vb = find_locked(s, addr, &q);
	bool piece;

	if (!vb)
		return false;
	piece = !(addr & (s->page_size - 1)) &&
		vb->map[(addr - atomic_load(&vb->start)) >> s->page_shift];
	pthread_mutex_unlock(&q->lock);
	return piece;
}

/* Take back the counts of a piece vmap_map_ram could not finish: its alloc,
 * and the free that returned it if that free was counted. */
void vb_uncount(vmap_space *s, bool freed)
{
	struct vbq *q = &s->vbq[this_cpu(s)];

	atomic_fetch_sub_explicit(&q->allocs, 1, memory_order_relaxed);
	if (freed)
		atomic_fetch_sub_explicit(&q->frees, 1, memory_order_relaxed);
}

/* ---- purging ---- */

/* Free every fragmented block: nothing live, not all dirty.  The purge that
 * follows (its caller holds the purge mutex) takes them. */
void __purge_fragmented_blocks(vmap_space *s)
{
	for (unsigned c = 0; c < s->nvbq; c++) {
		struct vbq *q = &s->vbq[c];
		struct vblock *vb, *next, *gone = NULL;

		pthread_mutex_lock(&q->lock);
		for (vb = q->free_head; vb; vb = next) {
			next = vb->free_next;
			if (vb->free + vb->dirty == s->block_pages &&
			    vb->dirty != s->block_pages) {
				__vblock_kill(q, vb);
				vb->free_next = gone;
				gone = vb;
			}
		}
		pthread_mutex_unlock(&q->lock);
		for (vb = gone; vb; vb = next) {
			next = vb->free_next;
			retire(s, vb);
		}
	}
}

/* With the purge mutex held, in a range space: a record for each live
 * block's dirty range, which is then forgotten (the kernel's 6.5 fix:
 * flushed once is enough).  The records are the blocks' own, so this cannot
 * run out of memory. */
struct va *__collect_dirty(vmap_space *s, uint64_t *n)
{
	struct va *list = NULL;

	*n = 0;
	for (unsigned c = 0; c < s->nvbq; c++) {
		struct vbq *q = &s->vbq[c];

		pthread_mutex_lock(&q->lock);
		for (struct vblock *vb = q->all; vb; vb = vb->all_next) {
			uint64_t start = atomic_load(&vb->start);
			struct va *r = &vb->flushing;

			if (vb->dirty_max <= vb->dirty_min)
				continue;
			r->start = start +
				   ((uint64_t)vb->dirty_min << s->page_shift);
			r->end = start +
				 ((uint64_t)vb->dirty_max << s->page_shift);
			r->flags = VA_DIRTY;
			r->next = list;
			list = r;
			++*n;
			vb->dirty_min = (unsigned)s->block_pages;
			vb->dirty_max = 0;
		}
		pthread_mutex_unlock(&q->lock);
	}
	return list;
}

/*
 * With vb's queue locked, in a memory space: turn every freed piece of the
 * dirty range back into plain reserved space, live pieces in between left
 * alone.  A freed vmap_map_ram piece still shows its file until then -- the
 * flush of a range space's dirty ranges has no counterpart here, since
 * MADV_DONTNEED would only drop the page table entries, and a stale write
 * would still reach the file.  Pieces are never reused before their block's
 * purge, so nothing can be handed out in between.
 */
static int __remap_freed(vmap_space *s, struct vblock *vb, uint64_t *calls)
{
	uint64_t start = atomic_load(&vb->start);
	unsigned i = vb->dirty_min, run;
	int err = 0;

	while (i < vb->dirty_max) {
		if (vb->map[i]) { /* a live piece: its whole slot */
			i += 1u << order_of(vb->map[i]);
			continue;
		}
		for (run = i; i < vb->dirty_max && !vb->map[i]; i++)
			;
		++*calls;
		if (memory_remap(s, start + ((uint64_t)run << s->page_shift),
				 (uint64_t)(i - run) << s->page_shift))
			err = -ENOMEM;
	}
	return err;
}

/* A memory space's vmap_unmap_aliases: every freed piece of every block
 * plain space again; a block's dirty range is forgotten once that worked
 * (its pages were released with it), kept for the next try if not.  The
 * queue lock is held across the remaps: only that CPU's allocations wait. */
int __remap_freed_pieces(vmap_space *s)
{
	uint64_t calls = 0;
	int err = 0;

	for (unsigned c = 0; c < s->nvbq; c++) {
		struct vbq *q = &s->vbq[c];

		pthread_mutex_lock(&q->lock);
		for (struct vblock *vb = q->all; vb; vb = vb->all_next) {
			if (vb->dirty_max <= vb->dirty_min)
				continue;
			if (__remap_freed(s, vb, &calls)) {
				err = -ENOMEM;
				continue;
			}
			vb->dirty_min = (unsigned)s->block_pages;
			vb->dirty_max = 0;
		}
		pthread_mutex_unlock(&q->lock);
	}
	atomic_fetch_add_explicit(&s->release_syscalls, calls,
				  memory_order_relaxed);
	return err;
}

/* ---- set-up, teardown, introspection ---- */

int vblocks_init(vmap_space *s, uint64_t block_pages)
{
	long cpus = sysconf(_SC_NPROCESSORS_CONF);

	s->block_pages = block_pages;
	s->nvbq = cpus > 0 ? (unsigned)cpus : 1;
	s->vbq = vm_calloc(s->nvbq, sizeof(*s->vbq));
	if (!s->vbq)
		return -ENOMEM;
	for (unsigned c = 0; c < s->nvbq; c++) {
		pthread_mutex_init(&s->vbq[c].lock, NULL);
		atomic_init(&s->vbq[c].allocs, 0);
		atomic_init(&s->vbq[c].frees, 0);
	}
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
			free(vb);
		}
		pthread_mutex_destroy(&s->vbq[c].lock);
	}
	for (vb = s->vb_dead; vb; vb = next) {
		next = vb->all_next;
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

/* Every live piece's count is 1..VMAP_RAM_MAX_PAGES and its slot inside the
 * block, and slots do not overlap. */
static bool map_ok(const uint8_t *map, uint64_t block_pages)
{
	for (uint64_t i = 0; i < block_pages;) {
		unsigned slot;

		if (!map[i]) {
			i++;
			continue;
		}
		if (map[i] > VMAP_RAM_MAX_PAGES)
			return false;
		slot = 1u << order_of(map[i]);
		for (unsigned k = 1; k < slot; k++)
			if (i + k >= block_pages || map[i + k])
				return false;
		i += slot;
	}
	return true;
}

/* With every lock of the space held: each block consistent with its map,
 * its queue and the busy map. */
int __vblocks_validate(vmap_space *s, char *msg, size_t len)
{
	for (unsigned c = 0; c < s->nvbq; c++) {
		const struct vbq *q = &s->vbq[c];
		unsigned blocks = 0;

		for (struct vblock *vb = q->all; vb; vb = vb->all_next) {
			uint64_t start = atomic_load(&vb->start);
			struct va *va = __busy_find(busy_shard_of(&s->busy,
								  start),
						    start);
			unsigned live = 0, next = 0;

			for (unsigned i = 0; i < s->block_pages; i++)
				if (vb->map[i]) {
					unsigned slot = 1u << order_of(vb->map[i]);

					live += slot;
					next = i + slot;
				}
			if (!atomic_load(&vb->live) ||
			    atomic_load(&vb->cpu) != c || !va ||
			    va->vb != vb || !(va->flags & VA_BLOCK) ||
			    live + vb->free + vb->dirty != s->block_pages ||
			    next > s->block_pages - vb->free ||
			    vb->on_free != (vb->free > 0) ||
			    !map_ok(vb->map, s->block_pages) ||
			    vb->dirty == s->block_pages) {
				snprintf(msg, len,
					 "vmap block %#llx (cpu %u): live %u + "
					 "free %u + dirty %u != %llu pages, or "
					 "its queue or busy area is wrong",
					 (unsigned long long)start, c, live,
					 vb->free, vb->dirty,
					 (unsigned long long)s->block_pages);
				return -1;
			}
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
	st->allocs += atomic_load_explicit(&s->vbq[cpu].allocs,
					   memory_order_relaxed);
	st->frees += atomic_load_explicit(&s->vbq[cpu].frees,
					  memory_order_relaxed);
	for (struct vblock *vb = s->vbq[cpu].all; vb; vb = vb->all_next) {
		st->blocks++;
		st->block_free_pages += vb->free;
		st->block_dirty_pages += vb->dirty;
	}
}
