/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * kvs-server: startup and shutdown. Main thread.
 *
 * Startup is ordered so that every failure costs nothing: the arguments
 * (and the configuration file) are checked, then the addresses are bound
 * (RESP's, and HTTP's with --http-addr: a taken port fails here), and
 * only then is the store opened, which creates the data directory; an
 * open that takes long has the port answer -LOADING meanwhile
 * (loading.h). Then the socket starts listening, the one startup line is
 * logged, systemd is told (process.h), and the main thread runs the
 * listener and the signal events (SIGHUP reopens --logfile) while the
 * workers serve the clients.
 *
 * Shutdown (SIGINT, SIGTERM, SHUTDOWN): stop accepting, let every worker
 * execute what its clients already sent and write the replies, join the
 * workers, close the store (which flushes it), exit 0.
 */
#include <errno.h>
#include <event2/event.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "auth.h"
#include "commands.h"
#include "config.h"
#include "listener.h"
#include "loading.h"
#include "log.h"
#include "process.h"
#include "repl.h"
#include "server.h"
#include "worker.h"

/* Descriptors needed besides the clients': stdio, the store's files, the
   listener, the signal and wake-up pipes of libevent. Plus two per worker. */
#define FD_RESERVE 32

static struct server srv;

static void libevent_log(int severity, const char *msg)
{
    log_msg(severity >= EVENT_LOG_ERR ? LVL_ERROR : LVL_WARN, "libevent: %s", msg);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    if (loading_in_progress()) {
        log_info("received %s while the store opens; stopping once it is open",
                 sig == SIGINT ? "SIGINT" : "SIGTERM");
        loading_request_stop();
        return;
    }
    log_info("received %s; finishing requests already received, then exiting",
             sig == SIGINT ? "SIGINT" : "SIGTERM");
    event_base_loopbreak(arg);
}

/* Raise the descriptor limit to fit maxclients, or lower maxclients to fit
   the limit, as Redis does. Returns 0, or -1 when not even one client fits. */
static int fit_fd_limit(struct server_config *cfg)
{
    rlim_t reserve = FD_RESERVE + 2 * (rlim_t)cfg->threads;
    rlim_t want = (rlim_t)cfg->maxclients + reserve;
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return 0;
    if (rl.rlim_cur >= want)
        return 0;
    rlim_t old = rl.rlim_cur;
    rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= want ? want : rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
        rl.rlim_cur = old;
    if (rl.rlim_cur >= want)
        return 0;
    if (rl.rlim_cur <= reserve) {
        log_error("the open file limit (%llu) leaves no room for clients",
                  (unsigned long long)rl.rlim_cur);
        return -1;
    }
    log_warn("the open file limit (%llu) allows %llu clients; maxclients lowered from %u",
             (unsigned long long)rl.rlim_cur, (unsigned long long)(rl.rlim_cur - reserve),
             cfg->maxclients);
    cfg->maxclients = (unsigned)(rl.rlim_cur - reserve);
    return 0;
}

static int start_workers(void)
{
    srv.workers = calloc(srv.cfg.threads, sizeof(*srv.workers));
    if (!srv.workers) {
        log_error("out of memory");
        return -1;
    }
    srv.nworkers = srv.cfg.threads;
    for (unsigned i = 0; i < srv.nworkers; i++) {
        if (worker_init(&srv.workers[i], &srv, i) != 0) {
            log_error("cannot set up worker %u: %s", i, strerror(errno));
            srv.nworkers = i + 1; /* the ones stop_workers() must release */
            return -1;
        }
    }
    for (unsigned i = 0; i < srv.nworkers; i++) {
        int rc = worker_start(&srv.workers[i]);
        if (rc != 0) {
            log_error("cannot start worker thread %u: %s", i, strerror(rc));
            return -1;
        }
    }
    return 0;
}

static void stop_workers(void)
{
    if (!srv.workers)
        return;
    for (unsigned i = 0; i < srv.nworkers; i++) {
        if (srv.workers[i].started)
            worker_stop(&srv.workers[i]);
    }
    for (unsigned i = 0; i < srv.nworkers; i++)
        worker_destroy(&srv.workers[i]);
    free(srv.workers);
    srv.workers = NULL;
}

/* SIGHUP: a new log file after a rotation (logrotate's postrotate). */
static void on_hup(evutil_socket_t sig, short what, void *arg)
{
    (void)sig;
    (void)what;
    (void)arg;
    char why[KVS_WHY_MAX];
    if (!srv.cfg.logfile)
        log_info("received SIGHUP; no logfile to reopen");
    else if (process_logfile_open(srv.cfg.logfile, why, sizeof(why)) != 0)
        log_error("received SIGHUP: %s", why);
    else
        log_info("received SIGHUP; log file %s reopened", srv.cfg.logfile);
}

static void on_summary(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    process_engine_summary(&srv);
}

int main(int argc, char **argv)
{
    switch (config_parse(&srv.cfg, argc, argv)) {
    case CONFIG_EXIT:
        return 0;
    case CONFIG_BAD:
        return 1;
    case CONFIG_OK:
        break;
    }
    struct server_config *cfg = &srv.cfg;
    char why[KVS_WHY_MAX];
    if (cfg->logfile && process_logfile_open(cfg->logfile, why, sizeof(why)) != 0) {
        fprintf(stderr, "kvs-server: %s\n", why);
        config_free(cfg);
        return 1;
    }
    log_set_level(cfg->log_level);
    event_set_log_callback(libevent_log);
    signal(SIGPIPE, SIG_IGN);
    if (fit_fd_limit(cfg) != 0) {
        config_free(cfg);
        return 1;
    }
    atomic_init(&srv.maxclients, cfg->maxclients);
    atomic_init(&srv.timeout, cfg->timeout);
    atomic_init(&srv.next_id, 1);
    atomic_init(&srv.last_save_ms, kvs_now_ms());
    atomic_init(&srv.last_save_ok, true);
    atomic_init(&srv.shutdown_nosave, false);
    pthread_mutex_init(&srv.stats_lock, NULL);
    clock_gettime(CLOCK_MONOTONIC, &srv.started);
    commands_init();

    int status = 1;
    bool volatile_db = false; /* for repl_finish(), read before the store closes */
    bool pidfile = false;
    struct event_base *base = NULL;
    struct event *sigterm = NULL, *sigint = NULL, *sighup = NULL, *summary = NULL;
    struct loading *ld = NULL;
    struct listener listener, http_listener = {.fd = -1};
    if (listener_bind(&listener, &srv, why, sizeof(why)) != 0) {
        log_error("%s", why);
        config_free(cfg);
        return 1;
    }
    if (cfg->http_addr_len && listener_bind_http(&http_listener, &srv, why, sizeof(why)) != 0) {
        log_error("%s", why);
        listener_close(&listener);
        config_free(cfg);
        return 1;
    }
    if (cfg->pidfile) {
        if (process_pidfile_write(cfg->pidfile, why, sizeof(why)) != 0) {
            log_error("%s", why);
            goto out_listener;
        }
        pidfile = true;
    }
    /* The loop and its signals come first: the port may answer while the
       store opens (loading.h). */
    base = event_base_new();
    sigterm = base ? evsignal_new(base, SIGTERM, on_signal, base) : NULL;
    sigint = base ? evsignal_new(base, SIGINT, on_signal, base) : NULL;
    sighup = base ? evsignal_new(base, SIGHUP, on_hup, NULL) : NULL;
    if (!sigterm || !sigint || !sighup || event_add(sigterm, NULL) != 0 ||
        event_add(sigint, NULL) != 0 || event_add(sighup, NULL) != 0) {
        log_error("cannot set up the event loop");
        goto out_listener;
    }

    kvs_options opts;
    kvs_options_init(&opts);
    opts.engine = cfg->engine;
    opts.fsync = cfg->fsync;
    opts.max_memory = cfg->maxmemory;
    opts.snapshot_interval = cfg->snapshot_interval;
    opts.log = process_engine_log;
    kvs_db *db = NULL;
    bool stop = false;
    process_notify("STATUS=opening the store");
    int rc = loading_open(&srv, &listener, base, &opts, &db, &ld, &stop, why, sizeof(why));
    if (rc != 0) {
        log_error("cannot open the store in %s: %s", cfg->data_dir, why);
        goto out_listener;
    }
    if (store_init(&srv.store, db) != 0) {
        log_error("out of memory");
        goto out_db;
    }
    srv.engine_name = kvs_engine_name(kvs_db_engine(db));
    if (stop) {
        log_info("the store is open; stopping as asked");
        status = 0;
        goto out_events;
    }
    if (repl_init(&srv) != 0)
        goto out_events;
    bool in_memory = kvs_engine_traits(kvs_db_engine(db)) & KVS_ENGINE_VOLATILE;
    if (!in_memory && (cfg->maxmemory || cfg->snapshot_interval != 5))
        log_warn("--maxmemory and --snapshot-interval apply to the mem engine only; engine %s "
                 "keeps every write in its files",
                 srv.engine_name);

    if (start_workers() != 0)
        goto out_workers;
    if (repl_start(&srv) != 0)
        goto out_workers;
    rc = expirer_start(&srv.expirer, &srv);
    if (rc != 0) {
        log_error("cannot start the active expiry thread: %s", strerror(rc));
        goto out_workers;
    }
    loading_handoff(ld, &listener, false);
    ld = NULL;
    if (listener_start(&listener, base, why, sizeof(why)) != 0 ||
        (cfg->http_addr_len && listener_start(&http_listener, base, why, sizeof(why)) != 0)) {
        log_error("%s", why);
        goto out_workers;
    }
    struct timeval every = {PROCESS_SUMMARY_MINUTES * 60, 0};
    summary = event_new(base, -1, EV_PERSIST, on_summary, NULL);
    if (summary)
        event_add(summary, &every);
    char persistence[96];
    if (in_memory)
        snprintf(persistence, sizeof(persistence), "snapshots every %us, maxmemory %llu",
                 cfg->snapshot_interval, cfg->maxmemory);
    else
        snprintf(persistence, sizeof(persistence), "fsync %s", kvs_fsync_name(cfg->fsync));
    log_info("kvs-server %s ready: engine %s, %s, address %s, data directory %s, "
             "%u threads, maxclients %u, hz %u%s%s",
             KVS_VERSION, srv.engine_name, persistence, cfg->addr_text, cfg->data_dir, srv.nworkers,
             cfg->maxclients, (unsigned)cfg->hz, cfg->config_file ? ", configuration " : "",
             cfg->config_file ? cfg->config_file : "");
    if (cfg->http_addr_len)
        log_info("HTTP on %s", cfg->http_addr_text);
    if (auth_required(cfg))
        log_info("clients must authenticate (AUTH) before other commands");
    else if (cfg->protected_mode && !auth_peer_is_loopback((const struct sockaddr *)&cfg->addr))
        log_warn("no password is set and protected mode is on: only loopback clients will be "
                 "served (see --requirepass and --protected-mode)");
    char state[160];
    snprintf(state, sizeof(state), "READY=1\nSTATUS=serving %s on %s", srv.engine_name,
             cfg->addr_text);
    process_notify(state);
    event_base_dispatch(base);
    process_notify("STOPPING=1\nSTATUS=stopping");
    status = 0;

out_workers:
    listener_close(&listener);
    listener_close(&http_listener);
    loading_handoff(ld, &listener, true);
    repl_stop(&srv);
    stop_workers();
    expirer_stop(&srv.expirer);
out_events:
    store_destroy(&srv.store);
out_db:
    /* A volatile engine writes its snapshot here, unless SHUTDOWN NOSAVE. */
    volatile_db = kvs_engine_traits(kvs_db_engine(db)) & KVS_ENGINE_VOLATILE;
    rc = atomic_load(&srv.shutdown_nosave) ? kvs_db_close_nosave(db) : kvs_db_close(db);
    if (rc != 0) {
        log_error("closing the store: %s", kvs_strerror(rc));
        status = 1;
    }
    /* The replication offset is kept with the data if the data was kept
       (a volatile engine keeps it in its snapshot, if it wrote one). */
    if (srv.repl)
        repl_finish(&srv, rc == 0 && (!volatile_db || (cfg->snapshot_interval &&
                                                       !atomic_load(&srv.shutdown_nosave))));
out_listener:
    listener_close(&listener);
    listener_close(&http_listener);
    if (summary)
        event_free(summary);
    if (sighup)
        event_free(sighup);
    if (sigterm)
        event_free(sigterm);
    if (sigint)
        event_free(sigint);
    if (base)
        event_base_free(base);
    if (pidfile)
        process_pidfile_remove(cfg->pidfile);
    pthread_mutex_destroy(&srv.stats_lock);
    libevent_global_shutdown();
    config_free(cfg);
    if (status == 0)
        log_info("store closed; exiting");
    return status;
}
