/* SPDX-License-Identifier: MIT */
/*
 * bench/peers/peer.h - the one interface bench-alloc drives every allocator
 * through: vmap's range space and the address-range allocators a GPU driver
 * would pick instead (offset.c, tlsf.c, mesa.c).
 *
 * Every backend manages [base, base + length) in 4 KiB pages and touches no
 * memory there: addresses are just numbers.  Sizes and alignments are in
 * bytes; a size is rounded up to whole pages and an alignment below a page
 * means a page.
 *
 * The handle is what an allocator wants back at free time to find its record
 * without a search (a node index for offset and tlsf, whose callers keep it
 * next to the address, as OffsetAllocator's Allocation does); vmap and mesa
 * ignore it and find the area by address.  free also gets the size, which
 * mesa needs (util_vma_heap keeps no record of a live area) and vmap-sized
 * passes on.
 */
#ifndef BENCH_PEER_H
#define BENCH_PEER_H

#include <stdint.h>

#define PEER_PAGE_SHIFT 12
#define PEER_PAGE (1ull << PEER_PAGE_SHIFT)

/* What an allocator can tell about itself; fields it cannot tell stay 0. */
struct peer_stats {
	uint64_t meta_bytes;	/* heap bytes of its own records, now */
	uint64_t free_ranges;	/* free blocks, holes or free nodes */
	uint64_t flushes;	/* batched releases (vmap's flush callback) */
};

struct peer_ops {
	const char *name;
	const char *what;	/* one line for the legend */
	int thread_safe;	/* else bench-alloc wraps calls in a mutex */
	/* NULL if out of memory. */
	void *(*create)(uint64_t base, uint64_t length);
	/* 0, or -ENOSPC (no room) or -ENOMEM; *addr and *handle on success. */
	int (*alloc)(void *a, uint64_t size, uint64_t align, uint64_t *addr,
		     uint32_t *handle);
	/* 0, or a negative errno for something it was not given. */
	int (*free)(void *a, uint64_t addr, uint64_t size, uint32_t handle);
	void (*destroy)(void *a);
	void (*stats)(void *a, struct peer_stats *st);
	/* Validate every invariant; 0, or -1 after printing what is wrong.
	 * Slow: for the smoke run. */
	int (*check)(void *a);
};

extern const struct peer_ops offset_ops, tlsf_ops, mesa_ops;

#endif /* BENCH_PEER_H */
