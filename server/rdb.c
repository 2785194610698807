/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * RDB writing and loading; see rdb.h.
 */
#include "rdb.h"

#include <errno.h>
#include <inttypes.h>
#include <lzf.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Redis's opcodes (rdb.h). */
#define OP_FUNCTION2 245
#define OP_FUNCTION 246
#define OP_MODULE_AUX 247
#define OP_IDLE 248
#define OP_FREQ 249
#define OP_AUX 250
#define OP_RESIZEDB 251
#define OP_EXPIRETIME_MS 252
#define OP_EXPIRETIME 253
#define OP_SELECTDB 254
#define OP_EOF 255
#define TYPE_STRING 0

/* Length encodings: the top two bits of the first byte. */
#define LEN_6BIT 0
#define LEN_14BIT 1
#define LEN_32BIT 0x80
#define LEN_64BIT 0x81
#define LEN_ENCVAL 3
#define ENC_INT8 0
#define ENC_INT16 1
#define ENC_INT32 2
#define ENC_LZF 3

/* The writer hands its buffer to the sink at this size. */
#define WRITE_CHUNK (64u << 10)
/* The loader's read size. */
#define READ_CHUNK (256u << 10)
/* The largest string the loader takes (Redis's proto-max-bulk-len). */
#define MAX_STRING (512ull << 20)

static uint64_t crc_table[8][256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

/* Slicing by 8 over the reflected Jones polynomial. */
static void crc_init(void)
{
    for (unsigned i = 0; i < 256; i++) {
        uint64_t c = i;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? (c >> 1) ^ UINT64_C(0x95ac9329ac4bc9b5) : c >> 1;
        crc_table[0][i] = c;
    }
    for (unsigned i = 0; i < 256; i++) {
        uint64_t c = crc_table[0][i];
        for (int t = 1; t < 8; t++) {
            c = crc_table[0][c & 0xff] ^ (c >> 8);
            crc_table[t][i] = c;
        }
    }
}

uint64_t rdb_crc64(uint64_t crc, const void *data, size_t len)
{
    pthread_once(&crc_once, crc_init);
    const unsigned char *p = data;
    while (len >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        v ^= crc; /* little-endian hosts, as every kvs target */
        crc = crc_table[7][v & 0xff] ^ crc_table[6][(v >> 8) & 0xff] ^
              crc_table[5][(v >> 16) & 0xff] ^ crc_table[4][(v >> 24) & 0xff] ^
              crc_table[3][(v >> 32) & 0xff] ^ crc_table[2][(v >> 40) & 0xff] ^
              crc_table[1][(v >> 48) & 0xff] ^ crc_table[0][v >> 56];
        p += 8;
        len -= 8;
    }
    while (len--)
        crc = crc_table[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
    return crc;
}

/* ---- writing ---- */

void rdb_writer_init(struct rdb_writer *w, rdb_sink_fn *sink, void *ctx)
{
    memset(w, 0, sizeof(*w));
    w->sink = sink;
    w->ctx = ctx;
}

void rdb_writer_free(struct rdb_writer *w)
{
    kvs_buf_free(&w->buf);
}

static int flush(struct rdb_writer *w)
{
    if (w->buf.len == 0)
        return 0;
    w->crc = rdb_crc64(w->crc, w->buf.data, w->buf.len);
    int rc = w->sink(w->ctx, w->buf.data, w->buf.len);
    w->bytes += w->buf.len;
    w->buf.len = 0;
    return rc;
}

static int put(struct rdb_writer *w, const void *data, size_t len)
{
    if (w->buf.len + len > w->buf.cap) {
        size_t want = w->buf.len + len > WRITE_CHUNK * 2 ? w->buf.len + len : WRITE_CHUNK * 2;
        if (kvs_buf_reserve(&w->buf, want) != 0)
            return KVS_ENOMEM;
    }
    if (len)
        memcpy((char *)w->buf.data + w->buf.len, data, len);
    w->buf.len += len;
    return w->buf.len >= WRITE_CHUNK && !w->manual ? flush(w) : 0;
}

static int put_byte(struct rdb_writer *w, unsigned char b)
{
    return put(w, &b, 1);
}

static int put_len(struct rdb_writer *w, uint64_t len)
{
    unsigned char b[9];
    size_t n;
    if (len < 64) {
        b[0] = (unsigned char)len;
        n = 1;
    } else if (len < 16384) {
        b[0] = (unsigned char)(LEN_14BIT << 6 | len >> 8);
        b[1] = (unsigned char)len;
        n = 2;
    } else if (len <= UINT32_MAX) {
        b[0] = LEN_32BIT;
        for (int i = 0; i < 4; i++)
            b[1 + i] = (unsigned char)(len >> (24 - 8 * i));
        n = 5;
    } else {
        b[0] = LEN_64BIT;
        for (int i = 0; i < 8; i++)
            b[1 + i] = (unsigned char)(len >> (56 - 8 * i));
        n = 9;
    }
    return put(w, b, n);
}

static int put_string(struct rdb_writer *w, const void *data, size_t len)
{
    int rc = put_len(w, len);
    return rc ? rc : put(w, data, len);
}

static int put_aux(struct rdb_writer *w, const char *name, const char *value)
{
    int rc = put_byte(w, OP_AUX);
    if (rc == 0)
        rc = put_string(w, name, strlen(name));
    if (rc == 0)
        rc = put_string(w, value, strlen(value));
    return rc;
}

int rdb_write_header(struct rdb_writer *w, const struct rdb_header *h)
{
    char magic[16], num[32];
    snprintf(magic, sizeof(magic), "REDIS%04d", RDB_VERSION);
    int rc = put(w, magic, 9);
    if (rc == 0)
        rc = put_aux(w, "redis-ver", "7.0.0");
    if (rc == 0)
        rc = put_aux(w, "redis-bits", sizeof(void *) == 8 ? "64" : "32");
    snprintf(num, sizeof(num), "%lld", (long long)(kvs_now_ms() / 1000));
    if (rc == 0)
        rc = put_aux(w, "ctime", num);
    if (rc == 0)
        rc = put_aux(w, "used-mem", "0");
    if (rc == 0 && h->replid) {
        rc = put_aux(w, "repl-stream-db", "0");
        if (rc == 0)
            rc = put_aux(w, "repl-id", h->replid);
        snprintf(num, sizeof(num), "%" PRIu64, h->offset);
        if (rc == 0)
            rc = put_aux(w, "repl-offset", num);
    }
    if (rc == 0)
        rc = put_aux(w, "aof-base", "0");
    if (rc == 0)
        rc = put_byte(w, OP_SELECTDB);
    if (rc == 0)
        rc = put_len(w, 0);
    if (rc == 0)
        rc = put_byte(w, OP_RESIZEDB);
    if (rc == 0)
        rc = put_len(w, h->keys);
    if (rc == 0)
        rc = put_len(w, h->expires);
    return rc;
}

int rdb_write_string(struct rdb_writer *w, kvs_slice key, kvs_slice value, int64_t expire_at)
{
    int rc = 0;
    if (expire_at > 0) {
        unsigned char b[9] = {OP_EXPIRETIME_MS};
        for (int i = 0; i < 8; i++)
            b[1 + i] = (unsigned char)((uint64_t)expire_at >> (8 * i));
        rc = put(w, b, sizeof(b));
    }
    if (rc == 0)
        rc = put_byte(w, TYPE_STRING);
    if (rc == 0)
        rc = put_string(w, key.data, key.len);
    if (rc == 0)
        rc = put_string(w, value.data, value.len);
    return rc;
}

int rdb_writer_flush(struct rdb_writer *w)
{
    return flush(w);
}

int rdb_write_end(struct rdb_writer *w)
{
    int rc = put_byte(w, OP_EOF);
    if (rc == 0)
        rc = flush(w);
    if (rc != 0)
        return rc;
    unsigned char b[8];
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)(w->crc >> (8 * i));
    /* The checksum itself is not checksummed: hand it over directly. */
    rc = w->sink(w->ctx, b, sizeof(b));
    w->bytes += sizeof(b);
    return rc;
}

/* ---- loading ---- */

struct reader {
    int fd;
    char *buf;
    size_t pos, len;
    uint64_t crc; /* of the bytes before buf[pos]... up to those consumed */
    size_t crc_pos;
    bool eof;
    char *why;
    kvs_buf key, value; /* the strings of the key being read */
};

static int fail(struct reader *r, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(struct reader *r, int rc, const char *fmt, ...)
{
    if (r->why) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(r->why, KVS_WHY_MAX, fmt, ap);
        va_end(ap);
    }
    return rc;
}

/* Fold the consumed bytes of buf into the checksum. */
static void crc_catch_up(struct reader *r)
{
    if (r->pos > r->crc_pos)
        r->crc = rdb_crc64(r->crc, r->buf + r->crc_pos, r->pos - r->crc_pos);
    r->crc_pos = r->pos;
}

/* At least n bytes (n <= READ_CHUNK) buffered from pos, or an error. */
static int fill(struct reader *r, size_t n)
{
    if (r->len - r->pos >= n)
        return 0;
    crc_catch_up(r);
    memmove(r->buf, r->buf + r->pos, r->len - r->pos);
    r->len -= r->pos;
    r->pos = r->crc_pos = 0;
    while (r->len < n) {
        ssize_t got = read(r->fd, r->buf + r->len, READ_CHUNK - r->len);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0)
            return fail(r, KVS_EIO, "reading the RDB file: %s", strerror(errno));
        if (got == 0)
            return fail(r, KVS_ECORRUPT, "the RDB file ends early");
        r->len += (size_t)got;
    }
    return 0;
}

static int get_bytes(struct reader *r, void *out, size_t n)
{
    char *o = out;
    while (n > 0) {
        size_t step = n < READ_CHUNK ? n : READ_CHUNK;
        int rc = fill(r, step);
        if (rc)
            return rc;
        memcpy(o, r->buf + r->pos, step);
        r->pos += step;
        o += step;
        n -= step;
    }
    return 0;
}

static int get_byte(struct reader *r, unsigned char *b)
{
    return get_bytes(r, b, 1);
}

/* A length, or (*encoded) the special encoding's number. */
static int get_len(struct reader *r, uint64_t *len, bool *encoded)
{
    unsigned char b[8];
    int rc = get_byte(r, b);
    if (rc)
        return rc;
    if (encoded)
        *encoded = false;
    switch (b[0] >> 6) {
    case LEN_6BIT:
        *len = b[0] & 0x3f;
        return 0;
    case LEN_14BIT: {
        unsigned char lo;
        rc = get_byte(r, &lo);
        *len = (uint64_t)(b[0] & 0x3f) << 8 | lo;
        return rc;
    }
    case LEN_ENCVAL:
        if (!encoded)
            return fail(r, KVS_ECORRUPT, "an encoded value where a length belongs");
        *encoded = true;
        *len = b[0] & 0x3f;
        return 0;
    }
    unsigned n = b[0] == LEN_32BIT ? 4 : b[0] == LEN_64BIT ? 8 : 0;
    if (n == 0)
        return fail(r, KVS_ECORRUPT, "unknown length encoding 0x%02x", b[0]);
    rc = get_bytes(r, b, n);
    if (rc)
        return rc;
    uint64_t v = 0;
    for (unsigned i = 0; i < n; i++)
        v = v << 8 | b[i];
    *len = v;
    return 0;
}

/* A string into out (replacing its content). */
static int get_string(struct reader *r, kvs_buf *out)
{
    uint64_t len = 0; /* set by get_len(); gcc -O2 cannot tell */
    bool encoded = false;
    int rc = get_len(r, &len, &encoded);
    if (rc)
        return rc;
    if (encoded && len != ENC_LZF) {
        unsigned n = len == ENC_INT8 ? 1 : len == ENC_INT16 ? 2 : len == ENC_INT32 ? 4 : 0;
        if (n == 0)
            return fail(r, KVS_ECORRUPT, "unknown string encoding %u", (unsigned)len);
        unsigned char b[4];
        rc = get_bytes(r, b, n);
        if (rc)
            return rc;
        uint32_t u = 0;
        for (unsigned i = 0; i < n; i++)
            u |= (uint32_t)b[i] << (8 * i);
        long long v = n == 1 ? (int8_t)u : n == 2 ? (int16_t)u : (int32_t)u;
        char text[24];
        int tl = snprintf(text, sizeof(text), "%lld", v);
        return kvs_buf_set(out, text, (size_t)tl);
    }
    if (encoded) { /* LZF: compressed length, original length, data */
        uint64_t clen, olen;
        rc = get_len(r, &clen, NULL);
        if (rc == 0)
            rc = get_len(r, &olen, NULL);
        if (rc)
            return rc;
        if (clen > MAX_STRING || olen > MAX_STRING)
            return fail(r, KVS_ECORRUPT, "a compressed string of %" PRIu64 " bytes", olen);
        unsigned char *c = malloc(clen ? clen : 1);
        if (!c)
            return KVS_ENOMEM;
        rc = get_bytes(r, c, clen);
        if (rc == 0 && kvs_buf_reserve(out, olen ? olen : 1) != 0)
            rc = KVS_ENOMEM;
        /* liblzf (Redis's own compressor); lengths fit: both <= MAX_STRING. */
        if (rc == 0 && olen &&
            lzf_decompress(c, (unsigned)clen, out->data, (unsigned)olen) != (unsigned)olen)
            rc = fail(r, KVS_ECORRUPT, "a compressed string that does not decompress");
        free(c);
        out->len = rc == 0 ? olen : 0;
        return rc;
    }
    if (len > MAX_STRING)
        return fail(r, KVS_ECORRUPT, "a string of %" PRIu64 " bytes", len);
    if (kvs_buf_reserve(out, len ? len : 1) != 0)
        return KVS_ENOMEM;
    rc = get_bytes(r, out->data, len);
    out->len = rc == 0 ? len : 0;
    return rc;
}

static int get_le(struct reader *r, unsigned n, uint64_t *v)
{
    unsigned char b[8];
    int rc = get_bytes(r, b, n);
    *v = 0;
    for (unsigned i = 0; rc == 0 && i < n; i++)
        *v |= (uint64_t)b[i] << (8 * i);
    return rc;
}

static int load(struct reader *r, const struct rdb_load_cb *cb)
{
    char magic[10] = {0};
    int rc = get_bytes(r, magic, 9);
    if (rc)
        return rc;
    int version = atoi(magic + 5);
    if (memcmp(magic, "REDIS", 5) != 0 || version < 1 || version > RDB_VERSION)
        return fail(r, KVS_ECORRUPT, "not an RDB file of version 1 to %d", RDB_VERSION);
    int64_t expire_at = 0;
    for (;;) {
        unsigned char op;
        uint64_t v, v2;
        rc = get_byte(r, &op);
        if (rc)
            return rc;
        switch (op) {
        case OP_EXPIRETIME_MS:
            rc = get_le(r, 8, &v);
            expire_at = (int64_t)v;
            break;
        case OP_EXPIRETIME:
            rc = get_le(r, 4, &v);
            expire_at = (int64_t)v * 1000;
            break;
        case OP_FREQ:
            rc = get_byte(r, &op);
            break;
        case OP_IDLE:
            rc = get_len(r, &v, NULL);
            break;
        case OP_SELECTDB:
            rc = get_len(r, &v, NULL);
            if (rc == 0 && v != 0)
                return fail(r, KVS_ENOTSUP, "keys of database %" PRIu64 " (kvs has database 0)", v);
            break;
        case OP_RESIZEDB:
            rc = get_len(r, &v, NULL);
            if (rc == 0)
                rc = get_len(r, &v2, NULL);
            break;
        case OP_AUX:
            rc = get_string(r, &r->key);
            if (rc == 0)
                rc = get_string(r, &r->value);
            if (rc == 0 && cb->aux)
                rc = cb->aux(cb->ctx, (kvs_slice){r->key.data, r->key.len},
                             (kvs_slice){r->value.data, r->value.len});
            break;
        case OP_MODULE_AUX:
        case OP_FUNCTION:
        case OP_FUNCTION2:
            return fail(r, KVS_ENOTSUP, "module data or functions (opcode %u)", op);
        case OP_EOF: {
            crc_catch_up(r);
            uint64_t want = r->crc;
            if (version < 5)
                return 0;
            rc = get_le(r, 8, &v);
            if (rc)
                return rc;
            if (v != 0 && v != want)
                return fail(r, KVS_ECORRUPT, "RDB checksum mismatch");
            return 0;
        }
        case TYPE_STRING:
            rc = get_string(r, &r->key);
            if (rc == 0)
                rc = get_string(r, &r->value);
            if (rc == 0)
                rc = cb->key(cb->ctx, (kvs_slice){r->key.data, r->key.len},
                             (kvs_slice){r->value.data, r->value.len},
                             expire_at > 0 ? expire_at : 0);
            expire_at = 0;
            break;
        default:
            return fail(r, KVS_ENOTSUP, "a value of RDB type %u (kvs holds strings only)", op);
        }
        if (rc)
            return rc;
    }
}

int rdb_load_fd(int fd, const struct rdb_load_cb *cb, char *why)
{
    struct reader r = {.fd = fd, .why = why};
    if (why)
        why[0] = '\0';
    r.buf = malloc(READ_CHUNK);
    if (!r.buf)
        return KVS_ENOMEM;
    int rc = load(&r, cb);
    free(r.buf);
    kvs_buf_free(&r.key);
    kvs_buf_free(&r.value);
    return rc;
}
