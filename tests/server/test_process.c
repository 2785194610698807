/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * kvs-server as a process in service: --logfile (reopened on SIGHUP) and
 * --pidfile, readiness told to systemd over $NOTIFY_SOCKET, the port
 * answering -LOADING while a slow store opens (and the connections made
 * then served afterwards, AUTH kept), "loaded N keys" at open, INFO
 * persistence's figures, and protected mode end to end over RESP in a
 * network namespace of the test's own.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <hiredis/hiredis.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct ps {
    ts_server s;
    char dir[PATH_MAX];
    char data[PATH_MAX + 16];
    char log[PATH_MAX + 16];
    char addr[64];
    uint16_t port;
};

/* kvs-server --addr ADDR:PORT --dir DIR/data [extra...], its stderr in DIR/out. */
static int ps_start(struct ps *p, const char *host, const char *const *extra)
{
    if (!p->dir[0])
        cr_assert_eq(ts_tmpdir_make(p->dir), 0);
    snprintf(p->data, sizeof(p->data), "%s/data", p->dir);
    snprintf(p->log, sizeof(p->log), "%s/out", p->dir);
    if (!p->port)
        p->port = ts_free_port(NULL);
    snprintf(p->addr, sizeof(p->addr), "%s:%u", host ? host : "127.0.0.1", (unsigned)p->port);
    const char *args[24] = {"--addr", p->addr, "--dir", p->data};
    size_t n = 4;
    for (size_t i = 0; extra && extra[i]; i++)
        args[n++] = extra[i];
    args[n] = NULL;
    ts_server_opts o = {.binary = h_server_binary(),
                        .args = args,
                        .log_path = p->log,
                        .no_addr = true,
                        .port = p->port};
    return ts_server_start(&p->s, &o);
}

static char *slurp(const char *path)
{
    char *t = ts_read_file(path, NULL);
    return t ? t : strdup("");
}

/* Wait until path holds text. */
static bool file_has(const char *path, const char *text)
{
    long long deadline = now_ms() + H_TIMEOUT_MS;
    while (now_ms() < deadline) {
        char *t = ts_read_file(path, NULL);
        bool found = t && strstr(t, text);
        free(t);
        if (found)
            return true;
        poll(NULL, 0, 20);
    }
    return false;
}

Test(process, logfile_pidfile_and_sighup, .timeout = 60)
{
    struct ps p = {0};
    cr_assert_eq(ts_tmpdir_make(p.dir), 0);
    char logfile[PATH_MAX + 16], pidfile[PATH_MAX + 16], rotated[PATH_MAX + 16];
    snprintf(logfile, sizeof(logfile), "%s/kvs.log", p.dir);
    snprintf(pidfile, sizeof(pidfile), "%s/kvs.pid", p.dir);
    snprintf(rotated, sizeof(rotated), "%s/kvs.log.1", p.dir);
    const char *extra[] = {"--logfile", logfile, "--pidfile", pidfile, NULL};
    cr_assert_eq(ps_start(&p, NULL, extra), TS_READY);
    cr_assert(file_has(logfile, " ready: engine kvs"));
    char *pid = slurp(pidfile);
    cr_expect_eq(atoi(pid), p.s.pid, "pidfile holds '%s'", pid);
    free(pid);
    /* Rotation: the file is renamed, SIGHUP opens a new one. */
    cr_assert_eq(rename(logfile, rotated), 0);
    cr_assert_eq(kill(p.s.pid, SIGHUP), 0);
    cr_expect(file_has(logfile, "received SIGHUP; log file"), "no new log file after SIGHUP");
    cr_expect_eq(ts_server_stop(&p.s, H_TIMEOUT_MS), 0);
    char *after = slurp(logfile);
    cr_expect(strstr(after, "store closed; exiting"), "%s", after);
    free(after);
    char *old = slurp(rotated);
    cr_expect(!strstr(old, "store closed"), "the rotated file was still written: %s", old);
    free(old);
    struct stat st;
    cr_expect_neq(stat(pidfile, &st), 0, "the pidfile is left after a clean stop");
    char *out = slurp(p.log);
    cr_expect(!strstr(out, "ready"), "stderr got log lines: %s", out);
    free(out);
    ts_tmpdir_remove(p.dir);
}

/* The messages sent to $NOTIFY_SOCKET, as systemd would read them. */
static bool notified(int fd, const char *text, char *all, size_t size)
{
    long long deadline = now_ms() + H_TIMEOUT_MS;
    size_t used = strlen(all);
    while (now_ms() < deadline) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        if (poll(&pfd, 1, 100) <= 0)
            continue;
        ssize_t n = recv(fd, all + used, size - used - 1, 0);
        if (n > 0) {
            used += (size_t)n;
            all[used++] = '|';
            all[used] = '\0';
        }
        if (strstr(all, text))
            return true;
    }
    return false;
}

Test(process, sd_notify_readiness, .timeout = 60)
{
    struct ps p = {0};
    cr_assert_eq(ts_tmpdir_make(p.dir), 0);
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    cr_assert_lt(strlen(p.dir) + 8, sizeof(sun.sun_path));
    memcpy(sun.sun_path, p.dir, strlen(p.dir));
    memcpy(sun.sun_path + strlen(p.dir), "/notify", 8);
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    cr_assert_geq(fd, 0);
    cr_assert_eq(bind(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
    setenv("NOTIFY_SOCKET", sun.sun_path, 1);
    cr_assert_eq(ps_start(&p, NULL, NULL), TS_READY);
    unsetenv("NOTIFY_SOCKET");
    char all[4096] = "";
    cr_expect(notified(fd, "READY=1", all, sizeof(all)), "no READY=1: %s", all);
    cr_expect(strstr(all, "STATUS=serving kvs on 127.0.0.1:"), "%s", all);
    cr_expect_eq(ts_server_stop(&p.s, H_TIMEOUT_MS), 0);
    cr_expect(notified(fd, "STOPPING=1", all, sizeof(all)), "no STOPPING=1: %s", all);
    close(fd);
    ts_tmpdir_remove(p.dir);
}

static redisReply *cmd(redisContext *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(c, fmt, ap);
    va_end(ap);
    cr_assert_not_null(r, "%s: %s", fmt, c->errstr);
    return r;
}

/* A slow open (made slow on purpose): the port answers -LOADING, INFO
   shows the load, and the connection is served once the store is open. */
Test(process, loading, .timeout = 60)
{
    struct ps p = {0};
    const char *pass[] = {"--requirepass", "pw", NULL};
    cr_assert_eq(ps_start(&p, NULL, pass), TS_READY);
    redisContext *c = redisConnect("127.0.0.1", p.port);
    cr_assert(c && !c->err);
    freeReplyObject(cmd(c, "AUTH pw"));
    for (int i = 0; i < 100; i++)
        freeReplyObject(cmd(c, "SET key:%d %d", i, i));
    redisFree(c);
    cr_assert_eq(ts_server_stop(&p.s, H_TIMEOUT_MS), 0);

    setenv("KVS_TEST_LOADING_DELAY_MS", "2500", 1);
    cr_assert_eq(ps_start(&p, NULL, pass), TS_READY);
    unsetenv("KVS_TEST_LOADING_DELAY_MS");
    c = redisConnect("127.0.0.1", p.port);
    cr_assert(c && !c->err);
    redisReply *r = cmd(c, "PING");
    cr_expect(r->type == REDIS_REPLY_ERROR &&
                  strcmp(r->str, "LOADING Redis is loading the dataset in memory") == 0,
              "%s", r->str);
    freeReplyObject(r);
    r = cmd(c, "INFO");
    cr_expect(r->type == REDIS_REPLY_ERROR && strncmp(r->str, "NOAUTH", 6) == 0, "%s", r->str);
    freeReplyObject(r);
    r = cmd(c, "AUTH pw");
    cr_expect(r->type == REDIS_REPLY_STATUS, "%s", r->str);
    freeReplyObject(r);
    r = cmd(c, "INFO persistence");
    cr_assert_eq(r->type, REDIS_REPLY_STRING);
    cr_expect(strstr(r->str, "loading:1\r\n") && strstr(r->str, "loading_total_bytes:") &&
                  strstr(r->str, "loading_loaded_perc:") && strstr(r->str, "loading_eta_seconds:"),
              "%s", r->str);
    freeReplyObject(r);
    /* The same connection, once the store is open: served, still
       authenticated. */
    long long deadline = now_ms() + H_TIMEOUT_MS;
    bool served = false;
    while (!served && now_ms() < deadline) {
        r = cmd(c, "GET key:7");
        served = r->type == REDIS_REPLY_STRING && strcmp(r->str, "7") == 0;
        if (!served)
            cr_assert(r->type == REDIS_REPLY_ERROR && strncmp(r->str, "LOADING", 7) == 0, "%s",
                      r->type == REDIS_REPLY_ERROR ? r->str : "?");
        freeReplyObject(r);
        if (!served)
            poll(NULL, 0, 50);
    }
    cr_expect(served, "never served after loading");
    r = cmd(c, "INFO persistence");
    cr_expect(strstr(r->str, "loading:0\r\n") && strstr(r->str, "store_read_only:0\r\n") &&
                  strstr(r->str, "aof_last_write_status:ok\r\n"),
              "%s", r->str);
    freeReplyObject(r);
    redisFree(c);
    cr_expect_eq(ts_server_stop(&p.s, H_TIMEOUT_MS), 0);
    char *log = slurp(p.log);
    cr_expect(strstr(log, "clients get -LOADING until it is open"), "%s", log);
    cr_expect(strstr(log, "loaded 100 keys from "), "%s", log);
    free(log);
    ts_tmpdir_remove(p.dir);
}

/* Protected mode needs a peer that is not loopback: a network namespace
   of the test's own (root only; skipped elsewhere) whose loopback
   interface gets a second address, so that no traffic leaves it. */
static bool private_network(const char *addr_cidr)
{
    if (unshare(CLONE_NEWNET) != 0)
        return false;
    char cmdline[256];
    snprintf(cmdline, sizeof(cmdline), "ip link set lo up && ip addr add %s dev lo", addr_cidr);
    return system(cmdline) == 0;
}

/* A connection to port from 10.203.0.2, not loopback. */
static int connect_from_outside(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in from = {.sin_family = AF_INET}, to = {.sin_family = AF_INET};
    inet_pton(AF_INET, "10.203.0.2", &from.sin_addr);
    inet_pton(AF_INET, "10.203.0.2", &to.sin_addr);
    to.sin_port = htons(port);
    cr_assert_eq(bind(fd, (struct sockaddr *)&from, sizeof(from)), 0);
    cr_assert_eq(connect(fd, (struct sockaddr *)&to, sizeof(to)), 0);
    return fd;
}

Test(process, protected_mode_resp, .timeout = 60)
{
    if (!private_network("10.203.0.2/32"))
        cr_skip_test("cannot make a network namespace here (needs root and iproute2)");
    struct ps p = {0};
    cr_assert_eq(ps_start(&p, "0.0.0.0", NULL), TS_READY);
    /* No password: the outside peer gets Redis's DENIED text, then EOF. */
    int fd = connect_from_outside(p.port);
    h_send(fd, "PING\r\n", 6);
    char buf[2048];
    size_t got = 0;
    for (;;) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        cr_assert_gt(poll(&pfd, 1, H_TIMEOUT_MS), 0);
        ssize_t n = recv(fd, buf + got, sizeof(buf) - 1 - got, 0);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    buf[got] = '\0';
    static const char denied[] = "-DENIED kvs is running in protected mode because protected "
                                 "mode is enabled and no password is set for the default user.";
    cr_expect(strncmp(buf, denied, sizeof(denied) - 1) == 0, "%s", buf);
    close(fd);
    /* A loopback client sets a password: the outside peer is served once
       it gives it. */
    redisContext *c = redisConnect("127.0.0.1", p.port);
    cr_assert(c && !c->err);
    freeReplyObject(cmd(c, "CONFIG SET requirepass s3cret"));
    redisFree(c);
    fd = connect_from_outside(p.port);
    H_ROUNDTRIP(fd, "PING\r\n", "-NOAUTH Authentication required.\r\n");
    H_ROUNDTRIP(fd, "AUTH s3cret\r\n", "+OK\r\n");
    H_ROUNDTRIP(fd, "PING\r\n", "+PONG\r\n");
    close(fd);
    cr_expect_eq(ts_server_stop(&p.s, H_TIMEOUT_MS), 0);
    ts_tmpdir_remove(p.dir);
}
