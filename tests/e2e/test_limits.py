"""The API's connection limits (issue 14): a flood of idle and slow-loris connections from one
address cannot keep another client out, a half-sent request is cut off after the header-read
timeout, and a kept-alive connection that goes quiet is closed after the idle timeout."""
import socket
import tempfile
import threading
import time

import pytest

from conftest import Berth, wait_for

BERTH_AGENT = False


@pytest.fixture(scope="module")
def limited():
    with tempfile.TemporaryDirectory() as d:
        # 256 descriptors: a flood of 300 connections would exhaust them without the caps
        # (sized from this limit: 192 connections, 48 per address).
        b = Berth(d, agent=False, nofile=256,
                  args=["--header-read-timeout", "2", "--idle-timeout", "3"]).start()
        yield b
        b.stop()


def connect_from(source, port):
    s = socket.socket()
    s.bind((source, 0))
    s.settimeout(5)
    s.connect(("127.0.0.1", port))
    return s


def closed_by_server(s, within):
    """True when the server closes `s` (EOF or reset) within `within` seconds."""
    s.settimeout(within)
    try:
        return s.recv(1024) == b"" or True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False


def test_half_sent_headers_are_cut_off(limited):
    s = connect_from("127.0.0.1", limited.port)
    s.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nX-Slow: ")
    started = time.monotonic()
    assert closed_by_server(s, 15), "a slow-loris request was never timed out"
    assert time.monotonic() - started < 14
    s.close()


def test_idle_keep_alive_connections_are_closed(limited):
    s = connect_from("127.0.0.1", limited.port)
    s.sendall(b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n")
    assert b"200" in s.recv(1024)
    assert closed_by_server(s, 15), "an idle connection was kept forever"
    s.close()


def test_a_flood_from_one_address_does_not_lock_out_another(limited):
    """300 idle and slow-loris connections from 127.0.0.2, reopened as the server closes them,
    while signed API calls from 127.0.0.1 keep being answered."""
    stop = threading.Event()
    opened = [0]

    def flood(slow):
        held = []
        while not stop.is_set():
            try:
                s = connect_from("127.0.0.2", limited.port)
                if slow:
                    s.sendall(b"POST / HTTP/1.1\r\nHost: x\r\n")
                held.append(s)
                opened[0] += 1
            except OSError:
                time.sleep(0.01)
            if len(held) >= 150:
                # Drop the ones the server closed and reopen (a peer that keeps reconnecting).
                for s in held:
                    s.close()
                held = []
        for s in held:
            s.close()

    threads = [threading.Thread(target=flood, args=(slow,), daemon=True) for slow in (False, True)]
    for t in threads:
        t.start()
    try:
        wait_for(lambda: opened[0] >= 300, 30, what="the flood to open 300 connections")
        ecs = limited.client()
        for _ in range(10):
            t0 = time.monotonic()
            assert ecs.list_clusters()["clusterArns"] is not None
            # Answered while the flood holds every slot its address may have.
            assert time.monotonic() - t0 < 5
    finally:
        stop.set()
        for t in threads:
            t.join(10)
