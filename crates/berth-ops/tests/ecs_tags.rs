//! TagResource, UntagResource and ListTagsForResource on every taggable ECS kind (clusters,
//! task definitions, services, tasks, container instances) against the in-memory store,
//! including concurrent tagging of one resource.

mod support;

use std::collections::BTreeMap;

use berth_model::ErrorCode;
use berth_ops::ecs::tags;
use berth_ops::Ctx;
use serde_json::{json, Value};
use support::{
    agent, cluster, cluster_arn, code, env, ok, req, run_task, service, service_arn, taskdef,
    taskdef_arn, Env,
};

async fn tag(ctx: &Ctx, arn: &str, pairs: &[(&str, &str)]) -> Result<Value, berth_model::ApiError> {
    let tags: Vec<Value> = pairs
        .iter()
        .map(|(k, v)| json!({"key": k, "value": v}))
        .collect();
    tags::tag(ctx, req(json!({"resourceArn": arn, "tags": tags}))).await
}

async fn untag(ctx: &Ctx, arn: &str, keys: &[&str]) -> Result<Value, berth_model::ApiError> {
    tags::untag(ctx, req(json!({"resourceArn": arn, "tagKeys": keys}))).await
}

async fn listed(ctx: &Ctx, arn: &str) -> BTreeMap<String, String> {
    let out = ok(tags::list(ctx, req(json!({"resourceArn": arn}))).await);
    out["tags"]
        .as_array()
        .expect("tags")
        .iter()
        .map(|t| {
            let s = |f: &str| t[f].as_str().expect("a string").to_owned();
            (s("key"), s("value"))
        })
        .collect()
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// One resource of every taggable kind, by ARN: cluster, task definition, service, task,
/// container instance.
async fn every_kind(env: &Env) -> Vec<String> {
    cluster(&env.ctx, "c").await;
    let inst = agent(env, "c").await;
    let td = taskdef(&env.ctx, "web").await;
    service(&env.ctx, "c", "api", &td, 0).await;
    let task = run_task(&env.ctx, "c", &td).await;
    vec![
        cluster_arn("c"),
        td,
        service_arn("c", "api"),
        task["taskArn"].as_str().expect("an ARN").to_owned(),
        inst.instance_arn,
    ]
}

#[tokio::test]
async fn tag_untag_and_list_on_every_kind() {
    let env = env();
    for arn in every_kind(&env).await {
        assert_eq!(listed(&env.ctx, &arn).await, map(&[]), "{arn}");
        ok(tag(&env.ctx, &arn, &[("team", "web"), ("born", "yes")]).await);
        ok(tag(&env.ctx, &arn, &[("born", "again"), ("empty", "")]).await);
        assert_eq!(
            listed(&env.ctx, &arn).await,
            map(&[("team", "web"), ("born", "again"), ("empty", "")]),
            "{arn}"
        );
        ok(untag(&env.ctx, &arn, &["born", "not-there"]).await);
        assert_eq!(
            listed(&env.ctx, &arn).await,
            map(&[("team", "web"), ("empty", "")]),
            "{arn}"
        );
    }
}

#[tokio::test]
async fn tags_show_in_describe() {
    let env = env();
    cluster(&env.ctx, "c").await;
    ok(tag(&env.ctx, &cluster_arn("c"), &[("k", "v")]).await);
    let d = ok(berth_ops::ecs::clusters::describe(
        &env.ctx,
        req(json!({"clusters": ["c"], "include": ["TAGS"]})),
    )
    .await);
    assert_eq!(
        d["clusters"][0]["tags"],
        json!([{"key": "k", "value": "v"}])
    );
    taskdef(&env.ctx, "web").await;
    ok(tag(&env.ctx, &taskdef_arn("web", 1), &[("k", "v")]).await);
    let d = ok(berth_ops::ecs::taskdefs::describe(
        &env.ctx,
        req(json!({"taskDefinition": "web", "include": ["TAGS"]})),
    )
    .await);
    assert_eq!(d["tags"], json!([{"key": "k", "value": "v"}]));
}

#[tokio::test]
async fn fifty_tags_is_the_limit() {
    let env = env();
    cluster(&env.ctx, "c").await;
    let arn = cluster_arn("c");
    let keys: Vec<String> = (0..50).map(|i| format!("k{i}")).collect();
    let fifty: Vec<(&str, &str)> = keys.iter().map(|k| (k.as_str(), "v")).collect();
    ok(tag(&env.ctx, &arn, &fifty).await);
    ok(tag(
        &env.ctx,
        &arn,
        &[("k0", "overwriting is fine at the limit")],
    )
    .await);
    let e = code(tag(&env.ctx, &arn, &[("one-more", "v")]).await);
    assert_eq!(e, ErrorCode::LimitExceededException);
    assert_eq!(listed(&env.ctx, &arn).await.len(), 50);
}

#[tokio::test]
async fn invalid_tags_and_keys_change_nothing() {
    let env = env();
    cluster(&env.ctx, "c").await;
    let arn = cluster_arn("c");
    let long_key = "k".repeat(129);
    let long_value = "v".repeat(257);
    for bad in [
        vec![("aws:owner", "me")],
        vec![("AWS:Owner", "me")],
        vec![(long_key.as_str(), "v")],
        vec![("k", long_value.as_str())],
        vec![("bad#char", "v")],
    ] {
        let e = code(tag(&env.ctx, &arn, &bad).await);
        assert_eq!(e, ErrorCode::InvalidParameterException, "{bad:?}");
    }
    let e = code(untag(&env.ctx, &arn, &[long_key.as_str()]).await);
    assert_eq!(e, ErrorCode::InvalidParameterException);
    assert_eq!(listed(&env.ctx, &arn).await, map(&[]));
}

#[tokio::test]
async fn unknown_and_deleted_clusters_are_cluster_not_found() {
    let env = env();
    let ghost = cluster_arn("ghost");
    assert_eq!(
        code(tag(&env.ctx, &ghost, &[("k", "v")]).await),
        ErrorCode::ClusterNotFoundException
    );
    assert_eq!(
        code(untag(&env.ctx, &ghost, &["k"]).await),
        ErrorCode::ClusterNotFoundException
    );
    let e = code(tags::list(&env.ctx, req(json!({"resourceArn": ghost}))).await);
    assert_eq!(e, ErrorCode::ClusterNotFoundException);
    cluster(&env.ctx, "gone").await;
    ok(berth_ops::ecs::clusters::delete(&env.ctx, req(json!({"cluster": "gone"}))).await);
    let e = code(tag(&env.ctx, &cluster_arn("gone"), &[("k", "v")]).await);
    assert_eq!(e, ErrorCode::ClusterNotFoundException);
}

#[tokio::test]
async fn missing_resources_are_resource_not_found_but_invalid_to_list() {
    let env = env();
    cluster(&env.ctx, "c").await;
    taskdef(&env.ctx, "web").await;
    let missing = [
        taskdef_arn("web", 2),
        taskdef_arn("nofamily", 1),
        service_arn("c", "nope"),
        format!(
            "arn:aws:ecs:us-east-1:000000000000:task/c/{}",
            "0".repeat(32)
        ),
        format!(
            "arn:aws:ecs:us-east-1:000000000000:container-instance/c/{}",
            "0".repeat(32)
        ),
    ];
    for arn in &missing {
        assert_eq!(
            code(tag(&env.ctx, arn, &[("k", "v")]).await),
            ErrorCode::ResourceNotFoundException,
            "{arn}"
        );
        assert_eq!(
            code(untag(&env.ctx, arn, &["k"]).await),
            ErrorCode::ResourceNotFoundException,
            "{arn}"
        );
        let e = code(tags::list(&env.ctx, req(json!({"resourceArn": arn}))).await);
        assert_eq!(e, ErrorCode::InvalidParameterException, "{arn}");
    }
}

#[tokio::test]
async fn malformed_arns_are_invalid() {
    let env = env();
    for bad in [
        "not-an-arn".to_owned(),
        "arn:aws:s3:::bucket".to_owned(),
        cluster_arn(""),
        "arn:aws:ecs:us-east-1:000000000000:task-definition/web".to_owned(),
        "arn:aws:ecs:us-east-1:000000000000:task/no-id".to_owned(),
        // Ids and cluster names in ARNs follow the same rules as anywhere else.
        "arn:aws:ecs:us-east-1:000000000000:task/c/a b".to_owned(),
        "arn:aws:ecs:us-east-1:000000000000:container-instance/c/a:b".to_owned(),
        "arn:aws:ecs:us-east-1:000000000000:container-instance/c.x/ab".to_owned(),
        "arn:aws:ecs:us-east-1:000000000000:service/c.x/web".to_owned(),
    ] {
        let e = code(tag(&env.ctx, &bad, &[("k", "v")]).await);
        assert_eq!(e, ErrorCode::InvalidParameterException, "{bad}");
        let e = code(tags::list(&env.ctx, req(json!({"resourceArn": bad}))).await);
        assert_eq!(e, ErrorCode::InvalidParameterException, "{bad}");
    }
}

#[tokio::test]
async fn a_deregistered_instance_has_no_tags_to_change() {
    let env = env();
    cluster(&env.ctx, "c").await;
    let inst = agent(&env, "c").await;
    ok(berth_ops::ecs::instances::deregister(
        &env.ctx,
        req(json!({"cluster": "c", "containerInstance": inst.instance_arn})),
    )
    .await);
    let e = code(tag(&env.ctx, &inst.instance_arn, &[("k", "v")]).await);
    assert_eq!(e, ErrorCode::ResourceNotFoundException);
}

/// Regression: contention on one resource used to come back as a 500 (ServerException).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thirty_two_concurrent_tag_calls_on_one_cluster_all_succeed() {
    let env = env();
    cluster(&env.ctx, "hot").await;
    let arn = cluster_arn("hot");
    let calls = (0..32).map(|i| {
        let (ctx, arn) = (env.ctx(), arn.clone());
        tokio::spawn(async move {
            let k = format!("k{i}");
            tag(&ctx, &arn, &[(k.as_str(), "v")]).await
        })
    });
    for (i, r) in futures::future::join_all(calls)
        .await
        .into_iter()
        .enumerate()
    {
        let r = r.expect("the call's task ends");
        assert!(r.is_ok(), "call {i} failed: {r:?}");
    }
    let got = listed(&env.ctx, &arn).await;
    let want: BTreeMap<String, String> =
        (0..32).map(|i| (format!("k{i}"), "v".to_owned())).collect();
    assert_eq!(got, want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_tagging_loses_nothing_on_any_kind() {
    let env = env();
    let arns = every_kind(&env).await;
    let calls = arns.iter().flat_map(|arn| {
        (0..8).map(|i| {
            let (ctx, arn) = (env.ctx(), arn.clone());
            tokio::spawn(async move {
                let k = format!("k{i}");
                tag(&ctx, &arn, &[(k.as_str(), "v")]).await
            })
        })
    });
    for r in futures::future::join_all(calls.collect::<Vec<_>>()).await {
        ok(r.expect("the call's task ends"));
    }
    for arn in &arns {
        assert_eq!(listed(&env.ctx, arn).await.len(), 8, "{arn}");
    }
}
