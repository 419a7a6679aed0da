/* SPDX-License-Identifier: MIT */
/*
 * record.c - the space's records (struct va), from slabs.
 *
 * An allocation through the tree needs up to two records and a purge frees
 * as many as it gives back; two malloc calls per allocation cost more than
 * the rest of the fast path, and malloc's header made a live area cost 16
 * bytes more than its record.  So each space carves its records from chunks
 * of RECORD_CHUNK bytes and keeps the freed ones on a list for the next
 * allocation: a record costs sizeof(struct va), and getting one a lock and
 * a pop.  Chunks go back to the heap only with the space (the records a
 * space needs at once are bounded by its busy areas and free blocks; a space
 * that once held many keeps their room, as the kernel's slab caches do).
 *
 * The lock is a leaf: taken with any other lock held, it takes none.
 *
 * In the ASan and fault-injection builds every record is its own heap
 * object instead, so that ASan sees a use of a freed record (the seed's race
 * test depends on it) and tests/fault_test.c can fail any single record.
 */
#include <stdlib.h>

#include "internal.h"

/* gcc says __SANITIZE_ADDRESS__; clang (scripts/fuzz) __has_feature. */
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define RECORD_HEAP 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(VMAP_FAULT)
#define RECORD_HEAP 1
#endif

#define RECORD_CHUNK (64u << 10)

/* A chunk's header; its records follow. */
struct record_chunk {
	struct record_chunk *next;
	uint64_t pad; /* the first record 16-byte aligned, as malloc's were */
};

void records_init(struct records *r)
{
	pthread_mutex_init(&r->lock, NULL);
	r->free = NULL;
	r->chunks = NULL;
	r->bytes = 0;
}

#ifdef RECORD_HEAP
int va_get(vmap_space *s, struct va **out, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		out[i] = vm_malloc(sizeof(struct va));
		if (!out[i]) {
			while (i--)
				free(out[i]);
			return -1;
		}
	}
	(void)s;
	return 0;
}

void va_put_list(vmap_space *s, struct va *list)
{
	while (list) {
		struct va *next = list->next;

		free(list);
		list = next;
	}
	(void)s;
}

void records_fini(struct records *r)
{
	pthread_mutex_destroy(&r->lock);
}

bool records_own_all(void)
{
	return false;
}

uint64_t records_bytes(vmap_space *s)
{
	(void)s;
	return 0; /* each is malloc's: mallinfo2 tells */
}
#else
/* r locked: carve a new chunk onto the free list (0, or -1 with no
 * memory). */
static int grow(struct records *r)
{
	struct record_chunk *c = vm_malloc(RECORD_CHUNK);
	struct va *v, *end;

	if (!c)
		return -1;
	c->next = r->chunks;
	r->chunks = c;
	r->bytes += RECORD_CHUNK;
	v = (struct va *)(c + 1);
	end = v + (RECORD_CHUNK - sizeof(*c)) / sizeof(*v);
	for (; v < end; v++) {
		v->next = r->free;
		r->free = v;
	}
	return 0;
}

int va_get(vmap_space *s, struct va **out, unsigned n)
{
	struct records *r = &s->records;
	int err = 0;

	pthread_mutex_lock(&r->lock);
	for (unsigned i = 0; i < n && !err; i++) {
		if (!r->free && grow(r)) {
			/* Nothing taken: put back what this call got. */
			while (i--) {
				out[i]->next = r->free;
				r->free = out[i];
			}
			err = -1;
			break;
		}
		out[i] = r->free;
		r->free = out[i]->next;
	}
	pthread_mutex_unlock(&r->lock);
	return err;
}

void va_put_list(vmap_space *s, struct va *list)
{
	struct records *r = &s->records;
	struct va *tail;

	if (!list)
		return;
	for (tail = list; tail->next; tail = tail->next)
		;
	pthread_mutex_lock(&r->lock);
	tail->next = r->free;
	r->free = list;
	pthread_mutex_unlock(&r->lock);
}

void records_fini(struct records *r)
{
	while (r->chunks) {
		struct record_chunk *next = r->chunks->next;

		free(r->chunks);
		r->chunks = next;
	}
	pthread_mutex_destroy(&r->lock);
}

bool records_own_all(void)
{
	return true;
}

uint64_t records_bytes(vmap_space *s)
{
	uint64_t b;

	pthread_mutex_lock(&s->records.lock);
	b = s->records.bytes;
	pthread_mutex_unlock(&s->records.lock);
	return b;
}
#endif

void va_put(vmap_space *s, struct va *va)
{
	if (va) {
		va->next = NULL;
		va_put_list(s, va);
	}
}
