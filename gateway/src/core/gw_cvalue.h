/* gw_cvalue: the value types of the configuration file.
 *
 * Owns what each type of value looks like and how its text becomes the
 * value: whole numbers in a range, paths (relative to the configuration
 * file's folder, or under $CREDENTIALS_DIRECTORY), lists of addr:port,
 * lists of networks, domain names, yes/no, log levels and formats, TSIG
 * algorithms, and TSIG secret files (one line of base64, read with
 * open/read, the buffer wiped, the content never repeated in a message).
 * Each parser returns NULL on success or what is wrong with the value, in
 * a buffer of the calling thread that the next call overwrites. Which key
 * has which type is gw_config's table. */
#ifndef GW_CVALUE_H
#define GW_CVALUE_H

#include "gw_addr.h"

const char *gw_cvalue_int(const char *v, long min, long max, int *out);
/* A string value; "" is refused. *out is newly allocated. */
const char *gw_cvalue_string(const char *v, char **out);
/* dir: the configuration file's folder. *out is newly allocated. */
const char *gw_cvalue_path(const char *dir, const char *v, char **out);
/* optional: an empty value is an empty list. */
const char *gw_cvalue_listen(const char *v, int optional, gw_listen_list_t *l);
const char *gw_cvalue_cidrs(const char *v, gw_cidr_list_t *l);
/* One addr[:port], port defport when absent. */
const char *gw_cvalue_addrport(const char *v, int defport, gw_sockaddr_t *out);
/* Labels of [A-Za-z0-9_-], 1 to 63 characters, at most 253 in all, one
 * optional trailing dot (removed). host: fold to lowercase and refuse '_'
 * and labels starting or ending with '-'. *out is newly allocated. */
const char *gw_cvalue_dname(const char *v, int host, char **out);
const char *gw_cvalue_bool(const char *v, int *out);
/* debug, info, warn, error: the gw_log level. */
const char *gw_cvalue_level(const char *v, int *out);
/* text or json: GW_LOGFMT_TEXT or GW_LOGFMT_JSON. */
const char *gw_cvalue_logfmt(const char *v, int *out);
/* hmac-sha256 or hmac-sha512. *out is newly allocated. */
const char *gw_cvalue_tsigalg(const char *v, char **out);
/* Reads the one-line base64 secret of the file at path into *out (newly
 * allocated). A file that group or others may access is refused, as a
 * master key file is (cmn_secret_file_read), with its mode in the reason. */
const char *gw_cvalue_secret_file(const char *path, char **out);

#endif
