/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * kvs-bench: engine-level benchmarks of libkvs, without the network.
 *
 * This file reads the command line, picks the engines, makes the scratch
 * directory (a temporary one unless --dir is given, removed at the end),
 * sets up the output and hands over to the suite (suite.c). Progress notes
 * and errors go to stderr; results go to stdout and the files asked for.
 * Exit status: 0, 1 on any failure (an error, a wrong value read back), 2
 * for a bad command line, 130 when interrupted.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "data.h"
#include "report.h"
#include "run.h"
#include "suite.h"
#include "sys.h"

#define DEFAULT_KEYS 1000000
#define QUICK_KEYS 20000

static const char *const quick_workloads = "fill,overwrite,read-hit,read-miss,mixed,scan,delete,"
                                           "set-4095,get-2^8,get-2^12";

static void usage(FILE *f)
{
    fprintf(f, "usage: kvs-bench [options]\n"
               "Engine-level benchmarks of libkvs (no network). Setup is never timed.\n"
               "\n"
               "  --engine LIST      engines, comma-separated (default: every registered one:");
    for (size_t i = 0; i < kvs_engine_count(); i++)
        fprintf(f, " %s", kvs_engine_name(kvs_engine_at(i)));
    fprintf(f,
            ")\n"
            "  --threads LIST     thread counts (default 1,2,4); threads split the operations\n"
            "  --keys N           keys in the store (default 1000000; k and m suffixes)\n"
            "  --ops N            operations of the random workloads (default: --keys)\n"
            "  --key-size N       key bytes, at least %d (default 16)\n"
            "  --value-size N     value bytes, at least %d (default 100; try 4096)\n"
            "  --fsync LIST       policies among always,everysec,no (default no: the engines'\n"
            "                     own cost; everysec syncs off the hot path, so compare it\n"
            "                     with no; always waits for the disk on every write: use it\n"
            "                     with a small --keys)\n"
            "  --seed N           seed of keys, values and random streams (default 1)\n"
            "  --batch N          sets per kvs_db_write() call in fill and overwrite\n"
            "                     (default 1: kvs_db_set); a set's latency is its batch's\n"
            "  --workloads LIST   default: fill,overwrite,read-hit,read-miss,mixed,scan,delete,\n"
            "                     set-4095,get-2^8,get-2^12,get-2^16,get-2^20\n"
            "                     (also get-N, set-N for other N)\n"
            "  --dir DIR          make stores under DIR (default: a new directory in\n"
            "                     $TMPDIR or /tmp); stores are removed after use\n"
            "  --quick            a run of a few seconds: --keys %d, --threads 1, gets up to\n"
            "                     get-2^12 (explicit options still win)\n"
            "  --csv[=FILE]       CSV to FILE, or to stdout instead of the table\n"
            "  --json[=FILE]      JSON to FILE, or to stdout instead of the table\n"
            "  -h, --help         this text\n"
            "\n"
            "Workloads: fill (new random keys), overwrite and read-hit (uniform random over\n"
            "the keys), read-miss, mixed (90%% reads, 10%% writes), scan (a pass of\n"
            "kvs_db_scan over every key per thread, 1000 keys a step: operations are keys,\n"
            "latencies are steps'), delete (every key once),\n"
            "set-4095 (fresh store, key1..key4095 = \"value\"), get-N (fresh store of N keys,\n"
            "random gets), and two not run by default: read-while-compact (random gets while\n"
            "an untimed thread overwrites random keys, timed from the first compaction on)\n"
            "and read-while-write (the same with compaction off: its baseline).\n"
            "Every read checks its value; a wrong one stops with exit 1.\n"
            "Latency percentiles come from log-bucket histograms (within about 3%%).\n",
            KEY_MIN, VALUE_MIN, QUICK_KEYS);
}

/* A count with an optional k (1000) or m (1000000) suffix. */
static int parse_count(const char *s, uint64_t *out)
{
    char *end;
    if (*s < '0' || *s > '9')
        return -1;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    uint64_t mult = 1;
    if (*end == 'k' || *end == 'K')
        mult = 1000, end++;
    else if (*end == 'm' || *end == 'M')
        mult = 1000000, end++;
    if (*end || errno || v > UINT64_MAX / mult)
        return -1;
    *out = v * mult;
    return 0;
}

/* Call item() on every element of a comma-separated list. */
static int each_item(const char *list, int (*item)(const char *, bench_config *), bench_config *cfg)
{
    char buf[1024];
    if (snprintf(buf, sizeof(buf), "%s", list) >= (int)sizeof(buf))
        return -1;
    char *save = NULL;
    int n = 0;
    for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save), n++) {
        if (item(tok, cfg) != 0)
            return -1;
    }
    return n ? 0 : -1;
}

static int add_engine(const char *name, bench_config *cfg)
{
    const kvs_engine *e = kvs_engine_find(name);
    if (!e) {
        fprintf(stderr, "kvs-bench: no engine named '%s'\n", name);
        return -1;
    }
    if (cfg->nengines == MAX_LIST)
        return -1;
    cfg->engines[cfg->nengines++] = e;
    return 0;
}

static int add_threads(const char *text, bench_config *cfg)
{
    uint64_t n;
    if (parse_count(text, &n) != 0 || n < 1 || n > 1024 || cfg->nthreads == MAX_LIST) {
        fprintf(stderr, "kvs-bench: bad thread count '%s' (1..1024)\n", text);
        return -1;
    }
    cfg->threads[cfg->nthreads++] = (unsigned)n;
    return 0;
}

static int add_fsync(const char *text, bench_config *cfg)
{
    if (cfg->nfsyncs == 3 || kvs_fsync_parse(text, &cfg->fsyncs[cfg->nfsyncs]) != 0) {
        fprintf(stderr, "kvs-bench: bad fsync policy '%s' (always, everysec, no)\n", text);
        return -1;
    }
    cfg->nfsyncs++;
    return 0;
}

static int add_workload(const char *text, bench_config *cfg)
{
    if (cfg->nworkloads == MAX_LIST ||
        workload_parse(text, &cfg->workloads[cfg->nworkloads]) != 0) {
        fprintf(stderr, "kvs-bench: unknown workload '%s' (see --help)\n", text);
        return -1;
    }
    cfg->nworkloads++;
    return 0;
}

static void on_signal(int sig)
{
    (void)sig;
    atomic_store(&bench_interrupted, true);
}

struct cli {
    const char *engines, *threads, *fsyncs, *workloads, *dir, *csv, *json;
    const char *keys, *ops, *key_size, *value_size, *seed, *batch;
    bool quick, csv_stdout, json_stdout;
};

enum {
    OPT_ENGINE = 256,
    OPT_THREADS,
    OPT_KEYS,
    OPT_OPS,
    OPT_KEY_SIZE,
    OPT_VALUE_SIZE,
    OPT_FSYNC,
    OPT_SEED,
    OPT_BATCH,
    OPT_WORKLOADS,
    OPT_DIR,
    OPT_QUICK,
    OPT_CSV,
    OPT_JSON,
};

static int parse_cli(int argc, char **argv, struct cli *cli)
{
    static const struct option longs[] = {
        {"engine", required_argument, NULL, OPT_ENGINE},
        {"threads", required_argument, NULL, OPT_THREADS},
        {"keys", required_argument, NULL, OPT_KEYS},
        {"ops", required_argument, NULL, OPT_OPS},
        {"key-size", required_argument, NULL, OPT_KEY_SIZE},
        {"value-size", required_argument, NULL, OPT_VALUE_SIZE},
        {"fsync", required_argument, NULL, OPT_FSYNC},
        {"seed", required_argument, NULL, OPT_SEED},
        {"batch", required_argument, NULL, OPT_BATCH},
        {"workloads", required_argument, NULL, OPT_WORKLOADS},
        {"dir", required_argument, NULL, OPT_DIR},
        {"quick", no_argument, NULL, OPT_QUICK},
        {"csv", optional_argument, NULL, OPT_CSV},
        {"json", optional_argument, NULL, OPT_JSON},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;
    while ((c = getopt_long(argc, argv, "h", longs, NULL)) != -1) {
        switch (c) {
        case OPT_ENGINE:
            cli->engines = optarg;
            break;
        case OPT_THREADS:
            cli->threads = optarg;
            break;
        case OPT_KEYS:
            cli->keys = optarg;
            break;
        case OPT_OPS:
            cli->ops = optarg;
            break;
        case OPT_KEY_SIZE:
            cli->key_size = optarg;
            break;
        case OPT_VALUE_SIZE:
            cli->value_size = optarg;
            break;
        case OPT_FSYNC:
            cli->fsyncs = optarg;
            break;
        case OPT_SEED:
            cli->seed = optarg;
            break;
        case OPT_BATCH:
            cli->batch = optarg;
            break;
        case OPT_WORKLOADS:
            cli->workloads = optarg;
            break;
        case OPT_DIR:
            cli->dir = optarg;
            break;
        case OPT_QUICK:
            cli->quick = true;
            break;
        case OPT_CSV:
            cli->csv = optarg;
            cli->csv_stdout = !optarg;
            break;
        case OPT_JSON:
            cli->json = optarg;
            cli->json_stdout = !optarg;
            break;
        case 'h':
            usage(stdout);
            exit(0);
        default:
            return -1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "kvs-bench: unexpected argument '%s'\n", argv[optind]);
        return -1;
    }
    return 0;
}

static int number(const char *text, const char *what, uint64_t min, uint64_t max, uint64_t *out)
{
    if (parse_count(text, out) != 0 || *out < min || *out > max) {
        fprintf(stderr, "kvs-bench: bad %s '%s' (%" PRIu64 "..%" PRIu64 ")\n", what, text, min,
                max);
        return -1;
    }
    return 0;
}

/* Turn the command line into a configuration, defaults filled in. */
static int configure(const struct cli *cli, bench_config *cfg)
{
    uint64_t v;
    char defaults[1024];
    if (cli->engines) {
        if (each_item(cli->engines, add_engine, cfg) != 0)
            return -1;
    } else {
        for (size_t i = 0; i < kvs_engine_count() && i < MAX_LIST; i++)
            cfg->engines[cfg->nengines++] = kvs_engine_at(i);
    }
    if (each_item(cli->threads ? cli->threads : cli->quick ? "1" : "1,2,4", add_threads, cfg))
        return -1;
    if (each_item(cli->fsyncs ? cli->fsyncs : "no", add_fsync, cfg) != 0)
        return -1;
    if (cli->workloads) {
        if (each_item(cli->workloads, add_workload, cfg) != 0)
            return -1;
    } else {
        size_t used = 0;
        defaults[0] = '\0';
        for (size_t i = 0; workload_names[i]; i++)
            used += (size_t)snprintf(defaults + used, sizeof(defaults) - used, "%s%s", i ? "," : "",
                                     workload_names[i]);
        if (each_item(cli->quick ? quick_workloads : defaults, add_workload, cfg) != 0)
            return -1;
    }
    if (number(cli->keys    ? cli->keys
               : cli->quick ? "20000"
                            : "1000000",
               "--keys", 1, (uint64_t)1 << 32, &cfg->keys))
        return -1;
    cfg->ops = cfg->keys;
    if (cli->ops && number(cli->ops, "--ops", 1, UINT64_MAX / 2, &cfg->ops))
        return -1;
    if (number(cli->key_size ? cli->key_size : "16", "--key-size", KEY_MIN, 1 << 20, &v))
        return -1;
    cfg->key_size = (size_t)v;
    if (number(cli->value_size ? cli->value_size : "100", "--value-size", VALUE_MIN, 1 << 26, &v))
        return -1;
    cfg->value_size = (size_t)v;
    if (number(cli->seed ? cli->seed : "1", "--seed", 0, UINT64_MAX, &cfg->seed))
        return -1;
    if (number(cli->batch ? cli->batch : "1", "--batch", 1, 100000, &v))
        return -1;
    cfg->batch = (size_t)v;
    return 0;
}

/* Drop engines whose limits the key or value size exceeds, saying so. */
static void fit_engines(bench_config *cfg)
{
    size_t kept = 0;
    for (size_t i = 0; i < cfg->nengines; i++) {
        const kvs_engine *e = cfg->engines[i];
        if (cfg->key_size > kvs_engine_max_key(e) || cfg->value_size > kvs_engine_max_value(e)) {
            fprintf(stderr,
                    "kvs-bench: skipping engine %s: its limits are %zu-byte keys and "
                    "%zu-byte values\n",
                    kvs_engine_name(e), kvs_engine_max_key(e), kvs_engine_max_value(e));
            continue;
        }
        cfg->engines[kept++] = e;
    }
    cfg->nengines = kept;
}

static FILE *open_out(const char *path)
{
    FILE *f = fopen(path, "w");
    if (!f)
        fprintf(stderr, "kvs-bench: cannot write %s: %s\n", path, strerror(errno));
    return f;
}

/* Make the scratch directory: DIR given, or a new temporary one. */
static int make_dir(const char *given, char *out, size_t size, bool *temporary)
{
    if (given) {
        *temporary = false;
        snprintf(out, size, "%s", given);
        if (mkdir(out, 0755) != 0 && errno != EEXIST) {
            fprintf(stderr, "kvs-bench: cannot create %s: %s\n", out, strerror(errno));
            return -1;
        }
        return 0;
    }
    const char *tmp = getenv("TMPDIR");
    snprintf(out, size, "%s/kvs-bench.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(out)) {
        fprintf(stderr, "kvs-bench: cannot create %s: %s\n", out, strerror(errno));
        return -1;
    }
    *temporary = true;
    return 0;
}

int main(int argc, char **argv)
{
    struct cli cli = {0};
    static bench_config cfg;
    if (parse_cli(argc, argv, &cli) != 0 || configure(&cli, &cfg) != 0) {
        fprintf(stderr, "kvs-bench: see --help\n");
        return 2;
    }
    fit_engines(&cfg);
    if (cfg.nengines == 0) {
        fprintf(stderr, "kvs-bench: no engine to run\n");
        return 1;
    }
    char dir[PATH_MAX];
    bool temporary;
    if (make_dir(cli.dir, dir, sizeof(dir), &temporary) != 0)
        return 1;
    cfg.dir = dir;

    report r = {0};
    int rc = 1;
    if (cli.csv_stdout)
        r.csv = stdout;
    else if (cli.json_stdout)
        r.json = stdout;
    else
        r.table = stdout;
    if ((cli.csv && !(r.csv = open_out(cli.csv))) || (cli.json && !(r.json = open_out(cli.json))))
        goto out_dir;
    if (cli.csv_stdout && cli.json_stdout)
        fprintf(stderr, "kvs-bench: --csv and --json both to stdout: writing CSV only\n");

    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    report_params p = {
        .key_size = cfg.key_size,
        .value_size = cfg.value_size,
        .keys = cfg.keys,
        .ops = cfg.ops,
        .seed = cfg.seed,
        .dir = dir,
    };
    report_begin(&r, &p);
    rc = suite_run(&cfg, &r);
    report_end(&r);
    if (rc == 130)
        fprintf(stderr, "kvs-bench: interrupted\n");
out_dir:
    if (r.csv && r.csv != stdout)
        fclose(r.csv);
    if (r.json && r.json != stdout)
        fclose(r.json);
    if (temporary && remove_tree(dir) != 0)
        fprintf(stderr, "kvs-bench: cannot remove %s: %s\n", dir, strerror(errno));
    return rc;
}
