//! Agent identity against the in-memory store: a join token buys a server-chosen instance and
//! its credential; every later call is checked against the instance it names; join tokens
//! expire and rotate; deregistration revokes. Each attack here worked with the cluster-wide
//! bearer token berth had before.

mod support;

use berth_model::agent::{AgentRegistered, AgentRegistration};
use berth_model::{Clock, ErrorCode};
use berth_ops::agent::{self, Presented};
use berth_ops::ecs::instances;
use berth_ops::identity;
use berth_ops::Ops;
use serde_json::json;
use support::{cluster, code, env, host, ok, req, run_task, taskdef, Env, SECRET, T0};

const DAY: f64 = 86_400.0;

fn token(env: &Env) -> String {
    identity::join_token(SECRET, "c", env.clock.now(), DAY)
}

async fn join(
    ops: &Ops,
    reg: &AgentRegistration,
    token: Option<&str>,
    credential: Option<&str>,
) -> Result<AgentRegistered, berth_model::ApiError> {
    agent::join(
        ops,
        reg,
        Presented {
            join_token: token,
            credential,
        },
    )
    .await
}

fn naming(id: &str) -> AgentRegistration {
    AgentRegistration {
        instance_id: Some(id.to_owned()),
        ..host("c", &[])
    }
}

fn cred(r: &AgentRegistered) -> &str {
    r.credential.as_deref().expect("a credential")
}

#[tokio::test]
async fn a_join_token_buys_a_server_chosen_instance_and_its_own_credential() {
    let env = env();
    cluster(&env.ctx, "c").await;
    let t = token(&env);
    // The caller's choice of id is not taken: the server picks ECS's 32 hex.
    let r = ok(join(&env.ops, &naming("my-chosen-id"), Some(&t), None).await);
    assert_ne!(r.instance_id, "my-chosen-id");
    assert_eq!(r.instance_id.len(), 32);
    assert!(r.instance_id.bytes().all(|b| b.is_ascii_hexdigit()));
    assert!(cred(&r).starts_with("bic1."));
    assert!(r.logs_token.is_some());
    assert!(ok(agent::authenticate(
        &env.ops,
        "c",
        &r.instance_id,
        Some(cred(&r))
    )
    .await));
    // No token, a wrong token: no instance.
    let e = code(join(&env.ops, &host("c", &[]), None, None).await);
    assert_eq!(e, ErrorCode::UnrecognizedClientException);
    let other = identity::join_token("another secret", "c", T0, DAY);
    let e = code(join(&env.ops, &host("c", &[]), Some(&other), None).await);
    assert_eq!(e, ErrorCode::UnrecognizedClientException);
}

#[tokio::test]
async fn an_agent_cannot_read_or_report_another_instances_tasks() {
    let env = env();
    cluster(&env.ctx, "c").await;
    let t = token(&env);
    let victim = ok(join(&env.ops, &host("c", &[]), Some(&t), None).await);
    let td = taskdef(&env.ctx, "web").await;
    run_task(&env.ctx, "c", &td).await;
    let attacker = ok(join(&env.ops, &host("c", &[]), Some(&t), None).await);
    // Polling or reporting as the victim, with the attacker's credential, the join token
    // (as the credential) or nothing: refused.
    for c in [Some(cred(&attacker)), Some(t.as_str()), None] {
        let e = code(agent::authenticate(&env.ops, "c", &victim.instance_id, c).await);
        assert_eq!(e, ErrorCode::AccessDeniedException);
    }
    // Re-registering as the victim (to get a credential for its id) is refused too.
    let e = code(join(&env.ops, &naming(&victim.instance_id), Some(&t), None).await);
    assert_eq!(e, ErrorCode::AccessDeniedException);
    let e = code(
        join(
            &env.ops,
            &naming(&victim.instance_id),
            Some(&t),
            Some(cred(&attacker)),
        )
        .await,
    );
    assert_eq!(e, ErrorCode::AccessDeniedException);
    // The victim itself is fine, and a restart keeps its id and credential.
    assert!(ok(agent::authenticate(
        &env.ops,
        "c",
        &victim.instance_id,
        Some(cred(&victim))
    )
    .await));
    let again = ok(join(
        &env.ops,
        &naming(&victim.instance_id),
        None,
        Some(cred(&victim)),
    )
    .await);
    assert_eq!(again.instance_id, victim.instance_id);
    assert_eq!(again.credential, victim.credential);
}

#[tokio::test]
async fn tokens_expire_but_registered_agents_keep_working() {
    let env = env();
    cluster(&env.ctx, "c").await;
    let t = token(&env);
    let r = ok(join(&env.ops, &host("c", &[]), Some(&t), None).await);
    env.clock.advance(DAY + 1.0);
    let e = code(join(&env.ops, &host("c", &[]), Some(&t), None).await);
    assert_eq!(e, ErrorCode::UnrecognizedClientException);
    let back = ok(join(&env.ops, &naming(&r.instance_id), Some(&t), Some(cred(&r))).await);
    assert_eq!(back.instance_id, r.instance_id);
    assert!(ok(agent::authenticate(
        &env.ops,
        "c",
        &r.instance_id,
        Some(cred(&r))
    )
    .await));
}

#[tokio::test]
async fn a_rotated_token_works_for_the_grace_period_then_joins_nothing() {
    let env = env();
    cluster(&env.ctx, "c").await;
    let old = ok(berth_ops::ecs::join_token(&env.ctx, req(json!({"cluster": "c"}))).await);
    let old = old["token"].as_str().expect("a token").to_owned();
    let registered = ok(join(&env.ops, &host("c", &[]), Some(&old), None).await);
    env.clock.advance(10.0);
    let out = ok(berth_ops::ecs::rotate_join_token(&env.ctx, req(json!({"cluster": "c"}))).await);
    let new = out["token"].as_str().expect("a new token").to_owned();
    assert_ne!(new, old);
    assert_eq!(
        out["previousTokensValidUntil"].as_f64(),
        Some(T0 + 10.0 + 3600.0)
    );
    // In the grace period, both join.
    env.clock.advance(3599.0);
    ok(join(&env.ops, &host("c", &[]), Some(&old), None).await);
    ok(join(&env.ops, &host("c", &[]), Some(&new), None).await);
    // After it, a stolen old token registers no phantom instance; the new one still joins.
    env.clock.advance(2.0);
    let e = code(join(&env.ops, &host("c", &[]), Some(&old), None).await);
    assert_eq!(e, ErrorCode::UnrecognizedClientException);
    ok(join(&env.ops, &host("c", &[]), Some(&new), None).await);
    // The agent registered with the old token is unaffected.
    assert!(ok(agent::authenticate(
        &env.ops,
        "c",
        &registered.instance_id,
        Some(cred(&registered))
    )
    .await));
    ok(join(
        &env.ops,
        &naming(&registered.instance_id),
        Some(&old),
        Some(cred(&registered)),
    )
    .await);
    // A rotation with no grace refuses the tokens issued so far at once.
    ok(berth_ops::ecs::rotate_join_token(
        &env.ctx,
        req(json!({"cluster": "c", "gracePeriodSeconds": 0})),
    )
    .await);
    let e = code(join(&env.ops, &host("c", &[]), Some(&new), None).await);
    assert_eq!(e, ErrorCode::UnrecognizedClientException);
    let e = code(
        berth_ops::ecs::rotate_join_token(
            &env.ctx,
            req(json!({"cluster": "c", "gracePeriodSeconds": -1})),
        )
        .await,
    );
    assert_eq!(e, ErrorCode::InvalidParameterException);
}

#[tokio::test]
async fn an_instance_registered_before_credentials_migrates_with_the_join_token() {
    let env = env();
    cluster(&env.ctx, "c").await;
    // What an older berth made: the agent's own id, no credential kept.
    let legacy = ok(agent::register(&env.ops, &naming("legacy-host-1")).await);
    assert_eq!(legacy.instance_id, "legacy-host-1");
    let t = token(&env);
    let migrated = ok(join(&env.ops, &naming("legacy-host-1"), Some(&t), None).await);
    assert_eq!(migrated.instance_id, "legacy-host-1");
    assert!(ok(agent::authenticate(
        &env.ops,
        "c",
        "legacy-host-1",
        Some(cred(&migrated))
    )
    .await));
    // From then on the id is bound to that credential.
    let e = code(join(&env.ops, &naming("legacy-host-1"), Some(&t), None).await);
    assert_eq!(e, ErrorCode::AccessDeniedException);
}

#[tokio::test]
async fn deregistering_an_instance_revokes_its_credential() {
    let env = env();
    cluster(&env.ctx, "c").await;
    let t = token(&env);
    let r = ok(join(&env.ops, &host("c", &[]), Some(&t), None).await);
    ok(instances::deregister(
        &env.ctx,
        req(json!({"cluster": "c", "containerInstance": r.instance_id, "force": true})),
    )
    .await);
    // A poll is told to register again; the credential brings no instance back.
    assert!(!ok(agent::authenticate(
        &env.ops,
        "c",
        &r.instance_id,
        Some(cred(&r))
    )
    .await));
    env.clock.advance(DAY + 1.0);
    let e = code(join(&env.ops, &naming(&r.instance_id), Some(&t), Some(cred(&r))).await);
    assert_eq!(e, ErrorCode::UnrecognizedClientException);
    // With a valid token it is a new instance, never the old id.
    let fresh = identity::join_token(SECRET, "c", env.clock.now(), DAY);
    let n = ok(join(
        &env.ops,
        &naming(&r.instance_id),
        Some(&fresh),
        Some(cred(&r)),
    )
    .await);
    assert_ne!(n.instance_id, r.instance_id);
}

#[tokio::test]
async fn hostile_ids_in_agent_calls_are_refused_cleanly() {
    let env = env();
    cluster(&env.ctx, "c").await;
    let t = token(&env);
    for id in ["x/../../y", "é", "", "a b", &"a".repeat(65)] {
        let e = code(agent::authenticate(&env.ops, "c", id, Some("bic1.00")).await);
        assert_eq!(e, ErrorCode::InvalidParameterException, "{id:?}");
        let e = code(join(&env.ops, &naming(id), Some(&t), None).await);
        assert_eq!(e, ErrorCode::InvalidParameterException, "{id:?}");
    }
    for c in ["x/../y", "ü", ""] {
        let e = code(agent::authenticate(&env.ops, c, "abc", None).await);
        assert_eq!(e, ErrorCode::InvalidParameterException, "{c:?}");
    }
}
