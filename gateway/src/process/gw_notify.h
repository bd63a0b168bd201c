/* gw_notify: readiness notifications to the service manager.
 *
 * Owns the systemd notification protocol (sd_notify(3)) without libsystemd:
 * when NOTIFY_SOCKET names a Unix datagram socket (a path, or "@name" for
 * the abstract namespace), each state is sent to it as one datagram:
 * "READY=1" once every listener is bound, "RELOADING=1" with
 * "MONOTONIC_USEC=..." when a SIGHUP reload begins and "READY=1" when it
 * ends, "STOPPING=1" when the graceful stop begins, each with a STATUS=
 * line. Without NOTIFY_SOCKET nothing is sent. Use Type=notify-reload
 * (systemd 253 and later) or Type=notify with ExecReload=kill -HUP $MAINPID. */
#ifndef GW_NOTIFY_H
#define GW_NOTIFY_H

/* Sends state (lines "KEY=value" separated by LF). Returns GW_OK,
 * GW_EINVAL when NOTIFY_SOCKET is unset or unusable, or GW_EIO when the
 * datagram could not be sent. */
int gw_notify(const char *state);

#endif
