/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * RESP encoders: replies for the server, requests for the client; see
 * resp.h. They run once per reply on the server's hot path, so each one
 * reserves its exact size once and writes numbers without printf.
 *
 * Simple strings and errors are lines: a CR or LF in their text would end
 * the line early and desynchronise the peer, so, as Redis does for errors,
 * each becomes a space.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "kvs/error.h"
#include "number.h"
#include "resp.h"

/* "$" or "*", at most 20 digits, "\r\n". */
#define HEADER_MAX (1 + RESP__LL_MAX_DIGITS + 2)

/* Reserve extra bytes past out->len; 0 or KVS_ENOMEM. */
static int reserve(kvs_buf *out, size_t extra)
{
    if (extra > SIZE_MAX - out->len)
        return KVS_ENOMEM;
    return kvs_buf_reserve(out, out->len + extra);
}

static char *tail(kvs_buf *out)
{
    return (char *)out->data + out->len;
}

/* Write "<prefix><n>\r\n" into room already reserved. */
static void put_header(kvs_buf *out, char prefix, uint64_t n)
{
    char *p = tail(out);
    p[0] = prefix;
    size_t k = 1 + resp__fmt_u64(p + 1, n);
    p[k++] = '\r';
    p[k++] = '\n';
    out->len += k;
}

static int add_line(kvs_buf *out, char prefix, const char *text, size_t len)
{
    int rc = reserve(out, len + 3);
    if (rc != 0)
        return rc;
    char *p = tail(out);
    p[0] = prefix;
    for (size_t i = 0; i < len; i++)
        p[1 + i] = text[i] == '\r' || text[i] == '\n' ? ' ' : text[i];
    p[1 + len] = '\r';
    p[2 + len] = '\n';
    out->len += len + 3;
    return 0;
}

int resp_add_simple(kvs_buf *out, const char *text)
{
    return add_line(out, '+', text, strlen(text));
}

int resp_add_error(kvs_buf *out, const char *text)
{
    return add_line(out, '-', text, strlen(text));
}

int resp_add_errorf(kvs_buf *out, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return KVS_EINVAL;
    /* Format in place after a '-', then fix the line up as add_line does. */
    int rc = reserve(out, (size_t)n + 4);
    if (rc != 0)
        return rc;
    char *p = tail(out);
    p[0] = '-';
    va_start(ap, fmt);
    vsnprintf(p + 1, (size_t)n + 1, fmt, ap);
    va_end(ap);
    for (int i = 1; i <= n; i++)
        if (p[i] == '\r' || p[i] == '\n')
            p[i] = ' ';
    p[n + 1] = '\r';
    p[n + 2] = '\n';
    out->len += (size_t)n + 3;
    return 0;
}

int resp_add_int(kvs_buf *out, long long value)
{
    int rc = reserve(out, HEADER_MAX);
    if (rc != 0)
        return rc;
    char *p = tail(out);
    p[0] = ':';
    size_t k = 1 + resp__fmt_ll(p + 1, value);
    p[k++] = '\r';
    p[k++] = '\n';
    out->len += k;
    return 0;
}

int resp_add_bulk(kvs_buf *out, const void *data, size_t len)
{
    if (len > SIZE_MAX - HEADER_MAX - 2)
        return KVS_ENOMEM;
    int rc = reserve(out, HEADER_MAX + len + 2);
    if (rc != 0)
        return rc;
    put_header(out, '$', len);
    char *p = tail(out);
    if (len)
        memcpy(p, data, len);
    p[len] = '\r';
    p[len + 1] = '\n';
    out->len += len + 2;
    return 0;
}

static int add_fixed(kvs_buf *out, const char *text, size_t len)
{
    int rc = reserve(out, len);
    if (rc != 0)
        return rc;
    memcpy(tail(out), text, len);
    out->len += len;
    return 0;
}

int resp_add_nil(kvs_buf *out)
{
    return add_fixed(out, "$-1\r\n", 5);
}

int resp_add_array(kvs_buf *out, size_t count)
{
    int rc = reserve(out, HEADER_MAX);
    if (rc != 0)
        return rc;
    put_header(out, '*', count);
    return 0;
}

int resp_add_nil_array(kvs_buf *out)
{
    return add_fixed(out, "*-1\r\n", 5);
}

int resp_add_command(kvs_buf *out, size_t argc, const kvs_slice *argv)
{
    /* One reservation for the whole command: a pipelined batch appends
       many commands to one buffer. */
    size_t total = HEADER_MAX;
    for (size_t i = 0; i < argc; i++) {
        if (argv[i].len > SIZE_MAX - total - HEADER_MAX - 2)
            return KVS_ENOMEM;
        total += HEADER_MAX + argv[i].len + 2;
    }
    int rc = reserve(out, total);
    if (rc != 0)
        return rc;
    put_header(out, '*', argc);
    for (size_t i = 0; i < argc; i++) {
        put_header(out, '$', argv[i].len);
        char *p = tail(out);
        if (argv[i].len)
            memcpy(p, argv[i].data, argv[i].len);
        p[argv[i].len] = '\r';
        p[argv[i].len + 1] = '\n';
        out->len += argv[i].len + 2;
    }
    return 0;
}
