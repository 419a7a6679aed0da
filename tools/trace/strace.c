/* SPDX-License-Identifier: MIT */
/*
 * strace.c - an `strace -f -e trace=memory` log, read into a replay plan:
 * passes 1 and 2 here, pass 3 in mplan.c.
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
 */#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "strace_int.h"

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

static const struct flag prot_flags[] = {
	{ "PROT_NONE", 0 }, { "PROT_READ", 1 }, { "PROT_WRITE", 2 },
	{ "PROT_EXEC", 4 }, { "PROT_SEM", 8 },
	{ "PROT_GROWSDOWN", 0x01000000 }, { "PROT_GROWSUP", 0x02000000 },
	{ NULL, 0 },
};

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

int strace_verr(const struct rd *r, uint64_t line, const char *fmt,
		va_list ap)
{
	if (line)
		fprintf(stderr, "%s:%llu: ", r->path, (unsigned long long)line);
	else
		fprintf(stderr, "%s: ", r->path);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	return -1;
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

/* A pid: digits, at most 9 of them (Linux's pids stay below 2^22). */
static const char *parse_pid(const char *s, const char *e, long *pid)
{
	const char *q;

	for (q = s, *pid = 0; q < e && isdig(*q) && q - s < 9; q++)
		*pid = *pid * 10 + (*q - '0');
	return q < e && isdig(*q) ? s : q;
}

/* Skip "[pid 123] " or "123 ", then a -t/-tt/-ttt/-r time stamp. */
static const char *line_prefix(const char *s, const char *e, long *pid)
{
	const char *q;

	*pid = 0;
	s = skip_sp(s, e);
	if (e - s > 5 && !memcmp(s, "[pid ", 5)) {
		q = parse_pid(skip_sp(s + 5, e), e, pid);
		if (q < e && *q == ']')
			s = skip_sp(q + 1, e);
	} else {
		q = parse_pid(s, e, pid);
		if (q > s && q < e && *q == ' ')
			s = skip_sp(q, e);
		else
			*pid = 0;
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

int strace_read_lines(struct rd *r)
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
void strace_order(struct rd *r)
{
	for (size_t i = 0; i < r->nc; i++)
		if (r->c[i].sys == S_MUNMAP)
			r->c[i].key = r->c[i].line;
	qsort(r->c, r->nc, sizeof(*r->c), by_key);
}

