/*
 * manifest_dir: the embedded default source. Loads every *.yaml, *.yml and
 * *.json file of a directory into the store and follows the directory with
 * inotify, so a file added, changed, renamed in or removed takes effect
 * within milliseconds, without a restart.
 *
 * Rules:
 *  - A file is read when it is closed after writing or renamed into the
 *    directory (editors' write-temp-then-rename works; a half-written file
 *    is not read before its writer closes it). Hidden files (".x.yaml") and
 *    other suffixes are ignored.
 *  - A file that is not valid YAML is logged as "FILE: line L column C:
 *    PROBLEM"; the objects it defined before stay as they were, other files
 *    are unaffected. An object that fails validation (or allocation) is
 *    rejected on its own: "FILE: Service ns/name rejected: document N:
 *    FIELD: PROBLEM"; the file's other objects are served and the rejected
 *    object's last good version stays.
 *  - Subdirectories are read recursively (as kubectl apply -R) and watched;
 *    hidden ones (".x", ConfigMap "..data" targets) are skipped.
 *  - The same object (kind, namespace, name) defined in two files: an error
 *    is logged and the definition from the file whose name sorts first
 *    (strcmp) wins; when that file stops defining it, the next one's
 *    definition takes over.
 *  - A file that disappears is looked for again 250 ms later before its
 *    objects go (editors that rename FILE to FILE~ and write FILE anew do
 *    not make Services blink). Symlinks and Kubernetes ConfigMap volumes
 *    (the ..data swap) are followed.
 *  - A Pod whose file is removed while it has the annotation
 *    svcd.io/grace-period-seconds: "N" stays as a terminating endpoint for
 *    N seconds.
 *  - Each round of changed files is one store batch (one generation); new
 *    allocations (manifest_dir_set_alloc) are saved before it is committed.
 *  - A directory that is missing (at start or later) or cannot be listed
 *    is not fatal: the objects stay as they are, manifest_dir_error() says
 *    why (for /readyz), and the directory is looked for every 100 ms and
 *    read whole when it is back.
 */
#ifndef SVCD_MANIFEST_DIR_H
#define SVCD_MANIFEST_DIR_H

#include <stdbool.h>
#include <stddef.h>

struct event_base;
struct store;
struct manifest_dir;
struct alloc;

/* Starts watching dir and schedules the initial load on the loop (it runs
 * as soon as the loop does). NULL on ENOMEM or when inotify is unavailable
 * (logged); a missing dir is retried, see above. */
struct manifest_dir *manifest_dir_new(struct event_base *base, struct store *st,
                                      const char *dir);
/* Gives Services their clusterIPs and nodePorts from al (owned by the
 * caller, outliving md) and saves al to state_dir before each commit that
 * serves a new allocation. A Service the allocator rejects keeps its last
 * good version. Call before the loop runs. 0, or -1 on ENOMEM. */
int manifest_dir_set_alloc(struct manifest_dir *md, struct alloc *al, const char *state_dir);

/* Stops watching; the objects stay in the store. Accepts NULL. */
void manifest_dir_free(struct manifest_dir *md);

/* Re-reads every file now (SIGHUP). */
void manifest_dir_rescan(struct manifest_dir *md);

/* True once the initial load has been applied. */
bool manifest_dir_loaded(const struct manifest_dir *md);

/* Why the directory cannot be read ("cannot watch DIR: No such file or
 * directory", "DIR was removed or moved"), or NULL when it can. */
const char *manifest_dir_error(const struct manifest_dir *md);

/* Number of files whose last read failed (their last good state is kept). */
size_t manifest_dir_failing(const struct manifest_dir *md);

/* Calls cb for each current problem, in no particular order: a file that
 * failed as a whole (object NULL, reason "file"), an object rejected as
 * invalid (reason "invalid") or by the allocator (reason "allocation").
 * object is "Kind namespace/name"; file is relative to the directory.
 * Stops when cb returns non-zero (returned). */
int manifest_dir_foreach_problem(const struct manifest_dir *md,
                                 int (*cb)(void *ctx, const char *file, const char *object,
                                           const char *reason, const char *message),
                                 void *ctx);

#endif
