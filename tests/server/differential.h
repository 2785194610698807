/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The differential suites' helpers (test_differential.c and
 * test_differential_expiry.c): a redis-server to compare with, and one
 * command sent to it and to a kvs-server with the replies compared as
 * the command's mode says. Every wait has a deadline.
 */
#ifndef KVS_TESTS_SERVER_DIFFERENTIAL_H
#define KVS_TESTS_SERVER_DIFFERENTIAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "harness.h"

enum d_mode {
    EXACT,     /* the same bytes */
    AS_SET,    /* an array of bulk strings, in any order (KEYS) */
    SCAN_PASS, /* a whole pass of this SCAN from cursor 0: the same keys */
    HEAD,      /* COMMAND INFO: the same name, arity, flags, key positions */
    NEAR_S,    /* integers within a second (TTL, EXPIRETIME of relative times) */
    NEAR_MS,   /* integers within NEAR_MS_TOLERANCE (PTTL...) */
    AWAIT_0,   /* sent again to both until both answer :0 (a short time ran out) */
};

/* Both servers get each command within a few ms of each other; this
   allows for a slow (sanitized, shared) machine. */
#define NEAR_MS_TOLERANCE 1500

struct dcmd {
    enum d_mode mode;
    size_t argc;
    kvs_slice argv[16];
};

/* A literal argument; it may hold NUL bytes. */
#define S(lit)                                                                                     \
    {                                                                                              \
        (lit), sizeof(lit) - 1                                                                     \
    }
#define CMD(mode, ...)                                                                             \
    {                                                                                              \
        (mode), sizeof((kvs_slice[]){__VA_ARGS__}) / sizeof(kvs_slice),                            \
        {                                                                                          \
            __VA_ARGS__                                                                            \
        }                                                                                          \
    }

/* A redis-server with no persistence (--save '' --appendonly no) on a
   free port, in a directory of its own. */
struct d_redis {
    ts_server s;
    char dir[PATH_MAX];
    char log[PATH_MAX + 16];
};

void d_redis_start(struct d_redis *r);
void d_redis_stop(struct d_redis *r);

/* A connected socket to a server on 127.0.0.1:port. */
int d_connect_port(uint16_t port);

/* Send a command to fd and read its whole reply (malloc'd, *len bytes). */
char *d_ask(int fd, size_t argc, const kvs_slice *argv, size_t *len);

/* Send d to kvs (kfd) and redis (rfd) and compare the replies as its mode
   says; a difference fails the test (cr_expect), naming the command. */
void d_run_one(int kfd, int rfd, const struct dcmd *d);

/* Every command kvs lists (COMMAND LIST), COMMAND INFO compared with
   Redis's: name, arity, flags, key positions. */
void d_compare_command_info(int kfd, int rfd);

#endif
