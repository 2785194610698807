/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Building a client's replies: thin wrappers over proto's encoders that
 * append to the connection's output buffer.
 *
 * Out of memory while encoding is sticky: it marks the connection
 * CONN_KILL, so handlers need not check each call; the connection is
 * closed once the command returns (a reply that cannot be built whole must
 * not be sent in part). Worker thread of the connection.
 *
 * --max-output-buffer is enforced here, before anything is appended: a
 * helper whose bytes would take what the client is owed (out.len -
 * out_sent) past the limit appends nothing and marks the connection
 * CONN_KILL, as Redis's hard client-output-buffer-limit closes a client,
 * and once CONN_KILL is set every helper appends nothing. So no reply
 * grows past the limit: an MGET of many big values stops at the first
 * that does not fit instead of building them all first. A helper never
 * stops the command itself; replies are built after its writes are
 * applied, so a refused reply leaves nothing half-done. Handlers that loop
 * over many elements check CONN_KILL to stop reading values that nobody
 * will receive.
 */
#ifndef KVS_SERVER_REPLY_H
#define KVS_SERVER_REPLY_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "conn.h"
#include "proto/resp.h"

/* Bytes of a "$n\r\n", "*n\r\n" or ":n\r\n" header, at most. */
#define REPLY_HEADER_MAX 32
/* Bytes of a reply_errorf() line, at most: their texts are short. */
#define REPLY_ERRORF_MAX 512

/* The client would be owed more than --max-output-buffer: mark it
   CONN_KILL, saying so in the log. want is what it would have been owed. */
void reply_over_limit(struct conn *c, size_t want);

/* Whether n more bytes may be appended to c's replies: false once c is
   CONN_KILL, or when they would take what c is owed past its limit (which
   then marks it CONN_KILL). */
static inline bool reply_room(struct conn *c, size_t n)
{
    size_t owed = c->out.len - c->out_sent + c->out_flight;
    if (c->flags & CONN_KILL)
        return false;
    if (owed <= c->out_limit && n <= c->out_limit - owed)
        return true;
    reply_over_limit(c, n > SIZE_MAX - owed ? SIZE_MAX : owed + n);
    return false;
}

static inline void reply_check(struct conn *c, int rc)
{
    if (rc != 0)
        c->flags |= CONN_KILL;
}

static inline void reply_simple(struct conn *c, const char *text)
{
    if (reply_room(c, strlen(text) + 3))
        reply_check(c, resp_add_simple(&c->out, text));
}

static inline void reply_ok(struct conn *c)
{
    reply_simple(c, "OK");
}

/* text is Redis's error text without the '-', e.g. "ERR syntax error". */
static inline void reply_error(struct conn *c, const char *text)
{
    if (reply_room(c, strlen(text) + 3))
        reply_check(c, resp_add_error(&c->out, text));
}

/* c is evaluated more than once. */
#define reply_errorf(c, ...)                                                                       \
    do {                                                                                           \
        if (reply_room((c), REPLY_ERRORF_MAX))                                                     \
            reply_check((c), resp_add_errorf(&(c)->out, __VA_ARGS__));                             \
    } while (0)

static inline void reply_int(struct conn *c, long long value)
{
    if (reply_room(c, REPLY_HEADER_MAX))
        reply_check(c, resp_add_int(&c->out, value));
}

static inline void reply_bulk(struct conn *c, const void *data, size_t len)
{
    if (len == 0)
        data = ""; /* an empty kvs_buf may hold no memory at all */
    /* len is the length of bytes in memory: the sum cannot wrap. */
    if (reply_room(c, REPLY_HEADER_MAX + len + 2))
        reply_check(c, resp_add_bulk(&c->out, data, len));
}

static inline void reply_bulk_str(struct conn *c, const char *text)
{
    reply_bulk(c, text, strlen(text));
}

static inline void reply_nil(struct conn *c)
{
    if (reply_room(c, 5))
        reply_check(c, resp_add_nil(&c->out));
}

static inline void reply_array(struct conn *c, size_t count)
{
    if (reply_room(c, REPLY_HEADER_MAX))
        reply_check(c, resp_add_array(&c->out, count));
}

/* The error reply for a kvs_err from the store: "ERR " + kvs_strerror(),
   naming the engine's limit for an oversized key or value. */
void reply_kvs_error(struct conn *c, int err);

#endif
