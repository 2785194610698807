/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The model of the crash-state test: what the workload asked of the store,
 * when each request began and returned (marks in the trace), and which
 * values a crash state may therefore show.
 *
 * Keys are M_NKEYS short names; each write of a value uses a fresh serial
 * and writes cx_value(key, 0, serial) (tests/crash/crash.h), which carries
 * its own checksum, so a value read back names the write it came from.
 * Every key is written by one thread at a time, so each key's operations
 * form one sequence; a clear is an operation on every key, made while no
 * other thread writes.
 *
 * Durable: under "always", an operation that returned; otherwise one that
 * returned before a kvs_db_sync() (or a close) began, when that sync
 * returned. For a cut c, key K may show the value of its last durable
 * operation before c (absent for a removal, or if there is none), or that
 * of any later operation of K that began before c. Anything else is a lost
 * durable write, a value superseded before the last checkpoint coming back,
 * or garbage.
 */
#ifndef KVS_TESTS_CRASHSTATE_MODEL_H
#define KVS_TESTS_CRASHSTATE_MODEL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kvs/kvs.h"

#define M_NKEYS 64
/* Value lengths vary below this (cx_value's spread). */
#define M_SPREAD 240

/* Marks in the trace: the kind in the top byte, an operation or sync number below. */
enum m_mark { M_OP_BEGIN = 1, M_OP_END, M_SYNC_BEGIN, M_SYNC_END, M_NOTE };
#define M_MARK(kind, n) (((uint64_t)(kind) << 56) | (uint64_t)(n))
#define M_MARK_KIND(m) ((enum m_mark)((m) >> 56))
#define M_MARK_ARG(m) ((m) & ((1ull << 56) - 1))

struct m_op {
    int key;
    int64_t serial;  /* the value written, or -1 for a removal or a clear */
    uint64_t id;     /* the number its marks carry (a batch's first serial; 0: clear) */
    long begin, end; /* trace indices of its marks; end -1: never acknowledged */
    bool clear;
};

struct m_sync {
    long begin, end;
};

struct model {
    kvs_fsync policy;
    pthread_mutex_t lock; /* protects everything below while the workload runs */
    struct m_op *ops;
    size_t nops, cap_ops;
    size_t *key_ops[M_NKEYS]; /* each key's operations, in its order */
    size_t nkey_ops[M_NKEYS], cap_key_ops[M_NKEYS];
    struct m_sync *syncs;
    size_t nsyncs, cap_syncs;
    int64_t now[M_NKEYS]; /* the value each key has now, -1 absent */
    uint64_t next_serial;
    unsigned long errors; /* engine errors during the workload */
    char first_error[256];
    /* After m_finish(): sorted mark positions, for m_epoch(). */
    long *begins, *ends, *sync_ends;
    long *sync_begin_max; /* the latest sync begin among syncs ended by sync_ends[i] */
    size_t nbegins, nends;
};

void m_init(struct model *m, kvs_fsync policy);
void m_free(struct model *m);

/* The name of key k. */
const char *m_key(int k);

/* Workload requests: each marks the trace, calls the engine and records
   the operation. Return the engine's answer. Any thread, for keys no other
   thread writes meanwhile (m_clear: no other thread at all). */
int m_set(struct model *m, kvs_db *db, int key);
int m_del(struct model *m, kvs_db *db, int key);
int m_batch(struct model *m, kvs_db *db, const int *keys, const bool *del, size_t n);
int m_clear(struct model *m, kvs_db *db);
int m_sync(struct model *m, kvs_db *db);
/* Close db as a checkpoint (close flushes under every policy). */
int m_close(struct model *m, kvs_db *db);
/* A mark that only labels the trace (n: the caller's number). */
void m_note(unsigned n);

/* After the workload: sort what m_check() and m_epoch() search. */
void m_finish(struct model *m);

/*
 * m_epoch - a number that is equal for two cuts exactly when the model
 * allows the same values at both, so that a state already checked at one
 * need not be checked again at the other.
 */
uint64_t m_epoch(const struct model *m, size_t cut);

/* A key showing what it may not: found and the durable value (-1: absent). */
struct m_problem {
    int key;
    int64_t found, durable;
};
#define M_PROBLEMS_MAX 8

/*
 * m_check - read every key of db and compare with what the model allows at
 * cut. Returns the number of problems, described one per line in report
 * (size bytes); the first M_PROBLEMS_MAX wrong keys also go to problems
 * (NULL: not wanted), *nproblems of them.
 */
unsigned m_check(const struct model *m, size_t cut, kvs_db *db, char *report, size_t size,
                 struct m_problem *problems, size_t *nproblems);

/* Describe mark (an EV_MARK's data) in words, into buf. */
void m_describe_mark(const struct model *m, uint64_t mark, char *buf, size_t size);

#endif
