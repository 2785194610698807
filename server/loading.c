/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Opening the store, and the port while it opens; see loading.h. Main
 * thread, except the opening thread's body (open_thread) and the figures
 * it is watched by.
 *
 * A connection is read with MSG_PEEK and only the bytes of the commands
 * answered are taken out of the socket, so that a command still arriving
 * when the store is open stays whole in the socket for its worker.
 */
#include "loading.h"

#include <dirent.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "auth.h"
#include "log.h"
#include "proto/resp.h"

/* Bytes of a connection looked at per wake-up: a command longer than
   this is left to its worker. */
#define PEEK_MAX 16384

static const char loading_reply[] = "-LOADING Redis is loading the dataset in memory\r\n";
static const char noauth_reply[] = "-NOAUTH Authentication required.\r\n";
static const char wrongpass_reply[] =
    "-WRONGPASS invalid username-password pair or user is disabled.\r\n";
static const char nopass_reply[] =
    "-ERR AUTH <password> called without any password configured for the default user. Are "
    "you sure your configuration is correct?\r\n";
static const char maxclients_reply[] = "-ERR max number of clients reached\r\n";

struct lconn {
    struct loading *ld;
    int fd;
    struct event *ev;
    bool authed;
    struct lconn *next;
};

struct loading {
    struct server *srv;
    struct listener *l;
    struct event_base *base;
    const kvs_options *opts;
    struct event *accept_ev, *done_ev;
    int done_pipe[2];
    /* The opening thread's results, read after it is joined. */
    kvs_db *db;
    int rc;
    char why[KVS_WHY_MAX];
    /* What the store holds on disk before the open, and the opening
       thread's progress (its bytes read, its page faults), for INFO. */
    uint64_t files, total_bytes;
    int64_t start_ms;
    _Atomic pid_t tid;
    struct lconn *conns;
    unsigned nconns;
    bool listening;
};

static atomic_bool in_progress;
static atomic_bool stop_asked;

void loading_request_stop(void)
{
    atomic_store(&stop_asked, true);
}

bool loading_in_progress(void)
{
    return atomic_load(&in_progress);
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The regular files of dir and their bytes (not recursive). */
static void measure_dir(const char *dir, uint64_t *files, uint64_t *bytes)
{
    *files = *bytes = 0;
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        struct stat st;
        if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode)) {
            (*files)++;
            *bytes += (uint64_t)st.st_size;
        }
    }
    closedir(d);
}

/* What the opening thread has read so far, estimated from the kernel's
   counts for it: bytes read by read(2) and its kin, plus a page per page
   fault (the kvs engine maps its segments). Capped at the total. */
static uint64_t loaded_bytes(const struct loading *ld)
{
    pid_t tid = atomic_load(&ld->tid);
    if (!tid)
        return 0;
    char path[64];
    uint64_t got = 0;
    snprintf(path, sizeof(path), "/proc/self/task/%d/io", (int)tid);
    FILE *f = fopen(path, "r");
    if (f) {
        char line[128];
        unsigned long long v;
        while (fgets(line, sizeof(line), f)) {
            if (sscanf(line, "rchar: %llu", &v) == 1)
                got += v;
        }
        fclose(f);
    }
    snprintf(path, sizeof(path), "/proc/self/task/%d/stat", (int)tid);
    f = fopen(path, "r");
    if (f) {
        char text[1024];
        size_t n = fread(text, 1, sizeof(text) - 1, f);
        text[n] = '\0';
        fclose(f);
        /* Fields after the command's ")": state, ppid ... minflt (10th)
           and majflt (12th) of the whole line. */
        const char *p = strrchr(text, ')');
        unsigned long long minflt = 0, majflt = 0;
        if (p && sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %llu %*u %llu", &minflt, &majflt) == 2)
            got += (minflt + majflt) * (uint64_t)sysconf(_SC_PAGESIZE);
    }
    return got > ld->total_bytes ? ld->total_bytes : got;
}

static void *open_thread(void *arg)
{
    struct loading *ld = arg;
    atomic_store(&ld->tid, (pid_t)syscall(SYS_gettid));
    /* For tests of what the port answers meanwhile. */
    const char *delay = getenv("KVS_TEST_LOADING_DELAY_MS");
    if (delay) {
        struct timespec ts = {atoi(delay) / 1000, (long)(atoi(delay) % 1000) * 1000000};
        nanosleep(&ts, NULL);
    }
    ld->why[0] = '\0';
    ld->rc = kvs_db_open(ld->srv->cfg.data_dir, ld->opts, &ld->db, ld->why);
    char byte = 1;
    (void)!write(ld->done_pipe[1], &byte, 1);
    return NULL;
}

static void close_conn(struct loading *ld, struct lconn *c)
{
    for (struct lconn **p = &ld->conns; *p; p = &(*p)->next) {
        if (*p == c) {
            *p = c->next;
            break;
        }
    }
    if (c->ev)
        event_free(c->ev);
    close(c->fd);
    ld->nconns--;
    free(c);
}

/* INFO while loading: who answers, and the load's figures. */
static void info_text(struct loading *ld, char *out, size_t size)
{
    uint64_t loaded = loaded_bytes(ld);
    int64_t elapsed = mono_ms() - ld->start_ms;
    double perc = ld->total_bytes ? 100.0 * (double)loaded / (double)ld->total_bytes : 0;
    long long eta = loaded && ld->total_bytes > loaded
                        ? (long long)((double)(ld->total_bytes - loaded) * (double)elapsed /
                                      (double)loaded / 1000)
                        : 1;
    char host[KVS_ADDR_STRLEN];
    snprintf(host, sizeof(host), "%s", ld->srv->cfg.addr_text);
    char *colon = strrchr(host, ':');
    snprintf(out, size,
             "# Server\r\nredis_version:7.0.0\r\nkvs_version:%s\r\nredis_mode:standalone\r\n"
             "process_id:%d\r\ntcp_port:%s\r\nuptime_in_seconds:%lld\r\n\r\n"
             "# Persistence\r\nloading:1\r\nasync_loading:0\r\nloading_start_time:%lld\r\n"
             "loading_total_bytes:%" PRIu64 "\r\nloading_rdb_used_mem:0\r\n"
             "loading_loaded_bytes:%" PRIu64 "\r\nloading_loaded_perc:%.2f\r\n"
             "loading_eta_seconds:%lld\r\nloading_files:%" PRIu64 "\r\n",
             KVS_VERSION, (int)getpid(), colon ? colon + 1 : "", (long long)(elapsed / 1000),
             (long long)((wall_ms() - elapsed) / 1000), ld->total_bytes, loaded, perc, eta,
             ld->files);
}

static bool send_all(int fd, const char *buf, size_t len)
{
    while (len) {
        ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false; /* a full socket while loading: the client is gone or stuck */
        buf += n;
        len -= (size_t)n;
    }
    return true;
}

/* Answer one command; returns false to close the connection. */
static bool answer(struct lconn *c, size_t argc, const kvs_slice *argv)
{
    struct loading *ld = c->ld;
    const struct server_config *cfg = &ld->srv->cfg;
    if (argc == 0)
        return true;
    char name[8] = "";
    if (argv[0].len < sizeof(name)) {
        for (size_t i = 0; i < argv[0].len; i++) {
            char ch = ((const char *)argv[0].data)[i];
            name[i] = (char)(ch >= 'A' && ch <= 'Z' ? ch + 32 : ch);
        }
        name[argv[0].len] = '\0';
    }
    if (strcmp(name, "quit") == 0) {
        send_all(c->fd, "+OK\r\n", 5);
        return false;
    }
    if (strcmp(name, "auth") == 0 && (argc == 2 || argc == 3)) {
        if (!auth_required(cfg))
            return send_all(c->fd, nopass_reply, sizeof(nopass_reply) - 1);
        bool user_ok = argc == 2 || (argv[1].len == 7 && memcmp(argv[1].data, "default", 7) == 0);
        bool ok = auth_password_matches(cfg, argv[argc - 1]) && user_ok;
        c->authed |= ok;
        return ok ? send_all(c->fd, "+OK\r\n", 5)
                  : send_all(c->fd, wrongpass_reply, sizeof(wrongpass_reply) - 1);
    }
    if (strcmp(name, "info") == 0) {
        if (auth_required(cfg) && !c->authed)
            return send_all(c->fd, noauth_reply, sizeof(noauth_reply) - 1);
        char text[1536], head[32];
        info_text(ld, text, sizeof(text));
        int n = snprintf(head, sizeof(head), "$%zu\r\n", strlen(text));
        return send_all(c->fd, head, (size_t)n) && send_all(c->fd, text, strlen(text)) &&
               send_all(c->fd, "\r\n", 2);
    }
    /* LOADING before NOAUTH: a probe learns the server is loading
       whatever its credentials, and learns nothing else. */
    return send_all(c->fd, loading_reply, sizeof(loading_reply) - 1);
}

/* Answer the whole commands c has sent; returns false to close it. */
static bool serve_peeked(struct lconn *c, bool *progress)
{
    char buf[PEEK_MAX];
    *progress = false;
    ssize_t n = recv(c->fd, buf, sizeof(buf), MSG_PEEK);
    if (n < 0)
        return errno == EAGAIN || errno == EINTR;
    if (n == 0)
        return false;
    resp_parser p;
    if (resp_parser_init(&p, NULL) != 0)
        return true;
    size_t off = 0;
    bool keep = true;
    while (keep && off < (size_t)n) {
        size_t consumed = 0, need = 0;
        resp_parser_release(&p);
        int rc = resp_parse(&p, buf + off, (size_t)n - off, &consumed, &need);
        if (rc == RESP_ERROR) {
            char line[256];
            int len = snprintf(line, sizeof(line), "-%s\r\n", p.error);
            send_all(c->fd, line, (size_t)len);
            keep = false;
            break;
        }
        if (rc != RESP_DONE)
            break;
        keep = answer(c, p.argc, p.argv);
        off += consumed;
    }
    resp_parser_free(&p);
    /* Take what was answered out of the socket. */
    *progress = off > 0;
    while (off > 0) {
        ssize_t got = recv(c->fd, buf, off, 0);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            break;
        off -= (size_t)got;
    }
    return keep;
}

/* Edge-triggered: woken when bytes arrive. What is left unanswered (part
   of a command, or one larger than a peek) stays in the socket without
   waking the loop again, until more comes or the worker reads it. */
static void on_conn_read(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct lconn *c = arg;
    bool progress = true;
    while (progress) {
        if (!serve_peeked(c, &progress)) {
            close_conn(c->ld, c);
            return;
        }
    }
}

static void on_accept(evutil_socket_t lfd, short what, void *arg)
{
    (void)what;
    struct loading *ld = arg;
    struct server *srv = ld->srv;
    for (int i = 0; i < 64; i++) {
        struct sockaddr_storage peer;
        socklen_t len = sizeof(peer);
        int fd = accept4(lfd, (struct sockaddr *)&peer, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;
        if (auth_protected_refuses(srv->cfg.protected_mode, auth_required(&srv->cfg),
                                   (const struct sockaddr *)&peer)) {
            (void)!send(fd, auth_denied_reply, auth_denied_reply_len, MSG_NOSIGNAL | MSG_DONTWAIT);
            close(fd);
            continue;
        }
        struct lconn *c = calloc(1, sizeof(*c));
        if (!c || ld->nconns >= atomic_load(&srv->maxclients)) {
            (void)!send(fd, maxclients_reply, sizeof(maxclients_reply) - 1,
                        MSG_NOSIGNAL | MSG_DONTWAIT);
            close(fd);
            free(c);
            continue;
        }
        c->ld = ld;
        c->fd = fd;
        c->ev = event_new(ld->base, fd, EV_READ | EV_PERSIST | EV_ET, on_conn_read, c);
        if (!c->ev || event_add(c->ev, NULL) != 0) {
            if (c->ev)
                event_free(c->ev);
            close(fd);
            free(c);
            continue;
        }
        c->next = ld->conns;
        ld->conns = c;
        ld->nconns++;
    }
}

static void on_done(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    event_base_loopbreak(arg);
}

/* The port starts answering: the open is taking long. */
static void on_quiet_over(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct loading *ld = arg;
    if (listen(ld->l->fd, SOMAXCONN) != 0) {
        log_warn("cannot listen on %s while the store opens: %s", ld->srv->cfg.addr_text,
                 strerror(errno));
        return;
    }
    ld->accept_ev = event_new(ld->base, ld->l->fd, EV_READ | EV_PERSIST, on_accept, ld);
    if (ld->accept_ev)
        event_add(ld->accept_ev, NULL);
    ld->listening = true;
    log_info("opening the store in %s (%" PRIu64 " files, %" PRIu64
             " bytes); clients get -LOADING until it is open",
             ld->srv->cfg.data_dir, ld->files, ld->total_bytes);
}

int loading_open(struct server *srv, struct listener *l, struct event_base *base,
                 const kvs_options *opts, kvs_db **db, struct loading **out, bool *stop, char *why,
                 size_t size)
{
    *out = NULL;
    struct loading *ld = calloc(1, sizeof(*ld));
    if (!ld || pipe2(ld->done_pipe, O_CLOEXEC) != 0) {
        free(ld);
        snprintf(why, size, "out of memory");
        return KVS_ENOMEM;
    }
    ld->srv = srv;
    ld->l = l;
    ld->base = base;
    ld->opts = opts;
    measure_dir(srv->cfg.data_dir, &ld->files, &ld->total_bytes);
    ld->start_ms = mono_ms();
    ld->done_ev = event_new(base, ld->done_pipe[0], EV_READ, on_done, base);
    struct event *quiet = evtimer_new(base, on_quiet_over, ld);
    struct timeval tv = {LOADING_QUIET_MS / 1000, (LOADING_QUIET_MS % 1000) * 1000};
    pthread_t thread;
    int rc = KVS_ENOMEM;
    if (!ld->done_ev || !quiet || event_add(ld->done_ev, NULL) != 0 ||
        evtimer_add(quiet, &tv) != 0 || pthread_create(&thread, NULL, open_thread, ld) != 0) {
        snprintf(why, size, "cannot start the thread that opens the store");
        goto out;
    }
    atomic_store(&in_progress, true);
    event_base_dispatch(base);
    pthread_join(thread, NULL);
    atomic_store(&in_progress, false);
    *stop = atomic_load(&stop_asked);
    rc = ld->rc;
    if (rc != 0) {
        snprintf(why, size, "%s", ld->why[0] ? ld->why : kvs_strerror(rc));
        goto out;
    }
    *db = ld->db;
    kvs_stats st = {0};
    kvs_db_stats(ld->db, &st);
    if (ld->files) /* a new store has nothing to tell */
        log_info("loaded %" PRIu64 " keys from %" PRIu64 " files (%" PRIu64 " bytes) in %" PRId64
                 " ms",
                 st.keys, ld->files, ld->total_bytes, mono_ms() - ld->start_ms);
out:
    if (quiet)
        event_free(quiet);
    if (ld->accept_ev) {
        event_free(ld->accept_ev);
        ld->accept_ev = NULL;
    }
    if (ld->done_ev)
        event_free(ld->done_ev);
    ld->done_ev = NULL;
    close(ld->done_pipe[0]);
    close(ld->done_pipe[1]);
    if (rc != 0) {
        loading_handoff(ld, l, true);
        return rc;
    }
    *out = ld;
    return 0;
}

void loading_handoff(struct loading *ld, struct listener *l, bool close_them)
{
    if (!ld)
        return;
    while (ld->conns) {
        struct lconn *c = ld->conns;
        ld->conns = c->next;
        if (c->ev)
            event_free(c->ev);
        if (close_them) {
            close(c->fd);
        } else {
            struct sockaddr_storage peer;
            socklen_t len = sizeof(peer);
            if (getpeername(c->fd, (struct sockaddr *)&peer, &len) != 0) {
                close(c->fd);
            } else {
                if (c->authed)
                    auth_preauthorize(c->fd);
                listener_take(l, c->fd, (const struct sockaddr *)&peer, len);
            }
        }
        free(c);
    }
    if (ld->listening && !close_them)
        log_info("handed %u connections made while loading to the workers", ld->nconns);
    free(ld);
}
