/* SPDX-License-Identifier: MIT */
/*
 * bench_tv.c - the kernel's test_vmalloc module, on a vmap memory space.
 *
 * nr_threads workers start together; each runs the enabled tests, each
 * test_repeat_count times, then prints its Summary lines as the module does
 * (one block per worker, in mask order).  The tests are those of
 * lib/test_vmalloc.c, mask 1..1024 (2048, the 2025 no_block_alloc_test, has
 * no user-space meaning), written anew from their description.  Where the
 * kernel has something we lack, the nearest thing stands in: __vmalloc_node
 * with an alignment is vmap_alloc on the memory space, the per-CPU allocator
 * is the per-CPU vmap blocks (vmap_ram_alloc), kvfree_rcu is liburcu's
 * call_rcu, and vm_map_ram's pages are a memfd.
 *
 * The kernel only counts failed allocations; a broken allocator passes that.
 * So every area is checked too: it lies in the space, is aligned as asked,
 * overlaps no live area (a shared map has a bit per page, set atomically
 * when an area is handed out, cleared before it is freed), and, where a loop
 * uses it, reads zero when handed out (but from vmalloc, whose contents are
 * unspecified) and keeps what is written to its first and last page.  The bulk areas that only take up room (full_fit's pairs,
 * long_busy's 15,000) are not touched: they cost address space, not memory.
 *
 * One bench_result per worker and test (not a median across workers), so an
 * unfair worker shows; "worker" in the extra fields says which.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <urcu.h>
#if defined(__x86_64__)
#include <x86intrin.h>
#endif

#include "bench.h"
#include "vmap.h"

#define TV_TESTS 11
#define XFAIL_TEST 6 /* align_shift_alloc_test */
#define LONG_BUSY_AREAS 15000
#define PCPU_ALLOCS 35000
#define MAX_REPORTS 3 /* failure reasons printed per worker and test */

enum kind { K_VMALLOC, K_AREA, K_RAM, K_MAPRAM };

#define F_TOUCH 0x1u /* write and read back the first and last page */
#define F_ZERO 0x2u  /* ... which must read zero before */
#define F_QUIET 0x4u /* a failed allocation is the caller's to report */
#define TZ (F_TOUCH | F_ZERO)
#define ULL(x) ((unsigned long long)(x)) /* for %llx */

struct tv {
	const struct tv_params *p;
	const char *backend;
	vmap_space *space;
	uint64_t base, end, ps;	 /* the reservation; its page size */
	unsigned shift;
	uint64_t junk_length;	 /* lazy_max_pages, as in the kernel */
	_Atomic uint64_t *owner; /* a bit per page: held by a test */
	uint64_t *pgoff, npages; /* vm_map_ram's offsets 0..nr_pages-1 */
	int nthreads;
	pthread_mutex_t lock;	 /* output; the start gate */
	pthread_cond_t go;
	int state;		 /* 0: wait, 1: run, -1: give up */
};

struct tv_worker {
	struct tv *t;
	pthread_t thread;
	int id, memfd, reports, failed;
	uint64_t rng;
	const char *test;
	_Atomic int rcu_failed;	 /* frees that failed in RCU callbacks */
	_Atomic uint64_t rcu_done; /* callbacks that ran */
	struct {
		int passed, failed, xfailed;
		uint64_t ns;
	} res[TV_TESTS];
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t cycles(void)
{
#if defined(__x86_64__)
	return __rdtsc();
#else
	return now_ns();
#endif
}

/* splitmix64, seeded by worker number, so a failing run can be repeated. */
static uint64_t rnd(struct tv_worker *w)
{
	uint64_t z = (w->rng += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* Say why a check failed, at most MAX_REPORTS times per test; -1. */
static int __attribute__((format(printf, 2, 3)))
report(struct tv_worker *w, const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&w->t->lock);
	if (w->reports++ < MAX_REPORTS) {
		fprintf(stderr, "test_vmalloc: worker%d: %s: ", w->id, w->test);
		va_start(ap, fmt);
		vfprintf(stderr, fmt, ap);
		va_end(ap);
		fputc('\n', stderr);
	}
	pthread_mutex_unlock(&w->t->lock);
	return -1;
}

/* ---- the owner map ---- */

/* The bits of pages [pg, end) in pg's word; *n: how many. */
static uint64_t word_mask(uint64_t pg, uint64_t end, uint64_t *n)
{
	uint64_t b = pg % 64;

	*n = end - pg < 64 - b ? end - pg : 64 - b;
	return (*n == 64 ? ~0ull : (1ull << *n) - 1) << b;
}

/* Take pages [pg, pg + n); if one was taken, false with nothing taken. */
static bool claim(struct tv *t, uint64_t pg, uint64_t n)
{
	uint64_t i, k, mask, old;

	for (i = pg; i < pg + n; i += k) {
		mask = word_mask(i, pg + n, &k);
		old = atomic_fetch_or(&t->owner[i / 64], mask);
		if (old & mask) {
			/* Undo our bits only: the others are a live area's. */
			atomic_fetch_and(&t->owner[i / 64], ~(mask & ~old));
			for (uint64_t j = pg; j < i; j += k)
				atomic_fetch_and(&t->owner[j / 64],
						 ~word_mask(j, i, &k));
			return false;
		}
	}
	return true;
}

/* Give pages back; false if one was not held (a bug of ours). */
static bool unclaim(struct tv *t, uint64_t pg, uint64_t n)
{
	uint64_t i, k, mask;
	bool ok = true;

	for (i = pg; i < pg + n; i += k) {
		mask = word_mask(i, pg + n, &k);
		if ((atomic_fetch_and(&t->owner[i / 64], ~mask) & mask) != mask)
			ok = false;
	}
	return ok;
}

/* ---- checked allocation and free ---- */

static uint64_t page_of(const struct tv *t, uint64_t a)
{
	return (a - t->base) >> t->shift;
}

static uint64_t pages_of(const struct tv *t, uint64_t bytes)
{
	return (bytes + t->ps - 1) >> t->shift;
}

/* Check a fresh area (see the top of the file); -1 leaves nothing held. */
static int check(struct tv_worker *w, enum kind k, uint64_t a,
		 uint64_t bytes, uint64_t align, unsigned f)
{
	struct tv *t = w->t;
	uint64_t n = pages_of(t, bytes);
	volatile char *first, *last;
	const char *bad = NULL;

	if (a < t->base || a >= t->end || n > (t->end - a) >> t->shift)
		return report(w, "%#llx (+%llu pages) is outside the space",
			      ULL(a), ULL(n));
	if (a & ((align > t->ps ? align : t->ps) - 1))
		return report(w, "%#llx is not aligned to %#llx", ULL(a),
			      ULL(align));
	if (!claim(t, page_of(t, a), n))
		return report(w, "%#llx (+%llu pages) overlaps a live area",
			      ULL(a), ULL(n));
	if (!(f & F_TOUCH))
		return 0;
	first = (volatile char *)(uintptr_t)a;
	last = first + (n << t->shift) - 1;
	/* vmalloc's contents are unspecified: a warm area keeps what its
	 * last owner wrote (a mark, or kvfree_rcu's rcu_head). */
	if ((f & F_ZERO) && k != K_VMALLOC && (*first || *last))
		bad = "is not zero";
	*first = 'a';
	*last = 'a';
	if (!bad && (*first != 'a' || *last != 'a'))
		bad = "lost a write";
	if (!bad)
		return 0;
	unclaim(t, page_of(t, a), n);
	return report(w, "%#llx (+%llu pages) %s", ULL(a), ULL(n), bad);
}

static int drop(struct tv *t, enum kind k, uint64_t a, uint64_t bytes)
{
	void *p = (void *)(uintptr_t)a;

	switch (k) {
	case K_VMALLOC:
		return vmap_vfree(t->space, p);
	case K_AREA:
		return vmap_free(t->space, a);
	case K_RAM:
		return vmap_ram_free(t->space, a, bytes);
	default:
		return vmap_unmap_ram(t->space, p, bytes >> t->shift);
	}
}

/* Allocate and check: 0; 1 if the allocation failed; -1 if a check did. */
static int get(struct tv_worker *w, enum kind k, uint64_t bytes,
	       uint64_t align, unsigned f, uint64_t *out)
{
	struct tv *t = w->t;
	void *p = NULL;
	uint64_t a = 0;
	int err = 0;

	if (k == K_VMALLOC)
		p = vmap_vmalloc(t->space, bytes);
	else if (k == K_MAPRAM)
		p = vmap_map_ram(t->space, w->memfd, t->pgoff,
				 bytes >> t->shift);
	else if (k == K_AREA)
		err = vmap_alloc(t->space, bytes, align, 0, UINT64_MAX, &a);
	else
		err = vmap_ram_alloc(t->space, bytes, &a);
	if (k == K_VMALLOC || k == K_MAPRAM) {
		err = p ? 0 : -errno;
		a = (uintptr_t)p;
	}
	if (err) {
		if (!(f & F_QUIET))
			report(w, "%llu bytes aligned to %#llx: %s", ULL(bytes),
			       ULL(align), vmap_strerror(err));
		return 1;
	}
	if (check(w, k, a, bytes, align, f)) {
		drop(t, k, a, bytes); /* a bad area still goes back */
		return -1;
	}
	*out = a;
	return 0;
}

/* Unclaim first: once freed, the range may be another's at once. */
static int put(struct tv_worker *w, enum kind k, uint64_t a, uint64_t bytes)
{
	int ret = 0, err;

	if (!unclaim(w->t, page_of(w->t, a), pages_of(w->t, bytes)))
		ret = report(w, "%#llx was not held when freed", ULL(a));
	err = drop(w->t, k, a, bytes);
	if (err)
		ret = report(w, "free of %#llx: %s", ULL(a), vmap_strerror(err));
	return ret;
}

static int once(struct tv_worker *w, enum kind k, uint64_t bytes,
		uint64_t align, unsigned f)
{
	uint64_t a;

	return get(w, k, bytes, align, f, &a) ? -1 : put(w, k, a, bytes);
}

/* ---- the tests: 0 passed, 1 failed as expected (xfail), -1 failed ---- */

/*
 * The loops that take one area and give it back.  fix_align_alloc_test's
 * 32 KiB is the kernel's THREAD_ALIGN << 1 on x86-64.  vm_map_ram_test's
 * file keeps the last 'a' written: no zero check there.
 */
static int loop_test(struct tv_worker *w, int id)
{
	struct tv *t = w->t;
	uint64_t ps = t->ps;
	int err;

	if (id == 10 && w->memfd < 0 &&
	    (err = vmap_memfd_create("test_vmalloc", t->npages, &w->memfd)))
		return report(w, "memfd: %s", vmap_strerror(err));
	for (int i = 0; i < t->p->test_loop_count; i++) {
		uint64_t r = id == 3 || id == 5 ? rnd(w) : 0;

		if (id == 0)
			err = once(w, K_VMALLOC, t->npages * ps, 0, TZ);
		else if (id == 3)
			err = once(w, K_VMALLOC, (1 + r % 100) * ps, 0, TZ);
		else if (id == 4)
			err = once(w, K_AREA, 5 * ps, 32 << 10, TZ);
		else if (id == 5) /* one random byte for both, as the kernel */
			err = once(w, K_AREA, ((r & 0xff) % 10 + 1) * ps,
				   1ull << ((r & 0xff) % 23), TZ);
		else
			err = once(w, K_MAPRAM, t->npages * ps, 0, F_TOUCH);
		if (err)
			return -1;
	}
	return 0;
}

/* Pairs of pages, every second one freed: 1-page holes to fit exactly. */
static int full_fit_alloc_test(struct tv_worker *w, int id)
{
	struct tv *t = w->t;
	uint64_t n = t->junk_length, made, i;
	uint64_t *ptr = malloc(2 * n * sizeof(*ptr)), *junk = ptr + n;
	int ret;

	(void)id;
	if (!ptr)
		return report(w, "out of memory");
	for (made = 0; made < n; made++) {
		if (get(w, K_VMALLOC, t->ps, 0, 0, &ptr[made]))
			break;
		if (get(w, K_VMALLOC, t->ps, 0, 0, &junk[made])) {
			put(w, K_VMALLOC, ptr[made], t->ps);
			break;
		}
	}
	ret = made < n ? -1 : 0;
	for (i = 0; i < made; i++)
		ret |= put(w, K_VMALLOC, junk[i], t->ps);
	for (i = 0; !ret && i < (uint64_t)t->p->test_loop_count; i++)
		ret = once(w, K_VMALLOC, t->ps, 0, TZ);
	for (i = 0; i < made; i++)
		ret |= put(w, K_VMALLOC, ptr[i], t->ps);
	free(ptr);
	return ret ? -1 : 0;
}

/* The pre-2019 allocator walked every busy area: here 15,000 of them. */
static int long_busy_list_alloc_test(struct tv_worker *w, int id)
{
	struct tv *t = w->t;
	uint64_t *busy = malloc(LONG_BUSY_AREAS * sizeof(*busy)), a, b;
	int made, ret;

	(void)id;
	if (!busy)
		return report(w, "out of memory");
	for (made = 0; made < LONG_BUSY_AREAS; made++)
		if (get(w, K_VMALLOC, t->ps, 0, 0, &busy[made]))
			break;
	ret = made < LONG_BUSY_AREAS ? -1 : 0;
	for (int i = 0; !ret && i < t->p->test_loop_count; i++) {
		if (get(w, K_VMALLOC, 100 * t->ps, 0, TZ, &a))
			ret = -1;
		else if (get(w, K_VMALLOC, t->ps, 0, TZ, &b))
			ret = put(w, K_VMALLOC, a, 100 * t->ps) | -1;
		else
			ret = put(w, K_VMALLOC, a, 100 * t->ps) |
			      put(w, K_VMALLOC, b, t->ps);
	}
	while (made--)
		ret |= put(w, K_VMALLOC, busy[made], t->ps);
	free(busy);
	return ret ? -1 : 0;
}

/*
 * One page at every alignment up to 2^63, once a run (the kernel's has no
 * loop).  The big ones cannot fit: that is the xfail.  We try them all, not
 * stopping at the first miss, since it was the overflow of the highest that
 * found a kernel bug.  A miss counts as the xfail whatever the alignment, as
 * in the kernel: under the stress preset, other workers' long-lived areas
 * (warm pages from the pool among them) can hold every 1 GiB boundary of the
 * space, and then a 1 GiB-aligned page rightly does not fit.
 */
static int align_shift_alloc_test(struct tv_worker *w, int id)
{
	struct tv *t = w->t;
	int ret = 0, r;
	uint64_t a;

	(void)id;
	for (int i = 0; i < 64 && ret >= 0; i++) {
		r = get(w, K_AREA, t->ps, 1ull << i, TZ | F_QUIET, &a);
		if (!r)
			r = put(w, K_AREA, a, t->ps);
		ret = r < 0 ? -1 : ret | r;
	}
	return ret;
}

/* 35,000 small pieces from the per-CPU blocks.  One in 16 is touched, to
 * check it without the page faults the kernel's percpu test never takes. */
static int pcpu_alloc_test(struct tv_worker *w, int id)
{
	struct tv *t = w->t;
	uint64_t *a = malloc(2 * PCPU_ALLOCS * sizeof(*a)), *sz = a + PCPU_ALLOCS;
	int made, ret = 0;

	if (!a)
		return report(w, "out of memory");
	if (w->res[id].passed + w->res[id].failed == 0) {
		pthread_mutex_lock(&t->lock);
		printf("pcpu_alloc_test: per-CPU vmap blocks (vmap_ram_alloc)\n");
		pthread_mutex_unlock(&t->lock);
	}
	for (made = 0; made < PCPU_ALLOCS; made++) {
		uint64_t r = rnd(w);

		sz[made] = 1 + r % (t->ps / 4);
		if (get(w, K_RAM, sz[made], 1ull << (1 + (r >> 32) % 11),
			made % 16 ? 0 : TZ, &a[made])) {
			ret = -1;
			break;
		}
	}
	while (made--)
		ret |= put(w, K_RAM, a[made], sz[made]);
	free(a);
	return ret ? -1 : 0;
}

/*
 * kvfree_rcu: the free runs on liburcu's call_rcu thread after a grace
 * period.  liburcu is not built for ThreadSanitizer, which cannot see its
 * hand-overs; so ours also go through atomics it sees: a release store the
 * callback loads with acquire, and the callback's count of itself, which
 * the worker reads with acquire after rcu_barrier() -- and checks.
 */
struct tv_rec { /* 1-arg: the object has no head; a record carries it */
	struct rcu_head rcu;
	struct tv_worker *w;
	_Atomic uint64_t addr;
};

struct tv_obj { /* 2-arg: the head is in the vmalloc'd object itself */
	struct rcu_head rcu;
	_Atomic(struct tv_worker *) w;
};

static void rcu_put(struct tv_worker *w, uint64_t a)
{
	/* Count, not print: the worker reports after rcu_barrier(). */
	if (!unclaim(w->t, page_of(w->t, a), 1) ||
	    vmap_vfree(w->t->space, (void *)(uintptr_t)a))
		atomic_fetch_add(&w->rcu_failed, 1);
	atomic_fetch_add_explicit(&w->rcu_done, 1, memory_order_release);
}

static void free_rec(struct rcu_head *head)
{
	struct tv_rec *r = (void *)((char *)head - offsetof(struct tv_rec, rcu));
	uint64_t a = atomic_load_explicit(&r->addr, memory_order_acquire);

	rcu_put(r->w, a);
	free(r);
}

static void free_obj(struct rcu_head *head)
{
	struct tv_obj *o = (void *)((char *)head - offsetof(struct tv_obj, rcu));

	rcu_put(atomic_load_explicit(&o->w, memory_order_acquire),
		(uintptr_t)o);
}

static int kvfree_rcu_test(struct tv_worker *w, int id)
{
	uint64_t a, queued = atomic_load(&w->rcu_done), done;
	int ret = 0, lost;
	struct tv_rec *r;
	struct tv_obj *o;

	for (int i = 0; !ret && i < w->t->p->test_loop_count; i++) {
		if (get(w, K_VMALLOC, w->t->ps, 0, TZ, &a)) {
			ret = -1;
		} else if (id == 9) {
			o = (void *)(uintptr_t)a;
			atomic_store_explicit(&o->w, w, memory_order_release);
			call_rcu(&o->rcu, free_obj);
			queued++;
		} else if (!(r = malloc(sizeof(*r)))) {
			put(w, K_VMALLOC, a, w->t->ps);
			ret = report(w, "out of memory");
		} else {
			r->w = w;
			atomic_store_explicit(&r->addr, a, memory_order_release);
			call_rcu(&r->rcu, free_rec);
			queued++;
		}
	}
	rcu_barrier(); /* every callback has run: all freed, into our space */
	done = atomic_load_explicit(&w->rcu_done, memory_order_acquire);
	if (done != queued)
		ret = report(w, "rcu_barrier returned with %llu callbacks to run",
			     ULL(queued - done));
	lost = atomic_exchange(&w->rcu_failed, 0);
	return lost ? report(w, "%d frees failed in RCU callbacks", lost) : ret;
}

static const struct {
	const char *name;
	int (*fn)(struct tv_worker *w, int id);
} tests[TV_TESTS] = {
	{ "fix_size_alloc_test", loop_test },
	{ "full_fit_alloc_test", full_fit_alloc_test },
	{ "long_busy_list_alloc_test", long_busy_list_alloc_test },
	{ "random_size_alloc_test", loop_test },
	{ "fix_align_alloc_test", loop_test },
	{ "random_size_align_alloc_test", loop_test },
	{ "align_shift_alloc_test", align_shift_alloc_test },
	{ "pcpu_alloc_test", pcpu_alloc_test },
	{ "kvfree_rcu_1_arg_vmalloc_test", kvfree_rcu_test },
	{ "kvfree_rcu_2_arg_vmalloc_test", kvfree_rcu_test },
	{ "vm_map_ram_test", loop_test },
};

/* ---- the driver ---- */

#if defined(__SANITIZE_THREAD__)
/* rcu_barrier() callocs a work item that liburcu's own thread frees, with a
 * hand-over TSan cannot see in the uninstrumented library. */
const char *__tsan_default_suppressions(void);
const char *__tsan_default_suppressions(void)
{
	return "called_from_lib:liburcu.so\n";
}
#endif

/* A worker's block of lines, all at once, as the module prints it. */
static void summary(struct tv_worker *w, uint64_t cyc)
{
	const struct tv_params *p = w->t->p;
	char xf[32], extra[160];

	pthread_mutex_lock(&w->t->lock);
	for (int i = 0; i < TV_TESTS; i++) {
		uint64_t ns = w->res[i].ns / (uint64_t)p->test_repeat_count;
		int x = i == XFAIL_TEST;

		if (!(p->run_test_mask & (1 << i)))
			continue;
		snprintf(xf, sizeof(xf), " xfailed: %d", w->res[i].xfailed);
		printf("Summary: %s passed: %d failed: %d%s repeat: %d "
		       "loops: %d avg: %llu usec\n", tests[i].name,
		       w->res[i].passed, w->res[i].failed, x ? xf : "",
		       p->test_repeat_count, p->test_loop_count,
		       ULL(ns / 1000));
		snprintf(extra, sizeof(extra),
			 ",\"threads\":%d,\"loops\":%d,\"failed\":%d,"
			 "\"worker\":%d,\"xfailed\":%d",
			 w->t->nthreads, p->test_loop_count, w->res[i].failed, w->id,
			 w->res[i].xfailed);
		if (!x) /* xfailed only where it means something */
			*strrchr(extra, ',') = '\0';
		bench_result("test_vmalloc", w->t->backend, tests[i].name,
			     (double)ns / 1e3, extra);
	}
	printf("All test took worker%d=%llu cycles\n", w->id, ULL(cyc));
	fflush(stdout);
	pthread_mutex_unlock(&w->t->lock);
}

static void *worker(void *arg)
{
	struct tv_worker *w = arg;
	struct tv *t = w->t;
	const struct tv_params *p = t->p;
	int order[TV_TESTS], state;
	uint64_t c0;

	rcu_register_thread(); /* for call_rcu and rcu_barrier */
	for (int i = 0; i < TV_TESTS; i++)
		order[i] = i;
	for (int i = TV_TESTS - 1; !p->sequential_test_order && i > 0; i--) {
		int j = (int)(rnd(w) % (uint64_t)(i + 1)), x = order[i];

		order[i] = order[j];
		order[j] = x;
	}
	pthread_mutex_lock(&t->lock);
	while (!(state = t->state))
		pthread_cond_wait(&t->go, &t->lock);
	pthread_mutex_unlock(&t->lock);
	c0 = cycles();
	for (int k = 0; state > 0 && k < TV_TESTS; k++) {
		int i = order[k];
		uint64_t t0;

		if (!(p->run_test_mask & (1 << i)))
			continue;
		w->test = tests[i].name;
		w->reports = 0;
		t0 = now_ns();
		for (int r = 0; r < p->test_repeat_count; r++) {
			int ret = tests[i].fn(w, i);

			w->res[i].passed += !ret;
			w->res[i].xfailed += ret > 0;
			w->res[i].failed += ret < 0;
		}
		w->res[i].ns = now_ns() - t0;
		w->failed += w->res[i].failed;
	}
	if (state > 0)
		summary(w, cycles() - c0);
	if (w->memfd >= 0)
		close(w->memfd);
	rcu_unregister_thread();
	return NULL;
}

/*
 * Where the reservation lies: in an empty space the lowest fit is its first
 * page and the top-down fit its last, total_pages apart -- which checks the
 * placement rule on the way.
 */
static int find_bounds(struct tv *t)
{
	struct vmap_stats st = { .size = sizeof(st) };
	uint64_t lo, hi;

	if (vmap_stats(t->space, &st) ||
	    vmap_alloc(t->space, t->ps, 0, 0, UINT64_MAX, &lo) ||
	    vmap_xalloc(t->space, t->ps, 0, 0, 0, 0, UINT64_MAX,
			VMAP_XALLOC_TOPDOWN, &hi) ||
	    hi - lo != (st.total_pages - 1) * t->ps || vmap_free(t->space, lo) ||
	    vmap_free(t->space, hi) || vmap_purge(t->space, VMAP_PURGE_SYNC))
		return -1;
	t->base = lo;
	t->end = hi + t->ps;
	t->junk_length = st.lazy_max_pages;
	return 0;
}

/* When every worker is done: nothing busy or held, and a sound space. */
static int final_checks(struct tv *t)
{
	struct vmap_stats st = { .size = sizeof(st) };
	uint64_t words = page_of(t, t->end) / 64 + 1, held = 0;
	int fails = 0;

	if (vmap_purge(t->space, VMAP_PURGE_SYNC) || vmap_check(t->space)) {
		fprintf(stderr, "test_vmalloc: vmap_check failed\n");
		fails++;
	}
	if (vmap_stats(t->space, &st) || st.busy_pages) {
		fprintf(stderr, "test_vmalloc: %llu pages still busy\n",
			ULL(st.busy_pages));
		fails++;
	}
	for (uint64_t i = 0; i < words; i++)
		held |= atomic_load(&t->owner[i]);
	if (held) {
		fprintf(stderr, "test_vmalloc: owner map not clear\n");
		fails++;
	}
	return fails;
}

int tv_run(const char *backend, const struct tv_params *p)
{
	int n = p->nr_threads < 1 ? 1 : p->nr_threads > USHRT_MAX ? USHRT_MAX :
			p->nr_threads;
	struct tv t = { .p = p, .backend = backend, .nthreads = n };
	struct tv_worker *w = NULL;
	struct vmap_config cfg;
	int fails = 1, started = 0, err;

	vmap_config_init(&cfg);
	cfg.flags = VMAP_SPACE_MEMORY;
	if (!strcmp(backend, "vmap-strict")) {
		cfg.flags |= VMAP_SPACE_STRICT;
	} else if (strcmp(backend, "vmap") && strcmp(backend, "legacy")) {
		fprintf(stderr, "test_vmalloc: no backend %s\n", backend);
		return 1;
	}
	t.ps = cfg.page_size = (uint64_t)sysconf(_SC_PAGESIZE);
	t.shift = (unsigned)__builtin_ctzll(t.ps);
	t.npages = p->nr_pages > 0 ? (uint64_t)p->nr_pages : 1;
	/* Room for each worker's peak (2 * lazy_max_pages + 50,000 pages: 1
	 * GiB at 64 CPUs and 4 KiB pages) twice over, and 16 GiB at least.
	 * Address space only: nothing is committed until touched. */
	cfg.length = ((n < 8 ? 8 : (uint64_t)n) << 31) *
		     (t.ps > 4096 ? t.ps / 4096 : 1);
	if ((err = vmap_space_create(&cfg, &t.space))) {
		fprintf(stderr, "test_vmalloc: space: %s\n", vmap_strerror(err));
		return 1;
	}
	pthread_mutex_init(&t.lock, NULL);
	pthread_cond_init(&t.go, NULL);
	if (find_bounds(&t)) {
		fprintf(stderr, "test_vmalloc: cannot find the space's bounds\n");
		goto out;
	}
	t.owner = calloc(page_of(&t, t.end) / 64 + 1, sizeof(*t.owner));
	t.pgoff = malloc(t.npages * sizeof(*t.pgoff));
	w = calloc((size_t)n, sizeof(*w));
	if (!t.owner || !t.pgoff || !w) {
		fprintf(stderr, "test_vmalloc: out of memory\n");
		goto out;
	}
	for (uint64_t i = 0; i < t.npages; i++)
		t.pgoff[i] = i;
	for (fails = 0; started < n; started++) {
		w[started] = (struct tv_worker){
			.t = &t, .id = started, .memfd = -1,
			.rng = (uint64_t)(started + 1) * 0x2545f4914f6cdd1dull,
		};
		err = pthread_create(&w[started].thread, NULL, worker,
				     &w[started]);
		if (err) {
			fprintf(stderr, "test_vmalloc: thread: %s\n",
				strerror(err));
			fails = 1;
			break;
		}
	}
	/* Open the gate: all go at once, or none if one could not start. */
	pthread_mutex_lock(&t.lock);
	t.state = started == n ? 1 : -1;
	pthread_cond_broadcast(&t.go);
	pthread_mutex_unlock(&t.lock);
	for (int i = 0; i < started; i++) {
		pthread_join(w[i].thread, NULL);
		fails += w[i].failed;
	}
	if (started == n)
		fails += final_checks(&t);
out:
	vmap_space_destroy(t.space);
	pthread_cond_destroy(&t.go);
	pthread_mutex_destroy(&t.lock);
	free(t.owner);
	free(t.pgoff);
	free(w);
	return fails;
}

void tv_defaults(struct tv_params *p)
{
	*p = (struct tv_params){ .test_loop_count = 1000000,
				 .run_test_mask = INT_MAX,
				 .test_repeat_count = 1 };
}

/* test_vmalloc.sh's modes; each sets only what the script sets. */
int tv_preset(struct tv_params *p, const char *name)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);

	if (!strcmp(name, "performance")) {
		p->sequential_test_order = 1;
		p->test_repeat_count = 3;
	} else if (!strcmp(name, "stress")) {
		p->nr_threads = cpus > 0 ? (int)cpus : 1;
		p->test_repeat_count = 20;
	} else if (!strcmp(name, "smoke")) {
		p->test_loop_count = 10000;
		p->test_repeat_count = 10;
	} else {
		return -1;
	}
	return 0;
}

/* Values as the script takes them: integers > 0 (in hex too, as the
 * module's), but sequential_test_order is a boolean. */
int tv_param(struct tv_params *p, const char *kv)
{
#define KEY(f, min) { #f, offsetof(struct tv_params, f), min }
	static const struct {
		const char *key;
		size_t off;
		int min;
	} keys[] = {
		KEY(nr_threads, 1),	   KEY(test_loop_count, 1),
		KEY(run_test_mask, 1),	   KEY(sequential_test_order, 0),
		KEY(test_repeat_count, 1), KEY(nr_pages, 1),
	};
#undef KEY
	const char *eq = strchr(kv, '=');
	char *end;
	long v;

	for (size_t i = 0; eq && eq[1] && i < sizeof(keys) / sizeof(*keys); i++) {
		if (strlen(keys[i].key) != (size_t)(eq - kv) ||
		    strncmp(kv, keys[i].key, (size_t)(eq - kv)))
			continue;
		errno = 0;
		v = strtol(eq + 1, &end, 0);
		if (errno || *end || v < keys[i].min || v > INT_MAX ||
		    (!keys[i].min && v > 1))
			return -1;
		*(int *)((char *)p + keys[i].off) = (int)v;
		return 0;
	}
	return -1;
}
