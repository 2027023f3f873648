#!/usr/bin/env bash
# Runs scripts/bootstrap on a fresh Debian 12 (deploy/docker/build-base's
# minbase bookworm, in a new container that is thrown away afterwards: every
# package is downloaded and installed anew on each run) and checks, inside
# that container, that what the build, the tests and the local stack call is
# there and works: compilers and CMake packages (by configuring this tree and
# compiling a gRPC target), buf (`make lint`), haproxy with the proxy's
# configuration, python3 with PyYAML, podman-compose, mmdebstrap, and a real
# nested Podman engine (runc, conmon, netavark with iptables, aardvark-dns)
# running hardened busybox containers on an internal network, as the
# engine tests and the compose stack do, and a pod (catatonit, for its
# pause image), as the kube play test does. Not checked: kubectl (the
# manifest test's), which this kind of machine ships and bootstrap does not
# install.
#   tests/deploy/fresh_bootstrap_test.sh REPO_ROOT       KEEP=1: keep the container
# If podman cannot run the container this fails under CI=true and skips
# (exit 77) elsewhere. The container is privileged (the nested engine) and on
# the host's network (only that reaches Debian's mirror and the npm registry
# here); the nested engine gets a network namespace of its own.
set -uo pipefail

results=/tmp/fresh-bootstrap-results
check() {  # check NAME WANT GOT
  if [ "$2" = "$3" ]; then echo "ok   $1"; echo ok >>"$results"
  else echo "FAIL $1: want [$2], got [$3]"; echo FAIL >>"$results"; fi
}
summary() {
  local passed failed
  passed="$(grep -c '^ok$' "$results" 2>/dev/null)"
  failed="$(grep -c '^FAIL$' "$results" 2>/dev/null)"
  echo "${passed:-0} passed, ${failed:-0} failed"
  [ "${failed:-0}" -eq 0 ] && [ "${passed:-0}" -gt 0 ]
}

# program NAME-OR-PATH: installed, and every shared library of it found.
program() {
  local p; p="$(command -v "$1" 2>/dev/null)"
  check "$1: installed" yes "$([ -n "$p" ] && [ -x "$p" ] && echo yes || echo no)"
  [ -n "$p" ] || return 0
  p="$(readlink -f "$p")"
  if [ "$(head -c 4 "$p" | tail -c 3)" = ELF ]; then
    check "$1: every library found" "" "$(ldd "$p" 2>&1 | grep 'not found')"
  fi
}

# Inside the container, in a network namespace of its own: a Podman engine
# on the project's containers.conf (deploy/docker/podman: runc, netavark),
# storage on a tmpfs (overlay cannot sit on the container's overlay).
inside_engine() {
  local store=/var/tmp/engine
  mkdir -p "$store" && mount -t tmpfs tmpfs "$store"
  export CRUCIBLE_IMAGE_STORE="$store"
  local pod=/repo/deploy/docker/podman bb=localhost/crucible/busybox:latest
  # The busybox image, made as deploy/local/engine makes it (static busybox).
  local rootfs="$store/busybox-rootfs"
  mkdir -p "$rootfs/bin" "$rootfs/etc" "$rootfs/tmp"
  cp /bin/busybox "$rootfs/bin/busybox"
  for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -sf busybox "$rootfs/bin/$a"; done
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/sh\n' >"$rootfs/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$rootfs/etc/group"
  tar -C "$rootfs" -cf "$store/busybox.tar" .
  check "engine: import the busybox image" 0 \
    "$("$pod" import --quiet --change 'ENV PATH=/bin' --change 'CMD ["sh"]' \
         "$store/busybox.tar" "$bb" >/dev/null 2>&1; echo $?)"
  check "engine: runtime" runc "$("$pod" info --format '{{.Host.OCIRuntime.Name}}' 2>&1)"
  check "engine: network backend" netavark "$("$pod" info --format '{{.Host.NetworkBackend}}' 2>&1)"
  # Hardened as the executor runs tasks.
  check "engine: a hardened container runs (runc, conmon)" 65534 \
    "$("$pod" run --rm --pull=never --network=none --user 65534:65534 --read-only \
         --cap-drop=ALL --security-opt=no-new-privileges "$bb" id -u 2>&1)"
  # An internal network with names, as compose's engine network: netavark
  # (which runs iptables) and aardvark-dns.
  check "engine: internal network created" 0 \
    "$("$pod" network create --internal fresh-engine >/dev/null 2>&1; echo $?)"
  check "engine: a container on it" 0 \
    "$("$pod" run -d --pull=never --name fresh-peer --network fresh-engine "$bb" sleep 120 >/dev/null 2>&1; echo $?)"
  local out
  out="$("$pod" run --rm --pull=never --network fresh-engine "$bb" nslookup fresh-peer 2>&1)"
  check "engine: the peer's name resolves on the internal network (netavark, iptables, aardvark-dns)" yes \
    "$(echo "$out" | grep -q '^Address: 10\.' && echo yes || echo "no: $(echo "$out" | tail -3 | xargs)")"
  "$pod" rm -f -t 0 fresh-peer >/dev/null 2>&1
  # A pod, as tests/deploy/kube_play_test.sh plays the manifests: Podman
  # builds its pause image around catatonit.
  check "engine: a pod starts (its pause image, catatonit)" 0 \
    "$("$pod" pod create --name fresh-pod >/dev/null 2>&1 && "$pod" pod start fresh-pod >/dev/null 2>&1; echo $?)"
  "$pod" pod rm -f -t 0 fresh-pod >/dev/null 2>&1
  "$pod" network rm -f fresh-engine >/dev/null 2>&1
  # The Docker-compatible API, as deploy/local/engine serves it.
  "$pod" system service --time=0 "unix://$store/engine.sock" >"$store/service.log" 2>&1 </dev/null &
  local service=$!
  for _ in $(seq 100); do [ -S "$store/engine.sock" ] && break; sleep 0.1; done
  check "engine: the API answers (curl over its socket)" OK \
    "$(curl -sS --max-time 5 --unix-socket "$store/engine.sock" http://d/_ping 2>&1)"
  kill "$service" 2>/dev/null; wait "$service" 2>/dev/null
  "$pod" rm -f -a -t 0 >/dev/null 2>&1
  umount -l "$store" 2>/dev/null
}

# Inside the container: install, then check.
inside() {
  rm -f "$results"
  local t0=$SECONDS
  mkdir -p /repo
  tar -C /src --exclude=./build --exclude='./build-*' --exclude=./node_modules \
    --exclude=./.git --exclude=./.crucible -cf - . | tar -C /repo -xf -
  cd /repo || exit 1
  # Speed only, as Debian's own container images do: dpkg does not fsync
  # each file it unpacks. Every package is still fetched and installed.
  echo force-unsafe-io >/etc/dpkg/dpkg.cfg.d/fresh-bootstrap-unsafe-io
  scripts/bootstrap >/tmp/bootstrap.log 2>&1
  local rc=$?
  # With the CPU time it took (apt and dpkg are mostly serial): on a busy
  # machine the wall time says little.
  times >/tmp/bootstrap.times  # in this shell: its children's user and system time
  echo "fresh-bootstrap: scripts/bootstrap took $((SECONDS - t0)) s (CPU, user and system: $(tail -1 /tmp/bootstrap.times))"
  check "scripts/bootstrap on a fresh Debian 12" 0 "$rc"
  if [ "$rc" -ne 0 ]; then tail -40 /tmp/bootstrap.log; summary; exit 1; fi
  check "scripts/bootstrap again installs nothing" "" "$(scripts/bootstrap 2>&1)"

  local t1=$SECONDS
  # Programs the Makefile, the build, the tests, deploy/local/* and
  # deploy/docker/* call, and what podman and netavark call underneath.
  for p in make cmake ninja clang clang++ clang-format g++ pkg-config protoc grpc_cpp_plugin \
           podman runc conmon /usr/lib/podman/netavark /usr/lib/podman/aardvark-dns \
           iptables ip6tables catatonit haproxy curl /usr/bin/python3 podman-compose mmdebstrap \
           node npm node_modules/.bin/buf \
           setsid script timeout awk sha256sum tar xargs find chgrp seq ldd unshare; do
    program "$p"
  done
  check "busybox is static (copied alone into the busybox image)" "not a dynamic executable" \
    "$(ldd /bin/busybox 2>&1 | xargs)"
  check "iptables runs" 0 "$(iptables -V >/dev/null 2>&1; echo $?)"
  check "netavark runs" 0 "$(/usr/lib/podman/netavark --version >/dev/null 2>&1; echo $?)"
  check "python3 has PyYAML (the manifest test)" 0 "$(/usr/bin/python3 -c 'import yaml' 2>&1; echo $?)"
  # The Python client (clients/python) and its tests: grpc, protobuf, venv
  # and pip for the offline install, mypy for its type hints, and the
  # generator's grpc_python_plugin.
  check "python3 has grpc, protobuf, ensurepip (python3-venv), pip, setuptools (the Python client)" 0 \
    "$(/usr/bin/python3 -c 'import setuptools, grpc, google.protobuf, ensurepip, pip' >/dev/null 2>&1; echo $?)"
  program mypy
  program grpc_python_plugin
  check "podman-compose runs" 0 \
    "$(CONTAINERS_CONF=/repo/deploy/docker/containers.conf podman-compose version >/dev/null 2>&1; echo $?)"
  # haproxy accepts the proxy's configuration (any "${VAR}" set to a
  # socket path or an address, as deploy/local/engine sets them).
  local envs=() v
  for v in $(grep -o '"${[A-Z_]*}"' deploy/docker-proxy/haproxy.cfg | tr -d '"${}' | sort -u); do
    case "$v" in *SOCKET*) envs+=("$v=/run/fresh-engine.sock") ;; *) envs+=("$v=127.0.0.1:1") ;; esac
  done
  check "haproxy -c accepts deploy/docker-proxy/haproxy.cfg" 0 \
    "$(env "${envs[@]}" haproxy -c -q -f deploy/docker-proxy/haproxy.cfg 2>&1; echo $?)"
  # The base of the images: mmdebstrap as deploy/docker/build-base calls it, simulated.
  check "mmdebstrap resolves a minbase bookworm" 0 \
    "$(mmdebstrap --simulate --quiet --variant=minbase --mode=root bookworm /tmp/base.tar \
         http://deb.debian.org/debian >/tmp/mmdebstrap.log 2>&1; echo $?)"
  # The Makefile's configure (every find_package and pkg-config module of
  # CMakeLists.txt, libFuzzer's check) and lint (buf), then a gRPC target
  # (protoc, grpc_cpp_plugin, the -dev headers).
  check "make configure" 0 "$(make configure BUILD=/tmp/build >/tmp/configure.log 2>&1; echo $?)"
  check "libFuzzer (clang -fsanitize=fuzzer) found" 1 \
    "$(sed -n 's/^CRUCIBLE_HAVE_LIBFUZZER:INTERNAL=//p' /tmp/build/CMakeCache.txt)"
  check "make lint (buf)" 0 "$(make lint >/tmp/lint.log 2>&1; echo $?)"
  check "a gRPC target compiles and links" 0 \
    "$(cmake --build /tmp/build --target crucible_health_grpc >/tmp/compile.log 2>&1; echo $?)"
  echo "fresh-bootstrap: tools and build checks took $((SECONDS - t1)) s"

  local t2=$SECONDS
  unshare --net -- bash "$0" --inside-engine
  echo "fresh-bootstrap: the nested engine took $((SECONDS - t2)) s"
  if ! summary; then
    for log in bootstrap configure lint compile mmdebstrap; do
      [ -f "/tmp/$log.log" ] && { echo "--- /tmp/$log.log (last lines)"; tail -15 "/tmp/$log.log"; }
    done
    exit 1
  fi
}

case "${1:-}" in
  --inside) inside; exit ;;
  --inside-engine) inside_engine; exit 0 ;;
esac

# On the host.
root="$(cd "${1:?usage: fresh_bootstrap_test.sh REPO_ROOT}" && pwd)"
podman="$root/deploy/docker/podman"
export CRUCIBLE_IMAGE_STORE="${CRUCIBLE_IMAGE_STORE:-$root/build/images}"
base=localhost/crucible/debian:bookworm
name=crucible-fresh-bootstrap

unavailable() {
  echo "$1"
  if [ "${CI:-}" = true ]; then echo "FAIL: podman cannot run the fresh-bootstrap check (CI=true: no skip)"; exit 1; fi
  echo "SKIP: podman cannot run the fresh-bootstrap check"
  exit 77
}
command -v podman >/dev/null || unavailable "podman is not installed (scripts/bootstrap)"
"$podman" info >/dev/null 2>&1 || unavailable "podman info fails: $("$podman" info 2>&1 | tail -2)"
start=$SECONDS
"$root/deploy/docker/build-base" || { echo "FAIL: deploy/docker/build-base"; exit 1; }
echo "fresh-bootstrap: the Debian base ready after $((SECONDS - start)) s"
# A container left by a run that was killed (ctest's timeout) goes first.
"$podman" rm -f -t 0 "$name" >/dev/null 2>&1
cleanup() { [ -n "${KEEP:-}" ] || "$podman" rm -f -t 0 "$name" >/dev/null 2>&1; }
trap cleanup EXIT
trap 'exit 1' INT TERM
out="$("$podman" run --rm --pull=never --network=none "$base" true 2>&1)" ||
  unavailable "podman cannot run a container: $out"

# This machine reaches the npm registry through a TLS proxy whose CA only
# the machine trusts (NODE_EXTRA_CA_CERTS names it for Node): give the
# container the same trust, and nothing else of the machine.
ca="${NODE_EXTRA_CA_CERTS:-/etc/ssl/certs/ca-certificates.crt}"
ca_args=()
[ -r "$ca" ] && ca_args=(-v "$ca:/run/fresh-bootstrap/host-ca.crt:ro"
                         -e NODE_EXTRA_CA_CERTS=/run/fresh-bootstrap/host-ca.crt)
rm_arg=(--rm); [ -n "${KEEP:-}" ] && rm_arg=()
"$podman" run "${rm_arg[@]}" --pull=never --name "$name" --privileged --network=host \
  --timeout "${FRESH_BOOTSTRAP_TIMEOUT:-1200}" \
  -v "$root:/src:ro" "${ca_args[@]}" "$base" \
  bash /src/tests/deploy/fresh_bootstrap_test.sh --inside
rc=$?
echo "fresh-bootstrap: $((SECONDS - start)) s in all"
exit "$rc"
