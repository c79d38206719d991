//! RegisterTaskDefinition, DescribeTaskDefinition, ListTaskDefinitions,
//! ListTaskDefinitionFamilies, DeregisterTaskDefinition and DeleteTaskDefinitions against the
//! in-memory store.

mod support;

use berth_model::ErrorCode;
use berth_ops::ecs::taskdefs;
use serde_json::{json, Value};
use support::{code, env, ok, req, strings, taskdef, taskdef_arn, taskdef_body};

async fn deregister(ctx: &berth_ops::Ctx, ident: &str) -> Value {
    ok(taskdefs::deregister(ctx, req(json!({ "taskDefinition": ident }))).await)
}

async fn list(ctx: &berth_ops::Ctx, body: Value) -> Vec<String> {
    strings(&ok(taskdefs::list(ctx, req(body)).await)["taskDefinitionArns"])
}

async fn families(ctx: &berth_ops::Ctx, body: Value) -> Vec<String> {
    strings(&ok(taskdefs::list_families(ctx, req(body)).await)["families"])
}

#[tokio::test]
async fn revisions_count_up_per_family() {
    let env = env();
    for rev in 1..=3 {
        assert_eq!(taskdef(&env.ctx, "fam-a").await, taskdef_arn("fam-a", rev));
    }
    assert_eq!(taskdef(&env.ctx, "fam-b").await, taskdef_arn("fam-b", 1));
    assert_eq!(taskdef(&env.ctx, "fam-a").await, taskdef_arn("fam-a", 4));
}

#[tokio::test]
async fn register_answers_an_active_definition_with_its_tags() {
    let env = env();
    let body = json!({
        "family": "web", "tags": [{"key": "team", "value": "web"}],
        "containerDefinitions": [{"name": "app", "image": "busybox", "memory": 64}],
    });
    let out = ok(taskdefs::register(&env.ctx, body.to_string().as_bytes()).await);
    let td = &out["taskDefinition"];
    assert_eq!(td["status"], "ACTIVE");
    assert_eq!(td["revision"], 1);
    assert_eq!(td["family"], "web");
    assert_eq!(td["registeredBy"], "arn:aws:iam::000000000000:root");
    assert_eq!(out["tags"], json!([{"key": "team", "value": "web"}]));
}

#[tokio::test]
async fn register_rejects_bad_definitions() {
    let env = env();
    let e = code(taskdefs::register(&env.ctx, &taskdef_body("bad family", 64)).await);
    assert_eq!(e, ErrorCode::ClientException);
    let e = code(taskdefs::register(&env.ctx, b"{not json").await);
    assert_eq!(e, ErrorCode::SerializationException);
    let huge = vec![b' '; berth_model::MAX_TASKDEF_BYTES + 1];
    let e = code(taskdefs::register(&env.ctx, &huge).await);
    assert_eq!(e, ErrorCode::ClientException);
    let tags: Vec<Value> = (0..51)
        .map(|i| json!({"key": format!("k{i}"), "value": "v"}))
        .collect();
    let body = json!({"family": "t", "tags": tags,
        "containerDefinitions": [{"name": "app", "image": "busybox", "memory": 64}]});
    let e = code(taskdefs::register(&env.ctx, body.to_string().as_bytes()).await);
    assert_eq!(e, ErrorCode::InvalidParameterException);
    assert_eq!(list(&env.ctx, json!({})).await, Vec::<String>::new());
}

#[tokio::test]
async fn concurrent_registrations_get_distinct_dense_revisions() {
    let env = env();
    let calls = (0..20).map(|_| {
        let ctx = env.ctx();
        tokio::spawn(async move { taskdef(&ctx, "burst").await })
    });
    let mut arns: Vec<String> = futures::future::join_all(calls)
        .await
        .into_iter()
        .map(|r| r.expect("the task ends"))
        .collect();
    arns.sort_by_key(|a| a.rsplit(':').next().and_then(|r| r.parse::<u32>().ok()));
    let want: Vec<String> = (1..=20).map(|r| taskdef_arn("burst", r)).collect();
    assert_eq!(arns, want);
}

#[tokio::test]
async fn describe_a_family_is_its_latest_active_revision() {
    let env = env();
    for _ in 0..3 {
        taskdef(&env.ctx, "web").await;
    }
    deregister(&env.ctx, "web:3").await;
    let d = ok(taskdefs::describe(&env.ctx, req(json!({"taskDefinition": "web"}))).await);
    assert_eq!(d["taskDefinition"]["revision"], 2);
    // An exact revision is found whatever its status, by name or ARN.
    let d = ok(taskdefs::describe(&env.ctx, req(json!({"taskDefinition": "web:3"}))).await);
    assert_eq!(d["taskDefinition"]["status"], "INACTIVE");
    let d = ok(taskdefs::describe(
        &env.ctx,
        req(json!({"taskDefinition": taskdef_arn("web", 1)})),
    )
    .await);
    assert_eq!(d["taskDefinition"]["revision"], 1);
    assert!(d.get("tags").is_none());
}

#[tokio::test]
async fn describe_shows_tags_when_asked_and_rejects_other_includes() {
    let env = env();
    let body = json!({"family": "web", "tags": [{"key": "k", "value": "v"}],
        "containerDefinitions": [{"name": "app", "image": "busybox", "memory": 64}]});
    ok(taskdefs::register(&env.ctx, body.to_string().as_bytes()).await);
    let d = ok(taskdefs::describe(
        &env.ctx,
        req(json!({"taskDefinition": "web", "include": ["TAGS"]})),
    )
    .await);
    assert_eq!(d["tags"], json!([{"key": "k", "value": "v"}]));
    let e = code(
        taskdefs::describe(
            &env.ctx,
            req(json!({"taskDefinition": "web", "include": ["ALL"]})),
        )
        .await,
    );
    assert_eq!(e, ErrorCode::InvalidParameterException);
}

#[tokio::test]
async fn describe_of_a_missing_definition_is_a_client_error() {
    let env = env();
    taskdef(&env.ctx, "web").await;
    for missing in ["web:2", "nothing", "nothing:1"] {
        let e = code(taskdefs::describe(&env.ctx, req(json!({"taskDefinition": missing}))).await);
        assert_eq!(e, ErrorCode::ClientException, "{missing}");
    }
    // Every revision deregistered: the family has nothing to describe.
    deregister(&env.ctx, "web:1").await;
    let e = code(taskdefs::describe(&env.ctx, req(json!({"taskDefinition": "web"}))).await);
    assert_eq!(e, ErrorCode::ClientException);
}

#[tokio::test]
async fn list_filters_by_family_and_status_and_sorts() {
    let env = env();
    for f in ["web", "web", "web-2", "api"] {
        taskdef(&env.ctx, f).await;
    }
    deregister(&env.ctx, "web:1").await;
    let all = list(&env.ctx, json!({})).await;
    let want: Vec<String> = [("api", 1), ("web", 2), ("web-2", 1)]
        .iter()
        .map(|(f, r)| taskdef_arn(f, *r))
        .collect();
    assert_eq!(all, want, "by family name, then revision");
    assert_eq!(
        list(&env.ctx, json!({"familyPrefix": "web"})).await,
        [taskdef_arn("web", 2)]
    );
    assert_eq!(
        list(&env.ctx, json!({"status": "INACTIVE"})).await,
        [taskdef_arn("web", 1)]
    );
    let desc = list(&env.ctx, json!({"sort": "DESC"})).await;
    assert_eq!(desc, want.into_iter().rev().collect::<Vec<_>>());
    for bad in [
        json!({"sort": "UP"}),
        json!({"status": "GONE"}),
        json!({"maxResults": 0}),
    ] {
        let e = code(taskdefs::list(&env.ctx, req(bad.clone())).await);
        assert_eq!(e, ErrorCode::InvalidParameterException, "{bad}");
    }
}

#[tokio::test]
async fn list_pages_in_both_directions() {
    let env = env();
    for _ in 0..7 {
        taskdef(&env.ctx, "many").await;
    }
    for sort in ["ASC", "DESC"] {
        let (mut seen, mut token) = (Vec::new(), None::<String>);
        loop {
            let out = ok(taskdefs::list(
                &env.ctx,
                req(json!({"sort": sort, "maxResults": 3, "nextToken": token})),
            )
            .await);
            seen.extend(strings(&out["taskDefinitionArns"]));
            match out["nextToken"].as_str() {
                Some(t) => token = Some(t.to_owned()),
                None => break,
            }
        }
        let mut want: Vec<String> = (1..=7).map(|r| taskdef_arn("many", r)).collect();
        if sort == "DESC" {
            want.reverse();
        }
        assert_eq!(seen, want, "{sort}");
    }
}

#[tokio::test]
async fn list_families_by_status() {
    let env = env();
    taskdef(&env.ctx, "lf-active").await;
    taskdef(&env.ctx, "lf-mixed").await;
    taskdef(&env.ctx, "lf-mixed").await;
    deregister(&env.ctx, "lf-mixed:1").await;
    taskdef(&env.ctx, "lf-inactive").await;
    deregister(&env.ctx, "lf-inactive:1").await;
    let all = ["lf-active", "lf-inactive", "lf-mixed"];
    assert_eq!(families(&env.ctx, json!({})).await, all);
    assert_eq!(families(&env.ctx, json!({"status": "ALL"})).await, all);
    assert_eq!(
        families(&env.ctx, json!({"status": "ACTIVE"})).await,
        ["lf-active", "lf-mixed"]
    );
    assert_eq!(
        families(&env.ctx, json!({"status": "INACTIVE"})).await,
        ["lf-inactive"]
    );
    assert_eq!(
        families(&env.ctx, json!({"familyPrefix": "lf-a"})).await,
        ["lf-active"]
    );
    let e = code(taskdefs::list_families(&env.ctx, req(json!({"status": "SOME"}))).await);
    assert_eq!(e, ErrorCode::InvalidParameterException);
}

#[tokio::test]
async fn deregister_makes_a_revision_inactive_once() {
    let env = env();
    taskdef(&env.ctx, "web").await;
    taskdef(&env.ctx, "web").await;
    let td = deregister(&env.ctx, "web:2").await["taskDefinition"].clone();
    assert_eq!(td["status"], "INACTIVE");
    assert_eq!(td["revision"], 2);
    assert!(td["deregisteredAt"].is_number(), "{td}");
    // Again, by ARN: nothing changes.
    env.clock.advance(5.0);
    let again = deregister(&env.ctx, &taskdef_arn("web", 2)).await["taskDefinition"].clone();
    assert_eq!(again["deregisteredAt"], td["deregisteredAt"]);
    for bad in ["web", "web:9"] {
        let e = code(taskdefs::deregister(&env.ctx, req(json!({"taskDefinition": bad}))).await);
        assert_eq!(e, ErrorCode::ClientException, "{bad}");
    }
}

#[tokio::test]
async fn delete_takes_only_inactive_revisions() {
    let env = env();
    for _ in 0..3 {
        taskdef(&env.ctx, "del").await;
    }
    deregister(&env.ctx, "del:1").await;
    deregister(&env.ctx, "del:2").await;
    let out = ok(taskdefs::delete(
        &env.ctx,
        req(json!({"taskDefinitions": ["del:1", taskdef_arn("del", 2), "del:3", "del:77", "del"]})),
    )
    .await);
    let done = out["taskDefinitions"].as_array().expect("deleted");
    assert_eq!(done.len(), 2);
    assert!(done.iter().all(|t| t["status"] == "DELETE_IN_PROGRESS"));
    let failed: Vec<&str> = out["failures"]
        .as_array()
        .expect("failures")
        .iter()
        .map(|f| f["arn"].as_str().expect("an arn"))
        .collect();
    assert_eq!(failed, ["del:3", "del:77", "del"]);
    assert_eq!(
        list(&env.ctx, json!({"status": "INACTIVE"})).await,
        Vec::<String>::new()
    );
    assert_eq!(
        list(&env.ctx, json!({"status": "DELETE_IN_PROGRESS"})).await,
        [taskdef_arn("del", 1), taskdef_arn("del", 2)]
    );
    // Deleting again answers the same.
    let again = ok(taskdefs::delete(&env.ctx, req(json!({"taskDefinitions": ["del:1"]}))).await);
    assert_eq!(again["taskDefinitions"][0]["status"], "DELETE_IN_PROGRESS");
}

#[tokio::test]
async fn delete_takes_one_to_ten_definitions() {
    let env = env();
    let many: Vec<String> = (1..=11).map(|i| format!("x:{i}")).collect();
    for body in [
        json!({"taskDefinitions": many}),
        json!({"taskDefinitions": []}),
    ] {
        let e = code(taskdefs::delete(&env.ctx, req(body)).await);
        assert_eq!(e, ErrorCode::InvalidParameterException);
    }
}

#[tokio::test]
async fn revision_numbers_are_never_reused() {
    let env = env();
    taskdef(&env.ctx, "reuse").await;
    taskdef(&env.ctx, "reuse").await;
    deregister(&env.ctx, "reuse:2").await;
    assert_eq!(taskdef(&env.ctx, "reuse").await, taskdef_arn("reuse", 3));
    deregister(&env.ctx, "reuse:3").await;
    ok(taskdefs::delete(
        &env.ctx,
        req(json!({"taskDefinitions": ["reuse:2", "reuse:3"]})),
    )
    .await);
    assert_eq!(taskdef(&env.ctx, "reuse").await, taskdef_arn("reuse", 4));
}
