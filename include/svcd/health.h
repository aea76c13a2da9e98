/*
 * health: svcd's readiness as a list of named checks, shaped like the
 * Kubernetes components' /readyz:
 *
 *   [+]manifests ok
 *   [-]nftables failed: sync failed: Operation not permitted
 *   readyz check failed
 *
 * Each check reports OK, PENDING (its first attempt has not finished: the
 * initial manifest load, the first podman list, the first nftables sync) or
 * FAILED (with a reason: the manifest directory is missing, the podman
 * socket is unreachable, nftables programming keeps failing). svcd is ready
 * when every check is OK; start-up has settled (systemd's READY=1) when no
 * check is PENDING. The checks are called from the loop's thread only.
 */
#ifndef SVCD_HEALTH_H
#define SVCD_HEALTH_H

#include <stdbool.h>
#include <stddef.h>

struct evbuffer;

enum health_state { HEALTH_OK, HEALTH_PENDING, HEALTH_FAILED };

/* Writes a one-line reason (without the check's name) into reason (size len)
 * unless it returns HEALTH_OK. */
typedef enum health_state (*health_check_fn)(void *ctx, char *reason, size_t len);

struct health;

/* An empty list (ready). NULL on ENOMEM. */
struct health *health_new(void);
/* Appends a check; name is copied. 0, or -1 on ENOMEM. */
int health_add(struct health *h, const char *name, health_check_fn fn, void *ctx);
/* Runs every check. Returns the worst state (FAILED > PENDING > OK) and,
 * unless OK, "name: reason" of the first check in that state in reason. */
enum health_state health_eval(struct health *h, char *reason, size_t len);
/* Appends the /readyz body: with verbose every check, otherwise only the
 * checks that are not OK ("ok" alone when all are). Returns true when ready. */
bool health_render(struct health *h, struct evbuffer *out, bool verbose);
/* Accepts NULL. */
void health_free(struct health *h);

#endif
