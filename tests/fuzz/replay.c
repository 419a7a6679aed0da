/* SPDX-License-Identifier: MIT */
/*
 * replay.c - a main() for a fuzz target without libFuzzer: run every input
 * named on the command line -- files, or directories of them (a corpus) --
 * once, in name order.  So a gcc build replays the committed corpus in every
 * test run, and a crash file from a fuzzing run replays under a debugger:
 *   fuzz_model_replay crash-0123abcd
 * A finding aborts, as under libFuzzer; each input's name goes to stderr
 * before it runs, so the last one named is the culprit.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

static unsigned long inputs;

static uint8_t *read_file(const char *path, size_t *size)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL;
	long n;

	if (!f)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 &&
	    fseek(f, 0, SEEK_SET) == 0 && (buf = malloc((size_t)n + 1)) &&
	    fread(buf, 1, (size_t)n, f) == (size_t)n) {
		*size = (size_t)n;
	} else {
		free(buf);
		buf = NULL;
	}
	fclose(f);
	return buf;
}

static int run_file(const char *path)
{
	size_t size = 0;
	uint8_t *data = read_file(path, &size);

	if (!data) {
		fprintf(stderr, "replay: cannot read %s: %s\n", path,
			strerror(errno));
		return 1;
	}
	fprintf(stderr, "replay: %s (%zu bytes)\n", path, size);
	LLVMFuzzerTestOneInput(data, size);
	free(data);
	inputs++;
	return 0;
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

static int run_dir(const char *dir)
{
	struct dirent **names;
	char path[4096];
	int n = scandir(dir, &names, NULL, by_name), err = 0;

	if (n < 0) {
		fprintf(stderr, "replay: cannot list %s: %s\n", dir,
			strerror(errno));
		return 1;
	}
	for (int i = 0; i < n; i++) {
		struct stat st;

		snprintf(path, sizeof(path), "%s/%s", dir, names[i]->d_name);
		if (!err && stat(path, &st) == 0 && S_ISREG(st.st_mode))
			err = run_file(path);
		free(names[i]);
	}
	free(names);
	return err;
}

int main(int argc, char **argv)
{
	struct stat st;
	int err = 0;

	LLVMFuzzerInitialize(&argc, &argv);
	if (argc < 2) {
		fprintf(stderr, "usage: %s FILE|DIR...\n", argv[0]);
		return 2;
	}
	for (int i = 1; i < argc && !err; i++) {
		if (stat(argv[i], &st) != 0) {
			fprintf(stderr, "replay: %s: %s\n", argv[i],
				strerror(errno));
			err = 1;
		} else {
			err = S_ISDIR(st.st_mode) ? run_dir(argv[i])
						  : run_file(argv[i]);
		}
	}
	printf("%s: %lu inputs replayed\n", argv[0], inputs);
	return err || !inputs;
}
