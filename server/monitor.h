/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * MONITOR: clients that see every command every other client runs, on
 * any worker, as redis-server prints them:
 *   +1700000000.123456 [0 127.0.0.1:50000] "set" "k" "v"
 *
 * A monitoring connection owns a mailbox (a buffer under its own mutex)
 * and a pipe its worker's event loop watches. monitor_feed(), on the
 * worker that ran the command, appends the line to every mailbox and
 * writes a byte to the pipes that were empty; the monitor's worker moves
 * the mailbox into the connection's output and writes it. With no
 * monitor, monitor_any() is one relaxed load. Administrative commands are
 * not shown, and AUTH's and HELLO AUTH's secrets are "(redacted)", as in
 * Redis.
 */
#ifndef KVS_SERVER_MONITOR_H
#define KVS_SERVER_MONITOR_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "kvs/slice.h"

struct conn;

extern _Atomic unsigned monitor_count;

static inline bool monitor_any(void)
{
    return atomic_load_explicit(&monitor_count, memory_order_relaxed) != 0;
}

/* Show c's command to every monitor but c. c's worker thread. */
void monitor_feed(struct conn *c, size_t argc, const kvs_slice *argv);

/* Stop monitoring (RESET, conn_free); nothing if c does not. */
void monitor_conn_free(struct conn *c);

#endif
