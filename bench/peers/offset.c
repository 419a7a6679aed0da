/* SPDX-License-Identifier: MIT */
/*
 * bench/peers/offset.c - an O(1) two-level bin allocator in the style of
 * Sebastian Aaltonen's OffsetAllocator, written from its published design
 * (no code taken from it):
 *
 *  - a free range's size is mapped to one of 256 bins by a small floating-
 *    point encoding, 5 bits of exponent and 3 of mantissa, so each power of
 *    two is split into 8 bins (sizes below 8 pages get a bin each);
 *  - a 32-bit top bitmap says which groups of 8 bins hold anything, one 8-bit
 *    leaf bitmap per group which of its bins do: the first non-empty bin at
 *    or above a given one is two count-trailing-zeros away;
 *  - a free range goes into the bin of its size rounded *down* (every range
 *    in bin b is at least bin b's size); a request looks from the bin of its
 *    size rounded *up*, so the head of any bin it finds fits, no list walk;
 *  - every range, free or used, is a node in one pool, linked to its
 *    neighbours in address order; a free merges the node with free
 *    neighbours at once, so two free ranges never touch.
 *
 * Units are pages of PEER_PAGE bytes, as 64-bit numbers (OffsetAllocator's
 * are 32-bit, which would cap a space at 16 TiB of pages; the benchmark's
 * GPU space is 128 TiB).  Sizes past the last bin's (15 << 30 pages) all go
 * into bin 255.
 *
 * Alignment, which OffsetAllocator does not have: the search asks for
 * size + align - 1 pages, so whichever range it finds can hold an aligned
 * area; the pages before the aligned start go back as a free range of their
 * own.  Nothing is wasted, but a request can fail while a range that would
 * fit when aligned exists, if that range is shorter than size + align - 1.
 *
 * The handle is the node's index; the pool grows by doubling (indices stay
 * valid) and unused nodes are chained through bin_next.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "peer.h"

#define BINS 256
#define NONE UINT32_MAX

struct node {
	uint64_t start, pages;	  /* in pages (absolute: address >> 12) */
	uint32_t bin_prev, bin_next; /* free nodes of one bin; spare nodes */
	uint32_t prev, next;	  /* neighbours in address order */
	uint32_t used;
};

struct offset_alloc {
	uint64_t lo, hi;	/* the space, in pages */
	uint32_t top;		/* bit g: leaf[g] != 0 */
	uint8_t leaf[BINS / 8];	/* bit i of leaf[g]: bin 8g + i used */
	uint32_t head[BINS];
	struct node *node;
	uint32_t cap, spare;	/* pool size; first unused node */
	uint64_t free_ranges;
};

/* The bin whose smallest size is the largest not above `pages`. */
static unsigned bin_down(uint64_t pages)
{
	unsigned h, b;

	if (pages < 8)
		return (unsigned)pages;	/* exact, like denormals */
	h = 63 - (unsigned)__builtin_clzll(pages); /* highest bit, >= 3 */
	b = (h - 2) * 8 + (unsigned)((pages >> (h - 3)) & 7);
	return b < BINS ? b : BINS - 1;
}

/* The smallest bin whose every size is at least `pages`; BINS if none. */
static unsigned bin_up(uint64_t pages)
{
	unsigned h, b;

	if (pages < 8)
		return (unsigned)pages;
	h = 63 - (unsigned)__builtin_clzll(pages);
	b = (h - 2) * 8 + (unsigned)((pages >> (h - 3)) & 7);
	if (pages & ((1ull << (h - 3)) - 1))
		b++;	/* at mantissa 7, carries into the next exponent */
	return b < BINS ? b : BINS;
}

/* The smallest size bin b holds (for the check). */
static uint64_t bin_size(unsigned b)
{
	return b < 8 ? b : (uint64_t)(8 + (b & 7)) << ((b >> 3) - 1);
}

static void bin_insert(struct offset_alloc *o, uint32_t i)
{
	unsigned b = bin_down(o->node[i].pages);

	o->node[i].bin_prev = NONE;
	o->node[i].bin_next = o->head[b];
	if (o->head[b] != NONE)
		o->node[o->head[b]].bin_prev = i;
	o->head[b] = i;
	o->leaf[b / 8] |= (uint8_t)(1u << (b % 8));
	o->top |= 1u << (b / 8);
	o->free_ranges++;
}

static void bin_remove(struct offset_alloc *o, uint32_t i)
{
	struct node *n = &o->node[i];
	unsigned b = bin_down(n->pages);

	if (n->bin_prev != NONE)
		o->node[n->bin_prev].bin_next = n->bin_next;
	else
		o->head[b] = n->bin_next;
	if (n->bin_next != NONE)
		o->node[n->bin_next].bin_prev = n->bin_prev;
	if (o->head[b] == NONE) {
		o->leaf[b / 8] &= (uint8_t)~(1u << (b % 8));
		if (!o->leaf[b / 8])
			o->top &= ~(1u << (b / 8));
	}
	o->free_ranges--;
}

/* The first non-empty bin at or above b, or BINS. */
static unsigned bin_find(const struct offset_alloc *o, unsigned b)
{
	unsigned g = b / 8, leaf = o->leaf[g] & (0xffu << (b % 8));
	uint32_t top;

	if (leaf)
		return g * 8 + (unsigned)__builtin_ctz(leaf);
	top = g + 1 < 32 ? o->top & (~0u << (g + 1)) : 0;
	if (!top)
		return BINS;
	g = (unsigned)__builtin_ctz(top);
	return g * 8 + (unsigned)__builtin_ctz(o->leaf[g]);
}

/* Make sure `k` spare nodes exist, so a split never fails half done. */
static int reserve(struct offset_alloc *o, unsigned k)
{
	uint32_t i, n = 0;
	struct node *p;

	for (i = o->spare; i != NONE && n < k; i = o->node[i].bin_next)
		n++;
	if (n >= k)
		return 0;
	if (o->cap > NONE / 2)
		return -ENOMEM;
	p = realloc(o->node, 2 * (size_t)o->cap * sizeof(*p));
	if (!p)
		return -ENOMEM;
	o->node = p;
	for (i = 2 * o->cap; i-- > o->cap;) {
		p[i].used = 0;
		p[i].pages = 0;
		p[i].bin_next = o->spare;
		o->spare = i;
	}
	o->cap *= 2;
	return 0;
}

static uint32_t take_spare(struct offset_alloc *o)
{
	uint32_t i = o->spare;

	o->spare = o->node[i].bin_next;
	return i;
}

static void put_spare(struct offset_alloc *o, uint32_t i)
{
	o->node[i].pages = 0;
	o->node[i].bin_next = o->spare;
	o->spare = i;
}

/* Cut node i's first `pages` into a new free node before it. */
static void split_front(struct offset_alloc *o, uint32_t i, uint64_t pages)
{
	uint32_t f = take_spare(o);
	struct node *n = &o->node[i], *m = &o->node[f];

	m->start = n->start;
	m->pages = pages;
	m->used = 0;
	m->prev = n->prev;
	m->next = i;
	if (n->prev != NONE)
		o->node[n->prev].next = f;
	n->prev = f;
	n->start += pages;
	n->pages -= pages;
	bin_insert(o, f);
}

/* Cut node i down to `pages`; the rest becomes a new free node after it. */
static void split_back(struct offset_alloc *o, uint32_t i, uint64_t pages)
{
	uint32_t f = take_spare(o);
	struct node *n = &o->node[i], *m = &o->node[f];

	m->start = n->start + pages;
	m->pages = n->pages - pages;
	m->used = 0;
	m->prev = i;
	m->next = n->next;
	if (n->next != NONE)
		o->node[n->next].prev = f;
	n->next = f;
	n->pages = pages;
	bin_insert(o, f);
}

static void *offset_create(uint64_t base, uint64_t length)
{
	struct offset_alloc *o = calloc(1, sizeof(*o));

	if (!o)
		return NULL;
	o->cap = 1024;
	o->node = malloc(o->cap * sizeof(*o->node));
	if (!o->node) {
		free(o);
		return NULL;
	}
	o->lo = base >> PEER_PAGE_SHIFT;
	o->hi = o->lo + (length >> PEER_PAGE_SHIFT);
	for (unsigned b = 0; b < BINS; b++)
		o->head[b] = NONE;
	o->spare = NONE;
	for (uint32_t i = o->cap; i-- > 1;) {
		o->node[i].used = 0;
		o->node[i].pages = 0;
		o->node[i].bin_next = o->spare;
		o->spare = i;
	}
	o->node[0] = (struct node){ .start = o->lo, .pages = o->hi - o->lo,
				    .prev = NONE, .next = NONE };
	bin_insert(o, 0);
	return o;
}

static int offset_alloc(void *a, uint64_t size, uint64_t align, uint64_t *addr,
			uint32_t *handle)
{
	struct offset_alloc *o = a;
	uint64_t pages = (size + PEER_PAGE - 1) >> PEER_PAGE_SHIFT;
	uint64_t al = align > PEER_PAGE ? align >> PEER_PAGE_SHIFT : 1;
	uint64_t pad;
	unsigned b;
	uint32_t i;

	if (!pages)
		return -EINVAL;
	b = bin_up(pages + al - 1);
	if (b >= BINS || (b = bin_find(o, b)) >= BINS)
		return -ENOSPC;
	if (reserve(o, 2))
		return -ENOMEM;
	i = o->head[b];
	bin_remove(o, i);
	pad = (al - (o->node[i].start & (al - 1))) & (al - 1);
	if (pad)
		split_front(o, i, pad);
	if (o->node[i].pages > pages)
		split_back(o, i, pages);
	o->node[i].used = 1;
	*addr = o->node[i].start << PEER_PAGE_SHIFT;
	*handle = i;
	return 0;
}

static int offset_free(void *a, uint64_t addr, uint64_t size, uint32_t handle)
{
	struct offset_alloc *o = a;
	struct node *n;
	uint32_t p, q;

	(void)size;
	if (handle >= o->cap || !o->node[handle].used ||
	    o->node[handle].start != addr >> PEER_PAGE_SHIFT)
		return -ENOENT;
	n = &o->node[handle];
	n->used = 0;
	p = n->prev;
	if (p != NONE && !o->node[p].used) {
		bin_remove(o, p);
		n->start = o->node[p].start;
		n->pages += o->node[p].pages;
		n->prev = o->node[p].prev;
		if (n->prev != NONE)
			o->node[n->prev].next = handle;
		put_spare(o, p);
	}
	q = n->next;
	if (q != NONE && !o->node[q].used) {
		bin_remove(o, q);
		n->pages += o->node[q].pages;
		n->next = o->node[q].next;
		if (n->next != NONE)
			o->node[n->next].prev = handle;
		put_spare(o, q);
	}
	bin_insert(o, handle);
	return 0;
}

static void offset_destroy(void *a)
{
	struct offset_alloc *o = a;

	free(o->node);
	free(o);
}

static void offset_stats(void *a, struct peer_stats *st)
{
	struct offset_alloc *o = a;

	st->meta_bytes = sizeof(*o) + (uint64_t)o->cap * sizeof(*o->node);
	st->free_ranges = o->free_ranges;
}

/* Walk the address list from the node at the space's start: the nodes tile
 * the space, free ones never touch, and each is in its bin, whose bitmap bits
 * are right. */
static int offset_check(void *a)
{
	struct offset_alloc *o = a;
	uint64_t at = o->lo, nfree = 0, inbins = 0;
	uint32_t i = NONE, prev = NONE, steps = 0;

	for (uint32_t k = 0; k < o->cap; k++)
		if (o->node[k].pages && o->node[k].start == o->lo)
			i = k;
	for (; i != NONE; prev = i, i = o->node[i].next) {
		const struct node *n = &o->node[i];

		if (n->start != at || !n->pages || n->prev != prev ||
		    (!n->used && prev != NONE && !o->node[prev].used) ||
		    ++steps > o->cap) {
			fprintf(stderr, "offset: bad node %u at %#llx\n", i,
				(unsigned long long)at);
			return -1;
		}
		at += n->pages;
		nfree += !n->used;
	}
	if (at != o->hi || nfree != o->free_ranges) {
		fprintf(stderr, "offset: nodes end at %#llx, %llu free\n",
			(unsigned long long)at, (unsigned long long)nfree);
		return -1;
	}
	for (unsigned b = 0; b < BINS; b++) {
		int bit = o->leaf[b / 8] >> (b % 8) & 1;

		if (bit != (o->head[b] != NONE) ||
		    (o->leaf[b / 8] != 0) != (o->top >> (b / 8) & 1)) {
			fprintf(stderr, "offset: bitmaps wrong at bin %u\n", b);
			return -1;
		}
		for (i = o->head[b]; i != NONE; i = o->node[i].bin_next) {
			const struct node *n = &o->node[i];

			if (n->used || bin_down(n->pages) != b ||
			    n->pages < bin_size(b) || ++inbins > nfree) {
				fprintf(stderr, "offset: node %u in bin %u\n",
					i, b);
				return -1;
			}
		}
	}
	if (inbins != nfree) {
		fprintf(stderr, "offset: %llu of %llu free nodes in bins\n",
			(unsigned long long)inbins, (unsigned long long)nfree);
		return -1;
	}
	return 0;
}

const struct peer_ops offset_ops = {
	.name = "offset",
	.what = "OffsetAllocator-style: 256 small-float bins, 2-level bitmap, "
		"O(1)",
	.create = offset_create,
	.alloc = offset_alloc,
	.free = offset_free,
	.destroy = offset_destroy,
	.stats = offset_stats,
	.check = offset_check,
};
