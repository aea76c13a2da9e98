/*
 * privs: svcd keeps only the capabilities it needs once it has started.
 *
 * Everything that needs more (binding the listeners, reading the first
 * state) happens before svcd_privs_drop(); afterwards the process has, in
 * its permitted and effective sets and in its bounding set, only
 * SVCD_PRIVS_KEEP (docs/ADMIN.md lists why each is needed). Inheritable and
 * ambient sets are empty, so commands run by exec probes get none.
 */
#include "svcd/privs.h"

#include <errno.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/prctl.h>

#include "svcd/log.h"

static const cap_value_t svcd_privs_keep[] = {
    CAP_NET_ADMIN,         /* nftables, conntrack, nftables events */
    CAP_NET_BIND_SERVICE,  /* DNS on port 53 (listeners are bound before, kept for SIGHUP) */
    CAP_SYS_ADMIN,         /* exec probes: setns() into the pod's network namespace */
    CAP_SYS_PTRACE,        /* ... opening /proc/PID/ns/net of a pod's process */
    CAP_SETUID,            /* exec probes run as uid 65534 */
    CAP_SETGID,            /* ... and gid 65534, no supplementary groups */
    CAP_KILL,              /* timed-out probe commands run under another uid */
    CAP_DAC_READ_SEARCH,   /* manifests and config files of other owners */
};
#define SVCD_PRIVS_N (sizeof(svcd_privs_keep) / sizeof(svcd_privs_keep[0]))

static bool svcd_privs_kept(cap_value_t c)
{
    for (size_t i = 0; i < SVCD_PRIVS_N; i++)
        if (svcd_privs_keep[i] == c)
            return true;
    return false;
}

int svcd_privs_drop(void)
{
    cap_t cur = cap_get_proc();
    if (!cur)
        return -1;
    /* the bounding set first: it needs CAP_SETPCAP, which goes next */
    for (cap_value_t c = 0; c <= CAP_LAST_CAP; c++) {
        if (!svcd_privs_kept(c) && CAP_IS_SUPPORTED(c) && cap_get_bound(c) == 1 &&
            cap_drop_bound(c) < 0 && errno != EPERM)
            log_debug("privs", "cannot drop capability %d from the bounding set: %s", c,
                      strerror(errno));
    }
    cap_t next = cap_init();
    int rc = -1;
    if (!next)
        goto out;
    for (size_t i = 0; i < SVCD_PRIVS_N; i++) {
        cap_flag_value_t v = CAP_CLEAR;
        if (cap_get_flag(cur, svcd_privs_keep[i], CAP_PERMITTED, &v) == 0 && v == CAP_SET) {
            cap_set_flag(next, CAP_PERMITTED, 1, &svcd_privs_keep[i], CAP_SET);
            cap_set_flag(next, CAP_EFFECTIVE, 1, &svcd_privs_keep[i], CAP_SET);
        }
    }
    rc = cap_set_proc(next);
    if (rc == 0)
        (void)prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
out:
    if (rc < 0)
        log_warn("privs", "cannot drop capabilities: %s", strerror(errno));
    if (next)
        cap_free(next);
    cap_free(cur);
    return rc;
}
