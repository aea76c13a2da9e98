/*
 * test_manifest: table-driven tests of manifest_parse. Each row is a YAML
 * (or JSON) snippet and either the exact error line expected, or object
 * counts plus a check function over the parsed objects. A second part
 * checks fingerprints, and every file in tests/data/manifests/ is parsed
 * (good*.yaml must parse, bad*.yaml must fail).
 */
#include "svcd/manifest.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int passed, failed;
static const char *cur_row = "";

#define CHECK(cond, ...) do {                                   \
        if (cond) {                                             \
            passed++;                                           \
        } else {                                                \
            failed++;                                           \
            printf("FAIL [%s] %s:%d: ", cur_row, __FILE__, __LINE__); \
            printf(__VA_ARGS__);                                \
            printf("\n");                                       \
        }                                                       \
    } while (0)

#define NOW 1700000000LL

static bool ip_is(const struct svcd_ip *ip, const char *text)
{
    struct svcd_ip want;
    return svcd_ip_parse(text, &want) == 0 && svcd_ip_equal(ip, &want);
}

static bool str_is(const char *got, const char *want)
{
    if (!got || !want)
        return got == want;
    return strcmp(got, want) == 0;
}

/* ---- error rows ----------------------------------------------------------- */

#define SVC_HEAD "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n"
#define POD_HEAD "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web-1\n"
#define POD_C0 "spec:\n  containers:\n  - name: app\n"
#define SLICE_HEAD "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n" \
                   "  name: web-abc\n  labels:\n    kubernetes.io/service-name: web\n"
#define PORTS80 "  ports:\n  - port: 80\n"

static const struct {
    const char *name;
    const char *yaml;
    const char *err;
} err_rows[] = {
    { "port 0 in doc 2",
      SVC_HEAD "spec:\n" PORTS80 "---\n"
      "apiVersion: v1\nkind: Service\nmetadata:\n  name: db\nspec:\n  ports:\n  - port: 0\n",
      "document 2: spec.ports[0].port: must be 1-65535" },
    { "port 65536",
      SVC_HEAD "spec:\n  ports:\n  - port: 65536\n",
      "document 1: spec.ports[0].port: must be 1-65535" },
    { "port huge saturates",
      SVC_HEAD "spec:\n  ports:\n  - port: 99999999999999999999999\n",
      "document 1: spec.ports[0].port: must be 1-65535" },
    { "port missing",
      SVC_HEAD "spec:\n  ports:\n  - name: x\n",
      "document 1: spec.ports[0].port: required" },
    { "port quoted", SVC_HEAD "spec:\n  ports:\n  - port: \"80\"\n",
      "document 1: spec.ports[0].port: must be an integer" },
    { "port float", SVC_HEAD "spec:\n  ports:\n  - port: 80.0\n",
      "document 1: spec.ports[0].port: must be an integer" },
    { "port bool", SVC_HEAD "spec:\n  ports:\n  - port: true\n",
      "document 1: spec.ports[0].port: must be an integer" },
    { "name missing", "apiVersion: v1\nkind: Service\nmetadata:\n  namespace: x\nspec:\n" PORTS80,
      "document 1: metadata.name: required" },
    { "name empty", "apiVersion: v1\nkind: Service\nmetadata:\n  name: \"\"\nspec:\n" PORTS80,
      "document 1: metadata.name: required" },
    { "metadata missing", "apiVersion: v1\nkind: Service\nspec:\n" PORTS80,
      "document 1: metadata: required" },
    { "metadata not mapping", "apiVersion: v1\nkind: Service\nmetadata: [a]\nspec:\n" PORTS80,
      "document 1: metadata: must be a mapping" },
    { "name not a string", "apiVersion: v1\nkind: Service\nmetadata:\n  name: 42\nspec:\n" PORTS80,
      "document 1: metadata.name: must be a string" },
    { "protocol HTTP",
      SVC_HEAD "spec:\n  ports:\n  - name: a\n    port: 80\n  - name: b\n    port: 81\n"
      "    protocol: HTTP\n",
      "document 1: spec.ports[1].protocol: must be TCP, UDP or SCTP (got \"HTTP\")" },
    { "protocol lowercase", SVC_HEAD "spec:\n  ports:\n  - port: 80\n    protocol: tcp\n",
      "document 1: spec.ports[0].protocol: must be TCP, UDP or SCTP (got \"tcp\")" },
    { "spec not mapping", SVC_HEAD "spec: []\n", "document 1: spec: must be a mapping" },
    { "spec missing", SVC_HEAD, "document 1: spec: required" },
    { "ports not sequence", SVC_HEAD "spec:\n  ports:\n    port: 80\n",
      "document 1: spec.ports: must be a sequence" },
    { "port item not mapping", SVC_HEAD "spec:\n  ports:\n  - 80\n",
      "document 1: spec.ports[0]: must be a mapping" },
    { "service name uppercase",
      "apiVersion: v1\nkind: Service\nmetadata:\n  name: Web\nspec:\n" PORTS80,
      "document 1: metadata.name: must be a DNS-1123 label (lowercase letters, digits and '-', "
      "starting and ending with a letter or digit, at most 63 characters) (got \"Web\")" },
    { "service name with dot",
      "apiVersion: v1\nkind: Service\nmetadata:\n  name: web.v1\nspec:\n" PORTS80,
      "document 1: metadata.name: must be a DNS-1123 label (lowercase letters, digits and '-', "
      "starting and ending with a letter or digit, at most 63 characters) (got \"web.v1\")" },
    { "service name 64 chars",
      "apiVersion: v1\nkind: Service\nmetadata:\n  name: "
      "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\nspec:\n" PORTS80,
      "document 1: metadata.name: must be a DNS-1123 label (lowercase letters, digits and '-', "
      "starting and ending with a letter or digit, at most 63 characters) (got "
      "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\")" },
    { "pod name bad subdomain", "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web..1\n" POD_C0,
      "document 1: metadata.name: must be a DNS-1123 subdomain (lowercase letters, digits, '-' "
      "and '.', at most 253 characters) (got \"web..1\")" },
    { "namespace bad",
      "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n  namespace: -x\nspec:\n" PORTS80,
      "document 1: metadata.namespace: must be a DNS-1123 label (lowercase letters, digits and "
      "'-', starting and ending with a letter or digit, at most 63 characters) (got \"-x\")" },
    { "labels not mapping",
      "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n  labels: [a]\nspec:\n" PORTS80,
      "document 1: metadata.labels: must be a mapping" },
    { "label value int",
      "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n  labels:\n    v: 1\nspec:\n" PORTS80,
      "document 1: metadata.labels[v]: must be a string" },
    { "creationTimestamp bad",
      "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n  creationTimestamp: yesterday\n"
      "spec:\n" PORTS80,
      "document 1: metadata.creationTimestamp: must be an RFC 3339 time (got \"yesterday\")" },
    { "creationTimestamp Feb 30",
      "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n"
      "  creationTimestamp: \"2023-02-30T00:00:00Z\"\nspec:\n" PORTS80,
      "document 1: metadata.creationTimestamp: must be an RFC 3339 time (got "
      "\"2023-02-30T00:00:00Z\")" },
    { "deletionTimestamp bad",
      "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n  deletionTimestamp: \"now\"\n"
      "spec:\n" PORTS80,
      "document 1: metadata.deletionTimestamp: must be an RFC 3339 time (got \"now\")" },
    { "type bad", SVC_HEAD "spec:\n  type: Ingress\n" PORTS80,
      "document 1: spec.type: must be ClusterIP, NodePort, LoadBalancer or ExternalName "
      "(got \"Ingress\")" },
    { "clusterIP bad", SVC_HEAD "spec:\n  clusterIP: 10.0.0.300\n" PORTS80,
      "document 1: spec.clusterIP: must be a valid IP address or None (got \"10.0.0.300\")" },
    { "clusterIPs disagree", SVC_HEAD "spec:\n  clusterIP: 10.96.0.10\n"
      "  clusterIPs: [10.96.0.11]\n" PORTS80,
      "document 1: spec.clusterIPs[0]: must match spec.clusterIP (\"10.96.0.10\")" },
    { "clusterIPs None vs IP", SVC_HEAD "spec:\n  clusterIP: None\n  clusterIPs: [10.96.0.11]\n",
      "document 1: spec.clusterIPs[0]: must match spec.clusterIP (\"None\")" },
    { "clusterIPs IP vs None", SVC_HEAD "spec:\n  clusterIP: 10.96.0.11\n  clusterIPs: [None]\n",
      "document 1: spec.clusterIPs[0]: must match spec.clusterIP (\"10.96.0.11\")" },
    { "clusterIPs three", SVC_HEAD "spec:\n  clusterIPs: [10.96.0.1, \"fd00::1\", 10.96.0.2]\n"
      PORTS80, "document 1: spec.clusterIPs: may hold at most 2 addresses" },
    { "clusterIPs same family", SVC_HEAD "spec:\n  clusterIPs: [10.96.0.1, 10.96.0.2]\n" PORTS80,
      "document 1: spec.clusterIPs[1]: must be of a different IP family than spec.clusterIPs[0]" },
    { "clusterIPs None plus IP", SVC_HEAD "spec:\n  clusterIPs: [None, \"fd00::1\"]\n",
      "document 1: spec.clusterIPs[0]: may be None only when it is the only entry" },
    { "clusterIPs bad", SVC_HEAD "spec:\n  clusterIPs: [x]\n" PORTS80,
      "document 1: spec.clusterIPs[0]: must be a valid IP address or None (got \"x\")" },
    { "ipFamilies mismatch", SVC_HEAD "spec:\n  clusterIPs: [10.96.0.1]\n  ipFamilies: [IPv6]\n"
      PORTS80,
      "document 1: spec.ipFamilies[0]: must match the family of spec.clusterIPs[0] "
      "(got IPv6 for \"10.96.0.1\")" },
    { "ipFamilies second mismatch",
      SVC_HEAD "spec:\n  clusterIPs: [10.96.0.1, \"fd00::1\"]\n  ipFamilies: [IPv4]\n"
      "  ipFamilyPolicy: RequireDualStack\n" PORTS80 "---\n"
      SVC_HEAD "spec:\n  clusterIPs: [\"fd00::1\", 10.96.0.1]\n  ipFamilies: [IPv6, IPv4]\n"
      PORTS80 "---\n" SVC_HEAD "spec:\n  clusterIPs: [\"fd00::1\", 10.96.0.1]\n"
      "  ipFamilies: [IPv6, IPv6]\n" PORTS80,
      "document 2: Service default/web is defined twice in this file (also document 1)" },
    { "ipFamilies dup", SVC_HEAD "spec:\n  ipFamilies: [IPv6, IPv6]\n" PORTS80,
      "document 1: spec.ipFamilies[1]: duplicate IPv6" },
    { "ipFamilies bad", SVC_HEAD "spec:\n  ipFamilies: [IPv5]\n" PORTS80,
      "document 1: spec.ipFamilies[0]: must be IPv4 or IPv6 (got \"IPv5\")" },
    { "ipFamilies three", SVC_HEAD "spec:\n  ipFamilies: [IPv4, IPv6, IPv4]\n" PORTS80,
      "document 1: spec.ipFamilies: may hold at most 2 entries" },
    { "SingleStack with two", SVC_HEAD "spec:\n  clusterIPs: [10.96.0.1, \"fd00::1\"]\n"
      "  ipFamilyPolicy: SingleStack\n" PORTS80,
      "document 1: spec.ipFamilyPolicy: SingleStack allows only one IP family" },
    { "ipFamilyPolicy bad", SVC_HEAD "spec:\n  ipFamilyPolicy: Dual\n" PORTS80,
      "document 1: spec.ipFamilyPolicy: must be SingleStack, PreferDualStack or RequireDualStack "
      "(got \"Dual\")" },
    { "second port unnamed", SVC_HEAD "spec:\n  ports:\n  - name: a\n    port: 80\n  - port: 81\n",
      "document 1: spec.ports[1].name: required when the Service has more than one port" },
    { "port names dup", SVC_HEAD "spec:\n  ports:\n  - name: a\n    port: 80\n  - name: a\n"
      "    port: 81\n", "document 1: spec.ports[1].name: duplicate \"a\"" },
    { "port numbers dup", SVC_HEAD "spec:\n  ports:\n  - name: a\n    port: 80\n  - name: b\n"
      "    port: 80\n", "document 1: spec.ports[1]: duplicate port 80/TCP (also spec.ports[0])" },
    { "port name bad", SVC_HEAD "spec:\n  ports:\n  - name: HTTP\n    port: 80\n",
      "document 1: spec.ports[0].name: must be a DNS-1123 label (lowercase letters, digits and "
      "'-', starting and ending with a letter or digit, at most 63 characters) (got \"HTTP\")" },
    { "targetPort quoted digits", SVC_HEAD "spec:\n  ports:\n  - port: 80\n    targetPort: \"80\"\n",
      "document 1: spec.ports[0].targetPort: must be 1-65535 or an IANA_SVC_NAME (got \"80\")" },
    { "targetPort too long name", SVC_HEAD "spec:\n  ports:\n  - port: 80\n"
      "    targetPort: http-web-server1\n",
      "document 1: spec.ports[0].targetPort: must be 1-65535 or an IANA_SVC_NAME "
      "(got \"http-web-server1\")" },
    { "targetPort double dash", SVC_HEAD "spec:\n  ports:\n  - port: 80\n    targetPort: a--b\n",
      "document 1: spec.ports[0].targetPort: must be 1-65535 or an IANA_SVC_NAME (got \"a--b\")" },
    { "targetPort range", SVC_HEAD "spec:\n  ports:\n  - port: 80\n    targetPort: 70000\n",
      "document 1: spec.ports[0].targetPort: must be 1-65535" },
    { "targetPort bool", SVC_HEAD "spec:\n  ports:\n  - port: 80\n    targetPort: false\n",
      "document 1: spec.ports[0].targetPort: must be an integer or a string" },
    { "nodePort on ClusterIP", SVC_HEAD "spec:\n  ports:\n  - port: 80\n    nodePort: 30080\n",
      "document 1: spec.ports[0].nodePort: may only be set for type NodePort or LoadBalancer" },
    { "nodePort range", SVC_HEAD "spec:\n  type: NodePort\n  ports:\n  - port: 80\n"
      "    nodePort: 70000\n", "document 1: spec.ports[0].nodePort: must be 1-65535" },
    { "nodePort dup", SVC_HEAD "spec:\n  type: NodePort\n  ports:\n  - name: a\n    port: 80\n"
      "    nodePort: 30080\n  - name: b\n    port: 81\n    nodePort: 30080\n",
      "document 1: spec.ports[1].nodePort: duplicate 30080/TCP (also spec.ports[0])" },
    { "sessionAffinity bad", SVC_HEAD "spec:\n  sessionAffinity: Cookie\n" PORTS80,
      "document 1: spec.sessionAffinity: must be None or ClientIP (got \"Cookie\")" },
    { "affinity timeout 0", SVC_HEAD "spec:\n  sessionAffinity: ClientIP\n"
      "  sessionAffinityConfig:\n    clientIP:\n      timeoutSeconds: 0\n" PORTS80,
      "document 1: spec.sessionAffinityConfig.clientIP.timeoutSeconds: must be 1-86400" },
    { "affinity timeout big", SVC_HEAD "spec:\n  sessionAffinity: ClientIP\n"
      "  sessionAffinityConfig:\n    clientIP:\n      timeoutSeconds: 86401\n" PORTS80,
      "document 1: spec.sessionAffinityConfig.clientIP.timeoutSeconds: must be 1-86400" },
    { "publishNotReady string", SVC_HEAD "spec:\n  publishNotReadyAddresses: \"true\"\n" PORTS80,
      "document 1: spec.publishNotReadyAddresses: must be a boolean" },
    { "externalName required", SVC_HEAD "spec:\n  type: ExternalName\n",
      "document 1: spec.externalName: required for type ExternalName" },
    { "externalName bad", SVC_HEAD "spec:\n  type: ExternalName\n  externalName: Foo_bar.com\n",
      "document 1: spec.externalName: must be a DNS name (lowercase RFC 1123 subdomain) "
      "(got \"Foo_bar.com\")" },
    { "externalName with clusterIP", SVC_HEAD "spec:\n  type: ExternalName\n"
      "  externalName: db.example.com\n  clusterIP: 10.96.0.5\n",
      "document 1: spec.clusterIP: must be empty for type ExternalName" },
    { "ports required", SVC_HEAD "spec:\n  selector:\n    app: web\n",
      "document 1: spec.ports: required" },
    { "ports empty list", SVC_HEAD "spec:\n  ports: []\n", "document 1: spec.ports: required" },
    { "headless NodePort", SVC_HEAD "spec:\n  type: NodePort\n  clusterIP: None\n" PORTS80,
      "document 1: spec.clusterIP: may not be None for type NodePort" },
    { "externalIPs bad", SVC_HEAD "spec:\n  externalIPs: [1.2.3.4, nope]\n" PORTS80,
      "document 1: spec.externalIPs[1]: must be a valid IP address (got \"nope\")" },
    { "internalTrafficPolicy bad", SVC_HEAD "spec:\n  internalTrafficPolicy: local\n" PORTS80,
      "document 1: spec.internalTrafficPolicy: must be Cluster or Local (got \"local\")" },
    { "lb ingress bad", SVC_HEAD "spec:\n  type: LoadBalancer\n" PORTS80
      "status:\n  loadBalancer:\n    ingress:\n    - ip: 1.2.3\n",
      "document 1: status.loadBalancer.ingress[0].ip: must be a valid IP address (got \"1.2.3\")" },
    { "selector not mapping", SVC_HEAD "spec:\n  selector: app=web\n" PORTS80,
      "document 1: spec.selector: must be a mapping" },
    { "selector bool value", SVC_HEAD "spec:\n  selector:\n    enabled: true\n" PORTS80,
      "document 1: spec.selector[enabled]: must be a string" },
    { "duplicate key", SVC_HEAD "spec:\n" PORTS80 "  ports:\n  - port: 81\n",
      "document 1: spec: duplicate key \"ports\"" },
    { "duplicate key many", SVC_HEAD "spec:\n" PORTS80 "  selector:\n"
      "    a: x\n    b: x\n    c: x\n    d: x\n    e: x\n    f: x\n    g: x\n    h: x\n"
      "    i: x\n    j: x\n    k: x\n    l: x\n    m: x\n    n: x\n    o: x\n    p: x\n"
      "    q: x\n    c: y\n",
      "document 1: spec.selector: duplicate key \"c\"" },
    { "kind missing", "apiVersion: v1\nmetadata:\n  name: web\n", "document 1: kind: required" },
    { "kind not string", "apiVersion: v1\nkind: [Service]\n", "document 1: kind: must be a string" },
    { "apiVersion missing", "kind: Service\nmetadata:\n  name: web\n",
      "document 1: apiVersion: required" },
    { "apiVersion wrong", "apiVersion: v2\nkind: Service\nmetadata:\n  name: web\n",
      "document 1: apiVersion: must be v1 for kind Service (got \"v2\")" },
    { "slice apiVersion beta", "apiVersion: discovery.k8s.io/v1beta1\nkind: EndpointSlice\n",
      "document 1: apiVersion: must be discovery.k8s.io/v1 for kind EndpointSlice "
      "(got \"discovery.k8s.io/v1beta1\")" },
    { "root scalar", "hello\n", "document 1: must be a mapping" },
    { "root sequence", "---\n---\n- a\n", "document 2: must be a mapping" },
    { "duplicate object", SVC_HEAD "spec:\n" PORTS80 "---\n# again\n" SVC_HEAD "spec:\n" PORTS80,
      "document 2: Service default/web is defined twice in this file (also document 1)" },
    { "duplicate in list",
      "apiVersion: v1\nkind: List\nitems:\n"
      "- apiVersion: v1\n  kind: Pod\n  metadata: {name: a}\n  spec: {containers: [{name: c}]}\n"
      "- apiVersion: v1\n  kind: Pod\n  metadata: {name: a}\n  spec: {containers: [{name: c}]}\n",
      "document 1 item 2: Pod default/a is defined twice in this file (also document 1 item 1)" },
    { "list item error",
      "apiVersion: v1\nkind: List\nitems:\n"
      "- apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: a}\n"
      "- apiVersion: v1\n  kind: Service\n  metadata: {name: a}\n  spec: {ports: [{port: -1}]}\n",
      "document 1 item 2: spec.ports[0].port: must be 1-65535" },
    { "list items not seq", "apiVersion: v1\nkind: List\nitems: {}\n",
      "document 1: items: must be a sequence" },
    { "nested list", "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: List\n"
      "  items: []\n", "document 1 item 1: a List may not contain a List" },
    { "list item null", "apiVersion: v1\nkind: List\nitems:\n- null\n",
      "document 1 item 1: must be a mapping" },
    { "yaml syntax", SVC_HEAD "spec:\n  ports:\n  - port: 80\n   bad: [\n",
      "line 8 column 4: did not find expected key (while parsing a block mapping at line 6)" },
    { "yaml bad indent", "apiVersion: v1\nkind: Service\n metadata: x\n",
      "line 3 column 10: mapping values are not allowed in this context" },
    { "yaml undefined alias", "a: *nope\n",
      "line 1 column 4: found undefined alias" },
    { "json syntax", "{\"apiVersion\": \"v1\", \"kind\": \"Service\"\n\"metadata\": {}}\n",
      "line 2 column 1: did not find expected ',' or '}' (while parsing a flow mapping at line 1)" },
    { "tab indent", "apiVersion: v1\nkind: Service\nmetadata:\n\tname: web\n",
      "line 4 column 1: found character that cannot start any token (while scanning for the "
      "next token at line 4)" },
    { "alias cycle", "apiVersion: v1\nkind: Service\nmetadata: &m\n  name: web\n  x: *m\n",
      "document 1: metadata.x: alias refers to a node that contains it" },
    { "alias bomb",
      "a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
      "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
      "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
      "g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]\n"
      "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n",
      "document 1: f[7][8][9][2][1][5]: too many nodes after expanding aliases" },
    { "too deep",
      "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\nx: "
      "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["
      "]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]\n",
      "document 1: x[0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0]"
      "[0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0]"
      "[0][0][0][0][0][0][0][0][0]: nested more than 64 levels deep" },
    /* ---- Pod ---- */
    { "pod containers missing", POD_HEAD "spec:\n  hostname: a\n",
      "document 1: spec.containers: required" },
    { "pod containers empty", POD_HEAD "spec:\n  containers: []\n",
      "document 1: spec.containers: required" },
    { "pod container name missing", POD_HEAD "spec:\n  containers:\n  - image: x\n",
      "document 1: spec.containers[0].name: required" },
    { "pod container names dup", POD_HEAD "spec:\n  containers:\n  - name: a\n  - name: a\n",
      "document 1: spec.containers[1].name: duplicate \"a\"" },
    { "pod hostname bad", POD_HEAD "spec:\n  hostname: a.b\n  containers:\n  - name: a\n",
      "document 1: spec.hostname: must be a DNS-1123 label (lowercase letters, digits and '-', "
      "starting and ending with a letter or digit, at most 63 characters) (got \"a.b\")" },
    { "pod port name no letter", POD_C0 "    ports:\n    - name: \"8080\"\n"
      "      containerPort: 8080\n" "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n",
      "document 1: spec.containers[0].ports[0].name: must be an IANA_SVC_NAME (at most 15 "
      "lowercase letters, digits and '-', with at least one letter) (got \"8080\")" },
    { "pod port name too long", POD_HEAD POD_C0 "    ports:\n    - name: abcdefghijklmnop\n"
      "      containerPort: 8080\n",
      "document 1: spec.containers[0].ports[0].name: must be an IANA_SVC_NAME (at most 15 "
      "lowercase letters, digits and '-', with at least one letter) (got \"abcdefghijklmnop\")" },
    { "pod containerPort 0", POD_HEAD POD_C0 "    ports:\n    - containerPort: 0\n",
      "document 1: spec.containers[0].ports[0].containerPort: must be 1-65535" },
    { "pod containerPort missing", POD_HEAD POD_C0 "    ports:\n    - name: http\n",
      "document 1: spec.containers[0].ports[0].containerPort: required" },
    { "pod port names dup", POD_HEAD POD_C0 "    ports:\n    - name: http\n"
      "      containerPort: 80\n    - name: http\n      containerPort: 81\n",
      "document 1: spec.containers[0].ports[1].name: duplicate \"http\"" },
    { "pod port protocol", POD_HEAD POD_C0 "    ports:\n    - containerPort: 80\n"
      "      protocol: ICMP\n",
      "document 1: spec.containers[0].ports[0].protocol: must be TCP, UDP or SCTP (got \"ICMP\")" },
    { "probe two handlers", POD_HEAD POD_C0 "    readinessProbe:\n      exec:\n"
      "        command: [true]\n      tcpSocket:\n        port: 80\n",
      "document 1: spec.containers[0].readinessProbe: must specify exactly one of exec, "
      "tcpSocket, httpGet, grpc" },
    { "probe no handler", POD_HEAD POD_C0 "    livenessProbe:\n      periodSeconds: 5\n",
      "document 1: spec.containers[0].livenessProbe: must specify exactly one of exec, "
      "tcpSocket, httpGet, grpc" },
    { "probe exec command bool", POD_HEAD POD_C0 "    readinessProbe:\n      exec:\n"
      "        command: [true]\n",
      "document 1: spec.containers[0].readinessProbe.exec.command[0]: must be a string" },
    { "probe exec empty", POD_HEAD POD_C0 "    readinessProbe:\n      exec:\n"
      "        command: []\n",
      "document 1: spec.containers[0].readinessProbe.exec.command: required" },
    { "probe period 0", POD_HEAD POD_C0 "    readinessProbe:\n      tcpSocket:\n"
      "        port: 80\n      periodSeconds: 0\n",
      "document 1: spec.containers[0].readinessProbe.periodSeconds: must be at least 1" },
    { "probe timeout 0", POD_HEAD POD_C0 "    readinessProbe:\n      tcpSocket:\n"
      "        port: 80\n      timeoutSeconds: 0\n",
      "document 1: spec.containers[0].readinessProbe.timeoutSeconds: must be at least 1" },
    { "probe initial delay negative", POD_HEAD POD_C0 "    readinessProbe:\n      tcpSocket:\n"
      "        port: 80\n      initialDelaySeconds: -1\n",
      "document 1: spec.containers[0].readinessProbe.initialDelaySeconds: must be 0 or more" },
    { "probe failure huge", POD_HEAD POD_C0 "    readinessProbe:\n      tcpSocket:\n"
      "        port: 80\n      failureThreshold: 2147483648\n",
      "document 1: spec.containers[0].readinessProbe.failureThreshold: must be at most "
      "2147483647" },
    { "liveness success 2", POD_HEAD POD_C0 "    livenessProbe:\n      tcpSocket:\n"
      "        port: 80\n      successThreshold: 2\n",
      "document 1: spec.containers[0].livenessProbe.successThreshold: must be 1 for liveness "
      "and startup probes" },
    { "startup success 3", POD_HEAD POD_C0 "    startupProbe:\n      grpc:\n"
      "        port: 9090\n      successThreshold: 3\n",
      "document 1: spec.containers[0].startupProbe.successThreshold: must be 1 for liveness "
      "and startup probes" },
    { "probe scheme bad", POD_HEAD POD_C0 "    readinessProbe:\n      httpGet:\n"
      "        port: 80\n        scheme: FTP\n",
      "document 1: spec.containers[0].readinessProbe.httpGet.scheme: must be HTTP or HTTPS "
      "(got \"FTP\")" },
    { "probe http port missing", POD_HEAD POD_C0 "    readinessProbe:\n      httpGet:\n"
      "        path: /healthz\n",
      "document 1: spec.containers[0].readinessProbe.httpGet.port: required" },
    { "probe header name missing", POD_HEAD POD_C0 "    readinessProbe:\n      httpGet:\n"
      "        port: 80\n        httpHeaders:\n        - value: x\n",
      "document 1: spec.containers[0].readinessProbe.httpGet.httpHeaders[0].name: required" },
    { "probe grpc named port", POD_HEAD POD_C0 "    readinessProbe:\n      grpc:\n"
      "        port: grpc\n",
      "document 1: spec.containers[0].readinessProbe.grpc.port: must be an integer" },
    { "probe tcp bad name", POD_HEAD POD_C0 "    readinessProbe:\n      tcpSocket:\n"
      "        port: HTTP\n",
      "document 1: spec.containers[0].readinessProbe.tcpSocket.port: must be 1-65535 or an "
      "IANA_SVC_NAME (got \"HTTP\")" },
    { "pod phase bad", POD_HEAD POD_C0 "status:\n  phase: running\n",
      "document 1: status.phase: must be Pending, Running, Succeeded, Failed or Unknown "
      "(got \"running\")" },
    { "pod podIP bad", POD_HEAD POD_C0 "status:\n  podIP: 10.0.0\n",
      "document 1: status.podIP: must be a valid IP address (got \"10.0.0\")" },
    { "pod podIPs mismatch", POD_HEAD POD_C0 "status:\n  podIP: 10.0.0.1\n"
      "  podIPs:\n  - ip: 10.0.0.2\n",
      "document 1: status.podIPs[0].ip: must match status.podIP" },
    { "pod podIPs same family", POD_HEAD POD_C0 "status:\n  podIPs:\n  - ip: 10.0.0.1\n"
      "  - ip: 10.0.0.2\n",
      "document 1: status.podIPs[1].ip: must be of a different IP family than status.podIPs[0]" },
    { "pod condition status bad", POD_HEAD POD_C0 "status:\n  conditions:\n  - type: Ready\n"
      "    status: yes\n",
      "document 1: status.conditions[0].status: must be True, False or Unknown (got \"yes\")" },
    /* ---- EndpointSlice ---- */
    { "slice service label missing", "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n"
      "metadata:\n  name: x\naddressType: IPv4\n",
      "document 1: metadata.labels[kubernetes.io/service-name]: required" },
    { "slice addressType missing", SLICE_HEAD, "document 1: addressType: required" },
    { "slice addressType bad", SLICE_HEAD "addressType: ipv4\n",
      "document 1: addressType: must be IPv4, IPv6 or FQDN (got \"ipv4\")" },
    { "slice address family", SLICE_HEAD "addressType: IPv4\nendpoints:\n"
      "- addresses: [10.0.0.1, \"fd00::1\"]\n",
      "document 1: endpoints[0].addresses[1]: must be an IPv4 address (got \"fd00::1\")" },
    { "slice addresses missing", SLICE_HEAD "addressType: IPv4\nendpoints:\n- hostname: a\n",
      "document 1: endpoints[0].addresses: required" },
    { "slice ready string", SLICE_HEAD "addressType: IPv4\nendpoints:\n"
      "- addresses: [10.0.0.1]\n  conditions:\n    ready: \"yes\"\n",
      "document 1: endpoints[0].conditions.ready: must be a boolean" },
    { "slice port bad", SLICE_HEAD "addressType: IPv4\nports:\n- port: 0\n",
      "document 1: ports[0].port: must be 1-65535" },
    { "slice port protocol", SLICE_HEAD "addressType: IPv4\nports:\n- port: 80\n  protocol: X\n",
      "document 1: ports[0].protocol: must be TCP, UDP or SCTP (got \"X\")" },
};

static void run_err_rows(void)
{
    for (size_t i = 0; i < sizeof(err_rows) / sizeof(err_rows[0]); i++) {
        struct manifest_objs out;
        char err[1024];
        int rc;

        cur_row = err_rows[i].name;
        memset(&out, 0xab, sizeof(out));
        rc = manifest_parse(err_rows[i].yaml, strlen(err_rows[i].yaml), NOW, &out, err,
                            sizeof(err));
        CHECK(rc == -1, "rc %d, want -1", rc);
        CHECK(strcmp(err, err_rows[i].err) == 0, "error\n   got: %s\n  want: %s", err,
              err_rows[i].err);
        CHECK(out.n_services == 0 && out.n_pods == 0 && out.n_slices == 0 &&
              out.n_warnings == 0 && !out.services && !out.pods && !out.slices,
              "objects left after failure");
        manifest_objs_free(&out);
    }
}

/* ---- success rows --------------------------------------------------------- */

typedef void (*check_fn)(const struct manifest_objs *o);

static void chk_defaults(const struct manifest_objs *o)
{
    const struct svcd_service *s = o->services[0];
    CHECK(str_is(s->meta.name, "web") && str_is(s->meta.ns, "default"), "name/ns");
    CHECK(s->meta.created == NOW, "created = now");
    CHECK(s->type == SVCD_SVC_CLUSTER_IP && !s->headless && s->n_cluster_ips == 0, "type/ips");
    CHECK(s->n_ip_families == 0, "no families");
    CHECK(s->n_ports == 1 && s->ports[0].name == NULL, "one unnamed port");
    CHECK(s->ports[0].protocol == SVCD_PROTO_TCP, "TCP default");
    CHECK(s->ports[0].port == 80 && s->ports[0].target_port == 80 &&
          !s->ports[0].target_port_name, "targetPort defaults to port");
    CHECK(s->ports[0].node_port == 0, "no nodePort");
    CHECK(!s->has_selector && s->selector.n == 0, "no selector");
    CHECK(!s->affinity_client_ip && s->affinity_timeout == 10800, "affinity defaults");
    CHECK(!s->publish_not_ready && !s->external_name && s->n_external_ips == 0 &&
          s->n_lb_ingress_ips == 0, "misc defaults");
    CHECK(s->internal_policy == SVCD_POLICY_CLUSTER && s->external_policy == SVCD_POLICY_CLUSTER,
          "policies");
    CHECK(s->meta.labels.n == 0 && !s->meta.uid && !s->meta.deletion_timestamp, "meta empty");
    CHECK(s->ip_family_policy == SVCD_IPFP_SINGLE && s->health_check_node_port == 0,
          "ipFamilyPolicy SingleStack, no healthCheckNodePort");
}

static void chk_full_service(const struct manifest_objs *o)
{
    const struct svcd_service *s = o->services[0];
    CHECK(str_is(s->meta.ns, "shop"), "ns");
    CHECK(s->meta.created == 1704164645, "creationTimestamp 2024-01-02T03:04:05Z = %lld",
          (long long)s->meta.created);
    CHECK(str_is(s->meta.uid, "1234-abcd"), "uid");
    CHECK(str_is(svcd_kvmap_get(&s->meta.labels, "app.kubernetes.io/name"), "web"), "label");
    CHECK(str_is(svcd_kvmap_get(&s->meta.annotations, "note"), "a: b"), "annotation");
    CHECK(s->type == SVCD_SVC_NODE_PORT, "NodePort");
    CHECK(s->n_cluster_ips == 2 && ip_is(&s->cluster_ips[0], "10.96.0.10") &&
          ip_is(&s->cluster_ips[1], "fd00:10:96::a"), "dual-stack clusterIPs");
    CHECK(s->n_ip_families == 2 && s->ip_families[0] == AF_INET &&
          s->ip_families[1] == AF_INET6, "families");
    CHECK(s->n_ports == 3, "3 ports");
    CHECK(str_is(s->ports[0].name, "http") && s->ports[0].port == 80 &&
          s->ports[0].target_port == 0 && str_is(s->ports[0].target_port_name, "web") &&
          s->ports[0].node_port == 30080, "port 0");
    CHECK(str_is(s->ports[1].name, "dns") && s->ports[1].protocol == SVCD_PROTO_UDP &&
          s->ports[1].target_port == 5353 && !s->ports[1].target_port_name, "port 1");
    CHECK(s->ports[2].protocol == SVCD_PROTO_SCTP && s->ports[2].port == 80, "port 2 SCTP");
    CHECK(s->has_selector && s->selector.n == 2 &&
          str_is(svcd_kvmap_get(&s->selector, "tier"), "fe"), "selector");
    CHECK(s->affinity_client_ip && s->affinity_timeout == 60, "affinity");
    CHECK(s->publish_not_ready, "publishNotReady");
    CHECK(s->n_external_ips == 2 && ip_is(&s->external_ips[1], "2001:db8::1"), "externalIPs");
    CHECK(s->internal_policy == SVCD_POLICY_LOCAL && s->external_policy == SVCD_POLICY_LOCAL,
          "policies Local");
    CHECK(s->n_lb_ingress_ips == 1 && ip_is(&s->lb_ingress_ips[0], "192.0.2.7"),
          "lb ingress (hostname-only entry skipped)");
}

static void chk_headless(const struct manifest_objs *o)
{
    const struct svcd_service *s = o->services[0];
    CHECK(s->headless && s->n_cluster_ips == 0 && s->n_ports == 0, "headless no ports");
    CHECK(s->has_selector, "selector");
    CHECK(o->services[1]->headless && o->services[1]->n_ip_families == 1 &&
          o->services[1]->ip_families[0] == AF_INET6, "headless via clusterIPs, IPv6 family");
}

static void chk_external_name(const struct manifest_objs *o)
{
    const struct svcd_service *s = o->services[0];
    CHECK(s->type == SVCD_SVC_EXTERNAL_NAME && str_is(s->external_name, "db.example.com"),
          "externalName trailing dot stripped: %s", s->external_name);
    CHECK(s->n_ports == 0 && s->n_cluster_ips == 0, "no ports needed");
}

static void chk_multi(const struct manifest_objs *o)
{
    CHECK(str_is(o->services[0]->meta.name, "a") && str_is(o->services[1]->meta.name, "b"),
          "order kept");
    CHECK(str_is(o->services[1]->meta.ns, "other"), "ns");
    CHECK(str_is(o->pods[0]->meta.name, "a"), "pod with same name as service ok");
    CHECK(str_is(o->warnings[0], "document 4: Deployment default/a: svcd does not run "
                 "workloads; run its pods with `podman kube play` and use the podman source "
                 "(docs/PODMAN.md)"), "warning: %s", o->warnings[0]);
}

static void chk_list(const struct manifest_objs *o)
{
    CHECK(str_is(o->services[0]->meta.name, "a"), "service from list");
    CHECK(str_is(o->pods[0]->meta.name, "p"), "pod from list");
    CHECK(str_is(o->warnings[0], "document 1 item 2: kind ConfigMap ignored"), "warning: %s",
          o->warnings[0]);
    CHECK(str_is(o->services[1]->meta.name, "after"), "document after List");
}

static void chk_typed_list(const struct manifest_objs *o)
{
    CHECK(str_is(o->services[0]->meta.name, "a") && str_is(o->services[1]->meta.name, "b"),
          "ServiceList items without kind");
}

static void chk_json(const struct manifest_objs *o)
{
    const struct svcd_service *s = o->services[0];
    CHECK(str_is(s->meta.name, "web") && s->n_ports == 2, "json service");
    CHECK(str_is(s->ports[1].target_port_name, "metrics") && s->ports[0].target_port == 8080,
          "json targetPorts");
    CHECK(ip_is(&s->cluster_ips[0], "10.96.0.20"), "json clusterIP");
    CHECK(str_is(svcd_kvmap_get(&s->selector, "app"), "web"), "json selector");
    CHECK(str_is(o->pods[0]->meta.name, "web-0"), "json second doc");
}

static void chk_pod(const struct manifest_objs *o)
{
    const struct svcd_pod *p = o->pods[0];
    const struct svcd_container *c0, *c1;
    CHECK(str_is(p->meta.name, "web-0.v1") && str_is(p->meta.ns, "shop"), "name subdomain ok");
    CHECK(str_is(p->meta.deletion_timestamp, "2024-05-01T10:00:00+02:00"), "deletionTimestamp");
    CHECK(p->meta.created == 1704164645 - 3600 - 1800, "creationTimestamp with offset: %lld",
          (long long)p->meta.created);
    CHECK(str_is(p->hostname, "web-0") && str_is(p->subdomain, "web") &&
          str_is(p->node_name, "node-1.example"), "hostname/subdomain/nodeName");
    CHECK(p->phase == SVCD_PHASE_RUNNING, "phase");
    CHECK(p->n_ips == 2 && ip_is(&p->ips[0], "10.244.1.5") && ip_is(&p->ips[1], "fd00:244::5"),
          "dual-stack pod IPs");
    CHECK(p->ready_condition == SVCD_FALSE && p->probe_ready == SVCD_UNKNOWN, "Ready False");
    CHECK(!svcd_pod_is_ready(p), "not ready");
    CHECK(p->n_containers == 2, "containers");
    c0 = &p->containers[0];
    c1 = &p->containers[1];
    CHECK(str_is(c0->name, "app") && c0->n_ports == 2, "c0");
    CHECK(str_is(c0->ports[0].name, "http") && c0->ports[0].container_port == 8080 &&
          c0->ports[0].protocol == SVCD_PROTO_TCP, "c0 port 0");
    CHECK(c0->ports[1].name == NULL && c0->ports[1].protocol == SVCD_PROTO_UDP, "c0 port 1");
    CHECK(svcd_pod_named_port(p, "http", SVCD_PROTO_TCP) == 8080, "named port");
    CHECK(svcd_pod_named_port(p, "metrics", SVCD_PROTO_TCP) == 9090, "named port c1");
    /* readiness: httpGet with everything */
    CHECK(c0->readiness.kind == SVCD_PROBE_HTTP && c0->readiness.port == 0 &&
          str_is(c0->readiness.port_name, "http"), "http probe named port");
    CHECK(str_is(c0->readiness.path, "/healthz") && str_is(c0->readiness.scheme, "HTTPS") &&
          str_is(c0->readiness.host, "127.0.0.1"), "http probe fields");
    CHECK(str_is(svcd_kvmap_get(&c0->readiness.http_headers, "X-Probe"), "1") &&
          c0->readiness.http_headers.n == 2, "http headers");
    CHECK(c0->readiness.initial_delay_s == 5 && c0->readiness.period_s == 2 &&
          c0->readiness.timeout_s == 3 && c0->readiness.success_threshold == 2 &&
          c0->readiness.failure_threshold == 4, "probe numbers");
    /* liveness: tcpSocket defaults */
    CHECK(c0->liveness.kind == SVCD_PROBE_TCP && c0->liveness.port == 8080 &&
          !c0->liveness.port_name, "tcp probe");
    CHECK(c0->liveness.period_s == 10 && c0->liveness.timeout_s == 1 &&
          c0->liveness.success_threshold == 1 && c0->liveness.failure_threshold == 3 &&
          c0->liveness.initial_delay_s == 0, "probe defaults");
    CHECK(c0->startup.kind == SVCD_PROBE_NONE, "no startup probe");
    /* container 1: exec readiness, grpc startup, httpGet default path/scheme */
    CHECK(c1->readiness.kind == SVCD_PROBE_EXEC && c1->readiness.exec_argv &&
          str_is(c1->readiness.exec_argv[0], "cat") &&
          str_is(c1->readiness.exec_argv[1], "/tmp/ready") && !c1->readiness.exec_argv[2],
          "exec argv");
    CHECK(c1->startup.kind == SVCD_PROBE_GRPC && c1->startup.port == 9091 &&
          str_is(c1->startup.grpc_service, "health"), "grpc probe");
    CHECK(c1->liveness.kind == SVCD_PROBE_HTTP && str_is(c1->liveness.path, "/") &&
          str_is(c1->liveness.scheme, "HTTP") && c1->liveness.port == 9090, "http defaults");
    /* second pod: minimal, no status */
    CHECK(o->pods[1]->phase == SVCD_PHASE_PENDING && o->pods[1]->n_ips == 0 &&
          o->pods[1]->ready_condition == SVCD_UNKNOWN, "pod without status");
    /* third pod: podIP only, Running, no Ready condition -> ready */
    CHECK(o->pods[2]->n_ips == 1 && ip_is(&o->pods[2]->ips[0], "fd00::7") &&
          svcd_pod_is_ready(o->pods[2]), "IPv6 single pod ready");
}

static void chk_slices(const struct manifest_objs *o)
{
    const struct svcd_endpoint_slice *s = o->slices[0];
    CHECK(str_is(s->service_name, "web") && s->address_family == AF_INET, "slice header");
    CHECK(s->n_endpoints == 4, "endpoints");
    CHECK(s->endpoints[0].ready && s->endpoints[0].serving && !s->endpoints[0].terminating,
          "nil conditions -> ready, serving, not terminating");
    CHECK(!s->endpoints[1].ready && !s->endpoints[1].serving && !s->endpoints[1].terminating,
          "ready false -> serving false");
    CHECK(!s->endpoints[2].ready && s->endpoints[2].serving && s->endpoints[2].terminating,
          "terminating but serving");
    CHECK(s->endpoints[3].n_addresses == 2 && ip_is(&s->endpoints[3].addresses[1], "10.0.0.5"),
          "two addresses");
    CHECK(str_is(s->endpoints[0].hostname, "a") && str_is(s->endpoints[0].node_name, "n1"),
          "hostname/nodeName");
    CHECK(s->n_ports == 2 && str_is(s->ports[0].name, "http") && s->ports[0].port == 8080 &&
          s->ports[0].protocol == SVCD_PROTO_TCP, "port 0");
    CHECK(s->ports[1].name == NULL && s->ports[1].protocol == SVCD_PROTO_UDP &&
          s->ports[1].port == 53, "port 1 (empty name)");
    CHECK(o->slices[1]->address_family == AF_INET6 &&
          ip_is(&o->slices[1]->endpoints[0].addresses[0], "fd00::9"), "IPv6 slice");
    CHECK(str_is(o->warnings[0], "document 3: EndpointSlice default/fq: addressType FQDN ignored"),
          "FQDN warning: %s", o->warnings[0]);
}

static void chk_other_group(const struct manifest_objs *o)
{
    CHECK(str_is(o->warnings[0], "document 1: kind Service of apiVersion serving.knative.dev/v1 "
                 "ignored"), "knative: %s", o->warnings[0]);
    CHECK(str_is(o->warnings[1], "document 2: kind EndpointSlice of apiVersion "
                 "example.com/v1 ignored"), "crd: %s", o->warnings[1]);
}

static void chk_null_fields(const struct manifest_objs *o)
{
    const struct svcd_service *s = o->services[0];
    CHECK(s->meta.created == NOW, "creationTimestamp null -> now");
    CHECK(s->meta.labels.n == 0 && !s->has_selector, "null labels/selector");
    CHECK(str_is(svcd_kvmap_get(&s->meta.annotations, "empty"), ""), "null value -> \"\"");
}

static const struct {
    const char *name;
    const char *yaml;
    size_t n_services, n_pods, n_slices, n_warnings;
    check_fn check;
} ok_rows[] = {
    { "empty file", "", 0, 0, 0, 0, NULL },
    { "comments only", "# nothing here\n", 0, 0, 0, 0, NULL },
    { "empty documents", "---\n---\n# c\n---\n", 0, 0, 0, 0, NULL },
    { "defaults", SVC_HEAD "spec:\n" PORTS80, 1, 0, 0, 0, chk_defaults },
    { "full service",
      "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n  namespace: shop\n"
      "  uid: 1234-abcd\n  creationTimestamp: \"2024-01-02T03:04:05Z\"\n"
      "  labels:\n    app.kubernetes.io/name: web\n  annotations:\n    note: 'a: b'\n"
      "  unknownField: {x: 1}\n"
      "spec:\n  type: NodePort\n  clusterIP: 10.96.0.10\n"
      "  clusterIPs: [10.96.0.10, \"fd00:10:96::a\"]\n  ipFamilies: [IPv4, IPv6]\n"
      "  ipFamilyPolicy: PreferDualStack\n"
      "  ports:\n  - name: http\n    port: 80\n    targetPort: web\n    nodePort: 30080\n"
      "  - name: dns\n    port: 53\n    protocol: UDP\n    targetPort: 5353\n"
      "  - name: sctp\n    port: 80\n    protocol: SCTP\n"
      "  selector:\n    app: web\n    tier: fe\n"
      "  sessionAffinity: ClientIP\n"
      "  sessionAffinityConfig:\n    clientIP:\n      timeoutSeconds: 60\n"
      "  publishNotReadyAddresses: true\n  externalIPs: [192.0.2.1, \"2001:db8::1\"]\n"
      "  internalTrafficPolicy: Local\n  externalTrafficPolicy: Local\n"
      "status:\n  loadBalancer:\n    ingress:\n    - hostname: lb.example.com\n"
      "    - ip: 192.0.2.7\n",
      1, 0, 0, 0, chk_full_service },
    { "headless",
      SVC_HEAD "spec:\n  clusterIP: None\n  selector:\n    app: web\n---\n"
      "apiVersion: v1\nkind: Service\nmetadata:\n  name: h6\nspec:\n  clusterIPs: [None]\n"
      "  ipFamilies: [IPv6]\n  ipFamilyPolicy: SingleStack\n",
      2, 0, 0, 0, chk_headless },
    { "external name", SVC_HEAD "spec:\n  type: ExternalName\n  externalName: db.example.com.\n",
      1, 0, 0, 0, chk_external_name },
    { "multi-doc",
      "# leading comment\n---\napiVersion: v1\nkind: Service\nmetadata: {name: a}\n"
      "spec: {ports: [{port: 1}]}\n---\n"
      "apiVersion: v1\nkind: Service\nmetadata: {name: b, namespace: other}\n"
      "spec: {ports: [{port: 2}]}\n---\n"
      "---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: a}\nspec: {replicas: 1.5}\n"
      "---\napiVersion: v1\nkind: Pod\nmetadata: {name: a}\nspec: {containers: [{name: c}]}\n"
      "---\napiVersion: v1\nkind: Service\nmetadata: {name: a, namespace: other}\n"
      "spec: {ports: [{port: 1}]}\n...\n",
      3, 1, 0, 2, chk_multi },
    { "List",
      "apiVersion: v1\nkind: List\nmetadata: {}\nitems:\n"
      "- apiVersion: v1\n  kind: Service\n  metadata: {name: a}\n  spec: {ports: [{port: 1}]}\n"
      "- apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: a}\n"
      "- apiVersion: v1\n  kind: Pod\n  metadata: {name: p}\n  spec: {containers: [{name: c}]}\n"
      "---\napiVersion: v1\nkind: Service\nmetadata: {name: after}\nspec: {ports: [{port: 1}]}\n",
      2, 1, 0, 2, chk_list },
    { "typed List",
      "apiVersion: v1\nkind: ServiceList\nitems:\n"
      "- metadata: {name: a}\n  spec: {ports: [{port: 1}]}\n"
      "- metadata: {name: b}\n  spec: {ports: [{port: 1}]}\n",
      2, 0, 0, 0, chk_typed_list },
    { "empty List", "apiVersion: v1\nkind: List\nitems: []\n", 0, 0, 0, 0, NULL },
    { "JSON",
      "{\n\t\"apiVersion\": \"v1\",\n\t\"kind\": \"Service\",\n"
      "\t\"metadata\": {\"name\": \"web\", \"labels\": {}},\n"
      "\t\"spec\": {\n\t\t\"clusterIP\": \"10.96.0.20\",\n"
      "\t\t\"ports\": [\n\t\t\t{\"name\": \"http\", \"port\": 80, \"targetPort\": 8080},\n"
      "\t\t\t{\"name\": \"metrics\", \"port\": 9090, \"targetPort\": \"metrics\"}\n\t\t],\n"
      "\t\t\"selector\": {\"app\": \"web\"}\n\t}\n}\n"
      "---\n{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"web-0\"},"
      "\"spec\":{\"containers\":[{\"name\":\"c\"}]},\"status\":null}\n",
      1, 1, 0, 1, chk_json },
    { "pods",
      "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web-0.v1\n  namespace: shop\n"
      "  creationTimestamp: 2024-01-02T03:04:05+01:30\n"
      "  deletionTimestamp: 2024-05-01T10:00:00+02:00\n"
      "spec:\n  hostname: web-0\n  subdomain: web\n  nodeName: node-1.example\n"
      "  containers:\n  - name: app\n    image: nginx\n"
      "    ports:\n    - name: http\n      containerPort: 8080\n    - containerPort: 53\n"
      "      protocol: UDP\n"
      "    readinessProbe:\n      httpGet:\n        path: /healthz\n        port: http\n"
      "        host: 127.0.0.1\n        scheme: HTTPS\n        httpHeaders:\n"
      "        - name: X-Probe\n          value: \"1\"\n        - name: X-Empty\n"
      "      initialDelaySeconds: 5\n      periodSeconds: 2\n      timeoutSeconds: 3\n"
      "      successThreshold: 2\n      failureThreshold: 4\n"
      "    livenessProbe:\n      tcpSocket:\n        port: 8080\n"
      "  - name: sidecar\n    ports:\n    - name: metrics\n      containerPort: 9090\n"
      "    readinessProbe:\n      exec:\n        command: [cat, /tmp/ready]\n"
      "    startupProbe:\n      grpc:\n        port: 9091\n        service: health\n"
      "    livenessProbe:\n      httpGet:\n        port: 9090\n"
      "status:\n  phase: Running\n  podIP: 10.244.1.5\n"
      "  podIPs:\n  - ip: 10.244.1.5\n  - ip: fd00:244::5\n"
      "  conditions:\n  - type: PodScheduled\n    status: \"True\"\n"
      "  - type: Ready\n    status: \"False\"\n"
      "---\napiVersion: v1\nkind: Pod\nmetadata: {name: bare}\nspec: {containers: [{name: c}]}\n"
      "---\napiVersion: v1\nkind: Pod\nmetadata: {name: six}\nspec: {containers: [{name: c}]}\n"
      "status: {phase: Running, podIP: \"fd00::7\"}\n",
      0, 3, 0, 1, chk_pod },
    { "slices",
      SLICE_HEAD "addressType: IPv4\nendpoints:\n"
      "- addresses: [10.0.0.1]\n  hostname: a\n  nodeName: n1\n"
      "- addresses: [10.0.0.2]\n  conditions: {ready: false}\n"
      "- addresses: [10.0.0.3]\n  conditions: {ready: false, serving: true, terminating: true}\n"
      "- addresses: [10.0.0.4, 10.0.0.5]\n"
      "ports:\n- name: http\n  port: 8080\n- name: \"\"\n  port: 53\n  protocol: UDP\n"
      "---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: web-v6\n"
      "  labels: {kubernetes.io/service-name: web}\naddressType: IPv6\n"
      "endpoints: [{addresses: [\"fd00::9\"]}]\n"
      "---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: fq\n"
      "  labels: {kubernetes.io/service-name: web}\naddressType: FQDN\n"
      "endpoints: [{addresses: [example.com]}]\n",
      0, 0, 2, 1, chk_slices },
    { "other API groups",
      "apiVersion: serving.knative.dev/v1\nkind: Service\nmetadata: {name: Web}\n---\n"
      "apiVersion: example.com/v1\nkind: EndpointSlice\nmetadata: {name: x}\n",
      0, 0, 0, 2, chk_other_group },
    { "null fields",
      "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n  creationTimestamp: null\n"
      "  labels:\n  annotations:\n    empty:\nspec:\n  selector: ~\n  clusterIP: \"\"\n" PORTS80,
      1, 0, 0, 0, chk_null_fields },
};

static void run_ok_rows(void)
{
    for (size_t i = 0; i < sizeof(ok_rows) / sizeof(ok_rows[0]); i++) {
        struct manifest_objs out;
        char err[1024];
        int rc;

        cur_row = ok_rows[i].name;
        rc = manifest_parse(ok_rows[i].yaml, strlen(ok_rows[i].yaml), NOW, &out, err,
                            sizeof(err));
        CHECK(rc == 0, "rc %d: %s", rc, err);
        if (rc != 0)
            continue;
        CHECK(out.n_services == ok_rows[i].n_services && out.n_pods == ok_rows[i].n_pods &&
              out.n_slices == ok_rows[i].n_slices && out.n_warnings == ok_rows[i].n_warnings,
              "counts svc=%zu pod=%zu slice=%zu warn=%zu", out.n_services, out.n_pods,
              out.n_slices, out.n_warnings);
        if (ok_rows[i].check && out.n_services == ok_rows[i].n_services &&
            out.n_pods == ok_rows[i].n_pods && out.n_slices == ok_rows[i].n_slices &&
            out.n_warnings == ok_rows[i].n_warnings)
            ok_rows[i].check(&out);
        manifest_objs_free(&out);
    }
}

/* ---- fingerprints ------------------------------------------------------------ */

static uint64_t fp_of(const char *yaml, size_t idx)
{
    struct manifest_objs out;
    char err[512];
    uint64_t fp = 0;

    if (manifest_parse(yaml, strlen(yaml), NOW, &out, err, sizeof(err)) != 0) {
        printf("fp_of: %s\n", err);
        return 0;
    }
    if (idx < out.n_services)
        fp = out.services[idx]->meta.fingerprint;
    manifest_objs_free(&out);
    return fp;
}

static void test_fingerprints(void)
{
    const char *base = SVC_HEAD "spec:\n  ports:\n  - port: 80\n    targetPort: 8080\n";
    static const struct {
        const char *yaml;
        size_t idx;
        bool same;       /* same fingerprint as base? */
    } rows[] = {
        { SVC_HEAD "spec:\n  ports:\n  - port: 80\n    targetPort: 8080\n", 0, true },
        /* formatting only: flow style, comments, quotes on keys */
        { "apiVersion: v1\nkind: Service\nmetadata: {name: web}  # c\n"
          "spec: {ports: [{port: 80, targetPort: 8080}]}\n", 0, true },
        { "{\"apiVersion\": \"v1\", \"kind\": \"Service\", \"metadata\": {\"name\": \"web\"},"
          " \"spec\": {\"ports\": [{\"port\": 80, \"targetPort\": 8080}]}}", 0, false },
        /* same object in a later document of another file */
        { "apiVersion: v1\nkind: Service\nmetadata: {name: zz}\nspec: {ports: [{port: 1}]}\n"
          "---\n" SVC_HEAD "spec:\n  ports:\n  - port: 80\n    targetPort: 8080\n", 1, true },
        { SVC_HEAD "spec:\n  ports:\n  - port: 80\n    targetPort: 8081\n", 0, false },
        { SVC_HEAD "spec:\n  ports:\n  - port: 80\n    targetPort: \"http\"\n", 0, false },
        { SVC_HEAD "  labels: {a: b}\nspec:\n  ports:\n  - port: 80\n    targetPort: 8080\n", 0,
          false },
        { SVC_HEAD "spec:\n  ports:\n  - port: 80\n    targetPort: 8080\n  x: 1\n", 0, false },
    };
    uint64_t fb = fp_of(base, 0);

    cur_row = "fingerprint";
    CHECK(fb != 0, "base fingerprint");
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        uint64_t f = fp_of(rows[i].yaml, rows[i].idx);
        CHECK(f != 0, "row %zu parsed", i);
        CHECK((f == fb) == rows[i].same, "row %zu: same=%d want %d", i, f == fb, rows[i].same);
    }
    /* JSON quotes strings that YAML leaves plain: a different tree, a
     * different fingerprint, but two JSON copies agree. */
    CHECK(fp_of(rows[2].yaml, 0) == fp_of(rows[2].yaml, 0), "JSON stable");
}

/* ---- files in tests/data/manifests ------------------------------------------ */

static void test_data_files(void)
{
    char dir[512], path[1024];
    DIR *d;
    struct dirent *e;
    int seen = 0;

    snprintf(dir, sizeof(dir), "%s/manifests", SVCD_TEST_DATA);
    d = opendir(dir);
    cur_row = "data files";
    CHECK(d != NULL, "open %s", dir);
    if (!d)
        return;
    while ((e = readdir(d))) {
        bool good = !strncmp(e->d_name, "good", 4), bad = !strncmp(e->d_name, "bad", 3);
        FILE *f;
        char *buf;
        long n;
        struct manifest_objs out;
        char err[1024];
        int rc;

        if (!good && !bad)
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        if (!(f = fopen(path, "rb")))
            continue;
        fseek(f, 0, SEEK_END);
        n = ftell(f);
        fseek(f, 0, SEEK_SET);
        buf = malloc((size_t)n + 1);
        if (buf && fread(buf, 1, (size_t)n, f) == (size_t)n) {
            cur_row = e->d_name;
            rc = manifest_parse(buf, (size_t)n, NOW, &out, err, sizeof(err));
            CHECK(rc == (good ? 0 : -1), "rc %d (%s)", rc, rc ? err : "ok");
            if (rc == 0)
                CHECK(out.n_services + out.n_pods + out.n_slices > 0, "no objects");
            if (bad && rc != 0)
                CHECK(strncmp(err, "document ", 9) == 0 || strncmp(err, "line ", 5) == 0,
                      "error format: %s", err);
            manifest_objs_free(&out);
            seen++;
        }
        free(buf);
        fclose(f);
    }
    closedir(d);
    cur_row = "data files";
    CHECK(seen >= 3, "found %d files", seen);
}

/* manifest_parse_each: an invalid object is rejected on its own (named by
 * kind, namespace and name when readable); the others are returned; a YAML
 * syntax error still fails the whole file. */
static void test_parse_each(void)
{
    static const struct {
        const char *name, *yaml;
        size_t n_services, n_pods;
        const char *rejects;     /* "Kind ns/name: error|..." */
        int rc;
    } rows[] = {
        { "one bad of three",
          "apiVersion: v1\nkind: Service\nmetadata: {name: a}\nspec: {ports: [{port: 1}]}\n---\n"
          "apiVersion: v1\nkind: Service\nmetadata: {name: b, namespace: x}\n"
          "spec: {ports: [{port: 70000}]}\n---\n"
          "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: c}]}\n"
          "status: {phase: Running, podIP: 10.0.0.1}\n",
          1, 1, "Service x/b: document 2: spec.ports[0].port: must be 1-65535|", 0 },
        { "no name",
          "apiVersion: v1\nkind: Service\nmetadata: {}\nspec: {ports: [{port: 1}]}\n---\n"
          "apiVersion: v1\nkind: Service\nmetadata: {name: ok}\nspec: {ports: [{port: 1}]}\n",
          1, 0, "Service -/-: document 1: metadata.name: required|", 0 },
        { "bad List item",
          "apiVersion: v1\nkind: List\nitems:\n"
          "- {apiVersion: v1, kind: Service, metadata: {name: a}, spec: {ports: [{port: 1}]}}\n"
          "- {apiVersion: v1, kind: Service, metadata: {name: b}, spec: {type: Nope}}\n",
          1, 0, "Service default/b: document 1 item 2: spec.type: must be ClusterIP, NodePort, "
                "LoadBalancer or ExternalName (got \"Nope\")|", 0 },
        { "twice in one file",
          "apiVersion: v1\nkind: Service\nmetadata: {name: a}\nspec: {ports: [{port: 1}]}\n---\n"
          "apiVersion: v1\nkind: Service\nmetadata: {name: a}\nspec: {ports: [{port: 2}]}\n",
          1, 0, "Service default/a: document 2: Service default/a is defined twice in this file "
                "(also document 1)|", 0 },
        { "syntax error still fails the file",
          "apiVersion: v1\nkind: Service\nmetadata: {name: a}\nspec: {ports: [{port: 1}]}\n---\n"
          "a: [\n", 0, 0, "", -1 },
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        struct manifest_objs out;
        char err[512], got[2048] = "";
        size_t off = 0;
        cur_row = rows[i].name;
        int rc = manifest_parse_each(rows[i].yaml, strlen(rows[i].yaml), NOW, &out, err,
                                     sizeof(err));
        for (size_t k = 0; k < out.n_rejects && off < sizeof(got); k++)
            off += (size_t)snprintf(got + off, sizeof(got) - off, "%s %s/%s: %s|",
                                    out.rejects[k].kind ? out.rejects[k].kind : "?",
                                    out.rejects[k].ns ? out.rejects[k].ns : "-",
                                    out.rejects[k].name ? out.rejects[k].name : "-",
                                    out.rejects[k].error);
        CHECK(rc == rows[i].rc, "rc %d (%s)", rc, err);
        CHECK(out.n_services == rows[i].n_services && out.n_pods == rows[i].n_pods,
              "objects svc=%zu pod=%zu", out.n_services, out.n_pods);
        CHECK(strcmp(got, rows[i].rejects) == 0, "rejects\n   got: %s\n  want: %s", got,
              rows[i].rejects);
        manifest_objs_free(&out);
    }
}

int main(void)
{
    test_parse_each();
    run_err_rows();
    run_ok_rows();
    test_fingerprints();
    test_data_files();
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
