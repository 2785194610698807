/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Replication's commands: PSYNC, SYNC, REPLCONF (what a replica sends its
 * primary), REPLICAOF and its alias SLAVEOF, ROLE, WAIT. Run on the
 * connection's worker thread; the work is repl*.c's.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "conn.h"
#include "repl_internal.h"
#include "reply.h"
#include "server.h"
#include "worker.h"

static struct repl *repl_of(struct conn *c)
{
    return c->w->srv->repl;
}

/* PSYNC replid offset */
void cmd_psync(struct conn *c, size_t argc, const kvs_slice *argv)
{
    (void)argc;
    long long offset;
    if (slice_to_ll(argv[2], &offset) != 0) {
        reply_error(c, "ERR value is not an integer or out of range");
        return;
    }
    char id[REPL_ID_LEN + 1];
    size_t len = argv[1].len < REPL_ID_LEN ? argv[1].len : REPL_ID_LEN;
    memcpy(id, argv[1].data, len);
    id[len] = '\0';
    repl_psync(c, id, offset, true);
}

/* SYNC: a full sync without the +FULLRESYNC line (redis-cli --replica). */
void cmd_sync(struct conn *c, size_t argc, const kvs_slice *argv)
{
    (void)argc;
    (void)argv;
    repl_psync(c, "?", -1, false);
}

void cmd_replconf(struct conn *c, size_t argc, const kvs_slice *argv)
{
    repl_replconf(c, argc, argv);
}

/* REPLICAOF host port | NO ONE (and SLAVEOF). */
void cmd_replicaof(struct conn *c, size_t argc, const kvs_slice *argv)
{
    (void)argc;
    struct repl *r = repl_of(c);
    char why[128] = "";
    if (slice_is(argv[1], "no") && slice_is(argv[2], "one")) {
        if (repl_set_primary(r, NULL, 0, why) != 0)
            reply_error(c, why);
        else
            reply_ok(c);
        return;
    }
    long long port;
    if (slice_to_ll(argv[2], &port) != 0 || port < 0 || port > 65535) {
        reply_error(c, "ERR Invalid master port");
        return;
    }
    char host[256];
    if (argv[1].len >= sizeof(host) || memchr(argv[1].data, '\0', argv[1].len)) {
        reply_error(c, "ERR Invalid master host");
        return;
    }
    memcpy(host, argv[1].data, argv[1].len);
    host[argv[1].len] = '\0';
    pthread_mutex_lock(&r->lock);
    bool same =
        repl_is_replica(r) && strcmp(r->master_host, host) == 0 && r->master_port == (unsigned)port;
    pthread_mutex_unlock(&r->lock);
    if (same) {
        reply_simple(c, "OK Already connected to specified master");
        return;
    }
    if (repl_set_primary(r, host, (unsigned)port, why) != 0)
        reply_error(c, why);
    else
        reply_ok(c);
}

struct role_ctx {
    struct conn *c;
    size_t n;
    bool count_only;
};

static void role_replica(void *ctx, const char *ip, unsigned port, uint64_t ack)
{
    struct role_ctx *rc = ctx;
    rc->n++;
    if (rc->count_only)
        return;
    char p[16], o[24];
    snprintf(p, sizeof(p), "%u", port);
    snprintf(o, sizeof(o), "%" PRIu64, ack);
    reply_array(rc->c, 3);
    reply_bulk_str(rc->c, ip);
    reply_bulk_str(rc->c, p);
    reply_bulk_str(rc->c, o);
}

/* ROLE: as Redis 7 answers it. */
void cmd_role(struct conn *c, size_t argc, const kvs_slice *argv)
{
    (void)argc;
    (void)argv;
    struct repl *r = repl_of(c);
    if (!repl_is_replica(r)) {
        struct role_ctx ctx = {c, 0, true};
        repl_each_replica(r, role_replica, &ctx);
        size_t n = ctx.n;
        reply_array(c, 3);
        reply_bulk_str(c, "master");
        reply_int(c, (long long)repl_offset(r));
        /* The count may change between the two walks: pad or cut. */
        reply_array(c, n);
        ctx = (struct role_ctx){c, 0, false};
        struct role_ctx counted = {c, 0, true};
        (void)counted;
        size_t before = c->out.len;
        repl_each_replica(r, role_replica, &ctx);
        if (ctx.n != n) {
            c->out.len = before;
            for (size_t i = 0; i < n; i++) {
                reply_array(c, 3);
                reply_bulk_str(c, "?");
                reply_bulk_str(c, "0");
                reply_bulk_str(c, "0");
            }
        }
        return;
    }
    int st = atomic_load(&r->link_state);
    const char *state = st == LINK_CONNECTING || st == LINK_BROKEN   ? "connect"
                        : st == LINK_HANDSHAKE                       ? "connecting"
                        : st == LINK_FULL_SYNC || st == LINK_LOADING ? "sync"
                                                                     : "connected";
    pthread_mutex_lock(&r->lock);
    char host[256];
    snprintf(host, sizeof(host), "%s", r->master_host);
    unsigned port = r->master_port;
    pthread_mutex_unlock(&r->lock);
    reply_array(c, 5);
    reply_bulk_str(c, "slave");
    reply_bulk_str(c, host);
    reply_int(c, port);
    reply_bulk_str(c, state);
    reply_int(c, st == LINK_STREAMING || st == LINK_CATCHING_UP ? (long long)repl_offset(r) : -1);
}

/* WAIT numreplicas timeout */
void cmd_wait(struct conn *c, size_t argc, const kvs_slice *argv)
{
    (void)argc;
    long long num, timeout;
    if (slice_to_ll(argv[1], &num) != 0 || slice_to_ll(argv[2], &timeout) != 0) {
        reply_error(c, "ERR value is not an integer or out of range");
        return;
    }
    if (timeout < 0) {
        reply_error(c, "ERR timeout is negative");
        return;
    }
    repl_wait(c, num, timeout);
}
