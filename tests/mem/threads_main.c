/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The mem engine's thread scenarios (scenarios.c) as a plain program, for
 * the ThreadSanitizer build, where Criterion cannot start (scenarios.h says
 * why). Runs each at half the Criterion size (TSan is slow), prints
 * one line per scenario and a closing "N passed, N failed" line; exits
 * non-zero if any failed.
 */
#include <stdbool.h>
#include <stdio.h>

#include "engines/mem/table.h"
#include "mem/scenarios.h"

#define SCALE 0.5

int main(void)
{
    static const struct {
        const char *name;
        bool (*run)(double scale, char *msg, size_t size);
    } scenarios[] = {
        {"slab_threads", kmem_scn_slab_threads},
        {"readers_writers", kmem_scn_readers_writers},
        {"growth_under_readers", kmem_scn_growth_under_readers},
        {"scan_beside_writers", kmem_scn_scan_beside_writers},
        {"churn_small_arena", kmem_scn_churn_small_arena},
        {"snapshot_beside_writers", kmem_scn_snapshot_beside_writers},
    };
    int passed = 0, failed = 0;
    for (size_t i = 0; i < sizeof(scenarios) / sizeof(scenarios[0]); i++) {
        char msg[256] = "";
        bool ok = scenarios[i].run(SCALE, msg, sizeof(msg));
        if (ok)
            passed++;
        else
            failed++;
        printf("%s mem/%s%s%s\n", ok ? "[PASS]" : "[FAIL]", scenarios[i].name, ok ? "" : ": ", msg);
        fflush(stdout);
    }
    /* How often readers met a stripe that was moving (table.h's counters). */
    printf("gets under a stripe lock: %lu, walks redone: %lu\n", kmem__table_locked_gets,
           kmem__table_rewalks);
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
