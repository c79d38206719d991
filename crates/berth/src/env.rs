//! Every environment variable berth reads, named once.

/// Root access key id for the API (generated and kept in the data dir when unset).
pub const ROOT_ACCESS_KEY_ID: &str = "BERTH_ROOT_ACCESS_KEY_ID";
/// Root secret access key for the API.
pub const ROOT_SECRET_ACCESS_KEY: &str = "BERTH_ROOT_SECRET_ACCESS_KEY";
/// Data directory of the server (`--data-dir`).
pub const DATA_DIR: &str = "BERTH_DATA_DIR";
/// The server's state store (`--store`): `etcd://...` or a data dir / `.redb` file.
pub const STORE: &str = "BERTH_STORE";
/// The server token a further replica joins with (`--join`).
pub const JOIN: &str = "BERTH_JOIN";
/// Listen address of the server (`--listen`).
pub const LISTEN: &str = "BERTH_LISTEN";
/// This server's name among the replicas sharing a store (`--replica-id`).
pub const REPLICA_ID: &str = "BERTH_REPLICA_ID";
/// Account id shown in ARNs (`--account-id`).
pub const ACCOUNT_ID: &str = "BERTH_ACCOUNT_ID";
/// The log store's byte cap (`--logs-max-bytes`).
pub const LOGS_MAX_BYTES: &str = "BERTH_LOGS_MAX_BYTES";
/// The default VPC's CIDR block (awsvpc tasks' addresses come from its subnets).
pub const DEFAULT_VPC_CIDR: &str = "BERTH_DEFAULT_VPC_CIDR";

/// The standard AWS variables the CLI client reads, like every SDK.
pub const AWS_ACCESS_KEY_ID: &str = "AWS_ACCESS_KEY_ID";
pub const AWS_SECRET_ACCESS_KEY: &str = "AWS_SECRET_ACCESS_KEY";
pub const AWS_DEFAULT_REGION: &str = "AWS_DEFAULT_REGION";
pub const AWS_REGION: &str = "AWS_REGION";
pub const AWS_ENDPOINT_URL_ECS: &str = "AWS_ENDPOINT_URL_ECS";
pub const AWS_ENDPOINT_URL: &str = "AWS_ENDPOINT_URL";

/// The default API address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9400";
/// The region berth names when the client does not choose one.
pub const DEFAULT_REGION: &str = "us-east-1";

/// `berth agent` settings.
pub const AGENT_SERVER: &str = "BERTH_SERVER";
pub const AGENT_CLUSTER: &str = "BERTH_CLUSTER";
pub const JOIN_TOKEN: &str = "BERTH_JOIN_TOKEN";
pub const AGENT_STATE_DIR: &str = "BERTH_AGENT_STATE_DIR";
/// Whom the process driver runs task commands as (`--task-user`).
pub const TASK_USER: &str = "BERTH_TASK_USER";
/// The CA bundle `berth agent` trusts for an `https://` server (`--ca-cert`).
pub const CA_CERT: &str = "BERTH_CA_CERT";
/// The CA bundle the CLI trusts for an `https://` endpoint, as for the aws CLI and SDKs.
pub const AWS_CA_BUNDLE: &str = "AWS_CA_BUNDLE";
/// A host group's host: its launch configuration's user data, decoded.
pub const USER_DATA: &str = "BERTH_USER_DATA";
