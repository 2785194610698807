/* SPDX-License-Identifier: BSD-3-Clause */
/* The io_uring network path; see uring.h. */
#include "uring.h"

#include <errno.h>
#include <event2/event.h>
#include <liburing.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "conn.h"
#include "log.h"
#include "worker.h"

/* Submission queue entries: a turn queueing more submits early. The
   completion queue is four times larger; the kernel keeps what
   overflows it (IORING_FEAT_NODROP) until it is reaped. */
#define SQ_ENTRIES 1024u
#define CQ_ENTRIES (4 * SQ_ENTRIES)
/* The provided buffers: a receive that completes takes one, and gives it
   back as soon as its bytes are copied into the connection's input. More
   receives completing between two reaps than there are buffers fail with
   ENOBUFS and are armed again. */
#define NBUFS 64u
#define BUF_SIZE (16u << 10)
#define BUF_GROUP 0
/* Operation tags in the low bits of user_data (struct uring_io is
   aligned to 8); 0 is a cancel, whose completion says nothing. */
#define OP_RECV 1u
#define OP_SEND 2u
#define OP_MASK 7u

struct uring {
    struct io_uring ring;
    struct io_uring_buf_ring *br;
    char *bufs; /* NBUFS buffers of BUF_SIZE */
    struct event *ev;
    struct worker *w;
    struct uring_io *closed; /* closed with operations still in flight */
};

/* A ring as the workers make it: the kernel runs completions' task work
   when the thread next enters it (COOP_TASKRUN) rather than interrupting
   it. */
static int ring_open(struct io_uring *ring)
{
    struct io_uring_params p = {
        .flags = IORING_SETUP_CQSIZE | IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG,
        .cq_entries = CQ_ENTRIES,
    };
    return io_uring_queue_init_params(SQ_ENTRIES, ring, &p);
}

static void bufs_give(struct uring *u, unsigned bid)
{
    io_uring_buf_ring_add(u->br, u->bufs + (size_t)bid * BUF_SIZE, BUF_SIZE, (unsigned short)bid,
                          io_uring_buf_ring_mask(NBUFS), 0);
    io_uring_buf_ring_advance(u->br, 1);
}

/* Register the provided-buffer ring; -errno on failure. */
static int bufs_init(struct uring *u)
{
    void *br;
    if (posix_memalign(&br, 4096, NBUFS * sizeof(struct io_uring_buf)) != 0)
        return -ENOMEM;
    u->br = br;
    u->bufs = malloc((size_t)NBUFS * BUF_SIZE);
    if (!u->bufs)
        return -ENOMEM;
    struct io_uring_buf_reg reg = {
        .ring_addr = (uintptr_t)br, .ring_entries = NBUFS, .bgid = BUF_GROUP};
    int rc = io_uring_register_buf_ring(&u->ring, &reg, 0);
    if (rc != 0)
        return rc;
    io_uring_buf_ring_init(u->br);
    for (unsigned i = 0; i < NBUFS; i++)
        bufs_give(u, i);
    return 0;
}

bool uring_probe(char *why, size_t size)
{
    struct io_uring ring;
    int rc = ring_open(&ring);
    if (rc < 0) {
        snprintf(why, size, "io_uring_setup: %s", strerror(-rc));
        return false;
    }
    bool ok = false;
    struct io_uring_probe *probe = io_uring_get_probe_ring(&ring);
    if (!(ring.features & IORING_FEAT_FAST_POLL) || !(ring.features & IORING_FEAT_NODROP))
        snprintf(why, size, "the kernel's io_uring lacks fast poll or no-drop completions");
    else if (!probe || !io_uring_opcode_supported(probe, IORING_OP_RECV) ||
             !io_uring_opcode_supported(probe, IORING_OP_SEND) ||
             !io_uring_opcode_supported(probe, IORING_OP_ASYNC_CANCEL))
        snprintf(why, size, "the kernel's io_uring lacks recv, send or cancel");
    else
        ok = true;
    if (probe)
        io_uring_free_probe(probe);
    if (ok) {
        /* Provided-buffer rings came with Linux 5.19, as POLL_FIRST. */
        struct uring u = {.ring = ring};
        rc = bufs_init(&u);
        if (rc != 0) {
            snprintf(why, size, "no provided-buffer ring: %s", strerror(-rc));
            ok = false;
        }
        free(u.br);
        free(u.bufs);
    }
    io_uring_queue_exit(&ring);
    return ok;
}

static void io_free(struct uring_io *io)
{
    kvs_buf_free(&io->tx);
    free(io);
}

static void closed_unlink(struct uring *u, struct uring_io *io)
{
    if (io->prev)
        io->prev->next = io->next;
    else
        u->closed = io->next;
    if (io->next)
        io->next->prev = io->prev;
}

/* One completion: to the connection, or, once it is closed, to nobody. */
static void complete(struct uring *u, uint64_t data, int res, unsigned flags)
{
    struct uring_io *io = (struct uring_io *)(uintptr_t)(data & ~(uint64_t)OP_MASK);
    io->in_cb = true;
    if ((data & OP_MASK) == OP_RECV) {
        io->recv_armed = false;
        const char *buf = NULL;
        unsigned bid = flags >> IORING_CQE_BUFFER_SHIFT;
        if (flags & IORING_CQE_F_BUFFER)
            buf = u->bufs + (size_t)bid * BUF_SIZE;
        if (io->c)
            conn_uring_received(io->c, buf, res);
        if (buf)
            bufs_give(u, bid);
    } else {
        io->send_armed = false;
        if (io->c)
            conn_uring_sent(io->c, res);
    }
    io->in_cb = false;
    if (!io->c && !io->recv_armed && !io->send_armed) {
        closed_unlink(u, io);
        io_free(io);
    }
}

/* Handle every completion there, and return how many; the ring fd's
   event. Handling one may queue SQEs and even submit them (a close),
   which may add completions: they are handled in the same call. */
static unsigned reap(struct uring *u)
{
    unsigned n = 0;
    struct io_uring_cqe *cqe;
    while (io_uring_peek_cqe(&u->ring, &cqe) == 0) {
        uint64_t data = cqe->user_data;
        int res = cqe->res;
        unsigned flags = cqe->flags;
        io_uring_cqe_seen(&u->ring, cqe);
        if (data == 0)
            continue; /* a cancel's own completion */
        n++;
        complete(u, data, res, flags);
    }
    return n;
}

static void on_ring(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    reap(arg);
}

int uring_init(struct uring **up, struct worker *w, char *why, size_t size)
{
    *up = NULL;
    struct uring *u = calloc(1, sizeof(*u));
    if (!u) {
        snprintf(why, size, "out of memory");
        return -1;
    }
    u->w = w;
    int rc = ring_open(&u->ring);
    if (rc < 0) {
        snprintf(why, size, "io_uring_setup: %s", strerror(-rc));
        free(u);
        return -1;
    }
    rc = bufs_init(u);
    if (rc != 0) {
        snprintf(why, size, "provided-buffer ring: %s", strerror(-rc));
        goto out;
    }
    u->ev = event_new(w->base, u->ring.ring_fd, EV_READ | EV_PERSIST, on_ring, u);
    if (!u->ev || event_add(u->ev, NULL) != 0) {
        snprintf(why, size, "out of memory");
        goto out;
    }
    *up = u;
    return 0;
out:
    uring_free(u);
    return -1;
}

void uring_free(struct uring *u)
{
    if (!u)
        return;
    if (u->ev)
        event_free(u->ev);
    /* Nothing is in flight any more: the kernel cancels a thread's
       requests when it exits (the worker has), and waits for them. */
    io_uring_queue_exit(&u->ring);
    while (u->closed) {
        struct uring_io *io = u->closed;
        u->closed = io->next;
        io_free(io);
    }
    free(u->br);
    free(u->bufs);
    free(u);
}

struct uring_io *uring_io_new(struct conn *c, int fd)
{
    struct uring_io *io = calloc(1, sizeof(*io));
    if (io) {
        io->c = c;
        io->fd = fd;
    }
    return io;
}

/* A free SQE, submitting what is queued when the queue is full. */
static struct io_uring_sqe *sqe_get(struct uring *u)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring);
    if (!sqe && io_uring_submit(&u->ring) >= 0)
        sqe = io_uring_get_sqe(&u->ring);
    return sqe;
}

void uring_io_close(struct uring *u, struct uring_io *io)
{
    io->c = NULL;
    if (!io->recv_armed && !io->send_armed && !io->in_cb) {
        io_free(io);
        return;
    }
    /* Freed by complete() once nothing is in flight (in_cb: the one
       being handled was the last). */
    io->prev = NULL;
    io->next = u->closed;
    if (u->closed)
        u->closed->prev = io;
    u->closed = io;
    const unsigned ops[] = {io->recv_armed ? OP_RECV : 0, io->send_armed ? OP_SEND : 0};
    bool queued = false;
    for (size_t i = 0; i < 2; i++) {
        struct io_uring_sqe *sqe = ops[i] ? sqe_get(u) : NULL;
        if (!sqe)
            continue; /* nothing to cancel, or no room: the thread's exit cancels it */
        io_uring_prep_cancel64(sqe, (uintptr_t)io | ops[i], 0);
        io_uring_sqe_set_data64(sqe, 0);
        queued = true;
    }
    if (queued)
        io_uring_submit(&u->ring);
}

bool uring_recv(struct uring *u, struct uring_io *io)
{
    struct io_uring_sqe *sqe = sqe_get(u);
    if (!sqe)
        return false;
    io_uring_prep_recv(sqe, io->fd, NULL, BUF_SIZE, 0);
    /* Most receives are armed right after a reply, before the client
       could have answered it: wait for data instead of trying first. */
    sqe->ioprio |= IORING_RECVSEND_POLL_FIRST;
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = BUF_GROUP;
    io_uring_sqe_set_data64(sqe, (uintptr_t)io | OP_RECV);
    io->recv_armed = true;
    return true;
}

bool uring_send(struct uring *u, struct uring_io *io)
{
    struct io_uring_sqe *sqe = sqe_get(u);
    if (!sqe)
        return false;
    io_uring_prep_send(sqe, io->fd, (const char *)io->tx.data + io->tx_sent,
                       io->tx.len - io->tx_sent, MSG_NOSIGNAL);
    io_uring_sqe_set_data64(sqe, (uintptr_t)io | OP_SEND);
    io->send_armed = true;
    return true;
}

void uring_submit(struct uring *u)
{
    if (io_uring_sq_ready(&u->ring) > 0)
        io_uring_submit(&u->ring);
}

unsigned uring_poll(struct uring *u)
{
    if (io_uring_sq_ready(&u->ring) > 0)
        io_uring_submit(&u->ring);
    else
        io_uring_get_events(&u->ring);
    return reap(u);
}
