/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Commands with expiry times: SET's options (NX, XX, GET, EX, PX, EXAT,
 * PXAT, KEEPTTL), SETEX, PSETEX, GETEX, EXPIRE, PEXPIRE, EXPIREAT,
 * PEXPIREAT, TTL, PTTL, EXPIRETIME, PEXPIRETIME, PERSIST. Run on the
 * connection's worker thread.
 *
 * Each follows Redis 7.0's code path step for step, so that its replies
 * and errors come in the same order: options first, then the time, then
 * the key. A relative time (EX, PX, EXPIRE...) becomes absolute here, once,
 * against kvs_now_ms(); the store and the engines only ever see absolute
 * times. A time already past removes the key, as Redis does.
 *
 * An unconditional write with a time (SET k v EX|PX|EXAT|PXAT t, SETEX,
 * PSETEX) is queued in the worker's batch of the turn, as a plain SET is.
 * A write that needs the key's current state (NX, XX, GET, KEEPTTL, GETEX
 * with an option, the EXPIRE family, PERSIST) is a store_update(): read,
 * decide and write under the key's lock, so a concurrent SET of the key
 * lands before or after it, never in between. Changing only a key's time
 * writes its value again with the new time (the engines keep the time
 * with the value).
 */
#include <limits.h>
#include <stdint.h>
#include <string.h>

#include "commands.h"
#include "conn.h"
#include "keyspace.h"
#include "reply.h"
#include "worker.h"

static kvs_db *db_of(struct conn *c)
{
    return c->w->srv->store.db;
}

/* The options of SET and GETEX, as Redis's parseExtendedStringArguments
   names them. */
enum {
    OPT_NX = 1u << 0,
    OPT_XX = 1u << 1,
    OPT_GET = 1u << 2,
    OPT_KEEPTTL = 1u << 3,
    OPT_PERSIST = 1u << 4,
    OPT_EX = 1u << 5,
    OPT_PX = 1u << 6,
    OPT_EXAT = 1u << 7,
    OPT_PXAT = 1u << 8,
};

#define OPT_TIMES (OPT_EX | OPT_PX | OPT_EXAT | OPT_PXAT)

/* The time options but one: with any of them set, that one is refused. */
#define OPT_TIMES_BUT(opt) (OPT_TIMES & ~(unsigned)(opt))

/*
 * Parse argv[from..] as SET's options (set) or GETEX's, exactly as Redis
 * 7.0 does: names compared up to a NUL byte, ignoring case; NX/XX,
 * KEEPTTL/PERSIST and the four times exclude one another, but the same
 * option may repeat (the last time given wins). Replies "ERR syntax error"
 * and returns -1 on anything else.
 */
static int parse_string_options(struct conn *c, size_t argc, const kvs_slice *argv, size_t from,
                                bool set, unsigned *flags, kvs_slice *time)
{
    *flags = 0;
    for (size_t j = from; j < argc; j++) {
        kvs_slice opt = argv[j];
        bool next = j + 1 < argc;
        unsigned f = *flags;
        unsigned take = 0;
        if (set && slice_is_cstr(opt, "nx") && !(f & OPT_XX))
            take = OPT_NX;
        else if (set && slice_is_cstr(opt, "xx") && !(f & OPT_NX))
            take = OPT_XX;
        else if (set && slice_is_cstr(opt, "get"))
            take = OPT_GET;
        else if (set && slice_is_cstr(opt, "keepttl") && !(f & (OPT_PERSIST | OPT_TIMES)))
            take = OPT_KEEPTTL;
        else if (!set && slice_is_cstr(opt, "persist") && !(f & (OPT_KEEPTTL | OPT_TIMES)))
            take = OPT_PERSIST;
        else if (slice_is_cstr(opt, "ex") && next &&
                 !(f & (OPT_KEEPTTL | OPT_PERSIST | OPT_TIMES_BUT(OPT_EX))))
            take = OPT_EX;
        else if (slice_is_cstr(opt, "px") && next &&
                 !(f & (OPT_KEEPTTL | OPT_PERSIST | OPT_TIMES_BUT(OPT_PX))))
            take = OPT_PX;
        else if (slice_is_cstr(opt, "exat") && next &&
                 !(f & (OPT_KEEPTTL | OPT_PERSIST | OPT_TIMES_BUT(OPT_EXAT))))
            take = OPT_EXAT;
        else if (slice_is_cstr(opt, "pxat") && next &&
                 !(f & (OPT_KEEPTTL | OPT_PERSIST | OPT_TIMES_BUT(OPT_PXAT))))
            take = OPT_PXAT;
        if (!take) {
            reply_error(c, "ERR syntax error");
            return -1;
        }
        *flags |= take;
        if (take & OPT_TIMES)
            *time = argv[++j];
    }
    return 0;
}

enum time_result { TIME_OK, TIME_NOT_INTEGER, TIME_INVALID };

/*
 * The absolute expiry time (ms since the epoch) that the time option in
 * flags with argument text gives, as Redis's getExpireMillisecondsOrReply
 * computes it: a positive integer, in seconds for EX and EXAT, relative to
 * now for EX and PX; TIME_INVALID when it is not positive or the result
 * does not fit in 63 bits.
 */
static enum time_result string_option_time(unsigned flags, kvs_slice text, int64_t now, int64_t *at)
{
    long long v;
    if (slice_to_ll(text, &v) != 0)
        return TIME_NOT_INTEGER;
    bool seconds = flags & (OPT_EX | OPT_EXAT);
    if (v <= 0 || (seconds && v > LLONG_MAX / 1000))
        return TIME_INVALID;
    if (seconds)
        v *= 1000;
    if (flags & (OPT_EX | OPT_PX)) {
        if (v > LLONG_MAX - now)
            return TIME_INVALID;
        v += now;
    }
    *at = v;
    return TIME_OK;
}

/* The error of a time that is not TIME_OK, naming the command. */
static void reply_time_error(struct conn *c, enum time_result r)
{
    if (r == TIME_NOT_INTEGER)
        reply_error(c, "ERR value is not an integer or out of range");
    else
        reply_errorf(c, "ERR invalid expire time in '%s' command", c->cmd->name);
}

/* A SET that reads the key first: NX, XX, GET or KEEPTTL. */
struct set_update {
    unsigned flags;
    kvs_slice value;
    int64_t at;   /* the new expiry time, 0: none */
    bool past;    /* at has already passed: the key goes */
    bool skipped; /* out: NX found the key, or XX did not */
};

static void decide_set(void *ctx, struct store_rmw *u)
{
    struct set_update *s = ctx;
    s->skipped = ((s->flags & OPT_NX) && u->found) || ((s->flags & OPT_XX) && !u->found);
    if (s->skipped)
        return;
    if (s->past) {
        if (u->found)
            u->action = STORE_REMOVE;
        return;
    }
    u->action = STORE_PUT;
    u->put_value = s->value;
    u->put_expire_at = (s->flags & OPT_KEEPTTL) ? u->expire_at : s->at;
}

/* The replies of refused batched SETs with a time (worker_batch_add's
   err): positive, so that none can be taken for a kvs_err. */
enum {
    BATCH_NOT_INTEGER = 1,
    BATCH_INVALID_TIME, /* + the index of the command's name below */
};

static const char *const timed_set_names[] = {"set", "setex", "psetex"};

static void timed_set_done(struct conn *c, const kvs_op *ops, size_t nops, int rc)
{
    (void)ops;
    (void)nops;
    if (rc == BATCH_NOT_INTEGER)
        reply_error(c, "ERR value is not an integer or out of range");
    else if (rc >= BATCH_INVALID_TIME)
        reply_errorf(c, "ERR invalid expire time in '%s' command",
                     timed_set_names[rc - BATCH_INVALID_TIME]);
    else if (rc != 0)
        reply_kvs_error(c, rc);
    else
        reply_ok(c);
}

/* SET k v EX|PX|EXAT|PXAT t, SETEX, PSETEX: an unconditional write with
   a time, queued in the worker's batch as plain SETs are (a time already
   past queues a remove); its error, if any, is answered in its turn. */
static void queue_timed_set(struct conn *c, kvs_slice key, kvs_slice value, unsigned flags,
                            kvs_slice time)
{
    int64_t now = kvs_now_ms(), at = 0;
    int err = 0;
    enum time_result tr = string_option_time(flags, time, now, &at);
    const kvs_engine *engine = kvs_db_engine(db_of(c));
    if (tr == TIME_NOT_INTEGER) {
        err = BATCH_NOT_INTEGER;
    } else if (tr == TIME_INVALID) {
        size_t i = 0;
        while (i + 1 < sizeof(timed_set_names) / sizeof(timed_set_names[0]) &&
               strcmp(c->cmd->name, timed_set_names[i]) != 0)
            i++;
        err = BATCH_INVALID_TIME + (int)i;
    } else if (key.len > kvs_engine_max_key(engine)) {
        err = KVS_EKEYSIZE;
    } else if (value.len > kvs_engine_max_value(engine)) {
        err = KVS_EVALSIZE;
    }
    kvs_op *op = worker_batch_add(c->w, c, timed_set_done, err ? 0 : 1, err);
    if (!op) {
        c->flags |= CONN_KILL; /* as a reply that cannot be built */
        return;
    }
    if (err)
        return;
    if (at <= now) /* only EXAT and PXAT can be */
        *op = (kvs_op){.type = KVS_OP_REMOVE, .key = key};
    else
        *op = (kvs_op){.type = KVS_OP_SET, .key = key, .value = value, .expire_at = at};
}

bool set_batchable(size_t argc, const kvs_slice *argv)
{
    return argc == 3 ||
           (argc == 5 && (slice_is_cstr(argv[3], "ex") || slice_is_cstr(argv[3], "px") ||
                          slice_is_cstr(argv[3], "exat") || slice_is_cstr(argv[3], "pxat")));
}

/* Redis's setGenericCommand: SET with options, SETEX, PSETEX. flags are
   parse_string_options()'s; time is the argument of its time option. */
static void set_generic(struct conn *c, kvs_slice key, kvs_slice value, unsigned flags,
                        kvs_slice time)
{
    struct set_update s = {.flags = flags, .value = value};
    if (flags & OPT_TIMES) {
        int64_t now = kvs_now_ms();
        enum time_result tr = string_option_time(flags, time, now, &s.at);
        if (tr != TIME_OK) {
            reply_time_error(c, tr);
            return;
        }
        s.past = s.at <= now; /* only EXAT and PXAT can be */
    }
    /* Sizes first, so that a SET that would be skipped fails as one that
       would not. */
    const kvs_engine *engine = kvs_db_engine(db_of(c));
    if (key.len > kvs_engine_max_key(engine) || value.len > kvs_engine_max_value(engine)) {
        reply_kvs_error(c, key.len > kvs_engine_max_key(engine) ? KVS_EKEYSIZE : KVS_EVALSIZE);
        return;
    }
    int rc;
    if (!(flags & (OPT_NX | OPT_XX | OPT_GET | OPT_KEEPTTL))) {
        kvs_slice none = {NULL, 0};
        rc = s.past ? ks_write(c, STORE_DEL, key, none, 0)
                    : ks_write(c, STORE_SET, key, value, s.at);
        if (rc < 0)
            reply_kvs_error(c, rc);
        else
            reply_ok(c);
        return;
    }
    struct worker *w = c->w;
    struct store_rmw u;
    rc = ks_update(c, key, &w->scratch, decide_set, &s, &u);
    if (rc < 0)
        reply_kvs_error(c, rc);
    else if ((flags & OPT_GET) && u.found)
        reply_bulk(c, w->scratch.data, w->scratch.len);
    else if ((flags & OPT_GET) || s.skipped)
        reply_nil(c);
    else
        reply_ok(c);
}

/* SET key value [NX|XX] [GET] [EX s|PX ms|EXAT t|PXAT t|KEEPTTL], but for
   the plain SET key value that cmd_set() batches. */
void set_with_options(struct conn *c, size_t argc, const kvs_slice *argv)
{
    unsigned flags;
    kvs_slice time = {NULL, 0};
    bool batched = command_batched(c->cmd, argc, argv);
    /* A batched form cannot be a syntax error: its reply may not overtake
       those of the writes queued before it. */
    if (parse_string_options(c, argc, argv, 3, true, &flags, &time) != 0)
        return;
    if (batched)
        queue_timed_set(c, argv[1], argv[2], flags, time);
    else
        set_generic(c, argv[1], argv[2], flags, time);
}

/* SETEX key seconds value: batched. */
void cmd_setex(struct conn *c, size_t argc, const kvs_slice *argv)
{
    (void)argc;
    queue_timed_set(c, argv[1], argv[3], OPT_EX, argv[2]);
}

/* PSETEX key milliseconds value: batched. */
void cmd_psetex(struct conn *c, size_t argc, const kvs_slice *argv)
{
    (void)argc;
    queue_timed_set(c, argv[1], argv[3], OPT_PX, argv[2]);
}

struct getex_update {
    unsigned flags;
    enum time_result time; /* of the time option, if any */
    int64_t at, now;
};

static void decide_getex(void *ctx, struct store_rmw *u)
{
    const struct getex_update *g = ctx;
    if (!u->found || g->time != TIME_OK)
        return;
    if (g->flags & OPT_TIMES) {
        u->action = g->at <= g->now ? STORE_REMOVE : STORE_PUT;
    } else if (u->expire_at) { /* PERSIST of a key with a time */
        u->action = STORE_PUT;
    }
    u->put_value = (kvs_slice){u->value->data, u->value->len};
    u->put_expire_at = (g->flags & OPT_TIMES) ? g->at : 0;
}

/* GETEX key [EX s|PX ms|EXAT t|PXAT t|PERSIST]: the value, then the time
   changed. As in Redis, a missing key is nil before the time is checked. */
void cmd_getex(struct conn *c, size_t argc, const kvs_slice *argv)
{
    struct getex_update g = {.time = TIME_OK};
    kvs_slice time = {NULL, 0};
    if (parse_string_options(c, argc, argv, 2, false, &g.flags, &time) != 0)
        return;
    struct worker *w = c->w;
    struct store_rmw u = {.found = false};
    int rc;
    if (g.flags == 0) {
        rc = ks_get(c, argv[1], &w->scratch, NULL);
        u.found = rc == 0;
        rc = rc == KVS_ENOTFOUND ? 0 : rc;
    } else {
        g.now = kvs_now_ms();
        if (g.flags & OPT_TIMES)
            g.time = string_option_time(g.flags, time, g.now, &g.at);
        rc = ks_update(c, argv[1], &w->scratch, decide_getex, &g, &u);
    }
    if (rc < 0) {
        reply_kvs_error(c, rc);
    } else if (!u.found) {
        stat_add(&w->stats.misses, 1);
        reply_nil(c);
    } else if (g.time != TIME_OK) {
        reply_time_error(c, g.time);
    } else {
        stat_add(&w->stats.hits, 1);
        reply_bulk(c, w->scratch.data, w->scratch.len);
    }
}

/* The options of the EXPIRE family. */
enum { EXP_NX = 1, EXP_XX = 2, EXP_GT = 4, EXP_LT = 8 };

struct expire_update {
    unsigned flags;
    int64_t when, now;
    bool changed; /* out: the reply, 1 or 0 */
};

static void decide_expire(void *ctx, struct store_rmw *u)
{
    struct expire_update *e = ctx;
    e->changed = false;
    if (!u->found)
        return;
    /* No time is an infinite one: GT never passes it, LT always does. */
    bool has = u->expire_at != 0;
    if (((e->flags & EXP_NX) && has) || ((e->flags & EXP_XX) && !has) ||
        ((e->flags & EXP_GT) && (!has || e->when <= u->expire_at)) ||
        ((e->flags & EXP_LT) && has && e->when >= u->expire_at))
        return;
    e->changed = true;
    if (e->when <= e->now) {
        u->action = STORE_REMOVE;
        return;
    }
    u->action = STORE_PUT;
    u->put_value = (kvs_slice){u->value->data, u->value->len};
    u->put_expire_at = e->when;
}

/* Redis's expireGenericCommand: EXPIRE, PEXPIRE (relative to now),
   EXPIREAT, PEXPIREAT; seconds or milliseconds. */
static void expire_generic(struct conn *c, size_t argc, const kvs_slice *argv, bool relative,
                           bool seconds)
{
    struct expire_update e = {0};
    for (size_t j = 3; j < argc; j++) {
        if (slice_is_cstr(argv[j], "nx")) {
            e.flags |= EXP_NX;
        } else if (slice_is_cstr(argv[j], "xx")) {
            e.flags |= EXP_XX;
        } else if (slice_is_cstr(argv[j], "gt")) {
            e.flags |= EXP_GT;
        } else if (slice_is_cstr(argv[j], "lt")) {
            e.flags |= EXP_LT;
        } else {
            /* Redis prints the option as a C string: up to a NUL byte. */
            const char *nul = argv[j].len ? memchr(argv[j].data, '\0', argv[j].len) : NULL;
            size_t len = nul ? (size_t)(nul - (const char *)argv[j].data) : argv[j].len;
            if (reply_room(c, len + 64))
                reply_check(c, resp_add_errorf(&c->out, "ERR Unsupported option %.*s", (int)len,
                                               (const char *)argv[j].data));
            return;
        }
    }
    if ((e.flags & EXP_NX) && (e.flags & (EXP_XX | EXP_GT | EXP_LT))) {
        reply_error(c, "ERR NX and XX, GT or LT options at the same time are not compatible");
        return;
    }
    if ((e.flags & EXP_GT) && (e.flags & EXP_LT)) {
        reply_error(c, "ERR GT and LT options at the same time are not compatible");
        return;
    }
    long long when;
    if (slice_to_ll(argv[2], &when) != 0) {
        reply_error(c, "ERR value is not an integer or out of range");
        return;
    }
    /* Negative times are allowed (the key goes); only overflow is not. */
    e.now = kvs_now_ms();
    if (seconds) {
        if (when > LLONG_MAX / 1000 || when < LLONG_MIN / 1000) {
            reply_time_error(c, TIME_INVALID);
            return;
        }
        when *= 1000;
    }
    long long base = relative ? e.now : 0;
    if (when > LLONG_MAX - base) {
        reply_time_error(c, TIME_INVALID);
        return;
    }
    e.when = when + base;
    struct store_rmw u;
    int rc = ks_update(c, argv[1], &c->w->scratch, decide_expire, &e, &u);
    if (rc < 0)
        reply_kvs_error(c, rc);
    else
        reply_int(c, e.changed);
}

/* EXPIRE key seconds [NX|XX|GT|LT] */
void cmd_expire(struct conn *c, size_t argc, const kvs_slice *argv)
{
    expire_generic(c, argc, argv, true, true);
}

/* PEXPIRE key milliseconds [NX|XX|GT|LT] */
void cmd_pexpire(struct conn *c, size_t argc, const kvs_slice *argv)
{
    expire_generic(c, argc, argv, true, false);
}

/* EXPIREAT key unix-time-seconds [NX|XX|GT|LT] */
void cmd_expireat(struct conn *c, size_t argc, const kvs_slice *argv)
{
    expire_generic(c, argc, argv, false, true);
}

/* PEXPIREAT key unix-time-milliseconds [NX|XX|GT|LT] */
void cmd_pexpireat(struct conn *c, size_t argc, const kvs_slice *argv)
{
    expire_generic(c, argc, argv, false, false);
}

static void decide_persist(void *ctx, struct store_rmw *u)
{
    (void)ctx;
    if (!u->found || !u->expire_at)
        return;
    u->action = STORE_PUT;
    u->put_value = (kvs_slice){u->value->data, u->value->len};
    u->put_expire_at = 0;
}

/* PERSIST key: 1 if the key had a time and now has none. */
void cmd_persist(struct conn *c, size_t argc, const kvs_slice *argv)
{
    (void)argc;
    struct store_rmw u;
    int rc = ks_update(c, argv[1], &c->w->scratch, decide_persist, NULL, &u);
    if (rc < 0)
        reply_kvs_error(c, rc);
    else
        reply_int(c, u.action == STORE_PUT);
}

/* Redis's ttlGenericCommand: -2 for a missing key, -1 for one without a
   time, else what is left (ms), or the time itself (abs), in seconds
   rounded to the nearest unless ms. */
static void ttl_generic(struct conn *c, const kvs_slice *argv, bool ms, bool abs)
{
    int64_t at = 0;
    int rc = ks_get(c, argv[1], &c->w->scratch, &at);
    if (rc == KVS_ENOTFOUND) {
        reply_int(c, -2);
        return;
    }
    if (rc != 0) {
        reply_kvs_error(c, rc);
        return;
    }
    if (at == 0) {
        reply_int(c, -1);
        return;
    }
    int64_t ttl = abs ? at : at - kvs_now_ms();
    if (ttl < 0)
        ttl = 0;
    /* Unsigned, so that a time near 2^63 rounds up as Redis shows it. */
    reply_int(c, ms ? ttl : (long long)(((uint64_t)ttl + 500) / 1000));
}

void cmd_ttl(struct conn *c, size_t argc, const kvs_slice *argv)
{
    (void)argc;
    ttl_generic(c, argv, false, false);
}

void cmd_pttl(struct conn *c, size_t argc, const kvs_slice *argv)
{
    (void)argc;
    ttl_generic(c, argv, true, false);
}

void cmd_expiretime(struct conn *c, size_t argc, const kvs_slice *argv)
{
    (void)argc;
    ttl_generic(c, argv, false, true);
}

void cmd_pexpiretime(struct conn *c, size_t argc, const kvs_slice *argv)
{
    (void)argc;
    ttl_generic(c, argv, true, true);
}
