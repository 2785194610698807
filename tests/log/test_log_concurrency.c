/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The kvs engine under threads, in Criterion (ASan build): the scenarios of
 * scenarios.c, which the TSan build runs through threads_main.c.
 */
#include <criterion/criterion.h>
#include <stdlib.h>

#include "helpers.h"
#include "log/scenarios.h"

static char *dir;

static void setup(void)
{
    dir = lt_tmpdir_or_fail();
}

static void teardown(void)
{
    lt_rmrf(dir);
    free(dir);
}

TestSuite(log_concurrency, .init = setup, .fini = teardown, .timeout = 120);

#define SCENARIO(name)                                                                             \
    Test(log_concurrency, name)                                                                    \
    {                                                                                              \
        char msg[600] = "";                                                                        \
        cr_assert(lt_scn_##name(dir, msg, sizeof(msg)), "%s", msg);                                \
    }

SCENARIO(thousand_writers)
SCENARIO(hundred_readers)
SCENARIO(readers_beside_writer)
SCENARIO(compaction_beside_workers)
SCENARIO(directory_stops_growing)
SCENARIO(group_commit)
SCENARIO(group_commit_failure)
