/* cmn_text: small text helpers the programs share.
 *
 * Owns trimming the end of a NUL-terminated string in place: the line ends
 * of messages from libraries (libpq's end with '\n') and of lines read
 * from files; hashing a string for a hash table; and writing a formatted
 * error message into a caller's buffer. */
#ifndef CMN_TEXT_H
#define CMN_TEXT_H

#include <stddef.h>
#include <stdint.h>

/* Removes every trailing character of s that is in set; returns the new
 * length of s. */
size_t cmn_rtrim(char *s, const char *set);

/* FNV-1a of the NUL-terminated s, for the programs' hash tables of
 * names and ids (not for anything an attacker's choice of keys could
 * slow down beyond a table's probe limit). */
uint64_t cmn_hash(const char *s);

/* Formats a message into err (errlen bytes, truncated); nothing when err
 * is NULL or errlen 0. */
void cmn_errf(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
