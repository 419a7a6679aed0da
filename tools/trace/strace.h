/* SPDX-License-Identifier: MIT */
/*
 * strace.h - an `strace -f -e trace=memory` log, read into a replay plan.
 *
 * strace.c reads the log (joining the "<unfinished ...>" / "<... resumed>"
 * halves of calls that threads interleaved), checks every call against a
 * model of the program's address space, and turns the log into a *plan*: a
 * flat list of steps on *objects*.  An object is what one anonymous mmap
 * created; a step names it and an offset in it, never an address, so the
 * two replays in memory.c -- one on a vmap memory space, one with real
 * mmap/munmap -- can each put the object where their own allocator says
 * and still perform the same step.  The whole log is read and checked
 * before the plan is handed over: a replay never starts on half a log.
 *
 * See docs/trace-memory.md for what each system call becomes.
 */
#ifndef VMAP_TRACE_STRACE_H
#define VMAP_TRACE_STRACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One step of the plan. */
enum mop_kind {
	MOP_MAP,	/* new object `obj` of len bytes (mmap of anonymous
			   memory): vmap_vmalloc / mmap(NULL, len, arg) */
	MOP_UNMAP,	/* [off, off+len) of obj unmapped: munmap; vmap: vact */
	MOP_PROTECT,	/* mprotect(off, len, arg); vmap memory stays RW */
	MOP_ADVISE,	/* madvise(off, len, arg); vmap: only if vact is
			   VACT_ADVISE (advice that leaves the mapping alone) */
	MOP_FIXED,	/* mmap(MAP_FIXED) of fresh anonymous memory over live
			   pages of obj; vmap: VACT_RELEASE or nothing */
	MOP_REMAP,	/* mremap(off, len -> len2) of obj: whole live part
			   (obj2 == obj: vmap_vrealloc to vlen) or a piece of
			   it that becomes obj2 (vmalloc + copy; vact on obj) */
	MOP_TOUCH,	/* write a byte in every page of [off, off+len) */
};

/* mop.flags */
#define MOPF_IMPLICIT 0x1u	/* an unmap the kernel did inside another call
				   (exec, MAP_FIXED or MREMAP_FIXED over a
				   mapping): the mmap replay needs a munmap */
#define MOPF_NORESERVE 0x2u	/* MOP_MAP: the program's MAP_NORESERVE */
#define MOPF_STACK 0x4u		/* MOP_MAP: the program's MAP_STACK */

/* What the vmap replay does to obj's area, besides the step itself. */
enum mop_vact {
	VACT_NONE,
	VACT_FREE,	/* no live page left: vmap_vfree */
	VACT_SHRINK,	/* the live part ends before the area does:
			   vmap_vrealloc down to vlen */
	VACT_KEEP,	/* head or middle gone: the area stays whole */
	VACT_RELEASE,	/* as KEEP, but the pages had been touched:
			   madvise(MADV_DONTNEED) them */
	VACT_ADVISE,	/* MOP_ADVISE: do it on the area too */
};

struct mop {
	uint8_t kind;		/* enum mop_kind */
	uint8_t vact;		/* enum mop_vact */
	uint16_t flags;		/* MOPF_* */
	int32_t arg;		/* prot, or advice */
	uint32_t obj, obj2;
	uint64_t off, len, len2;
	uint64_t vlen;		/* obj's vmap area length after the step */
	uint64_t probe;		/* MOP_REMAP: an offset in obj2 that was
				   touched and must still read as touched, or
				   UINT64_MAX (--check) */
	uint64_t live;		/* anonymous bytes live after the step, in the
				   whole program (--check: conservation) */
	uint64_t obj_live;	/* ... of obj */
	uint64_t line;		/* the log line of the call */
};

/* What the log held, and what reading it skipped.  calls[] and the named
 * counts are calls of the log; the rest are what the plan made of them. */
struct mlog_stats {
	uint64_t lines, threads;
	uint64_t mmap_anon, mmap_file, mmap_shared_anon;
	uint64_t munmap, mremap, mprotect, madvise, brk, other;
	uint64_t failed;	/* returned an error: skipped */
	uint64_t interrupted;	/* unfinished when the thread exited, or
				   "= ?": skipped */
	uint64_t unknown;	/* on memory the log never showed mapped
				   (mapped before the log began, or by the
				   kernel at exec): skipped */
	uint64_t file_calls;	/* munmap/mprotect/madvise/mremap of file
				   mappings only: skipped */
	uint64_t objects;	/* anonymous mappings the replays create */
	uint64_t kept;		/* partial unmaps of a head or middle: the
				   vmap area stays (VACT_KEEP, _RELEASE) */
	uint64_t shrinks;	/* partial unmaps of a tail: vmap_vrealloc */
	uint64_t remaps, remap_splits;
	uint64_t advise_skipped;	/* madvise vmap must not do (it would
					   change the mapping): mmap replay only */
	uint64_t protect_steps;	/* mprotect steps: mmap replay only */
	uint64_t touched_pages;	/* pages written, per replay */
	uint64_t peak_live;	/* most anonymous bytes live at once */
	uint64_t peak_vlen;	/* most bytes of vmap areas live at once */
	bool from_start;	/* the log begins at the program's start */
};

struct mplan {
	const char *path;
	uint64_t page;		/* page size of the log's machine (= ours) */
	struct mop *op;
	size_t nop, cap;
	uint32_t nobj;
	struct mlog_stats st;
};

struct mplan_opts {
	bool attached;		/* the log did not start at exec: a munmap of
				   memory never seen is skipped, not an error */
	bool check;		/* also check the model's invariants per call */
};

/*
 * Read the strace log at path into *p.  On error prints "PATH:LINE: what is
 * wrong" (or "PATH: what") to stderr, frees what it made and returns -1.
 */
int mplan_read(const char *path, const struct mplan_opts *o, struct mplan *p);
void mplan_free(struct mplan *p);

/* "mmap", "munmap", ... for a step, for messages. */
const char *mop_name(unsigned kind);

#endif
