"""Test and benchmark only: the function host, with calls that can be slowed from outside.

    python -m benchmarks.slow_host --delay-file PATH [python -m embeddings.host options]

While ``PATH`` holds a number, every call first waits that many seconds in its worker (the fault
benchmark's "slow functions"). The production host, ``embeddings.host``, has no such hook.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
import time
from multiprocessing.connection import Connection

from embeddings import host


def delay_s(path: str) -> float:
    """The seconds written in ``path``; 0 without the file."""
    try:
        with open(path) as file:
            return max(0.0, float(file.read().strip() or 0))
    except (OSError, ValueError):
        return 0.0


class SlowConnection:
    """The worker's end of the pipe: each call arrives ``delay_s(path)`` late."""

    def __init__(self, conn: Connection, path: str) -> None:
        self.conn = conn
        self.path = path

    def recv_bytes(self) -> bytes:
        message = self.conn.recv_bytes()
        time.sleep(delay_s(self.path))
        return message

    def send_bytes(self, data: bytes) -> None:
        self.conn.send_bytes(data)


def slow_worker_main(path: str, conn: Connection, env: dict[str, str]) -> None:
    host.worker_main(SlowConnection(conn, path), env)  # type: ignore[arg-type]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.slow_host", description=__doc__.splitlines()[0])
    parser.add_argument("--delay-file", required=True, help="while this file holds a number, calls wait that long")
    args, rest = parser.parse_known_args(argv)
    return host.main(rest, target=functools.partial(slow_worker_main, os.path.abspath(args.delay_file)))


if __name__ == "__main__":
    sys.exit(main())
