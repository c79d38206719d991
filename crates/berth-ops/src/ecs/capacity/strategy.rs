//! `capacityProviderStrategy` as RunTask, CreateService, UpdateService, CreateCluster and
//! PutClusterCapacityProviders take it: parsed, checked by ECS's rules, and resolved against
//! the cluster (an explicit strategy, or the cluster's default when neither a launch type nor
//! a strategy is given).

use berth_model::capacity::StrategyItem;
use berth_model::{ApiError, Cluster, SchedulingStrategy};
use serde::Deserialize;
use serde_json::{json, Value};

/// ECS's limit on items in one strategy.
pub(crate) const MAX_ITEMS: usize = 6;

/// One strategy item as the wire gives it (ranges checked here, not by serde, so a mistake is
/// an InvalidParameterException naming the member).
#[derive(Deserialize, Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct WireItem {
    capacity_provider: Option<String>,
    weight: Option<i64>,
    base: Option<i64>,
}

/// Checks a strategy by ECS's rules (other than association with a cluster) and returns its
/// items, names normalised (an ARN becomes its name).
pub(crate) fn parse(member: &str, items: &[WireItem]) -> Result<Vec<StrategyItem>, ApiError> {
    if items.len() > MAX_ITEMS {
        return Err(ApiError::invalid(format!(
            "{member} can contain at most {MAX_ITEMS} capacity providers."
        )));
    }
    let mut out: Vec<StrategyItem> = Vec::with_capacity(items.len());
    for it in items {
        let name = it.capacity_provider.as_deref().unwrap_or_default();
        if name.is_empty() {
            return Err(ApiError::invalid(format!(
                "{member}.capacityProvider is required."
            )));
        }
        let name = super::provider_name(name)?;
        let weight = it.weight.unwrap_or(0);
        if !(0..=1000).contains(&weight) {
            return Err(ApiError::invalid(format!(
                "{member}.weight must be between 0 and 1000; got {weight}."
            )));
        }
        let base = it.base.unwrap_or(0);
        if !(0..=100_000).contains(&base) {
            return Err(ApiError::invalid(format!(
                "{member}.base must be between 0 and 100000; got {base}."
            )));
        }
        if out.iter().any(|o| o.capacity_provider == name) {
            return Err(ApiError::invalid(format!(
                "{member} contains the capacity provider {name} more than once."
            )));
        }
        out.push(StrategyItem {
            capacity_provider: name,
            weight: weight as u32,
            base: base as u32,
        });
    }
    if out.iter().filter(|i| i.base > 0).count() > 1 {
        return Err(ApiError::invalid(format!(
            "Only one capacity provider in {member} can have a base defined."
        )));
    }
    if out.len() > 1 && out.iter().all(|i| i.weight == 0) {
        return Err(ApiError::invalid(format!(
            "At least one capacity provider in {member} must have a weight greater than zero."
        )));
    }
    let fargate = out
        .iter()
        .filter(|i| berth_control::capacity::is_builtin(&i.capacity_provider))
        .count();
    if fargate > 0 && fargate < out.len() {
        return Err(ApiError::invalid(
            "A capacity provider strategy cannot contain a mix of capacity providers using \
             Auto Scaling groups and Fargate providers. Specify one or the other and try again.",
        ));
    }
    Ok(out)
}

/// Refuses a strategy naming a provider the cluster does not have.
pub(crate) fn check_associated(
    member: &str,
    c: &Cluster,
    items: &[StrategyItem],
) -> Result<(), ApiError> {
    match items
        .iter()
        .find(|i| !c.capacity_providers.contains(&i.capacity_provider))
    {
        Some(i) => Err(ApiError::invalid(format!(
            "The specified capacity provider strategy cannot contain a capacity provider that \
             is not associated with the cluster. Associate the capacity provider with the \
             cluster or specify a valid capacity provider and try again. ({member}: {})",
            i.capacity_provider
        ))),
        None => Ok(()),
    }
}

/// The stored (and shown) form of a strategy.
pub(crate) fn to_values(items: &[StrategyItem]) -> Vec<Value> {
    items
        .iter()
        .map(|i| json!({"capacityProvider": i.capacity_provider, "weight": i.weight, "base": i.base}))
        .collect()
}

/// A cluster's default strategy, read back from its stored form.
pub(crate) fn cluster_default(c: &Cluster) -> Vec<StrategyItem> {
    c.default_capacity_provider_strategy
        .iter()
        .filter_map(|v| serde_json::from_value(v.clone()).ok())
        .collect()
}

/// What a launch asks for: the strategy to use (possibly the cluster's default), or `None` for
/// a launch type. Refuses a launch type given together with a strategy, as ECS does.
pub(crate) fn resolve(
    c: &Cluster,
    launch_type: Option<&str>,
    items: Option<&[WireItem]>,
) -> Result<Option<Vec<StrategyItem>>, ApiError> {
    let given = items.filter(|i| !i.is_empty());
    match (launch_type, given) {
        (Some(_), Some(_)) => Err(ApiError::invalid(
            "Specifying both a launch type and capacity provider strategy is not supported. \
             Remove one and try again.",
        )),
        (Some(_), None) => Ok(None),
        (None, Some(items)) => {
            let items = parse("capacityProviderStrategy", items)?;
            check_associated("capacityProviderStrategy", c, &items)?;
            Ok(Some(items))
        }
        (None, None) => {
            let d = cluster_default(c);
            Ok((!d.is_empty()).then_some(d))
        }
    }
}

/// A new service's launch type and strategy from the resolved `plan`. DAEMON services take no
/// strategy (refused when given; the cluster's default does not apply to them).
pub(crate) fn for_service(
    plan: Option<Vec<StrategyItem>>,
    scheduling: SchedulingStrategy,
    explicit: bool,
) -> Result<(String, Vec<StrategyItem>), ApiError> {
    match (scheduling, plan) {
        (SchedulingStrategy::Daemon, _) if explicit => Err(ApiError::invalid(
            "Capacity provider strategies are not supported with the DAEMON scheduling \
             strategy.",
        )),
        (SchedulingStrategy::Daemon, _) | (_, None) => Ok(("EC2".into(), Vec::new())),
        (_, Some(items)) => {
            let fargate = items
                .iter()
                .all(|i| berth_control::capacity::is_builtin(&i.capacity_provider));
            Ok((if fargate { "FARGATE" } else { "EC2" }.into(), items))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(v: Value) -> Vec<WireItem> {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn ecs_rules() {
        let ok = parse(
            "s",
            &items(json!([{"capacityProvider": "a", "base": 2, "weight": 1},
                           {"capacityProvider": "arn:aws:ecs:us-east-1:000000000000:capacity-provider/b", "weight": 3}])),
        )
        .unwrap();
        assert_eq!(ok[1].capacity_provider, "b");
        let err = |v: Value| parse("s", &items(v)).unwrap_err().message;
        assert!(err(json!([{"capacityProvider": "a", "weight": 1001}])).contains("weight"));
        assert!(err(json!([{"capacityProvider": "a", "base": 100001}])).contains("base"));
        assert!(
            err(json!([{"capacityProvider": "a", "base": 1, "weight": 1},
                           {"capacityProvider": "b", "base": 1, "weight": 1}]))
            .contains("Only one")
        );
        assert!(
            err(json!([{"capacityProvider": "a"}, {"capacityProvider": "b"}]))
                .contains("weight greater than zero")
        );
        assert!(err(json!([{"capacityProvider": "a", "weight": 1},
                           {"capacityProvider": "FARGATE", "weight": 1}]))
        .contains("mix"));
        assert!(err(json!([{"capacityProvider": "a", "weight": 1},
                           {"capacityProvider": "a", "weight": 1}]))
        .contains("more than once"));
        let seven: Vec<Value> = (0..7)
            .map(|i| json!({"capacityProvider": format!("p{i}"), "weight": 1}))
            .collect();
        assert!(err(Value::Array(seven)).contains("at most 6"));
    }

    #[test]
    fn launch_type_or_strategy_or_default() {
        let mut c = Cluster::new("c".into(), 0.0);
        c.capacity_providers = vec!["a".into()];
        let s = items(json!([{"capacityProvider": "a", "weight": 1}]));
        assert!(resolve(&c, Some("EC2"), Some(&s))
            .unwrap_err()
            .message
            .contains("both a launch type"));
        assert_eq!(resolve(&c, None, None).unwrap(), None);
        c.default_capacity_provider_strategy =
            vec![json!({"capacityProvider": "a", "weight": 1, "base": 0})];
        assert_eq!(resolve(&c, None, None).unwrap().unwrap().len(), 1);
        assert_eq!(resolve(&c, Some("EC2"), None).unwrap(), None);
        let other = items(json!([{"capacityProvider": "b", "weight": 1}]));
        assert!(resolve(&c, None, Some(&other))
            .unwrap_err()
            .message
            .contains("not associated with the cluster"));
    }
}
