"""Property test: random sequences of register / deregister / delete over three families keep
revision numbers dense per family (1..n in registration order), never reuse one, and
ListTaskDefinitions (ACTIVE, INACTIVE) and DescribeTaskDefinition agree with a simple model."""
import itertools

from botocore.exceptions import ClientError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import container, uniq

BERTH_AGENT = False  # API-level tests: no local agent needed

_run = itertools.count()

op = st.tuples(
    st.sampled_from(["register", "register", "deregister", "delete"]),
    st.integers(min_value=0, max_value=2),  # family
    st.integers(min_value=0, max_value=1000),  # which revision (modulo what exists)
)


def all_arns(ecs, page_size=5, **kw):
    out, token = [], None
    while True:
        page = ecs.list_task_definitions(maxResults=page_size, **kw, **({"nextToken": token} if token else {}))
        out += page["taskDefinitionArns"]
        token = page.get("nextToken")
        if not token:
            return out


def parse(arn):
    fam, rev = arn.rsplit("/", 1)[1].rsplit(":", 1)
    return fam, int(rev)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=st.lists(op, min_size=1, max_size=25))
def test_revisions_are_dense_and_never_reused(ecs, ops):
    prefix = f"{uniq('prop')}-{next(_run)}"
    fams = [f"{prefix}-{i}" for i in range(3)]
    model = {f: {} for f in fams}  # family -> {revision: status}

    for kind, fi, pick in ops:
        fam = fams[fi]
        revs = sorted(model[fam])
        if kind == "register":
            td = ecs.register_task_definition(family=fam, containerDefinitions=[container()])["taskDefinition"]
            assert td["revision"] == len(revs) + 1, (fam, td["revision"], revs)
            model[fam][td["revision"]] = "ACTIVE"
        elif kind == "deregister":
            if not revs:
                continue
            rev = revs[pick % len(revs)]
            try:
                td = ecs.deregister_task_definition(taskDefinition=f"{fam}:{rev}")["taskDefinition"]
            except ClientError as e:
                # Only a revision that is already being deleted may be refused.
                assert model[fam][rev] == "DELETE_IN_PROGRESS", e
                continue
            if model[fam][rev] == "ACTIVE":
                model[fam][rev] = "INACTIVE"
            assert td["status"] == model[fam][rev]
        else:
            if not revs:
                continue
            rev = revs[pick % len(revs)]
            r = ecs.delete_task_definitions(taskDefinitions=[f"{fam}:{rev}"])
            if model[fam][rev] == "ACTIVE":
                assert r["taskDefinitions"] == [] and len(r["failures"]) == 1
            else:
                model[fam][rev] = "DELETE_IN_PROGRESS"
                assert [t["status"] for t in r["taskDefinitions"]] == ["DELETE_IN_PROGRESS"]

    for fam in fams:
        for status in ("ACTIVE", "INACTIVE"):
            listed = [parse(a) for a in all_arns(ecs, familyPrefix=fam, status=status)]
            want = [(fam, r) for r, s in sorted(model[fam].items()) if s == status]
            assert listed == want, (fam, status)
        active = [r for r, s in model[fam].items() if s == "ACTIVE"]
        if active:
            td = ecs.describe_task_definition(taskDefinition=fam)["taskDefinition"]
            assert td["revision"] == max(active)
        else:
            try:
                ecs.describe_task_definition(taskDefinition=fam)
                raise AssertionError(f"{fam} has no ACTIVE revision but describes")
            except ClientError as e:
                assert e.response["Error"]["Code"] == "ClientException"
        # Dense and never reused: the next registration continues after every number issued.
        nxt = ecs.register_task_definition(family=fam, containerDefinitions=[container()])["taskDefinition"]
        assert nxt["revision"] == len(model[fam]) + 1

    # Across families: the unfiltered ACTIVE listing holds exactly the model's ACTIVE set
    # (plus the revisions registered just above).
    mine = [parse(a) for a in all_arns(ecs, page_size=100, status="ACTIVE") if a.rsplit("/", 1)[1].startswith(prefix + "-")]
    want = sorted(
        [(f, r) for f in fams for r, s in model[f].items() if s == "ACTIVE"] + [(f, len(model[f]) + 1) for f in fams]
    )
    assert mine == want
