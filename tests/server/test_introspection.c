/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Looking at and acting on other clients (issue 17): CLIENT LIST, CLIENT
 * KILL, CLIENT REPLY, MONITOR and INFO's cpu and errorstats, with the
 * clients on different worker threads, on every engine.
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

#define ENGINE_TEST(name)                                                                          \
    ParameterizedTestParameters(introspection, name)                                               \
    {                                                                                              \
        H_ENGINE_PARAMS;                                                                           \
    }                                                                                              \
    ParameterizedTest(struct ts_engine_param *engine, introspection, name, .timeout = 60)

static redisContext *connect_to(struct h_server *h)
{
    struct timeval tv = {10, 0};
    redisContext *rc = redisConnectWithTimeout("127.0.0.1", h->s.port, tv);
    cr_assert(rc && !rc->err, "connect: %s", rc ? rc->errstr : "out of memory");
    redisSetTimeout(rc, tv);
    return rc;
}

static redisReply *command(redisContext *rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(rc, fmt, ap);
    va_end(ap);
    cr_assert(r, "%s: %s", fmt, rc->errstr);
    return r;
}

static long long id_of(redisContext *rc)
{
    redisReply *r = command(rc, "CLIENT ID");
    long long id = r->integer;
    freeReplyObject(r);
    return id;
}

ENGINE_TEST(client_list_and_kill_across_workers)
{
    struct h_server h;
    const char *extra[] = {"--threads", "2", NULL};
    h_start(&h, engine->name, extra);
    redisContext *a = connect_to(&h), *b = connect_to(&h);
    redisReply *r = command(b, "CLIENT SETNAME bee");
    freeReplyObject(r);
    long long bid = id_of(b);
    r = command(a, "CLIENT LIST");
    cr_assert_eq(r->type, REDIS_REPLY_STRING);
    char want[64];
    snprintf(want, sizeof(want), "id=%lld ", bid);
    cr_expect(strstr(r->str, want) && strstr(r->str, "name=bee "), "%s", r->str);
    cr_expect(strstr(r->str, "cmd=client|list "), "%s", r->str);
    freeReplyObject(r);
    r = command(a, "CLIENT INFO");
    cr_expect(strstr(r->str, "flags=N ") && strstr(r->str, "multi=-1 "), "%s", r->str);
    freeReplyObject(r);
    r = command(a, "CLIENT KILL ID %lld", bid);
    cr_expect_eq(r->integer, 1);
    freeReplyObject(r);
    /* b is closed by its worker. */
    redisReply *gone = redisCommand(b, "PING");
    cr_expect(gone == NULL, "the killed client still answered");
    if (gone)
        freeReplyObject(gone);
    r = command(a, "CLIENT KILL 1.2.3.4:5");
    cr_expect_str_eq(r->str, "ERR No such client");
    freeReplyObject(r);
    redisFree(b);
    redisFree(a);
    h_stop(&h);
}

ENGINE_TEST(client_reply_off_skip_on)
{
    struct h_server h;
    h_start(&h, engine->name, NULL);
    int fd = h_connect(&h);
    /* Nothing for OFF, the SET (a batched write) and PING; OK for ON;
       SKIP drops the next reply only. */
    H_ROUNDTRIP(fd,
                "CLIENT REPLY OFF\r\nSET k v\r\nPING\r\nCLIENT REPLY ON\r\n"
                "CLIENT REPLY SKIP\r\nGET k\r\nGET k\r\n",
                "+OK\r\n$1\r\nv\r\n");
    close(fd);
    h_stop(&h);
}

ENGINE_TEST(monitor_sees_other_workers)
{
    struct h_server h;
    const char *extra[] = {"--threads", "2", NULL};
    h_start(&h, engine->name, extra);
    redisContext *m = connect_to(&h), *a = connect_to(&h), *b = connect_to(&h);
    redisReply *r = command(m, "MONITOR");
    cr_expect_str_eq(r->str, "OK");
    freeReplyObject(r);
    freeReplyObject(command(a, "set %s %s", "k 1", "v\n"));
    freeReplyObject(command(b, "auth secret"));
    freeReplyObject(command(b, "get k"));
    const char *want[] = {"\"set\" \"k 1\" \"v\\n\"", "\"auth\" \"(redacted)\"", "\"get\" \"k\""};
    for (int i = 0; i < 3; i++) {
        void *p;
        cr_assert_eq(redisGetReply(m, &p), REDIS_OK);
        r = p;
        cr_assert_eq(r->type, REDIS_REPLY_STATUS);
        cr_expect(strstr(r->str, want[i]) && strstr(r->str, " [0 127.0.0.1:"), "%s", r->str);
        freeReplyObject(r);
    }
    redisFree(m);
    redisFree(a);
    redisFree(b);
    h_stop(&h);
}

ENGINE_TEST(info_cpu_and_errorstats)
{
    struct h_server h;
    h_start(&h, engine->name, NULL);
    redisContext *a = connect_to(&h);
    freeReplyObject(command(a, "NOSUCHCOMMAND"));
    freeReplyObject(command(a, "GET"));
    freeReplyObject(command(a, "AUTH x y"));
    redisReply *r = command(a, "INFO everything");
    cr_assert_eq(r->type, REDIS_REPLY_STRING);
    cr_expect(strstr(r->str, "# CPU\r\nused_cpu_sys:"), "%s", r->str);
    cr_expect(strstr(r->str, "errorstat_ERR:count=2\r\n"), "%s", r->str);
    cr_expect(strstr(r->str, "errorstat_WRONGPASS:count=1\r\n"), "%s", r->str);
    cr_expect(strstr(r->str, "total_error_replies:3\r\n"), "%s", r->str);
    freeReplyObject(r);
    r = command(a, "INFO keyspace");
    freeReplyObject(r);
    redisFree(a);
    h_stop(&h);
}
