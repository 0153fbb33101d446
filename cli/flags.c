/*
 * flags.c: command-line flags with pflag's rules (the library under
 * etcdctl's cobra commands), the global flag table, and the environment.
 *
 * Error texts are pflag's, so scripts that match etcdctl's messages keep
 * working: "unknown flag: --x", "unknown shorthand flag: 'x' in -x",
 * "flag needs an argument: --x", "invalid argument \"v\" for \"--x\"
 * flag: ...".
 */
#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli/cli.h"

#define G(field) offsetof(struct mc_global, field)

const struct mc_flag mc_global_flags[] = {
    {"endpoints", 0, MC_FLAG_ENDPOINTS, G(endpoints), "gRPC endpoints"},
    {"dial-timeout", 0, MC_FLAG_DURATION, G(dial_timeout_ms),
     "dial timeout for client connections"},
    {"command-timeout", 0, MC_FLAG_DURATION, G(command_timeout_ms),
     "timeout for short running command (excluding dial timeout)"},
    {"keepalive-time", 0, MC_FLAG_DURATION, G(keepalive_time_ms),
     "keepalive time for client connections"},
    {"keepalive-timeout", 0, MC_FLAG_DURATION, G(keepalive_timeout_ms),
     "keepalive timeout for client connections"},
    {"cacert", 0, MC_FLAG_STRING, G(cacert),
     "verify certificates of TLS-enabled secure servers using this CA "
     "bundle"},
    {"cert", 0, MC_FLAG_STRING, G(cert),
     "identify secure client using this TLS certificate file"},
    {"key", 0, MC_FLAG_STRING, G(key),
     "identify secure client using this TLS key file"},
    {"insecure-skip-tls-verify", 0, MC_FLAG_BOOL, G(insecure_skip_tls_verify),
     "skip server certificate verification (CAUTION: this option should be "
     "enabled only for testing purposes)"},
    {"insecure-transport", 0, MC_FLAG_BOOL, G(insecure_transport),
     "disable transport security for client connections"},
    {"insecure-discovery", 0, MC_FLAG_BOOL, G(insecure_discovery),
     "accept insecure SRV records describing cluster endpoints"},
    {"discovery-srv", 'd', MC_FLAG_STRING, G(discovery_srv),
     "domain name to query for SRV records describing cluster endpoints "
     "(not supported by moorctl)"},
    {"discovery-srv-name", 0, MC_FLAG_STRING, G(discovery_srv_name),
     "service name to query when using DNS discovery (not supported)"},
    {"user", 0, MC_FLAG_STRING, G(user),
     "username[:password] for authentication"},
    {"password", 0, MC_FLAG_STRING, G(password),
     "password for authentication (if this option is used, --user option "
     "shouldn't include password)"},
    {"write-out", 'w', MC_FLAG_STRING, G(write_out),
     "set the output format (fields, json, protobuf, simple, table)"},
    {"hex", 0, MC_FLAG_BOOL, G(hex),
     "print byte strings as hex encoded strings"},
    {"debug", 0, MC_FLAG_BOOL, G(debug), "enable client-side debug logging"},
    {"help", 'h', MC_FLAG_BOOL, G(help), "help for moorctl"},
};
const size_t mc_global_flags_len = MOOR_ARRAY_LEN(mc_global_flags);

static void endpoints_clear(struct mc_global *g)
{
    for (size_t i = 0; i < g->endpoints_len; i++) {
        moor_free(g->endpoints[i]);
        g->endpoints[i] = NULL;
    }
    g->endpoints_len = 0;
}

int mc_global_init(struct mc_global *g)
{
    memset(g, 0, sizeof(*g));
    g->endpoints[0] = moor_strdup("127.0.0.1:2379");
    g->write_out = moor_strdup("simple");
    if (g->endpoints[0] == NULL || g->write_out == NULL) {
        mc_global_close(g);
        return MOOR_ENOMEM;
    }
    g->endpoints_len = 1;
    g->dial_timeout_ms = 2000;
    g->command_timeout_ms = 5000;
    g->keepalive_time_ms = 2000;
    g->keepalive_timeout_ms = 6000;
    g->insecure_transport = true;
    g->insecure_discovery = true;
    return MOOR_OK;
}

void mc_global_close(struct mc_global *g)
{
    endpoints_clear(g);
    char **strs[] = {&g->cacert,
                     &g->cert,
                     &g->key,
                     &g->user,
                     &g->password,
                     &g->discovery_srv,
                     &g->discovery_srv_name,
                     &g->write_out};
    for (size_t i = 0; i < MOOR_ARRAY_LEN(strs); i++) {
        moor_free(*strs[i]);
        *strs[i] = NULL;
    }
}

int mc_global_format(const struct mc_global *g, enum mc_format *out)
{
    static const char *const names[] = {"simple", "json", "fields", "table",
                                        "protobuf"};
    for (size_t i = 0; i < MOOR_ARRAY_LEN(names); i++) {
        if (strcmp(g->write_out, names[i]) == 0) {
            *out = (enum mc_format)i;
            return MOOR_OK;
        }
    }
    return MOOR_EINVAL;
}

/* strconv.ParseBool's accepted spellings. */
static int parse_bool(const char *s, bool *out)
{
    static const char *const t[] = {"1", "t", "T", "TRUE", "true", "True"};
    static const char *const f[] = {"0", "f", "F", "FALSE", "false", "False"};
    for (size_t i = 0; i < MOOR_ARRAY_LEN(t); i++) {
        if (strcmp(s, t[i]) == 0) {
            *out = true;
            return MOOR_OK;
        }
        if (strcmp(s, f[i]) == 0) {
            *out = false;
            return MOOR_OK;
        }
    }
    return MOOR_EINVAL;
}

static int parse_int64(const char *s, int64_t *out)
{
    if (*s == 0 || isspace((unsigned char)*s)) {
        return MOOR_EINVAL;
    }
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (*end != 0) {
        return MOOR_EINVAL;
    }
    if (errno == ERANGE) {
        return MOOR_ETOOBIG;
    }
    *out = v;
    return MOOR_OK;
}

/* Appends the comma-separated endpoints in value (pflag's StringSlice:
 * the first use replaces the default, later uses append). */
static int set_endpoints(struct mc_global *g, const char *value, char *errtext)
{
    if (!g->endpoints_set) {
        endpoints_clear(g);
        g->endpoints_set = true;
    }
    const char *p = value;
    while (*p != 0) {
        const char *comma = strchr(p, ',');
        size_t n = comma != NULL ? (size_t)(comma - p) : strlen(p);
        if (n > 0) {
            if (g->endpoints_len == MC_ENDPOINTS_MAX) {
                moor_errmsg_set(errtext, "too many endpoints (at most %d)",
                                MC_ENDPOINTS_MAX);
                return MOOR_ETOOBIG;
            }
            char *e = moor_malloc(n + 1);
            if (e == NULL) {
                return MOOR_ENOMEM;
            }
            memcpy(e, p, n);
            e[n] = 0;
            g->endpoints[g->endpoints_len++] = e;
        }
        p += n;
        if (*p == ',') {
            p++;
        }
    }
    return MOOR_OK;
}

int mc_flag_set(const struct mc_flag *f, void *base, const char *value,
                char *errtext)
{
    char *dst = (char *)base + f->offset;
    int rv;
    switch (f->type) {
    case MC_FLAG_BOOL: {
        bool b;
        if (parse_bool(value, &b) != MOOR_OK) {
            moor_errmsg_set(errtext,
                            "invalid argument \"%s\" for \"--%s\" flag: "
                            "strconv.ParseBool: parsing \"%s\": invalid syntax",
                            value, f->name, value);
            return MOOR_EINVAL;
        }
        memcpy(dst, &b, sizeof(b));
        return MOOR_OK;
    }
    case MC_FLAG_STRING: {
        char *copy = moor_strdup(value);
        char *old;
        if (copy == NULL) {
            return MOOR_ENOMEM;
        }
        memcpy(&old, dst, sizeof(old));
        moor_free(old);
        memcpy(dst, &copy, sizeof(copy));
        return MOOR_OK;
    }
    case MC_FLAG_INT64: {
        int64_t v;
        rv = parse_int64(value, &v);
        if (rv != MOOR_OK) {
            moor_errmsg_set(
                errtext,
                "invalid argument \"%s\" for \"--%s\" flag: "
                "strconv.ParseInt: parsing \"%s\": %s",
                value, f->name, value,
                rv == MOOR_ETOOBIG ? "value out of range" : "invalid syntax");
            return MOOR_EINVAL;
        }
        memcpy(dst, &v, sizeof(v));
        return MOOR_OK;
    }
    case MC_FLAG_DURATION: {
        uint64_t ms;
        if (mc_duration_parse(value, &ms) != MOOR_OK) {
            moor_errmsg_set(errtext,
                            "invalid argument \"%s\" for \"--%s\" flag: "
                            "time: invalid duration \"%s\"",
                            value, f->name, value);
            return MOOR_EINVAL;
        }
        memcpy(dst, &ms, sizeof(ms));
        return MOOR_OK;
    }
    case MC_FLAG_ENDPOINTS:
        return set_endpoints(base, value, errtext);
    }
    return MOOR_EINVAL;
}

static const struct mc_flag *find_long(const struct mc_flagset *sets,
                                       size_t nsets, const char *name,
                                       size_t len, void **base)
{
    for (size_t s = 0; s < nsets; s++) {
        for (size_t i = 0; i < sets[s].len; i++) {
            const struct mc_flag *f = &sets[s].flags[i];
            if (strlen(f->name) == len && memcmp(f->name, name, len) == 0) {
                *base = sets[s].base;
                return f;
            }
        }
    }
    return NULL;
}

static const struct mc_flag *find_short(const struct mc_flagset *sets,
                                        size_t nsets, char c, void **base)
{
    for (size_t s = 0; s < nsets; s++) {
        for (size_t i = 0; i < sets[s].len; i++) {
            if (sets[s].flags[i].shorthand == c) {
                *base = sets[s].base;
                return &sets[s].flags[i];
            }
        }
    }
    return NULL;
}

static int add_pos(char **pos, size_t *npos, char *arg, char *errtext)
{
    if (*npos == MC_ARGS_MAX) {
        moor_errmsg_set(errtext, "too many arguments (at most %d)",
                        MC_ARGS_MAX);
        return MOOR_ETOOBIG;
    }
    pos[(*npos)++] = arg;
    return MOOR_OK;
}

int mc_flags_parse(int argc, char **argv, const struct mc_flagset *sets,
                   size_t nsets, char **pos, size_t *npos, char *errtext)
{
    size_t sep;
    return mc_flags_parse_sep(argc, argv, sets, nsets, pos, npos, &sep,
                              errtext);
}

int mc_flags_parse_sep(int argc, char **argv, const struct mc_flagset *sets,
                       size_t nsets, char **pos, size_t *npos, size_t *sep,
                       char *errtext)
{
    int rv;
    *npos = 0;
    *sep = SIZE_MAX;
    for (int i = 0; i < argc; i++) {
        char *a = argv[i];
        void *base = NULL;
        const struct mc_flag *f;
        const char *value = NULL;
        if (strcmp(a, "--") == 0) {
            *sep = *npos;
            for (i++; i < argc; i++) {
                rv = add_pos(pos, npos, argv[i], errtext);
                if (rv != MOOR_OK) {
                    return rv;
                }
            }
            break;
        }
        if (a[0] != '-' || a[1] == 0) {
            rv = add_pos(pos, npos, a, errtext);
            if (rv != MOOR_OK) {
                return rv;
            }
            continue;
        }
        if (a[1] == '-') {
            const char *name = a + 2;
            const char *eq = strchr(name, '=');
            size_t len = eq != NULL ? (size_t)(eq - name) : strlen(name);
            f = find_long(sets, nsets, name, len, &base);
            if (f == NULL) {
                moor_errmsg_set(errtext, "unknown flag: --%.*s", (int)len,
                                name);
                return MOOR_EINVAL;
            }
            if (eq != NULL) {
                value = eq + 1;
            } else if (f->type == MC_FLAG_BOOL) {
                value = "true";
            } else if (i + 1 < argc) {
                value = argv[++i];
            } else {
                moor_errmsg_set(errtext, "flag needs an argument: --%s",
                                f->name);
                return MOOR_EINVAL;
            }
            rv = mc_flag_set(f, base, value, errtext);
            if (rv != MOOR_OK) {
                return rv;
            }
            continue;
        }
        /* Shorthands: -abc is -a -b -c for booleans; a value-taking
         * shorthand takes the rest of the word, or the next word. */
        for (const char *p = a + 1; *p != 0; p++) {
            f = find_short(sets, nsets, *p, &base);
            if (f == NULL) {
                moor_errmsg_set(errtext, "unknown shorthand flag: '%c' in %s",
                                *p, a);
                return MOOR_EINVAL;
            }
            if (f->type == MC_FLAG_BOOL) {
                value = p[1] == '=' ? p + 2 : "true";
                rv = mc_flag_set(f, base, value, errtext);
                if (rv != MOOR_OK) {
                    return rv;
                }
                if (p[1] == '=') {
                    break;
                }
                continue;
            }
            if (p[1] == '=') {
                value = p + 2;
            } else if (p[1] != 0) {
                value = p + 1;
            } else if (i + 1 < argc) {
                value = argv[++i];
            } else {
                moor_errmsg_set(errtext, "flag needs an argument: '%c' in -%c",
                                *p, *p);
                return MOOR_EINVAL;
            }
            rv = mc_flag_set(f, base, value, errtext);
            if (rv != MOOR_OK) {
                return rv;
            }
            break;
        }
    }
    return MOOR_OK;
}

int mc_global_from_env(struct mc_global *g,
                       const char *(*getenv_fn)(const char *name, void *arg),
                       void *arg, char *errtext)
{
    static const char *const prefixes[] = {"MOORCTL_", "ETCDCTL_"};
    for (size_t i = 0; i < mc_global_flags_len; i++) {
        const struct mc_flag *f = &mc_global_flags[i];
        if (strcmp(f->name, "help") == 0) {
            continue;
        }
        for (size_t p = 0; p < MOOR_ARRAY_LEN(prefixes); p++) {
            char name[64];
            size_t n = (size_t)snprintf(name, sizeof(name), "%s%s", prefixes[p],
                                        f->name);
            for (size_t k = strlen(prefixes[p]); k < n; k++) {
                name[k] = name[k] == '-' ? '_' : (char)toupper(name[k]);
            }
            const char *v = getenv_fn(name, arg);
            if (v == NULL) {
                continue;
            }
            char inner[MOOR_ERRMSG_SIZE];
            int rv = mc_flag_set(f, g, v, inner);
            if (rv != MOOR_OK) {
                moor_errmsg_set(errtext, "invalid value \"%s\" for %s (%s)", v,
                                name, inner);
                return rv;
            }
            break; /* MOORCTL_ wins over ETCDCTL_ */
        }
    }
    /* An environment list counts as the first --endpoints use, so a flag
     * on the command line replaces it rather than adding to it. */
    g->endpoints_set = false;
    return MOOR_OK;
}
