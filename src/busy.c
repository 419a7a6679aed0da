/* SPDX-License-Identifier: MIT */
/*
 * busy.c - the busy map: start address -> busy area.
 *
 * vmap_free() must find an area from its start address and nothing else.  A
 * hash table does that in O(1), and splitting it into VMAP_BUSY_SHARDS shards,
 * each with its own mutex, lets frees of different areas run in parallel with
 * each other and with allocation.
 *
 * A shard's table grows without a pause.  Allocation inserts while holding
 * the free lock, so rehashing a big shard in one go would stall every
 * allocator (3.9 ms at 2 million areas, measured in review).  Instead, when a
 * shard holds twice as many areas as buckets, a table twice as big is
 * started, and every insert or remove after that moves MIGRATE buckets of the
 * old table into it; lookups look in both until the old one is empty.  A
 * migration ends long before the new table fills up in turn.  The emptied
 * old table is handed back to the caller to free after its locks are
 * dropped.  If memory for a bigger table cannot be had, the shard keeps its
 * table and its chains grow longer: slower, never wrong.
 */
#include <stdio.h>
#include <stdlib.h>

#include "internal.h"

#define INITIAL_BUCKETS 8
#define MIGRATE 8 /* old buckets moved per operation while growing */

/* A finaliser that spreads page-aligned addresses over all 64 bits. */
static inline uint64_t mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	x ^= x >> 33;
	return x;
}

/* The top bits pick the shard, the low bits the bucket. */
struct busy_shard *busy_shard_of(struct busy_map *m, uint64_t start)
{
	return &m->shard[mix(start) >> (64 - __builtin_ctz(VMAP_BUSY_SHARDS))];
}

/* The chain that holds (or would hold) start: in the old table if its bucket
 * there has not been moved yet, else in the new one. */
static struct va **chain(struct busy_shard *s, uint64_t start)
{
	uint64_t h = mix(start);

	if (s->old && (h & s->old_mask) >= s->moved)
		return &s->old[h & s->old_mask];
	return &s->buckets[h & s->mask];
}

int busy_init(struct busy_map *m)
{
	for (int i = 0; i < VMAP_BUSY_SHARDS; i++) {
		struct busy_shard *s = &m->shard[i];

		s->buckets = vm_calloc(INITIAL_BUCKETS, sizeof(*s->buckets));
		if (!s->buckets) {
			while (i--) {
				pthread_mutex_destroy(&m->shard[i].lock);
				free(m->shard[i].buckets);
			}
			return -1;
		}
		pthread_mutex_init(&s->lock, NULL);
		s->mask = INITIAL_BUCKETS - 1;
		s->old = NULL;
		s->old_mask = s->moved = 0;
		s->count = s->bytes = 0;
	}
	return 0;
}

/* Visit every area of a shard, in both tables. */
static int each(struct busy_shard *s, int (*fn)(void *, struct va *),
		void *arg)
{
	for (int t = 0; t < 2; t++) {
		struct va **tab = t ? s->old : s->buckets;
		uint64_t from = t ? s->moved : 0, to = t ? s->old_mask : s->mask;

		for (uint64_t b = from; tab && b <= to; b++)
			for (struct va *va = tab[b], *next; va; va = next) {
				int err;

				next = va->next;
				if ((err = fn(arg, va)))
					return err;
			}
	}
	return 0;
}

static int release_one(void *arg, struct va *va)
{
	((void (*)(struct va *))arg)(va);
	return 0;
}

void busy_fini(struct busy_map *m, void (*release)(struct va *))
{
	for (int i = 0; i < VMAP_BUSY_SHARDS; i++) {
		struct busy_shard *s = &m->shard[i];

		each(s, release_one, (void *)release);
		free(s->buckets);
		free(s->old);
		pthread_mutex_destroy(&s->lock);
	}
}

/* Move up to MIGRATE old buckets; returns the old table once it is empty. */
static struct va **migrate(struct busy_shard *s)
{
	struct va **done;

	for (int k = 0; k < MIGRATE && s->moved <= s->old_mask; k++) {
		struct va *va = s->old[s->moved++], *next;

		for (; va; va = next) {
			struct va **head = &s->buckets[mix(va->start) & s->mask];

			next = va->next;
			va->next = *head;
			*head = va;
		}
	}
	if (s->moved <= s->old_mask)
		return NULL;
	done = s->old;
	s->old = NULL;
	s->old_mask = s->moved = 0;
	return done;
}

struct va **__busy_insert(struct busy_shard *s, struct va *va)
{
	struct va **head;

	if (!s->old && s->count >= 2 * (s->mask + 1)) {
		struct va **nb = vm_calloc(2 * (s->mask + 1), sizeof(*nb));

		if (nb) {
			s->old = s->buckets;
			s->old_mask = s->mask;
			s->moved = 0;
			s->buckets = nb;
			s->mask = 2 * s->mask + 1;
		}
	}
	head = chain(s, va->start);
	va->next = *head;
	*head = va;
	s->count++;
	s->bytes += va->end - va->start;
	return s->old ? migrate(s) : NULL;
}

struct va *__busy_find(struct busy_shard *s, uint64_t start)
{
	struct va *va = *chain(s, start);

	while (va && (va->start != start || (va->flags & VA_LAZY)))
		va = va->next;
	return va;
}

void __busy_insert_lazy(struct busy_shard *s, struct va *va)
{
	struct va **head = chain(s, va->start);

	va->flags |= VA_LAZY;
	va->next = *head;
	*head = va;
}

static struct va *unlink_lazy(struct va **link, struct va *list)
{
	while (*link) {
		struct va *va = *link;

		if (va->flags & VA_LAZY) {
			*link = va->next;
			va->flags &= ~VA_LAZY;
			va->next = list;
			list = va;
		} else {
			link = &va->next;
		}
	}
	return list;
}

struct va *__busy_unlink_lazy(struct busy_shard *s)
{
	struct va *list = NULL;

	for (uint64_t b = 0; b <= s->mask; b++)
		list = unlink_lazy(&s->buckets[b], list);
	for (uint64_t b = s->moved; s->old && b <= s->old_mask; b++)
		list = unlink_lazy(&s->old[b], list);
	return list;
}

struct va *__busy_remove(struct busy_shard *s, uint64_t start,
			 unsigned refuse, struct va ***retired)
{
	*retired = s->old ? migrate(s) : NULL;
	for (struct va **link = chain(s, start); *link;
	     link = &(*link)->next) {
		struct va *va = *link;

		if (va->start == start && !(va->flags & VA_LAZY)) {
			if (va->flags & refuse)
				return NULL;
			*link = va->next;
			s->count--;
			s->bytes -= va->end - va->start;
			return va;
		}
	}
	return NULL;
}

void busy_lock_all(struct busy_map *m)
{
	for (int i = 0; i < VMAP_BUSY_SHARDS; i++)
		pthread_mutex_lock(&m->shard[i].lock);
}

void busy_unlock_all(struct busy_map *m)
{
	for (int i = VMAP_BUSY_SHARDS - 1; i >= 0; i--)
		pthread_mutex_unlock(&m->shard[i].lock);
}

struct walk {
	int (*fn)(void *, const struct va *);
	void *arg;
};

static int walk_one(void *arg, struct va *va)
{
	struct walk *w = arg;

	return w->fn(w->arg, va);
}

int __busy_walk(struct busy_map *m, int (*fn)(void *, const struct va *),
		void *arg)
{
	struct walk w = { fn, arg };
	int err = 0;

	for (int i = 0; i < VMAP_BUSY_SHARDS && !err; i++)
		err = each(&m->shard[i], walk_one, &w);
	return err;
}

struct validate {
	struct busy_map *m;
	struct busy_shard *s;
	uint64_t count, bytes;
	char *msg;
	size_t len;
};

static int validate_one(void *arg, struct va *va)
{
	struct validate *v = arg;
	struct va *x;

	if (va->flags & VA_LAZY)
		return 0; /* legacy build: a lazy area, not counted as busy */

	/* In the right shard, and found by a lookup. */
	for (x = *chain(v->s, va->start); x && x != va; x = x->next)
		;
	if (busy_shard_of(v->m, va->start) != v->s || !x) {
		snprintf(v->msg, v->len,
			 "busy area %#llx is in the wrong shard or bucket",
			 (unsigned long long)va->start);
		return -1;
	}
	v->count++;
	v->bytes += va->end - va->start;
	return 0;
}

int __busy_validate(struct busy_map *m, char *msg, size_t len)
{
	for (int i = 0; i < VMAP_BUSY_SHARDS; i++) {
		struct busy_shard *s = &m->shard[i];
		struct validate v = { m, s, 0, 0, msg, len };

		if (each(s, validate_one, &v))
			return -1;
		if (v.count != s->count || v.bytes != s->bytes) {
			snprintf(msg, len,
				 "busy shard %d holds %llu areas / %#llx bytes, "
				 "counters say %llu / %#llx",
				 i, (unsigned long long)v.count,
				 (unsigned long long)v.bytes,
				 (unsigned long long)s->count,
				 (unsigned long long)s->bytes);
			return -1;
		}
	}
	return 0;
}

/* Position p counts the new table's buckets, then the old table's.  The
 * tables may grow between two calls: then buckets are seen twice or not at
 * all, which vmap_dump documents. */
bool __busy_walk_part(struct busy_shard *s, uint64_t *pos, uint64_t buckets,
		      int (*fn)(void *, const struct va *), void *arg,
		      int *err)
{
	uint64_t nnew = s->mask + 1, nold = s->old ? s->old_mask + 1 : 0;

	for (uint64_t k = 0; k < buckets && !*err; k++, ++*pos) {
		struct va *va;

		if (*pos < nnew)
			va = s->buckets[*pos];
		else if (*pos - nnew < nold && *pos - nnew >= s->moved)
			va = s->old[*pos - nnew];
		else if (*pos - nnew < nold)
			continue;
		else
			return true;
		for (; va && !*err; va = va->next)
			if (!(va->flags & VA_LAZY))
				*err = fn(arg, va);
	}
	return *pos >= nnew + nold;
}
