"""`berth up --tls`: the API over HTTPS under a cluster CA (ca.pem in the data dir), reached by
the real aws CLI (`--ca-bundle`), boto3 (`verify=`) and berth's CLI (`AWS_CA_BUNDLE`); agents
talk TLS and verify the cluster CA. Plain HTTP to the TLS port, a wrong CA, an agent with the
wrong CA: all refused.
"""
import http.client
import os
import socket
import ssl
import stat
import subprocess
import tempfile
import urllib.error
import urllib.request

import botocore.exceptions
import pytest

from conftest import BERTH_BIN, Agent, Berth, join_token, wait_for


@pytest.fixture(scope="module")
def tb():
    with tempfile.TemporaryDirectory() as d:
        b = Berth(d, tls=True, args=["--driver", "process", "--header-read-timeout", "1"]).start()
        yield b
        b.stop()


@pytest.fixture(scope="module")
def other_ca():
    """Another cluster's CA: what a client of the wrong cluster trusts."""
    with tempfile.TemporaryDirectory() as d:
        b = Berth(d, tls=True, agent=False).start()
        b.stop()
        yield b.ca_bundle


def test_exports_name_the_https_endpoint_and_the_ca(tb):
    exports = tb.read_exports()
    assert exports["AWS_ENDPOINT_URL_ECS"] == tb.endpoint
    assert tb.endpoint.startswith("https://")
    assert exports["AWS_CA_BUNDLE"] == tb.ca_bundle
    # The CA's key is the owner's alone; the certificate is public.
    mode = stat.S_IMODE(os.stat(os.path.join(tb.data_dir, "ca.key")).st_mode)
    assert mode == 0o600, oct(mode)


def test_aws_cli_boto3_and_berth_cli_over_https(tb):
    arns = tb.aws("ecs", "list-clusters")["clusterArns"]
    assert any(a.endswith(":cluster/default") for a in arns)
    ecs = tb.client(verify=tb.ca_bundle)
    assert any(a.endswith(":cluster/default") for a in ecs.list_clusters()["clusterArns"])
    assert "default" in tb.cli("cluster", "ls").stdout


def test_the_local_agent_registers_over_tls(tb):
    ecs = tb.client()

    def connected():
        arns = ecs.list_container_instances(cluster="default")["containerInstanceArns"]
        if not arns:
            return False
        d = ecs.describe_container_instances(cluster="default", containerInstances=arns)
        return any(ci["agentConnected"] for ci in d["containerInstances"])

    wait_for(connected, what="the local agent to register over TLS")


def test_plain_http_to_the_tls_port_is_refused(tb):
    with socket.create_connection(("127.0.0.1", tb.port), timeout=10) as s:
        s.sendall(b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n")
        reply = b""
        try:
            while chunk := s.recv(4096):
                reply += chunk
        except ConnectionResetError:
            pass
    # At most a TLS alert, then the close: never an HTTP answer.
    assert not reply.startswith(b"HTTP/"), reply[:100]
    with pytest.raises((urllib.error.URLError, http.client.HTTPException, OSError)):
        urllib.request.urlopen(f"http://127.0.0.1:{tb.port}/ping", timeout=10).read()


def test_a_wrong_ca_fails_verification(tb, other_ca):
    p = tb.aws("ecs", "list-clusters", "--ca-bundle", other_ca, check=False)
    assert p.returncode != 0
    assert "SSL" in p.stderr or "certificate" in p.stderr, p.stderr
    ecs = tb.client(verify=other_ca)
    with pytest.raises(botocore.exceptions.SSLError):
        ecs.list_clusters()
    ctx = ssl.create_default_context(cafile=other_ca)
    with pytest.raises(ssl.SSLCertVerificationError):
        with socket.create_connection(("127.0.0.1", tb.port), timeout=10) as s:
            ctx.wrap_socket(s, server_hostname="127.0.0.1")


def test_a_stalled_handshake_is_closed_at_the_header_deadline(tb):
    # --header-read-timeout 1: a client that opens a connection and never says hello is closed.
    with socket.create_connection(("127.0.0.1", tb.port), timeout=30) as s:
        assert s.recv(1) == b"", "the server closed the stalled connection"
    # Its slot is free again: the API still answers.
    tb.client().list_clusters()


def test_agents_verify_the_cluster_ca(tb, other_ca):
    token = join_token(tb)
    ecs = tb.client()
    with tempfile.TemporaryDirectory() as d:
        bad = Agent(tb, os.path.join(d, "bad"), token, args=["--ca-cert", other_ca]).start()
        good = Agent(tb, os.path.join(d, "good"), token).start()
        try:
            good.wait_registered(ecs)
            # The agent with the wrong CA keeps failing its registration on the certificate.
            wait_for(lambda: "certificate" in bad.log().lower() or "tls" in bad.log().lower(),
                     what="the wrong-CA agent's certificate error")
            assert bad.identity() is None, "an agent that does not trust the server registered"
            assert bad.proc.poll() is None or bad.proc.returncode != 0
        finally:
            bad.stop()
            good.stop()


def test_an_https_agent_needs_a_ca_and_a_ca_needs_https(tb):
    token = join_token(tb)
    with tempfile.TemporaryDirectory() as d:
        base = [BERTH_BIN, "agent", "--token", token,
                "--state-dir", d, "--driver", "process"]
        env = {k: v for k, v in os.environ.items() if not k.startswith("BERTH_")}
        p = subprocess.run(base + ["--server", tb.endpoint], capture_output=True, text=True,
                           env=env, timeout=30)
        assert p.returncode != 0 and "--ca-cert" in p.stderr, p.stderr
        p = subprocess.run(base + ["--server", f"http://127.0.0.1:{tb.port}", "--ca-cert", tb.ca_bundle],
                           capture_output=True, text=True, env=env, timeout=30)
        assert p.returncode != 0 and "https" in p.stderr, p.stderr


def test_the_ca_survives_a_restart(fresh_dir):
    b = Berth(fresh_dir, tls=True, agent=False).start()
    try:
        with open(b.ca_bundle) as f:
            first = f.read()
    finally:
        b.stop()
    b = Berth(fresh_dir, tls=True, agent=False).start()
    try:
        with open(b.ca_bundle) as f:
            assert f.read() == first, "the cluster CA was replaced"
        # The new server certificate chains to the CA clients already trust.
        b.client(verify=b.ca_bundle).list_clusters()
    finally:
        b.stop()


def test_tls_flags_are_checked(fresh_dir):
    bin_ = BERTH_BIN
    p = subprocess.run([bin_, "server", "--data-dir", fresh_dir, "--listen", "127.0.0.1:0",
                        "--tls-san", "api.example"], capture_output=True, text=True, timeout=30)
    assert p.returncode != 0 and "--tls-san" in p.stderr, p.stderr
    p = subprocess.run([bin_, "server", "--data-dir", fresh_dir, "--listen", "127.0.0.1:0",
                        "--tls-key", "/nonexistent"], capture_output=True, text=True, timeout=30)
    assert p.returncode != 0 and "--tls-cert" in p.stderr, p.stderr


def test_host_group_hosts_join_over_tls(fresh_dir):
    # A `process` host's agent is started with the cluster CA (BERTH_CA_CERT) and an https URL.
    from test_hostgroups import cleanup_groups, in_service, kill_all_under, make_group, wait_cluster_hosts
    from conftest import uniq
    b = Berth(fresh_dir, tls=True, agent=False,
              args=["--host-agent-driver", "process", "--agent-timeout", "6"]).start()
    try:
        name, cluster = uniq("hg"), uniq("hgc")
        asg = make_group(b, name, cluster, desired=1)
        hosts = in_service(asg, name, 1)
        wait_cluster_hosts(b.client(), cluster, [h["InstanceId"] for h in hosts])
    finally:
        cleanup_groups(b)
        b.stop()
        kill_all_under(fresh_dir)


def test_docker_host_group_hosts_join_over_tls(fresh_dir):
    # A docker host dials the server through the bridge gateway (named in the certificate) and
    # trusts the cluster CA mounted read-only into its container.
    from conftest import build_test_image, docker_ok, uniq
    if not docker_ok():
        pytest.skip("needs a Docker daemon")
    from test_hostgroups import cleanup_groups, in_service, kill_all_under, make_group, wait_cluster_hosts
    from test_hostgroups_docker import remove_containers
    build_test_image()
    name, cluster = uniq("hgt"), uniq("hgtc")
    b = Berth(fresh_dir, tls=True, agent=False,
              args=["--host-agent-driver", "process", "--agent-timeout", "6", "--host-provider", "docker"]).start()
    try:
        asg = make_group(b, name, cluster, desired=1, provider="docker")
        hosts = in_service(asg, name, 1)
        wait_cluster_hosts(b.client(), cluster, [h["InstanceId"] for h in hosts])
    finally:
        cleanup_groups(b)
        b.stop()
        remove_containers(name)
        kill_all_under(fresh_dir)
