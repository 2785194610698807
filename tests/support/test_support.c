/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The test support library checked on its own, so that a failure in a
 * server test is a failure of the server: ts_run's capture, input and
 * deadline; ts_server_start's three outcomes (ready, exited, timed out)
 * with redis-server and sh as stand-ins; stop and kill statuses; temp dirs.
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "support/server.h"

Test(support, run_captures_output_and_status)
{
    ts_result r;
    const char *argv[] = {"sh", "-c", "printf 'out\\0x'; echo err >&2; exit 3", NULL};
    cr_assert_eq(ts_run(argv, NULL, 0, 5000, &r), 0);
    cr_assert_eq(r.status, 3);
    cr_assert_not(r.timed_out);
    cr_assert_eq(r.out_len, 5);
    cr_assert(memcmp(r.out, "out\0x", 5) == 0);
    cr_assert_str_eq(r.err, "err\n");
    ts_result_free(&r);
}

Test(support, run_feeds_input)
{
    size_t len = 1u << 20;
    char *input = malloc(len);
    for (size_t i = 0; i < len; i++)
        input[i] = (char)(i % 251);
    ts_result r;
    const char *argv[] = {"cat", NULL};
    cr_assert_eq(ts_run(argv, input, len, 10000, &r), 0);
    cr_assert_eq(r.status, 0);
    cr_assert_eq(r.out_len, len);
    cr_assert(memcmp(r.out, input, len) == 0);
    ts_result_free(&r);
    free(input);
}

Test(support, run_kills_at_the_deadline)
{
    ts_result r;
    const char *argv[] = {"sleep", "30", NULL};
    cr_assert_eq(ts_run(argv, NULL, 0, 200, &r), 0);
    cr_assert(r.timed_out);
    cr_assert_eq(r.status, 128 + 9);
    ts_result_free(&r);
}

Test(support, run_reports_a_missing_program)
{
    ts_result r;
    const char *argv[] = {"/nonexistent/kvs-no-such-program", NULL};
    cr_assert_eq(ts_run(argv, NULL, 0, 1000, &r), -1);
    cr_assert_eq(r.status, -1);
    cr_assert_str_eq(r.out, "");
    ts_result_free(&r);
}

Test(support, tmpdir_make_and_remove)
{
    char dir[PATH_MAX], path[PATH_MAX + 32];
    cr_assert_eq(ts_tmpdir_make(dir), 0);
    snprintf(path, sizeof(path), "%s/sub", dir);
    cr_assert_eq(mkdir(path, 0755), 0);
    snprintf(path, sizeof(path), "%s/sub/file", dir);
    int fd = open(path, O_WRONLY | O_CREAT, 0644);
    cr_assert_geq(fd, 0);
    close(fd);
    cr_assert_eq(ts_tmpdir_remove(dir), 0);
    cr_assert_neq(access(dir, F_OK), 0);
}

Test(support, free_port_is_nonzero)
{
    cr_assert_neq(ts_free_port(NULL), 0);
    cr_assert_neq(ts_free_port("127.0.0.1"), 0);
}

Test(support, server_that_exits_is_reported)
{
    ts_server s;
    ts_server_opts opts = {.binary = "false", .timeout_ms = 5000};
    cr_assert_eq(ts_server_start(&s, &opts), TS_EXITED);
    cr_assert_eq(s.status, 1);
    cr_assert_eq(s.pid, 0);
}

Test(support, server_that_never_listens_times_out)
{
    ts_server s;
    const char *args[] = {"-c", "exec sleep 30", NULL};
    ts_server_opts opts = {.binary = "sh",
                           .args = args,
                           .no_addr = true,
                           .port = ts_free_port(NULL),
                           .timeout_ms = 300};
    cr_assert_eq(ts_server_start(&s, &opts), TS_TIMEOUT);
    cr_assert(s.timed_out);
    cr_assert_eq(s.pid, 0);
}

/* redis-server stands in for kvs-server: it listens, and exits 0 on
   SIGTERM. Its log goes to a file that ts_read_file reads back. */
Test(support, server_ready_stop_and_kill)
{
    if (access("/usr/bin/redis-server", X_OK) != 0)
        cr_skip_test("redis-server is not installed");
    char dir[PATH_MAX], log[PATH_MAX + 16], port[8];
    cr_assert_eq(ts_tmpdir_make(dir), 0);
    snprintf(log, sizeof(log), "%s/log", dir);
    uint16_t p = ts_free_port(NULL);
    snprintf(port, sizeof(port), "%u", p);
    const char *args[] = {"--port",       port, "--bind", "127.0.0.1", "--save", "",
                          "--appendonly", "no", "--dir",  dir,         NULL};
    ts_server_opts opts = {.binary = "/usr/bin/redis-server",
                           .args = args,
                           .log_path = log,
                           .no_addr = true,
                           .port = p};
    ts_server s;
    cr_assert_eq(ts_server_start(&s, &opts), TS_READY);
    cr_assert_gt(s.pid, 0);
    char want[32];
    snprintf(want, sizeof(want), "127.0.0.1:%u", p);
    cr_assert_str_eq(s.addr, want);

    ts_result r;
    const char *cli[] = {"redis-cli", "-p", port, "PING", NULL};
    cr_assert_eq(ts_run(cli, NULL, 0, 5000, &r), 0);
    cr_assert_str_eq(r.out, "PONG\n");
    ts_result_free(&r);

    cr_assert_eq(ts_server_stop(&s, 5000), 0);
    cr_assert_not(s.timed_out);
    cr_assert_eq(ts_server_stop(&s, 5000), -1, "no child any more");
    char *text = ts_read_file(log, NULL);
    cr_assert_not_null(text);
    cr_assert_not_null(strstr(text, "Ready to accept connections"));
    free(text);

    cr_assert_eq(ts_server_start(&s, &opts), TS_READY);
    cr_assert_eq(ts_server_kill(&s), 128 + 9);
    cr_assert_eq(ts_tmpdir_remove(dir), 0);
}
