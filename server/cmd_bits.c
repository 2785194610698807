/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The bit commands on string values: SETBIT, GETBIT, BITCOUNT, BITPOS,
 * BITOP, as Redis 7.0 answers them (bitops.c), errors and edge cases
 * included. SETBIT is a read-modify-write of its key (ks_update); BITOP a
 * transaction over its keys (store_txn.h). Run on the connection's worker
 * thread.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "conn.h"
#include "keyspace.h"
#include "reply.h"
#include "string_ops.h"
#include "strval.h"
#include "worker.h"

static const char err_offset[] = "ERR bit offset is not an integer or out of range";

/* Redis's getBitOffsetFromArgument() without the '#' form: a bit offset
   within proto-max-bulk-len bytes. */
static int bit_offset(struct conn *c, kvs_slice arg, uint64_t *out)
{
    long long v;
    if (slice_to_ll(arg, &v) != 0 || v < 0 || (unsigned long long)(v >> 3) >= STRING_MAX_BYTES) {
        reply_error(c, err_offset);
        return -1;
    }
    *out = (uint64_t)v;
    return 0;
}

/* SETBIT key offset value: the bit's old value. */
void cmd_setbit(struct conn *c, size_t argc, const kvs_slice *argv)
{
    (void)argc;
    struct str_setbit s = {0};
    if (bit_offset(c, argv[2], &s.offset) != 0)
        return;
    long long on;
    if (slice_to_ll(argv[3], &on) != 0 || (on & ~1LL)) {
        reply_error(c, "ERR bit is not an integer or out of range");
        return;
    }
    s.on = (int)on;
    struct store_rmw u;
    int rc = ks_update(c, argv[1], &c->w->scratch, str_decide_setbit, &s, &u);
    if (rc != 0)
        reply_kvs_error(c, rc);
    else if (s.oom)
        c->flags |= CONN_KILL;
    else
        reply_int(c, s.old);
}

/* GETBIT key offset */
void cmd_getbit(struct conn *c, size_t argc, const kvs_slice *argv)
{
    (void)argc;
    uint64_t offset;
    if (bit_offset(c, argv[2], &offset) != 0)
        return;
    kvs_buf *v = &c->w->scratch;
    int rc = ks_get(c, argv[1], v, NULL);
    if (rc != 0 && rc != KVS_ENOTFOUND) {
        reply_kvs_error(c, rc);
        return;
    }
    size_t byte = (size_t)(offset >> 3);
    int bit = 0;
    if (rc == 0 && byte < v->len)
        bit = (((const unsigned char *)v->data)[byte] >> (7 - (offset & 7))) & 1;
    reply_int(c, bit);
}

static long long popcount(const unsigned char *p, size_t n)
{
    long long count = 0;
    for (; n >= 8; n -= 8, p += 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        count += __builtin_popcountll(w);
    }
    while (n--)
        count += __builtin_popcount(*p++);
    return count;
}

/* Redis's redisBitpos(): the first bit equal to bit in p[0, count), or -1
   for a 1 not found; a 0 not found is count * 8 (the string is taken as
   padded with zeros on the right). */
static long long bitpos(const unsigned char *p, size_t count, int bit)
{
    for (size_t i = 0; i < count; i++) {
        unsigned char byte = bit ? p[i] : (unsigned char)~p[i];
        if (byte)
            return (long long)i * 8 + (__builtin_clz((unsigned)byte) - 24);
    }
    return bit ? -1 : (long long)count * 8;
}

/* The range arguments of BITCOUNT and BITPOS: BYTE or BIT. */
static int range_unit(struct conn *c, kvs_slice arg, bool *isbit)
{
    if (slice_is_cstr(arg, "bit")) {
        *isbit = true;
    } else if (slice_is_cstr(arg, "byte")) {
        *isbit = false;
    } else {
        reply_error(c, "ERR syntax error");
        return -1;
    }
    return 0;
}

/* A BITCOUNT or BITPOS range of total bytes or bits (isbit), negative
   ends counted from the end, clamped into the string as Redis does; a bit
   range becomes the bytes that hold it and the masks of the bits of its
   first and last byte that are outside it. */
static void clamp_range(long long total, bool isbit, long long *start, long long *end,
                        unsigned char *first_mask, unsigned char *last_mask)
{
    if (*start < 0)
        *start = total + *start;
    if (*end < 0)
        *end = total + *end;
    if (*start < 0)
        *start = 0;
    if (*end < 0)
        *end = 0;
    if (*end >= total)
        *end = total - 1;
    if (isbit && *start <= *end) {
        *first_mask = (unsigned char)(~((1u << (8 - (*start & 7))) - 1) & 0xFF);
        *last_mask = (unsigned char)((1u << (7 - (*end & 7))) - 1);
        *start >>= 3;
        *end >>= 3;
    }
}

/* BITCOUNT key [start end [BYTE|BIT]] */
void cmd_bitcount(struct conn *c, size_t argc, const kvs_slice *argv)
{
    kvs_buf *v = &c->w->scratch;
    int rc = ks_get(c, argv[1], v, NULL);
    if (rc == KVS_ENOTFOUND) {
        reply_int(c, 0);
        return;
    }
    if (rc != 0) {
        reply_kvs_error(c, rc);
        return;
    }
    const unsigned char *p = v->data;
    long long len = (long long)v->len, start, end;
    bool isbit = false;
    unsigned char first_mask = 0, last_mask = 0;
    if (argc == 4 || argc == 5) {
        long long total = len;
        if (slice_to_ll(argv[2], &start) != 0 || slice_to_ll(argv[3], &end) != 0) {
            reply_error(c, "ERR value is not an integer or out of range");
            return;
        }
        if (argc == 5 && range_unit(c, argv[4], &isbit) != 0)
            return;
        if (isbit)
            total <<= 3;
        if (start < 0 && end < 0 && start > end) {
            reply_int(c, 0);
            return;
        }
        clamp_range(total, isbit, &start, &end, &first_mask, &last_mask);
    } else if (argc == 2) {
        start = 0;
        end = len - 1;
    } else {
        reply_error(c, "ERR syntax error");
        return;
    }
    if (start > end) {
        reply_int(c, 0);
        return;
    }
    long long count = popcount(p + start, (size_t)(end - start + 1));
    if (first_mask || last_mask) {
        unsigned char edges[2] = {0, 0};
        if (first_mask)
            edges[0] = p[start] & first_mask;
        if (last_mask)
            edges[1] = p[end] & last_mask;
        count -= popcount(edges, 2);
    }
    reply_int(c, count);
}

/* BITPOS key bit [start [end [BYTE|BIT]]] */
void cmd_bitpos(struct conn *c, size_t argc, const kvs_slice *argv)
{
    long long bitarg;
    if (slice_to_ll(argv[2], &bitarg) != 0) {
        reply_error(c, "ERR value is not an integer or out of range");
        return;
    }
    if (bitarg != 0 && bitarg != 1) {
        reply_error(c, "ERR The bit argument must be 1 or 0.");
        return;
    }
    int bit = (int)bitarg;
    kvs_buf *v = &c->w->scratch;
    int rc = ks_get(c, argv[1], v, NULL);
    if (rc == KVS_ENOTFOUND) {
        reply_int(c, bit ? -1 : 0);
        return;
    }
    if (rc != 0) {
        reply_kvs_error(c, rc);
        return;
    }
    const unsigned char *p = v->data;
    long long len = (long long)v->len, start, end;
    bool isbit = false, end_given = false;
    unsigned char first_mask = 0, last_mask = 0;
    if (argc >= 4 && argc <= 6) {
        long long total = len;
        if (slice_to_ll(argv[3], &start) != 0) {
            reply_error(c, "ERR value is not an integer or out of range");
            return;
        }
        if (argc == 6 && range_unit(c, argv[5], &isbit) != 0)
            return;
        if (argc >= 5) {
            if (slice_to_ll(argv[4], &end) != 0) {
                reply_error(c, "ERR value is not an integer or out of range");
                return;
            }
            end_given = true;
        } else {
            end = isbit ? (total << 3) + 7 : total - 1;
        }
        if (isbit)
            total <<= 3;
        clamp_range(total, isbit, &start, &end, &first_mask, &last_mask);
    } else if (argc == 3) {
        start = 0;
        end = len - 1;
    } else {
        reply_error(c, "ERR syntax error");
        return;
    }
    if (start > end) {
        reply_int(c, -1);
        return;
    }
    long long bytes = end - start + 1, pos;
    unsigned char tmp;
    if (first_mask) {
        tmp =
            bit ? (unsigned char)(p[start] & ~first_mask) : (unsigned char)(p[start] | first_mask);
        if (last_mask && bytes == 1)
            tmp = bit ? (unsigned char)(tmp & ~last_mask) : (unsigned char)(tmp | last_mask);
        pos = bitpos(&tmp, 1, bit);
        if (bytes == 1 || (pos != -1 && pos != 8))
            goto result;
        start++;
        bytes--;
    }
    long long cur = bytes - (last_mask ? 1 : 0);
    if (cur > 0) {
        pos = bitpos(p + start, (size_t)cur, bit);
        if (bytes == cur || (pos != -1 && pos != cur << 3))
            goto result;
        start += cur;
        bytes -= cur;
    }
    tmp = bit ? (unsigned char)(p[end] & ~last_mask) : (unsigned char)(p[end] | last_mask);
    pos = bitpos(&tmp, 1, bit);
result:
    if (end_given && bit == 0 && pos == bytes << 3) {
        reply_int(c, -1);
        return;
    }
    if (pos != -1)
        pos += start << 3;
    reply_int(c, pos);
}

/* BITOP AND|OR|XOR|NOT destkey key [key ...]: the result's length, the
   longest source's; an empty result removes destkey. */
void cmd_bitop(struct conn *c, size_t argc, const kvs_slice *argv)
{
    int op = str_bitop_named(argv[1]);
    if (op < 0) {
        reply_error(c, "ERR syntax error");
        return;
    }
    if (op == STR_BITOP_NOT && argc != 4) {
        reply_error(c, "ERR BITOP NOT must be called with a single source key.");
        return;
    }
    uint64_t stripes = 0;
    for (size_t i = 2; i < argc; i++)
        stripes |= store_txn_bit(argv[i]);
    struct store_txn local;
    struct store_txn *t = ks_txn_begin(c, stripes, &local);
    size_t len = 0;
    int rc = str_bitop(t, (enum str_bitop)op, argv[2], argv + 3, argc - 3, &len);
    int end = ks_txn_end(c, t, rc == 0 && store_txn_dirty(t));
    rc = rc ? rc : end;
    if (rc == KVS_ENOMEM)
        c->flags |= CONN_KILL;
    else if (rc != 0)
        reply_kvs_error(c, rc);
    else
        reply_int(c, (long long)len);
}
