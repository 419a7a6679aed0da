/* SPDX-License-Identifier: MIT */
/*
 * model.c - vmap against a reference model too simple to be wrong: one state
 * byte per page and a brute-force search of every candidate address.
 *
 * Random operations run on small range spaces (256..4096 pages, so that the
 * model can afford O(pages) per step).  After every one, the return value, the
 * address, the flushed ranges, the counters of vmap_stats() and vmap_check()
 * must agree with the model.  The first disagreement prints where the choices
 * came from (a seed, or a fuzz input), the operation and its index, and
 * stops.  The choices -- spaces, operations, arguments -- are drawn from a
 * PRNG (model_test.c) or from a fuzz input's bytes (fuzz/fuzz_model.c); see
 * model.h.
 *
 * Most spaces also serve the vm_map_ram family: pieces of 2^order pages
 * bumped out of vmap blocks of 128 or 256 pages, dirty once freed, each block
 * retired as one lazy area when all dirty or, fragmented, by a sync purge, an
 * allocation miss or vmap_unmap_aliases, which also flushes the blocks' dirty
 * ranges.  The thread is pinned to one CPU, so the library uses one block
 * queue and the model one free list.
 *
 * In the pictures, A and B are busy areas, + lazy pages and . free pages;
 * in a block, p is a live piece, d dirty and _ never handed out.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE	/* sched_getcpu, sched_setaffinity */
#endif
#include <errno.h>
#include <sched.h>
#include <stdarg.h>
#include <stdbool.h>
#include <string.h>
#include <vmap.h>

#include "draw.h"
#include "model.h"
#include "test.h"

#ifndef VMAP_XALLOC_NOPURGE
#define VMAP_XALLOC_NOPURGE 0	/* a header from before the flag */
#endif

#define MAX_PAGES 4096
#define MAX_BP 256	/* the largest block_pages the ram spaces use */
#define MAX_BLOCKS (MAX_PAGES / 128)
#define RAM_MAX VMAP_RAM_MAX_PAGES


#define FT_MISSES 16	/* "more than 16" misses: see vmap_alloc */
#define SENTINEL 0x5e5e5e5e5e5e5e5eull /* an out-parameter not written */

typedef unsigned long long ull;

enum { FREE, BUSY, LAZY, BLK };	/* BLK: a live vmap block's page */
enum { OP_ALLOC, OP_XALLOC, OP_BAD_ARGS, OP_FREE, OP_BAD_FREE, OP_PURGE,
       OP_RAM_ALLOC, OP_RAM_FREE, OP_BAD_RAM };
static const char *const op_name[] = { "alloc", "xalloc", "bad xalloc",
				       "free", "bad free", "purge",
				       "ram alloc", "ram free", "bad ram op" };

struct op {
	int kind, variant;
	uint64_t size, align, phase, nocross, vstart, vend, addr;
	unsigned flags, how;
};

/* A request as the header defines it: size in whole pages, align at least
 * a page, [lo, hi) the window clipped to the space's whole pages. */
struct fit {
	uint64_t size, align, phase, nocross, lo, hi;
	bool topdown, nopurge;
};

/*
 * A vmap block: pieces [0, bp - free) handed out, by a bump; map[off] is
 * the piece's pages where a live piece starts (its slot: 2^order pages).  [dmin, dmax) is the dirty range not
 * yet flushed, empty when dmin >= dmax:
 *   pppddpp_____  free 5, dirty 2, dirty range [3, 5)
 */
struct mblock {
	bool live;
	uint32_t page;			/* first page */
	uint32_t free, dirty, dmin, dmax;
	uint8_t map[MAX_BP];
};

struct piece {
	uint64_t addr, size;		/* size: the bytes asked for */
};

static struct model {
	uint64_t base, end, ps, npages, lazy_max;
	uint64_t cap, purge_rate;	/* most busy pages; purges per 1000 */
	bool small, strict;		/* 1- or 2-page areas; STRICT space */
	bool ram;			/* vm_map_ram ops in this space */
	bool ram_full;			/* the last ram alloc found no room */
	uint64_t bp;			/* block_pages in force */
	uint8_t state[MAX_PAGES];
	uint32_t len_at[MAX_PAGES];	/* pages of the area starting here */
	uint32_t busy[MAX_PAGES];	/* first pages of the busy areas */
	size_t nbusy;			/* ... not counting blocks */
	struct mblock blk[MAX_BLOCKS];	/* slots; live ones are blocks */
	uint32_t fl[MAX_BLOCKS];	/* the free list: slots, head first */
	size_t nfl, nblk;
	struct piece pc[MAX_PAGES];	/* live pieces */
	size_t npc;
	struct piece gone[64];		/* freed pieces, for double frees */
	unsigned ngone;
	size_t nexp;
	struct vmap_range exp[MAX_PAGES]; /* what the last purge flushed */
	struct vmap_stats st;		/* what vmap_stats() must say */
} m;

/* What the flush callback saw: never more than one call per operation. */
static struct {
	uint64_t calls;
	size_t n;
	struct vmap_range r[MAX_PAGES];
	const char *bad;
} flog;

static vmap_space *space;
static struct draw src;		/* where the choices come from */
static uint64_t seed;		/* ... a PRNG's seed */
static bool fuzzing;		/* ... or a fuzz input */
static size_t fed;		/* of this many bytes */
static uint64_t op_index;
static struct op cur;

static uint64_t rnd(uint64_t n)
{
	return draw(&src, n);
}

static bool chance(unsigned pct)
{
	return rnd(100) < pct;
}

/* Say where it went wrong and stop: exit for a test run, abort for a fuzz
 * input, which is how libFuzzer knows to keep it. */
static void fail(int line, const char *fmt, ...)
{
	va_list ap;

	if (fuzzing)
		fprintf(stderr, "model.c:%d: fuzz input of %zu bytes, ", line,
			fed);
	else
		fprintf(stderr, "model.c:%d: seed %#llx, ", line, (ull)seed);
	fprintf(stderr, "op %llu (%s): size %#llx "
		"align %#llx phase %#llx nocross %#llx window [%#llx, %#llx) "
		"flags %#x addr %#llx how %#x variant %d; space [%#llx, %#llx) "
		"page %#llx lazy_max %llu strict %d block_pages %llu:\n  ",
		(ull)op_index, op_name[cur.kind], (ull)cur.size,
		(ull)cur.align, (ull)cur.phase, (ull)cur.nocross,
		(ull)cur.vstart, (ull)cur.vend, cur.flags, (ull)cur.addr,
		cur.how, cur.variant, (ull)m.base, (ull)m.end, (ull)m.ps,
		(ull)m.lazy_max, m.strict, (ull)m.bp);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	if (fuzzing)
		abort();
	exit(1);
}

#define EXPECT(cond, ...)                                                   \
	do {                                                                \
		test_checks++;                                              \
		if (!(cond))                                                \
			fail(__LINE__, __VA_ARGS__);                        \
	} while (0)

/* Check what the header promises of every flush as it happens; the exact
 * ranges are compared with the model's after the operation. */
static void flush_cb(void *ctx, const struct vmap_range *r, size_t n)
{
	(void)ctx;
	flog.calls++;
	flog.n = n;
	for (size_t i = 0; i < n && !flog.bad; i++) {
		if (n > (m.npages + 1) / 2)
			flog.bad = "more ranges than can be apart";
		else if (r[i].start >= r[i].end ||
			 (r[i].start | r[i].end) % m.ps)
			flog.bad = "an empty or unaligned range";
		else if (r[i].start < m.base || r[i].end > m.end)
			flog.bad = "a range outside the space";
		else if (i && r[i - 1].end >= r[i].start)
			flog.bad = "ranges unsorted, overlapping or touching";
		else
			flog.r[i] = r[i];
	}
}

/* ---- the model ---- */

static uint64_t addr_of(uint64_t page)
{
	return m.base + page * m.ps;
}

/*
 * Every lazy page becomes free in one flush, of the maximal runs of lazy
 * pages (touching lazy areas coalesce; lazy and free pages do not):
 *   AA++++..++BB+  ->  flush [2,6) [8,10) [12,13)
 * With `aliases` (vmap_unmap_aliases), the dirty range of every live block
 * joins the flush, and coalesces with what it touches, and is forgotten;
 * it stays in its block, and is no lazy area:
 *   ++[ppddpdp___][dd_______]  ->  flush [0,8) [12,14)
 */
static void model_purge(bool force, bool aliases)
{
	static bool flush[MAX_PAGES];
	bool in_run = false;
	uint64_t dirty = 0;

	memset(flush, 0, m.npages);
	for (size_t k = 0; aliases && k < MAX_BLOCKS; k++) {
		struct mblock *b = &m.blk[k];

		if (!b->live || b->dmin >= b->dmax)
			continue;
		memset(&flush[b->page + b->dmin], 1, b->dmax - b->dmin);
		b->dmin = (uint32_t)m.bp;
		b->dmax = 0;
		dirty++;
	}
	if (!m.st.lazy_areas && !dirty && !force)
		return;
	m.nexp = 0;
	for (uint64_t p = 0; p < m.npages; p++) {
		bool f = flush[p] || m.state[p] == LAZY;

		if (f && !in_run)
			m.exp[m.nexp++].start = addr_of(p);
		if ((in_run = f))
			m.exp[m.nexp - 1].end = addr_of(p + 1);
		if (m.state[p] == LAZY) {
			m.state[p] = FREE;
			m.len_at[p] = 0;
		}
	}
	m.st.purges++;
	m.st.flushes++;
	m.st.ranges_flushed += m.nexp;
	m.st.areas_purged += m.st.lazy_areas;
	if (m.st.lazy_areas > m.st.purge_max_areas)
		m.st.purge_max_areas = m.st.lazy_areas;
	m.st.lazy_areas = m.st.lazy_pages = 0;
}

/* The area [p, p + pages) goes onto the lazy list. */
static void make_lazy(uint64_t p, uint64_t pages)
{
	memset(&m.state[p], LAZY, pages);
	m.st.busy_areas--;
	m.st.busy_pages -= pages;
	m.st.lazy_pages += pages;
	m.st.lazy_areas++;
}

/* A free that pushes onto the lazy list purges (TRY, never contended here)
 * past the threshold, and at every free in a STRICT space (SYNC: but a
 * plain purge, not a sync_purge of fragmented blocks). */
static void after_lazy_free(void)
{
	if (m.strict || m.st.lazy_pages > m.lazy_max)
		model_purge(false, false);
}

/* ---- vmap blocks ---- */

static void fl_remove(size_t k)
{
	for (size_t i = 0; i < m.nfl; i++)
		if (m.fl[i] == k) {
			memmove(&m.fl[i], &m.fl[i + 1],
				(m.nfl - i - 1) * sizeof(m.fl[0]));
			m.nfl--;
			return;
		}
}

/* The live block whose first byte is start; -1 if none. */
static int block_starting(uint64_t start)
{
	for (int k = 0; k < MAX_BLOCKS; k++)
		if (m.blk[k].live && addr_of(m.blk[k].page) == start)
			return k;
	return -1;
}

/* The live block holding addr: a block is aligned to its size, so it
 * starts at addr rounded down to that; -1 if none. */
static int block_of(uint64_t addr)
{
	return block_starting(addr & ~(m.bp * m.ps - 1));
}

/* All dirty, or fragmented: the whole block goes lazy, as one area. */
static void retire(size_t k, bool may_purge)
{
	struct mblock *b = &m.blk[k];

	b->live = false;
	fl_remove(k);
	m.nblk--;
	m.st.blocks_freed++;
	make_lazy(b->page, m.bp);
	if (may_purge)
		after_lazy_free();
}

/* Nothing live, not all dirty: free + dirty == block_pages, and only
 * blocks with free pages are on the free list:  dd__d__ddd____ */
static void purge_fragmented(void)
{
	uint32_t list[MAX_BLOCKS];
	size_t n = m.nfl;

	memcpy(list, m.fl, n * sizeof(list[0]));
	for (size_t i = 0; i < n; i++) {
		struct mblock *b = &m.blk[list[i]];

		if (b->free + b->dirty == m.bp && b->dirty != m.bp)
			retire(list[i], false);
	}
}

/* vmap_purge: SYNC and FORCE_FLUSH free fragmented blocks first. */
static void model_vmap_purge(unsigned how)
{
	if (how & (VMAP_PURGE_SYNC | VMAP_PURGE_FORCE_FLUSH))
		purge_fragmented();
	model_purge(how & VMAP_PURGE_FORCE_FLUSH, false);
}

static void model_unmap_aliases(void)
{
	purge_fragmented();
	model_purge(true, true);
}

/* The -EINVAL rules of vmap_xalloc, straight from the header. */
static int model_args(const struct op *o, struct fit *f)
{
	uint64_t pmask = m.ps - 1, lo, hi;

	if (!o->size || o->size > UINT64_MAX - pmask ||
	    (o->align & (o->align - 1)) || o->vstart >= o->vend ||
	    (o->flags & ~VMAP_XALLOC_FLAGS_KNOWN))
		return -EINVAL;
	f->size = (o->size + pmask) & ~pmask;
	f->align = o->align < m.ps ? m.ps : o->align;
	if (o->phase % m.ps || o->phase >= f->align)
		return -EINVAL;
	if (o->nocross && ((o->nocross & (o->nocross - 1)) ||
			   o->nocross < m.ps || o->nocross < f->size))
		return -EINVAL;
	lo = o->vstart > m.base ? o->vstart : m.base;
	hi = o->vend < m.end ? o->vend : m.end;
	/* Rounding up overflows only if lo >= hi, which is -EINVAL anyway. */
	f->lo = (lo + pmask) & ~pmask;
	f->hi = hi & ~pmask;
	if (lo >= hi || f->lo >= f->hi)
		return -EINVAL;
	f->phase = o->phase;
	f->nocross = o->nocross;
	f->topdown = o->flags & VMAP_XALLOC_TOPDOWN;
	f->nopurge = o->flags & VMAP_XALLOC_NOPURGE;
	return 0;
}

/* The lowest (highest) page of free block [s, e) that holds the area. */
static bool block_fit(const struct fit *f, uint64_t s, uint64_t e,
		      uint64_t *page)
{
	uint64_t lo = (f->lo - m.base) / m.ps, hi = (f->hi - m.base) / m.ps;
	uint64_t pages = f->size / m.ps;

	lo = lo > s ? lo : s;
	hi = hi < e ? hi : e;
	for (uint64_t i = 0; hi >= lo + pages && i <= hi - lo - pages; i++) {
		uint64_t p = f->topdown ? hi - pages - i : lo + i;
		uint64_t a = addr_of(p);

		if ((a - f->phase) % f->align == 0 &&
		    (!f->nocross ||
		     a / f->nocross == (a + f->size - 1) / f->nocross)) {
			*page = p;
			return true;
		}
	}
	return false;
}

/*
 * Placement as the header has it: the lowest (highest) fit, unless the
 * search, going through the free blocks in address order (reversed), meets
 * more than FT_MISSES blocks at least as long as the area, in the window,
 * that cannot hold it.  Then the lowest (highest) block of at least size +
 * 2 * align + nocross that holds it, and failing that, the lowest fit again.
 * Lazy pages are not free: in "AA++..B" 3 pages fit only after a purge.
 */
static bool model_find(const struct fit *f, uint64_t *page)
{
	static uint32_t bs[MAX_PAGES], be[MAX_PAGES];	/* free blocks */
	uint64_t lo = (f->lo - m.base) / m.ps, hi = (f->hi - m.base) / m.ps;
	uint64_t pages = f->size / m.ps, nb = 0, misses = 0, k, j, big;

	for (uint64_t p = 0; p < m.npages; p++) {
		if (m.state[p] == FREE && (!p || m.state[p - 1] != FREE))
			bs[nb++] = (uint32_t)p;
		if (m.state[p] == FREE)
			be[nb - 1] = (uint32_t)p + 1;
	}
	for (k = 0; k < nb && misses <= FT_MISSES; k++) {
		j = f->topdown ? nb - 1 - k : k;
		if (be[j] - bs[j] < pages || be[j] <= lo || bs[j] >= hi)
			continue;
		if (block_fit(f, bs[j], be[j], page))
			return true;
		misses++;
	}
	if (misses <= FT_MISSES)
		return false;
	/* size + 2 * align + nocross, saturating: no block is that long */
	big = f->align > (UINT64_MAX - f->size) / 2 ? UINT64_MAX
						     : f->size + 2 * f->align;
	big = big > UINT64_MAX - f->nocross ? UINT64_MAX : big + f->nocross;
	for (int pass = 0; pass < 2; pass++)
		for (k = 0; k < nb; k++) {
			j = f->topdown ? nb - 1 - k : k;
			if ((pass || (be[j] - bs[j]) * m.ps >= big) &&
			    block_fit(f, bs[j], be[j], page))
				return true;
		}
	return false;
}

/*
 * The tree's search, and on a miss, where that can help -- something is
 * lazy or a block is live (it may be fragmented), and the window, were it all
 * free, could hold the area with its alignment, phase and boundary; never
 * with NOPURGE -- a sync purge (fragmented blocks first) and one more search.
 */
static bool model_place(const struct fit *f, uint64_t *p)
{
	bool retry;

	if (model_find(f, p))
		return true;
	retry = !f->nopurge && (m.st.lazy_pages || m.nblk) &&
		block_fit(f, 0, m.st.total_pages, &(uint64_t){ 0 });
	if (!retry)
		return false;
	m.st.purge_retries++;
	purge_fragmented();
	model_purge(false, false);
	return model_find(f, p);
}

static int model_alloc(const struct op *o, uint64_t *addr)
{
	struct fit f;
	uint64_t p;
	int err = model_args(o, &f);

	if (err)
		return err;
	if (!model_place(&f, &p)) {
		m.st.alloc_failures++;
		return -ENOSPC;
	}
	m.len_at[p] = f.size / m.ps;
	memset(&m.state[p], BUSY, m.len_at[p]);
	m.busy[m.nbusy++] = p;
	m.st.busy_areas++;
	m.st.busy_pages += m.len_at[p];
	m.st.allocs++;
	*addr = addr_of(p);
	return 0;
}

/* The busy (tree) area starting at addr, as an index of m.busy; -1 if none. */
static long busy_at(uint64_t addr)
{
	uint64_t p = (addr - m.base) / m.ps;

	if (addr < m.base || addr >= m.end || (addr - m.base) % m.ps ||
	    m.state[p] != BUSY || !m.len_at[p])
		return -1;
	for (size_t i = 0;; i++)
		if (m.busy[i] == p)
			return (long)i;
}

static void free_busy(long i)
{
	uint64_t p = m.busy[i];

	m.busy[i] = m.busy[--m.nbusy];
	make_lazy(p, m.len_at[p]);
	m.st.frees++;
	after_lazy_free();
}

/* vmap_free: blocks and pieces are not the caller's: -ENOENT. */
static int model_free(uint64_t addr)
{
	long i = busy_at(addr);

	if (i < 0)
		return -ENOENT;
	free_busy(i);
	return 0;
}

/* Bytes to pages, 0 for 0 bytes or a size whose rounding overflows. */
static uint64_t to_pages(uint64_t size)
{
	if (!size || size > UINT64_MAX - (m.ps - 1))
		return 0;
	return (size + m.ps - 1) / m.ps;
}

static unsigned order_of(uint64_t pages)
{
	unsigned order = 0;

	while ((1ull << order) < pages)
		order++;
	return order;
}

/*
 * vmap_ram_alloc.  Up to RAM_MAX pages: 2^order pages bumped from the first
 * block of the free list with that many never handed out, or else from
 * offset 0 of a new block, placed by the tree as a block-aligned area and
 * appended to the free list:
 *   free list [ppdp__][pp____]: 2 pages -> [ppdppp][pp____], off the list;
 *                                4 pages -> [ppdp__][pppppp]
 * Above RAM_MAX, an area from the tree, as vmap_alloc(size, 0, 0, max).
 */
static int model_ram_alloc(uint64_t size, uint64_t *addr)
{
	uint64_t pages = to_pages(size), p;
	unsigned order, n;
	struct fit f = { 0 };
	struct mblock *b;
	size_t k;

	if (!pages)
		return -EINVAL;
	if (pages > RAM_MAX) {
		struct op o = { .size = size, .vend = UINT64_MAX };

		return model_alloc(&o, addr);
	}
	order = order_of(pages);
	n = 1u << order;
	for (size_t i = 0; i < m.nfl; i++) {
		uint32_t off;

		b = &m.blk[m.fl[i]];
		if (b->free < n)
			continue;
		off = (uint32_t)m.bp - b->free;
		b->free -= n;
		b->map[off] = (uint8_t)pages;
		if (!b->free)
			fl_remove(m.fl[i]);
		m.st.allocs++;
		*addr = addr_of(b->page + off);
		return 0;
	}
	f.size = f.align = m.bp * m.ps;
	f.lo = m.base;
	f.hi = m.end;
	if (!model_place(&f, &p)) {
		m.st.alloc_failures++;
		return -ENOSPC;
	}
	for (k = 0; m.blk[k].live; k++)
		;
	b = &m.blk[k];
	memset(b, 0, sizeof(*b));
	b->live = true;
	b->page = (uint32_t)p;
	b->free = (uint32_t)m.bp - n;
	b->dmin = (uint32_t)m.bp;
	b->map[0] = (uint8_t)pages;
	m.fl[m.nfl++] = (uint32_t)k;
	m.nblk++;
	memset(&m.state[p], BLK, m.bp);
	m.len_at[p] = (uint32_t)m.bp;
	m.st.busy_areas++;
	m.st.busy_pages += m.bp;
	m.st.blocks_created++;
	m.st.allocs++;
	*addr = addr_of(p);
	return 0;
}

/*
 * vmap_ram_free, as the library decides it:
 *  - above RAM_MAX pages, vm_free of the busy area there, which must be
 *    that long (-EINVAL if it is not, be it a block, or if a live piece
 *    starts there; -ENOENT for a block of that length, or nothing there);
 *  - else the live block holding addr, a live piece starting at addr
 *    (-ENOENT if either is missing, -EINVAL if a tree area starts there),
 *    of that many pages (else -EINVAL, even
 *    for a count that takes the same slot, as 4 for 3): it turns
 *    dirty, and the block retires when all of it is:
 *      [ppdpd] free the 2nd p -> [ppddd]... [ddddd] -> +++++ (lazy)
 */
static int model_ram_free(uint64_t addr, uint64_t size)
{
	uint64_t pages = to_pages(size), off;
	unsigned order, n;
	struct mblock *b;
	long i;
	int k;

	if (!pages)
		return -EINVAL;
	if (pages > RAM_MAX) {
		if ((i = busy_at(addr)) >= 0) {
			if (m.len_at[m.busy[i]] != pages)
				return -EINVAL;
			free_busy(i);
			return 0;
		}
		/* A live piece there: the wrong count, not a missing
		 * area; so is a block's length that is not the count. */
		if ((k = block_of(addr)) >= 0 && addr % m.ps == 0 &&
		    m.blk[k].map[(addr - addr_of(m.blk[k].page)) / m.ps])
			return -EINVAL;
		if (block_starting(addr) >= 0 && pages != m.bp)
			return -EINVAL;
		return -ENOENT;
	}
	if ((k = block_of(addr)) < 0 || addr % m.ps)
		/* A tree area there: the wrong count. */
		return busy_at(addr) >= 0 ? -EINVAL : -ENOENT;
	b = &m.blk[k];
	order = order_of(pages);
	n = 1u << order;
	off = (addr - addr_of(b->page)) / m.ps;
	if (!b->map[off])
		return -ENOENT;
	if (b->map[off] != pages) /* the exact count, not the slot */
		return -EINVAL;
	b->map[off] = 0;
	for (size_t j = 0;; j++)
		if (m.pc[j].addr == addr) {
			m.gone[m.ngone++ % 64] = m.pc[j];
			m.pc[j] = m.pc[--m.npc];
			break;
		}
	m.st.frees++;
	b->dirty += n;
	if (off < b->dmin)
		b->dmin = (uint32_t)off;
	if (off + n > b->dmax)
		b->dmax = (uint32_t)(off + n);
	if (b->dirty == m.bp)
		retire((size_t)k, true);
	return 0;
}

/* ---- comparing ---- */

#define STATS(X)                                                            \
	X(total_pages) X(busy_areas) X(busy_pages) X(free_pages)            \
	X(free_blocks) X(largest_free_pages) X(lazy_areas) X(lazy_pages)    \
	X(lazy_max_pages) X(allocs) X(frees) X(alloc_failures)              \
	X(purge_retries) X(purges) X(flushes) X(ranges_flushed)             \
	X(areas_purged) X(purge_max_areas) X(release_path)                  \
	X(release_syscalls) X(release_errors) X(block_pages) X(blocks)      \
	X(block_free_pages) X(block_dirty_pages) X(blocks_created)          \
	X(blocks_freed)
#define COMPARE(f)                                                          \
	EXPECT(st.f == m.st.f, "stats." #f " = %llu, model %llu",           \
	       (ull)st.f, (ull)m.st.f);

static void check_state(uint64_t flushes_before)
{
	struct vmap_stats st = { .size = sizeof(st) };
	uint64_t run = 0;
	int err;

	EXPECT(!flog.bad, "flush callback got %s", flog.bad);
	EXPECT(flog.calls == m.st.flushes, "%llu flushes, model %llu",
	       (ull)flog.calls, (ull)m.st.flushes);
	if (m.st.flushes != flushes_before) {
		EXPECT(flog.n == m.nexp, "flushed %zu ranges, model %zu",
		       flog.n, m.nexp);
		for (size_t i = 0; i < m.nexp; i++)
			EXPECT(!memcmp(&flog.r[i], &m.exp[i], sizeof(m.exp[i])),
			       "flushed [%#llx, %#llx), model [%#llx, %#llx)",
			       (ull)flog.r[i].start, (ull)flog.r[i].end,
			       (ull)m.exp[i].start, (ull)m.exp[i].end);
	}
	err = vmap_check(space);
	EXPECT(err == 0, "vmap_check() = %d", err);
	/* Free blocks are the maximal free runs: "..AA...+.." has 3. */
	m.st.free_pages = m.st.free_blocks = m.st.largest_free_pages = 0;
	for (uint64_t p = 0; p < m.npages; p++) {
		run = m.state[p] == FREE ? run + 1 : 0;
		m.st.free_pages += run > 0;
		m.st.free_blocks += run == 1;
		if (run > m.st.largest_free_pages)
			m.st.largest_free_pages = run;
	}
	m.st.blocks = m.nblk;
	m.st.block_free_pages = m.st.block_dirty_pages = 0;
	for (size_t k = 0; k < MAX_BLOCKS; k++)
		if (m.blk[k].live) {
			m.st.block_free_pages += m.blk[k].free;
			m.st.block_dirty_pages += m.blk[k].dirty;
		}
	err = vmap_stats(space, &st);
	EXPECT(err == 0, "vmap_stats() = %d", err);
	STATS(COMPARE)
}

/* ---- generating operations ---- */

static uint64_t log2_up(uint64_t x)
{
	return x <= 1 ? 0 : 64 - __builtin_clzll(x - 1);
}

/* A valid request, or one whose window holds no page: mostly ordinary. */
static void gen_alloc(struct op *o, bool x)
{
	uint64_t a = rnd(m.npages), b = a + rnd(m.npages - a), al;

	o->size = (1 + rnd(m.small ? 2 : chance(80) ? 16 : 64)) * m.ps;
	if (chance(20))
		o->size -= rnd(m.ps);	/* rounds up to the same pages */
	else if (!m.small && chance(2))
		o->size = (m.npages + 1 + rnd(m.npages)) * m.ps;
	if (m.small)	/* mostly nothing to fail on: the lazy list grows */
		o->align = chance(95) ? 1ull << rnd(log2_up(m.ps) + 1)
				      : m.ps << (4 + rnd(4)); /* many misses */
	else if (chance(50))	/* below the page size means the page size */
		o->align = 1ull << rnd(log2_up(m.ps) + 7);
	else if (chance(2))	/* only base 0 or a lucky base has room */
		o->align = 1ull << (40 + rnd(24));
	o->vstart = 0;
	o->vend = UINT64_MAX;
	if (!m.small && chance(30)) {	/* maybe unaligned or partly out */
		o->vstart = addr_of(a) + (chance(30) ? rnd(m.ps) : 0);
		o->vend = addr_of(b + 1) - (chance(30) ? rnd(m.ps) : 0);
		if (chance(20))
			o->vstart = rnd(m.base + 1);
		if (chance(20))
			o->vend = m.end + rnd(UINT64_MAX - m.end) + 1;
	}
	if (!x)
		return;
	al = o->align < m.ps ? m.ps : o->align;
	if (chance(50))
		o->phase = rnd(al / m.ps) * m.ps;
	if (chance(40)) {
		uint64_t k = log2_up(o->size) + rnd(3);

		o->nocross = k < 64 ? 1ull << k : 0;	/* 0: too big */
		if (o->nocross && o->nocross < m.ps)
			o->nocross = m.ps;
	}
	o->flags = (chance(50) ? VMAP_XALLOC_TOPDOWN : 0) |
		   (chance(15) ? VMAP_XALLOC_NOPURGE : 0);
}

/* Spoil one argument of a valid xalloc: it must be -EINVAL. */
static void spoil(struct op *o)
{
	uint64_t p = addr_of(rnd(m.npages - 1));
	uint64_t al = o->align < m.ps ? m.ps : o->align;

	switch (o->variant = (int)rnd(12)) {
	case 0: o->size = 0; break;
	case 1: o->size = UINT64_MAX - rnd(m.ps - 1); break;
	case 2: o->align = 3ull << rnd(62); break;
	case 3: o->phase += 1 + rnd(m.ps - 1); break;
	case 4: o->phase = al + rnd(4) * m.ps; break;
	case 5: o->nocross = 3ull << rnd(62); break;
	case 6: o->nocross = m.ps >> (1 + rnd(3)); break;
	case 7: o->size = (2 + rnd(30)) * m.ps, o->nocross = m.ps; break;
	case 8: o->flags |= 0x80000000u >> rnd(16); break; /* unknown */
	case 9: o->vstart = rnd(UINT64_MAX), o->vend = rnd(o->vstart + 1);
		break;
	case 10: /* wholly outside: [0, base) or [end, UINT64_MAX) */
		if (m.base && chance(50))
			o->vstart = 0, o->vend = m.base - rnd(m.base);
		else
			o->vstart = m.end + rnd(m.ps), o->vend = UINT64_MAX;
		break;
	default: /* inside, but no whole page: |..[.|..)| */
		o->vstart = p + 1 + rnd(m.ps - 1);
		o->vend = o->vstart + 1 + rnd(p + 2 * m.ps - 1 - o->vstart);
		break;
	}
}

/* An address vmap_free must refuse with -ENOENT, changing nothing. */
static uint64_t gen_bad_free(struct op *o)
{
	uint64_t p = rnd(m.npages), q;
	const struct mblock *b;

	switch (o->variant = (int)rnd(m.ram ? 6 : 4)) {
	case 0: /* inside a busy area: AA[A]A */
		if (!m.nbusy)
			break;
		q = m.busy[rnd(m.nbusy)];
		return addr_of(q) + 1 + rnd(m.len_at[q] * m.ps - 1);
	case 1: /* a lazy area's start: a double free */
	case 2: /* a page never allocated, or already back */
		for (q = 0; q < m.npages; q++, p = (p + 1) % m.npages)
			if (o->variant == 1 ? m.state[p] == LAZY && m.len_at[p]
					    : m.state[p] == FREE)
				return addr_of(p);
		break;
	case 4: /* a block's start: busy, but not the caller's */
		for (q = 0; q < MAX_BLOCKS; q++)
			if ((b = &m.blk[(p + q) % MAX_BLOCKS])->live)
				return addr_of(b->page);
		break;
	case 5: /* a live piece */
		if (m.npc)
			return m.pc[rnd(m.npc)].addr;
		break;
	}
	return chance(50) ? m.end + rnd(-m.end) : rnd(m.base + 1) - 1;
}

/* ---- the vm_map_ram family ---- */

/* 1..RAM_MAX pages, mostly few, sometimes bytes that round up to them;
 * now and then more than RAM_MAX, for the tree, even more than fit. */
static uint64_t gen_ram_size(void)
{
	uint64_t pages = 1 + rnd(chance(70) ? 8 : RAM_MAX);

	if (chance(4))
		pages = RAM_MAX + 1 + rnd(chance(10) ? m.npages : 64);
	return pages * m.ps - (chance(20) ? rnd(m.ps) : 0);
}

/* Another size for a piece of `size` bytes: of the same pages, or (other)
 * another count -- half the time one that takes the same slot (4 for 3),
 * which the library must refuse all the same. */
static uint64_t gen_size_like(uint64_t size, bool other)
{
	uint64_t own = to_pages(size), n = 1ull << order_of(own), pages = own;

	while (other && pages == own)
		pages = chance(50) ? n / 2 + 1 + rnd(n - n / 2)
				   : 1 + rnd(RAM_MAX);
	return pages * m.ps - (chance(30) ? rnd(m.ps) : 0);
}

/* A busy tree area of more than RAM_MAX pages (vmap_ram_free takes those
 * back with their length), as an index of m.busy; -1 if none. */
static long big_area(void)
{
	size_t start = m.nbusy ? rnd(m.nbusy) : 0;

	for (size_t i = 0; i < m.nbusy; i++) {
		size_t j = (start + i) % m.nbusy;

		if (m.len_at[m.busy[j]] > RAM_MAX)
			return (long)j;
	}
	return -1;
}

/* Any address: in the space (maybe unaligned) or out of it. */
static uint64_t gen_any_addr(void)
{
	uint64_t a = addr_of(rnd(m.npages));

	if (chance(10))
		return chance(50) ? m.end + rnd(-m.end) : rnd(m.base + 1) - 1;
	return a + (chance(30) ? rnd(m.ps) : 0);
}

static void step_ram_alloc(struct op *o)
{
	uint64_t addr = SENTINEL, want = SENTINEL;
	int ret, exp;

	o->size = gen_ram_size();
	ret = vmap_ram_alloc(space, o->size, &addr);
	exp = model_ram_alloc(o->size, &want);
	o->addr = addr;
	m.ram_full = exp == -ENOSPC;
	EXPECT(ret == exp && addr == want,
	       "returned %d (%s), addr %#llx; model %d, addr %#llx", ret,
	       vmap_strerror(ret), (ull)addr, exp, (ull)want);
	if (!exp && to_pages(o->size) <= RAM_MAX)
		m.pc[m.npc++] = (struct piece){ want, o->size };
}

/* What vmap_ram_free must say, and the model's verdict. */
static void ram_free(struct op *o)
{
	int ret = vmap_ram_free(space, o->addr, o->size);
	int exp = model_ram_free(o->addr, o->size);

	EXPECT(ret == exp, "returned %d (%s), model %d", ret,
	       vmap_strerror(ret), exp);
}

/* A live piece with its size or another of the same order; or a tree area
 * of more than RAM_MAX pages with its length. */
static void step_ram_free(struct op *o)
{
	long i = m.npc && chance(90) ? -1 : big_area();

	if (i >= 0) {
		o->variant = 1;
		o->addr = addr_of(m.busy[i]);
		o->size = m.len_at[m.busy[i]] * m.ps - rnd(m.ps);
	} else {
		const struct piece *pc = &m.pc[rnd(m.npc)];

		o->variant = chance(30) ? 2 : 0;
		o->addr = pc->addr;
		o->size = o->variant ? gen_size_like(pc->size, false)
				     : pc->size;
	}
	ram_free(o);
}

/* Requests vmap_ram_alloc must refuse, and frees vmap_ram_free must
 * refuse -- or, for addresses drawn at random or freed before, whatever the
 * model says. */
static void step_bad_ram(struct op *o)
{
	uint64_t addr = SENTINEL, p, i, bytes = m.bp * m.ps;
	const struct piece *pc = m.npc ? &m.pc[rnd(m.npc)] : NULL;
	int ret, exp, k;

	switch (o->variant = (int)rnd(9)) {
	case 0: /* size 0, or so large that rounding it up overflows */
	case 1:
		o->size = o->variant ? UINT64_MAX - rnd(m.ps - 1) : 0;
		ret = vmap_ram_alloc(space, o->size, &addr);
		exp = model_ram_alloc(o->size, &addr);
		EXPECT(exp == -EINVAL, "test bug: the size is valid");
		EXPECT(ret == exp && addr == SENTINEL,
		       "returned %d (%s), addr %#llx; model %d", ret,
		       vmap_strerror(ret), (ull)addr, exp);
		return;
	case 2: /* nowhere to put the address */
		o->size = gen_ram_size();
		ret = vmap_ram_alloc(space, o->size, NULL);
		EXPECT(ret == -EINVAL, "returned %d (%s), model %d", ret,
		       vmap_strerror(ret), -EINVAL);
		return;
	case 3: /* free with size 0 */
		o->addr = pc ? pc->addr : gen_any_addr();
		o->size = 0;
		break;
	case 4: /* a live piece, another count (maybe the same slot): -EINVAL */
		if (!pc)
			goto any;
		o->addr = pc->addr;
		o->size = gen_size_like(pc->size, true);
		break;
	case 5: /* in a live block, not a live piece's start: -ENOENT
		 *   [pp(p)d(d)pp_(_)__], or a byte past a piece's start */
		if (pc && chance(25)) {
			o->addr = pc->addr + 1 + rnd(m.ps - 1);
			o->size = pc->size;
			break;
		}
		if (!m.nblk)
			goto any;
		for (k = (int)rnd(MAX_BLOCKS); !m.blk[k].live;
		     k = (k + 1) % MAX_BLOCKS)
			;
		for (p = rnd(m.bp), i = 0; m.blk[k].map[p] && i < m.bp; i++)
			p = (p + 1) % m.bp;
		if (m.blk[k].map[p])	/* all 1-page pieces */
			goto any;
		o->addr = addr_of(m.blk[k].page + p);
		o->size = (1 + rnd(RAM_MAX)) * m.ps;
		break;
	case 6: /* freed before: a double free, unless reused since */
		if (!m.ngone)
			goto any;
		i = rnd(m.ngone < 64 ? m.ngone : 64);
		o->addr = m.gone[i].addr;
		o->size = m.gone[i].size;
		break;
	case 7: /* more than RAM_MAX pages, at a piece, a block or a tree
		 * area, of another length: -EINVAL or -ENOENT */
		if (pc && chance(50))
			o->addr = chance(50) ? pc->addr
					     : pc->addr & ~(bytes - 1);
		else if (m.nbusy)
			o->addr = addr_of(m.busy[rnd(m.nbusy)]);
		else
			goto any;
		o->size = (RAM_MAX + 1 + rnd(2 * m.bp)) * m.ps;
		break;
	default:
	any: /* anywhere */
		o->variant = 8;
		o->addr = gen_any_addr();
		o->size = (1 + rnd(chance(90) ? RAM_MAX : 2 * m.bp)) * m.ps;
		break;
	}
	ret = vmap_ram_free(space, o->addr, o->size);
	exp = model_ram_free(o->addr, o->size);
	EXPECT(o->variant >= 6 || exp == (o->variant == 5 ? -ENOENT : -EINVAL),
	       "test bug: the bad free is valid (model %d)", exp);
	EXPECT(ret == exp, "returned %d (%s), model %d", ret,
	       vmap_strerror(ret), exp);
}

static void step(struct op *o, unsigned p_alloc)
{
	uint64_t addr = SENTINEL, want = SENTINEL, r = rnd(1000);
	int ret, exp;
	bool drain;

	memset(o, 0, sizeof(*o));
	/* In ram spaces, 4.5% bad ram ops and 60% of the rest ram ops.
	 * Freed pieces give no room back until their block goes: after a
	 * miss, drain harder, or the space stays full of blocks. */
	drain = !chance(p_alloc) || m.st.busy_pages > m.cap ||
		(m.ram_full && chance(50));
	o->kind = r < 25 ? OP_BAD_FREE : r < 35 ? OP_BAD_ARGS :
		  r < 35 + m.purge_rate ? OP_PURGE :
		  m.ram && r < 80 + m.purge_rate ? OP_BAD_RAM :
		  m.ram && chance(60) ?
		  ((m.npc || big_area() >= 0) && drain ? OP_RAM_FREE
						       : OP_RAM_ALLOC) :
		  m.nbusy && drain ? OP_FREE :
		  chance(60) ? OP_ALLOC : OP_XALLOC;
	switch (o->kind) {
	case OP_RAM_ALLOC:
		step_ram_alloc(o);
		return;
	case OP_RAM_FREE:
		step_ram_free(o);
		return;
	case OP_BAD_RAM:
		step_bad_ram(o);
		return;
	case OP_ALLOC:
	case OP_XALLOC:
	case OP_BAD_ARGS:
		gen_alloc(o, o->kind != OP_ALLOC);
		if (o->kind == OP_BAD_ARGS)
			spoil(o);
		if (o->kind == OP_ALLOC)
			ret = vmap_alloc(space, o->size, o->align, o->vstart,
					 o->vend, &addr);
		else
			ret = vmap_xalloc(space, o->size, o->align, o->phase,
					  o->nocross, o->vstart, o->vend,
					  o->flags, &addr);
		exp = model_alloc(o, &want);
		EXPECT(o->kind != OP_BAD_ARGS || exp == -EINVAL,
		       "test bug: the spoiled request is valid");
		EXPECT(ret == exp && addr == want,
		       "returned %d (%s), addr %#llx; model %d, addr %#llx",
		       ret, vmap_strerror(ret), (ull)addr, exp, (ull)want);
		return;
	case OP_FREE:
	case OP_BAD_FREE:
		o->addr = o->kind == OP_BAD_FREE ? gen_bad_free(o) :
			  addr_of(m.busy[rnd(m.nbusy)]);
		ret = vmap_free(space, o->addr);
		exp = model_free(o->addr);
		EXPECT(o->kind == OP_FREE || exp == -ENOENT,
		       "test bug: the bad free is valid");
		break;
	default:
		/* TRY or SYNC, maybe FORCE_FLUSH; variant 1 (and 2 and 3
		 * in ram spaces): vmap_unmap_aliases; variant 0: an unknown
		 * bit, -EINVAL. */
		o->how = (unsigned)rnd(4);
		o->variant = (int)rnd(10);
		if (o->variant == 0)
			o->how |= 4u << rnd(29);
		if (o->variant == 1 || (m.ram && o->variant <= 3 &&
					o->variant)) {
			o->variant = 1;
			o->how = 0;
			ret = vmap_unmap_aliases(space);
			exp = 0;
			model_unmap_aliases();
			break;
		}
		ret = vmap_purge(space, o->how);
		exp = o->variant == 0 ? -EINVAL : 0;
		if (!exp)
			model_vmap_purge(o->how);
		break;
	}
	EXPECT(ret == exp, "returned %d (%s), model %d", ret,
	       vmap_strerror(ret), exp);
}

static void new_space(void)
{
	static const uint64_t page_sizes[] = { 4096, 4096, 4096, 512, 65536 };
	struct vmap_config cfg;
	int err;

	vmap_space_destroy(space);	/* with whatever is busy or lazy */
	memset(&m, 0, sizeof(m));
	memset(&flog, 0, sizeof(flog));
	m.ps = page_sizes[rnd(5)];
	/*
	 * Mostly purge on the threshold, sometimes at almost every free, or
	 * at every free (STRICT).  Or, with 1- and 2-page areas, only when
	 * asked, rarely: purges of hundreds of areas (sorted another way),
	 * in spaces of more pages than one radix digit covers.
	 */
	m.small = chance(25);
	m.strict = !m.small && chance(10);
	/*
	 * Most other spaces serve vm_map_ram too, with blocks of 128 or 256
	 * pages in 512..4096: room for 2 to 32 blocks.  With a threshold
	 * below one block every retired block purges; above a few, they
	 * pile up until a miss or a sync purge.  The rest have the default
	 * blocks, or any, unused.
	 */
	m.ram = !m.small && chance(65);
	m.bp = m.ram ? 128u << rnd(2) : chance(50) ? 0 : 128u << rnd(10);
	m.npages = m.small ? 2048 + rnd(2049) :
		   m.ram ? 512 + rnd(chance(85) ? 1537 : 3585) : 256 + rnd(769);
	m.cap = m.small ? 512 : m.npages;
	m.lazy_max = m.small ? 4 * MAX_PAGES :
		     m.ram && chance(40) ? 256 + rnd(2048) :
		     chance(80) ? 16 + rnd(285) : 1 + rnd(4);
	m.purge_rate = m.small ? 2 : 25;
	switch (rnd(4)) {
	case 0: m.base = 0; break;	/* 0 is aligned to everything */
	case 1: m.base = 0x10000000; break;
	case 2: m.base = rnd(1ull << 36) * m.ps; break;
	default: m.base = -m.ps * (m.npages + 1); break; /* the very top */
	}
	m.end = m.base + m.npages * m.ps;
	m.st.total_pages = m.npages;
	m.st.lazy_max_pages = m.lazy_max;
	vmap_config_init(&cfg);
	cfg.base = m.base;
	cfg.length = m.npages * m.ps;
	cfg.page_size = m.ps;
	cfg.lazy_max_pages = m.lazy_max;
	cfg.flush = flush_cb;
	cfg.flags = m.strict ? VMAP_SPACE_STRICT : 0;
	cfg.block_pages = m.bp;
	m.bp = m.bp ? m.bp : 1024;	/* the kernel's */
	m.st.block_pages = m.bp;
	err = vmap_space_create(&cfg, &space);
	EXPECT(err == 0, "vmap_space_create() = %d", err);
}

/* ---- the drivers' side (model.h) ---- */

void model_seed(uint64_t s)
{
	seed = s;
	fuzzing = false;
	op_index = 0;
	draw_seed(&src, s);
}

void model_feed(const uint8_t *data, size_t size)
{
	fuzzing = true;
	fed = size;
	op_index = 0;
	draw_feed(&src, data, size);
}

void model_record(uint8_t *buf, size_t cap)
{
	draw_record(&src, buf, cap);
}

size_t model_recorded(void)
{
	return src.lost ? 0 : src.nrec;
}

uint64_t model_rnd(uint64_t n)
{
	return rnd(n);
}

void model_new_space(void)
{
	new_space();
}

void model_step(unsigned p_alloc)
{
	uint64_t flushes_before = m.st.flushes;

	step(&cur, p_alloc);
	check_state(flushes_before);
	op_index++;
}

/* Steps between new draws of the fill/drain balance, in a fuzz input. */
#define BALANCE_EVERY 256

void model_run_space(uint64_t max_ops)
{
	unsigned p_alloc = 50;

	model_new_space();
	for (uint64_t i = 0; i < max_ops && !(fuzzing && draw_done(&src));
	     i++) {
		if (i % BALANCE_EVERY == 0)
			p_alloc = 10 + (unsigned)rnd(70);
		model_step(p_alloc);
	}
}

void model_end_space(void)
{
	vmap_space_destroy(space);
	space = NULL;
}

/* Stay on the CPU we are on: one block queue, so a deterministic run. */
void model_pin(void)
{
	int cpu = sched_getcpu();
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu < 0 ? 0 : cpu, &set);
	REQUIRE(sched_setaffinity(0, sizeof(set), &set) == 0);
}

uint64_t model_ops(void)
{
	return op_index;
}

const struct vmap_stats *model_stats(void)
{
	return &m.st;
}

bool model_small_areas(void)
{
	return m.small;
}

int model_checks(void)
{
	return test_checks;
}
