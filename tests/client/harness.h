/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Harness of the client suites that run against a real kvs-server: one
 * server per test on a free port, over a data directory in a fresh temp
 * dir, with its log beside it; restarts in the same directory; and running
 * kvs-client. KVS_SERVER_PATH and KVS_CLIENT_PATH come from CMake.
 */
#ifndef KVS_TESTS_CLIENT_HARNESS_H
#define KVS_TESTS_CLIENT_HARNESS_H

#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kvs/kvs.h"
#include "support/params.h"
#include "support/server.h"

/* Every suite runs on every registered engine (support/params.h). */
#define ENGINE_PARAMS return ts_engine_params()

/* Deadlines: generous, since the suites run under ASan on a shared box. */
#define START_MS 15000
#define STOP_MS 15000
#define RUN_MS 15000

struct env {
    char dir[PATH_MAX];
    char data[PATH_MAX + 8];
    char log[PATH_MAX + 16];
    const char *engine;
    ts_server srv;
};

/* Start a server on engine over e->data. Returns an enum ts_start. */
static inline int env_start_engine(struct env *e, const char *engine)
{
    const char *args[] = {"--engine", engine, "--data-dir", e->data, "--fsync", "no", NULL};
    ts_server_opts opts = {
        .binary = KVS_SERVER_PATH, .args = args, .log_path = e->log, .timeout_ms = START_MS};
    return ts_server_start(&e->srv, &opts);
}

static inline void env_dump_log(const struct env *e)
{
    char *text = ts_read_file(e->log, NULL);
    cr_log_info("kvs-server log:\n%s", text ? text : "(unreadable)");
    free(text);
}

/* A fresh temp dir and a server on engine over its data/ subdirectory. */
static inline void env_init(struct env *e, const char *engine)
{
    memset(e, 0, sizeof(*e));
    e->engine = engine;
    cr_assert_eq(ts_tmpdir_make(e->dir), 0);
    snprintf(e->data, sizeof(e->data), "%s/data", e->dir);
    snprintf(e->log, sizeof(e->log), "%s/server.log", e->dir);
    int rc = env_start_engine(e, engine);
    if (rc != TS_READY)
        env_dump_log(e);
    cr_assert_eq(rc, TS_READY, "kvs-server --engine %s did not start (%d, status %d)", engine, rc,
                 e->srv.status);
    /* The server really runs the engine asked for: the directory says so. */
    char owner[32];
    cr_assert_eq(kvs_dir_engine(e->data, owner, sizeof(owner)), 0);
    cr_assert_str_eq(owner, engine);
}

/* Stop the server gracefully (it must exit 0) and remove the temp dir. */
static inline void env_fini(struct env *e)
{
    if (e->srv.pid > 0) {
        int status = ts_server_stop(&e->srv, STOP_MS);
        if (status != 0)
            env_dump_log(e);
        cr_expect_eq(status, 0, "kvs-server exit status on SIGTERM");
    }
    ts_tmpdir_remove(e->dir);
}

/* Run kvs-client with the given arguments (NULL-terminated). */
static inline void cli(ts_result *r, const char *arg, ...)
{
    const char *argv[16] = {KVS_CLIENT_PATH};
    size_t n = 1;
    va_list ap;
    va_start(ap, arg);
    for (const char *a = arg; a; a = va_arg(ap, const char *)) {
        cr_assert_lt(n, sizeof(argv) / sizeof(argv[0]) - 1);
        argv[n++] = a;
    }
    va_end(ap);
    argv[n] = NULL;
    cr_assert_eq(ts_run(argv, NULL, 0, RUN_MS, r), 0, "kvs-client did not run");
    cr_assert_not(r->timed_out, "kvs-client ran out of time");
}

/* Expect exactly this status, stdout and stderr. */
static inline void expect_run(ts_result *r, int status, const char *out, const char *err)
{
    cr_assert_eq(r->status, status, "status %d, want %d (stdout '%s', stderr '%s')", r->status,
                 status, r->out, r->err);
    cr_assert_str_eq(r->out, out);
    if (err)
        cr_assert_str_eq(r->err, err);
    ts_result_free(r);
}

#endif
