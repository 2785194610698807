/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The contract's thread scenarios (scenarios.c) as a plain program, for the
 * ThreadSanitizer build, where Criterion cannot start (scenarios.h says
 * why). Runs every registered engine, or those named on the command line,
 * each in a fresh directory under /tmp with the default fsync policy
 * (everysec), so that an engine's background threads run beside the
 * scenario's, then the batch scenario under "always". Prints one line per scenario and a closing
 * "N passed, N failed" line; exits non-zero if any failed.
 */
#include <stdio.h>
#include <string.h>

#include "contract/scenarios.h"
#include "kvs/kvs.h"
#include "support/tmpdir.h"

static int passed, failed;

static void report(const char *engine, const char *scenario, bool ok, const char *msg)
{
    if (ok)
        passed++;
    else
        failed++;
    printf("%s %s/%s%s%s\n", ok ? "[PASS]" : "[FAIL]", engine, scenario, ok ? "" : ": ", msg);
    fflush(stdout);
}

/* Run one scenario call, which explains a failure in msg, and report it. */
#define RUN(name, call)                                                                            \
    do {                                                                                           \
        char msg[256] = "";                                                                        \
        bool ok_ = (call);                                                                         \
        report(engine, name, ok_, msg);                                                            \
    } while (0)

static kvs_db *open_policy(const char *dir, const char *engine, kvs_fsync policy)
{
    kvs_options opts;
    kvs_options_init(&opts);
    opts.engine = engine;
    opts.fsync = policy;
    kvs_db *db = NULL;
    char why[KVS_WHY_MAX] = "";
    int rc = kvs_db_open(dir, &opts, &db, why);
    if (rc != 0) {
        char msg[KVS_WHY_MAX + 64];
        snprintf(msg, sizeof(msg), "%s (%s)", kvs_err_name(rc), why);
        report(engine, "open", false, msg);
        return NULL;
    }
    return db;
}

static kvs_db *open_engine(const char *dir, const char *engine)
{
    return open_policy(dir, engine, KVS_FSYNC_EVERYSEC);
}

static void close_engine(const char *engine, kvs_db *db)
{
    int rc = kvs_db_close(db);
    if (rc != 0)
        report(engine, "close", false, kvs_err_name(rc));
}

/* Batches from many threads under "always" (group commit in the kvs
   engine), then the same state after a reopen. */
static void run_batches(const char *engine)
{
    char dir[PATH_MAX];
    if (ts_tmpdir_make(dir) != 0) {
        report(engine, "mkdtemp", false, "cannot create a directory under /tmp");
        return;
    }
    kvs_db *db = open_policy(dir, engine, KVS_FSYNC_ALWAYS);
    if (db) {
        RUN("batches_always", kvs_scn_batches(db, 16, 20, msg, sizeof(msg)));
        close_engine(engine, db);
        db = open_policy(dir, engine, KVS_FSYNC_NO);
    }
    if (db) {
        RUN("batches_after_reopen", kvs_scn_batches_visible(db, 16, 20, msg, sizeof(msg)));
        close_engine(engine, db);
    }
    ts_tmpdir_remove(dir);
}

static void run_engine(const char *engine)
{
    char dir[PATH_MAX];
    if (ts_tmpdir_make(dir) != 0) {
        report(engine, "mkdtemp", false, "cannot create a directory under /tmp");
        return;
    }
    kvs_db *db = open_engine(dir, engine);
    if (db) {
        RUN("thousand_writer_threads", kvs_scn_writers(db, 1000, msg, sizeof(msg)) &&
                                           kvs_scn_writers_visible(db, 1000, msg, sizeof(msg)));
        int rc = kvs_db_close(db);
        if (rc != 0)
            report(engine, "close", false, kvs_err_name(rc));
        db = open_engine(dir, engine);
    }
    if (db) {
        RUN("writers_visible_after_reopen", kvs_scn_writers_visible(db, 1000, msg, sizeof(msg)));
        RUN("hundred_reader_threads", kvs_scn_readers(db, 100, 100, msg, sizeof(msg)));
        RUN("readers_during_overwrites", kvs_scn_overwrites(db, 4, msg, sizeof(msg)));
        RUN("readers_during_big_writes", kvs_scn_big_writes(db, 3, 80, msg, sizeof(msg)));
        RUN("batches", kvs_scn_batches(db, 8, 50, msg, sizeof(msg)));
        RUN("scan_beside_writers", kvs_scn_scan_beside_writers(db, 5, msg, sizeof(msg)));
        int rc = kvs_db_close(db);
        if (rc != 0)
            report(engine, "close", false, kvs_err_name(rc));
    }
    ts_tmpdir_remove(dir);
    run_batches(engine);
}

int main(int argc, char **argv)
{
    if (argc > 1) {
        for (int i = 1; i < argc; i++)
            run_engine(argv[i]);
    } else {
        for (size_t i = 0; i < kvs_engine_count(); i++)
            run_engine(kvs_engine_name(kvs_engine_at(i)));
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
