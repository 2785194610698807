/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * kvs-server as a process in service: its pid file, its log file (reopened
 * on SIGHUP, for log rotation), readiness for systemd (sd_notify; a
 * Type=notify unit), and the engine's log lines (routine compactions and
 * map growths at debug, with a periodic summary at info).
 *
 * Main thread, except process_engine_log(), which any thread may call.
 */
#ifndef KVS_SERVER_PROCESS_H
#define KVS_SERVER_PROCESS_H

#include <stddef.h>

#include "server.h"

/* Minutes between the summaries of routine engine work. */
#define PROCESS_SUMMARY_MINUTES 10

/* Write the process id to path (a temporary file renamed over it).
   Returns 0, or -1 with why. */
int process_pidfile_write(const char *path, char *why, size_t size);
/* Remove it, if it still holds this process's id. */
void process_pidfile_remove(const char *path);

/* Send the log (stderr) to path, appended, created 0640 if missing; on
   SIGHUP call it again to start a new file after a rotation. Returns 0,
   or -1 with why (the log goes where it went). */
int process_logfile_open(const char *path, char *why, size_t size);

/* Tell systemd (when it started us with $NOTIFY_SOCKET) state, e.g.
   "READY=1\nSTATUS=...". Does nothing otherwise. */
void process_notify(const char *state);

/* The engine's log callback (kvs_options.log): notable lines at info,
   routine ones (a compaction done, the LMDB map grown) at debug and
   counted for the summary. */
void process_engine_log(void *ctx, const char *line);

/* Log, at info, what routine engine work was done since the last call,
   with the store's figures; nothing when there was none. */
void process_engine_summary(struct server *srv);

#endif
