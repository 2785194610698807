/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The thread scenarios of the engine contract, as plain functions.
 *
 * They run inside the Criterion contract suite (test_contract.c) and in a
 * plain program (threads_main.c) that the ThreadSanitizer build runs:
 * Criterion cannot start under TSan (its shared arena is mapped at random
 * fixed addresses that TSan refuses; Snaipe/Criterion#274), so code that
 * must be checked by TSan cannot live in a Criterion suite alone.
 *
 * Each scenario runs against an open store and returns true, or false with
 * a one-line explanation in msg (size bytes). Worker threads never abort;
 * they record what they saw and the scenario judges after joining them.
 * Scenarios run one at a time (they share a start gate).
 */
#ifndef KVS_TESTS_CONTRACT_SCENARIOS_H
#define KVS_TESTS_CONTRACT_SCENARIOS_H

#include <stdbool.h>
#include <stddef.h>

#include "kvs/kvs.h"

/* n threads each set their own key "thread-I" at once. */
bool kvs_scn_writers(kvs_db *db, int n, char *msg, size_t size);
/* All n keys of kvs_scn_writers() hold their values, and nothing else is stored. */
bool kvs_scn_writers_visible(kvs_db *db, int n, char *msg, size_t size);
/* threads threads each do reads gets of 16 shared keys and check the values. */
bool kvs_scn_readers(kvs_db *db, int threads, int reads, char *msg, size_t size);
/* readers threads read 8 keys while one writer overwrites them with values
   of varying length; every read must be a written value, never older than
   one read before it. */
bool kvs_scn_overwrites(kvs_db *db, int readers, char *msg, size_t size);
/* readers threads read small keys while the caller's thread writes mib
   values of 1 MiB (enough to make an engine grow its files or map). */
bool kvs_scn_big_writes(kvs_db *db, int readers, int mib, char *msg, size_t size);

/* threads threads each write rounds batches (kvs_db_write) of sets and
   removes of their own keys while the caller's thread reads them; checks
   every op's result, every value read, and the final state. */
bool kvs_scn_batches(kvs_db *db, int threads, int rounds, char *msg, size_t size);
/* The final state of kvs_scn_batches() with the same arguments. */
bool kvs_scn_batches_visible(kvs_db *db, int threads, int rounds, char *msg, size_t size);

/* passes full passes of kvs_db_scan() while a thread writes (growing and
   shrinking the keyspace) and another compacts (scenarios_scan.c): every
   key present throughout is visited in each pass, with a value it had. */
bool kvs_scn_scan_beside_writers(kvs_db *db, int passes, char *msg, size_t size);

#endif
