/* SPDX-License-Identifier: BSD-3-Clause */
/* Helpers of the hostile-client suites; see hostile.h. */
#include "hostile.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

long long hx_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int hx_connect(const char *ip, uint16_t port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    if (inet_pton(AF_INET, ip, &sa.sin_addr) != 1)
        return -1;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        close(fd);
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;
}

size_t hx_send_some(int fd, const void *buf, size_t len, int timeout_ms)
{
    long long deadline = hx_now_us() + (long long)timeout_ms * 1000;
    size_t sent = 0;
    while (sent < len) {
        ssize_t n = send(fd, (const char *)buf + sent, len - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            sent += (size_t)n;
            continue;
        }
        if (n < 0 && errno != EAGAIN && errno != EINTR)
            break; /* closed by the server */
        long long left = (deadline - hx_now_us()) / 1000;
        if (left <= 0)
            break;
        struct pollfd p = {.fd = fd, .events = POLLOUT};
        poll(&p, 1, (int)left);
    }
    return sent;
}

size_t hx_recv_until_close(int fd, void *buf, size_t len, int timeout_ms, bool *eof)
{
    size_t got = 0;
    *eof = false;
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int r = poll(&p, 1, timeout_ms);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return got;
        char sink[4096];
        char *to = got < len ? (char *)buf + got : sink;
        size_t room = got < len ? len - got : sizeof(sink);
        ssize_t n = recv(fd, to, room, MSG_DONTWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            continue;
        if (n <= 0) {
            *eof = true;
            return got;
        }
        if (got < len)
            got += (size_t)n;
    }
}

long long hx_info(int fd, const char *section, const char *field)
{
    char cmd[64];
    int n = snprintf(cmd, sizeof(cmd), "INFO %s\r\n", section);
    h_send(fd, cmd, (size_t)n);
    char head[32];
    size_t i = 0;
    /* "$LEN\r\n" one byte at a time, then the bulk and its CRLF. */
    for (; i < sizeof(head) - 1; i++) {
        h_recv(fd, &head[i], 1);
        if (head[i] == '\n')
            break;
    }
    head[i + 1] = '\0';
    cr_assert_eq(head[0], '$', "INFO reply: %s", head);
    size_t len = strtoul(head + 1, NULL, 10);
    char *text = malloc(len + 3);
    cr_assert_not_null(text);
    h_recv(fd, text, len + 2);
    text[len] = '\0';
    char key[80];
    snprintf(key, sizeof(key), "%s:", field);
    const char *at = strstr(text, key);
    long long v = at ? strtoll(at + strlen(key), NULL, 10) : -1;
    free(text);
    cr_assert(at, "INFO %s has no %s", section, field);
    return v;
}

void hx_wait_info(int fd, const char *section, const char *field, long long value, int timeout_ms)
{
    long long deadline = hx_now_us() + (long long)timeout_ms * 1000;
    long long v;
    while ((v = hx_info(fd, section, field)) < value) {
        cr_assert_lt(hx_now_us(), deadline, "%s stayed at %lld, short of %lld", field, v, value);
        struct timespec pause = {0, 20 * 1000 * 1000};
        nanosleep(&pause, NULL); /* polling a remote counter: no event to wait on */
    }
}

static long proc_field(pid_t pid, const char *file, const char *key, int column)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, file);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    char line[256];
    long v = -1;
    while (fgets(line, sizeof(line), f)) {
        if (strncmp(line, key, strlen(key)) != 0)
            continue;
        char *p = line + strlen(key);
        for (int c = 0; c < column; c++) {
            while (*p == ' ' || *p == '\t')
                p++;
            if (c + 1 < column)
                while (*p && *p != ' ' && *p != '\t')
                    p++;
        }
        v = strtol(p, NULL, 10);
        break;
    }
    fclose(f);
    return v;
}

long hx_rss_kb(pid_t pid)
{
    return proc_field(pid, "status", "VmRSS:", 1);
}

long hx_peak_rss_kb(pid_t pid)
{
    return proc_field(pid, "status", "VmHWM:", 1);
}

void hx_reset_peak_rss(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/clear_refs", (int)pid);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f, "%s: %s", path, strerror(errno));
    cr_assert(fputs("5", f) >= 0 && fclose(f) == 0, "%s: %s", path, strerror(errno));
}

long hx_fd_limit(pid_t pid)
{
    return proc_field(pid, "limits", "Max open files", 1);
}

static int cmp_ll(const void *a, const void *b)
{
    long long x = *(const long long *)a, y = *(const long long *)b;
    return (x > y) - (x < y);
}

long long hx_percentile(long long *samples, size_t n, double p)
{
    qsort(samples, n, sizeof(*samples), cmp_ll);
    size_t i = (size_t)(p / 100.0 * (double)(n - 1) + 0.5);
    return samples[i < n ? i : n - 1];
}
