/* SPDX-License-Identifier: MIT */
/*
 * memory_unit_test.c - the memory logic against a fake OS seam that records
 * every release call and can refuse them: one vectored call per up to 1024
 * ranges, one call per coalesced range on the fallback path, and a batch the
 * kernel refuses kept lazy for the next purge.
 */
#include <errno.h>
#include <string.h>
#include <sys/mman.h>

#include "internal.h"
#include "test.h"

#define PG 4096u

static struct {
	enum os_release_path path;	/* what probe answers */
	int fail;			/* release fails on every path */
	size_t calls, ranges, biggest;	/* what release saw */
	int reserved, unreserved;
	int guard_fail;			/* guard installs fail from the
					   n-th on (0: never) */
	int guard_installs;
} fake;

static int fake_reserve(uint64_t len, uint64_t *out)
{
	/* Real memory, so the hand-zeroing fallback has pages to write. */
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	if (p == MAP_FAILED)
		return -ENOMEM;
	fake.reserved++;
	*out = (uint64_t)(uintptr_t)p;
	return 0;
}

static int fake_unreserve(uint64_t addr, uint64_t len)
{
	fake.unreserved++;
	return munmap((void *)(uintptr_t)addr, len) ? -errno : 0;
}

static enum os_release_path fake_probe(uint64_t scratch, uint64_t len)
{
	(void)scratch;
	(void)len;
	return fake.path;
}

static int fake_release(enum os_release_path path, const struct vmap_range *r,
			size_t n, uint64_t *syscalls)
{
	size_t calls = path == OS_RELEASE_PROCESS_MADVISE ? 1 : n;

	REQUIRE(n <= OS_IOV_MAX);
	for (size_t i = 1; i < n; i++)
		REQUIRE(r[i - 1].end < r[i].start); /* sorted, coalesced */
	*syscalls += calls;
	if (fake.fail)
		return -EINVAL;
	fake.calls += calls;
	fake.ranges += n;
	fake.biggest = n > fake.biggest ? n : fake.biggest;
	return 0;
}

/* While failing, the kernel refuses remaps too: nothing gets through. */
static int fake_map_anon(uint64_t addr, uint64_t len)
{
	return fake.fail ? -ENOMEM : os_linux.map_anon(addr, len);
}

static int fake_guard_install(uint64_t addr, uint64_t page, uint64_t *calls)
{
	if (fake.guard_fail && ++fake.guard_installs >= fake.guard_fail)
		return -ENOMEM;
	return os_linux.guard_install(addr, page, calls);
}

static struct vmap_os fake_os;

static void init_fake_os(void)
{
	fake_os = os_linux; /* mapping files and guards: the real ones */
	fake_os.guard_install = fake_guard_install;
	fake_os.reserve = fake_reserve;
	fake_os.unreserve = fake_unreserve;
	fake_os.probe = fake_probe;
	fake_os.release = fake_release;
	fake_os.map_anon = fake_map_anon;
}

static vmap_space *mspace(enum os_release_path path)
{
	struct vmap_config c;
	vmap_space *s;

	memset(&fake, 0, sizeof(fake));
	fake.path = path;
	vmap_config_init(&c);
	/* No purge thread: these tests count the fake's calls exactly. */
	c.flags = VMAP_SPACE_MEMORY | VMAP_SPACE_NOPURGER;
	c.length = 8192 * PG;
	c.lazy_max_pages = 1000000;
	REQUIRE(vmap_space_create(&c, &s) == 0);
	return s;
}

/* Free every other page of 5000: 2500 ranges that cannot coalesce. */
static void scatter(vmap_space *s, char **p)
{
	for (int i = 0; i < 5000; i++)
		REQUIRE((p[i] = vmap_vmalloc(s, PG)));
	for (int i = 0; i < 5000; i += 2)
		REQUIRE(vmap_vfree(s, p[i]) == 0);
}

static void test_vectored(void)
{
	static char *p[5000];
	vmap_space *s = mspace(OS_RELEASE_PROCESS_MADVISE);
	struct vmap_stats st = { .size = sizeof(st) };

	scatter(s, p);
	CHECK_EQ(vmap_purge(s, VMAP_PURGE_SYNC), 0);
	CHECK_EQ(fake.calls, 3); /* 1024 + 1024 + 452 */
	CHECK_EQ(fake.ranges, 2500);
	CHECK_EQ(fake.biggest, 1024);
	vmap_stats(s, &st);
	CHECK_EQ(st.release_path, VMAP_RELEASE_PROCESS_MADVISE);
	CHECK_EQ(st.release_syscalls, 3);
	/* The odd pages are lazy between free pages: 2500 ranges again.  Then
	 * the space is one free block. */
	for (int i = 1; i < 5000; i += 2)
		vmap_vfree(s, p[i]);
	vmap_purge(s, VMAP_PURGE_SYNC);
	CHECK_EQ(fake.calls, 6);
	vmap_stats(s, &st);
	CHECK_EQ(st.free_blocks, 1);
	vmap_space_destroy(s);
	CHECK_EQ(fake.reserved, 1);
	CHECK_EQ(fake.unreserved, 1);
}

static void test_fallback(void)
{
	static char *p[5000];
	vmap_space *s = mspace(OS_RELEASE_MADVISE);
	struct vmap_stats st = { .size = sizeof(st) };

	scatter(s, p);
	vmap_purge(s, VMAP_PURGE_SYNC);
	vmap_stats(s, &st);
	CHECK_EQ(st.release_path, VMAP_RELEASE_MADVISE);
	CHECK_EQ(fake.calls, 2500); /* one per coalesced range */
	CHECK_EQ(st.release_syscalls, 2500);
	vmap_space_destroy(s);
}

/* The kernel refuses: nothing is given back or reused; the refused areas
 * go into quarantine, and purges retry them, more each time they succeed. */
static void test_refused(void)
{
	static char *p[5000];
	vmap_space *s = mspace(OS_RELEASE_PROCESS_MADVISE);
	struct vmap_stats st = { .size = sizeof(st) };
	uint64_t free_before;

	for (int i = 0; i < 5000; i++) {
		REQUIRE((p[i] = vmap_vmalloc(s, PG)));
		memset(p[i], 0x77, PG);
	}
	for (int i = 0; i < 5000; i += 2)
		vmap_vfree(s, p[i]);
	vmap_stats(s, &st);
	free_before = st.free_pages;
	fake.fail = 1;
	vmap_purge(s, VMAP_PURGE_SYNC);
	vmap_stats(s, &st);
	CHECK_EQ(st.release_errors, 2500);
	CHECK_EQ(st.quarantined_areas, 2500);
	CHECK_EQ(st.quarantined_pages, 2500);
	CHECK_EQ(st.lazy_areas, 0);
	CHECK_EQ(st.free_pages, free_before);
	CHECK_EQ(vmap_check(s), 0);
	/* Still refusing: each purge retries VMAP_QUARANTINE_RETRY, no more. */
	for (int i = 0; i < 3; i++)
		vmap_purge(s, VMAP_PURGE_SYNC);
	vmap_stats(s, &st);
	CHECK_EQ(st.quarantine_retries, 3 * VMAP_QUARANTINE_RETRY);
	CHECK_EQ(st.quarantined_areas, 2500);
	fake.fail = 0;
	/* The kernel relents: 16, 32, 64, ... come back per purge. */
	int purges = 0;

	do {
		vmap_purge(s, VMAP_PURGE_SYNC);
		vmap_stats(s, &st);
		CHECK_EQ(vmap_check(s), 0);
	} while (st.quarantined_areas && ++purges < 100);
	CHECK(purges <= 8);
	CHECK_EQ(st.lazy_areas, 0);
	CHECK_EQ(st.free_pages, free_before + 2500);
	CHECK_EQ(fake.ranges, 2500);
	CHECK_EQ(vmap_check(s), 0);
	vmap_space_destroy(s);
}

/*
 * vmap_vrealloc when the kernel will not move a guard page: a grow in place
 * that carved the whole free range after the area puts it back (it needs the
 * record the carve freed: a regression test -- it once had none and
 * crashed), the move's new area cannot get its guard either, and the call
 * fails with ENOMEM, the area as it was, its contents kept.
 *   AAAA g ...... B g     A grows into exactly the 6 free pages: refused
 */
static void test_vrealloc_guard_refused(void)
{
	struct vmap_config c;
	vmap_space *s;
	char *a, *b, *p;

	memset(&fake, 0, sizeof(fake));
	fake.path = OS_RELEASE_MADVISE;
	vmap_config_init(&c);
	c.flags = VMAP_SPACE_MEMORY | VMAP_SPACE_NOPURGER | VMAP_SPACE_GUARD |
		  VMAP_SPACE_NOPOOL;
	c.length = 64 * PG;
	REQUIRE(vmap_space_create(&c, &s) == 0);
	a = vmap_vmalloc(s, 4 * PG);
	REQUIRE(a);
	REQUIRE(vmap_xalloc(s, PG, 0, 0, 0, (uintptr_t)a + 11 * PG, UINT64_MAX,
			    0, &(uint64_t){ 0 }) == 0);
	b = a + 11 * PG;
	memset(a, 0x5a, 4 * PG);
	fake.guard_fail = 1;
	fake.guard_installs = 0;
	errno = 0;
	p = vmap_vrealloc(s, a, 10 * PG); /* A + guard fill the 6 pages */
	CHECK(p == NULL);
	CHECK_EQ(errno, ENOMEM);
	fake.guard_fail = 0;
	CHECK_EQ(a[4 * PG - 1], 0x5a);
	CHECK_EQ(test_stats(s).busy_pages, 5 + 2);
	CHECK_EQ(test_stats(s).free_blocks, 2);
	CHECK_EQ(vmap_check(s), 0);
	CHECK_EQ(vmap_vfree(s, a), 0);
	CHECK_EQ(vmap_vfree(s, b), 0);
	vmap_space_destroy(s);
}

int main(void)
{
	init_fake_os();
	vm_os = &fake_os;
	test_vectored();
	test_fallback();
	test_refused();
	test_vrealloc_guard_refused();
	return test_summary("memory_unit_test");
}
