/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Opening the store at startup, and the port while it opens.
 *
 * The store is opened on a thread of its own. An open that is done within
 * LOADING_QUIET_MS changes nothing: the port starts listening afterwards,
 * as it always did. A longer one (a large store, a slow disk) makes the
 * main thread listen and answer as Redis does while it loads its data:
 * "-LOADING Redis is loading the dataset in memory" to every command but
 * AUTH, QUIT and INFO (whose Persistence section has Redis's loading_*
 * figures), protected mode and maxclients applied as usual. Those
 * connections are handed to the workers once the store is open, with
 * whatever they sent after their last answered command still unread in
 * the socket, and AUTH given during the load still holding.
 *
 * When the open of an existing store is done it logs "loaded N keys from
 * M files (B bytes) in T ms". Main thread, at startup.
 */
#ifndef KVS_SERVER_LOADING_H
#define KVS_SERVER_LOADING_H

#include "listener.h"
#include "server.h"

/* Opens quicker than this never listen early. */
#define LOADING_QUIET_MS 1000

struct loading;

/*
 * loading_open - open the store in cfg->data_dir with opts, on a thread,
 * answering l's port meanwhile if it takes long (l is bound, not yet
 * started). SIGINT or SIGTERM during the open (sigs: their events, on
 * base) are remembered in *stop; the open still runs to its end.
 * Returns 0 with *db and *ld (the connections taken meanwhile, for
 * loading_handoff()), or a kvs error with why filled (ld released).
 */
int loading_open(struct server *srv, struct listener *l, struct event_base *base,
                 const kvs_options *opts, kvs_db **db, struct loading **ld, bool *stop, char *why,
                 size_t size);

/* Hand the connections taken while loading to the workers (started now)
   and release ld; NULL is fine. With workers NULL they are closed. */
void loading_handoff(struct loading *ld, struct listener *l, bool close_them);

/* Called by signal handlers while loading_open() runs: remember a stop. */
void loading_request_stop(void);

/* Whether loading_open() is running (signal handlers then must not break
   the loop). */
bool loading_in_progress(void);

#endif
