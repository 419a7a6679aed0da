/* SPDX-License-Identifier: MIT */
/*
 * model_test.c - vmap against a reference model too simple to be wrong: one
 * state byte per page and a brute-force search of every candidate address.
 *
 * Random operations run on small spaces (256..1024 pages, so the model can
 * afford O(pages) per step), and after every one the return value, the
 * address, the flushed ranges, every counter of vmap_stats() and vmap_check()
 * must agree with the model.  The first disagreement prints the seed, the
 * operation and its index, and stops.  VMAP_SEED replays a run and
 * VMAP_MODEL_OPS sets the number of operations.
 *
 * In the pictures below A, B are busy areas, + lazy pages, . free pages.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <string.h>
#include <vmap.h>

#include "test.h"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define SANITIZED 1
#endif
#endif
#ifdef SANITIZED
#define DEFAULT_OPS 200000u	/* sanitizers cost ~5x; keep ctest short */
#else
#define DEFAULT_OPS 1000000u
#endif

#define MAX_PAGES 1024
#define SENTINEL 0x5e5e5e5e5e5e5e5eull /* out-parameter never written */

enum { FREE, BUSY, LAZY };
enum { OP_ALLOC, OP_XALLOC, OP_FREE, OP_BAD_FREE, OP_PURGE, OP_UNMAP,
       OP_BAD_ARGS, OP_BAD_CALL };
static const char *const op_name[] = { "alloc", "xalloc", "free", "bad free",
	"purge", "unmap_aliases", "bad-argument xalloc", "bad call" };

struct op {
	int kind, variant;
	uint64_t size, align, phase, nocross, vstart, vend, addr;
	unsigned flags, how;
};

/* What the model asks of an allocation, clipped as the header says. */
struct fit {
	uint64_t size, align, phase, nocross, lo, hi;
	bool topdown;
};

static struct model {
	uint64_t base, end, ps, npages, lazy_max;
	uint8_t state[MAX_PAGES];
	uint32_t len_at[MAX_PAGES];	/* pages of the area starting here */
	uint32_t busy[MAX_PAGES];	/* start pages of busy areas */
	size_t nbusy;
	uint64_t busy_pages, lazy_areas, lazy_pages;
	struct vmap_stats st;	/* the event counters the model predicts */
	bool flushed;		/* this operation flushed ... */
	size_t nexp;		/* ... these ranges */
	struct vmap_range exp[MAX_PAGES];
} m;

/* Everything the flush callback saw; it is called at most once per op. */
static struct flush_log {
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

	fprintf(stderr, "model_test.c:%d: FAILED, seed %#llx, op %llu: %s\n"
		"  size %#llx align %#llx phase %#llx nocross %#llx\n"
		"  window [%#llx, %#llx) flags %#x addr %#llx how %#x var %d\n"
		"  space [%#llx, %#llx) page %#llx lazy_max %llu\n  ",
		line, (unsigned long long)seed, (unsigned long long)op_index,
		op_name[cur.kind], (unsigned long long)cur.size,
		(unsigned long long)cur.align, (unsigned long long)cur.phase,
		(unsigned long long)cur.nocross, (unsigned long long)cur.vstart,
		(unsigned long long)cur.vend, cur.flags,
		(unsigned long long)cur.addr, cur.how, cur.variant,
		(unsigned long long)m.base, (unsigned long long)m.end,
		(unsigned long long)m.ps, (unsigned long long)m.lazy_max);
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

/* The properties the header promises each flush, checked as it happens. */
static void flush_cb(void *ctx, const struct vmap_range *r, size_t n)
{
	struct flush_log *log = ctx;

	log->calls++;
	log->n = n;
	if (n > MAX_PAGES) {
		log->bad = "more ranges than pages";
		return;
	}
	for (size_t i = 0; i < n; i++) {
		if (r[i].start >= r[i].end || (r[i].start | r[i].end) % m.ps)
			log->bad = "empty or unaligned range";
		else if (r[i].start < m.base || r[i].end > m.end)
			log->bad = "range outside the space";
		else if (i && r[i - 1].end >= r[i].start)
			log->bad = "ranges unsorted, overlapping or touching";
		log->r[i] = r[i];
	}
}

/* ---- the model ---- */

static uint64_t addr_of(uint64_t page)
{
	return m.base + page * m.ps;
}

/*
 * All lazy pages become free in one flush.  Touching lazy areas are one
 * range, so the expected ranges are just the maximal runs of lazy pages:
 *   AA++++..++BB+  ->  flush [2,6) [8,10) [12,13)
 */
static void model_purge(bool force)
{
	if (!m.lazy_areas && !force)
		return;
	m.nexp = 0;
	for (uint64_t p = 0, in_run = 0; p < m.npages; p++) {
		if (m.state[p] != LAZY) {
			in_run = 0;
			continue;
		}
		if (!in_run++)
			m.exp[m.nexp++].start = addr_of(p);
		m.exp[m.nexp - 1].end = addr_of(p + 1);
		m.state[p] = FREE;
		m.len_at[p] = 0;
	}
	m.st.purges++;
	m.st.flushes++;
	m.st.ranges_flushed += m.nexp;
	m.st.areas_purged += m.lazy_areas;
	if (m.lazy_areas > m.st.purge_max_areas)
		m.st.purge_max_areas = m.lazy_areas;
	m.lazy_areas = m.lazy_pages = 0;
	m.flushed = true;
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
	if (lo >= hi)
		return -EINVAL;
	/* lo < end <= 2^64 - page, so rounding up cannot overflow. */
	f->lo = (lo + pmask) & ~pmask;
	f->hi = hi & ~pmask;
	if (f->lo >= f->hi)
		return -EINVAL;
	f->phase = o->phase;
	f->nocross = o->nocross;
	f->topdown = o->flags & VMAP_XALLOC_TOPDOWN;
	return 0;
}

/* Try every page in order; run[p] = free pages from p on. */
static bool model_find(const struct fit *f, uint64_t *page)
{
	static uint32_t run[MAX_PAGES + 1];
	uint64_t lo = (f->lo - m.base) / m.ps, hi = (f->hi - m.base) / m.ps;
	uint64_t pages = f->size / m.ps;

	if (hi - lo < pages)
		return false;
	for (uint64_t p = m.npages; p-- > 0;)
		run[p] = m.state[p] == FREE ? run[p + 1] + 1 : 0;
	for (uint64_t i = 0; i <= hi - lo - pages; i++) {
		uint64_t p = f->topdown ? hi - pages - i : lo + i;
		uint64_t a = addr_of(p);

		if (run[p] >= pages && (a - f->phase) % f->align == 0 &&
		    (!f->nocross ||
		     a / f->nocross == (a + f->size - 1) / f->nocross)) {
			*page = p;
			return true;
		}
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
		/* Lazy pages are not free ("AA++" has no room for 2 pages)
		 * until the purge the failed attempt runs. */
		m.st.purge_retries++;
		model_purge(false);
		if (!model_find(&f, &p)) {
			m.st.alloc_failures++;
			return -ENOSPC;
		}
	}
	m.len_at[p] = f.size / m.ps;
	memset(&m.state[p], BUSY, m.len_at[p]);
	m.busy[m.nbusy++] = p;
	m.busy_pages += m.len_at[p];
	m.st.allocs++;
	*addr = addr_of(p);
	return 0;
}

static int model_free(uint64_t addr)
{
	uint64_t p = (addr - m.base) / m.ps;
	size_t i;

	if (addr < m.base || addr >= m.end || (addr - m.base) % m.ps ||
	    m.state[p] != BUSY || !m.len_at[p])
		return -ENOENT;
	for (i = 0; m.busy[i] != p; i++)
		;
	m.busy[i] = m.busy[--m.nbusy];
	memset(&m.state[p], LAZY, m.len_at[p]);
	m.busy_pages -= m.len_at[p];
	m.lazy_pages += m.len_at[p];
	m.lazy_areas++;
	m.st.frees++;
	if (m.lazy_pages > m.lazy_max)
		model_purge(false);	/* a TRY that nothing else contends */
	return 0;
}

/* ---- comparing ---- */

static void check_flush(void)
{
	EXPECT(!flog.bad, "flush callback: %s", flog.bad);
	EXPECT(flog.calls == m.st.flushes, "%llu flush calls, model %llu",
	       (unsigned long long)flog.calls,
	       (unsigned long long)m.st.flushes);
	if (!m.flushed)
		return;
	EXPECT(flog.n == m.nexp, "flushed %zu ranges, model %zu", flog.n,
	       m.nexp);
	for (size_t i = 0; i < m.nexp; i++)
		EXPECT(flog.r[i].start == m.exp[i].start &&
		       flog.r[i].end == m.exp[i].end,
		       "flush range %zu is [%#llx, %#llx), model [%#llx, %#llx)",
		       i, (unsigned long long)flog.r[i].start,
		       (unsigned long long)flog.r[i].end,
		       (unsigned long long)m.exp[i].start,
		       (unsigned long long)m.exp[i].end);
}

#define FIELD(x) { #x, offsetof(struct vmap_stats, x) }
static const struct {
	const char *name;
	size_t off;
} fields[] = {
	FIELD(total_pages),    FIELD(busy_areas),	  FIELD(busy_pages),
	FIELD(free_pages),     FIELD(free_blocks),	  FIELD(largest_free_pages),
	FIELD(lazy_areas),     FIELD(lazy_pages),	  FIELD(lazy_max_pages),
	FIELD(allocs),	       FIELD(frees),		  FIELD(alloc_failures),
	FIELD(purge_retries),  FIELD(purges),		  FIELD(flushes),
	FIELD(ranges_flushed), FIELD(areas_purged),	  FIELD(purge_max_areas),
};

static void check_state(void)
{
	struct vmap_stats st = { .size = sizeof(st) };
	uint64_t run = 0;
	int err = vmap_check(space);

	EXPECT(err == 0, "vmap_check() = %d", err);
	m.st.total_pages = m.npages;
	m.st.busy_areas = m.nbusy;
	m.st.busy_pages = m.busy_pages;
	m.st.lazy_areas = m.lazy_areas;
	m.st.lazy_pages = m.lazy_pages;
	m.st.lazy_max_pages = m.lazy_max;
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
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		uint64_t got, want;

		memcpy(&got, (char *)&st + fields[i].off, sizeof(got));
		memcpy(&want, (char *)&m.st + fields[i].off, sizeof(want));
		EXPECT(got == want, "stats.%s = %llu, model %llu",
		       fields[i].name, (unsigned long long)got,
		       (unsigned long long)want);
	}
	check_flush();
}

/* vmap_dump lists each busy and each lazy area, and each free block. */
static void check_dump(void)
{
	static const char *const name[] = { "free", "busy", "lazy" };
	char *got = NULL, *want = NULL, *g, *w;
	size_t glen, wlen;
	FILE *gf = open_memstream(&got, &glen);
	FILE *wf = open_memstream(&want, &wlen);
	int err;

	REQUIRE(gf && wf);
	err = vmap_dump(space, gf);
	fclose(gf);
	for (uint64_t p = 0, n; p < m.npages; p += n) {
		n = m.len_at[p];
		if (m.state[p] == FREE)
			for (n = 1; p + n < m.npages && !m.state[p + n]; n++)
				;
		fprintf(wf, "0x%016llx-0x%016llx %12llu %s\n",
			(unsigned long long)addr_of(p),
			(unsigned long long)addr_of(p + n),
			(unsigned long long)(n * m.ps), name[m.state[p]]);
	}
	fclose(wf);
	for (g = got, w = want; *g && *g == *w; g++, w++)
		;
	while (g > got && g[-1] != '\n')
		g--, w--;
	EXPECT(err == 0 && !*g && !*w, "vmap_dump() = %d, first difference:"
	       "\n  got   %.60s\n  model %.60s", err, g, w);
	free(got);
	free(want);
}

/* ---- generating operations ---- */

static uint64_t pow2(uint64_t k)
{
	return (uint64_t)1 << k;
}

static uint64_t log2_up(uint64_t x)
{
	return 64 - __builtin_clzll((x - 1) | 1) - (x == 1);
}

/* A sub-window of the space, sometimes unaligned or hanging out of it. */
static void gen_window(struct op *o)
{
	uint64_t a = rnd(m.npages), b = rnd(m.npages), t;

	if (a > b)
		t = a, a = b, b = t;
	o->vstart = addr_of(a) + (chance(30) ? rnd(m.ps) : 0);
	o->vend = addr_of(b + 1) - (chance(30) ? rnd(m.ps) : 0);
	if (chance(20))
		o->vstart = rnd(m.base + 1);
	if (chance(20))
		o->vend = m.end + rnd(UINT64_MAX - m.end) + 1;
}

/* A valid request, mostly ordinary, sometimes at the edges. */
static void gen_alloc(struct op *o, bool x)
{
	uint64_t align;

	o->size = (1 + rnd(chance(80) ? 16 : 64)) * m.ps;
	if (chance(20))
		o->size -= rnd(m.ps);	/* rounds up to the same pages */
	else if (chance(2))
		o->size = (m.npages + 1 + rnd(m.npages)) * m.ps;
	if (chance(50))		/* below the page size means the page size */
		o->align = pow2(rnd(log2_up(m.ps) + 7));
	else if (chance(2))	/* only base 0 (or a lucky base) has room */
		o->align = pow2(40 + rnd(24));
	o->vstart = 0;
	o->vend = UINT64_MAX;
	if (chance(30))
		gen_window(o);
	if (!x)
		return;
	align = o->align < m.ps ? m.ps : o->align;
	if (chance(50))
		o->phase = rnd(align / m.ps) * m.ps;
	if (chance(40)) {
		uint64_t k = log2_up((o->size + m.ps - 1) & ~(m.ps - 1));

		k += rnd(3);
		o->nocross = k < 64 ? pow2(k) : 0;
	}
	o->flags = chance(50) ? VMAP_XALLOC_TOPDOWN : 0;
}

/* Spoil one argument of a valid xalloc so that it must be -EINVAL. */
static void spoil(struct op *o)
{
	uint64_t p = addr_of(rnd(m.npages - 1));

	switch (o->variant = rnd(12)) {
	case 0: o->size = 0; break;
	case 1: o->size = UINT64_MAX - rnd(m.ps - 1); break;
	case 2: o->align = 3ull << rnd(62); break;
	case 3: o->phase += 1 + rnd(m.ps - 1); break;
	case 4: o->phase = (o->align < m.ps ? m.ps : o->align) + rnd(4) * m.ps;
		break;
	case 5: o->nocross = 3ull << rnd(62); break;
	case 6: o->nocross = m.ps >> (1 + rnd(3)); break;
	case 7: o->size = (2 + rnd(30)) * m.ps, o->nocross = m.ps; break;
	case 8: o->flags = 2u << rnd(30); break;
	case 9: o->vstart = rnd(UINT64_MAX), o->vend = rnd(o->vstart + 1);
		break;
	case 10: /* wholly outside the space: [0, base) or [end, max) */
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

/* An address vmap_free must refuse: -ENOENT, and nothing changes. */
static uint64_t gen_bad_free(struct op *o)
{
	uint64_t p = rnd(m.npages), q;

	switch (o->variant = rnd(4)) {
	case 0: /* inside a busy area: AA[A]A */
		if (!m.nbusy)
			break;
		q = m.busy[rnd(m.nbusy)];
		return addr_of(q) + 1 + rnd(m.len_at[q] * m.ps - 1);
	case 1: /* a lazy area's start: a double free */
		for (q = 0; q < m.npages; q++, p = (p + 1) % m.npages)
			if (m.state[p] == LAZY && m.len_at[p])
				return addr_of(p);
		break;
	case 2: /* a page never allocated, or already back in the free */
		for (q = 0; q < m.npages; q++, p = (p + 1) % m.npages)
			if (m.state[p] == FREE)
				return addr_of(p);
		break;
	}
	return chance(50) ? m.end + rnd(-m.end) : rnd(m.base + 1) - 1;
}

/* Every bad call is -EINVAL, writes no out-parameter, changes nothing. */
static void op_bad_call(struct op *o)
{
	struct vmap_stats st = {
		.size = offsetof(struct vmap_stats, busy_areas) - 1
	};
	uint64_t addr = SENTINEL, a = m.ps;
	int ret;

	switch (o->variant = rnd(10)) {
	case 0: ret = vmap_alloc(NULL, a, 0, 0, UINT64_MAX, &addr); break;
	case 1: ret = vmap_xalloc(NULL, a, 0, 0, 0, 0, -1, 0, &addr); break;
	case 2: ret = vmap_alloc(space, a, 0, 0, UINT64_MAX, NULL); break;
	case 3: ret = vmap_xalloc(space, a, 0, 0, 0, 0, -1, 1, NULL); break;
	case 4: ret = vmap_free(NULL, m.nbusy ? addr_of(m.busy[0]) : 0); break;
	case 5: ret = vmap_purge(NULL, VMAP_PURGE_SYNC); break;
	case 6: o->how = (4u << rnd(29)) | (unsigned)rnd(4);
		ret = vmap_purge(space, o->how);
		break;
	case 7: ret = vmap_unmap_aliases(NULL); break;
	case 8: ret = vmap_stats(chance(50) ? space : NULL, &st); break;
	default: ret = vmap_check(NULL); break;
	}
	EXPECT(ret == -EINVAL && addr == SENTINEL && !st.total_pages,
	       "returned %d, addr %#llx, stats.total_pages %llu", ret,
	       (unsigned long long)addr, (unsigned long long)st.total_pages);
}

static uint64_t n_einval, n_enospc, n_enoent;

static void step(struct op *o, unsigned p_alloc)
{
	uint64_t addr = SENTINEL, want = SENTINEL, r = rnd(1000);
	int ret, exp;

	memset(o, 0, sizeof(*o));
	m.flushed = false;
	o->kind = r < 20 ? OP_PURGE : r < 25 ? OP_UNMAP : r < 40 ? OP_BAD_FREE :
		  r < 50 ? OP_BAD_ARGS : r < 55 ? OP_BAD_CALL :
		  m.nbusy && !chance(p_alloc) ? OP_FREE :
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
		       ret, vmap_strerror(ret), (unsigned long long)addr, exp,
		       (unsigned long long)want);
		n_einval += ret == -EINVAL;
		n_enospc += ret == -ENOSPC;
		break;
	case OP_FREE:
	case OP_BAD_FREE:
		o->addr = o->kind == OP_FREE ? addr_of(m.busy[rnd(m.nbusy)])
					     : gen_bad_free(o);
		ret = vmap_free(space, o->addr);
		exp = model_free(o->addr);
		EXPECT(o->kind == OP_FREE || exp == -ENOENT,
		       "test bug: the bad free is valid");
		EXPECT(ret == exp, "returned %d (%s), model %d", ret,
		       vmap_strerror(ret), exp);
		n_enoent += ret == -ENOENT;
		break;
	case OP_PURGE:
	case OP_UNMAP:
		o->how = (unsigned)rnd(4);	/* TRY or SYNC, FORCE_FLUSH */
		if (o->kind == OP_UNMAP)
			ret = vmap_unmap_aliases(space);
		else
			ret = vmap_purge(space, o->how);
		model_purge(o->kind == OP_UNMAP ||
			    (o->how & VMAP_PURGE_FORCE_FLUSH));
		EXPECT(ret == 0, "returned %d (%s)", ret, vmap_strerror(ret));
		break;
	default:
		op_bad_call(o);
		break;
	}
}

static void new_space(void)
{
	static const uint64_t page_sizes[] = { 4096, 4096, 4096, 512, 65536 };
	struct vmap_config cfg;
	int err;

	vmap_space_destroy(space);
	memset(&m, 0, sizeof(m));
	memset(&flog, 0, sizeof(flog));
	m.ps = page_sizes[rnd(5)];
	m.npages = 256 + rnd(MAX_PAGES - 255);
	m.lazy_max = 16 + rnd(285);
	switch (rnd(4)) {
	case 0: m.base = 0; break;	/* 0 is aligned to everything */
	case 1: m.base = 0x10000000; break;
	case 2: m.base = rnd(1ull << 36) * m.ps; break;
	default: m.base = -m.ps * (m.npages + 1); break; /* the very top */
	}
	m.end = m.base + m.npages * m.ps;
	vmap_config_init(&cfg);
	cfg.base = m.base;
	cfg.length = m.npages * m.ps;
	cfg.page_size = m.ps;
	cfg.lazy_max_pages = m.lazy_max;
	cfg.flush = flush_cb;
	cfg.flush_ctx = &flog;
	err = vmap_space_create(&cfg, &space);
	EXPECT(err == 0, "vmap_space_create() = %d", err);
}

int main(void)
{
	const char *env = getenv("VMAP_MODEL_OPS");
	uint64_t total = env ? strtoull(env, NULL, 0) : DEFAULT_OPS;
	uint64_t spaces = 0, allocs = 0, flushes = 0, retries = 0;
	struct timespec t0, t1;

	seed = rng = test_seed("model_test");
	fflush(stdout);		/* the seed before any failure on stderr */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (op_index < total) {
		uint64_t n = 20000 + rnd(60000);
		unsigned p_alloc = 50;

		new_space();
		spaces++;
		for (uint64_t i = 0; i < n && op_index < total; i++) {
			/* Alternate filling and draining, so that both a full
			 * space (-ENOSPC, purge and retry) and an emptying
			 * one are common. */
			if (i % 2048 == 0)
				p_alloc = 30 + (unsigned)rnd(50);
			step(&cur, p_alloc);
			check_state();
			if (op_index++ % 1024 == 0)
				check_dump();
		}
		allocs += m.st.allocs;
		flushes += m.st.flushes;
		retries += m.st.purge_retries;
	}
	vmap_space_destroy(space);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	printf("model_test: %llu ops on %llu spaces in %.2f s: %llu allocs, "
	       "%llu -ENOSPC, %llu -EINVAL, %llu -ENOENT, %llu purge "
	       "retries, %llu flushes\n",
	       (unsigned long long)op_index, (unsigned long long)spaces,
	       (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9,
	       (unsigned long long)allocs, (unsigned long long)n_enospc,
	       (unsigned long long)n_einval, (unsigned long long)n_enoent,
	       (unsigned long long)retries, (unsigned long long)flushes);
	return test_summary("model_test");
}
