/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * RENAME, RENAMENX and COPY (within database 0), as Redis 7.0 answers
 * them. Each is a transaction over its two keys (store_txn.h): the source
 * is read, the destination written and, for RENAME, the source removed,
 * all in one batch (one append, one fsync), so that no client ever sees
 * both keys or neither, and no write of either key comes between, on
 * every engine. The value moves with its expiry time. Run on the
 * connection's worker thread.
 */
#include <limits.h>
#include <string.h>

#include "commands.h"
#include "conn.h"
#include "keyspace.h"
#include "reply.h"
#include "string_ops.h"
#include "worker.h"

static bool same_key(kvs_slice a, kvs_slice b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.data, b.data, a.len) == 0);
}

/* Copy src to dst (moving it when move), unless dst exists and !replace,
   in a transaction of c's. Returns as str_copy(). */
static int copy_generic(struct conn *c, kvs_slice src, kvs_slice dst, bool move, bool replace,
                        bool *done)
{
    struct store_txn local;
    struct store_txn *t = ks_txn_begin(c, store_txn_bit(src) | store_txn_bit(dst), &local);
    int rc = str_copy(t, &c->w->scratch, src, dst, move, replace, done);
    int end = ks_txn_end(c, t, rc == 0 && store_txn_dirty(t));
    if (rc == 0 && end != 0) {
        *done = false;
        rc = end;
    }
    return rc;
}

/* RENAME key newkey */
void cmd_rename(struct conn *c, size_t argc, const kvs_slice *argv)
{
    (void)argc;
    bool done;
    int rc = copy_generic(c, argv[1], argv[2], true, true, &done);
    if (rc == KVS_ENOTFOUND)
        reply_error(c, "ERR no such key");
    else if (rc != 0)
        reply_kvs_error(c, rc);
    else
        reply_ok(c);
}

/* RENAMENX key newkey: 1, or 0 when newkey exists. */
void cmd_renamenx(struct conn *c, size_t argc, const kvs_slice *argv)
{
    (void)argc;
    bool done;
    if (same_key(argv[1], argv[2])) {
        /* Redis: the key exists (0) or not (no such key). */
        int rc = ks_get(c, argv[1], &c->w->scratch, NULL);
        if (rc == KVS_ENOTFOUND)
            reply_error(c, "ERR no such key");
        else if (rc != 0)
            reply_kvs_error(c, rc);
        else
            reply_int(c, 0);
        return;
    }
    int rc = copy_generic(c, argv[1], argv[2], true, false, &done);
    if (rc == KVS_ENOTFOUND)
        reply_error(c, "ERR no such key");
    else if (rc != 0)
        reply_kvs_error(c, rc);
    else
        reply_int(c, done);
}

/* COPY source destination [DB destination-db] [REPLACE] */
void cmd_copy(struct conn *c, size_t argc, const kvs_slice *argv)
{
    bool replace = false;
    for (size_t j = 3; j < argc; j++) {
        if (slice_is_cstr(argv[j], "replace")) {
            replace = true;
        } else if (slice_is_cstr(argv[j], "db") && j + 1 < argc) {
            long long db;
            if (slice_to_ll(argv[j + 1], &db) != 0 || db < INT_MIN || db > INT_MAX) {
                reply_error(c, "ERR value is not an integer or out of range");
                return;
            }
            if (db != 0) {
                reply_error(c, "ERR DB index is out of range");
                return;
            }
            j++;
        } else {
            reply_error(c, "ERR syntax error");
            return;
        }
    }
    if (same_key(argv[1], argv[2])) {
        reply_error(c, "ERR source and destination objects are the same");
        return;
    }
    bool done;
    int rc = copy_generic(c, argv[1], argv[2], false, replace, &done);
    if (rc == KVS_ENOTFOUND)
        reply_int(c, 0);
    else if (rc != 0)
        reply_kvs_error(c, rc);
    else
        reply_int(c, done);
}
