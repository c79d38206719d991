//! berth's placement engine: which container instance runs each new task, or why none can.
//!
//! A pure library — no I/O, no clocks, no async. The control plane hands it a snapshot of a
//! cluster's container instances ([`InstanceView`]), the task to place ([`TaskAsk`]) and how
//! many, with ECS placement strategies and constraints; it answers, per task, a
//! [`Placement`] or a [`Failure`] carrying the reasons ECS puts in RunTask's `failures`
//! (`RESOURCE:MEMORY`, `AGENT`, `MemberOf placement constraint unsatisfied.`, ...). The
//! same crate evaluates ECS cluster query language expressions ([`Expr`]), for `memberOf`
//! constraints and ListContainerInstances filters.
//!
//! **Start with [`place`].** Capacity-provider arithmetic (strategy split, managed scaling)
//! is in [`capacity`].
//!
//! # Pipeline
//! Shaped as Nomad's scheduler stack, once per task:
//! 1. **Filters.** A chain of small checks, in this order: status ACTIVE, agent connected,
//!    required attributes, each `memberOf` expression, `distinctInstance`, CPU, memory, host
//!    ports. An instance stops at the first check it fails, and that check's [`Reason`] and
//!    explanation are kept: when no instance passes, they become the [`Failure`] (its most
//!    relevant reason is the one of the instance that got furthest down the chain).
//! 2. **Rank.** Each [`Strategy`] scores the feasible instances (binpack: least remaining;
//!    spread: fewest tasks of the group on the instance's value; random: a seeded draw);
//!    scores compare in strategy order, so later strategies break earlier ties; then fewest
//!    tasks of the group on the instance, then the instance id.
//! 3. **Select** the best, and record the placement in the call's index of free resources
//!    (CPU, memory, ports, group counts, spread counts): placing ten tasks, the tenth sees
//!    the first nine. The snapshot's tasks are never rescanned.
//!
//! # Sampling
//! On clusters of up to [`EXACT_UP_TO`] (64) instances every feasible instance is ranked.
//! On larger ones, as Nomad's limit iterator does, a placement ranks only the next
//! [`sample_size`]`(n)` = `max(64, 8·⌈log2 n⌉)` feasible instances of a seeded random order
//! (continuing where the previous placement stopped), plus the previous choice when a
//! binpack strategy is present. Instances found infeasible are dropped for the rest of the
//! call, so the cost of a placement grows with the sample, not the cluster. Spread over a
//! few values (zones) stays exact in practice; over `instanceId`, and binpack, pick among the
//! best of the sample.
//!
//! # Choices where ECS leaves room
//! - No strategy means `random` (ECS's RunTask default); callers pass `spread` for services.
//! - `distinctInstance` rejects an instance that already runs a task of the group, or got
//!   one earlier in the call.
//! - Instances missing a spread attribute count as one value of their own.
//! - See [`Expr`] for the query language's grammar and semantics.

#![warn(missing_docs)]

pub mod capacity;
mod error;
mod expr;
mod feasible;
mod index;
mod model;
mod policy;
mod rank;
mod rng;
mod stack;

pub use error::SchedError;
pub use expr::Expr;
pub use model::{Failure, InstanceView, Placement, Reason, Rejection, Resources, TaskAsk};
pub use policy::{
    check_limits, BinpackField, Constraint, SpreadField, Strategy, MAX_CONSTRAINTS,
    MAX_EXPRESSION_LEN, MAX_STRATEGIES,
};
pub use stack::{place, sample_size, EXACT_UP_TO};
