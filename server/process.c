/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * kvs-server as a process in service; see process.h.
 */
#include "process.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef KVS_HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#endif

#include "log.h"

int process_pidfile_write(const char *path, char *why, size_t size)
{
    char tmp[4096];
    if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp-%d", path, (int)getpid()) >= sizeof(tmp)) {
        snprintf(why, size, "pidfile path too long");
        return -1;
    }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        snprintf(why, size, "cannot write the pidfile %s: %s", path, strerror(errno));
        return -1;
    }
    char text[32];
    int n = snprintf(text, sizeof(text), "%d\n", (int)getpid());
    if (write(fd, text, (size_t)n) != n || close(fd) != 0 || rename(tmp, path) != 0) {
        snprintf(why, size, "cannot write the pidfile %s: %s", path, strerror(errno));
        unlink(tmp);
        return -1;
    }
    return 0;
}

void process_pidfile_remove(const char *path)
{
    char text[32] = "";
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    bool ours = fgets(text, sizeof(text), f) && atoi(text) == (int)getpid();
    fclose(f);
    if (ours)
        unlink(path);
}

int process_logfile_open(const char *path, char *why, size_t size)
{
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0) {
        snprintf(why, size, "cannot open the logfile %s: %s", path, strerror(errno));
        return -1;
    }
    /* dup2 swaps the descriptor in one step: a line another thread is
       writing goes wholly to the old file or wholly to the new one. */
    if (fd != STDERR_FILENO && dup2(fd, STDERR_FILENO) < 0) {
        snprintf(why, size, "cannot use the logfile %s: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    if (fd != STDERR_FILENO)
        close(fd);
    return 0;
}

void process_notify(const char *state)
{
#ifdef KVS_HAVE_SYSTEMD
    if (getenv("NOTIFY_SOCKET")) {
        int rc = sd_notify(0, state);
        if (rc < 0)
            log_warn("sd_notify: %s", strerror(-rc));
    }
#else
    (void)state;
#endif
}

/* Routine lines, and how many of each since the last summary. */
static const struct {
    const char *prefix, *contains, *what;
} routine[] = {
    {"kvs: compacted ", NULL, "compactions"},
    {"lmdb: map grown ", NULL, "map growths"},
};
#define NROUTINE (sizeof(routine) / sizeof(routine[0]))
static _Atomic uint64_t routine_count[NROUTINE];

void process_engine_log(void *ctx, const char *line)
{
    (void)ctx;
    for (size_t i = 0; i < NROUTINE; i++) {
        if (strncmp(line, routine[i].prefix, strlen(routine[i].prefix)) == 0 &&
            (!routine[i].contains || strstr(line, routine[i].contains))) {
            atomic_fetch_add(&routine_count[i], 1);
            log_debug("engine: %s", line);
            return;
        }
    }
    log_info("engine: %s", line);
}

void process_engine_summary(struct server *srv)
{
    char what[256];
    size_t used = 0;
    what[0] = '\0';
    for (size_t i = 0; i < NROUTINE; i++) {
        uint64_t n = atomic_exchange(&routine_count[i], 0);
        if (n && used < sizeof(what))
            used += (size_t)snprintf(what + used, sizeof(what) - used, "%s%" PRIu64 " %s",
                                     used ? ", " : "", n, routine[i].what);
    }
    if (!used)
        return;
    kvs_stats st = {0};
    kvs_db_stats(srv->store.db, &st);
    log_info("engine: %s in the last %u minutes (each at loglevel debug); %" PRIu64
             " keys, %" PRIu64 " MiB on disk of which %" PRIu64 " MiB stale",
             what, PROCESS_SUMMARY_MINUTES, st.keys, st.disk_bytes >> 20, st.stale_bytes >> 20);
}
