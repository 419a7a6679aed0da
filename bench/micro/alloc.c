/* SPDX-License-Identifier: MIT */
/*
 * bench/micro/alloc.c - vmap's range space against the address-range
 * allocators a GPU driver would pick instead: an OffsetAllocator-style bin
 * allocator (bench/peers/offset.c), TLSF (tlsf.c) and a util_vma_heap-style
 * hole list (mesa.c).  No memory is touched: this measures the allocators.
 *
 * Workloads (-w, comma-separated; default all but nearfull-evict):
 *   random1p  1-page areas, N live; each step frees a random live area (not
 *             the one just allocated: its record is cold) and allocates one.
 *   gpu10k    a GPU-like mix: sizes log-uniform 4 KiB..64 MiB, alignments a
 *   gpu100k   power of two log-uniform 4 KiB..2 MiB, N/10 and N live, in a
 *             128 TiB space (nothing fails); steps as random1p.
 *   lifo      1 page allocated and freed at once, N others live (the
 *             README's 88 ns case).
 *   threads   1 and 2 threads pinned to CPUs 0 and 1, each with a window of
 *             16 live areas of 1..16 pages: free the oldest, allocate one.
 *             Peers are called under a mutex, as a driver would.
 *   nearfull  a 1 GiB space held at 90% busy: sizes log-uniform 4 KiB..2 MiB,
 *             alignment 4 KiB, 64 KiB or 2 MiB; each step frees random areas
 *             until the new request fits under 90%, then allocates; a failed
 *             allocation (vmap's only after its own purge) is counted and
 *             dropped.
 *   memory    heap bytes (glibc mallinfo2: in use + mmapped) each backend
 *             needs per live area: N areas of the GPU mix, then N steps.
 *   nearfull-evict  nearfull, but a failed request evicts random areas
 *             until it fits: the busy share each allocator can sustain.
 *
 * Every backend x workload runs in a child process of its own (fork), so
 * no heap layout or cache state leaks from one to the next.  The child fills
 * one allocator (untimed) and runs -r timed rounds on it back to back, each
 * replaying the same requests (a seeded PRNG: identical for every backend)
 * with its own victims; the table shows the median round with min and max.
 * Filling once matters for mesa, whose 100k-area fill takes ~15 s.  The
 * threads workload makes a new allocator per round; memory runs one round.
 * A round stops after -m steps or -t seconds, whichever comes first: the
 * cap is for mesa's O(holes) walks, and the pairs column says how far each
 * backend got -- its ns/pair is over those pairs.
 *
 * Checked always: every area inside the space and aligned, every free
 * accepted, and at the end of each round no two live areas overlapping (a
 * sorted sweep); with --smoke also each allocator's own invariants
 * (vmap_check, the peers' checks).  Any failure makes the exit status 1.
 *
 * Usage: bench-alloc [-r rounds] [-n live] [-m steps] [-t seconds]
 *                    [-w workloads] [-b backends] [--smoke] [--json FILE]
 * Defaults: -r 5 -n 100000 -m 500000 -t 1 (about 2.5 minutes on 2 vCPUs,
 * a third of it mesa's fills); --smoke: -r 2 -n 1000 -m 5000 -t 0.2, every
 * workload, well under a second.  -b takes backend names (vmap, offset, ...);
 * the x vmap column needs vmap among them.
 */
#include <errno.h>
#include <getopt.h>
#include <malloc.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "vmap.h"
#include "../peers/peer.h"

#define PG PEER_PAGE
#define MAX_ROUNDS 32
#define WINDOW 16		/* threads: live areas per thread */

static uint64_t now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- vmap as a backend ---------------------------------------------- */

enum vmap_kind { VK_FREE, VK_SIZED, VK_BLOCKS };

struct vmap_backend {
	vmap_space *s;
	enum vmap_kind kind;
	_Atomic uint64_t flushes;
};

/* A range space's flush: what a driver would do is invalidate a TLB; here
 * it only counts, so the table shows how often vmap batched. */
static void count_flush(void *ctx, const struct vmap_range *r, size_t n)
{
	(void)r;
	(void)n;
	atomic_fetch_add_explicit((_Atomic uint64_t *)ctx, 1,
				  memory_order_relaxed);
}

static void *vmap_create_as(uint64_t base, uint64_t length, unsigned flags,
			    enum vmap_kind kind)
{
	struct vmap_backend *v = calloc(1, sizeof(*v));
	struct vmap_config c;

	if (!v)
		return NULL;
	vmap_config_init(&c);
	c.base = base;
	c.length = length;
	c.flush = count_flush;
	c.flush_ctx = &v->flushes;
	c.flags = flags;	/* lazy_max_pages 0: the kernel's default */
	v->kind = kind;
	if (vmap_space_create(&c, &v->s)) {
		free(v);
		return NULL;
	}
	return v;
}

static void *vmap_create(uint64_t base, uint64_t length)
{
	return vmap_create_as(base, length, 0, VK_FREE);
}

static int vmap_alloc_(void *a, uint64_t size, uint64_t align, uint64_t *addr,
		       uint32_t *handle)
{
	struct vmap_backend *v = a;

	*handle = 0;
	if (v->kind == VK_BLOCKS) {
		if (align > PG)
			return -EINVAL;	/* pieces: page-aligned only */
		return vmap_ram_alloc(v->s, size, addr);
	}
	return vmap_alloc(v->s, size, align, 0, UINT64_MAX, addr);
}

static int vmap_free_(void *a, uint64_t addr, uint64_t size, uint32_t handle)
{
	struct vmap_backend *v = a;

	(void)handle;
	switch (v->kind) {
	case VK_BLOCKS:
		return vmap_ram_free(v->s, addr, size);
#ifdef VMAP_HAVE_FREE_SIZED
	case VK_SIZED:
		return vmap_free_sized(v->s, addr, size);
#endif
	default:
		return vmap_free(v->s, addr);
	}
}

static void vmap_destroy_(void *a)
{
	struct vmap_backend *v = a;

	vmap_space_destroy(v->s);
	free(v);
}

static void vmap_stats_(void *a, struct peer_stats *st)
{
	struct vmap_backend *v = a;
	struct vmap_stats vs = { .size = sizeof(vs) };

	vmap_stats(v->s, &vs);
	st->free_ranges = vs.free_blocks;
	st->flushes = atomic_load(&v->flushes);
}

static int vmap_check_(void *a)
{
	return vmap_check(((struct vmap_backend *)a)->s) ? -1 : 0;
}

#define VMAP_OPS(nm, wh, create_fn)                                      \
	{ .name = nm, .what = wh, .thread_safe = 1, .create = create_fn,  \
	  .alloc = vmap_alloc_, .free = vmap_free_,                      \
	  .destroy = vmap_destroy_, .stats = vmap_stats_,                \
	  .check = vmap_check_ }

static const struct peer_ops vmap_ops =
	VMAP_OPS("vmap", "vmap range space, default flags: vmap_alloc / "
			 "vmap_free (lazy free, batched flush)", vmap_create);

#ifdef VMAP_SPACE_LOWEST_FIT
static void *vmap_lowest_create(uint64_t base, uint64_t length)
{
	return vmap_create_as(base, length, VMAP_SPACE_LOWEST_FIT, VK_FREE);
}

static const struct peer_ops vmap_lowest_ops =
	VMAP_OPS("vmap-lowest", "vmap, VMAP_SPACE_LOWEST_FIT: exact lowest "
				"fit, no size-class pools", vmap_lowest_create);
#endif

#ifdef VMAP_HAVE_FREE_SIZED
static void *vmap_sized_create(uint64_t base, uint64_t length)
{
	return vmap_create_as(base, length, 0, VK_SIZED);
}

static const struct peer_ops vmap_sized_ops =
	VMAP_OPS("vmap-sized", "vmap, freed with vmap_free_sized(addr, size)",
		 vmap_sized_create);
#endif

static void *vmap_blocks_create(uint64_t base, uint64_t length)
{
	return vmap_create_as(base, length, 0, VK_BLOCKS);
}

/* The per-CPU block path; only the threads workload runs it (its pieces
 * cannot take an alignment, and a block is reused only when all of it has
 * been freed, which random victims never arrange). */
static const struct peer_ops vmap_blocks_ops =
	VMAP_OPS("vmap-blocks", "vmap per-CPU blocks: vmap_ram_alloc / "
				"vmap_ram_free (threads only)",
		 vmap_blocks_create);

static const struct peer_ops *const backends[] = {
	&vmap_ops,
#ifdef VMAP_SPACE_LOWEST_FIT
	&vmap_lowest_ops,
#endif
#ifdef VMAP_HAVE_FREE_SIZED
	&vmap_sized_ops,
#endif
	&vmap_blocks_ops,
	&offset_ops,
	&tlsf_ops,
	&mesa_ops,
};
#define NBACKENDS (sizeof(backends) / sizeof(backends[0]))

/* ---- workloads -------------------------------------------------------- */

enum kind { K_CHURN, K_LIFO, K_THREADS, K_NEARFULL, K_MEMORY };
enum mix { MIX_PAGE, MIX_GPU, MIX_NEAR };

struct workload {
	const char *name;
	enum kind kind;
	enum mix mix;
	uint64_t length;	/* of the space */
	int live_div;		/* live = -n / live_div */
	int optional;		/* only when -w names it */
};

#define BASE (1ull << 40)

static const struct workload workloads[] = {
	{ "random1p", K_CHURN, MIX_PAGE, 1ull << 40, 1, 0 },
	{ "gpu10k", K_CHURN, MIX_GPU, 1ull << 47, 10, 0 },
	{ "gpu100k", K_CHURN, MIX_GPU, 1ull << 47, 1, 0 },
	{ "lifo", K_LIFO, MIX_PAGE, 1ull << 40, 1, 0 },
	{ "threads", K_THREADS, MIX_PAGE, 1ull << 40, 1, 0 },
	{ "nearfull", K_NEARFULL, MIX_NEAR, 1ull << 30, 1, 0 },
	{ "memory", K_MEMORY, MIX_GPU, 1ull << 47, 1, 0 },
	{ "nearfull-evict", K_NEARFULL, MIX_NEAR, 1ull << 30, 1, 1 },
};
#define NWORKLOADS (sizeof(workloads) / sizeof(workloads[0]))

#define NEAR_TARGET 0.90	/* nearfull: busy share of the space */

static struct {
	int rounds, smoke;
	uint64_t live, steps;
	double budget;		/* seconds per timed phase */
} opt = { 5, 0, 100000, 500000, 1.0 };

/* What one round measured.  v[] by workload kind:
 *   churn, lifo: ns/pair
 *   nearfull: ns/step, % failed, mean % busy, evictions/step
 *   threads: Mpairs/s 1T, 2T
 *   memory: B/area filled, churned, self-reported
 * and at its end: live areas, and the allocator's free ranges. */
#define NV 4
struct round {
	double v[NV];
	uint64_t pairs, fails, flushes, free_ranges, live;
};

struct result {
	int status;		/* 0 ok; 1 a check failed; -1 no result */
	int rounds;
	struct round r[MAX_ROUNDS];
};

/* ---- the request sequence --------------------------------------------- */

/* splitmix64: small, fast, and the same stream everywhere for a seed. */
static uint64_t rnd(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static double unit(uint64_t *x)
{
	return (double)(rnd(x) >> 11) * 0x1p-53;
}

struct req {
	uint32_t pages;
	uint8_t align_shift;	/* log2 of the alignment in bytes */
};

static struct req make_req(enum mix mix, uint64_t *x)
{
	static const uint8_t near_align[] = { 12, 16, 21 };
	struct req q = { 1, 12 };

	switch (mix) {
	case MIX_PAGE:
		break;
	case MIX_GPU:	/* 4 KiB .. 64 MiB; 4 KiB .. 2 MiB aligned */
		q.pages = (uint32_t)ceil(exp2(unit(x) * 14));
		q.align_shift = (uint8_t)(12 + rnd(x) % 10);
		break;
	case MIX_NEAR:	/* 4 KiB .. 2 MiB; aligned 4K, 64K or 2M */
		q.pages = (uint32_t)ceil(exp2(unit(x) * 9));
		q.align_shift = near_align[rnd(x) % 3];
		break;
	}
	if (!q.pages)
		q.pages = 1;
	return q;
}

/*
 * Generated before the clock starts (exp2 would cost as much as the fastest
 * allocator): `prefill` requests to fill the space, then `steps` more.  For
 * nearfull the prefill is the requests that fit under the target; the one
 * that does not is the first step's.
 */
static struct req *make_reqs(const struct workload *w, uint64_t live,
			     uint64_t steps, uint64_t *prefill)
{
	uint64_t x = 42, cap = live + steps, n = 0, bytes = 0;
	uint64_t target = (uint64_t)(NEAR_TARGET * (double)w->length);
	struct req *rq = malloc(cap * sizeof(*rq));
	int filling = 1;

	for (;;) {
		struct req q = make_req(w->mix, &x);

		if (filling && (w->kind == K_NEARFULL
				? bytes + (uint64_t)q.pages * PG > target
				: n == live)) {
			*prefill = n;
			filling = 0;
		}
		if (!filling && n == *prefill + steps)
			break;
		if (n == cap) {
			cap *= 2;
			rq = realloc(rq, cap * sizeof(*rq));
		}
		if (!rq) {
			perror("bench-alloc: requests");
			exit(2);
		}
		bytes += (uint64_t)q.pages * PG;
		rq[n++] = q;
	}
	return rq;
}

/* ---- checks ----------------------------------------------------------- */

struct live {
	uint64_t addr, size;
	uint32_t handle;
};

static atomic_int bad;		/* checks failed here (threads too) */

static void fail(const char *who, const char *what, uint64_t a, uint64_t b)
{
	if (atomic_fetch_add(&bad, 1) < 10)
		fprintf(stderr, "bench-alloc: %s: %s (%#llx, %#llx)\n", who,
			what, (unsigned long long)a, (unsigned long long)b);
}

/* An area handed out must lie in the space and honour its alignment. */
static inline void check_area(const char *who, uint64_t base, uint64_t length,
			      uint64_t addr, uint64_t size, uint64_t align)
{
	if (addr < base || addr - base > length || size > base + length - addr)
		fail(who, "area outside the space", addr, size);
	if (addr & (align - 1))
		fail(who, "area misaligned", addr, align);
}

static int by_addr(const void *a, const void *b)
{
	uint64_t x = ((const struct live *)a)->addr;
	uint64_t y = ((const struct live *)b)->addr;

	return (x > y) - (x < y);
}

/* The sorted sweep: no live area may overlap the next one up. */
static void check_overlap(const char *who, const struct live *l, uint64_t n)
{
	struct live *s = malloc(n * sizeof(*s) + 1);

	if (!s) {
		fail(who, "no memory for the overlap check", n, 0);
		return;
	}
	memcpy(s, l, n * sizeof(*s));
	qsort(s, n, sizeof(*s), by_addr);
	for (uint64_t i = 1; i < n; i++)
		if (s[i - 1].addr + s[i - 1].size > s[i].addr)
			fail(who, "live areas overlap", s[i - 1].addr,
			     s[i].addr);
	free(s);
}

static void end_round(const struct peer_ops *ops, void *a,
		      const struct live *l, uint64_t n, struct round *r)
{
	struct peer_stats st = { 0 };

	check_overlap(ops->name, l, n);
	if (opt.smoke && ops->check(a))
		fail(ops->name, "its own check failed", n, 0);
	ops->stats(a, &st);
	r->flushes = st.flushes;
	r->free_ranges = st.free_ranges;
	r->live = n;
}

static void *create(const struct peer_ops *ops, const struct workload *w)
{
	void *a = ops->create(BASE, w->length);

	if (!a) {
		fprintf(stderr, "bench-alloc: %s: cannot create\n", ops->name);
		exit(2);
	}
	return a;
}

/* ---- single-threaded workloads ---------------------------------------- */

/*
 * One allocator and what it holds: the live areas in a dense array (a
 * random victim is one index away; a freed slot takes the last entry), and
 * their bytes.
 */
struct state {
	const struct peer_ops *ops;
	const struct workload *w;
	void *a;
	const struct req *rq;	/* prefill requests, then the steps' */
	uint64_t prefill;
	struct live *l;
	uint64_t n, busy;
};

/* Allocate request q into l[n]; 0, or the allocator's error. */
static int place(struct state *s, struct req q)
{
	uint64_t size = (uint64_t)q.pages * PG, align = 1ull << q.align_shift;
	struct live *e = &s->l[s->n];
	int err = s->ops->alloc(s->a, size, align, &e->addr, &e->handle);

	if (err) {
		if (err != -ENOSPC && err != -ENOMEM)
			fail(s->ops->name, "alloc: unexpected error",
			     (uint64_t)-err, size);
		return err;
	}
	e->size = size;
	check_area(s->ops->name, BASE, s->w->length, e->addr, size, align);
	s->n++;
	s->busy += size;
	return 0;
}

/* Free l[k] and fill its slot with the last entry. */
static void drop(struct state *s, uint64_t k)
{
	struct live *e = &s->l[k];

	if (s->ops->free(s->a, e->addr, e->size, e->handle))
		fail(s->ops->name, "free refused", e->addr, e->size);
	s->busy -= e->size;
	*e = s->l[--s->n];
}

/* A new allocator holding the prefill requests; not timed. */
static void fill(struct state *s)
{
	s->a = create(s->ops, s->w);
	s->n = s->busy = 0;
	for (uint64_t i = 0; i < s->prefill; i++)
		if (place(s, s->rq[i]) && s->w->kind != K_NEARFULL)
			fail(s->ops->name, "prefill failed", i,
			     s->rq[i].pages);
}

/*
 * random1p, gpu*: timed steps of "free a random victim, allocate the next
 * request", continuing from the previous round's state (so a slow prefill
 * is paid once; each round replays the same requests with other victims).
 * The victim is never the area the previous step allocated (it sits last in
 * the array): its record would be hot in the cache, which a real driver's
 * frees seldom find.
 */
static void churn_round(struct state *s, int round, uint64_t steps,
			struct round *r)
{
	uint64_t x = 1000 + (uint64_t)round, i, t0, t1, dl;

	t0 = now();
	dl = t0 + (uint64_t)(opt.budget * 1e9);
	for (i = 0; i < steps; i++) {
		if (s->n >= 2)
			drop(s, rnd(&x) % (s->n - 1));
		if (place(s, s->rq[s->prefill + i]))
			r->fails++;
		if ((i & 255) == 255 && now() > dl) {
			i++;
			break;
		}
	}
	t1 = now();
	r->pairs = i;
	r->v[0] = (double)(t1 - t0) / (double)i;
}

/*
 * nearfull: before each request, free random areas until it fits under the
 * target (90% of the space busy), then allocate.  A failure -- nothing fits
 * although 10% is free: fragmentation -- is counted, and the request is
 * dropped.  The dropped ones are the big and the 2 MiB-aligned, so the live
 * areas drift towards small survivors (2,800 after the fill, ~40,000 after
 * a million steps): the table's live column shows it.
 *
 * nearfull-evict (not run by default) keeps the request mix instead: on a
 * failure it evicts one more random area and retries until the request
 * fits, so the busy share drops to whatever each allocator can sustain
 * while serving every request.  For vmap an evicted area is lazy: its retry
 * purges.
 */
static void nearfull_round(struct state *s, int round, int evict,
			   struct round *r)
{
	uint64_t target = (uint64_t)(NEAR_TARGET * (double)s->w->length);
	uint64_t x = 1000 + (uint64_t)round, evicted = 0, i, t0, t1, dl;
	double busy = 0;

	t0 = now();
	dl = t0 + (uint64_t)(opt.budget * 1e9);
	for (i = 0; i < opt.steps; i++) {
		struct req q = s->rq[s->prefill + i];

		while (s->n >= 2 && s->busy + (uint64_t)q.pages * PG > target)
			drop(s, rnd(&x) % (s->n - 1));
		if (place(s, q)) {
			r->fails++;
			while (evict && s->n) {
				drop(s, rnd(&x) % s->n);
				evicted++;
				if (!place(s, q))
					break;
			}
			if (evict && !s->n)
				fail(s->ops->name, "no room in an empty space",
				     q.pages, q.align_shift);
		}
		busy += (double)s->busy;
		if ((i & 255) == 255 && now() > dl) {
			i++;
			break;
		}
	}
	t1 = now();
	r->pairs = i;
	r->v[0] = (double)(t1 - t0) / (double)i;
	r->v[1] = 100.0 * (double)r->fails / (double)i;
	r->v[2] = 100.0 * busy / (double)i / (double)s->w->length;
	r->v[3] = (double)evicted / (double)i;
}

/* lifo: allocate one page and free it at once, the prefill still live. */
static void lifo_round(struct state *s, struct round *r)
{
	uint64_t i, t0, t1, dl;

	t0 = now();
	dl = t0 + (uint64_t)(opt.budget * 1e9);
	for (i = 0; i < opt.steps; i++) {
		if (place(s, s->rq[0]))
			r->fails++;
		else
			drop(s, s->n - 1);
		if ((i & 255) == 255 && now() > dl) {
			i++;
			break;
		}
	}
	t1 = now();
	r->pairs = i;
	r->v[0] = (double)(t1 - t0) / (double)i;
}

/* Heap bytes in use, small chunks and mmapped ones (glibc serves requests
 * above its mmap threshold, e.g. a big node pool, with mmap). */
static uint64_t heap_bytes(void)
{
	struct mallinfo2 mi = mallinfo2();

	return mi.uordblks + mi.hblkhd;
}

/*
 * memory: the heap each backend takes per live area, after filling N areas
 * of the GPU mix and after up to N churn steps (fragmentation adds free
 * ranges; the churn stops at -t seconds like a timed round).  The
 * benchmark's own arrays exist before the first reading.
 */
static void memory_round(struct state *s, struct round *r)
{
	struct peer_stats st = { 0 };
	uint64_t h0 = heap_bytes(), h1, h2, steps = opt.steps;
	uint64_t filled;

	fill(s);
	h1 = heap_bytes();
	filled = s->n;
	if (steps > s->prefill)
		steps = s->prefill;
	churn_round(s, 0, steps, r);
	h2 = heap_bytes();
	s->ops->stats(s->a, &st);
	r->v[0] = ((double)h1 - (double)h0) / (double)(filled ? filled : 1);
	r->v[1] = ((double)h2 - (double)h0) / (double)(s->n ? s->n : 1);
	r->v[2] = (double)st.meta_bytes / (double)(s->n ? s->n : 1);
}

/* ---- threads ---------------------------------------------------------- */

struct worker {
	const struct peer_ops *ops;
	void *a;
	pthread_mutex_t *lock;	/* NULL: the backend is thread-safe */
	pthread_barrier_t *go;
	int cpu;
	uint64_t done, t0, t1;	/* pairs; when the thread began, ended */
	struct live win[WINDOW];
};

static void *work(void *arg)
{
	struct worker *w = arg;
	uint64_t x = 99 + (uint64_t)w->cpu, dl, i;
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(w->cpu, &set);
	pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
	memset(w->win, 0, sizeof(w->win));
	pthread_barrier_wait(w->go);
	w->t0 = now();
	dl = w->t0 + (uint64_t)(opt.budget * 1e9);
	for (i = 0; i < opt.steps + WINDOW; i++) {
		struct live *e = &w->win[i % WINDOW];
		int err = 0;

		if (w->lock)
			pthread_mutex_lock(w->lock);
		if (e->size)
			err = w->ops->free(w->a, e->addr, e->size, e->handle);
		if (err)
			fail(w->ops->name, "free refused", e->addr, e->size);
		e->size = (1 + (rnd(&x) >> 60)) * PG;	/* 1..16 pages */
		err = w->ops->alloc(w->a, e->size, 0, &e->addr, &e->handle);
		if (w->lock)
			pthread_mutex_unlock(w->lock);
		if (err) {
			fail(w->ops->name, "alloc failed", (uint64_t)-err,
			     e->size);
			e->size = 0;
		} else {
			check_area(w->ops->name, BASE, 1ull << 40, e->addr,
				   e->size, PG);
		}
		if ((i & 255) == 255 && now() > dl) {
			i++;
			break;
		}
	}
	w->t1 = now();
	w->done = i > WINDOW ? i - WINDOW : 0;
	return NULL;
}

/* Million pairs per second, all threads together, from the first thread's
 * start to the last one's end: timed by the workers themselves, since the
 * main thread may run late after the barrier. */
static double run_threads(const struct peer_ops *ops,
			  const struct workload *wl, int threads,
			  struct round *r)
{
	pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	int cpus = ncpu > 0 ? (int)ncpu : 1;	/* one CPU: both share it */
	struct worker w[2];
	struct live all[2 * WINDOW];
	pthread_barrier_t go;
	pthread_t t[2];
	uint64_t t0 = UINT64_MAX, t1 = 0, pairs = 0, n = 0;
	void *a = create(ops, wl);

	pthread_barrier_init(&go, NULL, (unsigned)threads + 1);
	for (int i = 0; i < threads; i++) {
		w[i] = (struct worker){ .ops = ops, .a = a, .go = &go,
					.lock = ops->thread_safe ? NULL : &lock,
					.cpu = i % cpus };
		pthread_create(&t[i], NULL, work, &w[i]);
	}
	pthread_barrier_wait(&go);
	for (int i = 0; i < threads; i++)
		pthread_join(t[i], NULL);
	for (int i = 0; i < threads; i++) {
		t0 = w[i].t0 < t0 ? w[i].t0 : t0;
		t1 = w[i].t1 > t1 ? w[i].t1 : t1;
		pairs += w[i].done;
		for (int k = 0; k < WINDOW; k++)
			if (w[i].win[k].size)
				all[n++] = w[i].win[k];
	}
	r->pairs += pairs;
	end_round(ops, a, all, n, r);
	pthread_barrier_destroy(&go);
	ops->destroy(a);
	return (double)pairs / ((double)(t1 - t0) / 1e9) / 1e6;
}

/* ---- one backend x workload, in a child ------------------------------- */

static void measure(const struct peer_ops *ops, const struct workload *w,
		    struct result *res)
{
	uint64_t live = opt.live / (uint64_t)w->live_div, lcap;
	struct state s = { .ops = ops, .w = w };
	struct req *rq = NULL;

	if (live < 2)
		live = 2;
	if (w->kind != K_THREADS)
		s.rq = rq = make_reqs(w, live, opt.steps, &s.prefill);
	lcap = s.prefill + 1;
	if (w->kind == K_NEARFULL)	/* failures can leave room for more */
		lcap = w->length / PG;
	s.l = malloc(lcap * sizeof(*s.l));
	if (!s.l) {
		perror("bench-alloc: live array");
		exit(2);
	}
	if (w->kind == K_CHURN || w->kind == K_NEARFULL || w->kind == K_LIFO)
		fill(&s);
	res->rounds = w->kind == K_MEMORY ? 1 : opt.rounds;
	for (int k = 0; k < res->rounds; k++) {
		struct round *r = &res->r[k];
		struct peer_stats st = { 0 };

		memset(r, 0, sizeof(*r));
		if (s.a)	/* rounds go on from the last: count */
			ops->stats(s.a, &st);
		switch (w->kind) {
		case K_CHURN:
			churn_round(&s, k, opt.steps, r);
			break;
		case K_NEARFULL:
			nearfull_round(&s, k, w->optional, r);
			break;
		case K_LIFO:
			lifo_round(&s, r);
			break;
		case K_THREADS:
			r->v[0] = run_threads(ops, w, 1, r);
			r->v[1] = run_threads(ops, w, 2, r);
			break;
		case K_MEMORY:
			memory_round(&s, r);
			break;
		}
		if (s.a) {
			end_round(ops, s.a, s.l, s.n, r);
			r->flushes -= st.flushes;
		}
	}
	if (s.a)
		ops->destroy(s.a);
	free(s.l);
	free(rq);
	res->status = bad ? 1 : 0;
}

/* Fork, run, read the result back through a pipe. */
static int run_child(const struct peer_ops *ops, const struct workload *w,
		     struct result *res)
{
	int fd[2], st;
	ssize_t got = 0, k;
	pid_t pid;

	memset(res, 0, sizeof(*res));
	res->status = -1;
	fflush(NULL);
	if (pipe(fd) || (pid = fork()) < 0) {
		perror("bench-alloc: fork");
		exit(2);
	}
	if (pid == 0) {
		close(fd[0]);
		measure(ops, w, res);
		if (write(fd[1], res, sizeof(*res)) != (ssize_t)sizeof(*res))
			_exit(3);
		_exit(res->status ? 1 : 0);
	}
	close(fd[1]);
	while ((size_t)got < sizeof(*res) &&
	       (k = read(fd[0], (char *)res + got, sizeof(*res) - got)) > 0)
		got += k;
	close(fd[0]);
	waitpid(pid, &st, 0);
	if ((size_t)got != sizeof(*res)) {
		memset(res, 0, sizeof(*res));
		res->status = -1;
	}
	if (!WIFEXITED(st) || WEXITSTATUS(st)) {
		fprintf(stderr, "bench-alloc: %s/%s: child %s %d\n", w->name,
			ops->name, WIFEXITED(st) ? "exited" : "killed by",
			WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
		if (res->status == 0)
			res->status = 1;
	}
	return res->status;
}

/* ---- reporting -------------------------------------------------------- */

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static int cmp_u(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

struct summary {
	double med[NV], min[NV], max[NV];
	uint64_t pairs, fails, flushes, free_ranges, live; /* medians */
};

static void summarise(const struct result *res, struct summary *s)
{
	double d[MAX_ROUNDS];
	uint64_t u[5][MAX_ROUNDS];
	int n = res->rounds;

	memset(s, 0, sizeof(*s));
	if (n < 1)
		return;
	for (int j = 0; j < NV; j++) {
		for (int k = 0; k < n; k++)
			d[k] = res->r[k].v[j];
		qsort(d, (size_t)n, sizeof(d[0]), cmp_d);
		s->med[j] = d[n / 2];
		s->min[j] = d[0];
		s->max[j] = d[n - 1];
	}
	for (int k = 0; k < n; k++) {
		u[0][k] = res->r[k].pairs;
		u[1][k] = res->r[k].fails;
		u[2][k] = res->r[k].flushes;
		u[3][k] = res->r[k].free_ranges;
		u[4][k] = res->r[k].live;
	}
	for (int j = 0; j < 5; j++)
		qsort(u[j], (size_t)n, sizeof(u[j][0]), cmp_u);
	s->pairs = u[0][n / 2];
	s->fails = u[1][n / 2];
	s->flushes = u[2][n / 2];
	s->free_ranges = u[3][n / 2];
	s->live = u[4][n / 2];
}

static const char *space_size(uint64_t length)
{
	static char buf[32];

	if (length >= 1ull << 40)
		snprintf(buf, sizeof(buf), "%llu TiB",
			 (unsigned long long)(length >> 40));
	else
		snprintf(buf, sizeof(buf), "%llu GiB",
			 (unsigned long long)(length >> 30));
	return buf;
}

static void describe(const struct workload *w)
{
	uint64_t live = opt.live / (uint64_t)w->live_div;

	printf("\n== %s: ", w->name);
	switch (w->kind) {
	case K_CHURN:
		printf("%s, %llu live, %s space; free a random live area + "
		       "alloc; up to %llu steps or %.1f s per round",
		       w->mix == MIX_PAGE ? "1-page areas"
					  : "GPU mix (4K..64M, align 4K..2M)",
		       (unsigned long long)live, space_size(w->length),
		       (unsigned long long)opt.steps, opt.budget);
		break;
	case K_LIFO:
		printf("1 page alloc + free at once, %llu others live; up to "
		       "%llu pairs or %.1f s per round",
		       (unsigned long long)live, (unsigned long long)opt.steps,
		       opt.budget);
		break;
	case K_THREADS:
		printf("1 and 2 threads (CPUs 0, 1), %d live 1..16-page areas "
		       "each, free oldest + alloc; up to %llu pairs/thread or "
		       "%.1f s; peers under a mutex", WINDOW,
		       (unsigned long long)opt.steps, opt.budget);
		break;
	case K_NEARFULL:
		printf("1 GiB space held at %.0f%% busy, 4K..2M areas aligned "
		       "4K/64K/2M; free random areas until the request fits, "
		       "alloc; %s; up to %llu steps or %.1f s",
		       100 * NEAR_TARGET,
		       w->optional ? "on failure evict one more and retry"
				   : "a failed request is dropped",
		       (unsigned long long)opt.steps, opt.budget);
		break;
	case K_MEMORY:
		printf("heap bytes per live area (mallinfo2 in use + mmapped), "
		       "%llu areas of the GPU mix, then %llu churn steps",
		       (unsigned long long)live,
		       (unsigned long long)(opt.steps < live ? opt.steps
							     : live));
		break;
	}
	printf("; %d round%s ==\n", w->kind == K_MEMORY ? 1 : opt.rounds,
	       w->kind == K_MEMORY || opt.rounds == 1 ? "" : "s");
}

/* "x vmap": this backend's time per pair over vmap's (below 1: faster). */
static void ratio(double mine, double vmaps, int have_vmap, int is_vmap)
{
	if (is_vmap || !have_vmap || !(vmaps > 0) || !(mine > 0))
		printf(" %8s", "-");
	else
		printf(" %7.2fx", mine / vmaps);
}

static void table(const struct workload *w, const struct result *res,
		  const int *ran)
{
	struct summary s[NBACKENDS], v = { 0 };
	int have_vmap = ran[0] && res[0].status == 0;

	for (size_t b = 0; b < NBACKENDS; b++)
		if (ran[b])
			summarise(&res[b], &s[b]);
	if (ran[0])
		v = s[0];
	describe(w);
	switch (w->kind) {
	case K_CHURN:
	case K_LIFO:
	case K_NEARFULL:
		if (w->kind == K_NEARFULL)
			printf("fails: requests that did not fit%s; busy %%: "
			       "mean over the steps; live: areas at the end\n",
			       w->optional ? " at the first try; evict/req: "
					     "areas evicted to make them fit"
					   : "");
		printf("%-12s %9s %9s %9s %8s %12s %8s", "backend",
		       w->kind == K_NEARFULL ? "ns/step" : "ns/pair", "min",
		       "max", "x vmap",
		       w->kind == K_NEARFULL ? "steps/round" : "pairs/round",
		       "fails");
		if (w->kind == K_NEARFULL)
			printf(" %7s %9s %7s %7s", "fail %", "evict/req",
			       "busy %", "live");
		printf(" %8s %11s\n", "flushes", "free ranges");
		break;
	case K_THREADS:
		printf("%-12s %10s %10s %7s %9s %9s %12s\n", "backend",
		       "1T Mpair/s", "2T Mpair/s", "2T/1T", "x vmap 1T",
		       "x vmap 2T", "pairs 1T+2T");
		break;
	case K_MEMORY:
		printf("%-12s %14s %15s %8s %14s %11s\n", "backend",
		       "B/area filled", "B/area churned", "x vmap",
		       "self-reported", "free ranges");
		break;
	}
	for (size_t b = 0; b < NBACKENDS; b++) {
		const struct summary *x = &s[b];
		int is_vmap = b == 0;

		if (!ran[b])
			continue;
		printf("%-12s", backends[b]->name);
		if (res[b].status < 0) {
			printf(" (no result: the child failed)\n");
			continue;
		}
		switch (w->kind) {
		case K_CHURN:
		case K_LIFO:
		case K_NEARFULL:
			printf(" %9.1f %9.1f %9.1f", x->med[0], x->min[0],
			       x->max[0]);
			ratio(x->med[0], v.med[0], have_vmap, is_vmap);
			printf(" %12llu %8llu", (unsigned long long)x->pairs,
			       (unsigned long long)x->fails);
			if (w->kind == K_NEARFULL) {
				printf(" %6.2f%%", x->med[1]);
				if (w->optional)
					printf(" %9.3f", x->med[3]);
				else
					printf(" %9s", "-");
				printf(" %6.2f%% %7llu", x->med[2],
				       (unsigned long long)x->live);
			}
			if (x->flushes)
				printf(" %8llu",
				       (unsigned long long)x->flushes);
			else
				printf(" %8s", "-");
			printf(" %11llu", (unsigned long long)x->free_ranges);
			break;
		case K_THREADS:
			printf(" %10.2f %10.2f %6.2fx", x->med[0], x->med[1],
			       x->med[1] / x->med[0]);
			/* as time per pair: vmap's rate over this one's */
			printf(" ");
			ratio(1 / x->med[0], 1 / v.med[0], have_vmap, is_vmap);
			printf(" ");
			ratio(1 / x->med[1], 1 / v.med[1], have_vmap, is_vmap);
			printf(" %12llu", (unsigned long long)x->pairs);
			break;
		case K_MEMORY:
			printf(" %14.1f %15.1f", x->med[0], x->med[1]);
			ratio(x->med[1], v.med[1], have_vmap, is_vmap);
			if (x->med[2] > 0)
				printf(" %14.1f", x->med[2]);
			else
				printf(" %14s", "-");
			printf(" %11llu", (unsigned long long)x->free_ranges);
			break;
		}
		if (res[b].status > 0)
			printf("  CHECK FAILED");
		printf("\n");
	}
	fflush(stdout);
}

static const char *const metric[][NV] = {
	[K_CHURN] = { "ns_per_pair" },
	[K_LIFO] = { "ns_per_pair" },
	[K_NEARFULL] = { "ns_per_step", "failed_percent", "mean_busy_percent",
			 "evictions_per_step" },
	[K_THREADS] = { "mpairs_per_s_1t", "mpairs_per_s_2t" },
	[K_MEMORY] = { "bytes_per_area_filled", "bytes_per_area_churned",
		       "self_bytes_per_area" },
};

static void json(FILE *f, int *first, const struct workload *w,
		 const struct peer_ops *ops, const struct result *res)
{
	struct summary s;

	summarise(res, &s);
	fprintf(f, "%s\n    {\"workload\": \"%s\", \"backend\": \"%s\", "
		   "\"status\": \"%s\", \"rounds\": %d",
		*first ? "" : ",", w->name, ops->name,
		res->status == 0 ? "ok" : res->status > 0 ? "check failed"
							   : "no result",
		res->rounds);
	*first = 0;
	for (int j = 0; j < NV; j++) {
		if (!metric[w->kind][j])
			continue;
		fprintf(f, ",\n     \"%s\": {\"median\": %.3f, \"min\": %.3f, "
			   "\"max\": %.3f, \"rounds\": [",
			metric[w->kind][j], s.med[j], s.min[j], s.max[j]);
		for (int k = 0; k < res->rounds; k++)
			fprintf(f, "%s%.3f", k ? ", " : "", res->r[k].v[j]);
		fprintf(f, "]}");
	}
	fprintf(f, ",\n     \"pairs\": %llu, \"failures\": %llu, "
		   "\"flushes\": %llu, \"free_ranges\": %llu, "
		   "\"live\": %llu}",
		(unsigned long long)s.pairs, (unsigned long long)s.fails,
		(unsigned long long)s.flushes,
		(unsigned long long)s.free_ranges, (unsigned long long)s.live);
}

/* ---- main ------------------------------------------------------------- */

/* Is `name` in the comma-separated `list` (NULL: everything is)? */
static int listed(const char *list, const char *name)
{
	size_t n = strlen(name);

	if (!list)
		return 1;
	for (const char *p = list; *p;) {
		const char *e = strchr(p, ',');
		size_t k = e ? (size_t)(e - p) : strlen(p);

		if (k == n && !strncmp(p, name, n))
			return 1;
		p += k + (e != NULL);
	}
	return 0;
}

/* Is every name of `list` one of names[0..n)?  Says which is not. */
static int known(const char *list, const char *const *names, size_t n,
		 const char *what)
{
	for (const char *p = list; p && *p;) {
		const char *e = strchr(p, ',');
		size_t k = e ? (size_t)(e - p) : strlen(p), j;

		for (j = 0; j < n; j++)
			if (strlen(names[j]) == k && !strncmp(p, names[j], k))
				break;
		if (j == n) {
			fprintf(stderr, "bench-alloc: no %s '%.*s'\n", what,
				(int)k, p);
			return 0;
		}
		p += k + (e != NULL);
	}
	return 1;
}

static void usage(const char *argv0)
{
	fprintf(stderr,
		"usage: %s [-r rounds] [-n live] [-m steps] [-t seconds] "
		"[-w workloads] [-b backends] [--smoke] [--json FILE]\n"
		"  workloads: random1p,gpu10k,gpu100k,lifo,threads,nearfull,"
		"memory (the default), nearfull-evict\n", argv0);
	exit(2);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "smoke", no_argument, NULL, 'S' },
		{ "json", required_argument, NULL, 'J' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	const char *wlist = NULL, *blist = NULL, *jpath = NULL;
	const char *wnames[NWORKLOADS], *bnames[NBACKENDS];
	struct result res[NBACKENDS];
	int ran[NBACKENDS], status = 0, first = 1, c;
	int set_r = 0, set_n = 0, set_m = 0, set_t = 0;
	FILE *jf = NULL;

	while ((c = getopt_long(argc, argv, "r:n:m:t:w:b:h", longopts,
				NULL)) != -1) {
		switch (c) {
		case 'r':
			opt.rounds = atoi(optarg);
			set_r = 1;
			break;
		case 'n':
			opt.live = strtoull(optarg, NULL, 0);
			set_n = 1;
			break;
		case 'm':
			opt.steps = strtoull(optarg, NULL, 0);
			set_m = 1;
			break;
		case 't':
			opt.budget = atof(optarg);
			set_t = 1;
			break;
		case 'w': wlist = optarg; break;
		case 'b': blist = optarg; break;
		case 'S': opt.smoke = 1; break;
		case 'J': jpath = optarg; break;
		default: usage(argv[0]);
		}
	}
	if (optind != argc)
		usage(argv[0]);
	if (opt.smoke) {	/* tiny counts, unless asked otherwise */
		if (!set_r) opt.rounds = 2;
		if (!set_n) opt.live = 1000;
		if (!set_m) opt.steps = 5000;
		if (!set_t) opt.budget = 0.2;
	}
	if (opt.rounds < 1 || opt.rounds > MAX_ROUNDS || opt.live < 20 ||
	    opt.steps < 1 || !(opt.budget > 0)) {
		fprintf(stderr, "bench-alloc: -r 1..%d, -n >= 20, -m >= 1, "
				"-t > 0\n", MAX_ROUNDS);
		return 2;
	}
	for (size_t k = 0; k < NWORKLOADS; k++)
		wnames[k] = workloads[k].name;
	for (size_t k = 0; k < NBACKENDS; k++)
		bnames[k] = backends[k]->name;
	if (!known(wlist, wnames, NWORKLOADS, "workload") ||
	    !known(blist, bnames, NBACKENDS, "backend"))
		return 2;
	if (jpath && !(jf = fopen(jpath, "w"))) {
		perror(jpath);
		return 2;
	}
	printf("bench-alloc: vmap's range space against GPU-driver address "
	       "allocators; %ld CPUs online%s\n",
	       sysconf(_SC_NPROCESSORS_ONLN), opt.smoke ? "; smoke run" : "");
	for (size_t b = 0; b < NBACKENDS; b++)
		if (listed(blist, backends[b]->name))
			printf("  %-12s %s\n", backends[b]->name,
			       backends[b]->what);
	printf("x vmap: time per pair over vmap's (below 1: faster than "
	       "vmap); every step's request sequence is the same for all\n");
	if (jf)
		fprintf(jf, "{\"benchmark\": \"bench-alloc\", \"cpus\": %ld, "
			    "\"rounds\": %d, \"live\": %llu, \"steps\": %llu, "
			    "\"budget_s\": %.3f, \"smoke\": %s,\n "
			    "\"results\": [",
			sysconf(_SC_NPROCESSORS_ONLN), opt.rounds,
			(unsigned long long)opt.live,
			(unsigned long long)opt.steps, opt.budget,
			opt.smoke ? "true" : "false");
	for (size_t k = 0; k < NWORKLOADS; k++) {
		const struct workload *w = &workloads[k];

		if (wlist ? !listed(wlist, w->name) : w->optional)
			continue;
		for (size_t b = 0; b < NBACKENDS; b++) {
			ran[b] = listed(blist, backends[b]->name) &&
				 (backends[b] != &vmap_blocks_ops ||
				  w->kind == K_THREADS);
			if (!ran[b])
				continue;
			if (run_child(backends[b], w, &res[b]))
				status = 1;
			if (jf)
				json(jf, &first, w, backends[b], &res[b]);
		}
		table(w, res, ran);
	}
	if (jf) {
		fprintf(jf, "\n]}\n");
		if (fclose(jf)) {
			perror(jpath);
			status = 1;
		}
	}
	if (status)
		fprintf(stderr, "bench-alloc: FAILED (see above)\n");
	return status;
}
