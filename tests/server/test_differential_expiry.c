/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The expiry commands against a real redis-server, as test_differential.c
 * does for the rest: SET's options, SETEX, PSETEX, GETEX, the EXPIRE
 * family, TTL and friends, PERSIST, every option combination and error in
 * Redis's order, and 4000 random commands of the family per engine.
 * Replies that depend on the moment (TTL, PTTL of relative times) are
 * compared within a tolerance, and a short time running out is waited for
 * on both servers.
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "differential.h"

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

ParameterizedTestParameters(differential_expiry, against_redis)
{
    H_ENGINE_PARAMS;
}

ParameterizedTest(struct ts_engine_param *engine, differential_expiry, against_redis,
                  .timeout = 100)
{
    struct d_redis redis;
    d_redis_start(&redis);
    struct h_server h;
    h_start(&h, engine->name, NULL);
    int kfd = h_connect(&h), rfd = d_connect_port(redis.s.port);
    for (size_t i = 0; i < sizeof(expiry_script) / sizeof(expiry_script[0]); i++)
        d_run_one(kfd, rfd, &expiry_script[i]);
    close(kfd);
    close(rfd);
    h_stop(&h);
    d_redis_stop(&redis);
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

ParameterizedTestParameters(differential_expiry, random_commands)
{
    H_ENGINE_PARAMS;
}

ParameterizedTest(struct ts_engine_param *engine, differential_expiry, random_commands,
                  .timeout = 100)
{
    struct d_redis redis;
    d_redis_start(&redis);
    struct h_server h;
    h_start(&h, engine->name, NULL);
    int kfd = h_connect(&h), rfd = d_connect_port(redis.s.port);
    const char *seed_text = getenv("KVS_TEST_SEED");
    uint32_t state = seed_text ? (uint32_t)strtoul(seed_text, NULL, 0) : 0x9e3779b9u;
    if (state == 0)
        state = 1;
    printf("random expiry commands: seed %#x (KVS_TEST_SEED)\n", (unsigned)state);
    for (int i = 0; i < RANDOM_COMMANDS; i++) {
        struct dcmd d = rnd_command(&state);
        d_run_one(kfd, rfd, &d);
    }
    close(kfd);
    close(rfd);
    h_stop(&h);
    d_redis_stop(&redis);
}
