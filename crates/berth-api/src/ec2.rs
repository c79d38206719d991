//! The EC2 API subset (VPCs, subnets, security groups) over EC2's own query protocol.
//!
//! EC2 differs from the Query protocol ELBv2 speaks in three ways, all handled here: lists
//! are flattened with bare indexes (`SubnetId.1`, `Filter.1.Value.2`, no `member`), answers
//! are `<ActionResponse>` with a `<requestId>` and lowerCamel elements (no `...Result`
//! wrapper), lists in answers are `<item>`s, and errors are
//! `<Response><Errors><Error>...</Errors><RequestID>`.

use axum::body::Body;
use axum::http::{request::Parts, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use berth_model::{ApiError, ErrorCode};
use berth_ops::ec2::{parse, security_groups as sg, vpcs};
use berth_ops::Ctx;
use serde_json::Value;

use crate::authz::Named;
use crate::elb::query;
use crate::ApiState;

/// The service name EC2 requests are signed for.
pub(crate) const SERVICE: &str = "ec2";

/// The EC2 API version berth speaks.
const API_VERSION: &str = "2016-11-15";

const XMLNS: &str = "http://ec2.amazonaws.com/doc/2016-11-15/";

/// EC2's form keys with bare list indexes (`A.1.B`) rewritten to the `member` form the shared
/// Query parser reads (`A.member.1.B`).
fn to_member_form(body: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(body);
    let pairs: Vec<String> = text
        .split('&')
        .map(|pair| {
            let (k, v) = pair
                .split_once('=')
                .map_or((pair, None), |(k, v)| (k, Some(v)));
            let key: Vec<String> = k
                .split('.')
                .enumerate()
                .flat_map(|(i, seg)| {
                    let index = i > 0 && !seg.is_empty() && seg.bytes().all(|b| b.is_ascii_digit());
                    index
                        .then(|| "member".to_owned())
                        .into_iter()
                        .chain(std::iter::once(seg.to_owned()))
                })
                .collect();
            match v {
                Some(v) => format!("{}={v}", key.join(".")),
                None => key.join("."),
            }
        })
        .collect();
    pairs.join("&").into_bytes()
}

/// EC2's answer code for an error raised by shared code (the parser, authentication).
fn ec2_code(e: ApiError) -> ApiError {
    let code = match e.code {
        ErrorCode::Ec2(_) => return e,
        ErrorCode::ElbValidationError
        | ErrorCode::SerializationException
        | ErrorCode::InvalidParameterException
        | ErrorCode::ClientException => "InvalidParameterValue",
        ErrorCode::InvalidSignatureException => "AuthFailure",
        ErrorCode::UnrecognizedClientException => "AuthFailure",
        ErrorCode::MissingAuthenticationTokenException => "MissingAuthenticationToken",
        ErrorCode::IncompleteSignatureException => "IncompleteSignature",
        ErrorCode::RequestEntityTooLarge | ErrorCode::ThrottlingException => "RequestLimitExceeded",
        ErrorCode::ServerException => "InternalError",
        // EC2's own words for an IAM refusal.
        ErrorCode::AccessDeniedException => {
            return ApiError::new(
                ErrorCode::Ec2("UnauthorizedOperation"),
                format!(
                    "You are not authorized to perform this operation. {}",
                    e.message
                ),
            )
        }
        _ => return e,
    };
    ApiError::new(ErrorCode::Ec2(code), e.message)
}

/// Serves one EC2 request (the edge has seen a form body signed for `ec2`).
pub(crate) async fn serve(state: ApiState, parts: Parts, body: Body, rid: String) -> Response {
    let result = async {
        let body = crate::edge::read_body(body, &parts.headers).await?;
        let caller = crate::edge::authenticate(&state, &parts, &body, SERVICE).await?;
        let q = query::parse_form(&to_member_form(&body))?;
        if let Some(v) = q.version.as_deref().filter(|v| *v != API_VERSION) {
            return Err(ApiError::new(
                ErrorCode::Ec2("InvalidParameterValue"),
                format!("Version '{v}' is not supported; use {API_VERSION}"),
            ));
        }
        crate::authz::authorize(
            &state,
            &caller,
            SERVICE,
            &q.action,
            Named::Params(&q.params),
        )
        .await?;
        let ctx = state.ops.ctx(caller.region);
        tracing::debug!(action = %q.action, request_id = %rid, "ec2 request");
        let out = dispatch(&ctx, &q.action, q.params).await?;
        Ok::<_, ApiError>((q.action, out))
    }
    .await
    .map_err(ec2_code);
    let (status, xml) = match result {
        Ok((action, v)) => (StatusCode::OK, response_xml(&action, &v, &rid)),
        Err(e) => {
            if e.code == ErrorCode::Ec2("InternalError") {
                tracing::error!(request_id = %rid, message = %e.message, "server error");
            }
            let status = match e.code.as_str() {
                "InternalError" => StatusCode::INTERNAL_SERVER_ERROR,
                "AuthFailure"
                | "MissingAuthenticationToken"
                | "IncompleteSignature"
                | "UnauthorizedOperation" => StatusCode::FORBIDDEN,
                "RequestLimitExceeded" => StatusCode::PAYLOAD_TOO_LARGE,
                _ => StatusCode::BAD_REQUEST,
            };
            (status, error_xml(&e, &rid))
        }
    };
    let mut resp = (status, xml).into_response();
    let h = resp.headers_mut();
    h.insert(
        "content-type",
        HeaderValue::from_static("text/xml;charset=UTF-8"),
    );
    if let Ok(v) = HeaderValue::from_str(&rid) {
        h.insert("x-amzn-requestid", v);
    }
    resp
}

/// Runs one EC2 action on its parsed parameters.
pub(crate) async fn dispatch(ctx: &Ctx, action: &str, p: Value) -> Result<Value, ApiError> {
    match action {
        "CreateVpc" => vpcs::create_vpc(ctx, parse(p)?).await,
        "DescribeVpcs" => vpcs::describe_vpcs(ctx, parse(p)?).await,
        "DeleteVpc" => vpcs::delete_vpc(ctx, parse(p)?).await,
        "CreateSubnet" => vpcs::create_subnet(ctx, parse(p)?).await,
        "DescribeSubnets" => vpcs::describe_subnets(ctx, parse(p)?).await,
        "DeleteSubnet" => vpcs::delete_subnet(ctx, parse(p)?).await,
        "CreateSecurityGroup" => sg::create(ctx, parse(p)?).await,
        "DescribeSecurityGroups" => sg::describe(ctx, parse(p)?).await,
        "AuthorizeSecurityGroupIngress" => sg::authorize(ctx, parse(p)?).await,
        "RevokeSecurityGroupIngress" => sg::revoke(ctx, parse(p)?).await,
        "DeleteSecurityGroup" => sg::delete(ctx, parse(p)?).await,
        "AuthorizeSecurityGroupEgress" | "RevokeSecurityGroupEgress" => Err(ApiError::new(
            ErrorCode::Ec2("UnsupportedOperation"),
            "berth does not model egress rules: every task may send anywhere.",
        )),
        _ => Err(ApiError::new(
            ErrorCode::Ec2("InvalidAction"),
            format!("The action {action} is not valid for this web service."),
        )),
    }
}

/// Writes `v`'s members as child elements: objects by name, arrays as `<item>`s.
fn write_children(v: &Value, out: &mut String) {
    match v {
        Value::Null => {}
        Value::Object(m) => {
            for (k, x) in m {
                write_element(k, x, out);
            }
        }
        Value::Array(a) => {
            for x in a {
                write_element("item", x, out);
            }
        }
        Value::String(s) => query::escape(s, out),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&n.to_string()),
    }
}

fn write_element(name: &str, v: &Value, out: &mut String) {
    if v.is_null() {
        return;
    }
    out.push('<');
    out.push_str(name);
    out.push('>');
    write_children(v, out);
    out.push_str("</");
    out.push_str(name);
    out.push('>');
}

/// A successful answer: `<XResponse xmlns=...><requestId>..</requestId>...</XResponse>`.
fn response_xml(action: &str, result: &Value, request_id: &str) -> String {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    out.push_str(&format!("<{action}Response xmlns=\"{XMLNS}\"><requestId>"));
    query::escape(request_id, &mut out);
    out.push_str("</requestId>");
    write_children(result, &mut out);
    out.push_str(&format!("</{action}Response>"));
    out
}

/// An error answer, in EC2's `<Response><Errors>` shape.
fn error_xml(e: &ApiError, request_id: &str) -> String {
    let mut out =
        String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>");
    query::escape(e.code.as_str(), &mut out);
    out.push_str("</Code><Message>");
    query::escape(&e.message, &mut out);
    out.push_str("</Message></Error></Errors><RequestID>");
    query::escape(request_id, &mut out);
    out.push_str("</RequestID></Response>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn flattened_lists_parse() {
        let body =
            b"Action=DescribeSubnets&Version=2016-11-15&SubnetId.1=subnet-a&SubnetId.2=subnet-b\
            &Filter.1.Name=vpc-id&Filter.1.Value.1=vpc-1&Filter.1.Value.2=vpc-2";
        let q = query::parse_form(&to_member_form(body)).unwrap();
        assert_eq!(q.action, "DescribeSubnets");
        assert_eq!(
            q.params,
            json!({"SubnetId": ["subnet-a", "subnet-b"],
                   "Filter": [{"Name": "vpc-id", "Value": ["vpc-1", "vpc-2"]}]})
        );
        let q = query::parse_form(&to_member_form(
            b"Action=AuthorizeSecurityGroupIngress&GroupId=sg-1&IpPermissions.1.IpProtocol=tcp\
              &IpPermissions.1.FromPort=80&IpPermissions.1.IpRanges.1.CidrIp=10.0.0.0%2F8",
        ))
        .unwrap();
        assert_eq!(
            q.params["IpPermissions"][0]["IpRanges"][0]["CidrIp"],
            "10.0.0.0/8"
        );
    }

    #[test]
    fn answers_and_errors_are_ec2_shaped() {
        let x = response_xml(
            "DescribeVpcs",
            &json!({"vpcSet": [{"vpcId": "vpc-1", "isDefault": true}], "nextToken": null}),
            "r1",
        );
        assert!(x.contains("<DescribeVpcsResponse xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\"><requestId>r1</requestId><vpcSet><item><isDefault>true</isDefault><vpcId>vpc-1</vpcId></item></vpcSet></DescribeVpcsResponse>"), "{x}");
        let e = error_xml(
            &ApiError::new(ErrorCode::Ec2("InvalidSubnetID.NotFound"), "no <such>"),
            "r2",
        );
        assert!(e.contains("<Response><Errors><Error><Code>InvalidSubnetID.NotFound</Code><Message>no &lt;such&gt;</Message></Error></Errors><RequestID>r2</RequestID></Response>"), "{e}");
        assert_eq!(
            ec2_code(ApiError::new(ErrorCode::ElbValidationError, "x"))
                .code
                .as_str(),
            "InvalidParameterValue"
        );
    }
}
