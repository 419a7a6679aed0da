/* SPDX-License-Identifier: MIT */
/*
 * mplan.c - pass 3 of reading an strace log (strace.c has passes 1 and 2):
 * the calls run, in the order they took effect, against a model of the
 * program's address space -- pieces, anonymous or file, their protection,
 * touched or not, and the anonymous mapping (the *object*) each belongs to
 * -- which checks them and writes the replay plan's steps (strace.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "strace_int.h"

/* ---- pass 3: the model ------------------------------------------------ */

/* The first piece that ends after addr. */
static size_t pc_find(const struct rd *r, uint64_t addr)
{
	size_t lo = 0, hi = r->npc;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (r->pc[mid].end <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static int pc_insert(struct rd *r, size_t i, const struct piece *p)
{
	struct piece *n = grow(r->pc, &r->pccap, r->npc, sizeof(*n));

	if (!n)
		return err(r, r->line, "out of memory");
	r->pc = n;
	memmove(&r->pc[i + 1], &r->pc[i], (r->npc - i) * sizeof(*n));
	r->pc[i] = *p;
	r->npc++;
	return 0;
}

static void pc_remove(struct rd *r, size_t i, size_t j)
{
	memmove(&r->pc[i], &r->pc[j], (r->npc - j) * sizeof(*r->pc));
	r->npc -= j - i;
}

/* Make addr a piece boundary. */
static int pc_split(struct rd *r, uint64_t addr)
{
	size_t i = pc_find(r, addr);
	struct piece tail;

	if (i == r->npc || r->pc[i].start >= addr)
		return 0;
	tail = r->pc[i];
	tail.start = addr;
	r->pc[i].end = addr;
	return pc_insert(r, i + 1, &tail);
}

/* Pieces [i, j) of [a, b), after splitting there: j is past the last. */
static int pc_range(struct rd *r, uint64_t a, uint64_t b, size_t *i,
		    size_t *j)
{
	if (pc_split(r, a) || pc_split(r, b))
		return -1;
	*i = pc_find(r, a);
	for (*j = *i; *j < r->npc && r->pc[*j].start < b; (*j)++)
		;
	return 0;
}

static bool pc_same(const struct piece *x, const struct piece *y)
{
	return x->end == y->start && x->anon == y->anon && x->obj == y->obj &&
	       x->prot == y->prot && x->touched == y->touched;
}

/* Join pieces around [a, b) that differ in nothing, to keep the map small. */
static void pc_merge(struct rd *r, uint64_t a, uint64_t b)
{
	size_t i = pc_find(r, a);

	if (i > 0)
		i--;
	while (i + 1 < r->npc && r->pc[i].start <= b) {
		if (pc_same(&r->pc[i], &r->pc[i + 1])) {
			r->pc[i].end = r->pc[i + 1].end;
			pc_remove(r, i + 1, i + 2);
		} else {
			i++;
		}
	}
}

/* Consecutive pieces from i on that belong to one object, back to back. */
static size_t group_end(const struct rd *r, size_t i, size_t j)
{
	size_t k = i + 1;

	while (k < j && r->pc[k].anon && r->pc[k].obj == r->pc[i].obj &&
	       r->pc[k].start == r->pc[k - 1].end)
		k++;
	return k;
}

static struct mop *push_op(struct rd *r, unsigned kind, uint32_t obj,
			   uint64_t a, uint64_t len)
{
	struct mplan *p = r->p;
	struct mop *op = grow(p->op, &p->cap, p->nop, sizeof(*op));

	if (!op) {
		err(r, r->line, "out of memory");
		return NULL;
	}
	p->op = op;
	op = &p->op[p->nop++];
	memset(op, 0, sizeof(*op));
	op->kind = (uint8_t)kind;
	op->obj = op->obj2 = obj;
	op->off = a - r->obj[obj].base;
	op->len = len;
	op->vlen = r->obj[obj].vlen;
	op->probe = UINT64_MAX;
	op->line = r->line;
	return op;
}

/* Fill in what --check compares after a step: the model's totals. */
static void seal_op(struct rd *r, struct mop *op)
{
	op->live = r->live;
	op->obj_live = r->obj[op->obj].live;
	if (r->vlen_total > r->p->st.peak_vlen)
		r->p->st.peak_vlen = r->vlen_total;
	if (r->live > r->p->st.peak_live)
		r->p->st.peak_live = r->live;
}

static int touch(struct rd *r, struct piece *pc)
{
	struct mop *op;

	if (!pc->anon || !(pc->prot & P_WRITE) || pc->touched)
		return 0;
	op = push_op(r, MOP_TOUCH, pc->obj, pc->start, pc->end - pc->start);
	if (!op)
		return -1;
	pc->touched = 1;
	r->p->st.touched_pages += (pc->end - pc->start) / r->p->page;
	seal_op(r, op);
	return 0;
}

static int new_object(struct rd *r, uint64_t a, uint64_t len, unsigned prot,
		      uint64_t flags)
{
	struct piece pc = { a, a + len, (uint32_t)r->p->nobj, 1,
			    (uint8_t)prot, 0 };
	struct mop *op;

	r->obj = grow(r->obj, &r->objcap, r->p->nobj, sizeof(*r->obj));
	if (!r->obj)
		return err(r, r->line, "out of memory");
	r->obj[pc.obj] = (struct mobj){ a, len, len };
	r->p->nobj++;
	r->p->st.objects++;
	r->live += len;
	r->vlen_total += len;
	op = push_op(r, MOP_MAP, pc.obj, a, len);
	if (!op)
		return -1;
	op->arg = (int32_t)prot;
	op->flags = (uint16_t)((flags & F_NORESERVE ? MOPF_NORESERVE : 0) |
			       (flags & F_STACK ? MOPF_STACK : 0));
	seal_op(r, op);
	if (pc_insert(r, pc_find(r, a), &pc))
		return -1;
	return touch(r, &r->pc[pc_find(r, a)]);
}

/* Where obj's last live piece ends, as an offset; 0 if none is left. */
static uint64_t live_end(const struct rd *r, uint32_t obj)
{
	const struct mobj *o = &r->obj[obj];
	size_t i = pc_find(r, o->base);
	uint64_t end = 0;

	for (; i < r->npc && r->pc[i].start < o->base + o->vlen; i++)
		if (r->pc[i].anon && r->pc[i].obj == obj)
			end = r->pc[i].end - o->base;
	return end;
}

/*
 * Pieces [i, k) of one object leave the program: what the vmap area does.
 * The caller removes the pieces and pushes the step; this decides its vact.
 */
static unsigned unmap_vact(struct rd *r, uint32_t obj, bool touched,
			   uint64_t *vlen)
{
	struct mobj *o = &r->obj[obj];
	uint64_t end;

	if (!o->live) {
		r->vlen_total -= o->vlen;
		o->vlen = 0;
		*vlen = 0;
		return VACT_FREE;
	}
	end = live_end(r, obj);
	if (end < o->vlen) {
		r->vlen_total -= o->vlen - end;
		o->vlen = end;
		*vlen = end;
		r->p->st.shrinks++;
		return VACT_SHRINK;
	}
	*vlen = o->vlen;
	r->p->st.kept++;
	return touched ? VACT_RELEASE : VACT_KEEP;
}

/* Unmap pieces [i, k) of one object (anonymous, back to back). */
static int unmap_group(struct rd *r, size_t i, size_t k, bool implicit)
{
	uint32_t obj = r->pc[i].obj;
	uint64_t a = r->pc[i].start, b = r->pc[k - 1].end;
	bool touched = false;
	struct mop *op;

	for (size_t x = i; x < k; x++)
		touched |= r->pc[x].touched;
	pc_remove(r, i, k);
	r->obj[obj].live -= b - a;
	r->live -= b - a;
	op = push_op(r, MOP_UNMAP, obj, a, b - a);
	if (!op)
		return -1;
	op->flags = implicit ? MOPF_IMPLICIT : 0;
	op->vact = (uint8_t)unmap_vact(r, obj, touched, &op->vlen);
	seal_op(r, op);
	return 0;
}

/* Unmap [a, b): file pieces go silently, anonymous ones by object.  Returns
 * the number of pieces there were, or -1. */
static long unmap_range(struct rd *r, uint64_t a, uint64_t b, bool implicit)
{
	size_t i, j;
	long n = 0;

	if (pc_range(r, a, b, &i, &j))
		return -1;
	while (i < j) {
		if (!r->pc[i].anon) {
			pc_remove(r, i, i + 1);
			j--;
			n++;
			continue;
		}
		size_t k = group_end(r, i, j);
		if (unmap_group(r, i, k, implicit))
			return -1;
		j -= k - i;
		n += (long)(k - i);
	}
	return n;
}

static bool aligned(const struct rd *r, uint64_t x)
{
	return !(x & (r->p->page - 1));
}

static uint64_t page_up(const struct rd *r, uint64_t x)
{
	return (x + r->p->page - 1) & ~(r->p->page - 1);
}

/* Is any of [a, b) mapped?  The first piece there, for messages. */
static const struct piece *overlap(const struct rd *r, uint64_t a, uint64_t b)
{
	size_t i = pc_find(r, a);

	return i < r->npc && r->pc[i].start < b ? &r->pc[i] : NULL;
}

static int range_ok(struct rd *r, const char *what, uint64_t a, uint64_t len)
{
	if (!aligned(r, a))
		return err(r, r->line, "%s: address 0x%llx is not page-aligned, "
			   "yet the call succeeded", what,
			   (unsigned long long)a);
	if (!len || a + page_up(r, len) < a)
		return err(r, r->line, "%s: length %llu at 0x%llx, yet the "
			   "call succeeded", what, (unsigned long long)len,
			   (unsigned long long)a);
	return 0;
}

/* Fresh memory over live pages [i, k) of one object (mmap(MAP_FIXED)): they
 * stay the object's, zeroed, with the new protection. */
static int refresh_group(struct rd *r, size_t i, size_t k, unsigned prot)
{
	bool touched = false;
	struct mop *op;

	for (size_t x = i; x < k; x++) {
		touched |= r->pc[x].touched;
		r->pc[x].touched = 0;
		r->pc[x].prot = (uint8_t)prot;
	}
	op = push_op(r, MOP_FIXED, r->pc[i].obj, r->pc[i].start,
		     r->pc[k - 1].end - r->pc[i].start);
	if (!op)
		return -1;
	op->arg = (int32_t)prot;
	op->vact = touched ? VACT_RELEASE : VACT_NONE;
	seal_op(r, op);
	for (size_t x = i; x < k; x++)
		if (touch(r, &r->pc[x]))
			return -1;
	return 0;
}

/* mmap of private anonymous memory at [a, b), MAP_FIXED or not: live
 * anonymous pages there stay with their objects (zeroed), file pieces are
 * replaced, and every gap becomes a new object. */
static int map_anon(struct rd *r, uint64_t a, uint64_t b, unsigned prot,
		    uint64_t flags)
{
	uint64_t at = a;
	size_t i, j, k;

	while (at < b) {
		if (pc_range(r, at, b, &i, &j))
			return -1;
		if (i < j && !r->pc[i].anon) {
			pc_remove(r, i, i + 1);
		} else if (i == j || r->pc[i].start > at) {
			uint64_t end = i == j ? b : r->pc[i].start;

			if (new_object(r, at, end - at, prot, flags))
				return -1;
			at = end;
		} else {
			k = group_end(r, i, j);
			at = r->pc[k - 1].end;
			if (refresh_group(r, i, k, prot))
				return -1;
		}
	}
	pc_merge(r, a, b);
	return 0;
}

static int do_mmap(struct rd *r, const struct call *c)
{
	uint64_t len = page_up(r, c->a[1]), a = c->ret;
	uint64_t flags = c->a[3];
	unsigned prot = (unsigned)c->a[2];
	bool anon = (flags & F_ANON) && (flags & F_TYPE) == F_PRIVATE;
	const struct piece *o;

	if (range_ok(r, "mmap", a, c->a[1]))
		return -1;
	if ((flags & (F_FIXED | F_NOREPLACE)) && c->a[0] != a)
		return err(r, r->line, "mmap: MAP_FIXED at 0x%llx returned "
			   "0x%llx", (unsigned long long)c->a[0],
			   (unsigned long long)a);
	if (flags & F_ANON)
		(anon ? &r->p->st.mmap_anon : &r->p->st.mmap_shared_anon)[0]++;
	else
		r->p->st.mmap_file++;
	if (!(flags & F_FIXED) && (o = overlap(r, a, a + len)))
		return err(r, r->line, "mmap returned [0x%llx, 0x%llx), which "
			   "overlaps a live %s mapping at 0x%llx: the counts do "
			   "not add up (a log of several processes?)",
			   (unsigned long long)a, (unsigned long long)(a + len),
			   o->anon ? "anonymous" : "file",
			   (unsigned long long)o->start);
	if (anon)
		return map_anon(r, a, a + len, prot, flags);
	if (unmap_range(r, a, a + len, true) < 0)
		return -1;
	struct piece pc = { a, a + len, 0, 0, (uint8_t)prot, 0 };
	return pc_insert(r, pc_find(r, a), &pc);
}

/* A call on memory the log never showed mapped. */
static int unknown(struct rd *r, const char *what, uint64_t a, uint64_t len)
{
	if (r->p->st.from_start && !strcmp(what, "munmap"))
		return err(r, r->line, "munmap of [0x%llx, 0x%llx), which was "
			   "never mapped (the log starts at the program's start;"
			   " --attached skips such calls)",
			   (unsigned long long)a, (unsigned long long)(a + len));
	r->p->st.unknown++;
	return 0;
}

static bool all_file(const struct rd *r, uint64_t a, uint64_t b)
{
	for (size_t i = pc_find(r, a); i < r->npc && r->pc[i].start < b; i++)
		if (r->pc[i].anon)
			return false;
	return true;
}

static int do_munmap(struct rd *r, const struct call *c)
{
	uint64_t a = c->a[0], len = page_up(r, c->a[1]);
	long n;
	bool file;

	r->p->st.munmap++;
	if (range_ok(r, "munmap", a, c->a[1]))
		return -1;
	if (!overlap(r, a, a + len))
		return unknown(r, "munmap", a, len);
	file = all_file(r, a, a + len);
	n = unmap_range(r, a, a + len, false);
	if (n > 0 && file)
		r->p->st.file_calls++;
	return n < 0 ? -1 : 0;
}

static int do_mprotect(struct rd *r, const struct call *c)
{
	uint64_t a = c->a[0], b = a + page_up(r, c->a[1]);
	unsigned prot = (unsigned)c->a[2];
	size_t i, j;

	r->p->st.mprotect++;
	if (range_ok(r, "mprotect", a, c->a[1]))
		return -1;
	if (!overlap(r, a, b))
		return unknown(r, "mprotect", a, b - a);
	if (all_file(r, a, b))
		r->p->st.file_calls++;
	if (pc_range(r, a, b, &i, &j))
		return -1;
	while (i < j) {
		if (!r->pc[i].anon) {
			r->pc[i++].prot = (uint8_t)prot;
			continue;
		}
		size_t k = group_end(r, i, j);
		struct mop *op = push_op(r, MOP_PROTECT, r->pc[i].obj,
					 r->pc[i].start,
					 r->pc[k - 1].end - r->pc[i].start);
		if (!op)
			return -1;
		op->arg = (int32_t)prot;
		seal_op(r, op);
		r->p->st.protect_steps++;
		for (; i < k; i++) {
			r->pc[i].prot = (uint8_t)prot;
			if (touch(r, &r->pc[i]))
				return -1;
		}
	}
	pc_merge(r, a, b);
	return 0;
}

/* The advice a vmap area may take (vmap.h: "contents only"). */
static bool advice_vmap_ok(uint64_t adv)
{
	return adv == A_WILLNEED || adv == A_DONTNEED || adv == A_FREE ||
	       adv == A_COLD || adv == A_PAGEOUT;
}

/* Advice neither replay performs: it would poison pages, fault the touches
 * (guards), or is unknown. */
static bool advice_never(uint64_t adv)
{
	return adv == UINT64_MAX || adv >= A_HWPOISON;
}

static int do_madvise(struct rd *r, const struct call *c)
{
	uint64_t a = c->a[0], b = a + page_up(r, c->a[1]), adv = c->a[2];
	bool drop = adv == A_DONTNEED || adv == A_FREE;
	size_t i, j;

	r->p->st.madvise++;
	if (range_ok(r, "madvise", a, c->a[1]))
		return -1;
	if (!overlap(r, a, b))
		return unknown(r, "madvise", a, b - a);
	if (all_file(r, a, b)) {
		r->p->st.file_calls++;
		return 0;
	}
	if (advice_never(adv)) {
		r->p->st.advise_skipped++;
		return 0;
	}
	if (pc_range(r, a, b, &i, &j))
		return -1;
	while (i < j) {
		if (!r->pc[i].anon) {
			i++;
			continue;
		}
		size_t k = group_end(r, i, j);
		struct mop *op = push_op(r, MOP_ADVISE, r->pc[i].obj,
					 r->pc[i].start,
					 r->pc[k - 1].end - r->pc[i].start);
		if (!op)
			return -1;
		op->arg = (int32_t)adv;
		op->vact = advice_vmap_ok(adv) ? VACT_ADVISE : VACT_NONE;
		r->p->st.advise_skipped += op->vact == VACT_NONE;
		seal_op(r, op);
		/* Released pages: the program that keeps them mapped will
		 * write them again, and fault them back in. */
		for (; i < k; i++) {
			if (drop)
				r->pc[i].touched = 0;
			if (touch(r, &r->pc[i]))
				return -1;
		}
	}
	pc_merge(r, a, b);
	return 0;
}

/* mremap of a file mapping: the model moves it, the replays do nothing. */
static int remap_file(struct rd *r, uint64_t a, uint64_t olen, uint64_t nlen,
		      uint64_t to)
{
	unsigned prot = 0;
	size_t i = pc_find(r, a);

	if (i < r->npc)
		prot = r->pc[i].prot;
	r->p->st.file_calls++;
	if (unmap_range(r, a, a + olen, false) < 0 ||
	    unmap_range(r, to, to + nlen, true) < 0)
		return -1;
	struct piece pc = { to, to + nlen, 0, 0, (uint8_t)prot, 0 };
	return pc_insert(r, pc_find(r, to), &pc);
}

/*
 * Move pieces [i, j) (all of object `from`, covering [a, a + olen)) to
 * [to, to + nlen) as pieces of object `obj`, whose base is `base`: cut at
 * nlen, extended with a fresh piece of the last one's protection.
 */
static int move_pieces(struct rd *r, size_t i, size_t j, uint64_t a,
		       uint64_t olen, uint64_t nlen, uint64_t to, uint32_t obj,
		       uint64_t *probe)
{
	size_t n = j - i;
	struct piece *tmp = malloc(n * sizeof(*tmp));
	unsigned prot = r->pc[j - 1].prot;

	if (!tmp)
		return err(r, r->line, "out of memory");
	memcpy(tmp, &r->pc[i], n * sizeof(*tmp));
	pc_remove(r, i, j);
	*probe = UINT64_MAX;
	for (size_t x = 0; x < n; x++) {
		struct piece pc = tmp[x];

		if (pc.start - a >= nlen)
			break;
		pc.start = pc.start - a + to;
		pc.end = pc.end - a + to;
		if (pc.end > to + nlen)
			pc.end = to + nlen;
		pc.obj = obj;
		if (pc.touched && (pc.prot & P_READ) && *probe == UINT64_MAX)
			*probe = pc.start - r->obj[obj].base;
		if (pc_insert(r, pc_find(r, pc.start), &pc)) {
			free(tmp);
			return -1;
		}
	}
	free(tmp);
	if (nlen > olen) {
		struct piece pc = { to + olen, to + nlen, obj, 1,
				    (uint8_t)prot, 0 };
		if (pc_insert(r, pc_find(r, pc.start), &pc))
			return -1;
		if (touch(r, &r->pc[pc_find(r, pc.start)]))
			return -1;
	}
	pc_merge(r, to, to + nlen);
	return 0;
}

/* A new object for a piece of another that mremap moved: its index. */
static int split_object(struct rd *r, uint64_t to, uint64_t nlen,
			uint32_t *n)
{
	r->obj = grow(r->obj, &r->objcap, r->p->nobj, sizeof(*r->obj));
	if (!r->obj)
		return err(r, r->line, "out of memory");
	*n = (uint32_t)r->p->nobj++;
	r->obj[*n] = (struct mobj){ to, nlen, nlen };
	r->p->st.objects++;
	r->p->st.remap_splits++;
	r->vlen_total += nlen;
	return 0;
}

/*
 * mremap of anonymous memory, pieces [i, j) of one object: if they are all
 * of its live part, the object moves (vmap: vmap_vrealloc); if not, they
 * become a new object (vmap: vmap_vmalloc and a copy; the old area as after
 * a partial munmap).
 */
static int remap_anon(struct rd *r, size_t i, size_t j, uint64_t a,
		      uint64_t olen, uint64_t nlen, uint64_t to)
{
	uint32_t obj = r->pc[i].obj, dst = obj;
	uint64_t off = a - r->obj[obj].base, probe = UINT64_MAX;
	bool whole = off + olen == r->obj[obj].vlen, touched = false;
	size_t opi;

	for (size_t x = pc_find(r, r->obj[obj].base); x < i; x++)
		whole &= !(r->pc[x].anon && r->pc[x].obj == obj);
	for (size_t x = i; x < j; x++)
		touched |= r->pc[x].touched;
	r->p->st.remaps++;
	if (!whole && split_object(r, to, nlen, &dst))
		return -1;
	if (!push_op(r, MOP_REMAP, obj, a, olen))
		return -1;
	opi = r->p->nop - 1;
	r->p->op[opi].obj2 = dst;
	r->p->op[opi].len2 = nlen;
	r->live += nlen - olen;
	if (whole) {
		struct mobj *o = &r->obj[obj];

		r->vlen_total += nlen - olen;	/* modulo 2^64 */
		o->vlen = r->p->op[opi].vlen = off + nlen;
		o->live += nlen - olen;
		o->base = to - off;
	} else {
		r->obj[obj].live -= olen;
	}
	if (move_pieces(r, i, j, a, olen, nlen, to, dst, &probe))
		return -1;
	struct mop *op = &r->p->op[opi];
	op->probe = probe;
	if (!whole)
		op->vact = (uint8_t)unmap_vact(r, obj, touched, &op->vlen);
	seal_op(r, op);
	return 0;
}

static int do_mremap(struct rd *r, const struct call *c)
{
	uint64_t a = c->a[0], olen = page_up(r, c->a[1]);
	uint64_t nlen = page_up(r, c->a[2]), flags = c->a[3], to = c->ret;
	uint64_t mapped = 0;
	size_t i, j;

	r->p->st.mremap++;
	if (range_ok(r, "mremap", a, c->a[1]) || range_ok(r, "mremap", to,
							   c->a[2]))
		return -1;
	if (!(flags & 1) && to != a)
		return err(r, r->line, "mremap without MREMAP_MAYMOVE moved "
			   "0x%llx to 0x%llx", (unsigned long long)a,
			   (unsigned long long)to);
	if (flags & 4)
		return err(r, r->line, "mremap: MREMAP_DONTUNMAP is not "
			   "supported by the replay");
	if (!olen)
		return err(r, r->line, "mremap: old length 0 (a copy of a "
			   "shared mapping) is not supported by the replay");
	if (!overlap(r, a, a + olen)) {
		if (r->p->st.from_start)
			return err(r, r->line, "mremap of [0x%llx, 0x%llx), "
				   "which was never mapped",
				   (unsigned long long)a,
				   (unsigned long long)(a + olen));
		r->p->st.unknown++;
		return 0;
	}
	if (pc_range(r, a, a + olen, &i, &j))
		return -1;
	for (size_t x = i; x < j; x++)
		mapped += r->pc[x].end - r->pc[x].start;
	if (mapped != olen || r->pc[j - 1].end - r->pc[i].start != olen)
		return err(r, r->line, "mremap of %llu bytes at 0x%llx, but "
			   "only %llu of them are mapped: the counts do not add "
			   "up", (unsigned long long)olen,
			   (unsigned long long)a, (unsigned long long)mapped);
	if (all_file(r, a, a + olen))
		return remap_file(r, a, olen, nlen, to);
	if (group_end(r, i, j) != j || !r->pc[i].anon)
		return err(r, r->line, "mremap over more than one mapping "
			   "(anonymous and file, or two anonymous ones): not "
			   "supported by the replay");
	/* The destination: the kernel unmapped what was there (MREMAP_FIXED)
	 * or found it free; whatever is there but the old range is stale. */
	for (size_t x = pc_find(r, to); x < r->npc && r->pc[x].start < to + nlen;
	     x++)
		if (r->pc[x].end <= a || r->pc[x].start >= a + olen) {
			if (!(flags & 2))
				return err(r, r->line, "mremap to [0x%llx, "
					   "0x%llx), which overlaps a live "
					   "mapping at 0x%llx: the counts do "
					   "not add up", (unsigned long long)to,
					   (unsigned long long)(to + nlen),
					   (unsigned long long)r->pc[x].start);
		}
	if ((flags & 2) && to != a) {
		if (unmap_range(r, to, to + nlen, true) < 0 ||
		    pc_range(r, a, a + olen, &i, &j))
			return -1;
	}
	return remap_anon(r, i, j, a, olen, nlen, to);
}

/* --check: the model's own invariants after a call. */
static int check_model(struct rd *r)
{
	uint64_t live = 0;

	for (size_t i = 0; i < r->npc; i++) {
		const struct piece *p = &r->pc[i];

		if (p->start >= p->end || (i && r->pc[i - 1].end > p->start))
			return err(r, r->line, "model: pieces overlap at 0x%llx",
				   (unsigned long long)p->start);
		if (p->anon)
			live += p->end - p->start;
	}
	if (live != r->live)
		return err(r, r->line, "model: %llu anonymous bytes mapped, "
			   "%llu counted", (unsigned long long)live,
			   (unsigned long long)r->live);
	return 0;
}

static int run_model(struct rd *r)
{
	for (size_t n = 0; n < r->nc; n++) {
		const struct call *c = &r->c[n];
		int rc = 0;

		r->line = c->line;
		switch (c->sys) {
		case S_MMAP: rc = do_mmap(r, c); break;
		case S_MUNMAP: rc = do_munmap(r, c); break;
		case S_MREMAP: rc = do_mremap(r, c); break;
		case S_MPROTECT: rc = do_mprotect(r, c); break;
		case S_MADVISE: rc = do_madvise(r, c); break;
		case S_BRK: r->p->st.brk++; break;
		case S_OTHER: r->p->st.other++; break;
		case S_EXEC:	/* a new program: every mapping is gone */
			rc = unmap_range(r, 0, -r->p->page, true) < 0;
			break;
		}
		if (rc || (r->o->check && check_model(r)))
			return -1;
	}
	return 0;
}

int mplan_read(const char *path, const struct mplan_opts *o, struct mplan *p)
{
	struct rd r = { .path = path, .p = p, .o = o };
	int rc;

	memset(p, 0, sizeof(*p));
	p->path = path;
	p->page = (uint64_t)sysconf(_SC_PAGESIZE);
	rc = strace_read_lines(&r);
	if (!rc) {
		/* the program's first call is brk(NULL), or its execve */
		p->st.from_start = !o->attached &&
			(r.c[0].first_brk0 || r.c[0].sys == S_EXEC);
		strace_order(&r);
		rc = run_model(&r);
	}
	free(r.c);
	free(r.pc);
	free(r.obj);
	if (rc)
		mplan_free(p);
	return rc;
}

void mplan_free(struct mplan *p)
{
	free(p->op);
	p->op = NULL;
	p->nop = p->cap = 0;
}

const char *mop_name(unsigned kind)
{
	static const char *const names[] = { "map", "unmap", "protect",
					     "advise", "map-fixed", "remap",
					     "touch" };

	return kind < sizeof(names) / sizeof(names[0]) ? names[kind] : "?";
}
