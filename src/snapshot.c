/* SPDX-License-Identifier: MIT */
/*
 * snapshot.c - a list of ranges of a space, each with its state: what
 * vmap_check validates (all at once, every lock held: check.c), and what
 * vmap_walk and vmap_dump report (a chunk at a time: walk.c).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

const char *const snap_name[SN_NSTATES] = {
	"free",	 "busy",   "lazy",	"pool",	    "block",
	"quarantined", "cached", "in flight", "reserved", "absent", "cut",
};

/* Room for `more` items; walks make it before taking a lock, so that no
 * copy of a growing array, and no page fault, happens while one is held. */
int snap_room(struct snapshot *sn, size_t more)
{
	size_t cap = sn->cap ? sn->cap : 256;
	struct item *it;

	while (cap - sn->n < more)
		cap *= 2;
	if (cap == sn->cap)
		return 0;
	it = vm_realloc(sn->item, cap * sizeof(*it));
	if (!it)
		return -ENOMEM;
	/* Fault the new pages in now, not while a lock is held. */
	memset(it + sn->cap, 0, (cap - sn->cap) * sizeof(*it));
	sn->item = it;
	sn->cap = cap;
	return 0;
}

int snap_add(void *arg, const struct va *va)
{
	struct snapshot *sn = arg;
	enum snap_state st = sn->adding;

	/* A walk of part of the space keeps only what overlaps it. */
	if (va->end <= sn->lo || va->start >= sn->hi)
		return 0;
	if (sn->n == sn->cap && snap_room(sn, 1))
		return -ENOMEM;
	if (st == SN_BUSY && (va->flags & VA_LAZY))
		st = SN_LAZY; /* the legacy build keeps lazy areas in the map */
	else if (st == SN_BUSY && (va->flags & VA_BLOCK))
		st = SN_BLOCK;
	else if (st == SN_BUSY && (va->flags & VA_RESERVED))
		st = SN_RESERVED;
	sn->item[sn->n++] = (struct item){ va->start, va->end, st, va->flags };
	return 0;
}

static int by_start(const void *a, const void *b)
{
	const struct item *x = a, *y = b;

	if (x->start != y->start)
		return (x->start > y->start) - (x->start < y->start);
	return (x->end > y->end) - (x->end < y->end);
}

void snap_sort(struct snapshot *sn)
{
	if (sn->n)
		qsort(sn->item, sn->n, sizeof(*sn->item), by_start);
}
