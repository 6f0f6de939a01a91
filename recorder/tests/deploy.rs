//! deploy/ renders with `kubectl kustomize` (kustomize built into kubectl; scripts/setup.sh
//! installs kubectl when missing) and the result is what the DaemonSet needs and no more.
//!
//! There is no Kubernetes cluster on the machines this project is tested on: this checks the
//! rendered manifests and the image build file; scripts/test-container.sh builds the image and
//! runs the DaemonSet's container with podman.
#![allow(clippy::unwrap_used, reason = "test code: a panic is a test failure")]

use std::path::Path;
use std::process::Command;

use serde::Deserialize;
use serde_json::Value;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap()
}

/// The manifests `kubectl kustomize deploy/` renders, as JSON values.
fn rendered() -> Vec<Value> {
    let out = Command::new("kubectl")
        .arg("kustomize")
        .arg(root().join("deploy"))
        .output()
        .expect("kubectl must be installed (scripts/setup.sh installs it)");
    assert!(
        out.status.success(),
        "kubectl kustomize failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_yaml_ng::Deserializer::from_slice(&out.stdout)
        .map(|d| Value::deserialize(d).unwrap())
        .collect()
}

fn find<'a>(docs: &'a [Value], kind: &str) -> Vec<&'a Value> {
    docs.iter().filter(|d| d["kind"] == kind).collect()
}

#[test]
fn kustomize_renders_the_daemonset_and_read_only_rbac() {
    let docs = rendered();
    let mut kinds: Vec<&str> = docs.iter().map(|d| d["kind"].as_str().unwrap()).collect();
    kinds.sort();
    assert_eq!(
        kinds,
        [
            "ClusterRole",
            "ClusterRoleBinding",
            "DaemonSet",
            "Namespace",
            "ServiceAccount"
        ]
    );
    // Everything namespaced lives in `juno`.
    for d in &docs {
        if !matches!(
            d["kind"].as_str(),
            Some("Namespace" | "ClusterRole" | "ClusterRoleBinding")
        ) {
            assert_eq!(d["metadata"]["namespace"], "juno", "{}", d["kind"]);
        }
    }

    // RBAC: get, list and watch only, and the binding names the DaemonSet's account.
    let role = find(&docs, "ClusterRole")[0];
    let rules = role["rules"].as_array().unwrap();
    assert!(!rules.is_empty());
    for r in rules {
        let verbs: Vec<&str> = r["verbs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(verbs, ["get", "list", "watch"], "{r}");
    }
    let resources: Vec<&str> = rules
        .iter()
        .flat_map(|r| r["resources"].as_array().unwrap())
        .map(|v| v.as_str().unwrap())
        .collect();
    for want in ["pods", "services", "replicasets", "deployments"] {
        assert!(resources.contains(&want), "{want} not readable");
    }
    let binding = find(&docs, "ClusterRoleBinding")[0];
    assert_eq!(binding["roleRef"]["name"], role["metadata"]["name"]);
    assert_eq!(binding["subjects"][0]["kind"], "ServiceAccount");
    assert_eq!(binding["subjects"][0]["namespace"], "juno");

    // The DaemonSet: its account, host namespaces, capabilities instead of privileged.
    let ds = find(&docs, "DaemonSet")[0];
    let spec = &ds["spec"]["template"]["spec"];
    assert_eq!(spec["serviceAccountName"], binding["subjects"][0]["name"]);
    assert_eq!(spec["hostNetwork"], true);
    assert_eq!(spec["hostPID"], true);
    let c = &spec["containers"][0];
    let sc = &c["securityContext"];
    assert_eq!(sc["privileged"], false);
    assert_eq!(sc["readOnlyRootFilesystem"], true);
    assert_eq!(sc["capabilities"]["drop"], serde_json::json!(["ALL"]));
    let caps: Vec<&str> = sc["capabilities"]["add"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    for want in ["BPF", "PERFMON", "NET_ADMIN"] {
        assert!(caps.contains(&want), "missing capability {want}");
    }
    assert!(c["resources"]["limits"]["memory"].is_string());
    assert!(c["resources"]["requests"]["cpu"].is_string());
    assert!(c["livenessProbe"].is_object() && c["readinessProbe"].is_object());
    assert_eq!(c["env"][0]["name"], "NODE_NAME");
    assert_eq!(
        c["env"][0]["valueFrom"]["fieldRef"]["fieldPath"],
        "spec.nodeName"
    );

    // Mounts: kernel interfaces read-only, the archive directory writable on the host.
    let mounts: Vec<(&str, bool)> = c["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["mountPath"].as_str().unwrap(),
                m["readOnly"].as_bool().unwrap_or(false),
            )
        })
        .collect();
    for ro in ["/sys/kernel/btf", "/sys/kernel/tracing", "/sys/fs/cgroup"] {
        assert!(mounts.contains(&(ro, true)), "{ro} not mounted read-only");
    }
    assert!(mounts.contains(&("/var/lib/juno", false)));
    let archives = spec["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "archives")
        .unwrap();
    assert_eq!(archives["hostPath"]["path"], "/var/lib/juno");
    // The recorder's options name the same directory and bound its size.
    let args: Vec<&str> = c["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(args.contains(&"--out-dir=/var/lib/juno"));
    assert!(args.iter().any(|a| a.starts_with("--max-total-size=")));
    // Socket events of pods, not of the node's own processes (docs/recorder.md).
    assert!(args.contains(&"--pods-only"));
    // ... and every option is one juno-record accepts.
    let out = Command::new(env!("CARGO_BIN_EXE_juno-record"))
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for a in &args {
        let name = a.split('=').next().unwrap();
        assert!(help.contains(name), "juno-record has no option {name}");
    }
}

/// deploy/Containerfile, the image build file.
fn containerfile() -> String {
    std::fs::read_to_string(root().join("deploy/Containerfile")).unwrap()
}

#[test]
fn the_image_build_installs_tar_for_kubectl_cp() {
    let cf = containerfile();
    let stages: Vec<&str> = cf.split("\nFROM ").collect();
    assert!(stages.len() >= 2, "a multi-stage build");
    let runtime = stages
        .iter()
        .find(|s| s.starts_with("${RUNTIME_IMAGE} AS runtime"))
        .expect("a runtime stage on the RUNTIME_IMAGE build argument");
    let installs = runtime
        .lines()
        .filter(|l| l.contains("apt-get install"))
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        installs.split_whitespace().any(|w| w == "tar"),
        "the runtime stage must install tar: {installs}"
    );
    assert!(runtime.contains("ENTRYPOINT [\"juno-record\"]"));
    // Both ways of building end in an image with both binaries on PATH.
    for target in ["prebuilt", "image"] {
        let stage = stages
            .iter()
            .find(|s| s.starts_with(&format!("runtime AS {target}")))
            .unwrap_or_else(|| panic!("no stage {target} on the runtime"));
        assert!(
            stage.contains("juno-record") && stage.contains("juno-analyze"),
            "{target} must copy both binaries"
        );
    }
    // The default target (the last stage) is the one built from source.
    assert!(stages.last().unwrap().starts_with("runtime AS image"));
}

#[test]
fn the_image_build_takes_its_bases_as_arguments_with_the_pinned_rust() {
    let cf = containerfile();
    let arg = |name: &str| {
        cf.lines()
            .find_map(|l| l.strip_prefix(&format!("ARG {name}=")))
            .unwrap_or_else(|| panic!("no ARG {name} with a default"))
            .to_string()
    };
    let toolchain = std::fs::read_to_string(root().join("rust-toolchain.toml")).unwrap();
    let channel = toolchain
        .lines()
        .find_map(|l| l.strip_prefix("channel = "))
        .unwrap()
        .trim_matches('"');
    let rust = arg("RUST_IMAGE");
    assert!(
        rust.contains(&format!(":{channel}-")),
        "RUST_IMAGE {rust} is not the pinned toolchain {channel}"
    );
    assert!(cf.contains("FROM ${RUST_IMAGE} AS build"));
    assert!(!arg("RUNTIME_IMAGE").is_empty());
    // The build context leaves out build outputs and history.
    let ignore = std::fs::read_to_string(root().join(".dockerignore")).unwrap();
    for out in ["target", ".git"] {
        assert!(
            ignore.lines().any(|l| l == out),
            ".dockerignore lacks {out}"
        );
    }
}

/// Runs deploy/kubectl-juno (the kubectl plugin) with `args`: (exit code, stdout, stderr).
fn kubectl_juno(args: &[&str]) -> (i32, String, String) {
    let out = Command::new("python3")
        .arg(root().join("deploy/kubectl-juno"))
        .args(args)
        .env("KUBECTL", "kubectl")
        .output()
        .expect("python3 runs the plugin");
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// A pod listing as `kubectl get pods -o json` prints it: (name, node, phase) per pod.
fn pod_list(pods: &[(&str, &str, &str)]) -> String {
    let items: Vec<Value> = pods
        .iter()
        .map(|(name, node, phase)| {
            serde_json::json!({
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": name, "namespace": "juno", "labels": {"app": "juno-record"}},
                "spec": {"nodeName": node, "containers": [{"name": "juno-record"}]},
                "status": {"phase": phase},
            })
        })
        .collect();
    serde_json::json!({"apiVersion": "v1", "kind": "List", "items": items}).to_string()
}

#[test]
fn kubectl_juno_refuses_bad_arguments() {
    for args in [
        &[][..],
        &["collect"],
        &["gather", "out"],
        &["collect", "out", "--no-such-option"],
        &["collect", "a", "b"],
    ] {
        let (code, _, err) = kubectl_juno(args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.contains("usage: kubectl juno"), "{args:?}: {err}");
    }
    let (code, out, _) = kubectl_juno(&["collect", "--help"]);
    assert_eq!(code, 0);
    for opt in ["--dry-run", "--namespace", "--selector", "--no-seal"] {
        assert!(out.contains(opt), "help lacks {opt}");
    }
}

#[test]
fn kubectl_juno_dry_run_seals_and_copies_every_running_pod_into_its_node_dir() {
    let dir = tempfile::tempdir().unwrap();
    let pods = dir.path().join("pods.json");
    std::fs::write(
        &pods,
        pod_list(&[
            ("juno-record-b2", "node-b", "Running"),
            ("juno-record-a1", "node-a", "Running"),
            ("juno-record-c3", "node-c", "Pending"),
        ]),
    )
    .unwrap();
    // node-a was collected before: one sealed file of 5 bytes, left out of the copy.
    let out_dir = dir.path().join("archives");
    std::fs::create_dir_all(out_dir.join("node-a")).unwrap();
    let seen = "juno-node_a-20261205T010000Z-000000.pcapng.zst";
    std::fs::write(out_dir.join("node-a").join(seen), b"12345").unwrap();
    let out_s = out_dir.to_str().unwrap();
    let (code, out, err) = kubectl_juno(&[
        "collect",
        out_s,
        "--dry-run",
        "--pods-json",
        pods.to_str().unwrap(),
        "--context",
        "prod",
    ]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    // Per running pod, in node order: seal, then one tar stream of the sealed files.
    assert_eq!(lines.len(), 4, "{out}");
    let exec = |pod: &str| format!("kubectl --context prod -n juno exec {pod} -c juno-record -- ");
    assert_eq!(
        lines[0],
        format!(
            "{}juno-record seal --out-dir /var/lib/juno",
            exec("juno-record-a1")
        )
    );
    assert!(
        lines[1].starts_with(&format!(
            "{}env KEEP={seen}:5 sh -c ",
            exec("juno-record-a1")
        )),
        "{}",
        lines[1]
    );
    assert!(lines[1].contains("tar cf -"), "{}", lines[1]);
    assert!(
        lines[1].ends_with(&format!(
            " sh /var/lib/juno | (unpack the sealed files into {out_s}/node-a)"
        )),
        "{}",
        lines[1]
    );
    assert!(
        lines[2].starts_with(&exec("juno-record-b2")),
        "{}",
        lines[2]
    );
    assert!(lines[3].contains("env KEEP= sh -c"), "{}", lines[3]);
    assert!(
        lines[3].ends_with(&format!("{out_s}/node-b)")),
        "{}",
        lines[3]
    );
    // The pending pod is named and left alone; nothing was written.
    assert!(
        err.contains("skipping pod juno-record-c3 on node-c: Pending"),
        "{err}"
    );
    assert!(!out_dir.join("node-b").exists());

    // --no-seal copies only.
    let (code, out, _) = kubectl_juno(&[
        "collect",
        out_s,
        "--dry-run",
        "--no-seal",
        "--pods-json",
        pods.to_str().unwrap(),
    ]);
    assert_eq!(code, 0);
    assert_eq!(out.lines().count(), 2, "{out}");
    assert!(!out.contains(" seal "), "{out}");
}

#[test]
fn kubectl_juno_names_a_bad_pod_listing_and_unsafe_node_names() {
    let dir = tempfile::tempdir().unwrap();
    let pods = dir.path().join("pods.json");
    let out_dir = dir.path().join("archives");
    let run = |listing: &str| {
        std::fs::write(&pods, listing).unwrap();
        kubectl_juno(&[
            "collect",
            out_dir.to_str().unwrap(),
            "--dry-run",
            "--pods-json",
            pods.to_str().unwrap(),
        ])
    };
    let (code, _, err) = run("error: You must be logged in to the server (Unauthorized)");
    assert_eq!(code, 1);
    assert!(
        err.contains("the pod listing is not kubectl's JSON"),
        "{err}"
    );
    // A node name is a directory name here: nothing that leaves DIR.
    let (code, _, err) = run(&pod_list(&[("p", "../etc", "Running")]));
    assert_eq!(code, 1);
    assert!(err.contains("is not a DNS-1123 name"), "{err}");
    let (code, _, err) = run(&pod_list(&[("p", "node-a", "Failed")]));
    assert_eq!(code, 1);
    assert!(
        err.contains("no running pod matches -l app=juno-record"),
        "{err}"
    );
}
