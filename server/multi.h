/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * MULTI/EXEC/DISCARD/WATCH/UNWATCH (cmd_multi.c): a connection's queue of
 * commands and the keys it watches, and how EXEC runs them.
 *
 * Between MULTI and EXEC the dispatcher (commands.c) hands every command
 * but EXEC, DISCARD, MULTI, WATCH and QUIT to multi_queue(), which copies
 * it and answers +QUEUED; an unknown command, a wrong count or a command
 * refused inside MULTI answers its error and marks the transaction
 * (multi_flag), so that EXEC answers EXECABORT. A connection in MULTI
 * batches no write (conn.c).
 *
 * EXEC takes a transaction (store_txn.h) over every key its commands name
 * (the command table's key positions) and every key the client watches,
 * checks the watched keys under those locks, then runs the commands one
 * after the other with the worker's txn set: their reads and writes go to
 * the transaction (keyspace.h), batched writes are applied to it at once
 * (multi_batch_add), and the transaction is committed as one batch before
 * the reply leaves. Worker thread of the connection.
 */
#ifndef KVS_SERVER_MULTI_H
#define KVS_SERVER_MULTI_H

#include <stdbool.h>
#include <stddef.h>

#include "kvs/kvs.h"
#include "worker.h"

struct conn;
struct command;

/* Whether c is between MULTI and EXEC/DISCARD. */
bool multi_active(const struct conn *c);

/* A command of c was refused while c is in MULTI: EXEC will abort. */
void multi_flag(struct conn *c);

/* In MULTI: queue cmd and answer QUEUED (or refuse it), returning true;
   false for a command that runs now (EXEC, DISCARD, MULTI, WATCH, QUIT)
   or when c is not in MULTI. */
bool multi_queue(struct conn *c, const struct command *cmd, size_t argc, const kvs_slice *argv);

/* Drop c's queue and watched keys (RESET). */
void multi_reset(struct conn *c);

/* Free c's queue and watched keys (conn_free). */
void multi_conn_free(struct conn *c);

/* worker_batch_add() while EXEC runs: the ops are applied to the
   transaction once the command's handler returns, and done() called. */
kvs_op *multi_batch_add(struct worker *w, struct conn *c, batch_done_fn *done, size_t nops,
                        int err);

#endif
