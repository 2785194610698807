/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The recorder of the crash-state test: what a workload did to the files
 * of one data directory, in the order it happened.
 *
 * Two sources feed it while it records. The kvs engine and the core do
 * their file I/O through engines/fileio.h, whose tracing hook reports each
 * creation, write, truncation, rename, unlink and fsync. LMDB does its own
 * I/O inside liblmdb.so, so this module also defines open, close, write,
 * pwrite, writev, ftruncate, fsync, fdatasync and msync: definitions in the
 * executable take precedence over libc's for calls from shared libraries.
 * They pass every call through (dlsym(RTLD_NEXT)) and record only
 * descriptors that open() gave out for files in the recorded directory
 * while recording, which only liblmdb opens that way (the engines use
 * openat). A write through a descriptor opened O_DSYNC is durable when it
 * returns (LMDB writes its meta page so under the "always" policy).
 *
 * Files are identified by inode (fstat), so that renames, unlinks and a
 * descriptor opened again later are followed; an inode number reused after
 * an unlink starts a new file. A file whose creation was not reported (a
 * segment or hint created with openat) is noticed at its first write or
 * fsync and its creation recorded then, under the name /proc/self/fd gives.
 *
 * Writes are recorded after they returned, with their bytes; an fsync as a
 * begin and an end event, since it covers what completed before it began
 * and is durable once it ended. The workload adds marks (an operation
 * began or returned, a sync returned) under the same lock, so that the
 * trace orders them against the I/O. Every event has an index; a cut c is
 * the prefix of events [0, c).
 */
#ifndef KVS_TESTS_CRASHSTATE_TRACE_H
#define KVS_TESTS_CRASHSTATE_TRACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum ev_kind {
    EV_CREATE,     /* file, name */
    EV_RENAME,     /* file, name to name2 */
    EV_UNLINK,     /* file, name */
    EV_WRITE,      /* file, off, len, data; dsync: durable when it returned */
    EV_TRUNC,      /* file, off: the new length */
    EV_SYNC_BEGIN, /* file, or TR_DIR */
    EV_SYNC_END,   /* file or TR_DIR; data: index of its EV_SYNC_BEGIN */
    EV_MARK,       /* data: the workload's mark number */
};

#define TR_DIR (-1)

struct tr_event {
    uint8_t kind;
    bool dsync;
    int32_t file;
    uint32_t name, name2; /* offsets in the name table */
    uint64_t off, len;
    uint64_t data; /* EV_WRITE: offset of the bytes; EV_SYNC_END: begin; EV_MARK: mark */
};

struct tr_file {
    uint64_t dev, ino;
    uint32_t name;  /* name it was created under */
    bool lmdb;      /* recorded through the libc interposers */
    unsigned names; /* names bound to it in the real directory now */
};

struct trace {
    struct tr_event *ev;
    size_t nev, cap_ev;
    struct tr_file *files;
    size_t nfiles, cap_files;
    unsigned char *data; /* bytes of the writes */
    size_t ndata, cap_data;
    char *names; /* NUL-terminated names back to back */
    size_t nnames, cap_names;
    /* Figures. */
    unsigned long inferred_creates; /* creations noticed late (openat outside fileio) */
    unsigned long msyncs;           /* msync calls while recording (mapped writes: not traced) */
};

/*
 * tr_start - start recording the directory dir (which must exist and be
 * empty) into t, which is reset. Only one recording at a time.
 */
void tr_start(struct trace *t, const char *dir);
/* tr_stop - stop recording; t keeps the trace. */
void tr_stop(void);
/* tr_free - release a trace; accepts an all-zero one. */
void tr_free(struct trace *t);

/* tr_mark - append a mark (any number the caller chooses) and return its
   index; -1 when not recording. Any thread. */
long tr_mark(uint64_t mark);

/* The name at offset off of the name table. */
static inline const char *tr_name(const struct trace *t, uint32_t off)
{
    return t->names + off;
}

/* One line describing event i, into buf (size bytes). */
void tr_describe(const struct trace *t, size_t i, char *buf, size_t size);

#endif
