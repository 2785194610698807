/*
 * Commands on keys and values: GET, SET, DEL, EXISTS, MGET, MSET, DBSIZE,
 * FLUSHDB/FLUSHALL. Run on the connection's worker thread.
 *
 * Reads go to the engine directly; every write goes through
 * store_write(). Values read are copied into the worker's scratch buffer,
 * then into the reply: the engine never hands out pointers into itself.
 */
#include "commands.h"
#include "conn.h"
#include "reply.h"
#include "worker.h"

static kvs_db *db_of(struct conn *c)
{
    return c->w->srv->store.db;
}

static struct store *store_of(struct conn *c)
{
    return &c->w->srv->store;
}

void cmd_get(struct conn *c, size_t argc, const kvs_slice *argv)
{
    (void)argc;
    struct worker *w = c->w;
    int rc = kvs_db_get(db_of(c), argv[1], &w->scratch);
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

/* The SET options kvs cannot honour yet: they all need key expiry. */
static bool is_expiry_option(kvs_slice opt, bool *takes_value)
{
    *takes_value = slice_is(opt, "ex") || slice_is(opt, "px") || slice_is(opt, "exat") ||
                   slice_is(opt, "pxat");
    return *takes_value || slice_is(opt, "keepttl");
}

/* SET key value [NX|XX] [GET] [EX s|PX ms|EXAT t|PXAT t|KEEPTTL] */
void cmd_set(struct conn *c, size_t argc, const kvs_slice *argv)
{
    enum store_cond cond = STORE_ALWAYS;
    bool get = false;
    kvs_slice expiry = {NULL, 0};
    for (size_t i = 3; i < argc; i++) {
        bool takes_value;
        if (slice_is(argv[i], "nx") && cond != STORE_IF_PRESENT) {
            cond = STORE_IF_ABSENT;
        } else if (slice_is(argv[i], "xx") && cond != STORE_IF_ABSENT) {
            cond = STORE_IF_PRESENT;
        } else if (slice_is(argv[i], "get")) {
            get = true;
        } else if (is_expiry_option(argv[i], &takes_value) && !expiry.data) {
            expiry = argv[i];
            if (takes_value && ++i == argc) {
                reply_error(c, "ERR syntax error");
                return;
            }
        } else {
            reply_error(c, "ERR syntax error");
            return;
        }
    }
    if (expiry.data) {
        reply_errorf(c, "ERR SET option '%.*s' is not supported: kvs keys do not expire",
                     (int)expiry.len, (const char *)expiry.data);
        return;
    }
    struct worker *w = c->w;
    bool want_old = get || cond != STORE_ALWAYS;
    bool had_old = false;
    int rc = store_write(store_of(c), STORE_SET, argv[1], argv[2], cond,
                         want_old ? &w->scratch : NULL, &had_old);
    if (rc < 0)
        reply_kvs_error(c, rc);
    else if (get && had_old)
        reply_bulk(c, w->scratch.data, w->scratch.len);
    else if (get || rc == STORE_SKIPPED)
        reply_nil(c);
    else
        reply_ok(c);
}

void cmd_del(struct conn *c, size_t argc, const kvs_slice *argv)
{
    long long removed = 0;
    kvs_slice none = {NULL, 0};
    for (size_t i = 1; i < argc; i++) {
        int rc = store_write(store_of(c), STORE_DEL, argv[i], none, STORE_ALWAYS, NULL, NULL);
        if (rc < 0) {
            reply_kvs_error(c, rc);
            return;
        }
        removed += rc == 0;
    }
    reply_int(c, removed);
}

/* Counts a key named twice twice, as Redis does. */
void cmd_exists(struct conn *c, size_t argc, const kvs_slice *argv)
{
    long long found = 0;
    for (size_t i = 1; i < argc; i++) {
        int rc = kvs_db_get(db_of(c), argv[i], &c->w->scratch);
        if (rc != 0 && rc != KVS_ENOTFOUND) {
            reply_kvs_error(c, rc);
            return;
        }
        found += rc == 0;
    }
    reply_int(c, found);
}

void cmd_mget(struct conn *c, size_t argc, const kvs_slice *argv)
{
    struct worker *w = c->w;
    /* On an engine error the partial array is taken back and replaced by
       the error, so the client sees one well-formed reply. */
    size_t mark = c->out.len;
    reply_array(c, argc - 1);
    for (size_t i = 1; i < argc; i++) {
        int rc = kvs_db_get(db_of(c), argv[i], &w->scratch);
        if (rc == 0) {
            stat_add(&w->stats.hits, 1);
            reply_bulk(c, w->scratch.data, w->scratch.len);
        } else if (rc == KVS_ENOTFOUND) {
            stat_add(&w->stats.misses, 1);
            reply_nil(c);
        } else {
            c->out.len = mark;
            reply_kvs_error(c, rc);
            return;
        }
    }
}

/* Not atomic: the keys are written one by one, so a reader may see some
   of them before the others (the engine interface has no batch yet). */
void cmd_mset(struct conn *c, size_t argc, const kvs_slice *argv)
{
    if ((argc - 1) % 2 != 0) {
        reply_arity_error(c, "mset");
        return;
    }
    for (size_t i = 1; i < argc; i += 2) {
        int rc =
            store_write(store_of(c), STORE_SET, argv[i], argv[i + 1], STORE_ALWAYS, NULL, NULL);
        if (rc < 0) {
            reply_kvs_error(c, rc);
            return;
        }
    }
    reply_ok(c);
}

void cmd_dbsize(struct conn *c, size_t argc, const kvs_slice *argv)
{
    (void)argc;
    (void)argv;
    kvs_stats st;
    int rc = kvs_db_stats(db_of(c), &st);
    if (rc != 0)
        reply_kvs_error(c, rc);
    else
        reply_int(c, (long long)st.keys);
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
    int rc = store_write(store_of(c), STORE_CLEAR, none, none, STORE_ALWAYS, NULL, NULL);
    if (rc != 0)
        reply_kvs_error(c, rc);
    else
        reply_ok(c);
}
