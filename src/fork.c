/* SPDX-License-Identifier: MIT */
/*
 * fork.c - a child forked while other threads are inside vmap can use every
 * space it inherited.
 *
 * fork() copies memory, not threads: a lock another thread held at that
 * instant stays held in the child for ever, and the structure it protected
 * may be half-changed.  (Without this file, 12 of 50 forks hung the child.)
 * So the prepare handler takes every lock of every live space, in the
 * documented order -- fork() thereby waits for any call in a critical
 * section, a running purge and its flush included -- and both the parent and
 * the child release them after.  Every structure is whole in the child.
 *
 * The handlers are registered once, by the first vmap_space_create.  The
 * list of spaces has its own mutex, taken first by the prepare handler and
 * by create and destroy, never while holding a space's lock.
 */
#include <errno.h>
#include <pthread.h>

#include "internal.h"

static pthread_mutex_t spaces_lock = PTHREAD_MUTEX_INITIALIZER;
static vmap_space *spaces; /* live spaces; spaces_lock */
static pthread_once_t once = PTHREAD_ONCE_INIT;
static int registered;	   /* 0, or pthread_atfork's error; once */

/* Every lock of s but its purge mutex, in order. */
static void lock_rest(vmap_space *s)
{
	purger_lock(s);
	pthread_mutex_lock(&s->free_lock);
	nodes_lock_all(s);
	busy_lock_all(&s->busy);
	vblocks_lock_all(s);
	pthread_mutex_lock(&s->vb_dead_lock);
	pthread_mutex_lock(&s->quarantine_lock);
	pthread_mutex_lock(&s->flight_lock);
	pthread_mutex_lock(&s->records.lock);
}

static void unlock_rest(vmap_space *s)
{
	pthread_mutex_unlock(&s->records.lock);
	pthread_mutex_unlock(&s->flight_lock);
	pthread_mutex_unlock(&s->quarantine_lock);
	pthread_mutex_unlock(&s->vb_dead_lock);
	vblocks_unlock_all(s);
	busy_unlock_all(&s->busy);
	nodes_unlock_all(s);
	pthread_mutex_unlock(&s->free_lock);
	purger_unlock(s);
}

void space_lock_all(vmap_space *s)
{
	pthread_mutex_lock(&s->purge_lock);
	lock_rest(s);
}

void space_unlock_all(vmap_space *s)
{
	unlock_rest(s);
	purge_unlock(s);
}

/* Every purge mutex first: a flush callback of one space may call into
 * another (vmap_free there, say), and must be let finish before any of that
 * other space's locks is taken. */
static void prepare(void)
{
	pthread_mutex_lock(&spaces_lock);
	for (vmap_space *s = spaces; s; s = s->fork_next)
		pthread_mutex_lock(&s->purge_lock);
	for (vmap_space *s = spaces; s; s = s->fork_next)
		lock_rest(s);
}

/* Parent and child alike.  In the child, the forking thread is the owner of
 * every lock it unlocks (it is the same thread, copied). */
static void release(void)
{
	for (vmap_space *s = spaces; s; s = s->fork_next)
		unlock_rest(s);
	for (vmap_space *s = spaces; s; s = s->fork_next)
		pthread_mutex_unlock(&s->purge_lock);
	pthread_mutex_unlock(&spaces_lock);
}

/* The child has no purge threads: each space forgets its own, and starts
 * one again when a free needs it.  Nor the threads that waited for a
 * completion: a condition variable that counts them starts afresh. */
static void release_child(void)
{
	for (vmap_space *s = spaces; s; s = s->fork_next) {
		purger_forked(s);
		pthread_cond_init(&s->flight_cond, NULL);
	}
	release();
}

static void register_handlers(void)
{
	registered = pthread_atfork(prepare, release, release_child);
}

int fork_register(vmap_space *s)
{
	pthread_once(&once, register_handlers);
	if (registered)
		return -ENOMEM;
	pthread_mutex_lock(&spaces_lock);
	s->fork_prev = NULL;
	s->fork_next = spaces;
	if (spaces)
		spaces->fork_prev = s;
	spaces = s;
	pthread_mutex_unlock(&spaces_lock);
	return 0;
}

void fork_unregister(vmap_space *s)
{
	pthread_mutex_lock(&spaces_lock);
	if (s->fork_prev)
		s->fork_prev->fork_next = s->fork_next;
	else
		spaces = s->fork_next;
	if (s->fork_next)
		s->fork_next->fork_prev = s->fork_prev;
	pthread_mutex_unlock(&spaces_lock);
}
