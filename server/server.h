/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * kvs-server's shared state: the configuration it was started with, the
 * store, the workers and the counters INFO reports.
 *
 * One struct server lives in main.c for the life of the process. Fields
 * that never change after startup are read by every thread without locks;
 * the few that CONFIG SET can change, and the counters, are atomics.
 */
#ifndef KVS_SERVER_SERVER_H
#define KVS_SERVER_SERVER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>

#include "expiry.h"
#include "kvs/addr.h"
#include "kvs/kvs.h"
#include "log.h"
#include "store.h"

struct worker;
struct repl;

/* --io-backend: how workers do their clients' network I/O (uring.h);
   epoll by default. */
enum io_backend { IO_BACKEND_AUTO, IO_BACKEND_URING, IO_BACKEND_EPOLL };

struct server_config {
    struct sockaddr_storage addr;
    socklen_t addr_len;
    char addr_text[KVS_ADDR_STRLEN];
    const char *engine; /* NULL: the directory's recorded engine, else kvs */
    const char *data_dir;
    kvs_fsync fsync;
    unsigned threads;
    enum io_backend io_backend;
    unsigned maxclients;
    unsigned timeout; /* seconds of idleness before a client is closed; 0 never */
    enum log_level log_level;
    /* Access control (auth.h): the default user's password, NULL for none;
       owned by the config, freed by config_free(). CONFIG SET changes it
       under auth.c's lock; requirepass_len is read without it. */
    char *requirepass;
    _Atomic size_t requirepass_len;
    /* What CONFIG SET can change while clients are served (config.h). */
    atomic_bool protected_mode;       /* no password: serve loopback peers only */
    _Atomic size_t max_query_buffer;  /* bytes a client's unexecuted input may reach */
    _Atomic size_t max_output_buffer; /* bytes of replies a client may owe; 0 no limit */
    _Atomic unsigned hz;              /* active expiry cycles per second (expiry.h) */
    _Atomic unsigned expire_effort;   /* 1-10, Redis's active-expire-effort */
    /* The mem engine's (kvs_options): bytes, 0 no limit; seconds, 0 none. */
    unsigned long long maxmemory;
    unsigned snapshot_interval;
    /* The HTTP listener (http.h): http_addr_len 0 when there is none. */
    struct sockaddr_storage http_addr;
    socklen_t http_addr_len;
    char http_addr_text[KVS_ADDR_STRLEN];
    size_t http_max_body;             /* bytes of a request body, at most */
    unsigned http_max_url;            /* bytes of a URL (path and query), at most */
    unsigned http_max_headers;        /* bytes of the header fields, at most */
    unsigned http_request_timeout;    /* seconds from request line to whole body */
    unsigned http_keepalive_timeout;  /* seconds a connection may wait for a request */
    unsigned http_keepalive_requests; /* requests per connection, at most */
    /* Replication (repl.h): --replicaof (NULL: a primary), --masterauth
       (owned, freed by config_free()), the backlog's size, the most a
       replica link may be behind before it is dropped, the seconds of
       silence before a link is given up, the seconds between PINGs. */
    const char *replicaof_host;
    unsigned replicaof_port;
    char *masterauth;
    /* --peer: a primary's backup (NULL: none), whose data an empty
       primary copies first (repl.h, the pair). */
    const char *peer_host;
    unsigned peer_port;
    unsigned long long repl_backlog_size;
    unsigned long long replica_output_limit;
    unsigned repl_timeout;
    unsigned repl_ping_period;
    /* The configuration file, absolute (NULL: started without one); the
       file the password was read from (NULL: given as text); and the
       strings the const char * fields point into. Owned, freed by
       config_free(); config_lock() guards requirepass_file. */
    char *config_file;
    char *requirepass_file;
    /* Where the log goes (NULL: stderr) and the pid file (NULL: none). */
    const char *logfile;
    const char *pidfile;
    char **owned;
    size_t nowned;
};

/* Counters INFO's stats section reports. Each worker owns one set and is its
   only writer (stat_add), so updates need no locked instruction; INFO sums
   them from another thread, hence the atomics. */
struct server_stats {
    _Atomic uint64_t connections; /* connections accepted */
    _Atomic uint64_t commands;    /* commands executed */
    _Atomic uint64_t net_in;      /* bytes read from clients */
    _Atomic uint64_t net_out;     /* bytes written to clients */
    _Atomic uint64_t hits;        /* GET/MGET of a present key */
    _Atomic uint64_t misses;      /* GET/MGET of a missing key */
    _Atomic uint64_t rejected;    /* refused by maxclients (listener only) */
    _Atomic uint64_t expired;     /* expired keys DEL removed (the expirer counts its own) */
};

struct server {
    struct server_config cfg;
    struct store store;
    const char *engine_name; /* of the open store */
    struct timespec started; /* CLOCK_MONOTONIC at startup, for uptime */

    struct worker *workers;
    unsigned nworkers;
    struct server_stats listener_stats;
    struct expirer expirer; /* active expiry, and its figures */
    struct repl *repl;      /* replication (repl.h) */

    /* CONFIG SET may change these while clients are served. */
    _Atomic unsigned maxclients;
    _Atomic unsigned timeout;

    _Atomic unsigned clients; /* connections open now, counted by the listener */
    /* Saves of an engine without snapshots (cmd_persist.c): the last good
       one (ms since the epoch; startup until one ran), and whether the
       last one succeeded. SHUTDOWN NOSAVE sets shutdown_nosave. */
    _Atomic int64_t last_save_ms;
    atomic_bool last_save_ok;
    atomic_bool shutdown_nosave;
    _Atomic uint64_t next_id; /* CLIENT ID of the next connection */

    /* CONFIG RESETSTAT records the totals at that moment here; INFO reports
       the difference, so that the workers' counters stay single-writer.
       Protected by stats_lock. */
    pthread_mutex_t stats_lock;
    struct server_stats_base {
        uint64_t connections, commands, net_in, net_out, hits, misses, rejected;
        uint64_t expired, expire_cycle_us, expire_time_capped; /* the expirer's */
    } stats_base;
};

/* Add n to a counter whose only writer is the calling thread. */
static inline void stat_add(_Atomic uint64_t *counter, uint64_t n)
{
    atomic_store_explicit(counter, atomic_load_explicit(counter, memory_order_relaxed) + n,
                          memory_order_relaxed);
}

/* The counters since startup or the last CONFIG RESETSTAT. Any thread. */
void server_stats_read(struct server *srv, struct server_stats_base *out);

/* CONFIG RESETSTAT. Any thread. */
void server_stats_reset(struct server *srv);

/* Begin a graceful stop, as SIGTERM does. Any thread. */
void server_request_stop(struct server *srv);

/* The state of saves, for INFO persistence and LASTSAVE (cmd_persist.c). */
struct persist_status {
    uint64_t changes;     /* writes not in a snapshot yet */
    int64_t last_save_ms; /* the last good save, ms since the epoch */
    bool in_progress;
    bool last_ok;    /* the last save succeeded (or none ran) */
    int64_t last_ms; /* how long the last good one took */
    uint64_t saves;  /* good snapshots since startup */
};
void persist_status(struct server *srv, struct persist_status *ps);

/* SAVE: a snapshot, or an fsync for an engine that has none. Returns 0 or
   the error (logged). Any worker. */
int persist_save(struct server *srv);

#endif
