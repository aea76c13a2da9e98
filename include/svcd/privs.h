/*
 * privs: least privilege for the daemon (src/daemon/privs.c).
 */
#ifndef SVCD_PRIVS_H
#define SVCD_PRIVS_H

#include <stdbool.h>

/* Keeps only the capabilities svcd needs after start-up (NET_ADMIN,
 * NET_BIND_SERVICE, SYS_ADMIN, SYS_PTRACE, SETUID, SETGID, KILL,
 * DAC_READ_SEARCH; those it had), in the permitted, effective and bounding
 * sets; clears inheritable and ambient. Returns 0, or -1 (logged). */
int svcd_privs_drop(void);

#endif
