/* SPDX-License-Identifier: MIT */
/*
 * test.h - the few macros every test uses.  A failed CHECK prints where and
 * what, and the test goes on; main returns test_summary().
 */
#ifndef VMAP_TEST_H
#define VMAP_TEST_H

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static int test_failures, test_checks;

#define CHECK(cond)                                                         \
	do {                                                                \
		test_checks++;                                              \
		if (!(cond)) {                                              \
			test_failures++;                                    \
			fprintf(stderr, "%s:%d: CHECK failed: %s\n",        \
				__FILE__, __LINE__, #cond);                 \
		}                                                           \
	} while (0)

/* Compare two integers and print both on failure. */
#define CHECK_EQ(a, b)                                                      \
	do {                                                                \
		long long _a = (long long)(a), _b = (long long)(b);         \
		test_checks++;                                              \
		if (_a != _b) {                                             \
			test_failures++;                                    \
			fprintf(stderr,                                     \
				"%s:%d: CHECK_EQ failed: %s == %s "         \
				"(%lld != %lld; %#llx != %#llx)\n",         \
				__FILE__, __LINE__, #a, #b, _a, _b,         \
				(unsigned long long)_a,                     \
				(unsigned long long)_b);                    \
		}                                                           \
	} while (0)

/* A fatal check: print, then stop the test. */
#define REQUIRE(cond)                                                       \
	do {                                                                \
		if (!(cond)) {                                              \
			fprintf(stderr, "%s:%d: REQUIRE failed: %s\n",      \
				__FILE__, __LINE__, #cond);                 \
			exit(1);                                            \
		}                                                           \
	} while (0)

static inline int test_summary(const char *name)
{
	printf("%s: %d checks, %d failed\n", name, test_checks, test_failures);
	return test_failures ? 1 : 0;
}

/* splitmix64: small, fast, and a seed replays a run exactly. */
static inline uint64_t test_rand(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* The seed: $VMAP_SEED if set, else from the clock; always printed. */
static inline uint64_t test_seed(const char *name)
{
	const char *env = getenv("VMAP_SEED");
	uint64_t seed;

	if (env) {
		seed = strtoull(env, NULL, 0);
	} else {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		seed = (uint64_t)ts.tv_sec * 1000000007ULL ^ (uint64_t)ts.tv_nsec;
	}
	printf("%s: seed %#" PRIx64 " (replay with VMAP_SEED=%#" PRIx64 ")\n",
	       name, seed, seed);
	return seed;
}

/* With vmap.h included first: a space's stats, all fields. */
#ifdef VMAP_H
#include <string.h>

static inline struct vmap_stats test_stats(vmap_space *s)
{
	struct vmap_stats st;

	memset(&st, 0, sizeof(st));
	st.size = sizeof(st);
	REQUIRE(vmap_stats(s, &st) == 0);
	return st;
}
#endif

#endif
