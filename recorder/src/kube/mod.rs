//! The Kubernetes metadata source: pods of this node, their workloads and containers, and
//! the cluster's services, as timestamped metadata records for the event loop.
//!
//! - Pods are watched with a field selector `spec.nodeName=<node>`, services cluster-wide,
//!   with kube-runtime's [`watcher`]: it lists, then watches from the list's
//!   resourceVersion, follows bookmarks, re-lists after `410 Gone`, and is retried with
//!   kube-runtime's default backoff (0.8 s to 30 s, jittered) whatever fails, so an API
//!   server restart or an expired watch costs a re-list, never the source.
//! - A pod's controller is resolved into its workload ([`model::OwnerCache::resolve`]):
//!   ReplicaSet → Deployment and Job → CronJob through a metadata-only GET of the
//!   intermediate controller, cached by uid.
//! - The stores ([`model::Store`]) keep what was last written, so that a change is written
//!   once (a pod's status changes often; what the archive holds rarely does) and a re-list
//!   writes only what differs, and deletes what it no longer lists.
//! - Everything is bounded: pods, services and cached owners ([`Limits`]), labels and
//!   containers per pod ([`model::MAX_LABELS`], [`model::MAX_CONTAINERS`]), the channel to
//!   the loop (the watcher waits when it is full).
//! - Bad input (an object that does not deserialize, a pod without uid) is counted in
//!   [`KubeStats`] and logged at most once a minute, never a panic.
//!
//! The recorder's loop is synchronous; the source runs on its own thread with a
//! current-thread tokio runtime and talks to the loop through a crossbeam channel.
//! Interfaces are named by pod ([`KubeSource::describer`]) through the pod IPs their veth
//! peers hold ([`crate::netns`]) or their host routes point at
//! ([`crate::ifaces::host_routes`]).

pub mod model;

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result};
use crossbeam_channel::{Receiver, Sender};
use futures::StreamExt;
use juno_archive::{ContainerMeta, Entity, MetaOp, MetaRecord, PodMeta, ServiceMeta};
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::batch::v1::Job;
use kube::runtime::watcher::{self, Event};
use kube::runtime::{WatchStreamExt, watcher as watch};
use kube::{Api, Client};

use crate::ifaces::Iface;
use crate::netns::{PeerView, Peers};
use crate::recorder::Describer;
use model::{Applied, LookupError, OwnerCache, OwnerLookup, OwnerRef, PodView, ServiceView, Store};

/// Where the API server's address and credentials come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ApiConfig {
    /// `--no-kube`: no Kubernetes metadata.
    Disabled,
    /// The pod's ServiceAccount (`KUBERNETES_SERVICE_HOST`/`_PORT` and the token and CA under
    /// /var/run/secrets/kubernetes.io/serviceaccount); without them the recorder runs
    /// standalone.
    InCluster,
    /// `--kubeconfig PATH` (its current context).
    Kubeconfig(PathBuf),
}

impl ApiConfig {
    /// From the command line's `--no-kube` and `--kubeconfig`.
    pub fn from_flags(no_kube: bool, kubeconfig: Option<PathBuf>) -> Self {
        match (no_kube, kubeconfig) {
            (true, _) => ApiConfig::Disabled,
            (false, Some(p)) => ApiConfig::Kubeconfig(p),
            (false, None) => ApiConfig::InCluster,
        }
    }

    /// The client configuration: `Ok(None)` when disabled or when not running in a cluster
    /// (logged once); an error when an explicit `--kubeconfig` cannot be used.
    pub fn load(&self) -> Result<Option<kube::Config>> {
        match self {
            ApiConfig::Disabled => Ok(None),
            ApiConfig::InCluster => match kube::Config::incluster() {
                Ok(c) => Ok(Some(c)),
                Err(e) => {
                    crate::log(format!(
                        "no Kubernetes API configuration ({e}); recording without pod metadata (interfaces, processes and containers are named from the node: netns, interface, cgroup)"
                    ));
                    Ok(None)
                }
            },
            ApiConfig::Kubeconfig(path) => {
                let kc = kube::config::Kubeconfig::read_from(path)
                    .with_context(|| format!("reading kubeconfig {}", path.display()))?;
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .context("tokio runtime")?;
                let c = rt
                    .block_on(kube::Config::from_custom_kubeconfig(
                        kc,
                        &kube::config::KubeConfigOptions::default(),
                    ))
                    .with_context(|| format!("using kubeconfig {}", path.display()))?;
                Ok(Some(c))
            }
        }
    }
}

/// How much the source tracks at most. What does not fit is counted ([`KubeStats::refused`])
/// and not written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Pods of this node (the kubelet's default maximum is 110).
    pub pods: usize,
    /// Services of the cluster.
    pub services: usize,
    /// Cached ReplicaSet and Job owners.
    pub owners: usize,
    /// Records waiting for the loop.
    pub channel: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            pods: 2048,
            services: 50_000,
            owners: 4096,
            channel: 8192,
        }
    }
}

/// Counters of the source, readable from any thread.
#[derive(Debug, Default)]
pub struct KubeStats {
    /// Pods tracked now.
    pub pods: AtomicU64,
    /// Services tracked now.
    pub services: AtomicU64,
    /// Pod watch events handled.
    pub pod_events: AtomicU64,
    /// Service watch events handled.
    pub service_events: AtomicU64,
    /// Objects skipped as malformed (missing uid, name or namespace).
    pub malformed: AtomicU64,
    /// Watch or list errors (including `410 Gone` and bodies that do not deserialize).
    pub watch_errors: AtomicU64,
    /// Re-lists started (the first list of each watcher included).
    pub relists: AtomicU64,
    /// Objects not tracked because a limit was reached.
    pub refused: AtomicU64,
    /// Owner lookups (cache misses).
    pub owner_lookups: AtomicU64,
    /// Owner lookups that failed.
    pub owner_failures: AtomicU64,
    /// Records sent to the loop.
    pub records: AtomicU64,
}

impl KubeStats {
    fn add(c: &AtomicU64, n: u64) {
        c.fetch_add(n, Ordering::Relaxed);
    }

    /// One line for the log.
    pub fn summary(&self) -> String {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        format!(
            "{} pods, {} services tracked; {} pod and {} service events, {} records, {} re-lists, {} watch errors, {} malformed objects, {} refused at limits, owner lookups {} ({} failed)",
            g(&self.pods),
            g(&self.services),
            g(&self.pod_events),
            g(&self.service_events),
            g(&self.records),
            g(&self.relists),
            g(&self.watch_errors),
            g(&self.malformed),
            g(&self.refused),
            g(&self.owner_lookups),
            g(&self.owner_failures),
        )
    }
}

/// A pod as named on interfaces.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodRef {
    /// Uid.
    pub uid: String,
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
}

/// Pod IPs of this node to pods, shared between the source (writer) and the describer.
/// Host-network pods are left out (their address is the node's), as are terminated pods.
#[derive(Clone, Debug, Default)]
pub struct PodIps(Arc<RwLock<HashMap<IpAddr, PodRef>>>);

impl PodIps {
    /// The pod holding `ip`.
    pub fn get(&self, ip: &IpAddr) -> Option<PodRef> {
        self.0.read().ok()?.get(ip).cloned()
    }

    fn set(&self, old: Option<&PodMeta>, new: Option<&PodMeta>) {
        let Ok(mut m) = self.0.write() else {
            return;
        };
        if let Some(o) = old {
            for ip in &o.ips {
                // A reused address may already belong to a newer pod.
                if m.get(ip).is_some_and(|p| p.uid == o.uid) {
                    m.remove(ip);
                }
            }
        }
        if let Some(n) = new.filter(|n| !n.host_network) {
            for ip in &n.ips {
                m.insert(
                    *ip,
                    PodRef {
                        uid: n.uid.clone(),
                        namespace: n.namespace.clone(),
                        name: n.name.clone(),
                    },
                );
            }
        }
    }
}

/// A describer naming an interface by its pod: the pod holding one of the peer's
/// addresses (what the pod's side of a veth shows, [`crate::netns`]), else the pod whose
/// address one of the interface's host routes points at (routed CNIs, for when the peer
/// cannot be asked). An interface of no known pod is described by its peer alone.
///
/// `peer` looks at an interface's peer ([`crate::netns::Peers::view`] on a node, a fake in
/// tests); `routes` lists `(ifindex, address)` host routes ([`crate::ifaces::host_routes`]),
/// called at most every 250 ms, one call serving every interface asked about in that time.
pub fn describer(
    ips: PodIps,
    mut peer: impl FnMut(&Iface) -> Option<PeerView> + Send + 'static,
    mut routes: impl FnMut() -> Vec<(u32, IpAddr)> + Send + 'static,
) -> Describer {
    let mut cache: Option<(Instant, Vec<(u32, IpAddr)>)> = None;
    Box::new(move |i: &Iface| {
        let view = peer(i);
        let by_peer = view
            .as_ref()
            .and_then(|v| v.addrs.iter().find_map(|ip| ips.get(ip)));
        let pod = by_peer.or_else(|| {
            if cache
                .as_ref()
                .is_none_or(|(t, _)| t.elapsed() >= Duration::from_millis(250))
            {
                cache = Some((Instant::now(), routes()));
            }
            let (_, rs) = cache.as_ref()?;
            rs.iter()
                .filter(|(idx, _)| *idx == i.ifindex)
                .find_map(|(_, ip)| ips.get(ip))
        });
        if pod.is_none() && view.is_none() {
            return None;
        }
        // The peer's namespace and addresses (and its description, for no known pod).
        let mut owner = view.as_ref().map(PeerView::owner).unwrap_or_default();
        if let Some(p) = pod {
            owner.description = format!("pod {}/{}", p.namespace, p.name);
            owner.pod_uid = Some(p.uid);
        }
        Some(owner)
    })
}

/// Logs the first occurrence, then at most once a minute with how many were not logged.
#[derive(Debug, Default)]
struct Throttle {
    last: Option<Instant>,
    quiet: u64,
}

impl Throttle {
    fn log(&mut self, msg: impl std::fmt::Display) {
        if self
            .last
            .is_some_and(|t| t.elapsed() < Duration::from_secs(60))
        {
            self.quiet += 1;
            return;
        }
        let more = std::mem::take(&mut self.quiet);
        if more > 0 {
            crate::log(format!(
                "kubernetes: {msg} (and {more} more since the last report)"
            ));
        } else {
            crate::log(format!("kubernetes: {msg}"));
        }
        self.last = Some(Instant::now());
    }
}

/// How long an owner lookup may take (the client sets no read timeout of its own).
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(10);

/// The controllers of ReplicaSets and Jobs, from the API (metadata only).
struct ApiLookup {
    client: Client,
}

impl OwnerLookup for ApiLookup {
    async fn controller(
        &mut self,
        kind: &str,
        namespace: &str,
        name: &str,
    ) -> Result<Option<OwnerRef>, LookupError> {
        let c = self.client.clone();
        let get = async {
            match kind {
                "ReplicaSet" => Api::<ReplicaSet>::namespaced(c, namespace)
                    .get_metadata_opt(name)
                    .await
                    .map(|m| m.map(|m| m.metadata)),
                "Job" => Api::<Job>::namespaced(c, namespace)
                    .get_metadata_opt(name)
                    .await
                    .map(|m| m.map(|m| m.metadata)),
                _ => Ok(None),
            }
        };
        let meta = tokio::time::timeout(LOOKUP_TIMEOUT, get)
            .await
            .map_err(|_| LookupError(format!("{kind} {namespace}/{name}: timed out")))?
            .map_err(|e| LookupError(format!("{kind} {namespace}/{name}: {e}")))?;
        Ok(meta.as_ref().and_then(model::controller_of))
    }
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

fn record(op: MetaOp, entity: Entity) -> MetaRecord {
    MetaRecord {
        ts_ns: now_ns(),
        op,
        entity,
    }
}

/// A pod as last written.
#[derive(Clone, Debug, PartialEq, Eq)]
struct PodEntry {
    meta: PodMeta,
    containers: Vec<ContainerMeta>,
}

/// The source's state: what was last written, and the owner cache.
struct State<L> {
    pods: Store<String, PodEntry>,
    services: Store<(String, String), ServiceMeta>,
    owners: OwnerCache,
    lookup: L,
    ips: PodIps,
    stats: Arc<KubeStats>,
    errors: Throttle,
    malformed: Throttle,
    full: Throttle,
}

impl<L: OwnerLookup> State<L> {
    fn new(limits: Limits, lookup: L, ips: PodIps, stats: Arc<KubeStats>) -> Self {
        State {
            pods: Store::new(limits.pods),
            services: Store::new(limits.services),
            owners: OwnerCache::new(limits.owners),
            lookup,
            ips,
            stats,
            errors: Throttle::default(),
            malformed: Throttle::default(),
            full: Throttle::default(),
        }
    }

    fn gauges(&self) {
        self.stats
            .pods
            .store(self.pods.len() as u64, Ordering::Relaxed);
        self.stats
            .services
            .store(self.services.len() as u64, Ordering::Relaxed);
        self.stats
            .owner_lookups
            .store(self.owners.lookups, Ordering::Relaxed);
        self.stats
            .owner_failures
            .store(self.owners.failures, Ordering::Relaxed);
        self.stats
            .refused
            .store(self.pods.refused + self.services.refused, Ordering::Relaxed);
    }

    fn watch_error(&mut self, what: &str, e: &watcher::Error) {
        KubeStats::add(&self.stats.watch_errors, 1);
        self.errors.log(format!("{what} watch: {e} (retrying)"));
    }

    fn deleted_pod(&mut self, old: PodEntry, out: &mut Vec<MetaRecord>) {
        self.ips.set(Some(&old.meta), None);
        for c in old.containers {
            out.push(record(MetaOp::Delete, Entity::Container(c)));
        }
        out.push(record(MetaOp::Delete, Entity::Pod(old.meta)));
    }

    async fn pod_applied(&mut self, p: &PodView, out: &mut Vec<MetaRecord>) {
        let info = match model::pod_info(p) {
            Ok(i) => i,
            Err(e) => {
                KubeStats::add(&self.stats.malformed, 1);
                self.malformed.log(format!("skipped a {e}"));
                return;
            }
        };
        let mut meta = info.meta;
        if let Some(w) = self
            .owners
            .resolve(info.owner.as_ref(), &meta.namespace, &mut self.lookup)
            .await
        {
            meta.workload_kind = Some(w.kind);
            meta.workload_name = Some(w.name);
        }
        let uid = meta.uid.clone();
        let new = PodEntry {
            meta,
            containers: info.containers,
        };
        match self.pods.apply(uid, new.clone()) {
            Applied::Unchanged => {}
            Applied::Full => self.full.log(format!(
                "not tracking pod {}/{}: the limit of pods is reached",
                new.meta.namespace, new.meta.name
            )),
            Applied::Added => {
                self.ips.set(None, Some(&new.meta));
                out.push(record(MetaOp::Upsert, Entity::Pod(new.meta)));
                for c in new.containers {
                    out.push(record(MetaOp::Upsert, Entity::Container(c)));
                }
            }
            Applied::Changed(old) => {
                self.ips.set(Some(&old.meta), Some(&new.meta));
                if old.meta != new.meta {
                    out.push(record(MetaOp::Upsert, Entity::Pod(new.meta)));
                }
                for c in &new.containers {
                    if !old.containers.contains(c) {
                        out.push(record(MetaOp::Upsert, Entity::Container(c.clone())));
                    }
                }
                for c in old.containers {
                    if !new.containers.iter().any(|n| n.id == c.id) {
                        out.push(record(MetaOp::Delete, Entity::Container(c)));
                    }
                }
            }
        }
    }

    async fn pod_event(&mut self, ev: watcher::Result<Event<PodView>>) -> Vec<MetaRecord> {
        let mut out = Vec::new();
        match ev {
            Ok(Event::Init) => {
                KubeStats::add(&self.stats.relists, 1);
                self.pods.begin_relist();
            }
            Ok(Event::InitApply(p) | Event::Apply(p)) => {
                KubeStats::add(&self.stats.pod_events, 1);
                self.pod_applied(&p, &mut out).await;
            }
            Ok(Event::Delete(p)) => {
                KubeStats::add(&self.stats.pod_events, 1);
                if let Some(old) = p.metadata.uid.as_ref().and_then(|u| self.pods.remove(u)) {
                    self.deleted_pod(old, &mut out);
                }
            }
            Ok(Event::InitDone) => {
                for (_, old) in self.pods.end_relist() {
                    self.deleted_pod(old, &mut out);
                }
            }
            Err(e) => self.watch_error("pod", &e),
        }
        self.gauges();
        out
    }

    fn service_event(&mut self, ev: watcher::Result<Event<ServiceView>>) -> Vec<MetaRecord> {
        let mut out = Vec::new();
        let key = |s: &ServiceView| Some((s.metadata.namespace.clone()?, s.metadata.name.clone()?));
        match ev {
            Ok(Event::Init) => {
                KubeStats::add(&self.stats.relists, 1);
                self.services.begin_relist();
            }
            Ok(Event::InitApply(s) | Event::Apply(s)) => {
                KubeStats::add(&self.stats.service_events, 1);
                match model::service_meta(&s) {
                    Err(e) => {
                        KubeStats::add(&self.stats.malformed, 1);
                        self.malformed.log(format!("skipped a {e}"));
                    }
                    // Headless or ExternalName (possibly after a change of type).
                    Ok(None) => {
                        if let Some(old) = key(&s).and_then(|k| self.services.remove(&k)) {
                            out.push(record(MetaOp::Delete, Entity::Service(old)));
                        }
                    }
                    Ok(Some(m)) => {
                        let k = (m.namespace.clone(), m.name.clone());
                        match self.services.apply(k, m.clone()) {
                            Applied::Added | Applied::Changed(_) => {
                                out.push(record(MetaOp::Upsert, Entity::Service(m)));
                            }
                            Applied::Full => self.full.log(format!(
                                "not tracking service {}/{}: the limit of services is reached",
                                m.namespace, m.name
                            )),
                            Applied::Unchanged => {}
                        }
                    }
                }
            }
            Ok(Event::Delete(s)) => {
                KubeStats::add(&self.stats.service_events, 1);
                if let Some(old) = key(&s).and_then(|k| self.services.remove(&k)) {
                    out.push(record(MetaOp::Delete, Entity::Service(old)));
                }
            }
            Ok(Event::InitDone) => {
                for (_, old) in self.services.end_relist() {
                    out.push(record(MetaOp::Delete, Entity::Service(old)));
                }
            }
            Err(e) => self.watch_error("service", &e),
        }
        self.gauges();
        out
    }
}

/// What the source needs besides the client configuration.
#[derive(Clone, Debug)]
pub struct Options {
    /// This node's name, as the API knows it (`spec.nodeName` of its pods).
    pub node: String,
    /// Bounds.
    pub limits: Limits,
}

/// The running source. Dropping it stops the thread.
#[derive(Debug)]
pub struct KubeSource {
    /// Metadata records for the loop ([`crate::recorder::Recorder::set_metadata`]).
    pub records: Receiver<MetaRecord>,
    /// Pod IPs to pods, for [`describer`].
    pub pod_ips: PodIps,
    /// Counters.
    pub stats: Arc<KubeStats>,
    stop: Option<futures::channel::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

enum Watched {
    Pod(watcher::Result<Event<PodView>>),
    Service(watcher::Result<Event<ServiceView>>),
}

impl KubeSource {
    /// Starts watching on a thread of its own. Fails only when the client cannot be built
    /// (e.g. a bad CA certificate); an unreachable API server is retried in the background.
    pub fn start(config: kube::Config, opts: Options) -> Result<KubeSource> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("tokio runtime")?;
        let client = {
            let _g = rt.enter();
            Client::try_from(config).context("Kubernetes client")?
        };
        let (tx, rx) = crossbeam_channel::bounded(opts.limits.channel.max(1));
        let (stop_tx, stop_rx) = futures::channel::oneshot::channel::<()>();
        let pod_ips = PodIps::default();
        let stats = Arc::new(KubeStats::default());
        let (ips, st) = (pod_ips.clone(), stats.clone());
        let thread = std::thread::Builder::new()
            .name("juno-kube".into())
            .spawn(move || rt.block_on(run(client, opts, tx, ips, st, stop_rx)))
            .context("spawning the Kubernetes thread")?;
        Ok(KubeSource {
            records: rx,
            pod_ips,
            stats,
            stop: Some(stop_tx),
            thread: Some(thread),
        })
    }

    /// A describer for [`crate::recorder::Recorder::set_describer`] over this node's veth
    /// peers and host routes.
    pub fn describer(&self) -> Describer {
        // A failed dump (it needs no privilege; it fails only if netlink does) answers with
        // the last routes read, so that it neither names nor un-names anything; the next
        // attempt dumps again.
        let mut last = Vec::new();
        let mut peers = Peers::default();
        describer(
            self.pod_ips.clone(),
            move |i| peers.view(i),
            move || {
                if let Ok(r) = crate::ifaces::host_routes() {
                    last = r;
                }
                last.clone()
            },
        )
    }

    /// Stops the thread and waits for it.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        // The thread may be blocked handing a record to a loop that is gone: draining
        // unblocks it; it then sees the stop.
        if let Some(t) = self.thread.take() {
            while !t.is_finished() {
                while self.records.try_recv().is_ok() {}
                std::thread::sleep(Duration::from_millis(5));
            }
            let _ = t.join();
        }
    }
}

impl Drop for KubeSource {
    fn drop(&mut self) {
        self.shutdown();
    }
}

async fn run(
    client: Client,
    opts: Options,
    tx: Sender<MetaRecord>,
    ips: PodIps,
    stats: Arc<KubeStats>,
    stop: futures::channel::oneshot::Receiver<()>,
) {
    let pods = watch(
        Api::<PodView>::all(client.clone()),
        watcher::Config::default().fields(&format!("spec.nodeName={}", opts.node)),
    )
    .default_backoff()
    .map(Watched::Pod);
    let services = watch(
        Api::<ServiceView>::all(client.clone()),
        watcher::Config::default(),
    )
    .default_backoff()
    .map(Watched::Service);
    let events = futures::stream::select(pods, services);
    let mut st = State::new(opts.limits, ApiLookup { client }, ips, stats.clone());
    let mut first = true;
    let work = async move {
        let mut events = std::pin::pin!(events);
        while let Some(ev) = events.next().await {
            let recs = match ev {
                Watched::Pod(e) => {
                    if first && matches!(e, Ok(Event::InitDone)) {
                        first = false;
                        crate::log(format!(
                            "kubernetes: watching the pods of node {} and the cluster's services",
                            opts.node
                        ));
                    }
                    st.pod_event(e).await
                }
                Watched::Service(e) => st.service_event(e),
            };
            let n = recs.len() as u64;
            for r in recs {
                // Blocks while the loop's channel is full; fails once the loop is gone.
                if tx.send(r).is_err() {
                    return;
                }
            }
            KubeStats::add(&stats.records, n);
        }
    };
    // Stopping drops the work wherever it waits (a watch, an owner lookup).
    futures::future::select(std::pin::pin!(work), stop).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ifaces::Iface;
    use crate::ifaces::IfaceOwner;

    fn iface(idx: u32) -> Iface {
        Iface {
            ifindex: idx,
            name: format!("cali{idx}"),
            kind: Some("veth".into()),
            peer_ifindex: Some(2),
            peer_netnsid: Some(0),
        }
    }

    fn pod(uid: &str, ip: &str, host_network: bool) -> PodMeta {
        PodMeta {
            uid: uid.into(),
            namespace: "shop".into(),
            name: format!("pod-{uid}"),
            ips: vec![ip.parse().unwrap()],
            host_network,
            ..Default::default()
        }
    }

    #[test]
    fn interfaces_are_named_by_the_pod_their_host_route_points_at() {
        let ips = PodIps::default();
        let calls = Arc::new(AtomicU64::new(0));
        let c = calls.clone();
        let mut d = describer(
            ips.clone(),
            |_| None,
            move || {
                c.fetch_add(1, Ordering::Relaxed);
                vec![
                    (7, "10.244.0.5".parse().unwrap()),
                    (8, "10.244.0.6".parse().unwrap()),
                    (9, "192.168.1.10".parse().unwrap()),
                ]
            },
        );
        assert_eq!(d(&iface(7)), None, "pod not known yet");
        ips.set(None, Some(&pod("u1", "10.244.0.5", false)));
        ips.set(None, Some(&pod("host", "192.168.1.10", true)));
        assert_eq!(
            d(&iface(7)),
            Some(IfaceOwner {
                description: "pod shop/pod-u1".into(),
                pod_uid: Some("u1".into()),
                ..Default::default()
            })
        );
        assert_eq!(d(&iface(8)), None);
        assert_eq!(d(&iface(9)), None, "host-network pods name no veth");
        assert_eq!(
            calls.load(Ordering::Relaxed),
            1,
            "one route dump serves a burst"
        );
        // The address goes to another pod: the old pod's removal must not unname it.
        ips.set(None, Some(&pod("u2", "10.244.0.5", false)));
        ips.set(Some(&pod("u1", "10.244.0.5", false)), None);
        assert_eq!(ips.get(&"10.244.0.5".parse().unwrap()).unwrap().uid, "u2");
    }

    /// Bridge CNIs route a subnet, not each pod: the peer's addresses name the pod. They
    /// win over a host route, and without a pod the peer describes the interface.
    #[test]
    fn interfaces_are_named_by_the_pod_their_peer_is() {
        use crate::netns::Netns;
        let ips = PodIps::default();
        ips.set(None, Some(&pod("u1", "10.244.0.5", false)));
        ips.set(None, Some(&pod("u2", "10.244.0.6", false)));
        let view = |ifindex: u32, ip: &str| PeerView {
            nsid: ifindex as i32,
            netns: Some(Netns {
                inode: 4026532000 + ifindex,
                name: None,
            }),
            addrs: vec![ip.parse().unwrap(), "fe80::1".parse().unwrap()],
        };
        let mut d = describer(
            ips.clone(),
            move |i| match i.ifindex {
                7 => Some(view(7, "10.244.0.5")),
                8 => Some(view(8, "10.244.0.9")),
                _ => None,
            },
            // A stale host route pointing 7 at the other pod's address.
            || vec![(7, "10.244.0.6".parse().unwrap())],
        );
        let o = d(&iface(7)).unwrap();
        assert_eq!(o.description, "pod shop/pod-u1");
        assert_eq!(o.pod_uid.as_deref(), Some("u1"));
        assert_eq!(o.peer_netns, Some(4026532007));
        assert_eq!(o.addrs, view(7, "10.244.0.5").addrs);
        let o = d(&iface(8)).unwrap();
        assert_eq!(o.description, "netns 4026532008 10.244.0.9 fe80::1");
        assert_eq!(o.pod_uid, None);
        assert_eq!(d(&iface(9)), None);
    }

    #[test]
    fn config_from_flags() {
        assert_eq!(
            ApiConfig::from_flags(true, Some("/k".into())),
            ApiConfig::Disabled
        );
        assert_eq!(
            ApiConfig::from_flags(false, Some("/k".into())),
            ApiConfig::Kubeconfig("/k".into())
        );
        assert_eq!(ApiConfig::from_flags(false, None), ApiConfig::InCluster);
        assert!(ApiConfig::Disabled.load().unwrap().is_none());
        let e = ApiConfig::Kubeconfig("/nonexistent/kubeconfig".into())
            .load()
            .unwrap_err();
        assert!(
            format!("{e:#}").contains("/nonexistent/kubeconfig"),
            "{e:#}"
        );
    }
}
