/* SPDX-License-Identifier: MIT */
/*
 * check.c - is the trace consistent with itself?
 *
 * Before anything is replayed, the kernel's side is replayed on a plain
 * interval set: every allocation must land where nothing lives, every free
 * must name a live area's start, and every purge must release areas that
 * were freed.  The pass also works out what the replay needs and the trace
 * does not say outright:
 *   - the size of each free (the event names only the address);
 *   - which purges the lazy threshold asked for and which the kernel made
 *     for another reason (vm_unmap_aliases, an allocation's retry): the
 *     replay leaves the first kind to vmap's own policy and calls
 *     vmap_purge for the second;
 *   - in a raw dump (no snapshot), the areas older than the trace: a free
 *     of an unknown address that overlaps nothing is such an area, its size
 *     told by how much nr_lazy grew; and the pages lazy before the trace
 *     began (nr_lazy at the first free, less what the trace knows).
 * The kernel writes a purge's event after giving its areas back, and a
 * free's after queueing the area, so on another CPU an allocation may reuse
 * a purged area before the purge's event, and a purge may take an area
 * whose free is traced after it.  Both are put right and counted
 * (reordered, purge_slack); anything past that is an error.
 */
#include <search.h>
#include <stdlib.h>
#include <string.h>

#include "trace.h"

/* A purge may take at most this many areas more than the trace freed
 * (frees traced after the purge): a few per CPU. */
#define SLACK_PER_CPU 8
/* A raw dump's areas lazy before it began: the kernel's own bound on lazy
 * pages (lazy_max_pages) is 32 MiB of pages per log2 CPU, some 2^20 pages
 * on 4096 CPUs; more is no kernel's. */
#define PHANTOM_MAX (1ull << 24)

#define NO_EVENT SIZE_MAX

struct area {
	uint64_t start, end;
	uint64_t line;		/* where it was allocated, or freed */
	size_t ev;		/* lazy: the index of its free event, or
				   NO_EVENT (lazy in the snapshot) */
	bool lazy;
};

struct state {
	struct trace *t;
	void *live;		/* tsearch tree of struct area, by range */
	struct area **queue;	/* lazy areas in the order they were freed */
	size_t qhead, qtail, qcap;
	uint64_t lazy_pages;	/* of the areas in queue */
	int64_t offset;		/* nr_lazy less lazy_pages: pages lazy that
				   the trace does not know of */
	bool offset_known, seen_purge;
	bool over_threshold;	/* a free passed nr_lazy_max since the last
				   purge: the kernel queued its drain work */
	bool rerun;		/* the last event was a threshold purge: a
				   free that queued the drain again while it
				   ran makes the next purge a re-run */
	uint64_t mode_size;	/* the commonest allocation size (guesses) */
};

/* Ranges compare equal when they overlap: the tree's ranges never do. */
static int cmp(const void *a, const void *b)
{
	const struct area *x = a, *y = b;

	if (x->end <= y->start)
		return -1;
	if (y->end <= x->start)
		return 1;
	return 0;
}

static struct area *find(struct state *st, uint64_t start, uint64_t end)
{
	struct area key = { .start = start, .end = end };
	void *n = tfind(&key, &st->live, cmp);

	return n ? *(struct area **)n : NULL;
}

static int add(struct state *st, uint64_t start, uint64_t end,
	       uint64_t line, struct area **out)
{
	struct area *a = malloc(sizeof(*a)), **n = NULL;

	if (a)
		*a = (struct area){ .start = start, .end = end, .line = line };
	if (!a || !(n = tsearch(a, &st->live, cmp)) || *n != a) {
		free(a);	/* callers look first: an overlap is a bug */
		return trace_error(st->t, line, n ? "overlapping areas" :
				   "out of memory");
	}
	if (out)
		*out = a;
	return 0;
}

static void drop(struct state *st, struct area *a)
{
	tdelete(a, &st->live, cmp);
	free(a);
}

static uint64_t pages(const struct state *st, uint64_t bytes)
{
	return bytes / st->t->page_size;
}

static int make_lazy(struct state *st, struct area *a, uint64_t line)
{
	if (st->qtail == st->qcap && st->qhead) {
		/* The head moves forward with every purge: compact first. */
		memmove(st->queue, st->queue + st->qhead,
			(st->qtail - st->qhead) * sizeof(*st->queue));
		st->qtail -= st->qhead;
		st->qhead = 0;
	}
	if (st->qtail == st->qcap) {
		size_t cap = st->qcap ? 2 * st->qcap : 1024;
		struct area **q = realloc(st->queue, cap * sizeof(*q));

		if (!q)
			return trace_error(st->t, line, "out of memory");
		st->queue = q;
		st->qcap = cap;
	}
	a->lazy = true;
	a->line = line;
	st->queue[st->qtail++] = a;
	st->lazy_pages += pages(st, a->end - a->start);
	return 0;
}

/* Release the oldest n lazy areas (a purge). */
static void release(struct state *st, uint64_t n)
{
	while (n-- && st->qhead < st->qtail) {
		struct area *a = st->queue[st->qhead++];

		st->lazy_pages -= pages(st, a->end - a->start);
		drop(st, a);
	}
}

/* Move event `from` to position `to` (to < from), the ones between one
 * place later; the lazy areas freed by those keep their indices right. */
static void move_back(struct state *st, size_t from, size_t to)
{
	struct trace *t = st->t;
	struct ev e = t->ev[from];

	memmove(&t->ev[to + 1], &t->ev[to], (from - to) * sizeof(e));
	t->ev[to] = e;
	for (size_t q = st->qhead; q < st->qtail; q++)
		if (st->queue[q]->ev >= to && st->queue[q]->ev < from)
			st->queue[q]->ev++;
}

/* The next n frees of busy areas after the purge at i, moved before it:
 * the purge took them before their events were written.  How many. */
static uint64_t pull_frees(struct state *st, size_t i, uint64_t n)
{
	struct trace *t = st->t;
	uint64_t moved = 0;

	for (size_t f = i + 1; f < t->nev && moved < n; f++) {
		struct ev *e = &t->ev[f];
		struct area *a;

		if (e->kind != EV_FREE || (e->flags & EVF_SKIP))
			continue;
		a = find(st, e->f.addr, e->f.addr + 1);
		if (!a || a->lazy || a->start != e->f.addr)
			continue;
		move_back(st, f, i + moved);
		moved++;
	}
	return moved;
}

/*
 * A purge at event i.  The kernel takes every lazy area when the purge
 * starts and writes the event when it ends, so the frees traced between
 * are not the purge's: a purge that counts fewer areas than are lazy goes
 * back before the latest of them.  One that counts more took frees whose
 * events come after it: those come forward (1 is returned: go over them
 * again).  After this every purge releases exactly what is lazy where it
 * stands -- but for what purge_slack counts -- and a replay that purges
 * there finds the kernel's batch.
 */
static int do_purge(struct state *st, size_t i)
{
	struct trace *t = st->t;
	struct ev *e = &t->ev[i];
	uint64_t lazy = st->qtail - st->qhead, extra;

	if (e->p.npurged < lazy) {
		size_t q = st->qtail - (lazy - e->p.npurged);

		/* Snapshot areas have no event to go before: those the purge
		 * left lazy are counted, the trace's own frees moved after. */
		for (; q < st->qtail && st->queue[q]->ev == NO_EVENT; q++)
			t->purge_slack++;
		if (q < st->qtail && st->queue[q]->ev < i) {
			size_t to = st->queue[q]->ev;

			move_back(st, i, to);
			t->reordered++;
			e = &t->ev[to];
		}
	} else if (e->p.npurged > lazy) {
		extra = e->p.npurged - lazy;
		if (!st->seen_purge && !t->has_snapshot) {
			/* A raw dump's first purge: areas lazy before it
			 * began, which no event names -- at least a page
			 * each, and never more than the kernel lets wait. */
			if (extra > PHANTOM_MAX ||
			    (t->phantom_pages && extra > t->phantom_pages))
				return trace_error(t, e->line,
						   "the counts do not add up: "
						   "this purge released %llu "
						   "areas the dump never freed, "
						   "in %llu lazy pages",
						   (unsigned long long)extra,
						   (unsigned long long)
							   t->phantom_pages);
			t->phantom_areas = extra;
		} else if (extra > SLACK_PER_CPU *
				   (t->cpus && t->cpus < 4096 ? t->cpus : 4096)) {
			return trace_error(t, e->line,
					   "the counts do not add up: this purge "
					   "released %llu areas, the trace had "
					   "freed %llu since the last",
					   (unsigned long long)e->p.npurged,
					   (unsigned long long)lazy);
		} else {
			uint64_t moved = pull_frees(st, i, extra);

			if (moved) {
				t->reordered++;
				return 1;
			}
			t->purge_slack += extra;
		}
	}
	t->npurge++;
	if (!st->over_threshold && !st->rerun)
		e->flags |= EVF_EXPLICIT;
	st->rerun = !(e->flags & EVF_EXPLICIT);
	st->over_threshold = false;
	release(st, e->p.npurged);
	st->seen_purge = true;
	st->offset = 0;		/* it took everything there was */
	st->offset_known = true;
	return 0;
}

/* A free of an address the trace has never seen, in a raw dump: an area
 * older than the trace.  nr_lazy grew by its pages when the offset of
 * unknown lazy pages is known; otherwise its size is a guess. */
static int infer(struct state *st, struct ev *e)
{
	struct trace *t = st->t;
	struct snap s = { .start = e->f.addr, .inferred = true };
	uint64_t sz = st->mode_size, known = st->lazy_pages;
	int64_t p;

	p = st->offset_known ?
		(int64_t)e->f.nr_lazy - (int64_t)known - st->offset : 0;
	if (p > 0 && (uint64_t)p <= UINT64_MAX / t->page_size) {
		sz = (uint64_t)p * t->page_size;
	} else {
		e->flags |= EVF_SIZE_GUESSED;
		t->guessed++;
	}
	if (!sz || e->f.addr + sz < e->f.addr || !(e->f.addr + sz) ||
	    find(st, e->f.addr, e->f.addr + sz))
		sz = t->page_size;	/* the size overlaps: the least */
	if (!(e->f.addr + sz))
		return trace_error(t, e->line, "free of 0x%llx, an area older "
				   "than the dump that would end at 2^64",
				   (unsigned long long)e->f.addr);
	s.end = e->f.addr + sz;
	if (trace_push_snap(t, &s, e->line))
		return -1;
	e->flags |= EVF_PRETRACE;
	return add(st, s.start, s.end, e->line, NULL);
}

static int do_free(struct state *st, struct ev *e, bool lenient)
{
	struct trace *t = st->t;
	struct area *a = find(st, e->f.addr, e->f.addr + 1);

	if (!t->nr_lazy_max)
		t->nr_lazy_max = e->f.nr_lazy_max;
	st->rerun = false;
	if (e->f.addr % t->page_size)
		return trace_error(t, e->line, "free of 0x%llx, which is not "
				   "page-aligned",
				   (unsigned long long)e->f.addr);
	if (e->f.nr_lazy > INT64_MAX || e->f.nr_lazy_max > INT64_MAX)
		return trace_error(t, e->line, "nr_lazy %llu: no kernel counts "
				   "that many lazy pages",
				   (unsigned long long)e->f.nr_lazy);
	if (e->f.nr_lazy > e->f.nr_lazy_max)
		st->over_threshold = true;
	if (lenient && (!a || a->lazy || a->start != e->f.addr)) {
		e->flags |= EVF_SKIP;	/* the snapshot saw it freed */
		t->skipped++;
		return 0;
	}
	if (!a) {
		if (t->has_snapshot)
			return trace_error(t, e->line,
					   "free of 0x%llx, which was never "
					   "allocated (not in the trace, not in "
					   "its snapshot)",
					   (unsigned long long)e->f.addr);
		if (infer(st, e))
			return -1;
		a = find(st, e->f.addr, e->f.addr + 1);
		if (!a)
			return trace_error(t, e->line, "internal: the inferred "
					   "area is not there");
	} else if (a->start != e->f.addr) {
		return trace_error(t, e->line,
				   "free of 0x%llx, inside the area "
				   "0x%llx-0x%llx (line %llu)",
				   (unsigned long long)e->f.addr,
				   (unsigned long long)a->start,
				   (unsigned long long)a->end,
				   (unsigned long long)a->line);
	} else if (a->lazy) {
		return trace_error(t, e->line,
				   "double free of 0x%llx: freed at line %llu "
				   "and not allocated since",
				   (unsigned long long)e->f.addr,
				   (unsigned long long)a->line);
	}
	e->size = a->end - a->start;
	if (e->f.nr_lazy < pages(st, e->size))
		return trace_error(t, e->line,
				   "the counts do not add up: nr_lazy %llu is "
				   "less than the freed area's %llu pages",
				   (unsigned long long)e->f.nr_lazy,
				   (unsigned long long)pages(st, e->size));
	t->nfree++;
	a->ev = (size_t)(e - t->ev);
	if (make_lazy(st, a, e->line))
		return -1;
	if (!st->offset_known) {
		st->offset = (int64_t)e->f.nr_lazy - (int64_t)st->lazy_pages;
		st->offset_known = true;
		if (!t->has_snapshot && !st->seen_purge && st->offset > 0)
			t->phantom_pages = (uint64_t)st->offset;
	}
	return 0;
}

/* An allocation over a lazy area: the next purge released it before its
 * event was written.  Move that purge here; false if there is none. */
static bool pull_purge(struct state *st, size_t i)
{
	size_t j = i + 1;

	while (j < st->t->nev && st->t->ev[j].kind != EV_PURGE)
		j++;
	if (j == st->t->nev)
		return false;
	move_back(st, j, i);
	st->t->reordered++;
	return true;
}

static int do_alloc(struct state *st, size_t i, bool lenient)
{
	struct trace *t = st->t;
	struct ev *e = &t->ev[i];
	uint64_t ps = t->page_size;
	struct area *a;

	if (!e->a.size || e->a.size % ps || !e->a.align ||
	    (e->a.align & (e->a.align - 1)))
		return trace_error(t, e->line,
				   "size %llu / align %llu: a size in whole "
				   "pages and a power-of-two alignment",
				   (unsigned long long)e->a.size,
				   (unsigned long long)e->a.align);
	if (e->a.vend <= e->a.vstart || e->a.vend - e->a.vstart < ps)
		return trace_error(t, e->line, "empty range [vstart, vend)");
	if (e->a.failed) {
		t->nalloc++;
		t->nfailed++;
		return 0;
	}
	if (e->a.addr % ps || e->a.addr < e->a.vstart ||
	    e->a.addr + e->a.size < e->a.addr ||
	    e->a.addr + e->a.size - 1 > e->a.vend)
		return trace_error(t, e->line,
				   "0x%llx + %llu is not a page-aligned area "
				   "inside [vstart, vend)",
				   (unsigned long long)e->a.addr,
				   (unsigned long long)e->a.size);
	a = find(st, e->a.addr, e->a.addr + e->a.size);
	st->rerun = false;
	if (a && lenient) {	/* the snapshot has it already */
		e->flags |= EVF_SKIP;
		t->skipped++;
		return 0;
	}
	if (a && a->lazy)
		return 1;	/* the caller pulls the purge forward */
	if (a)
		return trace_error(t, e->line,
				   "allocation of 0x%llx-0x%llx over the live "
				   "area 0x%llx-0x%llx (line %llu)",
				   (unsigned long long)e->a.addr,
				   (unsigned long long)(e->a.addr + e->a.size),
				   (unsigned long long)a->start,
				   (unsigned long long)a->end,
				   (unsigned long long)a->line);
	t->nalloc++;
	return add(st, e->a.addr, e->a.addr + e->a.size, e->line, NULL);
}

static uint64_t commonest_size(const struct trace *t)
{
	uint64_t best = t->page_size, n = 0;

	/* Sizes repeat in runs (thread stacks): a majority vote is enough. */
	for (size_t i = 0; i < t->nev; i++) {
		const struct ev *e = &t->ev[i];

		if (e->kind != EV_ALLOC || e->a.failed)
			continue;
		if (!n)
			best = e->a.size;
		n += e->a.size == best ? 1 : (uint64_t)-1;
	}
	return best;
}

static void destroy_area(void *a)
{
	free(a);
}

int trace_check(struct trace *t)
{
	struct state st = { .t = t, .offset_known = t->has_snapshot };
	int rc = 0;

	if (t->lost)
		return trace_error(t, 0, "the kernel lost %llu events while "
				   "this was recorded (its ring buffer "
				   "overran): areas would be missing, so it "
				   "cannot be replayed; record again",
				   (unsigned long long)t->lost);
	st.mode_size = commonest_size(t);
	for (size_t i = 0; !rc && i < t->nsnap; i++) {
		struct snap *s = &t->snap[i];
		struct area *a = NULL;

		if (s->start % t->page_size || s->end % t->page_size)
			rc = trace_error(t, s->line, "snapshot area 0x%llx-0x%llx "
					 "is not page-aligned",
					 (unsigned long long)s->start,
					 (unsigned long long)s->end);
		else if (find(&st, s->start, s->end))
			rc = trace_error(t, s->line,
					 "snapshot areas overlap at 0x%llx",
					 (unsigned long long)s->start);
		else if (!(rc = add(&st, s->start, s->end, s->line, &a)) &&
			 s->lazy)
			rc = make_lazy(&st, a, s->line);
		if (a && s->lazy)
			a->ev = NO_EVENT;	/* freed before the trace */
	}
	for (size_t i = 0; !rc && i < t->nev; i++) {
		struct ev *e = &t->ev[i];
		bool before = t->has_snapshot && e->ts_ns < t->snap_begin_ns;
		bool lenient = t->has_snapshot && e->ts_ns <= t->snap_end_ns;

		if (before) {
			e->flags |= EVF_SKIP;
			t->skipped++;
		} else if (e->kind == EV_FREE) {
			rc = do_free(&st, e, lenient);
		} else if (e->kind == EV_PURGE) {
			if ((rc = do_purge(&st, i)) == 1) {
				rc = 0;
				i--;	/* the frees moved before it first (as
					   above) */
			}
		} else if ((rc = do_alloc(&st, i, lenient)) == 1) {
			if (!pull_purge(&st, i))
				rc = trace_error(t, e->line,
						 "allocation over an area freed "
						 "at line %llu (lazy in the "
						 "snapshot if in its lines) and "
						 "never purged",
						 (unsigned long long)find(&st,
						 e->a.addr, e->a.addr +
						 e->a.size)->line);
			else {
				rc = 0;
				/* The purge, now at i, then this again (i - 1
				 * wraps at 0; the loop's i++ brings it back). */
				i--;
			}
		}
	}
	tdestroy(st.live, destroy_area);
	free(st.queue);
	if (!rc && t->phantom_areas && !t->phantom_pages)
		t->phantom_pages = t->phantom_areas;	/* a page each, at least */
	return rc;
}
