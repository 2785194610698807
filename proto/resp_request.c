/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The RESP request parser: multibulk commands ("*N\r\n" then N bulk
 * strings), and the dispatch to inline commands; see resp.h.
 *
 * Progress is kept as offsets from the start of the command (p->pos, p->scan,
 * p->pending, p->bulk), so a call after RESP_MORE resumes where the last one
 * stopped, also when the caller moved its buffer. Lines are searched at most
 * max_inline bytes ahead and never twice; a bulk's bytes are not looked at
 * until all of them are there. The argument arrays grow by doubling as
 * arguments arrive, never to a count the peer declared (CVE-2021-32675).
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kvs/error.h"
#include "number.h"
#include "request.h"
#include "resp.h"

/* Argument slots a new parser starts with: enough for GET, SET and most
   commands, so that the common case never reallocates. */
#define INITIAL_ARGS 8

static void reset(resp_parser *p)
{
    p->pos = 0;
    p->scan = 0;
    p->pending = -1;
    p->bulk = -1;
}

int resp_parser_init(resp_parser *p, const resp_limits *limits)
{
    memset(p, 0, sizeof(*p));
    p->limits.max_bulk = RESP_DEFAULT_MAX_BULK;
    p->limits.max_args = RESP_DEFAULT_MAX_ARGS;
    p->limits.max_inline = RESP_DEFAULT_MAX_INLINE;
    if (limits) {
        if (limits->max_bulk)
            p->limits.max_bulk = limits->max_bulk;
        if (limits->max_args)
            p->limits.max_args = limits->max_args;
        if (limits->max_inline)
            p->limits.max_inline = limits->max_inline;
        p->limits.args_error = limits->args_error;
        p->limits.bulk_error = limits->bulk_error;
    }
    /* Keep "bulk + 2" and "pos + line" free of overflow. */
    if (p->limits.max_bulk > SIZE_MAX / 4)
        p->limits.max_bulk = SIZE_MAX / 4;
    if (p->limits.max_inline > SIZE_MAX / 4)
        p->limits.max_inline = SIZE_MAX / 4;
    p->argv = malloc(INITIAL_ARGS * sizeof(*p->argv));
    p->arg_off = malloc(INITIAL_ARGS * sizeof(*p->arg_off));
    p->arg_len = malloc(INITIAL_ARGS * sizeof(*p->arg_len));
    if (!p->argv || !p->arg_off || !p->arg_len) {
        resp_parser_free(p);
        return KVS_ENOMEM;
    }
    p->argv_cap = INITIAL_ARGS;
    reset(p);
    return 0;
}

void resp_parser_free(resp_parser *p)
{
    if (!p)
        return;
    free(p->argv);
    free(p->arg_off);
    free(p->arg_len);
    free(p->scratch);
    p->argv = NULL;
    p->arg_off = p->arg_len = NULL;
    p->scratch = NULL;
    p->argv_cap = p->scratch_cap = p->scratch_used = 0;
    p->argc = 0;
}

void resp_parser_release(resp_parser *p)
{
    p->scratch_used = 0;
}

int resp__reserve_arg(resp_parser *p)
{
    if (p->argc < p->argv_cap)
        return 0;
    if (p->argv_cap > SIZE_MAX / 2 / sizeof(*p->argv))
        return KVS_ENOMEM;
    size_t cap = p->argv_cap * 2;
    /* Each array is replaced as soon as its realloc succeeds, so a later
       failure leaves every pointer valid and argv_cap still true for all. */
    kvs_slice *argv = realloc(p->argv, cap * sizeof(*argv));
    if (!argv)
        return KVS_ENOMEM;
    p->argv = argv;
    size_t *off = realloc(p->arg_off, cap * sizeof(*off));
    if (!off)
        return KVS_ENOMEM;
    p->arg_off = off;
    size_t *len = realloc(p->arg_len, cap * sizeof(*len));
    if (!len)
        return KVS_ENOMEM;
    p->arg_len = len;
    p->argv_cap = cap;
    return 0;
}

int resp__fail(resp_parser *p, const char *error)
{
    p->error = error;
    p->argc = 0;
    reset(p);
    return RESP_ERROR;
}

/* "ERR Protocol error: expected '$', got 'x'" for every byte x, built once
   so that p->error can stay a pointer to static storage. Like Redis (which
   formats with %c and then turns CR and LF of error texts into spaces), a
   CR or LF shows as a space and a NUL ends the text early. */
#define EXPECTED_FMT "ERR Protocol error: expected '$', got '%c'"
static char expected_text[256][sizeof(EXPECTED_FMT)];
static pthread_once_t expected_once = PTHREAD_ONCE_INIT;

static void expected_init(void)
{
    for (int c = 0; c < 256; c++) {
        int shown = c == '\r' || c == '\n' ? ' ' : c;
        snprintf(expected_text[c], sizeof(expected_text[c]), EXPECTED_FMT, shown);
    }
}

static int fail_expected(resp_parser *p, unsigned char got)
{
    pthread_once(&expected_once, expected_init);
    return resp__fail(p, expected_text[got]);
}

/*
 * Find the '\r' that ends the count line starting at p->pos ("*N" or "$N"),
 * searching only bytes not searched before and at most max_inline bytes
 * past the line start. Returns 1 with *cr set once the '\r' and the byte
 * after it are in the buffer, 0 when more bytes are needed, -1 when the
 * line is too long.
 */
static int find_line(resp_parser *p, const char *buf, size_t len, size_t *cr)
{
    /* The '\r' may sit at most max_inline bytes past the line start; once
       all of those bytes are here without one, the line is too long. */
    bool all_here = len - p->pos > p->limits.max_inline;
    size_t end = all_here ? p->pos + p->limits.max_inline + 1 : len;
    if (p->scan < p->pos)
        p->scan = p->pos;
    const char *hit = memchr(buf + p->scan, '\r', end - p->scan);
    if (!hit) {
        if (all_here)
            return -1;
        p->scan = len;
        return 0;
    }
    /* Resume from the '\r' itself when its '\n' has not arrived yet. */
    p->scan = (size_t)(hit - buf);
    if (p->scan + 1 >= len)
        return 0;
    *cr = p->scan;
    return 1;
}

/* Read "*N\r\n". Returns RESP_DONE when the header is complete (p->pending
   set; 0 for a count Redis ignores), RESP_MORE or RESP_ERROR. */
static int parse_count(resp_parser *p, const char *buf, size_t len)
{
    size_t cr;
    int found = find_line(p, buf, len, &cr);
    if (found < 0)
        return resp__fail(p, RESP__ERR_MBULK_BIG);
    if (found == 0)
        return RESP_MORE;
    long long count;
    if (buf[cr + 1] != '\n' || !resp__parse_ll(buf + 1, cr - 1, &count))
        return resp__fail(p, RESP__ERR_MBULK_LEN);
    if (count > 0 && (unsigned long long)count > p->limits.max_args)
        return resp__fail(p, p->limits.args_error && count <= (long long)RESP_DEFAULT_MAX_ARGS
                                 ? p->limits.args_error
                                 : RESP__ERR_MBULK_LEN);
    p->pending = count > 0 ? count : 0;
    p->pos = p->scan = cr + 2;
    p->argc = 0;
    return RESP_DONE;
}

/* Read "$N\r\n" at p->pos. Returns RESP_DONE with p->bulk set, RESP_MORE or
   RESP_ERROR. */
static int parse_bulk_len(resp_parser *p, const char *buf, size_t len)
{
    /* Redis checks the '$' once the whole line is in; checking the first
       byte as soon as it arrives gives the same answer, sooner. */
    if (buf[p->pos] != '$')
        return fail_expected(p, (unsigned char)buf[p->pos]);
    size_t cr;
    int found = find_line(p, buf, len, &cr);
    if (found < 0)
        return resp__fail(p, RESP__ERR_BULK_BIG);
    if (found == 0)
        return RESP_MORE;
    long long bulk;
    if (buf[cr + 1] != '\n' || !resp__parse_ll(buf + p->pos + 1, cr - p->pos - 1, &bulk) ||
        bulk < 0)
        return resp__fail(p, RESP__ERR_BULK_LEN);
    if ((unsigned long long)bulk > p->limits.max_bulk)
        return resp__fail(p, p->limits.bulk_error && bulk <= (long long)RESP_DEFAULT_MAX_BULK
                                 ? p->limits.bulk_error
                                 : RESP__ERR_BULK_LEN);
    p->bulk = bulk;
    p->pos = p->scan = cr + 2;
    return RESP_DONE;
}

static int parse_multibulk(resp_parser *p, const char *buf, size_t len, size_t *consumed,
                           size_t *need)
{
    if (p->pending < 0) {
        int rc = parse_count(p, buf, len);
        if (rc != RESP_DONE)
            return rc;
    }
    while (p->pending > 0) {
        if (p->bulk < 0) {
            if (p->pos >= len)
                return RESP_MORE;
            int rc = parse_bulk_len(p, buf, len);
            if (rc != RESP_DONE)
                return rc;
        }
        size_t bulk = (size_t)p->bulk;
        if (len - p->pos < bulk + 2) {
            if (need)
                *need = p->pos + bulk + 2;
            return RESP_MORE;
        }
        /* Redis skips the two bytes after a bulk unread. A peer whose data
           does not end there declared a wrong length, and taking the bytes
           as they come would store a value it did not mean: refuse it. */
        if (buf[p->pos + bulk] != '\r' || buf[p->pos + bulk + 1] != '\n')
            return resp__fail(p, RESP__ERR_BULK_LEN);
        if (resp__reserve_arg(p) != 0)
            return resp__fail(p, RESP__ERR_NOMEM);
        p->arg_off[p->argc] = p->pos;
        p->arg_len[p->argc] = bulk;
        p->argc++;
        p->pos = p->scan = p->pos + bulk + 2;
        p->bulk = -1;
        p->pending--;
    }
    for (size_t i = 0; i < p->argc; i++) {
        p->argv[i].data = buf + p->arg_off[i];
        p->argv[i].len = p->arg_len[i];
    }
    *consumed = p->pos;
    p->inline_cmd = false;
    reset(p);
    return RESP_DONE;
}

int resp_parse(resp_parser *p, const char *buf, size_t len, size_t *consumed, size_t *need)
{
    *consumed = 0;
    if (need)
        *need = 0;
    p->error = NULL;
    if (len == 0)
        return RESP_MORE;
    if (buf[0] == '*')
        return parse_multibulk(p, buf, len, consumed, need);
    return resp__parse_inline(p, buf, len, consumed);
}
