#!/usr/bin/env python3
"""Renders every overlay in deploy/k8s/overlays with `kubectl kustomize`
(offline) and audits what it renders: every container non-root with uid
10001, read-only root filesystem, no privilege escalation, all capabilities
dropped, RuntimeDefault seccomp, requests and limits, native gRPC probes on
Crucible's processes; no hostPath but the docker-proxy's engine socket; no
host namespaces, no service account tokens; the objects the design calls for
(StatefulSet, HPA, headless Service, PDBs, default-deny NetworkPolicy) and the
proxy ConfigMap identical to deploy/docker-proxy/haproxy.cfg.

Usage: k8s_manifests_test.py REPO_ROOT   (needs kubectl and python3-yaml)
"""

import copy
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
            # network: loopback only, its executor is the one client.
            bind = next((e.get("value", "") for e in c.get("env") or []
                         if e["name"] == "CRUCIBLE_PROXY_BIND"), "")
            if not bind.startswith("127.0.0.1:"):
                bad.append(f"{cname}: CRUCIBLE_PROXY_BIND {bind!r} is not loopback")
        else:
            ports = {p.get("containerPort") for p in c.get("ports") or []}
            for probe in ("livenessProbe", "readinessProbe"):
                grpc = (c.get(probe) or {}).get("grpc")
                if not grpc:
                    bad.append(f"{cname}: {probe} is not a native gRPC probe")
                elif grpc.get("port") not in ports:
                    bad.append(f"{cname}: {probe} port {grpc.get('port')} is not a container port")

    # hostPath: only the engine socket, only in the proxy, read-only.
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
            if cn != PROXY_CONTAINER:
                bad.append(f"{name}/{cn}: mounts hostPath {v['hostPath'].get('path')}")
            elif m.get("readOnly") is not True:
                bad.append(f"{name}/{cn}: engine socket is not mounted read-only")
    return bad


def audit(docs):
    """Returns every violation in one rendered overlay."""
    bad = []
    for d in docs:
        if d["kind"] in WORKLOADS:
            bad += audit_pod(f"{d['kind']}/{d['metadata']['name']}", pod_spec(d))
        if d["kind"] == "ServiceAccount" and d.get("automountServiceAccountToken") is not False:
            bad.append(f"ServiceAccount/{d['metadata']['name']}: token automounted")
    return bad


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
            self.assertEqual([c["name"] for c in ex["containers"]],
                             ["executor", PROXY_CONTAINER])
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

    def test_each_mutation_is_caught(self):
        def sc(name, i=0):
            return lambda d: self.containers(d, name)[i]["securityContext"]

        cases = {
            "root": lambda d: sc("crucible-worker")(d).update(runAsUser=0),
            "other uid": lambda d: sc("crucible-worker")(d).update(runAsUser=1000),
            "runAsNonRoot": lambda d: sc("crucible-worker")(d).update(runAsNonRoot=False),
            "writable root": lambda d: sc("crucible-executor", 1)(d).pop("readOnlyRootFilesystem"),
            "escalation": lambda d: sc("crucible-executor")(d).update(allowPrivilegeEscalation=True),
            "privileged": lambda d: sc("crucible-worker")(d).update(privileged=True),
            "cap add": lambda d: sc("crucible-executor", 1)(d)["capabilities"].update(add=["NET_ADMIN"]),
            "cap drop": lambda d: sc("crucible-worker")(d)["capabilities"].update(drop=["NET_RAW"]),
            "seccomp": lambda d: sc("crucible-worker")(d).update(seccompProfile={"type": "Unconfined"}),
            "no limits": lambda d: self.containers(d, "crucible-worker")[0]["resources"].pop("limits"),
            "http probe": lambda d: self.containers(d, "crucible-worker")[0].update(
                livenessProbe={"tcpSocket": {"port": 8081}}),
            "no readiness": lambda d: self.containers(d, "crucible-executor")[0].pop("readinessProbe"),
            "hostNetwork": lambda d: pod_spec(find(d, "Deployment", "crucible-worker")).update(hostNetwork=True),
            "token": lambda d: find(d, "ServiceAccount", "crucible-worker").pop("automountServiceAccountToken"),
            "proxy on all addresses": lambda d: self.containers(d, "crucible-executor")[1]["env"][0].update(
                value="0.0.0.0:2375"),
            "socket in executor": lambda d: self.containers(d, "crucible-executor")[0]["volumeMounts"].append(
                {"name": "engine-socket", "mountPath": "/var/run/docker.sock"}),
            "socket writable": lambda d: self.containers(d, "crucible-executor")[1]["volumeMounts"][1].pop("readOnly"),
            "another hostPath": lambda d: pod_spec(find(d, "Deployment", "crucible-worker"))["volumes"][0].update(
                hostPath={"path": "/etc", "type": "Directory"}),
            "hostPort": lambda d: self.containers(d, "crucible-worker")[0]["ports"][0].update(hostPort=8081),
        }
        for what, mutate in cases.items():
            with self.subTest(what):
                self.assertNotEqual(self.broken(mutate), [], what)


if __name__ == "__main__":
    unittest.main(verbosity=2)
