/* cmn_text: small text helpers the programs share.
 *
 * Owns trimming the end of a NUL-terminated string in place: the line ends
 * of messages from libraries (libpq's end with '\n') and of lines read
 * from files; and writing a formatted error message into a caller's
 * buffer. */
#ifndef CMN_TEXT_H
#define CMN_TEXT_H

#include <stddef.h>

/* Removes every trailing character of s that is in set; returns the new
 * length of s. */
size_t cmn_rtrim(char *s, const char *set);

/* Formats a message into err (errlen bytes, truncated); nothing when err
 * is NULL or errlen 0. */
void cmn_errf(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
