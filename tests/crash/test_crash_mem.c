/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Crash test: kill -9 of a process using the "mem" engine, and the loss
 * window measured.
 *
 * The mem engine keeps its data in memory and writes a snapshot every
 * snapshot_interval seconds when something changed. A snapshot is one
 * point in the order of acknowledged writes, so kill -9 must lose exactly
 * the writes after the last snapshot that completed, and never leave a
 * state holding a write without an earlier one.
 *
 * Each cycle, on one data directory carried from cycle to cycle, a forked
 * child opens the store (snapshot_interval 1) and writes in one thread, in
 * one global order: op j sets "k<j mod K>" to a self-checking value of
 * about 100 bytes that names j (cx_value()), j going on from where the
 * state found after the previous kill ended. After each acknowledged op it
 * publishes j + 1 and the time in a shared mapping, and every POLL_EVERY
 * ops the engine's kvs_db_save_status(), from which it derives a lower
 * bound of what a completed snapshot holds: a snapshot that completed
 * after a poll that saw none running holds every op acknowledged before
 * that poll. The child is killed in one of three ways:
 *   time  0.3-3 s after it opened the store (from the seed);
 *   save  (every fourth cycle) it asks for a BGSAVE 0.2-0.7 s after
 *         opening, before the first periodic snapshot; the parent waits
 *         (inotify) for the snapshot's temporary file to appear and kills
 *         the child up to half a snapshot's time later;
 *   long  (the middle cycle) 1 s past the loss-window bound, so that a
 *         store whose periodic snapshots stopped loses more than the
 *         bound and fails.
 * Whether a kill landed inside a snapshot is read from the directory: the
 * temporary file exists from the start of a snapshot to its rename.
 *
 * The parent then opens the directory itself (snapshot_interval 0: it
 * writes nothing), scans every key with its value and checks the prefix
 * property exactly: with m = the largest j found + 1, key x holds the
 * value of the last op j < m with j mod K = x, keys never written before m
 * are missing, and there is nothing else. m must be at most the
 * acknowledged count + 1 (a write may land before its acknowledgement is
 * published), at least the count the cycle started from and at least the
 * child's lower bound (nothing a completed snapshot held is lost), and,
 * when the kill landed inside the BGSAVE, at most the count when the
 * BGSAVE was asked for (the unfinished snapshot is not what loads).
 *
 * Loss: lost writes = acknowledged - m; the loss window is the time from
 * the acknowledgement of op m - 1 (or from the open, if this child's
 * snapshots held none of its writes) to the kill. Every window must stay
 * under $KVS_CRASH_MEM_WINDOW_MS (default the interval + 3 s: the
 * background thread looks once a second, a window can span two snapshots,
 * and under ASan with other work on the machine one may take hundreds of
 * ms). The run ends with a summary line: cycles, kills inside a snapshot,
 * median and largest lost writes and loss window.
 *
 * $KVS_CRASH_MEM_CYCLES sets the cycles (default 12), $KVS_CRASH_MEM_KEYS
 * the key count K (default 50000).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "crash.h"
#include "engines/mem/snapshot.h"
#include "kvs/kvs.h"

#define INTERVAL 1     /* snapshot_interval of the child, seconds */
#define SPREAD 130     /* values are about 100 bytes */
#define POLL_EVERY 256 /* ops between two polls of the save status */
/* Acknowledgement times one child can publish (8 bytes each, in a
   mapping whose pages are touched only as they are used). */
#define TIMES_MAX ((size_t)1 << 23)
#define NONE UINT64_MAX

enum mode { MODE_TIME, MODE_SAVE, MODE_LONG };
static const char *const mode_names[] = {"time", "save", "long"};

/*
 * What the child publishes, in a MAP_SHARED mapping made before the fork.
 * The parent reads open_ns once the child said it opened the store, the
 * rest once the child was reaped. acked is stored with release after the
 * op's time, so a kill between the two never leaves an acknowledged op
 * without its time.
 */
struct shared {
    atomic_uint_least64_t acked; /* ops acknowledged: the last one is acked - 1 */
    uint64_t open_ns;            /* when kvs_db_open() returned */
    int open_rc, write_rc;
    /* From the last poll of kvs_db_save_status(). */
    uint64_t saves;
    int64_t last_ms;
    uint64_t last_bytes;
    int last_status;
    /* The last poll that saw no snapshot running: acked then, saves then. */
    bool idle_seen;
    uint64_t idle_ack, idle_saves;
    /* Every op below it is in a snapshot that completed. */
    uint64_t durable;
    /* MODE_SAVE: acked and saves when the BGSAVE was accepted, or NONE. */
    uint64_t bgsave_at, bgsave_saves;
    bool full;        /* TIMES_MAX reached: the child stopped writing */
    uint64_t times[]; /* times[j - start]: when op j was acknowledged */
};

/* What one cycle found. */
struct result {
    enum mode mode;
    uint64_t start, acked, m, lost;
    double window_ms, kill_ms;
    bool during;
};

struct run {
    char dir[PATH_MAX];
    unsigned nkeys, cycles;
    double bound_ms;
    struct shared *sh;
    size_t sh_len;
    uint64_t *found; /* nkeys: the op whose value the key holds, or NONE */
    struct result *res;
    uint64_t rng;
    int64_t snap_ms_max;
    uint64_t snap_bytes;
    unsigned snaps_seen;
};

static void key_name(char *out, uint64_t x)
{
    snprintf(out, 32, "k%" PRIu64, x);
}

static void say(int fd, char c)
{
    while (write(fd, &c, 1) < 0 && errno == EINTR)
        ;
}

/* ---- the child ---- */

/* Publish the save status after op acked - 1 was acknowledged. */
static void poll_status(kvs_db *db, struct shared *sh, uint64_t acked)
{
    kvs_save_status st;
    if (kvs_db_save_status(db, &st) != 0)
        return;
    /* A snapshot completed since the last idle poll began after it. */
    if (sh->idle_seen && st.saves > sh->idle_saves && sh->idle_ack > sh->durable)
        sh->durable = sh->idle_ack;
    if (!st.in_progress) {
        sh->idle_seen = true;
        sh->idle_ack = acked;
        sh->idle_saves = st.saves;
    }
    sh->saves = st.saves;
    sh->last_ms = st.last_ms;
    sh->last_bytes = st.last_bytes;
    sh->last_status = st.last_status;
}

/* Write ops start, start + 1, ... until killed. bgsave_ns: when to ask
   for a BGSAVE (after the open), 0: never. */
static void child_main(const struct run *r, uint64_t start, uint64_t bgsave_ns, int fd)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    struct shared *sh = r->sh;
    kvs_options o;
    kvs_options_init(&o);
    o.engine = "mem";
    o.snapshot_interval = INTERVAL;
    kvs_db *db = NULL;
    sh->open_rc = kvs_db_open(r->dir, &o, &db, NULL);
    if (sh->open_rc != 0) {
        say(fd, 'F');
        _exit(3);
    }
    sh->open_ns = cx_now_ns();
    say(fd, 'o');
    char key[32], val[CX_VALUE_MAX];
    for (uint64_t j = start;; j++) {
        if (j - start >= TIMES_MAX) {
            sh->full = true;
            pause();
        }
        key_name(key, j % r->nkeys);
        size_t len = cx_value(val, key, 0, j, SPREAD);
        int rc = kvs_db_set(db, kvs_slice_of(key, strlen(key)), kvs_slice_of(val, len));
        if (rc != 0) {
            sh->write_rc = rc;
            say(fd, 'E');
            _exit(4);
        }
        sh->times[j - start] = cx_now_ns();
        atomic_store_explicit(&sh->acked, j + 1, memory_order_release);
        if ((j + 1 - start) % POLL_EVERY)
            continue;
        poll_status(db, sh, j + 1);
        if (bgsave_ns && sh->bgsave_at == NONE && cx_now_ns() >= sh->open_ns + bgsave_ns &&
            kvs_db_bgsave(db, false) == 0) {
            /* No snapshot was running: the next one to start is ours. */
            sh->bgsave_at = j + 1;
            sh->bgsave_saves = sh->saves;
            say(fd, 'b');
        }
    }
}

/* ---- the parent: waiting and killing ---- */

/* One byte from the child within ms (-1: forever): the byte, 0 on a
   timeout, -1 at EOF (the child is gone). */
static int hear(int fd, int ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int n;
    while ((n = poll(&p, 1, ms)) < 0 && errno == EINTR)
        ;
    if (n <= 0)
        return 0;
    char c;
    return read(fd, &c, 1) == 1 ? (unsigned char)c : -1;
}

/* Whether an IN_CREATE of the snapshot's temporary file is among the
   queued events (consumed). */
static bool tmp_created(int ifd)
{
    char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
    bool seen = false;
    ssize_t n;
    while ((n = read(ifd, buf, sizeof(buf))) > 0) {
        for (char *p = buf; p < buf + n;) {
            const struct inotify_event *ev = (const struct inotify_event *)p;
            if ((ev->mask & IN_CREATE) && ev->len && !strcmp(ev->name, KMEM_SNAP_TMP))
                seen = true;
            p += sizeof(*ev) + ev->len;
        }
    }
    return seen;
}

static bool tmp_exists(const char *dir)
{
    char path[PATH_MAX + 32];
    snprintf(path, sizeof(path), "%s/%s", dir, KMEM_SNAP_TMP);
    return access(path, F_OK) == 0;
}

/* MODE_SAVE: after the child's 'b', return once the BGSAVE's snapshot
   has started writing its file; false if the child died or 10 s passed. */
static bool wait_snapshot(const char *dir, int fd, int ifd, const char *what)
{
    uint64_t deadline = cx_now_ns() + 10000000000ull;
    bool asked = false;
    while (cx_now_ns() < deadline) {
        struct pollfd p[2] = {{.fd = fd, .events = POLLIN}, {.fd = ifd, .events = POLLIN}};
        if (poll(p, 2, 100) < 0 && errno != EINTR)
            break;
        if (p[0].revents) {
            int c = hear(fd, 0);
            if (!CK(c == 'b', "%s: the child ended before its BGSAVE (%d)", what, c))
                return false;
            /* Creations before now were earlier snapshots': drop them,
               then look, then wait for the next one. */
            tmp_created(ifd);
            asked = true;
            if (tmp_exists(dir))
                return true;
            continue;
        }
        if (p[1].revents && tmp_created(ifd) && asked)
            return true;
    }
    CK(false, "%s: %s", what,
       asked ? "the BGSAVE's snapshot never started" : "the child never asked for a BGSAVE");
    return false;
}

/* ---- the parent: checking ---- */

struct scan_ctx {
    const struct run *r;
    const char *what;
    uint64_t bad;
};

/* Count a bad key (the first few reported) and go on scanning. */
static int bad_key(struct scan_ctx *s, const char *why, const char *key)
{
    if (s->bad++ < 5)
        CK(false, "%s: %s: %s", s->what, why, key);
    return 0;
}

static int scan_one(void *ctx, kvs_slice key, const kvs_slice *value, int64_t expire_at)
{
    struct scan_ctx *s = ctx;
    char name[32] = "";
    memcpy(name, key.data, key.len < sizeof(name) - 1 ? key.len : sizeof(name) - 1);
    char *end = name;
    unsigned long long x = name[0] == 'k' ? strtoull(name + 1, &end, 10) : ULLONG_MAX;
    if (x >= s->r->nkeys || *end || key.len >= sizeof(name) || expire_at)
        return bad_key(s, "a key that was never written", name);
    unsigned w;
    uint64_t j;
    char want[CX_VALUE_MAX];
    if (!cx_value_parse(value->data, value->len, name, &w, &j) || j % s->r->nkeys != x ||
        cx_value(want, name, 0, j, SPREAD) != value->len ||
        memcmp(want, value->data, value->len) != 0)
        return bad_key(s, "a value that was never written", name);
    if (s->r->found[x] != NONE && s->r->found[x] != j)
        return bad_key(s, "seen twice with two values", name);
    s->r->found[x] = j;
    return 0;
}

/* Open the directory, check the prefix property and return m (NONE when
   the store could not be read). */
static uint64_t verify(const struct run *r, const char *what)
{
    kvs_options o;
    kvs_options_init(&o);
    o.engine = "mem";
    o.snapshot_interval = 0;
    kvs_db *db = NULL;
    char why[KVS_WHY_MAX] = "";
    int rc = kvs_db_open(r->dir, &o, &db, why);
    if (!CK(rc == 0, "%s: reopen failed: %s (%s)", what, kvs_strerror(rc), why))
        return NONE;
    CK(!tmp_exists(r->dir), "%s: the open left %s behind", what, KMEM_SNAP_TMP);
    for (unsigned x = 0; x < r->nkeys; x++)
        r->found[x] = NONE;
    struct scan_ctx s = {.r = r, .what = what};
    uint64_t cursor = 0;
    do {
        rc = kvs_db_scan(db, cursor, 4096, KVS_SCAN_VALUES, scan_one, &s, &cursor);
    } while (rc == 0 && cursor != 0);
    uint64_t m = NONE;
    if (!CK(rc == 0, "%s: scan: %s", what, kvs_strerror(rc)) || s.bad)
        goto out;
    m = 0;
    for (unsigned x = 0; x < r->nkeys; x++)
        if (r->found[x] != NONE && r->found[x] + 1 > m)
            m = r->found[x] + 1;
    /* Key x must hold the last op j < m with j mod K = x. */
    uint64_t keys = 0, wrong = 0;
    for (unsigned x = 0; x < r->nkeys; x++) {
        uint64_t want = x < m ? x + (m - 1 - x) / r->nkeys * r->nkeys : NONE;
        keys += want != NONE;
        if (r->found[x] != want && wrong++ < 5)
            CK(false,
               "%s: k%u holds op %" PRId64 ", not op %" PRId64 " (the prefix ends at %" PRIu64 ")",
               what, x, r->found[x] == NONE ? (int64_t)-1 : (int64_t)r->found[x],
               want == NONE ? (int64_t)-1 : (int64_t)want, m);
    }
    if (wrong)
        m = NONE;
    kvs_stats st;
    CK(kvs_db_stats(db, &st) == 0 && st.keys == keys,
       "%s: stats say %" PRIu64 " keys, the prefix has %" PRIu64, what, st.keys, keys);
out:
    CK(kvs_db_close_nosave(db) == 0, "%s: close failed", what);
    return m;
}

/* ---- one cycle ---- */

static void cycle(struct run *r, unsigned i, enum mode mode, uint64_t start, struct result *out)
{
    char what[64];
    snprintf(what, sizeof(what), "cycle %u (%s)", i, mode_names[mode]);
    *out = (struct result){.mode = mode, .start = start, .m = NONE};
    uint64_t kill_after =
        mode == MODE_LONG ? (uint64_t)r->bound_ms + 1000 : cx_rand_range(&r->rng, 300, 3000);
    uint64_t bgsave_ns = mode == MODE_SAVE ? cx_rand_range(&r->rng, 200, 700) * 1000000ull : 0;
    /* Kill a random part of the way through the snapshot (its expected
       length from the earlier children). */
    uint64_t save_delay_us =
        cx_rand_range(&r->rng, 0, (uint64_t)(r->snap_ms_max > 0 ? r->snap_ms_max : 0) * 500);

    struct shared *sh = r->sh;
    memset(sh, 0, sizeof(*sh));
    atomic_store(&sh->acked, start);
    sh->durable = start;
    sh->bgsave_at = NONE;
    int p[2];
    if (!CK(pipe2(p, O_CLOEXEC) == 0, "pipe"))
        return;
    int ifd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
    if (!CK(ifd >= 0 && inotify_add_watch(ifd, r->dir, IN_CREATE) >= 0, "inotify")) {
        close(p[0]);
        close(p[1]);
        return;
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        close(p[0]);
        child_main(r, start, bgsave_ns, p[1]);
    }
    close(p[1]);
    if (!CK(pid > 0, "fork")) {
        close(p[0]);
        close(ifd);
        return;
    }
    int c = hear(p[0], 60000);
    bool ok = CK(c == 'o', "%s: the child did not open the store (%d: %s)", what, c,
                 kvs_strerror(sh->open_rc));
    if (ok && mode == MODE_SAVE) {
        ok = wait_snapshot(r->dir, p[0], ifd, what);
        if (ok && save_delay_us)
            cx_sleep_ms((unsigned)(save_delay_us / 1000));
    } else if (ok) {
        /* Listen until the kill moment: a byte or EOF means the child
           failed. */
        uint64_t at = sh->open_ns + kill_after * 1000000ull;
        for (uint64_t now; ok && (now = cx_now_ns()) < at;) {
            c = hear(p[0], (int)((at - now) / 1000000) + 1);
            ok = CK(c == 0, "%s: the child ended early (%d)", what, c);
        }
    }
    uint64_t kill_ns = cx_now_ns();
    kill(pid, SIGKILL);
    int ws;
    waitpid(pid, &ws, 0);
    close(ifd);
    while ((c = hear(p[0], 0)) > 0)
        CK(c != 'E', "%s: a write failed: %s", what, kvs_strerror(sh->write_rc));
    close(p[0]);
    if (!ok ||
        !CK(WIFSIGNALED(ws) && WTERMSIG(ws) == SIGKILL,
            "%s: the child ended with status 0x%x (open: %s)", what, ws, kvs_strerror(sh->open_rc)))
        return;
    CK(!sh->full, "%s: the child filled its %zu acknowledgement times", what, TIMES_MAX);
    CK(sh->last_status == 0, "%s: a snapshot failed: %s", what, kvs_strerror(sh->last_status));

    out->acked = atomic_load(&sh->acked);
    out->kill_ms = (double)(kill_ns - sh->open_ns) / 1e6;
    out->during = tmp_exists(r->dir);
    if (sh->saves) {
        r->snaps_seen += (unsigned)sh->saves;
        r->snap_bytes = sh->last_bytes;
        if (sh->last_ms > r->snap_ms_max)
            r->snap_ms_max = sh->last_ms;
    }

    uint64_t m = verify(r, what);
    if (m == NONE)
        return;
    out->m = m;
    CK(m <= out->acked + 1,
       "%s: the store holds op %" PRIu64 ", but only %" PRIu64 " were acknowledged", what, m - 1,
       out->acked);
    CK(m >= start, "%s: the store went back from %" PRIu64 " ops to %" PRIu64, what, start, m);
    CK(m >= sh->durable,
       "%s: a completed snapshot held %" PRIu64 " ops or more, the store has %" PRIu64, what,
       sh->durable, m);
    if (mode == MODE_SAVE && out->during && sh->saves == sh->bgsave_saves)
        CK(m <= sh->bgsave_at,
           "%s: killed inside the BGSAVE asked for at %" PRIu64 " ops, yet %" PRIu64
           " were found: the unfinished snapshot loaded",
           what, sh->bgsave_at, m);
    out->lost = out->acked > m ? out->acked - m : 0;
    if (out->lost) {
        uint64_t from = m > start ? sh->times[m - 1 - start] : sh->open_ns;
        out->window_ms = (double)(kill_ns - from) / 1e6;
    }
    CK(out->window_ms <= r->bound_ms,
       "%s: %.0f ms of writes lost, over the bound of %.0f ms: were snapshots written?", what,
       out->window_ms, r->bound_ms);
    printf("  %-16s start %9" PRIu64 "  killed %5.0f ms after the open%s; acked %9" PRIu64
           ", found %9" PRIu64 " (durable >= %9" PRIu64 "); lost %7" PRIu64 " writes, %6.1f ms;"
           " %" PRIu64 " snapshots, last %" PRId64 " ms\n",
           what, start, out->kill_ms, out->during ? " inside a snapshot" : "", out->acked, m,
           sh->durable, out->lost, out->window_ms, sh->saves, sh->last_ms);
}

/* ---- the run ---- */

static int by_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

static int by_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void summarize(const struct run *r, unsigned n)
{
    uint64_t lost[n ? n : 1];
    double window[n ? n : 1];
    unsigned during = 0, during_save = 0, modes[3] = {0};
    uint64_t acked = 0;
    for (unsigned i = 0; i < n; i++) {
        lost[i] = r->res[i].lost;
        window[i] = r->res[i].window_ms;
        during += r->res[i].during;
        during_save += r->res[i].during && r->res[i].mode == MODE_SAVE;
        modes[r->res[i].mode]++;
        acked += r->res[i].acked - r->res[i].start;
    }
    qsort(lost, n, sizeof(lost[0]), by_u64);
    qsort(window, n, sizeof(window[0]), by_double);
    printf("  summary: %u cycles (%u time, %u save, %u long), %u kills during a snapshot "
           "(%u of them in a BGSAVE); %" PRIu64 " writes acknowledged; lost writes median %" PRIu64
           ", max %" PRIu64 "; loss window median %.0f ms, max %.0f ms (bound %.0f ms); "
           "snapshot interval %u s; %u snapshots of %u keys, about %" PRIu64
           " bytes, the longest %" PRId64 " ms\n",
           n, modes[MODE_TIME], modes[MODE_SAVE], modes[MODE_LONG], during, during_save, acked,
           n ? lost[n / 2] : 0, n ? lost[n - 1] : 0, n ? window[n / 2] : 0, n ? window[n - 1] : 0,
           r->bound_ms, INTERVAL, r->snaps_seen, r->nkeys, r->snap_bytes, r->snap_ms_max);
    if (n == r->cycles)
        CK(modes[MODE_SAVE] == 0 || during_save > 0,
           "no kill of a save cycle landed inside its snapshot");
}

static void crash_mem(void *arg)
{
    struct run *r = arg;
    r->sh_len = sizeof(struct shared) + TIMES_MAX * sizeof(uint64_t);
    r->sh = mmap(NULL, r->sh_len, PROT_READ | PROT_WRITE,
                 MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    r->found = calloc(r->nkeys, sizeof(uint64_t));
    r->res = calloc(r->cycles ? r->cycles : 1, sizeof(struct result));
    if (!CK(r->sh != MAP_FAILED && r->found && r->res && ts_tmpdir_make(r->dir) == 0,
            "memory or temp dir"))
        return;
    r->rng = cx_seed() ^ 0x6d656d;
    unsigned long failed = cx_failures();
    uint64_t start = 0;
    unsigned n = 0;
    for (unsigned i = 0; i < r->cycles && cx_failures() == failed; i++) {
        /* One long cycle in the middle; every fourth other one a save. */
        enum mode mode = i == r->cycles / 2 ? MODE_LONG : i % 4 == 3 ? MODE_SAVE : MODE_TIME;
        cycle(r, i, mode, start, &r->res[n]);
        if (r->res[n].m == NONE)
            break;
        start = r->res[n++].m;
    }
    summarize(r, n);
    CK(n == r->cycles, "only %u of %u cycles ran", n, r->cycles);
    munmap(r->sh, r->sh_len);
    free(r->found);
    free(r->res);
    ts_tmpdir_remove(r->dir);
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    cx_seed();
    static struct run r;
    r.cycles = cx_env_uint("KVS_CRASH_MEM_CYCLES", 12);
    r.nkeys = cx_env_uint("KVS_CRASH_MEM_KEYS", 50000);
    r.bound_ms = cx_env_uint("KVS_CRASH_MEM_WINDOW_MS", INTERVAL * 1000 + 3000);
    if (r.nkeys == 0)
        r.nkeys = 1;
    cx_run("kill -9 of the mem engine: the prefix property and the loss window", crash_mem, &r);
    return cx_finish();
}
