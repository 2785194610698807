/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Disk full, for real: kvs-server with its data directory on an 8 MiB tmpfs
 * (mounted by the test; skipped where mounting is not allowed), written to
 * until the file system is full.
 *
 * For each engine: a 1 MiB filler file is created on the tmpfs first; SETs
 * of 16 KiB values go in until one is answered with an error, which must
 * name the full disk ("-ERR no space left on device"); every acknowledged
 * key still reads back; the filler is deleted; then the store must take
 * writes again (a failed write is not a failed fsync: kvs cuts the partial
 * append back off its segment); SIGTERM stops the server with status 0;
 * after a restart every acknowledged write is there, the store takes writes,
 * and for kvs, kvs-check finds the directory clean (no torn tail left).
 *
 * Each engine is its own ctest entry (test_diskfull_kvs, _lmdb). At the time
 * of writing the lmdb one fails: LMDB reports a short write as EIO (mdb.c,
 * mdb_page_flush: "short write, filesystem full?"), so the reply says
 * "I/O error", and the engine treats every failed commit as a possibly
 * failed fsync and refuses writes until restarted, also under everysec and
 * no, whose commits do not fsync.
 * The tmpfs is unmounted (lazily) in the teardown, also after a failure.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "support/server.h"

#define VALUE_LEN (16u << 10)
#define MAX_KEYS 2000
#define FILLER_LEN (1u << 20)
#define RESUMED 10

static char work[PATH_MAX], mnt[PATH_MAX + 16], data[PATH_MAX + 32], logf[PATH_MAX + 32];
static bool mounted;
static ts_server srv;
static redisContext *rc_ctx;

static void setup(void)
{
    cr_assert_eq(ts_tmpdir_make(work), 0);
    snprintf(mnt, sizeof(mnt), "%s/mnt", work);
    snprintf(data, sizeof(data), "%s/data", mnt);
    snprintf(logf, sizeof(logf), "%s/server.log", work);
    cr_assert_eq(mkdir(mnt, 0755), 0);
}

static void teardown(void)
{
    if (rc_ctx)
        redisFree(rc_ctx);
    rc_ctx = NULL;
    if (srv.pid > 0)
        ts_server_kill(&srv);
    if (mounted && umount2(mnt, MNT_DETACH) != 0)
        fprintf(stderr, "diskfull: cannot unmount %s: %s\n", mnt, strerror(errno));
    mounted = false;
    ts_tmpdir_remove(work);
}

TestSuite(diskfull, .init = setup, .fini = teardown);

static void key_of(char *out, size_t size, const char *prefix, unsigned i)
{
    snprintf(out, size, "%s-%05u", prefix, i);
}

static void value_of(char *out, unsigned i)
{
    for (size_t j = 0; j < VALUE_LEN; j++)
        out[j] = (char)('a' + (i * 13 + j) % 26);
    char head[32];
    int n = snprintf(head, sizeof(head), "value %u:", i);
    memcpy(out, head, (size_t)n);
}

static const char *fsync_policy = "everysec";

static void start_server(const char *engine)
{
    const char *args[] = {"--engine", engine, "--data-dir", data, "--fsync", fsync_policy, NULL};
    ts_server_opts o = {.binary = KVS_SERVER_BIN, .args = args, .log_path = logf};
    int st = ts_server_start(&srv, &o);
    char *log = ts_read_file(logf, NULL);
    cr_assert_eq(st, TS_READY, "kvs-server did not start (%d): %s", st, log ? log : "");
    free(log);
    struct timeval tv = {10, 0};
    rc_ctx = redisConnectWithTimeout("127.0.0.1", srv.port, tv);
    cr_assert(rc_ctx && !rc_ctx->err, "connect: %s", rc_ctx ? rc_ctx->errstr : "?");
    redisSetTimeout(rc_ctx, tv);
}

static void stop_server(void)
{
    redisFree(rc_ctx);
    rc_ctx = NULL;
    int st = ts_server_stop(&srv, 20000);
    char *log = ts_read_file(logf, NULL);
    cr_expect_eq(st, 0, "kvs-server exited with %d: %s", st, log ? log : "");
    free(log);
    srv.pid = 0;
}

/* SET key value; returns NULL when OK, else the error text (malloc'd). */
static char *set(const char *key, const char *val, size_t len)
{
    redisReply *r = redisCommand(rc_ctx, "SET %s %b", key, val, len);
    cr_assert(r, "SET %s: connection: %s", key, rc_ctx->errstr);
    char *err = NULL;
    if (r->type == REDIS_REPLY_ERROR)
        err = strdup(r->str);
    else
        cr_assert(r->type == REDIS_REPLY_STATUS && strcmp(r->str, "OK") == 0, "SET %s", key);
    freeReplyObject(r);
    return err;
}

static void expect_value(const char *key, const char *val, size_t len)
{
    redisReply *r = redisCommand(rc_ctx, "GET %s", key);
    cr_assert(r, "GET %s: connection: %s", key, rc_ctx->errstr);
    if (val)
        cr_assert(r->type == REDIS_REPLY_STRING && r->len == len && memcmp(r->str, val, len) == 0,
                  "GET %s: type %d, %zu bytes%s%s", key, r->type, r->len,
                  r->type == REDIS_REPLY_ERROR ? ": " : "",
                  r->type == REDIS_REPLY_ERROR ? r->str : "");
    else
        cr_assert(r->type == REDIS_REPLY_NIL, "GET %s: a removed key is back", key);
    freeReplyObject(r);
}

static void make_filler(void)
{
    char path[PATH_MAX + 32];
    snprintf(path, sizeof(path), "%s/filler", mnt);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    cr_assert(fd >= 0);
    char *buf = calloc(1, FILLER_LEN);
    cr_assert(buf);
    memset(buf, 'f', FILLER_LEN);
    cr_assert_eq(write(fd, buf, FILLER_LEN), (ssize_t)FILLER_LEN);
    free(buf);
    close(fd);
}

static void fill_free_restart(const char *engine)
{
    bool kvs = strcmp(engine, "kvs") == 0;
    if (mount("tmpfs", mnt, "tmpfs", 0, "size=8m") != 0) {
        if (errno == EPERM)
            cr_skip("cannot mount a tmpfs here (EPERM): run as root with CAP_SYS_ADMIN");
        cr_assert_fail("mount tmpfs on %s: %s", mnt, strerror(errno));
    }
    mounted = true;
    make_filler();
    start_server(engine);

    char key[64];
    char *val = malloc(VALUE_LEN);
    cr_assert(val);
    unsigned acked = 0;
    char *err = NULL;
    while (!err && acked < MAX_KEYS) {
        key_of(key, sizeof(key), "k", acked);
        value_of(val, acked);
        err = set(key, val, VALUE_LEN);
        if (!err)
            acked++;
    }
    cr_assert(err, "%u SETs of 16 KiB fit on an 8 MiB tmpfs", acked);
    cr_expect(strstr(err, "no space left on device") != NULL, "the error names no full disk: %s",
              err);
    printf("diskfull: %s (fsync %s): %u SETs of 16 KiB acknowledged, then '-%s'\n", engine,
           fsync_policy, acked, err);
    free(err);

    /* Still full: writes fail, reads go on. */
    key_of(key, sizeof(key), "k", acked);
    value_of(val, acked);
    err = set(key, val, VALUE_LEN);
    cr_expect(err != NULL, "a SET succeeded on a full disk");
    printf("diskfull: %s: second SET on the full disk: '-%s'\n", engine, err ? err : "OK");
    free(err);
    for (unsigned i = 0; i < acked; i++) {
        key_of(key, sizeof(key), "k", i);
        value_of(val, i);
        expect_value(key, val, VALUE_LEN);
    }

    /* Free space: the filler goes. */
    char path[PATH_MAX + 32];
    snprintf(path, sizeof(path), "%s/filler", mnt);
    cr_assert_eq(unlink(path), 0);
    unsigned resumed = 0;
    char *first_err = NULL;
    for (unsigned i = 0; i < RESUMED; i++) {
        key_of(key, sizeof(key), "r", i);
        value_of(val, 100000 + i);
        err = set(key, val, VALUE_LEN);
        if (!err)
            resumed++;
        else if (!first_err)
            first_err = strdup(err);
        free(err);
    }
    printf("diskfull: %s: first SET after freeing 1 MiB: '%s%s'\n", engine, first_err ? "-" : "",
           first_err ? first_err : "OK");
    cr_expect_eq(resumed, RESUMED, "%s: %u of %u SETs failed after freeing space: %s", engine,
                 RESUMED - resumed, RESUMED, first_err ? first_err : "");
    free(first_err);
    /* Removes, which append a tombstone in the kvs engine. */
    unsigned removed = 0;
    for (unsigned i = 0; kvs && i < 5 && i < acked; i++) {
        key_of(key, sizeof(key), "k", i);
        redisReply *r = redisCommand(rc_ctx, "DEL %s", key);
        cr_assert(r && r->type == REDIS_REPLY_INTEGER && r->integer == 1, "DEL %s", key);
        freeReplyObject(r);
        removed++;
    }
    printf("diskfull: %s: after freeing space %u of %u SETs succeeded, %u DELs\n", engine, resumed,
           RESUMED, removed);

    /* Restart: everything acknowledged is there. */
    stop_server();
    if (kvs) {
        const char *argv[] = {KVS_CHECK_BIN, data, NULL};
        ts_result r;
        cr_assert_eq(ts_run(argv, NULL, 0, 60000, &r), 0);
        cr_expect_eq(r.status, 0, "kvs-check after the disk filled up:\n%s%s", r.out, r.err);
        ts_result_free(&r);
    }
    start_server(engine);
    for (unsigned i = 0; i < acked; i++) {
        key_of(key, sizeof(key), "k", i);
        value_of(val, i);
        expect_value(key, i < removed ? NULL : val, VALUE_LEN);
    }
    for (unsigned i = 0; i < resumed; i++) {
        key_of(key, sizeof(key), "r", i);
        value_of(val, 100000 + i);
        expect_value(key, val, VALUE_LEN);
    }
    /* And takes writes after the restart, now that there is room. */
    err = set("after-restart", "x", 1);
    cr_expect(err == NULL, "SET after restart: %s", err ? err : "");
    free(err);
    expect_value("after-restart", "x", 1);
    stop_server();
    free(val);
}

Test(diskfull, kvs)
{
    fill_free_restart("kvs");
}

Test(diskfull, lmdb)
{
    fill_free_restart("lmdb");
}

/* Under "always" the kvs engine's writes wait in its group commit. */
Test(diskfull, kvs_always)
{
    fsync_policy = "always";
    fill_free_restart("kvs");
}
