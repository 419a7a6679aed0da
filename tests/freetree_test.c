/* SPDX-License-Identifier: MIT */
/*
 * freetree_test.c - unit tests of the free tree: insert, merge, carve, and
 * lowest / highest fit with alignment, phase, boundaries and ranges.
 *
 * Pictures show a space of one character per page, from address 0:
 *   '.' free     '#' not free
 * picture() draws the tree's blocks that way, so a scenario is a string.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "test.h"

#define PG 4096u
#define NPAGES 32

static struct va *node(void)
{
	struct va *v = calloc(1, sizeof(*v));

	REQUIRE(v);
	return v;
}

static int paint(void *arg, const struct va *v)
{
	char *pic = arg;

	for (uint64_t a = v->start; a < v->end; a += PG)
		pic[a / PG] = '.';
	return 0;
}

static const char *picture(const struct freetree *t)
{
	static char pic[NPAGES + 1];
	char msg[200];

	memset(pic, '#', NPAGES);
	pic[NPAGES] = 0;
	ft_walk(t, paint, pic);
	if (ft_validate(t, msg, sizeof(msg))) {
		fprintf(stderr, "ft_validate: %s\n", msg);
		test_failures++;
	}
	return pic;
}

#define CHECK_PIC(t, want)                                                  \
	do {                                                                \
		const char *_got = picture(t);                              \
		test_checks++;                                              \
		if (strcmp(_got, want)) {                                   \
			test_failures++;                                    \
			fprintf(stderr, "%s:%d: picture\n  got  %s\n  want %s\n", \
				__FILE__, __LINE__, _got, want);            \
		}                                                           \
	} while (0)

static void give(struct freetree *t, unsigned first, unsigned n);

/* Start from a picture: every run of '.' becomes a free block. */
static void draw(struct freetree *t, const char *pic)
{
	ft_init(t);
	for (unsigned i = 0; pic[i];) {
		unsigned j = i;

		while (pic[j] == '.')
			j++;
		if (j > i)
			give(t, i, j - i);
		i = j > i ? j : i + 1;
	}
}

/* Give pages [first, first + n) back to the tree. */
static void give(struct freetree *t, unsigned first, unsigned n)
{
	struct va *v = node(), *extra;

	extra = ft_insert(t, first * PG, (first + n) * PG, &v);
	free(v);
	free(extra);
}

static void release(struct va *v)
{
	free(v);
}

/* Take pages where ft_find says, for a request; returns the first page or -1. */
static long take(struct freetree *t, struct fit f)
{
	struct va *spare = node(), *b, *used;
	uint64_t a;

	f.size *= PG;
	b = ft_find(t, &f, &a);
	if (!b) {
		free(spare);
		return -1;
	}
	used = ft_carve(t, b, a, f.size, &spare);
	free(used);
	free(spare);
	return (long)(a / PG);
}

/* A whole-space request of n pages, page aligned. */
static struct fit pages(unsigned n)
{
	return (struct fit){ .size = n, .align = PG, .lo = 0,
			     .hi = NPAGES * PG };
}

static void test_merge(void)
{
	struct freetree t;

	ft_init(&t);
	CHECK_PIC(&t, "################################");
	give(&t, 4, 4);
	CHECK_PIC(&t, "####....########################");
	give(&t, 12, 4); /* no neighbour: a second block */
	CHECK_PIC(&t, "####....####....################");
	CHECK_EQ(t.nodes, 2);
	give(&t, 8, 2); /* touches the left block: it grows */
	CHECK_PIC(&t, "####......##....################");
	CHECK_EQ(t.nodes, 2);
	give(&t, 10, 2); /* bridges both: one block */
	CHECK_PIC(&t, "####............################");
	CHECK_EQ(t.nodes, 1);
	give(&t, 2, 2); /* touches the right block's start */
	CHECK_PIC(&t, "##..............################");
	CHECK_EQ(t.nodes, 1);
	CHECK_EQ(ft_largest(&t), 14 * PG);
	CHECK_EQ(t.bytes, 14 * PG);
	ft_destroy(&t, release);
}

static void test_carve(void)
{
	struct freetree t;

	ft_init(&t);
	give(&t, 0, NPAGES);
	CHECK_EQ(take(&t, pages(3)), 0); /* left edge */
	CHECK_PIC(&t, "###.............................");
	CHECK_EQ(take(&t, (struct fit){ .size = 2, .align = PG,
					.lo = 30 * PG, .hi = 32 * PG }),
		 30); /* right edge */
	CHECK_PIC(&t, "###...........................##");
	CHECK_EQ(take(&t, (struct fit){ .size = 4, .align = 8 * PG,
					.lo = 0, .hi = NPAGES * PG }),
		 8); /* middle: the block splits */
	CHECK_PIC(&t, "###.....####..................##");
	CHECK_EQ(t.nodes, 2);
	CHECK_EQ(take(&t, pages(5)), 3); /* exact fit: the block goes */
	CHECK_PIC(&t, "############..................##");
	CHECK_EQ(t.nodes, 1);
	CHECK_EQ(take(&t, pages(19)), -1); /* nothing that big */
	ft_destroy(&t, release);
}

static void test_lowest_fit(void)
{
	struct freetree t;

	/*   0         1         2         3
	 *   01234567890123456789012345678901  */
	draw(&t, "#..###....#####........#.......#");
	CHECK_PIC(&t, "#..###....#####........#.......#");
	/* Lowest fit, not best fit: 2 pages go at 1, not into a tighter hole. */
	CHECK_EQ(take(&t, pages(2)), 1);
	CHECK_PIC(&t, "######....#####........#.......#");
	ft_destroy(&t, release);

	draw(&t, "#..###....#####........#.......#");
	/* 4 pages aligned to 4: block 6..9 holds 4 pages but not at a
	 * multiple of 4 (8..11 runs past it); 16 is the first that fits. */
	CHECK_EQ(take(&t, (struct fit){ .size = 4, .align = 4 * PG,
					.lo = 0, .hi = NPAGES * PG }),
		 16);
	CHECK_PIC(&t, "#..###....#####.####...#.......#");
	/* Phase: 2 pages at 4k + 1 -> 1 is free and fits. */
	CHECK_EQ(take(&t, (struct fit){ .size = 2, .align = 4 * PG,
					.phase = 1 * PG, .lo = 0,
					.hi = NPAGES * PG }),
		 1);
	/* Range: only [24, 32) may be used. */
	CHECK_EQ(take(&t, (struct fit){ .size = 3, .align = PG,
					.lo = 24 * PG, .hi = NPAGES * PG }),
		 24);
	CHECK_PIC(&t, "######....#####.####...####....#");
	/* nocross 8 pages: 4 pages may not straddle 8, 16, 24; 6..9 cannot
	 * (it crosses 8), 20..22 is too short, 27..30 does. */
	CHECK_EQ(take(&t, (struct fit){ .size = 3, .align = PG,
					.nocross = 8 * PG, .lo = 0,
					.hi = NPAGES * PG }),
		 20);
	CHECK_EQ(take(&t, (struct fit){ .size = 4, .align = PG,
					.nocross = 8 * PG, .lo = 0,
					.hi = NPAGES * PG }),
		 27);
	ft_destroy(&t, release);
}

static void test_topdown(void)
{
	struct freetree t;

	draw(&t, "#..###....#####........#.......#");
	CHECK_PIC(&t, "#..###....#####........#.......#");
	/* Highest fit: the top of 24..30. */
	CHECK_EQ(take(&t, (struct fit){ .size = 2, .align = PG, .lo = 0,
					.hi = NPAGES * PG, .topdown = true }),
		 29);
	CHECK_PIC(&t, "#..###....#####........#.....###");
	/* Aligned to 8 and top-down: 24 is the highest multiple that fits. */
	CHECK_EQ(take(&t, (struct fit){ .size = 4, .align = 8 * PG, .lo = 0,
					.hi = NPAGES * PG, .topdown = true }),
		 24);
	/* Below 20 only, top-down: 17..19. */
	CHECK_EQ(take(&t, (struct fit){ .size = 3, .align = PG, .lo = 0,
					.hi = 20 * PG, .topdown = true }),
		 17);
	/* nocross 8 below page 9: 7..8 would cross 8, so 6..7. */
	CHECK_EQ(take(&t, (struct fit){ .size = 2, .align = PG, .lo = 0,
					.hi = 9 * PG, .nocross = 8 * PG,
					.topdown = true }),
		 6);
	CHECK_PIC(&t, "#..#####..#####..###...#####.###");
	ft_destroy(&t, release);
}

/* Many blocks: the tree stays balanced and augmented through churn. */
static void test_many(void)
{
	struct freetree t;
	char msg[200];
	int bad = 0;

	ft_init(&t);
	/* Every other page of 4096, then fill the holes in a scattered order. */
	for (unsigned i = 0; i < 4096; i += 2)
		give(&t, i, 1);
	CHECK_EQ(t.nodes, 2048);
	CHECK_EQ(ft_largest(&t), PG);
	for (unsigned k = 0; k < 2048; k++) {
		unsigned hole = (k * 1031) % 2048 * 2 + 1;

		give(&t, hole, 1);
		if (k % 97 == 0 && ft_validate(&t, msg, sizeof(msg)))
			bad++;
	}
	CHECK_EQ(bad, 0);
	CHECK_EQ(t.nodes, 1);
	CHECK_EQ(ft_largest(&t), 4096ull * PG);
	ft_destroy(&t, release);
}

int main(void)
{
	test_merge();
	test_carve();
	test_lowest_fit();
	test_topdown();
	test_many();
	return test_summary("freetree_test");
}
