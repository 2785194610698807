/* SPDX-License-Identifier: BSD-3-Clause */
/* Epochs for the mem table; see epoch.h for the scheme and why it is safe. */
#include "epoch.h"

#include <sched.h>
#include <stddef.h>

#include "kvs/error.h"

/* Each thread picks a shard once, round robin, so that up to
   KMEM_EPOCH_SHARDS threads never share a counter. */
static atomic_uint next_shard;
static _Thread_local unsigned my_shard = ~0u;

static unsigned shard_of_thread(void)
{
    if (my_shard == ~0u)
        my_shard =
            atomic_fetch_add_explicit(&next_shard, 1, memory_order_relaxed) % KMEM_EPOCH_SHARDS;
    return my_shard;
}

int kmem_epoch_init(struct kmem_epoch *e)
{
    atomic_init(&e->now, 2);
    for (size_t i = 0; i < KMEM_EPOCH_SHARDS; i++) {
        atomic_init(&e->shard[i].readers[0], 0);
        atomic_init(&e->shard[i].readers[1], 0);
    }
    return pthread_mutex_init(&e->lock, NULL) == 0 ? 0 : KVS_ENOMEM;
}

void kmem_epoch_destroy(struct kmem_epoch *e)
{
    pthread_mutex_destroy(&e->lock);
}

unsigned kmem_epoch_enter(struct kmem_epoch *e)
{
    unsigned s = shard_of_thread();
    for (;;) {
        uint64_t now = atomic_load(&e->now);
        unsigned parity = (unsigned)(now & 1);
        atomic_fetch_add(&e->shard[s].readers[parity], 1);
        if (atomic_load(&e->now) == now)
            return s << 1 | parity;
        atomic_fetch_sub(&e->shard[s].readers[parity], 1);
    }
}

void kmem_epoch_exit(struct kmem_epoch *e, unsigned token)
{
    atomic_fetch_sub_explicit(&e->shard[token >> 1].readers[token & 1], 1, memory_order_release);
}

static bool parity_drained(struct kmem_epoch *e, unsigned parity)
{
    for (size_t i = 0; i < KMEM_EPOCH_SHARDS; i++) {
        if (atomic_load(&e->shard[i].readers[parity]) != 0)
            return false;
    }
    return true;
}

/* Under e->lock. */
static bool advance_locked(struct kmem_epoch *e)
{
    uint64_t now = atomic_load(&e->now);
    if (!parity_drained(e, (unsigned)((now - 1) & 1)))
        return false;
    atomic_store(&e->now, now + 1);
    return true;
}

bool kmem_epoch_try_advance(struct kmem_epoch *e)
{
    if (pthread_mutex_trylock(&e->lock) != 0)
        return false;
    bool moved = advance_locked(e);
    pthread_mutex_unlock(&e->lock);
    return moved;
}

void kmem_epoch_synchronize(struct kmem_epoch *e)
{
    uint64_t target = atomic_load(&e->now) + 2;
    pthread_mutex_lock(&e->lock);
    while (atomic_load(&e->now) < target) {
        if (!advance_locked(e)) {
            /* Readers of the previous epoch are still inside: their
               sections are short, let them finish. */
            pthread_mutex_unlock(&e->lock);
            sched_yield();
            pthread_mutex_lock(&e->lock);
        }
    }
    pthread_mutex_unlock(&e->lock);
}
