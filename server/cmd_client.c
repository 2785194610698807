/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The CLIENT subcommands that look beyond the calling connection, and
 * RESET: CLIENT LIST, INFO, KILL, REPLY, NO-EVICT, PAUSE, UNPAUSE (the
 * others, ID, GETNAME, SETNAME, SETINFO, are cmd_server.c's), and the
 * registry of connections they read (clients.h). Replies and errors are
 * Redis 7.0's. Run on the connection's worker thread.
 */
#include <arpa/inet.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "auth.h"
#include "clients.h"
#include "commands.h"
#include "conn.h"
#include "monitor.h"
#include "multi.h"
#include "reply.h"
#include "worker.h"

/* Protects the list and every connection's name. */
static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct conn *reg_head;

/* CLIENT PAUSE: until when (ms since the epoch; 0 none) and whether only
   writes wait. */
static _Atomic int64_t pause_until;
static atomic_bool pause_writes_only;

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void addr_text(int fd, bool local, char *out, size_t size)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    int rc = local ? getsockname(fd, (struct sockaddr *)&ss, &len)
                   : getpeername(fd, (struct sockaddr *)&ss, &len);
    char ip[INET6_ADDRSTRLEN] = "?";
    unsigned port = 0;
    if (rc == 0 && ss.ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)&ss;
        inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip));
        port = ntohs(in->sin_port);
    } else if (rc == 0 && ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&ss;
        inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof(ip));
        port = ntohs(in6->sin6_port);
    }
    snprintf(out, size, "%s:%u", ip, port);
}

void clients_add(struct conn *c)
{
    c->created_ms = now_ms();
    atomic_init(&c->multi_count, -1);
    addr_text(c->fd, false, c->addr, sizeof(c->addr));
    addr_text(c->fd, true, c->laddr, sizeof(c->laddr));
    pthread_mutex_lock(&reg_lock);
    c->reg_prev = NULL;
    c->reg_next = reg_head;
    if (reg_head)
        reg_head->reg_prev = c;
    reg_head = c;
    pthread_mutex_unlock(&reg_lock);
}

void clients_remove(struct conn *c)
{
    monitor_conn_free(c);
    pthread_mutex_lock(&reg_lock);
    if (c->reg_prev)
        c->reg_prev->reg_next = c->reg_next;
    else if (reg_head == c)
        reg_head = c->reg_next;
    if (c->reg_next)
        c->reg_next->reg_prev = c->reg_prev;
    c->reg_prev = c->reg_next = NULL;
    pthread_mutex_unlock(&reg_lock);
}

int clients_set_name(struct conn *c, kvs_slice name)
{
    pthread_mutex_lock(&reg_lock);
    int rc = kvs_buf_set(&c->name, name.data, name.len);
    pthread_mutex_unlock(&reg_lock);
    return rc != 0 ? KVS_ENOMEM : 0;
}

bool clients_kill_requested(const struct conn *c)
{
    return atomic_load_explicit(&c->kill_req, memory_order_relaxed);
}

bool clients_paused(const struct command *cmd)
{
    int64_t until = atomic_load_explicit(&pause_until, memory_order_relaxed);
    if (until == 0)
        return false;
    if (now_ms() >= until) {
        atomic_compare_exchange_strong(&pause_until, &until, 0);
        return false;
    }
    if (!atomic_load_explicit(&pause_writes_only, memory_order_relaxed))
        return true;
    return (cmd->flags & CMD_WRITE) != 0;
}

/* One CLIENT LIST line of t, as Redis 7.0 writes it, seen from c. The
   registry's lock is held. */
static void client_line(struct conn *c, struct conn *t, kvs_buf *out)
{
    bool mine = t->w == c->w; /* its buffers may be read on this thread */
    int64_t now = now_ms();
    long long age = (now - t->created_ms) / 1000;
    long long idle = c->w->now - atomic_load_explicit(&t->last_active, memory_order_relaxed);
    int multi = atomic_load_explicit(&t->multi_count, memory_order_relaxed);
    char flags[8], *p = flags;
    if (atomic_load_explicit(&t->monitoring, memory_order_relaxed))
        *p++ = 'O';
    if (multi >= 0)
        *p++ = 'x';
    if (atomic_load_explicit(&t->watch.dirty, memory_order_relaxed))
        *p++ = 'd';
    if (atomic_load_explicit(&t->no_evict, memory_order_relaxed))
        *p++ = 'e';
    if (p == flags)
        *p++ = 'N';
    *p = '\0';
    const struct command *cmd = atomic_load_explicit(&t->last_cmd, memory_order_relaxed);
    const char *sub = atomic_load_explicit(&t->last_sub, memory_order_relaxed);
    size_t qbuf = mine ? t->in.len - t->in_off : 0;
    size_t qfree = mine ? t->in.cap - t->in.len : 0;
    size_t omem = mine ? t->out.len - t->out_sent : 0;
    char line[1024];
    int n = snprintf(line, sizeof(line),
                     "id=%llu addr=%s laddr=%s fd=%d name=%.*s age=%lld idle=%lld flags=%s db=0 "
                     "sub=0 psub=0 ssub=0 multi=%d qbuf=%zu qbuf-free=%zu argv-mem=0 multi-mem=0 "
                     "rbs=%zu rbp=0 obl=0 oll=0 omem=%zu tot-mem=%zu events=r cmd=%s%s%s "
                     "user=default redir=-1 resp=2\n",
                     (unsigned long long)t->id, t->addr, t->laddr, t->fd,
                     (int)(t->name.len > 256 ? 256 : t->name.len), (const char *)t->name.data, age,
                     idle < 0 ? 0 : idle, flags, multi, qbuf, qfree, mine ? t->in.cap : 0, omem,
                     mine ? t->in.cap + t->out.cap + sizeof(*t) : sizeof(*t),
                     cmd ? cmd->name : "NULL", sub ? "|" : "", sub ? sub : "");
    if (n > 0 && kvs_buf_reserve(out, out->len + (size_t)n + 1) == 0) {
        memcpy((char *)out->data + out->len, line, (size_t)n);
        out->len += (size_t)n;
    }
}

enum { TYPE_ANY = -1, TYPE_NORMAL, TYPE_REPLICA, TYPE_PUBSUB, TYPE_MASTER };

static int client_type(kvs_slice name)
{
    if (slice_is_cstr(name, "normal"))
        return TYPE_NORMAL;
    if (slice_is_cstr(name, "slave") || slice_is_cstr(name, "replica"))
        return TYPE_REPLICA;
    if (slice_is_cstr(name, "pubsub"))
        return TYPE_PUBSUB;
    if (slice_is_cstr(name, "master"))
        return TYPE_MASTER;
    return -2;
}

static void reply_unknown_type(struct conn *c, kvs_slice name)
{
    reply_errorf(c, "ERR Unknown client type '%.*s'", (int)(name.len > 128 ? 128 : name.len),
                 (const char *)name.data);
}

/* CLIENT LIST [TYPE normal|master|replica|pubsub] [ID id [id ...]] */
void client_list(struct conn *c, size_t argc, const kvs_slice *argv)
{
    int type = TYPE_ANY;
    size_t ids_from = 0;
    if (argc == 4 && slice_is_cstr(argv[2], "type")) {
        type = client_type(argv[3]);
        if (type < -1) {
            reply_unknown_type(c, argv[3]);
            return;
        }
    } else if (argc >= 4 && slice_is_cstr(argv[2], "id")) {
        for (size_t i = 3; i < argc; i++) {
            long long id;
            if (slice_to_ll(argv[i], &id) != 0 || id <= 0) {
                reply_error(c, "ERR Invalid client ID");
                return;
            }
        }
        ids_from = 3;
    } else if (argc != 2) {
        reply_error(c, "ERR syntax error");
        return;
    }
    kvs_buf text = {0};
    pthread_mutex_lock(&reg_lock);
    for (struct conn *t = reg_head; t; t = t->reg_next) {
        if (type > TYPE_NORMAL)
            continue; /* kvs has no replicas or subscribers as clients here */
        if (ids_from) {
            bool hit = false;
            for (size_t i = ids_from; i < argc && !hit; i++) {
                long long id;
                hit = slice_to_ll(argv[i], &id) == 0 && (uint64_t)id == t->id;
            }
            if (!hit)
                continue;
        }
        client_line(c, t, &text);
    }
    pthread_mutex_unlock(&reg_lock);
    reply_bulk(c, text.data, text.len);
    kvs_buf_free(&text);
}

/* CLIENT INFO */
void client_info(struct conn *c, size_t argc, const kvs_slice *argv)
{
    (void)argc;
    (void)argv;
    kvs_buf text = {0};
    pthread_mutex_lock(&reg_lock);
    client_line(c, c, &text);
    pthread_mutex_unlock(&reg_lock);
    reply_bulk(c, text.data, text.len);
    kvs_buf_free(&text);
}

static bool slice_eq_str(kvs_slice s, const char *str)
{
    return s.len == strlen(str) && memcmp(s.data, str, s.len) == 0;
}

/* CLIENT KILL addr:port, or CLIENT KILL [ID id] [TYPE type] [USER name]
   [ADDR addr:port] [LADDR addr:port] [SKIPME yes|no]: the old form
   answers OK or "No such client", the new one the number killed. */
void client_kill(struct conn *c, size_t argc, const kvs_slice *argv)
{
    long long id = 0;
    int type = TYPE_ANY;
    const kvs_slice *addr = NULL, *laddr = NULL;
    bool skipme = true;
    if (argc == 3) {
        addr = &argv[2];
        skipme = false;
    } else {
        for (size_t i = 2; i < argc; i += 2) {
            bool more = i + 1 < argc;
            if (slice_is_cstr(argv[i], "id") && more) {
                if (slice_to_ll(argv[i + 1], &id) != 0 || id < 1) {
                    reply_error(c, "ERR client-id should be greater than 0");
                    return;
                }
            } else if (slice_is_cstr(argv[i], "type") && more) {
                type = client_type(argv[i + 1]);
                if (type < -1) {
                    reply_unknown_type(c, argv[i + 1]);
                    return;
                }
            } else if (slice_is_cstr(argv[i], "addr") && more) {
                addr = &argv[i + 1];
            } else if (slice_is_cstr(argv[i], "laddr") && more) {
                laddr = &argv[i + 1];
            } else if (slice_is_cstr(argv[i], "user") && more) {
                if (!slice_is(argv[i + 1], "default")) {
                    reply_errorf(c, "ERR No such user '%.*s'",
                                 (int)(argv[i + 1].len > 128 ? 128 : argv[i + 1].len),
                                 (const char *)argv[i + 1].data);
                    return;
                }
            } else if (slice_is_cstr(argv[i], "skipme") && more) {
                if (slice_is_cstr(argv[i + 1], "yes")) {
                    skipme = true;
                } else if (slice_is_cstr(argv[i + 1], "no")) {
                    skipme = false;
                } else {
                    reply_error(c, "ERR syntax error");
                    return;
                }
            } else {
                reply_error(c, "ERR syntax error");
                return;
            }
        }
    }
    long long killed = 0;
    bool self = false;
    pthread_mutex_lock(&reg_lock);
    for (struct conn *t = reg_head; t; t = t->reg_next) {
        if ((id && t->id != (uint64_t)id) || type > TYPE_NORMAL ||
            (addr && !slice_eq_str(*addr, t->addr)) || (laddr && !slice_eq_str(*laddr, t->laddr)))
            continue;
        if (t == c) {
            if (skipme)
                continue;
            self = true;
        } else {
            atomic_store_explicit(&t->kill_req, true, memory_order_relaxed);
            shutdown(t->fd, SHUT_RDWR); /* its worker sees the end and closes it */
        }
        killed++;
    }
    pthread_mutex_unlock(&reg_lock);
    if (argc == 3) {
        if (killed == 0)
            reply_error(c, "ERR No such client");
        else
            reply_ok(c);
    } else {
        reply_int(c, killed);
    }
    if (self)
        c->flags |= CONN_QUIT; /* after this reply, as Redis */
}

/* CLIENT REPLY ON|OFF|SKIP: OFF and SKIP are not answered. */
void client_reply(struct conn *c, size_t argc, const kvs_slice *argv)
{
    (void)argc;
    if (slice_is_cstr(argv[2], "on")) {
        c->reply_off = false;
        c->reply_skip = c->reply_skip_next = false;
        c->mute = false; /* this OK is sent */
        reply_ok(c);
    } else if (slice_is_cstr(argv[2], "off")) {
        c->reply_off = true;
    } else if (slice_is_cstr(argv[2], "skip")) {
        if (!c->reply_off)
            c->reply_skip_next = true;
    } else {
        reply_error(c, "ERR syntax error");
    }
}

/* CLIENT NO-EVICT ON|OFF: kvs evicts no client, so this only records it. */
void client_no_evict(struct conn *c, size_t argc, const kvs_slice *argv)
{
    (void)argc;
    if (slice_is_cstr(argv[2], "on") || slice_is_cstr(argv[2], "off")) {
        atomic_store_explicit(&c->no_evict, slice_is_cstr(argv[2], "on"), memory_order_relaxed);
        reply_ok(c);
    } else {
        reply_error(c, "ERR syntax error");
    }
}

/* CLIENT PAUSE timeout [WRITE|ALL]: every client's commands (or only
   writes) wait until the timeout passes or CLIENT UNPAUSE. */
void client_pause(struct conn *c, size_t argc, const kvs_slice *argv)
{
    long long ms;
    if (slice_to_ll(argv[2], &ms) != 0 || ms < 0) {
        reply_error(c, "ERR timeout is not an integer or out of range");
        return;
    }
    bool writes = false;
    if (argc == 4) {
        if (slice_is_cstr(argv[3], "write"))
            writes = true;
        else if (!slice_is_cstr(argv[3], "all")) {
            reply_error(c, "ERR syntax error");
            return;
        }
    } else if (argc > 4) {
        reply_error(c, "ERR syntax error");
        return;
    }
    int64_t until = now_ms() + ms;
    /* A longer pause or a wider one is kept, as Redis's. */
    int64_t cur = atomic_load(&pause_until);
    if (cur == 0 || until > cur || !writes)
        atomic_store(&pause_until, until > 0 ? until : 1);
    atomic_store(&pause_writes_only, writes && (cur == 0 || atomic_load(&pause_writes_only)));
    reply_ok(c);
}

void client_unpause(struct conn *c, size_t argc, const kvs_slice *argv)
{
    (void)argc;
    (void)argv;
    atomic_store(&pause_until, 0);
    reply_ok(c);
}

/* RESET: the connection as new: no MULTI, no WATCH, replies on, not
   monitoring, unauthenticated if a password is set. */
void cmd_reset(struct conn *c, size_t argc, const kvs_slice *argv)
{
    (void)argc;
    (void)argv;
    multi_reset(c);
    monitor_conn_free(c);
    c->reply_off = c->reply_skip = c->reply_skip_next = false;
    auth_conn_init(c);
    reply_simple(c, "RESET");
}
