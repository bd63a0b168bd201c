/* cmn_text: small text helpers the programs share.
 *
 * Owns trimming the end of a NUL-terminated string in place: the line ends
 * of messages from libraries (libpq's end with '\n') and of lines read
 * from files. */
#ifndef CMN_TEXT_H
#define CMN_TEXT_H

#include <stddef.h>

/* Removes every trailing character of s that is in set; returns the new
 * length of s. */
size_t cmn_rtrim(char *s, const char *set);

#endif
