/* SPDX-License-Identifier: MIT */
/*
 * strace_int.h - between strace.c (reading an strace log: its lines and
 * their order) and mplan.c (the model of the program's address space that
 * turns the calls into a replay plan).  Not for memory.c: strace.h is.
 */
#ifndef VMAP_TRACE_STRACE_INT_H
#define VMAP_TRACE_STRACE_INT_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "strace.h"

/* The system calls of a -e trace=memory log, by what the model does. */
enum sys { S_MMAP, S_MUNMAP, S_MREMAP, S_MPROTECT, S_MADVISE, S_BRK,
	   S_OTHER, S_EXEC };

/* The mmap flags and protections the model reads (the kernel's values). */
#define F_TYPE 0xfu
#define F_PRIVATE 0x2u
#define F_FIXED 0x10u
#define F_ANON 0x20u
#define F_NORESERVE 0x4000u
#define F_STACK 0x20000u
#define F_NOREPLACE 0x100000u
#define P_READ 1u
#define P_WRITE 2u

/* The advice values the model treats apart. */
#define A_WILLNEED 3
#define A_DONTNEED 4
#define A_FREE 8
#define A_COLD 20
#define A_PAGEOUT 21
#define A_POPULATE_WRITE 23
#define A_HWPOISON 100

/* One call of the log, joined from its halves. */
struct call {
	uint64_t line;		/* where it starts */
	uint64_t key;		/* where it takes effect (pass 2) */
	long pid;
	int sys;
	uint64_t a[6];		/* arguments */
	int na;
	uint64_t ret;
	bool first_brk0;	/* brk(NULL): the first call of a program */
};

/* A piece of the program's address space, as the model knows it. */
struct piece {
	uint64_t start, end;
	uint32_t obj;		/* anonymous pieces: the object */
	uint8_t anon;
	uint8_t prot;
	uint8_t touched;	/* written since mapped or last released */
};

/* An anonymous mapping: its pieces sit at base + offset in the program. */
struct mobj {
	uint64_t base;
	uint64_t vlen;		/* the vmap area's length: where its last
				   live piece ends (offsets) */
	uint64_t live;		/* bytes of its live pieces */
};

/* The reader's state: one log, read by one thread. */
struct rd {
	const char *path;
	struct mplan *p;
	const struct mplan_opts *o;
	struct call *c;
	size_t nc, ccap;
	struct piece *pc;
	size_t npc, pccap;
	struct mobj *obj;
	size_t objcap;
	uint64_t live, vlen_total;
	uint64_t line;		/* of the call the model is running */
};

/* "PATH:LINE: what" (or "PATH: what") on stderr; returns -1. */
int strace_verr(const struct rd *r, uint64_t line, const char *fmt,
		va_list ap);

static inline __attribute__((format(printf, 3, 4))) int
err(const struct rd *r, uint64_t line, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = strace_verr(r, line, fmt, ap);
	va_end(ap);
	return rc;
}

/* v grown to hold n + 1 items of size bytes (*cap updated); NULL if not. */
static inline void *grow(void *v, size_t *cap, size_t n, size_t size)
{
	size_t c = *cap ? *cap : 64;

	if (n < *cap)
		return v;
	while (c <= n)
		c *= 2;
	v = realloc(v, c * size);
	if (v)
		*cap = c;
	return v;
}

/* Pass 1 (strace.c): every line into r->c; pass 2: the calls in the order
 * they take effect. */
int strace_read_lines(struct rd *r);
void strace_order(struct rd *r);

#endif
