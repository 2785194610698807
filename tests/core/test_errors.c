/* SPDX-License-Identifier: BSD-3-Clause */
/* The error space: every code has a distinct name and a message. */
#include <criterion/criterion.h>
#include <string.h>

#include "kvs/kvs.h"

static const int codes[] = {
#define CODE(name, value, msg) value,
    KVS_ERROR_MAP(CODE)
#undef CODE
};

Test(errors, every_code_has_name_and_message)
{
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
        cr_assert_neq(strcmp(kvs_err_name(codes[i]), "KVS_UNKNOWN"), 0);
        cr_assert_neq(strcmp(kvs_strerror(codes[i]), "unknown error"), 0);
        for (size_t j = 0; j < i; j++)
            cr_assert_neq(codes[i], codes[j], "duplicate code %d", codes[i]);
    }
}

Test(errors, unknown_code_never_null)
{
    cr_assert_str_eq(kvs_strerror(12345), "unknown error");
    cr_assert_str_eq(kvs_err_name(-999), "KVS_UNKNOWN");
}

Test(errors, errno_mapping)
{
    cr_assert_eq(kvs_err_from_errno(28 /* ENOSPC */), KVS_ENOSPC);
    cr_assert_eq(kvs_err_from_errno(5 /* EIO */), KVS_EIO);
}

Test(registry, names_unique_and_findable)
{
    cr_assert_geq(kvs_engine_count(), 2);
    for (size_t i = 0; i < kvs_engine_count(); i++) {
        const kvs_engine *e = kvs_engine_at(i);
        cr_assert_eq(kvs_engine_find(kvs_engine_name(e)), e);
        for (size_t j = 0; j < i; j++)
            cr_assert_str_neq(kvs_engine_name(e), kvs_engine_name(kvs_engine_at(j)));
    }
    cr_assert_null(kvs_engine_find("nope"));
    cr_assert_null(kvs_engine_at(kvs_engine_count()));
}
