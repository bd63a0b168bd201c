/* gw_console: the web console's static files (see gw_console.h). */
#include "gw_console.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "gw_err.h"
#include "gw_reply.h"
#include "gw_log.h"

#define GW_CONSOLE_SEGMENTS_MAX 4
#define GW_CONSOLE_SEGMENT_MAX 64
#define GW_CONSOLE_FILE_MAX (1024 * 1024)   /* larger files are not served */

/* The pages load nothing but their own scripts and styles, call nothing but
 * this listener, draw their charts as inline SVG elements (no style
 * attributes), and never submit a form the classic way (a token must not
 * end up in a URL). */
#define GW_CONSOLE_CSP \
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " \
    "connect-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'none'; " \
    "frame-ancestors 'none'"

static const struct {
    const char *ext;
    const char *ctype;
} gw_console_types[] = {
    {"html", "text/html; charset=utf-8"},
    {"css", "text/css; charset=utf-8"},
    {"js", "text/javascript; charset=utf-8"},
    {"mjs", "text/javascript; charset=utf-8"},
    {"svg", "image/svg+xml"},
    {"png", "image/png"},
    {"ico", "image/x-icon"},
    {"json", "application/json"},
    {"webmanifest", "application/manifest+json"},
    {"txt", "text/plain; charset=utf-8"},
};

int gw_console_path(const char *path, size_t pathlen)
{
    size_t pl = sizeof GW_CONSOLE_PREFIX - 1;
    return pathlen >= pl && strncmp(path, GW_CONSOLE_PREFIX, pl) == 0 &&
           (pathlen == pl || path[pl] == '/');
}

static int gw_console_namechar(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '_' || c == '.';
}

int gw_console_map(const char *path, size_t pathlen, char *rel, size_t rellen,
                   const char **ctype)
{
    size_t pl = sizeof GW_CONSOLE_PREFIX "/" - 1;
    if (!gw_console_path(path, pathlen) || pathlen < pl || rellen == 0)
        return GW_EINVAL;
    const char *p = path + pl;
    size_t n = pathlen - pl;
    if (n == 0) {
        p = "index.html";
        n = strlen(p);
    }
    if (n >= rellen || n >= GW_CONSOLE_REL_MAX)
        return GW_EINVAL;
    /* segments: 1..64 name characters, not starting with '.' */
    size_t segs = 0, seglen = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i == n || p[i] == '/') {
            if (seglen == 0 || ++segs > GW_CONSOLE_SEGMENTS_MAX)
                return GW_EINVAL;
            seglen = 0;
            continue;
        }
        if (!gw_console_namechar(p[i]) || (seglen == 0 && p[i] == '.') ||
            ++seglen > GW_CONSOLE_SEGMENT_MAX)
            return GW_EINVAL;
    }
    const char *dot = NULL;
    for (size_t i = n; i > 0 && p[i - 1] != '/'; i--)
        if (p[i - 1] == '.') {
            dot = p + i;
            break;
        }
    if (dot == NULL)
        return GW_EINVAL;
    size_t extlen = (size_t)(p + n - dot);
    for (size_t t = 0; t < sizeof gw_console_types / sizeof gw_console_types[0]; t++)
        if (strlen(gw_console_types[t].ext) == extlen &&
            strncasecmp(dot, gw_console_types[t].ext, extlen) == 0) {
            memcpy(rel, p, n);
            rel[n] = '\0';
            *ctype = gw_console_types[t].ctype;
            return GW_OK;
        }
    return GW_EINVAL;
}

static void gw_console_headers(struct evhttp_request *req)
{
    struct evkeyvalq *oh = evhttp_request_get_output_headers(req);
    evhttp_add_header(oh, "Content-Security-Policy", GW_CONSOLE_CSP);
    evhttp_add_header(oh, "X-Content-Type-Options", "nosniff");
    evhttp_add_header(oh, "X-Frame-Options", "DENY");
    evhttp_add_header(oh, "Referrer-Policy", "no-referrer");
    evhttp_add_header(oh, "Cross-Origin-Opener-Policy", "same-origin");
    evhttp_add_header(oh, "Cross-Origin-Resource-Policy", "same-origin");
}

static void gw_console_text(struct evhttp_request *req, int status, const char *line)
{
    gw_console_headers(req);
    gw_reply_printf(req, status, NULL, "%s\n", line);
}

/* 1 when the If-None-Match header lists etag (or is "*"). */
static int gw_console_etag_matches(const char *inm, const char *etag)
{
    size_t el = strlen(etag);
    const char *p = inm;
    while (*p != '\0') {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        if (*p == '*')
            return 1;
        if (strncmp(p, "W/", 2) == 0)
            p += 2;
        size_t len = strcspn(p, ",");
        while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t'))
            len--;
        if (len == el && strncmp(p, etag, el) == 0)
            return 1;
        p += strcspn(p, ",");
    }
    return 0;
}

void gw_console_serve(const char *dir, struct evhttp_request *req)
{
    const char *uri = evhttp_request_get_uri(req);
    size_t pl = strcspn(uri, "?");
    enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
    struct evkeyvalq *oh = evhttp_request_get_output_headers(req);
    char rel[GW_CONSOLE_REL_MAX], file[4096 + GW_CONSOLE_REL_MAX + 2], etag[96], len[32];
    const char *ctype = NULL, *inm;
    struct evbuffer *b = NULL;
    struct stat st;
    ev_off_t got = 0;
    int fd = -1, fl;

    if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD) {
        evhttp_add_header(oh, "Allow", "GET, HEAD");
        gw_console_text(req, 405, "badrequest method");
        goto out;
    }
    if (pl == sizeof GW_CONSOLE_PREFIX - 1) {
        evhttp_add_header(oh, "Location", GW_CONSOLE_PREFIX "/");
        gw_console_text(req, 301, "moved " GW_CONSOLE_PREFIX "/");
        goto out;
    }
    if (dir == NULL || gw_console_map(uri, pl, rel, sizeof rel, &ctype) != GW_OK)
        goto notfound;
    fl = snprintf(file, sizeof file, "%s/%s", dir, rel);
    if (fl < 0 || (size_t)fl >= sizeof file)
        goto notfound;
    fd = open(file, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        if (errno != ENOENT && errno != ENOTDIR && errno != ELOOP)
            gw_warn("console: cannot open %s: %s", file, strerror(errno));
        goto notfound;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > GW_CONSOLE_FILE_MAX)
        goto notfound;
    snprintf(etag, sizeof etag, "\"%llx-%llx-%llx.%09ld\"", (unsigned long long)st.st_ino,
             (unsigned long long)st.st_size, (unsigned long long)st.st_mtim.tv_sec,
             st.st_mtim.tv_nsec);
    evhttp_add_header(oh, "Content-Type", ctype);
    evhttp_add_header(oh, "Cache-Control", "no-cache");
    evhttp_add_header(oh, "ETag", etag);
    gw_console_headers(req);
    inm = evhttp_find_header(evhttp_request_get_input_headers(req), "If-None-Match");
    if (inm != NULL && gw_console_etag_matches(inm, etag)) {
        evhttp_send_reply(req, 304, "Not Modified", NULL);
        goto out;
    }
    if (cmd == EVHTTP_REQ_HEAD) {
        /* libevent sends neither body nor length for HEAD: give the length */
        snprintf(len, sizeof len, "%lld", (long long)st.st_size);
        evhttp_add_header(oh, "Content-Length", len);
        evhttp_send_reply(req, 200, "OK", NULL);
        goto out;
    }
    b = evbuffer_new();
    while (b != NULL && got < st.st_size) {
        int r = evbuffer_read(b, fd, (int)(st.st_size - got));
        if (r <= 0)
            break;
        got += r;
    }
    if (b == NULL || got != st.st_size) {
        gw_warn("console: cannot read %s", file);
        evhttp_send_error(req, 503, NULL);
        goto out;
    }
    evhttp_send_reply(req, 200, "OK", b);
    goto out;
notfound:
    gw_console_text(req, 404, "notfound");
out:
    if (fd >= 0)
        close(fd);
    if (b != NULL)
        evbuffer_free(b);
}
