/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The options of kvs-server (config_internal.h): how each one is parsed,
 * printed and, for some, changed while the server runs.
 *
 * Every value is checked before a socket or a file is touched, so that a
 * mistyped option costs nothing and explains itself in one line. Reasons
 * are worded as Redis words CONFIG SET's ("argument must be between 1 and
 * 500 inclusive"), since CONFIG SET shows them too.
 */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <unistd.h>

#include "auth.h"
#include "config_internal.h"
#include "repl.h"

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
#define SECONDS_MAX (100u * 365 * 86400)

_Static_assert(sizeof(size_t) == sizeof(unsigned long long), "64-bit sizes");

#define WHY(...) snprintf(why, size, __VA_ARGS__)

char *config_keep(struct server_config *cfg, const char *s, size_t len)
{
    char **owned = realloc(cfg->owned, sizeof(*owned) * (cfg->nowned + 1));
    if (!owned)
        return NULL;
    cfg->owned = owned;
    char *copy = malloc(len + 1);
    if (!copy)
        return NULL;
    memcpy(copy, s, len);
    copy[len] = '\0';
    cfg->owned[cfg->nowned++] = copy;
    return copy;
}

/* ---- parsing helpers ---- */

/* A decimal number in [lo, hi], digits only. */
static int parse_uint(const char *text, unsigned long long lo, unsigned long long hi,
                      unsigned long long *out, char *why, size_t size)
{
    bool negative = text[0] == '-' && text[1];
    const char *digits = negative ? text + 1 : text;
    if (!*digits || strspn(digits, "0123456789") != strlen(digits)) {
        WHY("argument couldn't be parsed into an integer");
        return -1;
    }
    if (negative) {
        WHY("argument must be between %llu and %llu inclusive", lo, hi);
        return -1;
    }
    errno = 0;
    unsigned long long v = strtoull(text, NULL, 10);
    if (errno || v < lo || v > hi) {
        WHY("argument must be between %llu and %llu inclusive", lo, hi);
        return -1;
    }
    *out = v;
    return 0;
}

static int parse_unsigned(const char *text, unsigned lo, unsigned hi, unsigned *out, char *why,
                          size_t size)
{
    unsigned long long v;
    if (parse_uint(text, lo, hi, &v, why, size) != 0)
        return -1;
    *out = (unsigned)v;
    return 0;
}

/* A size in bytes as Redis writes them: digits, then optionally k, kb, m,
   mb, g or gb (k = 1000, kb = 1024, and so on), any case. Returns 0 or
   -1 with why: not a size, or over max (also one that does not fit in
   64 bits: it is never wrapped). */
static int parse_bytes(const char *text, unsigned long long max, unsigned long long *out, char *why,
                       size_t size)
{
    static const struct {
        const char *suffix;
        unsigned long long unit;
    } units[] = {
        {"", 1},        {"b", 1},         {"k", 1000},       {"kb", 1024},
        {"m", 1000000}, {"mb", 1u << 20}, {"g", 1000000000}, {"gb", 1u << 30},
    };
    size_t digits = strspn(text, "0123456789");
    for (size_t i = 0; digits && i < sizeof(units) / sizeof(units[0]); i++) {
        if (strcasecmp(text + digits, units[i].suffix) != 0)
            continue;
        errno = 0;
        unsigned long long v = strtoull(text, NULL, 10);
        if (errno == ERANGE || v > max / units[i].unit) {
            WHY("too large (at most %llu bytes)", max);
            return -1;
        }
        *out = v * units[i].unit;
        return 0;
    }
    WHY("argument must be a memory value");
    return -1;
}

/* A size from lo to max bytes, or 0 when zero_ok. */
static int parse_size(const char *text, unsigned long long lo, unsigned long long max, bool zero_ok,
                      unsigned long long *out, char *why, size_t size)
{
    if (parse_bytes(text, max, out, why, size) != 0)
        return -1;
    if (*out < lo && !(zero_ok && *out == 0)) {
        WHY("expected %sa size of at least %llu%s", zero_ok ? "0 or " : "",
            lo >= 1024 ? lo / 1024 : lo, lo >= 1024 ? "kb" : " bytes");
        return -1;
    }
    return 0;
}

static int parse_yesno(const char *text, bool *out, char *why, size_t size)
{
    if (strcasecmp(text, "yes") != 0 && strcasecmp(text, "no") != 0) {
        WHY("argument must be 'yes' or 'no'");
        return -1;
    }
    *out = strcasecmp(text, "yes") == 0;
    return 0;
}

/* A value without NUL bytes inside, for options that keep C strings. */
static int no_nul(const char *val, size_t len, char *why, size_t size)
{
    if (strlen(val) != len) {
        WHY("argument must not hold NUL bytes");
        return -1;
    }
    return 0;
}

/* ---- printing helpers ---- */

static bool put_u(struct text *out, unsigned long long v)
{
    text_printf(out, "%llu", v);
    return true;
}

static bool put_s(struct text *out, const char *s)
{
    text_append(out, s, strlen(s));
    return true;
}

/* ---- addresses: addr, bind, port, http-addr ---- */

/* Parse text into *ss and its numeric text; a host name is resolved, to
   the first address the resolver gives. */
static int parse_addr(const char *text, struct sockaddr_storage *ss, socklen_t *len, char *out,
                      size_t out_size, char *why, size_t size)
{
    size_t n = 0;
    if (kvs_addr_resolve(text, ss, len, 1, &n, why, size) != 0)
        return -1;
    if (kvs_addr_format((const struct sockaddr *)ss, *len, out, out_size) != 0) {
        WHY("expected IP:PORT, [IPv6]:PORT or HOST:PORT");
        return -1;
    }
    return 0;
}

/* The host and port of a formatted address ("[::1]:4000" -> "::1", 4000). */
static void split_addr(const char *text, char *host, size_t host_size, unsigned *port)
{
    const char *colon = strrchr(text, ':');
    size_t n = colon ? (size_t)(colon - text) : strlen(text);
    if (n >= 2 && text[0] == '[' && text[n - 1] == ']') {
        text++;
        n -= 2;
    }
    snprintf(host, host_size, "%.*s", (int)n, text);
    *port = colon ? (unsigned)strtoul(colon + 1, NULL, 10) : 0;
}

static int set_main_addr(struct server_config *cfg, const char *text, char *why, size_t size)
{
    return parse_addr(text, &cfg->addr, &cfg->addr_len, cfg->addr_text, sizeof(cfg->addr_text), why,
                      size);
}

static int set_addr(struct server_config *cfg, int argc, char **argv, const size_t *len, char *why,
                    size_t size)
{
    (void)argc;
    (void)len;
    return set_main_addr(cfg, argv[0], why, size);
}

static bool get_addr(const struct server_config *cfg, struct server *srv, struct text *out)
{
    (void)srv;
    return put_s(out, cfg->addr_text);
}

/* bind ADDR [ADDR ...]: Redis listens on each; kvs on one, the first
   (Redis's "-" prefix, "optional address", is dropped; "*" is any IPv4
   address and "::*" any IPv6 one). */
static int set_bind(struct server_config *cfg, int argc, char **argv, const size_t *len, char *why,
                    size_t size)
{
    (void)len;
    const char *ip = argv[0][0] == '-' ? argv[0] + 1 : argv[0];
    if (strcmp(ip, "*") == 0)
        ip = "0.0.0.0";
    else if (strcmp(ip, "::*") == 0)
        ip = "::";
    char host[KVS_ADDR_STRLEN], text[KVS_ADDR_STRLEN + 8];
    unsigned port;
    split_addr(cfg->addr_text, host, sizeof(host), &port);
    snprintf(text, sizeof(text), strchr(ip, ':') ? "[%s]:%u" : "%s:%u", ip, port);
    if (set_main_addr(cfg, text, why, size) != 0)
        return -1;
    for (int i = 1; i < argc; i++)
        log_warn("bind: kvs listens on one address, %s; '%s' is ignored", ip, argv[i]);
    return 0;
}

static bool get_bind(const struct server_config *cfg, struct server *srv, struct text *out)
{
    (void)srv;
    char host[KVS_ADDR_STRLEN];
    unsigned port;
    split_addr(cfg->addr_text, host, sizeof(host), &port);
    return put_s(out, host);
}

static int set_port(struct server_config *cfg, int argc, char **argv, const size_t *len, char *why,
                    size_t size)
{
    (void)argc;
    (void)len;
    unsigned port;
    if (parse_unsigned(argv[0], 1, 65535, &port, why, size) != 0)
        return -1;
    char host[KVS_ADDR_STRLEN], text[KVS_ADDR_STRLEN + 8];
    unsigned old;
    split_addr(cfg->addr_text, host, sizeof(host), &old);
    snprintf(text, sizeof(text), strchr(host, ':') ? "[%s]:%u" : "%s:%u", host, port);
    return set_main_addr(cfg, text, why, size);
}

static bool get_port(const struct server_config *cfg, struct server *srv, struct text *out)
{
    (void)srv;
    char host[KVS_ADDR_STRLEN];
    unsigned port;
    split_addr(cfg->addr_text, host, sizeof(host), &port);
    return put_u(out, port);
}

static int set_http_addr(struct server_config *cfg, int argc, char **argv, const size_t *len,
                         char *why, size_t size)
{
    (void)argc;
    (void)len;
    if (parse_addr(argv[0], &cfg->http_addr, &cfg->http_addr_len, cfg->http_addr_text,
                   sizeof(cfg->http_addr_text), why, size) != 0) {
        cfg->http_addr_len = 0;
        return -1;
    }
    return 0;
}

static bool get_http_addr(const struct server_config *cfg, struct server *srv, struct text *out)
{
    (void)srv;
    return cfg->http_addr_len ? put_s(out, cfg->http_addr_text) : false;
}

/* ---- the store ---- */

/* Registered engine names as "kvs, lmdb". */
static void engine_names(char *out, size_t size)
{
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < kvs_engine_count() && used < size; i++)
        used += (size_t)snprintf(out + used, size - used, "%s%s", i ? ", " : "",
                                 kvs_engine_name(kvs_engine_at(i)));
}

static int set_engine(struct server_config *cfg, int argc, char **argv, const size_t *len,
                      char *why, size_t size)
{
    (void)argc;
    char names[128];
    if (!kvs_engine_find(argv[0])) {
        engine_names(names, sizeof(names));
        WHY("unknown engine '%s' (available: %s)", argv[0], names);
        return -1;
    }
    cfg->engine = config_keep(cfg, argv[0], len[0]);
    return cfg->engine ? 0 : (WHY("out of memory"), -1);
}

/* The engine of the open store; before it opens, the one asked for. */
static bool get_engine(const struct server_config *cfg, struct server *srv, struct text *out)
{
    if (srv && srv->engine_name)
        return put_s(out, srv->engine_name);
    return put_s(out, cfg->engine ? cfg->engine : "");
}

static int set_dir(struct server_config *cfg, int argc, char **argv, const size_t *len, char *why,
                   size_t size)
{
    (void)argc;
    if (len[0] == 0 || no_nul(argv[0], len[0], why, size) != 0) {
        if (len[0] == 0)
            WHY("a directory is needed");
        return -1;
    }
    cfg->data_dir = config_keep(cfg, argv[0], len[0]);
    return cfg->data_dir ? 0 : (WHY("out of memory"), -1);
}

/* As Redis: the absolute path, once the directory exists. */
static bool get_dir(const struct server_config *cfg, struct server *srv, struct text *out)
{
    char abs[PATH_MAX];
    if (srv && realpath(cfg->data_dir, abs))
        return put_s(out, abs);
    return put_s(out, cfg->data_dir);
}

static int set_fsync(struct server_config *cfg, int argc, char **argv, const size_t *len, char *why,
                     size_t size)
{
    (void)argc;
    (void)len;
    if (kvs_fsync_parse(argv[0], &cfg->fsync) != 0) {
        WHY("argument(s) must be one of the following: always, everysec, no");
        return -1;
    }
    return 0;
}

static bool get_fsync(const struct server_config *cfg, struct server *srv, struct text *out)
{
    (void)srv;
    return put_s(out, kvs_fsync_name(cfg->fsync));
}

static const char *const io_backend_names[] = {"auto", "io_uring", "epoll"};

static int set_io_backend(struct server_config *cfg, int argc, char **argv, const size_t *len,
                          char *why, size_t size)
{
    (void)argc;
    (void)len;
    for (size_t i = 0; i < sizeof(io_backend_names) / sizeof(io_backend_names[0]); i++) {
        if (strcasecmp(argv[0], io_backend_names[i]) == 0) {
            cfg->io_backend = (enum io_backend)i;
            return 0;
        }
    }
    WHY("argument(s) must be one of the following: auto, io_uring, epoll");
    return -1;
}

static bool get_io_backend(const struct server_config *cfg, struct server *srv, struct text *out)
{
    (void)srv;
    return put_s(out, io_backend_names[cfg->io_backend]);
}

/* ---- numbers: a generic getter and setter over a field ---- */

#define UNSIGNED_OPTION(opt, field, lo, hi)                                                        \
    static int set_##opt(struct server_config *cfg, int argc, char **argv, const size_t *len,      \
                         char *why, size_t size)                                                   \
    {                                                                                              \
        (void)argc;                                                                                \
        (void)len;                                                                                 \
        return parse_unsigned(argv[0], lo, hi, &cfg->field, why, size);                            \
    }                                                                                              \
    static bool get_##opt(const struct server_config *cfg, struct server *srv, struct text *out)   \
    {                                                                                              \
        (void)srv;                                                                                 \
        return put_u(out, cfg->field);                                                             \
    }

UNSIGNED_OPTION(threads, threads, 1, MAX_THREADS)
UNSIGNED_OPTION(snapshot_interval, snapshot_interval, 0, SECONDS_MAX)
UNSIGNED_OPTION(http_request_timeout, http_request_timeout, 1, 86400)
UNSIGNED_OPTION(http_keepalive_timeout, http_keepalive_timeout, 1, 86400)
UNSIGNED_OPTION(http_keepalive_requests, http_keepalive_requests, 1, 1000000000)
UNSIGNED_OPTION(repl_timeout, repl_timeout, 1, 3600)
UNSIGNED_OPTION(repl_ping_period, repl_ping_period, 1, 3600)

/* A size in bytes with Redis's units (parse_size), into a field of any
   unsigned type that holds hi. */
#define SIZE_OPTION(opt, field, lo, hi, zero_ok)                                                   \
    static int set_##opt(struct server_config *cfg, int argc, char **argv, const size_t *len,      \
                         char *why, size_t size)                                                   \
    {                                                                                              \
        (void)argc;                                                                                \
        (void)len;                                                                                 \
        unsigned long long v;                                                                      \
        if (parse_size(argv[0], lo, hi, zero_ok, &v, why, size) != 0)                              \
            return -1;                                                                             \
        cfg->field = v;                                                                            \
        return 0;                                                                                  \
    }                                                                                              \
    static bool get_##opt(const struct server_config *cfg, struct server *srv, struct text *out)   \
    {                                                                                              \
        (void)srv;                                                                                 \
        return put_u(out, cfg->field);                                                             \
    }

SIZE_OPTION(maxmemory, maxmemory, MIN_MAXMEMORY, MAX_MAXMEMORY, true)
SIZE_OPTION(http_max_body, http_max_body, 1024, MAX_BUFFER_LIMIT, false)
SIZE_OPTION(http_max_url, http_max_url, 1024, MAX_HTTP_HEAD, false)
SIZE_OPTION(http_max_headers, http_max_headers, 1024, MAX_HTTP_HEAD, false)
SIZE_OPTION(backlog, repl_backlog_size, 16384, MAX_BUFFER_LIMIT, false)
SIZE_OPTION(replica_limit, replica_output_limit, 16384, MAX_BUFFER_LIMIT, false)

/* The same for the live ones, whose fields are atomics. */
#define LIVE_UNSIGNED_OPTION(opt, field, lo, hi)                                                   \
    static int set_##opt(struct server_config *cfg, int argc, char **argv, const size_t *len,      \
                         char *why, size_t size)                                                   \
    {                                                                                              \
        (void)argc;                                                                                \
        (void)len;                                                                                 \
        unsigned v;                                                                                \
        if (parse_unsigned(argv[0], lo, hi, &v, why, size) != 0)                                   \
            return -1;                                                                             \
        atomic_store(&cfg->field, v);                                                              \
        return 0;                                                                                  \
    }                                                                                              \
    static int live_##opt(struct server *srv, const char *val, size_t len, bool apply, char *why,  \
                          size_t size)                                                             \
    {                                                                                              \
        (void)len;                                                                                 \
        unsigned v;                                                                                \
        if (parse_unsigned(val, lo, hi, &v, why, size) != 0)                                       \
            return -1;                                                                             \
        if (apply)                                                                                 \
            atomic_store(&srv->cfg.field, v);                                                      \
        return 0;                                                                                  \
    }                                                                                              \
    static bool get_##opt(const struct server_config *cfg, struct server *srv, struct text *out)   \
    {                                                                                              \
        (void)srv;                                                                                 \
        return put_u(out, atomic_load(&cfg->field));                                               \
    }

LIVE_UNSIGNED_OPTION(hz, hz, 1, 500)
LIVE_UNSIGNED_OPTION(expire_effort, expire_effort, 1, 10)

/* maxclients and timeout: the server's atomics once it runs. */
static int set_maxclients(struct server_config *cfg, int argc, char **argv, const size_t *len,
                          char *why, size_t size)
{
    (void)argc;
    (void)len;
    return parse_unsigned(argv[0], 1, 1000000, &cfg->maxclients, why, size);
}

/* The most clients the process's descriptor limit can hold. */
static unsigned long long maxclients_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY)
        return UINT32_MAX;
    /* Descriptors the server needs besides its clients: stdio, the store,
       the listener, two pipe ends per worker; 32 covers them. */
    return rl.rlim_cur > 32 ? (unsigned long long)rl.rlim_cur - 32 : 1;
}

static int live_maxclients(struct server *srv, const char *val, size_t len, bool apply, char *why,
                           size_t size)
{
    (void)len;
    unsigned long long v;
    if (parse_uint(val, 1, maxclients_limit(), &v, why, size) != 0)
        return -1;
    if (apply)
        atomic_store(&srv->maxclients, (unsigned)v);
    return 0;
}

static bool get_maxclients(const struct server_config *cfg, struct server *srv, struct text *out)
{
    return put_u(out, srv ? atomic_load(&srv->maxclients) : cfg->maxclients);
}

static int set_timeout(struct server_config *cfg, int argc, char **argv, const size_t *len,
                       char *why, size_t size)
{
    (void)argc;
    (void)len;
    return parse_unsigned(argv[0], 0, INT32_MAX, &cfg->timeout, why, size);
}

static int live_timeout(struct server *srv, const char *val, size_t len, bool apply, char *why,
                        size_t size)
{
    (void)len;
    unsigned v;
    if (parse_unsigned(val, 0, INT32_MAX, &v, why, size) != 0)
        return -1;
    if (apply)
        atomic_store(&srv->timeout, v);
    return 0;
}

static bool get_timeout(const struct server_config *cfg, struct server *srv, struct text *out)
{
    return put_u(out, srv ? atomic_load(&srv->timeout) : cfg->timeout);
}

/* ---- sizes ---- */

static int set_query_buffer(struct server_config *cfg, int argc, char **argv, const size_t *len,
                            char *why, size_t size)
{
    (void)argc;
    (void)len;
    unsigned long long v;
    if (parse_size(argv[0], MIN_BUFFER_LIMIT, MAX_BUFFER_LIMIT, false, &v, why, size) != 0)
        return -1;
    atomic_store(&cfg->max_query_buffer, (size_t)v);
    return 0;
}

static int live_query_buffer(struct server *srv, const char *val, size_t len, bool apply, char *why,
                             size_t size)
{
    (void)len;
    unsigned long long v;
    if (parse_size(val, MIN_BUFFER_LIMIT, MAX_BUFFER_LIMIT, false, &v, why, size) != 0)
        return -1;
    if (apply)
        atomic_store(&srv->cfg.max_query_buffer, (size_t)v);
    return 0;
}

static bool get_query_buffer(const struct server_config *cfg, struct server *srv, struct text *out)
{
    (void)srv;
    return put_u(out, atomic_load(&cfg->max_query_buffer));
}

static int set_output_buffer(struct server_config *cfg, int argc, char **argv, const size_t *len,
                             char *why, size_t size)
{
    (void)argc;
    (void)len;
    unsigned long long v;
    if (parse_size(argv[0], MIN_BUFFER_LIMIT, MAX_BUFFER_LIMIT, true, &v, why, size) != 0)
        return -1;
    atomic_store(&cfg->max_output_buffer, (size_t)v);
    return 0;
}

/* Applies to the connections made from then on. */
static int live_output_buffer(struct server *srv, const char *val, size_t len, bool apply,
                              char *why, size_t size)
{
    (void)len;
    unsigned long long v;
    if (parse_size(val, MIN_BUFFER_LIMIT, MAX_BUFFER_LIMIT, true, &v, why, size) != 0)
        return -1;
    if (apply)
        atomic_store(&srv->cfg.max_output_buffer, (size_t)v);
    return 0;
}

static bool get_output_buffer(const struct server_config *cfg, struct server *srv, struct text *out)
{
    (void)srv;
    return put_u(out, atomic_load(&cfg->max_output_buffer));
}

/* client-output-buffer-limit CLASS HARD SOFT SECONDS [...], as redis.conf
   writes it: the hard limit of "normal" is max-output-buffer, that of
   "replica" replica-output-buffer-limit; kvs has no soft limits and no
   pub/sub, so those are ignored (with a warning when set). */
static int set_cobl(struct server_config *cfg, int argc, char **argv, const size_t *len, char *why,
                    size_t size)
{
    (void)len;
    if (argc % 4 != 0) {
        WHY("expected CLASS HARD SOFT SECONDS, once or more");
        return -1;
    }
    for (int i = 0; i < argc; i += 4) {
        const char *cls = argv[i];
        bool normal = strcasecmp(cls, "normal") == 0;
        bool replica = strcasecmp(cls, "replica") == 0 || strcasecmp(cls, "slave") == 0;
        if (!normal && !replica && strcasecmp(cls, "pubsub") != 0) {
            WHY("unknown client class '%s'", cls);
            return -1;
        }
        unsigned long long hard, soft, secs;
        if (parse_bytes(argv[i + 1], MAX_BUFFER_LIMIT, &hard, why, size) != 0 ||
            parse_bytes(argv[i + 2], MAX_BUFFER_LIMIT, &soft, why, size) != 0 ||
            parse_uint(argv[i + 3], 0, SECONDS_MAX, &secs, why, size) != 0)
            return -1;
        if (normal && hard && hard < MIN_BUFFER_LIMIT) {
            WHY("kvs needs a hard limit of 0 or at least 1mb for normal clients");
            return -1;
        }
        if (replica && hard < 16384) {
            WHY("kvs needs a hard limit of at least 16kb for replicas");
            return -1;
        }
        if (normal)
            atomic_store(&cfg->max_output_buffer, (size_t)hard);
        else if (replica)
            cfg->replica_output_limit = hard;
        if (!normal && !replica)
            log_warn("client-output-buffer-limit: kvs has no pub/sub; the %s class is ignored",
                     cls);
        else if (soft || secs)
            log_warn("client-output-buffer-limit: kvs has hard limits only; the soft limit of "
                     "the %s class is ignored",
                     cls);
    }
    return 0;
}

static bool get_cobl(const struct server_config *cfg, struct server *srv, struct text *out)
{
    (void)srv;
    text_printf(out, "normal %zu 0 0 replica %llu 0 0 pubsub 33554432 8388608 60",
                atomic_load(&cfg->max_output_buffer), cfg->replica_output_limit);
    return true;
}

/* ---- logging ---- */

/* kvs's levels, and Redis's names for the nearest of them. */
static int parse_level(const char *text, enum log_level *out, char *why, size_t size)
{
    static const struct {
        const char *name;
        enum log_level level;
    } redis[] = {
        {"verbose", LVL_DEBUG},
        {"notice", LVL_INFO},
        {"warning", LVL_WARN},
        {"nothing", LVL_ERROR},
    };
    if (log_level_parse(text, out) == 0)
        return 0;
    for (size_t i = 0; i < sizeof(redis) / sizeof(redis[0]); i++) {
        if (strcasecmp(text, redis[i].name) == 0) {
            *out = redis[i].level;
            return 0;
        }
    }
    WHY("argument(s) must be one of the following: debug, info, warn, error (or Redis's "
        "verbose, notice, warning, nothing)");
    return -1;
}

static int set_loglevel(struct server_config *cfg, int argc, char **argv, const size_t *len,
                        char *why, size_t size)
{
    (void)argc;
    (void)len;
    return parse_level(argv[0], &cfg->log_level, why, size);
}

static int live_loglevel(struct server *srv, const char *val, size_t len, bool apply, char *why,
                         size_t size)
{
    (void)len;
    enum log_level level;
    if (parse_level(val, &level, why, size) != 0)
        return -1;
    if (apply) {
        srv->cfg.log_level = level; /* under config_lock(), for REWRITE */
        log_set_level(level);
    }
    return 0;
}

static bool get_loglevel(const struct server_config *cfg, struct server *srv, struct text *out)
{
    return put_s(out, log_level_name(srv ? log_get_level() : cfg->log_level));
}

/* logfile and pidfile: a path, "" for none (Redis's logfile "" is
   stdout; kvs logs to stderr then). */
static int set_path(const char **field, struct server_config *cfg, const char *val, size_t len,
                    char *why, size_t size)
{
    if (no_nul(val, len, why, size) != 0)
        return -1;
    if (len == 0) {
        *field = NULL;
        return 0;
    }
    *field = config_keep(cfg, val, len);
    return *field ? 0 : (WHY("out of memory"), -1);
}

static int set_logfile(struct server_config *cfg, int argc, char **argv, const size_t *len,
                       char *why, size_t size)
{
    (void)argc;
    return set_path(&cfg->logfile, cfg, argv[0], len[0], why, size);
}

static bool get_logfile(const struct server_config *cfg, struct server *srv, struct text *out)
{
    (void)srv;
    return put_s(out, cfg->logfile ? cfg->logfile : "");
}

static int set_pidfile(struct server_config *cfg, int argc, char **argv, const size_t *len,
                       char *why, size_t size)
{
    (void)argc;
    return set_path(&cfg->pidfile, cfg, argv[0], len[0], why, size);
}

static bool get_pidfile(const struct server_config *cfg, struct server *srv, struct text *out)
{
    (void)srv;
    return put_s(out, cfg->pidfile ? cfg->pidfile : "");
}

/* ---- access ---- */

static int set_requirepass(struct server_config *cfg, int argc, char **argv, const size_t *len,
                           char *why, size_t size)
{
    (void)argc;
    if (len[0] > MAX_PASSWORD_FILE) {
        WHY("a password of at most %u bytes", MAX_PASSWORD_FILE);
        return -1;
    }
    free(cfg->requirepass_file);
    cfg->requirepass_file = NULL;
    if (auth_set_password(cfg, argv[0], len[0]) != 0) {
        WHY("out of memory");
        return -1;
    }
    return 0;
}

static int live_requirepass(struct server *srv, const char *val, size_t len, bool apply, char *why,
                            size_t size)
{
    if (len > MAX_PASSWORD_FILE) {
        WHY("a password of at most %u bytes", MAX_PASSWORD_FILE);
        return -1;
    }
    if (!apply)
        return 0;
    char *argv[] = {(char *)val, NULL};
    return set_requirepass(&srv->cfg, 1, argv, &len, why, size);
}

static bool get_requirepass(const struct server_config *cfg, struct server *srv, struct text *out)
{
    (void)srv;
    char *pass = malloc(MAX_PASSWORD_FILE);
    if (!pass) {
        out->oom = true;
        return true;
    }
    size_t len = auth_password_copy(cfg, pass, MAX_PASSWORD_FILE);
    text_append(out, pass, len <= MAX_PASSWORD_FILE ? len : 0);
    explicit_bzero(pass, MAX_PASSWORD_FILE);
    free(pass);
    return true;
}

/* The password is the file's first line, without its line end. Reads
   it into cfg (and the file's name into cfg->requirepass_file). */
static int read_password_file(struct server_config *cfg, const char *path, char *why, size_t size)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        WHY("cannot read it: %s", strerror(errno));
        return -1;
    }
    char *text = malloc(MAX_PASSWORD_FILE + 1);
    size_t len = text ? fread(text, 1, MAX_PASSWORD_FILE + 1, f) : 0;
    bool failed = !text || ferror(f);
    fclose(f);
    int rc = -1;
    if (failed) {
        WHY("cannot read it");
    } else if (len > MAX_PASSWORD_FILE) {
        WHY("it is over %u bytes", MAX_PASSWORD_FILE);
    } else {
        char *nl = memchr(text, '\n', len);
        if (nl)
            len = (size_t)(nl - text);
        if (len && text[len - 1] == '\r')
            len--;
        char *name = strdup(path);
        if (len == 0) {
            WHY("it holds no password");
        } else if (!name || auth_set_password(cfg, text, len) != 0) {
            WHY("out of memory");
        } else {
            free(cfg->requirepass_file);
            cfg->requirepass_file = name;
            name = NULL;
            rc = 0;
        }
        free(name);
    }
    if (text) {
        explicit_bzero(text, MAX_PASSWORD_FILE + 1);
        free(text);
    }
    return rc;
}

static int set_requirepass_file(struct server_config *cfg, int argc, char **argv, const size_t *len,
                                char *why, size_t size)
{
    (void)argc;
    if (no_nul(argv[0], len[0], why, size) != 0)
        return -1;
    return read_password_file(cfg, argv[0], why, size);
}

/* Reads the file again: a password changed in it takes effect. */
static int live_requirepass_file(struct server *srv, const char *val, size_t len, bool apply,
                                 char *why, size_t size)
{
    if (no_nul(val, len, why, size) != 0)
        return -1;
    if (!apply) {
        if (access(val, R_OK) != 0) {
            WHY("cannot read it: %s", strerror(errno));
            return -1;
        }
        return 0;
    }
    return read_password_file(&srv->cfg, val, why, size);
}

static bool get_requirepass_file(const struct server_config *cfg, struct server *srv,
                                 struct text *out)
{
    (void)srv;
    return cfg->requirepass_file ? put_s(out, cfg->requirepass_file) : false;
}

static int set_protected(struct server_config *cfg, int argc, char **argv, const size_t *len,
                         char *why, size_t size)
{
    (void)argc;
    (void)len;
    bool on;
    if (parse_yesno(argv[0], &on, why, size) != 0)
        return -1;
    atomic_store(&cfg->protected_mode, on);
    return 0;
}

static int live_protected(struct server *srv, const char *val, size_t len, bool apply, char *why,
                          size_t size)
{
    (void)len;
    bool on;
    if (parse_yesno(val, &on, why, size) != 0)
        return -1;
    if (apply)
        atomic_store(&srv->cfg.protected_mode, on);
    return 0;
}

static bool get_protected(const struct server_config *cfg, struct server *srv, struct text *out)
{
    (void)srv;
    return put_s(out, atomic_load(&cfg->protected_mode) ? "yes" : "no");
}

/* ---- replication ---- */

/* HOST PORT (two words, as redis.conf) or HOST:PORT (one, as kvs's
   options; [IPv6]:PORT too) into host (300 bytes) and port. */
static int host_port(int argc, char **argv, char *host, unsigned *port, char *why, size_t size)
{
    if (argc == 2) {
        snprintf(host, 300, "%s", argv[0]);
        if (parse_unsigned(argv[1], 1, 65535, port, why, size) != 0)
            return -1;
    } else {
        const char *colon = strrchr(argv[0], ':');
        unsigned long long p;
        if (!colon || colon == argv[0] || parse_uint(colon + 1, 1, 65535, &p, why, size) != 0) {
            WHY("expected HOST:PORT or HOST PORT");
            return -1;
        }
        *port = (unsigned)p;
        size_t n = (size_t)(colon - argv[0]);
        if (n >= 2 && argv[0][0] == '[' && colon[-1] == ']')
            snprintf(host, 300, "%.*s", (int)(n - 2), argv[0] + 1);
        else
            snprintf(host, 300, "%.*s", (int)n, argv[0]);
    }
    if (!host[0] || strlen(host) >= 256) {
        WHY("expected HOST:PORT or HOST PORT");
        return -1;
    }
    return 0;
}

/* replicaof HOST PORT, as redis.conf; or HOST:PORT, as kvs's --replicaof;
   "no one" for none. */
static int set_replicaof(struct server_config *cfg, int argc, char **argv, const size_t *len,
                         char *why, size_t size)
{
    (void)len;
    if (argc == 2 && strcasecmp(argv[0], "no") == 0 && strcasecmp(argv[1], "one") == 0) {
        cfg->replicaof_host = NULL;
        return 0;
    }
    char host[300];
    unsigned port;
    if (host_port(argc, argv, host, &port, why, size) != 0)
        return -1;
    cfg->replicaof_host = config_keep(cfg, host, strlen(host));
    cfg->replicaof_port = port;
    return cfg->replicaof_host ? 0 : (WHY("out of memory"), -1);
}

/* peer HOST:PORT (or HOST PORT): a primary's backup (repl.h's pair);
   "none" for none. */
static int set_peer(struct server_config *cfg, int argc, char **argv, const size_t *len, char *why,
                    size_t size)
{
    (void)len;
    if (argc == 1 && strcasecmp(argv[0], "none") == 0) {
        cfg->peer_host = NULL;
        return 0;
    }
    char host[300];
    unsigned port;
    if (host_port(argc, argv, host, &port, why, size) != 0)
        return -1;
    cfg->peer_host = config_keep(cfg, host, strlen(host));
    cfg->peer_port = port;
    return cfg->peer_host ? 0 : (WHY("out of memory"), -1);
}

static bool get_peer(const struct server_config *cfg, struct server *srv, struct text *out)
{
    (void)srv;
    if (!cfg->peer_host)
        return false;
    text_printf(out, "%s:%u", cfg->peer_host, cfg->peer_port);
    return true;
}

/* The primary followed now (REPLICAOF may have changed it), as Redis
   shows it: "HOST PORT". */
static bool get_replicaof(const struct server_config *cfg, struct server *srv, struct text *out)
{
    if (!srv || !srv->repl) {
        if (!cfg->replicaof_host)
            return false;
        text_printf(out, "%s %u", cfg->replicaof_host, cfg->replicaof_port);
        return true;
    }
    struct repl *r = srv->repl;
    if (!repl_is_replica(r))
        return false;
    pthread_mutex_lock(&r->lock);
    text_printf(out, "%s %u", r->master_host, r->master_port);
    pthread_mutex_unlock(&r->lock);
    return true;
}

static int set_masterauth(struct server_config *cfg, int argc, char **argv, const size_t *len,
                          char *why, size_t size)
{
    (void)argc;
    if (no_nul(argv[0], len[0], why, size) != 0)
        return -1;
    char *copy = strdup(argv[0]);
    if (!copy) {
        WHY("out of memory");
        return -1;
    }
    if (cfg->masterauth) {
        explicit_bzero(cfg->masterauth, strlen(cfg->masterauth));
        free(cfg->masterauth);
    }
    cfg->masterauth = copy;
    return 0;
}

static bool get_masterauth(const struct server_config *cfg, struct server *srv, struct text *out)
{
    (void)srv;
    return cfg->masterauth ? put_s(out, cfg->masterauth) : put_s(out, "");
}

/* ---- what Redis clients ask for, answered from kvs's settings ---- */

static bool is_volatile(struct server *srv)
{
    return srv && srv->store.db &&
           (kvs_engine_traits(kvs_db_engine(srv->store.db)) & KVS_ENGINE_VOLATILE);
}

/* A snapshot every interval after one change, in Redis's words; none for
   an engine that keeps every write in its files. */
static bool get_save(const struct server_config *cfg, struct server *srv, struct text *out)
{
    if (is_volatile(srv) && cfg->snapshot_interval)
        text_printf(out, "%u 1", cfg->snapshot_interval);
    return true;
}

/* The store is a log on disk unless nothing is synced. */
static bool get_appendonly(const struct server_config *cfg, struct server *srv, struct text *out)
{
    return put_s(out, cfg->fsync == KVS_FSYNC_NO || is_volatile(srv) ? "no" : "yes");
}

static bool get_databases(const struct server_config *cfg, struct server *srv, struct text *out)
{
    (void)cfg;
    (void)srv;
    return put_s(out, "1");
}

static bool get_policy(const struct server_config *cfg, struct server *srv, struct text *out)
{
    (void)cfg;
    (void)srv;
    return put_s(out, "noeviction");
}

/* ---- the table ---- */

/* In the order REWRITE appends them. */
const struct config_option config_options[] = {
    {"addr", NULL, CO_IF_PRESENT, 1, 1, set_addr, NULL, get_addr},
    {"bind", NULL, 0, 1, -1, set_bind, NULL, get_bind},
    {"port", NULL, 0, 1, 1, set_port, NULL, get_port},
    {"engine", NULL, CO_QUOTE, 1, 1, set_engine, NULL, get_engine},
    {"dir", "data-dir", CO_QUOTE, 1, 1, set_dir, NULL, get_dir},
    {"appendfsync", "fsync", 0, 1, 1, set_fsync, NULL, get_fsync},
    {"threads", NULL, 0, 1, 1, set_threads, NULL, get_threads},
    {"io-backend", NULL, 0, 1, 1, set_io_backend, NULL, get_io_backend},
    {"maxclients", NULL, CO_LIVE, 1, 1, set_maxclients, live_maxclients, get_maxclients},
    {"timeout", NULL, CO_LIVE, 1, 1, set_timeout, live_timeout, get_timeout},
    {"loglevel", "log-level", CO_LIVE, 1, 1, set_loglevel, live_loglevel, get_loglevel},
    {"logfile", NULL, CO_QUOTE, 1, 1, set_logfile, NULL, get_logfile},
    {"pidfile", NULL, CO_QUOTE, 1, 1, set_pidfile, NULL, get_pidfile},
    {"requirepass", NULL, CO_LIVE | CO_QUOTE | CO_SECRET, 1, 1, set_requirepass, live_requirepass,
     get_requirepass},
    {"requirepass-file", NULL, CO_LIVE | CO_QUOTE, 1, 1, set_requirepass_file,
     live_requirepass_file, get_requirepass_file},
    {"protected-mode", NULL, CO_LIVE, 1, 1, set_protected, live_protected, get_protected},
    {"client-query-buffer-limit", "max-query-buffer", CO_LIVE, 1, 1, set_query_buffer,
     live_query_buffer, get_query_buffer},
    {"max-output-buffer", NULL, CO_LIVE, 1, 1, set_output_buffer, live_output_buffer,
     get_output_buffer},
    {"client-output-buffer-limit", NULL, CO_IF_PRESENT, 4, -1, set_cobl, NULL, get_cobl},
    {"hz", NULL, CO_LIVE, 1, 1, set_hz, live_hz, get_hz},
    {"active-expire-effort", NULL, CO_LIVE, 1, 1, set_expire_effort, live_expire_effort,
     get_expire_effort},
    {"maxmemory", NULL, 0, 1, 1, set_maxmemory, NULL, get_maxmemory},
    {"snapshot-interval", NULL, 0, 1, 1, set_snapshot_interval, NULL, get_snapshot_interval},
    {"http-addr", NULL, CO_QUOTE, 1, 1, set_http_addr, NULL, get_http_addr},
    {"http-max-body", NULL, 0, 1, 1, set_http_max_body, NULL, get_http_max_body},
    {"http-max-url", NULL, 0, 1, 1, set_http_max_url, NULL, get_http_max_url},
    {"http-max-headers", NULL, 0, 1, 1, set_http_max_headers, NULL, get_http_max_headers},
    {"http-request-timeout", NULL, 0, 1, 1, set_http_request_timeout, NULL,
     get_http_request_timeout},
    {"http-keepalive-timeout", NULL, 0, 1, 1, set_http_keepalive_timeout, NULL,
     get_http_keepalive_timeout},
    {"http-keepalive-requests", NULL, 0, 1, 1, set_http_keepalive_requests, NULL,
     get_http_keepalive_requests},
    {"replicaof", "slaveof", 0, 1, 2, set_replicaof, NULL, get_replicaof},
    {"masterauth", NULL, CO_QUOTE | CO_SECRET, 1, 1, set_masterauth, NULL, get_masterauth},
    {"peer", NULL, 0, 1, 2, set_peer, NULL, get_peer},
    {"repl-backlog-size", NULL, 0, 1, 1, set_backlog, NULL, get_backlog},
    {"replica-output-buffer-limit", NULL, 0, 1, 1, set_replica_limit, NULL, get_replica_limit},
    {"repl-timeout", NULL, 0, 1, 1, set_repl_timeout, NULL, get_repl_timeout},
    {"repl-ping-replica-period", "repl-ping-period", 0, 1, 1, set_repl_ping_period, NULL,
     get_repl_ping_period},
    {"save", NULL, CO_DERIVED, 0, -1, NULL, NULL, get_save},
    {"appendonly", NULL, CO_DERIVED, 0, -1, NULL, NULL, get_appendonly},
    {"databases", NULL, CO_DERIVED, 0, -1, NULL, NULL, get_databases},
    {"maxmemory-policy", NULL, CO_DERIVED, 0, -1, NULL, NULL, get_policy},
};

const size_t config_noptions = sizeof(config_options) / sizeof(config_options[0]);

/* One worker per core but one, at least one: the kernel's network stack,
   the store's background thread and, often, clients on the same host need
   a core too. On 2 cores one worker measured faster at one request per
   round trip than two (docs/performance.md). */
static unsigned default_threads(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN) - 1;
    return n < 1 ? 1 : n > MAX_THREADS ? MAX_THREADS : (unsigned)n;
}

int config_defaults(struct server_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->data_dir = DEFAULT_DATA_DIR;
    cfg->fsync = KVS_FSYNC_EVERYSEC;
    cfg->threads = default_threads();
    /* Measured (docs/performance.md): io_uring costs more CPU per request
       than epoll at one request per round trip, less when pipelined. */
    cfg->io_backend = IO_BACKEND_EPOLL;
    cfg->maxclients = DEFAULT_MAXCLIENTS;
    cfg->log_level = LVL_INFO;
    atomic_init(&cfg->requirepass_len, 0);
    atomic_init(&cfg->protected_mode, true);
    atomic_init(&cfg->max_query_buffer, DEFAULT_MAX_QUERY_BUFFER);
    atomic_init(&cfg->max_output_buffer, DEFAULT_MAX_OUTPUT_BUFFER);
    atomic_init(&cfg->hz, 10);
    atomic_init(&cfg->expire_effort, 1);
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
    char why[128];
    return set_main_addr(cfg, KVS_ADDR_DEFAULT, why, sizeof(why));
}
