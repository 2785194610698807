/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Crash test: kill -9 of kvs-server at random moments while 4 connections
 * write keys with expiry times, on each engine, over the same data
 * directory cycle after cycle (fsync always, everysec, no in turn).
 *
 * Each writer owns OWN keys and writes them with SET (no time, EX 1000,
 * PXAT at a unique absolute time, PX of 1-40 ms, KEEPTTL), SETEX, EXPIRE,
 * PEXPIREAT, PERSIST, GETEX PXAT/PERSIST and DEL. Its model of a key is
 * the value (writer and sequence number, in a self-checking value) and
 * the key's expiry time as a range: exact for absolute times, [clock
 * before sending, clock after the reply] plus the duration for relative
 * ones (client and server share the machine's clock).
 *
 * After each kill the server is started again and every key is checked
 * with GET and PEXPIRETIME: it must be in the state of its last
 * acknowledged write or of the write in flight at the kill; a key whose
 * time had surely passed must be gone, one whose time surely had not must
 * be there with its value and a time within its range, and a key without
 * a time must have none. Then, once every short time has passed, DBSIZE
 * must fall to the keys still alive without anyone reading the others:
 * the active expiry removes keys that expired across the crash.
 *
 * $KVS_CRASH_CYCLES sets the cycles per engine (default 30).
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crash.h"
#include "kvs/kvs.h"

#define WRITERS 4
#define OWN 50
#define SPREAD 200
#define LONG_S 1000            /* EX and EXPIRE times, seconds */
#define FAR_MS 4102444800000LL /* 2100-01-01: PXAT times are this plus a sequence number */
#define SHORT_MS_MAX 40        /* PX times are 1 to this */

/* A key as the model knows it. */
struct state {
    bool present;
    unsigned writer;
    uint64_t seq;
    int64_t lo, hi; /* its expiry time is in [lo, hi]; both 0: none */
};

enum op_kind {
    OP_SET,
    OP_SET_EX,
    OP_SET_PXAT,
    OP_SET_SHORT,
    OP_SET_KEEPTTL,
    OP_SETEX,
    OP_EXPIRE,
    OP_PEXPIREAT,
    OP_PERSIST,
    OP_GETEX_PXAT,
    OP_GETEX_PERSIST,
    OP_DEL,
    OP_KINDS
};

static const char *const op_names[] = {"SET",         "SET EX",     "SET PXAT",      "SET PX short",
                                       "SET KEEPTTL", "SETEX",      "EXPIRE",        "PEXPIREAT",
                                       "PERSIST",     "GETEX PXAT", "GETEX PERSIST", "DEL"};

struct run;

struct writer {
    pthread_t th;
    unsigned id;
    uint64_t rng;
    struct run *run;
    struct state own[OWN];
    int fly_key; /* key with a write in flight, or -1 */
    struct state fly;
    uint64_t seq;
    bool connected;
    unsigned long acked[OP_KINDS];
};

struct run {
    const char *engine;
    ts_server srv;
    pthread_barrier_t go;
    atomic_bool stop;
    struct writer w[WRITERS];
    unsigned cycles;
    unsigned long keys_checked, with_time, expired_at_check, fly_applied, fly_lost;
    unsigned long removed_by_expiry;
    bool broken;
};

static void own_key(char *out, unsigned w, unsigned i)
{
    snprintf(out, 32, "t%u-%u", w, i);
}

static bool has_time(const struct state *s)
{
    return s->hi != 0;
}

/* Whether the key is surely gone at now, surely there, or either. */
static bool surely_gone(const struct state *s, int64_t now)
{
    return !s->present || (has_time(s) && s->hi <= now);
}

static bool surely_alive(const struct state *s, int64_t now)
{
    return s->present && (!has_time(s) || s->lo > now);
}

/* Apply a write to the model: what the key holds once it was applied,
   given that it was sent at t0 and answered by t1 (wall clock, ms). */
static struct state applied(const struct state *before, enum op_kind kind, unsigned writer,
                            uint64_t seq, int64_t t0, int64_t t1, int64_t arg)
{
    struct state s = *before;
    struct state fresh = {true, writer, seq, 0, 0};
    switch (kind) {
    case OP_SET:
        return fresh;
    case OP_SET_EX:
    case OP_SETEX:
        fresh.lo = t0 + LONG_S * 1000;
        fresh.hi = t1 + LONG_S * 1000;
        return fresh;
    case OP_SET_PXAT:
        fresh.lo = fresh.hi = arg;
        return fresh;
    case OP_SET_SHORT:
        fresh.lo = t0 + arg;
        fresh.hi = t1 + arg;
        return fresh;
    case OP_SET_KEEPTTL: /* only on keys surely there or surely gone */
        fresh.lo = s.present ? s.lo : 0;
        fresh.hi = s.present ? s.hi : 0;
        return fresh;
    case OP_EXPIRE:
        if (s.present) {
            s.lo = t0 + LONG_S * 1000;
            s.hi = t1 + LONG_S * 1000;
        }
        return s;
    case OP_PEXPIREAT:
    case OP_GETEX_PXAT:
        if (s.present)
            s.lo = s.hi = arg;
        return s;
    case OP_PERSIST:
    case OP_GETEX_PERSIST:
        s.lo = s.hi = 0;
        return s;
    case OP_DEL:
    default:
        return (struct state){0};
    }
}

/* Send one write. */
static redisReply *send_op(redisContext *c, const char *key, enum op_kind kind, unsigned w,
                           uint64_t seq, int64_t arg)
{
    char val[CX_VALUE_MAX];
    size_t len = cx_value(val, key, w, seq, SPREAD);
    switch (kind) {
    case OP_SET:
        return redisCommand(c, "SET %s %b", key, val, len);
    case OP_SET_EX:
        return redisCommand(c, "SET %s %b EX %d", key, val, len, LONG_S);
    case OP_SET_PXAT:
        return redisCommand(c, "SET %s %b PXAT %lld", key, val, len, (long long)arg);
    case OP_SET_SHORT:
        return redisCommand(c, "SET %s %b PX %lld", key, val, len, (long long)arg);
    case OP_SET_KEEPTTL:
        return redisCommand(c, "SET %s %b KEEPTTL", key, val, len);
    case OP_SETEX:
        return redisCommand(c, "SETEX %s %d %b", key, LONG_S, val, len);
    case OP_EXPIRE:
        return redisCommand(c, "EXPIRE %s %d", key, LONG_S);
    case OP_PEXPIREAT:
        return redisCommand(c, "PEXPIREAT %s %lld", key, (long long)arg);
    case OP_PERSIST:
        return redisCommand(c, "PERSIST %s", key);
    case OP_GETEX_PXAT:
        return redisCommand(c, "GETEX %s PXAT %lld", key, (long long)arg);
    case OP_GETEX_PERSIST:
        return redisCommand(c, "GETEX %s PERSIST", key);
    case OP_DEL:
    default:
        return redisCommand(c, "DEL %s", key);
    }
}

/* The reply a write must get, given the state before it (surely there or
   surely gone: the writer sends nothing else to a key in doubt). */
static bool reply_ok(const redisReply *r, enum op_kind kind, const struct state *before)
{
    switch (kind) {
    case OP_EXPIRE:
    case OP_PEXPIREAT:
        return r->type == REDIS_REPLY_INTEGER && r->integer == before->present;
    case OP_PERSIST:
        return r->type == REDIS_REPLY_INTEGER &&
               r->integer == (before->present && has_time(before));
    case OP_GETEX_PXAT:
    case OP_GETEX_PERSIST:
        return before->present ? r->type == REDIS_REPLY_STRING : r->type == REDIS_REPLY_NIL;
    case OP_DEL:
        return r->type == REDIS_REPLY_INTEGER && r->integer == before->present;
    default:
        return r->type == REDIS_REPLY_STATUS && strcmp(r->str, "OK") == 0;
    }
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
        unsigned i = (unsigned)(r % OWN);
        enum op_kind kind = (enum op_kind)((r >> 16) % OP_KINDS);
        struct state *st = &w->own[i];
        int64_t now = kvs_now_ms();
        if (surely_gone(st, now))
            *st = (struct state){0};
        /* A key whose short time may pass before the write is executed
           (a slow machine may take a while) gets only writes whose
           outcome does not depend on it. */
        bool doubt = !surely_gone(st, now) && !surely_alive(st, now + 2000);
        if (doubt && kind != OP_SET && kind != OP_SET_EX && kind != OP_SET_PXAT && kind != OP_SETEX)
            kind = OP_SET;
        uint64_t seq = ++w->seq;
        int64_t arg = 0;
        if (kind == OP_SET_PXAT || kind == OP_PEXPIREAT || kind == OP_GETEX_PXAT)
            arg = FAR_MS + (int64_t)(seq * WRITERS + w->id);
        else if (kind == OP_SET_SHORT)
            arg = (int64_t)cx_rand_range(&w->rng, 1, SHORT_MS_MAX);
        char key[32];
        own_key(key, w->id, i);
        int64_t t0 = kvs_now_ms();
        /* The in-flight state, as if answered the moment it was sent or
           now: refined by t1 once answered. */
        w->fly = applied(st, kind, w->id, seq, t0, t0 + 60000, arg);
        w->fly_key = (int)i;
        redisReply *rep = send_op(c, key, kind, w->id, seq, arg);
        if (!rep)
            break;
        int64_t t1 = kvs_now_ms();
        bool ok = CK(reply_ok(rep, kind, st), "%s %s: unexpected reply type %d (%s) for a key %s",
                     op_names[kind], key, rep->type, rep->str ? rep->str : "",
                     st->present ? "present" : "absent");
        freeReplyObject(rep);
        if (!ok) {
            run->broken = true;
            break;
        }
        *st = applied(st, kind, w->id, seq, t0, t1, arg);
        w->fly_key = -1;
        w->acked[kind]++;
    }
    if (c)
        redisFree(c);
    return NULL;
}

/* ---- checking after a restart ---- */

struct got {
    bool present;
    unsigned writer;
    uint64_t seq;
    long long at; /* PEXPIRETIME: -1 none, -2 gone by then */
};

/* Whether what was found fits state s, judged between check_start (before
   the GET) and check_end (after PEXPIRETIME). */
static bool fits(const struct state *s, const struct got *g, int64_t check_start, int64_t check_end)
{
    if (surely_gone(s, check_start))
        return !g->present;
    if (!g->present)
        return !surely_alive(s, check_end);
    if (g->writer != s->writer || g->seq != s->seq)
        return false;
    if (!has_time(s))
        return g->at == -1;
    /* Gone between the GET and PEXPIRETIME: only if its time allows. */
    if (g->at == -2)
        return !surely_alive(s, check_end);
    return g->at >= s->lo && g->at <= s->hi;
}

static bool check_all(struct run *run, int64_t *alive_out, int64_t *last_hi)
{
    redisContext *c = cx_connect(&run->srv, 10000);
    if (!CK(c != NULL, "%s: cannot connect to check", run->engine))
        return false;
    char key[32];
    int64_t check_start = kvs_now_ms();
    for (unsigned k = 0; k < WRITERS; k++) {
        for (unsigned i = 0; i < OWN; i++) {
            own_key(key, k, i);
            redisAppendCommand(c, "GET %s", key);
            redisAppendCommand(c, "PEXPIRETIME %s", key);
        }
    }
    unsigned long before = cx_failures();
    struct got got[WRITERS][OWN];
    bool ok = true;
    for (unsigned n = 0; ok && n < WRITERS * OWN; n++) {
        redisReply *v = NULL, *t = NULL;
        ok = CK(redisGetReply(c, (void **)&v) == REDIS_OK && v &&
                    redisGetReply(c, (void **)&t) == REDIS_OK && t,
                "%s: no reply to check %u: %s", run->engine, n, c->errstr);
        if (!ok) {
            if (v)
                freeReplyObject(v);
            break;
        }
        struct got *g = &got[n / OWN][n % OWN];
        own_key(key, n / OWN, n % OWN);
        *g = (struct got){.at = -2};
        if (v->type == REDIS_REPLY_STRING) {
            ok = CK(cx_value_parse(v->str, v->len, key, &g->writer, &g->seq),
                    "GET %s: corrupt value (%zu bytes)", key, v->len);
            g->present = ok;
        } else {
            ok = CK(v->type == REDIS_REPLY_NIL, "GET %s: reply type %d", key, v->type);
        }
        ok =
            ok && CK(t->type == REDIS_REPLY_INTEGER, "PEXPIRETIME %s: reply type %d", key, t->type);
        if (ok)
            g->at = t->integer;
        freeReplyObject(v);
        freeReplyObject(t);
    }
    int64_t check_end = kvs_now_ms();
    redisFree(c);
    if (!ok)
        return false;
    int64_t alive = 0;
    *last_hi = 0;
    for (unsigned k = 0; k < WRITERS; k++) {
        struct writer *w = &run->w[k];
        for (unsigned i = 0; i < OWN; i++) {
            own_key(key, k, i);
            const struct got *g = &got[k][i];
            const struct state *acked = &w->own[i];
            bool fly = w->fly_key == (int)i;
            bool as_acked = fits(acked, g, check_start, check_end);
            bool as_fly = fly && fits(&w->fly, g, check_start, check_end);
            CK(as_acked || as_fly,
               "%s: holds %s (writer %u seq %" PRIu64 ", time %lld); acknowledged: %s seq %" PRIu64
               " time [%" PRId64 ", %" PRId64 "]%s",
               key, g->present ? "a value" : "nothing", g->writer, g->seq, g->at,
               acked->present ? "present" : "absent", acked->seq, acked->lo, acked->hi,
               fly ? "; a write was in flight" : "");
            if (fly && as_fly && !as_acked)
                run->fly_applied++;
            else if (fly && as_acked && !as_fly)
                run->fly_lost++;
            run->expired_at_check += !g->present && acked->present;
            /* The model becomes what was found. */
            struct state now = {0};
            if (g->present && g->at != -2) {
                now = (struct state){true, g->writer, g->seq, 0, 0};
                if (g->at >= 0)
                    now.lo = now.hi = g->at;
            }
            w->own[i] = now;
            run->keys_checked++;
            run->with_time += has_time(&now);
            if (now.present && (!has_time(&now) || now.lo > check_end + 60000))
                alive++;
            if (now.present && has_time(&now) && now.hi <= check_end + 60000 && now.hi > *last_hi)
                *last_hi = now.hi;
        }
        w->fly_key = -1;
    }
    *alive_out = alive;
    return cx_failures() == before;
}

/* Once every short time has passed, DBSIZE falls to the live keys with no
   key read: the active expiry removed the rest. */
static bool await_expired_removed(struct run *run, int64_t alive, int64_t last_hi)
{
    while (kvs_now_ms() <= last_hi)
        cx_sleep_ms(5);
    redisContext *c = cx_connect(&run->srv, 10000);
    if (!CK(c != NULL, "%s: cannot connect", run->engine))
        return false;
    long long n = -1, first = -1;
    double deadline = cx_now() + 20;
    while (cx_now() < deadline) {
        redisReply *r = redisCommand(c, "DBSIZE");
        if (!CK(r && r->type == REDIS_REPLY_INTEGER, "%s: DBSIZE failed", run->engine))
            break;
        n = r->integer;
        freeReplyObject(r);
        if (first < 0)
            first = n;
        if (n == alive)
            break;
        cx_sleep_ms(20); /* a cycle runs every 100 ms */
    }
    redisFree(c);
    if (first > alive)
        run->removed_by_expiry += (unsigned long)(first - alive);
    return CK(n == alive, "%s: DBSIZE stays %lld; %lld keys are alive", run->engine, n,
              (long long)alive);
}

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
    for (unsigned k = 0; k < WRITERS; k++) {
        pthread_join(run->w[k].th, NULL);
        CK(run->w[k].connected, "%s: writer %u could not connect", run->engine, k);
    }
    pthread_barrier_destroy(&run->go);
}

static void crash_expiry(void *arg)
{
    const char *engine = arg;
    static const char *const policies[] = {"always", "everysec", "no"};
    unsigned cycles = cx_env_uint("KVS_CRASH_CYCLES", 30);
    struct run *run = calloc(1, sizeof(*run));
    char dir[PATH_MAX] = "", data[PATH_MAX + 8], log[PATH_MAX + 16];
    if (!CK(run && ts_tmpdir_make(dir) == 0, "no memory or temp dir"))
        goto out;
    snprintf(data, sizeof(data), "%s/data", dir);
    snprintf(log, sizeof(log), "%s/server.log", dir);
    run->engine = engine;
    uint64_t rng = cx_seed() ^ (uint64_t)engine[0] << 56 ^ 0x5eed;
    for (unsigned k = 0; k < WRITERS; k++) {
        run->w[k] = (struct writer){.id = k, .run = run, .fly_key = -1};
        run->w[k].rng = cx_rand(&rng);
    }
    for (unsigned cycle = 0; cycle <= cycles; cycle++) {
        const char *policy = policies[cycle % 3];
        if (!CK(cx_start(&run->srv, engine, data, policy, log),
                "%s: cycle %u: server did not come back", engine, cycle)) {
            cx_print_tail(log, 2000);
            goto out_dir;
        }
        int64_t alive = 0, last_hi = 0;
        bool ok = check_all(run, &alive, &last_hi) && await_expired_removed(run, alive, last_hi);
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
    }
    int st = ts_server_stop(&run->srv, 10000);
    CK(st == 0, "%s: SIGTERM exit status %d", engine, st);
    unsigned long acked = 0;
    for (unsigned k = 0; k < WRITERS; k++)
        for (int o = 0; o < OP_KINDS; o++)
            acked += run->w[k].acked[o];
    printf("  %s: %u kill -9 cycles (fsync always/everysec/no in turn), %lu acknowledged "
           "writes with times (SET EX/PXAT/PX/KEEPTTL, SETEX, EXPIRE, PEXPIREAT, PERSIST, "
           "GETEX, DEL)\n",
           engine, run->cycles, acked);
    printf("  %s: %lu keys checked after restarts (%lu with a time kept exactly), %lu found "
           "expired; in flight at the kill: %lu applied, %lu not; %lu expired keys removed "
           "by the active expiry after restarts\n",
           engine, run->keys_checked, run->with_time, run->expired_at_check, run->fly_applied,
           run->fly_lost, run->removed_by_expiry);
out_dir:
    if (run && run->srv.pid > 0)
        ts_server_kill(&run->srv);
    if (dir[0])
        ts_tmpdir_remove(dir);
out:
    free(run);
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    cx_seed();
    for (size_t i = 0; i < kvs_engine_count(); i++) {
        const char *engine = kvs_engine_name(kvs_engine_at(i));
        if (kvs_engine_traits(kvs_engine_at(i)) & KVS_ENGINE_VOLATILE) {
            /* kill -9 loses what came after its last snapshot, which
               this test does not model: test_crash_mem does. */
            printf("== engine %s: volatile, skipped\n", engine);
            continue;
        }
        char name[96];
        snprintf(name, sizeof(name), "kill -9 during writes with expiry times, engine %s", engine);
        cx_run(name, crash_expiry, (void *)engine);
    }
    return cx_finish();
}
