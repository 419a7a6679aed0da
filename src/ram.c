/* SPDX-License-Identifier: MIT */
/*
 * ram.c - the vm_map_ram family: small areas through the per-CPU vmap blocks
 * (vblock.c), larger ones through the tree, as the kernel's vm_map_ram and
 * vm_unmap_ram do.  (vmap_unmap_aliases, which folds the blocks' dirty
 * ranges into the one flush of a purge, is a purge: reclaim.c.)
 */
#include <errno.h>
#include <sys/mman.h>

#include "internal.h"

/* Bytes to pages, or 0 if size is 0 or rounding it up overflows. */
static uint64_t to_pages(const vmap_space *s, uint64_t size)
{
	if (!size || size > UINT64_MAX - (s->page_size - 1))
		return 0;
	return (size + s->page_size - 1) >> s->page_shift;
}

int vmap_ram_alloc(vmap_space *s, uint64_t size, uint64_t *addr)
{
	uint64_t pages;

	if (!s || !addr || !(pages = to_pages(s, size)))
		return -EINVAL;
	if (pages > VMAP_RAM_MAX_PAGES)
		return vmap_alloc(s, size, 0, 0, UINT64_MAX, addr);
	for (unsigned tries = 0;; tries++) {
		struct fit f;
		int err = vb_alloc(s, pages, addr);

		if (err != -ENOSPC)
			return err;
		vb_fit(s, &f);
		if (!reclaim_miss(s, &f, tries))
			return err;
	}
}

/*
 * The count picks the path -- a piece of a block, or an area of the tree --
 * so a wrong count may look on the wrong side and find nothing there: then
 * whatever is on the other side makes it the wrong count (-EINVAL), not a
 * missing one.  Checked only on a miss, so the right count costs nothing.
 */
int vmap_ram_free(vmap_space *s, uint64_t addr, uint64_t size)
{
	uint64_t pages, lazy = 0;
	int err;

	if (!s || !(pages = to_pages(s, size)))
		return -EINVAL;
	if (pages > VMAP_RAM_MAX_PAGES) {
		err = vm_free(s, addr, 0, pages << s->page_shift, &lazy);
		if (err == -ENOENT && vb_is_piece(s, addr))
			err = -EINVAL;
	} else {
		err = vb_free(s, addr, pages, NULL, &lazy);
		if (err == -ENOENT && vm_is_area(s, addr))
			err = -EINVAL;
	}
	if (!err && lazy)
		reclaim_freed(s, lazy);
	return err;
}

static void *map_ram(vmap_space *s, int fd, const uint64_t *pgoff, size_t n);

/* Each run of file pages is a mapping of its own until its block is purged:
 * with enough pieces waiting, the kernel refuses the next mapping
 * (vm.max_map_count).  A purge turns the retired blocks back into one plain
 * mapping; then one more try. */
void *vmap_map_ram(vmap_space *s, int fd, const uint64_t *pgoff, size_t n)
{
	void *p = map_ram(s, fd, pgoff, n);

	if (!p && errno == ENOMEM && reclaim_nomem(s))
		p = map_ram(s, fd, pgoff, n);
	return p;
}

static void *map_ram(vmap_space *s, int fd, const uint64_t *pgoff, size_t n)
{
	uint64_t a, ps;
	size_t mapped;
	int err;

	if (!s || !s->memory || !pgoff || !n || fd < 0) {
		errno = EINVAL;
		return NULL;
	}
	if (n > VMAP_RAM_MAX_PAGES)
		return vmap_vmap(s, fd, pgoff, n, PROT_READ | PROT_WRITE);
	ps = s->page_size;
	if (!file_offsets_ok(s, pgoff, n)) {
		errno = EINVAL;
		return NULL;
	}
	err = vmap_ram_alloc(s, n * ps, &a);
	if (!err)
		err = map_file_runs(s, a, fd, pgoff, n, PROT_READ | PROT_WRITE,
				    &mapped);
	else
		a = 0;
	if (err && a) {
		uint64_t lazy = 0;
		bool undone = false;

		/* Plain space again, then the piece back: un-bumped if it is
		 * still its block's last, else dirty (the block's purge
		 * remaps it anyway).  If the file stays mapped there, only
		 * dirty will do: the next piece must not show the file. */
		if (mapped && memory_remap(s, a, mapped * ps))
			vb_free(s, a, n, NULL, &lazy);
		else
			vb_free(s, a, n, &undone, &lazy);
		vb_uncount(s, !undone);
		vm_count(&s->alloc_failures, 1);
		if (lazy)
			reclaim_freed(s, lazy);
	}
	if (err) {
		errno = -err;
		return NULL;
	}
	return (void *)(uintptr_t)a;
}

int vmap_unmap_ram(vmap_space *s, const void *ptr, size_t n)
{
	if (!s || !s->memory || !ptr || !n ||
	    (uint64_t)n > UINT64_MAX >> s->page_shift)
		return -EINVAL;
	return vmap_ram_free(s, (uint64_t)(uintptr_t)ptr,
			     (uint64_t)n << s->page_shift);
}
