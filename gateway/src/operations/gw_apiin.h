/* gw_apiin: the forms of the admin API's input values.
 *
 * Owns what a time, a duration, a printable text, a DNS label and a MAC
 * fragment look like in a query or a body (docs/ADMIN-API.md), and the
 * escaping of a LIKE pattern. Pure functions, no I/O; each answers yes or
 * no, and the caller says what was wrong and where. */
#ifndef GW_APIIN_H
#define GW_APIIN_H

#include <stddef.h>

/* 1 when s is a time: YYYY-MM-DD, optionally followed by [T ]HH:MM[:SS[.frac]]
 * and Z or +HH[:MM] / -HH[:MM]. */
int gw_apiin_time_ok(const char *s);
/* "30d", "12h", "90m", "3600s" or "3600" in seconds (at most ten years);
 * -1 otherwise. */
long gw_apiin_duration(const char *s);
/* 1 when s is 1 to max bytes of text without control characters. */
int gw_apiin_text_ok(const char *s, size_t max);
/* 1 when s[0..n) is a DNS label of the names table: 1-63 of [a-z0-9-], no
 * '-' at either end. */
int gw_apiin_label_ok(const char *s, size_t n);
/* The hex digits of a MAC fragment (separators ':', '-', '.' dropped, 2 to
 * 12 digits, lowercase) into out (13 bytes); 0, or -1 when s is not one. */
int gw_apiin_mac_part(const char *s, char *out);
/* Escapes LIKE's special characters of in into out; 0, or -1 when the
 * result does not fit (out then holds nothing usable). */
int gw_apiin_like(const char *in, char *out, size_t outlen);

#endif
