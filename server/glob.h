/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Glob patterns as Redis matches them (KEYS, SCAN MATCH, CONFIG GET).
 *
 * The syntax and every corner of it follow Redis 7.0's stringmatchlen(),
 * since clients send patterns written for Redis and expect Redis's
 * answers: `*` any run of bytes, `?` one byte, `[abc]`, `[a-c]` (a
 * reversed range is swapped), `[^...]` negated, `\x` the byte x itself,
 * both outside and inside brackets. Binary-safe: a NUL byte is an ordinary
 * byte of the pattern or the key. The quirks kept on purpose, each checked
 * against redis-server (tests/server/test_glob.c):
 *  - an unterminated `[` class ends with the pattern (`[a` matches "a",
 *    `[^` any one byte), `]` right after `[` closes an empty class, and a
 *    `-` before the closing `]` makes a range up to `]` (`[a-]`);
 *  - a range compares bytes as signed chars, as Redis built for x86-64
 *    does, so `[a-\xff]` holds "A" and "\xff" but not "b" or "\x80";
 *  - the empty string matches no pattern but the empty one: the callers
 *    answer the pattern "*" without matching (glob_is_all), as Redis's KEYS
 *    and SCAN do, so "*" alone lists the empty key and "**" does not;
 *  - a pattern nesting more than 1000 `*` fails to match, the guard Redis
 *    has against deep recursion.
 *
 * Cost: Redis 7.0.9 fixed the exponential backtracking of `a*a*a*...b`
 * (CVE-2022-36021) by giving up on every enclosing `*` once the rest of a
 * pattern has failed at every later position. glob_match() does the same,
 * so a match costs at most about pattern length times key length steps,
 * and its recursion is at most 1001 frames deep.
 *
 * Pure functions: any thread.
 */
#ifndef KVS_SERVER_GLOB_H
#define KVS_SERVER_GLOB_H

#include <stdbool.h>

#include "kvs/slice.h"

/* Whether string matches pattern; nocase folds ASCII letters (CONFIG GET). */
bool glob_match(kvs_slice pattern, kvs_slice string, bool nocase);

/* Whether pattern is the single "*" that KEYS and SCAN take to mean every
   key without matching (the empty key included). */
bool glob_is_all(kvs_slice pattern);

#endif
