/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The client's half of RESP: reading one reply element; see resp.h.
 *
 * Stateless: each call starts at the front of the buffer, so a client that
 * got RESP_MORE reads more and calls again. A call after RESP_MORE costs one
 * header line, not the whole bulk, because a bulk's bytes are only counted
 * until they are all there.
 */
#include <string.h>

#include "number.h"
#include "resp.h"

/* Find the "\r\n" ending the line that starts at buf[1]. Returns 1 with
 *cr set, 0 when incomplete, -1 for a CR not followed by LF. */
static int find_crlf(const char *buf, size_t len, size_t *cr)
{
    const char *hit = memchr(buf + 1, '\r', len - 1);
    if (!hit)
        return 0;
    size_t at = (size_t)(hit - buf);
    if (at + 1 >= len)
        return 0;
    if (buf[at + 1] != '\n')
        return -1;
    *cr = at;
    return 1;
}

int resp_parse_reply(const char *buf, size_t len, size_t max_bulk, resp_reply *r, size_t *consumed)
{
    *consumed = 0;
    if (len == 0)
        return RESP_MORE;
    char kind = buf[0];
    if (kind != '+' && kind != '-' && kind != ':' && kind != '$' && kind != '*')
        return RESP_ERROR;
    size_t cr;
    int found = find_crlf(buf, len, &cr);
    if (found <= 0)
        return found < 0 ? RESP_ERROR : RESP_MORE;

    memset(r, 0, sizeof(*r));
    if (kind == '+' || kind == '-') {
        r->type = kind == '+' ? RESP_SIMPLE : RESP_ERR;
        r->str = kvs_slice_of(buf + 1, cr - 1);
        *consumed = cr + 2;
        return RESP_DONE;
    }
    long long n;
    if (!resp__parse_ll(buf + 1, cr - 1, &n))
        return RESP_ERROR;
    if (kind == ':') {
        r->type = RESP_INTEGER;
        r->integer = n;
        *consumed = cr + 2;
        return RESP_DONE;
    }
    if (n == -1) {
        r->type = RESP_NIL;
        *consumed = cr + 2;
        return RESP_DONE;
    }
    if (n < 0)
        return RESP_ERROR;
    if (kind == '*') {
        r->type = RESP_ARRAY;
        r->integer = n;
        *consumed = cr + 2;
        return RESP_DONE;
    }
    if ((unsigned long long)n > max_bulk)
        return RESP_ERROR;
    size_t start = cr + 2;
    size_t bulk = (size_t)n;
    if (len - start < bulk + 2)
        return RESP_MORE;
    if (buf[start + bulk] != '\r' || buf[start + bulk + 1] != '\n')
        return RESP_ERROR;
    r->type = RESP_BULK;
    r->integer = n;
    r->str = kvs_slice_of(buf + start, bulk);
    *consumed = start + bulk + 2;
    return RESP_DONE;
}
