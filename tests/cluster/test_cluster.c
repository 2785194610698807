/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Three kvs-servers behind nutcracker, started by scripts/cluster: 10,000
 * keys written through the proxy are all readable through it, each lives
 * on exactly one node, and the nodes hold within 20% of a third each; a
 * node killed with SIGKILL makes its keys fail fast with an error through
 * the proxy while the others keep working, and once it is started again
 * its keys are back. Run on three kvs nodes and on a pool of mixed
 * engines (kvs, lmdb, mem). scripts/cluster stop must leave no process.
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <errno.h>
#include <hiredis/hiredis.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "harness.h"
#include "support/server.h"

#define NODES 3
#define KEYS 10000
/* Requests pipelined at once. */
#define CHUNK 500

struct cluster {
    char dir[PATH_MAX];
    char run[PATH_MAX + 16]; /* dir/run: scripts/cluster's run directory */
    int proxy_port;
    int port[NODES + 1]; /* by node number, 1-based */
    int pid[NODES + 1];
};

/* Run scripts/cluster ACTION [ARG] --dir; expects exit 0 and returns its
   stdout, malloc'd. */
static char *cluster_cmd(struct cluster *cl, const char *action, const char *arg)
{
    const char *argv[16] = {"bash", CLUSTER_SCRIPT, action};
    size_t n = 3;
    if (arg)
        argv[n++] = arg;
    argv[n++] = "--dir";
    argv[n++] = cl->run;
    ts_result r;
    int rc = ts_run(argv, NULL, 0, 60000, &r);
    cr_assert(rc == 0 && r.status == 0, "scripts/cluster %s %s: status %d\n%s%s", action,
              arg ? arg : "", r.status, r.out, r.err);
    char *out = strdup(r.out);
    ts_result_free(&r);
    return out;
}

/* PROXY_PORT, NODE_i_PORT and NODE_i_PID from the run's cluster.env. */
static void read_env(struct cluster *cl)
{
    char path[PATH_MAX + 32];
    snprintf(path, sizeof(path), "%s/cluster.env", cl->run);
    char *text = ts_read_file(path, NULL);
    cr_assert(text, "no %s", path);
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        int i, v;
        if (sscanf(line, "PROXY_PORT=%d", &v) == 1)
            cl->proxy_port = v;
        else if (sscanf(line, "NODE_%d_PORT=%d", &i, &v) == 2 && i >= 1 && i <= NODES)
            cl->port[i] = v;
        else if (sscanf(line, "NODE_%d_PID=%d", &i, &v) == 2 && i >= 1 && i <= NODES)
            cl->pid[i] = v;
    }
    free(text);
    cr_assert(cl->proxy_port > 0);
}

/* The running cluster, stopped by cleanup() if the test fails first. */
static struct cluster *running;

static void cleanup(void)
{
    if (!running)
        return;
    const char *argv[] = {"bash", CLUSTER_SCRIPT, "stop", "--dir", running->run, NULL};
    ts_result r;
    ts_run(argv, NULL, 0, 60000, &r);
    ts_result_free(&r);
    ts_tmpdir_remove(running->dir);
    running = NULL;
}

static void start(struct cluster *cl, const char *engines)
{
    cr_assert_eq(ts_tmpdir_make(cl->dir), 0);
    snprintf(cl->run, sizeof(cl->run), "%s/run", cl->dir);
    const char *argv[] = {"bash",     CLUSTER_SCRIPT,    "start", "3",
                          "--engine", engines,           "--dir", cl->run,
                          "--bin",    h_server_binary(), NULL};
    ts_result r;
    int rc = ts_run(argv, NULL, 0, 120000, &r);
    cr_assert(rc == 0 && r.status == 0, "scripts/cluster start: %s, status %d\n%s%s",
              rc ? strerror(errno) : "ran", r.status, r.out, r.err);
    /* It says where each listens. */
    cr_expect(strstr(r.out, "proxy ") && strstr(r.out, "node-1 ") && strstr(r.out, "node-3 "), "%s",
              r.out);
    ts_result_free(&r);
    running = cl;
    read_env(cl);
}

/* Whether pid runs (a zombie does not: it is waiting for its parent). */
static bool alive(int pid)
{
    char path[64], state = 'X';
    snprintf(path, sizeof(path), "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    if (fscanf(f, "%*d (%*[^)]) %c", &state) != 1)
        state = 'X';
    fclose(f);
    return state != 'Z' && state != 'X';
}

/* scripts/cluster stop, then no process it started may be left. */
static void stop(struct cluster *cl)
{
    free(cluster_cmd(cl, "stop", NULL));
    for (int i = 1; i <= NODES; i++)
        cr_expect(!alive(cl->pid[i]), "node-%d (pid %d) still runs", i, cl->pid[i]);
    ts_tmpdir_remove(cl->dir);
    running = NULL;
}

static redisContext *connect_port(int port)
{
    struct timeval tv = {10, 0};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", port, tv);
    cr_assert(c && !c->err, "connect to %d: %s", port, c ? c->errstr : "?");
    redisSetTimeout(c, tv);
    return c;
}

static void key_of(int i, char *out, size_t size)
{
    snprintf(out, size, "user:%d:name", i);
}

/* Pipeline "fmt key" for keys [0, KEYS) in chunks; check(i, reply) for
   each reply. */
typedef void check_fn(int i, redisReply *r, void *arg);
static void each_key(redisContext *c, const char *cmd, check_fn *check, void *arg)
{
    for (int base = 0; base < KEYS; base += CHUNK) {
        for (int i = base; i < base + CHUNK && i < KEYS; i++) {
            char key[32];
            key_of(i, key, sizeof(key));
            if (strcmp(cmd, "SET") == 0)
                redisAppendCommand(c, "SET %s value-%d", key, i);
            else
                redisAppendCommand(c, "%s %s", cmd, key);
        }
        for (int i = base; i < base + CHUNK && i < KEYS; i++) {
            redisReply *r;
            cr_assert_eq(redisGetReply(c, (void **)&r), REDIS_OK, "%s: %s", cmd, c->errstr);
            check(i, r, arg);
            freeReplyObject(r);
        }
    }
}

static void expect_ok(int i, redisReply *r, void *arg)
{
    (void)arg;
    cr_assert(r->type == REDIS_REPLY_STATUS && strcmp(r->str, "OK") == 0, "SET %d: %d %s", i,
              r->type, r->str ? r->str : "");
}

static void expect_value(int i, redisReply *r, void *arg)
{
    (void)arg;
    char want[32];
    snprintf(want, sizeof(want), "value-%d", i);
    cr_assert(r->type == REDIS_REPLY_STRING && strcmp(r->str, want) == 0, "GET key %d: %d %s", i,
              r->type, r->str ? r->str : "");
}

/* owner[i]: the node holding key i; one EXISTS pass per node. */
struct owners {
    int node;
    int owner[KEYS];
    int count[NODES + 1];
};

static void note_owner(int i, redisReply *r, void *arg)
{
    struct owners *o = arg;
    cr_assert_eq(r->type, REDIS_REPLY_INTEGER);
    if (r->integer != 1)
        return;
    cr_assert_eq(o->owner[i], 0, "key %d is on node-%d and node-%d", i, o->owner[i], o->node);
    o->owner[i] = o->node;
    o->count[o->node]++;
}

/* Through the proxy while node dead is down: its keys answer an error,
   each within the deadline; every other key its value. */
struct while_down {
    const struct owners *o;
    int dead;
    int errors;
};

static void check_while_down(int i, redisReply *r, void *arg)
{
    struct while_down *wd = arg;
    if (wd->o->owner[i] == wd->dead) {
        cr_assert_eq(r->type, REDIS_REPLY_ERROR, "GET key %d on the dead node: type %d", i,
                     r->type);
        wd->errors++;
    } else {
        expect_value(i, r, NULL);
    }
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* No pointers: Criterion copies parameters into each test's process. */
struct pool {
    char engines[32];
    int victim; /* the node to kill: one whose engine keeps what it acknowledged */
};

ParameterizedTestParameters(cluster, three_nodes)
{
    static struct pool pools[] = {{"kvs", 2}, {"kvs,lmdb,mem", 2}};
    return cr_make_param_array(struct pool, pools, sizeof(pools) / sizeof(pools[0]));
}

ParameterizedTest(struct pool *p, cluster, three_nodes, .timeout = 240, .fini = cleanup)
{
    struct cluster cl = {0};
    start(&cl, p->engines);
    redisContext *proxy = connect_port(cl.proxy_port);

    each_key(proxy, "SET", expect_ok, NULL);
    each_key(proxy, "GET", expect_value, NULL);

    /* Each key on exactly one node, and about a third on each. */
    static struct owners o;
    memset(&o, 0, sizeof(o));
    for (int n = 1; n <= NODES; n++) {
        redisContext *c = connect_port(cl.port[n]);
        o.node = n;
        each_key(c, "EXISTS", note_owner, &o);
        redisReply *r = redisCommand(c, "DBSIZE");
        cr_assert(r && r->type == REDIS_REPLY_INTEGER);
        cr_expect_eq(r->integer, o.count[n], "node-%d: DBSIZE %lld, %d keys found", n, r->integer,
                     o.count[n]);
        freeReplyObject(r);
        redisFree(c);
    }
    int total = 0;
    for (int n = 1; n <= NODES; n++) {
        total += o.count[n];
        cr_expect(o.count[n] >= KEYS / NODES * 8 / 10 && o.count[n] <= KEYS / NODES * 12 / 10,
                  "node-%d holds %d of %d keys: beyond 20%% of even", n, o.count[n], KEYS);
    }
    cr_expect_eq(total, KEYS, "keys on no node: %d", KEYS - total);

    /* status: each node's keys and time per command. */
    char *status = cluster_cmd(&cl, "status", NULL);
    for (int n = 1; n <= NODES; n++) {
        char want[64];
        snprintf(want, sizeof(want), "keys %d", o.count[n]);
        cr_expect(strstr(status, want), "no '%s' in:\n%s", want, status);
    }
    cr_expect(strstr(status, "get ") && strstr(status, " us ("), "%s", status);
    free(status);

    /* A node killed: its keys fail fast, the others work. */
    char victim[16];
    snprintf(victim, sizeof(victim), "%d", p->victim);
    free(cluster_cmd(&cl, "kill", victim));
    struct while_down wd = {&o, p->victim, 0};
    double t0 = now_s();
    each_key(proxy, "GET", check_while_down, &wd);
    double took = now_s() - t0;
    cr_expect_eq(wd.errors, o.count[p->victim]);
    /* Connection refused is immediate: far under nutcracker's 1 s timeout
       even for all of them. */
    cr_expect_lt(took, 5.0, "10,000 GETs with a node down took %.2f s", took);
    int dead_key = -1;
    for (int i = 0; i < KEYS && dead_key < 0; i++) {
        if (o.owner[i] == p->victim)
            dead_key = i;
    }
    char key[32];
    key_of(dead_key, key, sizeof(key));
    t0 = now_s();
    redisReply *r = redisCommand(proxy, "GET %s", key);
    took = now_s() - t0;
    cr_assert(r && r->type == REDIS_REPLY_ERROR);
    cr_expect_lt(took, 0.5, "GET of a key of the dead node took %.3f s", took);
    freeReplyObject(r);
    /* Writes to the live nodes' keys work. */
    int live_key = 0;
    while (o.owner[live_key] == p->victim)
        live_key++;
    char live[32];
    key_of(live_key, live, sizeof(live));
    r = redisCommand(proxy, "SET %s value-%d", live, live_key);
    cr_assert(r);
    cr_expect(r->type == REDIS_REPLY_STATUS, "SET %s with a node down: %s", live,
              r->str ? r->str : "?");
    freeReplyObject(r);

    /* Started again: every key is back through the proxy. */
    free(cluster_cmd(&cl, "restart", victim));
    /* nutcracker connects again at the first request that needs it. */
    double deadline = now_s() + 10;
    for (;;) {
        r = redisCommand(proxy, "GET %s", key);
        cr_assert(r);
        bool ok = r->type == REDIS_REPLY_STRING;
        freeReplyObject(r);
        if (ok || now_s() > deadline)
            break;
        struct timespec ms = {0, 20000000};
        nanosleep(&ms, NULL);
    }
    each_key(proxy, "GET", expect_value, NULL);

    redisFree(proxy);
    stop(&cl);
}
