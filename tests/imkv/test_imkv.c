/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libimkv's ht_* interface (imkv/imkv.h): what each call answers before and
 * after ht_init(), replacing, deleting, the lookup storage each thread owns,
 * IMKV_MEMORY and a full table. Criterion runs each test in a process of
 * its own, so each starts uninitialised. The threaded model check is
 * imkv_threads.c.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imkv.h"

TestSuite(imkv, .timeout = 120);

static char *lookup(const char *key)
{
    char *v = NULL;
    HT_RET ret = ht_lookup((char *)key, &v);
    cr_assert(ret == HT_FOUND || (ret == HT_NOTFOUND && v == NULL), "lookup %s: %d", key, ret);
    return v;
}

Test(imkv, every_call_before_ht_init_fails)
{
    char *v = (char *)"untouched";
    cr_assert_eq(ht_insert("k", "v"), HT_INSERT_FAILED);
    cr_assert_eq(ht_lookup("k", &v), HT_NOTFOUND);
    cr_assert_null(v);
    cr_assert_eq(ht_delete("k"), HT_DELETE_FAILED);
    ht_destroy(); /* nothing to do */
    cr_assert_eq(ht_insert("k", "v"), HT_INSERT_FAILED);
}

Test(imkv, init_once_then_again_after_destroy)
{
    cr_assert_eq(ht_init(0), HT_INIT_FAILED);
    cr_assert_eq(ht_init((1u << 30) + 1), HT_INIT_FAILED);
    cr_assert_eq(ht_init(100), HT_INIT_OK);
    cr_assert_eq(ht_init(100), HT_INIT_FAILED, "already initialised");
    cr_assert_eq(ht_insert("k", "v"), HT_INSERT_OK);
    ht_destroy();
    cr_assert_eq(ht_insert("k", "v"), HT_INSERT_FAILED);
    cr_assert_null(lookup("k"));
    cr_assert_eq(ht_init(1), HT_INIT_OK);
    cr_assert_null(lookup("k"), "a new table is empty");
    ht_destroy();
    ht_destroy();
}

Test(imkv, insert_lookup_replace_delete)
{
    cr_assert_eq(ht_init(16), HT_INIT_OK);
    cr_assert_null(lookup("a"));
    cr_assert_eq(ht_insert("a", "apple"), HT_INSERT_OK);
    cr_assert_str_eq(lookup("a"), "apple");
    cr_assert_eq(ht_insert("a", "avocado"), HT_INSERT_OK, "an insert of a key replaces");
    cr_assert_str_eq(lookup("a"), "avocado");
    cr_assert_eq(ht_insert("", ""), HT_INSERT_OK, "empty strings are keys and values");
    cr_assert_str_eq(lookup(""), "");
    cr_assert_eq(ht_delete("a"), HT_DELETE_OK);
    cr_assert_eq(ht_delete("a"), HT_DELETE_FAILED, "a deleted key is gone");
    cr_assert_eq(ht_delete("never"), HT_DELETE_FAILED);
    cr_assert_null(lookup("a"));
    cr_assert_eq(ht_insert(NULL, "v"), HT_INSERT_FAILED);
    cr_assert_eq(ht_insert("k", NULL), HT_INSERT_FAILED);
    cr_assert_eq(ht_lookup(NULL, &(char *){NULL}), HT_NOTFOUND);
    cr_assert_eq(ht_lookup("", NULL), HT_NOTFOUND);
    cr_assert_eq(ht_delete(NULL), HT_DELETE_FAILED);
    ht_destroy();
}

Test(imkv, many_keys_from_a_small_bucket_count)
{
    cr_assert_eq(ht_init(1), HT_INIT_OK);
    char k[32], v[32];
    for (int i = 0; i < 100000; i++) {
        snprintf(k, sizeof(k), "key-%d", i);
        snprintf(v, sizeof(v), "value-%d", i * 7);
        cr_assert_eq(ht_insert(k, v), HT_INSERT_OK);
    }
    for (int i = 0; i < 100000; i++) {
        snprintf(k, sizeof(k), "key-%d", i);
        snprintf(v, sizeof(v), "value-%d", i * 7);
        cr_assert_str_eq(lookup(k), v);
    }
    ht_destroy();
}

Test(imkv, a_lookup_result_is_the_threads_until_its_next_lookup)
{
    cr_assert_eq(ht_init(16), HT_INIT_OK);
    cr_assert_eq(ht_insert("k", "first"), HT_INSERT_OK);
    char *v = lookup("k");
    cr_assert_str_eq(v, "first");
    /* Writes (here, from this thread) do not touch it. */
    cr_assert_eq(ht_insert("k", "second, and longer than the first"), HT_INSERT_OK);
    cr_assert_eq(ht_delete("k"), HT_DELETE_OK);
    cr_assert_str_eq(v, "first");
    /* A lookup replaces it; a failed one leaves *val NULL. */
    cr_assert_null(lookup("k"));
    ht_destroy();
}

struct other {
    char *seen;
    char *value;
};

static void *lookup_in_thread(void *p)
{
    struct other *o = p;
    char *v = NULL;
    if (ht_lookup("k", &v) == HT_FOUND) {
        o->value = v;
        o->seen = strdup(v);
    }
    return NULL;
}

Test(imkv, each_thread_has_its_own_lookup_storage)
{
    cr_assert_eq(ht_init(16), HT_INIT_OK);
    cr_assert_eq(ht_insert("k", "mine"), HT_INSERT_OK);
    char *mine = lookup("k");
    cr_assert_eq(ht_insert("k", "theirs"), HT_INSERT_OK);
    struct other o = {NULL, NULL};
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, lookup_in_thread, &o), 0);
    pthread_join(th, NULL);
    cr_assert_str_eq(o.seen, "theirs");
    cr_assert_neq(o.value, mine, "another thread's storage");
    cr_assert_str_eq(mine, "mine", "another thread's lookup leaves this one's alone");
    free(o.seen);
    ht_destroy();
}

Test(imkv, large_values)
{
    cr_assert_eq(ht_init(16), HT_INIT_OK);
    size_t len = (size_t)8 << 20;
    char *big = malloc(len + 1);
    cr_assert_not_null(big);
    memset(big, 'b', len);
    big[len] = '\0';
    big[len / 2] = 'm';
    cr_assert_eq(ht_insert("big", big), HT_INSERT_OK);
    char *v = lookup("big");
    cr_assert_eq(strlen(v), len);
    cr_assert_eq(memcmp(v, big, len), 0);
    /* The thread's storage shrinks back for small values. */
    cr_assert_eq(ht_insert("small", "s"), HT_INSERT_OK);
    cr_assert_str_eq(lookup("small"), "s");
    cr_assert_eq(ht_delete("big"), HT_DELETE_OK);
    free(big);
    ht_destroy();
}

Test(imkv, imkv_memory_must_be_a_number_of_bytes)
{
    const char *bad[] = {"abc", "64M", "-1", "1000", "2097151", "99999999999999999999999"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        setenv("IMKV_MEMORY", bad[i], 1);
        cr_assert_eq(ht_init(16), HT_INIT_FAILED, "IMKV_MEMORY=%s", bad[i]);
    }
    setenv("IMKV_MEMORY", "2097152", 1);
    cr_assert_eq(ht_init(16), HT_INIT_OK, "2 MiB is the least");
    ht_destroy();
    setenv("IMKV_MEMORY", "", 1);
    cr_assert_eq(ht_init(16), HT_INIT_OK, "empty: the default");
    ht_destroy();
    /* Buckets that do not fit in the memory. */
    setenv("IMKV_MEMORY", "4194304", 1);
    cr_assert_eq(ht_init(1u << 20), HT_INIT_FAILED, "8 MiB of buckets in 4 MiB");
}

Test(imkv, the_default_memory_holds_half_a_million_small_items)
{
    unsetenv("IMKV_MEMORY");
    cr_assert_eq(ht_init(1024), HT_INIT_OK);
    char k[17], v[33];
    for (int i = 0; i < 500000; i++) {
        snprintf(k, sizeof(k), "key-%012d", i);   /* 16 bytes */
        snprintf(v, sizeof(v), "value-%026d", i); /* 32 bytes */
        cr_assert_eq(ht_insert(k, v), HT_INSERT_OK, "item %d", i);
    }
    snprintf(k, sizeof(k), "key-%012d", 499999);
    cr_assert_eq(strlen(lookup(k)), 32);
    ht_destroy();
}

Test(imkv, insert_fails_only_when_full_and_works_again_after_deletes)
{
    setenv("IMKV_MEMORY", "4194304", 1); /* 4 MiB */
    cr_assert_eq(ht_init(1024), HT_INIT_OK);
    char k[32], v[64];
    memset(v, 'v', 40);
    v[40] = '\0';
    int n = 0;
    for (;; n++) {
        snprintf(k, sizeof(k), "small-%d", n);
        if (ht_insert(k, v) != HT_INSERT_OK)
            break;
    }
    /* About 100 bytes an item (header, key, value, class rounding). */
    cr_assert_gt(n, 30000, "only %d items in 4 MiB", n);
    cr_assert_null(lookup(k), "the refused item is not there");
    snprintf(k, sizeof(k), "small-%d", n - 1);
    cr_assert_str_eq(lookup(k), v);
    /* Free every small item: the pages they held take large values now. */
    for (int i = 0; i < n; i++) {
        snprintf(k, sizeof(k), "small-%d", i);
        cr_assert_eq(ht_delete(k), HT_DELETE_OK);
    }
    static char big[20001];
    memset(big, 'B', 20000);
    int m = 0;
    for (;; m++) {
        snprintf(k, sizeof(k), "big-%d", m);
        if (ht_insert(k, big) != HT_INSERT_OK)
            break;
    }
    cr_assert_geq((size_t)m * 20000, (size_t)3 << 20, "only %d values of 20 KB in 4 MiB", m);
    ht_destroy();
}
