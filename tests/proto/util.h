/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Helpers shared by the RESP codec suites: feeding a parser a buffer the
 * way a connection would (all at once, or a few bytes per read), and
 * comparing what came out.
 */
#ifndef KVS_TESTS_PROTO_UTIL_H
#define KVS_TESTS_PROTO_UTIL_H

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "proto/resp.h"

/* A string literal as a buffer, embedded NULs included. */
#define LIT(s) (s), (sizeof(s) - 1)

/* One outcome of feeding a stream: a command (its arguments concatenated
   with their lengths, to compare), or how the stream ended. */
struct outcome {
    int status;
    size_t consumed;
    size_t argc;
    bool inline_cmd;
    char args[512];
    size_t args_len;
    const char *error;
};

static inline void outcome_from(struct outcome *o, const resp_parser *p, int rc, size_t consumed)
{
    memset(o, 0, sizeof(*o));
    o->status = rc;
    o->consumed = consumed;
    if (rc == RESP_ERROR)
        o->error = p->error;
    if (rc != RESP_DONE)
        return;
    o->argc = p->argc;
    o->inline_cmd = p->inline_cmd;
    for (size_t i = 0; i < p->argc; i++) {
        int n =
            snprintf(o->args + o->args_len, sizeof(o->args) - o->args_len, "%zu:", p->argv[i].len);
        o->args_len += (size_t)n;
        size_t take = p->argv[i].len;
        if (take > sizeof(o->args) - o->args_len)
            take = sizeof(o->args) - o->args_len;
        memcpy(o->args + o->args_len, p->argv[i].data, take);
        o->args_len += take;
    }
}

/*
 * Feed buf to a fresh parser with these limits, step bytes becoming
 * visible at a time (as reads would deliver them), parsing every command
 * that completes. Writes up to max outcomes: one per command, then the
 * final RESP_MORE or RESP_ERROR. Returns the number written.
 */
static inline size_t feed(const resp_limits *limits, const char *buf, size_t len, size_t step,
                          struct outcome *out, size_t max)
{
    resp_parser p;
    cr_assert_eq(resp_parser_init(&p, limits), 0);
    size_t n = 0, off = 0, visible = 0;
    for (;;) {
        visible = visible + step < len ? visible + step : len;
        int rc;
        size_t consumed;
        do {
            rc = resp_parse(&p, buf + off, visible - off, &consumed, NULL);
            cr_assert(rc == RESP_DONE || rc == RESP_MORE || rc == RESP_ERROR, "status %d", rc);
            cr_assert(consumed <= visible - off);
            if (rc == RESP_DONE) {
                cr_assert_gt(consumed, 0, "a command consumes bytes");
                cr_assert_lt(n, max);
                outcome_from(&out[n++], &p, rc, consumed);
                off += consumed;
                resp_parser_release(&p); /* the command has run */
            }
        } while (rc == RESP_DONE);
        if (rc == RESP_ERROR || visible == len) {
            cr_assert_lt(n, max);
            outcome_from(&out[n++], &p, rc, 0);
            break;
        }
    }
    resp_parser_free(&p);
    return n;
}

static inline void assert_same_outcomes(const struct outcome *a, size_t na, const struct outcome *b,
                                        size_t nb, const char *what)
{
    cr_assert_eq(na, nb, "%s: %zu outcomes vs %zu", what, na, nb);
    for (size_t i = 0; i < na; i++) {
        cr_assert_eq(a[i].status, b[i].status, "%s: outcome %zu status", what, i);
        cr_assert_eq(a[i].consumed, b[i].consumed, "%s: outcome %zu consumed", what, i);
        cr_assert_eq(a[i].argc, b[i].argc, "%s: outcome %zu argc", what, i);
        cr_assert_eq(a[i].inline_cmd, b[i].inline_cmd, "%s: outcome %zu inline", what, i);
        cr_assert_eq(a[i].args_len, b[i].args_len, "%s: outcome %zu args", what, i);
        cr_assert(memcmp(a[i].args, b[i].args, a[i].args_len) == 0, "%s: outcome %zu args", what,
                  i);
        cr_assert(a[i].error == b[i].error, "%s: outcome %zu error %s vs %s", what, i,
                  a[i].error ? a[i].error : "-", b[i].error ? b[i].error : "-");
    }
}

/* Parse exactly one complete command from buf with default limits and
   check it has the given arguments (as literal strings). The words of the
   commands parsed before are released first. */
static inline void expect_command(resp_parser *p, const char *buf, size_t len, size_t argc,
                                  const char *const *want, const size_t *want_len)
{
    size_t consumed;
    resp_parser_release(p);
    int rc = resp_parse(p, buf, len, &consumed, NULL);
    cr_assert_eq(rc, RESP_DONE, "rc %d (%s)", rc, p->error ? p->error : "");
    cr_assert_eq(consumed, len);
    cr_assert_eq(p->argc, argc, "argc %zu, want %zu", p->argc, argc);
    for (size_t i = 0; i < argc; i++) {
        size_t wl = want_len ? want_len[i] : strlen(want[i]);
        cr_assert_eq(p->argv[i].len, wl, "arg %zu length %zu, want %zu", i, p->argv[i].len, wl);
        cr_assert(memcmp(p->argv[i].data, want[i], wl) == 0, "arg %zu differs", i);
    }
}

/* Expect a protocol error with exactly this text from parsing buf. */
static inline void expect_error(const resp_limits *limits, const char *buf, size_t len,
                                const char *text)
{
    resp_parser p;
    cr_assert_eq(resp_parser_init(&p, limits), 0);
    size_t consumed;
    int rc = resp_parse(&p, buf, len, &consumed, NULL);
    cr_assert_eq(rc, RESP_ERROR, "rc %d for an input that should fail with %s", rc, text);
    cr_assert_str_eq(p.error, text);
    resp_parser_free(&p);
}

#endif
