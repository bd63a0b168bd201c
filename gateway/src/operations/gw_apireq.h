/* gw_apireq: one admin API request, from its arrival to its answer.
 *
 * Owns the parts of a request the endpoints read (method, path segments
 * after /api/v1/, query string, JSON body, the token that authenticated
 * it, the client's address), the statement an endpoint runs for it (a
 * gw_sql_t on the admin pool, with a deadline), the two ways a statement's
 * answer becomes the HTTP answer (a JSON value passed through; a (status,
 * body) pair of an admin_* write function), the JSON answers and their log
 * line, and the error convention of the endpoints: a function that finds a
 * fault records it with gw_apireq_fail() and returns its code; only
 * gw_apireq_answer_fail() answers it, once, in the dispatcher. */
#ifndef GW_APIREQ_H
#define GW_APIREQ_H

#include <arpa/inet.h>
#include <netinet/in.h>

#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>

#include "cmn_key.h"
#include "cmn_mac.h"
#include "cmn_token.h"
#include "gw_config.h"
#include "gw_db.h"
#include "gw_opsconn.h"
#include "gw_policydb.h"
#include "gw_sql.h"

#define GW_APIREQ_NSEG 6

/* How a statement's answer becomes the HTTP answer. */
typedef enum gw_apireq_mode {
    GW_APIREQ_JSON,     /* one JSON value; SQL NULL: 404 no such device */
    GW_APIREQ_STATUS,   /* (status integer, body jsonb) */
} gw_apireq_mode_t;

typedef struct gw_apireq gw_apireq_t;
typedef int (*gw_apireq_fn)(gw_apireq_t *r);

struct gw_apireq {
    /* what the endpoints may use, set by gw_api */
    const gw_config_t *cfg;
    const char *const *kids;    /* the gateway's key ids, replaced on reload */
    gw_policydb_t *policydb;
    gw_db_t *db;
    struct gw_limit *api_lim;           /* the admin API's failed logins */
    /* the request */
    struct evhttp_request *req;
    gw_opsconn_t *conns;                /* the listener's connections */
    gw_oconn_t *conn;                   /* watched while the request waits */
    int gone;                           /* evhttp closed the connection */
    int left;                           /* the client closed its end */
    gw_db_job_t *job;
    enum evhttp_cmd_type cmd;
    char path[512];
    char seg[GW_APIREQ_NSEG][128];      /* path segments after /api/v1/ */
    int nseg;
    struct evkeyvalq query;
    int have_query;
    json_t *body;
    char source[INET6_ADDRSTRLEN];      /* the client (gw_opsconn_client) */
    gw_apireq_fn endpoint;              /* the route's, run once the token is good */
    int needs_write;                    /* the route needs a token of scope write */
    /* the token */
    long long token_id;
    char token_id_text[24];
    char scope[8];
    char expires[40];
    char comment[256];
    char actor[300];
    /* the statement and its answer */
    gw_sql_t sql;
    gw_apireq_mode_t mode;
    char new_token[CMN_TOKEN_LEN + 1];  /* POST /tokens: answered once */
    int policy_changed;
    char device[CMN_DEVICE_ID_LEN + 1];
    /* the fault recorded by gw_apireq_fail */
    int fail_status;
    const char *fail_field;
    char fail_msg[512];
};

/* A request of req (its source set by the caller); NULL when out of memory. */
gw_apireq_t *gw_apireq_new(struct evhttp_request *req);
/* Watches for the client going away while the request waits. */
void gw_apireq_async_begin(gw_apireq_t *r);

/* ---- faults and answers ---------------------------------------------------
 * Records a fault (HTTP status, the field at fault or NULL, the message)
 * and returns GW_EINVAL (GW_EDB for a status of 503), so that a check is
 * written `return gw_apireq_fail(r, 400, "kid", "...");`. */
int gw_apireq_fail(gw_apireq_t *r, int status, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Answers the recorded fault ({"error": msg, "field": field}) and frees r. */
void gw_apireq_answer_fail(gw_apireq_t *r);
/* Answers j (taken over; NULL: out of memory, 503) and frees r. */
void gw_apireq_answer_json(gw_apireq_t *r, int status, json_t *j);

/* ---- input ------------------------------------------------------------------ */

/* A query parameter's value; NULL when absent or empty. */
const char *gw_apireq_q(gw_apireq_t *r, const char *key);
/* A decimal integer query parameter in [lo, hi], or def when absent. */
int gw_apireq_q_int(gw_apireq_t *r, const char *key, long lo, long hi, long def, long *out);
/* The body member key as 1 to max printable characters; the fault
 * recorded when it is not. */
int gw_apireq_body_str(gw_apireq_t *r, const char *key, size_t max, const char **out);
/* Path segment i (after /api/v1/) as a device id into r->device. */
int gw_apireq_device_arg(gw_apireq_t *r, int i);

/* ---- the statement ---------------------------------------------------------- */

/* The first three parameters of every admin_* write function: the token,
 * the actor and the client's address. */
void gw_apireq_who(gw_apireq_t *r);
/* Runs sql with values on the admin pool, cb(r, ...) with its answer.
 * Its deadline is [admin] statement_timeout plus one second (the server's
 * own statement_timeout comes first); past it, or when the client goes
 * away, the statement is cancelled (gw_db_expire). GW_OK, or the fault
 * recorded (503: the pool not connected or its queue full). */
int gw_apireq_query(gw_apireq_t *r, const char *sql, int nparams, const char *const *values,
                    gw_db_cb cb) __attribute__((warn_unused_result));
/* Records the fault of a statement that failed with err: 504 when it ran
 * past the statement timeout (and was cancelled), else 503. */
int gw_apireq_db_fail(gw_apireq_t *r, int err);
/* Runs sql with r->sql's parameters on the admin pool; the answer, in the
 * way mode says, goes to the client and frees r. GW_OK, or a fault
 * recorded (a parameter that did not fit, the pool not connected). */
int gw_apireq_run(gw_apireq_t *r, gw_apireq_mode_t mode, const char *sql)
    __attribute__((warn_unused_result));

#endif
