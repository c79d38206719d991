//! Task definitions' secrets: `valueFrom` checked at RegisterTaskDefinition, values resolved
//! into the agent's poll answer only (never DescribeTasks or the task record), and a task
//! whose secret cannot be resolved stopped before its agent sees it, as ECS words it. Secrets
//! are read with the task's execution role: one its policies do not allow fails the task with
//! the AccessDeniedException the service would give the role.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

mod support;

use berth_model::agent::DesiredSet;
use berth_model::ErrorCode;
use berth_ops::agent::{self, PollQuery};
use berth_ops::ecs::{taskdefs, tasks};
use berth_ops::iam::{self, roles};
use berth_ops::secrets::{secretsmanager as sm, ssm};
use serde_json::{json, Value};
use support::{agent, cluster, env, ok, req, Env};

async fn poll(env: &Env, instance: &str) -> DesiredSet {
    let q = PollQuery {
        cluster: "c".into(),
        instance: instance.into(),
        since: String::new(),
        wait: 0.0,
    };
    ok(agent::poll(&env.ops, &q, std::future::pending()).await)
}

const TRUST: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow",
    "Principal":{"Service":"ecs-tasks.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
const READ_SECRETS: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow",
    "Action":["ssm:GetParameters","secretsmanager:GetSecretValue"],"Resource":"*"}]}"#;
const EXECUTION_POLICY: &str =
    "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy";

/// The role `name` (made if absent), with the inline policy `inline` if given; its ARN.
async fn exec_role(env: &Env, name: &str, inline: Option<&str>) -> String {
    let p = json!({"RoleName": name, "AssumeRolePolicyDocument": TRUST});
    let _ = roles::create(
        &env.ctx,
        iam::parse("CreateRole", p, roles::CREATE_MEMBERS).unwrap(),
    )
    .await;
    if let Some(doc) = inline {
        let p = json!({"RoleName": name, "PolicyName": "p", "PolicyDocument": doc});
        ok(roles::put_policy(
            &env.ctx,
            iam::parse("PutRolePolicy", p, roles::PUT_POLICY_MEMBERS).unwrap(),
        )
        .await);
    }
    format!("arn:aws:iam::000000000000:role/{name}")
}

async fn attach(env: &Env, name: &str, arn: &str) {
    let p = json!({"RoleName": name, "PolicyArn": arn});
    ok(roles::attach(
        &env.ctx,
        iam::parse("AttachRolePolicy", p, roles::ARN_MEMBERS).unwrap(),
    )
    .await);
}

/// Registers family `app` with `container`, executed by a role that may read every secret.
async fn register(env: &Env, container: Value) -> Result<Value, berth_model::ApiError> {
    let role = exec_role(env, "exec", Some(READ_SECRETS)).await;
    register_as(env, container, Some(&role)).await
}

async fn register_as(
    env: &Env,
    container: Value,
    execution_role: Option<&str>,
) -> Result<Value, berth_model::ApiError> {
    let mut body = json!({"family": "app", "containerDefinitions": [container]});
    if let Some(r) = execution_role {
        body["executionRoleArn"] = json!(r);
    }
    taskdefs::register(&env.ctx, body.to_string().as_bytes()).await
}

fn base(extra: Value) -> Value {
    let mut c = json!({"name": "app", "image": "busybox", "memory": 64});
    if let (Value::Object(c), Value::Object(e)) = (&mut c, extra) {
        c.extend(e);
    }
    c
}

async fn seed(env: &Env) -> String {
    ok(ssm::put(
        &env.ctx,
        req(json!({"Name": "/app/db/pw", "Value": "ssm-pw", "Type": "SecureString"})),
    )
    .await);
    ok(ssm::put(
        &env.ctx,
        req(json!({"Name": "plain", "Value": "plain-v", "Type": "String"})),
    )
    .await);
    let out = ok(sm::create(
        &env.ctx,
        req(json!({"Name": "creds", "SecretString": "{\"user\":\"admin\",\"pass\":\"asm-pw\",\"username\":\"u\",\"password\":\"p\"}"})),
    )
    .await);
    out["ARN"].as_str().unwrap().to_owned()
}

async fn run(env: &Env) -> (String, String) {
    let out = ok(tasks::run(
        &env.ctx,
        req(json!({"cluster": "c", "taskDefinition": "app"})),
    )
    .await);
    assert_eq!(out["failures"], json!([]), "{out}");
    let arn = out["tasks"][0]["taskArn"].as_str().unwrap().to_owned();
    let id = arn.rsplit('/').next().unwrap().to_owned();
    (arn, id)
}

async fn describe(env: &Env, arn: &str) -> Value {
    let out = ok(tasks::describe(&env.ctx, req(json!({"cluster": "c", "tasks": [arn]}))).await);
    out["tasks"][0].clone()
}

#[tokio::test]
async fn value_from_is_checked_at_registration() {
    let env = env();
    let bad = [
        json!({"secrets": [{"name": "A", "valueFrom": "arn:aws:s3:::bucket/key"}]}),
        json!({"secrets": [{"name": "A", "valueFrom": ""}]}),
        json!({"secrets": [{"valueFrom": "p"}]}),
        json!({"secrets": [{"name": "A", "valueFrom": "p"}, {"name": "A", "valueFrom": "q"}]}),
        json!({"secrets": [{"name": "A", "valueFrom": "arn:aws:secretsmanager:us-east-1:1:secret:n:k:s:v:extra"}]}),
        json!({"logConfiguration": {"logDriver": "json-file", "secretOptions": [{"name": "x", "valueFrom": "arn:aws:kms:r:a:key/1"}]}}),
        json!({"repositoryCredentials": {"credentialsParameter": "arn:aws:ssm:us-east-1:1:parameter/reg"}}),
    ];
    for extra in bad {
        let e = register(&env, base(extra.clone())).await.unwrap_err();
        assert_eq!(e.code, ErrorCode::ClientException, "{extra}");
    }
    ok(register(
        &env,
        base(json!({"secrets": [
            {"name": "A", "valueFrom": "/app/x"},
            {"name": "B", "valueFrom": "arn:aws:ssm:us-east-1:1:parameter/app/x"},
            {"name": "C", "valueFrom": "arn:aws:secretsmanager:us-east-1:1:secret:n-AbCdEf:key::"},
        ]})),
    )
    .await);
}

#[tokio::test]
async fn secrets_reach_the_agent_only() {
    let env = env();
    cluster(&env.ctx, "c").await;
    let reg = agent(&env, "c").await;
    let arn = seed(&env).await;
    ok(register(&env, base(json!({
        "environment": [{"name": "KEEP", "value": "k"}],
        "secrets": [
            {"name": "DB_PW", "valueFrom": "/app/db/pw"},
            {"name": "PLAIN", "valueFrom": "arn:aws:ssm:us-east-1:000000000000:parameter/plain"},
            {"name": "ASM_PASS", "valueFrom": format!("{arn}:pass::")},
            {"name": "ASM_ALL", "valueFrom": arn},
        ],
        "logConfiguration": {"logDriver": "json-file",
            "secretOptions": [{"name": "token", "valueFrom": format!("{arn}:user::")}]},
        "repositoryCredentials": {"credentialsParameter": "creds"},
    })))
    .await);
    let (task_arn, _) = run(&env).await;
    let set = poll(&env, &reg.instance_id).await;
    let t = &set.tasks[0];
    let r = &t.secrets.as_ref().expect("resolved secrets").containers["app"];
    let env_of: Vec<(&str, &str)> = r
        .environment
        .iter()
        .map(|kv| (kv.name.as_str(), kv.value.as_str()))
        .collect();
    assert_eq!(env_of[0], ("DB_PW", "ssm-pw"));
    assert_eq!(env_of[1], ("PLAIN", "plain-v"));
    assert_eq!(env_of[2], ("ASM_PASS", "asm-pw"));
    assert!(env_of[3].1.contains("\"pass\""));
    assert_eq!(r.log_options["token"], "admin");
    let auth = r.registry_auth.as_ref().expect("registry auth");
    assert_eq!((auth.username.as_str(), auth.password.as_str()), ("u", "p"));
    // Nowhere else: not DescribeTasks, not the task record, not any record but the sealed ones.
    let shown = describe(&env, &task_arn).await.to_string();
    for v in ["ssm-pw", "asm-pw", "plain-v"] {
        assert!(!shown.contains(v), "DescribeTasks shows {v}");
    }
    let (kvs, _) = env.store.list("").await.unwrap();
    for kv in kvs {
        let text = String::from_utf8_lossy(&kv.value);
        assert!(
            !text.contains("ssm-pw") && !text.contains("asm-pw"),
            "{} holds a value",
            kv.key
        );
    }
    assert!(
        !format!("{set:?}").contains("ssm-pw"),
        "Debug shows a value"
    );
    // Sent once, at start: once the task runs, answers no longer carry the values.
    let id = task_arn.rsplit('/').next().unwrap();
    let report: berth_model::agent::StatusReport = serde_json::from_value(json!({
        "cluster": "c", "instanceId": reg.instance_id,
        "tasks": [{"taskId": id, "lastStatus": "RUNNING",
                   "containers": [{"name": "app", "lastStatus": "RUNNING"}]}]}))
    .unwrap();
    ok(agent::status(&env.ops, &report).await);
    let set = poll(&env, &reg.instance_id).await;
    assert_eq!(set.tasks.len(), 1);
    assert!(set.tasks[0].secrets.is_none());
}

#[tokio::test]
async fn an_unresolvable_secret_fails_the_task_before_the_agent_sees_it() {
    let env = env();
    cluster(&env.ctx, "c").await;
    let reg = agent(&env, "c").await;
    let arn = seed(&env).await;
    let cases = [
        (json!({"name": "X", "valueFrom": "/app/missing"}),
         "ResourceInitializationError: unable to pull secrets or registry auth: execution resource retrieval failed: unable to retrieve secrets from ssm: service call has been retried 1 time(s): invalid parameters: /app/missing".to_owned()),
        (json!({"name": "X", "valueFrom": "arn:aws:secretsmanager:us-east-1:000000000000:secret:gone-AbCdEf"}),
         "ResourceInitializationError: unable to pull secrets or registry auth: execution resource retrieval failed: unable to retrieve secret from asm: service call has been retried 1 time(s): failed to fetch secret arn:aws:secretsmanager:us-east-1:000000000000:secret:gone-AbCdEf from secrets manager: ResourceNotFoundException: Secrets Manager can't find the specified secret.".to_owned()),
        (json!({"name": "X", "valueFrom": format!("{arn}:nokey::")}),
         format!("ResourceInitializationError: unable to pull secrets or registry auth: execution resource retrieval failed: unable to retrieve secret from asm: service call has been retried 1 time(s): failed to fetch secret {arn} from secrets manager: retrieved secret from Secrets Manager did not contain json key nokey")),
    ];
    for (secret, reason) in cases {
        ok(register(&env, base(json!({"secrets": [secret]}))).await);
        let (task_arn, _) = run(&env).await;
        let set = poll(&env, &reg.instance_id).await;
        assert!(set.tasks.is_empty(), "the agent never gets the task");
        let t = describe(&env, &task_arn).await;
        assert_eq!(t["lastStatus"], "STOPPED");
        assert_eq!(t["stopCode"], "TaskFailedToStart");
        assert_eq!(t["stoppedReason"], reason.as_str());
    }
    // A secret scheduled for deletion cannot be read either.
    ok(sm::delete(&env.ctx, req(json!({"SecretId": "creds"}))).await);
    ok(register(
        &env,
        base(json!({"secrets": [{"name": "X", "valueFrom": arn}]})),
    )
    .await);
    let (task_arn, _) = run(&env).await;
    poll(&env, &reg.instance_id).await;
    let t = describe(&env, &task_arn).await;
    assert!(
        t["stoppedReason"]
            .as_str()
            .unwrap()
            .contains("InvalidRequestException"),
        "{t}"
    );
    // Registry credentials: ECS's own wording for registry auth.
    ok(register(
        &env,
        base(json!({"repositoryCredentials": {"credentialsParameter": "nothere"}})),
    )
    .await);
    let (task_arn, _) = run(&env).await;
    poll(&env, &reg.instance_id).await;
    let t = describe(&env, &task_arn).await;
    assert!(
        t["stoppedReason"].as_str().unwrap().starts_with(
            "ResourceInitializationError: unable to pull secrets or registry auth: execution resource retrieval failed: unable to get registry auth from asm"
        ),
        "{t}"
    );
}

#[tokio::test]
async fn secrets_need_an_execution_role_that_exists() {
    let env = env();
    let c = base(json!({"secrets": [{"name": "A", "valueFrom": "/app/x"}]}));
    let e = register_as(&env, c.clone(), None).await.unwrap_err();
    assert_eq!(e.code, ErrorCode::ClientException);
    assert_eq!(
        e.message,
        "When you are specifying container secrets, you must also specify a value for 'executionRoleArn'."
    );
    let e = register_as(&env, c, Some("arn:aws:iam::000000000000:role/none"))
        .await
        .unwrap_err();
    assert_eq!(
        (e.code, e.message.as_str()),
        (ErrorCode::ClientException, "Role is not valid")
    );
}

/// Runs family `app` and polls once: the task's DescribeTasks view after the poll.
async fn start(env: &Env, instance: &str) -> Value {
    let (task_arn, _) = run(env).await;
    poll(env, instance).await;
    describe(env, &task_arn).await
}

#[tokio::test]
async fn the_execution_role_decides_what_secrets_and_logs_a_task_gets() {
    let env = env();
    cluster(&env.ctx, "c").await;
    let reg = agent(&env, "c").await;
    let arn = seed(&env).await;
    // Only AWS's execution policy: ECR and logs, no secrets.
    let role = exec_role(&env, "narrow", None).await;
    attach(&env, "narrow", EXECUTION_POLICY).await;
    let session = |id: &str| format!("arn:aws:sts::000000000000:assumed-role/narrow/{id}");
    let ssm_param = json!({"secrets": [{"name": "X", "valueFrom": "/app/db/pw"}]});
    ok(register_as(&env, base(ssm_param), Some(&role)).await);
    let t = start(&env, &reg.instance_id).await;
    let id = t["taskArn"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();
    assert_eq!(t["stopCode"], "TaskFailedToStart");
    assert_eq!(
        t["stoppedReason"],
        format!("ResourceInitializationError: unable to pull secrets or registry auth: execution resource retrieval failed: unable to retrieve secrets from ssm: service call has been retried 1 time(s): AccessDeniedException: User: {} is not authorized to perform: ssm:GetParameters on resource: arn:aws:ssm:us-east-1:000000000000:parameter/app/db/pw because no identity-based policy allows the ssm:GetParameters action", session(&id))
    );
    ok(register_as(
        &env,
        base(json!({"secrets": [{"name": "X", "valueFrom": arn}]})),
        Some(&role),
    )
    .await);
    let t = start(&env, &reg.instance_id).await;
    let id = t["taskArn"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();
    assert_eq!(
        t["stoppedReason"],
        format!("ResourceInitializationError: unable to pull secrets or registry auth: execution resource retrieval failed: unable to retrieve secret from asm: service call has been retried 1 time(s): failed to fetch secret {arn} from secrets manager: AccessDeniedException: User: {} is not authorized to perform: secretsmanager:GetSecretValue on resource: {arn} because no identity-based policy allows the secretsmanager:GetSecretValue action", session(&id))
    );
    // The attached policy lets it write its logs; a role with secrets only may not.
    let logs = json!({"logConfiguration": {"logDriver": "awslogs", "options": {
        "awslogs-group": "/ecs/app", "awslogs-stream-prefix": "web"}}});
    ok(register_as(&env, base(logs.clone()), Some(&role)).await);
    let t = start(&env, &reg.instance_id).await;
    assert_ne!(t["lastStatus"], "STOPPED", "{t}");
    let secrets_only = exec_role(&env, "secrets-only", Some(READ_SECRETS)).await;
    ok(register_as(&env, base(logs), Some(&secrets_only)).await);
    let t = start(&env, &reg.instance_id).await;
    let id = t["taskArn"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();
    assert_eq!(
        t["stoppedReason"],
        format!("ResourceInitializationError: failed to validate logger args: create stream has been retried 1 times: failed to create Cloudwatch log stream: AccessDeniedException: User: arn:aws:sts::000000000000:assumed-role/secrets-only/{id} is not authorized to perform: logs:CreateLogStream on resource: arn:aws:logs:us-east-1:000000000000:log-group:/ecs/app because no identity-based policy allows the logs:CreateLogStream action : exit status 1")
    );
    // A role deleted since registration cannot be assumed.
    let p = json!({"RoleName": "secrets-only", "PolicyName": "p"});
    ok(roles::delete_policy(
        &env.ctx,
        iam::parse("DeleteRolePolicy", p, roles::POLICY_NAME_MEMBERS).unwrap(),
    )
    .await);
    let p = json!({"RoleName": "secrets-only"});
    ok(roles::delete(
        &env.ctx,
        iam::parse("DeleteRole", p, roles::NAME_MEMBERS).unwrap(),
    )
    .await);
    let t = start(&env, &reg.instance_id).await;
    assert!(
        t["stoppedReason"].as_str().unwrap().starts_with(
            "ECS was unable to assume the role 'arn:aws:iam::000000000000:role/secrets-only'"
        ),
        "{t}"
    );
}
