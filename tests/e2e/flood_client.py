"""A connection flood for test_flood.py, run as its own process (so its event loop does not
hold the test's GIL): from SOURCE, hold IDLE silent and SLOW slow-loris connections against
each PORT, reopening whatever the server closes, until stdin closes or DURATION seconds pass.
Prints one JSON line of counts a second.

    python flood_client.py SOURCE DURATION IDLE SLOW PORT...
"""
import asyncio
import json
import random
import resource
import sys

stats = {"opened": 0, "closed_by_server": 0, "connect_failed": 0}


async def hold(port, slow, source, stop, connecting):
    while not stop.is_set():
        try:
            # A few hundred handshakes at a time: more only overflow the listen backlog.
            async with connecting:
                r, w = await asyncio.wait_for(
                    asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0)), 5)
        except (OSError, asyncio.TimeoutError):
            stats["connect_failed"] += 1
            await asyncio.sleep(0.5 + random.random())
            continue
        stats["opened"] += 1
        try:
            if slow:
                # Headers that never end: one more line every two seconds.
                w.write(b"POST / HTTP/1.1\r\nHost: flood\r\nContent-Length: 5\r\n")
                while not stop.is_set() and not r.at_eof() and not w.is_closing():
                    w.write(b"X-Slow: 1\r\n")
                    await w.drain()
                    await asyncio.sleep(2)
            else:
                await r.read(1)  # until the server closes it (or sends something)
        except (OSError, asyncio.CancelledError):
            pass
        finally:
            w.close()
        if not stop.is_set():
            stats["closed_by_server"] += 1
            # Reopen, as a peer that keeps reconnecting would (with a little jitter).
            await asyncio.sleep(0.2 + random.random() * 0.8)


async def main(source, duration, idle, slow, ports):
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_reader(sys.stdin.fileno(), lambda: sys.stdin.read(1) or stop.set())
    tasks = []
    connecting = asyncio.Semaphore(200)
    for port in ports:
        tasks += [asyncio.create_task(hold(port, False, source, stop, connecting))
                  for _ in range(idle)]
        tasks += [asyncio.create_task(hold(port, True, source, stop, connecting))
                  for _ in range(slow)]
    deadline = loop.time() + duration
    while not stop.is_set() and loop.time() < deadline:
        print(json.dumps(stats), flush=True)
        try:
            await asyncio.wait_for(stop.wait(), 1)
        except asyncio.TimeoutError:
            pass
    stop.set()
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    print(json.dumps(stats), flush=True)


if __name__ == "__main__":
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    src, dur, n_idle, n_slow, *ports = sys.argv[1:]
    asyncio.run(main(src, float(dur), int(n_idle), int(n_slow), [int(p) for p in ports]))
