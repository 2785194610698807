/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The workload of the crash-state test, recorded while it runs on a real
 * store (trace.h) and remembered by the model (model.h).
 *
 * 48 "cold" keys are written once and rarely again, 16 "hot" keys are
 * overwritten and removed all the time, so that old segments of the kvs
 * engine stay mostly live while newer ones go stale and are compacted in
 * the background step by step (4 KiB segments, compaction from 4 KiB of
 * stale bytes). In rounds: single sets and removes, batches
 * (kvs_db_write), checkpoints (kvs_db_sync), one full kvs_db_compact(),
 * three threads writing disjoint keys at once (group commit under
 * "always"), a close and reopen (recovery, hints), a kvs_db_clear() and
 * refill; under "everysec" and "no" a paced stretch of about 1.6 s with
 * more removes, in which the once-a-second sync runs and background
 * compactions finish between requests. The store is closed at the end.
 * Every other write carries an expiry time (far in the future), which a
 * state must show with its value (model.c).
 */
#ifndef KVS_TESTS_CRASHSTATE_WORKLOAD_H
#define KVS_TESTS_CRASHSTATE_WORKLOAD_H

#include <stdbool.h>
#include <stdint.h>

#include "kvs/kvs.h"
#include "model.h"
#include "trace.h"

#define WL_COLD 48 /* keys 0..47; 48..63 are hot */

struct wl_config {
    const char *engine;
    kvs_fsync policy;
    bool long_run; /* four times the rounds */
    uint64_t seed;
};

/* The options the workload opens its store with; the states are opened
   with the same. */
void wl_options(const struct wl_config *c, kvs_options *o);

/*
 * wl_run - run the workload on the store in dir (an empty directory) while
 * recording into t, the model in m (initialized here). Returns 0, or -1
 * when the store could not be opened (the engine's explanation in why,
 * KVS_WHY_MAX bytes). Engine errors during the workload are counted in
 * m->errors.
 */
int wl_run(const struct wl_config *c, const char *dir, struct trace *t, struct model *m, char *why);

#endif
