/* SPDX-License-Identifier: BSD-3-Clause */
/* Crash states built from a trace; see state.h. */
#include "state.h"

#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>

#include "crash/crash.h"

static const char *const strategy_names[] = {
    [ST_ALL] = "all",           [ST_SYNCED] = "synced",
    [ST_DIR_ONLY] = "dir-only", [ST_DATA_ONLY] = "data-only",
    [ST_ORDERED] = "ordered",   [ST_REORDERED] = "reordered",
};

const char *st_strategy_name(enum st_strategy s)
{
    return s < ST_NSTRATEGIES ? strategy_names[s] : "?";
}

static void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q) {
        fprintf(stderr, "crashstate: out of memory\n");
        abort();
    }
    return q;
}

/* ---- the index ---- */

static void add_index(size_t **arr, size_t *n, size_t v)
{
    if ((*n & (*n - 1)) == 0 || *n == 0)
        *arr = xrealloc(*arr, (*n ? *n * 2 : 1) * sizeof(**arr));
    (*arr)[(*n)++] = v;
}

static void add_sync(struct st_sync **arr, size_t *n, size_t end, size_t begin)
{
    if ((*n & (*n - 1)) == 0 || *n == 0)
        *arr = xrealloc(*arr, (*n ? *n * 2 : 1) * sizeof(**arr));
    size_t max = *n && (*arr)[*n - 1].begin_max > begin ? (*arr)[*n - 1].begin_max : begin;
    (*arr)[(*n)++] = (struct st_sync){end, max};
}

int st_index_build(struct st_index *ix, const struct trace *t)
{
    memset(ix, 0, sizeof(*ix));
    ix->t = t;
    ix->files = calloc(t->nfiles ? t->nfiles : 1, sizeof(*ix->files));
    if (!ix->files)
        return -1;
    for (size_t i = 0; i < t->nev; i++) {
        const struct tr_event *e = &t->ev[i];
        switch (e->kind) {
        case EV_CREATE:
        case EV_RENAME:
        case EV_UNLINK:
            add_index(&ix->dops, &ix->ndops, i);
            break;
        case EV_WRITE:
        case EV_TRUNC:
            add_index(&ix->files[e->file].ops, &ix->files[e->file].nops, i);
            break;
        case EV_SYNC_END:
            if (e->file == TR_DIR)
                add_sync(&ix->dsyncs, &ix->ndsyncs, i, (size_t)e->data);
            else
                add_sync(&ix->files[e->file].syncs, &ix->files[e->file].nsyncs, i, (size_t)e->data);
            break;
        default:
            break;
        }
    }
    return 0;
}

void st_index_free(struct st_index *ix)
{
    if (ix->files) {
        for (size_t i = 0; i < ix->t->nfiles; i++) {
            free(ix->files[i].ops);
            free(ix->files[i].syncs);
        }
    }
    free(ix->files);
    free(ix->dops);
    free(ix->dsyncs);
    memset(ix, 0, sizeof(*ix));
}

/* Operations before this index are durable at cut: the latest begin of a
   sync that returned before the cut (0: none). */
static size_t durable_point(const struct st_sync *s, size_t n, size_t cut)
{
    size_t lo = 0, hi = n; /* first sync ending at or after the cut */
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (s[mid].end < cut)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo ? s[lo - 1].begin_max : 0;
}

/* First position in arr (sorted) holding a value >= v. */
static size_t lower_bound(const size_t *arr, size_t n, size_t v)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (arr[mid] < v)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* ---- building ---- */

static void describe(struct st_state *st, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void describe(struct st_state *st, const char *fmt, ...)
{
    size_t used = strlen(st->desc);
    if (used + 4 >= sizeof(st->desc))
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(st->desc + used, sizeof(st->desc) - used, fmt, ap);
    va_end(ap);
    if (n < 0 || used + (size_t)n >= sizeof(st->desc))
        memcpy(st->desc + sizeof(st->desc) - 4, "...", 4);
}

/* Which of n pending operations to keep, in keep[]; returns the one to
   tear (its position), or n for none. data: the choice is for a file. */
static size_t choose(struct st_state *st, uint64_t *rng, bool data, size_t n, bool *keep)
{
    enum st_strategy s = st->strategy;
    bool all = s == ST_ALL || (data ? s == ST_DATA_ONLY : s == ST_DIR_ONLY);
    size_t torn = n;
    if (s == ST_ORDERED) {
        unsigned r = (unsigned)(cx_rand(rng) % 4);
        size_t m = r == 0 ? n : r == 1 ? 0 : (size_t)(cx_rand(rng) % (n + 1));
        for (size_t i = 0; i < n; i++)
            keep[i] = i < m;
        if (data && m > 0 && cx_rand(rng) % 2)
            torn = m - 1;
    } else if (s == ST_REORDERED) {
        size_t kept = 0;
        for (size_t i = 0; i < n; i++) {
            keep[i] = cx_rand(rng) % 2;
            kept += keep[i];
        }
        if (data && kept > 0 && cx_rand(rng) % 2) {
            size_t pick = (size_t)(cx_rand(rng) % kept);
            for (size_t i = 0; i < n; i++) {
                if (keep[i] && pick-- == 0) {
                    torn = i;
                    break;
                }
            }
        }
    } else {
        for (size_t i = 0; i < n; i++)
            keep[i] = all;
    }
    return torn;
}

struct names {
    const char **name;
    int32_t *file;
    size_t n;
};

static ptrdiff_t names_find(const struct names *m, const char *name)
{
    for (size_t i = 0; i < m->n; i++) {
        if (strcmp(m->name[i], name) == 0)
            return (ptrdiff_t)i;
    }
    return -1;
}

static void names_remove(struct names *m, ptrdiff_t i)
{
    m->n--;
    m->name[i] = m->name[m->n];
    m->file[i] = m->file[m->n];
}

static void names_set(struct names *m, const char *name, int32_t file)
{
    ptrdiff_t i = names_find(m, name);
    if (i < 0) {
        i = (ptrdiff_t)m->n++;
        m->name = xrealloc(m->name, m->n * sizeof(*m->name));
        m->file = xrealloc(m->file, m->n * sizeof(*m->file));
    }
    m->name[i] = name;
    m->file[i] = file;
}

/* Apply one directory operation; one whose source is missing (a subset
   left out what created it) changes nothing. */
static void apply_dir_op(const struct trace *t, const struct tr_event *e, struct names *m)
{
    ptrdiff_t i;
    switch (e->kind) {
    case EV_CREATE:
        names_set(m, tr_name(t, e->name), e->file);
        break;
    case EV_RENAME:
        i = names_find(m, tr_name(t, e->name));
        if (i >= 0 && m->file[i] == e->file) {
            names_remove(m, i);
            names_set(m, tr_name(t, e->name2), e->file);
        }
        break;
    case EV_UNLINK:
        i = names_find(m, tr_name(t, e->name));
        if (i >= 0 && m->file[i] == e->file)
            names_remove(m, i);
        break;
    default:
        break;
    }
}

enum tear { TEAR_SHORT, TEAR_ZEROS, TEAR_GARBAGE };
static const char *const tear_names[] = {"cut short", "zeros after", "garbage after"};

struct buf {
    unsigned char *p;
    size_t len, cap;
};

static void buf_resize(struct buf *b, size_t len)
{
    if (len > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < len)
            cap *= 2;
        b->p = xrealloc(b->p, cap);
        b->cap = cap;
    }
    if (len > b->len)
        memset(b->p + b->len, 0, len - b->len);
    b->len = len;
}

static void apply_write(struct buf *b, uint64_t off, const unsigned char *data, size_t len)
{
    if (off + len > b->len)
        buf_resize(b, off + len);
    memcpy(b->p + off, data, len);
}

/* A torn write: keep bytes of it land; the rest of its range keeps the
   old bytes, and past the old end of the file follows mode. */
static void apply_torn(struct buf *b, uint64_t off, const unsigned char *data, size_t len,
                       size_t keep, enum tear mode, uint64_t *rng)
{
    size_t old = b->len;
    if (keep)
        apply_write(b, off, data, keep);
    if (mode == TEAR_SHORT || off + len <= old)
        return;
    size_t from = off + keep > old ? off + keep : old;
    buf_resize(b, off + len); /* zeros */
    if (mode == TEAR_GARBAGE) {
        for (size_t i = from; i < off + len; i++)
            b->p[i] = (unsigned char)cx_rand(rng);
    }
}

static int by_name(const void *a, const void *b)
{
    return strcmp(((const struct st_file *)a)->name, ((const struct st_file *)b)->name);
}

/* Build the content of file f for the state. */
static void build_file(const struct st_index *ix, struct st_state *st, uint64_t *rng, int32_t f,
                       const char *name, struct buf *out)
{
    const struct trace *t = ix->t;
    const struct st_file_index *fi = &ix->files[f];
    size_t cut = st->cut;
    size_t dp = durable_point(fi->syncs, fi->nsyncs, cut);
    size_t end = lower_bound(fi->ops, fi->nops, cut);
    /* Pending: after the durable point, except O_DSYNC writes that
       returned before the event just before the cut. */
    size_t *pend = malloc((end + 1) * sizeof(*pend));
    bool *keep = malloc((end + 1) * sizeof(*keep));
    if (!pend || !keep)
        abort();
    size_t np = 0;
    for (size_t i = 0; i < end; i++) {
        const struct tr_event *e = &t->ev[fi->ops[i]];
        if (fi->ops[i] >= dp && !(e->dsync && fi->ops[i] + 1 < cut))
            pend[np++] = fi->ops[i];
    }
    size_t torn = choose(st, rng, true, np, keep);
    if (torn < np && t->ev[pend[torn]].kind != EV_WRITE)
        torn = np;
    size_t kept = 0;
    for (size_t i = 0; i < np; i++)
        kept += keep[i];
    st->pending_data += np;
    st->kept_data += kept;
    size_t tear_keep = 0;
    enum tear mode = TEAR_SHORT;
    if (torn < np) {
        tear_keep = (size_t)(cx_rand(rng) % t->ev[pend[torn]].len);
        mode = (enum tear)(cx_rand(rng) % 3);
        st->torn = true;
    }
    if (np) {
        describe(st, "; %s: %zu of %zu unsynced kept", name, kept, np);
        if (st->strategy == ST_REORDERED && kept && kept < np) {
            describe(st, " (");
            for (size_t i = 0; i < np; i++)
                describe(st, "%s", keep[i] ? "1" : "0");
            describe(st, ")");
        }
        if (torn < np)
            describe(st, ", event %zu torn at %zu of %zu bytes, %s", pend[torn], tear_keep,
                     (size_t)t->ev[pend[torn]].len, tear_names[mode]);
    }
    out->len = 0;
    size_t p = 0;
    for (size_t i = 0; i < end; i++) {
        size_t idx = fi->ops[i];
        bool is_pending = p < np && pend[p] == idx;
        size_t pos = p;
        if (is_pending)
            p++;
        if (is_pending && !keep[pos])
            continue;
        const struct tr_event *e = &t->ev[idx];
        if (e->kind == EV_TRUNC)
            buf_resize(out, e->off);
        else if (is_pending && pos == torn)
            apply_torn(out, e->off, t->data + e->data, e->len, tear_keep, mode, rng);
        else
            apply_write(out, e->off, t->data + e->data, e->len);
    }
    free(pend);
    free(keep);
}

void st_build(const struct st_index *ix, size_t cut, enum st_strategy strategy, uint64_t seed,
              struct st_state *st)
{
    const struct trace *t = ix->t;
    memset(st, 0, sizeof(*st));
    st->cut = cut;
    st->strategy = strategy;
    st->seed = seed;
    uint64_t rng = seed;
    describe(st, "cut %zu of %zu, %s, state seed %#llx", cut, t->nev, st_strategy_name(strategy),
             (unsigned long long)seed);

    /* The directory: durable operations, then the chosen pending ones. */
    size_t dp = durable_point(ix->dsyncs, ix->ndsyncs, cut);
    size_t first = lower_bound(ix->dops, ix->ndops, dp);
    size_t end = lower_bound(ix->dops, ix->ndops, cut);
    size_t np = end - first;
    bool *keep = malloc((np + 1) * sizeof(*keep));
    if (!keep)
        abort();
    choose(st, &rng, false, np, keep);
    struct names m = {0};
    for (size_t i = 0; i < first; i++)
        apply_dir_op(t, &t->ev[ix->dops[i]], &m);
    size_t kept = 0;
    for (size_t i = 0; i < np; i++) {
        if (keep[i]) {
            apply_dir_op(t, &t->ev[ix->dops[first + i]], &m);
            kept++;
        }
    }
    st->pending_dir = np;
    st->kept_dir = kept;
    if (np) {
        describe(st, "; directory: %zu of %zu unsynced operations kept (events %zu..%zu)", kept, np,
                 ix->dops[first], ix->dops[end - 1]);
        if (strategy == ST_REORDERED && kept && kept < np) {
            describe(st, " (");
            for (size_t i = 0; i < np; i++)
                describe(st, "%s", keep[i] ? "1" : "0");
            describe(st, ")");
        }
    }
    free(keep);

    /* The files still named, in name order so that the choices follow
       from the seed alone. */
    st->nfiles = m.n;
    st->files = calloc(m.n ? m.n : 1, sizeof(*st->files));
    if (!st->files)
        abort();
    for (size_t i = 0; i < m.n; i++)
        st->files[i] = (struct st_file){.name = m.name[i], .file = m.file[i]};
    qsort(st->files, st->nfiles, sizeof(*st->files), by_name);
    free(m.name);
    free(m.file);
    uint64_t h = XXH64(&st->nfiles, sizeof(st->nfiles), 0);
    for (size_t i = 0; i < st->nfiles; i++) {
        struct st_file *sf = &st->files[i];
        struct buf b = {0};
        build_file(ix, st, &rng, sf->file, sf->name, &b);
        sf->data = b.p;
        sf->len = b.len;
        h = XXH64(sf->name, strlen(sf->name) + 1, h);
        h = XXH64(sf->data ? (const void *)sf->data : "", sf->len, h);
    }
    st->hash = h;
}

void st_free(struct st_state *st)
{
    for (size_t i = 0; i < st->nfiles; i++)
        free(st->files[i].data);
    free(st->files);
    st->files = NULL;
    st->nfiles = 0;
}

int st_write(const struct st_state *st, const char *dir)
{
    for (size_t i = 0; i < st->nfiles; i++) {
        char path[PATH_MAX];
        snprintf(path, sizeof(path), "%s/%s", dir, st->files[i].name);
        if (!cx_write_file(path, st->files[i].data ? (const void *)st->files[i].data : "",
                           st->files[i].len))
            return -1;
    }
    return 0;
}
