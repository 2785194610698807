/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Every connection of every worker, for the commands that look at or act
 * on other clients: CLIENT LIST, CLIENT INFO, CLIENT KILL (cmd_client.c)
 * and MONITOR (monitor.h).
 *
 * A connection joins the registry when it opens and leaves it, under the
 * registry's lock, before its socket is closed and its memory freed; so
 * whoever holds the lock may read a registered connection's fields that
 * never change (id, fd, addresses, creation time), its atomics, and its
 * name (set under the lock), and may shutdown() its socket. Its other
 * fields belong to its worker's thread: a CLIENT LIST shows them only for
 * the connections of its own worker. Any thread.
 */
#ifndef KVS_SERVER_CLIENTS_H
#define KVS_SERVER_CLIENTS_H

#include <stdbool.h>

#include "kvs/slice.h"

struct conn;

/* Register a new connection (conn_open) / remove it (conn_free). */
void clients_add(struct conn *c);
void clients_remove(struct conn *c);

/* Set c's name (CLIENT SETNAME, HELLO SETNAME): 0 or KVS_ENOMEM. c's
   worker thread. */
int clients_set_name(struct conn *c, kvs_slice name);

/* Whether another client asked for c to be closed (CLIENT KILL). */
bool clients_kill_requested(const struct conn *c);

/* Whether CLIENT PAUSE holds cmd back now. */
struct command;
bool clients_paused(const struct command *cmd);

#endif
