/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Crash test 2: kill -9 during compaction and during a slow open, through
 * libkvs directly (kvs-server has no flag for small segments or compaction
 * thresholds, so compaction cannot be made frequent through it).
 *
 * Compaction: a forked child opens the store with 4 KiB segments and tiny
 * compaction thresholds, so that the background thread compacts every few
 * dozen writes, and overwrites and deletes keys in a loop. Before each
 * operation it tells the parent over a pipe what it is about to do, after
 * it what the engine answered; a crash hook (kvs__log_crash_hook, the
 * engine's test hook) reports each compaction step. The child dies by
 * SIGKILL in one of three ways, in turn:
 *   time  the parent kills it 5-150 ms after it opened the store;
 *   step  the parent kills it as soon as it hears of the n-th compaction
 *         step (n random), so the kill lands inside or just after a step;
 *   hook  the child kills itself inside compaction m at step s (s cycles
 *         through all six steps) while its writer thread keeps writing.
 * The parent then reopens the store and checks that every key holds its
 * last acknowledged value, or the one in flight, byte for byte, that
 * deleted keys stay deleted, that the key count is exact and that no
 * temporary file survives the open. The model carries over from cycle to
 * cycle, on the same directory.
 *
 * Slow open: a store of many small segments whose compaction outputs have
 * lost their hints (so open scans them and writes every hint again) and
 * whose newest segment ends in a torn record. A child opens it and is
 * killed at a random moment of the open; the reopen must succeed with
 * everything, every time.
 *
 * lmdb: the same kill-while-writing cycles ("time" only: it does not
 * compact). Its open is a mapping and takes no time to speak of, so the
 * slow-open case is run on the kvs engine only.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "crash.h"
#include "engines/log/klog_db.h"
#include "kvs/kvs.h"

#define NKEYS 256
#define SPREAD 500

enum { OP_SET = 1, OP_DEL = 2 };

/* What the child tells the parent; 16 bytes, so each write is atomic. */
enum { M_OPENED = 1, M_INTENT, M_ACK, M_STEP, M_BAD, M_OPEN_FAILED };
struct msg {
    uint8_t kind;
    uint8_t op;
    int16_t rc; /* M_ACK, M_BAD: the engine's answer; M_STEP: the step */
    uint32_t key;
    uint64_t seq;
};

/* The parent's model of the store, carried from cycle to cycle. */
struct model {
    unsigned nkeys;
    bool *present;
    uint64_t *seq;
    uint64_t next_seq;
    int fly_key; /* key with an operation in flight at the kill, or -1 */
    unsigned fly_op;
    uint64_t fly_seq;
};

enum mode { MODE_TIME, MODE_STEP, MODE_HOOK };
static const char *const mode_names[] = {"time", "step", "hook"};

struct figures {
    unsigned cycles[3];
    unsigned long acked, keys_checked, values_checked, steps_seen;
    unsigned kills_in_compaction, fly_applied, fly_lost;
    unsigned hook_steps[7];
};

static void key_name(char *out, unsigned k)
{
    snprintf(out, 32, "k%05u", k);
}

static bool model_init(struct model *m, unsigned nkeys)
{
    *m = (struct model){.nkeys = nkeys, .fly_key = -1, .next_seq = 1};
    m->present = calloc(nkeys, sizeof(bool));
    m->seq = calloc(nkeys, sizeof(uint64_t));
    return m->present && m->seq;
}

static void model_free(struct model *m)
{
    free(m->present);
    free(m->seq);
}

static void fill_opts(kvs_options *o, const char *engine, kvs_fsync policy)
{
    kvs_options_init(o);
    o->engine = engine;
    o->fsync = policy;
    o->segment_max_bytes = 4096;
    o->compact_min_stale_bytes = 16384;
    o->compact_min_stale_ratio = 0.3;
}

/* ---- the child ---- */

static int child_fd = -1;
static int hook_step, hook_compaction, hook_starts;

static void send_msg(uint8_t kind, uint8_t op, int rc, uint32_t key, uint64_t seq)
{
    struct msg m = {kind, op, (int16_t)rc, key, seq};
    while (write(child_fd, &m, sizeof(m)) < 0 && errno == EINTR)
        ;
}

/* Called by the compaction thread at each numbered step. */
static void on_step(int step)
{
    send_msg(M_STEP, 0, step, 0, 0);
    if (step == 1)
        hook_starts++;
    if (hook_step == step && hook_starts == hook_compaction)
        raise(SIGKILL);
}

/* Write forever (until killed); m is the child's copy of the model. */
static void child_main(const char *dir, const kvs_options *o, struct model *m, uint64_t rng)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (!strcmp(o->engine, "kvs"))
        kvs__log_crash_hook = on_step;
    kvs_db *db = NULL;
    int rc = kvs_db_open(dir, o, &db, NULL);
    if (rc != 0) {
        send_msg(M_OPEN_FAILED, 0, rc, 0, 0);
        _exit(3);
    }
    send_msg(M_OPENED, 0, 0, 0, 0);
    char key[32], val[CX_VALUE_MAX];
    for (;;) {
        uint64_t r = cx_rand(&rng);
        unsigned k = (unsigned)(r % m->nkeys);
        unsigned op = (r >> 32) % 10 < 3 ? OP_DEL : OP_SET;
        uint64_t seq = m->next_seq++;
        key_name(key, k);
        send_msg(M_INTENT, (uint8_t)op, 0, k, seq);
        if (op == OP_SET) {
            size_t len = cx_value(val, key, 0, seq, SPREAD);
            rc = kvs_db_set(db, kvs_slice_of(key, strlen(key)), kvs_slice_of(val, len));
        } else {
            rc = kvs_db_remove(db, kvs_slice_of(key, strlen(key)));
        }
        bool ok = op == OP_SET ? rc == 0 : rc == (m->present[k] ? 0 : KVS_ENOTFOUND);
        if (!ok) {
            send_msg(M_BAD, (uint8_t)op, rc, k, seq);
            _exit(4);
        }
        send_msg(M_ACK, (uint8_t)op, rc, k, seq);
        m->present[k] = op == OP_SET;
        m->seq[k] = seq;
    }
}

/* ---- the parent ---- */

static void apply(struct model *m, struct figures *f, const struct msg *g, const char *what)
{
    switch (g->kind) {
    case M_INTENT:
        m->fly_key = (int)g->key;
        m->fly_op = g->op;
        m->fly_seq = g->seq;
        m->next_seq = g->seq + 1;
        break;
    case M_ACK:
        CK(m->fly_key == (int)g->key && m->fly_seq == g->seq, "%s: ack without intent", what);
        m->present[g->key] = g->op == OP_SET;
        m->seq[g->key] = g->seq;
        m->fly_key = -1;
        f->acked++;
        break;
    case M_STEP:
        f->steps_seen++;
        break;
    case M_BAD:
        CK(false, "%s: %s of key %u answered %s", what, g->op == OP_SET ? "set" : "remove", g->key,
           kvs_strerror(g->rc));
        break;
    case M_OPEN_FAILED:
        CK(false, "%s: the child could not open the store: %s", what, kvs_strerror(g->rc));
        break;
    }
}

/* Read what is there (blocking up to ms; -1 forever); false at EOF. */
static bool read_msgs(int fd, int ms, struct msg *buf, size_t *n)
{
    *n = 0;
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, ms) <= 0)
        return true;
    ssize_t got = read(fd, buf, 256 * sizeof(*buf));
    if (got <= 0)
        return got < 0 && errno == EINTR;
    *n = (size_t)got / sizeof(*buf);
    return true;
}

/* Reopen and compare the whole key space with the model, which then
   becomes what was found. */
static void verify(const char *dir, const kvs_options *o, struct model *m, struct figures *f,
                   const char *what)
{
    kvs_db *db = NULL;
    char why[KVS_WHY_MAX] = "";
    int rc = kvs_db_open(dir, o, &db, why);
    if (!CK(rc == 0, "%s: reopen failed: %s (%s)", what, kvs_strerror(rc), why))
        return;
    char key[32], want[CX_VALUE_MAX];
    kvs_buf val = KVS_BUF_INIT;
    uint64_t present = 0;
    for (unsigned k = 0; k < m->nkeys; k++) {
        key_name(key, k);
        rc = kvs_db_get(db, kvs_slice_of(key, strlen(key)), &val);
        bool fly = m->fly_key == (int)k;
        bool got = rc == 0;
        if (!CK(rc == 0 || rc == KVS_ENOTFOUND, "%s: get %s: %s", what, key, kvs_strerror(rc)))
            continue;
        bool match_acked = got == m->present[k];
        bool match_fly = fly && got == (m->fly_op == OP_SET);
        uint64_t seq = 0;
        if (got) {
            unsigned w;
            bool sane = cx_value_parse(val.data, val.len, key, &w, &seq);
            if (!CK(sane, "%s: %s holds a corrupt value (%zu bytes)", what, key, val.len))
                continue;
            match_acked = match_acked && seq == m->seq[k];
            match_fly = match_fly && seq == m->fly_seq;
            size_t len = cx_value(want, key, 0, seq, SPREAD);
            CK(len == val.len && !memcmp(want, val.data, len), "%s: %s value differs", what, key);
            f->values_checked++;
            present++;
        }
        CK(match_acked || match_fly,
           "%s: %s is %s (seq %" PRIu64 "); acknowledged %s seq %" PRIu64
           ", in flight %s seq %" PRIu64,
           what, key, got ? "present" : "absent", seq, m->present[k] ? "present" : "absent",
           m->seq[k], fly ? (m->fly_op == OP_SET ? "set" : "remove") : "none",
           fly ? m->fly_seq : 0);
        if (fly && match_fly && !match_acked)
            f->fly_applied++;
        else if (fly && match_acked && !match_fly)
            f->fly_lost++;
        m->present[k] = got;
        if (got)
            m->seq[k] = seq;
        f->keys_checked++;
    }
    m->fly_key = -1;
    kvs_stats st;
    CK(kvs_db_stats(db, &st) == 0 && st.keys == present,
       "%s: stats say %" PRIu64 " keys, %" PRIu64 " present", what, st.keys, present);
    kvs_buf_free(&val);
    CK(kvs_db_close(db) == 0, "%s: close failed", what);
    char names[8][CX_NAME_MAX];
    CK(cx_list(dir, "", ".tmp", names, 8) == 0, "%s: a .tmp file survived the open", what);
}

/* Round i of a mode: fork a writer, kill it as mode says, verify. */
static void cycle(const char *dir, const char *engine, enum mode mode, unsigned i, struct model *m,
                  struct figures *f, uint64_t *rng)
{
    static const kvs_fsync policies[] = {KVS_FSYNC_ALWAYS, KVS_FSYNC_EVERYSEC, KVS_FSYNC_NO};
    /* Policies rotate across the rounds, and across the hook's steps. */
    kvs_options o;
    fill_opts(&o, engine, policies[(i + i / 6) % 3]);
    char what[96];
    snprintf(what, sizeof(what), "%s %s cycle %u (fsync %s)", engine, mode_names[mode], i,
             kvs_fsync_name(o.fsync));
    unsigned kill_ms = (unsigned)cx_rand_range(rng, 5, 150);
    unsigned kill_step = (unsigned)cx_rand_range(rng, 1, 12);
    hook_step = mode == MODE_HOOK ? (int)(i % 6) + 1 : 0;
    hook_compaction = (int)cx_rand_range(rng, 1, 3);
    hook_starts = 0;
    uint64_t child_rng = cx_rand(rng);
    int p[2];
    if (!CK(pipe2(p, O_CLOEXEC) == 0, "pipe"))
        return;
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        close(p[0]);
        child_fd = p[1];
        child_main(dir, &o, m, child_rng);
    }
    close(p[1]);
    if (!CK(pid > 0, "fork")) {
        close(p[0]);
        return;
    }
    /* Listen until the kill moment (or, for hook, until the child dies). */
    struct msg buf[256];
    size_t nb;
    uint64_t opened = 0, deadline = cx_now_ns() + 5000000000ull;
    int last_step = 6;
    unsigned steps = 0;
    bool alive = true;
    while (alive) {
        uint64_t now = cx_now_ns();
        if (opened && mode == MODE_TIME && now >= opened + kill_ms * 1000000ull)
            break;
        if (now >= deadline) {
            CK(mode != MODE_HOOK, "%s: the hook never fired", what);
            break;
        }
        alive = read_msgs(p[0], 2, buf, &nb);
        for (size_t j = 0; j < nb; j++) {
            if (buf[j].kind == M_OPENED)
                opened = cx_now_ns();
            if (buf[j].kind == M_STEP) {
                last_step = buf[j].rc;
                steps++;
            }
            apply(m, f, &buf[j], what);
        }
        if (mode == MODE_STEP && steps >= kill_step)
            break;
    }
    kill(pid, SIGKILL);
    int ws;
    waitpid(pid, &ws, 0);
    CK(WIFSIGNALED(ws) && WTERMSIG(ws) == SIGKILL, "%s: the child ended with status 0x%x", what,
       ws);
    /* What the child wrote before it died still counts. */
    while (read_msgs(p[0], 1000, buf, &nb) && nb) {
        for (size_t j = 0; j < nb; j++) {
            if (buf[j].kind == M_STEP)
                last_step = buf[j].rc;
            apply(m, f, &buf[j], what);
        }
    }
    close(p[0]);
    CK(opened != 0, "%s: the child never opened the store", what);
    if (mode == MODE_HOOK &&
        CK(last_step == hook_step, "%s: died at step %d, not %d", what, last_step, hook_step))
        f->hook_steps[hook_step]++;
    if (last_step != 6)
        f->kills_in_compaction++;
    f->cycles[mode]++;
    verify(dir, &o, m, f, what);
}

struct lib_case {
    const char *engine;
    unsigned per_mode; /* cycles per kill mode */
    unsigned modes;    /* 1: time only; 3: all */
};

static void crash_library(void *arg)
{
    const struct lib_case *c = arg;
    char dir[PATH_MAX];
    struct model m;
    struct figures f = {0};
    if (!CK(ts_tmpdir_make(dir) == 0 && model_init(&m, NKEYS), "temp dir or memory"))
        return;
    uint64_t rng = cx_seed() ^ 0x11 ^ (uint64_t)c->engine[0] << 48;
    unsigned long failed = cx_failures();
    for (unsigned n = 0; n < c->per_mode * c->modes && cx_failures() == failed; n++)
        cycle(dir, c->engine, (enum mode)(n % c->modes), n / c->modes, &m, &f, &rng);
    printf("  %s: %u kill -9 cycles (time %u, step %u, hook %u); %lu acknowledged operations; "
           "%lu keys checked, %lu values verified\n",
           c->engine, f.cycles[0] + f.cycles[1] + f.cycles[2], f.cycles[0], f.cycles[1],
           f.cycles[2], f.acked, f.keys_checked, f.values_checked);
    if (!strcmp(c->engine, "kvs"))
        printf("  %s: %lu compaction steps reported; %u kills with a compaction between steps; "
               "hook kills at steps 1-6: %u %u %u %u %u %u; in flight at the kill: %u applied, "
               "%u not\n",
               c->engine, f.steps_seen, f.kills_in_compaction, f.hook_steps[1], f.hook_steps[2],
               f.hook_steps[3], f.hook_steps[4], f.hook_steps[5], f.hook_steps[6], f.fly_applied,
               f.fly_lost);
    model_free(&m);
    ts_tmpdir_remove(dir);
}

/* ---- kill -9 during a slow open ---- */

#define BIG_KEYS 2500

/* The newest segment as built, and the last record in it. */
static char newest[PATH_MAX];
static unsigned char *newest_data;
static size_t newest_len;
static struct cx_rec newest_last;

/* Remove every hint and end the newest segment in a torn record (its last
   record again, 5 bytes short): what open has to repair. */
static bool make_open_slow(const char *dir)
{
    static char names[4096][CX_NAME_MAX];
    int n = cx_list(dir, "seg-", ".hint", names, 4096);
    for (int i = 0; i < n && i < 4096; i++) {
        char path[PATH_MAX + CX_NAME_MAX];
        if (snprintf(path, sizeof(path), "%s/%s", dir, names[i]) >= (int)sizeof(path) ||
            unlink(path) != 0)
            return false;
    }
    return cx_write_file(newest, newest_data, newest_len) &&
           cx_append_file(newest, newest_data + newest_last.off, newest_last.len - 5);
}

static void slow_open(void *arg)
{
    (void)arg;
    char dir[PATH_MAX];
    struct model m;
    struct figures f = {0};
    if (!CK(ts_tmpdir_make(dir) == 0 && model_init(&m, BIG_KEYS), "temp dir or memory"))
        return;
    kvs_options o;
    fill_opts(&o, "kvs", KVS_FSYNC_NO);
    o.compact_min_stale_bytes = UINT64_MAX; /* only the compaction asked for */
    uint64_t rng = cx_seed() ^ 0x22;
    /* Build: every key, a compaction (outputs with hints), then overwrites
       and removals in plain segments after them. */
    kvs_db *db = NULL;
    double t0 = cx_now();
    int rc = kvs_db_open(dir, &o, &db, NULL);
    char key[32], val[CX_VALUE_MAX];
    for (unsigned k = 0; rc == 0 && k < BIG_KEYS; k++) {
        key_name(key, k);
        size_t len = cx_value(val, key, 0, m.next_seq, SPREAD);
        rc = kvs_db_set(db, kvs_slice_of(key, strlen(key)), kvs_slice_of(val, len));
        m.present[k] = true;
        m.seq[k] = m.next_seq++;
    }
    if (rc == 0)
        rc = kvs_db_compact(db);
    for (unsigned i = 0; rc == 0 && i < BIG_KEYS / 4; i++) {
        unsigned k = (unsigned)cx_rand_range(&rng, 0, BIG_KEYS - 1);
        key_name(key, k);
        if (i % 2 && m.present[k]) {
            rc = kvs_db_remove(db, kvs_slice_of(key, strlen(key)));
            m.present[k] = false;
            continue;
        }
        size_t len = cx_value(val, key, 0, m.next_seq, SPREAD);
        rc = kvs_db_set(db, kvs_slice_of(key, strlen(key)), kvs_slice_of(val, len));
        m.present[k] = true;
        m.seq[k] = m.next_seq++;
    }
    int crc = kvs_db_close(db);
    if (!CK(rc == 0 && crc == 0, "building the store: %s", kvs_strerror(rc ? rc : crc)))
        goto out;
    static char names[4096][CX_NAME_MAX];
    static struct cx_rec recs[64];
    newest_data = NULL;
    if (!CK(cx_newest_seg(dir, newest), "no segment"))
        goto out;
    newest_data = (unsigned char *)ts_read_file(newest, &newest_len);
    int nrec = newest_data ? cx_records(newest_data, newest_len, recs, 64) : 0;
    if (!CK(nrec > 0 && nrec <= 64, "cannot read %s", newest))
        goto out;
    newest_last = recs[nrec - 1];
    int nseg = cx_list(dir, "seg-", ".log", names, 4096);
    int nhint = cx_list(dir, "seg-", ".hint", names, 4096);
    printf("  built %u keys in %d segments (%d with hints) in %.1f s\n", BIG_KEYS, nseg, nhint,
           cx_now() - t0);

    /* How long a whole repairing open takes, measured in a child. */
    unsigned cycles = cx_env_uint("KVS_CRASH_OPEN_CYCLES", 12);
    double open_s = 0;
    unsigned during = 0, after = 0;
    for (unsigned n = 0; n <= cycles; n++) {
        if (!CK(make_open_slow(dir), "cannot damage the store"))
            break;
        int p[2];
        if (!CK(pipe2(p, O_CLOEXEC) == 0, "pipe"))
            break;
        fflush(NULL);
        uint64_t start = cx_now_ns();
        pid_t pid = fork();
        if (pid == 0) {
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            close(p[0]);
            kvs_db *cdb = NULL;
            char c = kvs_db_open(dir, &o, &cdb, NULL) == 0 ? 'y' : 'n';
            while (write(p[1], &c, 1) < 0 && errno == EINTR)
                ;
            pause();
            _exit(0);
        }
        close(p[1]);
        /* Cycle 0 measures; the others kill at a random point of it. */
        int wait_ms = n == 0 ? 20000 : (int)cx_rand_range(&rng, 0, (uint64_t)(open_s * 1000));
        struct pollfd pfd = {.fd = p[0], .events = POLLIN};
        char c = 0;
        bool done = poll(&pfd, 1, wait_ms) > 0 && read(p[0], &c, 1) == 1;
        if (n == 0)
            open_s = (double)(cx_now_ns() - start) / 1e9;
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        close(p[0]);
        if (n == 0) {
            CK(c == 'y', "the repairing open failed");
            printf("  a repairing open takes %.2f s\n", open_s);
            continue;
        }
        CK(!done || c == 'y', "open %u failed", n);
        *(done ? &after : &during) += 1;
        char what[64];
        snprintf(what, sizeof(what), "slow open, kill %u after %d ms", n, wait_ms);
        verify(dir, &o, &m, &f, what);
    }
    printf("  kvs: %u kills during a repairing open, %u just after it; %lu keys checked after "
           "reopens, %lu values verified\n",
           during, after, f.keys_checked, f.values_checked);
out:
    free(newest_data);
    model_free(&m);
    ts_tmpdir_remove(dir);
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    cx_seed();
    unsigned per_mode = cx_env_uint("KVS_CRASH_LIB_CYCLES", 30);
    /* Every registered engine is killed at random times; the kvs engine
       also at its compaction's numbered steps (its crash hook). */
    struct lib_case cases[16];
    for (size_t i = 0; i < kvs_engine_count() && i < 16; i++) {
        const char *engine = kvs_engine_name(kvs_engine_at(i));
        if (kvs_engine_traits(kvs_engine_at(i)) & KVS_ENGINE_VOLATILE) {
            /* kill -9 loses what came after its last snapshot, which
               this test does not model: test_crash_mem does. */
            printf("== engine %s: volatile, skipped\n", engine);
            continue;
        }
        bool steps = strcmp(engine, "kvs") == 0;
        cases[i] = (struct lib_case){engine, per_mode, steps ? 3 : 1};
        char name[96];
        snprintf(name, sizeof(name), "kill -9 %s (libkvs, engine %s)",
                 steps ? "during compaction" : "while writing", engine);
        cx_run(name, crash_library, &cases[i]);
    }
    cx_run("kill -9 during a slow open (libkvs, engine kvs)", slow_open, NULL);
    return cx_finish();
}
