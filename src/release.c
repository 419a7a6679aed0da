/* SPDX-License-Identifier: MIT */
/*
 * release.c - what a purge does with its sorted batch before the ranges can
 * be handed out again: the one door between the purge and "releasing".
 *
 * A range space has the caller's flush callback: called once with the
 * coalesced ranges (or in pieces if no vector can be had).
 *
 * A memory space releases the pages itself: MADV_DONTNEED over the coalesced
 * ranges.  Batching is the point.  Dropping pages of a process that runs
 * threads on other CPUs costs a TLB shootdown per system call (~20 us on a
 * 2-vCPU VM), so the ranges go in vectors of up to 1024 per process_madvise()
 * call where the kernel takes it (Linux >= 6.16 flushes once per call), and
 * one madvise() per range elsewhere.  Around the release: a caller's
 * protection is undone before it (prepare), file mappings and guard pages
 * after it (restore).
 *
 * Released pages read as zero, which is what lets vzalloc skip the memset and
 * what keeps one owner's data from the next.  Locked pages (mlock, mlockall)
 * are released too, with MADV_DONTNEED_LOCKED where the kernel has it.  If the
 * kernel refuses part of a batch anyway, the areas of that batch are released
 * again one by one, so that only the areas it refuses alone stay out of use --
 * in quarantine (quarantine.c), never handed out unreleased.  (Zeroing by hand
 * instead would write into a caller's file where a vmap_vmap area is part of
 * the batch.)
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "internal.h"

/* ---- range spaces: the caller's flush ---- */

/*
 * Add v to the runs r[0..*n): into the last run if it touches or overlaps
 * it, else as a new run if there is room for one (cap); false if there is
 * not.  Lazy areas never overlap, but a live block's dirty range collected by
 * vmap_unmap_aliases can lie inside the block if a free retired it meanwhile
 * and this purge took it too.
 */
static bool add_run(struct vmap_range *r, size_t *n, size_t cap,
		    const struct va *v)
{
	if (*n && v->start <= r[*n - 1].end) {
		if (v->end > r[*n - 1].end)
			r[*n - 1].end = v->end;
		return true;
	}
	if (*n == cap)
		return false;
	r[(*n)++] = (struct vmap_range){ v->start, v->end };
	return true;
}

/* The space whose flush callback this thread is running, if any. */
static _Thread_local const vmap_space *flushing;

bool vm_in_flush(const vmap_space *s)
{
	return flushing == s;
}

static bool release_ranges(vmap_space *s, const struct vmap_range *r,
			   size_t n);

/* One flush: the caller's callback, or a memory space's release.  false if
 * the kernel refused part of a release. */
static bool call_flush(vmap_space *s, const struct vmap_range *r, size_t n)
{
	vm_count(&s->flushes, 1);
	vm_count(&s->ranges_flushed, n);
	if (s->memory)
		return release_ranges(s, r, n);
	if (s->flush) {
		const vmap_space *outer = flushing;

		flushing = s;
		s->flush(s->flush_ctx, r, n);
		flushing = outer;
	}
	return true;
}

/* Flush the sorted list of n records: once, or in pieces if the vector
 * cannot grow.  false if a release failed somewhere. */
static bool flush_list(vmap_space *s, const struct va *list, uint64_t n)
{
	bool ok = true;

	struct vmap_range piece[64];
	size_t runs = 0;

	if (n > s->vec_cap) {
		struct vmap_range *v = vm_realloc(s->vec, n * sizeof(*v));

		if (v) {
			s->vec = v;
			s->vec_cap = n;
		}
	}
	if (n <= s->vec_cap) {
		for (; list; list = list->next)
			add_run(s->vec, &runs, n, list);
		return call_flush(s, runs ? s->vec : piece, runs);
	}
	/* No memory for one vector: flush the sorted ranges piece by piece. */
	for (; list; list = list->next)
		if (!add_run(piece, &runs, 64, list)) {
			ok &= call_flush(s, piece, runs);
			runs = 0;
			add_run(piece, &runs, 64, list);
		}
	return call_flush(s, piece, runs) && ok;
}

/*
 * An asynchronous flush: the same ranges, but each call of the callback
 * starts an invalidation and names it, and the records whose ranges it
 * covered become one flight (flight.c), out of use until that name is
 * completed.  One call, unless the vector cannot grow: then one per piece,
 * each piece its own flight.
 */
static void flush_async_list(vmap_space *s, struct va *list, uint64_t n)
{
	struct vmap_range piece[64], *vec = piece;
	size_t cap = 64, runs = 0;
	struct va *head = list, **cut = &list;
	const vmap_space *outer = flushing;

	if (n > s->vec_cap) {
		struct vmap_range *v = vm_realloc(s->vec, n * sizeof(*v));

		if (v) {
			s->vec = v;
			s->vec_cap = n;
		}
	}
	if (n <= s->vec_cap && n) {
		vec = s->vec;
		cap = n;
	}
	flushing = s;
	for (struct va *v = list; v; cut = &v->next, v = v->next) {
		if (add_run(vec, &runs, cap, v))
			continue;
		/* The vector is full: flush the records before v alone. */
		*cut = NULL;
		__flight_start(s, __flight_call(s, vec, runs), head);
		head = v;
		runs = 0;
		add_run(vec, &runs, cap, v);
	}
	__flight_start(s, __flight_call(s, vec, runs), head);
	flushing = outer;
}

/* ---- memory spaces: the release ---- */

/* One madvise per range, with the locked advice if the kernel has it. */
static enum os_release_path single_path(const vmap_space *s)
{
	return OS_RELEASE_MADVISE | (s->path & OS_RELEASE_LOCKED);
}

static bool release_ranges(vmap_space *s, const struct vmap_range *r,
			   size_t n)
{
	bool ok = true;

	for (size_t i = 0; i < n; i += OS_IOV_MAX) {
		size_t k = n - i < OS_IOV_MAX ? n - i : OS_IOV_MAX;
		uint64_t calls = 0;
		int err = s->os->release(s->path, r + i, k, &calls);

		if (err && (s->path & OS_RELEASE_PATH) != OS_RELEASE_MADVISE)
			err = s->os->release(single_path(s), r + i, k, &calls);
		if (err) /* restore() finds which areas */
			ok = false;
		vm_count(&s->release_syscalls, calls);
	}
	return ok;
}

/* ---- around the release: what it cannot do ---- */

int memory_remap(vmap_space *s, uint64_t addr, uint64_t len)
{
	return s->os->map_anon(addr, len);
}

/* Remove the guards (at addr[]) of n areas v[], one vectored call if the
 * kernel takes it; an area whose guard stays is marked stuck. */
static void unguard(vmap_space *s, struct va **v, const uint64_t *addr,
		    size_t n, uint64_t *calls)
{
	if (!s->os->guard_remove(addr, n, s->page_size, calls))
		return;
	for (size_t i = 0; i < n; i++)
		if (s->os->guard_remove(&addr[i], 1, s->page_size, calls))
			v[i]->flags |= VA_STUCK;
}


/*
 * Before the flush: a caller's protection (vmap_vprotect) goes back to
 * read-write with an mprotect -- before the release, since making a locked
 * range writable populates it again (the kernel breaks copy-on-write for
 * mlock), and after would leave those pages resident.  Not a remap: under
 * mlockall(MCL_FUTURE) a new mapping would be locked and eat the process's
 * RLIMIT_MEMLOCK.  An area the kernel refuses is marked for quarantine.
 */
static void prepare(vmap_space *s, struct va *list)
{
	uint64_t calls = 0;

	for (struct va *v = list; v; v = v->next) {
		uint64_t end = va_usable_end(s, v);

		if ((v->flags & (VA_PROT | VA_REMAP | VA_DIRTY)) != VA_PROT)
			continue;
		calls++;
		if (s->os->protect(v->start, end - v->start,
				   PROT_READ | PROT_WRITE))
			v->flags |= VA_STUCK;
	}
	vm_count(&s->release_syscalls, calls);
}

/*
 * The purge has released the pages of every area on the sorted list.  What
 * is left to do before the ranges can be handed out again: file mappings
 * (vmap_vmap) and mprotect guards go with a remap of the area, marker guards
 * with one vectored removal for the batch.  (Protections set by vmap_vprotect
 * were undone before the release: prepare.)
 * If the release failed somewhere in the batch, every area is released again
 * alone, so a refused range costs only itself.  An area the kernel refuses
 * goes into quarantine, and is dropped from the list returned.
 */
static struct va *restore(vmap_space *s, struct va *list, bool failed)
{
	struct va *batch[256], *keep = NULL, **tail = &keep, *next;
	uint64_t guard[256];
	uint64_t calls = 0, gcalls = 0, restored = 0, retried = 0, refused = 0;
	size_t n = 0;

	for (struct va *v = list; v; v = v->next) {
		uint64_t end = va_usable_end(s, v);
		int err;

		if (v->flags & (VA_DIRTY | VA_STUCK))
			continue; /* a live block's, or refused already */
		if (v->flags & VA_REMAP) {
			calls++;
			/* The file, an mprotect guard, the caller's
			 * protection and any page go at once.  (A quarantined
			 * area that held a hole was filled before it could
			 * join the batch: quarantine_retry.) */
			err = memory_remap(s, v->start, v->end - v->start);
			if (err)
				v->flags |= VA_STUCK |
					    (err == -EEXIST ? VA_HOLE : 0);
			else if (v->flags & VA_PROT)
				restored++;
			continue;
		}
		restored += !!(v->flags & VA_PROT); /* prepare's */
		if (failed &&
		    s->os->release(single_path(s),
				   &(struct vmap_range){ v->start, end }, 1,
				   &calls)) {
			v->flags |= VA_STUCK;
			continue;
		}

		if (v->flags & VA_GUARD) {
			guard[n] = end;
			batch[n++] = v;
		}
		if (n == 256) {
			unguard(s, batch, guard, n, &gcalls);
			n = 0;
		}
	}
	if (n)
		unguard(s, batch, guard, n, &gcalls);
	for (struct va *v = list; v; v = next) {
		next = v->next;
		retried += !!(v->flags & VA_QUARANTINED);
		refused += (v->flags & (VA_QUARANTINED | VA_STUCK)) ==
			   (VA_QUARANTINED | VA_STUCK);
		if (v->flags & VA_STUCK) {
			v->flags &= ~VA_STUCK;
			/* Out of the lazy count, into quarantine's: the
			 * purge mutex is held, so vmap_check sees either. */
			lazy_retire(&s->lazy,
				    space_pages(s, v->end - v->start), 1);
			quarantine_add(s, v);
		} else {
			*tail = v;
			tail = &v->next;
		}
	}
	*tail = NULL;
	quarantine_outcome(s, retried, refused);
	vm_count(&s->release_syscalls, calls);
	vm_count(&s->guard_syscalls, gcalls);
	vm_count(&s->protect_restores, restored);
	return keep;
}

struct va *release_batch(vmap_space *s, struct va *list, uint64_t n)
{
	bool ok;

	if (s->flush_async) {
		flush_async_list(s, list, n);
		return NULL;
	}
	if (!s->memory) {
		flush_list(s, list, n);
		return list;
	}
	prepare(s, list);
	ok = flush_list(s, list, n);
	return restore(s, list, !ok);
}
