/* SPDX-License-Identifier: MIT */
/*
 * bench/peers/tlsf.c - Two-Level Segregated Fit (Masmano, Ripoll, Crespo and
 * Real, "TLSF: a new dynamic memory allocator for real-time systems", ECRTS
 * 2004), written from the paper's design (no code taken from anywhere), as an
 * address-range allocator:
 *
 *  - free blocks are kept in segregated lists: the first level by the
 *    power of two of the size (fl = floor(log2)), the second level splits
 *    each power of two into 32 equal parts (SLI = 5); sizes below 32 pages
 *    get one list each;
 *  - a 64-bit first-level bitmap and one 32-bit second-level bitmap per first
 *    level say which lists hold anything;
 *  - good fit: a request's size is rounded up to the next list boundary
 *    before mapping, so the head of the first non-empty list at or above it
 *    always fits -- two find-first-set operations, no walk;
 *  - immediate coalescing: a freed block merges with its physical
 *    neighbours at once.
 *
 * The paper keeps each block's header, with its boundary tag, inside the
 * managed memory.  Here the range is not memory (GPU addresses), so the
 * block records live in a side table: a pool of nodes, each block linked to
 * its physical neighbours by an address-ordered doubly linked list -- the
 * boundary tags' job -- and to the other free blocks of its list.
 *
 * Units are pages; sizes are 64-bit, so the first level runs to 59 (a space
 * of up to 2^64 pages).  Alignment as in offset.c: search for
 * size + align - 1 pages, give the pages before the aligned start back as a
 * free block -- no waste, but a block that would fit only when aligned
 * exactly can be passed over.
 *
 * The handle is the node's index in the pool, which grows by doubling.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "peer.h"

#define SLI 5
#define SL (1u << SLI)		/* second-level lists per first level */
#define FL (64 - SLI + 1)	/* first levels: 0 (small sizes) .. 59 */
#define NONE UINT32_MAX

struct block {
	uint64_t start, pages;	/* in pages (absolute: address >> 12) */
	uint32_t prev_phys, next_phys;
	uint32_t prev_free, next_free; /* also chains spare nodes */
	uint32_t free;
};

struct tlsf {
	uint64_t lo, hi;	/* the space, in pages */
	uint64_t fl_map;
	uint32_t sl_map[FL];
	uint32_t head[FL][SL];
	struct block *b;
	uint32_t cap, spare;
	uint64_t free_blocks;
};

/* The list a block of `pages` belongs to (mapping_insert in the paper). */
static void mapping(uint64_t pages, unsigned *fl, unsigned *sl)
{
	unsigned h;

	if (pages < SL) {
		*fl = 0;
		*sl = (unsigned)pages;
		return;
	}
	h = 63 - (unsigned)__builtin_clzll(pages);
	*fl = h - SLI + 1;
	*sl = (unsigned)(pages >> (h - SLI)) - SL;
}

/* Round a request up to the next list boundary (mapping_search), so every
 * block of the list it maps to is large enough.  0 if that overflows. */
static uint64_t round_up(uint64_t pages)
{
	uint64_t step;

	if (pages < SL)
		return pages;
	step = (1ull << (63 - __builtin_clzll(pages) - SLI)) - 1;
	return pages + step < pages ? 0 : (pages + step) & ~step;
}

static void list_insert(struct tlsf *t, uint32_t i)
{
	unsigned fl, sl;

	mapping(t->b[i].pages, &fl, &sl);
	t->b[i].free = 1;
	t->b[i].prev_free = NONE;
	t->b[i].next_free = t->head[fl][sl];
	if (t->head[fl][sl] != NONE)
		t->b[t->head[fl][sl]].prev_free = i;
	t->head[fl][sl] = i;
	t->sl_map[fl] |= 1u << sl;
	t->fl_map |= 1ull << fl;
	t->free_blocks++;
}

static void list_remove(struct tlsf *t, uint32_t i)
{
	struct block *b = &t->b[i];
	unsigned fl, sl;

	mapping(b->pages, &fl, &sl);
	if (b->prev_free != NONE)
		t->b[b->prev_free].next_free = b->next_free;
	else
		t->head[fl][sl] = b->next_free;
	if (b->next_free != NONE)
		t->b[b->next_free].prev_free = b->prev_free;
	if (t->head[fl][sl] == NONE) {
		t->sl_map[fl] &= ~(1u << sl);
		if (!t->sl_map[fl])
			t->fl_map &= ~(1ull << fl);
	}
	b->free = 0;
	t->free_blocks--;
}

/* The head of the first non-empty list at or above (fl, sl), or NONE. */
static uint32_t find_suitable(const struct tlsf *t, unsigned fl, unsigned sl)
{
	uint32_t sl_map = t->sl_map[fl] & (~0u << sl);
	uint64_t fl_map;

	if (!sl_map) {
		fl_map = fl + 1 < FL ? t->fl_map & (~0ull << (fl + 1)) : 0;
		if (!fl_map)
			return NONE;
		fl = (unsigned)__builtin_ctzll(fl_map);
		sl_map = t->sl_map[fl];
	}
	return t->head[fl][__builtin_ctz(sl_map)];
}

/* Make sure two spare nodes exist, so a split never fails half done. */
static int reserve2(struct tlsf *t)
{
	struct block *p;

	if (t->spare != NONE && t->b[t->spare].next_free != NONE)
		return 0;
	if (t->cap > NONE / 2)
		return -ENOMEM;
	p = realloc(t->b, 2 * (size_t)t->cap * sizeof(*p));
	if (!p)
		return -ENOMEM;
	t->b = p;
	for (uint32_t i = 2 * t->cap; i-- > t->cap;) {
		p[i].pages = 0;
		p[i].free = 0;
		p[i].next_free = t->spare;
		t->spare = i;
	}
	t->cap *= 2;
	return 0;
}

static uint32_t new_node(struct tlsf *t)
{
	uint32_t i = t->spare;

	t->spare = t->b[i].next_free;
	return i;
}

static void drop_node(struct tlsf *t, uint32_t i)
{
	t->b[i].pages = 0;
	t->b[i].free = 0;
	t->b[i].next_free = t->spare;
	t->spare = i;
}

/* Split block i at `pages`: the second part becomes a new block after it,
 * returned (not yet in any list). */
static uint32_t split(struct tlsf *t, uint32_t i, uint64_t pages)
{
	uint32_t k = new_node(t);
	struct block *b = &t->b[i], *n = &t->b[k];

	n->start = b->start + pages;
	n->pages = b->pages - pages;
	n->free = 0;
	n->prev_phys = i;
	n->next_phys = b->next_phys;
	if (b->next_phys != NONE)
		t->b[b->next_phys].prev_phys = k;
	b->next_phys = k;
	b->pages = pages;
	return k;
}

/* Absorb block k, the physical successor of i, into i. */
static void absorb(struct tlsf *t, uint32_t i, uint32_t k)
{
	struct block *b = &t->b[i], *n = &t->b[k];

	b->pages += n->pages;
	b->next_phys = n->next_phys;
	if (n->next_phys != NONE)
		t->b[n->next_phys].prev_phys = i;
	drop_node(t, k);
}

static void *tlsf_create(uint64_t base, uint64_t length)
{
	struct tlsf *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	t->cap = 1024;
	t->b = malloc(t->cap * sizeof(*t->b));
	if (!t->b) {
		free(t);
		return NULL;
	}
	for (unsigned f = 0; f < FL; f++)
		for (unsigned s = 0; s < SL; s++)
			t->head[f][s] = NONE;
	t->spare = NONE;
	for (uint32_t i = t->cap; i-- > 1;)
		drop_node(t, i);
	t->lo = base >> PEER_PAGE_SHIFT;
	t->hi = t->lo + (length >> PEER_PAGE_SHIFT);
	t->b[0] = (struct block){ .start = t->lo, .pages = t->hi - t->lo,
				  .prev_phys = NONE, .next_phys = NONE };
	list_insert(t, 0);
	return t;
}

static int tlsf_alloc(void *a, uint64_t size, uint64_t align, uint64_t *addr,
		      uint32_t *handle)
{
	struct tlsf *t = a;
	uint64_t pages = (size + PEER_PAGE - 1) >> PEER_PAGE_SHIFT;
	uint64_t al = align > PEER_PAGE ? align >> PEER_PAGE_SHIFT : 1;
	uint64_t want = round_up(pages + al - 1), pad;
	unsigned fl, sl;
	uint32_t i;

	if (!pages)
		return -EINVAL;
	if (!want)
		return -ENOSPC;
	mapping(want, &fl, &sl);
	i = find_suitable(t, fl, sl);
	if (i == NONE)
		return -ENOSPC;
	if (reserve2(t))
		return -ENOMEM;
	list_remove(t, i);
	pad = (al - (t->b[i].start & (al - 1))) & (al - 1);
	if (pad) {
		/* The pages before the aligned start stay free, as block i;
		 * the area is the new block after them. */
		uint32_t k = split(t, i, pad);

		list_insert(t, i);
		i = k;
	}
	if (t->b[i].pages > pages)
		list_insert(t, split(t, i, pages));
	*addr = t->b[i].start << PEER_PAGE_SHIFT;
	*handle = i;
	return 0;
}

static int tlsf_free(void *a, uint64_t addr, uint64_t size, uint32_t handle)
{
	struct tlsf *t = a;
	uint32_t i = handle, p, n;

	(void)size;
	if (i >= t->cap || t->b[i].free || !t->b[i].pages ||
	    t->b[i].start != addr >> PEER_PAGE_SHIFT)
		return -ENOENT;
	n = t->b[i].next_phys;
	if (n != NONE && t->b[n].free) {
		list_remove(t, n);
		absorb(t, i, n);
	}
	p = t->b[i].prev_phys;
	if (p != NONE && t->b[p].free) {
		list_remove(t, p);
		absorb(t, p, i);
		i = p;
	}
	list_insert(t, i);
	return 0;
}

static void tlsf_destroy(void *a)
{
	struct tlsf *t = a;

	free(t->b);
	free(t);
}

static void tlsf_stats(void *a, struct peer_stats *st)
{
	struct tlsf *t = a;

	st->meta_bytes = sizeof(*t) + (uint64_t)t->cap * sizeof(*t->b);
	st->free_ranges = t->free_blocks;
}

/* The blocks tile the space in physical order, free ones never touch, and
 * every free block is in the list its size maps to, with the bitmaps right. */
static int tlsf_check(void *a)
{
	struct tlsf *t = a;
	uint64_t at = t->lo, nfree = 0, listed = 0;
	uint32_t i = NONE, prev = NONE, steps = 0;

	for (uint32_t k = 0; k < t->cap; k++)
		if (t->b[k].pages && t->b[k].start == t->lo)
			i = k;
	for (; i != NONE; prev = i, i = t->b[i].next_phys) {
		const struct block *b = &t->b[i];

		if (b->start != at || !b->pages || b->prev_phys != prev ||
		    (b->free && prev != NONE && t->b[prev].free) ||
		    ++steps > t->cap) {
			fprintf(stderr, "tlsf: bad block %u at %#llx\n", i,
				(unsigned long long)at);
			return -1;
		}
		at += b->pages;
		nfree += b->free;
	}
	if (at != t->hi || nfree != t->free_blocks) {
		fprintf(stderr, "tlsf: blocks end at %#llx, %llu free\n",
			(unsigned long long)at, (unsigned long long)nfree);
		return -1;
	}
	for (unsigned f = 0; f < FL; f++) {
		if (!!t->sl_map[f] != (t->fl_map >> f & 1)) {
			fprintf(stderr, "tlsf: fl bitmap wrong at %u\n", f);
			return -1;
		}
		for (unsigned s = 0; s < SL; s++) {
			if (!!(t->sl_map[f] >> s & 1) !=
			    (t->head[f][s] != NONE)) {
				fprintf(stderr, "tlsf: sl bitmap wrong at "
					"%u/%u\n", f, s);
				return -1;
			}
			for (i = t->head[f][s]; i != NONE;
			     i = t->b[i].next_free) {
				unsigned mf, ms;

				mapping(t->b[i].pages, &mf, &ms);
				if (!t->b[i].free || mf != f || ms != s ||
				    ++listed > nfree) {
					fprintf(stderr, "tlsf: block %u in "
						"list %u/%u\n", i, f, s);
					return -1;
				}
			}
		}
	}
	if (listed != nfree) {
		fprintf(stderr, "tlsf: %llu of %llu free blocks listed\n",
			(unsigned long long)listed, (unsigned long long)nfree);
		return -1;
	}
	return 0;
}

const struct peer_ops tlsf_ops = {
	.name = "tlsf",
	.what = "TLSF: log2 x 32 segregated lists, 2-level bitmap, good fit, "
		"O(1)",
	.create = tlsf_create,
	.alloc = tlsf_alloc,
	.free = tlsf_free,
	.destroy = tlsf_destroy,
	.stats = tlsf_stats,
	.check = tlsf_check,
};
