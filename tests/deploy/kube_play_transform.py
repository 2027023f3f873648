"""What `podman kube play` (Podman 4.3) can take of a rendered overlay,
for tests/deploy/kube_play_test.py: only what Podman cannot take is
changed, and each change says why (`to_plays`)."""

import copy
import re

import k8s_manifests_test as manifests

HOST_SOCKET = "/run/podman/podman.sock"  # the local overlay's hostPath


def expand_vars(words, env):
    """Kubernetes expands $(NAME) in command and args from the container's
    env ($$ escapes); Podman 4.3 does not (4.7 does)."""
    def one(word):
        return re.sub(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)",
                      lambda m: "$" if m.group(0) == "$$" else env.get(m.group(1), m.group(0)),
                      word)
    return [one(w) for w in words] if words else words


def container_env(container, pod_name, namespace):
    env = {}
    for e in container.get("env") or []:
        if "value" in e:
            env[e["name"]] = e["value"]
        else:
            path = ((e.get("valueFrom") or {}).get("fieldRef") or {}).get("fieldPath")
            if path == "metadata.name":
                env[e["name"]] = pod_name
            elif path == "metadata.namespace":
                env[e["name"]] = namespace
            else:
                raise ValueError(f"{container['name']}: env {e['name']}: {e} not handled here")
    return env


def own_empty_dirs(spec, owner):
    """Podman 4.3 makes an emptyDir a named volume called as the pod's
    volume, so every pod with a volume `tmp` would share one. Each gets
    its own (<owner>-<volume>), as each pod does on Kubernetes. (It is on
    disk and root's, mode 0755, where Kubernetes gives a memory-backed
    0777 one; nothing of Crucible writes its /tmp.)"""
    for v in spec.get("volumes") or []:
        if "emptyDir" in v:
            new = f"{owner}-{v['name']}"
            for c in spec["containers"] + (spec.get("initContainers") or []):
                for m in c.get("volumeMounts") or []:
                    if m["name"] == v["name"]:
                        m["name"] = new
            v["name"] = new


def uses_vars(spec):
    return any("$(" in w for c in manifests.all_containers(spec)
               for w in (c.get("command") or []) + (c.get("args") or []))


def services_for(docs, workload):
    """The Services that select this workload's pods, as (name, ports)."""
    labels = manifests.pod_labels(workload)
    out = []
    for s in docs:
        if s["kind"] == "Service" and s["spec"].get("selector") and \
                manifests.selector_matches({"matchLabels": s["spec"]["selector"]}, labels):
            out.append(s)
    return out


def to_plays(docs, engine_socket, executors, secrets_dir):
    """Returns [(name, aliases, [documents])], one `kube play` each, and
    the probes the test runs itself: {pod name: {container: probes}}.
    `secrets_dir` holds a directory per Secret the pods mount (its keys as
    files), made by the test."""
    configmaps = {d["metadata"]["name"]: d for d in docs if d["kind"] == "ConfigMap"}
    played_configmaps = set()
    plays, probes = [], {}
    # Server first, then the executors, then the worker (its readiness
    # needs both), as a cluster would converge to.
    order = {"StatefulSet": 0, "Deployment": 1}
    workloads = sorted((d for d in docs if d["kind"] in ("StatefulSet", "Deployment")),
                       key=lambda d: (order[d["kind"]], d["metadata"]["name"] == "crucible-worker"))
    for w in workloads:
        w = copy.deepcopy(w)
        name = w["metadata"]["name"]
        namespace = w["metadata"].get("namespace", "default")
        spec = w["spec"]["template"]["spec"]
        out = []

        # Native sidecars (init containers with restartPolicy: Always,
        # Kubernetes >= 1.29): Podman 4.3 runs init containers to completion
        # before the others and refuses probes on them, so the proxy and the
        # guard would hold the pod's start forever. They become ordinary
        # containers, first in the list; the kubelet's stop order for them
        # (after the executor) is played by the test's pod stop below.
        sidecars = [c for c in spec.get("initContainers") or []
                    if c.get("restartPolicy") == "Always"]
        for c in sidecars:
            del c["restartPolicy"]
        spec["initContainers"] = [c for c in spec.get("initContainers") or []
                                  if c not in sidecars]
        if not spec["initContainers"]:
            del spec["initContainers"]
        spec["containers"] = sidecars + spec["containers"]

        # Probes: Podman 4.3 ignores grpc probes, turns an exec probe into a
        # health check that joins its argv with spaces under /bin/sh and
        # kills PID 1 when it fails (so `bash -c 'exec 3<>/dev/tcp/...'`
        # would kill the proxy), and schedules health checks only through
        # systemd, which these machines lack. They are taken out; the test
        # asks each one itself, as the kubelet would (wait_ready below).
        kept = {}
        for c in spec["containers"]:
            kept[c["name"]] = {k: c.pop(k) for k in
                               ("startupProbe", "readinessProbe", "livenessProbe") if k in c}

        # The engine socket: the node's Podman socket becomes the test
        # engine's (same type, Socket; group 2375, mode 0660, as the node
        # requirement says).
        for v in spec.get("volumes") or []:
            if "hostPath" in v:
                if v["hostPath"]["path"] != HOST_SOCKET:
                    raise ValueError(f"{name}: unexpected hostPath {v['hostPath']}")
                v["hostPath"]["path"] = engine_socket

        # Secrets (the TLS certificates): Podman 4.3 plays no Secret
        # object here, and the overlay carries none (cert-manager or the
        # operator makes them). Each secret volume becomes a host directory
        # with the Secret's keys as files, which the test makes with
        # deploy/local/certs; mounted read-only, as a Secret volume is.
        for v in spec.get("volumes") or []:
            if "secret" in v:
                secret = v.pop("secret")["secretName"]
                v["hostPath"] = {"path": f"{secrets_dir}/{secret}", "type": "Directory"}

        # ConfigMaps the pods mount, played once, with the first workload
        # that mounts them (Podman makes a volume of each).
        for v in spec.get("volumes") or []:
            cm = (v.get("configMap") or {}).get("name")
            if cm and cm not in played_configmaps:
                out.append(configmaps[cm])
                played_configmaps.add(cm)

        # Services: Podman 4.3 has none. A Service's name becomes a DNS
        # alias of every pod it selects on the test's network (aardvark-dns
        # answers with all of them, as a headless Service's name does), so
        # it must not remap ports: each Service port is its target port.
        aliases = []
        for s in services_for(docs, w):
            for p in s["spec"]["ports"]:
                target = p.get("targetPort", p["port"])
                if isinstance(target, str):
                    target = next(cp["containerPort"] for c in spec["containers"]
                                  for cp in c.get("ports") or [] if cp.get("name") == target)
                if target != p["port"]:
                    raise ValueError(f"Service {s['metadata']['name']}: port {p['port']} -> {target}")
            aliases.append(s["metadata"]["name"])

        # Ports: Podman 4.3 publishes every containerPort on the host at
        # the same port (Kubernetes publishes none without a hostPort): the
        # second executor pod would not start (8082 taken) and the server
        # would take the machine's 8080. Every port of a pod is reachable on
        # the test's network without them.
        for c in spec["containers"]:
            c.pop("ports", None)

        if w["kind"] == "StatefulSet":
            # Podman 4.3 plays no StatefulSet. One replica of it is a
            # Deployment whose pod mounts the claim a StatefulSet would make
            # for it (<template>-<set>-0), played as a PersistentVolumeClaim
            # (a Podman volume, kept across pod restarts).
            if w["spec"].get("replicas", 1) != 1:
                raise ValueError(f"{name}: more than one StatefulSet replica")
            for t in w["spec"].pop("volumeClaimTemplates", []):
                claim = f"{t['metadata']['name']}-{name}-0"
                out.append({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                            "metadata": {"name": claim, "namespace": namespace},
                            "spec": t["spec"]})
                spec.setdefault("volumes", []).append(
                    {"name": t["metadata"]["name"], "persistentVolumeClaim": {"claimName": claim}})
            w["spec"].pop("serviceName", None)
            w["kind"] = "Deployment"

        # The executor Deployment scaled to two, as `kubectl scale` would.
        if name == "crucible-executor":
            w["spec"]["replicas"] = executors

        # Podman 4.3 does not expand $(VAR) in command and args (the
        # executor's and the guard's --executor_id=$(POD_NAME)), and one
        # Deployment template cannot carry a value per replica: a workload
        # that uses them becomes one Pod per replica, named as its pod's
        # name, with the references expanded (POD_NAME's fieldRef gives
        # Podman's pod name, the same).
        if uses_vars(spec):
            for i in range(w["spec"].get("replicas", 1)):
                pod_name = f"{name}-{i}"
                pod_spec = copy.deepcopy(spec)
                own_empty_dirs(pod_spec, pod_name)
                for c in pod_spec["containers"] + (pod_spec.get("initContainers") or []):
                    env = container_env(c, pod_name, namespace)
                    for key in ("command", "args"):
                        if c.get(key):
                            c[key] = expand_vars(c[key], env)
                out.append({"apiVersion": "v1", "kind": "Pod",
                            "metadata": {"name": pod_name, "namespace": namespace,
                                         "labels": w["spec"]["template"]["metadata"]["labels"]},
                            "spec": pod_spec})
                probes[pod_name] = kept
        else:
            own_empty_dirs(spec, name)  # one replica each here
            out.append(w)
            # Podman names a Deployment's pods <name>-pod-<i>.
            for i in range(w["spec"].get("replicas", 1)):
                probes[f"{name}-pod-{i}"] = kept

        plays.append((name, aliases, out))
    return plays, probes


def played_volumes(plays):
    """The volumes Podman makes of the plays: named after the claim, the
    ConfigMap or the pod's volume (an emptyDir)."""
    names = set()
    for _, _, docs in plays:
        for d in docs:
            if d["kind"] in ("PersistentVolumeClaim", "ConfigMap"):
                names.add(d["metadata"]["name"])
            elif d["kind"] in ("Pod", "Deployment"):
                spec = d["spec"] if d["kind"] == "Pod" else d["spec"]["template"]["spec"]
                names.update(v["name"] for v in spec.get("volumes") or [] if "emptyDir" in v)
    return names
