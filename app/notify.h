/*
 * systemd's readiness protocol (sd_notify(3)), the part daosblk-tgt needs: when the service manager
 * set NOTIFY_SOCKET (a unit with Type=notify), send it "READY=1" once the target serves, and
 * "STOPPING=1" when the shutdown starts. Without NOTIFY_SOCKET nothing is sent.
 */
#ifndef DBK_APP_NOTIFY_H
#define DBK_APP_NOTIFY_H

/*
 * Send STATE (newline-separated KEY=VALUE lines, e.g. "READY=1\nSTATUS=serving") as one datagram to
 * $NOTIFY_SOCKET. Returns 1 when sent, 0 when NOTIFY_SOCKET is not set, or a negative errno (bad
 * address, send failed); failures are also printed once on stderr. Never blocks for long.
 */
int dbk_notify(const char *state);

#endif
