/* SPDX-License-Identifier: MIT */
/*
 * purger.c - a space's purge thread, "vmap-purge": purges run here, not on
 * the thread whose free happened to cross the threshold, and freed memory is
 * released within a time bound even when frees stop.
 *
 * The policy (reclaim.c) kicks the thread: urgently when a free passes the
 * threshold, or just to start its clock when something became lazy or warm
 * while it slept idle.  The thread then sleeps until the earliest of
 *   - the oldest lazy area's deadline: lazy.since + delay;
 *   - the next tick of the pool's clock (warm areas age one epoch per tick,
 *     and an area two epochs old is released: ticks every delay / 2, while
 *     anything is pending, bound a warm area's idle life by the delay too);
 *   - an urgent kick;
 * and purges.  With nothing lazy and nothing warm it watches for a while,
 * looking by itself every `watch` (so frees need not wake it: a wakeup on the
 * free path costs microseconds, and milliseconds on a loaded machine), and
 * after PURGER_LINGER of nothing it exits: an idle space costs no wakeups,
 * and an idle process has no thread of ours.  (A second thread is not free:
 * the kernel then sends every TLB flush of the process -- a copy-on-write
 * fault, a munmap -- to each CPU the thread ran on.  A hostile_test run that
 * takes 26 s single-threaded took 157 s beside a sleeping purger.)
 *
 * Going idle races with a free that makes something pending: the thread sets
 * `idle`, fences, and looks at the counters once more; the free counts,
 * fences, and looks at `idle` (reclaim_freed).  With both fences at least one
 * sees the other: the thread sees the new area, or the free sees idle and
 * kicks.
 *
 * The thread is started by a kick that finds none, with every signal blocked
 * (a caller's handler never runs on it); one that exited is joined by the
 * next start or by vmap_space_destroy.  A fork's child has no thread:
 * purger_forked forgets it, and the child's first kick starts its own.
 */
#include <errno.h>
#include <signal.h>
#include <time.h>

#include "internal.h"

#define PURGER_LINGER 1000000000ull /* ns idle before the thread exits */

static bool pending(vmap_space *s)
{
	return vm_read(&s->lazy.areas) || vm_read(&s->pool_areas);
}

/* When the thread must next act (ns); UINT64_MAX: nothing pending.  Thread
 * only (next_trim is the thread's). */
static uint64_t due_at(vmap_space *s, uint64_t now)
{
	struct purger *p = &s->purger;
	uint64_t due = UINT64_MAX;

	if (vm_read(&s->lazy.areas)) {
		uint64_t since = atomic_load(&s->lazy.since);

		/* Counted but not stamped: a purge elsewhere is running, and
		 * stamps its start when it ends (lazy_rearm).  Look again
		 * within the bound. */
		due = (since ? since : now) + p->delay_ns;
	}
	/* The pool's clock ticks while anything is pending, so that an area
	 * put at any moment sees its second tick within the delay. */
	if (!pending(s))
		p->next_trim = 0;
	else if (!p->next_trim)
		p->next_trim = now + p->delay_ns / 2;
	if (p->next_trim && p->next_trim < due)
		due = p->next_trim;
	return due;
}

/* One round: age the pool if its time came, then purge what is lazy. */
static void background(vmap_space *s, bool urgent, uint64_t now)
{
	struct purger *p = &s->purger;
	bool did;

	pthread_mutex_lock(&s->purge_lock);
	if (p->next_trim && now >= p->next_trim) {
		unsigned epoch = atomic_fetch_add(&p->epoch, 1) + 1;

		/* Areas that went in two epochs ago or more go. */
		if (vm_read(&s->pool_areas))
			pool_trim(s, epoch - 1);
		p->next_trim += p->delay_ns / 2;
		if (p->next_trim <= now)
			p->next_trim = now + p->delay_ns / 2;
	}
	did = __vm_purge(s, 0, NULL, 0);
	purge_unlock(s);
	if (did)
		vm_count(urgent ? &s->purges_threshold : &s->purges_timer, 1);
}

static int wait_until(struct purger *p, uint64_t ns)
{
	struct timespec ts = {
		.tv_sec = (time_t)(ns / 1000000000u),
		.tv_nsec = (long)(ns % 1000000000u),
	};

	return pthread_cond_timedwait(&p->wake, &p->lock, &ts);
}

static void *loop(void *arg)
{
	vmap_space *s = arg;
	struct purger *p = &s->purger;
	uint64_t busy = vm_now_ns(); /* when something was last pending */

	pthread_mutex_lock(&p->lock);
	atomic_store(&p->idle, false);
	while (!p->stop) {
		uint64_t now = vm_now_ns(), due = due_at(s, now);
		bool urgent = atomic_load(&p->urgent);

		if (urgent || due <= now) {
			atomic_store(&p->urgent, false);
			pthread_mutex_unlock(&p->lock);
			background(s, urgent, now);
			pthread_mutex_lock(&p->lock);
			busy = vm_now_ns();
			continue;
		}
		if (due != UINT64_MAX) {
			busy = now;
			wait_until(p, due);
		} else if (now - busy < PURGER_LINGER) {
			/* Nothing pending, lately something: watch.  A
			 * thread that looks by itself every `watch` need not
			 * be woken, so a steady stream of frees never pays a
			 * wakeup (one per purge, else: 1 free in 20). */
			wait_until(p, now + p->watch_ns);
		} else {
			/* Quiet for PURGER_LINGER: leave.  idle stays set,
			 * so the next free kicks, which takes p->lock and so
			 * sees started false.  The fence pairs with
			 * reclaim_freed's. */
			atomic_store(&p->idle, true);
			atomic_thread_fence(memory_order_seq_cst);
			if (!pending(s) && !atomic_load(&p->urgent)) {
				p->started = false;
				break;
			}
			atomic_store(&p->idle, false);
			continue;
		}
		vm_count(&s->purger_wakeups, 1);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

/* p->lock held: start the thread; false if the system would not. */
static bool start(vmap_space *s)
{
	struct purger *p = &s->purger;
	pthread_attr_t attr;
	sigset_t all;
	int err;

	if (p->joinable) { /* one that exited, idle */
		pthread_join(p->thread, NULL);
		p->joinable = false;
	}
	sigfillset(&all);
	if (pthread_attr_init(&attr))
		return false;
	err = pthread_attr_setsigmask_np(&attr, &all);
	/* Not the default 8 MiB: under mlockall(MCL_FUTURE) a stack is
	 * locked whole, out of the process's RLIMIT_MEMLOCK. */
	if (!err)
		err = pthread_attr_setstacksize(&attr, VMAP_PURGER_STACK);
	if (!err)
		err = pthread_create(&p->thread, &attr, loop, s);
	pthread_attr_destroy(&attr);
	if (err)
		return false;
	pthread_setname_np(p->thread, "vmap-purge");
	p->started = p->joinable = true;
	return true;
}

bool purger_kick(vmap_space *s, bool urgent)
{
	struct purger *p = &s->purger;
	bool up;

	pthread_mutex_lock(&p->lock);
	if (urgent)
		atomic_store(&p->urgent, true);
	up = p->started || start(s);
	if (up)
		pthread_cond_signal(&p->wake);
	pthread_mutex_unlock(&p->lock);
	return up;
}

static int init_sync(struct purger *p)
{
	pthread_condattr_t ca;
	int err = pthread_condattr_init(&ca);

	if (err)
		return -err;
	/* Deadlines are CLOCK_MONOTONIC (vm_now_ns), immune to clock changes. */
	err = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	if (!err)
		err = pthread_cond_init(&p->wake, &ca);
	pthread_condattr_destroy(&ca);
	return -err;
}

static void reset(struct purger *p)
{
	p->started = p->joinable = false;
	p->stop = false;
	p->next_trim = 0;
	atomic_init(&p->urgent, false);
	atomic_init(&p->idle, true);
}

int purger_init(vmap_space *s, bool enabled, uint64_t delay_ms)
{
	struct purger *p = &s->purger;
	int err;

	p->enabled = enabled;
	p->delay_ns = delay_ms * 1000000u;
	/* A free noticed within `watch` still has delay - watch to go. */
	p->watch_ns = p->delay_ns / 2 < PURGER_LINGER ? p->delay_ns / 2
						      : PURGER_LINGER;
	reset(p);
	atomic_init(&p->epoch, 0);
	err = pthread_mutex_init(&p->lock, NULL);
	if (err)
		return -err;
	err = init_sync(p);
	if (err)
		pthread_mutex_destroy(&p->lock);
	return err == -EAGAIN ? -ENOMEM : err;
}

void purger_fini(vmap_space *s)
{
	struct purger *p = &s->purger;
	bool joinable;

	pthread_mutex_lock(&p->lock);
	p->stop = true;
	joinable = p->joinable;
	pthread_cond_signal(&p->wake);
	pthread_mutex_unlock(&p->lock);
	if (joinable)
		pthread_join(p->thread, NULL);
	pthread_cond_destroy(&p->wake);
	pthread_mutex_destroy(&p->lock);
}

void purger_lock(vmap_space *s)
{
	pthread_mutex_lock(&s->purger.lock);
}

void purger_unlock(vmap_space *s)
{
	pthread_mutex_unlock(&s->purger.lock);
}

void purger_forked(vmap_space *s)
{
	struct purger *p = &s->purger;

	/* The parent's thread is not here; a waiter it left in the condition
	 * variable's state must not be either. */
	reset(p);
	if (init_sync(p))
		p->enabled = false; /* the child purges on its own threads */
}
