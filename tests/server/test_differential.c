/*
 * kvs-server against a real redis-server: the same commands go to both,
 * and the replies must be the same bytes, so that error texts, reply types
 * and edge cases (odd cursors, COUNT 0, option names with a NUL byte,
 * glob corners) are Redis's. Where the two may rightly differ in order
 * only (KEYS, whole SCAN passes, whose cursors are each server's own), the
 * sets of keys are compared instead. COMMAND INFO of every command kvs
 * has must give Redis's name, arity, flags and key positions. Replies that
 * depend on the moment (TTL, PTTL of relative times) are compared within a
 * tolerance, and a short time running out is waited for on both servers.
 *
 * redis-server runs with no persistence (--save '' --appendonly no) on a
 * free port, one per test, beside a kvs-server of each registered engine.
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
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
    NEAR_S,    /* integers within a second (TTL, EXPIRETIME of relative times) */
    NEAR_MS,   /* integers within NEAR_MS_TOLERANCE (PTTL...) */
    AWAIT_0,   /* sent again to both until both answer :0 (a short time ran out) */
};

/* Both servers get each command within a few ms of each other; this
   allows for a slow (sanitized, shared) machine. */
#define NEAR_MS_TOLERANCE 1500

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

/* Expiry: every option of SET, GETEX and the EXPIRE family, their
   errors in Redis's order, and times relative, absolute, past and
   overflowing. Absolute times far ahead (4102444800 is 2100-01-01) read
   back exactly; relative ones within a tolerance. */
static const struct dcmd expiry_script[] = {
    CMD(EXACT, S("FLUSHALL")),
    /* SET's options: which combine, which repeat. */
    CMD(EXACT, S("SET"), S("k"), S("v"), S("EX"), S("10"), S("EX"), S("20")),
    CMD(NEAR_S, S("TTL"), S("k")),
    CMD(EXACT, S("SET"), S("k"), S("v"), S("EX"), S("10"), S("PX"), S("100")),
    CMD(EXACT, S("SET"), S("k"), S("v"), S("PX"), S("100"), S("EX"), S("10")),
    CMD(EXACT, S("SET"), S("k"), S("v"), S("EXAT"), S("4102444800"), S("PXAT"), S("1")),
    CMD(EXACT, S("SET"), S("k"), S("v"), S("PXAT"), S("4102444800000"), S("EXAT"), S("1")),
    CMD(EXACT, S("SET"), S("k"), S("v"), S("EX"), S("10"), S("EXAT"), S("1")),
    CMD(EXACT, S("SET"), S("k"), S("v"), S("NX"), S("NX")),
    CMD(EXACT, S("SET"), S("k"), S("v"), S("XX"), S("XX")),
    CMD(EXACT, S("SET"), S("k"), S("v"), S("NX"), S("XX")),
    CMD(EXACT, S("SET"), S("k"), S("v"), S("XX"), S("NX")),
    CMD(EXACT, S("SET"), S("k"), S("v"), S("GET"), S("GET")),
    CMD(EXACT, S("SET"), S("k"), S("v"), S("KEEPTTL"), S("KEEPTTL")),
    CMD(EXACT, S("SET"), S("k"), S("v"), S("KEEPTTL"), S("EX"), S("10")),
    CMD(EXACT, S("SET"), S("k"), S("v"), S("EX"), S("10"), S("KEEPTTL")),
    CMD(EXACT, S("SET"), S("k"), S("v"), S("PXAT"), S("1"), S("KEEPTTL")),
    CMD(EXACT, S("SET"), S("k"), S("v"), S("PERSIST")),
    CMD(EXACT, S("SET"), S("k"), S("v"), S("EX")),
    CMD(EXACT, S("SET"), S("k"), S("v"), S("EX"), S("10"), S("EX")),
    CMD(EXACT, S("SET"), S("k"), S("v"), S("EX"), S("EX")),
    CMD(EXACT, S("SET"), S("k"), S("v"), S("foo")),
    CMD(EXACT, S("SET"), S("k"), S("v"), S("foo"), S("EX"), S("abc")),
    CMD(EXACT, S("SET"), S("k"), S("v"), S("EX"), S("abc"), S("foo")),
    CMD(EXACT, S("SET"), S("k"), S("v"), S("EX"), S("10"), S("foo")),
    CMD(EXACT, S("SET"), S("k"), S("v"), S("ex\0junk"), S("10"), S("nx\0"), S("get\0x")),
    CMD(EXACT, S("SET"), S("k"), S("v"), S("E")),
    CMD(EXACT, S("SET"), S("k"), S("v"), S("EXA"), S("1")),
    CMD(EXACT, S("SET"), S("k"), S("v"), S("EXATT"), S("1")),
    CMD(EXACT, S("SET"), S("k"), S("v"), S("")),
    /* Times: not integers, not positive, overflowing. */
    CMD(EXACT, S("SET"), S("k"), S("v"), S("EX"), S("0")),
    CMD(EXACT, S("SET"), S("k"), S("v"), S("EX"), S("-1")),
    CMD(EXACT, S("SET"), S("k"), S("v"), S("PX"), S("0")),
    CMD(EXACT, S("SET"), S("k"), S("v"), S("EXAT"), S("0")),
    CMD(EXACT, S("SET"), S("k"), S("v"), S("PXAT"), S("-5")),
    CMD(EXACT, S("SET"), S("k"), S("v"), S("EX"), S("abc")),
    CMD(EXACT, S("SET"), S("k"), S("v"), S("EX"), S("1.5")),
    CMD(EXACT, S("SET"), S("k"), S("v"), S("EX"), S("")),
    CMD(EXACT, S("SET"), S("k"), S("v"), S("EX"), S(" 10")),
    CMD(EXACT, S("SET"), S("k"), S("v"), S("EX"), S("+10")),
    CMD(EXACT, S("SET"), S("k"), S("v"), S("EX"), S("010")),
    CMD(EXACT, S("SET"), S("k"), S("v"), S("EX"), S("10\0")),
    CMD(EXACT, S("SET"), S("k"), S("v"), S("EX"), S("9223372036854775")),
    CMD(EXACT, S("SET"), S("k"), S("v"), S("EX"), S("9223372036854776")),
    CMD(EXACT, S("SET"), S("k"), S("v"), S("EX"), S("9223372036854775807")),
    CMD(EXACT, S("SET"), S("k"), S("v"), S("EX"), S("9223372036854775808")),
    CMD(EXACT, S("SET"), S("k"), S("v"), S("PX"), S("9223372036854775807")),
    CMD(EXACT, S("SET"), S("k"), S("v"), S("EXAT"), S("9223372036854776")),
    CMD(EXACT, S("SET"), S("k"), S("v"), S("EXAT"), S("9223372036854775")),
    CMD(EXACT, S("PEXPIRETIME"), S("k")),
    CMD(EXACT, S("EXPIRETIME"), S("k")),
    CMD(EXACT, S("SET"), S("k"), S("v"), S("PXAT"), S("9223372036854775807")),
    CMD(EXACT, S("PEXPIRETIME"), S("k")),
    CMD(EXACT, S("EXPIRETIME"), S("k")),
    CMD(NEAR_MS, S("PTTL"), S("k")),
    CMD(NEAR_S, S("TTL"), S("k")),
    /* Absolute times read back exactly. */
    CMD(EXACT, S("SET"), S("k"), S("v"), S("EXAT"), S("4102444800")),
    CMD(EXACT, S("EXPIRETIME"), S("k")),
    CMD(EXACT, S("PEXPIRETIME"), S("k")),
    CMD(EXACT, S("SET"), S("k"), S("v"), S("PXAT"), S("4102444800123")),
    CMD(EXACT, S("PEXPIRETIME"), S("k")),
    CMD(EXACT, S("EXPIRETIME"), S("k")),
    CMD(EXACT, S("SET"), S("k"), S("v"), S("PXAT"), S("4102444800500")),
    CMD(EXACT, S("EXPIRETIME"), S("k")),
    CMD(EXACT, S("SET"), S("k"), S("v"), S("PXAT"), S("4102444800499")),
    CMD(EXACT, S("EXPIRETIME"), S("k")),
    /* KEEPTTL keeps it, a write without it clears it. */
    CMD(EXACT, S("SET"), S("k"), S("w"), S("KEEPTTL"), S("GET")),
    CMD(EXACT, S("PEXPIRETIME"), S("k")),
    CMD(EXACT, S("SET"), S("k"), S("w"), S("XX"), S("KEEPTTL")),
    CMD(EXACT, S("PEXPIRETIME"), S("k")),
    CMD(EXACT, S("SET"), S("k"), S("v")),
    CMD(EXACT, S("TTL"), S("k")),
    CMD(EXACT, S("SET"), S("k"), S("v"), S("EXAT"), S("4102444800")),
    CMD(EXACT, S("MSET"), S("k"), S("v"), S("other"), S("o")),
    CMD(EXACT, S("EXPIRETIME"), S("k")),
    CMD(EXACT, S("SET"), S("k"), S("v"), S("EXAT"), S("4102444800")),
    CMD(EXACT, S("SET"), S("k"), S("v2"), S("GET")),
    CMD(EXACT, S("EXPIRETIME"), S("k")),
    CMD(EXACT, S("SET"), S("k"), S("v"), S("EXAT"), S("4102444800")),
    CMD(EXACT, S("SET"), S("k"), S("v"), S("NX"), S("PXAT"), S("1")),
    CMD(EXACT, S("EXPIRETIME"), S("k")),
    CMD(EXACT, S("SETEX"), S("k"), S("100"), S("v")),
    CMD(NEAR_S, S("TTL"), S("k")),
    CMD(EXACT, S("SET"), S("k"), S("v"), S("KEEPTTL")),
    CMD(NEAR_S, S("TTL"), S("k")),
    CMD(EXACT, S("SET"), S("nosuch"), S("v"), S("XX"), S("KEEPTTL")),
    CMD(EXACT, S("EXISTS"), S("nosuch")),
    CMD(EXACT, S("SET"), S("fresh"), S("v"), S("KEEPTTL")),
    CMD(EXACT, S("TTL"), S("fresh")),
    /* NX, XX and GET with times. */
    CMD(EXACT, S("DEL"), S("k")),
    CMD(EXACT, S("SET"), S("k"), S("v"), S("NX"), S("GET"), S("EX"), S("10")),
    CMD(EXACT, S("SET"), S("k"), S("v2"), S("NX"), S("GET"), S("EX"), S("10")),
    CMD(NEAR_S, S("TTL"), S("k")),
    CMD(EXACT, S("SET"), S("k"), S("v2"), S("XX"), S("GET"), S("PX"), S("100000")),
    CMD(NEAR_MS, S("PTTL"), S("k")),
    CMD(EXACT, S("SET"), S("none"), S("v2"), S("XX"), S("GET"), S("PX"), S("100000")),
    CMD(EXACT, S("SET"), S("none"), S("v2"), S("XX"), S("PX"), S("100000")),
    CMD(EXACT, S("SET"), S("k"), S("v3"), S("GET"), S("ex"), S("100"), S("nx")),
    /* A time already past: the key is gone (kvs removes it at once; Redis
       7.0 stores it expired, so DBSIZE may count it for a moment there). */
    CMD(EXACT, S("SET"), S("k"), S("v"), S("EXAT"), S("1")),
    CMD(EXACT, S("EXISTS"), S("k")),
    CMD(EXACT, S("SET"), S("k"), S("v")),
    CMD(EXACT, S("SET"), S("k"), S("w"), S("PXAT"), S("1"), S("GET")),
    CMD(EXACT, S("GET"), S("k")),
    CMD(EXACT, S("SET"), S("k"), S("w"), S("XX"), S("EXAT"), S("1")),
    CMD(EXACT, S("SET"), S("k"), S("w"), S("NX"), S("EXAT"), S("1")),
    CMD(EXACT, S("EXISTS"), S("k")),
    /* SETEX, PSETEX. */
    CMD(EXACT, S("SETEX"), S("k"), S("0"), S("v")),
    CMD(EXACT, S("SETEX"), S("k"), S("-1"), S("v")),
    CMD(EXACT, S("SETEX"), S("k"), S("abc"), S("v")),
    CMD(EXACT, S("SETEX"), S("k"), S("9223372036854775"), S("v")),
    CMD(EXACT, S("SETEX"), S("k"), S("10")),
    CMD(EXACT, S("SETEX"), S("k"), S("10"), S("v"), S("x")),
    CMD(EXACT, S("PSETEX"), S("k"), S("0"), S("v")),
    CMD(EXACT, S("PSETEX"), S("k"), S("9223372036854775807"), S("v")),
    CMD(EXACT, S("PSETEX"), S("k"), S("100000"), S("v")),
    CMD(NEAR_MS, S("PTTL"), S("k")),
    CMD(EXACT, S("SETEX"), S("k"), S("100"), S("v")),
    CMD(NEAR_S, S("TTL"), S("k")),
    CMD(EXACT, S("GET"), S("k")),
    /* GETEX: options, errors, and a missing key before its time. */
    CMD(EXACT, S("GETEX")),
    CMD(EXACT, S("GETEX"), S("k")),
    CMD(NEAR_S, S("TTL"), S("k")),
    CMD(EXACT, S("GETEX"), S("k"), S("PERSIST")),
    CMD(EXACT, S("TTL"), S("k")),
    CMD(EXACT, S("GETEX"), S("k"), S("PERSIST"), S("PERSIST")),
    CMD(EXACT, S("GETEX"), S("k"), S("KEEPTTL")),
    CMD(EXACT, S("GETEX"), S("k"), S("NX")),
    CMD(EXACT, S("GETEX"), S("k"), S("GET")),
    CMD(EXACT, S("GETEX"), S("k"), S("EX")),
    CMD(EXACT, S("GETEX"), S("k"), S("EX"), S("10"), S("PERSIST")),
    CMD(EXACT, S("GETEX"), S("k"), S("PERSIST"), S("EX"), S("10")),
    CMD(EXACT, S("GETEX"), S("k"), S("EX"), S("10"), S("PX"), S("10")),
    CMD(EXACT, S("GETEX"), S("k"), S("EX"), S("0")),
    CMD(EXACT, S("GETEX"), S("k"), S("EX"), S("abc")),
    CMD(EXACT, S("GETEX"), S("k"), S("PXAT"), S("0")),
    CMD(EXACT, S("GETEX"), S("k"), S("EX"), S("9223372036854775")),
    CMD(EXACT, S("GETEX"), S("k"), S("PX"), S("9223372036854775807")),
    CMD(EXACT, S("GETEX"), S("k"), S("EXAT"), S("9223372036854775807")),
    CMD(EXACT, S("TTL"), S("k")),
    CMD(EXACT, S("GETEX"), S("nosuch"), S("EX"), S("0")),
    CMD(EXACT, S("GETEX"), S("nosuch"), S("EX"), S("abc")),
    CMD(EXACT, S("GETEX"), S("nosuch"), S("PERSIST")),
    CMD(EXACT, S("GETEX"), S("nosuch"), S("foo")),
    CMD(EXACT, S("GETEX"), S("k"), S("EX"), S("10"), S("EX"), S("20")),
    CMD(NEAR_S, S("TTL"), S("k")),
    CMD(EXACT, S("GETEX"), S("k"), S("px"), S("50000")),
    CMD(NEAR_MS, S("PTTL"), S("k")),
    CMD(EXACT, S("GETEX"), S("k"), S("EXAT"), S("4102444800")),
    CMD(EXACT, S("EXPIRETIME"), S("k")),
    CMD(EXACT, S("GETEX"), S("k"), S("PXAT"), S("4102444800001")),
    CMD(EXACT, S("PEXPIRETIME"), S("k")),
    CMD(EXACT, S("GETEX"), S("k"), S("persist\0x")),
    CMD(EXACT, S("PEXPIRETIME"), S("k")),
    CMD(EXACT, S("GETEX"), S("k"), S("EXAT"), S("1")),
    CMD(EXACT, S("EXISTS"), S("k")),
    CMD(EXACT, S("GETEX"), S("k"), S("EXAT"), S("1")),
    /* The EXPIRE family: options, then the time, then the key. */
    CMD(EXACT, S("SET"), S("k"), S("v")),
    CMD(EXACT, S("EXPIRE"), S("k")),
    CMD(EXACT, S("EXPIRE"), S("k"), S("100"), S("NX"), S("XX")),
    CMD(EXACT, S("EXPIRE"), S("k"), S("100"), S("NX"), S("GT")),
    CMD(EXACT, S("EXPIRE"), S("k"), S("100"), S("LT"), S("NX")),
    CMD(EXACT, S("EXPIRE"), S("k"), S("100"), S("GT"), S("LT")),
    CMD(EXACT, S("EXPIRE"), S("k"), S("100"), S("XX"), S("GT"), S("LT")),
    CMD(EXACT, S("EXPIRE"), S("k"), S("100"), S("foo")),
    CMD(EXACT, S("EXPIRE"), S("k"), S("100"), S("NX"), S("foo")),
    CMD(EXACT, S("EXPIRE"), S("k"), S("100"), S("foo\0bar")),
    CMD(EXACT, S("EXPIRE"), S("k"), S("100"), S("a\r\nb")),
    CMD(EXACT, S("EXPIRE"), S("k"), S("100"), S("")),
    CMD(EXACT, S("EXPIRE"), S("k"), S("abc"), S("foo")),
    CMD(EXACT, S("EXPIRE"), S("k"), S("abc"), S("NX"), S("XX")),
    CMD(EXACT, S("EXPIRE"), S("nosuch"), S("abc")),
    CMD(EXACT, S("EXPIRE"), S("nosuch"), S("1.5")),
    CMD(EXACT, S("EXPIRE"), S("nosuch"), S("100")),
    CMD(EXACT, S("EXPIRE"), S("nosuch"), S("9223372036854775")),
    CMD(EXACT, S("EXPIRE"), S("k"), S("9223372036854775")),
    CMD(EXACT, S("EXPIRE"), S("k"), S("9223372036854776")),
    CMD(EXACT, S("EXPIRE"), S("k"), S("-9223372036854776")),
    CMD(EXACT, S("EXPIREAT"), S("k"), S("9223372036854775807")),
    CMD(EXACT, S("EXPIREAT"), S("k"), S("9223372036854775808")),
    CMD(EXACT, S("PEXPIRE"), S("k"), S("9223372036854775807")),
    CMD(EXACT, S("TTL"), S("k")),
    CMD(EXACT, S("PEXPIREAT"), S("k"), S("9223372036854775807")),
    CMD(EXACT, S("PEXPIRETIME"), S("k")),
    CMD(EXACT, S("EXPIRETIME"), S("k")),
    CMD(EXACT, S("PERSIST"), S("k")),
    /* NX, XX, GT, LT against no time and against one. */
    CMD(EXACT, S("EXPIRE"), S("k"), S("100"), S("XX")),
    CMD(EXACT, S("EXPIRE"), S("k"), S("100"), S("GT")),
    CMD(EXACT, S("EXPIRE"), S("k"), S("100"), S("XX"), S("GT")),
    CMD(EXACT, S("TTL"), S("k")),
    CMD(EXACT, S("EXPIRE"), S("k"), S("100"), S("LT")),
    CMD(NEAR_S, S("TTL"), S("k")),
    CMD(EXACT, S("EXPIRE"), S("k"), S("100"), S("NX")),
    CMD(EXACT, S("EXPIRE"), S("k"), S("200"), S("nx")),
    CMD(EXACT, S("EXPIRE"), S("k"), S("200"), S("lt")),
    CMD(EXACT, S("EXPIRE"), S("k"), S("50"), S("lt")),
    CMD(NEAR_S, S("TTL"), S("k")),
    CMD(EXACT, S("EXPIRE"), S("k"), S("40"), S("gt")),
    CMD(EXACT, S("EXPIRE"), S("k"), S("60"), S("gt"), S("xx")),
    CMD(NEAR_S, S("TTL"), S("k")),
    CMD(EXACT, S("PEXPIREAT"), S("k"), S("4102444800000"), S("GT")),
    CMD(EXACT, S("PEXPIREAT"), S("k"), S("4102444800000"), S("GT")),
    CMD(EXACT, S("PEXPIREAT"), S("k"), S("4102444800000"), S("LT")),
    CMD(EXACT, S("PEXPIREAT"), S("k"), S("4102444799999"), S("LT")),
    CMD(EXACT, S("PEXPIRETIME"), S("k")),
    CMD(EXACT, S("EXPIREAT"), S("k"), S("4102444801"), S("XX"), S("GT")),
    CMD(EXACT, S("PEXPIRETIME"), S("k")),
    CMD(EXACT, S("EXPIRE"), S("k"), S("-1"), S("GT")),
    CMD(EXACT, S("EXISTS"), S("k")),
    CMD(EXACT, S("EXPIRE"), S("k"), S("-1"), S("NX")),
    CMD(EXACT, S("PEXPIRE"), S("k"), S("-1"), S("LT")),
    CMD(EXACT, S("EXISTS"), S("k")),
    /* Past times remove the key at once, with or without a time before. */
    CMD(EXACT, S("SET"), S("k"), S("v")),
    CMD(EXACT, S("EXPIRE"), S("k"), S("0")),
    CMD(EXACT, S("EXISTS"), S("k")),
    CMD(EXACT, S("SET"), S("k"), S("v")),
    CMD(EXACT, S("PEXPIRE"), S("k"), S("-5")),
    CMD(EXACT, S("SET"), S("k"), S("v"), S("EX"), S("100")),
    CMD(EXACT, S("EXPIREAT"), S("k"), S("1")),
    CMD(EXACT, S("SET"), S("k"), S("v")),
    CMD(EXACT, S("PEXPIREAT"), S("k"), S("0")),
    CMD(EXACT, S("SET"), S("k"), S("v")),
    CMD(EXACT, S("EXPIRE"), S("k"), S("-9223372036854775")),
    CMD(EXACT, S("SET"), S("k"), S("v")),
    CMD(EXACT, S("PEXPIRE"), S("k"), S("-9223372036854775808")),
    CMD(EXACT, S("DBSIZE")),
    CMD(EXACT, S("EXPIRE"), S("k"), S("100")),
    CMD(EXACT, S("PEXPIRE"), S("k"), S("100000")),
    CMD(EXACT, S("EXPIREAT"), S("k"), S("4102444800")),
    CMD(EXACT, S("PEXPIREAT"), S("k"), S("4102444800000")),
    /* TTL and friends on missing keys and keys without times, PERSIST. */
    CMD(EXACT, S("TTL"), S("k")),
    CMD(EXACT, S("PTTL"), S("k")),
    CMD(EXACT, S("EXPIRETIME"), S("k")),
    CMD(EXACT, S("PEXPIRETIME"), S("k")),
    CMD(EXACT, S("SET"), S("k"), S("v")),
    CMD(EXACT, S("TTL"), S("k")),
    CMD(EXACT, S("PTTL"), S("k")),
    CMD(EXACT, S("EXPIRETIME"), S("k")),
    CMD(EXACT, S("PEXPIRETIME"), S("k")),
    CMD(EXACT, S("TTL")),
    CMD(EXACT, S("TTL"), S("a"), S("b")),
    CMD(EXACT, S("PTTL")),
    CMD(EXACT, S("EXPIRETIME")),
    CMD(EXACT, S("PEXPIRETIME"), S("a"), S("b")),
    CMD(EXACT, S("PERSIST")),
    CMD(EXACT, S("PERSIST"), S("k"), S("x")),
    CMD(EXACT, S("PERSIST"), S("k")),
    CMD(EXACT, S("PERSIST"), S("nosuch")),
    CMD(EXACT, S("EXPIRE"), S("k"), S("100")),
    CMD(EXACT, S("PERSIST"), S("k")),
    CMD(EXACT, S("PERSIST"), S("k")),
    CMD(EXACT, S("TTL"), S("k")),
    CMD(EXACT, S("GET"), S("k")),
    /* Short times run out: gone for every command, as never there. */
    CMD(EXACT, S("SET"), S("short"), S("v"), S("PX"), S("1")),
    CMD(EXACT, S("PSETEX"), S("short2"), S("1"), S("v")),
    CMD(EXACT, S("SET"), S("short3"), S("v")),
    CMD(EXACT, S("PEXPIRE"), S("short3"), S("1")),
    CMD(EXACT, S("SET"), S("short4"), S("v"), S("PX"), S("1")),
    CMD(EXACT, S("PSETEX"), S("short5"), S("1"), S("v")),
    CMD(AWAIT_0, S("EXISTS"), S("short4")),
    CMD(AWAIT_0, S("EXISTS"), S("short5")),
    /* Stored still (until the active expiry runs), but DEL finds nothing. */
    CMD(EXACT, S("DEL"), S("short4"), S("short4"), S("nosuch")),
    CMD(EXACT, S("UNLINK"), S("short5")),
    CMD(AWAIT_0, S("EXISTS"), S("short")),
    CMD(AWAIT_0, S("EXISTS"), S("short2")),
    CMD(AWAIT_0, S("EXISTS"), S("short3")),
    CMD(EXACT, S("GET"), S("short")),
    CMD(EXACT, S("TTL"), S("short")),
    CMD(EXACT, S("PTTL"), S("short2")),
    CMD(EXACT, S("STRLEN"), S("short3")),
    CMD(EXACT, S("TYPE"), S("short3")),
    CMD(EXACT, S("MGET"), S("short"), S("short2"), S("k")),
    CMD(EXACT, S("EXPIRE"), S("short"), S("100")),
    CMD(EXACT, S("PERSIST"), S("short2")),
    CMD(EXACT, S("GETEX"), S("short3"), S("PERSIST")),
    CMD(EXACT, S("SET"), S("short"), S("new"), S("NX"), S("GET")),
    CMD(EXACT, S("SET"), S("short2"), S("new"), S("XX")),
    CMD(EXACT, S("TTL"), S("short")),
    CMD(AS_SET, S("KEYS"), S("*")),
    CMD(SCAN_PASS, S("SCAN"), S("0")),
    CMD(EXACT, S("FLUSHALL")),
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
            char *reply = ask(fd, d->argc, d->argv, &len);
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
    if (d->mode == AWAIT_0) {
        await_zero(kfd, rfd, d);
        return;
    }
    size_t klen, rlen;
    char *k = ask(kfd, d->argc, d->argv, &klen);
    char *r = ask(rfd, d->argc, d->argv, &rlen);
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
    for (size_t i = 0; i < sizeof(expiry_script) / sizeof(expiry_script[0]); i++)
        run_one(kfd, rfd, &expiry_script[i]);

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

/* Random commands of the expiry family, well-formed and not, over a few
   keys, to both servers: every combination the grammar reaches must get
   the same reply (times that depend on the moment within a tolerance).
   Relative times are at least 10 s and absolute ones far ahead or long
   past, and GT/LT only come with absolute times, so that no reply depends
   on which millisecond a server read its clock in. */
#define RANDOM_COMMANDS 4000

static uint32_t next_rand(uint32_t *state)
{
    *state ^= *state << 13;
    *state ^= *state >> 17;
    *state ^= *state << 5;
    return *state;
}

#define PICK(state, arr) (arr)[next_rand(state) % (sizeof(arr) / sizeof((arr)[0]))]

static const char *const rnd_keys[] = {"a", "b", "c"};
static const char *const rnd_values[] = {"v1", "v2", ""};
static const char *const rnd_secs[] = {"10", "100", "86400", "4102444800"};
static const char *const rnd_ms[] = {"10000", "100000", "86400000"};
static const char *const rnd_at_secs[] = {"4102444800", "4102444900", "1", "1000000000"};
static const char *const rnd_at_ms[] = {"4102444800000", "4102444800001", "4102444899999", "1",
                                        "1000000000000"};
static const char *const rnd_bad[] = {"abc",
                                      "",
                                      "1.5",
                                      " 10",
                                      "+10",
                                      "010",
                                      "-1",
                                      "0",
                                      "-0",
                                      "9223372036854775807",
                                      "9223372036854775808",
                                      "-9223372036854775808",
                                      "-9223372036854775809",
                                      "9223372036854775",
                                      "-9223372036854775",
                                      "18446744073709551616",
                                      "10\0",
                                      "99999999999999999999999999999999999999"};

/* A time for the option or command named by unit: 's' relative seconds,
   'm' relative ms, 'S' absolute seconds, 'M' absolute ms; a bad one
   now and then. */
static kvs_slice rnd_time(uint32_t *state, char unit)
{
    const char *t;
    if (next_rand(state) % 6 == 0) {
        size_t i = next_rand(state) % (sizeof(rnd_bad) / sizeof(rnd_bad[0]));
        /* "10\0" holds a NUL: its length is 3. */
        return (kvs_slice){rnd_bad[i], strcmp(rnd_bad[i], "10") == 0 ? 3 : strlen(rnd_bad[i])};
    }
    switch (unit) {
    case 's':
        t = PICK(state, rnd_secs);
        break;
    case 'm':
        t = PICK(state, rnd_ms);
        break;
    case 'S':
        t = PICK(state, rnd_at_secs);
        break;
    default:
        t = PICK(state, rnd_at_ms);
        break;
    }
    return kvs_slice_str(t);
}

static void add_arg(struct dcmd *d, kvs_slice s)
{
    if (d->argc < sizeof(d->argv) / sizeof(d->argv[0]))
        d->argv[d->argc++] = s;
}

static void add_str(struct dcmd *d, const char *s)
{
    add_arg(d, kvs_slice_str(s));
}

/* SET's and GETEX's options: n tokens, valid or not. */
static void rnd_string_options(uint32_t *state, struct dcmd *d, int n)
{
    static const char *const words[] = {"NX", "XX",   "GET",  "KEEPTTL", "PERSIST", "EX",
                                        "PX", "EXAT", "PXAT", "ex",      "foo"};
    static const char units[] = {0, 0, 0, 0, 0, 's', 'm', 'S', 'M', 's', 0};
    for (int i = 0; i < n; i++) {
        size_t w = next_rand(state) % (sizeof(words) / sizeof(words[0]));
        add_str(d, words[w]);
        if (units[w] && next_rand(state) % 10)
            add_arg(d, rnd_time(state, units[w]));
    }
}

static struct dcmd rnd_command(uint32_t *state)
{
    struct dcmd d = {.mode = EXACT};
    const char *key = PICK(state, rnd_keys);
    switch (next_rand(state) % 16) {
    case 0:
    case 1:
        add_str(&d, "SET");
        add_str(&d, key);
        add_str(&d, PICK(state, rnd_values));
        rnd_string_options(state, &d, (int)(next_rand(state) % 4));
        break;
    case 2:
        add_str(&d, next_rand(state) % 2 ? "SETEX" : "PSETEX");
        add_str(&d, key);
        add_arg(&d, rnd_time(state, d.argv[0].len == 5 ? 's' : 'm'));
        add_str(&d, PICK(state, rnd_values));
        break;
    case 3:
    case 4:
        add_str(&d, "GETEX");
        add_str(&d, key);
        rnd_string_options(state, &d, (int)(next_rand(state) % 3));
        break;
    case 5:
    case 6: {
        /* Relative: no GT/LT (their answer would depend on the clock). */
        bool ms = next_rand(state) % 2;
        add_str(&d, ms ? "PEXPIRE" : "EXPIRE");
        add_str(&d, key);
        add_arg(&d, rnd_time(state, ms ? 'm' : 's'));
        static const char *const opts[] = {"NX", "XX", "nx", "FOO"};
        for (int n = (int)(next_rand(state) % 3); n > 0; n--)
            add_str(&d, PICK(state, opts));
        break;
    }
    case 7:
    case 8: {
        bool ms = next_rand(state) % 2;
        add_str(&d, ms ? "PEXPIREAT" : "EXPIREAT");
        add_str(&d, key);
        add_arg(&d, rnd_time(state, ms ? 'M' : 'S'));
        static const char *const opts[] = {"NX", "XX", "GT", "LT", "gt", "BAR"};
        for (int n = (int)(next_rand(state) % 3); n > 0; n--)
            add_str(&d, PICK(state, opts));
        break;
    }
    case 9: {
        static const char *const names[] = {"TTL", "PTTL", "EXPIRETIME", "PEXPIRETIME"};
        const char *name = PICK(state, names);
        d.mode = name[0] == 'P' ? NEAR_MS : NEAR_S;
        add_str(&d, name);
        add_str(&d, key);
        break;
    }
    case 10:
        add_str(&d, "PERSIST");
        add_str(&d, key);
        break;
    case 11:
    case 12:
        add_str(&d, "GET");
        add_str(&d, key);
        break;
    case 13:
        add_str(&d, "EXISTS");
        add_str(&d, key);
        break;
    case 14:
        add_str(&d, "DEL");
        add_str(&d, key);
        break;
    default:
        add_str(&d, "MSET");
        add_str(&d, key);
        add_str(&d, PICK(state, rnd_values));
        break;
    }
    return d;
}

ParameterizedTestParameters(differential, random_expiry_commands)
{
    H_ENGINE_PARAMS;
}

ParameterizedTest(struct ts_engine_param *engine, differential, random_expiry_commands,
                  .timeout = 100)
{
    struct redis redis;
    redis_start(&redis);
    struct h_server h;
    h_start(&h, engine->name, NULL);
    int kfd = h_connect(&h), rfd = connect_port(redis.s.port);
    const char *seed_text = getenv("KVS_TEST_SEED");
    uint32_t state = seed_text ? (uint32_t)strtoul(seed_text, NULL, 0) : 0x9e3779b9u;
    if (state == 0)
        state = 1;
    printf("random_expiry_commands: seed %#x (KVS_TEST_SEED)\n", (unsigned)state);
    for (int i = 0; i < RANDOM_COMMANDS; i++) {
        struct dcmd d = rnd_command(&state);
        run_one(kfd, rfd, &d);
    }
    close(kfd);
    close(rfd);
    h_stop(&h);
    redis_stop(&redis);
}
