//! The ECS actions' dispatch: each action's body parsed into its typed request and handed to
//! its operation in [`berth_ops::ecs`].

use berth_model::{ApiError, ErrorCode};
use berth_ops::ecs::{
    self, capacity, clusters, deployments, instances, metrics, services, tags, taskdefs, tasks,
};
use berth_ops::Ctx;
use serde_json::Value;

use crate::edge::parse_body;

/// Runs one ECS action. `body` is the raw JSON the client sent.
pub(crate) async fn dispatch(ctx: &Ctx, action: &str, body: &[u8]) -> Result<Value, ApiError> {
    match action {
        "CreateCluster" => clusters::create(ctx, parse_body(body)?).await,
        "DescribeClusters" => clusters::describe(ctx, parse_body(body)?).await,
        "ListClusters" => clusters::list(ctx, parse_body(body)?).await,
        "UpdateCluster" => clusters::update(ctx, parse_body(body)?).await,
        "UpdateClusterSettings" => clusters::update_settings(ctx, parse_body(body)?).await,
        "DeleteCluster" => clusters::delete(ctx, parse_body(body)?).await,
        "RegisterTaskDefinition" => taskdefs::register(ctx, body).await,
        "DescribeTaskDefinition" => taskdefs::describe(ctx, parse_body(body)?).await,
        "ListTaskDefinitions" => taskdefs::list(ctx, parse_body(body)?).await,
        "ListTaskDefinitionFamilies" => taskdefs::list_families(ctx, parse_body(body)?).await,
        "DeregisterTaskDefinition" => taskdefs::deregister(ctx, parse_body(body)?).await,
        "DeleteTaskDefinitions" => taskdefs::delete(ctx, parse_body(body)?).await,
        "RegisterContainerInstance" => instances::register(ctx, parse_body(body)?).await,
        "DeregisterContainerInstance" => instances::deregister(ctx, parse_body(body)?).await,
        "DescribeContainerInstances" => instances::describe(ctx, parse_body(body)?).await,
        "ListContainerInstances" => instances::list(ctx, parse_body(body)?).await,
        "UpdateContainerInstancesState" => instances::update_state(ctx, parse_body(body)?).await,
        "PutAttributes" => instances::put_attributes(ctx, parse_body(body)?).await,
        "DeleteAttributes" => instances::delete_attributes(ctx, parse_body(body)?).await,
        "ListAttributes" => instances::list_attributes(ctx, parse_body(body)?).await,
        "CreateService" => services::create(ctx, parse_body(body)?).await,
        "UpdateService" => services::update(ctx, parse_body(body)?).await,
        "DeleteService" => services::delete(ctx, parse_body(body)?).await,
        "DescribeServices" => services::describe(ctx, parse_body(body)?).await,
        "ListServices" => services::list(ctx, parse_body(body)?).await,
        "ListServiceDeployments" => deployments::list(ctx, parse_body(body)?).await,
        "DescribeServiceDeployments" => deployments::describe(ctx, parse_body(body)?).await,
        "RunTask" => tasks::run(ctx, parse_body(body)?).await,
        "StartTask" => tasks::start(ctx, parse_body(body)?).await,
        "StopTask" => tasks::stop(ctx, parse_body(body)?).await,
        "DescribeTasks" => tasks::describe(ctx, parse_body(body)?).await,
        "ListTasks" => tasks::list(ctx, parse_body(body)?).await,
        "CreateCapacityProvider" => capacity::create(ctx, parse_body(body)?).await,
        "DescribeCapacityProviders" => capacity::describe(ctx, parse_body(body)?).await,
        "UpdateCapacityProvider" => capacity::update(ctx, parse_body(body)?).await,
        "DeleteCapacityProvider" => capacity::delete(ctx, parse_body(body)?).await,
        "PutClusterCapacityProviders" => capacity::put_cluster(ctx, parse_body(body)?).await,
        "TagResource" => tags::tag(ctx, parse_body(body)?).await,
        "UntagResource" => tags::untag(ctx, parse_body(body)?).await,
        "ListTagsForResource" => tags::list(ctx, parse_body(body)?).await,
        _ => Err(ApiError::new(
            ErrorCode::UnknownOperationException,
            format!("berth does not implement the ECS action {action:?}."),
        )),
    }
}

/// berth's own actions, beside ECS's: `GetJoinToken` gives the token agents of a cluster use,
/// `RotateJoinToken` replaces it.
pub(crate) async fn berth_action(ctx: &Ctx, action: &str, body: &[u8]) -> Result<Value, ApiError> {
    match action {
        "GetJoinToken" => ecs::join_token(ctx, parse_body(body)?).await,
        "RotateJoinToken" => ecs::rotate_join_token(ctx, parse_body(body)?).await,
        "GetTaskLogsEndpoint" => tasks::logs_endpoint(ctx, parse_body(body)?).await,
        "GetServiceMetrics" => metrics::get(ctx, parse_body(body)?).await,
        "InterruptSpotTask" => ecs::fargate::interrupt_spot(ctx, parse_body(body)?).await,
        // Metric alarms, for step scaling policies (CloudWatch itself is not served).
        "PutMetricAlarm" | "DescribeAlarms" | "DeleteAlarms" => {
            match crate::autoscaling::alarm_action(ctx, action, body).await {
                Some(r) => r,
                None => Err(ApiError::new(
                    ErrorCode::UnknownOperationException,
                    format!("Unknown berth action {action:?}."),
                )),
            }
        }
        _ => Err(ApiError::new(
            ErrorCode::UnknownOperationException,
            format!("Unknown berth action {action:?}."),
        )),
    }
}
