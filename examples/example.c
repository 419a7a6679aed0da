/* The README's usage example: a 1 GiB range space whose flush is a counter.
 * Built and run by the test suite, so it cannot rot. */
#include <stdio.h>
#include <vmap.h>

static void flush(void *ctx, const struct vmap_range *r, size_t n)
{
	(void)r;
	*(size_t *)ctx += n;	/* e.g. invalidate a GPU TLB for r[0..n) */
}

int main(void)
{
	struct vmap_config cfg;
	struct vmap_stats st = { .size = sizeof(st) };
	size_t flushed = 0;
	vmap_space *space;
	uint64_t a, b;
	int err;

	vmap_config_init(&cfg);
	cfg.base = 0x100000000;		/* [4 GiB, 5 GiB) */
	cfg.length = 1ull << 30;
	cfg.flush = flush;
	cfg.flush_ctx = &flushed;
	if ((err = vmap_space_create(&cfg, &space))) {
		fprintf(stderr, "create: %s\n", vmap_strerror(err));
		return 1;
	}
	/* 64 KiB anywhere, and 2 MiB aligned to 2 MiB, from the top. */
	if ((err = vmap_alloc(space, 64 << 10, 0, 0, UINT64_MAX, &a)) ||
	    (err = vmap_xalloc(space, 2 << 20, 2 << 20, 0, 0, 0, UINT64_MAX,
			       VMAP_XALLOC_TOPDOWN, &b))) {
		fprintf(stderr, "alloc: %s\n", vmap_strerror(err));
		return 1;
	}
	vmap_free(space, a);		/* lazy: no flush yet */
	vmap_free(space, b);
	vmap_purge(space, VMAP_PURGE_SYNC);	/* one flush for both */
	vmap_stats(space, &st);
	printf("a=%#llx b=%#llx flushes=%llu ranges=%zu\n",
	       (unsigned long long)a, (unsigned long long)b,
	       (unsigned long long)st.flushes, flushed);
	vmap_space_destroy(space);
	return !(st.flushes == 1 && flushed == 2);
}
