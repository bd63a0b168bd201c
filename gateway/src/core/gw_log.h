/* gw_log: the gateway's log.
 *
 * Owns the log level and the line format. Every event is one line on
 * stderr: "<UTC time> <level> <message>", or with log_format = json one
 * JSON object {"time", "level", "msg"} (requests: {"time", "level",
 * "event":"request", "req", "peer", "method", "path", "status", "result",
 * "device", "ms", "worker"[, "delivery"]}) made with jansson. Lines are written with a single
 * write(2) each, so the worker threads and the publisher thread never
 * interleave within a line. Control characters in a message are replaced
 * by '?'. Callers must never pass a secret, a signature or an Authorization
 * header to these functions. */
#ifndef GW_LOG_H
#define GW_LOG_H

enum gw_log_level {
    GW_LOG_DEBUG = 0,
    GW_LOG_INFO = 1,
    GW_LOG_WARN = 2,
    GW_LOG_ERROR = 3,
};

/* Parses "debug", "info", "warn" or "error"; returns the level or -1. */
int gw_log_level_parse(const char *s);
const char *gw_log_level_name(int level);

void gw_log_set_level(int level);
/* enum gw_log_format of gw_config.h: 0 text, 1 JSON. */
void gw_log_set_format(int format);

/* The one line of an answered request. */
typedef struct gw_log_request {
    unsigned long long id;
    const char *peer, *method, *path, *result, *device;
    int status;
    double ms;
    int worker;                 /* worker thread number, -1: none */
    const char *delivery;       /* NULL, "abandoned" or "client-gone" */
} gw_log_request_t;
void gw_log_request(const gw_log_request_t *r);
int gw_log_enabled(int level);

void gw_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define gw_debug(...) gw_log(GW_LOG_DEBUG, __VA_ARGS__)
#define gw_info(...) gw_log(GW_LOG_INFO, __VA_ARGS__)
#define gw_warn(...) gw_log(GW_LOG_WARN, __VA_ARGS__)
#define gw_error(...) gw_log(GW_LOG_ERROR, __VA_ARGS__)

/* Routes libevent's internal warnings into this log. */
void gw_log_hook_libevent(void);

#endif
