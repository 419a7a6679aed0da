/* SPDX-License-Identifier: MIT */
/*
 * flight.c - asynchronous flushes: batches whose invalidation was started
 * and has not been reported done.
 *
 * A GPU or an IOMMU invalidates its TLB asynchronously: the driver queues the
 * invalidation and learns later -- a fence, a completion interrupt -- that it
 * is done (Linux's IOVA flush queue, freedreno's fence-driven free list).  In
 * a space with a flush_async callback a purge therefore ends at the flush:
 * the callback starts the invalidation and names it with a token, and the
 * batch, sorted and flushed, waits here until the driver calls
 * vmap_flush_complete with that token -- from any thread, in any order.  Only
 * then does it go where a synchronous purge would have put it at once: the
 * node pools and the free tree.  The rule "no reuse before the flush" becomes
 * "no reuse before the completion": a batch here is in no structure an
 * allocation looks at.
 *
 * A batch leaves the lazy counters when it gets here (it is no longer
 * waiting for a purge: counting it lazy would make every free past the
 * threshold try a purge that finds nothing) and is counted in flight
 * instead, until it is back in the free space.
 *
 * The token is the callback's return value, so a completion can come before
 * the library has it: the invalidation was quick, or the purging thread was
 * descheduled between the callback's return and the flight's start.  While a
 * call is under way, every completion is remembered (in an array that grows
 * as needed), and the call's flight, if it has one of those tokens, starts
 * completed; the others are forgotten when it starts.  At any other time a
 * token no flight has is -ENOENT.
 *
 * Giving a batch back needs the purge mutex (the pools are the purge's).  A
 * completion takes it if it is free; if someone holds it -- a purge whose
 * flush callback may be waiting for this very completion, this thread, a
 * query -- the batch is left on the done list, and the holder gives it back
 * as it lets go: every holder unlocks through purge_unlock, which settles,
 * unlocks, and looks again for a completion that came in between (one of
 * the two always sees the other).  So vmap_flush_complete never waits for
 * the purge mutex, and no completed batch waits for a later call.  An allocation that
 * finds no room gives back what is done, and may wait for completions
 * (reclaim.c).
 */
#include <errno.h>
#include <stdlib.h>

#include "internal.h"

/*
 * A flight needs no memory of its own, so starting one cannot fail: it is
 * the batch's own sorted list, and its first record -- a lazy area, whose
 * tree fields are unused until it is free again -- carries the token and the
 * link to the next flight.
 */
#define FLIGHT_NEXT(head) ((head)->ft.parent)
#define FLIGHT_TOKEN(head) ((head)->ft.max)

void flights_init(vmap_space *s, vmap_flush_async_fn fn)
{
	s->flush_async = fn;
	s->flights = s->done = NULL;
	s->flight_areas = s->flight_pages = 0;
	s->flights_open = s->completions = 0;
	s->calling = false;
	s->early = NULL;
	s->nearly = s->early_cap = 0;
	pthread_mutex_init(&s->flight_lock, NULL);
	pthread_cond_init(&s->flight_cond, NULL);
}

void flights_fini(vmap_space *s, void (*release)(struct va *))
{
	for (int k = 0; k < 2; k++)
		for (struct va *f = k ? s->done : s->flights, *nf; f; f = nf) {
			nf = FLIGHT_NEXT(f);
			for (struct va *v = f, *next; v; v = next) {
				next = v->next;
				release(v);
			}
		}
	free(s->early);
	pthread_cond_destroy(&s->flight_cond);
	pthread_mutex_destroy(&s->flight_lock);
}

/* A flight's areas and pages (a marker counts for nothing). */
static void count(const vmap_space *s, const struct va *v, uint64_t *areas,
		  uint64_t *pages)
{
	for (*areas = *pages = 0; v; v = v->next)
		if (!(v->flags & VA_DIRTY)) {
			++*areas;
			*pages += space_pages(s, v->end - v->start);
		}
}

uint64_t __flight_call(vmap_space *s, const struct vmap_range *r, size_t n)
{
	pthread_mutex_lock(&s->flight_lock);
	s->calling = true;
	s->nearly = 0;
	pthread_mutex_unlock(&s->flight_lock);
	vm_count(&s->flushes, 1);
	vm_count(&s->ranges_flushed, n);
	return s->flush_async(s->flush_ctx, r, n);
}

/* Flight lock held: was token completed before its call returned? */
static bool __early(vmap_space *s, uint64_t token)
{
	for (size_t i = 0; i < s->nearly; i++)
		if (s->early[i] == token)
			return true;
	return false;
}

void __flight_start(vmap_space *s, uint64_t token, struct va *list)
{
	struct va *keep = NULL, **tail = &keep;
	uint64_t areas, pages;

	/* A live block's dirty range rode along for the flush only: its
	 * record is the block's, and its space stays in the block. */
	for (struct va *v = list, *next; v; v = next) {
		next = v->next;
		if (!(v->flags & VA_DIRTY)) {
			*tail = v;
			tail = &v->next;
		}
	}
	*tail = NULL;
	/* A flush of nothing but dirty ranges (or of nothing, forced) must
	 * still be completed: a marker record, flagged VA_DIRTY, holds its
	 * token.  Without memory for one, its token is unknown at once. */
	if (!keep) {
		if (va_get(s, &keep, 1)) {
			pthread_mutex_lock(&s->flight_lock);
			s->calling = false;
			pthread_mutex_unlock(&s->flight_lock);
			return;
		}
		keep->start = keep->end = s->base;
		keep->flags = VA_DIRTY;
		keep->next = NULL;
	}
	count(s, keep, &areas, &pages);
	FLIGHT_TOKEN(keep) = token;
	pthread_mutex_lock(&s->flight_lock);
	/* Out of the lazy counters, into the flight counters, in one hold of
	 * the flight lock (vmap_check, holding it, sees one or the other). */
	lazy_retire(&s->lazy, pages, areas);
	s->flight_areas += areas;
	s->flight_pages += pages;
	if (__early(s, token)) {
		/* The invalidation finished before we knew its name. */
		FLIGHT_NEXT(keep) = s->done;
		s->done = keep;
	} else {
		s->flights_open++;
		FLIGHT_NEXT(keep) = s->flights;
		s->flights = keep;
	}
	s->calling = false;
	pthread_mutex_unlock(&s->flight_lock);
}

int vmap_flush_complete(vmap_space *s, uint64_t token)
{
	struct va **link, *f;
	bool found = false;

	if (!s || !s->flush_async)
		return -EINVAL;
	pthread_mutex_lock(&s->flight_lock);
	/* Room to remember it first (see below), so that a failure changes
	 * nothing and the caller may simply complete again. */
	if (s->calling && s->nearly == s->early_cap) {
		size_t cap = s->early_cap ? 2 * s->early_cap : 16;
		uint64_t *e = vm_realloc(s->early, cap * sizeof(*e));

		if (!e) {
			pthread_mutex_unlock(&s->flight_lock);
			return -ENOMEM;
		}
		s->early = e;
		s->early_cap = cap;
	}
	for (link = &s->flights; (f = *link);) {
		if (FLIGHT_TOKEN(f) != token) {
			link = &FLIGHT_NEXT(f);
			continue;
		}
		*link = FLIGHT_NEXT(f);
		FLIGHT_NEXT(f) = s->done;
		s->done = f;
		s->flights_open--;
		found = true;
	}
	/* Any token completed while a flush_async call is under way may be
	 * the one it is returning right now (a fast GPU, a preempted CPU; or,
	 * with a shared fence, again): remembered, it completes that call's
	 * batch as soon as it is in flight. */
	if (s->calling) {
		s->early[s->nearly++] = token;
		found = true;
	}
	if (found) {
		s->completions++;
		pthread_cond_broadcast(&s->flight_cond);
	}
	pthread_mutex_unlock(&s->flight_lock);
	if (!found)
		return -ENOENT;
	/* Give it back now if nobody holds the purge mutex; else its holder
	 * does, as it lets go (purge_unlock). */
	if (!vm_in_flush(s) && !pthread_mutex_trylock(&s->purge_lock))
		purge_unlock(s);
	return 0;
}

uint64_t __flights_settle(vmap_space *s)
{
	struct va *done, *next;
	uint64_t total = 0, areas, pages;

	if (!s->flush_async)
		return 0;
	pthread_mutex_lock(&s->flight_lock);
	done = s->done;
	s->done = NULL;
	pthread_mutex_unlock(&s->flight_lock);
	for (; done; done = next) {
		next = FLIGHT_NEXT(done);
		count(s, done, &areas, &pages);
		/* Back into the lazy count for the moment it takes to give
		 * them back: __vm_give retires them from there, under the
		 * free lock, as a synchronous purge does. */
		pthread_mutex_lock(&s->flight_lock);
		lazy_adopt(&s->lazy, pages, areas);
		s->flight_areas -= areas;
		s->flight_pages -= pages;
		pthread_mutex_unlock(&s->flight_lock);
		if (done->flags & VA_DIRTY) { /* a marker: alone */
			va_put(s, done);
			continue;
		}
		total += __vm_give(s, done, false);
	}
	return total;
}

void purge_unlock(vmap_space *s)
{
	bool done;

	for (;;) {
		__flights_settle(s);
		pthread_mutex_unlock(&s->purge_lock);
		if (!s->flush_async)
			return;
		/* A completion that found the mutex held, after the settle
		 * above, left its batch for us: look once more. */
		pthread_mutex_lock(&s->flight_lock);
		done = s->done != NULL;
		pthread_mutex_unlock(&s->flight_lock);
		if (!done || pthread_mutex_trylock(&s->purge_lock))
			return;
	}
}

bool flights_pending(vmap_space *s)
{
	bool any;

	if (!s->flush_async)
		return false;
	pthread_mutex_lock(&s->flight_lock);
	any = s->flights || s->done;
	pthread_mutex_unlock(&s->flight_lock);
	return any;
}

bool flights_wait(vmap_space *s)
{
	bool any;

	if (!s->flush_async)
		return false;
	pthread_mutex_lock(&s->flight_lock);
	for (uint64_t seen = s->completions;
	     s->flights && !s->done && s->completions == seen;)
		pthread_cond_wait(&s->flight_cond, &s->flight_lock);
	any = s->done != NULL;
	pthread_mutex_unlock(&s->flight_lock);
	return any;
}

int __flights_walk(vmap_space *s, int (*fn)(void *, const struct va *),
		   void *arg)
{
	int err = 0;

	for (int k = 0; k < 2 && !err; k++)
		for (struct va *f = k ? s->done : s->flights; f && !err;
		     f = FLIGHT_NEXT(f))
			for (struct va *v = f; v && !err; v = v->next)
				if (!(v->flags & VA_DIRTY))
					err = fn(arg, v);
	return err;
}
