/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * kvs-server against a real redis-server: the same commands go to both,
 * and the replies must be the same bytes, so that error texts, reply types
 * and edge cases (odd cursors, COUNT 0, option names with a NUL byte,
 * glob corners) are Redis's. Where the two may rightly differ in order
 * only (KEYS, whole SCAN passes, whose cursors are each server's own), the
 * sets of keys are compared instead. COMMAND INFO of every command kvs
 * has must give Redis's name, arity, flags and key positions. The expiry
 * commands are test_differential_expiry.c's.
 *
 * redis-server runs with no persistence (--save '' --appendonly no) on a
 * free port, one per test, beside a kvs-server of each registered engine.
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <unistd.h>

#include "differential.h"

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

ParameterizedTestParameters(differential, against_redis)
{
    H_ENGINE_PARAMS;
}

ParameterizedTest(struct ts_engine_param *engine, differential, against_redis, .timeout = 100)
{
    struct d_redis redis;
    d_redis_start(&redis);
    struct h_server h;
    h_start(&h, engine->name, NULL);
    int kfd = h_connect(&h), rfd = d_connect_port(redis.s.port);
    for (size_t i = 0; i < sizeof(script) / sizeof(script[0]); i++)
        d_run_one(kfd, rfd, &script[i]);

    /* COMMAND INFO of every command kvs lists. */
    d_compare_command_info(kfd, rfd);
    close(kfd);
    close(rfd);
    h_stop(&h);
    d_redis_stop(&redis);
}
