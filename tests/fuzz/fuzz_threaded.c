/* SPDX-License-Identifier: MIT */
/*
 * fuzz_threaded.c - operations decoded from a fuzz input run on this thread
 * while a second thread purges, in every mode, and calls
 * vmap_unmap_aliases, in a loop.  When its flushes land cannot be modelled,
 * so this target checks what must hold whatever the interleaving:
 *  - an area honours its request (in the space and the window, aligned,
 *    phase, boundary); a piece lies in the space and in one block;
 *  - no two live areas or pieces overlap;
 *  - no page is handed out again before a flush that covers it, begun after
 *    it was freed, has returned, nor while a flush of it runs;
 *  - a live area is never in a flush (a live piece may be: a block's dirty
 *    range is flushed whole); flush ranges are sorted, apart, in the space;
 *  - frees and bad frees return exactly what they must; allocations 0 or
 *    -ENOSPC; purges 0 (or -EBUSY for TRY);
 *  - at the end, alone: vmap_unmap_aliases has flushed everything freed,
 *    busy + lazy + free + pool pages make the whole space, the counters
 *    match what this thread did and saw, and vmap_check() passes; with all
 *    freed, the space is one free block again.
 * A failure prints what broke and aborts.  The first bytes make the space;
 * everything is freed with the space at the end of each input.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE	/* sched_setaffinity, CPU_* */
#endif
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>
#include <vmap.h>

#include "../draw.h"
#include "fuzz.h"

#define MAX_PAGES 4096
#define MAX_LIVE 256
#define MAX_GONE 16	/* freed addresses kept for double frees */
#define RAM_MAX VMAP_RAM_MAX_PAGES

typedef unsigned long long ull;

/*
 * Each page of the space, as this thread knows it: a state in the low bits,
 * and for FLUSHING the number of the flush (the n-th call of the callback)
 * in the others.
 *   FREE      not ours, no flush of it running: may be handed out
 *   AREA      a live area from the tree (big ram pieces too)
 *   PIECE     a live piece of a vmap block
 *   FREED     freed by us; no flush has covered it since
 *   FLUSHING  in the flush now running
 */
enum { FREE, AREA, PIECE, FREED, FLUSHING };
#define STATE(w) ((unsigned)((w) & 7))
#define FLUSH_NO(w) ((w) >> 3)

static const char *const state_name[] = {
	"free", "a live area", "a live piece", "freed, not flushed since",
	"being flushed"
};

static _Atomic uint64_t page[MAX_PAGES];
static _Atomic uint64_t flushes, ranges_flushed;	/* callback calls */
static struct fuzz_thread purging;

/* The space, as the first bytes made it. */
static struct {
	vmap_space *space;
	uint64_t base, end, ps, npages, bp;
} s;

struct live {
	uint64_t addr, bytes;	/* bytes: owned, whole pages */
	uint64_t req;		/* ram: the size asked for */
	int kind;		/* AREA or PIECE; ram: big areas too */
	bool ram;
};

/* What this thread holds and did. */
static struct {
	struct live live[MAX_LIVE];
	size_t nlive;
	struct live gone[MAX_GONE];
	unsigned ngone;
	uint64_t allocs, frees, enospc, area_frees;
} me;

static uint64_t page_of(uint64_t addr)
{
	return (addr - s.base) / s.ps;
}

/* ---- the flush callback (any thread) ---- */

static void check_ranges(const struct vmap_range *r, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (r[i].start >= r[i].end || (r[i].start | r[i].end) % s.ps ||
		    r[i].start < s.base || r[i].end > s.end ||
		    (i && r[i - 1].end >= r[i].start))
			FAIL("flush range %zu of %zu, [%#llx, %#llx), is empty, "
			     "unaligned, outside [%#llx, %#llx) or not after "
			     "the one before", i, n, (ull)r[i].start,
			     (ull)r[i].end, (ull)s.base, (ull)s.end);
}

/* Entering flush no: its pages are being flushed, but live pieces, which
 * stay live. */
static void mark_flushing(uint64_t p, uint64_t no)
{
	uint64_t w = atomic_load(&page[p]);

	for (;;) {
		if (STATE(w) == AREA || STATE(w) == FLUSHING)
			FAIL("flush %llu covers page %#llx, %s", (ull)no,
			     (ull)(s.base + p * s.ps), state_name[STATE(w)]);
		if (STATE(w) == PIECE ||
		    atomic_compare_exchange_weak(&page[p], &w,
						 no << 3 | FLUSHING))
			return;
	}
}

/* Leaving flush no: its pages may be handed out again -- those still
 * marked by it; a piece handed out meanwhile, maybe freed since, is not. */
static void end_flushing(uint64_t p, uint64_t no)
{
	uint64_t w = no << 3 | FLUSHING;

	atomic_compare_exchange_strong(&page[p], &w, FREE);
}

static void for_pages(const struct vmap_range *r, size_t n, uint64_t no,
		      void (*fn)(uint64_t, uint64_t))
{
	for (size_t i = 0; i < n; i++)
		for (uint64_t p = page_of(r[i].start); p < page_of(r[i].end);
		     p++)
			fn(p, no);
}

static void flush_cb(void *ctx, const struct vmap_range *r, size_t n)
{
	uint64_t no = atomic_fetch_add(&flushes, 1) + 1;

	(void)ctx;
	check_ranges(r, n);
	for_pages(r, n, no, mark_flushing);
	/* Now and then take a while, like a TLB shootdown, so that this
	 * thread's allocations run during a flush. */
	if (no % 4 == 0)
		sched_yield();
	for_pages(r, n, no, end_flushing);
	atomic_fetch_add(&ranges_flushed, n);
}

/* ---- the purging thread ---- */

static void *purger(void *arg)
{
	uint64_t rng = (uint64_t)(uintptr_t)arg;

	while (fuzz_thread_running(&purging))
		fuzz_purge_step(s.space, &rng, s.npages);
	return NULL;
}

/* ---- this thread's pages ---- */

/*
 * Take page p for what an allocation returned, or say what it was (in *w).
 * A page being flushed cannot be taken -- but for a piece, by a flush that
 * began after the allocation was asked for (`by` flushes had begun then):
 * vmap_unmap_aliases flushes a block's dirty range whole, with the live
 * pieces inside, and may have collected it after this piece was carved.
 */
static bool take(uint64_t p, int kind, uint64_t by, uint64_t *w)
{
	*w = atomic_load(&page[p]);
	while (STATE(*w) == FREE ||
	       (STATE(*w) == FLUSHING && kind == PIECE && FLUSH_NO(*w) > by))
		if (atomic_compare_exchange_weak(&page[p], w, (uint64_t)kind))
			return true;
	return false;
}

static void claim(uint64_t addr, uint64_t bytes, int kind, uint64_t by)
{
	uint64_t w;

	for (uint64_t p = page_of(addr); p < page_of(addr + bytes); p++)
		if (!take(p, kind, by, &w))
			FAIL("[%#llx, %#llx) handed out as %s, but page %#llx "
			     "is %s", (ull)addr, (ull)(addr + bytes),
			     state_name[kind], (ull)(s.base + p * s.ps),
			     state_name[STATE(w)]);
}

/* Give the pages up before the free: from then on a purge may flush them
 * (the flusher never changes a live page, so a plain exchange does). */
static void release(const struct live *l)
{
	for (uint64_t p = page_of(l->addr); p < page_of(l->addr + l->bytes);
	     p++) {
		uint64_t w = atomic_exchange(&page[p], (uint64_t)FREED);

		if (w != (uint64_t)l->kind)
			FAIL("freeing [%#llx, %#llx): page %#llx was %s",
			     (ull)l->addr, (ull)(l->addr + l->bytes),
			     (ull)(s.base + p * s.ps), state_name[STATE(w)]);
	}
}

static void keep(struct live l)
{
	me.live[me.nlive++] = l;
	me.allocs++;
}

static void expect(int got, int want, const char *what, uint64_t addr)
{
	if (got != want)
		FAIL("%s at %#llx returned %d (%s), not %d", what, (ull)addr,
		     got, vmap_strerror(got), want);
}

/* ---- operations ---- */

static uint64_t log2_up(uint64_t x)
{
	return x <= 1 ? 0 : 64 - (uint64_t)__builtin_clzll(x - 1);
}

static uint64_t pow2_up(uint64_t pages)
{
	return 1ull << log2_up(pages);
}

/* A valid request: a few pages mostly, sometimes more than fit; maybe
 * aligned, in a window of the space, with a phase and a boundary. */
static void op_alloc(struct draw *d, bool x)
{
	uint64_t pages = 1 + draw(d, draw(d, 4) ? 16 : s.npages + 8);
	uint64_t size = pages * s.ps, align = 0, phase = 0, nocross = 0;
	uint64_t vstart = 0, vend = UINT64_MAX, a = 0, al;
	unsigned flags = 0;
	int err;

	if (draw(d, 3) == 0)
		align = s.ps << draw(d, 8);
	if (draw(d, 4) == 0) {
		uint64_t lo = draw(d, s.npages);

		vstart = s.base + lo * s.ps;
		vend = s.base + (lo + 1 + draw(d, s.npages - lo)) * s.ps;
	}
	al = align ? align : s.ps;
	if (x) {
		phase = draw(d, al / s.ps) * s.ps;
		if (draw(d, 2))	/* a power of two, at least size */
			nocross = (1ull << log2_up(size)) << draw(d, 3);
		flags = (unsigned)draw(d, 4);	/* TOPDOWN, NOPURGE */
		err = vmap_xalloc(s.space, size, align, phase, nocross, vstart,
				  vend, flags, &a);
	} else {
		err = vmap_alloc(s.space, size - draw(d, s.ps), align, vstart,
				 vend, &a);
	}
	if (err == -ENOSPC) {
		me.enospc++;
		return;
	}
	expect(err, 0, x ? "vmap_xalloc" : "vmap_alloc", a);
	if (a < s.base || a < vstart || a + size > s.end || a + size > vend ||
	    (a - phase) % al ||
	    (nocross && a / nocross != (a + size - 1) / nocross))
		FAIL("[%#llx, %#llx) breaks its request: align %#llx phase "
		     "%#llx nocross %#llx window [%#llx, %#llx)", (ull)a,
		     (ull)(a + size), (ull)align, (ull)phase, (ull)nocross,
		     (ull)vstart, (ull)vend);
	claim(a, size, AREA, 0);
	keep((struct live){ a, size, 0, AREA, false });
}

/* 1..64 pages, 2^order of them ours; now and then more, from the tree. */
static void op_ram_alloc(struct draw *d)
{
	uint64_t pages = 1 + draw(d, draw(d, 8) ? 8 : RAM_MAX);
	bool big = draw(d, 16) == 0;
	uint64_t size, own, block = s.bp * s.ps, a = 0, by;
	int err;

	if (big)
		pages = RAM_MAX + 1 + draw(d, 64);
	size = pages * s.ps - draw(d, s.ps);
	own = (big ? pages : pow2_up(pages)) * s.ps;
	by = atomic_load(&flushes);
	err = vmap_ram_alloc(s.space, size, &a);
	if (err == -ENOSPC) {
		me.enospc++;
		return;
	}
	expect(err, 0, "vmap_ram_alloc", a);
	if (a < s.base || a + own > s.end || a % s.ps ||
	    (!big && a / block != (a + own - 1) / block))
		FAIL("piece [%#llx, %#llx) outside the space or across blocks",
		     (ull)a, (ull)(a + own));
	/* A piece at a block's start came with a new block, in this call:
	 * no flush can have a dirty range over it. */
	claim(a, own, big ? AREA : PIECE, big || a % block == 0 ? UINT64_MAX
							     : by);
	keep((struct live){ a, own, size, big ? AREA : PIECE, true });
}

static void forget(size_t i)
{
	me.gone[me.ngone++ % MAX_GONE] = me.live[i];
	me.live[i] = me.live[--me.nlive];
	me.frees++;
}

/* A live area or piece: with vmap_free, or vmap_ram_free with the size
 * asked for or another of the same pages. */
static void op_free(struct draw *d)
{
	size_t i = draw(d, me.nlive);
	const struct live *l = &me.live[i];
	uint64_t req = l->req, pages = (l->req + s.ps - 1) / s.ps;
	int err;

	release(l);
	if (l->ram && l->kind == PIECE && draw(d, 4) == 0)
		req = pages * s.ps - draw(d, s.ps); /* the same pages */
	if (!l->ram || (l->kind == AREA && draw(d, 4) == 0))
		err = vmap_free(s.space, l->addr);
	else
		err = vmap_ram_free(s.space, l->addr, req);
	expect(err, 0, "free", l->addr);
	if (l->kind == AREA)
		me.area_frees++;
	forget(i);
}

static bool live_at(uint64_t addr)
{
	for (size_t i = 0; i < me.nlive; i++)
		if (me.live[i].addr == addr)
			return true;
	return false;
}

/* Frees that must fail, and change nothing, whatever the purger does. */
static void op_bad_free(struct draw *d)
{
	const struct live *l = me.nlive ? &me.live[draw(d, me.nlive)] : NULL;
	const struct live *g;
	uint64_t pages;

	switch (draw(d, 4)) {
	case 0:	/* inside a live area or piece: no area starts there */
		if (!l || l->bytes <= 1)
			return;
		expect(vmap_free(s.space, l->addr + 1 + draw(d, l->bytes - 1)),
		       -ENOENT, "vmap_free inside", l->addr);
		return;
	case 1:	/* vmap_free knows no piece; vmap_ram_free no area */
		if (!l || l->kind == AREA)
			return;
		expect(vmap_free(s.space, l->addr), -ENOENT, "vmap_free of a "
		       "piece", l->addr);
		return;
	case 2:	/* a piece with a count of another order */
		if (!l || l->kind != PIECE)
			return;
		pages = l->bytes / s.ps;
		expect(vmap_ram_free(s.space, l->addr,
				     (pages == 1 ? 2 : pages / 2) * s.ps),
		       -EINVAL, "vmap_ram_free, wrong count", l->addr);
		return;
	default: /* freed before, and not ours again since */
		if (!me.ngone)
			return;
		g = &me.gone[draw(d, me.ngone < MAX_GONE ? me.ngone
							 : MAX_GONE)];
		if (live_at(g->addr))
			return;
		expect(g->ram && g->kind == PIECE
			       ? vmap_ram_free(s.space, g->addr, g->req)
			       : vmap_free(s.space, g->addr),
		       -ENOENT, "double free", g->addr);
		return;
	}
}

/* The CPUs to move between (fuzz_move_to). */
static cpu_set_t all_cpus;

static void op(struct draw *d)
{
	unsigned kind = (unsigned)draw(d, 16);

	if (kind < 8 && me.nlive == MAX_LIVE)
		kind = 8;	/* full: free instead */
	if (kind >= 8 && kind < 11 && !me.nlive)
		kind = 0;	/* empty: allocate instead */
	switch (kind) {
	case 0: case 1: op_alloc(d, false); break;
	case 2: case 3: op_alloc(d, true); break;
	case 4: case 5: case 6: case 7: op_ram_alloc(d); break;
	case 8: case 9: case 10: op_free(d); break;
	case 11: op_bad_free(d); break;
	case 12: fuzz_op_purge(s.space, d); break;
	case 13: expect(vmap_check(s.space), 0, "vmap_check", s.base); break;
	case 14: fuzz_move_to(d, &all_cpus); break;
	default: sched_yield(); break;	/* let the purger in */
	}
}

/* ---- one input ---- */

static void new_space(struct draw *d)
{
	struct vmap_config cfg;
	int err;

	s.ps = 512ull << draw(d, 8);
	s.npages = 64 + draw(d, MAX_PAGES - 63);
	s.bp = 128ull << draw(d, 4);
	switch (draw(d, 4)) {
	case 0: s.base = 0; break;
	case 1: s.base = 0x10000000; break;
	case 2: s.base = draw(d, 1ull << 36) * s.ps; break;
	default: s.base = -s.ps * (s.npages + 1); break;	/* the top */
	}
	s.end = s.base + s.npages * s.ps;
	vmap_config_init(&cfg);
	cfg.base = s.base;
	cfg.length = s.npages * s.ps;
	cfg.page_size = s.ps;
	cfg.lazy_max_pages = 1 + draw(d, 512);
	cfg.flags = draw(d, 8) == 0 ? VMAP_SPACE_STRICT : 0;
	cfg.block_pages = s.bp;
	cfg.flush = flush_cb;
	if ((err = vmap_space_create(&cfg, &s.space)))
		FAIL("vmap_space_create() = %d", err);
	for (uint64_t p = 0; p < s.npages; p++)
		atomic_store(&page[p], FREE);
	atomic_store(&flushes, 0);
	atomic_store(&ranges_flushed, 0);
	memset(&me, 0, sizeof(me));
}

static struct vmap_stats stats(void)
{
	struct vmap_stats st = { .size = sizeof(st) };
	int err = vmap_stats(s.space, &st);

	expect(err, 0, "vmap_stats", s.base);
	return st;
}

/* Alone now: one vmap_unmap_aliases flushes every page ever freed. */
static void check_quiet(void)
{
	struct vmap_stats st;
	uint64_t areas = 0;

	expect(vmap_unmap_aliases(s.space), 0, "vmap_unmap_aliases", s.base);
	for (uint64_t p = 0; p < s.npages; p++) {
		unsigned state = STATE(atomic_load(&page[p]));

		if (state == FREED || state == FLUSHING)
			FAIL("page %#llx %s after vmap_unmap_aliases",
			     (ull)(s.base + p * s.ps), state_name[state]);
	}
	for (size_t i = 0; i < me.nlive; i++)
		areas += me.live[i].kind == AREA;
	st = stats();
	EQUAL(st.lazy_pages, 0);
	EQUAL(st.busy_pages + st.lazy_pages + st.free_pages + st.pool_pages,
	      st.total_pages);
	EQUAL(st.busy_areas, areas + st.blocks);
	EQUAL(st.allocs, me.allocs);
	EQUAL(st.frees, me.frees);
	EQUAL(st.alloc_failures, me.enospc);
	EQUAL(st.flushes, atomic_load(&flushes));
	EQUAL(st.ranges_flushed, atomic_load(&ranges_flushed));
	expect(vmap_check(s.space), 0, "vmap_check", s.base);
}

/* With everything freed, every block is all dirty or fragmented: the
 * space is one free block again. */
static void check_empty(void)
{
	struct vmap_stats st;

	while (me.nlive) {
		const struct live *l = &me.live[me.nlive - 1];

		release(l);
		expect(l->ram ? vmap_ram_free(s.space, l->addr, l->req)
			      : vmap_free(s.space, l->addr),
		       0, "free", l->addr);
		me.area_frees += l->kind == AREA;
		forget(me.nlive - 1);
	}
	expect(vmap_unmap_aliases(s.space), 0, "vmap_unmap_aliases", s.base);
	for (uint64_t p = 0; p < s.npages; p++)
		if (STATE(atomic_load(&page[p])) != FREE)
			FAIL("page %#llx still %s with nothing live",
			     (ull)(s.base + p * s.ps),
			     state_name[STATE(atomic_load(&page[p]))]);
	st = stats();
	EQUAL(st.busy_pages, 0);
	EQUAL(st.blocks, 0);
	EQUAL(st.blocks_created, st.blocks_freed);
	EQUAL(st.free_pages, s.npages);
	EQUAL(st.free_blocks, 1);
	EQUAL(st.areas_purged, me.area_frees + st.blocks_freed);
	expect(vmap_check(s.space), 0, "vmap_check", s.base);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_all_cpus(&all_cpus);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct draw d;

	draw_feed(&d, data, size);
	new_space(&d);
	fuzz_thread_start(&purging, purger, (void *)(uintptr_t)size);
	while (!draw_done(&d))
		op(&d);
	fuzz_thread_stop(&purging);
	fuzz_pin(&all_cpus);
	check_quiet();
	check_empty();
	vmap_space_destroy(s.space);
	return 0;
}
