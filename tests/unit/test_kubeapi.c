/*
 * test_kubeapi: label and field selector matching as the API server does it
 * for the forms svcd supports (=, ==, !=, existence, !existence; fields
 * metadata.name and metadata.namespace), and rejection of the rest.
 */
#include "svcd/kubeapi.h"
#include "svcd/model.h"

#include <stdlib.h>

#include "testutil.h"

int main(void)
{
    struct svcd_kvmap labels = { 0 };
    svcd_kvmap_set(&labels, "app", "web");
    svcd_kvmap_set(&labels, "tier", "fe");
    svcd_kvmap_set(&labels, "k8s.io/role", "x-y_z.1");
    static const struct { const char *sel; int want; } lc[] = {
        { "", 1 }, { NULL, 1 },
        { "app=web", 1 }, { "app==web", 1 }, { "app = web", 1 }, { "app=db", 0 },
        { "app!=db", 1 }, { "app!=web", 0 }, { "missing!=x", 1 },
        { "app", 1 }, { "missing", 0 }, { "!missing", 1 }, { "!app", 0 }, { " ! app", 0 },
        { "app=web,tier=fe", 1 }, { "app=web,tier=be", 0 }, { "app=web, tier=fe", 1 },
        { "k8s.io/role=x-y_z.1", 1 },
        { "app in (web)", -1 }, { "app notin (db)", -1 }, { "app>1", -1 }, { "=web", -1 },
        { "app=web,", -1 }, { ",", -1 }, { "!app=web", -1 }, { "app=we b", -1 },
    };
    for (size_t i = 0; i < sizeof(lc) / sizeof(lc[0]); i++) {
        int got = kubeapi_label_match(lc[i].sel, &labels);
        CHECK(got == lc[i].want, "label \"%s\": got %d want %d", lc[i].sel ? lc[i].sel : "(null)",
              got, lc[i].want);
    }
    static const struct { const char *sel; int want; } fc[] = {
        { "", 1 }, { "metadata.name=web", 1 }, { "metadata.name==web", 1 },
        { "metadata.name!=web", 0 }, { "metadata.namespace=default", 1 },
        { "metadata.namespace=prod", 0 }, { "metadata.name=web,metadata.namespace=default", 1 },
        { "metadata.name", -1 }, { "!metadata.name", -1 }, { "spec.nodeName=n1", -1 },
        { "status.phase=Running", -1 },
    };
    for (size_t i = 0; i < sizeof(fc) / sizeof(fc[0]); i++) {
        int got = kubeapi_field_match(fc[i].sel, "default", "web");
        CHECK(got == fc[i].want, "field \"%s\": got %d want %d", fc[i].sel, got, fc[i].want);
    }
    CHECK(kubeapi_label_match("app", NULL) == 0, "no labels: existence fails");
    CHECK(kubeapi_label_match("!app", NULL) == 1, "no labels: non-existence holds");
    svcd_kvmap_free(&labels);
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
