/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Persistence commands: SAVE, BGSAVE, LASTSAVE, and what SHUTDOWN and INFO
 * need of them. Run on the connection's worker thread.
 *
 * For a volatile engine (mem) they are its snapshots: SAVE writes one and
 * answers when it is durable, BGSAVE asks the engine's background thread
 * for one, LASTSAVE is when the last good one was written. For the
 * engines that keep every write in their files (kvs, lmdb) a save is an
 * fsync of what is acknowledged (kvs_db_save), done at once for BGSAVE
 * too, and LASTSAVE is when the server started or last saved.
 *
 * SAVE blocks the clients of the worker that runs it until the snapshot
 * is written (Redis's blocks every client); BGSAVE blocks nobody.
 */
#include <stdatomic.h>

#include "commands.h"
#include "conn.h"
#include "log.h"
#include "reply.h"
#include "worker.h"

static bool is_volatile(struct server *srv)
{
    return kvs_engine_traits(kvs_db_engine(srv->store.db)) & KVS_ENGINE_VOLATILE;
}

void persist_status(struct server *srv, struct persist_status *ps)
{
    kvs_save_status st;
    if (is_volatile(srv) && kvs_db_save_status(srv->store.db, &st) == 0) {
        ps->changes = st.changes;
        ps->last_save_ms = st.last_save;
        ps->in_progress = st.in_progress;
        ps->last_ok = st.last_status == 0;
        ps->last_ms = st.last_ms;
        ps->saves = st.saves;
        return;
    }
    /* Every write is in the files already: nothing waits to be saved. */
    ps->changes = 0;
    ps->last_save_ms = atomic_load(&srv->last_save_ms);
    ps->in_progress = false;
    ps->last_ok = atomic_load(&srv->last_save_ok);
    ps->last_ms = 0;
    ps->saves = 0;
}

int persist_save(struct server *srv)
{
    int rc = kvs_db_save(srv->store.db);
    if (rc == KVS_ENOTSUP)
        rc = kvs_db_sync(srv->store.db);
    if (!is_volatile(srv)) {
        atomic_store(&srv->last_save_ok, rc == 0);
        if (rc == 0)
            atomic_store(&srv->last_save_ms, kvs_now_ms());
    }
    if (rc != 0)
        log_warn("save failed: %s", kvs_strerror(rc));
    return rc;
}

void cmd_save(struct conn *c, size_t argc, const kvs_slice *argv)
{
    (void)argc;
    (void)argv;
    int rc = persist_save(c->w->srv);
    if (rc == 0)
        reply_ok(c);
    else
        reply_kvs_error(c, rc);
}

/* BGSAVE [SCHEDULE] */
void cmd_bgsave(struct conn *c, size_t argc, const kvs_slice *argv)
{
    bool schedule = argc == 2 && slice_is(argv[1], "schedule");
    if (argc > 2 || (argc == 2 && !schedule)) {
        reply_error(c, "ERR syntax error");
        return;
    }
    struct server *srv = c->w->srv;
    if (!is_volatile(srv)) {
        int rc = persist_save(srv);
        if (rc == 0)
            reply_simple(c, "Background saving started");
        else
            reply_kvs_error(c, rc);
        return;
    }
    struct persist_status ps;
    persist_status(srv, &ps);
    int rc = kvs_db_bgsave(srv->store.db, schedule);
    if (rc == 0)
        reply_simple(c, schedule && ps.in_progress ? "Background saving scheduled"
                                                   : "Background saving started");
    else if (rc == KVS_EBUSY)
        reply_error(c, "ERR Background save already in progress");
    else
        reply_kvs_error(c, rc);
}

void cmd_lastsave(struct conn *c, size_t argc, const kvs_slice *argv)
{
    (void)argc;
    (void)argv;
    struct persist_status ps;
    persist_status(c->w->srv, &ps);
    reply_int(c, ps.last_save_ms / 1000);
}
