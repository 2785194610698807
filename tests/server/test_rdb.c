/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The RDB writer and loader (server/rdb.h) on their own: Redis's CRC64
 * (the Jones polynomial, reflected, as crc64.c), the length encodings
 * (6, 14, 32 and 64 bits) and the string encodings (plain, the three
 * integer ones, LZF) byte by byte, the file's layout, what the loader
 * refuses, and both directions with Debian's Redis 7.0: an RDB that
 * redis-server saved loads with the same keys, and one kvs wrote passes
 * redis-check-rdb and loads into redis-server.
 */
#include <criterion/criterion.h>
#include <hiredis/hiredis.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "server/rdb.h"
#include "support/tmpdir.h"

/* ---- CRC64 ---- */

/* The bit-at-a-time definition, against which the table version is checked. */
static uint64_t crc64_bitwise(uint64_t crc, const void *data, size_t len)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < len; i++) {
        crc ^= p[i];
        for (int k = 0; k < 8; k++)
            crc = crc & 1 ? (crc >> 1) ^ UINT64_C(0x95ac9329ac4bc9b5) : crc >> 1;
    }
    return crc;
}

Test(rdb, crc64_check_value)
{
    /* Redis's crc64.c test: crc64(0, "123456789", 9). */
    cr_expect_eq(rdb_crc64(0, "123456789", 9), UINT64_C(0xe9c6d914c4b8d9ca));
    cr_expect_eq(rdb_crc64(0, "", 0), 0);
    cr_expect_eq(crc64_bitwise(0, "123456789", 9), UINT64_C(0xe9c6d914c4b8d9ca));
}

Test(rdb, crc64_any_split_any_length)
{
    unsigned char buf[1000];
    uint64_t x = 88172645463325252ull;
    for (size_t i = 0; i < sizeof(buf); i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        buf[i] = (unsigned char)x;
    }
    /* Every length from 0 to 64 (the 8-byte loop and the tail), and at
       every alignment. */
    for (size_t off = 0; off < 8; off++) {
        for (size_t len = 0; len <= 64; len++)
            cr_assert_eq(rdb_crc64(0, buf + off, len), crc64_bitwise(0, buf + off, len),
                         "offset %zu length %zu", off, len);
    }
    /* Fed in pieces, it is the crc of the whole. */
    uint64_t whole = rdb_crc64(0, buf, sizeof(buf));
    cr_expect_eq(whole, crc64_bitwise(0, buf, sizeof(buf)));
    for (size_t cut = 0; cut <= sizeof(buf); cut += 37)
        cr_expect_eq(rdb_crc64(rdb_crc64(0, buf, cut), buf + cut, sizeof(buf) - cut), whole,
                     "cut at %zu", cut);
}

/* ---- writing ---- */

struct mem {
    kvs_buf b;
    int calls;
};

static int mem_sink(void *ctx, const void *data, size_t len)
{
    struct mem *m = ctx;
    cr_assert_eq(kvs_buf_reserve(&m->b, m->b.len + len + 1), 0);
    memcpy((char *)m->b.data + m->b.len, data, len);
    m->b.len += len;
    m->calls++;
    return 0;
}

/* The bytes rdb_write_string() writes for one key, without the header. */
static void string_bytes(struct mem *m, kvs_slice key, kvs_slice value, int64_t expire_at)
{
    struct rdb_writer w;
    rdb_writer_init(&w, mem_sink, m);
    cr_assert_eq(rdb_write_string(&w, key, value, expire_at), 0);
    cr_assert_eq(rdb_writer_flush(&w), 0);
    rdb_writer_free(&w);
}

/* The encoded length of a value of len bytes: the bytes between the key
   ("k", after the type byte and its 1-byte length) and the value. */
static void expect_len_encoding(size_t len, const unsigned char *want, size_t want_len)
{
    char *value = calloc(1, len ? len : 1);
    cr_assert_not_null(value);
    struct mem m = {0};
    string_bytes(&m, kvs_slice_str("k"), (kvs_slice){value, len}, 0);
    const unsigned char *p = m.b.data;
    cr_assert_eq(m.b.len, 3 + want_len + len, "length %zu: %zu bytes written", len, m.b.len);
    cr_expect_eq(p[0], 0, "the string type");
    cr_expect_eq(p[1], 1, "the key's length");
    cr_expect_eq(p[2], 'k');
    cr_expect_eq(memcmp(p + 3, want, want_len), 0, "length %zu encoded as %02x %02x %02x...", len,
                 p[3], p[4], p[5]);
    kvs_buf_free(&m.b);
    free(value);
}

Test(rdb, length_encodings)
{
    /* 00xxxxxx: 6 bits. */
    expect_len_encoding(0, (const unsigned char[]){0x00}, 1);
    expect_len_encoding(1, (const unsigned char[]){0x01}, 1);
    expect_len_encoding(63, (const unsigned char[]){0x3f}, 1);
    /* 01xxxxxx xxxxxxxx: 14 bits, big-endian. */
    expect_len_encoding(64, (const unsigned char[]){0x40, 0x40}, 2);
    expect_len_encoding(300, (const unsigned char[]){0x41, 0x2c}, 2);
    expect_len_encoding(16383, (const unsigned char[]){0x7f, 0xff}, 2);
    /* 0x80 then 32 bits, big-endian. */
    expect_len_encoding(16384, (const unsigned char[]){0x80, 0x00, 0x00, 0x40, 0x00}, 5);
    expect_len_encoding(70000, (const unsigned char[]){0x80, 0x00, 0x01, 0x11, 0x70}, 5);
}

/* 0x81 then 64 bits: no string that long in a test, but RESIZEDB's
   counts use the same encoding. */
Test(rdb, length_encoding_64_bits)
{
    struct mem m = {0};
    struct rdb_writer w;
    rdb_writer_init(&w, mem_sink, &m);
    struct rdb_header h = {.keys = UINT64_C(0x123456789a), .expires = 5};
    cr_assert_eq(rdb_write_header(&w, &h), 0);
    cr_assert_eq(rdb_writer_flush(&w), 0);
    rdb_writer_free(&w);
    const unsigned char want[] = {0xfe, 0x00, 0xfb, 0x81, 0x00, 0x00, 0x00,
                                  0x12, 0x34, 0x56, 0x78, 0x9a, 0x05};
    cr_assert_geq(m.b.len, sizeof(want));
    cr_expect_eq(memcmp((char *)m.b.data + m.b.len - sizeof(want), want, sizeof(want)), 0,
                 "SELECTDB 0, RESIZEDB 0x123456789a 5 at the header's end");
    kvs_buf_free(&m.b);
}

Test(rdb, expiry_is_ms_little_endian)
{
    struct mem m = {0};
    string_bytes(&m, kvs_slice_str("k"), kvs_slice_str("v"), INT64_C(0x0102030405060708));
    const unsigned char want[] = {0xfc, 0x08, 0x07, 0x06, 0x05, 0x04, 0x03,
                                  0x02, 0x01, 0x00, 0x01, 'k',  0x01, 'v'};
    cr_assert_eq(m.b.len, sizeof(want));
    cr_expect_eq(memcmp(m.b.data, want, sizeof(want)), 0);
    kvs_buf_free(&m.b);
}

/* A whole file: magic, AUX fields, SELECTDB, RESIZEDB, keys, EOF, and the
   CRC64 of everything before it, little-endian. */
static void write_file(struct mem *m, const char *replid)
{
    struct rdb_writer w;
    rdb_writer_init(&w, mem_sink, m);
    struct rdb_header h = {.replid = replid, .offset = 12345, .keys = 3, .expires = 1};
    cr_assert_eq(rdb_write_header(&w, &h), 0);
    cr_assert_eq(rdb_write_string(&w, kvs_slice_str("a"), kvs_slice_str("1"), 0), 0);
    cr_assert_eq(rdb_write_string(&w, kvs_slice_str("b"), (kvs_slice){"", 0}, 4102444800000), 0);
    char *big = malloc(100000);
    cr_assert_not_null(big);
    for (size_t i = 0; i < 100000; i++)
        big[i] = (char)('a' + i % 26);
    cr_assert_eq(rdb_write_string(&w, (kvs_slice){"bin\0key", 7}, (kvs_slice){big, 100000}, 0), 0);
    free(big);
    cr_assert_eq(rdb_write_end(&w), 0);
    cr_expect_eq(w.bytes, m->b.len);
    rdb_writer_free(&w);
}

Test(rdb, file_layout_and_trailer)
{
    struct mem m = {0};
    write_file(&m, "0123456789012345678901234567890123456789");
    const unsigned char *p = m.b.data;
    cr_assert_gt(m.b.len, 9 + 9);
    cr_expect_eq(memcmp(p, "REDIS0010", 9), 0);
    cr_expect_eq(p[9], 0xfa, "an AUX field first");
    cr_expect_not_null(memmem(p, m.b.len,
                              "\x07repl-id\x28"
                              "0123456789012345678901234567890123456789",
                              49));
    cr_expect_not_null(memmem(p, m.b.len,
                              "\x0brepl-offset\x05"
                              "12345",
                              18));
    size_t body = m.b.len - 8;
    cr_expect_eq(p[body - 1], 0xff, "EOF before the checksum");
    uint64_t crc = 0;
    for (int i = 0; i < 8; i++)
        crc |= (uint64_t)p[body + i] << (8 * i);
    cr_expect_eq(crc, crc64_bitwise(0, p, body));
    /* Written in chunks (the sink is called more than once for 100 kB). */
    cr_expect_gt(m.calls, 1);
    kvs_buf_free(&m.b);
}

/* ---- loading ---- */

struct loaded {
    char keys[16][64];
    char values[16][128];
    size_t value_len[16];
    size_t key_len[16];
    int64_t expire[16];
    size_t n;
    char aux[512];
};

static int on_aux(void *ctx, kvs_slice name, kvs_slice value)
{
    struct loaded *l = ctx;
    size_t used = strlen(l->aux);
    snprintf(l->aux + used, sizeof(l->aux) - used, "%.*s=%.*s;", (int)name.len,
             (const char *)name.data, (int)value.len, (const char *)value.data);
    return 0;
}

static int on_key(void *ctx, kvs_slice key, kvs_slice value, int64_t expire_at)
{
    struct loaded *l = ctx;
    cr_assert_lt(l->n, 16);
    cr_assert_lt(key.len, sizeof(l->keys[0]));
    memcpy(l->keys[l->n], key.data, key.len);
    l->key_len[l->n] = key.len;
    size_t keep = value.len < sizeof(l->values[0]) ? value.len : sizeof(l->values[0]);
    memcpy(l->values[l->n], value.data, keep);
    l->value_len[l->n] = value.len;
    l->expire[l->n] = expire_at;
    l->n++;
    return 0;
}

/* Load bytes through a file, as a replica does. */
static int load_bytes(const void *data, size_t len, struct loaded *out, char *why)
{
    memset(out, 0, sizeof(*out));
    FILE *f = tmpfile();
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(data, 1, len, f), len);
    fflush(f);
    lseek(fileno(f), 0, SEEK_SET);
    struct rdb_load_cb cb = {.aux = on_aux, .key = on_key, .ctx = out};
    int rc = rdb_load_fd(fileno(f), &cb, why);
    fclose(f);
    return rc;
}

Test(rdb, round_trip)
{
    struct mem m = {0};
    write_file(&m, "0123456789012345678901234567890123456789");
    struct loaded l;
    char why[KVS_WHY_MAX];
    cr_assert_eq(load_bytes(m.b.data, m.b.len, &l, why), 0, "%s", why);
    cr_assert_eq(l.n, 3);
    cr_expect_eq(memcmp(l.keys[0], "a", 2), 0);
    cr_expect_eq(l.value_len[0], 1);
    cr_expect_eq(l.expire[0], 0);
    cr_expect_eq(l.value_len[1], 0);
    cr_expect_eq(l.expire[1], 4102444800000);
    cr_expect_eq(l.key_len[2], 7);
    cr_expect_eq(memcmp(l.keys[2], "bin\0key", 7), 0);
    cr_expect_eq(l.value_len[2], 100000);
    cr_expect_eq(memcmp(l.values[2], "abcdefghijklmnopqrstuvwxyzabc", 29), 0);
    cr_expect_not_null(strstr(l.aux, "repl-id=0123456789012345678901234567890123456789;"));
    cr_expect_not_null(strstr(l.aux, "repl-offset=12345;"));
    cr_expect_not_null(strstr(l.aux, "redis-ver="));
    kvs_buf_free(&m.b);
}

/* A file by hand: the magic of version v, the body, EOF and the CRC64 of
   all of it (or zero: Redis's rdbchecksum no). */
static size_t craft(unsigned char *out, int v, const void *body, size_t len, bool checksum)
{
    size_t n = (size_t)sprintf((char *)out, "REDIS%04d", v);
    memcpy(out + n, body, len);
    n += len;
    out[n++] = 0xff;
    uint64_t crc = checksum ? crc64_bitwise(0, out, n) : 0;
    for (int i = 0; i < 8; i++)
        out[n++] = (unsigned char)(crc >> (8 * i));
    return n;
}

Test(rdb, string_encodings_redis_writes)
{
    /* SELECTDB 0, RESIZEDB 6 1, IDLE 5 and FREQ 7 (skipped); then
       "i8" = int8 -123, "i16" = int16 -30160 (little-endian), "i32" =
       int32 2000000000, "lzf" = LZF of "abcabcabc" (a literal "abc", then
       6 bytes from 3 back), and "s" expiring at 4102444800 s (EXPIRETIME,
       seconds, little-endian) with a 14-bit length (65). */
    // clang-format off
    unsigned char body[] = {
        0xfe, 0x00, 0xfb, 0x06, 0x01, 0xf8, 0x05, 0xf9, 0x07,
        0x00, 0x02, 'i', '8', 0xc0, 0x85,
        0x00, 0x03, 'i', '1', '6', 0xc1, 0x30, 0x8a,
        0x00, 0x03, 'i', '3', '2', 0xc2, 0x00, 0x94, 0x35, 0x77,
        0x00, 0x03, 'l', 'z', 'f', 0xc3, 0x06, 0x09, 0x02, 'a', 'b', 'c', 0x80, 0x02,
        0xfd, 0x00, 0x57, 0x86, 0xf4, 0x00, 0x01, 's', 0x40, 0x41,
    };
    // clang-format on
    /* The 14-bit string's 65 bytes follow the body. */
    unsigned char body2[sizeof(body) + 65];
    memcpy(body2, body, sizeof(body));
    memset(body2 + sizeof(body), 'x', 65);
    unsigned char file[512];
    size_t len;
    len = craft(file, 9, body2, sizeof(body2), true);
    struct loaded l;
    char why[KVS_WHY_MAX];
    cr_assert_eq(load_bytes(file, len, &l, why), 0, "%s", why);
    cr_assert_eq(l.n, 5);
    cr_expect_str_eq(l.values[0], "-123");
    cr_expect_str_eq(l.values[1], "-30160");
    cr_expect_str_eq(l.values[2], "2000000000");
    cr_expect_eq(l.value_len[3], 9);
    cr_expect_eq(memcmp(l.values[3], "abcabcabc", 9), 0);
    cr_expect_eq(l.expire[4], 4102444800000);
    cr_expect_eq(l.value_len[4], 65);
    /* The same without a checksum (rdbchecksum no writes zero). */
    len = craft(file, 9, body2, sizeof(body2), false);
    cr_expect_eq(load_bytes(file, len, &l, why), 0, "%s", why);
}

Test(rdb, refused)
{
    const unsigned char ok_body[] = {0x00, 0x01, 'k', 0x01, 'v'};
    unsigned char file[256];
    struct loaded l;
    char why[KVS_WHY_MAX];

    size_t len = craft(file, 10, ok_body, sizeof(ok_body), true);
    cr_assert_eq(load_bytes(file, len, &l, why), 0, "%s", why);
    /* A flipped bit in a value: the checksum says so. */
    file[13] ^= 0x20;
    cr_expect_eq(load_bytes(file, len, &l, why), KVS_ECORRUPT);
    cr_expect_not_null(strstr(why, "checksum"), "%s", why);
    file[13] ^= 0x20;
    /* Cut short anywhere. */
    for (size_t cut = 0; cut < len; cut++)
        cr_expect_eq(load_bytes(file, cut, &l, why), KVS_ECORRUPT, "cut at %zu", cut);
    /* A later version, a bad magic. */
    len = craft(file, 11, ok_body, sizeof(ok_body), true);
    cr_expect_eq(load_bytes(file, len, &l, why), KVS_ECORRUPT);
    memcpy(file, "REDIX", 5);
    cr_expect_eq(load_bytes(file, len, &l, why), KVS_ECORRUPT);
    /* A list (type 1), database 1, module data. */
    const unsigned char list[] = {0x01, 0x01, 'k', 0x01, 0x01, 'v'};
    len = craft(file, 10, list, sizeof(list), true);
    cr_expect_eq(load_bytes(file, len, &l, why), KVS_ENOTSUP);
    const unsigned char db1[] = {0xfe, 0x01};
    len = craft(file, 10, db1, sizeof(db1), true);
    cr_expect_eq(load_bytes(file, len, &l, why), KVS_ENOTSUP);
    const unsigned char module[] = {0xf7, 0x00};
    len = craft(file, 10, module, sizeof(module), true);
    cr_expect_eq(load_bytes(file, len, &l, why), KVS_ENOTSUP);
    /* An encoded value where a length belongs (the key of LZF), an LZF
       string that does not decompress to its length, an unknown length
       encoding. */
    const unsigned char enc_len[] = {0xfb, 0xc0, 0x01};
    len = craft(file, 10, enc_len, sizeof(enc_len), true);
    cr_expect_eq(load_bytes(file, len, &l, why), KVS_ECORRUPT);
    const unsigned char bad_lzf[] = {0x00, 0x01, 'k', 0xc3, 0x02, 0x09, 0x00, 'a'};
    len = craft(file, 10, bad_lzf, sizeof(bad_lzf), true);
    cr_expect_eq(load_bytes(file, len, &l, why), KVS_ECORRUPT);
    const unsigned char bad_len[] = {0x00, 0x01, 'k', 0x82, 0x00};
    len = craft(file, 10, bad_len, sizeof(bad_len), true);
    cr_expect_eq(load_bytes(file, len, &l, why), KVS_ECORRUPT);
}

/* ---- with Redis 7.0 ---- */

static void start_redis(ts_server *s, const char *dir, const char *dbfilename)
{
    uint16_t port = ts_free_port(NULL);
    char port_text[16], log[PATH_MAX + 16];
    snprintf(port_text, sizeof(port_text), "%u", (unsigned)port);
    snprintf(log, sizeof(log), "%s/redis.log", dir);
    const char *args[] = {
        "--port",       port_text, "--bind", "127.0.0.1", "--save",       "",
        "--appendonly", "no",      "--dir",  dir,         "--dbfilename", dbfilename,
        "--daemonize",  "no",      NULL};
    ts_server_opts opts = {
        .binary = REDIS_SERVER, .args = args, .log_path = log, .no_addr = true, .port = port};
    cr_assert_eq(ts_server_start(s, &opts), TS_READY);
}

static redisContext *connect_to(ts_server *s)
{
    struct timeval tv = {10, 0};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", s->port, tv);
    cr_assert(c && !c->err);
    return c;
}

static void redis_ok(redisContext *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(c, fmt, ap);
    va_end(ap);
    cr_assert_not_null(r);
    cr_assert_neq(r->type, REDIS_REPLY_ERROR, "%s: %s", fmt, r->str);
    freeReplyObject(r);
}

/* redis-server's own RDB (integers, LZF, expiry times) loads as it holds. */
Test(rdb, loads_what_redis_saves, .timeout = 60)
{
    char dir[PATH_MAX];
    cr_assert_eq(ts_tmpdir_make(dir), 0);
    ts_server s;
    start_redis(&s, dir, "dump.rdb");
    redisContext *c = connect_to(&s);
    redis_ok(c, "SET small 7");
    redis_ok(c, "SET neg -30000");
    redis_ok(c, "SET large 2000000000");
    redis_ok(c, "SET zero-padded 007"); /* not an integer encoding */
    char big[1001];
    memset(big, 'z', 1000);
    big[1000] = '\0';
    redis_ok(c, "SET compressible %s", big); /* LZF (rdbcompression yes) */
    redis_ok(c, "SET expiring v PXAT 4102444800123");
    redis_ok(c, "SET %b %b", "b\0k", (size_t)3, "", (size_t)0);
    redis_ok(c, "SAVE");
    redisFree(c);
    cr_expect_eq(ts_server_stop(&s, H_TIMEOUT_MS), 0);

    char path[PATH_MAX + 16];
    snprintf(path, sizeof(path), "%s/dump.rdb", dir);
    size_t len = 0;
    char *data = ts_read_file(path, &len);
    cr_assert_not_null(data);
    struct loaded l;
    char why[KVS_WHY_MAX];
    cr_assert_eq(load_bytes(data, len, &l, why), 0, "%s", why);
    cr_expect_not_null(strstr(l.aux, "redis-ver=7."), "%s", l.aux);
    cr_assert_eq(l.n, 7);
    int found = 0;
    for (size_t i = 0; i < l.n; i++) {
        const char *k = l.keys[i];
        const char *v = l.values[i];
        if (strcmp(k, "small") == 0)
            found += strcmp(v, "7") == 0;
        else if (strcmp(k, "neg") == 0)
            found += strcmp(v, "-30000") == 0;
        else if (strcmp(k, "large") == 0)
            found += strcmp(v, "2000000000") == 0;
        else if (strcmp(k, "zero-padded") == 0)
            found += strcmp(v, "007") == 0;
        else if (strcmp(k, "compressible") == 0)
            found += l.value_len[i] == 1000 && v[0] == 'z' && v[127] == 'z';
        else if (strcmp(k, "expiring") == 0)
            found += strcmp(v, "v") == 0 && l.expire[i] == 4102444800123;
        else if (l.key_len[i] == 3 && memcmp(k, "b\0k", 3) == 0)
            found += l.value_len[i] == 0;
    }
    cr_expect_eq(found, 7);
    free(data);
    ts_tmpdir_remove(dir);
}

/* What kvs writes, redis-check-rdb accepts and redis-server loads. */
Test(rdb, redis_loads_what_kvs_writes, .timeout = 60)
{
    char dir[PATH_MAX];
    cr_assert_eq(ts_tmpdir_make(dir), 0);
    struct mem m = {0};
    write_file(&m, "0123456789012345678901234567890123456789");
    char path[PATH_MAX + 16];
    snprintf(path, sizeof(path), "%s/kvs.rdb", dir);
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(m.b.data, 1, m.b.len, f), m.b.len);
    fclose(f);
    kvs_buf_free(&m.b);

    const char *check[] = {"redis-check-rdb", path, NULL};
    ts_result res;
    cr_assert_eq(ts_run(check, NULL, 0, H_TIMEOUT_MS, &res), 0);
    cr_expect_eq(res.status, 0, "%s%s", res.out, res.err);
    cr_expect_not_null(strstr(res.out, "RDB looks OK"), "%s", res.out);
    ts_result_free(&res);

    ts_server s;
    start_redis(&s, dir, "kvs.rdb");
    redisContext *c = connect_to(&s);
    redisReply *r = redisCommand(c, "DBSIZE");
    cr_assert_not_null(r);
    cr_expect_eq(r->integer, 3);
    freeReplyObject(r);
    r = redisCommand(c, "GET a");
    cr_expect_str_eq(r->str, "1");
    freeReplyObject(r);
    r = redisCommand(c, "PEXPIRETIME b");
    cr_expect_eq(r->integer, 4102444800000);
    freeReplyObject(r);
    r = redisCommand(c, "STRLEN %b", "bin\0key", (size_t)7);
    cr_expect_eq(r->integer, 100000);
    freeReplyObject(r);
    redisFree(c);
    cr_expect_eq(ts_server_stop(&s, H_TIMEOUT_MS), 0);
    ts_tmpdir_remove(dir);
}
