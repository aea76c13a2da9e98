/*
 * manifest_dir: directory of Kubernetes manifests -> store, kept current
 * with inotify.
 *
 * Per file we keep the last good bytes and the keys ("Pod/ns/name") the
 * file defines. Per key we keep the sorted list of files that define it;
 * the first file wins. When the winner stops defining a key, the runner-up's
 * last good bytes are parsed again to take its object (objects are owned by
 * the store, so each upsert needs a fresh one).
 *
 * Events mark files dirty and arm a short timer; when it fires, every dirty
 * file is re-read and the whole round is one store batch.
 */
#include "svcd/manifest_dir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "svcd/alloc.h"
#include "svcd/hmap.h"
#include "svcd/log.h"
#include "svcd/manifest.h"
#include "svcd/metrics.h"
#include "svcd/store.h"
#include "svcd/vec.h"

#define MD_MAX_FILE (16u << 20)      /* refuse manifests over 16 MiB */
#define MD_SETTLE_US 2000            /* coalescing delay after an event */
#define MD_GONE_MS 250               /* a missing file's objects go after this
                                        (editors rename FILE away, then write it) */

enum md_kind { MD_SERVICE = 0, MD_POD, MD_SLICE };
static const char *const md_kind_names[] = { "Service", "Pod", "EndpointSlice" };

/* Something wrong with a file or one of its objects, for `svcctl status`. */
struct md_problem {
    char *object;            /* "Service default/web", or NULL for the whole file */
    const char *reason;      /* "invalid", "allocation" or "file" */
    char *message;
};

struct md_file {
    char *name;              /* path relative to the directory */
    char *good;              /* last good content (NUL-terminated) or NULL */
    size_t good_len;
    char **keys;             /* keys defined by the last good content */
    size_t n_keys;
    bool dirty;
    bool force;              /* re-apply even if the content is unchanged */
    bool failing;            /* last read failed to parse/validate */
    bool gone_pending;       /* missing once; removed if still missing later */
    struct md_problem *problems;
    size_t n_problems, cap_problems;
    char **warned;           /* warnings logged for the current content */
    size_t n_warned;
};

/* Files that define one key, sorted by name; [0] wins. */
struct md_definers {
    char **files;
    size_t n;
};

/* A pod whose file went away, terminating until its grace period ends. */
struct md_grace {
    struct manifest_dir *md;
    struct event *ev;
    char *key;
    struct md_grace *next;
};

struct manifest_dir {
    struct event_base *base;
    struct store *st;
    char *dir;
    int ifd, wd;             /* wd: the directory itself */
    struct hmap *wds;        /* watch descriptor (binary int) -> relative dir ("" = top) */
    struct event *ev_inotify;
    struct event *ev_settle;
    struct event *ev_gone;
    struct event *ev_rewatch;   /* while the directory is gone: look for it */
    bool lost;                  /* the watched directory was moved or removed */
    char dir_error[192];        /* why the directory cannot be read, or "" (readyz) */
    struct hmap *files;      /* name -> md_file */
    struct hmap *keys;       /* key -> md_definers */
    bool loaded;
    bool rescan_pending;
    struct md_grace *graces;
    struct alloc *al;        /* or NULL: Services are taken as they are */
    char *state_dir;
    bool unseen_released;    /* allocations of vanished Services released */
    struct event *ev_retry;  /* state write failed: try again */
    struct metric *m_state_writes, *m_state_errors;
    struct metric *m_rej_invalid, *m_rej_alloc;
    struct metric *m_errors, *m_loads, *m_conflicts, *m_failing;
    struct metric *m_load_seconds;
    struct metric *m_last_sync;
};

/* ---- helpers ------------------------------------------------------------- */

static bool md_wanted(const char *path)
{
    const char *name = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    if (name[0] == '.' || name[0] == '\0')
        return false;
    size_t n = strlen(name);
    static const char *const suffixes[] = { ".yaml", ".yml", ".json" };
    for (size_t i = 0; i < 3; i++) {
        size_t s = strlen(suffixes[i]);
        if (n > s && strcmp(name + n - s, suffixes[i]) == 0)
            return true;
    }
    return false;
}

static void md_key(char *buf, size_t len, enum md_kind kind, const struct svcd_meta *m)
{
    snprintf(buf, len, "%s/%s/%s", md_kind_names[kind], m->ns, m->name);
}

static struct md_file *md_file_get(struct manifest_dir *md, const char *name, bool create)
{
    struct md_file *f = hmap_get(md->files, name);
    if (f || !create)
        return f;
    f = calloc(1, sizeof(*f));
    if (!f || !(f->name = strdup(name)) || hmap_set(md->files, name, f) < 0) {
        if (f)
            free(f->name);
        free(f);
        return NULL;
    }
    return f;
}

static void md_file_free_keys(struct md_file *f)
{
    for (size_t i = 0; i < f->n_keys; i++)
        free(f->keys[i]);
    free(f->keys);
    f->keys = NULL;
    f->n_keys = 0;
}

static void md_problems_clear(struct md_file *f)
{
    for (size_t i = 0; i < f->n_problems; i++) {
        free(f->problems[i].object);
        free(f->problems[i].message);
    }
    f->n_problems = 0;
}

/* Records a problem (object may be NULL); ENOMEM drops it. */
static void md_problem_add(struct md_file *f, const char *object, const char *reason,
                           const char *message)
{
    if (VEC_RESERVE(f->problems, f->n_problems, f->cap_problems, 4) < 0)
        return;
    struct md_problem *p = &f->problems[f->n_problems];
    p->object = object ? strdup(object) : NULL;
    p->reason = reason;
    p->message = strdup(message);
    if (!p->message) {
        free(p->object);
        return;
    }
    f->n_problems++;
}

static void md_warned_clear(struct md_file *f)
{
    for (size_t i = 0; i < f->n_warned; i++)
        free(f->warned[i]);
    free(f->warned);
    f->warned = NULL;
    f->n_warned = 0;
}

/* Logs the warnings of a new version of f that its last one did not have
 * (each ignored workload is named once, not at every edit of the file). */
static void md_warn_new(struct md_file *f, char **warnings, size_t n)
{
    char **now = calloc(n ? n : 1, sizeof(*now));
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        bool old = false;
        for (size_t j = 0; j < f->n_warned && !old; j++)
            old = strcmp(f->warned[j], warnings[i]) == 0;
        if (!old)
            log_warn("manifests", "%s: %s", f->name, warnings[i]);
        if (now && (now[k] = strdup(warnings[i])))
            k++;
    }
    md_warned_clear(f);
    f->warned = now;
    f->n_warned = now ? k : 0;
}

static void md_file_free(struct md_file *f)
{
    md_file_free_keys(f);
    md_problems_clear(f);
    free(f->problems);
    md_warned_clear(f);
    free(f->good);
    free(f->name);
    free(f);
}

/* Reads dir/name whole. Returns 0, -ENOENT when gone, other -errno. */
static int md_read(const struct manifest_dir *md, const char *name, char **out, size_t *len)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/%s", md->dir, name);
    /* O_NONBLOCK: opening a FIFO must not wait for a writer. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return -errno;
    struct stat sb;
    if (fstat(fd, &sb) < 0) {
        int e = -errno;
        close(fd);
        return e;
    }
    if (!S_ISREG(sb.st_mode)) {
        close(fd);
        return S_ISDIR(sb.st_mode) ? -EISDIR : -EINVAL;
    }
    if ((size_t)sb.st_size > MD_MAX_FILE) {
        close(fd);
        return -EFBIG;
    }
    char *buf = malloc((size_t)sb.st_size + 1);
    if (!buf) {
        close(fd);
        return -ENOMEM;
    }
    size_t got = 0;
    for (;;) {
        if (got == (size_t)sb.st_size) {
            /* grew while reading: take what fits, the next event re-reads */
            break;
        }
        ssize_t r = read(fd, buf + got, (size_t)sb.st_size - got);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            int e = -errno;
            free(buf);
            close(fd);
            return e;
        }
        if (r == 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    buf[got] = '\0';
    *out = buf;
    *len = got;
    return 0;
}

/* ---- definers ------------------------------------------------------------ */

static int md_cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Adds file to key's definers; returns the winner's name (owned by the
 * definers list), or NULL on ENOMEM. */
static const char *md_definers_add(struct manifest_dir *md, const char *key, const char *file)
{
    struct md_definers *d = hmap_get(md->keys, key);
    if (!d) {
        d = calloc(1, sizeof(*d));
        if (!d || hmap_set(md->keys, key, d) < 0) {
            free(d);
            return NULL;
        }
    }
    for (size_t i = 0; i < d->n; i++)
        if (strcmp(d->files[i], file) == 0)
            return d->files[0];
    char **files = realloc(d->files, (d->n + 1) * sizeof(*files));
    if (!files)
        return NULL;
    d->files = files;
    if (!(d->files[d->n] = strdup(file)))
        return NULL;
    d->n++;
    qsort(d->files, d->n, sizeof(*d->files), md_cmp_str);
    return d->files[0];
}

/* Removes file from key's definers. Returns true when file was the winner;
 * *next is then the new winner (or NULL when nobody defines key now). */
static bool md_definers_remove(struct manifest_dir *md, const char *key, const char *file,
                               const char **next)
{
    struct md_definers *d = hmap_get(md->keys, key);
    *next = NULL;
    if (!d)
        return false;
    bool was_winner = false;
    for (size_t i = 0; i < d->n; i++) {
        if (strcmp(d->files[i], file) == 0) {
            was_winner = i == 0;
            free(d->files[i]);
            memmove(&d->files[i], &d->files[i + 1], (d->n - i - 1) * sizeof(*d->files));
            d->n--;
            break;
        }
    }
    if (d->n == 0) {
        hmap_del(md->keys, key);
        free(d->files);
        free(d);
        return was_winner;
    }
    *next = d->files[0];
    return was_winner;
}

/* ---- applying ------------------------------------------------------------ */

/* Allocates what the Service lacks (clusterIP, nodePorts). On a
 * rejection the Service's previous version stays in the store. */
static bool md_allocate(struct manifest_dir *md, const char *file, struct svcd_service *svc)
{
    char err[512];
    if (md->al && alloc_service(md->al, svc, err, sizeof(err)) < 0) {
        char obj[600];
        struct md_file *f = md_file_get(md, file, false);
        snprintf(obj, sizeof(obj), "Service %s/%s", svc->meta.ns, svc->meta.name);
        log_err("manifests", "%s: %s: %s; %s", file, obj, err,
                store_service_get(md->st, svc->meta.ns, svc->meta.name)
                    ? "its last good version stays" : "not served");
        if (f)
            md_problem_add(f, obj, "allocation", err);
        return false;
    }
    if (!svc->headless && svc->type != SVCD_SVC_EXTERNAL_NAME && svc->n_cluster_ips == 0)
        log_warn("manifests", "%s: Service %s/%s has no clusterIP and there is no "
                 "--service-cidr to allocate one from: it gets no VIP", file, svc->meta.ns,
                 svc->meta.name);
    return true;
}

/* Hands one parsed object to the store (taking it out of objs). */
static void md_upsert(struct manifest_dir *md, struct manifest_objs *objs, enum md_kind kind,
                      size_t i, const char *file)
{
    switch (kind) {
    case MD_SERVICE:
        if (md_allocate(md, file, objs->services[i]))
            store_service_upsert(md->st, objs->services[i]);
        else
            model_service_free(objs->services[i]);
        objs->services[i] = NULL;
        break;
    case MD_POD:
        store_pod_upsert(md->st, objs->pods[i]);
        objs->pods[i] = NULL;
        break;
    case MD_SLICE:
        store_slice_upsert(md->st, objs->slices[i]);
        objs->slices[i] = NULL;
        break;
    }
}

static const struct svcd_meta *md_obj_meta(const struct manifest_objs *o, enum md_kind k,
                                           size_t i)
{
    switch (k) {
    case MD_SERVICE: return &o->services[i]->meta;
    case MD_POD: return &o->pods[i]->meta;
    case MD_SLICE: return &o->slices[i]->meta;
    }
    return NULL;
}

static size_t md_obj_count(const struct manifest_objs *o, enum md_kind k)
{
    return k == MD_SERVICE ? o->n_services : k == MD_POD ? o->n_pods : o->n_slices;
}

/* Takes key's object from winner file's last good content into the store. */
static void md_take_over(struct manifest_dir *md, const char *key, const char *winner)
{
    struct md_file *wf = md_file_get(md, winner, false);
    if (!wf || !wf->good)
        return;
    struct manifest_objs objs = { 0 };
    char err[512];
    if (manifest_parse_each(wf->good, wf->good_len, (int64_t)time(NULL), &objs, err,
                            sizeof(err)) < 0) {
        log_err("manifests", "%s: re-reading last good content failed: %s", winner, err);
        return;
    }
    for (int k = 0; k < 3; k++) {
        for (size_t i = 0; i < md_obj_count(&objs, (enum md_kind)k); i++) {
            char okey[600];
            md_key(okey, sizeof(okey), (enum md_kind)k, md_obj_meta(&objs, (enum md_kind)k, i));
            if (strcmp(okey, key) == 0) {
                log_info("manifests", "%s now defined by %s", key, winner);
                md_upsert(md, &objs, (enum md_kind)k, i, winner);
            }
        }
    }
    manifest_objs_free(&objs);
}

static void md_grace_unlink(struct manifest_dir *md, struct md_grace *g)
{
    for (struct md_grace **pp = &md->graces; *pp; pp = &(*pp)->next) {
        if (*pp == g) {
            *pp = g->next;
            break;
        }
    }
    event_free(g->ev);
    free(g->key);
    free(g);
}

/* Forgets pending grace periods of key (defined again, or deferred anew). */
static void md_grace_cancel(struct manifest_dir *md, const char *key)
{
    struct md_grace *g = md->graces;
    while (g) {
        struct md_grace *next = g->next;
        if (strcmp(g->key, key) == 0)
            md_grace_unlink(md, g);
        g = next;
    }
}

/* The grace period of a removed pod ended: delete it unless a file defines
 * it again. */
static void md_grace_cb(evutil_socket_t fd, short what, void *arg)
{
    struct md_grace *g = arg;
    struct manifest_dir *md = g->md;
    char ns[256], name[256];
    (void)fd; (void)what;
    if (!hmap_get(md->keys, g->key) &&
        sscanf(g->key, "Pod/%255[^/]/%255s", ns, name) == 2) {
        store_begin(md->st);
        if (store_pod_delete(md->st, ns, name) == 0)
            log_info("manifests", "%s: grace period over, removed", g->key);
        store_commit(md->st);
    }
    md_grace_unlink(md, g);
}

/* A pod removed from its file with annotation svcd.io/grace-period-seconds
 * stays as a terminating endpoint for that long. Returns true when the
 * deletion was deferred. */
static bool md_pod_defer(struct manifest_dir *md, const char *key, const char *ns,
                         const char *name)
{
    const struct svcd_pod *pod = store_pod_get(md->st, ns, name);
    const char *gp = pod ? svcd_kvmap_get(&pod->meta.annotations,
                                          "svcd.io/grace-period-seconds") : NULL;
    char *end;
    long secs = gp ? strtol(gp, &end, 10) : 0;
    if (!gp || *end || secs <= 0)
        return false;
    if (secs > 86400)
        secs = 86400;
    md_grace_cancel(md, key);
    struct md_grace *g = calloc(1, sizeof(*g));
    if (!g || !(g->key = strdup(key)) ||
        !(g->ev = evtimer_new(md->base, md_grace_cb, g))) {
        if (g)
            free(g->key);
        free(g);
        return false;
    }
    g->md = md;
    char ts[32];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
    store_pod_mark_terminating(md->st, ns, name, ts);
    struct timeval tv = { secs, 0 };
    evtimer_add(g->ev, &tv);
    g->next = md->graces;
    md->graces = g;
    log_info("manifests", "%s: removed from its file; terminating for %lds", key, secs);
    return true;
}

static void md_store_delete(struct manifest_dir *md, const char *key)
{
    char kind[32], ns[256], name[256];
    if (sscanf(key, "%31[^/]/%255[^/]/%255s", kind, ns, name) != 3)
        return;
    if (strcmp(kind, "Service") == 0) {
        store_service_delete(md->st, ns, name);
        if (md->al)
            alloc_release(md->al, ns, name);
    }
    else if (strcmp(kind, "Pod") == 0) {
        if (!md_pod_defer(md, key, ns, name))
            store_pod_delete(md->st, ns, name);
    } else
        store_slice_delete(md->st, ns, name);
}

/* f no longer defines key. */
static void md_drop_key(struct manifest_dir *md, struct md_file *f, const char *key)
{
    const char *next;
    if (!md_definers_remove(md, key, f->name, &next))
        return;
    if (next)
        md_take_over(md, key, next);
    else
        md_store_delete(md, key);
}

static bool md_has_key(char **keys, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(keys[i], key) == 0)
            return true;
    return false;
}

/* Applies a successfully parsed file: objs and content become its state.
 * A rejected object the file defined before keeps its key (and so its
 * last good version in the store). */
static void md_apply(struct manifest_dir *md, struct md_file *f, struct manifest_objs *objs,
                     char *content, size_t len)
{
    size_t total = objs->n_services + objs->n_pods + objs->n_slices + objs->n_rejects;
    char **keys = calloc(total ? total : 1, sizeof(*keys));
    size_t nk = 0;
    if (!keys) {
        log_err("manifests", "%s: out of memory", f->name);
        free(content);
        return;
    }
    for (int k = 0; k < 3; k++) {
        for (size_t i = 0; i < md_obj_count(objs, (enum md_kind)k); i++) {
            char key[600];
            md_key(key, sizeof(key), (enum md_kind)k, md_obj_meta(objs, (enum md_kind)k, i));
            keys[nk++] = strdup(key);
            const char *winner = md_definers_add(md, key, f->name);
            if (!winner) {
                log_err("manifests", "%s: out of memory", f->name);
                continue;
            }
            if (strcmp(winner, f->name) == 0) {
                struct md_definers *d = hmap_get(md->keys, key);
                if (d && d->n > 1) {
                    log_err("manifests", "%s: %s is also defined in %s; %s wins (first file "
                            "by name)", f->name, key, d->files[1], f->name);
                    metric_add(md->m_conflicts, 1);
                }
                if (k == MD_POD)
                    md_grace_cancel(md, key);
                md_upsert(md, objs, (enum md_kind)k, i, f->name);
            } else {
                log_err("manifests", "%s: %s is also defined in %s; %s wins (first file by "
                        "name), this definition is ignored", f->name, key, winner, winner);
                metric_add(md->m_conflicts, 1);
            }
        }
    }
    for (size_t i = 0; i < objs->n_rejects; i++) {
        const struct manifest_reject *rj = &objs->rejects[i];
        char key[600];
        if (!rj->kind || !rj->name || !rj->ns)
            continue;
        snprintf(key, sizeof(key), "%s/%s/%s", rj->kind, rj->ns, rj->name);
        if (md_has_key(f->keys, f->n_keys, key) && !md_has_key(keys, nk, key))
            keys[nk++] = strdup(key);
    }
    /* Keys the file defined before but not now: one hash of the new keys,
     * so that re-reading a 10k-object file costs linear time. */
    struct hmap *now = hmap_new();
    for (size_t i = 0; now && i < nk; i++)
        if (keys[i] && hmap_set(now, keys[i], (void *)1) < 0) {
            hmap_free(now);
            now = NULL;
        }
    for (size_t i = 0; i < f->n_keys; i++)
        if (!(now ? hmap_get(now, f->keys[i]) != NULL : md_has_key(keys, nk, f->keys[i])))
            md_drop_key(md, f, f->keys[i]);
    hmap_free(now);
    md_file_free_keys(f);
    f->keys = keys;
    f->n_keys = nk;
    free(f->good);
    f->good = content;
    f->good_len = len;
}

/* The file is gone: forget everything it defined. */
static void md_remove_file(struct manifest_dir *md, struct md_file *f)
{
    for (size_t i = 0; i < f->n_keys; i++)
        md_drop_key(md, f, f->keys[i]);
    if (f->n_keys)
        log_info("manifests", "%s: removed (%zu objects)", f->name, f->n_keys);
    hmap_del(md->files, f->name);
    md_file_free(f);
}

static void md_process_file(struct manifest_dir *md, struct md_file *f)
{
    char *content = NULL;
    size_t len = 0;
    f->dirty = false;
    f->force = false;
    int r = md_read(md, f->name, &content, &len);
    if ((r == -ENOENT || r == -EISDIR) && f->n_keys && !f->gone_pending) {
        f->gone_pending = true;          /* look again in MD_GONE_MS */
        struct timeval tv = { 0, MD_GONE_MS * 1000 };
        evtimer_add(md->ev_gone, &tv);
        return;
    }
    if (r == -ENOENT || r == -EISDIR) {
        md_remove_file(md, f);
        return;
    }
    f->gone_pending = false;
    if (r < 0) {
        char msg[300];
        snprintf(msg, sizeof(msg), "cannot read: %s", strerror(-r));
        log_err("manifests", "%s: %s; keeping its last good state", f->name, msg);
        metric_add(md->m_errors, 1);
        f->failing = true;
        md_problems_clear(f);
        md_problem_add(f, NULL, "file", msg);
        return;
    }
    if (!f->force && f->good && f->good_len == len && memcmp(f->good, content, len) == 0) {
        free(content);
        f->failing = false;
        return;
    }
    struct manifest_objs objs = { 0 };
    char err[512];
    md_problems_clear(f);
    if (manifest_parse_each(content, len, (int64_t)time(NULL), &objs, err, sizeof(err)) < 0) {
        log_err("manifests", "%s: %s", f->name, err);
        if (f->good)
            log_warn("manifests", "%s: keeping the %zu objects of its last good version",
                     f->name, f->n_keys);
        metric_add(md->m_errors, 1);
        f->failing = true;
        md_problem_add(f, NULL, "file", err);
        free(content);
        return;
    }
    md_warn_new(f, objs.warnings, objs.n_warnings);
    for (size_t i = 0; i < objs.n_rejects; i++) {
        const struct manifest_reject *rj = &objs.rejects[i];
        char obj[600], key[600];
        bool kept = false;
        if (rj->kind && rj->name) {
            snprintf(obj, sizeof(obj), "%s %s/%s", rj->kind, rj->ns, rj->name);
            snprintf(key, sizeof(key), "%s/%s/%s", rj->kind, rj->ns, rj->name);
            kept = md_has_key(f->keys, f->n_keys, key);
        } else {
            snprintf(obj, sizeof(obj), "%s", rj->kind ? rj->kind : "object");
        }
        log_err("manifests", "%s: %s rejected: %s; %s", f->name, obj, rj->error,
                kept ? "its last good version stays" : "not served");
        if (md->al && rj->kind && rj->name && !strcmp(rj->kind, "Service"))
            alloc_keep(md->al, rj->ns, rj->name);   /* it still exists: keep its addresses */
        md_problem_add(f, obj, "invalid", rj->error);
    }
    if (objs.n_rejects)
        metric_add(md->m_errors, 1);
    f->failing = false;
    log_info("manifests", "%s: loaded %zu services, %zu pods, %zu endpointslices%s", f->name,
             objs.n_services, objs.n_pods, objs.n_slices,
             objs.n_rejects ? " (some objects rejected)" : "");
    metric_add(md->m_loads, 1);
    md_apply(md, f, &objs, content, len);
    manifest_objs_free(&objs);
}

struct md_collect {
    struct md_file **items;
    size_t n, cap;
};

static int md_collect_dirty(void *ctx, const char *key, void *value)
{
    struct md_collect *c = ctx;
    struct md_file *f = value;
    (void)key;
    if (!f->dirty)
        return 0;
    if (VEC_RESERVE(c->items, c->n, c->cap, 16) < 0)
        return 1;
    c->items[c->n++] = f;
    return 0;
}

static int md_cmp_file(const void *a, const void *b)
{
    return strcmp((*(struct md_file *const *)a)->name, (*(struct md_file *const *)b)->name);
}

static int md_count_failing(void *ctx, const char *key, void *value)
{
    (void)key;
    *(size_t *)ctx += ((struct md_file *)value)->failing;
    return 0;
}

/* [0]: objects rejected as invalid, [1]: by the allocator. */
static int md_count_rejected(void *ctx, const char *key, void *value)
{
    size_t *n = ctx;
    const struct md_file *f = value;
    (void)key;
    for (size_t i = 0; i < f->n_problems; i++) {
        if (!strcmp(f->problems[i].reason, "invalid"))
            n[0]++;
        else if (!strcmp(f->problems[i].reason, "allocation"))
            n[1]++;
    }
    return 0;
}

static void md_scan_dir(struct manifest_dir *md);
static void md_lost(struct manifest_dir *md);
static void md_schedule(struct manifest_dir *md);

/* A Service whose new allocation could not be written: not served now,
 * its file is applied again when the retry timer fires. */
static void md_withhold(void *ctx, const char *key)
{
    struct manifest_dir *md = ctx;
    char ns[256], name[256], dkey[600];
    if (sscanf(key, "%255[^/]/%255s", ns, name) != 2)
        return;
    store_service_delete(md->st, ns, name);
    snprintf(dkey, sizeof(dkey), "Service/%s", key);
    struct md_definers *d = hmap_get(md->keys, dkey);
    struct md_file *f = d && d->n ? md_file_get(md, d->files[0], false) : NULL;
    if (f)
        f->force = f->dirty = true;
    log_err("manifests", "Service %s: its new allocation could not be saved; not served until "
            "it is", key);
}

static void md_retry_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd; (void)what;
    md_schedule(arg);
}

/* Writes new allocations to the state file before the batch is committed
 * (so before anything serves them). When the write fails, the allocator
 * goes back to its last saved state and the Services that got something
 * new are withheld and retried in a second. */
static void md_persist(struct manifest_dir *md)
{
    char err[512];
    if (!md->al)
        return;
    if (!md->unseen_released && manifest_dir_failing(md) == 0) {
        /* Services whose manifests went away while svcd was down. */
        size_t n = alloc_release_unseen(md->al);
        if (n)
            log_info("manifests", "released the allocations of %zu Services no manifest "
                     "defines any more", n);
        md->unseen_released = true;
    }
    if (!alloc_dirty(md->al))
        return;
    if (alloc_save(md->al, md->state_dir, err, sizeof(err)) == 0) {
        metric_add(md->m_state_writes, 1);
        return;
    }
    log_err("manifests", "cannot save allocations: %s", err);
    metric_add(md->m_state_errors, 1);
    alloc_foreach_unsaved(md->al, md_withhold, md);
    alloc_rollback(md->al);
    struct timeval tv = { 1, 0 };
    evtimer_add(md->ev_retry, &tv);
}

/* Processes every dirty file as one store batch. */
static void md_settle_cb(evutil_socket_t fd, short what, void *arg)
{
    struct manifest_dir *md = arg;
    (void)fd; (void)what;
    if (md->lost)
        return;   /* nothing is read while the path has no directory; the
                     rescan when it is back picks everything up */
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (md->rescan_pending) {
        md->rescan_pending = false;
        md_scan_dir(md);
    }
    struct md_collect c = { 0 };
    hmap_foreach(md->files, md_collect_dirty, &c);
    /* In name order, so conflicts resolve the same way on every start. */
    if (c.n > 1)
        qsort(c.items, c.n, sizeof(*c.items), md_cmp_file);
    store_begin(md->st);
    for (size_t i = 0; i < c.n; i++)
        md_process_file(md, c.items[i]);
    free(c.items);
    md_persist(md);
    uint64_t gen = store_commit(md->st);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    metric_observe(md->m_load_seconds, secs);
    size_t failing = 0, rejected[2] = { 0, 0 };
    hmap_foreach(md->files, md_count_failing, &failing);
    metric_set(md->m_failing, (double)failing);
    if (!md->dir_error[0])
        metric_set_now(md->m_last_sync);
    hmap_foreach(md->files, md_count_rejected, rejected);
    metric_set(md->m_rej_invalid, (double)rejected[0]);
    metric_set(md->m_rej_alloc, (double)rejected[1]);
    if (!md->loaded) {
        md->loaded = true;
        log_info("manifests", "initial load of %s done: %zu files, generation %llu in %.1f ms",
                 md->dir, hmap_count(md->files), (unsigned long long)gen, secs * 1e3);
    }
}

static int md_mark_gone(void *ctx, const char *key, void *value)
{
    struct md_file *f = value;
    (void)ctx; (void)key;
    if (f->gone_pending)
        f->dirty = true;
    return 0;
}

static void md_gone_cb(evutil_socket_t fd, short what, void *arg)
{
    struct manifest_dir *md = arg;
    (void)fd; (void)what;
    hmap_foreach(md->files, md_mark_gone, NULL);
    md_settle_cb(-1, 0, md);
}

static void md_schedule(struct manifest_dir *md)
{
    struct timeval tv = { 0, MD_SETTLE_US };
    if (!evtimer_pending(md->ev_settle, NULL))
        evtimer_add(md->ev_settle, &tv);
}

static void md_mark(struct manifest_dir *md, const char *name)
{
    if (!md_wanted(name))
        return;
    struct md_file *f = md_file_get(md, name, true);
    if (!f) {
        log_err("manifests", "%s: out of memory", name);
        return;
    }
    f->dirty = true;
    md_schedule(md);
}

static int md_mark_all(void *ctx, const char *key, void *value)
{
    (void)ctx; (void)key;
    ((struct md_file *)value)->dirty = true;
    return 0;
}

#define MD_MAX_DEPTH 16           /* subdirectory levels followed */
#define MD_WATCH_MASK (IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_CREATE | \
                       IN_ONLYDIR)

/* Watches the subdirectory rel (relative to the top) and marks every
 * wanted file in it and below dirty. */
static void md_scan_subdir(struct manifest_dir *md, const char *rel, int depth)
{
    char path[PATH_MAX], sub[PATH_MAX];
    snprintf(path, sizeof(path), "%s/%s", md->dir, rel);
    if (depth > MD_MAX_DEPTH) {
        log_warn("manifests", "%s: more than %d directory levels; not read", path,
                 MD_MAX_DEPTH);
        return;
    }
    /* The top directory has its own watch (md_watch_path, with the SELF
     * events): adding it again here would replace that mask. */
    int wd = *rel ? inotify_add_watch(md->ifd, path, MD_WATCH_MASK) : md->wd;
    if (*rel && wd < 0) {
        log_err("manifests", "%s: cannot watch: %s", path, strerror(errno));
    } else if (wd != md->wd) {
        char *dup = strdup(rel);
        free(hmap_del_bin(md->wds, &wd, sizeof(wd)));
        if (!dup || hmap_set_bin(md->wds, &wd, sizeof(wd), dup) < 0)
            free(dup);
    }
    DIR *d = opendir(path);
    if (!d) {
        log_err("manifests", "%s: cannot list: %s", path, strerror(errno));
        return;
    }
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        struct stat sb;
        if (de->d_name[0] == '.')
            continue;             /* hidden, ConfigMap "..data" targets, . and .. */
        if (snprintf(sub, sizeof(sub), "%s%s%s", rel, *rel ? "/" : "", de->d_name) >=
                (int)sizeof(sub) ||
            snprintf(path, sizeof(path), "%s/%s", md->dir, sub) >= (int)sizeof(path))
            continue;
        if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode))
            md_scan_subdir(md, sub, depth + 1);
        else
            md_mark(md, sub);
    }
    closedir(d);
}

/* Marks every known file and every file in the directory tree dirty. When
 * the directory cannot be listed nothing is marked: the objects stay as
 * they are until it is back. */
static void md_scan_dir(struct manifest_dir *md)
{
    DIR *d = opendir(md->dir);
    if (!d) {
        /* keep the first reason (usually "cannot watch ...") */
        if (!md->dir_error[0])
            snprintf(md->dir_error, sizeof(md->dir_error), "cannot list %s: %s", md->dir,
                     strerror(errno));
        md_lost(md);
        return;
    }
    closedir(d);
    hmap_foreach(md->files, md_mark_all, NULL);
    md_scan_subdir(md, "", 0);
}

struct md_prefix {
    const char *prefix;
    size_t len;
};

static int md_mark_prefix(void *ctx, const char *key, void *value)
{
    const struct md_prefix *p = ctx;
    if (strncmp(key, p->prefix, p->len) == 0 && key[p->len] == '/')
        ((struct md_file *)value)->dirty = true;
    return 0;
}

static void md_inotify_cb(evutil_socket_t fd, short what, void *arg)
{
    struct manifest_dir *md = arg;
    char buf[16384] __attribute__((aligned(__alignof__(struct inotify_event))));
    (void)what;
    for (;;) {
        ssize_t n = read(fd, buf, sizeof(buf));
        if (n <= 0) {
            if (n < 0 && errno != EAGAIN && errno != EINTR)
                log_err("manifests", "inotify read: %s", strerror(errno));
            break;
        }
        for (char *p = buf; p < buf + n;) {
            const struct inotify_event *ev = (const struct inotify_event *)p;
            const char *rel = "";
            char name[PATH_MAX];
            p += sizeof(*ev) + ev->len;
            if (ev->wd != md->wd) {
                rel = hmap_get_bin(md->wds, &ev->wd, sizeof(ev->wd));
                if (ev->mask & IN_IGNORED) {
                    free(hmap_del_bin(md->wds, &ev->wd, sizeof(ev->wd)));
                    continue;
                }
                if (!rel)
                    continue;
            }
            if (ev->mask & IN_Q_OVERFLOW) {
                log_warn("manifests", "inotify queue overflow; rescanning %s", md->dir);
                md->rescan_pending = true;
                md_schedule(md);
                continue;
            }
            if ((ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF)) && ev->wd == md->wd) {
                md_lost(md);
                continue;
            }
            if (ev->len == 0)
                continue;
            if (snprintf(name, sizeof(name), "%s%s%s", rel, *rel ? "/" : "", ev->name) >=
                (int)sizeof(name))
                continue;
            if ((ev->mask & IN_ISDIR) && ev->name[0] != '.') {
                if (ev->mask & (IN_CREATE | IN_MOVED_TO)) {
                    /* a new subdirectory: watch it, read what it has */
                    md_scan_subdir(md, name, (int)(strchr(name, '/') ? 2 : 1));
                    md_schedule(md);
                } else if (ev->mask & (IN_DELETE | IN_MOVED_FROM)) {
                    /* its files are looked for again (and go) */
                    struct md_prefix pf = { name, strlen(name) };
                    hmap_foreach(md->files, md_mark_prefix, &pf);
                    md_schedule(md);
                }
                continue;
            }
            if (*rel == '\0' && strcmp(ev->name, "..data") == 0) {
                /* a ConfigMap volume swapped its contents */
                md->rescan_pending = true;
                md_schedule(md);
                continue;
            }
            if ((ev->mask & IN_CREATE) && !(ev->mask & IN_ISDIR)) {
                /* only symlinks: regular files are read at IN_CLOSE_WRITE */
                char path[PATH_MAX];
                struct stat sb;
                if (snprintf(path, sizeof(path), "%s/%s", md->dir, name) >= (int)sizeof(path) ||
                    lstat(path, &sb) < 0 || !S_ISLNK(sb.st_mode))
                    continue;
                if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode)) {
                    md_scan_subdir(md, name, 1);     /* a symlink to a directory */
                    md_schedule(md);
                    continue;
                }
            }
            log_debug("manifests", "event 0x%x on %s", ev->mask, name);
            md_mark(md, name);
        }
    }
}

/* Watches md->dir by its path (so a directory now at that path, not the
 * one watched before). quiet: no error logged (polling for it). */
static int md_watch_path(struct manifest_dir *md, bool quiet)
{
    if (md->wd >= 0)
        inotify_rm_watch(md->ifd, md->wd);
    md->wd = inotify_add_watch(md->ifd, md->dir, MD_WATCH_MASK | IN_DELETE_SELF | IN_MOVE_SELF);
    if (md->wd < 0) {
        if (!quiet)
            log_err("manifests", "%s: cannot watch: %s", md->dir, strerror(errno));
        if (!md->lost)   /* while lost, the reason it went stays */
            snprintf(md->dir_error, sizeof(md->dir_error), "cannot watch %s: %s", md->dir,
                     strerror(errno));
        return -1;
    }
    md->dir_error[0] = '\0';
    return 0;
}

static int md_watch(struct manifest_dir *md)
{
    return md_watch_path(md, false);
}

#define MD_REWATCH_MS 100

/* The watched directory was moved away or removed (or replaced by a
 * rename): stop watching that inode and look for the path again every
 * MD_REWATCH_MS. Objects stay as they are meanwhile. */
static void md_lost(struct manifest_dir *md)
{
    if (md->lost)
        return;
    md->lost = true;
    if (!md->dir_error[0])
        snprintf(md->dir_error, sizeof(md->dir_error), "%s was moved or removed", md->dir);
    log_warn("manifests", "%s was moved or removed; objects stay as they are until a "
             "directory is at that path again", md->dir);
    if (md->wd >= 0)
        inotify_rm_watch(md->ifd, md->wd);   /* EINVAL after a removal: fine */
    md->wd = -1;
    struct timeval tv = { 0, MD_REWATCH_MS * 1000 };
    evtimer_add(md->ev_rewatch, &tv);
}

static void md_rewatch_cb(evutil_socket_t fd, short what, void *arg)
{
    struct manifest_dir *md = arg;
    (void)fd; (void)what;
    if (md_watch_path(md, true) < 0) {
        struct timeval tv = { 0, MD_REWATCH_MS * 1000 };
        evtimer_add(md->ev_rewatch, &tv);
        return;
    }
    md->lost = false;
    log_info("manifests", "%s is there again: watching it and rescanning", md->dir);
    md->rescan_pending = true;
    md_schedule(md);
}

struct manifest_dir *manifest_dir_new(struct event_base *base, struct store *st,
                                      const char *dir)
{
    struct manifest_dir *md = calloc(1, sizeof(*md));
    if (!md)
        return NULL;
    md->base = base;
    md->st = st;
    md->ifd = -1;
    md->wd = -1;
    md->dir = strdup(dir);
    md->files = hmap_new();
    md->keys = hmap_new();
    md->wds = hmap_new();
    if (!md->dir || !md->files || !md->keys || !md->wds)
        goto fail;
    md->ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (md->ifd < 0) {
        log_err("manifests", "inotify: %s", strerror(errno));
        goto fail;
    }
    md->ev_inotify = event_new(base, md->ifd, EV_READ | EV_PERSIST, md_inotify_cb, md);
    md->ev_settle = evtimer_new(base, md_settle_cb, md);
    md->ev_gone = evtimer_new(base, md_gone_cb, md);
    md->ev_rewatch = evtimer_new(base, md_rewatch_cb, md);
    md->ev_retry = evtimer_new(base, md_retry_cb, md);
    if (!md->ev_inotify || !md->ev_settle || !md->ev_gone || !md->ev_rewatch || !md->ev_retry ||
        event_add(md->ev_inotify, NULL) < 0)
        goto fail;
    /* A missing directory is not fatal: svcd runs, /readyz says why, and
     * the directory is read as soon as it appears. */
    if (md_watch_path(md, true) < 0) {
        log_err("manifests", "%s; looking for it every %d ms", md->dir_error, MD_REWATCH_MS);
        md_lost(md);
    }
    md->m_errors = metric_counter("svcd_manifest_errors_total", NULL,
                                  "Manifest files that failed to read, parse or validate");
    md->m_loads = metric_counter("svcd_manifest_loads_total", NULL,
                                 "Manifest files loaded successfully");
    md->m_conflicts = metric_counter("svcd_manifest_conflicts_total", NULL,
                                     "Objects defined in more than one manifest file");
    md->m_state_writes = metric_counter("svcd_state_writes_total", NULL,
                                        "Allocation state file writes");
    md->m_state_errors = metric_counter("svcd_state_write_errors_total", NULL,
                                        "Allocation state file writes that failed (new "
                                        "allocations withheld and retried)");
    md->m_rej_invalid = metric_gauge("svcd_manifest_rejected_objects", "reason=\"invalid\"",
                                     "Objects of manifest files rejected now (the rest of "
                                     "their file is served)");
    md->m_rej_alloc = metric_gauge("svcd_manifest_rejected_objects", "reason=\"allocation\"",
                                   "Objects of manifest files rejected now (the rest of "
                                   "their file is served)");
    md->m_failing = metric_gauge("svcd_manifest_files_failing", NULL,
                                 "Manifest files whose last read failed (last good state kept)");
    md->m_load_seconds = metric_histogram("svcd_manifest_sync_duration_seconds", NULL,
                                          "Time to apply one round of changed manifest files");
    md->m_last_sync = metric_gauge("svcd_source_last_sync_timestamp_seconds",
                                   "source=\"manifests\"",
                                   "Unix time a source last brought the store up to date "
                                   "(a manifest round applied with the directory readable; "
                                   "a full podman list).");
    md->rescan_pending = true;
    md_schedule(md);
    return md;
fail:
    manifest_dir_free(md);
    return NULL;
}

static int md_free_file(void *ctx, const char *key, void *value)
{
    (void)ctx; (void)key;
    md_file_free(value);
    return 0;
}

static int md_free_value(void *ctx, const char *key, void *value)
{
    (void)ctx; (void)key;
    free(value);
    return 0;
}

static int md_free_definers(void *ctx, const char *key, void *value)
{
    struct md_definers *d = value;
    (void)ctx; (void)key;
    for (size_t i = 0; i < d->n; i++)
        free(d->files[i]);
    free(d->files);
    free(d);
    return 0;
}

void manifest_dir_free(struct manifest_dir *md)
{
    if (!md)
        return;
    while (md->graces)
        md_grace_unlink(md, md->graces);
    if (md->ev_inotify)
        event_free(md->ev_inotify);
    if (md->ev_settle)
        event_free(md->ev_settle);
    if (md->ev_gone)
        event_free(md->ev_gone);
    if (md->ev_rewatch)
        event_free(md->ev_rewatch);
    if (md->ev_retry)
        event_free(md->ev_retry);
    if (md->ifd >= 0)
        close(md->ifd);
    if (md->files) {
        hmap_foreach(md->files, md_free_file, NULL);
        hmap_free(md->files);
    }
    if (md->keys) {
        hmap_foreach(md->keys, md_free_definers, NULL);
        hmap_free(md->keys);
    }
    if (md->wds) {
        hmap_foreach(md->wds, md_free_value, NULL);
        hmap_free(md->wds);
    }
    free(md->dir);
    free(md->state_dir);
    free(md);
}

int manifest_dir_set_alloc(struct manifest_dir *md, struct alloc *al, const char *state_dir)
{
    char *dup = strdup(state_dir);
    if (!dup)
        return -1;
    free(md->state_dir);
    md->state_dir = dup;
    md->al = al;
    return 0;
}

void manifest_dir_rescan(struct manifest_dir *md)
{
    md_watch(md);     /* the directory may have been recreated */
    md->rescan_pending = true;
    md_schedule(md);
}

const char *manifest_dir_error(const struct manifest_dir *md)
{
    return md->dir_error[0] ? md->dir_error : NULL;
}

bool manifest_dir_loaded(const struct manifest_dir *md)
{
    return md->loaded;
}

struct md_problem_walk {
    int (*cb)(void *ctx, const char *file, const char *object, const char *reason,
              const char *message);
    void *ctx;
};

static int md_problem_cb(void *ctx, const char *key, void *value)
{
    struct md_problem_walk *w = ctx;
    const struct md_file *f = value;
    (void)key;
    for (size_t i = 0; i < f->n_problems; i++) {
        int rc = w->cb(w->ctx, f->name, f->problems[i].object, f->problems[i].reason,
                       f->problems[i].message);
        if (rc)
            return rc;
    }
    return 0;
}

int manifest_dir_foreach_problem(const struct manifest_dir *md,
                                 int (*cb)(void *ctx, const char *file, const char *object,
                                           const char *reason, const char *message),
                                 void *ctx)
{
    struct md_problem_walk w = { cb, ctx };
    return hmap_foreach(md->files, md_problem_cb, &w);
}

size_t manifest_dir_failing(const struct manifest_dir *md)
{
    size_t failing = 0;
    hmap_foreach(md->files, md_count_failing, &failing);
    return failing;
}
