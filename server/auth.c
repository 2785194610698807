/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Access control; see auth.h.
 */
#include "auth.h"

#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
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

/* Protects cfg->requirepass (the bytes and the pointer) once the server
   runs: CONFIG SET may replace it while workers compare. Its length is
   an atomic, read without the lock on every command of a client that has
   not authenticated. */
static pthread_mutex_t pass_lock = PTHREAD_MUTEX_INITIALIZER;

bool auth_required(const struct server_config *cfg)
{
    return atomic_load_explicit(&cfg->requirepass_len, memory_order_acquire) > 0;
}

bool auth_password_matches(const struct server_config *cfg, kvs_slice attempt)
{
    pthread_mutex_lock(&pass_lock);
    const unsigned char *pass = (const unsigned char *)cfg->requirepass;
    const unsigned char *guess = attempt.data;
    size_t plen = atomic_load_explicit(&cfg->requirepass_len, memory_order_relaxed);
    bool match = false;
    if (pass && plen) {
        /* Every byte of the attempt is compared, against the password
           repeated as needed, and the differences are ORed: no early exit,
           no branch on the data. A length mismatch fails by the same OR. */
        volatile unsigned char diff = (unsigned char)(attempt.len != plen);
        for (size_t i = 0; i < attempt.len; i++)
            diff |= (unsigned char)(guess[i] ^ pass[i % plen]);
        match = diff == 0;
    }
    pthread_mutex_unlock(&pass_lock);
    return match;
}

int auth_set_password(struct server_config *cfg, const char *pass, size_t len)
{
    char *copy = NULL;
    if (len) {
        copy = malloc(len + 1);
        if (!copy)
            return -1;
        memcpy(copy, pass, len);
        copy[len] = '\0';
    }
    pthread_mutex_lock(&pass_lock);
    char *old = cfg->requirepass;
    size_t old_len = atomic_load_explicit(&cfg->requirepass_len, memory_order_relaxed);
    cfg->requirepass = copy;
    atomic_store_explicit(&cfg->requirepass_len, len, memory_order_release);
    pthread_mutex_unlock(&pass_lock);
    if (old) {
        explicit_bzero(old, old_len);
        free(old);
    }
    return 0;
}

size_t auth_password_copy(const struct server_config *cfg, char *out, size_t size)
{
    pthread_mutex_lock(&pass_lock);
    size_t len = atomic_load_explicit(&cfg->requirepass_len, memory_order_relaxed);
    if (cfg->requirepass && len <= size)
        memcpy(out, cfg->requirepass, len);
    pthread_mutex_unlock(&pass_lock);
    return len;
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

/* Sockets that gave the password while the store was opening (loading.c),
   by their SO_COOKIE: unique for the life of the system, so a descriptor
   number reused by another connection never inherits the grant. Taken
   once each by auth_conn_init(). */
#define PREAUTH_MAX 1024
static pthread_mutex_t preauth_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t preauth[PREAUTH_MAX];
static _Atomic unsigned npreauth;

static uint64_t socket_cookie(int fd)
{
    uint64_t cookie = 0;
    socklen_t len = sizeof(cookie);
    if (getsockopt(fd, SOL_SOCKET, SO_COOKIE, &cookie, &len) != 0)
        return 0;
    return cookie;
}

void auth_preauthorize(int fd)
{
    uint64_t cookie = socket_cookie(fd);
    pthread_mutex_lock(&preauth_lock);
    unsigned n = atomic_load(&npreauth);
    if (cookie && n < PREAUTH_MAX) {
        preauth[n] = cookie;
        atomic_store(&npreauth, n + 1);
    }
    pthread_mutex_unlock(&preauth_lock);
}

/* Whether fd's socket was preauthorized; the grant is used up. */
static bool take_preauth(int fd)
{
    if (atomic_load_explicit(&npreauth, memory_order_relaxed) == 0)
        return false;
    uint64_t cookie = socket_cookie(fd);
    bool found = false;
    pthread_mutex_lock(&preauth_lock);
    unsigned n = atomic_load(&npreauth);
    for (unsigned i = 0; cookie && i < n && !found; i++) {
        if (preauth[i] == cookie) {
            preauth[i] = preauth[n - 1];
            atomic_store(&npreauth, n - 1);
            found = true;
        }
    }
    pthread_mutex_unlock(&preauth_lock);
    return found;
}

void auth_conn_init(struct conn *c)
{
    /* As Redis: a connection made while no password is set stays
       authenticated when one is set later (CONFIG SET requirepass). */
    if (!auth_required(&c->w->srv->cfg) || take_preauth(c->fd)) {
        c->flags |= CONN_AUTHED;
        return;
    }
    c->flags &= ~CONN_AUTHED;
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
