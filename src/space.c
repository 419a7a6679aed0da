/* SPDX-License-Identifier: MIT */
/*
 * space.c - creating and destroying spaces, their configuration, their stats.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

/* The fields of the first published vmap_config; older callers pass no less. */
#define CONFIG_SIZE_V1 (offsetof(struct vmap_config, flags) + sizeof(unsigned))

void vmap_config_init(struct vmap_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->size = sizeof(*cfg);
	cfg->page_size = 4096;
}

/* The kernel's lazy_max_pages(): fls(online CPUs) * 32 MiB worth of pages.
 * Logarithmic in the CPUs, to bound the latency of one purge on big machines. */
static uint64_t default_lazy_max(uint64_t page_size)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	int fls = 0;
	uint64_t per = (32ull << 20) / page_size;

	for (unsigned long c = cpus > 0 ? (unsigned long)cpus : 1; c; c >>= 1)
		fls++;
	return (uint64_t)fls * (per ? per : 1);
}

/* Does a config of n bytes end inside a field?  (Padding is fine.) */
static bool splits_field(size_t n)
{
#define FIELD(f) { offsetof(struct vmap_config, f), \
		   sizeof(((struct vmap_config *)0)->f) }
	static const struct { size_t at, len; } field[] = {
		FIELD(size),	       FIELD(base),	FIELD(length),
		FIELD(page_size),      FIELD(lazy_max_pages), FIELD(flush),
		FIELD(flush_ctx),      FIELD(flags),	FIELD(pool_max_pages),
		FIELD(block_pages),    FIELD(purge_delay_ms),
		FIELD(flush_async),
	};
#undef FIELD
	for (size_t i = 0; i < sizeof(field) / sizeof(field[0]); i++)
		if (n > field[i].at && n < field[i].at + field[i].len)
			return true;
	return false;
}

/* Copy a caller's config of any size into ours; see struct vmap_config. */
static int read_config(const struct vmap_config *in, struct vmap_config *c)
{
	size_t n = in->size;

	vmap_config_init(c);
	if (n < CONFIG_SIZE_V1 || splits_field(n))
		return -EINVAL;
	if (n > sizeof(*c)) {
		const unsigned char *extra = (const unsigned char *)in;

		for (size_t i = sizeof(*c); i < n; i++)
			if (extra[i])
				return -E2BIG;
		n = sizeof(*c);
	}
	memcpy(c, in, n);
	c->size = sizeof(*c);
	return 0;
}

/* Memory spaces have a purger unless told not to (or strict: every free
 * purges at once); range spaces when asked for. */
static bool has_purger(unsigned flags)
{
	if (flags & VMAP_SPACE_PURGER)
		return true;
	return (flags & VMAP_SPACE_MEMORY) &&
	       !(flags & (VMAP_SPACE_NOPURGER | VMAP_SPACE_STRICT));
}

static int check_config(struct vmap_config *c)
{
	uint64_t ps = c->page_size;

	if ((c->flags & (VMAP_SPACE_GUARD | VMAP_SPACE_RELEASE_MADVISE |
			 VMAP_SPACE_NOPOOL)) &&
	    !(c->flags & VMAP_SPACE_MEMORY))
		return -EINVAL;
	if ((c->flags & VMAP_SPACE_PURGER) &&
	    (c->flags & (VMAP_SPACE_NOPURGER | VMAP_SPACE_STRICT)))
		return -EINVAL;
	if ((c->flags & VMAP_SPACE_EMPTY) && (c->flags & VMAP_SPACE_MEMORY))
		return -EINVAL;
	if (c->flush_async &&
	    (c->flush || (c->flags & (VMAP_SPACE_MEMORY | VMAP_SPACE_STRICT))))
		return -EINVAL;
	if (c->purge_delay_ms > VMAP_PURGE_DELAY_MAX_MS ||
	    (c->purge_delay_ms && !has_purger(c->flags)))
		return -EINVAL;
	if (c->block_pages &&
	    (c->block_pages < 2 * VMAP_RAM_MAX_PAGES ||
	     c->block_pages > VMAP_BLOCK_PAGES_MAX ||
	     (c->block_pages & (c->block_pages - 1))))
		return -EINVAL;
	if (!c->block_pages)
		c->block_pages = VMAP_BLOCK_PAGES_DEFAULT;
	if (c->flags & VMAP_SPACE_MEMORY) {
		if (!c->length)
			c->length = VMAP_MEMORY_DEFAULT_LENGTH;
		if (memory_check_config(c))
			return -EINVAL;
	}

	/* base + length may be 2^64 exactly (see space_end), if that leaves
	 * a page. */
	if (!ps || (ps & (ps - 1)) || (c->base & (ps - 1)) ||
	    (c->length & (ps - 1)) || !c->length ||
	    c->length - 1 > UINT64_MAX - c->base ||
	    (c->base + c->length == 0 && c->length == ps) ||
	    (c->flags & ~VMAP_SPACE_FLAGS_KNOWN))
		return -EINVAL;
	/* A block is aligned to its size, which must be a power of two that
	 * a uint64_t holds: block_pages << page_shift must not wrap. */
	if (c->block_pages > (1ull << 63) / ps)
		return -EINVAL;
	return 0;
}

/* A record at destroy: slabs go whole with records_fini. */
static void release(struct va *va)
{
	if (!records_own_all())
		free(va);
}

int vmap_space_create(const struct vmap_config *cfg, vmap_space **out)
{
	struct vmap_config c;
	vmap_space *s;
	struct va *all;
	int err;

	if (!cfg || !out)
		return -EINVAL;
	err = read_config(cfg, &c);
	if (!err)
		err = check_config(&c);
	if (err)
		return err;

	s = vm_aligned_alloc(64, (sizeof(*s) + 63) & ~(size_t)63);
	if (!s)
		return -ENOMEM;
	memset(s, 0, sizeof(*s));
	records_init(&s->records);
	if (va_get(s, &all, 1)) {
		records_fini(&s->records);
		free(s);
		return -ENOMEM;
	}
	if (busy_init(&s->busy)) {
		release(all);
		records_fini(&s->records);
		free(s);
		return -ENOMEM;
	}
	if (nodes_init(s, !(c.flags & VMAP_SPACE_LOWEST_FIT))) {
		busy_fini(&s->busy, release);
		release(all);
		records_fini(&s->records);
		free(s);
		return -ENOMEM;
	}
	s->memory = c.flags & VMAP_SPACE_MEMORY;
	s->strict = c.flags & VMAP_SPACE_STRICT;
	s->guard = c.flags & VMAP_SPACE_GUARD;
	s->pool_max_pages = 0;
	if (s->memory && !s->strict && !(c.flags & VMAP_SPACE_NOPOOL))
		s->pool_max_pages =
			c.pool_max_pages ? c.pool_max_pages
			: VMAP_POOL_DEFAULT_BYTES / c.page_size
			? VMAP_POOL_DEFAULT_BYTES / c.page_size : 1;
	s->os = NULL;
	s->path = 0;
	s->base = c.base;
	/* A space that ends at 2^64 ends a page short of it: an end of 2^64
	 * does not fit a uint64_t, and every range here is [start, end). */
	s->end = c.base + c.length ? c.base + c.length : 0 - c.page_size;
	s->page_size = c.page_size;
	s->page_shift = (unsigned)__builtin_ctzll(c.page_size);
	s->lazy_max_pages = c.lazy_max_pages ? c.lazy_max_pages
					     : default_lazy_max(c.page_size);
	s->flush = c.flush;
	s->flush_ctx = c.flush_ctx;
	pthread_mutex_init(&s->free_lock, NULL);
	pthread_mutex_init(&s->purge_lock, NULL);
	pthread_mutex_init(&s->quarantine_lock, NULL);
	flights_init(s, c.flush_async);
	s->quarantine = NULL;
	s->quarantine_tail = &s->quarantine;
	s->quarantine_areas = s->quarantine_pages = 0;
	s->quarantine_budget = VMAP_QUARANTINE_RETRY;
	ft_init(&s->free);
	spans_init(s, c.flags & VMAP_SPACE_EMPTY);
	lazy_init(&s->lazy);
	s->vec = NULL;
	s->vec_cap = 0;
	memset(&s->sortbuf, 0, sizeof(s->sortbuf));
#define X(name) atomic_init(&s->name, 0);
	VMAP_COUNTERS(X)
#undef X
	err = purger_init(s, has_purger(c.flags),
			  c.purge_delay_ms ? c.purge_delay_ms
					   : VMAP_PURGE_DELAY_DEFAULT_MS);
	if (err) {
		flights_fini(s, release);
		nodes_fini(s);
		busy_fini(&s->busy, release);
		release(all);
		records_fini(&s->records);
		free(s);
		return err;
	}
	err = vblocks_init(s, c.block_pages);
	if (!err && s->memory)
		err = memory_init(s, c.length, c.flags);
	if (!err && (err = fork_register(s)) && s->memory)
		memory_fini(s);
	if (err) {
		if (s->vbq)
			vblocks_fini(s);
		purger_fini(s);
		nodes_fini(s);
		busy_fini(&s->busy, release);
		pthread_mutex_destroy(&s->free_lock);
		pthread_mutex_destroy(&s->purge_lock);
		pthread_mutex_destroy(&s->quarantine_lock);
		flights_fini(s, release);
		release(all);
		records_fini(&s->records);
		free(s);
		return err;
	}

	/* All of it free -- unless its spans come later. */
	if (s->whole)
		ft_insert(&s->free, s->base, s->end, &all);
	else
		va_put(s, all);
	*out = s;
	return 0;
}

void vmap_space_destroy(vmap_space *s)
{
	struct va *v, *next;

	if (!s)
		return;
	/* Out of the fork handlers' list before any lock goes; then the
	 * thread, which may be in a purge. */
	fork_unregister(s);
	purger_fini(s);
	for (unsigned n = 0; n < s->nnodes; n++)
		for (v = lazy_take(&s->nodes[n].lazy); v; v = next) {
			next = v->next;
			release(v);
		}
	pool_fini(s, release);
	quarantine_fini(s, release);
	flights_fini(s, release);
	nodes_fini(s);
	vblocks_fini(s);
	busy_fini(&s->busy, release);
	ft_destroy(&s->free, release);
	spans_fini(s);
	records_fini(&s->records);
	if (s->memory)
		memory_fini(s);
	pthread_mutex_destroy(&s->free_lock);
	pthread_mutex_destroy(&s->purge_lock);
	free(s->vec);
	sortbuf_free(&s->sortbuf);
	free(s);
}

int vmap_space_range(vmap_space *s, uint64_t *base, uint64_t *length)
{
	if (!s || !base || !length)
		return -EINVAL;
	*base = s->base;
	*length = s->end - s->base;
	return 0;
}

static inline uint64_t get(atomic_uint_fast64_t *c)
{
	return atomic_load_explicit(c, memory_order_relaxed);
}

int vmap_stats(vmap_space *s, struct vmap_stats *out)
{
	uint64_t cached_areas, cached_pages;
	struct vmap_stats st;
	size_t n;

	if (!s || !out || out->size < offsetof(struct vmap_stats, busy_areas))
		return -EINVAL;
	n = out->size < sizeof(st) ? out->size : sizeof(st);
	n &= ~(sizeof(uint64_t) - 1); /* whole fields only */
	memset(&st, 0, sizeof(st));
	st.size = n;
	pthread_mutex_lock(&s->free_lock);
	st.total_pages = space_pages(s, s->span_bytes);
	pthread_mutex_unlock(&s->free_lock);
	for (int i = 0; i < VMAP_BUSY_SHARDS; i++) {
		struct busy_shard *sh = &s->busy.shard[i];

		pthread_mutex_lock(&sh->lock);
		st.busy_areas += sh->count;
		st.busy_pages += space_pages(s, sh->bytes);
		pthread_mutex_unlock(&sh->lock);
	}
	pthread_mutex_lock(&s->free_lock);
	/* Pooled areas are free space too (counted apart as cached_*).  Both
	 * read under the free lock: a page can then not leave the tree and
	 * reach a pool between the two reads and be counted twice (an area
	 * only leaves the tree under it); pool-to-tree moves uncount first. */
	st.free_pages = space_pages(s, s->free.bytes);
	st.free_blocks = s->free.nodes;
	st.largest_free_pages = space_pages(s, ft_largest(&s->free));
	cached_areas = nodes_cached(s, &cached_pages);
	pthread_mutex_unlock(&s->free_lock);
	st.lazy_areas = get(&s->lazy.areas);
	st.lazy_pages = get(&s->lazy.pages);
	st.lazy_max_pages = s->lazy_max_pages;
	pthread_mutex_lock(&s->quarantine_lock);
	st.quarantined_areas = s->quarantine_areas;
	st.quarantined_pages = s->quarantine_pages;
	pthread_mutex_unlock(&s->quarantine_lock);
	pthread_mutex_lock(&s->flight_lock);
	st.inflight_flushes = s->flights_open;
	st.inflight_areas = s->flight_areas;
	st.inflight_pages = s->flight_pages;
	st.completions = s->completions;
	pthread_mutex_unlock(&s->flight_lock);
#define X(name) st.name = get(&s->name);
	VMAP_COUNTERS(X)
#undef X
	st.release_path = s->memory ? (uint64_t)(s->path & OS_RELEASE_PATH)
				    : VMAP_RELEASE_NONE;
	st.pool_max_pages = s->pool_max_pages;
	nodes_stats(s, &st);
	st.cached_areas = cached_areas;
	st.cached_pages = cached_pages;
	st.free_pages += st.cached_pages;
	st.record_bytes = records_bytes(s);
	st.nodes = s->nodes ? s->nnodes : 0;
	st.block_pages = s->block_pages;
	st.purge_delay_ms = s->purger.enabled ? s->purger.delay_ns / 1000000u
					      : 0;
	for (unsigned c = 0; c < s->nvbq; c++) {
		pthread_mutex_lock(&s->vbq[c].lock);
		__vblocks_stats(s, c, &st);
		pthread_mutex_unlock(&s->vbq[c].lock);
	}
	memcpy(out, &st, n);
	return 0;
}
