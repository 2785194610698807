/*
 * Inline commands, split as Redis's sdssplitargs() splits them: blanks,
 * double quotes with escapes, single quotes, unbalanced quotes, and the
 * scratch buffer that holds unescaped words.
 */
#include <criterion/criterion.h>
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
   buffer, which is reused from line to line rather than reallocated. */
Test(inline_cmd, scratch_buffer_is_reused)
{
    const char line[] = "SET \"k 1\" 'v 2'\n";
    expect_command(&parser, LIT(line), 3, (const char *[]){"SET", "k 1", "v 2"}, NULL);
    cr_assert_eq(parser.argv[0].data, line);
    cr_assert_neq(parser.argv[1].data, line + 5);
    char *scratch = parser.scratch;
    size_t cap = parser.scratch_cap;
    cr_assert_not_null(scratch);
    cr_assert_leq(cap, sizeof(line));
    expect_command(&parser, LIT("GET \"k\"\n"), 2, (const char *[]){"GET", "k"}, NULL);
    cr_assert_eq(parser.scratch, scratch);
    cr_assert_eq(parser.scratch_cap, cap);
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
