/* SPDX-License-Identifier: MIT */
/*
 * os.c - the real kernel behind the OS seam (see os.h).  The only file of
 * vmap that calls mmap, munmap, madvise or process_madvise.
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
static long pmadvise(const struct iovec *iov, size_t n)
{
	long r = syscall(SYS_process_madvise, PIDFD_SELF_THREAD_GROUP, iov, n,
			 MADV_DONTNEED, 0);
	int fd, err;

	if (r >= 0 || errno != EBADF)
		return r;
	fd = (int)syscall(SYS_pidfd_open, getpid(), 0);
	if (fd < 0)
		return -1;
	r = syscall(SYS_process_madvise, fd, iov, n, MADV_DONTNEED, 0);
	err = errno;
	close(fd);
	errno = err;
	return r;
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

const struct vmap_os os_linux = {
	.reserve = os_reserve,
	.unreserve = os_unreserve,
	.probe = os_probe,
	.release = os_release,
};

const struct vmap_os *vm_os = &os_linux;
