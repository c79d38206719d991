//! The placement stack: candidates → feasibility chain → ranking → selection, once per task,
//! over an index that every placement updates.
//!
//! Sampling (Nomad's limit iterator). On a cluster of at most [`EXACT_UP_TO`] instances
//! every feasible instance is ranked, so the answer is exactly what the strategies ask
//! for. On a larger one, each placement ranks only the next [`sample_size`] feasible
//! instances of a seeded random order of the cluster, continuing where the previous
//! placement stopped, plus (when a binpack strategy is present) the instance the previous
//! placement chose, so packing keeps filling it rather than hopping between samples.
//! An instance found infeasible is dropped for the rest of the call: checks only look at the
//! instance itself, and only the chosen instance changes, so a rejection cannot be undone.
//! The cost of a placement thus grows with the sample, not with the cluster.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::sync::Arc;

use crate::error::SchedError;
use crate::feasible::{chain, Check};
use crate::index::Node;
use crate::model::{Failure, InstanceView, Placement, Reason, Rejection, Resources, TaskAsk};
use crate::policy::{check_limits, Constraint, Strategy};
use crate::rank::{key, Key, Ranker};
use crate::rng::SplitMix64;

/// Clusters up to this size are ranked exactly: every feasible instance, every placement.
pub const EXACT_UP_TO: usize = 64;

/// How many feasible instances a placement ranks on a cluster of `n` instances:
/// all of them up to [`EXACT_UP_TO`], then `max(64, 8·⌈log2 n⌉)` (88 at 2,000 instances,
/// 136 at 100,000).
pub fn sample_size(n: usize) -> usize {
    if n <= EXACT_UP_TO {
        n
    } else {
        let log2 = (usize::BITS - (n - 1).leading_zeros()) as usize;
        EXACT_UP_TO.max(8 * log2)
    }
}

/// Places `count` tasks like `ask` on `instances`, one after the other, each seeing the
/// ones before it. Returns one entry per task, in order: the chosen instance, or why no
/// instance could take it.
///
/// - `strategies` apply in order, each breaking the ties of the ones before; none means
///   `random` (ECS's default for RunTask; callers pass `spread` for services).
/// - `constraints` filter instances; several `distinctInstance` act as one.
/// - `seed` makes `random` and the sampling order reproducible: the same inputs and seed
///   give the same answer.
///
/// Errors: [`SchedError::NoInstances`] for an empty cluster (ECS answers RunTask so), and
/// the limits of [`check_limits`]. When one task fails, the tasks after it fail the same
/// way: nothing changed in between.
///
/// ```
/// use berth_sched::{place, InstanceView, Reason, Resources, Strategy, TaskAsk};
///
/// let host = |id: &str, memory| InstanceView {
///     id: id.into(),
///     arn: format!("arn:aws:ecs:us-east-1:123456789012:container-instance/prod/{id}"),
///     active: true,
///     connected: true,
///     remaining: Resources::new(4096, memory),
///     ..InstanceView::default()
/// };
/// let cluster = [host("a", 1024), host("b", 512)];
/// let ask = TaskAsk {
///     resources: Resources::new(256, 512),
///     group: "service:web".into(),
///     ..TaskAsk::default()
/// };
/// let binpack = Strategy::from_wire("binpack", Some("memory"))?;
/// let out = place(&cluster, &ask, 4, &[binpack], &[], 7)?;
/// let chosen: Vec<_> = out.iter().flatten().map(|p| p.instance_id.as_str()).collect();
/// assert_eq!(chosen, ["b", "a", "a"]);
/// let Err(failure) = &out[3] else { unreachable!() };
/// assert_eq!(failure.reason, Reason::Memory);
/// assert_eq!(failure.reason.as_str(), "RESOURCE:MEMORY");
/// # Ok::<(), berth_sched::SchedError>(())
/// ```
pub fn place(
    instances: &[InstanceView],
    ask: &TaskAsk,
    count: usize,
    strategies: &[Strategy],
    constraints: &[Constraint],
    seed: u64,
) -> Result<Vec<Result<Placement, Failure>>, SchedError> {
    check_limits(strategies, constraints)?;
    if instances.is_empty() {
        return Err(SchedError::NoInstances);
    }
    let mut stack = Stack::new(instances, ask, strategies, constraints, seed);
    let mut out = Vec::with_capacity(count.min(1024));
    for _ in 0..count {
        out.push(stack.next());
    }
    Ok(out)
}

struct Stack<'a> {
    nodes: Vec<Node<'a>>,
    ask: Resources,
    checks: Vec<Box<dyn Check + 'a>>,
    rankers: Vec<Ranker>,
    rng: SplitMix64,
    /// Instances not (yet) found infeasible, in visiting order.
    alive: Vec<u32>,
    /// Where the next placement starts looking in `alive`.
    cursor: usize,
    /// How many feasible instances a placement ranks.
    limit: usize,
    /// Per instance: the check that rejected it, for the rest of the call.
    rejected: Vec<Option<u8>>,
    /// Per instance: `placed` when it last passed the chain (a pass stays valid until the
    /// instance receives a task).
    passed_at: Vec<Option<u32>>,
    /// Per instance: the placement round in which it was last made a candidate.
    seen: Vec<u64>,
    round: u64,
    /// Offer the previous choice again (binpack).
    sticky: bool,
    last: Option<usize>,
    candidates: Vec<usize>,
    failure: Option<Failure>,
}

impl<'a> Stack<'a> {
    fn new(
        instances: &'a [InstanceView],
        ask: &'a TaskAsk,
        strategies: &[Strategy],
        constraints: &'a [Constraint],
        seed: u64,
    ) -> Self {
        let n = instances.len();
        let nodes: Vec<Node<'a>> = instances.iter().map(|i| Node::new(i, &ask.group)).collect();
        let default = [Strategy::Random];
        let strategies = if strategies.is_empty() {
            &default[..]
        } else {
            strategies
        };
        let rankers = strategies.iter().map(|s| Ranker::new(s, &nodes)).collect();
        let mut rng = SplitMix64::new(seed);
        let mut alive: Vec<u32> = (0..n as u32).collect();
        let limit = if n <= EXACT_UP_TO {
            usize::MAX
        } else {
            rng.shuffle(&mut alive);
            sample_size(n)
        };
        Stack {
            nodes,
            ask: ask.resources,
            checks: chain(ask, constraints),
            rankers,
            rng,
            alive,
            cursor: 0,
            limit,
            rejected: vec![None; n],
            passed_at: vec![None; n],
            seen: vec![0; n],
            round: 0,
            sticky: strategies
                .iter()
                .any(|s| matches!(s, Strategy::Binpack { .. })),
            last: None,
            candidates: Vec::new(),
            failure: None,
        }
    }

    fn next(&mut self) -> Result<Placement, Failure> {
        if let Some(f) = &self.failure {
            return Err(f.clone());
        }
        self.gather();
        let Some(best) = self.select() else {
            let failure = self.explain();
            self.failure = Some(failure.clone());
            return Err(failure);
        };
        self.nodes[best].take(self.ask);
        for r in &mut self.rankers {
            r.placed(best);
        }
        self.last = Some(best);
        Ok(Placement {
            instance_id: self.nodes[best].inst.id.clone(),
            index: best,
        })
    }

    /// Fills `candidates` with up to `limit` feasible instances, dropping the infeasible
    /// ones it meets from `alive`.
    fn gather(&mut self) {
        self.round += 1;
        let round = self.round;
        self.candidates.clear();
        if self.sticky {
            if let Some(last) = self.last {
                if self.feasible(last) {
                    self.seen[last] = round;
                    self.candidates.push(last);
                }
            }
        }
        // Candidates are alive and seen this round; stop when all alive ones are.
        while self.candidates.len() < self.limit && self.candidates.len() < self.alive.len() {
            if self.cursor >= self.alive.len() {
                self.cursor = 0;
            }
            let i = self.alive[self.cursor] as usize;
            if self.seen[i] == round {
                self.cursor += 1;
            } else if self.feasible(i) {
                self.seen[i] = round;
                self.candidates.push(i);
                self.cursor += 1;
            } else {
                self.alive.swap_remove(self.cursor);
            }
        }
    }

    fn feasible(&mut self, i: usize) -> bool {
        if self.rejected[i].is_some() {
            return false;
        }
        let node = &self.nodes[i];
        if self.passed_at[i] == Some(node.placed) {
            return true;
        }
        match self.checks.iter().position(|c| !c.passes(node)) {
            Some(k) => {
                self.rejected[i] = Some(u8::try_from(k).unwrap_or(u8::MAX));
                false
            }
            None => {
                self.passed_at[i] = Some(node.placed);
                true
            }
        }
    }

    /// The best candidate: smallest key, then smallest id, then first in the input.
    fn select(&mut self) -> Option<usize> {
        let mut best: Option<(Key, usize)> = None;
        for &i in &self.candidates {
            let k = key(&self.rankers, i, &self.nodes[i], &mut self.rng);
            let better = match &best {
                None => true,
                Some((bk, bi)) => {
                    k.cmp(bk)
                        .then_with(|| self.nodes[i].id_cmp(&self.nodes[*bi]).then(i.cmp(bi)))
                        == Ordering::Less
                }
            };
            if better {
                best = Some((k, i));
            }
        }
        best.map(|(_, i)| i)
    }

    /// Every instance has been rejected: say why, instance by instance and as a whole.
    fn explain(&self) -> Failure {
        let mut rejections = Vec::with_capacity(self.nodes.len());
        let mut closest: Option<(usize, Reason)> = None;
        let mut counts: BTreeMap<Reason, usize> = BTreeMap::new();
        for (i, node) in self.nodes.iter().enumerate() {
            let check = self.rejected[i].and_then(|k| self.checks.get(usize::from(k)));
            let (reason, detail) = match check {
                Some(c) => (c.reason(), c.explain(node)),
                // Not reachable: a failure means every instance was rejected.
                None => (
                    Reason::Inactive,
                    "the container instance was not considered".into(),
                ),
            };
            *counts.entry(reason).or_default() += 1;
            let closer = match closest {
                None => true,
                Some((j, r)) => {
                    reason > r
                        || (reason == r
                            && match reason {
                                Reason::Cpu => node.cpu > self.nodes[j].cpu,
                                Reason::Memory => node.memory > self.nodes[j].memory,
                                _ => false,
                            })
                }
            };
            if closer {
                closest = Some((i, reason));
            }
            rejections.push(Rejection {
                instance_id: node.inst.id.clone(),
                instance_arn: node.inst.arn.clone(),
                reason,
                detail,
            });
        }
        let (reason, detail, arn) = match closest {
            Some((i, reason)) => {
                let summary: Vec<String> = counts
                    .iter()
                    .rev()
                    .map(|(r, n)| format!("{n} {r}"))
                    .collect();
                let detail = format!(
                    "No container instance met all of the task's requirements. The closest \
                     matching container instance {}: {}. Rejected instances: {}.",
                    self.nodes[i].inst.id,
                    rejections[i].detail,
                    summary.join(", ")
                );
                (reason, detail, Some(self.nodes[i].inst.arn.clone()))
            }
            None => (
                Reason::Inactive,
                "No container instance met all of the task's requirements.".to_string(),
                None,
            ),
        };
        Failure {
            reason,
            detail,
            instance_arn: arn,
            rejections: Arc::from(rejections),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{BinpackField, SpreadField};
    use berth_model::TransportProtocol;

    fn inst(id: &str, cpu: u64, memory: u64) -> InstanceView {
        InstanceView {
            id: id.into(),
            arn: format!("arn:aws:ecs:us-east-1:000000000000:container-instance/c/{id}"),
            active: true,
            connected: true,
            remaining: Resources::new(cpu, memory),
            ..InstanceView::default()
        }
    }

    fn zoned(id: &str, zone: &str) -> InstanceView {
        let mut i = inst(id, 4096, 8192);
        i.attributes
            .insert("ecs.availability-zone".into(), Some(zone.into()));
        i
    }

    fn ask(cpu: u64, memory: u64) -> TaskAsk {
        TaskAsk {
            resources: Resources::new(cpu, memory),
            group: "service:web".into(),
            ..TaskAsk::default()
        }
    }

    fn ids(out: &[Result<Placement, Failure>]) -> Vec<String> {
        out.iter()
            .map(|r| match r {
                Ok(p) => p.instance_id.clone(),
                Err(f) => format!("!{}", f.reason),
            })
            .collect()
    }

    fn run(
        instances: &[InstanceView],
        ask: &TaskAsk,
        count: usize,
        strategies: &[Strategy],
        constraints: &[Constraint],
    ) -> Vec<Result<Placement, Failure>> {
        place(instances, ask, count, strategies, constraints, 42).unwrap_or_default()
    }

    const BINPACK_MEMORY: Strategy = Strategy::Binpack {
        field: BinpackField::Memory,
    };
    const SPREAD_INSTANCE: Strategy = Strategy::Spread {
        field: SpreadField::Instance,
    };

    fn spread_zone() -> Strategy {
        Strategy::Spread {
            field: SpreadField::Attribute("ecs.availability-zone".into()),
        }
    }

    #[test]
    fn sample_sizes() {
        assert_eq!(sample_size(1), 1);
        assert_eq!(sample_size(64), 64);
        assert_eq!(sample_size(65), 64);
        assert_eq!(sample_size(200), 64);
        assert_eq!(sample_size(2_000), 88);
        assert_eq!(sample_size(100_000), 136);
    }

    #[test]
    fn errors_before_placement() {
        assert_eq!(
            place(&[], &ask(1, 1), 1, &[], &[], 0),
            Err(SchedError::NoInstances)
        );
        let six = vec![Strategy::Random; 6];
        assert!(matches!(
            place(&[inst("a", 1, 1)], &ask(1, 1), 1, &six, &[], 0),
            Err(SchedError::TooManyStrategies { .. })
        ));
        assert_eq!(
            place(&[inst("a", 1, 1)], &ask(1, 1), 0, &[], &[], 0),
            Ok(vec![])
        );
    }

    #[test]
    fn later_tasks_see_earlier_ones() {
        let out = run(&[inst("a", 4096, 1024)], &ask(10, 300), 4, &[], &[]);
        assert_eq!(ids(&out), ["a", "a", "a", "!RESOURCE:MEMORY"]);
        let Some(Err(f)) = out.last() else {
            panic!("the fourth task fails")
        };
        assert!(
            f.detail.contains("needs 300 MiB of memory, 124 MiB remain"),
            "{}",
            f.detail
        );
    }

    #[test]
    fn failures_report_the_closest_instance() {
        let mut draining = inst("draining", 9999, 9999);
        draining.active = false;
        let mut lost = inst("lost", 9999, 9999);
        lost.connected = false;
        let instances = [
            draining,
            lost,
            inst("small", 4096, 100),
            inst("bigger", 4096, 200),
            inst("slow", 10, 9999),
        ];
        let out = run(&instances, &ask(512, 256), 2, &[], &[]);
        let Some(Err(f)) = out.first() else {
            panic!("nothing fits: {out:?}")
        };
        assert_eq!(f.reason, Reason::Memory);
        assert_eq!(f.instance_arn.as_deref(), Some(instances[3].arn.as_str()));
        assert!(
            f.detail
                .contains("bigger: the task needs 256 MiB of memory, 200 MiB remain"),
            "{}",
            f.detail
        );
        assert!(
            f.detail
                .contains("2 RESOURCE:MEMORY, 1 RESOURCE:CPU, 1 AGENT, 1 INACTIVE"),
            "{}",
            f.detail
        );
        let reasons: Vec<Reason> = f.rejections.iter().map(|r| r.reason).collect();
        assert_eq!(
            reasons,
            [
                Reason::Inactive,
                Reason::Agent,
                Reason::Memory,
                Reason::Memory,
                Reason::Cpu
            ]
        );
        assert_eq!(f.rejections[1].instance_arn, instances[1].arn);
        assert_eq!(out.get(1), out.first(), "the next task fails the same way");
    }

    #[test]
    fn cpu_failures_name_the_instance_with_most_cpu() {
        let instances = [
            inst("a", 100, 9999),
            inst("b", 300, 9999),
            inst("c", 200, 9999),
        ];
        let out = run(&instances, &ask(512, 1), 1, &[], &[]);
        let Some(Err(f)) = out.first() else {
            panic!("{out:?}")
        };
        assert_eq!(f.reason, Reason::Cpu);
        assert_eq!(f.instance_arn.as_deref(), Some(instances[1].arn.as_str()));
    }

    #[test]
    fn member_of_filters_and_explains() {
        let instances = [zoned("a", "us-east-1a"), zoned("b", "us-east-1b")];
        let only_b = Constraint::from_wire(
            "memberOf",
            Some("attribute:ecs.availability-zone == us-east-1b"),
        )
        .expect("valid");
        let out = run(
            &instances,
            &ask(1, 1),
            3,
            &[],
            std::slice::from_ref(&only_b),
        );
        assert_eq!(ids(&out), ["b", "b", "b"]);
        let nowhere = Constraint::from_wire(
            "memberOf",
            Some("attribute:ecs.instance-type == p3.2xlarge"),
        )
        .expect("valid");
        let out = run(&instances, &ask(1, 1), 1, &[], &[nowhere]);
        let Some(Err(f)) = out.first() else {
            panic!("{out:?}")
        };
        assert_eq!(
            f.reason.as_str(),
            "MemberOf placement constraint unsatisfied."
        );
        assert!(f.detail.contains("p3.2xlarge"), "{}", f.detail);
    }

    #[test]
    fn member_of_sees_this_calls_tasks() {
        // Anti-affinity with the task's own group acts as distinctInstance.
        let instances = [inst("a", 999, 999), inst("b", 999, 999)];
        let anti =
            Constraint::from_wire("memberOf", Some("not(task:group == service:web)")).expect("ok");
        let out = run(&instances, &ask(1, 1), 3, &[SPREAD_INSTANCE], &[anti]);
        assert_eq!(
            ids(&out),
            ["a", "b", "!MemberOf placement constraint unsatisfied."]
        );
    }

    #[test]
    fn distinct_instance() {
        let mut busy = inst("busy", 999, 999);
        busy.task_groups.insert("service:web".into(), 1);
        let instances = [inst("a", 999, 999), busy, inst("c", 999, 999)];
        let out = run(
            &instances,
            &ask(1, 1),
            3,
            &[BINPACK_MEMORY],
            &[Constraint::DistinctInstance],
        );
        assert_eq!(
            ids(&out),
            [
                "a",
                "c",
                "!DistinctInstance placement constraint unsatisfied."
            ]
        );
    }

    #[test]
    fn host_ports_allow_one_task_per_instance() {
        let mut a = ask(1, 1);
        a.host_ports = vec![(80, TransportProtocol::Tcp)];
        let mut taken = inst("taken", 999, 999);
        taken.ports_in_use.insert((80, TransportProtocol::Tcp));
        let instances = [inst("a", 999, 999), taken, inst("c", 999, 999)];
        let out = run(&instances, &a, 3, &[BINPACK_MEMORY], &[]);
        assert_eq!(ids(&out), ["a", "c", "!RESOURCE:PORTS"]);
        let Some(Err(f)) = out.last() else {
            panic!("{out:?}")
        };
        assert_eq!(f.rejections[1].detail, "host port 80/tcp is already in use");
    }

    #[test]
    fn binpack_fills_the_fullest_first() {
        let instances = [
            inst("a", 4096, 2048),
            inst("b", 4096, 1024),
            inst("c", 4096, 4096),
        ];
        let out = run(&instances, &ask(1, 512), 7, &[BINPACK_MEMORY], &[]);
        assert_eq!(ids(&out), ["b", "b", "a", "a", "a", "a", "c"]);
    }

    #[test]
    fn binpack_ties_go_to_the_other_resource_then_the_id() {
        let instances = [
            inst("b", 100, 1024),
            inst("a", 100, 1024),
            inst("c", 50, 1024),
        ];
        let out = run(&instances, &ask(1, 1), 1, &[BINPACK_MEMORY], &[]);
        assert_eq!(ids(&out), ["c"]);
        let out = run(&instances[..2], &ask(1, 1), 1, &[BINPACK_MEMORY], &[]);
        assert_eq!(ids(&out), ["a"]);
    }

    #[test]
    fn spread_over_instances_round_robins() {
        let mut b = inst("b", 999, 999);
        b.task_groups.insert("service:web".into(), 1);
        b.task_groups.insert("service:other".into(), 5);
        let instances = [inst("a", 999, 999), b, inst("c", 999, 999)];
        let out = run(&instances, &ask(1, 1), 5, &[SPREAD_INSTANCE], &[]);
        assert_eq!(ids(&out), ["a", "c", "a", "b", "c"]);
    }

    #[test]
    fn spread_over_zones_then_binpack_within() {
        // ECS's documented example: even over zones, then binpack memory inside each.
        let mut instances = vec![
            zoned("a1", "us-east-1a"),
            zoned("a2", "us-east-1a"),
            zoned("b1", "us-east-1b"),
            zoned("b2", "us-east-1b"),
        ];
        instances[1].remaining.memory = 4096; // a2 is the fuller in zone a
        instances[3].remaining.memory = 2048; // b2 is the fuller in zone b
        let out = run(
            &instances,
            &ask(1, 1024),
            4,
            &[spread_zone(), BINPACK_MEMORY],
            &[],
        );
        // Zones tie at first, so binpack decides: b2 has the least memory.
        assert_eq!(ids(&out), ["b2", "a2", "b2", "a2"]);
    }

    #[test]
    fn spread_over_zones_counts_existing_tasks() {
        let mut instances = vec![
            zoned("a1", "us-east-1a"),
            zoned("b1", "us-east-1b"),
            zoned("c1", "us-east-1c"),
        ];
        instances[0].task_groups.insert("service:web".into(), 2);
        let out = run(&instances, &ask(1, 1), 4, &[spread_zone()], &[]);
        assert_eq!(ids(&out), ["b1", "c1", "b1", "c1"]);
    }

    #[test]
    fn random_is_reproducible_and_is_the_default() {
        let instances: Vec<_> = (0..20)
            .map(|i| inst(&format!("i{i:02}"), 999, 999))
            .collect();
        let a = ids(&run(&instances, &ask(1, 1), 10, &[Strategy::Random], &[]));
        let b = ids(&run(&instances, &ask(1, 1), 10, &[Strategy::Random], &[]));
        let default = ids(&run(&instances, &ask(1, 1), 10, &[], &[]));
        assert_eq!(a, b);
        assert_eq!(a, default);
        let other = place(&instances, &ask(1, 1), 10, &[], &[], 43).unwrap_or_default();
        assert_ne!(a, ids(&other), "another seed, another draw");
        let distinct: std::collections::BTreeSet<_> = a.iter().collect();
        assert!(distinct.len() > 3, "random actually spreads: {a:?}");
    }

    #[test]
    fn large_clusters_are_sampled_but_spread_well() {
        let instances: Vec<_> = (0..1000)
            .map(|i| inst(&format!("i{i:04}"), 999, 999))
            .collect();
        let out = run(
            &instances,
            &ask(1, 1),
            300,
            &[SPREAD_INSTANCE, BINPACK_MEMORY],
            &[],
        );
        let used: std::collections::BTreeSet<_> = ids(&out).into_iter().collect();
        assert_eq!(used.len(), 300, "every task on its own instance");
    }

    #[test]
    fn large_clusters_binpack_keeps_filling_the_chosen_instance() {
        let instances: Vec<_> = (0..1000)
            .map(|i| inst(&format!("i{i:04}"), 999, 1000))
            .collect();
        let out = run(&instances, &ask(1, 250), 40, &[BINPACK_MEMORY], &[]);
        let used: std::collections::BTreeSet<_> = ids(&out).into_iter().collect();
        assert_eq!(used.len(), 10, "four tasks fill an instance");
    }

    #[test]
    fn large_clusters_find_the_few_feasible_instances() {
        let mut instances: Vec<_> = (0..2000)
            .map(|i| inst(&format!("i{i:04}"), 999, 10))
            .collect();
        instances[1234].remaining.memory = 1000;
        instances[77].remaining.memory = 500;
        let out = run(&instances, &ask(1, 500), 4, &[BINPACK_MEMORY], &[]);
        assert_eq!(ids(&out), ["i0077", "i1234", "i1234", "!RESOURCE:MEMORY"]);
        let Some(Err(f)) = out.last() else {
            panic!("{out:?}")
        };
        assert_eq!(f.rejections.len(), 2000);
        // All the others have 10 MiB left: the first of them is the closest.
        assert_eq!(f.instance_arn.as_deref(), Some(instances[0].arn.as_str()));
    }

    #[test]
    fn absurd_counts_do_not_preallocate() {
        let out = place(&[inst("a", 0, 0)], &ask(1, 1), 5, &[], &[], 0).unwrap_or_default();
        assert_eq!(out.len(), 5);
    }
}
