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

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmap.h"

/* How a memory space gives freed pages back to the kernel: one of the two
 * paths, or'ed with OS_RELEASE_LOCKED where the kernel has
 * MADV_DONTNEED_LOCKED (Linux >= 5.18), which drops mlock()ed pages too --
 * plain MADV_DONTNEED refuses a locked range, and under mlockall(MCL_FUTURE)
 * every range is locked. */
enum os_release_path {
	OS_RELEASE_PROCESS_MADVISE = 1, /* vectored; one TLB flush per call
					   on Linux >= 6.16 */
	OS_RELEASE_MADVISE = 2,		/* one madvise per coalesced range */
	OS_RELEASE_LOCKED = 4,		/* with MADV_DONTNEED_LOCKED */
};
#define OS_RELEASE_PATH 3u /* the path bits */

/* One mapping of the process, as /proc/self/maps shows it. */
struct os_vma {
	uint64_t start, end;
	int prot;  /* PROT_* */
	bool file; /* backed by a file (a memfd too), not anonymous */
};

struct vmap_os {
	/* Reserve len bytes of address space that commits no memory,
	 * readable and writable; the address in *out. */
	int (*reserve)(uint64_t len, uint64_t *out);
	/* Give a reservation back entirely. */
	int (*unreserve)(uint64_t addr, uint64_t len);
	/* Can release() take vectors of ranges (process_madvise), and locked
	 * ranges?  Asked once per space, with a scratch page of the
	 * reservation. */
	enum os_release_path (*probe)(uint64_t scratch, uint64_t len);
	/* Drop the pages of n ranges (MADV_DONTNEED): they read as zero
	 * afterwards.  The path chosen by probe; at most OS_IOV_MAX ranges.
	 * On an error, some of the ranges may have been released. */
	int (*release)(enum os_release_path path, const struct vmap_range *r,
		       size_t n, uint64_t *syscalls);
	/* Map len bytes of fd at byte offset off over addr (MAP_SHARED),
	 * with prot (PROT_READ and/or PROT_WRITE), replacing what is there
	 * only once the file has accepted the mapping: on failure the range
	 * is as it was. */
	int (*map_file)(uint64_t addr, uint64_t len, int fd, uint64_t off,
			int prot);
	/* Turn [addr, addr + len) back into plain reserved space (anonymous,
	 * readable, writable, no memory committed).  -EEXIST: the kernel
	 * refused, and the range may now hold a hole. */
	int (*map_anon)(uint64_t addr, uint64_t len);
	/* The same for a range that may hold a hole, where something else
	 * may have been mapped since: only if nothing at all is mapped in
	 * [addr, addr + len) (MAP_FIXED_NOREPLACE); else -EEXIST. */
	int (*fill_hole)(uint64_t addr, uint64_t len);
	/* Make the page at addr a guard page (access faults), or a plain one
	 * again.  With MADV_GUARD_INSTALL/REMOVE where the kernel has them
	 * (Linux >= 6.13: no VMA split, no memory), else with mprotect.
	 * remove takes n pages at once (one vectored call on Linux >= 6.13).
	 * install returns 1 when it had to use mprotect although the kernel
	 * has markers (it refuses them on a locked range): guard_remove cannot
	 * undo that one, map_anon over the page can. */
	int (*guard_install)(uint64_t addr, uint64_t page, uint64_t *syscalls);
	int (*guard_remove)(const uint64_t *addr, size_t n, uint64_t page,
			    uint64_t *syscalls);
	/* A memfd of size bytes (close-on-exec); the fd, or a negative errno. */
	int (*memfd)(const char *name, uint64_t size);
	/* Move the pages of [from, from + len) to [to, to + len), which
	 * holds plain reserved space; the source stays mapped, reading as
	 * zero.  An error moves nothing.  NULL: not available (copy). */
	int (*move)(uint64_t from, uint64_t to, uint64_t len);
	/* mprotect [addr, addr + len) to prot. */
	int (*protect)(uint64_t addr, uint64_t len, int prot);
	/* Call fn for each mapping of the process that overlaps [start, end),
	 * in address order (stops at fn's first nonzero, which it returns).
	 * Reads, never changes, the mappings: vmap_check's view of them. */
	int (*vmas)(uint64_t start, uint64_t end,
		    int (*fn)(void *arg, const struct os_vma *v), void *arg);
};

/* The real kernel. */
extern const struct vmap_os os_linux;

/* The seam spaces created from now on use; tests point it at a fake. */
extern const struct vmap_os *vm_os;

#define OS_IOV_MAX 1024

#endif
