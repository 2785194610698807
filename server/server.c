/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The server-wide helpers of server.h: counters and the stop request.
 * Called from any thread.
 */
#include "server.h"

#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "cmdstats.h"
#include "worker.h"

/* Totals since startup, summed over the workers' single-writer counters. */
static void stats_totals(struct server *srv, struct server_stats_base *t)
{
    memset(t, 0, sizeof(*t));
    for (unsigned i = 0; i < srv->nworkers; i++) {
        const struct server_stats *s = &srv->workers[i].stats;
        t->connections += atomic_load_explicit(&s->connections, memory_order_relaxed);
        t->commands += atomic_load_explicit(&s->commands, memory_order_relaxed);
        t->net_in += atomic_load_explicit(&s->net_in, memory_order_relaxed);
        t->net_out += atomic_load_explicit(&s->net_out, memory_order_relaxed);
        t->hits += atomic_load_explicit(&s->hits, memory_order_relaxed);
        t->misses += atomic_load_explicit(&s->misses, memory_order_relaxed);
        t->expired += atomic_load_explicit(&s->expired, memory_order_relaxed);
    }
    t->rejected = atomic_load_explicit(&srv->listener_stats.rejected, memory_order_relaxed);
    t->expired += atomic_load_explicit(&srv->expirer.expired, memory_order_relaxed);
    t->expire_cycle_us = atomic_load_explicit(&srv->expirer.cycle_us, memory_order_relaxed);
    t->expire_time_capped = atomic_load_explicit(&srv->expirer.time_capped, memory_order_relaxed);
}

void server_stats_read(struct server *srv, struct server_stats_base *out)
{
    struct server_stats_base t;
    stats_totals(srv, &t);
    pthread_mutex_lock(&srv->stats_lock);
    const struct server_stats_base *b = &srv->stats_base;
    out->connections = t.connections - b->connections;
    out->commands = t.commands - b->commands;
    out->net_in = t.net_in - b->net_in;
    out->net_out = t.net_out - b->net_out;
    out->hits = t.hits - b->hits;
    out->misses = t.misses - b->misses;
    out->rejected = t.rejected - b->rejected;
    out->expired = t.expired - b->expired;
    out->expire_cycle_us = t.expire_cycle_us - b->expire_cycle_us;
    out->expire_time_capped = t.expire_time_capped - b->expire_time_capped;
    pthread_mutex_unlock(&srv->stats_lock);
}

void server_stats_reset(struct server *srv)
{
    struct server_stats_base t;
    stats_totals(srv, &t);
    pthread_mutex_lock(&srv->stats_lock);
    srv->stats_base = t;
    pthread_mutex_unlock(&srv->stats_lock);
    expirer_reset_stale(&srv->expirer);
    cmdstats_reset(srv);
}

/* The same path as a SIGTERM from outside: the main thread's signal event
   (the workers block signals, so it is the main thread that takes it). */
void server_request_stop(struct server *srv)
{
    (void)srv;
    kill(getpid(), SIGTERM);
}
