/* SPDX-License-Identifier: MIT */
/*
 * vmap-bench - what vmap costs and what it saves, side by side.
 *
 * Scenarios (see tools/bench.h for how the pieces talk):
 *   test_vmalloc  the kernel's lib/test_vmalloc.c workloads, with its
 *                 parameters, presets and Summary lines; backends vmap,
 *                 vmap-strict and legacy (the pre-2016 lazy mechanism)
 *   headline      the seed's: one purge of 1,000 lazy areas against 0, 10k,
 *                 100k and 1M busy areas; vmap and legacy
 *   churn         allocate, touch, free, with a second thread busy; vmap,
 *                 vmap-strict, legacy, mmap, and malloc from glibc, jemalloc,
 *                 mimalloc and tcmalloc, each with default settings and set
 *                 to return memory at once
 *
 * Every (scenario, backend) runs in a child process of its own: a malloc
 * peer is loaded with LD_PRELOAD into its child, and legacy runs as the
 * vmap-bench-legacy executable.  The tables give each backend's ratio to
 * vmap.  The exit status is non-zero if any check of any child failed.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"

#define LIBDIR "/usr/lib/x86_64-linux-gnu/"

/* The churn's backends: name, library to preload, environment. */
static const struct peer {
	const char *name, *preload, *env;
} peers[] = {
	{ "vmap", NULL, NULL },
	{ "vmap-strict", NULL, NULL },
	{ "legacy", NULL, NULL },
	{ "mmap", NULL, NULL },
	{ "glibc", NULL, NULL },
	{ "glibc-return", NULL,
	  "MALLOC_TRIM_THRESHOLD_=0 MALLOC_MMAP_THRESHOLD_=4096 "
	  "MALLOC_TOP_PAD_=0" },
	{ "jemalloc", LIBDIR "libjemalloc.so.2", NULL },
	{ "jemalloc-return", LIBDIR "libjemalloc.so.2",
	  "MALLOC_CONF=dirty_decay_ms:0,muzzy_decay_ms:0" },
	{ "mimalloc", LIBDIR "libmimalloc.so.2", NULL },
	/* 2.0 (Debian 12) calls it DECOMMIT_DELAY, 2.1 PURGE_DELAY. */
	{ "mimalloc-return", LIBDIR "libmimalloc.so.2",
	  "MIMALLOC_DECOMMIT_DELAY=0 MIMALLOC_PURGE_DELAY=0" },
	{ "tcmalloc", LIBDIR "libtcmalloc_minimal.so.4", NULL },
	/* Release a span the moment it returns to the page heap (its size
	 * classes, up to 256 KiB, still cache: tcmalloc cannot be told not
	 * to). */
	{ "tcmalloc-return", LIBDIR "libtcmalloc_minimal.so.4",
	  "TCMALLOC_AGGRESSIVE_DECOMMIT=t TCMALLOC_RELEASE_RATE=10" },
};
#define NPEERS (sizeof(peers) / sizeof(peers[0]))

struct result {
	char scenario[32], backend[32], metric[64];
	double value;
	char *json;
};

static struct result *res;
static size_t nres, capres;
static int failures;
static char self[PATH_MAX];

/* ---- results ---- */

/* In a child: the backend's name in results, when the scenario knows it
 * by another ("malloc" for every malloc peer). */
static const char *label;

void bench_result(const char *scenario, const char *backend,
		  const char *metric, double value, const char *extra)
{
	printf("RESULT {\"scenario\":\"%s\",\"backend\":\"%s\",\"metric\":"
	       "\"%s\",\"value\":%.6g%s}\n",
	       scenario, label ? label : backend, metric, value,
	       extra ? extra : "");
	fflush(stdout);
}

static void keep(const char *line)
{
	struct result r = { 0 };

	if (sscanf(line, "RESULT {\"scenario\":\"%31[^\"]\",\"backend\":\"%31[^\"]"
			 "\",\"metric\":\"%63[^\"]\",\"value\":%lf",
		   r.scenario, r.backend, r.metric, &r.value) != 4)
		return;
	if (nres == capres) {
		capres = capres ? capres * 2 : 256;
		res = realloc(res, capres * sizeof(*res));
		if (!res)
			exit(1);
	}
	r.json = strdup(line + 7);
	res[nres++] = r;
}

/* The mean of every value reported for (scenario, backend, metric); NaN-free:
 * returns 0 and sets *found false when there is none. */
static double value(const char *scen, const char *backend, const char *metric,
		    bool *found)
{
	double sum = 0;
	int n = 0;

	for (size_t i = 0; i < nres; i++)
		if (!strcmp(res[i].scenario, scen) &&
		    !strcmp(res[i].backend, backend) &&
		    !strcmp(res[i].metric, metric)) {
			sum += res[i].value;
			n++;
		}
	*found = n > 0;
	return n ? sum / n : 0;
}

/* ---- children ---- */

static bool peer_available(const struct peer *p)
{
	return !p->preload || access(p->preload, R_OK) == 0;
}

/* Run `self --child scen backend args...` (or the legacy executable), with
 * the peer's preload and environment; collect its RESULT lines. */
static void child(const char *scen, const struct peer *p, char *const *args)
{
	char exe[PATH_MAX + 16], *argv[32], envbuf[256];
	int fd[2], status, n = 0;
	pid_t pid;
	FILE *in;
	char line[1024];

	snprintf(exe, sizeof(exe), "%s%s", self,
		 !strcmp(p->name, "legacy") ? "-legacy" : "");
	argv[n++] = exe;
	argv[n++] = "--child";
	argv[n++] = (char *)scen;
	argv[n++] = (char *)p->name;
	for (; args && *args && n < 30; args++)
		argv[n++] = *args;
	argv[n] = NULL;
	if (pipe(fd))
		exit(1);
	fflush(stdout);
	pid = fork();
	if (pid < 0)
		exit(1);
	if (pid == 0) {
		dup2(fd[1], 1);
		close(fd[0]);
		close(fd[1]);
		if (p->preload)
			setenv("LD_PRELOAD", p->preload, 1);
		if (p->env) {
			snprintf(envbuf, sizeof(envbuf), "%s", p->env);
			for (char *kv = strtok(envbuf, " "); kv;
			     kv = strtok(NULL, " "))
				putenv(strdup(kv));
		}
		execv(exe, argv);
		fprintf(stderr, "vmap-bench: cannot run %s: %s\n", exe,
			strerror(errno));
		_exit(127);
	}
	close(fd[1]);
	in = fdopen(fd[0], "r");
	while (in && fgets(line, sizeof(line), in)) {
		if (!strncmp(line, "RESULT ", 7))
			keep(line);
		else
			fputs(line, stdout);
	}
	if (in)
		fclose(in);
	waitpid(pid, &status, 0);
	if (!WIFEXITED(status) || WEXITSTATUS(status)) {
		fprintf(stderr, "vmap-bench: %s on %s: checks failed (status "
				"%#x)\n", scen, p->name, status);
		failures++;
	}
}

static const struct peer *peer(const char *name)
{
	for (size_t i = 0; i < NPEERS; i++)
		if (!strcmp(peers[i].name, name))
			return &peers[i];
	return NULL;
}

/* ---- the child's side ---- */

static int child_main(int argc, char **argv)
{
	const char *scen = argv[2], *backend = argv[3];

	if (!strcmp(scen, "test_vmalloc")) {
		struct tv_params p;

		tv_defaults(&p);
		for (int i = 4; i < argc; i++)
			if (tv_param(&p, argv[i]))
				return 2;
		return tv_run(backend, &p) ? 1 : 0;
	}
	if (!strcmp(scen, "headline")) {
		uint64_t busy[8];
		int n = 0;

		for (int i = 4; i < argc && n < 8; i++)
			busy[n++] = strtoull(argv[i], NULL, 0);
		return headline_run(backend, busy, n) ? 1 : 0;
	}
	if (!strcmp(scen, "churn") && argc >= 6) {
		bool ours = !strncmp(backend, "vmap", 4) ||
			    !strcmp(backend, "legacy") ||
			    !strcmp(backend, "mmap");

		label = backend;
		return churn_run(ours ? backend : "malloc", atoi(argv[4]),
				 atof(argv[5])) ? 1 : 0;
	}
	return 2;
}

/* ---- tables, JSON, plot ---- */

static const char *const tv_tests[] = {
	"fix_size_alloc_test", "full_fit_alloc_test",
	"long_busy_list_alloc_test", "random_size_alloc_test",
	"fix_align_alloc_test", "random_size_align_alloc_test",
	"align_shift_alloc_test", "pcpu_alloc_test",
	"kvfree_rcu_1_arg_vmalloc_test", "kvfree_rcu_2_arg_vmalloc_test",
	"vm_map_ram_test",
};

/* One table: rows are metrics, columns backends, then each one's ratio to
 * the first column (vmap).  higher: bigger is better (ratios inverted so
 * that > 1 always means vmap is ahead). */
static void table(const char *title, const char *scen, const char *const *rows,
		  const char *const *labels, int nrows,
		  const char *const *cols, int ncols, bool higher)
{
	bool any = false, f;

	for (int r = 0; r < nrows && !any; r++)
		for (int c = 0; c < ncols && !any; c++)
			value(scen, cols[c], rows[r], &any);
	if (!any)
		return;
	printf("\n%s\n%-32s", title, "");
	for (int c = 0; c < ncols; c++)
		printf(" %14s", cols[c]);
	printf("   (vmap's lead over each)\n");
	for (int r = 0; r < nrows; r++) {
		double base = value(scen, cols[0], rows[r], &f);

		printf("%-32s", labels[r]);
		for (int c = 0; c < ncols; c++) {
			double v = value(scen, cols[c], rows[r], &f);

			if (f)
				printf(" %14.4g", v);
			else
				printf(" %14s", "-");
		}
		printf("  ");
		for (int c = 1; c < ncols; c++) {
			double v = value(scen, cols[c], rows[r], &f);

			if (f && v > 0 && base > 0)
				printf(" %7.1fx", higher ? base / v : v / base);
			else
				printf(" %8s", "-");
		}
		printf("\n");
	}
}

/* Thousands or millions, in 7 characters. */
static const char *human(double v, char *buf)
{
	if (v >= 1e6)
		snprintf(buf, 16, "%6.2fM", v / 1e6);
	else if (v >= 1e3)
		snprintf(buf, 16, "%6.1fk", v / 1e3);
	else
		snprintf(buf, 16, "%7.0f", v);
	return buf;
}

/* The churn, one row per backend: ops/s for each size and worker count,
 * peak RSS, and vmap's lead on the seed's case (1 page, 2 workers). */
static void churn_table(const char *const *ops, const char *const *rss)
{
	bool f, any = false;
	char buf[16];
	double base;

	for (size_t i = 0; i < NPEERS && !any; i++)
		value("churn", peers[i].name, ops[0], &any);
	if (!any)
		return;
	base = value("churn", "vmap", ops[4], &f);
	printf("\nchurn: alloc + touch every page + free per second, a second "
	       "thread busy (higher is better)\n%-16s %31s   %31s  %17s  %s\n",
	       "", "1 worker: 1, 4, 16, 64 pages",
	       "2 workers: 1, 4, 16, 64 pages", "peak RSS KiB 1w/2w",
	       "vmap's lead");
	for (size_t i = 0; i < NPEERS; i++) {
		const char *b = peers[i].name;
		double v;

		value("churn", b, ops[0], &f);
		if (!f)
			continue;
		printf("%-16s", b);
		for (int k = 0; k < 8; k++)
			printf("%s%s", k == 4 ? "   " : " ",
			       human(value("churn", b, ops[k], &f), buf));
		printf("  %8.0f %8.0f", value("churn", b, rss[0], &f),
		       value("churn", b, rss[1], &f));
		v = value("churn", b, ops[4], &f);
		printf("  %6.1fx\n", v > 0 ? base / v : 0);
	}
}

static void write_json(const char *path)
{
	FILE *f = fopen(path, "w");

	if (!f) {
		perror(path);
		failures++;
		return;
	}
	fprintf(f, "[\n");
	for (size_t i = 0; i < nres; i++)
		fprintf(f, "  %.*s%s\n", (int)strcspn(res[i].json, "\n"),
			res[i].json, i + 1 < nres ? "," : "");
	fprintf(f, "]\n");
	fclose(f);
}

static void plot(const char *path, const uint64_t *busy, int nbusy,
		 const char *const *churn_cols, int ncols)
{
	char dat[] = "/tmp/vmap-bench-XXXXXX";
	int fd = mkstemp(dat);
	FILE *d = fd >= 0 ? fdopen(fd, "w") : NULL, *g;
	bool f;

	if (!d)
		return;
	/* Block 0: headline; block 1: churn ops/s with 2 workers, 1 and 64
	 * pages (where the "-return" mallocs really return memory). */
	for (int i = 0; i < nbusy; i++) {
		char m[64];

		snprintf(m, sizeof(m), "purge_us_%llu",
			 (unsigned long long)busy[i]);
		fprintf(d, "%llu %g %g\n",
			(unsigned long long)(busy[i] ? busy[i] : 1),
			value("headline", "vmap", m, &f),
			value("headline", "legacy", m, &f));
	}
	fprintf(d, "\n\n");
	for (int c = 0; c < ncols; c++)
		fprintf(d, "\"%s\" %g %g\n", churn_cols[c],
			value("churn", churn_cols[c], "ops_per_s_1p_2t", &f),
			value("churn", churn_cols[c], "ops_per_s_64p_2t", &f));
	fclose(d);
	g = popen("gnuplot", "w");
	if (!g) {
		fprintf(stderr, "vmap-bench: no gnuplot: no plot\n");
		unlink(dat);
		return;
	}
	fprintf(g, "set terminal pngcairo size 1400,560 noenhanced\n"
		   "set output '%s'\n"
		   "set multiplot layout 1,2\n"
		   "set title 'purge of 1,000 lazy areas vs busy areas'\n"
		   "set logscale xy\nset xlabel 'busy areas (0 drawn at 1)'\n"
		   "set ylabel 'microseconds'\nset key top left\n"
		   "plot '%s' index 0 using 1:2 with linespoints title 'vmap',"
		   " '' index 0 using 1:3 with linespoints title 'legacy'\n"
		   "unset logscale\nset logscale y\n"
		   "set title 'churn: alloc+touch+free, 2 workers and a busy "
		   "thread'\n"
		   "set xlabel ''\nset ylabel 'alloc+touch+free per second'\n"
		   "set style data histograms\nset style fill solid 0.8\n"
		   "set xtics rotate by -45\nset key top right\n"
		   "plot '%s' index 1 using 2:xtic(1) title '1-page areas',"
		   " '' index 1 using 3 title '64-page areas'\n"
		   "unset multiplot\n",
		path, dat, dat);
	if (pclose(g))
		fprintf(stderr, "vmap-bench: gnuplot failed\n");
	unlink(dat);
}

/* ---- main ---- */

static void usage(void)
{
	fprintf(stderr,
		"usage: vmap-bench [options] [test_vmalloc key=value ...]\n"
		"  --scenarios LIST  test_vmalloc,headline,churn (default all)\n"
		"  --preset NAME     test_vmalloc.sh's performance, stress or "
		"smoke\n"
		"  --churn-seconds S seconds per churn run (default 2)\n"
		"  --headline LIST   busy counts (default 0,10000,100000,"
		"1000000)\n"
		"  --smoke           every workload and backend, tiny counts\n"
		"  --no-peers        no malloc peers (for sanitizer builds)\n"
		"  --json FILE       all results as JSON\n"
		"  --plot FILE.png   headline and churn, with gnuplot\n"
		"test_vmalloc keys: nr_threads test_loop_count run_test_mask "
		"sequential_test_order\n  test_repeat_count nr_pages "
		"(default: test_loop_count=100000, not the module's 1000000)\n");
	exit(2);
}

int main(int argc, char **argv)
{
	const char *scens = "test_vmalloc,headline,churn", *json = NULL,
		   *png = NULL, *bl = "0,10000,100000,1000000";
	char *tvargs[16], secs[32] = "2", nt[8];
	uint64_t busy[8];
	int ntv = 0, nbusy = 0;
	bool smoke = false, no_peers = false;
	struct tv_params tp;
	ssize_t len;

	if (argc >= 4 && !strcmp(argv[1], "--child"))
		return child_main(argc, argv);
	len = readlink("/proc/self/exe", self, sizeof(self) - 8);
	if (len <= 0)
		return 1;
	self[len] = 0;
	tv_defaults(&tp);
	tp.test_loop_count = 100000;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--scenarios") && i + 1 < argc)
			scens = argv[++i];
		else if (!strcmp(argv[i], "--preset") && i + 1 < argc) {
			if (tv_preset(&tp, argv[++i]))
				usage();
		} else if (!strcmp(argv[i], "--churn-seconds") && i + 1 < argc)
			snprintf(secs, sizeof(secs), "%s", argv[++i]);
		else if (!strcmp(argv[i], "--headline") && i + 1 < argc)
			bl = argv[++i];
		else if (!strcmp(argv[i], "--smoke"))
			smoke = true;
		else if (!strcmp(argv[i], "--no-peers"))
			no_peers = true;
		else if (!strcmp(argv[i], "--json") && i + 1 < argc)
			json = argv[++i];
		else if (!strcmp(argv[i], "--plot") && i + 1 < argc)
			png = argv[++i];
		else if (tv_param(&tp, argv[i]))
			usage();
	}
	if (smoke) {
		tp.test_loop_count = 200;
		tp.test_repeat_count = 1;
		snprintf(secs, sizeof(secs), "0.2");
		bl = "0,1000";
	}
	for (char *b = strdup(bl), *t = strtok(b, ","); t && nbusy < 8;
	     t = strtok(NULL, ","))
		busy[nbusy++] = strtoull(t, NULL, 0);

	if (strstr(scens, "test_vmalloc")) {
		static char kv[6][48];
		static const char *const tvb[] = { "vmap", "vmap-strict",
						   "legacy" };

		snprintf(kv[0], 48, "nr_threads=%d", tp.nr_threads ? tp.nr_threads : 1);
		snprintf(kv[1], 48, "test_loop_count=%d", tp.test_loop_count);
		snprintf(kv[2], 48, "run_test_mask=%d", tp.run_test_mask);
		snprintf(kv[3], 48, "sequential_test_order=%d",
			 tp.sequential_test_order);
		snprintf(kv[4], 48, "test_repeat_count=%d",
			 tp.test_repeat_count);
		snprintf(kv[5], 48, "nr_pages=%d", tp.nr_pages ? tp.nr_pages : 1);
		for (ntv = 0; ntv < 6; ntv++)
			tvargs[ntv] = kv[ntv];
		tvargs[ntv] = NULL;
		for (int b = 0; b < 3; b++) {
			printf("== test_vmalloc on %s\n", tvb[b]);
			child("test_vmalloc", peer(tvb[b]), tvargs);
		}
	}
	if (strstr(scens, "headline")) {
		char *hargs[9], hb[8][24];

		for (int i = 0; i < nbusy; i++) {
			snprintf(hb[i], sizeof(hb[i]), "%llu",
				 (unsigned long long)busy[i]);
			hargs[i] = hb[i];
		}
		hargs[nbusy] = NULL;
		child("headline", peer("vmap"), hargs);
		child("headline", peer("legacy"), hargs);
	}
	if (strstr(scens, "churn")) {
		for (int t = 1; t <= 2; t++)
			for (size_t i = 0; i < NPEERS; i++) {
				char *cargs[] = { nt, secs, NULL };

				snprintf(nt, sizeof(nt), "%d", t);
				if (no_peers && peers[i].preload)
					continue;
				if (no_peers && !strncmp(peers[i].name,
							 "glibc", 5))
					continue;
				if (!peer_available(&peers[i])) {
					if (t == 1)
						printf("vmap-bench: %s not run: "
						       "%s is missing\n",
						       peers[i].name,
						       peers[i].preload);
					continue;
				}
				child("churn", &peers[i], cargs);
			}
	}

	/* ---- report ---- */
	{
		const char *cols3[] = { "vmap", "vmap-strict", "legacy" };
		const char *cols2[] = { "vmap", "legacy" };
		const char *churn_cols[NPEERS];
		char hm[8][64], *hmp[8];
		static const char *const cm[] = {
			"ops_per_s_1p_1t", "ops_per_s_4p_1t", "ops_per_s_16p_1t",
			"ops_per_s_64p_1t", "ops_per_s_1p_2t", "ops_per_s_4p_2t",
			"ops_per_s_16p_2t", "ops_per_s_64p_2t",
		};
		static const char *const rss[] = { "peak_rss_kib_1t",
						   "peak_rss_kib_2t" };

		for (size_t i = 0; i < NPEERS; i++)
			churn_cols[i] = peers[i].name;
		table("test_vmalloc: avg usec per run (lower is better)",
		      "test_vmalloc", tv_tests, tv_tests,
		      (int)(sizeof(tv_tests) / sizeof(tv_tests[0])), cols3, 3,
		      false);
		for (int i = 0; i < nbusy; i++) {
			snprintf(hm[i], sizeof(hm[i]), "purge_us_%llu",
				 (unsigned long long)busy[i]);
			hmp[i] = hm[i];
		}
		table("headline: purge of 1,000 lazy areas, usec, by busy "
		      "areas (lower is better)",
		      "headline", (const char *const *)hmp,
		      (const char *const *)hmp, nbusy, cols2, 2, false);
		churn_table(cm, rss);
		if (json)
			write_json(json);
		if (png)
			plot(png, busy, nbusy, churn_cols, (int)NPEERS);
	}
	printf("\nvmap-bench: %s\n", failures ? "CHECKS FAILED" : "all checks "
	       "passed");
	return failures ? 1 : 0;
}
