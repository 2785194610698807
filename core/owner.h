/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Which engine owns a data directory.
 *
 * The directory records its engine's name in a file named ENGINE, written
 * atomically on first use. These functions read that record, decide which
 * engine a request to open may use, and write the record for a fresh
 * directory. Callable from any thread; they share no state.
 */
#ifndef KVS_ENGINES_OWNER_H
#define KVS_ENGINES_OWNER_H

#include <stdbool.h>

#include "kvs/engine.h"

#define KVS__OWNER_FILE "ENGINE"

/* Read the recorded engine name of the directory open at dir_fd into name.
   Returns 0, KVS_ENOTFOUND (no record), KVS_ECORRUPT (unreadable record)
   or an I/O error. */
int kvs__owner_read(int dir_fd, char *name, size_t size);

/*
 * Decide the engine for opening the directory at dir_fd (path dir, for
 * messages) when the caller asked for wanted (NULL: any). On success *out is
 * the engine and *fresh says the directory has no record yet: the caller
 * writes it with kvs__owner_record() once the engine opened. With no record
 * and no wanted engine, "kvs".
 * Refuses with KVS_EWRONGENGINE (why names both engines) when the record or
 * another engine's files say the directory belongs to someone else. Writes
 * nothing.
 */
int kvs__owner_claim(int dir_fd, const char *dir, const char *wanted, const struct kvs_engine **out,
                     bool *fresh, char *why);

/* The engine whose files the directory open at dir_fd holds (the first
   registered one that has any), or NULL: a guess for a directory without
   its record. */
const struct kvs_engine *kvs__owner_guess(int dir_fd);

/* Record engine as the directory's owner: temp file, fsync, rename, fsync
   of the directory. */
int kvs__owner_record(int dir_fd, const char *dir, const struct kvs_engine *engine, char *why);

#endif
