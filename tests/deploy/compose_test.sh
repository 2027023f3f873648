#!/usr/bin/env bash
# Brings deploy/compose/compose.yaml up with podman-compose (Debian's) on the
# images deploy/docker/build made, against a Podman engine API served from
# the same storage (build/images/), and runs a task end to end: CLI ->
# server -> worker -> executor -> docker-proxy -> docker-guard -> engine.
# Checks every service's health check, the hardening each container really
# got, that only the proxy and the guard mount the engine socket (read-only),
# that the proxy is on the internal engine network alone with the executor
# and the guard on another alone with the proxy, that the executor and the
# guard read the same policy file, and that a hostile create sent from the
# executor's container to the proxy is refused by the guard and never
# reaches the engine. Tears everything down.
#   tests/deploy/compose_test.sh REPO_ROOT      KEEP=1: leave it all running
set -uo pipefail
root="$(cd "${1:?usage: compose_test.sh REPO_ROOT}" && pwd)"
project=crucibletest
compose_files=(compose.yaml)
source "$(dirname "$0")/compose_lib.sh"
cleanup() {
  teardown
  "$podman" rm -f crucible-hostile >/dev/null 2>&1  # only if the guard failed
}
trap cleanup EXIT

require_images server worker executor docker-guard docker-proxy
make_busybox
start_engine
port="$(free_port)"
make_secrets
# podman-compose reads the file anew for every command (down too): export.
export CRUCIBLE_ENGINE_SOCKET="$engine_dir/engine.sock" CRUCIBLE_ENGINE_GID=$gid \
  CRUCIBLE_SERVER_PORT="$port" CRUCIBLE_EXECUTORS=2 CRUCIBLE_TLS_DIR="$tls" \
  CRUCIBLE_ADMIN_TOKEN="$admin_token"
compose up -d >"$engine_dir/up.log" 2>&1
check "podman-compose up" 0 "$?"

# Health checks, all under one deadline; executor_2 is the second replica
# (CRUCIBLE_EXECUTORS=2). If one has not come up, the run stops here: every
# check after it would fail for the same reason (the teardown prints why).
healthy="$(wait_healthy "$(ctr server)" "$(ctr docker-guard)" "$(ctr docker-proxy)" \
  "$(ctr executor)" "$(ctr executor 2)" "$(ctr worker)")"
check "every service healthy" "" "$healthy"
[ -z "$healthy" ] || { echo "$passed passed, $failed failed"; exit 1; }

# What each container really got.
for s in server worker executor docker-proxy docker-guard; do
  c="$(ctr "$s")"
  want=10001:10001; case "$s" in docker-proxy|docker-guard) want=10001:$gid ;; esac
  check "$s: user" "$want" "$("$podman" inspect --format "{{.Config.User}}" "$c")"
  check "$s: read-only root" true "$("$podman" inspect --format '{{.HostConfig.ReadonlyRootfs}}' "$c")"
  check "$s: no-new-privileges" yes \
    "$("$podman" inspect --format '{{range .HostConfig.SecurityOpt}}{{.}} {{end}}' "$c" | grep -q 'no-new-privileges' && echo yes || echo no)"
  check "$s: no effective capabilities" 0000000000000000 "$(proc_field "$c" CapEff)"
  check "$s: process uid" 10001 "$(proc_field "$c" Uid)"
  socket="$("$podman" inspect --format '{{range .Mounts}}{{if eq .Destination "/run/crucible-engine/engine.sock"}}{{.RW}}{{end}}{{end}}' "$c")"
  case "$s" in
    docker-proxy|docker-guard) check "$s: engine socket mounted read-only" false "$socket" ;;
    *) check "$s: no engine socket" "" "$socket" ;;
  esac
  policy="$("$podman" inspect --format '{{range .Mounts}}{{if eq .Destination "/etc/crucible/policy.json"}}{{.Source}} {{.RW}}{{end}}{{end}}' "$c")"
  case "$s" in
    executor|docker-guard)
      check "$s: deploy/compose/policy.json mounted read-only" \
        "$(realpath "$root/deploy/compose/policy.json") false" "$policy" ;;
    *) check "$s: no policy file" "" "$policy" ;;
  esac
done
check "docker-proxy: networks" "${project}_engine ${project}_guard" "$(networks "$(ctr docker-proxy)")"
check "docker-guard: networks" "${project}_guard" "$(networks "$(ctr docker-guard)")"
check "executor: networks" "${project}_backend ${project}_engine" "$(networks "$(ctr executor)")"
for n in engine guard; do
  check "$n network is internal" true \
    "$("$podman" network inspect --format '{{.Internal}}' "${project}_$n")"
done
# The guard runs crucible-docker-guard on the policy file; the proxy sends
# creates to it, the executor reads the same file.
check "docker-guard: runs crucible-docker-guard on the policy file" \
  "/usr/local/bin/crucible-docker-guard --listen=0.0.0.0:2376 --engine_socket=/run/crucible-engine/engine.sock --policy_file=/etc/crucible/policy.json" \
  "$(tr "\0" " " <"/proc/$(pid_of "$(ctr docker-guard)")/cmdline" | xargs)"
check "docker-proxy: CRUCIBLE_GUARD_ADDR" docker-guard:2376 \
  "$(tr "\0" "\n" <"/proc/$(pid_of "$(ctr docker-proxy)")/environ" | sed -n "s/^CRUCIBLE_GUARD_ADDR=//p")"
check "executor: reads the policy file" yes \
  "$(tr "\0" "\n" <"/proc/$(pid_of "$(ctr executor)")/cmdline" |
     grep -qx -- --policy_file=/etc/crucible/policy.json && echo yes || echo no)"

# A task, end to end: the CLI in the server's container ...
out="$("$podman" exec "$(ctr server)" crucible --server=127.0.0.1:8080 \
  --tls-ca /etc/crucible/tls/ca.crt --token "$token" submit \
  --image "$busybox" --timeout 60s -- sh -c 'echo hello-from-compose; id -u' 2>&1)"
check "task: exit code" 0 "$?"
noauth="$("$podman" exec "$(ctr server)" crucible --server=127.0.0.1:8080 \
  --tls-ca /etc/crucible/tls/ca.crt list 2>&1 || true)"
check "a call without a token: UNAUTHENTICATED" yes \
  "$(case "$noauth" in *UNAUTHENTICATED*) echo yes ;; *) echo "no: $noauth" ;; esac)"
check "task: output" "hello-from-compose 65534" "$(echo "$out" | grep -E '^(hello-from-compose|65534)$' | xargs)"
# ... and a client on the host, through the published port (the CLI from the
# server image, on the host's network).
"$podman" run --rm --pull=never --network=host --read-only --cap-drop=ALL \
  --volume "$tls/client:/etc/crucible/tls:ro" \
  --entrypoint crucible "localhost/crucible/server:${CRUCIBLE_TAG:-dev}" \
  --server="127.0.0.1:$port" --tls-ca /etc/crucible/tls/ca.crt --token "$token" submit --image "$busybox" --timeout 60s -- sh -c 'exit 3' >/dev/null 2>&1
check "task through the published port: exit code 3" 3 "$?"

# A subverted executor: from an executor container's network namespace (the
# host's curl under nsenter -n: the image has no shell or client of its
# own), to the proxy's address on the engine network, a create asking for
# root, the host's root
# filesystem, privileges and the host's network, labelled as a run, sent to
# the proxy as the executor sends creates. HAProxy lets the path through to
# the guard, which answers 403 with its own message; no container of that
# name ever reaches the engine. (Which rule refuses which body is
# tests/executor/guard_matrix_test.cc's subject; this checks the wiring: a
# legitimate create went through the guard in the tasks above, a hostile one
# is stopped there.) And the executor cannot reach the guard directly: it
# is not on the guard network.
refusals() { "$podman" logs "$(ctr docker-guard)" 2>&1 | grep -c 'guard_server\.cc:[0-9]*\] guard: '; }
before="$(refusals)"
hostile='{"Image":"'"$busybox"'","Cmd":["sh"],"User":"0:0","HostConfig":{"Privileged":true,"Binds":["/:/host"],"NetworkMode":"host"},"Labels":{"crucible.executor":"compose","crucible.run":"hostile","crucible.task":"hostile","crucible.attempt":"1"}}'
ip_on() { "$podman" inspect --format "{{(index .NetworkSettings.Networks \"${project}_$2\").IPAddress}}" "$(ctr "$1")"; }
executor_pid="$(pid_of "$(ctr executor)")"
reply="$(nsenter -t "$executor_pid" -n curl -sS -i --max-time 10 -X POST \
  -H 'Content-Type: application/json' --data "$hostile" \
  "http://$(ip_on docker-proxy engine):2375/v1.41/containers/create?name=crucible-hostile" 2>&1)"
check "hostile create from the executor: 403" 403 "$(echo "$reply" | awk 'NR==1{print $2}')"
check "hostile create: refused by the guard (its message)" yes \
  "$(echo "$reply" | grep -q '^{"message":"crucible engine guard: .*"}' && echo yes || echo no)"
check "hostile create: the guard logged the refusal" $((before + 1)) "$(refusals)"
check "hostile create: no such container on the engine" no \
  "$("$podman" container exists crucible-hostile && echo yes || echo no)"
check "executor cannot reach the guard directly" refused \
  "$(nsenter -t "$executor_pid" -n timeout 5 bash -c "exec 3<>/dev/tcp/$(ip_on docker-guard guard)/2376" 2>/dev/null && echo reached || echo refused)"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
