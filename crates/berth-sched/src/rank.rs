//! Ranking: each strategy turns a feasible instance into one or two numbers, smaller is
//! better; the strategies' numbers, in order, form a key compared lexicographically, so a
//! later strategy only breaks the ties of the earlier ones. After the strategies come two
//! fixed tie-breakers: fewest tasks of the group on the instance, then the instance id.

use std::collections::BTreeMap;

use crate::index::Node;
use crate::policy::{BinpackField, SpreadField, Strategy, MAX_STRATEGIES};
use crate::rng::SplitMix64;

/// Two numbers per strategy, one for the group-count tie-breaker.
pub(crate) const KEY_LEN: usize = 2 * MAX_STRATEGIES + 1;
pub(crate) type Key = [u64; KEY_LEN];

pub(crate) enum Ranker {
    /// Least of the field remaining, then least of the other.
    Binpack(BinpackField),
    /// Fewest tasks of the group on the instance itself.
    SpreadInstance,
    /// Fewest tasks of the group over all instances sharing the instance's value.
    SpreadValue {
        /// Per instance (by position), the index of its value.
        value_of: Vec<u32>,
        /// Per value, tasks of the group (snapshot plus this call).
        tasks: Vec<u64>,
    },
    /// A fresh random number per candidate and placement.
    Random,
}

impl Ranker {
    /// Prepares a strategy for the instances of this call: for an attribute spread, groups
    /// them by value (instances without the attribute are one value of their own) and
    /// counts the group's tasks per value.
    pub(crate) fn new(strategy: &Strategy, nodes: &[Node<'_>]) -> Ranker {
        match strategy {
            Strategy::Binpack { field } => Ranker::Binpack(*field),
            Strategy::Random => Ranker::Random,
            Strategy::Spread {
                field: SpreadField::Instance,
            } => Ranker::SpreadInstance,
            Strategy::Spread {
                field: SpreadField::Attribute(name),
            } => {
                let mut ids: BTreeMap<Option<Option<&str>>, u32> = BTreeMap::new();
                let mut tasks = Vec::new();
                let mut value_of = Vec::with_capacity(nodes.len());
                for node in nodes {
                    let value = node.inst.attributes.get(name).map(|v| v.as_deref());
                    let next = ids.len() as u32;
                    let id = *ids.entry(value).or_insert(next);
                    if id == next {
                        tasks.push(0);
                    }
                    if let Some(t) = tasks.get_mut(id as usize) {
                        *t += node.group_count();
                    }
                    value_of.push(id);
                }
                Ranker::SpreadValue { value_of, tasks }
            }
        }
    }

    /// Writes this strategy's numbers for instance `i` at the start of `out`; returns how many.
    pub(crate) fn score(
        &self,
        i: usize,
        node: &Node<'_>,
        rng: &mut SplitMix64,
        out: &mut [u64],
    ) -> usize {
        // Element by element: a slice copy of a variable length would call memcpy, and
        // this runs for every candidate of every placement.
        let (first, second) = match self {
            Ranker::Binpack(BinpackField::Memory) => (node.memory, Some(node.cpu)),
            Ranker::Binpack(BinpackField::Cpu) => (node.cpu, Some(node.memory)),
            Ranker::SpreadInstance => (node.group_count(), None),
            Ranker::SpreadValue { value_of, tasks } => {
                let value = value_of.get(i).copied().unwrap_or(0) as usize;
                (tasks.get(value).copied().unwrap_or(0), None)
            }
            Ranker::Random => (rng.next_u64(), None),
        };
        match (out, second) {
            ([a, b, ..], Some(second)) => {
                *a = first;
                *b = second;
                2
            }
            ([a, ..], _) => {
                *a = first;
                1
            }
            ([], _) => 0,
        }
    }

    /// Records a placement on instance `i`.
    pub(crate) fn placed(&mut self, i: usize) {
        if let Ranker::SpreadValue { value_of, tasks } = self {
            if let Some(t) = value_of.get(i).and_then(|&v| tasks.get_mut(v as usize)) {
                *t += 1;
            }
        }
    }
}

/// The full key of instance `i`: every strategy's numbers, then its group count.
pub(crate) fn key(rankers: &[Ranker], i: usize, node: &Node<'_>, rng: &mut SplitMix64) -> Key {
    let mut key = [0u64; KEY_LEN];
    let mut at = 0;
    for r in rankers {
        // `place` refuses more than MAX_STRATEGIES, so the key always has room.
        if at + 2 > KEY_LEN - 1 {
            break;
        }
        at += r.score(i, node, rng, &mut key[at..]);
    }
    key[at] = node.group_count();
    key
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{InstanceView, Resources};

    fn inst(id: &str, az: Option<&str>, cpu: u64, mem: u64, web: u32) -> InstanceView {
        let mut i = InstanceView {
            id: id.into(),
            remaining: Resources::new(cpu, mem),
            ..InstanceView::default()
        };
        if let Some(az) = az {
            i.attributes
                .insert("ecs.availability-zone".into(), Some(az.into()));
        }
        if web > 0 {
            i.task_groups.insert("service:web".into(), web);
        }
        i
    }

    fn best(rankers: &[Ranker], nodes: &[Node<'_>]) -> usize {
        let mut rng = SplitMix64::new(1);
        (0..nodes.len())
            .min_by_key(|&i| {
                (
                    key(rankers, i, &nodes[i], &mut rng),
                    nodes[i].inst.id.clone(),
                )
            })
            .unwrap_or(usize::MAX)
    }

    #[test]
    fn binpack_prefers_the_fullest() {
        let insts = [
            inst("a", None, 100, 500, 0),
            inst("b", None, 900, 300, 0),
            inst("c", None, 50, 300, 0),
        ];
        let nodes: Vec<_> = insts.iter().map(|i| Node::new(i, "service:web")).collect();
        let mem = [Ranker::Binpack(BinpackField::Memory)];
        assert_eq!(
            best(&mem, &nodes),
            2,
            "least memory, tie broken by least cpu"
        );
        let cpu = [Ranker::Binpack(BinpackField::Cpu)];
        assert_eq!(best(&cpu, &nodes), 2);
    }

    #[test]
    fn spread_by_attribute_counts_every_instance_of_a_value() {
        let insts = [
            inst("a1", Some("a"), 10, 10, 1),
            inst("a2", Some("a"), 10, 10, 0),
            inst("b1", Some("b"), 10, 10, 0),
            inst("b2", Some("b"), 10, 10, 0),
            inst("none", None, 10, 10, 0),
        ];
        let nodes: Vec<_> = insts.iter().map(|i| Node::new(i, "service:web")).collect();
        let strategy = Strategy::Spread {
            field: SpreadField::Attribute("ecs.availability-zone".into()),
        };
        let mut r = vec![Ranker::new(&strategy, &nodes)];
        // a has 1 task; b and "no value" have 0: b1 wins on id among b1, b2, none.
        assert_eq!(best(&r, &nodes), 2);
        r[0].placed(2);
        // now a: 1, b: 1, none: 0
        assert_eq!(best(&r, &nodes), 4);
        r[0].placed(4);
        // all values at 1: the group-count tie-breaker prefers instances with no task.
        assert_eq!(best(&r, &nodes), 1, "a2 has no task, a1 has one");
    }

    #[test]
    fn strategies_apply_in_order() {
        let insts = [
            inst("a", Some("x"), 10, 900, 0),
            inst("b", Some("y"), 10, 100, 1),
            inst("c", Some("x"), 10, 500, 0),
        ];
        let nodes: Vec<_> = insts.iter().map(|i| Node::new(i, "service:web")).collect();
        let spread = Strategy::Spread {
            field: SpreadField::Attribute("ecs.availability-zone".into()),
        };
        let pack = Strategy::Binpack {
            field: BinpackField::Memory,
        };
        let r = [Ranker::new(&spread, &nodes), Ranker::new(&pack, &nodes)];
        assert_eq!(
            best(&r, &nodes),
            2,
            "zone x has fewer tasks; c is the fuller in x"
        );
        let r = [Ranker::new(&pack, &nodes), Ranker::new(&spread, &nodes)];
        assert_eq!(best(&r, &nodes), 1, "binpack first: b is the fullest");
    }

    #[test]
    fn key_has_room_for_five_binpacks() {
        let i = inst("a", None, 7, 9, 2);
        let node = Node::new(&i, "service:web");
        let rankers: Vec<_> = (0..MAX_STRATEGIES)
            .map(|_| Ranker::Binpack(BinpackField::Memory))
            .collect();
        let k = key(&rankers, 0, &node, &mut SplitMix64::new(0));
        assert_eq!(k, [9, 7, 9, 7, 9, 7, 9, 7, 9, 7, 2]);
    }
}
