/* gw_err: the one error enum of the gateway.
 *
 * Every gateway function that can fail returns 0 (GW_OK) or one of the
 * negative codes below; gw_strerror() gives a short English phrase. */
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
