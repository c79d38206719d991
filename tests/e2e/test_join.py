"""Several replicas of one control plane on etcd (`berth up --join`), and clients that fail over.

Replica A (`berth up --store etcd://... --no-agent`) publishes the sealed bootstrap bundle and
prints its server token; replica B (`berth server --store ... --join TOKEN`) takes the keys from
it. Checked: A's generated root key works on B; a SecureString put through A reads decrypted
through B; an agent given both URLs keeps its task and stays connected after A is killed (-9);
the berth CLI given both URLs works after A is killed; `--join` is refused with a wrong token,
with no bundle, and with the embedded store, and a second replica without `--join` is refused.

Each test starts its own etcd (see test_etcd.py) and removes every process it starts."""
import os
import signal
import subprocess
import time

from conftest import (ACCESS_KEY, BERTH_BIN, REGION, Agent, Berth, container,
                      processes_with_argv, register, uniq, wait_for, wait_task)
from test_etcd import etcd_server

AGENT_TIMEOUT = 3  # seconds without a poll before an instance shows agentConnected false


# The task the agent test runs: its argv names its process for the cleanup.
SLEEPER = ["sleep", "3600.731"]


def start_first(data_dir, url, *extra):
    """Replica A with generated keys; returns it, its key pair and its server token."""
    a = Berth(data_dir, keys=False, agent=False,
              args=["--store", url, "--agent-timeout", str(AGENT_TIMEOUT), *extra]).start()
    exports = a.read_exports()
    token = None
    deadline = time.monotonic() + 20
    while token is None and time.monotonic() < deadline:
        line = a.proc.stdout.readline()
        if not line:
            break
        if "--join " in line:
            token = line.split("--join ", 1)[1].strip()
    assert token and token.startswith("bst1."), "replica A printed its server token"
    with open(os.path.join(data_dir, "server.token")) as f:
        assert f.read().strip() == token
    return a, (exports["AWS_ACCESS_KEY_ID"], exports["AWS_SECRET_ACCESS_KEY"]), token


def start_joined(data_dir, url, token, *extra):
    return Berth(data_dir, keys=False, agent=False,
                 args=["--store", url, "--join", token, "--agent-timeout", str(AGENT_TIMEOUT),
                       *extra]).start("server")


def mk(tmp_path, name):
    d = tmp_path / name
    d.mkdir(exist_ok=True)
    return str(d)


class BothAgent(Agent):
    """An agent given every replica's URL."""

    def command(self):
        cmd = super().command()
        cmd[cmd.index("--server") + 1] = self.servers
        return cmd


def refused(data_dir, *args):
    """Runs `berth server` that must refuse to start; returns its stderr."""
    p = subprocess.run([BERTH_BIN, "server", "--data-dir", data_dir, "--listen", "127.0.0.1:0", *args],
                       capture_output=True, text=True, timeout=60,
                       env={k: v for k, v in os.environ.items() if not k.startswith("BERTH_ROOT")})
    assert p.returncode != 0, f"berth server started: {p.stdout}"
    return p.stderr


def cli(endpoints, creds, *args):
    env = dict(os.environ, AWS_ACCESS_KEY_ID=creds[0], AWS_SECRET_ACCESS_KEY=creds[1],
               AWS_DEFAULT_REGION=REGION)
    env.pop("AWS_ENDPOINT_URL_ECS", None)
    return subprocess.run([BERTH_BIN, *args, "--endpoint-url", endpoints, "--output", "json"],
                          capture_output=True, text=True, env=env, timeout=60)


def test_a_joined_replica_shares_keys_secrets_and_agents(tmp_path):
    with etcd_server() as etcd:
        url = f"etcd://{etcd}/join"
        a, creds, token = start_first(mk(tmp_path, "a"), url)
        b = agent = None
        try:
            b = start_joined(mk(tmp_path, "b"), url, token)
            ecs_a = a.client(access_key=creds[0], secret_key=creds[1])
            ecs_b = b.client(access_key=creds[0], secret_key=creds[1])
            # The same access key works on both (A generated it; B got it from the bundle).
            assert creds[0] != ACCESS_KEY
            ecs_a.create_cluster(clusterName="default")
            assert "default" in str(ecs_b.list_clusters()["clusterArns"])
            # A SecureString sealed by A opens on B: one secrets key.
            name = f"/{uniq('join')}/password"
            a.client("ssm", access_key=creds[0], secret_key=creds[1]).put_parameter(
                Name=name, Type="SecureString", Value="s3cret-via-a")
            got = b.client("ssm", access_key=creds[0], secret_key=creds[1]).get_parameter(
                Name=name, WithDecryption=True)["Parameter"]
            assert got["Value"] == "s3cret-via-a" and got["Type"] == "SecureString"
            # The metrics token too.
            assert "berth" in b.metrics_text()

            # An agent given both URLs, its join token minted by A (one join secret).
            tok = subprocess.run([BERTH_BIN, "join-token", "default", "--endpoint-url", a.endpoint],
                                 capture_output=True, text=True, timeout=60,
                                 env=dict(os.environ, AWS_ACCESS_KEY_ID=creds[0],
                                          AWS_SECRET_ACCESS_KEY=creds[1])).stdout.strip()
            agent = BothAgent(a, mk(tmp_path, "agent"), tok, poll_wait=1)
            agent.servers = f"{a.endpoint},{b.endpoint}"
            agent.start()
            arn = agent.wait_registered(ecs_b)
            td = register(ecs_a, uniq("join"), [container(memory=16, command=SLEEPER)])
            task = ecs_a.start_task(cluster="default", taskDefinition=td["taskDefinition"]["taskDefinitionArn"],
                                    containerInstances=[arn])
            task_arn = task["tasks"][0]["taskArn"]
            wait_task(ecs_b, task_arn, "RUNNING", timeout=30)

            a.kill9()
            # The agent moves to B; B keeps seeing it connected past the agent timeout, and
            # the task keeps running.
            wait_for(lambda: "trying the next" in agent.log(), 20, what="the agent to fail over")
            window_end = time.monotonic() + 2 * AGENT_TIMEOUT + 1
            while time.monotonic() < window_end:
                ci = ecs_b.describe_container_instances(cluster="default", containerInstances=[arn])
                assert ci["containerInstances"][0]["agentConnected"], "the agent stays connected via B"
                assert agent.proc.poll() is None, agent.log()[-2000:]
                time.sleep(0.5)
            t = ecs_b.describe_tasks(cluster="default", tasks=[task_arn])["tasks"][0]
            assert t["lastStatus"] == "RUNNING"

            # The berth CLI with both URLs works with A dead.
            p = cli(f"{a.endpoint},{b.endpoint}", creds, "cluster", "ls")
            assert p.returncode == 0, p.stderr
            assert "default" in p.stdout
        finally:
            if agent:
                agent.stop()
            for r in (b, a):
                if r:
                    r.stop()
            # A stopped agent leaves its tasks running (as ECS's does): end this one's process.
            for pid in processes_with_argv(SLEEPER):
                os.kill(pid, signal.SIGKILL)


def test_join_is_refused_without_the_right_token_or_a_bundle(tmp_path):
    wrong = "bst1." + "ab" * 32
    # The embedded store has one replica only.
    assert "--join needs a shared store" in refused(mk(tmp_path, "e"), "--join", wrong)
    with etcd_server() as etcd:
        url = f"etcd://{etcd}/join"
        # No bundle yet: nothing to join.
        assert "holds no bootstrap bundle" in refused(mk(tmp_path, "n"), "--store", url, "--join", wrong)
        a, _creds, token = start_first(mk(tmp_path, "a"), url)
        try:
            assert "wrong server token" in refused(mk(tmp_path, "w"), "--store", url, "--join", wrong)
            assert "not a berth server token" in refused(mk(tmp_path, "x"), "--store", url, "--join", "nope")
            # A second replica that does not join would serve other keys: refused.
            assert "start this replica with --join" in refused(mk(tmp_path, "s"), "--store", url)
            # A replica restarted on its data dir checks its keys against the bundle and serves.
            a.stop()
            a2 = Berth(mk(tmp_path, "a"), keys=False, agent=False, port=a.port,
                       args=["--store", url]).start()
            a2.stop()
        finally:
            a.stop()


def test_a_joined_replica_serves_under_the_same_cluster_ca(tmp_path):
    """With --tls the bundle carries the cluster CA: B's certificate is signed by A's ca.pem, so
    one CA file serves clients and agents of every replica."""
    with etcd_server() as etcd:
        url = f"etcd://{etcd}/tls"
        a_dir, b_dir = mk(tmp_path, "a"), mk(tmp_path, "b")
        a = Berth(a_dir, keys=False, agent=False, tls=True, args=["--store", url])
        a.start()
        b = None
        try:
            exports = a.read_exports()
            token = open(os.path.join(a_dir, "server.token")).read().strip()
            b = Berth(b_dir, keys=False, agent=False, tls=True, args=["--store", url, "--join", token])
            b.start("server")
            assert open(os.path.join(b_dir, "ca.pem")).read() == open(os.path.join(a_dir, "ca.pem")).read()
            # A client that trusts A's CA file only talks to B.
            ecs_b = b.client(access_key=exports["AWS_ACCESS_KEY_ID"],
                             secret_key=exports["AWS_SECRET_ACCESS_KEY"], verify=a.ca_bundle)
            assert "clusterArns" in ecs_b.list_clusters()
        finally:
            for r in (b, a):
                if r:
                    r.stop()
