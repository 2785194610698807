/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Thread scenarios of the mem engine's slab and table, as plain functions.
 *
 * test_mem_table runs them in Criterion (ASan build) and test_mem_threads,
 * a plain program labelled "concurrency", in the ThreadSanitizer build,
 * where Criterion cannot start (Snaipe/Criterion#274). Each creates its own
 * slab and table and returns true, or false with a one-line explanation in
 * msg. Workers never abort: they record what they saw and the scenario
 * judges after joining them. scale (1 = the Criterion size) shrinks the
 * work for slower builds.
 */
#ifndef KVS_TESTS_MEM_SCENARIOS_H
#define KVS_TESTS_MEM_SCENARIOS_H

#include <stdbool.h>
#include <stddef.h>

/* Threads allocate and free slots of every class and large runs at once,
   each checking that nobody else wrote into its slots. */
bool kmem_scn_slab_threads(double scale, char *msg, size_t size);

/* Writers insert, replace and remove their own keys while readers read
   every key: each value read belongs to its key, and a reader never sees
   an older version of a key after a newer one. */
bool kmem_scn_readers_writers(double scale, char *msg, size_t size);

/* Readers look up a fixed set of keys while a writer makes the table grow
   several times: every lookup finds its key with its value. */
bool kmem_scn_growth_under_readers(double scale, char *msg, size_t size);

/* Whole scan passes while writers add keys (the table grows) and remove
   others: each pass ends and visits every key present throughout it. */
bool kmem_scn_scan_beside_writers(double scale, char *msg, size_t size);

/* Threads overwrite keys in a small fixed arena that their live values fill
   to about a third: no put fails, because retired values are reclaimed. */
bool kmem_scn_churn_small_arena(double scale, char *msg, size_t size);

/* Writers set and remove their keys in a known order while the table takes
   snapshots (kmem_table_snapshot): each snapshot holds every key once, in
   the state after a prefix of each writer's ops that includes every op
   done before the snapshot began. */
bool kmem_scn_snapshot_beside_writers(double scale, char *msg, size_t size);

#endif
