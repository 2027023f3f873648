#!/usr/bin/env bash
# Checks Crucible's images (built by deploy/docker/build into
# deploy/docker/podman's storage) for what deploy/SECURITY.md promises:
# each runs as appuser, uid and gid 10001; no setuid/setgid file; no compiler
# or headers in a runtime image; every shared library of each binary present
# (the docker-proxy image: HAProxy and crucible-docker-guard, the engine
# guard, which runs there read-only as uid 10001 and reads the policy files
# deploy/compose and deploy/k8s ship); and, for real, the server serving as
# appuser on a read-only root filesystem with every capability dropped and
# no-new-privileges, answering the CLI.
#   tests/deploy/images_test.sh REPO_ROOT [--build]   (--build: build first)
set -uo pipefail
root="$(cd "${1:?usage: images_test.sh REPO_ROOT [--build]}" && pwd)"
podman="$root/deploy/docker/podman"
tag="${TAG:-dev}"
if [ "${2:-}" = --build ]; then
  "$root/deploy/docker/build" || { echo "FAIL: deploy/docker/build"; exit 1; }
fi

passed=0 failed=0
check() {  # check NAME WANT GOT
  if [ "$2" = "$3" ]; then passed=$((passed + 1)); echo "ok   $1"
  else failed=$((failed + 1)); echo "FAIL $1: want [$2], got [$3]"; fi
}
run() { "$podman" run --rm --pull=never --network=none "$@" 2>&1; }

declare -A binary=(
  [server]=/usr/local/bin/crucible-server
  [worker]=/usr/local/bin/crucible-worker
  [executor]=/usr/local/bin/crucible-executor
  [docker-proxy]=/usr/sbin/haproxy
)
for name in server worker executor docker-proxy; do
  image="localhost/crucible/$name:$tag"
  if ! "$podman" image exists "$image"; then
    check "$name: image exists" yes no; continue
  fi
  check "$name: USER" appuser "$("$podman" image inspect --format '{{.Config.User}}' "$image")"
  check "$name: id -u" 10001 "$(run --entrypoint id "$image" -u)"
  check "$name: id -g" 10001 "$(run --entrypoint id "$image" -g)"
  check "$name: whoami" appuser "$(run --entrypoint whoami "$image")"
  check "$name: no setuid/setgid files" "" \
    "$(run --user 0 --entrypoint find "$image" / -xdev -type f -perm /6000)"
  check "$name: no compiler, no headers" "" \
    "$(run --entrypoint sh "$image" -c 'for f in /usr/bin/cc /usr/bin/c++ /usr/bin/clang /usr/bin/cmake /usr/include/grpcpp /usr/include/google; do [ -e $f ] && echo $f; done')"
  check "$name: every library of ${binary[$name]} found" "" \
    "$(run --entrypoint ldd "$image" "${binary[$name]}" | grep 'not found')"
  if [ "$name" != docker-proxy ]; then
    check "$name: carries the CLI" "" \
      "$(run --entrypoint ldd "$image" /usr/local/bin/crucible | grep 'not found')"
  fi
done

# The proxy image holds the repository's allowlist and HAProxy accepts it.
proxy="localhost/crucible/docker-proxy:$tag"
check "docker-proxy: haproxy.cfg is deploy/docker-proxy/haproxy.cfg" \
  "$(sha256sum <"$root/deploy/docker-proxy/haproxy.cfg")" \
  "$(run --entrypoint sh "$proxy" -c 'sha256sum </etc/crucible/docker-proxy/haproxy.cfg')"
check "docker-proxy: stop signal (soft stop as PID 1)" SIGUSR1 \
  "$("$podman" image inspect --format '{{.Config.StopSignal}}' "$proxy")"
check "docker-proxy: haproxy -c accepts it" 0 \
  "$(run --read-only --cap-drop=ALL "$proxy" -c -q -f /etc/crucible/docker-proxy/haproxy.cfg >/dev/null; echo $?)"

# The engine guard in the same image: present, every library found, and it
# runs read-only as uid 10001 with no capabilities (--describe prints what
# it admits and exits). The policy files the compose stack and the
# Kubernetes base ship are the built-in policy made explicit: read by the
# guard in the image, they must admit exactly what the built-in one does.
guard=/usr/local/bin/crucible-docker-guard
check "docker-proxy: carries $guard" yes \
  "$(run --entrypoint sh "$proxy" -c "test -x $guard && echo yes || echo no")"
check "docker-proxy: every library of $guard found" "" \
  "$(run --entrypoint ldd "$proxy" "$guard" | grep 'not found')"
guard_run() {
  "$podman" run --rm --pull=never --network=none --read-only --cap-drop=ALL \
    --security-opt=no-new-privileges --user 10001:10001 --entrypoint "$guard" "$@"
}
builtin="$(guard_run "$proxy" --describe 2>/dev/null)"
check "docker-guard: --describe exits 0 (read-only, uid 10001)" 0 \
  "$(guard_run "$proxy" --describe >/dev/null 2>&1; echo $?)"
check "docker-guard: --describe says what it admits" yes \
  "$(echo "$builtin" | grep -q '^`POST /\[vX.Y/\]containers/create' && echo yes || echo no)"
for f in deploy/compose/policy.json deploy/k8s/base/policy.json; do
  check "docker-guard: $f is the built-in policy" "$builtin" \
    "$(guard_run --volume "$root/$f:/etc/crucible/policy.json:ro" "$proxy" \
         --policy_file=/etc/crucible/policy.json --describe 2>&1)"
done

# The server for real: hardened as the compose file and the manifests run it.
server="localhost/crucible/server:$tag"
name="crucible-images-test-$$"
"$podman" run -d --pull=never --name "$name" --network=none --read-only --cap-drop=ALL \
  --security-opt=no-new-privileges --volume "$name:/data" "$server" \
  --listen=127.0.0.1:8080 --db=/data/crucible.db --insecure --allow_anonymous >/dev/null 2>&1
ok=no
for _ in $(seq 100); do
  if "$podman" exec "$name" crucible --server=127.0.0.1:8080 list >/dev/null 2>&1; then ok=yes; break; fi
  sleep 0.2
done
check "server: serves the CLI, read-only, no capabilities" yes "$ok"
check "server: process uid" 10001 \
  "$("$podman" exec "$name" sh -c 'awk "/^Uid:/{print \$2}" /proc/1/status' 2>&1)"
check "server: no effective capabilities" 0000000000000000 \
  "$("$podman" exec "$name" sh -c 'awk "/^CapEff:/{print \$2}" /proc/1/status' 2>&1)"
check "server: root filesystem read-only" yes \
  "$("$podman" exec "$name" sh -c 'touch /usr/x 2>/dev/null && echo no || echo yes' 2>&1)"
check "server: wrote its store" yes \
  "$("$podman" exec "$name" sh -c 'test -s /data/crucible.db && echo yes || echo no' 2>&1)"
"$podman" rm -f -t 2 "$name" >/dev/null 2>&1
"$podman" volume rm -f "$name" >/dev/null 2>&1

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
