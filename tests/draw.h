/* SPDX-License-Identifier: MIT */
/*
 * draw.h - where a randomised test's choices come from: a seeded PRNG (a
 * test run, replayed by its seed) or the bytes of a fuzz input (so that the
 * fuzzer's mutations steer the choices).
 *
 * draw(d, n) is a number in [0, n).  From a PRNG it is test_rand() % n, as
 * the tests always drew, so old seeds replay the same runs.  From bytes it
 * takes as few as hold n - 1 (one byte for n <= 256, none for n <= 1), so
 * that one mutated byte changes one choice.  Past the end of the bytes a
 * PRNG takes over: a loop that draws until it likes a value still ends, and
 * the same input always runs the same way.
 *
 * A PRNG's draws can be recorded as the bytes that draw them again: a seeded
 * run, saved so, is a fuzz input that replays it (deep seeds for a corpus).
 */
#ifndef VMAP_TEST_DRAW_H
#define VMAP_TEST_DRAW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "test.h"

struct draw {
	const uint8_t *p;	/* bytes not drawn yet */
	size_t left;
	uint64_t rng;		/* the PRNG: alone, or past the bytes */
	uint8_t *rec;		/* recording a PRNG's draws, if not NULL */
	size_t nrec, cap;
	bool lost;		/* ... and some did not fit */
};

static inline void draw_seed(struct draw *d, uint64_t seed)
{
	*d = (struct draw){ .rng = seed };
}

static inline void draw_feed(struct draw *d, const uint8_t *p, size_t n)
{
	*d = (struct draw){ .p = p, .left = n, .rng = n };
}

static inline void draw_record(struct draw *d, uint8_t *buf, size_t cap)
{
	d->rec = buf;
	d->cap = cap;
	d->nrec = 0;
	d->lost = false;
}

/* Fed bytes all drawn (always true of a PRNG). */
static inline bool draw_done(const struct draw *d)
{
	return !d->left;
}

/* v < n, as the bytes that draw it: the fewest that hold n - 1. */
static inline void draw_put(struct draw *d, uint64_t v, uint64_t n)
{
	int k = 0;

	for (uint64_t max = n - 1; max; max >>= 8)
		k++;
	if (d->nrec + (size_t)k > d->cap) {
		d->lost = true;
		return;
	}
	while (k--)
		d->rec[d->nrec++] = (uint8_t)(v >> (8 * k));
}

static inline uint64_t draw(struct draw *d, uint64_t n)
{
	uint64_t v = 0;

	if (!d->left) {
		v = n ? test_rand(&d->rng) % n : 0;
		if (d->rec && n > 1)
			draw_put(d, v, n);
		return v;
	}
	if (n <= 1)
		return 0;
	for (uint64_t max = n - 1; max; max >>= 8) {
		if (!d->left)
			return test_rand(&d->rng) % n;
		v = v << 8 | *d->p++;
		d->left--;
	}
	return v % n;
}

#endif
