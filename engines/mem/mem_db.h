/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The "mem" engine: keys and values in the concurrent table (table.h) over
 * slab memory (slab.h), made durable by snapshots (snapshot.h).
 *
 * mem_engine.c holds the vtable, the read and write paths, opening and
 * closing; mem_save.c writing and loading snapshots and the background
 * thread that writes them every snapshot_interval seconds; mem_check.c the
 * checker.
 *
 * What survives what: a write is in memory when it is acknowledged; it
 * reaches the disk with the next snapshot (periodic, a save, or the close),
 * so a crash of the process or of the machine loses the writes since the
 * last snapshot that completed (the engine is KVS_ENGINE_VOLATILE).
 *
 * Locks: save_lock is held for the whole of writing a snapshot (one at a
 * time), taken before state_lock, which protects the save figures and the
 * background thread's requests and is held only for moments. Reads and
 * writes take neither: the table has its own (table.h).
 */
#ifndef KVS_MEM_DB_H
#define KVS_MEM_DB_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "kvs/engine.h"
#include "slab.h"
#include "snapshot.h"
#include "table.h"

struct mem_db {
    struct kvs_db base;
    kvs_options opts;
    char *dir;
    int dir_fd; /* our own descriptor of dir, for the snapshot files */
    struct kmem_slab *slab;
    struct kmem_table *table;
    /* Writes applied since open (each set, each remove that found its
       key); the snapshot's cut reads it. */
    atomic_uint_least64_t writes;

    pthread_mutex_t save_lock;
    pthread_mutex_t state_lock;
    pthread_cond_t bg_cond; /* CLOCK_MONOTONIC */
    pthread_t bg;
    bool bg_started, bg_stop, bg_requested;
    /* Under state_lock. */
    uint64_t saved_writes; /* writes the last good snapshot holds */
    int64_t last_save;     /* ms since the epoch */
    bool in_progress;
    int last_status;
    uint64_t saves, last_bytes;
    int64_t last_ms;
};

static inline struct mem_db *mem_db_of(struct kvs_db *base)
{
    return (struct mem_db *)base;
}

/* mem_save.c */
/* Write a snapshot now (waiting for one that runs). Returns 0 or the
   error, which is also logged and kept as the last status. */
int kmem_save(struct mem_db *db);
/* Load dir's snapshot, if there is one, into the empty table; delete a
   temporary file a crash left. KVS_ECORRUPT, KVS_EVERSION, KVS_EIO,
   KVS_EFULL, KVS_ENOMEM with why. */
int kmem_load(struct mem_db *db, char *why);
/* The background thread: periodic snapshots, BGSAVE, reclaiming retired
   items. Returns 0 or KVS_ENOMEM. */
int kmem_bg_start(struct mem_db *db);
void kmem_bg_stop(struct mem_db *db);
/* The vtable's bgsave and save_status. */
int kmem_bgsave(struct kvs_db *base, bool schedule);
int kmem_save_status(struct kvs_db *base, kvs_save_status *st);

/* mem_check.c */
int kmem_check(const char *dir, int dir_fd, const struct kvs_salvage *salvage, FILE *out,
               struct kvs_check_report *r, char *why);

#endif
