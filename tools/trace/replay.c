/* SPDX-License-Identifier: MIT */
/*
 * replay.c - one replay of a kernel trace on a range space, in one mode,
 * in a process of its own: `vmap-trace --child MODE FILE [--check]
 * [--rounds N] [--segments FILE]`.
 *
 * The space is the kernel's: spans for each [vstart, vend) the trace
 * allocates in (and for the areas of its snapshot), the trace's page size
 * and its nr_lazy_max as lazy_max_pages.  The snapshot's busy areas are
 * placed at their kernel addresses (vmap_alloc_at), its lazy ones too and
 * then freed, so vmap starts from the kernel's state.  Then every event, in
 * trace order: an allocation with the same size, alignment and range; a
 * free of whatever vmap placed for that kernel area; a purge the threshold
 * did not ask for (EVF_EXPLICIT) as vmap_purge.  Threshold purges are left
 * to vmap: comparing them with the kernel's is the point.  With
 * --purge-at-kernel, vmap's threshold is off and every kernel purge is a
 * vmap_purge at the same place in the trace: the kernel's drain work runs
 * when a worker gets to it, which no replay can know, so this shows what
 * vmap's lazy list holds at the kernel's own moments.
 *
 * The modes: "seed" (the 2016 design: exact lowest fit, one lazy list),
 * "pool" (the default: per-node pools of purged areas by size, as Linux
 * 6.9), "legacy" (vmap-trace-legacy: the pre-2016 purge that walks every
 * busy area).
 *
 * Results go to stdout one per line, "key value..." (report.c reads them):
 * timing comes from rounds with nothing but the replay in the loop; the
 * placement analysis and per-purge records from one more round that looks
 * at vmap's state before each allocation.
 */
#include <errno.h>
#include <search.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <vmap.h>

#include "trace.h"

#ifdef VMAP_TRACE_LEGACY
#define HERE_MODES "legacy kernel"
#else
#define HERE_MODES "seed pool kernel"
#endif

bool replay_mode_here(const char *mode)
{
	static const char here[] = HERE_MODES;
	const char *p = strstr(here, mode);
	size_t n = strlen(mode);

	return n && p && (p == here || p[-1] == ' ') &&
	       (p[n] == ' ' || p[n] == '\0');
}

struct key {
	uint64_t addr;
	int64_t origin;
};

/* What the flush callback saw since the last look. */
struct flushes {
	uint64_t calls, lo, hi;
};

static void on_flush(void *ctx, const struct vmap_range *r, size_t n)
{
	struct flushes *f = ctx;

	f->calls++;
	for (size_t i = 0; i < n; i++) {
		if (r[i].start < f->lo)
			f->lo = r[i].start;
		if (r[i].end > f->hi)
			f->hi = r[i].end;
	}
}

struct replay {
	struct trace *t;
	const char *mode;
	/* For each event, where its area came from: a free's allocation
	 * event (>= 0) or snapshot area (-1 - k); NO_ORIGIN if none. */
	int64_t *origin;
	uint64_t *vaddr;	/* vmap's address per alloc event; 0: none */
	uint64_t *snap_vaddr;	/* per snapshot area */
	struct vmap_range *span;
	size_t nspan;
	vmap_space *s;
	struct flushes fl;
	bool check, analyse;
	bool kernel_moments;	/* --purge-at-kernel: no threshold; purge
				   where the kernel did */
	FILE *seg;		/* --segments: the areas for the picture */
	/* analysis */
	uint64_t exact, placed, vmap_failed, vmap_extra, cls[6];
	uint64_t hist[2][66];	/* [vmap lower, higher][log2 pages + 1] */
	uint64_t *free_ts;	/* per alloc event: when vmap freed it */
	uint64_t *vaddr_at_free; /* ... and where it was */
	size_t *lazy;		/* alloc events freed since vmap's last
				   purge, oldest first */
	size_t nlazy, lazy_head;
	uint64_t purged_base;
	void *kfreed;		/* the kernel's freed areas: struct key, the
				   size in origin (analysis round) */
	struct key *kkeys;
	size_t nkkeys;
};

#define NO_ORIGIN INT64_MIN

/* Placement classes (cls[]). */
enum { CL_LOWER_REUSE, CL_LOWER, CL_HIGHER, CL_LAZY, CL_BUSY, CL_OUT };
static const char *const cl_names[] = {
	"kernel-reused-same-size", "vmap-lower", "vmap-higher",
	"kernel-range-lazy-in-vmap", "kernel-range-busy-in-vmap",
	"kernel-range-outside"
};


static int key_cmp(const void *a, const void *b)
{
	const struct key *x = a, *y = b;

	return x->addr < y->addr ? -1 : x->addr > y->addr;
}

static void nofree(void *p)
{
	(void)p;
}

/* Each free's origin: its allocation event or snapshot area. */
static int origins(struct replay *r)
{
	struct trace *t = r->t;
	struct key *keys = calloc(t->nev + t->nsnap + 1, sizeof(*keys));
	void *root = NULL;
	size_t nk = 0;
	int rc = 0;

	r->origin = calloc(t->nev + 1, sizeof(*r->origin));
	if (!keys || !r->origin)
		return -1;
	for (size_t k = 0; k < t->nsnap; k++) {
		keys[nk] = (struct key){ t->snap[k].start, -1 - (int64_t)k };
		if (!t->snap[k].lazy && !tsearch(&keys[nk++], &root, key_cmp))
			rc = -1;
	}
	for (size_t i = 0; !rc && i < t->nev; i++) {
		struct ev *e = &t->ev[i];
		struct key q, **found;

		r->origin[i] = NO_ORIGIN;
		if (e->flags & EVF_SKIP)
			continue;
		if (e->kind == EV_ALLOC && !e->a.failed) {
			keys[nk] = (struct key){ e->a.addr, (int64_t)i };
			found = tsearch(&keys[nk], &root, key_cmp);
			if (!found)
				rc = -1;
			else if (*found != &keys[nk])	/* check.c forbids */
				**found = keys[nk];
			nk++;
		} else if (e->kind == EV_FREE) {
			q.addr = e->f.addr;
			found = tfind(&q, &root, key_cmp);
			if (found) {
				r->origin[i] = (*found)->origin;
				tdelete(&q, &root, key_cmp);
			}
		}
	}
	tdestroy(root, nofree);
	free(keys);
	return rc;
}

static int span_cmp(const void *a, const void *b)
{
	const struct vmap_range *x = a, *y = b;

	return x->start < y->start ? -1 : x->start > y->start;
}

/* The spans: each [vstart, vend) allocated in, and every snapshot area,
 * merged where they overlap or touch. */
static int spans(struct replay *r)
{
	struct trace *t = r->t;
	uint64_t ps = t->page_size;
	size_t n = 0, cap = t->nsnap + 16;
	struct vmap_range *v = malloc(cap * sizeof(*v));

	for (size_t k = 0; v && k < t->nsnap; k++)
		v[n++] = (struct vmap_range){ t->snap[k].start, t->snap[k].end };
	for (size_t i = 0; v && i < t->nev; i++) {
		struct ev *e = &t->ev[i];
		struct vmap_range x;

		if (e->kind != EV_ALLOC)
			continue;
		x.start = e->a.vstart & ~(ps - 1);
		x.end = e->a.vend & ~(ps - 1);
		if (n && v[n - 1].start == x.start && v[n - 1].end == x.end)
			continue;
		if (n == cap) {
			struct vmap_range *nv = realloc(v, 2 * cap * sizeof(*v));

			if (!nv) {
				free(v);
				return -1;
			}
			v = nv, cap *= 2;
		}
		v[n++] = x;
	}
	if (!v)
		return -1;
	qsort(v, n, sizeof(*v), span_cmp);
	r->nspan = 0;
	for (size_t i = 0; i < n; i++) {
		struct vmap_range *last = r->nspan ? &v[r->nspan - 1] : NULL;

		if (last && v[i].start <= last->end) {
			if (v[i].end > last->end)
				last->end = v[i].end;
		} else {
			v[r->nspan++] = v[i];
		}
	}
	r->span = v;
	return 0;
}

static int create(struct replay *r)
{
	struct vmap_config c;
	int rc;

	vmap_config_init(&c);
	c.base = r->span[0].start;
	c.length = r->span[r->nspan - 1].end - c.base;
	c.page_size = r->t->page_size;
	c.lazy_max_pages = r->kernel_moments ? UINT64_MAX : r->t->nr_lazy_max;
	c.flags = VMAP_SPACE_EMPTY;
	if (strcmp(r->mode, "pool"))
		c.flags |= VMAP_SPACE_LOWEST_FIT;
	c.flush = on_flush;
	c.flush_ctx = &r->fl;
	rc = vmap_space_create(&c, &r->s);
	for (size_t i = 0; !rc && i < r->nspan; i++)
		rc = vmap_space_add(r->s, r->span[i].start,
				    r->span[i].end - r->span[i].start);
	return rc;
}

/* The kernel's state at the start: the snapshot (and, in raw dumps, the
 * areas inferred older than the trace and the lazy pages before it). */
static int setup(struct replay *r)
{
	struct trace *t = r->t;
	uint64_t per, left, addr = 0, vstart = 0;
	int rc = 0;

	for (size_t k = 0; !rc && k < t->nsnap; k++) {
		struct snap *sn = &t->snap[k];

		addr = sn->start;
		rc = vmap_alloc_at(r->s, sn->start, sn->end - sn->start, 0);
		r->snap_vaddr[k] = sn->start;
		if (!rc && sn->lazy)
			rc = vmap_free(r->s, sn->start);
	}
	/* Lazy pages nobody knows the place of (a raw dump's): lowest fit
	 * in the range the trace allocates in, where the kernel's were. */
	for (size_t i = 0; i < t->nev && !vstart; i++)
		if (t->ev[i].kind == EV_ALLOC)
			vstart = t->ev[i].a.vstart;
	left = t->phantom_pages;
	for (uint64_t i = 0; !rc && i < t->phantom_areas && left; i++) {
		per = left / (t->phantom_areas - i);
		if (!per)
			per = 1;	/* left shrinks every time */
		rc = vmap_xalloc(r->s, per * t->page_size,
				 t->page_size, 0, 0, vstart, UINT64_MAX, 0,
				 &addr) ?:
		     vmap_free(r->s, addr);
		left -= per;
	}
	if (rc)
		fprintf(stderr, "%s: replay (%s): the kernel's state at the "
			"start could not be set up (at 0x%llx: %s)\n", t->path,
			r->mode, (unsigned long long)addr, strerror(-rc));
	return rc;
}

static uint64_t areas_purged(vmap_space *s)
{
	struct vmap_stats st = { .size = sizeof(st) };

	vmap_stats(s, &st);
	return st.areas_purged;
}

/* One area in the picture (--segments): allocation event j, busy until
 * `freed`, lazy until `released` (seconds), at `addr`. */
static void seg_line(struct replay *r, size_t j, double freed,
		     double released, uint64_t addr)
{
	const struct ev *e = &r->t->ev[j];

	fprintf(r->seg, "%.6f %.6f %.6f %llu %llu\n", e->ts_ns / 1e9, freed,
		released, (unsigned long long)(addr - e->a.vstart),
		(unsigned long long)e->a.size);
}

/* After an event: report vmap's purges, if any ran. */
static void purges_after(struct replay *r, size_t i)
{
	uint64_t now, n;

	if (!r->fl.calls)
		return;
	now = areas_purged(r->s);
	n = now - r->purged_base;
	printf("purge %zu %llu 0x%llx 0x%llx\n", i, (unsigned long long)n,
	       (unsigned long long)r->fl.lo, (unsigned long long)r->fl.hi);
	r->purged_base = now;
	r->fl = (struct flushes){ .lo = UINT64_MAX };
	/* The picture: these areas' lazy time ends now. */
	while (n-- && r->lazy_head < r->nlazy) {
		size_t j = r->lazy[r->lazy_head++];

		if (r->seg)
			seg_line(r, j, r->free_ts[j] / 1e9,
				 r->t->ev[i].ts_ns / 1e9, r->vaddr_at_free[j]);
	}
}

static int log2u(uint64_t x)
{
	return x ? 64 - __builtin_clzll(x) : 0;
}

/* Before an allocation vmap makes: where would the kernel's range be? */
static int classify_before(struct replay *r, const struct ev *e)
{
	int st;

	if (vmap_range_state(r->s, e->a.addr, e->a.size, &st))
		return CL_OUT;
	return st == VMAP_RANGE_FREE ? CL_LOWER
	       : st == VMAP_RANGE_LAZY ? CL_LAZY : CL_BUSY;
}

/* The kernel freed an area of this size here before: its allocation took
 * it back from a pool, not from a lowest-fit search. */
static bool kernel_reused(struct replay *r, const struct ev *e)
{
	struct key q = { .addr = e->a.addr };
	struct key **k = tfind(&q, &r->kfreed, key_cmp);

	return k && (uint64_t)(*k)->origin == e->a.size;
}

static void kernel_freed(struct replay *r, uint64_t addr, uint64_t size)
{
	struct key *k = &r->kkeys[r->nkkeys], **old;

	*k = (struct key){ addr, (int64_t)size };
	old = tsearch(k, &r->kfreed, key_cmp);
	if (old && *old != k)
		(*old)->origin = (int64_t)size;
	else if (old)
		r->nkkeys++;
}

static void placed(struct replay *r, size_t i, int cls)
{
	const struct ev *e = &r->t->ev[i];
	uint64_t v = r->vaddr[i], k = e->a.addr, ps = r->t->page_size;
	bool lower = v < k;

	r->placed++;
	if (v == k) {
		r->exact++;
		return;
	}
	if (cls == CL_LOWER && !lower)
		cls = CL_HIGHER;
	if (kernel_reused(r, e))
		cls = CL_LOWER_REUSE;
	r->cls[cls]++;
	r->hist[!lower][log2u((lower ? k - v : v - k) / ps)]++;
}

static int do_alloc(struct replay *r, size_t i)
{
	const struct ev *e = &r->t->ev[i];
	uint64_t ps = r->t->page_size, a = 0;
	int cls = 0, rc;

	if (r->analyse && !e->a.failed)
		cls = classify_before(r, e);
	rc = vmap_xalloc(r->s, e->a.size, e->a.align, 0, 0, e->a.vstart,
			 e->a.vend & ~(ps - 1), 0, &a);
	if (rc && rc != -ENOSPC)
		return rc;
	r->vaddr[i] = rc ? 0 : a;
	if (e->a.failed) {
		if (rc)
			return 0;
		/* The kernel found no room; vmap did: give it back, in
		 * every round alike. */
		r->vmap_extra += r->analyse;
		r->vaddr[i] = 0;
		return vmap_free(r->s, a);
	}
	if (!r->analyse)
		return 0;
	if (rc)
		r->vmap_failed++;
	else
		placed(r, i, cls);
	return 0;
}

static uint64_t *slot(struct replay *r, int64_t o)
{
	return o >= 0 ? &r->vaddr[o] : &r->snap_vaddr[-1 - o];
}

static int do_free(struct replay *r, size_t i)
{
	int64_t o = r->origin[i];
	uint64_t *v;
	int rc;

	if (o == NO_ORIGIN)
		return 0;
	v = slot(r, o);
	if (!*v)	/* vmap could not place it */
		return 0;
	rc = vmap_free(r->s, *v);
	if (r->analyse)
		kernel_freed(r, r->t->ev[i].f.addr, o >= 0 ?
			     r->t->ev[o].a.size : r->t->snap[-1 - o].end -
			     r->t->snap[-1 - o].start);
	if (r->analyse && o >= 0) {
		r->free_ts[o] = r->t->ev[i].ts_ns;
		r->vaddr_at_free[o] = *v;
		r->lazy[r->nlazy++] = (size_t)o;
	}
	*v = 0;
	return rc;
}

/* One round: a fresh space, the setup, every event. */
static int replay_round(struct replay *r, double *ns)
{
	struct trace *t = r->t;
	struct timespec a, b;
	int rc;

	r->fl = (struct flushes){ .lo = UINT64_MAX };
	if ((rc = create(r))) {
		fprintf(stderr, "%s: replay (%s): no space: %s\n", t->path,
			r->mode, strerror(-rc));
		return -1;
	}
	if (setup(r))
		return -1;
	r->purged_base = areas_purged(r->s);
	r->fl = (struct flushes){ .lo = UINT64_MAX };
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (size_t i = 0; i < t->nev; i++) {
		const struct ev *e = &t->ev[i];

		if (e->flags & EVF_SKIP)
			continue;
		if (e->kind == EV_ALLOC)
			rc = do_alloc(r, i);
		else if (e->kind == EV_FREE)
			rc = do_free(r, i);
		else if ((e->flags & EVF_EXPLICIT) || r->kernel_moments) {
			rc = vmap_purge(r->s, VMAP_PURGE_SYNC);
			if (r->analyse && !rc && !r->fl.calls)
				printf("purge %zu 0 0 0\n", i);
		} else
			rc = 0;
		if (rc) {
			fprintf(stderr, "%s:%llu: replay (%s): vmap: %s\n",
				t->path, (unsigned long long)e->line, r->mode,
				strerror(-rc));
			return -1;
		}
		if (r->analyse)
			purges_after(r, i);
		if (r->check && r->analyse && (i % 256 == 0 || i + 1 == t->nev) &&
		    vmap_check(r->s)) {
			fprintf(stderr, "%s:%llu: replay (%s): vmap_check "
				"failed\n", t->path,
				(unsigned long long)e->line, r->mode);
			return -1;
		}
	}
	clock_gettime(CLOCK_MONOTONIC, &b);
	*ns = (double)(b.tv_sec - a.tv_sec) * 1e9 +
	      (double)(b.tv_nsec - a.tv_nsec);
	return 0;
}

/* What must hold after a replay: vmap's counts against the replay's. */
static int conserved(struct replay *r)
{
	struct vmap_stats st = { .size = sizeof(st) };
	uint64_t live = 0;

	for (size_t i = 0; i < r->t->nev; i++)
		live += r->vaddr[i] != 0;
	for (size_t k = 0; k < r->t->nsnap; k++)
		live += r->snap_vaddr[k] != 0 && !r->t->snap[k].lazy;
	if (vmap_stats(r->s, &st) || st.busy_areas != live ||
	    st.allocs - st.frees != st.busy_areas ||
	    st.busy_pages + st.lazy_pages + st.free_pages != st.total_pages ||
	    vmap_check(r->s)) {
		fprintf(stderr, "%s: replay (%s): not conserved: %llu busy "
			"areas, the replay holds %llu; allocs %llu frees %llu; "
			"pages busy %llu lazy %llu free %llu of %llu\n",
			r->t->path, r->mode,
			(unsigned long long)st.busy_areas,
			(unsigned long long)live, (unsigned long long)st.allocs,
			(unsigned long long)st.frees,
			(unsigned long long)st.busy_pages,
			(unsigned long long)st.lazy_pages,
			(unsigned long long)st.free_pages,
			(unsigned long long)st.total_pages);
		return -1;
	}
	return 0;
}

/* The areas still busy or lazy when the trace ends, for the picture. */
static void leftovers(struct replay *r)
{
	const struct trace *t = r->t;
	double end = t->nev ? t->ev[t->nev - 1].ts_ns / 1e9 : 0;

	for (size_t q = r->lazy_head; q < r->nlazy; q++) {
		size_t j = r->lazy[q];

		seg_line(r, j, r->free_ts[j] / 1e9, end, r->vaddr_at_free[j]);
	}
	for (size_t i = 0; i < t->nev; i++)
		if (r->vaddr[i])
			seg_line(r, i, end, end, r->vaddr[i]);
}

/* The kernel's own placement and purges, for the picture: its addresses,
 * and each purge releasing the oldest lazy areas it counts. */
static void kernel_segments(struct replay *r)
{
	const struct trace *t = r->t;

	for (size_t i = 0; i < t->nev; i++) {
		const struct ev *e = &t->ev[i];

		if (e->flags & EVF_SKIP)
			continue;
		if (e->kind == EV_ALLOC && !e->a.failed)
			r->vaddr[i] = e->a.addr;
		else if (e->kind == EV_FREE && r->origin[i] >= 0) {
			size_t o = (size_t)r->origin[i];

			r->free_ts[o] = e->ts_ns;
			r->vaddr_at_free[o] = r->vaddr[o];
			r->lazy[r->nlazy++] = o;
			r->vaddr[o] = 0;
		} else if (e->kind == EV_PURGE) {
			for (uint64_t n = e->p.npurged;
			     n && r->lazy_head < r->nlazy; n--) {
				size_t j = r->lazy[r->lazy_head++];

				seg_line(r, j, r->free_ts[j] / 1e9,
					 e->ts_ns / 1e9, r->vaddr_at_free[j]);
			}
		}
	}
	leftovers(r);
}

static int dcmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

int replay_child_main(int argc, char **argv)
{
	struct trace t;
	struct replay r = { .t = &t };
	const char *path = NULL, *seg = NULL;
	int rounds = 5, rc = 1;
	double ns[64], total;
	size_t ops = 0;

	/* argv: --child MODE FILE [--check] [--rounds N] [--segments F]
	 * [--purge-at-kernel] */
	if (argc < 3)
		return 2;
	r.mode = argv[1];
	path = argv[2];
	for (int i = 3; i < argc; i++) {
		if (!strcmp(argv[i], "--check"))
			r.check = true;
		else if (!strcmp(argv[i], "--rounds") && i + 1 < argc)
			rounds = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--purge-at-kernel"))
			r.kernel_moments = true;
		else if (!strcmp(argv[i], "--segments") && i + 1 < argc)
			seg = argv[++i];
		else
			return 2;
	}
	if (rounds < 1 || rounds > 64)
		rounds = 5;
	if (!replay_mode_here(r.mode)) {
		fprintf(stderr, "vmap-trace: mode '%s' is not built into this "
			"executable (%s)\n", r.mode, HERE_MODES);
		return 2;
	}
	if (trace_read(path, &t))
		return 1;
	if (trace_check(&t))
		goto out;
	r.vaddr = calloc(t.nev + 1, sizeof(*r.vaddr));
	r.free_ts = calloc(t.nev + 1, sizeof(*r.free_ts));
	r.vaddr_at_free = calloc(t.nev + 1, sizeof(*r.vaddr_at_free));
	r.lazy = calloc(t.nev + 1, sizeof(*r.lazy));
	r.snap_vaddr = calloc(t.nsnap + 1, sizeof(*r.snap_vaddr));
	if (!r.vaddr || !r.free_ts || !r.vaddr_at_free || !r.lazy || !r.snap_vaddr ||
	    origins(&r) || spans(&r)) {
		fprintf(stderr, "%s: replay: out of memory\n", path);
		goto out;
	}
	if (!r.nspan) {
		fprintf(stderr, "%s: nothing to replay: no allocation and no "
			"snapshot\n", path);
		goto out;
	}
	if (seg && !(r.seg = fopen(seg, "w"))) {
		fprintf(stderr, "%s: %s\n", seg, strerror(errno));
		goto out;
	}
	if (!strcmp(r.mode, "kernel")) {
		if (r.seg)
			kernel_segments(&r);
		rc = r.seg ? 0 : 2;
		goto out;
	}
	for (size_t i = 0; i < t.nev; i++)
		ops += !(t.ev[i].flags & EVF_SKIP) && t.ev[i].kind != EV_PURGE;
	/* The timed rounds: the replay and nothing else. */
	for (int k = 0; k < rounds; k++) {
		if (replay_round(&r, &ns[k]))
			goto out;
		vmap_space_destroy(r.s);
		r.s = NULL;
	}
	qsort(ns, (size_t)rounds, sizeof(ns[0]), dcmp);
	/* The round that looks: placement, purges, invariants. */
	printf("mode %s\nspans %zu\n", r.mode, r.nspan);
	r.analyse = true;
	r.kkeys = calloc(t.nev + t.nsnap + 1, sizeof(*r.kkeys));
	if (!r.kkeys)
		goto out;
	for (size_t k = 0; k < t.nsnap; k++)
		if (t.snap[k].lazy)
			kernel_freed(&r, t.snap[k].start,
				     t.snap[k].end - t.snap[k].start);
	if (replay_round(&r, &total) || conserved(&r))
		goto out;
	if (r.seg)
		leftovers(&r);
	printf("ops %zu\nns_per_op %.1f\nns_per_op_min %.1f\n", ops,
	       ns[rounds / 2] / (double)(ops ? ops : 1),
	       ns[0] / (double)(ops ? ops : 1));
	printf("placed %llu\nexact %llu\nvmap_failed %llu\nvmap_extra %llu\n",
	       (unsigned long long)r.placed, (unsigned long long)r.exact,
	       (unsigned long long)r.vmap_failed,
	       (unsigned long long)r.vmap_extra);
	for (int c = 0; c < 6; c++)
		printf("class %s %llu\n", cl_names[c],
		       (unsigned long long)r.cls[c]);
	for (int d = 0; d < 2; d++)
		for (int b = 0; b < 66; b++)
			if (r.hist[d][b])
				printf("delta %s %d %llu\n",
				       d ? "higher" : "lower", b,
				       (unsigned long long)r.hist[d][b]);
	printf("done\n");
	rc = 0;
out:
	if (r.seg)
		fclose(r.seg);
	vmap_space_destroy(r.s);
	free(r.origin);
	free(r.vaddr);
	free(r.free_ts);
	free(r.vaddr_at_free);
	free(r.lazy);
	free(r.snap_vaddr);
	free(r.span);
	tdestroy(r.kfreed, nofree);
	free(r.kkeys);
	trace_free(&t);
	return rc;
}
