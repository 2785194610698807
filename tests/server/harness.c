/* SPDX-License-Identifier: BSD-3-Clause */
/* Helpers of the kvs-server suites; see harness.h. */
#include "harness.h"

#include "kvs/kvs.h"
#include "proto/resp.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_ARGS 64

const char *h_server_binary(void)
{
    const char *env = getenv("KVS_TEST_SERVER");
    return env && *env ? env : KVS_SERVER_BIN;
}

/* The server's log, for a failure message; static so that nothing is left
   allocated when the assertion ends the test. */
static const char *log_text(struct h_server *h)
{
    static char text[8192];
    size_t len = 0;
    char *log = ts_read_file(h->log, &len);
    snprintf(text, sizeof(text), "%s", log ? log : "(no log)");
    free(log);
    return text;
}

/* Start the server; port 0 picks a free port, another reuses that one. */
static void start(struct h_server *h, const char *const *extra, uint16_t port)
{
    const char *args[MAX_ARGS];
    size_t n = 0;
    char addr[64];
    if (port) {
        snprintf(addr, sizeof(addr), "127.0.0.1:%u", (unsigned)port);
        args[n++] = "--addr";
        args[n++] = addr;
    }
    args[n++] = "--engine";
    args[n++] = h->engine;
    args[n++] = "--data-dir";
    args[n++] = h->data;
    args[n++] = "--threads";
    args[n++] = "2";
    for (size_t i = 0; extra && extra[i]; i++) {
        cr_assert_lt(n, MAX_ARGS - 1);
        args[n++] = extra[i];
    }
    args[n] = NULL;
    ts_server_opts opts = {.binary = h_server_binary(),
                           .args = args,
                           .log_path = h->log,
                           .no_addr = port != 0,
                           .port = port};
    int rc = ts_server_start(&h->s, &opts);
    if (rc != TS_READY)
        cr_assert_fail("kvs-server --engine %s did not start (%d, status %d): %s", h->engine, rc,
                       h->s.status, log_text(h));
}

void h_start(struct h_server *h, const char *engine, const char *const *extra)
{
    memset(h, 0, sizeof(*h));
    h->engine = engine;
    cr_assert_eq(ts_tmpdir_make(h->dir), 0, "tmpdir: %s", strerror(errno));
    snprintf(h->data, sizeof(h->data), "%s/data", h->dir);
    snprintf(h->log, sizeof(h->log), "%s/server.log", h->dir);
    start(h, extra, 0);
}

void h_restart(struct h_server *h, const char *const *extra)
{
    start(h, extra, h->s.port);
}

void h_stop_keep(struct h_server *h)
{
    int status = ts_server_stop(&h->s, H_TIMEOUT_MS);
    if (status != 0)
        cr_assert_fail("kvs-server exited with %d%s: %s", status,
                       h->s.timed_out ? " (killed at the deadline)" : "", log_text(h));
}

void h_stop(struct h_server *h)
{
    h_stop_keep(h);
    ts_tmpdir_remove(h->dir);
}

static char *run_cli(struct h_server *h, const char *input, size_t len, va_list ap)
{
    char port[16];
    snprintf(port, sizeof(port), "%u", (unsigned)h->s.port);
    const char *argv[MAX_ARGS] = {REDIS_CLI, "-h", "127.0.0.1", "-p", port};
    size_t n = 5;
    const char *arg;
    while ((arg = va_arg(ap, const char *)) != NULL) {
        cr_assert_lt(n, MAX_ARGS - 1);
        argv[n++] = arg;
    }
    argv[n] = NULL;
    ts_result r;
    int rc = ts_run(argv, input, len, H_TIMEOUT_MS, &r);
    cr_assert_eq(rc, 0, "cannot run redis-cli");
    cr_assert_eq(r.status, 0, "redis-cli %s exited %d: %s%s", argv[5], r.status, r.out, r.err);
    char *out = r.out;
    r.out = NULL;
    ts_result_free(&r);
    return out;
}

char *h_cli(struct h_server *h, ...)
{
    va_list ap;
    va_start(ap, h);
    char *out = run_cli(h, NULL, 0, ap);
    va_end(ap);
    return out;
}

char *h_cli_stdin(struct h_server *h, const char *input, size_t len, ...)
{
    va_list ap;
    va_start(ap, len);
    char *out = run_cli(h, input, len, ap);
    va_end(ap);
    return out;
}

int h_connect(struct h_server *h)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(h->s.port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert_geq(fd, 0);
    cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0, "connect: %s",
                 strerror(errno));
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wait until fd has events or the deadline passes. */
static bool wait_fd(int fd, short events, long long deadline)
{
    for (;;) {
        long long left = deadline - now_ms();
        if (left <= 0)
            return false;
        struct pollfd p = {.fd = fd, .events = events};
        int n = poll(&p, 1, (int)left);
        if (n > 0)
            return true;
        if (n < 0 && errno != EINTR)
            return false;
    }
}

void h_send(int fd, const void *buf, size_t len)
{
    long long deadline = now_ms() + H_TIMEOUT_MS;
    size_t sent = 0;
    while (sent < len) {
        cr_assert(wait_fd(fd, POLLOUT, deadline), "send: timed out");
        ssize_t n = send(fd, (const char *)buf + sent, len - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            continue;
        cr_assert_gt(n, 0, "send: %s", strerror(errno));
        sent += (size_t)n;
    }
}

/* Read exactly len bytes; false with why filled on EOF, error or timeout. */
static bool recv_all(int fd, void *buf, size_t len, char *why, size_t why_size)
{
    long long deadline = now_ms() + H_TIMEOUT_MS;
    size_t got = 0;
    while (got < len) {
        if (!wait_fd(fd, POLLIN, deadline)) {
            snprintf(why, why_size, "recv: timed out with %zu of %zu bytes", got, len);
            return false;
        }
        ssize_t n = recv(fd, (char *)buf + got, len - got, MSG_DONTWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            continue;
        if (n <= 0) {
            snprintf(why, why_size, "recv: %s after %zu of %zu bytes", n ? strerror(errno) : "EOF",
                     got, len);
            return false;
        }
        got += (size_t)n;
    }
    return true;
}

void h_recv(int fd, void *buf, size_t len)
{
    char why[128];
    cr_assert(recv_all(fd, buf, len, why, sizeof(why)), "%s", why);
}

void h_expect(int fd, const void *expected, size_t len)
{
    char *got = malloc(len + 1);
    cr_assert_not_null(got);
    char why[128] = "";
    bool ok = recv_all(fd, got, len, why, sizeof(why));
    got[ok ? len : 0] = '\0';
    bool same = ok && memcmp(got, expected, len) == 0;
    /* Keep the start of what came, and free before failing: a failed
       assertion ends the test here. */
    static char shown[512];
    snprintf(shown, sizeof(shown), "%s", got);
    free(got);
    cr_assert(ok, "%s, expecting \"%.*s\"", why, (int)(len < 400 ? len : 400),
              (const char *)expected);
    cr_assert(same, "expected \"%.*s\", got \"%s\"", (int)(len < 400 ? len : 400),
              (const char *)expected, shown);
}

bool h_closed(int fd)
{
    long long deadline = now_ms() + H_TIMEOUT_MS;
    char buf[4096];
    for (;;) {
        if (!wait_fd(fd, POLLIN, deadline))
            return false;
        ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
            return true;
    }
}

char *h_read_reply(int fd, size_t *len)
{
    size_t cap = 4096, have = 0, done = 0, pending = 1;
    char *buf = malloc(cap);
    cr_assert_not_null(buf);
    char why[128];
    while (pending > 0) {
        resp_reply r;
        size_t used = 0;
        int rc = have > done ? resp_parse_reply(buf + done, have - done, SIZE_MAX, &r, &used)
                             : RESP_MORE;
        if (rc == RESP_DONE) {
            done += used;
            pending--;
            if (r.type == RESP_ARRAY && r.integer > 0)
                pending += (size_t)r.integer;
            continue;
        }
        cr_assert_eq(rc, RESP_MORE, "not RESP: %.*s", (int)(have - done), buf + done);
        if (have == cap) {
            cap *= 2;
            buf = realloc(buf, cap);
            cr_assert_not_null(buf);
        }
        /* One byte at least, then whatever is there. */
        cr_assert(recv_all(fd, buf + have, 1, why, sizeof(why)), "%s", why);
        have++;
        ssize_t n = recv(fd, buf + have, cap - have, MSG_DONTWAIT);
        if (n > 0)
            have += (size_t)n;
    }
    cr_assert_eq(have, done, "bytes after the reply");
    buf = realloc(buf, done + 1);
    buf[done] = '\0';
    *len = done;
    return buf;
}

void h_send_cmd(int fd, size_t argc, const kvs_slice *argv)
{
    kvs_buf b = KVS_BUF_INIT;
    cr_assert_eq(resp_add_command(&b, argc, argv), 0);
    h_send(fd, b.data, b.len);
    kvs_buf_free(&b);
}

long long h_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void h_pause_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}
