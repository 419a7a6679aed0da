/* SPDX-License-Identifier: MIT */
/*
 * memory.c - memory spaces: real memory of this process, handed out by the
 * vmalloc family and by vmap of a file's pages, and given back to the kernel
 * in batches by the purge (release.c).
 *
 * A memory space is a range space whose range is one reservation of ours,
 * made here.  Contents follow the kernel's (and malloc's) contract: what
 * vmap_vmalloc hands out is unspecified -- fresh or released pages read as
 * zero, a warm area from the pool holds whatever this process last wrote
 * there -- and vmap_vzalloc's is zero.  Never another process's data: a page
 * comes from the kernel zeroed, and a warm area was this process's.
 */
#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "internal.h"

int memory_check_config(const struct vmap_config *c)
{
	long ps = sysconf(_SC_PAGESIZE);

	if (c->base || c->flush || c->flush_ctx || ps <= 0 ||
	    c->page_size != (uint64_t)ps)
		return -EINVAL;
	return 0;
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

static void *valloc(vmap_space *s, size_t size, bool zero)
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
			/* Warm: still holds what this process wrote. */
			if (zero)
				memset((void *)(uintptr_t)a, 0,
				       (pages - s->guard) * ps);
			vm_count(&s->pool_hits, 1);
			node_count_alloc(s);
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

void *vmap_vmalloc(vmap_space *s, size_t size)
{
	return valloc(s, size, false);
}

/* Only a warm area needs the memset: every other range handed out is
 * fresh or released, and reads as zero already. */
void *vmap_vzalloc(vmap_space *s, size_t size)
{
	return valloc(s, size, true);
}

int vmap_vfree(vmap_space *s, const void *ptr)
{
	if (!s || !s->memory)
		return -EINVAL;
	if (!ptr)
		return 0;
	return vmap_free(s, (uint64_t)(uintptr_t)ptr);
}

bool vmap_owns(vmap_space *s, const void *ptr)
{
	uint64_t a = (uint64_t)(uintptr_t)ptr;

	return s && a >= s->base && a < s->end;
}

int vmap_vsize(vmap_space *s, const void *ptr, size_t *size)
{
	uint64_t n;
	int err;

	if (!s || !size)
		return -EINVAL;
	err = vm_flag(s, (uint64_t)(uintptr_t)ptr, 0, &n);
	if (!err)
		*size = n;
	return err;
}

/* Below this, copying the bytes costs less than moving the pages (a system
 * call, and a mapping of its own until the area's release remaps it). */
#define MOVE_MIN_PAGES 16

void *vmap_vrealloc(vmap_space *s, void *ptr, size_t size)
{
	uint64_t addr = (uint64_t)(uintptr_t)ptr, old, lazy, ps;
	void *to;
	int err;

	if (!s || !s->memory) {
		errno = EINVAL;
		return NULL;
	}
	if (!ptr)
		return vmap_vmalloc(s, size);
	if (!size) { /* the kernel's vrealloc: free, and NULL */
		if ((err = vmap_vfree(s, ptr)))
			errno = -err;
		return NULL;
	}
	ps = s->page_size;
	if (size > UINT64_MAX - 2 * ps) {
		errno = EINVAL;
		return NULL;
	}
	/* In place, if the neighbouring space allows. */
	err = vm_resize(s, addr, (size + ps - 1) & ~(ps - 1), &lazy);
	if (!err) {
		reclaim_freed(s, lazy);
		return ptr;
	}
	if ((err != -ENOSPC && err != -ENOMEM) || vm_flag(s, addr, 0, &old)) {
		errno = err == -ENOSPC || err == -ENOMEM ? ENOENT : -err;
		return NULL;
	}
	if (size <= old) /* a shrink without memory: keep it as it is */
		return ptr;
	/* Else moved: a new area, the old pages (not bytes, when big) into
	 * it, and the old one freed. */
	if (!(to = vmap_vmalloc(s, size)))
		return NULL;
	if (old >= MOVE_MIN_PAGES * ps && s->os->move &&
	    !s->os->move(addr, (uint64_t)(uintptr_t)to, old)) {
		vm_flag(s, addr, VA_MOVED, &lazy);
		vm_flag(s, (uint64_t)(uintptr_t)to, VA_MOVED, &lazy);
	} else {
		memcpy(to, ptr, old);
	}
	vmap_vfree(s, ptr);
	return to;
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
	vm_count(&s->map_syscalls, calls);
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

	if (!p && errno == ENOMEM && reclaim_nomem(s))
		p = vmap_once(s, fd, pgoff, n, prot);
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
	for (unsigned tries = 0; !err; tries++) {
		err = vm_alloc(s, &f, VA_FILE, NULL, &a);
		if (err != -ENOSPC || !reclaim_miss(s, &f, tries))
			break;
		err = 0; /* a purge made room: try again */
	}
	if (err) {
		errno = -err;
		return NULL;
	}
	err = map_file_runs(s, a, fd, pgoff, n, prot, &mapped);
	if (err) {
		vm_unalloc(s, a, mapped * ps);
		vm_count(&s->alloc_failures, 1);
		errno = -err;
		return NULL;
	}
	node_count_alloc(s);
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
	err = s->os->protect(va->start, va_usable_end(s, va) - va->start,
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
