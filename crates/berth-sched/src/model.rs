//! The data that goes in (a snapshot of the cluster, the task to place) and comes out
//! (a placement, or a failure with its reasons).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;

use berth_model::TransportProtocol;
use serde::{Deserialize, Serialize};

/// CPU units (1024 = one vCPU, as ECS counts) and memory in MiB.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct Resources {
    /// CPU units.
    pub cpu: u64,
    /// Memory, MiB.
    pub memory: u64,
}

impl Resources {
    /// `cpu` units and `memory` MiB.
    pub const fn new(cpu: u64, memory: u64) -> Self {
        Resources { cpu, memory }
    }
}

/// What the scheduler needs to know about one container instance, as of the snapshot.
///
/// The caller builds it from its records; the scheduler never mutates it (placements made
/// within one [`crate::place`] call are tracked in the call's own index).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct InstanceView {
    /// Container instance id (a UUID). `spread` over `instanceId` / `host` uses it; the
    /// query language's `ec2InstanceId` compares with it unless the instance has an
    /// `ecs.instance-id` attribute.
    pub id: String,
    /// Container instance ARN; failures carry it.
    pub arn: String,
    /// Status is ACTIVE (false for DRAINING and INACTIVE).
    pub active: bool,
    /// `agentConnected`.
    pub connected: bool,
    /// Resources not reserved by the tasks already on it.
    pub remaining: Resources,
    /// Host ports taken (by running tasks and the instance's reserved ports).
    pub ports_in_use: BTreeSet<(u16, TransportProtocol)>,
    /// ECS attributes (`ecs.os-type`, `ecs.cpu-architecture`, `ecs.instance-type`,
    /// `ecs.availability-zone`, custom ones). `None` is an attribute without a value.
    pub attributes: BTreeMap<String, Option<String>>,
    /// Running or pending tasks on it, per task group (`service:web`, `family:web`, ...).
    pub task_groups: BTreeMap<String, u32>,
    /// Registration time, epoch seconds (the query language's `registeredAt`).
    pub registered_at: f64,
    /// `runningTasksCount`.
    pub running_tasks: u32,
    /// `pendingTasksCount`.
    pub pending_tasks: u32,
    /// `versionInfo.agentVersion` (the query language's `agentVersion`), if known.
    pub agent_version: Option<String>,
}

/// One task to place (all `count` tasks of a call are alike).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TaskAsk {
    /// What the task reserves: task-level cpu / memory, or the sum over its containers.
    pub resources: Resources,
    /// Fixed host ports the task binds. Port 0 (dynamic) is ignored.
    pub host_ports: Vec<(u16, TransportProtocol)>,
    /// The task group (`service:NAME` or `family:NAME` or the RunTask `group`): spread
    /// counts and `distinctInstance` look at tasks of this group.
    pub group: String,
    /// Attributes the instance must have, with the value it must have if `Some` (e.g.
    /// `ecs.cpu-architecture = arm64` from a task definition's `runtimePlatform`). An
    /// instance without them is rejected with `ATTRIBUTE`.
    pub required_attributes: BTreeMap<String, Option<String>>,
}

/// Where one task goes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Placement {
    /// The chosen container instance's id.
    pub instance_id: String,
    /// Its position in the `instances` slice given to [`crate::place`].
    pub index: usize,
}

/// Why a container instance was not chosen, as ECS names it in RunTask's `failures[].reason`.
///
/// The order is the order of the feasibility chain: an instance rejected by a later check
/// passed all the earlier ones, so it is "closer" to fitting. A failed task reports the
/// greatest reason over all instances (see [`Failure`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Reason {
    /// `INACTIVE`: the instance is not ACTIVE (draining or deregistered).
    Inactive,
    /// `AGENT`: its container agent is disconnected.
    Agent,
    /// `ATTRIBUTE`: it lacks an attribute the task requires.
    Attribute,
    /// `MemberOf placement constraint unsatisfied.`
    MemberOf,
    /// `DistinctInstance placement constraint unsatisfied.`
    DistinctInstance,
    /// `RESOURCE:CPU`.
    Cpu,
    /// `RESOURCE:MEMORY`.
    Memory,
    /// `RESOURCE:PORTS`.
    Ports,
}

impl Reason {
    /// ECS's reason string.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Inactive => "INACTIVE",
            Reason::Agent => "AGENT",
            Reason::Attribute => "ATTRIBUTE",
            Reason::MemberOf => "MemberOf placement constraint unsatisfied.",
            Reason::DistinctInstance => "DistinctInstance placement constraint unsatisfied.",
            Reason::Cpu => "RESOURCE:CPU",
            Reason::Memory => "RESOURCE:MEMORY",
            Reason::Ports => "RESOURCE:PORTS",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why one container instance could not take the task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// The instance's id.
    pub instance_id: String,
    /// The instance's ARN (ECS's `failures[].arn`).
    pub instance_arn: String,
    /// The first check it failed.
    pub reason: Reason,
    /// What exactly, with numbers (`needs 512 MiB of memory, 256 MiB remaining`).
    pub detail: String,
}

/// Why a task could not be placed: no instance passed every check.
///
/// `reason` is the most relevant reason: the greatest [`Reason`] over all instances, i.e.
/// the check that the closest matching instance failed. `instance_arn` names that instance
/// (for resources, the one with the most of the missing resource left), and `detail` says
/// what it lacked and how the other instances were rejected. `rejections` lists every
/// instance with its own reason, in the order of the input slice: an API that wants ECS's
/// one-failure-per-instance answer emits one `failures[]` entry per rejection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The most relevant reason.
    pub reason: Reason,
    /// A sentence for humans.
    pub detail: String,
    /// The closest matching instance.
    pub instance_arn: Option<String>,
    /// One entry per instance. Shared by all failed tasks of a call.
    pub rejections: Arc<[Rejection]>,
}
