/*
 * kvs-server against a real redis-server: the same commands go to both,
 * and the replies must be the same bytes, so that error texts, reply types
 * and edge cases (odd cursors, COUNT 0, option names with a NUL byte,
 * glob corners) are Redis's. Where the two may rightly differ in order
 * only (KEYS, whole SCAN passes, whose cursors are each server's own), the
 * sets of keys are compared instead. COMMAND INFO of every command kvs
 * has must give Redis's name, arity, flags and key positions.
 *
 * redis-server runs with no persistence (--save '' --appendonly no) on a
 * free port, one per test, beside a kvs-server of each registered engine.
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "kvs/kvs.h"
#include "proto/resp.h"
#include "support/tmpdir.h"

enum mode {
    EXACT,     /* the same bytes */
    AS_SET,    /* an array of bulk strings, in any order (KEYS) */
    SCAN_PASS, /* a whole pass of this SCAN from cursor 0: the same keys */
    HEAD,      /* COMMAND INFO: the same name, arity, flags, key positions */
};

struct dcmd {
    enum mode mode;
    size_t argc;
    kvs_slice argv[16];
};

/* A literal argument; it may hold NUL bytes. */
#define S(lit)                                                                                     \
    {                                                                                              \
        (lit), sizeof(lit) - 1                                                                     \
    }
#define CMD(mode, ...)                                                                             \
    {                                                                                              \
        (mode), sizeof((kvs_slice[]){__VA_ARGS__}) / sizeof(kvs_slice),                            \
        {                                                                                          \
            __VA_ARGS__                                                                            \
        }                                                                                          \
    }

static const struct dcmd script[] = {
    CMD(EXACT, S("FLUSHALL")),
    CMD(EXACT, S("RANDOMKEY")),
    CMD(EXACT, S("KEYS"), S("*")),
    CMD(SCAN_PASS, S("SCAN"), S("0")),
    CMD(EXACT, S("SET"), S("only"), S("1")),
    CMD(EXACT, S("RANDOMKEY")),
    CMD(SCAN_PASS, S("SCAN"), S("0"), S("COUNT"), S("100")),
    CMD(EXACT, S("DEL"), S("only")),
    /* The data: strings of every kind of name. */
    CMD(EXACT, S("MSET"), S("user:1"), S("alice"), S("user:2"), S("bob"), S("user:10"), S("carol"),
        S("user:a"), S("dave"), S("item:1"), S("x")),
    CMD(EXACT, S("MSET"), S(""), S("empty"), S("bin\0key"), S("v\0v"), S("a\\b"), S("w"), S("[x]"),
        S("y"), S("caf\xc3\xa9"), S("z"), S("\xff\x80"), S("hi")),
    CMD(EXACT, S("SET"), S("k2"), S("")),
    CMD(EXACT, S("DBSIZE")),
    /* TYPE, STRLEN, TOUCH, EXISTS, UNLINK, DEL. */
    CMD(EXACT, S("TYPE"), S("user:1")),
    CMD(EXACT, S("TYPE"), S("")),
    CMD(EXACT, S("TYPE"), S("nosuch")),
    CMD(EXACT, S("TYPE")),
    CMD(EXACT, S("TYPE"), S("a"), S("b")),
    CMD(EXACT, S("STRLEN"), S("user:1")),
    CMD(EXACT, S("STRLEN"), S("bin\0key")),
    CMD(EXACT, S("STRLEN"), S("k2")),
    CMD(EXACT, S("STRLEN"), S("nosuch")),
    CMD(EXACT, S("STRLEN")),
    CMD(EXACT, S("TOUCH"), S("user:1"), S("user:1"), S("nosuch"), S("")),
    CMD(EXACT, S("TOUCH")),
    CMD(EXACT, S("EXISTS"), S("user:1"), S("user:1"), S("nosuch")),
    CMD(EXACT, S("UNLINK"), S("item:1"), S("nosuch"), S("item:1")),
    CMD(EXACT, S("UNLINK")),
    CMD(EXACT, S("UNLINK"), S("item:1")),
    CMD(EXACT, S("DEL"), S("nosuch")),
    CMD(EXACT, S("RANDOMKEY"), S("x")),
    CMD(EXACT, S("KEYS")),
    CMD(EXACT, S("KEYS"), S("a"), S("b")),
    /* KEYS patterns: Redis's glob, binary-safe. */
    CMD(AS_SET, S("KEYS"), S("*")),
    CMD(AS_SET, S("KEYS"), S("**")),
    CMD(AS_SET, S("KEYS"), S("")),
    CMD(AS_SET, S("KEYS"), S("user:*")),
    CMD(AS_SET, S("KEYS"), S("user:?")),
    CMD(AS_SET, S("KEYS"), S("user:[0-9]")),
    CMD(AS_SET, S("KEYS"), S("user:[^1]*")),
    CMD(AS_SET, S("KEYS"), S("user:[a-]")),
    CMD(AS_SET, S("KEYS"), S("*\0*")),
    CMD(AS_SET, S("KEYS"), S("a\\\\b")),
    CMD(AS_SET, S("KEYS"), S("\\[x]")),
    CMD(AS_SET, S("KEYS"), S("[[]x]")),
    CMD(AS_SET, S("KEYS"), S("caf?\xa9")),
    CMD(AS_SET, S("KEYS"), S("[\x80-\xff]*")),
    CMD(AS_SET, S("KEYS"), S("[a-\xff]*")),
    CMD(AS_SET, S("KEYS"), S("?*")),
    CMD(AS_SET, S("KEYS"), S("u*r*:*1")),
    CMD(AS_SET, S("KEYS"), S("[")),
    CMD(AS_SET, S("KEYS"), S("user:[1")),
    /* SCAN's cursor as strtoul() reads it. */
    CMD(EXACT, S("SCAN")),
    CMD(EXACT, S("SCAN"), S("abc")),
    CMD(EXACT, S("SCAN"), S(" 0")),
    CMD(EXACT, S("SCAN"), S("0 ")),
    CMD(EXACT, S("SCAN"), S("0x1")),
    CMD(EXACT, S("SCAN"), S("+")),
    CMD(EXACT, S("SCAN"), S("-")),
    CMD(EXACT, S("SCAN"), S("1.5")),
    CMD(EXACT, S("SCAN"), S("18446744073709551616")),
    CMD(EXACT, S("SCAN"), S("-18446744073709551616")),
    CMD(EXACT, S("SCAN"), S("99999999999999999999999")),
    /* Its options, checked in Redis's order. */
    CMD(EXACT, S("SCAN"), S("0"), S("COUNT"), S("0")),
    CMD(EXACT, S("SCAN"), S("0"), S("COUNT"), S("-1")),
    CMD(EXACT, S("SCAN"), S("0"), S("COUNT"), S("x")),
    CMD(EXACT, S("SCAN"), S("0"), S("COUNT"), S("01")),
    CMD(EXACT, S("SCAN"), S("0"), S("COUNT"), S("+5")),
    CMD(EXACT, S("SCAN"), S("0"), S("COUNT"), S("")),
    CMD(EXACT, S("SCAN"), S("0"), S("COUNT"), S("5\0")),
    CMD(EXACT, S("SCAN"), S("0"), S("COUNT"), S("9223372036854775808")),
    CMD(EXACT, S("SCAN"), S("0"), S("COUNT")),
    CMD(EXACT, S("SCAN"), S("0"), S("MATCH")),
    CMD(EXACT, S("SCAN"), S("0"), S("TYPE")),
    CMD(EXACT, S("SCAN"), S("0"), S("FOO")),
    CMD(EXACT, S("SCAN"), S("0"), S("FOO"), S("BAR")),
    CMD(EXACT, S("SCAN"), S("0"), S("COUNT"), S("0"), S("FOO")),
    CMD(EXACT, S("SCAN"), S("0"), S("COUNT"), S("x"), S("FOO")),
    CMD(EXACT, S("SCAN"), S("0"), S("FOO"), S("COUNT"), S("x")),
    CMD(EXACT, S("SCAN"), S("x"), S("COUNT"), S("0")),
    CMD(EXACT, S("SCAN"), S("0"), S("MATCH"), S("*"), S("COUNT")),
    /* Whole passes: the cursors differ, the keys must not. */
    CMD(SCAN_PASS, S("SCAN"), S("0")),
    CMD(SCAN_PASS, S("SCAN"), S("0"), S("COUNT"), S("1")),
    CMD(SCAN_PASS, S("SCAN"), S("0"), S("COUNT"), S("1000")),
    CMD(SCAN_PASS, S("SCAN"), S("0"), S("MATCH"), S("user:*"), S("COUNT"), S("2")),
    CMD(SCAN_PASS, S("SCAN"), S("0"), S("MATCH"), S("*")),
    CMD(SCAN_PASS, S("SCAN"), S("0"), S("MATCH"), S("**")),
    CMD(SCAN_PASS, S("SCAN"), S("0"), S("MATCH"), S("")),
    CMD(SCAN_PASS, S("SCAN"), S("0"), S("TYPE"), S("string")),
    CMD(SCAN_PASS, S("SCAN"), S("0"), S("type"), S("STRING"), S("match"), S("user:?")),
    CMD(SCAN_PASS, S("SCAN"), S("0"), S("TYPE"), S("string\0junk")),
    CMD(SCAN_PASS, S("SCAN"), S("0"), S("TYPE"), S("list")),
    CMD(SCAN_PASS, S("SCAN"), S("0"), S("TYPE"), S("nosuchtype")),
    CMD(SCAN_PASS, S("SCAN"), S("0"), S("COUNT\0x"), S("3"), S("MATCH"), S("nosuch"), S("MATCH"),
        S("user:1*")),
    /* Integers as Redis's string2ll() reads them. */
    CMD(EXACT, S("SELECT"), S("0")),
    CMD(EXACT, S("SELECT"), S("00")),
    CMD(EXACT, S("SELECT"), S("-0")),
    CMD(EXACT, S("SELECT"), S("+0")),
    CMD(EXACT, S("SELECT"), S(" 0")),
    /* Arity errors of the batched writes. */
    CMD(EXACT, S("MSET"), S("a")),
    CMD(EXACT, S("MSET"), S("a"), S("b"), S("c")),
    CMD(EXACT, S("SET"), S("a")),
    CMD(EXACT, S("DEL")),
    CMD(EXACT, S("FLUSHALL")),
    CMD(SCAN_PASS, S("SCAN"), S("0"), S("MATCH"), S("*"), S("COUNT"), S("5")),
    CMD(EXACT, S("KEYS"), S("*")),
};

struct redis {
    ts_server s;
    char dir[PATH_MAX];
    char log[PATH_MAX + 16];
};

static void redis_start(struct redis *r)
{
    cr_assert_eq(ts_tmpdir_make(r->dir), 0);
    snprintf(r->log, sizeof(r->log), "%s/redis.log", r->dir);
    uint16_t port = ts_free_port(NULL);
    cr_assert_neq(port, 0);
    char port_text[16];
    snprintf(port_text, sizeof(port_text), "%u", (unsigned)port);
    const char *args[] = {
        "--port", port_text, "--bind", "127.0.0.1",   "--save", "",  "--appendonly",
        "no",     "--dir",   r->dir,   "--daemonize", "no",     NULL};
    ts_server_opts opts = {
        .binary = REDIS_SERVER, .args = args, .log_path = r->log, .no_addr = true, .port = port};
    int rc = ts_server_start(&r->s, &opts);
    cr_assert_eq(rc, TS_READY, "redis-server did not start (%d)", rc);
}

static void redis_stop(struct redis *r)
{
    cr_expect_eq(ts_server_stop(&r->s, H_TIMEOUT_MS), 0);
    ts_tmpdir_remove(r->dir);
}

static int connect_port(uint16_t port)
{
    struct h_server fake = {0};
    fake.s.port = port;
    return h_connect(&fake);
}

/* One reply as a flat list of elements (an array, then its elements). */
struct flat {
    resp_reply *e;
    size_t n;
};

static struct flat flatten(const char *buf, size_t len)
{
    struct flat f = {calloc(len + 1, sizeof(resp_reply)), 0};
    cr_assert_not_null(f.e);
    for (size_t off = 0; off < len;) {
        size_t used = 0;
        cr_assert_eq(resp_parse_reply(buf + off, len - off, SIZE_MAX, &f.e[f.n], &used), RESP_DONE);
        off += used;
        f.n++;
    }
    return f;
}

static bool element_eq(const resp_reply *a, const resp_reply *b)
{
    if (a->type != b->type)
        return false;
    if (a->type == RESP_INTEGER || a->type == RESP_ARRAY)
        return a->integer == b->integer;
    return a->str.len == b->str.len &&
           (a->str.len == 0 || memcmp(a->str.data, b->str.data, a->str.len) == 0);
}

static int slice_cmp(const void *x, const void *y)
{
    const resp_reply *a = x, *b = y;
    size_t n = a->str.len < b->str.len ? a->str.len : b->str.len;
    int c = n ? memcmp(a->str.data, b->str.data, n) : 0;
    return c ? c : (a->str.len > b->str.len) - (a->str.len < b->str.len);
}

/* Printable text of bytes, for failure messages, in static buffer which
   (0-2), so that three can be shown at once. */
static const char *shown(const char *buf, size_t len, int which)
{
    static char text[3][2048];
    size_t o = 0;
    for (size_t i = 0; i < len && o + 8 < sizeof(text[0]); i++) {
        unsigned char ch = (unsigned char)buf[i];
        if (ch >= 32 && ch < 127 && ch != '\\')
            text[which][o++] = (char)ch;
        else
            o += (size_t)snprintf(text[which] + o, 5, "\\x%02x", ch);
    }
    text[which][o] = '\0';
    return text[which];
}

static const char *shown_cmd(const struct dcmd *d)
{
    static char text[1024];
    size_t o = 0;
    for (size_t i = 0; i < d->argc && o < sizeof(text) - 256; i++)
        o += (size_t)snprintf(text + o, sizeof(text) - o, "%s\"%s\"", i ? " " : "",
                              shown(d->argv[i].data, d->argv[i].len, 2));
    return text;
}

static char *ask(int fd, size_t argc, const kvs_slice *argv, size_t *len)
{
    h_send_cmd(fd, argc, argv);
    return h_read_reply(fd, len);
}

/* The keys of a whole SCAN pass, sorted, checking each reply's shape. */
static struct flat scan_pass(int fd, const struct dcmd *d, char **keep, size_t *nkeep)
{
    kvs_slice argv[16];
    memcpy(argv, d->argv, sizeof(argv));
    char cursor[32] = "0";
    struct flat keys = {NULL, 0};
    size_t cap = 0;
    for (size_t steps = 0;; steps++) {
        cr_assert_lt(steps, 1500, "%s does not end", shown_cmd(d));
        argv[1] = kvs_slice_str(cursor);
        size_t len;
        char *raw = ask(fd, d->argc, argv, &len);
        struct flat f = flatten(raw, len);
        cr_assert(f.n >= 3 && f.e[0].type == RESP_ARRAY && f.e[0].integer == 2 &&
                      f.e[1].type == RESP_BULK && f.e[2].type == RESP_ARRAY &&
                      (size_t)f.e[2].integer == f.n - 3,
                  "%s: %s", shown_cmd(d), shown(raw, len, 1));
        for (size_t i = 3; i < f.n; i++) {
            cr_assert_eq(f.e[i].type, RESP_BULK);
            if (keys.n == cap) {
                cap = cap ? cap * 2 : 64;
                keys.e = realloc(keys.e, cap * sizeof(*keys.e));
            }
            keys.e[keys.n++] = f.e[i];
        }
        snprintf(cursor, sizeof(cursor), "%.*s", (int)f.e[1].str.len,
                 (const char *)f.e[1].str.data);
        free(f.e);
        keep[(*nkeep)++] = raw; /* the keys point into it */
        if (strcmp(cursor, "0") == 0)
            break;
    }
    if (keys.n)
        qsort(keys.e, keys.n, sizeof(*keys.e), slice_cmp);
    return keys;
}

static void compare_sets(const struct dcmd *d, struct flat *a, struct flat *b)
{
    cr_expect_eq(a->n, b->n, "%s: kvs %zu elements, redis %zu", shown_cmd(d), a->n, b->n);
    for (size_t i = 0; i < a->n && i < b->n; i++)
        cr_expect(element_eq(&a->e[i], &b->e[i]), "%s: kvs has \"%s\" where redis has \"%s\"",
                  shown_cmd(d), shown(a->e[i].str.data, a->e[i].str.len, 0),
                  shown(b->e[i].str.data, b->e[i].str.len, 1));
}

static void run_one(int kfd, int rfd, const struct dcmd *d)
{
    if (d->mode == SCAN_PASS) {
        char *keep[2][1500];
        size_t nkeep[2] = {0, 0};
        struct flat a = scan_pass(kfd, d, keep[0], &nkeep[0]);
        struct flat b = scan_pass(rfd, d, keep[1], &nkeep[1]);
        compare_sets(d, &a, &b);
        free(a.e);
        free(b.e);
        for (int s = 0; s < 2; s++)
            for (size_t i = 0; i < nkeep[s]; i++)
                free(keep[s][i]);
        return;
    }
    size_t klen, rlen;
    char *k = ask(kfd, d->argc, d->argv, &klen);
    char *r = ask(rfd, d->argc, d->argv, &rlen);
    if (d->mode == EXACT) {
        cr_expect(klen == rlen && memcmp(k, r, klen) == 0, "%s:\n  kvs:   %s\n  redis: %s",
                  shown_cmd(d), shown(k, klen, 0), shown(r, rlen, 1));
    } else if (d->mode == AS_SET) {
        struct flat a = flatten(k, klen), b = flatten(r, rlen);
        cr_assert(a.n >= 1 && a.e[0].type == RESP_ARRAY, "%s: kvs %s", shown_cmd(d),
                  shown(k, klen, 0));
        if (a.n > 1)
            qsort(a.e + 1, a.n - 1, sizeof(*a.e), slice_cmp);
        if (b.n > 1)
            qsort(b.e + 1, b.n - 1, sizeof(*b.e), slice_cmp);
        compare_sets(d, &a, &b);
        free(a.e);
        free(b.e);
    } else { /* HEAD: *1, *10, name, arity, *nflags, flags..., first, last, step */
        struct flat a = flatten(k, klen), b = flatten(r, rlen);
        cr_assert(a.n > 5 && a.e[4].type == RESP_ARRAY, "%s: kvs %s", shown_cmd(d),
                  shown(k, klen, 0));
        size_t head = 5 + (size_t)a.e[4].integer + 3;
        cr_expect(a.n >= head && b.n >= head, "%s", shown_cmd(d));
        for (size_t i = 0; i < head && i < a.n && i < b.n; i++)
            cr_expect(element_eq(&a.e[i], &b.e[i]),
                      "%s: field %zu differs:\n  kvs:   %s\n  redis: %s", shown_cmd(d), i,
                      shown(k, klen, 0), shown(r, rlen, 1));
        free(a.e);
        free(b.e);
    }
    free(k);
    free(r);
}

ParameterizedTestParameters(differential, against_redis)
{
    H_ENGINE_PARAMS;
}

ParameterizedTest(struct ts_engine_param *engine, differential, against_redis, .timeout = 100)
{
    struct redis redis;
    redis_start(&redis);
    struct h_server h;
    h_start(&h, engine->name, NULL);
    int kfd = h_connect(&h), rfd = connect_port(redis.s.port);
    for (size_t i = 0; i < sizeof(script) / sizeof(script[0]); i++)
        run_one(kfd, rfd, &script[i]);

    /* COMMAND INFO of every command kvs lists. */
    kvs_slice list[] = {S("COMMAND"), S("LIST")};
    size_t len;
    char *names = ask(kfd, 2, list, &len);
    struct flat f = flatten(names, len);
    cr_assert(f.n > 1 && f.e[0].type == RESP_ARRAY);
    for (size_t i = 1; i < f.n; i++) {
        struct dcmd d = CMD(HEAD, S("COMMAND"), S("INFO"), f.e[i].str);
        run_one(kfd, rfd, &d);
    }
    free(f.e);
    free(names);
    close(kfd);
    close(rfd);
    h_stop(&h);
    redis_stop(&redis);
}
