/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Test support: run a real kvs-server, and other programs, from a test.
 *
 * Tests that talk to a server over the network start one on a free loopback
 * port with ts_server_start(), talk to it, and stop it with ts_server_stop()
 * (SIGTERM, the graceful path) or ts_server_kill() (SIGKILL, a crash).
 * ts_run() runs a command (kvs-client, redis-cli) and captures its output.
 * Everything here is bounded in time: each call takes a deadline and kills
 * what overstays it, so a hung server fails a test instead of hanging it.
 * Nothing sleeps for a fixed time: waits are on the child's pidfd, on pipes
 * or on connect().
 *
 * Children get PR_SET_PDEATHSIG(SIGKILL), so a test that dies on a failed
 * assertion does not leave its server running. Linux 5.3+ (pidfd) only.
 *
 * Thread safety: one thread per ts_server; the functions keep no globals.
 */
#ifndef KVS_TESTS_SUPPORT_SERVER_H
#define KVS_TESTS_SUPPORT_SERVER_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "support/tmpdir.h"

/* Default deadline of the calls below when given timeout_ms <= 0. */
#define TS_DEFAULT_TIMEOUT_MS 10000

/* What ts_server_start() found. */
enum ts_start {
    TS_READY = 0,   /* the server accepts connections on s->addr */
    TS_EXITED = 1,  /* the server exited before accepting; s->status says how */
    TS_TIMEOUT = 2, /* it neither accepted nor exited in time; it was killed */
    TS_FAILED = -1, /* the helper could not run it (fork, exec, no port...) */
};

typedef struct ts_server_opts {
    const char *binary;      /* path of the kvs-server executable (required) */
    const char *const *args; /* further arguments, NULL-terminated, or NULL */
    const char *log_path;    /* file that receives stdout+stderr (truncated), or
                                NULL to inherit the test's */
    const char *host;        /* loopback to listen on: NULL for "127.0.0.1", or "::1" */
    bool no_addr;            /* true: pass no --addr (the test passes its own in args
                                and sets port); readiness then uses host:port */
    uint16_t port;           /* with no_addr: the port the server will listen on */
    int timeout_ms;          /* readiness deadline; <= 0 for TS_DEFAULT_TIMEOUT_MS */
} ts_server_opts;

typedef struct ts_server {
    pid_t pid;      /* running child, or 0 */
    int pidfd;      /* its pidfd, or -1 */
    uint16_t port;  /* the port it listens on */
    char addr[64];  /* "127.0.0.1:PORT" or "[::1]:PORT", for --addr of clients */
    int status;     /* after it was reaped: exit code, or 128 + signal number */
    bool timed_out; /* the last stop/wait ran out of time and used SIGKILL */
} ts_server;

/*
 * ts_free_port - a TCP port on host (NULL: 127.0.0.1) that was free a
 * moment ago: bind port 0, read the port back, close. Returns it or 0.
 */
uint16_t ts_free_port(const char *host);

/*
 * ts_server_start - spawn opts->binary with "--addr HOST:PORT" (a free port
 * unless opts->no_addr) followed by opts->args (then, for a kvs-server,
 * "--io-backend $KVS_TEST_IO_BACKEND" when that is set and opts->args
 * has no --io-backend), then wait until it accepts
 * a TCP connection, it exits, or the deadline passes.
 * Returns an enum ts_start. On TS_READY, s->pid/pidfd/port/addr are set and
 * the server must later be stopped with ts_server_stop() or ts_server_kill().
 * On TS_EXITED the child was reaped and s->status holds its status.
 */
int ts_server_start(ts_server *s, const ts_server_opts *opts);

/*
 * ts_server_stop - SIGTERM, wait up to timeout_ms for the exit, else
 * SIGKILL (s->timed_out = true). Reaps the child.
 * Returns its status: exit code, or 128 + signal number; -1 if there was no
 * child.
 */
int ts_server_stop(ts_server *s, int timeout_ms);

/* ts_server_kill - SIGKILL (a crash: no flushing, no cleanup) and reap.
   Returns the status as ts_server_stop() does (137 normally). */
int ts_server_kill(ts_server *s);

/*
 * ts_server_wait - wait up to timeout_ms for the server to exit by itself;
 * past the deadline SIGKILL it (s->timed_out = true). Returns the status as
 * ts_server_stop() does.
 */
int ts_server_wait(ts_server *s, int timeout_ms);

/* The result of ts_run(). out and err are NUL-terminated (also when the
   program wrote NULs: use the lengths) and owned by the result. */
typedef struct ts_result {
    int status;     /* exit code, 128 + signal number, or -1: could not run */
    bool timed_out; /* killed with SIGKILL at the deadline */
    char *out;
    size_t out_len;
    char *err;
    size_t err_len;
} ts_result;

/*
 * ts_run - run argv[0] (searched in PATH when it has no '/') with argv,
 * feeding it input (input_len bytes; NULL for /dev/null) on stdin and
 * capturing stdout and stderr, for at most timeout_ms.
 * Returns 0 when the program ran (its status is in r->status, which may
 * report a failure of the program) or -1 when it could not be started;
 * either way r must be released with ts_result_free().
 */
int ts_run(const char *const argv[], const void *input, size_t input_len, int timeout_ms,
           ts_result *r);

/* ts_result_free - release out and err; accepts NULL. */
void ts_result_free(ts_result *r);

/*
 * ts_read_file - the whole content of path, NUL-terminated, in a malloc'd
 * buffer (the caller frees it), its length in *len if len is not NULL.
 * Returns NULL on error. For looking at a server's log.
 */
char *ts_read_file(const char *path, size_t *len);

#endif
