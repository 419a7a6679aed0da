/* SPDX-License-Identifier: MIT */
/*
 * freetree.c - the free space: free blocks in an AVL tree ordered by address,
 * each node augmented with the largest block in its subtree.
 *
 * The augmentation is what makes the search O(log n): a subtree whose largest
 * block is smaller than the request cannot hold it and is never entered, and
 * the address order lets the search skip subtrees that lie outside the
 * requested [lo, hi) window.  Walking the remaining candidates left to right
 * (or right to left for top-down) finds the lowest (highest) fitting address.
 * A candidate that is large enough can still fail for alignment, phase or
 * boundary reasons; such misses are the only steps beyond one root-to-leaf
 * path, and they are rare for page alignment (where none happen at all).
 *
 * Blocks never touch but at a cut: ft_insert merges a new range with the
 * blocks that end where it starts and start where it ends, unless that
 * address is one of the tree's cuts (where two spans of the space meet, which
 * no block may cross).  All functions here are called with the space's free
 * lock held; none allocates or frees memory.
 */
#include <limits.h>
#include <stdio.h>

#include "internal.h"

static inline uint64_t len(const struct va *n)
{
	return n->end - n->start;
}

static inline int height(const struct va *n)
{
	return n ? n->height : 0;
}

static inline uint64_t maxof(const struct va *n)
{
	return n ? n->ft.max : 0;
}

static inline uint64_t max3(uint64_t a, uint64_t b, uint64_t c)
{
	uint64_t m = a > b ? a : b;
	return m > c ? m : c;
}

/* Recompute n's height and augmentation from its children; true if changed. */
static bool update(struct va *n)
{
	int hl = height(n->ft.left), hr = height(n->ft.right);
	int h = 1 + (hl > hr ? hl : hr);
	uint64_t m = max3(len(n), maxof(n->ft.left), maxof(n->ft.right));
	bool changed = h != n->height || m != n->ft.max;

	n->height = h;
	n->ft.max = m;
	return changed;
}

/* Put `child` where `old` hangs from its parent. */
static void replace(struct freetree *t, struct va *old, struct va *child)
{
	struct va *p = old->ft.parent;

	if (!p)
		t->root = child;
	else if (p->ft.left == old)
		p->ft.left = child;
	else
		p->ft.right = child;
	if (child)
		child->ft.parent = p;
}

static struct va *rotate_left(struct freetree *t, struct va *x)
{
	struct va *y = x->ft.right;

	x->ft.right = y->ft.left;
	if (y->ft.left)
		y->ft.left->ft.parent = x;
	replace(t, x, y);
	y->ft.left = x;
	x->ft.parent = y;
	update(x);
	update(y);
	return y;
}

static struct va *rotate_right(struct freetree *t, struct va *x)
{
	struct va *y = x->ft.left;

	x->ft.left = y->ft.right;
	if (y->ft.right)
		y->ft.right->ft.parent = x;
	replace(t, x, y);
	y->ft.right = x;
	x->ft.parent = y;
	update(x);
	update(y);
	return y;
}

/*
 * Restore balance and augmentation from n upwards.  Above the point where a
 * node's height and maximum come out unchanged (and no rotation happened),
 * nothing can have changed, so the walk stops there -- but never below
 * `until`, a node whose children were relinked and must be recomputed.
 */
static void rebalance(struct freetree *t, struct va *n, const struct va *until)
{
	while (n) {
		bool changed = update(n), reached = n == until;
		int bf = height(n->ft.left) - height(n->ft.right);

		if (bf > 1) {
			struct va *l = n->ft.left;

			if (height(l->ft.left) < height(l->ft.right))
				rotate_left(t, l);
			n = rotate_right(t, n);
			changed = true;
		} else if (bf < -1) {
			struct va *r = n->ft.right;

			if (height(r->ft.right) < height(r->ft.left))
				rotate_right(t, r);
			n = rotate_left(t, n);
			changed = true;
		}
		if (reached)
			until = NULL;
		if (!changed && !until)
			return;
		n = n->ft.parent;
	}
}

/* n's length changed but not its place: fix the augmentation above it. */
static void propagate(struct va *n)
{
	while (n && update(n))
		n = n->ft.parent;
}

static void link_node(struct freetree *t, struct va *z)
{
	struct va **link = &t->root, *parent = NULL;

	while (*link) {
		parent = *link;
		link = z->start < parent->start ? &parent->ft.left
						: &parent->ft.right;
	}
	z->ft.left = z->ft.right = NULL;
	z->ft.parent = parent;
	z->height = 1;
	z->ft.max = len(z);
	*link = z;
	rebalance(t, parent, NULL);
	t->nodes++;
}

static void erase(struct freetree *t, struct va *z)
{
	struct va *fix, *until = NULL;

	if (!z->ft.left || !z->ft.right) {
		fix = z->ft.parent;
		replace(t, z, z->ft.left ? z->ft.left : z->ft.right);
	} else {
		struct va *y = z->ft.right;

		while (y->ft.left)
			y = y->ft.left;
		if (y->ft.parent != z) {
			fix = y->ft.parent;
			replace(t, y, y->ft.right);
			y->ft.right = z->ft.right;
			y->ft.right->ft.parent = y;
		} else {
			fix = y;
		}
		replace(t, z, y);
		y->ft.left = z->ft.left;
		y->ft.left->ft.parent = y;
		y->height = 0; /* stale: it must be recomputed */
		until = y;
	}
	rebalance(t, fix, until);
	t->nodes--;
}

void ft_init(struct freetree *t)
{
	t->root = NULL;
	t->nodes = 0;
	t->bytes = 0;
	t->cuts = NULL;
	t->ncuts = 0;
}

/* ---- fitting one block ---- */

/* The lowest a >= x with a % align == phase, or false on overflow. */
static bool phase_up(uint64_t x, const struct fit *f, uint64_t *a)
{
	uint64_t r = (x & ~(f->align - 1)) + f->phase;

	if (r < x) {
		if (r > UINT64_MAX - f->align)
			return false;
		r += f->align;
	}
	*a = r;
	return true;
}

/* The highest a <= x with a % align == phase, or false if none. */
static bool phase_down(uint64_t x, const struct fit *f, uint64_t *a)
{
	uint64_t base = x & ~(f->align - 1);

	if (base + f->phase > x) {
		if (base < f->align)
			return false;
		base -= f->align;
	}
	*a = base + f->phase;
	return true;
}

static inline bool crosses(const struct fit *f, uint64_t a)
{
	return f->nocross &&
	       ((a ^ (a + f->size - 1)) & ~(f->nocross - 1)) != 0;
}

/* Does block n hold an area for f?  The lowest (or highest) address in *a. */
static bool fits(const struct va *n, const struct fit *f, uint64_t *out)
{
	uint64_t lo = n->start > f->lo ? n->start : f->lo;
	uint64_t hi = n->end < f->hi ? n->end : f->hi;
	uint64_t a;

	if (hi <= lo || hi - lo < f->size)
		return false;
	if (!f->topdown) {
		if (!phase_up(lo, f, &a))
			return false;
		/* One step past the boundary is enough: if the area crosses
		 * the next one too, it crosses every one. */
		if (crosses(f, a) &&
		    ((a | (f->nocross - 1)) == UINT64_MAX ||
		     !phase_up((a | (f->nocross - 1)) + 1, f, &a)))
			return false;
		if (crosses(f, a) || a > hi - f->size)
			return false;
	} else {
		if (!phase_down(hi - f->size, f, &a))
			return false;
		if (crosses(f, a)) {
			uint64_t b = (a + f->size - 1) & ~(f->nocross - 1);

			if (b < f->size || !phase_down(b - f->size, f, &a))
				return false;
		}
		if (crosses(f, a) || a < lo)
			return false;
	}
	*out = a;
	return true;
}

bool ft_could_fit(const struct fit *f)
{
	struct va window = { .start = f->lo, .end = f->hi };
	uint64_t a;

	return fits(&window, f, &a);
}

/*
 * One search, lowest or highest first, among blocks at least `min` long.
 * A *miss* is a block that meets the window, is at least f->size long, and
 * still cannot hold the area (alignment, phase, boundary): each one costs a
 * step beyond the root-to-leaf path.  *budget counts misses down; below zero,
 * the search gives up and returns NULL.
 */
struct search {
	const struct fit *f;
	uint64_t min;
	long budget;
	uint64_t addr;
};

static bool try_node(const struct va *n, struct search *q)
{
	const struct fit *f = q->f;

	if (len(n) >= q->min && fits(n, f, &q->addr))
		return true;
	if (len(n) >= f->size && n->end > f->lo && n->start < f->hi)
		q->budget--;
	return false;
}

static struct va *find_low(struct va *n, struct search *q)
{
	const struct fit *f = q->f;

	while (n && n->ft.max >= q->min) {
		struct va *r;

		/* Blocks left of n end at or before n->start. */
		if (n->start > f->lo && (r = find_low(n->ft.left, q)))
			return r;
		/* n and everything right of it start too late. */
		if (q->budget < 0 || n->start >= f->hi ||
		    f->hi - n->start < f->size)
			return NULL;
		if (try_node(n, q))
			return n;
		n = n->ft.right;
	}
	return NULL;
}

static struct va *find_high(struct va *n, struct search *q)
{
	const struct fit *f = q->f;

	while (n && n->ft.max >= q->min) {
		struct va *r;

		/* Blocks right of n start at or after n->end. */
		if (n->end < f->hi && (r = find_high(n->ft.right, q)))
			return r;
		/* n and everything left of it end too early. */
		if (q->budget < 0 || n->end <= f->lo ||
		    n->end - f->lo < f->size)
			return NULL;
		if (try_node(n, q))
			return n;
		n = n->ft.left;
	}
	return NULL;
}

static struct va *search(const struct freetree *t, struct search *q)
{
	return q->f->topdown ? find_high(t->root, q) : find_low(t->root, q);
}

static inline uint64_t sat_add(uint64_t a, uint64_t b)
{
	return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

/*
 * Lowest (highest) fit, in three steps:
 *   1. the exact search, allowed FT_MISSES misses: for page alignment it
 *      never misses, and it is the answer almost always;
 *   2. past that, the kernel's way: only blocks long enough that any request
 *      fitting anywhere fits in them -- size + 2 * align + nocross -- where
 *      the first candidate is a hit, so the search is O(log n) again;
 *   3. if no block is that long, the exact search without a budget (the
 *      space is then nearly full, of small blocks).
 * A request that takes any fit (f->any_fit: a space with node pools) and
 * can miss (an alignment above a page, or a boundary) starts at step 2:
 * with thousands of misaligned free blocks, step 1 is most of its time.
 */
struct va *ft_find(const struct freetree *t, const struct fit *f,
		   uint64_t *addr)
{
	struct search q = { f, f->size, FT_MISSES, 0 };
	struct va *n = NULL;

	if (f->hi - f->lo < f->size)
		return NULL;
	if (f->any_fit)
		q.budget = -1;
	else
		n = search(t, &q);
	if (!n && q.budget < 0) {
		q.min = sat_add(sat_add(sat_add(f->size, f->align), f->align),
				f->nocross);
		q.budget = LONG_MAX;
		n = search(t, &q);
		if (!n) {
			q.min = f->size;
			n = search(t, &q);
		}
	}
	if (n)
		*addr = q.addr;
	return n;
}

/* ---- changing the tree ---- */

struct va *ft_carve(struct freetree *t, struct va *b, uint64_t addr,
		    uint64_t size, struct va **spare)
{
	uint64_t end = addr + size;

	t->bytes -= size;
	if (addr == b->start && end == b->end) {
		erase(t, b);
		return b;
	}
	if (addr == b->start) {
		b->start = end;
		propagate(b);
	} else if (end == b->end) {
		b->end = addr;
		propagate(b);
	} else {
		struct va *r = *spare;

		*spare = NULL;
		r->start = end;
		r->end = b->end;
		b->end = addr;
		propagate(b);
		link_node(t, r);
	}
	return NULL;
}

bool ft_is_cut(const struct freetree *t, uint64_t addr)
{
	size_t lo = 0, hi = t->ncuts;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (t->cuts[mid] == addr)
			return true;
		if (t->cuts[mid] < addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

struct va *ft_insert(struct freetree *t, uint64_t start, uint64_t end,
		     struct va **node)
{
	struct va *n = t->root, *pred = NULL, *succ = NULL;

	while (n) {
		if (n->start < start) {
			pred = n;
			n = n->ft.right;
		} else {
			succ = n;
			n = n->ft.left;
		}
	}
	t->bytes += end - start;
	if (pred && pred->end == start && ft_is_cut(t, start))
		pred = NULL; /* touching, but across a cut: no merge */
	if (succ && succ->start == end && ft_is_cut(t, end))
		succ = NULL;
	if (pred && pred->end == start) {
		if (succ && succ->start == end) {
			/* Bridge pred and succ: pred grows, succ goes.  Fix
			 * pred's path first so the erase sees true maxima. */
			pred->end = succ->end;
			propagate(pred);
			erase(t, succ);
			return succ;
		}
		pred->end = end;
		propagate(pred);
	} else if (succ && succ->start == end) {
		succ->start = start;
		propagate(succ);
	} else {
		struct va *z = *node;

		*node = NULL;
		z->start = start;
		z->end = end;
		link_node(t, z);
	}
	return NULL;
}

void ft_destroy(struct freetree *t, void (*release)(struct va *))
{
	struct va *n = t->root;

	/* Post-order without a stack: descend, free leaves, climb. */
	while (n) {
		if (n->ft.left) {
			n = n->ft.left;
		} else if (n->ft.right) {
			n = n->ft.right;
		} else {
			struct va *p = n->ft.parent;

			if (p) {
				if (p->ft.left == n)
					p->ft.left = NULL;
				else
					p->ft.right = NULL;
			}
			release(n);
			n = p;
		}
	}
	ft_init(t);
}

/* ---- inspection ---- */

static int walk(const struct va *n, int (*fn)(void *, const struct va *),
		void *arg)
{
	while (n) {
		int err = walk(n->ft.left, fn, arg);

		if (err || (err = fn(arg, n)))
			return err;
		n = n->ft.right;
	}
	return 0;
}

/* The in-order successor of n. */
static const struct va *next_of(const struct va *n)
{
	if (n->ft.right) {
		for (n = n->ft.right; n->ft.left; n = n->ft.left)
			;
		return n;
	}
	while (n->ft.parent && n == n->ft.parent->ft.right)
		n = n->ft.parent;
	return n->ft.parent;
}

uint64_t ft_walk_from(const struct freetree *t, uint64_t from, uint64_t max,
		      int (*fn)(void *, const struct va *), void *arg,
		      int *err)
{
	const struct va *n = t->root, *first = NULL;
	uint64_t seen = 0;

	while (n) { /* the lowest block starting at or after from */
		if (n->start >= from) {
			first = n;
			n = n->ft.left;
		} else {
			n = n->ft.right;
		}
	}
	for (n = first; n && seen < max && !*err; n = next_of(n), seen++)
		*err = fn(arg, n);
	return seen;
}

const struct va *ft_at(const struct freetree *t, uint64_t addr)
{
	const struct va *n = t->root, *last = NULL;

	while (n) { /* the last block starting at or before addr */
		if (n->start <= addr) {
			last = n;
			n = n->ft.right;
		} else {
			n = n->ft.left;
		}
	}
	return last && last->end > addr ? last : NULL;
}

int ft_walk(const struct freetree *t, int (*fn)(void *, const struct va *),
	    void *arg)
{
	return walk(t->root, fn, arg);
}

struct validate {
	char *msg;
	size_t len;
	const struct freetree *t;
	const struct va *prev;
	uint64_t nodes, bytes;
};

/* Returns the subtree's height, or -1 after writing a message. */
static int validate(const struct va *n, const struct va *parent,
		    struct validate *v)
{
	int hl, hr;
	uint64_t m;

	if (!n)
		return 0;
	if (n->ft.parent != parent) {
		snprintf(v->msg, v->len, "free node %#llx: wrong parent link",
			 (unsigned long long)n->start);
		return -1;
	}
	hl = validate(n->ft.left, n, v);
	if (hl < 0)
		return -1;
	if (n->start >= n->end) {
		snprintf(v->msg, v->len, "free node %#llx: empty or inverted",
			 (unsigned long long)n->start);
		return -1;
	}
	if (v->prev && (v->prev->end > n->start ||
			(v->prev->end == n->start && !ft_is_cut(v->t, n->start)))) {
		snprintf(v->msg, v->len,
			 "free blocks %#llx-%#llx and %#llx-%#llx %s",
			 (unsigned long long)v->prev->start,
			 (unsigned long long)v->prev->end,
			 (unsigned long long)n->start,
			 (unsigned long long)n->end,
			 v->prev->end == n->start ? "touch but are not merged"
						  : "overlap or are unordered");
		return -1;
	}
	v->prev = n;
	v->nodes++;
	v->bytes += len(n);
	hr = validate(n->ft.right, n, v);
	if (hr < 0)
		return -1;
	m = max3(len(n), maxof(n->ft.left), maxof(n->ft.right));
	if (n->height != 1 + (hl > hr ? hl : hr) || hl - hr > 1 ||
	    hr - hl > 1) {
		snprintf(v->msg, v->len,
			 "free node %#llx: height %d, children %d/%d",
			 (unsigned long long)n->start, n->height, hl, hr);
		return -1;
	}
	if (n->ft.max != m) {
		snprintf(v->msg, v->len,
			 "free node %#llx: subtree max %#llx, should be %#llx",
			 (unsigned long long)n->start,
			 (unsigned long long)n->ft.max, (unsigned long long)m);
		return -1;
	}
	return n->height;
}

int ft_validate(const struct freetree *t, char *msg, size_t len)
{
	struct validate v = { msg, len, t, NULL, 0, 0 };

	if (validate(t->root, NULL, &v) < 0)
		return -1;
	if (v.nodes != t->nodes || v.bytes != t->bytes) {
		snprintf(msg, len,
			 "free tree holds %llu blocks / %#llx bytes, counters "
			 "say %llu / %#llx",
			 (unsigned long long)v.nodes,
			 (unsigned long long)v.bytes,
			 (unsigned long long)t->nodes,
			 (unsigned long long)t->bytes);
		return -1;
	}
	return 0;
}
