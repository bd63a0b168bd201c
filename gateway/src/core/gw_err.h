/* gw_err: the one error enum of the gateway, and its convention.
 *
 * Every gateway function that can fail returns 0 (GW_OK) or one of the
 * negative codes below, and the caller passes a failure on with
 * `if (rc != GW_OK) return rc;` (or goes to its one cleanup label);
 * gw_strerror() gives a short English phrase. Where a failure must reach a
 * client, the function records what to answer (gw_req_refuse in the
 * device listener, gw_apireq_fail in the admin API) and returns its code:
 * no helper both fails and answers; the dispatcher answers once.
 *
 * Three kinds of functions answer otherwise, each saying so where it is
 * declared: pure predicates and parsers give a verdict (1/0, 0/-1, or a
 * verdict enum such as gw_auth_verdict_t); functions that make a file
 * descriptor return it or -1 with errno, as the system calls do; and
 * callbacks of libevent, OpenSSL or libinih return what those libraries
 * ask for. */
#ifndef GW_ERR_H
#define GW_ERR_H

typedef enum gw_err {
    GW_OK = 0,
    GW_ENOMEM = -1,     /* out of memory */
    GW_EINVAL = -2,     /* invalid argument or value */
    GW_ECONFIG = -3,    /* configuration error */
    GW_EIO = -4,        /* file or socket I/O error */
    GW_ETLS = -5,       /* TLS library error */
    GW_EDB = -6,        /* PostgreSQL error */
    GW_EDNS = -7,       /* DNS update refused or not confirmed */
    GW_ECLOSED = -8,    /* component is shutting down */
    GW_EBUSY = -9,      /* queue full */
    GW_ETIMEDOUT = -10, /* operation timed out */
    GW_ENOSPC = -11,    /* does not fit in its buffer (nothing is truncated) */
} gw_err_t;

const char *gw_strerror(int err);

#endif
