/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The listening socket; see listener.h. Main thread only.
 */
#include "listener.h"

#include <errno.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "auth.h"
#include "log.h"
#include "worker.h"

/* Connections accepted per wake-up before the loop looks at its other
   events (signals), so a flood of connects cannot starve a shutdown. */
#define ACCEPTS_PER_WAKEUP 64
/* Out of descriptors: stop accepting this long, instead of spinning on a
   listening socket that stays readable. */
#define EMFILE_PAUSE_MS 100

static const char maxclients_error[] = "-ERR max number of clients reached\r\n";
#define MAXCLIENTS_JSON "{\"error\":\"max number of clients reached\"}"
static const char maxclients_http[] = "HTTP/1.1 503 Service Unavailable\r\n"
                                      "Content-Type: application/json\r\n"
                                      "Connection: close\r\n"
                                      "Content-Length: 41\r\n\r\n" MAXCLIENTS_JSON;
_Static_assert(sizeof(MAXCLIENTS_JSON) - 1 == 41, "Content-Length");

static void reject(struct listener *l, int fd)
{
    /* Best effort: the socket is new, so its buffer has room for the line. */
    if (l->http)
        (void)!send(fd, maxclients_http, sizeof(maxclients_http) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
    else
        (void)!send(fd, maxclients_error, sizeof(maxclients_error) - 1,
                    MSG_NOSIGNAL | MSG_DONTWAIT);
    close(fd);
    stat_add(&l->srv->listener_stats.rejected, 1);
}

/* Protected mode: no password and a peer from outside this machine. The
   refusal is sent as Redis sends it, then the socket is closed. */
static void deny(struct listener *l, int fd)
{
    (void)!send(fd, auth_denied_reply, auth_denied_reply_len, MSG_NOSIGNAL | MSG_DONTWAIT);
    close(fd);
    stat_add(&l->srv->listener_stats.rejected, 1);
}

void listener_take(struct listener *l, int fd, const struct sockaddr *peer, socklen_t peer_len)
{
    struct server *srv = l->srv;
    if (!l->http &&
        auth_protected_refuses(srv->cfg.protected_mode, auth_required(&srv->cfg), peer)) {
        char text[KVS_ADDR_STRLEN];
        if (kvs_addr_format(peer, peer_len, text, sizeof(text)) != 0)
            snprintf(text, sizeof(text), "?");
        log_debug("protected mode: refused a connection from %s (no password is set)", text);
        deny(l, fd);
        return;
    }
    unsigned max = atomic_load_explicit(&srv->maxclients, memory_order_relaxed);
    if (atomic_fetch_add_explicit(&srv->clients, 1, memory_order_relaxed) >= max) {
        atomic_fetch_sub_explicit(&srv->clients, 1, memory_order_relaxed);
        log_debug("max number of clients (%u) reached; refusing a connection", max);
        reject(l, fd);
        return;
    }
    int one = 1;
    /* Replies are written once per batch already; Nagle would only delay them. */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    struct worker *w = &srv->workers[l->next_worker];
    l->next_worker = (l->next_worker + 1) % srv->nworkers;
    if ((l->http ? worker_hand_off_http(w, fd) : worker_hand_off(w, fd)) != 0) {
        log_warn("worker %u is not keeping up with new connections; refusing one", w->index);
        atomic_fetch_sub_explicit(&srv->clients, 1, memory_order_relaxed);
        close(fd);
    }
}

static void on_accept(evutil_socket_t lfd, short what, void *arg)
{
    (void)what;
    struct listener *l = arg;
    for (int i = 0; i < ACCEPTS_PER_WAKEUP; i++) {
        struct sockaddr_storage peer;
        socklen_t peer_len = sizeof(peer);
        int fd = accept4(lfd, (struct sockaddr *)&peer, &peer_len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) {
            listener_take(l, fd, (const struct sockaddr *)&peer, peer_len);
            continue;
        }
        if (errno == EINTR || errno == ECONNABORTED)
            continue;
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
            log_warn("accept: %s; pausing new connections for %d ms", strerror(errno),
                     EMFILE_PAUSE_MS);
            struct timeval pause = {0, EMFILE_PAUSE_MS * 1000};
            event_del(l->accept_ev);
            event_add(l->resume_ev, &pause);
        } else if (errno != EAGAIN && errno != EWOULDBLOCK) {
            log_warn("accept: %s", strerror(errno));
        }
        return;
    }
}

static void on_resume(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct listener *l = arg;
    event_add(l->accept_ev, NULL);
}

/* The address the listener is for, and its text. */
static const struct sockaddr_storage *listener_addr(const struct listener *l, socklen_t *len,
                                                    const char **text)
{
    const struct server_config *cfg = &l->srv->cfg;
    *len = l->http ? cfg->http_addr_len : cfg->addr_len;
    *text = l->http ? cfg->http_addr_text : cfg->addr_text;
    return l->http ? &cfg->http_addr : &cfg->addr;
}

static int bind_addr(struct listener *l, struct server *srv, bool http, char *why, size_t size)
{
    memset(l, 0, sizeof(*l));
    l->srv = srv;
    l->http = http;
    socklen_t addr_len;
    const char *text;
    const struct sockaddr_storage *addr = listener_addr(l, &addr_len, &text);
    l->fd = socket(addr->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (l->fd < 0) {
        snprintf(why, size, "cannot create a socket for %s: %s", text, strerror(errno));
        return -1;
    }
    int one = 1;
    setsockopt(l->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (addr->ss_family == AF_INET6)
        setsockopt(l->fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    if (bind(l->fd, (const struct sockaddr *)addr, addr_len) != 0) {
        snprintf(why, size, "cannot bind %s%s: %s", http ? "--http-addr " : "", text,
                 strerror(errno));
        close(l->fd);
        l->fd = -1;
        return -1;
    }
    return 0;
}

int listener_bind(struct listener *l, struct server *srv, char *why, size_t size)
{
    return bind_addr(l, srv, false, why, size);
}

int listener_bind_http(struct listener *l, struct server *srv, char *why, size_t size)
{
    return bind_addr(l, srv, true, why, size);
}

int listener_start(struct listener *l, struct event_base *base, char *why, size_t size)
{
    socklen_t addr_len;
    const char *text;
    listener_addr(l, &addr_len, &text);
    if (listen(l->fd, SOMAXCONN) != 0) {
        snprintf(why, size, "cannot listen on %s: %s", text, strerror(errno));
        return -1;
    }
    l->accept_ev = event_new(base, l->fd, EV_READ | EV_PERSIST, on_accept, l);
    l->resume_ev = evtimer_new(base, on_resume, l);
    if (!l->accept_ev || !l->resume_ev || event_add(l->accept_ev, NULL) != 0) {
        snprintf(why, size, "out of memory");
        return -1;
    }
    return 0;
}

void listener_close(struct listener *l)
{
    if (l->accept_ev) {
        event_free(l->accept_ev);
        l->accept_ev = NULL;
    }
    if (l->resume_ev) {
        event_free(l->resume_ev);
        l->resume_ev = NULL;
    }
    if (l->fd >= 0) {
        close(l->fd);
        l->fd = -1;
    }
}
