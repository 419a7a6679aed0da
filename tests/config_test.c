/* SPDX-License-Identifier: MIT */
/*
 * config_test.c - the edges of every value vmap accepts (issue 11), through
 * vmap.h alone:
 *
 *   A. configs (finding 6): every page size 2^0..2^63 against every kind of
 *      block_pages, base and length at their limits, lazy_max_pages and
 *      pool_max_pages up to UINT64_MAX, every cfg->size.  A config the header
 *      refuses must get its errno and leave *out alone; one it accepts must
 *      work: areas inside the space, aligned, apart, every counter adding up,
 *      vmap_check clean after every step.
 *   B. counts (finding 7): vmap_ram_free and vmap_unmap_ram with any count
 *      but the one allocated fail with -EINVAL and change nothing.
 *   C. requests no space could meet (finding 9): -ENOSPC at once, with no
 *      purge and no flush, while lazy areas wait.
 *   D. vmap_dump (findings 8, 9): ranges by address covering the space
 *      exactly, then the per-CPU block lines; well-formed under churn.
 *   E. vmap_vmap offsets (finding 9): EINVAL where the mapping's end would
 *      pass INT64_MAX, not mmap's EOVERFLOW.
 *
 * The test runs pinned to one CPU (but for the churn of D), so that the vmap
 * blocks of a space come from one queue and their places can be predicted.
 * Give test names as arguments to run only those.
 */
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "vmap.h"
#include "test.h"

#define PG 4096ull
#define BASE 0x40000000ull
#define TOP (1ull << 63)

/* A space pointer no create may write on failure. */
static char sentinel_obj;
#define SENTINEL ((vmap_space *)&sentinel_obj)
#define NOADDR 0x5e5e5e5e5e5e5e5eull

/* Print the first few failures of a sweep in full, count the rest. */
static int quiet_budget;

static void check_quiet(bool ok, const char *fmt, ...)
{
	va_list ap;

	test_checks++;
	if (ok)
		return;
	test_failures++;
	if (quiet_budget-- <= 0)
		return;
	va_start(ap, fmt);
	fprintf(stderr, "config_test.c: CHECK failed: ");
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

/* ---- the flush callback: counts, and checks the header's promises ---- */

struct fctx {
	uint64_t calls, ranges, bad;
	uint64_t base, end, ps;
};

static void flush_cb(void *ctx, const struct vmap_range *r, size_t n)
{
	struct fctx *f = ctx;

	f->calls++;
	f->ranges += n;
	/* Sorted, coalesced, page-aligned, inside the space. */
	for (size_t i = 0; i < n; i++)
		if (r[i].start >= r[i].end || r[i].start < f->base ||
		    r[i].end > f->end || ((r[i].start | r[i].end) & (f->ps - 1)) ||
		    (i && r[i - 1].end >= r[i].start))
			f->bad++;
}

/* ---- a space and what the test knows of it ---- */

#define MAXLIVE 1200

struct area {
	uint64_t a, len;
	bool piece; /* from vmap_ram_alloc */
};

struct world {
	vmap_space *s;
	struct vmap_config c;
	uint64_t base, end, ps, bp;
	bool memory;
	struct fctx fc;
	struct area live[MAXLIVE];
	int n;
	int fail0;    /* test_failures when the space was made */
	bool told;    /* the config was printed with its first failure */
	const char *what;
};

static struct world W; /* one at a time; too big for the stack */

static void tell(struct world *w)
{
	if (w->told || test_failures == w->fail0)
		return;
	w->told = true;
	fprintf(stderr,
		"  ^ in %s: size %zu base %#llx length %#llx page_size %#llx "
		"lazy_max %#llx pool_max %#llx block_pages %llu flags %#x\n",
		w->what, w->c.size, (unsigned long long)w->c.base,
		(unsigned long long)w->c.length,
		(unsigned long long)w->c.page_size,
		(unsigned long long)w->c.lazy_max_pages,
		(unsigned long long)w->c.pool_max_pages,
		(unsigned long long)w->c.block_pages, w->c.flags);
}

/*
 * vmap_check, the flush callback's findings, and the pages adding up (no
 * other thread runs).  False once this space has failed anything, so that a
 * broken config stops at its first failure instead of cascading.
 */
static bool settle(struct world *w)
{
	struct vmap_stats st = test_stats(w->s);
	uint64_t sum = st.busy_pages + st.lazy_pages + st.free_pages;

	CHECK_EQ(vmap_check(w->s), 0);
	CHECK_EQ(w->fc.bad, 0);
	if (w->memory)
		sum += st.pool_pages;
#ifdef VMAP_QUARANTINE_RETRY
	sum += st.quarantined_pages;
#endif
	CHECK_EQ(sum, st.total_pages);
	tell(w);
	return test_failures == w->fail0;
}

/* A space from c (a range space gets the counting flush, set in *c, which
 * may be larger than the struct).  Returns create's result; on failure *out
 * must not have been touched. */
static int world_make(struct world *w, struct vmap_config *c,
		      const char *what)
{
	int rc;

	memset(w, 0, sizeof(*w));
	w->what = what;
	w->memory = c->flags & VMAP_SPACE_MEMORY;
	if (!w->memory) {
		c->flush = flush_cb;
		c->flush_ctx = &w->fc;
	}
	w->c = *c;
	w->fc.base = w->base = c->base;
	/* Ending at 2^64: a page short (the header's length). */
	w->fc.end = w->end = c->base + c->length ? c->base + c->length
						 : 0 - c->page_size;
	w->fc.ps = w->ps = c->page_size;
	w->bp = c->block_pages ? c->block_pages : 1024;
	if (c->size <= offsetof(struct vmap_config, block_pages))
		w->bp = 1024;
	w->fail0 = test_failures;
	w->s = SENTINEL;
	rc = vmap_space_create(c, &w->s);
	if (rc) {
		CHECK(w->s == SENTINEL);
		w->s = NULL;
	}
	return rc;
}

static bool inside(const struct world *w, uint64_t a, uint64_t len)
{
	return len && a >= w->base && a <= w->end && len <= w->end - a &&
	       !(a & (w->ps - 1));
}

/* A new area: inside the space, page-aligned, overlapping no live one. */
static void track(struct world *w, uint64_t a, uint64_t len, bool piece)
{
	CHECK(inside(w, a, len));
	for (int i = 0; i < w->n; i++) {
		const struct area *x = &w->live[i];
		bool apart = a >= x->a + x->len || x->a >= a + len;

		if (!apart)
			fprintf(stderr, "  %#llx+%#llx overlaps %#llx+%#llx\n",
				(unsigned long long)a, (unsigned long long)len,
				(unsigned long long)x->a,
				(unsigned long long)x->len);
		CHECK(apart);
	}
	REQUIRE(w->n < MAXLIVE);
	w->live[w->n++] = (struct area){ a, len, piece };
}

static void untrack(struct world *w, int i)
{
	w->live[i] = w->live[--w->n];
}

/* Free every tracked area with the right call, then purge: all free. */
static bool drain(struct world *w)
{
	struct vmap_stats st;

	while (w->n) {
		struct area *x = &w->live[w->n - 1];

		if (x->piece)
			CHECK_EQ(vmap_ram_free(w->s, x->a, x->len), 0);
		else
			CHECK_EQ(vmap_free(w->s, x->a), 0);
		untrack(w, w->n - 1);
		if (!settle(w))
			return false;
	}
	CHECK_EQ(vmap_purge(w->s, VMAP_PURGE_SYNC), 0);
	st = test_stats(w->s);
	CHECK_EQ(st.free_pages, st.total_pages);
	CHECK_EQ(st.busy_areas, 0);
	CHECK_EQ(st.lazy_pages, 0);
	CHECK_EQ(st.blocks, 0);
	return settle(w);
}

/* The lowest a >= lo with a % align == 0 and a + size <= end. */
static bool low_fit(uint64_t lo, uint64_t end, uint64_t size, uint64_t align,
		    uint64_t *a)
{
	uint64_t r = lo;

	if (r & (align - 1)) {
		if ((r | (align - 1)) == UINT64_MAX)
			return false;
		r = (r | (align - 1)) + 1;
	}
	if (r > end || end - r < size)
		return false;
	*a = r;
	return true;
}

/* The highest such a >= lo. */
static bool high_fit(uint64_t lo, uint64_t end, uint64_t size, uint64_t align,
		     uint64_t *a)
{
	uint64_t r;

	if (end - lo < size)
		return false;
	r = (end - size) & ~(align - 1);
	if (r < lo)
		return false;
	*a = r;
	return true;
}

/*
 * Exercise a range space the config sweep made: it is empty and quiescent.
 *   1. one page at every alignment, lowest and highest: exactly where the
 *      empty space puts it, or -ENOSPC if no aligned page is in the space;
 *   2. sizes around the space's own length;
 *   3. vmap blocks: pieces of 1, 3 and 64 pages in the first block (or
 *      -ENOSPC if no block fits), a 65-page area from the tree, and a second
 *      block once the first is full;
 *   4. a run of one-page areas from the bottom, freed lazily;
 *   and after each, everything freed and purged leaves the space all free.
 */
static void exercise(struct world *w)
{
	static const uint64_t extra_aligns[] = { 0, 1, 1ull << 32, 1ull << 62,
						 TOP };
	vmap_space *s = w->s;
	uint64_t ps = w->ps, base = w->base, end = w->end, len = end - base;
	uint64_t total = len / ps, aligns[16], sizes[12], want = 0, addr;
	struct vmap_stats st = test_stats(s);
	size_t na = 0, ns = 0;
	int rc;

	CHECK_EQ(st.total_pages, total);
	CHECK_EQ(st.free_pages, total);
	CHECK_EQ(st.free_blocks, 1);
	CHECK_EQ(st.largest_free_pages, total);
	CHECK_EQ(st.block_pages, w->bp);
	CHECK_EQ(st.pool_max_pages, 0); /* range spaces have no pool */
	if (w->c.lazy_max_pages)
		CHECK_EQ(st.lazy_max_pages, w->c.lazy_max_pages);
	if (!settle(w))
		return;

	/* 1. Alignments. */
	for (size_t i = 0; i < sizeof(extra_aligns) / sizeof(*extra_aligns); i++)
		aligns[na++] = extra_aligns[i];
	aligns[na++] = ps / 2;
	aligns[na++] = ps;
	if (ps < TOP)
		aligns[na++] = 2 * ps;
	if (ps < TOP / 2)
		aligns[na++] = 4 * ps;
	for (size_t i = 0; i < na; i++) {
		for (int top = 0; top < 2; top++) {
			uint64_t al = aligns[i] > ps ? aligns[i] : ps;
			bool fits = top ? high_fit(base, end, ps, al, &want)
					: low_fit(base, end, ps, al, &want);

			addr = NOADDR;
			rc = vmap_xalloc(s, ps, aligns[i], 0, 0, 0, UINT64_MAX,
					 top ? VMAP_XALLOC_TOPDOWN : 0, &addr);
			CHECK_EQ(rc, fits ? 0 : -ENOSPC);
			if (!rc) {
				CHECK_EQ(addr, want);
				CHECK(inside(w, addr, ps));
				CHECK_EQ(vmap_free(s, addr), 0);
				CHECK_EQ(vmap_purge(s, VMAP_PURGE_SYNC), 0);
			} else {
				CHECK_EQ(addr, NOADDR);
			}
			if (!settle(w))
				return;
		}
	}

	/* 2. Sizes around the length: the whole space fits at base, a byte
	 * more does not, a size whose rounding overflows is bad input. */
	sizes[ns++] = 1;
	sizes[ns++] = ps;
	if (ps > 1)
		sizes[ns++] = ps - 1;
	sizes[ns++] = len;
	sizes[ns++] = len - 1 ? len - 1 : 1;
	if (len < UINT64_MAX)
		sizes[ns++] = len + 1;
	if (len <= UINT64_MAX - ps)
		sizes[ns++] = len + ps;
	sizes[ns++] = UINT64_MAX - ps + 1;
	if (ps > 1)
		sizes[ns++] = UINT64_MAX - ps + 2;
	sizes[ns++] = UINT64_MAX;
	for (size_t i = 0; i < ns; i++) {
		uint64_t sz = sizes[i], r = 0;
		int expect;

		if (sz > UINT64_MAX - (ps - 1))
			expect = -EINVAL;
		else if ((r = (sz + ps - 1) & ~(ps - 1)) > len)
			expect = -ENOSPC;
		else
			expect = 0;
		addr = NOADDR;
		rc = vmap_alloc(s, sz, 0, 0, UINT64_MAX, &addr);
		CHECK_EQ(rc, expect);
		if (!rc) {
			CHECK_EQ(addr, base);
			CHECK_EQ(test_stats(s).busy_pages, r / ps);
			CHECK_EQ(vmap_free(s, addr), 0);
			CHECK_EQ(vmap_purge(s, VMAP_PURGE_SYNC), 0);
		} else {
			CHECK_EQ(addr, NOADDR);
		}
		if (!settle(w))
			return;
	}

	/* 3. vmap blocks.  A block is bp pages aligned to its size: the first
	 * goes at the lowest such place, the second right after it. */
	{
		static const uint64_t piece[] = { 1, 3, 64 };
		uint64_t bsz = 0, a0 = 0;
		bool b1 = false, b2 = false;

		if (ps <= TOP / w->bp) {
			bsz = w->bp * ps;
			b1 = low_fit(base, end, bsz, bsz, &a0);
			b2 = b1 && (end - a0) / bsz >= 2;
		}
		for (size_t i = 0; i < 3; i++) {
			uint64_t p = piece[i];

			if (ps > UINT64_MAX / p)
				continue;
			addr = NOADDR;
			rc = vmap_ram_alloc(s, p * ps, &addr);
			CHECK_EQ(rc, b1 ? 0 : -ENOSPC);
			if (!rc) {
				bool in = addr >= a0 && addr - a0 <= bsz &&
					  p * ps <= bsz - (addr - a0);

				if (!in)
					fprintf(stderr, "  a %llu-page piece at "
							"%#llx, not in the "
							"block at %#llx+%#llx\n",
						(unsigned long long)p,
						(unsigned long long)addr,
						(unsigned long long)a0,
						(unsigned long long)bsz);
				CHECK(in);
				track(w, addr, p * ps, true);
			} else {
				CHECK_EQ(addr, NOADDR);
			}
			if (!settle(w))
				return;
		}
		CHECK_EQ(test_stats(s).blocks, b1);

		/* More than VMAP_RAM_MAX_PAGES: an area from the tree, the
		 * lowest that fits around the block. */
		if (total >= 65 && ps <= UINT64_MAX / 65) {
			uint64_t sz = 65 * ps;
			bool fits;

			if (!b1)
				fits = low_fit(base, end, sz, ps, &want);
			else if (a0 - base >= sz)
				fits = true, want = base;
			else
				fits = low_fit(a0 + bsz, end, sz, ps, &want);
			addr = NOADDR;
			rc = vmap_ram_alloc(s, sz, &addr);
			CHECK_EQ(rc, fits ? 0 : -ENOSPC);
			if (!rc) {
				CHECK_EQ(addr, want);
				track(w, addr, sz, true);
				if (!settle(w))
					return;
				CHECK_EQ(vmap_ram_free(s, addr, sz), 0);
				untrack(w, w->n - 1);
				CHECK_EQ(vmap_purge(s, VMAP_PURGE_SYNC), 0);
			}
			if (!settle(w))
				return;
		}

		/* Fill the first block with 64-page pieces: the next one
		 * makes a second block, if the space has room for it. */
		if (b1 && w->bp <= 1024) {
			for (uint64_t i = 0; i <= w->bp / 64 &&
					     test_stats(s).blocks_created < 2;
			     i++) {
				addr = NOADDR;
				rc = vmap_ram_alloc(s, 64 * ps, &addr);
				if (rc) {
					CHECK_EQ(rc, -ENOSPC);
					CHECK(!b2);
					CHECK_EQ(addr, NOADDR);
					break;
				}
				/* In the first block, or the second. */
				CHECK(addr >= a0 &&
				      (addr - a0 <= bsz - 64 * ps ||
				       (b2 && addr - a0 >= bsz &&
					addr - a0 - bsz <= bsz - 64 * ps)));
				track(w, addr, 64 * ps, true);
				if (!settle(w))
					return;
			}
			CHECK_EQ(test_stats(s).blocks_created, b2 ? 2 : 1);
			if (!settle(w))
				return;
		}
		if (!drain(w))
			return;
	}

	/* 4. One-page areas from the bottom, freed lazily, then purged. */
	for (uint64_t i = 0; i < 8 && i < total; i++) {
		addr = NOADDR;
		CHECK_EQ(vmap_alloc(s, ps, 0, 0, UINT64_MAX, &addr), 0);
		CHECK_EQ(addr, base + i * ps);
		track(w, addr, ps, false);
		if (!settle(w))
			return;
	}
	drain(w);
}

/* ---- A. configs ---- */

#define BLOCKS_VALID(bp) ((bp) >= 128 && (bp) <= 65536 && !((bp) & ((bp)-1)))

/* What vmap_space_create must say to a range-space config of full size. */
static int expect_create(const struct vmap_config *c)
{
	uint64_t ps = c->page_size;
	uint64_t bp = c->block_pages ? c->block_pages : 1024;

	if (!ps || (ps & (ps - 1)) || ((c->base | c->length) & (ps - 1)) ||
	    !c->length || c->length - 1 > UINT64_MAX - c->base ||
	    (c->base + c->length == 0 && c->length == ps) ||
	    (c->flags & ~VMAP_SPACE_STRICT) || !BLOCKS_VALID(bp) ||
	    ps > TOP / bp)
		return -EINVAL;
	return 0;
}

/* Create, compare with the header, exercise whatever was accepted. */
static void sweep_one(struct vmap_config *c, const char *what)
{
	int expect = expect_create(c), rc = world_make(&W, c, what);

	CHECK_EQ(rc, expect);
	tell(&W);
	if (!rc) {
		/* Accepted against the header or not: it must work. */
		W.fail0 = test_failures;
		W.told = false;
		exercise(&W);
	}
	tell(&W);
	vmap_space_destroy(W.s);
}

/* Finding 6: every page size against every kind of block_pages, the space
 * low, at an odd page, and at the very top.  The old code took
 * block_pages * page_size past 2^64 (page 2^54 with the default 1024 pages,
 * 2^57 with 128) and carved blocks of size 0 at address 0. */
static void test_config_sweep(void)
{
	static const uint64_t blocks[] = { 0,	 64,	127,   128,   129,
					   256,	 1024,	65536, 65537, 131072 };
	struct vmap_config c;
	uint64_t bad[130];
	size_t nb = 0;

	for (int k = 0; k < 64; k++) {
		uint64_t ps = 1ull << k;
		uint64_t maxpages = (0 - ps) / ps; /* length <= 2^64 - ps */
		uint64_t n = maxpages < (1ull << 18) ? maxpages : 1ull << 18;

		for (size_t b = 0; b < sizeof(blocks) / sizeof(*blocks); b++) {
			for (int place = 0; place < 3; place++) {
				uint64_t np = n;

				vmap_config_init(&c);
				c.page_size = ps;
				c.block_pages = blocks[b];
				c.lazy_max_pages = 1ull << 40;
				if (place == 1) { /* at an odd page */
					if (maxpages < 4)
						continue;
					np = n < maxpages - 3 ? n : maxpages - 3;
					c.base = 3 * ps;
				} else if (place == 2) { /* ending at 2^64 - ps */
					c.base = 0 - ps - np * ps;
				}
				c.length = np * ps;
				sweep_one(&c, "page size sweep");
			}
		}
	}

	/* Page sizes that are not powers of two. */
	bad[nb++] = 0;
	bad[nb++] = 3;
	bad[nb++] = 3000;
	for (int k = 1; k < 64; k++) {
		bad[nb++] = (1ull << k) + 1;
		bad[nb++] = (1ull << k) - 1 + (1ull << k); /* 2^(k+1) - 1 */
	}
	for (size_t i = 0; i < nb; i++) {
		if (bad[i] == 1)
			continue;
		vmap_config_init(&c);
		c.page_size = bad[i];
		c.length = bad[i] && bad[i] < TOP ? 2 * bad[i] : 8192;
		sweep_one(&c, "page size not a power of two");
	}
}

/* Finding 6: base and length around their limits, for every page size
 * (and for the largest, with the 128-page blocks that let them be). */
static void test_base_length(void)
{
	struct vmap_config c;

	for (int k = 0; k < 64; k++) {
		uint64_t ps = 1ull << k;
		uint64_t bp = k <= 53 ? 0 : 128;
		struct {
			uint64_t base, length;
		} v[16];
		size_t n = 0;

		v[n].base = 0, v[n++].length = ps;		/* one page */
		v[n].base = 0, v[n++].length = 0 - ps;		/* the most */
		v[n].base = ps, v[n++].length = 0 - 2 * ps;	/* the most */
		v[n].base = 0 - 2 * ps, v[n++].length = ps;	/* the top page */
		v[n].base = 0 - ps, v[n++].length = ps;		/* ends at 2^64 */
		v[n].base = 0, v[n++].length = 0;		/* empty */
		v[n].base = UINT64_MAX - ps, v[n++].length = ps; /* exactly */
		v[n].base = UINT64_MAX - 2 * ps, v[n++].length = 2 * ps;
		v[n].base = 0 - 3 * ps, v[n++].length = 3 * ps; /* one over */
		v[n].base = ps, v[n++].length = 0 - ps;		/* one over */
		if (ps > 1) {
			v[n].base = ps / 2, v[n++].length = ps; /* unaligned */
			v[n].base = 0, v[n++].length = ps + ps / 2;
			v[n].base = 1, v[n++].length = ps;
		}
		v[n].base = 2 * ps, v[n++].length = UINT64_MAX - 3 * ps + 1;
		for (size_t i = 0; i < n; i++) {
			vmap_config_init(&c);
			c.page_size = ps;
			c.block_pages = bp;
			c.base = v[i].base;
			c.length = v[i].length;
			c.lazy_max_pages = 1000;
			sweep_one(&c, "base/length sweep");
		}
	}
}

/* Finding 6: lazy_max_pages at every edge.  A free purges exactly when it
 * takes the lazy pages past the threshold; at 2^63 and above the old
 * `2 * lazy_max_pages` wrapped to a tiny number and every free purged. */
static void test_lazy_max(void)
{
	static const uint64_t lazy[] = { 0,	  1,	    2,
					 1ull << 62, TOP - 1, TOP,
					 TOP + 1, UINT64_MAX };
	static const int shifts[] = { 0, 12, 20, 40, 53 };
	struct vmap_config c;

	for (size_t k = 0; k < sizeof(shifts) / sizeof(*shifts); k++) {
		for (size_t l = 0; l < sizeof(lazy) / sizeof(*lazy); l++) {
			for (int strict = 0; strict < 2; strict++) {
				uint64_t ps = 1ull << shifts[k];
				uint64_t a[64], lz = 0, used = 0, purges = 0, max;
				struct vmap_stats st;

				vmap_config_init(&c);
				c.page_size = ps;
				c.base = 16 * ps;
				c.length = 256 * ps;
				c.lazy_max_pages = lazy[l];
				c.flags = strict ? VMAP_SPACE_STRICT : 0;
				if (world_make(&W, &c, "lazy_max sweep")) {
					CHECK(0);
					tell(&W);
					continue;
				}
				max = test_stats(W.s).lazy_max_pages;
				if (lazy[l])
					CHECK_EQ(max, lazy[l]);
				else if (ps <= (32ull << 20)) {
					long cpus = sysconf(_SC_NPROCESSORS_ONLN);
					uint64_t fls = 0;

					for (; cpus > 0; cpus >>= 1)
						fls++;
					CHECK_EQ(max, fls * ((32ull << 20) / ps));
				}
				for (int i = 0; i < 64; i++) {
					a[i] = NOADDR;
					CHECK_EQ(vmap_alloc(W.s, (1 + i % 3) * ps, 0,
							    0, UINT64_MAX, &a[i]),
						 0);
					track(&W, a[i], (1 + i % 3) * ps, false);
					used += 1 + i % 3;
				}
				int i;

				for (i = 0; i < 64; i++) {
					CHECK_EQ(vmap_free(W.s, a[i]), 0);
					lz += 1 + i % 3;
					if (strict || lz > max) {
						purges++;
						lz = 0;
					}
					st = test_stats(W.s);
					CHECK_EQ(st.purges, purges);
					CHECK_EQ(st.lazy_pages, lz);
					CHECK_EQ(W.fc.calls, purges);
					if (!settle(&W))
						break;
				}
				while (++i < 64) /* after a failure */
					vmap_free(W.s, a[i]);
				W.n = 0;
				if (!strict && lazy[l] >= TOP)
					CHECK_EQ(test_stats(W.s).purges, 0);
				/* Room only once the lazy pages are back: the
				 * allocation purges. */
				if (!strict && lz == used) {
					uint64_t x = NOADDR;

					CHECK_EQ(test_stats(W.s).free_pages,
						 256 - used);
					CHECK_EQ(vmap_alloc(W.s,
							    (257 - used) * ps, 0,
							    0, UINT64_MAX, &x),
						 0);
					CHECK_EQ(x, c.base);
					CHECK_EQ(test_stats(W.s).purge_retries, 1);
					CHECK_EQ(test_stats(W.s).purges, 1);
					CHECK_EQ(vmap_free(W.s, x), 0);
				}
				drain(&W);
				tell(&W);
				vmap_space_destroy(W.s);
			}
		}
	}
}

/* Finding 6: pool_max_pages at its edges, in range spaces (no pool: the
 * stats say 0) and memory spaces (see test_memory_edges). */
static void test_pool_max_range(void)
{
	static const uint64_t pool[] = { 0, 1, 1024, TOP, UINT64_MAX };
	struct vmap_config c;

	for (size_t i = 0; i < sizeof(pool) / sizeof(*pool); i++) {
		vmap_config_init(&c);
		c.base = BASE;
		c.length = 4096 * PG;
		c.pool_max_pages = pool[i];
		sweep_one(&c, "pool_max_pages, range space");
	}
}

/* Is `size` inside a field of struct vmap_config (not at either end)? */
static bool inside_field(size_t size)
{
	static const size_t f[][2] = {
#define F(m)                                                                 \
	{ offsetof(struct vmap_config, m),                                   \
	  offsetof(struct vmap_config, m) + sizeof(((struct vmap_config *)0)->m) }
		F(size),       F(base),	     F(length),	      F(page_size),
		F(lazy_max_pages), F(flush), F(flush_ctx),    F(flags),
		F(pool_max_pages), F(block_pages),
#undef F
	};

	for (size_t i = 0; i < sizeof(f) / sizeof(*f); i++)
		if (size > f[i][0] && size < f[i][1])
			return true;
	return false;
}

static bool at_boundary(size_t size)
{
	static const size_t ends[] = {
		offsetof(struct vmap_config, flags) + sizeof(unsigned),
		offsetof(struct vmap_config, pool_max_pages),
		offsetof(struct vmap_config, block_pages),
		sizeof(struct vmap_config),
	};

	for (size_t i = 0; i < sizeof(ends) / sizeof(*ends); i++)
		if (size == ends[i])
			return true;
	return false;
}

/*
 * Finding 6: every cfg->size from 0 to sizeof + 16.  The base fields are
 * those of the first published struct (size .. flags).  Below them, or
 * ending inside a field: -EINVAL.  At a field boundary: accepted, and the
 * fields past the size get their defaults (a block_pages of 3 there is not
 * read).  Larger: accepted if the extra bytes are zero, else -E2BIG -- for
 * a nonzero byte at each place.  Sizes ending in the padding after flags
 * are neither inside a field nor at a boundary: not asserted.
 */
static void test_config_size(void)
{
	const size_t sz = sizeof(struct vmap_config);
	const size_t base_end = offsetof(struct vmap_config, flags) +
				sizeof(unsigned);
	union {
		struct vmap_config c;
		unsigned char b[sizeof(struct vmap_config) + 32];
	} u;

	for (int garbage = 0; garbage < 2; garbage++) {
		for (size_t size = 0; size <= sz + 16; size++) {
			int expect, rc;

			memset(&u, 0, sizeof(u));
			vmap_config_init(&u.c);
			u.c.size = size;
			u.c.base = BASE;
			u.c.length = 256 * PG;
			u.c.lazy_max_pages = 1000;
			if (garbage)
				u.c.block_pages = 3; /* bad, if it is read */
			if (size < base_end || inside_field(size))
				expect = -EINVAL;
			else if (garbage &&
				 size > offsetof(struct vmap_config, block_pages))
				expect = -EINVAL;
			else if (size >= sz || at_boundary(size))
				expect = 0;
			else
				expect = 1; /* the padding: either */
			rc = world_make(&W, &u.c, "cfg->size sweep");
			if (expect == 1)
				CHECK(rc == 0 || rc == -EINVAL);
			else
				CHECK_EQ(rc, expect);
			if (!rc) {
				CHECK_EQ(test_stats(W.s).block_pages, 1024);
				exercise(&W);
			}
			tell(&W);
			vmap_space_destroy(W.s);
		}
	}

	/* Larger sizes with one nonzero byte past the struct: -E2BIG. */
	for (size_t size = sz + 1; size <= sz + 16; size++) {
		for (size_t at = sz; at < size; at++) {
			memset(&u, 0, sizeof(u));
			vmap_config_init(&u.c);
			u.c.size = size;
			u.c.base = BASE;
			u.c.length = 256 * PG;
			u.b[at] = 0x80;
			CHECK_EQ(world_make(&W, &u.c, "cfg->size, nonzero extra"),
				 -E2BIG);
			tell(&W);
			vmap_space_destroy(W.s);
		}
	}
}

/* ---- memory spaces ---- */

static int mem_make(struct world *w, uint64_t length, unsigned flags,
		    uint64_t lazy_max, uint64_t pool_max, const char *what)
{
	struct vmap_config c;
	char *buf = NULL;
	size_t len = 0;
	FILE *f;
	unsigned long long a, b;
	int rc;

	vmap_config_init(&c);
	c.page_size = (uint64_t)sysconf(_SC_PAGESIZE);
	/* No purger: these checks compare stats before and after a call,
	 * and its timer would change them in between. */
	c.flags = VMAP_SPACE_MEMORY | VMAP_SPACE_NOPURGER | flags;
	c.length = length;
	c.lazy_max_pages = lazy_max;
	c.pool_max_pages = pool_max;
	rc = world_make(w, &c, what);
	if (rc)
		return rc;
	/* The library picks the base: an empty space dumps as one range. */
	f = open_memstream(&buf, &len);
	REQUIRE(f);
	CHECK_EQ(vmap_dump(w->s, f), 0);
	fclose(f);
	REQUIRE(buf && sscanf(buf, "0x%llx-0x%llx", &a, &b) == 2);
	free(buf);
	w->base = a;
	w->end = b;
	CHECK_EQ(b - a, length ? length : VMAP_MEMORY_DEFAULT_LENGTH);
	return 0;
}

static void *vmalloc_tracked(struct world *w, uint64_t pages)
{
	void *p = vmap_vmalloc(w->s, pages * w->ps);

	CHECK(p != NULL);
	if (p)
		track(w, (uint64_t)(uintptr_t)p, pages * w->ps, false);
	return p;
}

/* Finding 6, memory spaces: one page long; pool_max_pages 1 and UINT64_MAX;
 * lazy_max_pages UINT64_MAX. */
static void test_memory_edges(void)
{
	uint64_t ps = (uint64_t)sysconf(_SC_PAGESIZE), a = NOADDR;
	struct vmap_stats st;
	void *p, *q;

	/* A config that stops before pool_max_pages: the pool and the blocks
	 * get their defaults, whatever lies past the size. */
	{
		struct vmap_config c;
		vmap_space *m = SENTINEL;

		vmap_config_init(&c);
		c.size = offsetof(struct vmap_config, pool_max_pages);
		c.flags = VMAP_SPACE_MEMORY;
		c.length = 256 * ps;
		c.page_size = ps;
		c.pool_max_pages = 7;
		c.block_pages = 3;
		CHECK_EQ(vmap_space_create(&c, &m), 0);
		if (m != SENTINEL) {
			CHECK_EQ(test_stats(m).pool_max_pages,
				 VMAP_POOL_DEFAULT_BYTES / ps);
			CHECK_EQ(test_stats(m).block_pages, 1024);
			CHECK_EQ(vmap_check(m), 0);
			vmap_space_destroy(m);
		}
	}

	/* One page: it can be had once, and no vmap block fits. */
	REQUIRE(mem_make(&W, ps, 0, 0, 0, "memory space of one page") == 0);
	CHECK_EQ(test_stats(W.s).total_pages, 1);
	p = vmalloc_tracked(&W, 1);
	CHECK(p == (void *)(uintptr_t)W.base);
	errno = 0;
	CHECK(vmap_vmalloc(W.s, ps) == NULL);
	CHECK_EQ(errno, ENOSPC);
	CHECK_EQ(vmap_ram_alloc(W.s, ps, &a), -ENOSPC);
	CHECK_EQ(a, NOADDR);
	settle(&W);
	CHECK_EQ(vmap_vfree(W.s, p), 0);
	W.n = 0;
	CHECK_EQ(test_stats(W.s).pool_pages, 1); /* kept warm */
	settle(&W);
	q = vmalloc_tracked(&W, 1);
	CHECK(q == p);
	CHECK_EQ(test_stats(W.s).pool_hits, 1);
	CHECK_EQ(vmap_vfree(W.s, q), 0);
	W.n = 0;
	CHECK_EQ(vmap_purge(W.s, VMAP_PURGE_SYNC), 0);
	CHECK_EQ(test_stats(W.s).free_pages, 1);
	settle(&W);
	tell(&W);
	vmap_space_destroy(W.s);

	/* One page with a guard page: nothing fits. */
	REQUIRE(mem_make(&W, ps, VMAP_SPACE_GUARD, 0, 0,
			 "memory space of one page, guarded") == 0);
	errno = 0;
	CHECK(vmap_vmalloc(W.s, 1) == NULL);
	CHECK_EQ(errno, ENOSPC);
	settle(&W);
	tell(&W);
	vmap_space_destroy(W.s);

	/* A pool of one page: the first free is warm, the rest lazy. */
	REQUIRE(mem_make(&W, 256 * ps, 0, 0, 1, "pool_max_pages 1") == 0);
	CHECK_EQ(test_stats(W.s).pool_max_pages, 1);
	p = vmalloc_tracked(&W, 1);
	q = vmalloc_tracked(&W, 1);
	CHECK_EQ(vmap_vfree(W.s, p), 0);
	CHECK_EQ(vmap_vfree(W.s, q), 0);
	W.n = 0;
	st = test_stats(W.s);
	CHECK_EQ(st.pool_pages, 1);
	CHECK_EQ(st.pool_areas, 1);
	CHECK_EQ(st.lazy_pages, 1);
	settle(&W);
	p = vmalloc_tracked(&W, 2);
	CHECK_EQ(vmap_vfree(W.s, p), 0);
	W.n = 0;
	CHECK_EQ(test_stats(W.s).pool_pages, 1);
	CHECK_EQ(test_stats(W.s).lazy_pages, 3);
	settle(&W);
	drain(&W);
	tell(&W);
	vmap_space_destroy(W.s);

	/* An unbounded pool: every free is warm, every vmalloc of a warm
	 * size a hit. */
	REQUIRE(mem_make(&W, 4096 * ps, 0, 0, UINT64_MAX,
			 "pool_max_pages UINT64_MAX") == 0);
	CHECK_EQ(test_stats(W.s).pool_max_pages, UINT64_MAX);
	{
		void *v[40];
		uint64_t pages = 0;

		for (int i = 0; i < 39; i++) {
			v[i] = vmalloc_tracked(&W, 1 + i % 8);
			pages += 1 + i % 8;
		}
		v[39] = vmalloc_tracked(&W, 100);
		W.n = 0;
		for (int i = 0; i < 40; i++)
			CHECK_EQ(vmap_vfree(W.s, v[i]), 0);
		st = test_stats(W.s);
		CHECK_EQ(st.pool_areas, 40);
		CHECK_EQ(st.pool_pages, pages + 100); /* any size stays warm */
		CHECK_EQ(st.lazy_pages, 0);
		settle(&W);
		for (int i = 0; i < 39; i++)
			vmalloc_tracked(&W, 1 + i % 8);
		vmalloc_tracked(&W, 100);
		CHECK_EQ(test_stats(W.s).pool_hits, 40);
		settle(&W);
		drain(&W);
	}
	tell(&W);
	vmap_space_destroy(W.s);

	/* lazy_max_pages UINT64_MAX: frees never purge; a full space does. */
	REQUIRE(mem_make(&W, 256 * ps, VMAP_SPACE_NOPOOL, UINT64_MAX, 0,
			 "memory space, lazy_max_pages UINT64_MAX") == 0);
	CHECK_EQ(test_stats(W.s).lazy_max_pages, UINT64_MAX);
	/* 128 pages lazy, then 256: no purge.  The third round finds no
	 * room, and purges once. */
	for (int round = 0; round < 3; round++) {
		for (int i = 0; i < 128; i++)
			vmalloc_tracked(&W, 1);
		while (W.n) {
			CHECK_EQ(vmap_vfree(W.s,
					    (void *)(uintptr_t)W.live[0].a), 0);
			untrack(&W, 0);
		}
		if (round == 1)
			CHECK_EQ(test_stats(W.s).purges, 0);
		if (!settle(&W))
			break;
	}
	st = test_stats(W.s);
	CHECK_EQ(st.purges, 1);
	CHECK_EQ(st.purge_retries, 1);
	CHECK_EQ(st.lazy_pages, 128);
	drain(&W);
	tell(&W);
	vmap_space_destroy(W.s);
}

/* ---- B. wrong counts (finding 7) ---- */

/*
 * What the wrong counts of one piece got, as runs of equal results:
 * "3-page piece: 4: 0; 65..128: -2".  Each result is a check; the line is
 * printed if any failed.
 */
struct tally {
	char text[512];
	size_t len;
	uint64_t from, to;
	int rc, bad;
};

static void tally_flush(struct tally *t)
{
	if (!t->bad || t->rc == -EINVAL || t->len >= sizeof(t->text) - 48)
		return;
	if (t->from == t->to)
		t->len += (size_t)snprintf(t->text + t->len,
					   sizeof(t->text) - t->len,
					   "%s%#llx: %d", t->len ? "; " : "",
					   (unsigned long long)t->from, t->rc);
	else
		t->len += (size_t)snprintf(t->text + t->len,
					   sizeof(t->text) - t->len,
					   "%s%#llx..%#llx: %d",
					   t->len ? "; " : "",
					   (unsigned long long)t->from,
					   (unsigned long long)t->to, t->rc);
}

static void tally(struct tally *t, uint64_t count, int rc)
{
	test_checks++;
	if (rc != -EINVAL)
		test_failures++;
	if (t->bad && rc == t->rc && count == t->to + 1) {
		t->to = count;
		return;
	}
	tally_flush(t);
	t->bad = 1;
	t->from = t->to = count;
	t->rc = rc;
}

/* Pieces with the same results share one line, printed by tally_print. */
#define TALLY_KINDS 8

static struct {
	const char *what;
	int kinds, more; /* more: pieces with results past TALLY_KINDS */
	struct {
		char text[512];
		uint64_t size[130];
		int n;
	} k[TALLY_KINDS];
} told_counts;

static void tally_print(void)
{
	for (int i = 0; i < told_counts.kinds; i++) {
		char sizes[512];
		size_t len = 0;
		int n = told_counts.k[i].n;
		const uint64_t *z = told_counts.k[i].size;

		/* Runs of consecutive sizes: "2..13, 15..18, 20". */
		for (int j = 0, e; j < n && len < sizeof(sizes) - 48; j = e) {
			for (e = j + 1; e < n && z[e] == z[e - 1] + 1; e++)
				;
			len += (size_t)snprintf(sizes + len, sizeof(sizes) - len,
						e - j > 1 ? "%s%llu..%llu" : "%s%llu",
						j ? ", " : "",
						(unsigned long long)z[j],
						(unsigned long long)z[e - 1]);
		}
		sizes[len] = '\0';
		fprintf(stderr, "config_test.c: %s of %s pages: wrong counts not "
				"refused with -EINVAL (count: result): %s\n",
			told_counts.what, sizes, told_counts.k[i].text);
	}
	if (told_counts.more)
		fprintf(stderr, "config_test.c: %s: %d more sizes with other "
				"wrong results\n", told_counts.what,
			told_counts.more);
	memset(&told_counts, 0, sizeof(told_counts));
}

/* right: what the right count got after the wrong ones (checked here). */
static void tally_end(struct tally *t, const char *what, uint64_t pages,
		      int right)
{
	int i;

	tally_flush(t);
	test_checks++;
	if (right) {
		test_failures++;
		t->len += (size_t)snprintf(t->text + t->len,
					   sizeof(t->text) - t->len,
					   "%sthen the right count: %d",
					   t->len ? "; " : "", right);
	}
	t->text[t->len] = '\0';
	if (told_counts.what != what)
		tally_print();
	told_counts.what = what;
	for (i = 0; t->len && i < told_counts.kinds; i++)
		if (!strcmp(told_counts.k[i].text, t->text))
			break;
	if (t->len && i == told_counts.kinds && i < TALLY_KINDS)
		memcpy(told_counts.k[told_counts.kinds++].text, t->text,
		       t->len + 1);
	if (t->len && i < told_counts.kinds && told_counts.k[i].n < 130)
		told_counts.k[i].size[told_counts.k[i].n++] = pages;
	else if (t->len)
		told_counts.more++;
	memset(t, 0, sizeof(*t));
}

/* Every piece size against every wrong count: -EINVAL, nothing changed;
 * then the right count (in any byte size of that many pages) frees it. */
static void wrong_counts_range(uint64_t bp)
{
	struct vmap_config c;

	vmap_config_init(&c);
	c.base = BASE;
	c.length = 8192 * PG;
	c.block_pages = bp;
	c.lazy_max_pages = 1000;
	REQUIRE(world_make(&W, &c, "wrong counts") == 0);
	quiet_budget = 12;
	for (uint64_t p = 1; p <= 64; p++) {
		struct vmap_stats before, after;
		uint64_t a = NOADDR, right = p & 1 ? (p - 1) * PG + 1 : p * PG;
		struct tally t = { .len = 0 };
		int rc;

		CHECK_EQ(vmap_ram_alloc(W.s, p * PG, &a), 0);
		before = test_stats(W.s);
		for (uint64_t wr = 1; wr <= 128; wr++) {
			if (wr == p)
				continue;
			tally(&t, wr, vmap_ram_free(W.s, a, wr * PG));
			after = test_stats(W.s);
			check_quiet(!memcmp(&before, &after, sizeof(after)),
				    "vmap_ram_free of a %llu-page piece with "
				    "%llu pages changed the stats",
				    (unsigned long long)p,
				    (unsigned long long)wr);
			check_quiet(vmap_check(W.s) == 0, "... vmap_check");
		}
		/* The right count frees it (after a wrong one was taken,
		 * it finds nothing). */
		rc = vmap_ram_free(W.s, a, right);
		tally_end(&t, bp == 128 ? "vmap_ram_free (block_pages 128), pieces"
					: "vmap_ram_free, pieces", p, rc);
		CHECK_EQ(vmap_ram_free(W.s, a, right), -ENOENT);
		CHECK_EQ(vmap_check(W.s), 0);
	}

	/* Areas past VMAP_RAM_MAX_PAGES come from the tree; the count is
	 * checked there too, whatever side of 64 the wrong one is on. */
	{
		static const uint64_t sizes[] = { 65, 100, 1024 };
		static const uint64_t wrong[] = { 1, 3, 63, 64, 66, 99, 101,
						  128, 1023, 1025, 2048 };

		for (size_t i = 0; i < 3; i++) {
			struct vmap_stats before, after;
			struct tally t = { .len = 0 };
			uint64_t a = NOADDR;

			CHECK_EQ(vmap_ram_alloc(W.s, sizes[i] * PG, &a), 0);
			before = test_stats(W.s);
			for (size_t j = 0; j < sizeof(wrong) / sizeof(*wrong);
			     j++) {
				tally(&t, wrong[j],
				      vmap_ram_free(W.s, a, wrong[j] * PG));
				after = test_stats(W.s);
				check_quiet(!memcmp(&before, &after,
						    sizeof(after)),
					    "vmap_ram_free of a %llu-page area "
					    "with %llu pages changed the stats",
					    (unsigned long long)sizes[i],
					    (unsigned long long)wrong[j]);
			}
			tally_end(&t, "vmap_ram_free, an area from the tree",
				  sizes[i], vmap_ram_free(W.s, a, sizes[i] * PG));
			CHECK_EQ(vmap_check(W.s), 0);
		}
	}
	tally_print();
	drain(&W);
	tell(&W);
	vmap_space_destroy(W.s);
}

static void test_wrong_counts(void)
{
	wrong_counts_range(1024);
	wrong_counts_range(128); /* a 128-page count names a whole block */
}

/* The same through vmap_map_ram/vmap_unmap_ram in a memory space, and the
 * counts whose byte size overflows: (2^52 + 1) pages used to shift to one
 * page, free a one-page piece, and leave the right call -ENOENT. */
static void test_wrong_counts_memory(void)
{
	uint64_t pgoff[128];
	int fd = -1;

	REQUIRE(vmap_memfd_create("config_test", 128, &fd) == 0);
	for (int i = 0; i < 128; i++)
		pgoff[i] = (uint64_t)i;
	REQUIRE(mem_make(&W, 1ull << 30, 0, 0, 0, "vmap_unmap_ram counts") == 0);
	quiet_budget = 12;
	for (size_t p = 1; p <= 65; p++) {
		const size_t huge[] = { ((size_t)1 << 52) + 1,
					((size_t)1 << 52) + p,
					(size_t)1 << 52,
					((size_t)1 << 53) + p,
					SIZE_MAX,
					SIZE_MAX / PG,
					SIZE_MAX / PG + 1 + p };
		struct vmap_stats before, after;
		struct tally t = { .len = 0 };
		void *ptr = vmap_map_ram(W.s, fd, pgoff, p);

		CHECK(ptr != NULL);
		if (!ptr)
			continue;
		before = test_stats(W.s);
		for (size_t wr = 1; wr < 129 + sizeof(huge) / sizeof(*huge);
		     wr++) {
			size_t n = wr <= 128 ? wr : huge[wr - 129];

			if (n == p)
				continue;
			tally(&t, n, vmap_unmap_ram(W.s, ptr, n));
			after = test_stats(W.s);
			check_quiet(!memcmp(&before, &after, sizeof(after)),
				    "vmap_unmap_ram of a %zu-page piece with "
				    "%#zx pages changed the stats", p, n);
			if (wr % 16 == 0 || wr > 128)
				check_quiet(vmap_check(W.s) == 0,
					    "... vmap_check");
		}
		tally_end(&t, "vmap_unmap_ram, pieces", p,
			  vmap_unmap_ram(W.s, ptr, p));
		CHECK_EQ(vmap_unmap_ram(W.s, ptr, p), -ENOENT);
		CHECK_EQ(vmap_check(W.s), 0);
	}
	tally_print();
	drain(&W);
	tell(&W);
	vmap_space_destroy(W.s);
	close(fd);
}

/* ---- C. requests no space could meet (finding 9) ---- */

/* Must fail with -ENOSPC at once: no purge, no flush, nothing changed but
 * the failure counter. */
#define IMPOSSIBLE(w, call)                                                 \
	do {                                                                \
		struct vmap_stats _sb = test_stats((w)->s), _sa;              \
		uint64_t _calls = (w)->fc.calls;                            \
		addr = NOADDR;                                              \
		CHECK_EQ((call), -ENOSPC);                                  \
		_sa = test_stats((w)->s);                                   \
		CHECK_EQ(addr, NOADDR);                                     \
		CHECK_EQ(_sa.purges, _sb.purges);                             \
		CHECK_EQ(_sa.purge_retries, _sb.purge_retries);               \
		CHECK_EQ(_sa.flushes, _sb.flushes);                           \
		CHECK_EQ((w)->fc.calls, _calls);                            \
		CHECK_EQ(_sa.lazy_pages, _sb.lazy_pages);                     \
		CHECK_EQ(_sa.lazy_areas, _sb.lazy_areas);                     \
		CHECK_EQ(_sa.blocks, _sb.blocks);                             \
		CHECK_EQ(_sa.pool_areas, _sb.pool_areas);                     \
		CHECK_EQ(_sa.free_pages, _sb.free_pages);                     \
		settle(w);                                                  \
	} while (0)

/*
 * A space of 64 pages whose base is aligned to one page only (page number
 * 0x40001), full, with 16 pages lazy:
 *   AAAAAAAA++++++++CCCCCCCC++++++++EEEEEEEE...  (8-page areas)
 * Each request below could not be met even by the space all free.
 */
static void test_impossible(void)
{
	const uint64_t b = BASE + PG; /* page 0x40001 */
	const unsigned T = VMAP_XALLOC_TOPDOWN;
	struct vmap_config c;
	uint64_t a[8], addr;

	vmap_config_init(&c);
	c.base = b;
	c.length = 64 * PG;
	c.lazy_max_pages = 1000;
	REQUIRE(world_make(&W, &c, "impossible requests") == 0);
	for (int i = 0; i < 8; i++) {
		REQUIRE(vmap_alloc(W.s, 8 * PG, 0, 0, UINT64_MAX, &a[i]) == 0);
		CHECK_EQ(a[i], b + i * 8 * PG);
	}
	CHECK_EQ(vmap_free(W.s, a[1]), 0);
	CHECK_EQ(vmap_free(W.s, a[3]), 0);
	CHECK_EQ(test_stats(W.s).lazy_pages, 16);
	settle(&W);

	for (int top = 0; top < 2; top++) {
		unsigned fl = top ? T : 0;

		/* Larger than the space. */
		IMPOSSIBLE(&W, vmap_xalloc(W.s, 65 * PG, 0, 0, 0, 0, UINT64_MAX,
					   fl, &addr));
		/* Aligned beyond it: no multiple of 2^40, or of 128 pages,
		 * lies in [0x40001000, 0x40041000). */
		IMPOSSIBLE(&W, vmap_xalloc(W.s, PG, 1ull << 40, 0, 0, 0,
					   UINT64_MAX, fl, &addr));
		IMPOSSIBLE(&W, vmap_xalloc(W.s, PG, 128 * PG, 0, 0, 0,
					   UINT64_MAX, fl, &addr));
		IMPOSSIBLE(&W, vmap_xalloc(W.s, PG, TOP, 0, 0, 0, UINT64_MAX,
					   fl, &addr));
		/* Phase one page past a 4-page alignment, 4 pages long, not
		 * crossing 4 pages: every place crosses. */
		IMPOSSIBLE(&W, vmap_xalloc(W.s, 4 * PG, 4 * PG, PG, 4 * PG, 0,
					   UINT64_MAX, fl, &addr));
		IMPOSSIBLE(&W, vmap_xalloc(W.s, 2 * PG, 8 * PG, 7 * PG, 8 * PG,
					   0, UINT64_MAX, fl, &addr));
		/* Windows long enough for the size but not the constraint:
		 * pages 0x40002..0x40006 hold 3 pages only across page
		 * 0x40004; pages 0x40003..0x40005 hold no 2-aligned pair. */
		IMPOSSIBLE(&W, vmap_xalloc(W.s, 3 * PG, 0, 0, 4 * PG,
					   BASE + 2 * PG, BASE + 6 * PG, fl,
					   &addr));
		IMPOSSIBLE(&W, vmap_xalloc(W.s, 2 * PG, 2 * PG, 0, 0,
					   BASE + 3 * PG, BASE + 5 * PG, fl,
					   &addr));
	}
	IMPOSSIBLE(&W, vmap_alloc(W.s, 65 * PG, 0, 0, UINT64_MAX, &addr));
	IMPOSSIBLE(&W, vmap_alloc(W.s, PG, 1ull << 40, 0, UINT64_MAX, &addr));
	IMPOSSIBLE(&W, vmap_ram_alloc(W.s, 65 * PG, &addr));

	/* What a purge would let fit still purges, once, and fits. */
	addr = NOADDR;
	CHECK_EQ(vmap_xalloc(W.s, 2 * PG, 2 * PG, PG, 0, 0, UINT64_MAX, 0,
			     &addr), 0);
	CHECK_EQ(addr, a[1]); /* page 0x40009: 1 past a 2-page multiple */
	CHECK_EQ(test_stats(W.s).purges, 1);
	CHECK_EQ(test_stats(W.s).purge_retries, 1);
	CHECK_EQ(W.fc.calls, 1);
	CHECK_EQ(test_stats(W.s).lazy_pages, 0);
	settle(&W);
	tell(&W);
	vmap_space_destroy(W.s);

	/* A fragmented vmap block is not lazy, but a purge would free it: an
	 * impossible request must not. */
	vmap_config_init(&c);
	c.base = b;
	c.length = 1024 * PG;
	c.block_pages = 128;
	c.lazy_max_pages = 1000;
	REQUIRE(world_make(&W, &c, "impossible, fragmented block") == 0);
	REQUIRE(vmap_ram_alloc(W.s, PG, &a[0]) == 0);
	CHECK_EQ(vmap_ram_free(W.s, a[0], PG), 0);
	CHECK_EQ(test_stats(W.s).blocks, 1);
	settle(&W);
	IMPOSSIBLE(&W, vmap_alloc(W.s, 1025 * PG, 0, 0, UINT64_MAX, &addr));
	IMPOSSIBLE(&W, vmap_alloc(W.s, PG, 1ull << 40, 0, UINT64_MAX, &addr));
	IMPOSSIBLE(&W, vmap_xalloc(W.s, 4 * PG, 4 * PG, PG, 4 * PG, 0,
				   UINT64_MAX, 0, &addr));
	/* Possible: the purge frees the block and the space fits. */
	addr = NOADDR;
	CHECK_EQ(vmap_alloc(W.s, 1024 * PG, 0, 0, UINT64_MAX, &addr), 0);
	CHECK_EQ(addr, b);
	CHECK_EQ(test_stats(W.s).purge_retries, 1);
	CHECK_EQ(test_stats(W.s).blocks, 0);
	settle(&W);
	tell(&W);
	vmap_space_destroy(W.s);
}

/* The same in a memory space with warm and lazy areas: a vmalloc larger
 * than the reservation fails at once, the pool stays warm. */
static void test_impossible_memory(void)
{
	uint64_t ps = (uint64_t)sysconf(_SC_PAGESIZE), addr;
	void *p[16], *big;

	REQUIRE(mem_make(&W, 16 * ps, 0, 0, 0, "impossible, memory") == 0);
	for (int i = 0; i < 16; i++)
		p[i] = vmalloc_tracked(&W, 1);
	for (int i = 0; i < 8; i++)
		CHECK_EQ(vmap_vfree(W.s, p[i]), 0); /* warm */
	W.n = 0;
	CHECK_EQ(test_stats(W.s).pool_areas, 8);
	settle(&W);
	{
		struct vmap_stats b4 = test_stats(W.s), af;

		errno = 0;
		CHECK(vmap_vmalloc(W.s, 17 * ps) == NULL);
		CHECK_EQ(errno, ENOSPC);
		af = test_stats(W.s);
		CHECK_EQ(af.purges, b4.purges);
		CHECK_EQ(af.pool_areas, 8);
		CHECK_EQ(af.purge_retries, 0);
		settle(&W);
	}
	IMPOSSIBLE(&W, vmap_alloc(W.s, PG, 1ull << 62, 0, UINT64_MAX, &addr));
	IMPOSSIBLE(&W, vmap_ram_alloc(W.s, PG, &addr)); /* no block fits */
	/* Possible after the pool is drained and purged. */
	big = vmap_vmalloc(W.s, 8 * ps);
	CHECK(big == (void *)(uintptr_t)W.base);
	CHECK_EQ(test_stats(W.s).purges, 1);
	CHECK_EQ(test_stats(W.s).pool_areas, 0);
	settle(&W);
	tell(&W);
	vmap_space_destroy(W.s);
}

/* ---- D. vmap_dump (findings 8, 9) ---- */

enum { S_BUSY, S_BLOCK, S_LAZY, S_POOL, S_FREE, S_QUAR, S_CACHED, S_NONE };
static const char *const state_names[] = { "busy", "block",	  "lazy",
					   "pool", "free", "quarantined",
					   "cached" };

struct dline {
	uint64_t start, end;
	int state;
};

#define MAXLINES 2048

struct listing {
	struct dline line[MAXLINES];
	size_t n;
	uint64_t blocks, block_free, block_dirty;
	uint64_t cached; /* bytes listed as cached */
	int cpu_lines;
	int malformed;
	int range_after_block; /* a range line after a block line */
	int unordered;	       /* a range starting before the one above */
	char first_bad[128];
};

static bool hex16(const char *p)
{
	for (int i = 0; i < 16; i++)
		if (!isxdigit((unsigned char)p[i]) || isupper((unsigned char)p[i]))
			return false;
	return true;
}

/* "0x%016llx-0x%016llx %12llu state" */
static bool parse_range(const char *p, struct dline *d)
{
	unsigned long long size = 0;
	size_t sp = 0, dig = 0;
	const char *q;

	if (strlen(p) < 40 || strncmp(p, "0x", 2) || !hex16(p + 2) ||
	    strncmp(p + 18, "-0x", 3) || !hex16(p + 21) || p[37] != ' ')
		return false;
	d->start = strtoull(p + 2, NULL, 16);
	d->end = strtoull(p + 21, NULL, 16);
	for (q = p + 38; *q == ' '; q++)
		sp++;
	for (; isdigit((unsigned char)*q); q++, dig++)
		size = size * 10 + (unsigned long long)(*q - '0');
	if (!dig || dig > 20 || sp + dig != (dig < 12 ? 12 : dig) || *q != ' ')
		return false;
	d->state = S_NONE;
	for (int s = 0; s < S_NONE; s++)
		if (!strcmp(q + 1, state_names[s]))
			d->state = s;
	return d->state != S_NONE && d->start < d->end &&
	       size == d->end - d->start;
}

static void parse_line(const char *p, struct listing *L)
{
	unsigned cpu, n, fr, dirty;
	int end = -1;
	struct dline d;

	if (!strncmp(p, "vmap blocks cpu ", 16)) {
		if (sscanf(p, "vmap blocks cpu %u: %u blocks, %u pages free, "
			      "%u dirty%n", &cpu, &n, &fr, &dirty, &end) == 4 &&
		    end == (int)strlen(p)) {
			L->cpu_lines++;
			L->blocks += n;
			L->block_free += fr;
			L->block_dirty += dirty;
			return;
		}
	} else if (parse_range(p, &d)) {
		if (L->cpu_lines)
			L->range_after_block++;
		if (L->n && d.start < L->line[L->n - 1].start)
			L->unordered++;
		if (d.state == S_CACHED)
			L->cached += d.end - d.start;
		if (L->n < MAXLINES)
			L->line[L->n++] = d;
		return;
	}
	if (!L->malformed++)
		snprintf(L->first_bad, sizeof(L->first_bad), "%s", p);
}

static int dump_parse(vmap_space *s, struct listing *L)
{
	char *buf = NULL, *line, *nl;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	int rc;

	REQUIRE(f);
	rc = vmap_dump(s, f);
	fclose(f);
	memset(L, 0, sizeof(*L));
	for (line = buf; line && *line; line = nl) {
		nl = strchr(line, '\n');
		if (!nl) { /* the last line unterminated */
			parse_line(line, L);
			L->malformed++;
			break;
		}
		*nl++ = '\0';
		parse_line(line, L);
	}
	free(buf);
	return rc;
}

struct item {
	uint64_t start, end;
	int state;
};

static int by_start(const void *x, const void *y)
{
	const struct item *a = x, *b = y;

	return (a->start > b->start) - (a->start < b->start);
}

/* The listing a quiescent space owes: the items by address, touching lazy
 * areas as one run, and free ranges in the gaps. */
static size_t expect_listing(uint64_t base, uint64_t end, struct item *it,
			     size_t n, struct dline *out)
{
	uint64_t at = base;
	size_t k = 0;

	qsort(it, n, sizeof(*it), by_start);
	for (size_t i = 0; i < n; i++) {
		if (it[i].start > at)
			out[k++] = (struct dline){ at, it[i].start, S_FREE };
		if (it[i].state == S_LAZY && k && out[k - 1].state == S_LAZY &&
		    out[k - 1].end == it[i].start)
			out[k - 1].end = it[i].end;
		else
			out[k++] = (struct dline){ it[i].start, it[i].end,
						   it[i].state };
		at = it[i].end;
	}
	if (at < end)
		out[k++] = (struct dline){ at, end, S_FREE };
	return k;
}

static void print_lines(const char *title, const struct dline *d, size_t n)
{
	fprintf(stderr, "  %s:\n", title);
	for (size_t i = 0; i < n; i++)
		fprintf(stderr, "    %#llx-%#llx %s\n",
			(unsigned long long)d[i].start,
			(unsigned long long)d[i].end,
			d[i].state < S_NONE ? state_names[d[i].state] : "?");
}

static struct listing L;
static struct dline expected[MAXLINES];

/* Cached lines as free, and touching free lines as one. */
static void merge_free(struct listing *l)
{
	size_t k = 0;

	for (size_t i = 0; i < l->n; i++) {
		struct dline d = l->line[i];

		if (d.state == S_CACHED)
			d.state = S_FREE;
		if (k && d.state == S_FREE && l->line[k - 1].state == S_FREE &&
		    l->line[k - 1].end == d.start)
			l->line[k - 1].end = d.end;
		else
			l->line[k++] = d;
	}
	l->n = k;
}

/* Dump the quiescent space and compare with what the test made of it. */
static void check_dump(struct world *w, struct item *it, size_t n)
{
	struct vmap_stats st = test_stats(w->s);
	size_t k = expect_listing(w->base, w->end, it, n, expected);
	bool same;

	CHECK_EQ(dump_parse(w->s, &L), 0);
	CHECK_EQ(L.malformed, 0);
	if (L.malformed)
		fprintf(stderr, "  first malformed line: \"%s\"\n",
			L.first_bad);
	CHECK_EQ(L.range_after_block, 0);
	CHECK_EQ(L.unordered, 0);
	CHECK_EQ(L.blocks, st.blocks);
	CHECK_EQ(L.block_free, st.block_free_pages);
	CHECK_EQ(L.block_dirty, st.block_dirty_pages);
	CHECK_EQ(L.cached, st.cached_pages * w->ps);
	/* A node pool's area is free space the test does not track apart:
	 * what the space holds as one free range may list as free and cached
	 * lines side by side. */
	merge_free(&L);
	same = L.n == k;
	for (size_t i = 0; same && i < k; i++)
		same = L.line[i].start == expected[i].start &&
		       L.line[i].end == expected[i].end &&
		       L.line[i].state == expected[i].state;
	CHECK(same);
	if (!same) {
		print_lines("vmap_dump listed", L.line, L.n);
		print_lines("the space holds", expected, k);
	}
	/* Also on its own terms: the lines tile [base, end). */
	for (size_t i = 0; i < L.n; i++)
		CHECK_EQ(L.line[i].start, i ? L.line[i - 1].end : w->base);
	if (L.n)
		CHECK_EQ(L.line[L.n - 1].end, w->end);
	settle(w);
}

/*
 * One space, block_pages 128, pages from BASE:
 *   AAA+++++++++DDDD++++++........BBBB...   (+ lazy: b, c and e freed)
 *   0  3      10    14    20     128 256  block of 128 pages at page 128
 * then the purge, then everything freed.
 */
static void test_dump(void)
{
	struct vmap_config c;
	struct item it[16];
	uint64_t a, b, cc, d, e, p1, p3;
	const uint64_t blk = 128 * PG;

	vmap_config_init(&c);
	c.base = BASE;
	c.length = 1024 * PG;
	c.block_pages = 128;
	c.lazy_max_pages = 1000;
	REQUIRE(world_make(&W, &c, "vmap_dump") == 0);
	check_dump(&W, it, 0); /* one free line */

	REQUIRE(vmap_alloc(W.s, 3 * PG, 0, 0, UINT64_MAX, &a) == 0);
	REQUIRE(vmap_alloc(W.s, 5 * PG, 0, 0, UINT64_MAX, &b) == 0);
	REQUIRE(vmap_alloc(W.s, 2 * PG, 0, 0, UINT64_MAX, &cc) == 0);
	REQUIRE(vmap_alloc(W.s, 4 * PG, 0, 0, UINT64_MAX, &d) == 0);
	REQUIRE(vmap_alloc(W.s, 6 * PG, 0, 0, UINT64_MAX, &e) == 0);
	CHECK_EQ(e, BASE + 14 * PG);
	settle(&W);
	CHECK_EQ(vmap_free(W.s, cc), 0);
	CHECK_EQ(vmap_free(W.s, b), 0);
	CHECK_EQ(vmap_free(W.s, e), 0);
	settle(&W);
	REQUIRE(vmap_ram_alloc(W.s, PG, &p1) == 0);
	REQUIRE(vmap_ram_alloc(W.s, 3 * PG, &p3) == 0);
	settle(&W);
	CHECK_EQ(p1, BASE + blk);
	CHECK_EQ(test_stats(W.s).block_free_pages, 123);
	it[0] = (struct item){ a, a + 3 * PG, S_BUSY };
	it[1] = (struct item){ b, b + 5 * PG, S_LAZY };
	it[2] = (struct item){ cc, cc + 2 * PG, S_LAZY };
	it[3] = (struct item){ d, d + 4 * PG, S_BUSY };
	it[4] = (struct item){ e, e + 6 * PG, S_LAZY };
	it[5] = (struct item){ BASE + blk, BASE + 2 * blk, S_BLOCK };
	check_dump(&W, it, 6);

	/* The piece freed is dirty; the lazy runs become free. */
	CHECK_EQ(vmap_ram_free(W.s, p1, PG), 0);
	CHECK_EQ(vmap_purge(W.s, VMAP_PURGE_SYNC), 0);
	it[1] = it[3];
	it[2] = it[5];
	check_dump(&W, it, 3);
	CHECK_EQ(L.block_dirty, 1);

	/* All gone: one free line, no block line. */
	CHECK_EQ(vmap_ram_free(W.s, p3, 3 * PG), 0);
	CHECK_EQ(vmap_free(W.s, a), 0);
	CHECK_EQ(vmap_free(W.s, d), 0);
	CHECK_EQ(vmap_purge(W.s, VMAP_PURGE_SYNC), 0);
	check_dump(&W, it, 0);
	CHECK_EQ(L.cpu_lines, 0);
	tell(&W);
	vmap_space_destroy(W.s);

	/* A space ending at the top of the 64-bit range. */
	vmap_config_init(&c);
	c.base = 0 - 17 * PG;
	c.length = 16 * PG;
	REQUIRE(world_make(&W, &c, "vmap_dump at the top") == 0);
	REQUIRE(vmap_alloc(W.s, 16 * PG, 0, 0, UINT64_MAX, &a) == 0);
	it[0] = (struct item){ a, a + 16 * PG, S_BUSY };
	check_dump(&W, it, 1);
	tell(&W);
	vmap_space_destroy(W.s);
}

/* The same in a memory space: warm (pool) areas, lazy, busy, a block. */
static void test_dump_memory(void)
{
	uint64_t ps = (uint64_t)sysconf(_SC_PAGESIZE), piece, bs, bsz, big;
	struct item it[8];
	void *p, *q, *r, *x;

	REQUIRE(mem_make(&W, 1ull << 30, 0, 0, 0, "vmap_dump, memory") == 0);
	p = vmap_vmalloc(W.s, ps);
	q = vmap_vmalloc(W.s, 2 * ps);
	r = vmap_vmalloc(W.s, ps);
	/* Bigger than the whole pool budget: it cannot be kept warm. */
	big = VMAP_POOL_DEFAULT_BYTES / ps + 1;
	x = vmap_vmalloc(W.s, big * ps);
	REQUIRE(p && q && r && x);
	CHECK_EQ(vmap_vfree(W.s, q), 0); /* warm */
	CHECK_EQ(vmap_vfree(W.s, x), 0); /* lazy */
	REQUIRE(vmap_ram_alloc(W.s, ps, &piece) == 0);
	settle(&W);
	bsz = test_stats(W.s).block_pages * ps;
	bs = piece & ~(bsz - 1);
	it[0] = (struct item){ (uintptr_t)p, (uintptr_t)p + ps, S_BUSY };
	it[1] = (struct item){ (uintptr_t)q, (uintptr_t)q + 2 * ps, S_POOL };
	it[2] = (struct item){ (uintptr_t)r, (uintptr_t)r + ps, S_BUSY };
	it[3] = (struct item){ (uintptr_t)x, (uintptr_t)x + big * ps, S_LAZY };
	it[4] = (struct item){ bs, bs + bsz, S_BLOCK };
	check_dump(&W, it, 5);
	CHECK_EQ(vmap_ram_free(W.s, piece, ps), 0);
	CHECK_EQ(vmap_vfree(W.s, p), 0);
	CHECK_EQ(vmap_vfree(W.s, r), 0);
	CHECK_EQ(vmap_purge(W.s, VMAP_PURGE_SYNC), 0);
	check_dump(&W, it, 0);
	tell(&W);
	vmap_space_destroy(W.s);
}

/* ---- D under churn ---- */

struct churn {
	vmap_space *s;
	uint64_t seed;
	atomic_int *stop;
	atomic_long ops;
	long errs;
	int last_err;
};

static void *churn_main(void *arg)
{
	struct churn *c = arg;
	struct area live[32];
	int n = 0;

	while (!atomic_load(c->stop)) {
		uint64_t r = test_rand(&c->seed), a;
		int rc;

		if (n < 32 && (r & 1 || !n)) {
			uint64_t pages = 1 + (r >> 8) % 64;
			bool piece = (r >> 4) & 1;

			rc = piece ? vmap_ram_alloc(c->s, pages * PG, &a)
				   : vmap_alloc(c->s, pages * PG, 0, 0,
						UINT64_MAX, &a);
			if (!rc)
				live[n++] = (struct area){ a, pages * PG, piece };
			else if (rc != -ENOSPC)
				c->errs++, c->last_err = rc;
		} else {
			int i = (int)((r >> 8) % (uint64_t)n);

			rc = live[i].piece ? vmap_ram_free(c->s, live[i].a,
							   live[i].len)
					   : vmap_free(c->s, live[i].a);
			if (rc)
				c->errs++, c->last_err = rc;
			live[i] = live[--n];
		}
		atomic_fetch_add(&c->ops, 1);
	}
	while (n--) {
		int rc = live[n].piece ? vmap_ram_free(c->s, live[n].a,
						       live[n].len)
				       : vmap_free(c->s, live[n].a);

		if (rc)
			c->errs++, c->last_err = rc;
	}
	return NULL;
}

/* Two threads allocate and free while the main thread dumps: every dump
 * returns 0 and every line is well-formed, ranges before blocks. */
static void test_dump_churn(uint64_t seed, const cpu_set_t *all)
{
	struct vmap_config c;
	struct churn ch[2];
	pthread_t t[2];
	atomic_int stop = 0;
	cpu_set_t one;
	int bad_rc = 0, malformed = 0, late = 0, unordered = 0, outside = 0;

	vmap_config_init(&c);
	c.base = BASE;
	c.length = 8192 * PG;
	c.block_pages = 128;
	c.lazy_max_pages = 64;
	REQUIRE(world_make(&W, &c, "vmap_dump under churn") == 0);
	/* Let the threads run on every CPU. */
	sched_getaffinity(0, sizeof(one), &one);
	sched_setaffinity(0, sizeof(*all), all);
	for (int i = 0; i < 2; i++) {
		ch[i] = (struct churn){ .s = W.s, .seed = seed + (uint64_t)i,
					.stop = &stop };
		atomic_init(&ch[i].ops, 0);
		REQUIRE(pthread_create(&t[i], NULL, churn_main, &ch[i]) == 0);
	}
	while (atomic_load(&ch[0].ops) < 100 || atomic_load(&ch[1].ops) < 100)
		sched_yield();
	for (int i = 0; i < 300; i++) {
		if (dump_parse(W.s, &L))
			bad_rc++;
		malformed += L.malformed;
		late += L.range_after_block;
		unordered += L.unordered;
		for (size_t k = 0; k < L.n; k++)
			if (L.line[k].start < W.base || L.line[k].end > W.end ||
			    ((L.line[k].start | L.line[k].end) & (PG - 1)))
				outside++;
		if (L.malformed && malformed == L.malformed)
			fprintf(stderr, "  first malformed line: \"%s\"\n",
				L.first_bad);
	}
	atomic_store(&stop, 1);
	for (int i = 0; i < 2; i++) {
		pthread_join(t[i], NULL);
		CHECK_EQ(ch[i].errs, 0);
		if (ch[i].errs)
			fprintf(stderr, "  churn thread %d: last error %d\n",
				i, ch[i].last_err);
	}
	sched_setaffinity(0, sizeof(one), &one);
	CHECK_EQ(bad_rc, 0);
	CHECK_EQ(malformed, 0);
	CHECK_EQ(late, 0);
	CHECK_EQ(unordered, 0);
	CHECK_EQ(outside, 0);
	CHECK_EQ(vmap_purge(W.s, VMAP_PURGE_SYNC), 0);
	settle(&W);
	{
		struct item none[1];

		check_dump(&W, none, 0);
	}
	tell(&W);
	vmap_space_destroy(W.s);
}

/* ---- E. vmap_vmap offsets (finding 9) ---- */

/* Must fail with EINVAL and change nothing. */
static void offsets_refused(struct world *w, int fd, const uint64_t *pgoff,
			    size_t n, bool ram, const char *what)
{
	struct vmap_stats b4 = test_stats(w->s), af;
	void *p;

	errno = 0;
	p = ram ? vmap_map_ram(w->s, fd, pgoff, n)
		: vmap_vmap(w->s, fd, pgoff, n, PROT_READ | PROT_WRITE);
	CHECK(p == NULL);
	if (p || errno != EINVAL)
		fprintf(stderr, "  %s %s, offset %#llx: %p, errno %d\n",
			ram ? "vmap_map_ram" : "vmap_vmap", what,
			(unsigned long long)pgoff[n - 1], p, errno);
	CHECK_EQ(errno, EINVAL);
	af = test_stats(w->s);
	CHECK_EQ(af.busy_areas, b4.busy_areas);
	CHECK_EQ(af.map_syscalls, b4.map_syscalls);
	CHECK_EQ(af.alloc_failures, b4.alloc_failures);
	CHECK_EQ(af.blocks, b4.blocks);
	if (p) {
		CHECK_EQ(ram ? vmap_unmap_ram(w->s, p, n) : vmap_vunmap(w->s, p),
			 0);
		CHECK_EQ(vmap_purge(w->s, VMAP_PURGE_SYNC), 0);
	}
	settle(w);
}

static void offsets_taken(struct world *w, int fd, const uint64_t *pgoff,
			  size_t n, bool ram)
{
	void *p;

	errno = 0;
	p = ram ? vmap_map_ram(w->s, fd, pgoff, n)
		: vmap_vmap(w->s, fd, pgoff, n, PROT_READ | PROT_WRITE);
	if (!p)
		fprintf(stderr, "  %s, offset %#llx: errno %d\n",
			ram ? "vmap_map_ram" : "vmap_vmap",
			(unsigned long long)pgoff[n - 1], errno);
	CHECK(p || errno != EINVAL);
	if (p) {
		settle(w);
		CHECK_EQ(ram ? vmap_unmap_ram(w->s, p, n) : vmap_vunmap(w->s, p),
			 0);
		CHECK_EQ(vmap_purge(w->s, VMAP_PURGE_SYNC), 0);
	}
	settle(w);
}

/*
 * Page offset o is mapped at byte o * page; the kernel wants the mapping's
 * end, (o + 1) * page for one page, within INT64_MAX.  The largest offset
 * that passes is (INT64_MAX - page) / page (2^51 - 2 for 4 KiB pages);
 * the old check let 2^51 - 1 through, and mmap said EOVERFLOW.
 */
static void test_vmap_offsets(void)
{
	uint64_t ps = (uint64_t)sysconf(_SC_PAGESIZE);
	uint64_t max = ((uint64_t)INT64_MAX - ps) / ps;
	const uint64_t bad[] = { max + 1,
				 max + 2, /* (INT64_MAX / page is max + 1) */
				 (uint64_t)INT64_MAX / ps + 1,
				 TOP / ps,
				 UINT64_MAX / ps,
				 (uint64_t)INT64_MAX,
				 TOP,
				 UINT64_MAX };
	uint64_t pg[80];
	int fd;

	REQUIRE(vmap_memfd_create("config_test", 4, &fd) == 0);
	REQUIRE(mem_make(&W, 1ull << 30, 0, 0, 0, "vmap_vmap offsets") == 0);
	for (int ram = 0; ram < 2; ram++) {
		for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
			pg[0] = bad[i];
			offsets_refused(&W, fd, pg, 1, ram, "one page");
			/* Scattered, the bad one last. */
			pg[0] = 0;
			pg[1] = bad[i];
			offsets_refused(&W, fd, pg, 2, ram, "scattered");
		}
		/* A run that steps past the limit. */
		pg[0] = max;
		pg[1] = max + 1;
		offsets_refused(&W, fd, pg, 2, ram, "a run");
		/* More pages than a block takes: vmap_vmap's path. */
		for (int i = 0; i < 80; i++)
			pg[i] = (uint64_t)i;
		pg[79] = max + 1;
		offsets_refused(&W, fd, pg, 80, ram, "80 pages");

		pg[0] = max;
		offsets_taken(&W, fd, pg, 1, ram);
		pg[0] = max - 1;
		pg[1] = max;
		offsets_taken(&W, fd, pg, 2, ram);
		for (int i = 0; i < 80; i++)
			pg[i] = max - 79 + (uint64_t)i;
		offsets_taken(&W, fd, pg, 80, ram);
	}
	drain(&W);
	tell(&W);
	vmap_space_destroy(W.s);
	close(fd);
}

/* ---- main ---- */

static bool wanted(int argc, char **argv, const char *name)
{
	if (argc < 2)
		return true;
	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], name))
			return true;
	return false;
}

int main(int argc, char **argv)
{
	uint64_t seed = test_seed("config_test");
	cpu_set_t all, one;
	int cpu = sched_getcpu();

	/* One CPU, so that vmap blocks come from one queue. */
	REQUIRE(sched_getaffinity(0, sizeof(all), &all) == 0);
	CPU_ZERO(&one);
	CPU_SET(cpu < 0 ? 0 : cpu, &one);
	sched_setaffinity(0, sizeof(one), &one);

#define RUN(name, call)                                                     \
	do {                                                                \
		if (wanted(argc, argv, name)) {                             \
			int _f = test_failures;                             \
			quiet_budget = 12;                                  \
			call;                                               \
			printf("%-22s %s\n", name,                          \
			       test_failures == _f ? "ok" : "FAILED");      \
			fflush(stdout);                                     \
		}                                                           \
	} while (0)
	RUN("config_sweep", test_config_sweep());
	RUN("base_length", test_base_length());
	RUN("lazy_max", test_lazy_max());
	RUN("pool_max", test_pool_max_range());
	RUN("config_size", test_config_size());
	RUN("memory_edges", test_memory_edges());
	RUN("wrong_counts", test_wrong_counts());
	RUN("wrong_counts_memory", test_wrong_counts_memory());
	RUN("impossible", test_impossible());
	RUN("impossible_memory", test_impossible_memory());
	RUN("dump", test_dump());
	RUN("dump_memory", test_dump_memory());
	RUN("dump_churn", test_dump_churn(seed, &all));
	RUN("vmap_offsets", test_vmap_offsets());
#undef RUN
	return test_summary("config_test");
}
