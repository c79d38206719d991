//! One task on this host: start its containers in dependency order, watch them, stop them.
//!
//! A runner owns its task from the first poll that names it until the task is STOPPED. It
//! reports every change at once (through the reporter, which never loses the last state), and
//! it reacts to a container's exit through the driver's `wait_exit`, so an essential
//! container's death stops the task in well under a second.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use berth_model::agent::{AgentTask, ContainerReport, TaskReport};
use berth_model::{
    ContainerCondition, ContainerDefinition, DesiredStatus, HealthStatus, NetworkBinding, StopCode,
    TaskStats, TaskStatus,
};
use futures::stream::FuturesUnordered;
use futures::StreamExt;
use tokio::sync::{mpsc, watch};

use super::convert::container_spec;
use super::options::{implicit_dependencies, runtime_spec, task_volumes};
use crate::error::DriverError;
use crate::spec::{ContainerId, ContainerStatus, Health, OwnedContainer, RunState};
use crate::Driver;

/// How often health and stats are looked at while a task runs.
const TICK: Duration = Duration::from_millis(1000);
/// Stats are sampled and reported every this many ticks (5 s): often enough that the
/// autoscaler sees a load step within one of its ten-second periods, rarely enough that a
/// thousand tasks cost the store 200 small writes a second.
const STATS_EVERY_TICKS: u64 = 5;
/// How often a start waits before looking at its dependencies again.
const DEP_POLL: Duration = Duration::from_millis(200);

/// A container's `startTimeout`, if it has one.
fn start_timeout(def: &ContainerDefinition) -> Option<Duration> {
    def.start_timeout
        .and_then(|t| u64::try_from(t).ok())
        .map(Duration::from_secs)
}

fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

struct Slot {
    def: ContainerDefinition,
    id: Option<ContainerId>,
    status: Option<ContainerStatus>,
    /// Set once the container has exited (or failed to start).
    exit: Option<i64>,
    reason: Option<String>,
    start_failed: bool,
    /// Restarts by its restart policy.
    restarts: u32,
    /// Bumped on each restart, so a wait on the container's previous run is ignored.
    generation: u64,
}

impl Slot {
    fn running(&self) -> bool {
        self.id.is_some() && self.exit.is_none()
    }
    fn health(&self) -> HealthStatus {
        match self.status.as_ref().map(|s| s.health) {
            Some(Health::Healthy) => HealthStatus::Healthy,
            Some(Health::Unhealthy) => HealthStatus::Unhealthy,
            _ => HealthStatus::Unknown,
        }
    }
    fn report(&self, task_status: TaskStatus) -> ContainerReport {
        let last_status = if self.exit.is_some() {
            TaskStatus::Stopped
        } else if self.id.is_some() {
            TaskStatus::Running
        } else {
            task_status.min(TaskStatus::Pending)
        };
        ContainerReport {
            name: self.def.name.clone(),
            last_status,
            exit_code: self.exit.filter(|_| !self.start_failed),
            reason: self.reason.clone(),
            network_bindings: self
                .status
                .as_ref()
                .map(|s| {
                    s.bindings
                        .iter()
                        .map(|b| NetworkBinding {
                            bind_ip: b.bind_ip.clone(),
                            container_port: b.container_port,
                            host_port: b.host_port,
                            protocol: b.protocol,
                        })
                        .collect()
                })
                .unwrap_or_default(),
            health_status: self.health(),
            runtime_id: self.id.as_ref().map(|i| i.0.clone()),
            restart_count: (self.restarts > 0).then_some(self.restarts),
        }
    }
}

pub(crate) struct Runner {
    pub driver: Arc<dyn Driver>,
    pub cluster: String,
    pub task: AgentTask,
    pub desired: watch::Receiver<DesiredStatus>,
    pub reports: mpsc::UnboundedSender<TaskReport>,
    pub adopted: Vec<OwnedContainer>,
    /// The task metadata endpoint, whose URIs each container gets.
    pub metadata: Option<super::metadata::Metadata>,
    /// Ships `awslogs` containers' output (none in tests without a server).
    pub logs: Option<super::awslogs::LogShipping>,
}

/// What decided that the task ends.
struct Ending {
    code: Option<StopCode>,
    reason: Option<String>,
    /// The agent is going away (it dropped the runner's desired-status channel): leave the
    /// containers as they are, so the next agent on this host adopts them. Only an explicit
    /// desired STOPPED stops anything.
    abandon: bool,
}

impl Ending {
    fn stop(code: Option<StopCode>, reason: Option<String>) -> Self {
        Ending {
            code,
            reason,
            abandon: false,
        }
    }

    fn essential_exit() -> Self {
        Ending::stop(
            Some(StopCode::EssentialContainerExited),
            Some("Essential container in task exited".into()),
        )
    }

    fn abandon() -> Self {
        Ending {
            code: None,
            reason: None,
            abandon: true,
        }
    }
}

struct State {
    slots: Vec<Slot>,
    /// The task's containers started so far, in start order (the first leads the task's
    /// pid and ipc namespaces).
    started: Vec<(String, ContainerId)>,
    report: TaskReport,
    last_stats: Option<(u64, f64)>,
    /// The last report sent, without its stats: a report that differs from it only in its
    /// stats is marked `stats_only` (the server then has nothing to read or write).
    last_sent: Option<TaskReport>,
    /// An awsvpc task's pause container (whose network namespace its containers join).
    network_container: Option<String>,
}

impl State {
    fn task_health(&self) -> HealthStatus {
        let checked: Vec<HealthStatus> = self
            .slots
            .iter()
            .filter(|s| s.def.is_essential() && s.def.health_check.is_some())
            .map(Slot::health)
            .collect();
        if checked.contains(&HealthStatus::Unhealthy) {
            HealthStatus::Unhealthy
        } else if !checked.is_empty() && checked.iter().all(|h| *h == HealthStatus::Healthy) {
            HealthStatus::Healthy
        } else {
            HealthStatus::Unknown
        }
    }

    fn snapshot(&mut self) -> TaskReport {
        let status = self.report.last_status;
        self.report.containers = self.slots.iter().map(|s| s.report(status)).collect();
        self.report.health_status = self.task_health();
        let mut out = self.report.clone();
        let state = TaskReport {
            stats: None,
            stats_only: false,
            ..out.clone()
        };
        out.stats_only = self.last_sent.as_ref() == Some(&state);
        self.last_sent = Some(state);
        out
    }
}

impl Runner {
    /// Why the container's log configuration keeps it from starting (an `awslogs` group that
    /// does not exist and may not be created), if it does.
    async fn check_logs(&self, def: &ContainerDefinition) -> Option<String> {
        self.logs
            .as_ref()?
            .check(def, &self.task.task_id)
            .await
            .err()
    }

    fn send(&self, st: &mut State) {
        let _ = self.reports.send(st.snapshot());
    }

    async fn refresh(&self, slot: &mut Slot) {
        if let Some(id) = &slot.id {
            match self.driver.inspect(id).await {
                Ok(s) => {
                    if let RunState::Exited { code } = s.state {
                        slot.exit.get_or_insert(code);
                        if slot.reason.is_none() {
                            slot.reason.clone_from(&s.reason);
                        }
                    }
                    slot.status = Some(s);
                }
                Err(DriverError::NotFound(_)) => {
                    slot.exit.get_or_insert(-1);
                    slot.reason
                        .get_or_insert_with(|| "Container disappeared from the host".into());
                }
                Err(e) => tracing::warn!(task = %self.task.task_id, error = %e, "inspect failed"),
            }
        }
    }

    /// Whether `slot`'s dependencies allow it to start: Some(true) yes, Some(false) not yet,
    /// None never (a dependency can no longer satisfy its condition).
    fn deps_ready(slots: &[Slot], def: &ContainerDefinition) -> Option<bool> {
        let mut ready = true;
        for d in def.depends_on.iter().flatten() {
            let dep = slots.iter().find(|s| s.def.name == d.container_name)?;
            let ok = match d.condition {
                ContainerCondition::Start => {
                    dep.id.is_some() || dep.exit.is_some() && !dep.start_failed
                }
                ContainerCondition::Complete => dep.exit.is_some() && !dep.start_failed,
                ContainerCondition::Success => match dep.exit {
                    Some(0) if !dep.start_failed => true,
                    Some(_) => return None,
                    None => false,
                },
                ContainerCondition::Healthy => match dep.health() {
                    HealthStatus::Healthy => true,
                    _ if dep.exit.is_some() => return None,
                    HealthStatus::Unhealthy => return None,
                    HealthStatus::Unknown => false,
                },
            };
            if dep.start_failed {
                return None;
            }
            ready &= ok;
        }
        // `volumesFrom` and `links` need their containers created first.
        for name in implicit_dependencies(def) {
            let dep = slots.iter().find(|s| s.def.name == name)?;
            if dep.start_failed {
                return None;
            }
            ready &= dep.id.is_some();
        }
        Some(ready)
    }

    /// Starts every container, honouring `dependsOn`. Returns the ending if the task cannot
    /// start or is asked to stop meanwhile.
    async fn start_all(&mut self, st: &mut State) -> Option<Ending> {
        let began = tokio::time::Instant::now();
        loop {
            if *self.desired.borrow() == DesiredStatus::Stopped {
                return Some(Ending::stop(None, None));
            }
            let mut waiting = false;
            for i in 0..st.slots.len() {
                if st.slots[i].id.is_some() || st.slots[i].exit.is_some() {
                    continue;
                }
                match Self::deps_ready(&st.slots, &st.slots[i].def) {
                    None => {
                        let name = st.slots[i].def.name.clone();
                        st.slots[i].exit = Some(-1);
                        st.slots[i].start_failed = true;
                        st.slots[i].reason =
                            Some("DependencyNotSatisfied: a container it depends on did not meet its condition".into());
                        let reason = format!(
                            "Container {name} could not start: a dependency condition can never be met"
                        );
                        return Some(Ending::stop(
                            Some(StopCode::TaskFailedToStart),
                            Some(reason),
                        ));
                    }
                    Some(false) => {
                        if let Some(limit) = start_timeout(&st.slots[i].def) {
                            if began.elapsed() >= limit {
                                let reason = format!(
                                    "Container {} could not start: its dependencies did not reach their conditions within its startTimeout ({}s)",
                                    st.slots[i].def.name,
                                    limit.as_secs()
                                );
                                return Some(Self::fail_start(&mut st.slots[i], reason));
                            }
                        }
                        waiting = true
                    }
                    Some(true) => {
                        if let Err(ending) = self.start_one(st, i).await {
                            return Some(ending);
                        }
                    }
                }
            }
            if !waiting {
                return None;
            }
            let before: Vec<(HealthStatus, Option<i64>)> =
                st.slots.iter().map(|s| (s.health(), s.exit)).collect();
            for i in 0..st.slots.len() {
                if st.slots[i].running() {
                    self.refresh(&mut st.slots[i]).await;
                }
            }
            // Dependencies that exit or change health while others wait are reported too.
            if st.slots.iter().map(|s| (s.health(), s.exit)).ne(before) {
                self.send(st);
            }
            // An essential container that ends while others wait ends the task, as it would
            // once all had started.
            if st
                .slots
                .iter()
                .any(|s| s.exit.is_some() && !s.start_failed && s.def.is_essential())
            {
                return Some(Ending::essential_exit());
            }
            tokio::select! {
                r = self.desired.changed() => {
                    if r.is_err() {
                        return Some(Ending::abandon());
                    }
                }
                _ = tokio::time::sleep(DEP_POLL) => {}
            }
        }
    }

    /// Starts container `i`, whose dependencies are met; on failure, the task's ending.
    async fn start_one(&mut self, st: &mut State, i: usize) -> Result<(), Ending> {
        if let Some(reason) = self.check_logs(&st.slots[i].def).await {
            return Err(Self::fail_start(&mut st.slots[i], reason));
        }
        let mut spec = match runtime_spec(&self.task, &self.cluster, &st.slots[i].def, &st.started)
        {
            Ok(spec) => spec,
            Err(e) => {
                return Err(Self::fail_start(
                    &mut st.slots[i],
                    format!("CannotStartContainerError: {e}"),
                ))
            }
        };
        if let Some(m) = &self.metadata {
            m.apply(&mut spec, self.task.credentials.as_ref());
        }
        spec.docker.network_container = st.network_container.clone();
        match self.driver.start(&spec).await {
            Ok(id) => {
                if let Some(l) = &self.logs {
                    l.attach(&st.slots[i].def, &self.task.task_id, &id);
                }
                st.started.push((st.slots[i].def.name.clone(), id.clone()));
                st.slots[i].id = Some(id);
                self.refresh(&mut st.slots[i]).await;
                // Every container start is a state change the server sees at once, even
                // while others still wait for dependencies. After the last one the task's
                // RUNNING report follows at once and says it all: a report of its own here
                // would only hold RUNNING up behind one more round trip to the server.
                let all_started = st.slots.iter().all(|s| s.id.is_some() || s.exit.is_some());
                if !all_started {
                    self.send(st);
                }
                Ok(())
            }
            Err(e) => {
                let reason = match &e {
                    DriverError::ImageNotFound(img) => format!(
                        "CannotPullContainerError: pull image manifest: {img}: not found (berth never pulls; load the image on the host)"
                    ),
                    other => format!("CannotStartContainerError: {other}"),
                };
                Err(Self::fail_start(&mut st.slots[i], reason))
            }
        }
    }

    /// Marks `slot` as failed to start and ends the task for `reason`.
    fn fail_start(slot: &mut Slot, reason: String) -> Ending {
        slot.exit = Some(-1);
        slot.start_failed = true;
        slot.reason = Some(reason.clone());
        Ending::stop(Some(StopCode::TaskFailedToStart), Some(reason))
    }

    /// Restarts an exited container in place when its restart policy says so: not for an
    /// ignored exit code, nor when it ran less than the policy's attempt period, nor when the
    /// task is being stopped.
    async fn try_restart(&self, slot: &mut Slot) -> bool {
        let (Some(code), Some(id)) = (slot.exit, slot.id.clone()) else {
            return false;
        };
        let Some(policy) = slot.def.options().ok().and_then(|o| o.restart_policy) else {
            return false;
        };
        let ran = slot
            .status
            .as_ref()
            .and_then(|s| Some(s.finished_at? - s.started_at?))
            .unwrap_or(0.0);
        if !policy.restarts(code, ran) || *self.desired.borrow() == DesiredStatus::Stopped {
            return false;
        }
        match self.driver.restart(&id).await {
            Ok(()) => {
                tracing::info!(task = %self.task.task_id, container = %slot.def.name, code, "restarted by its restart policy");
                slot.exit = None;
                slot.reason = None;
                slot.restarts += 1;
                slot.generation += 1;
                // The output's follow ended with the exit: ship on from the cursor.
                if let Some(l) = &self.logs {
                    l.attach(&slot.def, &self.task.task_id, &id);
                }
                self.refresh(slot).await;
                true
            }
            Err(e) => {
                tracing::warn!(task = %self.task.task_id, error = %e, "restart failed");
                false
            }
        }
    }

    async fn sample_stats(&self, st: &mut State) {
        let (mut cpu, mut mem) = (0u64, 0u64);
        for s in st.slots.iter().filter(|s| s.running()) {
            if let Some(id) = &s.id {
                if let Ok(x) = self.driver.stats(id).await {
                    cpu += x.cpu_total_ns;
                    mem += x.memory_bytes;
                }
            }
        }
        let t = now();
        if let Some((prev_cpu, prev_t)) = st.last_stats {
            let dt = (t - prev_t).max(1e-3);
            let used = cpu.saturating_sub(prev_cpu) as f64 / 1e9;
            st.report.stats = Some(TaskStats {
                cpu_units: used / dt * 1024.0,
                memory_mib: mem as f64 / (1024.0 * 1024.0),
                at: t,
            });
        }
        st.last_stats = Some((cpu, t));
    }

    /// Watches running containers until the task must end.
    async fn monitor(&mut self, st: &mut State) -> Ending {
        let mut exits = FuturesUnordered::new();
        let wait = |i: usize, s: &Slot| {
            let (d, id, generation) = (self.driver.clone(), s.id.clone(), s.generation);
            Box::pin(async move {
                let code = match id {
                    Some(id) => d.wait_exit(&id).await,
                    None => Err(DriverError::NotFound(String::new())),
                };
                (i, generation, code)
            })
        };
        for (i, s) in st.slots.iter().enumerate() {
            if s.id.is_some() && s.exit.is_none() {
                exits.push(wait(i, s));
            }
        }
        let mut tick = tokio::time::interval(TICK);
        let mut ticks: u64 = 0;
        loop {
            tokio::select! {
                r = self.desired.changed() => {
                    if r.is_err() {
                        return Ending::abandon();
                    }
                    if *self.desired.borrow() == DesiredStatus::Stopped {
                        return Ending::stop(None, None);
                    }
                }
                Some((i, generation, code)) = exits.next(), if !exits.is_empty() => {
                    if st.slots[i].generation != generation {
                        continue;
                    }
                    let slot = &mut st.slots[i];
                    self.refresh(slot).await;
                    if let Ok(code) = code {
                        slot.exit.get_or_insert(code);
                    }
                    if self.try_restart(slot).await {
                        exits.push(wait(i, &st.slots[i]));
                        self.send(st);
                        continue;
                    }
                    let slot = &st.slots[i];
                    let essential = slot.def.is_essential();
                    self.send(st);
                    if essential {
                        return Ending::essential_exit();
                    }
                }
                _ = tick.tick() => {
                    ticks += 1;
                    let before: Vec<(HealthStatus, Option<i64>)> =
                        st.slots.iter().map(|s| (s.health(), s.exit)).collect();
                    for i in 0..st.slots.len() {
                        if st.slots[i].running() {
                            self.refresh(&mut st.slots[i]).await;
                            if st.slots[i].exit.is_some() && self.try_restart(&mut st.slots[i]).await {
                                exits.push(wait(i, &st.slots[i]));
                            }
                        }
                    }
                    let after: Vec<(HealthStatus, Option<i64>)> =
                        st.slots.iter().map(|s| (s.health(), s.exit)).collect();
                    let stats_due = ticks % STATS_EVERY_TICKS == 1;
                    if stats_due {
                        self.sample_stats(st).await;
                    }
                    if before != after || stats_due {
                        self.send(st);
                    }
                    if st.slots.iter().any(|s| s.exit.is_some() && s.def.is_essential()) {
                        return Ending::essential_exit();
                    }
                }
            }
        }
    }

    /// Stops whatever still runs, in reverse order of definition, and reports STOPPED (or,
    /// when the agent is going away, leaves everything running and reports nothing).
    async fn stop_all(&mut self, st: &mut State, ending: Ending) -> TaskReport {
        if ending.abandon {
            tracing::debug!(task = %self.task.task_id, "agent going away; containers left running");
            return st.snapshot();
        }
        st.report.stop_code = ending.code;
        st.report.stopped_reason = ending.reason;
        if st.slots.iter().any(Slot::running) {
            st.report.last_status = TaskStatus::Deprovisioning;
            self.send(st);
        }
        for i in (0..st.slots.len()).rev() {
            if let (Some(id), true) = (st.slots[i].id.clone(), st.slots[i].running()) {
                let timeout =
                    container_spec(&self.task, &self.cluster, &st.slots[i].def).stop_timeout;
                if let Err(e) = self.driver.stop(&id, timeout).await {
                    tracing::warn!(task = %self.task.task_id, error = %e, "stop failed");
                }
                self.refresh(&mut st.slots[i]).await;
            }
        }
        for s in &mut st.slots {
            if s.exit.is_none() && s.id.is_none() {
                s.reason
                    .get_or_insert_with(|| "Task stopped before the container started".into());
            }
        }
        // The task's address is free again once it is STOPPED: its interface goes first.
        if self.task.network.is_some() {
            if let Err(e) = self.driver.remove_task_network(&self.task.task_id).await {
                tracing::warn!(task = %self.task.task_id, error = %e, "cannot remove the task's network");
            }
        }
        st.report.last_status = TaskStatus::Stopped;
        st.report.stopped_at = Some(now());
        let last = st.snapshot();
        let _ = self.reports.send(last.clone());
        last
    }

    /// Runs the task to its end and returns the final report.
    pub(crate) async fn run(mut self) -> TaskReport {
        let mut by_name: HashMap<String, OwnedContainer> = self
            .adopted
            .drain(..)
            .map(|o| (o.container_name.clone(), o))
            .collect();
        let slots = self
            .task
            .containers
            .iter()
            .map(|def| {
                let owned = by_name.remove(&def.name);
                let exit = owned.as_ref().and_then(|o| match o.status.state {
                    RunState::Exited { code } => Some(code),
                    _ => None,
                });
                Slot {
                    def: def.clone(),
                    id: owned.as_ref().map(|o| o.id.clone()),
                    reason: owned.as_ref().and_then(|o| o.status.reason.clone()),
                    status: owned.map(|o| o.status),
                    exit,
                    start_failed: false,
                    restarts: 0,
                    generation: 0,
                }
            })
            .collect::<Vec<_>>();
        let adopted = slots.iter().any(|s| s.id.is_some());
        // Adopted containers' output is shipped on from where the server says it got to.
        if let Some(l) = &self.logs {
            for s in slots.iter() {
                if let Some(id) = &s.id {
                    l.attach(&s.def, &self.task.task_id, id);
                }
            }
        }
        let started = slots
            .iter()
            .filter_map(|s| Some((s.def.name.clone(), s.id.clone()?)))
            .collect();
        let mut st = State {
            slots,
            started,
            report: TaskReport {
                task_id: self.task.task_id.clone(),
                last_status: TaskStatus::Pending,
                containers: Vec::new(),
                health_status: HealthStatus::Unknown,
                started_at: None,
                stopped_at: None,
                pull_started_at: None,
                pull_stopped_at: None,
                stop_code: None,
                stopped_reason: None,
                stats: None,
                stats_only: false,
            },
            last_stats: None,
            last_sent: None,
            network_container: None,
        };
        if !adopted {
            if *self.desired.borrow() == DesiredStatus::Stopped {
                return self.stop_all(&mut st, Ending::stop(None, None)).await;
            }
            st.report.pull_started_at = Some(now());
            self.send(&mut st);
        }
        let (volumes, _) = task_volumes(&self.task);
        if let Err(e) = self
            .driver
            .prepare_volumes(&self.task.task_id, &volumes)
            .await
        {
            let reason =
                format!("ResourceInitializationError: failed to prepare the task's volumes: {e}");
            let ending = Ending::stop(Some(StopCode::TaskFailedToStart), Some(reason));
            return self.stop_all(&mut st, ending).await;
        }
        if let Some(net) = &self.task.network {
            // The security groups and the interface at once; no container starts before both
            // are in place, so the address is never open.
            let (rules, iface) = futures::join!(
                self.driver.apply_ingress(&self.task.task_id, net),
                self.driver.prepare_network(&self.task.task_id, net)
            );
            let ready = rules.and(iface);
            match ready {
                Ok(name) => st.network_container = Some(name),
                Err(e) => {
                    let reason = format!(
                        "ResourceInitializationError: failed to set up the task's network interface: {e}"
                    );
                    let ending = Ending::stop(Some(StopCode::TaskFailedToStart), Some(reason));
                    return self.stop_all(&mut st, ending).await;
                }
            }
        }
        if let Some(ending) = self.start_all(&mut st).await {
            return self.stop_all(&mut st, ending).await;
        }
        st.report.pull_stopped_at.get_or_insert_with(now);
        st.report.last_status = TaskStatus::Running;
        st.report.started_at = Some(now());
        self.send(&mut st);
        // An essential container that had already exited (e.g. while the agent was down).
        let ending = if st
            .slots
            .iter()
            .any(|s| s.exit.is_some() && s.def.is_essential())
        {
            Ending::essential_exit()
        } else {
            self.monitor(&mut st).await
        };
        self.stop_all(&mut st, ending).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::FakeDriver;
    use serde_json::json;

    fn task(containers: serde_json::Value) -> AgentTask {
        AgentTask {
            credentials: None,
            task_id: "t1".into(),
            task_arn: "arn:aws:ecs:us-east-1:000000000000:task/c/t1".into(),
            family: "f".into(),
            revision: 1,
            desired_status: DesiredStatus::Running,
            last_status: TaskStatus::Provisioning,
            network_mode: None,
            containers: serde_json::from_value(containers).unwrap_or_default(),
            secrets: None,
            network: None,
            volumes: Vec::new(),
            pid_mode: None,
            ipc_mode: None,
        }
    }

    fn runner(
        fake: &FakeDriver,
        t: AgentTask,
    ) -> (
        Runner,
        watch::Sender<DesiredStatus>,
        mpsc::UnboundedReceiver<TaskReport>,
    ) {
        let (dtx, drx) = watch::channel(DesiredStatus::Running);
        let (rtx, rrx) = mpsc::unbounded_channel();
        let r = Runner {
            driver: Arc::new(fake.clone()),
            cluster: "c".into(),
            task: t,
            desired: drx,
            reports: rtx,
            adopted: Vec::new(),
            metadata: None,
            logs: None,
        };
        (r, dtx, rrx)
    }

    fn container<'a>(r: &'a TaskReport, name: &str) -> &'a ContainerReport {
        r.containers
            .iter()
            .find(|c| c.name == name)
            .unwrap_or_else(|| panic!("no container {name} in {r:?}"))
    }

    /// Waits for the first report that satisfies `f`.
    async fn report_where(
        rx: &mut mpsc::UnboundedReceiver<TaskReport>,
        f: impl Fn(&TaskReport) -> bool,
    ) -> TaskReport {
        tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                let r = rx.recv().await.expect("reports end");
                if f(&r) {
                    return r;
                }
            }
        })
        .await
        .expect("no such report in time")
    }

    /// A running task's periodic stats travel as `stats_only` reports (the server writes
    /// nothing for them); its first report and any change of state do not.
    #[tokio::test(start_paused = true)]
    async fn reports_that_carry_only_new_stats_say_so() {
        let fake = FakeDriver::new();
        let (r, dtx, mut rx) = runner(&fake, task(json!([{"name": "app", "image": "i"}])));
        let run = tokio::spawn(r.run());
        let first = report_where(&mut rx, |_| true).await;
        assert!(!first.stats_only, "{first:?}");
        let running = report_where(&mut rx, |r| r.last_status == TaskStatus::Running).await;
        assert!(!running.stats_only, "{running:?}");
        let sampled = report_where(&mut rx, |r| r.stats.is_some()).await;
        assert!(sampled.stats_only, "{sampled:?}");
        dtx.send(DesiredStatus::Stopped)
            .expect("the runner listens");
        let stopped = report_where(&mut rx, |r| r.last_status == TaskStatus::Stopped).await;
        assert!(!stopped.stats_only, "{stopped:?}");
        run.await.expect("the runner ends");
    }

    #[tokio::test]
    async fn starts_are_reported_while_others_wait_for_dependencies() {
        let fake = FakeDriver::new();
        let t = task(json!([
            {"name": "db", "image": "i", "healthCheck": {"command": ["CMD", "true"]}},
            {"name": "app", "image": "i",
             "dependsOn": [{"containerName": "db", "condition": "HEALTHY"}]}
        ]));
        let (r, _dtx, mut rx) = runner(&fake, t);
        let run = tokio::spawn(r.run());
        // db runs, app waits: the server hears of db at once, with the task still PENDING.
        let rep = report_where(&mut rx, |r| {
            container(r, "db").last_status == TaskStatus::Running
        })
        .await;
        assert_eq!(rep.last_status, TaskStatus::Pending);
        assert_eq!(container(&rep, "app").last_status, TaskStatus::Pending);
        assert_eq!(fake.start_count(), 1);
        let db = ContainerId(container(&rep, "db").runtime_id.clone().unwrap_or_default());
        fake.set_health(&db, Health::Healthy).unwrap();
        let rep = report_where(&mut rx, |r| r.last_status == TaskStatus::Running).await;
        assert_eq!(container(&rep, "app").last_status, TaskStatus::Running);
        assert_eq!(container(&rep, "db").health_status, HealthStatus::Healthy);
        run.abort();
    }

    #[tokio::test]
    async fn the_last_start_goes_straight_to_running() {
        let fake = FakeDriver::new();
        let t = task(json!([{"name": "a", "image": "i"}, {"name": "b", "image": "i"}]));
        let (r, _dtx, mut rx) = runner(&fake, t);
        let run = tokio::spawn(r.run());
        let mut seen = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                let r = rx.recv().await.expect("reports end");
                let running = r.last_status == TaskStatus::Running;
                seen.push((
                    r.last_status,
                    container(&r, "a").last_status,
                    container(&r, "b").last_status,
                ));
                if running {
                    break;
                }
            }
        })
        .await
        .expect("RUNNING in time");
        use TaskStatus::{Pending, Running};
        // PENDING, then a's start (b still to come), then RUNNING: no report in between
        // that would delay RUNNING by a round trip.
        assert_eq!(
            seen,
            [
                (Pending, Pending, Pending),
                (Pending, Running, Pending),
                (Running, Running, Running)
            ]
        );
        run.abort();
    }

    #[tokio::test]
    async fn an_essential_exit_while_waiting_ends_the_task() {
        let fake = FakeDriver::new();
        let t = task(json!([
            {"name": "db", "image": "i", "healthCheck": {"command": ["CMD", "true"]}},
            {"name": "crash", "image": "i"},
            {"name": "app", "image": "i",
             "dependsOn": [{"containerName": "db", "condition": "HEALTHY"}]}
        ]));
        let (r, _dtx, mut rx) = runner(&fake, t);
        let run = tokio::spawn(r.run());
        let rep = report_where(&mut rx, |r| {
            container(r, "crash").last_status == TaskStatus::Running
        })
        .await;
        let crash = ContainerId(
            container(&rep, "crash")
                .runtime_id
                .clone()
                .unwrap_or_default(),
        );
        fake.exit(&crash, 9).unwrap();
        let last = tokio::time::timeout(Duration::from_secs(10), run)
            .await
            .expect("the task must end")
            .expect("runner");
        assert_eq!(last.last_status, TaskStatus::Stopped);
        assert_eq!(last.stop_code, Some(StopCode::EssentialContainerExited));
        assert_eq!(container(&last, "crash").exit_code, Some(9));
        assert_eq!(container(&last, "app").runtime_id, None);
        // db was stopped, app never started.
        assert_eq!(fake.start_count(), 2);
        assert!(fake.running().is_empty());
    }
}

#[cfg(test)]
mod shutdown_tests {
    use super::*;
    use crate::FakeDriver;
    use serde_json::json;

    fn runner(fake: &FakeDriver) -> (Runner, watch::Sender<DesiredStatus>) {
        let (dtx, drx) = watch::channel(DesiredStatus::Running);
        let (rtx, _rrx) = mpsc::unbounded_channel();
        let t = AgentTask {
            credentials: None,
            task_id: "t1".into(),
            task_arn: "arn".into(),
            family: "f".into(),
            revision: 1,
            desired_status: DesiredStatus::Running,
            last_status: TaskStatus::Provisioning,
            network_mode: None,
            containers: serde_json::from_value(json!([{"name": "app", "image": "i"}]))
                .unwrap_or_default(),
            secrets: None,
            network: None,
            volumes: Vec::new(),
            pid_mode: None,
            ipc_mode: None,
        };
        let r = Runner {
            driver: Arc::new(fake.clone()),
            cluster: "c".into(),
            task: t,
            desired: drx,
            reports: rtx,
            adopted: Vec::new(),
            metadata: None,
            logs: None,
        };
        (r, dtx)
    }

    async fn until_running(fake: &FakeDriver) {
        tokio::time::timeout(Duration::from_secs(10), async {
            while fake.running().is_empty() {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .expect("the container never started");
    }

    #[tokio::test]
    async fn an_agent_going_away_leaves_its_containers_running() {
        let fake = FakeDriver::new();
        let (r, dtx) = runner(&fake);
        let run = tokio::spawn(r.run());
        until_running(&fake).await;
        drop(dtx); // what the agent loop does when it shuts down
        let last = tokio::time::timeout(Duration::from_secs(10), run)
            .await
            .expect("the runner must end")
            .expect("runner");
        assert_eq!(last.last_status, TaskStatus::Running);
        assert_eq!(fake.running().len(), 1, "adoption needs it running");
    }

    #[tokio::test]
    async fn a_stop_sent_before_going_away_still_stops() {
        let fake = FakeDriver::new();
        let (r, dtx) = runner(&fake);
        let run = tokio::spawn(r.run());
        until_running(&fake).await;
        let _ = dtx.send(DesiredStatus::Stopped);
        drop(dtx); // deregistration: stop everything, then the loop ends
        let last = tokio::time::timeout(Duration::from_secs(10), run)
            .await
            .expect("the runner must end")
            .expect("runner");
        assert_eq!(last.last_status, TaskStatus::Stopped);
        assert!(fake.running().is_empty());
    }
}
