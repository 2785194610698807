/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Internals of the request parser shared by its two halves (private to
 * proto/): resp_request.c reads multibulk commands and owns the parser's
 * arrays; resp_inline.c splits inline commands the way Redis's
 * sdssplitargs() does.
 */
#ifndef KVS_PROTO_REQUEST_H
#define KVS_PROTO_REQUEST_H

#include "resp.h"

/* Error texts, without the leading '-', exactly as Redis words them. */
#define RESP__ERR_MBULK_LEN "ERR Protocol error: invalid multibulk length"
#define RESP__ERR_BULK_LEN "ERR Protocol error: invalid bulk length"
#define RESP__ERR_INLINE_BIG "ERR Protocol error: too big inline request"
#define RESP__ERR_MBULK_BIG "ERR Protocol error: too big mbulk count string"
#define RESP__ERR_BULK_BIG "ERR Protocol error: too big bulk count string"
#define RESP__ERR_QUOTES "ERR Protocol error: unbalanced quotes in request"
#define RESP__ERR_NOMEM "ERR out of memory"

/* Make room for one more argument in argv/arg_off/arg_len (doubling).
   Returns 0, or KVS_ENOMEM with the arrays as they were. */
int resp__reserve_arg(resp_parser *p);

/* Set p->error, return the parser to its start state, return RESP_ERROR. */
int resp__fail(resp_parser *p, const char *error);

/* Parse an inline command from buf (which does not start with '*'). */
int resp__parse_inline(resp_parser *p, const char *buf, size_t len, size_t *consumed);

#endif
