/* gw_notify: sd_notify datagrams (see gw_notify.h). */
#include "gw_notify.h"

#include "gw_err.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int gw_notify(const char *state)
{
    const char *path = getenv("NOTIFY_SOCKET");
    struct sockaddr_un sun;
    if (path == NULL || (path[0] != '/' && path[0] != '@'))
        return GW_EINVAL;
    size_t pl = strlen(path);
    if (pl >= sizeof sun.sun_path)
        return GW_EINVAL;
    memset(&sun, 0, sizeof sun);
    sun.sun_family = AF_UNIX;
    memcpy(sun.sun_path, path, pl);
    if (path[0] == '@')
        sun.sun_path[0] = '\0';     /* abstract namespace */
    socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + pl);
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return GW_EIO;
    ssize_t n = sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sun, len);
    close(fd);
    return n == (ssize_t)strlen(state) ? GW_OK : GW_EIO;
}
