//! berth's HTTP front door.
//!
//! Every AWS API berth speaks is served on one URL and told apart by protocol: ECS is AWS
//! JSON 1.1 (`POST /`, `X-Amz-Target: AmazonEC2ContainerServiceV20141113.<Action>`). The edge
//! ([`router`]) reads the body with a size cap, verifies the SigV4 signature against the
//! [`KeyRing`], parses the action's body into a typed request and hands it to the action's
//! handler in `ecs/`; handlers talk to the store, never to HTTP types. Failures become
//! ECS-shaped errors (`__type`, `message`) through [`berth_model::ApiError`], in one place.
//! Elastic Load Balancing (v2) is the AWS Query protocol on the same URL: a form-encoded body
//! (`Action=CreateLoadBalancer&...`) signed for `elasticloadbalancing`, answered in XML
//! (`elb/`).
//!
//! Start with [`router`] and [`ApiState`].

mod agent;
mod auth;
mod autoscaling;
mod ecs;
mod edge;
mod elb;
mod metrics;
mod paging;
mod state;

pub use agent::join_token;
pub use auth::KeyRing;
pub use edge::{router, MAX_BODY_BYTES};
pub use state::{ApiConfig, ApiState, MetricsHook, DEFAULT_LB_HOST};
