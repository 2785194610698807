/*
 * kvs-server's command line; see config.h. Main thread, at startup.
 *
 * Every value is checked here, before a socket or a file is touched, so
 * that a mistyped flag costs nothing and explains itself in one line.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DEFAULT_DATA_DIR "data"
#define DEFAULT_MAXCLIENTS 10000
#define MAX_THREADS 1024

static const char usage[] =
    "Usage: kvs-server [OPTIONS]\n"
    "Serve a kvs store over the Redis protocol (RESP2).\n"
    "\n"
    "  --addr IP:PORT        listen on IP:PORT or [IPv6]:PORT (default " KVS_ADDR_DEFAULT ")\n"
    "  --engine NAME         storage engine: %s (default: the one the data\n"
    "                        directory was written by, else kvs)\n"
    "  --data-dir DIR        data directory, created if missing (default " DEFAULT_DATA_DIR ")\n"
    "  --fsync POLICY        always, everysec or no (default everysec)\n"
    "  --threads N           worker threads (default: one per core)\n"
    "  --maxclients N        most clients connected at once (default 10000)\n"
    "  --timeout SECONDS     close clients idle this long; 0 never (default 0)\n"
    "  --log-level LEVEL     debug, info, warn or error (default info)\n"
    "  -V, --version         print the version and exit\n"
    "  -h, --help            print this help and exit\n";

static void bad(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void bad(const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    fprintf(stderr, "kvs-server: %s\n", line);
}

/* Registered engine names as "kvs, lmdb". */
static void engine_names(char *out, size_t size)
{
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < kvs_engine_count() && used < size; i++)
        used += (size_t)snprintf(out + used, size - used, "%s%s", i ? ", " : "",
                                 kvs_engine_name(kvs_engine_at(i)));
}

/* A decimal number in [lo, hi], digits only. */
static int parse_uint(const char *text, unsigned long long lo, unsigned long long hi, unsigned *out)
{
    if (!*text || strspn(text, "0123456789") != strlen(text))
        return -1;
    errno = 0;
    unsigned long long v = strtoull(text, NULL, 10);
    if (errno || v < lo || v > hi)
        return -1;
    *out = (unsigned)v;
    return 0;
}

static unsigned default_threads(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > MAX_THREADS ? MAX_THREADS : (unsigned)n;
}

static int set_addr(struct server_config *cfg, const char *text)
{
    if (kvs_addr_parse(text, &cfg->addr, &cfg->addr_len) != 0 ||
        kvs_addr_format((const struct sockaddr *)&cfg->addr, cfg->addr_len, cfg->addr_text,
                        sizeof(cfg->addr_text)) != 0) {
        bad("invalid address '%s': expected IP:PORT or [IPv6]:PORT", text);
        return -1;
    }
    return 0;
}

enum {
    OPT_ADDR = 256,
    OPT_ENGINE,
    OPT_DATA_DIR,
    OPT_FSYNC,
    OPT_THREADS,
    OPT_MAXCLIENTS,
    OPT_TIMEOUT,
    OPT_LOG_LEVEL
};

static const struct option options[] = {
    {"addr", required_argument, NULL, OPT_ADDR},
    {"engine", required_argument, NULL, OPT_ENGINE},
    {"data-dir", required_argument, NULL, OPT_DATA_DIR},
    {"fsync", required_argument, NULL, OPT_FSYNC},
    {"threads", required_argument, NULL, OPT_THREADS},
    {"maxclients", required_argument, NULL, OPT_MAXCLIENTS},
    {"timeout", required_argument, NULL, OPT_TIMEOUT},
    {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
    {"version", no_argument, NULL, 'V'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

/* One option and its value; returns 0, or -1 after printing why. */
static int apply(struct server_config *cfg, int opt, const char *val)
{
    char names[128];
    switch (opt) {
    case OPT_ADDR:
        return set_addr(cfg, val);
    case OPT_ENGINE:
        if (!kvs_engine_find(val)) {
            engine_names(names, sizeof(names));
            bad("unknown engine '%s' (available: %s)", val, names);
            return -1;
        }
        cfg->engine = val;
        return 0;
    case OPT_DATA_DIR:
        if (!*val) {
            bad("--data-dir needs a directory");
            return -1;
        }
        cfg->data_dir = val;
        return 0;
    case OPT_FSYNC:
        if (kvs_fsync_parse(val, &cfg->fsync) != 0) {
            bad("invalid --fsync '%s': expected always, everysec or no", val);
            return -1;
        }
        return 0;
    case OPT_THREADS:
        if (parse_uint(val, 1, MAX_THREADS, &cfg->threads) != 0) {
            bad("invalid --threads '%s': expected 1 to %d", val, MAX_THREADS);
            return -1;
        }
        return 0;
    case OPT_MAXCLIENTS:
        if (parse_uint(val, 1, 1000000, &cfg->maxclients) != 0) {
            bad("invalid --maxclients '%s': expected 1 to 1000000", val);
            return -1;
        }
        return 0;
    case OPT_TIMEOUT:
        if (parse_uint(val, 0, 100u * 365 * 86400, &cfg->timeout) != 0) {
            bad("invalid --timeout '%s': expected seconds, 0 for never", val);
            return -1;
        }
        return 0;
    case OPT_LOG_LEVEL:
        if (log_level_parse(val, &cfg->log_level) != 0) {
            bad("invalid --log-level '%s': expected debug, info, warn or error", val);
            return -1;
        }
        return 0;
    }
    return -1;
}

enum config_result config_parse(struct server_config *cfg, int argc, char **argv)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->data_dir = DEFAULT_DATA_DIR;
    cfg->fsync = KVS_FSYNC_EVERYSEC;
    cfg->threads = default_threads();
    cfg->maxclients = DEFAULT_MAXCLIENTS;
    cfg->log_level = LVL_INFO;
    if (set_addr(cfg, KVS_ADDR_DEFAULT) != 0)
        return CONFIG_BAD;

    opterr = 0; /* errors are printed here, in one line */
    int opt;
    while ((opt = getopt_long(argc, argv, ":Vh", options, NULL)) != -1) {
        char names[128];
        switch (opt) {
        case 'V':
            printf("kvs-server %s\n", KVS_VERSION);
            return CONFIG_EXIT;
        case 'h':
            engine_names(names, sizeof(names));
            printf(usage, names);
            return CONFIG_EXIT;
        case ':':
            bad("option '%s' needs a value (see --help)", argv[optind - 1]);
            return CONFIG_BAD;
        case '?':
            if (optopt)
                bad("unknown option '-%c' (see --help)", optopt);
            else
                bad("unknown option '%s' (see --help)", argv[optind - 1]);
            return CONFIG_BAD;
        default:
            if (apply(cfg, opt, optarg) != 0)
                return CONFIG_BAD;
        }
    }
    if (optind < argc) {
        bad("unexpected argument '%s' (see --help)", argv[optind]);
        return CONFIG_BAD;
    }
    return CONFIG_OK;
}
