/* SPDX-License-Identifier: MIT */
/* memory.c - `vmap-trace replay --memory`: (being written) */
#include <stdio.h>

#include "trace.h"

int memory_main(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	fprintf(stderr, "vmap-trace replay --memory: not built yet\n");
	return 1;
}
