/*
 * Durability of the kvs engine: every fsync policy round-trips and keeps
 * what was acknowledged across kill -9; a failed fsync turns the store
 * read-only (reads go on); a failed write is not acknowledged and leaves
 * the store usable and whole.
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "engines/fileio.h"
#include "helpers.h"

static char *dir;
static kvs_options opts;

static void setup(void)
{
    dir = lt_tmpdir_or_fail();
    lt_opts(&opts);
}

static void teardown(void)
{
    lt_rmrf(dir);
    free(dir);
}

TestSuite(log_fsync, .init = setup, .fini = teardown, .timeout = 60);

static void fill(kvs_db *db, int n)
{
    char key[32], val[32];
    for (int i = 0; i < n; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        snprintf(val, sizeof(val), "v%d", i);
        lt_set(db, key, val);
    }
}

static void check(kvs_db *db, int n)
{
    char key[32], val[32];
    for (int i = 0; i < n; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        snprintf(val, sizeof(val), "v%d", i);
        lt_expect(db, key, val);
    }
}

/* Every policy round-trips, and what was acknowledged survives the process
   being killed with SIGKILL (no close, no final sync). */
static void policy(kvs_fsync p)
{
    opts.fsync = p;
    opts.segment_max_bytes = 4096;
    fflush(NULL);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        kvs_db *db = NULL;
        if (kvs_db_open(dir, &opts, &db, NULL) != 0)
            _exit(1);
        fill(db, 300);
        if (kvs_db_remove(db, kvs_slice_str("k7")) != 0)
            _exit(1);
        raise(SIGKILL);
        _exit(2);
    }
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    kvs_db *db = lt_open(dir, &opts);
    lt_expect(db, "k7", NULL);
    lt_set(db, "k7", "v7");
    check(db, 300);
    cr_assert_eq(kvs_db_sync(db), 0);
    cr_assert_eq(kvs_db_close(db), 0);
    db = lt_open(dir, &opts);
    check(db, 300);
    kvs_db_close(db);
}

Test(log_fsync, always_round_trips)
{
    policy(KVS_FSYNC_ALWAYS);
}

Test(log_fsync, everysec_round_trips)
{
    policy(KVS_FSYNC_EVERYSEC);
}

Test(log_fsync, no_round_trips)
{
    policy(KVS_FSYNC_NO);
}

static void expect_readonly(kvs_db *db)
{
    cr_assert_eq(kvs_db_set(db, kvs_slice_str("x"), kvs_slice_str("y")), KVS_EREADONLY);
    cr_assert_eq(kvs_db_remove(db, kvs_slice_str("k1")), KVS_EREADONLY);
    cr_assert_eq(kvs_db_clear(db), KVS_EREADONLY);
    cr_assert_eq(kvs_db_compact(db), KVS_EREADONLY);
    check(db, 10); /* reads go on */
}

Test(log_fsync, always_failed_fsync_turns_read_only)
{
    opts.fsync = KVS_FSYNC_ALWAYS;
    kvs_db *db = lt_open(dir, &opts);
    fill(db, 10);
    kvs__fault_set(KVS__FAULT_FSYNC, 1, KVS_EIO);
    cr_assert_eq(kvs_db_set(db, kvs_slice_str("lost"), kvs_slice_str("?")), KVS_EIO);
    lt_expect(db, "lost", NULL); /* not acknowledged, not visible */
    expect_readonly(db);
    cr_assert_not_null(strstr(lt_log_text(), "refusing writes"));
    kvs_db_close(db);

    db = lt_open(dir, &opts);
    check(db, 10);
    lt_set(db, "after", "reopen"); /* a reopen clears the state */
    kvs_db_close(db);
}

Test(log_fsync, everysec_failed_fsync_turns_read_only)
{
    opts.fsync = KVS_FSYNC_EVERYSEC;
    kvs_db *db = lt_open(dir, &opts);
    fill(db, 10);
    /* Nothing left to sync, so the armed failure hits the sync of "acked"
       and not one of the writes before it. */
    cr_assert_eq(kvs_db_sync(db), 0);
    kvs__fault_set(KVS__FAULT_FSYNC, 1, KVS_EIO);
    lt_set(db, "acked", "before the failure");
    /* The background thread's next sync fails within about a second. */
    cr_assert(lt_log_wait("refusing writes", 10), "no failed sync: %s", lt_log_text());
    expect_readonly(db);
    lt_expect(db, "acked", "before the failure");
    kvs_db_close(db);

    db = lt_open(dir, &opts);
    check(db, 10);
    lt_expect(db, "acked", "before the failure");
    kvs_db_close(db);
}

Test(log_fsync, failed_sync_call_turns_read_only)
{
    kvs_db *db = lt_open(dir, &opts);
    fill(db, 10);
    kvs__fault_set(KVS__FAULT_FSYNC, 1, KVS_EIO);
    cr_assert_eq(kvs_db_sync(db), KVS_EIO);
    expect_readonly(db);
    kvs_db_close(db);
}

Test(log_fsync, failed_write_not_acknowledged)
{
    opts.fsync = KVS_FSYNC_ALWAYS;
    kvs_db *db = lt_open(dir, &opts);
    fill(db, 10);
    lt_set(db, "x", "old");
    kvs__fault_set(KVS__FAULT_WRITE, 1, KVS_ENOSPC);
    cr_assert_eq(kvs_db_set(db, kvs_slice_str("x"), kvs_slice_str("new")), KVS_ENOSPC);
    lt_expect(db, "x", "old");
    kvs__fault_set(KVS__FAULT_WRITE, 1, KVS_EIO);
    cr_assert_eq(kvs_db_remove(db, kvs_slice_str("k1")), KVS_EIO);
    lt_expect(db, "k1", "v1");
    /* Not read-only: a write failure is not a sync failure. */
    lt_set(db, "y", "after");
    kvs_db_close(db);

    db = lt_open(dir, &opts);
    check(db, 10);
    lt_expect(db, "x", "old");
    lt_expect(db, "y", "after");
    kvs_db_close(db);
}
