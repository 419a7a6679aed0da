/* SPDX-License-Identifier: MIT */
/*
 * fuzz.h - the libFuzzer entry points each fuzz target defines.  With clang's
 * -fsanitize=fuzzer, libFuzzer's main calls them; with gcc, replay.c's main
 * runs them over the files of a corpus.  Then what the targets share: how a
 * finding is reported, moving between CPUs, and the purges of a purging
 * thread and of the operations' thread.
 */
#ifndef VMAP_FUZZ_H
#define VMAP_FUZZ_H

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <vmap.h>

#include "../draw.h"

/* Once, before the first input. */
int LLVMFuzzerInitialize(int *argc, char ***argv);
/* One input; returns 0, or aborts on a finding. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* ---- what the targets with a purging thread share ---- */

/* A finding: print where (the target's file and line) and what, and
 * abort, so libFuzzer saves the input and replay stops on it. */
#define FAIL(...)                                                           \
	do {                                                                \
		fprintf(stderr, "%s:%d: ", __FILE_NAME__, __LINE__);        \
		fprintf(stderr, __VA_ARGS__);                               \
		fputc('\n', stderr);                                        \
		abort();                                                    \
	} while (0)

#define EQUAL(a, b)                                                         \
	do {                                                                \
		if ((uint64_t)(a) != (uint64_t)(b))                         \
			FAIL("%s = %llu, but %s = %llu", #a,                \
			     (unsigned long long)(a), #b,                   \
			     (unsigned long long)(b));                      \
	} while (0)

/* The CPUs this process may run on, for fuzz_move_to to come back to. */
static inline void fuzz_all_cpus(cpu_set_t *all)
{
	if (sched_getaffinity(0, sizeof(*all), all))
		FAIL("sched_getaffinity: %s", strerror(errno));
}

/* This thread onto the CPUs of *set (back to all at the end of an input). */
static inline void fuzz_pin(const cpu_set_t *set)
{
	if (sched_setaffinity(0, sizeof(*set), set))
		FAIL("sched_setaffinity: %s", strerror(errno));
}

/* To one CPU of *all, or back to all: vmap block pieces then come from, and
 * go back to, other CPUs' blocks.  One draw of CPU_COUNT(all) + 1. */
static inline void fuzz_move_to(struct draw *d, const cpu_set_t *all)
{
	int n = CPU_COUNT(all), k = (int)draw(d, (uint64_t)n + 1);
	cpu_set_t set = *all;

	if (k < n) {
		CPU_ZERO(&set);
		for (int c = 0; c < CPU_SETSIZE; c++)
			if (CPU_ISSET(c, all) && k-- == 0)
				CPU_SET(c, &set);
	}
	fuzz_pin(&set);
}

/* An input's second thread: fn(arg) runs while fuzz_thread_running(). */
struct fuzz_thread {
	pthread_t id;
	atomic_bool stop;
};

static inline void fuzz_thread_start(struct fuzz_thread *t,
				     void *(*fn)(void *), void *arg)
{
	int err;

	atomic_store(&t->stop, false);
	if ((err = pthread_create(&t->id, NULL, fn, arg)))
		FAIL("pthread_create: %s", strerror(err));
}

static inline bool fuzz_thread_running(struct fuzz_thread *t)
{
	return !atomic_load_explicit(&t->stop, memory_order_relaxed);
}

static inline void fuzz_thread_stop(struct fuzz_thread *t)
{
	atomic_store(&t->stop, true);
	pthread_join(t->id, NULL);
}

/* One step of a purging thread, chosen by *rng: vmap_purge in one of its
 * four modes, vmap_unmap_aliases, or vmap_stats -- a snapshot taken while
 * the operations run, so only what holds whatever they do is checked: free
 * and lazy pages within the space's npages.  (Busy pages are summed shard
 * by shard as areas come and go: that sum may pass the space's size.) */
static inline void fuzz_purge_step(vmap_space *space, uint64_t *rng,
				   uint64_t npages)
{
	struct vmap_stats st = { .size = sizeof(st) };
	unsigned how = (unsigned)(test_rand(rng) % 6);
	int err;

	if (how == 4) {
		if ((err = vmap_unmap_aliases(space)))
			FAIL("purger: vmap_unmap_aliases() = %d", err);
	} else if (how == 5) {
		if ((err = vmap_stats(space, &st)) || st.free_pages > npages ||
		    st.lazy_pages > npages)
			FAIL("purger: vmap_stats() = %d, free %llu lazy %llu of "
			     "%llu pages", err, (unsigned long long)st.free_pages,
			     (unsigned long long)st.lazy_pages,
			     (unsigned long long)npages);
	} else if ((err = vmap_purge(space, how)) &&
		   !(err == -EBUSY && how == VMAP_PURGE_TRY)) {
		FAIL("purger: vmap_purge(%u) = %d", how, err);
	}
}

/* A purge from the operations' thread: one draw of 5 picks vmap_purge's
 * mode (0-3) or vmap_unmap_aliases (4); returns the choice.  Only a TRY
 * may find another purge running (-EBUSY). */
static inline unsigned fuzz_op_purge(vmap_space *space, struct draw *d)
{
	unsigned how = (unsigned)draw(d, 5);
	int err;

	if (how == 4) {
		if ((err = vmap_unmap_aliases(space)))
			FAIL("vmap_unmap_aliases() = %d", err);
	} else if ((err = vmap_purge(space, how)) &&
		   !(err == -EBUSY && how == VMAP_PURGE_TRY)) {
		FAIL("vmap_purge(%u) = %d", how, err);
	}
	return how;
}

#endif
