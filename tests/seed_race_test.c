/* SPDX-License-Identifier: MIT */
/*
 * seed_race_test.c - the use-after-free Roman Pen found in review of the
 * 2016 lazy-list patch, as a regression test.
 *
 * The kernel's free path marked the area lazy (and, with the patch, put it
 * on the list) and only then read its size to update the counter: by then a
 * purge on another CPU could have released the area and freed its record.
 * vmap's free path reads everything it needs before publishing.
 *
 * A test hook runs right after publication, inside vmap_free: it lets a
 * purge run to completion there, which releases the area and frees the
 * record.  Built against vmap's order, ASan finds nothing; built against the
 * pre-2016 order (VMAP_TEST_OLD_ORDER), ASan reports the use-after-free and
 * ctest expects that report (in the ASan build only).
 */
#include "internal.h"
#include "test.h"

static int purges;

static void purge_now(vmap_space *s)
{
	/* Another CPU's purge, all of it, between publish and return. */
	CHECK_EQ(vmap_purge(s, VMAP_PURGE_SYNC), 0);
	purges++;
}

int main(void)
{
	struct vmap_config c;
	vmap_space *s;
	uint64_t a;

	vmap_config_init(&c);
	c.base = 1ull << 32;
	c.length = 64 * 4096;
	REQUIRE(vmap_space_create(&c, &s) == 0);
	vm_test_after_publish = purge_now;
	for (int i = 0; i < 100; i++) {
		REQUIRE(vmap_alloc(s, (1 + i % 4) * 4096, 0, 0, UINT64_MAX,
				   &a) == 0);
		CHECK_EQ(vmap_free(s, a), 0);
	}
	vm_test_after_publish = NULL;
	CHECK_EQ(purges, 100);
	CHECK_EQ(test_stats(s).lazy_pages, 0);
	CHECK_EQ(test_stats(s).areas_purged, 100);
	CHECK_EQ(vmap_check(s), 0);
	vmap_space_destroy(s);
	return test_summary("seed_race_test");
}
