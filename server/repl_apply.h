/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A replica's applying of its primary's command stream to its store.
 *
 * A kvs primary sends only effects (SET with an absolute time, DEL,
 * PEXPIREAT, PERSIST, FLUSHALL, MULTI/EXEC around transactions). A Redis
 * primary also sends the string commands its clients typed (INCR, APPEND,
 * SETRANGE, SETBIT, SETNX, MSETNX, RENAME, COPY, BITOP...): they are
 * applied with the same code as kvs's own commands (string_ops.h), so the
 * copy stays equal to the primary's. Consecutive plain writes (SET, MSET,
 * DEL...) are gathered into one store_write_batch(); anything that reads a
 * key first flushes the gathered ones before it.
 *
 * What the replica cannot hold (another data type, another database than
 * 0) is refused rather than skipped: repl_apply() returns KVS_ENOTSUP and
 * logs what and why; the link breaks before the command counts as applied,
 * so the replica's offset stays at the last command it holds, and its
 * INFO shows the link down instead of a copy that silently diverges.
 *
 * One applier per link, used by the replica's thread only. The ops
 * gathered point into the caller's parsed arguments: the caller keeps
 * those until repl_apply_flush() (repl_apply_pending() says whether any
 * are waiting).
 */
#ifndef KVS_SERVER_REPL_APPLY_H
#define KVS_SERVER_REPL_APPLY_H

#include <stdbool.h>
#include <stddef.h>

#include "kvs/kvs.h"
#include "store.h"

struct repl_applier;

/* A new applier over st (borrowed), or NULL without memory. */
struct repl_applier *repl_applier_new(struct store *st);
void repl_applier_free(struct repl_applier *a);

/* Apply one command (argc >= 1). Returns 0; KVS_ENOTSUP for a command the
   replica refuses (logged); or a store error. After an error the link
   must break: nothing gathered since the last flush counts as applied. */
int repl_apply(struct repl_applier *a, size_t argc, const kvs_slice *argv);

/* Write the gathered plain writes. Returns 0 or the store's error. */
int repl_apply_flush(struct repl_applier *a);

/* Whether plain writes are gathered and not yet written. */
bool repl_apply_pending(const struct repl_applier *a);

#endif
