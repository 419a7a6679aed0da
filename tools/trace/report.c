/* SPDX-License-Identifier: MIT */
/*
 * report.c - `vmap-trace replay FILE`: the kernel side by side with vmap.
 *
 * The trace is read and checked here first: a bad trace is an error with
 * its line and nothing else happens (no child, no output file).  Then each
 * mode's replay runs in a child (replay.c; the legacy mode in
 * vmap-trace-legacy), and its result lines are compared with what the
 * kernel did:
 *   - purges, matched in order: the kernel's num_purged and flushed range
 *     against vmap's;
 *   - placement: the share of allocations at the kernel's own address, and
 *     for the rest, where the kernel's range was in vmap at that moment and
 *     how far apart the two were;
 *   - vmap's time per operation.
 * Output: a table on stdout, --json FILE, --plot FILE.png (gnuplot).
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "trace.h"

#define MAX_MODES 3

struct purge {
	size_t at;		/* event index */
	uint64_t n, lo, hi;
	bool is_explicit;
	size_t trigger;		/* the kernel's: the free that passed
				   nr_lazy_max and queued its drain, or
				   NO_TRIGGER */
	size_t late;		/* ... frees between it and the purge */
	size_t reruns;		/* the kernel's: re-runs folded into it */
};

#define NO_TRIGGER SIZE_MAX

struct result {
	const char *mode;
	size_t nev;		/* the trace's: purges past it are refused */
	bool ran;
	struct purge *p;
	size_t np, pcap;
	double ns_per_op, ns_min;
	uint64_t ops, placed, exact, failed, extra, cls[6];
	uint64_t hist[2][66];
};

static const char *const cl_label[6] = {
	"kernel reused a same-size area", "vmap lower (free in vmap)",
	"vmap higher (free in vmap)", "kernel's range lazy in vmap",
	"kernel's range busy in vmap", "kernel's range outside"
};
static const char *const cl_key[6] = {
	"kernel-reused-same-size", "vmap-lower", "vmap-higher",
	"kernel-range-lazy-in-vmap", "kernel-range-busy-in-vmap",
	"kernel-range-outside"
};

static int push(struct result *r, struct purge p)
{
	if (r->np == r->pcap) {
		size_t cap = r->pcap ? 2 * r->pcap : 64;
		struct purge *n = realloc(r->p, cap * sizeof(*n));

		if (!n)
			return -1;
		r->p = n, r->pcap = cap;
	}
	r->p[r->np++] = p;
	return 0;
}

static void line_in(struct result *r, char *l)
{
	unsigned long long a, b, c, d;
	char name[64];
	int bucket;

	if (sscanf(l, "purge %llu %llu %llx %llx", &a, &b, &c, &d) == 4 &&
	    a < r->nev)
		push(r, (struct purge){ (size_t)a, b, c, d, false,
					NO_TRIGGER, 0, 0 });
	else if (sscanf(l, "ns_per_op %lf", &r->ns_per_op) == 1 ||
		 sscanf(l, "ns_per_op_min %lf", &r->ns_min) == 1)
		;
	else if (sscanf(l, "ops %llu", &a) == 1)
		r->ops = a;
	else if (sscanf(l, "placed %llu", &a) == 1)
		r->placed = a;
	else if (sscanf(l, "exact %llu", &a) == 1)
		r->exact = a;
	else if (sscanf(l, "vmap_failed %llu", &a) == 1)
		r->failed = a;
	else if (sscanf(l, "vmap_extra %llu", &a) == 1)
		r->extra = a;
	else if (sscanf(l, "class %63s %llu", name, &a) == 2) {
		for (int k = 0; k < 6; k++)
			if (!strcmp(name, cl_key[k]))
				r->cls[k] = a;
	} else if (sscanf(l, "delta %63s %d %llu", name, &bucket, &a) == 3 &&
		   bucket >= 0 && bucket < 66)
		r->hist[!strcmp(name, "higher")][bucket] = a;
	else if (!strcmp(l, "done"))
		r->ran = true;
}

/* Run one mode's child; its result lines into r. */
static int run_child(const char *exe, const char *mode, const char *path,
		     char **extra, struct result *r)
{
	char *argv[16] = { (char *)exe, "--child", (char *)mode,
			   (char *)path };
	int fds[2], status = 0, n = 4;
	pid_t pid;
	FILE *f;
	char *l = NULL;
	size_t cap = 0;

	for (; extra && *extra && n < 15; extra++)
		argv[n++] = *extra;
	argv[n] = NULL;
	if (pipe(fds))
		return -1;
	pid = fork();
	if (pid < 0) {
		close(fds[0]);
		close(fds[1]);
		return -1;
	}
	if (pid == 0) {
		dup2(fds[1], 1);
		close(fds[0]);
		close(fds[1]);
		execv(exe, argv);
		fprintf(stderr, "vmap-trace: %s: %s\n", exe, strerror(errno));
		_exit(127);
	}
	close(fds[1]);
	f = fdopen(fds[0], "r");
	if (!f)
		close(fds[0]);	/* the child then dies of SIGPIPE */
	while (f && getline(&l, &cap, f) > 0) {
		l[strcspn(l, "\n")] = '\0';
		line_in(r, l);
	}
	free(l);
	if (f)
		fclose(f);
	if (waitpid(pid, &status, 0) != pid)
		return -1;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

static double pct(double a, double b)
{
	return b ? 100.0 * a / b : 0;
}

static double mib(uint64_t lo, uint64_t hi)
{
	return hi > lo ? (double)(hi - lo) / (1 << 20) : 0;
}

/*
 * The kernel's purges, each with the free that triggered it: the first
 * since the last purge whose nr_lazy passed nr_lazy_max (the kernel then
 * queues its drain work, which purges when a worker runs it).  After a
 * purge, nr_lazy stays high until the purge has subtracted what it took, so
 * a free then counts only once the pages freed since the purge pass the
 * threshold too -- else the drain's re-run would look triggered.
 */
static void kernel_purges(const struct trace *t, struct result *k)
{
	size_t trigger = NO_TRIGGER, frees = 0;
	uint64_t since = 0;	/* pages freed since the last purge */
	bool purged = false;

	for (size_t i = 0; i < t->nev; i++) {
		const struct ev *e = &t->ev[i];

		if (e->flags & EVF_SKIP)
			continue;
		if (e->kind == EV_FREE) {
			since += e->size / t->page_size;
			if (trigger == NO_TRIGGER &&
			    e->f.nr_lazy > e->f.nr_lazy_max &&
			    (!purged || since > e->f.nr_lazy_max))
				trigger = i, frees = 0;
			else if (trigger != NO_TRIGGER)
				frees++;
		}
		if (e->kind != EV_PURGE)
			continue;
		push(k, (struct purge){ i, e->p.npurged, e->p.start, e->p.end,
					e->flags & EVF_EXPLICIT, trigger,
					frees, 0 });
		trigger = NO_TRIGGER;
		since = 0;
		purged = true;
	}
}

/*
 * The kernel's purges vmap is compared with, into out; how many were
 * folded.  A re-run of the kernel's drain (queued again by frees that came
 * while it ran: no trigger of its own, not explicit) finishes the batch
 * before it, which vmap takes in one purge: it is folded into that one.
 * With --purge-at kernel the replay makes every purge: none is folded.
 */
static size_t matched(const struct result *k, bool all, struct purge *out,
		      size_t *nout)
{
	size_t n = 0;

	for (size_t i = 0; i < k->np; i++) {
		const struct purge *p = &k->p[i];

		if (all || !n || p->is_explicit || p->trigger != NO_TRIGGER) {
			out[n++] = *p;
			continue;
		}
		out[n - 1].n += p->n;
		out[n - 1].reruns++;
		if (p->n && p->lo < out[n - 1].lo)
			out[n - 1].lo = p->lo;
		if (p->hi > out[n - 1].hi)
			out[n - 1].hi = p->hi;
	}
	*nout = n;
	return k->np - n;
}

/* Within 1% of the kernel's count? */
static bool within_1pct(uint64_t n, uint64_t kernel)
{
	uint64_t d = n > kernel ? n - kernel : kernel - n;

	return (double)d * 100 <= (double)kernel;
}

/* One row per purge: areas (and the difference), then where and how wide;
 * k holds only the kernel purges compared (matched()). */
static void table_purges(const struct result *k, const struct result *m,
			 int nm)
{
	size_t np = k->np;

	printf("%-34s %16s", "purges, matched in order", "kernel");
	for (int j = 0; j < nm; j++) {
		printf(" %18s", m[j].mode);
		if (m[j].np > np)
			np = m[j].np;
	}
	for (size_t i = 0; i < np; i++) {
		char lab[64];

		snprintf(lab, sizeof(lab), "  #%zu areas%s%s", i + 1,
			 i < k->np && k->p[i].is_explicit ? " (explicit)" : "",
			 i < k->np && k->p[i].reruns ? " (+)" : "");
		printf("\n%-34s", lab);
		if (i < k->np)
			printf(" %16llu", (unsigned long long)k->p[i].n);
		else
			printf(" %16s", "-");
		for (int j = 0; j < nm; j++) {
			if (i >= m[j].np)
				printf(" %18s", "-");
			else if (i < k->np && k->p[i].n)
				printf(" %9llu (%+5.1f%%)",
				       (unsigned long long)m[j].p[i].n,
				       pct((double)m[j].p[i].n -
					   (double)k->p[i].n,
					   (double)k->p[i].n));
			else
				printf(" %18llu",
				       (unsigned long long)m[j].p[i].n);
		}
		printf("\n%-34s", "     after event / range MiB");
		if (i < k->np)
			printf(" %8zu/%7.1f", k->p[i].at,
			       mib(k->p[i].lo, k->p[i].hi));
		else
			printf(" %16s", "-");
		for (int j = 0; j < nm; j++)
			if (i < m[j].np)
				printf(" %10zu/%7.1f", m[j].p[i].at,
				       mib(m[j].p[i].lo, m[j].p[i].hi));
			else
				printf(" %18s", "-");
	}
	printf("\n%-34s %16s", "purges within 1% of the kernel's", "");
	for (int j = 0; j < nm; j++) {
		size_t ok = 0;

		for (size_t i = 0; i < k->np && i < m[j].np; i++)
			ok += within_1pct(m[j].p[i].n, k->p[i].n);
		printf(" %11zu of %-3zu", ok, k->np);
	}
}

/* Did vmap purge in the very free that made the kernel queue its drain,
 * and how late did the kernel's drain run? */
static void table_triggers(const struct result *k, const struct result *m,
			   int nm)
{
	size_t queued = 0, late_max = 0;

	for (size_t i = 0; i < k->np; i++)
		if (k->p[i].trigger != NO_TRIGGER) {
			queued++;
			if (k->p[i].late > late_max)
				late_max = k->p[i].late;
		}
	printf("\n%-34s %10zu frees", "kernel's drain ran after up to",
	       late_max);
	printf("\n%-34s %16s", "purged in the free that queued it", "");
	for (int j = 0; j < nm; j++) {
		size_t same = 0;

		for (size_t i = 0; i < k->np && i < m[j].np; i++)
			same += k->p[i].trigger != NO_TRIGGER &&
				m[j].p[i].at == k->p[i].trigger;
		printf(" %11zu of %-3zu", same, queued);
	}
}

/* Where allocations landed against the kernel's address, and why not. */
static void table_placement(const struct result *m, int nm)
{
	/* log2 buckets of pages: hist[][b] holds distances in
	 * [2^(b-1), 2^b) */
	static const struct { int lo, hi; const char *what; } bands[] = {
		{ 0, 4, "< 16 pages" }, { 5, 8, "16-255 pages" },
		{ 9, 12, "256-4095 pages" }, { 13, 16, "4096-65535 pages" },
		{ 17, 65, ">= 65536 pages" },
	};

	printf("\n\n%-34s %16s", "placement", "");
	for (int j = 0; j < nm; j++)
		printf(" %18s", m[j].mode);
	printf("\n%-34s %16s", "  at the kernel's address", "");
	for (int j = 0; j < nm; j++)
		printf(" %7llu (%5.1f%%)", (unsigned long long)m[j].exact,
		       pct((double)m[j].exact, (double)m[j].placed));
	for (int c = 0; c < 6; c++) {
		printf("\n  %-32s %16s", cl_label[c], "");
		for (int j = 0; j < nm; j++)
			printf(" %7llu (%5.1f%%)",
			       (unsigned long long)m[j].cls[c],
			       pct((double)m[j].cls[c], (double)m[j].placed));
	}
	printf("\n  %-32s %16s", "vmap failed, kernel did not", "");
	for (int j = 0; j < nm; j++)
		printf(" %18llu", (unsigned long long)m[j].failed);
	printf("\n  %-32s", "distance, when not at it:");
	for (size_t b = 0; b < sizeof(bands) / sizeof(bands[0]); b++) {
		printf("\n    %-30s %16s", bands[b].what, "");
		for (int j = 0; j < nm; j++) {
			uint64_t n = 0;

			for (int x = bands[b].lo; x <= bands[b].hi; x++)
				n += m[j].hist[0][x] + m[j].hist[1][x];
			printf(" %7llu (%5.1f%%)", (unsigned long long)n,
			       pct((double)n, (double)(m[j].placed -
						       m[j].exact)));
		}
	}
}

/* In words: what explains most of the differences, per mode; and time. */
static void table_summary(const struct result *m, int nm)
{
	static const char *const why[6] = {
		"the kernel took back an area of the same size it had "
		"freed: its per-CPU node pools, not a lowest-fit search",
		"vmap's lowest fit found a lower range the kernel did not "
		"take (held in its pools, or skipped by its size + align - 1 "
		"search)",
		"vmap placed higher (its own pools)",
		"the kernel's range was still lazy in vmap: the two purged "
		"at different moments",
		"vmap had placed an earlier area there",
		"outside vmap's spans",
	};

	printf("\n");
	for (int j = 0; j < nm; j++) {
		int top = 0;

		for (int c = 1; c < 6; c++)
			if (m[j].cls[c] > m[j].cls[top])
				top = c;
		if (m[j].placed > m[j].exact)
			printf("\n%s: %.0f%% of the differences: %s", m[j].mode,
			       pct((double)m[j].cls[top],
				   (double)(m[j].placed - m[j].exact)),
			       why[top]);
	}
	printf("\n\n%-34s %16s", "vmap ns per operation (median)", "");
	for (int j = 0; j < nm; j++)
		if (m[j].ops)
			printf(" %18.0f", m[j].ns_per_op);
		else
			printf(" %18s", "-");
	printf("\n");
}

static void table(const struct trace *t, const struct result *kernel,
		  const struct result *m, int nm, bool at_kernel)
{
	struct result compared = *kernel;
	struct purge *kp = calloc(kernel->np + 1, sizeof(*kp));
	size_t folded;

	if (!kp) {
		fprintf(stderr, "vmap-trace replay: out of memory\n");
		return;
	}
	folded = matched(kernel, at_kernel, kp, &compared.np);
	compared.p = kp;
	printf("%s: %zu allocations (%zu failed), %zu frees, %zu purges; "
	       "kernel %s, ", t->path, t->nalloc, t->nfailed, t->nfree,
	       t->npurge, t->kernel[0] ? t->kernel : "unknown");
	if (t->cpus)
		printf("%llu CPUs, ", (unsigned long long)t->cpus);
	printf("nr_lazy_max %llu pages; %zu %s\n\n",
	       (unsigned long long)t->nr_lazy_max, t->nsnap,
	       t->raw ? "areas inferred older than the dump (a raw dump)"
		      : "snapshot areas");
	printf("purges %s; %zu re-runs of the kernel's drain folded into "
	       "the purge before (+)\n", at_kernel ? "at the kernel's moments "
	       "(--purge-at kernel: vmap's threshold off)" :
	       "by vmap's own threshold (lazy_max_pages = nr_lazy_max)",
	       folded);
	table_purges(&compared, m, nm);
	table_triggers(&compared, m, nm);
	table_placement(m, nm);
	table_summary(m, nm);
	free(kp);
}

/* s as a JSON string. */
static void jstr(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20 || c == 0x7f)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

static void json_out(FILE *f, const struct trace *t, const struct result *k,
		 const struct result *m, int nm, bool at_kernel)
{
	fprintf(f, "{\"purge_at\":\"%s\",", at_kernel ? "kernel" : "vmap");
	fprintf(f, "\"trace\":");
	jstr(f, t->path);
	fprintf(f, ",\"kernel\":");
	jstr(f, t->kernel);
	fprintf(f, ",\"cpus\":%llu,"
		"\"nr_lazy_max\":%llu,\"allocations\":%zu,\"frees\":%zu,"
		"\"snapshot_areas\":%zu,\"raw\":%s,\n \"kernel_purges\":[",
		(unsigned long long)t->cpus,
		(unsigned long long)t->nr_lazy_max, t->nalloc, t->nfree,
		t->nsnap, t->raw ? "true" : "false");
	for (size_t i = 0; i < k->np; i++)
	{
		fprintf(f, "%s{\"event\":%zu,\"areas\":%llu,\"start\":%llu,"
			"\"end\":%llu,\"explicit\":%s,\"trigger\":", i ? "," : "",
			k->p[i].at, (unsigned long long)k->p[i].n,
			(unsigned long long)k->p[i].lo,
			(unsigned long long)k->p[i].hi,
			k->p[i].is_explicit ? "true" : "false");
		if (k->p[i].trigger == NO_TRIGGER)
			fprintf(f, "null}");
		else
			fprintf(f, "%zu,\"frees_late\":%zu}", k->p[i].trigger,
				k->p[i].late);
	}
	fprintf(f, "],\n \"modes\":{");
	for (int j = 0; j < nm; j++) {
		const struct result *r = &m[j];

		fprintf(f, "%s\n  \"%s\":{\"ns_per_op\":", j ? "," : "",
			r->mode);
		if (r->ops)
			fprintf(f, "%.1f", r->ns_per_op);
		else
			fputs("null", f);
		fprintf(f, ",\"ops\":%llu,"
			"\"placed\":%llu,\"exact\":%llu,\"vmap_failed\":%llu,"
			"\"vmap_extra\":%llu,\"classes\":{",
			(unsigned long long)r->ops,
			(unsigned long long)r->placed,
			(unsigned long long)r->exact,
			(unsigned long long)r->failed,
			(unsigned long long)r->extra);
		for (int c = 0; c < 6; c++)
			fprintf(f, "%s\"%s\":%llu", c ? "," : "", cl_key[c],
				(unsigned long long)r->cls[c]);
		fprintf(f, "},\"distance_log2_pages\":{\"lower\":[");
		for (int d = 0; d < 2; d++) {
			for (int b = 0; b < 66; b++)
				fprintf(f, "%s%llu", b ? "," : "",
					(unsigned long long)r->hist[d][b]);
			fprintf(f, d ? "]}" : "],\"higher\":[");
		}
		fprintf(f, ",\"purges\":[");
		for (size_t i = 0; i < r->np; i++)
			fprintf(f, "%s{\"event\":%zu,\"areas\":%llu,"
				"\"start\":%llu,\"end\":%llu}", i ? "," : "",
				r->p[i].at, (unsigned long long)r->p[i].n,
				(unsigned long long)r->p[i].lo,
				(unsigned long long)r->p[i].hi);
		fprintf(f, "]}");
	}
	fprintf(f, "}}\n");
}

/* s inside a gnuplot single-quoted string: '' for ', no control bytes. */
static void gp_str(FILE *f, const char *s)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '\'')
			fputs("''", f);
		else
			fputc(c < 0x20 || c == 0x7f ? '?' : c, f);
	}
}

/* Copy a file into an output file. */
static int copy_into(const char *from, FILE *to)
{
	char buf[65536];
	size_t n;
	FILE *f = fopen(from, "rb");

	if (!f)
		return -1;
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
		if (fwrite(buf, 1, n, to) != n)
			break;
	n = ferror(f) || ferror(to);
	fclose(f);
	return n ? -1 : 0;
}

/* Run gnuplot on script, its complaints to stderr; 0 if it succeeded. */
static int gnuplot(const char *dir, const char *script)
{
	char err[PATH_MAX + 32], line[512];
	int status = 0, fd;
	pid_t pid;
	FILE *f;

	snprintf(err, sizeof(err), "%s/gnuplot.err", dir);
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		fd = open(err, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (fd >= 0)
			dup2(fd, 2);
		execlp("gnuplot", "gnuplot", script, (char *)NULL);
		_exit(127);
	}
	if (waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
	    !WEXITSTATUS(status))
		return 0;
	fprintf(stderr, "vmap-trace: gnuplot failed:\n");
	if ((f = fopen(err, "r"))) {
		while (fgets(line, sizeof(line), f))
			fputs(line, stderr);
		fclose(f);
	}
	return -1;
}

/* The picture: one panel per replay (the kernel first), address against
 * time: busy areas coloured by size, lazy time grey, purges as lines.
 * Only the temporary directory's own names go into the script; the trace's
 * name goes in quoted. */
static int plot(struct outfile *png, const char *dir, const struct trace *t,
		const struct result *k, const struct result *m, int nm)
{
	char path[PATH_MAX + 64];
	FILE *f;
	const struct result *all[MAX_MODES + 1] = { k };

	for (int j = 0; j < nm; j++)
		all[j + 1] = &m[j];
	for (int j = 0; j <= nm; j++) {
		snprintf(path, sizeof(path), "%s/%s.purges", dir, all[j]->mode);
		if (!(f = fopen(path, "w")))
			return -1;
		for (size_t i = 0; i < all[j]->np; i++)
			fprintf(f, "%.6f\n", t->ev[all[j]->p[i].at].ts_ns / 1e9);
		fclose(f);
	}
	snprintf(path, sizeof(path), "%s/plot.gp", dir);
	if (!(f = fopen(path, "w")))
		return -1;
	fprintf(f, "set terminal pngcairo size 1400,%d\nset output '%s/plot.png'\n"
		"set multiplot layout %d,1 title '", 300 * (nm + 1), dir,
		nm + 1);
	gp_str(f, t->path);
	fprintf(f, ": address space over time (busy by size, lazy grey, "
		"purges red)'\n"
		"set xlabel 'seconds from the first event'\n"
		"set ylabel 'MiB from vstart'\n"
		"set cblabel 'log2 size (pages)'\nset palette rgb 33,13,10\n"
		"set key off\nset cbrange [0:*]\nT0 = %.6f\n",
		t->nev ? t->ev[0].ts_ns / 1e9 : 0.0);
	for (int j = 0; j <= nm; j++)
		fprintf(f, "stats '%s/%s.seg' using ($4/1048576) nooutput\n"
			"set title '%s'\nplot '%s/%s.seg' using "
			"($1-T0):($4/1048576):($2-$1):(0):(log($5/%llu)/log(2)) with "
			"vectors nohead lc palette, '' using ($2-T0):($4/1048576):"
			"($3-$2):(0) with vectors nohead lc rgb '#c0c0c0', "
			"'%s/%s.purges' using ($1-T0):(0):(0):(STATS_max) with "
			"vectors nohead lc rgb 'red' lw 2\n",
			dir, all[j]->mode, all[j]->mode, dir, all[j]->mode,
			(unsigned long long)t->page_size, dir, all[j]->mode);
	fprintf(f, "unset multiplot\n");
	if (fclose(f) || gnuplot(dir, path))
		return -1;
	snprintf(path, sizeof(path), "%s/plot.png", dir);
	return out_file(png) ? copy_into(path, out_file(png)) : -1;
}

static const char *exe_for(const char *mode, char *buf, size_t cap)
{
	ssize_t n = readlink("/proc/self/exe", buf, cap - 32);
	char *slash;

	if (n <= 0)
		return NULL;
	buf[n] = '\0';
	if (!strcmp(mode, "legacy") && !replay_mode_here("legacy")) {
		slash = strrchr(buf, '/');
		snprintf(slash + 1, cap - (size_t)(slash + 1 - buf),
			 "vmap-trace-legacy");
	}
	return buf;
}

/* Is prog a file in a directory of $PATH we may run? */
static bool in_path(const char *prog)
{
	const char *p = getenv("PATH");
	char buf[PATH_MAX];

	while (p && *p) {
		size_t n = strcspn(p, ":");

		if (n && n + strlen(prog) + 2 < sizeof(buf)) {
			snprintf(buf, sizeof(buf), "%.*s/%s", (int)n, p, prog);
			if (!access(buf, X_OK))
				return true;
		}
		p += n + (p[n] == ':');
	}
	return false;
}

static int rm_one(const char *path, const struct stat *sb, int type,
		  struct FTW *ftw)
{
	(void)sb;
	(void)ftw;
	return type == FTW_DP ? rmdir(path) : unlink(path);
}

/* A trace that is not a regular file (a pipe, <(...)) is read once, into
 * the temporary directory: every mode's child reads it again. */
static const char *spool(const char *path, const char *dir, char *buf,
			 size_t cap)
{
	struct stat st;
	struct outfile o;
	int bad;

	if (!stat(path, &st) && S_ISREG(st.st_mode))
		return path;
	snprintf(buf, cap, "%s/input", dir);
	if (out_open(&o, buf, 0600))
		return NULL;
	bad = copy_into(path, out_file(&o));
	if (bad || out_commit(&o)) {
		out_abort(&o);
		return NULL;
	}
	return buf;
}

struct opts {
	const char *json, *png, *path;
	char modes[128];
	bool check, at_kernel, modes_given;
	char rounds[16];
};

static int parse(int argc, char **argv, struct opts *o)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		char *end;
		long n;

		if (!strcmp(a, "--check")) {
			o->check = true;
			continue;
		}
		if (a[0] != '-') {
			if (o->path) {
				fprintf(stderr, "vmap-trace replay: one trace "
					"at a time ('%s', '%s')\n", o->path, a);
				return -1;
			}
			o->path = a;
			continue;
		}
		if (!v || (strcmp(a, "--json") && strcmp(a, "--plot") &&
			   strcmp(a, "--modes") && strcmp(a, "--purge-at") &&
			   strcmp(a, "--rounds"))) {
			fprintf(stderr, "vmap-trace replay: bad argument '%s'\n",
				a);
			return -1;
		}
		i++;
		if (!strcmp(a, "--json")) {
			o->json = v;
		} else if (!strcmp(a, "--plot")) {
			o->png = v;
		} else if (!strcmp(a, "--modes")) {
			snprintf(o->modes, sizeof(o->modes), "%s", v);
			o->modes_given = true;
		} else if (!strcmp(a, "--purge-at")) {
			if (strcmp(v, "kernel") && strcmp(v, "vmap")) {
				fprintf(stderr, "vmap-trace replay: --purge-at "
					"'%s': kernel or vmap\n", v);
				return -1;
			}
			o->at_kernel = !strcmp(v, "kernel");
		} else {
			errno = 0;
			n = strtol(v, &end, 10);
			if (errno || *end || end == v || n < 1 || n > 64) {
				fprintf(stderr, "vmap-trace replay: --rounds "
					"'%s': 1 to 64\n", v);
				return -1;
			}
			snprintf(o->rounds, sizeof(o->rounds), "%ld", n);
		}
	}
	if (!o->path) {
		fprintf(stderr, "vmap-trace replay: which trace?\n");
		return -1;
	}
	return 0;
}

/* The modes to run, checked: known, not twice, the legacy executable
 * there (left out with a note when not asked for by name). */
static int modes(struct opts *o, struct result *m, int *nm)
{
	char *tok, *save, exe[PATH_MAX] = "";

	*nm = 0;
	for (tok = strtok_r(o->modes, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		for (int j = 0; j < *nm; j++)
			if (!strcmp(m[j].mode, tok)) {
				fprintf(stderr, "vmap-trace replay: mode '%s' "
					"twice\n", tok);
				return -1;
			}
		if (*nm == MAX_MODES || (strcmp(tok, "seed") &&
					 strcmp(tok, "pool") &&
					 strcmp(tok, "legacy"))) {
			fprintf(stderr, "vmap-trace replay: modes are seed, "
				"pool, legacy ('%s')\n", tok);
			return -1;
		}
		if (!strcmp(tok, "legacy") &&
		    (!exe_for(tok, exe, sizeof(exe)) || access(exe, X_OK))) {
			if (o->modes_given) {
				fprintf(stderr, "vmap-trace replay: %s: %s\n",
					exe, strerror(errno));
				return -1;
			}
			fprintf(stderr, "vmap-trace replay: no legacy mode "
				"(%s not found beside vmap-trace)\n", exe);
			continue;
		}
		m[(*nm)++].mode = tok;
	}
	if (!*nm)
		fprintf(stderr, "vmap-trace replay: no mode to run\n");
	return *nm ? 0 : -1;
}

int replay_main(int argc, char **argv)
{
	struct opts o = { .modes = "seed,pool,legacy", .rounds = "5" };
	char dir[] = "/tmp/vmap-trace.XXXXXX", seg[PATH_MAX + 64];
	char exe[PATH_MAX], spooled[PATH_MAX + 16];
	const char *input;
	int nm = 0, rc = 1;
	bool made_dir = false;
	struct trace t = { 0 };
	struct result k = { .mode = "kernel" }, m[MAX_MODES] = { 0 };
	struct outfile json = { 0 }, png = { 0 };

	if (parse(argc, argv, &o) || modes(&o, m, &nm))
		return 2;
	if (o.png && !in_path("gnuplot")) {
		fprintf(stderr, "vmap-trace replay: --plot needs gnuplot "
			"(apt-get install gnuplot-nox; scripts/trace does)\n");
		return 1;
	}
	/* Outputs first: a path that cannot be written fails now. */
	if (o.json && out_open(&json, o.json, 0644)) {
		fprintf(stderr, "vmap-trace replay: %s: %s\n", o.json,
			strerror(errno));
		goto out;
	}
	if (o.png && out_open(&png, o.png, 0644)) {
		fprintf(stderr, "vmap-trace replay: %s: %s\n", o.png,
			strerror(errno));
		goto out;
	}
	if (!mkdtemp(dir)) {
		fprintf(stderr, "vmap-trace: %s: %s\n", dir, strerror(errno));
		goto out;
	}
	made_dir = true;
	input = spool(o.path, dir, spooled, sizeof(spooled));
	if (!input) {
		fprintf(stderr, "%s: %s\n", o.path, strerror(errno));
		goto out;
	}
	/* The whole trace is checked before anything runs. */
	if (trace_read_as(input, o.path, &t) || trace_check(&t))
		goto out;
	kernel_purges(&t, &k);
	for (int j = -1; j < nm; j++) {
		struct result *r = j < 0 ? &k : &m[j];
		char *ex[16];
		int n = 0;

		if (j < 0 && !o.png)
			continue;
		r->nev = t.nev;
		ex[n++] = "--rounds";
		ex[n++] = o.rounds;
		if (o.check)
			ex[n++] = "--check";
		if (o.at_kernel)
			ex[n++] = "--purge-at-kernel";
		if (o.png) {
			snprintf(seg, sizeof(seg), "%s/%s.seg", dir, r->mode);
			ex[n++] = "--segments";
			ex[n++] = seg;
		}
		ex[n] = NULL;
		if (!exe_for(r->mode, exe, sizeof(exe)) ||
		    run_child(exe, r->mode, input, ex, r) ||
		    (j >= 0 && !r->ran)) {
			fprintf(stderr, "vmap-trace replay: the %s replay "
				"failed\n", r->mode);
			goto out;
		}
	}
	table(&t, &k, m, nm, o.at_kernel);
	if (o.json) {
		if (out_file(&json))
			json_out(out_file(&json), &t, &k, m, nm, o.at_kernel);
		if (out_commit(&json)) {
			fprintf(stderr, "vmap-trace replay: %s: %s\n", o.json,
				strerror(errno));
			goto out;
		}
	}
	if (o.png && (plot(&png, dir, &t, &k, m, nm) || out_commit(&png))) {
		fprintf(stderr, "vmap-trace replay: %s: the picture could not "
			"be written\n", o.png);
		goto out;
	}
	if (fflush(stdout) || ferror(stdout)) {
		fprintf(stderr, "vmap-trace replay: writing the table: %s\n",
			strerror(errno));
		goto out;
	}
	rc = 0;
out:
	out_abort(&json);
	out_abort(&png);
	if (made_dir && nftw(dir, rm_one, 8, FTW_DEPTH | FTW_PHYS))
		fprintf(stderr, "vmap-trace: %s left behind\n", dir);
	for (int j = 0; j < nm; j++)
		free(m[j].p);
	free(k.p);
	trace_free(&t);
	return rc;
}
