/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Helpers of the crash tests (tests/crash): plain C, no Criterion, because
 * these programs fork, kill and print figures for the lead to quote.
 *
 * A program is a list of scenarios run one after another with cx_run();
 * a scenario fails when any CK() inside it failed. cx_finish() prints
 * "N passed, N failed" and returns the exit status. Randomness comes from
 * one seed, printed at start and taken from $KVS_CRASH_SEED when set, so
 * that a failing run can be repeated.
 *
 * Values carry their own checksum: cx_value() writes
 * "<key>|<writer>|<seq>|<filler>|<XXH64 of all before, 16 hex digits>", and
 * cx_value_parse() refuses anything whose checksum or key does not match,
 * so a torn or mixed-up value can never pass for a good one.
 *
 * Files: segment listing, a minimal record walker written from the format
 * documented in engines/log/record.h and segment.h (deliberately not the
 * engine's own decoder), and byte surgery on files.
 *
 * Servers: started through tests/support/server.h, reached with hiredis.
 */
#ifndef KVS_TESTS_CRASH_CRASH_H
#define KVS_TESTS_CRASH_CRASH_H

#include <hiredis/hiredis.h>
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "support/server.h"

/* ---- checks and scenarios ---- */

bool cx_check_at(const char *file, int line, bool ok, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Record a failure (with file and line) unless ok; evaluates to ok. */
#define CK(ok, ...) cx_check_at(__FILE__, __LINE__, (ok), __VA_ARGS__)

/* Failures recorded so far by CK(). */
unsigned long cx_failures(void);

/* Run one scenario, timing it and counting it as passed or failed. */
void cx_run(const char *name, void (*fn)(void *arg), void *arg);

/* Print "N passed, N failed" and the total time; the exit status. */
int cx_finish(void);

/* ---- randomness, time, environment ---- */

/* The run's seed: $KVS_CRASH_SEED, else from the clock. Printed once. */
uint64_t cx_seed(void);
/* splitmix64 step: any state works, including 0. */
uint64_t cx_rand(uint64_t *state);
/* Uniform in [lo, hi]. */
uint64_t cx_rand_range(uint64_t *state, uint64_t lo, uint64_t hi);
/* $name as an unsigned number, else dflt. */
unsigned cx_env_uint(const char *name, unsigned dflt);
/* Monotonic clock. */
uint64_t cx_now_ns(void);
double cx_now(void);
void cx_sleep_ms(unsigned ms);

/* ---- self-checking values ---- */

/* Longest value cx_value() writes for keys up to 64 bytes and spread up to
   CX_SPREAD_MAX. */
#define CX_SPREAD_MAX 4096
#define CX_VALUE_MAX (CX_SPREAD_MAX + 160)

/*
 * cx_value - the value of (key, writer, seq) into out (CX_VALUE_MAX bytes):
 * its length is the fixed part plus a number below spread derived from the
 * three, so the same arguments always give the same bytes. Returns the length.
 */
size_t cx_value(char *out, const char *key, unsigned writer, uint64_t seq, unsigned spread);

/* Whether v is a well-formed value of key (checksum included); if so its
   writer and seq. */
bool cx_value_parse(const void *v, size_t len, const char *key, unsigned *writer, uint64_t *seq);

/* ---- files ---- */

#define CX_NAME_MAX 64

/* Names in dir starting with prefix and ending with suffix, sorted; at most
   max. Returns the count (all matches, even beyond max) or -1. */
int cx_list(const char *dir, const char *prefix, const char *suffix, char (*names)[CX_NAME_MAX],
            int max);

/* Path of the newest segment (last seg-*.log by name) into path. */
bool cx_newest_seg(const char *dir, char *path);

/* Replace path's content with len bytes. */
bool cx_write_file(const char *path, const void *p, size_t len);
/* Append len bytes to path. */
bool cx_append_file(const char *path, const void *p, size_t len);
/* XOR the byte at off with mask (in place, with pwrite: a running server's
   shared mapping sees it). */
bool cx_flip_byte(const char *path, uint64_t off, unsigned char mask);
/* Size of path, or -1. */
long long cx_file_size(const char *path);
/* Copy the regular files of src into dst (created). */
bool cx_copy_dir(const char *src, const char *dst);

/* One record of a kvs segment, found by walking the documented format. */
struct cx_rec {
    uint64_t off;  /* of its header in the file */
    uint64_t len;  /* header + key + value */
    unsigned type; /* 1 put, 2 tombstone, 3 clear */
    uint32_t klen, vlen;
    char key[CX_NAME_MAX]; /* NUL-terminated copy, cut to fit */
};

/* Walk the records of a segment image (header included) until the data
   ends or stops making sense. Returns the count (may exceed max). */
int cx_records(const unsigned char *p, size_t len, struct cx_rec *out, int max);

/* The record of key in recs (the last one if several), or NULL. */
const struct cx_rec *cx_find_rec(const struct cx_rec *recs, int n, const char *key);

/* ---- servers ---- */

/* The kvs-server under test: $KVS_TEST_SERVER, else the one built here. */
const char *cx_server_bin(void);

/*
 * cx_start - start kvs-server on engine (NULL: none given) over data with
 * fsync policy (NULL: default), its output to log, and wait until it
 * answers PING (the port is bound before the store is opened, so accepting
 * alone does not mean ready). Returns true when it answers; otherwise the
 * server was reaped or killed and s->pid is 0.
 */
bool cx_start(ts_server *s, const char *engine, const char *data, const char *fsync,
              const char *log);

/*
 * cx_start_refused - start kvs-server on data and expect it to exit
 * non-zero without ever serving, within timeout_ms. Returns its status
 * (-1 if it served or hung: it is killed then).
 */
int cx_start_refused(const char *engine, const char *data, const char *log, int timeout_ms);

/* A hiredis connection to s with timeout_ms on connect and each reply, or
   NULL. */
redisContext *cx_connect(const ts_server *s, int timeout_ms);

/*
 * cx_expect - GET key from s and compare with want (want_len bytes; NULL:
 * the key must be missing). Records a failure naming what and returns
 * false on a mismatch, an error reply or a lost connection.
 */
bool cx_expect(redisContext *c, const char *what, const char *key, const void *want,
               size_t want_len);

/* ---- engine log lines, for kvs_options.log ---- */

/* Append line to the captured text (any thread). */
void cx_log_line(void *ctx, const char *line);
/* The lines captured since the last cx_log_clear(), newline-separated. */
const char *cx_log_text(void);
void cx_log_clear(void);

/* Print the last lines of a log file (for failures). */
void cx_print_tail(const char *path, size_t bytes);

/* Whether the file at path contains needle. */
bool cx_file_has(const char *path, const char *needle);

#endif
