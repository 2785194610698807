/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * kvs-server's configuration; see config.h. config_parse() runs on the
 * main thread at startup, the config_opt_* functions on workers under
 * config_lock().
 *
 * The command line is read as Redis reads its own: an optional file
 * first, then "--name value [value ...]" (or "--name=value"), each
 * option a directive of the file, applied after the file's so that the
 * command line wins.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "auth.h"
#include "config_internal.h"

static const char usage[] =
    "Usage: kvs-server [CONFIG_FILE] [--option value ...]\n"
    "Serve a kvs store over the Redis protocol (RESP2).\n"
    "\n"
    "CONFIG_FILE holds \"directive value\" lines in redis.conf's form (# comments,\n"
    "\"double\" or 'single' quotes); each option below is also a directive of the\n"
    "same name without the dashes, and what the command line sets wins. Redis's\n"
    "names are taken where kvs has the same setting; Redis directives kvs has no\n"
    "use for (save, daemonize...) are ignored with a warning.\n"
    "\n"
    "  --addr ADDR           listen on IP:PORT, [IPv6]:PORT or HOST:PORT (a name is\n"
    "                        resolved to its first address; default " KVS_ADDR_DEFAULT ")\n"
    "  --bind IP, --port N   the same in Redis's two parts\n"
    "  --engine NAME         storage engine: %s (default: the one the data\n"
    "                        directory was written by, else kvs)\n"
    "  --dir DIR, --data-dir DIR  data directory, created if missing (default data)\n"
    "  --appendfsync POLICY, --fsync POLICY  always, everysec or no (default everysec)\n"
    "  --threads N           worker threads (default: cores - 1, at least 1)\n"
    "  --io-backend auto|io_uring|epoll  the clients' network I/O: io_uring (one\n"
    "                        system call per loop turn for every reply), epoll\n"
    "                        (libevent), or auto: io_uring when the kernel allows\n"
    "                        it, else epoll (default epoll)\n"
    "  --maxclients N        most clients connected at once (default 10000)\n"
    "  --timeout SECONDS     close clients idle this long; 0 never (default 0)\n"
    "  --requirepass PASS    clients must AUTH with PASS before other commands\n"
    "                        (shown to other local users by ps: prefer the next)\n"
    "  --requirepass-file F  the same, the password being the first line of F\n"
    "  --protected-mode yes|no  with no password, serve only loopback clients\n"
    "                        (default yes)\n"
    "  --client-query-buffer-limit N, --max-query-buffer N  close a client whose\n"
    "                        request reaches N bytes; N may end in kb, mb or gb\n"
    "                        (default 1gb, at least 1mb)\n"
    "  --max-output-buffer N close a client owed more than N bytes of replies;\n"
    "                        0 for no limit (default 256mb, else at least 1mb)\n"
    "  --client-output-buffer-limit CLASS HARD SOFT SECONDS  Redis's form: the\n"
    "                        hard limits of normal and replica clients\n"
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
    "                        or redis-server; see docs/replication.md); in a file\n"
    "                        also \"replicaof HOST PORT\" as redis.conf writes it\n"
    "  --masterauth PASS     the password the primary asks replicas for\n"
    "  --peer HOST:PORT      a primary's backup: a primary that starts with an\n"
    "                        empty store copies the backup's data first (see\n"
    "                        docs/replication.md, the pair)\n"
    "  --repl-backlog-size N bytes of writes kept for replicas that reconnect\n"
    "                        (partial resync); N may end in kb, mb, gb (default 1mb)\n"
    "  --replica-output-buffer-limit N  drop a replica this many bytes behind;\n"
    "                        it then syncs afresh (default 256mb)\n"
    "  --repl-timeout SECONDS  give up a replication link silent this long\n"
    "                        (default 60)\n"
    "  --repl-ping-replica-period SECONDS, --repl-ping-period SECONDS  a primary's\n"
    "                        PING to its replicas (default 10)\n"
    "  --loglevel LEVEL, --log-level LEVEL  debug, info, warn or error (or Redis's\n"
    "                        verbose, notice, warning, nothing; default info)\n"
    "  --logfile FILE        log to FILE instead of stderr (appended; reopened on\n"
    "                        SIGHUP, for log rotation)\n"
    "  --pidfile FILE        write the process id to FILE while running\n"
    "  -V, --version         print the version and exit\n"
    "  -h, --help            print this help and exit\n"
    "\n"
    "CONFIG GET shows every option, CONFIG SET changes those that can change while\n"
    "the server runs (CONFIG HELP lists them), CONFIG REWRITE writes the running\n"
    "configuration back into CONFIG_FILE.\n";

/* Redis directives with no meaning for kvs: taken and ignored, with a
   warning, so that a redis.conf mostly works. REWRITE leaves them. */
static const char *const redis_only[] = {
    "daemonize",
    "supervised",
    "always-show-logo",
    "set-proc-title",
    "proc-title-template",
    "tcp-backlog",
    "tcp-keepalive",
    "unixsocket",
    "unixsocketperm",
    "socket-mark-id",
    "syslog-enabled",
    "syslog-ident",
    "syslog-facility",
    "crash-log-enabled",
    "crash-memcheck-enabled",
    "stop-writes-on-bgsave-error",
    "rdbcompression",
    "rdbchecksum",
    "sanitize-dump-payload",
    "dbfilename",
    "rdb-del-sync-files",
    "appendfilename",
    "appenddirname",
    "no-appendfsync-on-rewrite",
    "auto-aof-rewrite-percentage",
    "auto-aof-rewrite-min-size",
    "aof-load-truncated",
    "aof-use-rdb-preamble",
    "aof-timestamp-enabled",
    "aof-rewrite-incremental-fsync",
    "rdb-save-incremental-fsync",
    "replica-serve-stale-data",
    "replica-read-only",
    "repl-diskless-sync",
    "repl-diskless-sync-delay",
    "repl-diskless-sync-max-replicas",
    "repl-diskless-load",
    "repl-disable-tcp-nodelay",
    "replica-priority",
    "replica-announced",
    "min-replicas-to-write",
    "min-replicas-max-lag",
    "acllog-max-len",
    "maxmemory-samples",
    "maxmemory-eviction-tenacity",
    "replica-ignore-maxmemory",
    "lazyfree-lazy-eviction",
    "lazyfree-lazy-expire",
    "lazyfree-lazy-server-del",
    "replica-lazy-flush",
    "lazyfree-lazy-user-del",
    "lazyfree-lazy-user-flush",
    "io-threads",
    "io-threads-do-reads",
    "oom-score-adj",
    "oom-score-adj-values",
    "disable-thp",
    "lua-time-limit",
    "busy-reply-threshold",
    "cluster-enabled",
    "slowlog-log-slower-than",
    "slowlog-max-len",
    "latency-monitor-threshold",
    "latency-tracking",
    "latency-tracking-info-percentiles",
    "notify-keyspace-events",
    "hash-max-listpack-entries",
    "hash-max-listpack-value",
    "hash-max-ziplist-entries",
    "hash-max-ziplist-value",
    "list-max-listpack-size",
    "list-max-ziplist-size",
    "list-compress-depth",
    "set-max-intset-entries",
    "zset-max-listpack-entries",
    "zset-max-listpack-value",
    "zset-max-ziplist-entries",
    "zset-max-ziplist-value",
    "hll-sparse-max-bytes",
    "stream-node-max-bytes",
    "stream-node-max-entries",
    "activerehashing",
    "dynamic-hz",
    "jemalloc-bg-thread",
    "activedefrag",
    "lfu-log-factor",
    "lfu-decay-time",
    "maxmemory-clients",
    "client-query-buffer-limit-soft",
    "enable-protected-configs",
    "enable-debug-command",
    "enable-module-command",
    "locale-collate",
};

static void bad(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void bad(const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    fprintf(stderr, "kvs-server: %s\n", line);
}

static const struct config_option *find_option(const char *name)
{
    for (size_t i = 0; i < config_noptions; i++) {
        const struct config_option *o = &config_options[i];
        if (strcasecmp(o->name, name) == 0 || (o->alias && strcasecmp(o->alias, name) == 0))
            return o;
    }
    return NULL;
}

static bool redis_only_directive(const char *name)
{
    for (size_t i = 0; i < sizeof(redis_only) / sizeof(redis_only[0]); i++) {
        if (strcasecmp(redis_only[i], name) == 0)
            return true;
    }
    return false;
}

/* One directive, from the file (where is "FILE:LINE: ", shown the name as
   written) or the command line (where "", shown "--name"). Returns 0, or
   -1 after printing why. */
static int apply(struct server_config *cfg, const char *where, const char *name, const char *shown,
                 int argc, char **argv, const size_t *len)
{
    const struct config_option *o = find_option(name);
    if ((o && (o->flags & CO_DERIVED)) || (!o && redis_only_directive(name))) {
        log_warn("%s'%s' is a Redis setting kvs has no use for; ignored", where, shown);
        return 0;
    }
    if (!o) {
        if (strcasecmp(name, "include") == 0)
            bad("%s'include' is not supported: put the settings in one file", where);
        else if (where[0])
            bad("%sunknown directive '%s' (see kvs-server --help)", where, shown);
        else
            bad("unknown option '%s' (see --help)", shown);
        return -1;
    }
    if (argc < o->min_args) {
        bad("%soption '%s' needs a value", where, shown);
        return -1;
    }
    if (o->max_args >= 0 && argc > o->max_args) {
        bad("%soption '%s' takes %d value%s, not %d (next: '%s')", where, shown, o->max_args,
            o->max_args == 1 ? "" : "s", argc, argv[o->max_args]);
        return -1;
    }
    char why[512];
    why[0] = '\0';
    if (o->set(cfg, argc, argv, len, why, sizeof(why)) == 0)
        return 0;
    char value[256];
    size_t used = 0;
    value[0] = '\0';
    for (int i = 0; i < argc && used < sizeof(value); i++)
        used += (size_t)snprintf(value + used, sizeof(value) - used, "%s%s", i ? " " : "", argv[i]);
    bad("%sinvalid %s '%s': %s", where, shown, value, why);
    return -1;
}

/* The file's directives, in order. Returns 0 or -1 after printing why. */
static int apply_file(struct server_config *cfg, const char *path)
{
    size_t len;
    char *text = config_read(path, &len);
    if (!text) {
        bad("cannot read the configuration file '%s': %s", path, strerror(errno));
        return -1;
    }
    int rc = 0;
    unsigned lineno = 0;
    for (const char *p = text, *end = text + len; p < end && rc == 0;) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        const char *line = p;
        p = nl ? nl + 1 : end;
        lineno++;
        size_t skip = strspn(line, " \t\r");
        if (skip >= n || line[skip] == '#')
            continue;
        char where[PATH_MAX + 32];
        snprintf(where, sizeof(where), "%s:%u: ", path, lineno);
        struct config_args a;
        int split = config_split(line, n, &a);
        if (split == -1) {
            bad("%sunbalanced quotes", where);
            rc = -1;
        } else if (split != 0) {
            bad("out of memory");
            rc = -1;
        } else if (a.argc > 0) {
            rc = apply(cfg, where, a.argv[0], a.argv[0], a.argc - 1, a.argv + 1, a.len + 1);
            if (rc == 0 && find_option(a.argv[0]) && (find_option(a.argv[0])->flags & CO_SECRET)) {
                for (int i = 1; i < a.argc; i++)
                    explicit_bzero(a.argv[i], a.len[i]);
            }
        }
        config_args_free(&a);
    }
    explicit_bzero(text, len);
    free(text);
    return rc;
}

/* The command line's options, as spans of argv: --name then its values,
   up to the next argument starting with "--". */
struct cli_option {
    int at;    /* index of --name in argv */
    int nvals; /* values after it (a value given as --name=value: 1) */
};

/* Whether a command-line argument starts an option rather than being a
   value: "--name", or a dash and one letter ("-h", "-V", a mistyped
   short option). "-1" and "-::1" are values. */
static bool looks_like_option(const char *arg)
{
    if (arg[0] != '-')
        return false;
    if (arg[1] == '-')
        return arg[2] != '\0';
    return ((arg[1] >= 'a' && arg[1] <= 'z') || (arg[1] >= 'A' && arg[1] <= 'Z')) && !arg[2];
}

/* Split argv[first..] into options. Returns CONFIG_OK, CONFIG_EXIT after
   --help or --version, or CONFIG_BAD after printing why. */
static enum config_result scan_cli(int argc, char **argv, int first, struct cli_option *opts,
                                   int *nopts)
{
    *nopts = 0;
    for (int i = first; i < argc;) {
        const char *arg = argv[i];
        if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
            char names[128];
            size_t used = 0;
            names[0] = '\0';
            for (size_t e = 0; e < kvs_engine_count() && used < sizeof(names); e++)
                used += (size_t)snprintf(names + used, sizeof(names) - used, "%s%s", e ? ", " : "",
                                         kvs_engine_name(kvs_engine_at(e)));
            printf(usage, names);
            return CONFIG_EXIT;
        }
        if (strcmp(arg, "-V") == 0 || strcmp(arg, "--version") == 0) {
            printf("kvs-server %s\n", KVS_VERSION);
            return CONFIG_EXIT;
        }
        if (strncmp(arg, "--", 2) != 0 || !arg[2] || arg[2] == '=') {
            if (arg[0] == '-' && arg[1])
                bad("unknown option '%s' (see --help)", arg);
            else
                bad("unexpected argument '%s' (see --help)", arg);
            return CONFIG_BAD;
        }
        int j = i + 1;
        if (!strchr(arg, '=')) {
            while (j < argc && !looks_like_option(argv[j]))
                j++;
        }
        opts[*nopts].at = i;
        opts[*nopts].nvals = strchr(arg, '=') ? 1 : j - i - 1;
        (*nopts)++;
        i = j;
    }
    return CONFIG_OK;
}

/* Apply one command-line option. Returns 0 or -1 after printing why. */
static int apply_cli(struct server_config *cfg, char **argv, const struct cli_option *o)
{
    char *arg = argv[o->at];
    char name[128];
    char *eq = strchr(arg, '=');
    size_t name_len = eq ? (size_t)(eq - arg) : strlen(arg);
    if (name_len >= sizeof(name)) {
        bad("unknown option '%s' (see --help)", arg);
        return -1;
    }
    memcpy(name, arg, name_len);
    name[name_len] = '\0';
    char **vals = eq ? (char *[]){eq + 1, NULL} : argv + o->at + 1;
    size_t *len = calloc((size_t)o->nvals + 1, sizeof(*len));
    if (!len) {
        bad("out of memory");
        return -1;
    }
    for (int i = 0; i < o->nvals; i++)
        len[i] = strlen(vals[i]);
    int rc = apply(cfg, "", name + 2, name, o->nvals, vals, len);
    const struct config_option *opt = find_option(name + 2);
    /* Out of /proc/PID/cmdline from now on; ps may have seen it already,
       hence --requirepass-file. */
    if (rc == 0 && opt && (opt->flags & CO_SECRET)) {
        for (int i = 0; i < o->nvals; i++)
            memset(vals[i], 'x', len[i]);
    }
    free(len);
    return rc;
}

static enum config_result parse(struct server_config *cfg, int argc, char **argv)
{
    if (config_defaults(cfg) != 0)
        return CONFIG_BAD;
    /* The file, if the first argument is not an option. */
    const char *file = argc > 1 && argv[1][0] != '-' ? argv[1] : NULL;
    struct cli_option *opts = calloc((size_t)argc + 1, sizeof(*opts));
    if (!opts) {
        bad("out of memory");
        return CONFIG_BAD;
    }
    int nopts = 0;
    enum config_result r = scan_cli(argc, argv, file ? 2 : 1, opts, &nopts);
    if (r == CONFIG_OK && file) {
        char abs[PATH_MAX];
        if (!realpath(file, abs)) {
            bad("cannot read the configuration file '%s': %s", file, strerror(errno));
            r = CONFIG_BAD;
        } else if (!(cfg->config_file = strdup(abs))) {
            bad("out of memory");
            r = CONFIG_BAD;
        } else if (apply_file(cfg, cfg->config_file) != 0) {
            r = CONFIG_BAD;
        }
    }
    for (int i = 0; r == CONFIG_OK && i < nopts; i++) {
        if (apply_cli(cfg, argv, &opts[i]) != 0)
            r = CONFIG_BAD;
    }
    free(opts);
    return r;
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
    auth_set_password(cfg, NULL, 0);
    if (cfg->masterauth)
        explicit_bzero(cfg->masterauth, strlen(cfg->masterauth));
    free(cfg->masterauth);
    cfg->masterauth = NULL;
    free(cfg->config_file);
    cfg->config_file = NULL;
    free(cfg->requirepass_file);
    cfg->requirepass_file = NULL;
    for (size_t i = 0; i < cfg->nowned; i++)
        free(cfg->owned[i]);
    free(cfg->owned);
    cfg->owned = NULL;
    cfg->nowned = 0;
}

/* ---- CONFIG ---- */

/* Serialises CONFIG SET, GET and REWRITE: the strings some options keep
   (requirepass-file) are replaced under it. */
static pthread_mutex_t config_mutex = PTHREAD_MUTEX_INITIALIZER;

void config_lock(void)
{
    pthread_mutex_lock(&config_mutex);
}

void config_unlock(void)
{
    pthread_mutex_unlock(&config_mutex);
}

size_t config_opt_count(void)
{
    return config_noptions;
}

const char *config_opt_name(size_t i)
{
    return config_options[i].name;
}

const char *config_opt_alias(size_t i)
{
    return config_options[i].alias;
}

bool config_opt_live(size_t i)
{
    return config_options[i].live != NULL;
}

void config_opt_get(struct server *srv, size_t i, struct text *out)
{
    config_options[i].get(&srv->cfg, srv, out);
}

int config_opt_set(struct server *srv, size_t i, const char *val, size_t len, bool apply_it,
                   char *why, size_t size)
{
    const struct config_option *o = &config_options[i];
    if (!o->live) {
        snprintf(why, size, "can't set immutable config");
        return -1;
    }
    if (strlen(val) != len && o->live != NULL && strcmp(o->name, "requirepass") != 0) {
        snprintf(why, size, "argument must not hold NUL bytes");
        return -1;
    }
    return o->live(srv, val, len, apply_it, why, size);
}

int config_write_back(struct server *srv, char *why, size_t size)
{
    if (!srv->cfg.config_file) {
        snprintf(why, size, "The server is running without a config file");
        return -1;
    }
    struct server_config defaults;
    if (config_defaults(&defaults) != 0) {
        snprintf(why, size, "out of memory");
        return -1;
    }
    struct rewrite_entry *e = calloc(config_noptions, sizeof(*e));
    struct text *values = calloc(config_noptions, sizeof(*values));
    size_t n = 0;
    int rc = -1;
    if (!e || !values) {
        snprintf(why, size, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < config_noptions; i++) {
        const struct config_option *o = &config_options[i];
        if (o->flags & CO_DERIVED)
            continue;
        struct text now = {0}, def = {0};
        bool set = o->get(&srv->cfg, srv, &now);
        bool def_set = o->get(&defaults, NULL, &def);
        /* A password read from a file stays in its file. */
        if (strcmp(o->name, "requirepass") == 0 && srv->cfg.requirepass_file)
            set = false;
        e[n].names[0] = o->name;
        e[n].names[1] = o->alias;
        if (set) {
            if (o->flags & CO_QUOTE)
                text_repr(&values[n], now.p ? now.p : "", now.len);
            else
                text_append(&values[n], now.p ? now.p : "", now.len);
            e[n].value = values[n].p;
        }
        e[n].force = set && !(o->flags & CO_IF_PRESENT) &&
                     (set != def_set || now.len != def.len ||
                      (now.len && memcmp(now.p, def.p, now.len) != 0));
        bool oom = now.oom || def.oom || values[n].oom;
        if (now.p)
            explicit_bzero(now.p, now.len);
        text_free(&now);
        text_free(&def);
        n++;
        if (oom) {
            snprintf(why, size, "out of memory");
            goto out;
        }
    }
    rc = config_rewrite(srv->cfg.config_file, e, n, why, size);
out:
    for (size_t i = 0; values && i < config_noptions; i++) {
        if (values[i].p)
            explicit_bzero(values[i].p, values[i].len);
        text_free(&values[i]);
    }
    free(values);
    free(e);
    config_free(&defaults);
    return rc;
}
