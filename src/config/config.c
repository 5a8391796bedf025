/* SPDX-License-Identifier: MIT */
/* The option engine: defaults < config file < environment < command line (see config.h). */
#include "config/config.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/mem.h"

static const cp_config_entry *find(const cp_config_entry *t, const char *name, size_t len)
{
    for (; t->name; t++) {
        if (strlen(t->name) == len && strncmp(t->name, name, len) == 0) {
            return t;
        }
    }
    return NULL;
}

static int unknown(const cp_config_entry *t, const char *name, size_t len, cp_err *err)
{
    cp_buf valid = CP_BUF_INIT;
    for (; t->name; t++) {
        cp_buf_printf(&valid, "%s%s", valid.len ? ", " : "", t->name);
    }
    cp_err_set(err, CP_EINVAL, "unknown option '%.*s' (valid: %s)", (int) len, name,
               valid.len ? valid.p : "none");
    cp_buf_free(&valid);
    return CP_EINVAL;
}

/* Parse a number with an optional unit suffix; `units` maps suffix -> multiplier. */
static int parse_scaled(const char *v, const char *const *sfx, const double *mul, double *out)
{
    char *end;
    errno = 0;
    double d = strtod(v, &end);
    if (end == v || errno || !isfinite(d)) {
        return CP_EINVAL;
    }
    if (!*end) {
        *out = d;
        return CP_OK;
    }
    for (int i = 0; sfx[i]; i++) {
        if (strcasecmp(end, sfx[i]) == 0) {
            *out = d * mul[i];
            return CP_OK;
        }
    }
    return CP_EINVAL;
}

static int set_value(const cp_config_entry *e, void *out, const char *v, cp_err *err)
{
    char *field = (char *) out + e->offset;
    double d = 0;
    switch (e->type) {
    case CP_CFG_BOOL:
        if (!strcmp(v, "true") || !strcmp(v, "1") || !strcmp(v, "yes") || !strcmp(v, "on")) {
            *(int *) field = 1;
        } else if (!strcmp(v, "false") || !strcmp(v, "0") || !strcmp(v, "no") ||
                   !strcmp(v, "off")) {
            *(int *) field = 0;
        } else {
            return cp_err_set(err, CP_EINVAL, "option '%s' expects true or false, got '%s'",
                              e->name, v);
        }
        return CP_OK;
    case CP_CFG_STRING:
        cp_free(*(char **) field);
        *(char **) field = cp_strdup(v);
        return CP_OK;
    case CP_CFG_INT: {
        static const char *const sfx[] = {NULL};
        if (parse_scaled(v, sfx, NULL, &d) < 0 || d != floor(d)) {
            return cp_err_set(err, CP_EINVAL, "option '%s' expects an integer, got '%s'",
                              e->name, v);
        }
        break;
    }
    case CP_CFG_DOUBLE: {
        static const char *const sfx[] = {NULL};
        if (parse_scaled(v, sfx, NULL, &d) < 0) {
            return cp_err_set(err, CP_EINVAL, "option '%s' expects a number, got '%s'", e->name,
                              v);
        }
        break;
    }
    case CP_CFG_SIZE: {
        static const char *const sfx[] = {"b", "k", "kb", "m", "mb", "g", "gb", NULL};
        static const double mul[] = {1, 1024, 1024, 1048576, 1048576, 1073741824.0,
                                     1073741824.0};
        if (parse_scaled(v, sfx, mul, &d) < 0) {
            return cp_err_set(err, CP_EINVAL, "option '%s' expects a size like 64M, got '%s'",
                              e->name, v);
        }
        d = floor(d);
        break;
    }
    case CP_CFG_DURATION: {
        static const char *const sfx[] = {"ms", "s", "m", "h", NULL};
        static const double mul[] = {1, 1000, 60000, 3600000};
        if (parse_scaled(v, sfx, mul, &d) < 0) {
            return cp_err_set(err, CP_EINVAL,
                              "option '%s' expects a duration like 30s or 500ms, got '%s'",
                              e->name, v);
        }
        if (!strpbrk(v, "smhSMH")) {
            d *= 1000; /* a bare number is seconds */
        }
        break;
    }
    case CP_CFG_END:
        return CP_EINVAL;
    }
    if ((e->min != 0 || e->max != 0) && (d < e->min || d > e->max)) {
        return cp_err_set(err, CP_EINVAL, "option '%s' is out of range (%g..%g): %s", e->name,
                          e->min, e->max, v);
    }
    if (e->type == CP_CFG_DOUBLE) {
        *(double *) field = d;
    } else {
        *(int64_t *) field = (int64_t) d;
    }
    return CP_OK;
}

static int load_file(const cp_config_entry *t, void *out, const char *path, cp_err *err)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        return cp_err_set(err, CP_EINVAL, "cannot read config file %s: %s", path,
                          strerror(errno));
    }
    char line[4096];
    int lineno = 0, rc = CP_OK;
    while (rc == CP_OK && fgets(line, sizeof(line), f)) {
        lineno++;
        char *p = line;
        while (isspace((unsigned char) *p)) {
            p++;
        }
        if (!*p || *p == '#') {
            continue;
        }
        char *key = p;
        while (*p && !isspace((unsigned char) *p)) {
            p++;
        }
        size_t klen = (size_t) (p - key);
        while (isspace((unsigned char) *p)) {
            p++;
        }
        char *val = p;
        size_t vlen = strlen(val);
        while (vlen && isspace((unsigned char) val[vlen - 1])) {
            val[--vlen] = 0;
        }
        const cp_config_entry *e = find(t, key, klen);
        if (!e) {
            rc = unknown(t, key, klen, err);
            size_t n = strlen(err ? err->msg : "");
            if (err && n + 40 < sizeof(err->msg)) {
                snprintf(err->msg + n, sizeof(err->msg) - n, " at %s:%d", path, lineno);
            }
            break;
        }
        rc = set_value(e, out, val, err);
    }
    fclose(f);
    return rc;
}

int cp_config_load(const cp_config_entry *table, void *out, int argc, char **argv, char ***rest,
                   cp_err *err)
{
    int rc = CP_OK;
    for (const cp_config_entry *e = table; e->name && rc == CP_OK; e++) {
        if (e->def) {
            rc = set_value(e, out, e->def, err);
        }
    }
    /* The config file named on the command line or in the environment comes first. */
    const char *file = getenv("CHANGEPIPE_CONFIG");
    for (int i = 0; i < argc; i++) {
        if (strncmp(argv[i], "--config=", 9) == 0) {
            file = argv[i] + 9;
        } else if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
            file = argv[i + 1];
        }
    }
    if (rc == CP_OK && file && find(table, "config", 6)) {
        rc = load_file(table, out, file, err);
    }
    for (const cp_config_entry *e = table; e->name && rc == CP_OK; e++) {
        char env[128] = "CHANGEPIPE_";
        size_t n = strlen(env);
        for (const char *p = e->name; *p && n + 1 < sizeof(env); p++) {
            env[n++] = *p == '-' ? '_' : (char) toupper((unsigned char) *p);
        }
        env[n] = 0;
        const char *v = getenv(env);
        if (v && strcmp(e->name, "config") != 0) {
            rc = set_value(e, out, v, err);
        }
    }
    size_t nrest = 0;
    if (rest) {
        *rest = calloc((size_t) argc + 1, sizeof(char *));
    }
    for (int i = 0; i < argc && rc == CP_OK; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--", 2) != 0 || !a[2]) {
            if (!rest) {
                rc = cp_err_set(err, CP_EINVAL, "unexpected argument '%s'", a);
                break;
            }
            (*rest)[nrest++] = argv[i];
            continue;
        }
        a += 2;
        const char *eq = strchr(a, '=');
        size_t klen = eq ? (size_t) (eq - a) : strlen(a);
        const cp_config_entry *e = find(table, a, klen);
        if (!e) {
            rc = unknown(table, a, klen, err);
            break;
        }
        const char *v = eq ? eq + 1 : NULL;
        if (!v) {
            if (e->type == CP_CFG_BOOL && (i + 1 >= argc || strncmp(argv[i + 1], "--", 2) == 0 ||
                                           (strcmp(argv[i + 1], "true") != 0 &&
                                            strcmp(argv[i + 1], "false") != 0))) {
                v = "true";
            } else if (i + 1 < argc) {
                v = argv[++i];
            } else {
                rc = cp_err_set(err, CP_EINVAL, "option '--%s' needs a value", e->name);
                break;
            }
        }
        rc = set_value(e, out, v, err);
    }
    if (rc != CP_OK && rest) {
        free(*rest);
        *rest = NULL;
    }
    return rc;
}

void cp_config_free(const cp_config_entry *table, void *out)
{
    for (const cp_config_entry *e = table; e->name; e++) {
        if (e->type == CP_CFG_STRING) {
            char **field = (char **) ((char *) out + e->offset);
            cp_free(*field);
            *field = NULL;
        }
    }
}

void cp_config_print_help(const cp_config_entry *table, FILE *stream)
{
    static const char *const metavars[] = {"", "", "N", "SIZE", "DURATION", "TEXT", "NUMBER"};
    for (const cp_config_entry *e = table; e->name; e++) {
        char left[64];
        if (e->type == CP_CFG_BOOL) {
            snprintf(left, sizeof(left), "--%s", e->name);
        } else {
            snprintf(left, sizeof(left), "--%s %s", e->name,
                     e->metavar ? e->metavar : metavars[e->type]);
        }
        fprintf(stream, "  %-28s %s", left, e->help);
        if (e->def && !(e->flags & CP_CFG_SECRET)) {
            fprintf(stream, " (default: %s)", e->def);
        }
        fprintf(stream, "\n");
    }
}
