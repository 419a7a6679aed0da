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
 * what keeps one owner's data from the next.  If the kernel refuses a release
 * (it should not for a mapping of ours), the pages are zeroed by hand so that
 * promise still holds, and the refusal is counted.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

static void release(void *ctx, const struct vmap_range *r, size_t n)
{
	vmap_space *s = ctx;

	for (size_t i = 0; i < n; i += OS_IOV_MAX) {
		size_t k = n - i < OS_IOV_MAX ? n - i : OS_IOV_MAX;
		uint64_t calls = 0;
		int err = s->os->release(s->path, r + i, k, &calls);

		if (err && s->path != OS_RELEASE_MADVISE)
			err = s->os->release(OS_RELEASE_MADVISE, r + i, k,
					     &calls);
		if (err) {
			for (size_t j = i; j < i + k; j++)
				memset((void *)(uintptr_t)r[j].start, 0,
				       r[j].end - r[j].start);
			atomic_fetch_add_explicit(&s->release_errors, 1,
						  memory_order_relaxed);
		}
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

int memory_init(vmap_space *s, uint64_t length)
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
	/* The first page is untouched and ours: a harmless probe. */
	s->path = s->os->probe(base, s->page_size);
	return 0;
}

void memory_fini(vmap_space *s)
{
	s->os->unreserve(s->base, s->end - s->base);
}

void *vmap_vmalloc(vmap_space *s, size_t size)
{
	uint64_t a;
	int err;

	if (!s || !s->memory) {
		errno = EINVAL;
		return NULL;
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
	/* Every range handed out is fresh or released: already zero. */
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
