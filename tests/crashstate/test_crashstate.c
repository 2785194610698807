/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Crash-state test: the states a machine crash (power loss, kernel panic)
 * may leave, built from a recorded workload and opened one by one.
 *
 * kill -9 tests (tests/crash) keep the page cache; a power loss does not.
 * For every registered engine and every fsync policy this program
 *  1. runs the workload (workload.h) on a real store while recording every
 *     write, truncation, creation, rename, unlink and fsync of its directory
 *     (trace.h), and remembers what was acknowledged and synced (model.h);
 *  2. cuts the trace at many points and, for each cut, builds states that
 *     the crash may leave (state.h): what was fsynced kept, the rest kept
 *     in part, in order or not, the last write torn;
 *  3. writes each state into a fresh directory, opens it with
 *     kvs_db_open() and checks every key against the model: every durable
 *     write present, no value superseded before the last checkpoint, no
 *     garbage, the key count right. A store that refuses to open counts
 *     only if `kvs-check --repair` salvages it into one that passes (stated
 *     in the figures). One state in eight also takes a write after the
 *     reopen and must keep it over another reopen.
 *
 * LMDB documents what it needs: with synchronous commits ("always") it is
 * safe in every state; under MDB_NOSYNC ("everysec", "no") only if the file
 * system keeps write order. Its "reordered" states under those policies are
 * therefore counted as documented exposures, not failures.
 *
 * Bounded for CI: KVS_CRASHSTATE_STATES states (default 1500) or
 * KVS_CRASHSTATE_SECONDS seconds (default 10) per engine and policy,
 * whichever comes first. KVS_CRASHSTATE_LONG=1: four times the workload,
 * 20000 states and 900 s per engine and policy. KVS_CRASHSTATE_ONLY=kvs/no
 * runs one configuration. KVS_CRASH_SEED repeats the choices (the trace
 * itself varies with thread timing); failing states are kept on disk.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "check.h"
#include "crash/crash.h"
#include "kvs/kvs.h"
#include "model.h"
#include "state.h"
#include "support/tmpdir.h"
#include "trace.h"
#include "workload.h"

#define FAILURES_SHOWN 3
#define REFUSALS_SHOWN 2

static struct {
    bool long_run;
    unsigned states;
    unsigned seconds;
    const char *only;
    unsigned long total_states;
    unsigned long total_failures;
} run;

struct cfg {
    const char *engine;
    kvs_fsync policy;
    char name[48];
};

/* What one configuration found. */
struct explore {
    const struct cfg *cfg;
    struct trace t;
    struct model m;
    struct st_index ix;
    struct wl_config wl;
    kvs_options opts;
    char base[PATH_MAX];   /* the workload's store, on $TMPDIR (a real disk, usually) */
    char states[PATH_MAX]; /* where states are written: a tmpfs when there is one */
    unsigned long planned, checked, dups, torn, probes;
    unsigned long by_strategy[ST_NSTRATEGIES];
    unsigned long refused[ST_NSTRATEGIES]; /* refused, repaired, then right */
    struct {
        char why[64];
        unsigned long n, ordered; /* of them in states kept in order */
    } reasons[8];
    unsigned long exposures;         /* LMDB's documented ones */
    unsigned long exposures_crashed; /* of which LMDB aborted the process */
    unsigned long failures;
    unsigned refusals_shown;
    uint64_t *seen; /* keys of the states checked (open addressing, 0 empty) */
    size_t seen_mask;
};

/* LMDB under MDB_NOSYNC relies on the file system keeping write order. */
static bool documented_exposure(const struct explore *e, enum st_strategy s)
{
    return strcmp(e->cfg->engine, "lmdb") == 0 && e->cfg->policy != KVS_FSYNC_ALWAYS &&
           s == ST_REORDERED;
}

/* ---- planning ---- */

struct item {
    size_t cut;
    enum st_strategy strategy;
    uint64_t seed;
};

/* Cuts where something just became durable, or is about to: after each
   fsync, directory operation, acknowledged write and checkpoint, and just
   before each fsync begins (the most pending). The first *npri are the
   cuts right after a directory fsync returned: where a compaction's or a
   clear's renames and unlinks have just become durable. */
static size_t *boundary_cuts(const struct trace *t, size_t *n, size_t *npri)
{
    size_t *cuts = malloc((2 * t->nev + 2) * sizeof(*cuts));
    if (!cuts)
        abort();
    size_t k = 0;
    for (size_t i = 0; i < t->nev; i++) {
        if (t->ev[i].kind == EV_SYNC_END && t->ev[i].file == TR_DIR)
            cuts[k++] = i + 1;
    }
    *npri = k;
    for (size_t i = 0; i < t->nev; i++) {
        const struct tr_event *ev = &t->ev[i];
        enum m_mark mk = M_MARK_KIND(ev->data);
        if (ev->kind == EV_SYNC_BEGIN)
            cuts[k++] = i;
        if ((ev->kind == EV_SYNC_END && ev->file != TR_DIR) || ev->kind == EV_CREATE ||
            ev->kind == EV_RENAME || ev->kind == EV_UNLINK ||
            (ev->kind == EV_MARK && (mk == M_OP_END || mk == M_SYNC_END)))
            cuts[k++] = i + 1;
    }
    cuts[k++] = t->nev;
    *n = k;
    return cuts;
}

static void shuffle(struct item *items, size_t n, uint64_t *rng)
{
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)(cx_rand(rng) % i);
        struct item x = items[i - 1];
        items[i - 1] = items[j];
        items[j] = x;
    }
}

/*
 * First every cut inside the store's first open (before the workload's
 * first mark), with every strategy and a few seeds of the random ones: a
 * crash there must leave a store that opens. Then half of the budget: the
 * four fixed strategies at boundary cuts, those after directory fsyncs
 * first, the others sampled if they do not all fit; the rest: "ordered"
 * and "reordered" states, 3 to 2, at boundary cuts and at cuts anywhere,
 * half and half. In random order, so that a time limit keeps the
 * proportions.
 */
static struct item *plan(const struct explore *e, uint64_t *rng, size_t *n)
{
    size_t nb, npri, first_mark = 0;
    size_t *bcuts = boundary_cuts(&e->t, &nb, &npri);
    while (first_mark < e->t.nev && e->t.ev[first_mark].kind != EV_MARK)
        first_mark++;
    size_t budget = run.states;
    size_t nfixed = nb * 4;
    struct item *fixed = malloc(nfixed * sizeof(*fixed));
    struct item *items = malloc((budget + 1) * sizeof(*items));
    if (!fixed || !items)
        abort();
    size_t k = 0;
    static const enum st_strategy opening[] = {
        ST_ALL,     ST_SYNCED,  ST_DIR_ONLY, ST_DATA_ONLY, ST_ORDERED, ST_ORDERED,   ST_ORDERED,
        ST_ORDERED, ST_ORDERED, ST_ORDERED,  ST_ORDERED,   ST_ORDERED, ST_REORDERED, ST_REORDERED};
    size_t nopening = sizeof(opening) / sizeof(opening[0]);
    for (size_t c = 0; c <= first_mark && k + nopening < budget / 4; c++) {
        for (size_t i = 0; i < nopening; i++)
            items[k++] = (struct item){c, opening[i], cx_rand(rng)};
    }
    for (size_t i = 0; i < nb; i++) {
        for (int s = 0; s < 4; s++)
            fixed[i * 4 + (size_t)s] = (struct item){bcuts[i], (enum st_strategy)s, cx_rand(rng)};
    }
    shuffle(fixed, npri * 4, rng);
    shuffle(fixed + npri * 4, nfixed - npri * 4, rng);
    size_t nf = nfixed < budget / 2 ? nfixed : budget / 2;
    memcpy(items + k, fixed, nf * sizeof(*items));
    k += nf;
    size_t rest = budget - k, nordered = rest * 3 / 5;
    for (size_t i = 0; i < rest; i++) {
        size_t cut =
            cx_rand(rng) % 2 ? bcuts[cx_rand(rng) % nb] : (size_t)(cx_rand(rng) % (e->t.nev + 1));
        items[k++] = (struct item){cut, i < nordered ? ST_ORDERED : ST_REORDERED, cx_rand(rng)};
    }
    shuffle(items, k, rng);
    free(fixed);
    free(bcuts);
    *n = k;
    return items;
}

/* Whether key was seen before; remembers it. */
static bool seen_before(struct explore *e, uint64_t key)
{
    key |= 1; /* 0 marks an empty slot */
    for (size_t i = key & e->seen_mask;; i = (i + 1) & e->seen_mask) {
        if (e->seen[i] == key)
            return true;
        if (e->seen[i] == 0) {
            e->seen[i] = key;
            return false;
        }
    }
}

/* ---- reports ---- */

/* The events before the cut, runs of writes to one file folded. */
static size_t print_tail(const struct explore *e, size_t cut, size_t lines)
{
    size_t start = cut, shown = 0;
    while (start > 0 && shown < lines) {
        size_t i = start - 1;
        const struct tr_event *ev = &e->t.ev[i];
        while (ev->kind == EV_WRITE && i > 0 && e->t.ev[i - 1].kind == EV_WRITE &&
               e->t.ev[i - 1].file == ev->file)
            i--;
        start = i;
        shown++;
    }
    printf("    the trace before the cut:\n");
    for (size_t i = start; i < cut; i++) {
        const struct tr_event *ev = &e->t.ev[i];
        char line[256];
        if (ev->kind == EV_MARK) {
            char what[160];
            m_describe_mark(&e->m, ev->data, what, sizeof(what));
            snprintf(line, sizeof(line), "%zu %s", i, what);
        } else if (ev->kind == EV_WRITE) {
            size_t j = i;
            uint64_t bytes = 0;
            while (j < cut && e->t.ev[j].kind == EV_WRITE && e->t.ev[j].file == ev->file)
                bytes += e->t.ev[j++].len;
            if (j - i > 1) {
                snprintf(line, sizeof(line), "%zu..%zu %zu writes to %s, %" PRIu64 " bytes", i,
                         j - 1, j - i, tr_name(&e->t, e->t.files[ev->file].name), bytes);
                i = j - 1;
            } else {
                tr_describe(&e->t, i, line, sizeof(line));
            }
        } else {
            tr_describe(&e->t, i, line, sizeof(line));
        }
        printf("      %s\n", line);
    }
    return start;
}

/* The last directory operations and fsyncs before event end. */
static void print_fs_tail(const struct explore *e, size_t end, size_t lines)
{
    size_t start = end, shown = 0;
    while (start > 0 && shown < lines) {
        enum ev_kind k = e->t.ev[--start].kind;
        shown += k != EV_WRITE && k != EV_TRUNC && k != EV_MARK;
    }
    if (start == end)
        return;
    printf("    the directory operations and fsyncs before that:\n");
    for (size_t i = start; i < end; i++) {
        enum ev_kind k = e->t.ev[i].kind;
        if (k == EV_WRITE || k == EV_TRUNC || k == EV_MARK)
            continue;
        char line[256];
        tr_describe(&e->t, i, line, sizeof(line));
        printf("      %s\n", line);
    }
}

static void keep_state(const struct explore *e, const struct st_state *st)
{
    const char *tmp = getenv("TMPDIR");
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/kvs-crashstate-%s-%s-XXXXXX", tmp && *tmp ? tmp : "/tmp",
             e->cfg->engine, kvs_fsync_name(e->cfg->policy));
    if (mkdtemp(path) && st_write(st, path) == 0)
        printf("    the state, as built, is kept in %s\n", path);
}

/* Where the write of value serial to key went, and whether an fsync of
   that file covered it before the cut. */
static void locate(const struct explore *e, const struct st_state *st, int key, int64_t serial)
{
    if (serial < 0)
        return;
    char needle[64];
    int len = snprintf(needle, sizeof(needle), "%s|0|%" PRId64 "|", m_key(key), serial);
    for (size_t i = 0; i < e->t.nev; i++) {
        const struct tr_event *ev = &e->t.ev[i];
        if (ev->kind != EV_WRITE || ev->len < (uint64_t)len ||
            !memmem(e->t.data + ev->data, ev->len, needle, (size_t)len))
            continue;
        const char *name = tr_name(&e->t, e->t.files[ev->file].name);
        long synced = -1;
        for (size_t j = i + 1; j < st->cut && synced < 0; j++) {
            const struct tr_event *s = &e->t.ev[j];
            if (s->kind == EV_SYNC_END && s->file == ev->file && s->data > i)
                synced = (long)j;
        }
        bool present = false;
        for (size_t j = 0; j < st->nfiles; j++)
            present = present || st->files[j].file == ev->file;
        printf("    #%" PRId64 " of %s: written to %s at event %zu, ", serial, m_key(key), name, i);
        if (synced >= 0)
            printf("fsynced by event %ld", synced);
        else
            printf("not fsynced before the cut");
        printf("; that file is %s in this state\n", present ? "present" : "absent");
    }
}

static void report_failure(struct explore *e, const struct st_state *st, const struct verdict *v)
{
    e->failures++;
    if (e->failures > FAILURES_SHOWN)
        return;
    CK(false, "%s (seed %" PRIu64 "): %s", e->cfg->name, cx_seed(), st->desc);
    printf("%s", v->report);
    for (size_t i = 0; i < v->nwrong && i < 3; i++) {
        locate(e, st, v->wrong[i].key, v->wrong[i].found);
        locate(e, st, v->wrong[i].key, v->wrong[i].durable);
    }
    if (v->log[0])
        printf("    the engine logged:\n%s", v->log);
    print_fs_tail(e, print_tail(e, st->cut, 12), 8);
    keep_state(e, st);
    fflush(stdout);
}

/* The state being checked, for a last word should the check kill us. */
static const char *volatile dying_desc;

static void on_fatal(int sig)
{
    const char *d = dying_desc;
    if (d) {
        static const char head[] = "\ncrashstate: died checking the state: ";
        ssize_t rc = write(2, head, sizeof(head) - 1);
        rc = write(2, d, strlen(d));
        rc = write(2, "\n", 1);
        (void)rc;
    }
    signal(sig, SIG_DFL);
    raise(sig);
}

/* Tally why a store refused to open, in a few words: the engine's
   explanation without paths and offsets. */
static void tally_refusal(struct explore *e, const struct st_state *st, const char *report)
{
    const char *line = strstr(report, "open refused: ");
    if (!line)
        return;
    const char *end = strchr(line, '\n');
    size_t len = end ? (size_t)(end - line) : strlen(line);
    char text[512];
    snprintf(text, sizeof(text), "%.*s", (int)len, line);
    char *why = strrchr(text, ':');
    why = why ? why + 1 : text;
    char *paren = strrchr(why, '(');
    if (paren)
        why = paren;
    while (*why == ' ')
        why++;
    if (strlen(why) > 63)
        why[63] = '\0';
    bool ordered = st->strategy != ST_REORDERED;
    for (size_t i = 0; i < sizeof(e->reasons) / sizeof(e->reasons[0]); i++) {
        if (e->reasons[i].n == 0)
            snprintf(e->reasons[i].why, sizeof(e->reasons[i].why), "%.63s", why);
        if (strcmp(e->reasons[i].why, why) == 0) {
            e->reasons[i].n++;
            e->reasons[i].ordered += ordered;
            return;
        }
    }
}

/* Count a checked state, and report it when it failed. */
static void judge(struct explore *e, const struct st_state *st, const struct verdict *v)
{
    e->probes += v->probed;
    if (v->problems == 0) {
        if (v->refused) {
            e->refused[st->strategy]++;
            tally_refusal(e, st, v->report);
            if (e->refusals_shown++ < REFUSALS_SHOWN)
                printf("  refused, repaired by kvs-check --repair, then right: %s\n%s", st->desc,
                       v->report);
        }
    } else if (documented_exposure(e, st->strategy)) {
        e->exposures++;
        e->exposures_crashed += v->crashed;
    } else {
        report_failure(e, st, v);
    }
}

/* ---- one configuration ---- */

/* A fresh directory for the states: under $KVS_CRASHSTATE_TMPDIR, else
   /dev/shm (fsync costs nothing there, and nothing here needs it), else
   $TMPDIR. */
static int states_dir(char *out)
{
    const char *base = getenv("KVS_CRASHSTATE_TMPDIR");
    if (!base || !*base)
        base = access("/dev/shm", W_OK | X_OK) == 0 ? "/dev/shm" : NULL;
    if (!base)
        return ts_tmpdir_make(out);
    snprintf(out, PATH_MAX, "%s/kvs-crashstate-XXXXXX", base);
    return mkdtemp(out) ? 0 : -1;
}

static void trace_figures(const struct explore *e)
{
    unsigned long n[EV_MARK + 1] = {0}, dsyncs = 0;
    uint64_t bytes = 0;
    for (size_t i = 0; i < e->t.nev; i++) {
        n[e->t.ev[i].kind]++;
        if (e->t.ev[i].kind == EV_WRITE)
            bytes += e->t.ev[i].len;
        if (e->t.ev[i].kind == EV_SYNC_END && e->t.ev[i].file == TR_DIR)
            dsyncs++;
    }
    printf("  trace: %zu events: %lu writes (%" PRIu64 " KiB), %lu truncations, %lu fsyncs of "
           "files and %lu of the directory, %lu creations, %lu renames, %lu unlinks over %zu "
           "files; %zu requests modelled, %zu checkpoints\n",
           e->t.nev, n[EV_WRITE], bytes >> 10, n[EV_TRUNC], n[EV_SYNC_END] - dsyncs, dsyncs,
           n[EV_CREATE], n[EV_RENAME], n[EV_UNLINK], e->t.nfiles, e->m.nops, e->m.nsyncs);
    if (e->t.inferred_creates || e->t.msyncs)
        printf("  creations noticed at the first write (openat outside fileio): %lu; msync calls: "
               "%lu\n",
               e->t.inferred_creates, e->t.msyncs);
}

static void explore_cfg(void *arg)
{
    const struct cfg *cfg = arg;
    struct explore *e = calloc(1, sizeof(*e));
    if (!e)
        abort();
    e->cfg = cfg;
    e->wl = (struct wl_config){cfg->engine, cfg->policy, run.long_run,
                               cx_seed() ^ XXH64(cfg->name, strlen(cfg->name), 0)};
    wl_options(&e->wl, &e->opts);
    if (!CK(ts_tmpdir_make(e->base) == 0 && states_dir(e->states) == 0, "tmpdir: %s",
            strerror(errno)))
        goto out;
    char dir[PATH_MAX + 8];
    snprintf(dir, sizeof(dir), "%s/db", e->base);
    if (!CK(mkdir(dir, 0755) == 0, "mkdir %s: %s", dir, strerror(errno)))
        goto out;
    double t0 = cx_now();
    char why[KVS_WHY_MAX] = "";
    int rc = wl_run(&e->wl, dir, &e->t, &e->m, why);
    double t_wl = cx_now() - t0;
    if (!CK(rc == 0, "the workload could not open its store: %s", why))
        goto out;
    CK(e->m.errors == 0, "%lu engine errors during the workload, the first: %s", e->m.errors,
       e->m.first_error);
    trace_figures(e);
    printf("  workload: %.2f s\n", t_wl);
    if (e->t.nfiles == 0) {
        printf("  %s keeps nothing on disk: no crash states\n", cfg->engine);
        goto out;
    }
    if (!CK(st_index_build(&e->ix, &e->t) == 0, "out of memory"))
        goto out;

    uint64_t rng = e->wl.seed ^ 0x5eed;
    size_t nitems;
    struct item *items = plan(e, &rng, &nitems);
    e->planned = nitems;
    size_t slots = 1;
    while (slots < 4 * nitems + 16)
        slots *= 2;
    e->seen = calloc(slots, sizeof(*e->seen));
    e->seen_mask = slots - 1;
    if (!e->seen)
        abort();
    /* LMDB may assert (abort) on the damage it documents: such states are
       checked in a child process, the others here. */
    struct checker ck = {&e->m, &e->opts, e->states, false};
    struct verdict *v = malloc(sizeof(*v));
    if (!v)
        abort();
    double t1 = cx_now();
    for (size_t i = 0; i < nitems; i++) {
        if (cx_now() - t1 > run.seconds)
            break;
        struct st_state st;
        st_build(&e->ix, items[i].cut, items[i].strategy, items[i].seed, &st);
        uint64_t key[2] = {st.hash, m_epoch(&e->m, st.cut)};
        if (seen_before(e, XXH64(key, sizeof(key), 0))) {
            e->dups++;
        } else {
            ck.isolate = documented_exposure(e, st.strategy);
            dying_desc = st.desc;
            ck_state(&ck, &st, e->checked % 8 == 0, v);
            dying_desc = NULL;
            judge(e, &st, v);
            e->checked++;
            e->by_strategy[st.strategy]++;
            e->torn += st.torn;
        }
        st_free(&st);
    }
    free(items);
    free(v);
    double t_states = cx_now() - t1;
    printf("  states: %lu checked (", e->checked);
    for (int s = 0; s < ST_NSTRATEGIES; s++)
        printf("%s%s %lu", s ? ", " : "", st_strategy_name((enum st_strategy)s), e->by_strategy[s]);
    printf("), %lu with a torn write, %lu duplicates skipped, of %lu planned; %lu took a "
           "write after the crash; %.1f s, %.1f ms a state\n",
           e->torn, e->dups, e->planned, e->probes, t_states,
           e->checked ? 1e3 * t_states / (double)e->checked : 0.0);
    unsigned long refused = 0;
    for (int s = 0; s < ST_NSTRATEGIES; s++)
        refused += e->refused[s];
    if (refused) {
        printf("  refused to open, then repaired by kvs-check --repair and right: %lu (", refused);
        for (int s = 0, first = 1; s < ST_NSTRATEGIES; s++) {
            if (e->refused[s]) {
                printf("%s%s %lu", first ? "" : ", ", st_strategy_name((enum st_strategy)s),
                       e->refused[s]);
                first = 0;
            }
        }
        printf(")\n");
        for (size_t i = 0; i < sizeof(e->reasons) / sizeof(e->reasons[0]) && e->reasons[i].n; i++)
            printf("    %lu (%lu not reordered): %s\n", e->reasons[i].n, e->reasons[i].ordered,
                   e->reasons[i].why);
    }
    if (e->exposures)
        printf("  reordered states wrong, refused or fatal (LMDB aborted: %lu), as LMDB documents "
               "without synchronous commits: %lu\n",
               e->exposures_crashed, e->exposures);
    printf("  failures: %lu\n", e->failures);
    run.total_states += e->checked;
    run.total_failures += e->failures;
out:
    if (e->base[0])
        ts_tmpdir_remove(e->base);
    if (e->states[0])
        ts_tmpdir_remove(e->states);
    st_index_free(&e->ix);
    tr_free(&e->t);
    if (e->m.ops || e->m.syncs)
        m_free(&e->m);
    free(e->seen);
    free(e);
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGABRT, on_fatal);
    run.long_run = cx_env_uint("KVS_CRASHSTATE_LONG", 0) != 0;
    run.states = cx_env_uint("KVS_CRASHSTATE_STATES", run.long_run ? 20000 : 1500);
    run.seconds = cx_env_uint("KVS_CRASHSTATE_SECONDS", run.long_run ? 900 : 10);
    run.only = getenv("KVS_CRASHSTATE_ONLY");
    cx_seed();
    printf("crash states: up to %u states or %u s per engine and policy%s\n", run.states,
           run.seconds, run.long_run ? " (long run)" : "");
    static const kvs_fsync policies[] = {KVS_FSYNC_ALWAYS, KVS_FSYNC_EVERYSEC, KVS_FSYNC_NO};
    size_t ncfg = kvs_engine_count() * 3;
    struct cfg *cfgs = calloc(ncfg, sizeof(*cfgs));
    if (!cfgs)
        return 1;
    for (size_t i = 0; i < ncfg; i++) {
        const kvs_engine *engine = kvs_engine_at(i / 3);
        cfgs[i].engine = kvs_engine_name(engine);
        cfgs[i].policy = policies[i % 3];
        snprintf(cfgs[i].name, sizeof(cfgs[i].name), "%s/%s", cfgs[i].engine,
                 kvs_fsync_name(cfgs[i].policy));
        if (run.only && *run.only && strcmp(run.only, cfgs[i].name) != 0)
            continue;
        /* The model holds what a process crash keeps, which a volatile
           engine does not promise; it keeps nothing on disk to crash. */
        if (kvs_engine_traits(engine) & KVS_ENGINE_VOLATILE) {
            if (i % 3 == 0)
                printf("== %s: volatile, keeps nothing on disk: skipped\n", cfgs[i].engine);
            continue;
        }
        cx_run(cfgs[i].name, explore_cfg, &cfgs[i]);
    }
    printf("crash states checked: %lu, failures: %lu\n", run.total_states, run.total_failures);
    free(cfgs);
    return cx_finish();
}
