/* gw_err: error codes of the gateway (see gw_err.h). */
#include "gw_err.h"

const char *gw_strerror(int err)
{
    switch (err) {
    case GW_OK: return "success";
    case GW_ENOMEM: return "out of memory";
    case GW_EINVAL: return "invalid value";
    case GW_ECONFIG: return "configuration error";
    case GW_EIO: return "I/O error";
    case GW_ETLS: return "TLS error";
    case GW_EDB: return "database error";
    case GW_EDNS: return "DNS update failed";
    case GW_ECLOSED: return "shutting down";
    case GW_EBUSY: return "queue full";
    case GW_ETIMEDOUT: return "timed out";
    case GW_ENOSPC: return "too large";
    default: return "unknown error";
    }
}
