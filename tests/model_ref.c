/* SPDX-License-Identifier: MIT */
/*
 * model_ref.c - the model test's reference: vmap as a model too simple to be
 * wrong, one state byte per page and a brute-force search of every candidate
 * address; and the comparison of vmap with it after every operation.
 *
 * The spaces are small range spaces (256..4096 pages, so that the model can
 * afford O(pages) per step).  After every operation, the return value and
 * the address (compared by model_ops.c, which makes the operations), the
 * flushed ranges, the counters of vmap_stats() and vmap_check() must agree
 * with the model; see model.h.
 *
 * Most spaces also serve the vm_map_ram family: pieces of 2^order pages
 * bumped out of vmap blocks of 128 or 256 pages, dirty once freed, each block
 * retired as one lazy area when all dirty or, fragmented, by a sync purge, an
 * allocation miss or vmap_unmap_aliases, which also flushes the blocks' dirty
 * ranges.  The thread is pinned to one CPU, so the library uses one block
 * queue and the model one free list.
 *
 * Areas can also be had at a fixed address (vmap_alloc_at), or reserved
 * there (vmap_reserve: busy, but only vmap_unreserve gives it back, straight
 * to the free tree); vmap_range_state says what a range holds.  A range that
 * is not all free drains the node pools and is then told busy from lazy; see
 * model_alloc_at.
 *
 * A quarter of the spaces flush asynchronously (vmap_config.flush_async):
 * a purge's batch does not go back to the pools and the tree when the
 * callback returns, but waits *in flight* (counted apart, lazy to queries)
 * until vmap_flush_complete(token); then it goes exactly where a sync purge
 * would have put it.  The callback (flush_async_cb) does what the
 * operation's plan says (struct plan): it may complete older flights (given
 * back when its purge ends), the token it is about to return (the batch
 * starts completed) or unknown ones, and returns a fresh token or the last
 * one again (a shared token: one completion completes both batches).  See
 * flight_start and settle.
 *
 * An allocation that finds no room waits, in such a space, for a completion
 * while anything is in flight after its purge: single-threaded, forever.
 * The operations never make such a call: model_ops.c asks the model first
 * (model_alloc_waits ...) and makes the callback complete everything
 * instead, or, if no callback would come, completes a flight instead of
 * making the call.
 *
 * In the pictures, A and B are busy areas, R reservations, + lazy pages, .
 * free pages, c pooled ones and ~ in flight; in a block, p is a live piece,
 * d dirty and _ never handed out.
 */
#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <vmap.h>

#define MODEL_ENGINE
#include "model.h"

#define FT_MISSES 16	/* "more than 16" misses: see vmap_alloc */
#define SENTINEL_PAGES 0x5e5e5e5eull	/* an out-parameter not written */

/* A request as the header defines it: size in whole pages, align at least
 * a page, [lo, hi) the window clipped to the space's whole pages. */
struct fit {
	uint64_t size, align, phase, nocross, lo, hi;
	bool topdown, nopurge;
	bool any_fit;	/* pools: an aligned request skips the exact search */
};

struct model m;
struct calls cbs;

/* What the flush callback saw: never more than one call per operation. */
static struct {
	uint64_t calls;
	size_t n;
	struct vmap_range r[MAX_PAGES];
	const char *bad;
} flog;

void model_reset(void)
{
	memset(&m, 0, sizeof(m));
	memset(&flog, 0, sizeof(flog));
	for (int c = 0; c < POOL_PAGES; c++)
		m.phead[0][c] = m.phead[1][c] = NO_PAGE;
}

/* Check what the header promises of every flush as it happens; the exact
 * ranges are compared with the model's after the operation. */
void flush_cb(void *ctx, const struct vmap_range *r, size_t n)
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

/*
 * The asynchronous flush: the same ranges, checked as flush_cb checks them,
 * then the completions of this call's plan -- what vmap_flush_complete says
 * to them is recorded, for the model's purge (flight_start) to compare --
 * and the plan's token.
 */
uint64_t flush_async_cb(void *ctx, const struct vmap_range *r, size_t n)
{
	unsigned k = cbs.made++;
	const struct plan *pl = &cbs.plan[k < NPLANS ? k : NPLANS - 1];

	flush_cb(ctx, r, n);
	for (unsigned i = 0; i < pl->ncomp; i++) {
		int rc = vmap_flush_complete(space, pl->comp[i]);

		if (k < NPLANS)
			cbs.rc[k][i] = rc;
	}
	return pl->ret;
}

/* ---- the model ---- */

uint64_t addr_of(uint64_t page)
{
	return m.base + page * m.ps;
}

/* ---- the node pools ---- */

/* A pool list's areas back to the tree. */
static void pool_free_list(int g, int c)
{
	for (uint32_t p = m.phead[g][c]; p != NO_PAGE; p = m.pnext[p]) {
		memset(&m.state[p], FREE, (size_t)c + 1);
		m.len_at[p] = 0;
	}
	m.st.cached_areas -= m.pcount[g][c];
	m.st.cached_pages -= (uint64_t)m.pcount[g][c] * (c + 1);
	m.st.cached_decayed += m.pcount[g][c];
	m.phead[g][c] = NO_PAGE;
	m.pcount[g][c] = 0;
}

/* Decay: every old generation goes back to the tree, the young ones grow
 * old; with all, both go back. */
static void pools_decay(bool all)
{
	for (int c = 0; c < POOL_PAGES; c++) {
		pool_free_list(1, c);
		if (all) {
			pool_free_list(0, c);
			continue;
		}
		m.phead[1][c] = m.phead[0][c];
		m.pcount[1][c] = m.pcount[0][c];
		m.phead[0][c] = NO_PAGE;
		m.pcount[0][c] = 0;
	}
}

/* A flushed area into its pool's young generation, at the head. */
static void pool_put(uint64_t p, uint32_t pages)
{
	memset(&m.state[p], CACHED, pages);
	m.pnext[p] = m.phead[0][pages - 1];
	m.phead[0][pages - 1] = (uint32_t)p;
	m.pcount[0][pages - 1]++;
	m.st.cached_areas++;
	m.st.cached_pages += pages;
}

/* The first of the first POOL_SCAN areas of the young generation, then of
 * the old, that meets f, unlinked if take; the pool is tried only by a
 * bottom-up request of up to POOL_PAGES pages that its window can hold. */
static bool pool_find(const struct fit *f, uint64_t *page, bool take)
{
	uint64_t pages = f->size / m.ps;

	if (!m.pools || f->topdown || pages > POOL_PAGES ||
	    f->size > f->hi - f->lo)
		return false;
	for (int g = 0; g < 2; g++) {
		uint32_t *link = &m.phead[g][pages - 1], looked = 0;

		for (; *link != NO_PAGE && looked < POOL_SCAN;
		     link = &m.pnext[*link], looked++) {
			uint64_t a = addr_of(*link);

			if (a < f->lo || a > f->hi - f->size ||
			    (a - f->phase) % f->align ||
			    (f->nocross && a / f->nocross !=
					       (a + f->size - 1) / f->nocross))
				continue;
			*page = *link;
			if (!take)
				return true;
			*link = m.pnext[*link];
			m.pcount[g][pages - 1]--;
			m.st.cached_areas--;
			m.st.cached_pages -= pages;
			m.st.cached_hits++;
			return true;
		}
	}
	return false;
}

static bool pool_take(const struct fit *f, uint64_t *page)
{
	return pool_find(f, page, true);
}

/* A flushed area back: into its pool (with pool: up to POOL_PAGES pages,
 * not a retired block), else to the tree. */
static void give_area(uint32_t p, bool pool)
{
	uint32_t pages = m.len_at[p];

	if (pool && pages <= POOL_PAGES && !m.lazy_block[p]) {
		pool_put(p, pages);
	} else {
		memset(&m.state[p], FREE, pages);
		m.len_at[p] = 0;
	}
	m.lazy_block[p] = false;
}

/* ---- asynchronous flushes ---- */

/*
 * vmap_flush_complete(token): every flight in flight with that token is
 * done -- newest first onto the library's done list, so given back oldest
 * first.  During a callback (calling) every completion is also remembered,
 * for the batch the call starts, so a token no flight has is taken too: 0,
 * and counted.  *found: the flights completed.
 */
static int complete_one(uint64_t token, bool calling, unsigned *found)
{
	*found = 0;
	for (size_t i = m.nflt; i-- > 0;)
		if (!m.flt[i].done && m.flt[i].token == token) {
			m.flt[i].done = true;
			m.flt[i].done_seq = ++m.done_seq;
			++*found;
		}
	if (!*found && !calling)
		return -ENOENT;
	m.st.completions++;
	return 0;
}

/* A completed flight back where a sync purge would have put the batch: its
 * areas, in address order, into the pools (young, at the head) and the
 * tree -- into the pools even when a sync purge's batch would skip them
 * (a completion does not know the purge's kind; a sync purge drains them
 * after).  Counted purged now, not when flushed. */
static void give_flight(size_t i)
{
	struct mflight f = m.flt[i];

	memmove(&m.flt[i], &m.flt[i + 1], (m.nflt - i - 1) * sizeof(f));
	m.nflt--;
	for (uint64_t p = m.npages; p-- > 0;)
		if (m.state[p] == FLT && m.len_at[p] && m.flight_of[p] == f.id)
			give_area((uint32_t)p, m.pools);
	m.st.inflight_areas -= f.areas;
	m.st.inflight_pages -= f.pages;
	m.st.areas_purged += f.areas;
}

/* Every completed flight back, last completed first (the done list is a
 * stack): at the start and the end of every purge, and at once after a
 * completion outside one. */
static void settle(void)
{
	for (;;) {
		size_t best = m.nflt;

		for (size_t i = 0; i < m.nflt; i++)
			if (m.flt[i].done &&
			    (best == m.nflt ||
			     m.flt[i].done_seq > m.flt[best].done_seq))
				best = i;
		if (best == m.nflt)
			return;
		give_flight(best);
	}
}

/*
 * A purge's flush_async call and the flight it starts: the plan's
 * completions (older flights are done, given back when this purge ends;
 * every token is remembered), then the batch -- every lazy area -- goes in
 * flight with the returned token, out of the lazy counters into the flight
 * ones: ++AA++ -> ~~AA~~.  With nothing lazy (a forced flush, or only live
 * blocks' dirty ranges) the flight is a marker, of no pages.  A batch whose
 * token was completed during the call starts completed -- an older flight
 * with that token (a shared fence) completed or not.
 */
static void flight_start(const uint32_t *lazy, size_t nlazy)
{
	unsigned k = cbs.modelled++, found;
	const struct plan *pl = &cbs.plan[k < NPLANS ? k : NPLANS - 1];
	bool early = false, shared = false;
	struct mflight *f;

	EXPECT(k < cbs.made, "flush_async called %u times, the model's "
	       "purges %u", cbs.made, k + 1);
	for (unsigned i = 0; i < pl->ncomp; i++) {
		int rc = complete_one(pl->comp[i], true, &found);

		EXPECT(k >= NPLANS || rc == cbs.rc[k][i],
		       "vmap_flush_complete(%#llx) from the callback = %d, "
		       "model %d", (ull)pl->comp[i], cbs.rc[k][i], rc);
		early |= !rc && pl->comp[i] == pl->ret;
		shared |= found && pl->comp[i] == pl->ret;
		tally.in_call += found;
		tally.remembered += !rc && !found;
	}
	EXPECT(m.nflt < MAX_FLIGHTS, "test bug: more than %d flights",
	       MAX_FLIGHTS);
	f = &m.flt[m.nflt++];
	f->token = pl->ret;
	f->id = ++m.next_fid;
	f->areas = (uint32_t)nlazy;
	f->pages = (uint32_t)m.st.lazy_pages;
	f->done = early;
	f->done_seq = early ? ++m.done_seq : 0;
	for (size_t i = 0; i < nlazy; i++) {
		uint32_t p = lazy[i];

		memset(&m.state[p], FLT, m.len_at[p]);
		for (uint32_t q = p; q < p + m.len_at[p]; q++)
			m.flight_of[q] = f->id;
	}
	m.st.inflight_areas += nlazy;
	m.st.inflight_pages += m.st.lazy_pages;
	m.st.lazy_areas = m.st.lazy_pages = 0;
	m.last_ret = pl->ret;
	m.any_ret = true;
	tally.flights++;
	tally.markers += !nlazy;
	tally.early += early;
	tally.early_shared += shared;
}

int model_complete(uint64_t token)
{
	unsigned found;
	int rc;

	if (!m.async)
		return -EINVAL;
	rc = complete_one(token, false, &found);
	if (!rc)
		settle();	/* no purge runs: given back at once */
	return rc;
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
static bool model_purge(bool force, bool aliases, bool pool)
{
	static bool flush[MAX_PAGES];
	static uint32_t lazy[MAX_PAGES];
	bool in_run = false;
	uint64_t dirty = 0;
	size_t nlazy;

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
	/* (An async space's purge first gives back what completed: nothing,
	 * between operations.) */
	settle();
	if (!m.st.lazy_areas && !dirty && !force)
		return false;
	m.nexp = 0;
	nlazy = 0;
	for (uint64_t p = 0; p < m.npages; p++) {
		bool f = flush[p] || m.state[p] == LAZY;

		if (f && !in_run)
			m.exp[m.nexp++].start = addr_of(p);
		if ((in_run = f))
			m.exp[m.nexp - 1].end = addr_of(p + 1);
		if (m.state[p] == LAZY && m.len_at[p])
			lazy[nlazy++] = (uint32_t)p;
	}
	m.st.purges++;
	m.st.flushes++;
	m.st.ranges_flushed += m.nexp;
	if (m.st.lazy_areas > m.st.purge_max_areas)
		m.st.purge_max_areas = m.st.lazy_areas;
	/*
	 * Flushed: with pools (unless the caller empties them next), the old
	 * generation goes back to the tree, then each lazy area of up to
	 * POOL_PAGES pages (not a retired block) goes into its pool -- the
	 * batch in address order at the head -- and the rest to the tree.
	 * Asynchronously: the batch goes in flight, the pools decay all the
	 * same, and what completed meanwhile -- this batch too, if its token
	 * was completed during the call -- comes back as the purge ends.
	 */
	pool = pool && m.pools;
	if (m.async) {
		flight_start(lazy, nlazy);
		if (pool)
			pools_decay(false);
		settle();
		return true;
	}
	if (pool)
		pools_decay(false);
	for (size_t i = nlazy; i-- > 0;)
		give_area(lazy[i], pool);
	m.st.areas_purged += m.st.lazy_areas;
	m.st.lazy_areas = m.st.lazy_pages = 0;
	return true;
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
 * plain purge, not a sync_purge of fragmented blocks); each counted by its
 * cause, if it did anything. */
static void after_lazy_free(void)
{
	if ((m.strict || m.st.lazy_pages > m.lazy_max) &&
	    model_purge(false, false, true)) {
		if (m.strict)
			m.st.purges_strict++;
		else
			m.st.purges_threshold++;
	}
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
	m.lazy_block[b->page] = true; /* never pooled */
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

/* A sync purge (reclaim.c's purge_all): fragmented blocks first, nothing
 * into the pools, every pool back to the tree after; *cause counts it if it
 * did anything. */
static void purge_all(bool force, uint64_t *cause)
{
	purge_fragmented();
	if (model_purge(force, false, false))
		(*cause)++;
	pools_decay(true);
}

/* vmap_purge: SYNC and FORCE_FLUSH purge all; TRY only the lazy list. */
void model_vmap_purge(unsigned how)
{
	if (how & (VMAP_PURGE_SYNC | VMAP_PURGE_FORCE_FLUSH))
		purge_all(how & VMAP_PURGE_FORCE_FLUSH, &m.st.purges_called);
	else if (model_purge(false, false, true))
		m.st.purges_called++;
}

void model_unmap_aliases(void)
{
	purge_fragmented();
	model_purge(true, true, false);
	m.st.purges_aliases++;		/* forced: it always flushes */
	pools_decay(true);
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
	f->any_fit = m.pools && !f->topdown && (f->align > m.ps || f->nocross);
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
 * that cannot hold it -- or, in a space with pools, a bottom-up request can
 * miss (aligned above a page, or a boundary).  Then the lowest (highest) block of at least size +
 * 2 * align + nocross that holds it, and failing that, the lowest fit again.
 * Lazy pages are not free: in "AA++..B" 3 pages fit only after a purge.
 */
static bool model_find(const struct fit *f, uint64_t *page)
{
	static uint32_t bs[MAX_PAGES], be[MAX_PAGES];	/* free blocks */
	uint64_t lo = (f->lo - m.base) / m.ps, hi = (f->hi - m.base) / m.ps;
	uint64_t pages = f->size / m.ps, nb = 0, misses = 0, k, j, big;

	for (uint64_t p = 0; p < m.npages; p++) {
		if (m.state[p] == FREE &&
		    (!p || m.state[p - 1] != FREE || m.cut[p]))
			bs[nb++] = (uint32_t)p;
		if (m.state[p] == FREE)
			be[nb - 1] = (uint32_t)p + 1;
	}
	/* With pools, a request that can miss takes any fit: no exact
	 * search, straight to the long blocks. */
	if (f->any_fit)
		misses = FT_MISSES + 1;
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

/* Can a sync purge make room?  Something is lazy or pooled, a block is
 * live (it may be fragmented), or a flush is in flight. */
static bool could_help(void)
{
	return m.st.lazy_pages || m.nblk || m.st.cached_areas || m.nflt;
}

/*
 * A pool's area, else the tree's search, and on a miss, where that can help
 * (could_help), and the window, were it all free, could hold the area with
 * its alignment, phase and boundary; never with NOPURGE -- a sync purge
 * (fragmented blocks first, every pool back to the tree after) and one more
 * search.  In an async space, a second miss with flights pending would
 * wait for a completion: the operations never get there (place_waits).
 */
static bool model_place(const struct fit *f, uint64_t *p)
{
	bool retry;

	if (pool_take(f, p) || model_find(f, p))
		return true;
	/* NOPURGE: no purge, but the pools' flushed areas back to the tree
	 * (no flush), and one more search. */
	if (f->nopurge) {
		if (!m.st.cached_areas ||
		    !block_fit(f, 0, m.npages, &(uint64_t){ 0 }))
			return false;
		pools_decay(true);
		return model_find(f, p);
	}
	retry = !f->nopurge && could_help() &&
		block_fit(f, 0, m.npages, &(uint64_t){ 0 });
	if (!retry)
		return false;
	m.st.purge_retries++;
	purge_all(false, &m.st.purges_miss);
	if (model_find(f, p))
		return true;
	EXPECT(!m.nflt, "test bug: the call waits for one of %zu flights",
	       m.nflt);
	return false;
}

int model_alloc(const struct op *o, uint64_t *addr)
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

long rsv_at(uint64_t addr)
{
	uint64_t p = (addr - m.base) / m.ps;

	if (addr < m.base || addr >= m.end || (addr - m.base) % m.ps ||
	    m.state[p] != RSV || !m.len_at[p])
		return -1;
	for (size_t i = 0;; i++)
		if (m.rsv[i] == p)
			return (long)i;
}

/* vmap_free: blocks and pieces are not the caller's: -ENOENT; nor are
 * reservations, but those are there: -EPERM. */
int model_free(uint64_t addr)
{
	long i = busy_at(addr);

	if (i < 0)
		return rsv_at(addr) >= 0 ? -EPERM : -ENOENT;
	free_busy(i);
	return 0;
}

/* What [p, p + pages) holds, as vmap_range_state says it: busy if any page
 * is (an area, a reservation, a block), else lazy if any page is (in
 * flight too), else free -- pooled pages are free:  ..c+c. lazy, ..c~.
 * lazy, ..cc.. free, .+A+. busy. */
static int range_state(uint64_t p, uint64_t pages)
{
	int state = VMAP_RANGE_FREE;

	for (uint64_t q = p; q < p + pages; q++) {
		if (m.state[q] == BUSY || m.state[q] == BLK ||
		    m.state[q] == RSV)
			return VMAP_RANGE_BUSY;
		if (m.state[q] == LAZY || m.state[q] == FLT)
			state = VMAP_RANGE_LAZY;
	}
	return state;
}

/* The -EINVAL and -ERANGE rules of the fixed-address calls. */
static int check_range(uint64_t start, uint64_t size)
{
	if (!size || (start | size) % m.ps || size - 1 > UINT64_MAX - start)
		return -EINVAL;
	/* Ending at 2^64 exactly is past the end, not a wrap. */
	if (start < m.base || !(start + size) || start + size > m.end)
		return -ERANGE;
	/* A span space: not inside one span (an absent page, a cut). */
	for (uint64_t p = (start - m.base) / m.ps, q = p;
	     m.empty && q < p + size / m.ps; q++)
		if (m.state[q] == ABSENT || (q > p && m.cut[q])) {
			tally.not_in_span++;
			return -ERANGE;
		}
	return 0;
}

/*
 * vmap_space_add: the -EINVAL and -ERANGE rules, then -EEXIST if any page
 * is in a span already; else the pages are free, the tree's, and where the
 * new span touches another, a cut.
 */
int model_space_add(uint64_t start, uint64_t length)
{
	uint64_t p, n;

	if (!m.empty || !length || (start | length) % m.ps ||
	    length - 1 > UINT64_MAX - start)
		return -EINVAL;
	/* Ending at 2^64 exactly is past the end, not a wrap. */
	if (start < m.base || !(start + length) || start + length > m.end)
		return -ERANGE;
	p = (start - m.base) / m.ps;
	n = length / m.ps;
	for (uint64_t q = p; q < p + n; q++)
		if (m.state[q] != ABSENT)
			return -EEXIST;
	memset(&m.state[p], FREE, n);
	if (p && m.state[p - 1] != ABSENT)
		m.cut[p] = true, tally.cuts++;
	if (p + n < m.npages && m.state[p + n] != ABSENT)
		m.cut[p + n] = true, tally.cuts++;
	tally.spans++;
	m.st.total_pages += n;
	return 0;
}

/*
 * vmap_alloc_at and vmap_reserve.  An ordinary placement whose window is
 * exactly the range: a pooled area if one of those a take looks at starts
 * there and is that long, else the tree, which has the range only if every
 * page of it is free there.  A miss sends every pool back to the tree (no
 * purge, no flush) and then looks at the range:
 *   .R++..  busy (an area, a reservation, a block): -EBUSY
 *   ..++c.  lazy: -EAGAIN; with VMAP_AT_PURGE a sync purge, and again
 *   ..cc..  free once the pools are drained: again
 *   ..~~+.  in flight (lazy too): the purge's callback may complete it;
 *           if it does not, a second purge, and then the call waits for
 *           completions while the range is lazy (never made: at_waits)
 * Both failures count as allocation failures.  A third miss is -EBUSY: only
 * another thread could take the range between the look and the retry.
 */
int model_alloc_at(uint64_t addr, uint64_t size, unsigned flags,
		   bool reserve)
{
	struct fit f = { .size = size, .align = m.ps, .lo = addr,
			 .hi = addr + size, .nopurge = true };
	uint64_t p, pages = size / m.ps;
	bool purge = flags & VMAP_AT_PURGE;
	int err = check_range(addr, size), state;

	if (flags & ~VMAP_AT_PURGE)
		return -EINVAL;
	if (err)
		return err;
	for (unsigned tries = 0;; tries++) {
		if (pool_take(&f, &p) || model_find(&f, &p))
			break;
		pools_decay(true);
		state = range_state((addr - m.base) / m.ps, pages);
		if (state == VMAP_RANGE_LAZY && purge && tries < 2) {
			m.st.purge_retries++;
			purge_all(false, &m.st.purges_miss);
		}
		if (tries < 2 && (state == VMAP_RANGE_FREE ||
				  (state == VMAP_RANGE_LAZY && purge)))
			continue;
		/* Lazy still, after two purges: in flight, and the call
		 * waits for a completion (model_at_waits). */
		EXPECT(state != VMAP_RANGE_LAZY || !purge || !m.nflt,
		       "test bug: the call waits for one of %zu flights",
		       m.nflt);
		m.st.alloc_failures++;
		return state == VMAP_RANGE_LAZY && !purge ? -EAGAIN : -EBUSY;
	}
	m.len_at[p] = (uint32_t)pages;
	memset(&m.state[p], reserve ? RSV : BUSY, pages);
	if (reserve)
		m.rsv[m.nrsv++] = (uint32_t)p;
	else
		m.busy[m.nbusy++] = (uint32_t)p;
	m.st.busy_areas++;
	m.st.busy_pages += pages;
	m.st.allocs++;
	return 0;
}

/* vmap_unreserve: a reservation straight back to the free tree (never
 * handed out: no flush, no pool), counted as a free; a tree area there is
 * not a reservation (-EPERM); anything else is no area (-ENOENT). */
int model_unreserve(uint64_t addr)
{
	long i = rsv_at(addr);
	uint64_t p;

	if (i < 0)
		return busy_at(addr) >= 0 ? -EPERM : -ENOENT;
	p = m.rsv[i];
	m.rsv[i] = m.rsv[--m.nrsv];
	memset(&m.state[p], FREE, m.len_at[p]);
	m.st.busy_areas--;
	m.st.busy_pages -= m.len_at[p];
	m.st.frees++;
	m.len_at[p] = 0;
	return 0;
}

int model_range_state(uint64_t start, uint64_t size, int *state)
{
	int err = check_range(start, size);

	if (err)
		return err;
	*state = range_state((start - m.base) / m.ps, size / m.ps);
	return 0;
}

/* Bytes to pages, 0 for 0 bytes or a size whose rounding overflows. */
uint64_t to_pages(uint64_t size)
{
	if (!size || size > UINT64_MAX - (m.ps - 1))
		return 0;
	return (size + m.ps - 1) / m.ps;
}

unsigned order_of(uint64_t pages)
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
int model_ram_alloc(uint64_t size, uint64_t *addr)
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
 *    that long (-EINVAL if it is not, be it a block or a reservation, or
 *    if a live piece starts there; -EPERM for a reservation of that
 *    length; -ENOENT for a block of that length, or nothing there);
 *  - else the live block holding addr, a live piece starting at addr
 *    (-ENOENT if either is missing, -EINVAL if a tree area or a
 *    reservation starts there),
 *    of that many pages (else -EINVAL, even
 *    for a count that takes the same slot, as 4 for 3): it turns
 *    dirty, and the block retires when all of it is:
 *      [ppdpd] free the 2nd p -> [ppddd]... [ddddd] -> +++++ (lazy)
 */
int model_ram_free(uint64_t addr, uint64_t size)
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
		/* A reservation: the length is checked first. */
		if ((i = rsv_at(addr)) >= 0)
			return m.len_at[m.rsv[i]] != pages ? -EINVAL : -EPERM;
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
		/* A tree area (or a reservation) there: the wrong count. */
		return busy_at(addr) >= 0 || rsv_at(addr) >= 0 ? -EINVAL
							       : -ENOENT;
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

/* ---- calls that would wait for a completion ---- */

/* A live block with nothing live but pages never handed out: a sync purge
 * retires it (purge_fragmented); its pages go lazy with the batch. */
static bool fragmented(const struct mblock *b)
{
	return b->live && b->free + b->dirty == m.bp && b->dirty != m.bp;
}

/*
 * The pages a sync purge (purge_all) would leave free, with the callback
 * doing cbs.plan[0], made FREE in m.state (the caller restores it): every
 * pooled page; every page of a flight the plan completes; and, if the
 * batch starts completed, every lazy page and every page of a fragmented
 * block.  There is a callback only if the purge has a batch.  Returns the
 * flights still in flight after it (the flights themselves are left as
 * they were).
 */
static size_t after_purge_all(void)
{
	static struct mflight saved[MAX_FLIGHTS];
	const struct plan *pl = &cbs.plan[0];
	size_t nsaved = m.nflt, pending = 0;
	uint64_t seq = m.done_seq, comps = m.st.completions;
	bool cb = m.st.lazy_areas != 0, early = false;
	unsigned found;
	uint32_t id = 0;
	bool done = false;

	for (size_t k = 0; k < MAX_BLOCKS; k++)
		cb |= fragmented(&m.blk[k]);
	memcpy(saved, m.flt, nsaved * sizeof(saved[0]));
	for (unsigned i = 0; cb && i < pl->ncomp; i++)
		early |= !complete_one(pl->comp[i], true, &found) &&
			 pl->comp[i] == pl->ret;
	for (size_t k = 0; early && k < MAX_BLOCKS; k++)
		if (fragmented(&m.blk[k]))
			memset(&m.state[m.blk[k].page], FREE, m.bp);
	for (uint64_t p = 0; p < m.npages; p++) {
		if (m.state[p] == FLT && m.flight_of[p] != id) {
			id = m.flight_of[p];
			for (size_t i = 0; i < m.nflt; i++)
				if (m.flt[i].id == id)
					done = m.flt[i].done;
		}
		if (m.state[p] == CACHED || (m.state[p] == FLT && done) ||
		    (m.state[p] == LAZY && early))
			m.state[p] = FREE;
	}
	for (size_t i = 0; i < m.nflt; i++)
		pending += !m.flt[i].done;
	pending += cb && !early;
	memcpy(m.flt, saved, nsaved * sizeof(saved[0]));
	m.done_seq = seq;
	m.st.completions = comps;
	return pending;
}

/* Would model_place(f) wait (see model.h)?  Only after a miss, a purge
 * that could help, and a second miss, with flights pending. */
static int place_waits(const struct fit *f)
{
	static uint8_t saved[MAX_PAGES];
	uint64_t p;
	size_t pending;
	bool fit, cb = m.st.lazy_areas != 0;

	if (!m.async || f->nopurge || pool_find(f, &p, false) ||
	    model_find(f, &p) || !could_help() ||
	    !block_fit(f, 0, m.npages, &p))
		return 0;
	for (size_t k = 0; k < MAX_BLOCKS; k++)
		cb |= fragmented(&m.blk[k]);
	memcpy(saved, m.state, m.npages);
	pending = after_purge_all();
	fit = model_find(f, &p);
	memcpy(m.state, saved, m.npages);
	return fit || !pending ? 0 : cb ? 1 : 2;
}

int model_alloc_waits(const struct op *o)
{
	struct fit f;

	return model_args(o, &f) ? 0 : place_waits(&f);
}

/* vmap_ram_alloc: a piece that a block on the free list has room for
 * never misses; else the block's placement, or the tree's for a big one. */
int model_ram_alloc_waits(uint64_t size)
{
	uint64_t pages = to_pages(size), n;
	struct fit f = { 0 };

	if (!pages)
		return 0;
	if (pages > RAM_MAX) {
		struct op o = { .size = size, .vend = UINT64_MAX };

		return model_alloc_waits(&o);
	}
	n = 1ull << order_of(pages);
	for (size_t i = 0; i < m.nfl; i++)
		if (m.blk[m.fl[i]].free >= n)
			return 0;
	f.size = f.align = m.bp * m.ps;
	f.lo = m.base;
	f.hi = m.end;
	return place_waits(&f);
}

/* vmap_alloc_at and vmap_reserve with VMAP_AT_PURGE of a lazy range: the
 * first purge must leave all of it free, or the third miss waits. */
int model_at_waits(uint64_t addr, uint64_t size, unsigned flags)
{
	static uint8_t saved[MAX_PAGES];
	struct fit f = { .size = size, .align = m.ps, .lo = addr,
			 .hi = addr + size, .nopurge = true };
	uint64_t p, first = (addr - m.base) / m.ps, pages = size / m.ps;
	bool cb = m.st.lazy_areas != 0, free;

	if (!m.async || flags != VMAP_AT_PURGE || check_range(addr, size) ||
	    pool_find(&f, &p, false) || model_find(&f, &p) ||
	    range_state(first, pages) != VMAP_RANGE_LAZY)
		return 0;
	for (size_t k = 0; k < MAX_BLOCKS; k++)
		cb |= fragmented(&m.blk[k]);
	memcpy(saved, m.state, m.npages);
	after_purge_all();
	free = range_state(first, pages) == VMAP_RANGE_FREE;
	memcpy(m.state, saved, m.npages);
	return free ? 0 : cb ? 1 : 2;
}

/* ---- comparing ---- */

#define STATS(X)                                                            \
	X(inflight_flushes) X(inflight_areas) X(inflight_pages)             \
	X(completions) X(total_pages) X(busy_areas) X(busy_pages)           \
	X(free_pages) X(free_blocks) X(largest_free_pages)                  \
	X(lazy_areas) X(lazy_pages) X(lazy_max_pages) X(allocs)             \
	X(frees) X(alloc_failures) X(purge_retries) X(purges)               \
	X(flushes) X(ranges_flushed) X(areas_purged) X(purge_max_areas)     \
	X(release_path) X(release_syscalls) X(release_errors)               \
	X(block_pages) X(blocks) X(block_free_pages)                        \
	X(block_dirty_pages) X(blocks_created) X(blocks_freed)              \
	X(cached_areas) X(cached_pages) X(cached_hits)                      \
	X(cached_decayed) X(purges_threshold) X(purges_miss)                \
	X(purges_called) X(purges_timer) X(purges_strict)                   \
	X(purges_aliases) X(backpressure)
#define COMPARE(f)                                                          \
	EXPECT(st.f == m.st.f, "stats." #f " = %llu, model %llu",           \
	       (ull)st.f, (ull)m.st.f);

void check_state(uint64_t flushes_before)
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
	/* Free blocks are the maximal free runs: "..AA...+.." has 3;
	 * pooled pages are free, but not in the tree's blocks. */
	m.st.free_pages = m.st.free_blocks = m.st.largest_free_pages = 0;
	for (uint64_t p = 0; p < m.npages; p++) {
		/* Split at cuts, as the tree's blocks are. */
		run = m.state[p] != FREE ? 0 : m.cut[p] ? 1 : run + 1;
		m.st.free_pages += run > 0 || m.state[p] == CACHED;
		m.st.free_blocks += run == 1;
		if (run > m.st.largest_free_pages)
			m.st.largest_free_pages = run;
	}
	/* Between operations nothing is completed and not given back. */
	m.st.inflight_flushes = 0;
	for (size_t i = 0; i < m.nflt; i++) {
		EXPECT(!m.flt[i].done, "test bug: a completed flight left");
		m.st.inflight_flushes++;
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

/* ---- vmap_walk and vmap_largest_free ---- */

static struct {
	size_t n, stop;		/* ranges seen; stop at this many */
	int rv;			/* ... returning this */
	struct vmap_walk_range r[MAX_PAGES];
} wlog;

static int walk_cb(void *arg, const struct vmap_walk_range *r)
{
	(void)arg;
	if (wlog.n < MAX_PAGES)
		wlog.r[wlog.n] = *r;
	wlog.n++;
	return wlog.n == wlog.stop ? wlog.rv : 0;
}

/*
 * The space as vmap_walk reports it, in address order: each area whole --
 * busy, reserved, a block, pooled (free), in flight (lazy) -- and the free
 * pages and the lazy ones (what no structure holds) as maximal runs:
 *   ..AA++~~~cc.  -> free, area, lazy, in flight, cached, free
 * (two flights' areas, or two pooled areas, that touch are two ranges).
 */
static size_t model_ranges(struct vmap_walk_range *out)
{
	static const int state[] = {
		[FREE] = VMAP_RANGE_FREE, [BUSY] = VMAP_RANGE_BUSY,
		[LAZY] = VMAP_RANGE_LAZY, [BLK] = VMAP_RANGE_BUSY,
		[CACHED] = VMAP_RANGE_FREE, [RSV] = VMAP_RANGE_BUSY,
		[FLT] = VMAP_RANGE_LAZY,
	};
	static const unsigned kind[] = {
		[FREE] = VMAP_KIND_FREE, [BUSY] = VMAP_KIND_AREA,
		[LAZY] = VMAP_KIND_LAZY, [BLK] = VMAP_KIND_BLOCK,
		[CACHED] = VMAP_KIND_CACHED, [RSV] = VMAP_KIND_RESERVED,
		[FLT] = VMAP_KIND_IN_FLIGHT,
	};
	size_t n = 0;

	for (uint64_t p = 0, q; p < m.npages; p = q) {
		int st = m.state[p];

		if (st == ABSENT) {	/* not the space's: skipped */
			q = p + 1;
			continue;
		}
		if (st == FREE || st == LAZY) {
			for (q = p + 1; q < m.npages && m.state[q] == st &&
			     !m.cut[q]; q++)
				;
		} else {
			EXPECT(m.len_at[p], "test bug: page %llu starts no "
			       "area", (ull)p);
			q = p + m.len_at[p];
		}
		out[n++] = (struct vmap_walk_range){ addr_of(p), addr_of(q),
						     state[st], kind[st] };
	}
	return n;
}

/* vmap_walk of [from, to): what overlaps the window, in `what`; lazy runs
 * clipped to it, the rest whole.  With stop, fn returns rv at the stop-th
 * range, which ends the walk and is what vmap_walk returns. */
void check_walk(uint64_t from, uint64_t to, unsigned what, size_t stop,
		int rv)
{
	static struct vmap_walk_range all[MAX_PAGES], exp[MAX_PAGES];
	size_t na = model_ranges(all), ne = 0;
	int ret, want = 0;

	for (size_t i = 0; i < na; i++) {
		struct vmap_walk_range r = all[i];

		if (r.end <= from || r.start >= to ||
		    !(what & (1u << r.state)))
			continue;
		if (r.kind == VMAP_KIND_LAZY) {
			r.start = r.start > from ? r.start : from;
			r.end = r.end < to ? r.end : to;
		}
		exp[ne++] = r;
	}
	if (stop && stop <= ne) {
		ne = stop;
		want = rv;
	}
	wlog.n = 0;
	wlog.stop = stop;
	wlog.rv = rv;
	ret = vmap_walk(space, from, to, what, walk_cb, NULL);
	EXPECT(ret == want, "vmap_walk([%#llx, %#llx), %#x) = %d, model %d",
	       (ull)from, (ull)to, what, ret, want);
	EXPECT(wlog.n == ne, "vmap_walk([%#llx, %#llx), %#x) reported %zu "
	       "ranges, model %zu", (ull)from, (ull)to, what, wlog.n, ne);
	for (size_t i = 0; i < ne; i++) {
		const struct vmap_walk_range *r = &wlog.r[i], *e = &exp[i];

		EXPECT(r->start == e->start && r->end == e->end &&
		       r->state == e->state && r->kind == e->kind,
		       "vmap_walk([%#llx, %#llx), %#x) range %zu: [%#llx, "
		       "%#llx) state %d kind %u; model [%#llx, %#llx) state "
		       "%d kind %u", (ull)from, (ull)to, what, i,
		       (ull)r->start, (ull)r->end, r->state, r->kind,
		       (ull)e->start, (ull)e->end, e->state, e->kind);
	}
}

/* The longest runs of free pages -- the tree's and the pools', joined --
 * now, and after a sync purge: lazy pages too, not those in flight. */
void check_largest(void)
{
	uint64_t now = 0, after = 0, run = 0, arun = 0;
	uint64_t got_now = SENTINEL_PAGES, got_after = SENTINEL_PAGES;
	int ret;

	for (uint64_t p = 0; p < m.npages; p++) {
		bool f = m.state[p] == FREE || m.state[p] == CACHED;

		if (m.cut[p])	/* runs end at a cut, as at a busy page */
			run = arun = 0;
		run = f ? run + 1 : 0;
		arun = f || m.state[p] == LAZY ? arun + 1 : 0;
		now = run > now ? run : now;
		after = arun > after ? arun : after;
	}
	ret = vmap_largest_free(space, &got_now, &got_after);
	EXPECT(ret == 0 && got_now == now && got_after == after,
	       "vmap_largest_free() = %d: now %llu, after a purge %llu; "
	       "model %llu, %llu", ret, (ull)got_now, (ull)got_after,
	       (ull)now, (ull)after);
}
