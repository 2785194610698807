/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The threaded tests of the kvs engine, as plain functions.
 *
 * They run inside a Criterion suite (test_log_concurrency.c, under ASan)
 * and in a plain program (threads_main.c) that the ThreadSanitizer build
 * runs: Criterion cannot start under TSan (Snaipe/Criterion#274; see
 * tests/contract/scenarios.h), so code TSan must check cannot live in a
 * Criterion suite alone.
 *
 * Each scenario opens a store of its own in dir (an empty directory), runs,
 * closes it, and returns true, or false with a one-line explanation in msg
 * (size bytes). Worker threads never abort: they record failures with
 * lt_fail() and the scenario judges after joining them. One scenario at a
 * time.
 */
#ifndef KVS_TESTS_LOG_SCENARIOS_H
#define KVS_TESTS_LOG_SCENARIOS_H

#include <stdbool.h>
#include <stddef.h>

/* 1000 threads each set their own key; all are there, also after reopen. */
bool lt_scn_thousand_writers(const char *dir, char *msg, size_t size);
/* 100 threads read 200 keys each, 5 times over. */
bool lt_scn_hundred_readers(const char *dir, char *msg, size_t size);
/* 4 readers beside a writer that overwrites, removes, adds keys (so the
   index grows), clears and compacts, across many small segments, with the
   background thread syncing (everysec). Reads are whole values of their
   key, and the versions one reader sees never go back. */
bool lt_scn_readers_beside_writer(const char *dir, char *msg, size_t size);
/* 4 threads read and write 1000 keys while the caller's thread compacts
   back to back and the background thread compacts too; nothing read is
   wrong, and every last write is there after reopen. */
bool lt_scn_compaction_beside_workers(const char *dir, char *msg, size_t size);
/* 80 rounds of overwriting 1000 keys with small segments and thresholds:
   background compaction keeps the directory within 8 x the live data
   (about 2 x measured on an idle machine), and every value is right after
   reopen. */
bool lt_scn_directory_stops_growing(const char *dir, char *msg, size_t size);

/* 50 threads write with fsync "always" (sets and kvs_db_write batches)
   across many small segments beside a reader: every acknowledged write is
   there, also after reopen. */
bool lt_scn_group_commit(const char *dir, char *msg, size_t size);
/* 16 threads write with "always" until an injected fsync failure: writers
   get its error (KVS_EIO) or KVS_EREADONLY after it, exactly the
   acknowledged writes are visible, and all of them after reopen. */
bool lt_scn_group_commit_failure(const char *dir, char *msg, size_t size);

#endif
