/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * kvs-scenario: runs scenario files against a server that speaks RESP
 * (kvs-server, redis-server, or twemproxy in front of either).
 *
 *   kvs-scenario [-v] [-t HOST:PORT] [-c CONFIG] [-a PASSWORD] [-T TAG]...
 *                [-R RESTART-COMMAND] [-K CRASH-COMMAND] FILE...
 *
 * A scenario is data: a text file of steps, one per line.
 *
 *   # a comment
 *   require TAG...           run the file only on a target with these tags
 *   SET k:${run} v -> OK     a command and the reply it must get
 *   GET k:${run}             a command whose reply is not checked
 *   repeat N [VAR] {         the block N times, VAR (default i) = 0..N-1
 *   concurrent N [VAR] {     N clients, each on its own connection, run
 *                            the block at once, VAR (default c) = 0..N-1
 *   }                        ends a block
 *   restart                  restart the server cleanly (the -R command)
 *   crash                    kill -9 it and start it again (the -K command)
 *   run SHELL-COMMAND        must exit 0; $KVS_HOST and $KVS_PORT are set
 *
 * Words are split at spaces; "double quotes" hold spaces and the escapes
 * \" \\ \n \r \t \xHH. ${VAR} is a block's variable; ${run} is unique to
 * each run of a file, so its keys are fresh even on a store that is not.
 *
 * Replies, as redis-cli shows them: OK (a status), "text" (a bulk string),
 * (nil), (integer) 5, (error) ERR PREFIX (an error starting with that
 * text; none: any error), [ "a" (nil) ] (an array), * (any reply but an
 * error).
 *
 * restart and crash wait until the target answers PING again and open
 * new connections; a file that uses them should `require restart` or
 * `require crash`, tags the runner gives itself when it has the command.
 * Other tags (durable: acknowledged writes survive kill -9) come from -T
 * or the config file, lines of "key value": target HOST:PORT, password,
 * restart COMMAND, crash COMMAND, tags TAG...
 *
 * Prints per file PASS, FAIL (with the step, what was expected and what
 * came) or SKIP; -v also prints each step and each run's output. Ends
 * with "N passed, N failed, N skipped"; exits 0 when none failed.
 */
#include <errno.h>
#include <hiredis/hiredis.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_ARGS 64
#define MAX_VARS 8
#define MAX_TAGS 16
#define CONNECT_WAIT_S 30
#define REPLY_TIMEOUT_S 10

enum kind { K_CMD, K_REPEAT, K_CONCURRENT, K_RESTART, K_CRASH, K_RUN };

struct step {
    enum kind kind;
    int line;
    char *text;   /* K_CMD: the command; K_RUN: the shell command */
    char *expect; /* K_CMD: the reply it must get, or NULL */
    long count;   /* K_REPEAT, K_CONCURRENT */
    char var[16];
    struct step *body;
    size_t nbody;
};

struct vars {
    size_t n;
    char name[MAX_VARS][16];
    char value[MAX_VARS][64];
};

static struct {
    char host[256];
    int port;
    char *password;
    char *restart_cmd, *crash_cmd;
    char *tags[MAX_TAGS];
    size_t ntags;
    bool verbose;
} opt = {.host = "127.0.0.1", .port = 4000};

/* What running a file found; shared by a concurrent block's clients. */
struct outcome {
    pthread_mutex_t lock;
    unsigned long commands;
    char error[1024]; /* the first failure, "" while none */
};

static void fail(struct outcome *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void fail(struct outcome *o, const char *fmt, ...)
{
    pthread_mutex_lock(&o->lock);
    if (!o->error[0]) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(o->error, sizeof(o->error), fmt, ap);
        va_end(ap);
    }
    pthread_mutex_unlock(&o->lock);
}

static bool failed(struct outcome *o)
{
    pthread_mutex_lock(&o->lock);
    bool f = o->error[0] != '\0';
    pthread_mutex_unlock(&o->lock);
    return f;
}

static void *xrealloc(void *old, size_t n)
{
    void *p = realloc(old, n);
    if (!p) {
        fprintf(stderr, "kvs-scenario: out of memory\n");
        exit(2);
    }
    return p;
}

static void *xmalloc(size_t n)
{
    return xrealloc(NULL, n);
}

static char *xstrdup(const char *s)
{
    return strcpy(xmalloc(strlen(s) + 1), s);
}

/* ---- parsing a file into steps ---- */

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\n' || s[n - 1] == '\r'))
        s[--n] = '\0';
    return s;
}

static struct step *add_step(struct step **steps, size_t *n)
{
    *steps = xrealloc(*steps, (*n + 1) * sizeof(**steps));
    memset(&(*steps)[*n], 0, sizeof(**steps));
    return &(*steps)[(*n)++];
}

/* The "->" that separates a command from its reply, outside quotes. */
static char *find_arrow(char *s)
{
    bool quoted = false;
    for (char *p = s; *p; p++) {
        if (quoted && *p == '\\' && p[1])
            p++;
        else if (*p == '"')
            quoted = !quoted;
        else if (!quoted && p[0] == '-' && p[1] == '>' && (p == s || p[-1] == ' '))
            return p;
    }
    return NULL;
}

/* Parse lines until a "}" (depth > 0) or the end. Returns 0, or -1 after
   printing where the file is wrong. */
static int parse_block(FILE *f, const char *path, int *line, int depth, bool in_concurrent,
                       struct step **steps, size_t *n, char ***requires, size_t *nrequires)
{
    char buf[8192];
    while (fgets(buf, sizeof(buf), f)) {
        ++*line;
        char *s = trim(buf);
        if (!*s || *s == '#')
            continue;
        if (strcmp(s, "}") == 0) {
            if (depth == 0) {
                fprintf(stderr, "%s:%d: '}' without a block\n", path, *line);
                return -1;
            }
            return 0;
        }
        char word[32] = "";
        sscanf(s, "%31s", word);
        if (strcmp(word, "require") == 0) {
            char *save, *tok = strtok_r(s + 7, " \t", &save);
            for (; tok; tok = strtok_r(NULL, " \t", &save)) {
                *requires = xrealloc(*requires, (*nrequires + 1) * sizeof(char *));
                (*requires)[(*nrequires)++] = xstrdup(tok);
            }
            continue;
        }
        struct step *st = add_step(steps, n);
        st->line = *line;
        if (strcmp(word, "repeat") == 0 || strcmp(word, "concurrent") == 0) {
            bool conc = word[0] == 'c';
            char var[16] = "", brace[4] = "";
            int got = sscanf(s + strlen(word), "%ld %15s %3s", &st->count, var, brace);
            if (got == 2 && strcmp(var, "{") == 0) {
                strcpy(brace, "{");
                var[0] = '\0';
            } else if (got != 3) {
                brace[0] = '\0';
            }
            if (strcmp(brace, "{") != 0 || st->count < 1) {
                fprintf(stderr, "%s:%d: expected '%s N [VAR] {'\n", path, *line, word);
                return -1;
            }
            if (conc && in_concurrent) {
                fprintf(stderr, "%s:%d: concurrent inside concurrent\n", path, *line);
                return -1;
            }
            st->kind = conc ? K_CONCURRENT : K_REPEAT;
            snprintf(st->var, sizeof(st->var), "%s", var[0] ? var : conc ? "c" : "i");
            /* st may move while the body is parsed: parse into locals. */
            struct step *body = NULL;
            size_t nbody = 0;
            long count = st->count;
            char v[16];
            memcpy(v, st->var, sizeof(v));
            int start = *line;
            if (parse_block(f, path, line, depth + 1, in_concurrent || conc, &body, &nbody,
                            requires, nrequires) != 0)
                return -1;
            if (!nbody) {
                fprintf(stderr, "%s:%d: an empty block\n", path, start);
                return -1;
            }
            st = &(*steps)[*n - 1];
            st->kind = conc ? K_CONCURRENT : K_REPEAT;
            st->count = count;
            memcpy(st->var, v, sizeof(v));
            st->body = body;
            st->nbody = nbody;
            continue;
        }
        if (strcmp(s, "restart") == 0 || strcmp(s, "crash") == 0) {
            if (in_concurrent) {
                fprintf(stderr, "%s:%d: %s inside concurrent\n", path, *line, s);
                return -1;
            }
            st->kind = s[0] == 'r' ? K_RESTART : K_CRASH;
            continue;
        }
        if (strcmp(word, "run") == 0) {
            st->kind = K_RUN;
            st->text = xstrdup(trim(s + 3));
            continue;
        }
        st->kind = K_CMD;
        char *arrow = find_arrow(s);
        if (arrow) {
            *arrow = '\0';
            st->expect = xstrdup(trim(arrow + 2));
        }
        st->text = xstrdup(trim(s));
    }
    if (depth > 0) {
        fprintf(stderr, "%s:%d: a block is not closed with '}'\n", path, *line);
        return -1;
    }
    return 0;
}

static void free_steps(struct step *steps, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(steps[i].text);
        free(steps[i].expect);
        free_steps(steps[i].body, steps[i].nbody);
    }
    free(steps);
}

/* ---- variables, words and replies ---- */

/* text with every ${name} replaced; NULL (and *why) for an unknown one. */
static char *expand(const char *text, const struct vars *v, char *why, size_t whylen)
{
    size_t cap = strlen(text) + 256, len = 0;
    char *out = xmalloc(cap);
    for (const char *p = text; *p;) {
        const char *end;
        if (p[0] == '$' && p[1] == '{' && (end = strchr(p, '}'))) {
            size_t nlen = (size_t)(end - p - 2);
            const char *val = NULL;
            for (size_t i = v->n; i-- > 0;) {
                if (strlen(v->name[i]) == nlen && strncmp(v->name[i], p + 2, nlen) == 0) {
                    val = v->value[i];
                    break;
                }
            }
            if (!val) {
                snprintf(why, whylen, "unknown variable ${%.*s}", (int)nlen, p + 2);
                free(out);
                return NULL;
            }
            size_t vlen = strlen(val);
            if (len + vlen + 1 > cap)
                out = xrealloc(out, cap = (len + vlen + 1) * 2);
            memcpy(out + len, val, vlen);
            len += vlen;
            p = end + 1;
            continue;
        }
        if (len + 2 > cap)
            out = xrealloc(out, cap *= 2);
        out[len++] = *p++;
    }
    out[len] = '\0';
    return out;
}

static int hexval(char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

/* One word at *p (bare or quoted) into out (its length in *len); moves *p
   past it. Returns false at the end of the text or on a bad quote. */
static bool next_word(const char **p, char *out, size_t *len, bool *quoted)
{
    const char *s = *p;
    while (*s == ' ' || *s == '\t')
        s++;
    if (!*s)
        return false;
    size_t n = 0;
    *quoted = *s == '"';
    if (!*quoted) {
        while (*s && *s != ' ' && *s != '\t')
            out[n++] = *s++;
    } else {
        for (s++; *s != '"'; s++) {
            if (!*s)
                return false;
            if (*s != '\\' || !s[1]) {
                out[n++] = *s;
                continue;
            }
            s++;
            switch (*s) {
            case 'n':
                out[n++] = '\n';
                break;
            case 'r':
                out[n++] = '\r';
                break;
            case 't':
                out[n++] = '\t';
                break;
            case 'x':
                if (hexval(s[1]) >= 0 && hexval(s[2]) >= 0) {
                    out[n++] = (char)(hexval(s[1]) * 16 + hexval(s[2]));
                    s += 2;
                    break;
                }
                /* fall through */
            default:
                out[n++] = *s;
            }
        }
        s++;
    }
    out[n] = '\0';
    *len = n;
    *p = s;
    return true;
}

/* A reply as redis-cli-like text, for messages. */
static void render(const redisReply *r, char *out, size_t size)
{
    if (size < 8) {
        out[0] = '\0';
        return;
    }
    switch (r->type) {
    case REDIS_REPLY_STATUS:
        snprintf(out, size, "%s", r->str);
        break;
    case REDIS_REPLY_ERROR:
        snprintf(out, size, "(error) %s", r->str);
        break;
    case REDIS_REPLY_INTEGER:
        snprintf(out, size, "(integer) %lld", r->integer);
        break;
    case REDIS_REPLY_NIL:
        snprintf(out, size, "(nil)");
        break;
    case REDIS_REPLY_STRING:
        snprintf(out, size, "\"%.*s\"", (int)r->len, r->str);
        break;
    case REDIS_REPLY_ARRAY: {
        size_t n = (size_t)snprintf(out, size, "[");
        for (size_t i = 0; i < r->elements && n + 8 < size; i++) {
            out[n++] = ' ';
            render(r->element[i], out + n, size - n);
            n += strlen(out + n);
        }
        snprintf(out + n, size - n, " ]");
        break;
    }
    default:
        snprintf(out, size, "(reply type %d)", r->type);
    }
}

/* Whether r is the reply described at *p (moving *p past it). */
static bool match(const char **p, const redisReply *r)
{
    const char *s = *p;
    while (*s == ' ')
        s++;
    if (strncmp(s, "(error)", 7) == 0) {
        /* The rest of the line is the prefix of the error's text. */
        const char *prefix = s + 7;
        while (*prefix == ' ')
            prefix++;
        *p = s + strlen(s);
        return r->type == REDIS_REPLY_ERROR && strncmp(r->str, prefix, strlen(prefix)) == 0;
    }
    if (strncmp(s, "(nil)", 5) == 0) {
        *p = s + 5;
        return r->type == REDIS_REPLY_NIL;
    }
    if (strncmp(s, "(integer)", 9) == 0) {
        char *end;
        long long v = strtoll(s + 9, &end, 10);
        *p = end;
        return r->type == REDIS_REPLY_INTEGER && r->integer == v;
    }
    if (*s == '*') {
        *p = s + 1;
        return r->type != REDIS_REPLY_ERROR;
    }
    if (*s == '[') {
        s++;
        size_t i = 0;
        bool ok = r->type == REDIS_REPLY_ARRAY;
        for (;;) {
            while (*s == ' ')
                s++;
            if (*s == ']' || !*s)
                break;
            const redisReply *el = ok && i < r->elements ? r->element[i] : NULL;
            if (el)
                ok = match(&s, el) && ok;
            else {
                /* Skip the element: match it against nothing. */
                redisReply none = {.type = -1};
                match(&s, &none);
                ok = false;
            }
            i++;
        }
        *p = *s ? s + 1 : s;
        return ok && i == r->elements;
    }
    char word[8192];
    size_t len;
    bool quoted;
    if (!next_word(&s, word, &len, &quoted)) {
        *p = s + strlen(s);
        return false;
    }
    *p = s;
    if (quoted)
        return r->type == REDIS_REPLY_STRING && r->len == len && memcmp(r->str, word, len) == 0;
    return r->type == REDIS_REPLY_STATUS && strcmp(r->str, word) == 0;
}

/* ---- connections ---- */

static redisContext *connect_target(char *why, size_t whylen)
{
    struct timeval tv = {REPLY_TIMEOUT_S, 0};
    time_t deadline = time(NULL) + CONNECT_WAIT_S;
    for (;;) {
        redisContext *c = redisConnectWithTimeout(opt.host, opt.port, tv);
        if (c && !c->err) {
            redisSetTimeout(c, tv);
            bool ok = true;
            if (opt.password) {
                redisReply *r = redisCommand(c, "AUTH %s", opt.password);
                ok = r && r->type == REDIS_REPLY_STATUS;
                freeReplyObject(r);
            }
            redisReply *r = ok ? redisCommand(c, "PING") : NULL;
            ok = r && r->type == REDIS_REPLY_STATUS;
            freeReplyObject(r);
            if (ok)
                return c;
        }
        snprintf(why, whylen, "cannot connect to %.64s:%d: %.128s", opt.host, opt.port,
                 c ? c->errstr : "out of memory");
        if (c)
            redisFree(c);
        if (time(NULL) >= deadline)
            return NULL;
        usleep(50 * 1000);
    }
}

/* ---- running ---- */

struct run_ctx {
    const char *path;
    struct outcome *out;
    redisContext *conn; /* this client's */
    unsigned long commands;
};

static void run_steps(struct run_ctx *ctx, const struct step *steps, size_t n, struct vars *v,
                      int depth);

static void run_cmd(struct run_ctx *ctx, const struct step *st, struct vars *v, int depth)
{
    char why[256];
    char *text = expand(st->text, v, why, sizeof(why));
    char *expect = st->expect ? expand(st->expect, v, why, sizeof(why)) : NULL;
    if (!text || (st->expect && !expect)) {
        fail(ctx->out, "%s:%d: %s", ctx->path, st->line, why);
        goto out;
    }
    const char *argv[MAX_ARGS];
    size_t argvlen[MAX_ARGS], argc = 0;
    char *words = xmalloc(strlen(text) + 1), *w = words;
    const char *p = text;
    size_t len;
    bool quoted;
    while (argc < MAX_ARGS && next_word(&p, w, &len, &quoted)) {
        argv[argc] = w;
        argvlen[argc++] = len;
        w += len + 1;
    }
    if (argc == 0) {
        fail(ctx->out, "%s:%d: no command in '%s'", ctx->path, st->line, text);
        free(words);
        goto out;
    }
    redisReply *r = redisCommandArgv(ctx->conn, (int)argc, argv, argvlen);
    free(words);
    ctx->commands++;
    if (!r) {
        fail(ctx->out, "%s:%d: %s: no reply (%s)", ctx->path, st->line, text, ctx->conn->errstr);
        goto out;
    }
    const char *e = expect;
    bool ok = !expect || match(&e, r);
    char got[1024];
    if (!ok || (opt.verbose && depth == 0)) {
        render(r, got, sizeof(got));
        if (!ok)
            fail(ctx->out, "%s:%d: %s: expected %s, got %s", ctx->path, st->line, text, expect,
                 got);
        else
            printf("  %d: %s -> %s\n", st->line, text, got);
    }
    freeReplyObject(r);
out:
    free(text);
    free(expect);
}

struct client {
    pthread_t thread;
    struct run_ctx ctx;
    const struct step *st;
    struct vars v;
};

static void *client_main(void *arg)
{
    struct client *cl = arg;
    char why[256];
    cl->ctx.conn = connect_target(why, sizeof(why));
    if (!cl->ctx.conn) {
        fail(cl->ctx.out, "%s:%d: client %s: %s", cl->ctx.path, cl->st->line,
             cl->v.value[cl->v.n - 1], why);
        return NULL;
    }
    run_steps(&cl->ctx, cl->st->body, cl->st->nbody, &cl->v, 1);
    redisFree(cl->ctx.conn);
    return NULL;
}

static void run_concurrent(struct run_ctx *ctx, const struct step *st, struct vars *v)
{
    struct client *cls = calloc((size_t)st->count, sizeof(*cls));
    if (!cls || v->n == MAX_VARS) {
        fail(ctx->out, "%s:%d: cannot start %ld clients", ctx->path, st->line, st->count);
        free(cls);
        return;
    }
    long started = 0;
    for (long i = 0; i < st->count; i++) {
        struct client *cl = &cls[i];
        cl->ctx = (struct run_ctx){.path = ctx->path, .out = ctx->out};
        cl->st = st;
        cl->v = *v;
        snprintf(cl->v.name[cl->v.n], sizeof(cl->v.name[0]), "%s", st->var);
        snprintf(cl->v.value[cl->v.n++], sizeof(cl->v.value[0]), "%ld", i);
        if (pthread_create(&cl->thread, NULL, client_main, cl) != 0) {
            fail(ctx->out, "%s:%d: cannot start client %ld", ctx->path, st->line, i);
            break;
        }
        started++;
    }
    unsigned long commands = 0;
    for (long i = 0; i < started; i++) {
        pthread_join(cls[i].thread, NULL);
        commands += cls[i].ctx.commands;
    }
    ctx->commands += commands;
    if (opt.verbose)
        printf("  %d: concurrent %ld: %lu commands%s\n", st->line, st->count, commands,
               failed(ctx->out) ? "" : ", every reply as expected");
    free(cls);
}

/* Restart or crash the target with the configured command, then connect
   again. */
static void run_hook(struct run_ctx *ctx, const struct step *st)
{
    const char *cmd = st->kind == K_RESTART ? opt.restart_cmd : opt.crash_cmd;
    const char *name = st->kind == K_RESTART ? "restart" : "crash";
    if (!cmd) {
        fail(ctx->out, "%s:%d: %s: no %s command (-%c; or `require %s` in the file)", ctx->path,
             st->line, name, name, st->kind == K_RESTART ? 'R' : 'K', name);
        return;
    }
    redisFree(ctx->conn);
    ctx->conn = NULL;
    fflush(stdout);
    int rc = system(cmd);
    if (rc != 0) {
        fail(ctx->out, "%s:%d: %s: `%s` exited with %d", ctx->path, st->line, name, cmd, rc);
        return;
    }
    char why[256];
    ctx->conn = connect_target(why, sizeof(why));
    if (!ctx->conn)
        fail(ctx->out, "%s:%d: after %s: %s", ctx->path, st->line, name, why);
    else if (opt.verbose)
        printf("  %d: %s: done, the server answers again\n", st->line, name);
}

static void run_program(struct run_ctx *ctx, const struct step *st, struct vars *v)
{
    char why[256];
    char *cmd = expand(st->text, v, why, sizeof(why));
    if (!cmd) {
        fail(ctx->out, "%s:%d: %s", ctx->path, st->line, why);
        return;
    }
    fflush(stdout);
    size_t clen = strlen(cmd);
    cmd = xrealloc(cmd, clen + 8);
    memcpy(cmd + clen, " 2>&1", 6);
    FILE *p = popen(cmd, "r");
    char out[4096];
    size_t n = 0;
    if (p) {
        size_t got;
        char chunk[1024];
        while ((got = fread(chunk, 1, sizeof(chunk), p)) > 0) {
            size_t take = got < sizeof(out) - 1 - n ? got : sizeof(out) - 1 - n;
            memcpy(out + n, chunk, take);
            n += take;
        }
    }
    out[n] = '\0';
    int rc = p ? pclose(p) : -1;
    if (opt.verbose)
        printf("  %d: run %s (exit %d)\n%s", st->line, cmd,
               rc >= 0 && WIFEXITED(rc) ? WEXITSTATUS(rc) : -1, out);
    if (rc != 0)
        fail(ctx->out, "%s:%d: run %s: exit status %d; output:\n%s", ctx->path, st->line, cmd,
             rc >= 0 && WIFEXITED(rc) ? WEXITSTATUS(rc) : -1, out);
    free(cmd);
}

static void run_steps(struct run_ctx *ctx, const struct step *steps, size_t n, struct vars *v,
                      int depth)
{
    for (size_t i = 0; i < n && !failed(ctx->out); i++) {
        const struct step *st = &steps[i];
        switch (st->kind) {
        case K_CMD:
            run_cmd(ctx, st, v, depth);
            break;
        case K_RESTART:
        case K_CRASH:
            run_hook(ctx, st);
            break;
        case K_RUN:
            run_program(ctx, st, v);
            break;
        case K_CONCURRENT:
            run_concurrent(ctx, st, v);
            break;
        case K_REPEAT:
            if (v->n == MAX_VARS) {
                fail(ctx->out, "%s:%d: blocks nested too deep", ctx->path, st->line);
                break;
            }
            snprintf(v->name[v->n], sizeof(v->name[0]), "%s", st->var);
            v->n++;
            for (long k = 0; k < st->count && !failed(ctx->out); k++) {
                snprintf(v->value[v->n - 1], sizeof(v->value[0]), "%ld", k);
                run_steps(ctx, st->body, st->nbody, v, depth + 1);
            }
            v->n--;
            break;
        }
    }
}

static bool has_tag(const char *tag)
{
    for (size_t i = 0; i < opt.ntags; i++) {
        if (strcmp(opt.tags[i], tag) == 0)
            return true;
    }
    return false;
}

static void add_tag(const char *tag)
{
    if (opt.ntags < MAX_TAGS && !has_tag(tag))
        opt.tags[opt.ntags++] = xstrdup(tag);
}

static int set_target(const char *addr)
{
    const char *colon = strrchr(addr, ':');
    if (!colon || colon == addr || (size_t)(colon - addr) >= sizeof(opt.host)) {
        fprintf(stderr, "kvs-scenario: target '%s' is not HOST:PORT\n", addr);
        return -1;
    }
    snprintf(opt.host, sizeof(opt.host), "%.*s", (int)(colon - addr), addr);
    opt.port = atoi(colon + 1);
    return 0;
}

static int read_config(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "kvs-scenario: %s: %s\n", path, strerror(errno));
        return -1;
    }
    char buf[4096];
    int rc = 0;
    while (rc == 0 && fgets(buf, sizeof(buf), f)) {
        char *s = trim(buf);
        if (!*s || *s == '#')
            continue;
        char *value = s + strcspn(s, " \t");
        if (*value)
            *value++ = '\0';
        value = trim(value);
        if (strcmp(s, "target") == 0)
            rc = set_target(value);
        else if (strcmp(s, "password") == 0)
            opt.password = xstrdup(value);
        else if (strcmp(s, "restart") == 0)
            opt.restart_cmd = xstrdup(value);
        else if (strcmp(s, "crash") == 0)
            opt.crash_cmd = xstrdup(value);
        else if (strcmp(s, "tags") == 0) {
            char *save, *tok = strtok_r(value, " \t", &save);
            for (; tok; tok = strtok_r(NULL, " \t", &save))
                add_tag(tok);
        } else {
            fprintf(stderr, "kvs-scenario: %s: unknown setting '%s'\n", path, s);
            rc = -1;
        }
    }
    fclose(f);
    return rc;
}

/* Run one file: 0 passed, 1 failed, 2 skipped. */
static int run_file(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        printf("FAIL %s: %s\n", path, strerror(errno));
        return 1;
    }
    struct step *steps = NULL;
    size_t n = 0, nrequires = 0;
    char **requires = NULL;
    int line = 0;
    int rc = parse_block(f, path, &line, 0, false, &steps, &n, &requires, &nrequires);
    fclose(f);
    const char *missing = NULL;
    for (size_t i = 0; i < nrequires && !missing; i++) {
        if (!has_tag(requires[i]))
        missing = requires[i];
    }
    if (rc != 0) {
        printf("FAIL %s: the file does not parse\n", path);
        rc = 1;
    } else if (missing) {
        printf("SKIP %s (requires %s)\n", path, missing);
        rc = 2;
    } else {
        if (opt.verbose)
            printf("RUN  %s\n", path);
        struct outcome out = {.lock = PTHREAD_MUTEX_INITIALIZER};
        struct run_ctx ctx = {.path = path, .out = &out};
        struct vars v = {.n = 1};
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        snprintf(v.name[0], sizeof(v.name[0]), "run");
        snprintf(v.value[0], sizeof(v.value[0]), "%ld.%ld.%d", (long)now.tv_sec,
                 (long)(now.tv_nsec / 1000), (int)getpid());
        char why[256];
        ctx.conn = connect_target(why, sizeof(why));
        if (!ctx.conn)
            fail(&out, "%s: %s", path, why);
        else
            run_steps(&ctx, steps, n, &v, 0);
        if (ctx.conn)
            redisFree(ctx.conn);
        if (out.error[0]) {
            printf("FAIL %s: %s\n", path, out.error);
            rc = 1;
        } else {
            printf("PASS %s (%lu commands)\n", path, ctx.commands);
        }
    }
    for (size_t i = 0; i < nrequires; i++)
        free(requires[i]);
    free(requires);
    free_steps(steps, n);
    fflush(stdout);
    return rc;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: kvs-scenario [-v] [-t HOST:PORT] [-c CONFIG] [-a PASSWORD] [-T TAG]...\n"
            "                    [-R RESTART-COMMAND] [-K CRASH-COMMAND] FILE...\n");
    exit(2);
}

int main(int argc, char **argv)
{
    int ch;
    while ((ch = getopt(argc, argv, "vt:c:a:T:R:K:")) != -1) {
        switch (ch) {
        case 'v':
            opt.verbose = true;
            break;
        case 't':
            if (set_target(optarg) != 0)
                return 2;
            break;
        case 'c':
            if (read_config(optarg) != 0)
                return 2;
            break;
        case 'a':
            opt.password = optarg;
            break;
        case 'T':
            add_tag(optarg);
            break;
        case 'R':
            opt.restart_cmd = optarg;
            break;
        case 'K':
            opt.crash_cmd = optarg;
            break;
        default:
            usage();
        }
    }
    if (optind >= argc)
        usage();
    if (opt.restart_cmd)
        add_tag("restart");
    if (opt.crash_cmd)
        add_tag("crash");
    char port[16];
    snprintf(port, sizeof(port), "%d", opt.port);
    setenv("KVS_HOST", opt.host, 1);
    setenv("KVS_PORT", port, 1);
    int passed = 0, nfailed = 0, skipped = 0;
    for (int i = optind; i < argc; i++) {
        int rc = run_file(argv[i]);
        passed += rc == 0;
        nfailed += rc == 1;
        skipped += rc == 2;
    }
    printf("%d passed, %d failed, %d skipped\n", passed, nfailed, skipped);
    return nfailed ? 1 : 0;
}
