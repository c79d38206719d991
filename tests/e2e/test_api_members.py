"""Request members of RunTask, StartTask, CreateService and UpdateService whose effect no other
e2e file shows: task tags from `propagateTags` and `enableECSManagedTags`, `group`, a
`memoryReservation` override, StartTask's members, and UpdateService's placement and tag
members. `test_api_coverage.py` points at these tests by name.

`berth up --driver process` plus a second process-driver agent (attribute `role=extra`), so
placement has two hosts to choose from: tasks are shell loops, stopped (and waited for) after
each test.
"""
import pytest

from conftest import (
    Agent, Berth, delete_services_and_wait, join_token, register, run_one, uniq, wait_for,
    wait_task,
)

SLEEP = "trap 'exit 0' TERM; while :; do sleep 0.2; done"


@pytest.fixture(scope="module")
def berth(fresh_module_dir):
    b = Berth(fresh_module_dir, args=["--driver", "process", "--agent-timeout", "3"]).start()
    yield b
    b.stop()


@pytest.fixture(scope="module")
def fresh_module_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("members"))


@pytest.fixture(scope="module")
def ecs(berth):
    c = berth.client()
    wait_for(lambda: c.list_container_instances(cluster="default")["containerInstanceArns"],
             what="the local agent")
    return c


@pytest.fixture(scope="module")
def hosts(berth, ecs, fresh_module_dir):
    """The local agent's instance and a second host's (attribute role=extra)."""
    a = Agent(berth, fresh_module_dir + "/extra", join_token(berth), attributes=["role=extra"]).start()
    extra = a.wait_registered(ecs)
    [local] = [i for i in ecs.list_container_instances(cluster="default")["containerInstanceArns"]
               if i != extra]
    yield local, extra
    delete_services_and_wait(ecs)
    a.stop()


@pytest.fixture(autouse=True)
def nothing_left(ecs, hosts):
    yield
    for t in ecs.list_tasks(cluster="default")["taskArns"]:
        ecs.stop_task(cluster="default", task=t)
    delete_services_and_wait(ecs)


def sleeper(ecs, **kw):
    c = {"name": "app", "image": "busybox", "memory": 32, "stopTimeout": 2,
         "command": ["sh", "-c", SLEEP]}
    return register(ecs, uniq("mem"), [c], tags=[{"key": "owner", "value": "td"}],
                    **kw)["taskDefinition"]["taskDefinitionArn"]


def tags_of(ecs, arn):
    t = ecs.describe_tasks(cluster="default", tasks=[arn], include=["TAGS"])["tasks"][0]
    return {x["key"]: x["value"] for x in t.get("tags", [])}


def test_run_task_tags_group_and_overrides(ecs):
    td = sleeper(ecs)
    t = run_one(ecs, td, group="grp-x", tags=[{"key": "k", "value": "v"}],
                propagateTags="TASK_DEFINITION", enableECSManagedTags=True,
                overrides={"containerOverrides": [{"name": "app", "memoryReservation": 24}]})
    assert t["group"] == "grp-x"
    assert t["containers"][0]["memoryReservation"] == "24"
    assert tags_of(ecs, t["taskArn"]) == {"k": "v", "owner": "td", "aws:ecs:clusterName": "default"}
    # Without them: only the request's tags.
    t2 = run_one(ecs, td, tags=[{"key": "k", "value": "v"}], propagateTags="NONE")
    assert tags_of(ecs, t2["taskArn"]) == {"k": "v"}
    assert t2["group"] == "family:" + td.split("/")[-1].split(":")[0]
    # SERVICE propagation is for services only.
    with pytest.raises(ecs.exceptions.InvalidParameterException, match="propagateTags"):
        ecs.run_task(cluster="default", taskDefinition=td, propagateTags="SERVICE")


def test_start_task_members(ecs, hosts):
    td = sleeper(ecs)
    host, _ = hosts
    r = ecs.start_task(cluster="default", taskDefinition=td, containerInstances=[host],
                       group="st-grp", startedBy="st-who", tags=[{"key": "k", "value": "v"}],
                       propagateTags="TASK_DEFINITION", enableECSManagedTags=True,
                       overrides={"containerOverrides": [{"name": "app", "memory": 40}]})
    assert not r["failures"]
    [t] = r["tasks"]
    assert t["containerInstanceArn"] == host
    assert t["group"] == "st-grp" and t["startedBy"] == "st-who"
    assert t["containers"][0]["memory"] == "40"
    assert tags_of(ecs, t["taskArn"]) == {"k": "v", "owner": "td", "aws:ecs:clusterName": "default"}
    wait_task(ecs, t["taskArn"], "RUNNING")


def service_task_tags(ecs, name, exclude=()):
    def one():
        arns = [a for a in ecs.list_tasks(cluster="default", serviceName=name)["taskArns"]
                if a not in exclude]
        return arns and tags_of(ecs, arns[0])
    return wait_for(one, timeout=30, what=f"a task of {name}")


def test_service_tag_members_on_create_and_update(ecs):
    td = sleeper(ecs)
    name = uniq("tagsvc")
    ecs.create_service(cluster="default", serviceName=name, taskDefinition=td, desiredCount=1,
                       tags=[{"key": "svc", "value": "1"}], propagateTags="TASK_DEFINITION",
                       enableECSManagedTags=True)
    assert service_task_tags(ecs, name) == {
        "owner": "td", "aws:ecs:clusterName": "default", "aws:ecs:serviceName": name}
    first = set(ecs.list_tasks(cluster="default", serviceName=name)["taskArns"])
    s = ecs.update_service(cluster="default", service=name, propagateTags="SERVICE",
                           enableECSManagedTags=False, forceNewDeployment=True)["service"]
    assert s["propagateTags"] == "SERVICE" and s["enableECSManagedTags"] is False
    assert service_task_tags(ecs, name, exclude=first) == {"svc": "1"}


def instances_of(ecs, name, count):
    def placed():
        arns = ecs.list_tasks(cluster="default", serviceName=name)["taskArns"]
        if len(arns) != count:
            return None
        ts = ecs.describe_tasks(cluster="default", tasks=arns)["tasks"]
        return all(t["lastStatus"] == "RUNNING" for t in ts) and [t["containerInstanceArn"] for t in ts]
    return wait_for(placed, timeout=30, what=f"{count} tasks of {name} running")


def test_create_service_placement_members(ecs, hosts):
    local, extra = hosts
    td = sleeper(ecs)
    spread = uniq("spread")
    ecs.create_service(cluster="default", serviceName=spread, taskDefinition=td, desiredCount=2,
                       placementStrategy=[{"type": "spread", "field": "instanceId"}])
    assert sorted(instances_of(ecs, spread, 2)) == sorted([local, extra])
    packed = uniq("binpack")
    ecs.create_service(cluster="default", serviceName=packed, taskDefinition=td, desiredCount=2,
                       placementStrategy=[{"type": "binpack", "field": "memory"}])
    assert len(set(instances_of(ecs, packed, 2))) == 1
    member = uniq("member")
    ecs.create_service(cluster="default", serviceName=member, taskDefinition=td, desiredCount=2,
                       placementConstraints=[{"type": "memberOf", "expression": "attribute:role == extra"}])
    assert instances_of(ecs, member, 2) == [extra, extra]


def test_update_service_placement_members(ecs, hosts):
    td = sleeper(ecs)
    name = uniq("place")
    ecs.create_service(cluster="default", serviceName=name, taskDefinition=td, desiredCount=3)
    instances_of(ecs, name, 3)
    first = ecs.describe_services(cluster="default", services=[name])["services"][0]["deployments"][0]["id"]
    s = ecs.update_service(cluster="default", service=name,
                           placementStrategy=[{"type": "binpack", "field": "memory"}],
                           placementConstraints=[{"type": "distinctInstance"}])["service"]
    # A placement change starts a deployment placed by the new rules: on two hosts,
    # distinctInstance lets two of its tasks run, and the service says why the third cannot.
    assert s["deployments"][0]["id"] != first
    assert s["placementStrategy"] == [{"type": "binpack", "field": "memory"}]
    assert s["placementConstraints"] == [{"type": "distinctInstance"}]

    def said_why():
        svc = ecs.describe_services(cluster="default", services=[name])["services"][0]
        return any("unable to place a task" in e["message"] for e in svc["events"])
    wait_for(said_why, timeout=30, what="the service to say it cannot place the third task")
