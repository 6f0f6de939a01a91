//! The metadata seam between sources and the event loop.
//!
//! A metadata source (the node itself through cgroup paths, [`crate::node`]; the Kubernetes
//! API, [`crate::kube`]) produces timestamped [`MetaRecord`]s. The event loop writes each into
//! the archive as it comes and folds it into the shared snapshot with
//! [`SnapshotIndex::apply`], so that every new file starts with what is known at that moment.
//! Sources reach the loop through a channel ([`crate::recorder::Recorder::set_metadata`]);
//! nothing here blocks or allocates beyond the entities themselves.

use std::collections::HashMap;

use juno_archive::{ContainerMeta, Entity, MetaOp, MetaRecord};

/// What identifies an entity in the snapshot: at most one entry per key.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Key {
    Node(String),
    Interface(u32),
    Pod(String),
    Container(String),
    Service(String, String),
}

fn key(e: &Entity) -> Option<Key> {
    Some(match e {
        Entity::Node(n) => Key::Node(n.name.clone()),
        Entity::Interface(i) => Key::Interface(i.ifindex),
        Entity::Pod(p) => Key::Pod(p.uid.clone()),
        Entity::Container(c) => Key::Container(c.id.clone()),
        Entity::Service(s) => Key::Service(s.namespace.clone(), s.name.clone()),
        Entity::Unknown(_) => return None,
    })
}

/// Fills what `new` leaves unknown from `old`: the Kubernetes source knows a container's
/// name and pod, the node its cgroup; either may come first.
fn merge_container(old: &ContainerMeta, new: &mut ContainerMeta) {
    if new.runtime.is_none() {
        new.runtime.clone_from(&old.runtime);
    }
    if new.name.is_none() {
        new.name.clone_from(&old.name);
    }
    if new.pod_uid.is_none() {
        new.pod_uid.clone_from(&old.pod_uid);
    }
    if new.cgroup_id.is_none() {
        new.cgroup_id = old.cgroup_id;
    }
    if new.cgroup_path.is_none() {
        new.cgroup_path.clone_from(&old.cgroup_path);
    }
}

/// Where each entity sits in the snapshot, so that a change costs a hash lookup rather than
/// a scan (a cluster may have tens of thousands of services).
#[derive(Debug, Default)]
pub struct SnapshotIndex {
    pos: HashMap<Key, usize>,
    /// The snapshot's length when the index was last in step with it; another length means
    /// someone else changed the snapshot and the index is rebuilt.
    len: usize,
}

impl SnapshotIndex {
    fn rebuild(&mut self, snapshot: &[Entity]) {
        self.pos.clear();
        for (i, e) in snapshot.iter().enumerate() {
            if let Some(k) = key(e) {
                self.pos.insert(k, i);
            }
        }
        self.len = snapshot.len();
    }

    /// Folds a change into the snapshot: an upsert replaces the entity with the same key (a
    /// container's fields are merged, see above) or adds it; a delete removes it. Returns
    /// the entity as the snapshot now holds it (for an upsert): what should be written.
    pub fn apply(&mut self, snapshot: &mut Vec<Entity>, rec: &MetaRecord) -> Option<Entity> {
        if self.len != snapshot.len() || (self.pos.is_empty() && !snapshot.is_empty()) {
            self.rebuild(snapshot);
        }
        let k = key(&rec.entity)?;
        let out = match rec.op {
            MetaOp::Upsert | MetaOp::Snapshot => {
                let mut new = rec.entity.clone();
                match self.pos.get(&k) {
                    Some(&i) => {
                        if let (Entity::Container(n), Some(Entity::Container(o))) =
                            (&mut new, snapshot.get(i))
                        {
                            merge_container(o, n);
                        }
                        snapshot[i] = new.clone();
                    }
                    None => {
                        self.pos.insert(k, snapshot.len());
                        snapshot.push(new.clone());
                    }
                }
                Some(new)
            }
            MetaOp::Delete => {
                if let Some(i) = self.pos.remove(&k) {
                    snapshot.swap_remove(i);
                    if let Some(moved) = snapshot.get(i).and_then(key) {
                        self.pos.insert(moved, i);
                    }
                }
                None
            }
            MetaOp::Unknown(_) => None,
        };
        self.len = snapshot.len();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use juno_archive::{NodeMeta, PodMeta, ServiceMeta};

    fn rec(op: MetaOp, entity: Entity) -> MetaRecord {
        MetaRecord {
            ts_ns: 1,
            op,
            entity,
        }
    }

    fn pod(uid: &str, name: &str) -> Entity {
        Entity::Pod(PodMeta {
            uid: uid.into(),
            namespace: "default".into(),
            name: name.into(),
            ..Default::default()
        })
    }

    #[test]
    fn upserts_replace_by_key_and_deletes_remove() {
        let mut ix = SnapshotIndex::default();
        let mut s = vec![Entity::Node(NodeMeta {
            name: "n1".into(),
            ..Default::default()
        })];
        ix.apply(&mut s, &rec(MetaOp::Upsert, pod("u1", "a")));
        ix.apply(&mut s, &rec(MetaOp::Upsert, pod("u2", "b")));
        ix.apply(&mut s, &rec(MetaOp::Upsert, pod("u1", "a-renamed")));
        assert_eq!(s.len(), 3);
        assert!(s.contains(&pod("u1", "a-renamed")));
        let svc = Entity::Service(ServiceMeta {
            namespace: "default".into(),
            name: "web".into(),
            ..Default::default()
        });
        ix.apply(&mut s, &rec(MetaOp::Upsert, svc.clone()));
        ix.apply(&mut s, &rec(MetaOp::Delete, pod("u1", "whatever")));
        assert_eq!(s.len(), 3);
        assert!(
            !s.iter()
                .any(|e| matches!(e, Entity::Pod(p) if p.uid == "u1"))
        );
        // The entry moved into the deleted one's place is still found by its key.
        ix.apply(&mut s, &rec(MetaOp::Upsert, pod("u2", "b2")));
        assert_eq!(s.len(), 3);
        assert!(s.contains(&pod("u2", "b2")));
        ix.apply(&mut s, &rec(MetaOp::Delete, svc));
        ix.apply(&mut s, &rec(MetaOp::Delete, pod("nope", "x")));
        assert_eq!(s.len(), 2);
        assert!(matches!(s[0], Entity::Node(_)));
    }

    #[test]
    fn container_fields_from_both_sources_are_merged() {
        let mut ix = SnapshotIndex::default();
        let mut s = Vec::new();
        let from_cgroup = ContainerMeta {
            id: "c1".into(),
            runtime: Some("containerd".into()),
            cgroup_id: Some(77),
            cgroup_path: Some("/kubepods/x".into()),
            ..Default::default()
        };
        let from_kube = ContainerMeta {
            id: "c1".into(),
            runtime: Some("containerd".into()),
            name: Some("web".into()),
            pod_uid: Some("u1".into()),
            ..Default::default()
        };
        ix.apply(&mut s, &rec(MetaOp::Upsert, Entity::Container(from_cgroup)));
        let written = ix.apply(&mut s, &rec(MetaOp::Upsert, Entity::Container(from_kube)));
        let want = Entity::Container(ContainerMeta {
            id: "c1".into(),
            runtime: Some("containerd".into()),
            name: Some("web".into()),
            pod_uid: Some("u1".into()),
            cgroup_id: Some(77),
            cgroup_path: Some("/kubepods/x".into()),
        });
        assert_eq!(s, vec![want.clone()]);
        assert_eq!(written, Some(want));
    }
}
