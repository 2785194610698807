/* SPDX-License-Identifier: BSD-3-Clause */
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
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define DEFAULT_DATA_DIR "data"
#define DEFAULT_MAXCLIENTS 10000
#define MAX_THREADS 1024
#define DEFAULT_MAX_QUERY_BUFFER (1ull << 30)    /* Redis's client-query-buffer-limit */
#define DEFAULT_MAX_OUTPUT_BUFFER (256ull << 20) /* a hard limit, per client */
#define MIN_BUFFER_LIMIT (1ull << 20)
/* The most either limit may be: sums such as "limit + one reply" cannot wrap. */
#define MAX_BUFFER_LIMIT ((unsigned long long)(SIZE_MAX / 4))
#define MAX_PASSWORD_FILE (64u << 10)
/* The mem engine's range (engines/mem/mem_engine.c). */
#define MIN_MAXMEMORY (1ull << 20)
#define MAX_MAXMEMORY (1ull << 46)
#define DEFAULT_SNAPSHOT_INTERVAL 5
/* HTTP (docs/http.md): an 8 KiB URL and 8 KiB of header fields, as
   nginx allows by default; bodies up to 64 MiB. */
#define DEFAULT_HTTP_MAX_URL (8u << 10)
#define DEFAULT_HTTP_MAX_HEADERS (8u << 10)
#define DEFAULT_HTTP_MAX_BODY (64ull << 20)
#define MAX_HTTP_HEAD (1u << 20)
#define DEFAULT_HTTP_REQUEST_TIMEOUT 10
#define DEFAULT_HTTP_KEEPALIVE_TIMEOUT 60
#define DEFAULT_HTTP_KEEPALIVE_REQUESTS 1000

static const char usage[] =
    "Usage: kvs-server [OPTIONS]\n"
    "Serve a kvs store over the Redis protocol (RESP2).\n"
    "\n"
    "  --addr IP:PORT        listen on IP:PORT or [IPv6]:PORT (default " KVS_ADDR_DEFAULT ")\n"
    "  --engine NAME         storage engine: %s (default: the one the data\n"
    "                        directory was written by, else kvs)\n"
    "  --data-dir DIR        data directory, created if missing (default " DEFAULT_DATA_DIR ")\n"
    "  --fsync POLICY        always, everysec or no (default everysec)\n"
    "  --threads N           worker threads (default: cores - 1, at least 1)\n"
    "  --maxclients N        most clients connected at once (default 10000)\n"
    "  --timeout SECONDS     close clients idle this long; 0 never (default 0)\n"
    "  --requirepass PASS    clients must AUTH with PASS before other commands\n"
    "                        (shown to other local users by ps: prefer the next)\n"
    "  --requirepass-file F  the same, the password being the first line of F\n"
    "  --protected-mode yes|no  with no password, serve only loopback clients\n"
    "                        (default yes)\n"
    "  --max-query-buffer N  close a client whose request reaches N bytes; N may\n"
    "                        end in kb, mb or gb (default 1gb, at least 1mb)\n"
    "  --max-output-buffer N close a client owed more than N bytes of replies;\n"
    "                        0 for no limit (default 256mb, else at least 1mb)\n"
    "  --hz N                active expiry cycles per second, 1 to 500, as Redis's\n"
    "                        hz (default 10)\n"
    "  --active-expire-effort N  1 to 10, as Redis's: more keys looked at per\n"
    "                        cycle and more time allowed (default 1)\n"
    "  --maxmemory N         mem engine: refuse writes (OOM) while the data uses N\n"
    "                        bytes or more; N may end in kb, mb or gb; 0 for no\n"
    "                        limit (default 0)\n"
    "  --snapshot-interval SECONDS  mem engine: write a snapshot this often while\n"
    "                        keys change, and one at a clean stop; 0 for neither\n"
    "                        (default 5)\n"
    "  --http-addr IP:PORT   also serve HTTP/JSON on IP:PORT (default: no HTTP;\n"
    "                        see docs/http.md)\n"
    "  --http-max-body N     HTTP: largest request body (PUT's value, POST's\n"
    "                        JSON); N may end in kb, mb or gb (default 64mb)\n"
    "  --http-max-url N      HTTP: longest URL (path and query), else 414\n"
    "                        (default 8kb)\n"
    "  --http-max-headers N  HTTP: most bytes of header fields, else 431\n"
    "                        (default 8kb)\n"
    "  --http-request-timeout SECONDS  HTTP: close a connection whose request\n"
    "                        is not whole this long after its request line\n"
    "                        (default 10)\n"
    "  --http-keepalive-timeout SECONDS  HTTP: close a connection that sends no\n"
    "                        request line for this long (default 60)\n"
    "  --http-keepalive-requests N  HTTP: requests per connection before it\n"
    "                        is closed (default 1000)\n"
    "  --replicaof HOST:PORT be a replica of the primary at HOST:PORT (a kvs-server\n"
    "                        or redis-server; see docs/replication.md)\n"
    "  --masterauth PASS     the password the primary asks replicas for\n"
    "  --repl-backlog-size N bytes of writes kept for replicas that reconnect\n"
    "                        (partial resync); N may end in kb, mb, gb (default 1mb)\n"
    "  --replica-output-buffer-limit N  drop a replica this many bytes behind;\n"
    "                        it then syncs afresh (default 256mb)\n"
    "  --repl-timeout SECONDS  give up a replication link silent this long\n"
    "                        (default 60)\n"
    "  --repl-ping-period SECONDS  a primary's PING to its replicas (default 10)\n"
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

/* One worker per core but one, at least one: the kernel's network stack,
   the store's background thread and, often, clients on the same host need
   a core too. On 2 cores one worker measured faster at one request per
   round trip than two (docs/performance.md). */
static unsigned default_threads(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN) - 1;
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
    OPT_LOG_LEVEL,
    OPT_REQUIREPASS,
    OPT_REQUIREPASS_FILE,
    OPT_PROTECTED_MODE,
    OPT_MAX_QUERY_BUFFER,
    OPT_MAX_OUTPUT_BUFFER,
    OPT_HZ,
    OPT_EXPIRE_EFFORT,
    OPT_MAXMEMORY,
    OPT_SNAPSHOT_INTERVAL,
    OPT_HTTP_ADDR,
    OPT_HTTP_MAX_BODY,
    OPT_HTTP_MAX_URL,
    OPT_HTTP_MAX_HEADERS,
    OPT_HTTP_REQUEST_TIMEOUT,
    OPT_HTTP_KEEPALIVE_TIMEOUT,
    OPT_HTTP_KEEPALIVE_REQUESTS,
    OPT_REPLICAOF,
    OPT_MASTERAUTH,
    OPT_REPL_BACKLOG_SIZE,
    OPT_REPLICA_OUTPUT_LIMIT,
    OPT_REPL_TIMEOUT,
    OPT_REPL_PING_PERIOD
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
    {"requirepass", required_argument, NULL, OPT_REQUIREPASS},
    {"requirepass-file", required_argument, NULL, OPT_REQUIREPASS_FILE},
    {"protected-mode", required_argument, NULL, OPT_PROTECTED_MODE},
    {"max-query-buffer", required_argument, NULL, OPT_MAX_QUERY_BUFFER},
    {"max-output-buffer", required_argument, NULL, OPT_MAX_OUTPUT_BUFFER},
    {"hz", required_argument, NULL, OPT_HZ},
    {"active-expire-effort", required_argument, NULL, OPT_EXPIRE_EFFORT},
    {"maxmemory", required_argument, NULL, OPT_MAXMEMORY},
    {"snapshot-interval", required_argument, NULL, OPT_SNAPSHOT_INTERVAL},
    {"http-addr", required_argument, NULL, OPT_HTTP_ADDR},
    {"http-max-body", required_argument, NULL, OPT_HTTP_MAX_BODY},
    {"http-max-url", required_argument, NULL, OPT_HTTP_MAX_URL},
    {"http-max-headers", required_argument, NULL, OPT_HTTP_MAX_HEADERS},
    {"http-request-timeout", required_argument, NULL, OPT_HTTP_REQUEST_TIMEOUT},
    {"http-keepalive-timeout", required_argument, NULL, OPT_HTTP_KEEPALIVE_TIMEOUT},
    {"http-keepalive-requests", required_argument, NULL, OPT_HTTP_KEEPALIVE_REQUESTS},
    {"replicaof", required_argument, NULL, OPT_REPLICAOF},
    {"masterauth", required_argument, NULL, OPT_MASTERAUTH},
    {"repl-backlog-size", required_argument, NULL, OPT_REPL_BACKLOG_SIZE},
    {"replica-output-buffer-limit", required_argument, NULL, OPT_REPLICA_OUTPUT_LIMIT},
    {"repl-timeout", required_argument, NULL, OPT_REPL_TIMEOUT},
    {"repl-ping-period", required_argument, NULL, OPT_REPL_PING_PERIOD},
    {"version", no_argument, NULL, 'V'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

enum { BYTES_OK = 0, BYTES_BAD = -1, BYTES_TOO_LARGE = -2 };

/* A size in bytes as Redis writes them: digits, then optionally k, kb, m,
   mb, g or gb (k = 1000, kb = 1024, and so on), any case. Returns
   BYTES_OK; BYTES_BAD for anything else (a sign, a blank, a fraction, an
   unknown unit); or BYTES_TOO_LARGE for a size over max, also one that
   does not even fit in 64 bits (it is never wrapped). */
static int parse_bytes(const char *text, unsigned long long max, unsigned long long *out)
{
    static const struct {
        const char *suffix;
        unsigned long long unit;
    } units[] = {
        {"", 1},        {"b", 1},         {"k", 1000},       {"kb", 1024},
        {"m", 1000000}, {"mb", 1u << 20}, {"g", 1000000000}, {"gb", 1u << 30},
    };
    size_t digits = strspn(text, "0123456789");
    if (digits == 0)
        return BYTES_BAD;
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (strcasecmp(text + digits, units[i].suffix) != 0)
            continue;
        errno = 0;
        unsigned long long v = strtoull(text, NULL, 10);
        if (errno == ERANGE || v > max / units[i].unit)
            return BYTES_TOO_LARGE;
        *out = v * units[i].unit;
        return BYTES_OK;
    }
    return BYTES_BAD;
}

/* --max-query-buffer and --max-output-buffer: a size of at least 1mb (or
   0, meaning no limit, when zero_ok) and at most MAX_BUFFER_LIMIT.
   Returns 0, or -1 after printing why. */
static int set_buffer_limit(const char *opt, const char *val, bool zero_ok, size_t *out)
{
    unsigned long long bytes = 0;
    int rc = parse_bytes(val, MAX_BUFFER_LIMIT, &bytes);
    if (rc == BYTES_TOO_LARGE) {
        bad("invalid %s '%s': too large (at most %llu bytes)", opt, val, MAX_BUFFER_LIMIT);
        return -1;
    }
    if (rc != BYTES_OK || (bytes < MIN_BUFFER_LIMIT && !(zero_ok && bytes == 0))) {
        bad("invalid %s '%s': expected %sa size of at least 1mb", opt, val, zero_ok ? "0 or " : "");
        return -1;
    }
    *out = (size_t)bytes;
    return 0;
}

static void drop_password(struct server_config *cfg)
{
    if (cfg->requirepass) {
        explicit_bzero(cfg->requirepass, cfg->requirepass_len);
        free(cfg->requirepass);
    }
    cfg->requirepass = NULL;
    cfg->requirepass_len = 0;
}

static int set_password(struct server_config *cfg, const char *pass, size_t len)
{
    drop_password(cfg);
    if (len == 0)
        return 0; /* as Redis's requirepass "": no password */
    cfg->requirepass = malloc(len + 1);
    if (!cfg->requirepass) {
        bad("out of memory");
        return -1;
    }
    memcpy(cfg->requirepass, pass, len);
    cfg->requirepass[len] = '\0';
    cfg->requirepass_len = len;
    return 0;
}

/* The password is the file's first line, without its line end. */
static int read_password_file(struct server_config *cfg, const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        bad("cannot read --requirepass-file '%s': %s", path, strerror(errno));
        return -1;
    }
    char *text = malloc(MAX_PASSWORD_FILE + 1);
    size_t len = text ? fread(text, 1, MAX_PASSWORD_FILE + 1, f) : 0;
    bool failed = !text || ferror(f);
    fclose(f);
    int rc = -1;
    if (failed) {
        bad("cannot read --requirepass-file '%s'", path);
    } else if (len > MAX_PASSWORD_FILE) {
        bad("--requirepass-file '%s' is over %u bytes", path, MAX_PASSWORD_FILE);
    } else {
        char *nl = memchr(text, '\n', len);
        if (nl)
            len = (size_t)(nl - text);
        if (len && text[len - 1] == '\r')
            len--;
        if (len == 0)
            bad("--requirepass-file '%s' holds no password", path);
        else
            rc = set_password(cfg, text, len);
    }
    if (text) {
        explicit_bzero(text, MAX_PASSWORD_FILE + 1);
        free(text);
    }
    return rc;
}

static int set_http_addr(struct server_config *cfg, const char *text)
{
    if (kvs_addr_parse(text, &cfg->http_addr, &cfg->http_addr_len) != 0 ||
        kvs_addr_format((const struct sockaddr *)&cfg->http_addr, cfg->http_addr_len,
                        cfg->http_addr_text, sizeof(cfg->http_addr_text)) != 0) {
        bad("invalid --http-addr '%s': expected IP:PORT or [IPv6]:PORT", text);
        cfg->http_addr_len = 0;
        return -1;
    }
    return 0;
}

/* An HTTP size option: a size as parse_bytes() takes it, from 1kb to max. */
static int set_http_size(const char *opt, const char *val, unsigned long long max,
                         unsigned long long *out)
{
    unsigned long long bytes = 0;
    if (parse_bytes(val, max, &bytes) != BYTES_OK || bytes < 1024) {
        bad("invalid %s '%s': expected a size from 1kb to %llu bytes", opt, val, max);
        return -1;
    }
    *out = bytes;
    return 0;
}

/* The HTTP options; returns 0, or -1 after printing why. */
static int apply_http(struct server_config *cfg, int opt, const char *val)
{
    unsigned long long bytes = 0;
    switch (opt) {
    case OPT_HTTP_ADDR:
        return set_http_addr(cfg, val);
    case OPT_HTTP_MAX_BODY:
        if (set_http_size("--http-max-body", val, MAX_BUFFER_LIMIT, &bytes) != 0)
            return -1;
        cfg->http_max_body = (size_t)bytes;
        return 0;
    case OPT_HTTP_MAX_URL:
        if (set_http_size("--http-max-url", val, MAX_HTTP_HEAD, &bytes) != 0)
            return -1;
        cfg->http_max_url = (unsigned)bytes;
        return 0;
    case OPT_HTTP_MAX_HEADERS:
        if (set_http_size("--http-max-headers", val, MAX_HTTP_HEAD, &bytes) != 0)
            return -1;
        cfg->http_max_headers = (unsigned)bytes;
        return 0;
    case OPT_HTTP_REQUEST_TIMEOUT:
    case OPT_HTTP_KEEPALIVE_TIMEOUT: {
        bool request = opt == OPT_HTTP_REQUEST_TIMEOUT;
        unsigned *out = request ? &cfg->http_request_timeout : &cfg->http_keepalive_timeout;
        if (parse_uint(val, 1, 86400, out) != 0) {
            bad("invalid --http-%s-timeout '%s': expected 1 to 86400 seconds",
                request ? "request" : "keepalive", val);
            return -1;
        }
        return 0;
    }
    case OPT_HTTP_KEEPALIVE_REQUESTS:
        if (parse_uint(val, 1, 1000000000, &cfg->http_keepalive_requests) != 0) {
            bad("invalid --http-keepalive-requests '%s': expected 1 to 1000000000", val);
            return -1;
        }
        return 0;
    }
    return -1;
}

/* --replicaof HOST:PORT ([IPv6]:PORT too); host is kept in argv. */
static int set_replicaof(struct server_config *cfg, char *val)
{
    char *colon = strrchr(val, ':');
    unsigned port;
    if (!colon || colon == val || parse_uint(colon + 1, 1, 65535, &port) != 0) {
        bad("invalid --replicaof '%s': expected HOST:PORT", val);
        return -1;
    }
    *colon = '\0';
    if (val[0] == '[' && colon[-1] == ']') {
        colon[-1] = '\0';
        val++;
    }
    cfg->replicaof_host = val;
    cfg->replicaof_port = port;
    return 0;
}

/* The replication options; returns 0, or -1 after printing why. */
static int apply_repl(struct server_config *cfg, int opt, const char *val)
{
    unsigned long long bytes = 0;
    switch (opt) {
    case OPT_REPLICAOF:
        return set_replicaof(cfg, (char *)val);
    case OPT_MASTERAUTH:
        free(cfg->masterauth);
        cfg->masterauth = strdup(val);
        if (!cfg->masterauth) {
            bad("out of memory");
            return -1;
        }
        memset((char *)val, 'x', strlen(val)); /* out of /proc/PID/cmdline */
        return 0;
    case OPT_REPL_BACKLOG_SIZE:
    case OPT_REPLICA_OUTPUT_LIMIT: {
        bool backlog = opt == OPT_REPL_BACKLOG_SIZE;
        const char *name = backlog ? "--repl-backlog-size" : "--replica-output-buffer-limit";
        if (parse_bytes(val, MAX_BUFFER_LIMIT, &bytes) != BYTES_OK || bytes < 16384) {
            bad("invalid %s '%s': expected a size of at least 16kb", name, val);
            return -1;
        }
        *(backlog ? &cfg->repl_backlog_size : &cfg->replica_output_limit) = bytes;
        return 0;
    }
    case OPT_REPL_TIMEOUT:
    case OPT_REPL_PING_PERIOD: {
        bool timeout = opt == OPT_REPL_TIMEOUT;
        if (parse_uint(val, 1, 3600, timeout ? &cfg->repl_timeout : &cfg->repl_ping_period) != 0) {
            bad("invalid --repl-%s '%s': expected 1 to 3600 seconds",
                timeout ? "timeout" : "ping-period", val);
            return -1;
        }
        return 0;
    }
    }
    return -1;
}

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
    case OPT_REQUIREPASS:
        if (set_password(cfg, val, strlen(val)) != 0)
            return -1;
        /* Out of /proc/PID/cmdline from now on; ps may have seen it
           already, hence --requirepass-file. */
        memset((char *)val, 'x', strlen(val));
        return 0;
    case OPT_REQUIREPASS_FILE:
        return read_password_file(cfg, val);
    case OPT_PROTECTED_MODE:
        if (strcasecmp(val, "yes") != 0 && strcasecmp(val, "no") != 0) {
            bad("invalid --protected-mode '%s': expected yes or no", val);
            return -1;
        }
        cfg->protected_mode = strcasecmp(val, "yes") == 0;
        return 0;
    case OPT_MAX_QUERY_BUFFER:
        return set_buffer_limit("--max-query-buffer", val, false, &cfg->max_query_buffer);
    case OPT_MAX_OUTPUT_BUFFER:
        return set_buffer_limit("--max-output-buffer", val, true, &cfg->max_output_buffer);
    case OPT_HZ:
        if (parse_uint(val, 1, 500, &cfg->hz) != 0) {
            bad("invalid --hz '%s': expected 1 to 500", val);
            return -1;
        }
        return 0;
    case OPT_EXPIRE_EFFORT:
        if (parse_uint(val, 1, 10, &cfg->expire_effort) != 0) {
            bad("invalid --active-expire-effort '%s': expected 1 to 10", val);
            return -1;
        }
        return 0;
    case OPT_MAXMEMORY: {
        unsigned long long bytes = 0;
        int rc = parse_bytes(val, MAX_MAXMEMORY, &bytes);
        if (rc != BYTES_OK || (bytes != 0 && bytes < MIN_MAXMEMORY)) {
            bad("invalid --maxmemory '%s': expected 0 or a size from 1mb to 64tb", val);
            return -1;
        }
        cfg->maxmemory = bytes;
        return 0;
    }
    case OPT_SNAPSHOT_INTERVAL:
        if (parse_uint(val, 0, 100u * 365 * 86400, &cfg->snapshot_interval) != 0) {
            bad("invalid --snapshot-interval '%s': expected seconds, 0 for none", val);
            return -1;
        }
        return 0;
    }
    if (opt >= OPT_REPLICAOF)
        return apply_repl(cfg, opt, val);
    return apply_http(cfg, opt, val);
}

static enum config_result parse(struct server_config *cfg, int argc, char **argv)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->data_dir = DEFAULT_DATA_DIR;
    cfg->fsync = KVS_FSYNC_EVERYSEC;
    cfg->threads = default_threads();
    cfg->maxclients = DEFAULT_MAXCLIENTS;
    cfg->log_level = LVL_INFO;
    cfg->protected_mode = true;
    cfg->max_query_buffer = DEFAULT_MAX_QUERY_BUFFER;
    cfg->max_output_buffer = DEFAULT_MAX_OUTPUT_BUFFER;
    cfg->hz = 10;
    cfg->expire_effort = 1;
    cfg->snapshot_interval = DEFAULT_SNAPSHOT_INTERVAL;
    cfg->http_max_body = DEFAULT_HTTP_MAX_BODY;
    cfg->http_max_url = DEFAULT_HTTP_MAX_URL;
    cfg->http_max_headers = DEFAULT_HTTP_MAX_HEADERS;
    cfg->http_request_timeout = DEFAULT_HTTP_REQUEST_TIMEOUT;
    cfg->http_keepalive_timeout = DEFAULT_HTTP_KEEPALIVE_TIMEOUT;
    cfg->http_keepalive_requests = DEFAULT_HTTP_KEEPALIVE_REQUESTS;
    cfg->repl_backlog_size = 1ull << 20;      /* Redis's repl-backlog-size */
    cfg->replica_output_limit = 256ull << 20; /* Redis's client-output-buffer-limit replica */
    cfg->repl_timeout = 60;
    cfg->repl_ping_period = 10;
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

enum config_result config_parse(struct server_config *cfg, int argc, char **argv)
{
    enum config_result r = parse(cfg, argc, argv);
    if (r != CONFIG_OK)
        config_free(cfg);
    return r;
}

void config_free(struct server_config *cfg)
{
    drop_password(cfg);
    if (cfg->masterauth)
        explicit_bzero(cfg->masterauth, strlen(cfg->masterauth));
    free(cfg->masterauth);
    cfg->masterauth = NULL;
}
