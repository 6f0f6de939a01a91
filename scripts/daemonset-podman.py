#!/usr/bin/env python3
"""Translates the DaemonSet that `kubectl kustomize deploy/` renders into `podman run` settings,
one to one, for scripts/test-container.sh: the container runs with what the manifest grants
and nothing else, so the test fails when the manifest and what the recorder needs diverge.

    kubectl kustomize deploy/ | daemonset-podman.py --node-root DIR --node-name NAME > run.json

Prints one JSON object:
  options    podman run options (namespaces, security context, resources, env, mounts)
  image      the container's image reference, as the manifest names it
  entrypoint the container's `command` (it replaces the image's ENTRYPOINT, as in Kubernetes)
  args       the container's `args`
  probes     {startup|readiness|liveness: {command, period, failures, initial_delay, timeout}}
  grace      terminationGracePeriodSeconds (SIGTERM, then SIGKILL after that many seconds)
  capabilities the capability names the container gets; cap_bits their numbers; cap_mask
             the same as the hex mask /proc/PID/status shows (CapEff)
  host_paths {mountPath: host directory} of the writable hostPath volumes (relocated, below)
  not_translated  fields with no podman equivalent here, and why

Every field of the pod and container spec is either translated, listed as not translated with
the reason, or refused (exit 1, naming it): a field added to the manifest that this script
does not know stops the test instead of being dropped silently.

Kubernetes semantics kept:
- `command` replaces the image's ENTRYPOINT, `args` its CMD;
- no `seccompProfile` means Unconfined (the kubelet's default unless --seccomp-default);
- `readOnlyRootFilesystem` without the tmpfs podman would add on /tmp, /run, /var/tmp;
- hostPath `Directory` must exist, `DirectoryOrCreate` is created; mounts are recursive binds,
  private unless `mountPropagation` says otherwise (HostToContainer: rslave);
- an `emptyDir` is a fresh directory (its sizeLimit is enforced by the kubelet's eviction,
  which has no podman equivalent: listed as not translated);
- CPU requests become CPU shares as the kubelet computes them (milli-CPU × 1024 / 1000).

One deliberate difference: hostPath volumes mounted writable are placed under --node-root
instead of the host's own path (the archive directory /var/lib/juno), so the test starts
empty and never touches a recording of this machine; read-only ones (kernel interfaces) are
the host's.
"""

import argparse
import json
import os
import re
import sys

import yaml

# Linux capability numbers (include/uapi/linux/capability.h).
CAPS = {
    "CHOWN": 0, "DAC_OVERRIDE": 1, "DAC_READ_SEARCH": 2, "FOWNER": 3, "FSETID": 4, "KILL": 5,
    "SETGID": 6, "SETUID": 7, "SETPCAP": 8, "LINUX_IMMUTABLE": 9, "NET_BIND_SERVICE": 10,
    "NET_BROADCAST": 11, "NET_ADMIN": 12, "NET_RAW": 13, "IPC_LOCK": 14, "IPC_OWNER": 15,
    "SYS_MODULE": 16, "SYS_RAWIO": 17, "SYS_CHROOT": 18, "SYS_PTRACE": 19, "SYS_PACCT": 20,
    "SYS_ADMIN": 21, "SYS_BOOT": 22, "SYS_NICE": 23, "SYS_RESOURCE": 24, "SYS_TIME": 25,
    "SYS_TTY_CONFIG": 26, "MKNOD": 27, "LEASE": 28, "AUDIT_WRITE": 29, "AUDIT_CONTROL": 30,
    "SETFCAP": 31, "MAC_OVERRIDE": 32, "MAC_ADMIN": 33, "SYSLOG": 34, "WAKE_ALARM": 35,
    "BLOCK_SUSPEND": 36, "AUDIT_READ": 37, "PERFMON": 38, "BPF": 39, "CHECKPOINT_RESTORE": 40,
}


class Refused(Exception):
    pass


def known(obj, where, translated, ignored):
    """Refuses any key of `obj` that is neither translated nor knowingly ignored."""
    for k in obj:
        if k not in translated and k not in ignored:
            raise Refused(f"{where}.{k}: not known to scripts/daemonset-podman.py")


def quantity_bytes(q):
    m = re.fullmatch(r"(\d+)(Ki|Mi|Gi|Ti|k|M|G|T)?", str(q))
    if not m:
        raise Refused(f"memory quantity {q!r}")
    mult = {None: 1, "Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30, "Ti": 1 << 40,
            "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}[m.group(2)]
    return int(m.group(1)) * mult


def quantity_millicpu(q):
    s = str(q)
    if s.endswith("m"):
        return int(s[:-1])
    return int(float(s) * 1000)


def translate(docs, node_root, node_name):
    ds = [d for d in docs if d and d.get("kind") == "DaemonSet"]
    if len(ds) != 1:
        raise Refused(f"expected one DaemonSet, found {len(ds)}")
    ds = ds[0]
    meta = ds["metadata"]
    spec = ds["spec"]["template"]["spec"]
    not_translated = {}
    opts = []

    known(spec, "spec.template.spec",
          {"hostNetwork", "hostPID", "containers", "volumes", "terminationGracePeriodSeconds"},
          {"serviceAccountName", "dnsPolicy", "priorityClassName", "tolerations"})
    not_translated["serviceAccountName"] = (
        "no API server here: without the in-cluster environment (KUBERNETES_SERVICE_HOST, the "
        "token) the recorder's Kubernetes source stays off and it records standalone")
    not_translated["dnsPolicy"] = "no cluster DNS; host network uses the host's resolv.conf"
    not_translated["priorityClassName"] = "scheduling only"
    not_translated["tolerations"] = "scheduling only"
    if len(spec["containers"]) != 1:
        raise Refused("expected one container")

    opts += ["--network", "host"] if spec.get("hostNetwork") else []
    if not spec.get("hostNetwork"):
        raise Refused("hostNetwork: false (a pod network) has no equivalent here")
    opts += ["--pid", "host"] if spec.get("hostPID") else []
    grace = int(spec.get("terminationGracePeriodSeconds", 30))

    c = spec["containers"][0]
    known(c, "container",
          {"name", "image", "imagePullPolicy", "command", "args", "env", "securityContext",
           "resources", "startupProbe", "readinessProbe", "livenessProbe", "volumeMounts"},
          set())
    opts += ["--pull", "never"]
    not_translated["imagePullPolicy"] = "the image is built locally, never pulled"

    # Environment.
    for e in c.get("env", []):
        known(e, "env", {"name", "value", "valueFrom"}, set())
        if "value" in e:
            v = str(e["value"])
        else:
            fr = e["valueFrom"].get("fieldRef")
            if not fr:
                raise Refused(f"env {e['name']}: only fieldRef is translated")
            v = {"spec.nodeName": node_name, "metadata.namespace": meta.get("namespace", ""),
                 "metadata.name": f"{meta['name']}-test"}.get(fr["fieldPath"])
            if v is None:
                raise Refused(f"env {e['name']}: fieldRef {fr['fieldPath']}")
        opts += ["--env", f"{e['name']}={v}"]

    # Security context.
    sc = c.get("securityContext", {})
    known(sc, "securityContext",
          {"privileged", "allowPrivilegeEscalation", "readOnlyRootFilesystem", "runAsUser",
           "runAsGroup", "capabilities", "seccompProfile"}, set())
    if sc.get("privileged"):
        opts += ["--privileged"]
    if sc.get("allowPrivilegeEscalation") is False:
        opts += ["--security-opt", "no-new-privileges"]
    if sc.get("readOnlyRootFilesystem"):
        opts += ["--read-only", "--read-only-tmpfs=false"]
    if "runAsUser" in sc:
        user = str(sc["runAsUser"])
        if "runAsGroup" in sc:
            user += f":{sc['runAsGroup']}"
        opts += ["--user", user]
    seccomp = sc.get("seccompProfile", {}).get("type", "Unconfined")
    if seccomp == "Unconfined":
        opts += ["--security-opt", "seccomp=unconfined"]
    elif seccomp != "RuntimeDefault":
        raise Refused(f"seccompProfile {seccomp}")
    caps = sc.get("capabilities", {})
    known(caps, "capabilities", {"drop", "add"}, set())
    drop = caps.get("drop", [])
    if drop != ["ALL"]:
        raise Refused(f"capabilities.drop {drop}: only [ALL] is translated")
    added = caps.get("add", [])
    for cap in added:
        if cap not in CAPS:
            raise Refused(f"unknown capability {cap}")
    opts += ["--cap-drop", "ALL"]
    for cap in added:
        opts += ["--cap-add", cap]
    mask = 0
    for cap in added:
        mask |= 1 << CAPS[cap]

    # Resources (cgroup limits).
    res = c.get("resources", {})
    known(res, "resources", {"limits", "requests"}, set())
    lim, req = res.get("limits", {}), res.get("requests", {})
    known(lim, "limits", {"cpu", "memory"}, set())
    known(req, "requests", {"cpu", "memory"}, set())
    if "memory" in lim:
        opts += ["--memory", str(quantity_bytes(lim["memory"]))]
    if "cpu" in lim:
        opts += ["--cpus", f"{quantity_millicpu(lim['cpu']) / 1000:g}"]
    if "memory" in req:
        opts += ["--memory-reservation", str(quantity_bytes(req["memory"]))]
    if "cpu" in req:
        opts += ["--cpu-shares", str(max(2, quantity_millicpu(req["cpu"]) * 1024 // 1000))]

    # Volumes.
    vols = {v["name"]: v for v in spec.get("volumes", [])}
    host_paths = {}
    for m in c.get("volumeMounts", []):
        known(m, "volumeMount", {"name", "mountPath", "readOnly", "mountPropagation"}, set())
        propagation = {"None": "rprivate", "HostToContainer": "rslave",
                       "Bidirectional": "rshared"}.get(m.get("mountPropagation", "None"))
        if propagation is None:
            raise Refused(f"mountPropagation {m['mountPropagation']!r}")
        v = vols[m["name"]]
        ro = bool(m.get("readOnly"))
        if "hostPath" in v:
            hp = v["hostPath"]
            known(hp, f"volume {v['name']}.hostPath", {"path", "type"}, set())
            typ = hp.get("type", "")
            src = hp["path"]
            if not ro:
                src = os.path.join(node_root, "hostpath", src.lstrip("/"))
                host_paths[m["mountPath"]] = src
            if typ == "DirectoryOrCreate":
                os.makedirs(src, exist_ok=True)
            elif typ == "Directory":
                if not os.path.isdir(src):
                    raise Refused(f"hostPath {src} (type Directory) is not a directory here")
            else:
                raise Refused(f"hostPath type {typ!r}")
        elif "emptyDir" in v:
            ed = v["emptyDir"]
            known(ed, f"volume {v['name']}.emptyDir", {"sizeLimit"}, set())
            if "sizeLimit" in ed:
                not_translated[f"volume {v['name']}.sizeLimit"] = (
                    "enforced by the kubelet's eviction, not by a mount")
            src = os.path.join(node_root, "emptydir", v["name"])
            os.makedirs(src, exist_ok=True)
        else:
            raise Refused(f"volume {v['name']}: only hostPath and emptyDir are translated")
        opts += ["--volume", f"{src}:{m['mountPath']}:{'ro,' if ro else ''}rbind,{propagation}"]

    probes = {}
    for kind in ("startup", "readiness", "liveness"):
        p = c.get(f"{kind}Probe")
        if p is None:
            continue
        known(p, f"{kind}Probe",
              {"exec", "periodSeconds", "failureThreshold", "initialDelaySeconds",
               "timeoutSeconds", "successThreshold"}, set())
        if "exec" not in p:
            raise Refused(f"{kind}Probe: only exec probes are translated")
        probes[kind] = {
            "command": p["exec"]["command"],
            "period": int(p.get("periodSeconds", 10)),
            "failures": int(p.get("failureThreshold", 3)),
            "initial_delay": int(p.get("initialDelaySeconds", 0)),
            "timeout": int(p.get("timeoutSeconds", 1)),
        }

    return {
        "options": opts,
        "image": c["image"],
        "entrypoint": c.get("command", []),
        "args": c.get("args", []),
        "probes": probes,
        "grace": grace,
        "capabilities": added,
        "cap_bits": {cap: CAPS[cap] for cap in added},
        "cap_mask": f"{mask:016x}",
        "host_paths": host_paths,
        "not_translated": not_translated,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("manifest", nargs="?", help="rendered manifests (default: stdin)")
    ap.add_argument("--node-root", required=True,
                    help="directory for writable hostPath volumes and emptyDirs")
    ap.add_argument("--node-name", required=True, help="the value of spec.nodeName")
    a = ap.parse_args()
    text = open(a.manifest).read() if a.manifest else sys.stdin.read()
    try:
        out = translate(list(yaml.safe_load_all(text)), a.node_root, a.node_name)
    except (Refused, KeyError) as e:
        print(f"daemonset-podman: {e}", file=sys.stderr)
        sys.exit(1)
    json.dump(out, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
