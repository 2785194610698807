/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The client side's deployment features (issue 18), against a real
 * kvs-server: host names in --addr (client and server), AUTH in the
 * library and kvs-client's -a/--pass and $KVS_PASSWORD, the generic
 * command call and its reply trees, MGET/MSET/EXISTS, and timeouts.
 * The engine does not matter to any of it: kvs only.
 */
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "kvs/client.h"

/* A server with a password, listening on "localhost:PORT" (a name). */
static void start_with_pass(struct env *e)
{
    memset(e, 0, sizeof(*e));
    e->engine = "kvs";
    cr_assert_eq(ts_tmpdir_make(e->dir), 0);
    snprintf(e->data, sizeof(e->data), "%s/data", e->dir);
    snprintf(e->log, sizeof(e->log), "%s/server.log", e->dir);
    uint16_t port = ts_free_port(NULL);
    char addr[64];
    snprintf(addr, sizeof(addr), "localhost:%u", (unsigned)port);
    const char *args[] = {"--addr",        addr,          "--data-dir", e->data,
                          "--requirepass", "s3cret pass", NULL};
    ts_server_opts o = {.binary = KVS_SERVER_PATH,
                        .args = args,
                        .log_path = e->log,
                        .no_addr = true,
                        .port = port,
                        .timeout_ms = START_MS};
    int rc = ts_server_start(&e->srv, &o);
    if (rc != TS_READY)
        env_dump_log(e);
    cr_assert_eq(rc, TS_READY);
    snprintf(e->srv.addr, sizeof(e->srv.addr), "localhost:%u", (unsigned)port);
}

static kvs_client *connect_to(const char *addr)
{
    kvs_client *c = NULL;
    char why[256] = "";
    int rc = kvs_client_connect(addr, 0, &c, why, sizeof(why));
    cr_assert_eq(rc, 0, "connect %s: %s", addr, why);
    return c;
}

Test(client_api, host_names_and_auth, .timeout = 60)
{
    struct env e;
    start_with_pass(&e);
    kvs_client *c = connect_to(e.srv.addr);
    /* Not authenticated yet: the server's NOAUTH. */
    cr_expect_eq(kvs_client_set(c, kvs_slice_str("k"), kvs_slice_str("v")), KVS_ESERVER);
    cr_expect(strncmp(kvs_client_last_error(c), "NOAUTH", 6) == 0, "%s", kvs_client_last_error(c));
    cr_expect_eq(kvs_client_auth(c, NULL, kvs_slice_str("wrong")), KVS_ESERVER);
    cr_expect(strncmp(kvs_client_last_error(c), "WRONGPASS", 9) == 0, "%s",
              kvs_client_last_error(c));
    cr_expect_eq(kvs_client_auth(c, "default", kvs_slice_str("s3cret pass")), 0);
    cr_expect_eq(kvs_client_set(c, kvs_slice_str("k"), kvs_slice_str("v")), 0);
    kvs_client_close(c);
    c = connect_to(e.srv.addr);
    cr_expect_eq(kvs_client_auth(c, NULL, kvs_slice_str("s3cret pass")), 0);
    kvs_buf v = KVS_BUF_INIT;
    cr_expect_eq(kvs_client_get(c, kvs_slice_str("k"), &v), 0);
    cr_expect(v.len == 1 && memcmp(v.data, "v", 1) == 0);
    kvs_buf_free(&v);
    kvs_client_close(c);

    /* A name that does not resolve. */
    char why[256] = "";
    c = NULL;
    cr_expect_eq(kvs_client_connect("nohost.invalid:4000", 0, &c, why, sizeof(why)), KVS_ECONNECT);
    cr_expect(strstr(why, "cannot resolve 'nohost.invalid'"), "%s", why);

    /* kvs-client: -a, --pass, --pass=, $KVS_PASSWORD; a wrong one exits 1. */
    ts_result r;
    cli(&r, "get", "k", "--addr", e.srv.addr, "-a", "s3cret pass", NULL);
    expect_run(&r, 0, "v\n", "");
    cli(&r, "--pass", "s3cret pass", "get", "k", "--addr", e.srv.addr, NULL);
    expect_run(&r, 0, "v\n", "");
    cli(&r, "--pass=s3cret pass", "get", "k", "--addr", e.srv.addr, NULL);
    expect_run(&r, 0, "v\n", "");
    cli(&r, "get", "k", "--addr", e.srv.addr, "-a", "nope", NULL);
    cr_expect_eq(r.status, 1);
    cr_expect(strstr(r.err, "AUTH failed: WRONGPASS"), "%s", r.err);
    ts_result_free(&r);
    cli(&r, "get", "k", "--addr", e.srv.addr, NULL);
    cr_expect_eq(r.status, 1);
    cr_expect(strstr(r.err, "NOAUTH"), "%s", r.err);
    ts_result_free(&r);
    setenv("KVS_PASSWORD", "s3cret pass", 1);
    cli(&r, "get", "k", "--addr", e.srv.addr, NULL);
    unsetenv("KVS_PASSWORD");
    expect_run(&r, 0, "v\n", "");
    env_fini(&e);
}

Test(client_api, command_and_multi_key, .timeout = 60)
{
    struct env e;
    env_init(&e, "kvs");
    kvs_client *c = connect_to(e.srv.addr);
    kvs_reply *r = NULL;
    kvs_slice ping[] = {kvs_slice_str("PING")};
    cr_assert_eq(kvs_client_command(c, 1, ping, &r), 0);
    cr_expect(r->type == KVS_REPLY_STATUS && strcmp(r->str, "PONG") == 0);
    kvs_reply_free(r);
    /* Binary-safe both ways. */
    kvs_slice echo[] = {kvs_slice_str("ECHO"), kvs_slice_of("a\0b\r\n", 5)};
    cr_assert_eq(kvs_client_command(c, 2, echo, &r), 0);
    cr_expect(r->type == KVS_REPLY_STRING && r->len == 5 && memcmp(r->str, "a\0b\r\n", 5) == 0);
    kvs_reply_free(r);
    /* MSET, MGET with a missing key, EXISTS counting a key twice. */
    kvs_slice keys[] = {kvs_slice_str("a"), kvs_slice_str("b"), kvs_slice_str("c")};
    kvs_slice vals[] = {kvs_slice_str("1"), kvs_slice_str("22"), kvs_slice_str("333")};
    cr_expect_eq(kvs_client_mset(c, keys, vals, 2), 0);
    kvs_buf out[3] = {KVS_BUF_INIT, KVS_BUF_INIT, KVS_BUF_INIT};
    int status[3] = {-1, -1, -1};
    cr_expect_eq(kvs_client_mget(c, keys, 3, out, status), 0);
    cr_expect(status[0] == 0 && out[0].len == 1 && memcmp(out[0].data, "1", 1) == 0);
    cr_expect(status[1] == 0 && out[1].len == 2 && memcmp(out[1].data, "22", 2) == 0);
    cr_expect_eq(status[2], KVS_ENOTFOUND);
    for (int i = 0; i < 3; i++)
        kvs_buf_free(&out[i]);
    kvs_slice twice[] = {kvs_slice_str("a"), kvs_slice_str("a"), kvs_slice_str("c")};
    unsigned long long count = 0;
    cr_expect_eq(kvs_client_exists(c, twice, 3, &count), 0);
    cr_expect_eq(count, 2);
    /* Integers, nil, nested arrays (SCAN's [cursor, [keys]]). */
    kvs_slice incr[] = {kvs_slice_str("INCRBY"), kvs_slice_str("n"), kvs_slice_str("41")};
    cr_assert_eq(kvs_client_command(c, 3, incr, &r), 0);
    cr_expect(r->type == KVS_REPLY_INTEGER && r->integer == 41);
    kvs_reply_free(r);
    kvs_slice get_c[] = {kvs_slice_str("GET"), kvs_slice_str("c")};
    cr_assert_eq(kvs_client_command(c, 2, get_c, &r), 0);
    cr_expect_eq(r->type, KVS_REPLY_NIL);
    kvs_reply_free(r);
    kvs_slice scan[] = {kvs_slice_str("SCAN"), kvs_slice_str("0"), kvs_slice_str("COUNT"),
                        kvs_slice_str("100")};
    cr_assert_eq(kvs_client_command(c, 4, scan, &r), 0);
    cr_assert(r->type == KVS_REPLY_ARRAY && r->integer == 2);
    cr_expect_eq(r->element[0].type, KVS_REPLY_STRING);
    cr_expect(r->element[1].type == KVS_REPLY_ARRAY && r->element[1].integer == 3, "%lld keys",
              r->element[1].integer);
    kvs_reply_free(r);
    /* An error reply: KVS_ESERVER, the reply given too; the connection
       stays usable. */
    kvs_slice bad[] = {kvs_slice_str("NOSUCHCOMMAND")};
    cr_assert_eq(kvs_client_command(c, 1, bad, &r), KVS_ESERVER);
    cr_expect(r && r->type == KVS_REPLY_ERROR && strncmp(r->str, "ERR unknown command", 19) == 0);
    cr_expect_str_eq(kvs_client_last_error(c), r->str);
    kvs_reply_free(r);
    cr_expect_eq(kvs_client_command(c, 1, ping, &r), 0);
    kvs_reply_free(r);
    cr_expect_eq(kvs_client_command(c, 0, ping, &r), KVS_EINVAL);
    kvs_client_close(c);
    env_fini(&e);
}

/* A server that accepts and never answers: the timeout ends the wait. */
Test(client_api, timeout, .timeout = 60)
{
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    cr_assert_eq(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    cr_assert_eq(listen(lfd, 4), 0);
    socklen_t len = sizeof(sa);
    getsockname(lfd, (struct sockaddr *)&sa, &len);
    char addr[64];
    snprintf(addr, sizeof(addr), "127.0.0.1:%u", (unsigned)ntohs(sa.sin_port));
    kvs_client *c = connect_to(addr);
    kvs_client_set_timeout(c, 200);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    cr_expect_eq(kvs_client_set(c, kvs_slice_str("k"), kvs_slice_str("v")), KVS_EIO);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    cr_expect(ms >= 150 && ms < 5000, "waited %ld ms", ms);
    cr_expect(strstr(kvs_client_last_error(c), "no answer from server within 200 ms"), "%s",
              kvs_client_last_error(c));
    kvs_reply *r = NULL;
    kvs_slice ping[] = {kvs_slice_str("PING")};
    cr_expect_eq(kvs_client_command(c, 1, ping, &r), KVS_ECLOSED);
    cr_expect_null(r);
    kvs_client_close(c);
    close(lfd);
}
