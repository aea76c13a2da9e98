/*
 * fuzz_kube_selector: label and field selectors from kubectl's query string
 * (untrusted) through kubeapi_label_match / kubeapi_field_match. The input
 * is split at the first NUL-free '\n': selector, then "key=value" label
 * lines.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "svcd/kubeapi.h"
#include "svcd/model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    if (strlen(s) != size) {   /* selectors are C strings */
        free(s);
        return 0;
    }
    struct svcd_kvmap labels = { 0 };
    char *nl = strchr(s, '\n');
    if (nl) {
        *nl = '\0';
        for (char *line = strtok(nl + 1, "\n"); line; line = strtok(NULL, "\n")) {
            char *eq = strchr(line, '=');
            if (eq) {
                *eq = '\0';
                svcd_kvmap_set(&labels, line, eq + 1);
            }
        }
    }
    (void)kubeapi_label_match(s, &labels);
    (void)kubeapi_field_match(s, "default", "web");
    svcd_kvmap_free(&labels);
    free(s);
    return 0;
}
