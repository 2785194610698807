/* SPDX-License-Identifier: BSD-3-Clause */
/* Checking one crash state; see check.h. */
#include "check.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "support/tmpdir.h"

static void say(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void say(char *buf, size_t size, const char *fmt, ...)
{
    size_t used = strlen(buf);
    if (used + 1 >= size)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + used, size - used, fmt, ap);
    va_end(ap);
}

/* The engine's log lines go to the verdict of the check running. */
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

static void log_line(void *ctx, const char *line)
{
    struct verdict *v = ctx;
    pthread_mutex_lock(&log_lock);
    say(v->log, sizeof(v->log), "    | %s\n", line);
    pthread_mutex_unlock(&log_lock);
}

/* kvs-check DIR --repair OUT, its output to log. Its exit status, or -1. */
static int run_repair(const char *dir, const char *out, const char *log)
{
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execl(KVS_CHECK_BIN, "kvs-check", dir, "--repair", out, (char *)NULL);
        _exit(127);
    }
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* A write after the crash must survive the next reopen; then the model
   must still hold. *dbp is open on entry and on return (or NULL). */
static unsigned probe(const struct checker *c, const kvs_options *o, const char *dir, kvs_db **dbp,
                      size_t cut, struct verdict *v)
{
    static const char key[] = "probe", val[] = "written after the crash";
    kvs_slice k = kvs_slice_of(key, sizeof(key) - 1);
    int rc = kvs_db_set(*dbp, k, kvs_slice_of(val, sizeof(val) - 1));
    if (rc == 0)
        rc = kvs_db_sync(*dbp);
    int crc = kvs_db_close(*dbp);
    *dbp = NULL;
    if (rc == 0)
        rc = crc;
    char why[KVS_WHY_MAX] = "";
    if (rc == 0)
        rc = kvs_db_open(dir, o, dbp, why);
    if (rc != 0) {
        say(v->report, sizeof(v->report), "  a write after the crash, then a reopen: %s %s\n",
            kvs_strerror(rc), why);
        return 1;
    }
    kvs_buf b = KVS_BUF_INIT;
    rc = kvs_db_get(*dbp, k, &b);
    bool same = rc == 0 && b.len == sizeof(val) - 1 && memcmp(b.data, val, b.len) == 0;
    kvs_buf_free(&b);
    if (!same) {
        say(v->report, sizeof(v->report),
            "  the write after the crash is gone after a reopen (%s)\n", kvs_strerror(rc));
        return 1;
    }
    v->probed = true;
    kvs_db_remove(*dbp, k);
    return m_check(c->m, cut, *dbp, v->report, sizeof(v->report), NULL, NULL);
}

/* Open the state written in dir and check it; in this process. */
static void check_here(const struct checker *c, const struct st_state *st, bool want_probe,
                       const char *dir, struct verdict *v)
{
    char out[PATH_MAX + 16], log[PATH_MAX + 16];
    snprintf(out, sizeof(out), "%s/repaired", c->dir);
    snprintf(log, sizeof(log), "%s/kvs-check.out", c->dir);
    kvs_options o = *c->opts;
    o.log = log_line;
    o.log_ctx = v;
    kvs_db *db = NULL;
    char why[KVS_WHY_MAX] = "";
    int rc = kvs_db_open(dir, &o, &db, why);
    if (rc == 0) {
        v->problems =
            m_check(c->m, st->cut, db, v->report, sizeof(v->report), v->wrong, &v->nwrong);
        if (v->problems == 0 && want_probe)
            v->problems = probe(c, &o, dir, &db, st->cut, v);
        kvs_db_close(db);
        return;
    }
    v->refused = true;
    say(v->report, sizeof(v->report), "  open refused: %s: %s\n", kvs_strerror(rc), why);
    int status = run_repair(dir, out, log);
    rc = status == 0 || status == 1 ? kvs_db_open(out, &o, &db, why) : KVS_EIO;
    if (rc == 0) {
        v->problems =
            m_check(c->m, st->cut, db, v->report, sizeof(v->report), v->wrong, &v->nwrong);
        kvs_db_close(db);
    } else {
        say(v->report, sizeof(v->report),
            "  kvs-check --repair did not give a store that opens (exit %d, %s)\n", status,
            kvs_strerror(rc));
        v->problems = 1;
    }
    ts_tmpdir_remove(out);
}

static bool read_all(int fd, void *p, size_t len)
{
    char *b = p;
    while (len > 0) {
        ssize_t n = read(fd, b, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        b += n;
        len -= (size_t)n;
    }
    return true;
}

static void write_all(int fd, const void *p, size_t len)
{
    const char *b = p;
    while (len > 0) {
        ssize_t n = write(fd, b, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return;
        b += n;
        len -= (size_t)n;
    }
}

/* The last bytes of a file, for the report of a child that died. */
static void tail_of(const char *path, char *out, size_t size)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    char text[1024];
    if (fseek(f, -(long)(sizeof(text) - 1), SEEK_END) != 0)
        rewind(f);
    size_t n = fread(text, 1, sizeof(text) - 1, f);
    fclose(f);
    text[n] = '\0';
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n"))
        say(out, size, "    > %s\n", line);
}

/* The same in a child process, whose verdict comes back through a pipe. */
static void check_isolated(const struct checker *c, const struct st_state *st, bool want_probe,
                           const char *dir, struct verdict *v)
{
    char err[PATH_MAX + 16];
    snprintf(err, sizeof(err), "%s/child.err", c->dir);
    int p[2];
    if (pipe(p) != 0) {
        check_here(c, st, want_probe, dir, v);
        return;
    }
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        close(p[0]);
        int fd = open(err, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0)
            dup2(fd, 2);
        check_here(c, st, want_probe, dir, v);
        write_all(p[1], v, sizeof(*v));
        _exit(0); /* no exit handlers: the parent's memory is not ours to report */
    }
    close(p[1]);
    bool got = pid > 0 && read_all(p[0], v, sizeof(*v));
    close(p[0]);
    int status = 0;
    while (pid > 0 && waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (got && WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return;
    memset(v, 0, sizeof(*v));
    v->problems = 1;
    v->crashed = true;
    if (pid < 0)
        say(v->report, sizeof(v->report), "  cannot fork: %s\n", strerror(errno));
    else if (WIFSIGNALED(status))
        say(v->report, sizeof(v->report), "  the process checking it died of signal %d\n",
            WTERMSIG(status));
    else
        say(v->report, sizeof(v->report), "  the process checking it exited with %d\n",
            WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    tail_of(err, v->report, sizeof(v->report));
}

void ck_state(const struct checker *c, const struct st_state *st, bool want_probe,
              struct verdict *v)
{
    memset(v, 0, sizeof(*v));
    char dir[PATH_MAX + 16];
    snprintf(dir, sizeof(dir), "%s/state", c->dir);
    if (mkdir(dir, 0755) != 0 || st_write(st, dir) != 0) {
        say(v->report, sizeof(v->report), "  cannot write the state into %s: %s\n", dir,
            strerror(errno));
        v->problems = 1;
        ts_tmpdir_remove(dir);
        return;
    }
    if (c->isolate)
        check_isolated(c, st, want_probe, dir, v);
    else
        check_here(c, st, want_probe, dir, v);
    ts_tmpdir_remove(dir);
}
