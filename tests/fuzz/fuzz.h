/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Shared by the libFuzzer harnesses of tests/fuzz: CHECK, which aborts with
 * the failed condition so that libFuzzer saves the input as a crash, and
 * exact-size copies, so that AddressSanitizer sees any read past the bytes a
 * decoder was given (libFuzzer's own buffer may be followed by more input).
 */
#ifndef KVS_TESTS_FUZZ_H
#define KVS_TESTS_FUZZ_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static inline _Noreturn void fuzz_fail(const char *what, const char *file, int line)
{
    fprintf(stderr, "%s:%d: check failed: %s\n", file, line, what);
    abort();
}

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            fuzz_fail(#cond, __FILE__, __LINE__);                                                  \
    } while (0)

/* A malloc'd copy of exactly len bytes (one byte allocated for len 0). */
static inline void *fuzz_dup(const void *p, size_t len)
{
    void *q = malloc(len ? len : 1);
    CHECK(q != NULL);
    if (len)
        memcpy(q, p, len);
    return q;
}

#endif
