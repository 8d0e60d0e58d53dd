#!/usr/bin/env python3
"""A shaped link in user space: a TCP proxy on 127.0.0.1 that adds latency and a bandwidth limit.

    benches/shaped-link.py --listen 0 --to 127.0.0.1:8333 [--delay-ms 20] [--mbit 200]

Prints "listening on PORT" on stdout once it accepts connections (--listen 0 picks a free port)
and runs until SIGTERM or SIGINT, then closes every connection and exits 0.

What it models, per direction (client to server, server to client), for all connections together:
- a bandwidth limit: one token bucket of --mbit Mbit/s per direction (a burst of --burst-kib),
  shared by every connection, like a link's serial line: bytes wait their turn;
- latency: every chunk read from one side is written to the other --delay-ms after it has passed
  the bucket. This is a delay line, not a sleep per chunk: chunks keep being read, and are in
  flight together, so throughput stays at the limit whatever the delay;
- connection set-up: a new connection's first bytes to the server leave one round trip
  (2 x --delay-ms) after it was accepted, as the TCP handshake over such a link would cost.
It does not model loss, reordering, or TCP's congestion window over the long path (each side's TCP
runs over loopback to the proxy); each direction of a connection buffers at most --queue-kib
before reading stops (back-pressure to the sender).
"""
import argparse
import asyncio
import collections
import signal
import sys
import time

CHUNK = 64 * 1024


class Bucket:
    """A token bucket: take(n) returns when n bytes may pass at the rate, after a burst."""

    def __init__(self, rate_bytes, burst_bytes):
        self.rate = rate_bytes
        self.burst = burst_bytes
        self.free_at = time.monotonic()  # when the line is next idle
        self.bytes = 0

    async def take(self, n):
        self.bytes += n
        if self.rate <= 0:
            return
        now = time.monotonic()
        # The line is busy n / rate longer than it was. Idle time earns credit of up to a burst,
        # which also absorbs late wake-ups from the sleep below.
        self.free_at = max(self.free_at, now - self.burst / self.rate) + n / self.rate
        wait = self.free_at - now
        if wait > 0:
            await asyncio.sleep(wait)


class Pipe:
    """One direction of one connection: reader -> bucket -> delay line -> writer."""

    def __init__(self, reader, writer, bucket, delay, queue_bytes, start_at):
        self.reader, self.writer, self.bucket, self.delay = reader, writer, bucket, delay
        self.queue = collections.deque()  # (due time, bytes); b"" = end of stream
        self.queued = 0
        self.queue_bytes = queue_bytes
        self.start_at = start_at
        self.changed = asyncio.Event()
        self.dead = False  # the writing end failed: stop reading

    async def read_side(self):
        try:
            while True:
                while self.queued >= self.queue_bytes and not self.dead:
                    self.changed.clear()
                    await self.changed.wait()
                data = b"" if self.dead else await self.reader.read(CHUNK)
                if not data:
                    break
                await self.bucket.take(len(data))
                due = max(time.monotonic(), self.start_at) + self.delay
                self.queue.append((due, data))
                self.queued += len(data)
                self.changed.set()
        except (ConnectionError, OSError):
            pass
        self.queue.append((time.monotonic() + self.delay, b""))
        self.changed.set()

    async def write_side(self):
        try:
            while True:
                while not self.queue:
                    self.changed.clear()
                    await self.changed.wait()
                due, data = self.queue.popleft()
                wait = due - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                if not data:
                    if self.writer.can_write_eof():
                        self.writer.write_eof()
                    await self.writer.drain()
                    return
                self.writer.write(data)
                self.queued -= len(data)
                self.changed.set()
                await self.writer.drain()
        except (ConnectionError, OSError):
            self.dead = True
            self.queue.clear()
            self.queued = 0
            self.changed.set()


class Link:
    def __init__(self, args):
        self.up_host, up_port = args.to.rsplit(":", 1)
        self.up_port = int(up_port)
        self.delay = args.delay_ms / 1000
        rate = args.mbit * 1e6 / 8
        burst = args.burst_kib * 1024
        self.up = Bucket(rate, burst)    # client -> server
        self.down = Bucket(rate, burst)  # server -> client
        self.queue_bytes = args.queue_kib * 1024
        self.conns = set()
        self.count = 0

    async def handle(self, c_reader, c_writer):
        accepted = time.monotonic()
        self.count += 1
        task = asyncio.current_task()
        self.conns.add(task)
        s_writer = None
        try:
            s_reader, s_writer = await asyncio.open_connection(self.up_host, self.up_port)
            start = accepted + 2 * self.delay
            up = Pipe(c_reader, s_writer, self.up, self.delay, self.queue_bytes, start)
            down = Pipe(s_reader, c_writer, self.down, self.delay, self.queue_bytes, start)
            await asyncio.gather(up.read_side(), up.write_side(), down.read_side(), down.write_side())
        except (ConnectionError, OSError):
            pass
        except asyncio.CancelledError:
            pass
        finally:
            for w in (c_writer, s_writer):
                if w is not None:
                    w.close()
            self.conns.discard(task)


async def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--listen", type=int, default=0, help="port to listen on (0: any free port)")
    p.add_argument("--to", required=True, help="HOST:PORT of the server")
    p.add_argument("--delay-ms", type=float, default=20.0, help="one-way latency (default 20)")
    p.add_argument("--mbit", type=float, default=200.0, help="Mbit/s each way, 0 = unlimited (default 200)")
    p.add_argument("--burst-kib", type=int, default=128, help="token bucket burst (default 128 KiB)")
    p.add_argument("--queue-kib", type=int, default=8192,
                   help="bytes buffered per direction and connection before reading stops (default 8 MiB)")
    args = p.parse_args()
    link = Link(args)
    server = await asyncio.start_server(link.handle, args.host, args.listen, backlog=512)
    port = server.sockets[0].getsockname()[1]
    print(f"listening on {port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    server.close()
    for t in list(link.conns):
        t.cancel()
    await asyncio.gather(*link.conns, return_exceptions=True)
    await server.wait_closed()
    print(f"shaped-link: {link.count} connections, {link.up.bytes} bytes up, {link.down.bytes} bytes down",
          file=sys.stderr, flush=True)


if __name__ == "__main__":
    asyncio.run(main())
