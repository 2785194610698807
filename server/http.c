/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The HTTP interface's connections and requests over libmicrohttpd (MHD);
 * see http.h. The routes are http_routes.c's. Worker thread only.
 *
 * Where each rule is kept:
 *  - maxclients: by the HTTP listener (listener.c), as for RESP; a
 *    connection gives its place back when MHD closes it (on_connection).
 *  - protected mode (403), --http-max-url (414), --http-max-headers (431),
 *    the password (401), the method (405 with Allow) and a declared body
 *    over --http-max-body (413): checked in that order when the headers
 *    are in (begin()), before any byte of the body is read. MHD's own
 *    buffer (its connection memory) is sized to hold a request line and
 *    headers at those limits, so that these answers are kvs's JSON; a
 *    request past even that is answered by MHD itself, 414 or 431 with an
 *    HTML body.
 *  - a body without a length (chunked) that passes --http-max-body: the
 *    connection is closed there (MHD takes no answer in mid-body).
 *  - --http-request-timeout: a request must be whole (headers and body)
 *    within it of its request line; --http-keepalive-timeout: a
 *    connection must send a whole request line within it of its accept or
 *    its last answer. Both are checked once a second (on_cron), and a
 *    connection past either is shut down (shutdown(2): MHD sees the end
 *    and closes it). A suspended request, waiting for its writes, is
 *    exempt; MHD's own idle timeout, the longer of the two, is the
 *    backstop for clients that stop reading an answer.
 *  - --http-keepalive-requests: the answer to a connection's last allowed
 *    request says "Connection: close".
 *
 * MHD is given the raw path: its unescaping is turned off (keep_escapes),
 * so that routes match on the raw path (/_health is not /%5Fhealth) and
 * the key is decoded here, binary-safe, with MHD_http_unescape().
 */
#include "http.h"

#include <errno.h>
#include <event2/event.h>
#include <microhttpd.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "auth.h"
#include "http_json.h"
#include "http_req.h"
#include "log.h"
#include "worker.h"

/* MHD's connection memory beyond the request line and headers: its
   bookkeeping, the answer's headers and a read buffer for the body. */
#define MHD_MEMORY_SLACK (8u << 10)
/* A request's buffers larger than this are freed once it is answered. */
#define BUF_SHRINK (1u << 20)
/* A stop's rounds of answering what was received, and the wait of each. */
#define STOP_ROUNDS 20
#define STOP_WAIT_MS 100
/* MHD runs per wake-up of its descriptors, while they do something. */
#define READY_RUNS 2
/* Turns in which MHD still runs after one in which it did something. */
#define LINGER_RUNS 2

static const char allow_key[] = "GET, HEAD, PUT, POST, DELETE, DEL";
static const char allow_route[] = "GET, HEAD";

struct http_conn {
    struct http_worker *hw;
    struct http_conn *prev, *next;
    int fd;
    unsigned requests; /* request lines seen */
    bool in_request;   /* from its request line until it is whole */
    bool responding;   /* from its answer until MHD has sent it */
    bool closing;      /* shut down by a timeout */
    int64_t idle_since;
    size_t uri_len;
    struct http_req req;
};

struct http_worker {
    struct worker *w;
    struct server *srv;
    struct MHD_Daemon *d;
    struct event *ready_ev; /* MHD's epoll descriptor is readable */
    struct event *timer_ev; /* MHD asked to run again then (MHD_get_timeout) */
    struct event *cron_ev;  /* once a second: our timeouts */
    struct http_conn *conns;
    struct http_conn *adding; /* given to the connection MHD_add_connection starts */
    bool stopping;
    uint64_t activity; /* callbacks MHD made: whether a run did something */
    int linger;        /* runs still to make in the next turns (run_mhd) */
};

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- answers ---- */

static void set_answer(struct http_req *r, unsigned status, struct MHD_Response *resp)
{
    if (r->resp)
        MHD_destroy_response(r->resp);
    r->resp = resp;
    r->status = status;
}

void http_answer(struct http_req *r, unsigned status, const char *type, const void *body,
                 size_t len)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    if (resp && type)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    set_answer(r, resp ? status : 500, resp);
}

static const char oom_json[] = "{\"error\":\"out of memory\"}";

void http_answer_json(struct http_req *r, unsigned status, char *json)
{
    if (!json) {
        http_answer(r, 500, "application/json", oom_json, sizeof(oom_json) - 1);
        return;
    }
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(strlen(json), json, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(json);
        http_answer(r, 500, "application/json", oom_json, sizeof(oom_json) - 1);
        return;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    set_answer(r, status, resp);
}

void http_answer_error(struct http_req *r, unsigned status, const char *msg)
{
    http_answer_json(r, status, json_error(msg));
}

void http_answer_header(struct http_req *r, const char *name, const char *value)
{
    if (r->resp)
        MHD_add_response_header(r->resp, name, value);
}

void http_suspend(struct http_req *r)
{
    r->suspended = true;
    MHD_suspend_connection(r->mc);
}

/* MHD runs in the next turn (the zero timer, run_mhd): not at once, so
   that a stream of writes cannot keep the worker from its other events
   (new connections, RESP clients, timers). */
void http_resume(struct http_req *r)
{
    struct http_worker *hw = r->hc->hw;
    r->suspended = false;
    hw->linger = LINGER_RUNS;
    MHD_resume_connection(r->mc);
    struct timeval now = {0, 0};
    event_add(hw->timer_ev, &now);
}

/*
 * Let MHD work, up to runs times while there is work, then arm the timer.
 * MHD (0.9.75, epoll) takes a resumed connection back on one run, calls
 * its handler on another and writes its answer on a third, and keeps it
 * out of its epoll set until a read of it finds nothing; MHD_get_timeout()
 * says none of that, and no descriptor announces it. So after a resume, or
 * a run in which MHD called back (it may have left such work), MHD runs
 * again, in the next turns too (a zero timer), until LINGER_RUNS runs in a
 * row have done nothing; then the timer waits for what MHD asks.
 */
static void run_mhd(struct http_worker *hw, int runs)
{
    MHD_UNSIGNED_LONG_LONG ms = 0;
    for (int i = 0; i < runs; i++) {
        uint64_t before = hw->activity;
        MHD_run(hw->d);
        if (hw->activity != before)
            hw->linger = LINGER_RUNS;
        else if (hw->linger > 0)
            hw->linger--;
        if (hw->linger == 0)
            break;
    }
    struct timeval tv = {0, 0};
    if (hw->linger == 0) {
        if (MHD_get_timeout(hw->d, &ms) != MHD_YES) {
            event_del(hw->timer_ev);
            return;
        }
        tv = (struct timeval){(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
    }
    event_add(hw->timer_ev, &tv);
}

/* Hand the answer built to MHD, closing the connection after it when the
   keep-alive bound is reached or the server stops. */
static enum MHD_Result send_answer(struct http_req *r, bool close)
{
    struct http_conn *hc = r->hc;
    struct MHD_Response *resp = r->resp;
    r->resp = NULL;
    hc->in_request = false;
    hc->responding = true;
    if (close || hc->hw->stopping || hc->requests >= hc->hw->srv->cfg.http_keepalive_requests)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
    enum MHD_Result rc = MHD_queue_response(r->mc, r->status, resp);
    MHD_destroy_response(resp);
    return rc;
}

/* ---- access and limits, once the headers are in ---- */

static enum MHD_Result add_header_bytes(void *cls, enum MHD_ValueKind kind, const char *key,
                                        size_t key_size, const char *value, size_t value_size)
{
    (void)kind;
    (void)key;
    (void)value;
    *(size_t *)cls += key_size + value_size + 4; /* "name: value\r\n" */
    return MHD_YES;
}

/* Whether the request carries the password: "Authorization: Bearer PASS",
   or Basic with any user name and PASS. */
static bool authorized(const struct server_config *cfg, struct MHD_Connection *mc)
{
    if (!auth_required(cfg))
        return true;
    const char *h = MHD_lookup_connection_value(mc, MHD_HEADER_KIND, "Authorization");
    if (!h)
        return false;
    if (strncasecmp(h, "Bearer ", 7) == 0) {
        const char *p = h + 7;
        while (*p == ' ')
            p++;
        return auth_password_matches(cfg, (kvs_slice){p, strlen(p)});
    }
    if (strncasecmp(h, "Basic ", 6) != 0)
        return false;
    char *pass = NULL;
    char *user = MHD_basic_auth_get_username_password(mc, &pass);
    bool ok = pass && auth_password_matches(cfg, (kvs_slice){pass, strlen(pass)});
    MHD_free(user);
    MHD_free(pass);
    return ok;
}

static enum http_method method_of(const char *m)
{
    static const struct {
        const char *name;
        enum http_method method;
    } names[] = {
        {"GET", HTTP_GET},   {"HEAD", HTTP_HEAD},     {"PUT", HTTP_PUT},
        {"POST", HTTP_POST}, {"DELETE", HTTP_DELETE}, {"DEL", HTTP_DELETE},
    };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strcmp(m, names[i].name) == 0)
            return names[i].method;
    }
    return HTTP_OTHER;
}

/* The declared length of the body: -1 for none, -2 for one of unknown
   length (chunked), else its length. */
static long long body_length(struct MHD_Connection *mc)
{
    const char *cl = MHD_lookup_connection_value(mc, MHD_HEADER_KIND, "Content-Length");
    if (cl) {
        errno = 0;
        char *end;
        unsigned long long n = strtoull(cl, &end, 10);
        return errno || *end || n > (unsigned long long)INT64_MAX ? INT64_MAX : (long long)n;
    }
    const char *te = MHD_lookup_connection_value(mc, MHD_HEADER_KIND, "Transfer-Encoding");
    return te ? -2 : -1;
}

/* ?ttl=SECONDS of a write: whole seconds, 1 to HTTP_MAX_TTL. */
static bool parse_ttl(struct http_req *r)
{
    const char *t = MHD_lookup_connection_value(r->mc, MHD_GET_ARGUMENT_KIND, "ttl");
    if (!t)
        return true;
    long long v = 0;
    if (!*t || strspn(t, "0123456789") != strlen(t) || strlen(t) > 12)
        return false;
    v = strtoll(t, NULL, 10);
    if (v < 1 || v > HTTP_MAX_TTL)
        return false;
    r->has_ttl = true;
    r->ttl = v;
    return true;
}

/* The headers are in: decide everything that needs no body. Answers the
   request (r->resp) when it is refused. */
static void begin(struct http_worker *hw, struct http_req *r, const char *url, const char *method)
{
    const struct server_config *cfg = &hw->srv->cfg;
    struct MHD_Connection *mc = r->mc;
    r->method = method_of(method);
    const union MHD_ConnectionInfo *peer =
        MHD_get_connection_info(mc, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (!peer ||
        auth_protected_refuses(cfg->protected_mode, auth_required(cfg), peer->client_addr)) {
        http_answer_error(r, 403,
                          "protected mode: no password is set, so only loopback clients are "
                          "served (see --requirepass and --protected-mode)");
        return;
    }
    if (r->hc->uri_len > cfg->http_max_url) {
        http_answer_error(r, 414, "URL too long");
        return;
    }
    size_t header_bytes = 0;
    MHD_get_connection_values_n(mc, MHD_HEADER_KIND, add_header_bytes, &header_bytes);
    if (header_bytes > cfg->http_max_headers) {
        http_answer_error(r, 431, "request header fields too large");
        return;
    }
    if (!authorized(cfg, mc)) {
        http_answer_error(r, 401, "authentication required");
        http_answer_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer realm=\"kvs\"");
        http_answer_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
                           "Basic realm=\"kvs\", charset=\"UTF-8\"");
        return;
    }
    if (url[0] != '/') {
        http_answer_error(r, 400, "the path must start with /");
        return;
    }
    r->target = strcmp(url, "/_health") == 0 ? HTTP_HEALTH
                : strcmp(url, "/_info") == 0 ? HTTP_INFO
                                             : HTTP_KEY;
    bool routed = r->target != HTTP_KEY;
    if (r->method == HTTP_OTHER || (routed && r->method != HTTP_GET && r->method != HTTP_HEAD)) {
        http_answer_error(r, 405, "method not allowed");
        http_answer_header(r, MHD_HTTP_HEADER_ALLOW, routed ? allow_route : allow_key);
        return;
    }
    long long declared = body_length(mc);
    if (declared > (long long)cfg->http_max_body) {
        char msg[96];
        snprintf(msg, sizeof(msg), "body too large: at most %zu bytes", cfg->http_max_body);
        http_answer_error(r, 413, msg);
        return;
    }
    if (r->target == HTTP_KEY) {
        size_t n = strlen(url + 1);
        if (kvs_buf_set(&r->key, url + 1, n + 1) != 0) {
            http_answer_error(r, 500, "out of memory");
            return;
        }
        r->key.len = MHD_http_unescape(r->key.data);
        const kvs_engine *engine = kvs_db_engine(hw->srv->store.db);
        if (r->key.len > kvs_engine_max_key(engine)) {
            http_answer_kvs_error(r, KVS_EKEYSIZE);
            return;
        }
        if ((r->method == HTTP_PUT || r->method == HTTP_POST) && !parse_ttl(r)) {
            http_answer_error(r, 400, "invalid ttl: expected whole seconds from 1 to 3153600000");
            return;
        }
    }
    const char *accept = MHD_lookup_connection_value(mc, MHD_HEADER_KIND, "Accept");
    r->want_json = accept && strcasestr(accept, "application/json");
}

/* ---- MHD's callbacks ---- */

static enum MHD_Result on_request(void *cls, struct MHD_Connection *mc, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_size, void **ctx)
{
    (void)version;
    struct http_worker *hw = cls;
    struct http_req *r = *ctx;
    hw->activity++;
    if (!r)
        return MHD_NO; /* no request line was seen: cannot be */
    if (!r->started) {
        r->started = true;
        r->mc = mc;
        begin(hw, r, url, method);
        /* A refusal closes the connection if a body may follow, which is
           left unread. */
        return r->resp ? send_answer(r, body_length(mc) != -1) : MHD_YES;
    }
    if (*upload_size) {
        size_t n = *upload_size;
        *upload_size = 0;
        if (n > hw->srv->cfg.http_max_body - r->body.len) {
            log_debug("http: a body without a length passed --http-max-body; closing");
            r->too_large = true;
            return MHD_NO; /* MHD 0.9.75 takes no answer in mid-body */
        }
        if (kvs_buf_reserve(&r->body, r->body.len + n) != 0)
            return MHD_NO;
        memcpy((char *)r->body.data + r->body.len, upload_data, n);
        r->body.len += n;
        return MHD_YES;
    }
    if (r->suspended)
        return MHD_YES;
    if (!r->resp) {
        stat_add(&hw->w->stats.commands, 1);
        http_route(r);
        if (r->suspended)
            return MHD_YES;
    }
    return send_answer(r, false);
}

/* The request line is in: the request starts here (its context is the
   connection's request, reset). */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *mc)
{
    struct http_worker *hw = cls;
    hw->activity++;
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(mc, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    struct http_conn *hc = info ? info->socket_context : NULL;
    if (!hc)
        return NULL;
    struct http_req *r = &hc->req;
    r->started = r->suspended = r->too_large = r->has_ttl = r->want_json = false;
    r->key.len = r->body.len = 0;
    r->ttl = 0;
    r->since = mono_ms();
    hc->uri_len = strlen(uri);
    hc->in_request = true;
    hc->requests++;
    return r;
}

static void on_completed(void *cls, struct MHD_Connection *mc, void **ctx,
                         enum MHD_RequestTerminationCode toe)
{
    struct http_worker *hw = cls;
    hw->activity++;
    (void)mc;
    (void)toe;
    struct http_req *r = *ctx;
    *ctx = NULL;
    if (!r)
        return;
    struct http_conn *hc = r->hc;
    hc->in_request = hc->responding = false;
    hc->idle_since = mono_ms();
    set_answer(r, 0, NULL);
    if (r->body.cap > BUF_SHRINK)
        kvs_buf_free(&r->body);
    if (r->value.cap > BUF_SHRINK)
        kvs_buf_free(&r->value);
}

static void conn_release(struct http_conn *hc)
{
    kvs_buf_free(&hc->req.key);
    kvs_buf_free(&hc->req.body);
    kvs_buf_free(&hc->req.value);
    free(hc);
}

static void on_connection(void *cls, struct MHD_Connection *mc, void **socket_ctx,
                          enum MHD_ConnectionNotificationCode toe)
{
    struct http_worker *hw = cls;
    hw->activity++;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        struct http_conn *hc = hw->adding;
        hw->adding = NULL;
        *socket_ctx = hc;
        if (!hc)
            return;
        const union MHD_ConnectionInfo *info =
            MHD_get_connection_info(mc, MHD_CONNECTION_INFO_CONNECTION_FD);
        hc->fd = info ? info->connect_fd : -1;
        hc->next = hw->conns;
        if (hw->conns)
            hw->conns->prev = hc;
        hw->conns = hc;
        stat_add(&hw->w->stats.connections, 1);
        return;
    }
    struct http_conn *hc = *socket_ctx;
    *socket_ctx = NULL;
    if (!hc)
        return;
    if (hc->prev)
        hc->prev->next = hc->next;
    else
        hw->conns = hc->next;
    if (hc->next)
        hc->next->prev = hc->prev;
    conn_release(hc);
    atomic_fetch_sub_explicit(&hw->srv->clients, 1, memory_order_relaxed);
}

/* Raw paths: the key is decoded from it here, binary-safe. */
static size_t keep_escapes(void *cls, struct MHD_Connection *mc, char *s)
{
    (void)cls;
    (void)mc;
    return strlen(s);
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    if (!log_enabled(LVL_DEBUG))
        return;
    char line[256];
    vsnprintf(line, sizeof(line), fmt, ap);
    size_t n = strlen(line);
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = '\0';
    log_debug("http: %s", line);
}

/* ---- the worker's events ---- */

/* MHD's descriptors are ready, or the time it asked for has come. */
static void on_ready(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    run_mhd(arg, READY_RUNS);
}

static void shut(struct http_conn *hc, const char *why)
{
    log_debug("http: closing a connection: %s", why);
    hc->closing = true;
    if (hc->fd >= 0)
        shutdown(hc->fd, SHUT_RDWR);
}

static void on_cron(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct http_worker *hw = arg;
    const struct server_config *cfg = &hw->srv->cfg;
    int64_t now = mono_ms();
    for (struct http_conn *hc = hw->conns; hc; hc = hc->next) {
        if (hc->closing || hc->req.suspended || hc->responding)
            continue;
        if (hc->in_request && now - hc->req.since > (int64_t)cfg->http_request_timeout * 1000)
            shut(hc, "request not whole within --http-request-timeout");
        else if (!hc->in_request &&
                 now - hc->idle_since > (int64_t)cfg->http_keepalive_timeout * 1000)
            shut(hc, "no request within --http-keepalive-timeout");
    }
    run_mhd(hw, 1);
}

int http_worker_init(struct http_worker **hwp, struct worker *w)
{
    struct http_worker *hw = calloc(1, sizeof(*hw));
    *hwp = hw;
    if (!hw)
        return -1;
    hw->w = w;
    hw->srv = w->srv;
    const struct server_config *cfg = &w->srv->cfg;
    unsigned idle = cfg->http_request_timeout > cfg->http_keepalive_timeout
                        ? cfg->http_request_timeout
                        : cfg->http_keepalive_timeout;
    size_t memory = (size_t)cfg->http_max_url + cfg->http_max_headers + MHD_MEMORY_SLACK;
    hw->d = MHD_start_daemon(
        MHD_USE_EPOLL | MHD_USE_NO_LISTEN_SOCKET | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG, 0,
        NULL, NULL, on_request, hw, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, hw,
        MHD_OPTION_CONNECTION_LIMIT, 1000000u, MHD_OPTION_CONNECTION_TIMEOUT, idle,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, memory, MHD_OPTION_NOTIFY_CONNECTION, on_connection, hw,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, hw, MHD_OPTION_URI_LOG_CALLBACK, on_uri, hw,
        MHD_OPTION_UNESCAPE_CALLBACK, keep_escapes, NULL, MHD_OPTION_END);
    if (!hw->d)
        return -1;
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(hw->d, MHD_DAEMON_INFO_EPOLL_FD);
    if (!info)
        return -1;
    hw->ready_ev = event_new(w->base, info->epoll_fd, EV_READ | EV_PERSIST, on_ready, hw);
    hw->timer_ev = evtimer_new(w->base, on_ready, hw);
    hw->cron_ev = event_new(w->base, -1, EV_PERSIST, on_cron, hw);
    struct timeval second = {1, 0};
    if (!hw->ready_ev || !hw->timer_ev || !hw->cron_ev || event_add(hw->ready_ev, NULL) != 0 ||
        event_add(hw->cron_ev, &second) != 0)
        return -1;
    return 0;
}

void http_conn_open(struct http_worker *hw, int fd)
{
    struct sockaddr_storage peer;
    socklen_t len = sizeof(peer);
    struct http_conn *hc = NULL;
    if (hw->stopping || getpeername(fd, (struct sockaddr *)&peer, &len) != 0 ||
        !(hc = calloc(1, sizeof(*hc)))) {
        close(fd);
        atomic_fetch_sub_explicit(&hw->srv->clients, 1, memory_order_relaxed);
        return;
    }
    hc->hw = hw;
    hc->fd = fd;
    hc->idle_since = mono_ms();
    hc->req.hc = hc;
    hc->req.w = hw->w;
    hw->adding = hc;
    /* On failure MHD closes the socket; if it never started the
       connection (on_connection took no hc), its place is given back here. */
    if (MHD_add_connection(hw->d, fd, (struct sockaddr *)&peer, len) != MHD_YES &&
        hw->adding == hc) {
        log_warn("http: cannot take a connection: %s", strerror(errno));
        conn_release(hc);
        atomic_fetch_sub_explicit(&hw->srv->clients, 1, memory_order_relaxed);
    }
    hw->adding = NULL;
}

/* Whether some request was received and is not answered and sent yet. */
static bool busy(const struct http_worker *hw)
{
    for (const struct http_conn *hc = hw->conns; hc; hc = hc->next) {
        if (hc->responding || hc->req.suspended)
            return true;
    }
    return false;
}

void http_worker_stop(struct http_worker *hw)
{
    hw->stopping = true;
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(hw->d, MHD_DAEMON_INFO_EPOLL_FD);
    for (int i = 0; i < STOP_ROUNDS; i++) {
        worker_batch_run(hw->w); /* answers queued writes: resumes their requests */
        MHD_run(hw->d);          /* reads what was sent, queues and sends answers */
        worker_batch_run(hw->w);
        if (!busy(hw))
            break;
        struct pollfd p = {.fd = info ? info->epoll_fd : -1, .events = POLLIN};
        poll(&p, 1, STOP_WAIT_MS);
        MHD_run(hw->d);
    }
    event_del(hw->ready_ev);
    event_del(hw->timer_ev);
    event_del(hw->cron_ev);
    MHD_stop_daemon(hw->d); /* closes every connection (on_connection) */
    hw->d = NULL;
}

void http_worker_destroy(struct http_worker *hw)
{
    if (!hw)
        return;
    if (hw->d)
        MHD_stop_daemon(hw->d);
    if (hw->ready_ev)
        event_free(hw->ready_ev);
    if (hw->timer_ev)
        event_free(hw->timer_ev);
    if (hw->cron_ev)
        event_free(hw->cron_ev);
    free(hw);
}
