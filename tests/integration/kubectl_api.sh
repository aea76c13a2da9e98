#!/usr/bin/env bash
# kubectl and python3-kubernetes against svcd's read-only Kubernetes API
# (src/admin/kubeapi.c) on the admin listener of a live svcd in a lab
# namespace: discovery (api-resources), get services -A -o wide, get pods
# -o yaml, single objects, NotFound, label/field selectors, the Table
# columns, get endpointslices -w following manifest changes, and the
# Python client's list/read/watch.
set -u
source "$(dirname "$0")/lib.sh"

command -v kubectl >/dev/null || { echo "SKIP: no kubectl"; exit 0; }
lab_up 0 || it_fail "lab_up"

cat >"$LAB_MANIFESTS/web.yaml" <<'YAML'
apiVersion: v1
kind: Service
metadata: {name: web, namespace: default, labels: {app: web}}
spec:
  clusterIP: 10.96.0.10
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Pod
metadata: {name: web-1, namespace: default, labels: {app: web}}
spec:
  nodeName: n1
  containers: [{name: c, ports: [{name: http, containerPort: 8080}]}]
status: {phase: Running, podIP: 10.244.0.5, podIPs: [{ip: 10.244.0.5}]}
---
apiVersion: v1
kind: Service
metadata: {name: db, namespace: prod}
spec:
  type: NodePort
  clusterIP: 10.96.0.20
  ports: [{port: 5432, nodePort: 30432}]
YAML
svcd_start_lab --no-nft || it_fail "svcd did not start"

kc() { lab_exec_node kubectl --server "http://$SVCD_ADMIN" --cache-dir "$LAB_TMP/kcache" "$@"; }
noage() { awk -v c="$1" '{ $c = ""; print }' | tr -s ' ' | sed 's/ $//'; }   # drop column $1 (AGE)

out=$(kc api-resources 2>&1)
it_assert_eq "$(awk 'NR > 1 { print $1 }' <<<"$out" | sort | tr '\n' ' ')" \
  "endpointslices namespaces pods services " "kubectl api-resources lists the four kinds"
it_assert_contains "$(tr -s ' ' <<<"$out")" "services svc v1 true Service" "api-resources: services row"
it_assert_contains "$(tr -s ' ' <<<"$out")" "endpointslices discovery.k8s.io/v1 true EndpointSlice" \
  "api-resources: endpointslices row"

out=$(kc get services -A -o wide 2>&1)
it_assert_eq "$(noage 7 <<<"$out")" "NAMESPACE NAME TYPE CLUSTER-IP EXTERNAL-IP PORT(S) SELECTOR
default web ClusterIP 10.96.0.10 <none> 80/TCP app=web
prod db NodePort 10.96.0.20 <none> 5432:30432/TCP <none>" "kubectl get services -A -o wide"

out=$(kc get pods -o wide 2>&1)
it_assert_eq "$(noage 5 <<<"$out")" \
  "NAME READY STATUS RESTARTS IP NODE NOMINATED NODE READINESS GATES
web-1 1/1 Running 0 10.244.0.5 n1 <none> <none>" "kubectl get pods -o wide"

out=$(kc get pods -o yaml 2>&1)
for want in "kind: List" "- apiVersion: v1" "  kind: Pod" "    name: web-1" "    namespace: default" \
            "    resourceVersion: \"" "    uid: " "    creationTimestamp: \"" "    podIP: 10.244.0.5" \
            "    phase: Running" "      type: Ready" "      - containerPort: 8080"; do
  it_assert_contains "$out" "$want" "get pods -o yaml has '$want'"
done

out=$(kc get service web -o jsonpath='{.spec.clusterIP} {.spec.ports[0].targetPort} {.kind}' 2>&1)
it_assert_eq "$out" "10.96.0.10 8080 Service" "get service web -o jsonpath"
out=$(kc get svc db -n prod -o jsonpath='{.spec.type} {.spec.ports[0].nodePort}' 2>&1)
it_assert_eq "$out" "NodePort 30432" "namespaced single get"
out=$(kc get svc nope 2>&1); rc=$?
it_assert_eq "$rc:$out" '1:Error from server (NotFound): services "nope" not found' "NotFound"
out=$(kc get svc -A -l app=web -o name 2>&1)
it_assert_eq "$out" "service/web" "label selector app=web"
out=$(kc get svc -A -l 'app!=web' -o name 2>&1)
it_assert_eq "$out" "service/db" "label selector app!=web"
out=$(kc get svc -A --field-selector metadata.namespace=prod -o name 2>&1)
it_assert_eq "$out" "service/db" "field selector metadata.namespace"
out=$(kc get pods --field-selector metadata.name=nope 2>&1)
it_assert_eq "$out" "No resources found in default namespace." "field selector without match"
out=$(kc get svc -l 'app in (web)' 2>&1); rc=$?
it_assert_eq "$rc" 1 "set-based selector rejected"
it_assert_contains "$out" "BadRequest" "set-based selector: BadRequest"
it_assert_eq "$(kc get ns -o name 2>&1 | tr '\n' ' ')" "namespace/default namespace/prod " "get ns"
out=$(kc get endpointslices -A 2>&1)
it_assert_eq "$(noage 6 <<<"$out")" "NAMESPACE NAME ADDRESSTYPE PORTS ENDPOINTS
default web-ipv4 IPv4 8080 10.244.0.5
prod db-ipv4 IPv4 <unset> <unset>" "kubectl get endpointslices -A"

# ---- watch: kubectl get endpointslices -w follows manifest changes ----
kc get endpointslices -w >"$LAB_TMP/watch.out" 2>&1 &
watch_pid=$!
it_check "watch prints the current slice" it_wait 30 grep -q '^web-ipv4 .* 10.244.0.5 ' "$LAB_TMP/watch.out"
printf 'apiVersion: v1\nkind: Pod\nmetadata: {name: web-2, namespace: default, labels: {app: web}}\nspec:\n  containers: [{name: c, ports: [{name: http, containerPort: 8080}]}]\nstatus: {phase: Running, podIP: 10.244.0.6}\n' \
  | lab_write_manifest web2.yaml
it_check "watch: pod added -> slice MODIFIED with both endpoints" \
  it_wait 30 grep -q '^web-ipv4 .* 10.244.0.5,10.244.0.6 ' "$LAB_TMP/watch.out"
rm -f "$LAB_MANIFESTS/web2.yaml"
it_check "watch: pod removed -> one endpoint again" \
  it_wait 30 bash -c "[[ \$(grep -c '^web-ipv4 .* 10.244.0.5 ' '$LAB_TMP/watch.out') -ge 2 ]]"
it_assert_eq "$(grep -c '^NAME' "$LAB_TMP/watch.out")" 1 "watch prints the header once"
kill "$watch_pid" 2>/dev/null
wait "$watch_pid" 2>/dev/null

# ---- svcctl -o yaml (svcd's own views) ----
out=$(svcctl_run get svc web -o yaml 2>&1)
it_assert_contains "$out" "name: web
uid: null" "svcctl -o yaml: one object"
it_assert_contains "$out" "clusterIPs:
- 10.96.0.10" "svcctl -o yaml: a list"
it_assert_contains "$out" 'creationTimestamp: "' "svcctl -o yaml quotes timestamps"
it_assert_eq "$(svcctl_run get pods -o yaml | /usr/bin/python3 -c 'import sys, yaml; print(yaml.safe_load(sys.stdin)["items"][0]["name"])' 2>&1)" \
  "web-1" "svcctl get pods -o yaml parses as YAML"

# ---- python3-kubernetes ----
if /usr/bin/python3 -c 'import kubernetes' 2>/dev/null; then
  out=$(lab_exec_node /usr/bin/python3 - "http://$SVCD_ADMIN" <<'PY' 2>&1
import sys
from kubernetes import client, watch
c = client.Configuration(); c.host = sys.argv[1]
ac = client.ApiClient(c)
api = client.CoreV1Api(ac)
for s in api.list_service_for_all_namespaces().items:
    print("svc", s.metadata.namespace, s.metadata.name, s.spec.cluster_ip, s.spec.type)
for p in api.list_namespaced_pod("default", label_selector="app=web").items:
    print("pod", p.metadata.name, p.status.pod_ip, p.status.phase, p.status.conditions[0].status)
print("get", api.read_namespaced_service("db", "prod").spec.ports[0].node_port)
for e in client.DiscoveryV1Api(ac).list_endpoint_slice_for_all_namespaces().items:
    print("eps", e.metadata.name, e.address_type, [a.addresses for a in e.endpoints])
try:
    api.read_namespaced_service("nope", "default")
except client.exceptions.ApiException as ex:
    print("err", ex.status)
n = 0
for ev in watch.Watch().stream(api.list_namespaced_pod, "default", timeout_seconds=2):
    print("watch", ev["type"], ev["object"].metadata.name)
    n += 1
print("watch ended", n)
PY
)
  it_assert_eq "$out" "svc default web 10.96.0.10 ClusterIP
svc prod db 10.96.0.20 NodePort
pod web-1 10.244.0.5 Running True
get 30432
eps web-ipv4 IPv4 [['10.244.0.5']]
eps db-ipv4 IPv4 []
err 404
watch ADDED web-1
watch ended 1" "python3-kubernetes: list, read, 404, watch with timeoutSeconds"
else
  echo "note: python3-kubernetes not installed; its part skipped"
fi
it_finish
