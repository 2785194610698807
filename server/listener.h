/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A listening socket: accepts connections on the main thread and hands
 * each to a worker, round-robin. Refuses clients beyond maxclients with
 * Redis's error (or, on the HTTP listener, a 503). The main thread is the
 * only one that touches it. RESP and HTTP connections count against the
 * same maxclients.
 */
#ifndef KVS_SERVER_LISTENER_H
#define KVS_SERVER_LISTENER_H

#include "server.h"

struct event_base;
struct event;

struct listener {
    struct server *srv;
    bool http; /* the HTTP listener (--http-addr), else the RESP one */
    int fd;
    struct event *accept_ev;
    struct event *resume_ev; /* re-enables accepting after running out of fds */
    unsigned next_worker;
};

/*
 * listener_bind - create the socket and bind it to srv->cfg.addr, with
 * SO_REUSEADDR. Nothing is accepted yet (not even by the kernel: no
 * listen()), so a failure after this leaves no client half-connected.
 * Returns 0, or -1 with a one-line explanation in why (size bytes).
 */
int listener_bind(struct listener *l, struct server *srv, char *why, size_t size);

/* The same for the HTTP listener, on srv->cfg.http_addr. Protected mode
   is applied per request there (403), so that the refusal is an answer. */
int listener_bind_http(struct listener *l, struct server *srv, char *why, size_t size);

/* listen() and start accepting on base. Returns 0 or -1 with why. */
int listener_start(struct listener *l, struct event_base *base, char *why, size_t size);

/* A connection accepted elsewhere (loading.h) taken as if accepted here:
   protected mode, maxclients, then a worker. Main thread. */
void listener_take(struct listener *l, int fd, const struct sockaddr *peer, socklen_t peer_len);

/* Stop accepting and close the socket; safe to call twice. */
void listener_close(struct listener *l);

#endif
