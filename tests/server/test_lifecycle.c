/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * kvs-server's limits and its end: SIGTERM while a client has pipelined
 * commands (all answered, exit 0, all persisted; also inline commands
 * with quoted words), --maxclients and --timeout.
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

#define ENGINE_TEST(name, ...)                                                                     \
    ParameterizedTestParameters(lifecycle, name)                                                   \
    {                                                                                              \
        H_ENGINE_PARAMS;                                                                           \
    }                                                                                              \
    ParameterizedTest(struct ts_engine_param *engine, lifecycle, name, __VA_ARGS__)

#define PIPELINED 2000

/* SIGTERM right after a pipeline of SETs; quoted: inline lines whose key
   and value are quoted words, which the parser unescapes into its own
   buffer (they must survive there until the stop's batch is applied). */
static void sigterm_pipelined(const char *engine, bool quoted)
{
    struct h_server h;
    h_start(&h, engine, NULL);
    int fd = h_connect(&h);
    /* A round trip first, so the connection is surely in a worker's hands. */
    H_ROUNDTRIP(fd, "PING\r\n", "+PONG\r\n");
    size_t cap = PIPELINED * 64, len = 0;
    char *batch = malloc(cap);
    cr_assert_not_null(batch);
    for (int i = 0; i < PIPELINED; i++)
        len += (size_t)snprintf(
            batch + len, cap - len,
            quoted ? "SET \"term %d\" 'value %d'\r\n" : "SET term:%d value-%d\r\n", i, i);
    h_send(fd, batch, len);
    free(batch);
    /* SIGTERM at once: the commands are in the server's socket, most of them
       not yet read. The server must answer all of them, then exit 0. */
    h_stop_keep(&h);
    for (int i = 0; i < PIPELINED; i++)
        H_EXPECT(fd, "+OK\r\n");
    cr_expect(h_closed(fd));
    close(fd);

    h_restart(&h, NULL);
    char *out = h_cli(&h, "DBSIZE", NULL);
    cr_expect_eq(atoi(out), PIPELINED, "%s", out);
    free(out);
    if (quoted) {
        out = h_cli(&h, "MGET", "term 0", "term 1999", NULL);
        cr_expect_str_eq(out, "value 0\nvalue 1999\n");
    } else {
        out = h_cli(&h, "MGET", "term:0", "term:1999", NULL);
        cr_expect_str_eq(out, "value-0\nvalue-1999\n");
    }
    free(out);
    h_stop(&h);
}

ENGINE_TEST(sigterm_answers_pipelined, .timeout = 60)
{
    sigterm_pipelined(engine->name, false);
}

ENGINE_TEST(sigterm_answers_pipelined_quoted_inline, .timeout = 60)
{
    sigterm_pipelined(engine->name, true);
}

/* A client that never reads its replies cannot hold a stop hostage: the
   server gives it a grace period, closes it, and still exits 0. */
Test(lifecycle, stop_with_client_not_reading, .timeout = 60)
{
    struct h_server h;
    h_start(&h, "lmdb", NULL);
    int fd = h_connect(&h);
    size_t vlen = 1u << 20;
    char *value = calloc(1, vlen);
    cr_assert_not_null(value);
    char head[64];
    int n = snprintf(head, sizeof(head), "*3\r\n$3\r\nSET\r\n$1\r\nv\r\n$%zu\r\n", vlen);
    h_send(fd, head, (size_t)n);
    h_send(fd, value, vlen);
    h_send(fd, "\r\n", 2);
    H_EXPECT(fd, "+OK\r\n");
    free(value);
    for (int i = 0; i < 64; i++)
        h_send(fd, "GET v\r\n", 7);
    h_stop(&h);
    close(fd);
}

/* Poll INFO on fd until connected_clients reads want (connections closed
   by their clients leave the count once the server has seen them go). */
static void wait_clients(int fd, unsigned want)
{
    char needle[64];
    snprintf(needle, sizeof(needle), "connected_clients:%u\r\n", want);
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        h_send(fd, "INFO clients\r\n", 14);
        char head[32], body[1024];
        size_t n = 0;
        /* "$LEN\r\n" then LEN bytes and "\r\n". */
        do
            h_recv(fd, head + n, 1);
        while (head[n++] != '\n' && n < sizeof(head) - 1);
        head[n] = '\0';
        size_t blen = (size_t)atol(head + 1) + 2;
        cr_assert_lt(blen, sizeof(body));
        h_recv(fd, body, blen);
        body[blen] = '\0';
        if (strstr(body, needle))
            return;
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        cr_assert_lt(now.tv_sec - start.tv_sec, H_TIMEOUT_MS / 1000, "clients never %u: %s", want,
                     body);
    }
}

ENGINE_TEST(maxclients, .timeout = 60)
{
    struct h_server h;
    static const char *const args[] = {"--maxclients", "2", NULL};
    h_start(&h, engine->name, args);
    int a = h_connect(&h);
    wait_clients(a, 1);
    int b = h_connect(&h);
    H_ROUNDTRIP(b, "PING\r\n", "+PONG\r\n");
    int c = h_connect(&h);
    H_EXPECT(c, "-ERR max number of clients reached\r\n");
    cr_expect(h_closed(c));
    close(c);
    /* A place freed is a place taken again. */
    close(b);
    wait_clients(a, 1);
    int d = h_connect(&h);
    H_ROUNDTRIP(d, "PING\r\n", "+PONG\r\n");
    H_ROUNDTRIP(a, "PING\r\n", "+PONG\r\n");
    char *out = h_cli(&h, "PING", NULL); /* a third client: refused */
    cr_expect(strstr(out, "max number of clients reached"), "%s", out);
    free(out);
    close(d);
    close(a);
    h_stop(&h);
}

ENGINE_TEST(idle_timeout, .timeout = 60)
{
    struct h_server h;
    static const char *const args[] = {"--timeout", "1", NULL};
    h_start(&h, engine->name, args);
    int fd = h_connect(&h);
    H_ROUNDTRIP(fd, "PING\r\n", "+PONG\r\n");
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    cr_expect(h_closed(fd), "an idle client was not closed");
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double idle = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    cr_expect_geq(idle, 0.9, "closed after %.2f s, before the timeout", idle);
    close(fd);
    /* The server itself carries on. */
    char *out = h_cli(&h, "PING", NULL);
    cr_expect_str_eq(out, "PONG\n");
    free(out);
    h_stop(&h);
}
