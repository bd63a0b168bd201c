/* cmn_io: file descriptor helpers the programs share.
 *
 * Owns writing a whole buffer to a descriptor (pipes, sockets and files
 * take partial writes and interruptions). */
#ifndef CMN_IO_H
#define CMN_IO_H

#include <stddef.h>

/* Writes len bytes of data to fd, again after EINTR and short writes.
 * Returns 0, or -1 with errno (0 when the descriptor took nothing). */
int cmn_write_all(int fd, const void *data, size_t len);

#endif
