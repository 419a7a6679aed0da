/* SPDX-License-Identifier: MIT */
/*
 * bench/peers/mesa.c - a GPU virtual-address heap in the style of Mesa's
 * util_vma_heap, written from its documented design (no code taken from it):
 *
 *  - the heap is a doubly linked list of free *holes*, sorted by address,
 *    one malloc'd record per hole; a live area has no record at all, so the
 *    caller gives its size back at free time;
 *  - allocation walks the holes from the top of the space down (Mesa's
 *    default, alloc_high) and takes the highest aligned address that fits
 *    in the first hole that can hold it -- exact alignment, no padding lost
 *    but what the alignment itself leaves;
 *  - free walks down from the top too, to the first hole below the freed
 *    range, inserts it there and merges it with the holes that touch it.
 *
 * Both walks are O(holes): cheap while the heap has few holes, very slow
 * once fragmentation leaves tens of thousands.  bench-alloc caps the time a
 * round may take and reports how many pairs this peer got through.
 * Mesa's nospan_shift (no area may cross a power-of-two boundary) is left
 * out: no workload asks for it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "peer.h"

struct hole {
	struct hole *prev, *next;	/* ascending addresses */
	uint64_t start, end;		/* bytes, [start, end) */
};

struct mesa_heap {
	struct hole head;	/* sentinel: next lowest, prev highest */
	uint64_t lo, hi, holes;
};

static void link_after(struct hole *at, struct hole *h)
{
	h->prev = at;
	h->next = at->next;
	at->next->prev = h;
	at->next = h;
}

static void unlink_hole(struct mesa_heap *m, struct hole *h)
{
	h->prev->next = h->next;
	h->next->prev = h->prev;
	free(h);
	m->holes--;
}

static void *mesa_create(uint64_t base, uint64_t length)
{
	struct mesa_heap *m = calloc(1, sizeof(*m));
	struct hole *h = malloc(sizeof(*h));

	if (!m || !h) {
		free(m);
		free(h);
		return NULL;
	}
	m->head.next = m->head.prev = &m->head;
	m->lo = base;
	m->hi = base + length;
	h->start = m->lo;
	h->end = m->hi;
	link_after(&m->head, h);
	m->holes = 1;
	return m;
}

static int mesa_alloc(void *a, uint64_t size, uint64_t align, uint64_t *addr,
		      uint32_t *handle)
{
	struct mesa_heap *m = a;
	uint64_t al = align > PEER_PAGE ? align : PEER_PAGE;

	size = (size + PEER_PAGE - 1) & ~(PEER_PAGE - 1);
	if (!size)
		return -EINVAL;
	for (struct hole *h = m->head.prev; h != &m->head; h = h->prev) {
		uint64_t at;

		if (h->end - h->start < size)
			continue;
		at = (h->end - size) & ~(al - 1);
		if (at < h->start)
			continue;
		if (at + size == h->end) {
			if (at == h->start)
				unlink_hole(m, h);
			else
				h->end = at;
		} else if (at == h->start) {
			h->start = at + size;
		} else {
			/* Alignment left a piece above the area: a new hole. */
			struct hole *up = malloc(sizeof(*up));

			if (!up)
				return -ENOMEM;
			up->start = at + size;
			up->end = h->end;
			h->end = at;
			link_after(h, up);
			m->holes++;
		}
		*addr = at;
		*handle = 0;
		return 0;
	}
	return -ENOSPC;
}

static int mesa_free(void *a, uint64_t addr, uint64_t size, uint32_t handle)
{
	struct mesa_heap *m = a;
	struct hole *below = m->head.prev, *above;
	uint64_t end;

	(void)handle;
	size = (size + PEER_PAGE - 1) & ~(PEER_PAGE - 1);
	end = addr + size;
	if (!size || addr < m->lo || end > m->hi || end < addr)
		return -EINVAL;
	while (below != &m->head && below->start > addr)
		below = below->prev;
	above = below->next;
	/* A range that overlaps a hole was not allocated: a double free. */
	if ((below != &m->head && below->end > addr) ||
	    (above != &m->head && above->start < end))
		return -ENOENT;
	if (below != &m->head && below->end == addr) {
		below->end = end;
		if (above != &m->head && above->start == end) {
			below->end = above->end;
			unlink_hole(m, above);
		}
	} else if (above != &m->head && above->start == end) {
		above->start = addr;
	} else {
		struct hole *h = malloc(sizeof(*h));

		if (!h)
			return -ENOMEM;
		h->start = addr;
		h->end = end;
		link_after(below, h);
		m->holes++;
	}
	return 0;
}

static void mesa_destroy(void *a)
{
	struct mesa_heap *m = a;

	while (m->head.next != &m->head)
		unlink_hole(m, m->head.next);
	free(m);
}

static void mesa_stats(void *a, struct peer_stats *st)
{
	struct mesa_heap *m = a;

	/* One malloc'd hole each; the heap's own chunk overhead is not
	 * counted here (bench-alloc's mallinfo2 figure has it). */
	st->meta_bytes = sizeof(*m) + m->holes * sizeof(struct hole);
	st->free_ranges = m->holes;
}

/* Holes sorted, inside the space, never empty, never touching. */
static int mesa_check(void *a)
{
	struct mesa_heap *m = a;
	uint64_t at = m->lo, n = 0;

	for (struct hole *h = m->head.next; h != &m->head; h = h->next) {
		if (h->next->prev != h || h->start >= h->end ||
		    h->start < at || (n && h->start == at) || h->end > m->hi) {
			fprintf(stderr, "mesa: bad hole [%#llx, %#llx)\n",
				(unsigned long long)h->start,
				(unsigned long long)h->end);
			return -1;
		}
		at = h->end;
		n++;
	}
	if (n != m->holes) {
		fprintf(stderr, "mesa: %llu holes, %llu counted\n",
			(unsigned long long)n, (unsigned long long)m->holes);
		return -1;
	}
	return 0;
}

const struct peer_ops mesa_ops = {
	.name = "mesa",
	.what = "util_vma_heap-style: address-sorted hole list, top-down first "
		"fit, O(holes)",
	.create = mesa_create,
	.alloc = mesa_alloc,
	.free = mesa_free,
	.destroy = mesa_destroy,
	.stats = mesa_stats,
	.check = mesa_check,
};
