/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The RESP request parser on multibulk commands: arguments, resuming after
 * partial input at every byte boundary, pipelining, binary data, large
 * bulks, and each limit with Redis's exact error text (including the cases
 * of Redis's tests/unit/protocol.tcl).
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#define SET_CMD "*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n"

Test(request, multibulk_command)
{
    resp_parser p;
    cr_assert_eq(resp_parser_init(&p, NULL), 0);
    const char *want[] = {"SET", "key", "value"};
    expect_command(&p, LIT(SET_CMD), 3, want, NULL);
    cr_assert_not(p.inline_cmd);
    /* The parser is ready for the next command with no reset call. */
    expect_command(&p, LIT("*1\r\n$4\r\nPING\r\n"), 1, (const char *[]){"PING"}, NULL);
    resp_parser_free(&p);
}

Test(request, empty_buffer_needs_more)
{
    resp_parser p;
    cr_assert_eq(resp_parser_init(&p, NULL), 0);
    size_t consumed = 99;
    cr_assert_eq(resp_parse(&p, "", 0, &consumed, NULL), RESP_MORE);
    cr_assert_eq(consumed, 0);
    resp_parser_free(&p);
}

/* Each command, fed as two reads split at every byte, and fed one byte at
   a time, parses exactly as when it arrives whole. */
Test(request, every_split_parses_the_same)
{
    static const struct {
        const char *buf;
        size_t len;
    } cases[] = {
        {LIT(SET_CMD)},
        {LIT("*2\r\n$3\r\nGET\r\n$0\r\n\r\n")},
        {LIT("*3\r\n$3\r\nSET\r\n$4\r\nb\r\n\0\r\n$6\r\n\n\r\0\r\nX\r\n")},
        {LIT("*1\r\n$4\r\nPING\r\n*2\r\n$4\r\nECHO\r\n$2\r\nhi\r\n")},
        {LIT("SET key value\r\n")},
        {LIT("SET \"a b\" 'c d' \"\\x41\\n\"\n")},
        {LIT("PING\r\n*1\r\n$4\r\nPING\r\n  \r\nGET x\n")},
        {LIT("*0\r\n*-1\r\n*1\r\n$1\r\nx\r\n")},
        {LIT("*1\r\n$3\r\nfoo\r\n*1\r\nbar\r\n")},
        {LIT("set \"\"\"test-key\"\"\" test-value\r\nping\r\n")},
    };
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        const char *buf = cases[c].buf;
        size_t len = cases[c].len;
        struct outcome whole[8], part[8];
        size_t nw = feed(NULL, buf, len, len, whole, 8);
        cr_assert_geq(nw, 1);

        size_t np = feed(NULL, buf, len, 1, part, 8);
        assert_same_outcomes(whole, nw, part, np, "byte by byte");

        /* Two reads, split at k: a parser that saw the first k bytes must
           finish the command correctly once it sees all of them. */
        for (size_t k = 0; k <= len; k++) {
            resp_parser p;
            cr_assert_eq(resp_parser_init(&p, NULL), 0);
            size_t consumed;
            int rc = resp_parse(&p, buf, k, &consumed, NULL);
            if (rc == RESP_MORE)
                rc = resp_parse(&p, buf, len, &consumed, NULL);
            struct outcome first;
            outcome_from(&first, &p, rc, rc == RESP_DONE ? consumed : 0);
            cr_assert_eq(first.status, whole[0].status, "case %zu split %zu status %d", c, k, rc);
            if (rc == RESP_DONE) {
                cr_assert_eq(first.consumed, whole[0].consumed, "case %zu split %zu", c, k);
                cr_assert_eq(first.args_len, whole[0].args_len, "case %zu split %zu", c, k);
                cr_assert(memcmp(first.args, whole[0].args, first.args_len) == 0,
                          "case %zu split %zu", c, k);
            } else {
                cr_assert_str_eq(first.error, whole[0].error, "case %zu split %zu", c, k);
            }
            resp_parser_free(&p);
        }
    }
}

Test(request, pipelined_commands)
{
    const char buf[] = "*1\r\n$4\r\nPING\r\n"
                       "*2\r\n$3\r\nGET\r\n$1\r\na\r\n"
                       "ECHO inline\r\n"
                       "*3\r\n$3\r\nSET\r\n$1\r\nb\r\n$2\r\nvv\r\n";
    resp_parser p;
    cr_assert_eq(resp_parser_init(&p, NULL), 0);
    size_t off = 0, consumed;
    cr_assert_eq(resp_parse(&p, buf + off, sizeof(buf) - 1 - off, &consumed, NULL), RESP_DONE);
    cr_assert_eq(p.argc, 1);
    off += consumed;
    cr_assert_eq(resp_parse(&p, buf + off, sizeof(buf) - 1 - off, &consumed, NULL), RESP_DONE);
    cr_assert_eq(p.argc, 2);
    cr_assert(p.argv[1].len == 1 && memcmp(p.argv[1].data, "a", 1) == 0);
    off += consumed;
    cr_assert_eq(resp_parse(&p, buf + off, sizeof(buf) - 1 - off, &consumed, NULL), RESP_DONE);
    cr_assert(p.inline_cmd);
    cr_assert_eq(p.argc, 2);
    off += consumed;
    cr_assert_eq(resp_parse(&p, buf + off, sizeof(buf) - 1 - off, &consumed, NULL), RESP_DONE);
    cr_assert_not(p.inline_cmd);
    cr_assert_eq(p.argc, 3);
    cr_assert(p.argv[2].len == 2 && memcmp(p.argv[2].data, "vv", 2) == 0);
    off += consumed;
    cr_assert_eq(off, sizeof(buf) - 1);
    cr_assert_eq(resp_parse(&p, buf + off, 0, &consumed, NULL), RESP_MORE);
    resp_parser_free(&p);
}

Test(request, binary_arguments)
{
    resp_parser p;
    cr_assert_eq(resp_parser_init(&p, NULL), 0);
    const char *want[] = {"SET", "k\r\n\0", "\0\r\n\r\n$1\r\nX"};
    size_t want_len[] = {3, 4, 10};
    expect_command(&p, LIT("*3\r\n$3\r\nSET\r\n$4\r\nk\r\n\0\r\n$10\r\n\0\r\n\r\n$1\r\nX\r\n"), 3,
                   want, want_len);
    resp_parser_free(&p);
}

/* The buffer may move between calls (a connection reallocates or compacts
   its input): the parser keeps offsets, not pointers. */
Test(request, buffer_may_move_between_calls)
{
    const char cmd[] = SET_CMD;
    size_t len = sizeof(cmd) - 1;
    resp_parser p;
    cr_assert_eq(resp_parser_init(&p, NULL), 0);
    char *a = malloc(len), *b = malloc(len);
    memcpy(a, cmd, len);
    size_t consumed;
    cr_assert_eq(resp_parse(&p, a, len - 3, &consumed, NULL), RESP_MORE);
    memcpy(b, cmd, len);
    memset(a, 'X', len);
    cr_assert_eq(resp_parse(&p, b, len, &consumed, NULL), RESP_DONE);
    cr_assert_eq(p.argv[2].data, b + len - 7);
    cr_assert(memcmp(p.argv[2].data, "value", 5) == 0);
    free(a);
    free(b);
    resp_parser_free(&p);
}

/* A 1 MiB value arriving in 4 KiB reads; the need hint says how long the
   buffer must get. */
Test(request, one_mebibyte_bulk)
{
    size_t vlen = 1u << 20;
    const char head[] = "*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n$1048576\r\n";
    size_t hlen = sizeof(head) - 1;
    size_t len = hlen + vlen + 2;
    char *buf = malloc(len);
    memcpy(buf, head, hlen);
    for (size_t i = 0; i < vlen; i++)
        buf[hlen + i] = (char)(i * 131 + 7);
    memcpy(buf + hlen + vlen, "\r\n", 2);

    resp_parser p;
    cr_assert_eq(resp_parser_init(&p, NULL), 0);
    size_t visible = 0, consumed = 0, need = 0;
    int rc = RESP_MORE;
    while (rc == RESP_MORE) {
        cr_assert_lt(visible, len, "parser wants more than the command");
        visible = visible + 4096 < len ? visible + 4096 : len;
        rc = resp_parse(&p, buf, visible, &consumed, &need);
        if (rc == RESP_MORE && visible > hlen)
            cr_assert_eq(need, len, "need %zu at %zu", need, visible);
    }
    cr_assert_eq(rc, RESP_DONE);
    cr_assert_eq(consumed, len);
    cr_assert_eq(p.argc, 3);
    cr_assert_eq(p.argv[2].len, vlen);
    cr_assert(memcmp(p.argv[2].data, buf + hlen, vlen) == 0);
    free(buf);
    resp_parser_free(&p);
}

Test(request, zero_and_negative_counts_are_ignored)
{
    static const struct {
        const char *buf;
        size_t len;
    } cases[] = {{LIT("*0\r\n")}, {LIT("*-1\r\n")}, {LIT("*-10\r\n")}};
    for (size_t c = 0; c < 3; c++) {
        resp_parser p;
        cr_assert_eq(resp_parser_init(&p, NULL), 0);
        size_t consumed;
        cr_assert_eq(resp_parse(&p, cases[c].buf, cases[c].len, &consumed, NULL), RESP_DONE);
        cr_assert_eq(p.argc, 0);
        cr_assert_eq(consumed, cases[c].len);
        resp_parser_free(&p);
    }
}

Test(request, invalid_multibulk_length)
{
    const char *text = "ERR Protocol error: invalid multibulk length";
    expect_error(NULL, LIT("*3000000000\r\n"), text);
    expect_error(NULL, LIT("*abc\r\n"), text);
    expect_error(NULL, LIT("*\r\n"), text);
    expect_error(NULL, LIT("*01\r\n"), text);
    expect_error(NULL, LIT("*+1\r\n"), text);
    expect_error(NULL, LIT("*1 \r\n"), text);
    expect_error(NULL, LIT("*-0\r\n"), text);
    expect_error(NULL, LIT("*9223372036854775808\r\n"), text);
    expect_error(NULL, LIT("*99999999999999999999999\r\n"), text);
    expect_error(NULL, LIT("*1\rX"), text);
    expect_error(&(resp_limits){.max_args = 2}, LIT("*3\r\n"), text);
}

Test(request, invalid_bulk_length)
{
    const char *text = "ERR Protocol error: invalid bulk length";
    expect_error(NULL, LIT("*1\r\n$-10\r\n"), text);
    expect_error(NULL, LIT("*1\r\n$-1\r\n"), text);
    expect_error(NULL, LIT("*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$blabla\r\n"), text);
    expect_error(NULL, LIT("*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$2000000000\r\n"), text);
    expect_error(NULL, LIT("*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$-10\r\n"), text);
    expect_error(NULL, LIT("*1\r\n$\r\n"), text);
    /* The bytes after a bulk must be its CRLF: the length was wrong. */
    expect_error(NULL, LIT("*1\r\n$3\r\nabcXY"), text);
    expect_error(NULL, LIT("*1\r\n$3\r\nabcd\r\n"), text);
    /* A configured maximum. */
    expect_error(&(resp_limits){.max_bulk = 10}, LIT("*1\r\n$11\r\n"), text);
    resp_parser p;
    cr_assert_eq(resp_parser_init(&p, &(resp_limits){.max_bulk = 10}), 0);
    expect_command(&p, LIT("*1\r\n$10\r\n0123456789\r\n"), 1, (const char *[]){"0123456789"}, NULL);
    resp_parser_free(&p);
}

Test(request, incomplete_negative_bulk_waits)
{
    resp_parser p;
    cr_assert_eq(resp_parser_init(&p, NULL), 0);
    size_t consumed;
    cr_assert_eq(resp_parse(&p, LIT("*1\r\n$-10"), &consumed, NULL), RESP_MORE);
    cr_assert_eq(resp_parse(&p, LIT("*1\r\n$-10\r"), &consumed, NULL), RESP_MORE);
    cr_assert_eq(resp_parse(&p, LIT("*1\r\n$-10\r\n"), &consumed, NULL), RESP_ERROR);
    cr_assert_str_eq(p.error, "ERR Protocol error: invalid bulk length");
    resp_parser_free(&p);
}

Test(request, expected_dollar)
{
    expect_error(NULL, LIT("*1\r\nfoo\r\n"), "ERR Protocol error: expected '$', got 'f'");
    expect_error(NULL, LIT("*3\r\n$3\r\nSET\r\n$1\r\nx\r\nfooz\r\n"),
                 "ERR Protocol error: expected '$', got 'f'");
    /* Known as soon as the byte arrives. */
    expect_error(NULL, LIT("*2\r\n:"), "ERR Protocol error: expected '$', got ':'");
    /* A CR or LF is shown as a space, as Redis's error replies do. */
    expect_error(NULL, LIT("*1\r\n\r\n"), "ERR Protocol error: expected '$', got ' '");
}

Test(request, line_limits)
{
    size_t max = RESP_DEFAULT_MAX_INLINE;
    char *buf = malloc(max + 16);

    /* Inline: max bytes without a newline still wait, one more fails. */
    memset(buf, 'a', max + 16);
    resp_parser p;
    cr_assert_eq(resp_parser_init(&p, NULL), 0);
    size_t consumed;
    cr_assert_eq(resp_parse(&p, buf, max, &consumed, NULL), RESP_MORE);
    cr_assert_eq(resp_parse(&p, buf, max + 1, &consumed, NULL), RESP_ERROR);
    cr_assert_str_eq(p.error, "ERR Protocol error: too big inline request");
    resp_parser_free(&p);
    /* A line of exactly max bytes before its newline is accepted. */
    buf[max] = '\n';
    cr_assert_eq(resp_parser_init(&p, NULL), 0);
    cr_assert_eq(resp_parse(&p, buf, max + 1, &consumed, NULL), RESP_DONE);
    cr_assert_eq(consumed, max + 1);
    cr_assert_eq(p.argc, 1);
    cr_assert_eq(p.argv[0].len, max);
    resp_parser_free(&p);

    /* The multibulk count line. */
    buf[0] = '*';
    memset(buf + 1, '1', max + 15);
    expect_error(NULL, buf, max + 1, "ERR Protocol error: too big mbulk count string");

    /* A bulk count line. */
    memcpy(buf, "*1\r\n$", 5);
    memset(buf + 5, '1', max + 11);
    expect_error(NULL, buf, max + 16, "ERR Protocol error: too big bulk count string");

    /* A configured limit applies the same way. */
    expect_error(&(resp_limits){.max_inline = 8}, LIT("GET 123456"),
                 "ERR Protocol error: too big inline request");
    expect_error(&(resp_limits){.max_inline = 8}, LIT("*1\r\n$12345678"),
                 "ERR Protocol error: too big bulk count string");
    free(buf);
}

/* "*20000000" must not make the parser allocate 20M argument slots (nor
   any declared count): slots grow by doubling as arguments arrive. The
   default max_args (1M) refuses that count outright, so this parser allows
   up to 2^30 arguments, as a server configured for more would. */
Test(request, huge_count_without_data_does_not_allocate)
{
    expect_error(NULL, LIT("*20000000\r\n"), "ERR Protocol error: invalid multibulk length");
    resp_parser p;
    cr_assert_eq(resp_parser_init(&p, &(resp_limits){.max_args = 1u << 30}), 0);
    size_t initial = p.argv_cap;
    cr_assert_leq(initial, 16);
    size_t consumed;
    cr_assert_eq(resp_parse(&p, LIT("*20000000\r\n"), &consumed, NULL), RESP_MORE);
    cr_assert_eq(p.argv_cap, initial);

    /* 100 arguments arrive: the slots double up to 128, no further. */
    size_t cap = 16 + 100 * 8;
    char *buf = malloc(cap);
    size_t len = (size_t)sprintf(buf, "*20000000\r\n");
    for (int i = 0; i < 100; i++)
        len += (size_t)sprintf(buf + len, "$1\r\n%c\r\n", 'a' + i % 26);
    cr_assert_eq(resp_parse(&p, buf, len, &consumed, NULL), RESP_MORE);
    cr_assert_geq(p.argv_cap, 100);
    cr_assert_leq(p.argv_cap, 128);
    free(buf);
    resp_parser_free(&p);
}

/* A parser that errored can be freed; one reused after an error starts
   from a clean state. */
Test(request, reusable_after_error)
{
    resp_parser p;
    cr_assert_eq(resp_parser_init(&p, NULL), 0);
    size_t consumed;
    cr_assert_eq(resp_parse(&p, LIT("*1\r\n$x\r\n"), &consumed, NULL), RESP_ERROR);
    expect_command(&p, LIT(SET_CMD), 3, (const char *[]){"SET", "key", "value"}, NULL);
    resp_parser_free(&p);
    resp_parser_free(&p); /* idempotent */
    resp_parser_free(NULL);
}
