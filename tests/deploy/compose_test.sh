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
podman="$root/deploy/docker/podman"
store="${CRUCIBLE_IMAGE_STORE:-$root/build/images}"
export CRUCIBLE_IMAGE_STORE="$store"
project=crucibletest
engine_dir="$store/compose-engine"
gid=2375
busybox=localhost/crucible/busybox:latest
mkdir -p "$engine_dir"

passed=0 failed=0
check() {  # check NAME WANT GOT
  if [ "$2" = "$3" ]; then passed=$((passed + 1)); echo "ok   $1"
  else failed=$((failed + 1)); echo "FAIL $1: want [$2], got [$3]"; fi
}
compose() {
  podman-compose --podman-path "$podman" -p "$project" \
    -f "$root/deploy/compose/compose.yaml" "$@"
}
engine_pid=""
cleanup() {
  if [ -n "${KEEP:-}" ]; then echo "KEEP: left the stack and the engine (pid $engine_pid) running"; return; fi
  compose down -v >"$engine_dir/down.log" 2>&1
  "$podman" rm -f crucible-hostile >/dev/null 2>&1  # only if the guard failed
  # Whatever podman-compose left behind of this project (and only of it).
  "$podman" ps -aq --filter "label=io.podman.compose.project=$project" |
    xargs -r "$podman" rm -f -t 2 >/dev/null 2>&1
  # podman-compose's down leaves the project's networks (in the machine's
  # global network configuration): remove them too.
  "$podman" network ls -q --filter "label=io.podman.compose.project=$project" |
    xargs -r "$podman" network rm -f >/dev/null 2>&1
  if [ -n "$engine_pid" ]; then kill "$engine_pid" 2>/dev/null; wait "$engine_pid" 2>/dev/null; fi
  rm -f "$engine_dir/engine.sock"
}
trap cleanup EXIT

for i in server worker executor docker-proxy; do
  "$podman" image exists "localhost/crucible/$i:${CRUCIBLE_TAG:-dev}" ||
    { echo "FAIL: localhost/crucible/$i is not built (deploy/docker/build)"; exit 1; }
done

# The busybox image tasks run, in the same storage as the engine's.
if ! "$podman" image exists "$busybox"; then
  rootfs="$engine_dir/busybox-rootfs"; rm -rf "$rootfs"
  mkdir -p "$rootfs/bin" "$rootfs/etc" "$rootfs/tmp"
  cp /bin/busybox "$rootfs/bin/busybox"
  for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -sf busybox "$rootfs/bin/$a"; done
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/sh\n' >"$rootfs/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$rootfs/etc/group"
  tar -C "$rootfs" -cf "$engine_dir/busybox.tar" . && rm -rf "$rootfs"
  "$podman" import --quiet --change 'ENV PATH=/bin' --change 'CMD ["sh"]' \
    "$engine_dir/busybox.tar" "$busybox" >/dev/null
  rm -f "$engine_dir/busybox.tar"
fi

# The engine's API socket, group-owned by $gid, mode 0660 (the node requirement).
rm -rf "$engine_dir/engine.sock"
# with-subids: the subordinate ids of the tasks' user namespaces (policy.json
# "userns": "auto"), private to this engine.
"$root/deploy/local/with-subids" "$engine_dir/subids" \
  "$podman" system service --time=0 "unix://$engine_dir/engine.sock" \
  >"$engine_dir/engine.log" 2>&1 </dev/null &
engine_pid=$!
for _ in $(seq 100); do [ -S "$engine_dir/engine.sock" ] && break; sleep 0.1; done
chgrp "$gid" "$engine_dir/engine.sock" && chmod 0660 "$engine_dir/engine.sock"
check "engine answers" OK \
  "$(curl -sS --max-time 5 --unix-socket "$engine_dir/engine.sock" http://d/_ping 2>&1)"

port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
# The stack's certificates, made as the compose file says (a CA of this run).
tls="$engine_dir/tls"
rm -rf "$tls"
CRUCIBLE_TLS_OWNER=10001 "$root/deploy/local/certs" "$tls"
check "certificates made" 0 "$?"
# The server's admin token, as the compose file says: uid 10001's alone.
admin_token="$engine_dir/admin-token"
head -c 32 /dev/urandom | base64 | tr -d '=+/\n' >"$admin_token"
chown 10001 "$admin_token" && chmod 600 "$admin_token"
token="$(cat "$admin_token")"
# podman-compose reads the file anew for every command (down too): export.
export CRUCIBLE_ENGINE_SOCKET="$engine_dir/engine.sock" CRUCIBLE_ENGINE_GID=$gid \
  CRUCIBLE_SERVER_PORT="$port" CRUCIBLE_EXECUTORS=2 CRUCIBLE_TLS_DIR="$tls" \
  CRUCIBLE_ADMIN_TOKEN="$admin_token"
compose up -d >"$engine_dir/up.log" 2>&1
check "podman-compose up" 0 "$?"

ctr() { echo "${project}_$1_${2:-1}"; }
# The host pid of a container's PID 1: the distroless images have no shell,
# awk or cat to look from inside, so /proc is read from the host.
pid_of() { "$podman" inspect --format '{{.State.Pid}}' "$1"; }
proc_field() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$(pid_of "$1")/status" 2>&1; }
# Health checks, as podman runs them (no systemd timers here: run them).
# executor_2: the second replica (CRUCIBLE_EXECUTORS=2).
for s in server docker-guard docker-proxy executor executor_2 worker; do
  ok=no
  for _ in $(seq 60); do
    if "$podman" healthcheck run "${project}_${s%_2}_$([ "$s" = executor_2 ] && echo 2 || echo 1)" >/dev/null 2>&1; then ok=yes; break; fi
    sleep 0.5
  done
  check "$s: healthy" yes "$ok"
done

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
networks() {
  "$podman" inspect --format '{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}' "$1" |
    xargs -n1 | sort | xargs
}
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
