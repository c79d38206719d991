//! CreateCluster, DescribeClusters, ListClusters, UpdateCluster, UpdateClusterSettings and
//! DeleteCluster against the in-memory store.

mod support;

use berth_model::ErrorCode;
use berth_ops::ecs::clusters;
use serde_json::json;
use support::{agent, cluster, cluster_arn, code, env, ok, req, service, strings, taskdef};

#[tokio::test]
async fn create_answers_an_active_cluster_with_its_arn() {
    let env = env();
    let c =
        ok(clusters::create(&env.ctx, req(json!({"clusterName": "web"}))).await)["cluster"].clone();
    assert_eq!(c["clusterName"], "web");
    assert_eq!(c["clusterArn"], cluster_arn("web"));
    assert_eq!(c["status"], "ACTIVE");
    assert_eq!(c["registeredContainerInstancesCount"], 0);
    assert_eq!(c["activeServicesCount"], 0);
}

#[tokio::test]
async fn create_without_a_name_is_the_default_cluster() {
    let env = env();
    let c = ok(clusters::create(&env.ctx, req(json!({}))).await);
    assert_eq!(c["cluster"]["clusterName"], "default");
}

#[tokio::test]
async fn create_is_idempotent_and_keeps_the_first_cluster() {
    let env = env();
    let tags = |v: &str| json!({"clusterName": "web", "tags": [{"key": "k", "value": v}]});
    ok(clusters::create(&env.ctx, req(tags("first"))).await);
    let again = ok(clusters::create(&env.ctx, req(tags("second"))).await);
    assert_eq!(
        again["cluster"]["tags"],
        json!([{"key": "k", "value": "first"}])
    );
    let all = ok(clusters::list(&env.ctx, req(json!({}))).await);
    assert_eq!(strings(&all["clusterArns"]), [cluster_arn("web")]);
}

#[tokio::test]
async fn concurrent_creates_of_one_cluster_all_succeed() {
    let env = env();
    let calls = (0..8).map(|_| {
        let ctx = env.ctx();
        tokio::spawn(
            async move { clusters::create(&ctx, req(json!({"clusterName": "race"}))).await },
        )
    });
    for c in futures::future::join_all(calls).await {
        let c = ok(c.expect("the task ends"));
        assert_eq!(c["cluster"]["status"], "ACTIVE");
    }
    let all = ok(clusters::list(&env.ctx, req(json!({}))).await);
    assert_eq!(strings(&all["clusterArns"]), [cluster_arn("race")]);
}

#[tokio::test]
async fn create_rejects_bad_names_tags_and_settings() {
    let env = env();
    for bad in [
        json!({"clusterName": "bad name"}),
        json!({"clusterName": "x".repeat(256)}),
        json!({"clusterName": "t", "tags": [{"key": "aws:owner", "value": "me"}]}),
        json!({"clusterName": "s", "settings": [{"name": "containerInsights", "value": "sometimes"}]}),
    ] {
        let e = code(clusters::create(&env.ctx, req(bad.clone())).await);
        assert_eq!(e, ErrorCode::InvalidParameterException, "{bad}");
    }
    let all = ok(clusters::list(&env.ctx, req(json!({}))).await);
    assert_eq!(all["clusterArns"], json!([]));
}

#[tokio::test]
async fn describe_by_name_and_arn_reports_missing_clusters() {
    let env = env();
    cluster(&env.ctx, "web").await;
    let out = ok(clusters::describe(
        &env.ctx,
        req(json!({"clusters": ["web", cluster_arn("web"), "ghost"]})),
    )
    .await);
    let found = out["clusters"].as_array().expect("clusters");
    assert_eq!(found.len(), 2);
    assert!(found.iter().all(|c| c["clusterArn"] == cluster_arn("web")));
    assert_eq!(
        out["failures"],
        json!([{"arn": cluster_arn("ghost"), "reason": "MISSING"}])
    );
}

#[tokio::test]
async fn describe_without_a_list_is_the_default_cluster() {
    let env = env();
    let out = ok(clusters::describe(&env.ctx, req(json!({}))).await);
    assert_eq!(out["failures"][0]["arn"], cluster_arn("default"));
    cluster(&env.ctx, "default").await;
    let out = ok(clusters::describe(&env.ctx, req(json!({}))).await);
    assert_eq!(out["clusters"][0]["clusterName"], "default");
}

#[tokio::test]
async fn describe_shows_optional_fields_only_when_included() {
    let env = env();
    ok(clusters::create(
        &env.ctx,
        req(
            json!({"clusterName": "rich", "tags": [{"key": "team", "value": "web"}],
                   "settings": [{"name": "containerInsights", "value": "enabled"}]}),
        ),
    )
    .await);
    let plain =
        ok(clusters::describe(&env.ctx, req(json!({"clusters": ["rich"], "include": []}))).await);
    assert!(plain["clusters"][0].get("tags").is_none(), "{plain}");
    let tagged = ok(clusters::describe(
        &env.ctx,
        req(json!({"clusters": ["rich"], "include": ["TAGS", "SETTINGS"]})),
    )
    .await);
    let c = &tagged["clusters"][0];
    assert_eq!(c["tags"], json!([{"key": "team", "value": "web"}]));
    assert_eq!(
        c["settings"],
        json!([{"name": "containerInsights", "value": "enabled"}])
    );
}

#[tokio::test]
async fn describe_rejects_unknown_includes_and_more_than_100_clusters() {
    let env = env();
    let e = code(clusters::describe(&env.ctx, req(json!({"include": ["EVERYTHING"]}))).await);
    assert_eq!(e, ErrorCode::InvalidParameterException);
    let many: Vec<String> = (0..101).map(|i| format!("c{i}")).collect();
    let e = code(clusters::describe(&env.ctx, req(json!({"clusters": many}))).await);
    assert_eq!(e, ErrorCode::InvalidParameterException);
}

#[tokio::test]
async fn list_pages_through_every_cluster_once() {
    let env = env();
    for i in 0..5 {
        cluster(&env.ctx, &format!("c{i}")).await;
    }
    let (mut seen, mut token) = (Vec::new(), None::<String>);
    loop {
        let out =
            ok(clusters::list(&env.ctx, req(json!({"maxResults": 2, "nextToken": token}))).await);
        let page = strings(&out["clusterArns"]);
        assert!(page.len() <= 2);
        seen.extend(page);
        match out["nextToken"].as_str() {
            Some(t) => token = Some(t.to_owned()),
            None => break,
        }
    }
    let want: Vec<String> = (0..5).map(|i| cluster_arn(&format!("c{i}"))).collect();
    assert_eq!(seen, want);
}

#[tokio::test]
async fn list_rejects_bad_page_sizes_and_tokens() {
    let env = env();
    for bad in [
        json!({"maxResults": 0}),
        json!({"maxResults": 101}),
        json!({"nextToken": "!!"}),
    ] {
        let e = code(clusters::list(&env.ctx, req(bad.clone())).await);
        assert_eq!(e, ErrorCode::InvalidParameterException, "{bad}");
    }
}

#[tokio::test]
async fn update_changes_settings_and_configuration() {
    let env = env();
    cluster(&env.ctx, "web").await;
    let conf = json!({"executeCommandConfiguration": {"logging": "DEFAULT"}});
    let c = ok(clusters::update(
        &env.ctx,
        req(json!({"cluster": "web", "configuration": conf,
                   "settings": [{"name": "containerInsights", "value": "enabled"}]})),
    )
    .await)["cluster"]
        .clone();
    assert_eq!(
        c["settings"],
        json!([{"name": "containerInsights", "value": "enabled"}])
    );
    let d = ok(clusters::describe(
        &env.ctx,
        req(json!({"clusters": ["web"], "include": ["CONFIGURATIONS"]})),
    )
    .await);
    assert_eq!(d["clusters"][0]["configuration"], conf);
    let e = code(
        clusters::update(
            &env.ctx,
            req(json!({"cluster": "ghost", "configuration": conf})),
        )
        .await,
    );
    assert_eq!(e, ErrorCode::ClusterNotFoundException);
}

#[tokio::test]
async fn update_settings_validates_and_needs_an_active_cluster() {
    let env = env();
    cluster(&env.ctx, "web").await;
    let set = |c: &str, v: &str| {
        req(json!({"cluster": c, "settings": [{"name": "containerInsights", "value": v}]}))
    };
    let c = ok(clusters::update_settings(&env.ctx, set(&cluster_arn("web"), "enabled")).await);
    assert_eq!(c["cluster"]["settings"][0]["value"], "enabled");
    let e = code(clusters::update_settings(&env.ctx, set("web", "sometimes")).await);
    assert_eq!(e, ErrorCode::InvalidParameterException);
    let e = code(clusters::update_settings(&env.ctx, set("ghost", "enabled")).await);
    assert_eq!(e, ErrorCode::ClusterNotFoundException);
}

#[tokio::test]
async fn delete_leaves_an_inactive_cluster_that_can_be_created_afresh() {
    let env = env();
    ok(clusters::create(
        &env.ctx,
        req(json!({"clusterName": "gone", "tags": [{"key": "a", "value": "1"}]})),
    )
    .await);
    let gone = ok(clusters::delete(&env.ctx, req(json!({"cluster": "gone"}))).await);
    assert_eq!(gone["cluster"]["status"], "INACTIVE");
    let d = ok(clusters::describe(&env.ctx, req(json!({"clusters": ["gone"]}))).await);
    assert_eq!(d["clusters"][0]["status"], "INACTIVE");
    assert_eq!(d["failures"], json!([]));
    let all = ok(clusters::list(&env.ctx, req(json!({}))).await);
    assert_eq!(all["clusterArns"], json!([]));
    for e in [
        code(clusters::delete(&env.ctx, req(json!({"cluster": "gone"}))).await),
        code(clusters::update(&env.ctx, req(json!({"cluster": "gone", "settings": []}))).await),
    ] {
        assert_eq!(e, ErrorCode::ClusterNotFoundException);
    }
    let back = ok(clusters::create(&env.ctx, req(json!({"clusterName": "gone"}))).await);
    assert_eq!(back["cluster"]["status"], "ACTIVE");
    let d = ok(clusters::describe(
        &env.ctx,
        req(json!({"clusters": ["gone"], "include": ["TAGS"]})),
    )
    .await);
    assert_eq!(
        d["clusters"][0]["tags"],
        json!([]),
        "a re-created cluster starts fresh"
    );
}

#[tokio::test]
async fn delete_of_a_missing_cluster_is_cluster_not_found() {
    let env = env();
    for ident in ["never".to_owned(), cluster_arn("never")] {
        let e = code(clusters::delete(&env.ctx, req(json!({"cluster": ident}))).await);
        assert_eq!(e, ErrorCode::ClusterNotFoundException);
    }
    let e = code(
        clusters::delete(
            &env.ctx,
            req(json!({"cluster": "arn:aws:ecs:us-east-1:0:service/a/b"})),
        )
        .await,
    );
    assert_eq!(e, ErrorCode::InvalidParameterException);
}

#[tokio::test]
async fn delete_refuses_a_cluster_with_instances() {
    let env = env();
    cluster(&env.ctx, "busy").await;
    agent(&env, "busy").await;
    let d = ok(clusters::describe(&env.ctx, req(json!({"clusters": ["busy"]}))).await);
    assert_eq!(d["clusters"][0]["registeredContainerInstancesCount"], 1);
    let e = code(clusters::delete(&env.ctx, req(json!({"cluster": "busy"}))).await);
    assert_eq!(e, ErrorCode::ClusterContainsContainerInstancesException);
}

#[tokio::test]
async fn delete_refuses_a_cluster_with_services_until_they_are_deleted() {
    let env = env();
    cluster(&env.ctx, "svc").await;
    let td = taskdef(&env.ctx, "web").await;
    service(&env.ctx, "svc", "api", &td, 0).await;
    let d = ok(clusters::describe(&env.ctx, req(json!({"clusters": ["svc"]}))).await);
    assert_eq!(d["clusters"][0]["activeServicesCount"], 1);
    let e = code(clusters::delete(&env.ctx, req(json!({"cluster": "svc"}))).await);
    assert_eq!(e, ErrorCode::ClusterContainsServicesException);
    // A deleted service still drains: the cluster waits for it.
    ok(berth_ops::ecs::services::delete(
        &env.ctx,
        req(json!({"cluster": "svc", "service": "api"})),
    )
    .await);
    let e = code(clusters::delete(&env.ctx, req(json!({"cluster": "svc"}))).await);
    assert_eq!(e, ErrorCode::ClusterContainsServicesException);
}

#[tokio::test]
async fn arns_use_the_region_of_the_request() {
    let env = env();
    let eu = env.ops.ctx("eu-west-1");
    let c = ok(clusters::create(&eu, req(json!({"clusterName": "web"}))).await);
    assert_eq!(
        c["cluster"]["clusterArn"],
        "arn:aws:ecs:eu-west-1:000000000000:cluster/web"
    );
}
