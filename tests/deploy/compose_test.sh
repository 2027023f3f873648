#!/usr/bin/env bash
# Brings deploy/compose/compose.yaml up with podman-compose (Debian's) on the
# images deploy/docker/build made, against a Podman engine API served from
# the same storage (build/images/), and runs a task end to end: CLI ->
# server -> worker -> executor -> docker-proxy -> engine. Checks every
# service's health check, the hardening each container really got, that only
# the proxy mounts the engine socket (read-only) and that the proxy is on the
# internal engine network alone with the executor. Tears everything down.
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
  # Whatever podman-compose left behind of this project (and only of it).
  "$podman" ps -aq --filter "label=io.podman.compose.project=$project" |
    xargs -r "$podman" rm -f -t 2 >/dev/null 2>&1
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
"$podman" system service --time=0 "unix://$engine_dir/engine.sock" \
  >"$engine_dir/engine.log" 2>&1 </dev/null &
engine_pid=$!
for _ in $(seq 100); do [ -S "$engine_dir/engine.sock" ] && break; sleep 0.1; done
chgrp "$gid" "$engine_dir/engine.sock" && chmod 0660 "$engine_dir/engine.sock"
check "engine answers" OK \
  "$(curl -sS --max-time 5 --unix-socket "$engine_dir/engine.sock" http://d/_ping 2>&1)"

port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
# podman-compose reads the file anew for every command (down too): export.
export CRUCIBLE_ENGINE_SOCKET="$engine_dir/engine.sock" CRUCIBLE_ENGINE_GID=$gid \
  CRUCIBLE_SERVER_PORT="$port" CRUCIBLE_EXECUTORS=2
compose up -d >"$engine_dir/up.log" 2>&1
check "podman-compose up" 0 "$?"

ctr() { echo "${project}_$1_${2:-1}"; }
# Health checks, as podman runs them (no systemd timers here: run them).
# executor_2: the second replica (CRUCIBLE_EXECUTORS=2).
for s in server docker-proxy executor executor_2 worker; do
  ok=no
  for _ in $(seq 60); do
    if "$podman" healthcheck run "${project}_${s%_2}_$([ "$s" = executor_2 ] && echo 2 || echo 1)" >/dev/null 2>&1; then ok=yes; break; fi
    sleep 0.5
  done
  check "$s: healthy" yes "$ok"
done

# What each container really got.
for s in server worker executor docker-proxy; do
  c="$(ctr "$s")"
  want=10001:10001; [ "$s" = docker-proxy ] && want=10001:$gid
  check "$s: user" "$want" "$("$podman" inspect --format "{{.Config.User}}" "$c")"
  check "$s: read-only root" true "$("$podman" inspect --format '{{.HostConfig.ReadonlyRootfs}}' "$c")"
  check "$s: no-new-privileges" yes \
    "$("$podman" inspect --format '{{range .HostConfig.SecurityOpt}}{{.}} {{end}}' "$c" | grep -q 'no-new-privileges' && echo yes || echo no)"
  check "$s: no effective capabilities" 0000000000000000 \
    "$("$podman" exec "$c" awk '/^CapEff:/{print $2}' /proc/1/status 2>&1)"
  check "$s: process uid" 10001 "$("$podman" exec "$c" awk '/^Uid:/{print $2}' /proc/1/status 2>&1)"
  socket="$("$podman" inspect --format '{{range .Mounts}}{{if eq .Destination "/run/crucible-engine/engine.sock"}}{{.RW}}{{end}}{{end}}' "$c")"
  if [ "$s" = docker-proxy ]; then
    check "$s: engine socket mounted read-only" false "$socket"
  else
    check "$s: no engine socket" "" "$socket"
  fi
done
check "docker-proxy: networks" "${project}_engine" \
  "$("$podman" inspect --format '{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}' "$(ctr docker-proxy)" | xargs)"
check "engine network is internal" true \
  "$("$podman" network inspect --format '{{.Internal}}' "${project}_engine")"

# A task, end to end: the CLI in the server's container ...
out="$("$podman" exec "$(ctr server)" crucible --server=127.0.0.1:8080 submit \
  --image "$busybox" --timeout 60s -- sh -c 'echo hello-from-compose; id -u' 2>&1)"
check "task: exit code" 0 "$?"
check "task: output" "hello-from-compose 65534" "$(echo "$out" | grep -E '^(hello-from-compose|65534)$' | xargs)"
# ... and a client on the host, through the published port (the CLI from the
# server image, on the host's network).
"$podman" run --rm --pull=never --network=host --read-only --cap-drop=ALL \
  --entrypoint crucible "localhost/crucible/server:${CRUCIBLE_TAG:-dev}" \
  --server="127.0.0.1:$port" submit --image "$busybox" --timeout 60s -- sh -c 'exit 3' >/dev/null 2>&1
check "task through the published port: exit code 3" 3 "$?"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
