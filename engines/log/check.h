/*
 * kvs-check: offline verification and salvage of a data directory.
 *
 * kvs__check_dir() reads the directory's ENGINE record and then, for the
 * "kvs" engine, every segment file: its header, every record's header check
 * and checksum (record.h), and each hint file against its segment (every
 * entry names a whole valid put of a key with that hash, and the hint lists
 * every record of the segment). Records are replayed in (id, sub) order, as
 * an open would, to count the live keys. A bad record in the newest segment
 * that no valid record follows is a torn tail (open cuts it off); any other
 * bad record is corruption (open refuses the store), and the scan skips to
 * the next offset where a valid record starts. For "lmdb" it opens the store
 * through libkvs (which proves the lock is free and LMDB accepts the file),
 * reports its stats, then walks every entry of the main database with a
 * read-only cursor, which reads every branch, leaf and overflow page.
 *
 * With a repair directory, every readable record (kvs) or entry (lmdb) is
 * replayed in log order into a new store there through kvs_db_set(),
 * kvs_db_remove() and kvs_db_clear(): torn tails and corrupt ranges are left
 * out, and the original directory is only ever read (it is opened O_RDONLY
 * and mapped read-only; an lmdb store is opened by LMDB, which may rewrite
 * its lock file). The repair directory must be new or empty.
 *
 * Both hold the directory's lock while they read it, so they refuse a
 * directory a server has open. Not thread-safe; a tool's entry point.
 */
#ifndef KVS_LOG_CHECK_H
#define KVS_LOG_CHECK_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "kvs/kvs.h"

struct kvs_check_report {
    char engine[64]; /* the recorded engine, or "" when ENGINE is missing */
    /* kvs engine */
    uint64_t segments;
    uint64_t records, puts, dels, clears;
    uint64_t record_bytes;
    uint64_t hints;         /* hint files checked against their segments */
    uint64_t hint_entries;  /* entries verified */
    uint64_t leftovers;     /* .tmp files and orphan hints a crash left (open deletes them) */
    uint64_t torn;          /* torn tails (open cuts them off) */
    uint64_t corrupt;       /* corrupt records, headers or tails (open refuses) */
    uint64_t corrupt_bytes; /* bytes skipped over corrupt ranges */
    uint64_t bad_hints;     /* hints that fail a check (open scans instead) */
    /* both engines */
    uint64_t live_keys;
    uint64_t problems; /* everything above that is not clean, plus a missing ENGINE */
    uint64_t salvaged; /* records (or entries) replayed into the repair directory */
};

/*
 * kvs__check_dir - verify dir and print one line per finding and a summary
 * to out. When repair_dir is not NULL, salvage into it as described above.
 * Returns 0 when the check ran (r says what it found), or an error with
 * why (KVS_WHY_MAX bytes) explaining it: the directory is missing or
 * locked (KVS_ELOCKED), the engine is unknown, the repair directory is not
 * new, or a salvaging write failed.
 */
int kvs__check_dir(const char *dir, const char *repair_dir, FILE *out, struct kvs_check_report *r,
                   char *why);

/* The lmdb half (check_lmdb.c); called by kvs__check_dir(). */
int kvs__check_lmdb(const char *dir, const char *repair_dir, FILE *out, struct kvs_check_report *r,
                    char *why);

/*
 * kvs__check_repair_open - create repair_dir (it must not exist, or be
 * empty) and open a store there with engine. Refuses a repair_dir that is
 * dir itself. Returns 0 with *dbp set, or an error with why filled.
 */
int kvs__check_repair_open(const char *dir, const char *repair_dir, const char *engine,
                           kvs_db **dbp, char *why);

#endif
