//! The AWS managed policies berth knows, by ARN: attachable to users with
//! `AttachUserPolicy` and to roles with `AttachRolePolicy`. Each is written for the services berth serves, with the same intent as
//! AWS's policy of that name (AWS's own documents list hundreds of actions of services berth
//! does not have).

use crate::Policy;

/// `AdministratorAccess`: everything.
pub const ADMINISTRATOR_ACCESS: &str = "arn:aws:iam::aws:policy/AdministratorAccess";
/// `AmazonECS_FullAccess`: ECS and what ECS services use (load balancing, scaling, EC2
/// networking, logs, secrets), and reading IAM.
pub const ECS_FULL_ACCESS: &str = "arn:aws:iam::aws:policy/AmazonECS_FullAccess";
/// `AmazonECSTaskExecutionRolePolicy`: what ECS's agent needs for a task (ECR pulls, and
/// CloudWatch Logs streams and events for `awslogs`); AWS's document, statement for statement.
pub const ECS_TASK_EXECUTION_ROLE_POLICY: &str =
    "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy";
/// `ReadOnlyAccess`: describe, list and get in every service, no changes, no secret values.
pub const READ_ONLY_ACCESS: &str = "arn:aws:iam::aws:policy/ReadOnlyAccess";

const ADMIN_DOC: &str = r#"{"Version":"2012-10-17","Statement":[
  {"Effect":"Allow","Action":"*","Resource":"*"}]}"#;

const ECS_FULL_DOC: &str = r#"{"Version":"2012-10-17","Statement":[
  {"Sid":"ECSIntegrationsManagementPolicy","Effect":"Allow","Action":[
    "ecs:*","elasticloadbalancing:*","application-autoscaling:*","autoscaling:*",
    "ec2:*","logs:*","ssm:*","secretsmanager:*","iam:Get*","iam:List*"],
   "Resource":"*"}]}"#;

const READ_ONLY_DOC: &str = r#"{"Version":"2012-10-17","Statement":[
  {"Effect":"Allow","Action":[
    "ecs:Describe*","ecs:List*","elasticloadbalancing:Describe*",
    "application-autoscaling:Describe*","autoscaling:Describe*","ec2:Describe*",
    "logs:Describe*","logs:Get*","logs:FilterLogEvents","logs:ListTagsForResource",
    "ssm:Describe*","ssm:Get*","ssm:List*","secretsmanager:DescribeSecret",
    "secretsmanager:ListSecrets","iam:Get*","iam:List*"],
   "Resource":"*"}]}"#;

const ECS_TASK_EXECUTION_DOC: &str = r#"{"Version":"2012-10-17","Statement":[
  {"Effect":"Allow","Action":[
    "ecr:GetAuthorizationToken","ecr:BatchCheckLayerAvailability",
    "ecr:GetDownloadUrlForLayer","ecr:BatchGetImage",
    "logs:CreateLogStream","logs:PutLogEvents"],
   "Resource":"*"}]}"#;

/// The managed policies, as (ARN, name, document).
pub const ALL: &[(&str, &str, &str)] = &[
    (ADMINISTRATOR_ACCESS, "AdministratorAccess", ADMIN_DOC),
    (ECS_FULL_ACCESS, "AmazonECS_FullAccess", ECS_FULL_DOC),
    (READ_ONLY_ACCESS, "ReadOnlyAccess", READ_ONLY_DOC),
    (
        ECS_TASK_EXECUTION_ROLE_POLICY,
        "AmazonECSTaskExecutionRolePolicy",
        ECS_TASK_EXECUTION_DOC,
    ),
];

/// The managed policy with this ARN: its name and parsed document.
pub fn get(arn: &str) -> Option<(&'static str, Policy)> {
    let (_, name, doc) = ALL.iter().find(|(a, _, _)| *a == arn)?;
    Some((name, Policy::parse(doc).ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_managed_policy_parses() {
        for (arn, name, _) in ALL {
            let (n, _) = get(arn).expect("parses");
            assert_eq!(n, *name);
        }
        assert!(get("arn:aws:iam::aws:policy/Nope").is_none());
    }
}
