//! Which resources a request names, per action, as the AWS Service Authorization Reference
//! ("Actions, resources, and condition keys for ...") lists them, for every non-ECS API berth
//! serves: ELBv2, EC2, Auto Scaling, Application Auto Scaling, SSM Parameter Store, Secrets
//! Manager, CloudWatch Logs and IAM.
//!
//! It is a table over the request's parameters (the JSON body, or the Query form parsed into
//! the same tree), with no I/O, so that every row is a unit test. Actions the reference lists
//! with no resource type (the `Describe*`/`List*` calls of most services) name nothing and are
//! decided on `*`, as AWS does. Some ARNs carry a part only the store knows (a secret's random
//! suffix, an Auto Scaling group's UUID, a user's path): those come back as a [`Resource`]
//! other than [`Resource::Arn`] for the control layer to resolve. A resource the request is
//! creating has no id yet: its ARN names it by name, with `*` where the id will be (a policy
//! on `.../targetgroup/web-*` matches it; one on a specific id cannot).

use serde_json::Value;

/// The partition-independent part of every ARN a request names: region and account.
#[derive(Debug, Clone, Copy)]
pub struct Scope<'a> {
    /// The region the request was signed for.
    pub region: &'a str,
    /// The account berth answers as.
    pub account: &'a str,
}

/// One resource a request names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resource {
    /// Its full ARN.
    Arn(String),
    /// A Secrets Manager secret by name or (partial) ARN: its ARN ends in a random suffix.
    Secret(String),
    /// An Auto Scaling group by name: its ARN holds a UUID.
    AutoScalingGroup(String),
    /// An Application Auto Scaling scalable target by its resource id: its ARN holds an id.
    ScalableTarget(String),
    /// An EC2 security group by name in the default VPC (`GroupName` without `GroupId`).
    SecurityGroupName(String),
    /// The Auto Scaling group an instance belongs to
    /// (TerminateInstanceInAutoScalingGroup without `AutoScalingGroupName`).
    AutoScalingInstance(String),
    /// An IAM user by name: its ARN holds its path.
    User(String),
    /// An IAM role by name: its ARN holds its path.
    Role(String),
}

/// The strings at `key` of `p`: one string, a JSON list, or a Query `member` list.
fn strings(p: &Value, key: &str) -> Vec<String> {
    fn collect(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::String(s) => out.push(s.clone()),
            Value::Array(a) => a.iter().for_each(|x| collect(x, out)),
            Value::Object(m) => {
                if let Some(x) = m.get("member") {
                    collect(x, out);
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    if let Some(v) = p.get(key) {
        collect(v, &mut out);
    }
    out
}

fn one(p: &Value, key: &str) -> Option<String> {
    p.get(key).and_then(Value::as_str).map(str::to_owned)
}

/// The resources `service:action` names in parameters `p`. Empty: the request is on `*`.
/// ECS has its own reader at the edge; an unknown service names nothing.
pub fn request_resources(service: &str, action: &str, p: &Value, s: Scope<'_>) -> Vec<Resource> {
    let arns = |v: Vec<String>| v.into_iter().map(Resource::Arn).collect::<Vec<_>>();
    match service {
        "elasticloadbalancing" => arns(elbv2(action, p, s)),
        "ec2" => ec2(action, p, s),
        "ssm" => arns(ssm(action, p, s)),
        "logs" => arns(logs(action, p, s)),
        "secretsmanager" => secretsmanager(action, p, s),
        "autoscaling" => autoscaling(action, p, s),
        "application-autoscaling" => application_autoscaling(action, p, s),
        "iam" => iam(action, p, s),
        _ => Vec::new(),
    }
}

/// ELBv2: load balancers, target groups, listeners and rules are named by ARN in every
/// mutating call; a create names the new resource by name.
fn elbv2(action: &str, p: &Value, s: Scope<'_>) -> Vec<String> {
    let base = format!("arn:aws:elasticloadbalancing:{}:{}:", s.region, s.account);
    match action {
        "CreateLoadBalancer" => {
            let kind = match one(p, "Type").as_deref() {
                Some("network") => "net",
                Some("gateway") => "gwy",
                _ => "app",
            };
            let name = one(p, "Name").unwrap_or_default();
            vec![format!("{base}loadbalancer/{kind}/{name}/*")]
        }
        "CreateTargetGroup" => {
            let name = one(p, "Name").unwrap_or_default();
            vec![format!("{base}targetgroup/{name}/*")]
        }
        "DeleteLoadBalancer"
        | "ModifyLoadBalancerAttributes"
        | "CreateListener"
        | "SetSecurityGroups"
        | "SetSubnets"
        | "SetIpAddressType" => strings(p, "LoadBalancerArn"),
        "ModifyTargetGroup"
        | "ModifyTargetGroupAttributes"
        | "DeleteTargetGroup"
        | "RegisterTargets"
        | "DeregisterTargets" => strings(p, "TargetGroupArn"),
        "ModifyListener" | "DeleteListener" | "CreateRule" => strings(p, "ListenerArn"),
        "ModifyRule" | "DeleteRule" => strings(p, "RuleArn"),
        "SetRulePriorities" => match p.get("RulePriorities") {
            Some(v) => {
                let list = v.get("member").unwrap_or(v);
                list.as_array()
                    .into_iter()
                    .flatten()
                    .flat_map(|r| strings(r, "RuleArn"))
                    .collect()
            }
            None => Vec::new(),
        },
        "AddTags" | "RemoveTags" => strings(p, "ResourceArns"),
        _ => Vec::new(),
    }
}

/// EC2: VPCs, subnets and security groups by id (`arn:aws:ec2:R:A:vpc/vpc-...`); a create
/// names the new resource as `*` and the VPC it goes in.
fn ec2(action: &str, p: &Value, s: Scope<'_>) -> Vec<Resource> {
    if matches!(
        action,
        "AuthorizeSecurityGroupIngress" | "RevokeSecurityGroupIngress" | "DeleteSecurityGroup"
    ) && p.get("GroupId").is_none()
    {
        return strings(p, "GroupName")
            .into_iter()
            .map(Resource::SecurityGroupName)
            .collect();
    }
    ec2_arns(action, p, s)
        .into_iter()
        .map(Resource::Arn)
        .collect()
}

fn ec2_arns(action: &str, p: &Value, s: Scope<'_>) -> Vec<String> {
    let arn = |kind: &str, id: &str| format!("arn:aws:ec2:{}:{}:{kind}/{id}", s.region, s.account);
    let vpc = || strings(p, "VpcId").into_iter().map(|v| arn("vpc", &v));
    match action {
        "CreateVpc" => vec![arn("vpc", "*")],
        "DeleteVpc" => vpc().collect(),
        "CreateSubnet" => std::iter::once(arn("subnet", "*")).chain(vpc()).collect(),
        "DeleteSubnet" => strings(p, "SubnetId")
            .iter()
            .map(|i| arn("subnet", i))
            .collect(),
        "CreateSecurityGroup" => std::iter::once(arn("security-group", "*"))
            .chain(vpc())
            .collect(),
        "AuthorizeSecurityGroupIngress" | "RevokeSecurityGroupIngress" | "DeleteSecurityGroup" => {
            strings(p, "GroupId")
                .iter()
                .map(|i| arn("security-group", i))
                .collect()
        }
        _ => Vec::new(),
    }
}

/// SSM: `arn:aws:ssm:R:A:parameter/NAME`, the name without its leading `/` (a hierarchy's
/// ARN has one slash) and without a `:version` or `:label` selector.
fn ssm(action: &str, p: &Value, s: Scope<'_>) -> Vec<String> {
    let arn = |name: &str| {
        if name.starts_with("arn:") {
            return name.to_owned();
        }
        let name = name.split(':').next().unwrap_or(name);
        format!(
            "arn:aws:ssm:{}:{}:parameter/{}",
            s.region,
            s.account,
            name.trim_start_matches('/')
        )
    };
    let names: Vec<String> = match action {
        "PutParameter"
        | "GetParameter"
        | "DeleteParameter"
        | "LabelParameterVersion"
        | "GetParameterHistory" => strings(p, "Name"),
        "GetParameters" | "DeleteParameters" => strings(p, "Names"),
        "GetParametersByPath" => strings(p, "Path"),
        "AddTagsToResource" | "RemoveTagsFromResource" | "ListTagsForResource" => {
            strings(p, "ResourceId")
        }
        _ => Vec::new(),
    };
    names.iter().map(|n| arn(n)).collect()
}

/// CloudWatch Logs: `arn:aws:logs:R:A:log-group:NAME`, and
/// `...:log-group:NAME:log-stream:STREAM` for the calls on one stream's events.
fn logs(action: &str, p: &Value, s: Scope<'_>) -> Vec<String> {
    let group = |g: &str| {
        if g.starts_with("arn:") {
            g.trim_end_matches(":*").to_owned()
        } else {
            format!("arn:aws:logs:{}:{}:log-group:{g}", s.region, s.account)
        }
    };
    let mut groups = strings(p, "logGroupName");
    groups.extend(strings(p, "logGroupIdentifier"));
    match action {
        "PutLogEvents" | "GetLogEvents" => {
            let stream = one(p, "logStreamName").unwrap_or_default();
            groups
                .iter()
                .map(|g| format!("{}:log-stream:{stream}", group(g)))
                .collect()
        }
        "StartLiveTail" => strings(p, "logGroupIdentifiers")
            .iter()
            .map(|g| group(g))
            .collect(),
        "DescribeLogGroups" => Vec::new(),
        _ => groups.iter().map(|g| group(g)).collect(),
    }
}

/// Secrets Manager: every call but ListSecrets names one secret, by `SecretId` (a name or a
/// full or partial ARN) or, on CreateSecret, `Name`.
fn secretsmanager(action: &str, p: &Value, _s: Scope<'_>) -> Vec<Resource> {
    let ids = match action {
        "ListSecrets" | "GetRandomPassword" | "BatchGetSecretValue" => Vec::new(),
        "CreateSecret" => strings(p, "Name"),
        _ => strings(p, "SecretId"),
    };
    ids.into_iter().map(Resource::Secret).collect()
}

/// Auto Scaling: groups by name (their ARN holds a UUID), launch configurations by name (a
/// create names `*` for the UUID, as berth draws it after authorization).
fn autoscaling(action: &str, p: &Value, s: Scope<'_>) -> Vec<Resource> {
    let base = format!("arn:aws:autoscaling:{}:{}:", s.region, s.account);
    let lc = |n: &str| {
        Resource::Arn(format!(
            "{base}launchConfiguration:*:launchConfigurationName/{n}"
        ))
    };
    match action {
        "CreateAutoScalingGroup" => strings(p, "AutoScalingGroupName")
            .iter()
            .map(|n| Resource::Arn(format!("{base}autoScalingGroup:*:autoScalingGroupName/{n}")))
            .collect(),
        "TerminateInstanceInAutoScalingGroup" if p.get("AutoScalingGroupName").is_none() => {
            let mut ids = strings(p, "InstanceId");
            ids.extend(strings(p, "InstanceIds"));
            ids.into_iter().map(Resource::AutoScalingInstance).collect()
        }
        "UpdateAutoScalingGroup"
        | "TerminateInstanceInAutoScalingGroup"
        | "SetDesiredCapacity"
        | "DeleteAutoScalingGroup"
        | "SetInstanceProtection" => strings(p, "AutoScalingGroupName")
            .into_iter()
            .map(Resource::AutoScalingGroup)
            .collect(),
        "CreateLaunchConfiguration" | "DeleteLaunchConfiguration" => {
            strings(p, "LaunchConfigurationName")
                .iter()
                .map(|n| lc(n))
                .collect()
        }
        _ => Vec::new(),
    }
}

/// Application Auto Scaling: the scalable target (`scalable-target/ID`), found by its
/// `ResourceId`, or named by `ResourceARN` on the tagging calls.
fn application_autoscaling(action: &str, p: &Value, _s: Scope<'_>) -> Vec<Resource> {
    match action {
        "RegisterScalableTarget"
        | "DeregisterScalableTarget"
        | "PutScalingPolicy"
        | "DeleteScalingPolicy"
        | "PutScheduledAction"
        | "DeleteScheduledAction" => strings(p, "ResourceId")
            .into_iter()
            .map(Resource::ScalableTarget)
            .collect(),
        "TagResource" | "UntagResource" | "ListTagsForResource" => strings(p, "ResourceARN")
            .into_iter()
            .map(Resource::Arn)
            .collect(),
        _ => Vec::new(),
    }
}

/// IAM: users and roles by name (their ARNs hold their paths; IAM ARNs have no region);
/// a create names `PATH` + name from the request.
fn iam(action: &str, p: &Value, s: Scope<'_>) -> Vec<Resource> {
    let created = |kind: &str, key: &str| {
        let path = one(p, "Path").unwrap_or_else(|| "/".to_owned());
        strings(p, key)
            .iter()
            .map(|n| Resource::Arn(format!("arn:aws:iam::{}:{kind}{path}{n}", s.account)))
            .collect()
    };
    match action {
        "CreateUser" => created("user", "UserName"),
        "CreateRole" => created("role", "RoleName"),
        "ListUsers" | "ListRoles" => Vec::new(),
        a if a.contains("Role") => strings(p, "RoleName")
            .into_iter()
            .map(Resource::Role)
            .collect(),
        _ => strings(p, "UserName")
            .into_iter()
            .map(Resource::User)
            .collect(),
    }
}

/// The tags a request carries (for `aws:RequestTag/<key>`): `Tags`/`tags` as a list of
/// `Key`/`Value` pairs (JSON, or a Query `member` list) or as a map (CloudWatch Logs,
/// Application Auto Scaling).
pub fn request_tags(p: &Value) -> Vec<(String, String)> {
    let Some(v) = p.get("Tags").or_else(|| p.get("tags")) else {
        return Vec::new();
    };
    let v = v.get("member").unwrap_or(v);
    let field = |t: &Value, a: &str, b: &str| {
        t.get(a)
            .or_else(|| t.get(b))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    match v {
        Value::Array(a) => a
            .iter()
            .filter_map(|t| {
                Some((
                    field(t, "Key", "key")?,
                    field(t, "Value", "value").unwrap_or_default(),
                ))
            })
            .collect(),
        Value::Object(m) => m
            .iter()
            .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
            .collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use Resource::*;

    const S: Scope<'static> = Scope {
        region: "eu-west-1",
        account: "123",
    };

    fn arn(s: &str) -> Resource {
        Arn(s.to_owned())
    }

    fn check(service: &str, table: &[(&str, Value, Vec<Resource>)]) {
        for (action, params, want) in table {
            assert_eq!(
                &request_resources(service, action, params, S),
                want,
                "{service}:{action} {params}"
            );
        }
    }

    #[test]
    fn elbv2() {
        let lb = "arn:aws:elasticloadbalancing:eu-west-1:123:loadbalancer/app/web/abc";
        let tg = "arn:aws:elasticloadbalancing:eu-west-1:123:targetgroup/api/def";
        let rule = "arn:aws:elasticloadbalancing:eu-west-1:123:listener-rule/app/web/abc/1/2";
        check(
            "elasticloadbalancing",
            &[
                (
                    "DescribeLoadBalancers",
                    json!({"Names": {"member": ["web"]}}),
                    vec![],
                ),
                (
                    "DescribeTargetHealth",
                    json!({"TargetGroupArn": tg}),
                    vec![],
                ),
                (
                    "CreateLoadBalancer",
                    json!({"Name": "web"}),
                    vec![arn(
                        "arn:aws:elasticloadbalancing:eu-west-1:123:loadbalancer/app/web/*",
                    )],
                ),
                (
                    "CreateLoadBalancer",
                    json!({"Name": "n", "Type": "network"}),
                    vec![arn(
                        "arn:aws:elasticloadbalancing:eu-west-1:123:loadbalancer/net/n/*",
                    )],
                ),
                (
                    "CreateTargetGroup",
                    json!({"Name": "api"}),
                    vec![arn(
                        "arn:aws:elasticloadbalancing:eu-west-1:123:targetgroup/api/*",
                    )],
                ),
                (
                    "RegisterTargets",
                    json!({"TargetGroupArn": tg}),
                    vec![arn(tg)],
                ),
                (
                    "CreateListener",
                    json!({"LoadBalancerArn": lb}),
                    vec![arn(lb)],
                ),
                ("DeleteRule", json!({"RuleArn": rule}), vec![arn(rule)]),
                (
                    "SetRulePriorities",
                    json!({"RulePriorities": {"member": [{"RuleArn": rule, "Priority": "3"}]}}),
                    vec![arn(rule)],
                ),
                (
                    "AddTags",
                    json!({"ResourceArns": {"member": [lb, tg]}}),
                    vec![arn(lb), arn(tg)],
                ),
            ],
        );
    }

    #[test]
    fn ec2() {
        let b = "arn:aws:ec2:eu-west-1:123:";
        check(
            "ec2",
            &[
                ("DescribeVpcs", json!({}), vec![]),
                (
                    "CreateVpc",
                    json!({"CidrBlock": "10.0.0.0/16"}),
                    vec![arn(&format!("{b}vpc/*"))],
                ),
                (
                    "DeleteVpc",
                    json!({"VpcId": "vpc-1"}),
                    vec![arn(&format!("{b}vpc/vpc-1"))],
                ),
                (
                    "CreateSubnet",
                    json!({"VpcId": "vpc-1"}),
                    vec![arn(&format!("{b}subnet/*")), arn(&format!("{b}vpc/vpc-1"))],
                ),
                (
                    "DeleteSecurityGroup",
                    json!({"GroupName": "web"}),
                    vec![SecurityGroupName("web".into())],
                ),
                (
                    "AuthorizeSecurityGroupIngress",
                    json!({"GroupId": "sg-9"}),
                    vec![arn(&format!("{b}security-group/sg-9"))],
                ),
                (
                    "DeleteSubnet",
                    json!({"SubnetId": "subnet-2"}),
                    vec![arn(&format!("{b}subnet/subnet-2"))],
                ),
            ],
        );
    }

    #[test]
    fn ssm() {
        let p = |n: &str| arn(&format!("arn:aws:ssm:eu-west-1:123:parameter/{n}"));
        check(
            "ssm",
            &[
                ("DescribeParameters", json!({}), vec![]),
                ("GetParameter", json!({"Name": "db-url"}), vec![p("db-url")]),
                (
                    "GetParameter",
                    json!({"Name": "/app/db:3"}),
                    vec![p("app/db")],
                ),
                (
                    "PutParameter",
                    json!({"Name": "/app/db", "Value": "x"}),
                    vec![p("app/db")],
                ),
                (
                    "GetParameters",
                    json!({"Names": ["a", "/b/c:label"]}),
                    vec![p("a"), p("b/c")],
                ),
                (
                    "GetParametersByPath",
                    json!({"Path": "/app"}),
                    vec![p("app")],
                ),
                (
                    "GetParameter",
                    json!({"Name": "arn:aws:ssm:eu-west-1:123:parameter/x"}),
                    vec![p("x")],
                ),
                (
                    "ListTagsForResource",
                    json!({"ResourceType": "Parameter", "ResourceId": "a"}),
                    vec![p("a")],
                ),
            ],
        );
    }

    #[test]
    fn logs() {
        let g = "arn:aws:logs:eu-west-1:123:log-group:/ecs/web";
        check(
            "logs",
            &[
                (
                    "DescribeLogGroups",
                    json!({"logGroupNamePrefix": "/ecs"}),
                    vec![],
                ),
                (
                    "CreateLogGroup",
                    json!({"logGroupName": "/ecs/web"}),
                    vec![arn(g)],
                ),
                (
                    "DescribeLogStreams",
                    json!({"logGroupIdentifier": format!("{g}:*")}),
                    vec![arn(g)],
                ),
                (
                    "PutLogEvents",
                    json!({"logGroupName": "/ecs/web", "logStreamName": "s1"}),
                    vec![arn(&format!("{g}:log-stream:s1"))],
                ),
                (
                    "StartLiveTail",
                    json!({"logGroupIdentifiers": [g]}),
                    vec![arn(g)],
                ),
            ],
        );
    }

    #[test]
    fn secrets_autoscaling_and_iam_resolve_through_the_store() {
        check(
            "secretsmanager",
            &[
                ("ListSecrets", json!({}), vec![]),
                (
                    "CreateSecret",
                    json!({"Name": "db"}),
                    vec![Secret("db".into())],
                ),
                (
                    "GetSecretValue",
                    json!({"SecretId": "db"}),
                    vec![Secret("db".into())],
                ),
            ],
        );
        check(
            "autoscaling",
            &[
                ("DescribeAutoScalingGroups", json!({}), vec![]),
                (
                    "SetDesiredCapacity",
                    json!({"AutoScalingGroupName": "hosts"}),
                    vec![AutoScalingGroup("hosts".into())],
                ),
                (
                    "TerminateInstanceInAutoScalingGroup",
                    json!({"InstanceId": "i-1"}),
                    vec![AutoScalingInstance("i-1".into())],
                ),
                (
                    "TerminateInstanceInAutoScalingGroup",
                    json!({"InstanceId": "i-1", "AutoScalingGroupName": "hosts"}),
                    vec![AutoScalingGroup("hosts".into())],
                ),
                (
                    "CreateAutoScalingGroup",
                    json!({"AutoScalingGroupName": "hosts"}),
                    vec![arn("arn:aws:autoscaling:eu-west-1:123:autoScalingGroup:*:autoScalingGroupName/hosts")],
                ),
            ],
        );
        check(
            "application-autoscaling",
            &[
                (
                    "DescribeScalableTargets",
                    json!({"ServiceNamespace": "ecs"}),
                    vec![],
                ),
                (
                    "PutScalingPolicy",
                    json!({"ResourceId": "service/c/s"}),
                    vec![ScalableTarget("service/c/s".into())],
                ),
                (
                    "TagResource",
                    json!({"ResourceARN": "arn:x"}),
                    vec![arn("arn:x")],
                ),
            ],
        );
        check(
            "iam",
            &[
                ("ListUsers", json!({}), vec![]),
                (
                    "CreateUser",
                    json!({"UserName": "bob"}),
                    vec![arn("arn:aws:iam::123:user/bob")],
                ),
                (
                    "CreateRole",
                    json!({"RoleName": "r", "Path": "/svc/"}),
                    vec![arn("arn:aws:iam::123:role/svc/r")],
                ),
                (
                    "PutUserPolicy",
                    json!({"UserName": "bob"}),
                    vec![User("bob".into())],
                ),
                (
                    "GetRolePolicy",
                    json!({"RoleName": "r"}),
                    vec![Role("r".into())],
                ),
            ],
        );
        assert!(request_resources("sts", "GetCallerIdentity", &json!({}), S).is_empty());
    }

    #[test]
    fn request_tags_in_every_shape() {
        let want = vec![("team".to_owned(), "web".to_owned())];
        for p in [
            json!({"Tags": {"member": [{"Key": "team", "Value": "web"}]}}),
            json!({"Tags": [{"Key": "team", "Value": "web"}]}),
            json!({"tags": [{"key": "team", "value": "web"}]}),
            json!({"tags": {"team": "web"}}),
        ] {
            assert_eq!(request_tags(&p), want, "{p}");
        }
        assert!(request_tags(&json!({"Name": "x"})).is_empty());
    }
}
