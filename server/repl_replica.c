/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The replica's side: one thread that keeps the link to the primary.
 *
 * A session: connect; PING, AUTH (--masterauth), REPLCONF listening-port
 * and capa eof psync2, PSYNC with the replication id and offset the data
 * holds (or "? -1"); then either +CONTINUE, and the stream goes on from
 * the offset, or +FULLRESYNC and the RDB, which is received whole into a
 * file in the data directory before anything of the store is touched (a
 * link broken during the transfer leaves the old data in place), then
 * loaded over the store: the loading mark made durable first, the store
 * emptied, the keys written in batches, the store saved (kvs_db_save:
 * fsync, or a volatile engine's snapshot), the id and offset written, and
 * only then the mark removed. While that runs clients get -LOADING, so no
 * half-loaded copy is ever served; a crash in between leaves the mark,
 * and the restarted replica serves nothing until a full sync completes.
 *
 * The stream: commands are parsed and applied through the store's door
 * (repl_apply.h: consecutive plain writes as one batch); once applied, their bytes are
 * appended unchanged to this server's own stream, so that its offset is
 * the primary's and its own replicas, or a promotion, continue from it.
 * REPLCONF ACK <offset> goes back every second and on GETACK. Every
 * second, if the offset moved, the store is synced and the offset written
 * to .kvs-repl (repl.c), so that a restart continues partially; a thread
 * of its own does that, beside the applying (persister_main). The
 * replica never expires keys itself (its active expiry is off): the
 * primary's DELs remove them, and reads of a key whose time has passed
 * miss already, as in Redis.
 *
 * A broken link is retried after a pause that grows from 100 ms to 2 s.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "commands.h"
#include "log.h"
#include "rdb.h"
#include "repl_apply.h"
#include "repl_internal.h"
#include "server.h"

#define SYNC_FILE ".kvs-repl-sync.rdb"
#define CONNECT_TIMEOUT_MS 5000
#define HANDSHAKE_TIMEOUT_MS 10000
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 2000
/* Keys or bytes per batch of a load (the stream's: repl_apply.c).
   256 keys: the kvs engine prefetches the index lines of the first 256
   ops of a batch (engines/log/write.c), and the rest of a larger one
   went cold: with 4096, a replica applied a backlog of 3M SETs at 360k/s;
   with 256, at 610k/s, and a full sync of 1M keys loaded 15 to 40%
   faster. */
#define LOAD_BATCH_KEYS 256
#define LOAD_BATCH_BYTES (4u << 20)
#define READ_SIZE (256u << 10)

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool stopping(struct repl *r)
{
    pthread_mutex_lock(&r->lock);
    bool stop = r->thread_stop;
    pthread_mutex_unlock(&r->lock);
    return stop;
}

static void set_state(struct repl *r, enum repl_link_state st)
{
    int old = atomic_exchange(&r->link_state, st);
    if (old == (int)st)
        return;
    if (st == LINK_BROKEN)
        atomic_store(&r->link_down_since_ms, kvs_now_ms());
    if (st != LINK_CATCHING_UP && !(st == LINK_STREAMING && old == LINK_CATCHING_UP))
        log_info("replication: link to %s:%u: %s", r->master_host, r->master_port,
                 repl_link_state_name(st));
}

/* The link to the primary: its socket and what was read and not used. */
struct mlink {
    struct repl *r;
    int fd;
    char *buf;
    size_t start, len, cap;
};

/* Close m's connection (connect_to published it as r->master_fd, which
   REPLICAOF shuts down to interrupt the thread) and free its buffer. */
static void link_close(struct mlink *m)
{
    pthread_mutex_lock(&m->r->lock);
    m->r->master_fd = -1;
    pthread_mutex_unlock(&m->r->lock);
    close(m->fd);
    free(m->buf);
}

static int link_write(struct mlink *m, const void *data, size_t len)
{
    const char *p = data;
    while (len > 0) {
        struct pollfd pfd = {.fd = m->fd, .events = POLLOUT};
        int pr = poll(&pfd, 1, (int)m->r->srv->cfg.repl_timeout * 1000);
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr <= 0)
            return -1;
        ssize_t n = send(m->fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static int send_command(struct mlink *m, size_t argc, const char *const *args)
{
    kvs_slice argv[8];
    for (size_t i = 0; i < argc; i++)
        argv[i] = kvs_slice_str(args[i]);
    kvs_buf out = {0};
    int rc = resp_add_command(&out, argc, argv) == 0 ? link_write(m, out.data, out.len) : -1;
    kvs_buf_free(&out);
    return rc;
}

/* Read more into the buffer, waiting up to timeout_ms. Returns the bytes
   read, 0 on a timeout, -1 on EOF or an error. */
static ssize_t link_fill(struct mlink *m, int timeout_ms)
{
    if (m->start > 0 && m->start == m->len)
        m->start = m->len = 0;
    if (m->cap - m->len < READ_SIZE / 4) {
        if (m->start > 0) {
            memmove(m->buf, m->buf + m->start, m->len - m->start);
            m->len -= m->start;
            m->start = 0;
        }
        if (m->cap - m->len < READ_SIZE / 4) {
            size_t cap = m->cap ? m->cap * 2 : READ_SIZE;
            char *b = realloc(m->buf, cap);
            if (!b)
                return -1;
            m->buf = b;
            m->cap = cap;
        }
    }
    struct pollfd pfd = {.fd = m->fd, .events = POLLIN};
    int pr = poll(&pfd, 1, timeout_ms);
    if (pr < 0 && errno == EINTR)
        return 0;
    if (pr < 0)
        return -1;
    if (pr == 0)
        return 0;
    ssize_t n = recv(m->fd, m->buf + m->len, m->cap - m->len, 0);
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
        return 0;
    if (n <= 0)
        return -1;
    m->len += (size_t)n;
    atomic_store(&m->r->master_last_io_ms, kvs_now_ms());
    return n;
}

/* One line (without CRLF) into line, skipping the empty lines a primary
   sends to keep the link alive. Returns 0, or -1 on a timeout or error. */
static int read_line(struct mlink *m, char *line, size_t size, int timeout_ms)
{
    int64_t deadline = mono_ms() + timeout_ms;
    for (;;) {
        char *nl = m->len > m->start ? memchr(m->buf + m->start, '\n', m->len - m->start) : NULL;
        if (nl) {
            size_t len = (size_t)(nl - (m->buf + m->start));
            size_t keep = len && nl[-1] == '\r' ? len - 1 : len;
            const char *text = m->buf + m->start;
            m->start += len + 1;
            if (keep == 0)
                continue;
            if (keep >= size)
                keep = size - 1;
            memcpy(line, text, keep);
            line[keep] = '\0';
            return 0;
        }
        if (m->len - m->start > 64 * 1024)
            return -1;
        int64_t left = deadline - mono_ms();
        if (left <= 0 || stopping(m->r) || link_fill(m, left > 1000 ? 1000 : (int)left) < 0)
            return -1;
    }
}

static int connect_to(struct repl *r, const char *host, unsigned port)
{
    char service[16];
    snprintf(service, sizeof(service), "%u", port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res = NULL;
    if (getaddrinfo(host, service, &hints, &res) != 0)
        return -1;
    int fd = -1;
    for (struct addrinfo *a = res; a && fd < 0; a = a->ai_next) {
        fd = socket(a->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
            continue;
        if (connect(fd, a->ai_addr, a->ai_addrlen) != 0 && errno != EINPROGRESS) {
            close(fd);
            fd = -1;
            continue;
        }
        struct pollfd pfd = {.fd = fd, .events = POLLOUT};
        int err = 0;
        socklen_t len = sizeof(err);
        if (poll(&pfd, 1, CONNECT_TIMEOUT_MS) != 1 ||
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    if (fd >= 0) {
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        pthread_mutex_lock(&r->lock);
        r->master_fd = fd;
        pthread_mutex_unlock(&r->lock);
    }
    return fd;
}

int repl_peer_probe(struct repl *r, const char *host, unsigned port, long long *keys)
{
    *keys = -1;
    struct mlink m = {.r = r};
    m.fd = connect_to(r, host, port);
    if (m.fd < 0)
        return -1;
    char line[256];
    int rc = 0;
    const char *auth = r->srv->cfg.masterauth;
    if (auth && (send_command(&m, 2, (const char *[]){"AUTH", auth}) != 0 ||
                 read_line(&m, line, sizeof(line), 2000) != 0))
        rc = -1;
    if (rc == 0 && (send_command(&m, 1, (const char *[]){"DBSIZE"}) != 0 ||
                    read_line(&m, line, sizeof(line), 2000) != 0))
        rc = -1;
    if (rc == 0 && line[0] == ':')
        *keys = strtoll(line + 1, NULL, 10);
    link_close(&m);
    return rc;
}

/* ---- the full sync ---- */

static int data_dir_fd(struct repl *r)
{
    return open(r->srv->cfg.data_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

/* The received RDB is done with (loaded or refused). */
static void remove_sync_file(struct repl *r)
{
    int dfd = data_dir_fd(r);
    if (dfd >= 0) {
        unlinkat(dfd, SYNC_FILE, 0);
        close(dfd);
    }
}

/* Receive the RDB payload (after "$EOF:<mark>" or "$<len>") into the
   sync file. Returns its fd, positioned at 0, or -1. */
static int receive_rdb(struct mlink *m, const char *header)
{
    struct repl *r = m->r;
    bool eof_mark = strncmp(header, "$EOF:", 5) == 0;
    char mark[REPL_ID_LEN];
    long long total = -1;
    if (eof_mark) {
        if (strlen(header + 5) != REPL_ID_LEN)
            return -1;
        memcpy(mark, header + 5, REPL_ID_LEN);
    } else if (header[0] != '$' || (total = strtoll(header + 1, NULL, 10)) < 0) {
        return -1;
    }
    atomic_store(&r->sync_total_bytes, (uint64_t)total);
    atomic_store(&r->sync_read_bytes, 0);
    int dfd = data_dir_fd(r);
    if (dfd < 0)
        return -1;
    int fd = openat(dfd, SYNC_FILE, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    close(dfd);
    if (fd < 0)
        return -1;
    uint64_t got = 0;
    int timeout = (int)r->srv->cfg.repl_timeout * 1000;
    int64_t last_io = mono_ms();
    for (;;) {
        size_t avail = m->len - m->start;
        /* With a mark, the last REPL_ID_LEN bytes may be it: hold them. */
        size_t hold = eof_mark ? REPL_ID_LEN : 0;
        size_t take = avail > hold ? avail - hold : 0;
        if (!eof_mark && (long long)(got + take) > total)
            take = (size_t)(total - (long long)got);
        if (take > 0) {
            const char *p = m->buf + m->start;
            size_t left = take;
            while (left > 0) {
                ssize_t n = write(fd, p, left);
                if (n < 0 && errno == EINTR)
                    continue;
                if (n <= 0)
                    goto fail;
                p += n;
                left -= (size_t)n;
            }
            m->start += take;
            got += take;
            atomic_store(&r->sync_read_bytes, got);
        }
        if (!eof_mark && (long long)got == total)
            break;
        if (eof_mark && m->len - m->start == REPL_ID_LEN &&
            memcmp(m->buf + m->start, mark, REPL_ID_LEN) == 0) {
            m->start += REPL_ID_LEN;
            break;
        }
        if (stopping(r))
            goto fail;
        ssize_t n = link_fill(m, 1000);
        if (n < 0)
            goto fail;
        if (n > 0)
            last_io = mono_ms();
        else if (mono_ms() - last_io > timeout)
            goto fail;
    }
    if (lseek(fd, 0, SEEK_SET) != 0)
        goto fail;
    log_info("replication: received the RDB from %s:%u (%" PRIu64 " bytes)", r->master_host,
             r->master_port, got);
    return fd;
fail:
    close(fd);
    return -1;
}

struct loader {
    struct repl *r;
    struct mlink *m;
    kvs_op *ops;
    size_t n;
    kvs_buf data; /* the batch's keys and values, one after the other */
    size_t *lens; /* key length, value length, per op */
    uint64_t keys;
    int64_t last_newline;
};

static int load_flush(struct loader *ld)
{
    if (ld->n == 0)
        return 0;
    const char *p = ld->data.data;
    for (size_t i = 0; i < ld->n; i++) {
        ld->ops[i].key = (kvs_slice){p, ld->lens[2 * i]};
        p += ld->lens[2 * i];
        ld->ops[i].value = (kvs_slice){p, ld->lens[2 * i + 1]};
        p += ld->lens[2 * i + 1];
    }
    int rc = store_write_batch(&ld->r->srv->store, ld->ops, ld->n);
    ld->n = 0;
    ld->data.len = 0;
    /* A newline a second keeps the primary from timing the link out while
       a long load runs, as Redis's replicas do. */
    int64_t now = mono_ms();
    if (now - ld->last_newline >= 1000) {
        ld->last_newline = now;
        if (link_write(ld->m, "\n", 1) != 0)
            log_debug("replication: the link to the primary failed during the load");
    }
    return rc;
}

static int load_key(void *ctx, kvs_slice key, kvs_slice value, int64_t expire_at)
{
    struct loader *ld = ctx;
    const kvs_engine *engine = kvs_db_engine(ld->r->srv->store.db);
    if (key.len > kvs_engine_max_key(engine) || value.len > kvs_engine_max_value(engine)) {
        log_warn("replication: a key of %zu bytes with a value of %zu bytes is over engine "
                 "%s's limits; not loaded",
                 key.len, value.len, kvs_engine_name(engine));
        return 0;
    }
    if (kvs_buf_reserve(&ld->data, ld->data.len + key.len + value.len + 1) != 0)
        return KVS_ENOMEM;
    char *p = (char *)ld->data.data + ld->data.len;
    if (key.len)
        memcpy(p, key.data, key.len);
    if (value.len)
        memcpy(p + key.len, value.data, value.len);
    ld->data.len += key.len + value.len;
    ld->lens[2 * ld->n] = key.len;
    ld->lens[2 * ld->n + 1] = value.len;
    ld->ops[ld->n++] = (kvs_op){.type = KVS_OP_SET, .expire_at = expire_at};
    ld->keys++;
    if (ld->n == LOAD_BATCH_KEYS || ld->data.len >= LOAD_BATCH_BYTES)
        return load_flush(ld);
    return 0;
}

/* Load the RDB in fd over the store; see the top of the file. */
static int load_rdb(struct mlink *m, int fd, const char *replid, uint64_t offset)
{
    struct repl *r = m->r;
    struct store *st = &r->srv->store;
    int64_t start = mono_ms();
    atomic_store(&r->loading, true);
    r->half_loaded = true; /* until the whole copy is loaded and saved */
    int rc = repl_loading_mark(r, true);
    if (rc == 0)
        rc = store_write(st, STORE_CLEAR, (kvs_slice){NULL, 0}, (kvs_slice){NULL, 0}, 0);
    struct loader ld = {.r = r, .m = m, .last_newline = mono_ms()};
    ld.ops = malloc(LOAD_BATCH_KEYS * sizeof(*ld.ops));
    ld.lens = malloc(LOAD_BATCH_KEYS * 2 * sizeof(*ld.lens));
    if (rc == 0 && (!ld.ops || !ld.lens))
        rc = KVS_ENOMEM;
    char why[KVS_WHY_MAX];
    why[0] = '\0';
    if (rc == 0) {
        struct rdb_load_cb cb = {.key = load_key, .ctx = &ld};
        rc = rdb_load_fd(fd, &cb, why);
    }
    if (rc == 0)
        rc = load_flush(&ld);
    free(ld.ops);
    free(ld.lens);
    kvs_buf_free(&ld.data);
    /* Durable before it counts: the data, then the offset, then the mark. */
    if (rc == 0)
        rc = kvs_db_save(st->db);
    if (rc == 0) {
        pthread_mutex_lock(&r->lock);
        memcpy(r->replid, replid, REPL_ID_LEN + 1);
        memset(r->replid2, '0', REPL_ID_LEN);
        r->second_offset = -1;
        pthread_mutex_unlock(&r->lock);
        repl_stream_reset(&r->stream, offset);
        rc = repl_meta_write(r, replid, offset);
    }
    if (rc == 0)
        rc = repl_loading_mark(r, false);
    if (rc != 0) {
        log_error("replication: loading the RDB from %s:%u failed: %s%s%s; the store stays "
                  "unserved until a full sync succeeds",
                  r->master_host, r->master_port, kvs_strerror(rc), why[0] ? ": " : "", why);
        return rc;
    }
    r->half_loaded = false;
    /* A bootstrap's copy is served once this server is a primary again
       (repl_become_primary). */
    if (!atomic_load(&r->bootstrap))
        atomic_store(&r->loading, false);
    log_info("replication: loaded %" PRIu64 " keys in %lld ms; at offset %" PRIu64 " of %s",
             ld.keys, (long long)(mono_ms() - start), offset, replid);
    return 0;
}

/* Wait (up to 10 s) until this server's own replica links are gone: the
   stream they read is about to be replaced. */
static void drop_own_replicas(struct repl *r)
{
    repl_drop_links(r);
    for (int i = 0; i < 1000; i++) {
        pthread_mutex_lock(&r->lock);
        unsigned n = r->nlinks;
        pthread_mutex_unlock(&r->lock);
        if (n == 0)
            return;
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

static int stop_at_key(void *ctx, kvs_slice key, kvs_slice value, int64_t expire_at)
{
    (void)key;
    (void)value;
    (void)expire_at;
    *(bool *)ctx = true;
    return 1; /* stops the load: one key is enough */
}

/* Whether to refuse the copy in fd (the pair's rule, repl.h): it holds no
   key, this store holds some, and it comes from another history (a
   primary that restarted and lost its data). fd is left at its start. */
static bool refuse_empty_copy(struct repl *r, int fd, const char *replid)
{
    kvs_stats st = {0};
    if (kvs_db_stats(r->srv->store.db, &st) != 0 || st.keys == 0)
        return false;
    pthread_mutex_lock(&r->lock);
    bool same = strcmp(replid, r->replid) == 0;
    pthread_mutex_unlock(&r->lock);
    if (same)
        return false; /* the same history, emptied by its writes (FLUSHALL) */
    bool any = false;
    struct rdb_load_cb cb = {.key = stop_at_key, .ctx = &any};
    int rc = rdb_load_fd(fd, &cb, NULL);
    if (lseek(fd, 0, SEEK_SET) != 0 || any || rc != 0)
        return false; /* a key, or a bad file that the load will report */
    atomic_fetch_add(&r->empty_refused, 1);
    if (strcmp(r->refused_id, replid) != 0) {
        memcpy(r->refused_id, replid, REPL_ID_LEN + 1);
        log_error("replication: %s:%u sent an empty copy (replication id %s) while this store "
                  "holds %llu keys: refused, the data kept (a primary that lost its data; "
                  "promote this server, or REPLICAOF NO ONE and FLUSHALL here to take the "
                  "empty copy)",
                  r->master_host, r->master_port, replid, (unsigned long long)st.keys);
    }
    return true;
}

static int full_sync(struct mlink *m, const char *replid, uint64_t offset)
{
    struct repl *r = m->r;
    set_state(r, LINK_FULL_SYNC);
    char header[128];
    if (read_line(m, header, sizeof(header), (int)r->srv->cfg.repl_timeout * 1000) != 0)
        return -1;
    int fd = receive_rdb(m, header);
    if (fd < 0) {
        log_warn("replication: the transfer of the RDB from %s:%u failed; the data stays as it "
                 "was",
                 r->master_host, r->master_port);
        return -1;
    }
    if (refuse_empty_copy(r, fd, replid)) {
        close(fd);
        remove_sync_file(r);
        return -1;
    }
    set_state(r, LINK_LOADING);
    drop_own_replicas(r);
    int rc = load_rdb(m, fd, replid, offset);
    close(fd);
    remove_sync_file(r);
    return rc == 0 ? 0 : -1;
}

/* ---- the stream ---- */

struct applier {
    struct repl_applier *apply;
    struct repl *r;
    struct mlink *m;
};

static void send_ack(struct mlink *m)
{
    char line[96];
    char num[24];
    int nl = snprintf(num, sizeof(num), "%" PRIu64, repl_stream_end(&m->r->stream));
    int n =
        snprintf(line, sizeof(line), "*3\r\n$8\r\nREPLCONF\r\n$3\r\nACK\r\n$%d\r\n%s\r\n", nl, num);
    link_write(m, line, (size_t)n);
}

/* Apply the whole commands in m's buffer; append their bytes to the
   stream once applied. Returns 0 or -1 (the link must break). */
static int apply_buffer(struct applier *a, resp_parser *p)
{
    struct mlink *m = a->m;
    struct repl *r = a->r;
    size_t done = m->start; /* applied and appended up to here */
    size_t off = m->start;
    for (;;) {
        size_t used = 0;
        if (!repl_apply_pending(a->apply))
            resp_parser_release(p);
        int rc = resp_parse(p, m->buf + off, m->len - off, &used, NULL);
        if (rc == RESP_MORE)
            break;
        if (rc != RESP_DONE) {
            if (rc == RESP_FULL && repl_apply_flush(a->apply) == 0)
                continue;
            log_warn("replication: the primary's stream is not RESP (%s)",
                     p->error ? p->error : "inline words");
            return -1;
        }
        off += used;
        if (p->argc == 0)
            continue;
        bool getack =
            p->argc >= 2 && slice_is(p->argv[0], "replconf") && slice_is(p->argv[1], "getack");
        if (!getack && (rc = repl_apply(a->apply, p->argc, p->argv)) != 0) {
            if (rc != KVS_ENOTSUP)
                log_error("replication: applying the primary's stream failed: %s",
                          kvs_strerror(rc));
            return -1;
        }
        if (p->inline_cmd || getack) {
            if (repl_apply_flush(a->apply) != 0)
                return -1;
            repl_stream_append(&r->stream, m->buf + done, off - done);
            done = off;
            if (getack)
                send_ack(m);
        }
    }
    if (repl_apply_flush(a->apply) != 0)
        return -1;
    if (off > done)
        repl_stream_append(&r->stream, m->buf + done, off - done);
    m->start = off;
    return 0;
}

static void persist_offset(struct repl *r, uint64_t *persisted)
{
    uint64_t off = repl_stream_end(&r->stream);
    if (off == *persisted)
        return;
    kvs_db *db = r->srv->store.db;
    if (kvs_engine_traits(kvs_db_engine(db)) & KVS_ENGINE_VOLATILE)
        return; /* only a snapshot holds a volatile store: at the load and the stop */
    char id[REPL_ID_LEN + 1];
    pthread_mutex_lock(&r->lock);
    memcpy(id, r->replid, sizeof(id));
    pthread_mutex_unlock(&r->lock);
    /* What was applied up to off is in the kernel; the sync makes it
       durable, and only then does the offset say so. */
    if (kvs_db_sync(db) == 0 && repl_meta_write(r, id, off) == 0)
        *persisted = off;
}

/* The offset kept with the data is made durable once a second by a
   thread of its own while the stream is applied: an fsync of a store with
   a second of writes behind it can take 100 ms and more (160 ms seen under
   SET -P 16), and the stream's thread stalled for it once a second. The
   thread lives within one stream() call, so no full sync runs beside it,
   and the replication id does not change while it runs. */
struct persister {
    struct repl *r;
    pthread_t thread;
    pthread_mutex_t lock; /* protects stop and persisted */
    pthread_cond_t wake;  /* CLOCK_MONOTONIC */
    bool stop;
    uint64_t persisted;
};

static void *persister_main(void *arg)
{
    struct persister *ps = arg;
    pthread_mutex_lock(&ps->lock);
    while (!ps->stop) {
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_sec++;
        while (!ps->stop && pthread_cond_timedwait(&ps->wake, &ps->lock, &until) != ETIMEDOUT)
            ;
        if (ps->stop)
            break;
        uint64_t persisted = ps->persisted;
        pthread_mutex_unlock(&ps->lock);
        persist_offset(ps->r, &persisted);
        pthread_mutex_lock(&ps->lock);
        ps->persisted = persisted;
    }
    pthread_mutex_unlock(&ps->lock);
    return NULL;
}

/* Start the persister; false when it could not start (the stream's
   thread then persists itself). Not for a volatile engine. */
static bool persister_start(struct persister *ps, struct repl *r, uint64_t persisted)
{
    *ps = (struct persister){.r = r, .persisted = persisted};
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&ps->wake, &attr);
    pthread_condattr_destroy(&attr);
    pthread_mutex_init(&ps->lock, NULL);
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    int rc = pthread_create(&ps->thread, NULL, persister_main, ps);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        pthread_cond_destroy(&ps->wake);
        pthread_mutex_destroy(&ps->lock);
        return false;
    }
    pthread_setname_np(ps->thread, "kvs-repl-save");
    return true;
}

/* Stop it; returns the last offset it made durable. */
static uint64_t persister_stop(struct persister *ps)
{
    pthread_mutex_lock(&ps->lock);
    ps->stop = true;
    pthread_cond_signal(&ps->wake);
    pthread_mutex_unlock(&ps->lock);
    pthread_join(ps->thread, NULL);
    pthread_cond_destroy(&ps->wake);
    pthread_mutex_destroy(&ps->lock);
    return ps->persisted;
}

static int stream(struct mlink *m)
{
    struct repl *r = m->r;
    struct applier app = {.apply = repl_applier_new(&r->srv->store), .r = r, .m = m};
    struct applier *a = &app;
    resp_parser p;
    if (!a->apply || resp_parser_init(&p, NULL) != 0) {
        repl_applier_free(a->apply);
        return -1;
    }
    set_state(r, LINK_CATCHING_UP);
    int64_t last_ack = 0, last_persist = mono_ms(), last_io = mono_ms();
    uint64_t persisted = repl_stream_end(&r->stream);
    struct persister ps;
    bool volatile_db = kvs_engine_traits(kvs_db_engine(r->srv->store.db)) & KVS_ENGINE_VOLATILE;
    bool own_persister = !volatile_db && persister_start(&ps, r, persisted);
    int rc = 0;
    bool first = true;
    while (!stopping(r)) {
        if (m->len > m->start || first) {
            first = false;
            if (apply_buffer(a, &p) != 0) {
                rc = -1;
                break;
            }
        }
        int64_t now = mono_ms();
        if (now - last_ack >= 1000) {
            send_ack(m);
            last_ack = now;
        }
        if (!own_persister && now - last_persist >= 1000) {
            persist_offset(r, &persisted);
            last_persist = now;
        }
        ssize_t n = link_fill(m, 100);
        if (n < 0) {
            log_warn("replication: the link to %s:%u closed", r->master_host, r->master_port);
            rc = -1;
            break;
        }
        if (n > 0) {
            last_io = mono_ms();
            set_state(r, (size_t)n >= READ_SIZE / 4 ? LINK_CATCHING_UP : LINK_STREAMING);
        } else if (mono_ms() - last_io > (int64_t)r->srv->cfg.repl_timeout * 1000) {
            log_warn("replication: nothing from %s:%u for %u s (--repl-timeout)", r->master_host,
                     r->master_port, r->srv->cfg.repl_timeout);
            rc = -1;
            break;
        } else {
            set_state(r, LINK_STREAMING);
        }
    }
    if (own_persister)
        persisted = persister_stop(&ps);
    persist_offset(r, &persisted);
    resp_parser_free(&p);
    repl_applier_free(a->apply);
    return rc;
}

/* ---- a session ---- */

static bool reply_ok(const char *line)
{
    return line[0] == '+';
}

static int session(struct repl *r)
{
    char host[256];
    pthread_mutex_lock(&r->lock);
    snprintf(host, sizeof(host), "%s", r->master_host);
    unsigned port = r->master_port;
    pthread_mutex_unlock(&r->lock);
    set_state(r, LINK_CONNECTING);
    struct mlink m = {.r = r};
    m.fd = connect_to(r, host, port);
    if (m.fd < 0) {
        log_warn("replication: cannot connect to %s:%u", host, port);
        return -1;
    }
    set_state(r, LINK_HANDSHAKE);
    char line[256];
    int rc = -1;
    const struct server_config *cfg = &r->srv->cfg;
    if (send_command(&m, 1, (const char *[]){"PING"}) != 0 ||
        read_line(&m, line, sizeof(line), HANDSHAKE_TIMEOUT_MS) != 0)
        goto out;
    if (line[0] == '-' && strncmp(line, "-NOAUTH", 7) != 0 && strncmp(line, "-NOPERM", 7) != 0 &&
        strncmp(line, "-ERR operation not permitted", 28) != 0) {
        log_warn("replication: %s:%u answered PING with %s", host, port, line);
        goto out;
    }
    if (cfg->masterauth) {
        if (send_command(&m, 2, (const char *[]){"AUTH", cfg->masterauth}) != 0 ||
            read_line(&m, line, sizeof(line), HANDSHAKE_TIMEOUT_MS) != 0)
            goto out;
        if (!reply_ok(line)) {
            log_warn("replication: %s:%u refused --masterauth: %s", host, port, line);
            goto out;
        }
    }
    char myport[16];
    const struct sockaddr *sa = (const struct sockaddr *)&cfg->addr;
    snprintf(myport, sizeof(myport), "%u",
             ntohs(sa->sa_family == AF_INET6 ? ((const struct sockaddr_in6 *)sa)->sin6_port
                                             : ((const struct sockaddr_in *)sa)->sin_port));
    if (send_command(&m, 3, (const char *[]){"REPLCONF", "listening-port", myport}) != 0 ||
        read_line(&m, line, sizeof(line), HANDSHAKE_TIMEOUT_MS) != 0)
        goto out;
    if (send_command(&m, 5, (const char *[]){"REPLCONF", "capa", "eof", "capa", "psync2"}) != 0 ||
        read_line(&m, line, sizeof(line), HANDSHAKE_TIMEOUT_MS) != 0)
        goto out;
    bool bootstrap = atomic_load(&r->bootstrap);
    if (bootstrap &&
        (send_command(&m, 3, (const char *[]){"REPLCONF", "kvs-bootstrap", "1"}) != 0 ||
         read_line(&m, line, sizeof(line), HANDSHAKE_TIMEOUT_MS) != 0))
        goto out;
    char id[REPL_ID_LEN + 1], off[24];
    pthread_mutex_lock(&r->lock);
    bool known = atomic_load(&r->stream.exists) && !repl_is_loading(r);
    memcpy(id, r->replid, sizeof(id));
    pthread_mutex_unlock(&r->lock);
    if (known)
        snprintf(off, sizeof(off), "%" PRIu64, repl_stream_end(&r->stream) + 1);
    if (send_command(&m, 3, (const char *[]){"PSYNC", known ? id : "?", known ? off : "-1"}) != 0 ||
        read_line(&m, line, sizeof(line), (int)cfg->repl_timeout * 1000) != 0)
        goto out;
    if (strncmp(line, "+FULLRESYNC ", 12) == 0) {
        char newid[REPL_ID_LEN + 2];
        unsigned long long offset;
        if (sscanf(line + 12, "%41s %llu", newid, &offset) != 2 || strlen(newid) != REPL_ID_LEN) {
            log_warn("replication: bad reply to PSYNC: %s", line);
            goto out;
        }
        log_info("replication: full resync from %s:%u: %s at offset %llu", host, port, newid,
                 offset);
        if (full_sync(&m, newid, offset) != 0)
            goto out;
        if (bootstrap) {
            /* The peer's data is here: serve it as the primary, and let
               the peer follow from where its data ends. */
            log_info("replication: pair: copied the data of %s:%u", host, port);
            repl_become_primary(r);
            rc = 1;
            goto out;
        }
    } else if (bootstrap) {
        log_warn("replication: %s:%u answered PSYNC with %s during a bootstrap", host, port, line);
        goto out;
    } else if (strncmp(line, "+CONTINUE", 9) == 0) {
        char newid[REPL_ID_LEN + 2] = "";
        if (sscanf(line + 9, " %41s", newid) == 1 && strlen(newid) == REPL_ID_LEN) {
            pthread_mutex_lock(&r->lock);
            if (strcmp(newid, r->replid) != 0) {
                memcpy(r->replid2, r->replid, sizeof(r->replid));
                r->second_offset = (int64_t)repl_stream_end(&r->stream) + 1;
                memcpy(r->replid, newid, sizeof(r->replid));
            }
            pthread_mutex_unlock(&r->lock);
        }
        log_info("replication: partial resync from %s:%u at offset %s", host, port, off);
    } else {
        log_warn("replication: %s:%u answered PSYNC with %s", host, port, line);
        goto out;
    }
    rc = stream(&m);
out:
    link_close(&m);
    return rc;
}

/* Sleep up to ms, or until stopped. */
static void pause_ms(struct repl *r, int ms)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += ms / 1000;
    until.tv_nsec += (long)(ms % 1000) * 1000000;
    if (until.tv_nsec >= 1000000000) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000;
    }
    pthread_mutex_lock(&r->lock);
    while (!r->thread_stop && pthread_cond_timedwait(&r->wake, &r->lock, &until) != ETIMEDOUT)
        ;
    pthread_mutex_unlock(&r->lock);
}

static void *link_main(void *arg)
{
    struct repl *r = arg;
    int backoff = 0;
    while (!stopping(r)) {
        if (backoff)
            pause_ms(r, backoff);
        if (stopping(r))
            break;
        int64_t start = mono_ms();
        if (session(r) == 1)
            break; /* a bootstrap done: this server is a primary now */
        if (stopping(r))
            break;
        set_state(r, LINK_BROKEN);
        /* A session that streamed for a while starts the pauses afresh. */
        if (mono_ms() - start > 10000)
            backoff = 0;
        backoff = backoff ? (backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2)
                          : BACKOFF_MIN_MS;
    }
    return NULL;
}

int repl_link_start(struct repl *r)
{
    pthread_mutex_lock(&r->lock);
    if (r->thread_running) {
        pthread_mutex_unlock(&r->lock);
        return 0;
    }
    r->thread_stop = false;
    atomic_store(&r->link_down_since_ms, kvs_now_ms());
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    int rc = pthread_create(&r->thread, NULL, link_main, r);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    r->thread_running = rc == 0;
    pthread_mutex_unlock(&r->lock);
    if (rc != 0) {
        log_error("replication: cannot start the link thread: %s", strerror(rc));
        return -1;
    }
    pthread_setname_np(r->thread, "kvs-replica");
    return 0;
}

void repl_link_stop(struct repl *r)
{
    pthread_mutex_lock(&r->lock);
    if (!r->thread_running) {
        pthread_mutex_unlock(&r->lock);
        return;
    }
    r->thread_stop = true;
    if (r->master_fd >= 0)
        shutdown(r->master_fd, SHUT_RDWR);
    pthread_cond_broadcast(&r->wake);
    pthread_mutex_unlock(&r->lock);
    pthread_join(r->thread, NULL);
    pthread_mutex_lock(&r->lock);
    r->thread_running = false;
    pthread_mutex_unlock(&r->lock);
}
