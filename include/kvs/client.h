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
 * @addr:       "IP:PORT" or "[IPv6]:PORT" (see addr.h); NULL for
 *              KVS_ADDR_DEFAULT, 127.0.0.1:4000.
 * @timeout_ms: bound on connecting and, afterwards, on any wait for the
 *              server to accept or send bytes; <= 0 for KVS_CLIENT_TIMEOUT_MS.
 * @cp:         receives the handle on success.
 * Returns 0, KVS_EINVAL (unparsable addr), KVS_ECONNECT (refused,
 * unreachable, timed out) or KVS_ENOMEM. On KVS_ECONNECT the reason goes to
 * why (if not NULL; size bytes, NUL-terminated) since there is no handle to
 * ask.
 */
int kvs_client_connect(const char *addr, int timeout_ms, kvs_client **cp, char *why, size_t size);

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

/* kvs_client_last_error - what the last failing call on c failed on: the
   server's error text, or a description of a connection error; "" when
   the last call succeeded. Never NULL. */
const char *kvs_client_last_error(const kvs_client *c);

#ifdef __cplusplus
}
#endif
#endif
