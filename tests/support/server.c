/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Test support: spawning kvs-server and other programs with deadlines; see
 * server.h. Children are watched through pidfds so that every wait is a
 * poll() on an event with a timeout, never a sleep-and-check loop.
 */
#include "support/server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* A runaway child could write without end until its deadline; output past
   this much is read and dropped so that a test cannot exhaust memory. */
#define CAPTURE_MAX (64u << 20)

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int timeout_or_default(int timeout_ms)
{
    return timeout_ms > 0 ? timeout_ms : TS_DEFAULT_TIMEOUT_MS;
}

static int remaining_ms(long long deadline)
{
    long long left = deadline - now_ms();
    return left > 0 ? (int)left : 0;
}

static int decode_status(int ws)
{
    if (WIFEXITED(ws))
        return WEXITSTATUS(ws);
    if (WIFSIGNALED(ws))
        return 128 + WTERMSIG(ws);
    return -1;
}

/* Fill a loopback address of host (IPv4 or IPv6 text) and port. */
static int loopback_addr(const char *host, uint16_t port, struct sockaddr_storage *ss,
                         socklen_t *len)
{
    memset(ss, 0, sizeof(*ss));
    if (!host)
        host = "127.0.0.1";
    if (strchr(host, ':')) {
        struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons(port);
        *len = sizeof(*a6);
        return inet_pton(AF_INET6, host, &a6->sin6_addr) == 1 ? 0 : -1;
    }
    struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
    a4->sin_family = AF_INET;
    a4->sin_port = htons(port);
    *len = sizeof(*a4);
    return inet_pton(AF_INET, host, &a4->sin_addr) == 1 ? 0 : -1;
}

uint16_t ts_free_port(const char *host)
{
    struct sockaddr_storage ss;
    socklen_t len;
    if (loopback_addr(host, 0, &ss, &len) != 0)
        return 0;
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return 0;
    uint16_t port = 0;
    if (bind(fd, (struct sockaddr *)&ss, len) == 0 &&
        getsockname(fd, (struct sockaddr *)&ss, &len) == 0)
        port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                              : ((struct sockaddr_in *)&ss)->sin_port);
    close(fd);
    return port;
}

/*
 * Fork and exec argv with the given descriptors as 0, 1 and 2 (-1: keep the
 * test's). An exec failure is reported back through a close-on-exec pipe, so
 * a missing binary is an error here rather than a child exiting with 127.
 */
static int spawn(const char *const argv[], int in_fd, int out_fd, int err_fd, pid_t *pidp,
                 int *pidfdp)
{
    int report[2];
    if (pipe2(report, O_CLOEXEC) != 0)
        return -1;
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        close(report[0]);
        close(report[1]);
        return -1;
    }
    if (pid == 0) {
        /* Only async-signal-safe calls from here to exec. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        /* A signal mask survives exec: the server must see SIGTERM. */
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        if ((in_fd >= 0 && dup2(in_fd, 0) < 0) || (out_fd >= 0 && dup2(out_fd, 1) < 0) ||
            (err_fd >= 0 && dup2(err_fd, 2) < 0)) {
            int e = errno;
            (void)!write(report[1], &e, sizeof(e));
            _exit(127);
        }
        execvp(argv[0], (char *const *)argv);
        int e = errno;
        (void)!write(report[1], &e, sizeof(e));
        _exit(127);
    }
    close(report[1]);
    int child_errno = 0;
    ssize_t n;
    do
        n = read(report[0], &child_errno, sizeof(child_errno));
    while (n < 0 && errno == EINTR);
    close(report[0]);
    if (n > 0) {
        waitpid(pid, NULL, 0);
        errno = child_errno;
        return -1;
    }
    int pidfd = pidfd_open(pid, 0);
    if (pidfd < 0) {
        int e = errno;
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        errno = e;
        return -1;
    }
    *pidp = pid;
    *pidfdp = pidfd;
    return 0;
}

/* Wait up to timeout_ms for the child to exit and reap it. Returns its
   status (see decode_status), or -2 when the deadline passed first. */
static int wait_child(pid_t pid, int pidfd, int timeout_ms)
{
    struct pollfd pfd = {.fd = pidfd, .events = POLLIN};
    long long deadline = now_ms() + timeout_ms;
    for (;;) {
        int n = poll(&pfd, 1, remaining_ms(deadline));
        if (n > 0)
            break;
        if (n == 0)
            return -2;
        if (errno != EINTR)
            return -2;
    }
    int ws;
    pid_t r;
    do
        r = waitpid(pid, &ws, 0);
    while (r < 0 && errno == EINTR);
    return r == pid ? decode_status(ws) : -1;
}

/* Reap a child, killing it first if it has not exited within timeout_ms. */
static int finish_child(ts_server *s, int timeout_ms)
{
    if (s->pid <= 0)
        return -1;
    int status = wait_child(s->pid, s->pidfd, timeout_ms);
    if (status == -2) {
        s->timed_out = true;
        kill(s->pid, SIGKILL);
        status = wait_child(s->pid, s->pidfd, TS_DEFAULT_TIMEOUT_MS);
    }
    close(s->pidfd);
    s->pidfd = -1;
    s->pid = 0;
    s->status = status;
    return status;
}

/* Whether something accepts TCP connections at ss now. */
static bool accepts(const struct sockaddr_storage *ss, socklen_t len)
{
    int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    int rc;
    do
        rc = connect(fd, (const struct sockaddr *)ss, len);
    while (rc != 0 && errno == EINTR);
    close(fd);
    return rc == 0;
}

int ts_server_start(ts_server *s, const ts_server_opts *opts)
{
    memset(s, 0, sizeof(*s));
    s->pidfd = -1;
    s->status = -1;
    const char *host = opts->host ? opts->host : "127.0.0.1";
    bool v6 = strchr(host, ':') != NULL;
    s->port = opts->no_addr ? opts->port : ts_free_port(host);
    if (s->port == 0)
        return TS_FAILED;
    snprintf(s->addr, sizeof(s->addr), v6 ? "[%s]:%u" : "%s:%u", host, (unsigned)s->port);
    struct sockaddr_storage ss;
    socklen_t sslen;
    if (loopback_addr(host, s->port, &ss, &sslen) != 0)
        return TS_FAILED;

    size_t nargs = 0;
    while (opts->args && opts->args[nargs])
        nargs++;
    const char **argv = calloc(nargs + 6, sizeof(*argv));
    if (!argv)
        return TS_FAILED;
    size_t argc = 0;
    argv[argc++] = opts->binary;
    if (!opts->no_addr) {
        argv[argc++] = "--addr";
        argv[argc++] = s->addr;
    }
    bool own_backend = false;
    for (size_t i = 0; i < nargs; i++) {
        own_backend |= strcmp(opts->args[i], "--io-backend") == 0;
        argv[argc++] = opts->args[i];
    }
    /* $KVS_TEST_IO_BACKEND runs every kvs-server of the suites on one
       network path (scripts/test runs them on each), unless the test
       chose one. Last: a configuration file must come first. */
    const char *backend = getenv("KVS_TEST_IO_BACKEND");
    const char *base = strrchr(opts->binary, '/');
    if (backend && *backend && !own_backend &&
        strcmp(base ? base + 1 : opts->binary, "kvs-server") == 0) {
        argv[argc++] = "--io-backend";
        argv[argc++] = backend;
    }
    argv[argc] = NULL;

    int rc = TS_FAILED;
    int in_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    int log_fd = -1;
    if (in_fd < 0)
        goto out_argv;
    if (opts->log_path) {
        log_fd = open(opts->log_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (log_fd < 0)
            goto out_fds;
    }
    if (spawn(argv, in_fd, log_fd, log_fd, &s->pid, &s->pidfd) != 0)
        goto out_fds;

    /* Poll connect() until it succeeds; between attempts wait on the pidfd,
       so a server that exits (bad flags, wrong engine) ends the wait at once. */
    long long deadline = now_ms() + timeout_or_default(opts->timeout_ms);
    int backoff = 1;
    for (;;) {
        if (accepts(&ss, sslen)) {
            rc = TS_READY;
            break;
        }
        int left = remaining_ms(deadline);
        if (left == 0) {
            finish_child(s, 0);
            s->timed_out = true;
            rc = TS_TIMEOUT;
            break;
        }
        struct pollfd pfd = {.fd = s->pidfd, .events = POLLIN};
        if (poll(&pfd, 1, backoff < left ? backoff : left) > 0) {
            finish_child(s, TS_DEFAULT_TIMEOUT_MS);
            rc = TS_EXITED;
            break;
        }
        if (backoff < 20)
            backoff *= 2;
    }
out_fds:
    if (log_fd >= 0)
        close(log_fd);
    if (in_fd >= 0)
        close(in_fd);
out_argv:
    free(argv);
    return rc;
}

int ts_server_stop(ts_server *s, int timeout_ms)
{
    if (s->pid <= 0)
        return -1;
    s->timed_out = false;
    kill(s->pid, SIGTERM);
    return finish_child(s, timeout_or_default(timeout_ms));
}

int ts_server_kill(ts_server *s)
{
    if (s->pid <= 0)
        return -1;
    s->timed_out = false;
    kill(s->pid, SIGKILL);
    return finish_child(s, TS_DEFAULT_TIMEOUT_MS);
}

int ts_server_wait(ts_server *s, int timeout_ms)
{
    if (s->pid <= 0)
        return -1;
    s->timed_out = false;
    return finish_child(s, timeout_or_default(timeout_ms));
}

/* A growing capture buffer, always NUL-terminated. */
struct capture {
    char *data;
    size_t len, cap;
};

static int capture_read(struct capture *c, int fd)
{
    char chunk[16384];
    ssize_t n = read(fd, chunk, sizeof(chunk));
    if (n < 0)
        return errno == EINTR || errno == EAGAIN ? 1 : -1;
    if (n == 0)
        return 0;
    size_t keep = (size_t)n;
    if (c->len + keep > CAPTURE_MAX)
        keep = CAPTURE_MAX - c->len;
    if (c->len + keep + 1 > c->cap) {
        size_t cap = c->cap ? c->cap : 1024;
        while (cap < c->len + keep + 1)
            cap *= 2;
        char *p = realloc(c->data, cap);
        if (!p)
            return -1;
        c->data = p;
        c->cap = cap;
    }
    memcpy(c->data + c->len, chunk, keep);
    c->len += keep;
    c->data[c->len] = '\0';
    return 1;
}

static char *capture_take(struct capture *c, size_t *len)
{
    *len = c->len;
    if (!c->data)
        return calloc(1, 1);
    return c->data;
}

int ts_run(const char *const argv[], const void *input, size_t input_len, int timeout_ms,
           ts_result *r)
{
    memset(r, 0, sizeof(*r));
    r->status = -1;
    struct capture cap[2] = {{0}};
    int out_pipe[2] = {-1, -1}, err_pipe[2] = {-1, -1};
    /* stdin is a socket rather than a pipe so that writing to a child that
       stopped reading gives EPIPE (MSG_NOSIGNAL) instead of killing the test. */
    int in_pair[2] = {-1, -1};
    int in_fd = -1;
    int rc = -1;
    pid_t pid = 0;
    int pidfd = -1;

    if (pipe2(out_pipe, O_CLOEXEC) != 0 || pipe2(err_pipe, O_CLOEXEC) != 0)
        goto out;
    if (input) {
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, in_pair) != 0)
            goto out;
        in_fd = in_pair[1];
    } else {
        in_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (in_fd < 0)
            goto out;
    }
    if (spawn(argv, in_fd, out_pipe[1], err_pipe[1], &pid, &pidfd) != 0)
        goto out;
    rc = 0;
    close(out_pipe[1]);
    close(err_pipe[1]);
    close(in_fd);
    out_pipe[1] = err_pipe[1] = in_fd = -1;
    if (input && input_len == 0) {
        close(in_pair[0]);
        in_pair[0] = -1;
    }

    long long deadline = now_ms() + timeout_or_default(timeout_ms);
    size_t sent = 0;
    int open_outputs = 2;
    while (open_outputs > 0) {
        struct pollfd pfd[3] = {
            {.fd = out_pipe[0], .events = POLLIN},
            {.fd = err_pipe[0], .events = POLLIN},
            {.fd = in_pair[0], .events = POLLOUT},
        };
        int n = poll(pfd, 3, remaining_ms(deadline));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            r->timed_out = true;
            kill(pid, SIGKILL);
            break;
        }
        for (int i = 0; i < 2; i++) {
            if (pfd[i].fd < 0 || !(pfd[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            if (capture_read(&cap[i], pfd[i].fd) <= 0) {
                close(pfd[i].fd);
                (i == 0 ? out_pipe : err_pipe)[0] = -1;
                open_outputs--;
            }
        }
        if (in_pair[0] >= 0 && pfd[2].revents) {
            ssize_t w = send(in_pair[0], (const char *)input + sent, input_len - sent,
                             MSG_NOSIGNAL | MSG_DONTWAIT);
            if (w > 0)
                sent += (size_t)w;
            if ((w < 0 && errno != EAGAIN && errno != EINTR) || sent == input_len) {
                close(in_pair[0]);
                in_pair[0] = -1;
            }
        }
    }
    int status =
        wait_child(pid, pidfd, r->timed_out ? TS_DEFAULT_TIMEOUT_MS : remaining_ms(deadline));
    if (status == -2) {
        r->timed_out = true;
        kill(pid, SIGKILL);
        status = wait_child(pid, pidfd, TS_DEFAULT_TIMEOUT_MS);
    }
    r->status = status;
    close(pidfd);
out:
    for (int i = 0; i < 2; i++) {
        if (out_pipe[i] >= 0)
            close(out_pipe[i]);
        if (err_pipe[i] >= 0)
            close(err_pipe[i]);
    }
    if (in_pair[0] >= 0)
        close(in_pair[0]);
    if (in_fd >= 0)
        close(in_fd);
    r->out = capture_take(&cap[0], &r->out_len);
    r->err = capture_take(&cap[1], &r->err_len);
    return rc;
}

void ts_result_free(ts_result *r)
{
    if (!r)
        return;
    free(r->out);
    free(r->err);
    r->out = r->err = NULL;
    r->out_len = r->err_len = 0;
}

char *ts_read_file(const char *path, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    struct capture c = {0};
    int rc;
    while ((rc = capture_read(&c, fd)) > 0)
        ;
    close(fd);
    if (rc < 0) {
        free(c.data);
        return NULL;
    }
    return capture_take(&c, len ? len : &c.len);
}
