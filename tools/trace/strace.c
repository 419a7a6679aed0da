/* SPDX-License-Identifier: MIT */
/*
 * strace.c - an `strace -f -e trace=memory` log, read into a replay plan.
 *
 * Three passes, each finished before the next starts, so a bad log is
 * rejected before anything is replayed:
 *   1. lines: every line is either a call, one half of a call two threads
 *      interleaved ("<unfinished ...>" / "<... NAME resumed>", joined here
 *      by pid), or a line strace writes about a thread ("+++ exited",
 *      "--- SIGCHLD"), which is skipped.  Failed calls ("= -1 ENOMEM") and
 *      calls whose thread exited inside them are skipped too.
 *   2. order: a call that frees (munmap) is placed where it started, any
 *      other where it returned -- so an address one thread freed and
 *      another got back is never live twice, whichever line came first.
 *   3. model: the calls run against a model of the program's address space
 *      (pieces: anonymous or file, protection, touched or not, and the
 *      anonymous mapping -- the *object* -- each piece belongs to), which
 *      checks them and writes the plan's steps (strace.h).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "strace.h"

/* The system calls of a -e trace=memory log, by what the model does. */
enum sys { S_MMAP, S_MUNMAP, S_MREMAP, S_MPROTECT, S_MADVISE, S_BRK,
	   S_OTHER, S_EXEC };

static const struct { const char *name; int sys; } sys_names[] = {
	{ "mmap", S_MMAP }, { "mmap2", S_MMAP }, { "old_mmap", S_MMAP },
	{ "munmap", S_MUNMAP }, { "mremap", S_MREMAP },
	{ "mprotect", S_MPROTECT }, { "pkey_mprotect", S_MPROTECT },
	{ "madvise", S_MADVISE }, { "brk", S_BRK },
	/* the rest of strace's %memory class: counted, not replayed */
	{ "msync", S_OTHER }, { "mincore", S_OTHER }, { "mlock", S_OTHER },
	{ "mlock2", S_OTHER }, { "munlock", S_OTHER },
	{ "mlockall", S_OTHER }, { "munlockall", S_OTHER },
	{ "mbind", S_OTHER }, { "set_mempolicy", S_OTHER },
	{ "get_mempolicy", S_OTHER }, { "migrate_pages", S_OTHER },
	{ "move_pages", S_OTHER }, { "remap_file_pages", S_OTHER },
	{ "process_madvise", S_OTHER }, { "process_mrelease", S_OTHER },
	{ "set_mempolicy_home_node", S_OTHER }, { "map_shadow_stack", S_OTHER },
	{ "mseal", S_OTHER }, { "pkey_alloc", S_OTHER },
	{ "pkey_free", S_OTHER },
	/* -e trace=memory,execve: marks the program's start */
	{ "execve", S_EXEC }, { "execveat", S_EXEC },
};

struct flag { const char *name; uint64_t val; };

static const struct flag map_flags[] = {
	{ "MAP_SHARED", 0x1 }, { "MAP_PRIVATE", 0x2 },
	{ "MAP_SHARED_VALIDATE", 0x3 }, { "MAP_DROPPABLE", 0x8 },
	{ "MAP_FIXED", 0x10 }, { "MAP_ANONYMOUS", 0x20 }, { "MAP_ANON", 0x20 },
	{ "MAP_32BIT", 0x40 }, { "MAP_GROWSDOWN", 0x100 },
	{ "MAP_DENYWRITE", 0x800 }, { "MAP_EXECUTABLE", 0x1000 },
	{ "MAP_LOCKED", 0x2000 }, { "MAP_NORESERVE", 0x4000 },
	{ "MAP_POPULATE", 0x8000 }, { "MAP_NONBLOCK", 0x10000 },
	{ "MAP_STACK", 0x20000 }, { "MAP_HUGETLB", 0x40000 },
	{ "MAP_SYNC", 0x80000 }, { "MAP_FIXED_NOREPLACE", 0x100000 },
	{ "MAP_UNINITIALIZED", 0x4000000 }, { NULL, 0 },
};
#define F_TYPE 0xfu
#define F_PRIVATE 0x2u
#define F_FIXED 0x10u
#define F_ANON 0x20u
#define F_NORESERVE 0x4000u
#define F_STACK 0x20000u
#define F_NOREPLACE 0x100000u

static const struct flag prot_flags[] = {
	{ "PROT_NONE", 0 }, { "PROT_READ", 1 }, { "PROT_WRITE", 2 },
	{ "PROT_EXEC", 4 }, { "PROT_SEM", 8 },
	{ "PROT_GROWSDOWN", 0x01000000 }, { "PROT_GROWSUP", 0x02000000 },
	{ NULL, 0 },
};
#define P_READ 1u
#define P_WRITE 2u

static const struct flag mremap_flags[] = {
	{ "MREMAP_MAYMOVE", 1 }, { "MREMAP_FIXED", 2 },
	{ "MREMAP_DONTUNMAP", 4 }, { NULL, 0 },
};

static const struct flag madv_names[] = {
	{ "MADV_NORMAL", 0 }, { "MADV_RANDOM", 1 }, { "MADV_SEQUENTIAL", 2 },
	{ "MADV_WILLNEED", 3 }, { "MADV_DONTNEED", 4 }, { "MADV_FREE", 8 },
	{ "MADV_REMOVE", 9 }, { "MADV_DONTFORK", 10 }, { "MADV_DOFORK", 11 },
	{ "MADV_MERGEABLE", 12 }, { "MADV_UNMERGEABLE", 13 },
	{ "MADV_HUGEPAGE", 14 }, { "MADV_NOHUGEPAGE", 15 },
	{ "MADV_DONTDUMP", 16 }, { "MADV_DODUMP", 17 },
	{ "MADV_WIPEONFORK", 18 }, { "MADV_KEEPONFORK", 19 },
	{ "MADV_COLD", 20 }, { "MADV_PAGEOUT", 21 },
	{ "MADV_POPULATE_READ", 22 }, { "MADV_POPULATE_WRITE", 23 },
	{ "MADV_DONTNEED_LOCKED", 24 }, { "MADV_COLLAPSE", 25 },
	{ "MADV_HWPOISON", 100 }, { "MADV_SOFT_OFFLINE", 101 },
	{ "MADV_GUARD_INSTALL", 102 }, { "MADV_GUARD_REMOVE", 103 },
	{ NULL, 0 },
};
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

static int err(const struct rd *r, uint64_t line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int err(const struct rd *r, uint64_t line, const char *fmt, ...)
{
	va_list ap;

	if (line)
		fprintf(stderr, "%s:%llu: ", r->path, (unsigned long long)line);
	else
		fprintf(stderr, "%s: ", r->path);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return -1;
}

static void *grow(void *v, size_t *cap, size_t n, size_t size)
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

/* ---- pass 1: lines ---------------------------------------------------- */

static const char *skip_sp(const char *s, const char *e)
{
	while (s < e && (*s == ' ' || *s == '\t'))
		s++;
	return s;
}

static bool isdig(char c) { return c >= '0' && c <= '9'; }

/* A number as strace prints it: NULL, 0x..., decimal, -1. */
static bool parse_num(const char *s, const char *e, uint64_t *v)
{
	uint64_t x = 0;
	bool neg = false;
	int base = 10;

	if (e - s == 4 && !memcmp(s, "NULL", 4)) {
		*v = 0;
		return true;
	}
	if (s < e && *s == '-') {
		neg = true;
		s++;
	}
	if (e - s > 2 && s[0] == '0' && s[1] == 'x') {
		base = 16;
		s += 2;
	}
	if (s == e)
		return false;
	for (; s < e; s++) {
		int d;

		if (isdig(*s))
			d = *s - '0';
		else if (base == 16 && *s >= 'a' && *s <= 'f')
			d = *s - 'a' + 10;
		else if (base == 16 && *s >= 'A' && *s <= 'F')
			d = *s - 'A' + 10;
		else
			return false;
		if (x > (UINT64_MAX - (uint64_t)d) / (uint64_t)base)
			return false;
		x = x * (uint64_t)base + (uint64_t)d;
	}
	*v = neg ? (uint64_t)0 - x : x;
	return true;
}

/* An fd, perhaps decorated by -y: 3</usr/lib/libc.so.6>. */
static bool parse_fd(const char *s, const char *e, uint64_t *v)
{
	const char *lt = memchr(s, '<', (size_t)(e - s));

	return parse_num(s, lt && e[-1] == '>' ? lt : e, v);
}

static bool is_name(const char *s, const char *e, const char *prefix)
{
	size_t n = strlen(prefix);

	if ((size_t)(e - s) <= n || memcmp(s, prefix, n))
		return false;
	for (; s < e; s++)
		if (!((*s >= 'A' && *s <= 'Z') || isdig(*s) || *s == '_'))
			return false;
	return true;
}

/*
 * FLAG|FLAG|0x40: names from the table, numbers, "21<<MAP_HUGE_SHIFT", and
 * names of the table's prefix this reader does not know (a newer strace's):
 * those mean nothing to the replay and count as 0.
 */
static bool parse_flags(const char *s, const char *e, const struct flag *t,
			const char *prefix, uint64_t *v)
{
	*v = 0;
	while (s < e) {
		const char *bar = memchr(s, '|', (size_t)(e - s));
		const char *te = bar ? bar : e;
		const char *shl = NULL;
		uint64_t x;
		int i;

		for (const char *q = s; q + 1 < te; q++)
			if (q[0] == '<' && q[1] == '<')
				shl = q;
		if (shl && parse_num(s, shl, &x) && is_name(shl + 2, te, prefix)) {
			x = 0; /* a huge page size: nothing to the replay */
		} else if (!parse_num(s, te, &x)) {
			for (i = 0; t[i].name; i++)
				if (strlen(t[i].name) == (size_t)(te - s) &&
				    !memcmp(t[i].name, s, (size_t)(te - s)))
					break;
			if (t[i].name)
				x = t[i].val;
			else if (is_name(s, te, prefix))
				x = 0;
			else
				return false;
		}
		*v |= x;
		s = bar ? bar + 1 : e;
	}
	return true;
}

/* madvise's advice: a known name, a number, or an unknown MADV_ name (-1). */
static bool parse_advice(const char *s, const char *e, uint64_t *v)
{
	if (parse_num(s, e, v))
		return true;
	for (int i = 0; madv_names[i].name; i++)
		if (strlen(madv_names[i].name) == (size_t)(e - s) &&
		    !memcmp(madv_names[i].name, s, (size_t)(e - s))) {
			*v = madv_names[i].val;
			return true;
		}
	*v = UINT64_MAX;
	return is_name(s, e, "MADV_");
}

/*
 * Find the ')' that closes the argument list, starting inside it: nesting
 * of () [] {}, quoted strings, and -y's fd decorations (3</path>, whose path
 * may hold anything) are stepped over.  NULL if the line ends first.
 */
static const char *close_paren(const char *s, const char *e)
{
	int depth = 0;

	for (; s < e; s++) {
		if (*s == '"') {
			for (s++; s < e && *s != '"'; s++)
				if (*s == '\\')
					s++;
			if (s >= e)
				return NULL;
		} else if (*s == '<' && s[-1] >= '0' && s[-1] <= '9') {
			s = memchr(s, '>', (size_t)(e - s));
			if (!s)
				return NULL;
		} else if (*s == '(' || *s == '[' || *s == '{') {
			depth++;
		} else if (*s == ')' || *s == ']' || *s == '}') {
			if (!depth--)
				return *s == ')' ? s : NULL;
		}
	}
	return NULL;
}

/* Split "a, b, c" at top-level commas into at most 6 [s, e) pairs. */
static int split_args(const char *s, const char *e, const char **as,
		      const char **ae)
{
	int n = 0;

	s = skip_sp(s, e);
	if (s == e)
		return 0;
	while (n < 6) {
		const char *q = s;
		int depth = 0;

		for (; q < e; q++) {
			if (*q == '<' && q > s && isdig(q[-1])) {
				const char *gt = memchr(q, '>', (size_t)(e - q));
				q = gt ? gt : e - 1;
			} else if (*q == '(' || *q == '[' || *q == '{') {
				depth++;
			} else if (*q == ')' || *q == ']' || *q == '}') {
				depth--;
			} else if (*q == ',' && !depth) {
				break;
			}
		}
		as[n] = s;
		ae[n] = q;
		while (ae[n] > as[n] && ae[n][-1] == ' ')
			ae[n]--;
		n++;
		if (q >= e)
			return n;
		s = skip_sp(q + 1, e);
	}
	return -1;
}

static const char *arg_name(int sys, int i)
{
	static const char *const names[][6] = {
		[S_MMAP] = { "address", "length", "protection", "flags",
			     "fd", "offset" },
		[S_MUNMAP] = { "address", "length" },
		[S_MREMAP] = { "old address", "old length", "new length",
			       "flags", "new address" },
		[S_MPROTECT] = { "address", "length", "protection", "pkey" },
		[S_MADVISE] = { "address", "length", "advice" },
		[S_BRK] = { "address" },
	};

	return names[sys][i] ? names[sys][i] : "argument";
}

/* Parse the joined argument text of c's system call into c->a. */
static int parse_args(struct rd *r, struct call *c, const char *name,
		      const char *s, const char *e)
{
	static const int want[] = { [S_MMAP] = 6, [S_MUNMAP] = 2,
				    [S_MREMAP] = 4, [S_MPROTECT] = 3,
				    [S_MADVISE] = 3, [S_BRK] = 1 };
	const char *as[6], *ae[6];
	int n, i;

	if (c->sys == S_OTHER || c->sys == S_EXEC)
		return 0;
	n = split_args(s, e, as, ae);
	if (n < want[c->sys] ||
	    (n > want[c->sys] && c->sys != S_MREMAP && c->sys != S_MPROTECT) ||
	    n > want[c->sys] + 1)
		return err(r, c->line, "%s: %d arguments, expected %d", name,
			   n < 0 ? 7 : n, want[c->sys]);
	c->na = n;
	for (i = 0; i < n; i++) {
		bool ok;

		if (c->sys == S_MMAP && i == 2)
			ok = parse_flags(as[i], ae[i], prot_flags, "PROT_", &c->a[i]);
		else if (c->sys == S_MMAP && i == 3)
			ok = parse_flags(as[i], ae[i], map_flags, "MAP_", &c->a[i]);
		else if (c->sys == S_MMAP && i == 4)
			ok = parse_fd(as[i], ae[i], &c->a[i]);
		else if (c->sys == S_MPROTECT && i == 2)
			ok = parse_flags(as[i], ae[i], prot_flags, "PROT_", &c->a[i]);
		else if (c->sys == S_MREMAP && i == 3)
			ok = parse_flags(as[i], ae[i], mremap_flags, "MREMAP_",
					 &c->a[i]);
		else if (c->sys == S_MADVISE && i == 2)
			ok = parse_advice(as[i], ae[i], &c->a[i]);
		else
			ok = parse_num(as[i], ae[i], &c->a[i]);
		if (!ok)
			return err(r, c->line, "%s: %s '%.*s' is not a number "
				   "or a known flag", name, arg_name(c->sys, i),
				   (int)(ae[i] - as[i]), as[i]);
	}
	c->first_brk0 = c->sys == S_BRK && c->a[0] == 0;
	return 0;
}

enum ret_kind { RET_OK, RET_FAILED, RET_UNKNOWN };

/* " = 0x7f12... <0.000012>", " = -1 ENOMEM (Cannot ...)", " = ?". */
static int parse_ret(struct rd *r, uint64_t line, const char *s,
		     const char *e, uint64_t *ret)
{
	const char *q;

	s = skip_sp(s, e);
	if (s == e || *s != '=')
		return err(r, line, "no return value: truncated line?");
	s = skip_sp(s + 1, e);
	if (s < e && *s == '?')
		return RET_UNKNOWN;
	if (e - s > 3 && !memcmp(s, "-1 E", 4))
		return RET_FAILED;
	for (q = s; q < e && *q != ' '; q++)
		;
	if (!parse_num(s, q, ret))
		return err(r, line, "return value '%.*s' is not a number",
			   (int)(q - s), s);
	q = skip_sp(q, e);
	if (q < e && *q == '<' && e[-1] == '>')	/* -T: time spent */
		q = e;
	if (q != e)
		return err(r, line, "unexpected text after the return value: "
			   "'%.*s'", (int)(e - q), q);
	return RET_OK;
}

static int lookup_sys(const char *s, size_t n)
{
	for (size_t i = 0; i < sizeof(sys_names) / sizeof(sys_names[0]); i++)
		if (strlen(sys_names[i].name) == n &&
		    !memcmp(sys_names[i].name, s, n))
			return sys_names[i].sys;
	return -1;
}

/* Calls started and not yet resumed, by pid (the threads in a call now). */
struct pending {
	long pid;
	struct call c;
	char name[32];
	char *args;		/* the first half's argument text */
};

struct lines {
	struct pending *pend;
	size_t npend, pendcap;
	long *pids;		/* every pid seen: the thread count */
	size_t npids, pidcap;
};

static int add_call(struct rd *r, const struct call *c)
{
	struct call *n = grow(r->c, &r->ccap, r->nc, sizeof(*n));

	if (!n)
		return err(r, c->line, "out of memory");
	r->c = n;
	r->c[r->nc++] = *c;
	return 0;
}

static int see_pid(struct rd *r, struct lines *l, long pid)
{
	for (size_t i = 0; i < l->npids; i++)
		if (l->pids[i] == pid)
			return 0;
	l->pids = grow(l->pids, &l->pidcap, l->npids, sizeof(long));
	if (!l->pids)
		return err(r, 0, "out of memory");
	l->pids[l->npids++] = pid;
	return 0;
}

/* A finished call: count it, and keep it if it succeeded. */
static int finish_call(struct rd *r, struct call *c, const char *name,
		       const char *args, const char *ae, const char *rs,
		       const char *re, uint64_t line)
{
	int rk;

	if (parse_args(r, c, name, args, ae))
		return -1;
	rk = parse_ret(r, line, rs, re, &c->ret);
	if (rk < 0)
		return -1;
	if (rk == RET_FAILED) {
		r->p->st.failed++;
		return 0;
	}
	if (rk == RET_UNKNOWN) {
		r->p->st.interrupted++;
		return 0;
	}
	return add_call(r, c);
}

/* "<... mmap resumed>, 0) = 0x7f..." */
static int resumed_line(struct rd *r, struct lines *l, long pid,
			const char *s, const char *e, uint64_t line)
{
	const char *gt = memchr(s, '>', (size_t)(e - s));
	const char *nm = s + 5, *ne, *cp;
	struct pending *pd = NULL;
	size_t i;
	char *joined;
	int rc;

	for (ne = nm; ne < e && *ne != ' '; ne++)
		;
	if (!gt || e - s < 5 || (size_t)(gt - ne) != strlen(" resumed") ||
	    memcmp(ne, " resumed", 8))
		return err(r, line, "malformed resumed line");
	for (i = 0; i < l->npend; i++)
		if (l->pend[i].pid == pid)
			pd = &l->pend[i];
	if (!pd)
		return err(r, line, "'%.*s' resumed, but thread %ld has no "
			   "unfinished call", (int)(ne - nm), nm, pid);
	if (strlen(pd->name) != (size_t)(ne - nm) ||
	    memcmp(pd->name, nm, (size_t)(ne - nm)))
		return err(r, line, "'%.*s' resumed, but thread %ld's "
			   "unfinished call (line %llu) is '%s'",
			   (int)(ne - nm), nm, pid,
			   (unsigned long long)pd->c.line, pd->name);
	cp = close_paren(gt + 1, e);
	if (!cp)
		return err(r, line, "no ')' closing the arguments: truncated "
			   "line?");
	joined = malloc(strlen(pd->args) + (size_t)(cp - gt) + 1);
	if (!joined)
		return err(r, line, "out of memory");
	sprintf(joined, "%s%.*s", pd->args, (int)(cp - gt - 1), gt + 1);
	pd->c.key = line;
	rc = finish_call(r, &pd->c, pd->name, joined, joined + strlen(joined),
			 cp + 1, e, line);
	free(joined);
	free(pd->args);
	*pd = l->pend[--l->npend];
	return rc;
}

/* "mmap(NULL, 4096, ... <unfinished ...>" or a whole call. */
static int call_line(struct rd *r, struct lines *l, long pid, const char *s,
		     const char *e, uint64_t line)
{
	static const char unf[] = "<unfinished ...>";
	const char *op = memchr(s, '(', (size_t)(e - s));
	struct call c = { .line = line, .key = line, .pid = pid };
	struct pending *pd;
	const char *cp;

	if (!op || op == s)
		return err(r, line, "not a line strace writes: '%.*s'",
			   (int)(e - s > 60 ? 60 : e - s), s);
	for (const char *q = s; q < op; q++)
		if (!((*q >= 'a' && *q <= 'z') || isdig(*q) || *q == '_'))
			return err(r, line, "not a line strace writes: '%.*s'",
				   (int)(e - s > 60 ? 60 : e - s), s);
	c.sys = lookup_sys(s, (size_t)(op - s));
	if (c.sys < 0)
		return err(r, line, "unknown system call '%.*s': not one of "
			   "strace's -e trace=memory calls", (int)(op - s), s);
	if ((size_t)(e - s) >= sizeof(unf) - 1 &&
	    !memcmp(e - (sizeof(unf) - 1), unf, sizeof(unf) - 1)) {
		for (size_t i = 0; i < l->npend; i++)
			if (l->pend[i].pid == pid)
				return err(r, line, "thread %ld starts a call "
					   "while its call of line %llu is "
					   "unfinished", pid, (unsigned long long)
					   l->pend[i].c.line);
		l->pend = grow(l->pend, &l->pendcap, l->npend, sizeof(*pd));
		if (!l->pend)
			return err(r, line, "out of memory");
		pd = &l->pend[l->npend++];
		memset(pd, 0, sizeof(*pd));
		pd->pid = pid;
		pd->c = c;
		snprintf(pd->name, sizeof(pd->name), "%.*s", (int)(op - s), s);
		pd->args = strndup(op + 1,
				   (size_t)(e - (sizeof(unf) - 1) - op - 1));
		return pd->args ? 0 : err(r, line, "out of memory");
	}
	cp = close_paren(op + 1, e);
	if (!cp)
		return err(r, line, "no ')' closing the arguments: truncated "
			   "line?");
	char name[32];
	snprintf(name, sizeof(name), "%.*s", (int)(op - s), s);
	return finish_call(r, &c, name, op + 1, cp, cp + 1, e, line);
}

/* The thread exited: a call it had not finished never returned. */
static void thread_exit(struct rd *r, struct lines *l, long pid)
{
	for (size_t i = 0; i < l->npend; i++)
		if (l->pend[i].pid == pid) {
			free(l->pend[i].args);
			l->pend[i] = l->pend[--l->npend];
			r->p->st.interrupted++;
			return;
		}
}

/* Skip "[pid 123] " or "123 ", then a -t/-tt/-ttt/-r time stamp. */
static const char *line_prefix(const char *s, const char *e, long *pid)
{
	const char *q;

	*pid = 0;
	s = skip_sp(s, e);
	if (e - s > 5 && !memcmp(s, "[pid ", 5)) {
		q = skip_sp(s + 5, e);
		for (*pid = 0; q < e && isdig(*q); q++)
			*pid = *pid * 10 + (*q - '0');
		if (q < e && *q == ']')
			s = skip_sp(q + 1, e);
	} else {
		for (q = s; q < e && isdig(*q); q++)
			;
		if (q > s && q < e && *q == ' ') {
			for (*pid = 0; s < q; s++)
				*pid = *pid * 10 + (*s - '0');
			s = skip_sp(q, e);
		}
	}
	for (q = s; q < e && (isdig(*q) || *q == ':' || *q == '.'); q++)
		;
	if (q > s && q < e && *q == ' ' && isdig(*s))
		s = skip_sp(q, e);
	return s;
}

static int one_line(struct rd *r, struct lines *l, const char *s,
		    const char *e, uint64_t line)
{
	long pid;

	for (const char *q = s; q < e; q++)
		if ((unsigned char)*q < 0x20 ? *q != '\t' : *q == 0x7f)
			return err(r, line, "binary data (byte 0x%02x at "
				   "column %d): not a text strace log",
				   (unsigned char)*q, (int)(q - s) + 1);
	s = line_prefix(s, e, &pid);
	if (s == e)
		return 0;	/* blank */
	if (see_pid(r, l, pid))
		return -1;
	if (e - s >= 3 && !memcmp(s, "+++", 3)) {
		thread_exit(r, l, pid);
		return 0;
	}
	if (e - s >= 3 && !memcmp(s, "---", 3))
		return 0;	/* a signal */
	if (e - s >= 5 && !memcmp(s, "<... ", 5))
		return resumed_line(r, l, pid, s, e, line);
	return call_line(r, l, pid, s, e, line);
}

static int read_file(struct rd *r, char **buf, size_t *n)
{
	FILE *f = fopen(r->path, "rb");
	size_t cap = 1 << 16;
	char *b = NULL, *nb;
	int e = 0;

	*buf = NULL;
	*n = 0;
	if (!f)
		return err(r, 0, "%s", strerror(errno));
	while (!e && (nb = realloc(b, cap))) {
		b = nb;
		*n += fread(b + *n, 1, cap - *n, f);
		if (ferror(f))
			e = errno ? errno : EIO;
		else if (*n < cap)
			break;
		cap *= 2;
	}
	if (!e && (!b || *n == cap))
		e = ENOMEM;
	fclose(f);
	if (e) {
		free(b);
		return err(r, 0, "%s", strerror(e));
	}
	*buf = b;
	return 0;
}

static int read_lines(struct rd *r)
{
	struct lines l = { 0 };
	char *buf = NULL;
	size_t n = 0, i = 0;
	uint64_t line = 0;
	int rc = 0;

	if (read_file(r, &buf, &n))
		return -1;
	while (i < n && !rc) {
		char *nl = memchr(buf + i, '\n', n - i);

		line++;
		if (!nl) {
			rc = err(r, line, "truncated: the last line has no end");
			break;
		}
		rc = one_line(r, &l, buf + i, nl, line);
		i = (size_t)(nl - buf) + 1;
	}
	r->p->st.lines = line;
	r->p->st.threads = l.npids;
	if (!rc && l.npend)
		rc = err(r, l.pend[0].c.line, "'%s' unfinished, never resumed, "
			 "and thread %ld never exited: truncated log?",
			 l.pend[0].name, l.pend[0].pid);
	if (!rc && !r->nc)
		rc = err(r, line ? line : 1, "no successful memory call: "
			 "not an strace -e trace=memory log?");
	for (i = 0; i < l.npend; i++)
		free(l.pend[i].args);
	free(l.pend);
	free(l.pids);
	free(buf);
	return rc;
}

/* ---- pass 2: order ---------------------------------------------------- */

static int by_key(const void *a, const void *b)
{
	const struct call *x = a, *y = b;

	if (x->key != y->key)
		return x->key < y->key ? -1 : 1;
	return x->line < y->line ? -1 : x->line > y->line;
}

/* A munmap takes effect where it started, anything else where it returned:
 * an address freed by one thread and handed to another is never live twice
 * in the model however strace interleaved the two lines. */
static void order_calls(struct rd *r)
{
	for (size_t i = 0; i < r->nc; i++)
		if (r->c[i].sys == S_MUNMAP)
			r->c[i].key = r->c[i].line;
	qsort(r->c, r->nc, sizeof(*r->c), by_key);
}

/* ---- pass 3: the model ------------------------------------------------ */

/* The first piece that ends after addr. */
static size_t pc_find(const struct rd *r, uint64_t addr)
{
	size_t lo = 0, hi = r->npc;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (r->pc[mid].end <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static int pc_insert(struct rd *r, size_t i, const struct piece *p)
{
	struct piece *n = grow(r->pc, &r->pccap, r->npc, sizeof(*n));

	if (!n)
		return err(r, r->line, "out of memory");
	r->pc = n;
	memmove(&r->pc[i + 1], &r->pc[i], (r->npc - i) * sizeof(*n));
	r->pc[i] = *p;
	r->npc++;
	return 0;
}

static void pc_remove(struct rd *r, size_t i, size_t j)
{
	memmove(&r->pc[i], &r->pc[j], (r->npc - j) * sizeof(*r->pc));
	r->npc -= j - i;
}

/* Make addr a piece boundary. */
static int pc_split(struct rd *r, uint64_t addr)
{
	size_t i = pc_find(r, addr);
	struct piece tail;

	if (i == r->npc || r->pc[i].start >= addr)
		return 0;
	tail = r->pc[i];
	tail.start = addr;
	r->pc[i].end = addr;
	return pc_insert(r, i + 1, &tail);
}

/* Pieces [i, j) of [a, b), after splitting there: j is past the last. */
static int pc_range(struct rd *r, uint64_t a, uint64_t b, size_t *i,
		    size_t *j)
{
	if (pc_split(r, a) || pc_split(r, b))
		return -1;
	*i = pc_find(r, a);
	for (*j = *i; *j < r->npc && r->pc[*j].start < b; (*j)++)
		;
	return 0;
}

static bool pc_same(const struct piece *x, const struct piece *y)
{
	return x->end == y->start && x->anon == y->anon && x->obj == y->obj &&
	       x->prot == y->prot && x->touched == y->touched;
}

/* Join pieces around [a, b) that differ in nothing, to keep the map small. */
static void pc_merge(struct rd *r, uint64_t a, uint64_t b)
{
	size_t i = pc_find(r, a);

	if (i > 0)
		i--;
	while (i + 1 < r->npc && r->pc[i].start <= b) {
		if (pc_same(&r->pc[i], &r->pc[i + 1])) {
			r->pc[i].end = r->pc[i + 1].end;
			pc_remove(r, i + 1, i + 2);
		} else {
			i++;
		}
	}
}

/* Consecutive pieces from i on that belong to one object, back to back. */
static size_t group_end(const struct rd *r, size_t i, size_t j)
{
	size_t k = i + 1;

	while (k < j && r->pc[k].anon && r->pc[k].obj == r->pc[i].obj &&
	       r->pc[k].start == r->pc[k - 1].end)
		k++;
	return k;
}

static struct mop *push_op(struct rd *r, unsigned kind, uint32_t obj,
			   uint64_t a, uint64_t len)
{
	struct mplan *p = r->p;
	struct mop *op = grow(p->op, &p->cap, p->nop, sizeof(*op));

	if (!op) {
		err(r, r->line, "out of memory");
		return NULL;
	}
	p->op = op;
	op = &p->op[p->nop++];
	memset(op, 0, sizeof(*op));
	op->kind = (uint8_t)kind;
	op->obj = op->obj2 = obj;
	op->off = a - r->obj[obj].base;
	op->len = len;
	op->vlen = r->obj[obj].vlen;
	op->probe = UINT64_MAX;
	op->line = r->line;
	return op;
}

/* Fill in what --check compares after a step: the model's totals. */
static void seal_op(struct rd *r, struct mop *op)
{
	op->live = r->live;
	op->obj_live = r->obj[op->obj].live;
	if (r->vlen_total > r->p->st.peak_vlen)
		r->p->st.peak_vlen = r->vlen_total;
	if (r->live > r->p->st.peak_live)
		r->p->st.peak_live = r->live;
}

static int touch(struct rd *r, struct piece *pc)
{
	struct mop *op;

	if (!pc->anon || !(pc->prot & P_WRITE) || pc->touched)
		return 0;
	op = push_op(r, MOP_TOUCH, pc->obj, pc->start, pc->end - pc->start);
	if (!op)
		return -1;
	pc->touched = 1;
	r->p->st.touched_pages += (pc->end - pc->start) / r->p->page;
	seal_op(r, op);
	return 0;
}

static int new_object(struct rd *r, uint64_t a, uint64_t len, unsigned prot,
		      uint64_t flags)
{
	struct piece pc = { a, a + len, (uint32_t)r->p->nobj, 1,
			    (uint8_t)prot, 0 };
	struct mop *op;

	r->obj = grow(r->obj, &r->objcap, r->p->nobj, sizeof(*r->obj));
	if (!r->obj)
		return err(r, r->line, "out of memory");
	r->obj[pc.obj] = (struct mobj){ a, len, len };
	r->p->nobj++;
	r->p->st.objects++;
	r->live += len;
	r->vlen_total += len;
	op = push_op(r, MOP_MAP, pc.obj, a, len);
	if (!op)
		return -1;
	op->arg = (int32_t)prot;
	op->flags = (uint16_t)((flags & F_NORESERVE ? MOPF_NORESERVE : 0) |
			       (flags & F_STACK ? MOPF_STACK : 0));
	seal_op(r, op);
	if (pc_insert(r, pc_find(r, a), &pc))
		return -1;
	return touch(r, &r->pc[pc_find(r, a)]);
}

/* Where obj's last live piece ends, as an offset; 0 if none is left. */
static uint64_t live_end(const struct rd *r, uint32_t obj)
{
	const struct mobj *o = &r->obj[obj];
	size_t i = pc_find(r, o->base);
	uint64_t end = 0;

	for (; i < r->npc && r->pc[i].start < o->base + o->vlen; i++)
		if (r->pc[i].anon && r->pc[i].obj == obj)
			end = r->pc[i].end - o->base;
	return end;
}

/*
 * Pieces [i, k) of one object leave the program: what the vmap area does.
 * The caller removes the pieces and pushes the step; this decides its vact.
 */
static unsigned unmap_vact(struct rd *r, uint32_t obj, bool touched,
			   uint64_t *vlen)
{
	struct mobj *o = &r->obj[obj];
	uint64_t end;

	if (!o->live) {
		r->vlen_total -= o->vlen;
		o->vlen = 0;
		*vlen = 0;
		return VACT_FREE;
	}
	end = live_end(r, obj);
	if (end < o->vlen) {
		r->vlen_total -= o->vlen - end;
		o->vlen = end;
		*vlen = end;
		r->p->st.shrinks++;
		return VACT_SHRINK;
	}
	*vlen = o->vlen;
	r->p->st.kept++;
	return touched ? VACT_RELEASE : VACT_KEEP;
}

/* Unmap pieces [i, k) of one object (anonymous, back to back). */
static int unmap_group(struct rd *r, size_t i, size_t k, bool implicit)
{
	uint32_t obj = r->pc[i].obj;
	uint64_t a = r->pc[i].start, b = r->pc[k - 1].end;
	bool touched = false;
	struct mop *op;

	for (size_t x = i; x < k; x++)
		touched |= r->pc[x].touched;
	pc_remove(r, i, k);
	r->obj[obj].live -= b - a;
	r->live -= b - a;
	op = push_op(r, MOP_UNMAP, obj, a, b - a);
	if (!op)
		return -1;
	op->flags = implicit ? MOPF_IMPLICIT : 0;
	op->vact = (uint8_t)unmap_vact(r, obj, touched, &op->vlen);
	seal_op(r, op);
	return 0;
}

/* Unmap [a, b): file pieces go silently, anonymous ones by object.  Returns
 * the number of pieces there were, or -1. */
static long unmap_range(struct rd *r, uint64_t a, uint64_t b, bool implicit)
{
	size_t i, j;
	long n = 0;

	if (pc_range(r, a, b, &i, &j))
		return -1;
	while (i < j) {
		if (!r->pc[i].anon) {
			pc_remove(r, i, i + 1);
			j--;
			n++;
			continue;
		}
		size_t k = group_end(r, i, j);
		if (unmap_group(r, i, k, implicit))
			return -1;
		j -= k - i;
		n += (long)(k - i);
	}
	return n;
}

static bool aligned(const struct rd *r, uint64_t x)
{
	return !(x & (r->p->page - 1));
}

static uint64_t page_up(const struct rd *r, uint64_t x)
{
	return (x + r->p->page - 1) & ~(r->p->page - 1);
}

/* Is any of [a, b) mapped?  The first piece there, for messages. */
static const struct piece *overlap(const struct rd *r, uint64_t a, uint64_t b)
{
	size_t i = pc_find(r, a);

	return i < r->npc && r->pc[i].start < b ? &r->pc[i] : NULL;
}

static int range_ok(struct rd *r, const char *what, uint64_t a, uint64_t len)
{
	if (!aligned(r, a))
		return err(r, r->line, "%s: address 0x%llx is not page-aligned, "
			   "yet the call succeeded", what,
			   (unsigned long long)a);
	if (!len || a + page_up(r, len) < a)
		return err(r, r->line, "%s: length %llu at 0x%llx, yet the "
			   "call succeeded", what, (unsigned long long)len,
			   (unsigned long long)a);
	return 0;
}

/* Fresh memory over live pages [i, k) of one object (mmap(MAP_FIXED)): they
 * stay the object's, zeroed, with the new protection. */
static int refresh_group(struct rd *r, size_t i, size_t k, unsigned prot)
{
	bool touched = false;
	struct mop *op;

	for (size_t x = i; x < k; x++) {
		touched |= r->pc[x].touched;
		r->pc[x].touched = 0;
		r->pc[x].prot = (uint8_t)prot;
	}
	op = push_op(r, MOP_FIXED, r->pc[i].obj, r->pc[i].start,
		     r->pc[k - 1].end - r->pc[i].start);
	if (!op)
		return -1;
	op->arg = (int32_t)prot;
	op->vact = touched ? VACT_RELEASE : VACT_NONE;
	seal_op(r, op);
	for (size_t x = i; x < k; x++)
		if (touch(r, &r->pc[x]))
			return -1;
	return 0;
}

/* mmap of private anonymous memory at [a, b), MAP_FIXED or not: live
 * anonymous pages there stay with their objects (zeroed), file pieces are
 * replaced, and every gap becomes a new object. */
static int map_anon(struct rd *r, uint64_t a, uint64_t b, unsigned prot,
		    uint64_t flags)
{
	uint64_t at = a;
	size_t i, j, k;

	while (at < b) {
		if (pc_range(r, at, b, &i, &j))
			return -1;
		if (i < j && !r->pc[i].anon) {
			pc_remove(r, i, i + 1);
		} else if (i == j || r->pc[i].start > at) {
			uint64_t end = i == j ? b : r->pc[i].start;

			if (new_object(r, at, end - at, prot, flags))
				return -1;
			at = end;
		} else {
			k = group_end(r, i, j);
			at = r->pc[k - 1].end;
			if (refresh_group(r, i, k, prot))
				return -1;
		}
	}
	pc_merge(r, a, b);
	return 0;
}

static int do_mmap(struct rd *r, const struct call *c)
{
	uint64_t len = page_up(r, c->a[1]), a = c->ret;
	uint64_t flags = c->a[3];
	unsigned prot = (unsigned)c->a[2];
	bool anon = (flags & F_ANON) && (flags & F_TYPE) == F_PRIVATE;
	const struct piece *o;

	if (range_ok(r, "mmap", a, c->a[1]))
		return -1;
	if ((flags & (F_FIXED | F_NOREPLACE)) && c->a[0] != a)
		return err(r, r->line, "mmap: MAP_FIXED at 0x%llx returned "
			   "0x%llx", (unsigned long long)c->a[0],
			   (unsigned long long)a);
	if (flags & F_ANON)
		(anon ? &r->p->st.mmap_anon : &r->p->st.mmap_shared_anon)[0]++;
	else
		r->p->st.mmap_file++;
	if (!(flags & F_FIXED) && (o = overlap(r, a, a + len)))
		return err(r, r->line, "mmap returned [0x%llx, 0x%llx), which "
			   "overlaps a live %s mapping at 0x%llx: the counts do "
			   "not add up (a log of several processes?)",
			   (unsigned long long)a, (unsigned long long)(a + len),
			   o->anon ? "anonymous" : "file",
			   (unsigned long long)o->start);
	if (anon)
		return map_anon(r, a, a + len, prot, flags);
	if (unmap_range(r, a, a + len, true) < 0)
		return -1;
	struct piece pc = { a, a + len, 0, 0, (uint8_t)prot, 0 };
	return pc_insert(r, pc_find(r, a), &pc);
}

/* A call on memory the log never showed mapped. */
static int unknown(struct rd *r, const char *what, uint64_t a, uint64_t len)
{
	if (r->p->st.from_start && !strcmp(what, "munmap"))
		return err(r, r->line, "munmap of [0x%llx, 0x%llx), which was "
			   "never mapped (the log starts at the program's start;"
			   " --attached skips such calls)",
			   (unsigned long long)a, (unsigned long long)(a + len));
	r->p->st.unknown++;
	return 0;
}

static bool all_file(const struct rd *r, uint64_t a, uint64_t b)
{
	for (size_t i = pc_find(r, a); i < r->npc && r->pc[i].start < b; i++)
		if (r->pc[i].anon)
			return false;
	return true;
}

static int do_munmap(struct rd *r, const struct call *c)
{
	uint64_t a = c->a[0], len = page_up(r, c->a[1]);
	long n;
	bool file;

	r->p->st.munmap++;
	if (range_ok(r, "munmap", a, c->a[1]))
		return -1;
	if (!overlap(r, a, a + len))
		return unknown(r, "munmap", a, len);
	file = all_file(r, a, a + len);
	n = unmap_range(r, a, a + len, false);
	if (n > 0 && file)
		r->p->st.file_calls++;
	return n < 0 ? -1 : 0;
}

static int do_mprotect(struct rd *r, const struct call *c)
{
	uint64_t a = c->a[0], b = a + page_up(r, c->a[1]);
	unsigned prot = (unsigned)c->a[2];
	size_t i, j;

	r->p->st.mprotect++;
	if (range_ok(r, "mprotect", a, c->a[1]))
		return -1;
	if (!overlap(r, a, b))
		return unknown(r, "mprotect", a, b - a);
	if (all_file(r, a, b))
		r->p->st.file_calls++;
	if (pc_range(r, a, b, &i, &j))
		return -1;
	while (i < j) {
		if (!r->pc[i].anon) {
			r->pc[i++].prot = (uint8_t)prot;
			continue;
		}
		size_t k = group_end(r, i, j);
		struct mop *op = push_op(r, MOP_PROTECT, r->pc[i].obj,
					 r->pc[i].start,
					 r->pc[k - 1].end - r->pc[i].start);
		if (!op)
			return -1;
		op->arg = (int32_t)prot;
		seal_op(r, op);
		r->p->st.protect_steps++;
		for (; i < k; i++) {
			r->pc[i].prot = (uint8_t)prot;
			if (touch(r, &r->pc[i]))
				return -1;
		}
	}
	pc_merge(r, a, b);
	return 0;
}

/* The advice a vmap area may take (vmap.h: "contents only"). */
static bool advice_vmap_ok(uint64_t adv)
{
	return adv == A_WILLNEED || adv == A_DONTNEED || adv == A_FREE ||
	       adv == A_COLD || adv == A_PAGEOUT;
}

/* Advice neither replay performs: it would poison pages, fault the touches
 * (guards), or is unknown. */
static bool advice_never(uint64_t adv)
{
	return adv == UINT64_MAX || adv >= A_HWPOISON;
}

static int do_madvise(struct rd *r, const struct call *c)
{
	uint64_t a = c->a[0], b = a + page_up(r, c->a[1]), adv = c->a[2];
	bool drop = adv == A_DONTNEED || adv == A_FREE;
	size_t i, j;

	r->p->st.madvise++;
	if (range_ok(r, "madvise", a, c->a[1]))
		return -1;
	if (!overlap(r, a, b))
		return unknown(r, "madvise", a, b - a);
	if (all_file(r, a, b)) {
		r->p->st.file_calls++;
		return 0;
	}
	if (advice_never(adv)) {
		r->p->st.advise_skipped++;
		return 0;
	}
	if (pc_range(r, a, b, &i, &j))
		return -1;
	while (i < j) {
		if (!r->pc[i].anon) {
			i++;
			continue;
		}
		size_t k = group_end(r, i, j);
		struct mop *op = push_op(r, MOP_ADVISE, r->pc[i].obj,
					 r->pc[i].start,
					 r->pc[k - 1].end - r->pc[i].start);
		if (!op)
			return -1;
		op->arg = (int32_t)adv;
		op->vact = advice_vmap_ok(adv) ? VACT_ADVISE : VACT_NONE;
		r->p->st.advise_skipped += op->vact == VACT_NONE;
		seal_op(r, op);
		/* Released pages: the program that keeps them mapped will
		 * write them again, and fault them back in. */
		for (; i < k; i++) {
			if (drop)
				r->pc[i].touched = 0;
			if (touch(r, &r->pc[i]))
				return -1;
		}
	}
	pc_merge(r, a, b);
	return 0;
}

/* mremap of a file mapping: the model moves it, the replays do nothing. */
static int remap_file(struct rd *r, uint64_t a, uint64_t olen, uint64_t nlen,
		      uint64_t to)
{
	unsigned prot = 0;
	size_t i = pc_find(r, a);

	if (i < r->npc)
		prot = r->pc[i].prot;
	r->p->st.file_calls++;
	if (unmap_range(r, a, a + olen, false) < 0 ||
	    unmap_range(r, to, to + nlen, true) < 0)
		return -1;
	struct piece pc = { to, to + nlen, 0, 0, (uint8_t)prot, 0 };
	return pc_insert(r, pc_find(r, to), &pc);
}

/*
 * Move pieces [i, j) (all of object `from`, covering [a, a + olen)) to
 * [to, to + nlen) as pieces of object `obj`, whose base is `base`: cut at
 * nlen, extended with a fresh piece of the last one's protection.
 */
static int move_pieces(struct rd *r, size_t i, size_t j, uint64_t a,
		       uint64_t olen, uint64_t nlen, uint64_t to, uint32_t obj,
		       uint64_t *probe)
{
	size_t n = j - i;
	struct piece *tmp = malloc(n * sizeof(*tmp));
	unsigned prot = r->pc[j - 1].prot;

	if (!tmp)
		return err(r, r->line, "out of memory");
	memcpy(tmp, &r->pc[i], n * sizeof(*tmp));
	pc_remove(r, i, j);
	*probe = UINT64_MAX;
	for (size_t x = 0; x < n; x++) {
		struct piece pc = tmp[x];

		if (pc.start - a >= nlen)
			break;
		pc.start = pc.start - a + to;
		pc.end = pc.end - a + to;
		if (pc.end > to + nlen)
			pc.end = to + nlen;
		pc.obj = obj;
		if (pc.touched && (pc.prot & P_READ) && *probe == UINT64_MAX)
			*probe = pc.start - r->obj[obj].base;
		if (pc_insert(r, pc_find(r, pc.start), &pc)) {
			free(tmp);
			return -1;
		}
	}
	free(tmp);
	if (nlen > olen) {
		struct piece pc = { to + olen, to + nlen, obj, 1,
				    (uint8_t)prot, 0 };
		if (pc_insert(r, pc_find(r, pc.start), &pc))
			return -1;
		if (touch(r, &r->pc[pc_find(r, pc.start)]))
			return -1;
	}
	pc_merge(r, to, to + nlen);
	return 0;
}

/* A new object for a piece of another that mremap moved: its index. */
static int split_object(struct rd *r, uint64_t to, uint64_t nlen,
			uint32_t *n)
{
	r->obj = grow(r->obj, &r->objcap, r->p->nobj, sizeof(*r->obj));
	if (!r->obj)
		return err(r, r->line, "out of memory");
	*n = (uint32_t)r->p->nobj++;
	r->obj[*n] = (struct mobj){ to, nlen, nlen };
	r->p->st.objects++;
	r->p->st.remap_splits++;
	r->vlen_total += nlen;
	return 0;
}

/*
 * mremap of anonymous memory, pieces [i, j) of one object: if they are all
 * of its live part, the object moves (vmap: vmap_vrealloc); if not, they
 * become a new object (vmap: vmap_vmalloc and a copy; the old area as after
 * a partial munmap).
 */
static int remap_anon(struct rd *r, size_t i, size_t j, uint64_t a,
		      uint64_t olen, uint64_t nlen, uint64_t to)
{
	uint32_t obj = r->pc[i].obj, dst = obj;
	uint64_t off = a - r->obj[obj].base, probe = UINT64_MAX;
	bool whole = off + olen == r->obj[obj].vlen, touched = false;
	size_t opi;

	for (size_t x = pc_find(r, r->obj[obj].base); x < i; x++)
		whole &= !(r->pc[x].anon && r->pc[x].obj == obj);
	for (size_t x = i; x < j; x++)
		touched |= r->pc[x].touched;
	r->p->st.remaps++;
	if (!whole && split_object(r, to, nlen, &dst))
		return -1;
	if (!push_op(r, MOP_REMAP, obj, a, olen))
		return -1;
	opi = r->p->nop - 1;
	r->p->op[opi].obj2 = dst;
	r->p->op[opi].len2 = nlen;
	r->live += nlen - olen;
	if (whole) {
		struct mobj *o = &r->obj[obj];

		r->vlen_total += nlen - olen;	/* modulo 2^64 */
		o->vlen = r->p->op[opi].vlen = off + nlen;
		o->live += nlen - olen;
		o->base = to - off;
	} else {
		r->obj[obj].live -= olen;
	}
	if (move_pieces(r, i, j, a, olen, nlen, to, dst, &probe))
		return -1;
	struct mop *op = &r->p->op[opi];
	op->probe = probe;
	if (!whole)
		op->vact = (uint8_t)unmap_vact(r, obj, touched, &op->vlen);
	seal_op(r, op);
	return 0;
}

static int do_mremap(struct rd *r, const struct call *c)
{
	uint64_t a = c->a[0], olen = page_up(r, c->a[1]);
	uint64_t nlen = page_up(r, c->a[2]), flags = c->a[3], to = c->ret;
	uint64_t mapped = 0;
	size_t i, j;

	r->p->st.mremap++;
	if (range_ok(r, "mremap", a, c->a[1]) || range_ok(r, "mremap", to,
							   c->a[2]))
		return -1;
	if (!(flags & 1) && to != a)
		return err(r, r->line, "mremap without MREMAP_MAYMOVE moved "
			   "0x%llx to 0x%llx", (unsigned long long)a,
			   (unsigned long long)to);
	if (flags & 4)
		return err(r, r->line, "mremap: MREMAP_DONTUNMAP is not "
			   "supported by the replay");
	if (!olen)
		return err(r, r->line, "mremap: old length 0 (a copy of a "
			   "shared mapping) is not supported by the replay");
	if (!overlap(r, a, a + olen)) {
		if (r->p->st.from_start)
			return err(r, r->line, "mremap of [0x%llx, 0x%llx), "
				   "which was never mapped",
				   (unsigned long long)a,
				   (unsigned long long)(a + olen));
		r->p->st.unknown++;
		return 0;
	}
	if (pc_range(r, a, a + olen, &i, &j))
		return -1;
	for (size_t x = i; x < j; x++)
		mapped += r->pc[x].end - r->pc[x].start;
	if (mapped != olen || r->pc[j - 1].end - r->pc[i].start != olen)
		return err(r, r->line, "mremap of %llu bytes at 0x%llx, but "
			   "only %llu of them are mapped: the counts do not add "
			   "up", (unsigned long long)olen,
			   (unsigned long long)a, (unsigned long long)mapped);
	if (all_file(r, a, a + olen))
		return remap_file(r, a, olen, nlen, to);
	if (group_end(r, i, j) != j || !r->pc[i].anon)
		return err(r, r->line, "mremap over more than one mapping "
			   "(anonymous and file, or two anonymous ones): not "
			   "supported by the replay");
	/* The destination: the kernel unmapped what was there (MREMAP_FIXED)
	 * or found it free; whatever is there but the old range is stale. */
	for (size_t x = pc_find(r, to); x < r->npc && r->pc[x].start < to + nlen;
	     x++)
		if (r->pc[x].end <= a || r->pc[x].start >= a + olen) {
			if (!(flags & 2))
				return err(r, r->line, "mremap to [0x%llx, "
					   "0x%llx), which overlaps a live "
					   "mapping at 0x%llx: the counts do "
					   "not add up", (unsigned long long)to,
					   (unsigned long long)(to + nlen),
					   (unsigned long long)r->pc[x].start);
		}
	if ((flags & 2) && to != a) {
		if (unmap_range(r, to, to + nlen, true) < 0 ||
		    pc_range(r, a, a + olen, &i, &j))
			return -1;
	}
	return remap_anon(r, i, j, a, olen, nlen, to);
}

/* --check: the model's own invariants after a call. */
static int check_model(struct rd *r)
{
	uint64_t live = 0;

	for (size_t i = 0; i < r->npc; i++) {
		const struct piece *p = &r->pc[i];

		if (p->start >= p->end || (i && r->pc[i - 1].end > p->start))
			return err(r, r->line, "model: pieces overlap at 0x%llx",
				   (unsigned long long)p->start);
		if (p->anon)
			live += p->end - p->start;
	}
	if (live != r->live)
		return err(r, r->line, "model: %llu anonymous bytes mapped, "
			   "%llu counted", (unsigned long long)live,
			   (unsigned long long)r->live);
	return 0;
}

static int run_model(struct rd *r)
{
	for (size_t n = 0; n < r->nc; n++) {
		const struct call *c = &r->c[n];
		int rc = 0;

		r->line = c->line;
		switch (c->sys) {
		case S_MMAP: rc = do_mmap(r, c); break;
		case S_MUNMAP: rc = do_munmap(r, c); break;
		case S_MREMAP: rc = do_mremap(r, c); break;
		case S_MPROTECT: rc = do_mprotect(r, c); break;
		case S_MADVISE: rc = do_madvise(r, c); break;
		case S_BRK: r->p->st.brk++; break;
		case S_OTHER: r->p->st.other++; break;
		case S_EXEC:	/* a new program: every mapping is gone */
			rc = unmap_range(r, 0, -r->p->page, true) < 0;
			break;
		}
		if (rc || (r->o->check && check_model(r)))
			return -1;
	}
	return 0;
}

int mplan_read(const char *path, const struct mplan_opts *o, struct mplan *p)
{
	struct rd r = { .path = path, .p = p, .o = o };
	int rc;

	memset(p, 0, sizeof(*p));
	p->path = path;
	p->page = (uint64_t)sysconf(_SC_PAGESIZE);
	rc = read_lines(&r);
	if (!rc) {
		/* the program's first call is brk(NULL), or its execve */
		p->st.from_start = !o->attached &&
			(r.c[0].first_brk0 || r.c[0].sys == S_EXEC);
		order_calls(&r);
		rc = run_model(&r);
	}
	free(r.c);
	free(r.pc);
	free(r.obj);
	if (rc)
		mplan_free(p);
	return rc;
}

void mplan_free(struct mplan *p)
{
	free(p->op);
	p->op = NULL;
	p->nop = p->cap = 0;
}

const char *mop_name(unsigned kind)
{
	static const char *const names[] = { "map", "unmap", "protect",
					     "advise", "map-fixed", "remap",
					     "touch" };

	return kind < sizeof(names) / sizeof(names[0]) ? names[kind] : "?";
}
