/* SPDX-License-Identifier: MIT */
/*
 * format.c - reading and writing trace files.
 *
 * Two inputs are accepted:
 *   - vmap-trace's own format (docs/trace-format.md): a "vmap-trace 1"
 *     line, a header, the /proc/vmallocinfo snapshot, one event per line,
 *     and an "end" line with the event counts, so a truncated file is
 *     known as one;
 *   - a raw tracefs dump (`cat trace` or `cat trace_pipe`) of the vmalloc
 *     events, recorded elsewhere: no snapshot, no counts.
 * Whatever is wrong is reported as FILE:LINE and the whole read fails: a
 * replay never starts from half a trace.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "trace.h"

const char *const trace_events[3] = {
	"alloc_vmap_area", "free_vmap_area_noflush", "purge_vmap_area_lazy"
};

int trace_error(const struct trace *t, uint64_t line, const char *fmt, ...)
{
	va_list ap;

	if (line)
		fprintf(stderr, "%s:%llu: ", t->path,
			(unsigned long long)line);
	else
		fprintf(stderr, "%s: ", t->path);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return -1;
}

static int push_ev(struct trace *t, const struct ev *e)
{
	if (t->nev == t->cap) {
		size_t cap = t->cap ? 2 * t->cap : 4096;
		struct ev *n = realloc(t->ev, cap * sizeof(*n));

		if (!n)
			return trace_error(t, e->line, "out of memory");
		t->ev = n;
		t->cap = cap;
	}
	t->ev[t->nev++] = *e;
	return 0;
}

int trace_push_snap(struct trace *t, const struct snap *s, uint64_t line)
{
	if (t->nsnap == t->snapcap) {
		size_t cap = t->snapcap ? 2 * t->snapcap : 1024;
		struct snap *n = realloc(t->snap, cap * sizeof(*n));

		if (!n)
			return trace_error(t, line, "out of memory");
		t->snap = n;
		t->snapcap = cap;
	}
	t->snap[t->nsnap++] = *s;
	return 0;
}

/* A whole token as an unsigned number: decimal, or hex with 0x (never
 * octal: "010" is ten). */
static bool num(const char *s, uint64_t *out)
{
	char *end;

	bool hex = s && s[0] == '0' && (s[1] == 'x' || s[1] == 'X');

	if (!s || !*s || *s == '-' || *s == '+' || s[hex ? 2 : 0] == '-' ||
	    s[hex ? 2 : 0] == '+' || s[hex ? 2 : 0] == '\0')
		return false;
	errno = 0;
	*out = strtoull(s, &end, hex ? 16 : 10);
	return !errno && *end == '\0';
}

/* Seconds with a fraction ("32846.215880"), as ns. */
static bool seconds_ns(const char *s, uint64_t *out)
{
	uint64_t sec = 0, frac = 0, digits = 0;

	if (*s < '0' || *s > '9')
		return false;
	for (; *s >= '0' && *s <= '9'; s++) {
		if (sec > UINT64_MAX / 10 / 1000000000)
			return false;
		sec = sec * 10 + (uint64_t)(*s - '0');
	}
	if (*s == '.')
		for (s++; *s >= '0' && *s <= '9'; s++, digits++)
			if (digits < 9)
				frac = frac * 10 + (uint64_t)(*s - '0');
	if (*s || sec > (UINT64_MAX - 999999999) / 1000000000)
		return false;
	for (; digits < 9; digits++)
		frac *= 10;
	*out = sec * 1000000000 + frac;
	return true;
}

/* The first byte that is not text, or -1.  Tabs are text; so are bytes
 * from 0x80 (task names may be UTF-8). */
static long not_text(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return (long)i;
	}
	return -1;
}

/* Split s in place at blanks; up to max tokens; the count, or max + 1 if
 * there were more. */
static int split(char *s, char **tok, int max)
{
	int n = 0;
	char *save;

	for (char *p = strtok_r(s, " \t", &save); p;
	     p = strtok_r(NULL, " \t", &save)) {
		if (n == max)
			return max + 1;
		tok[n++] = p;
	}
	return n;
}

/* ---- vmap-trace's own format ---- */

static const char *const ev_letters = "AFP";
static const int ev_fields[] = { 6, 3, 3 };	/* A has `failed` too */

/* An event's fields, in the order of both formats. */
static void set_fields(struct ev *e, const uint64_t *v)
{
	if (e->kind == EV_ALLOC) {
		e->a.addr = v[0], e->a.size = v[1], e->a.align = v[2];
		e->a.vstart = v[3], e->a.vend = v[4], e->a.failed = v[5] != 0;
	} else if (e->kind == EV_FREE) {
		e->f.addr = v[0], e->f.nr_lazy = v[1], e->f.nr_lazy_max = v[2];
	} else {
		e->p.start = v[0], e->p.end = v[1], e->p.npurged = v[2];
	}
}

static int own_event(struct trace *t, char **tok, int n, uint64_t line)
{
	struct ev e = { .line = line };
	uint64_t v[6], cpu;
	const char *k = strchr(ev_letters, tok[2][0]);

	if (tok[2][1] || !k)
		return trace_error(t, line, "unknown event '%s' (A, F or P)",
				   tok[2]);
	e.kind = (uint32_t)(k - ev_letters);
	if (n != 3 + ev_fields[e.kind])
		return trace_error(t, line,
				   "%s event with %d fields, not %d: truncated?",
				   tok[2], n - 3, ev_fields[e.kind]);
	if (!num(tok[0], &e.ts_ns) || !num(tok[1], &cpu) || cpu > UINT32_MAX)
		return trace_error(t, line, "bad time stamp or CPU");
	e.cpu = (uint32_t)cpu;
	for (int i = 3; i < n; i++)
		if (!num(tok[i], &v[i - 3]))
			return trace_error(t, line, "'%s' is not a number",
					   tok[i]);
	if (e.kind == EV_ALLOC && v[5] > 1)
		return trace_error(t, line, "failed is 0 or 1");
	set_fields(&e, v);
	return push_ev(t, &e);
}

/* Header keys, the snapshot and the end line of the own format. */
static int own_line(struct trace *t, char *s, uint64_t line, bool *ended,
		    uint64_t *nsnap_left)
{
	char *tok[12];
	int n;
	uint64_t v[3];

	if (*ended)
		return trace_error(t, line, "text after the end line");
	if (!t->nev && (!strncmp(s, "kernel ", 7) ||
			!strncmp(s, "command ", 8))) {
		bool k = s[0] == 'k';
		char *dst = k ? t->kernel : t->command;
		size_t cap = k ? sizeof(t->kernel) : sizeof(t->command);

		snprintf(dst, cap, "%s", s + (k ? 7 : 8));
		return 0;
	}
	n = split(s, tok, 10);
	if (n == 0)
		return 0;
	if (t->nev && !(n >= 3 && tok[0][0] >= '0' && tok[0][0] <= '9') &&
	    strcmp(tok[0], "end"))
		return trace_error(t, line, "'%s' after the events: the header "
				   "comes first", tok[0]);
	if (*nsnap_left) {
		struct snap sn = { 0 };

		if (n != 4 || strcmp(tok[0], "S") || !num(tok[1], &v[0]) ||
		    !num(tok[2], &v[1]) || v[1] <= v[0] ||
		    (strcmp(tok[3], "busy") && strcmp(tok[3], "lazy")))
			return trace_error(t, line,
					   "expected a snapshot line "
					   "'S START END busy|lazy' (%llu to go)",
					   (unsigned long long)*nsnap_left);
		sn.start = v[0], sn.end = v[1], sn.lazy = tok[3][0] == 'l';
		sn.line = line;
		(*nsnap_left)--;
		return trace_push_snap(t, &sn, line);
	}
	if (n == 2 && !strcmp(tok[0], "page_size")) {
		if (!num(tok[1], &v[0]) || !v[0] || (v[0] & (v[0] - 1)))
			return trace_error(t, line, "page_size: a power of two");
		t->page_size = v[0];
		return 0;
	}
	if (n == 2 && (!strcmp(tok[0], "cpus") || !strcmp(tok[0], "lost"))) {
		if (!num(tok[1], &v[0]))
			return trace_error(t, line, "%s: a number", tok[0]);
		if (tok[0][0] == 'c')
			t->cpus = v[0];
		else
			t->lost = v[0];
		return 0;
	}
	if (!strcmp(tok[0], "snapshot")) {
		if (n != 4 || !num(tok[1], &t->snap_begin_ns) ||
		    !num(tok[2], &t->snap_end_ns) || !num(tok[3], nsnap_left) ||
		    t->snap_end_ns < t->snap_begin_ns)
			return trace_error(t, line,
					   "expected 'snapshot BEGIN_NS END_NS COUNT'");
		if (t->has_snapshot)
			return trace_error(t, line, "a second snapshot");
		t->has_snapshot = true;
		return 0;
	}
	if (!strcmp(tok[0], "end")) {
		size_t cnt[3] = { 0 };

		if (n != 4 || !num(tok[1], &v[0]) || !num(tok[2], &v[1]) ||
		    !num(tok[3], &v[2]))
			return trace_error(t, line,
					   "expected 'end ALLOCS FREES PURGES'");
		for (size_t i = 0; i < t->nev; i++)
			cnt[t->ev[i].kind]++;
		if (cnt[0] != v[0] || cnt[1] != v[1] || cnt[2] != v[2])
			return trace_error(t, line,
					   "the counts do not add up: the end line "
					   "says %llu/%llu/%llu allocations/frees/"
					   "purges, the file has %zu/%zu/%zu",
					   (unsigned long long)v[0],
					   (unsigned long long)v[1],
					   (unsigned long long)v[2], cnt[0],
					   cnt[1], cnt[2]);
		*ended = true;
		return 0;
	}
	if (n >= 3 && tok[0][0] >= '0' && tok[0][0] <= '9')
		return own_event(t, tok, n, line);
	return trace_error(t, line, "unknown line '%s'", tok[0]);
}

/* ---- raw tracefs dumps ---- */

/* "key=V" or "key: V" in the fields of a raw event. */
static bool field(const char *s, const char *key, uint64_t *out)
{
	size_t kl = strlen(key);

	for (const char *p = s; (p = strstr(p, key)); p += kl) {
		char buf[32];
		size_t n;

		if (p != s && p[-1] != ' ')
			continue;
		if (p[kl] == '=')
			p += kl + 1;
		else if (p[kl] == ':' && p[kl + 1] == ' ')
			p += kl + 2;
		else
			continue;
		n = strcspn(p, " ");
		if (n == 0 || n >= sizeof(buf))
			return false;
		memcpy(buf, p, n);
		buf[n] = '\0';
		return num(buf, out);
	}
	return false;
}

static int raw_fields(struct trace *t, struct ev *e, const char *f)
{
	static const char *const keys[3][6] = {
		{ "va_start", "size", "align", "vstart", "vend", "failed" },
		{ "va_start", "nr_lazy", "nr_lazy_max" },
		{ "start", "end", "num_purged" },
	};
	uint64_t v[6];

	for (int i = 0; i < 6 && keys[e->kind][i]; i++)
		if (!field(f, keys[e->kind][i], &v[i]))
			return trace_error(t, e->line,
					   "no '%s' in the event's fields: "
					   "truncated, or not this kernel's format",
					   keys[e->kind][i]);
	set_fields(e, v);
	return push_ev(t, e);
}

/*
 * One line of a raw dump: "TASK-PID [CPU] FLAGS SECONDS: EVENT: FIELDS",
 * with FLAGS absent under some trace options, and "(TGID)" after the task
 * under others.  The task's name may hold blanks and brackets, so the CPU is
 * the last "[digits]" before the time stamp.
 */
int trace_raw_line(struct trace *t, char *s, uint64_t line)
{
	struct ev e = { .line = line };
	char *ev, *colon, *fields, *p;
	uint64_t cpu = UINT64_MAX;

	unsigned lcpu;
	unsigned long long lost;
	char c;

	/* The kernel's own note in trace_pipe when its buffer overran. */
	if (sscanf(s, "CPU:%u [LOST %llu EVENT%c", &lcpu, &lost, &c) == 3) {
		t->lost += lost;
		return 0;
	}
	if (sscanf(s, "CPU:%u [LOST EVENT%c", &lcpu, &c) == 2) {
		t->lost++;	/* how many is not said: at least one */
		return 0;
	}
	if (s[0] == '#') {	/* the header: lost events, CPUs */
		unsigned long long in, written, cpus;
		const char *q = strstr(s, "entries-in-buffer/entries-written:");

		if (q && sscanf(q, "entries-in-buffer/entries-written: "
				   "%llu/%llu #P:%llu", &in, &written,
				   &cpus) == 3) {
			t->lost = written > in ? written - in : 0;
			t->cpus = cpus;
		}
		return 0;
	}
	/* "... SECONDS: EVENT: FIELDS": the event is the word before ": "
	 * that follows the time stamp. */
	for (p = s; (colon = strstr(p, ": ")); p = colon + 2) {
		char *ts = colon;

		while (ts > s && ts[-1] != ' ')
			ts--;
		*colon = '\0';
		if (seconds_ns(ts, &e.ts_ns)) {
			/* The CPU: the last [digits] before the stamp. */
			for (char *b = ts; b > s; b--)
				if (*b == '[') {
					char *end;

					cpu = strtoull(b + 1, &end, 10);
					if (*end != ']' || end == b + 1)
						cpu = UINT64_MAX;
					break;
				}
			p = colon + 2;
			break;
		}
		*colon = ':';
	}
	if (!colon || cpu > UINT32_MAX)
		return trace_error(t, line,
				   "not a trace line (TASK-PID [CPU] ... "
				   "SECONDS: EVENT: FIELDS): truncated?");
	e.cpu = (uint32_t)cpu;
	ev = p;
	colon = strchr(ev, ':');
	if (!colon)
		return trace_error(t, line, "no event name: truncated?");
	*colon = '\0';
	fields = colon + 1;
	if (!strcmp(ev, "tracing_mark_write")) {
		/* vmap-trace record's markers place the snapshot in the
		 * stream and end it; anyone else's are not events. */
		if (strstr(fields, "vmap-trace: snapshot-begin"))
			t->snap_begin_ns = e.ts_ns;
		else if (strstr(fields, "vmap-trace: snapshot-end"))
			t->snap_end_ns = e.ts_ns;
		else if (strstr(fields, "vmap-trace: stop"))
			t->stopped = true;
		return 0;
	}
	for (e.kind = 0; e.kind < 3; e.kind++)
		if (!strcmp(ev, trace_events[e.kind]))
			return raw_fields(t, &e, fields);
	return trace_error(t, line,
			   "unknown event '%s' (vmap-trace reads "
			   "alloc_vmap_area, free_vmap_area_noflush and "
			   "purge_vmap_area_lazy: filter the dump with grep)",
			   ev);
}

/* FILE.gz, or a regular file that starts as gzip's do. */
static bool gzipped(const char *path, size_t n)
{
	unsigned char m[2] = { 0 };
	FILE *f;
	bool gz;

	if (n >= 3 && !strcmp(path + n - 3, ".gz"))
		return true;
	f = fopen(path, "rb");
	if (!f)
		return false;
	gz = fread(m, 1, 2, f) == 2 && m[0] == 0x1f && m[1] == 0x8b;
	fclose(f);
	return gz;
}

/* The file, or if gzipped, gzip -dc's output (*pid its process). */
static FILE *open_input(const char *path, pid_t *pid)
{
	size_t n = strlen(path);
	int fds[2];

	*pid = 0;
	if (!gzipped(path, n))
		return fopen(path, "r");
	if (access(path, R_OK) || pipe(fds))
		return NULL;
	*pid = fork();
	if (*pid < 0) {
		close(fds[0]);
		close(fds[1]);
		return NULL;
	}
	if (*pid == 0) {
		dup2(fds[1], 1);
		close(fds[0]);
		close(fds[1]);
		execlp("gzip", "gzip", "-dc", "--", path, (char *)NULL);
		_exit(127);
	}
	close(fds[1]);
	return fdopen(fds[0], "r");
}

/* Close what open_input opened: false if gzip failed. */
static bool close_input(FILE *f, pid_t pid)
{
	int status;

	fclose(f);
	if (!pid)
		return true;
	return waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
	       WEXITSTATUS(status) == 0;
}

int trace_read(const char *path, struct trace *t)
{
	return trace_read_as(path, path, t);
}

int trace_read_as(const char *path, const char *name, struct trace *t)
{
	FILE *f;
	pid_t gz;
	char *buf = NULL;
	size_t cap = 0;
	ssize_t len;
	uint64_t line = 0, nsnap_left = 0;
	bool ended = false, first = true;
	int rc = 0;

	memset(t, 0, sizeof(*t));
	t->page_size = 4096;
	t->path = strdup(name);
	if (!t->path)
		return -1;
	f = open_input(path, &gz);
	if (!f) {
		rc = trace_error(t, 0, "%s", strerror(errno));
		goto out;
	}
	while (!rc && (len = getline(&buf, &cap, f)) >= 0) {
		long bad;
		uint64_t version;
		bool ended_line;

		line++;
		ended_line = len > 0 && buf[len - 1] == '\n';
		if (ended_line)
			buf[--len] = '\0';
		if (len > 0 && buf[len - 1] == '\r')
			buf[--len] = '\0';
		bad = not_text(buf, (size_t)len);
		if (bad >= 0)
			rc = trace_error(t, line,
					 "not text: byte 0x%02x at column %ld "
					 "(a binary file?)",
					 (unsigned char)buf[bad], bad + 1);
		else if (!ended_line)
			/* every line ends, the last too: a cut one may still
			 * parse, as num_purged=32 for 3277 */
			rc = trace_error(t, line, "truncated: no newline");
		if (rc)
			break;
		if (first) {
			first = false;
			if (!strncmp(buf, "vmap-trace ", 11)) {
				if (!num(buf + 11, &version) ||
				    version != TRACE_FORMAT_VERSION)
					rc = trace_error(t, line,
							 "format '%s': this "
							 "vmap-trace reads "
							 "version %d",
							 buf + 11,
							 TRACE_FORMAT_VERSION);
				continue;
			}
			t->raw = true;
		}
		if (t->raw)
			rc = buf[strspn(buf, " \t")] ? trace_raw_line(t, buf, line) : 0;
		else if (buf[0] != '#')
			rc = own_line(t, buf, line, &ended, &nsnap_left);
	}
	if (!rc && ferror(f))
		rc = trace_error(t, line, "%s", strerror(errno));
	/* Drain what is left, so gzip is not killed by a broken pipe; its
	 * verdict comes before ours on what it gave (empty, truncated). */
	while (rc && gz && getline(&buf, &cap, f) >= 0)
		;
	if (!close_input(f, gz) && !rc)
		rc = trace_error(t, 0, "gzip -dc failed: not a gzip file?");
	if (!rc && first)
		rc = trace_error(t, 0, "empty");
	if (!rc && !t->raw && nsnap_left)
		rc = trace_error(t, line, "truncated inside the snapshot");
	if (!rc && !t->raw && !ended)
		rc = trace_error(t, line,
				 "truncated: no end line (was the recording "
				 "cut short?)");
out:
	free(buf);
	if (rc)
		trace_free(t);
	return rc;
}

void trace_free(struct trace *t)
{
	free(t->ev);
	free(t->snap);
	free(t->path);
	memset(t, 0, sizeof(*t));
}

int trace_write(const struct trace *t, FILE *f)
{
	size_t cnt[3] = { 0 };

	fprintf(f, "vmap-trace %d\n", TRACE_FORMAT_VERSION);
	fprintf(f, "# docs/trace-format.md; recorded by vmap-trace record\n");
	fprintf(f, "page_size %llu\ncpus %llu\nlost %llu\n",
		(unsigned long long)t->page_size,
		(unsigned long long)t->cpus, (unsigned long long)t->lost);
	if (t->kernel[0])
		fprintf(f, "kernel %s\n", t->kernel);
	if (t->command[0])
		fprintf(f, "command %s\n", t->command);
	if (t->has_snapshot) {
		fprintf(f, "snapshot %llu %llu %zu\n",
			(unsigned long long)t->snap_begin_ns,
			(unsigned long long)t->snap_end_ns, t->nsnap);
		for (size_t i = 0; i < t->nsnap; i++)
			fprintf(f, "S 0x%llx 0x%llx %s\n",
				(unsigned long long)t->snap[i].start,
				(unsigned long long)t->snap[i].end,
				t->snap[i].lazy ? "lazy" : "busy");
	}
	for (size_t i = 0; i < t->nev; i++) {
		const struct ev *e = &t->ev[i];

		cnt[e->kind]++;
		fprintf(f, "%llu %u %c ", (unsigned long long)e->ts_ns, e->cpu,
			ev_letters[e->kind]);
		if (e->kind == EV_ALLOC)
			fprintf(f, "0x%llx %llu %llu 0x%llx 0x%llx %d\n",
				(unsigned long long)e->a.addr,
				(unsigned long long)e->a.size,
				(unsigned long long)e->a.align,
				(unsigned long long)e->a.vstart,
				(unsigned long long)e->a.vend, e->a.failed);
		else if (e->kind == EV_FREE)
			fprintf(f, "0x%llx %llu %llu\n",
				(unsigned long long)e->f.addr,
				(unsigned long long)e->f.nr_lazy,
				(unsigned long long)e->f.nr_lazy_max);
		else
			fprintf(f, "0x%llx 0x%llx %llu\n",
				(unsigned long long)e->p.start,
				(unsigned long long)e->p.end,
				(unsigned long long)e->p.npurged);
	}
	fprintf(f, "end %zu %zu %zu\n", cnt[0], cnt[1], cnt[2]);
	return ferror(f) ? -1 : 0;
}
