/* SPDX-License-Identifier: MIT */
/*
 * legacy.c - the lazy-free mechanism the 2016 patch replaced, for the
 * benchmark's "legacy" backend only (built with VMAP_LEGACY; empty
 * otherwise).
 *
 * Before Linux 4.7 a freed area stayed in the busy tree with a lazy flag, and
 * a purge found the lazy areas by walking every busy area under a purge lock:
 * its cost grew with the number of *busy* areas, not lazy ones -- which is
 * what the seed's patch fixed by keeping a separate lazy list.  Here, a freed
 * area is put back into the busy map flagged VA_LAZY (not counted as busy),
 * and vm_take walks every shard of the map.  Everything else -- sorting,
 * flushing, giving back -- is vmap's own, so a comparison measures the one
 * mechanism and nothing else.
 */
#include "internal.h"

#ifdef VMAP_LEGACY

uint64_t vm_publish(vmap_space *s, struct busy_shard *sh, struct va *va)
{
	uint64_t nr = lazy_count(&s->lazy, space_pages(s, va->end - va->start));

	__busy_insert_lazy(sh, va);
	return nr;
}

unsigned vm_take(vmap_space *s, uint64_t *since, struct va **lists)
{
	struct va *list = NULL;

	*since = atomic_exchange(&s->lazy.since, 0);
	for (int i = 0; i < VMAP_BUSY_SHARDS; i++) {
		struct busy_shard *sh = &s->busy.shard[i];
		struct va *part, *tail;

		pthread_mutex_lock(&sh->lock);
		part = __busy_unlink_lazy(sh);
		pthread_mutex_unlock(&sh->lock);
		for (tail = part; tail && tail->next; tail = tail->next)
			;
		if (tail) {
			tail->next = list;
			list = part;
		}
	}
	lists[0] = list;
	return list != NULL;
}

struct lazy_only {
	int (*fn)(void *, const struct va *);
	void *arg;
};

static int lazy_only(void *arg, const struct va *va)
{
	struct lazy_only *l = arg;

	return va->flags & VA_LAZY ? l->fn(l->arg, va) : 0;
}

int __vm_lazy_walk(vmap_space *s, int (*fn)(void *, const struct va *),
		   void *arg)
{
	struct lazy_only l = { fn, arg };
	int err;

	busy_lock_all(&s->busy);
	err = __busy_walk(&s->busy, lazy_only, &l);
	busy_unlock_all(&s->busy);
	return err;
}

#endif
