/*
 * svcctl_etcd: apply/delete Services in cluster mode (svcctl_etcd.c).
 */
#ifndef SVCCTL_ETCD_H
#define SVCCTL_ETCD_H

#include <stdbool.h>
#include <stdint.h>
#include "svcd/model.h"

struct svcctl_etcd_opts {
    const char *endpoints;            /* comma-separated URLs */
    const char *file;                 /* manifest file, "-" = stdin */
    const char *cafile, *certfile, *keyfile;   /* or NULL */
    struct svcd_cidr service_cidr;    /* ClusterIPs come from here */
    uint16_t np_lo, np_hi;            /* nodePort range */
};

/* Applies (del false) or deletes every Service of o->file. Prints one line
 * per Service as kubectl does; returns the exit status (0, or 1 when any
 * failed). */
int svcctl_etcd_run(const struct svcctl_etcd_opts *o, bool del);

#endif
