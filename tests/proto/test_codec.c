/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The reply encoders, the client's request encoder and the reply parser:
 * exact bytes on the wire, round trips through the parsers, partial input
 * and malformed replies.
 */
#include <criterion/criterion.h>
#include <limits.h>
#include <string.h>

#include "util.h"

static kvs_buf out;

static void teardown(void)
{
    kvs_buf_free(&out);
}

TestSuite(codec, .fini = teardown);

static void assert_bytes(const char *want, size_t len)
{
    cr_assert_eq(out.len, len, "encoded %zu bytes, want %zu", out.len, len);
    cr_assert(memcmp(out.data, want, len) == 0, "encoded '%.*s'", (int)out.len,
              (const char *)out.data);
}

Test(codec, encoders_write_exact_bytes)
{
    cr_assert_eq(resp_add_simple(&out, "OK"), 0);
    cr_assert_eq(resp_add_error(&out, "ERR bad"), 0);
    cr_assert_eq(resp_add_int(&out, 0), 0);
    cr_assert_eq(resp_add_int(&out, -42), 0);
    cr_assert_eq(resp_add_int(&out, LLONG_MAX), 0);
    cr_assert_eq(resp_add_int(&out, LLONG_MIN), 0);
    cr_assert_eq(resp_add_bulk(&out, "a\r\n\0b", 5), 0);
    cr_assert_eq(resp_add_bulk(&out, NULL, 0), 0);
    cr_assert_eq(resp_add_nil(&out), 0);
    cr_assert_eq(resp_add_array(&out, 2), 0);
    cr_assert_eq(resp_add_nil_array(&out), 0);
    assert_bytes(LIT("+OK\r\n-ERR bad\r\n:0\r\n:-42\r\n:9223372036854775807\r\n"
                     ":-9223372036854775808\r\n$5\r\na\r\n\0b\r\n$0\r\n\r\n$-1\r\n*2\r\n*-1\r\n"));
}

Test(codec, line_replies_cannot_break_the_stream)
{
    cr_assert_eq(resp_add_error(&out, "ERR a\r\nb"), 0);
    cr_assert_eq(resp_add_simple(&out, "x\ny"), 0);
    cr_assert_eq(resp_add_errorf(&out, "ERR unknown command '%s', with args beginning with: %s",
                                 "F\r\nOO", ""),
                 0);
    assert_bytes(LIT("-ERR a  b\r\n+x y\r\n"
                     "-ERR unknown command 'F  OO', with args beginning with: \r\n"));
}

Test(codec, errorf_formats_long_text)
{
    char big[3000];
    memset(big, 'z', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    cr_assert_eq(resp_add_errorf(&out, "ERR %s %d", big, 7), 0);
    cr_assert_eq(out.len, 1 + 4 + 2999 + 2 + 2);
    cr_assert(memcmp((char *)out.data + out.len - 4, " 7\r\n", 4) == 0);
}

Test(codec, integers_round_trip)
{
    static const long long values[] = {
        0, 1, -1, 9, 10, 99, 100, -100, 123456789012345LL, LLONG_MAX, LLONG_MIN, LLONG_MIN + 1};
    for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
        out.len = 0;
        cr_assert_eq(resp_add_int(&out, values[i]), 0);
        resp_reply r;
        size_t used;
        cr_assert_eq(resp_parse_reply(out.data, out.len, 1024, &r, &used), RESP_DONE);
        cr_assert_eq(used, out.len);
        cr_assert_eq(r.type, RESP_INTEGER);
        cr_assert_eq(r.integer, values[i], "%lld", values[i]);
    }
}

/* Every reply type out of the encoders and back through the reply parser,
   and at every prefix the parser asks for more instead of guessing. */
Test(codec, replies_round_trip)
{
    cr_assert_eq(resp_add_simple(&out, "PONG"), 0);
    cr_assert_eq(resp_add_error(&out, "WRONGTYPE nope"), 0);
    cr_assert_eq(resp_add_int(&out, 7), 0);
    cr_assert_eq(resp_add_bulk(&out, "v\r\n\0", 4), 0);
    cr_assert_eq(resp_add_nil(&out), 0);
    cr_assert_eq(resp_add_array(&out, 3), 0);
    cr_assert_eq(resp_add_nil_array(&out), 0);
    cr_assert_eq(resp_add_bulk(&out, "", 0), 0);

    const struct {
        enum resp_type type;
        long long integer;
        const char *str;
        size_t len;
    } want[] = {
        {RESP_SIMPLE, 0, "PONG", 4}, {RESP_ERR, 0, "WRONGTYPE nope", 14},
        {RESP_INTEGER, 7, NULL, 0},  {RESP_BULK, 4, "v\r\n\0", 4},
        {RESP_NIL, 0, NULL, 0},      {RESP_ARRAY, 3, NULL, 0},
        {RESP_NIL, 0, NULL, 0},      {RESP_BULK, 0, "", 0},
    };
    const char *buf = out.data;
    size_t off = 0;
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        resp_reply r;
        size_t used = 0;
        /* Find the element's length from the whole buffer, then check
           each shorter prefix of it is incomplete. */
        cr_assert_eq(resp_parse_reply(buf + off, out.len - off, 1024, &r, &used), RESP_DONE);
        for (size_t k = 0; k < used; k++) {
            size_t u;
            resp_reply partial;
            cr_assert_eq(resp_parse_reply(buf + off, k, 1024, &partial, &u), RESP_MORE,
                         "element %zu prefix %zu", i, k);
        }
        cr_assert_eq(r.type, want[i].type, "element %zu", i);
        if (want[i].type == RESP_INTEGER || want[i].type == RESP_ARRAY)
            cr_assert_eq(r.integer, want[i].integer);
        if (want[i].str) {
            cr_assert_eq(r.str.len, want[i].len);
            cr_assert(memcmp(r.str.data, want[i].str, want[i].len) == 0);
        }
        off += used;
    }
    cr_assert_eq(off, out.len);
}

Test(codec, malformed_replies)
{
    static const struct {
        const char *buf;
        size_t len;
    } bad[] = {
        {LIT("?\r\n")},        {LIT(":abc\r\n")},    {LIT(":\r\n")},     {LIT("$-2\r\n")},
        {LIT("*-2\r\n")},      {LIT("$3\r\nabcXY")}, {LIT("$2000\r\n")}, {LIT("+OK\rX")},
        {LIT("$01\r\na\r\n")}, {LIT("*1x\r\n")},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        resp_reply r;
        size_t used;
        /* "$2000" is over the max_bulk of 1024 given here. */
        cr_assert_eq(resp_parse_reply(bad[i].buf, bad[i].len, 1024, &r, &used), RESP_ERROR,
                     "case %zu", i);
    }
}

/* A client's command, encoded and parsed back by the server's parser. */
Test(codec, command_round_trip)
{
    kvs_slice argv[] = {kvs_slice_str("SET"), kvs_slice_of("k\0\r\n", 4), kvs_slice_of("", 0)};
    cr_assert_eq(resp_add_command(&out, 3, argv), 0);
    assert_bytes(LIT("*3\r\n$3\r\nSET\r\n$4\r\nk\0\r\n\r\n$0\r\n\r\n"));
    resp_parser p;
    cr_assert_eq(resp_parser_init(&p, NULL), 0);
    const char *want[] = {"SET", "k\0\r\n", ""};
    expect_command(&p, out.data, out.len, 3, want, (const size_t[]){3, 4, 0});
    resp_parser_free(&p);
}

/* Encoders append: a pipeline of many commands is one buffer. */
Test(codec, encoders_append)
{
    for (int i = 0; i < 1000; i++) {
        kvs_slice argv[] = {kvs_slice_str("GET"), kvs_slice_str("key")};
        cr_assert_eq(resp_add_command(&out, 2, argv), 0);
    }
    const char one[] = "*2\r\n$3\r\nGET\r\n$3\r\nkey\r\n";
    cr_assert_eq(out.len, 1000 * (sizeof(one) - 1));
    cr_assert(memcmp((char *)out.data + 999 * (sizeof(one) - 1), one, sizeof(one) - 1) == 0);
}
