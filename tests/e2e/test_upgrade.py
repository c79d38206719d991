"""Upgrades keep state: a data dir written by the release before the control layer (schema 1,
`fixtures/datadir-v1.tar.gz`, made by `fixtures/make-datadir-v1.sh`) opens with everything in
it, and its service is not started twice (the service-task index is backfilled)."""

import os
import tarfile
import time

from conftest import Berth, wait_for

FIXTURE = os.path.join(os.path.dirname(__file__), "fixtures", "datadir-v1.tar.gz")


def test_a_previous_release_data_dir_keeps_everything(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    with tarfile.open(FIXTURE) as t:
        if hasattr(tarfile, "data_filter"):
            t.extractall(data, filter="data")
        else:
            t.extractall(data)
    # No agent: the fixture's host is long gone; an hour before it counts as lost.
    b = Berth(str(data), agent=False, args=["--agent-timeout", "3600", "--host-lost-timeout", "3600"])
    b.start()
    try:
        ecs = b.client()
        clusters = ecs.describe_clusters(clusters=["default", "upgrade"], include=["TAGS"])["clusters"]
        assert [c["status"] for c in clusters] == ["ACTIVE", "ACTIVE"]
        assert clusters[1]["tags"] == [{"key": "team", "value": "core"}]

        td = ecs.describe_task_definition(taskDefinition="web:1", include=["TAGS"])
        assert td["taskDefinition"]["containerDefinitions"][0]["environment"] == [{"name": "A", "value": "1"}]
        assert td["tags"] == [{"key": "kind", "value": "web"}]
        assert ecs.describe_task_definition(taskDefinition="web")["taskDefinition"]["revision"] == 2

        svc = ecs.describe_services(services=["web"], include=["TAGS"])["services"][0]
        assert svc["desiredCount"] == 2 and svc["runningCount"] == 2
        assert svc["placementStrategy"] == [{"type": "spread", "field": "instanceId"}]
        assert svc["deploymentConfiguration"]["deploymentCircuitBreaker"] == {"enable": True, "rollback": True}
        assert svc["tags"] == [{"key": "svc", "value": "web"}]
        events_before = len(svc["events"])

        tasks = ecs.list_tasks()["taskArns"]
        assert len(tasks) == 3
        described = ecs.describe_tasks(tasks=tasks)["tasks"]
        assert sorted(t.get("group", "") for t in described) == ["family:web", "service:web", "service:web"]

        elb = b.client("elbv2")
        assert [g["TargetGroupName"] for g in elb.describe_target_groups()["TargetGroups"]] == ["web"]
        assert [lb["LoadBalancerName"] for lb in elb.describe_load_balancers()["LoadBalancers"]] == ["web"]
        aas = b.client("application-autoscaling")
        targets = aas.describe_scalable_targets(ServiceNamespace="ecs")["ScalableTargets"]
        assert [(t["ResourceId"], t["MinCapacity"], t["MaxCapacity"]) for t in targets] == [("service/default/web", 1, 4)]

        # The controller has run (an UpdateService it must answer with a new deployment) and
        # still sees the service's two tasks: it starts none and reports no placement problem.
        ecs.update_service(service="web", desiredCount=2, forceNewDeployment=False)
        window_end = time.monotonic() + 3.0
        while time.monotonic() < window_end:
            svc = ecs.describe_services(services=["web"])["services"][0]
            assert len(ecs.list_tasks()["taskArns"]) == 3
            assert not any("unable" in e["message"] for e in svc["events"][: len(svc["events"]) - events_before])
            time.sleep(0.2)
        wait_for(lambda: ecs.describe_services(services=["web"])["services"][0]["runningCount"] == 2)
    finally:
        b.stop()
