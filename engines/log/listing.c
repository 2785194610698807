/* SPDX-License-Identifier: BSD-3-Clause */
/* Reading a kvs engine data directory; see listing.h. */
#include "listing.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kvs/error.h"
#include "segment.h"

struct names {
    struct klog_seg_name *v;
    size_t n, cap;
};

static int add(struct names *a, uint64_t id, unsigned sub)
{
    if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 64;
        struct klog_seg_name *p = realloc(a->v, cap * sizeof(*p));
        if (!p)
            return KVS_ENOMEM;
        a->v = p;
        a->cap = cap;
    }
    a->v[a->n++] = (struct klog_seg_name){id, sub, false};
    return 0;
}

static int by_id_sub(const void *a, const void *b)
{
    const struct klog_seg_name *x = a, *y = b;
    if (x->id != y->id)
        return x->id < y->id ? -1 : 1;
    return x->sub < y->sub ? -1 : x->sub > y->sub;
}

/* Files of no engine's that a data directory holds anyway. */
static bool skipped(const char *name)
{
    return name[0] == '.' || strcmp(name, "ENGINE") == 0;
}

int klog_list_dir(int dir_fd, struct klog_listing *l, klog_leftover_fn fn, void *ctx)
{
    int fd = dup(dir_fd);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (!d) {
        if (fd >= 0)
            close(fd);
        return KVS_EIO;
    }
    /* Hints are paired once every segment is known. */
    struct names segs = {0}, hints = {0};
    int rc = 0;
    struct dirent *de;
    while (rc == 0 && (de = readdir(d)) != NULL) {
        uint64_t id;
        unsigned sub;
        enum klog_file_kind kind;
        if (skipped(de->d_name))
            continue;
        if (!klog_file_parse(de->d_name, &id, &sub, &kind)) {
            rc = fn(ctx, de->d_name, KLOG_LEFTOVER_FOREIGN);
            continue;
        }
        if (id > l->max_id) {
            l->max_id = id;
            l->max_sub = 0;
        }
        if (id == l->max_id && sub > l->max_sub)
            l->max_sub = sub;
        if (kind == KLOG_FILE_SEG)
            rc = add(&segs, id, sub);
        else if (kind == KLOG_FILE_HINT)
            rc = add(&hints, id, sub);
        else
            rc = fn(ctx, de->d_name, KLOG_LEFTOVER_TMP);
    }
    closedir(d);
    if (segs.n)
        qsort(segs.v, segs.n, sizeof(segs.v[0]), by_id_sub);
    l->segs = segs.v;
    l->n = segs.n;
    for (size_t i = 0; rc == 0 && i < hints.n; i++) {
        struct klog_seg_name *s =
            l->n ? bsearch(&hints.v[i], l->segs, l->n, sizeof(*s), by_id_sub) : NULL;
        if (s) {
            s->hint = true;
        } else {
            char name[KLOG_SEG_NAME_LEN];
            klog_file_name(name, hints.v[i].id, hints.v[i].sub, KLOG_FILE_HINT);
            rc = fn(ctx, name, KLOG_LEFTOVER_HINT);
        }
    }
    free(hints.v);
    return rc;
}

void klog_listing_free(struct klog_listing *l)
{
    free(l->segs);
    l->segs = NULL;
    l->n = 0;
}
