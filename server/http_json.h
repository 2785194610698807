/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The JSON of the HTTP interface (http.h), over cJSON: the bodies it
 * answers with ({"error":...}, {"key":...,"value":...}, INFO as an
 * object), the body of a POST, and the base64 and UTF-8 checks that decide
 * how bytes travel in JSON.
 *
 * A string that is not text (valid UTF-8 holding no NUL: cJSON strings end
 * at a NUL) travels as base64 (RFC 4648, with padding), marked
 * "encoding":"base64". Returned strings are malloc'd (free()); NULL means
 * out of memory. Pure functions of their inputs: any thread.
 */
#ifndef KVS_SERVER_HTTP_JSON_H
#define KVS_SERVER_HTTP_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kvs/slice.h"

/* Whether len bytes at p are valid UTF-8 (no overlong forms, surrogates or
   code points past U+10FFFF) holding no NUL. */
bool json_is_text(const void *p, size_t len);

/* Base64 of len bytes at p, NUL-terminated; *out_len gets its length. */
char *json_base64(const void *p, size_t len, size_t *out_len);

/* Decode base64 text (padding required, no whitespace) into out. Returns 0,
   or -1 when the text is not base64 (out is then undefined) or memory ran
   out (*oom set). */
int json_unbase64(const char *text, size_t len, kvs_buf *out, bool *oom);

/* {"error":"<msg>"} */
char *json_error(const char *msg);

/* {"key":"…","value":"…"}, or both base64 with "encoding":"base64" when
   either is not text. */
char *json_key_value(kvs_slice key, kvs_slice value);

/* What a POST body said. */
struct json_post {
    kvs_buf value; /* the value, decoded (reused from call to call) */
    bool has_ttl;  /* "ttl" was given */
    long long ttl; /* seconds, >= 1 */
};

/*
 * json_parse_post - the body of POST /<key>: an object with a string
 * "value", optionally "encoding":"base64" (the value is base64 of the
 * bytes) and "ttl" (whole seconds, 1 to max_ttl). Returns 0, -1 with a
 * short reason in why (the body is not JSON, has no string value, a bad
 * encoding or ttl...), or KVS_ENOMEM.
 */
int json_parse_post(const char *body, size_t len, long long max_ttl, struct json_post *out,
                    char *why, size_t why_size);

/*
 * json_info - INFO's text ("# Section" lines and "name:value" lines) as
 * {"server":{"redis_version":"7.0.0","process_id":123,...},...}: sections
 * lower-cased, values that are whole numbers as numbers, others strings.
 */
char *json_info(const char *text, size_t len);

#endif
