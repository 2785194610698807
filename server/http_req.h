/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * One HTTP request as the routes (http_routes.c) see it, and how they
 * answer it; private to http*.c. The request lives inside its connection
 * (MHD answers one request of a connection at a time), so its buffers are
 * reused from request to request.
 *
 * A route either answers at once (http_answer*) or queues writes in the
 * worker's batch and suspends the request (http_suspend); the batch's
 * done() then answers it and http_resume() lets MHD send the answer.
 * Worker thread only.
 */
#ifndef KVS_SERVER_HTTP_REQ_H
#define KVS_SERVER_HTTP_REQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kvs/kvs.h"

struct MHD_Connection;
struct MHD_Response;
struct http_conn;
struct worker;

enum http_method {
    HTTP_GET,
    HTTP_HEAD,
    HTTP_PUT,
    HTTP_POST,
    HTTP_DELETE, /* DELETE, or DEL */
    HTTP_OTHER,
};

/* What the raw path names. */
enum http_target {
    HTTP_KEY,    /* /<key>: the key is the path after '/', percent-decoded */
    HTTP_HEALTH, /* /_health */
    HTTP_INFO,   /* /_info */
};

struct http_req {
    struct http_conn *hc;
    struct MHD_Connection *mc;
    struct worker *w;
    enum http_method method;
    enum http_target target;
    bool started;   /* the handler has seen it (headers complete) */
    bool suspended; /* waiting for the batch */
    bool too_large; /* its body went past the limit: answered 413 */
    int64_t since;  /* ms (CLOCK_MONOTONIC) of its request line */
    kvs_buf key;    /* the decoded key (HTTP_KEY) */
    kvs_buf body;   /* the body received so far */
    bool has_ttl;   /* ?ttl= was given (or POST's "ttl") */
    long long ttl;  /* seconds */
    bool want_json; /* Accept: application/json */
    kvs_buf value;  /* POST's decoded value */
    /* The answer, once built: queued by the handler's next call. */
    struct MHD_Response *resp;
    unsigned status;
};

/* The routes: the request is complete (headers, body) and allowed. */
void http_route(struct http_req *r);

/* Answer with status and a body of len bytes (copied) of content type
   type (NULL: none). */
void http_answer(struct http_req *r, unsigned status, const char *type, const void *body,
                 size_t len);

/* Answer with status and a JSON body (malloc'd; taken over). NULL (out of
   memory) answers 500 with a fixed text. */
void http_answer_json(struct http_req *r, unsigned status, char *json);

/* Answer with status and {"error":"<msg>"}. */
void http_answer_error(struct http_req *r, unsigned status, const char *msg);

/* Answer a kvs_err of the store with its status and message. */
void http_answer_kvs_error(struct http_req *r, int err);

/* Add a header to the answer built (no-op when there is none). */
void http_answer_header(struct http_req *r, const char *name, const char *value);

/* Suspend the request until http_resume(): its writes are queued. */
void http_suspend(struct http_req *r);

/* The batch answered the request (http_answer*): let MHD send it. */
void http_resume(struct http_req *r);

/* The longest ttl taken, in seconds (about 100 years, as the RESP side's
   expiry times must stay within kvs's range). */
#define HTTP_MAX_TTL (100LL * 365 * 86400)

#endif
