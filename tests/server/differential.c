/* SPDX-License-Identifier: BSD-3-Clause */
/* The differential suites' helpers; see differential.h. */
#include "differential.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "proto/resp.h"
#include "support/tmpdir.h"

void d_redis_start(struct d_redis *r)
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

void d_redis_stop(struct d_redis *r)
{
    cr_expect_eq(ts_server_stop(&r->s, H_TIMEOUT_MS), 0);
    ts_tmpdir_remove(r->dir);
}

int d_connect_port(uint16_t port)
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

char *d_ask(int fd, size_t argc, const kvs_slice *argv, size_t *len)
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
        char *raw = d_ask(fd, d->argc, argv, &len);
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

/* Send d to both servers again and again until both answer :0, within a
   deadline: a short expiry time running out. */
static void await_zero(int kfd, int rfd, const struct dcmd *d)
{
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (int fd_i = 0; fd_i < 2; fd_i++) {
        int fd = fd_i == 0 ? kfd : rfd;
        for (;;) {
            size_t len;
            char *reply = d_ask(fd, d->argc, d->argv, &len);
            bool zero = len == 4 && memcmp(reply, ":0\r\n", 4) == 0;
            free(reply);
            if (zero)
                break;
            clock_gettime(CLOCK_MONOTONIC, &now);
            cr_assert_lt(now.tv_sec - start.tv_sec, H_TIMEOUT_MS / 1000, "%s: %s never answered 0",
                         shown_cmd(d), fd_i == 0 ? "kvs" : "redis");
        }
    }
}

void d_run_one(int kfd, int rfd, const struct dcmd *d)
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
    if (d->mode == AWAIT_0) {
        await_zero(kfd, rfd, d);
        return;
    }
    size_t klen, rlen;
    char *k = d_ask(kfd, d->argc, d->argv, &klen);
    char *r = d_ask(rfd, d->argc, d->argv, &rlen);
    if (d->mode == NEAR_S || d->mode == NEAR_MS) {
        resp_reply a, b;
        size_t used;
        long long tol = d->mode == NEAR_S ? 1 : NEAR_MS_TOLERANCE;
        bool ok = resp_parse_reply(k, klen, SIZE_MAX, &a, &used) == RESP_DONE &&
                  resp_parse_reply(r, rlen, SIZE_MAX, &b, &used) == RESP_DONE &&
                  a.type == RESP_INTEGER && b.type == RESP_INTEGER &&
                  (a.integer < 0) == (b.integer < 0) &&
                  (a.integer < 0 ? a.integer == b.integer : llabs(a.integer - b.integer) <= tol);
        cr_expect(ok, "%s (within %lld):\n  kvs:   %s\n  redis: %s", shown_cmd(d), tol,
                  shown(k, klen, 0), shown(r, rlen, 1));
    } else if (d->mode == EXACT) {
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

void d_compare_command_info(int kfd, int rfd)
{
    kvs_slice list[] = {S("COMMAND"), S("LIST")};
    size_t len;
    char *names = d_ask(kfd, 2, list, &len);
    struct flat f = flatten(names, len);
    cr_assert(f.n > 1 && f.e[0].type == RESP_ARRAY);
    for (size_t i = 1; i < f.n; i++) {
        /* Subcommands ("client|id") are listed as Redis lists them, but
           kvs keeps no flags or key positions of its own for them. */
        if (memchr(f.e[i].str.data, '|', f.e[i].str.len))
            continue;
        struct dcmd d = CMD(HEAD, S("COMMAND"), S("INFO"), f.e[i].str);
        d_run_one(kfd, rfd, &d);
    }
    free(f.e);
    free(names);
}
