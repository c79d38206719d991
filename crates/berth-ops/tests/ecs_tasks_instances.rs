//! Container instances (RegisterContainerInstance and berth's agent registration,
//! Describe/List/Deregister, UpdateContainerInstancesState, attributes) and tasks (RunTask,
//! StartTask, StopTask, DescribeTasks, ListTasks, GetTaskLogsEndpoint) against the in-memory
//! store.

mod support;

use berth_model::ErrorCode;
use berth_ops::ecs::{instances, tasks};
use berth_ops::Ctx;
use serde_json::{json, Value};
use support::{agent, cluster, code, env, host, ok, req, run_task, strings, taskdef, taskdef_body};

async fn describe_instance(ctx: &Ctx, cluster: &str, arn: &str) -> Value {
    let out = ok(instances::describe(
        ctx,
        req(json!({"cluster": cluster, "containerInstances": [arn], "include": ["TAGS"]})),
    )
    .await);
    out["containerInstances"][0].clone()
}

async fn list_instances(ctx: &Ctx, body: Value) -> Vec<String> {
    strings(&ok(instances::list(ctx, req(body)).await)["containerInstanceArns"])
}

async fn describe_task(ctx: &Ctx, cluster: &str, arn: &str) -> Value {
    let out = ok(tasks::describe(ctx, req(json!({"cluster": cluster, "tasks": [arn]}))).await);
    out["tasks"][0].clone()
}

async fn list_tasks(ctx: &Ctx, body: Value) -> Vec<String> {
    strings(&ok(tasks::list(ctx, req(body)).await)["taskArns"])
}

fn arn(v: &Value, field: &str) -> String {
    v[field].as_str().expect("an ARN").to_owned()
}

// ---------------------------------------------------------------------------------------------
// Container instances

#[tokio::test]
async fn an_agent_registers_its_host_as_an_active_instance() {
    let env = env();
    cluster(&env.ctx, "c").await;
    let reg = agent(&env, "c").await;
    assert!(reg
        .instance_arn
        .ends_with(&format!(":container-instance/c/{}", reg.instance_id)));
    let i = describe_instance(&env.ctx, "c", &reg.instance_arn).await;
    assert_eq!(i["status"], "ACTIVE");
    assert_eq!(i["agentConnected"], true);
    assert_eq!(i["registeredResources"][1]["integerValue"], 4096);
    assert_eq!(
        list_instances(&env.ctx, json!({"cluster": "c"})).await,
        [reg.instance_arn]
    );
}

/// RegisterContainerInstance racing DeleteCluster: never both, or an ACTIVE instance would be
/// left in an INACTIVE cluster (the instance write now rewrites the cluster record).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_instance_is_never_registered_in_a_deleted_cluster() {
    let env = env();
    for i in 0..30 {
        let name = format!("c{i}");
        cluster(&env.ctx, &name).await;
        let (ops, c2) = (env.ops.clone(), env.ctx());
        let h = host(&name, &[]);
        let register = tokio::spawn(async move { berth_ops::agent::register(&ops, &h).await });
        let del = json!({"cluster": name});
        let delete =
            tokio::spawn(async move { berth_ops::ecs::clusters::delete(&c2, req(del)).await });
        let (registered, deleted) = (register.await.expect("ends"), delete.await.expect("ends"));
        assert!(
            !(registered.is_ok() && deleted.is_ok()),
            "round {i}: both succeeded"
        );
    }
}

#[tokio::test]
async fn registering_needs_an_active_cluster() {
    let env = env();
    let e = code(berth_ops::agent::register(&env.ops, &host("ghost", &[])).await);
    assert_eq!(e, ErrorCode::ClusterNotFoundException);
    let e = code(instances::register(&env.ctx, req(json!({"cluster": "ghost"}))).await);
    assert_eq!(e, ErrorCode::ClusterNotFoundException);
}

#[tokio::test]
async fn an_agent_that_registers_again_keeps_its_identity() {
    let env = env();
    cluster(&env.ctx, "c").await;
    let first = agent(&env, "c").await;
    let mut again = host("c", &[("zone", "b")]);
    again.instance_id = Some(first.instance_id.clone());
    again.resources.memory = 8192;
    let second = ok(berth_ops::agent::register(&env.ops, &again).await);
    assert_eq!(second.instance_arn, first.instance_arn);
    let i = describe_instance(&env.ctx, "c", &first.instance_id).await;
    assert_eq!(i["registeredResources"][1]["integerValue"], 8192);
    assert!(i["attributes"]
        .as_array()
        .expect("attributes")
        .contains(&json!({"name": "zone", "value": "b"})));
    assert_eq!(
        list_instances(&env.ctx, json!({"cluster": "c"}))
            .await
            .len(),
        1
    );
}

#[tokio::test]
async fn register_container_instance_through_the_api() {
    let env = env();
    cluster(&env.ctx, "c").await;
    let total = json!([
        {"name": "CPU", "type": "INTEGER", "integerValue": 4096},
        {"name": "MEMORY", "type": "INTEGER", "integerValue": 7680},
        {"name": "PORTS", "type": "STRINGSET", "stringSetValue": ["22"]},
    ]);
    let doc = json!({"instanceId": "i-0123456789abcdef0"}).to_string();
    let out = ok(instances::register(
        &env.ctx,
        req(
            json!({"cluster": "c", "totalResources": total, "instanceIdentityDocument": doc,
                   "attributes": [{"name": "rack", "value": "r1"}],
                   "tags": [{"key": "k", "value": "v"}]}),
        ),
    )
    .await);
    let ci = &out["containerInstance"];
    assert_eq!(ci["ec2InstanceId"], "i-0123456789abcdef0");
    assert_eq!(ci["tags"], json!([{"key": "k", "value": "v"}]));
    let a = arn(ci, "containerInstanceArn");
    // Registering under its ARN renews it in place.
    let again = ok(instances::register(
        &env.ctx,
        req(json!({"cluster": "c", "totalResources": total, "containerInstanceArn": a})),
    )
    .await);
    assert_eq!(again["containerInstance"]["containerInstanceArn"], a);
    let e = code(instances::register(
        &env.ctx,
        req(json!({"cluster": "c", "totalResources": [{"name": "CPU", "integerValue": "lots"}]})),
    )
    .await);
    assert_eq!(e, ErrorCode::InvalidParameterException);
}

#[tokio::test]
async fn describe_instances_reports_missing_ones_and_checks_its_input() {
    let env = env();
    cluster(&env.ctx, "c").await;
    let missing = "0".repeat(32);
    let out = ok(instances::describe(
        &env.ctx,
        req(json!({"cluster": "c", "containerInstances": [missing]})),
    )
    .await);
    assert_eq!(out["containerInstances"], json!([]));
    assert_eq!(out["failures"][0]["reason"], "MISSING");
    let e = code(
        instances::describe(
            &env.ctx,
            req(json!({"cluster": "c", "containerInstances": []})),
        )
        .await,
    );
    assert_eq!(e, ErrorCode::InvalidParameterException);
    let e = code(
        instances::describe(
            &env.ctx,
            req(json!({"cluster": "c", "containerInstances": ["bad/id"]})),
        )
        .await,
    );
    assert_eq!(e, ErrorCode::InvalidParameterException);
    // An ARN's id follows the same rule as a bare id.
    let bad_arn = "arn:aws:ecs:us-east-1:000000000000:container-instance/c/a b";
    let e = code(
        instances::describe(
            &env.ctx,
            req(json!({"cluster": "c", "containerInstances": [bad_arn]})),
        )
        .await,
    );
    assert_eq!(e, ErrorCode::InvalidParameterException);
    let e = code(
        instances::describe(
            &env.ctx,
            req(json!({"cluster": "no", "containerInstances": ["a"]})),
        )
        .await,
    );
    assert_eq!(e, ErrorCode::ClusterNotFoundException);
}

#[tokio::test]
async fn an_agent_that_stops_polling_shows_disconnected() {
    let env = env();
    cluster(&env.ctx, "c").await;
    let reg = agent(&env, "c").await;
    env.clock.advance(31.0);
    let i = describe_instance(&env.ctx, "c", &reg.instance_arn).await;
    assert_eq!(i["agentConnected"], false);
    // A disconnected host gets no tasks.
    let td = taskdef(&env.ctx, "web").await;
    let out = ok(tasks::run(&env.ctx, req(json!({"cluster": "c", "taskDefinition": td}))).await);
    assert_eq!(out["tasks"], json!([]));
    assert_eq!(out["failures"][0]["reason"], "AGENT");
}

#[tokio::test]
async fn draining_instances_get_no_new_tasks() {
    let env = env();
    cluster(&env.ctx, "c").await;
    let (a, b) = (agent(&env, "c").await, agent(&env, "c").await);
    let out = ok(instances::update_state(
        &env.ctx,
        req(json!({"cluster": "c", "containerInstances": [a.instance_arn], "status": "DRAINING"})),
    )
    .await);
    assert_eq!(out["containerInstances"][0]["status"], "DRAINING");
    assert_eq!(
        list_instances(&env.ctx, json!({"cluster": "c", "status": "DRAINING"})).await,
        [a.instance_arn.as_str()]
    );
    let td = taskdef(&env.ctx, "web").await;
    let run = ok(tasks::run(
        &env.ctx,
        req(json!({"cluster": "c", "taskDefinition": td, "count": 4})),
    )
    .await);
    let placed: Vec<String> = run["tasks"]
        .as_array()
        .expect("tasks")
        .iter()
        .map(|t| arn(t, "containerInstanceArn"))
        .collect();
    assert_eq!(placed, vec![b.instance_arn.clone(); 4]);
    // Back to ACTIVE; INACTIVE is not a state to set; an unknown instance is a failure.
    let back = ok(instances::update_state(
        &env.ctx,
        req(json!({"cluster": "c", "containerInstances": [a.instance_id, "0".repeat(32)], "status": "ACTIVE"})),
    )
    .await);
    assert_eq!(back["containerInstances"][0]["status"], "ACTIVE");
    assert_eq!(back["failures"][0]["reason"], "MISSING");
    let e = code(instances::update_state(
        &env.ctx,
        req(json!({"cluster": "c", "containerInstances": [a.instance_arn], "status": "INACTIVE"})),
    )
    .await);
    assert_eq!(e, ErrorCode::InvalidParameterException);
}

#[tokio::test]
async fn list_instances_filters_by_expression_and_pages() {
    let env = env();
    cluster(&env.ctx, "c").await;
    let mut arns = Vec::new();
    for zone in ["a", "b", "c"] {
        let r = ok(berth_ops::agent::register(&env.ops, &host("c", &[("zone", zone)])).await);
        arns.push(r.instance_arn);
    }
    let ls = |f: &str| list_instances(&env.ctx, json!({"cluster": "c", "filter": f}));
    assert_eq!(ls("attribute:zone == a").await, [arns[0].clone()]);
    assert_eq!(ls("attribute:zone == z").await, Vec::<String>::new());
    let e = code(
        instances::list(
            &env.ctx,
            req(json!({"cluster": "c", "filter": "attribute:zone =="})),
        )
        .await,
    );
    assert_eq!(e, ErrorCode::InvalidParameterException);
    let first = ok(instances::list(&env.ctx, req(json!({"cluster": "c", "maxResults": 2}))).await);
    let token = first["nextToken"].as_str().expect("a token");
    let rest = ok(instances::list(
        &env.ctx,
        req(json!({"cluster": "c", "maxResults": 2, "nextToken": token})),
    )
    .await);
    let mut all = strings(&first["containerInstanceArns"]);
    all.extend(strings(&rest["containerInstanceArns"]));
    all.sort();
    arns.sort();
    assert_eq!(all, arns);
}

#[tokio::test]
async fn put_list_and_delete_attributes() {
    let env = env();
    cluster(&env.ctx, "c").await;
    let (a, b) = (agent(&env, "c").await, agent(&env, "c").await);
    ok(instances::put_attributes(
        &env.ctx,
        req(json!({"cluster": "c", "attributes": [
            {"name": "color", "value": "blue", "targetType": "container-instance", "targetId": a.instance_arn},
            {"name": "color", "value": "red", "targetId": b.instance_id},
        ]})),
    )
    .await);
    let listed = |v: Value| instances::list_attributes(&env.ctx, req(v));
    let blue = ok(
        listed(json!({"cluster": "c", "targetType": "container-instance",
        "attributeName": "color", "attributeValue": "blue"}))
        .await,
    );
    assert_eq!(blue["attributes"].as_array().expect("attributes").len(), 1);
    assert_eq!(blue["attributes"][0]["targetId"], a.instance_arn);
    ok(instances::delete_attributes(
        &env.ctx,
        req(json!({"cluster": "c", "attributes": [{"name": "color", "targetId": a.instance_id}]})),
    )
    .await);
    let colors = ok(listed(
        json!({"cluster": "c", "targetType": "container-instance", "attributeName": "color"}),
    )
    .await);
    assert_eq!(
        colors["attributes"].as_array().expect("attributes").len(),
        1
    );
    assert_eq!(colors["attributes"][0]["value"], "red");
    let e = code(listed(json!({"cluster": "c", "targetType": "task"})).await);
    assert_eq!(e, ErrorCode::InvalidParameterException);
    let e = code(instances::put_attributes(
        &env.ctx,
        req(json!({"cluster": "c", "attributes": [{"name": "x", "value": "y", "targetId": "0".repeat(32)}]})),
    )
    .await);
    assert_eq!(e, ErrorCode::TargetNotFoundException);
}

#[tokio::test]
async fn an_instance_holds_at_most_ten_custom_attributes() {
    let env = env();
    cluster(&env.ctx, "c").await;
    let a = agent(&env, "c").await;
    let put = |names: Vec<String>| {
        let attrs: Vec<Value> = names
            .iter()
            .map(|n| json!({"name": n, "value": "v", "targetId": a.instance_id}))
            .collect();
        instances::put_attributes(&env.ctx, req(json!({"cluster": "c", "attributes": attrs})))
    };
    ok(put((0..10).map(|i| format!("a{i}")).collect()).await);
    let e = code(put(vec!["one-more".into()]).await);
    assert_eq!(e, ErrorCode::AttributeLimitExceededException);
    let e = code(put((0..11).map(|i| format!("b{i}")).collect()).await);
    assert_eq!(
        e,
        ErrorCode::InvalidParameterException,
        "at most 10 per request"
    );
}

#[tokio::test]
async fn deregistering_a_busy_instance_needs_force_and_stops_its_tasks() {
    let env = env();
    cluster(&env.ctx, "c").await;
    let a = agent(&env, "c").await;
    let td = taskdef(&env.ctx, "web").await;
    let task = run_task(&env.ctx, "c", &td).await;
    let dereg = |force: bool| {
        instances::deregister(
            &env.ctx,
            req(json!({"cluster": "c", "containerInstance": a.instance_arn, "force": force})),
        )
    };
    assert_eq!(code(dereg(false).await), ErrorCode::ClientException);
    let out = ok(dereg(true).await);
    assert_eq!(out["containerInstance"]["status"], "INACTIVE");
    let t = describe_task(&env.ctx, "c", &arn(&task, "taskArn")).await;
    assert_eq!(
        (t["lastStatus"].as_str(), t["desiredStatus"].as_str()),
        (Some("STOPPED"), Some("STOPPED"))
    );
    assert_eq!(
        list_instances(&env.ctx, json!({"cluster": "c"})).await,
        Vec::<String>::new()
    );
    assert_eq!(
        list_instances(&env.ctx, json!({"cluster": "c", "status": "INACTIVE"})).await,
        [a.instance_arn.as_str()]
    );
    // Deregistration is final: a second one finds nothing, and the cluster can go.
    assert_eq!(
        code(dereg(true).await),
        ErrorCode::InvalidParameterException
    );
    ok(berth_ops::ecs::clusters::delete(&env.ctx, req(json!({"cluster": "c"}))).await);
}

#[tokio::test]
async fn an_idle_instance_deregisters_without_force() {
    let env = env();
    cluster(&env.ctx, "c").await;
    let a = agent(&env, "c").await;
    let out = ok(instances::deregister(
        &env.ctx,
        req(json!({"cluster": "c", "containerInstance": a.instance_id})),
    )
    .await);
    assert_eq!(out["containerInstance"]["status"], "INACTIVE");
    assert_eq!(out["containerInstance"]["agentConnected"], false);
}

// ---------------------------------------------------------------------------------------------
// Tasks

#[tokio::test]
async fn run_task_places_a_pending_task_on_a_registered_instance() {
    let env = env();
    cluster(&env.ctx, "c").await;
    let a = agent(&env, "c").await;
    let td = taskdef(&env.ctx, "web").await;
    let t = run_task(&env.ctx, "c", &td).await;
    assert_eq!(t["containerInstanceArn"], a.instance_arn);
    assert_eq!(t["taskDefinitionArn"], td);
    assert_eq!(t["lastStatus"], "PROVISIONING");
    assert_eq!(t["desiredStatus"], "RUNNING");
    assert_eq!(t["group"], "family:web");
    let task_arn = arn(&t, "taskArn");
    assert_eq!(
        list_tasks(&env.ctx, json!({"cluster": "c"})).await,
        [task_arn.as_str()]
    );
    let i = describe_instance(&env.ctx, "c", &a.instance_arn).await;
    assert_eq!(i["pendingTasksCount"], 1);
    assert_eq!(i["remainingResources"][1]["integerValue"], 4096 - 64);
}

#[tokio::test]
async fn run_task_checks_its_request() {
    let env = env();
    cluster(&env.ctx, "c").await;
    let td = taskdef(&env.ctx, "web").await;
    let run = |v: Value| tasks::run(&env.ctx, req(v));
    let e = code(run(json!({"cluster": "c", "taskDefinition": td})).await);
    assert_eq!(
        e,
        ErrorCode::InvalidParameterException,
        "no container instances yet"
    );
    agent(&env, "c").await;
    for (body, want) in [
        (
            json!({"cluster": "c", "taskDefinition": td, "count": 0}),
            ErrorCode::InvalidParameterException,
        ),
        (
            json!({"cluster": "c", "taskDefinition": td, "count": 11}),
            ErrorCode::InvalidParameterException,
        ),
        (
            json!({"cluster": "c", "taskDefinition": td, "launchType": "FARGATE"}),
            ErrorCode::InvalidParameterException,
        ),
        (
            json!({"cluster": "c", "taskDefinition": td, "placementStrategy": [{"type": "sideways"}]}),
            ErrorCode::InvalidParameterException,
        ),
        (
            json!({"cluster": "c", "taskDefinition": "nope:1"}),
            ErrorCode::ClientException,
        ),
        (
            json!({"cluster": "ghost", "taskDefinition": td}),
            ErrorCode::ClusterNotFoundException,
        ),
    ] {
        assert_eq!(code(run(body.clone()).await), want, "{body}");
    }
    berth_ops::ecs::taskdefs::deregister(&env.ctx, req(json!({"taskDefinition": td})))
        .await
        .expect("deregisters");
    let e = code(run(json!({"cluster": "c", "taskDefinition": td})).await);
    assert_eq!(
        e,
        ErrorCode::ClientException,
        "an INACTIVE definition does not run"
    );
}

#[tokio::test]
async fn a_task_too_big_for_every_host_comes_back_as_a_failure() {
    let env = env();
    cluster(&env.ctx, "c").await;
    agent(&env, "c").await;
    ok(berth_ops::ecs::taskdefs::register(&env.ctx, &taskdef_body("big", 100_000)).await);
    let out = ok(tasks::run(
        &env.ctx,
        req(json!({"cluster": "c", "taskDefinition": "big"})),
    )
    .await);
    assert_eq!(out["tasks"], json!([]));
    assert_eq!(out["failures"][0]["reason"], "RESOURCE:MEMORY");
}

#[tokio::test]
async fn a_client_token_makes_run_task_idempotent() {
    let env = env();
    cluster(&env.ctx, "c").await;
    agent(&env, "c").await;
    let td = taskdef(&env.ctx, "web").await;
    let body = json!({"cluster": "c", "taskDefinition": td, "count": 2, "clientToken": "tok"});
    let first = ok(tasks::run(&env.ctx, req(body.clone())).await);
    let again = ok(tasks::run(&env.ctx, req(body)).await);
    let arns = |v: &Value| -> Vec<String> {
        v["tasks"]
            .as_array()
            .expect("tasks")
            .iter()
            .map(|t| arn(t, "taskArn"))
            .collect()
    };
    assert_eq!(arns(&first), arns(&again));
    assert_eq!(list_tasks(&env.ctx, json!({"cluster": "c"})).await.len(), 2);
}

#[tokio::test]
async fn start_task_puts_one_task_on_each_named_instance() {
    let env = env();
    cluster(&env.ctx, "c").await;
    let (a, b) = (agent(&env, "c").await, agent(&env, "c").await);
    let td = taskdef(&env.ctx, "web").await;
    let out = ok(tasks::start(
        &env.ctx,
        req(json!({"cluster": "c", "taskDefinition": td, "containerInstances": [b.instance_arn, "0".repeat(32)],
                   "startedBy": "me"})),
    )
    .await);
    assert_eq!(out["tasks"].as_array().expect("tasks").len(), 1);
    assert_eq!(out["tasks"][0]["containerInstanceArn"], b.instance_arn);
    assert_eq!(out["failures"][0]["reason"], "MISSING");
    assert_eq!(
        list_tasks(
            &env.ctx,
            json!({"cluster": "c", "containerInstance": a.instance_arn})
        )
        .await,
        Vec::<String>::new()
    );
    let e = code(
        tasks::start(
            &env.ctx,
            req(json!({"cluster": "c", "taskDefinition": td, "containerInstances": []})),
        )
        .await,
    );
    assert_eq!(e, ErrorCode::InvalidParameterException);
}

#[tokio::test]
async fn stop_task_asks_the_task_to_stop() {
    let env = env();
    cluster(&env.ctx, "c").await;
    agent(&env, "c").await;
    let td = taskdef(&env.ctx, "web").await;
    let task_arn = arn(&run_task(&env.ctx, "c", &td).await, "taskArn");
    let out = ok(tasks::stop(
        &env.ctx,
        req(json!({"cluster": "c", "task": task_arn, "reason": "done"})),
    )
    .await);
    assert_eq!(out["task"]["desiredStatus"], "STOPPED");
    assert_eq!(out["task"]["stopCode"], "UserInitiated");
    assert_eq!(out["task"]["stoppedReason"], "done");
    assert_eq!(
        list_tasks(&env.ctx, json!({"cluster": "c"})).await,
        Vec::<String>::new()
    );
    assert_eq!(
        list_tasks(
            &env.ctx,
            json!({"cluster": "c", "desiredStatus": "STOPPED"})
        )
        .await,
        [task_arn.as_str()]
    );
    // Stopping again keeps the first reason.
    let again = ok(tasks::stop(
        &env.ctx,
        req(json!({"cluster": "c", "task": task_arn, "reason": "twice"})),
    )
    .await);
    assert_eq!(again["task"]["stoppedReason"], "done");
    let e = code(
        tasks::stop(
            &env.ctx,
            req(json!({"cluster": "c", "task": "0".repeat(32)})),
        )
        .await,
    );
    assert_eq!(e, ErrorCode::InvalidParameterException);
    let e = code(
        tasks::stop(
            &env.ctx,
            req(json!({"cluster": "c", "task": task_arn, "reason": "r".repeat(256)})),
        )
        .await,
    );
    assert_eq!(e, ErrorCode::InvalidParameterException);
}

#[tokio::test]
async fn describe_tasks_by_id_and_arn_reports_missing_ones() {
    let env = env();
    cluster(&env.ctx, "c").await;
    agent(&env, "c").await;
    let td = taskdef(&env.ctx, "web").await;
    let task_arn = arn(&run_task(&env.ctx, "c", &td).await, "taskArn");
    let id = task_arn.rsplit('/').next().expect("an id");
    let missing = "0".repeat(32);
    let out = ok(tasks::describe(
        &env.ctx,
        req(json!({"cluster": "c", "tasks": [id, missing]})),
    )
    .await);
    assert_eq!(out["tasks"][0]["taskArn"], task_arn);
    assert_eq!(
        out["failures"],
        json!([{"arn": format!("arn:aws:ecs:us-east-1:000000000000:task/c/{missing}"), "reason": "MISSING"}])
    );
    let many: Vec<String> = (0..101).map(|i| format!("t{i}")).collect();
    let e = code(tasks::describe(&env.ctx, req(json!({"cluster": "c", "tasks": many}))).await);
    assert_eq!(e, ErrorCode::InvalidParameterException);
}

#[tokio::test]
async fn list_tasks_filters_and_pages() {
    let env = env();
    cluster(&env.ctx, "c").await;
    agent(&env, "c").await;
    let (a, b) = (
        taskdef(&env.ctx, "fam-a").await,
        taskdef(&env.ctx, "fam-b").await,
    );
    let five = ok(tasks::run(
        &env.ctx,
        req(json!({"cluster": "c", "taskDefinition": a, "count": 5, "startedBy": "me"})),
    )
    .await);
    run_task(&env.ctx, "c", &b).await;
    let mut mine: Vec<String> = five["tasks"]
        .as_array()
        .expect("tasks")
        .iter()
        .map(|t| arn(t, "taskArn"))
        .collect();
    mine.sort();
    let ls = |v: Value| list_tasks(&env.ctx, v);
    let mut by_family = ls(json!({"cluster": "c", "family": "fam-a"})).await;
    by_family.sort();
    assert_eq!(by_family, mine);
    assert_eq!(
        ls(json!({"cluster": "c", "startedBy": "me"})).await.len(),
        5
    );
    assert_eq!(
        ls(json!({"cluster": "c", "serviceName": "none"})).await,
        Vec::<String>::new()
    );
    assert_eq!(
        ls(json!({"cluster": "c", "launchType": "FARGATE"})).await,
        Vec::<String>::new()
    );
    let (mut seen, mut token, mut pages) = (Vec::new(), None::<String>, 0);
    loop {
        let out = ok(tasks::list(
            &env.ctx,
            req(json!({"cluster": "c", "family": "fam-a", "maxResults": 2, "nextToken": token})),
        )
        .await);
        seen.extend(strings(&out["taskArns"]));
        pages += 1;
        match out["nextToken"].as_str() {
            Some(t) => token = Some(t.to_owned()),
            None => break,
        }
    }
    seen.sort();
    assert_eq!((pages, seen), (3, mine));
    let e = code(
        tasks::list(
            &env.ctx,
            req(json!({"cluster": "c", "desiredStatus": "BOGUS"})),
        )
        .await,
    );
    assert_eq!(e, ErrorCode::InvalidParameterException);
    let e = code(tasks::list(&env.ctx, req(json!({"cluster": "ghost"}))).await);
    assert_eq!(e, ErrorCode::ClusterNotFoundException);
}

#[tokio::test]
async fn the_logs_endpoint_is_the_tasks_agent() {
    let env = env();
    cluster(&env.ctx, "c").await;
    let host = agent(&env, "c").await;
    let td = taskdef(&env.ctx, "web").await;
    let task_arn = arn(&run_task(&env.ctx, "c", &td).await, "taskArn");
    let out =
        ok(tasks::logs_endpoint(&env.ctx, req(json!({"cluster": "c", "task": task_arn}))).await);
    assert_eq!(out["endpoint"], "127.0.0.1:9999");
    // The token is that instance's own: another agent's logs token does not open it.
    assert_eq!(
        out["token"],
        berth_ops::logs_token(support::SECRET, "c", &host.instance_id)
    );
    assert_ne!(
        out["token"],
        berth_ops::logs_token(support::SECRET, "c", "other")
    );
    assert_eq!(out["containers"], json!(["app"]));
    let e = code(
        tasks::logs_endpoint(
            &env.ctx,
            req(json!({"cluster": "c", "task": "0".repeat(32)})),
        )
        .await,
    );
    assert_eq!(e, ErrorCode::InvalidParameterException);
}
