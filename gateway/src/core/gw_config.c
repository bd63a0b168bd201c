/* gw_config: configuration file (see gw_config.h). */
#include "gw_config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ini.h>

#include "cmn_key.h"
#include "cmn_label.h"
#include "gw_cvalue.h"
#include "gw_err.h"
#include "gw_log.h"

/* Where `make install` puts the web console's files (set by the Makefile
 * from PREFIX). */
#ifndef GW_CONSOLE_DIR_DEFAULT
#define GW_CONSOLE_DIR_DEFAULT "/usr/local/share/ddns/console"
#endif

/* Longest line libinih reads in one piece (its INI_MAX_LINE, minus the
 * line end). */
#define GW_CONF_LINE_MAX 198

enum gw_ctype {
    GW_CT_INT,          /* decimal integer within [min, max] */
    GW_CT_STRING,       /* free text */
    GW_CT_PATH,         /* file or directory; relative to the config file */
    GW_CT_LISTEN,       /* comma-separated list of addr:port */
    GW_CT_LEVEL,        /* log level name */
    GW_CT_ADDRPORT,     /* one addr[:port], port 53 by default */
    GW_CT_DNAME,        /* domain name */
    GW_CT_TSIGALG,      /* TSIG algorithm name */
    GW_CT_SECRETFILE,   /* file holding one line of base64 */
    GW_CT_BOOL,         /* yes/no, true/false, on/off, 1/0 */
    GW_CT_LIST,         /* free text, may be empty (checked by its user) */
    GW_CT_CIDRS,        /* comma-separated list of addr[/prefix] */
    GW_CT_LOGFMT,       /* text or json */
};

/* Sections with fixed names come first (GW_SEC_GATEWAY up to
 * GW_SEC_LAST_NAMED), then [zone NAME]. */
enum gw_section {
    GW_SEC_NONE,
    GW_SEC_GATEWAY,
    GW_SEC_TLS,
    GW_SEC_DATABASE,
    GW_SEC_KEYS,
    GW_SEC_LIMITS,
    GW_SEC_DYNDNS2,
    GW_SEC_FIRMWARE,
    GW_SEC_PROXY,
    GW_SEC_ADMIN,
    GW_SEC_ZONE,
    GW_SEC_UNKNOWN,
};
#define GW_SEC_LAST_NAMED (GW_SEC_ZONE - 1)

static const char *const gw_section_names[] = {
    [GW_SEC_NONE] = "",
    [GW_SEC_GATEWAY] = "gateway",
    [GW_SEC_TLS] = "tls",
    [GW_SEC_DATABASE] = "database",
    [GW_SEC_KEYS] = "keys",
    [GW_SEC_LIMITS] = "limits",
    [GW_SEC_PROXY] = "proxy",
    [GW_SEC_ADMIN] = "admin",
    [GW_SEC_DYNDNS2] = "dyndns2",
    [GW_SEC_FIRMWARE] = "firmware",
    [GW_SEC_ZONE] = "zone",
    [GW_SEC_UNKNOWN] = "?",
};

/* What a SIGHUP does with a key whose value changed (PgBouncer marks its
 * parameters the same way): GW_RL_APPLY takes the new value at once
 * (gw_config_apply_reload; the zones' keys through the publisher),
 * GW_RL_RESTART keeps the running one and names the key in a warning
 * (gw_config_restart_keys). */
enum gw_reload { GW_RL_APPLY, GW_RL_RESTART };

struct gw_param {
    enum gw_section section;
    const char *key;
    enum gw_ctype type;
    const char *def;    /* default value as text; NULL: required; "": optional, unset */
    long min, max;
    size_t offset;      /* into gw_config_t, or gw_zone_conf_t for GW_SEC_ZONE */
    enum gw_reload reload;
    const char *help;
};

#define GOFF(f) offsetof(gw_config_t, f)
#define ZOFF(f) offsetof(gw_zone_conf_t, f)

/* The configuration reference: one row per key. */
static const struct gw_param gw_params[] = {
    {GW_SEC_GATEWAY, "listen", GW_CT_LISTEN, NULL, 0, 0, GOFF(listen), GW_RL_RESTART,
     "HTTPS listeners: one or more addr:port separated by commas, IPv6 in brackets "
     "(\"127.0.0.1:8443, [::1]:8443\"). Port 0 picks a free port; the log line "
     "\"listening on ADDR:PORT\" shows the one chosen."},
    {GW_SEC_GATEWAY, "user", GW_CT_STRING, "", 0, 0, GOFF(user), GW_RL_RESTART,
     "When started as root: the user whose identity (and primary group, no "
     "supplementary groups) the gateway takes once its listeners are bound and "
     "before a worker thread runs; the key and publisher processes keep root's "
     "to read the key directory and the TSIG secret files. Empty: started as "
     "root, it stays root (a warning says so). Files read on SIGHUP (TLS) must "
     "then be readable by this user."},
    {GW_SEC_GATEWAY, "workers", GW_CT_INT, "0", 0, 64, GOFF(workers), GW_RL_RESTART,
     "Worker threads serving the HTTPS listeners, 1 to 64; 0: one per online CPU (at "
     "most 64). Each has its own event loop, its own sockets on every listener "
     "(SO_REUSEPORT: the kernel spreads new connections) and its own database pool of "
     "pool_size connections."},
    {GW_SEC_GATEWAY, "clock_skew", GW_CT_INT, "300", 1, 86400, GOFF(clock_skew), GW_RL_APPLY,
     "Accepted difference in seconds between a request's ts and the gateway clock."},
    {GW_SEC_GATEWAY, "log_level", GW_CT_LEVEL, "info", 0, 0, GOFF(log_level), GW_RL_APPLY,
     "debug, info, warn or error."},
    {GW_SEC_GATEWAY, "request_timeout", GW_CT_INT, "10", 1, 300, GOFF(request_timeout), GW_RL_APPLY,
     "Read and write inactivity timeout of a connection (also how long a kept-alive "
     "connection may stay idle), and the longest time an update waits for the "
     "database before answering 911. See [limits] header_timeout for slow senders."},
    {GW_SEC_GATEWAY, "log_format", GW_CT_LOGFMT, "text", 0, 0, GOFF(log_format), GW_RL_APPLY,
     "text (one line: time, level, message) or json (one JSON object per line, "
     "with the request fields as members)."},
    {GW_SEC_TLS, "certificate", GW_CT_PATH, NULL, 0, 0, GOFF(tls_certificate), GW_RL_APPLY,
     "PEM file with the server certificate followed by its chain."},
    {GW_SEC_TLS, "private_key", GW_CT_PATH, NULL, 0, 0, GOFF(tls_private_key), GW_RL_APPLY,
     "PEM file with the certificate's private key (unencrypted)."},
    {GW_SEC_TLS, "certificate2", GW_CT_PATH, "", 0, 0, GOFF(tls_certificate2), GW_RL_APPLY,
     "Optional second certificate with a key of another type (RSA beside ECDSA, "
     "or the reverse); each client gets the one it supports. Needs private_key2."},
    {GW_SEC_TLS, "private_key2", GW_CT_PATH, "", 0, 0, GOFF(tls_private_key2), GW_RL_APPLY,
     "Private key of certificate2."},
    {GW_SEC_TLS, "ocsp_response", GW_CT_PATH, "", 0, 0, GOFF(tls_ocsp_response), GW_RL_APPLY,
     "Optional DER OCSP response for certificate, stapled to handshakes that ask for "
     "it (fetch it with `openssl ocsp ... -respout FILE` before it expires, then "
     "SIGHUP). It must be a successful response with status good for this "
     "certificate that has not expired; once its nextUpdate passes nothing is "
     "stapled until a reload brings a fresh one."},
    {GW_SEC_TLS, "ocsp_response2", GW_CT_PATH, "", 0, 0, GOFF(tls_ocsp_response2), GW_RL_APPLY,
     "The same for certificate2."},
    {GW_SEC_DATABASE, "conninfo", GW_CT_STRING, NULL, 0, 0, GOFF(db_conninfo), GW_RL_RESTART,
     "libpq connection string or URI. Use hostaddr= (or a socket directory) so that "
     "connecting never waits for a name lookup."},
    {GW_SEC_DATABASE, "publisher_conninfo", GW_CT_STRING, "", 0, 0, GOFF(db_publisher_conninfo),
     GW_RL_RESTART,
     "Connection of the DNS publisher, when it must differ from conninfo: the "
     "publisher LISTENs for the outbox notification, which needs a session of its "
     "own, so behind a pooler in transaction mode (PgBouncer) point this at "
     "PostgreSQL directly. Empty: conninfo."},
    {GW_SEC_DATABASE, "pool_size", GW_CT_INT, "4", 1, 256, GOFF(db_pool_size), GW_RL_RESTART,
     "Connections used by the update endpoint (the DNS publisher has one more)."},
    {GW_SEC_DATABASE, "batch_size", GW_CT_INT, "64", 1, 1000, GOFF(db_batch_size), GW_RL_APPLY,
     "Most device requests sent to the database in one statement and one "
     "transaction. Requests are batched only while every connection of the pool "
     "is busy, so a lightly loaded gateway sends each alone; under load a batch "
     "pays for one round trip, one parse and one commit. 1: never batch."},
    {GW_SEC_DATABASE, "seen_interval", GW_CT_INT, "60", 1, 3600, GOFF(db_seen_interval),
     GW_RL_RESTART,
     "Seconds between two writes of the \"last seen\" time and source of devices whose "
     "polls changed nothing. Such a poll is answered without a database write; the "
     "gateway keeps the latest per device in memory and writes them in sorted batches "
     "this often (and when it stops), so a device's row is written at most once per "
     "interval however often it polls. \"last seen\" in the admin API is therefore up "
     "to this many seconds old."},
    {GW_SEC_DATABASE, "quiet_cache", GW_CT_INT, "1000000", 0, 100000000,
     GOFF(db_quiet_cache), GW_RL_RESTART,
     "Devices whose last quiet nochg answer the gateway keeps in memory (about "
     "150-200 bytes each, shared by the workers; size it to the devices this gateway "
     "serves). A poll of the same shape is then answered "
     "after one shared read of the devices changed since the previous one, instead of "
     "a read of its own rows: exact, never nochg for an address the database no longer "
     "holds. 0: every poll reads its rows."},
    {GW_SEC_KEYS, "directory", GW_CT_PATH, "", 0, 0, GOFF(keys_directory), GW_RL_APPLY,
     "Directory of master key files: every *.key file is loaded (mode 0600 or "
     "stricter, docs/PROTOCOL.md section 2). This or pkcs11 is required."},
    {GW_SEC_KEYS, "pkcs11", GW_CT_STRING, "", 0, 0, GOFF(keys_pkcs11), GW_RL_APPLY,
     "The master keys are in a PKCS#11 token (an HSM) instead: its URI (RFC 7512), "
     "\"pkcs11:token=LABEL?module-path=/path/module.so&pin-source=/etc/ddns/token.pin\". "
     "Every secret key of the token labelled with a key id is loaded (object=KID: that "
     "one only); each must be sensitive and not extractable, as 'ddns-provision keygen "
     "--pkcs11' makes them. The PIN file must be mode 0600 or stricter. Every "
     "derivation is then an HMAC computed by the token. Excludes directory."},
    {GW_SEC_KEYS, "separate_process", GW_CT_BOOL, "yes", 0, 0, GOFF(keys_process),
     GW_RL_RESTART,
     "yes: only a small key process of its own, forked at start, reads and holds "
     "the master keys (or opens the token); the worker threads that parse requests "
     "ask it whether a signature or a dyndns2 password is right and never see a key "
     "or a device secret (docs/SECURITY.md). no: the gateway's own process holds "
     "them (for comparison measurements only)."},
    {GW_SEC_LIMITS, "max_header_size", GW_CT_INT, "8192", 1024, 65536,
     GOFF(limits.max_header_size), GW_RL_APPLY,
     "Bytes of request line and headers; more: libevent answers 400 (its own HTML "
     "page) and closes the connection."},
    {GW_SEC_LIMITS, "max_body_size", GW_CT_INT, "4096", 256, 65536,
     GOFF(limits.max_body_size), GW_RL_APPLY,
     "Bytes of request body; more: libevent answers 413 (its own HTML page) and "
     "closes the connection."},
    {GW_SEC_LIMITS, "max_uri_length", GW_CT_INT, "1024", 64, 8192,
     GOFF(limits.max_uri_length), GW_RL_APPLY,
     "Bytes of the request target (path and query); more: 414 \"badrequest uri\"."},
    {GW_SEC_LIMITS, "max_query_params", GW_CT_INT, "16", 0, 256,
     GOFF(limits.max_query_params), GW_RL_APPLY,
     "Parameters in the query string; more: 400 \"badrequest query\"."},
    {GW_SEC_LIMITS, "header_timeout", GW_CT_INT, "10", 1, 300,
     GOFF(limits.header_timeout), GW_RL_APPLY,
     "Seconds a connection has to deliver one complete request (TLS handshake, "
     "headers and body), counted from the connection's start or from the previous "
     "answer on a kept-alive connection; then it is closed (slow clients)."},
    {GW_SEC_LIMITS, "max_connections", GW_CT_INT, "10000", 0, 1000000,
     GOFF(limits.max_connections), GW_RL_APPLY,
     "Connections open at once over all listeners (0: no limit); a connection over "
     "the limit is closed at once, before TLS."},
    {GW_SEC_LIMITS, "max_connections_per_source", GW_CT_INT, "64", 0, 1000000,
     GOFF(limits.max_connections_per_source), GW_RL_APPLY,
     "Connections open at once from one source (an IPv4 address or an IPv6 /64; "
     "behind a PROXY header, the client it names; 0: no limit); over: closed at once."},
    {GW_SEC_LIMITS, "auth_fail_limit", GW_CT_INT, "10", 0, 100000,
     GOFF(limits.auth_fail_limit), GW_RL_APPLY,
     "Failed authentications (badauth) from one source within auth_fail_window "
     "that block the source (0: never block)."},
    {GW_SEC_LIMITS, "auth_fail_window", GW_CT_INT, "60", 1, 86400,
     GOFF(limits.auth_fail_window), GW_RL_APPLY,
     "Seconds over which failed authentications are counted."},
    {GW_SEC_LIMITS, "auth_block_time", GW_CT_INT, "300", 1, 86400,
     GOFF(limits.auth_block_time), GW_RL_APPLY,
     "Seconds a blocked source is answered 429 \"ratelimit <s>\" with Retry-After, "
     "without any credential check."},
    {GW_SEC_LIMITS, "blocked_delay", GW_CT_INT, "1000", 0, 10000, GOFF(limits.blocked_delay),
     GW_RL_APPLY,
     "Milliseconds the answer to a blocked source is held back (a tarpit): a client that "
     "ignores Retry-After gets one answer per connection per delay instead of as many as "
     "it can send, so a flood from blocked sources costs next to nothing. 0: at once."},
    {GW_SEC_LIMITS, "device_rate", GW_CT_INT, "6", 0, 600000, GOFF(limits.device_rate),
     GW_RL_APPLY,
     "Signed or dyndns2 requests per minute one device earns, counted by each gateway "
     "after the credential check and before the database (a token bucket). A device "
     "over it is answered ratelimit <s> (/v1/update) or abuse (/nic/update) with "
     "Retry-After and costs the database nothing. 0: no budget."},
    {GW_SEC_LIMITS, "device_burst", GW_CT_INT, "20", 1, 1000000, GOFF(limits.device_burst),
     GW_RL_APPLY,
     "Requests a device may make at once after a quiet time (the bucket's size)."},
    {GW_SEC_LIMITS, "device_memory", GW_CT_INT, "262144", 1024, 16777216,
     GOFF(limits.device_memory), GW_RL_RESTART,
     "Devices each gateway remembers (budget, newest accepted timestamp, revocation; "
     "about 64 bytes each, resident only once used); the least recently seen of a "
     "set of 8 makes room for a new one."},
    {GW_SEC_LIMITS, "min_change_interval", GW_CT_INT, "60", 0, 86400, GOFF(min_change_interval), GW_RL_APPLY,
     "Seconds that must pass between two accepted updates of one device that change a "
     "record (an answer nochg does not count). A change sooner is refused: ratelimit "
     "on /v1/update, abuse on /nic/update. Decided in the database, so it holds across "
     "gateways. 0: no limit."},
    {GW_SEC_DYNDNS2, "max_hosts", GW_CT_INT, "20", 1, 100, GOFF(dyn_max_hosts), GW_RL_APPLY,
     "Most host names one /nic/update request may list; more answer numhost."},
    {GW_SEC_DYNDNS2, "not_yours", GW_CT_BOOL, "no", 0, 0, GOFF(dyn_not_yours), GW_RL_APPLY,
     "yes: a host name that exists but belongs to another device answers !yours. no: "
     "it answers nohost like a name that does not exist, so that one device's "
     "credentials cannot tell which names exist."},
    {GW_SEC_FIRMWARE, "blocked_models", GW_CT_LIST, "", 0, 0, GOFF(fw_blocked_models), GW_RL_APPLY,
     "Models whose requests are refused (badagent), comma-separated, as the product "
     "of their User-Agent (\"AcmeCam-X1, AcmeDVR-8\"; case does not matter)."},
    {GW_SEC_FIRMWARE, "minimum_versions", GW_CT_LIST, "", 0, 0, GOFF(fw_minimum_versions), GW_RL_APPLY,
     "Oldest firmware accepted per model, comma-separated MODEL/VERSION "
     "(\"AcmeCam-X3/2.1.0\"); an older or unreadable version is refused (badagent)."},
    {GW_SEC_FIRMWARE, "signed_only_models", GW_CT_LIST, "", 0, 0, GOFF(fw_signed_only_models),
     GW_RL_APPLY,
     "Models that only speak the signed protocol, comma-separated as blocked_models: "
     "their /nic/update requests are refused (badagent) before the credentials are "
     "looked at; their signed updates are not affected."},
    {GW_SEC_FIRMWARE, "address_required_models", GW_CT_LIST, "", 0, 0,
     GOFF(fw_address_required_models), GW_RL_APPLY,
     "Models whose signed updates must name the address they publish, comma-separated "
     "as blocked_models: an update that names none (\"use the address this connection "
     "comes from\", always written to the database) is answered \"409 moved ADDR\", "
     "and SDK 3.3 signs ADDR again as peer= (docs/PROTOCOL.md section 4.2). Switch a "
     "model on once its fleet runs SDK 3.3 or later."},
    {GW_SEC_PROXY, "listeners", GW_CT_LISTEN, "", 0, 0, GOFF(proxy_listeners), GW_RL_RESTART,
     "Listeners of [gateway] listen that accept a PROXY protocol header (v1 or v2, "
     "before the TLS handshake) from the trusted addresses. A trusted peer must send "
     "one; any other peer must not (its connection is closed if it does)."},
    {GW_SEC_PROXY, "trusted", GW_CT_CIDRS, "", 0, 0, GOFF(proxy_trusted), GW_RL_APPLY,
     "Load balancers allowed to send a PROXY header: addresses or networks "
     "(\"10.0.0.0/8, 2001:db8::/32, 127.0.0.1\"). The address in the header then "
     "stands for the client everywhere (logs, limits, updates without an address). "
     "X-Forwarded-For is never used."},
    {GW_SEC_ADMIN, "listen", GW_CT_LISTEN, "", 0, 0, GOFF(admin_listen), GW_RL_RESTART,
     "Plain-HTTP operations listener(s) for /healthz, /readyz and /metrics, for "
     "example 127.0.0.1:9100. Unset: none. Keep it on loopback or a private network."},
    {GW_SEC_ADMIN, "console_dir", GW_CT_PATH, GW_CONSOLE_DIR_DEFAULT, 0, 0,
     GOFF(admin_console_dir), GW_RL_RESTART,
     "Directory of the web console's files (HTML, CSS, JavaScript), served at "
     "/console/ on the admin listener; `make install` puts them in the default. "
     "A directory that does not exist is warned about and /console/ answers 404."},
    {GW_SEC_ADMIN, "max_connections", GW_CT_INT, "256", 1, 100000,
     GOFF(admin_limits.max_connections), GW_RL_APPLY,
     "Connections open at once on the admin listener(s); over: closed at once, with no "
     "answer. Counted apart from [limits] max_connections, so that neither side can "
     "take the other's file descriptors."},
    {GW_SEC_ADMIN, "max_connections_per_source", GW_CT_INT, "16", 1, 100000,
     GOFF(admin_limits.max_connections_per_source), GW_RL_APPLY,
     "Connections open at once on the admin listener(s) from one source (an IPv4 "
     "address or an IPv6 /64: the TCP peer, a trusted proxy included); over: closed at "
     "once."},
    {GW_SEC_ADMIN, "header_timeout", GW_CT_INT, "10", 1, 300,
     GOFF(admin_limits.header_timeout), GW_RL_APPLY,
     "Seconds an admin connection has to deliver one complete request (headers and "
     "body), counted from the connection's start or from the previous answer; then it "
     "is closed (slow clients)."},
    {GW_SEC_ADMIN, "auth_fail_limit", GW_CT_INT, "10", 0, 100000,
     GOFF(admin_limits.auth_fail_limit), GW_RL_APPLY,
     "Admin API requests with a bad bearer token from one client within "
     "auth_fail_window that block the client (0: never block). A limiter of its own: "
     "devices' failed authentications never block operators, nor the reverse."},
    {GW_SEC_ADMIN, "auth_fail_window", GW_CT_INT, "60", 1, 86400,
     GOFF(admin_limits.auth_fail_window), GW_RL_APPLY,
     "Seconds over which the admin API's failed authentications are counted."},
    {GW_SEC_ADMIN, "auth_block_time", GW_CT_INT, "300", 1, 86400,
     GOFF(admin_limits.auth_block_time), GW_RL_APPLY,
     "Seconds a blocked admin API client is answered 429 with Retry-After, without "
     "its token being looked at."},
    {GW_SEC_ADMIN, "trusted_proxies", GW_CT_CIDRS, "", 0, 0, GOFF(admin_trusted_proxies),
     GW_RL_APPLY,
     "Reverse proxies in front of the admin listener (\"10.0.0.5, 2001:db8::/64\"). "
     "Only a TCP peer in this list may name the client in client_address_header."},
    {GW_SEC_ADMIN, "client_address_header", GW_CT_STRING, "", 0, 0,
     GOFF(admin_client_address_header), GW_RL_APPLY,
     "Request header in which a trusted proxy names the client, such as "
     "X-Forwarded-For: its right-most address (the one the proxy appended) is then "
     "the client's for the admin API's limiter, its log and the audit log. From any "
     "other peer, and when unset, the header is ignored."},
    {GW_SEC_ADMIN, "statement_timeout", GW_CT_INT, "5", 1, 3600,
     GOFF(admin_limits.statement_timeout), GW_RL_RESTART,
     "Seconds an admin API statement may run: PostgreSQL's statement_timeout of the "
     "admin pool's connections; the gateway also cancels the statement itself one "
     "second later, or at once when the client goes away. The request is answered "
     "504."},
    {GW_SEC_ADMIN, "reserved_labels", GW_CT_LIST, CMN_LABEL_RESERVED_DEFAULT, 0, 0,
     GOFF(admin_reserved_labels), GW_RL_APPLY,
     "Labels no device may take through the admin API (add or rename a name): glob "
     "patterns (* ? [...]) separated by commas, matched against the host label in "
     "lowercase. The default is ddns-provision's (DDNS_RESERVED_LABELS); keep the two "
     "the same. Empty: none reserved. Labels that already hold records in the zone "
     "that no device published are refused whatever this says."},
    {GW_SEC_ZONE, "primary", GW_CT_ADDRPORT, NULL, 0, 0, ZOFF(primary), GW_RL_APPLY,
     "Primary DNS server of the zone that accepts RFC 2136 updates: addr[:port], "
     "port 53 by default."},
    {GW_SEC_ZONE, "tsig_key_name", GW_CT_DNAME, NULL, 0, 0, ZOFF(tsig_key_name), GW_RL_APPLY,
     "Name of the TSIG key, as configured on the primary."},
    {GW_SEC_ZONE, "tsig_algorithm", GW_CT_TSIGALG, "hmac-sha256", 0, 0, ZOFF(tsig_algorithm), GW_RL_APPLY,
     "hmac-sha256 or hmac-sha512."},
    {GW_SEC_ZONE, "tsig_secret_file", GW_CT_SECRETFILE, NULL, 0, 0, ZOFF(tsig_secret_file), GW_RL_APPLY,
     "File holding the TSIG secret as one line of base64, mode 0600 or stricter (a file "
     "that group or others may access is refused, as master key files are)."},
    {GW_SEC_ZONE, "default_ttl", GW_CT_INT, "60", 1, 86400, ZOFF(default_ttl), GW_RL_APPLY,
     "TTL of published records whose name has no TTL of its own."},
    {GW_SEC_ZONE, "allow_addresses", GW_CT_CIDRS, "", 0, 0, ZOFF(allow_addresses), GW_RL_APPLY,
     "Networks a name of this zone may point at although they are not globally "
     "reachable (\"10.0.0.0/8, fd00::/8\"), for devices that live in a private "
     "network. Unset: only globally reachable unicast addresses (docs/SECURITY.md). "
     "An update of every name of a device (every signed update) needs the network in "
     "the list of every zone."},
};
#define GW_NPARAMS (sizeof gw_params / sizeof gw_params[0])
_Static_assert(sizeof ((gw_config_t *)0)->lines / sizeof(int) >= GW_NPARAMS, "lines[] too small");

struct gw_cparse {
    gw_config_t *cfg;
    gw_config_msgs_t *msgs;
    FILE *f;
    char *buf;                  /* getline buffer */
    size_t bufcap;
    int line;                   /* physical line of the last line read */
    int bad_line;               /* a line the reader already reported */
    enum gw_section sec;        /* section of the line being parsed */
    gw_zone_conf_t *zone;       /* current zone section */
    int sec_lines[GW_SEC_UNKNOWN + 1];  /* first header line per section */
    unsigned char handler_failed[4096]; /* lines the handler reported (bitmap) */
};

/* ---- messages ------------------------------------------------------------ */

static void gw_msg_append(char **buf, int *count, const char *fmt, va_list ap)
{
    char line[1024];
    vsnprintf(line, sizeof line, fmt, ap);
    size_t old = *buf ? strlen(*buf) : 0, add = strlen(line);
    char *grown = realloc(*buf, old + add + 2);
    if (grown == NULL)
        return;
    memcpy(grown + old, line, add);
    grown[old + add] = '\n';
    grown[old + add + 1] = '\0';
    *buf = grown;
    (*count)++;
}

static void gw_cerr(gw_config_msgs_t *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void gw_cerr(gw_config_msgs_t *m, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    gw_msg_append(&m->errors, &m->nerrors, fmt, ap);
    va_end(ap);
}

void gw_config_error(gw_config_msgs_t *msgs, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    gw_msg_append(&msgs->errors, &msgs->nerrors, fmt, ap);
    va_end(ap);
}

static void gw_cwarn(gw_config_msgs_t *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void gw_cwarn(gw_config_msgs_t *m, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    gw_msg_append(&m->warnings, &m->nwarnings, fmt, ap);
    va_end(ap);
}

void gw_config_msgs_clear(gw_config_msgs_t *msgs)
{
    free(msgs->errors);
    free(msgs->warnings);
    memset(msgs, 0, sizeof *msgs);
}

/* ---- value parsers ------------------------------------------------------- */

int gw_config_is_proxy_listener(const gw_config_t *cfg, const gw_sockaddr_t *l)
{
    for (size_t i = 0; i < cfg->proxy_listeners.n; i++)
        if (strcmp(cfg->proxy_listeners.addr[i].text, l->text) == 0)
            return 1;
    return 0;
}

/* ---- table-driven setter -------------------------------------------------- */

/* A TSIG secret file's value: its path and the secret it holds. */
static const char *gw_param_secret_file(const gw_config_t *cfg, gw_zone_conf_t *z, const char *v)
{
    char *path, *secret = NULL;
    const char *bad = gw_cvalue_path(cfg->dir, v, &path);
    if (bad != NULL)
        return bad;
    if (!cfg->secrets_elsewhere && (bad = gw_cvalue_secret_file(path, &secret)) != NULL) {
        free(path);
        return bad;
    }
    free(z->tsig_secret_file);
    if (z->tsig_secret) {
        cmn_wipe(z->tsig_secret, strlen(z->tsig_secret));
        free(z->tsig_secret);
    }
    z->tsig_secret_file = path;
    z->tsig_secret = secret;
    return NULL;
}

/* A text value into the string field: the old value freed. */
static const char *gw_param_text(char **field, const char *bad, char **s)
{
    if (bad != NULL)
        return bad;
    free(*field);
    *field = *s;
    return NULL;
}

/* Stores value v for param p into base (gw_config_t, or gw_zone_conf_t
 * for a zone's key). Returns NULL or what is wrong with the value. */
static const char *gw_param_set(const gw_config_t *cfg, const struct gw_param *p, void *base,
                                const char *v)
{
    char *field = (char *)base + p->offset, *s = NULL;
    int optional = p->def != NULL && p->def[0] == '\0';

    switch (p->type) {
    case GW_CT_INT: return gw_cvalue_int(v, p->min, p->max, (int *)field);
    case GW_CT_STRING: return gw_param_text((char **)field, gw_cvalue_string(v, &s), &s);
    case GW_CT_PATH: return gw_param_text((char **)field, gw_cvalue_path(cfg->dir, v, &s), &s);
    case GW_CT_LIST:
        s = strdup(v);
        return gw_param_text((char **)field, s ? NULL : "out of memory", &s);
    case GW_CT_DNAME: return gw_param_text((char **)field, gw_cvalue_dname(v, 0, &s), &s);
    case GW_CT_TSIGALG: return gw_param_text((char **)field, gw_cvalue_tsigalg(v, &s), &s);
    case GW_CT_LEVEL: return gw_cvalue_level(v, (int *)field);
    case GW_CT_LOGFMT: return gw_cvalue_logfmt(v, (int *)field);
    case GW_CT_BOOL: return gw_cvalue_bool(v, (int *)field);
    case GW_CT_LISTEN: return gw_cvalue_listen(v, optional, (gw_listen_list_t *)field);
    case GW_CT_CIDRS: return gw_cvalue_cidrs(v, (gw_cidr_list_t *)field);
    case GW_CT_ADDRPORT: return gw_cvalue_addrport(v, 53, (gw_sockaddr_t *)field);
    case GW_CT_SECRETFILE:
        if (v[0] == '\0')
            return "empty value";
        return gw_param_secret_file(cfg, base, v);
    }
    return "internal error: unknown type";
}

static const struct gw_param *gw_param_find(enum gw_section sec, const char *key, size_t *idx_in_sec)
{
    size_t k = 0;
    for (size_t i = 0; i < GW_NPARAMS; i++) {
        if (gw_params[i].section != sec)
            continue;
        if (strcmp(gw_params[i].key, key) == 0) {
            if (idx_in_sec)
                *idx_in_sec = k;
            return &gw_params[i];
        }
        k++;
    }
    return NULL;
}

static size_t gw_param_index(const struct gw_param *p)
{
    return (size_t)(p - gw_params);
}

/* ---- libinih glue --------------------------------------------------------- */

void gw_zone_conf_clear(gw_zone_conf_t *z)
{
    free(z->name);
    free(z->tsig_key_name);
    free(z->tsig_algorithm);
    free(z->tsig_secret_file);
    if (z->tsig_secret != NULL) {
        cmn_wipe(z->tsig_secret, strlen(z->tsig_secret));
        free(z->tsig_secret);
    }
    memset(z, 0, sizeof *z);
}

static gw_zone_conf_t *gw_zone_add(struct gw_cparse *cp, const char *name_text)
{
    gw_config_t *cfg = cp->cfg;
    char *name = NULL;
    if (gw_cvalue_dname(name_text, 1, &name) != NULL) {
        gw_cerr(cp->msgs, "%s:%d: [zone %s]: '%s' is not a zone name", cfg->path, cp->line,
                name_text, name_text);
        return NULL;
    }
    for (size_t i = 0; i < cfg->nzones; i++)
        if (strcmp(cfg->zones[i].name, name) == 0) {
            gw_cerr(cp->msgs, "%s:%d: [zone %s]: zone defined twice (first at line %d)",
                    cfg->path, cp->line, name, cfg->zones[i].line);
            free(name);
            return NULL;
        }
    gw_zone_conf_t *grown = realloc(cfg->zones, (cfg->nzones + 1) * sizeof *grown);
    if (grown == NULL) {
        free(name);
        return NULL;
    }
    cfg->zones = grown;
    gw_zone_conf_t *z = &cfg->zones[cfg->nzones++];
    memset(z, 0, sizeof *z);
    z->name = name;
    z->line = cp->line;
    for (size_t i = 0; i < GW_NPARAMS; i++) {
        const struct gw_param *p = &gw_params[i];
        if (p->section == GW_SEC_ZONE && p->def != NULL)
            (void)gw_param_set(cfg, p, z, p->def);
    }
    return z;
}

/* Called by the reader for every "[...]" line before libinih sees it. */
static void gw_section_start(struct gw_cparse *cp, const char *inner, size_t len)
{
    char name[256];
    if (len >= sizeof name)
        len = sizeof name - 1;
    memcpy(name, inner, len);
    name[len] = '\0';
    cp->zone = NULL;
    cp->sec = GW_SEC_UNKNOWN;
    for (int s = GW_SEC_GATEWAY; s <= GW_SEC_LAST_NAMED; s++)
        if (strcmp(name, gw_section_names[s]) == 0)
            cp->sec = (enum gw_section)s;
    if (strncmp(name, "zone", 4) == 0 && (name[4] == ' ' || name[4] == '\t')) {
        char *zn = name + 4;
        while (*zn == ' ' || *zn == '\t')
            zn++;
        size_t zl = strlen(zn);
        while (zl > 0 && (zn[zl - 1] == ' ' || zn[zl - 1] == '\t'))
            zn[--zl] = '\0';
        cp->sec = GW_SEC_ZONE;
        cp->zone = gw_zone_add(cp, zn);
        if (cp->zone == NULL)
            cp->sec = GW_SEC_UNKNOWN;   /* reported; skip its keys */
        return;
    }
    if (cp->sec == GW_SEC_UNKNOWN) {
        gw_cerr(cp->msgs, "%s:%d: unknown section [%s] (known: [gateway], [tls], [database], "
                "[keys], [limits], [dyndns2], [firmware], [zone NAME])", cp->cfg->path, cp->line, name);
        return;
    }
    if (cp->sec_lines[cp->sec] == 0)
        cp->sec_lines[cp->sec] = cp->line;
}

/* fgets-like reader for libinih that counts physical lines, refuses lines
 * libinih would split, strips leading blanks (so that indented keys are not
 * taken for continuation lines) and tracks section headers. */
static char *gw_ini_reader(char *str, int num, void *stream)
{
    struct gw_cparse *cp = stream;
    ssize_t n = getline(&cp->buf, &cp->bufcap, cp->f);
    if (n < 0)
        return NULL;
    cp->line++;
    while (n > 0 && (cp->buf[n - 1] == '\n' || cp->buf[n - 1] == '\r'))
        cp->buf[--n] = '\0';
    char *p = cp->buf;
    while (*p == ' ' || *p == '\t')
        p++;
    size_t len = strlen(p);
    if ((int)len > num - 2 || len > GW_CONF_LINE_MAX) {
        gw_cerr(cp->msgs, "%s:%d: line longer than %d characters", cp->cfg->path, cp->line,
                GW_CONF_LINE_MAX);
        cp->bad_line = cp->line;
        str[0] = '\n';
        str[1] = '\0';
        return str;
    }
    if (p[0] == '[') {
        const char *close = strchr(p, ']');
        if (close != NULL)
            gw_section_start(cp, p + 1, (size_t)(close - p - 1));
    }
    memcpy(str, p, len);
    str[len] = '\n';
    str[len + 1] = '\0';
    return str;
}

static void gw_mark_handler_failed(struct gw_cparse *cp)
{
    if (cp->line > 0 && cp->line < (int)(8 * sizeof cp->handler_failed))
        cp->handler_failed[cp->line / 8] |= (unsigned char)(1u << (cp->line % 8));
}

static int gw_handler_failed_on(const struct gw_cparse *cp, int line)
{
    if (line <= 0 || line >= (int)(8 * sizeof cp->handler_failed))
        return 0;
    return (cp->handler_failed[line / 8] >> (line % 8)) & 1;
}

static int gw_ini_handler(void *user, const char *section, const char *name, const char *value)
{
    struct gw_cparse *cp = user;
    gw_config_t *cfg = cp->cfg;
    char where[400];
    size_t zidx = 0;
    (void)section;

    if (cp->sec == GW_SEC_UNKNOWN)
        return 1;   /* the section header was reported */
    if (cp->sec == GW_SEC_NONE) {
        gw_cerr(cp->msgs, "%s:%d: key '%s' outside of any section", cfg->path, cp->line, name);
        goto fail;
    }
    const struct gw_param *p = gw_param_find(cp->sec, name, &zidx);
    if (cp->sec == GW_SEC_ZONE)
        snprintf(where, sizeof where, "%s:%d: [zone %s] %s", cfg->path, cp->line,
                 cp->zone->name, name);
    else
        snprintf(where, sizeof where, "%s:%d: [%s] %s", cfg->path, cp->line,
                 gw_section_names[cp->sec], name);
    if (p == NULL) {
        gw_cerr(cp->msgs, "%s: unknown key", where);
        goto fail;
    }
    if (cp->sec == GW_SEC_ZONE) {
        if (cp->zone->set & (1u << zidx)) {
            gw_cerr(cp->msgs, "%s: key given twice in this section", where);
            goto fail;
        }
        cp->zone->set |= 1u << zidx;   /* given (even if wrong): not "missing" */
        const char *bad = gw_param_set(cfg, p, cp->zone, value);
        if (bad != NULL) {
            gw_cerr(cp->msgs, "%s: %s", where, bad);
            goto fail;
        }
    } else {
        size_t gi = gw_param_index(p);
        if (cfg->lines[gi] != 0) {
            gw_cerr(cp->msgs, "%s: key given twice (first at line %d)", where, cfg->lines[gi]);
            goto fail;
        }
        cfg->lines[gi] = cp->line;     /* given (even if wrong): not "missing" */
        const char *bad = gw_param_set(cfg, p, cfg, value);
        if (bad != NULL) {
            gw_cerr(cp->msgs, "%s: %s", where, bad);
            goto fail;
        }
    }
    return 1;
fail:
    gw_mark_handler_failed(cp);
    return 0;
}

/* ---- public --------------------------------------------------------------- */

void gw_config_key_error(const gw_config_t *cfg, gw_config_msgs_t *msgs, const char *section,
                         const char *key, const char *fmt, ...)
{
    char what[900];
    va_list ap;
    int line = 0;
    for (size_t i = 0; i < GW_NPARAMS; i++)
        if (gw_params[i].section != GW_SEC_ZONE &&
            strcmp(gw_section_names[gw_params[i].section], section) == 0 &&
            strcmp(gw_params[i].key, key) == 0)
            line = cfg->lines[i];
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    if (line > 0)
        gw_cerr(msgs, "%s:%d: [%s] %s: %s", cfg->path, line, section, key, what);
    else
        gw_cerr(msgs, "%s: [%s] %s: %s", cfg->path, section, key, what);
}

void gw_config_zone_error(const gw_config_t *cfg, gw_config_msgs_t *msgs,
                          const gw_zone_conf_t *zone, const char *key, const char *fmt, ...)
{
    char what[900];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    gw_cerr(msgs, "%s:%d: [zone %s] %s: %s", cfg->path, zone->line, zone->name, key, what);
}

static int gw_config_dir(gw_config_t *cfg)
{
    char cwd[PATH_MAX];
    const char *slash = strrchr(cfg->path, '/');
    if (slash == cfg->path) {
        cfg->dir = strdup("/");
    } else if (cfg->path[0] == '/') {
        cfg->dir = strndup(cfg->path, (size_t)(slash - cfg->path));
    } else {
        if (getcwd(cwd, sizeof cwd) == NULL)
            return GW_EIO;
        size_t n = strlen(cwd) + 1 + (slash ? (size_t)(slash - cfg->path) : 0) + 1;
        cfg->dir = malloc(n);
        if (cfg->dir == NULL)
            return GW_ENOMEM;
        if (slash)
            snprintf(cfg->dir, n, "%s/%.*s", cwd, (int)(slash - cfg->path), cfg->path);
        else
            snprintf(cfg->dir, n, "%s", cwd);
    }
    return cfg->dir ? GW_OK : GW_ENOMEM;
}

/* Rules that join several keys. */
static void gw_config_cross_checks(gw_config_t *cfg, gw_config_msgs_t *msgs)
{
    for (size_t i = 0; i < cfg->proxy_listeners.n; i++) {
        const gw_sockaddr_t *pl = &cfg->proxy_listeners.addr[i];
        int found = 0;
        for (size_t j = 0; j < cfg->listen.n; j++)
            found |= strcmp(cfg->listen.addr[j].text, pl->text) == 0;
        if (!found)
            gw_config_key_error(cfg, msgs, "proxy", "listeners",
                                "%s is not one of [gateway] listen", pl->text);
    }
    if (cfg->proxy_listeners.n > 0 && cfg->proxy_trusted.n == 0)
        gw_config_key_error(cfg, msgs, "proxy", "trusted",
                            "missing: [proxy] listeners needs the addresses of the load "
                            "balancers allowed to send a PROXY header");
    if (cfg->keys_directory == NULL && cfg->keys_pkcs11 == NULL)
        gw_cerr(msgs, "%s: [keys]: missing: directory (key files) or pkcs11 (a token's URI) "
                "names the master keys", cfg->path);
    else if (cfg->keys_directory != NULL && cfg->keys_pkcs11 != NULL)
        gw_config_key_error(cfg, msgs, "keys", "pkcs11",
                            "directory and pkcs11 exclude each other: the master keys are "
                            "either files or in a token");
    if ((cfg->tls_certificate2 == NULL) != (cfg->tls_private_key2 == NULL))
        gw_config_key_error(cfg, msgs, "tls",
                            cfg->tls_certificate2 ? "certificate2" : "private_key2",
                            "certificate2 and private_key2 go together");
    for (size_t i = 0; i < cfg->admin_listen.n; i++) {
        const struct sockaddr_storage *ss = &cfg->admin_listen.addr[i].ss;
        int loopback = ss->ss_family == AF_INET
            ? (ntohl(((const struct sockaddr_in *)ss)->sin_addr.s_addr) >> 24) == 127
            : IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)ss)->sin6_addr);
        if (!loopback)
            gw_cwarn(msgs, "%s: [admin] listen: %s is not a loopback address: the plain-HTTP "
                     "/metrics and /readyz are reachable from the network", cfg->path,
                     cfg->admin_listen.addr[i].text);
    }
    char lerr[200];
    if (cmn_label_list_check(cfg->admin_reserved_labels, lerr, sizeof lerr) != 0)
        gw_config_key_error(cfg, msgs, "admin", "reserved_labels", "%s", lerr);
    struct stat cst;
    if (cfg->admin_listen.n > 0 && cfg->admin_console_dir != NULL &&
        (stat(cfg->admin_console_dir, &cst) != 0 || !S_ISDIR(cst.st_mode)))
        gw_cwarn(msgs, "%s: [admin] console_dir: %s is not a directory: /console/ answers 404",
                 cfg->path, cfg->admin_console_dir);
    for (size_t i = 0; i < cfg->admin_listen.n; i++)
        for (size_t j = 0; j < cfg->listen.n; j++)
            if (strcmp(cfg->admin_listen.addr[i].text, cfg->listen.addr[j].text) == 0)
                gw_config_key_error(cfg, msgs, "admin", "listen",
                                    "%s is also an HTTPS listener", cfg->listen.addr[j].text);
}

int gw_config_load(const char *path, gw_config_t **out, gw_config_msgs_t *msgs)
{
    return gw_config_load_flags(path, out, msgs, 0);
}

int gw_config_load_flags(const char *path, gw_config_t **out, gw_config_msgs_t *msgs,
                         unsigned flags)
{
    struct gw_cparse cp;
    gw_config_t *cfg = NULL;
    int rc = GW_ECONFIG;

    memset(msgs, 0, sizeof *msgs);
    memset(&cp, 0, sizeof cp);
    *out = NULL;
    cfg = calloc(1, sizeof *cfg);
    if (cfg == NULL || (cfg->path = strdup(path)) == NULL || gw_config_dir(cfg) != 0) {
        gw_cerr(msgs, "%s: out of memory", path);
        goto out;
    }
    cfg->secrets_elsewhere = (flags & GW_CONFIG_SECRETS_ELSEWHERE) != 0;
    for (size_t i = 0; i < GW_NPARAMS; i++) {
        const struct gw_param *p = &gw_params[i];
        /* an empty default leaves an optional list unset, except free text
         * (GW_CT_LIST), which is then the empty string */
        if (p->section != GW_SEC_ZONE && p->def != NULL &&
            (p->def[0] != '\0' || p->type == GW_CT_LIST))
            (void)gw_param_set(cfg, p, cfg, p->def);
    }
    cp.cfg = cfg;
    cp.msgs = msgs;
    cp.f = fopen(path, "re");
    if (cp.f == NULL) {
        gw_cerr(msgs, "%s: cannot open configuration file: %s", path, strerror(errno));
        goto out;
    }
    int r = ini_parse_stream(gw_ini_reader, &cp, gw_ini_handler, &cp);
    if (r > 0 && r != cp.bad_line && !gw_handler_failed_on(&cp, r))
        gw_cerr(msgs, "%s:%d: syntax error: expected '[section]' or 'key = value'", path, r);
    else if (r < 0)
        gw_cerr(msgs, "%s: cannot parse: %s", path, r == -2 ? "out of memory" : "read error");

    /* required keys */
    for (size_t i = 0; i < GW_NPARAMS; i++) {
        const struct gw_param *p = &gw_params[i];
        if (p->section == GW_SEC_ZONE || p->def != NULL || cfg->lines[i] != 0)
            continue;
        int sl = cp.sec_lines[p->section];
        if (sl > 0)
            gw_cerr(msgs, "%s:%d: [%s] %s: missing required key", path, sl,
                    gw_section_names[p->section], p->key);
        else
            gw_cerr(msgs, "%s: [%s] %s: missing required key (no [%s] section)", path,
                    gw_section_names[p->section], p->key, gw_section_names[p->section]);
    }
    for (size_t z = 0; z < cfg->nzones; z++) {
        size_t k = 0;
        for (size_t i = 0; i < GW_NPARAMS; i++) {
            const struct gw_param *p = &gw_params[i];
            if (p->section != GW_SEC_ZONE)
                continue;
            if (p->def == NULL && !(cfg->zones[z].set & (1u << k)))
                gw_cerr(msgs, "%s:%d: [zone %s] %s: missing required key", path,
                        cfg->zones[z].line, cfg->zones[z].name, p->key);
            k++;
        }
    }
    gw_config_cross_checks(cfg, msgs);
    if (cfg->nzones == 0 && msgs->nerrors == 0)
        gw_cwarn(msgs, "%s: no [zone NAME] section: DNS changes stay in the outbox", path);
    rc = msgs->nerrors == 0 ? GW_OK : GW_ECONFIG;
    *out = cfg;     /* also with errors: the caller may go on checking */
    cfg = NULL;
out:
    if (cp.f != NULL)
        fclose(cp.f);
    free(cp.buf);
    gw_config_free(cfg);
    return rc;
}

void gw_config_free(gw_config_t *cfg)
{
    if (cfg == NULL)
        return;
    for (size_t i = 0; i < cfg->nzones; i++)
        gw_zone_conf_clear(&cfg->zones[i]);
    free(cfg->zones);
    free(cfg->tls_certificate);
    free(cfg->tls_private_key);
    free(cfg->tls_certificate2);
    free(cfg->tls_private_key2);
    free(cfg->tls_ocsp_response);
    free(cfg->tls_ocsp_response2);
    if (cfg->db_conninfo != NULL) {
        cmn_wipe(cfg->db_conninfo, strlen(cfg->db_conninfo)); /* may hold a password */
        free(cfg->db_conninfo);
    }
    if (cfg->db_publisher_conninfo != NULL) {
        cmn_wipe(cfg->db_publisher_conninfo, strlen(cfg->db_publisher_conninfo));
        free(cfg->db_publisher_conninfo);
    }
    free(cfg->keys_directory);
    free(cfg->user);
    if (cfg->keys_pkcs11 != NULL) {
        cmn_wipe(cfg->keys_pkcs11, strlen(cfg->keys_pkcs11)); /* may hold a pin-value */
        free(cfg->keys_pkcs11);
    }
    free(cfg->admin_console_dir);
    free(cfg->admin_client_address_header);
    free(cfg->admin_reserved_labels);
    free(cfg->fw_blocked_models);
    free(cfg->fw_minimum_versions);
    free(cfg->fw_signed_only_models);
    free(cfg->fw_address_required_models);
    free(cfg->path);
    free(cfg->dir);
    free(cfg);
}

/* ---- reload --------------------------------------------------------------- */

/* 1 when param p holds the same value in the objects a and b (two
 * gw_config_t, or two gw_zone_conf_t for a zone key). */
static int gw_param_same(const struct gw_param *p, const void *a, const void *b)
{
    const char *fa = (const char *)a + p->offset, *fb = (const char *)b + p->offset;
    switch (p->type) {
    case GW_CT_INT:
    case GW_CT_LEVEL:
    case GW_CT_BOOL:
    case GW_CT_LOGFMT:
        return *(const int *)fa == *(const int *)fb;
    case GW_CT_LISTEN: {
        const gw_listen_list_t *la = (const void *)fa, *lb = (const void *)fb;
        if (la->n != lb->n)
            return 0;
        for (size_t i = 0; i < la->n; i++)
            if (strcmp(la->addr[i].text, lb->addr[i].text) != 0)
                return 0;
        return 1;
    }
    case GW_CT_CIDRS: {
        const gw_cidr_list_t *ca = (const void *)fa, *cb = (const void *)fb;
        return ca->n == cb->n && memcmp(ca->net, cb->net, ca->n * sizeof ca->net[0]) == 0;
    }
    case GW_CT_ADDRPORT:
        return strcmp(((const gw_sockaddr_t *)fa)->text, ((const gw_sockaddr_t *)fb)->text) == 0;
    default: {  /* every other type is a string */
        const char *sa = *(char *const *)fa, *sb = *(char *const *)fb;
        return (sa == NULL && sb == NULL) || (sa != NULL && sb != NULL && strcmp(sa, sb) == 0);
    }
    }
}

/* Swaps param p's value between the objects a and b. */
static void gw_param_swap(const struct gw_param *p, void *a, void *b)
{
    size_t size;
    switch (p->type) {
    case GW_CT_INT:
    case GW_CT_LEVEL:
    case GW_CT_BOOL:
    case GW_CT_LOGFMT: size = sizeof(int); break;
    case GW_CT_LISTEN: size = sizeof(gw_listen_list_t); break;
    case GW_CT_CIDRS: size = sizeof(gw_cidr_list_t); break;
    case GW_CT_ADDRPORT: size = sizeof(gw_sockaddr_t); break;
    default: size = sizeof(char *); break;
    }
    unsigned char tmp[sizeof(gw_listen_list_t) > sizeof(gw_cidr_list_t) ? sizeof(gw_listen_list_t)
                                                                         : sizeof(gw_cidr_list_t)];
    _Static_assert(sizeof tmp >= sizeof(gw_sockaddr_t), "swap buffer");
    char *fa = (char *)a + p->offset, *fb = (char *)b + p->offset;
    memcpy(tmp, fa, size);
    memcpy(fa, fb, size);
    memcpy(fb, tmp, size);
}

int gw_config_same_zones(const gw_config_t *cur, const gw_config_t *nc)
{
    if (cur->nzones != nc->nzones)
        return 0;
    for (size_t i = 0; i < cur->nzones; i++)
        if (strcmp(cur->zones[i].name, nc->zones[i].name) != 0)
            return 0;
    return 1;
}

size_t gw_config_restart_keys(const gw_config_t *cur, const gw_config_t *nc, char *out,
                              size_t outlen)
{
    size_t n = 0, len = 0;
    if (outlen > 0)
        out[0] = '\0';
    for (size_t i = 0; i < GW_NPARAMS; i++) {
        const struct gw_param *p = &gw_params[i];
        if (p->reload != GW_RL_RESTART || p->section == GW_SEC_ZONE ||
            gw_param_same(p, cur, nc))
            continue;
        if (len < outlen)
            len += (size_t)snprintf(out + len, outlen - len, "%s[%s] %s", n ? ", " : "",
                                    gw_section_names[p->section], p->key);
        n++;
    }
    if (!gw_config_same_zones(cur, nc)) {
        if (len < outlen)
            snprintf(out + len, outlen - len, "%s[zone] sections (added, removed or reordered)",
                     n ? ", " : "");
        n++;
    }
    return n;
}

void gw_config_apply_reload(gw_config_t *cur, gw_config_t *nc)
{
    int zones = gw_config_same_zones(cur, nc);
    for (size_t i = 0; i < GW_NPARAMS; i++) {
        const struct gw_param *p = &gw_params[i];
        if (p->reload != GW_RL_APPLY)
            continue;
        if (p->section != GW_SEC_ZONE) {
            gw_param_swap(p, cur, nc);
            continue;
        }
        for (size_t z = 0; zones && z < cur->nzones; z++)
            gw_param_swap(p, &cur->zones[z], &nc->zones[z]);
    }
    /* what a zone key stands for but the table does not hold */
    for (size_t z = 0; zones && z < cur->nzones; z++) {
        char *t = cur->zones[z].tsig_secret;
        cur->zones[z].tsig_secret = nc->zones[z].tsig_secret;
        nc->zones[z].tsig_secret = t;
    }
}

int gw_zone_conf_copy(gw_zone_conf_t *dst, const gw_zone_conf_t *src)
{
    *dst = *src;
    dst->name = strdup(src->name);
    dst->tsig_key_name = strdup(src->tsig_key_name);
    dst->tsig_algorithm = strdup(src->tsig_algorithm);
    dst->tsig_secret_file = strdup(src->tsig_secret_file);
    dst->tsig_secret = strdup(src->tsig_secret);
    if (dst->name == NULL || dst->tsig_key_name == NULL || dst->tsig_algorithm == NULL ||
        dst->tsig_secret_file == NULL || dst->tsig_secret == NULL) {
        gw_zone_conf_clear(dst);
        return GW_ENOMEM;
    }
    return GW_OK;
}

static const char *gw_ctype_name(enum gw_ctype t)
{
    switch (t) {
    case GW_CT_INT: return "integer";
    case GW_CT_STRING: return "text";
    case GW_CT_PATH: return "path";
    case GW_CT_LISTEN: return "addr:port list";
    case GW_CT_LEVEL: return "level";
    case GW_CT_ADDRPORT: return "addr[:port]";
    case GW_CT_DNAME: return "domain name";
    case GW_CT_TSIGALG: return "algorithm";
    case GW_CT_SECRETFILE: return "path";
    case GW_CT_BOOL: return "yes or no";
    case GW_CT_LIST: return "list";
    case GW_CT_CIDRS: return "network list";
    case GW_CT_LOGFMT: return "text | json";
    }
    return "?";
}

const char *gw_config_publisher_conninfo(const gw_config_t *cfg)
{
    const char *p = cfg->db_publisher_conninfo;
    return p != NULL && p[0] != '\0' ? p : cfg->db_conninfo;
}

void gw_config_print_reference(FILE *f)
{
    enum gw_section last = GW_SEC_NONE;
    for (size_t i = 0; i < GW_NPARAMS; i++) {
        const struct gw_param *p = &gw_params[i];
        if (p->section != last) {
            fprintf(f, "%s  [%s%s]\n", last == GW_SEC_NONE ? "" : "\n",
                    gw_section_names[p->section], p->section == GW_SEC_ZONE ? " NAME" : "");
            if (p->section == GW_SEC_ZONE)
                fprintf(f, "      One section per DNS zone the gateway publishes to; any number.\n");
            last = p->section;
        }
        fprintf(f, "    %s (%s", p->key, gw_ctype_name(p->type));
        if (p->type == GW_CT_INT)
            fprintf(f, ", %ld to %ld", p->min, p->max);
        if (p->def != NULL && p->def[0] == '\0')
            fprintf(f, ", optional");
        else if (p->def != NULL)
            fprintf(f, ", default %s", p->def);
        else
            fprintf(f, ", required");
        fprintf(f, "; %s)\n", p->reload == GW_RL_APPLY ? "SIGHUP applies it" : "needs a restart");
        /* wrap the help text at about 72 columns, indented by 8 */
        const char *h = p->help;
        while (*h) {
            size_t take = strlen(h);
            if (take > 70) {
                take = 70;
                while (take > 0 && h[take] != ' ')
                    take--;
                if (take == 0)
                    take = 70;
            }
            fprintf(f, "        %.*s\n", (int)take, h);
            h += take;
            while (*h == ' ')
                h++;
        }
    }
}
