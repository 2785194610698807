/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A program as a user of libimkv writes it: built by test_imkv_compile with
 * exactly `cc -Wall -Werror -pthread -O app.c -I<include> <libimkv.a>`
 * against the installed header and library (and once against libimkv.so).
 * Exits 0 when the calls answer as imkv.h says.
 */
#include <stdio.h>
#include <string.h>

#include <imkv.h>

static int check(int ok, const char *what)
{
    if (!ok)
        fprintf(stderr, "compile_app: %s\n", what);
    return ok ? 0 : 1;
}

int main(void)
{
    char key[] = "greeting", val[] = "hello", other[] = "bonjour", missing[] = "nope";
    char *out = NULL;
    int bad = 0;
    bad += check(ht_insert(key, val) == HT_INSERT_FAILED, "insert before ht_init");
    bad += check(ht_init(64) == HT_INIT_OK, "ht_init");
    bad += check(ht_insert(key, val) == HT_INSERT_OK, "insert");
    bad += check(ht_lookup(key, &out) == HT_FOUND && strcmp(out, "hello") == 0, "lookup");
    bad += check(ht_insert(key, other) == HT_INSERT_OK, "overwrite");
    bad += check(ht_lookup(key, &out) == HT_FOUND && strcmp(out, "bonjour") == 0, "lookup again");
    bad += check(ht_lookup(missing, &out) == HT_NOTFOUND, "lookup of a missing key");
    bad += check(ht_delete(key) == HT_DELETE_OK, "delete");
    bad += check(ht_delete(key) == HT_DELETE_FAILED, "delete of a missing key");
    ht_destroy();
    bad += check(ht_delete(key) == HT_DELETE_FAILED, "delete after ht_destroy");
    if (!bad)
        puts("compile_app: ok");
    return bad != 0;
}
