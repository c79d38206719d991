//! The store's half of authorization: the full ARN of a resource a request names only by a
//! name ([`berth_iam::Resource`]: a secret's suffix, an Auto Scaling group's UUID, a user's
//! path live in the store), and the tags of a resource for `aws:ResourceTag/<key>`.
//!
//! Reading which resources a request names is pure and lives in `berth_iam`; this module only
//! looks records up. A resource that does not exist resolves to the ARN it would have with
//! `*` (or Secrets Manager's `??????`) where the store would hold the unknown part, and has no
//! tags, so a condition on its tags does not hold.

use berth_iam::Resource;
use berth_model::ApiError;
use berth_store::StoreExt;

use crate::{store_err, Ctx, Ops};

type Tags = Vec<(String, String)>;

fn pairs(tags: Vec<berth_model::Tag>) -> Tags {
    tags.into_iter().map(|t| (t.key, t.value)).collect()
}

impl Ops {
    /// The ARN of `r` in `region`, and, if `with_tags`, its tags.
    pub async fn resolve_resource(
        &self,
        region: &str,
        r: &Resource,
        with_tags: bool,
    ) -> Result<(String, Tags), ApiError> {
        let ctx = self.ctx(region);
        let account = &self.config().account_id;
        let (arn, tags) = match r {
            Resource::Arn(a) => (a.clone(), None),
            Resource::Secret(id) => match crate::secrets::secretsmanager::find(&ctx, id).await? {
                Some((s, _, _)) => (s.arn, Some(pairs(s.tags))),
                None if id.starts_with("arn:") => (id.clone(), Some(Vec::new())),
                None => (
                    format!("arn:aws:secretsmanager:{region}:{account}:secret:{id}-??????"),
                    Some(Vec::new()),
                ),
            },
            Resource::AutoScalingGroup(name) => {
                match crate::hostgroups::load_group(&ctx, name).await {
                    Ok((g, _)) => (g.auto_scaling_group_arn, Some(pairs(g.tags))),
                    Err(_) => (
                        format!(
                            "arn:aws:autoscaling:{region}:{account}:autoScalingGroup:*:autoScalingGroupName/{name}"
                        ),
                        Some(Vec::new()),
                    ),
                }
            }
            Resource::AutoScalingInstance(id) => {
                let group = crate::hostgroups::hosts::all_hosts(&ctx)
                    .await?
                    .into_iter()
                    .find(|(_, h, _)| h.instance_id == *id)
                    .map(|(_, h, _)| h.auto_scaling_group_name);
                match group {
                    Some(name) => {
                        let named = Resource::AutoScalingGroup(name);
                        return Box::pin(self.resolve_resource(region, &named, with_tags)).await;
                    }
                    None => (
                        format!("arn:aws:autoscaling:{region}:{account}:autoScalingGroup:*:autoScalingGroupName/*"),
                        Some(Vec::new()),
                    ),
                }
            }
            Resource::SecurityGroupName(name) => {
                let arn =
                    match crate::ec2::security_groups::load_by_id_or_name(&ctx, None, Some(name))
                        .await
                    {
                        Ok((g, _)) => format!(
                            "arn:aws:ec2:{region}:{account}:security-group/{}",
                            g.group_id
                        ),
                        Err(_) => format!("arn:aws:ec2:{region}:{account}:security-group/*"),
                    };
                (arn, Some(Vec::new()))
            }
            Resource::ScalableTarget(id) => {
                match crate::autoscaling::find_target(&ctx, id).await? {
                    Some((t, _)) => (t.scalable_target_arn, None),
                    None => (
                        format!(
                            "arn:aws:application-autoscaling:{region}:{account}:scalable-target/*"
                        ),
                        Some(Vec::new()),
                    ),
                }
            }
            Resource::User(name) => {
                let arn = match super::users::load_user(&ctx, name).await {
                    Ok((u, _)) => u.arn,
                    Err(_) => format!("arn:aws:iam::{account}:user/{name}"),
                };
                (arn, Some(Vec::new()))
            }
            Resource::Role(name) => {
                let arn = match super::roles::load_role(&ctx, name).await {
                    Ok((r, _)) => r.arn,
                    Err(_) => format!("arn:aws:iam::{account}:role/{name}"),
                };
                (arn, Some(Vec::new()))
            }
        };
        let tags = match tags {
            Some(t) if with_tags => t,
            Some(_) => Vec::new(),
            None if with_tags => self.resource_tags(&ctx, &arn).await?,
            None => Vec::new(),
        };
        Ok((arn, tags))
    }

    /// The tags of the resource `arn` names, for `aws:ResourceTag/<key>` conditions: ECS
    /// clusters and services, ELBv2 load balancers, target groups, listeners and rules, SSM
    /// parameters, Secrets Manager secrets and Application Auto Scaling targets. Other resources (and ones that do not exist)
    /// have none here, so a condition on their tags does not hold.
    async fn resource_tags(&self, ctx: &Ctx, arn: &str) -> Result<Tags, ApiError> {
        let mut parts = arn.splitn(6, ':');
        let (service, rest) = (parts.nth(2).unwrap_or(""), parts.nth(2).unwrap_or(""));
        Ok(match service {
            "ecs" => self.ecs_tags(rest).await?,
            "elasticloadbalancing" => match crate::elb::tags::load(ctx, arn).await {
                Ok((_, v, _)) => crate::elb::tags::tags_of(&v)
                    .into_iter()
                    .map(|t| (t.key, t.value.unwrap_or_default()))
                    .collect(),
                Err(_) => Vec::new(),
            },
            "ssm" => match rest.strip_prefix("parameter/") {
                Some(name) => {
                    // A hierarchy's name starts with `/`, which its ARN drops.
                    let name = if name.contains('/') {
                        format!("/{name}")
                    } else {
                        name.to_owned()
                    };
                    crate::secrets::ssm::load(ctx, &name)
                        .await?
                        .map(|(p, _)| pairs(p.tags))
                        .unwrap_or_default()
                }
                None => Vec::new(),
            },
            "application-autoscaling" => {
                match crate::autoscaling::targets::target_by_arn(ctx, arn).await {
                    Ok(t) => ctx
                        .store()
                        .get_json::<std::collections::BTreeMap<String, String>>(
                            &berth_model::keys::aas_tags(&t.resource_id),
                        )
                        .await
                        .map_err(store_err)?
                        .map(|(m, _)| m.into_iter().collect())
                        .unwrap_or_default(),
                    Err(_) => Vec::new(),
                }
            }
            "secretsmanager" => crate::secrets::secretsmanager::find(ctx, arn)
                .await?
                .map(|(s, _, _)| pairs(s.tags))
                .unwrap_or_default(),
            _ => Vec::new(),
        })
    }

    /// The tags of an ECS cluster (`cluster/NAME`) or service (`service/CLUSTER/NAME`).
    async fn ecs_tags(&self, rest: &str) -> Result<Tags, ApiError> {
        let tags = if let Some(name) = rest.strip_prefix("cluster/") {
            self.store
                .get_json::<berth_model::Cluster>(&berth_model::keys::cluster(name))
                .await
                .map_err(store_err)?
                .map(|(c, _)| c.tags)
        } else if let Some((cluster, name)) = rest
            .strip_prefix("service/")
            .and_then(|r| r.split_once('/'))
        {
            self.store
                .get_json::<berth_model::Service>(&berth_model::keys::service(cluster, name))
                .await
                .map_err(store_err)?
                .map(|(s, _)| s.tags)
        } else {
            None
        };
        Ok(pairs(tags.unwrap_or_default()))
    }
}
