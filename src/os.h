/* SPDX-License-Identifier: MIT */
/*
 * os.h - the one seam between vmap and the kernel's memory-mapping calls.
 *
 * Every system call that creates, changes or releases a mapping goes through
 * a struct vmap_os, so tests can run the memory logic against a fake that
 * records calls and can fail them.  src/os.c holds the real one.
 *
 * Contract for every operation: addresses and lengths are page-aligned and
 * nonzero; the return is 0 or a negative errno; nothing is printed.
 */
#ifndef VMAP_OS_H
#define VMAP_OS_H

#include <stddef.h>
#include <stdint.h>

#include "vmap.h"

/* How a memory space gives freed pages back to the kernel. */
enum os_release_path {
	OS_RELEASE_PROCESS_MADVISE = 1, /* vectored; one TLB flush per call
					   on Linux >= 6.16 */
	OS_RELEASE_MADVISE = 2,		/* one madvise per coalesced range */
};

struct vmap_os {
	/* Reserve len bytes of address space that commits no memory,
	 * readable and writable; the address in *out. */
	int (*reserve)(uint64_t len, uint64_t *out);
	/* Give a reservation back entirely. */
	int (*unreserve)(uint64_t addr, uint64_t len);
	/* Can release() take vectors of ranges (process_madvise)?  Asked
	 * once per space, with a scratch page of the reservation. */
	enum os_release_path (*probe)(uint64_t scratch, uint64_t len);
	/* Drop the pages of n ranges (MADV_DONTNEED): they read as zero
	 * afterwards.  The path chosen by probe; at most IOV_MAX ranges. */
	int (*release)(enum os_release_path path, const struct vmap_range *r,
		       size_t n, uint64_t *syscalls);
	/* Map len bytes of fd at byte offset off over addr (MAP_SHARED |
	 * MAP_FIXED), with prot (PROT_READ and/or PROT_WRITE). */
	int (*map_file)(uint64_t addr, uint64_t len, int fd, uint64_t off,
			int prot);
	/* Turn [addr, addr + len) back into plain reserved space (anonymous,
	 * readable, writable, no memory committed). */
	int (*map_anon)(uint64_t addr, uint64_t len);
	/* Make the page at addr a guard page (access faults), or a plain one
	 * again.  With MADV_GUARD_INSTALL/REMOVE where the kernel has them
	 * (Linux >= 6.13: no VMA split, no memory), else with mprotect.
	 * remove takes n pages at once (one vectored call on Linux >= 6.13). */
	int (*guard_install)(uint64_t addr, uint64_t page, uint64_t *syscalls);
	int (*guard_remove)(const uint64_t *addr, size_t n, uint64_t page,
			    uint64_t *syscalls);
	/* A memfd of size bytes (close-on-exec); the fd, or a negative errno. */
	int (*memfd)(const char *name, uint64_t size);
};

/* The real kernel. */
extern const struct vmap_os os_linux;

/* The seam spaces created from now on use; tests point it at a fake. */
extern const struct vmap_os *vm_os;

#define OS_IOV_MAX 1024

#endif
