/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The libmicrohttpd half of the library comparison (benches/http-libs/run):
 * one internal thread polling with epoll, answering every request with the
 * same 100-byte value as application/octet-stream, as kvs's GET /<key>
 * would. A response is made per request, as a server of changing values
 * must.
 *   microhttpd PORT
 */
#include <arpa/inet.h>
#include <event2/event.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char value[100];

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **ctx)
{
    (void)cls;
    (void)url;
    (void)method;
    (void)version;
    (void)upload_data;
    (void)upload_data_size;
    /* The first call only announces the request; answering then would
       leave an unread body possible, and MHD would close the connection. */
    static int seen;
    if (!*ctx) {
        *ctx = &seen;
        return MHD_YES;
    }
    struct MHD_Response *r =
        MHD_create_response_from_buffer(sizeof(value), value, MHD_RESPMEM_MUST_COPY);
    MHD_add_response_header(r, "Content-Type", "application/octet-stream");
    enum MHD_Result ret = MHD_queue_response(conn, 200, r);
    MHD_destroy_response(r);
    return ret;
}

static void on_ready(evutil_socket_t fd, short what, void *arg);

/* Re-arm the watch with MHD's own timeout, then let MHD work. */
static void run_mhd(struct MHD_Daemon *d, struct event *ev)
{
    MHD_run(d);
    MHD_UNSIGNED_LONG_LONG ms = 0;
    struct timeval tv = {1, 0};
    if (MHD_get_timeout(d, &ms) == MHD_YES)
        tv = (struct timeval){(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
    event_add(ev, &tv);
}

static struct MHD_Daemon *daemon_;

static void on_ready(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    run_mhd(daemon_, arg);
}

static void on_signal(evutil_socket_t sig, short what, void *base)
{
    (void)sig;
    (void)what;
    event_base_loopbreak(base);
}

int main(int argc, char **argv)
{
    if (argc != 3 || (strcmp(argv[2], "internal") != 0 && strcmp(argv[2], "libevent") != 0)) {
        fprintf(stderr, "usage: microhttpd PORT internal|libevent\n");
        return 2;
    }
    bool internal = strcmp(argv[2], "internal") == 0;
    memset(value, 'v', sizeof(value));
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    if (internal)
        pthread_sigmask(SIG_BLOCK, &set, NULL);
    /* Loopback only, as the evhttp half. */
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[1]))};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    daemon_ = MHD_start_daemon(internal ? MHD_USE_EPOLL_INTERNAL_THREAD : MHD_USE_EPOLL, 0, NULL,
                               NULL, on_request, NULL, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
                               MHD_OPTION_CONNECTION_LIMIT, 10000u, MHD_OPTION_END);
    if (!daemon_) {
        fprintf(stderr, "microhttpd: cannot listen on port %s\n", argv[1]);
        return 1;
    }
    if (internal) {
        int sig;
        sigwait(&set, &sig);
    } else {
        const union MHD_DaemonInfo *info = MHD_get_daemon_info(daemon_, MHD_DAEMON_INFO_EPOLL_FD);
        struct event_base *base = event_base_new();
        struct event *ev = event_new(base, info->epoll_fd, EV_READ, on_ready, NULL);
        event_assign(ev, base, info->epoll_fd, EV_READ, on_ready, ev);
        struct event *term = evsignal_new(base, SIGTERM, on_signal, base);
        event_add(term, NULL);
        run_mhd(daemon_, ev);
        event_base_dispatch(base);
        event_free(term);
        event_free(ev);
        event_base_free(base);
    }
    MHD_stop_daemon(daemon_);
    return 0;
}
