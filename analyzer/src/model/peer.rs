//! What the ends of a connection were, as far as the archive's metadata knows: a pod (with its
//! namespace and workload) or a service. Filled in by [`crate::enrich`].

use std::sync::Arc;

/// What one end of an exchange was, as far as the archive's metadata knows.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Peer {
    /// Pod name.
    pub pod: Option<String>,
    /// Namespace of the pod or service.
    pub namespace: Option<String>,
    /// Owning workload kind (Deployment, StatefulSet, DaemonSet, Job, CronJob, ...).
    pub workload_kind: Option<String>,
    /// Owning workload name.
    pub workload: Option<String>,
    /// Service name (for a cluster IP).
    pub service: Option<String>,
    /// Node the pod runs on.
    pub node: Option<String>,
}

/// Both ends of an exchange.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Peers {
    /// The client (originator).
    pub client: Option<Arc<Peer>>,
    /// The server (responder).
    pub server: Option<Arc<Peer>>,
}
