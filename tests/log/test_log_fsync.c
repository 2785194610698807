/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Durability of the kvs engine: every fsync policy round-trips and keeps
 * what was acknowledged across kill -9; a failed fsync turns the store
 * read-only (reads go on); a failed write is not acknowledged and leaves
 * the store usable and whole; the same for batches (kvs_db_write), where a
 * failure leaves a prefix of the batch applied. The threaded group commit
 * cases are in scenarios.c.
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/fileio.h"
#include "engines/log/klog_db.h"
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

/* A batch: b0..b19 set, then b0..b19 step 3 removed again. */
#define BATCH 27
static kvs_op batch_ops[BATCH];
static char batch_keys[20][8];

static void make_batch(void)
{
    for (int i = 0; i < 20; i++) {
        snprintf(batch_keys[i], sizeof(batch_keys[i]), "b%d", i);
        batch_ops[i] =
            (kvs_op){KVS_OP_SET, kvs_slice_str(batch_keys[i]), kvs_slice_str("batch value"), -1, 0};
    }
    for (int i = 0; i < 7; i++)
        batch_ops[20 + i] = (kvs_op){KVS_OP_REMOVE, kvs_slice_str(batch_keys[i * 3]), {0}, -1, 0};
}

static void check_batch(kvs_db *db)
{
    for (int i = 0; i < 20; i++)
        lt_expect(db, batch_keys[i], i % 3 == 0 ? NULL : "batch value");
}

/* Every policy round-trips, and what was acknowledged, by single writes and
   by a batch, survives the process being killed with SIGKILL (no close, no
   final sync). */
static void policy(kvs_fsync p)
{
    make_batch();
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
        if (kvs_db_write(db, batch_ops, BATCH) != 0)
            _exit(1);
        raise(SIGKILL);
        _exit(2);
    }
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    kvs_db *db = lt_open(dir, &opts);
    lt_expect(db, "k7", NULL);
    check_batch(db);
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

/* ---- batches ---- */

Test(log_fsync, batch_failed_fsync_applies_nothing)
{
    make_batch();
    opts.fsync = KVS_FSYNC_ALWAYS;
    kvs_db *db = lt_open(dir, &opts);
    fill(db, 10);
    kvs__fault_set(KVS__FAULT_FSYNC, 1, KVS_EIO);
    cr_assert_eq(kvs_db_write(db, batch_ops, BATCH), KVS_EIO);
    for (int i = 0; i < 20; i++)
        lt_expect(db, batch_keys[i], NULL); /* not acknowledged, not visible */
    cr_assert_eq(kvs_db_write(db, batch_ops, 1), KVS_EREADONLY);
    expect_readonly(db);
    kvs_db_close(db);
}

/* Each record of a batch of n; with 4 KiB segments it spans several. */
static void big_batch(kvs_op *ops, char (*keys)[16], char *val, size_t n)
{
    memset(val, 'v', 300);
    for (size_t i = 0; i < n; i++) {
        snprintf(keys[i], sizeof(keys[i]), "bb%u", (unsigned)(i % 1000));
        ops[i] = (kvs_op){KVS_OP_SET, kvs_slice_str(keys[i]), kvs_slice_of(val, 100 + i), -1, 0};
    }
}

/* How many ops of the batch the store holds: they must be a prefix. */
static size_t applied_prefix(kvs_db *db, const kvs_op *ops, size_t n)
{
    kvs_buf buf = KVS_BUF_INIT;
    size_t prefix = 0;
    for (size_t i = 0; i < n; i++) {
        int rc = kvs_db_get(db, ops[i].key, &buf);
        if (rc == 0) {
            cr_assert_eq(prefix, i, "op %zu applied after op %zu was not", i, prefix);
            cr_assert_eq(buf.len, ops[i].value.len);
            prefix++;
        } else {
            cr_assert_eq(rc, KVS_ENOTFOUND);
        }
    }
    kvs_buf_free(&buf);
    return prefix;
}

static void failed_write_in_batch(kvs_fsync p, unsigned long nth)
{
    enum { N = 60 };
    kvs_op ops[N];
    char keys[N][16], val[300];
    big_batch(ops, keys, val, N);
    opts.fsync = p;
    opts.segment_max_bytes = 4096;
    kvs_db *db = lt_open(dir, &opts);
    lt_set(db, "before", "the batch");
    kvs__fault_set(KVS__FAULT_WRITE, nth, KVS_EIO);
    cr_assert_eq(kvs_db_write(db, ops, N), KVS_EIO);
    kvs__fault_set(KVS__FAULT_WRITE, 0, 0);
    size_t prefix = applied_prefix(db, ops, N);
    cr_assert_lt(prefix, N);
    /* A failed write is not a failed fsync: the store goes on. */
    lt_set(db, "after", "the batch");
    kvs_db_close(db);
    db = lt_open(dir, &opts);
    cr_assert_eq(applied_prefix(db, ops, N), prefix);
    lt_expect(db, "before", "the batch");
    lt_expect(db, "after", "the batch");
    cr_assert_eq(kvs_db_write(db, ops, N), 0);
    cr_assert_eq(applied_prefix(db, ops, N), N);
    kvs_db_close(db);
}

Test(log_fsync, batch_failed_first_write_applies_nothing)
{
    failed_write_in_batch(KVS_FSYNC_ALWAYS, 1);
    lt_rmrf(dir);
    cr_assert_eq(mkdir(dir, 0755), 0);
    failed_write_in_batch(KVS_FSYNC_NO, 1);
}

Test(log_fsync, batch_failed_later_write_leaves_a_prefix)
{
    for (unsigned long nth = 2; nth <= 5; nth++) {
        failed_write_in_batch(nth % 2 ? KVS_FSYNC_ALWAYS : KVS_FSYNC_NO, nth);
        lt_rmrf(dir);
        cr_assert_eq(mkdir(dir, 0755), 0);
    }
}

/* A remove of a key that is nowhere writes nothing, also in a batch. */
Test(log_fsync, remove_of_missing_key_writes_nothing)
{
    opts.fsync = KVS_FSYNC_ALWAYS;
    kvs_db *db = lt_open(dir, &opts);
    lt_set(db, "present", "yes");
    kvs_stats before, after;
    kvs_db_stats(db, &before);
    cr_assert_eq(kvs_db_remove(db, kvs_slice_str("absent")), KVS_ENOTFOUND);
    kvs_op op = {KVS_OP_REMOVE, kvs_slice_str("absent"), {0}, -1, 0};
    cr_assert_eq(kvs_db_write(db, &op, 1), 0);
    cr_assert_eq(op.result, KVS_ENOTFOUND);
    kvs_db_stats(db, &after);
    cr_assert_eq(after.disk_bytes, before.disk_bytes);
    kvs_db_close(db);
}

/* After the background sync failed, kvs_db_sync() must not say that the
   data it should have covered is durable (audit bug 6: the background sync
   cleared its dirty flag before its fdatasync, so a kvs_db_sync() after or
   during it returned 0 without syncing). */
Test(log_fsync, sync_after_a_failed_background_sync_fails)
{
    opts.fsync = KVS_FSYNC_EVERYSEC;
    kvs_db *db = lt_open(dir, &opts);
    fill(db, 10);
    cr_assert_eq(kvs_db_sync(db), 0);
    kvs__fault_set(KVS__FAULT_FSYNC, 1, KVS_EIO);
    lt_set(db, "acked", "before the failure");
    cr_assert(lt_log_wait("refusing writes", 10), "no failed sync: %s", lt_log_text());
    cr_assert_eq(kvs_db_sync(db), KVS_EIO, "kvs_db_sync() called data durable that is not");
    cr_assert_eq(kvs_db_sync(db), KVS_EIO);
    kvs_db_close(db);
}

/* ---- the once-a-second sync beside a long compaction (audit bug 4) ---- */

static atomic_bool compaction_held, release_compaction;

/* Holds the background compaction at STEP_RENAMED until released (at most
   20 s, so that a failing test cannot hang). */
static void hold_compaction(int step)
{
    if (step != 3 || atomic_exchange(&compaction_held, true))
        return;
    for (int i = 0; i < 2000 && !atomic_load(&release_compaction); i++)
        usleep(10000);
}

Test(log_fsync, everysec_sync_keeps_pace_during_compaction)
{
    opts.fsync = KVS_FSYNC_EVERYSEC;
    opts.segment_max_bytes = 4096;
    opts.compact_min_stale_bytes = UINT64_MAX;
    kvs_db *db = lt_open(dir, &opts);
    for (int round = 0; round < 10; round++)
        fill(db, 100);
    kvs_db_close(db);

    atomic_store(&compaction_held, false);
    atomic_store(&release_compaction, false);
    kvs__log_crash_hook = hold_compaction;
    opts.compact_min_stale_bytes = 1024;
    db = lt_open(dir, &opts);
    lt_set(db, "wake", "up");
    for (int i = 0; i < 1000 && !atomic_load(&compaction_held); i++)
        usleep(10000);
    cr_assert(atomic_load(&compaction_held), "no background compaction started");
    /* The active segment exists; the next fsync of any kind is the sync of
       "acked", and it fails, which the log reports. */
    lt_set(db, "before", "arming");
    kvs__fault_set(KVS__FAULT_FSYNC, 1, KVS_EIO);
    lt_set(db, "acked", "while compacting");
    bool synced = lt_log_wait("refusing writes", 5);
    atomic_store(&release_compaction, true);
    kvs__fault_set(KVS__FAULT_FSYNC, 0, 0);
    cr_assert(synced, "no sync for 5 s while a compaction ran: %s", lt_log_text());
    kvs_db_close(db);
    kvs__log_crash_hook = NULL;
}

/* A batch under "no" (or "everysec") is applied without an fsync: a
   kvs_db_sync() after it must still sync (the crash-state suite found it
   returning at once, the batch counted as durable). */
Test(log_fsync, sync_after_an_unsynced_batch_syncs)
{
    make_batch();
    kvs_db *db = lt_open(dir, &opts);
    fill(db, 10);
    cr_assert_eq(kvs_db_sync(db), 0);
    cr_assert_eq(kvs_db_write(db, batch_ops, BATCH), 0);
    kvs__fault_set(KVS__FAULT_FSYNC, 1, KVS_EIO);
    int rc = kvs_db_sync(db);
    kvs__fault_set(KVS__FAULT_FSYNC, 0, 0);
    cr_assert_eq(rc, KVS_EIO, "kvs_db_sync() after a batch did not sync: %s", kvs_err_name(rc));
    kvs_db_close(db);
}
