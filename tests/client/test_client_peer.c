/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The client library against a scripted peer instead of a server: the
 * test listens, the client connects (the kernel completes the handshake
 * from the backlog), and the test writes the replies it wants the client to
 * see before the client asks. This reaches what a correct server never
 * does: garbage, wrong reply types, silence, a connection closed mid-call.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "kvs/client.h"

#define LIT(s) (s), (sizeof(s) - 1)

struct peer {
    int lfd, fd;
    char addr[32];
    kvs_client *c;
};

/* Listen on a free loopback port, connect a client (timeout_ms), accept. */
static void peer_open(struct peer *p, int timeout_ms)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sa);
    p->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert_geq(p->lfd, 0);
    cr_assert_eq(bind(p->lfd, (struct sockaddr *)&sa, len), 0);
    cr_assert_eq(listen(p->lfd, 4), 0);
    cr_assert_eq(getsockname(p->lfd, (struct sockaddr *)&sa, &len), 0);
    snprintf(p->addr, sizeof(p->addr), "127.0.0.1:%u", ntohs(sa.sin_port));
    char why[128];
    cr_assert_eq(kvs_client_connect(p->addr, timeout_ms, &p->c, why, sizeof(why)), 0, "%s", why);
    struct pollfd pfd = {.fd = p->lfd, .events = POLLIN};
    cr_assert_eq(poll(&pfd, 1, 5000), 1);
    p->fd = accept(p->lfd, NULL, NULL);
    cr_assert_geq(p->fd, 0);
}

static void peer_close(struct peer *p)
{
    kvs_client_close(p->c);
    if (p->fd >= 0)
        close(p->fd);
    close(p->lfd);
}

static void peer_send(struct peer *p, const char *data, size_t len)
{
    cr_assert_eq(send(p->fd, data, len, MSG_NOSIGNAL), (ssize_t)len);
}

/* Expect exactly these bytes from the client, waiting at most 5 s. */
static void peer_expect(struct peer *p, const char *want, size_t len)
{
    char buf[4096];
    size_t got = 0;
    cr_assert_leq(len, sizeof(buf));
    while (got < len) {
        struct pollfd pfd = {.fd = p->fd, .events = POLLIN};
        cr_assert_eq(poll(&pfd, 1, 5000), 1, "client sent %zu of %zu bytes", got, len);
        ssize_t n = recv(p->fd, buf + got, len - got, 0);
        cr_assert_gt(n, 0);
        got += (size_t)n;
    }
    cr_assert(memcmp(buf, want, len) == 0, "client sent '%.*s'", (int)len, buf);
}

Test(peer, commands_and_replies)
{
    struct peer p;
    peer_open(&p, 5000);
    peer_send(&p, LIT("+OK\r\n$3\r\nabc\r\n:1\r\n$-1\r\n:0\r\n"));
    cr_assert_eq(kvs_client_set(p.c, kvs_slice_str("k"), kvs_slice_of("v\0", 2)), 0);
    kvs_buf v = KVS_BUF_INIT;
    cr_assert_eq(kvs_client_get(p.c, kvs_slice_str("k"), &v), 0);
    cr_assert(v.len == 3 && memcmp(v.data, "abc", 3) == 0);
    cr_assert_eq(kvs_client_remove(p.c, kvs_slice_str("k")), 0);
    cr_assert_eq(kvs_client_get(p.c, kvs_slice_str("x"), &v), KVS_ENOTFOUND);
    cr_assert(v.len == 3, "a miss leaves the buffer alone");
    cr_assert_eq(kvs_client_remove(p.c, kvs_slice_str("x")), KVS_ENOTFOUND);
    peer_expect(&p, LIT("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2\r\nv\0\r\n"
                        "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"
                        "*2\r\n$3\r\nDEL\r\n$1\r\nk\r\n"
                        "*2\r\n$3\r\nGET\r\n$1\r\nx\r\n"
                        "*2\r\n$3\r\nDEL\r\n$1\r\nx\r\n"));
    kvs_buf_free(&v);
    peer_close(&p);
}

Test(peer, server_error_keeps_the_connection)
{
    struct peer p;
    peer_open(&p, 5000);
    peer_send(&p, LIT("-ERR value is too big\r\n+OK\r\n"));
    cr_assert_eq(kvs_client_set(p.c, kvs_slice_str("k"), kvs_slice_str("v")), KVS_ESERVER);
    cr_assert_str_eq(kvs_client_last_error(p.c), "ERR value is too big");
    cr_assert_eq(kvs_client_set(p.c, kvs_slice_str("k"), kvs_slice_str("v")), 0);
    cr_assert_str_eq(kvs_client_last_error(p.c), "");
    peer_close(&p);
}

Test(peer, batch_statuses)
{
    struct peer p;
    peer_open(&p, 5000);
    peer_send(&p, LIT("+OK\r\n$-1\r\n-ERR nope\r\n:1\r\n$2\r\nhi\r\n"));
    kvs_buf out = KVS_BUF_INIT;
    kvs_client_request reqs[] = {
        {.op = KVS_CLIENT_SET, .key = kvs_slice_str("a"), .value = kvs_slice_str("1")},
        {.op = KVS_CLIENT_GET, .key = kvs_slice_str("b"), .value_out = &out},
        {.op = KVS_CLIENT_SET, .key = kvs_slice_str("c"), .value = kvs_slice_str("2")},
        {.op = KVS_CLIENT_REMOVE, .key = kvs_slice_str("a")},
        {.op = KVS_CLIENT_GET, .key = kvs_slice_str("d"), .value_out = &out},
    };
    cr_assert_eq(kvs_client_batch(p.c, reqs, 5), 0);
    cr_assert_eq(reqs[0].status, 0);
    cr_assert_eq(reqs[1].status, KVS_ENOTFOUND);
    cr_assert_eq(reqs[2].status, KVS_ESERVER);
    cr_assert_eq(reqs[3].status, 0);
    cr_assert_eq(reqs[4].status, 0);
    cr_assert(out.len == 2 && memcmp(out.data, "hi", 2) == 0);
    cr_assert_str_eq(kvs_client_last_error(p.c), "ERR nope");
    kvs_buf_free(&out);

    /* An unknown op is refused before anything is sent. */
    kvs_client_request bad = {.op = (kvs_client_op)42, .key = kvs_slice_str("a")};
    cr_assert_eq(kvs_client_batch(p.c, &bad, 1), KVS_EINVAL);
    cr_assert_eq(kvs_client_batch(p.c, NULL, 0), 0);
    peer_close(&p);
}

Test(peer, garbage_breaks_the_connection)
{
    struct peer p;
    peer_open(&p, 5000);
    peer_send(&p, LIT("?what\r\n"));
    kvs_buf v = KVS_BUF_INIT;
    cr_assert_eq(kvs_client_get(p.c, kvs_slice_str("k"), &v), KVS_EPROTO);
    cr_assert_neq(kvs_client_last_error(p.c)[0], '\0');
    cr_assert_eq(kvs_client_get(p.c, kvs_slice_str("k"), &v), KVS_ECLOSED);
    kvs_buf_free(&v);
    peer_close(&p);
}

Test(peer, wrong_reply_type_is_a_protocol_error)
{
    static const struct {
        const char *reply;
        size_t len;
        kvs_client_op op;
    } cases[] = {
        {LIT(":1\r\n"), KVS_CLIENT_GET},      {LIT("*1\r\n$1\r\na\r\n"), KVS_CLIENT_GET},
        {LIT("$1\r\na\r\n"), KVS_CLIENT_SET}, {LIT(":-1\r\n"), KVS_CLIENT_REMOVE},
        {LIT("+OK\r\n"), KVS_CLIENT_REMOVE},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct peer p;
        peer_open(&p, 5000);
        peer_send(&p, cases[i].reply, cases[i].len);
        kvs_client_request req = {.op = cases[i].op, .key = kvs_slice_str("k")};
        cr_assert_eq(kvs_client_batch(p.c, &req, 1), KVS_EPROTO, "case %zu", i);
        peer_close(&p);
    }
}

Test(peer, closed_connection)
{
    struct peer p;
    peer_open(&p, 5000);
    /* Half a reply, then the peer goes away. */
    peer_send(&p, LIT("$10\r\nabc"));
    close(p.fd);
    p.fd = -1;
    kvs_buf v = KVS_BUF_INIT;
    int rc = kvs_client_get(p.c, kvs_slice_str("k"), &v);
    cr_assert(rc == KVS_ECLOSED || rc == KVS_EIO, "%d", rc);
    cr_assert_eq(kvs_client_set(p.c, kvs_slice_str("k"), kvs_slice_str("v")), KVS_ECLOSED);
    kvs_buf_free(&v);
    peer_close(&p);
}

Test(peer, silence_times_out)
{
    struct peer p;
    peer_open(&p, 200);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    kvs_buf v = KVS_BUF_INIT;
    cr_assert_eq(kvs_client_get(p.c, kvs_slice_str("k"), &v), KVS_EIO);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    cr_assert(ms >= 150 && ms < 3000, "timed out after %ld ms", ms);
    cr_assert_not_null(strstr(kvs_client_last_error(p.c), "200 ms"));
    kvs_buf_free(&v);
    peer_close(&p);
}

Test(peer, connect_errors)
{
    kvs_client *c = (kvs_client *)0x1;
    char why[128] = "";
    cr_assert_eq(kvs_client_connect("not an address", 1000, &c, why, sizeof(why)), KVS_EINVAL);
    cr_assert_eq(c, (kvs_client *)0x1, "no handle on failure");

    /* A port that was just free: nothing listens there. */
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_eq(bind(fd, (struct sockaddr *)&sa, len), 0);
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    close(fd);
    char addr[32];
    snprintf(addr, sizeof(addr), "127.0.0.1:%u", ntohs(sa.sin_port));
    cr_assert_eq(kvs_client_connect(addr, 1000, &c, why, sizeof(why)), KVS_ECONNECT);
    cr_assert_not_null(strstr(why, "refused"), "why: %s", why);
    cr_assert_eq(c, (kvs_client *)0x1);
    kvs_client_close(NULL);
}
