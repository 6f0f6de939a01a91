#!/usr/bin/env python3
"""Writes deploy/analyze/jobs.yaml: one juno-analyze Job per node, pinned to it.

    deploy/analyze/generate.py --pvc CLAIM [--memory 1G] [--threads 2] NODE... [-o FILE]

Each Job has one completion, pinned to its node with a required node affinity on
`metadata.name`; it reads the node's archives (hostPath /var/lib/juno, read-only) and appends
one batch to the partitioned dataset on the PersistentVolumeClaim CLAIM (which every node
mounts: ReadWriteMany). Why not one Indexed Job with a completion per node: Kubernetes gives
every pod of a Job the same template, so nothing can pin completion i to node i; one-per-node
spreading (anti-affinity) does not survive retries (a retried pod may land on a node already
done while another is never analyzed). So pinning is per Job, generated here from the node
list (`kubectl get nodes -o name | sed 's,node/,,'`).

juno-analyze's exit status 2 (the run finished and the batch is committed, but some input was
damaged, cut short or skipped) counts as success: a retry would append the same archives
again. Status 1 (nothing committed) is retried up to twice.

Resources come from the analyzer's memory budget (`--memory`, e.g. 512M, 2G, as juno-analyze
spells it): the memory request is the budget and the limit a quarter more (the budget
bounds the analysis; polars' Parquet encoder, the allocator's slack and the program take the
rest). CPU: `--threads` requested and limited, and passed to juno-analyze.

Output: JSON documents (JSON is YAML), stable for a given command line, so the file can be
checked in and regenerated.
"""

import argparse
import json
import re
import sys

UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def parse_size(s):
    """Bytes of `512M`, `2G`, `1.5G`, `1GiB`, as juno-analyze's --memory reads them."""
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?", s.strip(), re.I)
    if not m:
        raise argparse.ArgumentTypeError(f"{s!r}: a size such as 512M or 2G")
    n = int(float(m.group(1)) * UNITS[m.group(2).upper()])
    if n < 64 << 20:
        raise argparse.ArgumentTypeError(f"{s!r}: at least 64M")
    return n


def dns_label(node):
    """A Job name suffix from a node name (lowercase alphanumerics and '-')."""
    s = re.sub(r"[^a-z0-9-]+", "-", node.lower()).strip("-")
    return s[:40].rstrip("-") or "node"


# `sh -c SCRIPT juno-analyze ARGS...`: runs juno-analyze ARGS, exit status 2 → 0.
EXIT_2_IS_SUCCESS = (
    'juno-analyze "$@"; s=$?; '
    'if [ "$s" -eq 2 ]; then echo "juno-analyze: batch committed; some input was damaged,'
    ' cut short or skipped (above)" >&2; s=0; fi; exit "$s"'
)


def job(node, args):
    mib = args.memory >> 20
    limit_mib = (args.memory * 5 // 4) >> 20
    container = {
        "name": "juno-analyze",
        "image": "juno-record",
        "imagePullPolicy": "IfNotPresent",
        "command": ["sh", "-c", EXIT_2_IS_SUCCESS, "juno-analyze"],
        "args": [
            "--progress=never",
            f"--threads={args.threads}",
            f"--memory={args.memory_text}",
            "export",
            "/var/lib/juno",
            "--partition-by=node,hour",
            "--node=$(NODE_NAME)",
            "--out-dir=/dataset",
        ],
        "env": [{"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}],
        "resources": {
            "requests": {"cpu": str(args.threads), "memory": f"{mib}Mi"},
            "limits": {"cpu": str(args.threads), "memory": f"{limit_mib}Mi"},
        },
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
            # The recorder's archives belong to root.
            "runAsUser": 0,
        },
        "volumeMounts": [
            {"name": "archives", "mountPath": "/var/lib/juno", "readOnly": True},
            {"name": "dataset", "mountPath": "/dataset"},
            {"name": "tmp", "mountPath": "/tmp"},
        ],
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": f"juno-analyze-{dns_label(node)}",
            "labels": {"juno.io/node": dns_label(node)},
        },
        "spec": {
            "completions": 1,
            "parallelism": 1,
            "backoffLimit": 2,
            "ttlSecondsAfterFinished": 86400,
            "template": {
                "metadata": {"labels": {"juno.io/node": dns_label(node)}},
                "spec": {
                    "restartPolicy": "Never",
                    # A Job needs no API access: no token in the pod, no RBAC.
                    "automountServiceAccountToken": False,
                    "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
                    "affinity": {
                        "nodeAffinity": {
                            "requiredDuringSchedulingIgnoredDuringExecution": {
                                "nodeSelectorTerms": [
                                    {
                                        "matchFields": [
                                            {"key": "metadata.name", "operator": "In", "values": [node]}
                                        ]
                                    }
                                ]
                            }
                        }
                    },
                    # Archives are on every node the recorder runs on, tainted ones too.
                    "tolerations": [{"operator": "Exists"}],
                    "containers": [container],
                    "volumes": [
                        {"name": "archives", "hostPath": {"path": "/var/lib/juno", "type": "Directory"}},
                        {"name": "dataset", "persistentVolumeClaim": {"claimName": args.pvc}},
                        {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}},
                    ],
                },
            },
        },
    }


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--pvc", required=True, help="PersistentVolumeClaim of the dataset (ReadWriteMany)")
    p.add_argument("--memory", default="1G", help="juno-analyze's memory budget (default 1G)")
    p.add_argument("--threads", type=int, default=2, help="worker threads and CPUs (default 2)")
    p.add_argument("-o", "--output", help="file to write (default: standard output)")
    p.add_argument("nodes", nargs="+", metavar="NODE")
    args = p.parse_args()
    args.memory_text = args.memory
    args.memory = parse_size(args.memory)
    if args.threads < 1:
        p.error("--threads: at least 1")
    if len(set(map(dns_label, args.nodes))) != len(args.nodes):
        p.error("two nodes map to the same Job name")
    header = (
        "# Generated by deploy/analyze/generate.py "
        + " ".join(
            [f"--pvc {args.pvc}", f"--memory {args.memory_text}", f"--threads {args.threads}"]
            + args.nodes
        )
        + "\n# Regenerate it for your nodes; do not edit by hand.\n"
    )
    text = header + "".join(
        "---\n" + json.dumps(job(n, args), indent=2) + "\n" for n in args.nodes
    )
    if args.output:
        with open(args.output, "w") as f:
            f.write(text)
    else:
        sys.stdout.write(text)


if __name__ == "__main__":
    main()
