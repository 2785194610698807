/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The string commands that read a value to write the next one, and their
 * read-only kin: APPEND, INCR, DECR, INCRBY, DECRBY, INCRBYFLOAT, GETSET,
 * GETDEL, GETRANGE/SUBSTR, SETRANGE, SETNX, MSETNX, LCS. Run on the
 * connection's worker thread.
 *
 * Each follows Redis 7.0's code path, so that its replies and errors come
 * in the same order and with the same text. A read-modify-write is one
 * ks_update() (store_update: read, decide, write under the key's lock), so
 * a concurrent writer of the key lands before or after it, never in
 * between; MSETNX is a transaction over its keys (store_txn.h). Values
 * are kept under Redis's proto-max-bulk-len, 512 MB, and a key keeps its
 * expiry time through APPEND, INCR... and SETRANGE, as in Redis.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "conn.h"
#include "keyspace.h"
#include "reply.h"
#include "string_ops.h"
#include "strval.h"
#include "worker.h"

static const char err_not_int[] = "ERR value is not an integer or out of range";
static const char err_too_big[] = "ERR string exceeds maximum allowed size (proto-max-bulk-len)";

static kvs_slice value_of(const struct store_rmw *u)
{
    return (kvs_slice){u->value->data, u->value->len};
}

/* The reply of a failed store call, or of a refused decision. */
static void reply_rc(struct conn *c, int rc)
{
    reply_kvs_error(c, rc);
}

/* ---- APPEND ---------------------------------------------------------- */

void cmd_append(struct conn *c, size_t argc, const kvs_slice *argv)
{
    (void)argc;
    struct str_append a = {.add = argv[2]};
    struct store_rmw u;
    int rc = ks_update(c, argv[1], &c->w->scratch, str_decide_append, &a, &u);
    if (rc != 0)
        reply_rc(c, rc);
    else if (a.oom)
        c->flags |= CONN_KILL;
    else if (a.too_big)
        reply_error(c, err_too_big);
    else
        reply_int(c, (long long)a.len);
}

/* ---- INCR, DECR, INCRBY, DECRBY ------------------------------------- */

static void incr_generic(struct conn *c, kvs_slice key, long long by)
{
    struct str_incr in = {.by = by};
    struct store_rmw u;
    int rc = ks_update(c, key, &c->w->scratch, str_decide_incr, &in, &u);
    if (rc != 0)
        reply_rc(c, rc);
    else if (in.err == STR_INCR_NOT_INT)
        reply_error(c, err_not_int);
    else if (in.err == STR_INCR_OVERFLOW)
        reply_error(c, "ERR increment or decrement would overflow");
    else
        reply_int(c, in.result);
}

void cmd_incr(struct conn *c, size_t argc, const kvs_slice *argv)
{
    (void)argc;
    incr_generic(c, argv[1], 1);
}

void cmd_decr(struct conn *c, size_t argc, const kvs_slice *argv)
{
    (void)argc;
    incr_generic(c, argv[1], -1);
}

void cmd_incrby(struct conn *c, size_t argc, const kvs_slice *argv)
{
    (void)argc;
    long long by;
    if (slice_to_ll(argv[2], &by) != 0) {
        reply_error(c, err_not_int);
        return;
    }
    incr_generic(c, argv[1], by);
}

void cmd_decrby(struct conn *c, size_t argc, const kvs_slice *argv)
{
    (void)argc;
    long long by;
    if (slice_to_ll(argv[2], &by) != 0) {
        reply_error(c, err_not_int);
        return;
    }
    if (by == LLONG_MIN) {
        reply_error(c, "ERR decrement would overflow");
        return;
    }
    incr_generic(c, argv[1], -by);
}

/* ---- INCRBYFLOAT ------------------------------------------------------ */

/* Redis's string2ld(): strtold() on the whole text, no leading space, no
   NaN, no overflow. */
int slice_to_ld(kvs_slice s, long double *out)
{
    char buf[STRING_LD_CHARS];
    if (s.len == 0 || s.len >= sizeof(buf))
        return -1;
    memcpy(buf, s.data, s.len);
    buf[s.len] = '\0';
    errno = 0;
    char *end;
    long double v = strtold(buf, &end);
    if (isspace((unsigned char)buf[0]) || *end != '\0' || (size_t)(end - buf) != s.len ||
        (errno == ERANGE && (v == HUGE_VALL || v == -HUGE_VALL || v == 0)) || errno == EINVAL ||
        isnan(v))
        return -1;
    *out = v;
    return 0;
}

/* Redis's ld2string() in its human mode: 17 decimals, trailing zeros (and
   a trailing point) dropped, "-0" as "0". Returns the length. */
size_t ld_to_text(long double v, char *buf, size_t size)
{
    int n = snprintf(buf, size, "%.17Lf", v);
    if (n < 0 || (size_t)n >= size)
        return 0;
    size_t l = (size_t)n;
    if (memchr(buf, '.', l)) {
        while (buf[l - 1] == '0')
            l--;
        if (buf[l - 1] == '.')
            l--;
    }
    if (l == 2 && buf[0] == '-' && buf[1] == '0') {
        buf[0] = '0';
        l = 1;
    }
    buf[l] = '\0';
    return l;
}

struct incrfloat {
    long double by;
    bool not_float, not_finite;
    char text[STRING_LD_CHARS];
    size_t len;
};

static void decide_incrfloat(void *ctx, struct store_rmw *u)
{
    struct incrfloat *f = ctx;
    long double v = 0;
    if (u->found && slice_to_ld(value_of(u), &v) != 0) {
        f->not_float = true;
        return;
    }
    v += f->by;
    if (isnan(v) || isinf(v)) {
        f->not_finite = true;
        return;
    }
    f->len = ld_to_text(v, f->text, sizeof(f->text));
    u->action = STORE_PUT;
    u->put_value = (kvs_slice){f->text, f->len};
    u->put_expire_at = u->found ? u->expire_at : 0;
}

void cmd_incrbyfloat(struct conn *c, size_t argc, const kvs_slice *argv)
{
    (void)argc;
    struct incrfloat *f = malloc(sizeof(*f));
    if (!f) {
        c->flags |= CONN_KILL;
        return;
    }
    *f = (struct incrfloat){0};
    /* The stored value and the increment fail with the same text. */
    if (slice_to_ld(argv[2], &f->by) != 0) {
        free(f);
        reply_error(c, "ERR value is not a valid float");
        return;
    }
    struct store_rmw u;
    int rc = ks_update(c, argv[1], &c->w->scratch, decide_incrfloat, f, &u);
    if (rc != 0)
        reply_rc(c, rc);
    else if (f->not_float)
        reply_error(c, "ERR value is not a valid float");
    else if (f->not_finite)
        reply_error(c, "ERR increment would produce NaN or Infinity");
    else
        reply_bulk(c, f->text, f->len);
    free(f);
}

/* ---- GETSET, GETDEL, SETNX ------------------------------------------- */

struct getset {
    kvs_slice value;
};

static void decide_getset(void *ctx, struct store_rmw *u)
{
    struct getset *g = ctx;
    u->action = STORE_PUT;
    u->put_value = g->value;
    u->put_expire_at = 0;
}

void cmd_getset(struct conn *c, size_t argc, const kvs_slice *argv)
{
    (void)argc;
    struct getset g = {argv[2]};
    struct store_rmw u;
    int rc = ks_update(c, argv[1], &c->w->scratch, decide_getset, &g, &u);
    if (rc != 0)
        reply_rc(c, rc);
    else if (u.found)
        reply_bulk(c, c->w->scratch.data, c->w->scratch.len);
    else
        reply_nil(c);
}

static void decide_getdel(void *ctx, struct store_rmw *u)
{
    (void)ctx;
    if (u->found)
        u->action = STORE_REMOVE;
}

void cmd_getdel(struct conn *c, size_t argc, const kvs_slice *argv)
{
    (void)argc;
    struct store_rmw u;
    int rc = ks_update(c, argv[1], &c->w->scratch, decide_getdel, NULL, &u);
    if (rc != 0) {
        reply_rc(c, rc);
    } else if (u.found) {
        stat_add(&c->w->stats.hits, 1);
        reply_bulk(c, c->w->scratch.data, c->w->scratch.len);
    } else {
        stat_add(&c->w->stats.misses, 1);
        reply_nil(c);
    }
}

void cmd_setnx(struct conn *c, size_t argc, const kvs_slice *argv)
{
    (void)argc;
    struct store_rmw u;
    int rc = ks_update(c, argv[1], &c->w->scratch, str_decide_setnx, (void *)&argv[2], &u);
    if (rc != 0)
        reply_rc(c, rc);
    else
        reply_int(c, u.action == STORE_PUT);
}

/* MSETNX key value [key value ...]: all set if none exists, else none. */
void cmd_msetnx(struct conn *c, size_t argc, const kvs_slice *argv)
{
    if ((argc - 1) % 2 != 0) {
        reply_arity_error(c, "msetnx");
        return;
    }
    uint64_t stripes = 0;
    for (size_t i = 1; i < argc; i += 2)
        stripes |= store_txn_bit(argv[i]);
    struct store_txn local;
    struct store_txn *t = ks_txn_begin(c, stripes, &local);
    bool set;
    int rc = str_msetnx(t, &c->w->scratch, argv + 1, (argc - 1) / 2, &set);
    int end = ks_txn_end(c, t, rc == 0 && store_txn_dirty(t));
    rc = rc ? rc : end;
    if (rc != 0)
        reply_rc(c, rc);
    else
        reply_int(c, set);
}

/* ---- GETRANGE, SETRANGE ---------------------------------------------- */

/* GETRANGE key start end (and SUBSTR): the bytes from start to end, both
   included, negative counting from the end; "" when out of range. */
void cmd_getrange(struct conn *c, size_t argc, const kvs_slice *argv)
{
    (void)argc;
    long long start, end;
    if (slice_to_ll(argv[2], &start) != 0 || slice_to_ll(argv[3], &end) != 0) {
        reply_error(c, err_not_int);
        return;
    }
    int rc = ks_get(c, argv[1], &c->w->scratch, NULL);
    if (rc == KVS_ENOTFOUND) {
        reply_bulk(c, "", 0);
        return;
    }
    if (rc != 0) {
        reply_rc(c, rc);
        return;
    }
    long long len = (long long)c->w->scratch.len;
    if (start < 0 && end < 0 && start > end) {
        reply_bulk(c, "", 0);
        return;
    }
    if (start < 0)
        start = len + start;
    if (end < 0)
        end = len + end;
    if (start < 0)
        start = 0;
    if (end < 0)
        end = 0;
    if (end >= len)
        end = len - 1;
    if (start > end || len == 0) {
        reply_bulk(c, "", 0);
        return;
    }
    reply_bulk(c, (const char *)c->w->scratch.data + start, (size_t)(end - start + 1));
}

/* SETRANGE key offset value */
void cmd_setrange(struct conn *c, size_t argc, const kvs_slice *argv)
{
    (void)argc;
    long long offset;
    if (slice_to_ll(argv[2], &offset) != 0) {
        reply_error(c, err_not_int);
        return;
    }
    if (offset < 0) {
        reply_error(c, "ERR offset is out of range");
        return;
    }
    /* Refused before the key is read, as Redis's checkStringLength. */
    if ((unsigned long long)offset + argv[3].len > STRING_MAX_BYTES) {
        reply_error(c, err_too_big);
        return;
    }
    struct str_setrange s = {.offset = (size_t)offset, .add = argv[3]};
    struct store_rmw u;
    int rc = ks_update(c, argv[1], &c->w->scratch, str_decide_setrange, &s, &u);
    if (rc != 0)
        reply_rc(c, rc);
    else if (s.oom)
        c->flags |= CONN_KILL;
    else if (s.too_big)
        reply_error(c, err_too_big);
    else
        reply_int(c, (long long)s.len);
}
