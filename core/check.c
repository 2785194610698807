/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * kvs_dir_check(): find the checker of the engine that wrote a directory,
 * through the registry, and run it (kvs/check.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kvs/check.h"
#include "kvs/engine.h"
#include "owner.h"

/* The salvage sink over the repair store. */
static int salvage_set(void *ctx, kvs_slice key, kvs_slice value, int64_t expire_at)
{
    return kvs_db_set_ex(ctx, key, value, expire_at);
}

static int salvage_remove(void *ctx, kvs_slice key)
{
    int rc = kvs_db_remove(ctx, key);
    return rc == KVS_ENOTFOUND ? 0 : rc;
}

static int salvage_clear(void *ctx)
{
    return kvs_db_clear(ctx);
}

/* The engine that wrote the directory open at dir_fd, told to out. */
static int which_engine(const char *dir, int dir_fd, FILE *out, struct kvs_check_report *r,
                        const struct kvs_engine **engine, char *why)
{
    int rc = kvs__owner_read(dir_fd, r->engine, sizeof(r->engine));
    if (rc == 0) {
        fprintf(out, "engine: %s\n", r->engine);
        *engine = kvs_engine_find(r->engine);
        if (!*engine) {
            kvs__why(why, "%s was written by engine '%s', which this build lacks", dir, r->engine);
            return KVS_ENOENGINE;
        }
        return 0;
    }
    if (rc != KVS_ENOTFOUND) {
        kvs__why(why, "cannot read the ENGINE record of %s: %s", dir, kvs_strerror(rc));
        return rc;
    }
    *engine = kvs__owner_guess(dir_fd);
    if (!*engine)
        *engine = kvs_engine_at(0);
    fprintf(out, "missing ENGINE record in %s (checking it as a %s store)\n", dir, (*engine)->name);
    r->problems++;
    r->engine[0] = '\0';
    return 0;
}

int kvs_dir_check(const char *dir, const char *repair_dir, FILE *out, struct kvs_check_report *r,
                  char *why)
{
    memset(r, 0, sizeof(*r));
    fprintf(out, "kvs-check %s\n", dir);
    int dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir_fd < 0) {
        kvs__why(why, "%s is not a directory: %s", dir, strerror(errno));
        return KVS_ENOTFOUND;
    }
    /* The lock kvs_db_open() takes: no server may write while we read. */
    int rc = 0;
    if (flock(dir_fd, LOCK_EX | LOCK_NB) != 0) {
        rc = errno == EWOULDBLOCK ? KVS_ELOCKED : kvs_err_from_errno(errno);
        kvs__why(why, "%s: %s", dir, kvs_strerror(rc));
        goto out_close;
    }
    const struct kvs_engine *engine;
    rc = which_engine(dir, dir_fd, out, r, &engine, why);
    if (rc != 0)
        goto out_close;
    if (!engine->check) {
        kvs__why(why, "%s: engine '%s' has no checker", dir, engine->name);
        rc = KVS_ENOTSUP;
        goto out_close;
    }
    kvs_db *repair = NULL;
    if (repair_dir) {
        kvs_options o;
        kvs_options_init(&o);
        o.engine = engine->name;
        o.fsync = KVS_FSYNC_NO; /* one sync at the end */
        rc = kvs_db_open_new(repair_dir, dir, &o, &repair, why);
        if (rc != 0)
            goto out_close;
    }
    struct kvs_salvage salvage = {salvage_set, salvage_remove, salvage_clear, repair};
    rc = engine->check(dir, dir_fd, repair ? &salvage : NULL, out, r, why);
    if (repair) {
        int src = kvs_db_sync(repair);
        int crc = kvs_db_close(repair);
        if (rc == 0 && (src != 0 || crc != 0)) {
            rc = src ? src : crc;
            kvs__why(why, "cannot flush %s: %s", repair_dir, kvs_strerror(rc));
        }
        if (rc == 0)
            fprintf(out, "repaired into %s: %" PRIu64 " records salvaged, %" PRIu64 " live keys\n",
                    repair_dir, r->salvaged, r->live_keys);
    }
    if (rc == 0)
        fprintf(out, "result: %s (%" PRIu64 " problems)\n", r->problems ? "PROBLEMS" : "clean",
                r->problems);
out_close:
    close(dir_fd);
    return rc;
}
