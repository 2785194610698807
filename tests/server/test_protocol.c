/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The RESP edge cases over raw sockets: requests split at every byte,
 * inline commands, binary-safe keys and values, big values, and every kind
 * of malformed input. The rule checked throughout: the server answers an
 * error, or closes THAT connection, and keeps serving the others with the
 * data intact.
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"
#include "kvs/kvs.h"

#define ENGINE_TEST(name)                                                                          \
    ParameterizedTestParameters(protocol, name)                                                    \
    {                                                                                              \
        H_ENGINE_PARAMS;                                                                           \
    }                                                                                              \
    ParameterizedTest(struct ts_engine_param *engine, protocol, name, .timeout = 60)

/* A server with one key stored through a "witness" connection that stays
   open, to check after an abuse that others are unaffected. */
struct fixture {
    struct h_server h;
    int witness;
};

static void fx_start(struct fixture *f, const char *engine)
{
    h_start(&f->h, engine, NULL);
    f->witness = h_connect(&f->h);
    H_ROUNDTRIP(f->witness, "*3\r\n$3\r\nSET\r\n$7\r\nwitness\r\n$4\r\nsafe\r\n", "+OK\r\n");
}

/* The witness connection still works and the witness key is intact. */
static void fx_check(struct fixture *f)
{
    H_ROUNDTRIP(f->witness, "*2\r\n$3\r\nGET\r\n$7\r\nwitness\r\n", "$4\r\nsafe\r\n");
}

static void fx_stop(struct fixture *f)
{
    fx_check(f);
    close(f->witness);
    h_stop(&f->h);
}

static const char set_cmd[] = "*3\r\n$3\r\nSET\r\n$5\r\nsplit\r\n$5\r\nvalue\r\n";

ENGINE_TEST(split_at_every_byte)
{
    struct fixture f;
    fx_start(&f, engine->name);
    int fd = h_connect(&f.h);
    size_t len = sizeof(set_cmd) - 1;
    for (size_t cut = 1; cut < len; cut++) {
        h_send(fd, set_cmd, cut);
        h_send(fd, set_cmd + cut, len - cut);
        H_EXPECT(fd, "+OK\r\n");
    }
    /* One byte per send, and a pipeline of two commands split in three. */
    for (size_t i = 0; i < len; i++)
        h_send(fd, set_cmd + i, 1);
    H_EXPECT(fd, "+OK\r\n");
    static const char two[] = "*2\r\n$3\r\nGET\r\n$5\r\nsplit\r\n*1\r\n$4\r\nPING\r\n";
    h_send(fd, two, 7);
    h_send(fd, two + 7, 20);
    h_send(fd, two + 27, sizeof(two) - 1 - 27);
    H_EXPECT(fd, "$5\r\nvalue\r\n+PONG\r\n");
    close(fd);
    fx_stop(&f);
}

ENGINE_TEST(inline_commands)
{
    struct fixture f;
    fx_start(&f, engine->name);
    int fd = h_connect(&f.h);
    H_ROUNDTRIP(fd, "PING\r\n", "+PONG\r\n");
    H_ROUNDTRIP(fd, "SET inl v1\r\n", "+OK\r\n");
    H_ROUNDTRIP(fd, "GET inl\n", "$2\r\nv1\r\n");
    H_ROUNDTRIP(fd, "set \"a key\" \"x\\ny\"\r\n", "+OK\r\n");
    H_ROUNDTRIP(fd, "*2\r\n$3\r\nGET\r\n$5\r\na key\r\n", "$3\r\nx\ny\r\n");
    /* An empty line is ignored, as Redis does. */
    H_ROUNDTRIP(fd, "\r\nEXISTS inl\r\n", ":1\r\n");
    H_ROUNDTRIP(fd, "set \"unbalanced\r\n",
                "-ERR Protocol error: unbalanced quotes in request\r\n");
    cr_expect(h_closed(fd));
    close(fd);
    fx_stop(&f);
}

ENGINE_TEST(binary_safe)
{
    struct fixture f;
    fx_start(&f, engine->name);
    int fd = h_connect(&f.h);
    /* Key "k\r\n\0y" (5 bytes), value "\0\r\n$3\r\n\n\r" (9 bytes). */
    static const char set[] = "*3\r\n$3\r\nSET\r\n$5\r\nk\r\n\0y\r\n$9\r\n\0\r\n$3\r\n\n\r\r\n";
    h_send(fd, set, sizeof(set) - 1);
    H_EXPECT(fd, "+OK\r\n");
    static const char get[] = "*2\r\n$3\r\nGET\r\n$5\r\nk\r\n\0y\r\n";
    h_send(fd, get, sizeof(get) - 1);
    H_EXPECT(fd, "$9\r\n\0\r\n$3\r\n\n\r\r\n");
    /* A key that differs only after the NUL is another key. */
    static const char other[] = "*2\r\n$6\r\nEXISTS\r\n$5\r\nk\r\n\0z\r\n";
    h_send(fd, other, sizeof(other) - 1);
    H_EXPECT(fd, ":0\r\n");
    close(fd);
    fx_stop(&f);
}

ENGINE_TEST(one_mebibyte_value)
{
    struct fixture f;
    fx_start(&f, engine->name);
    int fd = h_connect(&f.h);
    size_t vlen = 1u << 20;
    char *value = malloc(vlen);
    cr_assert_not_null(value);
    for (size_t i = 0; i < vlen; i++)
        value[i] = (char)(i * 131 + (i >> 9));
    char head[64];
    int n = snprintf(head, sizeof(head), "*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n$%zu\r\n", vlen);
    h_send(fd, head, (size_t)n);
    h_send(fd, value, vlen);
    h_send(fd, "\r\n", 2);
    H_EXPECT(fd, "+OK\r\n");
    H_ROUNDTRIP(fd, "*2\r\n$3\r\nGET\r\n$3\r\nbig\r\n", "$1048576\r\n");
    char *got = malloc(vlen + 2);
    cr_assert_not_null(got);
    h_recv(fd, got, vlen + 2);
    cr_expect(memcmp(got, value, vlen) == 0 && memcmp(got + vlen, "\r\n", 2) == 0);
    free(got);
    free(value);
    close(fd);
    fx_stop(&f);
}

/* Replies far bigger than the socket buffers, to a client that reads them
   only after sending everything: the server pauses reading while it cannot
   write, resumes once the client reads, and every reply arrives whole and
   in order. */
ENGINE_TEST(replies_larger_than_buffers)
{
    struct fixture f;
    fx_start(&f, engine->name);
    int fd = h_connect(&f.h);
    size_t vlen = 1u << 20;
    char *value = malloc(vlen);
    cr_assert_not_null(value);
    memset(value, 'v', vlen);
    char head[64];
    int n = snprintf(head, sizeof(head), "*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n$%zu\r\n", vlen);
    h_send(fd, head, (size_t)n);
    h_send(fd, value, vlen);
    h_send(fd, "\r\n", 2);
    H_EXPECT(fd, "+OK\r\n");
    enum { GETS = 32 };
    for (int i = 0; i < GETS; i++)
        h_send(fd, "GET big\r\nPING\r\n", 15);
    char *got = malloc(vlen + 2);
    cr_assert_not_null(got);
    for (int i = 0; i < GETS; i++) {
        H_EXPECT(fd, "$1048576\r\n");
        h_recv(fd, got, vlen + 2);
        cr_assert(memcmp(got, value, vlen) == 0 && memcmp(got + vlen, "\r\n", 2) == 0,
                  "reply %d differs", i);
        H_EXPECT(fd, "+PONG\r\n");
    }
    free(got);
    free(value);
    close(fd);
    fx_stop(&f);
}

ENGINE_TEST(wrong_arity_keeps_connection)
{
    struct fixture f;
    fx_start(&f, engine->name);
    int fd = h_connect(&f.h);
    H_ROUNDTRIP(fd, "*1\r\n$3\r\nGET\r\n", "-ERR wrong number of arguments for 'get' command\r\n");
    H_ROUNDTRIP(fd, "*3\r\n$3\r\nFOO\r\n$1\r\na\r\n$1\r\nb\r\n",
                "-ERR unknown command 'FOO', with args beginning with: 'a' 'b' \r\n");
    H_ROUNDTRIP(fd, "*1\r\n$4\r\nPING\r\n", "+PONG\r\n");
    close(fd);
    fx_stop(&f);
}

ENGINE_TEST(key_over_engine_limit)
{
    struct fixture f;
    fx_start(&f, engine->name);
    const kvs_engine *e = kvs_engine_find(engine->name);
    cr_assert_not_null(e);
    size_t klen = kvs_engine_max_key(e) + 1;
    char *key = malloc(klen);
    cr_assert_not_null(key);
    memset(key, 'k', klen);
    int fd = h_connect(&f.h);
    char head[64];
    int n = snprintf(head, sizeof(head), "*3\r\n$3\r\nSET\r\n$%zu\r\n", klen);
    h_send(fd, head, (size_t)n);
    h_send(fd, key, klen);
    h_send(fd, "\r\n$1\r\nv\r\n", 9);
    char expect[160];
    n = snprintf(expect, sizeof(expect),
                 "-ERR key too long: engine %s accepts keys up to %zu bytes\r\n", engine->name,
                 klen - 1);
    h_expect(fd, expect, (size_t)n);
    H_ROUNDTRIP(fd, "PING\r\n", "+PONG\r\n");
    free(key);
    close(fd);
    fx_stop(&f);
}

/* Each of these is answered with Redis's error, then the connection is
   closed; the witness connection keeps working. */
struct bad_request {
    const char *bytes;
    const char *reply;
};

static const struct bad_request bad_requests[] = {
    {"*2\r\n$3\r\nGET\r\n$600000000\r\n", "-ERR Protocol error: invalid bulk length\r\n"},
    {"*1\r\n$-3\r\n", "-ERR Protocol error: invalid bulk length\r\n"},
    {"*1\r\n$99999999999999999999\r\n", "-ERR Protocol error: invalid bulk length\r\n"},
    {"*1\r\n$abc\r\n", "-ERR Protocol error: invalid bulk length\r\n"},
    {"*99999999999\r\n", "-ERR Protocol error: invalid multibulk length\r\n"},
    {"*2000000\r\n", "-ERR Protocol error: invalid multibulk length\r\n"},
    {"*1x\r\n", "-ERR Protocol error: invalid multibulk length\r\n"},
    {"*1\r\n+PING\r\n", "-ERR Protocol error: expected '$', got '+'\r\n"},
    {"*1\r\n$4\r\nPINGxx", "-ERR Protocol error: "},
};

ENGINE_TEST(malformed_lengths)
{
    struct fixture f;
    fx_start(&f, engine->name);
    for (size_t i = 0; i < sizeof(bad_requests) / sizeof(bad_requests[0]); i++) {
        int fd = h_connect(&f.h);
        h_send(fd, bad_requests[i].bytes, strlen(bad_requests[i].bytes));
        h_expect(fd, bad_requests[i].reply, strlen(bad_requests[i].reply));
        cr_expect(h_closed(fd), "connection left open after %s", bad_requests[i].bytes);
        close(fd);
        fx_check(&f);
    }
    /* "*0" and "*-1" are ignored, as Redis does; the connection carries on. */
    int fd = h_connect(&f.h);
    H_ROUNDTRIP(fd, "*0\r\n*-1\r\n*1\r\n$4\r\nPING\r\n", "+PONG\r\n");
    close(fd);
    fx_stop(&f);
}

ENGINE_TEST(oversized_inline)
{
    struct fixture f;
    fx_start(&f, engine->name);
    int fd = h_connect(&f.h);
    size_t len = 100u << 10; /* over the 64 KiB inline limit, no newline */
    char *junk = malloc(len);
    cr_assert_not_null(junk);
    memset(junk, 'a', len);
    h_send(fd, junk, len);
    H_EXPECT(fd, "-ERR Protocol error: too big inline request\r\n");
    cr_expect(h_closed(fd));
    free(junk);
    close(fd);
    fx_stop(&f);
}

ENGINE_TEST(http_request_closes)
{
    struct fixture f;
    fx_start(&f, engine->name);
    static const char *const requests[] = {
        "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
    };
    for (size_t i = 0; i < 2; i++) {
        int fd = h_connect(&f.h);
        h_send(fd, requests[i], strlen(requests[i]));
        /* "GET / HTTP/1.1" parses as a GET with two arguments; the "Host:"
           line after it closes the connection before its error is sent. */
        cr_expect(h_closed(fd), "%s", requests[i]);
        close(fd);
        fx_check(&f);
    }
    fx_stop(&f);
}

/* Deterministic pseudo-random bytes, so a failure can be reproduced. */
static uint32_t next_rand(uint32_t *state)
{
    *state ^= *state << 13;
    *state ^= *state >> 17;
    *state ^= *state << 5;
    return *state;
}

ENGINE_TEST(garbage)
{
    struct fixture f;
    fx_start(&f, engine->name);
    uint32_t state = 0x9e3779b9u;
    for (int round = 0; round < 40; round++) {
        char junk[4096];
        size_t len = 1 + next_rand(&state) % sizeof(junk);
        for (size_t i = 0; i < len; i++) {
            uint32_t r = next_rand(&state);
            /* Mostly protocol characters, so that the parser gets deep. */
            static const char alphabet[] = "*$\r\n0123456789-+:abcSETGET ";
            junk[i] = (r & 3) ? alphabet[r % (sizeof(alphabet) - 1)] : (char)(r >> 8);
        }
        int fd = h_connect(&f.h);
        h_send(fd, junk, len);
        /* Then a clean PING: answered if the junk left the connection in a
           sane state, otherwise the connection is closed. Either is fine;
           hanging or crashing is not. */
        h_send(fd, "\r\n*1\r\n$4\r\nPING\r\n", 16);
        shutdown(fd, SHUT_WR);
        cr_expect(h_closed(fd), "round %d: server neither answered nor closed", round);
        close(fd);
        fx_check(&f);
    }
    fx_stop(&f);
}

ENGINE_TEST(pipelined_batch)
{
    struct fixture f;
    fx_start(&f, engine->name);
    int fd = h_connect(&f.h);
    static const char batch[] = "*3\r\n$3\r\nSET\r\n$1\r\na\r\n$1\r\n1\r\n"
                                "PING\r\n"
                                "*2\r\n$3\r\nGET\r\n$1\r\na\r\n"
                                "*2\r\n$3\r\nDEL\r\n$1\r\na\r\n"
                                "*2\r\n$3\r\nGET\r\n$1\r\na\r\n"
                                "*3\r\n$4\r\nECHO\r\n$1\r\nx\r\n$1\r\ny\r\n"
                                "*1\r\n$4\r\nQUIT\r\n"
                                "*1\r\n$4\r\nPING\r\n";
    h_send(fd, batch, sizeof(batch) - 1);
    H_EXPECT(fd, "+OK\r\n+PONG\r\n$1\r\n1\r\n:1\r\n$-1\r\n"
                 "-ERR wrong number of arguments for 'echo' command\r\n+OK\r\n");
    /* Nothing after QUIT is executed. */
    cr_expect(h_closed(fd));
    close(fd);
    fx_stop(&f);
}
