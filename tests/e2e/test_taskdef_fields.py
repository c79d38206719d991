"""Container and task fields on the Docker driver (issue 12, point 1): each one registered with
boto3, run by a `berth agent --driver docker`, and its effect checked from inside the container
(the container writes what it sees to a bind-mounted host directory this test reads) and with
`docker inspect`. Also: volumes shared between the containers of a task, Docker volumes with
task and shared scope, restart policies, namespaces, S3 environment files refused, and a
process-driver host that is never given a task needing Docker (`ATTRIBUTE`).
"""
import json
import os
import tempfile

import pytest

from conftest import (
    Agent, Berth, describe_task, expect_error, join_token, register, run_one, supports_flag, uniq,
    wait_for, wait_task,
)
from conftest import docker, docker_ok, build_test_image

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
IMAGE = "berth-test/busybox:latest"
SLEEPER = ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 0.2; done"]




needs_docker = pytest.mark.skipif(not docker_ok(), reason="no Docker daemon")


@pytest.fixture(scope="module")
def base():
    with tempfile.TemporaryDirectory() as d:
        os.chmod(d, 0o755)
        yield d


@pytest.fixture(scope="module")
def scope():
    return uniq("e2e-fields")


@pytest.fixture(scope="module")
def berth(base):
    d = os.path.join(base, "server")
    os.makedirs(d)
    args = ["--host-lost-timeout", "120"] if supports_flag("up", "--host-lost-timeout") else []
    b = Berth(d, agent=False, args=args).start()
    yield b
    b.stop()


@pytest.fixture(scope="module")
def ecs(berth):
    return berth.client()


@pytest.fixture(scope="module")
def test_image():
    build_test_image()
    return IMAGE


@pytest.fixture(scope="module")
def agent(berth, ecs, base, scope, test_image):
    a = Agent(berth, os.path.join(base, "host"), join_token(berth), driver="docker", scope=scope).start()
    a.wait_registered(ecs)
    yield a
    stop_all(ecs)
    a.stop()
    ids = docker("ps", "-aq", "--filter", f"label=berth.scope={scope}", check=False).stdout.split()
    if ids:
        docker("rm", "-f", *ids, check=False)
    vols = docker("volume", "ls", "-q", "--filter", f"label=berth.scope={scope}", check=False).stdout.split()
    if vols:
        docker("volume", "rm", "-f", *vols, check=False)


def stop_all(ecs, cluster="default"):
    arns = ecs.list_tasks(cluster=cluster)["taskArns"]
    for t in arns:
        ecs.stop_task(cluster=cluster, task=t)
    for t in arns:
        wait_task(ecs, t, "STOPPED", cluster=cluster, timeout=40)


@pytest.fixture
def out(base):
    """A host directory every container may write to (bind-mounted at /out)."""
    d = tempfile.mkdtemp(dir=base)
    os.chmod(d, 0o777)
    return d


def inspect(runtime_id):
    return json.loads(docker("inspect", runtime_id).stdout)[0]


def read(d, name):
    with open(os.path.join(d, name)) as f:
        return f.read().strip()


def container_named(task, name):
    return next(c for c in task["containers"] if c["name"] == name)


# ---------------------------------------------------------------------------------------------

APP_SCRIPT = """
ulimit -Sn > /out/nofile; ulimit -Hn > /out/nofile_hard
id -u > /out/uid; pwd > /out/pwd; hostname > /out/hostname
cat /data/msg > /out/scratch; cat /shared/msg > /out/volumes_from
cat /etc/resolv.conf > /out/resolv; cat /etc/hosts > /out/hosts
echo "$FROMFILE $BOTH $SECOND" > /out/env
cat /proc/sys/net/core/somaxconn > /out/somaxconn
(: > /rootfs-file) 2>/dev/null; echo $? > /out/rootfs_write
(: > /data/x) 2>/dev/null; echo $? > /out/ro_volume_write
grep ' /scratchtmp ' /proc/mounts > /out/tmpfs
grep ' /dev/shm ' /proc/mounts > /out/shm
test -c /dev/berthnull; echo $? > /out/device
cat /proc/1/comm > /out/pid1
[ -t 0 ]; echo $? > /out/tty
echo done > /out/done
trap 'exit 0' TERM; while :; do sleep 0.2; done
"""


@needs_docker
def test_container_fields_take_effect(ecs, agent, out, base):
    env_dir = tempfile.mkdtemp(dir=base)
    env1, env2 = os.path.join(env_dir, "one.env"), os.path.join(env_dir, "two.env")
    with open(env1, "w") as f:
        f.write("# comment\nFROMFILE=yes\nBOTH=file\n")
    with open(env2, "w") as f:
        f.write("FROMFILE=second-file\nSECOND=2\n")
    side = {
        "name": "side", "image": IMAGE, "memory": 32, "memoryReservation": 16, "essential": False,
        "command": ["sh", "-c", "echo from-side > /shared/msg"],
        "mountPoints": [{"sourceVolume": "scratch", "containerPath": "/shared"}],
    }
    app = {
        "name": "app", "image": IMAGE, "memory": 64, "stopTimeout": 2,
        "entryPoint": ["sh", "-c"], "command": [APP_SCRIPT],
        "dependsOn": [{"containerName": "side", "condition": "SUCCESS"}],
        "user": "1000", "workingDirectory": "/tmp",
        "ulimits": [{"name": "nofile", "softLimit": 1024, "hardLimit": 2048}],
        "readonlyRootFilesystem": True, "hostname": "berth-host",
        "dnsServers": ["10.9.8.7"], "dnsSearchDomains": ["berth.example"],
        "extraHosts": [{"hostname": "db.internal", "ipAddress": "10.1.2.3"}],
        "environment": [{"name": "BOTH", "value": "env"}],
        "environmentFiles": [{"value": f"file://{env1}", "type": "s3"}, {"value": env2, "type": "s3"}],
        "systemControls": [{"namespace": "net.core.somaxconn", "value": "512"}],
        "dockerSecurityOptions": ["no-new-privileges"],
        "dockerLabels": {"team": "fields"},
        "interactive": True, "pseudoTerminal": True,
        "linuxParameters": {
            "initProcessEnabled": True, "sharedMemorySize": 32,
            "tmpfs": [{"containerPath": "/scratchtmp", "size": 8, "mountOptions": ["noexec"]}],
            "devices": [{"hostPath": "/dev/null", "containerPath": "/dev/berthnull", "permissions": ["read", "write"]}],
            "capabilities": {"add": ["NET_ADMIN"], "drop": ["MKNOD"]},
            "maxSwap": 0, "swappiness": 10,
        },
        "mountPoints": [{"sourceVolume": "scratch", "containerPath": "/data", "readOnly": True},
                        {"sourceVolume": "out", "containerPath": "/out"}],
        "volumesFrom": [{"sourceContainer": "side", "readOnly": True}],
    }
    td = register(ecs, uniq("fields"), [side, app],
                  volumes=[{"name": "scratch"}, {"name": "out", "host": {"sourcePath": out}}])["taskDefinition"]
    names = {a["name"] for a in td["requiresAttributes"]}
    assert {"com.amazonaws.ecs.capability.docker-remote-api.1.17",
            "com.amazonaws.ecs.capability.docker-remote-api.1.22",
            "com.amazonaws.ecs.capability.docker-remote-api.1.25",
            "ecs.capability.container-ordering"} <= names
    arn = run_one(ecs, td["taskDefinitionArn"])["taskArn"]
    t = wait_task(ecs, arn, "RUNNING", timeout=30)
    wait_for(lambda: os.path.exists(os.path.join(out, "done")), 20, what="the app's report")

    assert read(out, "nofile") == "1024" and read(out, "nofile_hard") == "2048"
    assert read(out, "uid") == "1000"
    assert read(out, "pwd") == "/tmp"
    assert read(out, "hostname") == "berth-host"
    assert read(out, "scratch") == "from-side", "task scratch space shared between containers"
    assert read(out, "volumes_from") == "from-side"
    resolv = read(out, "resolv")
    assert "nameserver 10.9.8.7" in resolv and "berth.example" in resolv
    assert "10.1.2.3\tdb.internal" in read(out, "hosts") or "10.1.2.3 db.internal" in read(out, "hosts")
    assert read(out, "env") == "yes env 2", "environment wins over files; an earlier file wins"
    assert read(out, "somaxconn") == "512"
    assert read(out, "rootfs_write") != "0", "readonlyRootFilesystem"
    assert read(out, "ro_volume_write") != "0", "a readOnly mount point"
    assert "noexec" in read(out, "tmpfs") and "size=8192k" in read(out, "tmpfs")
    assert "size=32768k" in read(out, "shm")
    assert read(out, "device") == "0"
    assert read(out, "pid1") in ("docker-init", "tini"), "initProcessEnabled"
    assert read(out, "tty") == "0", "pseudoTerminal"

    app_c = container_named(t, "app")
    side_id = container_named(t, "side")["runtimeId"]
    info = inspect(app_c["runtimeId"])
    hc, cfg = info["HostConfig"], info["Config"]
    assert hc["Init"] is True and hc["ReadonlyRootfs"] is True
    assert hc["ShmSize"] == 32 << 20
    assert hc["Tmpfs"] == {"/scratchtmp": "size=8m,noexec"}
    assert hc["CapAdd"] == ["NET_ADMIN"] and hc["CapDrop"] == ["MKNOD"]
    assert hc["Devices"][0]["PathInContainer"] == "/dev/berthnull"
    assert hc["Devices"][0]["CgroupPermissions"] == "rw"
    assert hc["MemorySwap"] == hc["Memory"] == 64 << 20, "maxSwap 0: no swap"
    assert hc["MemorySwappiness"] in (10, None)
    assert hc["Ulimits"] == [{"Name": "nofile", "Soft": 1024, "Hard": 2048}]
    assert hc["SecurityOpt"] == ["no-new-privileges"]
    assert hc["Sysctls"] == {"net.core.somaxconn": "512"}
    assert hc["VolumesFrom"] == [f"{side_id}:ro"]
    assert any(b.endswith(":/data:ro") for b in hc["Binds"])
    assert f"{out}:/out" in hc["Binds"]
    assert cfg["User"] == "1000" and cfg["WorkingDir"] == "/tmp" and cfg["Hostname"] == "berth-host"
    assert cfg["Tty"] is True and cfg["OpenStdin"] is True
    assert cfg["Entrypoint"] == ["sh", "-c"]
    assert cfg["Labels"]["team"] == "fields"
    assert inspect(side_id)["HostConfig"]["MemoryReservation"] == 16 << 20
    tid = arn.rsplit("/", 1)[1]
    vol = json.loads(docker("volume", "inspect", f"berth-{tid}-scratch").stdout)[0]
    assert vol["Labels"]["berth.volume-scope"] == "task" and vol["Labels"]["berth.task-id"] == tid
    ecs.stop_task(cluster="default", task=arn)
    wait_task(ecs, arn, "STOPPED", timeout=30)


@needs_docker
def test_pid_ipc_namespaces_links_and_privileged(ecs, agent):
    first = {"name": "first", "image": IMAGE, "memory": 32, "stopTimeout": 2, "command": SLEEPER}
    second = {"name": "second", "image": IMAGE, "memory": 32, "stopTimeout": 2, "command": SLEEPER,
              "links": ["first:peer"]}
    td = register(ecs, uniq("ns"), [first, second], pidMode="task", ipcMode="task")["taskDefinition"]
    names = {a["name"] for a in td["requiresAttributes"]}
    assert "ecs.capability.pid-ipc-namespace-sharing" in names
    arn = run_one(ecs, td["taskDefinitionArn"])["taskArn"]
    t = wait_task(ecs, arn, "RUNNING", timeout=30)
    first_id = container_named(t, "first")["runtimeId"]
    a, b = inspect(first_id)["HostConfig"], inspect(container_named(t, "second")["runtimeId"])["HostConfig"]
    assert a["IpcMode"] == "shareable"
    assert b["PidMode"] == f"container:{first_id}" and b["IpcMode"] == f"container:{first_id}"
    assert any(link.endswith("/peer") for link in b["Links"]), b["Links"]
    # One pid namespace: the second container sees the first's processes.
    ps = docker("exec", container_named(t, "second")["runtimeId"], "ps").stdout
    assert ps.count("while :; do sleep 0.2; done") >= 2, ps
    ecs.stop_task(cluster="default", task=arn)
    wait_task(ecs, arn, "STOPPED", timeout=30)


@needs_docker
def test_privileged(ecs, agent):
    c = {"name": "app", "image": IMAGE, "memory": 32, "stopTimeout": 2, "privileged": True, "command": SLEEPER}
    td = register(ecs, uniq("priv"), [c])["taskDefinition"]
    assert "com.amazonaws.ecs.capability.privileged-container" in {a["name"] for a in td["requiresAttributes"]}
    arn = run_one(ecs, td["taskDefinitionArn"])["taskArn"]
    t = wait_for(lambda: (lambda t: t if t["lastStatus"] in ("RUNNING", "STOPPED") else None)(describe_task(ecs, arn)),
                 30, what="RUNNING or STOPPED")
    if t["lastStatus"] == "STOPPED":
        # A Docker daemon that itself runs without every capability (Docker in an unprivileged
        # container) cannot start privileged containers; berth asked for one and says why.
        assert "unable to apply caps" in t["stoppedReason"], t["stoppedReason"]
        pytest.skip("this Docker daemon cannot run privileged containers")
    assert inspect(t["containers"][0]["runtimeId"])["HostConfig"]["Privileged"] is True
    ecs.stop_task(cluster="default", task=arn)
    wait_task(ecs, arn, "STOPPED", timeout=30)


@needs_docker
def test_docker_volumes_task_and_shared_scope(ecs, agent, scope):
    shared = uniq("berth-shared").replace("-", "_")
    vols = [
        {"name": "cache", "dockerVolumeConfiguration": {"scope": "task", "driver": "local",
                                                        "driverOpts": {"type": "tmpfs", "device": "tmpfs"},
                                                        "labels": {"kind": "cache"}}},
        {"name": shared, "dockerVolumeConfiguration": {"scope": "shared", "autoprovision": True,
                                                       "driver": "local", "labels": {"kind": "shared"}}},
    ]
    c = {"name": "app", "image": IMAGE, "memory": 32, "stopTimeout": 2,
         "command": ["sh", "-c", "echo kept > /shared/f; grep ' /cache ' /proc/mounts > /shared/cache-mount; "
                     "trap 'exit 0' TERM; while :; do sleep 0.2; done"],
         "mountPoints": [{"sourceVolume": "cache", "containerPath": "/cache"},
                         {"sourceVolume": shared, "containerPath": "/shared"}]}
    td = register(ecs, uniq("vols"), [c], volumes=vols)["taskDefinition"]
    assert "ecs.capability.docker-plugin.local" in {a["name"] for a in td["requiresAttributes"]}
    arn = run_one(ecs, td["taskDefinitionArn"])["taskArn"]
    wait_task(ecs, arn, "RUNNING", timeout=30)
    tid = arn.rsplit("/", 1)[1]
    cache = json.loads(docker("volume", "inspect", f"berth-{tid}-cache").stdout)[0]
    assert cache["Options"] == {"type": "tmpfs", "device": "tmpfs"}
    assert cache["Labels"]["kind"] == "cache" and cache["Labels"]["berth.volume-scope"] == "task"
    kept = json.loads(docker("volume", "inspect", shared).stdout)[0]
    assert kept["Labels"]["kind"] == "shared" and kept["Labels"]["berth.volume-scope"] == "shared"
    ecs.stop_task(cluster="default", task=arn)
    wait_task(ecs, arn, "STOPPED", timeout=30)

    # The shared volume outlives the task; a later task reads what the first wrote.
    reader = {"name": "app", "image": IMAGE, "memory": 32, "command": ["sh", "-c", "cat /shared/f | grep -q kept"],
              "mountPoints": [{"sourceVolume": shared, "containerPath": "/shared"}]}
    td2 = register(ecs, uniq("vols"), [reader], volumes=[vols[1]])["taskDefinition"]["taskDefinitionArn"]
    t = wait_task(ecs, run_one(ecs, td2)["taskArn"], "STOPPED", timeout=30)
    assert t["containers"][0]["exitCode"] == 0

    # A shared volume that must exist (autoprovision false) and does not: the task fails.
    missing = {"name": "nope", "dockerVolumeConfiguration": {"scope": "shared", "autoprovision": False}}
    c2 = {"name": "app", "image": IMAGE, "memory": 32, "command": SLEEPER,
          "mountPoints": [{"sourceVolume": "nope", "containerPath": "/x"}]}
    td3 = register(ecs, uniq("vols"), [c2], volumes=[missing])["taskDefinition"]["taskDefinitionArn"]
    t = wait_task(ecs, run_one(ecs, td3)["taskArn"], "STOPPED", timeout=30)
    assert t["stopCode"] == "TaskFailedToStart"
    assert "ResourceInitializationError" in t["stoppedReason"] and "nope" in t["stoppedReason"]
    docker("volume", "rm", "-f", shared, check=False)


def restart_count(ecs, arn):
    """berth's restartCount, which botocore's Container shape lacks (read from the raw answer)."""
    seen = {}

    def grab(http_response, **_):
        seen["body"] = json.loads(http_response.content)
    ecs.meta.events.register("after-call.ecs.DescribeTasks", grab)
    try:
        ecs.describe_tasks(cluster="default", tasks=[arn])
    finally:
        ecs.meta.events.unregister("after-call.ecs.DescribeTasks", grab)
    return seen["body"]["tasks"][0]["containers"][0].get("restartCount", 0)


@needs_docker
def test_restart_policy_restarts_in_place(berth, agent, out):
    ecs = berth.client(strict=False)
    # ECS's shortest restartAttemptPeriod is 60 s: the container must run that long before a
    # restart is allowed, so it exits after 61 s.
    c = {"name": "app", "image": IMAGE, "memory": 32, "stopTimeout": 2,
         "command": ["sh", "-c", "echo start >> /out/starts; sleep 61; exit 3"],
         "restartPolicy": {"enabled": True, "ignoredExitCodes": [0], "restartAttemptPeriod": 60},
         "mountPoints": [{"sourceVolume": "out", "containerPath": "/out"}]}
    td = register(ecs, uniq("restart"), [c], volumes=[{"name": "out", "host": {"sourcePath": out}}])
    assert "ecs.capability.container-restart-policy" in {
        a["name"] for a in td["taskDefinition"]["requiresAttributes"]}
    arn = run_one(ecs, td["taskDefinition"]["taskDefinitionArn"])["taskArn"]
    t = wait_task(ecs, arn, "RUNNING", timeout=30)
    runtime_id = t["containers"][0]["runtimeId"]
    wait_for(lambda: restart_count(ecs, arn) >= 1, 90, interval=0.5, what="a restart")
    t = describe_task(ecs, arn)
    assert t["lastStatus"] == "RUNNING", "an essential container being restarted does not stop the task"
    assert t["containers"][0]["runtimeId"] == runtime_id, "restarted in place"
    assert read(out, "starts").splitlines() == ["start", "start"]
    ecs.stop_task(cluster="default", task=arn)
    wait_task(ecs, arn, "STOPPED", timeout=30)


@needs_docker
def test_restart_policy_does_not_restart_an_early_exit(ecs, agent):
    c = {"name": "app", "image": IMAGE, "memory": 32, "command": ["sh", "-c", "exit 4"],
         "restartPolicy": {"enabled": True, "restartAttemptPeriod": 60}}
    td = register(ecs, uniq("restart"), [c])["taskDefinition"]["taskDefinitionArn"]
    t = wait_task(ecs, run_one(ecs, td)["taskArn"], "STOPPED", timeout=30)
    assert t["stopCode"] == "EssentialContainerExited" and t["containers"][0]["exitCode"] == 4


@needs_docker
def test_start_timeout_fails_a_task_whose_dependency_never_gets_there(ecs, agent):
    dep = {"name": "dep", "image": IMAGE, "memory": 32, "stopTimeout": 2, "command": SLEEPER}
    app = {"name": "app", "image": IMAGE, "memory": 32, "command": SLEEPER, "startTimeout": 2,
           "dependsOn": [{"containerName": "dep", "condition": "COMPLETE"}]}
    td = register(ecs, uniq("st"), [dep, app])["taskDefinition"]["taskDefinitionArn"]
    t = wait_task(ecs, run_one(ecs, td)["taskArn"], "STOPPED", timeout=30)
    assert t["stopCode"] == "TaskFailedToStart" and "startTimeout" in t["stoppedReason"]


@needs_docker
def test_disable_networking(ecs, agent):
    c = {"name": "app", "image": IMAGE, "memory": 32, "disableNetworking": True,
         "command": ["sh", "-c", "grep -q eth0 /proc/net/dev && exit 1; exit 0"]}
    td = register(ecs, uniq("nonet"), [c])["taskDefinition"]["taskDefinitionArn"]
    t = wait_task(ecs, run_one(ecs, td)["taskArn"], "STOPPED", timeout=30)
    assert t["containers"][0]["exitCode"] == 0, "no network interface but loopback"
    assert inspect(t["containers"][0]["runtimeId"])["Config"]["NetworkDisabled"] is True


def test_s3_environment_files_are_refused(ecs):
    e = expect_error("ClientException", register, ecs, uniq("envs3"), [
        {"name": "app", "image": IMAGE, "memory": 32,
         "environmentFiles": [{"value": "arn:aws:s3:::bucket/app.env", "type": "s3"}]}])
    msg = e.response["Error"]["Message"]
    assert "environmentFiles" in msg and "S3" in msg


def test_a_process_host_is_never_given_a_task_needing_docker(berth, ecs, base, out):
    cluster = uniq("proc")
    ecs.create_cluster(clusterName=cluster)
    a = Agent(berth, os.path.join(base, "proc-host"), join_token(berth, cluster), cluster=cluster,
              driver="process").start()
    try:
        a.wait_registered(ecs)
        ci = ecs.describe_container_instances(cluster=cluster, containerInstances=[a.arn])["containerInstances"][0]
        attrs = {x["name"] for x in ci["attributes"]}
        assert "com.amazonaws.ecs.capability.privileged-container" not in attrs
        assert "ecs.capability.container-ordering" in attrs
        td = register(ecs, uniq("priv"), [{"name": "app", "image": IMAGE, "memory": 32, "privileged": True,
                                            "command": SLEEPER}])["taskDefinition"]["taskDefinitionArn"]
        r = ecs.run_task(cluster=cluster, taskDefinition=td)
        assert not r["tasks"]
        assert r["failures"][0]["reason"] == "ATTRIBUTE"
        assert "is missing" in r["failures"][0]["detail"], r["failures"]
        # runtimePlatform: the other architecture than this host's is never placed here.
        other = "ARM64" if os.uname().machine in ("x86_64", "amd64") else "X86_64"
        td = register(ecs, uniq("arch"), [{"name": "app", "image": IMAGE, "memory": 32, "command": SLEEPER}],
                      runtimePlatform={"cpuArchitecture": other, "operatingSystemFamily": "LINUX"})
        assert {"name": "ecs.cpu-architecture", "value": other.lower()} in [
            {k: a[k] for k in ("name", "value") if k in a} for a in td["taskDefinition"]["requiresAttributes"]]
        r = ecs.run_task(cluster=cluster, taskDefinition=td["taskDefinition"]["taskDefinitionArn"])
        assert not r["tasks"] and r["failures"][0]["reason"] == "ATTRIBUTE"
        # A task the process driver can honour is placed there.
        # Ulimits the shell can set are applied by the process driver too.
        script = f"ulimit -Sn > {out}/nofile; ulimit -Hn >> {out}/nofile; pwd >> {out}/nofile; exec sleep 30"
        plain = register(ecs, uniq("plain"), [{"name": "app", "image": IMAGE, "memory": 32,
                                               "user": str(os.getuid()), "workingDirectory": "/tmp",
                                               "ulimits": [{"name": "nofile", "softLimit": 256, "hardLimit": 512}],
                                               "command": ["sh", "-c", script]}])["taskDefinition"]
        assert plain["requiresAttributes"] == []
        arn = run_one(ecs, plain["taskDefinitionArn"], cluster=cluster)["taskArn"]
        wait_task(ecs, arn, "RUNNING", cluster=cluster, timeout=20)
        wait_for(lambda: len(read(out, "nofile").split()) == 3, 10, what="the report")
        assert read(out, "nofile").split() == ["256", "512", "/tmp"]
        stop_all(ecs, cluster)
    finally:
        a.stop()
