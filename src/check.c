/* SPDX-License-Identifier: MIT */
/*
 * check.c - a list of every range of a space, and the two things built on
 * it: vmap_check(), which validates every invariant, and vmap_dump(), which
 * prints the space like /proc/vmallocinfo.
 *
 * vmap_check takes an exact snapshot: every lock in the documented order
 * (purge mutex, free lock, busy shards, block queues, quarantine), so no purge
 * is half done, no area is between two structures, and the lazy list is
 * frozen (frees push onto it only while holding a busy shard lock).  That
 * stops the space for as long as the check runs, which is what an oracle
 * needs and what a production dump cannot afford: vmap_dump gathers the
 * ranges a chunk at a time, one lock at a time, and documents what that costs.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "internal.h"

enum state { FREE, BUSY, LAZY, POOL, BLOCK, QUARANTINE, CACHED, FLIGHT,
	     RESERVED, NSTATES };
static const char *const state_name[] = { "free",  "busy",	  "lazy",
					  "pool",  "block", "quarantined",
					  "cached", "in flight", "reserved" };

struct item {
	uint64_t start, end;
	enum state state;
	unsigned flags; /* VA_* */
};

struct snapshot {
	struct item *item;
	size_t n, cap;
	enum state adding;
};

/* Room for `more` items; vmap_dump makes it before taking a lock, so that
 * no copy of a growing array, and no page fault, happens while one is held. */
static int room(struct snapshot *sn, size_t more)
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

static int add(void *arg, const struct va *va)
{
	struct snapshot *sn = arg;
	enum state st = sn->adding;

	if (sn->n == sn->cap && room(sn, 1))
		return -ENOMEM;
	if (st == BUSY && (va->flags & VA_LAZY))
		st = LAZY; /* the legacy build keeps lazy areas in the map */
	else if (st == BUSY && (va->flags & VA_BLOCK))
		st = BLOCK;
	else if (st == BUSY && (va->flags & VA_RESERVED))
		st = RESERVED;
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

/* With all locks held: every range of the space, sorted by start. */
static int take(vmap_space *s, struct snapshot *sn)
{
	int err;

	sn->adding = FREE;
	err = ft_walk(&s->free, add, sn);
	sn->adding = BUSY;
	if (!err)
		err = __busy_walk(&s->busy, add, sn);
	sn->adding = LAZY;
	for (unsigned n = 0; n < s->nnodes && !err; n++)
		for (struct va *v = atomic_load(&s->nodes[n].lazy); v && !err;
		     v = v->next)
			err = add(sn, v);
	sn->adding = POOL;
	__pool_walk(s, add, sn, &err);
	sn->adding = QUARANTINE;
	if (!err)
		err = __quarantine_walk(s, add, sn);
	sn->adding = CACHED;
	if (!err)
		err = __nodes_walk(s, add, sn);
	sn->adding = FLIGHT;
	if (!err)
		err = __flights_walk(s, add, sn);
	if (!err)
		qsort(sn->item, sn->n, sizeof(*sn->item), by_start);
	return err;
}

/* The checks that need the snapshot; the message goes in msg. */
static int check_snapshot(vmap_space *s, const struct snapshot *sn,
			  char *msg, size_t len)
{
	uint64_t bytes[NSTATES] = { 0 }, areas[NSTATES] = { 0 };
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
				 state_name[it->state],
				 (unsigned long long)it->start,
				 (unsigned long long)it->end);
			return -1;
		}
		if (i && sn->item[i - 1].end > it->start) {
			snprintf(msg, len, "%s %#llx-%#llx overlaps %s %#llx-%#llx",
				 state_name[sn->item[i - 1].state],
				 (unsigned long long)sn->item[i - 1].start,
				 (unsigned long long)sn->item[i - 1].end,
				 state_name[it->state],
				 (unsigned long long)it->start,
				 (unsigned long long)it->end);
			return -1;
		}
		bytes[it->state] += it->end - it->start;
		areas[it->state]++;
	}
	/* A vmap block and a reservation are busy areas of the space. */
	bytes[BUSY] += bytes[BLOCK] + bytes[RESERVED];
	areas[BUSY] += areas[BLOCK] + areas[RESERVED];
	if (bytes[FREE] + bytes[BUSY] + bytes[LAZY] + bytes[POOL] +
		    bytes[QUARANTINE] + bytes[CACHED] + bytes[FLIGHT] !=
	    s->end - s->base) {
		snprintf(msg, len,
			 "free %#llx + busy %#llx + lazy %#llx + pool %#llx + "
			 "quarantined %#llx + cached %#llx + in flight %#llx "
			 "bytes != space %#llx",
			 (unsigned long long)bytes[FREE],
			 (unsigned long long)bytes[BUSY],
			 (unsigned long long)bytes[LAZY],
			 (unsigned long long)bytes[POOL],
			 (unsigned long long)bytes[QUARANTINE],
			 (unsigned long long)bytes[CACHED],
			 (unsigned long long)bytes[FLIGHT],
			 (unsigned long long)(s->end - s->base));
		return -1;
	}
	if (s->flight_pages != space_pages(s, bytes[FLIGHT]) ||
	    s->flight_areas != areas[FLIGHT]) {
		snprintf(msg, len,
			 "flight counters say %llu areas/%llu pages, the "
			 "flights hold %llu/%llu",
			 (unsigned long long)s->flight_areas,
			 (unsigned long long)s->flight_pages,
			 (unsigned long long)areas[FLIGHT],
			 (unsigned long long)space_pages(s, bytes[FLIGHT]));
		return -1;
	}
	cached_areas = nodes_cached(s, &cached_pages);
	if (cached_pages != space_pages(s, bytes[CACHED]) ||
	    cached_areas != areas[CACHED] || (areas[CACHED] && !s->pools)) {
		snprintf(msg, len,
			 "node pool counters say %llu areas/%llu pages, the "
			 "pools hold %llu/%llu%s",
			 (unsigned long long)cached_areas,
			 (unsigned long long)cached_pages,
			 (unsigned long long)areas[CACHED],
			 (unsigned long long)space_pages(s, bytes[CACHED]),
			 s->pools ? "" : " (and the space has no pools)");
		return -1;
	}
	if (atomic_load(&s->pool_pages) != space_pages(s, bytes[POOL]) ||
	    atomic_load(&s->pool_areas) != areas[POOL] ||
	    space_pages(s, bytes[POOL]) > s->pool_max_pages) {
		snprintf(msg, len,
			 "pool counters say %llu areas/%llu pages (max %llu), "
			 "the pool holds %llu/%llu",
			 (unsigned long long)atomic_load(&s->pool_areas),
			 (unsigned long long)atomic_load(&s->pool_pages),
			 (unsigned long long)s->pool_max_pages,
			 (unsigned long long)areas[POOL],
			 (unsigned long long)space_pages(s, bytes[POOL]));
		return -1;
	}
	if (s->quarantine_areas != areas[QUARANTINE] ||
	    s->quarantine_pages != space_pages(s, bytes[QUARANTINE])) {
		snprintf(msg, len,
			 "quarantine counters say %llu areas/%llu pages, the "
			 "list holds %llu/%llu",
			 (unsigned long long)s->quarantine_areas,
			 (unsigned long long)s->quarantine_pages,
			 (unsigned long long)areas[QUARANTINE],
			 (unsigned long long)space_pages(s, bytes[QUARANTINE]));
		return -1;
	}
	for (int i = 0; i < VMAP_BUSY_SHARDS; i++) {
		busy_bytes += s->busy.shard[i].bytes;
		busy_areas += s->busy.shard[i].count;
	}
	lazy_pages = atomic_load(&s->lazy.pages);
	lazy_areas = atomic_load(&s->lazy.areas);
	if (busy_bytes != bytes[BUSY] || busy_areas != areas[BUSY] ||
	    lazy_pages != space_pages(s, bytes[LAZY]) ||
	    lazy_areas != areas[LAZY]) {
		snprintf(msg, len,
			 "counters say busy %llu areas/%#llx bytes, lazy %llu "
			 "areas/%llu pages; structures hold busy %llu/%#llx, "
			 "lazy %llu/%llu",
			 (unsigned long long)busy_areas,
			 (unsigned long long)busy_bytes,
			 (unsigned long long)lazy_areas,
			 (unsigned long long)lazy_pages,
			 (unsigned long long)areas[BUSY],
			 (unsigned long long)bytes[BUSY],
			 (unsigned long long)areas[LAZY],
			 (unsigned long long)space_pages(s, bytes[LAZY]));
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
	if (it->state == QUARANTINE)
		return true;
	if (!v) {
		*why = "a hole";
		return false;
	}
	if (v->file && !(it->flags & (VA_FILE | VA_BLOCK))) {
		*why = "a file";
		return false;
	}
	if ((it->state == FREE || it->state == POOL ||
	     it->state == CACHED) &&
	    (v->file || v->prot != (PROT_READ | PROT_WRITE))) {
		/* A warm area keeps its guard page. */
		if (it->state == POOL && (it->flags & VA_GUARD) &&
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
				 (unsigned long long)b, state_name[it->state],
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
	struct snapshot sn = { NULL, 0, 0, FREE };
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

/* ---- vmap_dump: a chunk at a time ---- */

#define DUMP_CHUNK 1024 /* records (or hash buckets) per lock hold */

/*
 * Gather every range but the lazy ones, a chunk at a time, round-robin: one
 * chunk of the free tree, then one of each busy shard, and again.  Never two
 * chunks of one lock in a row: a thread that waited for the lock gets it
 * before the dump comes back to it (a mutex lets the unlocking thread take
 * it straight back, and the waiter would starve for the whole shard).
 */
static int gather(vmap_space *s, struct snapshot *sn)
{
	uint64_t from = s->base, pos[VMAP_BUSY_SHARDS] = { 0 };
	bool free_done = false, done[VMAP_BUSY_SHARDS] = { false };
	unsigned left = VMAP_BUSY_SHARDS;
	int err = 0;

	while (!err && (!free_done || left)) {
		if (!free_done && !(err = room(sn, DUMP_CHUNK))) {
			size_t before = sn->n;

			sn->adding = FREE;
			pthread_mutex_lock(&s->free_lock);
			free_done = ft_walk_from(&s->free, from, DUMP_CHUNK,
						 add, sn, &err) < DUMP_CHUNK;
			pthread_mutex_unlock(&s->free_lock);
			if (sn->n > before)
				from = sn->item[sn->n - 1].end;
		}
		for (int i = 0; i < VMAP_BUSY_SHARDS && !err; i++) {
			struct busy_shard *sh = &s->busy.shard[i];

			/* Chains average under two areas a bucket: four is
			 * room enough nearly always (add grows it if not). */
			if (done[i] || (err = room(sn, 4 * DUMP_CHUNK)))
				continue;
			pthread_mutex_lock(&sh->lock);
			sn->adding = BUSY;
			done[i] = __busy_walk_part(sh, &pos[i], DUMP_CHUNK, add,
						   sn, &err);
			if (done[i]) {
				sn->adding = POOL;
				__pool_walk_shard(sh, add, sn, &err);
				left--;
			}
			pthread_mutex_unlock(&sh->lock);
		}
	}
	pthread_mutex_lock(&s->quarantine_lock);
	sn->adding = QUARANTINE;
	if (!err)
		err = __quarantine_walk(s, add, sn);
	pthread_mutex_unlock(&s->quarantine_lock);
	/* Pools are short (what a few purges flushed): one hold each. */
	sn->adding = CACHED;
	for (unsigned n = 0; n < s->nnodes && !err; n++) {
		pthread_mutex_lock(&s->nodes[n].lock);
		err = __node_walk(s, n, add, sn);
		pthread_mutex_unlock(&s->nodes[n].lock);
	}
	/* So are the flights (a few batches). */
	pthread_mutex_lock(&s->flight_lock);
	sn->adding = FLIGHT;
	if (!err)
		err = __flights_walk(s, add, sn);
	pthread_mutex_unlock(&s->flight_lock);
	return err;
}

static int line(FILE *f, uint64_t start, uint64_t end, const char *what)
{
	return fprintf(f, "0x%016llx-0x%016llx %12llu %s\n",
		       (unsigned long long)start, (unsigned long long)end,
		       (unsigned long long)(end - start), what) < 0 ?
		       -EIO :
		       0;
}

int vmap_dump(vmap_space *s, FILE *f)
{
	struct snapshot sn = { NULL, 0, 0, FREE };
	struct vmap_stats st = { .size = sizeof(st) };
	uint64_t at;
	int err;

	if (!s || !f)
		return -EINVAL;
	/* The listing in one allocation, sized from the counters: growing
	 * and copying a big array stalls every thread of the process that
	 * faults or maps meanwhile (the kernel's mmap lock). */
	err = vmap_stats(s, &st);
	if (!err)
		err = room(&sn, st.busy_areas + st.free_blocks + st.pool_areas +
					st.quarantined_areas + st.cached_areas +
					st.inflight_areas + DUMP_CHUNK);
	if (!err)
		err = gather(s, &sn);
	if (!err)
		qsort(sn.item, sn.n, sizeof(*sn.item), by_start);
	/* What no structure listed is lazy: freed, waiting for a purge or in
	 * one (the lazy list itself is not walked: only a purge may). */
	at = s->base;
	for (size_t i = 0; i < sn.n && !err; i++) {
		const struct item *it = &sn.item[i];

		if (i && it->start == sn.item[i - 1].start &&
		    it->end == sn.item[i - 1].end &&
		    it->state == sn.item[i - 1].state)
			continue; /* seen twice while a table grew */
		if (it->start > at)
			err = line(f, at, it->start, "lazy");
		if (!err)
			err = line(f, it->start, it->end,
				   state_name[it->state]);
		if (it->end > at)
			at = it->end;
	}
	if (!err && at < s->end)
		err = line(f, at, s->end, "lazy");
	free(sn.item);
	for (unsigned c = 0; c < s->nvbq && !err; c++) {
		struct vmap_stats st = { .blocks = 0 };

		pthread_mutex_lock(&s->vbq[c].lock);
		__vblocks_stats(s, c, &st);
		pthread_mutex_unlock(&s->vbq[c].lock);
		if (st.blocks &&
		    fprintf(f, "vmap blocks cpu %u: %llu blocks, %llu pages "
			       "free, %llu dirty\n", c,
			    (unsigned long long)st.blocks,
			    (unsigned long long)st.block_free_pages,
			    (unsigned long long)st.block_dirty_pages) < 0)
			err = -EIO;
	}
	return err;
}
