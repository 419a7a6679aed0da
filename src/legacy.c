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
	uint64_t pages = space_pages(s, va->end - va->start);
	uint64_t nr = atomic_fetch_add_explicit(&s->lazy.pages, pages,
						memory_order_relaxed) + pages;

	atomic_fetch_add_explicit(&s->lazy.areas, 1, memory_order_relaxed);
	__busy_insert_lazy(sh, va);
	return nr;
}

struct va *vm_take(vmap_space *s)
{
	struct va *list = NULL;

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
	return list;
}

#endif
