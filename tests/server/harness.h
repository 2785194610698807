/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Helpers of the kvs-server suites: a server per test on a free port in a
 * private directory, redis-cli runs, and a raw socket with deadlines for
 * talking RESP byte by byte. Built on tests/support/server.h.
 *
 * Every call that waits has a deadline and fails the test when it passes.
 */
#ifndef KVS_TESTS_SERVER_HARNESS_H
#define KVS_TESTS_SERVER_HARNESS_H

#include <criterion/parameterized.h>
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>

#include "kvs/slice.h"
#include "support/params.h"
#include "support/server.h"

/* Deadline of one wait on a socket or a program. */
#define H_TIMEOUT_MS 10000

/* The engines every server test runs against, for ParameterizedTest:
       ParameterizedTestParameters(suite, name) { H_ENGINE_PARAMS; }
       ParameterizedTest(struct ts_engine_param *e, suite, name) { ... }
   Every engine of the registry (support/params.h), so a new engine gets
   every suite by registering. */
#define H_ENGINE_PARAMS return ts_engine_params()

/* The kvs-server under test: $KVS_TEST_SERVER if set (e.g. a
   ThreadSanitizer build of the server, driven by these suites built with
   AddressSanitizer, since Criterion does not run under TSan), else the one
   built beside the tests. */
const char *h_server_binary(void);

struct h_server {
    ts_server s;
    char dir[PATH_MAX];       /* private directory of the test */
    char data[PATH_MAX + 16]; /* dir/data: the server's --data-dir */
    char log[PATH_MAX + 16];  /* dir/server.log: its stderr */
    const char *engine;
};

/* Make the test's directory and start a server on engine with extra
   arguments (NULL-terminated, or NULL). Fails the test unless it is ready. */
void h_start(struct h_server *h, const char *engine, const char *const *extra);

/* Start again on the same data directory and the same port (after
   h_stop_keep): the port is still held by the old server's closed
   connections (TIME_WAIT), which SO_REUSEADDR must let the new one bind. */
void h_restart(struct h_server *h, const char *const *extra);

/* SIGTERM, expect exit status 0, keep the directory. */
void h_stop_keep(struct h_server *h);

/* SIGTERM, expect exit status 0, remove the directory. */
void h_stop(struct h_server *h);

/* Run redis-cli against the server with the given arguments (NULL-
   terminated); expects exit 0 and returns its stdout, malloc'd. */
char *h_cli(struct h_server *h, ...) __attribute__((sentinel));

/* Same, with stdin from input (redis-cli reads the last argument there
   with -x). */
char *h_cli_stdin(struct h_server *h, const char *input, size_t len, ...) __attribute__((sentinel));

/* A connected, blocking TCP socket to the server. */
int h_connect(struct h_server *h);

/* Send all of buf. */
void h_send(int fd, const void *buf, size_t len);

/* Read exactly len bytes into buf within the deadline; fails the test on
   EOF or timeout. */
void h_recv(int fd, void *buf, size_t len);

/* Read exactly strlen(expected) bytes (or len) and compare. */
void h_expect(int fd, const void *expected, size_t len);
#define H_EXPECT(fd, lit) h_expect((fd), (lit), sizeof(lit) - 1)

/* Whether the server closed fd (EOF or reset) within the deadline,
   discarding anything it sent first. */
bool h_closed(int fd);

/* Read one whole reply (nested arrays included) within the deadline; its
   bytes are returned malloc'd, NUL-terminated, their count in *len. */
char *h_read_reply(int fd, size_t *len);

/* Send a command (argc C strings, or argv slices) as RESP. */
void h_send_cmd(int fd, size_t argc, const kvs_slice *argv);

/* Milliseconds of CLOCK_MONOTONIC, for deadlines. */
long long h_mono_ms(void);

/* Sleep ms milliseconds (between polls of a condition). */
void h_pause_ms(long ms);

/* Send a command and expect a reply, both string literals. */
#define H_ROUNDTRIP(fd, cmd, reply)                                                                \
    do {                                                                                           \
        h_send((fd), (cmd), sizeof(cmd) - 1);                                                      \
        H_EXPECT((fd), reply);                                                                     \
    } while (0)

#endif
