/* gw_log: levelled one-line log on stderr (see gw_log.h). */
#include "gw_log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <jansson.h>

static atomic_int gw_log_min = GW_LOG_INFO;
static atomic_int gw_log_json;

static const char *const gw_log_names[] = {"debug", "info", "warn", "error"};

int gw_log_level_parse(const char *s)
{
    for (int i = 0; i < 4; i++)
        if (strcmp(s, gw_log_names[i]) == 0)
            return i;
    return -1;
}

const char *gw_log_level_name(int level)
{
    return level >= 0 && level < 4 ? gw_log_names[level] : "?";
}

void gw_log_set_level(int level)
{
    atomic_store(&gw_log_min, level);
}

int gw_log_enabled(int level)
{
    return level >= atomic_load(&gw_log_min);
}

void gw_log_set_format(int format)
{
    atomic_store(&gw_log_json, format == 1);
}

static void gw_log_time(char *out, size_t outlen)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(out, outlen, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, outlen - n, ".%03ldZ", ts.tv_nsec / 1000000L);
}

/* Writes obj as one JSON line after adding time and level; frees obj. */
static void gw_log_json_line(int level, json_t *obj)
{
    char t[40];
    if (obj == NULL)
        return;
    gw_log_time(t, sizeof t);
    json_t *line = json_pack("{s:s, s:s}", "time", t, "level", gw_log_level_name(level));
    if (line == NULL || json_object_update(line, obj) != 0) {
        json_decref(line);
        json_decref(obj);
        return;
    }
    json_decref(obj);
    char *s = json_dumps(line, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII);
    json_decref(line);
    if (s == NULL)
        return;
    size_t n = strlen(s);
    s[n] = '\n';  /* json_dumps leaves room for the NUL only: write n + 1 */
    ssize_t w = write(STDERR_FILENO, s, n + 1);
    (void)w;
    free(s);
}

static void gw_vlog(int level, const char *fmt, va_list ap)
{
    if (atomic_load(&gw_log_json)) {
        char msg[2048];
        vsnprintf(msg, sizeof msg, fmt, ap);
        for (char *c = msg; *c; c++)
            if ((unsigned char)*c < 0x20 || (unsigned char)*c >= 0x7f)
                *c = '?';
        json_t *o = json_object();
        json_t *m = json_stringn_nocheck(msg, strlen(msg));
        if (o != NULL && m != NULL && json_object_set_new(o, "msg", m) == 0)
            gw_log_json_line(level, o);
        else
            json_decref(o);
        return;
    }

    char line[2048];
    struct timespec ts;
    struct tm tm;
    size_t n;
    int k;

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    n = strftime(line, sizeof line, "%Y-%m-%dT%H:%M:%S", &tm);
    k = snprintf(line + n, sizeof line - n, ".%03ldZ %-5s ", ts.tv_nsec / 1000000L,
                 gw_log_level_name(level));
    if (k > 0)
        n += (size_t)k;
    size_t start = n;
    k = vsnprintf(line + n, sizeof line - n - 1, fmt, ap);
    if (k < 0)
        k = 0;
    n += (size_t)k < sizeof line - n - 1 ? (size_t)k : sizeof line - n - 2;
    for (size_t i = start; i < n; i++) {
        unsigned char c = (unsigned char)line[i];
        if (c == '\t')
            line[i] = ' ';
        else if (c < 0x20 || c == 0x7f)
            line[i] = '?';
    }
    line[n++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, n);
    (void)w;
}

void gw_log(int level, const char *fmt, ...)
{
    va_list ap;
    if (!gw_log_enabled(level))
        return;
    va_start(ap, fmt);
    gw_vlog(level, fmt, ap);
    va_end(ap);
}

static void gw_log_libevent_cb(int severity, const char *msg)
{
    int level = severity == EVENT_LOG_DEBUG ? GW_LOG_DEBUG
              : severity == EVENT_LOG_MSG ? GW_LOG_INFO
              : severity == EVENT_LOG_WARN ? GW_LOG_WARN : GW_LOG_ERROR;
    gw_log(level, "libevent: %s", msg);
}

void gw_log_hook_libevent(void)
{
    event_set_log_callback(gw_log_libevent_cb);
}

void gw_log_request(const gw_log_request_t *r)
{
    if (!gw_log_enabled(GW_LOG_INFO))
        return;
    if (!atomic_load(&gw_log_json)) {
        gw_log(GW_LOG_INFO, "req=%llu peer=%s method=%s path=%s status=%d result=%s device=%s "
               "ms=%.1f worker=%d%s%s", r->id, r->peer, r->method, r->path, r->status,
               r->result, r->device, r->ms, r->worker, r->delivery ? " " : "", r->delivery ? r->delivery : "");
        return;
    }
    json_t *o = json_pack("{s:s, s:I, s:s, s:s, s:s, s:i, s:s, s:s, s:f}", "event", "request",
                          "req", (json_int_t)r->id, "peer", r->peer, "method", r->method,
                          "path", r->path, "status", r->status, "result", r->result,
                          "device", r->device, "ms", (double)(long long)(r->ms * 10) / 10);
    if (o != NULL)
        json_object_set_new(o, "worker", json_integer(r->worker));
    if (o != NULL && r->delivery != NULL)
        json_object_set_new(o, "delivery", json_string(r->delivery));
    gw_log_json_line(GW_LOG_INFO, o);
}
