/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * CONFIG GET, SET, REWRITE and HELP over the option table (config.h), with
 * Redis's replies and error texts. Run on the connection's worker, under
 * config_lock().
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "config.h"
#include "conn.h"
#include "glob.h"
#include "log.h"
#include "reply.h"
#include "worker.h"

/* The pattern up to its first NUL byte, as Redis's C string sees it. */
static kvs_slice until_nul(kvs_slice s)
{
    const char *nul = s.len ? memchr(s.data, '\0', s.len) : NULL;
    if (nul)
        s.len = (size_t)(nul - (const char *)s.data);
    return s;
}

static bool has_glob(kvs_slice s)
{
    const char *p = s.data;
    for (size_t i = 0; i < s.len; i++) {
        if (p[i] == '*' || p[i] == '?' || p[i] == '[')
            return true;
    }
    return false;
}

static bool name_is(kvs_slice s, const char *name)
{
    return name && s.len == strlen(name) && strncasecmp(s.data, name, s.len) == 0;
}

/* CONFIG GET pattern [pattern ...]: name/value pairs, each option once.
   A pattern without glob characters is looked up as a name and answered
   under the name as given, as Redis 7 does. */
void config_cmd_get(struct conn *c, size_t argc, const kvs_slice *argv)
{
    size_t n = config_opt_count();
    kvs_slice *shown = calloc(n, sizeof(*shown));
    if (!shown) {
        reply_error(c, "ERR out of memory");
        return;
    }
    size_t nhit = 0;
    for (size_t i = 2; i < argc; i++) {
        kvs_slice pat = until_nul(argv[i]);
        bool glob = has_glob(pat);
        for (size_t o = 0; o < n; o++) {
            if (shown[o].data)
                continue;
            const char *name = config_opt_name(o), *alias = config_opt_alias(o);
            if (!glob) {
                if (name_is(pat, name) || name_is(pat, alias))
                    shown[o] = pat;
            } else if (glob_match(pat, kvs_slice_str(name), true)) {
                shown[o] = kvs_slice_str(name);
            } else if (alias && glob_match(pat, kvs_slice_str(alias), true)) {
                shown[o] = kvs_slice_str(alias);
            }
            nhit += shown[o].data != NULL;
        }
    }
    struct text value = {0};
    config_lock();
    reply_array(c, nhit * 2);
    for (size_t o = 0; o < n; o++) {
        if (!shown[o].data)
            continue;
        value.len = 0;
        if (value.p)
            value.p[0] = '\0';
        config_opt_get(c->w->srv, o, &value);
        reply_bulk(c, shown[o].data, shown[o].len);
        reply_bulk(c, value.p ? value.p : "", value.oom ? 0 : value.len);
    }
    config_unlock();
    if (value.p)
        explicit_bzero(value.p, value.cap);
    text_free(&value);
    free(shown);
}

static ptrdiff_t find_option(kvs_slice name)
{
    name = until_nul(name);
    for (size_t o = 0; o < config_opt_count(); o++) {
        if (name_is(name, config_opt_name(o)) || name_is(name, config_opt_alias(o)))
            return (ptrdiff_t)o;
    }
    return -1;
}

/* CONFIG SET name value [name value ...]: all or nothing, as in Redis. */
void config_cmd_set(struct conn *c, size_t argc, const kvs_slice *argv)
{
    if (argc % 2 != 0) {
        reply_error(c, "ERR syntax error");
        return;
    }
    size_t pairs = (argc - 2) / 2;
    ptrdiff_t *opt = calloc(pairs, sizeof(*opt));
    char **vals = calloc(pairs, sizeof(*vals));
    if (!opt || !vals) {
        reply_error(c, "ERR out of memory");
        goto out;
    }
    /* As Redis 7.0: the first unknown name, else the first immutable or
       repeated one, else the first value that does not parse or fit. */
    size_t unknown = SIZE_MAX, bad = SIZE_MAX;
    const char *bad_why = NULL;
    for (size_t i = 0; i < pairs; i++) {
        opt[i] = find_option(argv[2 + 2 * i]);
        if (opt[i] < 0) {
            if (unknown == SIZE_MAX)
                unknown = i;
            continue;
        }
        if (unknown != SIZE_MAX || bad != SIZE_MAX)
            continue;
        if (!config_opt_live((size_t)opt[i])) {
            bad = i;
            bad_why = "can't set immutable config";
        }
        for (size_t j = 0; j < i && bad == SIZE_MAX; j++) {
            if (opt[j] == opt[i]) {
                bad = i;
                bad_why = "duplicate parameter";
            }
        }
    }
    if (unknown != SIZE_MAX) {
        kvs_slice name = argv[2 + 2 * unknown];
        reply_errorf(c, "ERR Unknown option or number of arguments for CONFIG SET - '%.*s'",
                     (int)(name.len > 128 ? 128 : name.len), (const char *)name.data);
        goto out;
    }
    if (bad != SIZE_MAX) {
        kvs_slice name = argv[2 + 2 * bad];
        reply_errorf(c, "ERR CONFIG SET failed (possibly related to argument '%.*s') - %s",
                     (int)(name.len > 128 ? 128 : name.len), (const char *)name.data, bad_why);
        goto out;
    }
    for (size_t i = 0; i < pairs; i++) {
        kvs_slice val = argv[3 + 2 * i];
        vals[i] = malloc(val.len + 1);
        if (!vals[i]) {
            reply_error(c, "ERR out of memory");
            goto out;
        }
        memcpy(vals[i], val.data, val.len);
        vals[i][val.len] = '\0';
    }
    char why[256];
    config_lock();
    for (int apply = 0; apply < 2; apply++) {
        for (size_t i = 0; i < pairs; i++) {
            kvs_slice name = argv[2 + 2 * i];
            why[0] = '\0';
            if (config_opt_set(c->w->srv, (size_t)opt[i], vals[i], argv[3 + 2 * i].len, apply, why,
                               sizeof(why)) != 0) {
                config_unlock();
                reply_errorf(c, "ERR CONFIG SET failed (possibly related to argument '%.*s') - %s",
                             (int)(name.len > 128 ? 128 : name.len), (const char *)name.data, why);
                goto out;
            }
        }
    }
    config_unlock();
    for (size_t i = 0; i < pairs; i++)
        log_info("CONFIG SET %s by client id=%llu", config_opt_name((size_t)opt[i]),
                 (unsigned long long)c->id);
    reply_ok(c);
out:
    for (size_t i = 0; vals && i < pairs; i++) {
        if (vals[i])
            explicit_bzero(vals[i], argv[3 + 2 * i].len);
        free(vals[i]);
    }
    free(vals);
    free(opt);
}

/* CONFIG REWRITE: the running configuration into the file it came from. */
void config_cmd_rewrite(struct conn *c, size_t argc, const kvs_slice *argv)
{
    (void)argc;
    (void)argv;
    char why[512];
    why[0] = '\0';
    config_lock();
    int rc = config_write_back(c->w->srv, why, sizeof(why));
    config_unlock();
    if (rc != 0 && !c->w->srv->cfg.config_file) {
        reply_errorf(c, "ERR %s", why);
        return;
    }
    if (rc != 0) {
        log_warn("CONFIG REWRITE failed: %s", why);
        reply_errorf(c, "ERR Rewriting config file: %s", why);
        return;
    }
    log_info("CONFIG REWRITE executed with success: %s", c->w->srv->cfg.config_file);
    reply_ok(c);
}

/* CONFIG HELP, Redis's text and the names CONFIG SET can change. */
void config_cmd_help(struct conn *c, size_t argc, const kvs_slice *argv)
{
    (void)argc;
    (void)argv;
    static const char *const lines[] = {
        "CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "GET <pattern>",
        "    Return parameters matching the glob-like <pattern> and their values.",
        "SET <directive> <value>",
        "    Set the configuration <directive> to <value>.",
        NULL, /* the live ones */
        "    The others are read at startup only: set them in the configuration file or",
        "    on the command line, and restart.",
        "RESETSTAT",
        "    Reset statistics reported by the INFO command.",
        "REWRITE",
        "    Rewrite the configuration file.",
        "HELP",
        "    Prints this help.",
    };
    struct text live = {0};
    text_printf(&live, "    These can change while the server runs:");
    for (size_t o = 0, k = 0; o < config_opt_count(); o++) {
        if (config_opt_live(o))
            text_printf(&live, "%s %s", k++ ? "," : "", config_opt_name(o));
    }
    text_printf(&live, ".");
    size_t n = sizeof(lines) / sizeof(lines[0]);
    reply_array(c, n);
    for (size_t i = 0; i < n; i++)
        reply_simple(c, lines[i] ? lines[i] : live.oom ? "" : live.p);
    text_free(&live);
}
