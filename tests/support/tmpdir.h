/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Temporary directories for tests: one fresh private directory per test,
 * removed with everything in it at the end. Shared by every test area.
 */
#ifndef KVS_TESTS_SUPPORT_TMPDIR_H
#define KVS_TESTS_SUPPORT_TMPDIR_H

#include <limits.h> /* PATH_MAX */

/*
 * ts_tmpdir_make - create a fresh private directory under $TMPDIR (or /tmp)
 * named kvs-test-XXXXXX and write its path to out (PATH_MAX bytes).
 * Returns 0 or -1 (errno set).
 */
int ts_tmpdir_make(char *out);

/* ts_tmpdir_remove - remove path and everything under it. Returns 0 or -1. */
int ts_tmpdir_remove(const char *path);

#endif
