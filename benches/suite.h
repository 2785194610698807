/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The kvs-bench suite: the named workloads, and running them for every
 * engine, fsync policy and thread count asked for.
 *
 * Each (engine, fsync, threads) combination starts from a fresh store in a
 * new directory and runs the workloads in the order given. A workload that
 * needs the store loaded with the standard keys gets it loaded first,
 * untimed, if an earlier one (delete, set-4095, get-N) left it otherwise;
 * fill, set-4095 and get-N start from a fresh empty store. Only the
 * workload's own operations are timed.
 *
 * Thread safety: main thread only.
 */
#ifndef KVS_BENCH_SUITE_H
#define KVS_BENCH_SUITE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kvs/kvs.h"
#include "report.h"

typedef enum wl_kind {
    WL_FILL,      /* insert the standard keys into an empty store */
    WL_OVERWRITE, /* set random standard keys to a new version */
    WL_READ_HIT,  /* get random standard keys */
    WL_READ_MISS, /* get keys that are not in the store */
    WL_MIXED,     /* 90% reads, 10% overwrites */
    WL_DELETE,    /* remove every standard key once */
    WL_SET_NAMED, /* fresh store: set key1..key<n> to "value" */
    WL_GET_N,     /* fresh store loaded with n keys: random gets */
    WL_SCAN,      /* one pass of kvs_db_scan over the standard keys per thread */
    /* get random standard keys while an untimed thread overwrites random
       ones: with compaction running (kvs; the thresholds as opened), or
       with compaction switched off, the baseline for the former */
    WL_READ_COMPACT,
    WL_READ_WRITE,
} wl_kind;

typedef struct workload {
    char name[24];
    wl_kind kind;
    uint64_t n; /* WL_SET_NAMED and WL_GET_N only */
} workload;

#define MAX_LIST 32

typedef struct bench_config {
    const kvs_engine *engines[MAX_LIST];
    size_t nengines;
    kvs_fsync fsyncs[3];
    size_t nfsyncs;
    unsigned threads[MAX_LIST];
    size_t nthreads;
    workload workloads[MAX_LIST];
    size_t nworkloads;
    uint64_t keys; /* the standard keys: numbers [0, keys) */
    uint64_t ops;  /* operations of the random-access workloads */
    size_t key_size;
    size_t value_size;
    size_t batch; /* sets per kvs_db_write() in the timed set workloads */
    uint64_t seed;
    const char *dir; /* stores are made in directories below this one */
} bench_config;

/* Parse a workload name ("fill", "get-2^16", "get-1000", "set-4095").
   Returns 0, or -1 for an unknown name. */
int workload_parse(const char *text, workload *out);

/* Names of the workloads, for --help. */
extern const char *const workload_names[];

/*
 * suite_run - run every combination, writing rows to r.
 * Returns 0; 1 after a failure (message on stderr); 130 if interrupted.
 */
int suite_run(const bench_config *cfg, report *r);

#endif
