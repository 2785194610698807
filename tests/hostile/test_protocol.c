/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Hostile bytes: Redis's own protocol test cases (tests/unit/protocol.tcl)
 * with their exact replies, 10,000 seeded random payloads, HTTP request
 * lines, oversized inline lines and queries, and the connection limits
 * (--maxclients, --timeout). The rule throughout: the server answers or
 * closes that connection, stays up, and a control client's data stays
 * intact. Pure protocol, so the kvs engine only.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "hostile.h"

#define CONTROL_KEYS 100

/* A control client that stored CONTROL_KEYS keys before the abuse. */
static int control_start(struct h_server *h)
{
    int fd = h_connect(h);
    for (int i = 0; i < CONTROL_KEYS; i++) {
        char cmd[96];
        int n = snprintf(cmd, sizeof(cmd), "SET control:%03d value-%03d-\x01\x02\r\n", i, i);
        h_send(fd, cmd, (size_t)n);
        H_EXPECT(fd, "+OK\r\n");
    }
    return fd;
}

/* Every control key is still there with its value. */
static void control_check(int fd)
{
    for (int i = 0; i < CONTROL_KEYS; i++) {
        char cmd[64], want[64];
        int n = snprintf(cmd, sizeof(cmd), "GET control:%03d\r\n", i);
        h_send(fd, cmd, (size_t)n);
        n = snprintf(want, sizeof(want), "$12\r\nvalue-%03d-\x01\x02\r\n", i);
        h_expect(fd, want, (size_t)n);
    }
}

struct edge {
    const char *name;
    const char *bytes;
    size_t len; /* 0: strlen */
    const char *reply;
    bool closes;
};

/* protocol.tcl's cases (both its old "*20000000" and newer "*3000000000"
   for the out-of-range count) and the neighbouring ones. */
static const struct edge edges[] = {
    {"empty query", "\r\n*1\r\n$4\r\nPING\r\n", 0, "+PONG\r\n", false},
    {"negative multibulk length", "*-10\r\n*1\r\n$4\r\nPING\r\n", 0, "+PONG\r\n", false},
    {"zero multibulk length", "*0\r\nPING\r\n", 0, "+PONG\r\n", false},
    {"out of range multibulk length", "*3000000000\r\n", 0,
     "-ERR Protocol error: invalid multibulk length\r\n", true},
    {"out of range multibulk length (old)", "*20000000\r\n", 0,
     "-ERR Protocol error: invalid multibulk length\r\n", true},
    {"non-number multibulk length", "*blabla\r\n", 0,
     "-ERR Protocol error: invalid multibulk length\r\n", true},
    {"wrong multibulk payload header", "*3\r\n$3\r\nSET\r\n$1\r\nx\r\nfooz\r\n", 0,
     "-ERR Protocol error: expected '$', got 'f'\r\n", true},
    {"negative multibulk payload length", "*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$-10\r\n", 0,
     "-ERR Protocol error: invalid bulk length\r\n", true},
    {"negative bulk length alone", "*1\r\n$-10\r\n", 0,
     "-ERR Protocol error: invalid bulk length\r\n", true},
    {"out of range multibulk payload length", "*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$2000000000\r\n", 0,
     "-ERR Protocol error: invalid bulk length\r\n", true},
    {"non-number multibulk payload length", "*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$blabla\r\n", 0,
     "-ERR Protocol error: invalid bulk length\r\n", true},
    {"multibulk request not followed by bulk arguments", "*1\r\nfoo\r\n", 0,
     "-ERR Protocol error: expected '$', got 'f'\r\n", true},
    {"generic wrong number of args", "ping x y z\r\n", 0,
     "-ERR wrong number of arguments for 'ping' command\r\n", false},
    {"unbalanced number of quotes", "set \"\"\"test-key\"\"\" test-value\r\n", 0,
     "-ERR Protocol error: unbalanced quotes in request\r\n", true},
    {"bulk longer than declared", "*1\r\n$4\r\nPINGPONG\r\n", 0,
     "-ERR Protocol error: invalid bulk length\r\n", true},
    /* Redis formats the byte with %c, and its text ends at the NUL. */
    {"NUL as expected '$'", "*1\r\n\0", 5, "-ERR Protocol error: expected '$', got '\r\n", true},
};

Test(hostile, redis_protocol_edges)
{
    struct h_server h;
    h_start(&h, "kvs", NULL);
    int control = control_start(&h);
    for (size_t i = 0; i < sizeof(edges) / sizeof(edges[0]); i++) {
        const struct edge *e = &edges[i];
        int fd = h_connect(&h);
        h_send(fd, e->bytes, e->len ? e->len : strlen(e->bytes));
        h_expect(fd, e->reply, strlen(e->reply));
        if (e->closes)
            cr_expect(h_closed(fd), "%s: connection left open", e->name);
        else
            H_ROUNDTRIP(fd, "PING\r\n", "+PONG\r\n");
        close(fd);
    }
    control_check(control);
    close(control);
    h_stop(&h);
}

/* protocol.tcl's "Protocol desync regression test": a first byte that
   starts no valid request, then endless text without a line end. The
   server must answer within its 64 KiB line limit, not wait for more. */
Test(hostile, desync_and_long_lines)
{
    struct h_server h;
    h_start(&h, "kvs", NULL);
    int control = control_start(&h);
    static const struct {
        const char *seq;
        size_t len;
        const char *reply;
    } cases[] = {
        {"\0", 1, "-ERR Protocol error: too big inline request\r\n"},
        {"*\0", 2, "-ERR Protocol error: too big mbulk count string\r\n"},
        {"$\0", 2, "-ERR Protocol error: too big inline request\r\n"},
        {"*1\r\n$", 5, "-ERR Protocol error: too big bulk count string\r\n"},
        {"PING ", 5, "-ERR Protocol error: too big inline request\r\n"},
    };
    size_t chunk = 1024;
    char *payload = malloc(chunk);
    cr_assert_not_null(payload);
    memset(payload, 'A', chunk);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int fd = h_connect(&h);
        h_send(fd, cases[i].seq, cases[i].len);
        size_t sent = 0;
        /* Up to 256 KiB; the reply must come well before that. */
        while (sent < (256u << 10) && hx_send_some(fd, payload, chunk, 2000) == chunk)
            sent += chunk;
        char got[128] = "";
        bool eof;
        size_t n = hx_recv_until_close(fd, got, sizeof(got) - 1, H_TIMEOUT_MS, &eof);
        got[n] = '\0';
        cr_expect_str_eq(got, cases[i].reply, "case %zu", i);
        cr_expect(eof, "case %zu: left open", i);
        close(fd);
    }
    /* A 64 KiB inline line is taken; one byte over is refused. */
    size_t max = 64u << 10;
    char *line = malloc(max + 8);
    cr_assert_not_null(line);
    memcpy(line, "ECHO ", 5);
    memset(line + 5, 'e', max - 5);
    int fd = h_connect(&h);
    memcpy(line + max - 2, "\r\n", 2); /* exactly 64 KiB with its line end */
    h_send(fd, line, max);
    char head[16];
    int hn = snprintf(head, sizeof(head), "$%zu\r\n", max - 7);
    h_expect(fd, head, (size_t)hn);
    char *echo = malloc(max);
    cr_assert_not_null(echo);
    h_recv(fd, echo, max - 7 + 2);
    free(echo);
    memset(line + max - 2, 'e', 2);
    memcpy(line + max, "ee\r\n", 4);
    size_t sent = hx_send_some(fd, line, max + 4, 2000);
    cr_expect_gt(sent, max - 1);
    H_EXPECT(fd, "-ERR Protocol error: too big inline request\r\n");
    cr_expect(h_closed(fd));
    close(fd);
    free(line);
    free(payload);
    control_check(control);
    close(control);
    h_stop(&h);
}

/* Deterministic pseudo-random numbers, so a failure can be reproduced. */
static uint32_t next_rand(uint32_t *state)
{
    *state ^= *state << 13;
    *state ^= *state >> 17;
    *state ^= *state << 5;
    return *state;
}

/* One payload: raw random bytes, protocol-looking fragments, or a
   well-formed command with random arguments. Returns its length. */
static size_t make_payload(uint32_t *st, char *buf, size_t cap)
{
    static const char alphabet[] = "*$\r\n0123456789-+: \"'\\abcSETGETPINGECHO";
    static const char *const frags[] = {"*",     "$",    "\r\n",  "*1\r\n", "*3\r\n$3\r\nSET\r\n",
                                        "$-1",   "*-1",  "PING",  "\"",     "$2147483648\r\n",
                                        "\\x",   "*0",   "GET ",  "\n",     "$536870912\r\n",
                                        "ECHO ", "QUIT", "\r\r\n"};
    size_t len = 1 + next_rand(st) % (cap - 64);
    size_t n = 0;
    uint32_t kind = next_rand(st) % 4;
    if (kind == 0) { /* raw bytes */
        for (; n < len; n++)
            buf[n] = (char)next_rand(st);
    } else if (kind == 1) { /* protocol alphabet */
        for (; n < len; n++)
            buf[n] = alphabet[next_rand(st) % (sizeof(alphabet) - 1)];
    } else if (kind == 2) { /* fragments with random bytes between */
        while (n < len) {
            const char *f = frags[next_rand(st) % (sizeof(frags) / sizeof(frags[0]))];
            size_t fl = strlen(f);
            if (n + fl + 1 > len)
                break;
            memcpy(buf + n, f, fl);
            n += fl;
            if (next_rand(st) % 3 == 0)
                buf[n++] = (char)next_rand(st);
        }
    } else { /* a well-formed multibulk with random arguments: ECHO or EXISTS */
        size_t alen = next_rand(st) % 200;
        const char *cmd = next_rand(st) % 2 ? "ECHO" : "EXISTS";
        n = (size_t)snprintf(buf, cap, "*2\r\n$%zu\r\n%s\r\n$%zu\r\n", strlen(cmd), cmd, alen);
        for (size_t i = 0; i < alen && n < cap - 2; i++)
            buf[n++] = (char)next_rand(st);
        buf[n++] = '\r';
        buf[n++] = '\n';
    }
    return n;
}

#define PAYLOADS 10000
#define PER_CONNECTION 40

Test(hostile, random_payloads)
{
    struct h_server h;
    h_start(&h, "kvs", NULL);
    int control = control_start(&h);
    uint32_t state = 0x2545f491u;
    char buf[1024], sink[65536];
    int fd = -1, on_fd = 0;
    size_t connections = 0, closed_by_server = 0, bytes = 0, replies = 0;
    for (int i = 0; i < PAYLOADS; i++) {
        if (fd < 0 || on_fd >= PER_CONNECTION) {
            if (fd >= 0)
                close(fd);
            fd = h_connect(&h);
            connections++;
            on_fd = 0;
        }
        size_t len = make_payload(&state, buf, sizeof(buf));
        size_t sent = hx_send_some(fd, buf, len, 1000);
        bytes += sent;
        on_fd++;
        /* Take what the server answered so far; EOF means it closed this
           connection (a protocol error): carry on with a new one. */
        bool closed = sent < len;
        for (;;) {
            ssize_t n = recv(fd, sink, sizeof(sink), MSG_DONTWAIT);
            if (n > 0) {
                replies += (size_t)n;
                continue;
            }
            if (n == 0 || (errno != EAGAIN && errno != EINTR))
                closed = true;
            break;
        }
        if (closed) {
            closed_by_server++;
            close(fd);
            fd = -1;
        }
    }
    if (fd >= 0)
        close(fd);
    /* The server is up, serves a new client, and the control data holds. */
    int fresh = h_connect(&h);
    H_ROUNDTRIP(fresh, "PING\r\n", "+PONG\r\n");
    close(fresh);
    control_check(control);
    long long clients = hx_info(control, "clients", "connected_clients");
    printf("random payloads: %d payloads, %zu bytes, %zu connections (%zu closed by the "
           "server), %zu reply bytes; control data intact; %lld clients left\n",
           PAYLOADS, bytes, connections, closed_by_server, replies, clients);
    close(control);
    h_stop(&h);
}

Test(hostile, http_closes)
{
    struct h_server h;
    h_start(&h, "kvs", NULL);
    int control = control_start(&h);
    static const char *const requests[] = {
        "POST / HTTP/1.1\r\n",
        "POST /api HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 5\r\n\r\nhello",
        "Host: 127.0.0.1\r\n",
        "*2\r\n$4\r\npost\r\n$1\r\n/\r\n",
        "host: x\r\n",
    };
    for (size_t i = 0; i < sizeof(requests) / sizeof(requests[0]); i++) {
        int fd = h_connect(&h);
        h_send(fd, requests[i], strlen(requests[i]));
        char got[256];
        bool eof;
        size_t n = hx_recv_until_close(fd, got, sizeof(got), H_TIMEOUT_MS, &eof);
        cr_expect(eof, "left open after %s", requests[i]);
        cr_expect_eq(n, 0, "answered %zu bytes to %s", n, requests[i]);
        close(fd);
    }
    /* A GET line goes through as a command, then "Host:" closes. */
    int fd = h_connect(&h);
    static const char get[] = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    h_send(fd, get, sizeof(get) - 1);
    cr_expect(h_closed(fd));
    close(fd);
    control_check(control);
    close(control);
    h_stop(&h);
}

/* --max-query-buffer: a request bigger than it closes the client, with a
   log line; others are unaffected. */
Test(hostile, query_buffer_limit)
{
    static const char *const args[] = {"--max-query-buffer", "2mb", NULL};
    struct h_server h;
    h_start(&h, "kvs", args);
    int control = control_start(&h);
    int fd = h_connect(&h);
    size_t vlen = 16u << 20;
    char *value = malloc(vlen);
    cr_assert_not_null(value);
    memset(value, 'q', vlen);
    char head[64];
    int n = snprintf(head, sizeof(head), "*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n$%zu\r\n", vlen);
    h_send(fd, head, (size_t)n);
    size_t sent = hx_send_some(fd, value, vlen, 5000);
    cr_expect_lt(sent, vlen, "the server took the whole 16 MiB request");
    cr_expect(h_closed(fd));
    close(fd);
    free(value);
    /* 1 MiB is under the limit. */
    fd = h_connect(&h);
    vlen = 1u << 20;
    value = malloc(vlen);
    cr_assert_not_null(value);
    memset(value, 'q', vlen);
    n = snprintf(head, sizeof(head), "*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n$%zu\r\n", vlen);
    h_send(fd, head, (size_t)n);
    h_send(fd, value, vlen);
    h_send(fd, "\r\n", 2);
    H_EXPECT(fd, "+OK\r\n");
    close(fd);
    free(value);
    control_check(control);
    close(control);
    char *log = ts_read_file(h.log, NULL);
    cr_assert_not_null(log);
    cr_expect(strstr(log, "query buffer limit"), "no log line: %s", log);
    free(log);
    h_stop(&h);
}

Test(hostile, maxclients)
{
    static const char *const args[] = {"--maxclients", "4", NULL};
    struct h_server h;
    h_start(&h, "kvs", args);
    int fds[4];
    fds[0] = h_connect(&h);
    H_ROUNDTRIP(fds[0], "PING\r\n", "+PONG\r\n");
    /* The start-up probe's connection may still be counted: wait it out. */
    long long deadline = hx_now_us() + H_TIMEOUT_MS * 1000LL;
    while (hx_info(fds[0], "clients", "connected_clients") > 1)
        cr_assert_lt(hx_now_us(), deadline);
    for (int i = 1; i < 4; i++) {
        fds[i] = h_connect(&h);
        H_ROUNDTRIP(fds[i], "PING\r\n", "+PONG\r\n");
    }
    int extra = h_connect(&h);
    H_EXPECT(extra, "-ERR max number of clients reached\r\n");
    cr_expect(h_closed(extra));
    close(extra);
    cr_expect_eq(hx_info(fds[0], "stats", "rejected_connections"), 1);
    /* A freed slot is taken again. */
    close(fds[3]);
    while (hx_info(fds[0], "clients", "connected_clients") > 3)
        cr_assert_lt(hx_now_us(), deadline);
    fds[3] = h_connect(&h);
    H_ROUNDTRIP(fds[3], "PING\r\n", "+PONG\r\n");
    for (int i = 0; i < 4; i++)
        close(fds[i]);
    h_stop(&h);
}

Test(hostile, idle_timeout)
{
    static const char *const args[] = {"--timeout", "1", NULL};
    struct h_server h;
    h_start(&h, "kvs", args);
    int idle = h_connect(&h);
    int active = h_connect(&h);
    H_ROUNDTRIP(idle, "PING\r\n", "+PONG\r\n");
    long long start = hx_now_us();
    /* The active client keeps talking every 200 ms while the idle one is
       closed: more than 1 s and at most a few after its last command. */
    bool idle_closed = false;
    while (!idle_closed && hx_now_us() - start < 8000000) {
        H_ROUNDTRIP(active, "PING\r\n", "+PONG\r\n");
        struct pollfd p = {.fd = idle, .events = POLLIN};
        if (poll(&p, 1, 200) > 0) {
            char b[16];
            idle_closed = recv(idle, b, sizeof(b), MSG_DONTWAIT) == 0;
        }
    }
    long long after_ms = (hx_now_us() - start) / 1000;
    cr_expect(idle_closed, "idle client still open after %lld ms", after_ms);
    cr_expect_geq(after_ms, 1000);
    printf("idle timeout 1 s: idle client closed after %lld ms, active client served\n", after_ms);
    H_ROUNDTRIP(active, "PING\r\n", "+PONG\r\n");
    close(idle);
    close(active);
    h_stop(&h);
}
