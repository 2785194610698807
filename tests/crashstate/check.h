/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Checking one crash state: write it into a fresh directory, open it the
 * way the workload did, and compare every key with the model (model.h).
 *
 * A store that refuses to open is handed to `kvs-check DIR --repair OUT`
 * (the real binary); the state passes only if OUT then opens and matches
 * the model. On request the check also writes a key after the reopen,
 * syncs, reopens once more and expects it back, then checks the model
 * again: a store recovered from a crash must take writes that last.
 *
 * LMDB aborts the process on some damage it finds (its assertions), so a
 * check can run in a child process ("isolated"): a child that dies is a
 * problem reported with its signal and last words, not the end of the run.
 */
#ifndef KVS_TESTS_CRASHSTATE_CHECK_H
#define KVS_TESTS_CRASHSTATE_CHECK_H

#include <stdbool.h>

#include "kvs/kvs.h"
#include "model.h"
#include "state.h"

struct checker {
    const struct model *m;
    const kvs_options *opts; /* as the workload opened its store; log is set here */
    const char *dir;         /* an empty directory to work in */
    bool isolate;            /* check in a child process */
};

struct verdict {
    unsigned problems;
    bool refused;  /* open refused; the repaired copy was checked */
    bool crashed;  /* the child checking it died */
    bool probed;   /* a write after the crash was made and survived a reopen */
    size_t nwrong; /* wrong keys, the first of them in wrong[] */
    struct m_problem wrong[M_PROBLEMS_MAX];
    char report[6144]; /* the problems, one per line */
    char log[2048];    /* what the engine logged while opening */
};

/* Check st; probe: also write after the crash and reopen. */
void ck_state(const struct checker *c, const struct st_state *st, bool probe, struct verdict *v);

#endif
