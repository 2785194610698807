/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The client half of libkvs: one TCP connection speaking RESP; see
 * include/kvs/client.h.
 *
 * Every call is a batch: commands are encoded into the write buffer, then
 * one loop writes what is left to write and reads what is left to read,
 * waiting in poll() for whichever the socket allows. Writing and reading
 * together (rather than all writes, then all reads) keeps a large batch
 * from deadlocking against a server that stops reading while its replies
 * are not being read. A single GET costs send, poll and recv.
 */
#include "kvs/client.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "kvs/addr.h"
#include "proto/resp.h"

/* Free space made before each recv(): a few replies, or a good bite of a
   large bulk (the buffer doubles beyond this as a bulk needs). */
#define READ_CHUNK (64u << 10)
/* Buffers above this are released after a call, so that one huge value
   does not pin its memory for the life of the connection. */
#define KEEP_MAX (1u << 20)

struct kvs_client {
    int fd;
    int timeout_ms;
    bool broken; /* a connection error happened: rule 7 of client.h */
    kvs_buf out; /* encoded commands; out.len - sent still to write */
    size_t sent;
    kvs_buf in; /* replies received; in.len - rpos not yet parsed */
    size_t rpos;
    char err[512]; /* kvs_client_last_error() */
};

/* Wait for fd to become ready for events; 1 ready, 0 timed out, -1 error. */
static int wait_fd(int fd, short events, int timeout_ms, short *revents)
{
    struct pollfd pfd = {.fd = fd, .events = events};
    int n;
    do
        n = poll(&pfd, 1, timeout_ms);
    while (n < 0 && errno == EINTR);
    if (n > 0)
        *revents = pfd.revents;
    return n > 0 ? 1 : n;
}

static int connect_fd(const struct sockaddr_storage *ss, socklen_t len, int timeout_ms, int *fdp)
{
    int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return errno;
    int err = 0;
    if (connect(fd, (const struct sockaddr *)ss, len) != 0) {
        err = errno;
        if (err == EINPROGRESS) {
            short revents;
            int ready = wait_fd(fd, POLLOUT, timeout_ms, &revents);
            socklen_t elen = sizeof(err);
            if (ready == 0)
                err = ETIMEDOUT;
            else if (ready < 0)
                err = errno;
            else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) != 0)
                err = errno;
        }
    }
    if (err != 0) {
        close(fd);
        return err;
    }
    /* Requests are written whole; Nagle's delay would only add latency. */
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    *fdp = fd;
    return 0;
}

int kvs_client_connect(const char *addr, int timeout_ms, kvs_client **cp, char *why, size_t size)
{
    if (!addr)
        addr = KVS_ADDR_DEFAULT;
    if (timeout_ms <= 0)
        timeout_ms = KVS_CLIENT_TIMEOUT_MS;
    struct sockaddr_storage ss;
    socklen_t len;
    if (kvs_addr_parse(addr, &ss, &len) != 0) {
        if (why)
            snprintf(why, size, "invalid address '%s' (expected IP:PORT or [IPv6]:PORT)", addr);
        return KVS_EINVAL;
    }
    kvs_client *c = calloc(1, sizeof(*c));
    if (!c)
        return KVS_ENOMEM;
    int err = connect_fd(&ss, len, timeout_ms, &c->fd);
    if (err != 0) {
        if (why)
            snprintf(why, size, "cannot connect to %s: %s", addr, strerror(err));
        free(c);
        return KVS_ECONNECT;
    }
    c->timeout_ms = timeout_ms;
    *cp = c;
    return 0;
}

void kvs_client_close(kvs_client *c)
{
    if (!c)
        return;
    close(c->fd);
    kvs_buf_free(&c->out);
    kvs_buf_free(&c->in);
    free(c);
}

const char *kvs_client_last_error(const kvs_client *c)
{
    return c->err;
}

/* Record a connection error: the stream's state is unknown from here on. */
static int broken(kvs_client *c, int rc, const char *what, int errnum)
{
    c->broken = true;
    if (errnum)
        snprintf(c->err, sizeof(c->err), "%s: %s", what, strerror(errnum));
    else
        snprintf(c->err, sizeof(c->err), "%s", what);
    return rc;
}

static int encode(kvs_buf *out, const kvs_client_request *req)
{
    kvs_slice argv[3];
    size_t argc = 2;
    switch (req->op) {
    case KVS_CLIENT_GET:
        argv[0] = kvs_slice_of("GET", 3);
        break;
    case KVS_CLIENT_SET:
        argv[0] = kvs_slice_of("SET", 3);
        argv[2] = req->value;
        argc = 3;
        break;
    case KVS_CLIENT_REMOVE:
        argv[0] = kvs_slice_of("DEL", 3);
        break;
    default:
        return KVS_EINVAL;
    }
    argv[1] = req->key;
    return resp_add_command(out, argc, argv);
}

/* Apply one reply to its request. Returns 0, or KVS_EPROTO for a reply
   that cannot answer that request (the stream is then not trusted). */
static int apply(kvs_client *c, kvs_client_request *req, const resp_reply *r)
{
    if (r->type == RESP_ERR) {
        size_t n = r->str.len < sizeof(c->err) - 1 ? r->str.len : sizeof(c->err) - 1;
        memcpy(c->err, r->str.data, n);
        c->err[n] = '\0';
        req->status = KVS_ESERVER;
        return 0;
    }
    switch (req->op) {
    case KVS_CLIENT_SET:
        if (r->type != RESP_SIMPLE)
            break;
        req->status = 0;
        return 0;
    case KVS_CLIENT_GET:
        if (r->type == RESP_NIL) {
            req->status = KVS_ENOTFOUND;
            return 0;
        }
        if (r->type != RESP_BULK)
            break;
        req->status = req->value_out ? kvs_buf_set(req->value_out, r->str.data, r->str.len) : 0;
        return 0;
    case KVS_CLIENT_REMOVE:
        if (r->type != RESP_INTEGER || r->integer < 0)
            break;
        req->status = r->integer > 0 ? 0 : KVS_ENOTFOUND;
        return 0;
    }
    return KVS_EPROTO;
}

/* Parse the replies already received, applying them to reqs[*done..n). */
static int parse_replies(kvs_client *c, kvs_client_request *reqs, size_t n, size_t *done)
{
    while (*done < n) {
        if (c->in.len == c->rpos)
            return 0; /* nothing received yet (in.data may still be NULL) */
        resp_reply r;
        size_t used;
        int rc = resp_parse_reply((const char *)c->in.data + c->rpos, c->in.len - c->rpos,
                                  RESP_DEFAULT_MAX_BULK, &r, &used);
        if (rc == RESP_MORE)
            return 0;
        if (rc == RESP_ERROR || apply(c, &reqs[*done], &r) != 0)
            return broken(c, KVS_EPROTO, "unexpected reply from server", 0);
        c->rpos += used;
        (*done)++;
    }
    return 0;
}

/* One send() of what is left to write. */
static int write_some(kvs_client *c)
{
    ssize_t n;
    do
        n = send(c->fd, (const char *)c->out.data + c->sent, c->out.len - c->sent, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    if (n >= 0) {
        c->sent += (size_t)n;
        return 0;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK)
        return 0;
    if (errno == EPIPE || errno == ECONNRESET)
        return broken(c, KVS_ECLOSED, "connection closed by server", 0);
    return broken(c, KVS_EIO, "send", errno);
}

/* One recv() into the free end of the input buffer. */
static int read_some(kvs_client *c)
{
    if (c->rpos == c->in.len) {
        c->rpos = c->in.len = 0;
    } else if (c->rpos > 0 && c->in.cap - c->in.len < READ_CHUNK) {
        c->in.len -= c->rpos;
        memmove(c->in.data, (char *)c->in.data + c->rpos, c->in.len);
        c->rpos = 0;
    }
    if (kvs_buf_reserve(&c->in, c->in.len + READ_CHUNK) != 0)
        return broken(c, KVS_ENOMEM, "out of memory for a reply", 0);
    ssize_t n;
    do
        n = recv(c->fd, (char *)c->in.data + c->in.len, c->in.cap - c->in.len, 0);
    while (n < 0 && errno == EINTR);
    if (n > 0) {
        c->in.len += (size_t)n;
        return 0;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return 0;
    if (n == 0 || errno == ECONNRESET)
        return broken(c, KVS_ECLOSED, "connection closed by server", 0);
    return broken(c, KVS_EIO, "recv", errno);
}

/* Write c->out and read n replies into reqs. */
static int exchange(kvs_client *c, kvs_client_request *reqs, size_t n)
{
    size_t done = 0;
    int rc = 0;
    while (rc == 0) {
        if (c->sent < c->out.len && (rc = write_some(c)) != 0)
            break;
        if ((rc = parse_replies(c, reqs, n, &done)) != 0)
            break;
        if (done == n && c->sent == c->out.len)
            break;
        short revents = 0;
        short events = POLLIN | (c->sent < c->out.len ? POLLOUT : 0);
        int ready = wait_fd(c->fd, events, c->timeout_ms, &revents);
        if (ready == 0) {
            snprintf(c->err, sizeof(c->err), "no answer from server within %d ms", c->timeout_ms);
            c->broken = true;
            rc = KVS_EIO;
        } else if (ready < 0) {
            rc = broken(c, KVS_EIO, "poll", errno);
        } else if (revents & (POLLIN | POLLHUP | POLLERR)) {
            rc = read_some(c);
        }
    }
    c->out.len = c->sent = 0;
    if (c->out.cap > KEEP_MAX)
        kvs_buf_free(&c->out);
    if (c->rpos == c->in.len && c->in.cap > KEEP_MAX) {
        kvs_buf_free(&c->in);
        c->rpos = 0;
    }
    return rc;
}

int kvs_client_batch(kvs_client *c, kvs_client_request *reqs, size_t n)
{
    c->err[0] = '\0';
    for (size_t i = 0; i < n; i++)
        reqs[i].status = KVS_ECLOSED;
    if (c->broken) {
        snprintf(c->err, sizeof(c->err), "connection unusable after an earlier error");
        return KVS_ECLOSED;
    }
    for (size_t i = 0; i < n; i++) {
        int rc = encode(&c->out, &reqs[i]);
        if (rc != 0) {
            c->out.len = 0;
            return rc;
        }
    }
    return exchange(c, reqs, n);
}

/* The single calls are batches of one. */
static int single(kvs_client *c, kvs_client_request *req)
{
    int rc = kvs_client_batch(c, req, 1);
    return rc != 0 ? rc : req->status;
}

int kvs_client_set(kvs_client *c, kvs_slice key, kvs_slice value)
{
    kvs_client_request req = {.op = KVS_CLIENT_SET, .key = key, .value = value};
    return single(c, &req);
}

int kvs_client_get(kvs_client *c, kvs_slice key, kvs_buf *value)
{
    kvs_client_request req = {.op = KVS_CLIENT_GET, .key = key, .value_out = value};
    return single(c, &req);
}

int kvs_client_remove(kvs_client *c, kvs_slice key)
{
    kvs_client_request req = {.op = KVS_CLIENT_REMOVE, .key = key};
    return single(c, &req);
}
