/* SPDX-License-Identifier: MIT */
/*
 * os.c - the real kernel behind the OS seam (see os.h).  The only file of
 * vmap that calls mmap, munmap, mprotect, madvise or process_madvise.
 */
#include <errno.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "os.h"

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_process_madvise
#define SYS_process_madvise 440
#endif

static int os_reserve(uint64_t len, uint64_t *out)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	if (p == MAP_FAILED)
		return -errno;
	*out = (uint64_t)(uintptr_t)p;
	return 0;
}

static int os_unreserve(uint64_t addr, uint64_t len)
{
	return munmap((void *)(uintptr_t)addr, len) ? -errno : 0;
}

#ifndef PIDFD_SELF_THREAD_GROUP
#define PIDFD_SELF_THREAD_GROUP (-10001) /* Linux >= 6.15 */
#endif

/* process_madvise(MADV_DONTNEED) on ourselves, by the sentinel pidfd where
 * the kernel has it, else by a pidfd opened for the call: never a cached one,
 * which a forked child would inherit and aim at its parent. */
static long pmadvise_advice(const struct iovec *iov, size_t n, int advice)
{
	long r = syscall(SYS_process_madvise, PIDFD_SELF_THREAD_GROUP, iov, n,
			 advice, 0);
	int fd, err;

	if (r >= 0 || errno != EBADF)
		return r;
	fd = (int)syscall(SYS_pidfd_open, getpid(), 0);
	if (fd < 0)
		return -1;
	r = syscall(SYS_process_madvise, fd, iov, n, advice, 0);
	err = errno;
	close(fd);
	errno = err;
	return r;
}

static long pmadvise(const struct iovec *iov, size_t n)
{
	return pmadvise_advice(iov, n, MADV_DONTNEED);
}

/* Linux >= 6.13 lets a process use process_madvise(MADV_DONTNEED) on
 * itself; older kernels answer EINVAL (or ENOSYS before 5.10). */
static enum os_release_path os_probe(uint64_t scratch, uint64_t len)
{
	struct iovec iov = { (void *)(uintptr_t)scratch, len };

	if (pmadvise(&iov, 1) == (long)len)
		return OS_RELEASE_PROCESS_MADVISE;
	return OS_RELEASE_MADVISE;
}

static int release_vectored(const struct vmap_range *r, size_t n,
			    uint64_t *syscalls)
{
	struct iovec iov[OS_IOV_MAX];
	size_t i = 0;

	for (size_t k = 0; k < n; k++) {
		iov[k].iov_base = (void *)(uintptr_t)r[k].start;
		iov[k].iov_len = r[k].end - r[k].start;
	}
	/* A short count means the kernel stopped part-way: go on from
	 * there (it cannot fail half-way through one range we own). */
	while (i < n) {
		long done = pmadvise(&iov[i], n - i);

		++*syscalls;
		if (done <= 0)
			return done ? -errno : -EIO;
		while (i < n && (size_t)done >= iov[i].iov_len)
			done -= (long)iov[i++].iov_len;
		if (i < n && done) {
			iov[i].iov_base = (char *)iov[i].iov_base + done;
			iov[i].iov_len -= (size_t)done;
		}
	}
	return 0;
}

static int os_release(enum os_release_path path, const struct vmap_range *r,
		      size_t n, uint64_t *syscalls)
{
	if (path == OS_RELEASE_PROCESS_MADVISE && n <= OS_IOV_MAX)
		return release_vectored(r, n, syscalls);
	for (size_t k = 0; k < n; k++) {
		++*syscalls;
		if (madvise((void *)(uintptr_t)r[k].start,
			    r[k].end - r[k].start, MADV_DONTNEED))
			return -errno;
	}
	return 0;
}

static int os_map_file(uint64_t addr, uint64_t len, int fd, uint64_t off,
		       int prot)
{
	void *p = mmap((void *)(uintptr_t)addr, len, prot,
		       MAP_SHARED | MAP_FIXED, fd, (off_t)off);

	return p == MAP_FAILED ? -errno : 0;
}

static int os_map_anon(uint64_t addr, uint64_t len)
{
	int flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE;
	void *a = (void *)(uintptr_t)addr, *p;

	p = mmap(a, len, PROT_READ | PROT_WRITE, flags | MAP_FIXED, -1, 0);
	if (p != MAP_FAILED)
		return 0;
	if (errno != ENOMEM)
		return -errno;
	/*
	 * At vm.max_map_count the kernel refuses any mmap, even one that would
	 * replace many mappings by one.  munmap first (it lowers the count),
	 * then map the hole -- without MAP_FIXED's replace, since another
	 * thread may have mapped something there meanwhile: then the range
	 * stays out of use rather than clobber it.
	 */
	if (munmap(a, len))
		return -errno;
	p = mmap(a, len, PROT_READ | PROT_WRITE, flags | MAP_FIXED_NOREPLACE,
		 -1, 0);
	if (p == a)
		return 0;
	if (p != MAP_FAILED) /* an old kernel's hint, not where we asked */
		munmap(p, len);
	return -EEXIST;
}

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#define MADV_GUARD_REMOVE 103
#endif

/* Guard markers where the kernel has them; mprotect otherwise.  Which one
 * works is learned on first use and kept: it is a property of the kernel. */
static int guard_markers = -1; /* -1 unknown, 0 no, 1 yes; atomic */

static int os_guard_install(uint64_t addr, uint64_t page, uint64_t *syscalls)
{
	void *p = (void *)(uintptr_t)addr;
	int markers = __atomic_load_n(&guard_markers, __ATOMIC_RELAXED);

	++*syscalls;
	if (markers != 0) {
		if (!madvise(p, page, MADV_GUARD_INSTALL)) {
			__atomic_store_n(&guard_markers, 1, __ATOMIC_RELAXED);
			return 0;
		}
		if (errno != EINVAL)
			return -errno;
		__atomic_store_n(&guard_markers, 0, __ATOMIC_RELAXED);
		++*syscalls;
	}
	return mprotect(p, page, PROT_NONE) ? -errno : 0;
}

static int os_guard_remove(const uint64_t *addr, size_t n, uint64_t page,
			   uint64_t *syscalls)
{
	struct iovec iov[OS_IOV_MAX];

	if (__atomic_load_n(&guard_markers, __ATOMIC_RELAXED) == 1) {
		for (size_t i = 0; i < n; i += OS_IOV_MAX) {
			size_t k = n - i < OS_IOV_MAX ? n - i : OS_IOV_MAX;

			for (size_t j = 0; j < k; j++) {
				iov[j].iov_base = (void *)(uintptr_t)addr[i + j];
				iov[j].iov_len = page;
			}
			++*syscalls;
			if (pmadvise_advice(iov, k, MADV_GUARD_REMOVE) ==
			    (long)(k * page))
				continue;
			/* No vectored advice: one call per page. */
			for (size_t j = 0; j < k; j++) {
				++*syscalls;
				if (madvise(iov[j].iov_base, page,
					    MADV_GUARD_REMOVE))
					return -errno;
			}
		}
		return 0;
	}
	for (size_t i = 0; i < n; i++) {
		++*syscalls;
		if (mprotect((void *)(uintptr_t)addr[i], page,
			     PROT_READ | PROT_WRITE))
			return -errno;
	}
	return 0;
}

static int os_memfd(const char *name, uint64_t size)
{
	int fd = memfd_create(name, MFD_CLOEXEC);

	if (fd < 0)
		return -errno;
	if (ftruncate(fd, (off_t)size)) {
		int err = -errno;

		close(fd);
		return err;
	}
	return fd;
}

const struct vmap_os os_linux = {
	.memfd = os_memfd,
	.map_file = os_map_file,
	.map_anon = os_map_anon,
	.guard_install = os_guard_install,
	.guard_remove = os_guard_remove,
	.reserve = os_reserve,
	.unreserve = os_unreserve,
	.probe = os_probe,
	.release = os_release,
};

const struct vmap_os *vm_os = &os_linux;
