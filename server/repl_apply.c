/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Applying a primary's stream; see repl_apply.h. The primary checked
 * every command before it ran it, so arguments that do not parse, or a
 * decision that fails here (INCR of a value that is not a number), mean
 * that this copy is not the primary's: refused like a command the replica
 * cannot hold.
 */
#include "repl_apply.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

#include "commands.h"
#include "log.h"
#include "store_txn.h"
#include "string_ops.h"
#include "strval.h"

/* Plain writes gathered before one store_write_batch(): the kvs engine
   prefetches the index lines of the first 256 ops of a batch
   (engines/log/write.c). */
#define APPLY_BATCH_OPS 256

struct repl_applier {
    struct store *st;
    kvs_op ops[APPLY_BATCH_OPS];
    size_t n;
    kvs_buf scratch;
    bool other_db; /* the primary selected a database other than 0 */
};

struct repl_applier *repl_applier_new(struct store *st)
{
    struct repl_applier *a = calloc(1, sizeof(*a));
    if (a)
        a->st = st;
    return a;
}

void repl_applier_free(struct repl_applier *a)
{
    if (!a)
        return;
    kvs_buf_free(&a->scratch);
    free(a);
}

bool repl_apply_pending(const struct repl_applier *a)
{
    return a->n > 0;
}

int repl_apply_flush(struct repl_applier *a)
{
    if (a->n == 0)
        return 0;
    int rc = store_write_batch(a->st, a->ops, a->n);
    a->n = 0;
    return rc;
}

static int gather(struct repl_applier *a, kvs_op op)
{
    if (a->n == APPLY_BATCH_OPS) {
        int rc = repl_apply_flush(a);
        if (rc)
            return rc;
    }
    a->ops[a->n++] = op;
    return 0;
}

/* The command's name, for messages: at most 64 bytes of it. */
static int name_len(kvs_slice cmd)
{
    return (int)(cmd.len > 64 ? 64 : cmd.len);
}

static int refuse(kvs_slice cmd, const char *why)
{
    log_error("replication: the primary sent '%.*s', which this replica cannot apply (%s); "
              "the link stops before it, and the copy stays as of the command before",
              name_len(cmd), (const char *)cmd.data, why);
    return KVS_ENOTSUP;
}

/* A read-modify-write of one key, after the gathered writes. */
static int update(struct repl_applier *a, kvs_slice key, store_decide_fn *decide, void *ctx,
                  struct store_rmw *u)
{
    int rc = repl_apply_flush(a);
    return rc ? rc : store_update(a->st, key, &a->scratch, decide, ctx, u);
}

/* ---- SET with options, and the expiry commands ---- */

struct time_update {
    int64_t at; /* the new time, 0: none */
    bool keep;  /* KEEPTTL: the key's own */
    kvs_slice value;
    bool set, nx, xx;
};

static void decide_time(void *ctx, struct store_rmw *u)
{
    struct time_update *t = ctx;
    if (t->set) {
        if ((t->nx && u->found) || (t->xx && !u->found))
            return;
        u->action = STORE_PUT;
        u->put_value = t->value;
        u->put_expire_at = t->keep ? u->expire_at : t->at;
        return;
    }
    if (!u->found)
        return;
    u->action = STORE_PUT;
    u->put_value = (kvs_slice){u->value->data, u->value->len};
    u->put_expire_at = t->at;
}

/* The absolute time in ms that option opt (EX, PX, EXAT, PXAT, or an
   EXPIRE command's name) with argument arg names. */
static int time_of(kvs_slice opt, kvs_slice arg, int64_t *at)
{
    long long v;
    if (slice_to_ll(arg, &v) != 0)
        return -1;
    int64_t now = kvs_now_ms();
    if (slice_is(opt, "ex") || slice_is(opt, "expire") || slice_is(opt, "setex"))
        *at = now + v * 1000;
    else if (slice_is(opt, "px") || slice_is(opt, "pexpire") || slice_is(opt, "psetex"))
        *at = now + v;
    else if (slice_is(opt, "exat") || slice_is(opt, "expireat"))
        *at = v * 1000;
    else if (slice_is(opt, "pxat") || slice_is(opt, "pexpireat"))
        *at = v;
    else
        return -1;
    return 0;
}

static int apply_set(struct repl_applier *a, size_t argc, const kvs_slice *argv)
{
    struct time_update t = {.set = true, .value = argv[2]};
    bool rmw = false;
    for (size_t i = 3; i < argc; i++) {
        if (slice_is(argv[i], "keepttl"))
            t.keep = rmw = true;
        else if (slice_is(argv[i], "nx"))
            t.nx = rmw = true;
        else if (slice_is(argv[i], "xx"))
            t.xx = rmw = true;
        else if (slice_is(argv[i], "get"))
            continue;
        else if (i + 1 >= argc || time_of(argv[i], argv[i + 1], &t.at) != 0)
            return refuse(argv[0], "an option it does not know");
        else
            i++;
    }
    const kvs_engine *engine = kvs_db_engine(a->st->db);
    if (argv[1].len > kvs_engine_max_key(engine) || argv[2].len > kvs_engine_max_value(engine)) {
        log_warn("replication: a key or value over this engine's limits is not copied");
        return 0; /* the primary's engine took it; this one cannot */
    }
    struct store_rmw u;
    if (rmw)
        return update(a, argv[1], decide_time, &t, &u);
    return gather(a, (kvs_op){.type = KVS_OP_SET,
                              .key = argv[1],
                              .value = argv[2],
                              .expire_at = t.at > 0 ? t.at : 0});
}

/* EXPIRE, PEXPIRE, EXPIREAT, PEXPIREAT key time [NX|XX|GT|LT]: a primary
   that applied it sends it; the condition held there. */
static int apply_expire(struct repl_applier *a, const kvs_slice *argv)
{
    struct time_update t = {0};
    if (time_of(argv[0], argv[2], &t.at) != 0)
        return refuse(argv[0], "a time that is not a number");
    if (t.at <= 0)
        t.at = 1; /* passed: the key is gone for readers; the primary's DEL follows */
    struct store_rmw u;
    return update(a, argv[1], decide_time, &t, &u);
}

/* ---- the string commands a Redis primary sends as typed ---- */

static int apply_incr(struct repl_applier *a, size_t argc, const kvs_slice *argv, int sign)
{
    struct str_incr in = {.by = sign};
    if (argc == 3) {
        long long by;
        if (slice_to_ll(argv[2], &by) != 0 || (sign < 0 && by == LLONG_MIN))
            return refuse(argv[0], "an increment that is not a number");
        in.by = sign * by;
    }
    struct store_rmw u;
    int rc = update(a, argv[1], str_decide_incr, &in, &u);
    if (rc == 0 && in.err != STR_INCR_OK)
        return refuse(argv[0], "the replica's value is not the primary's: not a number here");
    return rc;
}

static int apply_append(struct repl_applier *a, const kvs_slice *argv)
{
    struct str_append ap = {.add = argv[2]};
    struct store_rmw u;
    int rc = update(a, argv[1], str_decide_append, &ap, &u);
    if (rc == 0 && (ap.too_big || ap.oom))
        return refuse(argv[0], "the value would exceed 512 MB or memory");
    return rc;
}

static int apply_setrange(struct repl_applier *a, const kvs_slice *argv)
{
    long long offset;
    if (slice_to_ll(argv[2], &offset) != 0 || offset < 0 ||
        (unsigned long long)offset + argv[3].len > STRING_MAX_BYTES)
        return refuse(argv[0], "an offset out of range");
    struct str_setrange s = {.offset = (size_t)offset, .add = argv[3]};
    struct store_rmw u;
    int rc = update(a, argv[1], str_decide_setrange, &s, &u);
    if (rc == 0 && (s.too_big || s.oom))
        return refuse(argv[0], "the value would exceed 512 MB or memory");
    return rc;
}

static int apply_setbit(struct repl_applier *a, const kvs_slice *argv)
{
    long long offset, on;
    if (slice_to_ll(argv[2], &offset) != 0 || offset < 0 ||
        (unsigned long long)(offset >> 3) >= STRING_MAX_BYTES || slice_to_ll(argv[3], &on) != 0 ||
        (on & ~1LL))
        return refuse(argv[0], "a bit offset or value out of range");
    struct str_setbit s = {.offset = (uint64_t)offset, .on = (int)on};
    struct store_rmw u;
    int rc = update(a, argv[1], str_decide_setbit, &s, &u);
    if (rc == 0 && s.oom)
        return refuse(argv[0], "out of memory");
    return rc;
}

/* Commands over several keys run as a transaction over their stripes,
   as on the primary. */
static int txn_end(struct store_txn *t, int rc)
{
    if (rc != 0 || !store_txn_dirty(t)) {
        store_txn_abort(t);
        return rc;
    }
    return store_txn_commit(t);
}

static int apply_copy(struct repl_applier *a, size_t argc, const kvs_slice *argv, bool move,
                      bool replace)
{
    for (size_t i = 3; i < argc; i++) {
        if (slice_is_cstr(argv[i], "replace"))
            replace = true;
        else if (slice_is_cstr(argv[i], "db") && i + 1 < argc && slice_is(argv[i + 1], "0"))
            i++;
        else
            return refuse(argv[0], "another database than 0, or an option it does not know");
    }
    int rc = repl_apply_flush(a);
    if (rc)
        return rc;
    struct store_txn t;
    store_txn_begin(a->st, &t, store_txn_bit(argv[1]) | store_txn_bit(argv[2]), false);
    bool done;
    rc = str_copy(&t, &a->scratch, argv[1], argv[2], move, replace, &done);
    return txn_end(&t, rc == KVS_ENOTFOUND ? 0 : rc); /* the primary's error too */
}

static int apply_msetnx(struct repl_applier *a, size_t argc, const kvs_slice *argv)
{
    if (argc < 3 || (argc - 1) % 2 != 0)
        return refuse(argv[0], "an odd number of arguments");
    int rc = repl_apply_flush(a);
    if (rc)
        return rc;
    uint64_t stripes = 0;
    for (size_t i = 1; i < argc; i += 2)
        stripes |= store_txn_bit(argv[i]);
    struct store_txn t;
    store_txn_begin(a->st, &t, stripes, false);
    bool set;
    return txn_end(&t, str_msetnx(&t, &a->scratch, argv + 1, (argc - 1) / 2, &set));
}

static int apply_bitop(struct repl_applier *a, size_t argc, const kvs_slice *argv)
{
    int op = str_bitop_named(argv[1]);
    if (op < 0 || (op == STR_BITOP_NOT && argc != 4))
        return refuse(argv[0], "an operation it does not know");
    int rc = repl_apply_flush(a);
    if (rc)
        return rc;
    uint64_t stripes = 0;
    for (size_t i = 2; i < argc; i++)
        stripes |= store_txn_bit(argv[i]);
    struct store_txn t;
    store_txn_begin(a->st, &t, stripes, false);
    size_t len;
    return txn_end(&t, str_bitop(&t, (enum str_bitop)op, argv[2], argv + 3, argc - 3, &len));
}

/* ---- dispatch ---- */

/* Commands that change nothing a kvs store holds. */
static bool no_effect(kvs_slice cmd)
{
    return slice_is(cmd, "ping") || slice_is(cmd, "multi") || slice_is(cmd, "exec") ||
           slice_is(cmd, "publish") || slice_is(cmd, "spublish") || slice_is(cmd, "replconf") ||
           slice_is(cmd, "function") || slice_is(cmd, "script");
}

static int apply_select(struct repl_applier *a, size_t argc, const kvs_slice *argv)
{
    if (argc != 2)
        return refuse(argv[0], "a malformed SELECT");
    bool other = !slice_is(argv[1], "0");
    if (other && !a->other_db)
        log_warn("replication: the primary selected database %.*s; kvs has database 0 only, "
                 "and refuses the writes to it",
                 name_len(argv[1]), (const char *)argv[1].data);
    a->other_db = other;
    return 0;
}

int repl_apply(struct repl_applier *a, size_t argc, const kvs_slice *argv)
{
    kvs_slice cmd = argv[0];
    if (slice_is(cmd, "select"))
        return apply_select(a, argc, argv);
    if (no_effect(cmd))
        return 0;
    if (slice_is(cmd, "flushall") || slice_is(cmd, "flushdb")) {
        if (slice_is(cmd, "flushdb") && a->other_db)
            return refuse(cmd, "a write to another database than 0");
        int rc = repl_apply_flush(a);
        return rc ? rc : store_write(a->st, STORE_CLEAR, (kvs_slice){0}, (kvs_slice){0}, 0);
    }
    if (a->other_db)
        return refuse(cmd, "a write to another database than 0");
    if (slice_is(cmd, "set") && argc >= 3)
        return apply_set(a, argc, argv);
    if ((slice_is(cmd, "setex") || slice_is(cmd, "psetex")) && argc == 4) {
        int64_t at;
        if (time_of(cmd, argv[2], &at) != 0)
            return refuse(cmd, "a time that is not a number");
        return gather(a, (kvs_op){.type = KVS_OP_SET,
                                  .key = argv[1],
                                  .value = argv[3],
                                  .expire_at = at > 0 ? at : 0});
    }
    if ((slice_is(cmd, "mset") && argc >= 3 && argc % 2 == 1) ||
        (slice_is(cmd, "getset") && argc == 3)) {
        int rc = 0;
        for (size_t i = 1; i + 1 < argc && rc == 0; i += 2)
            rc = gather(a, (kvs_op){.type = KVS_OP_SET, .key = argv[i], .value = argv[i + 1]});
        return rc;
    }
    if (slice_is(cmd, "del") || slice_is(cmd, "unlink") || (slice_is(cmd, "getdel") && argc == 2)) {
        int rc = 0;
        for (size_t i = 1; i < argc && rc == 0; i++)
            rc = gather(a, (kvs_op){.type = KVS_OP_REMOVE, .key = argv[i]});
        return rc;
    }
    if ((slice_is(cmd, "pexpireat") || slice_is(cmd, "expireat") || slice_is(cmd, "pexpire") ||
         slice_is(cmd, "expire")) &&
        argc >= 3)
        return apply_expire(a, argv);
    if (slice_is(cmd, "persist") && argc == 2) {
        struct time_update t = {0};
        struct store_rmw u;
        return update(a, argv[1], decide_time, &t, &u);
    }
    if ((slice_is(cmd, "incr") || slice_is(cmd, "decr")) && argc == 2)
        return apply_incr(a, argc, argv, slice_is(cmd, "incr") ? 1 : -1);
    if ((slice_is(cmd, "incrby") || slice_is(cmd, "decrby")) && argc == 3)
        return apply_incr(a, argc, argv, slice_is(cmd, "incrby") ? 1 : -1);
    if (slice_is(cmd, "append") && argc == 3)
        return apply_append(a, argv);
    if (slice_is(cmd, "setrange") && argc == 4)
        return apply_setrange(a, argv);
    if (slice_is(cmd, "setbit") && argc == 4)
        return apply_setbit(a, argv);
    if (slice_is(cmd, "setnx") && argc == 3) {
        struct store_rmw u;
        return update(a, argv[1], str_decide_setnx, (void *)&argv[2], &u);
    }
    if (slice_is(cmd, "msetnx"))
        return apply_msetnx(a, argc, argv);
    if ((slice_is(cmd, "rename") || slice_is(cmd, "renamenx")) && argc == 3)
        return apply_copy(a, argc, argv, true, slice_is(cmd, "rename"));
    if (slice_is(cmd, "copy") && argc >= 3)
        return apply_copy(a, argc, argv, false, false);
    if (slice_is(cmd, "bitop") && argc >= 4)
        return apply_bitop(a, argc, argv);
    return refuse(cmd, "a command or data type a kvs replica does not hold");
}
