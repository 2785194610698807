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
#include <stdint.h>
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

/* Addresses a name may resolve to that are tried, in the resolver's order. */
#define MAX_ADDRS 8

int kvs_client_connect(const char *addr, int timeout_ms, kvs_client **cp, char *why, size_t size)
{
    if (!addr)
        addr = KVS_ADDR_DEFAULT;
    if (timeout_ms <= 0)
        timeout_ms = KVS_CLIENT_TIMEOUT_MS;
    struct sockaddr_storage ss[MAX_ADDRS];
    socklen_t len[MAX_ADDRS];
    size_t n = 0;
    char reason[256] = "";
    int rc = kvs_addr_resolve(addr, ss, len, MAX_ADDRS, &n, reason, sizeof(reason));
    if (rc == KVS_EINVAL) {
        if (why)
            snprintf(why, size, "invalid address '%s' (%s)", addr, reason);
        return KVS_EINVAL;
    }
    if (rc != 0) {
        if (why)
            snprintf(why, size, "cannot connect to %s: %s", addr, reason);
        return KVS_ECONNECT;
    }
    kvs_client *c = calloc(1, sizeof(*c));
    if (!c)
        return KVS_ENOMEM;
    int err = 0;
    for (size_t i = 0; i < n; i++) {
        err = connect_fd(&ss[i], len[i], timeout_ms, &c->fd);
        if (err == 0)
            break;
    }
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

void kvs_client_set_timeout(kvs_client *c, int timeout_ms)
{
    c->timeout_ms = timeout_ms > 0 ? timeout_ms : KVS_CLIENT_TIMEOUT_MS;
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

/* What consumes the replies of a call, one parsed element at a time (an
   array's header, then its elements): take() returns 0 and sets *whole
   when an element completes a reply, or KVS_EPROTO / KVS_ENOMEM. The
   element's bytes are valid during the call only. */
struct reader {
    int (*take)(kvs_client *c, struct reader *rd, const resp_reply *r, bool *whole);
};

/* A batch's reader: each reply is one element, for reqs[done]. */
struct batch_reader {
    struct reader base;
    kvs_client_request *reqs;
    size_t done;
};

static int batch_take(kvs_client *c, struct reader *rd, const resp_reply *r, bool *whole)
{
    struct batch_reader *b = (struct batch_reader *)rd;
    int rc = apply(c, &b->reqs[b->done], r);
    if (rc != 0)
        return rc;
    b->done++;
    *whole = true;
    return 0;
}

/* Parse the replies already received into rd, up to n whole ones. */
static int parse_replies(kvs_client *c, struct reader *rd, size_t n, size_t *done)
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
        bool whole = false;
        if (rc == RESP_ERROR || (rc = rd->take(c, rd, &r, &whole)) != 0) {
            if (rc == KVS_ENOMEM)
                return broken(c, KVS_ENOMEM, "out of memory for a reply", 0);
            return broken(c, KVS_EPROTO, "unexpected reply from server", 0);
        }
        c->rpos += used;
        *done += whole;
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

/* Write c->out and read n replies into rd. */
static int exchange(kvs_client *c, struct reader *rd, size_t n)
{
    size_t done = 0;
    int rc = 0;
    while (rc == 0) {
        if (c->sent < c->out.len && (rc = write_some(c)) != 0)
            break;
        if ((rc = parse_replies(c, rd, n, &done)) != 0)
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
    struct batch_reader rd = {{batch_take}, reqs, 0};
    return exchange(c, &rd.base, n);
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

/* ---- any command, its reply as a tree ---- */

/* Nesting deeper than this is taken for a broken stream. */
#define MAX_DEPTH 32

struct tree_reader {
    struct reader base;
    kvs_reply *root;
    kvs_reply *open[MAX_DEPTH]; /* arrays still being filled */
    size_t filled[MAX_DEPTH];
    int depth;
};

static int tree_take(kvs_client *c, struct reader *rd, const resp_reply *r, bool *whole)
{
    (void)c;
    struct tree_reader *t = (struct tree_reader *)rd;
    kvs_reply *node;
    if (t->depth == 0) {
        node = t->root = calloc(1, sizeof(*node));
        if (!node)
            return KVS_ENOMEM;
    } else {
        kvs_reply *parent = t->open[t->depth - 1];
        node = &parent->element[t->filled[t->depth - 1]++];
    }
    switch (r->type) {
    case RESP_SIMPLE:
    case RESP_ERR:
    case RESP_BULK:
        node->type = r->type == RESP_SIMPLE ? KVS_REPLY_STATUS
                     : r->type == RESP_ERR  ? KVS_REPLY_ERROR
                                            : KVS_REPLY_STRING;
        node->str = malloc(r->str.len + 1);
        if (!node->str)
            return KVS_ENOMEM;
        memcpy(node->str, r->str.data, r->str.len);
        node->str[r->str.len] = '\0';
        node->len = r->str.len;
        break;
    case RESP_INTEGER:
        node->type = KVS_REPLY_INTEGER;
        node->integer = r->integer;
        break;
    case RESP_NIL:
        node->type = KVS_REPLY_NIL;
        break;
    case RESP_ARRAY:
        node->type = KVS_REPLY_ARRAY;
        if (r->integer < 0 || (unsigned long long)r->integer > SIZE_MAX / sizeof(kvs_reply))
            return KVS_EPROTO;
        if (r->integer > 0) {
            if (t->depth == MAX_DEPTH)
                return KVS_EPROTO;
            node->element = calloc((size_t)r->integer, sizeof(kvs_reply));
            if (!node->element)
                return KVS_ENOMEM;
            node->integer = r->integer; /* counted as they arrive: see below */
            t->open[t->depth] = node;
            t->filled[t->depth] = 0;
            t->depth++;
            *whole = false;
            return 0;
        }
        break;
    }
    /* Close the arrays this element completes. */
    while (t->depth > 0 && t->filled[t->depth - 1] == (size_t)t->open[t->depth - 1]->integer)
        t->depth--;
    *whole = t->depth == 0;
    return 0;
}

/* What r holds, not r itself. Recursive: the depth is at most MAX_DEPTH,
   tree_take() refuses deeper replies. Elements of an array left
   unfilled by a broken stream are zeroed: nothing to free. */
static void free_contents(kvs_reply *r)
{
    if (r->type == KVS_REPLY_ARRAY && r->element) {
        for (long long i = 0; i < r->integer; i++)
            free_contents(&r->element[i]);
    }
    free(r->element);
    free(r->str);
}

void kvs_reply_free(kvs_reply *r)
{
    if (!r)
        return;
    free_contents(r);
    free(r);
}

int kvs_client_command(kvs_client *c, size_t argc, const kvs_slice *argv, kvs_reply **reply)
{
    *reply = NULL;
    c->err[0] = '\0';
    if (c->broken) {
        snprintf(c->err, sizeof(c->err), "connection unusable after an earlier error");
        return KVS_ECLOSED;
    }
    if (argc == 0)
        return KVS_EINVAL;
    int rc = resp_add_command(&c->out, argc, argv);
    if (rc != 0) {
        c->out.len = 0;
        return rc;
    }
    struct tree_reader t = {{tree_take}, NULL, {NULL}, {0}, 0};
    rc = exchange(c, &t.base, 1);
    if (rc != 0) {
        kvs_reply_free(t.root);
        return rc;
    }
    *reply = t.root;
    if (t.root->type == KVS_REPLY_ERROR) {
        snprintf(c->err, sizeof(c->err), "%s", t.root->str);
        return KVS_ESERVER;
    }
    return 0;
}

/* A command whose reply must be of type want; returns what
   kvs_client_command() does, or KVS_EPROTO (the stream is then broken). */
static int command_of(kvs_client *c, size_t argc, const kvs_slice *argv, kvs_reply_type want,
                      kvs_reply **reply)
{
    int rc = kvs_client_command(c, argc, argv, reply);
    if (rc == 0 && (*reply)->type != want) {
        kvs_reply_free(*reply);
        *reply = NULL;
        return broken(c, KVS_EPROTO, "unexpected reply from server", 0);
    }
    return rc;
}

int kvs_client_auth(kvs_client *c, const char *user, kvs_slice password)
{
    kvs_slice argv[3] = {kvs_slice_of("AUTH", 4)};
    size_t argc = 1;
    if (user)
        argv[argc++] = kvs_slice_str(user);
    argv[argc++] = password;
    kvs_reply *r = NULL;
    int rc = command_of(c, argc, argv, KVS_REPLY_STATUS, &r);
    kvs_reply_free(r);
    return rc;
}

/* argv of name followed by n keys (and values, when given): malloc'd. */
static kvs_slice *keys_argv(const char *name, const kvs_slice *keys, const kvs_slice *values,
                            size_t n, size_t *argc)
{
    size_t per = values ? 2 : 1;
    if (n > (SIZE_MAX / sizeof(kvs_slice) - 1) / per)
        return NULL;
    kvs_slice *argv = malloc(sizeof(*argv) * (1 + n * per));
    if (!argv)
        return NULL;
    argv[0] = kvs_slice_str(name);
    for (size_t i = 0; i < n; i++) {
        argv[1 + i * per] = keys[i];
        if (values)
            argv[2 + i * per] = values[i];
    }
    *argc = 1 + n * per;
    return argv;
}

int kvs_client_mget(kvs_client *c, const kvs_slice *keys, size_t n, kvs_buf *values, int *status)
{
    if (n == 0)
        return KVS_EINVAL;
    size_t argc;
    kvs_slice *argv = keys_argv("MGET", keys, NULL, n, &argc);
    if (!argv)
        return KVS_ENOMEM;
    kvs_reply *r = NULL;
    int rc = command_of(c, argc, argv, KVS_REPLY_ARRAY, &r);
    free(argv);
    if (rc == 0 && (size_t)r->integer != n)
        rc = broken(c, KVS_EPROTO, "MGET answered another number of values", 0);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        const kvs_reply *e = &r->element[i];
        if (e->type == KVS_REPLY_NIL)
            status[i] = KVS_ENOTFOUND;
        else if (e->type == KVS_REPLY_STRING)
            status[i] = kvs_buf_set(&values[i], e->str, e->len);
        else
            rc = broken(c, KVS_EPROTO, "unexpected reply from server", 0);
    }
    kvs_reply_free(r);
    return rc;
}

int kvs_client_mset(kvs_client *c, const kvs_slice *keys, const kvs_slice *values, size_t n)
{
    if (n == 0)
        return KVS_EINVAL;
    size_t argc;
    kvs_slice *argv = keys_argv("MSET", keys, values, n, &argc);
    if (!argv)
        return KVS_ENOMEM;
    kvs_reply *r = NULL;
    int rc = command_of(c, argc, argv, KVS_REPLY_STATUS, &r);
    free(argv);
    kvs_reply_free(r);
    return rc;
}

int kvs_client_exists(kvs_client *c, const kvs_slice *keys, size_t n, unsigned long long *count)
{
    if (n == 0)
        return KVS_EINVAL;
    size_t argc;
    kvs_slice *argv = keys_argv("EXISTS", keys, NULL, n, &argc);
    if (!argv)
        return KVS_ENOMEM;
    kvs_reply *r = NULL;
    int rc = command_of(c, argc, argv, KVS_REPLY_INTEGER, &r);
    free(argv);
    if (rc == 0) {
        if (r->integer < 0)
            rc = broken(c, KVS_EPROTO, "unexpected reply from server", 0);
        else
            *count = (unsigned long long)r->integer;
    }
    kvs_reply_free(r);
    return rc;
}
