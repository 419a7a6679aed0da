/* SPDX-License-Identifier: MIT */
/*
 * model.h - the model test's engine (model.c), for its drivers:
 * model_test.c draws the choices from a PRNG, fuzz/fuzz_model.c from a fuzz
 * input's bytes, fuzz/seed_model.c records a seeded run as a fuzz input.
 *
 * A driver picks the source (model_seed or model_feed), then makes a space
 * (model_new_space: the first choices say which) and runs operations on it
 * (model_step; or both, model_run_space), each checked against the model;
 * the first disagreement prints what differed and stops the process --
 * exit(1) from a seed, abort() from a fuzz input.  The thread must be
 * pinned (model_pin) first: the model knows one CPU's vmap blocks.
 */
#ifndef VMAP_TEST_MODEL_H
#define VMAP_TEST_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <vmap.h>

void model_seed(uint64_t seed);
/* The bytes must stay valid until the next model_feed or model_seed. */
void model_feed(const uint8_t *data, size_t size);
/* A choice in [0, n) from the same source. */
uint64_t model_rnd(uint64_t n);
/* From a seed: record every choice from now on into buf, as the fuzz input
 * that makes the same choices; model_recorded() is its length, 0 if it did
 * not fit in cap. */
void model_record(uint8_t *buf, size_t cap);
size_t model_recorded(void);

void model_pin(void);
/* Destroys the previous space, if any, and makes a new one. */
void model_new_space(void);
/* One operation, checked; p_alloc: how often, in %, it allocates rather
 * than frees. */
void model_step(unsigned p_alloc);
/* A new space and steps on it, as a fuzz input runs: until the input is all
 * drawn (or max_ops steps), with a new fill/drain balance every 256. */
void model_run_space(uint64_t max_ops);
void model_end_space(void);

/* For a driver's summary. */
uint64_t model_ops(void);			/* steps since the source */
const struct vmap_stats *model_stats(void);	/* of the current space */
bool model_small_areas(void);	/* a space of 1- and 2-page areas */
int model_checks(void);

#endif
