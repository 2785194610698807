/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Helpers of the hostile-client suites, beside tests/server/harness.h:
 * a server bound to any address, sockets that may fail (many of them, or
 * to a server that closes), INFO fields, a server's resident memory (now
 * and at its peak), and round-trip timings. Every wait has a deadline.
 */
#ifndef KVS_TESTS_HOSTILE_HOSTILE_H
#define KVS_TESTS_HOSTILE_HOSTILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "harness.h"

/* A connected blocking TCP socket to ip:port with TCP_NODELAY, or -1. */
int hx_connect(const char *ip, uint16_t port);

/* Send what the peer takes of buf until done, the peer closes, or
   timeout_ms; returns the bytes sent (no assertion: the server may close
   on purpose). */
size_t hx_send_some(int fd, const void *buf, size_t len, int timeout_ms);

/* Read into buf (len bytes at most) until EOF, len bytes or timeout_ms of
   silence; returns the bytes read and sets *eof when the peer closed. */
size_t hx_recv_until_close(int fd, void *buf, size_t len, int timeout_ms, bool *eof);

/* A numeric INFO field ("connected_clients"), asked on fd. */
long long hx_info(int fd, const char *section, const char *field);

/* Wait until the INFO field reaches at least value; fails the test at the
   deadline. */
void hx_wait_info(int fd, const char *section, const char *field, long long value, int timeout_ms);

/* The server's resident memory, from /proc/PID/status VmRSS, in KiB. */
long hx_rss_kb(pid_t pid);

/* The server's peak resident memory, from /proc/PID/status VmHWM, in KiB;
   hx_reset_peak_rss() restarts that peak from the current RSS (writes 5 to
   /proc/PID/clear_refs, Linux 4.0+), so that a test sees the peak of one
   step only. */
long hx_peak_rss_kb(pid_t pid);
void hx_reset_peak_rss(pid_t pid);

/* The soft "Max open files" of a process, from /proc/PID/limits. */
long hx_fd_limit(pid_t pid);

/* Monotonic clock in microseconds. */
long long hx_now_us(void);

/* The p-th percentile (0..100) of n samples; sorts them. */
long long hx_percentile(long long *samples, size_t n, double p);

#endif
