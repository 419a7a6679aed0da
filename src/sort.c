/* SPDX-License-Identifier: MIT */
/*
 * sort.c - sorting a purge's batch of lazy areas by address.
 *
 * The batch arrives as lists (every node's lazy list, and what a purge adds):
 * newest first, in no address order, its records scattered over the heap.  A merge sort of the list needs no memory,
 * but makes log2(n) passes over scattered records: for 100,000 areas it cost
 * 20 ms here, most of a purge.  So a batch of any size is copied once into an
 * array of (page index, record) pairs, sorted there by an LSD radix sort in
 * 11-bit digits (three passes for a space of up to 2^33 pages), and relinked.
 * The arrays belong to the space and grow to the largest batch seen; if they
 * cannot grow, the merge sort does the job instead.  Both are stable and
 * return the list sorted by start.  Called with the purge mutex held.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define DIGIT 11
#define RADIX (1u << DIGIT)
#define SMALL 256 /* below this many, the merge sort is as fast */

static struct va *merge(struct va *a, struct va *b)
{
	struct va *head = NULL, **tail = &head;

	while (a && b) {
		struct va **min = a->start < b->start ? &a : &b;

		*tail = *min;
		tail = &(*min)->next;
		*min = (*min)->next;
	}
	*tail = a ? a : b;
	return head;
}

/* Bottom-up: bin[i] holds a sorted run of 2^i records. */
static struct va *merge_sort(struct va *list)
{
	struct va *bin[64] = { NULL }, *run;
	int i, top = 0;

	while (list) {
		run = list;
		list = list->next;
		run->next = NULL;
		for (i = 0; bin[i]; i++) {
			run = merge(bin[i], run);
			bin[i] = NULL;
		}
		bin[i] = run;
		top = i > top ? i : top;
	}
	run = NULL;
	for (i = 0; i <= top; i++)
		run = merge(bin[i], run);
	return run;
}

static bool reserve(struct sortbuf *b, size_t n)
{
	struct sort_item *x, *y;

	if (n <= b->cap)
		return true;
	x = vm_malloc(n * sizeof(*x));
	y = vm_malloc(n * sizeof(*y));
	if (!x || !y) {
		free(x);
		free(y);
		return false;
	}
	free(b->a);
	free(b->b);
	b->a = x;
	b->b = y;
	b->cap = n;
	return true;
}

static struct va *radix_sort(struct sortbuf *buf, struct va **lists,
			     unsigned nl, const vmap_space *s, uint64_t *count)
{
	struct sort_item *src = buf->a, *dst = buf->b, *t;
	uint64_t top = (s->end - 1 - s->base) >> s->page_shift;
	size_t i, n = 0;

	for (unsigned l = 0; l < nl; l++)
		for (struct va *v = lists[l]; v; v = v->next, n++) {
			if (n == buf->cap) /* cannot happen; see batch_sort */
				return NULL;
			src[n].key = (v->start - s->base) >> s->page_shift;
			src[n].va = v;
		}
	if (!n)
		return NULL;
	for (unsigned shift = 0; shift < 64 && (top >> shift); shift += DIGIT) {
		size_t count[RADIX] = { 0 }, sum = 0;

		for (i = 0; i < n; i++)
			count[(src[i].key >> shift) & (RADIX - 1)]++;
		for (unsigned d = 0; d < RADIX; d++) {
			size_t c = count[d];

			count[d] = sum;
			sum += c;
		}
		for (i = 0; i < n; i++)
			dst[count[(src[i].key >> shift) & (RADIX - 1)]++] =
				src[i];
		t = src;
		src = dst;
		dst = t;
	}
	for (i = 0; i + 1 < n; i++)
		src[i].va->next = src[i + 1].va;
	src[n - 1].va->next = NULL;
	*count = n;
	return src[0].va;
}

struct va *batch_sort(vmap_space *s, struct va **lists, unsigned nl,
		      uint64_t extra, uint64_t *count)
{
	/* The lazy area counter (plus the `extra` records a purge added)
	 * bounds the lists' length without a walk: it counts every area
	 * pushed and not yet given back, these lists' included (a free
	 * counts before it publishes, and only purges, which hold the purge
	 * mutex as we do, uncount).  radix_sort checks the bound anyway and
	 * declines if it were ever wrong. */
	uint64_t most = atomic_load_explicit(&s->lazy.areas,
					     memory_order_relaxed) + extra;
	struct va *sorted, *list = NULL, **tail = &list;

	if (most >= SMALL && reserve(&s->sortbuf, most) &&
	    (sorted = radix_sort(&s->sortbuf, lists, nl, s, count)))
		return sorted;
	/* Few records (or no memory for the arrays): one list, counted as
	 * it is linked, and merge-sorted. */
	*count = 0;
	for (unsigned l = 0; l < nl; l++) {
		*tail = lists[l];
		for (; *tail; tail = &(*tail)->next)
			++*count;
	}
	return merge_sort(list);
}

void sortbuf_free(struct sortbuf *b)
{
	free(b->a);
	free(b->b);
	memset(b, 0, sizeof(*b));
}
