"""Typical use of crucible_client, checked by `mypy --strict` (python_client_static_test).

Never run: it shows that the wrapper's annotations hold together for a user.
"""
import datetime
import pathlib
from typing import Iterator, List

import grpc

from crucible_client import Client, CrucibleError, State, Task, WaitTimeout, pb


def run(client: Client) -> bytes:
    task: Task = client.submit("localhost/crucible/busybox:latest", ["echo", "hi"],
                               env={"A": "b"}, timeout=datetime.timedelta(seconds=5),
                               labels={"k": "v"}, memory_bytes=64 << 20)
    try:
        final: pb.Task = task.wait(timeout=30.0)
    except WaitTimeout:
        task.cancel("took too long")
        raise
    except CrucibleError as error:
        code: grpc.StatusCode = error.code
        message: str = error.message
        raise RuntimeError(f"{code}: {message}") from error
    if State(final.state) is not State.SUCCEEDED or not State(final.state).terminal:
        exit_code: int = final.result.exit_code
        if final.result.reason == pb.TERMINATION_REASON_OOM_KILLED:
            raise MemoryError(task.id)
        raise RuntimeError(f"exit {exit_code}")
    states: List[State] = [State(e.state) for e in task.events()]
    chunks: Iterator[pb.OutputChunk] = client.output(task.id, stream="stdout")
    ids: List[str] = [t.id for t in client.list(states=[State.RUNNING, "queued"], limit=5)]
    assert states and ids is not None and chunks is not None
    report: bytes = client.get_artifact(task.id, "out/report.txt", attempt=0)
    written: List[pathlib.Path] = task.download_artifacts(pathlib.Path("results"))
    assert report is not None and written is not None
    return b"".join(task.logs())


def main() -> None:
    with Client("127.0.0.1:8080", call_timeout=5, token=None) as client:
        print(run(client), client.health(), client.get(client.task("x").id).state)
