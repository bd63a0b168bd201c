/* ctl_http: ddnsctl's client of the admin API.
 *
 * Owns the connection settings (URL and token from the command line, the
 * environment DDNSCTL_URL / DDNSCTL_TOKEN, or the configuration file read
 * with inih), the HTTP exchange with libcurl (JSON bodies, the bearer
 * token, timeouts), and the decoding of answers into jansson values. The
 * token is never printed, not even in error messages. */
#ifndef CTL_HTTP_H
#define CTL_HTTP_H

#include <stddef.h>

#include <jansson.h>

#define CTL_EXIT_OK 0
#define CTL_EXIT_REFUSED 1      /* the API answered with an error */
#define CTL_EXIT_USAGE 2
#define CTL_EXIT_CONNECT 3      /* no answer (connection, timeout, not JSON) */

typedef struct ctl_conf {
    char url[512];              /* without a trailing '/' */
    char token[256];
    char config_path[512];      /* the file read, "" when none */
    long timeout_s;
} ctl_conf_t;

/* Fills conf: the file (path, or $DDNSCTL_CONFIG, or
 * $XDG_CONFIG_HOME/ddnsctl.conf, or ~/.config/ddnsctl.conf, or
 * /etc/ddns/ddnsctl.conf; a missing default file is no error), then the
 * environment, then url and token when not NULL. Returns 0, or -1 with the
 * reason in err (a named file that cannot be read, a bad line). */
int ctl_conf_load(ctl_conf_t *conf, const char *path, const char *url, const char *token,
                  char *err, size_t errlen);

/* One request: method ("GET", ...), path ("/api/v1/..." with its query),
 * body (NULL: none). Returns the HTTP status (and *out the decoded JSON
 * answer, which the caller frees), or -1 with the reason in err when there
 * was no usable answer. */
int ctl_http_call(const ctl_conf_t *conf, const char *method, const char *path,
                  const json_t *body, json_t **out, char *err, size_t errlen);

/* Percent-encodes s for a path segment or query value into out. */
void ctl_http_escape(const char *s, char *out, size_t outlen);

#endif
