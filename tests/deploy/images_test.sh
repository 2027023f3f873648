#!/usr/bin/env bash
# Checks Crucible's images (built by deploy/docker/build into
# deploy/docker/podman's storage) for what deploy/SECURITY.md promises.
# server, worker, executor and docker-guard are distroless: their files
# (listed from outside, `podman export`, as they have no shell to look from
# inside) are the binaries, the shared libraries, CA certificates and
# /etc/passwd, /etc/group naming appuser, nothing else: no shell, no package
# manager, no setuid/setgid file, no compiler. Each runs as appuser (uid and
# gid 10001) read-only with every capability dropped and no-new-privileges
# (its process seen from the host, /proc/<pid>), its binaries' libraries all
# found (they start), its health check in exec form. The docker-proxy image
# (HAProxy on Debian, with crucible-docker-guard too) keeps its checks: uid
# 10001, no setuid file, no compiler, every library found, the repository's
# allowlist. The guard's --describe under the policy files deploy/compose
# and deploy/k8s ship admits what the built-in policy does. And, for real,
# the server serving on a read-only root filesystem, answering the CLI. The
# postgres image: appuser, no setuid file, its health check, and a clear
# refusal of a store file it cannot make a database from. A container
# failing a check has its state and last log lines printed.
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
# A container that failed a check: its state and last log lines, so the
# failure explains itself.
logs_of() {
  echo "     $1: $("$podman" inspect --format '{{.State.Status}} exit={{.State.ExitCode}}' "$1" 2>&1); last log lines:"
  "$podman" logs --tail 20 "$1" 2>&1 | sed 's/^/     | /'
}
hardened=(--read-only --cap-drop=ALL --security-opt=no-new-privileges --network=none)
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# ---- The distroless images ---------------------------------------------------
declare -A binaries=(
  [server]="crucible-server crucible"
  [worker]="crucible-worker crucible"
  [executor]="crucible-executor crucible"
  [docker-guard]="crucible-docker-guard"
)
# Each one's process, started hardened (what it needs to stay up a moment).
declare -A serve_args=(
  [server]="--listen=127.0.0.1:8080 --db=/data/crucible.db --insecure"
  [worker]="--listen=127.0.0.1:8081 --server=127.0.0.1:8080 --executors=127.0.0.1:8082 --insecure"
  [executor]="--listen=127.0.0.1:8082 --docker_host=tcp://127.0.0.1:2375 --insecure"
  [docker-guard]="--listen=127.0.0.1:2376 --engine_socket=/run/crucible-engine/engine.sock"
)
declare -A health=(
  [server]='[/usr/local/bin/crucible health 127.0.0.1:8080]'
  [worker]='[/usr/local/bin/crucible health 127.0.0.1:8081]'
  [executor]='[/usr/local/bin/crucible health 127.0.0.1:8092]'
  [docker-guard]='[/usr/local/bin/crucible-docker-guard --probe --listen=127.0.0.1:2376]'
)
for name in server worker executor docker-guard; do
  image="localhost/crucible/$name:$tag"
  if ! "$podman" image exists "$image"; then
    check "$name: image exists" yes no; continue
  fi
  check "$name: USER" appuser "$("$podman" image inspect --format '{{.Config.User}}' "$image")"
  check "$name: health check in exec form" "CMD ${health[$name]}" \
    "$("$podman" image inspect --format '{{if .HealthCheck}}{{index .HealthCheck.Test 0}} {{slice .HealthCheck.Test 1}}{{end}}' "$image")"

  # Its files, from outside: `tar -tv` of the exported root filesystem.
  c="$("$podman" create --pull=never "$image" 2>/dev/null)"
  "$podman" export "$c" | tar --numeric-owner -tvf - >"$work/$name.list" 2>/dev/null
  "$podman" export "$c" | tar -xf - -C "$(mkdir -p "$work/$name" && echo "$work/$name")" 2>/dev/null
  "$podman" rm -f "$c" >/dev/null 2>&1
  files="$(awk '{print $NF}' "$work/$name.list" | sed 's|^\./||; s|/$||' | grep -v '^\.\?$')"
  check "$name: no shell" "" \
    "$(echo "$files" | grep -E '(^|/)(sh|bash|dash|ash|zsh|busybox|toybox)$')"
  check "$name: no package manager" "" \
    "$(echo "$files" | grep -E '(^|/)(dpkg|apt|apt-get|apt-cache|rpm|yum|dnf|apk)$|^var/lib/(dpkg|apt)')"
  check "$name: no setuid/setgid file" "" \
    "$(awk '$1 ~ /^-..[sS]/ || $1 ~ /^-.....[sS]/ {print $NF}' "$work/$name.list")"
  check "$name: no compiler, no headers" "" \
    "$(echo "$files" | grep -E '(^|/)(cc|c\+\+|gcc|clang|cmake|ld)$|^usr/include')"
  # Nothing but the binaries, their libraries (and the loader), the CA
  # bundle, passwd and group, and the empty /tmp (and /data for the store).
  check "$name: only binaries, libraries, CA certificates, passwd, group" "" \
    "$(echo "$files" | grep -vE '^(usr/local/bin/[^/]+|(usr/)?lib(64|/x86_64-linux-gnu)?(/[^/]+)?|etc/(passwd|group|ssl|ssl/certs|ssl/certs/ca-certificates\.crt)|usr|usr/local|usr/local/bin|usr/lib|etc|tmp|data|proc|sys|dev|run|var|var/run)$')"
  want_bins="$(for b in ${binaries[$name]}; do echo "usr/local/bin/$b"; done | sort | xargs)"
  check "$name: its binaries" "$want_bins" "$(echo "$files" | grep '^usr/local/bin/.' | sort | xargs)"
  check "$name: appuser 10001 in /etc/passwd" "appuser:x:10001:10001:appuser:/nonexistent:/usr/sbin/nologin" \
    "$(cat "$work/$name/etc/passwd" 2>&1)"
  check "$name: CA certificates" yes \
    "$(grep -q 'BEGIN CERTIFICATE' "$work/$name/etc/ssl/certs/ca-certificates.crt" 2>/dev/null && echo yes || echo no)"
  for b in ${binaries[$name]}; do
    check "$name: $b owned by appuser" 10001/10001 \
      "$(awk -v f="usr/local/bin/$b" '{p=$NF; sub(/^\.\//, "", p)} p == f {print $2}' "$work/$name.list")"
  done

  # It runs: read-only, no capabilities, no-new-privileges, as 10001, and
  # stays up (its libraries all resolve: the loader would stop it at once).
  ctr="crucible-images-test-$name-$$"
  "$podman" run -d --pull=never --name "$ctr" "${hardened[@]}" "$image" ${serve_args[$name]} >/dev/null 2>&1
  sleep 1
  pid="$("$podman" inspect --format '{{.State.Pid}}' "$ctr" 2>/dev/null)"
  running="$("$podman" inspect --format '{{.State.Running}}' "$ctr" 2>&1)"
  check "$name: running" true "$running"
  [ "$running" = true ] || logs_of "$ctr"
  check "$name: process uid and gid (from the host)" "10001 10001" \
    "$(awk '$1 == "Uid:" {u=$2} $1 == "Gid:" {g=$2} END {print u, g}' "/proc/$pid/status" 2>&1)"
  check "$name: no effective capabilities" 0000000000000000 \
    "$(awk '$1 == "CapEff:" {print $2}' "/proc/$pid/status" 2>&1)"
  check "$name: root filesystem read-only" "Read-only file system" \
    "$( (: >"/proc/$pid/root/usr/images-test") 2>&1 | grep -o 'Read-only file system')"
  for b in ${binaries[$name]}; do
    # No loader error: the binary starts (`--help`, or a health check that
    # finds nothing to ask) and says something of its own.
    out="$("$podman" exec "$ctr" "/usr/local/bin/$b" --help 2>&1)"
    check "$name: $b starts (every library found)" no \
      "$(echo "$out" | grep -q 'error while loading shared libraries\|No such file' && echo yes || echo no)"
  done
  "$podman" rm -f -t 2 "$ctr" >/dev/null 2>&1
done

# ---- The docker-proxy image: HAProxy on Debian ------------------------------
proxy="localhost/crucible/docker-proxy:$tag"
if "$podman" image exists "$proxy"; then
  check "docker-proxy: USER" appuser "$("$podman" image inspect --format '{{.Config.User}}' "$proxy")"
  check "docker-proxy: id -u" 10001 "$(run --entrypoint id "$proxy" -u)"
  check "docker-proxy: id -g" 10001 "$(run --entrypoint id "$proxy" -g)"
  check "docker-proxy: no setuid/setgid files" "" \
    "$(run --user 0 --entrypoint find "$proxy" / -xdev -type f -perm /6000)"
  check "docker-proxy: no compiler, no headers" "" \
    "$(run --entrypoint sh "$proxy" -c 'for f in /usr/bin/cc /usr/bin/c++ /usr/bin/clang /usr/bin/cmake /usr/include/grpcpp /usr/include/google; do [ -e $f ] && echo $f; done')"
  for b in /usr/sbin/haproxy /usr/local/bin/crucible-docker-guard; do
    check "docker-proxy: every library of $b found" "" \
      "$(run --entrypoint ldd "$proxy" "$b" | grep 'not found')"
  done
  # The proxy image holds the repository's allowlist and HAProxy accepts it.
  check "docker-proxy: haproxy.cfg is deploy/docker-proxy/haproxy.cfg" \
    "$(sha256sum <"$root/deploy/docker-proxy/haproxy.cfg")" \
    "$(run --entrypoint sh "$proxy" -c 'sha256sum </etc/crucible/docker-proxy/haproxy.cfg')"
  check "docker-proxy: stop signal (soft stop as PID 1)" SIGUSR1 \
    "$("$podman" image inspect --format '{{.Config.StopSignal}}' "$proxy")"
  check "docker-proxy: haproxy -c accepts it" 0 \
    "$(run --read-only --cap-drop=ALL "$proxy" -c -q -f /etc/crucible/docker-proxy/haproxy.cfg >/dev/null; echo $?)"
else
  check "docker-proxy: image exists" yes no
fi

# ---- The guard's policy -----------------------------------------------------
# --describe prints what it admits and exits; run read-only as uid 10001
# with no capabilities. The policy files the compose stack and the
# Kubernetes base ship are the built-in policy made explicit: read by the
# guard in its image, they must admit exactly what the built-in one does.
guard_image="localhost/crucible/docker-guard:$tag"
guard_run() {
  "$podman" run --rm --pull=never --network=none --read-only --cap-drop=ALL \
    --security-opt=no-new-privileges --no-healthcheck --user 10001:10001 "$@"
}
builtin="$(guard_run "$guard_image" --describe 2>/dev/null)"
check "docker-guard: --describe exits 0 (read-only, uid 10001)" 0 \
  "$(guard_run "$guard_image" --describe >/dev/null 2>&1; echo $?)"
check "docker-guard: --describe says what it admits" yes \
  "$(echo "$builtin" | grep -q '^`POST /\[vX.Y/\]containers/create' && echo yes || echo no)"
for f in deploy/compose/policy.json deploy/k8s/base/policy.json; do
  check "docker-guard: $f is the built-in policy" "$builtin" \
    "$(guard_run --volume "$root/$f:/etc/crucible/policy.json:ro" "$guard_image" \
         --policy_file=/etc/crucible/policy.json --describe)"
done

# ---- The server for real: hardened as the compose file and the manifests run it.
server="localhost/crucible/server:$tag"
name="crucible-images-test-$$"
"$podman" run -d --pull=never --name "$name" "${hardened[@]}" --volume "$name:/data" "$server" \
  --listen=127.0.0.1:8080 --db=/data/crucible.db --insecure --allow_anonymous >/dev/null 2>&1
ok=no
for _ in $(seq 100); do
  if "$podman" exec "$name" crucible --server=127.0.0.1:8080 list >/dev/null 2>&1; then ok=yes; break; fi
  # Exited: no use waiting.
  [ "$("$podman" inspect --format '{{.State.Running}}' "$name" 2>&1)" = true ] || break
  sleep 0.2
done
check "server: serves the CLI, read-only, no capabilities" yes "$ok"
[ "$ok" = yes ] || logs_of "$name"
check "server: healthy (its exec-form health check)" 0 \
  "$("$podman" healthcheck run "$name" >/dev/null 2>&1; echo $?)"
pid="$("$podman" inspect --format '{{.State.Pid}}' "$name" 2>/dev/null)"
check "server: wrote its store" yes \
  "$(test -s "/proc/$pid/root/data/crucible.db" && echo yes || echo no)"
"$podman" rm -f -t 2 "$name" >/dev/null 2>&1
"$podman" volume rm -f "$name" >/dev/null 2>&1

# ---- The postgres image (compose.postgres.yaml): Debian's PostgreSQL as
# appuser; it starts only from a store file naming a role, a password and a
# database. (compose_ha_test runs it for real, with the servers.)
postgres="localhost/crucible/postgres:$tag"
if "$podman" image exists "$postgres"; then
  check "postgres: USER" appuser "$("$podman" image inspect --format '{{.Config.User}}' "$postgres")"
  check "postgres: health check in exec form" \
    "CMD [/usr/lib/postgresql/15/bin/pg_isready --quiet --host=127.0.0.1 --port=5432]" \
    "$("$podman" image inspect --format '{{if .HealthCheck}}{{index .HealthCheck.Test 0}} {{slice .HealthCheck.Test 1}}{{end}}' "$postgres")"
  check "postgres: stop signal (fast shutdown)" SIGINT \
    "$("$podman" image inspect --format '{{.Config.StopSignal}}' "$postgres")"
  check "postgres: no setuid/setgid files" "" \
    "$(run --no-healthcheck --user 0 --entrypoint find "$postgres" / -xdev -type f -perm /6000)"
  check "postgres: no compiler, no headers" "" \
    "$(run --no-healthcheck --entrypoint sh "$postgres" -c 'for f in /usr/bin/cc /usr/bin/c++ /usr/bin/clang /usr/include/postgresql; do [ -e $f ] && echo $f; done')"
  printf 'postgresql://crucible@postgres/crucible\n' >"$work/no-password"
  out="$(run --no-healthcheck --read-only --cap-drop=ALL --security-opt=no-new-privileges --volume "$work/no-password:/etc/crucible/store-uri:ro" "$postgres")"
  check "postgres: a store file without a password: exit 1" 1 "$?"
  check "postgres: ... saying what the file must hold" yes \
    "$(echo "$out" | grep -q 'must hold postgresql://USER:PASSWORD@HOST:PORT/DATABASE' && echo yes || echo "no: $out")"
else
  check "postgres: image exists" yes no
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
