/* SPDX-License-Identifier: MIT */
/*
 * vmap-storm: make the kernel's vmalloc work, for vmap-trace to record.
 *
 *   vmap-storm threads N ROUNDS     create N threads and join them, ROUNDS
 *                                   times (each thread's kernel stack is a
 *                                   vmalloc area: 16 KiB + a guard page)
 *   vmap-storm procs N ROUNDS       fork N children that exit at once and
 *                                   reap them, ROUNDS times
 *   vmap-storm seccomp N ROUNDS     fork N children that each install a
 *                                   seccomp filter (a BPF program: vmalloc
 *                                   of its own) and exit, ROUNDS times
 */
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

static void *nothing(void *arg)
{
	return arg;
}

static int threads(int n)
{
	pthread_t *t = calloc((size_t)n, sizeof(*t));
	int made = 0, rc = 0;

	if (!t)
		return -1;
	for (; made < n; made++) {
		int e = pthread_create(&t[made], NULL, nothing, NULL);

		if (e) {
			fprintf(stderr, "vmap-storm: thread %d: %s\n", made,
				strerror(e));
			rc = -1;
			break;
		}
	}
	for (int i = 0; i < made; i++)
		pthread_join(t[i], NULL);
	free(t);
	return rc;
}

/* A filter that allows everything: its only point is the allocation. */
static void filter(void)
{
	struct sock_filter allow[] = {
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = { 1, allow };

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) ||
	    prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog))
		_exit(1);
}

static int procs(int n, int seccomp)
{
	int rc = 0, status;

	for (int i = 0; i < n && !rc; i++) {
		pid_t pid = fork();

		if (pid < 0) {
			perror("vmap-storm: fork");
			rc = -1;	/* reap the ones made, then fail */
			break;
		}
		if (pid == 0) {
			if (seccomp)
				filter();
			_exit(0);
		}
	}
	while (wait(&status) > 0)
		if (!WIFEXITED(status) || WEXITSTATUS(status)) {
			if (!rc)
				fprintf(stderr, "vmap-storm: a child failed "
					"(seccomp refused?)\n");
			rc = -1;
		}
	return rc;
}

int main(int argc, char **argv)
{
	int n, rounds, rc = 0;

	if (argc != 4 || (n = atoi(argv[2])) < 1 ||
	    (rounds = atoi(argv[3])) < 1) {
		fprintf(stderr, "usage: vmap-storm threads|procs|seccomp N "
			"ROUNDS\n");
		return 2;
	}
	for (int r = 0; r < rounds && !rc; r++) {
		if (!strcmp(argv[1], "threads"))
			rc = threads(n);
		else if (!strcmp(argv[1], "procs"))
			rc = procs(n, 0);
		else if (!strcmp(argv[1], "seccomp"))
			rc = procs(n, 1);
		else {
			fprintf(stderr, "vmap-storm: '%s': threads, procs or "
				"seccomp\n", argv[1]);
			return 2;
		}
	}
	return rc ? 1 : 0;
}
