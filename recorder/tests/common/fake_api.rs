//! A fake Kubernetes API server for the recorder's tests, shared by `tests/kube.rs` (the
//! metadata source without root) and `tests/privileged.rs` (the real `juno-record` binary
//! against stand-in pods).
//!
//! There is no Kubernetes API server in these tests. [`FakeApi`] is a small HTTP/1.1 server
//! started in-process on 127.0.0.1 (std threads, one per connection, `Connection: close`)
//! that serves real-shaped JSON — the bodies are modelled on what kube-apiserver 1.33
//! answers — for:
//! - `GET /api/v1/pods?fieldSelector=spec.nodeName%3D<node>&limit=500` (list) and the same
//!   with `watch=true&resourceVersion=..` (a stream of `ADDED`/`MODIFIED`/`DELETED`/
//!   `BOOKMARK`/`ERROR` lines, one JSON object each);
//! - `GET /api/v1/services` list and watch;
//! - any other path from [`Script::metadata`] (the source asks for ReplicaSets and Jobs as
//!   `PartialObjectMetadata`), else `404`.
//!
//! Lists and watches answer from scripts, one entry per request (the last list repeats; a
//! watch with no script left stays open and silent), so a test decides exactly when the
//! stream ends, when a bookmark moves the resourceVersion, when `410 Gone` forces a re-list,
//! and (with [`Step::Wait`]) at which moment of the test an event is sent. Every request is
//! logged for assertions.
#![allow(
    dead_code,
    reason = "each test binary uses a different part of the harness"
)]
#![allow(
    unreachable_pub,
    reason = "a test helper module, used by several test crates"
)]

use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

/// One piece of a scripted watch response.
#[derive(Clone, Debug)]
pub enum Step {
    /// A line of the stream (a watch event, or garbage).
    Line(String),
    /// A pause.
    Sleep(u64),
    /// Waits until the test opens the gate (or the server stops).
    Wait(Gate),
}

/// Holds a watch stream at a [`Step::Wait`] until [`Gate::open`].
#[derive(Clone, Debug, Default)]
pub struct Gate(Arc<AtomicBool>);

impl Gate {
    /// Lets the streams waiting on this gate go on.
    pub fn open(&self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// What the server answers, request by request.
#[derive(Debug, Default)]
pub struct Script {
    /// Pod lists, one per list request (the last one repeats).
    pub pod_lists: VecDeque<Value>,
    /// Pod watch streams, one per watch request.
    pub pod_watches: VecDeque<Vec<Step>>,
    /// Service lists.
    pub svc_lists: VecDeque<Value>,
    /// Service watch streams.
    pub svc_watches: VecDeque<Vec<Step>>,
    /// Path → PartialObjectMetadata body.
    pub metadata: HashMap<String, Value>,
    /// Delay before answering the first pod list.
    pub first_list_delay_ms: u64,
    /// Request lines (path and query) and Accept headers, in order (filled by the server).
    pub requests: Vec<(String, String)>,
}

/// The server; stopped when dropped.
#[derive(Debug)]
pub struct FakeApi {
    addr: SocketAddr,
    script: Arc<Mutex<Script>>,
    stop: Arc<AtomicBool>,
}

impl Drop for FakeApi {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wake the accept loop.
        let _ = TcpStream::connect(self.addr);
    }
}

impl FakeApi {
    /// Starts serving `script` on a free port of 127.0.0.1.
    pub fn start(script: Script) -> FakeApi {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let script = Arc::new(Mutex::new(script));
        let stop = Arc::new(AtomicBool::new(false));
        let (s, st) = (script.clone(), stop.clone());
        std::thread::spawn(move || {
            for conn in l.incoming() {
                if st.load(Ordering::Relaxed) {
                    return;
                }
                let Ok(conn) = conn else { continue };
                let (s, st) = (s.clone(), st.clone());
                std::thread::spawn(move || serve(conn, &s, &st));
            }
        });
        FakeApi { addr, script, stop }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Writes a kubeconfig whose current context points at this server (plain HTTP, no
    /// credentials), for `juno-record --kubeconfig`.
    pub fn write_kubeconfig(&self, path: &Path) {
        std::fs::write(
            path,
            format!(
                "apiVersion: v1
kind: Config
clusters:
- name: fake
  cluster:
    server: {url}
users:
- name: fake
  user: {{}}
contexts:
- name: fake
  context:
    cluster: fake
    user: fake
current-context: fake
",
                url = self.url()
            ),
        )
        .unwrap();
    }

    /// Requests so far: (path and query, Accept header).
    pub fn requests(&self) -> Vec<(String, String)> {
        self.script.lock().unwrap().requests.clone()
    }
}

/// A list response (`PodList`, `ServiceList`) at resourceVersion `rv`.
pub fn list(kind: &str, rv: &str, items: Vec<Value>) -> Value {
    json!({"kind": kind, "apiVersion": "v1", "metadata": {"resourceVersion": rv}, "items": items})
}

/// A watch event line.
pub fn ev(kind: &str, object: Value) -> Step {
    Step::Line(json!({"type": kind, "object": object}).to_string())
}

/// A bookmark moving the watch to `rv`.
pub fn bookmark(kind: &str, rv: &str) -> Step {
    ev(
        "BOOKMARK",
        json!({"kind": kind, "apiVersion": "v1", "metadata": {"resourceVersion": rv}}),
    )
}

/// `410 Gone` on a watch stream: the watcher must list again.
pub fn gone() -> Step {
    ev(
        "ERROR",
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
               "message": "too old resource version: 150 (290)", "reason": "Expired", "code": 410}),
    )
}

/// A `Status` failure body.
pub fn status(code: u16, reason: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
           "message": reason, "reason": reason, "code": code})
}

fn respond(c: &mut TcpStream, code: u16, body: &Value) {
    let b = body.to_string();
    let _ = write!(
        c,
        "HTTP/1.1 {code} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{b}",
        b.len()
    );
}

fn serve(mut c: TcpStream, script: &Mutex<Script>, stop: &AtomicBool) {
    let mut r = BufReader::new(c.try_clone().unwrap());
    let mut line = String::new();
    if r.read_line(&mut line).is_err() || line.is_empty() {
        return;
    }
    let target = line.split_whitespace().nth(1).unwrap_or("").to_string();
    let mut accept = String::new();
    loop {
        let mut h = String::new();
        if r.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
            break;
        }
        if let Some((k, v)) = h.split_once(':')
            && k.eq_ignore_ascii_case("accept")
        {
            accept = v.trim().to_string();
        }
    }
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let watch = query.split('&').any(|p| p == "watch=true");
    let mut guard = script.lock().unwrap();
    let s = &mut *guard;
    s.requests.push((target.clone(), accept));
    let (lists, watches) = match path {
        "/api/v1/pods" => (&mut s.pod_lists, &mut s.pod_watches),
        "/api/v1/services" => (&mut s.svc_lists, &mut s.svc_watches),
        other => {
            let body = s.metadata.get(other).cloned();
            drop(guard);
            match body {
                Some(b) => respond(&mut c, 200, &b),
                None => respond(&mut c, 404, &status(404, "NotFound")),
            }
            return;
        }
    };
    if !watch {
        let body = if lists.len() > 1 {
            lists.pop_front()
        } else {
            lists.front().cloned()
        };
        let delay = if path == "/api/v1/pods" {
            std::mem::take(&mut s.first_list_delay_ms)
        } else {
            0
        };
        drop(guard);
        std::thread::sleep(Duration::from_millis(delay));
        match body {
            Some(b) => respond(&mut c, 200, &b),
            None => respond(&mut c, 500, &status(500, "InternalError")),
        }
        return;
    }
    let steps = watches.pop_front();
    drop(guard);
    let _ = write!(
        c,
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n"
    );
    let _ = c.flush();
    match steps {
        Some(steps) => {
            for st in steps {
                match st {
                    Step::Line(l) => {
                        let _ = c.write_all(l.as_bytes());
                        let _ = c.write_all(b"\n");
                        let _ = c.flush();
                    }
                    Step::Sleep(ms) => std::thread::sleep(Duration::from_millis(ms)),
                    Step::Wait(g) => {
                        while !g.0.load(Ordering::Relaxed) {
                            if stop.load(Ordering::Relaxed) {
                                return;
                            }
                            std::thread::sleep(Duration::from_millis(10));
                        }
                    }
                }
            }
            // Closing ends the watch; the watcher watches again from the last version.
        }
        None => {
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Real-shaped objects

/// A controller owner reference (uid derived from the name).
pub fn owner_ref(api: &str, kind: &str, name: &str) -> Value {
    json!({"apiVersion": api, "kind": kind, "name": name, "uid": format!("uid-{name}"),
           "controller": true, "blockOwnerDeletion": true})
}

/// A pod of `node` in namespace `ns`. `ip` None: pending, no address yet, containers not
/// created; else running with that address.
pub fn pod(
    ns: &str,
    node: &str,
    name: &str,
    uid: &str,
    rv: &str,
    owner: Option<Value>,
    ip: Option<&str>,
) -> Value {
    let mut p = json!({
        "kind": "Pod", "apiVersion": "v1",
        "metadata": {
            "name": name, "namespace": ns, "uid": uid, "resourceVersion": rv,
            "creationTimestamp": "2026-11-23T17:00:00Z",
            "labels": {"app": name.split('-').next().unwrap_or(name)},
            "managedFields": [{"manager": "kubelet", "operation": "Update", "apiVersion": "v1",
                               "fieldsType": "FieldsV1", "fieldsV1": {"f:status": {}}}]
        },
        "spec": {
            "nodeName": node, "restartPolicy": "Always", "dnsPolicy": "ClusterFirst",
            "serviceAccountName": "default",
            "containers": [{"name": "main", "image": "registry.k8s.io/pause:3.10",
                            "resources": {}, "imagePullPolicy": "IfNotPresent"}]
        },
        "status": {"phase": "Pending", "qosClass": "BestEffort", "hostIP": "192.168.1.10",
                   "hostIPs": [{"ip": "192.168.1.10"}]}
    });
    if let Some(o) = owner {
        p["metadata"]["ownerReferences"] = json!([o]);
    }
    if let Some(ip) = ip {
        p["status"]["phase"] = json!("Running");
        p["status"]["podIP"] = json!(ip);
        p["status"]["podIPs"] = json!([{"ip": ip}]);
        p["status"]["containerStatuses"] = json!([{
            "name": "main", "ready": true, "restartCount": 0, "started": true,
            "image": "registry.k8s.io/pause:3.10",
            "imageID": "registry.k8s.io/pause@sha256:ee6521f290b2168b6e0935a181d4cff9be1ac3f505666ef0e3c98fae8199917a",
            "containerID": format!("containerd://{}", container_id(uid)),
            "state": {"running": {"startedAt": "2026-11-23T17:00:02Z"}}
        }]);
    }
    p
}

/// A 64-hex-digit container id derived from the pod uid.
pub fn container_id(uid: &str) -> String {
    let mut h: u64 = 1469598103934665603;
    for b in uid.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(1099511628211);
    }
    format!("{h:016x}").repeat(4)
}

/// A ClusterIP service (`cluster_ip` "None": headless).
pub fn service(ns: &str, name: &str, rv: &str, cluster_ip: &str, ports: Value) -> Value {
    json!({
        "kind": "Service", "apiVersion": "v1",
        "metadata": {"name": name, "namespace": ns, "uid": format!("svc-{name}"),
                     "resourceVersion": rv},
        "spec": {"type": "ClusterIP", "clusterIP": cluster_ip, "clusterIPs": [cluster_ip],
                 "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack",
                 "sessionAffinity": "None", "ports": ports},
        "status": {"loadBalancer": {}}
    })
}

/// A ReplicaSet or Job as `PartialObjectMetadata` (what a metadata-only GET answers).
pub fn partial_meta(ns: &str, name: &str, owner: Value) -> Value {
    json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
           "metadata": {"name": name, "namespace": ns, "uid": format!("uid-{name}"),
                        "resourceVersion": "42", "ownerReferences": [owner]}})
}
