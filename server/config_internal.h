/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The option table behind config.h, shared by config.c (the command line,
 * the file, CONFIG's entry points) and config_opts.c (each option's
 * parsing and printing). Nothing else includes it.
 */
#ifndef KVS_SERVER_CONFIG_INTERNAL_H
#define KVS_SERVER_CONFIG_INTERNAL_H

#include "config.h"

enum {
    CO_LIVE = 1u << 0,       /* CONFIG SET can change it (live is set) */
    CO_QUOTE = 1u << 1,      /* a string: REWRITE writes it quoted */
    CO_IF_PRESENT = 1u << 2, /* REWRITE updates its lines but never adds one */
    CO_DERIVED = 1u << 3,    /* a Redis name answered for clients (save,
                                databases...): the directive is ignored with a
                                warning, REWRITE leaves its lines alone */
    CO_SECRET = 1u << 4,     /* its command-line text is overwritten in argv */
};

struct config_option {
    const char *name;  /* the directive and --name */
    const char *alias; /* another name for it, or NULL */
    unsigned flags;
    int min_args, max_args; /* values after the name; max -1: any number */
    /* At startup: argc values (argv[i] of len[i] bytes). Returns 0, or
       -1 with the reason in why ("argument must be between 1 and 500
       inclusive"), which the caller prefixes with the name and value. */
    int (*set)(struct server_config *cfg, int argc, char **argv, const size_t *len, char *why,
               size_t size);
    /* CONFIG SET: check (apply false) or apply one value. */
    int (*live)(struct server *srv, const char *val, size_t len, bool apply, char *why,
                size_t size);
    /* The value into out. srv is NULL for a configuration that is not
       running (the defaults, to see what REWRITE must write). Returns
       false when the option is unset (replicaof of a primary): CONFIG GET
       shows "", REWRITE removes its lines. */
    bool (*get)(const struct server_config *cfg, struct server *srv, struct text *out);
};

extern const struct config_option config_options[];
extern const size_t config_noptions;

/* Fill cfg with the defaults. Returns 0 or -1 out of memory. */
int config_defaults(struct server_config *cfg);

/* A copy of len bytes at s kept until config_free(), or NULL. */
char *config_keep(struct server_config *cfg, const char *s, size_t len);

#endif
