//! Pure Kubernetes logic, no client: lenient views of the API objects the source watches,
//! their conversion into archive entities, owner (workload) resolution, and the bounded
//! stores that turn watch events into the changes worth writing.
//!
//! The views deserialize only the fields the recorder uses, each with a default: a pod
//! without status, a container status without an id, a service without ports are normal
//! states, not errors. Only `metadata` is the API's own type (kube needs it); what a view
//! lacks that the recorder cannot do without (a pod's uid, name or namespace) makes the
//! object [`Malformed`], counted and skipped by the caller.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::Hash;
use std::net::IpAddr;

use juno_archive::{ContainerMeta, PodMeta, ServiceMeta};
use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Deserialize;

/// Labels kept per pod at most (the API allows many; archives need the few that name things).
pub const MAX_LABELS: usize = 64;
/// Containers kept per pod at most (init, regular and ephemeral together).
pub const MAX_CONTAINERS: usize = 64;

/// Implements `kube::Resource` for a view of a built-in, namespaced core/v1 kind.
macro_rules! core_v1_view {
    ($t:ty, $kind:literal, $plural:literal) => {
        impl kube::Resource for $t {
            type DynamicType = ();
            type Scope = NamespaceResourceScope;
            fn kind(_: &()) -> Cow<'_, str> {
                Cow::Borrowed($kind)
            }
            fn group(_: &()) -> Cow<'_, str> {
                Cow::Borrowed("")
            }
            fn version(_: &()) -> Cow<'_, str> {
                Cow::Borrowed("v1")
            }
            fn plural(_: &()) -> Cow<'_, str> {
                Cow::Borrowed($plural)
            }
            fn meta(&self) -> &ObjectMeta {
                &self.metadata
            }
            fn meta_mut(&mut self) -> &mut ObjectMeta {
                &mut self.metadata
            }
        }
    };
}

/// What the recorder reads of a Pod.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct PodView {
    /// Standard metadata.
    pub metadata: ObjectMeta,
    /// Spec fields used.
    pub spec: PodSpecView,
    /// Status fields used.
    pub status: PodStatusView,
}
core_v1_view!(PodView, "Pod", "pods");

/// `spec` of a pod, as far as used.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct PodSpecView {
    /// `spec.nodeName`.
    pub node_name: Option<String>,
    /// `spec.hostNetwork`.
    pub host_network: Option<bool>,
}

/// `status` of a pod, as far as used.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct PodStatusView {
    /// `Pending`, `Running`, `Succeeded`, `Failed`, `Unknown`.
    pub phase: Option<String>,
    /// `status.podIP` (older servers set only this).
    #[serde(rename = "podIP")]
    pub pod_ip: Option<String>,
    /// `status.podIPs`.
    #[serde(rename = "podIPs")]
    pub pod_ips: Vec<PodIpView>,
    /// Regular containers.
    pub container_statuses: Vec<ContainerStatusView>,
    /// Init containers.
    pub init_container_statuses: Vec<ContainerStatusView>,
    /// Ephemeral (debug) containers.
    pub ephemeral_container_statuses: Vec<ContainerStatusView>,
}

/// One entry of `status.podIPs`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct PodIpView {
    /// The address.
    pub ip: String,
}

/// One container status.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ContainerStatusView {
    /// Container name in the pod spec.
    pub name: String,
    /// `<runtime>://<id>`, absent until the container is created.
    #[serde(rename = "containerID")]
    pub container_id: Option<String>,
}

/// What the recorder reads of a Service.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ServiceView {
    /// Standard metadata.
    pub metadata: ObjectMeta,
    /// Spec fields used.
    pub spec: ServiceSpecView,
}
core_v1_view!(ServiceView, "Service", "services");

/// `spec` of a service, as far as used.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ServiceSpecView {
    /// `ClusterIP`, `NodePort`, `LoadBalancer`, `ExternalName`.
    #[serde(rename = "type")]
    pub type_: Option<String>,
    /// `spec.clusterIP` (`None` for headless services).
    #[serde(rename = "clusterIP")]
    pub cluster_ip: Option<String>,
    /// `spec.clusterIPs` (dual stack).
    #[serde(rename = "clusterIPs")]
    pub cluster_ips: Vec<String>,
    /// Ports.
    pub ports: Vec<ServicePortView>,
}

/// One service port.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct ServicePortView {
    /// `TCP` (the default), `UDP`, `SCTP`.
    pub protocol: Option<String>,
    /// The service port.
    pub port: i64,
}

/// An object the recorder cannot use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{kind} without metadata.{field}")]
pub struct Malformed {
    /// Object kind.
    pub kind: &'static str,
    /// The field that is missing.
    pub field: &'static str,
}

fn required<'a>(
    m: &'a ObjectMeta,
    kind: &'static str,
) -> Result<(&'a str, &'a str, &'a str), Malformed> {
    let get = |v: &'a Option<String>, field| {
        v.as_deref()
            .filter(|s| !s.is_empty())
            .ok_or(Malformed { kind, field })
    };
    Ok((
        get(&m.uid, "uid")?,
        get(&m.namespace, "namespace")?,
        get(&m.name, "name")?,
    ))
}

/// Splits a container status' `containerID` (`containerd://<id>`, `cri-o://<id>`,
/// `docker://<id>`) into the runtime, named as cgroup paths name it ([`crate::node`]), and
/// the id. `None` for an empty id.
pub fn split_container_id(s: &str) -> Option<(Option<String>, &str)> {
    let (runtime, id) = match s.split_once("://") {
        Some((scheme, id)) => {
            let rt = match scheme {
                "cri-o" | "crio" => "cri-o",
                other => other,
            };
            (Some(rt.to_string()), id)
        }
        None => (None, s),
    };
    (!id.is_empty()).then_some((runtime, id))
}

/// A controller reference (`metadata.ownerReferences[]` with `controller: true`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OwnerRef {
    /// Kind, e.g. `ReplicaSet`.
    pub kind: String,
    /// Name.
    pub name: String,
    /// Uid (names are reused after deletion, uids are not).
    pub uid: String,
}

/// The controller of an object, if it has one.
pub fn controller_of(m: &ObjectMeta) -> Option<OwnerRef> {
    m.owner_references
        .as_ref()?
        .iter()
        .find(|o| o.controller == Some(true))
        .map(|o| OwnerRef {
            kind: o.kind.clone(),
            name: o.name.clone(),
            uid: o.uid.clone(),
        })
}

/// A workload: what a pod belongs to, in the terms people deploy with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Workload {
    /// `Deployment`, `StatefulSet`, `DaemonSet`, `CronJob`, `Job`, `ReplicaSet`, ...
    pub kind: String,
    /// Its name.
    pub name: String,
}

/// A pod as the recorder writes it, before workload resolution.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodInfo {
    /// The pod entity (`workload_*` unset).
    pub meta: PodMeta,
    /// Its containers that have an id.
    pub containers: Vec<ContainerMeta>,
    /// Its controller, to resolve into a workload.
    pub owner: Option<OwnerRef>,
    /// Whether it has terminated (`Succeeded`, `Failed`): its IPs are free for reuse.
    pub terminated: bool,
}

/// Converts a pod. IPs that do not parse are skipped; a terminated pod lists none (the
/// API keeps its last addresses in its status, but the node may already have given them to
/// another pod); host-network pods list the node's addresses, as the API does.
pub fn pod_info(p: &PodView) -> Result<PodInfo, Malformed> {
    let (uid, namespace, name) = required(&p.metadata, "Pod")?;
    let terminated = matches!(p.status.phase.as_deref(), Some("Succeeded" | "Failed"));
    let mut ips: Vec<IpAddr> = Vec::new();
    if !terminated {
        let listed = p.status.pod_ips.iter().map(|i| i.ip.as_str());
        for ip in listed.chain(p.status.pod_ip.as_deref()) {
            if let Ok(a) = ip.parse()
                && !ips.contains(&a)
            {
                ips.push(a);
            }
        }
    }
    let labels = p
        .metadata
        .labels
        .iter()
        .flatten()
        .take(MAX_LABELS)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let statuses = p
        .status
        .init_container_statuses
        .iter()
        .chain(&p.status.container_statuses)
        .chain(&p.status.ephemeral_container_statuses);
    let mut containers: Vec<ContainerMeta> = Vec::new();
    for c in statuses {
        let Some((runtime, id)) = c.container_id.as_deref().and_then(split_container_id) else {
            continue;
        };
        if containers.len() >= MAX_CONTAINERS || containers.iter().any(|k| k.id == id) {
            continue;
        }
        containers.push(ContainerMeta {
            id: id.to_string(),
            runtime,
            name: (!c.name.is_empty()).then(|| c.name.clone()),
            pod_uid: Some(uid.to_string()),
            cgroup_id: None,
            cgroup_path: None,
        });
    }
    Ok(PodInfo {
        meta: PodMeta {
            uid: uid.to_string(),
            namespace: namespace.to_string(),
            name: name.to_string(),
            node: p.spec.node_name.clone(),
            ips,
            labels,
            workload_kind: None,
            workload_name: None,
            host_network: p.spec.host_network == Some(true),
            netns: None,
        },
        containers,
        owner: controller_of(&p.metadata),
        terminated,
    })
}

/// IP protocol number of a service port's protocol.
pub fn ip_proto(protocol: Option<&str>) -> Option<u8> {
    match protocol.unwrap_or("TCP") {
        "TCP" => Some(6),
        "UDP" => Some(17),
        "SCTP" => Some(132),
        _ => None,
    }
}

/// Converts a service; `Ok(None)` for one without a cluster IP (headless, `ExternalName`):
/// no traffic is addressed to it, so there is nothing to name.
pub fn service_meta(s: &ServiceView) -> Result<Option<ServiceMeta>, Malformed> {
    let (_, namespace, name) = required(&s.metadata, "Service")?;
    if s.spec.type_.as_deref() == Some("ExternalName") {
        return Ok(None);
    }
    let mut cluster_ips: Vec<IpAddr> = Vec::new();
    for ip in s
        .spec
        .cluster_ips
        .iter()
        .map(String::as_str)
        .chain(s.spec.cluster_ip.as_deref())
    {
        // "None" (headless) and "" do not parse.
        if let Ok(a) = ip.parse()
            && !cluster_ips.contains(&a)
        {
            cluster_ips.push(a);
        }
    }
    if cluster_ips.is_empty() {
        return Ok(None);
    }
    let ports = s
        .spec
        .ports
        .iter()
        .filter_map(|p| {
            Some((
                ip_proto(p.protocol.as_deref())?,
                u16::try_from(p.port).ok()?,
            ))
        })
        .collect();
    Ok(Some(ServiceMeta {
        namespace: namespace.to_string(),
        name: name.to_string(),
        cluster_ips,
        ports,
    }))
}

/// Why an owner could not be looked up.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct LookupError(pub String);

/// Looks up the controller of a ReplicaSet or Job (the API, or a fake in tests).
pub trait OwnerLookup {
    /// The controller of `kind` `namespace`/`name`; `Ok(None)` when it has none or is gone.
    fn controller(
        &mut self,
        kind: &str,
        namespace: &str,
        name: &str,
    ) -> impl Future<Output = Result<Option<OwnerRef>, LookupError>>;
}

/// Workloads of intermediate controllers (ReplicaSets, Jobs) by uid, bounded: the oldest
/// entry goes first when full. Entries never go stale: a ReplicaSet's controller does not
/// change (adoption by another Deployment is possible but is not followed).
#[derive(Debug)]
pub struct OwnerCache {
    map: HashMap<String, Workload>,
    order: VecDeque<String>,
    cap: usize,
    /// Lookups made (cache misses).
    pub lookups: u64,
    /// Lookups that failed (the intermediate controller is then used, and not cached).
    pub failures: u64,
}

impl OwnerCache {
    /// A cache of at most `cap` entries.
    pub fn new(cap: usize) -> Self {
        OwnerCache {
            map: HashMap::new(),
            order: VecDeque::new(),
            cap: cap.max(1),
            lookups: 0,
            failures: 0,
        }
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    fn insert(&mut self, uid: String, w: Workload) {
        if self.map.len() >= self.cap
            && let Some(old) = self.order.pop_front()
        {
            self.map.remove(&old);
        }
        self.order.push_back(uid.clone());
        self.map.insert(uid, w);
    }

    /// The workload of a pod whose controller is `owner`: a ReplicaSet resolves to its
    /// Deployment, a Job to its CronJob (or whatever else controls them, e.g. an Argo
    /// Rollout); a ReplicaSet or Job without a controller, and every other controller
    /// (StatefulSet, DaemonSet, ReplicationController, a custom resource, the Node of a
    /// static pod), is the workload itself. A failed lookup falls back to the intermediate
    /// controller and is retried at the pod's next change.
    pub async fn resolve<L: OwnerLookup>(
        &mut self,
        owner: Option<&OwnerRef>,
        namespace: &str,
        lookup: &mut L,
    ) -> Option<Workload> {
        let o = owner?;
        let itself = Workload {
            kind: o.kind.clone(),
            name: o.name.clone(),
        };
        if o.kind != "ReplicaSet" && o.kind != "Job" {
            return Some(itself);
        }
        if let Some(w) = self.map.get(&o.uid) {
            return Some(w.clone());
        }
        self.lookups += 1;
        match lookup.controller(&o.kind, namespace, &o.name).await {
            Ok(parent) => {
                let w = parent.map_or(itself, |p| Workload {
                    kind: p.kind,
                    name: p.name,
                });
                self.insert(o.uid.clone(), w.clone());
                Some(w)
            }
            Err(_) => {
                self.failures += 1;
                Some(itself)
            }
        }
    }
}

/// What applying an object to a [`Store`] changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Applied<V> {
    /// Same as before: nothing to write.
    Unchanged,
    /// New.
    Added,
    /// Changed; the old value.
    Changed(V),
    /// New, but the store is full: not tracked.
    Full,
}

/// Objects by key with re-list bookkeeping, bounded.
///
/// A watcher re-lists after a desync (410 Gone) or a restart: `Init`, one `InitApply` per
/// object, `InitDone`. Applying the listed objects reports only what differs from what is
/// held (no duplicates); [`Store::end_relist`] returns what the list no longer had (deleted
/// while the watch was broken: nothing is lost).
#[derive(Debug)]
pub struct Store<K, V> {
    items: HashMap<K, V>,
    cap: usize,
    relist: Option<HashSet<K>>,
    /// Objects refused because the store was full.
    pub refused: u64,
}

impl<K: Clone + Eq + Hash, V: Clone + PartialEq> Store<K, V> {
    /// A store of at most `cap` objects.
    pub fn new(cap: usize) -> Self {
        Store {
            items: HashMap::new(),
            cap,
            relist: None,
            refused: 0,
        }
    }

    /// Objects held.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The object under `k`.
    pub fn get(&self, k: &K) -> Option<&V> {
        self.items.get(k)
    }

    /// Sets `k` to `v`.
    pub fn apply(&mut self, k: K, v: V) -> Applied<V> {
        if let Some(seen) = &mut self.relist {
            seen.insert(k.clone());
        }
        let full = self.items.len() >= self.cap;
        match self.items.get_mut(&k) {
            Some(old) if *old == v => Applied::Unchanged,
            Some(old) => Applied::Changed(std::mem::replace(old, v)),
            None if full => {
                self.refused += 1;
                Applied::Full
            }
            None => {
                self.items.insert(k, v);
                Applied::Added
            }
        }
    }

    /// Removes `k`; what it held.
    pub fn remove(&mut self, k: &K) -> Option<V> {
        if let Some(seen) = &mut self.relist {
            seen.remove(k);
        }
        self.items.remove(k)
    }

    /// A re-list starts.
    pub fn begin_relist(&mut self) {
        self.relist = Some(HashSet::new());
    }

    /// The re-list is complete: removes and returns what it did not list.
    pub fn end_relist(&mut self) -> Vec<(K, V)> {
        let Some(seen) = self.relist.take() else {
            return Vec::new();
        };
        let gone: Vec<K> = self
            .items
            .keys()
            .filter(|k| !seen.contains(k))
            .cloned()
            .collect();
        gone.into_iter()
            .filter_map(|k| self.items.remove(&k).map(|v| (k, v)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_ids_of_each_runtime() {
        let id = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
        type Case<'a> = (&'a str, Option<(Option<&'a str>, &'a str)>);
        let cases: &[Case<'_>] = &[
            ("containerd://abc123", Some((Some("containerd"), "abc123"))),
            ("cri-o://abc123", Some((Some("cri-o"), "abc123"))),
            ("docker://abc123", Some((Some("docker"), "abc123"))),
            ("abc123", Some((None, "abc123"))),
            ("containerd://", None),
            ("", None),
        ];
        for (s, want) in cases {
            let got = split_container_id(s);
            assert_eq!(got.as_ref().map(|(r, i)| (r.as_deref(), *i)), *want, "{s}");
        }
        let full = format!("containerd://{id}");
        let (rt, got) = split_container_id(&full).unwrap();
        assert_eq!((rt.as_deref(), got), (Some("containerd"), id));
    }

    fn pod_json(extra_status: serde_json::Value) -> PodView {
        serde_json::from_value(serde_json::json!({
            "metadata": {
                "name": "web-7d4b9c-xk2lp", "namespace": "shop", "uid": "u-1",
                "labels": {"app": "web", "pod-template-hash": "7d4b9c"},
                "ownerReferences": [
                    {"apiVersion": "v1", "kind": "Node", "name": "n", "uid": "n-1"},
                    {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-7d4b9c",
                     "uid": "rs-1", "controller": true, "blockOwnerDeletion": true}
                ]
            },
            "spec": {"nodeName": "node-1", "containers": [{"name": "web", "image": "nginx"}]},
            "status": extra_status
        }))
        .unwrap()
    }

    #[test]
    fn pods_convert_with_ips_containers_and_controller() {
        let p = pod_json(serde_json::json!({
            "phase": "Running",
            "podIP": "10.244.0.5",
            "podIPs": [{"ip": "10.244.0.5"}, {"ip": "fd00::5"}, {"ip": "garbage"}],
            "containerStatuses": [
                {"name": "web", "containerID": "containerd://c1", "ready": true},
                {"name": "sidecar", "ready": false}
            ],
            "initContainerStatuses": [{"name": "init", "containerID": "containerd://c0"}]
        }));
        let i = pod_info(&p).unwrap();
        assert_eq!(i.meta.uid, "u-1");
        assert_eq!(i.meta.namespace, "shop");
        assert_eq!(i.meta.node.as_deref(), Some("node-1"));
        assert_eq!(
            i.meta.ips,
            vec![
                "10.244.0.5".parse::<IpAddr>().unwrap(),
                "fd00::5".parse().unwrap()
            ]
        );
        assert_eq!(
            i.meta.labels,
            vec![
                ("app".to_string(), "web".to_string()),
                ("pod-template-hash".into(), "7d4b9c".into())
            ]
        );
        let ids: Vec<_> = i
            .containers
            .iter()
            .map(|c| (c.id.as_str(), c.name.as_deref()))
            .collect();
        assert_eq!(ids, vec![("c0", Some("init")), ("c1", Some("web"))]);
        assert!(
            i.containers
                .iter()
                .all(|c| c.pod_uid.as_deref() == Some("u-1"))
        );
        assert_eq!(
            i.owner,
            Some(OwnerRef {
                kind: "ReplicaSet".into(),
                name: "web-7d4b9c".into(),
                uid: "rs-1".into()
            })
        );
        assert!(!i.terminated);
    }

    #[test]
    fn pending_terminated_and_malformed_pods() {
        let pending = pod_info(&pod_json(serde_json::json!({"phase": "Pending"}))).unwrap();
        assert!(pending.meta.ips.is_empty() && pending.containers.is_empty());
        let done = pod_info(&pod_json(serde_json::json!({
            "phase": "Succeeded", "podIP": "10.244.0.9"
        })))
        .unwrap();
        assert!(done.terminated && done.meta.ips.is_empty());
        let no_uid: PodView = serde_json::from_value(
            serde_json::json!({"metadata": {"name": "x", "namespace": "y"}}),
        )
        .unwrap();
        assert_eq!(
            pod_info(&no_uid).unwrap_err(),
            Malformed {
                kind: "Pod",
                field: "uid"
            }
        );
        // Fields of unexpected types fail deserialization (the watcher reports it), not here.
        assert!(serde_json::from_value::<PodView>(serde_json::json!({"spec": 5})).is_err());
    }

    #[test]
    fn services_with_and_without_cluster_ips() {
        let svc = |spec: serde_json::Value| -> ServiceView {
            serde_json::from_value(serde_json::json!({
                "metadata": {"name": "web", "namespace": "shop", "uid": "s-1"},
                "spec": spec
            }))
            .unwrap()
        };
        let s = service_meta(&svc(serde_json::json!({
            "type": "ClusterIP", "clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10", "fd00:96::a"],
            "ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"},
                      {"port": 8080}, {"port": 99999}]
        })))
        .unwrap()
        .unwrap();
        assert_eq!(
            s.cluster_ips,
            vec![
                "10.96.0.10".parse::<IpAddr>().unwrap(),
                "fd00:96::a".parse().unwrap()
            ]
        );
        assert_eq!(s.ports, vec![(17, 53), (6, 53), (6, 8080)]);
        assert_eq!(
            service_meta(&svc(serde_json::json!({"clusterIP": "None"}))).unwrap(),
            None
        );
        assert_eq!(
            service_meta(&svc(
                serde_json::json!({"type": "ExternalName", "externalName": "example.com"})
            ))
            .unwrap(),
            None
        );
    }

    /// Controllers by (kind, name); counts calls.
    struct FakeLookup {
        parents: HashMap<(String, String), OwnerRef>,
        failing: HashSet<String>,
        calls: usize,
    }

    impl OwnerLookup for FakeLookup {
        async fn controller(
            &mut self,
            kind: &str,
            _namespace: &str,
            name: &str,
        ) -> Result<Option<OwnerRef>, LookupError> {
            self.calls += 1;
            if self.failing.contains(name) {
                return Err(LookupError("forbidden".into()));
            }
            Ok(self
                .parents
                .get(&(kind.to_string(), name.to_string()))
                .cloned())
        }
    }

    fn owner(kind: &str, name: &str) -> OwnerRef {
        OwnerRef {
            kind: kind.into(),
            name: name.into(),
            uid: format!("uid-{name}"),
        }
    }

    fn block_on<F: Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn owners_resolve_to_workloads_and_are_cached() {
        let mut l = FakeLookup {
            parents: HashMap::from([
                (
                    ("ReplicaSet".into(), "web-7d4b9c".into()),
                    owner("Deployment", "web"),
                ),
                (
                    ("Job".into(), "backup-28391".into()),
                    owner("CronJob", "backup"),
                ),
            ]),
            failing: HashSet::from(["flaky-rs".to_string()]),
            calls: 0,
        };
        let mut c = OwnerCache::new(2);
        let w = |k: &str, n: &str| {
            Some(Workload {
                kind: k.into(),
                name: n.into(),
            })
        };
        block_on(async {
            let rs = owner("ReplicaSet", "web-7d4b9c");
            assert_eq!(
                c.resolve(Some(&rs), "ns", &mut l).await,
                w("Deployment", "web")
            );
            assert_eq!(
                c.resolve(Some(&rs), "ns", &mut l).await,
                w("Deployment", "web")
            );
            assert_eq!(l.calls, 1, "cached");
            let job = owner("Job", "backup-28391");
            assert_eq!(
                c.resolve(Some(&job), "ns", &mut l).await,
                w("CronJob", "backup")
            );
            // A Job of its own, a StatefulSet, a DaemonSet, a bare pod.
            let lone = owner("Job", "migrate");
            assert_eq!(
                c.resolve(Some(&lone), "ns", &mut l).await,
                w("Job", "migrate")
            );
            let sts = owner("StatefulSet", "db");
            assert_eq!(
                c.resolve(Some(&sts), "ns", &mut l).await,
                w("StatefulSet", "db")
            );
            let ds = owner("DaemonSet", "agent");
            assert_eq!(
                c.resolve(Some(&ds), "ns", &mut l).await,
                w("DaemonSet", "agent")
            );
            assert_eq!(c.resolve(None, "ns", &mut l).await, None);
            assert_eq!(l.calls, 3, "StatefulSets and DaemonSets need no lookup");
            // Bounded: the oldest entry (the ReplicaSet) was evicted.
            assert_eq!(c.len(), 2);
            assert_eq!(
                c.resolve(Some(&rs), "ns", &mut l).await,
                w("Deployment", "web")
            );
            assert_eq!(l.calls, 4);
            // A failed lookup falls back and is retried next time.
            let flaky = owner("ReplicaSet", "flaky-rs");
            assert_eq!(
                c.resolve(Some(&flaky), "ns", &mut l).await,
                w("ReplicaSet", "flaky-rs")
            );
            assert_eq!(
                c.resolve(Some(&flaky), "ns", &mut l).await,
                w("ReplicaSet", "flaky-rs")
            );
            assert_eq!((l.calls, c.failures), (6, 2));
        });
    }

    #[test]
    fn store_relists_without_duplicates_or_losses_and_is_bounded() {
        let mut s: Store<String, u32> = Store::new(3);
        assert_eq!(s.apply("a".into(), 1), Applied::Added);
        assert_eq!(s.apply("b".into(), 1), Applied::Added);
        assert_eq!(s.apply("a".into(), 1), Applied::Unchanged);
        assert_eq!(s.apply("a".into(), 2), Applied::Changed(1));
        s.begin_relist();
        assert_eq!(s.apply("a".into(), 2), Applied::Unchanged);
        assert_eq!(s.apply("c".into(), 1), Applied::Added);
        assert_eq!(s.end_relist(), vec![("b".to_string(), 1)]);
        assert_eq!(s.end_relist(), vec![], "only once");
        assert_eq!(s.len(), 2);
        assert_eq!(s.apply("d".into(), 1), Applied::Added);
        assert_eq!(s.apply("e".into(), 1), Applied::Full);
        assert_eq!(s.refused, 1);
        assert_eq!(s.remove(&"d".to_string()), Some(1));
        assert_eq!(s.apply("e".into(), 1), Applied::Added);
    }
}
