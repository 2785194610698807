/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Criterion helpers for the kvs engine's tests: open, set and check with
 * asserts, and file manipulations for damage and crash tests. The plain
 * helpers are in support.h.
 */
#ifndef KVS_TESTS_LOG_HELPERS_H
#define KVS_TESTS_LOG_HELPERS_H

#include <stdint.h>

#include "log/support.h"

/* lt_tmpdir() that asserts. */
char *lt_tmpdir_or_fail(void);

/* Open dir, asserting success. */
kvs_db *lt_open(const char *dir, const kvs_options *o);

/* String key/value shorthands that assert success. */
void lt_set(kvs_db *db, const char *key, const char *val);
/* Assert key holds val (val NULL: key is absent). */
void lt_expect(kvs_db *db, const char *key, const char *val);

/* Names in dir ending in suffix, sorted; returns how many (at most max). */
size_t lt_list(const char *dir, const char *suffix, char (*names)[64], size_t max);

/* Path of dir/name in out. */
void lt_path(char *out, size_t size, const char *dir, const char *name);
/* Copy file src to dst. */
void lt_copy(const char *src, const char *dst);
/* Size of a file. */
uint64_t lt_file_size(const char *path);
/* Flip byte off of a file. */
void lt_flip(const char *path, uint64_t off);

#endif
