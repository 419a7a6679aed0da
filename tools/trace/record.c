/* SPDX-License-Identifier: MIT */
/*
 * record.c - `vmap-trace record [-o FILE] [-- COMMAND...]`.
 *
 * Records the kernel's three vmalloc events into a tracefs *instance* of
 * its own (instances/vmap-trace-PID): its own ring buffer and its own event
 * switches, so nobody else's tracing is touched and nothing global is left
 * changed.  What it does change -- a tracefs mount where there was none,
 * kptr_restrict for the moment of the snapshot -- it puts back on every
 * path out.
 *
 * The snapshot: right after the events are on, /proc/vmallocinfo (with
 * kptr_restrict at 1, so root sees real addresses) lists every busy area
 * and every lazy one ("unpurged vm_area") -- the kernel's state at the
 * start, between two trace markers that place it in the event stream
 * (check.c reconciles the events inside that window).
 *
 * A reader thread drains trace_pipe into memory as events arrive (so the
 * ring buffer never overruns); the file is written once, at the end, with
 * the snapshot first.  Overruns the kernel reports are written as `lost`
 * and warned about.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "trace.h"

struct rec {
	char root[256];		/* the tracefs mount */
	char mounted[256];	/* non-empty: we mounted it here */
	char inst[320];		/* our instance's directory */
	bool inst_made;
	char kptr_old[16];	/* kptr_restrict to put back; "" if none */
	int kptr_fd;		/* KPTR_SAVED, locked while it is raised */
	int pipe_fd;
	struct trace t;
	pthread_t reader;
	bool reader_running;
	atomic_bool stopping;	/* main -> reader: the stop marker is
				   written; drain and return */
	atomic_bool abandon;	/* main -> reader: return now (an error) */
	int reader_rc;		/* reader -> main, read after the join */
	uint64_t lines;		/* the reader's alone */
	uint64_t bad_lines;	/* the reader's; main reads after the join */
	/* r->t: the reader appends events and sets the snapshot's stamps and
	 * `stopped`; main fills the snapshot's areas and header fields, and
	 * reads the rest only after the join. */
};

static int put(const char *path, const char *value)
{
	int fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = write(fd, value, strlen(value));
	close(fd);
	return n == (ssize_t)strlen(value) ? 0 : -EIO;
}

static int get(const char *path, char *buf, size_t cap)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = read(fd, buf, cap - 1);
	close(fd);
	if (n < 0)
		return -EIO;
	buf[n] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	return 0;
}

static int instf(struct rec *r, char *out, size_t cap, const char *rel)
{
	int n = snprintf(out, cap, "%s/%s", r->inst, rel);

	return n > 0 && (size_t)n < cap ? 0 : -ENAMETOOLONG;
}

static int inst_put(struct rec *r, const char *rel, const char *v)
{
	char p[512];

	return instf(r, p, sizeof(p), rel) ?: put(p, v);
}

/* A marker in our instance's stream; the snapshot's place in it. */
static int marker(struct rec *r, const char *what)
{
	char m[64];

	snprintf(m, sizeof(m), "vmap-trace: %s", what);
	if (inst_put(r, "trace_marker", m)) {
		fprintf(stderr, "vmap-trace record: trace_marker: cannot write "
			"the %s marker\n", what);
		return -1;
	}
	return 0;
}

/* Instances of recordings killed before they could clean up (SIGKILL):
 * vmap-trace-PID with no process PID.  Their buffers hold memory. */
static void sweep(struct rec *r)
{
	char p[1024];
	DIR *d;
	struct dirent *de;

	snprintf(p, sizeof(p), "%s/instances", r->root);
	if (!(d = opendir(p)))
		return;
	while ((de = readdir(d))) {
		int pid;
		char tail;

		if (sscanf(de->d_name, "vmap-trace-%d%c", &pid, &tail) != 1 ||
		    pid <= 0 || !kill(pid, 0) || errno != ESRCH)
			continue;
		snprintf(p, sizeof(p), "%s/instances/%s", r->root, de->d_name);
		if (!rmdir(p))
			fprintf(stderr, "vmap-trace record: removed %s, left by "
				"a recording that was killed\n", p);
	}
	closedir(d);
}

/* Find tracefs, or mount it; make our instance. */
static int setup(struct rec *r)
{
	static const char *const known[] = { "/sys/kernel/tracing",
					     "/sys/kernel/debug/tracing" };
	char p[512];
	struct stat sb;

	for (size_t i = 0; i < 2 && !r->root[0]; i++) {
		snprintf(p, sizeof(p), "%s/instances", known[i]);
		if (!stat(p, &sb))
			snprintf(r->root, sizeof(r->root), "%s", known[i]);
	}
	if (!r->root[0]) {
		char dir[] = "/tmp/vmap-trace.XXXXXX";

		/* In a mount namespace of our own, the mount goes with the
		 * process, however it ends (SIGKILL too). */
		if (unshare(CLONE_NEWNS) ||
		    mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) ||
		    !mkdtemp(dir) || mount("nodev", dir, "tracefs", 0, NULL)) {
			fprintf(stderr, "vmap-trace record: cannot mount "
				"tracefs: %s\n", strerror(errno));
			rmdir(dir);
			return -1;
		}
		snprintf(r->root, sizeof(r->root), "%s", dir);
		snprintf(r->mounted, sizeof(r->mounted), "%s", dir);
	}
	snprintf(p, sizeof(p), "%s/events/vmalloc/%s", r->root, trace_events[0]);
	if (stat(p, &sb)) {
		fprintf(stderr, "vmap-trace record: this kernel has no vmalloc "
			"tracepoints (%s: %s); they came with Linux 6.4\n", p,
			strerror(errno));
		return -1;
	}
	sweep(r);
	snprintf(r->inst, sizeof(r->inst), "%s/instances/vmap-trace-%d",
		 r->root, (int)getpid());
	if (mkdir(r->inst, 0700)) {
		fprintf(stderr, "vmap-trace record: %s: %s\n", r->inst,
			strerror(errno));
		return -1;
	}
	r->inst_made = true;
	/* 16 MiB a CPU holds ~300k events: the reader keeps up well before. */
	if (inst_put(r, "buffer_size_kb", "16384"))
		fprintf(stderr, "vmap-trace record: warning: could not size "
			"the ring buffer\n");
	return 0;
}

static void kptr_restore(struct rec *r);

static void teardown(struct rec *r)
{
	if (r->inst_made) {
		char p[512];

		for (size_t i = 0; i < 3; i++) {
			snprintf(p, sizeof(p), "events/vmalloc/%s/enable",
				 trace_events[i]);
			inst_put(r, p, "0");
		}
		/* The kernel refuses while a reader holds trace_pipe open. */
		if (r->pipe_fd >= 0)
			close(r->pipe_fd);
		r->pipe_fd = -1;
		if (rmdir(r->inst))
			fprintf(stderr, "vmap-trace record: warning: %s left "
				"behind: %s\n", r->inst, strerror(errno));
		r->inst_made = false;
	}
	kptr_restore(r);
	if (r->mounted[0]) {
		if (umount(r->mounted) || rmdir(r->mounted))
			fprintf(stderr, "vmap-trace record: warning: tracefs "
				"left mounted on %s\n", r->mounted);
		r->mounted[0] = '\0';
	}
}

/* Drain trace_pipe until the stop marker has come through (or 2 s after
 * the stop, if it never does).  A line the parser refuses is counted and
 * skipped: the kernel writes the lines, and losing a recording to one is
 * worse than a warning. */
static void *reader(void *arg)
{
	struct rec *r = arg;
	char *buf = malloc(1 << 20), *line = malloc(4096);
	size_t have = 0;
	struct timespec stop_at = { 0 };

	if (!buf || !line) {
		r->reader_rc = -1;
		goto out;
	}
	for (;;) {
		struct pollfd pfd = { .fd = r->pipe_fd, .events = POLLIN };
		ssize_t n;
		char *nl, *p;

		if (atomic_load(&r->abandon))
			break;
		if (atomic_load(&r->stopping)) {
			struct timespec now;

			clock_gettime(CLOCK_MONOTONIC, &now);
			if (!stop_at.tv_sec)
				stop_at.tv_sec = now.tv_sec + 2;
			if (r->t.stopped || now.tv_sec > stop_at.tv_sec)
				break;
		}
		if (poll(&pfd, 1, 100) <= 0)
			continue;
		n = read(r->pipe_fd, buf + have, (1 << 20) - have - 1);
		if (n <= 0) {
			if (n < 0 && errno != EAGAIN && errno != EINTR) {
				r->reader_rc = -1;
				break;
			}
			continue;
		}
		have += (size_t)n;
		buf[have] = '\0';
		for (p = buf; (nl = memchr(p, '\n', have - (size_t)(p - buf)));
		     p = nl + 1) {
			size_t len = (size_t)(nl - p);

			if (len >= 4096)
				len = 4095;
			memcpy(line, p, len);
			line[len] = '\0';
			r->lines++;
			if (line[0] && trace_raw_line(&r->t, line, r->lines))
				r->bad_lines++;
		}
		have -= (size_t)(p - buf);
		memmove(buf, p, have);
	}
out:
	free(buf);
	free(line);
	return NULL;
}

#define KPTR "/proc/sys/kernel/kptr_restrict"
#define KPTR_SAVED "/run/vmap-trace.kptr"

/*
 * kptr_restrict at 1 while the snapshot is read (root then sees real
 * addresses).  Every recording does this under one flock, with the old value
 * written in the lock file until it is back: two recordings cannot undo each
 * other's, and one killed in between is put right by the next.
 */
static int kptr_raise(struct rec *r)
{
	char saved[16] = "", now[16];
	ssize_t n;

	r->kptr_fd = open(KPTR_SAVED, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (r->kptr_fd < 0 || flock(r->kptr_fd, LOCK_EX)) {
		fprintf(stderr, "vmap-trace record: %s: %s\n", KPTR_SAVED,
			strerror(errno));
		return -1;
	}
	n = pread(r->kptr_fd, saved, sizeof(saved) - 1, 0);
	if (n > 0) {
		saved[n] = '\0';
		if (!put(KPTR, saved))
			fprintf(stderr, "vmap-trace record: kptr_restrict put "
				"back to %s (a recording was killed before it "
				"could)\n", saved);
	}
	if (get(KPTR, now, sizeof(now)))
		return 0;	/* no such knob: addresses are real */
	if (strcmp(now, "1")) {
		if (ftruncate(r->kptr_fd, 0) ||
		    pwrite(r->kptr_fd, now, strlen(now), 0) !=
			    (ssize_t)strlen(now) ||
		    fsync(r->kptr_fd)) {
			fprintf(stderr, "vmap-trace record: %s: %s\n",
				KPTR_SAVED, strerror(errno));
			return -1;
		}
		snprintf(r->kptr_old, sizeof(r->kptr_old), "%s", now);
		put(KPTR, "1");
	}
	return 0;
}

static void kptr_restore(struct rec *r)
{
	if (r->kptr_old[0] && put(KPTR, r->kptr_old))
		fprintf(stderr, "vmap-trace record: warning: kptr_restrict "
			"could not be put back to %s\n", r->kptr_old);
	r->kptr_old[0] = '\0';
	if (r->kptr_fd >= 0) {
		if (ftruncate(r->kptr_fd, 0))
			fprintf(stderr, "vmap-trace record: warning: %s: %s\n",
				KPTR_SAVED, strerror(errno));
		close(r->kptr_fd);	/* and the lock with it */
	}
	r->kptr_fd = -1;
}

/* /proc/vmallocinfo, read with real addresses. */
static int snapshot(struct rec *r)
{
	char *l = NULL;
	size_t cap = 0;
	FILE *f;
	int rc = 0;

	if (kptr_raise(r) || marker(r, "snapshot-begin")) {
		kptr_restore(r);
		return -1;
	}
	f = fopen("/proc/vmallocinfo", "r");
	if (!f) {
		fprintf(stderr, "vmap-trace record: /proc/vmallocinfo: %s\n",
			strerror(errno));
		kptr_restore(r);
		return -1;
	}
	while (!rc && getline(&l, &cap, f) > 0) {
		unsigned long long s, e;
		struct snap sn = { 0 };

		if (sscanf(l, "0x%llx-0x%llx", &s, &e) != 2)
			continue;
		if (e <= s) {
			fprintf(stderr, "vmap-trace record: /proc/vmallocinfo "
				"shows hashed addresses although kptr_restrict "
				"is 1\n");
			rc = -1;
		}
		sn.start = s, sn.end = e;
		sn.lazy = strstr(l, "unpurged vm_area") != NULL;
		if (!rc && trace_push_snap(&r->t, &sn, 0))
			rc = -1;	/* the message is printed */
	}
	free(l);
	fclose(f);
	if (marker(r, "snapshot-end"))
		rc = -1;
	kptr_restore(r);
	r->t.has_snapshot = true;
	return rc;
}

/* Run argv (or, with none, wait for a signal to stop); the exit status to
 * pass on, or -1 if it could not be started. */
static int run(char **argv, sigset_t *set)
{
	pid_t pid;
	int sig, status, err = 0, fds[2];

	if (!argv[0]) {
		fprintf(stderr, "vmap-trace record: recording; ^C to stop\n");
		do
			sigwait(set, &sig);
		while (sig == SIGCHLD);
		return 0;
	}
	/* exec's errno comes back through a close-on-exec pipe: a command
	 * that cannot be run is an error, not a recording. */
	if (pipe2(fds, O_CLOEXEC))
		return -1;
	pid = fork();
	if (pid < 0) {
		close(fds[0]);
		close(fds[1]);
		return -1;
	}
	if (pid == 0) {
		signal(SIGPIPE, SIG_DFL);	/* ignored signals stay so */
		sigprocmask(SIG_UNBLOCK, set, NULL);
		execvp(argv[0], argv);
		err = errno;
		(void)!write(fds[1], &err, sizeof(err));
		_exit(127);
	}
	close(fds[1]);
	if (read(fds[0], &err, sizeof(err)) != (ssize_t)sizeof(err))
		err = 0;
	close(fds[0]);
	if (err) {
		waitpid(pid, &status, 0);
		fprintf(stderr, "vmap-trace record: %s: %s\n", argv[0],
			strerror(err));
		return -1;
	}
	for (;;) {
		sigwait(set, &sig);
		/* ^C and ^\ reach the command from the terminal by
		 * themselves; what is sent to vmap-trace alone is passed on. */
		if (sig != SIGCHLD && sig != SIGINT && sig != SIGQUIT)
			kill(pid, sig);
		if (sig != SIGCHLD || waitpid(pid, &status, WNOHANG) != pid)
			continue;
		if (WIFEXITED(status))
			return WEXITSTATUS(status);
		fprintf(stderr, "vmap-trace record: %s was killed by signal "
			"%d (%s)\n", argv[0], WTERMSIG(status),
			strsignal(WTERMSIG(status)));
		return 128 + WTERMSIG(status);
	}
}

/* Events the ring buffer dropped: trace_pipe's [LOST] lines said so
 * already (t.lost), the per-CPU stats say it again; the larger. */
static void lost_events(struct rec *r)
{
	long cpus = sysconf(_SC_NPROCESSORS_CONF);
	uint64_t stats = 0;

	for (long c = 0; c < cpus; c++) {
		char p[512], rel[64], line[128];
		FILE *f;

		snprintf(rel, sizeof(rel), "per_cpu/cpu%ld/stats", c);
		if (instf(r, p, sizeof(p), rel) || !(f = fopen(p, "r")))
			continue;
		while (fgets(line, sizeof(line), f)) {
			unsigned long long v;

			if (sscanf(line, "overrun: %llu", &v) == 1 ||
			    sscanf(line, "dropped events: %llu", &v) == 1)
				stats += v;
		}
		fclose(f);
	}
	if (stats > r->t.lost)
		r->t.lost = stats;
}

/* The header's free text on one line: a command may hold newlines. */
static void one_line(char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			*s = ' ';
}

static void enable(struct rec *r, const char *value)
{
	for (size_t e = 0; e < 3; e++) {
		char rel[128];

		snprintf(rel, sizeof(rel), "events/vmalloc/%s/enable",
			 trace_events[e]);
		if (inst_put(r, rel, value) && value[0] == '1')
			fprintf(stderr, "vmap-trace record: cannot enable %s\n",
				trace_events[e]);
	}
}

static int usage(void)
{
	fprintf(stderr,
		"usage: vmap-trace record [-o FILE] [-- COMMAND [ARG...]]\n"
		"  Records the kernel's vmalloc events while COMMAND runs (or,\n"
		"  with none, until a signal: INT, TERM, HUP, QUIT, USR1, USR2,\n"
		"  ALRM) into FILE (vmap.trace).\n"
		"  With a command, ^C from the terminal reaches the command, and\n"
		"  the recording ends when it exits; TERM, HUP, USR1, USR2 and\n"
		"  ALRM sent to vmap-trace are passed on to it.  Needs root.\n");
	return 2;
}

int record_main(int argc, char **argv)
{
	const char *out = "vmap.trace";
	struct rec r = { .pipe_fd = -1, .kptr_fd = -1 };
	struct outfile of = { 0 };
	struct utsname u;
	sigset_t set;
	static const int sigs[] = { SIGINT,  SIGTERM, SIGCHLD, SIGHUP,
				    SIGQUIT, SIGUSR1, SIGUSR2, SIGALRM };
	int i, status = 0, rc = 1;
	char p[512];

	for (i = 1; i < argc && strcmp(argv[i], "--"); i++) {
		if (!strcmp(argv[i], "-o") && i + 1 < argc) {
			out = argv[++i];
		} else {
			if (argv[i][0] != '-')
				fprintf(stderr, "vmap-trace record: '%s': put "
					"the command after --\n", argv[i]);
			return usage();
		}
	}
	if (geteuid() != 0) {
		fprintf(stderr, "vmap-trace record: must run as root (tracefs, "
			"and the kernel's real addresses)\n");
		return 1;
	}
	/* The file is made now, so a path that cannot be written fails before
	 * the recording, not after; 0600: it holds the kernel's layout. */
	if (out_open(&of, out, 0600)) {
		fprintf(stderr, "vmap-trace record: %s: %s\n", out,
			strerror(errno));
		return 1;
	}
	r.t.page_size = (uint64_t)sysconf(_SC_PAGESIZE);
	r.t.cpus = (uint64_t)sysconf(_SC_NPROCESSORS_ONLN);
	/* Until the end, the parser's errors are about trace_pipe's lines. */
	r.t.path = strdup("trace_pipe");
	if (!uname(&u))
		snprintf(r.t.kernel, sizeof(r.t.kernel), "%s", u.release);
	for (int j = i + 1, n = 0; j < argc && n < (int)sizeof(r.t.command) - 1;
	     j++) {
		n += snprintf(r.t.command + n, sizeof(r.t.command) - (size_t)n,
			      "%s%s", n ? " " : "", argv[j]);
		if (n >= (int)sizeof(r.t.command))
			n = (int)sizeof(r.t.command) - 1;
	}
	one_line(r.t.command);
	one_line(r.t.kernel);
	/* Signals are taken with sigwait, at one place (run). */
	sigemptyset(&set);
	for (size_t k = 0; k < sizeof(sigs) / sizeof(sigs[0]); k++)
		sigaddset(&set, sigs[k]);
	sigprocmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);	/* a write error is reported instead */
	if (setup(&r))
		goto out;
	if (instf(&r, p, sizeof(p), "trace_pipe") ||
	    (r.pipe_fd = open(p, O_RDONLY | O_NONBLOCK | O_CLOEXEC)) < 0) {
		fprintf(stderr, "vmap-trace record: trace_pipe: %s\n",
			strerror(errno));
		goto out;
	}
	if (pthread_create(&r.reader, NULL, reader, &r)) {
		fprintf(stderr, "vmap-trace record: no reader thread\n");
		goto out;
	}
	r.reader_running = true;
	enable(&r, "1");
	if (snapshot(&r))
		goto out;
	status = run(argv + i + (i < argc), &set);
	enable(&r, "0");
	marker(&r, "stop");	/* without it, the reader stops in 2 s */
	atomic_store(&r.stopping, true);
	pthread_join(r.reader, NULL);
	r.reader_running = false;
	if (r.reader_rc) {
		fprintf(stderr, "vmap-trace record: reading trace_pipe "
			"failed\n");
		goto out;
	}
	if (status < 0)
		goto out;
	if (r.t.snap_end_ns < r.t.snap_begin_ns || !r.t.snap_end_ns) {
		fprintf(stderr, "vmap-trace record: the snapshot's markers did "
			"not come through trace_pipe\n");
		goto out;
	}
	if (!r.t.stopped)
		fprintf(stderr, "vmap-trace record: warning: the stop marker "
			"never came through; the last events may be missing\n");
	if (r.bad_lines)
		fprintf(stderr, "vmap-trace record: warning: %llu lines of "
			"trace_pipe could not be read and were left out\n",
			(unsigned long long)r.bad_lines);
	lost_events(&r);
	if (r.t.lost)
		fprintf(stderr, "vmap-trace record: warning: the kernel lost "
			"%llu events (the ring buffer overran): the trace will "
			"not replay exactly\n", (unsigned long long)r.t.lost);
	if (!out_file(&of) || trace_write(&r.t, out_file(&of)) ||
	    out_commit(&of)) {
		fprintf(stderr, "vmap-trace record: %s: %s\n", out,
			strerror(errno));
		goto out;
	}
	fprintf(stderr, "vmap-trace record: %zu events, %zu snapshot areas "
		"-> %s\n", r.t.nev, r.t.nsnap, out);
	rc = status;
out:
	out_abort(&of);
	if (r.reader_running) {
		atomic_store(&r.abandon, true);
		pthread_join(r.reader, NULL);
	}
	teardown(&r);
	trace_free(&r.t);
	return rc;
}
