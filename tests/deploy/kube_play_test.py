#!/usr/bin/env python3
"""Plays the Kubernetes manifests (the `local` overlay of deploy/k8s) with
`podman kube play` (Podman 4.3) on the images deploy/docker/build made, in
their own storage (deploy/docker/podman, build/images/), against a Podman
engine API served from that storage, and checks them running (issue 24):

- every pod and every container of it running, and every probe of the
  manifests answering as the kubelet would ask it (Podman runs none);
- what each container really got: its user and groups, a read-only root
  filesystem, no effective capability, no-new-privileges and seccomp, as
  `podman inspect` and /proc/1/status inside show them; the engine socket
  in the executor pod's docker-proxy and docker-guard alone;
- a task end to end from a client on the pods' network through the
  `crucible-server` Service name: CLI -> server -> worker -> executor ->
  docker-proxy -> docker-guard -> engine;
- two executors both used: the executor Deployment scaled to two, eight
  tasks that sleep a little, and each executor's id on some of their
  containers (the worker finds executors by DNS, `--executors_dns`);
- a stop of an executor pod during a running task, in the order the kubelet
  stops a pod with native sidecars: SIGTERM to the executor with the pod's
  grace period, then the sidecars. A task that ends within the executor's
  `--cancel_grace` ends SUCCEEDED in its one attempt, one container; one
  that runs on is killed, its container removed, and it runs again on the
  other executor once, after the first container is gone (never beside
  it); the executor exits 0 within the grace, and no task container is left
  on the engine.

Podman 4.3 cannot play the rendered overlay as it is. The test changes
only what it cannot take, and says why at each change (`to_plays` in
kube_play_transform.py): the native sidecars become ordinary containers,
probes are taken out (the test runs them), the StatefulSet becomes a
Deployment with its claim, $(VAR) references are expanded (the executor
pods become one Pod each), containerPorts are not published on the host,
each pod's emptyDir gets a name of its own, the engine socket's hostPath
points at the test engine's socket, the TLS Secrets become host directories
of certificates made at test time (deploy/local/certs), and Services become network aliases on
a network of the test's own, whose configuration stays in the test's
directory (never the machine's /etc/containers/networks). Namespace,
ServiceAccounts, NetworkPolicies, the HPA and the PDBs mean nothing to
Podman and are not played; it ignores nodeSelector and affinity
(tests/deploy/k8s_manifests_test.py checks them statically).

Podman also starts a pod's containers together, where the kubelet starts
native sidecars first (after their startup probes): the executor may
find the proxy not yet listening for its first second (NOT_SERVING, then
SERVING; its first orphan reaping is a minute later).

Everything it creates (pods, volumes, the network, the engine, its client
container, task containers) is removed at the end, on failure too.

Usage: kube_play_test.py REPO_ROOT     KEEP=1: leave it all running
Environment: CRUCIBLE_IMAGE_STORE (default REPO_ROOT/build/images),
CRUCIBLE_TAG (default dev). Needs python3-yaml, kubectl (kustomize) and
podman with catatonit (scripts/bootstrap). Fails, never skips, when the
images are missing or the engine cannot start.
"""

import atexit
import ipaddress
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time

import yaml

ROOT = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else
                       os.path.join(os.path.dirname(__file__), "..", ".."))
# The manifest test's renderer (`kubectl kustomize`); it reads REPO_ROOT
# from argv at import, which its default finds from its own path as well.
sys.argv[1:] = []
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import k8s_manifests_test as manifests  # noqa: E402
from kube_play_transform import played_volumes, to_plays  # noqa: E402

PODMAN = os.path.join(ROOT, "deploy", "docker", "podman")
STORE = os.environ.get("CRUCIBLE_IMAGE_STORE") or os.path.join(ROOT, "build", "images")
os.environ["CRUCIBLE_IMAGE_STORE"] = STORE
TAG = os.environ.get("CRUCIBLE_TAG", "dev")
WORK = os.path.join(STORE, "kube-play")
NETWORK_DIR = os.path.join(WORK, "networks")
NETWORK = "crucible-kube-play"
ENGINE_SOCKET = os.path.join(WORK, "engine.sock")
# The TLS Secrets the manifests mount, one directory each (tls.crt, tls.key,
# ca.crt), made by make_secrets() from one test CA.
SECRETS_DIR = os.path.join(WORK, "secrets")
ENGINE_GID = 2375  # the node requirement: the socket is group 2375, mode 0660
CLIENT = "kube-play-client"
BUSYBOX = "localhost/crucible/busybox:latest"
EXECUTORS = 2
APP_UID = 10001

passed = 0
failed = 0


def check(name, want, got):
    global passed, failed
    if want == got:
        passed += 1
        print(f"ok   {name}", flush=True)
    else:
        failed += 1
        print(f"FAIL {name}: want [{want}], got [{got}]", flush=True)
    return want == got


def podman(*args, timeout=120, check_rc=False, quiet=False):
    """Runs deploy/docker/podman (the images' storage and containers.conf)
    with the test's own network configuration directory. Returns
    (exit code, stdout + stderr)."""
    cmd = [PODMAN, "--network-config-dir", NETWORK_DIR, *args]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                           stdin=subprocess.DEVNULL)
        rc, out = p.returncode, (p.stdout + p.stderr).strip()
    except subprocess.TimeoutExpired:
        rc, out = 124, f"timed out after {timeout}s"
    if check_rc and rc != 0:
        raise RuntimeError(f"podman {' '.join(args)}: exit {rc}: {out[-2000:]}")
    if rc != 0 and not quiet:
        print(f"     (podman {' '.join(args[:4])}...: exit {rc}: {out[-400:]})", flush=True)
    return rc, out


def stdout_of(*args, timeout=120):
    """podman's stdout alone (its warnings on stderr left out)."""
    cmd = [PODMAN, "--network-config-dir", NETWORK_DIR, *args]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                           stdin=subprocess.DEVNULL)
        return p.stdout.strip()
    except subprocess.TimeoutExpired:
        return ""


def wait_for(what, predicate, timeout, interval=0.5):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


# --- The test's own engine, network and cleanup ------------------------------

engine = None


def free_subnet():
    """A /24 no route of this machine uses (the network's configuration is
    the test's own, so Podman cannot see the machine's other networks)."""
    used = []
    with open("/proc/net/route") as f:  # destination and mask, little-endian hex
        for line in f.readlines()[1:]:
            fields = line.split()
            dest, mask = (ipaddress.IPv4Address(int(x, 16).to_bytes(4, "little")) for x in
                          (fields[1], fields[7]))
            if int(mask):
                used.append(ipaddress.ip_network(f"{dest}/{mask}", strict=False))
    for n in range(256):
        net = ipaddress.ip_network(f"10.213.{n}.0/24")
        if not any(net.overlaps(u) for u in used):
            return str(net)
    raise RuntimeError("no free subnet in 10.213.0.0/16")


def cleanup(plays, at_exit=True):
    global engine
    if at_exit and os.environ.get("KEEP"):
        print(f"KEEP: left the pods, the network {NETWORK} and the engine running "
              f"(podman --network-config-dir {NETWORK_DIR})")
        return
    for name, _, docs in plays:
        for d in docs:
            if d["kind"] == "Pod":
                podman("pod", "rm", "-f", "-t", "0", d["metadata"]["name"], quiet=True)
            elif d["kind"] == "Deployment":
                for i in range(d["spec"].get("replicas", 1)):
                    podman("pod", "rm", "-f", "-t", "0", f"{d['metadata']['name']}-pod-{i}", quiet=True)
    podman("rm", "-f", "-v", "-t", "0", CLIENT, quiet=True)  # -v: the image's /data
    # Task containers the executors of this test may have left behind.
    for _, _, docs in plays:
        for d in docs:
            if d["kind"] == "Pod":
                ids = stdout_of("ps", "-aq", "--filter",
                                f"label=crucible.executor={d['metadata']['name']}")
                if ids:
                    podman("rm", "-f", "-t", "0", *ids.split(), quiet=True)
    # The volumes its plays made: Podman names them after the claim, the
    # ConfigMap or the pod's volume (an emptyDir).
    for v in sorted(played_volumes(plays)):
        podman("volume", "rm", "-f", v, quiet=True)
    podman("network", "rm", "-f", NETWORK, quiet=True)
    if engine and engine.poll() is None:
        engine.terminate()
        try:
            engine.wait(10)
        except subprocess.TimeoutExpired:
            engine.kill()
    elif engine is None:
        stop_stale_engine()
    engine = None
    try:
        os.unlink(ENGINE_SOCKET)
    except FileNotFoundError:
        pass


def stop_stale_engine():
    """The engine of an earlier run that was killed (SIGKILL: no cleanup)
    or kept (KEEP=1), found by its command line: a `podman system service`
    on this test's socket."""
    for pid in (int(d) for d in os.listdir("/proc") if d.isdigit()):
        try:
            argv = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")
        except OSError:
            continue
        if b"service" in argv and f"unix://{ENGINE_SOCKET}".encode() in argv:
            os.kill(pid, signal.SIGTERM)
            wait_for("stale engine", lambda: not os.path.exists(f"/proc/{pid}"), 10, 0.2)


def on_signal(signum, _frame):
    sys.exit(128 + signum)  # runs atexit's cleanup


def start_engine():
    global engine
    try:
        os.unlink(ENGINE_SOCKET)
    except FileNotFoundError:
        pass
    log = open(os.path.join(WORK, "engine.log"), "w")
    # with-subids: the subordinate ids of the tasks' user namespaces (the
    # policy's "userns": "auto"), private to this engine.
    engine = subprocess.Popen([os.path.join(ROOT, "deploy", "local", "with-subids"),
                               os.path.join(WORK, "subids"),
                               PODMAN, "--network-config-dir", NETWORK_DIR, "system", "service",
                               "--time=0", f"unix://{ENGINE_SOCKET}"],
                              stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    if not wait_for("engine socket", lambda: os.path.exists(ENGINE_SOCKET), 15, 0.1):
        return "no socket"
    os.chown(ENGINE_SOCKET, -1, ENGINE_GID)
    os.chmod(ENGINE_SOCKET, 0o660)
    p = subprocess.run(["curl", "-sS", "--max-time", "5", "--unix-socket", ENGINE_SOCKET,
                        "http://d/_ping"], capture_output=True, text=True)
    return (p.stdout + p.stderr).strip()


def make_busybox():
    """The image tasks run, in the same storage (as compose_test.sh makes it)."""
    if podman("image", "exists", BUSYBOX, quiet=True)[0] == 0:
        return
    rootfs = os.path.join(WORK, "busybox-rootfs")
    subprocess.run(["rm", "-rf", rootfs], check=True)
    for d in ("bin", "etc", "tmp"):
        os.makedirs(os.path.join(rootfs, d))
    subprocess.run(["cp", "/bin/busybox", os.path.join(rootfs, "bin", "busybox")], check=True)
    applets = subprocess.run(["/bin/busybox", "--list"], capture_output=True, text=True).stdout.split()
    for a in applets:
        if a != "busybox":
            os.symlink("busybox", os.path.join(rootfs, "bin", a))
    with open(os.path.join(rootfs, "etc", "passwd"), "w") as f:
        f.write("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/sh\n")
    with open(os.path.join(rootfs, "etc", "group"), "w") as f:
        f.write("root:x:0:\nnogroup:x:65534:\n")
    tar = os.path.join(WORK, "busybox.tar")
    subprocess.run(["tar", "-C", rootfs, "-cf", tar, "."], check=True)
    subprocess.run(["rm", "-rf", rootfs], check=True)
    podman("import", "--quiet", "--change", "ENV PATH=/bin", "--change", 'CMD ["sh"]',
           tar, BUSYBOX, check_rc=True)
    os.unlink(tar)


# --- Checks -----------------------------------------------------------------

def pod_containers(pod):
    """{container name in the manifest: podman container name} of a pod."""
    out = stdout_of("ps", "-a", "--filter", f"pod={pod}", "--format", "{{.Names}}")
    return {n[len(pod) + 1:]: n for n in out.split() if n.startswith(pod + "-")}


def run_probe(pod, container, probe):
    """Asks a probe as the kubelet would: grpc through the image's own CLI
    (`crucible health`, the standard health service) inside the container,
    exec with its argv as it is."""
    ctr = f"{pod}-{container}"
    if "grpc" in probe:
        args = ["crucible", "health", f"127.0.0.1:{probe['grpc']['port']}"]
        if probe["grpc"].get("service"):
            args += ["--service", probe["grpc"]["service"]]
        return podman("exec", ctr, *args, timeout=20, quiet=True)[0] == 0
    if "exec" in probe:
        return podman("exec", ctr, *probe["exec"]["command"], timeout=20, quiet=True)[0] == 0
    raise ValueError(f"{ctr}: probe {probe} not handled here")


def container_pid(ctr):
    """The host pid of the container's PID 1 (the images have no shell or
    cat to look from inside)."""
    return stdout_of("inspect", "--format", "{{.State.Pid}}", ctr).strip()


def proc_status(ctr):
    try:
        with open(f"/proc/{container_pid(ctr)}/status") as f:
            out = f.read()
    except OSError as e:
        out = str(e)
    fields = {}
    for line in out.splitlines():
        k, _, v = line.partition(":")
        fields[k] = v.split()
    return fields


def cli(*args, timeout=120):
    """The crucible CLI in a client container on the pods' network (as a
    client pod), through the Service name: one container per call, the
    server image's CLI as its entrypoint (the image has no shell or sleep
    to keep a container waiting for execs)."""
    return podman("run", "--rm", "--name", f"{CLIENT}-{time.monotonic_ns()}",
                  "--network", NETWORK, "--pull=never",
                  "--read-only", "--cap-drop=ALL", "--security-opt=no-new-privileges",
                  "--no-healthcheck",  # the server image's, which Podman would
                  # schedule through systemd (absent here, and said on stderr)
                  "--volume", f"{SECRETS_DIR}/crucible-client-tls:/etc/crucible/tls:ro",
                  "--entrypoint", "/usr/local/bin/crucible", f"localhost/crucible/server:{TAG}",
                  "--server=crucible-server:8080", "--tls-ca=/etc/crucible/tls/ca.crt",
                  "--token", admin_token(), *args,
                  timeout=timeout, quiet=True)


def get_task(task_id):
    rc, out = cli("-o", "json", "get", task_id, timeout=20)
    try:
        return json.loads(out.splitlines()[-1]) if rc == 0 else {}
    except (ValueError, IndexError):
        return {}


def submit(*command):
    rc, out = cli("submit", "--detach", "--image", BUSYBOX, "--timeout", "120s", "--", *command)
    return out.splitlines()[-1].strip() if rc == 0 and out else None


def task_containers():
    """[(name, executor, task, state)] of every task container on the engine."""
    try:
        ctrs = json.loads(stdout_of("ps", "-a", "--filter", "label=crucible.executor",
                                    "--format", "json") or "[]")
    except ValueError:
        return [("unreadable", "", "", "")]
    return [(c["Names"][0], c["Labels"].get("crucible.executor"), c["Labels"].get("crucible.task"),
             c["State"]) for c in ctrs]


def wait_ended(ids, timeout):
    ended = {}

    def done():
        for i in ids:
            if i not in ended:
                t = get_task(i)
                if t.get("state") in ("TASK_STATE_SUCCEEDED", "TASK_STATE_FAILED",
                                      "TASK_STATE_CANCELLED", "TASK_STATE_TIMED_OUT"):
                    ended[i] = t
        return len(ended) == len(ids)
    wait_for("tasks", done, timeout, 1)
    for i in ids:
        if i not in ended:  # say where it stands
            print(f"     task {i} has not ended: {get_task(i) or cli('get', i)[1]}", flush=True)
    return ended


def container_events(task_id, since):
    """The engine's events on the containers of one task, in order:
    [(event, container name)]."""
    out = stdout_of("events", "--stream=false", "--since", since, "--filter", "type=container",
                    "--filter", f"label=crucible.task={task_id}",
                    "--format", "{{.Status}} {{.Name}}")
    return [tuple(l.split()[:2]) for l in out.splitlines() if len(l.split()) >= 2]


def starts_never_overlap(events):
    """Every container of the task was gone (died) before the next started."""
    running = set()
    for ev, name in events:
        if ev == "start":
            if running:
                return False
            running.add(name)
        elif ev in ("died", "remove", "cleanup"):
            running.discard(name)
    return True


def stop_pod_as_kubelet(pod, grace):
    """Deletes an executor pod as the kubelet does with native sidecars:
    SIGTERM to the main container, up to the pod's grace period for it to
    exit, then the sidecars (and the pod's network). Podman's own `pod stop`
    stops every container at once, as plain sidecars were stopped
    (issue 24, defect 2). Returns (seconds the executor took, its exit code)."""
    t0 = time.monotonic()
    podman("stop", "-t", str(grace), f"{pod}-executor", timeout=grace + 30)
    took = time.monotonic() - t0
    code = stdout_of("inspect", "--format", "{{.State.ExitCode}}", f"{pod}-executor")
    podman("pod", "stop", "-t", "10", pod, timeout=60)
    # A container that ignored its stop signal is killed at the end of the
    # grace (exit 137): said, not failed.
    killed = [c for c in ("docker-proxy", "docker-guard")
              if stdout_of("inspect", "--format", "{{.State.ExitCode}}", f"{pod}-{c}") == "137"]
    if killed:
        print(f"     {pod}: killed at the end of the grace, its stop signal ignored: "
              f"{', '.join(killed)}", flush=True)
    return took, code


def start(plays):
    """Images, the engine, the network, the plays. False if the rest
    cannot run."""
    for image in ("server", "worker", "executor", "docker-guard", "docker-proxy"):
        if not check(f"localhost/crucible/{image}:{TAG} is built (deploy/docker/build)", 0,
                     podman("image", "exists", f"localhost/crucible/{image}:{TAG}", quiet=True)[0]):
            return False
    make_busybox()
    if not check("engine answers (Podman's API on the images' storage)", "OK", start_engine()):
        return False

    # The test's network, its configuration in the test's own directory. Its
    # bridge gets a name of its own too: Podman would name it podman1, as it
    # may name a network of the machine's configuration at the same time.
    rc, _ = podman("network", "create", "--internal", "--subnet", free_subnet(), NETWORK)
    if not check("network created", 0, rc):
        return False
    path = os.path.join(NETWORK_DIR, f"{NETWORK}.json")
    with open(path) as f:
        net = json.load(f)
    net["network_interface"] = f"ckp{os.getpid() % 100000000}"
    with open(path, "w") as f:
        json.dump(net, f)
    check("the network's configuration is the test's own, not the machine's", False,
          os.path.exists(f"/etc/containers/networks/{NETWORK}.json"))

    for name, aliases, play_docs in plays:
        path = os.path.join(WORK, f"{name}.yaml")
        with open(path, "w") as f:
            yaml.safe_dump_all(play_docs, f, sort_keys=False)
        net_arg = NETWORK + (":" + ",".join(f"alias={a}" for a in aliases) if aliases else "")
        rc, _ = podman("kube", "play", "--network", net_arg, path, timeout=180)
        check(f"kube play {name} (aliases: {', '.join(aliases) or 'none'})", 0, rc)
    return True


def check_pods(pods, probes):
    """Every pod running, every container of it running, and the probes as
    the kubelet asks them: startup, then readiness until they answer (a
    minute), then liveness once."""
    def state(pod):
        return stdout_of("pod", "inspect", "--format", "{{.State}}", pod)
    for pod in pods:
        wait_for(pod, lambda: state(pod) == "Running", 30)
        check(f"{pod}: running", "Running", state(pod))
        for cname, ctr in sorted(pod_containers(pod).items()):
            check(f"{pod}/{cname}: running", "running",
                  stdout_of("inspect", "--format", "{{.State.Status}}", ctr))
    for pod in pods:
        for cname, kinds in probes[pod].items():
            for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
                if kind in kinds:
                    ok = stdout_of("inspect", "--format", "{{.State.Status}}",
                                   f"{pod}-{cname}") == "running" and \
                        wait_for(kind, lambda: run_probe(pod, cname, kinds[kind]), 60, 1)
                    check(f"{pod}/{cname}: {kind} answers", True, bool(ok))


def check_hardening(pods, rendered):
    """What each container really got."""
    for pod in pods:
        workload = re.sub(r"-(pod-)?\d+$", "", pod)
        spec = rendered[workload]["spec"]["template"]["spec"]
        # The kubelet gives every container the pod's supplementalGroups
        # and its fsGroup besides its own group.
        psc = spec.get("securityContext") or {}
        groups = {psc.get("runAsGroup"), psc.get("fsGroup"), *(psc.get("supplementalGroups") or [])}
        groups = sorted(str(g) for g in groups if g is not None)
        for cname, ctr in sorted(pod_containers(pod).items()):
            info = json.loads(stdout_of("inspect", ctr))[0]
            st = proc_status(ctr)
            name = f"{pod}/{cname}"
            check(f"{name}: user", f"{APP_UID}:{APP_UID}", info["Config"]["User"])
            check(f"{name}: process uids", [str(APP_UID)] * 4, st.get("Uid"))
            check(f"{name}: process gids", [str(APP_UID)] * 4, st.get("Gid"))
            check(f"{name}: groups", groups, sorted(set(st.get("Groups") or [])))
            check(f"{name}: read-only root filesystem", True, info["HostConfig"]["ReadonlyRootfs"])
            # From the host, through the container's root as its PID 1 sees
            # it: a read-only mount refuses even root.
            try:
                with open(f"/proc/{container_pid(ctr)}/root/kube-play", "w"):
                    out = "written"
            except OSError as e:
                out = e.strerror or str(e)
            check(f"{name}: writing / fails", "Read-only file system",
                  "Read-only file system" if "Read-only file system" in out else out)
            check(f"{name}: no effective capabilities", ["0000000000000000"], st.get("CapEff"))
            check(f"{name}: no permitted capabilities", ["0000000000000000"], st.get("CapPrm"))
            check(f"{name}: no-new-privileges (inspect)", True,
                  "no-new-privileges" in (info["HostConfig"].get("SecurityOpt") or []))
            check(f"{name}: NoNewPrivs", ["1"], st.get("NoNewPrivs"))
            check(f"{name}: seccomp filter", ["2"], st.get("Seccomp"))
            socket_mounts = [m for m in info.get("Mounts") or []
                             if m.get("Destination") == "/run/crucible-engine/engine.sock"]
            if cname in ("docker-proxy", "docker-guard"):
                check(f"{name}: the engine socket, read-only", [False],
                      [m.get("RW") for m in socket_mounts])
            else:
                check(f"{name}: no engine socket", [], socket_mounts)


def check_end_to_end():
    """A client on the pods' network (as a client pod): a task end to end
    through the crucible-server Service name."""
    rc, out = cli("submit", "--image", BUSYBOX, "--timeout", "60s", "--", "sh", "-c",
                  "echo hello-from-kube; id -u")
    check("task through crucible-server: exit code", 0, rc)
    check("task through crucible-server: output", ["hello-from-kube", "65534"],
          [line for line in out.splitlines() if line in ("hello-from-kube", "65534")])


def check_metrics(pods):
    """Prometheus' view: GET /metrics on the port the pod's annotations
    name, from the pod's network (the host's curl in its namespace), after
    the task above: each process's families, the task counted."""
    want = {"server": "crucible_server_tasks_created_total",
            "worker": "crucible_worker_executors_in_rotation",
            "executor": "crucible_executor_slots"}
    for pod in pods:
        for cname, ctr in sorted(pod_containers(pod).items()):
            if cname not in want:
                continue
            r = subprocess.run(
                ["nsenter", "-t", str(container_pid(ctr)), "-n", "curl", "-sS",
                 "--max-time", "10", "http://127.0.0.1:9090/metrics"],
                capture_output=True, text=True)
            samples = {l.split()[0]: l.split()[-1] for l in r.stdout.splitlines()
                       if l and not l.startswith("#")}
            found = any(k.split("{")[0] == want[cname] for k in samples)
            check(f"{pod}/{cname}: GET /metrics on 9090 has {want[cname]}", True,
                  found or (r.stderr or r.stdout)[:200])
            if cname == "server":
                created = float(samples.get("crucible_server_tasks_created_total", "0"))
                check(f"{pod}/server: the task above counted", True, created >= 1)


def check_both_executors(executor_pods):
    """Two executors, both used: eight tasks at once (four slots each)."""
    check("executor pods", EXECUTORS, len(executor_pods))
    ids = [submit("sh", "-c", "sleep 3; echo done") for _ in range(8)]
    check("eight tasks submitted", 8, len([i for i in ids if i]))
    seen = {}

    def all_seen():
        for _, executor, task, _ in task_containers():
            seen[task] = executor
        return all(i in seen for i in ids if i)
    wait_for("containers", all_seen, 60, 0.3)
    ended = wait_ended([i for i in ids if i], 90)
    check("eight tasks SUCCEEDED", ["TASK_STATE_SUCCEEDED"] * 8,
          [ended.get(i, {}).get("state") for i in ids])
    check("tasks ran on both executors", sorted(executor_pods), sorted(set(seen.values())))
    print(f"     tasks per executor: "
          f"{ {e: list(seen.values()).count(e) for e in sorted(set(seen.values()))} }")


def running_on(task):
    """The executor whose container of the task is running, if any."""
    for _, executor, t, state in task_containers():
        if t == task and state == "running":
            return executor
    return None


def check_pod_stop(executor_pods, grace):
    """Executor pods stopped during a running task, as the kubelet stops
    them. First a task that runs past the executor's --cancel_grace (3s):
    cancelled, its container removed, run again on the other executor
    once, never beside the first run. Then one that ends within the grace
    on the other: SUCCEEDED in its one attempt, in one container."""
    since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 2))
    long_id = submit("sh", "-c", "sleep 8; echo long-done")
    stopped = wait_for("long task running", lambda: running_on(long_id), 30, 0.2)
    check("long task running", True, bool(stopped))
    other = next((p for p in executor_pods if p != stopped), None)
    if stopped:
        took, code = stop_pod_as_kubelet(stopped, grace)
        check(f"{stopped}: executor exited 0 after SIGTERM", "0", code)
        check(f"{stopped}: executor stopped within its grace ({grace}s)", True, took < grace)
        check(f"{stopped}: none of its task containers left", [],
              [c for c in task_containers() if c[1] == stopped])
    # Long waits: aardvark-dns (1.4) may not answer for several seconds
    # after a pod leaves the network, and the CLI resolves crucible-server
    # anew at each call.
    t = wait_ended([long_id], 90).get(long_id, {})
    check("long task: SUCCEEDED", "TASK_STATE_SUCCEEDED", t.get("state"))
    # Its stopped run is the system's fault, not the task's: retried without
    # counting against max_attempts. (An attempt the stopping executor
    # refused before running anything is one more such failure, and no run.)
    print(f"     long task: attempt {t.get('attempt')}, "
          f"{t.get('infrastructureFailures')} of them infrastructure failures", flush=True)
    check("long task: one attempt counted, the others infrastructure failures", 1,
          (t.get("attempt") or 0) - (t.get("infrastructureFailures") or 0))
    events = container_events(long_id, since)
    starts = [n for e, n in events if e == "start"]
    check("long task: two containers started (one per attempt)", 2, len(set(starts)))
    check("long task: the retry started after the first run was gone", True,
          starts_never_overlap(events))
    _, out = cli("logs", long_id, timeout=30)
    check("long task: output of its last attempt", "long-done", out.strip())

    short_id = submit("sh", "-c", "sleep 2; echo short-done")
    on = wait_for("short task running", lambda: running_on(short_id), 30, 0.1)
    check("short task running on the remaining executor", other, on)
    if on:
        took, code = stop_pod_as_kubelet(on, grace)
        check(f"{on}: executor exited 0 after SIGTERM", "0", code)
        check(f"{on}: executor stopped within its grace ({grace}s)", True, took < grace)
    t = wait_ended([short_id], 90).get(short_id, {})
    check("short task: SUCCEEDED in its first attempt", ("TASK_STATE_SUCCEEDED", 1),
          (t.get("state"), t.get("attempt")))
    events = container_events(short_id, since)
    check("short task: one container started", 1,
          len(set(n for e, n in events if e == "start")))


def make_secrets():
    """The Secrets the manifests name, as cert-manager would lay them out
    (tls.crt, tls.key, ca.crt), from a CA made here (deploy/local/certs);
    readable by the containers' user, test keys only."""
    certs = os.path.join(SECRETS_DIR, "certs")
    subprocess.run([os.path.join(ROOT, "deploy", "local", "certs"), certs], check=True)
    for secret, name in (("crucible-server-tls", "server"), ("crucible-worker-tls", "worker"),
                         ("crucible-executor-tls", "executor"), ("crucible-client-tls", "client")):
        d = os.path.join(SECRETS_DIR, secret)
        os.makedirs(d, exist_ok=True)
        for src, dst in ((f"{name}.pem", "tls.crt"), (f"{name}.key", "tls.key"), ("ca.pem", "ca.crt")):
            shutil.copyfile(os.path.join(certs, src), os.path.join(d, dst))
            os.chmod(os.path.join(d, dst), 0o444)
        os.chmod(d, 0o755)
    # The server's admin token (Secret crucible-admin-token, key "token"):
    # the test's CLI calls use it.
    d = os.path.join(SECRETS_DIR, "crucible-admin-token")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "token"), "w") as f:
        f.write(secrets.token_urlsafe(32))
    os.chmod(os.path.join(d, "token"), 0o444)
    os.chmod(d, 0o755)
    os.chmod(SECRETS_DIR, 0o755)


def admin_token():
    with open(os.path.join(SECRETS_DIR, "crucible-admin-token", "token")) as f:
        return f.read().strip()


def main():
    os.makedirs(NETWORK_DIR, exist_ok=True)
    make_secrets()
    docs = manifests.render(os.path.join(ROOT, "deploy", "k8s", "overlays", "local"))
    rendered = {d["metadata"]["name"]: d for d in docs if d["kind"] in ("Deployment", "StatefulSet")}
    plays, probes = to_plays(docs, ENGINE_SOCKET, EXECUTORS, SECRETS_DIR)
    atexit.register(cleanup, plays)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    cleanup(plays, at_exit=False)  # whatever a killed (or KEEP) earlier run left
    t_start = time.monotonic()
    if not start(plays):
        return
    pods = sorted(probes)
    check_pods(pods, probes)
    check_hardening(pods, rendered)
    check_end_to_end()
    check_metrics(pods)
    executor_pods = [p for p in pods if p.startswith("crucible-executor-")]
    check_both_executors(executor_pods)
    check_pod_stop(executor_pods,
                   rendered["crucible-executor"]["spec"]["template"]["spec"]["terminationGracePeriodSeconds"])
    check("no task container left on the engine", [], task_containers())
    print(f"     {time.monotonic() - t_start:.0f} s")


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # a broken step fails the test, cleanup still runs
        import traceback
        traceback.print_exc()
        check("the test ran to its end", "no exception", repr(e))
    print(f"{passed} passed, {failed} failed")
    sys.exit(0 if failed == 0 and passed > 0 else 1)
