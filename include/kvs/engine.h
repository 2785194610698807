/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The engine interface: what an engine implements to be served by kvs.
 *
 * An engine is a static const struct kvs_engine of function pointers with a
 * name, listed in the registry table (engines/registry.c). Callers never use
 * the table directly: they go through the kvs_db_*() wrappers of kvs.h, which
 * validate arguments once (NULL pointers, key and value limits, empty keys),
 * so engine methods may assume valid input.
 *
 * Rules for engine authors:
 *  1. The engine's handle embeds struct kvs_db first:
 *         struct log_db { struct kvs_db base; ... };
 *     open() allocates it and writes &base to *dbp; close() frees it. The
 *     wrapper fills in base.engine and base.dir_fd after open() returns.
 *  2. By the time open() is called the directory exists, is locked by this
 *     process, and either records this engine's name or is fresh (its record
 *     is written once open() succeeded).
 *  3. Every method except close() may be called from many threads at once.
 *     get() must not wait for set()/remove() or for a compaction.
 *  4. set()/remove() return only after the change is handed to the kernel
 *     (and fsynced, under KVS_FSYNC_ALWAYS).
 *  5. Methods return 0 or a negative kvs_err; they never print, exit or
 *     abort on bad data. Notable events go to opts->log.
 *  6. The table only ever grows at the end; optional methods may be NULL,
 *     and the wrapper answers KVS_ENOTSUP for them.
 */
#ifndef KVS_ENGINE_H
#define KVS_ENGINE_H

#include <stdio.h>

#include "kvs/kvs.h"

struct kvs_check_report;
struct kvs_salvage;

#ifdef __cplusplus
extern "C" {
#endif

#define KVS_ENGINE_ABI 4

struct kvs_db {
    const struct kvs_engine *engine;
    int dir_fd; /* the data directory, open and flock()ed for the handle's life */
};

struct kvs_engine {
    unsigned abi; /* KVS_ENGINE_ABI */
    const char *name;
    size_t max_key;   /* longest key accepted, in bytes */
    size_t max_value; /* longest value accepted, in bytes */
    /* NULL-terminated list of file names that only this engine creates, so
       that a directory holding them but no ENGINE record is refused by the
       other engines. A trailing '*' matches any suffix ("*.log" is not
       supported; use a prefix such as "seg-*"). */
    const char *const *signature_files;

    /* The methods below do what the kvs_db_*() wrapper of the same name
       says (kvs.h), with the arguments the wrapper has checked, and return
       0 or one of the errors listed here; nothing else reaches callers. */

    /* KVS_ECORRUPT (why names the file and offset), KVS_EVERSION, KVS_EIO,
       KVS_ENOSPC, KVS_EACCES, KVS_ENOMEM, KVS_EKEYSIZE (a stored key this
       engine cannot hold), always with why filled. */
    int (*open)(const char *dir, const kvs_options *opts, struct kvs_db **dbp, char *why);
    /* An I/O error of the final sync (KVS_EIO, KVS_ENOSPC); frees db
       whatever it returns. */
    int (*close)(struct kvs_db *db);
    /* KVS_ENOTFOUND (value untouched), KVS_ECORRUPT, KVS_EIO, KVS_ENOMEM. */
    int (*get)(struct kvs_db *db, kvs_slice key, kvs_buf *value);
    /* KVS_ENOSPC, KVS_EIO, KVS_EREADONLY, KVS_ENOMEM. */
    int (*set)(struct kvs_db *db, kvs_slice key, kvs_slice value);
    /* KVS_ENOTFOUND, KVS_ENOSPC, KVS_EIO, KVS_EREADONLY, KVS_ENOMEM. */
    int (*remove)(struct kvs_db *db, kvs_slice key);
    /* KVS_EIO, KVS_ENOSPC: the error of the fsync that should have covered
       the data, then every time after (the store refuses writes). */
    int (*sync)(struct kvs_db *db);
    /* KVS_EIO, KVS_ENOMEM. */
    int (*stats)(struct kvs_db *db, kvs_stats *st);
    /* Optional from here on (may be NULL: the wrapper answers
       KVS_ENOTSUP, or does without, as kvs.h says). */
    /* As set. */
    int (*clear)(struct kvs_db *db);
    /* KVS_EREADONLY, KVS_ECORRUPT (a record it will not copy), KVS_EIO,
       KVS_ENOSPC, KVS_ENOMEM. */
    int (*compact)(struct kvs_db *db);
    /* Apply a batch as one write (see kvs_db_write): sets with their
       expiry times, removes and KVS_OP_EXPIRE removes. Ops are validated.
       As set, with a prefix of the batch applied on an I/O error.
       Required from ABI 3 on. */
    int (*write)(struct kvs_db *db, kvs_op *ops, size_t n);
    /* ABI 2. One step of a pass over the keys (see kvs_db_scan); count is
       at least 1, flags are valid. fn's error, KVS_ECORRUPT, KVS_EIO,
       KVS_ENOMEM; *next is written on success only. */
    int (*scan)(struct kvs_db *db, uint64_t cursor, size_t count, unsigned flags, kvs_scan_fn fn,
                void *ctx, uint64_t *next);
    /* ABI 2. KVS_ENGINE_* traits (kvs.h): behaviour that differs by engine
       is asked of these, never of the engine's name. */
    unsigned traits;
    /* ABI 2. Make everything written so far durable (kvs_db_save). As
       sync. */
    int (*save)(struct kvs_db *db);
    /* ABI 2. Emit the engine's own figures (kvs_db_info). KVS_EIO,
       KVS_ENOMEM. */
    int (*info)(struct kvs_db *db, kvs_info_fn fn, void *ctx);
    /* ABI 2. Check the stopped store in dir (open at dir_fd and locked by
       kvs_dir_check(), which also printed its engine record), printing
       findings to out and counting them in *r, and copy what it can read
       to salvage if not NULL (kvs/check.h). Only reads dir. Returns 0 when
       the check ran, or an error explained in why. */
    int (*check)(const char *dir, int dir_fd, const struct kvs_salvage *salvage, FILE *out,
                 struct kvs_check_report *r, char *why);
    /* ABI 3. get, and the key's expiry time (expire_at may be NULL). Keys
       whose expiry time has passed (kvs_now_ms()) are KVS_ENOTFOUND. As
       get. Required from ABI 3 on, and write with it: expiry times come
       in KVS_OP_SET ops and KVS_OP_EXPIRE removes, and scan reports
       them. */
    int (*get_ex)(struct kvs_db *db, kvs_slice key, kvs_buf *value, int64_t *expire_at);
    /* ABI 4, engines with snapshots (KVS_ENGINE_VOLATILE). Start a save in
       the background: KVS_EBUSY. */
    int (*bgsave)(struct kvs_db *db, bool schedule);
    /* ABI 4. Fill the status (never fails but with KVS_ENOMEM). */
    int (*save_status)(struct kvs_db *db, kvs_save_status *st);
    /* ABI 4. close() without the final snapshot; NULL: close() is used. */
    int (*close_nosave)(struct kvs_db *db);
};

/* Test hook: when set, kvs_now_ms() returns what it returns, so that a test
   can move the clock expiry is judged by. NULL in normal operation. */
extern int64_t (*kvs__now_hook)(void);

/* For an engine's info method: emit n figures, names[i] with values[i] in
   decimal, through fn. */
void kvs__info_figures(kvs_info_fn fn, void *ctx, const char *const *names, const uint64_t *values,
                       size_t n);

/* Write a printf-style explanation into why (KVS_WHY_MAX bytes) if not NULL. */
void kvs__why(char *why, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Send one printf-style line to opts->log if set. */
void kvs__log(const kvs_options *opts, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#ifdef __cplusplus
}
#endif
#endif
