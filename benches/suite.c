/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The kvs-bench suite (see suite.h): keeping track of what the store under
 * test holds, preparing it untimed for each workload, running the workload
 * and writing its row, and checking afterwards what can be checked cheaply
 * (key counts after fill and delete, the values of set-4095).
 */
#include "suite.h"

#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "data.h"
#include "run.h"
#include "sys.h"

const char *const workload_names[] = {
    "fill",     "overwrite", "read-hit", "read-miss", "mixed",    "scan", "delete",
    "set-4095", "get-2^8",   "get-2^12", "get-2^16",  "get-2^20", NULL,
};

/* The store under test and what it holds. */
struct store {
    kvs_db *db;
    char path[PATH_MAX];
    unsigned serial;
    bool standard;    /* holds exactly the standard keys */
    uint64_t version; /* newest version written to the standard keys */
    bool compaction;  /* opened with compaction on (the default) */
};

struct combo {
    const bench_config *cfg;
    const keyspace *ks;
    const char *engine;
    kvs_fsync fsync;
    unsigned threads;
    struct store st;
};

static int parse_u64(const char *s, uint64_t *out)
{
    char *end;
    if (*s < '0' || *s > '9')
        return -1;
    unsigned long long v = strtoull(s, &end, 10);
    if (*end)
        return -1;
    *out = v;
    return 0;
}

int workload_parse(const char *text, workload *out)
{
    static const struct {
        const char *name;
        wl_kind kind;
    } fixed[] = {
        {"fill", WL_FILL},
        {"overwrite", WL_OVERWRITE},
        {"read-hit", WL_READ_HIT},
        {"read-miss", WL_READ_MISS},
        {"mixed", WL_MIXED},
        {"delete", WL_DELETE},
        {"scan", WL_SCAN},
        {"read-while-compact", WL_READ_COMPACT},
        {"read-while-write", WL_READ_WRITE},
    };
    memset(out, 0, sizeof(*out));
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
        if (strcmp(text, fixed[i].name) == 0) {
            out->kind = fixed[i].kind;
            snprintf(out->name, sizeof(out->name), "%s", text);
            return 0;
        }
    }
    uint64_t n;
    if (strncmp(text, "set-", 4) == 0 && parse_u64(text + 4, &n) == 0 && n >= 1 && n <= 100000000) {
        out->kind = WL_SET_NAMED;
        out->n = n;
        snprintf(out->name, sizeof(out->name), "set-%" PRIu64, n);
        return 0;
    }
    if (strncmp(text, "get-", 4) != 0)
        return -1;
    if (strncmp(text + 4, "2^", 2) == 0) {
        if (parse_u64(text + 6, &n) != 0 || n > 32)
            return -1;
        n = (uint64_t)1 << n;
    } else if (parse_u64(text + 4, &n) != 0) {
        return -1;
    }
    if (n < 1 || n > ((uint64_t)1 << 32))
        return -1;
    out->kind = WL_GET_N;
    out->n = n;
    if ((n & (n - 1)) == 0 && n > 1)
        snprintf(out->name, sizeof(out->name), "get-2^%d", __builtin_ctzll(n));
    else
        snprintf(out->name, sizeof(out->name), "get-%" PRIu64, n);
    return 0;
}

static void store_close(struct combo *c)
{
    if (!c->st.db)
        return;
    int rc = kvs_db_close(c->st.db);
    if (rc != 0)
        fprintf(stderr, "kvs-bench: closing %s: %s\n", c->st.path, kvs_strerror(rc));
    c->st.db = NULL;
    if (remove_tree(c->st.path) != 0)
        perror(c->st.path);
    heap_trim();
}

/* Open the store's directory; compaction off for read-while-write. */
static int store_open(struct combo *c, bool compaction)
{
    kvs_options opts;
    kvs_options_init(&opts);
    opts.engine = c->engine;
    opts.fsync = c->fsync;
    if (!compaction)
        opts.compact_min_stale_bytes = UINT64_MAX;
    char why[KVS_WHY_MAX] = "";
    int rc = kvs_db_open(c->st.path, &opts, &c->st.db, why);
    if (rc != 0) {
        fprintf(stderr, "kvs-bench: open %s with engine %s: %s%s%s\n", c->st.path, c->engine,
                kvs_strerror(rc), why[0] ? ": " : "", why);
        c->st.db = NULL;
        return 1;
    }
    c->st.compaction = compaction;
    return 0;
}

/* Replace the store by a fresh empty one in a new directory. */
static int store_fresh(struct combo *c)
{
    store_close(c);
    snprintf(c->st.path, sizeof(c->st.path), "%s/kvs-bench-%ld-%s-%u", c->cfg->dir, (long)getpid(),
             c->engine, c->st.serial++);
    c->st.standard = false;
    c->st.version = 0;
    return store_open(c, true);
}

/* Close and open the same store again, with compaction on or off. */
static int store_reopen(struct combo *c, bool compaction)
{
    if (c->st.compaction == compaction)
        return 0;
    int rc = kvs_db_close(c->st.db);
    c->st.db = NULL;
    if (rc != 0) {
        fprintf(stderr, "kvs-bench: closing %s: %s\n", c->st.path, kvs_strerror(rc));
        return 1;
    }
    return store_open(c, compaction);
}

/* Run spec, reporting a failure. Returns 0, 1 (failed) or 130. */
static int run_checked(struct combo *c, const run_spec *spec, run_result *res, const char *what)
{
    char err[600] = "";
    int rc = run_ops(spec, res, err, sizeof(err));
    if (rc == 1)
        return 130;
    if (rc != 0) {
        fprintf(stderr, "kvs-bench: %s, %s, fsync %s, %u threads: %s\n", c->engine, what,
                kvs_fsync_name(c->fsync), c->threads, err);
        return 1;
    }
    return 0;
}

static run_spec spec_for(struct combo *c, op_kind kind, uint64_t keys)
{
    run_spec s = {
        .db = c->st.db,
        .ks = c->ks,
        .kind = kind,
        .keys = keys,
        .ops = c->cfg->ops,
        .threads = c->threads,
        .version = c->st.version,
        .max_version = c->st.version,
        .seed = c->cfg->seed,
        .batch = c->cfg->batch,
    };
    return s;
}

/* Load key numbers [0, n) at version 0, untimed. */
static int preload(struct combo *c, uint64_t n, const char *why)
{
    run_spec s = spec_for(c, OP_INSERT, n);
    s.version = 0;
    s.batch = 1;
    run_result *res = malloc(sizeof(*res));
    if (!res)
        return 1;
    int rc = run_checked(c, &s, res, why);
    free(res);
    return rc;
}

static int expect_keys(struct combo *c, uint64_t want, const char *after)
{
    kvs_stats st;
    int rc = kvs_db_stats(c->st.db, &st);
    if (rc == KVS_ENOTSUP)
        return 0;
    if (rc != 0) {
        fprintf(stderr, "kvs-bench: %s: stats after %s: %s\n", c->engine, after, kvs_strerror(rc));
        return 1;
    }
    if (st.keys != want) {
        fprintf(stderr,
                "kvs-bench: %s: %" PRIu64 " keys in the store after %s, expected %" PRIu64 "\n",
                c->engine, st.keys, after, want);
        return 1;
    }
    return 0;
}

/* After set-N: every key1..keyN reads back as "value" (untimed). */
static int check_named(struct combo *c, uint64_t n)
{
    kvs_buf out = KVS_BUF_INIT;
    int bad = 0;
    for (uint64_t i = 1; i <= n && !bad; i++) {
        char key[32];
        int len = snprintf(key, sizeof(key), "key%" PRIu64, i);
        int rc = kvs_db_get(c->st.db, kvs_slice_of(key, (size_t)len), &out);
        if (rc != 0 || out.len != 5 || memcmp(out.data, "value", 5) != 0) {
            fprintf(stderr, "kvs-bench: %s: %s after set-%" PRIu64 ": %s\n", c->engine, key, n,
                    rc ? kvs_strerror(rc) : "wrong value");
            bad = 1;
        }
    }
    kvs_buf_free(&out);
    return bad ? bad : expect_keys(c, n, "set");
}

/* Get the store ready for w and describe the run. Returns 0, 1 or 130. */
static int prepare(struct combo *c, const workload *w, run_spec *s)
{
    int rc = 0;
    uint64_t keys = c->cfg->keys;
    switch (w->kind) {
    case WL_FILL:
        rc = store_fresh(c);
        *s = spec_for(c, OP_INSERT, keys);
        return rc;
    case WL_SET_NAMED:
        rc = store_fresh(c);
        *s = spec_for(c, OP_NAMED_SET, 0);
        s->ops = w->n;
        return rc;
    case WL_GET_N:
        rc = store_fresh(c);
        if (rc == 0)
            rc = preload(c, w->n, "loading for get-N");
        *s = spec_for(c, OP_READ, w->n);
        return rc;
    default:
        break;
    }
    if (c->st.db && c->st.standard)
        rc = store_reopen(c, w->kind != WL_READ_WRITE);
    if (rc != 0)
        return rc;
    if (!c->st.db || !c->st.standard) {
        rc = store_fresh(c);
        if (rc == 0 && w->kind == WL_READ_WRITE)
            rc = store_reopen(c, false);
        if (rc == 0)
            rc = preload(c, keys, "loading the standard keys");
        if (rc != 0)
            return rc;
        c->st.standard = true;
    }
    static const op_kind kinds[] = {
        [WL_OVERWRITE] = OP_OVERWRITE, [WL_READ_HIT] = OP_READ, [WL_READ_MISS] = OP_MISS,
        [WL_MIXED] = OP_MIXED,         [WL_DELETE] = OP_DELETE, [WL_READ_COMPACT] = OP_READ,
        [WL_READ_WRITE] = OP_READ,     [WL_SCAN] = OP_SCAN,
    };
    bool bg = w->kind == WL_READ_COMPACT || w->kind == WL_READ_WRITE;
    if (w->kind == WL_OVERWRITE || w->kind == WL_MIXED || bg)
        c->st.version++;
    *s = spec_for(c, kinds[w->kind], keys);
    if (w->kind == WL_SCAN)
        s->ops = keys * c->threads; /* a whole pass for each thread */
    s->bg_writer = bg;
    s->wait_compaction_ns = w->kind == WL_READ_COMPACT ? 30000000000ull : 0;
    return 0;
}

/* What the store holds after w ran, and the checks that go with it. */
static int settle(struct combo *c, const workload *w)
{
    switch (w->kind) {
    case WL_FILL:
        c->st.standard = true;
        return expect_keys(c, c->cfg->keys, "fill");
    case WL_DELETE:
        c->st.standard = false;
        return expect_keys(c, 0, "delete");
    case WL_SET_NAMED:
        c->st.standard = false;
        return check_named(c, w->n);
    case WL_GET_N:
        c->st.standard = false;
        return 0;
    default:
        return 0;
    }
}

static int run_workload(struct combo *c, const workload *w, report *r)
{
    run_spec spec;
    int rc = prepare(c, w, &spec);
    if (rc != 0)
        return rc;
    run_result *res = malloc(sizeof(*res));
    if (!res)
        return 1;
    rc = run_checked(c, &spec, res, w->name);
    if (rc == 0)
        rc = settle(c, w);
    if (rc == 0 && spec.bg_writer)
        fprintf(stderr,
                "kvs-bench: %s, %s, %u threads: %" PRIu64 " overwrites and %" PRIu64
                " compactions ran beside the reads\n",
                c->engine, w->name, c->threads, res->bg_writes, res->compactions);
    if (rc == 0) {
        bench_row row = {
            .engine = c->engine,
            .fsync = kvs_fsync_name(c->fsync),
            .threads = c->threads,
            .workload = w->name,
            .keys = w->kind == WL_SET_NAMED ? w->n : spec.keys,
            .ops = res->ops,
            .wall_ns = res->wall_ns,
            .p50_ns = hist_quantile(&res->lat, 0.50),
            .p99_ns = hist_quantile(&res->lat, 0.99),
            .p999_ns = hist_quantile(&res->lat, 0.999),
            .max_ns = res->lat.count ? res->lat.max : 0,
            .mean_ns = hist_mean(&res->lat),
            .rss_kb = rss_kb(),
            .disk_bytes = tree_bytes(c->st.path),
        };
        report_row(r, &row);
    }
    free(res);
    return rc;
}

static int run_combo(struct combo *c, report *r)
{
    int rc = 0;
    for (size_t i = 0; i < c->cfg->nworkloads && rc == 0; i++) {
        if (atomic_load(&bench_interrupted))
            rc = 130;
        else
            rc = run_workload(c, &c->cfg->workloads[i], r);
    }
    store_close(c);
    return rc;
}

int suite_run(const bench_config *cfg, report *r)
{
    keyspace ks;
    if (keyspace_init(&ks, cfg->key_size, cfg->value_size, cfg->seed) != 0) {
        fprintf(stderr, "kvs-bench: out of memory\n");
        return 1;
    }
    int rc = 0;
    for (size_t e = 0; e < cfg->nengines && rc == 0; e++) {
        for (size_t f = 0; f < cfg->nfsyncs && rc == 0; f++) {
            for (size_t t = 0; t < cfg->nthreads && rc == 0; t++) {
                struct combo c = {
                    .cfg = cfg,
                    .ks = &ks,
                    .engine = kvs_engine_name(cfg->engines[e]),
                    .fsync = cfg->fsyncs[f],
                    .threads = cfg->threads[t],
                };
                rc = run_combo(&c, r);
            }
        }
    }
    keyspace_free(&ks);
    return rc;
}
