/* SPDX-License-Identifier: MIT */
/*
 * alloc.c - the range-space calls: vmap_alloc, vmap_xalloc, vmap_free,
 * vmap_free_sized.
 *
 * Each is the mechanism (area.c) and then the policy's word (reclaim.c): a
 * miss asks whether a purge can make room, a free reports what it made lazy.
 */
#include <errno.h>

#include "internal.h"

int vmap_xalloc(vmap_space *s, uint64_t size, uint64_t align, uint64_t phase,
		uint64_t nocross, uint64_t vstart, uint64_t vend,
		unsigned flags, uint64_t *addr)
{
	struct fit f;
	int err;

	if (!s || !addr)
		return -EINVAL;
	err = vm_make_fit(s, size, align, phase, nocross, vstart, vend, flags,
			  &f);
	if (err)
		return err;
	for (unsigned tries = 0;; tries++) {
		err = vm_alloc(s, &f, 0, NULL, addr);
		if (err != -ENOSPC || !reclaim_miss(s, &f, tries))
			break;
	}
	if (!err)
		node_count_alloc(s);
	return err;
}

int vmap_alloc(vmap_space *s, uint64_t size, uint64_t align, uint64_t vstart,
	       uint64_t vend, uint64_t *addr)
{
	return vmap_xalloc(s, size, align, 0, 0, vstart, vend, 0, addr);
}

int vmap_free(vmap_space *s, uint64_t addr)
{
	uint64_t lazy;
	int err;

	if (!s)
		return -EINVAL;
	err = vm_free(s, addr, 0, 0, &lazy);
	if (!err)
		reclaim_freed(s, lazy);
	return err;
}

int vmap_free_sized(vmap_space *s, uint64_t addr, uint64_t size)
{
	uint64_t lazy, pmask;
	int err;

	if (!s)
		return -EINVAL;
	pmask = s->page_size - 1;
	if (!size || size > UINT64_MAX - pmask)
		return -EINVAL;
	err = vm_free(s, addr, 0, (size + pmask) & ~pmask, &lazy);
	if (!err)
		reclaim_freed(s, lazy);
	return err;
}
