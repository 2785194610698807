/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The HTTP/JSON interface (--http-addr, docs/http.md) end to end: a real
 * kvs-server per test with its HTTP listener on a free loopback port,
 * driven by libcurl (and raw sockets where a client must misbehave), on
 * every engine: every route and status, binary and percent-encoded keys,
 * HTTP and RESP (hiredis) seeing the same data, expiry times, 64 clients at
 * once, the limits (URL, headers, body, slow and idle clients, keep-alive),
 * the password, protected mode (in a network namespace of the test's own,
 * where it can make one), maxclients, and /_health while the store refuses
 * writes (fsync made to fail by an LD_PRELOAD shim built beside this
 * suite).
 *
 * Every test has the same .timeout: with two values in one run, Criterion's
 * runner (2.4) leaks a timer record, which LeakSanitizer reports.
 */
#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <curl/curl.h>
#include <errno.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

#define ENGINE_TEST(suite, name, ...)                                                              \
    ParameterizedTestParameters(suite, name)                                                       \
    {                                                                                              \
        H_ENGINE_PARAMS;                                                                           \
    }                                                                                              \
    ParameterizedTest(struct ts_engine_param *engine, suite, name, __VA_ARGS__)

/* A server with its HTTP listener. */
struct hs {
    struct h_server h;
    uint16_t http_port;
    char http_host[64]; /* where clients reach it */
    char base[96];      /* http://HOST:PORT */
};

#define MAX_EXTRA 32

/* Start a server on engine with --http-addr HOST:<free port> (host NULL:
   127.0.0.1) and the extra arguments. */
static void hs_start_on(struct hs *s, const char *engine, const char *host,
                        const char *const *extra)
{
    memset(s, 0, sizeof(*s));
    snprintf(s->http_host, sizeof(s->http_host), "%s", host ? host : "127.0.0.1");
    s->http_port = ts_free_port(host);
    cr_assert_neq(s->http_port, 0);
    char addr[96];
    snprintf(addr, sizeof(addr), "%s:%u", s->http_host, (unsigned)s->http_port);
    const char *args[MAX_EXTRA + 3] = {"--http-addr", addr};
    size_t n = 2;
    for (size_t i = 0; extra && extra[i]; i++) {
        cr_assert_lt(n, MAX_EXTRA);
        args[n++] = extra[i];
    }
    args[n] = NULL;
    h_start(&s->h, engine, args);
    snprintf(s->base, sizeof(s->base), "http://%s:%u", s->http_host, (unsigned)s->http_port);
}

static void hs_start(struct hs *s, const char *engine, const char *const *extra)
{
    hs_start_on(s, engine, NULL, extra);
}

/* ---- libcurl ---- */

struct reply {
    long status;
    char *body; /* NUL-terminated; len bytes */
    size_t len;
    char head[8192]; /* the header lines */
    size_t head_len;
    CURLcode rc;
};

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
    struct reply *r = arg;
    size_t len = size * n;
    char *b = realloc(r->body, r->len + len + 1);
    if (!b)
        return 0;
    memcpy(b + r->len, p, len);
    r->body = b;
    r->len += len;
    r->body[r->len] = '\0';
    return len;
}

static size_t on_header(char *p, size_t size, size_t n, void *arg)
{
    struct reply *r = arg;
    size_t len = size * n;
    if (r->head_len + len < sizeof(r->head)) {
        memcpy(r->head + r->head_len, p, len);
        r->head_len += len;
        r->head[r->head_len] = '\0';
    }
    return len;
}

static void reply_free(struct reply *r)
{
    free(r->body);
    r->body = NULL;
}

/* The value of header name in r (the last one), copied into out; false if
   absent. */
static bool header(const struct reply *r, const char *name, char *out, size_t size)
{
    bool found = false;
    size_t nlen = strlen(name);
    for (const char *line = r->head; *line;) {
        const char *end = strstr(line, "\r\n");
        if (!end)
            break;
        if (strncasecmp(line, name, nlen) == 0 && line[nlen] == ':') {
            const char *v = line + nlen + 1;
            while (*v == ' ')
                v++;
            snprintf(out, size, "%.*s", (int)(end - v), v);
            found = true;
        }
        line = end + 2;
    }
    return found;
}

/* One request on handle c (NULL: a new one, for this request only):
   method, path (raw: sent as it is), body of len bytes (NULL: none), extra
   header lines (NULL-terminated, or NULL). */
static void request_on(CURL *c, const char *base, const char *method, const char *path,
                       const void *body, size_t len, const char *const *headers, struct reply *r)
{
    bool own = !c;
    if (own)
        c = curl_easy_init();
    cr_assert_not_null(c);
    memset(r, 0, sizeof(*r));
    char url[16384];
    snprintf(url, sizeof(url), "%s%s", base, path);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_PATH_AS_IS, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)H_TIMEOUT_MS);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(c, CURLOPT_NOBODY, strcmp(method, "HEAD") == 0 ? 1L : 0L);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, strcmp(method, "HEAD") == 0 ? NULL : method);
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    } else {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, NULL);
        curl_easy_setopt(c, CURLOPT_HTTPGET, strcmp(method, "HEAD") == 0 ? 0L : 1L);
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, strcmp(method, "HEAD") == 0 ? NULL : method);
        curl_easy_setopt(c, CURLOPT_NOBODY, strcmp(method, "HEAD") == 0 ? 1L : 0L);
    }
    struct curl_slist *list = NULL;
    /* No "Expect: 100-continue" round trip for bodies. */
    list = curl_slist_append(list, "Expect:");
    for (size_t i = 0; headers && headers[i]; i++)
        list = curl_slist_append(list, headers[i]);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, list);
    r->rc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
    curl_slist_free_all(list);
    if (own)
        curl_easy_cleanup(c);
    if (!r->body) {
        r->body = calloc(1, 1);
        cr_assert_not_null(r->body);
    }
}

static void request(struct hs *s, const char *method, const char *path, const void *body,
                    size_t len, const char *const *headers, struct reply *r)
{
    request_on(NULL, s->base, method, path, body, len, headers, r);
    cr_assert_eq(r->rc, CURLE_OK, "%s %s: %s", method, path, curl_easy_strerror(r->rc));
}

/* A request that must answer status with body (NULL: any body). */
static void expect(struct hs *s, const char *method, const char *path, const char *body,
                   const char *const *headers, long status, const char *want)
{
    struct reply r;
    request(s, method, path, body, body ? strlen(body) : 0, headers, &r);
    static char shown[512];
    snprintf(shown, sizeof(shown), "%s", r.body);
    bool body_ok = !want || (r.len == strlen(want) && memcmp(r.body, want, r.len) == 0);
    long got = r.status;
    reply_free(&r);
    cr_assert_eq(got, status, "%s %.60s: status %ld, expected %ld (%s)", method, path, got, status,
                 shown);
    cr_assert(body_ok, "%s %.60s: body \"%s\", expected \"%s\"", method, path, shown, want);
}

static redisContext *resp_connect(struct hs *s)
{
    struct timeval tv = {H_TIMEOUT_MS / 1000, 0};
    redisContext *rc = redisConnectWithTimeout("127.0.0.1", s->h.s.port, tv);
    cr_assert(rc && !rc->err, "hiredis connect");
    redisSetTimeout(rc, tv);
    return rc;
}

/* The integer reply of a RESP command (format as redisCommand's). */
static long long resp_int(redisContext *rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(rc, fmt, ap);
    va_end(ap);
    cr_assert(r && r->type == REDIS_REPLY_INTEGER, "%s: not an integer", fmt);
    long long v = r->integer;
    freeReplyObject(r);
    return v;
}

/* ---- raw sockets, for clients that misbehave ---- */

static int raw_connect(const char *host, uint16_t port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    inet_pton(AF_INET, host, &sa.sin_addr);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert_geq(fd, 0);
    cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0, "connect: %s",
                 strerror(errno));
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Read until the peer closes or ms pass; what came is in buf (NUL-ended).
   Returns whether it closed. */
static bool read_until_closed(int fd, char *buf, size_t size, int ms)
{
    size_t got = 0;
    long long deadline = now_ms() + ms;
    buf[0] = '\0';
    for (;;) {
        long long left = deadline - now_ms();
        if (left <= 0)
            return false;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, (int)left) <= 0)
            continue;
        char tmp[4096];
        ssize_t n = recv(fd, tmp, sizeof(tmp), 0);
        if (n <= 0)
            return true;
        size_t keep = got + (size_t)n < size - 1 ? (size_t)n : size - 1 - got;
        memcpy(buf + got, tmp, keep);
        got += keep;
        buf[got] = '\0';
    }
}

/* Read one whole answer with a Content-Length within the deadline. */
static void read_answer(int fd, char *buf, size_t size)
{
    size_t got = 0;
    long long deadline = now_ms() + H_TIMEOUT_MS;
    for (;;) {
        buf[got] = '\0';
        char *end = strstr(buf, "\r\n\r\n");
        char *cl = strcasestr(buf, "Content-Length:");
        if (end && cl && got >= (size_t)(end + 4 - buf) + strtoul(cl + 15, NULL, 10))
            return;
        cr_assert_lt(got, size - 1, "answer too long: %s", buf);
        long long left = deadline - now_ms();
        cr_assert_gt(left, 0, "timed out reading an answer: %s", buf);
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, (int)left) <= 0)
            continue;
        ssize_t n = recv(fd, buf + got, size - 1 - got, 0);
        cr_assert_gt(n, 0, "closed before a whole answer: %s", buf);
        got += (size_t)n;
    }
}

/* ---- routes ---- */

ENGINE_TEST(http, routes, .timeout = 60)
{
    struct hs s;
    hs_start(&s, engine->name, NULL);
    struct reply r;

    expect(&s, "GET", "/k", NULL, NULL, 404, "{\"error\":\"not found\"}");
    expect(&s, "PUT", "/k", "hello", NULL, 200, "{\"ok\":true}");
    request(&s, "GET", "/k", NULL, 0, NULL, &r);
    char v[256];
    cr_expect_eq(r.status, 200);
    cr_expect_str_eq(r.body, "hello");
    cr_expect(header(&r, "Content-Type", v, sizeof(v)) &&
                  strcmp(v, "application/octet-stream") == 0,
              "%s", r.head);
    cr_expect(!header(&r, "X-TTL", v, sizeof(v)), "a key without a time has no X-TTL");
    reply_free(&r);

    static const char *const json[] = {"Accept: application/json", NULL};
    expect(&s, "GET", "/k", NULL, json, 200, "{\"key\":\"k\",\"value\":\"hello\"}");
    expect(&s, "GET", "/nope", NULL, json, 404, "{\"error\":\"not found\"}");

    request(&s, "HEAD", "/k", NULL, 0, NULL, &r);
    cr_expect_eq(r.status, 200);
    cr_expect_eq(r.len, 0);
    cr_expect(header(&r, "Content-Length", v, sizeof(v)) && strcmp(v, "5") == 0, "%s", r.head);
    reply_free(&r);
    request(&s, "HEAD", "/nope", NULL, 0, NULL, &r);
    cr_expect_eq(r.status, 404);
    reply_free(&r);

    /* POST: new and replaced alike. */
    expect(&s, "POST", "/p", "{\"value\":\"one\"}", NULL, 200, "{\"ok\":true}");
    expect(&s, "POST", "/p", "{\"value\":\"two\",\"other\":[1,2]}", NULL, 200, "{\"ok\":true}");
    expect(&s, "GET", "/p", NULL, NULL, 200, "two");
    expect(&s, "POST", "/p", "{\"value\":\"\\u00e9\\n\"}", NULL, 200, NULL);
    expect(&s, "GET", "/p", NULL, NULL, 200, "\xc3\xa9\n");
    expect(&s, "POST", "/p", "not json", NULL, 400, "{\"error\":\"the body is not JSON\"}");
    expect(&s, "POST", "/p", "", NULL, 400, "{\"error\":\"the body is not JSON\"}");
    expect(&s, "POST", "/p", "[1]", NULL, 400, "{\"error\":\"the body is not a JSON object\"}");
    expect(&s, "POST", "/p", "{\"val\":\"x\"}", NULL, 400,
           "{\"error\":\"the body has no string \\\"value\\\"\"}");
    expect(&s, "POST", "/p", "{\"value\":3}", NULL, 400,
           "{\"error\":\"the body has no string \\\"value\\\"\"}");
    expect(&s, "GET", "/p", NULL, NULL, 200, "\xc3\xa9\n");

    /* PUT: the raw body; an empty one is an empty value. */
    expect(&s, "PUT", "/e", "", NULL, 200, "{\"ok\":true}");
    expect(&s, "GET", "/e", NULL, NULL, 200, "");

    /* DELETE and DEL: 200 either way. */
    expect(&s, "DELETE", "/k", NULL, NULL, 200, "{\"deleted\":true}");
    expect(&s, "DELETE", "/k", NULL, NULL, 200, "{\"deleted\":false}");
    expect(&s, "DEL", "/p", NULL, NULL, 200, "{\"deleted\":true}");
    expect(&s, "DEL", "/p", NULL, NULL, 200, "{\"deleted\":false}");
    expect(&s, "GET", "/p", NULL, NULL, 404, "{\"error\":\"not found\"}");

    /* Wrong methods: 405 with Allow. */
    request(&s, "PATCH", "/k", NULL, 0, NULL, &r);
    cr_expect_eq(r.status, 405);
    cr_expect_str_eq(r.body, "{\"error\":\"method not allowed\"}");
    cr_expect(header(&r, "Allow", v, sizeof(v)) &&
                  strcmp(v, "GET, HEAD, PUT, POST, DELETE, DEL") == 0,
              "%s", r.head);
    reply_free(&r);
    request(&s, "POST", "/_health", "{}", 2, NULL, &r);
    cr_expect_eq(r.status, 405);
    cr_expect(header(&r, "Allow", v, sizeof(v)) && strcmp(v, "GET, HEAD") == 0, "%s", r.head);
    reply_free(&r);
    expect(&s, "DELETE", "/_info", NULL, NULL, 405, NULL);

    /* The routes. */
    request(&s, "GET", "/_health", NULL, 0, NULL, &r);
    cr_expect_eq(r.status, 200);
    cr_expect_str_eq(r.body, "ok");
    reply_free(&r);
    expect(&s, "PUT", "/x", "1", NULL, 200, NULL);
    request(&s, "GET", "/_info", NULL, 0, NULL, &r);
    cr_expect_eq(r.status, 200);
    cJSON *info = cJSON_Parse(r.body);
    cr_assert_not_null(info, "%s", r.body);
    const cJSON *server = cJSON_GetObjectItem(info, "server");
    const cJSON *engine_sec = cJSON_GetObjectItem(info, "engine");
    const cJSON *stats = cJSON_GetObjectItem(info, "stats");
    const cJSON *keyspace = cJSON_GetObjectItem(info, "keyspace");
    cr_expect(cJSON_IsString(cJSON_GetObjectItem(server, "http_address")), "%s", r.body);
    cr_expect(cJSON_IsNumber(cJSON_GetObjectItem(server, "process_id")), "%s", r.body);
    cr_expect(cJSON_IsString(cJSON_GetObjectItem(engine_sec, "engine")) &&
                  strcmp(cJSON_GetObjectItem(engine_sec, "engine")->valuestring, engine->name) == 0,
              "%s", r.body);
    cr_expect(cJSON_GetObjectItem(stats, "total_commands_processed")->valuedouble > 10);
    cr_expect(cJSON_IsString(cJSON_GetObjectItem(keyspace, "db0")), "%s", r.body);
    cJSON_Delete(info);
    reply_free(&r);

    /* A key past the engine's limit: 414, naming it. */
    size_t max_key = kvs_engine_max_key(kvs_engine_find(engine->name));
    if (max_key < 4096) {
        char path[4200] = "/";
        memset(path + 1, 'k', max_key + 1);
        path[max_key + 2] = '\0';
        request(&s, "GET", path, NULL, 0, NULL, &r);
        cr_expect_eq(r.status, 414);
        cr_expect(strstr(r.body, "key too long"), "%s", r.body);
        reply_free(&r);
    }
    h_stop(&s.h);
}

/* The curl command line, as a shell script would use it. */
static char *curl_cli(const char *const *args)
{
    const char *argv[32] = {"curl", "-sS", "--path-as-is", "-m", "10"};
    size_t n = 5;
    for (size_t i = 0; args[i]; i++) {
        cr_assert_lt(n, 31);
        argv[n++] = args[i];
    }
    argv[n] = NULL;
    ts_result r;
    cr_assert_eq(ts_run(argv, NULL, 0, H_TIMEOUT_MS, &r), 0, "cannot run curl");
    cr_assert_eq(r.status, 0, "curl exited %d: %s", r.status, r.err);
    char *out = r.out;
    r.out = NULL;
    ts_result_free(&r);
    return out;
}

Test(http, curl_command_line, .timeout = 60)
{
    struct hs s;
    hs_start(&s, "kvs", NULL);
    char url[256], info_url[256];
    snprintf(url, sizeof(url), "%s/dir%%2Fname+1", s.base);
    snprintf(info_url, sizeof(info_url), "%s/_info", s.base);
    const char *put[] = {"-X", "PUT", "--data-binary", "from curl", url, NULL};
    char *out = curl_cli(put);
    cr_expect_str_eq(out, "{\"ok\":true}");
    free(out);
    const char *get[] = {url, NULL};
    out = curl_cli(get);
    cr_expect_str_eq(out, "from curl");
    free(out);
    const char *json[] = {"-H", "Accept: application/json", url, NULL};
    out = curl_cli(json);
    cr_expect_str_eq(out, "{\"key\":\"dir/name+1\",\"value\":\"from curl\"}");
    free(out);
    const char *post[] = {"-d", "{\"value\":\"posted\"}", url, NULL};
    out = curl_cli(post);
    cr_expect_str_eq(out, "{\"ok\":true}");
    free(out);
    const char *head[] = {"-I", url, NULL};
    out = curl_cli(head);
    cr_expect(strstr(out, "HTTP/1.1 200") && strcasestr(out, "Content-Length: 6"), "%s", out);
    free(out);
    const char *del[] = {"-X", "DEL", url, NULL};
    out = curl_cli(del);
    cr_expect_str_eq(out, "{\"deleted\":true}");
    free(out);
    const char *code[] = {"-o", "/dev/null", "-w", "%{http_code}", url, NULL};
    out = curl_cli(code);
    cr_expect_str_eq(out, "404");
    free(out);
    const char *info[] = {info_url, NULL};
    out = curl_cli(info);
    cr_expect(strstr(out, "\"engine\":{\"engine\":\"kvs\""), "%s", out);
    free(out);
    h_stop(&s.h);
}

/* ---- keys: the raw path, percent-decoded, binary-safe ---- */

ENGINE_TEST(http, binary_keys, .timeout = 60)
{
    struct hs s;
    hs_start(&s, engine->name, NULL);
    redisContext *rc = resp_connect(&s);

    expect(&s, "PUT", "/a%00b", "nul", NULL, 200, NULL);
    expect(&s, "PUT", "/x%2Fy", "slash", NULL, 200, NULL);
    expect(&s, "PUT", "/p+q", "plus", NULL, 200, NULL);
    expect(&s, "PUT", "/sp%20ace", "space", NULL, 200, NULL);
    expect(&s, "PUT", "/%5Fhealth", "a key", NULL, 200, NULL);
    expect(&s, "PUT", "/%ff%fe", "bytes", NULL, 200, NULL);
    static const struct {
        const char *key;
        size_t len;
        const char *value;
    } seen[] = {
        {"a\0b", 3, "nul"},     {"x/y", 3, "slash"},     {"p+q", 3, "plus"},
        {"sp ace", 6, "space"}, {"_health", 7, "a key"}, {"\xff\xfe", 2, "bytes"},
    };
    for (size_t i = 0; i < sizeof(seen) / sizeof(seen[0]); i++) {
        redisReply *r = redisCommand(rc, "GET %b", seen[i].key, seen[i].len);
        cr_assert(r && r->type == REDIS_REPLY_STRING, "RESP GET of key %zu", i);
        cr_expect_str_eq(r->str, seen[i].value);
        freeReplyObject(r);
    }
    /* "+" is not a space; a slash in the path is part of the key. */
    expect(&s, "GET", "/p%20q", NULL, NULL, 404, NULL);
    expect(&s, "GET", "/x/y", NULL, NULL, 200, "slash");
    /* The route is the raw /_health only. */
    expect(&s, "GET", "/_health", NULL, NULL, 200, "ok");
    expect(&s, "GET", "/%5Fhealth", NULL, NULL, 200, "a key");
    expect(&s, "GET", "/%5finfo", NULL, NULL, 404, NULL);
    expect(&s, "GET", "/_healthy", NULL, NULL, 404, NULL);

    /* Bytes that are not text travel base64 in JSON. */
    static const char *const json[] = {"Accept: application/json", NULL};
    expect(&s, "GET", "/%ff%fe", NULL, json, 200,
           "{\"key\":\"//4=\",\"value\":\"Ynl0ZXM=\",\"encoding\":\"base64\"}");
    expect(&s, "GET", "/a%00b", NULL, json, 200,
           "{\"key\":\"YQBi\",\"value\":\"bnVs\",\"encoding\":\"base64\"}");
    /* A binary value, in and out as bytes. */
    static const char bin[] = {'v', 0, '\xff', '\r', '\n', 0};
    struct reply r;
    request(&s, "PUT", "/bin", bin, sizeof(bin), NULL, &r);
    cr_expect_eq(r.status, 200);
    reply_free(&r);
    request(&s, "GET", "/bin", NULL, 0, NULL, &r);
    cr_expect_eq(r.len, sizeof(bin));
    cr_expect(memcmp(r.body, bin, sizeof(bin)) == 0);
    reply_free(&r);
    expect(&s, "GET", "/bin", NULL, json, 200,
           "{\"key\":\"Ymlu\",\"value\":\"dgD/DQoA\",\"encoding\":\"base64\"}");
    /* POST of base64, and \u0000 refused rather than cut short. */
    expect(&s, "POST", "/b64", "{\"value\":\"dgD/DQoA\",\"encoding\":\"base64\"}", NULL, 200, NULL);
    request(&s, "GET", "/b64", NULL, 0, NULL, &r);
    cr_expect(r.len == sizeof(bin) && memcmp(r.body, bin, sizeof(bin)) == 0);
    reply_free(&r);
    expect(&s, "POST", "/b64", "{\"value\":\"a\\u0000b\"}", NULL, 400, NULL);
    expect(&s, "POST", "/b64", "{\"value\":\"not base64!\",\"encoding\":\"base64\"}", NULL, 400,
           "{\"error\":\"\\\"value\\\" is not base64\"}");
    expect(&s, "POST", "/b64", "{\"value\":\"x\",\"encoding\":\"hex\"}", NULL, 400, NULL);
    expect(&s, "POST", "/bs", "{\"value\":\"a\\\\u0000b\"}", NULL, 200, NULL);
    expect(&s, "GET", "/bs", NULL, NULL, 200, "a\\u0000b");
    redisFree(rc);
    h_stop(&s.h);
}

/* ---- one store: HTTP and RESP ---- */

ENGINE_TEST(http, same_data_as_resp, .timeout = 60)
{
    struct hs s;
    hs_start(&s, engine->name, NULL);
    redisContext *rc = resp_connect(&s);
    redisReply *r = redisCommand(rc, "SET from-resp %s", "r-value");
    cr_assert(r && r->type == REDIS_REPLY_STATUS);
    freeReplyObject(r);
    expect(&s, "GET", "/from-resp", NULL, NULL, 200, "r-value");
    expect(&s, "PUT", "/from-http", "h-value", NULL, 200, NULL);
    r = redisCommand(rc, "GET from-http");
    cr_assert(r && r->type == REDIS_REPLY_STRING);
    cr_expect_str_eq(r->str, "h-value");
    freeReplyObject(r);
    expect(&s, "DELETE", "/from-resp", NULL, NULL, 200, "{\"deleted\":true}");
    cr_expect_eq(resp_int(rc, "EXISTS from-resp"), 0);
    cr_expect_eq(resp_int(rc, "DEL from-http"), 1);
    expect(&s, "GET", "/from-http", NULL, NULL, 404, NULL);
    /* Interleaved, key by key. */
    for (int i = 0; i < 50; i++) {
        char path[32], value[32];
        snprintf(path, sizeof(path), "/mix%d", i);
        snprintf(value, sizeof(value), "v%d", i);
        if (i % 2) {
            expect(&s, "PUT", path, value, NULL, 200, NULL);
        } else {
            r = redisCommand(rc, "SET %s %s", path + 1, value);
            freeReplyObject(r);
        }
    }
    cr_expect_eq(resp_int(rc, "DBSIZE"), 50);
    for (int i = 0; i < 50; i++) {
        char path[32], value[32];
        snprintf(path, sizeof(path), "/mix%d", i);
        snprintf(value, sizeof(value), "v%d", i);
        expect(&s, "GET", path, NULL, NULL, 200, value);
    }
    redisFree(rc);
    h_stop(&s.h);
}

/* ---- expiry times ---- */

ENGINE_TEST(http, ttl, .timeout = 60)
{
    struct hs s;
    hs_start(&s, engine->name, NULL);
    redisContext *rc = resp_connect(&s);
    struct reply r;
    char v[64];

    expect(&s, "PUT", "/t?ttl=100", "x", NULL, 200, NULL);
    request(&s, "GET", "/t", NULL, 0, NULL, &r);
    cr_expect(header(&r, "X-TTL", v, sizeof(v)) && (strcmp(v, "100") == 0 || strcmp(v, "99") == 0),
              "%s", r.head);
    reply_free(&r);
    long long ttl = resp_int(rc, "TTL t");
    cr_expect(ttl == 100 || ttl == 99, "TTL %lld", ttl);
    request(&s, "HEAD", "/t", NULL, 0, NULL, &r);
    cr_expect(header(&r, "X-TTL", v, sizeof(v)), "%s", r.head);
    reply_free(&r);

    expect(&s, "POST", "/t", "{\"value\":\"y\",\"ttl\":50}", NULL, 200, NULL);
    ttl = resp_int(rc, "TTL t");
    cr_expect(ttl == 50 || ttl == 49, "TTL %lld", ttl);
    /* A write without a time clears it, as SET does. */
    expect(&s, "PUT", "/t", "z", NULL, 200, NULL);
    cr_expect_eq(resp_int(rc, "TTL t"), -1);
    request(&s, "GET", "/t", NULL, 0, NULL, &r);
    cr_expect(!header(&r, "X-TTL", v, sizeof(v)), "%s", r.head);
    reply_free(&r);
    /* A time set over RESP shows. */
    redisReply *rr = redisCommand(rc, "SET t2 v EX 30");
    freeReplyObject(rr);
    request(&s, "GET", "/t2", NULL, 0, NULL, &r);
    cr_expect(header(&r, "X-TTL", v, sizeof(v)) && (strcmp(v, "30") == 0 || strcmp(v, "29") == 0),
              "%s", r.head);
    reply_free(&r);

    /* Bad times. */
    static const char *const bad[] = {"/t?ttl=0",  "/t?ttl=-1",          "/t?ttl=abc",
                                      "/t?ttl=",   "/t?ttl=99999999999", "/t?ttl=1.5",
                                      "/t?ttl=+5", "/t?ttl=%31"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        expect(&s, "PUT", bad[i], "x", NULL, 400, NULL);
    expect(&s, "POST", "/t", "{\"value\":\"y\",\"ttl\":0}", NULL, 400, NULL);
    expect(&s, "POST", "/t", "{\"value\":\"y\",\"ttl\":1.5}", NULL, 400, NULL);
    expect(&s, "POST", "/t", "{\"value\":\"y\",\"ttl\":\"5\"}", NULL, 400, NULL);
    expect(&s, "GET", "/t", NULL, NULL, 200, "z");

    /* It does expire. */
    expect(&s, "PUT", "/short?ttl=1", "x", NULL, 200, NULL);
    long long deadline = now_ms() + 5000;
    long status = 200;
    while (status == 200 && now_ms() < deadline) {
        request(&s, "GET", "/short", NULL, 0, NULL, &r);
        status = r.status;
        reply_free(&r);
        if (status == 200)
            usleep(50 * 1000); /* polling a clock, not a condition we could wait on */
    }
    cr_expect_eq(status, 404, "the key did not expire");
    redisFree(rc);
    h_stop(&s.h);
}

/* ---- 64 clients at once ---- */

#define CLIENTS 64
#define PER_CLIENT 40

struct client {
    const char *base;
    int id;
    char error[256];
};

static void *client_main(void *arg)
{
    struct client *me = arg;
    CURL *c = curl_easy_init(); /* one connection, kept alive */
    for (int i = 0; c && i < PER_CLIENT && !me->error[0]; i++) {
        char path[64], value[64];
        snprintf(path, sizeof(path), "/c%d/%d", me->id, i);
        int vlen = snprintf(value, sizeof(value), "value-%d-%d", me->id, i);
        struct reply r;
        request_on(c, me->base, i % 2 ? "PUT" : "POST", path, i % 2 ? value : "{\"value\":\"x\"}",
                   i % 2 ? (size_t)vlen : 13, NULL, &r);
        if (r.rc != CURLE_OK || r.status != 200)
            snprintf(me->error, sizeof(me->error), "write %s: %s %ld", path,
                     curl_easy_strerror(r.rc), r.status);
        reply_free(&r);
        request_on(c, me->base, "GET", path, NULL, 0, NULL, &r);
        const char *want = i % 2 ? value : "x";
        if (!me->error[0] && (r.status != 200 || strcmp(r.body, want) != 0))
            snprintf(me->error, sizeof(me->error), "GET %s: %ld %s", path, r.status, r.body);
        reply_free(&r);
    }
    if (!c)
        snprintf(me->error, sizeof(me->error), "curl_easy_init");
    curl_easy_cleanup(c);
    return NULL;
}

ENGINE_TEST(http, concurrent_clients, .timeout = 60)
{
    curl_global_init(CURL_GLOBAL_DEFAULT); /* before the threads: it is not thread-safe */
    struct hs s;
    hs_start(&s, engine->name, NULL);
    struct client clients[CLIENTS];
    pthread_t threads[CLIENTS];
    for (int i = 0; i < CLIENTS; i++) {
        clients[i] = (struct client){.base = s.base, .id = i};
        cr_assert_eq(pthread_create(&threads[i], NULL, client_main, &clients[i]), 0);
    }
    for (int i = 0; i < CLIENTS; i++)
        pthread_join(threads[i], NULL);
    int failed = -1;
    for (int i = 0; i < CLIENTS && failed < 0; i++)
        failed = clients[i].error[0] ? i : -1;
    cr_expect_eq(failed, -1, "client %d: %s", failed, failed >= 0 ? clients[failed].error : "");
    redisContext *rc = resp_connect(&s);
    cr_expect_eq(resp_int(rc, "DBSIZE"), CLIENTS * PER_CLIENT);
    redisFree(rc);
    h_stop(&s.h);
}

/* ---- limits ---- */

static const char *const tight[] = {"--http-max-url",
                                    "1kb",
                                    "--http-max-headers",
                                    "1kb",
                                    "--http-max-body",
                                    "64kb",
                                    "--http-request-timeout",
                                    "1",
                                    "--http-keepalive-timeout",
                                    "2",
                                    "--http-keepalive-requests",
                                    "3",
                                    NULL};

ENGINE_TEST(http, size_limits, .timeout = 60)
{
    struct hs s;
    hs_start(&s, engine->name, tight);
    char *big = malloc(200 << 10);
    cr_assert_not_null(big);
    memset(big, 'a', 200 << 10);

    /* URL: 1 KiB passes, more is 414 (and far more, MHD's own 414). */
    memcpy(big, "/k?pad=", 7); /* a short key: its engine's key limit is not this test's */
    big[1000] = '\0';
    expect(&s, "GET", big, NULL, NULL, 404, NULL);
    big[1000] = 'a';
    big[1100] = '\0';
    expect(&s, "GET", big, NULL, NULL, 414, "{\"error\":\"URL too long\"}");
    big[1100] = 'a';
    big[12000] = '\0';
    expect(&s, "GET", big, NULL, NULL, 414, NULL);
    big[12000] = 'a';

    /* Header fields: 1 KiB in all. */
    char line[1400];
    snprintf(line, sizeof(line), "X-Big: %.*s", 1100, big + 1);
    const char *const fat[] = {line, NULL};
    expect(&s, "GET", "/k", NULL, fat, 431, "{\"error\":\"request header fields too large\"}");
    static char huge[20000];
    snprintf(huge, sizeof(huge), "X-Big: %.*s", 19000, big + 1);
    const char *const fatter[] = {huge, NULL};
    expect(&s, "GET", "/k", NULL, fatter, 431, NULL);

    /* Body: 64 KiB is taken, more is 413. */
    struct reply r;
    request(&s, "PUT", "/body", big, 64 << 10, NULL, &r);
    cr_expect_eq(r.status, 200);
    reply_free(&r);
    request(&s, "PUT", "/body", big, (64 << 10) + 1, NULL, &r);
    cr_expect_eq(r.status, 413);
    cr_expect_str_eq(r.body, "{\"error\":\"body too large: at most 65536 bytes\"}");
    reply_free(&r);
    expect(&s, "GET", "/body", NULL, NULL, 200, NULL);

    /* 413 before the body is read: the answer comes while it is unsent. */
    int fd = raw_connect(s.http_host, s.http_port);
    static const char declared[] =
        "PUT /k HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000\r\n\r\n";
    h_send(fd, declared, sizeof(declared) - 1);
    char buf[4096];
    read_answer(fd, buf, sizeof(buf));
    cr_expect(strncmp(buf, "HTTP/1.1 413", 12) == 0, "%s", buf);
    cr_expect(strstr(buf, "body too large"), "%s", buf);
    close(fd);

    /* A body of no declared length past the limit: the connection is closed. */
    fd = raw_connect(s.http_host, s.http_port);
    static const char chunked[] =
        "PUT /k HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
    h_send(fd, chunked, sizeof(chunked) - 1);
    bool closed = false;
    for (int i = 0; i < 20 && !closed; i++) {
        char head[16];
        int n = snprintf(head, sizeof(head), "%x\r\n", 8192);
        if (send(fd, head, (size_t)n, MSG_NOSIGNAL) < 0 || send(fd, big, 8192, MSG_NOSIGNAL) < 0 ||
            send(fd, "\r\n", 2, MSG_NOSIGNAL) < 0)
            closed = true;
    }
    cr_expect(closed || read_until_closed(fd, buf, sizeof(buf), H_TIMEOUT_MS),
              "a chunked body past the limit was taken");
    close(fd);
    expect(&s, "GET", "/k", NULL, NULL, 404, NULL);
    free(big);
    h_stop(&s.h);
}

ENGINE_TEST(http, slow_clients, .timeout = 60)
{
    struct hs s;
    hs_start(&s, engine->name, tight);
    char buf[4096];

    /* Slowloris: the request line, then a header byte at a time, never
       done. Closed about --http-request-timeout after the request line,
       while others are served. */
    int fd = raw_connect(s.http_host, s.http_port);
    h_send(fd, "GET /k HTTP/1.1\r\nHost: x\r\n", 26);
    long long start = now_ms();
    bool closed = false;
    for (int i = 0; i < 100 && !closed; i++) {
        if (send(fd, "X", 1, MSG_NOSIGNAL) < 0)
            break;
        expect(&s, "GET", "/other", NULL, NULL, 404, NULL);
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 100) > 0)
            closed = recv(fd, buf, sizeof(buf), MSG_DONTWAIT) <= 0;
    }
    long long took = now_ms() - start;
    cr_expect(closed || read_until_closed(fd, buf, sizeof(buf), H_TIMEOUT_MS),
              "slow headers were never cut off");
    cr_expect_geq(took, 900, "closed after %lld ms, before the timeout", took);
    close(fd);

    /* A slow body. */
    fd = raw_connect(s.http_host, s.http_port);
    static const char head[] = "PUT /k HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n";
    h_send(fd, head, sizeof(head) - 1);
    closed = false;
    for (int i = 0; i < 60 && !closed; i++) {
        if (send(fd, "v", 1, MSG_NOSIGNAL) < 0)
            break;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 100) > 0)
            closed = recv(fd, buf, sizeof(buf), MSG_DONTWAIT) <= 0;
    }
    cr_expect(closed || read_until_closed(fd, buf, sizeof(buf), H_TIMEOUT_MS),
              "a slow body was never cut off");
    close(fd);
    expect(&s, "GET", "/k", NULL, NULL, 404, NULL);

    /* A slow request line, and an idle keep-alive connection: closed after
       --http-keepalive-timeout. */
    fd = raw_connect(s.http_host, s.http_port);
    h_send(fd, "GET /k", 6);
    cr_expect(read_until_closed(fd, buf, sizeof(buf), H_TIMEOUT_MS), "slow request line");
    close(fd);
    fd = raw_connect(s.http_host, s.http_port);
    h_send(fd, "GET /k HTTP/1.1\r\nHost: x\r\n\r\n", 28);
    read_answer(fd, buf, sizeof(buf));
    cr_expect(strncmp(buf, "HTTP/1.1 404", 12) == 0, "%s", buf);
    start = now_ms();
    cr_expect(read_until_closed(fd, buf, sizeof(buf), H_TIMEOUT_MS), "idle connection kept");
    took = now_ms() - start;
    cr_expect(took >= 1500, "idle connection closed after %lld ms", took);
    close(fd);

    /* Keep-alive: the third request's answer closes the connection. */
    fd = raw_connect(s.http_host, s.http_port);
    for (int i = 0; i < 3; i++) {
        h_send(fd, "GET /k HTTP/1.1\r\nHost: x\r\n\r\n", 28);
        read_answer(fd, buf, sizeof(buf));
        cr_expect_eq(strcasestr(buf, "Connection: close") != NULL, i == 2, "answer %d: %s", i, buf);
    }
    cr_expect(read_until_closed(fd, buf, sizeof(buf), H_TIMEOUT_MS));
    close(fd);
    h_stop(&s.h);
}

/* ---- access ---- */

Test(http, requirepass, .timeout = 60)
{
    static const char *const pass[] = {"--requirepass", "s3cret", NULL};
    struct hs s;
    hs_start(&s, "kvs", pass);
    struct reply r;
    request(&s, "GET", "/k", NULL, 0, NULL, &r);
    cr_expect_eq(r.status, 401);
    cr_expect_str_eq(r.body, "{\"error\":\"authentication required\"}");
    cr_expect(strstr(r.head, "WWW-Authenticate: Bearer realm=\"kvs\""), "%s", r.head);
    cr_expect(strstr(r.head, "WWW-Authenticate: Basic realm=\"kvs\""), "%s", r.head);
    reply_free(&r);
    static const char *const bearer[] = {"Authorization: Bearer s3cret", NULL};
    static const char *const bearer_bad[] = {"Authorization: Bearer s3cre", NULL};
    static const char *const basic[] = {"Authorization: Basic YW55b25lOnMzY3JldA==",
                                        NULL}; /* anyone:s3cret */
    static const char *const basic_nouser[] = {"Authorization: Basic OnMzY3JldA==",
                                               NULL}; /* :s3cret */
    static const char *const basic_bad[] = {"Authorization: Basic czNjcmV0OnMzY3Jl",
                                            NULL}; /* s3cret:s3cre */
    static const char *const other[] = {"Authorization: Digest s3cret", NULL};
    expect(&s, "PUT", "/k", "v", NULL, 401, NULL);
    expect(&s, "GET", "/_health", NULL, NULL, 401, NULL);
    expect(&s, "PUT", "/k", "v", bearer, 200, NULL);
    expect(&s, "GET", "/k", NULL, bearer, 200, "v");
    expect(&s, "GET", "/k", NULL, basic, 200, "v");
    expect(&s, "GET", "/k", NULL, basic_nouser, 200, "v");
    expect(&s, "GET", "/k", NULL, bearer_bad, 401, NULL);
    expect(&s, "GET", "/k", NULL, basic_bad, 401, NULL);
    expect(&s, "GET", "/k", NULL, other, 401, NULL);
    expect(&s, "GET", "/_health", NULL, bearer, 200, "ok");
    /* An unauthenticated body is not read: the refusal comes first. */
    int fd = raw_connect(s.http_host, s.http_port);
    static const char declared[] = "PUT /k HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\n\r\n";
    h_send(fd, declared, sizeof(declared) - 1);
    char buf[4096];
    read_answer(fd, buf, sizeof(buf));
    cr_expect(strncmp(buf, "HTTP/1.1 401", 12) == 0, "%s", buf);
    close(fd);
    h_stop(&s.h);
}

/* Protected mode needs a peer that is not loopback: the test makes a
   network namespace of its own (root only; skipped elsewhere) and gives
   its loopback interface a second, non-loopback address, so that the
   traffic never leaves the namespace. */
static bool private_network(const char *addr_cidr)
{
    if (unshare(CLONE_NEWNET) != 0)
        return false;
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "ip link set lo up && ip addr add %s dev lo", addr_cidr);
    return system(cmd) == 0;
}

Test(http, protected_mode, .timeout = 60)
{
    if (!private_network("10.203.0.1/32"))
        cr_skip_test("cannot make a network namespace here (needs root and iproute2)");
    struct hs s;
    /* No password, protected mode on: a non-loopback peer gets 403, a
       loopback one is served. */
    hs_start_on(&s, "kvs", "10.203.0.1", NULL);
    expect(&s, "GET", "/k", NULL, NULL, 403, NULL);
    struct reply r;
    request(&s, "PUT", "/k", "v", 1, NULL, &r);
    cr_expect_eq(r.status, 403);
    cr_expect(strstr(r.body, "protected mode"), "%s", r.body);
    reply_free(&r);
    h_stop(&s.h);
    /* With a password, 401 instead; with protected mode off, served. */
    static const char *const pass[] = {"--requirepass", "pw", NULL};
    hs_start_on(&s, "kvs", "10.203.0.1", pass);
    expect(&s, "GET", "/k", NULL, NULL, 401, NULL);
    static const char *const bearer[] = {"Authorization: Bearer pw", NULL};
    expect(&s, "GET", "/k", NULL, bearer, 404, NULL);
    h_stop(&s.h);
    static const char *const off[] = {"--protected-mode", "no", NULL};
    hs_start_on(&s, "kvs", "10.203.0.1", off);
    expect(&s, "GET", "/k", NULL, NULL, 404, NULL);
    h_stop(&s.h);
}

/* RESP and HTTP connections count against one --maxclients. */
Test(http, maxclients, .timeout = 60)
{
    static const char *const three[] = {"--maxclients", "3", NULL};
    struct hs s;
    hs_start(&s, "kvs", three);
    char buf[4096];
    int fds[2];
    for (int i = 0; i < 2; i++) {
        fds[i] = raw_connect(s.http_host, s.http_port);
        h_send(fds[i], "GET /k HTTP/1.1\r\nHost: x\r\n\r\n", 28);
        read_answer(fds[i], buf, sizeof(buf));
    }
    /* The start's readiness probe (a connection closed at once) counts
       until its worker has seen it go: try again until it has. */
    redisContext *rc = NULL;
    redisReply *rr = NULL;
    for (long long end = now_ms() + H_TIMEOUT_MS; !rr || rr->type != REDIS_REPLY_STATUS;) {
        if (rr) {
            cr_assert(rr->type == REDIS_REPLY_ERROR && now_ms() < end, "%s", rr->str);
            freeReplyObject(rr);
            redisFree(rc);
            h_pause_ms(10);
        }
        rc = resp_connect(&s);
        rr = redisCommand(rc, "PING");
        cr_assert_not_null(rr);
    }
    freeReplyObject(rr);
    /* The fourth: 503 on HTTP. */
    int fd = raw_connect(s.http_host, s.http_port);
    cr_expect(read_until_closed(fd, buf, sizeof(buf), H_TIMEOUT_MS));
    cr_expect(strncmp(buf, "HTTP/1.1 503", 12) == 0, "%s", buf);
    cr_expect(strstr(buf, "{\"error\":\"max number of clients reached\"}"), "%s", buf);
    close(fd);
    /* One HTTP client gone: its place is free again. */
    close(fds[0]);
    long long deadline = now_ms() + H_TIMEOUT_MS;
    long status = 0;
    while (status != 404 && now_ms() < deadline) {
        struct reply r;
        request_on(NULL, s.base, "GET", "/k", NULL, 0, NULL, &r);
        status = r.status;
        reply_free(&r);
    }
    cr_expect_eq(status, 404, "the closed connection's place was not given back");
    redisFree(rc);
    close(fds[1]);
    h_stop(&s.h);
}

/* /_health while the store refuses writes after a failed fsync: every
   fsync fails once the file $KVS_FAIL_FSYNC names exists (fail_fsync.so),
   and the engine's background sync (--fsync everysec) finds it. */
ParameterizedTestParameters(http, health_after_failed_fsync)
{
    /* The engines that fsync their writes: not the volatile ones. */
    size_t n = 0;
    struct ts_engine_param *p = cr_calloc(kvs_engine_count(), sizeof(*p));
    for (size_t i = 0; p && i < kvs_engine_count(); i++) {
        if (!(kvs_engine_traits(kvs_engine_at(i)) & KVS_ENGINE_VOLATILE))
            snprintf(p[n++].name, sizeof(p->name), "%s", kvs_engine_name(kvs_engine_at(i)));
    }
    return cr_make_param_array(struct ts_engine_param, p, n, ts_free_params);
}

ParameterizedTest(struct ts_engine_param *engine, http, health_after_failed_fsync, .timeout = 60)
{
    char trigger[PATH_MAX];
    snprintf(trigger, sizeof(trigger), "/tmp/kvs-fail-fsync-%d", (int)getpid());
    unlink(trigger);
    setenv("KVS_FAIL_FSYNC", trigger, 1);
    setenv("LD_PRELOAD", FAIL_FSYNC_SO, 1);
    /* The shim is not built with ASan, whose runtime wants to come first. */
    setenv("ASAN_OPTIONS", "verify_asan_link_order=0:detect_leaks=1:abort_on_error=1", 1);
    static const char *const everysec[] = {"--fsync", "everysec", NULL};
    struct hs s;
    hs_start(&s, engine->name, everysec);
    unsetenv("LD_PRELOAD");
    expect(&s, "PUT", "/k", "v", NULL, 200, NULL);
    expect(&s, "GET", "/_health", NULL, NULL, 200, "ok");
    FILE *f = fopen(trigger, "w");
    cr_assert_not_null(f);
    fclose(f);
    /* The write is acknowledged; the background fsync that should cover
       it fails, and from then on the store refuses writes. */
    expect(&s, "PUT", "/k2", "v", NULL, 200, NULL);
    struct reply r;
    long long deadline = now_ms() + H_TIMEOUT_MS;
    long status = 200;
    while (status == 200 && now_ms() < deadline) {
        request(&s, "GET", "/_health", NULL, 0, NULL, &r);
        status = r.status;
        if (status == 503)
            cr_expect(strstr(r.body, "refuses writes after a failed fsync"), "%s", r.body);
        reply_free(&r);
        if (status == 200)
            usleep(100 * 1000); /* the engine's once-a-second sync: nothing to wait on */
    }
    cr_expect_eq(status, 503, "/_health did not report the failed fsync");
    expect(&s, "PUT", "/k3", "v", NULL, 503,
           "{\"error\":\"store refuses writes after a failed fsync; restart to recover\"}");
    expect(&s, "GET", "/k", NULL, NULL, 200, "v");
    unlink(trigger);
    /* Closing syncs once more, which may fail: the exit status is not
       this test's concern. */
    ts_server_stop(&s.h.s, H_TIMEOUT_MS);
    ts_tmpdir_remove(s.h.dir);
}

/* Bad HTTP options are refused in one line, before anything starts. */
Test(http, bad_options, .timeout = 60)
{
    static const struct {
        const char *opt, *val, *why;
    } bad[] = {
        {"--http-addr", "nowhere", "invalid --http-addr 'nowhere'"},
        {"--http-addr", "127.0.0.1:99999", "invalid --http-addr"},
        {"--http-max-body", "10", "invalid --http-max-body '10'"},
        {"--http-max-url", "2mb", "invalid --http-max-url '2mb'"},
        {"--http-max-headers", "lots", "invalid --http-max-headers 'lots'"},
        {"--http-request-timeout", "0", "invalid --http-request-timeout '0'"},
        {"--http-keepalive-timeout", "-5", "invalid --http-keepalive-timeout '-5'"},
        {"--http-keepalive-requests", "0", "invalid --http-keepalive-requests '0'"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        const char *argv[] = {h_server_binary(), bad[i].opt, bad[i].val, NULL};
        ts_result r;
        cr_assert_eq(ts_run(argv, NULL, 0, H_TIMEOUT_MS, &r), 0);
        cr_expect_eq(r.status, 1, "%s %s", bad[i].opt, bad[i].val);
        cr_expect(strstr(r.err, bad[i].why), "%s", r.err);
        ts_result_free(&r);
    }
    /* A taken port fails at startup, naming the option. */
    struct hs s;
    hs_start(&s, "kvs", NULL);
    char addr[64], resp_addr[64];
    snprintf(addr, sizeof(addr), "127.0.0.1:%u", (unsigned)s.http_port);
    snprintf(resp_addr, sizeof(resp_addr), "127.0.0.1:%u", (unsigned)ts_free_port(NULL));
    const char *argv[] = {h_server_binary(), "--addr", resp_addr, "--http-addr", addr, NULL};
    ts_result r;
    cr_assert_eq(ts_run(argv, NULL, 0, H_TIMEOUT_MS, &r), 0);
    cr_expect_eq(r.status, 1);
    cr_expect(strstr(r.err, "cannot bind --http-addr"), "%s", r.err);
    ts_result_free(&r);
    h_stop(&s.h);
}
