//! The feasibility chain: small checks, each answering "can this instance take the task?"
//! and, when it cannot, "why not?" (an ECS reason and a sentence with numbers).
//!
//! The chain runs in the order of [`Reason`]: status, agent, required attributes, memberOf
//! constraints, distinctInstance, cpu, memory, ports. An instance stops at the first check
//! it fails, so the check that rejected it also says how close it came. Every check looks
//! at the instance alone (its snapshot plus this call's placements on it), which is what
//! lets the stack remember a rejection for the rest of the call.

use std::collections::{BTreeMap, BTreeSet};

use berth_model::TransportProtocol;

use crate::expr::Expr;
use crate::index::Node;
use crate::model::{Reason, TaskAsk};
use crate::policy::Constraint;

pub(crate) trait Check {
    fn reason(&self) -> Reason;
    fn passes(&self, node: &Node<'_>) -> bool;
    /// Why `node` does not pass (only asked of nodes that failed).
    fn explain(&self, node: &Node<'_>) -> String;
}

/// Builds the chain for one ask and its constraints.
pub(crate) fn chain<'a>(
    ask: &'a TaskAsk,
    constraints: &'a [Constraint],
) -> Vec<Box<dyn Check + 'a>> {
    let mut checks: Vec<Box<dyn Check + 'a>> = vec![Box::new(Status), Box::new(Agent)];
    if !ask.required_attributes.is_empty() {
        checks.push(Box::new(Attributes(&ask.required_attributes)));
    }
    for c in constraints {
        if let Constraint::MemberOf(expr) = c {
            checks.push(Box::new(MemberOf(expr)));
        }
    }
    if constraints
        .iter()
        .any(|c| matches!(c, Constraint::DistinctInstance))
    {
        checks.push(Box::new(Distinct));
    }
    if ask.resources.cpu > 0 {
        checks.push(Box::new(Cpu(ask.resources.cpu)));
    }
    if ask.resources.memory > 0 {
        checks.push(Box::new(Memory(ask.resources.memory)));
    }
    let mut ports = Vec::new();
    let mut unique = BTreeSet::new();
    let mut duplicate = None;
    for &(port, proto) in &ask.host_ports {
        if port == 0 {
            continue;
        }
        if unique.insert((port, proto)) {
            ports.push((port, proto));
        } else if duplicate.is_none() {
            duplicate = Some((port, proto));
        }
    }
    if !ports.is_empty() {
        checks.push(Box::new(Ports { ports, duplicate }));
    }
    checks
}

struct Status;

impl Check for Status {
    fn reason(&self) -> Reason {
        Reason::Inactive
    }
    fn passes(&self, node: &Node<'_>) -> bool {
        node.inst.active
    }
    fn explain(&self, _: &Node<'_>) -> String {
        "the container instance is not ACTIVE (draining or deregistered)".to_string()
    }
}

struct Agent;

impl Check for Agent {
    fn reason(&self) -> Reason {
        Reason::Agent
    }
    fn passes(&self, node: &Node<'_>) -> bool {
        node.inst.connected
    }
    fn explain(&self, _: &Node<'_>) -> String {
        "the container agent is disconnected".to_string()
    }
}

struct Attributes<'a>(&'a BTreeMap<String, Option<String>>);

impl Check for Attributes<'_> {
    fn reason(&self) -> Reason {
        Reason::Attribute
    }
    fn passes(&self, node: &Node<'_>) -> bool {
        self.0.iter().all(
            |(name, want)| match (node.inst.attributes.get(name), want) {
                (None, _) => false,
                (Some(_), None) => true,
                (Some(have), Some(want)) => have.as_deref() == Some(want.as_str()),
            },
        )
    }
    fn explain(&self, node: &Node<'_>) -> String {
        for (name, want) in self.0 {
            match (node.inst.attributes.get(name), want) {
                (None, None) => return format!("the required attribute {name} is missing"),
                (None, Some(want)) => {
                    return format!("the required attribute {name} (= {want}) is missing")
                }
                (Some(have), Some(want)) if have.as_deref() != Some(want.as_str()) => {
                    return format!(
                        "attribute {name} is {}, the task requires {want}",
                        have.as_deref().unwrap_or("(no value)")
                    )
                }
                _ => {}
            }
        }
        "a required attribute is missing".to_string()
    }
}

struct MemberOf<'a>(&'a Expr);

impl Check for MemberOf<'_> {
    fn reason(&self) -> Reason {
        Reason::MemberOf
    }
    fn passes(&self, node: &Node<'_>) -> bool {
        self.0.eval(node)
    }
    fn explain(&self, _: &Node<'_>) -> String {
        format!(
            "the container instance does not satisfy the memberOf expression `{}`",
            self.0.source()
        )
    }
}

struct Distinct;

impl Check for Distinct {
    fn reason(&self) -> Reason {
        Reason::DistinctInstance
    }
    fn passes(&self, node: &Node<'_>) -> bool {
        node.group_count() == 0
    }
    fn explain(&self, node: &Node<'_>) -> String {
        if node.existing > 0 {
            format!(
                "the container instance already runs {} task(s) of group {}",
                node.existing, node.group
            )
        } else {
            "the container instance already received a task of this placement".to_string()
        }
    }
}

struct Cpu(u64);

impl Check for Cpu {
    fn reason(&self) -> Reason {
        Reason::Cpu
    }
    fn passes(&self, node: &Node<'_>) -> bool {
        node.cpu >= self.0
    }
    fn explain(&self, node: &Node<'_>) -> String {
        format!("the task needs {} CPU units, {} remain", self.0, node.cpu)
    }
}

struct Memory(u64);

impl Check for Memory {
    fn reason(&self) -> Reason {
        Reason::Memory
    }
    fn passes(&self, node: &Node<'_>) -> bool {
        node.memory >= self.0
    }
    fn explain(&self, node: &Node<'_>) -> String {
        format!(
            "the task needs {} MiB of memory, {} MiB remain",
            self.0, node.memory
        )
    }
}

struct Ports {
    /// The fixed host ports, without duplicates.
    ports: Vec<(u16, TransportProtocol)>,
    /// A port the task itself binds twice: no instance can take it.
    duplicate: Option<(u16, TransportProtocol)>,
}

impl Check for Ports {
    fn reason(&self) -> Reason {
        Reason::Ports
    }
    fn passes(&self, node: &Node<'_>) -> bool {
        // Every task of a call binds the same ports, so a second one never fits.
        self.duplicate.is_none()
            && node.placed == 0
            && !self
                .ports
                .iter()
                .any(|p| node.inst.ports_in_use.contains(p))
    }
    fn explain(&self, node: &Node<'_>) -> String {
        if let Some((port, proto)) = self.duplicate {
            return format!("the task binds host port {port}/{proto} more than once");
        }
        if let Some((port, proto)) = self
            .ports
            .iter()
            .find(|p| node.inst.ports_in_use.contains(p))
        {
            return format!("host port {port}/{proto} is already in use");
        }
        "a task of this placement already binds the same host ports".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{InstanceView, Resources};

    fn inst() -> InstanceView {
        InstanceView {
            id: "a".into(),
            arn: "arn:a".into(),
            active: true,
            connected: true,
            remaining: Resources::new(1024, 2048),
            ..InstanceView::default()
        }
    }

    /// The reason of the first failing check, or None if the instance passes.
    fn verdict(inst: &InstanceView, ask: &TaskAsk, constraints: &[Constraint]) -> Option<Reason> {
        let node = Node::new(inst, &ask.group);
        chain(ask, constraints)
            .iter()
            .find(|c| !c.passes(&node))
            .map(|c| c.reason())
    }

    fn ask(cpu: u64, memory: u64) -> TaskAsk {
        TaskAsk {
            resources: Resources::new(cpu, memory),
            group: "service:web".into(),
            ..TaskAsk::default()
        }
    }

    #[test]
    fn status_and_agent() {
        assert_eq!(verdict(&inst(), &ask(1, 1), &[]), None);
        let draining = InstanceView {
            active: false,
            ..inst()
        };
        assert_eq!(verdict(&draining, &ask(1, 1), &[]), Some(Reason::Inactive));
        let disconnected = InstanceView {
            connected: false,
            ..inst()
        };
        assert_eq!(verdict(&disconnected, &ask(1, 1), &[]), Some(Reason::Agent));
    }

    #[test]
    fn resources() {
        assert_eq!(verdict(&inst(), &ask(1024, 2048), &[]), None, "exact fit");
        assert_eq!(verdict(&inst(), &ask(1025, 1), &[]), Some(Reason::Cpu));
        assert_eq!(verdict(&inst(), &ask(1, 2049), &[]), Some(Reason::Memory));
        assert_eq!(
            verdict(&inst(), &ask(2000, 4000), &[]),
            Some(Reason::Cpu),
            "cpu is checked first"
        );
        let empty = InstanceView {
            remaining: Resources::new(0, 0),
            ..inst()
        };
        assert_eq!(
            verdict(&empty, &ask(0, 0), &[]),
            None,
            "zero asks fit anywhere"
        );
    }

    #[test]
    fn ports() {
        let mut i = inst();
        i.ports_in_use.insert((80, TransportProtocol::Tcp));
        let mut a = ask(1, 1);
        a.host_ports = vec![(80, TransportProtocol::Udp), (0, TransportProtocol::Tcp)];
        assert_eq!(verdict(&i, &a, &[]), None, "same port, other protocol");
        a.host_ports.push((80, TransportProtocol::Tcp));
        assert_eq!(verdict(&i, &a, &[]), Some(Reason::Ports));
        let mut twice = ask(1, 1);
        twice.host_ports = vec![
            (8080, TransportProtocol::Tcp),
            (8080, TransportProtocol::Tcp),
        ];
        assert_eq!(verdict(&inst(), &twice, &[]), Some(Reason::Ports));
        let checks = chain(&twice, &[]);
        let node = Node::new(&i, "");
        let explained = checks.last().map(|c| c.explain(&node)).unwrap_or_default();
        assert!(explained.contains("more than once"), "{explained}");
    }

    #[test]
    fn ports_after_a_placement_in_the_same_call() {
        let i = inst();
        let mut a = ask(1, 1);
        a.host_ports = vec![(80, TransportProtocol::Tcp)];
        let checks = chain(&a, &[]);
        let mut node = Node::new(&i, &a.group);
        assert!(checks.iter().all(|c| c.passes(&node)));
        node.take(a.resources);
        let failing: Vec<_> = checks.iter().filter(|c| !c.passes(&node)).collect();
        assert_eq!(failing.len(), 1);
        assert_eq!(failing[0].reason(), Reason::Ports);
    }

    #[test]
    fn required_attributes() {
        let mut i = inst();
        i.attributes
            .insert("ecs.cpu-architecture".into(), Some("x86_64".into()));
        i.attributes.insert("gpu".into(), None);
        let mut a = ask(1, 1);
        a.required_attributes.insert("gpu".into(), None);
        assert_eq!(verdict(&i, &a, &[]), None);
        a.required_attributes
            .insert("ecs.cpu-architecture".into(), Some("arm64".into()));
        assert_eq!(verdict(&i, &a, &[]), Some(Reason::Attribute));
        let node = Node::new(&i, "");
        let why = Attributes(&a.required_attributes).explain(&node);
        assert_eq!(
            why,
            "attribute ecs.cpu-architecture is x86_64, the task requires arm64"
        );
    }

    #[test]
    fn member_of() {
        let mut i = inst();
        i.attributes
            .insert("ecs.instance-type".into(), Some("t2.small".into()));
        let t2 = Constraint::from_wire("memberOf", Some("attribute:ecs.instance-type =~ t2.*"))
            .expect("valid");
        let m5 = Constraint::from_wire("memberOf", Some("attribute:ecs.instance-type =~ m5.*"))
            .expect("valid");
        assert_eq!(verdict(&i, &ask(1, 1), std::slice::from_ref(&t2)), None);
        assert_eq!(
            verdict(&i, &ask(1, 1), &[t2.clone(), m5.clone()]),
            Some(Reason::MemberOf)
        );
        assert_eq!(
            verdict(&i, &ask(1, 99_999), &[m5]),
            Some(Reason::MemberOf),
            "constraints come before resources"
        );
        assert_eq!(verdict(&i, &ask(1, 99_999), &[t2]), Some(Reason::Memory));
    }

    #[test]
    fn distinct_instance() {
        let mut i = inst();
        let d = [Constraint::DistinctInstance, Constraint::DistinctInstance];
        assert_eq!(verdict(&i, &ask(1, 1), &d), None);
        i.task_groups.insert("service:other".into(), 3);
        assert_eq!(
            verdict(&i, &ask(1, 1), &d),
            None,
            "other groups do not count"
        );
        i.task_groups.insert("service:web".into(), 1);
        assert_eq!(verdict(&i, &ask(1, 1), &d), Some(Reason::DistinctInstance));
        assert_eq!(
            chain(&ask(1, 1), &d).len(),
            5,
            "status, agent, distinct once, cpu, memory"
        );
    }
}
