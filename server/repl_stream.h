/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The replication stream: every acknowledged write, in commit order, as
 * the RESP commands a replica applies, kept in a chain of blocks with a
 * global offset (Redis's master_repl_offset), from which replica links
 * are fed and partial resyncs served (Redis's backlog).
 *
 * One feed point. The store door (store.c) calls repl_feed_*() for every
 * write it applies while the stream is on (a backlog exists and this
 * server is a primary): batches and single writes hold the stream's lock
 * across the engine's write and the append, so that writes that reach the
 * engine in one order reach the stream in that order (two batches of
 * different workers may write the same key at once, under shared stripe
 * locks); a read-modify-write already holds its key's stripe exclusive,
 * so it takes the lock for the append only. While the stream is off
 * (no replica ever attached), the door pays one relaxed atomic load.
 *
 * Memory. Blocks of at least BLOCK_MIN bytes; the stream keeps the last
 * backlog_size bytes (and up to one block more), and, beyond that, what
 * any reader (a replica link) has not taken yet. A reader more than
 * reader_limit bytes behind is marked overflowing: its owner drops it
 * (the replica then syncs afresh), as Redis's client-output-buffer-limit
 * for replicas does.
 *
 * Readers. A reader is a position in the stream and the block that holds
 * it. Its owner (one thread) reads the bytes between its position and
 * repl_stream_end() without the lock: bytes below the end are written
 * once and never move, and a block is freed only once every reader is
 * past its end. Registering and removing readers take the lock.
 *
 * Offsets are Redis's: the end is the count of bytes ever appended under
 * the current replication id; a replica at offset R has applied bytes
 * 1..R and asks for R + 1.
 */
#ifndef KVS_SERVER_REPL_STREAM_H
#define KVS_SERVER_REPL_STREAM_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kvs/kvs.h"

struct repl_block {
    struct repl_block *_Atomic next;
    uint64_t start; /* stream offset of data[0] */
    size_t used, cap;
    char data[];
};

struct repl_reader {
    struct repl_reader *prev, *next; /* the stream's readers, under its lock */
    _Atomic uint64_t pos;            /* bytes taken; written by the owner only */
    struct repl_block *blk;          /* holds pos (or ends at it); the owner's */
    atomic_bool overflow;            /* over reader_limit behind: to be dropped */
    bool registered;
};

struct repl_stream {
    /* Protects the blocks, the readers' list and need_select; held across
       an engine write and its append (see above). Taken after the store's
       locks; nothing else is taken under it but the allocator. */
    pthread_mutex_t lock;
    atomic_bool on;     /* the door appends (store.c reads it under clear_lock) */
    atomic_bool exists; /* a backlog exists (its offsets are meaningful) */
    struct repl_block *head, *tail;
    _Atomic uint64_t end; /* written under lock with release */
    uint64_t backlog_size;
    uint64_t reader_limit;
    struct repl_reader *readers;
    bool need_select; /* the next write is preceded by SELECT 0 */
    uint64_t appends; /* writes appended, for the benches' curiosity */
    /* Called after an append with the lock released: wake the threads
       that feed replicas. */
    void (*wake)(void *ctx);
    void *wake_ctx;
};

void repl_stream_init(struct repl_stream *s, uint64_t backlog_size, uint64_t reader_limit);
void repl_stream_destroy(struct repl_stream *s);

/* Drop every byte and start again at offset (a backlog now exists). Takes
   the lock. Readers must have been removed. */
void repl_stream_reset(struct repl_stream *s, uint64_t offset);

static inline uint64_t repl_stream_end(struct repl_stream *s)
{
    return atomic_load_explicit(&s->end, memory_order_acquire);
}

/* The oldest offset still held + 1 (Redis's repl_backlog_first_byte_offset)
   and the bytes held (repl_backlog_histlen). Takes the lock. */
void repl_stream_window(struct repl_stream *s, uint64_t *first, uint64_t *histlen);

/* Append raw bytes (a replica passing on its primary's stream, a PING).
   Takes the lock, and wakes. Returns 0 or KVS_ENOMEM. */
int repl_stream_append(struct repl_stream *s, const void *data, size_t len);

/* Register r at pos (0-based: the bytes before it are taken) if the stream
   still holds pos; with pos == UINT64_MAX at the end, and then, with
   select_first, the next write preceded by SELECT 0 (as Redis does for a
   new replica). Returns 0 and sets *at to the position taken, or
   KVS_ENOTFOUND when pos is no longer (or not yet) held. Takes the lock. */
int repl_stream_add_reader(struct repl_stream *s, struct repl_reader *r, uint64_t pos,
                           bool select_first, uint64_t *at);

/* Remove r (registered or not). Takes the lock. */
void repl_stream_remove_reader(struct repl_stream *s, struct repl_reader *r);

/* The bytes r may take now: a pointer into a block and a length (0 when
   it has caught up). The reader's owner only, no lock. */
size_t repl_reader_peek(struct repl_stream *s, struct repl_reader *r, const char **data);

/* r took n of the bytes peeked. The owner only. */
void repl_reader_advance(struct repl_reader *r, size_t n);

/* ---- the door's side (store.c), with the lock held ---- */

/* Whether the door must feed the stream. Read under the store's
   clear_lock, which repl_stream_set_on()'s caller holds exclusive. */
static inline bool repl_feed_on(struct repl_stream *s)
{
    return s && atomic_load_explicit(&s->on, memory_order_relaxed);
}

/* Turn the door's feeding on or off; the caller holds the store's
   clear_lock exclusive, so no write is half-way through the door. */
void repl_stream_set_on(struct repl_stream *s, bool on);

void repl_feed_lock(struct repl_stream *s);
/* Release the lock and wake the readers' threads. */
void repl_feed_unlock(struct repl_stream *s);

/* The writes a batch applied (store_write_batch's ops and results): a
   SET (with PXAT for a time) per set, a DEL per remove that found its key
   (KVS_OP_EXPIRE's included: Redis's DEL of an expired key). Nothing on
   rc != 0. Lock held. */
void repl_feed_ops(struct repl_stream *s, const kvs_op *ops, size_t n);

/* One write's command, argv as given (SET k v PXAT t, DEL k, PEXPIREAT k t,
   PERSIST k, FLUSHALL). Lock held. */
void repl_feed_command(struct repl_stream *s, size_t argc, const kvs_slice *argv);

#endif
