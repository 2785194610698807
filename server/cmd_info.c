/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * INFO [section ...]: the server's state as Redis formats it, "# Section"
 * headers and "name:value" lines, sections server, clients, memory,
 * persistence, stats, engine and keyspace (and with "all", commandstats
 * and latencystats, cmdstats.h). Field names follow Redis where Redis
 * has the field, so that tools reading them (redis-cli --stat, monitoring
 * agents) work; kvs's own section, engine, names the engine and gives its
 * figures (kvs_db_info) as the engine names them. Runs on the
 * connection's worker thread; the text is built in the worker's scratch
 * buffer, so INFO allocates nothing once that buffer is warm.
 */
#include <arpa/inet.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "cmdstats.h"
#include "commands.h"
#include "conn.h"
#include "errstats.h"
#include "repl.h"
#include "reply.h"
#include "worker.h"

/* The Redis version kvs reports to clients that decide what to send by it;
   kvs answers the commands of this version that it implements. */
#define COMPAT_REDIS_VERSION "7.0.0"

struct info {
    kvs_buf *text;
    bool oom;
    bool first; /* no section written yet */
};

static void add(struct info *in, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void add(struct info *in, const char *fmt, ...)
{
    for (int attempt = 0; attempt < 2 && !in->oom; attempt++) {
        size_t room = in->text->cap - in->text->len;
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf((char *)in->text->data + in->text->len, room, fmt, ap);
        va_end(ap);
        if (n >= 0 && (size_t)n < room) {
            in->text->len += (size_t)n;
            return;
        }
        if (n < 0 || kvs_buf_reserve(in->text, in->text->len + (size_t)n + 1) != 0)
            in->oom = true;
    }
}

static void section(struct info *in, const char *title)
{
    add(in, "%s# %s\r\n", in->first ? "" : "\r\n", title);
    in->first = false;
}

static void info_server(struct info *in, struct worker *w)
{
    struct server *srv = w->srv;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    long long uptime = (long long)(now.tv_sec - srv->started.tv_sec);
    struct utsname u;
    if (uname(&u) != 0)
        snprintf(u.sysname, sizeof(u.sysname), "unknown");
    const struct sockaddr *sa = (const struct sockaddr *)&srv->cfg.addr;
    unsigned port = ntohs(sa->sa_family == AF_INET6 ? ((const struct sockaddr_in6 *)sa)->sin6_port
                                                    : ((const struct sockaddr_in *)sa)->sin_port);
    section(in, "Server");
    add(in, "redis_version:%s\r\n", COMPAT_REDIS_VERSION);
    add(in, "kvs_version:%s\r\n", KVS_VERSION);
    add(in, "redis_mode:standalone\r\n");
    add(in, "os:%s %s %s\r\n", u.sysname, u.release, u.machine);
    add(in, "arch_bits:%zu\r\n", sizeof(void *) * 8);
    add(in, "multiplexing_api:%s\r\n", w->uring ? "io_uring" : event_base_get_method(w->base));
    add(in, "process_id:%d\r\n", (int)getpid());
    add(in, "tcp_port:%u\r\n", port);
    add(in, "listen_address:%s\r\n", srv->cfg.addr_text);
    if (srv->cfg.http_addr_len)
        add(in, "http_address:%s\r\n", srv->cfg.http_addr_text);
    add(in, "worker_threads:%u\r\n", srv->nworkers);
    add(in, "uptime_in_seconds:%lld\r\n", uptime);
    add(in, "uptime_in_days:%lld\r\n", uptime / 86400);
}

static void info_clients(struct info *in, struct server *srv)
{
    section(in, "Clients");
    add(in, "connected_clients:%u\r\n", atomic_load(&srv->clients));
    add(in, "maxclients:%u\r\n", atomic_load(&srv->maxclients));
    add(in, "timeout:%u\r\n", atomic_load(&srv->timeout));
    add(in, "blocked_clients:%u\r\n", repl_blocked_clients(srv->repl));
}

static void info_stats(struct info *in, struct server *srv)
{
    struct server_stats_base st;
    server_stats_read(srv, &st);
    section(in, "Stats");
    add(in, "total_connections_received:%llu\r\n", (unsigned long long)st.connections);
    add(in, "total_commands_processed:%llu\r\n", (unsigned long long)st.commands);
    add(in, "total_net_input_bytes:%llu\r\n", (unsigned long long)st.net_in);
    add(in, "total_net_output_bytes:%llu\r\n", (unsigned long long)st.net_out);
    add(in, "rejected_connections:%llu\r\n", (unsigned long long)st.rejected);
    uint64_t errors = 0;
    errstats_info(NULL, &errors);
    add(in, "total_error_replies:%llu\r\n", (unsigned long long)errors);
    add(in, "keyspace_hits:%llu\r\n", (unsigned long long)st.hits);
    add(in, "keyspace_misses:%llu\r\n", (unsigned long long)st.misses);
    /* Keys removed because their time had passed: by the active expiry
       (expiry.h), and by DEL; reads do not remove. */
    add(in, "expired_keys:%llu\r\n", (unsigned long long)st.expired);
    add(in, "expired_stale_perc:%.2f\r\n", expirer_stale_perc(&srv->expirer));
    add(in, "expired_time_cap_reached_count:%llu\r\n", (unsigned long long)st.expire_time_capped);
    add(in, "expire_cycle_cpu_milliseconds:%llu\r\n",
        (unsigned long long)(st.expire_cycle_us / 1000));
    if (!in->oom && repl_info_stats(srv->repl, in->text) != 0)
        in->oom = true;
}

/* The process's resident set, from /proc; 0 if it cannot be read. */
static unsigned long long rss_bytes(void)
{
    unsigned long long pages = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f)
        return 0;
    if (fscanf(f, "%llu %llu", &pages, &resident) != 2)
        resident = 0;
    fclose(f);
    return resident * (unsigned long long)sysconf(_SC_PAGESIZE);
}

/* Bytes as Redis's *_human fields write them: 1.50M. */
static void human(char *out, size_t size, unsigned long long n)
{
    static const char units[] = "BKMGTP";
    double v = (double)n;
    size_t u = 0;
    while (v >= 1024 && u + 1 < sizeof(units) - 1) {
        v /= 1024;
        u++;
    }
    if (u == 0)
        snprintf(out, size, "%lluB", n);
    else
        snprintf(out, size, "%.2f%c", v, units[u]);
}

/* used_memory is what the mem engine holds for the data (its slab's
   pages, what --maxmemory is measured against); for the engines whose
   data lives in files, the process's resident set. */
static void info_memory(struct info *in, struct server *srv, const kvs_stats *st)
{
    unsigned long long rss = rss_bytes();
    bool in_memory = kvs_engine_traits(kvs_db_engine(srv->store.db)) & KVS_ENGINE_VOLATILE;
    unsigned long long used = in_memory ? st->memory_bytes : rss;
    char h[32];
    section(in, "Memory");
    human(h, sizeof(h), used);
    add(in, "used_memory:%llu\r\nused_memory_human:%s\r\n", used, h);
    human(h, sizeof(h), rss);
    add(in, "used_memory_rss:%llu\r\nused_memory_rss_human:%s\r\n", rss, h);
    add(in, "used_memory_dataset:%llu\r\n", (unsigned long long)st->live_bytes);
    human(h, sizeof(h), srv->cfg.maxmemory);
    add(in, "maxmemory:%llu\r\nmaxmemory_human:%s\r\n", srv->cfg.maxmemory, h);
    add(in, "maxmemory_policy:noeviction\r\n");
}

/* The engine's "read_only" figure: it refuses writes after a failed
   fsync (kvs, lmdb) until restarted. */
static void find_read_only(void *ctx, const char *name, const char *value)
{
    if (strcmp(name, "read_only") == 0 && strcmp(value, "0") != 0)
        *(bool *)ctx = true;
}

static void info_persistence(struct info *in, struct server *srv)
{
    struct persist_status ps;
    persist_status(srv, &ps);
    section(in, "Persistence");
    /* A replica loading a primary's copy; while the store itself opens at
       startup, loading.c answers INFO with the load's figures. */
    add(in, "loading:%d\r\n", repl_is_loading(srv->repl));
    add(in, "async_loading:0\r\n");
    add(in, "rdb_changes_since_last_save:%llu\r\n", (unsigned long long)ps.changes);
    add(in, "rdb_bgsave_in_progress:%d\r\n", ps.in_progress);
    add(in, "rdb_last_save_time:%lld\r\n", (long long)(ps.last_save_ms / 1000));
    add(in, "rdb_last_bgsave_status:%s\r\n", ps.last_ok ? "ok" : "err");
    add(in, "rdb_last_bgsave_time_sec:%lld\r\n",
        ps.saves ? (long long)((ps.last_ms + 999) / 1000) : -1LL);
    add(in, "rdb_saves:%llu\r\n", (unsigned long long)ps.saves);
    bool in_memory = kvs_engine_traits(kvs_db_engine(srv->store.db)) & KVS_ENGINE_VOLATILE;
    add(in, "aof_enabled:%d\r\n", !in_memory && srv->cfg.fsync != KVS_FSYNC_NO);
    add(in, "appendfsync:%s\r\n", kvs_fsync_name(srv->cfg.fsync));
    bool read_only = false;
    kvs_db_info(srv->store.db, find_read_only, &read_only);
    add(in, "aof_last_write_status:%s\r\n", read_only ? "err" : "ok");
    add(in, "store_read_only:%d\r\n", read_only);
    if (read_only)
        add(in, "store_read_only_reason:an fsync failed; writes are refused until restart\r\n");
}

/* The engine's own figures, as kvs_db_info() gives them; stats_shown
   marks those of kvs_stats (STAT_*) that it named itself. */
struct engine_info {
    struct info *in;
    unsigned stats_shown;
};

/* The figures every engine has (kvs_db_stats), shown unless the engine
   gave the same name itself. */
static const char *const stat_names[] = {"live_bytes", "disk_bytes", "stale_bytes", "compactions"};

static void engine_figure(void *ctx, const char *name, const char *value)
{
    struct engine_info *ei = ctx;
    for (size_t i = 0; i < sizeof(stat_names) / sizeof(stat_names[0]); i++) {
        if (strcmp(name, stat_names[i]) == 0)
            ei->stats_shown |= 1u << i;
    }
    add(ei->in, "%s:%s\r\n", name, value);
}

/* "# Engine": which engine holds the store, then its figures, each as
   the engine names it, so a new engine's figures appear with no change
   here. */
static int info_engine(struct info *in, struct server *srv, const kvs_stats *st)
{
    section(in, "Engine");
    add(in, "engine:%s\r\n", srv->engine_name);
    struct engine_info ei = {in, 0};
    int rc = kvs_db_info(srv->store.db, engine_figure, &ei);
    if (rc != 0 && rc != KVS_ENOTSUP)
        return rc;
    const uint64_t values[] = {st->live_bytes, st->disk_bytes, st->stale_bytes, st->compactions};
    _Static_assert(sizeof(values) / sizeof(values[0]) == sizeof(stat_names) / sizeof(stat_names[0]),
                   "a value per name");
    for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
        if (!(ei.stats_shown & (1u << i)))
            add(in, "%s:%llu\r\n", stat_names[i], (unsigned long long)values[i]);
    }
    return 0;
}

/* Keys and keys with times count those expired and not yet removed, as
   Redis's do; avg_ttl is the mean time left (ms) of the keys with times,
   0 when there are none or their mean has passed. */
static void info_keyspace(struct info *in, const kvs_stats *st)
{
    section(in, "Keyspace");
    /* Redis lists only databases that hold keys. */
    if (!st->keys)
        return;
    int64_t avg_ttl = 0;
    if (st->expires) {
        int64_t now = kvs_now_ms();
        avg_ttl = st->expire_mean > now ? st->expire_mean - now : 0;
    }
    add(in, "db0:keys=%llu,expires=%llu,avg_ttl=%lld\r\n", (unsigned long long)st->keys,
        (unsigned long long)st->expires, (long long)avg_ttl);
}

/* "# CPU": the process's and its children's CPU time, in seconds, as
   Redis writes them; its *_main_thread figures are the answering
   worker's thread. */
static void info_cpu(struct info *in)
{
    struct rusage self, children, main_thread;
    getrusage(RUSAGE_SELF, &self);
    getrusage(RUSAGE_CHILDREN, &children);
    if (getrusage(RUSAGE_THREAD, &main_thread) != 0)
        main_thread = self;
    section(in, "CPU");
#define SECS(tv) ((double)(tv).tv_sec + (double)(tv).tv_usec / 1e6)
    add(in, "used_cpu_sys:%.6f\r\nused_cpu_user:%.6f\r\n", SECS(self.ru_stime),
        SECS(self.ru_utime));
    add(in, "used_cpu_sys_children:%.6f\r\nused_cpu_user_children:%.6f\r\n",
        SECS(children.ru_stime), SECS(children.ru_utime));
    add(in, "used_cpu_sys_main_thread:%.6f\r\nused_cpu_user_main_thread:%.6f\r\n",
        SECS(main_thread.ru_stime), SECS(main_thread.ru_utime));
#undef SECS
}

enum {
    S_SERVER = 1,
    S_CLIENTS = 2,
    S_STATS = 4,
    S_PERSISTENCE = 8,
    S_ENGINE = 16,
    S_KEYSPACE = 32,
    S_MEMORY = 64,
    S_REPLICATION = 512,
    S_ALL = 127 | S_REPLICATION | 1024, /* INFO and INFO default (S_CPU included) */
    S_COMMANDSTATS = 128,
    S_LATENCYSTATS = 256,
    S_CPU = 1024,
    S_ERRORSTATS = 2048,
    S_EVERYTHING = 4095, /* INFO all and INFO everything */
};

/* The sections in want, into text (emptied first). Returns 0, KVS_ENOMEM,
   or the engine's error. */
static int build(struct worker *w, unsigned want, kvs_buf *text)
{
    struct info in = {text, false, true};
    text->len = 0;
    if (kvs_buf_reserve(text, 2048) != 0)
        in.oom = true;
    kvs_stats st;
    if (want & (S_MEMORY | S_ENGINE | S_KEYSPACE)) {
        int rc = kvs_db_stats(w->srv->store.db, &st);
        if (rc != 0)
            return rc;
    }
    if (want & S_SERVER)
        info_server(&in, w);
    if (want & S_CLIENTS)
        info_clients(&in, w->srv);
    if (want & S_MEMORY)
        info_memory(&in, w->srv, &st);
    if (want & S_PERSISTENCE)
        info_persistence(&in, w->srv);
    if (want & S_STATS)
        info_stats(&in, w->srv);
    if (want & S_REPLICATION) {
        section(&in, "Replication");
        if (!in.oom && repl_info_replication(w->srv->repl, text) != 0)
            in.oom = true;
    }
    if (want & S_CPU)
        info_cpu(&in);
    if (want & S_ENGINE) {
        int rc = info_engine(&in, w->srv, &st);
        if (rc != 0)
            return rc;
    }
    for (int latency = 0; latency < 2; latency++) {
        if (!(want & (latency ? S_LATENCYSTATS : S_COMMANDSTATS)))
            continue;
        section(&in, latency ? "Latencystats" : "Commandstats");
        if (!in.oom && cmdstats_info(w->srv, latency, text) != 0)
            in.oom = true;
    }
    if (want & S_ERRORSTATS) {
        section(&in, "Errorstats");
        if (!in.oom && errstats_info(text, NULL) != 0)
            in.oom = true;
    }
    if (want & S_KEYSPACE)
        info_keyspace(&in, &st);
    return in.oom ? KVS_ENOMEM : 0;
}

/* INFO, INFO default|all|everything, or INFO section [section ...];
   an unknown section adds nothing, as in Redis. */
void cmd_info(struct conn *c, size_t argc, const kvs_slice *argv)
{
    unsigned want = argc == 1 ? S_ALL : 0;
    for (size_t i = 1; i < argc; i++) {
        if (slice_is(argv[i], "default"))
            want |= S_ALL;
        else if (slice_is(argv[i], "all") || slice_is(argv[i], "everything"))
            want |= S_EVERYTHING;
        else if (slice_is(argv[i], "commandstats"))
            want |= S_COMMANDSTATS;
        else if (slice_is(argv[i], "latencystats"))
            want |= S_LATENCYSTATS;
        else if (slice_is(argv[i], "cpu"))
            want |= S_CPU;
        else if (slice_is(argv[i], "errorstats"))
            want |= S_ERRORSTATS;
        else if (slice_is(argv[i], "server"))
            want |= S_SERVER;
        else if (slice_is(argv[i], "clients"))
            want |= S_CLIENTS;
        else if (slice_is(argv[i], "stats"))
            want |= S_STATS;
        else if (slice_is(argv[i], "persistence"))
            want |= S_PERSISTENCE;
        else if (slice_is(argv[i], "memory"))
            want |= S_MEMORY;
        else if (slice_is(argv[i], "engine"))
            want |= S_ENGINE;
        else if (slice_is(argv[i], "keyspace"))
            want |= S_KEYSPACE;
        else if (slice_is(argv[i], "replication"))
            want |= S_REPLICATION;
    }
    struct worker *w = c->w;
    int rc = build(w, want, &w->scratch);
    if (rc == KVS_ENOMEM)
        c->flags |= CONN_KILL;
    else if (rc != 0)
        reply_kvs_error(c, rc);
    else
        reply_bulk(c, w->scratch.data, w->scratch.len);
}

int info_text_all(struct worker *w, kvs_buf *text)
{
    return build(w, S_ALL, text);
}
