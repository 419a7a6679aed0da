/* SPDX-License-Identifier: MIT */
/*
 * fuzz_model.c - the model test (../model_ops.c) with its choices taken from
 * a fuzz input instead of a PRNG: the first bytes make the space (page size,
 * pages, base, lazy threshold, strict, vmap blocks, node pools,
 * asynchronous flushes), the rest are operations, each checked against the
 * model -- return value, address, flushed ranges, completions, every
 * counter, vmap_check() and, now and then, vmap_walk().  A disagreement
 * prints what differed and aborts.  One space per input, destroyed at its
 * end.
 */
#include <stddef.h>
#include <stdint.h>

#include "fuzz.h"
#include "../model.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	model_pin();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	model_feed(data, size);
	model_run_space(UINT64_MAX);
	model_end_space();
	return 0;
}
