/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Epoch-based reclamation for the kvs engine: lets readers use index tables
 * and segment mappings without locks, and frees those objects only once no
 * reader can still hold them.
 *
 * Readers bracket each use with klog_epoch_enter()/klog_epoch_exit(); both are
 * a few atomic operations on a counter sharded by thread, never a wait.
 * Writers unpublish an object (swap a pointer, clear a table entry) and then
 * klog_epoch_retire() it. klog_epoch_reclaim() advances the global epoch when
 * the readers of the previous epoch have drained and frees what was retired
 * two epochs back; it never waits either, so calling it again later is how
 * progress is made (the background thread calls it about once a second).
 *
 * Why two epochs back is safe: the epoch advances from e to e+1 only when no
 * reader is registered under e-1 (the other parity), and a reader that read
 * an older epoch re-checks it after registering and retries if it moved. So
 * once the epoch is e+1, every registered reader entered during epoch e,
 * after anything retired during epoch e-1 or earlier was already unpublished.
 */
#ifndef KVS_LOG_EPOCH_H
#define KVS_LOG_EPOCH_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#define KLOG_EPOCH_SHARDS 32

/* Embedded in every object that can be retired. */
struct klog_retired {
    struct klog_retired *next;
    uint64_t epoch;
    void (*free)(struct klog_retired *r);
};

/* One cache line per shard, so that readers on different threads do not
   bounce a line between cores. */
struct klog_epoch_shard {
    _Alignas(64) atomic_ulong readers[2]; /* indexed by epoch parity */
};

struct klog_epoch {
    atomic_uint_least64_t now;
    struct klog_epoch_shard shard[KLOG_EPOCH_SHARDS];
    /* Protects retired and serialises advancing now. Taken after the
       engine's write lock when both are held. */
    pthread_mutex_t lock;
    struct klog_retired *retired; /* newest first */
};

int klog_epoch_init(struct klog_epoch *e);

/* Free everything retired. Only when no reader can be inside. */
void klog_epoch_destroy(struct klog_epoch *e);

/* Enter a read-side section; returns a token for klog_epoch_exit(). */
unsigned klog_epoch_enter(struct klog_epoch *e);
void klog_epoch_exit(struct klog_epoch *e, unsigned token);

/* Hand r (already unreachable for new readers) over to be freed with fn
   after a grace period. Any thread. */
void klog_epoch_retire(struct klog_epoch *e, struct klog_retired *r,
                       void (*fn)(struct klog_retired *));

/* Advance the epoch if readers allow and free what is safe. Never waits for
   readers. Any thread, but not while holding a lock that a free function
   takes. */
void klog_epoch_reclaim(struct klog_epoch *e);

#endif
