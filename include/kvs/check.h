/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Offline checking of a data directory (kvs-check): what every engine's
 * checker reports, and the entry point that finds the checker of the
 * engine that wrote a directory through the registry.
 *
 * A check verifies a stopped store and prints one line per finding and a
 * summary; with a repair directory it also copies every readable record
 * into a new store there, leaving the original untouched. It holds the
 * directory's lock while it reads, so a directory a server has open is
 * refused (KVS_ELOCKED). Not thread-safe: a tool's entry point.
 */
#ifndef KVS_CHECK_H
#define KVS_CHECK_H

#include <stdint.h>
#include <stdio.h>

#include "kvs/kvs.h"

struct kvs_check_report {
    char engine[64]; /* the recorded engine, or "" when ENGINE is missing */
    /* The kvs engine's figures (other engines leave them 0). */
    uint64_t segments;
    uint64_t records, puts, dels, clears;
    uint64_t record_bytes;
    uint64_t hints;         /* hint files checked against their segments */
    uint64_t hint_entries;  /* entries verified */
    uint64_t leftovers;     /* files a crash left that open deletes */
    uint64_t torn;          /* torn tails (open cuts them off) */
    uint64_t corrupt;       /* corrupt records, pages or entries (open refuses, or reads fail) */
    uint64_t corrupt_bytes; /* bytes skipped over corrupt ranges */
    uint64_t bad_hints;     /* hints that fail a check (open scans instead) */
    /* The lmdb engine's. */
    uint64_t meta; /* the engine's own records (not keys) */
    /* Every engine's. */
    uint64_t live_keys;
    uint64_t problems; /* every finding that is not clean, a missing ENGINE record among them */
    uint64_t salvaged; /* records or entries copied into the repair directory */
};

/*
 * Where a checker copies what it can read when a repair was asked for:
 * kvs_dir_check() writes it into the new store. Records come in the order
 * an open would replay them. Each returns 0 or a kvs_err that ends the
 * check; remove of a missing key returns 0.
 */
struct kvs_salvage {
    int (*set)(void *ctx, kvs_slice key, kvs_slice value, int64_t expire_at);
    int (*remove)(void *ctx, kvs_slice key);
    int (*clear)(void *ctx);
    void *ctx;
};

/*
 * kvs_dir_check - check dir with the checker of the engine that wrote it
 * (the one whose files it holds when its ENGINE record is missing, which is
 * a problem itself), printing findings to out; with repair_dir not NULL,
 * salvage into that new directory (kvs_db_open_new() rules).
 * Returns 0 when the check ran (*r says what it found), or an error with
 * why (KVS_WHY_MAX bytes) explaining it: KVS_ENOTFOUND (no such
 * directory), KVS_ELOCKED, KVS_ENOENGINE, KVS_ENOTSUP (the engine has no
 * checker), KVS_ENOTEMPTY or KVS_EINVAL (repair directory), or an I/O
 * error of the salvage.
 */
int kvs_dir_check(const char *dir, const char *repair_dir, FILE *out, struct kvs_check_report *r,
                  char *why);

#endif
