/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Inline commands, split as Redis's sdssplitargs() splits them: blanks,
 * double quotes with escapes, single quotes, unbalanced quotes, and the
 * scratch buffer that holds unescaped words until the caller releases
 * them (resp.h).
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

static resp_parser parser;

static void setup(void)
{
    cr_assert_eq(resp_parser_init(&parser, NULL), 0);
}

static void teardown(void)
{
    resp_parser_free(&parser);
}

TestSuite(inline_cmd, .init = setup, .fini = teardown);

Test(inline_cmd, words_and_line_endings)
{
    expect_command(&parser, LIT("PING\r\n"), 1, (const char *[]){"PING"}, NULL);
    cr_assert(parser.inline_cmd);
    expect_command(&parser, LIT("PING\n"), 1, (const char *[]){"PING"}, NULL);
    expect_command(&parser, LIT("  SET \t key   value  \r\n"), 3,
                   (const char *[]){"SET", "key", "value"}, NULL);
    /* A CR inside the line separates words, like a blank. */
    expect_command(&parser, LIT("GET a\rb\r\n"), 3, (const char *[]){"GET", "a", "b"}, NULL);
    /* \v and \f are skipped between words but do not end one. */
    expect_command(&parser, LIT("\v\fGET a\vb\n"), 2, (const char *[]){"GET", "a\vb"}, NULL);
}

Test(inline_cmd, empty_lines_are_ignored)
{
    size_t consumed;
    cr_assert_eq(resp_parse(&parser, LIT("\r\n"), &consumed, NULL), RESP_DONE);
    cr_assert_eq(parser.argc, 0);
    cr_assert_eq(consumed, 2);
    cr_assert_eq(resp_parse(&parser, LIT("\n"), &consumed, NULL), RESP_DONE);
    cr_assert_eq(parser.argc, 0);
    cr_assert_eq(resp_parse(&parser, LIT(" \t \r\n"), &consumed, NULL), RESP_DONE);
    cr_assert_eq(parser.argc, 0);
    cr_assert_eq(consumed, 5);
}

Test(inline_cmd, incomplete_line_waits)
{
    size_t consumed;
    cr_assert_eq(resp_parse(&parser, LIT("SET a b"), &consumed, NULL), RESP_MORE);
    cr_assert_eq(resp_parse(&parser, LIT("SET a b\r"), &consumed, NULL), RESP_MORE);
    expect_command(&parser, LIT("SET a b\r\n"), 3, (const char *[]){"SET", "a", "b"}, NULL);
}

Test(inline_cmd, double_quotes)
{
    expect_command(&parser, LIT("SET \"hello world\" \"\"\r\n"), 3,
                   (const char *[]){"SET", "hello world", ""}, NULL);
    const char *want[] = {"\x41\x42\xff", "\n\r\t\b\aq\\\"", "xZZ"};
    size_t want_len[] = {3, 8, 3};
    expect_command(&parser, LIT("\"\\x41\\x42\\xfF\" \"\\n\\r\\t\\b\\a\\q\\\\\\\"\" \"\\xZZ\"\n"),
                   3, want, want_len);
    /* \x00 makes a NUL inside an argument. */
    expect_command(&parser, LIT("SET k \"a\\x00b\"\n"), 3, (const char *[]){"SET", "k", "a\0b"},
                   (const size_t[]){3, 1, 3});
    /* A quote may open in the middle of a word. */
    expect_command(&parser, LIT("foo\"bar baz\" qux\n"), 2, (const char *[]){"foobar baz", "qux"},
                   NULL);
}

Test(inline_cmd, single_quotes)
{
    expect_command(&parser, LIT("SET 'a b' 'it\\'s' '\\n\\x41'\n"), 4,
                   (const char *[]){"SET", "a b", "it's", "\\n\\x41"}, NULL);
    expect_command(&parser, LIT("'' x\n"), 2, (const char *[]){"", "x"}, NULL);
}

Test(inline_cmd, unbalanced_quotes)
{
    const char *text = "ERR Protocol error: unbalanced quotes in request";
    expect_error(NULL, LIT("SET \"abc\r\n"), text);
    expect_error(NULL, LIT("SET 'abc\r\n"), text);
    expect_error(NULL, LIT("SET \"abc\\\"\r\n"), text);
    /* A closing quote must be followed by a blank or the end. */
    expect_error(NULL, LIT("SET \"a\"b\r\n"), text);
    expect_error(NULL, LIT("SET 'a'\"b\"\r\n"), text);
    /* From Redis's protocol.tcl. */
    expect_error(NULL, LIT("set \"\"\"test-key\"\"\" test-value\r\n"), text);
}

/* Redis sees the line as a C string: a NUL ends it. */
Test(inline_cmd, nul_ends_the_line)
{
    size_t consumed;
    cr_assert_eq(resp_parse(&parser, LIT("SET a\0b c\r\nPING\r\n"), &consumed, NULL), RESP_DONE);
    cr_assert_eq(consumed, 11);
    cr_assert_eq(parser.argc, 2);
    cr_assert(parser.argv[1].len == 1 && memcmp(parser.argv[1].data, "a", 1) == 0);
    expect_error(NULL, LIT("SET \"a\0\"\r\n"), "ERR Protocol error: unbalanced quotes in request");
}

/* Unquoted words point into the input; quoted ones into the scratch
   buffer, which is reused once released rather than reallocated. */
Test(inline_cmd, scratch_buffer_is_reused)
{
    const char line[] = "SET \"k 1\" 'v 2'\n";
    expect_command(&parser, LIT(line), 3, (const char *[]){"SET", "k 1", "v 2"}, NULL);
    cr_assert_eq(parser.argv[0].data, line);
    cr_assert_neq(parser.argv[1].data, line + 5);
    char *scratch = parser.scratch;
    size_t cap = parser.scratch_cap;
    cr_assert_not_null(scratch);
    cr_assert_eq(parser.argv[1].data, scratch);
    expect_command(&parser, LIT("GET \"k\"\n"), 2, (const char *[]){"GET", "k"}, NULL);
    cr_assert_eq(parser.scratch, scratch);
    cr_assert_eq(parser.scratch_cap, cap);
    cr_assert_eq(parser.argv[1].data, scratch, "released room is reused from the start");
}

#define MAX_HELD 64

/* Parse the commands of in one after the other without releasing, as a
   connection that queues writes does, keeping each command's slices. */
static size_t parse_all(const char *in, size_t len, kvs_slice held[][3], size_t max)
{
    size_t n = 0, off = 0;
    while (off < len) {
        size_t consumed;
        int rc = resp_parse(&parser, in + off, len - off, &consumed, NULL);
        cr_assert_eq(rc, RESP_DONE, "command %zu: rc %d", n, rc);
        cr_assert_eq(parser.argc, 3);
        cr_assert_lt(n, max);
        memcpy(held[n++], parser.argv, 3 * sizeof(kvs_slice));
        off += consumed;
    }
    return n;
}

static void expect_word(kvs_slice got, const char *want, const char *what)
{
    cr_expect(got.len == strlen(want) && memcmp(got.data, want, got.len) == 0,
              "%s: \"%.*s\", want \"%s\"", what, (int)got.len, (const char *)got.data, want);
}

/* The audit's pipelines: the words of an earlier command are unchanged
   after later lines are parsed, also a longer one, until released. */
Test(inline_cmd, earlier_words_survive_later_lines)
{
    static const char in[] = "SET ka \"hello world\"\r\n"
                             "SET kb \"xy\"\r\n"
                             "SET \"key one\" v1\r\n"
                             "SET \"zz\" v2\r\n"
                             "SET kc 'short'\r\n"
                             "SET kd \"a line longer than all the lines before it together, "
                             "so that a scratch sized to each line would have to grow\"\r\n";
    kvs_slice held[MAX_HELD][3];
    cr_assert_eq(parse_all(in, sizeof(in) - 1, held, MAX_HELD), 6);
    expect_word(held[0][1], "ka", "SET ka key");
    expect_word(held[0][2], "hello world", "SET ka value");
    expect_word(held[1][2], "xy", "SET kb value");
    expect_word(held[2][1], "key one", "SET \"key one\" key");
    expect_word(held[2][2], "v1", "SET \"key one\" value");
    expect_word(held[3][1], "zz", "SET zz key");
    expect_word(held[4][2], "short", "SET kc value");
    expect_word(held[5][2],
                "a line longer than all the lines before it together, so that a scratch "
                "sized to each line would have to grow",
                "SET kd value");
}

/* Lines whose words do not fit beside the held ones wait (RESP_FULL,
   nothing consumed, the held words untouched) until released; a protocol
   error drops its own words only. */
Test(inline_cmd, full_scratch_waits_for_release)
{
    char line[128];
    char words[MAX_HELD][32];
    kvs_slice held[MAX_HELD];
    size_t n = 0, consumed;
    int rc;
    cr_assert_eq(resp_parse(&parser, LIT("SET k \"kept\"\r\n"), &consumed, NULL), RESP_DONE);
    kvs_slice kept = parser.argv[2];
    cr_assert_eq(resp_parse(&parser, LIT("SET \"a\" 'b\r\n"), &consumed, NULL), RESP_ERROR);
    cr_assert_eq(resp_parse(&parser, LIT("SET k \"next\"\r\n"), &consumed, NULL), RESP_DONE);
    expect_word(kept, "kept", "word held across an error");
    expect_word(parser.argv[2], "next", "word after an error");
    resp_parser_release(&parser);

    for (;;) {
        cr_assert_lt(n, MAX_HELD, "the scratch never filled");
        snprintf(words[n], sizeof(words[n]), "value number %02zu, quoted", n);
        int len = snprintf(line, sizeof(line), "SET k \"%s\"\r\n", words[n]);
        rc = resp_parse(&parser, line, (size_t)len, &consumed, NULL);
        if (rc != RESP_DONE)
            break;
        held[n++] = parser.argv[2];
        memset(line, '#', sizeof(line)); /* the words are not in the input */
    }
    cr_assert_eq(rc, RESP_FULL);
    cr_assert_eq(consumed, 0);
    cr_assert_eq(parser.argc, 0);
    cr_assert_gt(n, 1);
    /* Again without a release: still full. */
    int len = snprintf(line, sizeof(line), "SET k \"%s\"\r\n", words[n]);
    cr_assert_eq(resp_parse(&parser, line, (size_t)len, &consumed, NULL), RESP_FULL);
    for (size_t i = 0; i < n; i++)
        expect_word(held[i], words[i], "held word");
    resp_parser_release(&parser);
    cr_assert_eq(resp_parse(&parser, line, (size_t)len, &consumed, NULL), RESP_DONE);
    cr_assert_eq(consumed, (size_t)len);
    expect_word(parser.argv[2], words[n], "word after the release");

    /* A line longer than the scratch while it holds words waits; once
       released, the scratch grows for it. */
    size_t big_len = 3 * parser.scratch_cap;
    char *big = malloc(big_len + 16);
    cr_assert_not_null(big);
    memcpy(big, "GET \"", 5);
    memset(big + 5, 'x', big_len);
    memcpy(big + 5 + big_len, "\"\r\n", 3);
    cr_assert_eq(resp_parse(&parser, big, big_len + 8, &consumed, NULL), RESP_FULL);
    cr_assert_eq(parser.argc, 0);
    cr_assert_eq(consumed, 0);
    resp_parser_release(&parser);
    cr_assert_eq(resp_parse(&parser, big, big_len + 8, &consumed, NULL), RESP_DONE);
    cr_assert_eq(parser.argv[1].len, big_len);
    cr_assert_eq(consumed, big_len + 8);
    free(big);
}

Test(inline_cmd, many_words_grow_the_argument_array)
{
    char line[2100];
    size_t len = 0;
    for (int i = 0; i < 1000; i++) {
        line[len++] = (char)('a' + i % 26);
        line[len++] = ' ';
    }
    line[len++] = '\n';
    size_t consumed;
    cr_assert_eq(resp_parse(&parser, line, len, &consumed, NULL), RESP_DONE);
    cr_assert_eq(parser.argc, 1000);
    cr_assert_eq(parser.argv[999].len, 1);
    cr_assert_eq(*(const char *)parser.argv[999].data, 'a' + 999 % 26);

    expect_error(&(resp_limits){.max_args = 3}, LIT("a b c d\n"),
                 "ERR Protocol error: invalid multibulk length");
}
