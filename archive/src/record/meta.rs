//! Metadata records: the node, its interfaces, pods, containers and services.

use std::net::IpAddr;

use super::tlv::*;
use super::*;

/// How a metadata record relates to what came before.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MetaOp {
    /// Part of the snapshot written at the start of every file.
    Snapshot,
    /// The entity appeared or changed.
    Upsert,
    /// The entity went away.
    Delete,
    /// An op this reader does not know.
    Unknown(u8),
}

impl From<u8> for MetaOp {
    fn from(v: u8) -> Self {
        match v {
            1 => Self::Snapshot,
            2 => Self::Upsert,
            3 => Self::Delete,
            o => Self::Unknown(o),
        }
    }
}
impl From<MetaOp> for u8 {
    fn from(v: MetaOp) -> u8 {
        match v {
            MetaOp::Snapshot => 1,
            MetaOp::Upsert => 2,
            MetaOp::Delete => 3,
            MetaOp::Unknown(o) => o,
        }
    }
}

/// A timestamped metadata entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetaRecord {
    /// Wall-clock time of the observation, nanoseconds since the Unix epoch.
    pub ts_ns: u64,
    /// Snapshot entry, change or deletion.
    pub op: MetaOp,
    /// What is described.
    pub entity: Entity,
}

/// The thing a metadata record describes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Entity {
    /// The node the recorder runs on.
    Node(NodeMeta),
    /// A network interface (typically the host side of a pod's veth).
    Interface(InterfaceMeta),
    /// A pod.
    Pod(PodMeta),
    /// A container (a cgroup).
    Container(ContainerMeta),
    /// A Kubernetes service.
    Service(ServiceMeta),
    /// An entity kind this reader does not know (its fields were skipped).
    Unknown(u8),
}

/// Node description.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeMeta {
    /// Node name (Kubernetes node name or host name).
    pub name: String,
    /// Kernel release.
    pub kernel: Option<String>,
    /// `/proc/sys/kernel/random/boot_id`.
    pub boot_id: Option<String>,
}

/// Interface description.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InterfaceMeta {
    /// Interface index in its namespace.
    pub ifindex: u32,
    /// Inode of the network namespace the interface is in.
    pub netns: Option<u32>,
    /// Interface name.
    pub name: String,
    /// Index of the Interface Description Block in this file, if packets are captured on it.
    pub pcapng_id: Option<u32>,
    /// Peer interface index (veth).
    pub peer_ifindex: Option<u32>,
    /// Network namespace inode of the peer (the pod's namespace for a pod veth).
    pub peer_netns: Option<u32>,
    /// Pod the interface belongs to, by uid.
    pub pod_uid: Option<String>,
    /// Addresses.
    pub addrs: Vec<IpAddr>,
}

/// Pod description.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PodMeta {
    /// Pod uid.
    pub uid: String,
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// Node it is scheduled on.
    pub node: Option<String>,
    /// Pod IPs.
    pub ips: Vec<IpAddr>,
    /// Labels.
    pub labels: Vec<(String, String)>,
    /// Owning workload kind (Deployment, StatefulSet, DaemonSet, Job, CronJob, ...).
    pub workload_kind: Option<String>,
    /// Owning workload name.
    pub workload_name: Option<String>,
    /// Uses the host's network namespace.
    pub host_network: bool,
    /// Network namespace inode, when the node knows it.
    pub netns: Option<u32>,
}

/// Container description.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ContainerMeta {
    /// Runtime container id (hex).
    pub id: String,
    /// Container runtime (containerd, cri-o, docker).
    pub runtime: Option<String>,
    /// Container name in the pod spec.
    pub name: Option<String>,
    /// Pod uid.
    pub pod_uid: Option<String>,
    /// cgroup v2 id (inode of the cgroup directory).
    pub cgroup_id: Option<u64>,
    /// cgroup path.
    pub cgroup_path: Option<String>,
}

/// Service description.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServiceMeta {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// Cluster IPs.
    pub cluster_ips: Vec<IpAddr>,
    /// Ports as (IP protocol number, port).
    pub ports: Vec<(u8, u16)>,
}

impl TlvEntity for NodeMeta {
    fn write(&self, w: &mut TlvWriter<'_>) {
        w.str(tag::NAME, &self.name);
        w.opt_str(tag::KERNEL, self.kernel.as_deref());
        w.opt_str(tag::BOOT_ID, self.boot_id.as_deref());
    }
    fn apply(&mut self, t: u16, v: &[u8]) -> bool {
        match t {
            tag::NAME => self.name = tlv_str(v),
            tag::KERNEL => self.kernel = Some(tlv_str(v)),
            tag::BOOT_ID => self.boot_id = Some(tlv_str(v)),
            _ => return false,
        }
        true
    }
}

impl TlvEntity for InterfaceMeta {
    fn write(&self, w: &mut TlvWriter<'_>) {
        w.u32(tag::IFINDEX, self.ifindex);
        w.opt_u32(tag::NETNS, self.netns);
        w.str(tag::NAME, &self.name);
        w.opt_u32(tag::PCAPNG_ID, self.pcapng_id);
        w.opt_u32(tag::PEER_IFINDEX, self.peer_ifindex);
        w.opt_u32(tag::PEER_NETNS, self.peer_netns);
        w.opt_str(tag::POD_UID, self.pod_uid.as_deref());
        for a in &self.addrs {
            w.ip(tag::IP, a);
        }
    }
    fn apply(&mut self, t: u16, v: &[u8]) -> bool {
        match t {
            tag::IFINDEX => return tlv_u32(v).map(|x| self.ifindex = x).is_some(),
            tag::NETNS => return tlv_u32(v).map(|x| self.netns = Some(x)).is_some(),
            tag::NAME => self.name = tlv_str(v),
            tag::PCAPNG_ID => return tlv_u32(v).map(|x| self.pcapng_id = Some(x)).is_some(),
            tag::PEER_IFINDEX => return tlv_u32(v).map(|x| self.peer_ifindex = Some(x)).is_some(),
            tag::PEER_NETNS => return tlv_u32(v).map(|x| self.peer_netns = Some(x)).is_some(),
            tag::POD_UID => self.pod_uid = Some(tlv_str(v)),
            tag::IP => return tlv_ip(v).map(|a| self.addrs.push(a)).is_some(),
            _ => return false,
        }
        true
    }
}

impl TlvEntity for PodMeta {
    fn write(&self, w: &mut TlvWriter<'_>) {
        w.str(tag::UID, &self.uid);
        w.str(tag::NAMESPACE, &self.namespace);
        w.str(tag::NAME, &self.name);
        w.opt_str(tag::NODE, self.node.as_deref());
        for a in &self.ips {
            w.ip(tag::IP, a);
        }
        for (k, v) in &self.labels {
            w.pair(tag::LABEL, k, v);
        }
        w.opt_str(tag::WORKLOAD_KIND, self.workload_kind.as_deref());
        w.opt_str(tag::WORKLOAD_NAME, self.workload_name.as_deref());
        if self.host_network {
            w.bytes(tag::HOST_NETWORK, &[1]);
        }
        w.opt_u32(tag::NETNS, self.netns);
    }
    fn apply(&mut self, t: u16, v: &[u8]) -> bool {
        match t {
            tag::UID => self.uid = tlv_str(v),
            tag::NAMESPACE => self.namespace = tlv_str(v),
            tag::NAME => self.name = tlv_str(v),
            tag::NODE => self.node = Some(tlv_str(v)),
            tag::IP => return tlv_ip(v).map(|a| self.ips.push(a)).is_some(),
            tag::LABEL => self.labels.push(tlv_pair(v)),
            tag::WORKLOAD_KIND => self.workload_kind = Some(tlv_str(v)),
            tag::WORKLOAD_NAME => self.workload_name = Some(tlv_str(v)),
            tag::HOST_NETWORK => self.host_network = v.first() == Some(&1),
            tag::NETNS => return tlv_u32(v).map(|x| self.netns = Some(x)).is_some(),
            _ => return false,
        }
        true
    }
}

impl TlvEntity for ContainerMeta {
    fn write(&self, w: &mut TlvWriter<'_>) {
        w.str(tag::CONTAINER_ID, &self.id);
        w.opt_str(tag::RUNTIME, self.runtime.as_deref());
        w.opt_str(tag::NAME, self.name.as_deref());
        w.opt_str(tag::POD_UID, self.pod_uid.as_deref());
        w.opt_u64(tag::CGROUP_ID, self.cgroup_id);
        w.opt_str(tag::CGROUP_PATH, self.cgroup_path.as_deref());
    }
    fn apply(&mut self, t: u16, v: &[u8]) -> bool {
        match t {
            tag::CONTAINER_ID => self.id = tlv_str(v),
            tag::RUNTIME => self.runtime = Some(tlv_str(v)),
            tag::NAME => self.name = Some(tlv_str(v)),
            tag::POD_UID => self.pod_uid = Some(tlv_str(v)),
            tag::CGROUP_ID => return tlv_u64(v).map(|x| self.cgroup_id = Some(x)).is_some(),
            tag::CGROUP_PATH => self.cgroup_path = Some(tlv_str(v)),
            _ => return false,
        }
        true
    }
}

impl TlvEntity for ServiceMeta {
    fn write(&self, w: &mut TlvWriter<'_>) {
        w.str(tag::NAMESPACE, &self.namespace);
        w.str(tag::NAME, &self.name);
        for a in &self.cluster_ips {
            w.ip(tag::IP, a);
        }
        for (proto, port) in &self.ports {
            let p = port.to_le_bytes();
            w.bytes(tag::PORT, &[*proto, p[0], p[1]]);
        }
    }
    fn apply(&mut self, t: u16, v: &[u8]) -> bool {
        match t {
            tag::NAMESPACE => self.namespace = tlv_str(v),
            tag::NAME => self.name = tlv_str(v),
            tag::IP => return tlv_ip(v).map(|a| self.cluster_ips.push(a)).is_some(),
            tag::PORT if v.len() == 3 => self.ports.push((v[0], le16(&v[1..3]))),
            _ => return false,
        }
        true
    }
}

const META_FIXED_LEN: usize = 12;

impl Entity {
    fn kind_code(&self) -> u8 {
        match self {
            Entity::Node(_) => 1,
            Entity::Interface(_) => 2,
            Entity::Pod(_) => 3,
            Entity::Container(_) => 4,
            Entity::Service(_) => 5,
            Entity::Unknown(k) => *k,
        }
    }
}

impl MetaRecord {
    /// Appends the encoded record to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let start = begin_record(out, RecordType::Metadata, META_FIXED_LEN as u16);
        out.extend_from_slice(&self.ts_ns.to_le_bytes());
        out.push(self.op.into());
        out.push(self.entity.kind_code());
        out.extend_from_slice(&0u16.to_le_bytes());
        let mut w = TlvWriter { out };
        match &self.entity {
            Entity::Node(e) => e.write(&mut w),
            Entity::Interface(e) => e.write(&mut w),
            Entity::Pod(e) => e.write(&mut w),
            Entity::Container(e) => e.write(&mut w),
            Entity::Service(e) => e.write(&mut w),
            Entity::Unknown(_) => {}
        }
        finish_record(out, start);
    }

    pub(super) fn decode(
        f: &[u8],
        var: &[u8],
        stats: &mut DecodeStats,
    ) -> Result<Self, RecordError> {
        if f.len() < META_FIXED_LEN {
            return Err(RecordError::FixedTooShort {
                rtype: RecordType::Metadata,
                len: f.len(),
                min: META_FIXED_LEN,
            });
        }
        let entity = match f[9] {
            1 => Entity::Node(NodeMeta::read(var, stats)?),
            2 => Entity::Interface(InterfaceMeta::read(var, stats)?),
            3 => Entity::Pod(PodMeta::read(var, stats)?),
            4 => Entity::Container(ContainerMeta::read(var, stats)?),
            5 => Entity::Service(ServiceMeta::read(var, stats)?),
            k => {
                stats.unknown_tags += tlvs(var).count() as u64;
                Entity::Unknown(k)
            }
        };
        Ok(MetaRecord {
            ts_ns: le64(&f[0..8]),
            op: f[8].into(),
            entity,
        })
    }
}
