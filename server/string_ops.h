/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * What the string commands that read a value to write the next one do to
 * the store, without a connection: the decisions of APPEND, INCR...,
 * SETNX, SETRANGE and SETBIT for store_update() (or ks_update()), and the
 * bodies of RENAME/COPY, MSETNX and BITOP inside a transaction.
 *
 * Two callers: the commands (cmd_string.c, cmd_bits.c, cmd_rename.c),
 * which parse and check their arguments and turn the outcome into Redis's
 * reply, and a replica applying a Redis primary's stream
 * (repl_replica.c), to which Redis sends these commands as its clients
 * typed them. The same code on both sides is what keeps a replica's copy
 * equal to its primary's.
 */
#ifndef KVS_SERVER_STRING_OPS_H
#define KVS_SERVER_STRING_OPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kvs/kvs.h"
#include "store.h"
#include "store_txn.h"

/* APPEND key add: ctx is a struct str_append. */
struct str_append {
    kvs_slice add;
    bool too_big; /* refused: over proto-max-bulk-len */
    bool oom;     /* refused: out of memory */
    size_t len;   /* the new length */
};
store_decide_fn str_decide_append;

/* INCR, DECR, INCRBY, DECRBY: ctx is a struct str_incr. */
enum str_incr_error { STR_INCR_OK, STR_INCR_NOT_INT, STR_INCR_OVERFLOW };

struct str_incr {
    long long by;
    long long result;
    enum str_incr_error err;
    char text[24];
};
store_decide_fn str_decide_incr;

/* SETNX key value: ctx is the value (a const kvs_slice). u->action says
   whether it was set. */
store_decide_fn str_decide_setnx;

/* SETRANGE key offset add (offset + add.len checked by the caller against
   STRING_MAX_BYTES): ctx is a struct str_setrange. */
struct str_setrange {
    size_t offset;
    kvs_slice add;
    bool too_big, oom;
    size_t len; /* the new length */
};
store_decide_fn str_decide_setrange;

/* SETBIT key offset on (offset checked by the caller): ctx is a struct
   str_setbit. */
struct str_setbit {
    uint64_t offset;
    int on;
    int old; /* the bit before */
    bool oom;
};
store_decide_fn str_decide_setbit;

/* Inside t, which holds both keys' stripes: copy src to dst (moving it when
   move), unless dst exists and !replace. Returns 0 with *done saying
   whether dst now holds src's value (RENAME k k: yes, nothing written),
   KVS_ENOTFOUND when src is missing, or the store's error. v is scratch. */
int str_copy(struct store_txn *t, kvs_buf *v, kvs_slice src, kvs_slice dst, bool move, bool replace,
             bool *done);

/* Inside t, which holds every key's stripe: MSETNX of the npairs key/value
   pairs at kv. Returns 0 with *set saying whether they were all set (none
   existed), or the store's error. scratch is scratch. */
int str_msetnx(struct store_txn *t, kvs_buf *scratch, const kvs_slice *kv, size_t npairs,
               bool *set);

/* BITOP's operations. str_bitop_named() is the one named (any case) or -1. */
enum str_bitop { STR_BITOP_AND, STR_BITOP_OR, STR_BITOP_XOR, STR_BITOP_NOT };
int str_bitop_named(kvs_slice name);

/* Inside t, which holds dest's and every source's stripe: dest = op of the
   nsrc sources (NOT: exactly one), the longest source's length, missing
   keys read as empty; an empty result removes dest. Returns 0 with *len
   the result's length, KVS_ENOMEM or the store's error. */
int str_bitop(struct store_txn *t, enum str_bitop op, kvs_slice dest, const kvs_slice *src,
              size_t nsrc, size_t *len);

#endif
