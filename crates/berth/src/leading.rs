//! The loops only the leader runs: the service controller, the capacity providers, FARGATE
//! capacity, the autoscaler, the host group controller, the task reaper and the log
//! retention sweep.
//!
//! Each of them decides and writes for the whole control plane, so two replicas running
//! them at once would both start a service's missing tasks or both scale it. They are built
//! afresh for every term of leadership ([`LeaderLoops::spawn`]) over the store they are given,
//! which `crate::replica` fences at that term: a write issued after the term ended fails
//! instead of landing. Everything here is a level-triggered reconciler that reads the store
//! at start, so a new leader simply carries on from the records.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use berth_control::autoscale::{AutoscaleConfig, Autoscaler, MetricsHub};
use berth_control::hostgroup::{HostGroupConfig, HostGroupController, HostProvider};
use berth_control::{
    CancellationToken, ControllerConfig, FargateCapacity, FargateConfig, Launcher, Reaper,
    ServiceController, Supervisor,
};
use berth_store::Store;

use crate::env;
use crate::server::ServerOpts;

/// Everything the leader-only loops need besides the store; built once at start.
pub(crate) struct LeaderLoops {
    pub clock: Arc<dyn berth_model::Clock>,
    pub hub: Arc<MetricsHub>,
    pub health: Arc<dyn berth_model::lb::TargetHealthSource>,
    pub logs: Option<Arc<dyn berth_logs::LogStore>>,
    pub opts: ServerOpts,
    pub agent_timeout: f64,
    /// The host group controller's providers and settings.
    pub host_groups: (HashMap<String, Arc<dyn HostProvider>>, HostGroupConfig),
}

impl LeaderLoops {
    /// Starts every leader-only loop under `supervisor`, writing through `store`.
    pub(crate) fn spawn(&self, supervisor: &mut Supervisor, store: &Arc<dyn Store>) {
        let (clock, opts) = (&self.clock, &self.opts);
        // A launcher of this term's own, so its writes are fenced too; placement is guarded
        // in the store (the cluster's `placement/` key), not by the API's launcher's lock.
        let launcher = Arc::new(Launcher::new(store.clone(), self.agent_timeout));
        self.spawn_services(supervisor, store, &launcher);
        let period = opts.autoscale_period.clamp(1.0, 60.0);
        let autoscaler = Arc::new(Autoscaler::new(
            store.clone(),
            clock.clone(),
            self.hub.clone(),
            AutoscaleConfig {
                period,
                scale_out_datapoints: opts.autoscale_out_points.max(1),
                scale_in_datapoints: opts.autoscale_in_points.max(1),
            },
        ));
        supervisor.spawn("autoscaler", move |stop| autoscaler.clone().run(stop));
        let reaper = Arc::new(Reaper::new(
            store.clone(),
            clock.clone(),
            opts.task_retention.max(0.0),
        ));
        let reap_every = Duration::from_secs_f64((opts.task_retention / 10.0).clamp(1.0, 60.0));
        supervisor.spawn("task reaper", move |stop| {
            reaper.clone().run(reap_every, stop)
        });
        let (providers, cfg) = self.host_groups.clone();
        let hosts = Arc::new(HostGroupController::new(
            store.clone(),
            clock.clone(),
            providers,
            cfg,
        ));
        supervisor.spawn("host group controller", move |stop| hosts.clone().run(stop));
        if let Some(logs) = self.logs.clone() {
            let every = Duration::from_secs_f64(opts.logs_sweep_interval.clamp(0.1, 3600.0));
            let clock = clock.clone();
            supervisor.spawn("log retention sweep", move |stop| {
                sweep_logs(logs.clone(), clock.clone(), every, stop)
            });
        }
    }

    /// The service controller, the capacity providers' loop and FARGATE capacity.
    fn spawn_services(
        &self,
        supervisor: &mut Supervisor,
        store: &Arc<dyn Store>,
        launcher: &Arc<Launcher>,
    ) {
        let (clock, opts, agent_timeout) = (&self.clock, &self.opts, self.agent_timeout);
        let controller = ServiceController::new(
            store.clone(),
            clock.clone(),
            launcher.clone(),
            ControllerConfig {
                region: env::DEFAULT_REGION.to_owned(),
                account_id: opts.account_id.clone(),
                agent_timeout_secs: agent_timeout,
                host_lost_secs: opts
                    .host_lost_timeout
                    .unwrap_or(agent_timeout * 2.0)
                    .max(agent_timeout),
            },
        )
        .with_target_health(self.health.clone());
        let controller = Arc::new(controller);
        supervisor.spawn("service controller", move |stop| {
            controller.clone().run(stop)
        });
        let capacity = Arc::new(berth_control::capacity::ManagedScaling::new(
            store.clone(),
            clock.clone(),
            launcher.clone(),
            Some(self.hub.clone()),
            berth_control::capacity::ScalingConfig {
                period: opts.capacity_period.clamp(0.05, 60.0),
                provisioning_timeout: opts.provisioning_timeout.max(0.0),
            },
        ));
        supervisor.spawn("capacity providers", move |stop| capacity.clone().run(stop));
        let fargate = Arc::new(FargateCapacity::new(
            store.clone(),
            clock.clone(),
            launcher.clone(),
            FargateConfig {
                provider: opts.fargate_provider.clone(),
                region: env::DEFAULT_REGION.to_owned(),
                account_id: opts.account_id.clone(),
                idle_secs: opts.fargate_idle_secs.max(0.0),
                max_hosts: opts.fargate_max_hosts,
                spot_max_hosts: opts.fargate_spot_max_hosts,
            },
        ));
        supervisor.spawn("fargate capacity", move |stop| {
            fargate.clone().run(Duration::from_millis(500), stop)
        });
    }
}

/// Drops events older than their group's retention, every `every`, until `stop`.
async fn sweep_logs(
    logs: Arc<dyn berth_logs::LogStore>,
    clock: Arc<dyn berth_model::Clock>,
    every: Duration,
    stop: CancellationToken,
) {
    loop {
        let now_ms = (clock.now() * 1000.0) as i64;
        let store = logs.clone();
        match tokio::task::spawn_blocking(move || store.sweep(now_ms)).await {
            Ok(Ok(0)) => {}
            Ok(Ok(n)) => tracing::info!(dropped = n, "log retention sweep"),
            Ok(Err(e)) => tracing::warn!(error = %e, "log retention sweep failed"),
            Err(e) => tracing::warn!(error = %e, "log retention sweep panicked"),
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
    }
}
