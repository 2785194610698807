/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * MULTI, EXEC, DISCARD, WATCH, UNWATCH; see multi.h. Errors and replies
 * are Redis 7.0's.
 */
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "conn.h"
#include "keyspace.h"
#include "log.h"
#include "multi.h"
#include "reply.h"
#include "worker.h"

/* One queued command: its arguments are at offsets into the queue's
   bytes, which may move as the queue grows. */
struct queued {
    const struct command *cmd;
    size_t argc;
    size_t first_arg; /* index into args */
};

struct queued_arg {
    size_t off, len;
};

struct multi {
    struct queued *cmds;
    size_t n, cap;
    struct queued_arg *args;
    size_t nargs, args_cap;
    kvs_buf bytes;
    bool aborted; /* a command was refused while queueing */
};

/* The batched write a command queued while EXEC runs it. */
struct multi_exec {
    kvs_op *ops;
    size_t cap;
    size_t nops;
    batch_done_fn *done;
    int err;
    bool queued;
    bool oom;
};

bool multi_active(const struct conn *c)
{
    return c->multi != NULL;
}

void multi_flag(struct conn *c)
{
    if (c->multi)
        c->multi->aborted = true;
}

static void multi_free(struct multi *m)
{
    if (!m)
        return;
    free(m->cmds);
    free(m->args);
    kvs_buf_free(&m->bytes);
    free(m);
}

static void multi_end(struct conn *c)
{
    multi_free(c->multi);
    c->multi = NULL;
    atomic_store_explicit(&c->multi_count, -1, memory_order_relaxed);
}

static void unwatch(struct conn *c)
{
    watch_clear(&c->w->srv->store.watch, &c->watch);
}

void multi_reset(struct conn *c)
{
    multi_end(c);
    unwatch(c);
}

void multi_conn_free(struct conn *c)
{
    multi_end(c);
    unwatch(c);
}

static bool grow(void **arr, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap)
        return true;
    size_t ncap = *cap ? *cap * 2 : 16;
    while (ncap < need)
        ncap *= 2;
    void *p = realloc(*arr, ncap * size);
    if (!p)
        return false;
    *arr = p;
    *cap = ncap;
    return true;
}

/* Copy the command into the queue. false when out of memory or over the
   query buffer limit. */
static bool enqueue(struct conn *c, const struct command *cmd, size_t argc, const kvs_slice *argv)
{
    struct multi *m = c->multi;
    size_t bytes = 0;
    for (size_t i = 0; i < argc; i++)
        bytes += argv[i].len;
    if (bytes > c->w->srv->cfg.max_query_buffer ||
        m->bytes.len > c->w->srv->cfg.max_query_buffer - bytes) {
        log_warn("client id=%llu addr=%s: MULTI queue over the query buffer limit, closing",
                 (unsigned long long)c->id, c->addr);
        return false;
    }
    void *cmds = m->cmds, *args = m->args;
    bool ok = grow(&cmds, &m->cap, m->n + 1, sizeof(*m->cmds));
    m->cmds = cmds;
    ok = ok && grow(&args, &m->args_cap, m->nargs + argc, sizeof(*m->args));
    m->args = args;
    ok = ok && kvs_buf_reserve(&m->bytes, m->bytes.len + bytes) == 0;
    if (!ok)
        return false;
    m->cmds[m->n++] = (struct queued){cmd, argc, m->nargs};
    for (size_t i = 0; i < argc; i++) {
        m->args[m->nargs++] = (struct queued_arg){m->bytes.len, argv[i].len};
        if (argv[i].len)
            memcpy((char *)m->bytes.data + m->bytes.len, argv[i].data, argv[i].len);
        m->bytes.len += argv[i].len;
    }
    return true;
}

static bool runs_now(const struct command *cmd)
{
    return cmd->proc == cmd_exec || cmd->proc == cmd_discard || cmd->proc == cmd_multi ||
           cmd->proc == cmd_watch || cmd->proc == cmd_quit || cmd->proc == cmd_reset;
}

bool multi_queue(struct conn *c, const struct command *cmd, size_t argc, const kvs_slice *argv)
{
    if (!c->multi || runs_now(cmd))
        return false;
    if (cmd->flags & CMD_NO_MULTI) {
        multi_flag(c);
        reply_error(c, "ERR Command not allowed inside a transaction");
        return true;
    }
    if (!enqueue(c, cmd, argc, argv)) {
        c->flags |= CONN_KILL;
        return true;
    }
    atomic_store_explicit(&c->multi_count, (int)c->multi->n, memory_order_relaxed);
    reply_simple(c, "QUEUED");
    return true;
}

void cmd_multi(struct conn *c, size_t argc, const kvs_slice *argv)
{
    (void)argc;
    (void)argv;
    if (c->multi) {
        reply_error(c, "ERR MULTI calls can not be nested");
        return;
    }
    c->multi = calloc(1, sizeof(*c->multi));
    if (!c->multi) {
        c->flags |= CONN_KILL;
        return;
    }
    atomic_store_explicit(&c->multi_count, 0, memory_order_relaxed);
    reply_ok(c);
}

void cmd_discard(struct conn *c, size_t argc, const kvs_slice *argv)
{
    (void)argc;
    (void)argv;
    if (!c->multi) {
        reply_error(c, "ERR DISCARD without MULTI");
        return;
    }
    multi_end(c);
    unwatch(c);
    reply_ok(c);
}

void cmd_watch(struct conn *c, size_t argc, const kvs_slice *argv)
{
    if (c->multi) {
        reply_error(c, "ERR WATCH inside MULTI is not allowed");
        return;
    }
    for (size_t i = 1; i < argc; i++) {
        int rc = store_watch(&c->w->srv->store, &c->watch, argv[i]);
        if (rc != 0) {
            reply_kvs_error(c, rc);
            return;
        }
    }
    reply_ok(c);
}

void cmd_unwatch(struct conn *c, size_t argc, const kvs_slice *argv)
{
    (void)argc;
    (void)argv;
    unwatch(c);
    reply_ok(c);
}

/* The arguments of queued command q, as slices into the queue's bytes. */
static void queued_argv(const struct multi *m, const struct queued *q, kvs_slice *argv)
{
    for (size_t i = 0; i < q->argc; i++) {
        const struct queued_arg *a = &m->args[q->first_arg + i];
        argv[i] = (kvs_slice){(const char *)m->bytes.data + a->off, a->len};
    }
}

/* The stripes of the keys a command names, by the table's key positions;
   whether it may clear the store. */
static uint64_t command_stripes(const struct command *cmd, size_t argc, const kvs_slice *argv,
                                bool *clear)
{
    if (cmd->proc == cmd_flushdb)
        *clear = true;
    if (cmd->first_key <= 0 || (size_t)cmd->first_key >= argc)
        return 0;
    long last = cmd->last_key < 0 ? (long)argc + cmd->last_key : cmd->last_key;
    if (last >= (long)argc)
        last = (long)argc - 1;
    uint64_t stripes = 0;
    for (long i = cmd->first_key; i <= last; i += cmd->key_step > 0 ? cmd->key_step : 1)
        stripes |= store_txn_bit(argv[i]);
    return stripes;
}

static void add_stripe(void *ctx, kvs_slice key)
{
    *(uint64_t *)ctx |= store_txn_bit(key);
}

/* Whether a watched key holds a value (for watch_expired), as the
   transaction sees it. */
static bool txn_alive(void *ctx, kvs_slice key)
{
    kvs_buf v = {0};
    int rc = store_txn_get(ctx, key, &v, NULL);
    kvs_buf_free(&v);
    return rc == 0;
}

kvs_op *multi_batch_add(struct worker *w, struct conn *c, batch_done_fn *done, size_t nops, int err)
{
    (void)c;
    struct multi_exec *x = w->exec;
    void *ops = x->ops;
    bool ok = grow(&ops, &x->cap, nops ? nops : 1, sizeof(*x->ops));
    x->ops = ops;
    x->queued = true;
    x->oom = !ok;
    if (!ok)
        return NULL;
    x->nops = nops;
    x->done = done;
    x->err = err;
    return x->ops;
}

/* The reply of an EXEC whose commit failed: the commands' replies are
   taken back and the error given instead. */
static void exec_failed(struct conn *c, size_t mark, int rc)
{
    if (c->out.len > mark)
        c->out.len = mark;
    reply_kvs_error(c, rc);
}

void cmd_exec(struct conn *c, size_t argc, const kvs_slice *argv)
{
    (void)argc;
    (void)argv;
    struct multi *m = c->multi;
    struct worker *w = c->w;
    if (!m) {
        reply_error(c, "ERR EXEC without MULTI");
        return;
    }
    if (m->aborted) {
        multi_end(c);
        unwatch(c);
        reply_error(c, "EXECABORT Transaction discarded because of previous errors.");
        return;
    }
    /* Every key the commands name and every key watched, locked. */
    size_t maxargc = 1;
    for (size_t i = 0; i < m->n; i++)
        maxargc = m->cmds[i].argc > maxargc ? m->cmds[i].argc : maxargc;
    kvs_slice *qargv = malloc(maxargc * sizeof(*qargv));
    if (!qargv) {
        c->flags |= CONN_KILL;
        return;
    }
    uint64_t stripes = 0;
    bool clear = false;
    for (size_t i = 0; i < m->n; i++) {
        queued_argv(m, &m->cmds[i], qargv);
        stripes |= command_stripes(m->cmds[i].cmd, m->cmds[i].argc, qargv, &clear);
    }
    watch_each_key(&c->watch, add_stripe, &stripes);
    struct store_txn txn;
    store_txn_begin(&w->srv->store, &txn, stripes, clear);
    if (atomic_load_explicit(&c->watch.dirty, memory_order_relaxed) ||
        watch_expired(&c->watch, txn_alive, &txn)) {
        store_txn_abort(&txn);
        free(qargv);
        multi_end(c);
        unwatch(c);
        if (reply_room(c, 5))
            reply_check(c, resp_add_nil_array(&c->out));
        return;
    }
    struct multi_exec x = {0};
    size_t mark = c->out.len;
    c->multi = NULL; /* its commands run now, not queued again */
    reply_array(c, m->n);
    w->txn = &txn;
    w->exec = &x;
    const struct command *self = c->cmd;
    for (size_t i = 0; i < m->n; i++) {
        const struct queued *q = &m->cmds[i];
        queued_argv(m, q, qargv);
        x.queued = false;
        commands_execute(c, q->cmd, q->argc, qargv);
        if (!x.queued)
            continue;
        if (x.oom) { /* out of memory queueing it: closed */
            c->flags |= CONN_KILL;
            continue;
        }
        int rc = x.err;
        if (rc == 0)
            rc = store_txn_ops(&txn, x.ops, x.nops);
        x.done(c, x.ops, x.err ? 0 : x.nops, rc);
    }
    w->txn = NULL;
    w->exec = NULL;
    c->cmd = self;
    free(x.ops);
    free(qargv);
    /* Any command of the queue may have changed the subcommand figures
       (cmdstats.h): EXEC's own are EXEC's. */
    w->stat_sub = 0;
    w->stat_rejected = false;
    int rc = store_txn_commit(&txn);
    if (rc != 0)
        exec_failed(c, mark, rc);
    multi_free(m);
    atomic_store_explicit(&c->multi_count, -1, memory_order_relaxed);
    unwatch(c);
}
