"""The newcomer's path: `berth up`, paste the exports, `aws ecs list-clusters`."""
import os
import subprocess

from conftest import Berth


def test_up_prints_working_exports(fresh_dir):
    b = Berth(fresh_dir).start()
    try:
        exports = b.read_exports()
        assert set(exports) >= {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL_ECS"}
        env = dict(os.environ, AWS_CONFIG_FILE="/dev/null", AWS_SHARED_CREDENTIALS_FILE="/dev/null", **exports)
        env.pop("AWS_ENDPOINT_URL", None)
        aws = os.path.join(os.path.dirname(os.path.realpath(os.sys.executable)), "aws")
        # No --endpoint-url: AWS_ENDPOINT_URL_ECS alone must be enough.
        p = subprocess.run([aws, "ecs", "list-clusters", "--output", "json"], capture_output=True, text=True, env=env, timeout=60)
        assert p.returncode == 0, p.stderr
        assert ":cluster/default" in p.stdout
    finally:
        b.stop()


def test_generated_keys_persist_across_restarts(fresh_dir):
    b = Berth(fresh_dir, keys=False).start()
    first = b.read_exports()
    b.stop()
    b = Berth(fresh_dir, keys=False, port=b.port).start()
    try:
        assert b.read_exports()["AWS_ACCESS_KEY_ID"] == first["AWS_ACCESS_KEY_ID"]
        c = b.client(access_key=first["AWS_ACCESS_KEY_ID"], secret_key=first["AWS_SECRET_ACCESS_KEY"])
        assert c.list_clusters()["clusterArns"]
    finally:
        b.stop()
