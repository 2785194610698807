/* SPDX-License-Identifier: BSD-3-Clause */
/* Epoch-based reclamation; see epoch.h for the scheme and why it is safe. */
#include "epoch.h"

#include <stdbool.h>
#include <stddef.h>

#include "kvs/error.h"

/* Each thread picks a shard once, round robin, so that up to
   KLOG_EPOCH_SHARDS threads never share a counter. */
static atomic_uint next_shard;
static _Thread_local unsigned my_shard = ~0u;

static unsigned shard_of_thread(void)
{
    if (my_shard == ~0u)
        my_shard =
            atomic_fetch_add_explicit(&next_shard, 1, memory_order_relaxed) % KLOG_EPOCH_SHARDS;
    return my_shard;
}

int klog_epoch_init(struct klog_epoch *e)
{
    atomic_init(&e->now, 2); /* so that "two epochs back" never underflows */
    for (size_t i = 0; i < KLOG_EPOCH_SHARDS; i++) {
        atomic_init(&e->shard[i].readers[0], 0);
        atomic_init(&e->shard[i].readers[1], 0);
    }
    e->retired = NULL;
    return pthread_mutex_init(&e->lock, NULL) == 0 ? 0 : KVS_ENOMEM;
}

static void free_list(struct klog_retired *r)
{
    while (r) {
        struct klog_retired *next = r->next;
        r->free(r);
        r = next;
    }
}

void klog_epoch_destroy(struct klog_epoch *e)
{
    free_list(e->retired);
    e->retired = NULL;
    pthread_mutex_destroy(&e->lock);
}

unsigned klog_epoch_enter(struct klog_epoch *e)
{
    unsigned s = shard_of_thread();
    for (;;) {
        uint64_t now = atomic_load(&e->now);
        unsigned parity = (unsigned)(now & 1);
        /* seq_cst increment then seq_cst re-read: either the reclaimer that
           moves the epoch sees this reader, or this reader sees the move. */
        atomic_fetch_add(&e->shard[s].readers[parity], 1);
        if (atomic_load(&e->now) == now)
            return s << 1 | parity;
        atomic_fetch_sub(&e->shard[s].readers[parity], 1);
    }
}

void klog_epoch_exit(struct klog_epoch *e, unsigned token)
{
    atomic_fetch_sub(&e->shard[token >> 1].readers[token & 1], 1);
}

void klog_epoch_retire(struct klog_epoch *e, struct klog_retired *r,
                       void (*fn)(struct klog_retired *))
{
    r->free = fn;
    pthread_mutex_lock(&e->lock);
    r->epoch = atomic_load(&e->now);
    r->next = e->retired;
    e->retired = r;
    pthread_mutex_unlock(&e->lock);
}

static bool parity_drained(struct klog_epoch *e, unsigned parity)
{
    for (size_t i = 0; i < KLOG_EPOCH_SHARDS; i++) {
        if (atomic_load(&e->shard[i].readers[parity]) != 0)
            return false;
    }
    return true;
}

void klog_epoch_reclaim(struct klog_epoch *e)
{
    struct klog_retired *doomed = NULL;
    pthread_mutex_lock(&e->lock);
    if (!e->retired)
        goto out_unlock; /* nothing to free: leave the epoch alone */
    /* Up to two advances: objects retired in the current epoch become free
       after the second. */
    for (int round = 0; round < 2; round++) {
        uint64_t now = atomic_load(&e->now);
        if (!parity_drained(e, (unsigned)((now + 1) & 1)))
            break;
        atomic_store(&e->now, now + 1);
    }
    uint64_t safe_below = atomic_load(&e->now) - 1; /* free epochs <= now - 2 */
    struct klog_retired **pp = &e->retired;
    while (*pp) {
        struct klog_retired *r = *pp;
        if (r->epoch < safe_below) {
            *pp = r->next;
            r->next = doomed;
            doomed = r;
        } else {
            pp = &r->next;
        }
    }
out_unlock:
    pthread_mutex_unlock(&e->lock);
    free_list(doomed);
}
