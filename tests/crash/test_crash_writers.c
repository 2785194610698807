/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Crash test 1: kill -9 of kvs-server at random moments while 8 connections
 * write, on each engine, over the same data directory cycle after cycle.
 *
 * A cycle starts the server (fsync policy always, everysec, no in turn),
 * checks the whole key space against the model left by the previous cycle,
 * lets 8 hiredis writers SET and DEL for a random 20-200 ms and kills the
 * server with SIGKILL. With a process crash the page cache survives, so all
 * three policies must keep every acknowledged write.
 *
 * The key space makes the check exact. Each writer owns OWN keys: after a
 * crash such a key holds the writer's last acknowledged write, or the one
 * it had in flight (sent, no reply yet), and nothing else. SHARED keys are
 * written by all writers; each operation on them is logged with the clock
 * before sending and after the reply, and the key must end as one of the
 * operations that no acknowledged operation provably followed (one that
 * was sent after this one's reply arrived). Every value carries its key,
 * writer, sequence number and checksum (crash.h), and must equal byte for
 * byte the value that write sent. A deleted key must stay deleted, DBSIZE
 * must count exactly the keys present, and DEL on an owned key must answer
 * 1 or 0 exactly as the model says while the server runs.
 *
 * Figures (cycles, acknowledged writes, keys checked, in-flight outcomes,
 * compactions and torn tails seen in the server logs) go to stdout.
 * $KVS_CRASH_CYCLES sets the cycles per engine (default 90).
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crash.h"
#include "kvs/kvs.h"

#define WRITERS 8
#define OWN 40        /* keys each writer owns */
#define SHARED 16     /* keys every writer writes */
#define SPREAD 600    /* values are ~40 to ~640 bytes */
#define OPS_MAX 32768 /* shared-key operations logged per writer and cycle */

enum { OP_SET = 1, OP_DEL = 2 };

/* What a key is known to hold. */
struct state {
    bool present;
    unsigned writer;
    uint64_t seq;
};

/* One operation on a shared key. */
struct op {
    unsigned key;
    unsigned type;
    uint64_t seq;
    uint64_t t0; /* before sending */
    uint64_t t1; /* after the reply; 0: no reply (in flight at the kill) */
};

struct run;

struct writer {
    pthread_t th;
    unsigned id;
    uint64_t rng;
    struct run *run;
    struct state own[OWN]; /* acknowledged state of the owned keys */
    int fly_key;           /* owned key with an operation in flight, or -1 */
    unsigned fly_type;
    uint64_t fly_seq;
    struct op *ops; /* shared-key operations of this cycle */
    size_t nops;
    uint64_t seq; /* last sequence number used, across cycles */
    bool connected;
    unsigned long acked_sets, acked_dels; /* all keys, all cycles */
};

struct run {
    const char *engine;
    ts_server srv;
    pthread_barrier_t go;
    atomic_bool stop;
    struct writer w[WRITERS];
    struct state shared[SHARED]; /* state at the start of the cycle */
    /* figures */
    unsigned cycles;
    unsigned long acked_sets, acked_dels, keys_checked, values_checked;
    unsigned long fly_applied, fly_lost, shared_ops;
    unsigned long compactions, torn_cut, idle_cycles;
    bool broken; /* a writer saw a wrong DEL answer or an error reply */
};

static void own_key(char *out, unsigned w, unsigned i)
{
    snprintf(out, 32, "o%u-%u", w, i);
}

static void shared_key(char *out, unsigned j)
{
    snprintf(out, 32, "s-%u", j);
}

/* Send one SET or DEL; returns the reply (NULL: the connection is gone). */
static redisReply *send_op(redisContext *c, const char *key, unsigned type, unsigned w,
                           uint64_t seq)
{
    if (type == OP_DEL)
        return redisCommand(c, "DEL %s", key);
    char val[CX_VALUE_MAX];
    size_t len = cx_value(val, key, w, seq, SPREAD);
    return redisCommand(c, "SET %s %b", key, val, len);
}

static bool reply_ok(const redisReply *r, unsigned type, long long *deleted)
{
    if (type == OP_SET)
        return r->type == REDIS_REPLY_STATUS && strcmp(r->str, "OK") == 0;
    *deleted = r->integer;
    return r->type == REDIS_REPLY_INTEGER && (r->integer == 0 || r->integer == 1);
}

static void *writer_main(void *arg)
{
    struct writer *w = arg;
    struct run *run = w->run;
    redisContext *c = cx_connect(&run->srv, 5000);
    w->connected = c != NULL;
    pthread_barrier_wait(&run->go);
    while (c && !atomic_load(&run->stop)) {
        uint64_t r = cx_rand(&w->rng);
        unsigned type = r % 4 == 0 ? OP_DEL : OP_SET;
        uint64_t seq = ++w->seq;
        char key[32];
        if ((r >> 8) % 10 < 3 && w->nops < OPS_MAX) {
            unsigned j = (unsigned)((r >> 16) % SHARED);
            shared_key(key, j);
            struct op *op = &w->ops[w->nops++];
            *op = (struct op){.key = j, .type = type, .seq = seq, .t0 = cx_now_ns()};
            redisReply *rep = send_op(c, key, type, w->id, seq);
            if (!rep)
                break;
            long long del;
            bool ok = CK(reply_ok(rep, type, &del), "%s %s: unexpected reply type %d (%s)",
                         type == OP_SET ? "SET" : "DEL", key, rep->type,
                         rep->type == REDIS_REPLY_ERROR ? rep->str : "");
            freeReplyObject(rep);
            if (!ok) {
                run->broken = true;
                break;
            }
            op->t1 = cx_now_ns();
            *(type == OP_SET ? &w->acked_sets : &w->acked_dels) += 1;
            continue;
        }
        unsigned i = (unsigned)((r >> 16) % OWN);
        own_key(key, w->id, i);
        w->fly_key = (int)i;
        w->fly_type = type;
        w->fly_seq = seq;
        redisReply *rep = send_op(c, key, type, w->id, seq);
        if (!rep)
            break;
        long long del = 0;
        bool ok = CK(reply_ok(rep, type, &del), "%s %s: unexpected reply type %d (%s)",
                     type == OP_SET ? "SET" : "DEL", key, rep->type,
                     rep->type == REDIS_REPLY_ERROR ? rep->str : "");
        freeReplyObject(rep);
        if (ok && type == OP_DEL)
            ok = CK(del == (w->own[i].present ? 1 : 0), "DEL %s answered %lld, model says %s", key,
                    del, w->own[i].present ? "present" : "absent");
        if (!ok) {
            run->broken = true;
            break;
        }
        w->own[i] = (struct state){type == OP_SET, w->id, seq};
        w->fly_key = -1;
        *(type == OP_SET ? &w->acked_sets : &w->acked_dels) += 1;
    }
    if (c)
        redisFree(c);
    return NULL;
}

/* ---- checking the key space after a restart ---- */

/* Check a value reply against the state it claims; fills *got. */
static bool check_value(const redisReply *r, const char *key, struct state *got)
{
    if (r->type == REDIS_REPLY_NIL) {
        *got = (struct state){0};
        return true;
    }
    if (!CK(r->type == REDIS_REPLY_STRING, "GET %s: reply type %d (%s)", key, r->type,
            r->type == REDIS_REPLY_ERROR ? r->str : ""))
        return false;
    unsigned w;
    uint64_t seq;
    if (!CK(cx_value_parse(r->str, r->len, key, &w, &seq),
            "GET %s: corrupt value (%zu bytes, \"%.40s...\")", key, r->len, r->str))
        return false;
    char want[CX_VALUE_MAX];
    size_t len = cx_value(want, key, w, seq, SPREAD);
    if (!CK(len == r->len && memcmp(want, r->str, len) == 0,
            "GET %s: value of writer %u seq %" PRIu64 " differs from what was sent", key, w, seq))
        return false;
    *got = (struct state){true, w, seq};
    return true;
}

static bool same(const struct state *a, const struct state *b)
{
    return a->present == b->present &&
           (!a->present || (a->writer == b->writer && a->seq == b->seq));
}

static void check_own(struct run *run, struct writer *w, unsigned i, const redisReply *r)
{
    char key[32];
    own_key(key, w->id, i);
    struct state got;
    if (!check_value(r, key, &got))
        return;
    const struct state *acked = &w->own[i];
    bool fly = w->fly_key == (int)i;
    struct state alt = {fly && w->fly_type == OP_SET, w->id, w->fly_seq};
    bool ok = same(&got, acked) || (fly && same(&got, &alt));
    CK(ok,
       "%s holds %s (writer %u seq %" PRIu64 "); acknowledged: %s seq %" PRIu64
       "; in flight: %s seq %" PRIu64,
       key, got.present ? "a value" : "nothing", got.writer, got.seq,
       acked->present ? "SET" : "absent", acked->seq,
       fly ? (w->fly_type == OP_SET ? "SET" : "DEL") : "none", fly ? w->fly_seq : 0);
    if (fly && same(&got, acked) && !same(&got, &alt))
        run->fly_lost++;
    else if (fly && same(&got, &alt) && !same(&got, acked))
        run->fly_applied++;
    if (got.present)
        run->values_checked++;
    w->own[i] = got;
}

static void check_shared(struct run *run, unsigned j, const redisReply *r)
{
    char key[32];
    shared_key(key, j);
    struct state got;
    if (!check_value(r, key, &got))
        return;
    /* An operation is ruled out as the last one when an acknowledged
       operation was sent after its reply arrived. */
    uint64_t last_start = 0;
    for (unsigned k = 0; k < WRITERS; k++) {
        for (size_t i = 0; i < run->w[k].nops; i++) {
            const struct op *op = &run->w[k].ops[i];
            if (op->key == j && op->t1 && op->t0 > last_start)
                last_start = op->t0;
        }
    }
    bool ok = last_start == 0 && same(&got, &run->shared[j]);
    for (unsigned k = 0; !ok && k < WRITERS; k++) {
        for (size_t i = 0; !ok && i < run->w[k].nops; i++) {
            const struct op *op = &run->w[k].ops[i];
            if (op->key != j || (op->t1 && op->t1 < last_start))
                continue;
            struct state st = {op->type == OP_SET, k, op->seq};
            ok = same(&got, &st);
        }
    }
    CK(ok, "%s holds %s (writer %u seq %" PRIu64 "), not the result of a write that may be last",
       key, got.present ? "a value" : "nothing", got.writer, got.seq);
    if (got.present)
        run->values_checked++;
    run->shared[j] = got;
}

/* GET every key (pipelined) and DBSIZE; the model becomes what was found. */
static bool check_all(struct run *run)
{
    redisContext *c = cx_connect(&run->srv, 10000);
    if (!CK(c != NULL, "%s: cannot connect to check", run->engine))
        return false;
    char key[32];
    for (unsigned k = 0; k < WRITERS; k++) {
        for (unsigned i = 0; i < OWN; i++) {
            own_key(key, k, i);
            redisAppendCommand(c, "GET %s", key);
        }
    }
    for (unsigned j = 0; j < SHARED; j++) {
        shared_key(key, j);
        redisAppendCommand(c, "GET %s", key);
    }
    redisAppendCommand(c, "DBSIZE");
    unsigned long before = cx_failures();
    bool ok = true;
    long long present = 0;
    for (unsigned n = 0; ok && n < WRITERS * OWN + SHARED + 1; n++) {
        redisReply *r = NULL;
        ok = CK(redisGetReply(c, (void **)&r) == REDIS_OK && r, "%s: no reply to check %u: %s",
                run->engine, n, c->errstr);
        if (!ok)
            break;
        if (n < WRITERS * OWN) {
            struct writer *w = &run->w[n / OWN];
            check_own(run, w, n % OWN, r);
            present += w->own[n % OWN].present;
        } else if (n < WRITERS * OWN + SHARED) {
            check_shared(run, n - WRITERS * OWN, r);
            present += run->shared[n - WRITERS * OWN].present;
        } else {
            CK(r->type == REDIS_REPLY_INTEGER && r->integer == present,
               "DBSIZE %lld, but %lld keys are present", r->integer, present);
        }
        freeReplyObject(r);
    }
    redisFree(c);
    run->keys_checked += WRITERS * OWN + SHARED;
    for (unsigned k = 0; k < WRITERS; k++) {
        run->w[k].fly_key = -1;
        run->w[k].nops = 0;
    }
    return ok && cx_failures() == before;
}

/* ---- cycles ---- */

static unsigned count_in_file(const char *path, const char *needle)
{
    char *text = ts_read_file(path, NULL);
    unsigned n = 0;
    for (const char *p = text; p && (p = strstr(p, needle)) != NULL; p++)
        n++;
    free(text);
    return n;
}

/* One cycle's writing: start the writers, kill the server after ms. */
static void write_and_kill(struct run *run, unsigned ms)
{
    atomic_store(&run->stop, false);
    pthread_barrier_init(&run->go, NULL, WRITERS + 1);
    for (unsigned k = 0; k < WRITERS; k++)
        pthread_create(&run->w[k].th, NULL, writer_main, &run->w[k]);
    pthread_barrier_wait(&run->go);
    cx_sleep_ms(ms); /* the point of the test: a crash at a random moment */
    int st = ts_server_kill(&run->srv);
    CK(st == 137, "%s: kill -9 gave status %d", run->engine, st);
    atomic_store(&run->stop, true);
    unsigned long acked = run->acked_sets + run->acked_dels;
    run->acked_sets = run->acked_dels = 0;
    for (unsigned k = 0; k < WRITERS; k++) {
        pthread_join(run->w[k].th, NULL);
        CK(run->w[k].connected, "%s: writer %u could not connect", run->engine, k);
        run->shared_ops += run->w[k].nops;
        run->acked_sets += run->w[k].acked_sets;
        run->acked_dels += run->w[k].acked_dels;
    }
    pthread_barrier_destroy(&run->go);
    if (run->acked_sets + run->acked_dels == acked)
        run->idle_cycles++;
}

static void crash_writers(void *arg)
{
    const char *engine = arg;
    static const char *const policies[] = {"always", "everysec", "no"};
    unsigned cycles = cx_env_uint("KVS_CRASH_CYCLES", 90);
    struct run *run = calloc(1, sizeof(*run));
    char dir[PATH_MAX] = "", data[PATH_MAX + 8], log[PATH_MAX + 16];
    if (!CK(run && ts_tmpdir_make(dir) == 0, "no memory or temp dir"))
        goto out;
    snprintf(data, sizeof(data), "%s/data", dir);
    snprintf(log, sizeof(log), "%s/server.log", dir);
    run->engine = engine;
    uint64_t rng = cx_seed() ^ (uint64_t)engine[0] << 56;
    for (unsigned k = 0; k < WRITERS; k++) {
        run->w[k] = (struct writer){.id = k, .run = run, .fly_key = -1};
        run->w[k].rng = cx_rand(&rng);
        run->w[k].ops = malloc(OPS_MAX * sizeof(struct op));
        if (!CK(run->w[k].ops != NULL, "no memory"))
            goto out_dir;
    }
    for (unsigned cycle = 0; cycle <= cycles; cycle++) {
        const char *policy = policies[cycle % 3];
        if (!CK(cx_start(&run->srv, engine, data, policy, log),
                "%s: cycle %u: server did not come back", engine, cycle)) {
            cx_print_tail(log, 2000);
            goto out_dir;
        }
        bool ok = check_all(run);
        if (!ok || run->broken) {
            printf("  %s: cycle %u (fsync %s) failed its check\n", engine, cycle, policy);
            cx_print_tail(log, 2000);
            ts_server_kill(&run->srv);
            goto out_dir;
        }
        if (cycle == cycles)
            break;
        write_and_kill(run, (unsigned)cx_rand_range(&rng, 20, 200));
        run->cycles++;
        run->compactions += count_in_file(log, "compacted");
        run->torn_cut += count_in_file(log, "cutting torn record");
    }
    /* Finally a clean stop and start: the state must be exactly the model. */
    int st = ts_server_stop(&run->srv, 10000);
    CK(st == 0, "%s: SIGTERM exit status %d", engine, st);
    if (CK(cx_start(&run->srv, engine, data, NULL, log), "%s: no restart after stop", engine)) {
        check_all(run);
        ts_server_stop(&run->srv, 10000);
    }
    printf("  %s: %u kill -9 cycles (fsync always/everysec/no in turn), %lu shared-key "
           "operations\n",
           engine, run->cycles, run->shared_ops);
    printf("  %s: acknowledged writes %lu SET + %lu DEL; %lu keys checked after restarts, "
           "%lu values verified byte for byte\n",
           engine, run->acked_sets, run->acked_dels, run->keys_checked, run->values_checked);
    printf("  %s: in-flight owned-key writes at the kill: %lu found applied, %lu not; "
           "%lu cycles without an acknowledged write\n",
           engine, run->fly_applied, run->fly_lost, run->idle_cycles);
    printf("  %s: server logs: %lu compactions, %lu torn tails cut\n", engine, run->compactions,
           run->torn_cut);
out_dir:
    if (run && run->srv.pid > 0)
        ts_server_kill(&run->srv);
    if (dir[0])
        ts_tmpdir_remove(dir);
out:
    if (run) {
        for (unsigned k = 0; k < WRITERS; k++)
            free(run->w[k].ops);
    }
    free(run);
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    cx_seed();
    /* Every registered engine. */
    for (size_t i = 0; i < kvs_engine_count(); i++) {
        const char *engine = kvs_engine_name(kvs_engine_at(i));
        if (kvs_engine_traits(kvs_engine_at(i)) & KVS_ENGINE_VOLATILE) {
            /* kill -9 loses what came after its last snapshot, which
               this test does not model: test_crash_mem does. */
            printf("== engine %s: volatile, skipped\n", engine);
            continue;
        }
        char name[96];
        snprintf(name, sizeof(name), "kill -9 during 8 writers, engine %s", engine);
        cx_run(name, crash_writers, (void *)engine);
    }
    return cx_finish();
}
