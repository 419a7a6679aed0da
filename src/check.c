/* SPDX-License-Identifier: MIT */
/*
 * check.c - vmap_check(), which validates every invariant of a space from a
 * list of its every range (snapshot.c).
 *
 * vmap_check takes an exact snapshot: every lock in the documented order
 * (purge mutex, free lock, busy shards, block queues, quarantine), so no purge
 * is half done, no area is between two structures, and the lazy list is
 * frozen (frees push onto it only while holding a busy shard lock).  That
 * stops the space for as long as the check runs, which is what an oracle
 * needs and what a production walk cannot afford: vmap_walk and vmap_dump
 * gather the ranges a chunk at a time, one lock at a time (walk.c).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "internal.h"

/* With all locks held: every range of the space, sorted by start. */
static int take(vmap_space *s, struct snapshot *sn)
{
	int err;

	sn->adding = SN_FREE;
	err = ft_walk(&s->free, snap_add, sn);
	sn->adding = SN_BUSY;
	if (!err)
		err = __busy_walk(&s->busy, snap_add, sn);
	sn->adding = SN_LAZY;
	for (unsigned n = 0; n < s->nnodes && !err; n++)
		for (struct va *v = atomic_load(&s->nodes[n].lazy); v && !err;
		     v = v->next)
			err = snap_add(sn, v);
	sn->adding = SN_POOL;
	__pool_walk(s, snap_add, sn, &err);
	sn->adding = SN_QUARANTINE;
	if (!err)
		err = __quarantine_walk(s, snap_add, sn);
	sn->adding = SN_CACHED;
	if (!err)
		err = __nodes_walk(s, snap_add, sn);
	sn->adding = SN_FLIGHT;
	if (!err)
		err = __flights_walk(s, snap_add, sn);
	sn->adding = SN_ABSENT;
	if (!err)
		err = __spans_walk_absent(s, snap_add, sn);
	if (!err)
		snap_sort(sn);
	return err;
}

/* The checks that need the snapshot; the message goes in msg. */
static int check_snapshot(vmap_space *s, const struct snapshot *sn,
			  char *msg, size_t len)
{
	uint64_t bytes[SN_NSTATES] = { 0 }, areas[SN_NSTATES] = { 0 };
	uint64_t pmask = s->page_size - 1, busy_bytes = 0, busy_areas = 0;
	uint64_t lazy_pages, lazy_areas, cached_areas, cached_pages;

	for (size_t i = 0; i < sn->n; i++) {
		const struct item *it = &sn->item[i];

		if (it->start >= it->end || (it->start & pmask) ||
		    (it->end & pmask) || it->start < s->base ||
		    it->end > s->end) {
			snprintf(msg, len,
				 "%s range %#llx-%#llx is empty, unaligned or "
				 "outside the space",
				 snap_name[it->state],
				 (unsigned long long)it->start,
				 (unsigned long long)it->end);
			return -1;
		}
		if (i && sn->item[i - 1].end > it->start) {
			snprintf(msg, len, "%s %#llx-%#llx overlaps %s %#llx-%#llx",
				 snap_name[sn->item[i - 1].state],
				 (unsigned long long)sn->item[i - 1].start,
				 (unsigned long long)sn->item[i - 1].end,
				 snap_name[it->state],
				 (unsigned long long)it->start,
				 (unsigned long long)it->end);
			return -1;
		}
		/* No area or free block crosses from one span into
		 * another (a cut inside it). */
		for (size_t c = 0; c < s->free.ncuts; c++)
			if (s->free.cuts[c] > it->start &&
			    s->free.cuts[c] < it->end) {
				snprintf(msg, len,
					 "%s %#llx-%#llx crosses the span "
					 "boundary %#llx",
					 snap_name[it->state],
					 (unsigned long long)it->start,
					 (unsigned long long)it->end,
					 (unsigned long long)s->free.cuts[c]);
				return -1;
			}
		bytes[it->state] += it->end - it->start;
		areas[it->state]++;
	}
	/* A vmap block and a reservation are busy areas of the space. */
	bytes[SN_BUSY] += bytes[SN_BLOCK] + bytes[SN_RESERVED];
	areas[SN_BUSY] += areas[SN_BLOCK] + areas[SN_RESERVED];
	if (bytes[SN_FREE] + bytes[SN_BUSY] + bytes[SN_LAZY] + bytes[SN_POOL] +
		    bytes[SN_QUARANTINE] + bytes[SN_CACHED] + bytes[SN_FLIGHT] +
		    bytes[SN_ABSENT] !=
	    s->end - s->base) {
		snprintf(msg, len,
			 "free %#llx + busy %#llx + lazy %#llx + pool %#llx + "
			 "quarantined %#llx + cached %#llx + in flight %#llx "
			 "bytes != space %#llx",
			 (unsigned long long)bytes[SN_FREE],
			 (unsigned long long)bytes[SN_BUSY],
			 (unsigned long long)bytes[SN_LAZY],
			 (unsigned long long)bytes[SN_POOL],
			 (unsigned long long)bytes[SN_QUARANTINE],
			 (unsigned long long)bytes[SN_CACHED],
			 (unsigned long long)bytes[SN_FLIGHT],
			 (unsigned long long)(s->end - s->base));
		return -1;
	}
	if (s->flight_pages != space_pages(s, bytes[SN_FLIGHT]) ||
	    s->flight_areas != areas[SN_FLIGHT]) {
		snprintf(msg, len,
			 "flight counters say %llu areas/%llu pages, the "
			 "flights hold %llu/%llu",
			 (unsigned long long)s->flight_areas,
			 (unsigned long long)s->flight_pages,
			 (unsigned long long)areas[SN_FLIGHT],
			 (unsigned long long)space_pages(s, bytes[SN_FLIGHT]));
		return -1;
	}
	cached_areas = nodes_cached(s, &cached_pages);
	if (cached_pages != space_pages(s, bytes[SN_CACHED]) ||
	    cached_areas != areas[SN_CACHED] || (areas[SN_CACHED] && !s->pools)) {
		snprintf(msg, len,
			 "node pool counters say %llu areas/%llu pages, the "
			 "pools hold %llu/%llu%s",
			 (unsigned long long)cached_areas,
			 (unsigned long long)cached_pages,
			 (unsigned long long)areas[SN_CACHED],
			 (unsigned long long)space_pages(s, bytes[SN_CACHED]),
			 s->pools ? "" : " (and the space has no pools)");
		return -1;
	}
	if (atomic_load(&s->pool_pages) != space_pages(s, bytes[SN_POOL]) ||
	    atomic_load(&s->pool_areas) != areas[SN_POOL] ||
	    space_pages(s, bytes[SN_POOL]) > s->pool_max_pages) {
		snprintf(msg, len,
			 "pool counters say %llu areas/%llu pages (max %llu), "
			 "the pool holds %llu/%llu",
			 (unsigned long long)atomic_load(&s->pool_areas),
			 (unsigned long long)atomic_load(&s->pool_pages),
			 (unsigned long long)s->pool_max_pages,
			 (unsigned long long)areas[SN_POOL],
			 (unsigned long long)space_pages(s, bytes[SN_POOL]));
		return -1;
	}
	if (s->quarantine_areas != areas[SN_QUARANTINE] ||
	    s->quarantine_pages != space_pages(s, bytes[SN_QUARANTINE])) {
		snprintf(msg, len,
			 "quarantine counters say %llu areas/%llu pages, the "
			 "list holds %llu/%llu",
			 (unsigned long long)s->quarantine_areas,
			 (unsigned long long)s->quarantine_pages,
			 (unsigned long long)areas[SN_QUARANTINE],
			 (unsigned long long)space_pages(s, bytes[SN_QUARANTINE]));
		return -1;
	}
	for (int i = 0; i < VMAP_BUSY_SHARDS; i++) {
		busy_bytes += s->busy.shard[i].bytes;
		busy_areas += s->busy.shard[i].count;
	}
	lazy_pages = atomic_load(&s->lazy.pages);
	lazy_areas = atomic_load(&s->lazy.areas);
	if (busy_bytes != bytes[SN_BUSY] || busy_areas != areas[SN_BUSY] ||
	    lazy_pages != space_pages(s, bytes[SN_LAZY]) ||
	    lazy_areas != areas[SN_LAZY]) {
		snprintf(msg, len,
			 "counters say busy %llu areas/%#llx bytes, lazy %llu "
			 "areas/%llu pages; structures hold busy %llu/%#llx, "
			 "lazy %llu/%llu",
			 (unsigned long long)busy_areas,
			 (unsigned long long)busy_bytes,
			 (unsigned long long)lazy_areas,
			 (unsigned long long)lazy_pages,
			 (unsigned long long)areas[SN_BUSY],
			 (unsigned long long)bytes[SN_BUSY],
			 (unsigned long long)areas[SN_LAZY],
			 (unsigned long long)space_pages(s, bytes[SN_LAZY]));
		return -1;
	}
	return 0;
}

/* ---- a memory space's reservation, as the kernel sees it ---- */

/*
 * The mappings of [base, end), checked against the snapshot (which tiles the
 * space exactly, checked before).  What must hold:
 *  - no hole, but in a quarantined range: anything mapped into a hole is
 *    somebody else's, and we would hand it out;
 *  - a file only where vmap put one: a vmap_vmap area (busy or lazy), a vmap
 *    block, or a quarantined range;
 *  - free and warm pages anonymous, readable and writable -- but a warm
 *    area's mprotect guard page: what the next owner gets.  A caller's
 *    mprotect that outlived its area shows here.
 */
struct maps_walk {
	vmap_space *s;
	const struct snapshot *sn;
	size_t i;	 /* the first item that may overlap the next mapping */
	uint64_t cursor; /* everything below is covered */
	char *msg;
	size_t len;
};

static bool ok_in(const struct item *it, const struct os_vma *v,
		  uint64_t page, const char **why)
{
	if (it->state == SN_QUARANTINE)
		return true;
	if (!v) {
		*why = "a hole";
		return false;
	}
	if (v->file && !(it->flags & (VA_FILE | VA_BLOCK))) {
		*why = "a file";
		return false;
	}
	if ((it->state == SN_FREE || it->state == SN_POOL ||
	     it->state == SN_CACHED) &&
	    (v->file || v->prot != (PROT_READ | PROT_WRITE))) {
		/* A warm area keeps its guard page. */
		if (it->state == SN_POOL && (it->flags & VA_GUARD) &&
		    v->start >= it->end - page)
			return true;
		*why = "a mapping other than plain read-write";
		return false;
	}
	return true;
}

/* Check [a, b), which v maps (or, if v is NULL, nothing maps); 1 (and the
 * message) if it is wrong. */
static int check_span(struct maps_walk *w, uint64_t a, uint64_t b,
		      const struct os_vma *v)
{
	const struct snapshot *sn = w->sn;
	const char *why = "";

	while (w->i < sn->n && sn->item[w->i].end <= a)
		w->i++;
	for (size_t k = w->i; k < sn->n && sn->item[k].start < b; k++) {
		const struct item *it = &sn->item[k];

		if (!ok_in(it, v, w->s->page_size, &why)) {
			snprintf(w->msg, w->len,
				 "the reservation has %s at %#llx-%#llx, in "
				 "%s range %#llx-%#llx",
				 why, (unsigned long long)a,
				 (unsigned long long)b, snap_name[it->state],
				 (unsigned long long)it->start,
				 (unsigned long long)it->end);
			return 1;
		}
	}
	return 0;
}

static int check_vma(void *arg, const struct os_vma *v)
{
	struct maps_walk *w = arg;
	uint64_t a = v->start > w->s->base ? v->start : w->s->base;
	uint64_t b = v->end < w->s->end ? v->end : w->s->end;

	if (a > w->cursor && check_span(w, w->cursor, a, NULL))
		return 1;
	if (b > w->cursor)
		w->cursor = b;
	return check_span(w, a, b, v);
}

static int check_maps(vmap_space *s, const struct snapshot *sn, char *msg,
		      size_t len)
{
	struct maps_walk w = { s, sn, 0, s->base, msg, len };
	int err;

	if (!s->memory || !s->os->vmas)
		return 0;
	err = s->os->vmas(s->base, s->end, check_vma, &w);
	if (!err && w.cursor < s->end)
		err = check_span(&w, w.cursor, s->end, NULL);
	/* A negative err: no /proc to read, nothing to check against. */
	return err > 0 ? -1 : 0;
}

int vmap_check(vmap_space *s)
{
	struct snapshot sn = { .adding = SN_FREE, .hi = UINT64_MAX };
	char msg[256];
	int err;

	if (!s)
		return -EINVAL;
	space_lock_all(s);
	err = ft_validate(&s->free, msg, sizeof(msg));
	if (!err)
		err = __busy_validate(&s->busy, msg, sizeof(msg));
	if (!err)
		err = __vblocks_validate(s, msg, sizeof(msg));
	if (!err) {
		err = take(s, &sn);
		if (!err && check_snapshot(s, &sn, msg, sizeof(msg)))
			err = -1;
		if (!err)
			err = check_maps(s, &sn, msg, sizeof(msg));
	}
	space_unlock_all(s);
	free(sn.item);
	if (err == -1) {
		fprintf(stderr, "vmap_check: %s\n", msg);
		return -EUCLEAN;
	}
	return err;
}
