/* SPDX-License-Identifier: MIT */
/*
 * memory.c - memory spaces: real memory of this process, handed out by the
 * vmalloc family and given back to the kernel in batches.
 *
 * A memory space is a range space whose range is one reservation of ours and
 * whose flush is release(): MADV_DONTNEED over the purge's sorted, coalesced
 * ranges.  Batching is the point.  Dropping pages of a process that runs
 * threads on other CPUs costs a TLB shootdown per system call (~20 us on a
 * 2-vCPU VM), so the ranges go in vectors of up to 1024 per process_madvise()
 * call where the kernel takes it (Linux >= 6.16 flushes once per call), and
 * one madvise() per range elsewhere.
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
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "internal.h"

/* One madvise per range, with the locked advice if the kernel has it. */
static enum os_release_path single_path(const vmap_space *s)
{
	return OS_RELEASE_MADVISE | (s->path & OS_RELEASE_LOCKED);
}

static void release(void *ctx, const struct vmap_range *r, size_t n)
{
	vmap_space *s = ctx;

	for (size_t i = 0; i < n; i += OS_IOV_MAX) {
		size_t k = n - i < OS_IOV_MAX ? n - i : OS_IOV_MAX;
		uint64_t calls = 0;
		int err = s->os->release(s->path, r + i, k, &calls);

		if (err && (s->path & OS_RELEASE_PATH) != OS_RELEASE_MADVISE)
			err = s->os->release(single_path(s), r + i, k, &calls);
		if (err) /* memory_restore finds which areas */
			s->release_failed = true;
		atomic_fetch_add_explicit(&s->release_syscalls, calls,
					  memory_order_relaxed);
	}
}

int memory_check_config(const struct vmap_config *c)
{
	long ps = sysconf(_SC_PAGESIZE);

	if (c->base || c->flush || c->flush_ctx || ps <= 0 ||
	    c->page_size != (uint64_t)ps)
		return -EINVAL;
	return 0;
}

/* ---- after the flush: undo what release() cannot ---- */

#define VA_STUCK 0x80000000u /* could not be restored: to quarantine */

int memory_remap(vmap_space *s, uint64_t addr, uint64_t len)
{
	return s->os->map_anon(addr, len);
}

static uint64_t guard_of(const vmap_space *s, const struct va *v)
{
	return v->end - s->page_size;
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
void memory_prepare(vmap_space *s, struct va *list)
{
	uint64_t calls = 0;

	for (struct va *v = list; v; v = v->next) {
		uint64_t end = v->flags & VA_GUARD ? guard_of(s, v) : v->end;

		if ((v->flags & (VA_PROT | VA_REMAP | VA_DIRTY)) != VA_PROT)
			continue;
		calls++;
		if (s->os->protect(v->start, end - v->start,
				   PROT_READ | PROT_WRITE))
			v->flags |= VA_STUCK;
	}
	atomic_fetch_add_explicit(&s->release_syscalls, calls,
				  memory_order_relaxed);
}

/*
 * The purge has released the pages of every area on the sorted list.  What
 * is left to do before the ranges can be handed out again: file mappings
 * (vmap_vmap) and mprotect guards go with a remap of the area, marker guards
 * with one vectored removal for the batch.  (Protections set by vmap_vprotect
 * were undone before the release: memory_prepare.)
 * If the release failed somewhere in the batch, every area is released again
 * alone, so a refused range costs only itself.  An area the kernel refuses
 * goes into quarantine, and is dropped from the list returned.
 */
struct va *memory_restore(vmap_space *s, struct va *list)
{
	struct va *batch[256], *keep = NULL, **tail = &keep, *next;
	uint64_t guard[256];
	uint64_t calls = 0, gcalls = 0, restored = 0, retried = 0, refused = 0;
	bool failed = s->release_failed;
	size_t n = 0;

	s->release_failed = false;
	for (struct va *v = list; v; v = v->next) {
		uint64_t end = v->flags & VA_GUARD ? guard_of(s, v) : v->end;
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
		restored += !!(v->flags & VA_PROT); /* memory_prepare's */
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
	atomic_fetch_add_explicit(&s->release_syscalls, calls,
				  memory_order_relaxed);
	atomic_fetch_add_explicit(&s->guard_syscalls, gcalls,
				  memory_order_relaxed);
	atomic_fetch_add_explicit(&s->protect_restores, restored,
				  memory_order_relaxed);
	return keep;
}

int memory_init(vmap_space *s, uint64_t length, unsigned flags)
{
	uint64_t base;
	int err;

	s->os = vm_os;
	err = s->os->reserve(length, &base);
	if (err)
		return err == -EINVAL ? -EINVAL : -ENOMEM;
	s->base = base;
	s->end = base + length;
	s->flush = release;
	s->flush_ctx = s;
	/* The first page is untouched and ours: a harmless probe.  The
	 * madvise path asked for still needs to know whether the kernel
	 * releases locked pages. */
	s->path = s->os->probe(base, s->page_size);
	if (flags & VMAP_SPACE_RELEASE_MADVISE)
		s->path = OS_RELEASE_MADVISE | (s->path & OS_RELEASE_LOCKED);
	return 0;
}

void memory_fini(vmap_space *s)
{
	s->os->unreserve(s->base, s->end - s->base);
}

void *vmap_vmalloc(vmap_space *s, size_t size)
{
	uint64_t a, ps, pages;
	int err;

	if (!s || !s->memory) {
		errno = EINVAL;
		return NULL;
	}
	ps = s->page_size;
	if (size && size <= UINT64_MAX - 2 * ps) {
		pages = (size + ps - 1) / ps + s->guard;
		if (pool_take(s, pages, &a)) {
			memset((void *)(uintptr_t)a, 0, (pages - s->guard) * ps);
			atomic_fetch_add_explicit(&s->pool_hits, 1,
						  memory_order_relaxed);
			atomic_fetch_add_explicit(&s->allocs, 1,
						  memory_order_relaxed);
			return (void *)(uintptr_t)a;
		}
	}
	err = vmap_alloc(s, size, 0, 0, UINT64_MAX, &a);
	if (err) {
		errno = -err;
		return NULL;
	}
	return (void *)(uintptr_t)a;
}

void *vmap_vzalloc(vmap_space *s, size_t size)
{
	/* Every range handed out is fresh, released, or zeroed from the
	 * pool: vmalloc memory is always zero. */
	return vmap_vmalloc(s, size);
}

int vmap_vfree(vmap_space *s, const void *ptr)
{
	if (!s || !s->memory)
		return -EINVAL;
	if (!ptr)
		return 0;
	return vmap_free(s, (uint64_t)(uintptr_t)ptr);
}

/* ---- vmap of a file's pages ---- */

/* Every page must end at a byte offset mmap takes (off + len <= 2^63 - 1,
 * else EOVERFLOW): pgoff + 1 pages <= 2^63 / page_size. */
bool file_offsets_ok(const vmap_space *s, const uint64_t *pgoff, size_t n)
{
	uint64_t max = ((uint64_t)INT64_MAX >> s->page_shift) - 1;

	for (size_t i = 0; i < n; i++)
		if (pgoff[i] > max)
			return false;
	return true;
}

int map_file_runs(vmap_space *s, uint64_t a, int fd, const uint64_t *pgoff,
		  size_t n, int prot, size_t *mapped)
{
	uint64_t ps = s->page_size, calls = 0;
	int err = 0;
	size_t i, j;

	/* One mapping per run of consecutive pages of the file. */
	for (i = 0; i < n && !err; i = j) {
		for (j = i + 1; j < n && pgoff[j] == pgoff[j - 1] + 1; j++)
			;
		calls++;
		err = s->os->map_file(a + i * ps, (j - i) * ps, fd,
				      pgoff[i] * ps, prot);
		if (err)
			j = i;
	}
	*mapped = i;
	atomic_fetch_add_explicit(&s->map_syscalls, calls,
				  memory_order_relaxed);
	return err;
}

static void *vmap_once(vmap_space *s, int fd, const uint64_t *pgoff,
		       size_t n, int prot);

/* If the kernel refuses another mapping (vm.max_map_count), a purge may
 * turn waiting file mappings back into plain space: then one more try. */
void *vmap_vmap(vmap_space *s, int fd, const uint64_t *pgoff, size_t n,
		int prot)
{
	void *p = vmap_once(s, fd, pgoff, n, prot);

	if (!p && errno == ENOMEM) {
		vmap_purge(s, VMAP_PURGE_SYNC);
		p = vmap_once(s, fd, pgoff, n, prot);
	}
	return p;
}

static void *vmap_once(vmap_space *s, int fd, const uint64_t *pgoff,
		       size_t n, int prot)
{
	uint64_t ps, a;
	size_t mapped;
	struct fit f;
	int err;

	if (!s || !s->memory || !pgoff || !n || fd < 0 || !prot ||
	    (prot & ~(PROT_READ | PROT_WRITE)))
		goto invalid;
	ps = s->page_size;
	if (n > UINT64_MAX / ps || !file_offsets_ok(s, pgoff, n))
		goto invalid;
	err = vm_make_fit(s, n * ps, 0, 0, 0, 0, UINT64_MAX, 0, &f);
	if (!err)
		err = vm_alloc(s, &f, VA_FILE, NULL, &a);
	if (err) {
		errno = -err;
		return NULL;
	}
	err = map_file_runs(s, a, fd, pgoff, n, prot, &mapped);
	if (err) {
		vm_unalloc(s, a, mapped * ps);
		atomic_fetch_add_explicit(&s->alloc_failures, 1,
					  memory_order_relaxed);
		errno = -err;
		return NULL;
	}
	atomic_fetch_add_explicit(&s->allocs, 1, memory_order_relaxed);
	return (void *)(uintptr_t)a;

invalid:
	errno = EINVAL;
	return NULL;
}

int vmap_vunmap(vmap_space *s, const void *ptr)
{
	return vmap_vfree(s, ptr);
}

/* The protection is recorded (VA_PROT) before the area can be freed: the
 * mprotect runs under the area's shard lock, which a free must take. */
int vmap_vprotect(vmap_space *s, const void *ptr, int prot)
{
	uint64_t addr = (uint64_t)(uintptr_t)ptr;
	struct busy_shard *sh;
	struct va *va;
	int err;

	if (!s || !s->memory || (prot & ~(PROT_READ | PROT_WRITE | PROT_EXEC)))
		return -EINVAL;
	sh = busy_shard_of(&s->busy, addr);
	pthread_mutex_lock(&sh->lock);
	va = __busy_find(sh, addr);
	if (!va || (va->flags & VA_BLOCK)) {
		pthread_mutex_unlock(&sh->lock);
		return -ENOENT;
	}
	err = s->os->protect(va->start,
			     (va->flags & VA_GUARD ? guard_of(s, va) : va->end) -
				     va->start,
			     prot);
	/* Even a failed mprotect may have changed part of the range. */
	va->flags |= VA_PROT;
	pthread_mutex_unlock(&sh->lock);
	return err;
}

int vmap_memfd_create(const char *name, uint64_t pages, int *fd)
{
	long ps = sysconf(_SC_PAGESIZE);
	int f;

	if (!fd || !pages || ps <= 0 || pages > (uint64_t)INT64_MAX / ps)
		return -EINVAL;
	f = vm_os->memfd(name ? name : "vmap", pages * (uint64_t)ps);
	if (f < 0)
		return f;
	*fd = f;
	return 0;
}
