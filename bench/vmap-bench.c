/* SPDX-License-Identifier: MIT */
/*
 * vmap-bench - what vmap costs and what it saves, side by side.
 *
 * Scenarios (see bench/bench.h for how the pieces talk):
 *   test_vmalloc  the kernel's lib/test_vmalloc.c workloads, with its
 *                 parameters, presets and Summary lines; backends vmap,
 *                 vmap-strict and legacy (the pre-2016 lazy mechanism)
 *   headline      the seed's: one purge of 1,000 lazy areas against 0, 10k,
 *                 100k and 1M busy areas; vmap and legacy
 *   churn         allocate, touch, free, with a second thread busy; vmap,
 *                 vmap-strict, legacy, mmap, and malloc from glibc, jemalloc,
 *                 mimalloc and tcmalloc, each with default settings and set
 *                 to return memory at once
 *   reclaim       what the purge thread buys: the tail latency of
 *                 vmap_vfree with the purger off and on (3 workloads, a
 *                 second thread busy), and RSS every 2 ms for 300 ms after
 *                 a burst of 64 KiB areas is freed and no call follows --
 *                 vmap against glibc, jemalloc (background thread),
 *                 mimalloc and tcmalloc, each set to a 10 ms delay where it
 *                 has one.  Runs are cut at 3 s each (--reclaim-seconds;
 *                 --reclaim-full for the 200,000 cycles x 5)
 *   bigbuf        what a malloc-style user gets for large buffers: two
 *                 workers allocate 256 KiB, 1 MiB or 4 MiB, write a byte
 *                 per page, free the oldest of 4 live, a third thread busy;
 *                 cycles/s, page faults, peak RSS, then RSS every 5 ms for
 *                 500 ms with no allocator call -- vmap (a memory space,
 *                 default flags) against glibc, jemalloc, tcmalloc and
 *                 mimalloc with their defaults, and mmap/munmap
 *
 * Every (scenario, backend) runs in a child process of its own: a malloc
 * peer is loaded with LD_PRELOAD into its child, and legacy runs as the
 * vmap-bench-legacy executable.  The tables give each backend's ratio to
 * vmap.  The exit status is non-zero if any check of any child failed.
 */
#include <errno.h>
#include <fcntl.h>
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

/* The reclaim scenario's vfree-latency part: one memory space without its
 * purge thread (the kernel's behaviour: the free past the threshold purges)
 * and one with it (the default).  Workloads: area size and the warm pool. */
static const struct peer reclaim_free_peers[] = {
	{ "vmap-nopurger", NULL, NULL },
	{ "vmap", NULL, NULL },
};
static const struct reclaim_workload {
	int pages;
	bool pool;
	const char *key, *name;
} reclaim_workloads[] = {
	{ 16, true, "16p_pool", "16 pages, pool" },
	{ 16, false, "16p_nopool", "16 pages, no pool" },
	{ 64, false, "64p_nopool", "64 pages, no pool" },
};
#define NRWORK (sizeof(reclaim_workloads) / sizeof(reclaim_workloads[0]))

/* Its RSS part: vmap's purger against each peer's own delayed release, set
 * to 10 ms where it has one -- only jemalloc has a thread to do it. */
static const struct peer reclaim_rss_peers[] = {
	{ "vmap", NULL, NULL },
	{ "glibc", NULL, NULL },
	{ "jemalloc-bg", LIBDIR "libjemalloc.so.2",
	  "MALLOC_CONF=background_thread:true,dirty_decay_ms:10,"
	  "muzzy_decay_ms:0" },
	/* 2.0 (Debian 12) calls it DECOMMIT_DELAY, 2.1 PURGE_DELAY. */
	{ "mimalloc-delay", LIBDIR "libmimalloc.so.2",
	  "MIMALLOC_PURGE_DELAY=10 MIMALLOC_DECOMMIT_DELAY=10" },
	{ "tcmalloc-rate", LIBDIR "libtcmalloc_minimal.so.4",
	  "TCMALLOC_RELEASE_RATE=10" },
};
#define NRPEERS (sizeof(reclaim_rss_peers) / sizeof(reclaim_rss_peers[0]))

/* The bigbuf scenario's backends (peers[] by name: the mallocs with their
 * defaults) and buffer sizes.  --bigbuf-cycles is the count for the first
 * size; the others run as many bytes (cycles * 256 KiB / their size). */
static const char *const bigbuf_backends[] = {
	"vmap", "glibc", "jemalloc", "tcmalloc", "mimalloc", "mmap",
};
#define NBBACK (sizeof(bigbuf_backends) / sizeof(bigbuf_backends[0]))
static const int bigbuf_kib[] = { 256, 1024, 4096 };
#define NBSIZES (sizeof(bigbuf_kib) / sizeof(bigbuf_kib[0]))

static int bigbuf_cycles(int cycles, int kib)
{
	int n = (int)((long)cycles * bigbuf_kib[0] / kib);

	return n > 0 ? n : 1;
}

/* "256 KiB", "4 MiB". */
static const char *bigbuf_size(int kib, char *buf)
{
	if (kib % 1024)
		snprintf(buf, 16, "%d KiB", kib);
	else
		snprintf(buf, 16, "%d MiB", kib / 1024);
	return buf;
}

struct result {
	char scenario[32], backend[32], metric[64];
	double value;
	char *json;
};

static struct result *res;
static size_t nres, capres;
static int failures;
static char self[PATH_MAX];

/* ---- what the workloads share ---- */

/* Resident set, bytes, from /proc/self/statm's second field -- parsed by
 * hand and read into a stack buffer: no allocator call (stdio's FILE and
 * sscanf may allocate). */
long bench_rss_bytes(long pg)
{
	char buf[128], *p = buf;
	long res = 0;
	ssize_t n;
	int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = 0;
	while (*p && *p != ' ')
		p++;
	while (*p == ' ')
		p++;
	if (*p < '0' || *p > '9')
		return -1;
	while (*p >= '0' && *p <= '9')
		res = res * 10 + (*p++ - '0');
	return res * pg;
}

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

/* The reclaim scenario: a child per (workload, purger off/on) for the
 * vfree latency, then one per backend for the RSS after a burst. */
static void run_reclaim(int cycles, int repeats, const char *secs, int areas,
			bool no_peers)
{
	char pages[8], pool[4], cyc[16], rep[8], nareas[16];

	snprintf(cyc, sizeof(cyc), "%d", cycles);
	snprintf(rep, sizeof(rep), "%d", repeats);
	snprintf(nareas, sizeof(nareas), "%d", areas);
	for (size_t w = 0; w < NRWORK; w++)
		for (size_t b = 0; b < 2; b++) {
			char *args[] = { (char *)"free", pages, pool, cyc, rep,
					 (char *)secs, NULL };

			snprintf(pages, sizeof(pages), "%d",
				 reclaim_workloads[w].pages);
			snprintf(pool, sizeof(pool), "%d",
				 reclaim_workloads[w].pool);
			printf("== reclaim: vfree latency, %s, %s\n",
			       reclaim_workloads[w].name,
			       reclaim_free_peers[b].name);
			child("reclaim", &reclaim_free_peers[b], args);
		}
	for (size_t i = 0; i < NRPEERS; i++) {
		const struct peer *p = &reclaim_rss_peers[i];
		char *args[] = { (char *)"rss", nareas, NULL };

		if (no_peers && strcmp(p->name, "vmap"))
			continue;
		if (!peer_available(p)) {
			printf("vmap-bench: %s not run: %s is missing\n",
			       p->name, p->preload);
			continue;
		}
		printf("== reclaim: RSS after a burst, %s\n", p->name);
		child("reclaim", p, args);
	}
}

/* The bigbuf scenario: a child per (size, backend), so that what one size
 * leaves in an allocator's caches is not the next one's start. */
static void run_bigbuf(int cycles, int window_ms, bool no_peers)
{
	char kib[16], cyc[16], win[16], name[16];

	snprintf(win, sizeof(win), "%d", window_ms);
	for (size_t z = 0; z < NBSIZES; z++)
		for (size_t i = 0; i < NBBACK; i++) {
			const struct peer *p = peer(bigbuf_backends[i]);
			char *args[] = { kib, cyc, win, NULL };

			if (no_peers && strcmp(p->name, "vmap") &&
			    strcmp(p->name, "mmap"))
				continue;
			if (!peer_available(p)) {
				if (!z)
					printf("vmap-bench: %s not run: %s is "
					       "missing\n", p->name,
					       p->preload);
				continue;
			}
			snprintf(kib, sizeof(kib), "%d", bigbuf_kib[z]);
			snprintf(cyc, sizeof(cyc), "%d",
				 bigbuf_cycles(cycles, bigbuf_kib[z]));
			printf("== bigbuf: %s, %s\n",
			       bigbuf_size(bigbuf_kib[z], name), p->name);
			child("bigbuf", p, args);
		}
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
	if (!strcmp(scen, "reclaim") && argc >= 6) {
		label = backend;
		if (!strcmp(argv[4], "free") && argc >= 10)
			return reclaim_free_run(backend, atoi(argv[5]),
						atoi(argv[6]) != 0,
						atoi(argv[7]), atoi(argv[8]),
						atof(argv[9])) ? 1 : 0;
		if (!strcmp(argv[4], "rss"))
			return reclaim_rss_run(strcmp(backend, "vmap")
						       ? "malloc" : backend,
					       atoi(argv[5])) ? 1 : 0;
	}
	if (!strcmp(scen, "bigbuf") && argc >= 7) {
		bool ours = !strcmp(backend, "vmap") ||
			    !strcmp(backend, "mmap");

		label = backend;
		return bigbuf_run(ours ? backend : "malloc",
				  (size_t)atoi(argv[4]) * 1024, atoi(argv[5]),
				  atoi(argv[6])) ? 1 : 0;
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

/* Microseconds from a result in ns, in 9 characters; "-" if none. */
static const char *usec(double ns, bool found, char *buf)
{
	if (!found)
		snprintf(buf, 16, "%9s", "-");
	else if (ns < 10000)
		snprintf(buf, 16, "%9.2f", ns / 1e3);
	else
		snprintf(buf, 16, "%9.0f", ns / 1e3);
	return buf;
}

/* reclaim, part 1: per workload, each statistic with the purger off and on
 * side by side, and on/off; then what purged, and the targets. */
static void reclaim_free_table(int cycles, int repeats, double seconds)
{
	static const char *const stat[] = { "vfree_p50_ns", "vfree_p999_ns",
					    "vfree_p9999_ns", "vfree_max_ns",
					    "cycles_per_s" };
	static const char *const head[] = { "p50 us", "p99.9 us",
					    "p99.99 us", "max us",
					    "cycles/s" };
	/* The second table: off's counters, then on's. */
	static const char *const cnt[] = { "cycles", "slow_vfrees",
					   "first_vfree_ns",
					   "purges_threshold", "purges_timer",
					   "backpressure", "purger_wakeups" };
	const char *off = reclaim_free_peers[0].name,
		   *on = reclaim_free_peers[1].name;
	bool any = false, f1, f2;
	char m[96], b1[16], b2[16];

	for (size_t w = 0; w < NRWORK && !any; w++) {
		snprintf(m, sizeof(m), "vfree_max_ns_%s",
			 reclaim_workloads[w].key);
		value("reclaim", on, m, &any);
	}
	if (!any)
		return;
	printf("\nreclaim: vmap_vfree latency -- a memory space with 64 live "
	       "areas: vfree a random one (timed alone,\n"
	       "  clock_gettime), vmalloc one of its size, write a byte per "
	       "page; a second thread busy.  Medians of %d\n"
	       "  run%s of %d cycles",
	       repeats, repeats == 1 ? "" : "s", cycles);
	if (seconds > 0)
		printf(" or %g s, whichever came first (cycles done below)",
		       seconds);
	printf(".  off = VMAP_SPACE_NOPURGER\n"
	       "  (the free past the threshold purges), on = the purger "
	       "(default).  Targets with the purger:\n"
	       "  p99.99 <= 10 us, max <= 200 us, cycles/s within 10%% of "
	       "off.\n%-18s",
	       "");
	for (int k = 0; k < 5; k++)
		printf(" %26s", head[k]);
	printf("\n%-18s", "workload");
	for (int k = 0; k < 5; k++)
		printf(" %9s%9s%8s", "off", "on", "on/off");
	printf("\n");
	for (size_t w = 0; w < NRWORK; w++) {
		printf("%-18s", reclaim_workloads[w].name);
		for (int k = 0; k < 5; k++) {
			double a, b;

			snprintf(m, sizeof(m), "%s_%s", stat[k],
				 reclaim_workloads[w].key);
			a = value("reclaim", off, m, &f1);
			b = value("reclaim", on, m, &f2);
			if (k < 4)
				printf(" %s%s", usec(a, f1, b1),
				       usec(b, f2, b2));
			else
				printf(" %9s%9s", f1 ? human(a, b1) : "-",
				       f2 ? human(b, b2) : "-");
			if (f1 && f2 && a > 0)
				printf(" %6.2fx", b / a);
			else
				printf(" %7s", "-");
		}
		printf("\n");
	}

	printf("\nreclaim: per run (medians): cycles done; vfrees over 100 "
	       "us; the first vfree (us: with the purger,\n"
	       "  it starts the thread); purges by cause -- off's all ran on "
	       "the freeing thread; on's threshold\n"
	       "  and timer purges on the purger, backpressure ones on the "
	       "freeing thread; the purger's wakeups.\n"
	       "%-18s %15s %11s %13s %8s | %7s %6s %12s %7s | %s\n",
	       "workload", "cycles off/on", "slow off/on", "1st us off/on",
	       "off: thr", "on: thr", "timer", "backpressure", "wakeups",
	       "targets (on): p99.99 max cycles/s");
	for (size_t w = 0; w < NRWORK; w++) {
		const char *key = reclaim_workloads[w].key;
		double v[2][7], ok[3];

		for (int b = 0; b < 2; b++)
			for (int k = 0; k < 7; k++) {
				snprintf(m, sizeof(m), "%s_%s", cnt[k], key);
				v[b][k] = value("reclaim",
						reclaim_free_peers[b].name, m,
						&f1);
			}
		snprintf(m, sizeof(m), "vfree_p9999_ns_%s", key);
		ok[0] = value("reclaim", on, m, &f1) <= 10000;
		snprintf(m, sizeof(m), "vfree_max_ns_%s", key);
		ok[1] = value("reclaim", on, m, &f1) <= 200000;
		snprintf(m, sizeof(m), "cycles_per_s_%s", key);
		ok[2] = value("reclaim", on, m, &f1) >=
			0.9 * value("reclaim", off, m, &f2);
		printf("%-18s %7.0f/%-7.0f %5.0f/%-5.0f %6.1f/%-6.1f %8.0f | "
		       "%7.0f %6.0f %12.0f %7.0f | %20s %4s %8s\n",
		       reclaim_workloads[w].name, v[0][0], v[1][0], v[0][1],
		       v[1][1], v[0][2] / 1e3, v[1][2] / 1e3, v[0][3], v[1][3],
		       v[1][4], v[1][5], v[1][6], ok[0] ? "met" : "MISSED",
		       ok[1] ? "met" : "MISSED", ok[2] ? "met" : "MISSED");
	}
	printf("  (clock_gettime: %.0f ns a call)\n",
	       value("reclaim", on, "clock_ns", &f1));
}

/* reclaim, part 2: RSS above the pre-burst level at a few times after the
 * burst's last free, and when it was first back within 1 MiB. */
static void reclaim_rss_table(int areas)
{
	static const int at[] = { 0, 10, 30, 100, 300 };
	bool any = false, f;
	char m[64];

	for (size_t i = 0; i < NRPEERS && !any; i++)
		value("reclaim", reclaim_rss_peers[i].name, "rss_back_ms",
		      &any);
	if (!any)
		return;
	printf("\nreclaim: RSS above the pre-burst level (MiB) after %d "
	       "areas of 64 KiB were allocated, touched and\n"
	       "  freed, then no allocator call at all; a second thread "
	       "busy.  Target: vmap within 1 MiB by\n"
	       "  purge_delay_ms + 20 = 30 ms.\n"
	       "%-16s %9s %8s %8s %8s %8s %8s   %s\n",
	       areas, "backend", "peak", "t=0", "10 ms", "30 ms", "100 ms",
	       "300 ms", "within 1 MiB at");
	for (size_t i = 0; i < NRPEERS; i++) {
		const char *b = reclaim_rss_peers[i].name;
		double back = value("reclaim", b, "rss_back_ms", &f);

		if (!f)
			continue;
		printf("%-16s %9.1f", b,
		       value("reclaim", b, "rss_peak_above_kib", &f) / 1024);
		for (int k = 0; k < 5; k++) {
			snprintf(m, sizeof(m), "rss_above_kib_at_%dms", at[k]);
			printf(" %8.2f", value("reclaim", b, m, &f) / 1024);
		}
		if (back >= 0)
			printf("   %.1f ms\n", back);
		else
			printf("   never within %d ms\n", RECLAIM_WINDOW_MS);
	}
	printf("  settings: vmap: memory space, default purger "
	       "(purge_delay_ms 10); glibc: defaults;\n"
	       "  jemalloc-bg: MALLOC_CONF=background_thread:true,"
	       "dirty_decay_ms:10,muzzy_decay_ms:0;\n"
	       "  mimalloc-delay: MIMALLOC_PURGE_DELAY=10 "
	       "MIMALLOC_DECOMMIT_DELAY=10 (no thread: purges only in its "
	       "calls);\n"
	       "  tcmalloc-rate: TCMALLOC_RELEASE_RATE=10 (no thread: "
	       "releases only in its calls).\n");
	if (value("reclaim", "vmap", "rss_purges_timer", &f), f)
		printf("  vmap's space: purges by threshold %.0f, by timer "
		       "%.0f, backpressure %.0f; longest wait %.1f ms\n",
		       value("reclaim", "vmap", "rss_purges_threshold", &f),
		       value("reclaim", "vmap", "rss_purges_timer", &f),
		       value("reclaim", "vmap", "rss_backpressure", &f),
		       value("reclaim", "vmap", "rss_lazy_max_wait_ms", &f));
}

/* bigbuf: per size, a row per backend: throughput and vmap's lead, faults,
 * peak RSS, then the RSS after the loop, when no call came. */
static void bigbuf_table(int cycles, int window_ms)
{
	static const int at[] = { 0, 50, 100, 500 };
	bool any = false, f;
	char m[64], buf[16];

	for (size_t i = 0; i < NBBACK && !any; i++)
		value("bigbuf", bigbuf_backends[i], "rss_back_ms_256k", &any);
	if (!any)
		return;
	printf("\nbigbuf: large buffers, malloc-style -- 2 workers each "
	       "allocate a buffer, write a byte per 4 KiB\n"
	       "  page, free the oldest of the 4 it keeps live; a third "
	       "thread busy.  Cycles per worker: %d for\n"
	       "  256 KiB, as many bytes for the others.  RSS in MiB above "
	       "the pre-loop level: the peak\n"
	       "  (sampled every ~1 ms), then after the loop, with no "
	       "allocator call, every %d ms for %d ms.\n"
	       "  vmap's lead: its cycles/s over each one's (higher is "
	       "better).  Back: within 1 MiB (or 5%%).\n"
	       "%-8s %-9s %9s %7s %8s %8s %7s %7s %7s %7s   %s\n",
	       cycles, BIGBUF_PERIOD_MS, window_ms, "size", "backend",
	       "cycles/s", "lead", "faults/c", "peak", "t=0", "50 ms",
	       "100 ms", "500 ms", "back at");
	for (size_t z = 0; z < NBSIZES; z++) {
		bool first = true; /* the size is named on its first row */
		double base, v, back;

		snprintf(m, sizeof(m), "cycles_per_s_%dk", bigbuf_kib[z]);
		base = value("bigbuf", "vmap", m, &f);
		for (size_t i = 0; i < NBBACK; i++) {
			const char *b = bigbuf_backends[i];
			char size[16];

			snprintf(m, sizeof(m), "cycles_per_s_%dk",
				 bigbuf_kib[z]);
			v = value("bigbuf", b, m, &f);
			if (!f)
				continue;
			printf("%-8s %-9s %9s",
			       first ? bigbuf_size(bigbuf_kib[z], size) : "",
			       b, human(v, buf));
			first = false;
			/* Up to 4 digits in 7 characters: mmap's is ~1000x. */
			if (v > 0 && base > 0 && base / v < 100)
				printf(" %6.2fx", base / v);
			else if (v > 0 && base > 0)
				printf(" %6.0fx", base / v);
			else
				printf(" %7s", "-");
			snprintf(m, sizeof(m), "faults_per_cycle_%dk",
				 bigbuf_kib[z]);
			printf(" %8.1f", value("bigbuf", b, m, &f));
			snprintf(m, sizeof(m), "rss_peak_above_kib_%dk",
				 bigbuf_kib[z]);
			printf(" %8.1f", value("bigbuf", b, m, &f) / 1024);
			for (int k = 0; k < 4; k++) {
				snprintf(m, sizeof(m),
					 "rss_above_kib_at_%dms_%dk", at[k],
					 bigbuf_kib[z]);
				v = value("bigbuf", b, m, &f);
				if (f)
					printf(" %7.1f", v / 1024);
				else
					printf(" %7s", "-");
			}
			snprintf(m, sizeof(m), "rss_back_ms_%dk",
				 bigbuf_kib[z]);
			back = value("bigbuf", b, m, &f);
			if (back >= 0)
				printf("   %.0f ms\n", back);
			else
				printf("   not in %d ms\n", window_ms);
		}
	}
	printf("  settings: vmap: a memory space, 16 GiB reserved, default "
	       "flags (warm pool, purge thread);\n"
	       "  the mallocs with their defaults; mmap: mmap and munmap per "
	       "buffer.\n");
	for (size_t z = 0; z < NBSIZES; z++) {
		static const char *const cnt[] = {
			"pool_hits", "purges_threshold", "purges_timer",
			"purges_miss", "backpressure", "release_syscalls",
		};
		double c[6];

		for (int k = 0; k < 6; k++) {
			snprintf(m, sizeof(m), "%s_%dk", cnt[k],
				 bigbuf_kib[z]);
			c[k] = value("bigbuf", "vmap", m, &f);
		}
		if (f)
			printf("  vmap, %s: pool hits %.0f; purges by "
			       "threshold %.0f, timer %.0f, miss %.0f; "
			       "backpressure %.0f; release syscalls %.0f\n",
			       bigbuf_size(bigbuf_kib[z], buf), c[0], c[1],
			       c[2], c[3], c[4], c[5]);
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

/* The reclaim scenario's data blocks, from index 2: the vfree latencies,
 * then one RSS series per backend that ran (*nseries of them, named in
 * names[]).  Returns false if the scenario did not run. */
static bool plot_reclaim_data(FILE *d, const char **names, int *nseries)
{
	static const char *const stat[] = { "vfree_p50_ns", "vfree_p999_ns",
					    "vfree_p9999_ns", "vfree_max_ns" };
	bool any = false, f;
	char m[96];

	value("reclaim", "vmap", "vfree_max_ns_16p_pool", &any);
	value("reclaim", "vmap", "rss_back_ms", &f);
	if (!any && !f)
		return false;
	fprintf(d, "\n\n");
	for (size_t w = 0; w < NRWORK; w++)
		for (int b = 0; b < 2; b++) {
			fprintf(d, "\"%s, purger %s\"",
				reclaim_workloads[w].key, b ? "on" : "off");
			for (int k = 0; k < 4; k++) {
				snprintf(m, sizeof(m), "%s_%s", stat[k],
					 reclaim_workloads[w].key);
				fprintf(d, " %g", value("reclaim",
					reclaim_free_peers[b].name, m, &f) /
					1e3);
			}
			fprintf(d, "\n");
		}
	*nseries = 0;
	for (size_t i = 0; i < NRPEERS; i++) {
		const char *b = reclaim_rss_peers[i].name;

		value("reclaim", b, "rss_back_ms", &f);
		if (!f)
			continue;
		names[(*nseries)++] = b;
		fprintf(d, "\n\n");
		/* Nominal times; the JSON has each sample's actual t_ms. */
		for (int t = 0; t <= RECLAIM_WINDOW_MS; t += RECLAIM_PERIOD_MS) {
			snprintf(m, sizeof(m), "rss_above_kib_at_%dms", t);
			fprintf(d, "%d %g\n", t,
				value("reclaim", b, m, &f) / 1024);
		}
	}
	return true;
}

/* The two reclaim charts: vfree latencies (log), RSS after the burst. */
static void plot_reclaim(FILE *g, const char *dat, const char *const *names,
			 int nseries)
{
	fprintf(g, "set title 'reclaim: vmap_vfree latency, a busy thread "
		   "(targets: p99.99 10 us, max 200 us)'\n"
		   "set ylabel 'microseconds'\nset logscale y\n"
		   "set key top left\n"
		   "set arrow 1 from graph 0, first 10 to graph 1, first 10 "
		   "nohead dt 2\n"
		   "set arrow 2 from graph 0, first 200 to graph 1, first 200 "
		   "nohead dt 2\n"
		   "plot '%s' index 2 using 2:xtic(1) title 'p50',"
		   " '' index 2 using 3 title 'p99.9',"
		   " '' index 2 using 4 title 'p99.99',"
		   " '' index 2 using 5 title 'max'\n"
		   "unset arrow 1\nunset arrow 2\nunset logscale\n"
		   "set style data lines\nset xtics norotate\n"
		   "set xrange [0:%d]\nset logscale y\n"
		   "set yrange [0.05:*]\n"
		   "set title 'reclaim: RSS after a burst freed, no call "
		   "after (target: vmap by 30 ms)'\n"
		   "set xlabel 'ms after the last free'\n"
		   "set ylabel 'MiB above the pre-burst RSS (0.05 = less)'\n"
		   "set key center right\nset arrow 3 from 30, graph 0 to 30, "
		   "graph 1 nohead dt 2\n"
		   "set arrow 4 from graph 0, first 1 to graph 1, first 1 "
		   "nohead dt 2\nplot",
		dat, RECLAIM_WINDOW_MS);
	for (int i = 0; i < nseries; i++)
		fprintf(g, "%s '%s' index %d using 1:($2 > 0.05 ? $2 : 0.05) "
			   "lw 2 title '%s'",
			i ? "," : "", dat, 3 + i, names[i]);
	fprintf(g, "\n");
}

/* The bigbuf scenario's data blocks, after the reclaim's: cycles/s per
 * backend for each size, then the RSS after the loop of 4 MiB buffers, one
 * series per backend that ran (*nseries, named in names[]).  Returns false
 * if the scenario did not run. */
static bool plot_bigbuf_data(FILE *d, const char **names, int *nseries)
{
	bool any = false, f;
	char m[64];

	for (size_t i = 0; i < NBBACK && !any; i++)
		value("bigbuf", bigbuf_backends[i], "cycles_per_s_256k", &any);
	if (!any)
		return false;
	fprintf(d, "\n\n");
	for (size_t i = 0; i < NBBACK; i++) {
		fprintf(d, "\"%s\"", bigbuf_backends[i]);
		for (size_t z = 0; z < NBSIZES; z++) {
			snprintf(m, sizeof(m), "cycles_per_s_%dk",
				 bigbuf_kib[z]);
			fprintf(d, " %g", value("bigbuf", bigbuf_backends[i],
						m, &f));
		}
		fprintf(d, "\n");
	}
	*nseries = 0;
	for (size_t i = 0; i < NBBACK; i++) {
		const char *b = bigbuf_backends[i];

		value("bigbuf", b, "rss_back_ms_4096k", &f);
		if (!f)
			continue;
		names[(*nseries)++] = b;
		fprintf(d, "\n\n");
		/* Nominal times, until the window's end (none after it). */
		for (int t = 0; t <= BIGBUF_MAX_WINDOW_MS;
		     t += BIGBUF_PERIOD_MS) {
			double v;

			snprintf(m, sizeof(m), "rss_above_kib_at_%dms_4096k",
				 t);
			v = value("bigbuf", b, m, &f);
			if (!f)
				break;
			fprintf(d, "%d %g\n", t, v / 1024);
		}
	}
	return true;
}

/* The two bigbuf charts: cycles/s by size (log), RSS after the loop. */
static void plot_bigbuf(FILE *g, const char *dat, int index,
			const char *const *names, int nseries)
{
	fprintf(g, "unset arrow\nunset logscale\nset autoscale xy\n"
		   "set xlabel ''\nset style data histograms\n"
		   "set xtics rotate by -45\nset logscale y\n"
		   "set title 'bigbuf: alloc + write a byte per page + free, "
		   "2 workers, 4 live each, a busy thread'\n"
		   "set ylabel 'cycles per second'\nset key top right\n"
		   "plot '%s' index %d using 2:xtic(1) title '256 KiB',"
		   " '' index %d using 3 title '1 MiB',"
		   " '' index %d using 4 title '4 MiB'\n"
		   "set style data lines\nset xtics norotate\n"
		   "set yrange [0.05:*]\n"
		   "set title 'bigbuf: RSS after the loop (4 MiB buffers), no "
		   "call after'\n"
		   "set xlabel 'ms after the loop'\n"
		   "set ylabel 'MiB above the pre-loop RSS (0.05 = less)'\n"
		   "set key center right\n"
		   "set arrow 5 from graph 0, first 1 to graph 1, first 1 "
		   "nohead dt 2\nplot",
		dat, index, index, index);
	for (int i = 0; i < nseries; i++)
		fprintf(g, "%s '%s' index %d using 1:($2 > 0.05 ? $2 : 0.05) "
			   "lw 2 title '%s'",
			i ? "," : "", dat, index + 1 + i, names[i]);
	fprintf(g, "\n");
}

/* The plot: a chart per scenario part that ran (gnuplot stops at a chart
 * with no data), two to a row.  Data blocks: 0 headline, 1 churn, then the
 * reclaim scenario's (plot_reclaim_data), then bigbuf's (plot_bigbuf_data). */
static void plot(const char *path, const uint64_t *busy, int nbusy,
		 const char *const *churn_cols, int ncols)
{
	char dat[] = "/tmp/vmap-bench-XXXXXX";
	int fd = mkstemp(dat), nseries = 0, nbseries = 0, charts;
	FILE *d = fd >= 0 ? fdopen(fd, "w") : NULL, *g;
	const char *names[NRPEERS], *bnames[NBBACK];
	bool f, headline = false, churn = false, reclaim, bigbuf;

	if (!d)
		return;
	for (int i = 0; i < nbusy; i++) {
		char m[64];
		double v, l;

		snprintf(m, sizeof(m), "purge_us_%llu",
			 (unsigned long long)busy[i]);
		v = value("headline", "vmap", m, &f);
		headline |= f;
		l = value("headline", "legacy", m, &f);
		headline |= f;
		fprintf(d, "%llu %g %g\n",
			(unsigned long long)(busy[i] ? busy[i] : 1), v, l);
	}
	/* Churn ops/s with 2 workers, 1 and 64 pages (where the "-return"
	 * mallocs really return memory). */
	fprintf(d, "\n\n");
	for (int c = 0; c < ncols; c++) {
		double v1 = value("churn", churn_cols[c], "ops_per_s_1p_2t",
				  &f);

		churn |= f;
		fprintf(d, "\"%s\" %g %g\n", churn_cols[c], v1,
			value("churn", churn_cols[c], "ops_per_s_64p_2t", &f));
	}
	reclaim = plot_reclaim_data(d, names, &nseries);
	bigbuf = plot_bigbuf_data(d, bnames, &nbseries);
	fclose(d);
	charts = headline + churn + (reclaim ? 2 : 0) + (bigbuf ? 2 : 0);
	if (!charts) {
		unlink(dat);
		return;
	}
	g = popen("gnuplot", "w");
	if (!g) {
		fprintf(stderr, "vmap-bench: no gnuplot: no plot\n");
		unlink(dat);
		return;
	}
	fprintf(g, "set terminal pngcairo size 1400,%d noenhanced\n"
		   "set output '%s'\nset multiplot layout %d,2\n",
		560 * ((charts + 1) / 2), path, (charts + 1) / 2);
	if (headline)
		fprintf(g, "set title 'purge of 1,000 lazy areas vs busy "
			   "areas'\n"
			   "set logscale xy\n"
			   "set xlabel 'busy areas (0 drawn at 1)'\n"
			   "set ylabel 'microseconds'\nset key top left\n"
			   "plot '%s' index 0 using 1:2 with linespoints "
			   "title 'vmap', '' index 0 using 1:3 with "
			   "linespoints title 'legacy'\n"
			   "unset logscale\n",
			dat);
	/* Histograms from here: churn's and reclaim's latencies. */
	fprintf(g, "set style data histograms\nset style fill solid 0.8\n"
		   "set xtics rotate by -45\nset xlabel ''\n");
	if (churn)
		fprintf(g, "set logscale y\n"
			   "set title 'churn: alloc+touch+free, 2 workers and "
			   "a busy thread'\n"
			   "set ylabel 'alloc+touch+free per second'\n"
			   "set key top right\n"
			   "plot '%s' index 1 using 2:xtic(1) title "
			   "'1-page areas', '' index 1 using 3 title "
			   "'64-page areas'\n"
			   "unset logscale\n",
			dat);
	if (reclaim)
		plot_reclaim(g, dat, names, nseries);
	/* bigbuf's blocks follow reclaim's 1 + nseries, if it wrote any. */
	if (bigbuf)
		plot_bigbuf(g, dat, reclaim ? 3 + nseries : 2, bnames,
			    nbseries);
	fprintf(g, "unset multiplot\n");
	if (pclose(g))
		fprintf(stderr, "vmap-bench: gnuplot failed\n");
	unlink(dat);
}

/* ---- main ---- */

/* bigbuf's default: about a minute for the scenario on this project's
 * 2-vCPU machine -- most of it mmap, which faults every page in every
 * cycle, and the 18 windows of 500 ms; the allocators that keep memory
 * warm are done in well under a second each. */
#define BIGBUF_CYCLES 12000

static void usage(void)
{
	fprintf(stderr,
		"usage: vmap-bench [options] [test_vmalloc key=value ...]\n"
		"  --scenarios LIST  test_vmalloc,headline,churn,reclaim,bigbuf "
		"(default all)\n"
		"  --preset NAME     test_vmalloc.sh's performance, stress or "
		"smoke\n"
		"  --churn-seconds S seconds per churn run (default 2)\n"
		"  --headline LIST   busy counts (default 0,10000,100000,"
		"1000000)\n"
		"  --reclaim-cycles N  cycles per vfree-latency run (default "
		"200000)\n"
		"  --reclaim-repeats N runs per vfree-latency workload "
		"(default 5)\n"
		"  --reclaim-seconds S cut each run after S seconds (default 3; "
		"0: never)\n"
		"  --reclaim-full      every run its full cycles (= "
		"--reclaim-seconds 0): where page\n"
		"                      faults are slow, hours\n"
		"  --reclaim-areas N   64 KiB areas in the RSS burst (default "
		"10000)\n"
		"  --bigbuf-cycles N   cycles per bigbuf worker with 256 KiB "
		"buffers (default %d);\n"
		"                      the larger sizes run as many bytes\n"
		"  --smoke           every workload and backend, tiny counts\n"
		"  --no-peers        no malloc peers (for sanitizer builds)\n"
		"  --json FILE       all results as JSON\n"
		"  --plot FILE.png   headline, churn, reclaim and bigbuf, with "
		"gnuplot\n"
		"test_vmalloc keys: nr_threads test_loop_count run_test_mask "
		"sequential_test_order\n  test_repeat_count nr_pages "
		"(default: test_loop_count=100000, not the module's 1000000)\n",
		BIGBUF_CYCLES);
	exit(2);
}

int main(int argc, char **argv)
{
	const char *scens = "test_vmalloc,headline,churn,reclaim,bigbuf",
		   *json = NULL, *png = NULL, *bl = "0,10000,100000,1000000";
	char *tvargs[16], secs[32] = "2", nt[8];
	uint64_t busy[8];
	/* reclaim: the 200,000 cycles and 5 runs, but each run cut
	 * at 3 s by default (see --reclaim-full); a 10,000-area burst. */
	int ntv = 0, nbusy = 0, rcycles = 200000, rrepeats = 5, rareas = 10000;
	int bcycles = BIGBUF_CYCLES, bwindow = BIGBUF_WINDOW_MS;
	char rsecs[32] = "3";
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
		else if (!strcmp(argv[i], "--reclaim-cycles") && i + 1 < argc)
			rcycles = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--reclaim-repeats") && i + 1 < argc)
			rrepeats = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--reclaim-seconds") && i + 1 < argc)
			snprintf(rsecs, sizeof(rsecs), "%s", argv[++i]);
		else if (!strcmp(argv[i], "--reclaim-full"))
			snprintf(rsecs, sizeof(rsecs), "0");
		else if (!strcmp(argv[i], "--reclaim-areas") && i + 1 < argc)
			rareas = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--bigbuf-cycles") && i + 1 < argc)
			bcycles = atoi(argv[++i]);
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
		rcycles = 2000;
		rrepeats = 1;
		snprintf(rsecs, sizeof(rsecs), "0.25");
		/* Past lazy_max_pages on 2 CPUs (16384): a threshold purge. */
		rareas = 1200;
		/* Each worker frees and reuses a few of every size; a short
		 * window, as 18 children would sit out 9 s of full ones. */
		bcycles = 64;
		bwindow = 100;
	}
	if (rcycles < 1 || rrepeats < 1 || rrepeats > 64 || rareas < 1 ||
	    bcycles < 1)
		usage();
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
	if (strstr(scens, "reclaim"))
		run_reclaim(rcycles, rrepeats, rsecs, rareas, no_peers);
	if (strstr(scens, "bigbuf"))
		run_bigbuf(bcycles, bwindow, no_peers);

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
		reclaim_free_table(rcycles, rrepeats, atof(rsecs));
		reclaim_rss_table(rareas);
		bigbuf_table(bcycles, bwindow);
		if (json)
			write_json(json);
		if (png)
			plot(png, busy, nbusy, churn_cols, (int)NPEERS);
	}
	printf("\nvmap-bench: %s\n", failures ? "CHECKS FAILED" : "all checks "
	       "passed");
	return failures ? 1 : 0;
}
