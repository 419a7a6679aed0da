/* SPDX-License-Identifier: MIT */
/*
 * fault.c - the library's heap in the fault-injection test build: libc's,
 * except that the k-th allocation after vm_fault_arm(k) fails.
 *
 * tests/fault_test.c arms k = 1, 2, ... in turn around a scenario that makes
 * every public call, and checks that each failure is reported as documented
 * and leaves the space whole.  Only that test's build (vmap_fault, with
 * VMAP_FAULT defined) compiles this file.
 */
#include <stdatomic.h>
#include <stdlib.h>

#include "internal.h"

/* Allocations to go before the failure; 0 when none is armed.  Atomic only
 * so that threads of a test cannot corrupt it; the tests that arm it make
 * their calls from one thread, so that "the k-th" means one thing. */
static atomic_uint_fast64_t pending;
static atomic_uint_fast64_t injected;

void vm_fault_arm(uint64_t k)
{
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

/* Is this the allocation to fail? */
static bool fail_now(void)
{
	uint64_t k = atomic_load(&pending);

	while (k && !atomic_compare_exchange_weak(&pending, &k, k - 1))
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
