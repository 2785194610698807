/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Epochs for the mem table's lock-free readers: a writer that unlinks an
 * item may give its memory back only once no reader can still be looking
 * at it.
 *
 * Readers bracket each look with kmem_epoch_enter()/kmem_epoch_exit(): an
 * increment and a decrement of a counter on a cache line of the reader's
 * own (threads pick one of KMEM_EPOCH_SHARDS shards, round robin), never a
 * wait. A writer notes the epoch when it unlinks something (the table keeps
 * the retired items, see table.c); the thing may be freed once the epoch is
 * two past that note.
 *
 * Why two: the epoch moves from e to e+1 only when no reader is registered
 * under e-1 (the counters of that parity are all zero), and a reader that
 * read an older epoch re-reads it after registering and retries if it
 * moved (a seq_cst increment then a seq_cst load against the mover's
 * seq_cst loads and store, so one of them sees the other). A reader that
 * can hold an item unlinked during epoch r entered at r or before; by the
 * time the epoch is r+2 the moves r -> r+1 and r+1 -> r+2 saw no reader of
 * r-1 and of r, so every such reader has left.
 *
 * A writer must make its unlinking store visible before it reads the
 * epoch to note (a seq_cst store, or a full barrier between them): else a
 * reader registered under the next epoch, which the grace period does not
 * wait for, could still load the unlinked pointer.
 *
 * Rules: a thread inside a section never waits for the epoch to move
 * (kmem_epoch_synchronize() from inside would wait for itself), and no
 * thread calls kmem_epoch_synchronize() while holding a lock that a reader
 * may wait for.
 */
#ifndef KVS_MEM_EPOCH_H
#define KVS_MEM_EPOCH_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#define KMEM_EPOCH_SHARDS 64

struct kmem_epoch_shard {
    _Alignas(64) atomic_ulong readers[2]; /* indexed by epoch parity */
};

struct kmem_epoch {
    _Alignas(64) atomic_uint_least64_t now;
    struct kmem_epoch_shard shard[KMEM_EPOCH_SHARDS];
    /* Serialises moving the epoch on. Taken with no other lock held. */
    pthread_mutex_t lock;
};

/* Returns 0 or KVS_ENOMEM. The epoch starts at 2, so "two back" is never
   below zero. */
int kmem_epoch_init(struct kmem_epoch *e);
void kmem_epoch_destroy(struct kmem_epoch *e);

/* Enter a read-side section; returns the token for kmem_epoch_exit().
   Sections nest. Any thread. */
unsigned kmem_epoch_enter(struct kmem_epoch *e);
void kmem_epoch_exit(struct kmem_epoch *e, unsigned token);

static inline uint64_t kmem_epoch_now(struct kmem_epoch *e)
{
    return atomic_load(&e->now);
}

/* Whether something retired (unlinked) during epoch r may be freed now. */
static inline bool kmem_epoch_safe(struct kmem_epoch *e, uint64_t r)
{
    return kmem_epoch_now(e) >= r + 2;
}

/* Move the epoch on by one if the readers of the previous one have left
   and no other thread is moving it. Never waits. Returns whether it moved. */
bool kmem_epoch_try_advance(struct kmem_epoch *e);

/* Move the epoch on twice, waiting (yielding) for readers to leave, so that
   everything retired before the call is safe when it returns. Not from
   inside a section. */
void kmem_epoch_synchronize(struct kmem_epoch *e);

#endif
