/* SPDX-License-Identifier: MIT */
/*
 * vmap-trace: record the running kernel's vmalloc, replay it through vmap.
 *
 *   vmap-trace record [-o FILE] [-- COMMAND...]
 *   vmap-trace replay [--json FILE] [--plot FILE.png] [--modes LIST]
 *                     [--check] [--rounds N] [--purge-at kernel|vmap] FILE
 *   vmap-trace replay --memory [--json FILE] [--rounds N] [--check]
 *                     [--attached] [--plan] STRACE-LOG
 *   vmap-trace check FILE      read and check a trace, replay nothing
 *
 * See trace.h for the pieces, docs/trace-format.md for the file format.
 */
#include <stdio.h>
#include <string.h>

#include "trace.h"

static int usage(FILE *f, int rc)
{
	fprintf(f,
		"usage: vmap-trace record [-o FILE] [-- COMMAND [ARG...]]\n"
		"       vmap-trace replay [--json FILE] [--plot FILE.png]\n"
		"                         [--modes seed,pool,legacy] [--check]\n"
		"                         [--rounds N] [--purge-at kernel|vmap] FILE\n"
		"       vmap-trace replay --memory [--json FILE] [--rounds N] [--check]\n"
		"                         [--attached] [--plan] STRACE-LOG\n"
		"       vmap-trace check FILE\n"
		"record needs root; FILE may be vmap-trace's own format or a raw\n"
		"tracefs trace / trace_pipe dump of the vmalloc events.\n");
	return rc;
}

static int check_main(int argc, char **argv)
{
	struct trace t;
	int rc;

	if (argc != 2)
		return usage(stderr, 2);
	if (trace_read(argv[1], &t))
		return 1;
	rc = trace_check(&t);
	if (rc)
		goto out;
	printf("%s: consistent: %zu allocations (%zu failed), %zu frees, "
	       "%zu purges; nr_lazy_max %llu pages\n", argv[1], t.nalloc,
	       t.nfailed, t.nfree, t.npurge,
	       (unsigned long long)t.nr_lazy_max);
	if (t.raw)
		printf("  a raw dump: %zu areas older than it inferred from "
		       "their frees (%zu of unknown size); %llu pages lazy "
		       "when it began, %llu areas by its first purge\n",
		       t.nsnap, t.guessed,
		       (unsigned long long)t.phantom_pages,
		       (unsigned long long)t.phantom_areas);
	else
		printf("  snapshot: %zu areas; %zu events inside it "
		       "reconciled\n", t.nsnap, t.skipped);
	printf("  %zu purges put where the kernel took its lists; "
	       "%zu areas purged beyond what was freed\n", t.reordered,
	       t.purge_slack);
out:
	trace_free(&t);
	return rc ? 1 : 0;
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return usage(stderr, 2);
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))
		return usage(stdout, 0);
	if (!strcmp(argv[1], "record"))
		return record_main(argc - 1, argv + 1);
	if (!strcmp(argv[1], "check"))
		return check_main(argc - 1, argv + 1);
	if (!strcmp(argv[1], "--child"))	/* one mode's replay */
		return replay_child_main(argc - 1, argv + 1);
	if (!strcmp(argv[1], "replay")) {
		for (int i = 2; i < argc; i++)
			if (!strcmp(argv[i], "--memory"))
				return memory_main(argc - 1, argv + 1);
		return replay_main(argc - 1, argv + 1);
	}
	fprintf(stderr, "vmap-trace: unknown command '%s'\n", argv[1]);
	return usage(stderr, 2);
}
