"""Task definitions through boto3 and the aws CLI: Register/Describe/List/ListFamilies/
Deregister/Delete, revision numbering and the fields ECS fills in."""
import datetime
import json
import os
from concurrent.futures import ThreadPoolExecutor

import pytest

from conftest import REGION, container, expect_error, register, uniq

BERTH_AGENT = False  # API-level tests: no local agent needed

ACCOUNT = "000000000000"


def td_arn(family, rev, region=REGION):
    return f"arn:aws:ecs:{region}:{ACCOUNT}:task-definition/{family}:{rev}"


def list_all(ecs, **kw):
    arns, token, pages = [], None, 0
    while True:
        page = ecs.list_task_definitions(**kw, **({"nextToken": token} if token else {}))
        arns += page["taskDefinitionArns"]
        pages += 1
        token = page.get("nextToken")
        if not token:
            return arns, pages


def families_all(ecs, **kw):
    out, token = [], None
    while True:
        page = ecs.list_task_definition_families(**kw, **({"nextToken": token} if token else {}))
        out += page["families"]
        token = page.get("nextToken")
        if not token:
            return out


def test_revisions_count_per_family(ecs):
    a, b = uniq("fam-a"), uniq("fam-b")
    revs_a = [register(ecs, a)["taskDefinition"]["revision"] for _ in range(3)]
    revs_b = [register(ecs, b)["taskDefinition"]["revision"] for _ in range(2)]
    assert revs_a == [1, 2, 3]
    assert revs_b == [1, 2]
    assert register(ecs, a)["taskDefinition"]["taskDefinitionArn"] == td_arn(a, 4)


def test_register_answers_what_ecs_answers(ecs):
    fam = uniq("shape")
    before = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=5)
    r = ecs.register_task_definition(
        family=fam,
        containerDefinitions=[
            {
                "name": "web",
                "image": "nginx:1.27",
                "memory": 128,
                "portMappings": [{"containerPort": 80}],
                "linuxParameters": {"initProcessEnabled": True, "capabilities": {"add": ["NET_ADMIN"]}},
                "ulimits": [{"name": "nofile", "softLimit": 1024, "hardLimit": 4096}],
                "environment": [{"name": "MODE", "value": "prod"}],
            },
            {"name": "sidecar", "image": "busybox", "memory": 32, "essential": False, "command": ["sleep", "1d"]},
        ],
        cpu="1 vCPU",
        memory="1 GB",
        tags=[{"key": "team", "value": "web"}],
        runtimePlatform={"operatingSystemFamily": "LINUX", "cpuArchitecture": "X86_64"},
    )
    td = r["taskDefinition"]
    assert td["taskDefinitionArn"] == td_arn(fam, 1)
    assert td["family"] == fam and td["revision"] == 1
    assert td["status"] == "ACTIVE"
    assert "EC2" in td["compatibilities"]
    assert isinstance(td["registeredAt"], datetime.datetime)
    assert before <= td["registeredAt"] <= datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=5)
    assert td["registeredBy"].startswith(f"arn:aws:iam::{ACCOUNT}:")
    assert td["cpu"] == "1024" and td["memory"] == "1024"
    web, side = td["containerDefinitions"]
    assert web["essential"] is True and side["essential"] is False
    assert web["portMappings"][0]["protocol"] == "tcp"
    assert web["portMappings"][0]["containerPort"] == 80
    assert web["linuxParameters"] == {"initProcessEnabled": True, "capabilities": {"add": ["NET_ADMIN"]}}
    assert web["ulimits"] == [{"name": "nofile", "softLimit": 1024, "hardLimit": 4096}]
    assert web["environment"] == [{"name": "MODE", "value": "prod"}]
    assert side["command"] == ["sleep", "1d"]
    assert td["runtimePlatform"] == {"operatingSystemFamily": "LINUX", "cpuArchitecture": "X86_64"}
    assert "tags" not in td
    assert r["tags"] == [{"key": "team", "value": "web"}]
    assert "deregisteredAt" not in td
    # Describe shows the same record.
    d = ecs.describe_task_definition(taskDefinition=f"{fam}:1")["taskDefinition"]
    assert d == td


@pytest.mark.parametrize(
    "cpu,memory,want",
    [("256", "512", ("256", "512")), ("0.5 vCPU", "1GB", ("512", "1024")), ("2 vcpu", "4 GB", ("2048", "4096"))],
)
def test_fargate_accepts_valid_combinations(ecs, cpu, memory, want):
    td = ecs.register_task_definition(
        family=uniq("fg"),
        requiresCompatibilities=["FARGATE"],
        networkMode="awsvpc",
        cpu=cpu,
        memory=memory,
        containerDefinitions=[{"name": "a", "image": "busybox", "portMappings": [{"containerPort": 8080}]}],
    )["taskDefinition"]
    assert (td["cpu"], td["memory"]) == want
    assert "FARGATE" in td["compatibilities"]
    assert td["requiresCompatibilities"] == ["FARGATE"]
    assert td["networkMode"] == "awsvpc"
    assert td["containerDefinitions"][0]["portMappings"][0]["hostPort"] == 8080


@pytest.mark.parametrize(
    "kw",
    [
        {"networkMode": "bridge", "cpu": "256", "memory": "512"},
        {"cpu": "256", "memory": "4096"},
        {"cpu": "300", "memory": "512"},
        {"cpu": "1024", "memory": "1024"},
        {"memory": "512"},
        {},
    ],
    ids=["bridge", "too-much-memory", "odd-cpu", "too-little-memory", "no-cpu", "no-cpu-memory"],
)
def test_fargate_rejects_invalid_definitions(ecs, kw):
    kw = {"networkMode": "awsvpc", **kw}
    expect_error(
        "ClientException",
        ecs.register_task_definition,
        family=uniq("fgbad"),
        requiresCompatibilities=["FARGATE"],
        containerDefinitions=[{"name": "a", "image": "busybox", "memory": 64}],
        **kw,
    )


@pytest.fixture(scope="module")
def fam3(ecs):
    """A family with revisions 1 (INACTIVE), 2 (ACTIVE), 3 (INACTIVE): latest ACTIVE is 2."""
    fam = uniq("f3")
    for i in range(3):
        register(ecs, fam, [container(environment=[{"name": "REV", "value": str(i + 1)}])],
                 tags=[{"key": "rev", "value": str(i + 1)}])
    ecs.deregister_task_definition(taskDefinition=f"{fam}:1")
    ecs.deregister_task_definition(taskDefinition=f"{fam}:3")
    return fam


def test_describe_family_is_the_latest_active_revision(ecs, fam3):
    td = ecs.describe_task_definition(taskDefinition=fam3)["taskDefinition"]
    assert td["revision"] == 2 and td["status"] == "ACTIVE"


def test_describe_exact_revision_even_inactive(ecs, fam3):
    td = ecs.describe_task_definition(taskDefinition=f"{fam3}:3")["taskDefinition"]
    assert td["revision"] == 3 and td["status"] == "INACTIVE"
    assert isinstance(td["deregisteredAt"], datetime.datetime)
    assert td["containerDefinitions"][0]["environment"] == [{"name": "REV", "value": "3"}]


def test_describe_by_arn_and_tags(ecs, fam3):
    r = ecs.describe_task_definition(taskDefinition=td_arn(fam3, 1))
    assert r["taskDefinition"]["revision"] == 1
    assert "tags" not in r
    r = ecs.describe_task_definition(taskDefinition=td_arn(fam3, 2), include=["TAGS"])
    assert r["tags"] == [{"key": "rev", "value": "2"}]


def test_describe_missing(ecs, fam3):
    expect_error("ClientException", ecs.describe_task_definition, taskDefinition=uniq("nope"))
    expect_error("ClientException", ecs.describe_task_definition, taskDefinition=f"{fam3}:99")
    # Every revision INACTIVE: the family has no latest ACTIVE revision.
    fam = uniq("allgone")
    register(ecs, fam)
    ecs.deregister_task_definition(taskDefinition=f"{fam}:1")
    expect_error("ClientException", ecs.describe_task_definition, taskDefinition=fam)


def test_list_filters_by_family_and_status(ecs, fam3):
    assert list_all(ecs, familyPrefix=fam3)[0] == [td_arn(fam3, 2)]
    assert list_all(ecs, familyPrefix=fam3, status="INACTIVE")[0] == [td_arn(fam3, 1), td_arn(fam3, 3)]
    assert list_all(ecs, familyPrefix=fam3, status="INACTIVE", sort="DESC")[0] == [td_arn(fam3, 3), td_arn(fam3, 1)]
    everything = list_all(ecs)[0]
    assert td_arn(fam3, 2) in everything and td_arn(fam3, 1) not in everything


def test_family_prefix_is_the_whole_family_name(ecs):
    base = uniq("pre")
    register(ecs, base)
    register(ecs, base + "-x")
    register(ecs, base + "x")
    assert list_all(ecs, familyPrefix=base)[0] == [td_arn(base, 1)]
    assert list_all(ecs, familyPrefix=base[:-1])[0] == []


def test_list_sorts_by_family_name_then_revision(ecs):
    # ECS: ASC lists "lexicographically by family name and in ascending numerical order by
    # revision"; DESC reverses both. `web` sorts before `web-2`, and 10 after 9.
    base = uniq("sort")
    fams = [base, base + "-2", base + "_3", base + "a"]
    for f in fams:
        register(ecs, f)
    for _ in range(10):
        register(ecs, base)
    want = [td_arn(base, r) for r in range(1, 12)] + [td_arn(f, 1) for f in sorted(fams[1:])]
    mine = [a for a in list_all(ecs, maxResults=3)[0] if a.split("/")[1].split(":")[0] in fams]
    assert mine == want
    mine_desc = [a for a in list_all(ecs, sort="DESC", maxResults=4)[0] if a.split("/")[1].split(":")[0] in fams]
    assert mine_desc == want[::-1]


@pytest.fixture(scope="module")
def fam32(ecs):
    fam = uniq("many")
    for _ in range(32):
        register(ecs, fam)
    return fam


@pytest.mark.parametrize("sort", ["ASC", "DESC"])
def test_list_paginates_over_many_revisions(ecs, fam32, sort):
    arns, pages = list_all(ecs, familyPrefix=fam32, maxResults=10, sort=sort)
    want = [td_arn(fam32, r) for r in range(1, 33)]
    assert arns == (want if sort == "ASC" else want[::-1])
    assert pages == 4


def test_aws_cli_list_task_definitions_auto_paginates(berth, fam32):
    out = berth.aws("ecs", "list-task-definitions", "--family-prefix", fam32, "--page-size", "7", "--sort", "DESC")
    assert out["taskDefinitionArns"] == [td_arn(fam32, r) for r in range(32, 0, -1)]


def test_list_families(ecs):
    p = uniq("lf")
    active, mixed, inactive = p + "-active", p + "-mixed", p + "-inactive"
    register(ecs, active)
    register(ecs, mixed)
    register(ecs, mixed)
    ecs.deregister_task_definition(taskDefinition=f"{mixed}:1")
    register(ecs, inactive)
    ecs.deregister_task_definition(taskDefinition=f"{inactive}:1")
    assert families_all(ecs, familyPrefix=p) == sorted([active, mixed, inactive])
    assert families_all(ecs, familyPrefix=p, status="ALL") == sorted([active, mixed, inactive])
    assert families_all(ecs, familyPrefix=p, status="ACTIVE") == sorted([active, mixed])
    assert families_all(ecs, familyPrefix=p, status="INACTIVE") == [inactive]
    assert families_all(ecs, familyPrefix=p + "-a") == [active]
    assert families_all(ecs, familyPrefix=p, maxResults=1) == sorted([active, mixed, inactive])
    assert set(families_all(ecs)) >= {active, mixed, inactive}


def test_deregister(ecs):
    fam = uniq("dereg")
    register(ecs, fam)
    register(ecs, fam)
    td = ecs.deregister_task_definition(taskDefinition=f"{fam}:2")["taskDefinition"]
    assert td["status"] == "INACTIVE" and td["revision"] == 2
    assert isinstance(td["deregisteredAt"], datetime.datetime)
    assert ecs.describe_task_definition(taskDefinition=fam)["taskDefinition"]["revision"] == 1
    # By ARN too; a second deregistration changes nothing.
    again = ecs.deregister_task_definition(taskDefinition=td_arn(fam, 2))["taskDefinition"]
    assert again["status"] == "INACTIVE" and again["deregisteredAt"] == td["deregisteredAt"]
    # A revision is required.
    expect_error("ClientException", ecs.deregister_task_definition, taskDefinition=fam)
    expect_error("ClientException", ecs.deregister_task_definition, taskDefinition=f"{fam}:9")


def test_delete_only_inactive_revisions(ecs):
    fam = uniq("delete")
    for _ in range(3):
        register(ecs, fam)
    ecs.deregister_task_definition(taskDefinition=f"{fam}:1")
    ecs.deregister_task_definition(taskDefinition=f"{fam}:2")
    r = ecs.delete_task_definitions(taskDefinitions=[f"{fam}:1", td_arn(fam, 2), f"{fam}:3", f"{fam}:77"])
    assert [t["revision"] for t in r["taskDefinitions"]] == [1, 2]
    assert all(t["status"] == "DELETE_IN_PROGRESS" for t in r["taskDefinitions"])
    assert all(isinstance(t["deleteRequestedAt"], datetime.datetime) for t in r["taskDefinitions"])
    failed = {f["arn"]: f for f in r["failures"]}
    assert len(failed) == 2
    assert any(a.endswith(f"{fam}:3") for a in failed), failed
    assert all(f["reason"] for f in failed.values())
    assert ecs.describe_task_definition(taskDefinition=fam)["taskDefinition"]["revision"] == 3
    assert list_all(ecs, familyPrefix=fam, status="INACTIVE")[0] == []
    assert list_all(ecs, familyPrefix=fam, status="DELETE_IN_PROGRESS")[0] == [td_arn(fam, 1), td_arn(fam, 2)]


def test_delete_takes_at_most_10(ecs):
    expect_error("InvalidParameterException", ecs.delete_task_definitions,
                 taskDefinitions=[f"x:{i}" for i in range(1, 12)])


def test_revision_numbers_are_never_reused(ecs):
    fam = uniq("reuse")
    register(ecs, fam)
    register(ecs, fam)
    ecs.deregister_task_definition(taskDefinition=f"{fam}:2")
    assert register(ecs, fam)["taskDefinition"]["revision"] == 3
    ecs.deregister_task_definition(taskDefinition=f"{fam}:3")
    ecs.delete_task_definitions(taskDefinitions=[f"{fam}:2", f"{fam}:3"])
    assert register(ecs, fam)["taskDefinition"]["revision"] == 4
    for r in (1, 4):
        ecs.deregister_task_definition(taskDefinition=f"{fam}:{r}")
    ecs.delete_task_definitions(taskDefinitions=[f"{fam}:1", f"{fam}:4"])
    assert register(ecs, fam)["taskDefinition"]["revision"] == 5


def test_aws_cli_register_describe_list(berth, tmp_path):
    fam = uniq("cli")
    spec = {
        "family": fam,
        "containerDefinitions": [
            {"name": "app", "image": "busybox", "memory": 64, "portMappings": [{"containerPort": 8080, "hostPort": 0}]}
        ],
        "tags": [{"key": "via", "value": "cli"}],
    }
    f = tmp_path / "td.json"
    f.write_text(json.dumps(spec))
    r = berth.aws("ecs", "register-task-definition", "--cli-input-json", f"file://{f}")
    assert r["taskDefinition"]["taskDefinitionArn"] == td_arn(fam, 1)
    assert r["taskDefinition"]["containerDefinitions"][0]["portMappings"][0]["protocol"] == "tcp"
    d = berth.aws("ecs", "describe-task-definition", "--task-definition", fam, "--include", "TAGS")
    assert d["taskDefinition"]["revision"] == 1 and d["tags"] == [{"key": "via", "value": "cli"}]
    r2 = berth.aws("ecs", "register-task-definition", "--family", fam, "--container-definitions",
                   json.dumps(spec["containerDefinitions"]))
    assert r2["taskDefinition"]["revision"] == 2
    dr = berth.aws("ecs", "deregister-task-definition", "--task-definition", f"{fam}:1")
    assert dr["taskDefinition"]["status"] == "INACTIVE"
    fams = berth.aws("ecs", "list-task-definition-families", "--family-prefix", fam, "--status", "ACTIVE")
    assert fams["families"] == [fam]
    p = berth.aws("ecs", "describe-task-definition", "--task-definition", f"{fam}:9", check=False)
    assert p.returncode != 0 and "ClientException" in p.stderr
    assert os.path.exists(f)


def test_concurrent_registrations_get_distinct_dense_revisions(berth):
    fam = uniq("burst")
    # 160 writes at once are more than the write bucket holds (--api-burst / 2): the SDKs'
    # standard retry mode backs off on the ThrottlingException, as it would against AWS.
    clients = [berth.client(retries=10) for _ in range(16)]

    def burst(c):
        return [register(c, fam)["taskDefinition"]["revision"] for _ in range(10)]

    with ThreadPoolExecutor(len(clients)) as pool:
        revs = [r for rs in pool.map(burst, clients) for r in rs]
    assert sorted(revs) == list(range(1, 161))
    assert all(rs == sorted(rs) for rs in [revs[i:i + 10] for i in range(0, 160, 10)])
    assert len(list_all(clients[0], familyPrefix=fam)[0]) == 160
