/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Resources under hostile clients: a thousand connections declaring 512
 * MiB bulks, five thousand idle connections beside an active one, and a
 * client pipelining a million GETs without reading. The server's RSS
 * (/proc/PID/status) must stay flat, other clients must be served, and the
 * figures are printed for the record.
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "hostile.h"

#define RSS_SLACK_KB (64L << 10) /* 64 MiB */

/* Raise this process's descriptor limit to its hard limit; returns it. */
static rlim_t raise_nofile(void)
{
    struct rlimit rl;
    cr_assert_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
    rl.rlim_cur = rl.rlim_max;
    cr_assert_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
    return rl.rlim_cur;
}

#define DECLARED 1000

Test(resources, declared_bulks)
{
    raise_nofile();
    struct h_server h;
    h_start(&h, "kvs", NULL);
    int control = h_connect(&h);
    H_ROUNDTRIP(control, "SET control intact\r\n", "+OK\r\n");
    long long in_before = hx_info(control, "stats", "total_net_input_bytes");
    long rss_before = hx_rss_kb(h.s.pid);
    static const char decl[] = "*1\r\n$536870912\r\nabc";
    int *fds = calloc(DECLARED, sizeof(*fds));
    cr_assert_not_null(fds);
    for (int i = 0; i < DECLARED; i++) {
        fds[i] = h_connect(&h);
        h_send(fds[i], decl, sizeof(decl) - 1);
    }
    /* Wait until the server has read every byte sent, then measure. */
    hx_wait_info(control, "stats", "total_net_input_bytes",
                 in_before + DECLARED * (long long)(sizeof(decl) - 1) + 40, H_TIMEOUT_MS);
    long long clients = hx_info(control, "clients", "connected_clients");
    long rss_after = hx_rss_kb(h.s.pid);
    H_ROUNDTRIP(control, "GET control\r\n", "$6\r\nintact\r\n");
    printf("declared bulks: %d connections each declaring a 512 MiB bulk (%.0f GiB declared); "
           "server RSS %ld KiB before, %ld KiB after (%+ld KiB); %lld clients\n",
           DECLARED, DECLARED * 0.5, rss_before, rss_after, rss_after - rss_before, clients);
    cr_expect_eq(clients, DECLARED + 1);
    cr_expect_lt(rss_after - rss_before, RSS_SLACK_KB, "RSS grew by %ld KiB",
                 rss_after - rss_before);
    for (int i = 0; i < DECLARED; i++)
        close(fds[i]);
    free(fds);
    close(control);
    h_stop(&h);
}

#define IDLE 5000
#define ROUND_TRIPS 1000

/* ROUND_TRIPS alternating PING and GET on fd; returns the p99 and writes
   the median, in microseconds. */
static long long measure(int fd, long long *median)
{
    static long long samples[ROUND_TRIPS];
    for (int i = 0; i < ROUND_TRIPS; i++) {
        long long t0 = hx_now_us();
        if (i % 2)
            H_ROUNDTRIP(fd, "PING\r\n", "+PONG\r\n");
        else
            H_ROUNDTRIP(fd, "GET k\r\n", "$5\r\nvalue\r\n");
        samples[i] = hx_now_us() - t0;
    }
    long long p99 = hx_percentile(samples, ROUND_TRIPS, 99);
    *median = hx_percentile(samples, ROUND_TRIPS, 50);
    return p99;
}

Test(resources, idle_connections)
{
    /* Start the server under a low descriptor limit, as a default shell
       gives: it must raise its own soft limit toward maxclients. */
    struct rlimit rl;
    cr_assert_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
    if (rl.rlim_max < IDLE + 200) {
        cr_log_warn("hard descriptor limit %llu is too low for %d connections",
                    (unsigned long long)rl.rlim_max, IDLE);
        return;
    }
    struct rlimit low = {1024, rl.rlim_max};
    cr_assert_eq(setrlimit(RLIMIT_NOFILE, &low), 0);
    struct h_server h;
    h_start(&h, "kvs", NULL);
    raise_nofile();
    long server_fds = hx_fd_limit(h.s.pid);
    cr_expect_geq(server_fds, IDLE + 100, "the server's descriptor limit stayed at %ld",
                  server_fds);

    int active = h_connect(&h);
    H_ROUNDTRIP(active, "SET k value\r\n", "+OK\r\n");
    long long med0, p99_0 = measure(active, &med0);
    long rss_before = hx_rss_kb(h.s.pid);

    int *fds = calloc(IDLE, sizeof(*fds));
    cr_assert_not_null(fds);
    long long t0 = hx_now_us();
    for (int i = 0; i < IDLE; i++) {
        fds[i] = hx_connect("127.0.0.1", h.s.port);
        cr_assert_geq(fds[i], 0, "connection %d: %s", i, strerror(errno));
    }
    hx_wait_info(active, "clients", "connected_clients", IDLE + 1, 30000);
    long long connect_ms = (hx_now_us() - t0) / 1000;
    /* Every idle connection is served too: a sample of them answer. */
    for (int i = 0; i < IDLE; i += 500)
        H_ROUNDTRIP(fds[i], "PING\r\n", "+PONG\r\n");
    long long med1, p99_1 = measure(active, &med1);
    long rss_after = hx_rss_kb(h.s.pid);
    printf("idle connections: server fd limit %ld (started under 1024); %d idle connections "
           "in %lld ms; active client over %d round trips: p50 %lld us, p99 %lld us alone, "
           "p50 %lld us, p99 %lld us beside them; RSS %ld -> %ld KiB (%.1f KiB per "
           "connection)\n",
           server_fds, IDLE, connect_ms, ROUND_TRIPS, med0, p99_0, med1, p99_1, rss_before,
           rss_after, (double)(rss_after - rss_before) / IDLE);
    cr_expect_lt(p99_1, 50000, "p99 %lld us beside %d idle connections", p99_1, IDLE);
    for (int i = 0; i < IDLE; i++)
        close(fds[i]);
    free(fds);
    close(active);
    h_stop(&h);
}

ParameterizedTestParameters(resources, pipeline_without_reading)
{
    H_ENGINE_PARAMS;
}

#define PIPELINED 1000000
#define VALUE_LEN 4096

/* A client sends a million GETs of a 4 KiB value and reads nothing. The
   server stops executing its commands once 1 MiB of replies waits, and
   stops reading it while its socket is full: its RSS stays flat, and
   another client is served all along. */
ParameterizedTest(struct ts_engine_param *engine, resources, pipeline_without_reading)
{
    struct h_server h;
    h_start(&h, engine->name, NULL);
    int control = h_connect(&h);
    char *set = malloc(VALUE_LEN + 64);
    cr_assert_not_null(set);
    int n = snprintf(set, 64, "*3\r\n$3\r\nSET\r\n$1\r\nv\r\n$%d\r\n", VALUE_LEN);
    for (int i = 0; i < VALUE_LEN; i++)
        set[n + i] = (char)('a' + i % 26);
    memcpy(set + n + VALUE_LEN, "\r\n", 2);
    h_send(control, set, (size_t)n + VALUE_LEN + 2);
    H_EXPECT(control, "+OK\r\n");
    long rss_before = hx_rss_kb(h.s.pid);

    int hog = h_connect(&h);
    static const char get[] = "*2\r\n$3\r\nGET\r\n$1\r\nv\r\n";
    enum { BATCH = 1000 };
    char *batch = malloc(BATCH * (sizeof(get) - 1));
    cr_assert_not_null(batch);
    for (int i = 0; i < BATCH; i++)
        memcpy(batch + i * (sizeof(get) - 1), get, sizeof(get) - 1);
    size_t batch_len = BATCH * (sizeof(get) - 1);
    /* Send until the million is out or the server has stopped taking any
       for a second (it stalls the hog). */
    size_t sent = 0;
    while (sent < PIPELINED * (sizeof(get) - 1)) {
        size_t got = hx_send_some(hog, batch, batch_len, 1000);
        sent += got;
        if (got < batch_len)
            break;
    }
    size_t gets_sent = sent / (sizeof(get) - 1);
    long rss_hog = hx_rss_kb(h.s.pid);
    /* Others are served while the hog is stalled. */
    long long t0 = hx_now_us();
    for (int i = 0; i < 100; i++)
        H_ROUNDTRIP(control, "PING\r\n", "+PONG\r\n");
    long long ping_us = (hx_now_us() - t0) / 100;
    h_send(control, "GET v\r\n", 7);
    char *got = malloc(VALUE_LEN + 16);
    cr_assert_not_null(got);
    H_EXPECT(control, "$4096\r\n");
    h_recv(control, got, VALUE_LEN + 2);
    cr_expect(memcmp(got, set + n, VALUE_LEN) == 0);
    long long executed = hx_info(control, "stats", "total_commands_processed");
    printf("pipeline without reading (%s): hog sent %zu of %d GETs (%.1f MiB) before the "
           "server stopped taking them; %lld commands executed in all; server RSS %ld -> %ld "
           "KiB (%+ld KiB); control PING %lld us\n",
           engine->name, gets_sent, PIPELINED, (double)sent / (1 << 20), executed, rss_before,
           rss_hog, rss_hog - rss_before, ping_us);
    cr_expect_lt(gets_sent, PIPELINED, "the server took a million GETs without a reader");
    cr_expect_lt(rss_hog - rss_before, RSS_SLACK_KB, "RSS grew by %ld KiB", rss_hog - rss_before);
    close(hog);
    free(got);
    free(batch);
    free(set);
    close(control);
    h_stop(&h);
}

/* --max-output-buffer: a client owed more than the limit is closed, with a
   log line: a never-reading pipeline once past the limit, and a single
   reply bigger than it. */
Test(resources, output_limit_drops)
{
    static const char *const args[] = {"--max-output-buffer", "1mb", NULL};
    struct h_server h;
    h_start(&h, "kvs", args);
    int control = h_connect(&h);
    size_t vlen = 400u << 10;
    char *set = malloc(vlen + 64);
    cr_assert_not_null(set);
    int n = snprintf(set, 64, "*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n$%zu\r\n", vlen);
    memset(set + n, 'b', vlen);
    memcpy(set + n + vlen, "\r\n", 2);
    h_send(control, set, (size_t)n + vlen + 2);
    H_EXPECT(control, "+OK\r\n");

    /* One reply of 1.2 MiB: never sent, the connection is closed. */
    int fd = h_connect(&h);
    h_send(fd, "MGET big big big\r\n", 18);
    char buf[64];
    bool eof;
    size_t got = hx_recv_until_close(fd, buf, sizeof(buf), H_TIMEOUT_MS, &eof);
    cr_expect(eof, "left open");
    cr_expect_eq(got, 0, "%zu bytes of the reply were sent", got);
    close(fd);
    /* Under the limit it is sent. */
    fd = h_connect(&h);
    h_send(fd, "MGET big big\r\n", 14);
    H_EXPECT(fd, "*2\r\n$409600\r\n");
    close(fd);

    /* A pipeline of GETs that is never read: dropped once over 1 MiB. */
    int hog = h_connect(&h);
    size_t sent = 0;
    for (int i = 0; i < 10000; i++) {
        size_t s = hx_send_some(hog, "GET big\r\n", 9, 1000);
        sent += s;
        if (s < 9)
            break;
    }
    cr_expect(h_closed(hog), "the hog was not dropped");
    close(hog);
    H_ROUNDTRIP(control, "PING\r\n", "+PONG\r\n");
    char *log = ts_read_file(h.log, NULL);
    cr_assert_not_null(log);
    cr_expect(strstr(log, "max-output-buffer"), "no log line: %s", log);
    free(log);
    printf("output limit 1 MiB: a 1.2 MiB MGET reply closed its client; a never-reading "
           "pipeline of 400 KiB GETs was dropped after %zu bytes sent\n",
           sent);
    free(set);
    close(control);
    h_stop(&h);
}

/* --max-output-buffer bounds what one command may build, not only what
   is owed once it has run: an MGET naming a 4 MiB value a hundred times
   (a 400 MiB reply) under a 1 MiB limit stops at the first value that
   would pass the limit and closes its client. The server's peak RSS
   meanwhile stays within three times the limit plus twice the value (the
   engine's copy of it and the pages it read it from) plus 8 MiB for the
   allocator (ASan's quarantine keeps freed blocks resident), and other
   clients are still served. Before the fix the peak grew by ~790 MiB. */
#define BIG_VALUE (4u << 20)
#define MGET_TIMES 100
#define OUT_LIMIT_KB 1024L

ParameterizedTestParameters(resources, output_limit_bounds_memory)
{
    H_ENGINE_PARAMS;
}

ParameterizedTest(struct ts_engine_param *engine, resources, output_limit_bounds_memory,
                  .timeout = 60)
{
    static const char *const args[] = {"--max-output-buffer", "1mb", NULL};
    struct h_server h;
    h_start(&h, engine->name, args);
    int control = h_connect(&h);
    char *set = malloc(BIG_VALUE + 64);
    cr_assert_not_null(set);
    int n = snprintf(set, 64, "*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n$%u\r\n", BIG_VALUE);
    memset(set + n, 'v', BIG_VALUE);
    memcpy(set + n + BIG_VALUE, "\r\n", 2);
    h_send(control, set, (size_t)n + BIG_VALUE + 2);
    H_EXPECT(control, "+OK\r\n");
    free(set);

    char mget[16 + 4 * MGET_TIMES];
    size_t len = (size_t)snprintf(mget, sizeof(mget), "MGET");
    for (int i = 0; i < MGET_TIMES; i++)
        len += (size_t)snprintf(mget + len, sizeof(mget) - len, " big");
    len += (size_t)snprintf(mget + len, sizeof(mget) - len, "\r\n");
    long rss_before = hx_rss_kb(h.s.pid);
    hx_reset_peak_rss(h.s.pid);
    int fd = h_connect(&h);
    h_send(fd, mget, len);
    char buf[4096];
    bool eof;
    size_t got = hx_recv_until_close(fd, buf, sizeof(buf), H_TIMEOUT_MS, &eof);
    long peak = hx_peak_rss_kb(h.s.pid);
    close(fd);
    long bound = 3 * OUT_LIMIT_KB + 2 * (long)(BIG_VALUE >> 10) + (8L << 10);
    printf("output limit 1 MiB (%s): MGET of a 4 MiB value x%d (%d MiB of reply): %zu bytes "
           "sent, then %s; server peak RSS %ld KiB over the %ld KiB before (bound %ld KiB)\n",
           engine->name, MGET_TIMES, MGET_TIMES * 4, got, eof ? "closed" : "left open",
           peak - rss_before, rss_before, bound);
    cr_expect(eof, "the client was not closed");
    cr_expect_lt(peak - rss_before, bound, "peak RSS grew by %ld KiB building the reply",
                 peak - rss_before);

    /* Others are still served. */
    H_ROUNDTRIP(control, "EXISTS big\r\n", ":1\r\n");
    fd = h_connect(&h);
    H_ROUNDTRIP(fd, "SET small 1\r\n", "+OK\r\n");
    H_ROUNDTRIP(fd, "MGET small small\r\n", "*2\r\n$1\r\n1\r\n$1\r\n1\r\n");
    close(fd);
    close(control);
    h_stop(&h);
}
