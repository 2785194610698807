/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Active expiry: a thread that finds keys whose expiry time has passed and
 * removes them, so that keys nobody reads again do not stay in memory and
 * on disk. Reads never see such keys (the engines hide them); this is what
 * frees them.
 *
 * As Redis's activeExpireCycle (its "slow" cycle), hz times a second:
 * look at some keys with times, from a cursor that goes on where the last
 * cycle stopped, remove those that expired, and look again while more
 * than a tenth of those looked at had expired, until the cycle's time is
 * up: 25% of the cycle's period (25 ms at hz 10), more with a higher
 * --active-expire-effort, as in Redis. The looking is one kvs_db_scan()
 * step with KVS_SCAN_EXPIRED; the removing, KVS_OP_EXPIRE ops through
 * store_write_batch(), the store's door, which removes a key only if its
 * time is still passed, so a write that renews the key meanwhile wins.
 *
 * Unlike Redis's, the cycle runs beside the workers, on its own thread: a
 * cycle delays no client's command; it takes CPU time and the store's
 * write lock for one batch of removals at a time (at most STEP_MAX keys).
 *
 * Threads: expirer_start() and expirer_stop() on the main thread; the
 * rest on the expirer's own thread, except the figures, read by any.
 */
#ifndef KVS_SERVER_EXPIRY_H
#define KVS_SERVER_EXPIRY_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "kvs/kvs.h"

struct server;

struct expirer {
    struct server *srv;
    pthread_t thread;
    bool started;
    /* Protects stop; wake is signalled when it is set. */
    pthread_mutex_t lock;
    pthread_cond_t wake;
    bool stop;
    /* DEBUG SET-ACTIVE-EXPIRE 0: cycles are skipped (any thread sets it). */
    atomic_bool paused;

    /* The expirer's thread only. */
    uint64_t cursor; /* where the next step starts */
    bool failing;    /* the last step failed (logged once until one succeeds) */
    kvs_buf keys;    /* the keys a step found, one after the other */
    size_t *lens;    /* their lengths */
    kvs_op *ops;
    size_t nkeys, cap;

    /* Figures for INFO, written by the expirer's thread only. */
    _Atomic uint64_t expired;     /* keys removed */
    _Atomic uint64_t cycle_us;    /* CPU time the cycles took, microseconds */
    _Atomic uint64_t time_capped; /* cycles that stopped at their time limit */
    /* Redis's expired_stale_perc: a running average (each cycle weighs 5%)
       of the share of keys with times looked at that had expired; a
       double's bits. */
    _Atomic uint64_t stale;
};

/* Start the thread over srv's store and configuration (hz, effort).
   Main thread. Returns 0 or an errno value (nothing to stop then). */
int expirer_start(struct expirer *e, struct server *srv);

/* Stop the thread and wait for it to end (a cycle stops at its next step),
   then free everything. Accepts one that never started. Main thread. */
void expirer_stop(struct expirer *e);

/* Redis's expired_stale_perc, 0 to 100. Any thread. */
double expirer_stale_perc(struct expirer *e);

/* CONFIG RESETSTAT of the running average. Any thread. */
void expirer_reset_stale(struct expirer *e);

#endif
