/*
 * process_metrics: the process_* series every Prometheus client library
 * exports (names and meanings as in client_golang's process collector), so
 * that dashboards made for other daemons work for svcd. Read at scrape time
 * from /proc/self and getrlimit(); nothing is sampled in between.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "svcd/metrics.h"

enum proc_metric { PM_CPU, PM_RSS, PM_VSZ, PM_OPEN_FDS, PM_MAX_FDS, PM_START };

static double proc_start_time;   /* computed once at registration */

/* Reads /proc/self/statm: size and resident, in pages. */
static int proc_statm(double *vsz, double *rss)
{
    FILE *f = fopen("/proc/self/statm", "re");
    unsigned long size = 0, res = 0;
    int n = f ? fscanf(f, "%lu %lu", &size, &res) : 0;
    if (f)
        fclose(f);
    if (n != 2)
        return -1;
    double page = (double)sysconf(_SC_PAGESIZE);
    *vsz = (double)size * page;
    *rss = (double)res * page;
    return 0;
}

static double proc_open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return 0;
    double n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] != '.')
            n++;
    }
    closedir(d);
    return n - 1;   /* the directory's own fd */
}

/* Start time = boot time (btime of /proc/stat) + starttime (field 22 of
 * /proc/self/stat, in clock ticks since boot). */
static double proc_compute_start_time(void)
{
    char buf[1024];
    unsigned long long btime = 0, ticks = 0;
    FILE *f = fopen("/proc/stat", "re");
    while (f && fgets(buf, sizeof(buf), f)) {
        if (sscanf(buf, "btime %llu", &btime) == 1)
            break;
    }
    if (f)
        fclose(f);
    f = fopen("/proc/self/stat", "re");
    size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
    if (f)
        fclose(f);
    buf[n] = '\0';
    /* fields after the command name, which may hold spaces and ')' */
    const char *p = strrchr(buf, ')');
    if (!p || !btime)
        return 0;
    /* p+2 is field 3 (state); starttime is field 22 */
    p += 2;
    for (int field = 3; field < 22 && *p; field++) {
        p = strchr(p, ' ');
        if (!p)
            return 0;
        p++;
    }
    ticks = strtoull(p, NULL, 10);
    return (double)btime + (double)ticks / (double)sysconf(_SC_CLK_TCK);
}

static double proc_read(void *ctx)
{
    enum proc_metric which = (enum proc_metric)(long)ctx;
    double vsz = 0, rss = 0;
    switch (which) {
    case PM_CPU: {
        struct rusage ru;
        if (getrusage(RUSAGE_SELF, &ru) != 0)
            return 0;
        return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
               (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
    }
    case PM_RSS:
        return proc_statm(&vsz, &rss) == 0 ? rss : 0;
    case PM_VSZ:
        return proc_statm(&vsz, &rss) == 0 ? vsz : 0;
    case PM_OPEN_FDS:
        return proc_open_fds();
    case PM_MAX_FDS: {
        struct rlimit rl;
        if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
            return 0;
        return rl.rlim_cur == RLIM_INFINITY ? 0 : (double)rl.rlim_cur;
    }
    case PM_START:
        return proc_start_time;
    }
    return 0;
}

void metrics_register_process(void)
{
    proc_start_time = proc_compute_start_time();
    metric_counter_fn("process_cpu_seconds_total", NULL,
                      "Total user and system CPU time spent in seconds.", proc_read,
                      (void *)(long)PM_CPU);
    metric_gauge_fn("process_resident_memory_bytes", NULL, "Resident memory size in bytes.",
                    proc_read, (void *)(long)PM_RSS);
    metric_gauge_fn("process_virtual_memory_bytes", NULL, "Virtual memory size in bytes.",
                    proc_read, (void *)(long)PM_VSZ);
    metric_gauge_fn("process_open_fds", NULL, "Number of open file descriptors.", proc_read,
                    (void *)(long)PM_OPEN_FDS);
    metric_gauge_fn("process_max_fds", NULL, "Maximum number of open file descriptors.",
                    proc_read, (void *)(long)PM_MAX_FDS);
    metric_gauge_fn("process_start_time_seconds", NULL,
                    "Start time of the process since unix epoch in seconds.", proc_read,
                    (void *)(long)PM_START);
}
