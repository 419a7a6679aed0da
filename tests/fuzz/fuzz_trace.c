/* SPDX-License-Identifier: MIT */
/*
 * fuzz_trace.c - vmap-trace's reading and checking (tools/trace/format.c,
 * check.c) on whatever a fuzz input holds: vmap-trace's own format, a raw
 * tracefs dump, or neither.  The input is written to a memfd and read back
 * by path (/proc/self/fd/N), as the tool reads a file.
 *
 * trace_read() and trace_check() must each either fail cleanly -- -1, an
 * error naming the file (and a line), nothing left allocated (the leak
 * checker sees to that) -- or succeed.  On success this target checks:
 *  - reading: trace_write() of what was read reads back the same trace
 *    (header, snapshot, every event), so what `vmap-trace record` writes
 *    from a raw dump is what the replay will read;
 *  - checking: the events are the same events (a permutation: check.c only
 *    moves purges and frees, each line once, with its fields intact); the
 *    snapshot grows only by the areas check.c inferred, one for each free
 *    it flagged EVF_PRETRACE, and only in a trace without a snapshot;
 *    nalloc, nfree, npurge, nfailed, skipped and guessed count the events
 *    so flagged (an allocation over a skipped one is not counted; a failed
 *    one is, in nalloc and in nfailed);
 *  - every free not skipped has a size: whole pages, more than none;
 *  - the order check.c leaves is one a replay can follow: replayed on a
 *    plain list of areas from the snapshot, every allocation lands where
 *    nothing lives, inside its [vstart, vend); every free names a busy
 *    area's start and has its size (an inferred area, page-aligned, where
 *    nothing lives); every purge releases the oldest of what is lazy where
 *    it stands: all of it, the areas beyond being the raw dump's phantom
 *    areas (its first purge) or purge_slack; or fewer, leaving lazy only
 *    areas of the snapshot (which have no event to go before), counted in
 *    purge_slack.
 * The errors check.c and format.c print go to /dev/null (stderr is swapped
 * for the calls); FUZZ_TRACE_VERBOSE=1 in the environment keeps them.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE	/* memfd_create */
#endif
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fuzz.h"
#include "trace.h"

static int in_fd = -1, out_fd = -1;
static char in_path[64], out_path[64];
static FILE *devnull;
static bool verbose;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	in_fd = memfd_create("fuzz_trace_in", 0);
	out_fd = memfd_create("fuzz_trace_out", 0);
	if (in_fd < 0 || out_fd < 0)
		FAIL("memfd_create: %s", strerror(errno));
	snprintf(in_path, sizeof(in_path), "/proc/self/fd/%d", in_fd);
	snprintf(out_path, sizeof(out_path), "/proc/self/fd/%d", out_fd);
	devnull = fopen("/dev/null", "w");
	if (!devnull)
		FAIL("/dev/null: %s", strerror(errno));
	verbose = getenv("FUZZ_TRACE_VERBOSE") != NULL;
	return 0;
}

/* The library's messages, to /dev/null unless verbose: stderr is a
 * variable in glibc; fd 2 stays as it is, for the sanitizers. */
static FILE *saved_stderr;

static void quiet(void)
{
	saved_stderr = stderr;
	if (!verbose)
		stderr = devnull;
}

static void loud(void)
{
	stderr = saved_stderr;
}

static void put(int fd, const uint8_t *data, size_t size)
{
	if (ftruncate(fd, 0))
		FAIL("ftruncate: %s", strerror(errno));
	for (size_t done = 0; done < size;) {
		ssize_t n = pwrite(fd, data + done, size - done, (off_t)done);

		if (n <= 0)
			FAIL("pwrite: %s", strerror(errno));
		done += (size_t)n;
	}
}

/* A trace as trace_read left it: fails unless the same as *a. */
static void same_trace(const struct trace *a, const struct trace *b)
{
	EQUAL(a->page_size, b->page_size);
	EQUAL(a->cpus, b->cpus);
	EQUAL(a->lost, b->lost);
	if (strcmp(a->kernel, b->kernel) || strcmp(a->command, b->command))
		FAIL("kernel/command '%s'/'%s' read back as '%s'/'%s'",
		     a->kernel, a->command, b->kernel, b->command);
	EQUAL(a->has_snapshot, b->has_snapshot);
	if (a->has_snapshot) {
		EQUAL(a->snap_begin_ns, b->snap_begin_ns);
		EQUAL(a->snap_end_ns, b->snap_end_ns);
	}
	EQUAL(a->nsnap, b->nsnap);
	for (size_t k = 0; k < a->nsnap; k++) {
		EQUAL(a->snap[k].start, b->snap[k].start);
		EQUAL(a->snap[k].end, b->snap[k].end);
		EQUAL(a->snap[k].lazy, b->snap[k].lazy);
	}
	EQUAL(a->nev, b->nev);
	for (size_t i = 0; i < a->nev; i++) {
		const struct ev *x = &a->ev[i], *y = &b->ev[i];

		EQUAL(x->ts_ns, y->ts_ns);
		EQUAL(x->cpu, y->cpu);
		EQUAL(x->kind, y->kind);
		if (x->kind == EV_ALLOC) {
			EQUAL(x->a.addr, y->a.addr);
			EQUAL(x->a.size, y->a.size);
			EQUAL(x->a.align, y->a.align);
			EQUAL(x->a.vstart, y->a.vstart);
			EQUAL(x->a.vend, y->a.vend);
			EQUAL(x->a.failed, y->a.failed);
		} else if (x->kind == EV_FREE) {
			EQUAL(x->f.addr, y->f.addr);
			EQUAL(x->f.nr_lazy, y->f.nr_lazy);
			EQUAL(x->f.nr_lazy_max, y->f.nr_lazy_max);
		} else {
			EQUAL(x->p.start, y->p.start);
			EQUAL(x->p.end, y->p.end);
			EQUAL(x->p.npurged, y->p.npurged);
		}
	}
}

/* What trace_write writes of t reads back as t. */
static void round_trip(const struct trace *t)
{
	struct trace back;
	FILE *f;
	int fd, rc;

	if (ftruncate(out_fd, 0) || (fd = dup(out_fd)) < 0 ||
	    lseek(fd, 0, SEEK_SET) < 0 || !(f = fdopen(fd, "w")))
		FAIL("the round trip's file: %s", strerror(errno));
	rc = trace_write(t, f);
	if (fclose(f) || rc)
		FAIL("trace_write() = %d", rc);
	quiet();
	rc = trace_read(out_path, &back);
	loud();
	if (rc)
		FAIL("trace_write()'s output does not read back "
		     "(FUZZ_TRACE_VERBOSE=1 says why)");
	same_trace(t, &back);
	trace_free(&back);
}

/* ---- the order check.c leaves, replayed on a plain list of areas ---- */

struct area {
	uint64_t start, end;
	bool lazy;
	bool gone;
	bool snap;		/* lazy in the snapshot, since */
};

struct sim {
	struct area *a;
	size_t n, cap;
	size_t *queue;		/* lazy areas, oldest first */
	size_t qhead, qtail;
};

static bool overlaps(const struct sim *s, uint64_t start, uint64_t end)
{
	for (size_t k = 0; k < s->n; k++)
		if (!s->a[k].gone && start < s->a[k].end &&
		    s->a[k].start < end)
			return true;
	return false;
}

static size_t add_area(struct sim *s, uint64_t start, uint64_t end)
{
	if (s->n == s->cap) {
		s->cap = s->cap ? 2 * s->cap : 64;
		s->a = realloc(s->a, s->cap * sizeof(*s->a));
		s->queue = realloc(s->queue, s->cap * sizeof(*s->queue));
		if (!s->a || !s->queue)
			FAIL("out of memory");
	}
	s->a[s->n] = (struct area){ .start = start, .end = end };
	return s->n++;
}

static void make_lazy(struct sim *s, size_t k)
{
	s->a[k].lazy = true;
	s->queue[s->qtail++] = k;
}

static void simulate(const struct trace *t, size_t nsnap_read)
{
	struct sim s = { 0 };
	uint64_t ps = t->page_size, slack = 0, phantom = 0;
	bool seen_purge = false;
	size_t inferred = nsnap_read;

	for (size_t k = 0; k < nsnap_read; k++) {
		const struct snap *sn = &t->snap[k];
		size_t a;

		if (sn->start % ps || sn->end % ps ||
		    sn->end <= sn->start || overlaps(&s, sn->start, sn->end))
			FAIL("snapshot area %zu: 0x%llx-0x%llx passed the "
			     "check", k, (unsigned long long)sn->start,
			     (unsigned long long)sn->end);
		a = add_area(&s, sn->start, sn->end);
		s.a[a].snap = sn->lazy;
		if (sn->lazy)
			make_lazy(&s, a);
	}
	for (size_t i = 0; i < t->nev; i++) {
		const struct ev *e = &t->ev[i];
		size_t k;

		if (e->flags & EVF_SKIP)
			continue;
		if (e->kind == EV_ALLOC) {
			uint64_t end = e->a.addr + e->a.size;

			if (e->a.failed)
				continue;
			if (!e->a.size || e->a.size % ps || e->a.addr % ps ||
			    end < e->a.addr || e->a.addr < e->a.vstart ||
			    end - 1 > e->a.vend)	/* as check.c: VEND may
							   be the last byte */
				FAIL("line %llu: the allocation 0x%llx + %llu "
				     "in [0x%llx, 0x%llx) passed the check",
				     (unsigned long long)e->line,
				     (unsigned long long)e->a.addr,
				     (unsigned long long)e->a.size,
				     (unsigned long long)e->a.vstart,
				     (unsigned long long)e->a.vend);
			if (overlaps(&s, e->a.addr, end))
				FAIL("line %llu (event %zu): the allocation "
				     "0x%llx-0x%llx lands on a live or lazy "
				     "area in check.c's order",
				     (unsigned long long)e->line, i,
				     (unsigned long long)e->a.addr,
				     (unsigned long long)end);
			add_area(&s, e->a.addr, end);
		} else if (e->kind == EV_FREE) {
			if (e->flags & EVF_PRETRACE) {
				const struct snap *sn;

				if (t->has_snapshot || inferred >= t->nsnap)
					FAIL("line %llu: EVF_PRETRACE, but no "
					     "inferred area left for it",
					     (unsigned long long)e->line);
				sn = &t->snap[inferred++];
				if (!sn->inferred || sn->start != e->f.addr ||
				    sn->end - sn->start != e->size)
					FAIL("line %llu: the inferred area "
					     "0x%llx-0x%llx is not the free's "
					     "0x%llx + %llu",
					     (unsigned long long)e->line,
					     (unsigned long long)sn->start,
					     (unsigned long long)sn->end,
					     (unsigned long long)e->f.addr,
					     (unsigned long long)e->size);
				if (sn->start % ps || sn->end <= sn->start ||
				    overlaps(&s, sn->start, sn->end))
					FAIL("line %llu: the inferred area "
					     "0x%llx-0x%llx is not page-aligned "
					     "where nothing lives",
					     (unsigned long long)e->line,
					     (unsigned long long)sn->start,
					     (unsigned long long)sn->end);
				make_lazy(&s, add_area(&s, sn->start, sn->end));
				continue;
			}
			for (k = 0; k < s.n; k++)
				if (!s.a[k].gone && s.a[k].start == e->f.addr)
					break;
			if (k == s.n || s.a[k].lazy)
				FAIL("line %llu (event %zu): free of 0x%llx, "
				     "no busy area there in check.c's order",
				     (unsigned long long)e->line, i,
				     (unsigned long long)e->f.addr);
			if (s.a[k].end - s.a[k].start != e->size)
				FAIL("line %llu: the free's size %llu is not "
				     "its area's %llu",
				     (unsigned long long)e->line,
				     (unsigned long long)e->size,
				     (unsigned long long)(s.a[k].end -
							  s.a[k].start));
			make_lazy(&s, k);
		} else {
			uint64_t lazy = s.qtail - s.qhead, n = e->p.npurged;

			/* Fewer than are lazy: what it leaves lazy is the
			 * snapshot's (no event to go before), and slack. */
			for (size_t q = s.qtail - (lazy - (n < lazy ? n : lazy));
			     q < s.qtail; q++)
				if (!s.a[s.queue[q]].snap)
					FAIL("line %llu (event %zu): the purge "
					     "releases %llu areas where %llu are "
					     "lazy, and leaves the trace's own "
					     "free of 0x%llx lazy",
					     (unsigned long long)e->line, i,
					     (unsigned long long)n,
					     (unsigned long long)lazy,
					     (unsigned long long)
					     s.a[s.queue[q]].start);
			if (n < lazy)
				slack += lazy - n;
			else if (n > lazy && !seen_purge && !t->has_snapshot)
				phantom = n - lazy;
			else
				slack += n - lazy;
			for (; n && s.qhead < s.qtail; n--)
				s.a[s.queue[s.qhead++]].gone = true;
			seen_purge = true;
		}
	}
	if (inferred != t->nsnap)
		FAIL("%zu inferred areas, %zu frees flagged EVF_PRETRACE",
		     t->nsnap - nsnap_read, inferred - nsnap_read);
	EQUAL(t->purge_slack, slack);
	EQUAL(t->phantom_areas, phantom);
	free(s.a);
	free(s.queue);
}

/* ---- what trace_check promises ---- */

static int by_line(const void *a, const void *b)
{
	const struct ev *x = a, *y = b;

	return x->line < y->line ? -1 : x->line > y->line;
}

static void checked(const struct trace *t, const struct ev *before,
		    size_t nev, size_t nsnap_read)
{
	size_t cnt[3] = { 0 }, failed = 0, skipped = 0, guessed = 0;
	struct ev *after;

	/* The same events, each once, with their fields. */
	EQUAL(t->nev, nev);
	after = malloc((nev ? nev : 1) * sizeof(*after));
	if (!after)
		FAIL("out of memory");
	if (nev)
		memcpy(after, t->ev, nev * sizeof(*after));
	qsort(after, nev, sizeof(*after), by_line);
	for (size_t i = 0; i < nev; i++) {
		const struct ev *x = &before[i], *y = &after[i];

		EQUAL(x->line, y->line);
		EQUAL(x->kind, y->kind);
		EQUAL(x->ts_ns, y->ts_ns);
		EQUAL(x->cpu, y->cpu);
		if (x->kind == EV_ALLOC)
			EQUAL(x->a.addr ^ x->a.size ^ x->a.vstart ^ x->a.vend ^
			      x->a.align ^ (uint64_t)x->a.failed,
			      y->a.addr ^ y->a.size ^ y->a.vstart ^ y->a.vend ^
			      y->a.align ^ (uint64_t)y->a.failed);
		else if (x->kind == EV_FREE)
			EQUAL(x->f.addr ^ x->f.nr_lazy ^ x->f.nr_lazy_max,
			      y->f.addr ^ y->f.nr_lazy ^ y->f.nr_lazy_max);
		else
			EQUAL(x->p.start ^ x->p.end ^ x->p.npurged,
			      y->p.start ^ y->p.end ^ y->p.npurged);
	}
	free(after);

	/* The counts: the events so flagged. */
	for (size_t i = 0; i < nev; i++) {
		const struct ev *e = &t->ev[i];

		if (e->flags & EVF_SKIP) {
			skipped++;
			if (!t->has_snapshot)
				FAIL("line %llu skipped, with no snapshot",
				     (unsigned long long)e->line);
			continue;
		}
		cnt[e->kind]++;
		if (e->kind == EV_ALLOC && e->a.failed)
			failed++;
		if (e->kind == EV_FREE &&
		    (!e->size || e->size % t->page_size))
			FAIL("line %llu: a free of %llu bytes (page size %llu)",
			     (unsigned long long)e->line,
			     (unsigned long long)e->size,
			     (unsigned long long)t->page_size);
		if ((e->flags & EVF_PRETRACE) &&
		    (e->kind != EV_FREE || t->has_snapshot))
			FAIL("line %llu: EVF_PRETRACE on no raw free",
			     (unsigned long long)e->line);
		if (e->flags & EVF_SIZE_GUESSED) {
			guessed++;
			if (!(e->flags & EVF_PRETRACE))
				FAIL("line %llu: EVF_SIZE_GUESSED without "
				     "EVF_PRETRACE", (unsigned long long)e->line);
		}
		if ((e->flags & EVF_EXPLICIT) && e->kind != EV_PURGE)
			FAIL("line %llu: EVF_EXPLICIT on no purge",
			     (unsigned long long)e->line);
	}
	EQUAL(t->nalloc, cnt[EV_ALLOC]);
	EQUAL(t->nfree, cnt[EV_FREE]);
	EQUAL(t->npurge, cnt[EV_PURGE]);
	EQUAL(t->nfailed, failed);
	EQUAL(t->skipped, skipped);
	EQUAL(t->guessed, guessed);
	if (t->nsnap < nsnap_read || (t->has_snapshot && t->nsnap != nsnap_read))
		FAIL("the snapshot went from %zu areas to %zu", nsnap_read,
		     t->nsnap);
	/* (Not the read areas' inferred: format.c leaves it unset.) */
	for (size_t k = nsnap_read; k < t->nsnap; k++)
		EQUAL(t->snap[k].inferred, true);
	simulate(t, nsnap_read);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct trace t;
	struct ev *before;
	size_t nev, nsnap;
	int rc;

	put(in_fd, data, size);
	quiet();
	rc = trace_read(in_path, &t);
	loud();
	if (rc) {
		if (rc != -1 || t.ev || t.snap || t.path)
			FAIL("trace_read() = %d, and left ev %p snap %p path %p",
			     rc, (void *)t.ev, (void *)t.snap, (void *)t.path);
		return 0;
	}
	if (!t.path || strcmp(t.path, in_path))
		FAIL("the trace's path is '%s', not '%s'",
		     t.path ? t.path : "(null)", in_path);
	round_trip(&t);

	nev = t.nev;
	nsnap = t.nsnap;
	before = malloc((nev ? nev : 1) * sizeof(*before));
	if (!before)
		FAIL("out of memory");
	if (nev)
		memcpy(before, t.ev, nev * sizeof(*before));
	for (size_t i = 1; i < nev; i++)
		if (before[i].line <= before[i - 1].line)
			FAIL("events at lines %llu and then %llu",
			     (unsigned long long)before[i - 1].line,
			     (unsigned long long)before[i].line);

	quiet();
	rc = trace_check(&t);
	loud();
	if (rc && rc != -1)
		FAIL("trace_check() = %d", rc);
	if (!rc)
		checked(&t, before, nev, nsnap);
	free(before);
	trace_free(&t);
	return 0;
}
