/*
 * Building a client's replies: thin wrappers over proto's encoders that
 * append to the connection's output buffer.
 *
 * Out of memory while encoding is sticky: it marks the connection
 * CONN_KILL, so handlers need not check each call; the connection is
 * closed once the command returns (a reply that cannot be built whole must
 * not be sent in part). Worker thread of the connection.
 */
#ifndef KVS_SERVER_REPLY_H
#define KVS_SERVER_REPLY_H

#include <string.h>

#include "conn.h"
#include "proto/resp.h"

static inline void reply_check(struct conn *c, int rc)
{
    if (rc != 0)
        c->flags |= CONN_KILL;
}

static inline void reply_simple(struct conn *c, const char *text)
{
    reply_check(c, resp_add_simple(&c->out, text));
}

static inline void reply_ok(struct conn *c)
{
    reply_simple(c, "OK");
}

/* text is Redis's error text without the '-', e.g. "ERR syntax error". */
static inline void reply_error(struct conn *c, const char *text)
{
    reply_check(c, resp_add_error(&c->out, text));
}

#define reply_errorf(c, ...) reply_check((c), resp_add_errorf(&(c)->out, __VA_ARGS__))

static inline void reply_int(struct conn *c, long long value)
{
    reply_check(c, resp_add_int(&c->out, value));
}

static inline void reply_bulk(struct conn *c, const void *data, size_t len)
{
    if (len == 0)
        data = ""; /* an empty kvs_buf may hold no memory at all */
    reply_check(c, resp_add_bulk(&c->out, data, len));
}

static inline void reply_bulk_str(struct conn *c, const char *text)
{
    reply_bulk(c, text, strlen(text));
}

static inline void reply_nil(struct conn *c)
{
    reply_check(c, resp_add_nil(&c->out));
}

static inline void reply_array(struct conn *c, size_t count)
{
    reply_check(c, resp_add_array(&c->out, count));
}

/* The error reply for a kvs_err from the store: "ERR " + kvs_strerror(),
   naming the engine's limit for an oversized key or value. */
void reply_kvs_error(struct conn *c, int err);

#endif
