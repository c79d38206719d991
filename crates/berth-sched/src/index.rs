//! The per-call index: for each instance, what is left of it after the placements made so
//! far in this call. Built once per call from the snapshot (O(instances)), updated in O(1)
//! per placement; the tasks themselves are never rescanned.

use crate::expr::Target;
use crate::model::{InstanceView, Resources};

pub(crate) struct Node<'a> {
    pub inst: &'a InstanceView,
    /// The task group being placed (empty: none).
    pub group: &'a str,
    /// CPU units left.
    pub cpu: u64,
    /// Memory MiB left.
    pub memory: u64,
    /// Tasks of `group` on the instance in the snapshot.
    pub existing: u32,
    /// Tasks placed on it by this call.
    pub placed: u32,
    /// The first 8 bytes of the id, big-endian, zero-padded: ordering by it orders by id
    /// wherever it differs, without following the id to the heap (see [`Node::id_cmp`]).
    pub id_prefix: u64,
}

impl<'a> Node<'a> {
    pub(crate) fn new(inst: &'a InstanceView, group: &'a str) -> Self {
        let existing = if group.is_empty() {
            0
        } else {
            inst.task_groups.get(group).copied().unwrap_or(0)
        };
        Node {
            inst,
            group,
            cpu: inst.remaining.cpu,
            memory: inst.remaining.memory,
            existing,
            placed: 0,
            id_prefix: id_prefix(&inst.id),
        }
    }

    /// Orders by instance id, as `str` does (bytewise), reading the ids only when their
    /// first 8 bytes are equal.
    pub(crate) fn id_cmp(&self, other: &Node<'_>) -> std::cmp::Ordering {
        self.id_prefix
            .cmp(&other.id_prefix)
            .then_with(|| self.inst.id.cmp(&other.inst.id))
    }

    /// Tasks of the group on the instance, counting this call's placements.
    pub(crate) fn group_count(&self) -> u64 {
        u64::from(self.existing) + u64::from(self.placed)
    }

    pub(crate) fn take(&mut self, ask: Resources) {
        self.cpu = self.cpu.saturating_sub(ask.cpu);
        self.memory = self.memory.saturating_sub(ask.memory);
        self.placed = self.placed.saturating_add(1);
    }
}

/// Zero padding keeps the order: a shorter id that is a prefix of a longer one sorts first
/// either way, and equal prefixes fall back to the full ids.
fn id_prefix(id: &str) -> u64 {
    let mut bytes = [0u8; 8];
    let n = id.len().min(8);
    bytes[..n].copy_from_slice(&id.as_bytes()[..n]);
    u64::from_be_bytes(bytes)
}

/// Expressions see the instance as it will be: with the tasks placed by this call in its
/// task group (they are pending, so `runningTasksCount` does not change).
impl Target for Node<'_> {
    fn attribute(&self, name: &str) -> Option<Option<&str>> {
        self.inst.attribute(name)
    }
    fn connected(&self) -> bool {
        self.inst.connected
    }
    fn agent_version(&self) -> Option<&str> {
        self.inst.agent_version.as_deref()
    }
    fn ec2_instance_id(&self) -> &str {
        self.inst.ec2_instance_id()
    }
    fn registered_at(&self) -> f64 {
        self.inst.registered_at
    }
    fn running_tasks(&self) -> u32 {
        self.inst.running_tasks
    }
    fn any_group(&self, f: &mut dyn FnMut(&str) -> bool) -> bool {
        if self.placed == 0 || self.group.is_empty() {
            return self.inst.any_group(f);
        }
        let own = self.group;
        self.inst
            .task_groups
            .iter()
            .any(|(g, &count)| count > 0 && g != own && f(g))
            || f(own)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expr::Expr;

    #[test]
    fn expressions_see_this_calls_placements() {
        let mut inst = InstanceView::default();
        inst.task_groups.insert("service:db".into(), 1);
        let mut node = Node::new(&inst, "service:web");
        let web = Expr::parse("task:group == service:web").expect("parses");
        let db = Expr::parse("task:group == service:db").expect("parses");
        assert!(!web.eval(&node));
        assert!(db.eval(&node));
        node.take(Resources::new(1, 1));
        assert!(web.eval(&node));
        assert!(db.eval(&node));
        assert_eq!(node.group_count(), 1);
    }

    #[test]
    fn take_never_underflows() {
        let inst = InstanceView {
            remaining: Resources::new(10, 10),
            ..InstanceView::default()
        };
        let mut node = Node::new(&inst, "");
        node.take(Resources::new(20, 5));
        assert_eq!((node.cpu, node.memory, node.placed), (0, 5, 1));
        assert_eq!(node.group_count(), 1);
    }

    #[test]
    fn id_order_matches_str_order() {
        let ids = [
            "",
            "a",
            "a\0",
            "a\0b",
            "ab",
            "abcdefgh",
            "abcdefgh0",
            "abcdefgi",
            "b",
            "\u{e9}t\u{e9}",
            "0000abcd-1",
            "0000abcd-2",
            "ffffffff",
        ];
        let insts: Vec<InstanceView> = ids
            .iter()
            .map(|id| InstanceView {
                id: (*id).to_string(),
                ..InstanceView::default()
            })
            .collect();
        for a in &insts {
            for b in &insts {
                let (na, nb) = (Node::new(a, ""), Node::new(b, ""));
                assert_eq!(na.id_cmp(&nb), a.id.cmp(&b.id), "{:?} vs {:?}", a.id, b.id);
            }
        }
    }
}
