#!/usr/bin/env python3
"""cutting-proxy.py: an HTTP proxy on 127.0.0.1 that drops one download halfway, for the tests.

    cutting-proxy.py UPSTREAM_PORT LOG [--cut-min BYTES] [--cut-after BYTES]

Forwards every connection to 127.0.0.1:UPSTREAM_PORT (an S3 server). The first GET response
whose body is at least --cut-min bytes (default 2,000,000) is cut: after --cut-after bytes of
its body (default 1,048,576) both connections are closed, as when a link drops mid-download.
Everything else passes untouched. Prints "ready PORT" (the port it listens on) when it accepts
connections. LOG gets one line per request ("GET /path range=bytes=...") and one per cut
("cut GET /path after N of M bytes").
"""
import argparse
import asyncio
import sys


def header_end(buf):
    at = buf.find(b"\r\n\r\n")
    return -1 if at < 0 else at + 4


def headers_of(block):
    lines = block.decode("latin-1").split("\r\n")
    fields = {}
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            fields[k.strip().lower()] = v.strip()
    return lines[0], fields


class Proxy:
    def __init__(self, upstream, log, cut_min, cut_after):
        self.upstream = upstream
        self.log = log
        self.cut_min = cut_min
        self.cut_after = cut_after
        self.cut_done = False

    def note(self, line):
        with open(self.log, "a") as f:
            f.write(line + "\n")

    async def handle(self, client_r, client_w):
        try:
            up_r, up_w = await asyncio.open_connection("127.0.0.1", self.upstream)
        except OSError:
            client_w.close()
            return
        requests = asyncio.Queue()
        tasks = [
            asyncio.create_task(self.requests(client_r, up_w, requests)),
            asyncio.create_task(self.responses(up_r, client_w, requests)),
        ]
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for t in tasks:
            t.cancel()
        for w in (client_w, up_w):
            w.close()

    async def read_block(self, reader, buf):
        """Reads until a header block is complete: (block, rest) or (None, buf) at the end."""
        while header_end(buf) < 0:
            data = await reader.read(65536)
            if not data:
                return None, buf
            buf += data
        at = header_end(buf)
        return buf[:at], buf[at:]

    async def forward(self, reader, writer, buf, n):
        """Forwards n body bytes, the first from buf; returns what was read beyond them."""
        while len(buf) < n:
            writer.write(buf)
            n -= len(buf)
            await writer.drain()
            buf = await reader.read(65536)
            if not buf:
                raise ConnectionError("closed mid-body")
        writer.write(buf[:n])
        await writer.drain()
        return buf[n:]

    async def requests(self, reader, writer, requests):
        buf = b""
        while True:
            block, buf = await self.read_block(reader, buf)
            if block is None:
                return
            first, fields = headers_of(block)
            method, path = (first.split(" ") + ["", ""])[:2]
            self.note(f"{method} {path} range={fields.get('range', '-')}")
            await requests.put((method, path))
            writer.write(block)
            buf = await self.forward(reader, writer, buf, int(fields.get("content-length", "0")))

    async def responses(self, reader, writer, requests):
        buf = b""
        while True:
            block, buf = await self.read_block(reader, buf)
            if block is None:
                return
            method, path = await requests.get()
            first, fields = headers_of(block)
            if method == "HEAD":
                writer.write(block)
                await writer.drain()
                continue
            if "content-length" not in fields:
                # No length to count (chunked): pass the rest of this connection through.
                writer.write(block + buf)
                while True:
                    data = await reader.read(65536)
                    if not data:
                        return
                    writer.write(data)
                    await writer.drain()
            length = int(fields["content-length"])
            writer.write(block)
            if method == "GET" and not self.cut_done and length >= self.cut_min:
                self.cut_done = True
                await self.forward(reader, writer, buf, self.cut_after)
                self.note(f"cut GET {path} after {self.cut_after} of {length} bytes")
                return
            buf = await self.forward(reader, writer, buf, length)


async def main():
    p = argparse.ArgumentParser()
    p.add_argument("upstream", type=int)
    p.add_argument("log")
    p.add_argument("--cut-min", type=int, default=2_000_000)
    p.add_argument("--cut-after", type=int, default=1_048_576)
    a = p.parse_args()
    proxy = Proxy(a.upstream, a.log, a.cut_min, a.cut_after)
    server = await asyncio.start_server(proxy.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    print(f"ready {port}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
