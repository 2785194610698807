/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Replication's state and life: the role, the replication ids, what is
 * kept with the data, INFO's fields. See repl.h.
 *
 * Kept with the data, in the data directory (dot files, which no engine
 * lists):
 *  - .kvs-repl: "replid offset" of the last state the data is known to
 *    hold at least; written (temporary file, fsync, rename, directory
 *    fsync) only after the data covering it was made durable: by a
 *    replica after each sync of its store (repl_replica.c), and by any
 *    server at a clean stop. A replica restarted on it asks for a partial
 *    resync from that offset; the data may hold more than the offset
 *    says, and the writes replayed over it (SET, DEL, PEXPIREAT with
 *    absolute times: the stream carries the effect of every write) leave
 *    it as the primary has it. A primary's offset says nothing after a
 *    crash (its own writes may be beyond it), so a server started as a
 *    primary removes the file, and one that crashed leaves none valid
 *    (the file is removed at startup as soon as the server may write).
 *  - .kvs-repl-loading: present while a full copy is being loaded over
 *    the store (repl_replica.c). Found at startup, it means the data is
 *    half of a copy: a replica serves nothing (-LOADING) until a full sync
 *    has loaded a whole one; a primary empties the store.
 */
#include "repl.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "log.h"
#include "repl_internal.h"
#include "server.h"
#include "worker.h"

#define META_FILE ".kvs-repl"
#define META_TMP ".kvs-repl.tmp"
#define LOADING_FILE ".kvs-repl-loading"

const char *repl_link_state_name(enum repl_link_state s)
{
    static const char *const names[] = {
        [LINK_NONE] = "none",           [LINK_CONNECTING] = "connecting",
        [LINK_HANDSHAKE] = "handshake", [LINK_FULL_SYNC] = "full_sync",
        [LINK_LOADING] = "loading",     [LINK_CATCHING_UP] = "catching_up",
        [LINK_STREAMING] = "streaming", [LINK_BROKEN] = "broken",
    };
    return s >= 0 && s <= LINK_BROKEN ? names[s] : "unknown";
}

const char *repl_pair_state_name(enum repl_pair_state s)
{
    static const char *const names[] = {
        [PAIR_NONE] = "none",
        [PAIR_COLD_START] = "cold_start",
        [PAIR_WARM_START] = "warm_start",
        [PAIR_BOOTSTRAP] = "bootstrap",
        [PAIR_SYNC] = "sync",
        [PAIR_SHUTTING_DOWN] = "shutting_down",
    };
    return s >= 0 && s <= PAIR_SHUTTING_DOWN ? names[s] : "unknown";
}

void repl_new_id(char out[REPL_ID_LEN + 1])
{
    unsigned char raw[REPL_ID_LEN / 2];
    size_t got = 0;
    while (got < sizeof(raw)) {
        ssize_t n = getrandom(raw + got, sizeof(raw) - got, 0);
        if (n <= 0) {
            /* No entropy source: the clock and the pid, mixed. */
            uint64_t x = (uint64_t)kvs_now_ms() * 0x9e3779b97f4a7c15ull ^ (uint64_t)getpid();
            for (; got < sizeof(raw); got++, x = x * 6364136223846793005ull + 1)
                raw[got] = (unsigned char)(x >> 33);
            break;
        }
        got += (size_t)n;
    }
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < sizeof(raw); i++) {
        out[2 * i] = hex[raw[i] >> 4];
        out[2 * i + 1] = hex[raw[i] & 15];
    }
    out[REPL_ID_LEN] = '\0';
}

uint64_t repl_offset(struct repl *r)
{
    return repl_stream_end(&r->stream);
}

/* ---- files kept with the data ---- */

static int dir_fd_of(struct repl *r)
{
    int fd = open(r->srv->cfg.data_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    return fd;
}

static int sync_dir(int dfd)
{
    return fsync(dfd) == 0 ? 0 : KVS_EIO;
}

int repl_meta_write(struct repl *r, const char *replid, uint64_t offset)
{
    char text[128];
    int len = snprintf(text, sizeof(text), "%s %" PRIu64 "\n", replid, offset);
    int dfd = dir_fd_of(r);
    if (dfd < 0)
        return KVS_EIO;
    int rc = KVS_EIO;
    int fd = openat(dfd, META_TMP, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd >= 0) {
        bool ok = write(fd, text, (size_t)len) == len && fsync(fd) == 0;
        close(fd);
        if (ok && renameat(dfd, META_TMP, dfd, META_FILE) == 0)
            rc = sync_dir(dfd);
    }
    close(dfd);
    if (rc != 0)
        log_warn("replication: cannot write %s/%s: %s", r->srv->cfg.data_dir, META_FILE,
                 strerror(errno));
    return rc;
}

int repl_meta_remove(struct repl *r)
{
    int dfd = dir_fd_of(r);
    if (dfd < 0)
        return KVS_EIO;
    int rc = 0;
    if (unlinkat(dfd, META_FILE, 0) == 0)
        rc = sync_dir(dfd);
    else if (errno != ENOENT)
        rc = KVS_EIO;
    close(dfd);
    return rc;
}

int repl_loading_mark(struct repl *r, bool on)
{
    int dfd = dir_fd_of(r);
    if (dfd < 0)
        return KVS_EIO;
    int rc = 0;
    if (on) {
        int fd = openat(dfd, LOADING_FILE, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0 || fsync(fd) != 0)
            rc = KVS_EIO;
        if (fd >= 0)
            close(fd);
    } else if (unlinkat(dfd, LOADING_FILE, 0) != 0 && errno != ENOENT) {
        rc = KVS_EIO;
    }
    if (rc == 0)
        rc = sync_dir(dfd);
    close(dfd);
    return rc;
}

/* Read .kvs-repl; true when it holds a valid id and offset. */
static bool meta_read(struct repl *r, char *replid, uint64_t *offset)
{
    int dfd = dir_fd_of(r);
    if (dfd < 0)
        return false;
    int fd = openat(dfd, META_FILE, O_RDONLY | O_CLOEXEC);
    close(dfd);
    if (fd < 0)
        return false;
    char text[128];
    ssize_t n = read(fd, text, sizeof(text) - 1);
    close(fd);
    if (n <= 0)
        return false;
    text[n] = '\0';
    char id[REPL_ID_LEN + 2];
    unsigned long long off;
    if (sscanf(text, "%41s %llu", id, &off) != 2 || strlen(id) != REPL_ID_LEN)
        return false;
    memcpy(replid, id, REPL_ID_LEN + 1);
    *offset = off;
    return true;
}

static bool loading_marked(struct repl *r)
{
    int dfd = dir_fd_of(r);
    if (dfd < 0)
        return false;
    bool marked = faccessat(dfd, LOADING_FILE, F_OK, 0) == 0;
    close(dfd);
    return marked;
}

/* ---- life ---- */

static void stream_wake(void *ctx)
{
    repl_wake_workers(ctx);
}

static void pair_start(struct repl *r, bool clean);

int repl_init(struct server *srv)
{
    struct repl *r = calloc(1, sizeof(*r));
    if (!r) {
        log_error("out of memory");
        return -1;
    }
    r->srv = srv;
    srv->repl = r;
    repl_stream_init(&r->stream, srv->cfg.repl_backlog_size, srv->cfg.replica_output_limit);
    r->stream.wake = stream_wake;
    r->stream.wake_ctx = r;
    pthread_mutex_init(&r->lock, NULL);
    pthread_cond_init(&r->wake, NULL);
    r->master_fd = -1;
    r->second_offset = -1;
    memset(r->replid2, '0', REPL_ID_LEN);
    repl_new_id(r->replid);
    atomic_init(&r->role, REPL_PRIMARY);
    atomic_init(&r->link_state, LINK_NONE);
    r->nworkers = srv->cfg.threads;
    r->workers = calloc(r->nworkers ? r->nworkers : 1, sizeof(*r->workers));
    if (!r->workers) {
        log_error("out of memory");
        return -1;
    }
    store_set_feed(&srv->store, &r->stream);

    char id[REPL_ID_LEN + 1];
    uint64_t offset = 0;
    bool meta = meta_read(r, id, &offset);
    r->half_loaded = loading_marked(r);
    if (srv->cfg.replicaof_host) {
        snprintf(r->master_host, sizeof(r->master_host), "%s", srv->cfg.replicaof_host);
        r->master_port = srv->cfg.replicaof_port;
        atomic_store(&r->role, REPL_REPLICA);
        atomic_store(&r->link_state, LINK_CONNECTING);
        if (r->half_loaded) {
            log_warn("replication: %s/%s found: the store holds part of a full copy; serving "
                     "nothing until a full sync loads a whole one",
                     srv->cfg.data_dir, LOADING_FILE);
            atomic_store(&r->loading, true);
        } else if (meta) {
            /* The data holds at least this offset of that history: a
               partial resync can go on from there. */
            memcpy(r->replid, id, sizeof(id));
            repl_stream_reset(&r->stream, offset);
            r->meta_valid = true;
            log_info("replication: the data holds replication id %s up to offset %" PRIu64, id,
                     offset);
        }
        return 0;
    }
    /* A primary: its own writes may go past any recorded offset. */
    if (meta && repl_meta_remove(r) != 0)
        log_warn("replication: cannot remove %s/%s", srv->cfg.data_dir, META_FILE);
    if (r->half_loaded) {
        log_warn("replication: %s/%s found: the store holds part of a full copy from a "
                 "primary; emptying it",
                 srv->cfg.data_dir, LOADING_FILE);
        int rc =
            store_write(&srv->store, STORE_CLEAR, (kvs_slice){NULL, 0}, (kvs_slice){NULL, 0}, 0);
        if (rc == 0)
            rc = kvs_db_save(srv->store.db);
        if (rc != 0 || repl_loading_mark(r, false) != 0) {
            log_error("replication: cannot empty the half-loaded store: %s", kvs_strerror(rc));
            return -1;
        }
        r->half_loaded = false;
    }
    if (srv->cfg.peer_host)
        pair_start(r, meta);
    return 0;
}

/* A primary with a peer (--peer), at its start: ask the peer what it
   holds, and copy the peer's data first (a replica of the peer until the
   copy is loaded, clients answered -LOADING meanwhile; repl_replica.c then
   makes it a primary again) when the peer holds keys and this store holds
   none, or holds what a volatile engine kept of a run that did not stop
   cleanly (clean: .kvs-repl was found, which only a clean stop leaves
   for a primary): a snapshot older than what the peer followed, whose
   writes since are on the peer (all those WAIT acknowledged), and which
   the peer would otherwise copy over its newer data. */
static void pair_start(struct repl *r, bool clean)
{
    struct server *srv = r->srv;
    const char *host = srv->cfg.peer_host;
    unsigned port = srv->cfg.peer_port;
    kvs_stats st = {0};
    int rc = kvs_db_stats(srv->store.db, &st);
    bool stale = !clean && (kvs_engine_traits(kvs_db_engine(srv->store.db)) & KVS_ENGINE_VOLATILE);
    long long peer_keys = -1;
    if (repl_peer_probe(r, host, port, &peer_keys) != 0) {
        atomic_store(&r->pair_start, PAIR_COLD_START);
        if (rc == 0 && (st.keys == 0 || stale))
            log_warn("replication: the peer %s:%u does not answer: serving %s (the peer, if "
                     "it comes back, copies it, unless it is empty)",
                     host, port, st.keys ? "the last snapshot" : "an empty store");
        else
            log_info("replication: pair: the peer %s:%u does not answer (cold start)", host, port);
        return;
    }
    atomic_store(&r->pair_start, PAIR_WARM_START);
    if (rc != 0 || (st.keys != 0 && !stale) || peer_keys <= 0) {
        log_info("replication: pair: the peer %s:%u answers (warm start; it holds %lld keys, "
                 "this store %llu)",
                 host, port, peer_keys, (unsigned long long)st.keys);
        return;
    }
    log_warn("replication: pair: this store holds %s and the peer %s:%u %lld keys: copying "
             "them before serving (bootstrap)",
             st.keys ? "a snapshot of a run that did not stop cleanly" : "nothing", host, port,
             peer_keys);
    snprintf(r->master_host, sizeof(r->master_host), "%s", host);
    r->master_port = port;
    atomic_store(&r->bootstrap, true);
    atomic_store(&r->loading, true); /* -LOADING until the copy is loaded */
    atomic_store(&r->role, REPL_REPLICA);
    atomic_store(&r->link_state, LINK_CONNECTING);
}

enum repl_pair_state repl_pair_state(struct repl *r)
{
    if (atomic_load(&r->shutting_down))
        return PAIR_SHUTTING_DOWN;
    if (atomic_load(&r->bootstrap))
        return PAIR_BOOTSTRAP;
    if (repl_is_replica(r)) {
        switch (atomic_load(&r->link_state)) {
        case LINK_STREAMING:
        case LINK_CATCHING_UP:
            return PAIR_SYNC;
        case LINK_FULL_SYNC:
        case LINK_LOADING:
            return PAIR_BOOTSTRAP;
        case LINK_HANDSHAKE:
            return PAIR_WARM_START;
        default:
            return PAIR_COLD_START;
        }
    }
    if (!r->srv->cfg.peer_host)
        return PAIR_NONE;
    bool online = false, syncing = false;
    pthread_mutex_lock(&r->lock);
    for (struct repl_link *l = r->links; l; l = l->reg_next) {
        if (atomic_load(&l->state) == RLINK_ONLINE)
            online = true;
        else
            syncing = true;
    }
    pthread_mutex_unlock(&r->lock);
    if (online)
        return PAIR_SYNC;
    if (syncing)
        return PAIR_BOOTSTRAP;
    if (!atomic_load(&r->pair_linked) && atomic_load(&r->pair_start) == PAIR_WARM_START)
        return PAIR_WARM_START;
    return PAIR_COLD_START;
}

int repl_start(struct server *srv)
{
    struct repl *r = srv->repl;
    if (!repl_is_replica(r))
        return 0;
    if (!atomic_load(&r->bootstrap))
        log_info("replication: replica of %s:%u", r->master_host, r->master_port);
    return repl_link_start(r);
}

void repl_stop(struct server *srv)
{
    struct repl *r = srv->repl;
    if (!r)
        return;
    if (r->srv->cfg.peer_host || repl_is_replica(r)) {
        atomic_store(&r->shutting_down, true);
        log_info("replication: pair: shutting_down");
    }
    repl_link_stop(r);
}

void repl_finish(struct server *srv, bool saved)
{
    struct repl *r = srv->repl;
    if (!r)
        return;
    /* The writers have stopped and the store is closed: its data is the
       stream's end exactly, if the store kept it. */
    /* A primary of a pair writes it without a backlog too: its next start
       reads it as "stopped cleanly" (pair_start). */
    bool exists = atomic_load(&r->stream.exists) || (srv->cfg.peer_host && !repl_is_replica(r));
    if (saved && exists && !r->half_loaded && !repl_is_loading(r))
        repl_meta_write(r, r->replid, repl_stream_end(&r->stream));
    repl_stream_destroy(&r->stream);
    pthread_mutex_destroy(&r->lock);
    pthread_cond_destroy(&r->wake);
    for (unsigned i = 0; i < r->nworkers; i++) {
        if (r->workers[i] && r->workers[i]->efd >= 0)
            close(r->workers[i]->efd);
        free(r->workers[i]);
    }
    free(r->workers);
    free(r);
    srv->repl = NULL;
}

void repl_become_primary(struct repl *r)
{
    pthread_mutex_lock(&r->lock);
    /* Redis's shiftReplicationId: the old history stays valid up to
       here, so that replicas of the old primary can go on partially. */
    memcpy(r->replid2, r->replid, sizeof(r->replid));
    r->second_offset = (int64_t)repl_stream_end(&r->stream) + 1;
    repl_new_id(r->replid);
    r->master_host[0] = '\0';
    atomic_store(&r->link_state, LINK_NONE);
    pthread_mutex_unlock(&r->lock);
    if (!atomic_load(&r->stream.exists))
        repl_stream_reset(&r->stream, 0);
    /* Writes from here on are this server's own: the recorded offset
       no longer bounds what the data holds. */
    repl_meta_remove(r);
    atomic_store(&r->role, REPL_PRIMARY);
    store_feed_switch(&r->srv->store, true);
    /* A bootstrap that never began loading kept -LOADING over a store
       that is whole (empty): serve it. One that began, like any load cut
       short, left a part of a copy: not served. */
    if (atomic_exchange(&r->bootstrap, false) && !r->half_loaded)
        atomic_store(&r->loading, false);
    if (repl_is_loading(r))
        log_warn("replication: promoted while the store held part of a full copy");
    log_info("replication: now a primary (replication id %s; the old one %s valid up to "
             "offset %lld)",
             r->replid, r->replid2, (long long)r->second_offset - 1);
}

int repl_set_primary(struct repl *r, const char *host, unsigned port, char *why)
{
    if (!host) {
        if (!repl_is_replica(r))
            return 0;
        repl_link_stop(r);
        repl_become_primary(r);
        return 0;
    }
    if (strlen(host) >= sizeof(r->master_host)) {
        snprintf(why, 128, "ERR host name too long");
        return -1;
    }
    repl_link_stop(r);
    bool was_primary = !repl_is_replica(r);
    if (was_primary) {
        /* No more writes of this server's own: the stream carries the new
           primary's from now on. */
        store_feed_switch(&r->srv->store, false);
        atomic_store(&r->role, REPL_REPLICA);
    }
    repl_drop_links(r);
    pthread_mutex_lock(&r->lock);
    snprintf(r->master_host, sizeof(r->master_host), "%s", host);
    r->master_port = port;
    atomic_store(&r->link_state, LINK_CONNECTING);
    pthread_mutex_unlock(&r->lock);
    log_info("replication: now a replica of %s:%u", host, port);
    return repl_link_start(r);
}

/* ---- INFO ---- */

int repl_addf(kvs_buf *t, const char *fmt, ...)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        size_t room = t->cap - t->len;
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(t->data ? (char *)t->data + t->len : NULL, room, fmt, ap);
        va_end(ap);
        if (n < 0)
            return KVS_ENOMEM;
        if ((size_t)n < room) {
            t->len += (size_t)n;
            return 0;
        }
        if (kvs_buf_reserve(t, t->len + (size_t)n + 256) != 0)
            return KVS_ENOMEM;
    }
    return KVS_ENOMEM;
}

int repl_info_stats(struct repl *r, kvs_buf *t)
{
    int rc = repl_addf(t, "sync_full:%llu\r\n", (unsigned long long)atomic_load(&r->sync_full));
    if (rc == 0)
        rc = repl_addf(t, "sync_partial_ok:%llu\r\n",
                       (unsigned long long)atomic_load(&r->sync_partial_ok));
    if (rc == 0)
        rc = repl_addf(t, "sync_partial_err:%llu\r\n",
                       (unsigned long long)atomic_load(&r->sync_partial_err));
    return rc;
}
