/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * kvs-check DIR [--repair OUT_DIR]: verify a data directory offline and
 * optionally salvage it into a new one, with the checker of the engine that
 * wrote it (kvs/check.h). Exit status: 0 clean,
 * 1 problems found (or the check could not finish), 2 usage or a directory
 * that cannot be checked (missing, locked by a running server, unknown
 * engine).
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "kvs/check.h"
#include "kvs/kvs.h"

static const char usage_text[] =
    "usage: kvs-check DIR [--repair OUT_DIR]\n"
    "Verify the store in DIR (stop its server first) with the checker of the\n"
    "engine that wrote it; with --repair, copy every readable record into the\n"
    "new directory OUT_DIR.\n"
    "\n"
    "  --repair OUT_DIR  salvage into OUT_DIR (new or empty)\n"
    "  -h, --help        print this help and exit\n"
    "  -V, --version     print the version and exit\n"
    "\n"
    "Exit status: 0 clean, 1 problems found, 2 usage or DIR cannot be checked.\n";

/* A usage error: what is wrong, then the short usage, on stderr; exit 2. */
__attribute__((format(printf, 1, 2))) static int usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("kvs-check: ", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("\nusage: kvs-check DIR [--repair OUT_DIR]\n"
          "Try 'kvs-check --help' for more information.\n",
          stderr);
    return 2;
}

int main(int argc, char **argv)
{
    const char *dir = NULL, *repair = NULL;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
            fputs(usage_text, stdout);
            return fflush(stdout) == 0 ? 0 : 1;
        } else if (strcmp(arg, "-V") == 0 || strcmp(arg, "--version") == 0) {
            puts("kvs-check " KVS_VERSION);
            return fflush(stdout) == 0 ? 0 : 1;
        } else if (strcmp(arg, "--repair") == 0) {
            if (i + 1 == argc)
                return usage_error("option '%s' needs a value", arg);
            if (repair)
                return usage_error("option '%s' given twice", arg);
            repair = argv[++i];
        } else if (arg[0] == '-' && arg[1] != '\0') {
            return usage_error("unknown option '%s'", arg);
        } else if (!dir) {
            dir = arg;
        } else {
            return usage_error("unexpected argument '%s'", arg);
        }
    }
    if (!dir)
        return usage_error("missing DIR");
    struct kvs_check_report r;
    char why[KVS_WHY_MAX] = "";
    int rc = kvs_dir_check(dir, repair, stdout, &r, why);
    fflush(stdout);
    if (rc != 0) {
        fprintf(stderr, "kvs-check: %s\n", why[0] ? why : kvs_strerror(rc));
        bool cannot_check = rc == KVS_ENOTFOUND || rc == KVS_ELOCKED || rc == KVS_ENOENGINE ||
                            rc == KVS_EINVAL || rc == KVS_EWRONGENGINE || rc == KVS_ENOTSUP ||
                            rc == KVS_ENOTEMPTY;
        return cannot_check ? 2 : 1;
    }
    return r.problems ? 1 : 0;
}
