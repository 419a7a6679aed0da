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
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "trace.h"

#define MAX_MODES 3

struct purge {
	size_t at;		/* event index */
	uint64_t n, lo, hi;
	bool explicit_;
};

struct result {
	const char *mode;
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

	if (sscanf(l, "purge %llu %llu %llx %llx", &a, &b, &c, &d) == 4)
		push(r, (struct purge){ (size_t)a, b, c, d, false });
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
	int fds[2], status, n = 4;
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
	if (pid < 0)
		return -1;
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
	while (f && getline(&l, &cap, f) > 0) {
		l[strcspn(l, "\n")] = '\0';
		line_in(r, l);
	}
	free(l);
	if (f)
		fclose(f);
	waitpid(pid, &status, 0);
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

/* The kernel's purges vmap is compared with: all but the drain's empty
 * re-runs, which vmap has no reason to make (with --purge-at kernel, all:
 * the replay makes each). */
static size_t matched(const struct result *k, bool all, size_t *idx)
{
	size_t n = 0;

	for (size_t i = 0; i < k->np; i++)
		if (all || k->p[i].n || k->p[i].explicit_)
			idx[n++] = i;
	return n;
}

static void table(const struct trace *t, const struct result *k0,
		  const struct result *m, int nm, bool at_kernel)
{
	struct result kk = *k0, *k = &kk;
	size_t np, *idx = calloc(k0->np + 1, sizeof(*idx));
	struct purge *kp = calloc(k0->np + 1, sizeof(*kp));

	if (!idx || !kp) {
		free(idx);
		free(kp);
		return;
	}
	kk.np = matched(k0, at_kernel, idx);
	for (size_t i = 0; i < kk.np; i++)
		kp[i] = k0->p[idx[i]];
	kk.p = kp;
	np = k->np;

	printf("%s: %zu allocations (%zu failed), %zu frees, %zu purges; "
	       "kernel %s, %llu CPUs, nr_lazy_max %llu pages; %zu snapshot "
	       "areas%s\n\n", t->path, t->nalloc, t->nfailed, t->nfree,
	       t->npurge, t->kernel[0] ? t->kernel : "unknown",
	       (unsigned long long)t->cpus,
	       (unsigned long long)t->nr_lazy_max, t->nsnap,
	       t->raw ? " (a raw dump: inferred)" : "");
	printf("purges %s; %zu empty re-runs of the kernel's drain not "
	       "compared\n", at_kernel ? "at the kernel's moments "
	       "(--purge-at kernel: vmap's threshold off)" :
	       "by vmap's own threshold (lazy_max_pages = nr_lazy_max)",
	       k0->np - k->np);
	printf("%-34s %16s", "purges, matched in order", "kernel");
	for (int j = 0; j < nm; j++)
		printf(" %18s", m[j].mode);
	printf("\n");
	for (int j = 0; j < nm; j++)
		if (m[j].np > np)
			np = m[j].np;
	for (size_t i = 0; i < np; i++) {
		char lab[64];

		snprintf(lab, sizeof(lab), "  #%zu areas%s", i + 1,
			 i < k->np && k->p[i].explicit_ ? " (explicit)" : "");
		printf("%-34s", lab);
		if (i < k->np)
			printf(" %16llu", (unsigned long long)k->p[i].n);
		else
			printf(" %16s", "-");
		for (int j = 0; j < nm; j++) {
			if (i >= m[j].np) {
				printf(" %18s", "-");
				continue;
			}
			if (i < k->np && k->p[i].n)
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
		printf("\n");
	}
	printf("%-34s %16s", "purges within 1% of the kernel's", "");
	for (int j = 0; j < nm; j++) {
		size_t ok = 0;

		for (size_t i = 0; i < k->np && i < m[j].np; i++)
			ok += 100 * (m[j].p[i].n > k->p[i].n
					     ? m[j].p[i].n - k->p[i].n
					     : k->p[i].n - m[j].p[i].n) <=
			      k->p[i].n;
		printf(" %11zu of %-3zu", ok, k->np);
	}
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
	/* How far from the kernel's address, when not at it: log2 buckets
	 * of pages (hist[][b]: distances in [2^(b-1), 2^b)). */
	static const struct { int lo, hi; const char *what; } bands[] = {
		{ 0, 4, "< 16 pages" }, { 5, 8, "16-255 pages" },
		{ 9, 12, "256-4095 pages" }, { 13, 16, "4096-65535 pages" },
		{ 17, 65, ">= 65536 pages" },
	};
	printf("\n  %-32s", "distance, when not at it:");
	for (size_t k = 0; k < sizeof(bands) / sizeof(bands[0]); k++) {
		printf("\n    %-30s %16s", bands[k].what, "");
		for (int j = 0; j < nm; j++) {
			uint64_t n = 0;

			for (int x = bands[k].lo; x <= bands[k].hi; x++)
				n += m[j].hist[0][x] + m[j].hist[1][x];
			printf(" %7llu (%5.1f%%)", (unsigned long long)n,
			       pct((double)n, (double)(m[j].placed -
						       m[j].exact)));
		}
	}
	/* In words: what explains most of the differences, per mode. */
	printf("\n");
	for (int j = 0; j < nm; j++) {
		static const char *const why[6] = {
			"the kernel took back an area of the same size it had "
			"freed: its per-CPU node pools, not a lowest-fit search",
			"vmap's lowest fit found a lower range the kernel did "
			"not take (held in its pools, or skipped by its "
			"size + align - 1 search)",
			"vmap placed higher (its own pools)",
			"the kernel's range was still lazy in vmap: the two "
			"purged at different moments",
			"vmap had placed an earlier area there",
			"outside vmap's spans",
		};
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
		printf(" %18.0f", m[j].ns_per_op);
	printf("\n");
	free(idx);
	free(kp);
}

static void json(FILE *f, const struct trace *t, const struct result *k,
		 const struct result *m, int nm, bool at_kernel)
{
	fprintf(f, "{\"purge_at\":\"%s\",", at_kernel ? "kernel" : "vmap");
	fprintf(f, "\"trace\":\"%s\",\"kernel\":\"%s\",\"cpus\":%llu,"
		"\"nr_lazy_max\":%llu,\"allocations\":%zu,\"frees\":%zu,"
		"\"snapshot_areas\":%zu,\"raw\":%s,\n \"kernel_purges\":[",
		t->path, t->kernel, (unsigned long long)t->cpus,
		(unsigned long long)t->nr_lazy_max, t->nalloc, t->nfree,
		t->nsnap, t->raw ? "true" : "false");
	for (size_t i = 0; i < k->np; i++)
		fprintf(f, "%s{\"event\":%zu,\"areas\":%llu,\"start\":%llu,"
			"\"end\":%llu,\"explicit\":%s}", i ? "," : "",
			k->p[i].at, (unsigned long long)k->p[i].n,
			(unsigned long long)k->p[i].lo,
			(unsigned long long)k->p[i].hi,
			k->p[i].explicit_ ? "true" : "false");
	fprintf(f, "],\n \"modes\":{");
	for (int j = 0; j < nm; j++) {
		const struct result *r = &m[j];

		fprintf(f, "%s\n  \"%s\":{\"ns_per_op\":%.1f,\"ops\":%llu,"
			"\"placed\":%llu,\"exact\":%llu,\"vmap_failed\":%llu,"
			"\"vmap_extra\":%llu,\"classes\":{", j ? "," : "",
			r->mode, r->ns_per_op, (unsigned long long)r->ops,
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

/* The picture: one panel per replay (the kernel first), address against
 * time: busy areas coloured by size, lazy time grey, purges as lines. */
static int plot(const char *png, const char *dir, const struct trace *t,
		const struct result *k, const struct result *m, int nm)
{
	char path[PATH_MAX + 64];
	FILE *f;
	int rc;
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
	fprintf(f, "set terminal pngcairo size 1400,%d\nset output '%s'\n"
		"set multiplot layout %d,1 title '%s: address space over "
		"time (busy by size, lazy grey, purges red)'\n"
		"set xlabel 'seconds from the first event'\nset ylabel 'MiB from vstart'\n"
		"set cblabel 'log2 size (pages)'\nset palette rgb 33,13,10\n"
		"set key off\nset cbrange [0:*]\nT0 = %.6f\n",
		300 * (nm + 1), png, nm + 1, t->path,
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
	fclose(f);
	snprintf(path, sizeof(path), "gnuplot %s/plot.gp 2>%s/gnuplot.err",
		 dir, dir);
	rc = system(path);
	if (rc) {
		snprintf(path, sizeof(path), "cat %s/gnuplot.err >&2", dir);
		fprintf(stderr, "vmap-trace: gnuplot failed (is gnuplot-nox "
			"installed?):\n");
		if (system(path))
			rc = -1;
		return -1;
	}
	return 0;
}

static const char *exe_for(const char *mode, char *buf, size_t cap)
{
	ssize_t n = readlink("/proc/self/exe", buf, cap - 16);
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

int replay_main(int argc, char **argv, const char *self)
{
	const char *json_path = NULL, *png = NULL, *path = NULL;
	char modes[128] = "seed,pool,legacy", *tok, *save, exe[PATH_MAX];
	char dir[] = "/tmp/vmap-trace.XXXXXX", seg[PATH_MAX + 64];
	char *extra[8] = { 0 };
	int ne = 0, nm = 0, rc = 1;
	bool at_kernel = false;
	struct trace t;
	struct result k = { .mode = "kernel" }, m[MAX_MODES] = { 0 };

	(void)self;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json") && i + 1 < argc)
			json_path = argv[++i];
		else if (!strcmp(argv[i], "--plot") && i + 1 < argc)
			png = argv[++i];
		else if (!strcmp(argv[i], "--modes") && i + 1 < argc)
			snprintf(modes, sizeof(modes), "%s", argv[++i]);
		else if (!strcmp(argv[i], "--check"))
			extra[ne++] = "--check";
		else if (!strcmp(argv[i], "--purge-at") && i + 1 < argc &&
			 (!strcmp(argv[i + 1], "kernel") ||
			  !strcmp(argv[i + 1], "vmap"))) {
			at_kernel = !strcmp(argv[++i], "kernel");
			if (at_kernel)
				extra[ne++] = "--purge-at-kernel";
		}
		else if (!strcmp(argv[i], "--rounds") && i + 1 < argc) {
			extra[ne++] = "--rounds";
			extra[ne++] = argv[++i];
		} else if (argv[i][0] != '-' && !path)
			path = argv[i];
		else {
			fprintf(stderr, "vmap-trace replay: bad argument '%s'\n",
				argv[i]);
			return 2;
		}
	}
	if (!path) {
		fprintf(stderr, "vmap-trace replay: which trace?\n");
		return 2;
	}
	for (tok = strtok_r(modes, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		if (nm == MAX_MODES || (strcmp(tok, "seed") &&
					strcmp(tok, "pool") &&
					strcmp(tok, "legacy"))) {
			fprintf(stderr, "vmap-trace replay: modes are seed, "
				"pool, legacy\n");
			return 2;
		}
		m[nm++].mode = tok;
	}
	/* The whole trace is checked before anything runs. */
	if (trace_read(path, &t))
		return 1;
	if (trace_check(&t))
		goto out;
	for (size_t i = 0; i < t.nev; i++)
		if (t.ev[i].kind == EV_PURGE && !(t.ev[i].flags & EVF_SKIP))
			push(&k, (struct purge){ i, t.ev[i].p.npurged,
						 t.ev[i].p.start,
						 t.ev[i].p.end,
						 t.ev[i].flags & EVF_EXPLICIT });
	if (png && !mkdtemp(dir)) {
		fprintf(stderr, "vmap-trace: %s: %s\n", dir, strerror(errno));
		goto out;
	}
	for (int j = -1; j < nm; j++) {
		struct result *r = j < 0 ? &k : &m[j];
		char *ex[12];
		int n = 0;

		if (j < 0 && !png)
			continue;
		for (int i = 0; i < ne; i++)
			ex[n++] = extra[i];
		if (png) {
			snprintf(seg, sizeof(seg), "%s/%s.seg", dir, r->mode);
			ex[n++] = "--segments";
			ex[n++] = seg;
		}
		ex[n] = NULL;
		if (!exe_for(r->mode, exe, sizeof(exe)) ||
		    run_child(exe, r->mode, path, ex, r) ||
		    (j >= 0 && !r->ran)) {
			fprintf(stderr, "vmap-trace replay: the %s replay "
				"failed\n", r->mode);
			goto out;
		}
	}
	table(&t, &k, m, nm, at_kernel);
	if (json_path) {
		FILE *f = fopen(json_path, "w");

		if (!f) {
			fprintf(stderr, "%s: %s\n", json_path, strerror(errno));
			goto out;
		}
		json(f, &t, &k, m, nm, at_kernel);
		fclose(f);
	}
	if (png && plot(png, dir, &t, &k, m, nm))
		goto out;
	rc = 0;
out:
	if (png && strcmp(dir, "/tmp/vmap-trace.XXXXXX")) {
		char cmd[PATH_MAX + 16];

		snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
		if (system(cmd))
			fprintf(stderr, "vmap-trace: %s left behind\n", dir);
	}
	for (int j = 0; j < nm; j++)
		free(m[j].p);
	free(k.p);
	trace_free(&t);
	return rc;
}
