use super::*;
use crate::model::InstanceView;

fn instance() -> InstanceView {
    let mut i = InstanceView {
        id: "i-abcd1234".into(),
        arn: "arn:aws:ecs:us-east-1:000000000000:container-instance/c/i-abcd1234".into(),
        active: true,
        connected: true,
        registered_at: 1_518_000_000.0, // 2018-02-07T10:40:00Z
        running_tasks: 1,
        agent_version: Some("1.14.4".into()),
        ..InstanceView::default()
    };
    for (k, v) in [
        ("ecs.instance-type", Some("t2.small")),
        ("ecs.availability-zone", Some("us-east-1a")),
        ("ecs.os-type", Some("linux")),
        ("stack", Some("prod")),
        ("cores", Some("16")),
        ("gpu", None),
    ] {
        i.attributes.insert(k.into(), v.map(String::from));
    }
    i.task_groups.insert("service:production".into(), 2);
    i.task_groups.insert("family:old".into(), 0);
    i
}

fn eval(src: &str) -> bool {
    match Expr::parse(src) {
        Ok(e) => e.matches(&instance()),
        Err(e) => panic!("`{src}` should parse: {e}"),
    }
}

fn parse_err(src: &str) -> String {
    match Expr::parse(src) {
        Ok(_) => panic!("`{src}` should not parse"),
        Err(SchedError::InvalidExpression { message, .. }) => message,
        Err(other) => panic!("unexpected error {other:?}"),
    }
}

#[test]
fn documented_examples_parse() {
    for src in [
        "attribute:ecs.instance-type == t2.small",
        "attribute:ecs.availability-zone in [us-east-1a, us-east-1b]",
        "attribute:ecs.instance-type =~ g2.* and attribute:ecs.availability-zone != us-east-1d",
        "task:group == service:production",
        "not(task:group == database)",
        "runningTasksCount == 1",
        "agentVersion < 1.14.5",
        "registeredAt < 2018-02-13",
        "ec2InstanceId in ['i-abcd1234', 'i-wxyx7890']",
        "attribute:stack == prod",
        "attribute:stack != prod",
        "attribute:ecs.instance-type in [t2.small, t2.medium]",
        "attribute:ecs.instance-type =~ t2.* and attribute:ecs.availability-zone == us-east-1a",
        "task:group == databases",
        "(attribute:ecs.instance-type == t2.small or attribute:ecs.instance-type == t2.medium) and attribute:stack exists",
        "agentConnected == false",
        "attribute:ecs.os-type equals linux",
    ] {
        assert!(Expr::parse(src).is_ok(), "{src}");
    }
}

#[test]
fn documented_examples_evaluate() {
    assert!(eval("attribute:ecs.instance-type == t2.small"));
    assert!(eval(
        "attribute:ecs.availability-zone in [us-east-1a, us-east-1b]"
    ));
    assert!(!eval(
        "attribute:ecs.instance-type =~ g2.* and attribute:ecs.availability-zone != us-east-1d"
    ));
    assert!(eval(
        "attribute:ecs.instance-type =~ t2.* and attribute:ecs.availability-zone != us-east-1d"
    ));
    assert!(eval("task:group == service:production"));
    assert!(eval("not(task:group == database)"));
    assert!(eval("runningTasksCount == 1"));
    assert!(eval("agentVersion < 1.14.5"));
    assert!(eval("registeredAt < 2018-02-13"));
    assert!(eval("ec2InstanceId in ['i-abcd1234', 'i-wxyx7890']"));
}

#[test]
fn string_operators() {
    assert!(eval("attribute:stack equals prod"));
    assert!(!eval("attribute:stack not_equals prod"));
    assert!(eval("attribute:stack != staging"));
    assert!(eval("attribute:stack not_in [staging, dev]"));
    assert!(eval("attribute:stack !in [staging, dev]"));
    assert!(!eval("attribute:stack !in [staging, prod]"));
    assert!(
        eval("attribute:stack==prod"),
        "no spaces around the operator"
    );
    assert!(eval("attribute:stack in[prod]"));
    assert!(eval("attribute:stack == 'prod'"));
    assert!(eval("attribute:stack == \"prod\""));
    assert!(
        !eval("attribute:stack == Prod"),
        "values are case-sensitive"
    );
}

#[test]
fn missing_attributes_satisfy_nothing_but_not_exists() {
    for op in [
        "== x",
        "!= x",
        "> 1",
        "< 1",
        "in [x]",
        "not_in [x]",
        "=~ .*",
        "!~ x",
        "exists",
    ] {
        assert!(!eval(&format!("attribute:absent {op}")), "absent {op}");
    }
    assert!(eval("attribute:absent !exists"));
    assert!(eval("attribute:absent not_exists"));
    assert!(eval("not(attribute:absent == x)"));
}

#[test]
fn attributes_without_value() {
    assert!(eval("attribute:gpu exists"));
    assert!(!eval("attribute:gpu !exists"));
    assert!(!eval("attribute:gpu == x"));
    assert!(eval("attribute:gpu != x"));
    assert!(!eval("attribute:gpu in [x]"));
    assert!(eval("attribute:gpu not_in [x]"));
    assert!(!eval("attribute:gpu =~ .*"));
    assert!(eval("attribute:gpu !~ x"));
}

#[test]
fn ordering_is_numeric_when_both_are_numbers() {
    assert!(
        eval("attribute:cores > 8"),
        "16 > 8 numerically, not as strings"
    );
    assert!(eval("attribute:cores >= 16"));
    assert!(eval("attribute:cores <= 16.0"));
    assert!(!eval("attribute:cores < 9"));
    assert!(eval("attribute:cores greater_than 2"));
    assert!(eval("attribute:cores less_than_equal 16"));
    assert!(eval("attribute:stack > pra"), "strings compare lexically");
    assert!(eval("attribute:stack < prp"));
}

#[test]
fn regex_matches_the_whole_value() {
    assert!(eval("attribute:ecs.instance-type =~ t2.*"));
    assert!(eval(
        "attribute:ecs.instance-type matches t2\\.(small|medium)"
    ));
    assert!(
        !eval("attribute:ecs.instance-type =~ t2"),
        "anchored at both ends"
    );
    assert!(!eval("attribute:ecs.instance-type =~ small"));
    assert!(eval("attribute:ecs.instance-type !~ m5.*"));
    assert!(eval("attribute:ecs.instance-type not_matches m5.*"));
    assert!(eval("attribute:ecs.availability-zone =~ us-east-1[abc]"));
    assert!(eval("attribute:ecs.availability-zone =~ '.*-1a'"));
    assert!(eval("attribute:ecs.instance-type =~ (t2|m5)\\..*"));
    assert!(
        eval("attribute:cores =~ \\d+"),
        "\\d is ASCII digits, as in Java"
    );
    assert!(
        parse_err("attribute:stack =~ 'x)|(.*'").contains("unopened group"),
        "a pattern cannot escape its anchors"
    );
    assert!(Expr::parse("attribute:x =~ 'é.*'").is_ok());
}

#[test]
fn boolean_operators_and_precedence() {
    assert!(eval(
        "attribute:stack == prod and attribute:ecs.os-type == linux"
    ));
    assert!(eval(
        "attribute:stack == prod && attribute:ecs.os-type == linux"
    ));
    assert!(!eval(
        "attribute:stack == dev and attribute:ecs.os-type == linux"
    ));
    assert!(eval(
        "attribute:stack == dev or attribute:ecs.os-type == linux"
    ));
    assert!(eval(
        "attribute:stack == dev || attribute:ecs.os-type == linux"
    ));
    // and binds tighter than or: true or (false and false)
    assert!(eval(
        "attribute:stack == prod or attribute:stack == dev and attribute:x == y"
    ));
    // parentheses override: (true or false) and false
    assert!(!eval(
        "(attribute:stack == prod or attribute:stack == dev) and attribute:x == y"
    ));
    assert!(eval("!(attribute:stack == dev)"));
    assert!(eval("not (attribute:stack == dev)"));
    assert!(eval(
        "NOT(attribute:stack == dev) AND attribute:stack == prod"
    ));
    assert!(eval("not not attribute:stack == prod"));
    assert!(eval("((attribute:stack == prod))"));
    assert!(eval(
        "not(task:group == database)and attribute:stack == prod"
    ));
}

#[test]
fn task_group_is_a_set() {
    assert!(eval("task:group == service:production"));
    assert!(
        !eval("task:group == family:old"),
        "groups with zero tasks do not count"
    );
    assert!(eval("task:group != database"));
    assert!(
        !eval("task:group != service:production"),
        "none may equal it"
    );
    assert!(eval("task:group in [database, service:production]"));
    assert!(eval("task:group not_in [database]"));
    assert!(eval("task:group =~ service:.*"));
    assert!(!eval("task:group !~ service:.*"));
    assert!(eval("task:group exists"));
    assert!(!eval("task:group !exists"));
    let empty = InstanceView::default();
    let e = |s: &str| Expr::parse(s).map(|e| e.matches(&empty));
    assert_eq!(e("task:group != database"), Ok(true));
    assert_eq!(e("task:group == database"), Ok(false));
    assert_eq!(e("task:group !exists"), Ok(true));
}

#[test]
fn fixed_subjects() {
    assert!(eval("agentConnected == true"));
    assert!(eval("agentConnected == TRUE"));
    assert!(!eval("agentConnected != true"));
    assert!(eval("agentConnected in [true]"));
    assert!(eval("agentConnected =~ t.*"));
    assert!(eval("agentVersion >= 1.14.4"));
    assert!(eval("agentVersion == 1.14.4"));
    assert!(eval("agentVersion > 1.9.9"), "numeric components");
    assert!(!eval("agentVersion > 1.14.4"));
    assert!(eval("ec2InstanceId == i-abcd1234"));
    assert!(eval("ec2InstanceId =~ i-.*"));
    assert!(eval("runningTasksCount < 2"));
    assert!(eval("runningTasksCount != 0"));
    assert!(eval("runningTasksCount >= 1"));
    assert!(
        eval("runningtaskscount == 1"),
        "fixed subjects are case-insensitive"
    );
    let mut ec2 = instance();
    ec2.attributes
        .insert("ecs.instance-id".into(), Some("i-0123456789abcdef0".into()));
    let e = Expr::parse("ec2InstanceId == i-0123456789abcdef0").expect("parses");
    assert!(
        e.matches(&ec2),
        "the ecs.instance-id attribute wins when present"
    );
    let no_version = InstanceView::default();
    let e = Expr::parse("agentVersion < 99").expect("parses");
    assert!(
        !e.matches(&no_version),
        "an unknown agent version satisfies nothing"
    );
}

#[test]
fn registered_at() {
    // registered 2018-02-07T10:40:00Z
    assert!(eval("registeredAt < 2018-02-13"));
    assert!(eval("registeredAt == 2018-02-07"));
    assert!(eval("registeredAt <= 2018-02-07"));
    assert!(eval("registeredAt >= 2018-02-07"));
    assert!(
        !eval("registeredAt > 2018-02-07"),
        "> a date means after that day"
    );
    assert!(!eval("registeredAt < 2018-02-07"));
    assert!(eval("registeredAt > 2018-02-06"));
    assert!(eval("registeredAt == 2018-02-07T10:40:00Z"));
    assert!(eval("registeredAt == 2018-02-07T11:40:00+01:00"));
    assert!(eval("registeredAt > 2018-02-07T10:39:59"));
    assert!(eval("registeredAt != 2018-02-07T10:40:01"));
}

#[test]
fn invalid_expressions_are_explained() {
    let cases = [
        ("", "empty"),
        ("   ", "empty"),
        ("attribute:stack", "expected an operator"),
        ("attribute:stack ==", "missing argument"),
        ("attribute:stack == prod and", "expected a condition"),
        ("attribute:stack == prod or", "expected a condition"),
        ("attribute:stack = prod", "expected an operator"),
        ("attribute:stack like prod", "expected an operator"),
        ("stack == prod", "unknown subject"),
        (
            "ecs.instance-type == t2.small",
            "attribute:ecs.instance-type",
        ),
        ("attribute: == x", "unknown subject"),
        ("== x", "expected a subject"),
        ("(attribute:stack == prod", "missing `)`"),
        ("attribute:stack == prod)", "unexpected `)`"),
        ("attribute:stack == prod attribute:x == y", "unexpected"),
        ("attribute:stack in prod", "expect a list"),
        ("attribute:stack in []", "empty"),
        ("attribute:stack in [a,]", "empty item"),
        ("attribute:stack in [a, b", "missing `]`"),
        ("attribute:stack in [a b] x", "unexpected"),
        ("attribute:stack == 'prod", "unterminated"),
        ("attribute:stack =~ t2.(", "invalid pattern"),
        ("attribute:stack =~ (?=x)", "invalid pattern"),
        ("runningTasksCount == many", "whole number"),
        (
            "runningTasksCount =~ 1",
            "not valid for `runningTasksCount`",
        ),
        ("runningTasksCount exists", "not valid"),
        ("registeredAt < yesterday", "not a date"),
        ("registeredAt in [2018-01-01]", "not valid"),
        ("agentConnected == yes", "true or false"),
        ("agentConnected > true", "not valid"),
        ("agentVersion =~ 1.*", "not valid"),
        ("agentVersion < latest", "version"),
        ("ec2InstanceId > i-1", "not valid"),
        ("task:group > a", "not valid"),
        ("not", "expected a condition"),
        ("!", "expected a condition"),
        ("attribute:stack == prod &&", "expected a condition"),
    ];
    for (src, needle) in cases {
        let msg = parse_err(src);
        assert!(
            msg.contains(needle),
            "`{src}`: message `{msg}` should mention `{needle}`"
        );
    }
}

#[test]
fn error_positions_point_at_the_problem() {
    match Expr::parse("attribute:a == b and bogus == c") {
        Err(SchedError::InvalidExpression { position, .. }) => assert_eq!(position, 21),
        other => panic!("{other:?}"),
    }
}

#[test]
fn nesting_is_bounded() {
    let deep = format!("{}attribute:a == b{}", "(".repeat(500), ")".repeat(500));
    assert!(parse_err(&deep).contains("nested"));
    let nots = format!("{}attribute:a == b", "not ".repeat(500));
    assert!(parse_err(&nots).contains("nested"));
    let ok = format!("{}attribute:a == b{}", "(".repeat(20), ")".repeat(20));
    assert!(Expr::parse(&ok).is_ok());
}

#[test]
fn long_flat_chains_parse_without_recursion() {
    let long = vec!["attribute:a == b"; 2000].join(" or ");
    assert!(Expr::parse(&long).is_ok());
}

#[test]
fn display_and_serde_keep_the_source() {
    let src = "attribute:ecs.instance-type =~ t2.*";
    let e: Expr = src.parse().expect("parses");
    assert_eq!(e.to_string(), src);
    assert_eq!(e.source(), src);
    let json = serde_json::to_string(&e).expect("serialises");
    assert_eq!(json, format!("\"{src}\""));
    let back: Expr = serde_json::from_str(&json).expect("deserialises");
    assert_eq!(back, e);
    assert!(serde_json::from_str::<Expr>("\"nonsense\"").is_err());
}
