/* SPDX-License-Identifier: MIT */
/*
 * model_test.c - vmap against a reference model too simple to be wrong: one
 * state byte per page and a brute-force search of every candidate address.
 *
 * Random operations run on small range spaces (256..4096 pages, so that the
 * model can afford O(pages) per step).  After every one, the return value, the
 * address, the flushed ranges, the counters of vmap_stats() and vmap_check()
 * must agree with the model.  The first disagreement prints the seed, the
 * operation and its index, and stops.  VMAP_SEED replays a run,
 * VMAP_MODEL_OPS sets the number of operations.
 *
 * In the pictures, A and B are busy areas, + lazy pages and . free pages.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <string.h>
#include <vmap.h>

#include "test.h"

#ifndef __has_feature
#define __has_feature(x) 0	/* gcc < 14 defines __SANITIZE_*__ instead */
#endif
#if defined(__SANITIZE_THREAD__) || __has_feature(thread_sanitizer)
#define DEFAULT_OPS 50000	/* single-threaded: TSan only costs here */
#elif defined(__SANITIZE_ADDRESS__) || __has_feature(address_sanitizer)
#define DEFAULT_OPS 200000
#else
#define DEFAULT_OPS 1000000
#endif

#ifndef VMAP_XALLOC_NOPURGE
#define VMAP_XALLOC_NOPURGE 0	/* a header from before the flag */
#endif

#define MAX_PAGES 4096
#define FT_MISSES 16	/* "more than 16" misses: see vmap_alloc */
#define SENTINEL 0x5e5e5e5e5e5e5e5eull /* an out-parameter not written */

typedef unsigned long long ull;

enum { FREE, BUSY, LAZY };
enum { OP_ALLOC, OP_XALLOC, OP_BAD_ARGS, OP_FREE, OP_BAD_FREE, OP_PURGE };
static const char *const op_name[] = { "alloc", "xalloc", "bad xalloc",
				       "free", "bad free", "purge" };

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

static struct model {
	uint64_t base, end, ps, npages, lazy_max;
	uint64_t cap, purge_rate;	/* most busy pages; purges per 1000 */
	bool small, strict;		/* 1- or 2-page areas; STRICT space */
	uint8_t state[MAX_PAGES];
	uint32_t len_at[MAX_PAGES];	/* pages of the area starting here */
	uint32_t busy[MAX_PAGES];	/* first pages of the busy areas */
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
static uint64_t seed, rng, op_index;
static struct op cur;

static uint64_t rnd(uint64_t n)
{
	return n ? test_rand(&rng) % n : 0;
}

static bool chance(unsigned pct)
{
	return rnd(100) < pct;
}

static void fail(int line, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "model_test.c:%d: seed %#llx, op %llu (%s): size %#llx "
		"align %#llx phase %#llx nocross %#llx window [%#llx, %#llx) "
		"flags %#x addr %#llx how %#x variant %d; space [%#llx, %#llx) "
		"page %#llx lazy_max %llu strict %d:\n  ", line, (ull)seed,
		(ull)op_index, op_name[cur.kind], (ull)cur.size,
		(ull)cur.align, (ull)cur.phase, (ull)cur.nocross,
		(ull)cur.vstart, (ull)cur.vend, cur.flags, (ull)cur.addr,
		cur.how, cur.variant, (ull)m.base, (ull)m.end, (ull)m.ps,
		(ull)m.lazy_max, m.strict);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
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
 */
static void model_purge(bool force)
{
	bool in_run = false;

	if (!m.st.lazy_areas && !force)
		return;
	m.nexp = 0;
	for (uint64_t p = 0; p < m.npages; p++) {
		if (m.state[p] == LAZY && !in_run)
			m.exp[m.nexp++].start = addr_of(p);
		if ((in_run = m.state[p] == LAZY)) {
			m.exp[m.nexp - 1].end = addr_of(p + 1);
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

static int model_alloc(const struct op *o, uint64_t *addr)
{
	struct fit f;
	uint64_t p;
	int err = model_args(o, &f);

	if (err)
		return err;
	if (!model_find(&f, &p)) {
		/* A miss purges and retries where that can help: something
		 * is lazy, and the window is long enough.  NOPURGE: never. */
		bool retry = !f.nopurge && m.st.lazy_pages &&
			     f.hi - f.lo >= f.size;

		if (retry) {
			m.st.purge_retries++;
			model_purge(false);
		}
		if (!retry || !model_find(&f, &p)) {
			m.st.alloc_failures++;
			return -ENOSPC;
		}
	}
	m.len_at[p] = f.size / m.ps;
	memset(&m.state[p], BUSY, m.len_at[p]);
	m.busy[m.st.busy_areas++] = p;
	m.st.busy_pages += m.len_at[p];
	m.st.allocs++;
	*addr = addr_of(p);
	return 0;
}

static int model_free(uint64_t addr)
{
	uint64_t p = (addr - m.base) / m.ps;
	size_t i = 0;

	if (addr < m.base || addr >= m.end || (addr - m.base) % m.ps ||
	    m.state[p] != BUSY || !m.len_at[p])
		return -ENOENT;
	while (m.busy[i] != p)
		i++;
	m.busy[i] = m.busy[--m.st.busy_areas];
	memset(&m.state[p], LAZY, m.len_at[p]);
	m.st.busy_pages -= m.len_at[p];
	m.st.lazy_pages += m.len_at[p];
	m.st.lazy_areas++;
	m.st.frees++;
	/* STRICT purges (SYNC) at every free; otherwise past the threshold,
	 * a TRY that nothing contends here. */
	if (m.strict || m.st.lazy_pages > m.lazy_max)
		model_purge(false);
	return 0;
}

/* ---- comparing ---- */

#define STATS(X)                                                            \
	X(total_pages) X(busy_areas) X(busy_pages) X(free_pages)            \
	X(free_blocks) X(largest_free_pages) X(lazy_areas) X(lazy_pages)    \
	X(lazy_max_pages) X(allocs) X(frees) X(alloc_failures)              \
	X(purge_retries) X(purges) X(flushes) X(ranges_flushed)             \
	X(areas_purged) X(purge_max_areas) X(release_path)                  \
	X(release_syscalls) X(release_errors)
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

	switch (o->variant = (int)rnd(4)) {
	case 0: /* inside a busy area: AA[A]A */
		if (!m.st.busy_areas)
			break;
		q = m.busy[rnd(m.st.busy_areas)];
		return addr_of(q) + 1 + rnd(m.len_at[q] * m.ps - 1);
	case 1: /* a lazy area's start: a double free */
	case 2: /* a page never allocated, or already back */
		for (q = 0; q < m.npages; q++, p = (p + 1) % m.npages)
			if (o->variant == 1 ? m.state[p] == LAZY && m.len_at[p]
					    : m.state[p] == FREE)
				return addr_of(p);
		break;
	}
	return chance(50) ? m.end + rnd(-m.end) : rnd(m.base + 1) - 1;
}

static void step(struct op *o, unsigned p_alloc)
{
	uint64_t addr = SENTINEL, want = SENTINEL, r = rnd(1000);
	int ret, exp;

	memset(o, 0, sizeof(*o));
	o->kind = r < 25 ? OP_BAD_FREE : r < 35 ? OP_BAD_ARGS :
		  r < 35 + m.purge_rate ? OP_PURGE :
		  m.st.busy_areas &&
		  (!chance(p_alloc) || m.st.busy_pages > m.cap) ? OP_FREE :
		  chance(60) ? OP_ALLOC : OP_XALLOC;
	switch (o->kind) {
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
			  addr_of(m.busy[rnd(m.st.busy_areas)]);
		ret = vmap_free(space, o->addr);
		exp = model_free(o->addr);
		EXPECT(o->kind == OP_FREE || exp == -ENOENT,
		       "test bug: the bad free is valid");
		break;
	default:
		/* TRY or SYNC, maybe FORCE_FLUSH (variant 1: unmap_aliases,
		 * SYNC | FORCE_FLUSH); variant 0: an unknown bit, -EINVAL. */
		o->how = (unsigned)rnd(4);
		o->variant = (int)rnd(10);
		if (o->variant == 0)
			o->how |= 4u << rnd(29);
		ret = o->variant == 1 ? vmap_unmap_aliases(space)
				      : vmap_purge(space, o->how);
		exp = o->variant == 0 ? -EINVAL : 0;
		if (!exp)
			model_purge(o->variant == 1 ||
				    (o->how & VMAP_PURGE_FORCE_FLUSH));
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
	m.npages = m.small ? 2048 + rnd(2049) : 256 + rnd(769);
	m.cap = m.small ? 512 : m.npages;
	m.lazy_max = m.small ? 4 * MAX_PAGES : chance(80) ? 16 + rnd(285)
							  : 1 + rnd(4);
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
	err = vmap_space_create(&cfg, &space);
	EXPECT(err == 0, "vmap_space_create() = %d", err);
}

int main(void)
{
	const char *env = getenv("VMAP_MODEL_OPS");
	uint64_t total = env ? strtoull(env, NULL, 0) : DEFAULT_OPS;
	uint64_t spaces = 0, allocs = 0, fails = 0, batch = 0;
	struct timespec t0, t1;

	seed = rng = test_seed("model_test");
	fflush(stdout);		/* the seed before any failure on stderr */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (; op_index < total; spaces++) {
		uint64_t n;
		unsigned p_alloc = 50;

		new_space();
		/* About 20 spaces a run; fewer ops on small-area spaces,
		 * which are slow to check (thousands of areas). */
		n = 1 + total / 40 + rnd(total / 20);
		if (m.small)
			n = n / 4 + 1;
		for (uint64_t i = 0; i < n && op_index < total; i++) {
			uint64_t flushes_before = m.st.flushes;

			/* Alternate filling and draining, so that both full
			 * spaces (-ENOSPC, purge and retry) and emptying
			 * ones are common. */
			if (i % 2048 == 0)
				p_alloc = 10 + (unsigned)rnd(70);
			step(&cur, p_alloc);
			check_state(flushes_before);
			op_index++;
		}
		allocs += m.st.allocs;
		fails += m.st.alloc_failures;
		if (m.st.purge_max_areas > batch)
			batch = m.st.purge_max_areas;
	}
	vmap_space_destroy(space);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	printf("model_test: %llu ops on %llu spaces in %.2f s: %llu allocs, "
	       "%llu -ENOSPC, largest purge %llu areas\n", (ull)op_index,
	       (ull)spaces, (double)(t1.tv_sec - t0.tv_sec) +
	       (double)(t1.tv_nsec - t0.tv_nsec) / 1e9, (ull)allocs,
	       (ull)fails, (ull)batch);
	return test_summary("model_test");
}
