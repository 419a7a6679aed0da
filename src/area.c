/* SPDX-License-Identifier: MIT */
/*
 * area.c - an area's way through the space: placed (out of a node pool or
 * the free tree, into the busy map), freed (out of the busy map, onto a lazy
 * list or into the warm pool), or undone.  Mechanism only: when nothing
 * fits, or when a free makes much lazy, the callers ask the policy
 * (reclaim.c) what to do.
 *
 * Allocation: check the request; try this CPU's node pool (node.c); else
 * get the records it may need (before any lock, so running out of memory
 * never happens with the free lock held), then under the free lock find a
 * fit (the lowest, unless the space takes any), carve it out of its free
 * block, and enter the area in the busy map.
 *
 * Free: take the area out of the busy map and push it onto the lazy list; see
 * the comment in vm_free about the order of those steps.
 */
#include <errno.h>
#include <stdlib.h>

#include "internal.h"

#ifdef VMAP_TEST_HOOKS
void (*vm_test_after_publish)(vmap_space *s);
#endif

/* Turn a caller's request into a struct fit, or -EINVAL. */
int vm_make_fit(const vmap_space *s, uint64_t size, uint64_t align,
		    uint64_t phase, uint64_t nocross, uint64_t vstart,
		    uint64_t vend, unsigned flags, struct fit *f)
{
	uint64_t pmask = s->page_size - 1;

	if (!size || size > UINT64_MAX - pmask || (align & (align - 1)) ||
	    (nocross & (nocross - 1)) || (flags & ~VMAP_XALLOC_FLAGS_KNOWN) ||
	    vstart >= vend)
		return -EINVAL;
	f->size = (size + pmask) & ~pmask;
	if (s->guard) {
		/* The guard page is the area's last page. */
		if (f->size > UINT64_MAX - s->page_size)
			return -EINVAL;
		f->size += s->page_size;
	}
	f->align = align > pmask ? align : s->page_size;
	if ((phase & pmask) || phase >= f->align)
		return -EINVAL;
	if (nocross && (nocross <= pmask || nocross < f->size))
		return -EINVAL;
	f->phase = phase;
	f->nocross = nocross;
	f->topdown = flags & VMAP_XALLOC_TOPDOWN;
	f->nopurge = flags & VMAP_XALLOC_NOPURGE;
	/* Top-down always searches exactly (the header's promise). */
	f->any_fit = s->pools && !f->topdown &&
		     (f->align > s->page_size || f->nocross);

	/* Clip [vstart, vend) to the space and to whole pages. */
	f->lo = vstart > s->base ? vstart : s->base;
	f->hi = vend < s->end ? vend : s->end;
	if (f->lo >= f->hi || f->lo > UINT64_MAX - pmask)
		return -EINVAL;
	f->lo = (f->lo + pmask) & ~pmask;
	f->hi &= ~pmask;
	if (f->lo >= f->hi)
		return -EINVAL;
	return 0;
}

static int place(vmap_space *s, const struct fit *f, unsigned kind,
		 struct vblock *vb, uint64_t *addr)
{
	struct va *rec[2], *area, *spare, *block, *used, **retired;
	struct busy_shard *shard;
	uint64_t a;

	/* The common case: a flushed area of this size, from this CPU's
	 * node -- no free lock, no search, no new record. */
	if (node_take(s, f, kind, vb, addr))
		return 0;
	if (va_get(s, rec, 2)) {
		vm_count(&s->alloc_failures, 1);
		return -ENOMEM;
	}
	area = rec[0];
	spare = rec[1];
	pthread_mutex_lock(&s->free_lock);
	block = ft_find(&s->free, f, &a);
	if (!block) {
		pthread_mutex_unlock(&s->free_lock);
		area->next = spare;
		spare->next = NULL;
		va_put_list(s, area);
		return -ENOSPC;
	}
	used = ft_carve(&s->free, block, a, f->size, &spare);
	area->start = a;
	area->end = a + f->size;
	/* Flushed, it goes back to this CPU's node (node.c). */
	area->flags = kind | (s->pools ? node_here(s) << VA_NODE_SHIFT : 0);
	area->vb = vb;
	/* Still under the free lock, so the area is never in neither
	 * structure when vmap_check looks. */
	shard = busy_shard_of(&s->busy, a);
	pthread_mutex_lock(&shard->lock);
	retired = __busy_insert(shard, area);
	pthread_mutex_unlock(&shard->lock);
	pthread_mutex_unlock(&s->free_lock);

	va_put(s, used);
	va_put(s, spare);
	free(retired);
	*addr = a;
	return 0;
}

/* Undo an allocation nobody has seen: straight back to the node pool it
 * came from, or the free tree. */
static void unplace(vmap_space *s, uint64_t addr)
{
	struct busy_shard *shard = busy_shard_of(&s->busy, addr);
	struct va *va, *extra, **retired;

	pthread_mutex_lock(&s->free_lock);
	pthread_mutex_lock(&shard->lock);
	va = __busy_remove(shard, addr, 0, &retired);
	pthread_mutex_unlock(&shard->lock);
	if (va->flags & VA_POOLED) {
		/* Under the free lock still: vmap_check (which takes every
		 * lock) cannot look between the two structures. */
		node_untake(s, va);
		pthread_mutex_unlock(&s->free_lock);
		free(retired);
		return;
	}
	extra = ft_insert(&s->free, va->start, va->end, &va);
	pthread_mutex_unlock(&s->free_lock);
	va_put(s, va);
	va_put(s, extra);
	free(retired);
}

/* Add flags to the busy area at addr, which the caller owns and nobody
 * else has seen; its flags after, and its end in *end. */
static unsigned flag_area(vmap_space *s, uint64_t addr, unsigned add,
			  uint64_t *end)
{
	struct busy_shard *shard = busy_shard_of(&s->busy, addr);
	struct va *va;
	unsigned flags;

	pthread_mutex_lock(&shard->lock);
	va = __busy_find(shard, addr);
	va->flags |= add;
	flags = va->flags;
	*end = va->end;
	pthread_mutex_unlock(&shard->lock);
	return flags;
}

int vm_alloc(vmap_space *s, const struct fit *f, unsigned kind,
	     struct vblock *vb, uint64_t *addr)
{
	uint64_t a, calls = 0;
	int err;

	/* vm_make_fit counted the guard page in; blocks and reservations
	 * have none. */
	if (s->guard && !(kind & (VA_BLOCK | VA_RESERVED)))
		kind |= VA_GUARD;
	err = place(s, f, kind, vb, &a);
	if (err)
		return err;
	if (kind & VA_GUARD) {
		err = s->os->guard_install(guard_page(s, a + f->size),
					   s->page_size, &calls);
		vm_count(&s->guard_syscalls, calls);
		if (err < 0) {
			unplace(s, a);
			vm_count(&s->alloc_failures, 1);
			return -ENOMEM;
		}
		if (err) /* an mprotect guard: only a remap removes it */
			flag_area(s, a, VA_GUARD_MPROT, &(uint64_t){ 0 });
	}
	*addr = a;
	return 0;
}

/* Undo an allocation nobody has seen, whose range the kernel would not turn
 * back into plain space: out of use until a purge manages to. */
static void quarantine_unplace(vmap_space *s, uint64_t addr, unsigned flags)
{
	struct busy_shard *shard = busy_shard_of(&s->busy, addr);
	struct va *va, **retired;

	pthread_mutex_lock(&shard->lock);
	va = __busy_remove(shard, addr, 0, &retired);
	va->flags |= flags;
	/* Under the shard lock, so vmap_check sees it in one place. */
	quarantine_add(s, va);
	pthread_mutex_unlock(&shard->lock);
	free(retired);
}

void vm_unalloc(vmap_space *s, uint64_t addr, uint64_t mapped)
{
	uint64_t end, calls = 0;
	unsigned flags = flag_area(s, addr, 0, &end);
	int err = 0;

	/* Whatever was mapped goes, guard and all, in one remap of the
	 * area; a marker guard alone needs only its removal. */
	if (mapped || (flags & VA_GUARD_MPROT))
		err = memory_remap(s, addr, end - addr);
	else if (flags & VA_GUARD)
		err = s->os->guard_remove(&(uint64_t){ guard_page(s, end) }, 1,
					  s->page_size, &calls);
	vm_count(&s->guard_syscalls, calls);
	if (err)
		quarantine_unplace(s, addr, err == -EEXIST ? VA_HOLE : 0);
	else
		unplace(s, addr);
}

int vm_free(vmap_space *s, uint64_t addr, unsigned how, uint64_t bytes,
	    uint64_t *lazy)
{
	struct busy_shard *shard = busy_shard_of(&s->busy, addr);
	struct va *va, **retired;

	pthread_mutex_lock(&shard->lock);
	if (bytes && (va = __busy_find(shard, addr)) &&
	    va_usable_end(s, va) - va->start != bytes) {
		pthread_mutex_unlock(&shard->lock);
		return -EINVAL;
	}
	if ((how & FREE_RESERVED) && (va = __busy_find(shard, addr)) &&
	    !(va->flags & VA_RESERVED)) {
		pthread_mutex_unlock(&shard->lock);
		return -EPERM;
	}
	va = __busy_remove(shard, addr,
			   how & FREE_BLOCK	 ? 0
			   : how & FREE_RESERVED ? VA_BLOCK
						 : VA_BLOCK | VA_RESERVED,
			   &retired);
	if (!va) {
		/* Not a busy area -- or one this call may not free. */
		va = __busy_find(shard, addr);
		pthread_mutex_unlock(&shard->lock);
		free(retired);
		return va && (va->flags & VA_RESERVED) ? -EPERM : -ENOENT;
	}
	if (s->pool_max_pages && !(va->flags & VA_RESERVED) &&
	    __pool_put(s, shard, va)) {
		/* Kept warm: nothing to release. */
		pthread_mutex_unlock(&shard->lock);
		free(retired);
		node_count_free(s);
		*lazy = 0;
		return 0;
	}
	/*
	 * The order here is the seed's fix, and it matters.  Once va is on
	 * the lazy list, a purge on another thread may take it, give its
	 * range back and free the record -- at any instant.  Before 2016 the
	 * kernel marked the area lazy first and then read its size to update
	 * the counter: a use-after-free that Roman Pen found in review of the
	 * llist patch.  So everything that reads va (its size, here) happens
	 * before the push, and the decision to purge uses the value that the
	 * atomic add *returned*, not a re-read of the counter or of va.
	 * vm_publish() (lazy_push) adds then publishes; after it, va is not
	 * ours.
	 */
	*lazy = vm_publish(s, shard, va);
#ifdef VMAP_TEST_HOOKS
	/* The regression test of the seed's race: here another CPU's purge
	 * may take va, release it and free the record. */
	if (vm_test_after_publish)
		vm_test_after_publish(s);
#ifdef VMAP_TEST_OLD_ORDER
	{
		/* The pre-2016 order: the size read after publishing. */
		volatile uint64_t size = va->end - va->start;

		(void)size;
	}
#endif
#endif
	pthread_mutex_unlock(&shard->lock);
	free(retired);
	/* A block's pieces were counted instead. */
	if (!(how & FREE_BLOCK))
		node_count_free(s);
	return 0;
}

/* ---- in-place resizing (vmap_vrealloc) ---- */

/* What a resize refuses: not an area of the vmalloc family's, or one whose
 * mapping is not plain memory it may extend or cut. */
#define NO_RESIZE (VA_BLOCK | VA_RESERVED | VA_FILE | VA_PROT)

/* Move the guard page of an area from the page at `from` to the page at
 * `to`: the new one first, so that a failure leaves the old as it was. */
static int move_guard(vmap_space *s, uint64_t from, bool mprot, uint64_t to,
		      bool *to_mprot)
{
	uint64_t calls = 0;
	int err = s->os->guard_install(to, s->page_size, &calls);

	if (err >= 0) {
		*to_mprot = err;
		err = mprot ? memory_remap(s, from, s->page_size)
			    : s->os->guard_remove(&from, 1, s->page_size,
						  &calls);
		if (err) { /* the old guard stays: take the new one back */
			if (*to_mprot)
				memory_remap(s, to, s->page_size);
			else
				s->os->guard_remove(&to, 1, s->page_size,
						    &calls);
		}
	}
	vm_count(&s->guard_syscalls, calls);
	return err < 0 ? -ENOMEM : 0;
}

/* Grow the area in place to end at new_end, if the free block after it
 * reaches that far. */
static int grow(vmap_space *s, struct busy_shard *sh, uint64_t addr,
		uint64_t new_end)
{
	struct va *rec, *va, *used = NULL;
	const struct va *b;
	uint64_t old_end;
	bool mprot;
	int err = 0;

	if (va_get(s, &rec, 1))
		return -ENOMEM;
	pthread_mutex_lock(&s->free_lock);
	pthread_mutex_lock(&sh->lock);
	va = __busy_find(sh, addr);
	if (!va || (va->flags & NO_RESIZE)) {
		err = va ? -EINVAL : -ENOENT;
	} else {
		old_end = va->end;
		b = ft_at(&s->free, old_end);
		if (!b || b->end < new_end) {
			err = -ENOSPC;
		} else {
			used = ft_carve(&s->free, (struct va *)b, old_end,
					new_end - old_end, &rec);
			va->end = new_end;
			sh->bytes += new_end - old_end;
		}
	}
	mprot = va && (va->flags & VA_GUARD_MPROT);
	pthread_mutex_unlock(&sh->lock);
	pthread_mutex_unlock(&s->free_lock);
	va_put(s, rec);
	if (err || !s->guard) {
		va_put(s, used);
		return err;
	}
	/* The caller owns the area: nobody else looks at its guard. */
	err = move_guard(s, guard_page(s, old_end), mprot,
			 guard_page(s, new_end), &mprot);
	pthread_mutex_lock(&s->free_lock);
	pthread_mutex_lock(&sh->lock);
	va = __busy_find(sh, addr);
	if (err) { /* back as it was */
		struct va *extra;

		va->end = old_end;
		sh->bytes -= new_end - old_end;
		pthread_mutex_unlock(&sh->lock);
		/* A block used up by the carve left its record in `used`
		 * for this; one only shortened takes the range back whole,
		 * needing none. */
		extra = ft_insert(&s->free, old_end, new_end, &used);
		pthread_mutex_unlock(&s->free_lock);
		va_put(s, extra);
		va_put(s, used);
		return err;
	}
	va->flags = (va->flags & ~VA_GUARD_MPROT) | (mprot ? VA_GUARD_MPROT : 0);
	pthread_mutex_unlock(&sh->lock);
	pthread_mutex_unlock(&s->free_lock);
	va_put(s, used);
	return 0;
}

/* Shrink the area in place to end at new_end: the cut-off tail becomes a
 * lazy area of its own (with the old guard page, which its purge removes). */
static int shrink(vmap_space *s, struct busy_shard *sh, uint64_t addr,
		  uint64_t new_end, uint64_t *lazy)
{
	struct va *tail, *va;
	bool mprot = false;
	uint64_t old_end;
	int err = 0;

	if (va_get(s, &tail, 1))
		return -ENOMEM;
	pthread_mutex_lock(&sh->lock);
	va = __busy_find(sh, addr);
	if (!va || (va->flags & NO_RESIZE))
		err = va ? -EINVAL : -ENOENT;
	old_end = va ? va->end : 0;
	pthread_mutex_unlock(&sh->lock);
	/* The new guard before anything is cut: a failure changes nothing. */
	if (!err && s->guard) {
		uint64_t calls = 0;

		err = s->os->guard_install(guard_page(s, new_end),
					   s->page_size, &calls);
		vm_count(&s->guard_syscalls, calls);
		mprot = err > 0;
		err = err < 0 ? -ENOMEM : 0;
	}
	if (err) {
		va_put(s, tail);
		return err;
	}
	pthread_mutex_lock(&sh->lock);
	va = __busy_find(sh, addr);
	tail->start = new_end;
	tail->end = old_end;
	tail->flags = va->flags & (VA_GUARD | VA_GUARD_MPROT | ~VA_KIND_MASK);
	tail->vb = NULL;
	va->end = new_end;
	if (s->guard)
		va->flags = (va->flags & ~VA_GUARD_MPROT) |
			    (mprot ? VA_GUARD_MPROT : 0);
	sh->bytes -= old_end - new_end;
	/* As a free: count, then publish (see vm_free). */
	*lazy = vm_publish(s, sh, tail);
	pthread_mutex_unlock(&sh->lock);
	return 0;
}

int vm_resize(vmap_space *s, uint64_t addr, uint64_t bytes, uint64_t *lazy)
{
	struct busy_shard *sh = busy_shard_of(&s->busy, addr);
	uint64_t new_end = addr + bytes + (s->guard ? s->page_size : 0);
	uint64_t end;
	struct va *va;

	unsigned flags;

	pthread_mutex_lock(&sh->lock);
	va = __busy_find(sh, addr);
	end = va ? va->end : 0;
	flags = va ? va->flags : 0;
	pthread_mutex_unlock(&sh->lock);
	*lazy = 0;
	/* A vmap block's start is a piece's, not an area's (vmap_vfree's
	 * -ENOENT); what may not be resized is refused even at its size. */
	if (!va || (flags & VA_BLOCK))
		return -ENOENT;
	if (flags & NO_RESIZE)
		return -EINVAL;
	if (new_end == end)
		return 0;
	return new_end > end ? grow(s, sh, addr, new_end)
			     : shrink(s, sh, addr, new_end, lazy);
}

int vm_flag(vmap_space *s, uint64_t addr, unsigned add, uint64_t *size)
{
	struct busy_shard *sh = busy_shard_of(&s->busy, addr);
	struct va *va;

	pthread_mutex_lock(&sh->lock);
	va = __busy_find(sh, addr);
	if (va && !(va->flags & VA_BLOCK)) {
		va->flags |= add;
		*size = va_usable_end(s, va) - va->start;
	}
	pthread_mutex_unlock(&sh->lock);
	return va && !(va->flags & VA_BLOCK) ? 0 : -ENOENT;
}

int vm_unreserve_now(vmap_space *s, uint64_t addr)
{
	struct busy_shard *shard = busy_shard_of(&s->busy, addr);
	struct va *va, *extra, **retired = NULL;

	pthread_mutex_lock(&s->free_lock);
	pthread_mutex_lock(&shard->lock);
	va = __busy_find(shard, addr);
	if (!va || !(va->flags & VA_RESERVED)) {
		pthread_mutex_unlock(&shard->lock);
		pthread_mutex_unlock(&s->free_lock);
		return va && !(va->flags & VA_BLOCK) ? -EPERM : -ENOENT;
	}
	__busy_remove(shard, addr, 0, &retired);
	pthread_mutex_unlock(&shard->lock);
	/* Never handed out, so never mapped: nothing to flush, and no pool
	 * (a pooled record goes to the tree like any other). */
	extra = ft_insert(&s->free, va->start, va->end, &va);
	pthread_mutex_unlock(&s->free_lock);
	va_put(s, va);
	va_put(s, extra);
	free(retired);
	node_count_free(s);
	return 0;
}

bool vm_is_area(vmap_space *s, uint64_t addr)
{
	struct busy_shard *shard = busy_shard_of(&s->busy, addr);
	struct va *va;
	bool area;

	pthread_mutex_lock(&shard->lock);
	va = __busy_find(shard, addr);
	area = va && !(va->flags & VA_BLOCK);
	pthread_mutex_unlock(&shard->lock);
	return area;
}
