/* gw_console: the web console's static files on the admin listener.
 *
 * Owns GET and HEAD of /console and /console/...: the mapping of a request
 * target to a file under [admin] console_dir, the content type by file
 * extension, the validators (ETag from inode, size and modification time;
 * a matching If-None-Match is answered 304), and the headers every console
 * answer carries (Cache-Control: no-cache, a strict Content-Security-Policy
 * that allows nothing but the console's own scripts, styles and API calls,
 * nosniff, no framing, no referrer).
 *
 * Only names of letters, digits, '-', '_' and '.' are served, no segment
 * may start with '.', '%' is never decoded and the last component is opened
 * without following a symbolic link: nothing outside the directory is
 * reachable. An unknown extension, a missing file or anything but a regular
 * file (or one over 1 MiB) is 404 "notfound"; another method is 405 with Allow. The files are
 * read on the admin listener's loop (the main thread); they are small.
 * The console itself talks to the admin API (/api/v1/...) with the token
 * the operator types in; this module knows nothing of tokens. */
#ifndef GW_CONSOLE_H
#define GW_CONSOLE_H

#include <stddef.h>

struct evhttp_request;

#define GW_CONSOLE_PREFIX "/console"
#define GW_CONSOLE_REL_MAX 256

/* 1 when the target's path (its first pathlen bytes, up to '?') is the
 * console's: "/console" or "/console/..."; else 0. */
int gw_console_path(const char *path, size_t pathlen);

/* Maps a console path (pathlen bytes, "/console/..." ) to the file name
 * relative to the console directory (rel, NUL-terminated; "index.html" for
 * "/console/") and its content type. Returns GW_OK, or GW_EINVAL when the
 * name is not one the console serves (bad characters, a segment starting
 * with '.', empty segments, too long, unknown extension). Pure function. */
int gw_console_map(const char *path, size_t pathlen, char *rel, size_t rellen,
                   const char **ctype) __attribute__((warn_unused_result));

/* Answers one request whose path gw_console_path() accepted, from the files
 * under dir. */
void gw_console_serve(const char *dir, struct evhttp_request *req);

#endif
