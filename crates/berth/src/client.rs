//! A small SigV4-signing client for berth's own API, used by the CLI. It reads the same
//! credentials, region and endpoint as the AWS CLI does.
//!
//! The endpoint may be several URLs (`--endpoint-url http://a:9400,http://b:9400`, or the
//! same list in `AWS_ENDPOINT_URL_ECS`): the replicas of one control plane. A call goes to
//! the one in use and on to the next while they do not answer or answer 5xx, by the agents'
//! rule ([`berth_agent::failover`]); each attempt is signed for the host it goes to.

use std::time::SystemTime;

use anyhow::{anyhow, bail, Context, Result};
use serde_json::Value;

use berth_agent::failover::{fails_over_status, Endpoints};

use crate::{creds, env};

pub struct Client {
    http: reqwest::Client,
    endpoints: Endpoints,
    region: String,
    creds: berth_sigv4::Credentials,
}

/// Endpoint and credentials as given on the command line (each may be absent).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ClientOpts {
    /// API endpoint, or several separated by commas (replicas, failed over between)
    /// (default: $AWS_ENDPOINT_URL_ECS, $AWS_ENDPOINT_URL, http://127.0.0.1:9400).
    #[arg(long, visible_alias = "endpoint-url", global = true)]
    pub endpoint: Option<String>,
    /// Region to sign for (default: $AWS_DEFAULT_REGION, $AWS_REGION, us-east-1).
    #[arg(long, global = true)]
    pub region: Option<String>,
}

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// The HTTP client: for an `https://` endpoint it trusts `$AWS_CA_BUNDLE` (what `berth up`
/// exports with `--tls`, and what the aws CLI and SDKs read), and no built-in roots.
fn http_client() -> Result<reqwest::Client> {
    let mut b = reqwest::Client::builder();
    if let Some(path) = var(env::AWS_CA_BUNDLE) {
        let pem = std::fs::read(&path).with_context(|| format!("reading AWS_CA_BUNDLE {path}"))?;
        for c in reqwest::Certificate::from_pem_bundle(&pem)
            .with_context(|| format!("AWS_CA_BUNDLE {path}"))?
        {
            b = b.add_root_certificate(c);
        }
    }
    Ok(b.build()?)
}

impl Client {
    pub fn from_env(opts: &ClientOpts) -> Result<Self> {
        let endpoint = opts
            .endpoint
            .clone()
            .or_else(|| var(env::AWS_ENDPOINT_URL_ECS))
            .or_else(|| var(env::AWS_ENDPOINT_URL))
            .unwrap_or_else(|| format!("http://{}", env::DEFAULT_LISTEN));
        let region = opts
            .region
            .clone()
            .or_else(|| var(env::AWS_DEFAULT_REGION))
            .or_else(|| var(env::AWS_REGION))
            .unwrap_or_else(|| env::DEFAULT_REGION.to_owned());
        let creds = match (var(env::AWS_ACCESS_KEY_ID), var(env::AWS_SECRET_ACCESS_KEY)) {
            (Some(id), Some(secret)) => berth_sigv4::Credentials {
                access_key_id: id,
                secret_access_key: secret,
            },
            _ => {
                // Convenience on the machine that runs `berth up`: use its stored root key.
                let dir = crate::server::default_data_dir();
                let k = creds::stored(&dir).ok_or_else(|| {
                    anyhow!(
                        "no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (berth up prints them)"
                    )
                })?;
                berth_sigv4::Credentials {
                    access_key_id: k.access_key_id,
                    secret_access_key: k.secret_access_key,
                }
            }
        };
        Ok(Self {
            http: http_client()?,
            endpoints: Endpoints::parse(&endpoint),
            region,
            creds,
        })
    }

    /// A client of `endpoint` signing with `creds` (`berth sim`, which starts its own server
    /// with keys it chose).
    pub fn new(
        endpoint: &str,
        region: &str,
        creds: berth_sigv4::Credentials,
        http: reqwest::Client,
    ) -> Self {
        Self {
            http,
            endpoints: Endpoints::parse(endpoint),
            region: region.to_owned(),
            creds,
        }
    }

    /// The region requests are signed for.
    pub fn region(&self) -> &str {
        &self.region
    }

    /// Calls one ECS action and returns its JSON answer, or the ECS error as an error.
    pub async fn ecs(&self, action: &str, body: &Value) -> Result<Value> {
        self.call(
            &format!("AmazonEC2ContainerServiceV20141113.{action}"),
            body,
        )
        .await
    }

    /// Calls one of berth's own actions (`BerthV1.*`).
    pub async fn berth(&self, action: &str, body: &Value) -> Result<Value> {
        self.call(&format!("BerthV1.{action}"), body).await
    }

    /// Calls one ELBv2 action over the AWS Query protocol: `params` are the form's
    /// `Name.member.N.Field` pairs; the XML answer's `...Result` comes back as JSON (see
    /// [`xml_to_json`]). Errors come back as `Code: Message`.
    pub async fn elb(&self, action: &str, params: &[(String, String)]) -> Result<Value> {
        self.query("elasticloadbalancing", "2015-12-01", action, params)
            .await
    }

    /// Calls one EC2 Auto Scaling action (berth's host groups) over the Query protocol.
    pub async fn asg(&self, action: &str, params: &[(String, String)]) -> Result<Value> {
        self.query("autoscaling", "2011-01-01", action, params)
            .await
    }

    /// Calls one IAM action over the Query protocol (users, access keys, policies).
    pub async fn iam(&self, action: &str, params: &[(String, String)]) -> Result<Value> {
        self.query("iam", "2010-05-08", action, params).await
    }

    /// One Query-protocol call to `service` at API `version`.
    async fn query(
        &self,
        service: &str,
        version: &str,
        action: &str,
        params: &[(String, String)],
    ) -> Result<Value> {
        let mut form = format!("Action={}&Version={version}", form_encode(action));
        for (k, v) in params {
            form.push_str(&format!("&{}={}", form_encode(k), form_encode(v)));
        }
        let (status, text) = self
            .post(
                service,
                "application/x-www-form-urlencoded; charset=utf-8",
                None,
                form.into_bytes(),
            )
            .await?;
        let doc = xml_to_json(&text).unwrap_or(Value::Null);
        if !status.is_success() {
            let e = &doc["Error"];
            bail!(
                "{}: {}",
                super::cli::s(&e["Code"]),
                super::cli::s(&e["Message"])
            );
        }
        Ok(doc[format!("{action}Result")].clone())
    }

    /// Calls one Application Auto Scaling action (`AnyScaleFrontendService.*`).
    pub async fn autoscaling(&self, action: &str, body: &Value) -> Result<Value> {
        self.call_signed(
            &format!("AnyScaleFrontendService.{action}"),
            "application-autoscaling",
            body,
        )
        .await
    }

    async fn call(&self, target: &str, body: &Value) -> Result<Value> {
        self.call_signed(target, "ecs", body).await
    }

    /// One AWS JSON 1.1 call to `target`, signed for `service`.
    async fn call_signed(&self, target: &str, service: &str, body: &Value) -> Result<Value> {
        let body = serde_json::to_vec(body)?;
        let (status, text) = self
            .post(service, "application/x-amz-json-1.1", Some(target), body)
            .await?;
        let v: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        if !status.is_success() {
            let code = v["__type"].as_str().unwrap_or("Error");
            let msg = v["message"].as_str().unwrap_or("");
            bail!("{code}: {msg}");
        }
        Ok(v)
    }

    /// POSTs `body` to `/` of the endpoint in use, signed for `service` (with `x-amz-target`
    /// when given), and on to the next endpoints while they do not answer or answer 5xx.
    /// Returns the status and body of the first answer that counts, or the last failure.
    async fn post(
        &self,
        service: &str,
        content_type: &str,
        target: Option<&str>,
        body: Vec<u8>,
    ) -> Result<(reqwest::StatusCode, String)> {
        let order = self.endpoints.order();
        let mut k = 0;
        loop {
            let (i, endpoint) = order[k];
            let result = self
                .post_to(endpoint, service, content_type, target, &body)
                .await;
            let failed = match &result {
                Ok((status, _)) => fails_over_status(status.as_u16()),
                Err(_) => true,
            };
            if !failed {
                self.endpoints.answered(i);
                return result;
            }
            if k == 0 {
                self.endpoints.failed(i);
            }
            k += 1;
            // `order` holds at least one endpoint (`Endpoints` keeps one).
            if k == order.len() {
                return result;
            }
            match &result {
                Err(e) => tracing::debug!(endpoint, error = %e, "trying the next endpoint"),
                Ok((status, _)) => tracing::debug!(endpoint, %status, "trying the next endpoint"),
            }
        }
    }

    /// One signed POST to `endpoint`.
    async fn post_to(
        &self,
        endpoint: &str,
        service: &str,
        content_type: &str,
        target: Option<&str>,
        body: &[u8],
    ) -> Result<(reqwest::StatusCode, String)> {
        let url: reqwest::Url = format!("{endpoint}/")
            .parse()
            .with_context(|| format!("bad endpoint {endpoint}"))?;
        let host = match (url.host_str(), url.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_owned(),
            _ => bail!("endpoint {endpoint} has no host"),
        };
        let mut headers = vec![
            ("host".to_owned(), host),
            ("content-type".to_owned(), content_type.to_owned()),
        ];
        if let Some(t) = target {
            headers.push(("x-amz-target".to_owned(), t.to_owned()));
        }
        let req = berth_sigv4::Request {
            method: "POST",
            path: "/",
            query: "",
            headers: &headers,
            body,
        };
        let signed = berth_sigv4::sign(&req, &self.creds, &self.region, service, SystemTime::now());
        let mut rb = self.http.post(url).body(body.to_vec());
        for (k, v) in headers.iter().chain(signed.iter()) {
            if k != "host" {
                rb = rb.header(k, v);
            }
        }
        let resp = rb
            .send()
            .await
            .with_context(|| format!("cannot reach berth at {endpoint}"))?;
        let status = resp.status();
        Ok((status, resp.text().await?))
    }
}

/// Percent-encodes a form value (RFC 3986 unreserved characters stay as they are).
fn form_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Reads the XML berth's ELB API answers with into JSON: elements become objects, `<member>`
/// children become arrays, text becomes strings; attributes and declarations are skipped.
///
/// Hand-written rather than a dependency: it only ever reads berth's own answers, which are
/// plain nested elements (the server's `elb::query` writer), and needs nothing else of XML.
pub fn xml_to_json(xml: &str) -> Option<Value> {
    fn unescape(s: &str) -> String {
        s.replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&apos;", "'")
            .replace("&amp;", "&")
    }
    /// An open element: its name, its children as (name, value), and its text.
    type Open = (String, Vec<(String, Value)>, String);
    let mut stack: Vec<Open> = vec![(String::new(), Vec::new(), String::new())];
    let mut rest = xml;
    while let Some(lt) = rest.find('<') {
        stack.last_mut()?.2.push_str(&unescape(&rest[..lt]));
        let gt = rest[lt..].find('>')? + lt;
        let tag = &rest[lt + 1..gt];
        rest = &rest[gt + 1..];
        if tag.starts_with('?') || tag.starts_with('!') {
            continue;
        }
        if let Some(name) = tag.strip_prefix('/') {
            let (open, children, text) = stack.pop()?;
            if open != name.trim() {
                return None;
            }
            let value = if children.is_empty() {
                Value::String(text)
            } else if children.iter().all(|(n, _)| n == "member") {
                Value::Array(children.into_iter().map(|(_, v)| v).collect())
            } else {
                Value::Object(children.into_iter().collect())
            };
            stack.last_mut()?.1.push((open, value));
        } else {
            let self_closing = tag.ends_with('/');
            let name = tag
                .trim_end_matches('/')
                .split_whitespace()
                .next()?
                .to_owned();
            if self_closing {
                stack
                    .last_mut()?
                    .1
                    .push((name, Value::String(String::new())));
            } else {
                stack.push((name, Vec::new(), String::new()));
            }
        }
    }
    let (_, mut top, _) = stack.pop()?;
    top.pop().map(|(_, v)| v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    #[test]
    fn reads_query_xml() {
        let x = r#"<?xml version="1.0"?><R xmlns="x"><RResult><Items><member><A>1 &amp; 2</A></member><member><A>3</A></member></Items><Empty></Empty></RResult></R>"#;
        let v = xml_to_json(x).unwrap();
        assert_eq!(v["RResult"]["Items"][1]["A"], "3");
        assert_eq!(v["RResult"]["Items"][0]["A"], "1 & 2");
        assert_eq!(v["RResult"]["Empty"], "");
        assert_eq!(form_encode("a b/c"), "a%20b%2Fc");
    }

    /// A server that answers every POST with `status` and a JSON body naming itself, and
    /// counts the requests it got.
    async fn answering(
        status: u16,
        name: &'static str,
    ) -> (String, Arc<AtomicUsize>, tokio::task::JoinHandle<()>) {
        let hits = Arc::new(AtomicUsize::new(0));
        let counted = hits.clone();
        let app = axum::Router::new().route(
            "/",
            axum::routing::post(move || {
                counted.fetch_add(1, Ordering::SeqCst);
                async move {
                    (
                        axum::http::StatusCode::from_u16(status).unwrap(),
                        format!(r#"{{"server":"{name}","__type":"ServerException"}}"#),
                    )
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let h = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        (url, hits, h)
    }

    fn client(endpoints: &str) -> Client {
        Client {
            http: reqwest::Client::new(),
            endpoints: Endpoints::parse(endpoints),
            region: "us-east-1".into(),
            creds: berth_sigv4::Credentials {
                access_key_id: "AKIDEXAMPLE".into(),
                secret_access_key: "secret".into(),
            },
        }
    }

    #[tokio::test]
    async fn fails_over_past_a_dead_or_unhealthy_endpoint_and_sticks() {
        // A port nothing listens on: bound, then closed.
        let dead = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            format!("http://{}", l.local_addr().unwrap())
        };
        let (unhealthy, sick_hits, _s) = answering(503, "sick").await;
        let (good, good_hits, _g) = answering(200, "good").await;
        let c = client(&format!("{dead},{unhealthy},{good}"));
        let v = c.ecs("ListClusters", &serde_json::json!({})).await.unwrap();
        assert_eq!(v["server"], "good");
        assert_eq!(sick_hits.load(Ordering::SeqCst), 1);
        // Sticky: the next call goes straight to the endpoint that answered.
        c.ecs("ListClusters", &serde_json::json!({})).await.unwrap();
        assert_eq!(sick_hits.load(Ordering::SeqCst), 1);
        assert_eq!(good_hits.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_4xx_is_an_answer_and_every_endpoint_down_is_an_error() {
        let (refusing, _, _r) = answering(400, "refusing").await;
        let (good, good_hits, _g) = answering(200, "good").await;
        let c = client(&format!("{refusing},{good}"));
        assert!(c.ecs("ListClusters", &serde_json::json!({})).await.is_err());
        assert_eq!(
            good_hits.load(Ordering::SeqCst),
            0,
            "a refusal is not failed over"
        );
        let (sick, _, _s) = answering(503, "sick").await;
        let err = client(&format!("{sick},{sick}"))
            .ecs("ListClusters", &serde_json::json!({}))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("ServerException"), "{err}");
    }
}
