/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Access control; see auth.h.
 */
#include "auth.h"

#include <netinet/in.h>
#include <string.h>

#include "conn.h"
#include "server.h"
#include "worker.h"

#define UNAUTH_ARGS_ERROR "ERR Protocol error: unauthenticated multibulk length"
#define UNAUTH_BULK_ERROR "ERR Protocol error: unauthenticated bulk length"

/* Redis's text, naming kvs and kvs's options. */
const char auth_denied_reply[] =
    "-DENIED kvs is running in protected mode because protected mode is enabled and no "
    "password is set for the default user. In this mode connections are only accepted from "
    "the loopback interface. If you want to connect from external computers to kvs you may "
    "adopt one of the following solutions: 1) Just disable protected mode by restarting the "
    "server with the '--protected-mode no' option, however MAKE SURE kvs is not publicly "
    "accessible from internet if you do so. 2) Alternatively set up an authentication "
    "password for the default user, restarting the server with the '--requirepass "
    "<password>' option (or '--requirepass-file <file>', which keeps the password out of the "
    "process list). NOTE: You only need to do one of the above things in order for the server "
    "to start accepting connections from the outside.\r\n";
const size_t auth_denied_reply_len = sizeof(auth_denied_reply) - 1;

bool auth_required(const struct server_config *cfg)
{
    return cfg->requirepass && cfg->requirepass_len > 0;
}

bool auth_password_matches(const struct server_config *cfg, kvs_slice attempt)
{
    if (!auth_required(cfg))
        return false;
    const unsigned char *pass = (const unsigned char *)cfg->requirepass;
    const unsigned char *guess = attempt.data;
    size_t plen = cfg->requirepass_len;
    /* Every byte of the attempt is compared, against the password repeated
       as needed, and the differences are ORed: no early exit, no branch on
       the data. A length mismatch fails by the same OR. */
    volatile unsigned char diff = (unsigned char)(attempt.len != plen);
    for (size_t i = 0; i < attempt.len; i++)
        diff |= (unsigned char)(guess[i] ^ pass[i % plen]);
    return diff == 0;
}

bool auth_peer_is_loopback(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
    }
    if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        if (IN6_IS_ADDR_LOOPBACK(a))
            return true;
        return IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127;
    }
    return sa->sa_family == AF_UNIX;
}

bool auth_protected_refuses(bool protected_mode, bool has_password, const struct sockaddr *peer)
{
    return protected_mode && !has_password && !auth_peer_is_loopback(peer);
}

void auth_conn_init(struct conn *c)
{
    if (!auth_required(&c->w->srv->cfg))
        return;
    resp_limits *l = &c->parser.limits;
    l->max_args = AUTH_UNAUTH_MAX_ARGS;
    l->max_bulk = AUTH_UNAUTH_MAX_BULK;
    l->args_error = UNAUTH_ARGS_ERROR;
    l->bulk_error = UNAUTH_BULK_ERROR;
}

void auth_conn_grant(struct conn *c)
{
    c->flags |= CONN_AUTHED;
    resp_limits *l = &c->parser.limits;
    l->max_args = RESP_DEFAULT_MAX_ARGS;
    l->max_bulk = RESP_DEFAULT_MAX_BULK;
    l->args_error = NULL;
    l->bulk_error = NULL;
}

bool auth_conn_allowed(const struct conn *c)
{
    return (c->flags & CONN_AUTHED) || !auth_required(&c->w->srv->cfg);
}
