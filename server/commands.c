/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The command table, its lookup index and the dispatcher; see commands.h.
 * commands_init() runs on the main thread at startup; everything else on
 * the worker threads, reading the table and index, which never change.
 */
#include "commands.h"

#include <limits.h>
#include <stdint.h>
#include <stdio.h>

#include "auth.h"
#include "cmdstats.h"
#include "conn.h"
#include "log.h"
#include "monitor.h"
#include "multi.h"
#include "repl.h"
#include "reply.h"
#include "worker.h"

/* QUIT, HELLO and AUTH: allowed before authentication and at any time. */
#define CONN_CMD_FLAGS                                                                             \
    (CMD_NOSCRIPT | CMD_LOADING | CMD_STALE | CMD_FAST | CMD_NOAUTH | CMD_ALLOW_BUSY)

/* MULTI, EXEC, DISCARD, WATCH, UNWATCH: these and their own. */
#define MULTI_CMD_FLAGS (CMD_NOSCRIPT | CMD_LOADING | CMD_STALE)

/* Arity, flags and key positions are Redis 7.0's, as its COMMAND INFO
   reports them (tests/server/test_differential.c compares the two). */
static const struct command table[] = {
    /* keys and values: cmd_keys.c */
    {"get", cmd_get, 2, CMD_READONLY | CMD_FAST, 1, 1, 1, 0, NULL},
    {"set", cmd_set, -3, CMD_WRITE | CMD_DENYOOM | CMD_BATCHED, 1, 1, 1, -3, set_batchable},
    {"del", cmd_del, -2, CMD_WRITE | CMD_BATCHED, 1, -1, 1, -2, NULL},
    {"unlink", cmd_del, -2, CMD_WRITE | CMD_FAST | CMD_BATCHED, 1, -1, 1, -2, NULL},
    {"exists", cmd_exists, -2, CMD_READONLY | CMD_FAST, 1, -1, 1, 0, NULL},
    {"touch", cmd_exists, -2, CMD_READONLY | CMD_FAST, 1, -1, 1, 0, NULL},
    {"type", cmd_type, 2, CMD_READONLY | CMD_FAST, 1, 1, 1, 0, NULL},
    {"strlen", cmd_strlen, 2, CMD_READONLY | CMD_FAST, 1, 1, 1, 0, NULL},
    {"mget", cmd_mget, -2, CMD_READONLY | CMD_FAST, 1, -1, 1, 0, NULL},
    {"mset", cmd_mset, -3, CMD_WRITE | CMD_DENYOOM | CMD_BATCHED, 1, -1, 2, -3, NULL},
    /* expiry times: cmd_expire.c (SET's options too) */
    {"setex", cmd_setex, 4, CMD_WRITE | CMD_DENYOOM | CMD_BATCHED, 1, 1, 1, 4, NULL},
    {"psetex", cmd_psetex, 4, CMD_WRITE | CMD_DENYOOM | CMD_BATCHED, 1, 1, 1, 4, NULL},
    {"getex", cmd_getex, -2, CMD_WRITE | CMD_FAST, 1, 1, 1, 0, NULL},
    {"expire", cmd_expire, -3, CMD_WRITE | CMD_FAST, 1, 1, 1, 0, NULL},
    {"pexpire", cmd_pexpire, -3, CMD_WRITE | CMD_FAST, 1, 1, 1, 0, NULL},
    {"expireat", cmd_expireat, -3, CMD_WRITE | CMD_FAST, 1, 1, 1, 0, NULL},
    {"pexpireat", cmd_pexpireat, -3, CMD_WRITE | CMD_FAST, 1, 1, 1, 0, NULL},
    {"ttl", cmd_ttl, 2, CMD_READONLY | CMD_FAST, 1, 1, 1, 0, NULL},
    {"pttl", cmd_pttl, 2, CMD_READONLY | CMD_FAST, 1, 1, 1, 0, NULL},
    {"expiretime", cmd_expiretime, 2, CMD_READONLY | CMD_FAST, 1, 1, 1, 0, NULL},
    {"pexpiretime", cmd_pexpiretime, 2, CMD_READONLY | CMD_FAST, 1, 1, 1, 0, NULL},
    {"persist", cmd_persist, 2, CMD_WRITE | CMD_FAST, 1, 1, 1, 0, NULL},
    {"dbsize", cmd_dbsize, 1, CMD_READONLY | CMD_FAST, 0, 0, 0, 0, NULL},
    {"flushdb", cmd_flushdb, -1, CMD_WRITE, 0, 0, 0, 0, NULL},
    {"flushall", cmd_flushdb, -1, CMD_WRITE, 0, 0, 0, 0, NULL},
    /* the keyspace: cmd_scan.c */
    {"scan", cmd_scan, -2, CMD_READONLY, 0, 0, 0, 0, NULL},
    {"keys", cmd_keys, 2, CMD_READONLY, 0, 0, 0, 0, NULL},
    {"randomkey", cmd_randomkey, 1, CMD_READONLY, 0, 0, 0, 0, NULL},
    /* the connection: cmd_server.c */
    {"ping", cmd_ping, -1, CMD_FAST, 0, 0, 0, 0, NULL},
    {"echo", cmd_echo, 2, CMD_LOADING | CMD_STALE | CMD_FAST, 0, 0, 0, 0, NULL},
    {"select", cmd_select, 2, CMD_LOADING | CMD_STALE | CMD_FAST, 0, 0, 0, 0, NULL},
    {"quit", cmd_quit, -1, CONN_CMD_FLAGS, 0, 0, 0, 0, NULL},
    {"hello", cmd_hello, -1, CONN_CMD_FLAGS, 0, 0, 0, 0, NULL},
    {"auth", cmd_auth, -2, CONN_CMD_FLAGS, 0, 0, 0, 0, NULL},
    {"client", cmd_client, -2, 0, 0, 0, 0, 0, NULL}, /* flags are its subcommands' */
    /* the server: cmd_server.c, cmd_info.c */
    {"command", cmd_command, -1, CMD_LOADING | CMD_STALE, 0, 0, 0, 0, NULL},
    {"config", cmd_config, -2, 0, 0, 0, 0, 0, NULL},
    {"info", cmd_info, -1, CMD_LOADING | CMD_STALE, 0, 0, 0, 0, NULL},
    {"shutdown", cmd_shutdown, -1,
     CMD_ADMIN | CMD_NOSCRIPT | CMD_LOADING | CMD_STALE | CMD_NO_MULTI | CMD_ALLOW_BUSY, 0, 0, 0, 0,
     NULL},
    /* strings read and written again: cmd_string.c, cmd_lcs.c */
    {"append", cmd_append, 3, CMD_WRITE | CMD_DENYOOM | CMD_FAST, 1, 1, 1, 0, NULL},
    {"incr", cmd_incr, 2, CMD_WRITE | CMD_DENYOOM | CMD_FAST, 1, 1, 1, 0, NULL},
    {"decr", cmd_decr, 2, CMD_WRITE | CMD_DENYOOM | CMD_FAST, 1, 1, 1, 0, NULL},
    {"incrby", cmd_incrby, 3, CMD_WRITE | CMD_DENYOOM | CMD_FAST, 1, 1, 1, 0, NULL},
    {"decrby", cmd_decrby, 3, CMD_WRITE | CMD_DENYOOM | CMD_FAST, 1, 1, 1, 0, NULL},
    {"incrbyfloat", cmd_incrbyfloat, 3, CMD_WRITE | CMD_DENYOOM | CMD_FAST, 1, 1, 1, 0, NULL},
    {"getset", cmd_getset, 3, CMD_WRITE | CMD_DENYOOM | CMD_FAST, 1, 1, 1, 0, NULL},
    {"getdel", cmd_getdel, 2, CMD_WRITE | CMD_FAST, 1, 1, 1, 0, NULL},
    {"getrange", cmd_getrange, 4, CMD_READONLY, 1, 1, 1, 0, NULL},
    {"substr", cmd_getrange, 4, CMD_READONLY, 1, 1, 1, 0, NULL},
    {"setrange", cmd_setrange, 4, CMD_WRITE | CMD_DENYOOM, 1, 1, 1, 0, NULL},
    {"setnx", cmd_setnx, 3, CMD_WRITE | CMD_DENYOOM | CMD_FAST, 1, 1, 1, 0, NULL},
    {"msetnx", cmd_msetnx, -3, CMD_WRITE | CMD_DENYOOM, 1, -1, 2, 0, NULL},
    {"lcs", cmd_lcs, -3, CMD_READONLY, 1, 2, 1, 0, NULL},
    /* bits: cmd_bits.c */
    {"setbit", cmd_setbit, 4, CMD_WRITE | CMD_DENYOOM, 1, 1, 1, 0, NULL},
    {"getbit", cmd_getbit, 3, CMD_READONLY | CMD_FAST, 1, 1, 1, 0, NULL},
    {"bitcount", cmd_bitcount, -2, CMD_READONLY, 1, 1, 1, 0, NULL},
    {"bitpos", cmd_bitpos, -3, CMD_READONLY, 1, 1, 1, 0, NULL},
    {"bitop", cmd_bitop, -4, CMD_WRITE | CMD_DENYOOM, 2, -1, 1, 0, NULL},
    /* keys moved and copied: cmd_rename.c */
    {"rename", cmd_rename, 3, CMD_WRITE, 1, 2, 1, 0, NULL},
    {"renamenx", cmd_renamenx, 3, CMD_WRITE | CMD_FAST, 1, 2, 1, 0, NULL},
    {"copy", cmd_copy, -3, CMD_WRITE | CMD_DENYOOM, 1, 2, 1, 0, NULL},
    /* other clients: cmd_client.c, monitor.c */
    {"monitor", cmd_monitor, 1, CMD_ADMIN | CMD_NOSCRIPT | CMD_LOADING | CMD_STALE, 0, 0, 0, 0,
     NULL},
    {"reset", cmd_reset, 1, CONN_CMD_FLAGS, 0, 0, 0, 0, NULL},
    {"debug", cmd_debug, -2, CMD_ADMIN | CMD_NOSCRIPT | CMD_LOADING | CMD_STALE, 0, 0, 0, 0, NULL},
    /* transactions: cmd_multi.c */
    {"multi", cmd_multi, 1, MULTI_CMD_FLAGS | CMD_FAST | CMD_ALLOW_BUSY, 0, 0, 0, 0, NULL},
    {"exec", cmd_exec, 1, MULTI_CMD_FLAGS | CMD_SKIP_SLOWLOG, 0, 0, 0, 0, NULL},
    {"discard", cmd_discard, 1, MULTI_CMD_FLAGS | CMD_FAST | CMD_ALLOW_BUSY, 0, 0, 0, 0, NULL},
    {"watch", cmd_watch, -2, MULTI_CMD_FLAGS | CMD_FAST | CMD_ALLOW_BUSY, 1, -1, 1, 0, NULL},
    {"unwatch", cmd_unwatch, 1, MULTI_CMD_FLAGS | CMD_FAST | CMD_ALLOW_BUSY, 0, 0, 0, 0, NULL},
    /* persistence: cmd_persist.c */
    {"save", cmd_save, 1, CMD_ADMIN | CMD_NOSCRIPT | CMD_NO_ASYNC_LOADING | CMD_NO_MULTI, 0, 0, 0,
     0, NULL},
    {"bgsave", cmd_bgsave, -1, CMD_ADMIN | CMD_NOSCRIPT | CMD_NO_ASYNC_LOADING, 0, 0, 0, 0, NULL},
    {"lastsave", cmd_lastsave, 1, CMD_LOADING | CMD_STALE | CMD_FAST, 0, 0, 0, 0, NULL},
    /* replication: cmd_repl.c */
    {"psync", cmd_psync, -3, CMD_ADMIN | CMD_NOSCRIPT | CMD_NO_ASYNC_LOADING | CMD_NO_MULTI, 0, 0,
     0, 0, NULL},
    {"sync", cmd_sync, 1, CMD_ADMIN | CMD_NOSCRIPT | CMD_NO_ASYNC_LOADING | CMD_NO_MULTI, 0, 0, 0,
     0, NULL},
    {"replconf", cmd_replconf, -1,
     CMD_ADMIN | CMD_NOSCRIPT | CMD_LOADING | CMD_STALE | CMD_ALLOW_BUSY, 0, 0, 0, 0, NULL},
    {"replicaof", cmd_replicaof, 3, CMD_ADMIN | CMD_NOSCRIPT | CMD_STALE | CMD_NO_ASYNC_LOADING, 0,
     0, 0, 0, NULL},
    {"slaveof", cmd_replicaof, 3, CMD_ADMIN | CMD_NOSCRIPT | CMD_STALE | CMD_NO_ASYNC_LOADING, 0, 0,
     0, 0, NULL},
    {"role", cmd_role, 1, CMD_NOSCRIPT | CMD_LOADING | CMD_STALE | CMD_FAST, 0, 0, 0, 0, NULL},
    {"wait", cmd_wait, 3, CMD_NOSCRIPT, 0, 0, 0, 0, NULL},
};

#define TABLE_LEN (sizeof(table) / sizeof(table[0]))

/* Open addressing over a power of two at least twice the table, so probes
   are short; a slot holds a table index + 1, 0 when empty. */
#define INDEX_SIZE 256
#define NAME_MAX_LEN 16
static uint8_t index_slots[INDEX_SIZE];

_Static_assert(INDEX_SIZE <= 256, "a slot holds a table index + 1 in a byte");

_Static_assert(TABLE_LEN * 2 <= INDEX_SIZE, "command index too small");

static inline unsigned char lower(unsigned char ch)
{
    return ch >= 'A' && ch <= 'Z' ? (unsigned char)(ch + ('a' - 'A')) : ch;
}

/* FNV-1a over the lower-cased name. */
static uint32_t name_hash(const unsigned char *s, size_t len)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < len; i++)
        h = (h ^ lower(s[i])) * 16777619u;
    return h;
}

bool slice_is(kvs_slice s, const char *lit)
{
    const unsigned char *p = s.data;
    size_t i = 0;
    for (; i < s.len; i++) {
        if (!lit[i] || lower(p[i]) != lower((unsigned char)lit[i]))
            return false;
    }
    return lit[i] == '\0';
}

void commands_init(void)
{
    cmdstats_clock_init();
    for (size_t i = 0; i < TABLE_LEN; i++) {
        const char *name = table[i].name;
        size_t slot = name_hash((const unsigned char *)name, strlen(name)) & (INDEX_SIZE - 1);
        while (index_slots[slot])
            slot = (slot + 1) & (INDEX_SIZE - 1);
        index_slots[slot] = (uint8_t)(i + 1);
    }
}

const struct command *command_lookup(kvs_slice name)
{
    if (name.len == 0 || name.len > NAME_MAX_LEN)
        return NULL;
    size_t slot = name_hash(name.data, name.len) & (INDEX_SIZE - 1);
    while (index_slots[slot]) {
        const struct command *cmd = &table[index_slots[slot] - 1];
        if (slice_is(name, cmd->name))
            return cmd;
        slot = (slot + 1) & (INDEX_SIZE - 1);
    }
    return NULL;
}

size_t command_count(void)
{
    return TABLE_LEN;
}

const struct command *command_at(size_t i)
{
    return i < TABLE_LEN ? &table[i] : NULL;
}

bool slice_is_cstr(kvs_slice s, const char *lit)
{
    const char *nul = s.len ? memchr(s.data, '\0', s.len) : NULL;
    if (nul)
        s.len = (size_t)(nul - (const char *)s.data);
    return slice_is(s, lit);
}

int slice_to_ll(kvs_slice s, long long *out)
{
    const unsigned char *p = s.data;
    size_t i = 0;
    bool neg = false;
    if (s.len == 0 || s.len > 20)
        return -1;
    if (s.len == 1 && p[0] == '0') {
        *out = 0;
        return 0;
    }
    if (p[0] == '-') {
        neg = true;
        i = 1;
    }
    /* The first digit is 1-9: no leading zeros, no "-0", nothing empty. */
    if (i == s.len || p[i] < '1' || p[i] > '9')
        return -1;
    unsigned long long v = 0;
    unsigned long long limit = neg ? (unsigned long long)LLONG_MAX + 1 : LLONG_MAX;
    for (; i < s.len; i++) {
        if (p[i] < '0' || p[i] > '9')
            return -1;
        unsigned digit = p[i] - '0';
        if (v > (limit - digit) / 10)
            return -1;
        v = v * 10 + digit;
    }
    *out = neg ? (long long)(0 - v) : (long long)v;
    return 0;
}

/* Bytes of s up to its first NUL: what Redis's "%s" of an argument shows. */
static int printable_len(kvs_slice s, size_t max)
{
    if (s.len == 0)
        return 0;
    const char *nul = memchr(s.data, '\0', s.len);
    size_t len = nul ? (size_t)(nul - (const char *)s.data) : s.len;
    return (int)(len < max ? len : max);
}

/* Redis 7's text, byte for byte: the name cut at 128 bytes, then quoted
   arguments until their text passes 128 bytes, each cut to what is left;
   CR and LF become spaces so the error stays one line. */
static void reply_unknown(struct conn *c, size_t argc, const kvs_slice *argv)
{
    char text[512];
    size_t used = (size_t)snprintf(text, sizeof(text),
                                   "ERR unknown command '%.*s', with args beginning with: ",
                                   printable_len(argv[0], 128), (const char *)argv[0].data);
    size_t args_start = used;
    for (size_t i = 1; i < argc && used - args_start < 128; i++) {
        size_t left = 128 - (used - args_start);
        used += (size_t)snprintf(text + used, sizeof(text) - used, "'%.*s' ",
                                 printable_len(argv[i], left), (const char *)argv[i].data);
    }
    for (size_t i = 0; i < used; i++) {
        if (text[i] == '\r' || text[i] == '\n')
            text[i] = ' ';
    }
    reply_error(c, text);
}

/* Whether argc fits an arity: exactly arity, or at least -arity. */
static bool arity_fits(int arity, size_t argc)
{
    return arity > 0 ? argc == (size_t)arity : argc >= (size_t)-arity;
}

void reply_arity_error(struct conn *c, const char *name)
{
    reply_errorf(c, "ERR wrong number of arguments for '%s' command", name);
}

void subcommand_dispatch(struct conn *c, const char *parent, const struct subcommand *subs,
                         size_t nsubs, size_t argc, const kvs_slice *argv)
{
    for (size_t i = 0; i < nsubs; i++) {
        const struct subcommand *sub = &subs[i];
        if (!slice_is(argv[1], sub->name))
            continue;
        /* A command's first slot is its own; its subcommands' follow. */
        if (i + 1 < CMDSTAT_SUBS) {
            c->w->stat_sub = (int)i + 1;
            c->w->stat_sub_name = sub->name;
        }
        if (!arity_fits(sub->arity, argc)) {
            c->w->stat_rejected = true;
            reply_errorf(c, "ERR wrong number of arguments for '%s|%s' command", parent, sub->name);
            return;
        }
        atomic_store_explicit(&c->last_sub, sub->name, memory_order_relaxed);
        sub->proc(c, argc, argv);
        return;
    }
    c->w->stat_sub = -1; /* as Redis, an unknown subcommand is not counted */
    char upper[32];
    size_t n = 0;
    for (; parent[n] && n < sizeof(upper) - 1; n++)
        upper[n] =
            (char)(parent[n] >= 'a' && parent[n] <= 'z' ? parent[n] - ('a' - 'A') : parent[n]);
    upper[n] = '\0';
    char text[256];
    int len = printable_len(argv[1], 128);
    snprintf(text, sizeof(text), "ERR unknown subcommand '%.*s'. Try %s HELP.", len,
             (const char *)argv[1].data, upper);
    for (char *p = text; *p; p++) {
        if (*p == '\r' || *p == '\n')
            *p = ' ';
    }
    reply_error(c, text);
}

void reply_kvs_error(struct conn *c, int err)
{
    const kvs_engine *engine = kvs_db_engine(c->w->srv->store.db);
    if (err == KVS_EKEYSIZE)
        reply_errorf(c, "ERR key too long: engine %s accepts keys up to %zu bytes",
                     kvs_engine_name(engine), kvs_engine_max_key(engine));
    else if (err == KVS_EVALSIZE)
        reply_errorf(c, "ERR value too long: engine %s accepts values up to %zu bytes",
                     kvs_engine_name(engine), kvs_engine_max_value(engine));
    else if (err == KVS_EFULL)
        reply_error(c, "OOM command not allowed when used memory > 'maxmemory'.");
    else if (err == KVS_EBUSY)
        reply_error(c, "ERR Background save already in progress");
    else
        reply_errorf(c, "ERR %s", kvs_strerror(err));
}

/* --max-output-buffer: a client that would be owed more than this is
   closed, as Redis's client-output-buffer-limit hard limit does; the reply
   helpers (reply.h) call this instead of appending. The connection stops
   executing a client's commands while 1 MiB of replies waits for it, so
   a client that never reads is held near that; what this catches is one
   reply too big to owe (MGET of many large values), before it is built. */
void reply_over_limit(struct conn *c, size_t want)
{
    log_warn("client id=%llu addr=%s would be owed %zu bytes of replies, over "
             "max-output-buffer (%zu); closing it",
             (unsigned long long)c->id, c->addr, want, c->out_limit);
    c->flags |= CONN_KILL;
}

/* Redis closes a connection whose first word is POST or Host:, the start
   of an HTTP request that a browser was tricked into sending to the port. */
static bool looks_like_http(kvs_slice name)
{
    return slice_is(name, "post") || slice_is(name, "host:");
}

/* The reply of a command refused by repl_refusal(). */
static void refused_done(struct conn *c, const kvs_op *ops, size_t nops, int rc)
{
    (void)ops;
    (void)nops;
    if (rc == REPL_REFUSE_LOADING)
        reply_error(c, "LOADING Redis is loading the dataset in memory");
    else
        reply_error(c, "READONLY You can't write against a read only replica.");
}

bool command_batched(const struct command *cmd, size_t argc, const kvs_slice *argv)
{
    if (!(cmd->flags & CMD_BATCHED) || !arity_fits(cmd->batch_arity, argc))
        return false;
    if (argc < (size_t)cmd->first_key ||
        (argc - (size_t)cmd->first_key) % (size_t)cmd->key_step != 0)
        return false;
    return !cmd->batch_if || cmd->batch_if(argc, argv);
}

void commands_execute(struct conn *c, const struct command *cmd, size_t argc, const kvs_slice *argv)
{
    if (looks_like_http(argv[0])) {
        log_warn("client id=%llu addr=%s sent an HTTP request line (cross-protocol attack?); "
                 "closing it",
                 (unsigned long long)c->id, c->addr);
        c->flags |= CONN_KILL;
        return;
    }
    if (!cmd) {
        multi_flag(c);
        reply_unknown(c, argc, argv);
        return;
    }
    struct worker *w = c->w;
    unsigned slot = (unsigned)(cmd - table) * CMDSTAT_SUBS;
    if (!arity_fits(cmd->arity, argc)) {
        cmdstats_reject(w->cmdstats, slot);
        multi_flag(c);
        reply_arity_error(c, cmd->name);
        return;
    }
    /* As Redis: an unknown command or a wrong count is answered as such
       before authentication is asked for. */
    if (!(cmd->flags & CMD_NOAUTH) && !auth_conn_allowed(c)) {
        cmdstats_reject(w->cmdstats, slot);
        multi_flag(c);
        reply_error(c, "NOAUTH Authentication required.");
        return;
    }
    /* A replica takes writes from its primary only, and no store is
       served while a full copy loads (repl.h). A batched write is
       refused in its turn, after the writes queued before it. */
    int refused =
        repl_refusal_of(c->w->srv->repl, cmd->flags & CMD_WRITE, cmd->flags & CMD_LOADING);
    if (refused) {
        if (c->npending && command_batched(cmd, argc, argv)) {
            if (!worker_batch_add(c->w, c, refused_done, 0, refused))
                c->flags |= CONN_KILL;
        } else {
            refused_done(c, NULL, 0, refused);
        }
        return;
    }
    /* Between MULTI and EXEC: queued (QUEUED), not run. */
    if (multi_queue(c, cmd, argc, argv))
        return;
    stat_add(&w->stats.commands, 1);
    w->stat_sub = 0;
    w->stat_rejected = false;
    size_t out_len = c->out.len, npending = c->npending;
    uint64_t start = cmdstats_now();
    c->cmd = cmd;
    atomic_store_explicit(&c->last_cmd, cmd, memory_order_relaxed);
    atomic_store_explicit(&c->last_sub, NULL, memory_order_relaxed);
    cmd->proc(c, argc, argv);
    c->cmd = NULL;
    /* MONITOR shows what ran, but administrative commands. */
    if (monitor_any() && !(cmd->flags & CMD_ADMIN))
        monitor_feed(c, argc, argv);
    uint64_t ticks = cmdstats_now() - start;
    /* INFO commandstats: the time of the handler; a batched write's is
       completed when the batch is applied (worker.h). */
    if (w->stat_sub < 0)
        return;
    if (w->stat_sub > 0) {
        slot += (unsigned)w->stat_sub;
        cmdstats_name(w->cmdstats, slot, w->stat_sub_name);
    }
    if (w->stat_rejected)
        cmdstats_reject(w->cmdstats, slot);
    else if (c->npending > npending)
        worker_batch_timed(w, slot, ticks);
    else
        cmdstats_call(w->cmdstats, slot, ticks, command_failed(c, out_len));
}

bool command_failed(const struct conn *c, size_t out_len)
{
    return c->out.len > out_len && ((const char *)c->out.data)[out_len] == '-';
}
