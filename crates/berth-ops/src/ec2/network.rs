//! ECS's `networkConfiguration.awsvpcConfiguration` checked against the EC2 records, with
//! ECS's own errors: the subnets and security groups must exist (ECS asks EC2 and answers
//! `InvalidParameterException` naming the id), there are at most 16 subnets and 5 groups, all
//! in one VPC, and with no groups given the VPC's `default` group applies, as on ECS.

use berth_model::vpc::{
    resolve_ingress, AddressHolder, AgentNetwork, SecurityGroup, TaskEni, MAX_TASK_SECURITY_GROUPS,
    MAX_TASK_SUBNETS,
};
use berth_model::{keys, ApiError, AssignPublicIp, AwsVpcConfiguration, NetworkConfiguration};
use berth_store::StoreExt;

use super::list_all;
use super::security_groups::load_group;
use super::vpcs::load_subnet;
use crate::Ctx;

/// Checks a request's `networkConfiguration` for a task definition of `network_mode`, and
/// returns it completed (the default security group filled in). `None` for a definition that
/// is not awsvpc and was given none.
pub async fn resolve(
    ctx: &Ctx,
    network_mode: Option<&str>,
    given: Option<&NetworkConfiguration>,
) -> Result<Option<NetworkConfiguration>, ApiError> {
    let awsvpc = network_mode == Some("awsvpc");
    let vpc_cfg = given.and_then(|n| n.awsvpc_configuration.as_ref());
    let cfg = match (awsvpc, vpc_cfg) {
        (false, None) => return Ok(None),
        (false, Some(_)) => return Err(ApiError::invalid(
            "Network Configuration is not valid for the given networkMode of this task definition.",
        )),
        (true, None) => {
            return Err(ApiError::invalid(
                "Network Configuration must be provided when networkMode 'awsvpc' is specified.",
            ))
        }
        (true, Some(c)) => c,
    };
    check_shape(cfg)?;
    let mut vpc: Option<String> = None;
    let mut same_vpc = |v: &str| -> Result<(), ApiError> {
        match &vpc {
            Some(o) if o != v => Err(ApiError::invalid(
                "Subnets and security groups must all belong to the same VPC.",
            )),
            _ => {
                vpc = Some(v.to_owned());
                Ok(())
            }
        }
    };
    for s in &cfg.subnets {
        let (sub, _) = load_subnet(ctx, s).await.map_err(|e| {
            ApiError::invalid(format!(
                "Error retrieving subnet information for [{s}]: {} (Service: AmazonEC2; Status Code: 400; Error Code: {})",
                e.message,
                e.code.as_str()
            ))
        })?;
        same_vpc(&sub.vpc_id)?;
    }
    let mut groups = Vec::new();
    for g in cfg.security_groups.iter().flatten() {
        let (grp, _) = load_group(ctx, g).await.map_err(|e| {
            ApiError::invalid(format!(
                "Error retrieving security group information for [{g}]: {} (Service: AmazonEC2; Status Code: 400; Error Code: {})",
                e.message,
                e.code.as_str()
            ))
        })?;
        same_vpc(&grp.vpc_id)?;
        groups.push(grp.group_id);
    }
    if groups.is_empty() {
        let vpc_id = vpc.clone().unwrap_or_default();
        let default = list_all::<SecurityGroup>(ctx, keys::EC2_SECURITY_GROUPS)
            .await?
            .into_iter()
            .find(|(g, _)| g.vpc_id == vpc_id && g.group_name == "default")
            .ok_or_else(|| {
                ApiError::invalid(format!("The VPC {vpc_id} has no default security group."))
            })?;
        groups.push(default.0.group_id);
    }
    Ok(Some(NetworkConfiguration {
        awsvpc_configuration: Some(AwsVpcConfiguration {
            assign_public_ip: Some(AssignPublicIp::Disabled),
            security_groups: Some(groups),
            subnets: cfg.subnets.clone(),
        }),
    }))
}

/// What the agent of an awsvpc task needs: its interface, and its groups' ingress resolved to
/// source blocks. `holders` caches every address holder for one poll answer.
pub async fn agent_network(
    ctx: &Ctx,
    eni: &TaskEni,
    holders: &mut Option<Vec<AddressHolder>>,
) -> Result<AgentNetwork, ApiError> {
    let mut groups = Vec::new();
    for g in &eni.security_groups {
        // A group deleted since the task started allows nothing.
        if let Some((grp, _)) = ctx
            .store()
            .get_json::<SecurityGroup>(&keys::ec2_security_group(g))
            .await
            .map_err(crate::store_err)?
        {
            groups.push(grp);
        }
    }
    let sourced = groups
        .iter()
        .any(|g| g.ingress.iter().any(|r| r.source_group_id.is_some()));
    if sourced && holders.is_none() {
        *holders = Some(
            list_all::<AddressHolder>(ctx, keys::EC2_ADDRESSES)
                .await?
                .into_iter()
                .map(|(h, _)| h)
                .collect(),
        );
    }
    Ok(AgentNetwork {
        eni: eni.clone(),
        ingress: resolve_ingress(&groups, holders.as_deref().unwrap_or_default()),
    })
}

/// The checks that need no store: counts, and `assignPublicIp`.
pub fn check_shape(cfg: &AwsVpcConfiguration) -> Result<(), ApiError> {
    if cfg.subnets.is_empty() {
        return Err(ApiError::invalid("subnets can not be empty."));
    }
    if cfg.subnets.len() > MAX_TASK_SUBNETS {
        return Err(ApiError::invalid(format!(
            "subnets can have at most {MAX_TASK_SUBNETS} items."
        )));
    }
    if cfg.security_groups.as_ref().map_or(0, Vec::len) > MAX_TASK_SECURITY_GROUPS {
        return Err(ApiError::invalid(format!(
            "securityGroups can have at most {MAX_TASK_SECURITY_GROUPS} items."
        )));
    }
    if cfg.assign_public_ip == Some(AssignPublicIp::Enabled) {
        return Err(ApiError::invalid(
            "Assign public IP is not supported for this launch type.",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shape_limits() {
        let mut c = AwsVpcConfiguration {
            subnets: vec!["subnet-1".into()],
            ..Default::default()
        };
        assert!(check_shape(&c).is_ok());
        c.assign_public_ip = Some(AssignPublicIp::Enabled);
        assert!(check_shape(&c)
            .unwrap_err()
            .message
            .contains("Assign public IP"));
        c.assign_public_ip = None;
        c.subnets = vec!["s".into(); 17];
        assert!(check_shape(&c).is_err());
        c.subnets = vec![];
        assert!(check_shape(&c).is_err());
        c.subnets = vec!["s".into()];
        c.security_groups = Some(vec!["sg".into(); 6]);
        assert!(check_shape(&c).is_err());
    }
}
