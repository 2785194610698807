/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The string commands, transactions and RENAME/COPY of issue 17 against a
 * real redis-server, as test_differential.c does for the rest: a script of
 * every error in Redis's order and the edge cases of each command, then
 * random commands of the family (MULTI/EXEC blocks included) over a few
 * keys, every reply compared byte for byte, on every engine.
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "differential.h"

static const struct dcmd strings_script[] = {
    CMD(EXACT, S("FLUSHALL")),
    /* APPEND, STRLEN, GETRANGE/SUBSTR, SETRANGE */
    CMD(EXACT, S("APPEND"), S("s"), S("hello")),
    CMD(EXACT, S("APPEND"), S("s"), S(" world")),
    CMD(EXACT, S("APPEND"), S("s"), S("")),
    CMD(EXACT, S("GETRANGE"), S("s"), S("0"), S("4")),
    CMD(EXACT, S("GETRANGE"), S("s"), S("-5"), S("-1")),
    CMD(EXACT, S("GETRANGE"), S("s"), S("-1"), S("-5")),
    CMD(EXACT, S("GETRANGE"), S("s"), S("5"), S("1")),
    CMD(EXACT, S("GETRANGE"), S("s"), S("0"), S("-100")),
    CMD(EXACT, S("GETRANGE"), S("s"), S("-100"), S("100")),
    CMD(EXACT, S("GETRANGE"), S("s"), S("0"), S("9223372036854775807")),
    CMD(EXACT, S("GETRANGE"), S("s"), S("x"), S("1")),
    CMD(EXACT, S("GETRANGE"), S("nokey"), S("0"), S("1")),
    CMD(EXACT, S("SUBSTR"), S("s"), S("1"), S("3")),
    CMD(EXACT, S("SETRANGE"), S("s"), S("6"), S("WORLD")),
    CMD(EXACT, S("SETRANGE"), S("s"), S("20"), S("!")),
    CMD(EXACT, S("GET"), S("s")),
    CMD(EXACT, S("SETRANGE"), S("s"), S("-1"), S("x")),
    CMD(EXACT, S("SETRANGE"), S("s"), S("536870911"), S("xx")),
    CMD(EXACT, S("SETRANGE"), S("s"), S("x"), S("x")),
    CMD(EXACT, S("SETRANGE"), S("new"), S("3"), S("")),
    CMD(EXACT, S("EXISTS"), S("new")),
    CMD(EXACT, S("SETRANGE"), S("new"), S("3"), S("abc")),
    CMD(EXACT, S("GET"), S("new")),
    CMD(EXACT, S("STRLEN"), S("new")),
    /* INCR family */
    CMD(EXACT, S("INCR"), S("n")),
    CMD(EXACT, S("INCRBY"), S("n"), S("41")),
    CMD(EXACT, S("DECR"), S("n")),
    CMD(EXACT, S("DECRBY"), S("n"), S("-10")),
    CMD(EXACT, S("INCRBY"), S("n"), S("abc")),
    CMD(EXACT, S("INCRBY"), S("n"), S(" 1")),
    CMD(EXACT, S("DECRBY"), S("n"), S("-9223372036854775808")),
    CMD(EXACT, S("SET"), S("n"), S("9223372036854775807")),
    CMD(EXACT, S("INCR"), S("n")),
    CMD(EXACT, S("SET"), S("n"), S("-9223372036854775808")),
    CMD(EXACT, S("DECR"), S("n")),
    CMD(EXACT, S("SET"), S("n"), S("012")),
    CMD(EXACT, S("INCR"), S("n")),
    CMD(EXACT, S("SET"), S("n"), S("1 ")),
    CMD(EXACT, S("INCR"), S("n")),
    CMD(EXACT, S("INCR"), S("s")),
    CMD(EXACT, S("SET"), S("f"), S("10.5")),
    CMD(EXACT, S("INCRBYFLOAT"), S("f"), S("0.1")),
    CMD(EXACT, S("INCRBYFLOAT"), S("f"), S("-5.6")),
    CMD(EXACT, S("INCRBYFLOAT"), S("f"), S("5.0e3")),
    CMD(EXACT, S("INCRBYFLOAT"), S("f"), S("abc")),
    CMD(EXACT, S("INCRBYFLOAT"), S("f"), S("inf")),
    CMD(EXACT, S("INCRBYFLOAT"), S("f"), S("1e400")),
    CMD(EXACT, S("INCRBYFLOAT"), S("nf"), S("3")),
    CMD(EXACT, S("INCRBYFLOAT"), S("nf"), S("-3")),
    CMD(EXACT, S("INCRBYFLOAT"), S("s"), S("1")),
    CMD(EXACT, S("SET"), S("e"), S("5"), S("EX"), S("100")),
    CMD(EXACT, S("INCR"), S("e")),
    CMD(NEAR_S, S("TTL"), S("e")),
    /* GETSET, GETDEL, SETNX, MSETNX */
    CMD(EXACT, S("GETSET"), S("g"), S("1")),
    CMD(EXACT, S("GETSET"), S("g"), S("2")),
    CMD(EXACT, S("GETSET"), S("e"), S("x")),
    CMD(EXACT, S("TTL"), S("e")),
    CMD(EXACT, S("GETDEL"), S("g")),
    CMD(EXACT, S("GETDEL"), S("g")),
    CMD(EXACT, S("SETNX"), S("x"), S("1")),
    CMD(EXACT, S("SETNX"), S("x"), S("2")),
    CMD(EXACT, S("MSETNX"), S("m1"), S("a"), S("m2"), S("b")),
    CMD(EXACT, S("MSETNX"), S("m2"), S("c"), S("m3"), S("d")),
    CMD(EXACT, S("MSETNX"), S("m3"), S("c"), S("m3"), S("d")),
    CMD(EXACT, S("MGET"), S("m1"), S("m2"), S("m3")),
    CMD(EXACT, S("MSETNX"), S("m4"), S("a"), S("m5")),
    /* LCS */
    CMD(EXACT, S("MSET"), S("l1"), S("ohmytext"), S("l2"), S("mynewtext")),
    CMD(EXACT, S("LCS"), S("l1"), S("l2")),
    CMD(EXACT, S("LCS"), S("l1"), S("l2"), S("LEN")),
    CMD(EXACT, S("LCS"), S("l1"), S("l2"), S("IDX")),
    CMD(EXACT, S("LCS"), S("l1"), S("l2"), S("IDX"), S("WITHMATCHLEN")),
    CMD(EXACT, S("LCS"), S("l1"), S("l2"), S("IDX"), S("MINMATCHLEN"), S("4"), S("WITHMATCHLEN")),
    CMD(EXACT, S("LCS"), S("l1"), S("l2"), S("IDX"), S("LEN")),
    CMD(EXACT, S("LCS"), S("l1"), S("l2"), S("MINMATCHLEN")),
    CMD(EXACT, S("LCS"), S("l1"), S("l2"), S("MINMATCHLEN"), S("x")),
    CMD(EXACT, S("LCS"), S("l1"), S("nokey")),
    /* bits */
    CMD(EXACT, S("SETBIT"), S("b"), S("7"), S("1")),
    CMD(EXACT, S("SETBIT"), S("b"), S("7"), S("0")),
    CMD(EXACT, S("SETBIT"), S("b"), S("100"), S("1")),
    CMD(EXACT, S("SETBIT"), S("b"), S("-1"), S("1")),
    CMD(EXACT, S("SETBIT"), S("b"), S("4294967296"), S("1")),
    CMD(EXACT, S("SETBIT"), S("b"), S("1"), S("2")),
    CMD(EXACT, S("SETBIT"), S("b"), S("1"), S("x")),
    CMD(EXACT, S("GETBIT"), S("b"), S("100")),
    CMD(EXACT, S("GETBIT"), S("b"), S("100000")),
    CMD(EXACT, S("GETBIT"), S("nokey"), S("1")),
    CMD(EXACT, S("GET"), S("b")),
    CMD(EXACT, S("SET"), S("bc"), S("foobar")),
    CMD(EXACT, S("BITCOUNT"), S("bc")),
    CMD(EXACT, S("BITCOUNT"), S("bc"), S("1"), S("1")),
    CMD(EXACT, S("BITCOUNT"), S("bc"), S("-2"), S("-1")),
    CMD(EXACT, S("BITCOUNT"), S("bc"), S("5"), S("30"), S("BIT")),
    CMD(EXACT, S("BITCOUNT"), S("bc"), S("1"), S("1"), S("BYTE")),
    CMD(EXACT, S("BITCOUNT"), S("bc"), S("1")),
    CMD(EXACT, S("BITCOUNT"), S("bc"), S("1"), S("1"), S("foo")),
    CMD(EXACT, S("BITCOUNT"), S("nokey")),
    CMD(EXACT, S("SET"), S("bp"), S("\xff\xf0\x00")),
    CMD(EXACT, S("BITPOS"), S("bp"), S("0")),
    CMD(EXACT, S("BITPOS"), S("bp"), S("1"), S("2")),
    CMD(EXACT, S("BITPOS"), S("bp"), S("0"), S("0"), S("-1")),
    CMD(EXACT, S("BITPOS"), S("bp"), S("1"), S("7"), S("15"), S("BIT")),
    CMD(EXACT, S("BITPOS"), S("bp"), S("0"), S("0"), S("0")),
    CMD(EXACT, S("BITPOS"), S("bp"), S("2")),
    CMD(EXACT, S("BITPOS"), S("nokey"), S("0")),
    CMD(EXACT, S("BITPOS"), S("nokey"), S("1")),
    CMD(EXACT, S("BITOP"), S("AND"), S("dst"), S("bc"), S("bp")),
    CMD(EXACT, S("GET"), S("dst")),
    CMD(EXACT, S("BITOP"), S("OR"), S("dst"), S("bc"), S("bp"), S("nokey")),
    CMD(EXACT, S("BITOP"), S("XOR"), S("dst"), S("bc"), S("bp")),
    CMD(EXACT, S("GET"), S("dst")),
    CMD(EXACT, S("BITOP"), S("NOT"), S("dst"), S("bc")),
    CMD(EXACT, S("GET"), S("dst")),
    CMD(EXACT, S("BITOP"), S("NOT"), S("dst"), S("bc"), S("bp")),
    CMD(EXACT, S("BITOP"), S("NOT"), S("dst"), S("nokey")),
    CMD(EXACT, S("EXISTS"), S("dst")),
    CMD(EXACT, S("BITOP"), S("NAND"), S("dst"), S("bc")),
    /* RENAME, RENAMENX, COPY */
    CMD(EXACT, S("SET"), S("r1"), S("v"), S("EX"), S("100")),
    CMD(EXACT, S("RENAME"), S("r1"), S("r2")),
    CMD(NEAR_S, S("TTL"), S("r2")),
    CMD(EXACT, S("RENAME"), S("r1"), S("r2")),
    CMD(EXACT, S("RENAME"), S("r2"), S("r2")),
    CMD(EXACT, S("RENAMENX"), S("r2"), S("r2")),
    CMD(EXACT, S("RENAMENX"), S("r2"), S("x")),
    CMD(EXACT, S("RENAMENX"), S("r2"), S("r3")),
    CMD(EXACT, S("COPY"), S("r3"), S("r4")),
    CMD(EXACT, S("COPY"), S("r3"), S("r4")),
    CMD(EXACT, S("COPY"), S("r3"), S("r4"), S("REPLACE")),
    CMD(EXACT, S("COPY"), S("r3"), S("r3")),
    CMD(EXACT, S("COPY"), S("r3"), S("r5"), S("DB"), S("0")),
    CMD(EXACT, S("COPY"), S("r3"), S("r5"), S("DB"), S("x")),
    CMD(EXACT, S("COPY"), S("r3"), S("r5"), S("FOO")),
    CMD(EXACT, S("COPY"), S("nokey"), S("r5")),
    CMD(NEAR_S, S("TTL"), S("r4")),
    /* Transactions */
    CMD(EXACT, S("EXEC")),
    CMD(EXACT, S("DISCARD")),
    CMD(EXACT, S("MULTI")),
    CMD(EXACT, S("MULTI")),
    CMD(EXACT, S("WATCH"), S("x")),
    CMD(EXACT, S("SET"), S("t"), S("1")),
    CMD(EXACT, S("INCR"), S("t")),
    CMD(EXACT, S("APPEND"), S("t"), S("0")),
    CMD(EXACT, S("GET"), S("t")),
    CMD(EXACT, S("RENAME"), S("t"), S("t2")),
    CMD(EXACT, S("MGET"), S("t"), S("t2")),
    CMD(EXACT, S("INCR"), S("s")),
    CMD(EXACT, S("DBSIZE")),
    CMD(EXACT, S("EXEC")),
    CMD(EXACT, S("MULTI")),
    CMD(EXACT, S("SET"), S("t"), S("1")),
    CMD(EXACT, S("GET")),
    CMD(EXACT, S("NOSUCH")),
    CMD(EXACT, S("EXEC")),
    CMD(EXACT, S("EXISTS"), S("t")),
    CMD(EXACT, S("WATCH"), S("w")),
    CMD(EXACT, S("SET"), S("w"), S("1")),
    CMD(EXACT, S("MULTI")),
    CMD(EXACT, S("SET"), S("w"), S("2")),
    CMD(EXACT, S("EXEC")),
    CMD(EXACT, S("GET"), S("w")),
    CMD(EXACT, S("WATCH"), S("w")),
    CMD(EXACT, S("UNWATCH")),
    CMD(EXACT, S("SET"), S("w"), S("3")),
    CMD(EXACT, S("MULTI")),
    CMD(EXACT, S("SET"), S("w"), S("4")),
    CMD(EXACT, S("DISCARD")),
    CMD(EXACT, S("GET"), S("w")),
    CMD(EXACT, S("MULTI")),
    CMD(EXACT, S("FLUSHDB")),
    CMD(EXACT, S("SET"), S("z"), S("1")),
    CMD(EXACT, S("DBSIZE")),
    CMD(EXACT, S("EXEC")),
    CMD(EXACT, S("MULTI")),
    CMD(EXACT, S("EXEC")),
    /* The introspection replies that do not depend on the server. */
    CMD(EXACT, S("COMMAND"), S("GETKEYS"), S("get"), S("k")),
    CMD(EXACT, S("COMMAND"), S("GETKEYS"), S("mset"), S("a"), S("1"), S("b"), S("2")),
    CMD(EXACT, S("COMMAND"), S("GETKEYS"), S("lcs"), S("k1"), S("k2")),
    CMD(EXACT, S("COMMAND"), S("GETKEYS"), S("nosuch"), S("k")),
    CMD(EXACT, S("COMMAND"), S("GETKEYS"), S("get")),
    CMD(EXACT, S("COMMAND"), S("GETKEYS"), S("ping"), S("x")),
    CMD(EXACT, S("COMMAND"), S("LIST"), S("bad")),
    CMD(EXACT, S("COMMAND"), S("LIST"), S("FILTERBY"), S("bad"), S("x")),
    CMD(EXACT, S("COMMAND"), S("LIST"), S("FILTERBY"), S("MODULE"), S("x")),
    CMD(EXACT, S("COMMAND"), S("LIST"), S("FILTERBY"), S("PATTERN"), S("getrange")),
    CMD(EXACT, S("COMMAND"), S("INFO"), S("get|key")),
    CMD(EXACT, S("CONFIG"), S("SET"), S("timeout"), S("abc")),
    CMD(EXACT, S("CONFIG"), S("SET"), S("timeout"), S("-1")),
    CMD(EXACT, S("CONFIG"), S("SET"), S("timeout"), S("10"), S("timeout"), S("20")),
    CMD(EXACT, S("CONFIG"), S("SET"), S("nosuch"), S("1"), S("timeout"), S("x")),
    CMD(EXACT, S("CONFIG"), S("SET"), S("TimeOut"), S("0")),
    CMD(EXACT, S("CONFIG"), S("GET"), S("TIMEOUT")),
    CMD(EXACT, S("CLIENT"), S("KILL"), S("1.2.3.4:5")),
    CMD(EXACT, S("CLIENT"), S("KILL"), S("ID"), S("0")),
    CMD(EXACT, S("CLIENT"), S("KILL"), S("TYPE"), S("bad")),
    CMD(EXACT, S("CLIENT"), S("KILL"), S("USER"), S("bad")),
    CMD(EXACT, S("CLIENT"), S("KILL"), S("SKIPME"), S("maybe")),
    CMD(EXACT, S("CLIENT"), S("REPLY"), S("maybe")),
    CMD(EXACT, S("CLIENT"), S("LIST"), S("TYPE"), S("bad")),
    CMD(EXACT, S("CLIENT"), S("LIST"), S("ID"), S("x")),
    CMD(EXACT, S("CLIENT"), S("NO-EVICT"), S("maybe")),
    CMD(EXACT, S("RESET")),
};

#define ENGINE_TEST(name)                                                                          \
    ParameterizedTestParameters(differential_strings, name)                                        \
    {                                                                                              \
        H_ENGINE_PARAMS;                                                                           \
    }                                                                                              \
    ParameterizedTest(struct ts_engine_param *engine, differential_strings, name, .timeout = 100)

ENGINE_TEST(against_redis)
{
    struct d_redis redis;
    d_redis_start(&redis);
    struct h_server h;
    h_start(&h, engine->name, NULL);
    int kfd = h_connect(&h), rfd = d_connect_port(redis.s.port);
    for (size_t i = 0; i < sizeof(strings_script) / sizeof(strings_script[0]); i++)
        d_run_one(kfd, rfd, &strings_script[i]);
    close(kfd);
    close(rfd);
    h_stop(&h);
    d_redis_stop(&redis);
}

/* Random commands of the family over three keys, some inside MULTI. */
#define RANDOM_COMMANDS 3000

static uint32_t next_rand(uint32_t *state)
{
    *state ^= *state << 13;
    *state ^= *state >> 17;
    *state ^= *state << 5;
    return *state;
}

#define PICK(state, arr) (arr)[next_rand(state) % (sizeof(arr) / sizeof((arr)[0]))]

static const char *const keys[] = {"a", "b", "c"};
static const char *const values[] = {"",        "1", "-7", "10.5", "abc", "9223372036854775807",
                                     "\x01\xff"};
static const char *const nums[] = {"0", "1", "-1", "3", "7", "-100", "100", "x", "1.5", "64"};
static const char *const names[] = {
    "APPEND",   "INCR",     "DECR",     "INCRBY", "DECRBY", "INCRBYFLOAT", "GETSET",   "GETDEL",
    "GETRANGE", "SETRANGE", "SETNX",    "MSETNX", "SETBIT", "GETBIT",      "BITCOUNT", "BITPOS",
    "BITOP",    "RENAME",   "RENAMENX", "COPY",   "GET",    "SET",         "STRLEN",   "LCS"};

static void add(struct dcmd *d, const char *s)
{
    d->argv[d->argc++] = (kvs_slice){s, strlen(s)};
}

static void random_command(uint32_t *st, struct dcmd *d)
{
    const char *name = PICK(st, names);
    d->mode = EXACT;
    d->argc = 0;
    add(d, name);
    if (!strcmp(name, "BITOP")) {
        static const char *const ops[] = {"AND", "OR", "XOR", "NOT"};
        add(d, PICK(st, ops));
    }
    add(d, PICK(st, keys));
    if (!strcmp(name, "INCR") || !strcmp(name, "DECR") || !strcmp(name, "GETDEL") ||
        !strcmp(name, "GET") || !strcmp(name, "STRLEN") || !strcmp(name, "BITCOUNT"))
        return;
    if (!strcmp(name, "RENAME") || !strcmp(name, "RENAMENX") || !strcmp(name, "COPY") ||
        !strcmp(name, "LCS") || !strcmp(name, "BITOP")) {
        add(d, PICK(st, keys));
        return;
    }
    if (!strcmp(name, "MSETNX")) {
        add(d, PICK(st, values));
        add(d, PICK(st, keys));
        add(d, PICK(st, values));
        return;
    }
    if (!strcmp(name, "INCRBY") || !strcmp(name, "DECRBY") || !strcmp(name, "INCRBYFLOAT") ||
        !strcmp(name, "GETBIT") || !strcmp(name, "BITPOS")) {
        add(d, PICK(st, nums));
        return;
    }
    if (!strcmp(name, "GETRANGE") || !strcmp(name, "SETBIT")) {
        add(d, PICK(st, nums));
        add(d,
            !strcmp(name, "SETBIT") ? PICK(st, ((const char *const[]){"0", "1"})) : PICK(st, nums));
        return;
    }
    if (!strcmp(name, "SETRANGE")) {
        add(d, PICK(st, nums));
        add(d, PICK(st, values));
        return;
    }
    add(d, PICK(st, values)); /* APPEND, GETSET, SETNX, SET */
}

ENGINE_TEST(random_commands)
{
    struct d_redis redis;
    d_redis_start(&redis);
    struct h_server h;
    h_start(&h, engine->name, NULL);
    int kfd = h_connect(&h), rfd = d_connect_port(redis.s.port);
    uint32_t state = 0x9e3779b9u;
    const char *seed = getenv("KVS_TEST_SEED");
    if (seed)
        state = (uint32_t)strtoul(seed, NULL, 0) | 1;
    printf("random string commands: seed %#x (KVS_TEST_SEED)\n", (unsigned)state);
    struct dcmd multi = CMD(EXACT, S("MULTI")), exec = CMD(EXACT, S("EXEC"));
    for (int i = 0; i < RANDOM_COMMANDS; i++) {
        bool txn = next_rand(&state) % 10 == 0;
        if (txn)
            d_run_one(kfd, rfd, &multi);
        int n = txn ? 1 + (int)(next_rand(&state) % 4) : 1;
        for (int j = 0; j < n; j++) {
            struct dcmd d;
            random_command(&state, &d);
            d_run_one(kfd, rfd, &d);
        }
        if (txn)
            d_run_one(kfd, rfd, &exec);
    }
    close(kfd);
    close(rfd);
    h_stop(&h);
    d_redis_stop(&redis);
}
