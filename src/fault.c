/* SPDX-License-Identifier: MIT */
/*
 * fault.c - the library's heap in the fault-injection test build: libc's,
 * except that the k-th allocation after vm_fault_arm(k, ...) fails -- and,
 * if asked, every one after it.
 *
 * tests/fault_test.c arms k = 1, 2, ... in turn around a scenario that makes
 * every public call, and checks that each failure is reported as documented
 * and leaves the space whole.  Only that test's build (vmap_fault, with
 * VMAP_FAULT defined) compiles this file.
 */
#include <stdatomic.h>
#include <stdlib.h>

#include "internal.h"

/* Allocations to go before the failure (1: the next one fails); 0 when
 * none is armed.  With `onward`, it stays at 1 once there: out of memory
 * for good.  Atomic only so that threads of a test cannot corrupt it; the
 * tests that arm it make their calls from one thread, so that "the k-th"
 * means one thing. */
static atomic_uint_fast64_t pending;
static atomic_bool onward;
static atomic_uint_fast64_t injected;

void vm_fault_arm(uint64_t k, bool for_good)
{
	atomic_store(&onward, for_good);
	atomic_store(&pending, k);
}

uint64_t vm_fault_pending(void)
{
	return atomic_load(&pending);
}

uint64_t vm_fault_injected(void)
{
	return atomic_load(&injected);
}

/* Is this an allocation to fail? */
static bool fail_now(void)
{
	uint64_t k = atomic_load(&pending);

	while (k && !(k == 1 && atomic_load(&onward)) &&
	       !atomic_compare_exchange_weak(&pending, &k, k - 1))
		;
	if (k != 1)
		return false;
	atomic_fetch_add(&injected, 1);
	return true;
}

void *vm_malloc(size_t n)
{
	return fail_now() ? NULL : malloc(n);
}

void *vm_calloc(size_t n, size_t size)
{
	return fail_now() ? NULL : calloc(n, size);
}

void *vm_realloc(void *p, size_t n)
{
	return fail_now() ? NULL : realloc(p, n);
}

void *vm_aligned_alloc(size_t align, size_t n)
{
	return fail_now() ? NULL : aligned_alloc(align, n);
}
