/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The lmdb engine's checker (kvs/check.h): open the environment read-only
 * (LMDB checks its meta pages) for its figures, then walk the main database
 * with LMDB's cursor, which reads every page holding a key or a value, and
 * copy every entry to the salvage sink when there is one. Keys carry the engine's
 * tag and hash (engines/lmdb/lmdb_internal.h), or in stores of the old
 * layout the old tag alone; an entry with neither is reported, not copied.
 */
#include <inttypes.h>
#include <lmdb.h>
#include <string.h>

#include "kvs/check.h"
#include "lmdb_internal.h"

static int walk(MDB_env *env, FILE *out, const struct kvs_salvage *salvage,
                struct kvs_check_report *r, char *why)
{
    MDB_txn *txn;
    MDB_dbi dbi;
    MDB_cursor *cur;
    int mrc = mdb_txn_begin(env, NULL, MDB_RDONLY, &txn);
    if (mrc == 0) {
        mrc = mdb_dbi_open(txn, NULL, 0, &dbi);
        if (mrc == 0)
            mrc = mdb_cursor_open(txn, dbi, &cur);
        if (mrc != 0)
            mdb_txn_abort(txn);
    }
    if (mrc != 0) {
        fprintf(out, "corrupt: cannot read the main database: %s\n", mdb_strerror(mrc));
        r->problems++;
        return 0;
    }
    int rc = 0;
    uint64_t bytes = 0, other = 0, old = 0, expires = 0, expired = 0;
    int64_t now = kvs_now_ms();
    MDB_val k, v;
    while ((mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) == 0) {
        const unsigned char *kp = k.mv_data;
        unsigned tag = k.mv_size ? kp[0] : 0;
        if (tag == LMDB_META_TAG) {
            r->meta++;
            continue;
        }
        size_t head =
            tag == LMDB_V1_KEY_TAG ? 1
            : k.mv_size >= LMDB_KEY_HEAD && (tag == LMDB_KEY_TAG || tag == LMDB_V2_KEY_TAG)
                ? LMDB_KEY_HEAD
                : 0;
        if (head == 0) {
            other++;
            continue;
        }
        kvs_slice key = kvs_slice_of(kp + head, k.mv_size - head);
        kvs_slice val = kvs_slice_of(v.mv_data, v.mv_size);
        int64_t at = 0;
        if (tag != LMDB_KEY_TAG) {
            old++; /* a bare value: open converts it */
        } else {
            /* The stored hash must be the key's: else lookups miss it. */
            unsigned char again[LMDB_LIB_MAX_KEY];
            MDB_val want = kvs__lmdb_key(again, key);
            bool bad_hash = memcmp(want.mv_data, kp, LMDB_KEY_HEAD) != 0;
            bool bad_val = kvs__lmdb_val_parse(&v, &val, &at) != 0;
            if (bad_hash || bad_val) {
                fprintf(out, "corrupt: an entry's %s\n",
                        bad_hash ? "hash does not match its key" : "value header is impossible");
                r->corrupt++;
                r->problems++;
                continue;
            }
            expires += at != 0;
            expired += at != 0 && at <= now;
        }
        r->live_keys++;
        bytes += key.len + val.len;
        if (salvage) {
            rc = salvage->set(salvage->ctx, key, val, at);
            if (rc != 0) {
                kvs__why(why, "cannot salvage an entry: %s", kvs_strerror(rc));
                break;
            }
            r->salvaged++;
        }
    }
    if (rc == 0 && mrc != MDB_NOTFOUND) {
        fprintf(out, "corrupt: the walk stopped after %" PRIu64 " entries: %s\n", r->live_keys,
                mdb_strerror(mrc));
        r->corrupt++;
        r->problems++;
    }
    if (other) {
        fprintf(out, "unexpected: %" PRIu64 " entries without a tag of the engine's\n", other);
        r->problems++;
    }
    if (old)
        fprintf(out, "earlier layout: %" PRIu64 " entries (open converts them)\n", old);
    fprintf(out, "walked: %" PRIu64 " keys, %" PRIu64 " bytes of keys and values\n", r->live_keys,
            bytes);
    fprintf(out,
            "expiry: %" PRIu64 " keys with an expiry time, %" PRIu64
            " of them past it (read as absent)\n",
            expires, expired);
    mdb_cursor_close(cur);
    mdb_txn_abort(txn);
    return rc;
}

/* Open the environment read-only (LMDB checks its meta pages) and read
   its figures: entries, pages in use and on the freelist. */
static int open_env(const char *dir, FILE *out, struct kvs_check_report *r, MDB_env **envp,
                    uint64_t *entries)
{
    char why[KVS_WHY_MAX] = "";
    if (kvs__lmdb_meta_check(dir, why) != 0) {
        fprintf(out, "corrupt: %s\n", why);
        r->problems++;
        return MDB_INVALID;
    }
    MDB_env *env = NULL;
    int mrc = mdb_env_create(&env);
    if (mrc == 0)
        mrc = mdb_env_set_mapsize(env, 0);
    /* No lock file: kvs_dir_check() holds the directory's lock. */
    if (mrc == 0)
        mrc = mdb_env_open(env, dir, MDB_RDONLY | MDB_NOLOCK | MDB_NOTLS, 0644);
    if (mrc != 0) {
        fprintf(out, "corrupt: LMDB cannot open %s read-only: %s\n", dir, mdb_strerror(mrc));
        r->problems++;
        if (env)
            mdb_env_close(env);
        return mrc;
    }
    MDB_txn *txn;
    MDB_dbi dbi;
    MDB_stat ms;
    MDB_envinfo info;
    size_t free_pages = 0;
    mrc = mdb_txn_begin(env, NULL, MDB_RDONLY, &txn);
    if (mrc == 0) {
        mrc = mdb_dbi_open(txn, NULL, 0, &dbi);
        if (mrc == 0)
            mrc = mdb_stat(txn, dbi, &ms);
        if (mrc == 0)
            mrc = mdb_env_info(env, &info);
        if (mrc == 0)
            mrc = kvs__lmdb_free_pages(txn, &free_pages);
        mdb_txn_abort(txn);
    }
    if (mrc != 0) {
        fprintf(out, "corrupt: stats failed: %s\n", mdb_strerror(mrc));
        r->problems++;
        *entries = UINT64_MAX;
    } else {
        *entries = ms.ms_entries;
        fprintf(out,
                "stats: %" PRIu64 " keys, %" PRIu64 " bytes in use, %" PRIu64
                " bytes free in the map file\n",
                (uint64_t)ms.ms_entries, ((uint64_t)info.me_last_pgno + 1) * ms.ms_psize,
                (uint64_t)free_pages * ms.ms_psize);
    }
    *envp = env;
    return 0;
}

int kvs__lmdb_check(const char *dir, int dir_fd, const struct kvs_salvage *salvage, FILE *out,
                    struct kvs_check_report *r, char *why)
{
    (void)dir_fd;
    MDB_env *env;
    uint64_t entries;
    if (open_env(dir, out, r, &env, &entries) != 0)
        return 0; /* reported */
    int rc = walk(env, out, salvage, r, why);
    if (rc == 0 && entries != UINT64_MAX && entries != r->live_keys + r->meta && r->corrupt == 0) {
        fprintf(out,
                "corrupt: stats count %" PRIu64 " entries, the walk found %" PRIu64
                " keys and %" PRIu64 " of the engine's records\n",
                entries, r->live_keys, r->meta);
        r->problems++;
    }
    mdb_env_close(env);
    if (rc == 0) {
        fprintf(out, "verified: ENGINE record, LMDB meta pages (open), every page of the main "
                     "database (cursor walk); LMDB keeps no checksums of values\n");
        fprintf(out, "live keys: %" PRIu64 "\n", r->live_keys);
    }
    return rc;
}
