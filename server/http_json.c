/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The JSON of the HTTP interface; see http_json.h.
 */
#include "http_json.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kvs/error.h"

bool json_is_text(const void *p, size_t len)
{
    const unsigned char *s = p;
    size_t i = 0;
    while (i < len) {
        unsigned c = s[i];
        if (c == 0)
            return false;
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t n;
        unsigned cp, min;
        if ((c & 0xe0) == 0xc0) {
            n = 1, cp = c & 0x1f, min = 0x80;
        } else if ((c & 0xf0) == 0xe0) {
            n = 2, cp = c & 0x0f, min = 0x800;
        } else if ((c & 0xf8) == 0xf0) {
            n = 3, cp = c & 0x07, min = 0x10000;
        } else {
            return false;
        }
        if (len - i <= n)
            return false;
        for (size_t k = 1; k <= n; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += n + 1;
    }
    return true;
}

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *json_base64(const void *p, size_t len, size_t *out_len)
{
    const unsigned char *s = p;
    if (len > (SIZE_MAX - 1) / 4 * 3 - 3)
        return NULL;
    size_t n = (len + 2) / 3 * 4;
    char *out = malloc(n + 1);
    if (!out)
        return NULL;
    char *o = out;
    size_t i = 0;
    for (; i + 2 < len; i += 3) {
        unsigned v = (unsigned)s[i] << 16 | (unsigned)s[i + 1] << 8 | s[i + 2];
        *o++ = b64[v >> 18];
        *o++ = b64[(v >> 12) & 63];
        *o++ = b64[(v >> 6) & 63];
        *o++ = b64[v & 63];
    }
    if (i < len) {
        unsigned v = (unsigned)s[i] << 16 | (i + 1 < len ? (unsigned)s[i + 1] << 8 : 0);
        *o++ = b64[v >> 18];
        *o++ = b64[(v >> 12) & 63];
        *o++ = i + 1 < len ? b64[(v >> 6) & 63] : '=';
        *o++ = '=';
    }
    *o = '\0';
    *out_len = n;
    return out;
}

/* The value of a base64 digit, or -1. */
static int b64_digit(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    return c == '+' ? 62 : c == '/' ? 63 : -1;
}

int json_unbase64(const char *text, size_t len, kvs_buf *out, bool *oom)
{
    *oom = false;
    out->len = 0;
    if (len % 4 != 0)
        return -1;
    if (kvs_buf_reserve(out, len / 4 * 3 + 1) != 0) {
        *oom = true;
        return -1;
    }
    unsigned char *o = out->data;
    for (size_t i = 0; i < len; i += 4) {
        const unsigned char *q = (const unsigned char *)text + i;
        bool last = i + 4 == len;
        int pad = last ? (q[3] == '=') + (q[2] == '=' && q[3] == '=') : 0;
        int d[4] = {0, 0, 0, 0};
        for (int k = 0; k < 4 - pad; k++) {
            d[k] = b64_digit(q[k]);
            if (d[k] < 0)
                return -1;
        }
        unsigned v = (unsigned)d[0] << 18 | (unsigned)d[1] << 12 | (unsigned)d[2] << 6 | d[3];
        *o++ = (unsigned char)(v >> 16);
        if (pad < 2)
            *o++ = (unsigned char)(v >> 8);
        if (pad < 1)
            *o++ = (unsigned char)v;
    }
    out->len = (size_t)(o - (unsigned char *)out->data);
    return 0;
}

/* Print and free a tree; NULL (and the tree freed) when out of memory. */
static char *print(cJSON *root)
{
    char *text = root ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    return text;
}

char *json_error(const char *msg)
{
    cJSON *root = cJSON_CreateObject();
    if (root && !cJSON_AddStringToObject(root, "error", msg)) {
        cJSON_Delete(root);
        root = NULL;
    }
    return print(root);
}

/* A NUL-terminated copy of s, or its base64; NULL when out of memory. */
static char *string_of(kvs_slice s, bool base64)
{
    size_t n;
    if (base64)
        return json_base64(s.data, s.len, &n);
    char *copy = malloc(s.len + 1);
    if (copy) {
        if (s.len)
            memcpy(copy, s.data, s.len);
        copy[s.len] = '\0';
    }
    return copy;
}

char *json_key_value(kvs_slice key, kvs_slice value)
{
    bool base64 = !json_is_text(key.data, key.len) || !json_is_text(value.data, value.len);
    char *k = string_of(key, base64), *v = string_of(value, base64);
    cJSON *root = k && v ? cJSON_CreateObject() : NULL;
    bool ok = root && cJSON_AddStringToObject(root, "key", k) &&
              cJSON_AddStringToObject(root, "value", v) &&
              (!base64 || cJSON_AddStringToObject(root, "encoding", "base64"));
    free(k);
    free(v);
    if (!ok) {
        cJSON_Delete(root);
        return NULL;
    }
    return print(root);
}

/* Whether the JSON text holds the escape \u0000, which cJSON would turn
   into a NUL that ends its string: the value would be cut short. */
static bool has_nul_escape(const char *p, size_t len)
{
    for (size_t i = 0; i + 5 < len; i++) {
        if (p[i] != '\\')
            continue;
        if (p[i + 1] == 'u' && memcmp(p + i + 2, "0000", 4) == 0)
            return true;
        i++; /* an escaped character, perhaps a backslash: skip it */
    }
    return false;
}

int json_parse_post(const char *body, size_t len, long long max_ttl, struct json_post *out,
                    char *why, size_t why_size)
{
    out->has_ttl = false;
    out->ttl = 0;
    cJSON *root = cJSON_ParseWithLength(body, len);
    int rc = -1;
    if (!root) {
        snprintf(why, why_size, "the body is not JSON");
        return -1;
    }
    const cJSON *value = cJSON_GetObjectItemCaseSensitive(root, "value");
    const cJSON *encoding = cJSON_GetObjectItemCaseSensitive(root, "encoding");
    const cJSON *ttl = cJSON_GetObjectItemCaseSensitive(root, "ttl");
    bool base64 = false;
    if (!cJSON_IsObject(root)) {
        snprintf(why, why_size, "the body is not a JSON object");
        goto out;
    }
    if (!cJSON_IsString(value)) {
        snprintf(why, why_size, "the body has no string \"value\"");
        goto out;
    }
    if (encoding) {
        if (!cJSON_IsString(encoding) || strcmp(encoding->valuestring, "base64") != 0) {
            snprintf(why, why_size, "\"encoding\" must be \"base64\" when given");
            goto out;
        }
        base64 = true;
    }
    if (ttl) {
        double t = cJSON_IsNumber(ttl) ? ttl->valuedouble : 0;
        if (!cJSON_IsNumber(ttl) || t < 1 || t > (double)max_ttl || t != floor(t)) {
            snprintf(why, why_size, "\"ttl\" must be a whole number of seconds from 1 to %lld",
                     max_ttl);
            goto out;
        }
        out->has_ttl = true;
        out->ttl = (long long)t;
    }
    const char *s = value->valuestring;
    if (base64) {
        bool oom;
        if (json_unbase64(s, strlen(s), &out->value, &oom) != 0) {
            rc = oom ? KVS_ENOMEM : -1;
            snprintf(why, why_size, "\"value\" is not base64");
            goto out;
        }
    } else {
        if (has_nul_escape(body, len)) {
            snprintf(why, why_size,
                     "\\u0000 cannot be read from a JSON string: send such a value base64 "
                     "(\"encoding\":\"base64\") or with PUT");
            goto out;
        }
        if (kvs_buf_set(&out->value, s, strlen(s)) != 0) {
            rc = KVS_ENOMEM;
            goto out;
        }
    }
    rc = 0;
out:
    cJSON_Delete(root);
    return rc;
}

/* A value that is a whole number in decimal, as INFO writes counters. */
static bool is_integer(const char *s, size_t len)
{
    size_t i = s[0] == '-' ? 1 : 0;
    if (i == len || len - i > 18)
        return false;
    for (; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
    }
    return true;
}

/* One "name:value" line into obj. Returns false when out of memory. */
static bool add_field(cJSON *obj, const char *line, size_t len)
{
    const char *colon = memchr(line, ':', len);
    if (!colon)
        return true;
    char *copy = malloc(len + 1);
    if (!copy)
        return false;
    memcpy(copy, line, len);
    copy[len] = '\0';
    size_t nlen = (size_t)(colon - line);
    copy[nlen] = '\0';
    const char *val = copy + nlen + 1;
    size_t vlen = len - nlen - 1;
    bool ok = vlen && is_integer(val, vlen) ? cJSON_AddNumberToObject(obj, copy, strtod(val, NULL))
                                            : cJSON_AddStringToObject(obj, copy, val);
    free(copy);
    return ok;
}

char *json_info(const char *text, size_t len)
{
    cJSON *root = cJSON_CreateObject(), *section = NULL;
    bool ok = root != NULL;
    const char *p = text, *end = text + len;
    while (ok && p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *line_end = nl ? nl : end;
        size_t n = (size_t)(line_end - p);
        if (n && p[n - 1] == '\r')
            n--;
        if (n > 2 && p[0] == '#' && p[1] == ' ') {
            char name[64];
            size_t k = n - 2 < sizeof(name) - 1 ? n - 2 : sizeof(name) - 1;
            for (size_t i = 0; i < k; i++)
                name[i] = (char)(p[2 + i] >= 'A' && p[2 + i] <= 'Z' ? p[2 + i] + 32 : p[2 + i]);
            name[k] = '\0';
            section = cJSON_AddObjectToObject(root, name);
            ok = section != NULL;
        } else if (n && section) {
            ok = add_field(section, p, n);
        }
        p = nl ? nl + 1 : end;
    }
    if (!ok) {
        cJSON_Delete(root);
        return NULL;
    }
    return print(root);
}
