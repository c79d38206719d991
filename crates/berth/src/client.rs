//! A small SigV4-signing client for berth's own API, used by the CLI. It reads the same
//! credentials, region and endpoint as the AWS CLI does.

use std::time::SystemTime;

use anyhow::{anyhow, bail, Context, Result};
use serde_json::Value;

use crate::{creds, env};

pub struct Client {
    http: reqwest::Client,
    endpoint: String,
    region: String,
    creds: berth_sigv4::Credentials,
}

/// Endpoint and credentials as given on the command line (each may be absent).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ClientOpts {
    /// API endpoint (default: $AWS_ENDPOINT_URL_ECS, $AWS_ENDPOINT_URL, http://127.0.0.1:9400).
    #[arg(long, global = true)]
    pub endpoint: Option<String>,
    /// Region to sign for (default: $AWS_DEFAULT_REGION, $AWS_REGION, us-east-1).
    #[arg(long, global = true)]
    pub region: Option<String>,
}

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
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
            http: reqwest::Client::new(),
            endpoint: endpoint.trim_end_matches('/').to_owned(),
            region,
            creds,
        })
    }

    /// A client for a known endpoint and key (used by `berth up` itself).
    pub fn with_key(endpoint: &str, region: &str, key: &creds::RootKey) -> Self {
        Self {
            http: reqwest::Client::new(),
            endpoint: endpoint.trim_end_matches('/').to_owned(),
            region: region.to_owned(),
            creds: berth_sigv4::Credentials {
                access_key_id: key.access_key_id.clone(),
                secret_access_key: key.secret_access_key.clone(),
            },
        }
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

    async fn call(&self, target: &str, body: &Value) -> Result<Value> {
        let body = serde_json::to_vec(body)?;
        let url: reqwest::Url = format!("{}/", self.endpoint)
            .parse()
            .with_context(|| format!("bad endpoint {}", self.endpoint))?;
        let host = match (url.host_str(), url.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_owned(),
            _ => bail!("endpoint {} has no host", self.endpoint),
        };
        let target = target.to_owned();
        let headers = vec![
            ("host".to_owned(), host),
            (
                "content-type".to_owned(),
                "application/x-amz-json-1.1".to_owned(),
            ),
            ("x-amz-target".to_owned(), target),
        ];
        let req = berth_sigv4::Request {
            method: "POST",
            path: "/",
            query: "",
            headers: &headers,
            body: &body,
        };
        let signed = berth_sigv4::sign(&req, &self.creds, &self.region, "ecs", SystemTime::now());
        let mut rb = self.http.post(url).body(body.clone());
        for (k, v) in headers.iter().chain(signed.iter()) {
            if k != "host" {
                rb = rb.header(k, v);
            }
        }
        let resp = rb
            .send()
            .await
            .with_context(|| format!("cannot reach berth at {}", self.endpoint))?;
        let status = resp.status();
        let text = resp.text().await?;
        let v: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        if !status.is_success() {
            let code = v["__type"].as_str().unwrap_or("Error");
            let msg = v["message"].as_str().unwrap_or("");
            bail!("{code}: {msg}");
        }
        Ok(v)
    }
}
