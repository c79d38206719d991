//! IAM against the in-memory store: a key's secret is sealed at rest and opens for the edge,
//! an Inactive key is reported as such, policies reach `iam_policies`, and tags for
//! `aws:ResourceTag` come from the cluster record.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

mod support;

use berth_model::ErrorCode;
use berth_ops::iam::{parse, policies, users, Principal};
use serde_json::json;
use support::{code, env, ok};

fn p<T: serde::de::DeserializeOwned>(v: serde_json::Value, members: &[&str]) -> T {
    parse("X", v, members).unwrap()
}

#[tokio::test]
async fn keys_sign_for_their_user_until_deactivated() {
    let env = env();
    ok(users::create_user(&env.ctx, p(json!({"UserName": "alice"}), &["UserName"])).await);
    let again = users::create_user(&env.ctx, p(json!({"UserName": "ALICE"}), &["UserName"])).await;
    assert_eq!(code(again), ErrorCode::Iam("EntityAlreadyExists"));
    let key = ok(users::create_key(&env.ctx, p(json!({"UserName": "alice"}), &["UserName"])).await);
    let akid = key["AccessKey"]["AccessKeyId"].as_str().unwrap().to_owned();
    let secret = key["AccessKey"]["SecretAccessKey"]
        .as_str()
        .unwrap()
        .to_owned();

    // The store holds no clear secret.
    let raw = env.store.list("iam/keys/").await.unwrap().0;
    assert!(!String::from_utf8_lossy(&raw[0].value).contains(&secret));

    let signer = env.ops.iam_signer(&akid).await.unwrap().unwrap();
    assert_eq!(signer.secret, secret);
    assert!(signer.active);
    let Principal::User { name, arn } = &signer.principal else {
        panic!("a user's key: {:?}", signer.principal);
    };
    assert_eq!(
        (name.as_str(), arn.as_str()),
        ("alice", "arn:aws:iam::000000000000:user/alice")
    );
    assert!(env.ops.iam_signer("AKIAUNKNOWN").await.unwrap().is_none());

    let m = &["UserName", "AccessKeyId", "Status"];
    let off = p(
        json!({"UserName": "alice", "AccessKeyId": akid, "Status": "Inactive"}),
        m,
    );
    ok(users::update_key(&env.ctx, off).await);
    assert!(!env.ops.iam_signer(&akid).await.unwrap().unwrap().active);

    assert!(env
        .ops
        .iam_policies(&signer.principal)
        .await
        .unwrap()
        .is_empty());
    let doc = r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"ecs:List*","Resource":"*"}}"#;
    let put = p(
        json!({"UserName": "alice", "PolicyName": "l", "PolicyDocument": doc}),
        policies::PUT_MEMBERS,
    );
    ok(policies::put(&env.ctx, put).await);
    let arn = json!({"UserName": "alice", "PolicyArn": "arn:aws:iam::aws:policy/ReadOnlyAccess"});
    ok(policies::attach(&env.ctx, p(arn, policies::ARN_MEMBERS)).await);
    assert_eq!(
        env.ops.iam_policies(&signer.principal).await.unwrap().len(),
        2
    );

    let unknown =
        parse::<users::UserNameRequest>("CreateUser", json!({"Tags": "x"}), &["UserName"]);
    assert_eq!(unknown.err().unwrap().code, ErrorCode::Iam("InvalidInput"));
}
