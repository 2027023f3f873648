#!/usr/bin/env python3
"""Renders every overlay in deploy/k8s/overlays with `kubectl kustomize`
(offline) and audits what it renders: every container non-root with uid
10001, read-only root filesystem, no privilege escalation, all capabilities
dropped, RuntimeDefault seccomp, requests and limits, native gRPC probes on
Crucible's processes; no hostPath but the docker-proxy's engine socket; no
host namespaces, no service account tokens, no RBAC objects; the objects the
design calls for (StatefulSet, HPA, headless Service, PDBs, default-deny
NetworkPolicy) and the proxy ConfigMap identical to
deploy/docker-proxy/haproxy.cfg. The engine socket is mounted read-only into
the executor pod's docker-proxy and docker-guard sidecars alone; both listen
on loopback only, the proxy sends creates to the guard, and the executor and
the guard read the same policy file from one mounted ConfigMap.

Usage: k8s_manifests_test.py REPO_ROOT   (needs kubectl and python3-yaml)
"""

import copy
import json
import os
import subprocess
import sys
import unittest

import yaml

ROOT = os.path.abspath(sys.argv.pop(1) if len(sys.argv) > 1 else
                       os.path.join(os.path.dirname(__file__), "..", ".."))
K8S = os.path.join(ROOT, "deploy", "k8s")
PROXY_CFG = os.path.join(ROOT, "deploy", "docker-proxy", "haproxy.cfg")
APP_UID = 10001
PROXY_CONTAINER = "docker-proxy"
GUARD_CONTAINER = "docker-guard"
EXECUTOR_POD = "Deployment/crucible-executor"
# The only containers that may mount the engine socket: the executor pod's
# proxy and guard (read-only).
ENGINE_CONTAINERS = {PROXY_CONTAINER, GUARD_CONTAINER}
# No Kubernetes API access: none of these may be rendered.
RBAC_KINDS = {"Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"}
WORKLOADS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job",
             "CronJob", "Pod"}


def overlays():
    base = os.path.join(K8S, "overlays")
    return sorted(d for d in os.listdir(base)
                  if os.path.isfile(os.path.join(base, d, "kustomization.yaml")))


def render(path):
    out = subprocess.run(["kubectl", "kustomize", path], check=True,
                         capture_output=True, text=True).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def pod_spec(obj):
    kind = obj["kind"]
    if kind == "Pod":
        return obj["spec"]
    if kind == "CronJob":
        return obj["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return obj["spec"]["template"]["spec"]


def all_containers(spec):
    """Init containers (native sidecars among them), then the others."""
    return (spec.get("initContainers") or []) + (spec.get("containers") or [])


def env_value(container, name):
    return next((e.get("value", "") for e in container.get("env") or []
                 if e["name"] == name), None)


def flag_value(container, flag):
    """The value of --flag=VALUE in the container's args (None if absent)."""
    prefix = f"--{flag}="
    values = [a[len(prefix):] for a in (container.get("command") or []) +
              (container.get("args") or []) if a.startswith(prefix)]
    return values[-1] if values else None


def is_loopback(host_port):
    return (host_port or "").startswith("127.0.0.1:")


def audit_pod(name, spec):
    """Returns a list of violations (strings) for one pod spec."""
    bad = []
    psc = spec.get("securityContext") or {}
    for key in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(key):
            bad.append(f"{name}: {key} is set")
    if spec.get("automountServiceAccountToken") is not False:
        bad.append(f"{name}: automountServiceAccountToken is not false")
    if spec.get("shareProcessNamespace"):
        bad.append(f"{name}: shareProcessNamespace is set")

    containers = (spec.get("initContainers") or []) + spec.get("containers", []) + \
        (spec.get("ephemeralContainers") or [])
    for c in containers:
        cname = f"{name}/{c['name']}"
        csc = c.get("securityContext") or {}

        def eff(key):
            return csc[key] if key in csc else psc.get(key)

        if eff("runAsNonRoot") is not True:
            bad.append(f"{cname}: runAsNonRoot is not true")
        if eff("runAsUser") != APP_UID:
            bad.append(f"{cname}: runAsUser is {eff('runAsUser')}, not {APP_UID}")
        if eff("runAsGroup") in (None, 0):
            bad.append(f"{cname}: runAsGroup is unset or 0")
        if csc.get("readOnlyRootFilesystem") is not True:
            bad.append(f"{cname}: readOnlyRootFilesystem is not true")
        if csc.get("allowPrivilegeEscalation") is not False:
            bad.append(f"{cname}: allowPrivilegeEscalation is not false")
        if csc.get("privileged"):
            bad.append(f"{cname}: privileged")
        if csc.get("procMount") not in (None, "Default"):
            bad.append(f"{cname}: procMount {csc.get('procMount')}")
        caps = csc.get("capabilities") or {}
        if caps.get("drop") != ["ALL"]:
            bad.append(f"{cname}: capabilities.drop is {caps.get('drop')}, not [ALL]")
        if caps.get("add"):
            bad.append(f"{cname}: capabilities.add {caps['add']}")
        seccomp = (eff("seccompProfile") or {}).get("type")
        if seccomp != "RuntimeDefault":
            bad.append(f"{cname}: seccompProfile is {seccomp}, not RuntimeDefault")
        res = c.get("resources") or {}
        for kind in ("requests", "limits"):
            for r in ("cpu", "memory"):
                if r not in (res.get(kind) or {}):
                    bad.append(f"{cname}: no {kind}.{r}")
        for p in c.get("ports") or []:
            if "hostPort" in p:
                bad.append(f"{cname}: hostPort {p['hostPort']}")
            if p.get("containerPort", 0) < 1024:
                bad.append(f"{cname}: port {p.get('containerPort')} below 1024")

        if c["name"] == PROXY_CONTAINER:
            # HAProxy speaks no gRPC; it must then be unreachable from the
            # network: loopback only, its executor is the one client; and
            # it reaches its guard on loopback too.
            bind = env_value(c, "CRUCIBLE_PROXY_BIND")
            if not is_loopback(bind):
                bad.append(f"{cname}: CRUCIBLE_PROXY_BIND {bind!r} is not loopback")
            guard = env_value(c, "CRUCIBLE_GUARD_ADDR")
            if not is_loopback(guard):
                bad.append(f"{cname}: CRUCIBLE_GUARD_ADDR {guard!r} is not loopback")
        elif c["name"] == GUARD_CONTAINER:
            # Plain HTTP, no gRPC: loopback only, its proxy is the one client.
            listen = flag_value(c, "listen")
            if not is_loopback(listen):
                bad.append(f"{cname}: --listen {listen!r} is not loopback")
        else:
            ports = {p.get("containerPort") for p in c.get("ports") or []}
            for probe in ("livenessProbe", "readinessProbe"):
                grpc = (c.get(probe) or {}).get("grpc")
                if not grpc:
                    bad.append(f"{cname}: {probe} is not a native gRPC probe")
                elif grpc.get("port") not in ports:
                    bad.append(f"{cname}: {probe} port {grpc.get('port')} is not a container port")

    # hostPath: only the engine socket, only in the executor pod's proxy
    # and guard, read-only.
    for v in spec.get("volumes") or []:
        if "hostPath" not in v:
            continue
        users = [(c["name"], m) for c in containers
                 for m in c.get("volumeMounts") or [] if m["name"] == v["name"]]
        if v["hostPath"].get("type") != "Socket":
            bad.append(f"{name}: hostPath {v['hostPath'].get('path')} is not of type Socket")
        if not users:
            bad.append(f"{name}: hostPath volume {v['name']} mounted by no container")
        for cn, m in users:
            if name != EXECUTOR_POD or cn not in ENGINE_CONTAINERS:
                bad.append(f"{name}/{cn}: mounts hostPath {v['hostPath'].get('path')}")
            elif m.get("readOnly") is not True:
                bad.append(f"{name}/{cn}: engine socket is not mounted read-only")
    return bad


def policy_source(name, spec, container, docs):
    """(ConfigMap name, key) that the container's --policy_file reads, or a
    violation (string)."""
    path = flag_value(container, "policy_file")
    if not path:
        return f"{name}/{container['name']}: no --policy_file"
    directory, key = os.path.split(path)
    mounts = [m for m in container.get("volumeMounts") or []
              if m["mountPath"] == directory and "subPath" not in m]
    if len(mounts) != 1:
        return f"{name}/{container['name']}: --policy_file {path} is not in a mounted volume"
    if mounts[0].get("readOnly") is not True:
        return f"{name}/{container['name']}: the policy is not mounted read-only"
    vol = next((v for v in spec.get("volumes") or [] if v["name"] == mounts[0]["name"]), {})
    cm_name = (vol.get("configMap") or {}).get("name")
    cm = next((d for d in docs if d["kind"] == "ConfigMap"
               and d["metadata"]["name"] == cm_name), None)
    if cm is None or key not in (cm.get("data") or {}):
        return f"{name}/{container['name']}: --policy_file {path} is not a key of a rendered ConfigMap"
    return (cm_name, key)


def audit_executor_pod(docs):
    """The executor pod's engine side: the guard sidecar is there, the proxy
    sends creates to it, and it reads the executor's own policy file."""
    d = next((d for d in docs if f"{d['kind']}/{d['metadata']['name']}" == EXECUTOR_POD), None)
    if d is None:
        return [f"{EXECUTOR_POD} not rendered"]
    spec = pod_spec(d)
    by_name = {c["name"]: c for c in all_containers(spec)}
    missing = [c for c in ("executor", PROXY_CONTAINER, GUARD_CONTAINER) if c not in by_name]
    if missing:
        return [f"{EXECUTOR_POD}: no container {c}" for c in missing]
    executor, proxy, guard = (by_name[c] for c in ("executor", PROXY_CONTAINER, GUARD_CONTAINER))
    bad = []
    if env_value(proxy, "CRUCIBLE_GUARD_ADDR") != flag_value(guard, "listen"):
        bad.append(f"{EXECUTOR_POD}: the proxy's CRUCIBLE_GUARD_ADDR "
                   f"{env_value(proxy, 'CRUCIBLE_GUARD_ADDR')!r} is not the guard's "
                   f"--listen {flag_value(guard, 'listen')!r}")
    if proxy.get("image") != guard.get("image"):
        bad.append(f"{EXECUTOR_POD}: the guard's image {guard.get('image')} is not the proxy's")
    if (guard.get("command") or [None])[0] != "/usr/local/bin/crucible-docker-guard":
        bad.append(f"{EXECUTOR_POD}/{GUARD_CONTAINER}: command is {guard.get('command')}")
    # The guard talks to the engine socket it mounts.
    socket = flag_value(guard, "engine_socket")
    mounted = {m["mountPath"]: m["name"] for m in guard.get("volumeMounts") or []}
    host_paths = {v["name"] for v in spec.get("volumes") or [] if "hostPath" in v}
    if mounted.get(socket) not in host_paths:
        bad.append(f"{EXECUTOR_POD}/{GUARD_CONTAINER}: --engine_socket {socket!r} is not the "
                   "mounted engine socket")
    sources = [policy_source(EXECUTOR_POD, spec, c, docs) for c in (executor, guard)]
    bad += [s for s in sources if isinstance(s, str)]
    if not bad and sources[0] != sources[1]:
        bad.append(f"{EXECUTOR_POD}: the executor reads the policy {sources[0]}, "
                   f"the guard {sources[1]}")
    # A guard pinned to an executor id must be pinned to its own executor's.
    if flag_value(guard, "executor_id") is not None and \
            flag_value(guard, "executor_id") != flag_value(executor, "executor_id"):
        bad.append(f"{EXECUTOR_POD}: the guard's --executor_id "
                   f"{flag_value(guard, 'executor_id')!r} is not the executor's "
                   f"{flag_value(executor, 'executor_id')!r}")
    return bad


def audit(docs):
    """Returns every violation in one rendered overlay."""
    bad = []
    for d in docs:
        if d["kind"] in WORKLOADS:
            bad += audit_pod(f"{d['kind']}/{d['metadata']['name']}", pod_spec(d))
        if d["kind"] == "ServiceAccount" and d.get("automountServiceAccountToken") is not False:
            bad.append(f"ServiceAccount/{d['metadata']['name']}: token automounted")
        if d["kind"] in RBAC_KINDS:
            bad.append(f"{d['kind']}/{d['metadata']['name']}: RBAC object (no Kubernetes API access)")
    return bad + audit_executor_pod(docs)


def find(docs, kind, name):
    for d in docs:
        if d["kind"] == kind and d["metadata"]["name"] == name:
            return d
    raise AssertionError(f"{kind}/{name} not rendered")


class RenderedOverlays(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.rendered = {o: render(os.path.join(K8S, "overlays", o)) for o in overlays()}

    def test_there_are_local_and_production_overlays(self):
        self.assertIn("local", self.rendered)
        self.assertIn("production", self.rendered)

    def test_every_container_follows_the_rules(self):
        for o, docs in self.rendered.items():
            with self.subTest(overlay=o):
                self.assertEqual(audit(docs), [])

    def test_every_workload_was_audited(self):
        for o, docs in self.rendered.items():
            names = sorted(f"{d['kind']}/{d['metadata']['name']}"
                           for d in docs if d["kind"] in WORKLOADS)
            self.assertEqual(names, ["Deployment/crucible-executor",
                                     "Deployment/crucible-worker",
                                     "StatefulSet/crucible-server"], o)

    def test_the_only_hostpath_is_the_proxys_engine_socket(self):
        for o, docs in self.rendered.items():
            paths = [(d["metadata"]["name"], v["name"])
                     for d in docs if d["kind"] in WORKLOADS
                     for v in pod_spec(d).get("volumes") or [] if "hostPath" in v]
            self.assertEqual(paths, [("crucible-executor", "engine-socket")], o)
            ex = pod_spec(find(docs, "Deployment", "crucible-executor"))
            users = sorted((c["name"], m.get("readOnly")) for c in all_containers(ex)
                           for m in c.get("volumeMounts") or [] if m["name"] == "engine-socket")
            self.assertEqual(users, [(GUARD_CONTAINER, True), (PROXY_CONTAINER, True)], o)

    def test_no_rbac_objects(self):
        for o, docs in self.rendered.items():
            self.assertEqual([f"{d['kind']}/{d['metadata']['name']}"
                              for d in docs if d["kind"] in RBAC_KINDS], [], o)

    def test_the_guard_sidecar_is_hardened_and_on_loopback(self):
        for o, docs in self.rendered.items():
            ex = pod_spec(find(docs, "Deployment", "crucible-executor"))
            by_name = {c["name"]: c for c in all_containers(ex)}
            guard, proxy = by_name[GUARD_CONTAINER], by_name[PROXY_CONTAINER]
            self.assertEqual(guard["securityContext"], proxy["securityContext"], o)
            sc = guard["securityContext"]
            self.assertEqual((sc["runAsNonRoot"], sc["runAsUser"], sc["readOnlyRootFilesystem"],
                              sc["allowPrivilegeEscalation"], sc["capabilities"],
                              sc["seccompProfile"]),
                             (True, APP_UID, True, False, {"drop": ["ALL"]},
                              {"type": "RuntimeDefault"}), o)
            self.assertEqual(guard["image"], proxy["image"], o)
            self.assertEqual(guard["command"], ["/usr/local/bin/crucible-docker-guard"], o)
            self.assertIn("--listen=127.0.0.1:2376", guard["args"], o)
            self.assertIn("--engine_socket=/run/crucible-engine/engine.sock", guard["args"], o)
            self.assertEqual(env_value(proxy, "CRUCIBLE_GUARD_ADDR"), "127.0.0.1:2376", o)
            for kind in ("requests", "limits"):
                self.assertEqual(sorted(guard["resources"][kind]), ["cpu", "memory"], o)
            if o == "local":  # images are loaded into the node, never pulled
                self.assertEqual({c["name"]: c.get("imagePullPolicy") for c in all_containers(ex)},
                                 {"executor": "Never", PROXY_CONTAINER: "Never",
                                  GUARD_CONTAINER: "Never"})

    def test_executor_and_guard_read_one_policy_configmap(self):
        for o, docs in self.rendered.items():
            ex = pod_spec(find(docs, "Deployment", "crucible-executor"))
            by_name = {c["name"]: c for c in all_containers(ex)}
            sources = {c: policy_source(EXECUTOR_POD, ex, by_name[c], docs)
                       for c in ("executor", GUARD_CONTAINER)}
            self.assertEqual(sources["executor"], sources[GUARD_CONTAINER], o)
            cm_name, key = sources["executor"]
            self.assertTrue(cm_name.startswith("crucible-policy-"), cm_name)
            cm = find(docs, "ConfigMap", cm_name)
            with open(os.path.join(K8S, "base", "policy.json")) as f:
                self.assertEqual(cm["data"][key], f.read(), o)
            policy = json.loads(cm["data"][key])
            self.assertEqual(policy["user"], "65534:65534", o)
            self.assertEqual(policy["images"], ["localhost/crucible/"], o)
            # No image rules or task user left in flags or env.
            for c in all_containers(ex):
                for a in (c.get("args") or []):
                    self.assertFalse(a.startswith(("--allowed_images", "--user")), f"{o}: {a}")
                for e in c.get("env") or []:
                    self.assertNotIn(e["name"], ("CRUCIBLE_ALLOWED_IMAGES", "CRUCIBLE_TASK_USER"), o)
            self.assertEqual(flag_value(by_name["executor"], "executor_id"),
                             flag_value(by_name[GUARD_CONTAINER], "executor_id"), o)

    def test_server_is_one_statefulset_replica_with_a_data_volume(self):
        for o, docs in self.rendered.items():
            sts = find(docs, "StatefulSet", "crucible-server")
            self.assertEqual(sts["spec"]["replicas"], 1, o)
            self.assertEqual(sts["spec"]["volumeClaimTemplates"][0]["metadata"]["name"], "data")
            c = sts["spec"]["template"]["spec"]["containers"][0]
            self.assertIn("--db=/data/crucible.db", c["args"])
            self.assertIn("/data", [m["mountPath"] for m in c["volumeMounts"]])

    def test_workers_autoscale_and_executors_have_a_headless_service(self):
        for o, docs in self.rendered.items():
            hpa = find(docs, "HorizontalPodAutoscaler", "crucible-worker")
            self.assertEqual(hpa["spec"]["scaleTargetRef"]["name"], "crucible-worker")
            svc = find(docs, "Service", "crucible-executor")
            self.assertEqual(svc["spec"]["clusterIP"], "None", o)
            ex = pod_spec(find(docs, "Deployment", "crucible-executor"))
            self.assertEqual([c["name"] for c in ex["containers"]], ["executor"], o)
            # The guard, then the proxy: native sidecars that outlive the
            # executor at a pod stop.
            self.assertEqual([(c["name"], c.get("restartPolicy")) for c in ex["initContainers"]],
                             [(GUARD_CONTAINER, "Always"), (PROXY_CONTAINER, "Always")], o)
            self.assertIn("--docker_host=tcp://127.0.0.1:2375", ex["containers"][0]["args"])
            for name in ("crucible-worker", "crucible-executor"):
                find(docs, "PodDisruptionBudget", name)

    def test_network_policy_denies_by_default(self):
        for o, docs in self.rendered.items():
            deny = find(docs, "NetworkPolicy", "crucible-default-deny")
            self.assertEqual(deny["spec"]["podSelector"], {})
            self.assertEqual(sorted(deny["spec"]["policyTypes"]), ["Egress", "Ingress"])
            self.assertNotIn("ingress", deny["spec"])
            self.assertNotIn("egress", deny["spec"])
            # Nothing may reach the executor but workers, on the gRPC port.
            ex = find(docs, "NetworkPolicy", "crucible-executor")
            rules = ex["spec"]["ingress"]
            self.assertEqual(len(rules), 1)
            self.assertEqual(rules[0]["ports"], [{"protocol": "TCP", "port": 8082}])
            self.assertEqual([f["podSelector"]["matchLabels"]["app.kubernetes.io/component"]
                              for f in rules[0]["from"]], ["worker"])

    def test_proxy_config_is_the_repositorys_allowlist(self):
        with open(PROXY_CFG) as f:
            want = f.read()
        with open(os.path.join(K8S, "base", "docker-proxy", "haproxy.cfg")) as f:
            self.assertEqual(f.read(), want,
                             "deploy/k8s/base/docker-proxy/haproxy.cfg differs from "
                             "deploy/docker-proxy/haproxy.cfg: run scripts/sync-k8s-proxy-config")
        for o, docs in self.rendered.items():
            cms = [d for d in docs if d["kind"] == "ConfigMap"
                   and d["metadata"]["name"].startswith("crucible-docker-proxy")]
            self.assertEqual(len(cms), 1, o)
            self.assertEqual(cms[0]["data"]["haproxy.cfg"], want)
            ex = pod_spec(find(docs, "Deployment", "crucible-executor"))
            vol = next(v for v in ex["volumes"] if v["name"] == "proxy-config")
            self.assertEqual(vol["configMap"]["name"], cms[0]["metadata"]["name"])


class AuditCatchesViolations(unittest.TestCase):
    """The audit must fail on each broken rule, or a green run means nothing."""

    @classmethod
    def setUpClass(cls):
        cls.docs = render(os.path.join(K8S, "overlays", "local"))
        assert audit(cls.docs) == []

    def broken(self, mutate):
        docs = copy.deepcopy(self.docs)
        mutate(docs)
        return audit(docs)

    def containers(self, docs, name):
        return pod_spec(find(docs, "Deployment", name))["containers"]

    def container(self, docs, name):
        return next(c for c in all_containers(pod_spec(find(docs, "Deployment", "crucible-executor")))
                    if c["name"] == name)

    def guard(self, docs):
        return self.container(docs, GUARD_CONTAINER)

    def proxy(self, docs):
        return self.container(docs, PROXY_CONTAINER)

    @staticmethod
    def mount(container, volume):
        return next(m for m in container["volumeMounts"] if m["name"] == volume)

    @staticmethod
    def env(container, name):
        return next(e for e in container["env"] if e["name"] == name)

    def test_each_mutation_is_caught(self):
        def sc(name, i=0):
            return lambda d: self.containers(d, name)[i]["securityContext"]

        cases = {
            "root": lambda d: sc("crucible-worker")(d).update(runAsUser=0),
            "other uid": lambda d: sc("crucible-worker")(d).update(runAsUser=1000),
            "runAsNonRoot": lambda d: sc("crucible-worker")(d).update(runAsNonRoot=False),
            "writable root": lambda d: self.proxy(d)["securityContext"].pop("readOnlyRootFilesystem"),
            "escalation": lambda d: sc("crucible-executor")(d).update(allowPrivilegeEscalation=True),
            "privileged": lambda d: sc("crucible-worker")(d).update(privileged=True),
            "cap add": lambda d: self.proxy(d)["securityContext"]["capabilities"].update(add=["NET_ADMIN"]),
            "cap drop": lambda d: sc("crucible-worker")(d)["capabilities"].update(drop=["NET_RAW"]),
            "seccomp": lambda d: sc("crucible-worker")(d).update(seccompProfile={"type": "Unconfined"}),
            "no limits": lambda d: self.containers(d, "crucible-worker")[0]["resources"].pop("limits"),
            "http probe": lambda d: self.containers(d, "crucible-worker")[0].update(
                livenessProbe={"tcpSocket": {"port": 8081}}),
            "no readiness": lambda d: self.containers(d, "crucible-executor")[0].pop("readinessProbe"),
            "hostNetwork": lambda d: pod_spec(find(d, "Deployment", "crucible-worker")).update(hostNetwork=True),
            "token": lambda d: find(d, "ServiceAccount", "crucible-worker").pop("automountServiceAccountToken"),
            "proxy on all addresses": lambda d: self.env(self.proxy(d), "CRUCIBLE_PROXY_BIND").update(
                value="0.0.0.0:2375"),
            "socket in executor": lambda d: self.containers(d, "crucible-executor")[0]["volumeMounts"].append(
                {"name": "engine-socket", "mountPath": "/var/run/docker.sock"}),
            "socket writable": lambda d: self.mount(self.proxy(d), "engine-socket").pop("readOnly"),
            "another hostPath": lambda d: pod_spec(find(d, "Deployment", "crucible-worker"))["volumes"][0].update(
                hostPath={"path": "/etc", "type": "Directory"}),
            "hostPort": lambda d: self.containers(d, "crucible-worker")[0]["ports"][0].update(hostPort=8081),
            "socket in worker": lambda d: (
                pod_spec(find(d, "Deployment", "crucible-worker"))["volumes"].append(
                    {"name": "engine-socket", "hostPath": {"path": "/var/run/docker.sock", "type": "Socket"}}),
                self.containers(d, "crucible-worker")[0]["volumeMounts"].append(
                    {"name": "engine-socket", "mountPath": "/run/crucible-engine/engine.sock",
                     "readOnly": True})),
            "no guard": lambda d: pod_spec(find(d, "Deployment", "crucible-executor"))["initContainers"].pop(0),
            "guard on all addresses": lambda d: self.guard(d)["args"].__setitem__(
                0, "--listen=0.0.0.0:2376"),
            "guard writable root": lambda d: self.guard(d)["securityContext"].pop("readOnlyRootFilesystem"),
            "guard as root": lambda d: self.guard(d)["securityContext"].update(runAsUser=0),
            "guard cap add": lambda d: self.guard(d)["securityContext"]["capabilities"].update(add=["SYS_ADMIN"]),
            "guard no limits": lambda d: self.guard(d)["resources"].pop("limits"),
            "guard socket writable": lambda d: self.mount(self.guard(d), "engine-socket").pop("readOnly"),
            "guard on another socket": lambda d: self.guard(d)["args"].__setitem__(
                1, "--engine_socket=/tmp/engine.sock"),
            "proxy bypasses the guard": lambda d: self.env(self.proxy(d), "CRUCIBLE_GUARD_ADDR").update(
                value="127.0.0.1:2375"),
            "proxy sends creates off the pod": lambda d: (
                self.env(self.proxy(d), "CRUCIBLE_GUARD_ADDR").update(value="guard.example:2376"),
                self.guard(d)["args"].__setitem__(0, "--listen=guard.example:2376")),
            "guard without a policy": lambda d: self.guard(d)["args"].remove(
                "--policy_file=/etc/crucible/policy/policy.json"),
            "guard reads another policy": lambda d: (
                d.append({"kind": "ConfigMap", "metadata": {"name": "other-policy"},
                          "data": {"policy.json": "{}"}}),
                pod_spec(find(d, "Deployment", "crucible-executor"))["volumes"].append(
                    {"name": "other-policy", "configMap": {"name": "other-policy"}}),
                self.mount(self.guard(d), "policy").update(name="other-policy")),
            "policy writable": lambda d: self.mount(self.guard(d), "policy").pop("readOnly"),
            "executor without a policy": lambda d: self.containers(d, "crucible-executor")[0]["args"].remove(
                "--policy_file=/etc/crucible/policy/policy.json"),
            "guard pinned to another executor": lambda d: self.guard(d)["args"].__setitem__(
                3, "--executor_id=someone-else"),
            "a Role": lambda d: d.append({"kind": "Role", "metadata": {"name": "crucible"}}),
            "a ClusterRoleBinding": lambda d: d.append(
                {"kind": "ClusterRoleBinding", "metadata": {"name": "crucible"}}),
        }
        for what, mutate in cases.items():
            with self.subTest(what):
                self.assertNotEqual(self.broken(mutate), [], what)


if __name__ == "__main__":
    unittest.main(verbosity=2)
