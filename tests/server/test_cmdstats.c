/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * INFO commandstats and INFO latencystats: the same commands go to
 * kvs-server and to a real redis-server, and each must list the same
 * commands and subcommands with the same calls, rejected_calls and
 * failed_calls, in Redis 7's line format; CONFIG RESETSTAT empties both
 * sections; batched writes are counted with their time; rejections before
 * authentication count as Redis counts them.
 */
#include <criterion/criterion.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "differential.h"

/* One line of either section, as a name and its text after the ':'. */
struct line {
    char name[64];
    char rest[192];
};

/* The lines of an INFO reply (a bulk string) that start with prefix. */
static size_t parse_lines(const char *reply, const char *prefix, struct line *out, size_t max)
{
    size_t n = 0, plen = strlen(prefix);
    for (const char *p = reply; p && *p && n < max;) {
        const char *eol = strstr(p, "\r\n");
        size_t len = eol ? (size_t)(eol - p) : strlen(p);
        const char *colon = memchr(p, ':', len);
        if (len > plen && strncmp(p, prefix, plen) == 0 && colon) {
            snprintf(out[n].name, sizeof(out[n].name), "%.*s", (int)(colon - p - plen), p + plen);
            snprintf(out[n].rest, sizeof(out[n].rest), "%.*s", (int)(len - (size_t)(colon - p) - 1),
                     colon + 1);
            n++;
        }
        p = eol ? eol + 2 : NULL;
    }
    return n;
}

static const struct line *find(const struct line *lines, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(lines[i].name, name) == 0)
            return &lines[i];
    }
    return NULL;
}

static bool matches(const char *pattern, const char *text)
{
    regex_t re;
    cr_assert_eq(regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB), 0);
    bool ok = regexec(&re, text, 0, NULL, 0) == 0;
    regfree(&re);
    return ok;
}

#define CMDSTAT_RE                                                                                 \
    "^calls=[0-9]+,usec=[0-9]+,usec_per_call=[0-9]+\\.[0-9]{2},rejected_calls=[0-9]+,"             \
    "failed_calls=[0-9]+$"
#define LATENCY_RE "^p50=[0-9]+\\.[0-9]{3},p99=[0-9]+\\.[0-9]{3},p99\\.9=[0-9]+\\.[0-9]{3}$"

/* calls, rejected_calls and failed_calls of a commandstats line. */
static void counts(const char *rest, unsigned long long c[3])
{
    unsigned long long usec;
    double per;
    cr_assert_eq(sscanf(rest,
                        "calls=%llu,usec=%llu,usec_per_call=%lf,rejected_calls=%llu,"
                        "failed_calls=%llu",
                        &c[0], &usec, &per, &c[1], &c[2]),
                 5, "%s", rest);
}

static char *info(int fd, const char *section)
{
    size_t len;
    kvs_slice argv[] = {kvs_slice_str("INFO"), kvs_slice_str(section)};
    return d_ask(fd, 2, argv, &len);
}

static const struct dcmd script[] = {
    CMD(EXACT, S("CONFIG"), S("RESETSTAT")),
    CMD(EXACT, S("SET"), S("a"), S("b")),
    CMD(EXACT, S("GET"), S("a")),
    CMD(EXACT, S("GET"), S("missing")),
    CMD(EXACT, S("SET"), S("a"), S("b"), S("NX"), S("XX")), /* failed: syntax error */
    CMD(EXACT, S("SET"), S("k"), S("v"), S("EX"), S("0")),  /* failed: bad time */
    CMD(EXACT, S("SET"), S("k"), S("v"), S("EX"), S("100")),
    CMD(EXACT, S("GET")),              /* rejected: arity */
    CMD(EXACT, S("CONFIG"), S("FOO")), /* not counted */
    CMD(EXACT, S("CONFIG"), S("GET")), /* rejected: config|get */
    CMD(EXACT, S("CONFIG"), S("GET"), S("maxmemory")),
    CMD(EXACT, S("CLIENT"), S("SETNAME"), S("x"), S("y")), /* rejected: client|setname */
    CMD(EXACT, S("CLIENT"), S("GETNAME")),
    CMD(EXACT, S("NOSUCHCOMMAND")), /* not counted */
    CMD(EXACT, S("MSET"), S("x"), S("1"), S("y"), S("2")),
    CMD(EXACT, S("MGET"), S("x"), S("y"), S("z")),
    CMD(EXACT, S("DEL"), S("x"), S("nosuch")),
    CMD(EXACT, S("EXISTS"), S("x"), S("y")),
    CMD(EXACT, S("STRLEN"), S("y")),
    CMD(EXACT, S("TYPE"), S("y")),
    CMD(EXACT, S("TOUCH"), S("y")),
    CMD(EXACT, S("UNLINK"), S("y")),
    CMD(EXACT, S("PING")),
    CMD(EXACT, S("ECHO"), S("hi")),
    CMD(EXACT, S("SETEX"), S("t"), S("10"), S("v")),
    CMD(EXACT, S("TTL"), S("t")),
};

Test(cmdstats, same_as_redis, .timeout = 60)
{
    struct h_server h;
    struct d_redis r;
    h_start(&h, "kvs", NULL);
    d_redis_start(&r);
    int kfd = d_connect_port(h.s.port), rfd = d_connect_port(r.s.port);
    for (size_t i = 0; i < sizeof(script) / sizeof(script[0]); i++)
        d_run_one(kfd, rfd, &script[i]);
    /* Pipelined batched writes, so that some share a batch. */
    for (int round = 0; round < 2; round++) {
        int fd = round ? rfd : kfd;
        char buf[64 * 40];
        size_t len = 0;
        for (int i = 0; i < 64; i++)
            len += (size_t)snprintf(buf + len, sizeof(buf) - len,
                                    "*3\r\n$3\r\nSET\r\n$2\r\nk%d\r\n$1\r\nv\r\n", i % 10);
        h_send(fd, buf, len);
        for (int i = 0; i < 64; i++)
            H_EXPECT(fd, "+OK\r\n");
    }

    char *kinfo = info(kfd, "commandstats"), *rinfo = info(rfd, "commandstats");
    cr_expect(strstr(kinfo, "# Commandstats\r\n"), "%s", kinfo);
    struct line kl[64], rl[64];
    size_t nk = parse_lines(kinfo, "cmdstat_", kl, 64), nr = parse_lines(rinfo, "cmdstat_", rl, 64);
    cr_expect_eq(nk, nr, "kvs lists %zu commands, redis %zu:\n%s\n%s", nk, nr, kinfo, rinfo);
    for (size_t i = 0; i < nr; i++) {
        const struct line *k = find(kl, nk, rl[i].name);
        cr_expect(k, "kvs lists no cmdstat_%s:\n%s", rl[i].name, kinfo);
        if (!k)
            continue;
        cr_expect(matches(CMDSTAT_RE, k->rest), "cmdstat_%s:%s", k->name, k->rest);
        unsigned long long kc[3], rc[3];
        counts(k->rest, kc);
        counts(rl[i].rest, rc);
        cr_expect(kc[0] == rc[0] && kc[1] == rc[1] && kc[2] == rc[2],
                  "cmdstat_%s: kvs %s, redis %s", k->name, k->rest, rl[i].rest);
    }
    /* Every batched SET took some time. */
    const struct line *set = find(kl, nk, "set");
    cr_assert(set);
    unsigned long long calls, usec;
    cr_assert_eq(sscanf(set->rest, "calls=%llu,usec=%llu", &calls, &usec), 2);
    cr_expect_gt(usec, 0, "%s", set->rest);

    char *klat = info(kfd, "latencystats"), *rlat = info(rfd, "latencystats");
    nk = parse_lines(klat, "latency_percentiles_usec_", kl, 64);
    nr = parse_lines(rlat, "latency_percentiles_usec_", rl, 64);
    cr_expect_eq(nk, nr, "kvs lists %zu commands, redis %zu:\n%s\n%s", nk, nr, klat, rlat);
    for (size_t i = 0; i < nr; i++) {
        const struct line *k = find(kl, nk, rl[i].name);
        cr_expect(k, "kvs lists no latency_percentiles_usec_%s:\n%s", rl[i].name, klat);
        if (!k)
            continue;
        cr_expect(matches(LATENCY_RE, k->rest), "%s:%s", k->name, k->rest);
        double p50, p99, p999;
        cr_assert_eq(sscanf(k->rest, "p50=%lf,p99=%lf,p99.9=%lf", &p50, &p99, &p999), 3);
        cr_expect(p50 > 0 && p50 <= p99 && p99 <= p999, "%s:%s", k->name, k->rest);
    }
    free(kinfo);
    free(rinfo);
    free(klat);
    free(rlat);

    /* INFO and INFO default leave the two sections out; all has them. */
    char *def = info(kfd, "default");
    cr_expect(!strstr(def, "# Commandstats") && !strstr(def, "# Latencystats"));
    free(def);
    char *all = info(kfd, "all");
    cr_expect(strstr(all, "# Commandstats\r\ncmdstat_") && strstr(all, "# Latencystats\r\n"));
    free(all);

    close(kfd);
    close(rfd);
    d_redis_stop(&r);
    h_stop(&h);
}

/* CONFIG RESETSTAT empties both sections, on every worker: afterwards only
   itself (and, in latencystats, the INFO before) is listed. */
Test(cmdstats, resetstat, .timeout = 60)
{
    struct h_server h;
    const char *args[] = {"--threads", "2", NULL};
    h_start(&h, "kvs", args);
    int fds[4];
    for (int i = 0; i < 4; i++) {
        fds[i] = h_connect(&h);
        H_ROUNDTRIP(fds[i], "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n", "+OK\r\n");
        H_ROUNDTRIP(fds[i], "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n", "$1\r\nv\r\n");
    }
    char *before = info(fds[0], "commandstats");
    cr_expect(strstr(before, "cmdstat_get:calls=4,"), "%s", before);
    cr_expect(strstr(before, "cmdstat_set:calls=4,"), "%s", before);
    free(before);
    H_ROUNDTRIP(fds[1], "*2\r\n$6\r\nCONFIG\r\n$9\r\nRESETSTAT\r\n", "+OK\r\n");
    char *after = info(fds[2], "commandstats");
    struct line l[8];
    size_t n = parse_lines(after, "cmdstat_", l, 8);
    cr_expect(n == 1 && strcmp(l[0].name, "config|resetstat") == 0, "%s", after);
    free(after);
    char *lat = info(fds[3], "latencystats");
    n = parse_lines(lat, "latency_percentiles_usec_", l, 8);
    cr_expect(n == 2 && find(l, n, "config|resetstat") && find(l, n, "info"), "%s", lat);
    free(lat);
    H_ROUNDTRIP(fds[0], "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n", "$1\r\nv\r\n");
    char *again = info(fds[1], "commandstats");
    cr_expect(strstr(again, "cmdstat_get:calls=1,"), "%s", again);
    free(again);
    for (int i = 0; i < 4; i++)
        close(fds[i]);
    h_stop(&h);
}

/* Under --requirepass a command before AUTH is rejected, as Redis counts
   it; AUTH itself is a call. */
Test(cmdstats, noauth_is_rejected, .timeout = 60)
{
    struct h_server h;
    const char *args[] = {"--requirepass", "pw", NULL};
    h_start(&h, "kvs", args);
    int fd = h_connect(&h);
    H_ROUNDTRIP(fd, "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n", "-NOAUTH Authentication required.\r\n");
    H_ROUNDTRIP(fd, "*2\r\n$4\r\nAUTH\r\n$2\r\npw\r\n", "+OK\r\n");
    char *text = info(fd, "commandstats");
    cr_expect(strstr(text, "cmdstat_get:calls=0,usec=0,usec_per_call=0.00,rejected_calls=1,"
                           "failed_calls=0\r\n"),
              "%s", text);
    cr_expect(strstr(text, "cmdstat_auth:calls=1,"), "%s", text);
    free(text);
    close(fd);
    h_stop(&h);
}
