//! Task roles in the control layer: a task with `taskRoleArn` gets its role's temporary
//! credentials in its agent's poll answer (sealed in the store), the same keys until half
//! their life is gone and new ones after; the edge's signer lookup shows them as the role's
//! session with the role's policies, until the task stops.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

mod support;

use berth_model::agent::{DesiredSet, StatusReport, TaskCredentials};
use berth_ops::agent::{self, PollQuery};
use berth_ops::ecs::{taskdefs, tasks};
use berth_ops::iam::{self, roles, Principal};
use serde_json::json;
use support::{agent, cluster, env, ok, req, Env, T0};

const TRUST: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow",
    "Principal":{"Service":"ecs-tasks.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
const LIST: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow",
    "Action":"ecs:ListClusters","Resource":"*"}]}"#;

async fn poll(env: &Env, instance: &str) -> DesiredSet {
    let q = PollQuery {
        cluster: "c".into(),
        instance: instance.into(),
        since: String::new(),
        wait: 0.0,
    };
    ok(agent::poll(&env.ops, &q, std::future::pending()).await)
}

async fn creds(env: &Env, instance: &str) -> TaskCredentials {
    poll(env, instance).await.tasks[0]
        .credentials
        .clone()
        .unwrap()
}

async fn role(env: &Env) -> String {
    let p = json!({"RoleName": "app", "AssumeRolePolicyDocument": TRUST});
    let out = ok(roles::create(
        &env.ctx,
        iam::parse("CreateRole", p, roles::CREATE_MEMBERS).unwrap(),
    )
    .await);
    let p = json!({"RoleName": "app", "PolicyName": "list", "PolicyDocument": LIST});
    ok(roles::put_policy(
        &env.ctx,
        iam::parse("PutRolePolicy", p, roles::PUT_POLICY_MEMBERS).unwrap(),
    )
    .await);
    out["Role"]["Arn"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_tasks_role_credentials_reach_its_agent_refresh_and_end_with_it() {
    let env = env();
    cluster(&env.ctx, "c").await;
    let reg = agent(&env, "c").await;
    let arn = role(&env).await;
    let body = json!({"family": "app", "taskRoleArn": arn,
                      "containerDefinitions": [{"name": "app", "image": "busybox", "memory": 64}]});
    ok(taskdefs::register(&env.ctx, body.to_string().as_bytes()).await);
    let out = ok(tasks::run(
        &env.ctx,
        req(json!({"cluster": "c", "taskDefinition": "app"})),
    )
    .await);
    let task_id = out["tasks"][0]["taskArn"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();

    let first = creds(&env, &reg.instance_id).await;
    assert!(first.access_key_id.starts_with("ASIA") && first.access_key_id.len() == 20);
    assert_eq!(first.role_arn, arn);
    assert_eq!(first.expiration, "2023-11-15T04:13:20Z"); // T0 + 6 h
                                                          // Sealed at rest: neither the secret nor the token is in the store in clear.
    let raw = env.store.list("iam/sessions/").await.unwrap().0;
    let text = String::from_utf8_lossy(&raw[0].value).into_owned();
    assert!(!text.contains(&first.secret_access_key) && !text.contains(&first.token));

    let signer = env
        .ops
        .iam_signer(&first.access_key_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(signer.secret, first.secret_access_key);
    assert_eq!(
        signer.principal,
        Principal::AssumedRole {
            role: "app".into(),
            session: task_id.clone(),
            arn: format!("arn:aws:sts::000000000000:assumed-role/app/{task_id}"),
        }
    );
    assert_eq!(signer.policies.len(), 1);
    let session = signer.session.unwrap();
    assert_eq!(
        (session.token.as_str(), session.expiration),
        (first.token.as_str(), T0 + 21_600.0)
    );

    // The same keys until half their life is gone; then new ones, under the same id.
    env.clock.advance(10_000.0);
    assert_eq!(
        creds(&env, &reg.instance_id).await.access_key_id,
        first.access_key_id
    );
    env.clock.advance(1_000.0);
    let second = creds(&env, &reg.instance_id).await;
    assert_ne!(second.access_key_id, first.access_key_id);
    assert_eq!(second.credentials_id, first.credentials_id);
    assert!(env
        .ops
        .iam_signer(&first.access_key_id)
        .await
        .unwrap()
        .is_some());

    // Stopped: no key of the task signs anything, and its records are gone.
    let report: StatusReport = serde_json::from_value(json!({
        "cluster": "c", "instanceId": reg.instance_id,
        "tasks": [{"taskId": task_id, "lastStatus": "STOPPED",
                   "containers": [{"name": "app", "lastStatus": "STOPPED", "exitCode": 0}]}],
    }))
    .unwrap();
    ok(agent::status(&env.ops, &report).await);
    assert!(poll(&env, &reg.instance_id)
        .await
        .tasks
        .iter()
        .all(|t| t.credentials.is_none()));
    assert!(env
        .ops
        .iam_signer(&second.access_key_id)
        .await
        .unwrap()
        .is_none());
    assert!(env
        .ops
        .iam_signer(&first.access_key_id)
        .await
        .unwrap()
        .is_none());
    assert!(env.store.list("iam/sessions/").await.unwrap().0.is_empty());
}
