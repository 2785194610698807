/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Every installed program behaves alike on its command line: --help and -h
 * print the usage on stdout and exit 0, --version and -V print
 * "NAME VERSION" and exit 0, and an unknown option is named in a one-line
 * error on stderr, with nothing on stdout and a non-zero exit.
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <stdio.h>
#include <string.h>

#include "kvs/kvs.h"
#include "support/server.h"

struct program {
    const char *name;
    const char *path;
};

static const struct program programs[] = {
    {"kvs-server", KVS_SERVER_BIN},
    {"kvs-client", KVS_CLIENT_BIN},
    {"kvs-check", KVS_CHECK_BIN},
    {"kvs-convert", KVS_CONVERT_BIN},
};

/* Criterion copies parameters into the test's own process, where
   pointers mean nothing: the parameter is an index into programs. */
static int indexes[] = {0, 1, 2, 3};

ParameterizedTestParameters(binaries, alike)
{
    return cr_make_param_array(int, indexes, sizeof(programs) / sizeof(programs[0]));
}

static void run(const struct program *p, const char *arg, ts_result *r)
{
    const char *argv[] = {p->path, arg, NULL};
    cr_assert_eq(ts_run(argv, NULL, 0, 10000, r), 0, "%s %s did not run", p->name, arg);
}

ParameterizedTest(int *index, binaries, alike)
{
    const struct program *p = &programs[*index];
    char usage[64], version[64];
    snprintf(usage, sizeof(usage), "usage: %s", p->name);
    snprintf(version, sizeof(version), "%s %s\n", p->name, KVS_VERSION);
    ts_result r;
    static const char *const help[] = {"--help", "-h"};
    for (size_t i = 0; i < 2; i++) {
        run(p, help[i], &r);
        cr_expect_eq(r.status, 0, "%s %s: exit %d", p->name, help[i], r.status);
        cr_expect(strcasestr(r.out, usage) == r.out, "%s %s: %s", p->name, help[i], r.out);
        cr_expect_str_eq(r.err, "", "%s %s", p->name, help[i]);
        ts_result_free(&r);
    }
    static const char *const ver[] = {"--version", "-V"};
    for (size_t i = 0; i < 2; i++) {
        run(p, ver[i], &r);
        cr_expect_eq(r.status, 0, "%s %s: exit %d", p->name, ver[i], r.status);
        cr_expect_str_eq(r.out, version, "%s %s", p->name, ver[i]);
        cr_expect_str_eq(r.err, "", "%s %s", p->name, ver[i]);
        ts_result_free(&r);
    }
    static const char *const unknown[] = {"--no-such-option", "-Q"};
    for (size_t i = 0; i < 2; i++) {
        run(p, unknown[i], &r);
        char named[64];
        snprintf(named, sizeof(named), "'%s'", unknown[i]);
        cr_expect_neq(r.status, 0, "%s %s: exit 0", p->name, unknown[i]);
        cr_expect_str_eq(r.out, "", "%s %s", p->name, unknown[i]);
        cr_expect(strstr(r.err, "unknown option") && strstr(r.err, named), "%s %s: %s", p->name,
                  unknown[i], r.err);
        ts_result_free(&r);
    }
}
