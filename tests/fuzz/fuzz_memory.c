/* SPDX-License-Identifier: MIT */
/*
 * fuzz_memory.c - operations decoded from a fuzz input on a *memory space*:
 * real memory of this process, which the other targets (range spaces) never
 * touch -- the vmalloc family, the warm pool, guard pages, vmap of memfd
 * pages, map_ram through vmap blocks, and the release of pages to the kernel.
 * The first bytes choose the space (STRICT, GUARD, RELEASE_MADVISE, NOPOOL,
 * its length, lazy threshold, block and pool sizes) and whether a second
 * thread purges and calls vmap_unmap_aliases in a loop meanwhile (eagerly,
 * or paced).
 *
 * What a memory space promises is about the memory itself, so that is what
 * this target checks, through the memory:
 *  - vzalloc memory reads entirely zero when handed out: never an earlier
 *    owner's data (each page of a live area carries its owner's tag in its
 *    first and last words) and never a file's (the memfd's pages are a
 *    nonzero pattern); vmalloc memory reads zero or, warm from the pool,
 *    an earlier vmalloc area's own tags at the same page index, and nothing
 *    else (check_warm); the tags are intact just before the area is freed, so
 *    nobody else was handed, or released, our memory meanwhile;
 *  - a vmap'd or map_ram'd page shows its file page, also after the test
 *    writes the file through a mapping (seen by pread) or with pwrite (seen
 *    through every live mapping of that page); mapping a read-only fd for
 *    writing fails with EACCES and is undone (guard and piece too);
 *  - in a strict space a freed area reads zero as soon as the free returns;
 *    after a sync purge (or vmap_unmap_aliases) every page freed since reads
 *    zero: released, file pages unmapped, guards removed;
 *  - no two live areas or pieces overlap, all lie inside the reservation, a
 *    piece inside one block; with GUARD the page after each area is its
 *    guard: owned by it, and refused to the kernel (see readable_pages: the
 *    test never touches a guard page itself, a fault would kill the fuzzer);
 *  - bad frees fail with the documented error and change nothing;
 *  - a file mapping the kernel refuses (a socket, a pipe, a directory,
 *    /proc/self/status, the read-only fd for writing) fails with mmap's
 *    errno, changes nothing, and leaves the reservation whole: the next
 *    vmalloc there reads zero and is writable, vmap_check() passes (it
 *    compares the reservation with /proc/self/maps);
 *  - vmap_vprotect takes effect (a PROT_NONE area cannot be read, a
 *    PROT_READ one cannot be written: see writable_pages), refuses what is
 *    no area and bad bits, keeps the area out of the warm pool, and the
 *    purge that releases it makes it readable and writable again (counted
 *    in protect_restores); the test never touches a protected area itself;
 *  - pages freed while mlock()ed are released like any other: after the
 *    purge they are not resident (mincore, looked at before anything reads
 *    them) and read zero; nothing is quarantined, nothing refused;
 *  - after vmap_unmap_aliases every freed piece reads zero and a write
 *    through its old pointer does not reach the file it showed; live
 *    pieces still show theirs;
 *  - vmap_unmap_ram with any count but the piece's own (the same
 *    power-of-two slot, the other side of RAM_MAX, a size that overflows)
 *    fails with EINVAL and changes nothing;
 *  - vmap_vrealloc of a live vmalloc (or vmap_alloc_at) area to a new size
 *    -- smaller, the same, larger, much larger, 16 pages and more (moved by
 *    mremap), 0 (a free), or of NULL (a vmalloc) -- keeps the tags of the
 *    pages both sizes have.  In place: a shrink's tail is freed (lazy; in a
 *    strict space released at once) and the guard follows the new end; a
 *    grow took pages the test knew were neither busy nor lazy, and they
 *    read zero.  Moved (only a grow may): the new area lies as a vmalloc's,
 *    its new pages read as a vmalloc's, and the old one is freed (a
 *    vmap_vfree of it is -ENOENT).  vmap_vsize is the new size.  Refused --
 *    a vmap_vmap or big map_ram area, a vprotected one, a reservation, a
 *    piece, what is no area, a size that overflows -- NULL, the documented
 *    errno, and nothing changed (a refusal once returned ptr for the
 *    area's own size, and EINVAL for a vmap block's first piece);
 *  - vmap_alloc_at and vmap_reserve (VMAP_AT_PURGE sometimes) and
 *    vmap_range_state answer as what the test knows of the range allows
 *    (classify: busy, surely lazy, free, or either): -EBUSY for a busy
 *    page, -EAGAIN for a lazy one, the range when all is free or purged; a
 *    new area is exactly there (vmap_vsize), reads zero and has its guard
 *    (alloc_at); no purge ran without VMAP_AT_PURGE, and one that did
 *    released all that was freed; vmap_vfree, vmap_free and
 *    vmap_free_sized of a reservation are -EPERM, vmap_unreserve of an area
 *    -EPERM and of what is no area -ENOENT, and it frees a reservation like
 *    an area; bad arguments are -EINVAL or -ERANGE and change nothing;
 *  - vmap_owns is true for every live area and false outside the space (a
 *    stack address, the bytes around it); vmap_space_range is the
 *    reservation; vmap_vsize is each live area's size (a piece and what is
 *    no area: -ENOENT); vmap_walk's busy ranges are exactly the test's
 *    areas and reservations, and its blocks hold the live pieces;
 *  - alone (no second thread, or at the end): busy + lazy + free + pool
 *    pages make the whole space, busy pages are exactly the live areas with
 *    their guards plus the blocks, and the counters match what was done;
 *    after freeing everything and a sync purge, nothing is lazy, warm or
 *    busy, the space is one free block, vmap_check() passes, and every page
 *    this input ever used reads zero.
 * "Alone", calls that must fail also leave vmap_stats() as it was, but for
 * the failure they count.
 * A failure prints what broke and aborts.  One memfd serves the whole
 * process (its pattern is restored at the start of each input); the space
 * is created and destroyed with each input.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE	/* pipe2, open_memstream, syscall */
#endif
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>
#include <vmap.h>

#include "../draw.h"
#include "fuzz.h"

#define MIN_SPACE_PAGES 256	/* 1 MiB of 4 KiB pages: small enough to fill */
#define MAX_SPACE_PAGES 16384	/* 64 MiB */
#define MAX_LIVE 48
#define MAX_GONE 16		/* freed addresses kept for double frees */
#define MAX_VMALLOC 80		/* pages: both sides of the pool's exact classes */
#define MAX_N 96		/* vmap and map_ram pages: past VMAP_RAM_MAX_PAGES */
#define FILE_PAGES 48
#define RAM_MAX VMAP_RAM_MAX_PAGES

typedef unsigned long long ull;

/* ---- the process's memfd and its pattern ---- */

static size_t ps;		/* the system page size */
static int file_fd = -1;
static int ro_fd = -1;			/* the same file, read-only */
static uint32_t file_gen[FILE_PAGES];	/* bumped by each write of a page */
static int probe_pipe[2];		/* see readable_pages */

/* Descriptors the kernel refuses to map shared: mmap's handler says ENODEV,
 * or, asked for what the fd was not opened for, EACCES.  The last is the
 * read-only memfd, which it refuses only for writing. */
#define NUNMAPPABLE 6
static struct unmappable {
	int fd;
	bool r, w;	/* open for reading, for writing */
	bool file;	/* mappable: refused only for writing */
	const char *name;
} unmappable[NUNMAPPABLE];

/* Word w of file page pg at generation gen: never zero, and telling where
 * it came from when it shows up where it should not. */
static uint64_t file_word(uint64_t pg, uint64_t gen, uint64_t w)
{
	return 0xF11E000000000000ull | pg << 40 | (gen & 0xFFFFFF) << 16 | w;
}

/* The first and last words of page i of a vmalloc area: its owner. */
static uint64_t tag_word(uint64_t id, uint64_t i)
{
	return 0xA11C000000000000ull | (id & 0xFFFFFFFF) << 16 | (i & 0xFFFF);
}

static void describe(uint64_t v, char *buf, size_t len)
{
	if (v >> 48 == 0xF11E)
		snprintf(buf, len, "%#llx (file page %llu, generation %llu, "
			 "word %llu)", (ull)v, (ull)(v >> 40 & 0xFF),
			 (ull)(v >> 16 & 0xFFFFFF), (ull)(v & 0xFFFF));
	else if (v >> 48 == 0xA11C)
		snprintf(buf, len, "%#llx (tag of area #%llu, page %llu)",
			 (ull)v, (ull)(v >> 16 & 0xFFFFFFFF), (ull)(v & 0xFFFF));
	else
		snprintf(buf, len, "%#llx", (ull)v);
}

static void fill_file_page(uint64_t *w, uint64_t pg, uint64_t gen)
{
	for (size_t i = 0; i < ps / 8; i++)
		w[i] = file_word(pg, gen, i);
}

/* A page's worth of words, for the largest page size this runs with. */
static uint64_t page_buf[65536 / 8];

static void write_file_page(uint64_t pg)
{
	uint64_t *buf = page_buf;

	fill_file_page(buf, pg, file_gen[pg]);
	if (pwrite(file_fd, buf, ps, (off_t)(pg * ps)) != (ssize_t)ps)
		FAIL("pwrite of file page %llu: %s", (ull)pg, strerror(errno));
}

/* ---- the space, as the first bytes made it ---- */

static struct {
	vmap_space *space;
	uint8_t *base, *end;
	uint64_t npages, bp, pool_max;
	unsigned flags;
	bool strict, guard, threaded, paced;
} s;

/* What the test knows of each page of the space. */
enum { CLEAN, OWNED, FREED, FREED_PIECE };
static uint8_t page_state[MAX_SPACE_PAGES];
static bool used[MAX_SPACE_PAGES];	/* handed out this input */
static bool locked[MAX_SPACE_PAGES];	/* mlock()ed by the test, and not
					   munlock()ed since: the mapping
					   may stay locked past the free */
static bool lock_freed[MAX_SPACE_PAGES]; /* freed so: must not be resident
					    once released */
static bool prot_freed[MAX_SPACE_PAGES]; /* freed after vmap_vprotect: must
					    be writable once released */
static uint8_t piece_file[MAX_SPACE_PAGES]; /* a freed piece's page: the
					       file page it showed, + 1 */
static uint64_t freed_epoch[MAX_SPACE_PAGES]; /* a FREED page: the space's
						 purge count just before
						 its free (alone) */
static uint8_t in_block[MAX_SPACE_PAGES]; /* in a vmap block (learn_blocks):
					     IN_BLOCK, or MAYBE_BLOCK where
					     the purger may free it */
enum { NO_BLOCK, MAYBE_BLOCK, IN_BLOCK };
static bool block_seen[MAX_SPACE_PAGES]; /* in a vmap block since the last
					    sync purge: if the block is gone,
					    maybe lazy (a block whose last
					    piece is freed goes lazy whole,
					    pages never handed out too) */

/* RAM_ALLOC: vmap_ram_alloc pieces, anonymous memory of a block (tags and
 * zeros, as vmalloc).  VMALLOC also holds vmap_alloc_at's areas (the same
 * kind of area, at an address of the test's); RESERVED is a vmap_reserve
 * range: plain memory of the test's too (tags and zeros), no guard, freed
 * only by vmap_unreserve. */
enum { VMALLOC, VMAP, RAM, RAM_ALLOC, RESERVED };
static const char *const kind_name[] = { "vmalloc", "vmap", "map_ram",
					 "ram_alloc", "reservation" };

struct area {
	uint8_t *p;
	uint32_t pages;		/* usable pages */
	uint32_t own;		/* pages it owns: + its guard, or a piece's
				   power of two */
	uint8_t kind;
	bool piece;		/* map_ram or ram_alloc of up to RAM_MAX
				   pages: a block's */
	bool guarded;
	bool ro;		/* vmap of the read-only fd */
	bool vprot;		/* vmap_vprotect changed it */
	bool vprot_refused;	/* ... or refused to (-EACCES) */
	int prot;		/* what may be done to it now */
	uint64_t id;
	uint8_t pgoff[MAX_N];	/* vmap and map_ram: the file pages */
};

/* What this thread holds and did in this input. */
static struct {
	struct area live[MAX_LIVE];
	size_t nlive;
	uint8_t *gone[MAX_GONE];
	unsigned ngone;
	uint64_t next_id, allocs, frees, failures, runs, guarded, vmallocs;
	uint64_t prot_frees;	/* areas freed after vmap_vprotect */
	uint64_t refused_frees;	/* ... after only a refused one */
	bool inexact;	/* an ENOMEM: the library may have counted twice */
} me;

static struct fuzz_thread purging;	/* if s.threaded */

static uint64_t index_of(const uint8_t *p)
{
	return (uint64_t)(p - s.base) / ps;
}

static const char *name_of(const struct area *a)
{
	return kind_name[a->kind];
}

/* Its pages show the file. */
static bool of_file(const struct area *a)
{
	return a->kind == VMAP || a->kind == RAM;
}

/* ---- looking at memory without faulting ---- */

/*
 * How many of the n pages from p, from the first, the kernel can read.  A
 * write() from them into a pipe fails with EFAULT where the test would take
 * a SIGSEGV (a guard page, MADV_GUARD_INSTALL or PROT_NONE), and never
 * touches the page from user space: so the test can tell "this page is a
 * guard" -- and say so, instead of dying on a guard left behind.  One call
 * for the lot; one per page only to find a culprit.
 */
static size_t readable_pages(const uint8_t *p, size_t n)
{
	struct iovec iov[MAX_N + 1];
	char sink[MAX_N + 1];

	for (size_t i = 0; i < n; i++)
		iov[i] = (struct iovec){ (void *)(p + i * ps), 1 };
	if (writev(probe_pipe[1], iov, (int)n) == (ssize_t)n) {
		if (read(probe_pipe[0], sink, n) != (ssize_t)n)
			FAIL("probe pipe: %s", strerror(errno));
		return n;
	}
	for (size_t i = 0; i < n; i++) {
		if (write(probe_pipe[1], p + i * ps, 1) != 1) {
			if (errno != EFAULT)
				FAIL("probe pipe: %s", strerror(errno));
			return i;
		}
		if (read(probe_pipe[0], sink, 1) != 1)
			FAIL("probe pipe: %s", strerror(errno));
	}
	return n;
}

/* Pages the test is about to read must be readable: a guard (or a page
 * left PROT_NONE) there is a finding, not a crash. */
static void must_read(const uint8_t *p, size_t n, const char *what)
{
	/* At most MAX_N + 1 per probe: the iovec array's size. */
	for (size_t i = 0; i < n; i += MAX_N + 1) {
		size_t chunk = n - i < MAX_N + 1 ? n - i : MAX_N + 1;
		size_t k = readable_pages(p + i * ps, chunk);

		if (k < chunk)
			FAIL("%s: page %p (%zu of %zu from %p) faults: a guard "
			     "page or PROT_NONE", what, (void *)(p + (i + k) * ps),
			     i + k, n, (void *)p);
	}
}

/* Whatever a failed probe left in the pipe. */
static void drain_probe(void)
{
	char sink[256];

	while (read(probe_pipe[0], sink, sizeof(sink)) > 0)
		;
}

/*
 * How many of the n pages from p, from the first, the kernel can write: a
 * read() from the probe pipe into each page's first byte fails with EFAULT
 * where a write by the test would take a SIGSEGV (PROT_READ, PROT_NONE, a
 * guard, a hole).  The byte read in is the one already there, so a
 * writable page keeps its contents.  The pages must be readable.
 */
static size_t writable_pages(uint8_t *p, size_t n)
{
	struct iovec iov[MAX_N + 1];
	char same[MAX_N + 1];

	for (size_t i = 0; i < n; i++) {
		same[i] = (char)p[i * ps];
		iov[i] = (struct iovec){ p + i * ps, 1 };
	}
	if (write(probe_pipe[1], same, n) != (ssize_t)n)
		FAIL("probe pipe: %s", strerror(errno));
	if (readv(probe_pipe[0], iov, (int)n) == (ssize_t)n)
		return n;
	drain_probe();
	for (size_t i = 0; i < n; i++) {
		if (write(probe_pipe[1], &same[i], 1) != 1)
			FAIL("probe pipe: %s", strerror(errno));
		if (read(probe_pipe[0], p + i * ps, 1) != 1) {
			if (errno != EFAULT)
				FAIL("probe pipe: %s", strerror(errno));
			drain_probe();
			return i;
		}
	}
	return n;
}

/* Pages the test (or its next owner) is about to write must be writable. */
static void must_write(uint8_t *p, size_t n, const char *what)
{
	must_read(p, n, what);
	for (size_t i = 0; i < n; i += MAX_N + 1) {
		size_t chunk = n - i < MAX_N + 1 ? n - i : MAX_N + 1;
		size_t k = writable_pages(p + i * ps, chunk);

		if (k < chunk)
			FAIL("%s: page %p (%zu of %zu from %p) is readable but "
			     "not writable", what, (void *)(p + (i + k) * ps),
			     i + k, n, (void *)p);
	}
}

/* Pages freed while locked, and released since, are gone from memory.
 * Asked before anything reads them: a read maps the zero page. */
static void check_not_resident(const uint8_t *p, size_t n, const char *what)
{
	static unsigned char vec[MAX_SPACE_PAGES];

	if (mincore((void *)p, n * ps, vec))
		FAIL("%s: mincore(%p, %zu pages): %s", what, (const void *)p,
		     n, strerror(errno));
	for (size_t i = 0; i < n; i++)
		if (lock_freed[index_of(p) + i] && (vec[i] & 1))
			FAIL("%s: page %p (%zu of %zu), freed while locked, is "
			     "still resident after the purge that released it",
			     what, (const void *)(p + i * ps), i, n);
}

/* The first of n pages from p that is not all zero, or n. */
static size_t first_nonzero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const uint64_t *w = (const uint64_t *)(p + i * ps);
		uint64_t any = 0;

		for (size_t j = 0; j < ps / 8; j++)
			any |= w[j];
		if (any)
			return i;
	}
	return n;
}

/* n pages from p read entirely zero. */
static void check_zero(const uint8_t *p, size_t n, const char *what)
{
	size_t i;
	char buf[96];

	must_read(p, n, what);
	if ((i = first_nonzero(p, n)) == n)
		return;
	for (size_t j = 0; j < ps / 8; j++) {
		uint64_t w = ((const uint64_t *)(p + i * ps))[j];

		if (w) {
			describe(w, buf, sizeof(buf));
			FAIL("%s: page %p (%zu of %zu) is not zero: word %zu "
			     "is %s", what, (void *)(p + i * ps), i, n, j, buf);
		}
	}
}

/* The page at p shows file page pg as the test last wrote it. */
static void check_file_page(const uint8_t *p, uint64_t pg, const char *what)
{
	const uint64_t *w = (const uint64_t *)p;
	char got[96];

	for (size_t j = 0; j < ps / 8; j++)
		if (w[j] != file_word(pg, file_gen[pg], j)) {
			describe(w[j], got, sizeof(got));
			FAIL("%s: page %p should show file page %llu, generation "
			     "%u; word %zu is %s", what, (const void *)p,
			     (ull)pg, file_gen[pg], j, got);
		}
}

/* ---- a live area's contents ---- */

static void stamp(const struct area *a)
{
	for (uint32_t i = 0; i < a->pages; i++) {
		uint64_t *w = (uint64_t *)(a->p + i * ps);

		w[0] = w[ps / 8 - 1] = tag_word(a->id, i);
	}
}

/* What the test put there, and nothing else: tags and zeros, or the file. */
static void check_contents(const struct area *a, const char *when)
{
	char what[128];

	snprintf(what, sizeof(what), "%s %s area #%llu at %p, %u pages", when,
		 name_of(a), (ull)a->id, (void *)a->p, a->pages);
	/* What may not be done to it, the kernel must refuse -- and the
	 * test must not try (a fault would kill the fuzzer). */
	if (!(a->prot & PROT_READ)) {
		if (readable_pages(a->p, 1))
			FAIL("%s: PROT_NONE, but its first page is readable",
			     what);
		return;
	}
	must_read(a->p, a->pages, what);
	if (!(a->prot & PROT_WRITE) && writable_pages(a->p, 1))
		FAIL("%s: PROT_READ, but its first page is writable", what);
	if (of_file(a)) {
		for (uint32_t i = 0; i < a->pages; i++)
			check_file_page(a->p + i * ps, a->pgoff[i], what);
		return;
	}
	for (uint32_t i = 0; i < a->pages; i++) {
		const uint64_t *w = (const uint64_t *)(a->p + i * ps);
		uint64_t tag = tag_word(a->id, i);
		char got[96];

		for (size_t j = 0; j < ps / 8; j++) {
			uint64_t want = j == 0 || j == ps / 8 - 1 ? tag : 0;

			if (w[j] != want) {
				describe(w[j], got, sizeof(got));
				FAIL("%s: page %u word %zu is %s, not %#llx",
				     what, i, j, got, (ull)want);
			}
		}
	}
}

/* ---- handing out and giving back ---- */

static bool overlap(const struct area *a, const struct area *b)
{
	return a->p < b->p + (size_t)b->own * ps &&
	       b->p < a->p + (size_t)a->own * ps;
}

/* Where a new area lies: in the space, page-aligned, a piece in one block,
 * apart from every live area (guards included); with GUARD, its guard page
 * refused to the kernel. */
static void check_place(const struct area *a)
{
	uint64_t block = s.bp * ps;
	uintptr_t p = (uintptr_t)a->p;

	if (a->p < s.base || a->p + (size_t)a->own * ps > s.end || p % ps)
		FAIL("%s area %p, %u pages, is not inside the space [%p, %p) "
		     "or not page-aligned", name_of(a), (void *)a->p, a->own,
		     (void *)s.base, (void *)s.end);
	if (a->piece && p / block != (p + (size_t)a->own * ps - 1) / block)
		FAIL("map_ram piece %p, %u pages, crosses a block boundary",
		     (void *)a->p, a->own);
	for (size_t i = 0; i < me.nlive; i++)
		if (overlap(a, &me.live[i]))
			FAIL("%s area %p (%u pages with guard or rounding) "
			     "overlaps live %s area #%llu at %p (%u pages)",
			     name_of(a), (void *)a->p, a->own,
			     name_of(&me.live[i]), (ull)me.live[i].id,
			     (void *)me.live[i].p, me.live[i].own);
	if (a->guarded && readable_pages(a->p + (size_t)a->pages * ps, 1))
		FAIL("%s area %p, %u pages: the page after it is no guard",
		     name_of(a), (void *)a->p, a->pages);
}

static void mark(const struct area *a, uint8_t state)
{
	for (uint64_t i = index_of(a->p); i < index_of(a->p) + a->own; i++) {
		page_state[i] = state;
		used[i] = true;
	}
}

/* The vmap block that holds piece a: see block_seen. */
static void seen_block(const struct area *a)
{
	uint64_t block = s.bp * ps;

	memset(block_seen + index_of((const uint8_t *)((uintptr_t)a->p /
						       block * block)),
	       true, s.bp);
}

static void keep(struct area *a)
{
	check_place(a);
	if (a->piece)
		seen_block(a);
	mark(a, OWNED);
	me.live[me.nlive++] = *a;
	me.allocs++;
	me.guarded += a->guarded;
}

/* A failed allocation: only "no room" may happen here, or, for file
 * mappings, the kernel refusing another (then the counters may differ). */
static void failed(const char *call, bool file)
{
	if (errno == ENOSPC || (file && errno == ENOMEM)) {
		me.failures++;
		me.inexact |= errno == ENOMEM;
		return;
	}
	FAIL("%s returned NULL: %s", call, strerror(errno));
}

/* vmap_vmalloc's contents are unspecified, but only so far: a page reads
 * zero, or -- a warm area of the same size at the same place -- the tags an
 * earlier vmalloc area of this process wrote at the same page index, and
 * nothing else (no file page, no piece's data, no other offset). */
static void check_warm_at(const uint8_t *area, size_t from, size_t n,
			  const char *what)
{
	const uint8_t *p = area + from * ps;
	char buf[96];

	must_read(p, n, what);
	for (size_t i = 0; i < n; i++) {
		const uint64_t *w = (const uint64_t *)(p + i * ps);

		for (size_t j = 0; j < ps / 8; j++) {
			bool tag = (j == 0 || j == ps / 8 - 1) &&
				   w[j] >> 48 == 0xA11C &&
				   (w[j] & 0xFFFF) == ((from + i) & 0xFFFF);

			if (w[j] && !tag) {
				describe(w[j], buf, sizeof(buf));
				FAIL("%s: page %p (%zu of %zu) holds neither "
				     "zero nor an earlier vmalloc's own tag: "
				     "word %zu is %s", what,
				     (void *)(p + i * ps), i, n, j, buf);
			}
		}
	}
}

static void check_warm(const uint8_t *p, size_t n, const char *what)
{
	check_warm_at(p, 0, n, what);
}

/* New memory reads zero (vmap_vmalloc: see check_warm), and takes the
 * test's writes: no hole, no protection or file left behind by an earlier
 * owner or a failed call. */
static void check_new(struct area *a, const char *what, bool warm_ok)
{
	keep(a);
	if (warm_ok)
		check_warm(a->p, a->pages, what);
	else
		check_zero(a->p, a->pages, what);
	must_write(a->p, a->pages, what);
	stamp(a);
}

/* z: vmap_vzalloc; else vmap_vmalloc, or (realloc) vmap_vrealloc of NULL,
 * which is vmap_vmalloc. */
static void new_vmalloc_by(uint32_t pages, size_t size, bool z, bool realloc)
{
	const char *call = z ? "vmap_vzalloc" : realloc ? "vmap_vrealloc(NULL)"
							: "vmap_vmalloc";
	struct area a = { .pages = pages, .own = pages + s.guard,
			  .kind = VMALLOC, .guarded = s.guard,
			  .prot = PROT_READ | PROT_WRITE, .id = ++me.next_id };

	a.p = z ? vmap_vzalloc(s.space, size)
	      : realloc ? vmap_vrealloc(s.space, NULL, size)
			: vmap_vmalloc(s.space, size);
	if (!a.p) {
		failed(call, false);
		return;
	}
	me.vmallocs++;
	check_new(&a, call, !z);
}

static void new_vmalloc(uint32_t pages, size_t size, bool z)
{
	new_vmalloc_by(pages, size, z, false);
}

static void op_vmalloc(struct draw *d)
{
	/* Mostly small, as touching pages is most of an input's time. */
	uint32_t pages = 1 + (uint32_t)draw(d, draw(d, 4) ? 16 : MAX_VMALLOC);
	size_t size = pages * ps - (draw(d, 4) ? 0 : draw(d, ps));

	new_vmalloc(pages, size, draw(d, 2));
}

static uint32_t pow2_up(uint32_t n);

/* A piece of anonymous memory from the calling CPU's vmap block. */
static void new_ram_alloc(uint32_t pages)
{
	struct area a = { .pages = pages, .own = pow2_up(pages),
			  .kind = RAM_ALLOC, .piece = true,
			  .prot = PROT_READ | PROT_WRITE, .id = ++me.next_id };
	uint64_t addr;
	int err = vmap_ram_alloc(s.space, (uint64_t)pages * ps, &addr);

	if (err) {
		errno = -err;
		failed("vmap_ram_alloc", false);
		return;
	}
	a.p = (uint8_t *)(uintptr_t)addr;
	check_new(&a, "vmap_ram_alloc", false);
}

/* n file pages: one run (wrapping at the end of the file: two runs),
 * scattered pages, or a mix. */
static void draw_offsets(struct draw *d, uint8_t *pgoff, uint32_t n)
{
	unsigned how = (unsigned)draw(d, 3);

	pgoff[0] = (uint8_t)draw(d, FILE_PAGES);
	for (uint32_t i = 1; i < n; i++) {
		bool next = how == 0 || (how == 2 && draw(d, 4));

		pgoff[i] = next ? (uint8_t)((pgoff[i - 1] + 1) % FILE_PAGES)
				: (uint8_t)draw(d, FILE_PAGES);
	}
}

static uint64_t runs_of(const uint64_t *pgoff, uint32_t n)
{
	uint64_t runs = 1;

	for (uint32_t i = 1; i < n; i++)
		runs += pgoff[i] != pgoff[i - 1] + 1;
	return runs;
}

static uint32_t pow2_up(uint32_t n)
{
	uint32_t p = 1;

	while (p < n)
		p <<= 1;
	return p;
}

static void expect(int got, int want, const char *what, const void *p)
{
	if (got != want)
		FAIL("%s at %p returned %d (%s), not %d", what, p, got,
		     vmap_strerror(got), want);
}

static struct vmap_stats stats(void);

/* Field f of *after is field f of *before plus delta. */
#define SAME(f, delta)                                                      \
	do {                                                                \
		if (after->f != before->f + (uint64_t)(delta))              \
			FAIL("%s: vmap_stats %s went from %llu to %llu, not "   \
			     "by %lld", what, #f, (ull)before->f,            \
			     (ull)after->f, (long long)(delta));             \
	} while (0)

/*
 * Alone on the space, a call that failed changed nothing but what it
 * counts: alloc_failures by fails -- and, where a failed vmap_map_ram made
 * a new vmap block for its piece, that block, empty (the piece is given
 * back to it); an area from a node pool goes back to its pool.  A purge the
 * call ran (no room) would change the rest.
 */
static void check_unchanged(const struct vmap_stats *before,
			    const struct vmap_stats *after, uint64_t fails,
			    const char *what)
{
	int64_t blocks = (int64_t)(after->blocks - before->blocks);
	int64_t block = blocks * (int64_t)s.bp;

	/* (A purge that found nothing lazy still sends the node pools back
	 * to the tree: it changed free_blocks, and counted cached_decayed.) */
	if (after->purges != before->purges ||
	    after->cached_decayed != before->cached_decayed)
		return;
	SAME(allocs, 0);
	SAME(frees, 0);
	SAME(alloc_failures, fails);
	SAME(lazy_areas, 0);
	SAME(lazy_pages, 0);
	SAME(pool_areas, 0);
	SAME(pool_pages, 0);
	SAME(pool_hits, 0);
	SAME(blocks_created, blocks);
	SAME(blocks_freed, 0);
	SAME(busy_areas, blocks);
	SAME(busy_pages, block);
	SAME(free_pages, -block);
	SAME(block_free_pages, block);
	SAME(block_dirty_pages, 0);
	SAME(release_errors, 0);
	SAME(quarantined_areas, 0);
	SAME(quarantined_pages, 0);
	SAME(protect_restores, 0);
	if (!blocks) {
		SAME(free_blocks, 0);
		SAME(largest_free_pages, 0);
	}
}

/*
 * After a file mapping the kernel refused: nothing changed, the
 * reservation is whole (vmap_check compares it with /proc/self/maps: a hole
 * or a foreign file mapping in a range that is not busy fails it), and the
 * space still hands out readable, writable, zero memory where the call
 * tried -- the old bug left a hole there, and the next vmalloc returned
 * unmapped memory.  The same request lands there: the lowest fit (a tree
 * area, unless the warm pool has one of its size), or the piece's slot,
 * given back to its block.
 */
static void after_refused(const struct vmap_stats *before, uint32_t n,
			  bool piece, const char *what)
{
	if (!s.threaded) {
		struct vmap_stats now = stats();

		check_unchanged(before, &now, 1, what);
	}
	expect(vmap_check(s.space), 0, "vmap_check after a refused mapping",
	       s.base);
	if (me.nlive == MAX_LIVE)
		return;
	if (piece)
		new_ram_alloc(n);
	else
		new_vmalloc(n, n * ps, false);
}

/* vmap_vmap, or vmap_map_ram: of up to and past RAM_MAX pages. */
static void op_map(struct draw *d, bool ram)
{
	uint32_t n = 1 + (uint32_t)draw(d, draw(d, 4) ? 16 : MAX_N);
	bool ro = draw(d, 4) == 0;
	struct area a = { .pages = n, .kind = ram ? RAM : VMAP, .ro = ro,
			  .id = ++me.next_id };
	const char *call = ram ? "vmap_map_ram" : "vmap_vmap";
	int fd = ro ? ro_fd : file_fd;
	uint64_t off[MAX_N];
	struct vmap_stats before = { 0 };

	/* A piece takes a power of two of its block's pages; anything else
	 * is a tree area, with its guard. */
	a.piece = ram && n <= RAM_MAX;
	a.guarded = s.guard && !a.piece;
	a.own = a.piece ? pow2_up(n) : n + s.guard;
	a.prot = ram || draw(d, 3) ? PROT_READ | PROT_WRITE : PROT_READ;
	draw_offsets(d, a.pgoff, n);
	for (uint32_t i = 0; i < n; i++)
		off[i] = a.pgoff[i];
	if (!s.threaded)
		before = stats();
	a.p = ram ? vmap_map_ram(s.space, fd, off, n)
		  : vmap_vmap(s.space, fd, off, n, a.prot);
	if (ro && (a.prot & PROT_WRITE)) {
		/* The kernel refuses to map the read-only fd for writing:
		 * the allocation is undone (guard, piece and all). */
		if (a.p || (errno != EACCES && errno != ENOSPC))
			FAIL("%s of a read-only fd for writing gave %p: %s",
			     call, (void *)a.p, strerror(errno));
		me.failures++;
		if (errno == EACCES)
			after_refused(&before, n, a.piece, call);
		return;
	}
	if (!a.p) {
		failed(call, true);
		return;
	}
	keep(&a);
	me.runs += runs_of(off, n);
	check_contents(&a, "new");
}

/*
 * vmap_vmap or vmap_map_ram of a descriptor the kernel will not map shared:
 * a socket, a pipe's end, a directory, a procfs file (ENODEV), or one not
 * open for what is asked (EACCES).  mmap's errno comes back, or ENOSPC if
 * there was no room to try.
 */
static void op_unmappable(struct draw *d)
{
	unsigned k = (unsigned)draw(d, NUNMAPPABLE);
	bool ram = draw(d, 2);
	uint32_t n = 1 + (uint32_t)draw(d, draw(d, 4) ? 16 : MAX_N);
	int prot = ram ? PROT_READ | PROT_WRITE : 1 + (int)draw(d, 3);
	const char *call = ram ? "vmap_map_ram" : "vmap_vmap";
	struct vmap_stats before = { 0 };
	uint8_t pgoff[MAX_N];
	uint64_t off[MAX_N];
	char what[96];
	int want;
	void *p;

	if (unmappable[k].file)
		prot |= PROT_WRITE; /* else the read-only memfd maps */
	want = !unmappable[k].r || ((prot & PROT_WRITE) && !unmappable[k].w)
		       ? EACCES : ENODEV;
	draw_offsets(d, pgoff, n);
	for (uint32_t i = 0; i < n; i++)
		off[i] = pgoff[i];
	if (!s.threaded)
		before = stats();
	errno = 0;
	p = ram ? vmap_map_ram(s.space, unmappable[k].fd, off, n)
		: vmap_vmap(s.space, unmappable[k].fd, off, n, prot);
	snprintf(what, sizeof(what), "%s of %s, %u pages, prot %d", call,
		 unmappable[k].name, n, prot);
	if (p || (errno != want && errno != ENOSPC))
		FAIL("%s gave %p, %s; not NULL, %s", what, p, strerror(errno),
		     strerror(want));
	me.failures++;
	if (errno == want)
		after_refused(&before, n, ram && n <= RAM_MAX, what);
}

static void forget(size_t i)
{
	me.gone[me.ngone++ % MAX_GONE] = me.live[i].p;
	me.live[i] = me.live[--me.nlive];
	me.frees++;
}

/*
 * A write through a freed piece's old pointer must not reach the file the
 * piece showed: its page is plain reserved space now.  (The word goes back
 * to zero, the file's page -- should it have changed -- to its pattern.)
 */
static void check_stale_write(uint64_t k, const char *what)
{
	uint64_t pg = piece_file[k] - 1, got = 0;
	volatile uint64_t *w = (volatile uint64_t *)(s.base + k * ps);

	*w = file_word(pg, file_gen[pg] + 1, 0);
	if (pread(file_fd, &got, sizeof(got), (off_t)(pg * ps)) !=
	    (ssize_t)sizeof(got))
		FAIL("pread of file page %llu: %s", (ull)pg, strerror(errno));
	*w = 0;
	if (got != file_word(pg, file_gen[pg], 0)) {
		char buf[96];

		write_file_page(pg);
		describe(got, buf, sizeof(buf));
		FAIL("%s: a write to freed piece page %p reached file page "
		     "%llu, which now reads %s", what, (void *)(uintptr_t)w,
		     (ull)pg, buf);
	}
}

/*
 * Pages [i, j), freed and released since: not resident if they were freed
 * locked (asked first, unless the caller did -- resident_seen: reading
 * maps the zero page), zero, writable again if vmap_vprotect had changed
 * them; freed pieces' pages (pieces: after vmap_unmap_aliases, or once
 * their block is gone) no longer reach their file.  Then the test forgets
 * it ever had them.
 */
static void check_run_released(uint64_t i, uint64_t j, bool pieces,
			       bool resident_seen, const char *what)
{
	uint8_t *p = s.base + i * ps;
	bool lk = false, pr = false;

	for (uint64_t k = i; k < j; k++) {
		lk |= lock_freed[k];
		pr |= prot_freed[k];
	}
	if (lk && !resident_seen)
		check_not_resident(p, j - i, what);
	check_zero(p, j - i, what);
	if (pr || pieces)
		must_write(p, j - i, what);
	for (uint64_t k = i; k < j; k++) {
		if (pieces && piece_file[k])
			check_stale_write(k, what);
		page_state[k] = CLEAN;
		lock_freed[k] = prot_freed[k] = false;
		piece_file[k] = 0;
	}
}

/* A strict space released the area before the free returned. */
static void check_released(const struct area *a, const char *what)
{
	check_run_released(index_of(a->p), index_of(a->p) + a->own, false,
			   false, what);
}

/* What the page may keep past the free, and what the release must undo:
 * pages [from, to) of the area's own (a vmap_vrealloc shrink frees its
 * tail), freed when the space had purged `epoch` times (purge_epoch). */
static void mark_freed_part(const struct area *a, uint32_t from, uint32_t to,
			    uint64_t epoch)
{
	for (uint32_t i = from; i < to; i++) {
		uint64_t k = index_of(a->p) + i;

		page_state[k] = a->piece ? FREED_PIECE : FREED;
		used[k] = true;
		lock_freed[k] = locked[k];
		prot_freed[k] = a->vprot && i < a->pages;
		piece_file[k] = a->piece && of_file(a) && i < a->pages
					? (uint8_t)(a->pgoff[i] + 1) : 0;
		freed_epoch[k] = epoch;
	}
}

static void mark_freed(const struct area *a, uint64_t epoch)
{
	mark_freed_part(a, 0, a->own, epoch);
}

/* The space's purge count now (alone; 0 with a purger thread, when it
 * means nothing): a page freed at epoch e is surely still lazy or warm --
 * not free -- while the count is still e.  Taken before the free, which
 * may purge. */
static uint64_t purge_epoch(void)
{
	return s.threaded ? 0 : stats().purges;
}

/* How free_area frees: with the area's own call, another that takes it
 * (vmap_vfree of a vmap_vmap area, ...), or vmap_vrealloc to size 0. */
enum { BY_OWN, BY_OTHER, BY_VREALLOC };

static void free_area(size_t i, int how)
{
	struct area a = me.live[i];
	struct vmap_stats before = { 0 }, after;
	bool pool_check = a.vprot && !s.threaded;
	bool other_call = how == BY_OTHER;
	uint64_t epoch = purge_epoch();
	const char *call;
	int err;

	check_contents(&a, "freeing");
	if (a.guarded && readable_pages(a.p + (size_t)a.pages * ps, 1))
		FAIL("freeing %s area #%llu at %p, %u pages: its guard page is "
		     "gone", name_of(&a), (ull)a.id, (void *)a.p, a.pages);
	if (pool_check)
		before = stats();
	if (how == BY_VREALLOC) {
		/* The kernel's vrealloc: free, and NULL; errno untouched. */
		void *p;

		call = "vmap_vrealloc(ptr, 0)";
		errno = 12345;
		p = vmap_vrealloc(s.space, a.p, 0);
		err = p ? -EEXIST : errno == 12345 ? 0 : -errno;
	} else if (a.kind == RESERVED) {
		call = "vmap_unreserve";
		err = vmap_unreserve(s.space, (uintptr_t)a.p);
	} else if (a.kind == RAM_ALLOC && !other_call) {
		call = "vmap_ram_free";
		err = vmap_ram_free(s.space, (uint64_t)(uintptr_t)a.p,
				    (uint64_t)a.pages * ps);
	} else if (a.kind == RAM_ALLOC ||
		   (a.kind == RAM && (a.piece || !other_call))) {
		call = "vmap_unmap_ram";
		err = vmap_unmap_ram(s.space, a.p, a.pages);
	} else if ((a.kind == VMAP) != other_call) {
		call = "vmap_vunmap";
		err = vmap_vunmap(s.space, a.p);
	} else {
		call = "vmap_vfree";
		err = vmap_vfree(s.space, a.p);
	}
	if (err)
		FAIL("%s(%p) of live %s area #%llu = %d (%s)", call,
		     (void *)a.p, name_of(&a), (ull)a.id, err,
		     vmap_strerror(err));
	/* A protected area is never kept warm: the next vmalloc of its size
	 * would get it with the protection (the pool's memset would fault,
	 * or, read-write, skip the restore). */
	if (pool_check && (after = stats()).pool_areas > before.pool_areas)
		FAIL("%s of %s area #%llu at %p after vmap_vprotect: it went "
		     "into the warm pool (%llu areas, were %llu)", call,
		     name_of(&a), (ull)a.id, (void *)a.p,
		     (ull)after.pool_areas, (ull)before.pool_areas);
	me.prot_frees += a.vprot;
	me.refused_frees += a.vprot_refused && !a.vprot;
	mark_freed(&a, epoch);
	if (a.piece)
		seen_block(&a);
	forget(i);
	if (s.strict && !a.piece)
		check_released(&a, "freed in a strict space");
}

static void op_free(struct draw *d)
{
	free_area(draw(d, me.nlive), draw(d, 4) == 0 ? BY_OTHER : BY_OWN);
}

/* ---- the file, through the mappings ---- */

static bool writable(const struct area *a)
{
	return of_file(a) && (a->prot & PROT_WRITE);
}

/* A new generation of one file page: written through a live mapping and
 * read back with pread, or written with pwrite and read back through every
 * live mapping of that page. */
static void op_file(struct draw *d)
{
	uint64_t *buf = page_buf;
	const struct area *a = me.nlive ? &me.live[draw(d, me.nlive)] : NULL;
	uint64_t pg;

	if (a && writable(a) && draw(d, 2)) {
		uint32_t i = (uint32_t)draw(d, a->pages);

		pg = a->pgoff[i];
		file_gen[pg]++;
		fill_file_page(buf, pg, file_gen[pg]);
		memcpy(a->p + i * ps, buf, ps);
		memset(buf, 0, ps);
		if (pread(file_fd, buf, ps, (off_t)(pg * ps)) != (ssize_t)ps)
			FAIL("pread of file page %llu: %s", (ull)pg,
			     strerror(errno));
		check_file_page((const uint8_t *)buf, pg,
				"pread after a write through a mapping");
		return;
	}
	pg = draw(d, FILE_PAGES);
	file_gen[pg]++;
	write_file_page(pg);
	for (size_t k = 0; k < me.nlive; k++)
		for (uint32_t i = 0; of_file(&me.live[k]) &&
				     (me.live[k].prot & PROT_READ) &&
				     i < me.live[k].pages; i++)
			if (me.live[k].pgoff[i] == pg)
				check_file_page(me.live[k].p + i * ps, pg,
						"a mapping after pwrite");
}

/* ---- what the owner of an area may do to it ---- */

/*
 * vmap_vprotect of a live area: PROT_NONE, PROT_READ or read-write again.
 * Refused for a piece (-ENOENT: mprotect() it directly) and, for writing,
 * for a vmap of the read-only fd (-EACCES).  From then on the test only
 * looks at it as its protection allows (check_contents); once it is freed,
 * the purge that releases it must make it readable and writable again.
 */
static void op_protect(struct draw *d)
{
	static const int prots[] = { PROT_NONE, PROT_READ,
				     PROT_READ | PROT_WRITE };
	struct area *a = &me.live[draw(d, me.nlive)];
	int prot = prots[draw(d, 3)], want = 0, err;

	/* The header promises nothing for a reservation. */
	if (a->kind == RESERVED)
		return;
	if (a->piece)
		want = -ENOENT;
	else if (a->ro && (prot & PROT_WRITE))
		want = -EACCES;
	err = vmap_vprotect(s.space, a->p, prot);
	if (err != want)
		FAIL("vmap_vprotect(%s area #%llu at %p, %d) = %d (%s), not %d",
		     name_of(a), (ull)a->id, (void *)a->p, prot, err,
		     vmap_strerror(err), want);
	if (!err) {
		a->prot = prot;
		a->vprot = true;
	}
	a->vprot_refused |= err == -EACCES;
	check_contents(a, "vmap_vprotect'ed");
	/* A protected busy area is fine; its neighbours stay as they were. */
	expect(vmap_check(s.space), 0, "vmap_check after vmap_vprotect",
	       a->p);
}

/*
 * mlock() or munlock() pages of a live area.  mlock may fail (the
 * RLIMIT_MEMLOCK of an unprivileged process): then nothing is known to be
 * locked.  The mapping stays locked past the free -- the next owner's pages
 * are locked too -- and MADV_DONTNEED refuses locked pages: the release
 * must use MADV_DONTNEED_LOCKED (Linux >= 5.18), in every release path.
 * Checked through the memory once they are released (not resident, then
 * zero: see check_purged) and in the counters (nothing refused, nothing
 * quarantined).
 */
static void op_lock(struct draw *d)
{
	const struct area *a = &me.live[draw(d, me.nlive)];
	uint32_t i = (uint32_t)draw(d, a->pages);
	uint32_t n = 1 + (uint32_t)draw(d, a->pages - i);
	uint8_t *p = a->p + (size_t)i * ps;
	bool lock = draw(d, 3);

	/* The system calls themselves: the sanitizers' mlock() and munlock()
	 * do nothing (ASan ignores them), and this target runs under ASan. */
	if (syscall(lock ? SYS_mlock : SYS_munlock, p, n * ps)) {
		if (!lock)
			FAIL("munlock(%p, %u pages) of %s area #%llu: %s",
			     (void *)p, n, name_of(a), (ull)a->id,
			     strerror(errno));
		return;
	}
	for (uint64_t k = index_of(p); k < index_of(p) + n; k++)
		locked[k] = lock;
	check_contents(a, lock ? "mlock()ed" : "munlock()ed");
	expect(vmap_check(s.space), 0, "vmap_check after mlock/munlock",
	       a->p);
}

/* ---- calls that must fail and change nothing ---- */

static bool live_at(const uint8_t *p)
{
	for (size_t i = 0; i < me.nlive; i++)
		if (me.live[i].p == p)
			return true;
	return false;
}

/*
 * Any count but the piece's (or the big map_ram area's) own: more, fewer
 * (0 included), another in the same power-of-two slot (4 for a 3-page
 * piece: the kernel takes the count back, a wrong one is an error even
 * where it would free the same slot), one on the other side of RAM_MAX
 * (which looks on the tree's side, or the blocks'), one whose size in
 * bytes overflows.
 */
static uint64_t wrong_count(struct draw *d, const struct area *a)
{
	uint64_t n, half = a->own / 2;

	switch (draw(d, 6)) {
	case 0:
		n = a->pages + 1 + draw(d, 4);
		break;
	case 1:
		n = draw(d, a->pages);
		break;
	case 2:
		if (!a->piece)
			n = pow2_up(a->pages + 1);
		else if (a->own < 4)	/* a slot of one count: another */
			n = a->own == 1 ? 2 : 1;
		else if ((n = half + 1 + draw(d, half)) == a->pages)
			n = n == a->own ? half + 1 : n + 1;
		break;
	case 3:
		n = a->pages > RAM_MAX ? 1 + draw(d, RAM_MAX)
				       : RAM_MAX + 1 + draw(d, MAX_N);
		break;
	case 4:
		n = draw(d, 2) ? (1ull << 52) + 1 : SIZE_MAX / ps + 1;
		break;
	default:
		n = SIZE_MAX - draw(d, 4);
		break;
	}
	return n == a->pages ? 0 : n;
}

static void bad_call(struct draw *d, const struct area *a)
{
	static const char *const no_area = "vmap_vprotect of what is no area";
	uint64_t off = 0, n;
	uint8_t *g;
	int prot;

	switch (draw(d, 8)) {
	case 0:	/* inside a live area: no area starts there */
		if (a && a->pages > 1)
			expect(vmap_vfree(s.space, a->p + ps *
					  (1 + draw(d, a->pages - 1))),
			       -ENOENT, "vmap_vfree inside", a->p);
		return;
	case 1:	/* a piece is no area, even at its block's start */
		if (a && a->piece)
			expect(vmap_vfree(s.space, a->p), -ENOENT,
			       "vmap_vfree of a piece", a->p);
		return;
	case 2:	/* any count but its own: see wrong_count */
		if (!a || (a->kind != RAM && a->kind != RAM_ALLOC))
			return;
		n = wrong_count(d, a);
		/* vmap_ram_free takes bytes: a size that rounds up to n. */
		if (a->kind == RAM_ALLOC && n && n <= MAX_N && draw(d, 2))
			expect(vmap_ram_free(s.space, (uint64_t)(uintptr_t)a->p,
					     n * ps - draw(d, ps)),
			       -EINVAL, "vmap_ram_free, wrong size", a->p);
		else
			expect(vmap_unmap_ram(s.space, a->p, (size_t)n),
			       -EINVAL, "vmap_unmap_ram, wrong count", a->p);
		return;
	case 3:	/* freed before, and not live again since */
		if (!me.ngone)
			return;
		g = me.gone[draw(d, me.ngone < MAX_GONE ? me.ngone : MAX_GONE)];
		if (!live_at(g))
			expect(vmap_vfree(s.space, g), -ENOENT, "double free",
			       g);
		return;
	case 4:	/* NULL */
		expect(vmap_vfree(s.space, NULL), 0, "vmap_vfree", NULL);
		return;
	case 5: /* bad vmap arguments */
		errno = 0;
		if (vmap_vmap(s.space, draw(d, 2) ? -1 : file_fd, &off,
			      draw(d, 2), draw(d, 2) ? 0 : PROT_EXEC) ||
		    errno != EINVAL)
			FAIL("a bad vmap_vmap did not fail with EINVAL: %s",
			     strerror(errno));
		return;
	case 6:	/* vmap_vprotect with bits that are no PROT_ */
		prot = (int)draw(d, 8) | 1 << (3 + draw(d, 28));
		expect(vmap_vprotect(s.space, a ? a->p : s.base, prot),
		       -EINVAL, "vmap_vprotect with bad bits", a ? a->p : s.base);
		return;
	default: /* vmap_vprotect of a piece (mprotect() it directly), inside
		  * an area, of a freed one, outside the space */
		switch (draw(d, 4)) {
		case 0:
			if (a && a->piece)
				expect(vmap_vprotect(s.space, a->p, PROT_READ),
				       -ENOENT, no_area, a->p);
			return;
		case 1:
			if (a && a->pages > 1)
				expect(vmap_vprotect(s.space, a->p + ps *
						     (1 + draw(d, a->pages - 1)),
						     PROT_NONE),
				       -ENOENT, no_area, a->p);
			return;
		case 2:
			if (!me.ngone)
				return;
			g = me.gone[draw(d, me.ngone < MAX_GONE ? me.ngone
								: MAX_GONE)];
			if (!live_at(g))
				expect(vmap_vprotect(s.space, g, PROT_READ),
				       -ENOENT, no_area, g);
			return;
		default:
			g = draw(d, 2) ? s.end : s.base - ps;
			expect(vmap_vprotect(s.space, g, PROT_READ), -ENOENT,
			       no_area, g);
			return;
		}
	}
}

/* Calls that must fail: the documented error, and nothing changed -- the
 * counters, alone, and the area the call was about. */
static void op_bad(struct draw *d)
{
	const struct area *a = me.nlive ? &me.live[draw(d, me.nlive)] : NULL;
	struct vmap_stats before = { 0 }, after;

	if (!s.threaded)
		before = stats();
	bad_call(d, a);
	if (!s.threaded) {
		after = stats();
		check_unchanged(&before, &after, 0, "a call that must fail");
	}
	if (a)
		check_contents(a, "after a call that must fail on");
}

/* ---- purges, counters, checks ---- */

static struct vmap_stats stats(void)
{
	struct vmap_stats st = { .size = sizeof(st) };

	expect(vmap_stats(s.space, &st), 0, "vmap_stats", s.base);
	return st;
}

/* Busy pages of the live tree areas, guards included: what vmap_stats
 * must count with the blocks. */
static uint64_t tree_pages(uint64_t *areas)
{
	uint64_t pages = 0;

	*areas = 0;
	for (size_t i = 0; i < me.nlive; i++)
		if (!me.live[i].piece) {
			pages += me.live[i].own;
			++*areas;
		}
	return pages;
}

/* Alone on the space: an exact snapshot. */
static void check_stats_alone(void)
{
	struct vmap_stats st = stats();
	uint64_t areas, pages = tree_pages(&areas);

	EQUAL(st.busy_pages + st.lazy_pages + st.free_pages + st.pool_pages +
	      st.quarantined_pages, st.total_pages);
	EQUAL(st.total_pages, s.npages);
	EQUAL(st.busy_pages, pages + st.blocks * s.bp);
	EQUAL(st.busy_areas, areas + st.blocks);
	EQUAL(st.allocs, me.allocs);
	EQUAL(st.frees, me.frees);
	if (!me.inexact)
		EQUAL(st.alloc_failures, me.failures);
	EQUAL(st.pool_max_pages, s.pool_max);
	if (st.pool_pages > s.pool_max || st.pool_hits > me.vmallocs)
		FAIL("pool: %llu pages of %llu, %llu hits of %llu vmallocs",
		     (ull)st.pool_pages, (ull)s.pool_max, (ull)st.pool_hits,
		     (ull)me.vmallocs);
	if (st.map_syscalls < me.runs)
		FAIL("%llu mmaps for %llu runs of file pages",
		     (ull)st.map_syscalls, (ull)me.runs);
	if (s.guard ? me.guarded > st.pool_hits && !st.guard_syscalls
		    : st.guard_syscalls != 0)
		FAIL("%llu guard system calls for %llu guarded areas, %llu "
		     "from the pool", (ull)st.guard_syscalls, (ull)me.guarded,
		     (ull)st.pool_hits);
	if (s.flags & VMAP_SPACE_RELEASE_MADVISE)
		EQUAL(st.release_path, VMAP_RELEASE_MADVISE);
	else if (st.release_path != VMAP_RELEASE_MADVISE &&
		 st.release_path != VMAP_RELEASE_PROCESS_MADVISE)
		FAIL("release path %llu", (ull)st.release_path);
	/* Nothing the test does is refused by the kernel here: not locked
	 * pages (MADV_DONTNEED_LOCKED), not protected areas. */
	EQUAL(st.release_errors, 0);
	EQUAL(st.quarantined_areas, 0);
	EQUAL(st.quarantined_pages, 0);
	if (st.protect_restores > me.prot_frees + me.refused_frees)
		FAIL("%llu protections restored, of %llu areas freed after "
		     "vmap_vprotect (and %llu after a refused one)",
		     (ull)st.protect_restores, (ull)me.prot_frees,
		     (ull)me.refused_frees);
	expect(vmap_check(s.space), 0, "vmap_check", s.base);
}

/*
 * After a sync purge, or vmap_unmap_aliases, of ours: every page freed
 * since the last one was released -- not resident if freed locked, zero,
 * no guard, no file, no protection (see check_run_released).  Freed pieces
 * too after vmap_unmap_aliases (and once every block is gone): their pages
 * are plain space, and a stale write does not reach their file.  Live
 * pieces keep showing theirs.
 */
static bool released(uint64_t i, bool pieces)
{
	return page_state[i] == FREED ||
	       (pieces && page_state[i] == FREED_PIECE);
}

static void check_purged(bool pieces)
{
	/* Residency first, everywhere: reading one run could fault in a
	 * (huge) zero page over its neighbours. */
	for (uint64_t i = 0; i < s.npages; i++) {
		uint64_t j = i;

		if (!released(i, pieces) || !lock_freed[i])
			continue;
		while (j < s.npages && released(j, pieces) && lock_freed[j])
			j++;
		check_not_resident(s.base + i * ps, j - i,
				   "freed locked, then released");
		i = j - 1;
	}
	for (uint64_t i = 0; i < s.npages; i++) {
		uint64_t j = i;
		uint8_t state = page_state[i];

		if (!released(i, pieces))
			continue;
		while (j < s.npages && page_state[j] == state)
			j++;
		check_run_released(i, j, state == FREED_PIECE, true,
				   state == FREED ? "freed, then sync purged"
						  : "freed piece, after "
						    "vmap_unmap_aliases");
		i = j - 1;
	}
	if (pieces)
		for (size_t k = 0; k < me.nlive; k++)
			if (me.live[k].piece)
				check_contents(&me.live[k],
					       "after vmap_unmap_aliases, live");
	/* Blocks gone by now were released with the rest. */
	memset(block_seen, 0, sizeof(block_seen));
	if (!s.threaded) {
		struct vmap_stats st = stats();

		EQUAL(st.lazy_pages, 0);
		EQUAL(st.pool_pages, 0);
		/* Each protected area freed was made read-write again by
		 * the purge that released it: once.  One whose only
		 * vmap_vprotect was refused may count too: the library
		 * records the call even when mprotect() fails, in case it
		 * changed part of the area. */
		if (st.protect_restores < me.prot_frees ||
		    st.protect_restores > me.prot_frees + me.refused_frees)
			FAIL("%llu protections restored after a sync purge, "
			     "for %llu areas freed after vmap_vprotect (and "
			     "%llu after a refused one)",
			     (ull)st.protect_restores, (ull)me.prot_frees,
			     (ull)me.refused_frees);
		check_stats_alone();
	}
}

/* Any mode but TRY releases everything freed before it;
 * vmap_unmap_aliases also every freed piece. */
static void op_purge(struct draw *d)
{
	unsigned how = fuzz_op_purge(s.space, d);

	if (how != VMAP_PURGE_TRY)
		check_purged(how == 4);
}

static void op_look(struct draw *d)
{
	struct vmap_stats st;

	switch (draw(d, 3)) {
	case 0:
		if (me.nlive)
			check_contents(&me.live[draw(d, me.nlive)], "live");
		return;
	case 1:
		expect(vmap_check(s.space), 0, "vmap_check", s.base);
		return;
	default:
		if (!s.threaded) {
			check_stats_alone();
			return;
		}
		st = stats();
		if (st.free_pages > s.npages || st.lazy_pages > s.npages ||
		    st.busy_pages > s.npages || st.pool_pages > s.pool_max)
			FAIL("vmap_stats: free %llu lazy %llu busy %llu pool "
			     "%llu of %llu pages", (ull)st.free_pages,
			     (ull)st.lazy_pages, (ull)st.busy_pages,
			     (ull)st.pool_pages, (ull)s.npages);
	}
}

/* The CPUs to move between (fuzz_move_to). */
static cpu_set_t all_cpus;

static void op_vmap(struct draw *d)
{
	op_map(d, false);
}

static void op_map_ram(struct draw *d)
{
	op_map(d, true);
}

static void op_move(struct draw *d)
{
	fuzz_move_to(d, &all_cpus);
}

static void op_yield(struct draw *d)
{
	(void)d;
	sched_yield();	/* let the purger in */
}

/* ---- what a range holds: the test's knowledge, and vmap_walk's blocks ---- */

/*
 * What the test knows of each page, for vmap_alloc_at, vmap_reserve and
 * vmap_range_state: a class per page, or'ed over a range.
 *   C_BUSY     a live area's (guard included) or reservation's page, or in
 *              a vmap block: one with a live piece, or (alone) one
 *              vmap_walk lists -- with nothing else changing the space,
 *              its list of busy ranges is exact, and is checked against
 *              the test's areas (learn_blocks);
 *   C_MAYBE    in a block vmap_walk listed while the purger may free it;
 *   C_LAZY     freed since the space last purged (alone): lazy, or warm
 *              in the pool -- surely not free, surely not busy;
 *   C_UNKNOWN  freed, and a purge ran since: free, or still warm (a
 *              threshold purge leaves the pool alone), or the purger's;
 *              or in a vmap block that is gone (block_seen): lazy whole
 *              until a purge;
 *   C_FREE     never handed out, or freed and seen released since (the
 *              test's sync purges): free, in the tree or a node pool.
 */
enum { C_FREE = 1, C_UNKNOWN = 2, C_LAZY = 4, C_MAYBE = 8, C_BUSY = 16 };

struct walked {
	uint64_t n, blocks;
	struct vmap_walk_range r[MAX_LIVE + 1];
};

static int walk_one(void *arg, const struct vmap_walk_range *r)
{
	struct walked *w = arg;

	if (r->state != VMAP_RANGE_BUSY)
		FAIL("vmap_walk(BUSY) showed [%#llx, %#llx) in state %d, kind "
		     "%u", (ull)r->start, (ull)r->end, r->state, r->kind);
	if (r->start % ps || r->end % ps || r->start >= r->end ||
	    r->start < (uintptr_t)s.base || r->end > (uintptr_t)s.end)
		FAIL("vmap_walk: busy range [%#llx, %#llx) is not whole pages "
		     "of the space [%p, %p)", (ull)r->start, (ull)r->end,
		     (void *)s.base, (void *)s.end);
	if (r->kind == VMAP_KIND_BLOCK) {
		if (r->end - r->start != s.bp * ps ||
		    r->start % (s.bp * ps))
			FAIL("vmap_walk: block [%#llx, %#llx) is not %llu "
			     "pages aligned to its size", (ull)r->start,
			     (ull)r->end, (ull)s.bp);
		memset(in_block + (r->start - (uintptr_t)s.base) / ps,
		       s.threaded ? MAYBE_BLOCK : IN_BLOCK, s.bp);
		memset(block_seen + (r->start - (uintptr_t)s.base) / ps, true,
		       s.bp);
		w->blocks++;
		return 0;
	}
	if (r->kind != VMAP_KIND_AREA && r->kind != VMAP_KIND_RESERVED)
		FAIL("vmap_walk(BUSY) showed [%#llx, %#llx) of kind %u",
		     (ull)r->start, (ull)r->end, r->kind);
	if (w->n == MAX_LIVE + 1)
		FAIL("vmap_walk: more busy areas than the test's %zu",
		     me.nlive);
	w->r[w->n++] = *r;
	return 0;
}

/*
 * Where the vmap blocks are (in_block), from vmap_walk -- and, checked on
 * the way, that its busy areas and reservations are exactly the test's
 * (only this thread makes or frees them; the purger may free blocks, so
 * the blocks are counted only alone), and that each live piece is in a
 * block it lists.
 */
static void learn_blocks(void)
{
	static struct walked w;
	uint64_t areas = 0, block = s.bp * ps;
	int err;

	memset(in_block, NO_BLOCK, s.npages);
	w.n = w.blocks = 0;
	err = vmap_walk(s.space, (uintptr_t)s.base, (uintptr_t)s.end,
			VMAP_WALK_BUSY, walk_one, &w);
	if (err)
		FAIL("vmap_walk(BUSY) = %d (%s)", err, vmap_strerror(err));
	for (size_t i = 0; i < me.nlive; i++) {
		const struct area *a = &me.live[i];
		uint64_t k;

		if (a->piece) {
			k = index_of((const uint8_t *)((uintptr_t)a->p /
						       block * block));
			if (in_block[index_of(a->p)] == NO_BLOCK)
				FAIL("live %s piece #%llu at %p: vmap_walk "
				     "shows no block there", name_of(a),
				     (ull)a->id, (void *)a->p);
			memset(in_block + k, IN_BLOCK, s.bp);
			continue;
		}
		areas++;
		for (k = 0; k < w.n; k++)
			if (w.r[k].start == (uintptr_t)a->p)
				break;
		if (k == w.n)
			FAIL("live %s area #%llu at %p, %u pages: vmap_walk "
			     "does not show it", name_of(a), (ull)a->id,
			     (void *)a->p, a->pages);
		if (w.r[k].end != (uintptr_t)a->p + (uint64_t)a->own * ps ||
		    (w.r[k].kind == VMAP_KIND_RESERVED) !=
			    (a->kind == RESERVED))
			FAIL("live %s area #%llu at %p, %u pages (%u with its "
			     "guard): vmap_walk shows [%#llx, %#llx) of kind "
			     "%u", name_of(a), (ull)a->id, (void *)a->p,
			     a->pages, a->own, (ull)w.r[k].start,
			     (ull)w.r[k].end, w.r[k].kind);
	}
	if (w.n != areas)
		FAIL("vmap_walk shows %llu busy areas, the test has %llu",
		     (ull)w.n, (ull)areas);
	if (!s.threaded)
		EQUAL(w.blocks, stats().blocks);
}

/* The classes of pages [k, k + n) of the space, or'ed (learn_blocks
 * first). */
static unsigned classify(uint64_t k, uint64_t n)
{
	uint64_t epoch = purge_epoch();
	unsigned mask = 0;

	for (uint64_t end = k + n; k < end; k++) {
		if (page_state[k] == OWNED || in_block[k] == IN_BLOCK)
			mask |= C_BUSY;
		else if (in_block[k] == MAYBE_BLOCK)
			mask |= C_MAYBE;
		else if (page_state[k] == FREED && !s.threaded &&
			 freed_epoch[k] == epoch)
			mask |= C_LAZY;
		else if (page_state[k] != CLEAN || block_seen[k])
			mask |= C_UNKNOWN;
		else
			mask |= C_FREE;
	}
	return mask;
}

static const char *classes(unsigned mask)
{
	static char buf[64];

	snprintf(buf, sizeof(buf), "%s%s%s%s%s", mask & C_BUSY ? " busy" : "",
		 mask & C_MAYBE ? " maybe-block" : "",
		 mask & C_LAZY ? " lazy" : "",
		 mask & C_UNKNOWN ? " lazy-or-free" : "",
		 mask & C_FREE ? " free" : "");
	return buf;
}

/* What vmap_alloc_at or vmap_reserve may return for a range of these
 * classes: -EBUSY for a busy page; else with VMAP_AT_PURGE the range (the
 * purge frees what is lazy, and nothing else allocates); else -EAGAIN for a
 * lazy page, the range if all is free. */
static bool at_ok(unsigned mask, bool purge, int err)
{
	if (mask & C_BUSY)
		return err == -EBUSY;
	if (mask & C_MAYBE)
		return !err || err == -EBUSY || (!purge && err == -EAGAIN);
	if (purge)
		return !err;
	if (mask & C_LAZY)
		return err == -EAGAIN;
	if (mask & C_UNKNOWN)
		return !err || err == -EAGAIN;
	return !err;
}

/* And what vmap_range_state may say of it. */
static bool state_ok(unsigned mask, int state)
{
	if (mask & C_BUSY)
		return state == VMAP_RANGE_BUSY;
	if (mask & C_MAYBE)
		return true;
	if (mask & C_LAZY)
		return state == VMAP_RANGE_LAZY;
	if (mask & C_UNKNOWN)
		return state == VMAP_RANGE_FREE || state == VMAP_RANGE_LAZY;
	return state == VMAP_RANGE_FREE;
}

/* A first page for a range of n pages: at or next to a live area, past
 * its guard, at a freed address, at the end of the space, or anywhere. */
static uint64_t draw_where(struct draw *d, uint64_t n)
{
	const struct area *a = me.nlive ? &me.live[draw(d, me.nlive)] : NULL;
	uint64_t k;

	switch (draw(d, 6)) {
	case 0:
		k = (a ? index_of(a->p) : 0) + draw(d, 3);
		return k ? k - 1 : k;
	case 1:
		return a ? index_of(a->p) + a->own - draw(d, 2) : 0;
	case 2:
		return me.ngone ? index_of(me.gone[draw(d, me.ngone < MAX_GONE
							  ? me.ngone
							  : MAX_GONE)])
				: 0;
	case 3:
		return s.npages > n + 1 ? s.npages - n - draw(d, 2) : 0;
	default:
		return draw(d, s.npages);
	}
}

/* ---- vmap_vrealloc ---- */

#define MAX_VREALLOC 160 /* pages: past MAX_VMALLOC, and 16 (mremap) */


/*
 * Alone, after an in-place vmap_vrealloc: busy pages changed by busy, and
 * (if no purge ran, which would move the rest) lazy pages by lazy in
 * lazy_areas areas, free pages by free; nothing else.
 */
static void check_resized(const struct vmap_stats *before,
			  const struct vmap_stats *after, int64_t busy,
			  int64_t lazy, int64_t lazy_areas, int64_t free,
			  const char *what)
{
	SAME(allocs, 0);
	SAME(frees, 0);
	SAME(alloc_failures, 0);
	SAME(busy_areas, 0);
	SAME(busy_pages, busy);
	SAME(pool_hits, 0);
	SAME(blocks, 0);
	SAME(blocks_created, 0);
	SAME(release_errors, 0);
	SAME(quarantined_areas, 0);
	if (after->purges != before->purges ||
	    after->cached_decayed != before->cached_decayed)
		return;
	SAME(lazy_pages, lazy);
	SAME(lazy_areas, lazy_areas);
	SAME(free_pages, free);
	SAME(pool_areas, 0);
	SAME(pool_pages, 0);
}

/* Live area i out of the list, for what vmap_vrealloc makes of it. */
static struct area take_out(size_t i)
{
	struct area a = me.live[i];

	me.live[i] = me.live[--me.nlive];
	return a;
}

static bool at_block_start(const void *p)
{
	return (uintptr_t)p % (s.bp * ps) == 0;
}

/* The guard of a (guarded) area is where it should be: the page after its
 * usable pages faults. */
static void check_guard(const struct area *a, const char *when)
{
	if (a->guarded && readable_pages(a->p + (size_t)a->pages * ps, 1))
		FAIL("%s %s area #%llu at %p, %u pages: the page after it is "
		     "no guard", when, name_of(a), (ull)a->id, (void *)a->p,
		     a->pages);
}

/*
 * vmap_vrealloc of what it must refuse -- ptr p, the start of live area a
 * (NULL: no area starts there) -- to n pages (size bytes; n = 0: size 0,
 * which frees: -EPERM for a reservation, -ENOENT for what is no area):
 * NULL, the documented errno, nothing changed.
 */
static void vrealloc_refused(const struct area *a, uint8_t *p, uint32_t n,
			     size_t size)
{
	int want = !a || a->piece ? ENOENT : !n ? EPERM : EINVAL;
	struct vmap_stats before = { 0 }, after;
	size_t size_before = 0, size_after = 0;
	void *got;

	if (!s.threaded)
		before = stats();
	if (a && !a->piece)
		expect(vmap_vsize(s.space, p, &size_before), 0, "vmap_vsize",
		       p);
	errno = 0;
	got = vmap_vrealloc(s.space, p, size);
	if (got == NULL && errno == want)
		;
	else
		FAIL("vmap_vrealloc(%p, %zu) of %s%s%s: %p, %s; not NULL, %s",
		     (void *)p, size, a ? "live " : "what is no area",
		     a ? name_of(a) : "", a && a->vprot ? " (vprotected)" : "",
		     got, strerror(errno), strerror(want));
	if (!s.threaded) {
		after = stats();
		check_unchanged(&before, &after, 0, "a refused vmap_vrealloc");
	}
	if (!a)
		return;
	check_contents(a, "after a refused vmap_vrealloc of");
	check_guard(a, "after a refused vmap_vrealloc of");
	if (!a->piece) {
		expect(vmap_vsize(s.space, p, &size_after), 0, "vmap_vsize",
		       p);
		EQUAL(size_after, size_before);
	}
}

/*
 * vmap_vrealloc of live vmalloc area i to n > 0 pages (size bytes).  The
 * first min(old, n) pages keep their tags.  The same pointer: resized in
 * place -- a shrink's tail (its old guard with it) is freed, lazy, and its
 * new guard follows its new end; a grow took pages the test knew free (not
 * busy, not lazy) and they read zero.  Another pointer: moved -- only a
 * grow may move; a new area where vmap_vmalloc would put one (what is past
 * the old size reads as vmap_vmalloc's), and the old one freed: a later
 * vmap_vfree of it is -ENOENT.  Failure: only -ENOSPC, for a grow, and the
 * area as it was.
 */
static void vrealloc_resize(size_t i, uint32_t n, size_t size)
{
	struct area old = me.live[i], now, tmp;
	uint64_t k0 = index_of(old.p), epoch, extra = 0;
	struct vmap_stats before = { 0 }, after = { 0 };
	unsigned mask = 0;
	size_t got_size = 0;
	char what[160];
	uint8_t *p;

	snprintf(what, sizeof(what), "vmap_vrealloc of vmalloc area #%llu at "
		 "%p from %u to %u pages", (ull)old.id, (void *)old.p,
		 old.pages, n);
	check_contents(&old, "vmap_vrealloc'ing");
	if (n > old.pages && k0 + old.own < s.npages) {
		/* What an in-place grow would take: pages past the old end. */
		extra = n - old.pages;
		if (k0 + old.own + extra > s.npages)
			extra = s.npages - k0 - old.own;
		learn_blocks();
		mask = classify(k0 + old.own, extra);
	}
	epoch = purge_epoch();
	if (!s.threaded)
		before = stats();
	errno = 0;
	p = vmap_vrealloc(s.space, old.p, size);
	if (!p) {
		if (n <= old.pages)
			FAIL("%s: a shrink failed: %s", what, strerror(errno));
		failed(what, false);
		check_contents(&old, "after a failed vmap_vrealloc of");
		check_guard(&old, "after a failed vmap_vrealloc of");
		return;
	}
	take_out(i);
	now = old;
	now.pages = n;
	now.own = n + old.guarded;
	if (p != old.p) {
		/* Moved: only a grow may. */
		if (n <= old.pages)
			FAIL("%s: moved to %p on a shrink", what, (void *)p);
		now.p = p;
		if (p < old.p + (size_t)old.own * ps &&
		    old.p < p + (size_t)now.own * ps)
			FAIL("%s: moved to %p, overlapping the old area",
			     what, (void *)p);
	}
	check_place(&now);	/* apart from the others, guard after it */
	tmp = now;
	tmp.pages = n < old.pages ? n : old.pages;
	check_contents(&tmp, p == old.p ? "resized in place by vmap_vrealloc"
					: "moved by vmap_vrealloc");
	if (!s.threaded)
		after = stats();
	if (p != old.p) {
		/* New pages as vmap_vmalloc's, the old area freed. */
		check_warm_at(p, old.pages, n - old.pages, what);
		must_write(p + (size_t)old.pages * ps, n - old.pages, what);
		for (uint32_t k = 0; k < old.pages; k++)
			locked[index_of(p) + k] |= locked[k0 + k];
		mark(&now, OWNED);
		mark_freed(&old, epoch);
		me.gone[me.ngone++ % MAX_GONE] = old.p;
		me.allocs++;
		me.frees++;
		me.vmallocs++;
		me.guarded += now.guarded;
		expect(vmap_vfree(s.space, old.p), -ENOENT,
		       "vmap_vfree of an area vmap_vrealloc moved", old.p);
		if (s.strict)
			check_released(&old, "moved by vmap_vrealloc in a "
					     "strict space");
		expect(vmap_check(s.space), 0, "vmap_check after a moving "
		       "vmap_vrealloc", p);
	} else if (n > old.pages) {
		/* Grown in place: into pages that were free (the old guard
		 * page is plain memory now). */
		if (mask & (C_BUSY | C_LAZY))
			FAIL("%s: grown in place over pages that were%s",
			     what, classes(mask));
		check_zero(p + (size_t)old.pages * ps, n - old.pages, what);
		must_write(p + (size_t)old.pages * ps, n - old.pages, what);
		mark(&now, OWNED);
		if (!s.threaded)
			check_resized(&before, &after, n - old.pages, 0, 0,
				      -(int64_t)(n - old.pages), what);
	} else if (n < old.pages) {
		/* Shrunk: the tail, lazy (in a strict space, released). */
		mark_freed_part(&old, now.own, old.own, epoch);
		if (s.strict)
			check_run_released(k0 + now.own, k0 + old.own, false,
					   false, "the tail of a vmap_vrealloc "
						  "shrink, strict");
		if (!s.threaded)
			check_resized(&before, &after,
				      -(int64_t)(old.pages - n), old.pages - n,
				      1, 0, what);
	} else if (!s.threaded) {
		check_unchanged(&before, &after, 0, what);
	}
	stamp(&now);
	me.live[me.nlive++] = now;
	expect(vmap_vsize(s.space, now.p, &got_size), 0, "vmap_vsize", now.p);
	EQUAL(got_size, (uint64_t)n * ps);
}

/* A new size for an area of `pages`: smaller, the same, larger, much
 * larger, one that moves by mremap (16 pages and more), or 0. */
static uint32_t draw_new_pages(struct draw *d, uint32_t pages)
{
	uint32_t n;

	switch (draw(d, 8)) {
	case 0:
	case 1:
		n = pages > 1 ? 1 + (uint32_t)draw(d, pages - 1) : 1;
		break;
	case 2:
		n = pages;
		break;
	case 3:
	case 4:
		n = pages + 1 + (uint32_t)draw(d, 16);
		break;
	case 5:
		n = pages + 1 + (uint32_t)draw(d, MAX_VREALLOC);
		break;
	case 6:
		n = (pages > 16 ? pages : 16) + 1 + (uint32_t)draw(d, 48);
		break;
	default:
		return 0;
	}
	return n < MAX_VREALLOC ? n : MAX_VREALLOC;
}

/* Anything but the start of an area: inside one, a freed address, outside
 * the space, a stack address, a vmap block's start -- refused, -ENOENT. */
static void vrealloc_no_area(struct draw *d)
{
	const struct area *a = me.nlive ? &me.live[draw(d, me.nlive)] : NULL;
	uint32_t n = (uint32_t)draw(d, 33);
	uint8_t *p;
	int local;

	switch (draw(d, 4)) {
	case 0:
		if (!a || a->pages < 2)
			return;
		p = a->p + ps * (1 + draw(d, a->pages - 1));
		break;
	case 1:
		if (!me.ngone)
			return;
		p = me.gone[draw(d, me.ngone < MAX_GONE ? me.ngone : MAX_GONE)];
		if (live_at(p))
			return;
		break;
	case 2:
		p = draw(d, 2) ? s.base - ps : s.end + ps * draw(d, 4);
		break;
	default:
		p = (uint8_t *)&local;
		break;
	}
	vrealloc_refused(NULL, p, n, n * ps);
}

/* A size whose rounding (with a guard page) overflows: EINVAL, whatever
 * the area, and nothing changed. */
static void vrealloc_overflow(const struct area *a, size_t size)
{
	struct vmap_stats before = { 0 }, after;
	void *got;

	if (!s.threaded)
		before = stats();
	errno = 0;
	got = vmap_vrealloc(s.space, a->p, size);
	if (got || errno != EINVAL)
		FAIL("vmap_vrealloc(%p, %#zx) of live %s area #%llu: %p, %s; "
		     "not NULL, EINVAL", (void *)a->p, size, name_of(a),
		     (ull)a->id, got, strerror(errno));
	if (!s.threaded) {
		after = stats();
		check_unchanged(&before, &after, 0, "vmap_vrealloc, overflow");
	}
	check_contents(a, "after vmap_vrealloc with an overflowing size of");
	check_guard(a, "after vmap_vrealloc with an overflowing size of");
}

static void op_vrealloc(struct draw *d)
{
	struct area *a;
	uint32_t n;
	size_t i, size;

	if (!me.nlive || !draw(d, 16)) {
		/* NULL: vmap_vmalloc. */
		n = 1 + (uint32_t)draw(d, draw(d, 4) ? 16 : MAX_VMALLOC);
		size = n * ps - (draw(d, 4) ? 0 : draw(d, ps));
		if (me.nlive < MAX_LIVE)
			new_vmalloc_by(n, size, false, true);
		return;
	}
	if (!draw(d, 10)) {
		vrealloc_no_area(d);
		return;
	}
	i = draw(d, me.nlive);
	a = &me.live[i];
	if (!draw(d, 24)) {
		vrealloc_overflow(a, SIZE_MAX - draw(d, 2 * ps));
		return;
	}
	/* A piece's own block size, now and then: see vrealloc_refused. */
	n = a->piece && !draw(d, 4) ? (uint32_t)s.bp - s.guard
				    : draw_new_pages(d, a->pages);
	size = n ? n * ps - (draw(d, 4) ? 0 : draw(d, ps)) : 0;
	if (!n && !a->piece && a->kind != RESERVED)
		free_area(i, BY_VREALLOC);
	else if (a->kind != VMALLOC || a->vprot || !n)
		vrealloc_refused(a, a->p, n, size);
	else
		vrealloc_resize(i, n, size);
}

/* ---- fixed addresses, reservations, range states ---- */

/*
 * vmap_range_state of n pages from page k: what the test knows of them
 * (classify) allows it.  Or a bad call: -EINVAL, -ERANGE.
 */
static void range_state(uint64_t k, uint64_t n)
{
	uint64_t addr = (uintptr_t)s.base + k * ps;
	int state = -1, err;
	unsigned mask;

	if (k + n > s.npages) {
		expect(vmap_range_state(s.space, addr, n * ps, &state),
		       -ERANGE, "vmap_range_state past the end", s.end);
		return;
	}
	learn_blocks();
	mask = classify(k, n);
	err = vmap_range_state(s.space, addr, n * ps, &state);
	if (err || !state_ok(mask, state))
		FAIL("vmap_range_state(%p, %llu pages) = %d, state %d; the "
		     "pages were%s", (void *)(uintptr_t)addr, (ull)n, err,
		     state, classes(mask));
}

/*
 * vmap_alloc_at (or vmap_reserve) of n pages from page k, VMAP_AT_PURGE
 * sometimes: what classify knew of the range (with an alloc_at's guard)
 * allows the answer; a new area is exactly there (vmap_vsize), reads zero,
 * has its guard; a failure changed nothing but alloc_failures; no purge
 * ran without VMAP_AT_PURGE, and one that did released everything freed.
 */
static void at(uint64_t k, uint32_t n, bool reserve, unsigned flags)
{
	const char *call = reserve ? "vmap_reserve" : "vmap_alloc_at";
	uint64_t addr = (uintptr_t)s.base + k * ps, guard = !reserve && s.guard;
	struct area a = { .p = s.base + k * ps, .pages = n,
			  .own = n + (uint32_t)guard,
			  .kind = reserve ? RESERVED : VMALLOC,
			  .guarded = guard, .prot = PROT_READ | PROT_WRITE };
	struct vmap_stats before = { 0 }, after;
	bool purge = flags & VMAP_AT_PURGE;
	size_t size = 0;
	unsigned mask;
	int err;

	if (k + n + guard > s.npages) {
		expect(reserve ? vmap_reserve(s.space, addr, n * ps, flags)
			       : vmap_alloc_at(s.space, addr, n * ps, flags),
		       -ERANGE, call, (void *)(uintptr_t)addr);
		return;
	}
	learn_blocks();
	mask = classify(k, a.own);
	if (!s.threaded)
		before = stats();
	err = reserve ? vmap_reserve(s.space, addr, n * ps, flags)
		      : vmap_alloc_at(s.space, addr, n * ps, flags);
	if (!s.threaded)
		after = stats();
	if (!at_ok(mask, purge, err))
		FAIL("%s(%p, %u pages%s) = %d (%s); the pages (%u with the "
		     "guard) were%s", call, (void *)(uintptr_t)addr, n,
		     purge ? ", VMAP_AT_PURGE" : "", err, vmap_strerror(err),
		     a.own, classes(mask));
	if (!s.threaded && !(purge && !err) && after.purges != before.purges)
		FAIL("%s(%p, %u pages%s) = %d purged", call,
		     (void *)(uintptr_t)addr, n, purge ? ", VMAP_AT_PURGE" : "",
		     err);
	if (err) {
		me.failures++;
		if (!s.threaded)
			check_unchanged(&before, &after, 1, call);
		return;
	}
	a.id = ++me.next_id;
	expect(vmap_vsize(s.space, a.p, &size), 0, "vmap_vsize", a.p);
	EQUAL(size, (uint64_t)n * ps);
	check_new(&a, call, false);
	if (!s.threaded && after.purge_retries != before.purge_retries)
		check_purged(false);	/* as vmap_purge(SYNC) */
}

/* Bad calls of the three: -EINVAL or -ERANGE, nothing changed. */
static void at_bad(struct draw *d)
{
	uint64_t addr = (uintptr_t)s.base + ps * draw(d, s.npages);
	uint64_t size = ps * (1 + draw(d, 8));
	struct vmap_stats before = { 0 }, after;
	unsigned flags = 0;
	int want = -EINVAL, state = -1, err;

	switch (draw(d, 6)) {
	case 0:
		size = 0;
		break;
	case 1:
		addr += 1 + draw(d, ps - 1);
		break;
	case 2:
		size -= 1 + draw(d, ps - 1);
		break;
	case 3:
		flags = 1u << (1 + draw(d, 31));
		break;
	case 4:	/* past the end, or before the start */
		addr = draw(d, 2) ? (uintptr_t)s.end - size + ps
				  : (uintptr_t)s.base - ps;
		want = -ERANGE;
		break;
	default: /* past 2^64 */
		addr = UINT64_MAX - ps + 1;
		size = 2 * ps;
		break;
	}
	if (!s.threaded)
		before = stats();
	switch (draw(d, 3)) {
	case 0:
		err = vmap_alloc_at(s.space, addr, size, flags);
		break;
	case 1:
		err = vmap_reserve(s.space, addr, size, flags);
		break;
	default:
		if (flags)	/* no flags: a NULL state instead */
			err = vmap_range_state(s.space, addr, size, NULL),
			want = -EINVAL;
		else
			err = vmap_range_state(s.space, addr, size, &state);
		break;
	}
	if (err != want)
		FAIL("a bad fixed-address call (%#llx, %llu bytes, flags %#x) "
		     "returned %d (%s), not %d", (ull)addr, (ull)size, flags,
		     err, vmap_strerror(err), want);
	if (!s.threaded) {
		after = stats();
		check_unchanged(&before, &after, 0, "a bad fixed-address call");
	}
}

/*
 * A reservation's refusals: vmap_vfree, vmap_free, vmap_free_sized of it:
 * -EPERM; vmap_unreserve of an area that is no reservation: -EPERM; of
 * what is no area: -ENOENT (a vmap block's first piece: its block is an
 * area, -EPERM too).  Nothing changed.
 */
static void reserved_bad(struct draw *d)
{
	const struct area *a = me.nlive ? &me.live[draw(d, me.nlive)] : NULL;
	struct vmap_stats before = { 0 }, after;
	uint8_t *g;
	int err;

	if (!s.threaded)
		before = stats();
	if (a && a->kind == RESERVED) {
		switch (draw(d, 3)) {
		case 0:
			expect(vmap_vfree(s.space, a->p), -EPERM,
			       "vmap_vfree of a reservation", a->p);
			break;
		case 1:
			expect(vmap_free(s.space, (uintptr_t)a->p), -EPERM,
			       "vmap_free of a reservation", a->p);
			break;
		default:
			expect(vmap_free_sized(s.space, (uintptr_t)a->p,
					       (uint64_t)a->pages * ps -
						       draw(d, ps)),
			       -EPERM, "vmap_free_sized of a reservation",
			       a->p);
			break;
		}
	} else if (a && !a->piece) {
		expect(vmap_unreserve(s.space, (uintptr_t)a->p), -EPERM,
		       "vmap_unreserve of an area", a->p);
	} else if (a) {
		err = vmap_unreserve(s.space, (uintptr_t)a->p);
		if (err != -ENOENT &&
		    !(err == -EPERM && at_block_start(a->p)))
			FAIL("vmap_unreserve of a %s piece at %p = %d (%s)",
			     name_of(a), (void *)a->p, err, vmap_strerror(err));
	}
	switch (draw(d, 3)) {
	case 0:
		if (a && a->pages > 1)
			expect(vmap_unreserve(s.space, (uintptr_t)a->p + ps *
					      (1 + draw(d, a->pages - 1))),
			       -ENOENT, "vmap_unreserve inside an area", a->p);
		break;
	case 1:
		if (!me.ngone)
			break;
		g = me.gone[draw(d, me.ngone < MAX_GONE ? me.ngone : MAX_GONE)];
		if (!live_at(g) && !at_block_start(g))
			expect(vmap_unreserve(s.space, (uintptr_t)g), -ENOENT,
			       "vmap_unreserve of a freed area", g);
		break;
	default:
		g = draw(d, 2) ? s.end : s.base - ps;
		expect(vmap_unreserve(s.space, (uintptr_t)g), -ENOENT,
		       "vmap_unreserve outside the space", g);
		break;
	}
	if (!s.threaded) {
		after = stats();
		check_unchanged(&before, &after, 0,
				"a refused reservation call");
	}
	if (a)
		check_contents(a, "after a refused reservation call on");
}

/* vmap_alloc_at, vmap_reserve, vmap_range_state, or their bad calls; the
 * ranges mostly small, where the areas are. */
static void op_at(struct draw *d)
{
	uint32_t n = 1 + (uint32_t)draw(d, draw(d, 4) ? 8 : 64);
	unsigned what = (unsigned)draw(d, 8);
	unsigned flags = draw(d, 3) ? 0 : VMAP_AT_PURGE;
	uint64_t k = draw_where(d, n);

	if (what < 3 && me.nlive == MAX_LIVE)
		what = 4;
	switch (what) {
	case 0:
	case 1:
		at(k, n, false, flags);
		return;
	case 2:
		at(k, n, true, flags);
		return;
	case 3:
	case 4:
		range_state(k, n);
		return;
	case 5:
		at_bad(d);
		return;
	default:
		reserved_bad(d);
		return;
	}
}

/*
 * The queries: vmap_space_range is the reservation; vmap_owns is true for
 * every live area's first and last byte, false outside the space (a stack
 * address, the bytes around it) and for a NULL space; vmap_vsize is each
 * live area's size in pages (a piece: -ENOENT, as inside an area or at a
 * freed address); vmap_walk's busy ranges are the test's (learn_blocks).
 */
static void op_query(struct draw *d)
{
	uint64_t base = 0, len = 0;
	size_t size;
	int local;

	expect(vmap_space_range(s.space, &base, &len), 0, "vmap_space_range",
	       s.base);
	if (base != (uintptr_t)s.base || len != s.npages * ps)
		FAIL("vmap_space_range: [%#llx, +%llu), not [%p, %p)",
		     (ull)base, (ull)len, (void *)s.base, (void *)s.end);
	expect(vmap_space_range(s.space, NULL, &len), -EINVAL,
	       "vmap_space_range(NULL)", s.base);
	if (vmap_owns(s.space, &local) || vmap_owns(s.space, s.base - 1) ||
	    vmap_owns(s.space, s.end) || vmap_owns(NULL, s.base) ||
	    vmap_owns(s.space, NULL) || !vmap_owns(s.space, s.end - 1) ||
	    !vmap_owns(s.space, s.base))
		FAIL("vmap_owns: wrong at the space's edges [%p, %p), a stack "
		     "address %p, or NULL", (void *)s.base, (void *)s.end,
		     (void *)&local);
	for (size_t i = 0; i < me.nlive; i++) {
		const struct area *a = &me.live[i];
		uint8_t *last = a->p + (size_t)a->own * ps - 1;

		if (!vmap_owns(s.space, a->p) || !vmap_owns(s.space, last) ||
		    a->p < (uint8_t *)(uintptr_t)base ||
		    last >= (uint8_t *)(uintptr_t)(base + len))
			FAIL("live %s area #%llu at %p, %u pages, is not in "
			     "the space by vmap_owns or vmap_space_range",
			     name_of(a), (ull)a->id, (void *)a->p, a->own);
		size = 7;
		if (a->piece) {
			expect(vmap_vsize(s.space, a->p, &size), -ENOENT,
			       "vmap_vsize of a piece", a->p);
		} else {
			expect(vmap_vsize(s.space, a->p, &size), 0,
			       "vmap_vsize", a->p);
			if (size != (size_t)a->pages * ps)
				FAIL("vmap_vsize of live %s area #%llu at %p: "
				     "%zu bytes, not %u pages", name_of(a),
				     (ull)a->id, (void *)a->p, size, a->pages);
		}
		if (a->pages > 1 && draw(d, 2))
			expect(vmap_vsize(s.space, a->p + ps *
					  (1 + draw(d, a->pages - 1)), &size),
			       -ENOENT, "vmap_vsize inside an area", a->p);
		if (size != 7 && size != (size_t)a->pages * ps)
			FAIL("vmap_vsize wrote %zu on a failure", size);
	}
	if (me.ngone) {
		uint8_t *g = me.gone[draw(d, me.ngone < MAX_GONE ? me.ngone
								 : MAX_GONE)];

		if (!live_at(g))
			expect(vmap_vsize(s.space, g, &size), -ENOENT,
			       "vmap_vsize of a freed area", g);
	}
	expect(vmap_vsize(s.space, s.base, NULL), -EINVAL, "vmap_vsize(NULL)",
	       s.base);
	learn_blocks();
}

/*
 * One operation: a byte picks it.  Bytes up to 246 pick one of the first
 * 19 by their remainder, as a draw of 19 did (an input made before the
 * address calls runs as it did up to its first op byte of 247-255), with
 * these weights; 247-255 pick the address calls.
 */
static void op(struct draw *d)
{
	static void (*const ops[19])(struct draw *) = {
		op_vmalloc, op_vmalloc, op_vmalloc, op_vmap, op_vmap,
		op_map_ram, op_map_ram,			/* 0-6: allocate */
		op_free, op_free, op_free,		/* 7-9: free */
		op_purge, op_file, op_look, op_bad, op_move, op_yield,
		op_unmappable,	/* 16: fails, then allocates where it tried */
		op_protect, op_lock	/* 17-18: on a live area */
	};
	static void (*const more[9])(struct draw *) = {
		op_vrealloc, op_vrealloc, op_vrealloc, op_vrealloc,
		op_vrealloc,			/* 247-251: vmap_vrealloc */
		op_at, op_at, op_at,		/* 252-254: fixed address */
		op_query			/* 255: owns, vsize, walk */
	};
	unsigned k = (unsigned)draw(d, 256);

	if (k >= 19 * 13) {
		more[k - 19 * 13](d);
		return;
	}
	k %= 19;
	/* Full: free instead; nothing live: allocate instead. */
	if (k < 7 && me.nlive == MAX_LIVE)
		k = 7;
	else if (((k >= 7 && k < 10) || k >= 17) && !me.nlive)
		k = 0;
	ops[k](d);
}

/* ---- the second thread ---- */

/*
 * Purges in every mode, vmap_unmap_aliases and vmap_stats, in a loop: eager,
 * or paced by sleeps of up to 100 us.  A memory space's purge is system
 * calls and TLB shootdowns that stall this thread's page faults, so an eager
 * purger slows an input down several times over; paced, a purge still lands
 * between most of this thread's operations.
 */
static void *purger(void *arg)
{
	uint64_t rng = (uint64_t)(uintptr_t)arg;

	while (fuzz_thread_running(&purging)) {
		struct timespec nap = { 0, 0 };

		if (s.paced) {
			nap.tv_nsec = (long)(test_rand(&rng) % 100000);
			nanosleep(&nap, NULL);
		}
		fuzz_purge_step(s.space, &rng, s.npages);
	}
	return NULL;
}

/* ---- one input ---- */

/* The reservation's bounds: a new space is one free block, and vmap_dump
 * prints it ("0x...-0x... size free"). */
static void find_base(void)
{
	char *buf = NULL;
	size_t len = 0;
	ull lo = 0, hi = 0;
	FILE *f = open_memstream(&buf, &len);
	int err;

	if (!f)
		FAIL("open_memstream: %s", strerror(errno));
	err = vmap_dump(s.space, f);
	fclose(f);
	if (err || sscanf(buf, "0x%llx-0x%llx", &lo, &hi) != 2 ||
	    hi - lo != s.npages * ps || lo % ps)
		FAIL("vmap_dump() = %d of a new space of %llu pages: %s", err,
		     (ull)s.npages, buf ? buf : "");
	free(buf);
	s.base = (uint8_t *)(uintptr_t)lo;
	s.end = (uint8_t *)(uintptr_t)hi;
}

static void new_space(struct draw *d)
{
	static const unsigned bits[] = { VMAP_SPACE_STRICT, VMAP_SPACE_GUARD,
					 VMAP_SPACE_RELEASE_MADVISE,
					 VMAP_SPACE_NOPOOL };
	unsigned pick = (unsigned)draw(d, 16);
	struct vmap_config cfg;
	int err;

	memset(&s, 0, sizeof(s));
	/* No purger: a replay must do the same thing every time. */
	s.flags = VMAP_SPACE_MEMORY | VMAP_SPACE_NOPURGER;
	for (unsigned i = 0; i < 4; i++)
		if (pick & 1u << i)
			s.flags |= bits[i];
	s.strict = s.flags & VMAP_SPACE_STRICT;
	s.guard = s.flags & VMAP_SPACE_GUARD;
	/* Half the inputs alone; a quarter each with a paced or an eager
	 * purger. */
	switch (draw(d, 4)) {
	case 2: s.threaded = s.paced = true; break;
	case 3: s.threaded = true; break;
	default: break;
	}
	s.npages = MIN_SPACE_PAGES +
		   draw(d, MAX_SPACE_PAGES - MIN_SPACE_PAGES + 1);
	s.bp = 128ull << draw(d, 4);
	vmap_config_init(&cfg);
	cfg.flags = s.flags;
	cfg.page_size = ps;
	cfg.length = s.npages * ps;
	/* Now and then enough to purge hundreds of areas at once. */
	cfg.lazy_max_pages = 1 + draw(d, draw(d, 4) ? 512 : 4096);
	cfg.block_pages = s.bp;
	cfg.pool_max_pages = draw(d, 4) ? 1 + draw(d, 256) : 0;
	s.pool_max = s.strict || (s.flags & VMAP_SPACE_NOPOOL) ? 0
		     : cfg.pool_max_pages ? cfg.pool_max_pages
		     : VMAP_POOL_DEFAULT_BYTES / ps;
	if ((err = vmap_space_create(&cfg, &s.space)))
		FAIL("vmap_space_create(flags %#x, %llu pages) = %d", s.flags,
		     (ull)s.npages, err);
	find_base();
	memset(page_state, CLEAN, sizeof(page_state));
	memset(used, 0, sizeof(used));
	memset(locked, 0, sizeof(locked));
	memset(lock_freed, 0, sizeof(lock_freed));
	memset(prot_freed, 0, sizeof(prot_freed));
	memset(piece_file, 0, sizeof(piece_file));
	memset(freed_epoch, 0, sizeof(freed_epoch));
	memset(in_block, 0, sizeof(in_block));
	memset(block_seen, 0, sizeof(block_seen));
	memset(&me, 0, sizeof(me));
}

/* Each input starts from the same file: the pattern's generation 0. */
static void reset_file(void)
{
	for (uint64_t pg = 0; pg < FILE_PAGES; pg++)
		if (file_gen[pg]) {
			file_gen[pg] = 0;
			write_file_page(pg);
		}
}

/* Alone again: everything freed, one sync purge, and the space is as new;
 * every page this input used reads zero. */
static void check_end(void)
{
	struct vmap_stats st;

	check_stats_alone();
	while (me.nlive)
		free_area(me.nlive - 1, BY_OWN);
	expect(vmap_purge(s.space, VMAP_PURGE_SYNC), 0, "vmap_purge(SYNC)",
	       s.base);
	/* No block is left (below): every freed piece was released too. */
	check_purged(true);
	st = stats();
	EQUAL(st.lazy_pages, 0);
	EQUAL(st.pool_pages, 0);
	EQUAL(st.busy_pages, 0);
	EQUAL(st.blocks, 0);
	EQUAL(st.blocks_created, st.blocks_freed);
	EQUAL(st.free_pages, st.total_pages);
	EQUAL(st.free_blocks, 1);
	check_stats_alone();
	expect(vmap_check(s.space), 0, "vmap_check", s.base);
	for (uint64_t i = 0; i < s.npages; i++) {
		uint64_t j = i;

		if (!used[i])
			continue;
		while (j < s.npages && used[j])
			j++;
		check_zero(s.base + i * ps, j - i, "used, all freed, purged");
		i = j - 1;
	}
}

/* Open for the whole process, as the memfd: the same every input. */
static void unmappable_fds(void)
{
	int sv[2], pp[2], dir, proc;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
		FAIL("socketpair: %s", strerror(errno));
	if (pipe2(pp, O_CLOEXEC))
		FAIL("pipe2: %s", strerror(errno));
	if ((dir = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		FAIL("open /: %s", strerror(errno));
	if ((proc = open("/proc/self/status", O_RDONLY | O_CLOEXEC)) < 0)
		FAIL("open /proc/self/status: %s", strerror(errno));
	unmappable[0] = (struct unmappable){ sv[0], true, true, false,
					     "an AF_UNIX socket" };
	unmappable[1] = (struct unmappable){ pp[0], true, false, false,
					     "a pipe's read end" };
	unmappable[2] = (struct unmappable){ pp[1], false, true, false,
					     "a pipe's write end" };
	unmappable[3] = (struct unmappable){ dir, true, false, false,
					     "the directory /" };
	unmappable[4] = (struct unmappable){ proc, true, false, false,
					     "/proc/self/status" };
	unmappable[5] = (struct unmappable){ ro_fd, true, false, true,
					     "the read-only memfd" };
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	long sz = sysconf(_SC_PAGESIZE);
	char path[64];
	int err;

	(void)argc;
	(void)argv;
	if (sz < 4096 || sz > 65536)
		FAIL("page size %ld", sz);
	ps = (size_t)sz;
	if ((err = vmap_memfd_create("fuzz_memory", FILE_PAGES, &file_fd)))
		FAIL("vmap_memfd_create: %s", vmap_strerror(err));
	for (uint64_t pg = 0; pg < FILE_PAGES; pg++)
		write_file_page(pg);
	snprintf(path, sizeof(path), "/proc/self/fd/%d", file_fd);
	if ((ro_fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		FAIL("open %s: %s", path, strerror(errno));
	if (pipe2(probe_pipe, O_NONBLOCK | O_CLOEXEC))
		FAIL("pipe2: %s", strerror(errno));
	unmappable_fds();
	fuzz_all_cpus(&all_cpus);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct draw d;

	draw_feed(&d, data, size);
	reset_file();
	new_space(&d);
	if (s.threaded)
		fuzz_thread_start(&purging, purger, (void *)(uintptr_t)size);
	while (!draw_done(&d))
		op(&d);
	if (s.threaded)
		fuzz_thread_stop(&purging);
	fuzz_pin(&all_cpus);
	s.threaded = false;
	check_end();
	vmap_space_destroy(s.space);
	return 0;
}
