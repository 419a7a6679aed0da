/* SPDX-License-Identifier: MIT */
/*
 * outfile.c - writing a result file: all of it or nothing, where the user
 * said.
 *
 * A regular file (or a new one) is written to a temporary file beside it
 * and renamed over it at the end, so a run that fails leaves nothing, and a
 * half-written file is never seen.  Anything else -- /dev/stdout, a FIFO, a
 * symlink -- is written through, at the end, never replaced.
 * The temporary file is made when the run starts, so a path that cannot be
 * written is an error before a long recording, not after it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "trace.h"

/* mkstemp makes 0600; the file gets the mode asked for, less the umask, as
 * open(O_CREAT) would give it. */
static mode_t umask_now(void)
{
	mode_t m = umask(0);

	umask(m);
	return m;
}

int out_open(struct outfile *o, const char *path, unsigned mode)
{
	struct stat st;
	int fd;

	memset(o, 0, sizeof(*o));
	o->path = path;
	o->mode = mode;
	if (!stat(path, &st) && S_ISDIR(st.st_mode)) {
		errno = EISDIR;
		return -1;
	}
	if (!lstat(path, &st) && !S_ISREG(st.st_mode)) {
		/* A device, a FIFO, a symlink (to wherever): write into it,
		 * never replace it. */
		o->through = true;
		return access(path, W_OK) && errno != ENOENT ? -1 : 0;
	}
	if (snprintf(o->tmp, sizeof(o->tmp), "%s.XXXXXX", path) >=
	    (int)sizeof(o->tmp)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	fd = mkstemp(o->tmp);
	if (fd < 0) {
		o->tmp[0] = '\0';
		return -1;
	}
	o->f = fdopen(fd, "w");
	if (!o->f) {
		close(fd);
		out_abort(o);
		return -1;
	}
	return 0;
}

FILE *out_file(struct outfile *o)
{
	int fd;

	if (!o->f && o->through) {
		fd = open(o->path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
			  (mode_t)o->mode);
		if (fd >= 0 && !(o->f = fdopen(fd, "w")))
			close(fd);
	}
	return o->f;
}

int out_commit(struct outfile *o)
{
	int rc = 0;

	if (!out_file(o))
		return -1;
	if (ferror(o->f))
		rc = -1;
	if (!o->through && fchmod(fileno(o->f), (mode_t)o->mode & ~umask_now()))
		rc = -1;
	if (fclose(o->f))
		rc = -1;
	o->f = NULL;
	if (!rc && !o->through && rename(o->tmp, o->path))
		rc = -1;
	if (rc)
		out_abort(o);
	o->tmp[0] = '\0';
	return rc;
}

void out_abort(struct outfile *o)
{
	int e = errno;

	if (o->f)
		fclose(o->f);
	o->f = NULL;
	if (o->tmp[0])
		unlink(o->tmp);
	o->tmp[0] = '\0';
	errno = e;
}
