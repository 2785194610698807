/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Commands on keys and values: GET, SET, DEL/UNLINK, EXISTS/TOUCH, TYPE,
 * STRLEN, MGET, MSET, DBSIZE, FLUSHDB/FLUSHALL. Run on the connection's
 * worker thread.
 *
 * Reads go to the engine directly. Plain writes (the CMD_BATCHED forms of
 * the command table: SET k v, DEL, UNLINK, MSET) are queued in the
 * worker's batch of the turn (worker.h) and answered by their done() once
 * it is applied through store_write_batch(); SET with options is
 * cmd_expire.c's, and FLUSHDB goes through store_write() at once. A write
 * of a value (SET, MSET) gives the key no expiry time, clearing any it
 * had, as in Redis.
 * Values read are copied into the worker's scratch buffer, then into the
 * reply: the engine never hands out pointers into itself.
 */
#include "commands.h"
#include "conn.h"
#include "keyspace.h"
#include "reply.h"
#include "worker.h"

static kvs_db *db_of(struct conn *c)
{
    return c->w->srv->store.db;
}

/* The size check kvs_db_write() would make, done per command so that one
   oversized key fails its own command and not the whole batch. */
static int check_sizes(struct conn *c, kvs_slice key, const kvs_slice *value)
{
    const kvs_engine *engine = kvs_db_engine(db_of(c));
    if (key.len > kvs_engine_max_key(engine))
        return KVS_EKEYSIZE;
    if (value && value->len > kvs_engine_max_value(engine))
        return KVS_EVALSIZE;
    return 0;
}

/* Queue a command's ops; when out of memory nothing is queued and the
   connection is closed, as when a reply cannot be built. */
static kvs_op *batch_add(struct conn *c, batch_done_fn *done, size_t nops, int err)
{
    kvs_op *ops = worker_batch_add(c->w, c, done, nops, err);
    if (!ops)
        c->flags |= CONN_KILL; /* as a reply that cannot be built */
    return ops;
}

/* SET and MSET: OK once applied. */
static void set_done(struct conn *c, const kvs_op *ops, size_t nops, int rc)
{
    (void)ops;
    (void)nops;
    if (rc != 0)
        reply_kvs_error(c, rc);
    else
        reply_ok(c);
}

/* DEL: the number of keys that were there, alive: each key's second op
   (see cmd_del). */
static void del_done(struct conn *c, const kvs_op *ops, size_t nops, int rc)
{
    if (rc != 0) {
        reply_kvs_error(c, rc);
        return;
    }
    long long removed = 0, expired = 0;
    for (size_t i = 0; i + 1 < nops; i += 2) {
        expired += ops[i].result == 0;
        removed += ops[i + 1].result == 0;
    }
    stat_add(&c->w->stats.expired, (uint64_t)expired);
    reply_int(c, removed);
}

void cmd_get(struct conn *c, size_t argc, const kvs_slice *argv)
{
    (void)argc;
    struct worker *w = c->w;
    int rc = ks_get(c, argv[1], &w->scratch, NULL);
    if (rc == 0) {
        stat_add(&w->stats.hits, 1);
        reply_bulk(c, w->scratch.data, w->scratch.len);
    } else if (rc == KVS_ENOTFOUND) {
        stat_add(&w->stats.misses, 1);
        reply_nil(c);
    } else {
        reply_kvs_error(c, rc);
    }
}

/* SET key value [NX|XX] [GET] [EX s|PX ms|EXAT t|PXAT t|KEEPTTL]: the plain
   form is batched here; the others are cmd_expire.c's. */
void cmd_set(struct conn *c, size_t argc, const kvs_slice *argv)
{
    if (argc != 3) {
        set_with_options(c, argc, argv);
        return;
    }
    int err = check_sizes(c, argv[1], &argv[2]);
    kvs_op *op = batch_add(c, set_done, err ? 0 : 1, err);
    if (op && !err)
        *op = (kvs_op){.type = KVS_OP_SET, .key = argv[1], .value = argv[2]};
}

/* DEL and UNLINK (kvs frees nothing in the background, so they are one
   command): the keys are removed in one batch, with the writes around
   them. A key whose time has passed is still stored until the active
   expiry removes it, and an engine's remove counts it as found; Redis
   counts it as missing. So each key gets two ops, applied in order under
   the same locks: a KVS_OP_EXPIRE that removes it if its time has passed,
   then the KVS_OP_REMOVE whose result DEL counts. */
void cmd_del(struct conn *c, size_t argc, const kvs_slice *argv)
{
    int err = 0;
    for (size_t i = 1; i < argc && !err; i++)
        err = check_sizes(c, argv[i], NULL);
    kvs_op *ops = batch_add(c, del_done, err ? 0 : 2 * (argc - 1), err);
    if (!ops || err)
        return;
    int64_t now = kvs_now_ms();
    for (size_t i = 1; i < argc; i++) {
        ops[2 * i - 2] = (kvs_op){.type = KVS_OP_EXPIRE, .key = argv[i], .expire_at = now};
        ops[2 * i - 1] = (kvs_op){.type = KVS_OP_REMOVE, .key = argv[i]};
    }
}

/* The reads of EXISTS and MGET, done again if a transaction committed
   while they ran (keyspace.h). */
struct many {
    struct conn *c;
    size_t argc;
    const kvs_slice *argv;
    size_t mark; /* c->out.len before the reply */
    long long found;
};

static bool exists_all(void *ctx)
{
    struct many *m = ctx;
    m->found = 0;
    for (size_t i = 1; i < m->argc; i++) {
        int rc = ks_get(m->c, m->argv[i], &m->c->w->scratch, NULL);
        if (rc != 0 && rc != KVS_ENOTFOUND) {
            m->found = rc;
            return false;
        }
        m->found += rc == 0;
    }
    return true;
}

/* EXISTS and TOUCH (kvs keeps no access times): counts a key named twice
   twice, as Redis does. */
void cmd_exists(struct conn *c, size_t argc, const kvs_slice *argv)
{
    struct many m = {c, argc, argv, 0, 0};
    ks_read_many(c, argv + 1, argc - 1, 1, exists_all, &m);
    if (m.found < 0)
        reply_kvs_error(c, (int)m.found);
    else
        reply_int(c, m.found);
}

/* Every kvs key holds a string. */
void cmd_type(struct conn *c, size_t argc, const kvs_slice *argv)
{
    (void)argc;
    int rc = ks_get(c, argv[1], &c->w->scratch, NULL);
    if (rc == 0)
        reply_simple(c, "string");
    else if (rc == KVS_ENOTFOUND)
        reply_simple(c, "none");
    else
        reply_kvs_error(c, rc);
}

/* 0 for a missing key, as Redis. */
void cmd_strlen(struct conn *c, size_t argc, const kvs_slice *argv)
{
    (void)argc;
    int rc = ks_get(c, argv[1], &c->w->scratch, NULL);
    if (rc == 0)
        reply_int(c, (long long)c->w->scratch.len);
    else if (rc == KVS_ENOTFOUND)
        reply_int(c, 0);
    else
        reply_kvs_error(c, rc);
}

/* MGET's reads and reply; on an engine error the partial array is taken
   back and replaced by the error, so the client sees one well-formed
   reply. Once a value does not fit under --max-output-buffer the client
   is being closed (reply.h): the rest is not read. */
static bool mget_all(void *ctx)
{
    struct many *m = ctx;
    struct conn *c = m->c;
    struct worker *w = c->w;
    c->out.len = m->mark;
    reply_array(c, m->argc - 1);
    for (size_t i = 1; i < m->argc && !(c->flags & CONN_KILL); i++) {
        int rc = ks_get(c, m->argv[i], &w->scratch, NULL);
        if (rc == 0) {
            stat_add(&w->stats.hits, 1);
            reply_bulk(c, w->scratch.data, w->scratch.len);
        } else if (rc == KVS_ENOTFOUND) {
            stat_add(&w->stats.misses, 1);
            reply_nil(c);
        } else {
            c->out.len = m->mark;
            reply_kvs_error(c, rc);
            return false;
        }
    }
    return !(c->flags & CONN_KILL);
}

void cmd_mget(struct conn *c, size_t argc, const kvs_slice *argv)
{
    struct many m = {c, argc, argv, c->out.len, 0};
    ks_read_many(c, argv + 1, argc - 1, 1, mget_all, &m);
}

/* All the pairs go into the same kvs_db_write() as the rest of the turn's
   batch (one append for kvs, one transaction for lmdb, once the engines
   implement .write). An oversized key or value fails the whole command,
   writing nothing. */
void cmd_mset(struct conn *c, size_t argc, const kvs_slice *argv)
{
    /* The table's batch rule is MSET's own: whole key/value pairs. */
    if (!command_batched(c->cmd, argc, argv)) {
        reply_arity_error(c, "mset");
        return;
    }
    int err = 0;
    for (size_t i = 1; i < argc && !err; i += 2)
        err = check_sizes(c, argv[i], &argv[i + 1]);
    size_t npairs = (argc - 1) / 2;
    kvs_op *ops = batch_add(c, set_done, err ? 0 : npairs, err);
    if (!ops || err)
        return;
    for (size_t i = 0; i < npairs; i++)
        ops[i] = (kvs_op){.type = KVS_OP_SET, .key = argv[1 + 2 * i], .value = argv[2 + 2 * i]};
}

void cmd_dbsize(struct conn *c, size_t argc, const kvs_slice *argv)
{
    (void)argc;
    (void)argv;
    uint64_t keys;
    int rc = ks_dbsize(c, &keys);
    if (rc != 0)
        reply_kvs_error(c, rc);
    else
        reply_int(c, (long long)keys);
}

/* FLUSHDB and FLUSHALL [ASYNC|SYNC]: one database, so the same thing;
   always synchronous. */
void cmd_flushdb(struct conn *c, size_t argc, const kvs_slice *argv)
{
    if (argc > 2 || (argc == 2 && !slice_is(argv[1], "async") && !slice_is(argv[1], "sync"))) {
        reply_error(c, "ERR syntax error");
        return;
    }
    kvs_slice none = {NULL, 0};
    int rc = ks_write(c, STORE_CLEAR, none, none, 0);
    if (rc != 0)
        reply_kvs_error(c, rc);
    else
        reply_ok(c);
}
