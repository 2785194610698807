/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * kvs-check DIR [--repair OUT_DIR]: verify a data directory offline and
 * optionally salvage it into a new one, with the checker of the engine that
 * wrote it (kvs/check.h). Exit status: 0 clean,
 * 1 problems found (or the check could not finish), 2 usage or a directory
 * that cannot be checked (missing, locked by a running server, unknown
 * engine).
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "kvs/check.h"

static int usage(void)
{
    fprintf(stderr, "usage: kvs-check DIR [--repair OUT_DIR]\n"
                    "  verifies the store in DIR (stop its server first); with --repair,\n"
                    "  copies every readable record into the new directory OUT_DIR.\n"
                    "  exit 0: clean, 1: problems found, 2: usage or DIR cannot be checked\n");
    return 2;
}

int main(int argc, char **argv)
{
    const char *dir = NULL, *repair = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--repair") == 0 && i + 1 < argc && !repair)
            repair = argv[++i];
        else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0)
            return usage(), 0;
        else if (argv[i][0] != '-' && !dir)
            dir = argv[i];
        else
            return usage();
    }
    if (!dir)
        return usage();
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
