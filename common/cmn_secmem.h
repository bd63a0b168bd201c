/* cmn_secmem: memory for secrets (master keys).
 *
 * Owns where key bytes live while a process holds them: whole pages of an
 * anonymous mapping of their own, locked in RAM (mlock: never written to
 * swap; best effort, the result is reported), left out of core dumps
 * (MADV_DONTDUMP) and of a forked child (MADV_WIPEONFORK), and wiped
 * before they are unmapped. Also the process-wide part: a process that
 * holds keys makes itself non-dumpable (no core file, no ptrace or
 * /proc/PID/mem by other users). Linux. */
#ifndef CMN_SECMEM_H
#define CMN_SECMEM_H

#include <stddef.h>

/* A zeroed region of at least n bytes (n > 0), or NULL. *locked (may be
 * NULL) says whether mlock succeeded (RLIMIT_MEMLOCK can refuse it). */
void *cmn_secmem_alloc(size_t n, int *locked);
/* Wipes and unmaps a region of cmn_secmem_alloc(n); NULL is ignored. */
void cmn_secmem_free(void *p, size_t n);
/* Makes the process non-dumpable (prctl PR_SET_DUMPABLE 0) and its core
 * file size 0. Returns 0, or -1 with errno when the process stays dumpable. */
int cmn_secmem_protect_process(void);

#endif
