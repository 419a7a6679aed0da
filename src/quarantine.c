/* SPDX-License-Identifier: MIT */
/*
 * quarantine.c - ranges the kernel refused, out of use until it relents.
 *
 * In a memory space a range goes back to the free tree only once it is plain
 * reserved space again: released, no file mapped, no guard, no protection of
 * the caller's.  The kernel should never refuse that for a mapping of ours,
 * but a hostile process can arrange it (a range mlock()ed where
 * MADV_DONTNEED_LOCKED is missing, vm.max_map_count reached) and fault
 * injection does.  Such an area must not be handed out, and must not stay on
 * the lazy list either: it would count towards lazy_max_pages for ever, make
 * every free purge, and have every purge retry all of it (the quadratic
 * failure issue 11 measured: 7.9 M release errors).  So it comes here, counted
 * apart, and each purge retries a few of them, oldest first: after a purge
 * where a retry failed, VMAP_QUARANTINE_RETRY; after one where all succeeded,
 * twice as many as then.  A kernel that keeps refusing costs each purge a
 * bounded number of system calls; one that relents gets n areas back in
 * O(log n) purges.
 *
 * A retried area rejoins the lazy accounting and the purge's batch, flagged
 * VA_QUARANTINED so the restore remaps it whole (memory.c); refused again, it
 * comes back to the tail of the list.
 */
#include <stdlib.h>

#include "internal.h"

void quarantine_add(vmap_space *s, struct va *va)
{
	va->flags &= ~VA_QUARANTINED;
	va->next = NULL;
	pthread_mutex_lock(&s->quarantine_lock);
	*s->quarantine_tail = va;
	s->quarantine_tail = &va->next;
	s->quarantine_areas++;
	s->quarantine_pages += space_pages(s, va->end - va->start);
	pthread_mutex_unlock(&s->quarantine_lock);
	atomic_fetch_add_explicit(&s->release_errors, 1, memory_order_relaxed);
}

struct va *quarantine_retry(vmap_space *s, uint64_t *n)
{
	struct va *list = NULL, **tail = &list;
	uint64_t pages = 0;

	*n = 0;
	pthread_mutex_lock(&s->quarantine_lock);
	for (uint64_t tried = 0;
	     s->quarantine && tried < s->quarantine_budget; tried++) {
		struct va *va = s->quarantine;

		s->quarantine = va->next;
		if (!s->quarantine)
			s->quarantine_tail = &s->quarantine;
		/* A range that may hold a hole may hold someone else's
		 * mapping there too: it must not join a batch, whose
		 * release would drop that mapping's pages.  It is filled
		 * first, if nothing at all is mapped in it; else it waits. */
		if ((va->flags & VA_HOLE) &&
		    s->os->fill_hole(va->start, va->end - va->start)) {
			va->next = NULL;
			*s->quarantine_tail = va;
			s->quarantine_tail = &va->next;
			s->quarantine_budget = VMAP_QUARANTINE_RETRY;
			continue;
		}
		va->flags = (va->flags & ~VA_HOLE) | VA_QUARANTINED;
		*tail = va;
		tail = &va->next;
		pages += space_pages(s, va->end - va->start);
		++*n;
	}
	*tail = NULL;
	s->quarantine_areas -= *n;
	s->quarantine_pages -= pages;
	/* Lazy again, under the same hold, so vmap_stats never misses them;
	 * the purge gives them back or quarantines them again. */
	lazy_adopt(&s->lazy, pages, *n);
	pthread_mutex_unlock(&s->quarantine_lock);
	atomic_fetch_add_explicit(&s->quarantine_retries, *n,
				  memory_order_relaxed);
	return list;
}

void quarantine_outcome(vmap_space *s, uint64_t tried, uint64_t failed)
{
	if (failed)
		s->quarantine_budget = VMAP_QUARANTINE_RETRY;
	else if (tried == s->quarantine_budget && tried < (1ull << 62))
		s->quarantine_budget *= 2;
}

int __quarantine_walk(vmap_space *s, int (*fn)(void *, const struct va *),
		      void *arg)
{
	int err = 0;

	for (struct va *v = s->quarantine; v && !err; v = v->next)
		err = fn(arg, v);
	return err;
}

void quarantine_fini(vmap_space *s, void (*release)(struct va *))
{
	struct va *v, *next;

	for (v = s->quarantine; v; v = next) {
		next = v->next;
		release(v);
	}
	s->quarantine = NULL;
	s->quarantine_tail = &s->quarantine;
	pthread_mutex_destroy(&s->quarantine_lock);
}
