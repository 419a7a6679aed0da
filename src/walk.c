/* SPDX-License-Identifier: MIT */
/*
 * walk.c - the space in address order, without stopping it: vmap_walk, and
 * vmap_dump built on it.
 *
 * A walk gathers the ranges a chunk at a time, one lock at a time (see
 * gather), sorts them, and only then calls back, holding no lock: the
 * callback may call anything, vmap_free of what it is shown included.  The
 * price is that the list is not one instant's: an area that moves between
 * two chunks may be missed or seen twice, which the header documents.
 * Lazy areas are never listed (their lists are a purge's alone): what no
 * structure listed is lazy -- freed, waiting for a purge or in one.
 */
#include <errno.h>
#include <stdlib.h>

#include "internal.h"

#define DUMP_CHUNK 1024 /* records (or hash buckets) per lock hold */

/*
 * Gather every range that overlaps [sn->lo, sn->hi) but the lazy ones, a
 * chunk at a time, round-robin: one
 * chunk of the free tree, then one of each busy shard, and again.  Never two
 * chunks of one lock in a row: a thread that waited for the lock gets it
 * before the dump comes back to it (a mutex lets the unlocking thread take
 * it straight back, and the waiter would starve for the whole shard).
 */
static int gather(vmap_space *s, struct snapshot *sn)
{
	uint64_t from, pos[VMAP_BUSY_SHARDS] = { 0 };
	bool free_done = false, done[VMAP_BUSY_SHARDS] = { false };
	unsigned left = VMAP_BUSY_SHARDS;
	int err = 0;

	/* The free tree from the block that holds lo, if one does. */
	pthread_mutex_lock(&s->free_lock);
	{
		const struct va *b = ft_at(&s->free, sn->lo);

		from = b ? b->start : sn->lo;
	}
	pthread_mutex_unlock(&s->free_lock);
	while (!err && (!free_done || left)) {
		if (!free_done && !(err = snap_room(sn, DUMP_CHUNK))) {
			size_t before = sn->n;

			sn->adding = SN_FREE;
			pthread_mutex_lock(&s->free_lock);
			free_done = ft_walk_from(&s->free, from, DUMP_CHUNK,
						 snap_add, sn, &err) < DUMP_CHUNK;
			pthread_mutex_unlock(&s->free_lock);
			if (sn->n > before)
				from = sn->item[sn->n - 1].end;
			free_done |= from >= sn->hi;
		}
		for (int i = 0; i < VMAP_BUSY_SHARDS && !err; i++) {
			struct busy_shard *sh = &s->busy.shard[i];

			/* Chains average under two areas a bucket: four is
			 * room enough nearly always (add grows it if not). */
			if (done[i] || (err = snap_room(sn, 4 * DUMP_CHUNK)))
				continue;
			pthread_mutex_lock(&sh->lock);
			sn->adding = SN_BUSY;
			done[i] = __busy_walk_part(sh, &pos[i], DUMP_CHUNK, snap_add,
						   sn, &err);
			if (done[i]) {
				sn->adding = SN_POOL;
				__pool_walk_shard(sh, snap_add, sn, &err);
				left--;
			}
			pthread_mutex_unlock(&sh->lock);
		}
	}
	pthread_mutex_lock(&s->quarantine_lock);
	sn->adding = SN_QUARANTINE;
	if (!err)
		err = __quarantine_walk(s, snap_add, sn);
	pthread_mutex_unlock(&s->quarantine_lock);
	/* Pools are short (what a few purges flushed): one hold each. */
	sn->adding = SN_CACHED;
	for (unsigned n = 0; n < s->nnodes && !err; n++) {
		pthread_mutex_lock(&s->nodes[n].lock);
		err = __node_walk(s, n, snap_add, sn);
		pthread_mutex_unlock(&s->nodes[n].lock);
	}
	/* So are the flights (a few batches), and the spans. */
	pthread_mutex_lock(&s->flight_lock);
	sn->adding = SN_FLIGHT;
	if (!err)
		err = __flights_walk(s, snap_add, sn);
	pthread_mutex_unlock(&s->flight_lock);
	pthread_mutex_lock(&s->free_lock);
	sn->adding = SN_ABSENT;
	if (!err)
		err = __spans_walk_absent(s, snap_add, sn);
	sn->adding = SN_CUT;
	if (!err)
		err = __spans_walk_cuts(s, snap_add, sn);
	pthread_mutex_unlock(&s->free_lock);
	return err;
}

/* Gather [lo, hi) of the space, sorted, in one allocation sized from the
 * counters: growing and copying a big array stalls every thread of the
 * process that faults or maps meanwhile (the kernel's mmap lock). */
static int take_part(vmap_space *s, uint64_t lo, uint64_t hi,
		     struct snapshot *sn)
{
	struct vmap_stats st = { .size = sizeof(st) };
	int err = vmap_stats(s, &st);

	sn->lo = lo;
	sn->hi = hi;
	if (!err && lo == s->base && hi == s->end)
		err = snap_room(sn, st.busy_areas + st.free_blocks +
					    st.pool_areas +
					    st.quarantined_areas +
					    st.cached_areas +
					    st.inflight_areas + DUMP_CHUNK);
	if (!err)
		err = gather(s, sn);
	if (!err)
		snap_sort(sn);
	return err;
}

/* Each range of the sorted list in order, with the lazy gaps between, from
 * the one holding sn->lo to the last starting before sn->hi. */
static int each(const vmap_space *s, const struct snapshot *sn,
		int (*fn)(void *, uint64_t, uint64_t, enum snap_state),
		void *arg)
{
	uint64_t at = sn->lo > s->base ? sn->lo : s->base;
	uint64_t hi = sn->hi < s->end ? sn->hi : s->end;
	int err = 0;

	for (size_t i = 0; i < sn->n && !err; i++) {
		const struct item *it = &sn->item[i];

		if (i && it->start == sn->item[i - 1].start &&
		    it->end == sn->item[i - 1].end &&
		    it->state == sn->item[i - 1].state)
			continue; /* seen twice while a table grew */
		if (it->start > at)
			err = fn(arg, at, it->start, SN_LAZY);
		if (!err)
			err = fn(arg, it->start, it->end, it->state);
		if (it->end > at)
			at = it->end;
	}
	if (!err && at < hi)
		err = fn(arg, at, hi, SN_LAZY);
	return err;
}

struct walker {
	unsigned what;
	vmap_walk_fn fn;
	void *arg;
};

static int walk_one(void *arg, uint64_t start, uint64_t end,
		    enum snap_state st)
{
	static const int state[SN_NSTATES] = {
		[SN_FREE] = VMAP_RANGE_FREE,	[SN_CACHED] = VMAP_RANGE_FREE,
		[SN_BUSY] = VMAP_RANGE_BUSY,	[SN_BLOCK] = VMAP_RANGE_BUSY,
		[SN_RESERVED] = VMAP_RANGE_BUSY, [SN_LAZY] = VMAP_RANGE_LAZY,
		[SN_POOL] = VMAP_RANGE_LAZY,	[SN_QUARANTINE] = VMAP_RANGE_LAZY,
		[SN_FLIGHT] = VMAP_RANGE_LAZY,
	};
	static const unsigned kind[SN_NSTATES] = {
		[SN_FREE] = VMAP_KIND_FREE,	[SN_CACHED] = VMAP_KIND_CACHED,
		[SN_BUSY] = VMAP_KIND_AREA,	[SN_BLOCK] = VMAP_KIND_BLOCK,
		[SN_RESERVED] = VMAP_KIND_RESERVED, [SN_LAZY] = VMAP_KIND_LAZY,
		[SN_POOL] = VMAP_KIND_WARM,
		[SN_QUARANTINE] = VMAP_KIND_QUARANTINED,
		[SN_FLIGHT] = VMAP_KIND_IN_FLIGHT,
	};
	struct walker *w = arg;
	struct vmap_walk_range r = { start, end, state[st], kind[st] };

	if (st == SN_ABSENT || st == SN_CUT) /* not the space's */
		return 0;
	return w->what & (1u << r.state) ? w->fn(w->arg, &r) : 0;
}

int vmap_walk(vmap_space *s, uint64_t from, uint64_t to, unsigned what,
	      vmap_walk_fn fn, void *arg)
{
	struct snapshot sn = { .adding = SN_FREE };
	struct walker w = { what, fn, arg };
	int err;

	if (!s || !fn || from >= to || !what || (what & ~VMAP_WALK_ALL))
		return -EINVAL;
	if (from >= s->end || to <= s->base)
		return 0;
	err = take_part(s, from, to, &sn);
	if (!err)
		err = each(s, &sn, walk_one, &w);
	free(sn.item);
	return err;
}

struct largest {
	uint64_t now, after, run_start, run_end, free_start, free_end;
};

/* Runs of what is free now (the tree, the pools) and of what a sync purge
 * would free too (lazy and warm areas; not a flight, which waits for its
 * completion, nor the quarantine, which the kernel may refuse again). */
static int largest_one(void *arg, uint64_t start, uint64_t end,
		       enum snap_state st)
{
	struct largest *l = arg;
	bool now = st == SN_FREE || st == SN_CACHED;
	bool after = now || st == SN_LAZY || st == SN_POOL;

	if (!after) {
		l->run_end = l->free_end = 0;
		return 0;
	}
	if (l->run_end != start)
		l->run_start = start;
	l->run_end = end;
	if (end - l->run_start > l->after)
		l->after = end - l->run_start;
	if (now) {
		if (l->free_end != start)
			l->free_start = start;
		l->free_end = end;
		if (end - l->free_start > l->now)
			l->now = end - l->free_start;
	} else {
		l->free_end = 0;
	}
	return 0;
}

int vmap_largest_free(vmap_space *s, uint64_t *now, uint64_t *after_purge)
{
	struct snapshot sn = { .adding = SN_FREE };
	struct largest l = { 0 };
	int err;

	if (!s || !now || !after_purge)
		return -EINVAL;
	err = take_part(s, s->base, s->end, &sn);
	if (!err)
		err = each(s, &sn, largest_one, &l);
	free(sn.item);
	if (err)
		return err;
	*now = space_pages(s, l.now);
	*after_purge = space_pages(s, l.after);
	return 0;
}

static int line(void *arg, uint64_t start, uint64_t end, enum snap_state st)
{
	if (st == SN_CUT)
		return 0;
	return fprintf(arg, "0x%016llx-0x%016llx %12llu %s\n",
		       (unsigned long long)start, (unsigned long long)end,
		       (unsigned long long)(end - start), snap_name[st]) < 0 ?
		       -EIO :
		       0;
}

int vmap_dump(vmap_space *s, FILE *f)
{
	struct snapshot sn = { .adding = SN_FREE };
	int err;

	if (!s || !f)
		return -EINVAL;
	err = take_part(s, s->base, s->end, &sn);
	if (!err)
		err = each(s, &sn, line, f);
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
