/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Writing kvs-bench results (see report.h). Latencies are nanoseconds in CSV
 * and JSON, microseconds in the table.
 */
#include "report.h"

#include <inttypes.h>

static double per_sec(const bench_row *row)
{
    return row->wall_ns ? (double)row->ops * 1e9 / (double)row->wall_ns : 0.0;
}

static double usec(uint64_t ns)
{
    return (double)ns / 1000.0;
}

/* Engine and workload names are plain words; escape anyway. */
static void json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            fputc('\\', f);
        if ((unsigned char)*s < 0x20)
            fprintf(f, "\\u%04x", (unsigned char)*s);
        else
            fputc(*s, f);
    }
    fputc('"', f);
}

void report_begin(report *r, const report_params *p)
{
    r->rows = 0;
    if (r->table) {
        fprintf(r->table,
                "# kvs-bench: keys=%" PRIu64 " ops=%" PRIu64 " key-size=%zu value-size=%zu "
                "seed=%" PRIu64 " dir=%s\n",
                p->keys, p->ops, p->key_size, p->value_size, p->seed, p->dir);
        fprintf(r->table, "# latencies in microseconds; rss = process VmRSS after the run, "
                          "including mapped file pages\n");
        fprintf(r->table, "%-6s %-8s %3s %-18s %9s %9s %11s %8s %8s %8s %9s %8s %8s\n", "engine",
                "fsync", "thr", "workload", "keys", "ops", "ops/s", "p50", "p99", "p99.9", "max",
                "rss_MB", "disk_MB");
    }
    if (r->csv)
        fprintf(r->csv, "engine,fsync,threads,workload,keys,ops,seconds,ops_per_sec,p50_ns,"
                        "p99_ns,p999_ns,max_ns,mean_ns,rss_kb,disk_bytes,key_size,value_size\n");
    if (r->json) {
        fprintf(r->json,
                "{\"params\": {\"keys\": %" PRIu64 ", \"ops\": %" PRIu64 ", \"key_size\": %zu, "
                "\"value_size\": %zu, \"seed\": %" PRIu64 ", \"dir\": ",
                p->keys, p->ops, p->key_size, p->value_size, p->seed);
        json_string(r->json, p->dir);
        fprintf(r->json, "},\n \"results\": [");
    }
    r->key_size = p->key_size;
    r->value_size = p->value_size;
}

void report_row(report *r, const bench_row *row)
{
    double secs = (double)row->wall_ns / 1e9;
    if (r->table) {
        fprintf(r->table,
                "%-6s %-8s %3u %-18s %9" PRIu64 " %9" PRIu64
                " %11.0f %8.2f %8.2f %8.2f %9.1f %8.1f %8.1f\n",
                row->engine, row->fsync, row->threads, row->workload, row->keys, row->ops,
                per_sec(row), usec(row->p50_ns), usec(row->p99_ns), usec(row->p999_ns),
                usec(row->max_ns), row->rss_kb >= 0 ? (double)row->rss_kb / 1024.0 : -1.0,
                row->disk_bytes >= 0 ? (double)row->disk_bytes / 1048576.0 : -1.0);
        fflush(r->table);
    }
    if (r->csv) {
        fprintf(r->csv,
                "%s,%s,%u,%s,%" PRIu64 ",%" PRIu64 ",%.6f,%.1f,%" PRIu64 ",%" PRIu64 ",%" PRIu64
                ",%" PRIu64 ",%" PRIu64 ",%ld,%lld,%zu,%zu\n",
                row->engine, row->fsync, row->threads, row->workload, row->keys, row->ops, secs,
                per_sec(row), row->p50_ns, row->p99_ns, row->p999_ns, row->max_ns, row->mean_ns,
                row->rss_kb, row->disk_bytes, r->key_size, r->value_size);
        fflush(r->csv);
    }
    if (r->json) {
        fprintf(r->json, "%s\n  {\"engine\": ", r->rows ? "," : "");
        json_string(r->json, row->engine);
        fprintf(r->json, ", \"fsync\": ");
        json_string(r->json, row->fsync);
        fprintf(r->json, ", \"threads\": %u, \"workload\": ", row->threads);
        json_string(r->json, row->workload);
        fprintf(r->json,
                ", \"keys\": %" PRIu64 ", \"ops\": %" PRIu64 ", \"seconds\": %.6f, "
                "\"ops_per_sec\": %.1f, \"p50_ns\": %" PRIu64 ", \"p99_ns\": %" PRIu64
                ", \"p999_ns\": %" PRIu64 ", \"max_ns\": %" PRIu64 ", \"mean_ns\": %" PRIu64
                ", \"rss_kb\": %ld, \"disk_bytes\": %lld}",
                row->keys, row->ops, secs, per_sec(row), row->p50_ns, row->p99_ns, row->p999_ns,
                row->max_ns, row->mean_ns, row->rss_kb, row->disk_bytes);
        fflush(r->json);
    }
    r->rows++;
}

void report_end(report *r)
{
    if (r->json)
        fprintf(r->json, "\n ]}\n");
    if (r->table)
        fflush(r->table);
    if (r->csv)
        fflush(r->csv);
    if (r->json)
        fflush(r->json);
}
