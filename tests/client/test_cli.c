/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * kvs-client, the command-line client, against a real kvs-server on each
 * engine: the exact output and exit status of set/get/rm, missing keys,
 * usage errors, connection errors, a kill -9 and restart in the same data
 * directory, and a server refusing a directory of the other engine.
 */
#include "harness.h"

ParameterizedTestParameters(cli, set_get_rm)
{
    ENGINE_PARAMS;
}

ParameterizedTest(struct ts_engine_param *ep, cli, set_get_rm)
{
    struct env e;
    env_init(&e, ep->name);
    const char *a = e.srv.addr;
    ts_result r;

    cli(&r, "set", "key1", "value1", "--addr", a, NULL);
    expect_run(&r, 0, "", "");
    cli(&r, "get", "key1", "--addr", a, NULL);
    expect_run(&r, 0, "value1\n", "");
    /* --addr may come first, and as --addr=. */
    cli(&r, "--addr", a, "set", "key1", "value2", NULL);
    expect_run(&r, 0, "", "");
    char eq[96];
    snprintf(eq, sizeof(eq), "--addr=%s", a);
    cli(&r, "get", eq, "key1", NULL);
    expect_run(&r, 0, "value2\n", "");

    /* Values with blanks, quotes, UTF-8, and (after --) a leading '-'. */
    cli(&r, "set", "k 2", "h\xc3\xa9llo \"w\" 'x'", "--addr", a, NULL);
    expect_run(&r, 0, "", "");
    cli(&r, "get", "k 2", "--addr", a, NULL);
    expect_run(&r, 0, "h\xc3\xa9llo \"w\" 'x'\n", "");
    cli(&r, "--addr", a, "set", "--", "-k", "-v", NULL);
    expect_run(&r, 0, "", "");
    cli(&r, "--addr", a, "get", "--", "-k", NULL);
    expect_run(&r, 0, "-v\n", "");
    cli(&r, "set", "empty", "", "--addr", a, NULL);
    expect_run(&r, 0, "", "");
    cli(&r, "get", "empty", "--addr", a, NULL);
    expect_run(&r, 0, "\n", "");

    cli(&r, "rm", "key1", "--addr", a, NULL);
    expect_run(&r, 0, "", "");
    cli(&r, "get", "key1", "--addr", a, NULL);
    expect_run(&r, 0, "Key not found\n", "");
    env_fini(&e);
}

ParameterizedTestParameters(cli, missing_keys)
{
    ENGINE_PARAMS;
}

ParameterizedTest(struct ts_engine_param *ep, cli, missing_keys)
{
    struct env e;
    env_init(&e, ep->name);
    ts_result r;
    cli(&r, "get", "nope", "--addr", e.srv.addr, NULL);
    expect_run(&r, 0, "Key not found\n", "");
    cli(&r, "rm", "nope", "--addr", e.srv.addr, NULL);
    expect_run(&r, 1, "", "Key not found\n");
    /* Removing twice: the second finds nothing. */
    cli(&r, "set", "k", "v", "--addr", e.srv.addr, NULL);
    expect_run(&r, 0, "", "");
    cli(&r, "rm", "k", "--addr", e.srv.addr, NULL);
    expect_run(&r, 0, "", "");
    cli(&r, "rm", "k", "--addr", e.srv.addr, NULL);
    expect_run(&r, 1, "", "Key not found\n");
    env_fini(&e);
}

/* What a kill -9 interrupts must not lose what was acknowledged. */
ParameterizedTestParameters(cli, kill9_and_restart_keeps_data)
{
    ENGINE_PARAMS;
}

ParameterizedTest(struct ts_engine_param *ep, cli, kill9_and_restart_keeps_data)
{
    /* A volatile engine keeps only its last snapshot: tests/crash's
       test_crash_mem measures what kill -9 costs it. */
    if (kvs_engine_traits(kvs_engine_find(ep->name)) & KVS_ENGINE_VOLATILE)
        cr_skip_test("engine %s is volatile", ep->name);
    struct env e;
    env_init(&e, ep->name);
    ts_result r;
    cli(&r, "set", "a", "1", "--addr", e.srv.addr, NULL);
    expect_run(&r, 0, "", "");
    cli(&r, "set", "b", "2", "--addr", e.srv.addr, NULL);
    expect_run(&r, 0, "", "");
    cli(&r, "set", "a", "3", "--addr", e.srv.addr, NULL);
    expect_run(&r, 0, "", "");
    cli(&r, "rm", "b", "--addr", e.srv.addr, NULL);
    expect_run(&r, 0, "", "");
    cli(&r, "set", "c", "4", "--addr", e.srv.addr, NULL);
    expect_run(&r, 0, "", "");

    cr_assert_eq(ts_server_kill(&e.srv), 128 + 9);
    int rc = env_start_engine(&e, ep->name);
    if (rc != TS_READY)
        env_dump_log(&e);
    cr_assert_eq(rc, TS_READY, "restart after kill -9: %d, status %d", rc, e.srv.status);

    cli(&r, "get", "a", "--addr", e.srv.addr, NULL);
    expect_run(&r, 0, "3\n", "");
    cli(&r, "get", "b", "--addr", e.srv.addr, NULL);
    expect_run(&r, 0, "Key not found\n", "");
    cli(&r, "get", "c", "--addr", e.srv.addr, NULL);
    expect_run(&r, 0, "4\n", "");
    env_fini(&e);
}

ParameterizedTestParameters(cli, other_engine_is_refused)
{
    ENGINE_PARAMS;
}

ParameterizedTest(struct ts_engine_param *ep, cli, other_engine_is_refused)
{
    /* Any other registered engine: the next one in the registry. */
    size_t n = kvs_engine_count(), i = 0;
    while (i < n && strcmp(kvs_engine_name(kvs_engine_at(i)), ep->name) != 0)
        i++;
    const char *other = kvs_engine_name(kvs_engine_at((i + 1) % n));
    struct env e;
    env_init(&e, ep->name);
    ts_result r;
    cli(&r, "set", "k", "v", "--addr", e.srv.addr, NULL);
    expect_run(&r, 0, "", "");
    cr_assert_eq(ts_server_stop(&e.srv, STOP_MS), 0);

    int rc = env_start_engine(&e, other);
    cr_assert_eq(rc, TS_EXITED, "kvs-server --engine %s on a %s directory: %d", other, ep->name,
                 rc);
    cr_assert_neq(e.srv.status, 0);
    char *log = ts_read_file(e.log, NULL);
    cr_assert_not_null(log);
    cr_assert(strstr(log, ep->name) && strstr(log, other), "the error names both engines:\n%s",
              log);
    free(log);

    /* Nothing was touched: the rightful engine still serves the data. */
    rc = env_start_engine(&e, ep->name);
    cr_assert_eq(rc, TS_READY);
    cli(&r, "get", "k", "--addr", e.srv.addr, NULL);
    expect_run(&r, 0, "v\n", "");
    env_fini(&e);
}

Test(cli, version_and_help)
{
    ts_result r;
    cli(&r, "-V", NULL);
    expect_run(&r, 0, "kvs-client " KVS_VERSION "\n", "");
    cli(&r, "--version", NULL);
    expect_run(&r, 0, "kvs-client " KVS_VERSION "\n", "");
    cli(&r, "-h", NULL);
    cr_assert_eq(r.status, 0);
    cr_assert_not_null(strstr(r.out, "usage: kvs-client"));
    cr_assert_not_null(strstr(r.out, "--addr ADDR"));
    cr_assert_str_eq(r.err, "");
    ts_result_free(&r);
    cli(&r, "--help", NULL);
    cr_assert_eq(r.status, 0);
    cr_assert_not_null(strstr(r.out, "usage: kvs-client"));
    ts_result_free(&r);
}

/* Usage errors exit 2 with a message on stderr and nothing on stdout,
   without connecting anywhere (no server runs in this test). */
Test(cli, usage_errors)
{
    static const char *const cases[][5] = {
        {NULL},
        {"frobnicate", NULL},
        {"get", NULL},
        {"set", "k", NULL},
        {"rm", NULL},
        {"get", "k", "extra", NULL},
        {"set", "k", "v", "extra", NULL},
        {"rm", "k", "extra", NULL},
        {"get", "k", "--bogus", NULL},
        {"-x", "get", "k", NULL},
        {"get", "k", "--addr", NULL},
        {"get", "k", "--addr", "nope", NULL},
        {"get", "k", "--addr", "127.0.0.1", NULL},
        {"get", "k", "--addr", "::1:4000", NULL},
        {"get", "k", "--addr", "127.0.0.1:70000", NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        ts_result r;
        cli(&r, cases[i][0], cases[i][1], cases[i][2], cases[i][3], cases[i][4], NULL);
        cr_assert_eq(r.status, 2, "case %zu: status %d", i, r.status);
        cr_assert_str_eq(r.out, "", "case %zu", i);
        cr_assert_not_null(strstr(r.err, "usage"), "case %zu: stderr '%s'", i, r.err);
        ts_result_free(&r);
    }
}

Test(cli, connection_refused_exits_1)
{
    char addr[32];
    snprintf(addr, sizeof(addr), "127.0.0.1:%u", ts_free_port(NULL));
    const char *cmds[][3] = {{"get", "k", NULL}, {"set", "k", "v"}, {"rm", "k", NULL}};
    for (size_t i = 0; i < 3; i++) {
        ts_result r;
        if (cmds[i][2])
            cli(&r, cmds[i][0], cmds[i][1], cmds[i][2], "--addr", addr, NULL);
        else
            cli(&r, cmds[i][0], cmds[i][1], "--addr", addr, NULL);
        cr_assert_eq(r.status, 1, "%s: status %d", cmds[i][0], r.status);
        cr_assert_str_eq(r.out, "");
        cr_assert_not_null(strstr(r.err, "cannot connect"), "stderr '%s'", r.err);
        ts_result_free(&r);
    }
}
