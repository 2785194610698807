/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libkvs client: talk to a kvs-server (or any Redis-compatible server) over
 * TCP with RESP.
 *
 * A kvs_client is one connection with one buffered writer and one buffered
 * reader. Each call encodes its command(s) into the write buffer, sends
 * them with as few writes as the kernel allows (normally one), and reads
 * the replies back; nothing is allocated per request beyond the growth of
 * those two buffers. kvs_client_batch() pipelines many requests in one go.
 *
 * Ownership:
 *  1. kvs_client_connect() writes the handle to *cp on success only; the
 *     handle is released by exactly one kvs_client_close(), which accepts
 *     NULL.
 *  2. Keys and values passed in are borrowed for the call (see slice.h).
 *  3. Values come out in caller-owned kvs_bufs.
 *  4. kvs_client_last_error() returns a string owned by the client, valid
 *     until the next call on it.
 *
 * Thread safety:
 *  5. A kvs_client is used by one thread at a time; different clients are
 *     independent.
 *
 * Errors:
 *  6. Every call returns 0 or a negative kvs_err. A reply of the server's
 *     own ("-ERR ...") is KVS_ESERVER, with its text (without the '-') in
 *     kvs_client_last_error(); the connection stays usable.
 *  7. KVS_ECONNECT (connect failed), KVS_ECLOSED (the server closed the
 *     connection), KVS_EIO (a socket error, or no progress for timeout_ms),
 *     KVS_EPROTO (the server sent something that is not the expected RESP)
 *     and KVS_ENOMEM while receiving a reply leave the connection broken:
 *     every later call returns KVS_ECLOSED. kvs_client_last_error() says
 *     what happened.
 */
#ifndef KVS_CLIENT_H
#define KVS_CLIENT_H

#include <stddef.h>

#include "kvs/error.h"
#include "kvs/slice.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct kvs_client kvs_client;

/* The timeout kvs_client_connect() uses when given timeout_ms <= 0. */
#define KVS_CLIENT_TIMEOUT_MS 5000

/*
 * kvs_client_connect - connect to a server.
 * @addr:       "IP:PORT", "[IPv6]:PORT" or "HOST:PORT" (see addr.h; a host
 *              name is resolved and each of its addresses tried in turn);
 *              NULL for KVS_ADDR_DEFAULT, 127.0.0.1:4000.
 * @timeout_ms: bound on connecting (to each address) and, afterwards, on any
 *              wait for the server to accept or send bytes; <= 0 for
 *              KVS_CLIENT_TIMEOUT_MS. kvs_client_set_timeout() changes the
 *              latter.
 * @cp:         receives the handle on success.
 * Returns 0, KVS_EINVAL (unparsable addr), KVS_ECONNECT (a name that does
 * not resolve, refused, unreachable, timed out) or KVS_ENOMEM. On an error
 * the reason goes to why (if not NULL; size bytes, NUL-terminated) since
 * there is no handle to ask.
 */
int kvs_client_connect(const char *addr, int timeout_ms, kvs_client **cp, char *why, size_t size);

/* kvs_client_set_timeout - the bound on each later wait for the server, in
   ms; <= 0 for KVS_CLIENT_TIMEOUT_MS. A wait that runs out is KVS_EIO
   (rule 7: the connection is then broken). */
void kvs_client_set_timeout(kvs_client *c, int timeout_ms);

/*
 * kvs_client_auth - AUTH [user] password, as Redis 6+ takes it.
 * @user: NULL for the default user (the only one kvs-server has).
 * Returns 0, KVS_ESERVER (a wrong password, or none set on the server:
 * the server's text in kvs_client_last_error()), or a connection error.
 */
int kvs_client_auth(kvs_client *c, const char *user, kvs_slice password);

/* kvs_client_close - close the connection and free the handle; accepts NULL. */
void kvs_client_close(kvs_client *c);

/*
 * kvs_client_set - SET key value.
 * Returns 0, KVS_ESERVER, or a connection error (rule 7).
 */
int kvs_client_set(kvs_client *c, kvs_slice key, kvs_slice value);

/*
 * kvs_client_get - GET key into *value (grown as needed; len set).
 * Returns 0, KVS_ENOTFOUND for a nil reply (value untouched), KVS_ESERVER,
 * KVS_ENOMEM, or a connection error (rule 7).
 */
int kvs_client_get(kvs_client *c, kvs_slice key, kvs_buf *value);

/*
 * kvs_client_remove - DEL key.
 * Returns 0 when a key was removed, KVS_ENOTFOUND when the server removed
 * none (DEL replied 0), KVS_ESERVER, or a connection error (rule 7).
 */
int kvs_client_remove(kvs_client *c, kvs_slice key);

/* The operations of a batch. */
typedef enum kvs_client_op {
    KVS_CLIENT_GET,
    KVS_CLIENT_SET,
    KVS_CLIENT_REMOVE,
} kvs_client_op;

/* One request of a batch: op, key and (SET) value in; value_out (GET, may
   be NULL to discard the value) and status out. */
typedef struct kvs_client_request {
    kvs_client_op op;
    kvs_slice key;
    kvs_slice value;
    kvs_buf *value_out;
    /* 0, KVS_ENOTFOUND, KVS_ESERVER or KVS_ENOMEM, as the single calls
       above return them; KVS_ECLOSED if no reply came for it. */
    int status;
} kvs_client_request;

/*
 * kvs_client_batch - send n requests pipelined (encoded into one buffer,
 * written together) and read their n replies in order, setting each
 * request's status.
 * Returns 0 when every request got its reply (statuses tell each one's
 * fate; for KVS_ESERVER, kvs_client_last_error() holds the text of the last
 * server error of the batch), KVS_EINVAL for an unknown op (nothing sent),
 * KVS_ENOMEM (nothing sent), or a connection error (rule 7), after which
 * the requests without a reply have status KVS_ECLOSED.
 */
int kvs_client_batch(kvs_client *c, kvs_client_request *reqs, size_t n);

/*
 * kvs_client_mget - MGET keys[0..n): values[i] (grown as needed) and
 * status[i] (0, KVS_ENOTFOUND with values[i] untouched, or KVS_ENOMEM)
 * for each key. n >= 1.
 * Returns 0 when the reply came (statuses tell each key's fate),
 * KVS_EINVAL (n 0), KVS_ESERVER, KVS_ENOMEM, or a connection error.
 */
int kvs_client_mget(kvs_client *c, const kvs_slice *keys, size_t n, kvs_buf *values, int *status);

/*
 * kvs_client_mset - MSET keys[i] values[i] for i in [0, n), at once. n >= 1.
 * Returns 0, KVS_EINVAL, KVS_ESERVER, KVS_ENOMEM or a connection error.
 */
int kvs_client_mset(kvs_client *c, const kvs_slice *keys, const kvs_slice *values, size_t n);

/*
 * kvs_client_exists - EXISTS keys[0..n): *count receives how many of them
 * exist (a key named twice counts twice, as in Redis). n >= 1.
 * Returns 0, KVS_EINVAL, KVS_ESERVER, KVS_ENOMEM or a connection error.
 */
int kvs_client_exists(kvs_client *c, const kvs_slice *keys, size_t n, unsigned long long *count);

/* A reply of any command, as kvs_client_command() returns it. */
typedef enum kvs_reply_type {
    KVS_REPLY_STATUS,  /* +OK: str */
    KVS_REPLY_ERROR,   /* -ERR ...: str, without the '-' */
    KVS_REPLY_INTEGER, /* :n: integer */
    KVS_REPLY_STRING,  /* $n bulk string: str, len (binary-safe) */
    KVS_REPLY_NIL,     /* $-1 or *-1 */
    KVS_REPLY_ARRAY,   /* *n: integer = n, element[0..n) */
} kvs_reply_type;

typedef struct kvs_reply {
    kvs_reply_type type;
    long long integer;
    char *str; /* NUL-terminated (a bulk string may hold NULs too: use len) */
    size_t len;
    struct kvs_reply *element;
} kvs_reply;

/*
 * kvs_client_command - send one command (argc >= 1 arguments, binary-safe)
 * and read its reply, whatever its shape, into *reply: owned by the caller,
 * released with kvs_reply_free(); NULL on a connection error.
 * Returns 0; KVS_ESERVER when the reply is an error (*reply is set too, its
 * text also in kvs_client_last_error()); KVS_EINVAL (argc 0); KVS_ENOMEM;
 * or a connection error (rule 7).
 */
int kvs_client_command(kvs_client *c, size_t argc, const kvs_slice *argv, kvs_reply **reply);

/* kvs_reply_free - release a reply and everything in it; accepts NULL. */
void kvs_reply_free(kvs_reply *reply);

/* kvs_client_last_error - what the last failing call on c failed on: the
   server's error text, or a description of a connection error; "" when
   the last call succeeded. Never NULL. */
const char *kvs_client_last_error(const kvs_client *c);

#ifdef __cplusplus
}
#endif
#endif
