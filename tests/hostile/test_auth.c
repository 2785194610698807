/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Access control: --requirepass with Redis's AUTH, HELLO AUTH and NOAUTH
 * texts, the small request limits of clients that have not authenticated
 * (CVE-2021-32675), --requirepass-file, and protected mode, end to end
 * through this machine's non-loopback address when it has one, and as a
 * unit on server/auth.c's decisions.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hostile.h"
#include "server/auth.h"
#include "server/server.h"

#define NOAUTH "-NOAUTH Authentication required.\r\n"
#define WRONGPASS "-WRONGPASS invalid username-password pair or user is disabled.\r\n"
#define HELLO_NOAUTH                                                                               \
    "-NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO "     \
    "<proto> AUTH <user> <pass> option can be used to authenticate the client and select the "     \
    "RESP protocol version at the same time\r\n"
#define NOPASS_AUTH                                                                                \
    "-ERR AUTH <password> called without any password configured for the default user. Are "       \
    "you sure your configuration is correct?\r\n"
#define HELLO_HEAD "*14\r\n$6\r\nserver\r\n$3\r\nkvs\r\n"

static const char *const with_pass[] = {"--requirepass", "s3cret", NULL};

/* Read a whole HELLO reply: its head, then up to the "modules" empty array. */
static void expect_hello(int fd)
{
    H_EXPECT(fd, HELLO_HEAD);
    char tail[256];
    size_t got = 0;
    for (;;) {
        cr_assert_lt(got, sizeof(tail) - 1);
        h_recv(fd, &tail[got++], 1);
        tail[got] = '\0';
        if (strstr(tail, "$7\r\nmodules\r\n*0\r\n"))
            break;
    }
}

Test(auth, requirepass)
{
    struct h_server h;
    h_start(&h, "kvs", with_pass);
    int fd = h_connect(&h);
    /* Nothing but AUTH, HELLO and QUIT before authenticating; an unknown
       command or a wrong count is answered as such first, as Redis does. */
    H_ROUNDTRIP(fd, "PING\r\n", NOAUTH);
    H_ROUNDTRIP(fd, "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n", NOAUTH);
    H_ROUNDTRIP(fd, "SET k v\r\n", NOAUTH);
    H_ROUNDTRIP(fd, "CONFIG GET maxclients\r\n", NOAUTH);
    H_ROUNDTRIP(fd, "NOSUCH\r\n", "-ERR unknown command 'NOSUCH', with args beginning with: \r\n");
    H_ROUNDTRIP(fd, "GET\r\n", "-ERR wrong number of arguments for 'get' command\r\n");
    H_ROUNDTRIP(fd, "AUTH\r\n", "-ERR wrong number of arguments for 'auth' command\r\n");
    H_ROUNDTRIP(fd, "AUTH a b c\r\n", "-ERR syntax error\r\n");
    /* Wrong passwords, near misses and other users. */
    H_ROUNDTRIP(fd, "AUTH wrong\r\n", WRONGPASS);
    H_ROUNDTRIP(fd, "AUTH s3cre\r\n", WRONGPASS);
    H_ROUNDTRIP(fd, "AUTH s3cretX\r\n", WRONGPASS);
    H_ROUNDTRIP(fd, "AUTH S3CRET\r\n", WRONGPASS);
    H_ROUNDTRIP(fd, "AUTH \"\"\r\n", WRONGPASS);
    H_ROUNDTRIP(fd, "AUTH default wrong\r\n", WRONGPASS);
    H_ROUNDTRIP(fd, "AUTH bob s3cret\r\n", WRONGPASS);
    H_ROUNDTRIP(fd, "HELLO\r\n", HELLO_NOAUTH);
    H_ROUNDTRIP(fd, "HELLO 2\r\n", HELLO_NOAUTH);
    H_ROUNDTRIP(fd, "HELLO 2 AUTH default wrong\r\n", WRONGPASS);
    H_ROUNDTRIP(fd, "HELLO 2 AUTH bob s3cret\r\n", WRONGPASS);
    H_ROUNDTRIP(fd, "PING\r\n", NOAUTH);
    /* The password opens everything. */
    H_ROUNDTRIP(fd, "AUTH s3cret\r\n", "+OK\r\n");
    H_ROUNDTRIP(fd, "SET k v\r\n", "+OK\r\n");
    H_ROUNDTRIP(fd, "GET k\r\n", "$1\r\nv\r\n");
    /* A failed AUTH later does not take it back (Redis keeps the user). */
    H_ROUNDTRIP(fd, "AUTH wrong\r\n", WRONGPASS);
    H_ROUNDTRIP(fd, "PING\r\n", "+PONG\r\n");
    close(fd);

    /* AUTH default PASSWORD, and in a pipeline with what follows. */
    fd = h_connect(&h);
    H_ROUNDTRIP(fd, "AUTH default s3cret\r\nGET k\r\n", "+OK\r\n$1\r\nv\r\n");
    close(fd);

    /* HELLO 2 AUTH default PASSWORD authenticates and answers HELLO. */
    fd = h_connect(&h);
    h_send(fd, "HELLO 2 AUTH default s3cret SETNAME me\r\n", 40);
    expect_hello(fd);
    H_ROUNDTRIP(fd, "CLIENT GETNAME\r\n", "$2\r\nme\r\n");
    H_ROUNDTRIP(fd, "GET k\r\n", "$1\r\nv\r\n");
    close(fd);

    /* QUIT needs no password. */
    fd = h_connect(&h);
    H_ROUNDTRIP(fd, "QUIT\r\n", "+OK\r\n");
    cr_expect(h_closed(fd));
    close(fd);

    /* redis-cli -a, as a user would. */
    char *out = h_cli(&h, "--no-auth-warning", "-a", "s3cret", "GET", "k", NULL);
    cr_expect_str_eq(out, "v\n");
    free(out);
    out = h_cli(&h, "GET", "k", NULL);
    cr_expect(strstr(out, "NOAUTH"), "%s", out);
    free(out);

    /* The password was wiped from the command line ps shows. */
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)h.s.pid);
    size_t len = 0;
    char *cmdline = ts_read_file(path, &len);
    cr_assert_not_null(cmdline);
    bool leaked = memmem(cmdline, len, "s3cret", 6) != NULL;
    free(cmdline);
    cr_expect(!leaked, "the password is still in /proc/PID/cmdline");
    h_stop(&h);
}

/* Before AUTH: at most 10 arguments and 16 KiB bulks, else Redis's
   protocol error and a closed connection; after it, the usual limits. */
Test(auth, unauthenticated_limits)
{
    struct h_server h;
    h_start(&h, "kvs", with_pass);
    static const struct {
        const char *bytes;
        const char *reply;
    } refused[] = {
        {"*11\r\n", "-ERR Protocol error: unauthenticated multibulk length\r\n"},
        {"*1024\r\n", "-ERR Protocol error: unauthenticated multibulk length\r\n"},
        {"*1\r\n$16385\r\n", "-ERR Protocol error: unauthenticated bulk length\r\n"},
        {"*2\r\n$4\r\nAUTH\r\n$536870912\r\n",
         "-ERR Protocol error: unauthenticated bulk length\r\n"},
        /* Malformed stays malformed. */
        {"*3000000000\r\n", "-ERR Protocol error: invalid multibulk length\r\n"},
        {"*1\r\n$-10\r\n", "-ERR Protocol error: invalid bulk length\r\n"},
        {"*1\r\n$600000000\r\n", "-ERR Protocol error: invalid bulk length\r\n"},
    };
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        int fd = h_connect(&h);
        h_send(fd, refused[i].bytes, strlen(refused[i].bytes));
        h_expect(fd, refused[i].reply, strlen(refused[i].reply));
        cr_expect(h_closed(fd), "left open after %s", refused[i].bytes);
        close(fd);
    }
    /* At the limits: 10 arguments, a 16384-byte bulk. */
    int fd = h_connect(&h);
    H_ROUNDTRIP(fd,
                "*10\r\n$4\r\nAUTH\r\n$1\r\na\r\n$1\r\na\r\n$1\r\na\r\n$1\r\na\r\n$1\r\na\r\n"
                "$1\r\na\r\n$1\r\na\r\n$1\r\na\r\n$1\r\na\r\n",
                "-ERR syntax error\r\n");
    size_t big = 16384;
    char *bulk = malloc(big + 64);
    cr_assert_not_null(bulk);
    int n = snprintf(bulk, 64, "*2\r\n$4\r\nAUTH\r\n$%zu\r\n", big);
    memset(bulk + n, 'p', big);
    memcpy(bulk + n + big, "\r\n", 2);
    h_send(fd, bulk, (size_t)n + big + 2);
    H_EXPECT(fd, WRONGPASS);
    /* Authenticated, the same connection may send 11 arguments and a
       100 KB value. */
    H_ROUNDTRIP(fd, "AUTH s3cret\r\n", "+OK\r\n");
    H_ROUNDTRIP(fd,
                "*11\r\n$4\r\nMSET\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\nb\r\n$1\r\n2\r\n$1\r\nc\r\n"
                "$1\r\n3\r\n$1\r\nd\r\n$1\r\n4\r\n$1\r\ne\r\n$1\r\n5\r\n",
                "+OK\r\n");
    size_t vlen = 100000;
    char *set = malloc(vlen + 64);
    cr_assert_not_null(set);
    n = snprintf(set, 64, "*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n$%zu\r\n", vlen);
    memset(set + n, 'v', vlen);
    memcpy(set + n + vlen, "\r\n", 2);
    h_send(fd, set, (size_t)n + vlen + 2);
    H_EXPECT(fd, "+OK\r\n");
    H_ROUNDTRIP(fd, "EXISTS big\r\n", ":1\r\n");
    free(set);
    free(bulk);
    close(fd);
    h_stop(&h);
}

Test(auth, no_password_configured)
{
    struct h_server h;
    h_start(&h, "kvs", NULL);
    int fd = h_connect(&h);
    H_ROUNDTRIP(fd, "PING\r\n", "+PONG\r\n");
    H_ROUNDTRIP(fd, "AUTH anything\r\n", NOPASS_AUTH);
    /* The default user has no password: any password is its password. */
    H_ROUNDTRIP(fd, "AUTH default anything\r\n", "+OK\r\n");
    H_ROUNDTRIP(fd, "AUTH bob anything\r\n", WRONGPASS);
    H_ROUNDTRIP(fd, "HELLO 2 AUTH bob anything\r\n", WRONGPASS);
    h_send(fd, "HELLO 2 AUTH default anything\r\n", 31);
    expect_hello(fd);
    h_send(fd, "HELLO\r\n", 7);
    expect_hello(fd);
    /* No unauthenticated limits without a password. */
    H_ROUNDTRIP(fd,
                "*11\r\n$4\r\nPING\r\n$1\r\na\r\n$1\r\na\r\n$1\r\na\r\n$1\r\na\r\n$1\r\na\r\n"
                "$1\r\na\r\n$1\r\na\r\n$1\r\na\r\n$1\r\na\r\n$1\r\na\r\n",
                "-ERR wrong number of arguments for 'ping' command\r\n");
    close(fd);
    h_stop(&h);
}

Test(auth, requirepass_file)
{
    char dir[PATH_MAX];
    cr_assert_eq(ts_tmpdir_make(dir), 0);
    char file[PATH_MAX + 16];
    snprintf(file, sizeof(file), "%s/pass", dir);
    FILE *f = fopen(file, "w");
    cr_assert_not_null(f);
    fputs("from file\r\nsecond line ignored\n", f);
    fclose(f);
    const char *const args[] = {"--requirepass-file", file, NULL};
    struct h_server h;
    h_start(&h, "lmdb", args);
    int fd = h_connect(&h);
    H_ROUNDTRIP(fd, "PING\r\n", NOAUTH);
    H_ROUNDTRIP(fd, "AUTH \"from file\\r\"\r\n", WRONGPASS);
    H_ROUNDTRIP(fd, "AUTH \"from file\"\r\n", "+OK\r\n");
    H_ROUNDTRIP(fd, "PING\r\n", "+PONG\r\n");
    close(fd);
    h_stop(&h);

    /* A missing or empty file stops the server at startup, in one line. */
    FILE *empty = fopen(file, "w");
    cr_assert_not_null(empty);
    fputs("\n", empty);
    fclose(empty);
    char missing[PATH_MAX + 16];
    snprintf(missing, sizeof(missing), "%s/nosuch", dir);
    const char *const files[] = {file, missing};
    const char *const why[] = {"holds no password", "invalid --requirepass-file"};
    for (size_t i = 0; i < 2; i++) {
        const char *argv[] = {h_server_binary(), "--requirepass-file", files[i], NULL};
        ts_result r;
        cr_assert_eq(ts_run(argv, NULL, 0, H_TIMEOUT_MS, &r), 0);
        cr_expect_eq(r.status, 1);
        cr_expect(strstr(r.err, why[i]), "%s", r.err);
        ts_result_free(&r);
    }
    ts_tmpdir_remove(dir);
}

/* The decisions themselves, whatever the machine's interfaces. */
Test(auth, protected_mode_decision)
{
    static const struct {
        const char *ip;
        bool loopback;
    } v4[] = {{"127.0.0.1", true}, {"127.255.1.2", true}, {"192.0.2.2", false},
              {"10.0.0.1", false}, {"0.0.0.0", false},    {"128.0.0.1", false}};
    for (size_t i = 0; i < sizeof(v4) / sizeof(v4[0]); i++) {
        struct sockaddr_in sa = {.sin_family = AF_INET};
        cr_assert_eq(inet_pton(AF_INET, v4[i].ip, &sa.sin_addr), 1);
        const struct sockaddr *p = (const struct sockaddr *)&sa;
        cr_expect_eq(auth_peer_is_loopback(p), v4[i].loopback, "%s", v4[i].ip);
        cr_expect_eq(auth_protected_refuses(true, false, p), !v4[i].loopback, "%s", v4[i].ip);
        cr_expect(!auth_protected_refuses(true, true, p), "%s with a password", v4[i].ip);
        cr_expect(!auth_protected_refuses(false, false, p), "%s, protected mode off", v4[i].ip);
    }
    static const struct {
        const char *ip;
        bool loopback;
    } v6[] = {{"::1", true},
              {"::ffff:127.0.0.1", true},
              {"::ffff:10.1.2.3", false},
              {"2001:db8::1", false},
              {"::", false}};
    for (size_t i = 0; i < sizeof(v6) / sizeof(v6[0]); i++) {
        struct sockaddr_in6 sa = {.sin6_family = AF_INET6};
        cr_assert_eq(inet_pton(AF_INET6, v6[i].ip, &sa.sin6_addr), 1);
        const struct sockaddr *p = (const struct sockaddr *)&sa;
        cr_expect_eq(auth_peer_is_loopback(p), v6[i].loopback, "%s", v6[i].ip);
        cr_expect_eq(auth_protected_refuses(true, false, p), !v6[i].loopback, "%s", v6[i].ip);
    }
}

Test(auth, password_compare)
{
    struct server_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    kvs_slice s3cret = {"s3cret", 6};
    cr_expect(!auth_required(&cfg));
    cr_expect(!auth_password_matches(&cfg, s3cret), "no password matches nothing");
    char pass[] = "s3cret";
    cfg.requirepass = pass;
    cfg.requirepass_len = 6;
    cr_expect(auth_required(&cfg));
    cr_expect(auth_password_matches(&cfg, s3cret));
    static const char *const wrong[] = {"",       "s",      "s3cre",        "s3cretX",
                                        "S3cret", "s3cres", "s3crets3cret", "x3cret"};
    for (size_t i = 0; i < sizeof(wrong) / sizeof(wrong[0]); i++)
        cr_expect(!auth_password_matches(&cfg, (kvs_slice){wrong[i], strlen(wrong[i])}), "%s",
                  wrong[i]);
    /* Binary-safe: a NUL is a byte like another. */
    char nul[] = {'a', '\0', 'b'};
    cfg.requirepass = nul;
    cfg.requirepass_len = 3;
    cr_expect(auth_password_matches(&cfg, (kvs_slice){"a\0b", 3}));
    cr_expect(!auth_password_matches(&cfg, (kvs_slice){"a\0c", 3}));
    cr_expect(!auth_password_matches(&cfg, (kvs_slice){"a", 1}));
}

/* The new options refuse bad values in one line, before anything starts. */
Test(auth, bad_options)
{
    static const struct {
        const char *opt, *val, *why;
    } bad[] = {
        {"--protected-mode", "maybe", "invalid --protected-mode 'maybe'"},
        {"--max-query-buffer", "10", "invalid --max-query-buffer '10'"},
        {"--max-query-buffer", "1tb", "invalid --max-query-buffer '1tb'"},
        {"--max-query-buffer", "-1", "invalid --max-query-buffer '-1'"},
        {"--max-output-buffer", "5kb", "invalid --max-output-buffer '5kb'"},
        {"--max-output-buffer", "lots", "invalid --max-output-buffer 'lots'"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        const char *argv[] = {h_server_binary(), bad[i].opt, bad[i].val, NULL};
        ts_result r;
        cr_assert_eq(ts_run(argv, NULL, 0, H_TIMEOUT_MS, &r), 0);
        cr_expect_eq(r.status, 1, "%s %s", bad[i].opt, bad[i].val);
        cr_expect(strstr(r.err, bad[i].why), "%s", r.err);
        ts_result_free(&r);
    }
    /* Sizes as Redis writes them are taken. */
    static const char *const good[] = {"--max-query-buffer",
                                       "1gb",
                                       "--max-output-buffer",
                                       "0",
                                       "--protected-mode",
                                       "no",
                                       "--max-query-buffer",
                                       "4MB",
                                       "--max-output-buffer",
                                       "2000000",
                                       NULL};
    struct h_server h;
    h_start(&h, "kvs", good);
    int fd = h_connect(&h);
    H_ROUNDTRIP(fd, "PING\r\n", "+PONG\r\n");
    close(fd);
    h_stop(&h);
}
