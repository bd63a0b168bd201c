/* ddns_error: names of the error codes and result tokens, for logs
 * (optional module: firmware that does not log them leaves it out). */
#include "ddns_internal.h"
#include "ddns_error.h"

/* In the order of ddns_err_t, each ended by NUL; "?" after the last. */
static const char names[] =
    "ok\0null\0buffer\0host\0user-agent\0device-id\0device-id-zero\0device-id-multicast\0"
    "kid\0ts\0ipv4\0ipv6\0secret\0password\0resp-format\0resp-token\0resp-status\0"
    "resp-data\0http-incomplete\0http-syntax\0http-length\0options\0peer\0?";

/* The result tokens in the order of ddns_result_t, each ended by NUL. */
static const char tokens[] =
    "\0good\0nochg\0badaddr\0badrequest\0badauth\0badtime\0disabled\0notfound\0replay\0ratelimit\0"
    "911\0badagent\0moved";

/* The n-th string (from 0) of the NUL-separated list s, or its last one
 * when there are fewer. */
static const char *nth(const char *s, unsigned n)
{
    while (n-- > 0 && s[1] != '\0')
        while (*s++ != '\0')
            ;
    return s;
}

const char *ddns_strerror(ddns_err_t err)
{
    return nth(names, (unsigned)err);
}

const char *ddns_result_token(ddns_result_t r)
{
    return (unsigned)r < 14u ? nth(tokens, (unsigned)r) : tokens;
}
