//! The AWS JSON 1.1 dispatcher: ECS, Application Auto Scaling, SSM, Secrets Manager and
//! CloudWatch Logs bodies, signed, through the whole edge and into the operations.
#![no_main]

use berth_fuzz::{api, assert_not_server_error, split_line};
use libfuzzer_sys::fuzz_target;

const ECS: &[&str] = &[
    "CreateCluster",
    "DescribeClusters",
    "ListClusters",
    "UpdateCluster",
    "UpdateClusterSettings",
    "DeleteCluster",
    "RegisterTaskDefinition",
    "DescribeTaskDefinition",
    "ListTaskDefinitions",
    "ListTaskDefinitionFamilies",
    "DeregisterTaskDefinition",
    "DeleteTaskDefinitions",
    "RegisterContainerInstance",
    "DeregisterContainerInstance",
    "DescribeContainerInstances",
    "ListContainerInstances",
    "UpdateContainerInstancesState",
    "PutAttributes",
    "DeleteAttributes",
    "ListAttributes",
    "CreateService",
    "UpdateService",
    "DeleteService",
    "DescribeServices",
    "ListServices",
    "ListServiceDeployments",
    "DescribeServiceDeployments",
    "RunTask",
    "StartTask",
    "StopTask",
    "DescribeTasks",
    "ListTasks",
    "CreateCapacityProvider",
    "DescribeCapacityProviders",
    "UpdateCapacityProvider",
    "DeleteCapacityProvider",
    "PutClusterCapacityProviders",
    "TagResource",
    "UntagResource",
    "ListTagsForResource",
];
const AUTOSCALING: &[&str] = &[
    "RegisterScalableTarget",
    "DescribeScalableTargets",
    "DeregisterScalableTarget",
    "PutScalingPolicy",
    "DescribeScalingPolicies",
    "DeleteScalingPolicy",
    "PutScheduledAction",
    "DescribeScheduledActions",
    "DeleteScheduledAction",
    "DescribeScalingActivities",
];
const SSM: &[&str] = &[
    "PutParameter",
    "GetParameter",
    "GetParameters",
    "GetParametersByPath",
    "DescribeParameters",
    "DeleteParameter",
    "DeleteParameters",
    "LabelParameterVersion",
    "GetParameterHistory",
];
const SECRETS: &[&str] = &[
    "CreateSecret",
    "GetSecretValue",
    "PutSecretValue",
    "UpdateSecret",
    "DescribeSecret",
    "ListSecrets",
    "DeleteSecret",
    "RestoreSecret",
];
const LOGS: &[&str] = &[
    "CreateLogGroup",
    "DeleteLogGroup",
    "DescribeLogGroups",
    "PutRetentionPolicy",
    "DeleteRetentionPolicy",
    "CreateLogStream",
    "DeleteLogStream",
    "DescribeLogStreams",
    "PutLogEvents",
    "GetLogEvents",
    "FilterLogEvents",
];
const SERVICES: &[(&str, &str, &[&str])] = &[
    ("ecs", "AmazonEC2ContainerServiceV20141113.", ECS),
    (
        "application-autoscaling",
        "AnyScaleFrontendService.",
        AUTOSCALING,
    ),
    ("ssm", "AmazonSSM.", SSM),
    ("secretsmanager", "secretsmanager.", SECRETS),
    ("logs", "Logs_20140328.", LOGS),
];

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let (service, prefix, actions) = SERVICES[data[0] as usize % SERVICES.len()];
    let (target, body) = if data[1] == 0xff {
        // A free-form target, so unknown and malformed action names are tried too.
        let (head, rest) = split_line(&data[2..]);
        (String::from_utf8_lossy(head).into_owned(), rest)
    } else {
        let action = actions[data[1] as usize % actions.len()];
        (format!("{prefix}{action}"), &data[2..])
    };
    let headers = vec![
        (
            "content-type".to_owned(),
            "application/x-amz-json-1.1".to_owned(),
        ),
        ("x-amz-target".to_owned(), target.clone()),
    ];
    let Some(answer) = api().signed(service, headers, body.to_vec()) else {
        return;
    };
    assert_not_server_error(&target, &answer);
});
