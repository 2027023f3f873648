# What compose_test.sh and compose_ha_test.sh share (sourced, not run): a
# Podman engine API served from the deploy images' storage (build/images/),
# the busybox image tasks run, the stack's certificates and admin token,
# `check`, one deadline for every wait, and a teardown that, when a check
# failed, first prints each of the project's containers' state and last log
# lines. Before sourcing, set root (the repository) and project (the compose
# project's name) and compose_files (the -f files, in order).

podman="$root/deploy/docker/podman"
store="${CRUCIBLE_IMAGE_STORE:-$root/build/images}"
export CRUCIBLE_IMAGE_STORE="$store"
engine_dir="$store/$project-engine"
gid=2375
busybox=localhost/crucible/busybox:latest
mkdir -p "$engine_dir"

passed=0 failed=0
check() {  # check NAME WANT GOT
  if [ "$2" = "$3" ]; then passed=$((passed + 1)); echo "ok   $1"
  else failed=$((failed + 1)); echo "FAIL $1: want [$2], got [$3]"; fi
}
compose() {
  local files=() f
  for f in "${compose_files[@]}"; do files+=(-f "$root/deploy/compose/$f"); done
  podman-compose --podman-path "$podman" -p "$project" "${files[@]}" "$@"
}
ctr() { echo "${project}_$1_${2:-1}"; }
# The host pid of a container's PID 1: the distroless images have no shell,
# awk or cat to look from inside, so /proc is read from the host.
pid_of() { "$podman" inspect --format '{{.State.Pid}}' "$1"; }
proc_field() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$(pid_of "$1")/status" 2>&1; }
# A container's networks, sorted, on one line.
networks() {
  "$podman" inspect --format '{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}' "$1" |
    xargs -n1 | sort | xargs
}
project_containers() {
  "$podman" ps -a --filter "label=io.podman.compose.project=$project" --format '{{.Names}}' | sort
}

# What a failing run leaves to read: every container of the project, its
# state, restarts and health, and its last log lines; the engine's last.
dump_state() {
  local c
  echo "---- the project's containers (state, restarts, health) ----"
  for c in $(project_containers); do
    echo "$c: $("$podman" inspect --format '{{.State.Status}} exit={{.State.ExitCode}} restarts={{.RestartCount}} health={{.State.Health.Status}}' "$c" 2>&1)"
  done
  for c in $(project_containers); do
    echo "---- $c: last 25 log lines ----"
    "$podman" logs --tail 25 "$c" 2>&1
  done
  echo "---- the engine's last 15 log lines ($engine_dir/engine.log) ----"
  tail -n 15 "$engine_dir/engine.log" 2>&1
  echo "---- podman-compose up ($engine_dir/up.log), last 15 lines ----"
  tail -n 15 "$engine_dir/up.log" 2>&1
}

engine_pid=""
teardown() {
  if [ "$failed" -gt 0 ]; then dump_state; fi
  if [ -n "${KEEP:-}" ]; then echo "KEEP: left the stack and the engine (pid $engine_pid) running"; return; fi
  compose down -v >"$engine_dir/down.log" 2>&1
  # Whatever podman-compose left behind of this project (and only of it).
  project_containers | xargs -r "$podman" rm -f -t 2 >/dev/null 2>&1
  # podman-compose's down leaves the project's networks (in the machine's
  # global network configuration) and, without -v reaching them, volumes.
  "$podman" network ls -q --filter "label=io.podman.compose.project=$project" |
    xargs -r "$podman" network rm -f >/dev/null 2>&1
  "$podman" volume ls -q --filter "label=io.podman.compose.project=$project" |
    xargs -r "$podman" volume rm -f >/dev/null 2>&1
  if [ -n "$engine_pid" ]; then kill "$engine_pid" 2>/dev/null; wait "$engine_pid" 2>/dev/null; fi
  rm -f "$engine_dir/engine.sock"
}

# One deadline for the whole run's waits (DEADLINE seconds from the start,
# default 240): a run that has failed stops waiting instead of adding one
# timeout per service.
deadline=$((SECONDS + ${DEADLINE:-240}))
# wait_healthy CONTAINER...: until each one's health check passes (run by
# hand: no systemd timers here). Stops waiting for a container that has
# exited and stays so (or keeps restarting: 3 restarts), and at the
# deadline. Prints the containers not healthy; returns 1 if any.
wait_healthy() {
  local pending=("$@") still c state restarts
  while [ ${#pending[@]} -gt 0 ] && [ "$SECONDS" -lt "$deadline" ]; do
    still=()
    for c in "${pending[@]}"; do
      if "$podman" healthcheck run "$c" >/dev/null 2>&1; then continue; fi
      read -r state restarts < <("$podman" inspect --format '{{.State.Status}} {{.RestartCount}}' "$c" 2>/dev/null || echo missing 0)
      case "$state" in
        missing) echo "wait_healthy: $c does not exist"; return 1 ;;
        exited | stopped | dead)
          sleep 1  # a restart policy may be bringing it back
          state="$("$podman" inspect --format '{{.State.Status}}' "$c" 2>/dev/null)"
          case "$state" in exited | stopped | dead)
            echo "wait_healthy: $c has exited ($state)"; return 1 ;;
          esac ;;
      esac
      if [ "${restarts:-0}" -ge 3 ]; then echo "wait_healthy: $c restarted $restarts times"; return 1; fi
      still+=("$c")
    done
    pending=("${still[@]}")
    [ ${#pending[@]} -eq 0 ] || sleep 0.5
  done
  [ ${#pending[@]} -eq 0 ] || { echo "wait_healthy: not healthy by the deadline: ${pending[*]}"; return 1; }
}

# The busybox image tasks run, in the same storage as the engine's.
make_busybox() {
  "$podman" image exists "$busybox" && return 0
  local rootfs="$engine_dir/busybox-rootfs" a
  rm -rf "$rootfs"
  mkdir -p "$rootfs/bin" "$rootfs/etc" "$rootfs/tmp"
  cp /bin/busybox "$rootfs/bin/busybox"
  for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -sf busybox "$rootfs/bin/$a"; done
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/sh\n' >"$rootfs/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$rootfs/etc/group"
  tar -C "$rootfs" -cf "$engine_dir/busybox.tar" . && rm -rf "$rootfs"
  "$podman" import --quiet --change 'ENV PATH=/bin' --change 'CMD ["sh"]' \
    "$engine_dir/busybox.tar" "$busybox" >/dev/null
  rm -f "$engine_dir/busybox.tar"
}

# The engine's API socket, group-owned by $gid, mode 0660 (the node
# requirement). with-subids: the subordinate ids of the tasks' user
# namespaces (policy.json "userns": "auto"), private to this engine.
start_engine() {
  rm -rf "$engine_dir/engine.sock"
  "$root/deploy/local/with-subids" "$engine_dir/subids" \
    "$podman" system service --time=0 "unix://$engine_dir/engine.sock" \
    >"$engine_dir/engine.log" 2>&1 </dev/null &
  engine_pid=$!
  for _ in $(seq 100); do [ -S "$engine_dir/engine.sock" ] && break; sleep 0.1; done
  chgrp "$gid" "$engine_dir/engine.sock" && chmod 0660 "$engine_dir/engine.sock"
  check "engine answers" OK \
    "$(curl -sS --max-time 5 --unix-socket "$engine_dir/engine.sock" http://d/_ping 2>&1)"
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# The stack's certificates, made as the compose file says (a CA of this run),
# and the server's admin token: uid 10001's alone. Sets tls, admin_token,
# token.
make_secrets() {
  tls="$engine_dir/tls"
  rm -rf "$tls"
  CRUCIBLE_TLS_OWNER=10001 "$root/deploy/local/certs" "$tls"
  check "certificates made" 0 "$?"
  admin_token="$engine_dir/admin-token"
  head -c 32 /dev/urandom | base64 | tr -d '=+/\n' >"$admin_token"
  chown 10001 "$admin_token" && chmod 600 "$admin_token"
  token="$(cat "$admin_token")"
}

require_images() {
  local i
  for i in "$@"; do
    "$podman" image exists "localhost/crucible/$i:${CRUCIBLE_TAG:-dev}" ||
      { echo "FAIL: localhost/crucible/$i is not built (deploy/docker/build)"; exit 1; }
  done
}
