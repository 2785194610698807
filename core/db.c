/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The kvs_db_*() wrappers: validate arguments once, then dispatch through
 * the engine's table. Opening also takes the directory lock and settles
 * which engine owns the directory (owner.c) before the engine sees it.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kvs/engine.h"
#include "owner.h"

/* Registered names as "kvs, lmdb", for messages. */
static void engine_list(char *out, size_t size)
{
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < kvs_engine_count() && used < size; i++)
        used += (size_t)snprintf(out + used, size - used, "%s%s", i ? ", " : "",
                                 kvs_engine_at(i)->name);
}

int kvs_dir_engine(const char *dir, char *name, size_t size)
{
    int dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir_fd < 0)
        return errno == ENOENT ? KVS_ENOTFOUND : kvs_err_from_errno(errno);
    int rc = kvs__owner_read(dir_fd, name, size);
    close(dir_fd);
    return rc;
}

int kvs_db_open(const char *dir, const kvs_options *opts, kvs_db **dbp, char *why)
{
    kvs_options defaults;
    if (!dir || !dbp)
        return KVS_EINVAL;
    if (!opts) {
        kvs_options_init(&defaults);
        opts = &defaults;
    }
    if (opts->engine && !kvs_engine_find(opts->engine)) {
        char names[128];
        engine_list(names, sizeof(names));
        kvs__why(why, "unknown engine '%s' (registered: %s)", opts->engine, names);
        return KVS_ENOENGINE;
    }
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        int rc = kvs_err_from_errno(errno);
        kvs__why(why, "cannot create data directory %s: %s", dir, strerror(errno));
        return rc;
    }
    int dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir_fd < 0) {
        int rc = kvs_err_from_errno(errno);
        kvs__why(why, "cannot open data directory %s: %s", dir, strerror(errno));
        return rc;
    }
    if (flock(dir_fd, LOCK_EX | LOCK_NB) != 0) {
        int rc = errno == EWOULDBLOCK ? KVS_ELOCKED : kvs_err_from_errno(errno);
        kvs__why(why, "data directory %s: %s", dir, kvs_strerror(rc));
        close(dir_fd);
        return rc;
    }
    const struct kvs_engine *engine;
    bool fresh;
    int rc = kvs__owner_claim(dir_fd, dir, opts->engine, &engine, &fresh, why);
    if (rc != 0)
        goto out_close;
    struct kvs_db *db = NULL;
    rc = engine->open(dir, opts, &db, why);
    if (rc != 0)
        goto out_close;
    db->engine = engine;
    if (fresh) {
        rc = kvs__owner_record(dir_fd, dir, engine, why);
        if (rc != 0) {
            engine->close(db);
            goto out_close;
        }
    }
    db->dir_fd = dir_fd;
    *dbp = db;
    return 0;

out_close:
    close(dir_fd); /* releases the lock */
    return rc;
}

int kvs_db_open_new(const char *dir, const char *other, const kvs_options *opts, kvs_db **dbp,
                    char *why)
{
    if (!dir || !dbp)
        return KVS_EINVAL;
    if (mkdir(dir, 0755) != 0) {
        if (errno != EEXIST) {
            kvs__why(why, "cannot create %s: %s", dir, strerror(errno));
            return kvs_err_from_errno(errno);
        }
        DIR *d = opendir(dir);
        if (!d) {
            kvs__why(why, "cannot list %s: %s", dir, strerror(errno));
            return kvs_err_from_errno(errno);
        }
        struct dirent *de;
        bool empty = true;
        while (empty && (de = readdir(d)) != NULL)
            empty = strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0;
        closedir(d);
        if (!empty) {
            kvs__why(why, "%s is not empty: the destination must be a new directory", dir);
            return KVS_ENOTEMPTY;
        }
    }
    struct stat a, b;
    if (other && stat(other, &a) == 0 && stat(dir, &b) == 0 && a.st_dev == b.st_dev &&
        a.st_ino == b.st_ino) {
        kvs__why(why, "the destination %s is the source directory itself", dir);
        return KVS_EINVAL;
    }
    return kvs_db_open(dir, opts, dbp, why);
}

int kvs_db_close(kvs_db *db)
{
    if (!db)
        return 0;
    int dir_fd = db->dir_fd;
    int rc = db->engine->close(db);
    close(dir_fd);
    return rc;
}

int kvs_db_close_nosave(kvs_db *db)
{
    if (!db)
        return 0;
    if (!db->engine->close_nosave)
        return kvs_db_close(db);
    int dir_fd = db->dir_fd;
    int rc = db->engine->close_nosave(db);
    close(dir_fd);
    return rc;
}

const kvs_engine *kvs_db_engine(const kvs_db *db)
{
    return db->engine;
}

static int check_key(const kvs_db *db, kvs_slice key)
{
    if (!key.data && key.len)
        return KVS_EINVAL;
    return key.len > db->engine->max_key ? KVS_EKEYSIZE : 0;
}

int kvs_db_get(kvs_db *db, kvs_slice key, kvs_buf *value)
{
    return kvs_db_get_ex(db, key, value, NULL);
}

int kvs_db_get_ex(kvs_db *db, kvs_slice key, kvs_buf *value, int64_t *expire_at)
{
    if (!db || !value)
        return KVS_EINVAL;
    int rc = check_key(db, key);
    return rc ? rc : db->engine->get_ex(db, key, value, expire_at);
}

int kvs_db_set(kvs_db *db, kvs_slice key, kvs_slice value)
{
    if (!db || (!value.data && value.len))
        return KVS_EINVAL;
    int rc = check_key(db, key);
    if (rc)
        return rc;
    if (value.len > db->engine->max_value)
        return KVS_EVALSIZE;
    return db->engine->set(db, key, value);
}

int kvs_db_set_ex(kvs_db *db, kvs_slice key, kvs_slice value, int64_t expire_at)
{
    kvs_op op = {.type = KVS_OP_SET, .key = key, .value = value, .expire_at = expire_at};
    int rc = kvs_db_write(db, &op, 1);
    return rc ? rc : op.result;
}

int kvs_db_remove(kvs_db *db, kvs_slice key)
{
    if (!db)
        return KVS_EINVAL;
    int rc = check_key(db, key);
    return rc ? rc : db->engine->remove(db, key);
}

int kvs_db_sync(kvs_db *db)
{
    return db ? db->engine->sync(db) : KVS_EINVAL;
}

int kvs_db_stats(kvs_db *db, kvs_stats *st)
{
    if (!db || !st)
        return KVS_EINVAL;
    memset(st, 0, sizeof(*st));
    return db->engine->stats(db, st);
}

int kvs_db_write(kvs_db *db, kvs_op *ops, size_t n)
{
    if (!db || (!ops && n))
        return KVS_EINVAL;
    for (size_t i = 0; i < n; i++) {
        int rc = check_key(db, ops[i].key);
        if (rc)
            return rc;
        if (ops[i].expire_at < 0)
            return KVS_EINVAL;
        if (ops[i].type == KVS_OP_SET) {
            if (!ops[i].value.data && ops[i].value.len)
                return KVS_EINVAL;
            if (ops[i].value.len > db->engine->max_value)
                return KVS_EVALSIZE;
        } else if (ops[i].type != KVS_OP_REMOVE && ops[i].type != KVS_OP_EXPIRE) {
            return KVS_EINVAL;
        }
    }
    return db->engine->write(db, ops, n);
}

int kvs_db_clear(kvs_db *db)
{
    if (!db)
        return KVS_EINVAL;
    return db->engine->clear ? db->engine->clear(db) : KVS_ENOTSUP;
}

int kvs_db_compact(kvs_db *db)
{
    if (!db)
        return KVS_EINVAL;
    return db->engine->compact ? db->engine->compact(db) : KVS_ENOTSUP;
}

int kvs_db_scan(kvs_db *db, uint64_t cursor, size_t count, unsigned flags, kvs_scan_fn fn,
                void *ctx, uint64_t *next)
{
    if (!db || !fn || !next || (flags & ~(KVS_SCAN_VALUES | KVS_SCAN_EXPIRED)))
        return KVS_EINVAL;
    if (!db->engine->scan)
        return KVS_ENOTSUP;
    return db->engine->scan(db, cursor, count ? count : 1, flags, fn, ctx, next);
}

int kvs_db_save(kvs_db *db)
{
    if (!db)
        return KVS_EINVAL;
    return db->engine->save ? db->engine->save(db) : KVS_ENOTSUP;
}

int kvs_db_bgsave(kvs_db *db, bool schedule)
{
    if (!db)
        return KVS_EINVAL;
    return db->engine->bgsave ? db->engine->bgsave(db, schedule) : KVS_ENOTSUP;
}

int kvs_db_save_status(kvs_db *db, kvs_save_status *st)
{
    if (!db || !st)
        return KVS_EINVAL;
    return db->engine->save_status ? db->engine->save_status(db, st) : KVS_ENOTSUP;
}

int kvs_db_info(kvs_db *db, kvs_info_fn fn, void *ctx)
{
    if (!db || !fn)
        return KVS_EINVAL;
    return db->engine->info ? db->engine->info(db, fn, ctx) : KVS_ENOTSUP;
}
