//! berth's HTTP front door.
//!
//! Every AWS API berth speaks is served on one URL and told apart by protocol: ECS is AWS
//! JSON 1.1 (`POST /`, `X-Amz-Target: AmazonEC2ContainerServiceV20141113.<Action>`). The edge
//! ([`router`]) reads the body with a size cap, verifies the SigV4 signature against the
//! [`KeyRing`], parses the action's body into its typed request and calls the action's
//! operation in [`berth_ops`]; it never touches the store (a test over `cargo metadata`
//! keeps `berth-store` out of this crate's dependencies). Failures become ECS-shaped errors
//! (`__type`, `message`) through [`berth_model::ApiError`], in one place.
//! Elastic Load Balancing (v2) is the AWS Query protocol on the same URL: a form-encoded body
//! (`Action=CreateLoadBalancer&...`) signed for `elasticloadbalancing`, answered in XML
//! (`elb`). Application Auto Scaling is JSON 1.1 with its own target prefix (`autoscaling`),
//! and so are SSM Parameter Store and Secrets Manager (`secrets`) and CloudWatch Logs (`logs`).
//! The EC2 subset (VPCs, subnets, security groups: `ec2`) is EC2's own query protocol; Query
//! requests are routed by the service their SigV4 credential scope names.
//!
//! EC2 Auto Scaling (berth's host groups, `asg`) is the Query protocol too, signed for
//! `autoscaling`: the edge tells Query services apart by the signature's credential scope.
//!
//! IAM (users, access keys, policies, roles: `iam`) is the Query protocol signed for `iam`.
//! Every request is authorized after it is authenticated (`authz`): berth's root key may do
//! everything; a user's key may do what the user's policies allow (`berth_iam`).
//!
//! Start with [`router`] and [`ApiState`].

#![warn(missing_docs)]

mod agent;
mod asg;
mod auth;
mod authz;
mod autoscaling;
mod ec2;
mod ecs;
mod edge;
mod elb;
mod iam;
mod logs;
mod metrics;
mod secrets;
mod state;
mod throttle;

pub use auth::KeyRing;
pub use berth_ops::{join_token, Ops, OpsConfig, DEFAULT_LB_HOST};
pub use edge::{router, MAX_BODY_BYTES};
pub use state::{ApiState, MetricsHook};
pub use throttle::RateLimit;
