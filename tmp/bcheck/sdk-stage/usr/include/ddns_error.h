/* ddns_error.h: names of error codes and result tokens for logs
 * (ddns_error.c, optional: firmware that does not log them leaves it
 * out). */
#ifndef DDNS_ERROR_H
#define DDNS_ERROR_H

#include "ddns_sdk.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * Name of an error code.
 * @param[in] err  the code
 * @return "ok", "host", "resp-data", ...; "?" for a value outside the list;
 *         never NULL
 */
const char *ddns_strerror(ddns_err_t err);

/**
 * Protocol token of a result.
 * @param[in] r  the result
 * @return "good", ..., "911"; "" for DDNS_RESULT_NONE and values outside
 *         the list; never NULL
 */
const char *ddns_result_token(ddns_result_t r);

#ifdef __cplusplus
}
#endif

#endif /* DDNS_ERROR_H */
