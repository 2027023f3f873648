#!/usr/bin/env bash
# Brings up compose.yaml with compose.ha.yaml and compose.postgres.yaml (two
# servers on the PostgreSQL container, each with a worker; one executor)
# with podman-compose (Debian's) on the images deploy/docker/build made,
# against a Podman engine API served from the same storage, as
# compose_test.sh does for compose.yaml alone. Checks that the database
# container is hardened like the rest and reachable only by the servers
# (the internal network `store`, no published port), that its role,
# password and database come from the one store file (a password with a
# percent-encoded character), that exactly one server leads and the other
# answers UNAVAILABLE naming it, that a task runs through the leader, and
# that after kill -9 of the leader's container a server takes over: the
# task acknowledged before is there and ended, and a new one runs. Tears
# everything down (the database's volume too).
#   tests/deploy/compose_ha_test.sh REPO_ROOT      KEEP=1: leave it all running
set -uo pipefail
root="$(cd "${1:?usage: compose_ha_test.sh REPO_ROOT}" && pwd)"
project=crucibleha
compose_files=(compose.yaml compose.ha.yaml compose.postgres.yaml)
source "$(dirname "$0")/compose_lib.sh"
trap teardown EXIT

require_images server worker executor docker-guard docker-proxy postgres
make_busybox
start_engine
make_secrets
# The store file: the servers' URI and the database's role, password and
# database at once. The password holds an '@' (percent-encoded, as a URI
# must): libpq and the database's entrypoint must both decode it.
store_uri="$engine_dir/crucible-store"
password="$(head -c 18 /dev/urandom | base64 | tr -d '=+/\n')@x"
printf 'postgresql://crucible:%s@postgres:5432/crucible\n' "${password/@/%40}" >"$store_uri"
chown 10001 "$store_uri" && chmod 600 "$store_uri"
export CRUCIBLE_ENGINE_SOCKET="$engine_dir/engine.sock" CRUCIBLE_ENGINE_GID=$gid \
  CRUCIBLE_SERVER_PORT="$(free_port)" CRUCIBLE_SERVER2_PORT="$(free_port)" \
  CRUCIBLE_EXECUTORS=1 CRUCIBLE_TLS_DIR="$tls" CRUCIBLE_ADMIN_TOKEN="$admin_token" \
  CRUCIBLE_STORE="$store_uri"
compose up -d >"$engine_dir/up.log" 2>&1
check "podman-compose up" 0 "$?"

servers=("$(ctr server)" "$(ctr server-2)")
healthy="$(wait_healthy "$(ctr postgres)" "$(ctr docker-guard)" "$(ctr docker-proxy)" "$(ctr executor)")"
check "database, guard, proxy and executor healthy" "" "$healthy"
[ -z "$healthy" ] || { echo "$passed passed, $failed failed"; exit 1; }

# The leader: the server whose health says SERVING (the standby's says
# NOT_SERVING, by design). Prints its container's name.
leader() {
  local c
  while [ "$SECONDS" -lt "$deadline" ]; do
    for c in "${servers[@]}"; do
      if "$podman" healthcheck run "$c" >/dev/null 2>&1; then echo "$c"; return 0; fi
    done
    sleep 0.5
  done
  return 1
}
other() { if [ "$1" = "${servers[0]}" ]; then echo "${servers[1]}"; else echo "${servers[0]}"; fi; }
server_id() { if [ "$1" = "${servers[0]}" ]; then echo server-1; else echo server-2; fi; }
cli() {  # cli CONTAINER ARGS...: the CLI in a server's container, to that server
  local c="$1"; shift
  "$podman" exec "$c" crucible --server=127.0.0.1:8080 \
    --tls-ca /etc/crucible/tls/ca.crt --token "$token" "$@"
}

# The database container: hardened as every other, on `store` alone.
pg="$(ctr postgres)"
check "postgres: user" 10001:10001 "$("$podman" inspect --format '{{.Config.User}}' "$pg")"
check "postgres: read-only root" true "$("$podman" inspect --format '{{.HostConfig.ReadonlyRootfs}}' "$pg")"
check "postgres: no effective capabilities" 0000000000000000 "$(proc_field "$pg" CapEff)"
check "postgres: process uid" 10001 "$(proc_field "$pg" Uid)"
check "postgres: networks" "${project}_store" "$(networks "$pg")"
check "store network is internal" true \
  "$("$podman" network inspect --format '{{.Internal}}' "${project}_store")"
check "postgres: no published port" "" "$("$podman" port "$pg" 2>&1)"
for c in "${servers[@]}"; do
  check "$c: on the store network" yes \
    "$(networks "$c" | grep -qw "${project}_store" && echo yes || echo no)"
done
# Read once, then searched: `podman logs | grep -q` under pipefail fails
# whenever grep stops at its match before podman has written the rest
# (SIGPIPE), which made this check fail now and then.
pg_log="$("$podman" logs "$pg" 2>&1)"
check "postgres: the database was made from the store file" yes \
  "$(grep -q 'initializing .* for role crucible, database crucible' <<<"$pg_log" && echo yes || echo no)"
check "postgres: the password never in its log" no \
  "$(grep -qF "$password" <<<"$pg_log" && echo yes || echo no)"

# One leader, one standby naming it.
first="$(leader)"
check "a server leads" yes "$([ -n "$first" ] && echo yes || echo no)"
[ -n "$first" ] || { echo "$passed passed, $failed failed"; exit 1; }
standby="$(other "$first")"
refused="$(cli "$standby" list 2>&1)"
check "the standby answers UNAVAILABLE naming the leader" yes \
  "$(case "$refused" in *UNAVAILABLE*"$(server_id "$first")"*) echo yes ;; *) echo "no: $refused" ;; esac)"

out="$(cli "$first" submit --image "$busybox" --timeout 60s -- sh -c 'echo hello-from-ha' 2>&1)"
check "task through the leader: exit code" 0 "$?"
check "task through the leader: output" hello-from-ha "$(echo "$out" | grep -x hello-from-ha)"
id="$(cli "$first" -o json list 2>&1 | grep -o '"id": *"[^"]*"' | head -1 | cut -d'"' -f4)"
check "the task is listed" yes "$([ -n "$id" ] && echo yes || echo no)"

# kill -9 of the leader's container (its restart policy brings it back, as
# a standby until it wins the lease): a server leads again within about
# one --leader_lease (5s) and serves what the first one acknowledged.
killed_at=$SECONDS
"$podman" kill --signal KILL "$first" >/dev/null 2>&1
sleep 1  # the killed container's health check must not answer for it
second="$(leader)"
check "a server leads after kill -9 of the leader" yes "$([ -n "$second" ] && echo yes || echo no)"
[ -n "$second" ] || { echo "$passed passed, $failed failed"; exit 1; }
echo "     (a server led again $((SECONDS - killed_at)) s after the kill: $second)"
check "the task acknowledged before the kill: SUCCEEDED" 0 \
  "$(cli "$second" watch "$id" >/dev/null 2>&1; echo $?)"
cli "$second" submit --image "$busybox" --timeout 60s -- sh -c 'exit 3' >/dev/null 2>&1
check "a task through the new leader: exit code 3" 3 "$?"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
