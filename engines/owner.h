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

#include "kvs/engine.h"

#define KVS__OWNER_FILE "ENGINE"

/* Read the recorded engine name of the directory open at dir_fd into name.
   Returns 0, KVS_ENOTFOUND (no record), KVS_ECORRUPT (unreadable record)
   or an I/O error. */
int kvs__owner_read(int dir_fd, char *name, size_t size);

/*
 * Decide the engine for opening the directory at dir_fd (path dir, for
 * messages) when the caller asked for wanted (NULL: any). On success *out is
 * the engine and, for a directory without a record, the record is written.
 * Refuses with KVS_EWRONGENGINE (why names both engines) when the record or
 * another engine's files say the directory belongs to someone else; nothing
 * is written then.
 */
int kvs__owner_claim(int dir_fd, const char *dir, const char *wanted, const struct kvs_engine **out,
                     char *why);

#endif
