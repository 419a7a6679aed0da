/* SPDX-License-Identifier: MIT */
/*
 * purger_test - the reclaim policy and the purge thread, as a user sees them:
 * freed memory released within the time bound with no further call, an idle
 * space with no thread and no wakeups, purges off the freeing thread (the
 * flush runs on "vmap-purge"), back-pressure when the purger cannot keep up,
 * fork, destroy, the configs at the edges, and the purges counted by cause.
 * vmap_check() after every step.
 *
 * The waits here are for things that must happen, with generous limits (a
 * loaded CI machine); nothing is timed against a target.
 */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <vmap.h>

#include "test.h"

#define PG 4096u
#define PATIENCE_MS 10000 /* how long "eventually" may take */

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };

	nanosleep(&ts, NULL);
}

static unsigned threads(void)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;
	unsigned n = 0;

	REQUIRE(d);
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

/* Pages of [p, p + len) resident. */
static size_t resident(void *p, size_t len)
{
	unsigned char v[4096];
	size_t n = 0, pages = len / PG;

	REQUIRE(pages <= sizeof(v));
	REQUIRE(mincore(p, len, v) == 0);
	for (size_t i = 0; i < pages; i++)
		n += v[i] & 1;
	return n;
}

/* Wait until nothing is lazy or warm; false after PATIENCE_MS. */
static bool settles(vmap_space *s)
{
	for (unsigned ms = 0; ms < PATIENCE_MS; ms += 5) {
		struct vmap_stats st = test_stats(s);

		if (!st.lazy_pages && !st.pool_pages)
			return true;
		sleep_ms(5);
	}
	return false;
}

static bool threads_become(unsigned n)
{
	for (unsigned ms = 0; ms < PATIENCE_MS; ms += 10) {
		if (threads() == n)
			return true;
		sleep_ms(10);
	}
	return false;
}

static vmap_space *memory_space(unsigned flags, uint64_t delay_ms)
{
	struct vmap_config c;
	vmap_space *s;

	vmap_config_init(&c);
	c.page_size = PG;
	c.flags = VMAP_SPACE_MEMORY | flags;
	c.length = 1ull << 30;
	c.purge_delay_ms = delay_ms;
	REQUIRE(vmap_space_create(&c, &s) == 0);
	return s;
}

/*
 * A burst of frees under the threshold, then silence: every page goes back to
 * the kernel by itself -- lazy areas and warm ones -- and then the thread
 * leaves, and nothing wakes up any more.
 */
static void test_time_bound(void)
{
	enum { N = 500, PAGES = 16 }; /* 31 MiB: under the threshold */
	unsigned before = threads();
	vmap_space *s = memory_space(0, 20);
	static void *p[N];
	struct vmap_stats st;
	size_t left = 0;

	for (int i = 0; i < N; i++) {
		p[i] = vmap_vmalloc(s, PAGES * PG);
		REQUIRE(p[i]);
		memset(p[i], 0x5a, PAGES * PG);
	}
	for (int i = 0; i < N; i++)
		CHECK_EQ(vmap_vfree(s, p[i]), 0);
	st = test_stats(s);
	CHECK_EQ(st.purge_delay_ms, 20);
	CHECK(st.lazy_pages <= st.lazy_max_pages);
	CHECK(settles(s));
	CHECK_EQ(vmap_check(s), 0);
	for (int i = 0; i < N; i++)
		left += resident(p[i], PAGES * PG);
	CHECK_EQ(left, 0);
	st = test_stats(s);
	CHECK(st.purges_timer > 0);
	CHECK_EQ(st.purges_threshold + st.purges_miss + st.purges_called +
			 st.purges_strict + st.purges_aliases + st.backpressure,
		 0);
	CHECK(st.lazy_max_wait_ns > 0);
	CHECK(st.lazy_max_wait_ns < (uint64_t)PATIENCE_MS * 1000000);

	/* Idle: the thread leaves after a second, and then nothing wakes. */
	CHECK(threads_become(before));
	st = test_stats(s);
	sleep_ms(300);
	CHECK_EQ(test_stats(s).purger_wakeups, st.purger_wakeups);
	CHECK_EQ(threads(), before);

	/* ...and comes back for the next free. */
	p[0] = vmap_vmalloc(s, 3 * PG);
	REQUIRE(p[0]);
	memset(p[0], 1, 3 * PG);
	CHECK_EQ(vmap_vfree(s, p[0]), 0);
	CHECK(settles(s));
	CHECK_EQ(resident(p[0], 3 * PG), 0);
	CHECK_EQ(vmap_check(s), 0);
	vmap_space_destroy(s);
	CHECK_EQ(threads(), before);
}

/* ---- range spaces: where the flush runs ---- */

struct watch {
	vmap_space *s;
	atomic_uint calls, on_purger, on_caller;
	atomic_uint stall_ms; /* the next call sleeps this long */
	atomic_uint frees_inside;
	uint64_t refree; /* an area the flush frees, once */
};

static void flush(void *ctx, const struct vmap_range *r, size_t n)
{
	struct watch *w = ctx;
	char name[32] = "";
	unsigned stall = atomic_exchange(&w->stall_ms, 0);

	(void)r;
	(void)n;
	pthread_getname_np(pthread_self(), name, sizeof(name));
	if (!strcmp(name, "vmap-purge"))
		w->on_purger++;
	else
		w->on_caller++;
	w->calls++;
	if (stall)
		sleep_ms(stall);
	if (w->refree) {
		/* A free from the flush, on the purge thread: it must not
		 * wait for the purge that is running it. */
		uint64_t a = w->refree;

		w->refree = 0;
		/* Checked by the main thread (the counters are not atomic). */
		if (!vmap_free(w->s, a))
			w->frees_inside++;
	}
}

static vmap_space *range_space(struct watch *w, unsigned flags,
			       uint64_t lazy_max, uint64_t delay_ms)
{
	struct vmap_config c;

	vmap_config_init(&c);
	c.purge_delay_ms = delay_ms;
	c.base = 1ull << 32;
	c.length = 1ull << 30;
	c.flags = flags;
	c.lazy_max_pages = lazy_max;
	c.flush = flush;
	c.flush_ctx = w;
	REQUIRE(vmap_space_create(&c, &w->s) == 0);
	return w->s;
}

/* Under the threshold the timer purges; one free past it wakes the thread
 * at once.  Either way the flush runs there, never on the freeing thread. */
static void test_flush_on_purger(void)
{
	for (int past = 0; past < 2; past++) {
		static struct watch w;
		vmap_space *s;
		struct vmap_stats st;
		uint64_t a[65];

		memset(&w, 0, sizeof(w));
		s = range_space(&w, VMAP_SPACE_PURGER, past ? 64 : 1000,
				/* Past the threshold, no timer may purge
				 * first (a slow, loaded run can take 10 ms
				 * to free 64 areas); it still purges the
				 * area the flush frees, in a second. */
				past ? 1000 : 0);
		for (int i = 0; i < 65; i++)
			REQUIRE(vmap_alloc(s, PG, 0, 0, UINT64_MAX, &a[i]) == 0);
		REQUIRE(vmap_alloc(s, PG, 0, 0, UINT64_MAX, &w.refree) == 0);
		for (int i = 0; i < 65; i++) {
			CHECK_EQ(vmap_free(s, a[i]), 0);
			if (i % 16 == 0)
				CHECK_EQ(vmap_check(s), 0);
		}
		CHECK(settles(s));
		CHECK(w.calls > 0);
		CHECK_EQ(w.on_caller, 0);
		CHECK_EQ(w.frees_inside, 1);
		CHECK(settles(s)); /* the area the flush freed goes too */
		st = test_stats(s);
		CHECK_EQ(st.busy_areas, 0);
		if (past)
			CHECK(st.purges_threshold > 0);
		else
			CHECK_EQ(st.purges_threshold, 0);
		CHECK(st.purges_timer > 0 || past);
		CHECK_EQ(st.backpressure, 0);
		CHECK_EQ(st.purges, st.purges_threshold + st.purges_timer);
		CHECK_EQ(vmap_check(s), 0);
		vmap_space_destroy(s);
	}
}

/*
 * The purger stuck in a slow flush: frees go on until the lazy pages pass
 * twice the threshold, and then one waits and purges itself -- counted --
 * so laziness stays bounded.
 */
static void test_backpressure(void)
{
	static struct watch w;
	vmap_space *s = range_space(&w, VMAP_SPACE_PURGER, 16, 0);
	struct vmap_stats st;
	uint64_t a[200];

	for (int i = 0; i < 200; i++)
		REQUIRE(vmap_alloc(s, PG, 0, 0, UINT64_MAX, &a[i]) == 0);
	w.stall_ms = 300;
	for (int i = 0; i < 200; i++)
		CHECK_EQ(vmap_free(s, a[i]), 0);
	CHECK(settles(s));
	st = test_stats(s);
	CHECK(st.backpressure > 0);
	CHECK(w.on_caller > 0);
	CHECK(st.lazy_max_wait_ns >= 300ull * 1000000 / 2);
	CHECK_EQ(vmap_check(s), 0);
	vmap_space_destroy(s);
}

/* Without a purger (a range space's default), nothing changes: the free
 * past the threshold flushes on its own thread, and nothing runs later. */
static void test_no_purger(void)
{
	static struct watch w;
	unsigned before = threads();
	vmap_space *s = range_space(&w, 0, 8, 0);
	struct vmap_stats st;
	uint64_t a[9];

	for (int i = 0; i < 9; i++)
		REQUIRE(vmap_alloc(s, PG, 0, 0, UINT64_MAX, &a[i]) == 0);
	for (int i = 0; i < 8; i++)
		CHECK_EQ(vmap_free(s, a[i]), 0);
	sleep_ms(50);
	st = test_stats(s);
	CHECK_EQ(st.lazy_pages, 8);
	CHECK_EQ(st.purges, 0);
	CHECK_EQ(st.purge_delay_ms, 0);
	CHECK_EQ(threads(), before);
	CHECK_EQ(vmap_free(s, a[8]), 0);
	st = test_stats(s);
	CHECK_EQ(st.lazy_pages, 0);
	CHECK_EQ(st.purges_threshold, 1);
	CHECK_EQ(w.on_caller, 1);
	CHECK_EQ(w.on_purger, 0);
	CHECK_EQ(threads(), before);
	vmap_space_destroy(s);
}

/* Every cause of a purge, counted once each, in a space with no purger. */
static void test_causes(void)
{
	static struct watch w;
	vmap_space *s = range_space(&w, 0, 1ull << 20, 0);
	struct vmap_config c;
	vmap_space *strict;
	struct vmap_stats st;
	uint64_t a, b;

	REQUIRE(vmap_alloc(s, PG, 0, 0, UINT64_MAX, &a) == 0);
	CHECK_EQ(vmap_free(s, a), 0);
	CHECK_EQ(vmap_purge(s, VMAP_PURGE_SYNC), 0);
	CHECK_EQ(test_stats(s).purges_called, 1);
	REQUIRE(vmap_alloc(s, PG, 0, 0, UINT64_MAX, &a) == 0);
	CHECK_EQ(vmap_free(s, a), 0);
	CHECK_EQ(vmap_unmap_aliases(s), 0);
	CHECK_EQ(test_stats(s).purges_aliases, 1);
	/* A miss: the whole space, freed lazily, then asked for again. */
	REQUIRE(vmap_alloc(s, 1ull << 30, 0, 0, UINT64_MAX, &a) == 0);
	CHECK_EQ(vmap_free(s, a), 0);
	REQUIRE(vmap_alloc(s, 1ull << 30, 0, 0, UINT64_MAX, &b) == 0);
	CHECK_EQ(b, a);
	st = test_stats(s);
	CHECK_EQ(st.purges_miss, 1);
	CHECK_EQ(st.purge_retries, 1);
	CHECK_EQ(st.purges, 3);
	CHECK_EQ(st.purges_threshold + st.purges_timer + st.purges_strict, 0);
	CHECK_EQ(vmap_free(s, b), 0);
	vmap_space_destroy(s);

	vmap_config_init(&c);
	c.base = PG;
	c.length = 64 * PG;
	c.flags = VMAP_SPACE_STRICT;
	REQUIRE(vmap_space_create(&c, &strict) == 0);
	REQUIRE(vmap_alloc(strict, PG, 0, 0, UINT64_MAX, &a) == 0);
	CHECK_EQ(vmap_free(strict, a), 0);
	st = test_stats(strict);
	CHECK_EQ(st.purges_strict, 1);
	CHECK_EQ(st.lazy_pages, 0);
	vmap_space_destroy(strict);
}

/* ---- configs ---- */

static void test_configs(void)
{
	static const struct {
		unsigned flags;
		uint64_t delay;
		int err[2]; /* range space, memory space */
	} cases[] = {
		{ VMAP_SPACE_PURGER | VMAP_SPACE_NOPURGER, 0, { -EINVAL, -EINVAL } },
		{ VMAP_SPACE_PURGER | VMAP_SPACE_STRICT, 0, { -EINVAL, -EINVAL } },
		{ VMAP_SPACE_PURGER, VMAP_PURGE_DELAY_MAX_MS + 1,
		  { -EINVAL, -EINVAL } },
		{ VMAP_SPACE_PURGER, UINT64_MAX, { -EINVAL, -EINVAL } },
		{ 0, 1, { -EINVAL, 0 } }, /* a delay: only with a purger */
		{ VMAP_SPACE_NOPURGER, 5, { -EINVAL, -EINVAL } },
		{ VMAP_SPACE_STRICT, 5, { -EINVAL, -EINVAL } },
		{ VMAP_SPACE_PURGER, VMAP_PURGE_DELAY_MAX_MS, { 0, 0 } },
		{ VMAP_SPACE_PURGER, 1, { 0, 0 } },
		{ VMAP_SPACE_PURGER, 0, { 0, 0 } },
		{ VMAP_SPACE_NOPURGER, 0, { 0, 0 } },
		{ 0, 0, { 0, 0 } },
	};

	for (unsigned m = 0; m < 2; m++)
		for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
			struct vmap_config c;
			vmap_space *s = (vmap_space *)&c;
			unsigned flags = cases[i].flags;
			uint64_t want;

			vmap_config_init(&c);
			c.length = 64 * PG;
			if (m)
				c.flags = VMAP_SPACE_MEMORY;
			else
				c.base = PG;
			c.flags |= flags;
			c.purge_delay_ms = cases[i].delay;
			CHECK_EQ(vmap_space_create(&c, &s), cases[i].err[m]);
			if (cases[i].err[m]) {
				CHECK(s == (vmap_space *)&c); /* untouched */
				continue;
			}
			want = cases[i].delay ? cases[i].delay
					      : VMAP_PURGE_DELAY_DEFAULT_MS;
			if (flags & (VMAP_SPACE_NOPURGER | VMAP_SPACE_STRICT) ||
			    (!m && !(flags & VMAP_SPACE_PURGER)))
				want = 0;
			CHECK_EQ(test_stats(s).purge_delay_ms, want);
			vmap_space_destroy(s);
		}
}

/* ---- fork and destroy ---- */

struct churn {
	vmap_space *s;
	atomic_bool stop;
};

static void *churn_thread(void *arg)
{
	struct churn *c = arg;

	while (!c->stop) {
		void *p = vmap_vmalloc(c->s, 5 * PG);

		if (p) {
			memset(p, 3, 5 * PG);
			vmap_vfree(c->s, p);
		}
	}
	return NULL;
}

/*
 * Fork while another thread frees and the purger runs: the child has no
 * purge thread, but its first free starts one, and its time bound holds.
 */
static void test_fork(void)
{
	vmap_space *s = memory_space(0, 10);
	struct churn c = { .s = s };
	pthread_t t;

	REQUIRE(pthread_create(&t, NULL, churn_thread, &c) == 0);
	for (int i = 0; i < 20; i++) {
		void *p = vmap_vmalloc(s, 40 * PG);
		pid_t pid;
		int status;

		REQUIRE(p);
		memset(p, 7, 40 * PG);
		sleep_ms(2);
		pid = fork();
		REQUIRE(pid >= 0);
		if (!pid) {
			alarm(30);
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
			/* TSan cannot start a thread in the child of a
			 * threaded process; ASan's allocator (gcc 12) is not
			 * fork-safe: its lock, held by the parent's churning
			 * thread at the fork, stays held in the child, and
			 * the child's purge thread waits on it for ever.  The
			 * plain build tests the child's purger. */
			_exit(vmap_check(s) ? 1 : 0);
#endif
			if (vmap_vfree(s, p))
				_exit(1);
			if (!settles(s))
				_exit(2);
			if (resident(p, 40 * PG))
				_exit(3);
			if (vmap_check(s))
				_exit(4);
			if (threads() > 2)
				_exit(5);
			_exit(0);
		}
		REQUIRE(waitpid(pid, &status, 0) == pid);
		if (!WIFEXITED(status) || WEXITSTATUS(status))
			fprintf(stderr, "fork %d: the child's status %#x\n", i,
				status);
		CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
		CHECK_EQ(vmap_vfree(s, p), 0);
	}
	c.stop = true;
	pthread_join(t, NULL);
	CHECK(settles(s));
	CHECK_EQ(vmap_check(s), 0);
	vmap_space_destroy(s);
}

/* Destroy with the purger busy, or waiting: joined, nothing left. */
static void test_destroy(void)
{
	unsigned before = threads();

	for (int i = 0; i < 50; i++) {
		vmap_space *s = memory_space(0, 1 + (unsigned)i % 3);

		for (int j = 0; j < i * 10; j++) {
			void *p = vmap_vmalloc(s, (1 + (unsigned)j % 70) * PG);

			REQUIRE(p);
			memset(p, 1, PG);
			vmap_vfree(s, p);
		}
		if (i % 2)
			sleep_ms(1);
		vmap_space_destroy(s);
		/* Joined; the kernel may list the task a moment longer (it
		 * wakes the joiner before it reaps the thread). */
		CHECK(threads_become(before));
	}
}

int main(void)
{
	test_configs();
	test_causes();
	test_no_purger();
	test_flush_on_purger();
	test_backpressure();
	test_time_bound();
	test_destroy();
	test_fork();
	return test_summary("purger_test");
}
