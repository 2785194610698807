/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The kvs engine's threaded scenarios (scenarios.c) as a plain program, for
 * the ThreadSanitizer build, where Criterion cannot start (scenarios.h says
 * why). Runs each scenario in a fresh directory under /tmp, prints one line
 * per scenario and exits non-zero if any failed.
 */
#include <stdio.h>
#include <stdlib.h>

#include "log/scenarios.h"
#include "log/support.h"

static const struct {
    const char *name;
    bool (*run)(const char *dir, char *msg, size_t size);
} scenarios[] = {
    {"thousand_writers", lt_scn_thousand_writers},
    {"hundred_readers", lt_scn_hundred_readers},
    {"readers_beside_writer", lt_scn_readers_beside_writer},
    {"compaction_beside_workers", lt_scn_compaction_beside_workers},
    {"directory_stops_growing", lt_scn_directory_stops_growing},
    {"group_commit", lt_scn_group_commit},
    {"group_commit_failure", lt_scn_group_commit_failure},
};

int main(void)
{
    int failed = 0;
    for (size_t i = 0; i < sizeof(scenarios) / sizeof(scenarios[0]); i++) {
        char msg[600] = "";
        char *dir = lt_tmpdir();
        bool ok = dir && scenarios[i].run(dir, msg, sizeof(msg));
        if (dir) {
            lt_rmrf(dir);
            free(dir);
        }
        printf("[%s] log/%s%s%s\n", ok ? "PASS" : "FAIL", scenarios[i].name, ok ? "" : ": ",
               dir ? msg : "cannot create a directory under /tmp");
        fflush(stdout);
        failed += !ok;
    }
    printf("%d failed\n", failed);
    return failed ? 1 : 0;
}
