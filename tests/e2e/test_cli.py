"""berth's own CLI client: `berth cluster ls|create|rm`, `berth taskdef register|ls|show|rm`,
tables for people, `--output json` for scripts, ECS errors on stderr with a non-zero exit."""
import json
import os
import subprocess

import pytest

from conftest import BERTH_BIN, free_port, uniq

BERTH_AGENT = False  # API-level tests: no local agent needed


def table_rows(out):
    """The data rows of a comfy-table table, as lists of cells."""
    rows = []
    for line in out.splitlines():
        line = line.strip()
        if not line.startswith("│"):
            continue
        rows.append(line.strip("│").split())
    return rows[1:]  # drop the header


@pytest.fixture
def td_file(tmp_path):
    def make(family, **kw):
        spec = {"family": family, "containerDefinitions": [{"name": "app", "image": "nginx:1.27", "memory": 64}], **kw}
        f = tmp_path / f"{family}.json"
        f.write_text(json.dumps(spec))
        return str(f)

    return make


def test_cluster_create_ls_rm(berth, ecs):
    name = uniq("clic")
    out = berth.cli("cluster", "create", name).stdout
    assert [name, "ACTIVE", "0", "0", "0", "0"] in table_rows(out)
    assert ecs.describe_clusters(clusters=[name])["clusters"][0]["status"] == "ACTIVE"

    rows = table_rows(berth.cli("cluster", "ls").stdout)
    assert [name, "ACTIVE", "0", "0", "0", "0"] in rows
    assert any(r[0] == "default" for r in rows)

    listed = json.loads(berth.cli("cluster", "ls", "--output", "json").stdout)
    mine = [c for c in listed if c["clusterName"] == name]
    assert len(mine) == 1 and mine[0]["clusterArn"].endswith(f":cluster/{name}")

    gone = json.loads(berth.cli("cluster", "rm", name, "--output", "json").stdout)
    assert gone["cluster"]["status"] == "INACTIVE"
    assert name not in [r[0] for r in table_rows(berth.cli("cluster", "ls").stdout)]


def test_cluster_create_json(berth):
    name = uniq("clij")
    r = json.loads(berth.cli("cluster", "create", name, "-o", "json").stdout)
    assert r["cluster"]["clusterName"] == name and r["cluster"]["status"] == "ACTIVE"


def test_cluster_errors(berth):
    p = berth.cli("cluster", "rm", uniq("ghost"), check=False)
    assert p.returncode != 0
    assert "ClusterNotFoundException" in p.stderr
    p = berth.cli("cluster", "create", "bad name", check=False)
    assert p.returncode != 0 and "InvalidParameterException" in p.stderr


def test_taskdef_register_ls_show_rm(berth, ecs, td_file):
    fam = uniq("clit")
    out = berth.cli("taskdef", "register", td_file(fam, cpu="256", memory="512")).stdout
    assert [fam, "1", "ACTIVE", "256", "512", "app", "(nginx:1.27)"] in table_rows(out)
    r = json.loads(berth.cli("taskdef", "register", td_file(fam), "--output", "json").stdout)
    assert r["taskDefinition"]["revision"] == 2
    assert r["taskDefinition"]["taskDefinitionArn"].endswith(f":task-definition/{fam}:2")

    rows = [r for r in table_rows(berth.cli("taskdef", "ls", "--family", fam).stdout)]
    assert [r[:3] for r in rows] == [[fam, "1", "ACTIVE"], [fam, "2", "ACTIVE"]]
    arns = json.loads(berth.cli("taskdef", "ls", "--family", fam, "-o", "json").stdout)
    assert [a.rsplit(":", 1)[1] for a in arns] == ["1", "2"]

    shown = json.loads(berth.cli("taskdef", "show", fam, "-o", "json").stdout)
    assert shown["taskDefinition"]["revision"] == 2
    assert shown["taskDefinition"] == ecs.describe_task_definition(taskDefinition=fam)["taskDefinition"] | {
        "registeredAt": shown["taskDefinition"]["registeredAt"]}
    table = berth.cli("taskdef", "show", f"{fam}:1").stdout
    assert [fam, "1", "ACTIVE", "256", "512", "app", "(nginx:1.27)"] in table_rows(table)

    out = berth.cli("taskdef", "rm", f"{fam}:1").stdout
    assert table_rows(out)[0][:3] == [fam, "1", "INACTIVE"]
    assert [r[:3] for r in table_rows(berth.cli("taskdef", "ls", "--family", fam, "--status", "INACTIVE").stdout)] == [
        [fam, "1", "INACTIVE"]]
    gone = json.loads(berth.cli("taskdef", "rm", f"{fam}:2", "--delete", "-o", "json").stdout)
    assert gone["status"] == "DELETE_IN_PROGRESS" and gone["revision"] == 2
    assert ecs.list_task_definitions(familyPrefix=fam)["taskDefinitionArns"] == []


def test_taskdef_errors(berth, tmp_path, td_file):
    fam = uniq("clie")
    p = berth.cli("taskdef", "show", f"{fam}:3", check=False)
    assert p.returncode != 0 and "ClientException" in p.stderr

    bad = td_file(fam, containerDefinitions=[{"name": "a", "image": "x", "memory": 64, "essential": False}])
    p = berth.cli("taskdef", "register", bad, check=False)
    assert p.returncode != 0 and "ClientException" in p.stderr

    not_json = tmp_path / "broken.json"
    not_json.write_text("{nope")
    p = berth.cli("taskdef", "register", str(not_json), check=False)
    assert p.returncode != 0 and "not JSON" in p.stderr

    p = berth.cli("taskdef", "register", str(tmp_path / "missing.json"), check=False)
    assert p.returncode != 0 and "missing.json" in p.stderr

    p = berth.cli("taskdef", "rm", fam, check=False)
    assert p.returncode != 0 and "ClientException" in p.stderr


def test_cli_needs_a_reachable_server(berth):
    env = dict(os.environ, AWS_ACCESS_KEY_ID="a", AWS_SECRET_ACCESS_KEY="b",
               AWS_ENDPOINT_URL_ECS=f"http://127.0.0.1:{free_port()}")
    p = subprocess.run([BERTH_BIN, "cluster", "ls"], capture_output=True, text=True, env=env, timeout=30)
    assert p.returncode != 0 and "cannot reach berth" in p.stderr


def test_cli_with_wrong_credentials(berth):
    env = dict(os.environ, AWS_ACCESS_KEY_ID="AKIANOTAKEY000000000", AWS_SECRET_ACCESS_KEY="b",
               AWS_ENDPOINT_URL_ECS=berth.endpoint)
    p = subprocess.run([BERTH_BIN, "cluster", "ls"], capture_output=True, text=True, env=env, timeout=30)
    assert p.returncode != 0 and "UnrecognizedClientException" in p.stderr
