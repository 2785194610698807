/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Hostile times: every command that takes an expiry time, given times
 * that are huge (a megabyte of digits), negative, overflowing, not
 * integers, or random bytes, in every position. The rule: a well-formed
 * reply every time, the server stays up, and a refused command writes
 * nothing (the key keeps its value and its time). Every engine.
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hostile.h"
#include "proto/resp.h"

/* One timeout for the whole suite: Criterion 2.4 leaks an allocation of its
   runner when tests of one binary run in parallel with different ones. */
#define ENGINE_TEST(name)                                                                          \
    ParameterizedTestParameters(hostile_expiry, name)                                              \
    {                                                                                              \
        H_ENGINE_PARAMS;                                                                           \
    }                                                                                              \
    ParameterizedTest(struct ts_engine_param *engine, hostile_expiry, name, .timeout = 120)

/* Send argv as RESP and read one reply, parsed; its bytes are in *raw. */
static resp_reply ask(int fd, size_t argc, const kvs_slice *argv, char **raw)
{
    h_send_cmd(fd, argc, argv);
    size_t len;
    *raw = h_read_reply(fd, &len);
    resp_reply r;
    size_t used;
    cr_assert_eq(resp_parse_reply(*raw, len, SIZE_MAX, &r, &used), RESP_DONE);
    return r;
}

#define A(s) kvs_slice_str(s)

/* The key's value and absolute time, as the server reports them. */
static void key_state(int fd, const char *key, char *value, size_t size, long long *at)
{
    char *raw;
    kvs_slice get[] = {A("GET"), A(key)};
    resp_reply r = ask(fd, 2, get, &raw);
    cr_assert_eq(r.type, RESP_BULK);
    snprintf(value, size, "%.*s", (int)r.str.len, (const char *)r.str.data);
    free(raw);
    kvs_slice pt[] = {A("PEXPIRETIME"), A(key)};
    r = ask(fd, 2, pt, &raw);
    cr_assert_eq(r.type, RESP_INTEGER);
    *at = r.integer;
    free(raw);
}

/* The hostile times. */
static kvs_slice bad_times[16];
static size_t nbad;

static void make_bad_times(char *huge, size_t huge_len)
{
    static const char *const texts[] = {"",
                                        "-",
                                        "abc",
                                        "1e3",
                                        "0x10",
                                        "1.0",
                                        " 1",
                                        "1 ",
                                        "+1",
                                        "-0",
                                        "9223372036854775808",
                                        "-9223372036854775809",
                                        "18446744073709551615"};
    nbad = 0;
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++)
        bad_times[nbad++] = A(texts[i]);
    bad_times[nbad++] = (kvs_slice){"1\0", 2};
    bad_times[nbad++] = (kvs_slice){"\xff\xfe\x00\x80", 4};
    memset(huge, '9', huge_len);
    bad_times[nbad++] = (kvs_slice){huge, huge_len};
}

/* A time that is not a valid integer is refused by every command with
   Redis's text, and changes nothing. */
ENGINE_TEST(refused_times_change_nothing)
{
    struct h_server h;
    h_start(&h, engine->name, NULL);
    int fd = h_connect(&h);
    size_t huge_len = 1u << 20;
    char *huge = malloc(huge_len);
    cr_assert_not_null(huge);
    make_bad_times(huge, huge_len);
    kvs_slice set[] = {A("SET"), A("k"), A("v"), A("PXAT"), A("4102444800123")};
    char *raw;
    ask(fd, 5, set, &raw);
    free(raw);
    /* argv templates; the time goes where the slot is NULL. */
    struct {
        size_t argc;
        const char *argv[6];
    } templates[] = {
        {5, {"SET", "k", "x", "EX", NULL}},
        {5, {"SET", "k", "x", "PX", NULL}},
        {5, {"SET", "k", "x", "EXAT", NULL}},
        {6, {"SET", "k", "x", "GET", "PXAT", NULL}},
        {6, {"SET", "k", "x", "XX", "EX", NULL}},
        {4, {"SETEX", "k", NULL, "x"}},
        {4, {"PSETEX", "k", NULL, "x"}},
        {4, {"GETEX", "k", "EX", NULL}},
        {4, {"GETEX", "k", "PXAT", NULL}},
        {3, {"EXPIRE", "k", NULL}},
        {3, {"PEXPIRE", "k", NULL}},
        {4, {"EXPIREAT", "k", NULL, "GT"}},
        {4, {"PEXPIREAT", "k", NULL, "LT"}},
    };
    size_t refused = 0;
    for (size_t t = 0; t < sizeof(templates) / sizeof(templates[0]); t++) {
        for (size_t b = 0; b < nbad; b++) {
            kvs_slice argv[6];
            for (size_t i = 0; i < templates[t].argc; i++)
                argv[i] = templates[t].argv[i] ? A(templates[t].argv[i]) : bad_times[b];
            resp_reply r = ask(fd, templates[t].argc, argv, &raw);
            cr_expect(r.type == RESP_ERR &&
                          r.str.len == strlen("ERR value is not an integer or out of range") &&
                          memcmp(r.str.data, "ERR value is not an integer or out of range",
                                 r.str.len) == 0,
                      "%s with time %zu: %.*s", templates[t].argv[0], b, (int)r.str.len,
                      (const char *)r.str.data);
            refused += r.type == RESP_ERR;
            free(raw);
            char value[16];
            long long at;
            key_state(fd, "k", value, sizeof(value), &at);
            cr_assert_str_eq(value, "v", "%s changed the value", templates[t].argv[0]);
            cr_assert_eq(at, 4102444800123LL, "%s changed the time", templates[t].argv[0]);
        }
    }
    printf("hostile times: %zu refused, key unchanged\n", refused);
    free(huge);
    close(fd);
    h_stop(&h);
}

/* Times that are integers but out of range: refused where Redis refuses
   them; where Redis takes them (a negative EXPIRE removes the key), the
   server does the same; nothing overflows. */
ENGINE_TEST(extreme_integers)
{
    struct h_server h;
    h_start(&h, engine->name, NULL);
    int fd = h_connect(&h);
    static const struct {
        const char *argv[5];
        size_t argc;
        const char *reply;
    } cases[] = {
        {{"SET", "k", "v", "EX", "9223372036854775807"}, 5, "-ERR invalid expire time in 'set'"},
        {{"SET", "k", "v", "PX", "9223372036854775807"}, 5, "-ERR invalid expire time in 'set'"},
        {{"SET", "k", "v", "EX", "-9223372036854775808"}, 5, "-ERR invalid expire time in 'set'"},
        {{"SET", "k", "v", "EXAT", "9223372036854776"}, 5, "-ERR invalid expire time in 'set'"},
        {{"SET", "k", "v", "PXAT", "9223372036854775807"}, 5, "+OK"},
        {{"PEXPIRETIME", "k"}, 2, ":9223372036854775807"},
        {{"EXPIRETIME", "k"}, 2, ":9223372036854776"},
        {{"EXPIRE", "k", "9223372036854775807"}, 3, "-ERR invalid expire time in 'expire'"},
        {{"PEXPIRE", "k", "9223372036854775807"}, 3, "-ERR invalid expire time in 'pexpire'"},
        {{"EXPIREAT", "k", "9223372036854775807"}, 3, "-ERR invalid expire time in 'expireat'"},
        {{"EXPIRE", "k", "-9223372036854775808"}, 3, "-ERR invalid expire time in 'expire'"},
        {{"GETEX", "k", "EX", "9223372036854775807"}, 4, "-ERR invalid expire time in 'getex'"},
        {{"SETEX", "k", "9223372036854775807", "v"}, 4, "-ERR invalid expire time in 'setex'"},
        {{"PSETEX", "k", "-9223372036854775808", "v"}, 4, "-ERR invalid expire time in 'psetex'"},
        {{"GET", "k"}, 2, "$1"},
        {{"PEXPIRE", "k", "-9223372036854775808"}, 3, ":1"},
        {{"EXISTS", "k"}, 2, ":0"},
        {{"SET", "k", "v"}, 3, "+OK"},
        {{"EXPIREAT", "k", "-9223372036854775"}, 3, ":1"},
        {{"EXISTS", "k"}, 2, ":0"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        kvs_slice argv[5];
        for (size_t j = 0; j < cases[i].argc; j++)
            argv[j] = A(cases[i].argv[j]);
        h_send_cmd(fd, cases[i].argc, argv);
        size_t len;
        char *raw = h_read_reply(fd, &len);
        cr_expect(strncmp(raw, cases[i].reply, strlen(cases[i].reply)) == 0, "%s %s %s: %s, not %s",
                  cases[i].argv[0], cases[i].argv[1], cases[i].argc > 2 ? cases[i].argv[2] : "",
                  raw, cases[i].reply);
        free(raw);
    }
    close(fd);
    h_stop(&h);
}

#define FUZZ_COMMANDS 20000

static uint32_t next_rand(uint32_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

/* Random expiry commands whose time and option arguments are random
   words or bytes, pipelined: every reply well-formed, the server up, and
   keys without times that no command named keep their values. */
ENGINE_TEST(random_arguments)
{
    struct h_server h;
    h_start(&h, engine->name, NULL);
    int fd = h_connect(&h);
    for (int i = 0; i < 50; i++) {
        char cmd[64];
        int n = snprintf(cmd, sizeof(cmd), "SET control:%02d value-%02d\r\n", i, i);
        h_send(fd, cmd, (size_t)n);
        H_EXPECT(fd, "+OK\r\n");
    }
    static const char *const names[] = {"SET",    "SETEX",       "PSETEX",   "GETEX",
                                        "EXPIRE", "PEXPIRE",     "EXPIREAT", "PEXPIREAT",
                                        "TTL",    "PEXPIRETIME", "PERSIST"};
    static const char *const words[] = {"EX",
                                        "PX",
                                        "EXAT",
                                        "PXAT",
                                        "NX",
                                        "XX",
                                        "GT",
                                        "LT",
                                        "GET",
                                        "KEEPTTL",
                                        "PERSIST",
                                        "1",
                                        "-1",
                                        "0",
                                        "100",
                                        "9223372036854775807",
                                        "-9223372036854775808"};
    uint32_t state = 0x1234567u;
    char bytes[8][16];
    size_t counts[6] = {0};
    for (int i = 0; i < FUZZ_COMMANDS; i++) {
        kvs_slice argv[8];
        size_t argc = 0;
        argv[argc++] = A(names[next_rand(&state) % (sizeof(names) / sizeof(names[0]))]);
        argv[argc++] = A(next_rand(&state) % 2 ? "k1" : "k2");
        size_t extra = next_rand(&state) % 6;
        for (size_t j = 0; j < extra; j++) {
            if (next_rand(&state) % 3) {
                argv[argc++] = A(words[next_rand(&state) % (sizeof(words) / sizeof(words[0]))]);
            } else {
                size_t len = next_rand(&state) % sizeof(bytes[j]);
                for (size_t b = 0; b < len; b++)
                    bytes[j][b] = (char)next_rand(&state);
                argv[argc++] = (kvs_slice){bytes[j], len};
            }
        }
        h_send_cmd(fd, argc, argv);
        size_t len;
        char *raw = h_read_reply(fd, &len);
        resp_reply r;
        size_t used;
        cr_assert_eq(resp_parse_reply(raw, len, SIZE_MAX, &r, &used), RESP_DONE);
        cr_assert_eq(used, len);
        counts[r.type < 6 ? r.type : 5]++;
        free(raw);
    }
    for (int i = 0; i < 50; i++) {
        char cmd[64], want[64];
        int n = snprintf(cmd, sizeof(cmd), "GET control:%02d\r\n", i);
        h_send(fd, cmd, (size_t)n);
        n = snprintf(want, sizeof(want), "$8\r\nvalue-%02d\r\n", i);
        h_expect(fd, want, (size_t)n);
    }
    H_ROUNDTRIP(fd, "PING\r\n", "+PONG\r\n");
    printf("random expiry arguments: %d commands, replies by type %zu %zu %zu %zu %zu %zu\n",
           FUZZ_COMMANDS, counts[0], counts[1], counts[2], counts[3], counts[4], counts[5]);
    close(fd);
    h_stop(&h);
}
