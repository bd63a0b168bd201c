/* ddns_internal.h: helpers shared by the SDK modules; not installed.
 *
 * Internal names use the prefix ddns__ (double underscore) so that they can
 * never clash with the public ddns_ API. */
#ifndef DDNS_INTERNAL_H
#define DDNS_INTERNAL_H

#include "ddns_sdk.h"

/* Lowercase hexadecimal digits, indexed by nibble. */
extern const char ddns__hex_digits[16];

/* Value of a lowercase hex digit, or -1. */
static inline int ddns__lower_hex_value(uint8_t c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

static inline bool ddns__is_digit(uint8_t c)
{
    return c >= '0' && c <= '9';
}

#endif /* DDNS_INTERNAL_H */
