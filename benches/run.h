/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Running one timed workload of kvs-bench on an open store.
 *
 * The operations are split between the threads (contiguous ranges of key
 * numbers for the sequential kinds, equal shares of random operations for
 * the others). Every thread waits at a barrier, times each operation into
 * its own histogram, and records when it started and ended; the run lasts
 * from the first start after the barrier to the last end. Each read checks
 * the value it got (data.h); the first failure stops every thread.
 *
 * Thread safety: run_ops() is called from the main thread; it starts and
 * joins its own workers.
 */
#ifndef KVS_BENCH_RUN_H
#define KVS_BENCH_RUN_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "data.h"
#include "hist.h"
#include "kvs/kvs.h"

typedef enum op_kind {
    OP_INSERT,    /* set key numbers [0, keys) at version, each once */
    OP_OVERWRITE, /* set uniformly random existing keys at version */
    OP_READ,      /* get uniformly random existing keys, check each value */
    OP_MISS,      /* get keys that were never written, expect not found */
    OP_MIXED,     /* 90% OP_READ, 10% OP_OVERWRITE */
    OP_DELETE,    /* remove key numbers [0, keys), each once */
    OP_NAMED_SET, /* set "key1".."key<ops>" to "value" */
    OP_SCAN,      /* passes of kvs_db_scan (keys only, SCAN_STEP keys a step); an
                     operation is a key visited, a latency is a step's */
} op_kind;

/* Keys asked for per step of OP_SCAN, as redis-cli --scan asks COUNT 1000. */
#define SCAN_STEP 1000

typedef struct run_spec {
    kvs_db *db;
    const keyspace *ks;
    op_kind kind;
    uint64_t keys;        /* key numbers [0, keys) are in the store (or go in) */
    uint64_t ops;         /* operations of the random kinds and OP_NAMED_SET */
    unsigned threads;     /* at least 1 */
    uint64_t version;     /* version that writes store */
    uint64_t max_version; /* newest version a read may find */
    uint64_t seed;        /* seeds the threads' random streams */
    /* An extra, untimed thread that overwrites uniformly random keys at
       version until the timed threads are done (read-while-*). The timed
       threads start once the store completed a compaction since the writer
       started, or the writer overwrote twice as many keys as there are (an
       engine without compaction), or after wait_compaction_ns. */
    bool bg_writer;
    uint64_t wait_compaction_ns;
    /* Sets per kvs_db_write() call for OP_INSERT and OP_OVERWRITE (also in
       OP_MIXED); 1: kvs_db_set(). A set's latency is its batch's. */
    size_t batch;
} run_spec;

typedef struct run_result {
    uint64_t ops;         /* operations completed */
    uint64_t wall_ns;     /* first start after the barrier to the last end */
    hist lat;             /* latency of every operation, merged */
    uint64_t bg_writes;   /* overwrites by the bg_writer while the timed threads ran */
    uint64_t compactions; /* compactions completed while they ran */
} run_result;

/* Set (from a signal handler too) to make running workloads stop early. */
extern atomic_bool bench_interrupted;

/*
 * run_ops - run spec's operations and fill *res.
 * Returns 0; 1 if bench_interrupted stopped it; -1 with a one-line message
 * in err (size bytes) when an operation failed or read a wrong value, or a
 * thread could not be started.
 */
int run_ops(const run_spec *spec, run_result *res, char *err, size_t size);

#endif
