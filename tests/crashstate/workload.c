/* SPDX-License-Identifier: BSD-3-Clause */
/* The workload of the crash-state test; see workload.h. */
#include "workload.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "crash/crash.h"

#define ROUNDS 10
#define ROUND_OPS 30
#define GROUP_THREADS 3
#define GROUP_OPS 25
#define NHOT (M_NKEYS - WL_COLD)
#define PACED_OPS 100 /* PACED_MS apart */
#define PACED_MS 15

void wl_options(const struct wl_config *c, kvs_options *o)
{
    kvs_options_init(o);
    o->engine = c->engine;
    o->fsync = c->policy;
    o->segment_max_bytes = 4096;
    o->compact_min_stale_bytes = 4096;
    o->compact_min_stale_ratio = 0.5;
}

static int hot(uint64_t *rng)
{
    return WL_COLD + (int)(cx_rand(rng) % NHOT);
}

static int cold(uint64_t *rng)
{
    return (int)(cx_rand(rng) % WL_COLD);
}

/* n distinct keys, some removed, as one kvs_db_write(). */
static void batch(struct model *m, kvs_db *db, uint64_t *rng)
{
    int keys[8];
    bool del[8];
    size_t n = (size_t)cx_rand_range(rng, 2, 6);
    for (size_t i = 0; i < n; i++) {
        bool again;
        do {
            keys[i] = cx_rand(rng) % 4 ? hot(rng) : cold(rng);
            again = false;
            for (size_t j = 0; j < i; j++)
                again = again || keys[j] == keys[i];
        } while (again);
        del[i] = keys[i] >= WL_COLD && cx_rand(rng) % 5 == 0;
    }
    m_batch(m, db, keys, del, n);
}

/* One request of a round; dels: the share of removes, in percent. */
static void step(struct model *m, kvs_db *db, uint64_t *rng, unsigned dels)
{
    unsigned x = (unsigned)(cx_rand(rng) % 100);
    if (x < 80 - dels)
        m_set(m, db, hot(rng));
    else if (x < 80)
        m_del(m, db, hot(rng));
    else if (x < 86)
        m_set(m, db, cold(rng));
    else if (x < 93)
        batch(m, db, rng);
    else
        m_sync(m, db);
}

struct group_arg {
    struct model *m;
    kvs_db *db;
    unsigned id;
    uint64_t rng;
};

/* A writer of the group phase: the hot keys k with (k - WL_COLD) %
   GROUP_THREADS == id, so that no two threads share a key. */
static void *group_writer(void *p)
{
    struct group_arg *a = p;
    for (int i = 0; i < GROUP_OPS; i++) {
        int key;
        do
            key = hot(&a->rng);
        while ((unsigned)(key - WL_COLD) % GROUP_THREADS != a->id);
        unsigned x = (unsigned)(cx_rand(&a->rng) % 100);
        if (x < 80)
            m_set(a->m, a->db, key);
        else if (x < 95)
            m_del(a->m, a->db, key);
        else
            m_sync(a->m, a->db);
    }
    return NULL;
}

static void group(struct model *m, kvs_db *db, uint64_t *rng)
{
    pthread_t th[GROUP_THREADS];
    struct group_arg args[GROUP_THREADS];
    bool started[GROUP_THREADS];
    for (unsigned i = 0; i < GROUP_THREADS; i++) {
        args[i] = (struct group_arg){m, db, i, cx_rand(rng)};
        started[i] = pthread_create(&th[i], NULL, group_writer, &args[i]) == 0;
        if (!started[i])
            group_writer(&args[i]); /* its keys are its own all the same */
    }
    for (unsigned i = 0; i < GROUP_THREADS; i++) {
        if (started[i])
            pthread_join(th[i], NULL);
    }
}

/* Notes in the trace, so that a failure report shows where it was. */
enum { NOTE_ROUND = 1000, NOTE_COMPACT = 1, NOTE_GROUP, NOTE_REOPEN, NOTE_CLEAR, NOTE_PACED };

int wl_run(const struct wl_config *c, const char *dir, struct trace *t, struct model *m, char *why)
{
    kvs_options o;
    wl_options(c, &o);
    m_init(m, c->policy);
    uint64_t rng = c->seed;
    unsigned rounds = c->long_run ? 4 * ROUNDS : ROUNDS;
    tr_start(t, dir);
    kvs_db *db = NULL;
    int rc = kvs_db_open(dir, &o, &db, why);
    if (rc != 0)
        goto out;

    /* Fill in random order, a quarter of it in batches. */
    int order[M_NKEYS];
    for (int k = 0; k < M_NKEYS; k++)
        order[k] = k;
    for (int k = M_NKEYS - 1; k > 0; k--) {
        int j = (int)(cx_rand(&rng) % (uint64_t)(k + 1)), x = order[k];
        order[k] = order[j];
        order[j] = x;
    }
    bool no_del[8] = {false};
    m_batch(m, db, order, no_del, 8);
    m_batch(m, db, order + 8, no_del, 8);
    for (int k = 16; k < M_NKEYS; k++)
        m_set(m, db, order[k]);
    m_sync(m, db);

    for (unsigned r = 0; r < rounds; r++) {
        m_note(NOTE_ROUND + r);
        for (int i = 0; i < ROUND_OPS; i++)
            step(m, db, &rng, 12);
        m_sync(m, db);
        if (r % ROUNDS == ROUNDS / 4) {
            m_note(NOTE_COMPACT);
            rc = kvs_db_compact(db);
            if (rc != 0 && rc != KVS_ENOTSUP)
                m->errors++;
        }
        if (r % ROUNDS == ROUNDS / 2) {
            m_note(NOTE_GROUP);
            group(m, db, &rng);
        }
        if (r % ROUNDS == 2 * ROUNDS / 3) {
            m_note(NOTE_REOPEN);
            m_close(m, db);
            db = NULL;
            rc = kvs_db_open(dir, &o, &db, why);
            if (rc != 0)
                goto out;
        }
        if (r % ROUNDS == 3 * ROUNDS / 4) {
            m_note(NOTE_CLEAR);
            m_clear(m, db);
            for (int i = 0; i < 16; i++)
                m_set(m, db, (int)(cx_rand(&rng) % M_NKEYS));
            m_sync(m, db);
        }
    }
    if (c->policy != KVS_FSYNC_ALWAYS) {
        /* Long enough for the once-a-second sync to run at least once, and
           slow enough for background compactions to finish between two
           requests, with the last of them not yet synced. */
        m_note(NOTE_PACED);
        for (int i = 0; i < PACED_OPS; i++) {
            step(m, db, &rng, 20);
            cx_sleep_ms(PACED_MS);
        }
    }
    rc = m_close(m, db);
    db = NULL;
out:
    if (db)
        kvs_db_close(db);
    tr_stop();
    m_finish(m);
    return rc == 0 ? 0 : -1;
}
