/* gw_log: levelled one-line log on stderr (see gw_log.h). */
#include "gw_log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

static atomic_int gw_log_min = GW_LOG_INFO;

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

static void gw_vlog(int level, const char *fmt, va_list ap)
{
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
