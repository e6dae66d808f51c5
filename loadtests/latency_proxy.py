"""A TCP proxy on loopback that adds latency, for the warehouse latency drill.

`LatencyProxy(target_port)` listens on 127.0.0.1 (a free port) and relays every
connection to 127.0.0.1:target_port. Bytes to the target pass at once; each chunk that
comes back is delivered `delay` seconds after it arrived, in order and pipelined (later
chunks do not wait for earlier ones' delays): every exchange is answered `delay` seconds
later, as over a slow link, without capping throughput. `connect_delay` is added once per
connection, before the target is dialled (a slow handshake). Both can be changed at any
time: `delay` applies to chunks that arrive from then on.

It runs its own asyncio loop in a daemon thread, so that synchronous code (a drill) drives
it. `close()` — or the end of its `with` block — stops listening and drops every
connection it relays.
"""

import asyncio
import contextlib
import threading

CHUNK_BYTES = 64 * 1024
# Chunks held per direction before reading pauses (back-pressure, bounded memory).
QUEUE_CHUNKS = 256


class LatencyProxy:
    def __init__(self, target_port: int, *, delay: float = 0.0, connect_delay: float = 0.0):
        self.target_port = target_port
        self.delay = delay
        self.connect_delay = connect_delay
        self.port = 0  # where it listens, once started
        self.connections = 0  # accepted so far
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name=f"latency-proxy-{target_port}", daemon=True
        )
        self._server: asyncio.Server | None = None
        self._relays: set[asyncio.Task[None]] = set()

    def __enter__(self) -> "LatencyProxy":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def start(self) -> "LatencyProxy":
        self._thread.start()
        self._server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._accept, "127.0.0.1", 0), self._loop
        ).result(timeout=10)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def close(self) -> None:
        if not self._thread.is_alive():
            return
        with contextlib.suppress(TimeoutError):
            asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        if not self._thread.is_alive():
            self._loop.close()

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        for relay in list(self._relays):
            relay.cancel()
        await asyncio.gather(*self._relays, return_exceptions=True)

    async def _accept(self, client_reader: asyncio.StreamReader, client: asyncio.StreamWriter):
        # Tracked so that close() can cancel it; the server's own task is not.
        relay = asyncio.current_task()
        assert relay is not None  # noqa: S101 - always inside a task here
        self._relays.add(relay)
        self.connections += 1
        target: asyncio.StreamWriter | None = None
        closing = False
        try:
            if self.connect_delay:
                await asyncio.sleep(self.connect_delay)
            target_reader, target = await asyncio.open_connection("127.0.0.1", self.target_port)
            pipes = [
                asyncio.create_task(self._pipe(client_reader, target, delayed=False)),
                asyncio.create_task(self._pipe(target_reader, client, delayed=True)),
            ]
            try:
                # Each direction ends at its EOF (passed on as a half-close); a failure in
                # one ends both.
                await asyncio.wait(pipes, return_when=asyncio.FIRST_EXCEPTION)
            finally:
                for pipe in pipes:
                    pipe.cancel()
                await asyncio.gather(*pipes, return_exceptions=True)
        except OSError:
            pass  # the target refused, or a side reset
        except asyncio.CancelledError:
            closing = True  # close(): drop the connection, do not flush
        finally:
            for writer in (client, target):
                if writer is None:
                    continue
                if closing:
                    writer.transport.abort()
                else:
                    writer.close()  # what is buffered is flushed first
            self._relays.discard(relay)

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, delayed: bool
    ) -> None:
        loop = asyncio.get_running_loop()
        chunks: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue(QUEUE_CHUNKS)

        async def deliver() -> None:
            while True:
                due, data = await chunks.get()
                if (wait := due - loop.time()) > 0:
                    await asyncio.sleep(wait)
                if not data:
                    if writer.can_write_eof():
                        writer.write_eof()
                    return
                writer.write(data)
                await writer.drain()

        delivering = asyncio.create_task(deliver())
        try:
            while True:
                data = await reader.read(CHUNK_BYTES)
                # Stamped on arrival: a chunk is due `delay` after it came, whatever waits
                # before it in the queue.
                await chunks.put((loop.time() + (self.delay if delayed else 0.0), data))
                if not data:
                    break
            await delivering
        finally:
            delivering.cancel()
