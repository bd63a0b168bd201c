/* gw_config: the gateway's configuration file.
 *
 * Owns the INI file format (parsed with libinih), the declarative table of
 * every key (section, type, default, range, help text), value validation,
 * the resolution of relative paths against the file's directory, and the
 * reading of the per-zone TSIG secret files. Every problem is reported as
 * "FILE:LINE: [section] key: what is wrong"; a missing required key names
 * the section's first line. The loaded configuration is read-only for the
 * rest of the process (both threads read it). */
#ifndef GW_CONFIG_H
#define GW_CONFIG_H

#include <stdio.h>
#include <sys/socket.h>

#define GW_MAX_LISTEN 16
#define GW_DNAME_MAX 254

/* A numeric socket address with its canonical text ("1.2.3.4:53",
 * "[::1]:8443"). */
typedef struct gw_sockaddr {
    struct sockaddr_storage ss;
    socklen_t len;
    char text[64];
} gw_sockaddr_t;

typedef struct gw_listen_list {
    gw_sockaddr_t addr[GW_MAX_LISTEN];
    size_t n;
} gw_listen_list_t;

typedef struct gw_zone_conf {
    char *name;                 /* lowercase, no trailing dot */
    gw_sockaddr_t primary;      /* RFC 2136 primary server */
    char *tsig_key_name;
    char *tsig_algorithm;       /* "hmac-sha256" or "hmac-sha512" */
    char *tsig_secret_file;     /* absolute path */
    char *tsig_secret;          /* base64 text of the secret; wiped when freed */
    int default_ttl;
    int line;                   /* line of the [zone ...] header */
    unsigned set;               /* bit i: zone key i was given in the file */
} gw_zone_conf_t;

typedef struct gw_config {
    char *path;                 /* the file as given */
    char *dir;                  /* absolute directory of the file */
    /* [gateway] */
    gw_listen_list_t listen;
    int clock_skew;
    int log_level;              /* enum gw_log_level */
    int request_timeout;
    /* [tls] */
    char *tls_certificate;
    char *tls_private_key;
    /* [database] */
    char *db_conninfo;
    int db_pool_size;
    /* [keys] */
    char *keys_directory;
    /* [limits] */
    int min_change_interval;
    /* [dyndns2] */
    int dyn_max_hosts;
    int dyn_not_yours;
    /* [firmware] (parsed by gw_policy) */
    char *fw_blocked_models;
    char *fw_minimum_versions;
    /* [zone NAME] */
    gw_zone_conf_t *zones;
    size_t nzones;
    /* where each global key was set (0: default) */
    int lines[32];
} gw_config_t;

/* Problems found while loading: newline-separated lines, NULL when none. */
typedef struct gw_config_msgs {
    char *errors;
    char *warnings;
    int nerrors;
    int nwarnings;
} gw_config_msgs_t;

/* Loads and validates path. Returns GW_OK and *out, or GW_ECONFIG with
 * every problem in msgs->errors. Warnings (msgs->warnings) never fail.
 * Once the file could be read, *out is set even when there were errors
 * (keys with bad or missing values are left NULL/default) so that a caller
 * can report further problems; the caller frees it either way. */
int gw_config_load(const char *path, gw_config_t **out, gw_config_msgs_t *msgs)
    __attribute__((warn_unused_result));
void gw_config_free(gw_config_t *cfg);
void gw_config_msgs_clear(gw_config_msgs_t *msgs);

/* Appends a problem about a global key to msgs, prefixed with the place the
 * key was set ("FILE:LINE: [section] key: "). Used by the checks that run
 * after parsing (key directory, TLS files). */
void gw_config_key_error(const gw_config_t *cfg, gw_config_msgs_t *msgs, const char *section,
                         const char *key, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* The same for a key of a zone section (placed at the section's line). */
void gw_config_zone_error(const gw_config_t *cfg, gw_config_msgs_t *msgs,
                          const gw_zone_conf_t *zone, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* Parses "1.2.3.4:53", "[2001:db8::1]:53" (numeric addresses only). When
 * default_port >= 0 the ":port" part may be left out. Returns 0 or -1. */
int gw_parse_addrport(const char *s, int default_port, gw_sockaddr_t *out);

/* Writes the reference of every key (for --help and the README). */
void gw_config_print_reference(FILE *f);

#endif
