//! Service auto scaling: the metrics pipeline ([`Collector`] into [`MetricsHub`]) and the
//! autoscaler ([`Autoscaler`]) that turns Application Auto Scaling's records into desired
//! counts.
//!
//! The autoscaler is level-triggered and restart-safe: every period it reads the scalable
//! targets, their policies, scheduled actions and berth's metric alarms from the store, asks
//! the pure decisions in `berth-autoscale` what each target's desired count should be, and
//! writes the change to the ECS service (compare-and-swap), a scaling activity and an event. Cooldown clocks and which scheduled actions have run are kept in the store
//! (`aas/state/...`), so a restarted server neither repeats a scale nor forgets a cooldown;
//! the metric history it decides on survives in the collector's persisted minutes.
//!
//! It runs on the leader replica only (the server's `leading` module); its writes go through
//! the store fenced at the leader's term, so a deposed leader cannot scale a service. The
//! metrics it decides on are every replica's: each replica's collector shares its per-service
//! sums of task use (from the agents that report to it) and its load balancers' request counts
//! through the store (see `collect` and `samples`).
//!
//! Datapoints are ten-second buckets (the metrics store's finest resolution): a target
//! tracking policy scales out after `scale_out_datapoints` consecutive breaching buckets and in
//! after `scale_in_datapoints`, as AWS does with one-minute datapoints (3 and 15); berth's
//! defaults (2 and 15 ten-second buckets) react within 30 s, and both are flags.

mod collect;
mod samples;

pub use collect::{service_key, target_group_key, Collector, MetricsHub, HISTORY_KEY, LB_COUNTS};
pub use samples::{TaskSample, TASK_SUMS};

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use berth_autoscale::{
    alarm_state, cause_text, combine, scheduled_cause_text, step, target_tracking, AdjustmentType,
    AlarmKind, AlarmState, Comparison, PolicyState, Proposal, Settings, Step, StepPolicy, Target,
    TargetTracking,
};
use berth_metrics::{Resolution, SeriesKey, Stat};
use berth_model::autoscaling::{
    MetricAlarm, MetricKind, MetricRef, ScalableTarget, ScalingActivity, ScalingPolicy, Schedule,
    ScheduledAction, StepScalingConfig, TargetTrackingConfig, ALARM_ALARM, ALARM_INSUFFICIENT_DATA,
    ALARM_OK,
};
use berth_model::{keys, ApiError, Clock, Service, ServiceStatus};
use berth_store::{Store, StoreExt, Txn, TxnResult};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

/// Settings of the autoscaler.
#[derive(Debug, Clone)]
pub struct AutoscaleConfig {
    /// How often it decides (seconds).
    pub period: f64,
    /// Consecutive ten-second datapoints above target before a scale-out.
    pub scale_out_datapoints: usize,
    /// Consecutive ten-second datapoints below 90% of target before a scale-in.
    pub scale_in_datapoints: usize,
}

impl Default for AutoscaleConfig {
    fn default() -> Self {
        Self {
            period: 10.0,
            scale_out_datapoints: 2,
            scale_in_datapoints: 15,
        }
    }
}

/// The width of a datapoint: the metrics store's finest bucket.
const DATAPOINT_SECS: f64 = 10.0;

/// Per-target memory of the autoscaler, kept in the store.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct TargetMemory {
    #[serde(default)]
    policies: BTreeMap<String, PolicyMemory>,
    /// When each scheduled action last ran.
    #[serde(default)]
    scheduled: BTreeMap<String, f64>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
struct PolicyMemory {
    last_scale_out: Option<f64>,
    last_scale_in: Option<f64>,
    last_step: Option<f64>,
    scale_out_base: Option<u32>,
}

impl From<PolicyMemory> for PolicyState {
    fn from(m: PolicyMemory) -> Self {
        PolicyState {
            last_scale_out: m.last_scale_out,
            last_scale_in: m.last_scale_in,
            last_step: m.last_step,
            scale_out_base: m.scale_out_base,
        }
    }
}

impl From<&PolicyState> for PolicyMemory {
    fn from(s: &PolicyState) -> Self {
        PolicyMemory {
            last_scale_out: s.last_scale_out,
            last_scale_in: s.last_scale_in,
            last_step: s.last_step,
            scale_out_base: s.scale_out_base,
        }
    }
}

/// A target's records, as one pass reads them.
struct TargetRecords {
    policies: Vec<ScalingPolicy>,
    scheduled: Vec<ScheduledAction>,
    mem_key: String,
    memory: TargetMemory,
    mem_rev: u64,
}

/// What one pass decided for a target, before it is written.
struct Plan {
    /// The target with scheduled actions' min and max applied.
    target: ScalableTarget,
    memory: TargetMemory,
    desired: u32,
    /// The dynamic scaling proposal that won, if any.
    decided: Option<Proposal>,
    /// Each change's (description, cause), as scaling activities record them.
    activities: Vec<(String, String)>,
}

/// What every policy of one target decides against in a pass.
struct Round<'a> {
    limits: Target,
    desired: u32,
    alarms: &'a [MetricAlarm],
    now: f64,
}

/// The policies' proposals, the target tracking policies holding a scale-in, and which alarm
/// each (policy, high) proposal answers.
#[derive(Default)]
struct Proposals {
    proposals: Vec<Proposal>,
    holding: usize,
    alarm_names: BTreeMap<(String, bool), String>,
}

fn memory_key(resource_id: &str) -> String {
    format!(
        "{}state/{}",
        keys::AUTOSCALING,
        keys::aas_resource_segment(resource_id)
    )
}

/// The series a normalised metric reads, and the factor that turns a ten-second bucket's
/// value into the metric's own unit (request counts are per minute, as CloudWatch's
/// one-minute `RequestCountPerTarget` sums are).
fn series_of(m: &MetricRef) -> Option<(SeriesKey, Stat, f64)> {
    match m.kind {
        MetricKind::CpuUtilization => Some((
            service_key(
                "CPUUtilization",
                m.cluster.as_deref()?,
                m.service.as_deref()?,
            ),
            Stat::Average,
            1.0,
        )),
        MetricKind::MemoryUtilization => Some((
            service_key(
                "MemoryUtilization",
                m.cluster.as_deref()?,
                m.service.as_deref()?,
            ),
            Stat::Average,
            1.0,
        )),
        MetricKind::RequestCountPerTarget => Some((
            target_group_key(
                "RequestCountPerTarget",
                m.target_group_arn_suffix.as_deref()?,
            ),
            Stat::Sum,
            60.0 / DATAPOINT_SECS,
        )),
    }
}

fn comparison(op: &str) -> Option<Comparison> {
    Some(match op {
        "GreaterThanThreshold" => Comparison::GreaterThanThreshold,
        "GreaterThanOrEqualToThreshold" => Comparison::GreaterThanOrEqualToThreshold,
        "LessThanThreshold" => Comparison::LessThanThreshold,
        "LessThanOrEqualToThreshold" => Comparison::LessThanOrEqualToThreshold,
        _ => return None,
    })
}

/// The statistic an alarm evaluates (CloudWatch's names; Average when unknown).
fn alarm_stat(alarm: &MetricAlarm) -> Stat {
    match alarm.statistic.as_str() {
        "Sum" => Stat::Sum,
        "Maximum" => Stat::Maximum,
        "Minimum" => Stat::Minimum,
        _ => Stat::Average,
    }
}

fn adjustment_type(s: &str) -> AdjustmentType {
    match s {
        "PercentChangeInCapacity" => AdjustmentType::PercentChangeInCapacity,
        "ExactCapacity" => AdjustmentType::ExactCapacity,
        _ => AdjustmentType::ChangeInCapacity,
    }
}

/// Whether a scheduled action is due now, given when it last ran.
fn due(a: &ScheduledAction, last: Option<f64>, now: f64) -> bool {
    if a.start_time.is_some_and(|s| now < s) || a.end_time.is_some_and(|e| now > e) {
        return false;
    }
    match Schedule::parse(&a.schedule) {
        Ok(Schedule::At(t)) => last.is_none() && now >= t as f64,
        Ok(s @ Schedule::Rate { .. }) => {
            let every = s.rate_secs().unwrap_or(u64::MAX) as f64;
            let from = last.unwrap_or(a.start_time.unwrap_or(a.creation_time));
            now - from >= every
        }
        // A cron schedule runs once in each minute it matches (read in UTC).
        Ok(Schedule::Cron(fields)) => {
            let minute = (now / 60.0).floor() * 60.0;
            last.is_none_or(|l| l < minute) && cron_matches(&fields, minute as i64)
        }
        Err(_) => false,
    }
}

/// Whether the minute starting at `t` (Unix seconds, UTC) matches a six-field AWS cron
/// expression: minutes, hours, day of month, month, day of week (1 = Sunday), year.
fn cron_matches(fields: &[String], t: i64) -> bool {
    let Ok(dt) = time::OffsetDateTime::from_unix_timestamp(t) else {
        return false;
    };
    let [min, hour, dom, month, dow, year] = fields else {
        return false;
    };
    let weekday = i64::from(dt.weekday().number_from_sunday());
    field_matches(min, i64::from(dt.minute()), 0, 59)
        && field_matches(hour, i64::from(dt.hour()), 0, 23)
        && field_matches(dom, i64::from(dt.day()), 1, 31)
        && field_matches(month, i64::from(u8::from(dt.month())), 1, 12)
        && field_matches(dow, weekday, 1, 7)
        && field_matches(year, i64::from(dt.year()), 1970, 2199)
}

/// One cron field: `*`, `?`, `N`, `A-B`, `*/S`, `A-B/S`, `A/S` and comma lists of them;
/// month and weekday names (JAN, MON) as well.
fn field_matches(field: &str, value: i64, lo: i64, hi: i64) -> bool {
    const NAMES: [&str; 19] = [
        "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC", "SUN",
        "MON", "TUE", "WED", "THU", "FRI", "SAT",
    ];
    let num = |s: &str| -> Option<i64> {
        let up = s.to_ascii_uppercase();
        match NAMES.iter().position(|n| *n == up) {
            Some(i) if i < 12 => Some(i as i64 + 1),
            Some(i) => Some(i as i64 - 11),
            None => s.parse().ok(),
        }
    };
    field.split(',').any(|part| {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => (r, s.parse::<i64>().ok().filter(|s| *s > 0)),
            None => (part, Some(1)),
        };
        let Some(step) = step else { return false };
        let (a, b) = match range {
            "*" | "?" => (lo, hi),
            r => match r.split_once('-') {
                Some((a, b)) => match (num(a), num(b)) {
                    (Some(a), Some(b)) => (a, b),
                    _ => return false,
                },
                None => match num(r) {
                    Some(a) if part.contains('/') => (a, hi),
                    Some(a) => (a, a),
                    None => return false,
                },
            },
        };
        value >= a && value <= b && (value - a) % step == 0
    })
}

/// Decides and applies scaling for every scalable target.
pub struct Autoscaler {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    hub: Arc<MetricsHub>,
    cfg: AutoscaleConfig,
}

impl Autoscaler {
    /// An autoscaler that reads metrics from `hub` and applies what `cfg` sets.
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        hub: Arc<MetricsHub>,
        cfg: AutoscaleConfig,
    ) -> Self {
        Self {
            store,
            clock,
            hub,
            cfg,
        }
    }

    /// Runs a pass every period until `stop` is cancelled (a pass under way completes).
    pub async fn run(self: Arc<Self>, stop: CancellationToken) {
        let mut tick = tokio::time::interval(Duration::from_secs_f64(self.cfg.period.max(0.5)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                _ = tick.tick() => {}
            }
            if let Err(e) = self.pass().await {
                tracing::warn!(error = %e, "autoscaler pass failed");
            }
        }
    }

    fn settings(&self) -> Settings {
        Settings {
            period: DATAPOINT_SECS,
            scale_out_datapoints: self.cfg.scale_out_datapoints.max(1),
            scale_in_datapoints: self.cfg.scale_in_datapoints.max(1),
            scale_in_ratio: 0.9,
        }
    }

    /// Recent datapoints of a metric, in its own unit, ascending.
    fn datapoints(
        &self,
        m: &MetricRef,
        stat: Option<Stat>,
        window: f64,
        now: f64,
    ) -> Vec<(f64, f64)> {
        let Some((key, default_stat, factor)) = series_of(m) else {
            return Vec::new();
        };
        self.hub
            .points(
                &key,
                Resolution::TenSeconds,
                now - window,
                now + DATAPOINT_SECS,
                stat.unwrap_or(default_stat),
            )
            .into_iter()
            .map(|(t, v)| (t, v * factor))
            .collect()
    }

    /// One pass over every alarm and scalable target.
    pub async fn pass(&self) -> Result<(), ApiError> {
        let now = self.clock.now();
        let alarms = self.evaluate_alarms(now).await?;
        let targets = self
            .store
            .list_json::<ScalableTarget>(keys::AAS_TARGETS)
            .await
            .map_err(crate::store_err)?;
        for (_, target, rev) in targets {
            if let Err(e) = self.scale(&target, rev, &alarms, now).await {
                tracing::warn!(resource = %target.resource_id, error = %e, "autoscaling failed");
            }
        }
        Ok(())
    }

    /// Brings every alarm's state up to date; returns them.
    async fn evaluate_alarms(&self, now: f64) -> Result<Vec<MetricAlarm>, ApiError> {
        let mut out = Vec::new();
        let alarms = self
            .store
            .list_json::<MetricAlarm>(keys::AAS_ALARMS)
            .await
            .map_err(crate::store_err)?;
        for (key, mut alarm, rev) in alarms {
            let stat = alarm_stat(&alarm);
            let evals = alarm.evaluation_periods.max(1) as usize;
            let window = f64::from(alarm.period.max(10)) * (evals as f64 + 1.0);
            let points = alarm
                .metric()
                .map(|m| self.datapoints(&m, Some(stat), window, now))
                .unwrap_or_default();
            let state = match comparison(&alarm.comparison_operator) {
                Some(op) => alarm_state(&points, alarm.threshold, op, evals),
                None => AlarmState::InsufficientData,
            };
            let value = match state {
                AlarmState::Ok => ALARM_OK,
                AlarmState::Alarm => ALARM_ALARM,
                AlarmState::InsufficientData => ALARM_INSUFFICIENT_DATA,
            };
            if alarm.state_value != value {
                alarm.state_value = value.to_owned();
                alarm.state_updated_timestamp = now;
                alarm.state_reason = match points.last() {
                    Some((_, v)) => format!(
                        "Threshold Crossed: {} datapoint(s) evaluated; the latest was {v:.2} (threshold {}).",
                        evals, alarm.threshold
                    ),
                    None => "Insufficient data.".to_owned(),
                };
                let bytes = serde_json::to_vec(&alarm)
                    .map_err(|e| ApiError::server(format!("encoding alarm: {e}")))?;
                let txn = Txn::new()
                    .when_mod_revision(key.clone(), rev)
                    .put(key, bytes);
                self.store.txn(txn).await.map_err(crate::store_err)?;
            }
            out.push(alarm);
        }
        Ok(out)
    }

    async fn scale(
        &self,
        target: &ScalableTarget,
        target_rev: u64,
        alarms: &[MetricAlarm],
        now: f64,
    ) -> Result<(), ApiError> {
        let Some((cluster, service)) = target.cluster_and_service() else {
            return Ok(());
        };
        let svc_key = keys::service(cluster, service);
        let Some((svc, svc_rev)) = self
            .store
            .get_json::<Service>(&svc_key)
            .await
            .map_err(crate::store_err)?
        else {
            return Ok(());
        };
        if svc.status != ServiceStatus::Active {
            return Ok(());
        }
        let records = self.records(&target.resource_id).await?;
        let plan = self.plan(target, &records, alarms, svc.desired_count, now);

        // Write: the service first (the change itself), then its record of why.
        if plan.desired != svc.desired_count
            && !self
                .write_service(svc, svc_key, svc_rev, &plan, now)
                .await?
        {
            // The service changed meanwhile (UpdateService, the controller): decide
            // again next period, from what it is then.
            return Ok(());
        }
        self.record(target, target_rev, &records, plan, now).await
    }

    /// A target's policies, scheduled actions and memory, as the store holds them now.
    async fn records(&self, rid: &str) -> Result<TargetRecords, ApiError> {
        let policies = self.values(&keys::aas_policies_of(rid)).await?;
        let scheduled = self.values(&keys::aas_scheduled_of(rid)).await?;
        let mem_key = memory_key(rid);
        let (memory, mem_rev) = self
            .store
            .get_json::<TargetMemory>(&mem_key)
            .await
            .map_err(crate::store_err)?
            .unwrap_or_default();
        Ok(TargetRecords {
            policies,
            scheduled,
            mem_key,
            memory,
            mem_rev,
        })
    }

    async fn values<T: DeserializeOwned>(&self, prefix: &str) -> Result<Vec<T>, ApiError> {
        Ok(self
            .store
            .list_json::<T>(prefix)
            .await
            .map_err(crate::store_err)?
            .into_iter()
            .map(|(_, v, _)| v)
            .collect())
    }

    /// What this pass does to one target whose service wants `current` tasks. Pure: it reads
    /// only the metrics hub.
    fn plan(
        &self,
        target: &ScalableTarget,
        records: &TargetRecords,
        alarms: &[MetricAlarm],
        current: u32,
        now: f64,
    ) -> Plan {
        let mut plan = Plan {
            target: target.clone(),
            memory: records.memory.clone(),
            desired: current,
            decided: None,
            activities: Vec::new(),
        };

        // Scheduled actions change min and max; the desired count follows into the range.
        for a in &records.scheduled {
            self.apply_scheduled(a, &mut plan, now);
        }

        // Dynamic scaling: every policy proposes; AWS's rules combine them.
        let round = Round {
            limits: self.limits(&plan.target),
            desired: plan.desired,
            alarms,
            now,
        };
        let mut found = Proposals::default();
        for p in &records.policies {
            let state: PolicyState = plan
                .memory
                .policies
                .get(&p.policy_name)
                .copied()
                .unwrap_or_default()
                .into();
            if let Some(tt) = &p.target_tracking_scaling_policy_configuration {
                self.propose_tracking(p, tt, &state, &round, &mut found);
            } else if let Some(sc) = &p.step_scaling_policy_configuration {
                self.propose_steps(p, sc, &state, &round, &mut found);
            }
        }
        plan.decided = combine(plan.desired, &found.proposals, found.holding);
        if let Some(prop) = &plan.decided {
            let from = plan.desired;
            plan.desired = prop.desired;
            let high = !matches!(prop.alarm, AlarmKind::Low);
            let alarm = found
                .alarm_names
                .get(&(prop.policy.clone(), high))
                .cloned()
                .unwrap_or_else(|| prop.policy.clone());
            plan.activities.push(cause_text(prop, &alarm));
            let entry = plan.memory.policies.entry(prop.policy.clone()).or_default();
            let mut st: PolicyState = (*entry).into();
            st.applied(prop, from, now);
            *entry = PolicyMemory::from(&st);
        }
        // Keep within the target's range even with no policy (a lowered max, a raised min).
        let clamped = plan.target.clamp(plan.desired);
        if clamped != plan.desired {
            plan.activities.push((
                format!("Setting desired count to {clamped}."),
                format!(
                    "minimum capacity was set to {} and maximum capacity to {}",
                    plan.target.min_capacity, plan.target.max_capacity
                ),
            ));
            plan.desired = clamped;
        }
        plan
    }

    /// Runs one scheduled action into `plan` if it is due.
    fn apply_scheduled(&self, a: &ScheduledAction, plan: &mut Plan, now: f64) {
        let name = &a.scheduled_action_name;
        if !due(a, plan.memory.scheduled.get(name).copied(), now) {
            return;
        }
        plan.memory.scheduled.insert(name.clone(), now);
        let action = berth_autoscale::ScheduledAction {
            name: name.clone(),
            min: a.scalable_target_action.and_then(|s| s.min_capacity),
            max: a.scalable_target_action.and_then(|s| s.max_capacity),
        };
        let t = self.limits(&plan.target);
        if let Ok(Some(change)) = berth_autoscale::scheduled(&action, plan.desired, &t) {
            plan.target.min_capacity = change.min;
            plan.target.max_capacity = change.max;
            if let Some(d) = change.desired {
                plan.desired = d;
            }
            plan.activities.push(scheduled_cause_text(&action, &change));
        }
    }

    /// A target tracking policy's proposal, or its vote to hold a scale-in.
    fn propose_tracking(
        &self,
        p: &ScalingPolicy,
        tt: &TargetTrackingConfig,
        state: &PolicyState,
        round: &Round<'_>,
        found: &mut Proposals,
    ) {
        let Some(metric) = p.metric() else { return };
        let policy = TargetTracking {
            name: p.policy_name.clone(),
            target_value: tt.target_value,
            scale_out_cooldown: f64::from(tt.scale_out_cooldown.unwrap_or(300)),
            scale_in_cooldown: f64::from(tt.scale_in_cooldown.unwrap_or(300)),
            disable_scale_in: tt.disable_scale_in.unwrap_or(false),
        };
        for a in &p.alarms {
            let high = a.alarm_name.contains("-AlarmHigh-");
            found
                .alarm_names
                .insert((p.policy_name.clone(), high), a.alarm_name.clone());
        }
        let settings = self.settings();
        let window = DATAPOINT_SECS
            * (settings
                .scale_in_datapoints
                .max(settings.scale_out_datapoints) as f64
                + 2.0);
        let series = self.datapoints(&metric, None, window, round.now);
        let (desired, t, now) = (round.desired, &round.limits, round.now);
        match target_tracking(&policy, &series, desired, t, state, now, &settings) {
            Some(prop) => found.proposals.push(prop),
            None if policy.votes_on_scale_in() => found.holding += 1,
            None => {}
        }
    }

    /// A step scaling policy's proposals, one for each of its alarms in ALARM.
    fn propose_steps(
        &self,
        p: &ScalingPolicy,
        sc: &StepScalingConfig,
        state: &PolicyState,
        round: &Round<'_>,
        found: &mut Proposals,
    ) {
        let policy = StepPolicy {
            name: p.policy_name.clone(),
            adjustment_type: adjustment_type(&sc.adjustment_type),
            steps: sc
                .step_adjustments
                .iter()
                .map(|s| Step {
                    lower: s.metric_interval_lower_bound,
                    upper: s.metric_interval_upper_bound,
                    adjustment: s.scaling_adjustment,
                })
                .collect(),
            min_adjustment_magnitude: sc.min_adjustment_magnitude,
            cooldown: f64::from(sc.cooldown.unwrap_or(300)),
        };
        let now = round.now;
        for alarm in round
            .alarms
            .iter()
            .filter(|a| a.state_value == ALARM_ALARM && a.alarm_actions.contains(&p.policy_arn))
        {
            let stat = alarm_stat(alarm);
            let latest = alarm.metric().and_then(|m| {
                self.datapoints(&m, Some(stat), f64::from(alarm.period) * 2.0, now)
                    .last()
                    .map(|(_, v)| *v)
            });
            let Some(value) = latest else { continue };
            if let Some(prop) = step(
                &policy,
                alarm.threshold,
                value,
                round.desired,
                &round.limits,
                state,
                now,
            ) {
                found
                    .alarm_names
                    .insert((p.policy_name.clone(), true), alarm.alarm_name.clone());
                found.proposals.push(prop);
            }
        }
    }

    /// Writes the planned desired count to the service, with an event saying why. `false` if
    /// the service changed since it was read.
    async fn write_service(
        &self,
        mut svc: Service,
        svc_key: String,
        svc_rev: u64,
        plan: &Plan,
        now: f64,
    ) -> Result<bool, ApiError> {
        let (current, desired) = (svc.desired_count, plan.desired);
        svc.desired_count = desired;
        svc.version += 1;
        let why = match &plan.decided {
            Some(p) => format!("policy {}", p.policy),
            None => "scheduled action or capacity limits".to_owned(),
        };
        svc.push_event(
            uuid::Uuid::new_v4().to_string(),
            now,
            format!(
                "(service {}) Application Auto Scaling changed the desired count from {current} to {desired} ({why}).",
                svc.name
            ),
        );
        let bytes = serde_json::to_vec(&svc)
            .map_err(|e| ApiError::server(format!("encoding service: {e}")))?;
        let txn = Txn::new()
            .when_mod_revision(svc_key.clone(), svc_rev)
            .put(svc_key, bytes);
        let result = self.store.txn(txn).await.map_err(crate::store_err)?;
        Ok(!matches!(result, TxnResult::Conflict { .. }))
    }

    /// Writes the plan's scaling activities, the target's new range and the memory, in one
    /// transaction.
    async fn record(
        &self,
        target: &ScalableTarget,
        target_rev: u64,
        records: &TargetRecords,
        plan: Plan,
        now: f64,
    ) -> Result<(), ApiError> {
        let rid = &target.resource_id;
        let desired = plan.desired;
        let mut txn = Txn::new();
        let mut writes = 0;
        for (description, cause) in plan.activities {
            let id = uuid::Uuid::new_v4().to_string();
            let act = ScalingActivity {
                activity_id: id.clone(),
                service_namespace: target.service_namespace.clone(),
                resource_id: rid.clone(),
                scalable_dimension: target.scalable_dimension.clone(),
                description,
                cause,
                start_time: now,
                end_time: Some(now),
                status_code: "Successful".into(),
                status_message: Some(format!(
                    "Successfully set desired count to {desired}. Change successfully fulfilled by ecs."
                )),
                details: None,
            };
            let bytes = serde_json::to_vec(&act)
                .map_err(|e| ApiError::server(format!("encoding activity: {e}")))?;
            txn = txn.put(keys::aas_activity(rid, now, &id), bytes);
            writes += 1;
        }
        if plan.target != *target {
            let key = keys::aas_target(rid);
            let bytes = serde_json::to_vec(&plan.target)
                .map_err(|e| ApiError::server(format!("encoding target: {e}")))?;
            txn = txn
                .when_mod_revision(key.clone(), target_rev)
                .put(key, bytes);
            writes += 1;
        }
        if plan.memory != records.memory {
            let bytes = serde_json::to_vec(&plan.memory)
                .map_err(|e| ApiError::server(format!("encoding state: {e}")))?;
            let key = records.mem_key.clone();
            txn = txn
                .when_mod_revision(key.clone(), records.mem_rev)
                .put(key, bytes);
            writes += 1;
        }
        if writes > 0 {
            self.store.txn(txn).await.map_err(crate::store_err)?;
        }
        Ok(())
    }

    fn limits(&self, t: &ScalableTarget) -> Target {
        Target {
            min: t.min_capacity,
            max: t.max_capacity,
            scale_in_suspended: t.suspended_state.dynamic_scaling_in_suspended,
            scale_out_suspended: t.suspended_state.dynamic_scaling_out_suspended,
            scheduled_suspended: t.suspended_state.scheduled_scaling_suspended,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn action(schedule: &str, created: f64) -> ScheduledAction {
        ScheduledAction {
            scheduled_action_name: "a".into(),
            scheduled_action_arn: "arn".into(),
            service_namespace: "ecs".into(),
            schedule: schedule.into(),
            timezone: None,
            resource_id: "service/c/s".into(),
            scalable_dimension: "ecs:service:DesiredCount".into(),
            start_time: None,
            end_time: None,
            scalable_target_action: None,
            creation_time: created,
        }
    }

    #[test]
    fn scheduled_actions_fall_due() {
        let at = action("at(2026-01-01T00:00:00)", 0.0);
        let t = 1_767_225_600.0; // 2026-01-01T00:00:00Z
        assert!(!due(&at, None, t - 1.0));
        assert!(due(&at, None, t));
        assert!(!due(&at, Some(t), t + 100.0), "at() runs once");
        let rate = action("rate(5 minutes)", 1000.0);
        assert!(!due(&rate, None, 1200.0));
        assert!(due(&rate, None, 1300.0));
        assert!(!due(&rate, Some(1300.0), 1500.0));
        assert!(due(&rate, Some(1300.0), 1600.0));
    }

    #[test]
    fn cron_fields_match_as_aws_reads_them() {
        let f = |s: &str| s.split(' ').map(str::to_owned).collect::<Vec<_>>();
        // 2026-01-05T09:30:00Z is a Monday.
        let t = 1_767_605_400;
        assert!(cron_matches(&f("30 9 * * ? *"), t));
        assert!(cron_matches(&f("0/15 8-10 ? * MON-FRI *"), t));
        assert!(cron_matches(&f("30 9 ? * 2 2026"), t));
        assert!(!cron_matches(&f("30 9 ? * SAT,SUN *"), t));
        assert!(!cron_matches(&f("31 9 * * ? *"), t));
        assert!(cron_matches(&f("*/10 * 5 JAN ? *"), t));
        let due_now = action("cron(30 9 * * ? *)", 0.0);
        assert!(due(&due_now, None, t as f64 + 20.0));
        assert!(
            !due(&due_now, Some(t as f64 + 1.0), t as f64 + 20.0),
            "once a minute"
        );
    }

    #[test]
    fn request_counts_read_per_minute() {
        let m = MetricRef {
            kind: MetricKind::RequestCountPerTarget,
            cluster: None,
            service: None,
            target_group_arn_suffix: Some("targetgroup/web/0123".into()),
        };
        let (key, stat, factor) = series_of(&m).expect("a series");
        assert_eq!(stat, Stat::Sum);
        assert_eq!(factor, 6.0);
        assert!(key.as_str().contains("targetgroup/web/0123"));
    }
}
