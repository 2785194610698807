/*
 * kvs_dir_check(): find the checker of the engine that wrote a directory,
 * through the registry, and run it (kvs/check.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kvs/check.h"
#include "kvs/engine.h"
#include "owner.h"

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
    const struct kvs_engine *engine;
    int rc = kvs__owner_read(dir_fd, r->engine, sizeof(r->engine));
    if (rc == 0) {
        engine = kvs_engine_find(r->engine);
        fprintf(out, "engine: %s\n", r->engine);
    } else if (rc == KVS_ENOTFOUND) {
        engine = kvs__owner_guess(dir_fd);
        if (!engine)
            engine = kvs_engine_at(0);
        fprintf(out, "missing ENGINE record in %s (checking it as a %s store)\n", dir,
                engine->name);
        r->problems++;
        r->engine[0] = '\0';
    } else {
        kvs__why(why, "cannot read the ENGINE record of %s: %s", dir, kvs_strerror(rc));
        close(dir_fd);
        return rc;
    }
    close(dir_fd);
    if (!engine) {
        kvs__why(why, "%s was written by engine '%s', which this build lacks", dir, r->engine);
        return KVS_ENOENGINE;
    }
    if (!engine->check) {
        kvs__why(why, "%s: engine '%s' has no checker", dir, engine->name);
        return KVS_ENOTSUP;
    }
    return engine->check(dir, repair_dir, out, r, why);
}

int kvs__check_repair_open(const char *dir, const char *repair_dir, const char *engine,
                           kvs_db **dbp, char *why)
{
    kvs_options o;
    kvs_options_init(&o);
    o.engine = engine;
    o.fsync = KVS_FSYNC_NO; /* one sync at the end */
    return kvs_db_open_new(repair_dir, dir, &o, dbp, why);
}
