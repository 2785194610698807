/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Plain helpers for the kvs engine's tests, usable without Criterion (the
 * ThreadSanitizer program threads_main.c cannot use Criterion; see
 * scenarios.h): temporary directories, options that capture log lines,
 * self-describing values, and a failure record for worker threads.
 */
#ifndef KVS_TESTS_LOG_SUPPORT_H
#define KVS_TESTS_LOG_SUPPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kvs/kvs.h"

/* A new empty directory under /tmp (malloc'd), or NULL. */
char *lt_tmpdir(void);
/* Remove dir and everything in it. */
void lt_rmrf(const char *dir);
/* Total bytes of the regular files in dir. */
uint64_t lt_dir_bytes(const char *dir);

/* Options for the kvs engine: fsync "no" (fast), log lines captured. */
void lt_opts(kvs_options *o);
/* Captured log lines, joined by newlines (the newest 16 KiB or so). */
const char *lt_log_text(void);
void lt_log_clear(void);
/* Wait until a captured line contains needle, at most seconds; returns
   whether it did. */
bool lt_log_wait(const char *needle, int seconds);

/* Self-checking values: "k=<key>;v=<ver>;" then filler derived from both,
   at most 512 bytes. Returns the length. */
size_t lt_value(char *out, size_t size, unsigned key, unsigned ver);
/* The version of val if it is a well-formed value of key, else -1. */
long lt_value_check(const void *val, size_t len, unsigned key);

/* Failures seen where Criterion's asserts cannot be used (worker threads,
   the TSan program): the first message is kept. */
void lt_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
unsigned long lt_failures(void);
const char *lt_first_failure(void);
void lt_fail_reset(void);

#endif
