//! `berth user create|ls|rm` and `berth key create|ls|rotate|delete`: thin wrappers over the
//! IAM API (CreateUser, ListUsers, DeleteUser, CreateAccessKey, ListAccessKeys,
//! UpdateAccessKey, DeleteAccessKey), signed like any other call.

use anyhow::Result;
use serde_json::Value;

use super::{print, s, Common};
use crate::client::Client;

#[derive(Debug, clap::Args)]
pub struct UserArgs {
    #[command(subcommand)]
    cmd: UserCmd,
    #[command(flatten)]
    common: Common,
}

#[derive(Debug, clap::Subcommand)]
enum UserCmd {
    /// Create a user (with no policies: it may do nothing until given some).
    Create { name: String },
    /// List users.
    Ls,
    /// Delete a user (its keys and policies must be gone first, as IAM requires).
    Rm { name: String },
}

#[derive(Debug, clap::Args)]
pub struct KeyArgs {
    #[command(subcommand)]
    cmd: KeyCmd,
    #[command(flatten)]
    common: Common,
}

#[derive(Debug, clap::Subcommand)]
enum KeyCmd {
    /// Create an access key for USER and print it (the secret is shown only here).
    Create { user: String },
    /// List USER's access keys.
    Ls { user: String },
    /// Create a new key for USER, then delete the user's other keys; prints the new key.
    Rotate { user: String },
    /// Delete one of USER's access keys.
    Delete { user: String, access_key_id: String },
}

fn p(k: &str, v: &str) -> (String, String) {
    (k.to_owned(), v.to_owned())
}

/// A Query list as `xml_to_json` reads it: an array, or `""` when empty.
fn list(v: &Value) -> Vec<Value> {
    v.as_array().cloned().unwrap_or_default()
}

pub async fn user(a: UserArgs) -> Result<()> {
    let c = Client::from_env(&a.common.client)?;
    match a.cmd {
        UserCmd::Create { name } => {
            let out = c.iam("CreateUser", &[p("UserName", &name)]).await?;
            let u = &out["User"];
            let rows = vec![vec![s(&u["UserName"]), s(&u["Arn"]), s(&u["CreateDate"])]];
            print(a.common.output, u, &["NAME", "ARN", "CREATED"], rows);
        }
        UserCmd::Ls => {
            let mut users = Vec::new();
            let mut marker: Option<String> = None;
            loop {
                let mut params = Vec::new();
                if let Some(m) = &marker {
                    params.push(p("Marker", m));
                }
                let page = c.iam("ListUsers", &params).await?;
                users.extend(list(&page["Users"]));
                marker = Some(s(&page["Marker"])).filter(|m| !m.is_empty());
                if s(&page["IsTruncated"]) != "true" || marker.is_none() {
                    break;
                }
            }
            let rows = users
                .iter()
                .map(|u| vec![s(&u["UserName"]), s(&u["Arn"]), s(&u["CreateDate"])])
                .collect();
            print(
                a.common.output,
                &Value::Array(users),
                &["NAME", "ARN", "CREATED"],
                rows,
            );
        }
        UserCmd::Rm { name } => {
            c.iam("DeleteUser", &[p("UserName", &name)]).await?;
        }
    }
    Ok(())
}

async fn create_key(c: &Client, user: &str) -> Result<Value> {
    let out = c.iam("CreateAccessKey", &[p("UserName", user)]).await?;
    Ok(out["AccessKey"].clone())
}

fn print_key(common: &Common, k: &Value) {
    let rows = vec![vec![
        s(&k["UserName"]),
        s(&k["AccessKeyId"]),
        s(&k["SecretAccessKey"]),
    ]];
    print(
        common.output,
        k,
        &["USER", "ACCESS KEY ID", "SECRET ACCESS KEY"],
        rows,
    );
}

async fn keys_of(c: &Client, user: &str) -> Result<Vec<Value>> {
    let out = c.iam("ListAccessKeys", &[p("UserName", user)]).await?;
    Ok(list(&out["AccessKeyMetadata"]))
}

pub async fn key(a: KeyArgs) -> Result<()> {
    let c = Client::from_env(&a.common.client)?;
    match a.cmd {
        KeyCmd::Create { user } => print_key(&a.common, &create_key(&c, &user).await?),
        KeyCmd::Ls { user } => {
            let keys = keys_of(&c, &user).await?;
            let rows = keys
                .iter()
                .map(|k| vec![s(&k["AccessKeyId"]), s(&k["Status"]), s(&k["CreateDate"])])
                .collect();
            print(
                a.common.output,
                &Value::Array(keys),
                &["ACCESS KEY ID", "STATUS", "CREATED"],
                rows,
            );
        }
        KeyCmd::Rotate { user } => {
            let old = keys_of(&c, &user).await?;
            let new = create_key(&c, &user).await?;
            for k in old {
                let id = s(&k["AccessKeyId"]);
                let params = [p("UserName", &user), p("AccessKeyId", &id)];
                c.iam("DeleteAccessKey", &params).await?;
            }
            print_key(&a.common, &new);
        }
        KeyCmd::Delete {
            user,
            access_key_id,
        } => {
            let params = [p("UserName", &user), p("AccessKeyId", &access_key_id)];
            c.iam("DeleteAccessKey", &params).await?;
        }
    }
    Ok(())
}
