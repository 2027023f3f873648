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

How the objects fit together (issue 24): every Service selects a workload's
pods on ports they declare; the NetworkPolicies, evaluated as the API
defines them over Crucible's pods, clients in this and in other namespaces,
unlabelled pods, kube-dns and the outside, admit exactly the flows the
README names (clients -> server, workers -> server, workers -> executors,
everyone here -> DNS), each side (egress, ingress) on its own; probes point
at declared ports, liveness (health service "liveness") differs from
readiness (""); no HPA target sets replicas; every PDB lets a pod go at the
HPA's minimum or the replica count; the worker finds executors by DNS
through their headless Service; the proxy and the guard are native sidecars
and the executor's grace period covers its stop; every image names a
registry. AuditCatchesViolations breaks each rule once and expects a failure.

Metrics (issue 20): every process's port named metrics with the scrape
annotations, the executor pod's docker-proxy exporter on the port named
proxy-metrics, NetworkPolicy crucible-metrics admitting labelled scrapers
to those ports alone; the monitoring overlay is production plus a
PodMonitor over both ports (audit_pod_monitor).

The ha overlay (several servers on one PostgreSQL, issue 19) is audited
further (audit_ha): at least two server replicas, never two on one node
(required anti-affinity on kubernetes.io/hostname), a PDB over the server
pods that lets the never-ready standbys go, readiness by gRPC health on the
plaintext health port (so the Service routes to the leader alone) and
startup and liveness on "liveness" (a standby is "" NOT_SERVING), rollouts
that do not wait for standbys to become ready, the store's URI read with
--store_file from a read-only Secret mount and no postgres:// credentials
anywhere in what is rendered (Secret data decoded), no SQLite volume or
PVC, and egress to the database on 5432 for the server alone.
HaAuditCatchesViolations breaks each of those once.

Usage: k8s_manifests_test.py REPO_ROOT   (needs kubectl and python3-yaml)
"""

import base64
import copy
import json
import os
import re
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
    if proxy.get("image", "").replace("/docker-proxy", "/docker-guard") != guard.get("image"):
        bad.append(f"{EXECUTOR_POD}: the guard's image {guard.get('image')} is not the "
                   f"docker-guard image beside the proxy's {proxy.get('image')}")
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


# --- Static checks of how the objects fit together (issue 24, point 3) ---

LIVENESS_SERVICE = "liveness"
PROBES = ("startupProbe", "livenessProbe", "readinessProbe")
NAMESPACE = "crucible"
DNS_PORT = 53
# The executor's stop: --cancel_grace, then kill and remove of its task
# containers and server.Shutdown(20 s) for its calls (executor/main.cc);
# the sidecars stop after it within the same grace period.
EXECUTOR_SHUTDOWN_SECONDS = 20
EXECUTOR_STOP_MARGIN_SECONDS = 10


def selector_matches(selector, labels):
    """A LabelSelector (matchLabels and matchExpressions) against labels.
    An empty selector matches everything."""
    selector = selector or {}
    labels = labels or {}
    for k, v in (selector.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for e in selector.get("matchExpressions") or []:
        key, op, values = e["key"], e["operator"], e.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and key in labels and labels[key] in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def workloads(docs):
    return [d for d in docs if d["kind"] in WORKLOADS]


def pod_labels(workload):
    if workload["kind"] == "Pod":
        return workload["metadata"].get("labels") or {}
    if workload["kind"] == "CronJob":
        return workload["spec"]["jobTemplate"]["spec"]["template"]["metadata"].get("labels") or {}
    return workload["spec"]["template"]["metadata"].get("labels") or {}


def namespace_of(obj):
    return obj["metadata"].get("namespace", "default")


def container_ports(container):
    """{name or number: (number, protocol)} of a container's declared ports."""
    out = {}
    for p in container.get("ports") or []:
        v = (p["containerPort"], p.get("protocol", "TCP"))
        out[p["containerPort"]] = v
        if "name" in p:
            out[p["name"]] = v
    return out


def probe_handler(probe):
    """The part of a probe that says what is checked (not how often)."""
    return {k: v for k, v in (probe or {}).items()
            if k in ("grpc", "httpGet", "tcpSocket", "exec")}


def audit_probes(name, spec):
    """Every probe on a declared port of its own container; liveness never
    the same check as readiness; Crucible's own processes (native gRPC
    health) with liveness on the "liveness" service and readiness on ""."""
    bad = []
    for c in all_containers(spec):
        cname = f"{name}/{c['name']}"
        ports = container_ports(c)
        for probe in PROBES:
            h = probe_handler(c.get(probe))
            for kind in ("grpc", "httpGet", "tcpSocket"):
                if kind in h and h[kind].get("port") not in ports:
                    bad.append(f"{cname}: {probe} {kind} port {h[kind].get('port')!r} "
                               "is not a declared container port")
        live, ready = c.get("livenessProbe"), c.get("readinessProbe")
        if live and ready:
            lh, rh = probe_handler(live), probe_handler(ready)
            if lh == rh:
                bad.append(f"{cname}: the liveness probe is the readiness probe ({lh})")
        if c["name"] in ENGINE_CONTAINERS:
            continue
        lg, rg = probe_handler(live).get("grpc"), probe_handler(ready).get("grpc")
        if lg is not None and lg.get("service") != LIVENESS_SERVICE:
            bad.append(f"{cname}: liveness checks health service {lg.get('service')!r}, "
                       f"not {LIVENESS_SERVICE!r}")
        if rg is not None and rg.get("service", "") != "":
            bad.append(f"{cname}: readiness checks health service {rg.get('service')!r}, not \"\"")
    return bad


def audit_services(docs):
    """Every Service selects the pods of a workload in its namespace, and
    each of its ports targets a port those pods declare."""
    bad = []
    for svc in (d for d in docs if d["kind"] == "Service"):
        name = f"Service/{svc['metadata']['name']}"
        sel = svc["spec"].get("selector")
        if not sel:
            bad.append(f"{name}: no selector")
            continue
        matched = [w for w in workloads(docs) if namespace_of(w) == namespace_of(svc)
                   and selector_matches({"matchLabels": sel}, pod_labels(w))]
        if not matched:
            bad.append(f"{name}: selector {sel} matches no workload's pods")
            continue
        for w in matched:
            ports = {}
            for c in pod_spec(w).get("containers") or []:
                ports.update(container_ports(c))
            for p in svc["spec"].get("ports") or []:
                target = p.get("targetPort", p["port"])
                if target not in ports:
                    bad.append(f"{name}: port {p['port']} targets {target!r}, which "
                               f"{w['kind']}/{w['metadata']['name']} does not declare")
    return bad


def replicas_of(docs, workload):
    """The pod count a PDB must allow for: the HPA's minimum if one scales
    the workload, else its replicas (1 when unset)."""
    for h in docs:
        if h["kind"] == "HorizontalPodAutoscaler":
            ref = h["spec"]["scaleTargetRef"]
            if (ref["kind"], ref["name"]) == (workload["kind"], workload["metadata"]["name"]):
                return h["spec"].get("minReplicas", 1)
    return workload["spec"].get("replicas", 1)


def pdb_count(value, replicas):
    if isinstance(value, str) and value.endswith("%"):
        return -(-int(value[:-1]) * replicas // 100)  # rounded up, as the API does
    return int(value)


def audit_scaling(docs):
    """No HPA target also sets replicas (each apply would reset the count);
    every PDB selects a workload and lets at least one of its pods go."""
    bad = []
    for h in (d for d in docs if d["kind"] == "HorizontalPodAutoscaler"):
        ref = h["spec"]["scaleTargetRef"]
        target = next((d for d in docs if d["kind"] == ref["kind"]
                       and d["metadata"]["name"] == ref["name"]), None)
        if target is None:
            bad.append(f"HorizontalPodAutoscaler/{h['metadata']['name']}: no {ref['kind']}/{ref['name']}")
        elif "replicas" in target["spec"]:
            bad.append(f"{ref['kind']}/{ref['name']}: sets replicas "
                       f"({target['spec']['replicas']}) but HorizontalPodAutoscaler/"
                       f"{h['metadata']['name']} manages its count")
    for pdb in (d for d in docs if d["kind"] == "PodDisruptionBudget"):
        name = f"PodDisruptionBudget/{pdb['metadata']['name']}"
        matched = [w for w in workloads(docs) if namespace_of(w) == namespace_of(pdb)
                   and selector_matches(pdb["spec"].get("selector"), pod_labels(w))]
        if not matched:
            bad.append(f"{name}: selects no workload")
            continue
        replicas = sum(replicas_of(docs, w) for w in matched)
        spec = pdb["spec"]
        if "maxUnavailable" in spec:
            allowed = pdb_count(spec["maxUnavailable"], replicas)
        elif "minAvailable" in spec:
            allowed = replicas - pdb_count(spec["minAvailable"], replicas)
        else:
            allowed = replicas  # an empty budget allows everything
        if allowed < 1:
            bad.append(f"{name}: allows {allowed} disruptions of {replicas} pods "
                       "(a node drain would block)")
    return bad


def audit_discovery(docs):
    """The worker finds executors by DNS: --executors_dns names a headless
    Service that selects the executor pods, on the executor's gRPC port."""
    worker = next((d for d in docs if d["kind"] == "Deployment"
                   and d["metadata"]["name"] == "crucible-worker"), None)
    executor = next((d for d in docs if f"{d['kind']}/{d['metadata']['name']}" == EXECUTOR_POD), None)
    if worker is None or executor is None:
        return ["the worker or the executor is not rendered"]
    w = pod_spec(worker)["containers"][0]
    bad = []
    if flag_value(w, "executors") is not None or flag_value(w, "executors_file") is not None:
        bad.append("crucible-worker: --executors or --executors_file set beside DNS discovery")
    dns = flag_value(w, "executors_dns")
    if not dns or ":" not in dns:
        return bad + [f"crucible-worker: --executors_dns is {dns!r}, not SERVICE:PORT"]
    host, port = dns.rsplit(":", 1)
    svc_name = host.split(".")[0]
    svc = next((d for d in docs if d["kind"] == "Service" and d["metadata"]["name"] == svc_name), None)
    if svc is None:
        return bad + [f"crucible-worker: --executors_dns names no Service ({svc_name})"]
    if svc["spec"].get("clusterIP") != "None":
        bad.append(f"Service/{svc_name}: not headless (DNS would give one virtual IP)")
    if not selector_matches({"matchLabels": svc["spec"].get("selector") or {"-": "-"}},
                            pod_labels(executor)):
        bad.append(f"Service/{svc_name}: does not select the executor pods")
    ex_ports = container_ports(pod_spec(executor)["containers"][0])
    if int(port) not in [p["port"] for p in svc["spec"].get("ports") or []] or \
            ex_ports.get(int(port), (None,))[0] != int(port):
        bad.append(f"crucible-worker: --executors_dns port {port} is not the executor's gRPC port")
    return bad


def duration_seconds(text):
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    for u in ("ms", "s", "m", "h"):
        if text.endswith(u) and text[:-len(u)].replace(".", "", 1).isdigit():
            return float(text[:-len(u)]) * units[u]
    raise ValueError(text)


def audit_executor_stop(docs):
    """A pod stop must not orphan task containers: the proxy and the guard
    are native sidecars (they outlive the executor), and the grace period
    covers --cancel_grace, the kill and removal and the call shutdown."""
    d = next((d for d in docs if f"{d['kind']}/{d['metadata']['name']}" == EXECUTOR_POD), None)
    if d is None:
        return [f"{EXECUTOR_POD} not rendered"]
    spec = pod_spec(d)
    bad = []
    sidecars = {c["name"]: c for c in spec.get("initContainers") or []}
    for n in (GUARD_CONTAINER, PROXY_CONTAINER):
        if sidecars.get(n, {}).get("restartPolicy") != "Always":
            bad.append(f"{EXECUTOR_POD}/{n}: not a native sidecar (an init container with "
                       "restartPolicy: Always): it would stop with the executor")
    executor = next((c for c in spec.get("containers") or [] if c["name"] == "executor"), None)
    grace = duration_seconds(flag_value(executor or {}, "cancel_grace") or "3s")
    need = grace + EXECUTOR_SHUTDOWN_SECONDS + EXECUTOR_STOP_MARGIN_SECONDS
    have = spec.get("terminationGracePeriodSeconds", 30)
    if have < need:
        bad.append(f"{EXECUTOR_POD}: terminationGracePeriodSeconds {have} < {need:g} "
                   "(--cancel_grace + call shutdown + removal)")
    return bad


def audit_images(docs):
    """Every image names its registry (a bare crucible/x is docker.io's)."""
    bad = []
    for w in workloads(docs):
        for c in all_containers(pod_spec(w)):
            first = c["image"].split("/")[0]
            if "/" not in c["image"] or not ("." in first or ":" in first or first == "localhost"):
                bad.append(f"{w['metadata']['name']}/{c['name']}: image {c['image']} names no registry")
    return bad


# NetworkPolicy evaluation, as the API defines it: a pod selected by no
# policy of a direction is open in it; otherwise a connection passes if a
# rule of a policy selecting the pod admits the peer and the port, and it
# must pass both the source's egress and the destination's ingress.

def policies_for(docs, pod, direction):
    out = []
    for p in (d for d in docs if d["kind"] == "NetworkPolicy"):
        types = p["spec"].get("policyTypes") or (
            ["Ingress"] + (["Egress"] if "egress" in p["spec"] else []))
        if direction in types and namespace_of(p) == pod["ns"] and \
                selector_matches(p["spec"].get("podSelector"), pod["labels"]):
            out.append(p)
    return out


def peer_matches(peer, policy_ns, pod):
    if "ipBlock" in peer:
        return True  # counted as open to everyone: no rule here may need it
    ns_sel, pod_sel = peer.get("namespaceSelector"), peer.get("podSelector")
    if ns_sel is None:
        in_ns = pod["ns"] == policy_ns
    else:
        in_ns = selector_matches(ns_sel, pod["ns_labels"])
    return in_ns and (pod_sel is None or selector_matches(pod_sel, pod["labels"]))


def port_matches(rule_ports, dest, port, protocol):
    if not rule_ports:
        return True
    for rp in rule_ports:
        if rp.get("protocol", "TCP") != protocol:
            continue
        p = rp.get("port")
        if p is None:
            return True
        if isinstance(p, str):
            p = dest["named_ports"].get(p)
        if p is not None and p <= port <= rp.get("endPort", p):
            return True
    return False


def admits(docs, direction, src, dest, port, protocol="TCP"):
    """Whether the policies of one side (the source's egress or the
    destination's ingress) let the connection through."""
    selected, peer = (src, dest) if direction == "Egress" else (dest, src)
    pols = policies_for(docs, selected, direction)
    if not pols:
        return True
    key, peers_key = ("egress", "to") if direction == "Egress" else ("ingress", "from")
    for p in pols:
        for rule in p["spec"].get(key) or []:
            peers = rule.get(peers_key)
            if (not peers or any(peer_matches(x, namespace_of(p), peer) for x in peers)) \
                    and port_matches(rule.get("ports"), dest, port, protocol):
                return True
    return False


SCRAPER = {"crucible.io/metrics-scraper": "true"}
METRICS_PORT = 9090
# The docker-proxy's HAProxy exporter, in the executor pod beside the
# executor's own port (deploy/docker-proxy/haproxy.cfg, frontend metrics).
PROXY_METRICS_PORT = 9091


def audit_metrics(docs):
    """Every Crucible process serves Prometheus metrics on the port named
    metrics (--metrics_listen=0.0.0.0:9090), and its pod carries the scrape
    annotations (docs/operator-guide.md, "Metrics")."""
    bad = []
    want_ann = {"prometheus.io/scrape": "true", "prometheus.io/port": str(METRICS_PORT),
                "prometheus.io/path": "/metrics"}
    for w in workloads(docs):
        comp = pod_labels(w).get("app.kubernetes.io/component")
        if comp not in CRUCIBLE_PROCESSES:
            continue
        ann = (w["spec"]["template"].get("metadata") or {}).get("annotations") or {}
        for k, v in want_ann.items():
            if ann.get(k) != v:
                bad.append(f"{comp}: pod annotation {k}={ann.get(k)!r}, want {v!r}")
        c = next((c for c in pod_spec(w)["containers"] if c["name"] == comp), None)
        if c is None:
            bad.append(f"{comp}: no container named {comp}")
            continue
        if flag_value(c, "metrics_listen") != f"0.0.0.0:{METRICS_PORT}":
            bad.append(f"{comp}: --metrics_listen={flag_value(c, 'metrics_listen')}, "
                       f"want 0.0.0.0:{METRICS_PORT}")
        ports = {p.get("name"): p.get("containerPort") for p in c.get("ports") or []}
        if ports.get("metrics") != METRICS_PORT:
            bad.append(f"{comp}: port named metrics is {ports.get('metrics')}, want {METRICS_PORT}")
        if comp == "executor":
            bad += audit_proxy_metrics(pod_spec(w))
    return bad


def audit_proxy_metrics(spec):
    """The executor pod's docker-proxy serves HAProxy's exporter on the port
    named proxy-metrics, on every address (the scraper is another pod),
    while its engine frontend stays on loopback."""
    bad = []
    proxy = next((c for c in all_containers(spec) if c["name"] == "docker-proxy"), None)
    if proxy is None:
        return ["executor: no docker-proxy container"]
    bind = env_value(proxy, "CRUCIBLE_PROXY_METRICS_BIND")
    if bind != f"0.0.0.0:{PROXY_METRICS_PORT}":
        bad.append(f"docker-proxy: CRUCIBLE_PROXY_METRICS_BIND={bind!r}, "
                   f"want '0.0.0.0:{PROXY_METRICS_PORT}'")
    ports = {p.get("name"): p.get("containerPort") for p in proxy.get("ports") or []}
    if ports.get("proxy-metrics") != PROXY_METRICS_PORT:
        bad.append(f"docker-proxy: port named proxy-metrics is {ports.get('proxy-metrics')}, "
                   f"want {PROXY_METRICS_PORT}")
    return bad


MONITORING_OVERLAY = "monitoring"


def audit_pod_monitor(docs):
    """One PodMonitor (monitoring.coreos.com/v1) in the namespace selects
    every Crucible workload's pods and scrapes GET /metrics on the ports
    named metrics (each process) and proxy-metrics (the docker-proxy)."""
    monitors = [d for d in docs if d["kind"] == "PodMonitor"]
    if len(monitors) != 1:
        return [f"{len(monitors)} PodMonitors, want 1"]
    m = monitors[0]
    bad = []
    if m.get("apiVersion") != "monitoring.coreos.com/v1":
        bad.append(f"PodMonitor apiVersion {m.get('apiVersion')}")
    if namespace_of(m) != NAMESPACE:
        bad.append(f"PodMonitor in namespace {namespace_of(m)}, want {NAMESPACE}")
    selector = (m["spec"].get("selector") or {}).get("matchLabels") or {}
    endpoints = {e.get("port"): e for e in m["spec"].get("podMetricsEndpoints") or []}
    for port in ("metrics", "proxy-metrics"):
        if port not in endpoints:
            bad.append(f"PodMonitor scrapes no port named {port}")
        elif endpoints[port].get("path", "/metrics") != "/metrics":
            bad.append(f"PodMonitor: port {port} on path {endpoints[port].get('path')}")
    named = set()
    for w in workloads(docs):
        labels = pod_labels(w)
        comp = labels.get("app.kubernetes.io/component")
        if comp not in CRUCIBLE_PROCESSES:
            continue
        if any(labels.get(k) != v for k, v in selector.items()):
            bad.append(f"PodMonitor does not select the {comp} pods")
        for c in all_containers(pod_spec(w)):
            named |= {p.get("name") for p in c.get("ports") or []}
    for port in endpoints:
        if port not in named:
            bad.append(f"PodMonitor scrapes port {port}, which no pod declares")
    return bad


def model_pod(name, ns, labels, ns_labels=None, ports=None):
    ns_labels = dict(ns_labels or {})
    ns_labels.setdefault("kubernetes.io/metadata.name", ns)
    named = {}
    tcp = set()
    for c in ports or []:
        for k, (num, proto) in container_ports(c).items():
            if isinstance(k, str):
                named[k] = num
            tcp.add((num, proto))
    return {"name": name, "ns": ns, "labels": labels or {}, "ns_labels": ns_labels,
            "named_ports": named, "ports": tcp}


def audit_network(docs):
    """Every flow between Crucible's pods, clients, DNS and the rest of the
    cluster: exactly the flows the README names pass."""
    ns_obj = next((d for d in docs if d["kind"] == "Namespace"), None)
    ns_labels = (ns_obj or {}).get("metadata", {}).get("labels") or {}
    pods = {}
    for w in workloads(docs):
        comp = pod_labels(w).get("app.kubernetes.io/component", w["metadata"]["name"])
        pods[comp] = model_pod(comp, namespace_of(w), pod_labels(w), ns_labels,
                               all_containers(pod_spec(w)))
    client = {"crucible.io/client": "true"}
    others = [
        model_pod("client (this namespace)", NAMESPACE, client, ns_labels),
        model_pod("client (client namespace)", "team-a", client, client),
        model_pod("unlabelled pod (client namespace)", "team-a", {}, client),
        model_pod("client-labelled pod (unlabelled namespace)", "team-b", client),
        model_pod("other pod (this namespace)", NAMESPACE, {"app": "other"}, ns_labels),
        model_pod("other pod", "team-b", {"app": "other"}),
        model_pod("kube-dns", "kube-system", {"k8s-app": "kube-dns"}),
        model_pod("internet", "(outside)", {}),
        model_pod("metrics scraper", "monitoring", SCRAPER, SCRAPER),
        model_pod("scraper-labelled pod (unlabelled namespace)", "team-b", SCRAPER),
    ]
    for o in others:
        pods[o["name"]] = o
    for p in ("server", "worker", "executor"):
        if p not in pods:
            return [f"no {p} workload rendered"]
    want = {
        ("client (this namespace)", "server", pods["server"]["named_ports"].get("grpc"), "TCP"),
        ("client (client namespace)", "server", pods["server"]["named_ports"].get("grpc"), "TCP"),
        ("worker", "server", pods["server"]["named_ports"].get("grpc"), "TCP"),
        ("worker", "executor", pods["executor"]["named_ports"].get("grpc"), "TCP"),
    }
    # Prometheus scrapes every Crucible process's metrics port, and the
    # docker-proxy's exporter in the executor pod.
    for p in ("server", "worker", "executor"):
        want.add(("metrics scraper", p, pods[p]["named_ports"].get("metrics"), "TCP"))
    want.add(("metrics scraper", "executor",
              pods["executor"]["named_ports"].get("proxy-metrics"), "TCP"))
    # DNS from every pod of this namespace.
    for p in pods.values():
        if p["ns"] == NAMESPACE:
            for proto in ("UDP", "TCP"):
                want.add((p["name"], "kube-dns", DNS_PORT, proto))
    # Every port any pod declares, DNS's, and a few that nothing needs.
    ports = set().union(*(p["ports"] for p in pods.values())) | {
        (DNS_PORT, "UDP"), (DNS_PORT, "TCP"), (443, "TCP"), (2375, "TCP"), (2376, "TCP")}
    # Each side is checked on its own: a documented flow passes both the
    # source's egress and the destination's ingress; any other flow is
    # refused by every side these policies govern (egress of this
    # namespace's pods, ingress to them), so no policy opens more than it
    # needs even where the other side would still refuse. Pods of other
    # namespaces are not under these policies: their egress is their
    # namespace's business.
    bad = []
    for src in pods.values():
        for dest in pods.values():
            if src is dest or NAMESPACE not in (src["ns"], dest["ns"]):
                continue
            for port, proto in sorted(ports):
                flow = f"{src['name']} -> {dest['name']} {proto} {port}"
                key = (src["name"], dest["name"], port, proto)
                eg = admits(docs, "Egress", src, dest, port, proto)
                ing = admits(docs, "Ingress", src, dest, port, proto)
                if key in want:
                    if not (eg and ing):
                        bad.append(f"NetworkPolicy: {flow} is blocked "
                                   f"({'ingress' if eg else 'egress'}), but the README says it flows")
                    continue
                if src["ns"] == NAMESPACE and eg:
                    bad.append(f"NetworkPolicy: egress admits {flow}, which no documented flow needs")
                if dest["ns"] == NAMESPACE and ing:
                    bad.append(f"NetworkPolicy: ingress admits {flow}, which no documented flow needs")
    return bad


CRUCIBLE_PROCESSES = {"server": "crucible-server-tls", "worker": "crucible-worker-tls",
                      "executor": "crucible-executor-tls"}


def audit_tls(docs):
    """Every Crucible process speaks mutual TLS (docs/operator-guide.md,
    "Transport security"): --tls_cert, --tls_key and --tls_ca all in a
    read-only mount of its own Secret, never --insecure; the probes of the
    server and the executor reach a plaintext health-only port
    (--health_listen), never the TLS one."""
    bad = []
    for d in docs:
        if d["kind"] not in WORKLOADS:
            continue
        spec = pod_spec(d)
        for c in spec.get("containers") or []:
            secret = CRUCIBLE_PROCESSES.get(c["name"])
            if secret is None:
                continue
            cname = f"{d['metadata']['name']}/{c['name']}"
            args = (c.get("command") or []) + (c.get("args") or [])
            if any(a == "--insecure" or a.startswith("--insecure") for a in args):
                bad.append(f"{cname}: plaintext (--insecure)")
            volume = next((v for v in spec.get("volumes") or []
                           if (v.get("secret") or {}).get("secretName") == secret), None)
            mount = volume and next((m for m in c.get("volumeMounts") or []
                                     if m["name"] == volume["name"]), None)
            if not mount:
                bad.append(f"{cname}: Secret {secret} is not mounted")
                continue
            if mount.get("readOnly") is not True:
                bad.append(f"{cname}: Secret {secret} is mounted writable")
            for flag, key in (("tls_cert", "tls.crt"), ("tls_key", "tls.key"), ("tls_ca", "ca.crt")):
                want = f"{mount['mountPath'].rstrip('/')}/{key}"
                if flag_value(c, flag) != want:
                    bad.append(f"{cname}: --{flag} is {flag_value(c, flag)!r}, not {want!r}")
            if c["name"] == "worker":
                continue
            health = flag_value(c, "health_listen")
            port = int(health.rsplit(":", 1)[1]) if health else None
            for probe in PROBES:
                grpc = (c.get(probe) or {}).get("grpc")
                if grpc and grpc.get("port") != port:
                    bad.append(f"{cname}: {probe} on port {grpc.get('port')}, not the "
                               f"plaintext health port of --health_listen ({health})")
    return bad


def audit(docs):
    """Returns every violation in one rendered overlay."""
    bad = []
    for d in docs:
        if d["kind"] in WORKLOADS:
            bad += audit_pod(f"{d['kind']}/{d['metadata']['name']}", pod_spec(d))
            bad += audit_probes(f"{d['kind']}/{d['metadata']['name']}", pod_spec(d))
        if d["kind"] == "ServiceAccount" and d.get("automountServiceAccountToken") is not False:
            bad.append(f"ServiceAccount/{d['metadata']['name']}: token automounted")
        if d["kind"] in RBAC_KINDS:
            bad.append(f"{d['kind']}/{d['metadata']['name']}: RBAC object (no Kubernetes API access)")
    return (bad + audit_executor_pod(docs) + audit_services(docs) + audit_scaling(docs) +
            audit_discovery(docs) + audit_executor_stop(docs) + audit_images(docs) +
            audit_network(docs) + audit_tls(docs) + audit_metrics(docs))


# --- The ha overlay: server replicas on one PostgreSQL store (issue 19) ---

HA_OVERLAY = "ha"
STORE_SECRET = "crucible-store"
STORE_PORT = 5432
# A libpq URI with a password (user:password@), or a password parameter.
CREDENTIALS = re.compile(r"postgres(?:ql)?://[^/@\s]*:[^/@\s]*@|[?&]password=", re.I)


def strings_in(obj):
    """Every string in a rendered object, Secret data base64-decoded."""
    if isinstance(obj, dict):
        for v in obj.values():
            yield from strings_in(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from strings_in(v)
    elif isinstance(obj, str):
        yield obj


def rendered_text(d):
    out = list(strings_in(d))
    if d["kind"] == "Secret":
        for v in (d.get("data") or {}).values():
            try:
                out.append(base64.b64decode(v).decode("utf-8", "replace"))
            except ValueError:
                out.append(v)
    return out


def server_workload(docs):
    return next((w for w in workloads(docs) if pod_labels(w).get(
        "app.kubernetes.io/component") == "server"), None)


def audit_ha(docs):
    """Returns every violation of the ha overlay's own rules."""
    w = server_workload(docs)
    if w is None:
        return ["no server workload rendered"]
    name = f"{w['kind']}/{w['metadata']['name']}"
    spec = pod_spec(w)
    labels = pod_labels(w)
    c = next((c for c in spec.get("containers") or [] if c["name"] == "server"), None)
    if c is None:
        return [f"{name}: no container server"]
    bad = []

    # Replicas, spread over nodes.
    if w["spec"].get("replicas", 1) < 2:
        bad.append(f"{name}: {w['spec'].get('replicas', 1)} replica(s), not >= 2")
    terms = (((spec.get("affinity") or {}).get("podAntiAffinity") or {})
             .get("requiredDuringSchedulingIgnoredDuringExecution") or [])
    if not any(t.get("topologyKey") == "kubernetes.io/hostname"
               and selector_matches(t.get("labelSelector") or {"matchLabels": {"-": "-"}}, labels)
               and not t.get("namespaceSelector") and not t.get("namespaces")
               for t in terms):
        bad.append(f"{name}: no required pod anti-affinity on kubernetes.io/hostname "
                   "against the server pods")

    # Only the leader is ever ready: the budget must let standbys go, and
    # rollouts must not wait for them to become ready.
    pdbs = [p for p in docs if p["kind"] == "PodDisruptionBudget"
            and namespace_of(p) == namespace_of(w)
            and selector_matches(p["spec"].get("selector"), labels)]
    if not pdbs:
        bad.append(f"{name}: no PodDisruptionBudget selects the server pods")
    for p in pdbs:
        if p["spec"].get("unhealthyPodEvictionPolicy") != "AlwaysAllow":
            bad.append(f"PodDisruptionBudget/{p['metadata']['name']}: unhealthyPodEvictionPolicy "
                       "is not AlwaysAllow (standbys are never ready: no drain could evict them)")
    if w["kind"] == "StatefulSet":
        if w["spec"].get("podManagementPolicy") != "Parallel":
            bad.append(f"{name}: podManagementPolicy is not Parallel (OrderedReady waits "
                       "for each standby to become ready)")
        if (w["spec"].get("updateStrategy") or {}).get("type") != "OnDelete":
            bad.append(f"{name}: updateStrategy is not OnDelete (a RollingUpdate waits for "
                       "each standby to become ready)")
    elif w["kind"] == "Deployment" and (w["spec"].get("strategy") or {}).get("type") != "Recreate":
        bad.append(f"{name}: a RollingUpdate waits for each standby to become ready")

    # Probes: readiness by gRPC health "" on the plaintext health port;
    # startup and liveness on "liveness".
    health = flag_value(c, "health_listen")
    health_port = int(health.rsplit(":", 1)[1]) if health else None
    ready = (c.get("readinessProbe") or {}).get("grpc")
    if not ready or ready.get("port") != health_port or ready.get("service", "") != "":
        bad.append(f"{name}: readiness is not gRPC health \"\" on the health port "
                   f"({health}): {c.get('readinessProbe')}")
    for probe in ("startupProbe", "livenessProbe"):
        g = (c.get(probe) or {}).get("grpc")
        if c.get(probe) and (not g or g.get("service") != LIVENESS_SERVICE):
            bad.append(f"{name}: {probe} does not check {LIVENESS_SERVICE!r} "
                       "(a standby is \"\" NOT_SERVING and would be restarted)")

    # The store: --store_file in a read-only mount of the Secret.
    if flag_value(c, "store") is not None:
        bad.append(f"{name}: --store on the command line (use --store_file)")
    if flag_value(c, "db") is not None:
        bad.append(f"{name}: --db (SQLite) beside the PostgreSQL store")
    path = flag_value(c, "store_file")
    if not path:
        bad.append(f"{name}: no --store_file")
    else:
        directory, key = os.path.split(path)
        mount = next((m for m in c.get("volumeMounts") or []
                      if m["mountPath"].rstrip("/") == directory and "subPath" not in m), None)
        vol = mount and next((v for v in spec.get("volumes") or [] if v["name"] == mount["name"]), None)
        secret = ((vol or {}).get("secret") or {}).get("secretName", "")
        if not mount:
            bad.append(f"{name}: --store_file {path} is not in a mounted volume")
        elif mount.get("readOnly") is not True:
            bad.append(f"{name}: the store's Secret is mounted writable")
        if mount and secret != STORE_SECRET and not secret.startswith(STORE_SECRET + "-"):
            bad.append(f"{name}: --store_file {path} is not from the Secret {STORE_SECRET}")
        rendered = next((d for d in docs if d["kind"] == "Secret"
                         and d["metadata"]["name"] == secret), None)
        if rendered is not None and key not in (rendered.get("data") or {}) and \
                key not in (rendered.get("stringData") or {}):
            bad.append(f"Secret/{secret}: no key {key!r} for --store_file")
        if rendered is None and secret != STORE_SECRET:
            bad.append(f"{name}: Secret {secret} is neither rendered nor {STORE_SECRET}")
    for e in c.get("env") or []:
        if e["name"] == "PGPASSWORD" and "value" in e:
            bad.append(f"{name}: PGPASSWORD given in the manifest")

    # No SQLite volume.
    if w["spec"].get("volumeClaimTemplates"):
        bad.append(f"{name}: volumeClaimTemplates (no SQLite volume with PostgreSQL)")
    if any("persistentVolumeClaim" in v for v in spec.get("volumes") or []):
        bad.append(f"{name}: mounts a PersistentVolumeClaim")
    bad += [f"PersistentVolumeClaim/{d['metadata']['name']}: rendered"
            for d in docs if d["kind"] == "PersistentVolumeClaim"]

    # No credentials in anything rendered.
    for d in docs:
        if any(CREDENTIALS.search(t) for t in rendered_text(d)):
            bad.append(f"{d['kind']}/{d['metadata']['name']}: a PostgreSQL password "
                       "in the rendered manifests")

    # Egress to the database: the server alone, on 5432 alone, to a named
    # destination (not everywhere).
    db = model_pod("postgresql", "(outside)", {})
    others = {"server": labels}
    for x in workloads(docs):
        comp = pod_labels(x).get("app.kubernetes.io/component", x["metadata"]["name"])
        others.setdefault(comp, pod_labels(x))
    others["client"] = {"crucible.io/client": "true"}
    for comp, lab in others.items():
        pod = model_pod(comp, namespace_of(w), lab)
        for port in (STORE_PORT, 443, 8080):
            ok = admits(docs, "Egress", pod, db, port)
            if (comp, port) == ("server", STORE_PORT):
                if not ok:
                    bad.append(f"NetworkPolicy: the server cannot reach PostgreSQL on {port}")
            elif ok:
                bad.append(f"NetworkPolicy: {comp} -> PostgreSQL (outside) TCP {port} admitted")
    server_pod = model_pod("server", namespace_of(w), labels)
    for p in policies_for(docs, server_pod, "Egress"):
        for rule in p["spec"].get("egress") or []:
            if not port_matches(rule.get("ports"), db, STORE_PORT, "TCP"):
                continue
            peers = rule.get("to") or []
            if not peers or any((x.get("ipBlock") or {}).get("cidr") in ("0.0.0.0/0", "::/0")
                                for x in peers):
                bad.append(f"NetworkPolicy/{p['metadata']['name']}: the server may reach "
                           f"port {STORE_PORT} anywhere")
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
        self.assertIn(HA_OVERLAY, self.rendered)

    def test_ha_overlay_follows_its_rules(self):
        docs = self.rendered[HA_OVERLAY]
        self.assertEqual(audit_ha(docs), [])
        sts = find(docs, "StatefulSet", "crucible-server")
        self.assertEqual(sts["spec"]["replicas"], 3)
        c = pod_spec(sts)["containers"][0]
        self.assertIn("--store_file=/etc/crucible/store/uri", c["args"])
        self.assertIn("--server_id=$(POD_NAME)", c["args"])
        self.assertEqual(find(docs, "PodDisruptionBudget", "crucible-server")["spec"]["maxUnavailable"], 1)
        # The other overlays keep their SQLite volume and fail these rules.
        for o in ("local", "production"):
            self.assertNotEqual(audit_ha(self.rendered[o]), [], o)

    def test_monitoring_overlay_scrapes_every_metrics_port(self):
        """The monitoring overlay is production plus a PodMonitor (Prometheus
        operator) whose endpoints are the ports named metrics and
        proxy-metrics of every Crucible pod it selects."""
        docs = self.rendered[MONITORING_OVERLAY]
        self.assertEqual(audit_pod_monitor(docs), [])
        production = self.rendered["production"]
        self.assertEqual(
            sorted((d["kind"], d["metadata"]["name"]) for d in docs if d["kind"] != "PodMonitor"),
            sorted((d["kind"], d["metadata"]["name"]) for d in production))
        # The others have none, and fail the audit.
        self.assertNotEqual(audit_pod_monitor(production), [])

        def monitor(d):
            return next(x for x in d if x["kind"] == "PodMonitor")["spec"]

        cases = {
            "no proxy endpoint": lambda d: monitor(d)["podMetricsEndpoints"].pop(1),
            "another path": lambda d: monitor(d)["podMetricsEndpoints"][0].update(path="/m"),
            "selects nothing": lambda d: monitor(d)["selector"]["matchLabels"].update(
                {"app.kubernetes.io/name": "other"}),
            "an undeclared port": lambda d: monitor(d)["podMetricsEndpoints"].append(
                {"port": "http"}),
            "another namespace": lambda d: next(x for x in d if x["kind"] == "PodMonitor")[
                "metadata"].update(namespace="monitoring"),
        }
        for what, mutate in cases.items():
            with self.subTest(what):
                broken = copy.deepcopy(docs)
                mutate(broken)
                self.assertNotEqual(audit_pod_monitor(broken), [], what)

    def test_ha_store_secret_is_a_placeholder(self):
        docs = self.rendered[HA_OVERLAY]
        secrets = [d for d in docs if d["kind"] == "Secret"]
        self.assertEqual([d["metadata"]["name"].rsplit("-", 1)[0] for d in secrets], [STORE_SECRET])
        uri = base64.b64decode(secrets[0]["data"]["uri"]).decode()
        self.assertRegex(uri, r"^postgresql://crucible@postgres\.example\.com:5432/")

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
            self.assertEqual(guard["image"],
                             proxy["image"].replace("/docker-proxy", "/docker-guard"), o)
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
            if o == HA_OVERLAY:
                continue  # test_ha_overlay_follows_its_rules
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

    def test_production_images_name_the_registry_placeholder(self):
        docs = self.rendered["production"]
        images = {c["image"] for d in docs if d["kind"] in WORKLOADS
                  for c in all_containers(pod_spec(d))}
        self.assertEqual(sorted(images), [f"registry.example.com/crucible/{n}:0.1.0"
                                          for n in ("docker-guard", "docker-proxy", "executor",
                                                    "server", "worker")])

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

    def executor(self, docs):
        return self.container(docs, "executor")

    def worker(self, docs):
        return self.containers(docs, "crucible-worker")[0]

    def server(self, docs):
        return pod_spec(find(docs, "StatefulSet", "crucible-server"))["containers"][0]

    @staticmethod
    def server_peers(docs):
        return find(docs, "NetworkPolicy", "crucible-server")["spec"]["ingress"][0]["from"]

    def make_plain(self, docs, name):
        """Moves a native sidecar to the pod's ordinary containers."""
        spec = pod_spec(find(docs, "Deployment", "crucible-executor"))
        c = self.container(docs, name)
        spec["initContainers"].remove(c)
        c.pop("restartPolicy")
        spec["containers"].append(c)

    @staticmethod
    def set_flag(container, flag, arg):
        """Replaces --flag=... in the container's args with arg."""
        args = container["args"]
        i = next(i for i, a in enumerate(args) if a.startswith(f"--{flag}="))
        args[i] = arg

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
            # Services, probes, scaling, discovery, stop, images.
            "service selects nothing": lambda d: find(d, "Service", "crucible-server")["spec"][
                "selector"].update({"app.kubernetes.io/component": "srv"}),
            "service on an undeclared port": lambda d: find(d, "Service", "crucible-executor")[
                "spec"]["ports"][0].update(targetPort="http"),
            "liveness is readiness": lambda d: self.executor(d).update(
                livenessProbe=copy.deepcopy(self.executor(d)["readinessProbe"])),
            "liveness on the readiness service": lambda d: self.worker(d)["livenessProbe"][
                "grpc"].pop("service"),
            "readiness on the liveness service": lambda d: self.server(d)["readinessProbe"][
                "grpc"].update(service="liveness"),
            "probe on an undeclared port": lambda d: self.worker(d)["readinessProbe"][
                "grpc"].update(port=9999),
            "sidecar probe on an undeclared port": lambda d: self.guard(d).update(
                readinessProbe={"tcpSocket": {"port": 2376}}),
            "HPA target with replicas": lambda d: find(d, "Deployment", "crucible-worker")[
                "spec"].update(replicas=2),
            "PDB blocks a drain": lambda d: (
                find(d, "PodDisruptionBudget", "crucible-worker")["spec"].pop("maxUnavailable"),
                find(d, "PodDisruptionBudget", "crucible-worker")["spec"].update(minAvailable=1)),
            "PDB of 0%": lambda d: find(d, "PodDisruptionBudget", "crucible-executor")[
                "spec"].update(maxUnavailable="0%"),
            "PDB selects nothing": lambda d: find(d, "PodDisruptionBudget", "crucible-executor")[
                "spec"]["selector"]["matchLabels"].update({"app.kubernetes.io/component": "x"}),
            "one executor address": lambda d: self.set_flag(
                self.worker(d), "executors_dns", "--executors=crucible-executor:8082"),
            "executors by a non-headless Service": lambda d: find(
                d, "Service", "crucible-executor")["spec"].pop("clusterIP"),
            "executors by another port": lambda d: self.set_flag(
                self.worker(d), "executors_dns", "--executors_dns=crucible-executor:8081"),
            "proxy a plain sidecar": lambda d: self.make_plain(d, PROXY_CONTAINER),
            "guard not restarted as a sidecar": lambda d: self.guard(d).pop("restartPolicy"),
            "grace shorter than the executor's stop": lambda d: pod_spec(
                find(d, "Deployment", "crucible-executor")).update(terminationGracePeriodSeconds=30),
            "grace shorter than a longer cancel_grace": lambda d: self.set_flag(
                self.executor(d), "cancel_grace", "--cancel_grace=1m"),
            "image without a registry": lambda d: self.executor(d).update(image="crucible/executor:1"),
            # Transport security.
            "plaintext server": lambda d: self.server(d)["args"].append("--insecure"),
            "worker without its CA": lambda d: self.set_flag(
                self.worker(d), "tls_ca", "--tls_ca=/etc/ssl/certs/ca-certificates.crt"),
            "executor certificate not mounted": lambda d: self.executor(d)["volumeMounts"].remove(
                self.mount(self.executor(d), "tls")),
            "certificates writable": lambda d: self.mount(self.server(d), "tls").pop("readOnly"),
            "probe on the TLS port": lambda d: self.executor(d)["readinessProbe"]["grpc"].update(
                port=8082),
            # NetworkPolicies.
            "clients of this namespace only": lambda d: self.server_peers(d).pop(2),
            "clients from any namespace": lambda d: self.server_peers(d)[2].update(namespaceSelector={}),
            "any pod of a client namespace": lambda d: self.server_peers(d)[2].pop("podSelector"),
            "no client egress": lambda d: d.remove(find(d, "NetworkPolicy", "crucible-client")),
            "no default deny": lambda d: d.remove(find(d, "NetworkPolicy", "crucible-default-deny")),
            "executor open to all": lambda d: find(d, "NetworkPolicy", "crucible-executor")[
                "spec"]["ingress"][0].pop("from"),
            "executor on every port": lambda d: find(d, "NetworkPolicy", "crucible-executor")[
                "spec"]["ingress"][0].pop("ports"),
            "worker egress anywhere": lambda d: find(d, "NetworkPolicy", "crucible-worker")[
                "spec"]["egress"].append({"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]}),
            "workers cannot reach executors": lambda d: find(d, "NetworkPolicy", "crucible-worker")[
                "spec"]["egress"].pop(1),
            "DNS on every port": lambda d: find(d, "NetworkPolicy", "crucible-allow-dns")[
                "spec"]["egress"][0].pop("ports"),
            # The docker-proxy's exporter.
            "proxy metrics on loopback": lambda d: self.env(
                self.proxy(d), "CRUCIBLE_PROXY_METRICS_BIND").update(value="127.0.0.1:9091"),
            "proxy metrics off": lambda d: self.proxy(d)["env"].remove(
                self.env(self.proxy(d), "CRUCIBLE_PROXY_METRICS_BIND")),
            "proxy metrics port unnamed": lambda d: self.proxy(d)["ports"][0].pop("name"),
            "scraper cannot reach the proxy's exporter": lambda d: find(
                d, "NetworkPolicy", "crucible-metrics")["spec"]["ingress"][0]["ports"].pop(1),
            "scraper reaches the engine frontend": lambda d: find(
                d, "NetworkPolicy", "crucible-metrics")["spec"]["ingress"][0]["ports"].append(
                    {"protocol": "TCP", "port": 2375}),
        }
        for what, mutate in cases.items():
            with self.subTest(what):
                self.assertNotEqual(self.broken(mutate), [], what)



class HaAuditCatchesViolations(unittest.TestCase):
    """audit_ha must fail on each broken rule of the ha overlay."""

    @classmethod
    def setUpClass(cls):
        cls.docs = render(os.path.join(K8S, "overlays", HA_OVERLAY))
        assert audit_ha(cls.docs) == [] and audit(cls.docs) == []

    def broken(self, mutate):
        docs = copy.deepcopy(self.docs)
        mutate(docs)
        return audit_ha(docs)

    @staticmethod
    def sts(docs):
        return find(docs, "StatefulSet", "crucible-server")

    def server(self, docs):
        return pod_spec(self.sts(docs))["containers"][0]

    def anti(self, docs):
        return pod_spec(self.sts(docs))["affinity"]["podAntiAffinity"]

    @staticmethod
    def pdb(docs):
        return find(docs, "PodDisruptionBudget", "crucible-server")

    def set_flag(self, docs, flag, arg):
        args = self.server(docs)["args"]
        args[next(i for i, a in enumerate(args) if a.startswith(f"--{flag}="))] = arg

    def store_volume(self, docs):
        return next(v for v in pod_spec(self.sts(docs))["volumes"] if v["name"] == "store")

    @staticmethod
    def store_secret(docs):
        return next(d for d in docs if d["kind"] == "Secret")

    @staticmethod
    def store_policy(docs):
        return find(docs, "NetworkPolicy", "crucible-server-store")

    def test_each_mutation_is_caught(self):
        uri = "postgresql://crucible:hunter2@db.internal:5432/crucible"
        cases = {
            "one replica": lambda d: self.sts(d)["spec"].update(replicas=1),
            "no anti-affinity": lambda d: pod_spec(self.sts(d)).pop("affinity"),
            "anti-affinity only preferred": lambda d: self.anti(d).pop(
                "requiredDuringSchedulingIgnoredDuringExecution"),
            "anti-affinity by zone": lambda d: self.anti(d)[
                "requiredDuringSchedulingIgnoredDuringExecution"][0].update(
                    topologyKey="topology.kubernetes.io/zone"),
            "anti-affinity against other pods": lambda d: self.anti(d)[
                "requiredDuringSchedulingIgnoredDuringExecution"][0]["labelSelector"][
                    "matchLabels"].update({"app.kubernetes.io/component": "worker"}),
            "no PDB": lambda d: d.remove(self.pdb(d)),
            "PDB selects other pods": lambda d: self.pdb(d)["spec"]["selector"][
                "matchLabels"].update({"app.kubernetes.io/component": "worker"}),
            "PDB blocks standby evictions": lambda d: self.pdb(d)["spec"].pop(
                "unhealthyPodEvictionPolicy"),
            "ordered pod start": lambda d: self.sts(d)["spec"].pop("podManagementPolicy"),
            "rolling update": lambda d: self.sts(d)["spec"].update(
                updateStrategy={"type": "RollingUpdate"}),
            "readiness by TCP": lambda d: self.server(d).update(
                readinessProbe={"tcpSocket": {"port": 8090}}),
            "readiness on the TLS port": lambda d: self.server(d)["readinessProbe"]["grpc"].update(
                port=8080),
            "readiness on liveness": lambda d: self.server(d)["readinessProbe"]["grpc"].update(
                service="liveness"),
            "startup on readiness": lambda d: self.server(d)["startupProbe"]["grpc"].pop("service"),
            "liveness on readiness": lambda d: self.server(d)["livenessProbe"]["grpc"].pop("service"),
            "URI on the command line": lambda d: self.set_flag(d, "store_file", f"--store={uri}"),
            "store file outside the mount": lambda d: self.set_flag(
                d, "store_file", "--store_file=/etc/crucible/uri"),
            "store file writable": lambda d: next(
                m for m in self.server(d)["volumeMounts"] if m["name"] == "store").pop("readOnly"),
            "store file from another Secret": lambda d: self.store_volume(d)["secret"].update(
                secretName="crucible-admin-token"),
            "store file from a ConfigMap": lambda d: self.store_volume(d).update(
                {"secret": None, "configMap": {"name": "crucible-store"}}),
            "store Secret without the key": lambda d: self.store_secret(d)["data"].update(
                {"dsn": self.store_secret(d)["data"].pop("uri")}),
            "password in the Secret": lambda d: self.store_secret(d)["data"].update(
                uri=base64.b64encode(uri.encode()).decode()),
            "password parameter in the Secret": lambda d: self.store_secret(d)["data"].update(
                uri=base64.b64encode(b"postgresql://db/crucible?user=c&password=x").decode()),
            "password in an annotation": lambda d: self.sts(d)["metadata"].update(
                annotations={"note": uri}),
            "PGPASSWORD in the manifest": lambda d: self.server(d)["env"].append(
                {"name": "PGPASSWORD", "value": "hunter2"}),
            "SQLite flag": lambda d: self.server(d)["args"].append("--db=/data/crucible.db"),
            "a PVC template": lambda d: self.sts(d)["spec"].update(volumeClaimTemplates=[
                {"metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"]}}]),
            "a PVC volume": lambda d: pod_spec(self.sts(d))["volumes"].append(
                {"name": "data", "persistentVolumeClaim": {"claimName": "data"}}),
            "a PVC": lambda d: d.append({"kind": "PersistentVolumeClaim",
                                         "metadata": {"name": "crucible-data"}}),
            "no egress to the store": lambda d: d.remove(self.store_policy(d)),
            "store egress on every port": lambda d: self.store_policy(d)["spec"]["egress"][0].pop(
                "ports"),
            "store egress anywhere": lambda d: self.store_policy(d)["spec"]["egress"][0].pop("to"),
            "store egress to 0.0.0.0/0": lambda d: self.store_policy(d)["spec"]["egress"][0][
                "to"][0]["ipBlock"].update(cidr="0.0.0.0/0"),
            "workers reach the store": lambda d: self.store_policy(d)["spec"].update(
                podSelector={}),
        }
        for what, mutate in cases.items():
            with self.subTest(what):
                self.assertNotEqual(self.broken(mutate), [], what)


if __name__ == "__main__":
    unittest.main(verbosity=2)
