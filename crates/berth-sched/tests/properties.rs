//! Properties of `place` over random clusters, asks, strategies and constraints.

use std::collections::{BTreeMap, BTreeSet};

use berth_model::TransportProtocol;
use berth_sched::{
    place, BinpackField, Constraint, Expr, Failure, InstanceView, Placement, Reason, Resources,
    SpreadField, TaskAsk,
};
use proptest::prelude::*;

const GROUP: &str = "service:web";
const ZONE: &str = "ecs.availability-zone";
const PORTS: [(u16, TransportProtocol); 3] = [
    (80, TransportProtocol::Tcp),
    (443, TransportProtocol::Tcp),
    (53, TransportProtocol::Udp),
];

fn zone(z: usize) -> String {
    format!("us-east-1{}", ["a", "b", "c", "d"][z % 4])
}

#[allow(clippy::too_many_arguments)]
fn instance(
    index: usize,
    active: bool,
    connected: bool,
    cpu: u64,
    memory: u64,
    ports: Vec<bool>,
    z: Option<usize>,
    web: u32,
) -> InstanceView {
    let mut i = InstanceView {
        id: format!("i-{index:04}"),
        arn: format!("arn:aws:ecs:us-east-1:000000000000:container-instance/c/i-{index:04}"),
        active,
        connected,
        remaining: Resources::new(cpu, memory),
        registered_at: 1.7e9,
        ..InstanceView::default()
    };
    for (taken, port) in ports.iter().zip(PORTS) {
        if *taken {
            i.ports_in_use.insert(port);
        }
    }
    if let Some(z) = z {
        i.attributes.insert(ZONE.into(), Some(zone(z)));
    }
    if web > 0 {
        i.task_groups.insert(GROUP.into(), web);
    }
    i
}

fn any_instance() -> impl Strategy<Value = (bool, bool, u64, u64, Vec<bool>, Option<usize>, u32)> {
    (
        prop::bool::weighted(0.9),
        prop::bool::weighted(0.9),
        0u64..4096,
        0u64..8192,
        prop::collection::vec(prop::bool::weighted(0.2), 3),
        prop::option::weighted(0.9, 0usize..4),
        prop_oneof![4 => Just(0u32), 1 => 1u32..3],
    )
}

fn cluster(max: usize) -> impl Strategy<Value = Vec<InstanceView>> {
    prop::collection::vec(any_instance(), 1..max).prop_map(|v| {
        v.into_iter()
            .enumerate()
            .map(|(i, (a, c, cpu, mem, ports, z, web))| instance(i, a, c, cpu, mem, ports, z, web))
            .collect()
    })
}

fn any_ask() -> impl Strategy<Value = TaskAsk> {
    (
        0u64..1024,
        0u64..2048,
        prop::collection::vec(any::<bool>(), 3),
    )
        .prop_map(|(cpu, mem, ports)| TaskAsk {
            resources: Resources::new(cpu, mem),
            host_ports: ports
                .iter()
                .zip(PORTS)
                .filter(|(wanted, _)| **wanted)
                .map(|(_, p)| p)
                .collect(),
            group: GROUP.into(),
            ..TaskAsk::default()
        })
}

fn any_strategy() -> impl Strategy<Value = berth_sched::Strategy> {
    prop_oneof![
        Just(berth_sched::Strategy::Binpack {
            field: BinpackField::Cpu
        }),
        Just(berth_sched::Strategy::Binpack {
            field: BinpackField::Memory
        }),
        Just(berth_sched::Strategy::Spread {
            field: SpreadField::Instance
        }),
        Just(berth_sched::Strategy::Spread {
            field: SpreadField::Attribute(ZONE.into())
        }),
        Just(berth_sched::Strategy::Random),
    ]
}

fn any_constraints() -> impl Strategy<Value = Vec<Constraint>> {
    (
        any::<bool>(),
        prop::option::of(prop_oneof![
            Just("attribute:ecs.availability-zone != us-east-1b"),
            Just("attribute:ecs.availability-zone in [us-east-1a, us-east-1c]"),
            Just("not(attribute:ecs.availability-zone =~ .*d)"),
            Just("attribute:ecs.availability-zone exists or runningTasksCount == 0"),
        ]),
    )
        .prop_map(|(distinct, expr)| {
            let mut c = Vec::new();
            if distinct {
                c.push(Constraint::DistinctInstance);
            }
            if let Some(e) = expr {
                if let Ok(m) = Constraint::from_wire("memberOf", Some(e)) {
                    c.push(m);
                }
            }
            c
        })
}

/// Whether `inst`, after receiving `placed` tasks of this call, can take one more.
fn fits(inst: &InstanceView, placed: u64, ask: &TaskAsk, constraints: &[Constraint]) -> bool {
    let cpu = inst
        .remaining
        .cpu
        .saturating_sub(placed * ask.resources.cpu);
    let mem = inst
        .remaining
        .memory
        .saturating_sub(placed * ask.resources.memory);
    let existing = u64::from(inst.task_groups.get(GROUP).copied().unwrap_or(0));
    inst.active
        && inst.connected
        && cpu >= ask.resources.cpu
        && mem >= ask.resources.memory
        && (ask.host_ports.is_empty()
            || (placed == 0 && !ask.host_ports.iter().any(|p| inst.ports_in_use.contains(p))))
        && constraints.iter().all(|c| match c {
            Constraint::DistinctInstance => existing + placed == 0,
            Constraint::MemberOf(e) => e.matches(inst),
        })
}

type Outcome = Vec<Result<Placement, Failure>>;

fn run(
    instances: &[InstanceView],
    ask: &TaskAsk,
    count: usize,
    strategies: &[berth_sched::Strategy],
    constraints: &[Constraint],
    seed: u64,
) -> Result<Outcome, TestCaseError> {
    place(instances, ask, count, strategies, constraints, seed)
        .map_err(|e| TestCaseError::fail(format!("place failed: {e}")))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Never over-commits, never uses an instance that may not be used, honours every
    /// constraint, fails only when nothing fits, and is reproducible.
    #[test]
    fn placements_are_safe_complete_and_deterministic(
        instances in cluster(140),
        ask in any_ask(),
        count in 1usize..40,
        strategies in prop::collection::vec(any_strategy(), 0..3),
        constraints in any_constraints(),
        seed in any::<u64>(),
    ) {
        let out = run(&instances, &ask, count, &strategies, &constraints, seed)?;
        prop_assert_eq!(out.len(), count);
        let mut placed: BTreeMap<usize, u64> = BTreeMap::new();
        let mut failed = false;
        for result in &out {
            match result {
                Ok(p) => {
                    prop_assert!(!failed, "a success after a failure");
                    let inst = &instances[p.index];
                    prop_assert_eq!(&inst.id, &p.instance_id);
                    let n = placed.get(&p.index).copied().unwrap_or(0);
                    prop_assert!(
                        fits(inst, n, &ask, &constraints),
                        "task placed on {} which could not take it", inst.id
                    );
                    placed.insert(p.index, n + 1);
                }
                Err(f) => {
                    failed = true;
                    // Complete: no instance could have taken it.
                    for (i, inst) in instances.iter().enumerate() {
                        let n = placed.get(&i).copied().unwrap_or(0);
                        prop_assert!(!fits(inst, n, &ask, &constraints), "{} fits", inst.id);
                    }
                    prop_assert_eq!(f.rejections.len(), instances.len());
                    let worst = f.rejections.iter().map(|r| r.reason).max();
                    prop_assert_eq!(Some(f.reason), worst);
                    prop_assert!(f.instance_arn.is_some());
                }
            }
        }
        // Totals, summed over the call.
        for (&i, &n) in &placed {
            let inst = &instances[i];
            prop_assert!(n * ask.resources.cpu <= inst.remaining.cpu);
            prop_assert!(n * ask.resources.memory <= inst.remaining.memory);
            prop_assert!(inst.active && inst.connected);
            if !ask.host_ports.is_empty() {
                prop_assert_eq!(n, 1);
            }
            if constraints.contains(&Constraint::DistinctInstance) {
                prop_assert_eq!(n, 1);
                prop_assert!(!inst.task_groups.contains_key(GROUP));
            }
        }
        let again = run(&instances, &ask, count, &strategies, &constraints, seed)?;
        prop_assert_eq!(out, again);
    }

    /// With room everywhere, spreading keeps the per-value task counts within one of each
    /// other (exact ranking: at most 64 instances).
    #[test]
    fn spread_is_even_when_capacity_allows(
        zones in prop::collection::vec(0usize..4, 1..=64),
        by_zone in any::<bool>(),
        then_binpack in any::<bool>(),
        count in 1usize..120,
        seed in any::<u64>(),
    ) {
        let instances: Vec<_> = zones
            .iter()
            .enumerate()
            .map(|(i, &z)| instance(i, true, true, 1 << 20, 1 << 20, vec![false; 3], Some(z), 0))
            .collect();
        let mut strategies = vec![berth_sched::Strategy::Spread {
            field: if by_zone { SpreadField::Attribute(ZONE.into()) } else { SpreadField::Instance },
        }];
        if then_binpack {
            strategies.push(berth_sched::Strategy::Binpack { field: BinpackField::Memory });
        }
        let ask = TaskAsk { resources: Resources::new(1, 1), group: GROUP.into(), ..TaskAsk::default() };
        let out = run(&instances, &ask, count, &strategies, &[], seed)?;
        let value = |i: usize| if by_zone { zone(zones[i]) } else { instances[i].id.clone() };
        let mut per_value: BTreeMap<String, u64> =
            (0..instances.len()).map(|i| (value(i), 0)).collect();
        for r in &out {
            let p = r.as_ref().map_err(|f| TestCaseError::fail(f.detail.clone()))?;
            *per_value.entry(value(p.index)).or_insert(0) += 1;
        }
        let min = per_value.values().min().copied().unwrap_or(0);
        let max = per_value.values().max().copied().unwrap_or(0);
        prop_assert!(max - min <= 1, "uneven spread: {:?}", per_value);
    }

    /// Expressions never panic on arbitrary input, and what parses evaluates.
    #[test]
    fn expressions_never_panic(src in "\\PC{0,60}", inst in any_instance()) {
        let (a, c, cpu, mem, ports, z, web) = inst;
        let view = instance(0, a, c, cpu, mem, ports, z, web);
        if let Ok(e) = Expr::parse(&src) {
            let _ = e.matches(&view);
        }
    }

    /// Expressions assembled from the grammar's pieces always parse.
    #[test]
    fn grammar_sentences_parse(
        parts in prop::collection::vec((0usize..8, 0usize..10, any::<bool>(), any::<bool>()), 1..6)
    ) {
        let subjects = [
            "attribute:ecs.instance-type", "attribute:stack", "task:group", "ec2InstanceId",
            "agentConnected", "runningTasksCount", "agentVersion", "registeredAt",
        ];
        let mut src = String::new();
        for (k, (s, o, negate, or)) in parts.iter().enumerate() {
            if k > 0 {
                src.push_str(if *or { " or " } else { " and " });
            }
            let subject = subjects[*s];
            let cond = match (subject, o % 5) {
                ("agentConnected", 0 | 1) => format!("{subject} == true"),
                ("agentConnected", _) => format!("{subject} in [true, FALSE]"),
                ("runningTasksCount", n) => format!("{subject} >= {n}"),
                ("agentVersion", _) => format!("{subject} < 1.{o}.0"),
                ("registeredAt", _) => format!("{subject} <= 2018-06-18T22:28:28Z"),
                (_, 0) => format!("{subject} == t2.small"),
                (_, 1) => format!("{subject} =~ t2.*"),
                (_, 2) => format!("{subject} not_in ['a b', c]"),
                (s, _) if s.starts_with("attribute:") || s == "task:group" => format!("{subject} !exists"),
                (_, _) => format!("{subject} != x"),
            };
            if *negate {
                src.push_str(&format!("not({cond})"));
            } else {
                src.push_str(&cond);
            }
        }
        prop_assert!(Expr::parse(&src).is_ok(), "{}", src);
    }
}

#[test]
fn failure_reasons_are_ecs_strings() {
    let all: BTreeSet<&str> = [
        Reason::Inactive,
        Reason::Agent,
        Reason::Attribute,
        Reason::MemberOf,
        Reason::DistinctInstance,
        Reason::Cpu,
        Reason::Memory,
        Reason::Ports,
    ]
    .iter()
    .map(|r| r.as_str())
    .collect();
    assert!(all.contains("RESOURCE:MEMORY"));
    assert!(all.contains("MemberOf placement constraint unsatisfied."));
    assert_eq!(all.len(), 8);
}
