/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The output of kvs-bench: one row per engine, fsync policy, thread count
 * and workload, written as it is measured as a human table, CSV or JSON
 * (any of them to stdout, CSV and JSON also to files).
 *
 * Thread safety: main thread only.
 */
#ifndef KVS_BENCH_REPORT_H
#define KVS_BENCH_REPORT_H

#include <stdint.h>
#include <stdio.h>

typedef struct bench_row {
    const char *engine;
    const char *fsync;
    unsigned threads;
    const char *workload;
    uint64_t keys; /* keys in the store while it ran (written, for fill) */
    uint64_t ops;
    uint64_t wall_ns;
    uint64_t p50_ns, p99_ns, p999_ns, max_ns, mean_ns;
    long rss_kb;          /* VmRSS right after the run; -1 unknown */
    long long disk_bytes; /* the engine's kvs_stats.disk_bytes; -1 unknown */
} bench_row;

typedef struct report {
    FILE *table; /* NULL: no table */
    FILE *csv;
    FILE *json;
    unsigned rows;
    size_t key_size; /* copied from the params, for the CSV rows */
    size_t value_size;
} report;

typedef struct report_params {
    size_t key_size;
    size_t value_size;
    uint64_t keys;
    uint64_t ops;
    uint64_t seed;
    const char *dir;
} report_params;

/* Write the headers. The streams are borrowed until report_end(). */
void report_begin(report *r, const report_params *p);
void report_row(report *r, const bench_row *row);
/* Close the JSON document and flush everything. */
void report_end(report *r);

#endif
