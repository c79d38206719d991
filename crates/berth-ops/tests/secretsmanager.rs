//! Secrets Manager against the in-memory store: create, read by name / ARN / version /
//! stage, stages moving on PutSecretValue, update, describe, list, deletion with a recovery
//! window (reads refused meanwhile, gone after), restore, forced deletion, and the errors.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

mod support;

use berth_model::ErrorCode;
use berth_ops::secrets::secretsmanager as sm;
use serde_json::{json, Value};
use support::{code, env, ok, req};

const TOKEN_A: &str = "aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa";
const TOKEN_B: &str = "bbbbbbbb-bbbb-bbbb-bbbb-bbbbbbbbbbbb";

async fn create(ctx: &berth_ops::Ctx, body: Value) -> Value {
    ok(sm::create(ctx, req(body)).await)
}

async fn value(ctx: &berth_ops::Ctx, body: Value) -> Value {
    ok(sm::get_value(ctx, req(body)).await)
}

#[tokio::test]
async fn create_and_read_by_name_or_arn() {
    let env = env();
    let out = create(
        &env.ctx,
        json!({"Name": "prod/db", "SecretString": "{\"password\":\"pw\"}",
               "ClientRequestToken": TOKEN_A, "Description": "the db",
               "Tags": [{"Key": "team", "Value": "red"}]}),
    )
    .await;
    let arn = out["ARN"].as_str().unwrap().to_owned();
    let prefix = "arn:aws:secretsmanager:us-east-1:000000000000:secret:prod/db-";
    assert!(
        arn.starts_with(prefix) && arn.len() == prefix.len() + 6,
        "{arn}"
    );
    assert_eq!(out["VersionId"], TOKEN_A);
    for id in [arn.as_str(), "prod/db", &arn[..arn.len() - 7]] {
        let v = value(&env.ctx, json!({"SecretId": id})).await;
        assert_eq!(v["SecretString"], "{\"password\":\"pw\"}", "{id}");
        assert_eq!(v["VersionStages"], json!(["AWSCURRENT"]));
        assert_eq!(v["ARN"], arn);
    }
    // A retry of the same creation answers the same; another value is a conflict.
    let again = create(
        &env.ctx,
        json!({"Name": "prod/db", "SecretString": "{\"password\":\"pw\"}", "ClientRequestToken": TOKEN_A}),
    )
    .await;
    assert_eq!(again["ARN"], arn);
    assert_eq!(
        code(
            sm::create(
                &env.ctx,
                req(json!({"Name": "prod/db", "SecretString": "other"}))
            )
            .await
        ),
        ErrorCode::ResourceExistsException
    );
    let d = ok(sm::describe(&env.ctx, req(json!({"SecretId": "prod/db"}))).await);
    assert_eq!(d["Description"], "the db");
    assert_eq!(d["Tags"], json!([{"Key": "team", "Value": "red"}]));
    assert_eq!(d["VersionIdsToStages"], json!({TOKEN_A: ["AWSCURRENT"]}));
    assert!(d.get("SecretString").is_none());
    let wrong_suffix = format!("{}XXXXXX", &arn[..arn.len() - 6]);
    for id in ["nope", wrong_suffix.as_str()] {
        assert_eq!(
            code(sm::get_value(&env.ctx, req(json!({"SecretId": id}))).await),
            ErrorCode::ResourceNotFoundException,
            "{id}"
        );
    }
}

#[tokio::test]
async fn create_refuses_what_it_cannot_do() {
    let env = env();
    let cases = [
        json!({"Name": "a", "SecretString": "s", "SecretBinary": "YQ=="}),
        json!({"Name": "bad name!"}),
        json!({"Name": "a", "KmsKeyId": "alias/mine"}),
        json!({"Name": "a", "AddReplicaRegions": [{"Region": "eu-west-1"}]}),
        json!({"Name": "a", "ClientRequestToken": "short"}),
        json!({"Name": "a", "SecretBinary": "not base64!"}),
    ];
    for body in cases {
        assert_eq!(
            code(sm::create(&env.ctx, req(body.clone())).await),
            ErrorCode::InvalidParameterException,
            "{body}"
        );
    }
    // A secret without a value has no AWSCURRENT version to read.
    let out = create(&env.ctx, json!({"Name": "empty"})).await;
    assert!(out.get("VersionId").is_none() || out["VersionId"].is_null());
    assert_eq!(
        code(sm::get_value(&env.ctx, req(json!({"SecretId": "empty"}))).await),
        ErrorCode::ResourceNotFoundException
    );
    // Binary secrets round-trip as base64.
    create(&env.ctx, json!({"Name": "bin", "SecretBinary": "AAEC"})).await;
    assert_eq!(
        value(&env.ctx, json!({"SecretId": "bin"})).await["SecretBinary"],
        "AAEC"
    );
}

#[tokio::test]
async fn put_secret_value_moves_the_stages() {
    let env = env();
    create(
        &env.ctx,
        json!({"Name": "s", "SecretString": "one", "ClientRequestToken": TOKEN_A}),
    )
    .await;
    let out = ok(sm::put_value(
        &env.ctx,
        req(json!({"SecretId": "s", "SecretString": "two", "ClientRequestToken": TOKEN_B})),
    )
    .await);
    assert_eq!(out["VersionStages"], json!(["AWSCURRENT"]));
    assert_eq!(
        value(&env.ctx, json!({"SecretId": "s"})).await["SecretString"],
        "two"
    );
    let prev = value(
        &env.ctx,
        json!({"SecretId": "s", "VersionStage": "AWSPREVIOUS"}),
    )
    .await;
    assert_eq!(prev["SecretString"], "one");
    assert_eq!(prev["VersionId"], TOKEN_A);
    let by_id = value(&env.ctx, json!({"SecretId": "s", "VersionId": TOKEN_A})).await;
    assert_eq!(by_id["SecretString"], "one");
    // The same token and value again: a retry; another value under it: refused.
    ok(sm::put_value(
        &env.ctx,
        req(json!({"SecretId": "s", "SecretString": "two", "ClientRequestToken": TOKEN_B})),
    )
    .await);
    assert_eq!(
        code(
            sm::put_value(
                &env.ctx,
                req(
                    json!({"SecretId": "s", "SecretString": "three", "ClientRequestToken": TOKEN_B})
                )
            )
            .await
        ),
        ErrorCode::ResourceExistsException
    );
    // A custom stage leaves AWSCURRENT where it was.
    let staged = ok(sm::put_value(
        &env.ctx,
        req(json!({"SecretId": "s", "SecretString": "next", "VersionStages": ["NEXT"]})),
    )
    .await);
    assert_eq!(
        value(&env.ctx, json!({"SecretId": "s"})).await["SecretString"],
        "two"
    );
    assert_eq!(
        value(&env.ctx, json!({"SecretId": "s", "VersionStage": "NEXT"})).await["VersionId"],
        staged["VersionId"]
    );
    assert_eq!(
        code(
            sm::get_value(
                &env.ctx,
                req(json!({"SecretId": "s", "VersionId": TOKEN_A, "VersionStage": "AWSCURRENT"}))
            )
            .await
        ),
        ErrorCode::InvalidParameterException
    );
    assert_eq!(
        code(sm::put_value(&env.ctx, req(json!({"SecretId": "s"}))).await),
        ErrorCode::InvalidParameterException
    );
    assert_eq!(
        code(
            sm::put_value(
                &env.ctx,
                req(json!({"SecretId": "none", "SecretString": "x"}))
            )
            .await
        ),
        ErrorCode::ResourceNotFoundException
    );
}

#[tokio::test]
async fn update_changes_description_and_value() {
    let env = env();
    create(&env.ctx, json!({"Name": "u", "SecretString": "one"})).await;
    let out = ok(sm::update(
        &env.ctx,
        req(json!({"SecretId": "u", "Description": "new"})),
    )
    .await);
    assert!(out.get("VersionId").is_none() || out["VersionId"].is_null());
    assert_eq!(
        ok(sm::describe(&env.ctx, req(json!({"SecretId": "u"}))).await)["Description"],
        "new"
    );
    ok(sm::update(
        &env.ctx,
        req(json!({"SecretId": "u", "SecretString": "two"})),
    )
    .await);
    assert_eq!(
        value(&env.ctx, json!({"SecretId": "u"})).await["SecretString"],
        "two"
    );
    assert_eq!(
        value(
            &env.ctx,
            json!({"SecretId": "u", "VersionStage": "AWSPREVIOUS"})
        )
        .await["SecretString"],
        "one"
    );
}

#[tokio::test]
async fn deletion_waits_for_its_window_and_can_be_undone() {
    let env = env();
    create(&env.ctx, json!({"Name": "d", "SecretString": "v"})).await;
    let bad = [
        json!({"SecretId": "d", "RecoveryWindowInDays": 6}),
        json!({"SecretId": "d", "RecoveryWindowInDays": 31}),
        json!({"SecretId": "d", "RecoveryWindowInDays": 7, "ForceDeleteWithoutRecovery": true}),
    ];
    for body in bad {
        assert_eq!(
            code(sm::delete(&env.ctx, req(body.clone())).await),
            ErrorCode::InvalidParameterException,
            "{body}"
        );
    }
    let out = ok(sm::delete(
        &env.ctx,
        req(json!({"SecretId": "d", "RecoveryWindowInDays": 7})),
    )
    .await);
    assert_eq!(out["DeletionDate"], support::T0 + 7.0 * 86_400.0);
    // Scheduled: not readable, not writable, not listed unless asked; described with the date.
    assert_eq!(
        code(sm::get_value(&env.ctx, req(json!({"SecretId": "d"}))).await),
        ErrorCode::InvalidRequestException
    );
    assert_eq!(
        code(sm::put_value(&env.ctx, req(json!({"SecretId": "d", "SecretString": "x"}))).await),
        ErrorCode::InvalidRequestException
    );
    assert_eq!(
        code(sm::delete(&env.ctx, req(json!({"SecretId": "d"}))).await),
        ErrorCode::InvalidRequestException
    );
    assert_eq!(
        code(sm::create(&env.ctx, req(json!({"Name": "d"}))).await),
        ErrorCode::InvalidRequestException
    );
    assert_eq!(
        ok(sm::describe(&env.ctx, req(json!({"SecretId": "d"}))).await)["DeletedDate"],
        support::T0
    );
    let listed = ok(sm::list(&env.ctx, req(json!({}))).await);
    assert_eq!(listed["SecretList"], json!([]));
    let planned = ok(sm::list(&env.ctx, req(json!({"IncludePlannedDeletion": true}))).await);
    assert_eq!(planned["SecretList"].as_array().unwrap().len(), 1);
    // Restored: readable again.
    ok(sm::restore(&env.ctx, req(json!({"SecretId": "d"}))).await);
    assert_eq!(
        value(&env.ctx, json!({"SecretId": "d"})).await["SecretString"],
        "v"
    );
    // After the window the secret is gone, and its name free.
    ok(sm::delete(
        &env.ctx,
        req(json!({"SecretId": "d", "RecoveryWindowInDays": 7})),
    )
    .await);
    env.clock.advance(7.0 * 86_400.0 + 1.0);
    assert_eq!(
        code(sm::describe(&env.ctx, req(json!({"SecretId": "d"}))).await),
        ErrorCode::ResourceNotFoundException
    );
    create(&env.ctx, json!({"Name": "d", "SecretString": "new"})).await;
    // Forced: gone at once.
    ok(sm::delete(
        &env.ctx,
        req(json!({"SecretId": "d", "ForceDeleteWithoutRecovery": true})),
    )
    .await);
    assert_eq!(
        code(sm::get_value(&env.ctx, req(json!({"SecretId": "d"}))).await),
        ErrorCode::ResourceNotFoundException
    );
    assert_eq!(
        code(sm::restore(&env.ctx, req(json!({"SecretId": "d"}))).await),
        ErrorCode::ResourceNotFoundException
    );
}

#[tokio::test]
async fn list_filters_sorts_and_pages() {
    let env = env();
    for (i, n) in ["app/a", "app/b", "db/c"].iter().enumerate() {
        create(
            &env.ctx,
            json!({"Name": n, "SecretString": "v", "Description": format!("d{i}"),
            "Tags": [{"Key": "k", "Value": format!("v{i}")}]}),
        )
        .await;
        env.clock.advance(1.0);
    }
    let names = |v: &Value| -> Vec<String> {
        v["SecretList"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["Name"].as_str().unwrap().to_owned())
            .collect()
    };
    let l = |b: Value| {
        let ctx = env.ctx();
        async move { ok(sm::list(&ctx, req(b)).await) }
    };
    assert_eq!(names(&l(json!({})).await), ["app/a", "app/b", "db/c"]);
    assert_eq!(
        names(&l(json!({"SortOrder": "desc"})).await),
        ["db/c", "app/b", "app/a"]
    );
    assert_eq!(
        names(&l(json!({"Filters": [{"Key": "name", "Values": ["app/"]}]})).await),
        ["app/a", "app/b"]
    );
    assert_eq!(
        names(&l(json!({"Filters": [{"Key": "name", "Values": ["!app/"]}]})).await),
        ["db/c"]
    );
    assert_eq!(
        names(&l(json!({"Filters": [{"Key": "tag-value", "Values": ["v1"]}]})).await),
        ["app/b"]
    );
    assert_eq!(
        names(&l(json!({"Filters": [{"Key": "description", "Values": ["d2"]}]})).await),
        ["db/c"]
    );
    let p1 = l(json!({"MaxResults": 2})).await;
    assert_eq!(names(&p1).len(), 2);
    let p2 = l(json!({"MaxResults": 2, "NextToken": p1["NextToken"]})).await;
    assert_eq!(names(&p2), ["db/c"]);
    assert_eq!(
        p1["SecretList"][0]["SecretVersionsToStages"]
            .as_object()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        code(sm::list(&env.ctx, req(json!({"NextToken": "garbage!"}))).await),
        ErrorCode::InvalidNextTokenException
    );
    assert_eq!(
        code(
            sm::list(
                &env.ctx,
                req(json!({"Filters": [{"Key": "owning-service", "Values": ["x"]}]}))
            )
            .await
        ),
        ErrorCode::InvalidParameterException
    );
}

#[tokio::test]
async fn secret_values_are_sealed_in_the_store_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("berth.redb");
    let store: std::sync::Arc<dyn berth_store::Store> =
        std::sync::Arc::new(berth_store::RedbStore::open(&path).unwrap());
    let ops = berth_ops::Ops::new(
        store.clone(),
        std::sync::Arc::new(support::ManualClock::new(support::T0)),
        berth_ops::OpsConfig::default(),
    );
    let ctx = ops.ctx("us-east-1");
    let plain = "s3cr3t-value-in-plain-text";
    ok(sm::create(&ctx, req(json!({"Name": "x", "SecretString": plain}))).await);
    ok(sm::put_value(
        &ctx,
        req(json!({"SecretId": "x", "SecretString": format!("{plain}-2")})),
    )
    .await);
    assert_eq!(
        value(&ctx, json!({"SecretId": "x"})).await["SecretString"],
        format!("{plain}-2")
    );
    drop((ctx, ops, store));
    let bytes = std::fs::read(&path).unwrap();
    assert!(!bytes.windows(plain.len()).any(|w| w == plain.as_bytes()));
}
