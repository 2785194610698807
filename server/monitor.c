/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * MONITOR; see monitor.h. The list of monitors is under mon_lock, taken
 * before any mailbox's lock.
 */
#include "monitor.h"

#include <ctype.h>
#include <event2/event.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "commands.h"
#include "conn.h"
#include "log.h"
#include "reply.h"
#include "worker.h"

/* Lines a slow monitor may owe before it is closed, as Redis's output
   buffer limit would. */
#define MAILBOX_MAX (64u << 20)

struct monitor {
    struct monitor *next; /* in the list, under mon_lock */
    struct conn *c;
    int pipe_rd, pipe_wr;
    struct event *ev;
    pthread_mutex_t lock; /* mail and signaled */
    kvs_buf mail;
    bool signaled;
    bool overflow;
};

_Atomic unsigned monitor_count;
static pthread_mutex_t mon_lock = PTHREAD_MUTEX_INITIALIZER;
static struct monitor *monitors;

/* The monitor's worker: take the mail into the connection's replies. */
static void on_mail(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    struct monitor *m = arg;
    char drain[64];
    while (read(fd, drain, sizeof(drain)) > 0)
        ;
    struct conn *c = m->c;
    pthread_mutex_lock(&m->lock);
    m->signaled = false;
    bool overflow = m->overflow;
    if (!overflow && m->mail.len && reply_room(c, m->mail.len) &&
        kvs_buf_reserve(&c->out, c->out.len + m->mail.len) == 0) {
        memcpy((char *)c->out.data + c->out.len, m->mail.data, m->mail.len);
        c->out.len += m->mail.len;
    }
    m->mail.len = 0;
    pthread_mutex_unlock(&m->lock);
    if (overflow) {
        log_warn("client id=%llu addr=%s: MONITOR fell %u MB behind, closing it",
                 (unsigned long long)c->id, c->addr, MAILBOX_MAX >> 20);
        c->flags |= CONN_KILL;
    }
    if (c->npending == 0)
        conn_batch_done(c); /* writes the replies (and may free c) */
}

/* MONITOR */
void cmd_monitor(struct conn *c, size_t argc, const kvs_slice *argv)
{
    (void)argc;
    (void)argv;
    if (c->monitor) {
        reply_ok(c);
        return;
    }
    struct monitor *m = calloc(1, sizeof(*m));
    int p[2] = {-1, -1};
    if (!m || pipe2(p, O_NONBLOCK | O_CLOEXEC) != 0)
        goto out_fail;
    m->c = c;
    m->pipe_rd = p[0];
    m->pipe_wr = p[1];
    m->ev = event_new(c->w->base, p[0], EV_READ | EV_PERSIST, on_mail, m);
    if (!m->ev || event_add(m->ev, NULL) != 0)
        goto out_fail;
    pthread_mutex_init(&m->lock, NULL);
    c->monitor = m;
    atomic_store_explicit(&c->monitoring, true, memory_order_relaxed);
    reply_ok(c);
    pthread_mutex_lock(&mon_lock);
    m->next = monitors;
    monitors = m;
    atomic_fetch_add_explicit(&monitor_count, 1, memory_order_relaxed);
    pthread_mutex_unlock(&mon_lock);
    return;
out_fail:
    if (m && m->ev)
        event_free(m->ev);
    if (p[0] >= 0) {
        close(p[0]);
        close(p[1]);
    }
    free(m);
    c->flags |= CONN_KILL;
}

void monitor_conn_free(struct conn *c)
{
    struct monitor *m = c->monitor;
    if (!m)
        return;
    pthread_mutex_lock(&mon_lock);
    for (struct monitor **p = &monitors; *p; p = &(*p)->next) {
        if (*p == m) {
            *p = m->next;
            break;
        }
    }
    atomic_fetch_sub_explicit(&monitor_count, 1, memory_order_relaxed);
    pthread_mutex_unlock(&mon_lock);
    event_free(m->ev);
    close(m->pipe_rd);
    close(m->pipe_wr);
    pthread_mutex_destroy(&m->lock);
    kvs_buf_free(&m->mail);
    free(m);
    c->monitor = NULL;
    atomic_store_explicit(&c->monitoring, false, memory_order_relaxed);
}

/* Append s, quoted as Redis's sdscatrepr() quotes. */
static void add_repr(kvs_buf *b, kvs_slice s, size_t *len, char *buf, size_t cap)
{
    const unsigned char *p = s.data;
    size_t n = *len;
#define PUT(ch)                                                                                    \
    do {                                                                                           \
        if (n < cap)                                                                               \
            buf[n] = (char)(ch);                                                                   \
        n++;                                                                                       \
    } while (0)
    PUT(' ');
    PUT('"');
    for (size_t i = 0; i < s.len; i++) {
        unsigned char ch = p[i];
        switch (ch) {
        case '\\':
        case '"':
            PUT('\\');
            PUT(ch);
            break;
        case '\n':
            PUT('\\');
            PUT('n');
            break;
        case '\r':
            PUT('\\');
            PUT('r');
            break;
        case '\t':
            PUT('\\');
            PUT('t');
            break;
        case '\a':
            PUT('\\');
            PUT('a');
            break;
        case '\b':
            PUT('\\');
            PUT('b');
            break;
        default:
            if (isprint(ch)) {
                PUT(ch);
            } else {
                static const char hex[] = "0123456789abcdef";
                PUT('\\');
                PUT('x');
                PUT(hex[ch >> 4]);
                PUT(hex[ch & 15]);
            }
        }
    }
    PUT('"');
#undef PUT
    (void)b;
    *len = n;
}

/* Whether argument i of the command is a secret: AUTH's, HELLO AUTH's. */
static bool redacted(size_t argc, const kvs_slice *argv, size_t i)
{
    if (slice_is(argv[0], "auth"))
        return i >= 1;
    if (slice_is(argv[0], "hello")) {
        for (size_t j = 2; j + 2 < argc; j++) {
            if (slice_is(argv[j], "auth") && (i == j + 1 || i == j + 2))
                return true;
        }
    }
    return false;
}

void monitor_feed(struct conn *c, size_t argc, const kvs_slice *argv)
{
    /* The line, built once: measured first, then written. */
    struct timeval tv;
    gettimeofday(&tv, NULL);
    char head[160];
    int hn = snprintf(head, sizeof(head), "+%ld.%06ld [0 %s]", (long)tv.tv_sec, (long)tv.tv_usec,
                      c->addr);
    size_t len = 0;
    static const kvs_slice red = {"(redacted)", 10};
    for (size_t i = 0; i < argc; i++)
        add_repr(NULL, redacted(argc, argv, i) ? red : argv[i], &len, NULL, 0);
    size_t total = (size_t)hn + len + 2;
    char *line = malloc(total);
    if (!line)
        return;
    memcpy(line, head, (size_t)hn);
    size_t n = 0;
    for (size_t i = 0; i < argc; i++)
        add_repr(NULL, redacted(argc, argv, i) ? red : argv[i], &n, line + hn, len);
    memcpy(line + hn + len, "\r\n", 2);
    pthread_mutex_lock(&mon_lock);
    for (struct monitor *m = monitors; m; m = m->next) {
        if (m->c == c)
            continue;
        pthread_mutex_lock(&m->lock);
        if (m->mail.len + total > MAILBOX_MAX) {
            m->overflow = true;
        } else if (kvs_buf_reserve(&m->mail, m->mail.len + total) == 0) {
            memcpy((char *)m->mail.data + m->mail.len, line, total);
            m->mail.len += total;
        }
        if (!m->signaled) {
            m->signaled = true;
            char one = 1;
            ssize_t w = write(m->pipe_wr, &one, 1);
            (void)w; /* a full pipe is already a wake-up */
        }
        pthread_mutex_unlock(&m->lock);
    }
    pthread_mutex_unlock(&mon_lock);
    free(line);
}
