/* SPDX-License-Identifier: MIT */
/*
 * trace.h - vmap-trace's pieces and how they talk.
 *
 * vmap-trace records the running kernel's own vmalloc (its three vmalloc
 * tracepoints) and replays a recording through vmap, side by side with what
 * the kernel did.  The pieces, one concept each:
 *
 *   format.c  the trace file: one event per line (docs/trace-format.md),
 *             read from vmap-trace's own files or from a raw tracefs
 *             `trace` / `trace_pipe` dump; every error names its line
 *   check.c   the trace's own consistency, before anything is replayed:
 *             every free matches an allocation, counts add up
 *   record.c  `vmap-trace record`: tracefs, the snapshot, the command
 *   replay.c  one replay of a trace on a range space, in one mode (seed,
 *             pool or legacy), in a process of its own; prints its results
 *   report.c  `vmap-trace replay`: runs each mode's child, compares with the
 *             kernel, prints the table, --json, --plot
 *   outfile.c result files, all or nothing
 *   memory.c  `vmap-trace replay --memory`: strace logs on a memory space,
 *             read by strace.c (lines, order) and mplan.c (the model)
 *   storm.c   vmap-storm, work for the kernel's vmalloc (its own program)
 *
 * Every mode's replay runs in a child process (the legacy mode is another
 * executable, vmap-trace-legacy, built from these sources against the
 * library's legacy build), which prints its results one per line to a pipe.
 */
#ifndef VMAP_TRACE_H
#define VMAP_TRACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define TRACE_FORMAT_VERSION 1

/* The kernel's names of its three vmalloc events, by enum ev_kind. */
extern const char *const trace_events[3];

enum ev_kind {
	EV_ALLOC,	/* alloc_vmap_area */
	EV_FREE,	/* free_vmap_area_noflush */
	EV_PURGE,	/* purge_vmap_area_lazy */
};

struct ev {
	uint64_t ts_ns;		/* the trace clock, ns */
	uint32_t cpu;
	uint32_t kind;		/* enum ev_kind */
	uint64_t line;		/* in the file, for errors */
	union {
		struct {	/* EV_ALLOC */
			uint64_t addr, size, align, vstart, vend;
			int failed;
		} a;
		struct {	/* EV_FREE */
			uint64_t addr, nr_lazy, nr_lazy_max;
		} f;
		struct {	/* EV_PURGE */
			uint64_t start, end, npurged;
		} p;
	};
	/* Filled in by check.c: */
	uint64_t size;		/* EV_FREE: the freed area's bytes */
	uint32_t flags;		/* EVF_* */
};

#define EVF_PRETRACE 0x1u	/* free of an area older than the trace
				   (raw dumps: size from nr_lazy) */
#define EVF_SIZE_GUESSED 0x2u	/* ... and nr_lazy could not tell its size */
#define EVF_SKIP 0x4u		/* before or inside the snapshot: its effect
				   is in the snapshot already */
#define EVF_EXPLICIT 0x8u	/* a purge the lazy threshold did not ask
				   for (vm_unmap_aliases, an allocation's
				   retry): replayed as vmap_purge.  A drain
				   that runs again at once because frees
				   queued it while it ran is not one */

/* An area alive (busy) or freed-not-purged (lazy) when the snapshot was
 * taken, from /proc/vmallocinfo. */
struct snap {
	uint64_t start, end;
	bool lazy;
	bool inferred;		/* not in a snapshot: a raw dump's free of an
				   area older than the trace (check.c) */
	uint64_t line;		/* in the file; 0 if inferred */
};

struct trace {
	char *path;
	bool raw;		/* a tracefs dump, not vmap-trace's format */
	uint64_t page_size;
	uint64_t cpus;		/* 0: unknown */
	char kernel[128];	/* uname -r, "" if unknown */
	char command[512];	/* what was recorded, "" if unknown */
	uint64_t lost;		/* events the kernel dropped (overruns) */
	struct ev *ev;
	size_t nev, cap;
	struct snap *snap;
	size_t nsnap, snapcap;
	bool has_snapshot;
	bool stopped;		/* vmap-trace record's stop marker was read */
	uint64_t snap_begin_ns, snap_end_ns;
	/* Filled in by check.c: */
	uint64_t nr_lazy_max;	/* the kernel's threshold, pages */
	uint64_t phantom_pages;	/* lazy before the trace and not in a
				   snapshot (raw dumps): from nr_lazy */
	uint64_t phantom_areas;	/* ... how many areas: from the first
				   purge's num_purged */
	size_t nalloc, nfree, npurge, nfailed;
	size_t reordered;	/* purges put where the kernel took its
				   lists, not where it wrote the event:
				   before an allocation that reused what
				   they released, before frees they did not
				   take, after frees they took (check.c) */
	size_t skipped;		/* events whose effect is in the snapshot */
	size_t guessed;		/* inferred areas of unknown size */
	size_t purge_slack;	/* areas a purge's count cannot be placed
				   for: taken beyond what the trace freed,
				   with no free after to explain them, or
				   left lazy from the snapshot (a purge
				   counting fewer than it holds) */
};

/* Errors: a message is printed to stderr as "FILE:LINE: what" and -1 is
 * returned; nothing else happens. */
int trace_read(const char *path, struct trace *t);
/* The same, with errors naming `name` (a spooled copy of a pipe). */
int trace_read_as(const char *path, const char *name, struct trace *t);
int trace_check(struct trace *t);
void trace_free(struct trace *t);
int trace_write(const struct trace *t, FILE *f);
/* Append a snapshot area (an error naming line if out of memory). */
int trace_push_snap(struct trace *t, const struct snap *s, uint64_t line);
/* One line of a raw tracefs dump, appended to t (record.c reads trace_pipe
 * with it).  s is modified. */
int trace_raw_line(struct trace *t, char *s, uint64_t line);

/* Report an error at a line of the trace; returns -1. */
int trace_error(const struct trace *t, uint64_t line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* A result file, all or nothing (outfile.c).  out_open makes the
 * temporary file at once (errors: errno set, -1); out_file is where to
 * write; out_commit puts it in place (-1 on any write error: a regular
 * file is then left as it was; what was written through a device, FIFO or
 * symlink stays written); out_abort undoes what it can. */
struct outfile {
	const char *path;
	char tmp[4096];
	FILE *f;
	bool through;		/* not a regular file: written into */
	unsigned mode;
};
int out_open(struct outfile *o, const char *path, unsigned mode);
FILE *out_file(struct outfile *o);
int out_commit(struct outfile *o);
void out_abort(struct outfile *o);

/* The subcommands. */
int record_main(int argc, char **argv);
int replay_main(int argc, char **argv);
int replay_child_main(int argc, char **argv);
int memory_main(int argc, char **argv);

/* The mode this executable can replay in: "seed" and "pool" in vmap-trace,
 * "legacy" in vmap-trace-legacy. */
bool replay_mode_here(const char *mode);

#endif
