/* gw_config: the gateway's configuration file.
 *
 * Owns the INI file format (parsed with libinih), the declarative table of
 * every key (section, type, default, range, what a SIGHUP does with it,
 * help text), value validation (addresses and networks through gw_addr),
 * the resolution of relative paths against the file's directory, and the
 * reading of the per-zone TSIG secret files. Every problem is reported as
 * "FILE:LINE: [section] key: what is wrong"; a missing required key names
 * the section's first line. The loaded configuration is read-only for the
 * rest of the process (both threads read it). */
#ifndef GW_CONFIG_H
#define GW_CONFIG_H

#include <stdio.h>

#include "gw_addr.h"

#define GW_DNAME_MAX 254

/* [limits]: every bound on what a client may send or hold. */
typedef struct gw_limits {
    int max_header_size;
    int max_body_size;
    int max_uri_length;
    int max_query_params;
    int header_timeout;
    int max_connections;
    int max_connections_per_source;
    int auth_fail_limit;
    int auth_fail_window;
    int auth_block_time;
    int blocked_delay;          /* ms */
    int device_rate;
    int device_burst;
    int device_memory;
} gw_limits_t;

/* [admin]: the operations listener's own bounds and the admin API's. */
typedef struct gw_admin_limits {
    int max_connections;
    int max_connections_per_source;
    int header_timeout;
    int auth_fail_limit;
    int auth_fail_window;
    int auth_block_time;
    int statement_timeout;      /* seconds */
} gw_admin_limits_t;

enum gw_log_format {
    GW_LOGFMT_TEXT = 0,
    GW_LOGFMT_JSON = 1,
};

typedef struct gw_zone_conf {
    char *name;                 /* lowercase, no trailing dot */
    gw_sockaddr_t primary;      /* RFC 2136 primary server */
    char *tsig_key_name;
    char *tsig_algorithm;       /* "hmac-sha256" or "hmac-sha512" */
    char *tsig_secret_file;     /* absolute path */
    char *tsig_secret;          /* base64 text of the secret; wiped when freed */
    int default_ttl;
    gw_cidr_list_t allow_addresses; /* lifts gw_addrpol's refusal for these */
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
    int workers;                /* 0: one per online CPU */
    char *user;                 /* "" or NULL: stay who started it */
    int log_format;             /* enum gw_log_format */
    /* [tls] */
    char *tls_certificate;
    char *tls_private_key;
    char *tls_certificate2;     /* optional second certificate (other key type) */
    char *tls_private_key2;
    char *tls_ocsp_response;    /* optional DER OCSP responses to staple */
    char *tls_ocsp_response2;
    /* [database] */
    char *db_conninfo;
    char *db_publisher_conninfo;    /* "" or NULL: db_conninfo */
    int db_pool_size;
    int db_batch_size;          /* most device requests per statement */
    int db_seen_interval;       /* seconds between writes of last seen (gw_seen) */
    int db_quiet_cache;         /* devices whose quiet answer is kept (gw_quiet); 0: none */
    int secrets_elsewhere;      /* loaded without the TSIG secrets */
    /* [keys] */
    char *keys_directory;
    int keys_process;           /* a key process of its own holds them */
    char *keys_pkcs11;          /* a token's URI instead of keys_directory */
    /* [limits] */
    int min_change_interval;
    /* [dyndns2] */
    int dyn_max_hosts;
    int dyn_not_yours;
    /* [firmware] (parsed by gw_policy) */
    char *fw_blocked_models;
    char *fw_minimum_versions;
    char *fw_signed_only_models;
    char *fw_address_required_models;
    gw_limits_t limits;
    /* [proxy] */
    gw_listen_list_t proxy_listeners;   /* members of listen that expect PROXY */
    gw_cidr_list_t proxy_trusted;
    /* [admin] */
    gw_listen_list_t admin_listen;      /* n == 0: no admin listener */
    char *admin_console_dir;            /* the web console's files (gw_console) */
    gw_admin_limits_t admin_limits;
    char *admin_client_address_header;  /* "" or NULL: none */
    gw_cidr_list_t admin_trusted_proxies;
    char *admin_reserved_labels;        /* cmn_label patterns the admin API refuses */
    /* [zone NAME] */
    gw_zone_conf_t *zones;
    size_t nzones;
    /* where each global key was set (0: default) */
    int lines[80];
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
/* Only the paths of the zones' TSIG secret files, not their content: the
 * publisher process reads them (tsig_secret stays NULL). */
#define GW_CONFIG_SECRETS_ELSEWHERE 1u
int gw_config_load_flags(const char *path, gw_config_t **out, gw_config_msgs_t *msgs,
                         unsigned flags) __attribute__((warn_unused_result));
void gw_config_free(gw_config_t *cfg);
void gw_config_msgs_clear(gw_config_msgs_t *msgs);

/* Appends a problem about a global key to msgs, prefixed with the place the
 * key was set ("FILE:LINE: [section] key: "). Used by the checks that run
 * after parsing (key directory, TLS files). */
void gw_config_key_error(const gw_config_t *cfg, gw_config_msgs_t *msgs, const char *section,
                         const char *key, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* Appends a problem as it is (a line another process reported). */
void gw_config_error(gw_config_msgs_t *msgs, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* The same for a key of a zone section (placed at the section's line). */
void gw_config_zone_error(const gw_config_t *cfg, gw_config_msgs_t *msgs,
                          const gw_zone_conf_t *zone, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* 1 when listener l (an entry of cfg->listen) is one of proxy_listeners. */
int gw_config_is_proxy_listener(const gw_config_t *cfg, const gw_sockaddr_t *l);

/* The publisher's connection string: publisher_conninfo, or conninfo when
 * that is empty. */
const char *gw_config_publisher_conninfo(const gw_config_t *cfg);

/* Writes the reference of every key (for --help and the README). */
void gw_config_print_reference(FILE *f);

/* SIGHUP. The reference marks every key: a SIGHUP applies it, or it needs
 * a restart. gw_config_restart_keys names, into out (", " between them),
 * the keys of the second kind whose value differs between the running
 * configuration cur and the new one nc, and "[zone] sections" when nc does
 * not have the same zones in the same order; returns their count. */
size_t gw_config_restart_keys(const gw_config_t *cur, const gw_config_t *nc, char *out,
                              size_t outlen);
/* 1 when nc has the zones of cur, in the same order (their keys may
 * differ). */
int gw_config_same_zones(const gw_config_t *cur, const gw_config_t *nc);
/* Moves the value of every key a SIGHUP applies from nc into cur (nc gets
 * the old value, freed with it), the zones' keys too when the zones are
 * the same. Call while no other thread reads cur (the publisher has its own
 * copy of the zones: gw_publish_set_zones). */
void gw_config_apply_reload(gw_config_t *cur, gw_config_t *nc);

/* A deep copy of a zone's settings (the TSIG secret included); GW_OK or
 * GW_ENOMEM. gw_zone_conf_clear frees one and wipes its secret. */
int gw_zone_conf_copy(gw_zone_conf_t *dst, const gw_zone_conf_t *src);
void gw_zone_conf_clear(gw_zone_conf_t *z);

#endif
