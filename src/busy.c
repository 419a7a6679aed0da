/* SPDX-License-Identifier: MIT */
/*
 * busy.c - the busy map: start address -> busy area.
 *
 * vmap_free() must find an area from its start address and nothing else.  A
 * hash table does that in O(1), and splitting it into VMAP_BUSY_SHARDS shards,
 * each with its own mutex, lets frees of different areas run in parallel with
 * each other and with allocation (which holds the free lock, not these).
 *
 * Each shard is a chained table that doubles when it holds more areas than
 * buckets.  Doubling rehashes one shard only (1/32 of the areas), under that
 * shard's lock; if memory for the bigger table cannot be had, the shard keeps
 * its table and its chains grow longer, which is slower but never wrong.
 */
#include <stdio.h>
#include <stdlib.h>

#include "internal.h"

#define INITIAL_BUCKETS 8

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

static inline struct va **bucket(struct busy_shard *s, uint64_t start)
{
	return &s->buckets[mix(start) & s->mask];
}

int busy_init(struct busy_map *m)
{
	for (int i = 0; i < VMAP_BUSY_SHARDS; i++) {
		struct busy_shard *s = &m->shard[i];

		s->buckets = calloc(INITIAL_BUCKETS, sizeof(*s->buckets));
		if (!s->buckets) {
			while (i--) {
				pthread_mutex_destroy(&m->shard[i].lock);
				free(m->shard[i].buckets);
			}
			return -1;
		}
		pthread_mutex_init(&s->lock, NULL);
		s->mask = INITIAL_BUCKETS - 1;
		s->count = 0;
		s->bytes = 0;
	}
	return 0;
}

void busy_fini(struct busy_map *m, void (*release)(struct va *))
{
	for (int i = 0; i < VMAP_BUSY_SHARDS; i++) {
		struct busy_shard *s = &m->shard[i];

		for (uint64_t b = 0; b <= s->mask; b++) {
			struct va *va = s->buckets[b], *next;

			for (; va; va = next) {
				next = va->next;
				release(va);
			}
		}
		free(s->buckets);
		pthread_mutex_destroy(&s->lock);
	}
}

static void grow(struct busy_shard *s)
{
	uint64_t n = (s->mask + 1) * 2;
	struct va **nb = calloc(n, sizeof(*nb));

	if (!nb)
		return;
	for (uint64_t b = 0; b <= s->mask; b++) {
		struct va *va = s->buckets[b], *next;

		for (; va; va = next) {
			struct va **head = &nb[mix(va->start) & (n - 1)];

			next = va->next;
			va->next = *head;
			*head = va;
		}
	}
	free(s->buckets);
	s->buckets = nb;
	s->mask = n - 1;
}

void __busy_insert(struct busy_shard *s, struct va *va)
{
	struct va **head;

	if (s->count > s->mask)
		grow(s);
	head = bucket(s, va->start);
	va->next = *head;
	*head = va;
	s->count++;
	s->bytes += va->end - va->start;
}

struct va *__busy_remove(struct busy_shard *s, uint64_t start)
{
	for (struct va **link = bucket(s, start); *link;
	     link = &(*link)->next) {
		struct va *va = *link;

		if (va->start == start) {
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

int __busy_walk(struct busy_map *m, int (*fn)(void *, const struct va *),
		void *arg)
{
	for (int i = 0; i < VMAP_BUSY_SHARDS; i++) {
		struct busy_shard *s = &m->shard[i];

		for (uint64_t b = 0; b <= s->mask; b++)
			for (struct va *va = s->buckets[b]; va; va = va->next) {
				int err = fn(arg, va);

				if (err)
					return err;
			}
	}
	return 0;
}

int __busy_validate(struct busy_map *m, char *msg, size_t len)
{
	for (int i = 0; i < VMAP_BUSY_SHARDS; i++) {
		struct busy_shard *s = &m->shard[i];
		uint64_t count = 0, bytes = 0;

		for (uint64_t b = 0; b <= s->mask; b++)
			for (struct va *va = s->buckets[b]; va; va = va->next) {
				if (busy_shard_of(m, va->start) != s ||
				    bucket(s, va->start) != &s->buckets[b]) {
					snprintf(msg, len,
						 "busy area %#llx is in the "
						 "wrong shard or bucket",
						 (unsigned long long)va->start);
					return -1;
				}
				count++;
				bytes += va->end - va->start;
			}
		if (count != s->count || bytes != s->bytes) {
			snprintf(msg, len,
				 "busy shard %d holds %llu areas / %#llx bytes, "
				 "counters say %llu / %#llx",
				 i, (unsigned long long)count,
				 (unsigned long long)bytes,
				 (unsigned long long)s->count,
				 (unsigned long long)s->bytes);
			return -1;
		}
	}
	return 0;
}
