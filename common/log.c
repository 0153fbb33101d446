/*
 * log.c: one line per event, key=value text or JSON lines, on stderr.
 *
 * A line is formatted in a stack buffer and written with one write() so
 * lines from different threads never interleave.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "common.h"

static atomic_int log_level = MOOR_LOG_INFO;
static atomic_int log_format = MOOR_LOG_TEXT;
static moor_log_sink_fn log_sink;
static void *log_sink_arg;

static const char *const level_names[] = {"debug", "info", "warn", "error",
                                          "fatal"};
static const char *const level_upper[] = {"DEBUG", "INFO", "WARN", "ERROR",
                                          "FATAL"};

void moor_log_set_level(enum moor_log_level level)
{
    atomic_store(&log_level, (int)level);
}

enum moor_log_level moor_log_get_level(void)
{
    return (enum moor_log_level)atomic_load(&log_level);
}

void moor_log_set_format(enum moor_log_format format)
{
    atomic_store(&log_format, (int)format);
}

int moor_log_parse_level(const char *s, enum moor_log_level *out)
{
    for (size_t i = 0; i < MOOR_ARRAY_LEN(level_names); i++) {
        if (strcmp(s, level_names[i]) == 0) {
            *out = (enum moor_log_level)i;
            return MOOR_OK;
        }
    }
    return MOOR_EINVAL;
}

void moor_log_set_sink(moor_log_sink_fn sink, void *arg)
{
    log_sink = sink;
    log_sink_arg = arg;
}

/* Appends s to line[*n..cap) with JSON string escaping. */
static void json_escape(char *line, size_t *n, size_t cap, const char *s)
{
    for (; *s != '\0' && *n + 7 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            line[(*n)++] = '\\';
            line[(*n)++] = (char)c;
        } else if (c < 0x20) {
            *n += (size_t)snprintf(line + *n, cap - *n, "\\u%04x", c);
        } else {
            line[(*n)++] = (char)c;
        }
    }
}

__attribute__((format(printf, 4, 0))) static void log_emit(
    enum moor_log_level level, const char *module, const char *msg,
    const char *fields, va_list ap)
{
    char kv[1024];
    kv[0] = '\0';
    if (fields != NULL) {
        vsnprintf(kv, sizeof(kv), fields, ap);
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char when[96];
    snprintf(when, sizeof(when), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ",
             tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
             tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);

    char line[2048];
    size_t n = 0;
    size_t cap = sizeof(line) - 2;
    if (atomic_load(&log_format) == MOOR_LOG_JSON) {
        n += (size_t)snprintf(line, cap,
                              "{\"ts\":\"%s\",\"level\":\"%s\",\"module\":\"",
                              when, level_names[level]);
        json_escape(line, &n, cap, module);
        n += (size_t)snprintf(line + n, cap - n, "\",\"msg\":\"");
        json_escape(line, &n, cap, msg);
        if (kv[0] != '\0' && n < cap) {
            n += (size_t)snprintf(line + n, cap - n, "\",\"fields\":\"");
            json_escape(line, &n, cap, kv);
        }
        if (n < cap) {
            n += (size_t)snprintf(line + n, cap - n, "\"}");
        }
    } else {
        n += (size_t)snprintf(line, cap, "%s %s %s: %s%s%s", when,
                              level_upper[level], module, msg,
                              kv[0] != '\0' ? " " : "", kv);
    }
    if (n > cap) {
        n = cap;
    }
    line[n++] = '\n';
    line[n] = '\0';
    if (log_sink != NULL) {
        log_sink(level, line, n, log_sink_arg);
        return;
    }
    ssize_t w = write(STDERR_FILENO, line, n);
    (void)w;
}

void moor_log(enum moor_log_level level, const char *module, const char *msg,
              const char *fields, ...)
{
    if ((int)level < atomic_load(&log_level)) {
        return;
    }
    va_list ap;
    va_start(ap, fields);
    log_emit(level, module, msg, fields, ap);
    va_end(ap);
}

void moor_fatal(const char *module, const char *msg, const char *fields, ...)
{
    va_list ap;
    va_start(ap, fields);
    log_emit(MOOR_LOG_FATAL, module, msg, fields, ap);
    va_end(ap);
    abort();
}

void moor__assert_fail(const char *expr, const char *file, int line,
                       const char *func)
{
    moor_fatal("assert", "assertion failed", "expr=\"%s\" at=%s:%d func=%s",
               expr, file, line, func);
}
