"""Clusters through boto3 and the aws CLI: Create/Describe/List/Update/UpdateSettings/Delete."""
from concurrent.futures import ThreadPoolExecutor

import pytest

from conftest import REGION, Berth, expect_error, raw_call, uniq

BERTH_AGENT = False  # API-level tests: no local agent needed

ACCOUNT = "000000000000"


def arn(name, region=REGION, account=ACCOUNT):
    return f"arn:aws:ecs:{region}:{account}:cluster/{name}"


OPTIONAL = {"settings", "tags", "statistics", "configuration", "attachments"}
INCLUDE_FIELD = {
    "SETTINGS": "settings",
    "TAGS": "tags",
    "STATISTICS": "statistics",
    "CONFIGURATIONS": "configuration",
    "ATTACHMENTS": "attachments",
}
EXEC_CONF = {"executeCommandConfiguration": {"logging": "DEFAULT"}}


def list_all(ecs, **kw):
    arns, token, pages = [], None, 0
    while True:
        page = ecs.list_clusters(**kw, **({"nextToken": token} if token else {}))
        arns += page["clusterArns"]
        pages += 1
        token = page.get("nextToken")
        if not token:
            return arns, pages


def test_create_without_name_is_the_default_cluster(ecs):
    c = ecs.create_cluster()["cluster"]
    assert c["clusterName"] == "default"
    assert c["clusterArn"] == arn("default")
    assert c["status"] == "ACTIVE"


def test_create_returns_the_ecs_shape(ecs):
    name = uniq("shape")
    c = ecs.create_cluster(
        clusterName=name,
        tags=[{"key": "team", "value": "web"}, {"key": "empty", "value": ""}],
        settings=[{"name": "containerInsights", "value": "enabled"}],
    )["cluster"]
    assert c["clusterArn"] == arn(name)
    assert c["clusterName"] == name
    assert c["status"] == "ACTIVE"
    for k in ("registeredContainerInstancesCount", "runningTasksCount", "pendingTasksCount", "activeServicesCount"):
        assert c[k] == 0, k
    assert c["tags"] == [{"key": "team", "value": "web"}, {"key": "empty", "value": ""}]
    assert c["settings"] == [{"name": "containerInsights", "value": "enabled"}]
    assert "statistics" not in c or c["statistics"] == []


def test_create_is_idempotent(ecs):
    name = uniq("idem")
    first = ecs.create_cluster(clusterName=name, tags=[{"key": "gen", "value": "1"}])["cluster"]
    again = ecs.create_cluster(clusterName=name, tags=[{"key": "gen", "value": "2"}])["cluster"]
    assert again["clusterArn"] == first["clusterArn"]
    assert again["status"] == "ACTIVE"
    # The existing cluster is returned as it is: the second call's tags are not applied.
    d = ecs.describe_clusters(clusters=[name], include=["TAGS"])["clusters"][0]
    assert d["tags"] == [{"key": "gen", "value": "1"}]
    arns, _ = list_all(ecs)
    assert arns.count(arn(name)) == 1


def test_describe_without_list_is_the_default_cluster(ecs):
    r = ecs.describe_clusters()
    assert [c["clusterName"] for c in r["clusters"]] == ["default"]
    assert r["failures"] == []


@pytest.fixture(scope="module")
def rich_cluster(ecs):
    name = uniq("rich")
    ecs.create_cluster(
        clusterName=name,
        tags=[{"key": "k", "value": "v"}],
        settings=[{"name": "containerInsights", "value": "enhanced"}],
        configuration=EXEC_CONF,
    )
    return name


def test_describe_hides_optional_fields_unless_included(ecs, rich_cluster):
    c = ecs.describe_clusters(clusters=[rich_cluster])["clusters"][0]
    assert not (OPTIONAL & set(c)), c
    assert c["clusterName"] == rich_cluster and c["status"] == "ACTIVE"


@pytest.mark.parametrize("include", sorted(INCLUDE_FIELD))
def test_describe_include_shows_exactly_that_field(ecs, rich_cluster, include):
    c = ecs.describe_clusters(clusters=[rich_cluster], include=[include])["clusters"][0]
    field = INCLUDE_FIELD[include]
    assert field in c, (include, c)
    assert not ((OPTIONAL - {field}) & set(c)), (include, c)
    if include == "SETTINGS":
        assert c["settings"] == [{"name": "containerInsights", "value": "enhanced"}]
    elif include == "TAGS":
        assert c["tags"] == [{"key": "k", "value": "v"}]
    elif include == "CONFIGURATIONS":
        assert c["configuration"] == EXEC_CONF
    elif include == "STATISTICS":
        stats = {s["name"]: s["value"] for s in c["statistics"]}
        assert stats["runningEC2TasksCount"] == "0"
        assert all(isinstance(v, str) for v in stats.values())


def test_describe_all_includes_at_once(ecs, rich_cluster):
    c = ecs.describe_clusters(clusters=[rich_cluster], include=sorted(INCLUDE_FIELD))["clusters"][0]
    assert OPTIONAL <= set(c)


def test_describe_reports_missing_clusters_with_their_arn(ecs, rich_cluster):
    missing = uniq("missing")
    r = ecs.describe_clusters(clusters=[rich_cluster, missing, arn(rich_cluster)])
    assert [c["clusterArn"] for c in r["clusters"]] == [arn(rich_cluster)] * 2
    assert r["failures"] == [{"arn": arn(missing), "reason": "MISSING"}]


def test_describe_accepts_names_and_arns(ecs, rich_cluster):
    by_name = ecs.describe_clusters(clusters=[rich_cluster])["clusters"][0]
    by_arn = ecs.describe_clusters(clusters=[arn(rich_cluster)])["clusters"][0]
    assert by_name == by_arn


def test_describe_rejects_more_than_100(ecs):
    names = [f"c{i}" for i in range(101)]
    expect_error("InvalidParameterException", ecs.describe_clusters, clusters=names)
    assert len(ecs.describe_clusters(clusters=names[:100])["failures"]) == 100


def test_describe_rejects_unknown_include(berth):
    status, _, body = raw_call(berth.endpoint, "DescribeClusters", {"include": ["BOGUS"]})
    assert status == 400 and body["__type"] == "InvalidParameterException"


@pytest.fixture(scope="module")
def many_clusters(ecs):
    prefix = uniq("page")
    names = [f"{prefix}-{i:02d}" for i in range(27)]
    for n in names:
        ecs.create_cluster(clusterName=n)
    return names


def test_list_paginates_with_max_results(ecs, many_clusters):
    arns, pages = list_all(ecs, maxResults=10)
    assert len(arns) == len(set(arns)), "a cluster appeared on two pages"
    assert {arn(n) for n in many_clusters} <= set(arns)
    assert pages >= 3
    first = ecs.list_clusters(maxResults=10)
    assert len(first["clusterArns"]) == 10 and first["nextToken"]
    everything = ecs.list_clusters(maxResults=100)
    if len(everything["clusterArns"]) < 100:
        assert "nextToken" not in everything


def test_list_rejects_bad_max_results_and_tokens(ecs):
    expect_error("InvalidParameterException", ecs.list_clusters, maxResults=101)
    expect_error("InvalidParameterException", ecs.list_clusters, maxResults=0)
    expect_error("InvalidParameterException", ecs.list_clusters, nextToken="garbage!")


def test_aws_cli_list_clusters_auto_paginates(berth, ecs, many_clusters):
    out = berth.aws("ecs", "list-clusters", "--page-size", "4")
    assert "nextToken" not in out and "NextToken" not in out
    assert {arn(n) for n in many_clusters} <= set(out["clusterArns"])
    assert len(out["clusterArns"]) == len(set(out["clusterArns"]))
    assert sorted(out["clusterArns"]) == sorted(list_all(ecs)[0])


def test_update_cluster(ecs):
    name = uniq("upd")
    ecs.create_cluster(clusterName=name)
    c = ecs.update_cluster(
        cluster=name, settings=[{"name": "containerInsights", "value": "enabled"}], configuration=EXEC_CONF
    )["cluster"]
    assert c["clusterArn"] == arn(name)
    assert c["settings"] == [{"name": "containerInsights", "value": "enabled"}]
    d = ecs.describe_clusters(clusters=[name], include=["SETTINGS", "CONFIGURATIONS"])["clusters"][0]
    assert d["settings"] == [{"name": "containerInsights", "value": "enabled"}]
    assert d["configuration"] == EXEC_CONF
    expect_error("ClusterNotFoundException", ecs.update_cluster, cluster=uniq("nope"), configuration=EXEC_CONF)


def test_update_cluster_settings(ecs):
    name = uniq("set")
    ecs.create_cluster(clusterName=name)
    c = ecs.update_cluster_settings(cluster=arn(name), settings=[{"name": "containerInsights", "value": "enabled"}])[
        "cluster"
    ]
    assert c["settings"] == [{"name": "containerInsights", "value": "enabled"}]
    expect_error(
        "InvalidParameterException",
        ecs.update_cluster_settings,
        cluster=name,
        settings=[{"name": "containerInsights", "value": "sometimes"}],
    )
    expect_error(
        "ClusterNotFoundException",
        ecs.update_cluster_settings,
        cluster=uniq("nope"),
        settings=[{"name": "containerInsights", "value": "enabled"}],
    )


def test_delete_makes_the_cluster_inactive_and_it_can_be_recreated(ecs):
    name = uniq("del")
    ecs.create_cluster(clusterName=name, tags=[{"key": "a", "value": "1"}])
    gone = ecs.delete_cluster(cluster=name)["cluster"]
    assert gone["status"] == "INACTIVE" and gone["clusterArn"] == arn(name)
    d = ecs.describe_clusters(clusters=[name])
    assert d["failures"] == [] and d["clusters"][0]["status"] == "INACTIVE"
    assert arn(name) not in list_all(ecs)[0]
    expect_error("ClusterNotFoundException", ecs.delete_cluster, cluster=name)
    expect_error("ClusterNotFoundException", ecs.update_cluster_settings, cluster=name,
                 settings=[{"name": "containerInsights", "value": "enabled"}])
    back = ecs.create_cluster(clusterName=name)["cluster"]
    assert back["status"] == "ACTIVE"
    assert arn(name) in list_all(ecs)[0]
    # A re-created cluster starts fresh.
    assert ecs.describe_clusters(clusters=[name], include=["TAGS"])["clusters"][0]["tags"] == []


def test_delete_missing_cluster(ecs):
    expect_error("ClusterNotFoundException", ecs.delete_cluster, cluster=uniq("never"))
    expect_error("ClusterNotFoundException", ecs.delete_cluster, cluster=arn(uniq("never")))


def test_arns_use_the_region_the_client_signed_for(berth):
    name = uniq("region")
    us = berth.client(region="us-east-1")
    ap = berth.client(region="ap-southeast-2")
    assert us.create_cluster(clusterName=name)["cluster"]["clusterArn"] == arn(name, "us-east-1")
    assert ap.describe_clusters(clusters=[name])["clusters"][0]["clusterArn"] == arn(name, "ap-southeast-2")
    assert arn(name, "ap-southeast-2") in list_all(ap)[0]
    missing = uniq("missing")
    assert ap.describe_clusters(clusters=[missing])["failures"][0]["arn"] == arn(missing, "ap-southeast-2")


def test_account_id_flag_sets_the_arn_account(fresh_dir):
    b = Berth(fresh_dir, args=["--account-id", "123456789012"], agent=False).start()
    try:
        ecs = b.client()
        c = ecs.create_cluster(clusterName="acct")["cluster"]
        assert c["clusterArn"] == arn("acct", account="123456789012")
        assert arn("default", account="123456789012") in ecs.list_clusters()["clusterArns"]
        td = ecs.register_task_definition(
            family="acct", containerDefinitions=[{"name": "a", "image": "busybox", "memory": 32}]
        )["taskDefinition"]
        assert td["taskDefinitionArn"] == "arn:aws:ecs:eu-west-1:123456789012:task-definition/acct:1"
        assert td["registeredBy"].startswith("arn:aws:iam::123456789012:")
    finally:
        assert b.stop() == 0


def test_aws_cli_cluster_lifecycle(berth):
    name = uniq("cli")
    c = berth.aws("ecs", "create-cluster", "--cluster-name", name, "--tags", "key=team,value=ops",
                  "--settings", "name=containerInsights,value=enabled")["cluster"]
    assert c["clusterArn"] == arn(name)
    d = berth.aws("ecs", "describe-clusters", "--clusters", name, "nope-" + name, "--include", "TAGS", "SETTINGS")
    assert d["clusters"][0]["tags"] == [{"key": "team", "value": "ops"}]
    assert d["clusters"][0]["settings"] == [{"name": "containerInsights", "value": "enabled"}]
    assert d["failures"] == [{"arn": arn("nope-" + name), "reason": "MISSING"}]
    assert berth.aws("ecs", "delete-cluster", "--cluster", name)["cluster"]["status"] == "INACTIVE"
    p = berth.aws("ecs", "delete-cluster", "--cluster", name, check=False)
    assert p.returncode != 0 and "ClusterNotFoundException" in p.stderr



def test_concurrent_creates_of_one_cluster_all_succeed(berth):
    clients = [berth.client() for _ in range(12)]
    for round_ in range(3):
        name = uniq("race")
        with ThreadPoolExecutor(len(clients)) as pool:
            got = list(pool.map(lambda c: c.create_cluster(clusterName=name)["cluster"], clients))
        assert {(c["clusterArn"], c["status"]) for c in got} == {(arn(name), "ACTIVE")}
        assert list_all(clients[0])[0].count(arn(name)) == 1


def test_concurrent_updates_all_succeed(berth):
    name = uniq("race-upd")
    clients = [berth.client() for _ in range(12)]
    clients[0].create_cluster(clusterName=name)
    values = ["enabled", "disabled"] * 6

    def update(i):
        return clients[i].update_cluster_settings(
            cluster=name, settings=[{"name": "containerInsights", "value": values[i]}])["cluster"]["settings"]

    with ThreadPoolExecutor(len(clients)) as pool:
        assert all(s[0]["value"] in values for s in pool.map(update, range(len(clients))))
