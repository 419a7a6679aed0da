/* SPDX-License-Identifier: MIT */
/*
 * os.c - the real kernel behind the OS seam (see os.h).  The only file of
 * vmap that calls mmap, munmap, mprotect, madvise or process_madvise, or
 * reads /proc/self/maps.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/vfs.h>
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

#ifndef MADV_DONTNEED_LOCKED
#define MADV_DONTNEED_LOCKED 24 /* Linux >= 5.18 */
#endif

static int dontneed(enum os_release_path path)
{
	return path & OS_RELEASE_LOCKED ? MADV_DONTNEED_LOCKED : MADV_DONTNEED;
}

/* Linux >= 6.13 lets a process use process_madvise(MADV_DONTNEED) on
 * itself; older kernels answer EINVAL (or ENOSYS before 5.10).  Linux >= 5.18
 * takes MADV_DONTNEED_LOCKED, which releases mlock()ed ranges too; older
 * kernels do not know the advice (EINVAL). */
static enum os_release_path os_probe(uint64_t scratch, uint64_t len)
{
	struct iovec iov = { (void *)(uintptr_t)scratch, len };

	if (pmadvise_advice(&iov, 1, MADV_DONTNEED_LOCKED) == (long)len)
		return OS_RELEASE_PROCESS_MADVISE | OS_RELEASE_LOCKED;
	if (pmadvise_advice(&iov, 1, MADV_DONTNEED) == (long)len)
		return OS_RELEASE_PROCESS_MADVISE;
	if (!madvise(iov.iov_base, len, MADV_DONTNEED_LOCKED))
		return OS_RELEASE_MADVISE | OS_RELEASE_LOCKED;
	return OS_RELEASE_MADVISE;
}

static int release_vectored(enum os_release_path path,
			    const struct vmap_range *r, size_t n,
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
		long done = pmadvise_advice(&iov[i], n - i, dontneed(path));

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
	int err = 0;

	if ((path & OS_RELEASE_PATH) == OS_RELEASE_PROCESS_MADVISE &&
	    n <= OS_IOV_MAX)
		return release_vectored(path, r, n, syscalls);
	/* Every range is tried, so one refused range costs only itself. */
	for (size_t k = 0; k < n; k++) {
		++*syscalls;
		if (madvise((void *)(uintptr_t)r[k].start,
			    r[k].end - r[k].start, dontneed(path)))
			err = -errno;
	}
	return err;
}

static int os_fill_hole(uint64_t addr, uint64_t len)
{
	void *a = (void *)(uintptr_t)addr;
	void *p = mmap(a, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE |
			       MAP_FIXED_NOREPLACE,
		       -1, 0);

	if (p == a)
		return 0;
	if (p != MAP_FAILED) /* an old kernel's hint, not where we asked */
		munmap(p, len);
	return -EEXIST;
}

/*
 * Not mmap(MAP_FIXED) over the range: that unmaps what is there *before* the
 * file's own mmap handler runs, and a file that then refuses (a socket, a
 * sysfs file, a sealed memfd, a hugetlb file without huge pages) leaves a hole
 * in the reservation, where the next mmap(NULL) of anyone in the process may
 * land.  So the file is mapped where the kernel likes first, and only then
 * moved over the range, which mremap replaces in one step.  mremap can still
 * fail after unmapping the target (out of memory for the move): then the hole
 * is filled again if nothing else got there first.
 *
 * A hugetlbfs file (an MFD_HUGETLB memfd too) maps whole huge pages whatever
 * len says, so the first mmap may take 2 MiB where we asked for 4 KiB; mremap
 * then refuses the unaligned length, and so would munmap: the mapping is
 * unmapped whole, by the huge page size the file system reports.
 */
static int os_map_file(uint64_t addr, uint64_t len, int fd, uint64_t off,
		       int prot)
{
	void *p = mmap(NULL, len, prot, MAP_SHARED, fd, (off_t)off), *q;
	struct statfs fs;
	int err;

	if (p == MAP_FAILED)
		return -errno;
	q = mremap(p, len, len, MREMAP_MAYMOVE | MREMAP_FIXED,
		   (void *)(uintptr_t)addr);
	if (q != MAP_FAILED)
		return 0;
	err = -errno;
	if (munmap(p, len) && !fstatfs(fd, &fs) && fs.f_bsize > 0)
		munmap(p, (len + (uint64_t)fs.f_bsize - 1) &
				  ~((uint64_t)fs.f_bsize - 1));
	os_fill_hole(addr, len); /* -EEXIST: still ours, untouched */
	return err;
}

static int os_map_anon(uint64_t addr, uint64_t len)
{
	int flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE;
	void *a = (void *)(uintptr_t)addr, *p;

	p = mmap(a, len, PROT_READ | PROT_WRITE, flags | MAP_FIXED, -1, 0);
	if (p != MAP_FAILED)
		return 0;
	/*
	 * Under mlockall(MCL_FUTURE) the new mapping is locked, and the kernel
	 * checks RLIMIT_MEMLOCK for it without subtracting the locked mapping
	 * it replaces: EAGAIN, for ever, once the process is near its limit.
	 * munlock the old one first; and the new one after, as the
	 * reservation was (made before the mlockall, or it would not have
	 * fitted): plain space must not eat the process's lock budget.
	 */
	if (errno == EAGAIN && !munlock(a, len)) {
		p = mmap(a, len, PROT_READ | PROT_WRITE, flags | MAP_FIXED, -1,
			 0);
		if (p != MAP_FAILED) {
			munlock(a, len);
			return 0;
		}
	}
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
	return os_fill_hole(addr, len);
}

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#define MADV_GUARD_REMOVE 103
#endif

/*
 * Guard markers where the kernel has them; mprotect otherwise.  Whether it
 * has them is a property of the kernel, learned once on a private page of our
 * own: not from a failure in the reservation, where EINVAL may only mean that
 * the range is mlock()ed (the kernel refuses markers there) -- a process-wide
 * switch to mprotect on that would leave every marker installed before it
 * unremovable by mprotect.
 */
static int guard_markers = -1; /* -1 unknown, 0 no, 1 yes; atomic */

static bool have_markers(void)
{
	int m = __atomic_load_n(&guard_markers, __ATOMIC_RELAXED);

	if (m < 0) {
		void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		m = p != MAP_FAILED && !madvise(p, 4096, MADV_GUARD_INSTALL);
		if (p != MAP_FAILED)
			munmap(p, 4096);
		__atomic_store_n(&guard_markers, m, __ATOMIC_RELAXED);
	}
	return m;
}

static int os_guard_install(uint64_t addr, uint64_t page, uint64_t *syscalls)
{
	void *p = (void *)(uintptr_t)addr;
	bool markers = have_markers();

	++*syscalls;
	if (markers) {
		if (!madvise(p, page, MADV_GUARD_INSTALL))
			return 0;
		if (errno != EINVAL)
			return -errno;
		++*syscalls; /* a locked range: mprotect, and say so */
	}
	if (mprotect(p, page, PROT_NONE))
		return -errno;
	return markers;
}

static int os_guard_remove(const uint64_t *addr, size_t n, uint64_t page,
			   uint64_t *syscalls)
{
	struct iovec iov[OS_IOV_MAX];

	if (have_markers()) {
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

static int os_protect(uint64_t addr, uint64_t len, int prot)
{
	return mprotect((void *)(uintptr_t)addr, len, prot) ? -errno : 0;
}

/*
 * PROCMAP_QUERY (Linux >= 6.11): the mapping covering an address, or the
 * next one, by ioctl on /proc/self/maps -- a few microseconds for a
 * reservation of a few mappings, where reading the text costs one line per
 * mapping of the whole process.  The layout is the kernel's ABI.
 */
struct procmap_query {
	uint64_t size, query_flags, query_addr;
	uint64_t vma_start, vma_end, vma_flags, vma_page_size, vma_offset;
	uint64_t inode;
	uint32_t dev_major, dev_minor, vma_name_size, build_id_size;
	uint64_t vma_name_addr, build_id_addr;
};
#define PROCMAP_QUERY _IOWR('f', 17, struct procmap_query)
#define PROCMAP_COVERING_OR_NEXT 0x10
#define PROCMAP_R 0x1
#define PROCMAP_W 0x2
#define PROCMAP_X 0x4

/* 1: the kernel has no PROCMAP_QUERY, read the text. */
static int vmas_query(int fd, uint64_t start, uint64_t end,
		      int (*fn)(void *arg, const struct os_vma *v), void *arg)
{
	for (uint64_t a = start; a < end;) {
		struct procmap_query q = { .size = sizeof(q),
					   .query_flags =
						   PROCMAP_COVERING_OR_NEXT,
					   .query_addr = a };
		struct os_vma v;
		int err;

		if (ioctl(fd, PROCMAP_QUERY, &q))
			return errno == ENOENT ? 0 : 1; /* ENOENT: none after */
		if (q.vma_start >= end)
			break;
		v.start = q.vma_start;
		v.end = q.vma_end;
		v.prot = (q.vma_flags & PROCMAP_R ? PROT_READ : 0) |
			 (q.vma_flags & PROCMAP_W ? PROT_WRITE : 0) |
			 (q.vma_flags & PROCMAP_X ? PROT_EXEC : 0);
		v.file = q.inode != 0;
		if ((err = fn(arg, &v)))
			return err;
		a = q.vma_end;
	}
	return 0;
}

/*
 * /proc/self/maps, the lines overlapping [start, end).  A line is
 *   7f50ca0db000-7f50ca0dc000 rw-p 00000000 00:00 0      [path]
 * and a mapping is a file's when its inode is not 0 (a memfd's is not
 * either).  Read with plain read(2) into a buffer of our own, so that a
 * fault-injection build's heap failures do not reach here.
 */
static int os_vmas(uint64_t start, uint64_t end,
		   int (*fn)(void *arg, const struct os_vma *v), void *arg)
{
	char buf[8192];
	size_t have = 0;
	int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC), err = 0;

	if (fd < 0)
		return -errno;
	if ((err = vmas_query(fd, start, end, fn, arg)) != 1) {
		close(fd);
		return err;
	}
	err = 0;
	for (;;) {
		ssize_t got = read(fd, buf + have, sizeof(buf) - 1 - have);
		char *line = buf, *nl;

		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			break;
		have += (size_t)got;
		buf[have] = '\0';
		while (!err && (nl = strchr(line, '\n'))) {
			unsigned long long a, b, ino;
			char perm[5];
			struct os_vma v;

			*nl = '\0';
			if (sscanf(line, "%llx-%llx %4s %*s %*s %llu", &a, &b,
				   perm, &ino) == 4 &&
			    b > start && a < end) {
				v.start = a;
				v.end = b;
				v.prot = (perm[0] == 'r' ? PROT_READ : 0) |
					 (perm[1] == 'w' ? PROT_WRITE : 0) |
					 (perm[2] == 'x' ? PROT_EXEC : 0);
				v.file = ino != 0;
				err = fn(arg, &v);
			}
			line = nl + 1;
		}
		have -= (size_t)(line - buf);
		memmove(buf, line, have);
		if (err)
			break;
	}
	close(fd);
	return err;
}

#ifndef MREMAP_DONTUNMAP
#define MREMAP_DONTUNMAP 4 /* Linux >= 5.7; older headers lack it */
#endif

/* Move the pages (not the bytes) of [from, from + len) to [to, to + len),
 * leaving [from, from + len) mapped and empty: the reservation keeps no
 * hole.  On any error nothing moved, and the caller copies instead. */
static int os_move(uint64_t from, uint64_t to, uint64_t len)
{
	void *p = mremap((void *)(uintptr_t)from, len, len,
			 MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP,
			 (void *)(uintptr_t)to);

	return p == MAP_FAILED ? -errno : 0;
}

const struct vmap_os os_linux = {
	.move = os_move,
	.memfd = os_memfd,
	.map_file = os_map_file,
	.map_anon = os_map_anon,
	.fill_hole = os_fill_hole,
	.guard_install = os_guard_install,
	.guard_remove = os_guard_remove,
	.reserve = os_reserve,
	.unreserve = os_unreserve,
	.probe = os_probe,
	.release = os_release,
	.protect = os_protect,
	.vmas = os_vmas,
};

const struct vmap_os *vm_os = &os_linux;
