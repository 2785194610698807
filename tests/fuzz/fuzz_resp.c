/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libFuzzer harness for the RESP codec (proto/resp.h).
 *
 * Input: byte 0 picks the parser's limits (small ones make the limit paths
 * common), byte 1's low four bits say how many split bytes follow, and each
 * split byte b is a read of b + 1 bytes; the rest is what a peer sent.
 *
 * The request parser is fed the payload as a connection would: reads are
 * appended to a buffer, every complete command is taken and its bytes
 * dropped, and the parser is called again after each read. Every change
 * moves the buffer to a new exact-size allocation, so a stale pointer or a
 * read past the end is caught by ASan. It is fed twice, whole and in the
 * chosen splits, and the two must give the same commands, error and
 * leftover. Each command is checked: consumed within the buffer, arguments
 * inside the command's bytes (or the parser's scratch for quoted inline
 * words), a multibulk command's bytes equal to their re-encoding, and the
 * arguments surviving resp_add_command -> resp_parse -> resp_parse_reply.
 * Scratch words are released only when the parser says RESP_FULL, as a
 * connection with queued writes does: until then every one of them must
 * keep its bytes while later commands are parsed.
 *
 * The reply parser reads the same payload element by element: each element
 * must parse the same from an exact-size copy, every strict prefix of it
 * must ask for more, and its bytes must equal the encoders' output for it.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "kvs/slice.h"
#include "proto/resp.h"

/* Limits chosen by byte 0: 0 means the parser's default. */
static const size_t inline_tbl[8] = {0, 1, 2, 3, 7, 16, 64, 300};
static const size_t bulk_tbl[8] = {0, 0, 1, 2, 5, 16, 100, 1000};
static const size_t args_tbl[4] = {0, 1, 3, 8};

/* ---- an append-only record of what a parse produced, to compare ---- */

static void put(kvs_buf *b, const void *p, size_t n)
{
    CHECK(kvs_buf_reserve(b, b->len + n) == 0);
    if (n)
        memcpy((char *)b->data + b->len, p, n);
    b->len += n;
}

static void put_size(kvs_buf *b, size_t v)
{
    put(b, &v, sizeof(v));
}

/* ---- the connection buffer ---- */

struct conn {
    char *buf;
    size_t len;
};

/* Replace the buffer by a new exact-size one holding buf[from..) + add. */
static void conn_move(struct conn *c, size_t from, const char *add, size_t n)
{
    size_t len = c->len - from + n;
    char *b = malloc(len ? len : 1);
    CHECK(b != NULL);
    if (c->len - from)
        memcpy(b, c->buf + from, c->len - from);
    if (n)
        memcpy(b + c->len - from, add, n);
    free(c->buf);
    c->buf = b;
    c->len = len;
}

static bool inside(const void *p, size_t n, const void *base, size_t size)
{
    const char *q = p, *b = base;
    return q >= b && q <= b + size && n <= (size_t)(b + size - q);
}

/* ---- checks of one complete command ---- */

/* Encode the arguments as a client would, parse them back both ways. */
static void round_trip(const resp_parser *p)
{
    kvs_buf enc = KVS_BUF_INIT;
    CHECK(resp_add_command(&enc, p->argc, p->argv) == 0);
    resp_parser q;
    CHECK(resp_parser_init(&q, NULL) == 0);
    size_t consumed, need;
    CHECK(resp_parse(&q, enc.data, enc.len, &consumed, &need) == RESP_DONE);
    CHECK(consumed == enc.len && !q.inline_cmd && q.argc == p->argc);
    for (size_t i = 0; i < p->argc; i++)
        CHECK(q.argv[i].len == p->argv[i].len &&
              memcmp(q.argv[i].data, p->argv[i].data, p->argv[i].len) == 0);
    resp_parser_free(&q);

    resp_reply r;
    size_t off = 0, used;
    CHECK(resp_parse_reply(enc.data, enc.len, SIZE_MAX, &r, &used) == RESP_DONE);
    CHECK(r.type == RESP_ARRAY && (size_t)r.integer == p->argc);
    for (size_t i = 0; i < p->argc; i++) {
        off += used;
        CHECK(resp_parse_reply((char *)enc.data + off, enc.len - off, SIZE_MAX, &r, &used) ==
              RESP_DONE);
        CHECK(r.type == RESP_BULK && r.str.len == p->argv[i].len &&
              memcmp(r.str.data, p->argv[i].data, r.str.len) == 0);
    }
    CHECK(off + used == enc.len);
    kvs_buf_free(&enc);
}

static void check_command(const resp_parser *p, const char *buf, size_t consumed)
{
    CHECK(p->argc <= p->limits.max_args);
    for (size_t i = 0; i < p->argc; i++) {
        const kvs_slice *a = &p->argv[i];
        bool in_buf = inside(a->data, a->len, buf, consumed);
        bool in_scratch =
            p->inline_cmd && p->scratch && inside(a->data, a->len, p->scratch, p->scratch_cap);
        CHECK(in_buf || in_scratch);
        CHECK(p->inline_cmd || a->len <= p->limits.max_bulk);
    }
    if (p->inline_cmd) {
        /* One line, through its '\n'; never a line starting with '*'. */
        CHECK(buf[0] != '*' && buf[consumed - 1] == '\n');
        CHECK(memchr(buf, '\n', consumed - 1) == NULL);
    } else if (p->argc > 0) {
        /* Numbers are strict (no sign, no leading zero), so a multibulk
           command has exactly one encoding: the bytes it came from. */
        kvs_buf enc = KVS_BUF_INIT;
        CHECK(resp_add_command(&enc, p->argc, p->argv) == 0);
        CHECK(enc.len == consumed && memcmp(enc.data, buf, consumed) == 0);
        kvs_buf_free(&enc);
    } else {
        /* "*0" or a negative count, which Redis ignores. */
        CHECK(buf[0] == '*' && consumed >= 4 && buf[consumed - 2] == '\r' &&
              buf[consumed - 1] == '\n');
        CHECK(buf[1] == '0' ? consumed == 4 : buf[1] == '-');
    }
    round_trip(p);
}

/* ---- scratch words held across commands ---- */

struct held {
    kvs_slice *words; /* into the parser's scratch */
    kvs_buf copy;     /* their bytes when parsed, one after the other */
    size_t n, cap;
};

static void hold(struct held *h, const resp_parser *p)
{
    for (size_t i = 0; i < p->argc; i++) {
        const kvs_slice *a = &p->argv[i];
        if (a->len == 0 || !p->scratch || !inside(a->data, a->len, p->scratch, p->scratch_cap))
            continue;
        if (h->n == h->cap) {
            h->cap = h->cap ? h->cap * 2 : 16;
            h->words = realloc(h->words, h->cap * sizeof(*h->words));
            CHECK(h->words != NULL);
        }
        h->words[h->n++] = *a;
        put(&h->copy, a->data, a->len);
    }
}

/* The held words still hold their bytes; then they are released. */
static void release(struct held *h, resp_parser *p)
{
    size_t off = 0;
    for (size_t i = 0; i < h->n; i++) {
        CHECK(memcmp(h->words[i].data, (char *)h->copy.data + off, h->words[i].len) == 0);
        off += h->words[i].len;
    }
    h->n = 0;
    h->copy.len = 0;
    resp_parser_release(p);
}

/* ---- feeding a parser like a connection ---- */

/*
 * Parse what the buffer holds. Returns true when the connection is closed
 * (a protocol error), false when the parser wants more bytes. *need_was is
 * the need the last RESP_MORE reported (0: none, or not asked).
 */
static bool drain(resp_parser *p, struct conn *c, bool use_need, size_t *need_was, kvs_buf *out,
                  struct held *held)
{
    for (;;) {
        size_t consumed = SIZE_MAX, need = SIZE_MAX;
        int rc = resp_parse(p, c->buf, c->len, &consumed, use_need ? &need : NULL);
        if (rc == RESP_FULL) {
            /* Only with words held; parsed again once they are released. */
            CHECK(consumed == 0 && p->argc == 0 && held->n > 0);
            release(held, p);
            continue;
        }
        /* A bulk waited for stays awaited, at the same length, until the
           buffer reaches that length; then it is complete. */
        if (*need_was && c->len < *need_was)
            CHECK(rc == RESP_MORE && need == *need_was);
        else if (*need_was && rc == RESP_MORE)
            CHECK(need == 0 || need > *need_was);
        if (rc == RESP_MORE) {
            CHECK(consumed == 0);
            CHECK(!use_need || need == 0 ||
                  (need > c->len && need - c->len <= p->limits.max_bulk + 2));
            *need_was = use_need ? need : 0;
            return false;
        }
        *need_was = 0;
        if (rc == RESP_ERROR) {
            CHECK(consumed == 0 && p->error != NULL && strncmp(p->error, "ERR ", 4) == 0);
            put(out, "E", 1);
            put(out, p->error, strlen(p->error) + 1);
            return true;
        }
        CHECK(rc == RESP_DONE);
        CHECK(consumed > 0 && consumed <= c->len);
        check_command(p, c->buf, consumed);
        hold(held, p);
        put(out, p->inline_cmd ? "I" : "M", 1);
        put_size(out, consumed);
        put_size(out, p->argc);
        for (size_t i = 0; i < p->argc; i++) {
            put_size(out, p->argv[i].len);
            put(out, p->argv[i].data, p->argv[i].len);
        }
        conn_move(c, consumed, NULL, 0);
    }
}

/* Feed data in reads of the sizes splits[] gives, cycling (one read when
   nsplits is 0), recording every outcome in out. */
static void feed(const resp_limits *lim, const unsigned char *splits, size_t nsplits,
                 const char *data, size_t n, kvs_buf *out)
{
    resp_parser p;
    CHECK(resp_parser_init(&p, lim) == 0);
    struct conn c = {NULL, 0};
    conn_move(&c, 0, NULL, 0);
    bool closed = false;
    size_t off = 0, need_was = 0;
    struct held held = {NULL, KVS_BUF_INIT, 0, 0};
    for (size_t k = 0; !closed && off < n; k++) {
        size_t chunk = nsplits ? (size_t)splits[k % nsplits] + 1 : n;
        if (chunk > n - off)
            chunk = n - off;
        conn_move(&c, 0, data + off, chunk);
        off += chunk;
        /* The whole-buffer run leaves out need, to cover that path too. */
        closed = drain(&p, &c, nsplits != 0, &need_was, out, &held);
    }
    release(&held, &p);
    free(held.words);
    kvs_buf_free(&held.copy);
    if (!closed) {
        put(out, "R", 1);
        put_size(out, c.len);
    }
    free(c.buf);
    resp_parser_free(&p);
}

/* ---- the reply parser ---- */

static void check_reply_bytes(const resp_reply *r, const char *buf, size_t used)
{
    kvs_buf enc = KVS_BUF_INIT;
    switch (r->type) {
    case RESP_SIMPLE:
    case RESP_ERR:
        CHECK(inside(r->str.data, r->str.len, buf, used));
        CHECK(memchr(r->str.data, '\r', r->str.len) == NULL);
        /* The encoders take C strings and turn '\n' into a space. */
        if (memchr(r->str.data, '\0', r->str.len) == NULL &&
            memchr(r->str.data, '\n', r->str.len) == NULL) {
            char *text = malloc(r->str.len + 1);
            CHECK(text != NULL);
            memcpy(text, r->str.data, r->str.len);
            text[r->str.len] = '\0';
            CHECK((r->type == RESP_SIMPLE ? resp_add_simple(&enc, text)
                                          : resp_add_error(&enc, text)) == 0);
            free(text);
            CHECK(enc.len == used && memcmp(enc.data, buf, used) == 0);
        }
        break;
    case RESP_INTEGER:
        CHECK(resp_add_int(&enc, r->integer) == 0);
        CHECK(enc.len == used && memcmp(enc.data, buf, used) == 0);
        break;
    case RESP_BULK:
        CHECK(inside(r->str.data, r->str.len, buf, used) && (size_t)r->integer == r->str.len);
        CHECK(resp_add_bulk(&enc, r->str.data, r->str.len) == 0);
        CHECK(enc.len == used && memcmp(enc.data, buf, used) == 0);
        break;
    case RESP_NIL:
        CHECK(used == 5 && (memcmp(buf, "$-1\r\n", 5) == 0 || memcmp(buf, "*-1\r\n", 5) == 0));
        break;
    case RESP_ARRAY:
        CHECK(r->integer >= 0 && resp_add_array(&enc, (size_t)r->integer) == 0);
        CHECK(enc.len == used && memcmp(enc.data, buf, used) == 0);
        break;
    default:
        CHECK(!"unknown reply type");
    }
    kvs_buf_free(&enc);
}

static void check_replies(const char *data, size_t n, size_t max_bulk)
{
    size_t off = 0;
    while (off < n) {
        resp_reply r;
        size_t used = SIZE_MAX;
        int rc = resp_parse_reply(data + off, n - off, max_bulk, &r, &used);
        CHECK(rc == RESP_DONE || rc == RESP_MORE || rc == RESP_ERROR);
        if (rc != RESP_DONE) {
            CHECK(used == 0);
            return;
        }
        CHECK(used > 0 && used <= n - off);
        CHECK(r.type != RESP_BULK || r.str.len <= max_bulk);
        check_reply_bytes(&r, data + off, used);
        char *copy = fuzz_dup(data + off, used);
        /* The element alone parses the same; any strict prefix wants more. */
        resp_reply again;
        size_t used2;
        CHECK(resp_parse_reply(copy, used, max_bulk, &again, &used2) == RESP_DONE);
        CHECK(used2 == used && again.type == r.type && again.integer == r.integer &&
              again.str.len == r.str.len);
        size_t cuts[3] = {0, used / 2, used - 1};
        for (int i = 0; i < 3; i++) {
            char *pre = fuzz_dup(copy, cuts[i]);
            CHECK(resp_parse_reply(pre, cuts[i], max_bulk, &again, &used2) == RESP_MORE);
            free(pre);
        }
        free(copy);
        off += used;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *in, size_t n);

int LLVMFuzzerTestOneInput(const uint8_t *in, size_t n)
{
    if (n < 2)
        return 0;
    resp_limits lim = {
        .max_inline = inline_tbl[in[0] & 7],
        .max_bulk = bulk_tbl[(in[0] >> 3) & 7],
        .max_args = args_tbl[(in[0] >> 6) & 3],
    };
    size_t nsplits = in[1] & 15;
    if (n < 2 + nsplits)
        return 0;
    const unsigned char *splits = in + 2;
    const char *data = (const char *)in + 2 + nsplits;
    size_t len = n - 2 - nsplits;

    kvs_buf whole = KVS_BUF_INIT, split = KVS_BUF_INIT;
    feed(&lim, NULL, 0, data, len, &whole);
    feed(&lim, splits, nsplits, data, len, &split);
    CHECK(whole.len == split.len && memcmp(whole.data, split.data, whole.len) == 0);
    kvs_buf_free(&whole);
    kvs_buf_free(&split);

    char *copy = fuzz_dup(data, len);
    check_replies(copy, len, lim.max_bulk ? lim.max_bulk : RESP_DEFAULT_MAX_BULK);
    free(copy);
    return 0;
}
