/* SPDX-License-Identifier: MIT */
/*
 * span.c - a space's spans: the parts of its range that are address space.
 *
 * A heap that gets its address ranges over time -- vmem_add, a driver
 * adding a carve-out -- creates its space with VMAP_SPACE_EMPTY over the
 * whole range it may ever use, and adds spans of it with vmap_space_add;
 * a space without the flag has one span, its whole range.  The range stays
 * fixed (so every bound check stays a read of two immutable fields); what a
 * span adds is free space.  Outside the spans, the range is absent: never
 * free, never handed out, reported by nothing but vmap_check and vmap_dump.
 *
 * Spans may touch.  Where two meet, the free tree gets a cut: blocks on
 * either side never merge (ft_insert, and the purge's runs), so no free
 * block -- and so no area -- ever crosses from one span into another, as in
 * vmem, where segments never span two spans.
 */
#include <errno.h>
#include <stdlib.h>

#include "internal.h"

void spans_init(vmap_space *s, bool empty)
{
	s->spans = NULL;
	s->nspans = 0;
	s->cuts = NULL;
	s->span_bytes = empty ? 0 : s->end - s->base;
	s->whole = !empty;
}

void spans_fini(vmap_space *s)
{
	free(s->spans);
	free(s->cuts);
}

/* Free lock held: the span holding addr, or NULL. */
static const struct vmap_range *__span_at(const vmap_space *s, uint64_t addr)
{
	size_t lo = 0, hi = s->nspans;

	while (lo < hi) { /* the first span starting after addr */
		size_t mid = lo + (hi - lo) / 2;

		if (s->spans[mid].start <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo && s->spans[lo - 1].end > addr ? &s->spans[lo - 1] : NULL;
}

int __span_check(const vmap_space *s, uint64_t lo, uint64_t hi)
{
	const struct vmap_range *sp;

	if (s->whole)
		return 0;
	sp = __span_at(s, lo);
	return sp && hi <= sp->end ? 0 : -ERANGE;
}

int __spans_walk_absent(const vmap_space *s,
			int (*fn)(void *, const struct va *), void *arg)
{
	uint64_t at = s->base;
	struct va gap = { 0 };
	int err = 0;

	if (s->whole)
		return 0;
	for (size_t i = 0; i <= s->nspans && !err; i++) {
		uint64_t next = i < s->nspans ? s->spans[i].start : s->end;

		if (next > at) {
			gap.start = at;
			gap.end = next;
			err = fn(arg, &gap);
		}
		if (i < s->nspans)
			at = s->spans[i].end;
	}
	return err;
}

int __spans_walk_cuts(const vmap_space *s,
		      int (*fn)(void *, const struct va *), void *arg)
{
	struct va cut = { 0 };
	int err = 0;

	for (size_t i = 0; i < s->free.ncuts && !err; i++) {
		cut.start = cut.end = s->cuts[i];
		err = fn(arg, &cut);
	}
	return err;
}

int vmap_space_add(vmap_space *s, uint64_t start, uint64_t length)
{
	struct vmap_range *spans, *old_spans;
	uint64_t *cuts, *old_cuts, end = start + length;
	struct va *rec, *extra;
	size_t i, n, k;

	if (!s || s->whole || !length ||
	    ((start | length) & (s->page_size - 1)) ||
	    length - 1 > UINT64_MAX - start)
		return -EINVAL;
	/* Ending at 2^64 (end 0) is past every space's end. */
	if (start < s->base || !end || end > s->end)
		return -ERANGE;
	if (va_get(s, &rec, 1))
		return -ENOMEM;
	/* New arrays before the lock: no allocation while it is held. */
	pthread_mutex_lock(&s->free_lock);
	n = s->nspans;
	pthread_mutex_unlock(&s->free_lock);
	for (;;) {
		spans = vm_malloc((n + 1) * sizeof(*spans));
		cuts = vm_malloc((n + 1) * sizeof(*cuts));
		if (!spans || !cuts) {
			free(spans);
			free(cuts);
			va_put(s, rec);
			return -ENOMEM;
		}
		pthread_mutex_lock(&s->free_lock);
		if (s->nspans == n)
			break;
		/* Another span came meanwhile: arrays of the new size. */
		n = s->nspans;
		pthread_mutex_unlock(&s->free_lock);
		free(spans);
		free(cuts);
	}
	for (i = 0; i < n && s->spans[i].end <= start; i++)
		;
	if (i < n && s->spans[i].start < end) {
		pthread_mutex_unlock(&s->free_lock);
		free(spans);
		free(cuts);
		va_put(s, rec);
		return -EEXIST;
	}
	for (k = 0; k < i; k++)
		spans[k] = s->spans[k];
	spans[i] = (struct vmap_range){ start, end };
	for (k = i; k < n; k++)
		spans[k + 1] = s->spans[k];
	/* A cut wherever two spans touch. */
	for (k = 0, n = 0; k + 1 < s->nspans + 1; k++)
		if (spans[k].end == spans[k + 1].start)
			cuts[n++] = spans[k].end;
	old_spans = s->spans;
	old_cuts = s->cuts;
	s->spans = spans;
	s->nspans++;
	s->cuts = cuts;
	s->free.cuts = cuts;
	s->free.ncuts = n;
	s->span_bytes += length;
	extra = ft_insert(&s->free, start, end, &rec);
	pthread_mutex_unlock(&s->free_lock);
	free(old_spans);
	free(old_cuts);
	va_put(s, rec);
	va_put(s, extra);
	return 0;
}
