//! SSM Parameter Store against the in-memory store: versions, overwrite, SecureString sealed
//! at rest, selectors, paths, filters, labels, history, deletes and their errors.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

mod support;

use berth_model::ErrorCode;
use berth_ops::secrets::ssm;
use serde_json::{json, Value};
use support::{code, env, ok, req, T0};

async fn put(ctx: &berth_ops::Ctx, body: Value) -> Value {
    ok(ssm::put(ctx, req(body)).await)
}

#[tokio::test]
async fn put_creates_then_overwrite_adds_versions() {
    let env = env();
    let out = put(
        &env.ctx,
        json!({"Name": "/app/url", "Value": "v1", "Type": "String"}),
    )
    .await;
    assert_eq!(out, json!({"Version": 1, "Tier": "Standard"}));
    let again = ssm::put(
        &env.ctx,
        req(json!({"Name": "/app/url", "Value": "v2", "Type": "String"})),
    )
    .await;
    assert_eq!(code(again), ErrorCode::ParameterAlreadyExists);
    let out = put(
        &env.ctx,
        json!({"Name": "/app/url", "Value": "v2", "Overwrite": true}),
    )
    .await;
    assert_eq!(out["Version"], 2);
    let got = ok(ssm::get(&env.ctx, req(json!({"Name": "/app/url"}))).await);
    let p = &got["Parameter"];
    assert_eq!(p["Value"], "v2");
    assert_eq!(p["Type"], "String", "an overwrite keeps the type");
    assert_eq!(p["Version"], 2);
    assert_eq!(
        p["ARN"],
        "arn:aws:ssm:us-east-1:000000000000:parameter/app/url"
    );
    assert_eq!(p["DataType"], "text");
    assert_eq!(p["LastModifiedDate"], T0);
    // Selectors: a version and a label.
    let v1 = ok(ssm::get(&env.ctx, req(json!({"Name": "/app/url:1"}))).await);
    assert_eq!(v1["Parameter"]["Value"], "v1");
    assert_eq!(v1["Parameter"]["Selector"], ":1");
    assert_eq!(
        code(ssm::get(&env.ctx, req(json!({"Name": "/app/url:9"}))).await),
        ErrorCode::ParameterVersionNotFound
    );
    assert_eq!(
        code(ssm::get(&env.ctx, req(json!({"Name": "/nope"}))).await),
        ErrorCode::ParameterNotFound
    );
}

#[tokio::test]
async fn put_checks_what_it_cannot_honour() {
    let env = env();
    let cases = [
        (
            json!({"Name": "x", "Value": "v"}),
            ErrorCode::ValidationException,
        ),
        (
            json!({"Name": "x", "Value": "v", "Type": "Blob"}),
            ErrorCode::UnsupportedParameterType,
        ),
        (
            json!({"Name": "a/b", "Value": "v", "Type": "String"}),
            ErrorCode::ValidationException,
        ),
        (
            json!({"Name": "x", "Value": "", "Type": "String"}),
            ErrorCode::ValidationException,
        ),
        (
            json!({"Name": "x", "Value": "v", "Type": "String", "Tier": "Advanced"}),
            ErrorCode::ValidationException,
        ),
        (
            json!({"Name": "x", "Value": "v", "Type": "String", "Policies": "[{}]"}),
            ErrorCode::ValidationException,
        ),
        (
            json!({"Name": "x", "Value": "v", "Type": "String", "DataType": "aws:ec2:image"}),
            ErrorCode::ValidationException,
        ),
        (
            json!({"Name": "x", "Value": "v", "Type": "SecureString", "KeyId": "alias/mine"}),
            ErrorCode::InvalidKeyId,
        ),
        (
            json!({"Name": "x", "Value": "v", "Type": "String", "KeyId": "alias/aws/ssm"}),
            ErrorCode::ValidationException,
        ),
        (
            json!({"Name": "x", "Value": "v", "Type": "String", "AllowedPattern": "("}),
            ErrorCode::InvalidAllowedPatternException,
        ),
        (
            json!({"Name": "x", "Value": "abc", "Type": "String", "AllowedPattern": "^\\d+$"}),
            ErrorCode::ParameterPatternMismatchException,
        ),
        (
            json!({"Name": "x", "Value": "v", "Type": "String", "Overwrite": true, "Tags": [{"Key": "k", "Value": "v"}]}),
            ErrorCode::ValidationException,
        ),
        (
            json!({"Name": "/l".repeat(16), "Value": "v", "Type": "String"}),
            ErrorCode::HierarchyLevelLimitExceededException,
        ),
    ];
    for (body, want) in cases {
        assert_eq!(
            code(ssm::put(&env.ctx, req(body.clone())).await),
            want,
            "{body}"
        );
    }
    // A value that matches its pattern is stored; the pattern shows in DescribeParameters.
    put(
        &env.ctx,
        json!({"Name": "port", "Value": "8080", "Type": "String",
        "AllowedPattern": "\\d+", "Description": "the port"}),
    )
    .await;
    let d = ok(ssm::describe(&env.ctx, req(json!({}))).await);
    assert_eq!(d["Parameters"][0]["AllowedPattern"], "\\d+");
    assert_eq!(d["Parameters"][0]["Description"], "the port");
    assert!(d["Parameters"][0].get("Value").is_none(), "metadata only");
}

#[tokio::test]
async fn secure_strings_are_shown_only_with_decryption_and_sealed_in_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("berth.redb");
    let store: std::sync::Arc<dyn berth_store::Store> =
        std::sync::Arc::new(berth_store::RedbStore::open(&path).unwrap());
    let ops = berth_ops::Ops::new(
        store.clone(),
        std::sync::Arc::new(support::ManualClock::new(T0)),
        berth_ops::OpsConfig::default(),
    );
    let ctx = ops.ctx("us-east-1");
    let plain = "pa55w0rd-in-plain-text";
    ok(ssm::put(
        &ctx,
        req(json!({"Name": "/db/pw", "Value": plain, "Type": "SecureString"})),
    )
    .await);
    let hidden = ok(ssm::get(&ctx, req(json!({"Name": "/db/pw"}))).await);
    assert_ne!(hidden["Parameter"]["Value"], plain);
    let shown = ok(ssm::get(&ctx, req(json!({"Name": "/db/pw", "WithDecryption": true}))).await);
    assert_eq!(shown["Parameter"]["Value"], plain);
    assert_eq!(shown["Parameter"]["Type"], "SecureString");
    let d = ok(ssm::describe(&ctx, req(json!({}))).await);
    assert_eq!(d["Parameters"][0]["KeyId"], "alias/aws/ssm");
    drop((ctx, ops, store));
    let bytes = std::fs::read(&path).unwrap();
    assert!(
        !bytes.windows(plain.len()).any(|w| w == plain.as_bytes()),
        "the store file holds the SecureString in plain text"
    );
}

#[tokio::test]
async fn get_parameters_lists_the_invalid_ones() {
    let env = env();
    put(
        &env.ctx,
        json!({"Name": "a", "Value": "1", "Type": "String"}),
    )
    .await;
    put(
        &env.ctx,
        json!({"Name": "b", "Value": "x,y", "Type": "StringList"}),
    )
    .await;
    let out = ok(ssm::get_many(
        &env.ctx,
        req(json!({"Names": ["a", "b", "missing", "a:7"]})),
    )
    .await);
    let names: Vec<&str> = out["Parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["Name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a", "b"]);
    assert_eq!(out["Parameters"][1]["Type"], "StringList");
    assert_eq!(out["InvalidParameters"], json!(["missing", "a:7"]));
    let eleven: Vec<String> = (0..11).map(|i| format!("p{i}")).collect();
    assert_eq!(
        code(ssm::get_many(&env.ctx, req(json!({"Names": eleven}))).await),
        ErrorCode::ValidationException
    );
}

#[tokio::test]
async fn get_by_path_one_level_or_recursive_with_paging() {
    let env = env();
    for n in ["/app/a", "/app/b", "/app/db/user", "/app/db/pw", "/other/x"] {
        put(&env.ctx, json!({"Name": n, "Value": "v", "Type": "String"})).await;
    }
    let names = |v: &Value| -> Vec<String> {
        v["Parameters"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["Name"].as_str().unwrap().to_owned())
            .collect()
    };
    let one = ok(ssm::get_by_path(&env.ctx, req(json!({"Path": "/app"}))).await);
    assert_eq!(names(&one), ["/app/a", "/app/b"]);
    let all = ok(ssm::get_by_path(&env.ctx, req(json!({"Path": "/app", "Recursive": true}))).await);
    assert_eq!(names(&all).len(), 4);
    let p1 = ok(ssm::get_by_path(
        &env.ctx,
        req(json!({"Path": "/app/", "Recursive": true, "MaxResults": 3})),
    )
    .await);
    assert_eq!(names(&p1).len(), 3);
    let token = p1["NextToken"].as_str().unwrap();
    let p2 = ok(ssm::get_by_path(
        &env.ctx,
        req(json!({"Path": "/app/", "Recursive": true, "MaxResults": 3, "NextToken": token})),
    )
    .await);
    assert_eq!(names(&p2).len(), 1);
    assert!(p2.get("NextToken").is_none());
    let bad = [
        (json!({"Path": "app"}), ErrorCode::ValidationException),
        (
            json!({"Path": "/app", "MaxResults": 11}),
            ErrorCode::ValidationException,
        ),
        (
            json!({"Path": "/app", "NextToken": "garbage!"}),
            ErrorCode::InvalidNextToken,
        ),
        (
            json!({"Path": "/app", "ParameterFilters": [{"Key": "Name", "Values": ["x"]}]}),
            ErrorCode::InvalidFilterKey,
        ),
    ];
    for (body, want) in bad {
        assert_eq!(
            code(ssm::get_by_path(&env.ctx, req(body.clone())).await),
            want,
            "{body}"
        );
    }
    let typed = ok(ssm::get_by_path(
        &env.ctx,
        req(json!({"Path": "/", "Recursive": true,
            "ParameterFilters": [{"Key": "Type", "Values": ["SecureString"]}]})),
    )
    .await);
    assert_eq!(names(&typed).len(), 0);
}

#[tokio::test]
async fn describe_filters_by_name_path_type_and_tag() {
    let env = env();
    put(
        &env.ctx,
        json!({"Name": "/svc/a", "Value": "v", "Type": "String",
        "Tags": [{"Key": "team", "Value": "red"}]}),
    )
    .await;
    put(
        &env.ctx,
        json!({"Name": "/svc/b", "Value": "v", "Type": "SecureString"}),
    )
    .await;
    put(
        &env.ctx,
        json!({"Name": "top", "Value": "v", "Type": "String"}),
    )
    .await;
    let count = |v: Value| v["Parameters"].as_array().unwrap().len();
    let d = |f: Value| {
        let ctx = env.ctx();
        async move { ok(ssm::describe(&ctx, req(f)).await) }
    };
    assert_eq!(count(d(json!({})).await), 3);
    assert_eq!(
        count(d(json!({"Filters": [{"Key": "Name", "Values": ["/svc"]}]})).await),
        2
    );
    assert_eq!(count(d(json!({"ParameterFilters": [{"Key": "Name", "Option": "Equals", "Values": ["top"]}]})).await), 1);
    assert_eq!(count(d(json!({"ParameterFilters": [{"Key": "Path", "Option": "OneLevel", "Values": ["/svc"]}]})).await), 2);
    assert_eq!(
        count(d(json!({"ParameterFilters": [{"Key": "Type", "Values": ["SecureString"]}]})).await),
        1
    );
    assert_eq!(
        count(d(json!({"ParameterFilters": [{"Key": "tag:team", "Values": ["red"]}]})).await),
        1
    );
    let page = d(json!({"MaxResults": 2})).await;
    assert_eq!(count(page.clone()), 2);
    assert!(page["NextToken"].is_string());
    let bad = [
        (
            json!({"ParameterFilters": [{"Key": "Colour", "Values": ["x"]}]}),
            ErrorCode::InvalidFilterKey,
        ),
        (
            json!({"ParameterFilters": [{"Key": "Path", "Option": "Equals", "Values": ["/"]}]}),
            ErrorCode::InvalidFilterOption,
        ),
        (
            json!({"Filters": [{"Key": "Name", "Values": ["a"]}], "ParameterFilters": [{"Key": "Name", "Values": ["a"]}]}),
            ErrorCode::ValidationException,
        ),
        (json!({"MaxResults": 51}), ErrorCode::ValidationException),
    ];
    for (body, want) in bad {
        assert_eq!(
            code(ssm::describe(&env.ctx, req(body.clone())).await),
            want,
            "{body}"
        );
    }
    let tags = ok(ssm::list_tags(
        &env.ctx,
        req(json!({"ResourceType": "Parameter", "ResourceId": "/svc/a"})),
    )
    .await);
    assert_eq!(tags["TagList"], json!([{"Key": "team", "Value": "red"}]));
}

#[tokio::test]
async fn labels_move_between_versions_and_history_shows_them() {
    let env = env();
    put(
        &env.ctx,
        json!({"Name": "cfg", "Value": "one", "Type": "String"}),
    )
    .await;
    put(
        &env.ctx,
        json!({"Name": "cfg", "Value": "two", "Overwrite": true}),
    )
    .await;
    let out = ok(ssm::label(
        &env.ctx,
        req(json!({"Name": "cfg", "ParameterVersion": 1, "Labels": ["prod", "1bad"]})),
    )
    .await);
    assert_eq!(
        out,
        json!({"InvalidLabels": ["1bad"], "ParameterVersion": 1})
    );
    let prod = ok(ssm::get(&env.ctx, req(json!({"Name": "cfg:prod"}))).await);
    assert_eq!(prod["Parameter"]["Value"], "one");
    // Without a version: the latest; the label moves.
    ok(ssm::label(&env.ctx, req(json!({"Name": "cfg", "Labels": ["prod"]}))).await);
    let prod = ok(ssm::get(&env.ctx, req(json!({"Name": "cfg:prod"}))).await);
    assert_eq!(prod["Parameter"]["Value"], "two");
    let h = ok(ssm::history(&env.ctx, req(json!({"Name": "cfg"}))).await);
    assert_eq!(h["Parameters"][0]["Value"], "one");
    assert_eq!(h["Parameters"][0]["Labels"], json!([]));
    assert_eq!(h["Parameters"][1]["Labels"], json!(["prod"]));
    assert_eq!(h["Parameters"][1]["Version"], 2);
    let page = ok(ssm::history(&env.ctx, req(json!({"Name": "cfg", "MaxResults": 1}))).await);
    assert_eq!(page["Parameters"].as_array().unwrap().len(), 1);
    assert!(page["NextToken"].is_string());
    let errs = [
        (
            ssm::label(
                &env.ctx,
                req(json!({"Name": "cfg", "ParameterVersion": 5, "Labels": ["x"]})),
            )
            .await,
            ErrorCode::ParameterVersionNotFound,
        ),
        (
            ssm::label(&env.ctx, req(json!({"Name": "none", "Labels": ["x"]}))).await,
            ErrorCode::ParameterNotFound,
        ),
    ];
    for (r, want) in errs {
        assert_eq!(code(r), want);
    }
    // "prod" and nine more: ten on version 2, the most a version may carry.
    let nine: Vec<String> = (0..9).map(|i| format!("l{i}")).collect();
    ok(ssm::label(&env.ctx, req(json!({"Name": "cfg", "Labels": nine}))).await);
    assert_eq!(
        code(
            ssm::label(
                &env.ctx,
                req(json!({"Name": "cfg", "Labels": ["eleventh"]}))
            )
            .await
        ),
        ErrorCode::ParameterVersionLabelLimitExceeded
    );
    assert_eq!(
        code(ssm::history(&env.ctx, req(json!({"Name": "none"}))).await),
        ErrorCode::ParameterNotFound
    );
}

#[tokio::test]
async fn a_hundred_versions_at_most() {
    let env = env();
    put(
        &env.ctx,
        json!({"Name": "n", "Value": "0", "Type": "String"}),
    )
    .await;
    for i in 1..100 {
        put(
            &env.ctx,
            json!({"Name": "n", "Value": i.to_string(), "Overwrite": true}),
        )
        .await;
    }
    // The 101st drops version 1 ...
    put(
        &env.ctx,
        json!({"Name": "n", "Value": "100", "Overwrite": true}),
    )
    .await;
    assert_eq!(
        code(ssm::get(&env.ctx, req(json!({"Name": "n:1"}))).await),
        ErrorCode::ParameterVersionNotFound
    );
    // ... unless the oldest is labelled.
    ok(ssm::label(
        &env.ctx,
        req(json!({"Name": "n", "ParameterVersion": 2, "Labels": ["keep"]})),
    )
    .await);
    assert_eq!(
        code(
            ssm::put(
                &env.ctx,
                req(json!({"Name": "n", "Value": "x", "Overwrite": true}))
            )
            .await
        ),
        ErrorCode::ParameterMaxVersionLimitExceeded
    );
}

#[tokio::test]
async fn deletes_one_or_many() {
    let env = env();
    put(
        &env.ctx,
        json!({"Name": "a", "Value": "1", "Type": "String"}),
    )
    .await;
    put(
        &env.ctx,
        json!({"Name": "b", "Value": "1", "Type": "String"}),
    )
    .await;
    put(
        &env.ctx,
        json!({"Name": "c", "Value": "1", "Type": "String"}),
    )
    .await;
    ok(ssm::delete(&env.ctx, req(json!({"Name": "a"}))).await);
    assert_eq!(
        code(ssm::delete(&env.ctx, req(json!({"Name": "a"}))).await),
        ErrorCode::ParameterNotFound
    );
    let out = ok(ssm::delete_many(&env.ctx, req(json!({"Names": ["b", "c", "zz"]}))).await);
    assert_eq!(
        out,
        json!({"DeletedParameters": ["b", "c"], "InvalidParameters": ["zz"]})
    );
    let d = ok(ssm::describe(&env.ctx, req(json!({}))).await);
    assert_eq!(d["Parameters"], json!([]));
    // A deleted name can be created again, from version 1.
    let again = put(
        &env.ctx,
        json!({"Name": "a", "Value": "2", "Type": "String"}),
    )
    .await;
    assert_eq!(again["Version"], 1);
}
