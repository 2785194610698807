/*
 * The lmdb engine's checker (kvs/check.h): open the store through libkvs for
 * its stats, then walk the main database read-only with LMDB's cursor,
 * which reads every page holding a key or a value, and copy every entry
 * into the repair directory when one is given. Keys carry the engine's
 * tag and hash (engines/lmdb/lmdb_internal.h), or in stores of the old
 * layout the old tag alone; an entry with neither is reported, not copied.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <lmdb.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "kvs/check.h"
#include "lmdb_internal.h"

static int walk(MDB_env *env, FILE *out, kvs_db *repair, struct kvs_check_report *r, char *why)
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
    uint64_t bytes = 0, other = 0;
    MDB_val k, v;
    while ((mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) == 0) {
        const unsigned char *kp = k.mv_data;
        size_t head = k.mv_size >= LMDB_KEY_HEAD && kp[0] == LMDB_KEY_TAG ? LMDB_KEY_HEAD
                      : k.mv_size >= 1 && kp[0] == LMDB_OLD_KEY_TAG       ? 1
                                                                          : 0;
        if (head == LMDB_KEY_HEAD) {
            /* The stored hash must be the key's: else lookups miss it. */
            unsigned char again[LMDB_LIB_MAX_KEY];
            MDB_val want = kvs__lmdb_key(again, kvs_slice_of(kp + head, k.mv_size - head));
            if (memcmp(want.mv_data, kp, LMDB_KEY_HEAD) != 0) {
                fprintf(out, "corrupt: an entry's hash does not match its key\n");
                r->corrupt++;
                r->problems++;
            }
        }
        if (head == 0) {
            other++;
            continue;
        }
        r->live_keys++;
        bytes += k.mv_size - head + v.mv_size;
        if (repair) {
            rc = kvs_db_set(repair, kvs_slice_of(kp + head, k.mv_size - head),
                            kvs_slice_of(v.mv_data, v.mv_size));
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
        fprintf(out, "unexpected: %" PRIu64 " entries without the user-key tag\n", other);
        r->problems++;
    }
    fprintf(out, "walked: %" PRIu64 " keys, %" PRIu64 " bytes of keys and values\n", r->live_keys,
            bytes);
    mdb_cursor_close(cur);
    mdb_txn_abort(txn);
    return rc;
}

int kvs__lmdb_check(const char *dir, const char *repair_dir, FILE *out, struct kvs_check_report *r,
                    char *why)
{
    /* Through libkvs first: refuses a store in use, and LMDB checks the meta pages. */
    kvs_options o;
    kvs_options_init(&o);
    o.engine = "lmdb";
    kvs_db *db;
    int rc = kvs_db_open(dir, &o, &db, why);
    if (rc != 0)
        return rc;
    kvs_stats st;
    rc = kvs_db_stats(db, &st);
    kvs_db_close(db);
    if (rc != 0) {
        fprintf(out, "corrupt: stats failed: %s\n", kvs_strerror(rc));
        r->problems++;
    } else {
        fprintf(out,
                "stats: %" PRIu64 " keys, %" PRIu64 " bytes in use, %" PRIu64
                " bytes free in the map file\n",
                st.keys, st.disk_bytes, st.stale_bytes);
    }

    /* Then a read-only walk, holding the directory lock ourselves; LMDB's
       own lock file is not needed with no other process. */
    int dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir_fd < 0) {
        kvs__why(why, "cannot open %s: %s", dir, strerror(errno));
        return kvs_err_from_errno(errno);
    }
    if (flock(dir_fd, LOCK_EX | LOCK_NB) != 0) {
        rc = errno == EWOULDBLOCK ? KVS_ELOCKED : kvs_err_from_errno(errno);
        kvs__why(why, "%s: %s", dir, kvs_strerror(rc));
        close(dir_fd);
        return rc;
    }
    kvs_db *repair = NULL;
    MDB_env *env = NULL;
    int mrc = mdb_env_create(&env);
    if (mrc == 0)
        mrc = mdb_env_set_mapsize(env, 0);
    if (mrc == 0)
        mrc = mdb_env_open(env, dir, MDB_RDONLY | MDB_NOLOCK | MDB_NOTLS, 0644);
    if (mrc != 0) {
        fprintf(out, "corrupt: LMDB cannot open %s read-only: %s\n", dir, mdb_strerror(mrc));
        r->problems++;
        goto out_env;
    }
    if (repair_dir) {
        rc = kvs__check_repair_open(dir, repair_dir, "lmdb", &repair, why);
        if (rc != 0)
            goto out_env;
    }
    rc = walk(env, out, repair, r, why);
    if (rc == 0 && st.keys != r->live_keys && r->corrupt == 0) {
        fprintf(out, "corrupt: stats count %" PRIu64 " keys, the walk found %" PRIu64 "\n", st.keys,
                r->live_keys);
        r->problems++;
    }
    if (repair) {
        int src = kvs_db_sync(repair);
        int crc = kvs_db_close(repair);
        if (rc == 0 && (src || crc)) {
            rc = src ? src : crc;
            kvs__why(why, "cannot flush %s: %s", repair_dir, kvs_strerror(rc));
        }
        if (rc == 0)
            fprintf(out, "repaired into %s: %" PRIu64 " entries copied\n", repair_dir, r->salvaged);
    }
out_env:
    if (env)
        mdb_env_close(env);
    close(dir_fd);
    if (rc == 0) {
        fprintf(out, "verified: ENGINE record, LMDB meta pages (open), every page of the main "
                     "database (cursor walk); LMDB keeps no checksums of values\n");
        fprintf(out, "live keys: %" PRIu64 "\n", r->live_keys);
        fprintf(out, "result: %s (%" PRIu64 " problems)\n", r->problems ? "PROBLEMS" : "clean",
                r->problems);
    }
    return rc;
}
