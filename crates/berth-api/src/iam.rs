//! The IAM API subset over the AWS Query protocol, signed for `iam`: the same form parser and
//! XML writer as ELBv2 ([`crate::elb`]'s `query`), IAM's namespace, and one typed operation
//! per action in [`berth_ops::iam`]. Every IAM action is itself authorized (`iam:<Action>`), so
//! a user with `ReadOnlyAccess` can read users but not make keys.

use axum::body::Body;
use axum::http::request::Parts;
use axum::response::Response;
use berth_model::{ApiError, ErrorCode};
use berth_ops::iam::{parse, policies, roles, users};
use berth_ops::Ctx;
use serde_json::Value;

use crate::authz::{Caller, Named};
use crate::elb::query;
use crate::ApiState;
use berth_ops::iam::Principal;

/// The service name IAM requests are signed for.
pub(crate) const SERVICE: &str = "iam";

const API_VERSION: &str = "2010-05-08";
const XMLNS: &str = "https://iam.amazonaws.com/doc/2010-05-08/";

/// Serves one IAM request (the edge saw a form body signed for `iam`).
pub(crate) async fn serve(state: ApiState, parts: Parts, body: Body, rid: String) -> Response {
    let result = async {
        let body = crate::edge::read_body(body, &parts.headers).await?;
        let caller = crate::edge::authenticate(&state, &parts, &body, SERVICE).await?;
        let q = query::parse_form(&body)?;
        if let Some(v) = q.version.as_deref().filter(|v| *v != API_VERSION) {
            return Err(ApiError::new(
                ErrorCode::Iam("InvalidInput"),
                format!("Version '{v}' is not supported; use {API_VERSION}"),
            ));
        }
        let params = default_user(&q.action, q.params, &caller);
        crate::authz::authorize(&state, &caller, SERVICE, &q.action, Named::Params(&params))
            .await?;
        let ctx = state.ops.ctx(caller.region);
        tracing::debug!(action = %q.action, request_id = %rid, "iam request");
        let out = dispatch(&ctx, &q.action, params).await?;
        Ok::<_, ApiError>((q.action, out))
    }
    .await;
    query::answer(result, &rid, XMLNS)
}

/// The actions on a user whose `UserName` defaults, in IAM, to the user who signs.
const CALLER_DEFAULTS: &[&str] = &[
    "GetUser",
    "CreateAccessKey",
    "ListAccessKeys",
    "UpdateAccessKey",
    "DeleteAccessKey",
];

/// `params` with `UserName` set to the signing user's where IAM defaults it so (the root key
/// is no IAM user: its requests must name one).
fn default_user(action: &str, mut params: Value, caller: &Caller) -> Value {
    if let (Some((Principal::User { name, .. }, _)), Some(m)) =
        (&caller.principal, params.as_object_mut())
    {
        if CALLER_DEFAULTS.contains(&action) && !m.contains_key("UserName") {
            m.insert("UserName".to_owned(), Value::String(name.clone()));
        }
    }
    params
}

/// Runs one IAM action on its parsed parameters; members an action does not honour are
/// refused by name.
async fn dispatch(ctx: &Ctx, action: &str, p: Value) -> Result<Value, ApiError> {
    const USER: &[&str] = &["UserName"];
    const KEY: &[&str] = &["UserName", "AccessKeyId"];
    const UPDATE_KEY: &[&str] = &["UserName", "AccessKeyId", "Status"];
    match action {
        "CreateUser" => {
            users::create_user(ctx, parse(action, p, users::CREATE_USER_MEMBERS)?).await
        }
        "GetUser" => users::get_user(ctx, parse(action, p, USER)?).await,
        "ListUsers" => users::list_users(ctx, parse(action, p, users::LIST_USERS_MEMBERS)?).await,
        "DeleteUser" => users::delete_user(ctx, parse(action, p, USER)?).await,
        "CreateAccessKey" => users::create_key(ctx, parse(action, p, USER)?).await,
        "ListAccessKeys" => {
            users::list_keys(ctx, parse(action, p, users::LIST_KEYS_MEMBERS)?).await
        }
        "UpdateAccessKey" => users::update_key(ctx, parse(action, p, UPDATE_KEY)?).await,
        "DeleteAccessKey" => users::delete_key(ctx, parse(action, p, KEY)?).await,
        "PutUserPolicy" => policies::put(ctx, parse(action, p, policies::PUT_MEMBERS)?).await,
        "GetUserPolicy" => policies::get(ctx, parse(action, p, policies::NAME_MEMBERS)?).await,
        "DeleteUserPolicy" => {
            policies::delete(ctx, parse(action, p, policies::NAME_MEMBERS)?).await
        }
        "ListUserPolicies" => policies::list(ctx, parse(action, p, policies::LIST_MEMBERS)?).await,
        "AttachUserPolicy" => policies::attach(ctx, parse(action, p, policies::ARN_MEMBERS)?).await,
        "DetachUserPolicy" => policies::detach(ctx, parse(action, p, policies::ARN_MEMBERS)?).await,
        "ListAttachedUserPolicies" => {
            policies::list_attached(ctx, parse(action, p, policies::LIST_MEMBERS)?).await
        }
        "CreateRole" => roles::create(ctx, parse(action, p, roles::CREATE_MEMBERS)?).await,
        "GetRole" => roles::get(ctx, parse(action, p, roles::NAME_MEMBERS)?).await,
        "ListRoles" => roles::list(ctx, parse(action, p, roles::LIST_ROLES_MEMBERS)?).await,
        "DeleteRole" => roles::delete(ctx, parse(action, p, roles::NAME_MEMBERS)?).await,
        "PutRolePolicy" => {
            roles::put_policy(ctx, parse(action, p, roles::PUT_POLICY_MEMBERS)?).await
        }
        "GetRolePolicy" => {
            roles::get_policy(ctx, parse(action, p, roles::POLICY_NAME_MEMBERS)?).await
        }
        "DeleteRolePolicy" => {
            roles::delete_policy(ctx, parse(action, p, roles::POLICY_NAME_MEMBERS)?).await
        }
        "ListRolePolicies" => {
            roles::list_policies(ctx, parse(action, p, roles::LIST_POLICIES_MEMBERS)?).await
        }
        "AttachRolePolicy" => roles::attach(ctx, parse(action, p, roles::ARN_MEMBERS)?).await,
        "DetachRolePolicy" => roles::detach(ctx, parse(action, p, roles::ARN_MEMBERS)?).await,
        "ListAttachedRolePolicies" => {
            roles::list_attached(ctx, parse(action, p, roles::LIST_ATTACHED_MEMBERS)?).await
        }
        _ => Err(ApiError::new(
            ErrorCode::ElbInvalidAction,
            format!("berth does not implement the IAM action {action:?}."),
        )),
    }
}
