/* SPDX-License-Identifier: MIT */
/*
 * model_ops.c - the model test's operations: random operations on small range
 * spaces, each run on vmap and on the reference model (model_ref.c), and
 * checked against it after every one -- the return value and the address
 * here, the rest by check_state.  The first disagreement prints where the
 * choices came from (a seed, or a fuzz input), the operation and its index,
 * and stops.  The choices -- spaces, operations, arguments -- are drawn from
 * a PRNG (model_test.c) or from a fuzz input's bytes (fuzz/fuzz_model.c);
 * see model.h, whose drivers' side is at the end of this file.
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
#define MODEL_ENGINE
#include "model.h"
#include "test.h"

#define SENTINEL 0x5e5e5e5e5e5e5e5eull /* an out-parameter not written */

enum { OP_ALLOC, OP_XALLOC, OP_BAD_ARGS, OP_FREE, OP_BAD_FREE, OP_PURGE,
       OP_RAM_ALLOC, OP_RAM_FREE, OP_BAD_RAM, OP_AT, OP_RESERVE,
       OP_UNRESERVE, OP_STATE, OP_BAD_AT, OP_COMPLETE, OP_WALK, OP_SPAN };
static const char *const op_name[] = { "alloc", "xalloc", "bad xalloc",
				       "free", "bad free", "purge",
				       "ram alloc", "ram free", "bad ram op",
				       "alloc at", "reserve", "unreserve",
				       "range state", "bad range op",
				       "flush complete", "walk", "space add" };

vmap_space *space;
int model_nchecks;
static struct draw src;		/* where the choices come from */
static uint64_t seed;		/* ... a PRNG's seed */
static bool fuzzing;		/* ... or a fuzz input */
static size_t fed;		/* of this many bytes */
static uint64_t op_index;
static struct op cur;
struct model_tally tally;

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
void model_fail(const char *file, int line, const char *fmt, ...)
{
	const char *name = strrchr(file, '/');
	va_list ap;

	name = name ? name + 1 : file;
	if (fuzzing)
		fprintf(stderr, "%s:%d: fuzz input of %zu bytes, ", name,
			line, fed);
	else
		fprintf(stderr, "%s:%d: seed %#llx, ", name, line,
			(ull)seed);
	fprintf(stderr, "op %llu (%s): size %#llx "
		"align %#llx phase %#llx nocross %#llx window [%#llx, %#llx) "
		"flags %#x addr %#llx how %#x variant %d; space [%#llx, %#llx) "
		"page %#llx lazy_max %llu strict %d block_pages %llu "
		"pools %d async %d (%zu flights):\n  ",
		(ull)op_index, op_name[cur.kind], (ull)cur.size,
		(ull)cur.align, (ull)cur.phase, (ull)cur.nocross,
		(ull)cur.vstart, (ull)cur.vend, cur.flags, (ull)cur.addr,
		cur.how, cur.variant, (ull)m.base, (ull)m.end, (ull)m.ps,
		(ull)m.lazy_max, m.strict, (ull)m.bp, m.pools, m.async,
		m.nflt);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	if (fuzzing)
		abort();
	exit(1);
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
	case 1: /* a lazy (or in flight) area's start: a double free */
	case 2: /* a page never allocated, or already back */
		for (q = 0; q < m.npages; q++, p = (p + 1) % m.npages)
			if (o->variant == 1 ? (m.state[p] == LAZY ||
					       m.state[p] == FLT) && m.len_at[p]
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

/* ---- asynchronous flushes ---- */

/* A token no flight is likely to have: one far past those handed out, any
 * value, or the last one returned (completed already, perhaps). */
static uint64_t unknown_token(void)
{
	switch (rnd(3)) {
	case 0: return m.tok_next + (1ull << 40) + rnd(1ull << 20);
	case 1: return rnd(UINT64_MAX);
	default: return m.any_ret ? m.last_ret : m.tok_next;
	}
}

/*
 * What the callback will do if this operation purges (model.h: struct
 * plan): return a fresh token, or a quarter of the time the last one again
 * (shared: one completion completes both batches, an older one in flight
 * and this one, even when it comes during this call); and, 30% of the time
 * at its first call, complete a few tokens first: older flights' (out of
 * order; given back when the purge ends), the one it is about to return
 * (the batch starts completed), unknown ones (remembered: 0) -- now and
 * then up to FLIGHT_EARLY of them.
 */
static void draw_plans(void)
{
	struct plan *pl = &cbs.plan[0];

	pl->ret = m.any_ret && chance(25) ? m.last_ret : m.tok_next++;
	if (chance(30)) {
		uint64_t n = chance(5) ? FLIGHT_EARLY - rnd(4) : 1 + rnd(3);

		while (pl->ncomp < n) {
			uint64_t r = rnd(100);

			pl->comp[pl->ncomp++] =
				r < 45 && m.nflt ? m.flt[rnd(m.nflt)].token :
				r < 75 ? pl->ret : unknown_token();
		}
	}
	cbs.plan[1].ret = m.tok_next++;	/* a second call: no completions */
}

/* A plan that completes the token it returns and every flight: after the
 * purge nothing is in flight, and a miss cannot wait.  (Its own first:
 * the library remembered only the first 8 completions of a call once.) */
static void plan_everything(void)
{
	struct plan *pl = &cbs.plan[0];

	pl->ret = m.tok_next++;
	pl->comp[0] = pl->ret;
	pl->ncomp = 1;
	for (size_t i = 0; i < m.nflt; i++) {	/* each token once */
		unsigned k = 0;

		while (k < pl->ncomp && pl->comp[k] != m.flt[i].token)
			k++;
		if (k == pl->ncomp)
			pl->comp[pl->ncomp++] = m.flt[i].token;
	}
	for (unsigned i = pl->ncomp - 1; i > 1; i--) {	/* in any order */
		unsigned j = 1 + (unsigned)rnd(i);
		uint64_t t = pl->comp[i];

		pl->comp[i] = pl->comp[j];
		pl->comp[j] = t;
	}
}

/*
 * vmap_flush_complete (variant): 0 the token of a flight in flight, any of
 * them (out of order); 1 an unknown token: -ENOENT, nothing changes; 2 a
 * NULL space; 3 a space without flush_async: -EINVAL.  With `flight`,
 * variant 0 whenever anything is in flight.
 */
static void step_complete(struct op *o, bool flight)
{
	vmap_space *sp = space;
	uint64_t token;
	size_t i = 0, n = 0;
	int ret, exp;

	o->kind = OP_COMPLETE;
	if (!m.async)
		o->variant = chance(10) ? 2 : 3;
	else
		o->variant = m.nflt && (flight || chance(85)) ? 0 :
			     chance(85) ? 1 : 2;
	switch (o->variant) {
	case 0:
		i = rnd(m.nflt);
		token = m.flt[i].token;
		for (size_t k = 0; k < m.nflt; k++)
			n += m.flt[k].token == token;
		break;
	case 1:
		token = unknown_token();
		break;
	default:
		token = chance(50) ? rnd(UINT64_MAX) : rnd(4);
		sp = o->variant == 2 ? NULL : space;
		break;
	}
	o->addr = token;
	ret = vmap_flush_complete(sp, token);
	exp = sp ? model_complete(token) : -EINVAL;
	EXPECT(o->variant != 0 || exp == 0, "test bug: no flight has it");
	tally.completed += o->variant == 0;
	tally.out_of_order += o->variant == 0 && i > 0;
	tally.shared += n > 1;
	tally.unknown += exp == -ENOENT;
	tally.not_async += exp == -EINVAL;
	EXPECT(ret == exp, "returned %d (%s), model %d", ret,
	       vmap_strerror(ret), exp);
}

/*
 * An async space's call that would wait for a completion (model.h): the
 * purge it runs first calls the callback, which now completes everything
 * (1, half the time if anything is in flight); or a flight is completed
 * instead of the call, which is not made (false) -- always if no callback
 * would come first (2).
 */
static bool may_call(struct op *o, int waits)
{
	if (waits == 1 && (!m.nflt || chance(50))) {
		plan_everything();
		tally.unblocked++;
	} else if (waits) {
		tally.completed_first++;
		step_complete(o, true);
		return false;
	}
	return true;
}

/* ---- vmap_walk and vmap_largest_free ---- */

static int never_called(void *arg, const struct vmap_walk_range *r)
{
	(void)arg;
	(void)r;
	EXPECT(false, "the walk called back after refusing its arguments");
	return 0;
}

/*
 * vmap_walk (variant): 0 the whole space; 1 a window anywhere (unaligned,
 * maybe past the end), of any states; 2 the same, stopped by the callback's
 * return value after a few ranges; 3 a window wholly outside the space:
 * nothing; 4 refused arguments: -EINVAL and no call back.  And
 * vmap_largest_free (refused, in variant 4).
 */
static void step_walk(struct op *o)
{
	uint64_t from = m.base, to = m.end, now, after;
	unsigned what = VMAP_WALK_ALL;
	int ret;

	switch (o->variant = (int)rnd(5)) {
	case 1:
	case 2:
		from = addr_of(rnd(m.npages)) + (chance(30) ? rnd(m.ps) : 0);
		to = chance(10) ? UINT64_MAX - rnd(m.ps) :
		     from + 1 + rnd((m.end - from) + m.ps);
		if (!to)	/* a page past a space at the very top */
			to = UINT64_MAX;
		if (chance(10))
			from = rnd(m.base + 1);
		what = 1 + (unsigned)rnd(VMAP_WALK_ALL);
		break;
	case 3:
		if (m.base && chance(50))
			from = rnd(m.base), to = from + 1 + rnd(m.base - from);
		else	/* (the space ends a page below 2^64 at most) */
			from = m.end + rnd(m.ps - 1), to = UINT64_MAX;
		break;
	case 4: {
		vmap_space *sp = space;
		vmap_walk_fn fn = never_called;

		switch (rnd(6)) {
		case 0: to = rnd(from + 1); break;	/* from >= to */
		case 1: what = 0; break;
		case 2: what = 1u << (3 + rnd(29)); break;
		case 3: what |= 8u << rnd(28); break;
		case 4: fn = NULL; break;
		default: sp = NULL; break;
		}
		o->vstart = from;
		o->vend = to;
		o->flags = what;
		ret = vmap_walk(sp, from, to, what, fn, NULL);
		EXPECT(ret == -EINVAL, "vmap_walk() = %d, not -EINVAL", ret);
		now = after = SENTINEL;
		ret = vmap_largest_free(chance(50) ? NULL : space,
					chance(50) ? NULL : &now, NULL);
		EXPECT(ret == -EINVAL && now == SENTINEL && after == SENTINEL,
		       "vmap_largest_free() = %d, not -EINVAL", ret);
		return;
	}
	}
	o->vstart = from;
	o->vend = to;
	o->flags = what;
	if (o->variant == 2)
		check_walk(from, to, what, 1 + rnd(8),
			   chance(50) ? 1 + (int)rnd(1000) : -1 - (int)rnd(99));
	else
		check_walk(from, to, what, 0, 0);
	check_largest();
	tally.walks++;
	tally.largest++;
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
	if (!may_call(o, model_ram_alloc_waits(o->size)))
		return;
	EXPECT(!model_ram_alloc_waits(o->size), "test bug: it still waits");
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

/* ---- areas at fixed addresses, reservations, range states ---- */

/* The first page at or after a random one (wrapping) whose state is st and,
 * with start, where an area starts; NO_PAGE if none. */
static uint64_t find_page(int st, bool start)
{
	uint64_t p = rnd(m.npages);

	for (uint64_t q = 0; q < m.npages; q++, p = (p + 1) % m.npages)
		if (m.state[p] == st && (!start || m.len_at[p]))
			return p;
	return NO_PAGE;
}

/* A pooled area that a take would look at (one of the first POOL_SCAN of
 * its list), mostly, or the one just past them; NO_PAGE if the pools are
 * empty (always, in a LOWEST_FIT space). */
static uint64_t pooled_area(void)
{
	unsigned c0 = (unsigned)rnd(POOL_PAGES), g0 = (unsigned)rnd(2);

	for (unsigned i = 0; i < 2 * POOL_PAGES; i++) {
		unsigned c = (c0 + i) % POOL_PAGES;
		uint32_t p = m.phead[(g0 + i / POOL_PAGES) % 2][c];

		if (p == NO_PAGE)
			continue;
		for (uint64_t k = rnd(POOL_SCAN + 1);
		     k && m.pnext[p] != NO_PAGE; k--)
			p = m.pnext[p];
		return p;
	}
	return NO_PAGE;
}

/*
 * A range of the space for the fixed-address calls, [o->addr, o->addr +
 * o->size), drawn where the outcomes are (o->variant says which):
 *   0  a busy area, a reservation or a block: -EBUSY (maybe a page more
 *      or less, or shifted a page)
 *   1  a lazy area, maybe with free pages around: -EAGAIN, or the purge;
 *      in an async space, half the time an area in flight
 *   2  free pages, maybe running on into what follows them
 *   3  a pooled area: taken from its pool if a take would look at it,
 *      else after the pools are drained; or a page more
 *   4  anywhere
 * Always inside the space, page-aligned, not empty.
 */
static void gen_range(struct op *o)
{
	uint64_t p = NO_PAGE, n = 0, max = m.small ? 4 : 16;

	switch (o->variant = (int)rnd(5)) {
	case 0: {
		uint64_t k = rnd(m.nbusy + m.nrsv + m.nblk);

		if (k < m.nbusy)
			p = m.busy[k];
		else if (k < m.nbusy + m.nrsv)
			p = m.rsv[k - m.nbusy];
		else
			p = find_page(BLK, true);
		if (p == NO_PAGE)
			break;
		n = m.len_at[p];
		break;
	}
	case 1:
		if ((m.async && chance(50) &&
		     (p = find_page(FLT, true)) != NO_PAGE) ||
		    (p = find_page(LAZY, true)) != NO_PAGE)
			n = m.len_at[p];
		break;
	case 2:
		if ((p = find_page(FREE, false)) == NO_PAGE)
			break;
		while (p + n < m.npages && m.state[p + n] == FREE && n < max)
			n++;
		n = 1 + rnd(n);
		break;
	case 3:
		if ((p = pooled_area()) != NO_PAGE)
			n = m.len_at[p];
		break;
	}
	if (p == NO_PAGE) {
		o->variant = 4;
		p = rnd(m.npages);
		n = 1 + rnd(max);
	} else if (o->variant != 2 && chance(25)) {
		/* A page more or less, or the range a page over. */
		switch (rnd(3)) {
		case 0: n++; break;
		case 1: n = n > 1 ? n - 1 : n + 1; break;
		default: p = p ? p - 1 : p; n++; break;
		}
	} else if (o->variant == 2 && chance(20)) {
		n += 1 + rnd(max);	/* on into what follows */
	}
	if (p + n > m.npages)
		n = m.npages - p;
	o->addr = addr_of(p);
	o->size = n * m.ps;
}

/* vmap_alloc_at or vmap_reserve of a range drawn by gen_range, maybe with
 * VMAP_AT_PURGE. */
static void step_at(struct op *o, bool reserve)
{
	uint64_t hits = m.st.cached_hits, retries = m.st.purge_retries;
	uint64_t decayed = m.st.cached_decayed;
	int ret, exp;

	gen_range(o);
	o->flags = chance(50) ? VMAP_AT_PURGE : 0;
	if (!may_call(o, model_at_waits(o->addr, o->size, o->flags)))
		return;
	EXPECT(!model_at_waits(o->addr, o->size, o->flags),
	       "test bug: it still waits");
	ret = reserve ? vmap_reserve(space, o->addr, o->size, o->flags)
		      : vmap_alloc_at(space, o->addr, o->size, o->flags);
	exp = model_alloc_at(o->addr, o->size, o->flags, reserve);
	EXPECT(ret == exp, "returned %d (%s), model %d", ret,
	       vmap_strerror(ret), exp);
	tally.at++;
	tally.placed += !exp;
	tally.pooled += !exp && m.st.cached_hits != hits;
	tally.purged += !exp && m.st.purge_retries != retries;
	tally.drained += !exp && m.st.purge_retries == retries &&
			 m.st.cached_decayed != decayed;
	tally.busy += exp == -EBUSY;
	tally.again += exp == -EAGAIN;
}

/*
 * A reservation given back, or refused: variant
 *   0  vmap_unreserve of a live reservation: straight to the free tree
 *   1  vmap_free of one: -EPERM, nothing changes
 *   2  vmap_free_sized of one: -EPERM, or -EINVAL for another size
 *   3  vmap_ram_free of one with its length: -EPERM above RAM_MAX pages,
 *      else -EINVAL (a tree area, not a piece)
 *   4  vmap_unreserve of a busy area that is not a reservation: -EPERM
 *   5  vmap_unreserve of what vmap_free would call no area -- inside an
 *      area or a reservation, a lazy or free page, a block -- or of the
 *      reservation given back last: -ENOENT (unless taken again since)
 */
static void step_unreserve(struct op *o)
{
	long i = m.nrsv ? (long)rnd(m.nrsv) : -1;
	uint64_t last = m.unreserved ? addr_of(m.unreserved - 1) : SENTINEL;
	uint64_t pages = i >= 0 ? m.len_at[m.rsv[i]] : 0;
	int ret, exp, want;

	o->variant = i < 0 ? 4 + (int)rnd(2) :
		     chance(60) ? 0 : (int)rnd(6);
	if (o->variant == 4 && !m.nbusy)
		o->variant = 5;
	if (o->variant <= 3)
		o->addr = addr_of(m.rsv[i]);
	switch (o->variant) {
	case 0:
		ret = vmap_unreserve(space, o->addr);
		exp = model_unreserve(o->addr);
		want = 0;
		m.unreserved = (uint32_t)((o->addr - m.base) / m.ps) + 1;
		tally.unreserved += !exp;
		break;
	case 1:
		ret = vmap_free(space, o->addr);
		exp = model_free(o->addr);
		want = -EPERM;
		break;
	case 2: /* the size is checked first */
		o->size = (pages + (uint64_t)chance(20)) * m.ps - rnd(m.ps);
		ret = vmap_free_sized(space, o->addr, o->size);
		want = to_pages(o->size) != pages ? -EINVAL : -EPERM;
		exp = want == -EINVAL ? -EINVAL : model_free(o->addr);
		break;
	case 3:
		o->size = pages * m.ps - rnd(m.ps);
		ret = vmap_ram_free(space, o->addr, o->size);
		exp = model_ram_free(o->addr, o->size);
		want = pages > RAM_MAX ? -EPERM : -EINVAL;
		break;
	case 4:
		o->addr = addr_of(m.busy[rnd(m.nbusy)]);
		ret = vmap_unreserve(space, o->addr);
		exp = model_unreserve(o->addr);
		want = -EPERM;
		break;
	default:
		if (i >= 0 && pages > 1 && chance(20))
			o->addr = addr_of(m.rsv[i] + 1 + rnd(pages - 1));
		else if (last != SENTINEL && chance(20))
			o->addr = last;	/* anything may be there now */
		else
			o->addr = gen_bad_free(o);
		ret = vmap_unreserve(space, o->addr);
		exp = model_unreserve(o->addr);
		want = o->addr == last ? exp : -ENOENT;
		o->variant = 5;
		break;
	}
	tally.refused += exp == -EPERM && o->variant <= 3;
	EXPECT(exp == want, "test bug: the model says %d, not %d", exp, want);
	EXPECT(ret == exp, "returned %d (%s), model %d", ret,
	       vmap_strerror(ret), exp);
}

/* vmap_range_state of a range drawn by gen_range: nothing changes. */
/* ---- spans (VMAP_SPACE_EMPTY spaces) ---- */

/* vmap_space_add of [start, start + length) against the model's. */
static void span_add(struct op *o, uint64_t start, uint64_t length)
{
	int ret, exp;

	o->addr = start;
	o->size = length;
	ret = vmap_space_add(space, start, length);
	exp = model_space_add(start, length);
	tally.span_bad[0] += exp == -EEXIST;
	tally.span_bad[1] += exp == -ERANGE;
	tally.span_bad[2] += exp == -EINVAL;
	EXPECT(ret == exp, "vmap_space_add(%#llx, %#llx) = %d (%s), model %d",
	       (ull)start, (ull)length, ret, vmap_strerror(ret), exp);
}

/* The first page at or after p (wrapping) that is absent; NO_PAGE if
 * none. */
static uint64_t absent_from(uint64_t p)
{
	for (uint64_t q = 0; q < m.npages; q++, p = (p + 1) % m.npages)
		if (m.state[p] == ABSENT)
			return p;
	return NO_PAGE;
}

/*
 * A new span, mostly: absent pages from a random absent one, as many as are
 * absent there or fewer (so touching spans on one side, both, or neither);
 * or a bad one, which changes nothing: overlapping a span (-EEXIST),
 * outside the range (-ERANGE), unaligned or empty or wrapping (-EINVAL).
 */
static void step_span(struct op *o)
{
	uint64_t p = absent_from(rnd(m.npages)), n = 0, start, len;

	switch (o->variant = p == NO_PAGE ? 1 + (int)rnd(4) :
			     chance(60) ? 0 : 1 + (int)rnd(4)) {
	case 0:
		while (p + n < m.npages && m.state[p + n] == ABSENT)
			n++;
		n = chance(50) ? n : 1 + rnd(n);
		if (chance(30) && n > 1) /* leave a gap before it */
			p++, n--;
		span_add(o, addr_of(p), n * m.ps);
		return;
	case 1: /* over a span's pages, or over an absent run's end */
		p = rnd(m.npages);
		n = 1 + rnd(m.npages - p);
		span_add(o, addr_of(p), n * m.ps);
		return;
	case 2: /* outside: below the base, past the end, or both */
		start = m.base >= m.ps && chance(50) ?
			m.base - m.ps * (1 + rnd(m.base / m.ps < 8 ? m.base / m.ps : 8)) :
			addr_of(rnd(m.npages));
		len = m.end - start + m.ps * rnd(3);
		if (!len)
			len = m.ps;
		span_add(o, start, len);
		return;
	case 3: /* unaligned, or empty */
		start = addr_of(rnd(m.npages));
		len = m.ps * (1 + rnd(4));
		switch (rnd(3)) {
		case 0: start += 1 + rnd(m.ps - 1); break;
		case 1: len += 1 + rnd(m.ps - 1); break;
		default: len = 0; break;
		}
		span_add(o, start, len);
		return;
	default: /* wrapping past 2^64 */
		start = addr_of(rnd(m.npages));
		span_add(o, start, -start + m.ps * (1 + rnd(4)));
		return;
	}
}

/*
 * The spans a VMAP_SPACE_EMPTY space starts with: from the bottom, runs of
 * pages that are a span or stay absent; spans follow spans (touching: a
 * cut) or a gap.  At least one span.
 */
static void first_spans(void)
{
	struct op o = { .kind = OP_SPAN };
	uint64_t p = 0, n, spans = 0;

	while (p < m.npages) {
		n = 1 + rnd(chance(50) ? 16 : m.npages / 3);
		n = n < m.npages - p ? n : m.npages - p;
		if (chance(70) || (!spans && p + n >= m.npages)) {
			span_add(&o, addr_of(p), n * m.ps);
			spans++;
		}
		p += n;
	}
}

static void step_state(struct op *o)
{
	int ret, exp, state = -1, want = -1;

	gen_range(o);
	ret = vmap_range_state(space, o->addr, o->size, &state);
	exp = model_range_state(o->addr, o->size, &want);
	EXPECT(ret == exp && state == want,
	       "returned %d (%s), state %d; model %d, state %d", ret,
	       vmap_strerror(ret), state, exp, want);
	if (!exp)
		tally.state[want]++;
}

/*
 * The fixed-address calls, refused: -EINVAL or -ERANGE, and nothing changes
 * (no counter either) -- a NULL space or out-parameter, size 0, an
 * unaligned address or size, a range that wraps past 2^64, an unknown flag;
 * a range that leaves the space.  o->how says which call: 0 vmap_alloc_at,
 * 1 vmap_reserve, 2 vmap_range_state, 3 vmap_unreserve (NULL space only).
 */
static void step_bad_at(struct op *o)
{
	uint64_t p = rnd(m.npages), n = 1 + rnd(16);
	int ret, exp = 0, state = -1;
	vmap_space *sp = space;

	o->how = (unsigned)rnd(4);
	o->addr = addr_of(p);
	o->size = n * m.ps;
	switch (o->variant = o->how == 3 ? 7 : (int)rnd(8)) {
	case 0: o->size = 0; break;
	case 1: o->addr += 1 + rnd(m.ps - 1); break;
	case 2: o->size -= 1 + rnd(m.ps - 1); break;
	case 3: /* a page of the space's top and 2^64 - addr more: ends at
		 * 2^64 (-ERANGE) or goes past it (-EINVAL) */
		o->addr = m.end - (1 + rnd(8)) * m.ps;
		o->size = -o->addr + rnd(4) * m.ps;
		break;
	case 4: /* an unknown flag; vmap_range_state: nowhere to put it */
		o->flags = 2u << rnd(31) | (chance(50) ? VMAP_AT_PURGE : 0);
		break;
	case 5: /* below the space, maybe reaching into it */
		if (m.base) {
			n = m.base / m.ps < 8 ? m.base / m.ps : 8;
			o->addr = m.base - (1 + rnd(n)) * m.ps;
			break;
		}
		/* fall through */
	case 6: /* past the end: starting at or near it */
		o->variant = 6;
		o->addr = m.end - rnd(4) * m.ps;
		o->size = (5 + rnd(8)) * m.ps;
		break;
	default:
		o->variant = 7;
		sp = NULL;
		break;
	}
	switch (o->how) {
	case 0:
	case 1:
		ret = o->how ? vmap_reserve(sp, o->addr, o->size, o->flags)
			     : vmap_alloc_at(sp, o->addr, o->size, o->flags);
		if (sp)
			exp = model_alloc_at(o->addr, o->size, o->flags,
					     o->how);
		break;
	case 2:
		ret = vmap_range_state(sp, o->addr, o->size,
				       o->variant == 4 ? NULL : &state);
		if (sp && o->variant != 4)
			exp = model_range_state(o->addr, o->size, &state);
		EXPECT(state == -1, "state %d written on failure", state);
		break;
	default:
		ret = vmap_unreserve(sp, o->addr);
		break;
	}
	if (!sp || (o->how == 2 && o->variant == 4))
		exp = -EINVAL;
	EXPECT(exp == -EINVAL ||
	       (exp == -ERANGE && (o->variant >= 5 ||
				   (o->variant == 3 && !(o->addr + o->size)))),
	       "test bug: the model says %d", exp);
	EXPECT(ret == exp, "returned %d (%s), model %d", ret,
	       vmap_strerror(ret), exp);
}

/* The fixed-address ops' share of step()'s 1000: 3% vmap_alloc_at, 3%
 * vmap_reserve or a reservation given back (or refused), 1.5%
 * vmap_range_state, 0.5% refused input. */
#define AT_OPS 80
/* Below them, vmap_walk's 1%; and below that vmap_flush_complete's: 5% in
 * async spaces, 0.5% elsewhere (-EINVAL).  In async spaces also n% of the
 * other steps with n flights in flight, and every step when they pile up:
 * a purge starts a flight every few steps, each needs a completion, and
 * about 10 in flight leave room for out-of-order and shared ones. */
#define WALK_OPS 10
#define COMPLETE_OPS(async) ((async) ? 50 : 5)

static uint64_t rsv_pages(void)
{
	uint64_t pages = 0;

	for (size_t i = 0; i < m.nrsv; i++)
		pages += m.len_at[m.rsv[i]];
	return pages;
}

/* r in [1000 - AT_OPS, 1000): which.  Reservations go back when the space
 * drains, and always past an eighth of it: they would crowd out the rest. */
static int at_kind(uint64_t r, bool drain)
{
	r -= 1000 - AT_OPS;
	if (r < 30)
		return OP_AT;
	if (r < 60)
		return m.nrsv && (drain || rsv_pages() > m.npages / 8)
			       ? OP_UNRESERVE
			       : OP_RESERVE;
	return r < 75 ? OP_STATE : OP_BAD_AT;
}

static void step(struct op *o, unsigned p_alloc)
{
	uint64_t addr = SENTINEL, want = SENTINEL, r = rnd(1000);
	uint64_t walk = 1000 - AT_OPS - WALK_OPS;
	int ret, exp;
	bool drain;

	memset(o, 0, sizeof(*o));
	memset(&cbs, 0, sizeof(cbs));
	/* In ram spaces, 4.5% bad ram ops and 60% of the rest ram ops.
	 * Freed pieces give no room back until their block goes: after a
	 * miss, drain harder, or the space stays full of blocks.  The top
	 * AT_OPS of the thousand are the fixed-address ops (at_kind). */
	drain = !chance(p_alloc) || m.st.busy_pages > m.cap ||
		(m.ram_full && chance(50));
	o->kind = r >= 1000 - AT_OPS ? at_kind(r, drain) :
		  r >= walk ? OP_WALK :
		  r >= walk - COMPLETE_OPS(m.async) ? OP_COMPLETE :
		  r < 25 ? OP_BAD_FREE : r < 35 ? OP_BAD_ARGS :
		  r < 35 + m.purge_rate ? OP_PURGE :
		  m.ram && r < 80 + m.purge_rate ? OP_BAD_RAM :
		  m.ram && chance(60) ?
		  ((m.npc || big_area() >= 0) && drain ? OP_RAM_FREE
						       : OP_RAM_ALLOC) :
		  m.nbusy && drain ? OP_FREE :
		  chance(60) ? OP_ALLOC : OP_XALLOC;
	if (m.async && o->kind != OP_COMPLETE &&
	    (m.nflt >= MAX_FLIGHTS - 8 || rnd(100) < m.nflt))
		o->kind = OP_COMPLETE;
	if (m.async)
		draw_plans();
	if (m.empty && o->kind != OP_COMPLETE && chance(3))
		o->kind = OP_SPAN;
	switch (o->kind) {
	case OP_SPAN:
		step_span(o);
		return;
	case OP_COMPLETE:
		step_complete(o, m.nflt >= MAX_FLIGHTS - 8);
		return;
	case OP_WALK:
		step_walk(o);
		return;
	case OP_AT:
	case OP_RESERVE:
		step_at(o, o->kind == OP_RESERVE);
		return;
	case OP_UNRESERVE:
		step_unreserve(o);
		return;
	case OP_STATE:
		step_state(o);
		return;
	case OP_BAD_AT:
		step_bad_at(o);
		return;
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
		if (!may_call(o, model_alloc_waits(o)))
			return;
		EXPECT(!model_alloc_waits(o), "test bug: it still waits");
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
		if (o->kind == OP_FREE && chance(30)) {
			/* vmap_free_sized: the size asked for (any that
			 * rounds up to the area), or, variant 1, a page
			 * more -- -EINVAL, nothing changed. */
			uint64_t p = (o->addr - m.base) / m.ps;

			o->variant = chance(20);
			o->size = (m.len_at[p] + (uint64_t)o->variant) * m.ps -
				  rnd(m.ps);
			ret = vmap_free_sized(space, o->addr, o->size);
			exp = o->variant ? -EINVAL : model_free(o->addr);
			break;
		}
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
	model_reset();
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
	/* Both placement policies: node pools, or the exact lowest fit. */
	m.pools = chance(50);
	cfg.flags = (m.strict ? VMAP_SPACE_STRICT : 0) |
		    (m.pools ? 0 : VMAP_SPACE_LOWEST_FIT);
	cfg.block_pages = m.bp;
	m.bp = m.bp ? m.bp : 1024;	/* the kernel's */
	/*
	 * A quarter of the spaces (not strict ones: the library refuses)
	 * flush asynchronously; tokens from 0, from 1, through the top of
	 * the 64 bits to 0, or from anywhere.
	 */
	m.async = !m.strict && chance(25);
	/* A fifth of the others: spans. */
	m.empty = !m.async && chance(20);
	if (m.empty) {
		memset(m.state, ABSENT, m.npages);
		tally.span_spaces++;
		m.st.total_pages = 0;
		cfg.flags |= VMAP_SPACE_EMPTY;
	}
	if (m.async) {
		cfg.flush = NULL;
		cfg.flush_async = flush_async_cb;
		switch (rnd(4)) {
		case 0: m.tok_next = 0; break;
		case 1: m.tok_next = 1; break;
		case 2: m.tok_next = -(1 + rnd(4)); break;
		default: m.tok_next = rnd(UINT64_MAX); break;
		}
	}
	m.st.block_pages = m.bp;
	err = vmap_space_create(&cfg, &space);
	EXPECT(err == 0, "vmap_space_create() = %d", err);
	if (m.empty) {
		first_spans();
		check_state(0);
	}
}

/* ---- the drivers' side (model.h) ---- */

void model_seed(uint64_t s)
{
	seed = s;
	fuzzing = false;
	op_index = 0;
	memset(&tally, 0, sizeof(tally));
	draw_seed(&src, s);
}

void model_feed(const uint8_t *data, size_t size)
{
	fuzzing = true;
	fed = size;
	op_index = 0;
	memset(&tally, 0, sizeof(tally));
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

/* Steps between whole-space walks (and largest-free checks). */
#ifndef WALK_EVERY
#define WALK_EVERY 16
#endif

void model_step(unsigned p_alloc)
{
	uint64_t flushes_before = m.st.flushes;

	step(&cur, p_alloc);
	check_state(flushes_before);
	/* And now and then the whole space through vmap_walk. */
	if (op_index % WALK_EVERY == 0) {
		check_walk(m.base, m.end, VMAP_WALK_ALL, 0, 0);
		check_largest();
	}
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
	return model_nchecks;
}

const struct model_tally *model_tally(void)
{
	return &tally;
}
