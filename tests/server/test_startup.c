/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * kvs-server's startup: --version and --help, and every way to start it
 * wrong. A failed start must exit 1 with exactly one line on stderr naming
 * the problem, and write nothing (the data directory is not even created,
 * or is left exactly as it was). Also: the startup line, IPv6, and the
 * default engine.
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "kvs/kvs.h"

static size_t count_lines(const char *text)
{
    size_t n = 0;
    for (; *text; text++)
        n += *text == '\n';
    return n;
}

static bool exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* Run kvs-server with args (NULL-terminated) and capture its output. */
static void run_server(const char *const *args, ts_result *r)
{
    const char *argv[32] = {h_server_binary()};
    size_t n = 1;
    for (size_t i = 0; args[i]; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    cr_assert_eq(ts_run(argv, NULL, 0, H_TIMEOUT_MS, r), 0);
    cr_assert(!r->timed_out, "kvs-server did not exit");
}

/* Expect the failure: exit 1, no stdout, one line of stderr with text. */
static void expect_refused(const ts_result *r, const char *text, const char *what)
{
    cr_expect_eq(r->status, 1, "%s: exit %d", what, r->status);
    cr_expect_eq(r->out_len, 0, "%s: stdout \"%s\"", what, r->out);
    cr_expect_eq(count_lines(r->err), 1, "%s: stderr \"%s\"", what, r->err);
    cr_expect(r->err_len > 0 && r->err[r->err_len - 1] == '\n', "%s: \"%s\"", what, r->err);
    cr_expect(strstr(r->err, text) != NULL, "%s: \"%s\" lacks \"%s\"", what, r->err, text);
}

Test(startup, version_and_help)
{
    static const char *const version_flags[] = {"-V", "--version"};
    for (size_t i = 0; i < 2; i++) {
        const char *args[] = {version_flags[i], NULL};
        ts_result r;
        run_server(args, &r);
        cr_expect_eq(r.status, 0);
        cr_expect_str_eq(r.out, "kvs-server " KVS_VERSION "\n");
        cr_expect_eq(r.err_len, 0);
        ts_result_free(&r);
    }
    static const char *const help_flags[] = {"-h", "--help"};
    for (size_t i = 0; i < 2; i++) {
        const char *args[] = {help_flags[i], NULL};
        ts_result r;
        run_server(args, &r);
        cr_expect_eq(r.status, 0);
        static const char *const options[] = {"--addr",    "--engine",    "--data-dir",
                                              "--fsync",   "--threads",   "--maxclients",
                                              "--timeout", "--log-level", "lmdb"};
        for (size_t j = 0; j < sizeof(options) / sizeof(options[0]); j++)
            cr_expect(strstr(r.out, options[j]), "help lacks %s", options[j]);
        ts_result_free(&r);
    }
}

struct bad_args {
    const char *args[4];
    const char *text; /* what the error line must contain */
};

static const struct bad_args bad_args[] = {
    {{"--bogus"}, "unknown option '--bogus'"},
    {{"-x"}, "unknown option '-x'"},
    {{"stray"}, "option '--data-dir' takes 1 value, not 2 (next: 'stray')"},
    {{"--threads", "1", "stray"}, "option '--threads' takes 1 value, not 2 (next: 'stray')"},
    {{"--threads"}, "option '--threads' needs a value"},
    {{"--threads", "0"}, "--threads"},
    {{"--threads", "two"}, "--threads"},
    {{"--maxclients", "-1"}, "--maxclients"},
    {{"--maxclients", "0"}, "--maxclients"},
    {{"--timeout", "1s"}, "--timeout"},
    {{"--fsync", "sometimes"}, "--fsync 'sometimes'"},
    {{"--io-backend", "kqueue"}, "--io-backend 'kqueue'"},
    {{"--log-level", "loud"}, "--log-level 'loud'"},
    {{"--engine", "nosuch"}, "unknown engine 'nosuch'"},
    {{"--addr", "nohost.invalid:4000"}, "invalid --addr 'nohost.invalid:4000': cannot resolve"},
    {{"--addr", "127.0.0.1"}, "invalid --addr"},
    {{"--addr", "127.0.0.1:99999"}, "invalid --addr"},
    {{"--addr", "::1:4000"}, "invalid --addr"},
    {{"--addr", "[::1]"}, "invalid --addr"},
    /* Sizes that overflow are refused, not wrapped: 2^34 gb is 2^64 bytes,
       which wrapped to 0 (no limit); 2^34 + 1 gb wrapped to 1gb. */
    {{"--max-output-buffer", "17179869184gb"}, "--max-output-buffer '17179869184gb': too large"},
    {{"--max-output-buffer", "17179869184GB"}, "--max-output-buffer '17179869184GB': too large"},
    {{"--max-query-buffer", "17179869185gb"}, "--max-query-buffer '17179869185gb': too large"},
    {{"--max-query-buffer", "18014398509481985kb"}, "--max-query-buffer '18014398509481985kb'"},
    {{"--max-output-buffer", "99999999999999999999999"}, "--max-output-buffer '9999"},
    {{"--max-output-buffer", "4611686018427387904"}, "--max-output-buffer '4611686018427387904'"},
    /* Negative and garbage sizes. */
    {{"--max-output-buffer", "-1"}, "--max-output-buffer '-1'"},
    {{"--max-output-buffer", "-1gb"}, "--max-output-buffer '-1gb'"},
    {{"--max-output-buffer", ""}, "--max-output-buffer ''"},
    {{"--max-output-buffer", "1.5gb"}, "--max-output-buffer '1.5gb'"},
    {{"--max-output-buffer", "2mb "}, "--max-output-buffer '2mb '"},
    {{"--max-query-buffer", " 2mb"}, "--max-query-buffer ' 2mb'"},
    {{"--max-query-buffer", "+2mb"}, "--max-query-buffer '+2mb'"},
    {{"--max-query-buffer", "0x100000"}, "--max-query-buffer '0x100000'"},
    {{"--max-query-buffer", "2tb"}, "--max-query-buffer '2tb'"},
    {{"--hz", "0"}, "--hz '0'"},
    {{"--hz", "501"}, "--hz '501'"},
    {{"--hz", "-1"}, "--hz '-1'"},
    {{"--active-expire-effort", "0"}, "--active-expire-effort '0'"},
    {{"--active-expire-effort", "11"}, "--active-expire-effort '11'"},
};

Test(startup, bad_arguments)
{
    char dir[PATH_MAX], data[PATH_MAX + 16], addr[64];
    cr_assert_eq(ts_tmpdir_make(dir), 0);
    snprintf(data, sizeof(data), "%s/data", dir);
    /* A valid address first, so that a wrongly accepted flag cannot make
       the server bind a shared port; a later --addr overrides it. */
    snprintf(addr, sizeof(addr), "127.0.0.1:%u", (unsigned)ts_free_port(NULL));
    for (size_t i = 0; i < sizeof(bad_args) / sizeof(bad_args[0]); i++) {
        const char *args[12] = {"--addr", addr, "--data-dir", data};
        size_t n = 4;
        for (size_t j = 0; j < 4 && bad_args[i].args[j]; j++)
            args[n++] = bad_args[i].args[j];
        args[n] = NULL;
        ts_result r;
        run_server(args, &r);
        expect_refused(&r, bad_args[i].text, bad_args[i].args[0]);
        cr_expect(!exists(data), "%s created the data directory", bad_args[i].args[0]);
        ts_result_free(&r);
    }
    ts_tmpdir_remove(dir);
}

Test(startup, port_in_use)
{
    char dir[PATH_MAX], data[PATH_MAX + 16], addr[64];
    cr_assert_eq(ts_tmpdir_make(dir), 0);
    snprintf(data, sizeof(data), "%s/data", dir);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    cr_assert_eq(listen(fd, 1), 0);
    socklen_t len = sizeof(sa);
    getsockname(fd, (struct sockaddr *)&sa, &len);
    snprintf(addr, sizeof(addr), "127.0.0.1:%u", (unsigned)ntohs(sa.sin_port));
    const char *args[] = {"--addr", addr, "--data-dir", data, "--engine", "lmdb", NULL};
    ts_result r;
    run_server(args, &r);
    expect_refused(&r, addr, "port in use");
    cr_expect(strstr(r.err, "in use"), "%s", r.err);
    cr_expect(!exists(data), "the data directory was created");
    ts_result_free(&r);
    close(fd);
    ts_tmpdir_remove(dir);
}

/* Names, sizes and modification times of the files in dir, as text. */
static void snapshot(const char *dir, char *out, size_t size)
{
    size_t used = 0;
    out[0] = '\0';
    struct dirent **names;
    int n = scandir(dir, &names, NULL, alphasort);
    cr_assert_geq(n, 0, "scandir %s: %s", dir, strerror(errno));
    for (int i = 0; i < n; i++) {
        char path[PATH_MAX + 300];
        struct stat st;
        snprintf(path, sizeof(path), "%s/%s", dir, names[i]->d_name);
        if (strcmp(names[i]->d_name, ".") && strcmp(names[i]->d_name, "..") &&
            stat(path, &st) == 0 && used < size)
            used += (size_t)snprintf(out + used, size - used, "%s %lld %lld.%09ld\n",
                                     names[i]->d_name, (long long)st.st_size,
                                     (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
        free(names[i]);
    }
    free(names);
}

/* A directory written by one engine is refused by the other, untouched. */
static void other_engine(const char *owner, const char *intruder)
{
    struct h_server h;
    h_start(&h, owner, NULL);
    char *out = h_cli(&h, "SET", "k", "v", NULL);
    free(out);
    h_stop_keep(&h);

    char before[8192], after[8192];
    snapshot(h.data, before, sizeof(before));
    char addr[64];
    snprintf(addr, sizeof(addr), "127.0.0.1:%u", (unsigned)ts_free_port(NULL));
    const char *args[] = {"--addr", addr, "--data-dir", h.data, "--engine", intruder, NULL};
    ts_result r;
    run_server(args, &r);
    expect_refused(&r, owner, intruder);
    cr_expect(strstr(r.err, intruder), "%s", r.err);
    ts_result_free(&r);
    snapshot(h.data, after, sizeof(after));
    cr_expect_str_eq(after, before, "the directory changed");

    /* With no --engine, the directory's own engine is used. */
    h_restart(&h, (const char *const[]){NULL});
    out = h_cli(&h, "GET", "k", NULL);
    cr_expect_str_eq(out, "v\n");
    free(out);
    h_stop(&h);
}

Test(startup, lmdb_directory_refuses_kvs)
{
    other_engine("lmdb", "kvs");
}

Test(startup, kvs_directory_refuses_lmdb)
{
    other_engine("kvs", "lmdb");
}

/* A fresh directory with no --engine gets the native engine; no --threads
   gets one worker per core but one, at least one. */
Test(startup, defaults)
{
    char dir[PATH_MAX], data[PATH_MAX + 16], log[PATH_MAX + 16];
    cr_assert_eq(ts_tmpdir_make(dir), 0);
    snprintf(data, sizeof(data), "%s/data", dir);
    snprintf(log, sizeof(log), "%s/log", dir);
    const char *args[] = {"--data-dir", data, NULL};
    ts_server_opts opts = {.binary = h_server_binary(), .args = args, .log_path = log};
    ts_server s;
    cr_assert_eq(ts_server_start(&s, &opts), TS_READY);
    char engine[32];
    cr_expect_eq(kvs_dir_engine(data, engine, sizeof(engine)), 0);
    cr_expect_str_eq(engine, "kvs");
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    char threads[32];
    snprintf(threads, sizeof(threads), " %ld threads,", cores > 2 ? cores - 1 : 1);
    size_t len;
    char *text = ts_read_file(log, &len);
    cr_assert_not_null(text);
    cr_expect(strstr(text, threads), "startup line lacks \"%s\": %s", threads, text);
    free(text);
    cr_expect_eq(ts_server_stop(&s, H_TIMEOUT_MS), 0);
    ts_tmpdir_remove(dir);
}

ParameterizedTestParameters(startup, startup_line)
{
    H_ENGINE_PARAMS;
}

/* One line before the first client: version, engine, fsync, address and
   data directory. */
ParameterizedTest(struct ts_engine_param *engine, startup, startup_line)
{
    struct h_server h;
    static const char *const args[] = {"--fsync", "no", NULL};
    h_start(&h, engine->name, args);
    size_t len;
    char *log = ts_read_file(h.log, &len);
    cr_assert_not_null(log);
    cr_expect_eq(count_lines(log), 1, "%s", log);
    /* A volatile engine's line gives its snapshots instead of the fsync. */
    bool in_memory = kvs_engine_traits(kvs_engine_find(engine->name)) & KVS_ENGINE_VOLATILE;
    const char *wanted[] = {KVS_VERSION, engine->name,
                            in_memory ? "snapshots every 5s" : "fsync no", h.s.addr, h.data};
    for (size_t i = 0; i < sizeof(wanted) / sizeof(wanted[0]); i++)
        cr_expect(strstr(log, wanted[i]), "startup line lacks \"%s\": %s", wanted[i], log);
    free(log);
    h_stop(&h);
}

/* --io-backend: INFO's multiplexing_api names the path taken, CONFIG GET
   the option; auto takes io_uring where the kernel has it (this one);
   without the option, epoll (unless $KVS_TEST_IO_BACKEND chose). */
Test(startup, io_backend)
{
    static const struct {
        const char *opt, *api;
    } cases[] = {{"epoll", "multiplexing_api:epoll\r\n"},
                 {"io_uring", "multiplexing_api:io_uring\r\n"},
                 {"auto", "multiplexing_api:io_uring\r\n"},
                 {NULL, "multiplexing_api:epoll\r\n"}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *const args[] = {"--io-backend", cases[i].opt, NULL};
        const char *env = getenv("KVS_TEST_IO_BACKEND");
        if (!cases[i].opt && env && *env)
            continue;
        struct h_server h;
        h_start(&h, "kvs", cases[i].opt ? args : NULL);
        char *info = h_cli(&h, "INFO", "server", NULL);
        cr_expect(strstr(info, cases[i].api), "--io-backend %s: %s", cases[i].opt, info);
        free(info);
        char *got = h_cli(&h, "CONFIG", "GET", "io-backend", NULL);
        char want[64];
        snprintf(want, sizeof(want), "io-backend\n%s\n", cases[i].opt ? cases[i].opt : "epoll");
        cr_expect_str_eq(got, want);
        free(got);
        h_stop(&h);
    }
}

/* --addr [::1]:PORT, served to an IPv6 client. */
Test(startup, ipv6)
{
    char dir[PATH_MAX], data[PATH_MAX + 16], log[PATH_MAX + 16];
    cr_assert_eq(ts_tmpdir_make(dir), 0);
    snprintf(data, sizeof(data), "%s/data", dir);
    snprintf(log, sizeof(log), "%s/log", dir);
    if (ts_free_port("::1") == 0)
        cr_skip_test("no IPv6 loopback on this machine");
    const char *args[] = {"--data-dir", data, "--engine", "lmdb", NULL};
    ts_server_opts opts = {
        .binary = h_server_binary(), .args = args, .log_path = log, .host = "::1"};
    ts_server s;
    cr_assert_eq(ts_server_start(&s, &opts), TS_READY);
    char port[16];
    snprintf(port, sizeof(port), "%u", (unsigned)s.port);
    const char *argv[] = {REDIS_CLI, "-h", "::1", "-p", port, "PING", NULL};
    ts_result r;
    cr_assert_eq(ts_run(argv, NULL, 0, H_TIMEOUT_MS, &r), 0);
    cr_expect_str_eq(r.out, "PONG\n");
    ts_result_free(&r);
    char *text = ts_read_file(log, NULL);
    cr_expect(text && strstr(text, s.addr), "%s", text);
    free(text);
    cr_expect_eq(ts_server_stop(&s, H_TIMEOUT_MS), 0);
    ts_tmpdir_remove(dir);
}
