"""A full disk under the store: writes fail with a clear ServerException and `/ping` answers 503
while it lasts; once space returns the store recovers by itself (no restart) and every write
that was acknowledged is there. Needs root (it mounts a small tmpfs as the data dir)."""
import errno
import os
import subprocess
import tempfile
import urllib.error
import urllib.request

import pytest
from botocore.exceptions import ClientError

from conftest import Berth, container, wait_for

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")


@pytest.fixture
def small_disk():
    d = tempfile.mkdtemp(prefix="berth-small-disk-")
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m,mode=0700", "tmpfs", d],
                       capture_output=True, text=True)
    if p.returncode != 0:
        os.rmdir(d)
        pytest.skip(f"cannot mount a tmpfs here: {p.stderr.strip()}")
    try:
        yield d
    finally:
        if subprocess.run(["umount", d]).returncode != 0:
            subprocess.run(["umount", "-l", d])
        os.rmdir(d)


def ping_status(b):
    try:
        with urllib.request.urlopen(b.endpoint + "/ping", timeout=5) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def fill(path):
    """Writes `path` until the disk is full."""
    chunk = b"\0" * 65536
    with open(path, "wb") as f:
        try:
            while True:
                f.write(chunk)
                f.flush()
        except OSError as e:
            assert e.errno == errno.ENOSPC, e


def test_a_full_disk_fails_writes_clearly_and_recovers_with_nothing_acknowledged_lost(small_disk):
    b = Berth(small_disk, agent=False).start()
    try:
        ecs = b.client(strict=False)  # a 500 is the point here
        big = [{"name": f"V{i}", "value": "x" * 1000} for i in range(8)]
        acked = []

        def register(family):
            r = ecs.register_task_definition(family=family, containerDefinitions=[container(environment=big)])
            acked.append((family, r["taskDefinition"]["revision"]))

        for i in range(5):
            register("before")
        filler = os.path.join(small_disk, "filler")
        fill(filler)
        # Pages the store already holds may take a write or two; the disk refuses the rest.
        failure = None
        for i in range(200):
            try:
                register("during")
            except ClientError as e:
                failure = e.response
                break
        assert failure is not None, "no write failed on a full disk"
        assert failure["Error"]["Code"] == "ServerException"
        assert failure["ResponseMetadata"]["HTTPStatusCode"] == 500
        assert "the store's disk is full" in failure["Error"]["Message"], failure["Error"]
        assert ping_status(b) == 503
        with pytest.raises(ClientError) as again:
            register("during")
        assert again.value.response["Error"]["Code"] == "ServerException"

        os.remove(filler)
        wait_for(lambda: ping_status(b) == 200, 30, interval=0.1, what="the store to recover")
        for i in range(3):
            register("after")
        for family, revision in acked:
            td = ecs.describe_task_definition(taskDefinition=f"{family}:{revision}")["taskDefinition"]
            assert td["revision"] == revision
        assert b.proc.poll() is None, "the server kept running"
    finally:
        b.stop()
        b.log.close()
    # And after a restart, from the file itself.
    b = Berth(small_disk, port=b.port, agent=False).start()
    try:
        ecs = b.client(strict=False)  # a 500 is the point here
        for family, revision in acked:
            ecs.describe_task_definition(taskDefinition=f"{family}:{revision}")
    finally:
        b.stop()
        b.log.close()
