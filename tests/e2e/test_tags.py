"""TagResource / UntagResource / ListTagsForResource on clusters and task definitions."""
from concurrent.futures import ThreadPoolExecutor

import pytest

from conftest import REGION, expect_error, register, uniq

BERTH_AGENT = False  # API-level tests: no local agent needed

ACCOUNT = "000000000000"


def cluster_arn(name):
    return f"arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/{name}"


def td_arn(family, rev):
    return f"arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/{family}:{rev}"


def tags(ecs, arn):
    return {t["key"]: t["value"] for t in ecs.list_tags_for_resource(resourceArn=arn)["tags"]}


@pytest.fixture(params=["cluster", "taskdef"])
def resource(request, ecs):
    """A fresh taggable resource created with one tag, as an ARN."""
    if request.param == "cluster":
        name = uniq("tagc")
        ecs.create_cluster(clusterName=name, tags=[{"key": "born", "value": "yes"}])
        return cluster_arn(name)
    fam = uniq("tagt")
    register(ecs, fam, tags=[{"key": "born", "value": "yes"}])
    return td_arn(fam, 1)


def test_tag_untag_list(ecs, resource):
    assert tags(ecs, resource) == {"born": "yes"}
    ecs.tag_resource(resourceArn=resource, tags=[{"key": "team", "value": "web"}, {"key": "born", "value": "again"}])
    assert tags(ecs, resource) == {"born": "again", "team": "web"}
    ecs.tag_resource(resourceArn=resource, tags=[{"key": "empty", "value": ""}, {"key": "a b:c/d=e+f-g@h.i", "value": "x"}])
    assert tags(ecs, resource) == {"born": "again", "team": "web", "empty": "", "a b:c/d=e+f-g@h.i": "x"}
    ecs.untag_resource(resourceArn=resource, tagKeys=["born", "not-there"])
    assert tags(ecs, resource) == {"team": "web", "empty": "", "a b:c/d=e+f-g@h.i": "x"}
    ecs.untag_resource(resourceArn=resource, tagKeys=["team", "empty", "a b:c/d=e+f-g@h.i"])
    assert ecs.list_tags_for_resource(resourceArn=resource)["tags"] == []


def test_tags_show_in_describe(ecs):
    name = uniq("tagd")
    ecs.create_cluster(clusterName=name)
    ecs.tag_resource(resourceArn=cluster_arn(name), tags=[{"key": "k", "value": "v"}])
    assert ecs.describe_clusters(clusters=[name], include=["TAGS"])["clusters"][0]["tags"] == [{"key": "k", "value": "v"}]
    fam = uniq("tagd")
    register(ecs, fam)
    ecs.tag_resource(resourceArn=td_arn(fam, 1), tags=[{"key": "k", "value": "v"}])
    assert ecs.describe_task_definition(taskDefinition=fam, include=["TAGS"])["tags"] == [{"key": "k", "value": "v"}]


def test_fifty_tags_is_the_limit(ecs, resource):
    fifty = [{"key": f"k{i}", "value": "v"} for i in range(49)]
    ecs.tag_resource(resourceArn=resource, tags=fifty)  # 49 + born
    assert len(tags(ecs, resource)) == 50
    ecs.tag_resource(resourceArn=resource, tags=[{"key": "k0", "value": "overwrite is fine at the limit"}])
    assert tags(ecs, resource)["k0"] == "overwrite is fine at the limit"
    err = expect_error("LimitExceededException", ecs.tag_resource, resourceArn=resource,
                       tags=[{"key": "one-more", "value": "v"}])
    assert "50" in err.response["Error"]["Message"]
    assert len(tags(ecs, resource)) == 50


@pytest.mark.parametrize(
    "bad",
    [
        [{"key": f"k{i}", "value": "v"} for i in range(51)],
        [{"key": "aws:owner", "value": "me"}],
        [{"key": "AWS:Owner", "value": "me"}],
        [{"key": "k" * 129, "value": "v"}],
        [{"key": "k", "value": "v" * 257}],
        [{"key": "bad#char", "value": "v"}],
    ],
    ids=["51-tags", "aws-prefix", "AWS-prefix", "long-key", "long-value", "bad-char"],
)
def test_invalid_tags(ecs, resource, bad):
    expect_error("InvalidParameterException", ecs.tag_resource, resourceArn=resource, tags=bad)
    assert tags(ecs, resource) == {"born": "yes"}


def test_invalid_tags_at_creation(ecs):
    expect_error("InvalidParameterException", ecs.create_cluster, clusterName=uniq("badtag"),
                 tags=[{"key": "aws:x", "value": "y"}])
    expect_error("InvalidParameterException", register, ecs, uniq("badtag"),
                 tags=[{"key": f"k{i}", "value": "v"} for i in range(51)])


def test_untag_key_limits(ecs, resource):
    expect_error("InvalidParameterException", ecs.untag_resource, resourceArn=resource, tagKeys=["k" * 129])


def test_unknown_cluster(ecs):
    arn = cluster_arn(uniq("ghost"))
    expect_error("ClusterNotFoundException", ecs.tag_resource, resourceArn=arn, tags=[{"key": "k", "value": "v"}])
    expect_error("ClusterNotFoundException", ecs.untag_resource, resourceArn=arn, tagKeys=["k"])
    expect_error("ClusterNotFoundException", ecs.list_tags_for_resource, resourceArn=arn)


def test_deleted_cluster_is_not_taggable(ecs):
    name = uniq("tagdel")
    ecs.create_cluster(clusterName=name)
    ecs.delete_cluster(cluster=name)
    expect_error("ClusterNotFoundException", ecs.tag_resource, resourceArn=cluster_arn(name),
                 tags=[{"key": "k", "value": "v"}])


def test_unknown_task_definition(ecs):
    fam = uniq("ghost")
    register(ecs, fam)
    arn = td_arn(fam, 2)
    expect_error("ResourceNotFoundException", ecs.tag_resource, resourceArn=arn, tags=[{"key": "k", "value": "v"}])
    expect_error("ResourceNotFoundException", ecs.untag_resource, resourceArn=arn, tagKeys=["k"])
    expect_error("ResourceNotFoundException", ecs.tag_resource, resourceArn=td_arn(uniq("nofamily"), 1),
                 tags=[{"key": "k", "value": "v"}])


def test_malformed_arns(ecs):
    for bad in ["not-an-arn", "arn:aws:s3:::bucket", f"arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/"]:
        expect_error("InvalidParameterException", ecs.tag_resource, resourceArn=bad, tags=[{"key": "k", "value": "v"}])
        expect_error("InvalidParameterException", ecs.list_tags_for_resource, resourceArn=bad)


def test_aws_cli_tags(berth, ecs):
    name = uniq("clitag")
    ecs.create_cluster(clusterName=name)
    arn = cluster_arn(name)
    berth.aws("ecs", "tag-resource", "--resource-arn", arn, "--tags", "key=a,value=1", "key=b,value=2")
    berth.aws("ecs", "untag-resource", "--resource-arn", arn, "--tag-keys", "a")
    assert berth.aws("ecs", "list-tags-for-resource", "--resource-arn", arn) == {"tags": [{"key": "b", "value": "2"}]}


def test_concurrent_tagging_loses_nothing(berth, resource):
    clients = [berth.client() for _ in range(8)]

    def tag(i):
        for j in range(6):
            clients[i].tag_resource(resourceArn=resource, tags=[{"key": f"k{i}-{j}", "value": str(j)}])

    with ThreadPoolExecutor(len(clients)) as pool:
        list(pool.map(tag, range(len(clients))))
    got = tags(clients[0], resource)
    assert len(got) == 49 and got["born"] == "yes"
