/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The HTTP interface's routes (docs/http.md), on the worker's thread:
 *   GET /<key>     the value (application/octet-stream), or with Accept:
 *                  application/json {"key":…,"value":…}; 404 if missing;
 *                  X-TTL: the seconds left of a key with an expiry time
 *   HEAD /<key>    the same headers, no body
 *   PUT /<key>     the body is the value (?ttl=SECONDS)
 *   POST /<key>    {"value":"…"} (and "encoding":"base64", "ttl")
 *   DELETE /<key>  (or DEL) {"deleted":true|false}
 *   GET /_health   ok, or 503 while the store refuses writes
 *   GET /_info     INFO as a JSON object
 *
 * Reads go to the engine at once, as RESP's GET does. Writes are queued in
 * the worker's batch of the turn, with the RESP clients' (worker.h), and
 * the request waits, suspended, until the batch is applied; a write of a
 * value without a ttl clears the key's expiry time, as SET does.
 */
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "http_json.h"
#include "http_req.h"
#include "repl.h"
#include "worker.h"

static kvs_db *db_of(struct http_req *r)
{
    return r->w->srv->store.db;
}

void http_answer_kvs_error(struct http_req *r, int err)
{
    const kvs_engine *engine = kvs_db_engine(db_of(r));
    char msg[160];
    unsigned status = 500;
    switch (err) {
    case KVS_EKEYSIZE:
        status = 414;
        snprintf(msg, sizeof(msg), "key too long: engine %s accepts keys up to %zu bytes",
                 kvs_engine_name(engine), kvs_engine_max_key(engine));
        break;
    case KVS_EVALSIZE:
        status = 413;
        snprintf(msg, sizeof(msg), "value too long: engine %s accepts values up to %zu bytes",
                 kvs_engine_name(engine), kvs_engine_max_value(engine));
        break;
    case KVS_EFULL:
        status = 507;
        snprintf(msg, sizeof(msg), "out of memory: used memory is at --maxmemory");
        break;
    case KVS_EREADONLY:
        status = 503;
        snprintf(msg, sizeof(msg), "%s", kvs_strerror(err));
        break;
    default:
        snprintf(msg, sizeof(msg), "%s", kvs_strerror(err));
    }
    http_answer_error(r, status, msg);
}

static kvs_slice key_of(const struct http_req *r)
{
    return (kvs_slice){r->key.data, r->key.len};
}

/* GET and HEAD of a key. */
static void get_key(struct http_req *r)
{
    struct worker *w = r->w;
    int64_t expire_at = 0;
    int rc = kvs_db_get_ex(db_of(r), key_of(r), &w->scratch, &expire_at);
    if (rc == KVS_ENOTFOUND) {
        stat_add(&w->stats.misses, 1);
        http_answer_error(r, 404, "not found");
        return;
    }
    if (rc != 0) {
        http_answer_kvs_error(r, rc);
        return;
    }
    stat_add(&w->stats.hits, 1);
    kvs_slice value = {w->scratch.data, w->scratch.len};
    if (r->want_json)
        http_answer_json(r, 200, json_key_value(key_of(r), value));
    else
        http_answer(r, 200, "application/octet-stream", value.data, value.len);
    if (expire_at) {
        /* Rounded as Redis's TTL rounds; a key is gone once its time is
           reached, so at least 0. */
        int64_t left = expire_at - kvs_now_ms();
        char ttl[24];
        snprintf(ttl, sizeof(ttl), "%lld", (long long)(left > 0 ? (left + 500) / 1000 : 0));
        http_answer_header(r, "X-TTL", ttl);
    }
}

static const char stored_json[] = "{\"ok\":true}";

/* PUT and POST, once applied. */
static void set_done(void *arg, const kvs_op *ops, size_t nops, int rc)
{
    (void)ops;
    (void)nops;
    struct http_req *r = arg;
    if (rc != 0)
        http_answer_kvs_error(r, rc);
    else
        http_answer(r, 200, "application/json", stored_json, sizeof(stored_json) - 1);
    http_resume(r);
}

/* Queue key = value (and its ttl) and wait for the batch. */
static void set_key(struct http_req *r, kvs_slice value)
{
    if (repl_is_replica(r->w->srv->repl)) {
        http_answer_error(r, 403, "READONLY You can't write against a read only replica.");
        return;
    }
    if (value.len > kvs_engine_max_value(kvs_db_engine(db_of(r)))) {
        http_answer_kvs_error(r, KVS_EVALSIZE);
        return;
    }
    kvs_op *op = worker_batch_add_arg(r->w, set_done, r, 1);
    if (!op) {
        http_answer_error(r, 500, "out of memory");
        return;
    }
    int64_t expire_at = r->has_ttl ? kvs_now_ms() + r->ttl * 1000 : 0;
    *op = (kvs_op){.type = KVS_OP_SET, .key = key_of(r), .value = value, .expire_at = expire_at};
    http_suspend(r);
}

static void post_key(struct http_req *r)
{
    char why[192];
    struct json_post post = {.value = r->value};
    int rc = json_parse_post(r->body.data, r->body.len, HTTP_MAX_TTL, &post, why, sizeof(why));
    r->value = post.value; /* the buffer, kept for the next request */
    if (rc == KVS_ENOMEM) {
        http_answer_error(r, 500, "out of memory");
        return;
    }
    if (rc != 0) {
        http_answer_error(r, 400, why);
        return;
    }
    if (post.has_ttl) {
        r->has_ttl = true;
        r->ttl = post.ttl;
    }
    set_key(r, (kvs_slice){r->value.data, r->value.len});
}

/* DELETE, once applied: each key has two ops, as RESP's DEL (cmd_keys.c):
   the removal of an expired key, then the remove whose result counts. */
static void del_done(void *arg, const kvs_op *ops, size_t nops, int rc)
{
    (void)nops;
    struct http_req *r = arg;
    if (rc != 0) {
        http_answer_kvs_error(r, rc);
    } else {
        stat_add(&r->w->stats.expired, ops[0].result == 0);
        static const char yes[] = "{\"deleted\":true}", no[] = "{\"deleted\":false}";
        bool deleted = ops[1].result == 0;
        http_answer(r, 200, "application/json", deleted ? yes : no,
                    deleted ? sizeof(yes) - 1 : sizeof(no) - 1);
    }
    http_resume(r);
}

static void delete_key(struct http_req *r)
{
    if (repl_is_replica(r->w->srv->repl)) {
        http_answer_error(r, 403, "READONLY You can't write against a read only replica.");
        return;
    }
    kvs_op *ops = worker_batch_add_arg(r->w, del_done, r, 2);
    if (!ops) {
        http_answer_error(r, 500, "out of memory");
        return;
    }
    ops[0] = (kvs_op){.type = KVS_OP_EXPIRE, .key = key_of(r), .expire_at = kvs_now_ms()};
    ops[1] = (kvs_op){.type = KVS_OP_REMOVE, .key = key_of(r)};
    http_suspend(r);
}

/* The engine's "read_only" figure, which an engine that stops taking
   writes after a failed fsync reports (kvs, lmdb). */
static void find_read_only(void *ctx, const char *name, const char *value)
{
    if (strcmp(name, "read_only") == 0 && strcmp(value, "0") != 0)
        *(bool *)ctx = true;
}

static void health(struct http_req *r)
{
    bool read_only = false;
    int rc = kvs_db_info(db_of(r), find_read_only, &read_only);
    if (rc != 0 && rc != KVS_ENOTSUP)
        http_answer_kvs_error(r, rc);
    else if (read_only)
        http_answer_error(r, 503, kvs_strerror(KVS_EREADONLY));
    else
        http_answer(r, 200, "text/plain", "ok", 2);
}

static void info(struct http_req *r)
{
    struct worker *w = r->w;
    int rc = info_text_all(w, &w->scratch);
    if (rc != 0)
        http_answer_kvs_error(r, rc);
    else
        http_answer_json(r, 200, json_info(w->scratch.data, w->scratch.len));
}

void http_route(struct http_req *r)
{
    if (r->target == HTTP_HEALTH) {
        health(r);
        return;
    }
    if (r->target == HTTP_INFO) {
        info(r);
        return;
    }
    switch (r->method) {
    case HTTP_GET:
    case HTTP_HEAD:
        get_key(r);
        break;
    case HTTP_PUT:
        set_key(r, (kvs_slice){r->body.data, r->body.len});
        break;
    case HTTP_POST:
        post_key(r);
        break;
    case HTTP_DELETE:
        delete_key(r);
        break;
    case HTTP_OTHER:
        http_answer_error(r, 405, "method not allowed"); /* begin() answered it already */
        break;
    }
}
