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
 *  - vmalloc memory reads entirely zero when handed out: never an earlier
 *    owner's data (each page of a live area carries its owner's tag in its
 *    first and last words) and never a file's (the memfd's pages are a
 *    nonzero pattern); the tags are intact just before the area is freed, so
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
 *  - alone (no second thread, or at the end): busy + lazy + free + pool
 *    pages make the whole space, busy pages are exactly the live areas with
 *    their guards plus the blocks, and the counters match what was done;
 *    after freeing everything and a sync purge, nothing is lazy, warm or
 *    busy, the space is one free block, vmap_check() passes, and every page
 *    this input ever used reads zero.
 * A failure prints what broke and aborts.  One memfd serves the whole
 * process (its pattern is restored at the start of each input); the space
 * is created and destroyed with each input.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE	/* pipe2, open_memstream */
#endif
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
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
#define MAX_VMALLOC 80		/* pages: both sides of VMAP_POOL_AREA_PAGES */
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

enum { VMALLOC, VMAP, RAM };
static const char *const kind_name[] = { "vmalloc", "vmap", "map_ram" };

struct area {
	uint8_t *p;
	uint32_t pages;		/* usable pages */
	uint32_t own;		/* pages it owns: + its guard, or a piece's
				   power of two */
	uint8_t kind;
	bool piece;		/* map_ram of up to RAM_MAX pages: a block's */
	bool guarded;
	int prot;
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
	must_read(a->p, a->pages, what);
	if (a->kind != VMALLOC) {
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

static void keep(struct area *a)
{
	check_place(a);
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

static void op_vmalloc(struct draw *d)
{
	/* Mostly small, as touching pages is most of an input's time. */
	uint32_t pages = 1 + (uint32_t)draw(d, draw(d, 4) ? 16 : MAX_VMALLOC);
	size_t size = pages * ps - (draw(d, 4) ? 0 : draw(d, ps));
	bool z = draw(d, 2);
	struct area a = { .pages = pages, .own = pages + s.guard,
			  .kind = VMALLOC, .guarded = s.guard,
			  .prot = PROT_READ | PROT_WRITE, .id = ++me.next_id };

	a.p = z ? vmap_vzalloc(s.space, size) : vmap_vmalloc(s.space, size);
	if (!a.p) {
		failed(z ? "vmap_vzalloc" : "vmap_vmalloc", false);
		return;
	}
	keep(&a);
	me.vmallocs++;
	check_zero(a.p, pages, z ? "vmap_vzalloc" : "vmap_vmalloc");
	stamp(&a);
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

/* vmap_vmap, or vmap_map_ram: of up to and past RAM_MAX pages. */
static void op_map(struct draw *d, bool ram)
{
	uint32_t n = 1 + (uint32_t)draw(d, draw(d, 4) ? 16 : MAX_N);
	bool ro = draw(d, 4) == 0;
	struct area a = { .pages = n, .kind = ram ? RAM : VMAP,
			  .id = ++me.next_id };
	const char *call = ram ? "vmap_map_ram" : "vmap_vmap";
	int fd = ro ? ro_fd : file_fd;
	uint64_t off[MAX_N];

	/* A piece takes a power of two of its block's pages; anything else
	 * is a tree area, with its guard. */
	a.piece = ram && n <= RAM_MAX;
	a.guarded = s.guard && !a.piece;
	a.own = a.piece ? pow2_up(n) : n + s.guard;
	a.prot = ram || draw(d, 3) ? PROT_READ | PROT_WRITE : PROT_READ;
	draw_offsets(d, a.pgoff, n);
	for (uint32_t i = 0; i < n; i++)
		off[i] = a.pgoff[i];
	a.p = ram ? vmap_map_ram(s.space, fd, off, n)
		  : vmap_vmap(s.space, fd, off, n, a.prot);
	if (ro && (a.prot & PROT_WRITE)) {
		/* The kernel refuses to map the read-only fd for writing:
		 * the allocation is undone (guard, piece and all). */
		if (a.p || (errno != EACCES && errno != ENOSPC))
			FAIL("%s of a read-only fd for writing gave %p: %s",
			     call, (void *)a.p, strerror(errno));
		me.failures++;
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

static void forget(size_t i)
{
	me.gone[me.ngone++ % MAX_GONE] = me.live[i].p;
	me.live[i] = me.live[--me.nlive];
	me.frees++;
}

/* A strict space released the area before the free returned. */
static void check_released(const struct area *a, const char *what)
{
	check_zero(a->p, a->own, what);
	for (uint64_t i = index_of(a->p); i < index_of(a->p) + a->own; i++)
		page_state[i] = CLEAN;
}

static void free_area(size_t i, bool other_call)
{
	struct area a = me.live[i];
	const char *call;
	int err;

	check_contents(&a, "freeing");
	if (a.guarded && readable_pages(a.p + (size_t)a.pages * ps, 1))
		FAIL("freeing %s area #%llu at %p, %u pages: its guard page is "
		     "gone", name_of(&a), (ull)a.id, (void *)a.p, a.pages);
	if (a.kind == RAM && (a.piece || !other_call)) {
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
	mark(&a, a.piece ? FREED_PIECE : FREED);
	forget(i);
	if (s.strict && !a.piece)
		check_released(&a, "freed in a strict space");
}

static void op_free(struct draw *d)
{
	free_area(draw(d, me.nlive), draw(d, 4) == 0);
}

/* ---- the file, through the mappings ---- */

static bool writable(const struct area *a)
{
	return a->kind != VMALLOC && (a->prot & PROT_WRITE);
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
		for (uint32_t i = 0; me.live[k].kind != VMALLOC &&
				     i < me.live[k].pages; i++)
			if (me.live[k].pgoff[i] == pg)
				check_file_page(me.live[k].p + i * ps, pg,
						"a mapping after pwrite");
}

/* ---- calls that must fail and change nothing ---- */

static bool live_at(const uint8_t *p)
{
	for (size_t i = 0; i < me.nlive; i++)
		if (me.live[i].p == p)
			return true;
	return false;
}

static void expect(int got, int want, const char *what, const void *p)
{
	if (got != want)
		FAIL("%s at %p returned %d (%s), not %d", what, p, got,
		     vmap_strerror(got), want);
}

static void op_bad(struct draw *d)
{
	const struct area *a = me.nlive ? &me.live[draw(d, me.nlive)] : NULL;
	uint64_t off = 0;
	uint8_t *g;

	switch (draw(d, 6)) {
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
	case 2:	/* a piece with a count of another order (at most RAM_MAX:
		 * more would look for a tree area), or a big map_ram area
		 * with another count */
		if (a && a->kind == RAM)
			expect(vmap_unmap_ram(s.space, a->p,
					      !a->piece ? a->pages + 1
					      : a->own == 1 ? 2 : a->own / 2),
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
	default: /* bad vmap arguments */
		errno = 0;
		if (vmap_vmap(s.space, draw(d, 2) ? -1 : file_fd, &off,
			      draw(d, 2), draw(d, 2) ? 0 : PROT_EXEC) ||
		    errno != EINVAL)
			FAIL("a bad vmap_vmap did not fail with EINVAL: %s",
			     strerror(errno));
		return;
	}
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

	EQUAL(st.busy_pages + st.lazy_pages + st.free_pages + st.pool_pages,
	      st.total_pages);
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
	EQUAL(st.release_errors, 0);
}

/* After a sync purge, or vmap_unmap_aliases, of ours: every page freed
 * since the last one was released -- reads zero, no guard, no file. */
static void check_purged(void)
{
	for (uint64_t i = 0; i < s.npages; i++) {
		uint64_t j = i;

		if (page_state[i] != FREED)
			continue;
		while (j < s.npages && page_state[j] == FREED)
			page_state[j++] = CLEAN;
		check_zero(s.base + i * ps, j - i, "freed, then sync purged");
		i = j - 1;
	}
	if (!s.threaded) {
		struct vmap_stats st = stats();

		EQUAL(st.lazy_pages, 0);
		EQUAL(st.pool_pages, 0);
		check_stats_alone();
	}
}

/* Any mode but TRY releases everything freed before it. */
static void op_purge(struct draw *d)
{
	if (fuzz_op_purge(s.space, d) != VMAP_PURGE_TRY)
		check_purged();
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

/* One operation: a draw of 16 picks it, with these weights. */
static void op(struct draw *d)
{
	static void (*const ops[16])(struct draw *) = {
		op_vmalloc, op_vmalloc, op_vmalloc, op_vmap, op_vmap,
		op_map_ram, op_map_ram,			/* 0-6: allocate */
		op_free, op_free, op_free,		/* 7-9: free */
		op_purge, op_file, op_look, op_bad, op_move, op_yield
	};
	unsigned k = (unsigned)draw(d, 16);

	/* Full: free instead; nothing live: allocate instead. */
	if (k < 7 && me.nlive == MAX_LIVE)
		k = 7;
	else if (k >= 7 && k < 10 && !me.nlive)
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
	s.flags = VMAP_SPACE_MEMORY;
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
		     : cfg.pool_max_pages ? cfg.pool_max_pages : 1024;
	if ((err = vmap_space_create(&cfg, &s.space)))
		FAIL("vmap_space_create(flags %#x, %llu pages) = %d", s.flags,
		     (ull)s.npages, err);
	find_base();
	memset(page_state, CLEAN, sizeof(page_state));
	memset(used, 0, sizeof(used));
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
		free_area(me.nlive - 1, false);
	expect(vmap_purge(s.space, VMAP_PURGE_SYNC), 0, "vmap_purge(SYNC)",
	       s.base);
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
