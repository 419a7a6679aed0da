/* SPDX-License-Identifier: MIT */
/*
 * error.c - messages for the errno values vmap returns, in vmap's own terms.
 */
#include <errno.h>

#include "vmap.h"

const char *vmap_strerror(int err)
{
	switch (err < 0 ? -err : err) {
	case 0:
		return "success";
	case EINVAL:
		return "invalid argument";
	case ENOSPC:
		return "no free range satisfies the request";
	case ENOENT:
		return "address is not the start of a busy area";
	case ENOMEM:
		return "out of memory, or the kernel refused another mapping";
	case EBUSY:
		return "busy: another purge is running, or the range holds a "
		       "busy area";
	case EAGAIN:
		return "the range holds freed areas not yet flushed: a purge "
		       "would free it";
	case ERANGE:
		return "the range is not inside the space";
	case EPERM:
		return "the area is a reservation, or not one";
	case E2BIG:
		return "config is larger than this library knows, with "
		       "nonzero extra bytes";
	case EUCLEAN:
		return "space invariants are violated";
	case EIO:
		return "output error";
	default:
		return "unknown error";
	}
}
