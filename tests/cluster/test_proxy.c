/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Every command twemproxy (nutcracker 0.5.0, Redis mode) forwards that
 * kvs has, sent through one nutcracker in front of three kvs-servers and
 * through another in front of three redis-servers: the replies must be
 * the same bytes (times within a tolerance). Both pools name their nodes
 * alike, so each key lands on the same node number on both sides, and the
 * multi-key commands that nutcracker splits by node (MGET, MSET, DEL,
 * UNLINK, EXISTS, TOUCH) are split alike. Then the same with a pool
 * password (redis_auth): clients AUTH to the proxy, which AUTHs to every
 * node.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "differential.h"

#define NODES 3

struct proxy {
    ts_server s;
    char dir[PATH_MAX];
};

/* nutcracker in front of the servers on ports, as deploy/twemproxy's
   file sets it up. */
static void proxy_start(struct proxy *p, const uint16_t ports[NODES], const char *password)
{
    cr_assert_eq(ts_tmpdir_make(p->dir), 0);
    uint16_t port = ts_free_port(NULL), stats = ts_free_port(NULL);
    cr_assert(port && stats && port != stats);
    char conf[PATH_MAX + 32], log[PATH_MAX + 32], pid[PATH_MAX + 32], stats_text[16];
    snprintf(conf, sizeof(conf), "%s/nutcracker.yml", p->dir);
    snprintf(log, sizeof(log), "%s/nutcracker.log", p->dir);
    snprintf(pid, sizeof(pid), "%s/nutcracker.pid", p->dir);
    snprintf(stats_text, sizeof(stats_text), "%u", (unsigned)stats);
    FILE *f = fopen(conf, "w");
    cr_assert(f);
    fprintf(f,
            "pool:\n  listen: 127.0.0.1:%u\n  redis: true\n  hash: fnv1a_64\n"
            "  distribution: ketama\n  auto_eject_hosts: false\n  timeout: 1000\n"
            "  server_connections: 1\n  preconnect: true\n",
            (unsigned)port);
    if (password)
        fprintf(f, "  redis_auth: %s\n", password);
    fprintf(f, "  servers:\n");
    for (int i = 0; i < NODES; i++)
        fprintf(f, "    - 127.0.0.1:%u:1 node-%d\n", (unsigned)ports[i], i + 1);
    fclose(f);
    const char *args[] = {"-c", conf,        "-o", log, "-s", stats_text,
                          "-a", "127.0.0.1", "-p", pid, NULL};
    ts_server_opts opts = {
        .binary = NUTCRACKER, .args = args, .no_addr = true, .port = port, .log_path = log};
    cr_assert_eq(ts_server_start(&p->s, &opts), TS_READY, "nutcracker did not start");
}

static void proxy_stop(struct proxy *p)
{
    ts_server_stop(&p->s, H_TIMEOUT_MS);
    ts_tmpdir_remove(p->dir);
}

/* A redis-server with no persistence and, if password, requirepass. */
static void redis_start(struct d_redis *r, const char *password)
{
    if (!password) {
        d_redis_start(r);
        return;
    }
    cr_assert_eq(ts_tmpdir_make(r->dir), 0);
    snprintf(r->log, sizeof(r->log), "%s/redis.log", r->dir);
    uint16_t port = ts_free_port(NULL);
    char port_text[16];
    snprintf(port_text, sizeof(port_text), "%u", (unsigned)port);
    const char *args[] = {"--port", port_text, "--bind",        "127.0.0.1", "--save",      "",
                          "--dir",  r->dir,    "--requirepass", password,    "--daemonize", "no",
                          NULL};
    ts_server_opts opts = {
        .binary = REDIS_SERVER, .args = args, .log_path = r->log, .no_addr = true, .port = port};
    cr_assert_eq(ts_server_start(&r->s, &opts), TS_READY, "redis-server did not start");
}

struct pools {
    struct h_server kvs[NODES];
    struct d_redis redis[NODES];
    struct proxy kproxy, rproxy;
    int kfd, rfd;
};

static void pools_start(struct pools *p, const char *password)
{
    uint16_t kports[NODES], rports[NODES];
    const char *auth[] = {"--requirepass", password, NULL};
    for (int i = 0; i < NODES; i++) {
        h_start(&p->kvs[i], "kvs", password ? auth : NULL);
        redis_start(&p->redis[i], password);
        kports[i] = p->kvs[i].s.port;
        rports[i] = p->redis[i].s.port;
    }
    proxy_start(&p->kproxy, kports, password);
    proxy_start(&p->rproxy, rports, password);
    p->kfd = d_connect_port(p->kproxy.s.port);
    p->rfd = d_connect_port(p->rproxy.s.port);
}

static void pools_stop(struct pools *p)
{
    close(p->kfd);
    close(p->rfd);
    proxy_stop(&p->kproxy);
    proxy_stop(&p->rproxy);
    for (int i = 0; i < NODES; i++) {
        h_stop(&p->kvs[i]);
        d_redis_stop(&p->redis[i]);
    }
}

static const struct dcmd script[] = {
    CMD(EXACT, S("PING")),
    /* GET and SET with each of its options. */
    CMD(EXACT, S("GET"), S("k1")),
    CMD(EXACT, S("SET"), S("k1"), S("v1")),
    CMD(EXACT, S("GET"), S("k1")),
    CMD(EXACT, S("SET"), S("k1"), S("v2"), S("NX")),
    CMD(EXACT, S("SET"), S("k1"), S("v2"), S("XX")),
    CMD(EXACT, S("SET"), S("k2"), S("v"), S("XX")),
    CMD(EXACT, S("SET"), S("k2"), S("v"), S("NX")),
    CMD(EXACT, S("SET"), S("k1"), S("v3"), S("GET")),
    CMD(EXACT, S("SET"), S("k1"), S("v4"), S("EX"), S("100")),
    CMD(NEAR_S, S("TTL"), S("k1")),
    CMD(EXACT, S("SET"), S("k1"), S("v5"), S("KEEPTTL")),
    CMD(NEAR_S, S("TTL"), S("k1")),
    CMD(EXACT, S("SET"), S("k1"), S("v6"), S("PX"), S("100000"), S("GET")),
    CMD(NEAR_MS, S("PTTL"), S("k1")),
    CMD(EXACT, S("SET"), S("k3"), S("v"), S("EXAT"), S("4102444800")),
    CMD(EXACT, S("SET"), S("k4"), S("v"), S("PXAT"), S("4102444800000")),
    CMD(EXACT, S("TTL"), S("k3")),
    CMD(EXACT, S("SET"), S("k1"), S("v"), S("EX"), S("0")),
    CMD(EXACT, S("SET"), S("k1"), S("v"), S("EX"), S("abc")),
    CMD(EXACT, S("SET"), S("k1"), S("v"), S("NX"), S("XX")),
    CMD(EXACT, S("SET"), S("k1"), S("v"), S("BOGUS")),
    CMD(EXACT, S("SET"), S("k1"), S("v"), S("KEEPTTL"), S("EX"), S("10")),
    CMD(EXACT, S("SET"), S("k1"), S("v7")),
    CMD(EXACT, S("TTL"), S("k1")),
    CMD(EXACT, S("SETEX"), S("k5"), S("100"), S("v")),
    CMD(EXACT, S("PSETEX"), S("k6"), S("100000"), S("v")),
    CMD(EXACT, S("SETEX"), S("k5"), S("-1"), S("v")),
    CMD(EXACT, S("GETEX"), S("k5"), S("PERSIST")),
    CMD(EXACT, S("TTL"), S("k5")),
    CMD(EXACT, S("EXPIRE"), S("k5"), S("100")),
    CMD(EXACT, S("PEXPIRE"), S("k5"), S("100000")),
    CMD(EXACT, S("EXPIREAT"), S("k6"), S("4102444800")),
    CMD(EXACT, S("PEXPIREAT"), S("k6"), S("4102444800000")),
    CMD(EXACT, S("PERSIST"), S("k6")),
    CMD(EXACT, S("PERSIST"), S("nosuch")),
    /* Keys spread over the nodes: the commands nutcracker splits. */
    CMD(EXACT, S("MSET"), S("a"), S("1"), S("b"), S("2"), S("c"), S("3"), S("d"), S("4"), S("e"),
        S("5"), S("f"), S("6")),
    CMD(EXACT, S("MGET"), S("a"), S("b"), S("nosuch"), S("c"), S("d"), S("e"), S("f"), S("a")),
    CMD(EXACT, S("EXISTS"), S("a"), S("b"), S("c"), S("nosuch"), S("a")),
    CMD(EXACT, S("TOUCH"), S("a"), S("b"), S("c"), S("nosuch")),
    CMD(EXACT, S("DEL"), S("a"), S("b"), S("nosuch")),
    CMD(EXACT, S("UNLINK"), S("c"), S("d"), S("nosuch")),
    CMD(EXACT, S("MGET"), S("a"), S("b"), S("c"), S("d"), S("e"), S("f")),
    /* STRLEN, TYPE, binary values. */
    CMD(EXACT, S("SET"), S("bin\0key"), S("a\0b\r\n")),
    CMD(EXACT, S("GET"), S("bin\0key")),
    CMD(EXACT, S("STRLEN"), S("bin\0key")),
    CMD(EXACT, S("STRLEN"), S("nosuch")),
    CMD(EXACT, S("TYPE"), S("bin\0key")),
    CMD(EXACT, S("TYPE"), S("nosuch")),
    CMD(EXACT, S("SET"), S(""), S("empty key")),
    CMD(EXACT, S("GET"), S("")),
    /* The string commands nutcracker forwards. */
    CMD(EXACT, S("SET"), S("s"), S("hello")),
    CMD(EXACT, S("APPEND"), S("s"), S(" world")),
    CMD(EXACT, S("APPEND"), S("s2"), S("new")),
    CMD(EXACT, S("GETRANGE"), S("s"), S("0"), S("4")),
    CMD(EXACT, S("GETRANGE"), S("s"), S("-5"), S("-1")),
    CMD(EXACT, S("SETRANGE"), S("s"), S("6"), S("WORLD")),
    CMD(EXACT, S("SETRANGE"), S("s3"), S("3"), S("x")),
    CMD(EXACT, S("GET"), S("s3")),
    CMD(EXACT, S("GETSET"), S("s"), S("next")),
    CMD(EXACT, S("GETDEL"), S("s")),
    CMD(EXACT, S("GETDEL"), S("s")),
    CMD(EXACT, S("SETNX"), S("s"), S("1")),
    CMD(EXACT, S("SETNX"), S("s"), S("2")),
    CMD(EXACT, S("INCR"), S("n")),
    CMD(EXACT, S("INCRBY"), S("n"), S("41")),
    CMD(EXACT, S("DECR"), S("n")),
    CMD(EXACT, S("DECRBY"), S("n"), S("-10")),
    CMD(EXACT, S("INCRBYFLOAT"), S("f"), S("1.5")),
    CMD(EXACT, S("INCRBYFLOAT"), S("f"), S("-0.25")),
    CMD(EXACT, S("INCR"), S("s2")),
    CMD(EXACT, S("INCRBY"), S("n"), S("9223372036854775807")),
    CMD(EXACT, S("SETBIT"), S("b"), S("7"), S("1")),
    CMD(EXACT, S("SETBIT"), S("b"), S("100"), S("1")),
    CMD(EXACT, S("GETBIT"), S("b"), S("7")),
    CMD(EXACT, S("GETBIT"), S("b"), S("8")),
    CMD(EXACT, S("BITCOUNT"), S("b")),
    CMD(EXACT, S("BITCOUNT"), S("b"), S("0"), S("0")),
    CMD(EXACT, S("BITPOS"), S("b"), S("1")),
    CMD(EXACT, S("BITPOS"), S("b"), S("0")),
    CMD(EXACT, S("SETBIT"), S("b"), S("1"), S("2")),
    /* (nutcracker closes the connection of a command whose argument
       count it does not expect: GET k extra, EXPIRE k, EXPIRE k t GT; so
       those never reach a node.) */
    CMD(EXACT, S("AUTH"), S("nopassword")),
    CMD(EXACT, S("GET"), S("k1")),
};

Test(proxy, same_as_redis, .timeout = 120)
{
    struct pools p;
    pools_start(&p, NULL);
    for (size_t i = 0; i < sizeof(script) / sizeof(script[0]); i++)
        d_run_one(p.kfd, p.rfd, &script[i]);
    pools_stop(&p);
}

static const struct dcmd auth_script[] = {
    CMD(EXACT, S("GET"), S("k")),
    CMD(EXACT, S("SET"), S("k"), S("v")),
    CMD(EXACT, S("AUTH"), S("wrong")),
    CMD(EXACT, S("GET"), S("k")),
    CMD(EXACT, S("AUTH"), S("secret")),
    CMD(EXACT, S("SET"), S("k"), S("v")),
    CMD(EXACT, S("GET"), S("k")),
    CMD(EXACT, S("MSET"), S("a"), S("1"), S("b"), S("2"), S("c"), S("3")),
    CMD(EXACT, S("MGET"), S("a"), S("b"), S("c"), S("k")),
    CMD(EXACT, S("DEL"), S("a"), S("b"), S("c")),
    CMD(EXACT, S("PING")),
};

Test(proxy, pool_password, .timeout = 120)
{
    struct pools p;
    pools_start(&p, "secret");
    for (size_t i = 0; i < sizeof(auth_script) / sizeof(auth_script[0]); i++)
        d_run_one(p.kfd, p.rfd, &auth_script[i]);
    pools_stop(&p);
}
