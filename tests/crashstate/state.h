/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Crash states built from a trace (trace.h): what the directory may hold
 * after a machine crash at a cut c, that is after the events [0, c).
 *
 * What the test assumes a crash keeps, per file: every write and truncation
 * that completed before an fsync of that file began, when that fsync
 * returned before the cut; a write through an O_DSYNC descriptor once it
 * returned (a crash right at its end may still tear it). Everything else
 * before the cut is pending: a crash may keep any of it. Per directory
 * likewise: the creations, renames and unlinks that completed before an
 * fsync of the directory began, when that fsync returned before the cut,
 * stay; later ones are pending. An fsync of a file does not make its name
 * durable (POSIX; ext4 happens to, others need the directory's fsync).
 *
 * The choices for the pending operations, by strategy:
 *   all        every pending operation kept (what a process crash leaves);
 *   synced     none kept: only what was made durable;
 *   dir-only   every pending directory operation, no pending data;
 *   data-only  every pending write, no pending directory operation;
 *   ordered    per file a random prefix of its pending writes, the last one
 *              kept possibly torn, and a random prefix of the pending
 *              directory operations: a file system that writes each file,
 *              and the directory, back in order;
 *   reordered  a random subset of each file's pending writes (one of them
 *              possibly torn) and of the pending directory operations, as
 *              POSIX allows: nothing orders write-back before an fsync.
 * A torn write keeps a prefix of its bytes; the rest of its range holds
 * the old bytes where the file had some, and beyond the old end of the
 * file nothing (the file is shorter), zeros or garbage.
 */
#ifndef KVS_TESTS_CRASHSTATE_STATE_H
#define KVS_TESTS_CRASHSTATE_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "trace.h"

enum st_strategy {
    ST_ALL,
    ST_SYNCED,
    ST_DIR_ONLY,
    ST_DATA_ONLY,
    ST_ORDERED,
    ST_REORDERED,
    ST_NSTRATEGIES
};

const char *st_strategy_name(enum st_strategy s);

/* Positions of a trace's events by file, computed once. */
struct st_sync {
    size_t end;       /* index of an EV_SYNC_END */
    size_t begin_max; /* the latest begin among the syncs ended by here */
};
struct st_file_index {
    size_t *ops; /* EV_WRITE and EV_TRUNC */
    size_t nops;
    struct st_sync *syncs;
    size_t nsyncs;
};
struct st_index {
    const struct trace *t;
    struct st_file_index *files;
    size_t *dops; /* EV_CREATE, EV_RENAME, EV_UNLINK */
    size_t ndops;
    struct st_sync *dsyncs;
    size_t ndsyncs;
};

int st_index_build(struct st_index *ix, const struct trace *t);
void st_index_free(struct st_index *ix);

/* The files of one crash state, in memory. */
struct st_file {
    const char *name; /* in the trace's name table */
    int32_t file;
    unsigned char *data;
    size_t len;
};
struct st_state {
    size_t cut;
    enum st_strategy strategy;
    uint64_t seed;
    struct st_file *files;
    size_t nfiles;
    size_t pending_data, kept_data; /* pending writes and truncations, and kept */
    size_t pending_dir, kept_dir;   /* pending directory operations, and kept */
    bool torn;
    uint64_t hash; /* of the names and contents */
    char desc[2048];
};

/* Build the state at cut (0..t->nev) chosen by strategy and seed. */
void st_build(const struct st_index *ix, size_t cut, enum st_strategy strategy, uint64_t seed,
              struct st_state *st);
void st_free(struct st_state *st);

/* Write the state's files into dir, which exists and is empty. Returns 0 or -1. */
int st_write(const struct st_state *st, const char *dir);

#endif
