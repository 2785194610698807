/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * server/glob.c against Redis: every case of the table below was run on
 * redis-server 7.0.15 as SET <key> then KEYS <pattern> on an otherwise
 * empty store, and "match" is whether KEYS listed the key. KEYS answers
 * the pattern "*" without matching (glob_is_all), so the table is checked
 * the way KEYS uses the matcher. The nocase cases come from CONFIG GET.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "server/glob.h"

struct glob_case {
    const char *pattern;
    size_t plen;
    const char *key;
    size_t klen;
    bool match;
};

/* Literals may hold NUL bytes: their lengths come from sizeof. */
#define CASE(p, k, m)                                                                              \
    {                                                                                              \
        (p), sizeof(p) - 1, (k), sizeof(k) - 1, (m)                                                \
    }

static const struct glob_case keys_cases[] = {
    CASE("*", "", true),
    CASE("**", "", false),
    CASE("?*", "", false),
    CASE("", "", true),
    CASE("", "a", false),
    CASE("*", "abc", true),
    CASE("a*", "", false),
    CASE("a*", "a", true),
    CASE("a*", "abc", true),
    CASE("*c", "abc", true),
    CASE("a*c", "ac", true),
    CASE("a*c", "abxc", true),
    CASE("a*c", "abcd", false),
    CASE("**a", "a", true),
    CASE("a**", "a", true),
    CASE("a*b*c", "axxbyyc", true),
    CASE("a*b*c", "axxbyy", false),
    CASE("abc*", "abc", true),
    CASE("abc*?", "abc", false),
    CASE("*?", "", false),
    CASE("*?", "x", true),
    CASE("?", "a", true),
    CASE("?", "ab", false),
    CASE("??", "a", false),
    CASE("a?c", "abc", true),
    CASE("a?c", "ac", false),
    CASE("A", "a", false),
    CASE("a", "A", false),
    CASE("user:*", "user:1", true),
    CASE("user:*", "users:1", false),
    CASE("[abc]", "b", true),
    CASE("[abc]", "d", false),
    CASE("[a-c]", "b", true),
    CASE("[a-c]", "d", false),
    CASE("[c-a]", "b", true),
    CASE("[^a]", "b", true),
    CASE("[^a]", "a", false),
    CASE("[^a-c]", "d", true),
    CASE("[^a-c]", "b", false),
    CASE("[^a]", "", false),
    CASE("[a-]", "]", true),
    CASE("[a-]", "-", false),
    CASE("[a-]", "_", true),
    CASE("[ab-]", "-", false),
    CASE("[ab-]", "_", true),
    CASE("[-a]", "-", true),
    CASE("[]]", "]", false),
    CASE("[]a]", "a", false),
    CASE("[", "[", false),
    CASE("[a", "a", true),
    CASE("[a-c", "b", true),
    CASE("[^", "x", true),
    CASE("[^", "", false),
    CASE("[\\]]", "]", true),
    CASE("[\\", "\\", true),
    CASE("[\\a]", "a", true),
    CASE("[^\\]]", "a", true),
    CASE("[^\\]]", "]", false),
    CASE("[a\\-c]", "-", true),
    CASE("[a\\-c]", "b", false),
    CASE("[a-c]x", "bx", true),
    CASE("x[a-c]", "xb", true),
    CASE("\\*", "*", true),
    CASE("\\*", "a", false),
    CASE("\\?", "?", true),
    CASE("\\?", "a", false),
    CASE("a\\", "a\\", true),
    CASE("\\", "\\", true),
    CASE("\\a", "a", true),
    CASE("\\[a]", "[a]", true),
    CASE("\\[a]", "a", false),
    CASE("a\x00"
         "*",
         "a\x00"
         "b",
         true),
    CASE("*\x00"
         "",
         "x\x00"
         "",
         true),
    CASE("[\x00"
         "]",
         "\x00"
         "",
         true),
    CASE("a\x00"
         "b",
         "a\x00"
         "c",
         false),
    CASE("[a-\xff"
         "]",
         "\x80"
         "",
         false),
    CASE("[a-\xff"
         "]",
         "\xff"
         "",
         true),
    CASE("[a-\xff"
         "]",
         "b", false),
    CASE("[a-\xff"
         "]",
         "A", true),
    CASE("[\x80"
         "-\xff"
         "]",
         "\x90"
         "",
         true),
    CASE("[\x80"
         "-\xff"
         "]",
         "a", false),
    CASE("\xe9"
         "*",
         "\xe9"
         "t\xe9"
         "",
         true),
    CASE("?",
         "\xff"
         "",
         true),
    CASE("*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b",
         "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", false),
    CASE("*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a",
         "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", true),
};

/* What KEYS pattern answers for a store holding only key. */
static bool keys_lists(kvs_slice pattern, kvs_slice key)
{
    return glob_is_all(pattern) || glob_match(pattern, key, false);
}

Test(glob, redis_keys_table)
{
    for (size_t i = 0; i < sizeof(keys_cases) / sizeof(keys_cases[0]); i++) {
        const struct glob_case *t = &keys_cases[i];
        bool got = keys_lists(kvs_slice_of(t->pattern, t->plen), kvs_slice_of(t->key, t->klen));
        cr_expect_eq(got, t->match, "KEYS \"%s\" with key \"%s\" (case %zu): kvs %d, redis %d",
                     t->pattern, t->key, i, got, t->match);
    }
}

Test(glob, nocase_as_config_get)
{
    static const struct glob_case cases[] = {
        CASE("MaxClient?", "maxclients", true),     CASE("[M]axclients", "maxclients", true),
        CASE("[L-N]axclients", "maxclients", true), CASE("[^M]axclients", "maxclients", false),
        CASE("T?MEOUT", "timeout", true),           CASE("max*", "maxclients", true),
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct glob_case *t = &cases[i];
        bool got =
            glob_match(kvs_slice_of(t->pattern, t->plen), kvs_slice_of(t->key, t->klen), true);
        cr_expect_eq(got, t->match, "CONFIG GET %s against %s", t->pattern, t->key);
    }
    cr_expect(!glob_match(kvs_slice_str("MAXCLIENTS"), kvs_slice_str("maxclients"), false));
}

/* A pattern of n times unit, and a key of n times ch. */
static char *repeat(const char *unit, size_t n)
{
    size_t len = strlen(unit);
    char *s = malloc(n * len + 1);
    cr_assert_not_null(s);
    for (size_t i = 0; i < n; i++)
        memcpy(s + i * len, unit, len);
    s[n * len] = '\0';
    return s;
}

/* Redis gives up on patterns nesting more than 1000 stars (checked on
   redis-server: "*a" x 1000 lists "a" x 1000, "*a" x 1001 does not list
   "a" x 1001, nor "a*" x 1002 "a" x 1002). */
Test(glob, nesting_limit)
{
    static const struct {
        const char *unit;
        size_t n;
        bool match;
    } cases[] = {{"*a", 999, true},
                 {"*a", 1000, true},
                 {"*a", 1001, false},
                 {"*a", 1002, false},
                 {"a*", 1002, false}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *pattern = repeat(cases[i].unit, cases[i].n);
        char *key = repeat("a", cases[i].n);
        cr_expect_eq(glob_match(kvs_slice_str(pattern), kvs_slice_str(key), false), cases[i].match,
                     "\"%s\" x %zu", cases[i].unit, cases[i].n);
        free(pattern);
        free(key);
    }
}

static double seconds_since(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

/* The shape that makes plain backtracking exponential (CVE-2022-36021):
   stars that all match the same byte, and a tail that never matches. A
   naive matcher would not finish "a*" x 30 + "b" against 60 bytes of 'a'
   in a lifetime; this must take well under a second even with 900 stars
   against a 1 MiB key. */
Test(glob, no_exponential_backtracking, .timeout = 20)
{
    static const size_t stars[] = {30, 100, 900};
    static const size_t key_len[] = {60, 100000, 1u << 20};
    for (size_t i = 0; i < sizeof(stars) / sizeof(stars[0]); i++) {
        char *body = repeat("a*", stars[i]);
        size_t plen = strlen(body);
        char *pattern = malloc(plen + 2);
        cr_assert_not_null(pattern);
        memcpy(pattern, body, plen);
        memcpy(pattern + plen, "b", 2);
        char *key = repeat("a", key_len[i]);
        struct timespec t0;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        cr_expect(!glob_match(kvs_slice_str(pattern), kvs_slice_str(key), false));
        pattern[plen] = 'a'; /* now it matches */
        cr_expect(glob_match(kvs_slice_str(pattern), kvs_slice_str(key), false));
        double secs = seconds_since(&t0);
        cr_expect_lt(secs, 1.0, "%zu stars against %zu bytes took %.3f s", stars[i], key_len[i],
                     secs);
        free(body);
        free(pattern);
        free(key);
    }
}
