/* SPDX-License-Identifier: MIT */
/*
 * fuzz.h - the libFuzzer entry points each fuzz target defines.  With clang's
 * -fsanitize=fuzzer, libFuzzer's main calls them; with gcc, replay.c's main
 * runs them over the files of a corpus.
 */
#ifndef VMAP_FUZZ_H
#define VMAP_FUZZ_H

#include <stddef.h>
#include <stdint.h>

/* Once, before the first input. */
int LLVMFuzzerInitialize(int *argc, char ***argv);
/* One input; returns 0, or aborts on a finding. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif
