/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Replication, over Redis's own protocol (PSYNC): a kvs-server is a
 * primary that replicas (kvs or redis-server) follow, or a replica of a
 * primary (--replicaof, REPLICAOF). docs/replication.md says what is
 * promised.
 *
 * The parts:
 *  - repl_stream.[ch]: the stream of writes and the backlog, fed by the
 *    store's door (store.c), the one place every write passes;
 *  - repl_primary.c: PSYNC/SYNC/REPLCONF, the replica links (each owned by
 *    the worker whose connection asked, fed from the stream by its event
 *    loop), full syncs (a thread per sync writes an RDB while iterating
 *    the engine, writers running), WAIT;
 *  - repl_replica.c: the replica's link to its primary (one thread):
 *    handshake, full sync (the RDB to a file, then loaded under a guard),
 *    the command stream applied through the store's door, ACKs;
 *  - repl.c: the role, the replication ids, the state kept with the data
 *    (.kvs-repl in the data directory), INFO's fields;
 *  - cmd_repl.c: REPLICAOF/SLAVEOF, ROLE, WAIT and friends.
 *
 * Threads: the role and ids change under repl->lock; the hot paths read
 * atomics. Functions say which thread may call them.
 */
#ifndef KVS_SERVER_REPL_H
#define KVS_SERVER_REPL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "kvs/kvs.h"
#include "repl_stream.h"

struct server;
struct worker;
struct conn;
struct repl_link;
struct repl_worker;

#define REPL_ID_LEN 40

enum repl_role {
    REPL_PRIMARY,
    REPL_REPLICA,
};

/* The replica's link to its primary, as INFO and the log name it. */
enum repl_link_state {
    LINK_NONE,        /* not a replica */
    LINK_CONNECTING,  /* connecting, or waiting to try again */
    LINK_HANDSHAKE,   /* PING, AUTH, REPLCONF, PSYNC */
    LINK_FULL_SYNC,   /* receiving the RDB */
    LINK_LOADING,     /* loading it */
    LINK_CATCHING_UP, /* applying the stream, more already waiting */
    LINK_STREAMING,   /* applying the stream as it comes */
    LINK_BROKEN,      /* the link failed; trying again after a pause */
};

const char *repl_link_state_name(enum repl_link_state s);

/* The states of a primary/backup pair, as INFO's kvs_pair_state. A
   primary started with --peer (its backup) has a pair, and so has every
   replica (its primary is its peer). A primary that finds its own store
   empty at its start while its peer holds keys (a mem primary restarted
   without a snapshot) first copies the peer's data (a full sync from the
   peer, which serves it although its own link is down), answering
   clients -LOADING meanwhile, then becomes a primary again; the peer
   then continues partially from it. A replica never replaces the keys it
   holds with an empty copy from a primary of another history (one that
   restarted and lost its data): it refuses the copy and keeps its data. */
enum repl_pair_state {
    PAIR_NONE,          /* no pair: a primary without --peer */
    PAIR_COLD_START,    /* the peer does not answer (or follows nothing yet) */
    PAIR_WARM_START,    /* the peer answered; nothing streams yet */
    PAIR_BOOTSTRAP,     /* one side copies its data to the other */
    PAIR_SYNC,          /* the stream flows */
    PAIR_SHUTTING_DOWN, /* this server stops */
};

const char *repl_pair_state_name(enum repl_pair_state s);

struct repl {
    struct server *srv;
    struct repl_stream stream;

    /* Protects what follows up to the figures, except the atomics. */
    pthread_mutex_t lock;
    _Atomic int role;    /* enum repl_role */
    atomic_bool loading; /* a full copy is being loaded: -LOADING */
    char replid[REPL_ID_LEN + 1];
    char replid2[REPL_ID_LEN + 1];
    int64_t second_offset; /* -1: replid2 is not valid */
    /* The primary this server follows (role REPL_REPLICA). */
    char master_host[256];
    unsigned master_port;
    /* The replica's link thread. */
    pthread_t thread;
    bool thread_running;
    bool thread_stop;
    pthread_cond_t wake; /* the link thread's pauses end on it */
    int master_fd;       /* shut down to stop the thread, -1 none */
    _Atomic int link_state;
    _Atomic int64_t master_last_io_ms;
    _Atomic uint64_t sync_total_bytes, sync_read_bytes;
    _Atomic int64_t link_down_since_ms;
    bool half_loaded; /* .kvs-repl-loading was found: the data is not whole */
    bool meta_valid;  /* replid and stream end came from .kvs-repl */
    /* The replica links (repl_primary.c), for INFO, WAIT and role changes. */
    struct repl_link *links;
    unsigned nlinks;
    _Atomic uint64_t drop_gen;    /* links older than this close (role change) */
    struct repl_worker **workers; /* one per worker, index as the worker's */
    unsigned nworkers;

    /* Figures for INFO stats. */
    _Atomic uint64_t sync_full, sync_partial_ok, sync_partial_err;

    /* The pair (see enum repl_pair_state): what the start found, whether
       a replica link ever came, whether this server is copying its
       peer's data before it serves, whether it stops; the empty copies
       refused (the link thread's, with the id it last refused). */
    _Atomic int pair_start; /* PAIR_COLD_START, PAIR_WARM_START or PAIR_NONE */
    atomic_bool pair_linked;
    atomic_bool bootstrap;
    atomic_bool shutting_down;
    _Atomic uint64_t empty_refused;
    char refused_id[REPL_ID_LEN + 1];
};

/* ---- the server's life (main thread) ---- */

/* After the store is open, before the workers start: the state kept with
   the data, the stream attached to the store. Returns 0 or -1 (logged). */
int repl_init(struct server *srv);

/* After the workers started: the link to --replicaof's primary. */
int repl_start(struct server *srv);

/* Before the store closes: stop the replica's link (its offset is then
   final). */
void repl_stop(struct server *srv);

/* After the store closed: keep the replication id and offset with the
   data if the data holds them (saved is false when a volatile engine
   closed without its snapshot). Then free everything. */
void repl_finish(struct server *srv, bool saved);

/* ---- what the rest of the server asks ---- */

static inline bool repl_is_replica(struct repl *r)
{
    return r && atomic_load_explicit(&r->role, memory_order_relaxed) == REPL_REPLICA;
}

static inline bool repl_is_loading(struct repl *r)
{
    return r && atomic_load_explicit(&r->loading, memory_order_relaxed);
}

/* Why a command may not run now, or 0: REPL_REFUSE_LOADING while a full
   copy loads (for commands not allowed then: loading_ok false), and
   REPL_REFUSE_READONLY for a write on a replica. Positive, so that a
   batch can carry it as a refusal (worker_batch_add). */
#define REPL_REFUSE_READONLY 1
#define REPL_REFUSE_LOADING 2
static inline int repl_refusal_of(struct repl *r, bool write, bool loading_ok)
{
    if (!r)
        return 0;
    if (!loading_ok && repl_is_loading(r))
        return REPL_REFUSE_LOADING;
    if (write && repl_is_replica(r))
        return REPL_REFUSE_READONLY;
    return 0;
}

/* The replication offset: the stream's end (0 before any backlog). */
uint64_t repl_offset(struct repl *r);

/* INFO's "# Replication" lines and the stats lines (sync_full...),
   appended to text. Any worker. Returns 0 or KVS_ENOMEM. */
int repl_info_replication(struct repl *r, kvs_buf *text);
int repl_info_stats(struct repl *r, kvs_buf *text);

/* Become a replica of host:port, or (host NULL) a primary. Any thread
   but the link's. Returns 0 or -1 with why (128 bytes). */
int repl_set_primary(struct repl *r, const char *host, unsigned port, char *why);

/* The pair's state now. Any thread. */
enum repl_pair_state repl_pair_state(struct repl *r);

/* ---- the workers' side (repl_primary.c) ---- */

/* Set up and free a worker's replication state. Main thread, in
   worker_init() and worker_destroy(). */
int repl_worker_init(struct worker *w);
void repl_worker_free(struct worker *w);

/* The worker stops: answer its WAITs. Worker thread. */
void repl_worker_stop(struct worker *w);

/* WAIT numreplicas timeout: the reply now, or c blocked until enough
   replicas acknowledged or the timeout passed. Worker thread. */
void repl_wait(struct conn *c, long long numreplicas, long long timeout_ms);

/* c, blocked in WAIT, is closing: its wait goes. Worker thread of c. */
void repl_wait_forget(struct conn *c);

/* PSYNC/SYNC: the connection becomes a replica link. REPLCONF's options
   before it. Worker thread. */
void repl_psync(struct conn *c, const char *replid, long long offset, bool psync);
void repl_replconf(struct conn *c, size_t argc, const kvs_slice *argv);

/* The replicas online and their acknowledged offsets, for ROLE: calls fn
   for each. Any thread. */
void repl_each_replica(struct repl *r,
                       void (*fn)(void *ctx, const char *ip, unsigned port, uint64_t ack),
                       void *ctx);

/* Close every replica link (a change of role). Any thread. */
void repl_drop_links(struct repl *r);

/* Wake every worker's replication events (new bytes, new ACKs). Any
   thread. */
void repl_wake_workers(struct repl *r);

/* Clients blocked in WAIT now (INFO's blocked_clients). Any thread. */
unsigned repl_blocked_clients(struct repl *r);

/* A new replication id: 40 hex characters. */
void repl_new_id(char out[REPL_ID_LEN + 1]);

/* ---- the replica's side (repl_replica.c) ---- */

/* Start and stop the link thread (r->lock not held). */
int repl_link_start(struct repl *r);
void repl_link_stop(struct repl *r);

/* Ask host:port (AUTH with --masterauth first) how many keys it holds:
   0 and *keys (-1 when it did not say), or -1 when it does not answer.
   Blocks for a few seconds at most. Main thread, before the link's. */
int repl_peer_probe(struct repl *r, const char *host, unsigned port, long long *keys);

/* A replica becomes a primary: a new replication id, the old one kept as
   the second, the stream fed by this server's writes. The link must be
   stopped, or the caller is the link's thread, which then ends. */
void repl_become_primary(struct repl *r);

/* The state kept with the data (repl.c): write replid and offset to
   .kvs-repl durably, or remove it. Returns 0 or a kvs_err. */
int repl_meta_write(struct repl *r, const char *replid, uint64_t offset);
int repl_meta_remove(struct repl *r);
/* The marker of a full copy being loaded. */
int repl_loading_mark(struct repl *r, bool on);

#endif
