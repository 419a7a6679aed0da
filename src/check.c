/* SPDX-License-Identifier: MIT */
/*
 * check.c - an exact snapshot of a space, and the two things built on it:
 * vmap_check(), which validates every invariant, and vmap_dump(), which
 * prints the space like /proc/vmallocinfo.
 *
 * The snapshot takes every lock in the documented order (purge mutex, free
 * lock, busy shards), so no purge is half done, no area is between the free
 * tree and the busy map, and the lazy list is frozen: frees push onto it only
 * while holding a busy shard lock, and a purge puts back areas it could not
 * release (memory.c) only while holding the purge mutex.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

enum state { FREE, BUSY, LAZY, POOL, BLOCK };
static const char *const state_name[] = { "free", "busy", "lazy", "pool",
					  "block" };

struct item {
	uint64_t start, end;
	enum state state;
};

struct snapshot {
	struct item *item;
	size_t n, cap;
	enum state adding;
};

static int add(void *arg, const struct va *va)
{
	struct snapshot *sn = arg;

	if (sn->n == sn->cap) {
		size_t cap = sn->cap ? sn->cap * 2 : 256;
		struct item *it = vm_realloc(sn->item, cap * sizeof(*it));

		if (!it)
			return -ENOMEM;
		sn->item = it;
		sn->cap = cap;
	}
	enum state st = sn->adding;

	if (st == BUSY && (va->flags & VA_LAZY))
		st = LAZY; /* the legacy build keeps lazy areas in the map */
	else if (st == BUSY && (va->flags & VA_BLOCK))
		st = BLOCK;
	sn->item[sn->n++] = (struct item){ va->start, va->end, st };
	return 0;
}

static int by_start(const void *a, const void *b)
{
	const struct item *x = a, *y = b;

	return (x->start > y->start) - (x->start < y->start);
}

static void lock_all(vmap_space *s)
{
	pthread_mutex_lock(&s->purge_lock);
	pthread_mutex_lock(&s->free_lock);
	busy_lock_all(&s->busy);
	vblocks_lock_all(s);
}

static void unlock_all(vmap_space *s)
{
	vblocks_unlock_all(s);
	busy_unlock_all(&s->busy);
	pthread_mutex_unlock(&s->free_lock);
	pthread_mutex_unlock(&s->purge_lock);
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
	for (struct va *v = atomic_load(&s->lazy.head); v && !err; v = v->next)
		err = add(sn, v);
	sn->adding = POOL;
	__pool_walk(s, add, sn, &err);
	if (!err)
		qsort(sn->item, sn->n, sizeof(*sn->item), by_start);
	return err;
}

/* The checks that need the snapshot; the message goes in msg. */
static int check_snapshot(vmap_space *s, const struct snapshot *sn,
			  char *msg, size_t len)
{
	uint64_t bytes[5] = { 0 }, areas[5] = { 0 };
	uint64_t pmask = s->page_size - 1, busy_bytes = 0, busy_areas = 0;
	uint64_t lazy_pages, lazy_areas;

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
	/* A vmap block is a busy area of the space. */
	bytes[BUSY] += bytes[BLOCK];
	areas[BUSY] += areas[BLOCK];
	if (bytes[FREE] + bytes[BUSY] + bytes[LAZY] + bytes[POOL] !=
	    s->end - s->base) {
		snprintf(msg, len,
			 "free %#llx + busy %#llx + lazy %#llx + pool %#llx "
			 "bytes != space %#llx",
			 (unsigned long long)bytes[FREE],
			 (unsigned long long)bytes[BUSY],
			 (unsigned long long)bytes[LAZY],
			 (unsigned long long)bytes[POOL],
			 (unsigned long long)(s->end - s->base));
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

int vmap_check(vmap_space *s)
{
	struct snapshot sn = { NULL, 0, 0, FREE };
	char msg[256];
	int err;

	if (!s)
		return -EINVAL;
	lock_all(s);
	err = ft_validate(&s->free, msg, sizeof(msg));
	if (!err)
		err = __busy_validate(&s->busy, msg, sizeof(msg));
	if (!err)
		err = __vblocks_validate(s, msg, sizeof(msg));
	if (!err) {
		err = take(s, &sn);
		if (!err && check_snapshot(s, &sn, msg, sizeof(msg)))
			err = -1;
	}
	unlock_all(s);
	free(sn.item);
	if (err == -1) {
		fprintf(stderr, "vmap_check: %s\n", msg);
		return -EUCLEAN;
	}
	return err;
}

int vmap_dump(vmap_space *s, FILE *f)
{
	struct snapshot sn = { NULL, 0, 0, FREE };
	int err;

	if (!s || !f)
		return -EINVAL;
	lock_all(s);
	err = take(s, &sn);
	if (!err)
		err = __vblocks_dump(s, f);
	unlock_all(s);
	for (size_t i = 0; i < sn.n && !err; i++) {
		const struct item *it = &sn.item[i];

		if (fprintf(f, "0x%016llx-0x%016llx %12llu %s\n",
			    (unsigned long long)it->start,
			    (unsigned long long)it->end,
			    (unsigned long long)(it->end - it->start),
			    state_name[it->state]) < 0)
			err = -EIO;
	}
	free(sn.item);
	return err;
}
