/* SPDX-License-Identifier: MIT */
/*
 * seed_model.c - write a deep seed for fuzz_model's corpus: the model test's
 * run of one space from a PRNG seed, OPS steps long, recorded as the fuzz
 * input that replays it step for step.  A fuzzer seldom grows inputs long
 * enough to fill a space or to purge hundreds of areas at once (the radix
 * sort); these seeds start it there.  The input is replayed before it is
 * written: the same steps must end in the same counters.
 *   seed_model SEED OPS FILE
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../model.h"

int main(int argc, char **argv)
{
	static uint8_t buf[1 << 20];
	struct vmap_stats st;
	struct model_tally tl;
	uint64_t ops;
	size_t n;
	FILE *f;

	if (argc != 4) {
		fprintf(stderr, "usage: %s SEED OPS FILE\n", argv[0]);
		return 2;
	}
	model_seed(strtoull(argv[1], NULL, 0));
	model_record(buf, sizeof(buf));
	model_pin();
	model_run_space(strtoull(argv[2], NULL, 0));
	model_end_space();
	if (!(n = model_recorded())) {
		fprintf(stderr, "%s: more than %zu bytes\n", argv[0],
			sizeof(buf));
		return 1;
	}
	ops = model_ops();
	st = *model_stats();
	tl = *model_tally();
	model_feed(buf, n);
	model_run_space(UINT64_MAX);
	model_end_space();
	if (model_ops() != ops || memcmp(model_stats(), &st, sizeof(st))) {
		fprintf(stderr, "%s: the input does not replay the run\n",
			argv[0]);
		return 1;
	}
	if (!(f = fopen(argv[3], "wb")) || fwrite(buf, 1, n, f) != n ||
	    fclose(f)) {
		perror(argv[3]);
		return 1;
	}
	printf("%s: %zu bytes, %llu steps, %llu pages, largest purge %llu "
	       "areas, %llu vmap blocks, %llu from node pools", argv[3], n,
	       (unsigned long long)ops, (unsigned long long)st.total_pages,
	       (unsigned long long)st.purge_max_areas,
	       (unsigned long long)st.blocks_created,
	       (unsigned long long)st.cached_hits);
	if (tl.flights)	/* an async space: what its completions did */
		printf(", %llu flights, %llu completions (%llu out of order, "
		       "%llu of shared tokens, %llu from the callback, %llu "
		       "batches started completed)",
		       (unsigned long long)tl.flights,
		       (unsigned long long)tl.completed,
		       (unsigned long long)tl.out_of_order,
		       (unsigned long long)tl.shared,
		       (unsigned long long)tl.in_call,
		       (unsigned long long)tl.early);
	putchar('\n');
	return 0;
}
