/* cmn_secmem: memory for secrets (see cmn_secmem.h). */
#include "cmn_secmem.h"

#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <openssl/crypto.h>

static size_t cmn_secmem_size(size_t n)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    return (n + page - 1) / page * page;
}

void *cmn_secmem_alloc(size_t n, int *locked)
{
    if (locked != NULL)
        *locked = 0;
    if (n == 0)
        return NULL;
    size_t sz = cmn_secmem_size(n);
    void *p = mmap(NULL, sz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    if (madvise(p, sz, MADV_DONTDUMP) != 0) {
        munmap(p, sz);
        return NULL;
    }
#ifdef MADV_WIPEONFORK
    (void)madvise(p, sz, MADV_WIPEONFORK);
#endif
    int ok = mlock(p, sz) == 0;
    if (locked != NULL)
        *locked = ok;
    return p;
}

void cmn_secmem_free(void *p, size_t n)
{
    if (p == NULL || n == 0)
        return;
    size_t sz = cmn_secmem_size(n);
    OPENSSL_cleanse(p, sz);
    (void)munlock(p, sz);
    munmap(p, sz);
}

int cmn_secmem_protect_process(void)
{
    struct rlimit none = {0, 0};
    (void)setrlimit(RLIMIT_CORE, &none);
    return prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == 0 ? 0 : -1;
}
