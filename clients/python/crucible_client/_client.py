"""A small client for crucible.v1.TaskService (see README.md)."""
from __future__ import annotations

import datetime
import enum
import hashlib
import os
import pathlib
import random
import secrets
import time
import uuid
from typing import (Any, Callable, Iterable, Iterator, List, Mapping, Optional, Sequence,
                    TypeVar, Union, cast)

import grpc

from crucible_client import pb

__all__ = ["Client", "Task", "State", "CrucibleError", "WaitTimeout", "TERMINAL_STATES"]

Seconds = Union[float, int, datetime.timedelta]
_T = TypeVar("_T")

# Codes on which a call is retried. A CreateTask that failed with one of them
# may still have stored the task: it is retried with the same request_id, so
# the server returns that task instead of making a second one.
_RETRYABLE = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
# Requests one BatchCreateTasks carries at most (the server's limit).
_MAX_BATCH = 1000
# grpc.StatusCode by its number (a batch item's error carries the number).
_CODES = {code.value[0]: code for code in grpc.StatusCode}


class State(enum.IntEnum):
    """A task's lifecycle state (crucible.v1.TaskState, same numbers)."""

    UNSPECIFIED = 0
    QUEUED = 1
    LEASED = 2
    RUNNING = 3
    SUCCEEDED = 4
    FAILED = 5
    TIMED_OUT = 6
    CANCELLED = 7

    @property
    def terminal(self) -> bool:
        """True for SUCCEEDED, FAILED, TIMED_OUT and CANCELLED."""
        return self in TERMINAL_STATES


TERMINAL_STATES = frozenset({State.SUCCEEDED, State.FAILED, State.TIMED_OUT, State.CANCELLED})


class CrucibleError(Exception):
    """A call failed. `code` is the gRPC status code, `message` the server's text."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(f"{code.name}: {message}")
        self.code = code
        self.message = message

    @classmethod
    def _from_rpc(cls, error: grpc.RpcError) -> "CrucibleError":
        code = error.code() if hasattr(error, "code") else grpc.StatusCode.UNKNOWN
        details = error.details() if hasattr(error, "details") else str(error)
        return cls(code or grpc.StatusCode.UNKNOWN, details or "")


class WaitTimeout(CrucibleError, TimeoutError):
    """Task.wait (or logs/events) ran out of its `timeout`; the task goes on."""

    def __init__(self, message: str) -> None:
        super().__init__(grpc.StatusCode.DEADLINE_EXCEEDED, message)


def _seconds(value: Seconds) -> float:
    if isinstance(value, datetime.timedelta):
        return value.total_seconds()
    return float(value)


def _code(error: grpc.RpcError) -> Optional[grpc.StatusCode]:
    return error.code() if hasattr(error, "code") else None


class Client:
    """A connection to crucible-server's TaskService.

    Every unary call has a deadline (`call_timeout`, seconds); streams are
    opened with a deadline of at most `stream_window` seconds and reopened
    where they left off until the caller's own `timeout` (if any) runs out.
    Reads (get, list) and CreateTask are retried on UNAVAILABLE and
    DEADLINE_EXCEEDED, up to `retry_attempts` attempts with exponential
    backoff (full jitter) from `retry_initial_backoff` capped at
    `retry_max_backoff` seconds. Use as a context manager, or call close().
    """

    def __init__(
        self,
        target: str = "127.0.0.1:8080",
        *,
        tls: bool = False,
        root_certificates: Optional[bytes] = None,
        private_key: Optional[bytes] = None,
        certificate_chain: Optional[bytes] = None,
        token: Optional[str] = None,
        metadata: Optional[Sequence[tuple[str, str]]] = None,
        call_timeout: Seconds = 30.0,
        stream_window: Seconds = 300.0,
        retry_attempts: int = 5,
        retry_initial_backoff: Seconds = 0.2,
        retry_max_backoff: Seconds = 5.0,
        options: Optional[Sequence[tuple[str, Any]]] = None,
        channel: Optional[grpc.Channel] = None,
    ) -> None:
        if retry_attempts < 1:
            raise ValueError("retry_attempts must be at least 1")
        if channel is not None:
            self._channel = channel
        elif tls:
            creds = grpc.ssl_channel_credentials(
                root_certificates=root_certificates,
                private_key=private_key,
                certificate_chain=certificate_chain,
            )
            self._channel = grpc.secure_channel(target, creds, options=list(options or []))
        else:
            self._channel = grpc.insecure_channel(target, options=list(options or []))
        self.target = target
        # The generated stub is untyped (grpc_python_plugin writes no .pyi).
        self._stub: Any = pb.TaskServiceStub(self._channel)  # type: ignore[no-untyped-call]
        md = list(metadata or [])
        if token:
            # In the metadata rather than call credentials, as the CLI does:
            # gRPC refuses call credentials on plaintext channels.
            md.append(("authorization", f"Bearer {token}"))
        self._metadata = tuple(md)
        self._call_timeout = _seconds(call_timeout)
        self._stream_window = _seconds(stream_window)
        self._retry_attempts = retry_attempts
        self._initial_backoff = _seconds(retry_initial_backoff)
        self._max_backoff = _seconds(retry_max_backoff)

    # -- lifecycle ---------------------------------------------------------

    def close(self) -> None:
        """Closes the channel; the client cannot be used afterwards."""
        self._channel.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Client({self.target!r})"

    # -- tasks -------------------------------------------------------------

    def submit(
        self,
        image: str,
        command: Optional[Sequence[str]] = None,
        *,
        env: Optional[Mapping[str, str]] = None,
        stdin: Union[bytes, str, None] = None,
        working_dir: Optional[str] = None,
        timeout: Optional[Seconds] = None,
        labels: Optional[Mapping[str, str]] = None,
        request_id: Optional[str] = None,
        memory_bytes: Optional[int] = None,
        cpu_millis: Optional[int] = None,
        pids_limit: Optional[int] = None,
        tmpfs_bytes: Optional[int] = None,
        max_output_bytes: Optional[int] = None,
        priority: Optional[int] = None,
        max_attempts: Optional[int] = None,
        retry_on_nonzero_exit: Optional[bool] = None,
        not_before: Optional[datetime.datetime] = None,
        files: Optional[Mapping[str, Union[bytes, str]]] = None,
        artifacts: Optional[Sequence[str]] = None,
        scratch_bytes: Optional[int] = None,
        max_artifact_bytes: Optional[int] = None,
    ) -> "Task":
        """Creates a task running `command` (an argv list) in `image`.

        `files` maps paths relative to the working directory to their bytes
        (mode 0644; build a pb.TaskSpec with pb.InputFile and submit_spec for
        other modes); `artifacts` names the paths or patterns collected from
        the working directory after the process exits.

        `timeout` is the task's wall-clock limit per attempt (seconds or a
        timedelta), not a deadline of this call. A `request_id` (default: a
        new uuid4) makes the call idempotent: it is retried with the same id
        on UNAVAILABLE and DEADLINE_EXCEEDED, so it never makes two tasks.
        """
        if isinstance(command, (str, bytes)):
            raise TypeError("command is an argv list, e.g. ['sh', '-c', 'echo hi']")
        spec = pb.TaskSpec(image=image, command=list(command or []))
        if env:
            spec.env.update(env)
        if stdin is not None:
            spec.stdin = stdin.encode() if isinstance(stdin, str) else bytes(stdin)
        if working_dir is not None:
            spec.working_dir = working_dir
        if timeout is not None:
            spec.timeout.FromTimedelta(datetime.timedelta(seconds=_seconds(timeout)))
        if labels:
            spec.labels.update(labels)
        for field, value in (("memory_bytes", memory_bytes), ("cpu_millis", cpu_millis),
                             ("pids_limit", pids_limit), ("tmpfs_bytes", tmpfs_bytes)):
            if value is not None:
                setattr(spec.resources, field, value)
        if max_output_bytes is not None:
            spec.max_output_bytes = max_output_bytes
        if priority is not None:
            spec.priority = priority
        if max_attempts is not None:
            spec.retry_policy.max_attempts = max_attempts
        if retry_on_nonzero_exit is not None:
            spec.retry_policy.retry_on_nonzero_exit = retry_on_nonzero_exit
        if not_before is not None:
            spec.not_before.FromDatetime(not_before)
        for path, content in (files or {}).items():
            spec.files.append(pb.InputFile(
                path=path, content=content.encode() if isinstance(content, str) else bytes(content)))
        spec.artifacts.extend(artifacts or [])
        if scratch_bytes is not None:
            spec.resources.scratch_bytes = scratch_bytes
        if max_artifact_bytes is not None:
            spec.max_artifact_bytes = max_artifact_bytes
        return self.submit_spec(spec, request_id=request_id)

    def submit_spec(self, spec: pb.TaskSpec, *, request_id: Optional[str] = None) -> "Task":
        """Like submit, with a TaskSpec message built by the caller."""
        request = pb.CreateTaskRequest(spec=spec, request_id=request_id or str(uuid.uuid4()))
        response: pb.CreateTaskResponse = self._unary(
            self._stub.CreateTask, request, retry=True)
        return Task(self, response.task.id, response.task)

    def submit_batch(
        self,
        specs: Iterable[pb.TaskSpec],
        *,
        request_ids: Optional[Sequence[str]] = None,
    ) -> list[Union["Task", CrucibleError]]:
        """Creates many tasks with BatchCreateTasks, 1000 per call.

        Returns one result per spec, in order: its Task, or the CrucibleError
        its own CreateTask would have raised (a bad spec, a quota). One bad
        spec does not refuse the others. `request_ids` (default: a new uuid4
        each) are the specs' idempotency keys; a call is retried with them
        on UNAVAILABLE and DEADLINE_EXCEEDED, so it never makes a task twice.
        Raises CrucibleError only when a whole call fails (credentials, the
        server unavailable after the retries).
        """
        items = list(specs)
        if request_ids is not None and len(request_ids) != len(items):
            raise ValueError("request_ids: one per spec")
        ids = list(request_ids) if request_ids is not None else [
            str(uuid.uuid4()) for _ in items]
        results: list[Union[Task, CrucibleError]] = []
        for start in range(0, len(items), _MAX_BATCH):
            request = pb.BatchCreateTasksRequest(requests=[
                pb.CreateTaskRequest(spec=spec, request_id=request_id)
                for spec, request_id in zip(items[start:start + _MAX_BATCH],
                                            ids[start:start + _MAX_BATCH])])
            response: pb.BatchCreateTasksResponse = self._unary(
                self._stub.BatchCreateTasks, request, retry=True)
            for result in response.results:
                if result.HasField("task"):
                    results.append(Task(self, result.task.id, result.task))
                else:
                    code = _CODES.get(result.error.code, grpc.StatusCode.UNKNOWN)
                    results.append(CrucibleError(code, result.error.message))
        return results

    def task(self, task_id: str) -> "Task":
        """A handle on an existing task (no call is made)."""
        return Task(self, task_id)

    def get(self, task_id: str) -> pb.Task:
        """The task as stored now. NOT_FOUND if there is none."""
        response: pb.GetTaskResponse = self._unary(
            self._stub.GetTask, pb.GetTaskRequest(task_id=task_id), retry=True)
        return response.task

    def list(
        self,
        *,
        states: Optional[Iterable[Union[State, int, str]]] = None,
        labels: Optional[Mapping[str, str]] = None,
        page_size: int = 0,
        limit: Optional[int] = None,
    ) -> Iterator[pb.Task]:
        """Tasks, newest first, fetched page by page as the iterator advances.

        `states` filters by state (State, its number, or a name such as
        "RUNNING"); `labels` keeps tasks carrying all of these labels;
        `limit` stops after that many tasks.
        """
        request = pb.ListTasksRequest(
            page_size=page_size,
            states=[cast(pb.TaskState, _state(s)) for s in states or []])
        if labels:
            request.labels.update(labels)
        yielded = 0
        while True:
            response: pb.ListTasksResponse = self._unary(
                self._stub.ListTasks, request, retry=True)
            for task in response.tasks:
                if limit is not None and yielded >= limit:
                    return
                yielded += 1
                yield task
            if not response.next_page_token:
                return
            request.page_token = response.next_page_token

    def cancel(self, task_id: str, reason: str = "") -> pb.Task:
        """Cancels a task; returns it as recorded (maybe still RUNNING).

        FAILED_PRECONDITION if it has already finished. Not retried.
        """
        response: pb.CancelTaskResponse = self._unary(
            self._stub.CancelTask, pb.CancelTaskRequest(task_id=task_id, reason=reason),
            retry=False)
        return response.task

    def events(self, task_id: str, *, timeout: Optional[Seconds] = None) -> Iterator[pb.TaskEvent]:
        """The task's current state, then each change, until a terminal state.

        Reopens WatchTask after a stream deadline or UNAVAILABLE without
        repeating the last event. Raises WaitTimeout after `timeout` seconds.
        """
        deadline = None if timeout is None else time.monotonic() + _seconds(timeout)
        request = pb.WatchTaskRequest(task_id=task_id)
        last: Optional[tuple[int, int]] = None
        failures = 0
        while True:
            call = self._stub.WatchTask(
                request, timeout=self._window(deadline, "events"), metadata=self._metadata)
            try:
                for response in call:
                    failures = 0
                    event = response.event
                    key = (event.state, event.attempt)
                    if key != last:
                        last = key
                        yield event
                    if event.state in TERMINAL_STATES:
                        return
                # Ended without a terminal state (e.g. the server is stopping).
                failures = self._backoff_or_raise(failures, None)
            except grpc.RpcError as error:
                if _code(error) == grpc.StatusCode.DEADLINE_EXCEEDED:
                    continue  # the window ran out: reopen (or WaitTimeout)
                failures = self._backoff_or_raise(failures, error)
            finally:
                call.cancel()

    def output(
        self,
        task_id: str,
        *,
        follow: bool = True,
        stream: Optional[str] = None,
        attempt: int = 0,
        offset: int = 0,
        timeout: Optional[Seconds] = None,
    ) -> Iterator[pb.OutputChunk]:
        """The task's output as OutputChunk messages (stream, data, offset, attempt).

        `stream` is None (both), "stdout" or "stderr"; `attempt` 0 is the
        latest. With `follow` the iterator ends when the task does. Reopens
        the stream where it left off after a deadline or UNAVAILABLE.
        """
        stream_enum = {None: 0, "stdout": 1, "stderr": 2}.get(stream)  # pb.OutputStream
        if stream_enum is None:
            raise ValueError("stream must be None, 'stdout' or 'stderr'")
        deadline = None if timeout is None else time.monotonic() + _seconds(timeout)
        failures = 0
        while True:
            request = pb.StreamTaskOutputRequest(
                task_id=task_id, offset=offset, follow=follow,
                stream=cast(pb.OutputStream, stream_enum), attempt=attempt)
            call = self._stub.StreamTaskOutput(
                request, timeout=self._window(deadline, "output"), metadata=self._metadata)
            try:
                for response in call:
                    failures = 0
                    chunk = response.chunk
                    # Resume in the same attempt, past what was seen.
                    attempt = chunk.attempt or attempt
                    offset = chunk.offset + len(chunk.data)
                    yield chunk
                return
            except grpc.RpcError as error:
                if _code(error) == grpc.StatusCode.DEADLINE_EXCEEDED and follow:
                    continue
                failures = self._backoff_or_raise(failures, error)
            finally:
                call.cancel()

    # -- artifacts ---------------------------------------------------------

    def get_artifact(self, task_id: str, path: str, attempt: int = 0) -> bytes:
        """The bytes of one collected artifact of the task (GetArtifact).

        `path` is as in the task's result (`result.artifacts[i].path`);
        `attempt` 0 reads the latest attempt that has it. The bytes are
        checked against the size and SHA-256 the server announces first: a
        mismatch raises CrucibleError with DATA_LOSS. NOT_FOUND if the task,
        the attempt or a collected artifact of that path does not exist.
        """
        chunks: List[bytes] = []
        self._read_artifact(task_id, path, attempt, chunks.clear, chunks.append)
        return b"".join(chunks)

    def download_artifacts(
        self,
        task_id: str,
        out_dir: Union[str, "os.PathLike[str]"],
        attempt: int = 0,
    ) -> List[pathlib.Path]:
        """Writes every collected artifact of the task under `out_dir`.

        The artifacts are those the task's result lists (its latest ended
        attempt's), each read from `attempt` (0: the latest that has it) and
        written to out_dir/PATH: parent directories are made, a file already
        there is replaced, and the bytes go to a temporary file renamed into
        place only once their size and SHA-256 match what the server
        announced (DATA_LOSS otherwise, and no file is left). Every path is
        checked first, whatever the server says: one that is absolute or has
        an empty, "." or ".." name raises CrucibleError with
        INVALID_ARGUMENT before anything is written. Artifacts that were not
        collected (their status says why) are skipped. Returns the files
        written, in the result's order. FAILED_PRECONDITION if no attempt of
        the task has ended yet; OSError if the local filesystem says no.
        """
        task = self.get(task_id)
        if not task.spec.artifacts:
            return []
        if not task.HasField("result"):
            raise CrucibleError(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"task {task_id} is {State(task.state).name} and none of its "
                "attempts has ended: no artifacts")
        paths: List[str] = []
        for info in task.result.artifacts:
            if info.status == pb.ARTIFACT_STATUS_COLLECTED and info.path not in paths:
                _check_artifact_path(info.path)
                paths.append(info.path)
        written = []
        for path in paths:
            written.append(self._download_artifact(task_id, path, attempt, pathlib.Path(out_dir)))
        return written

    def health(self, service: str = "") -> str:
        """grpc.health.v1 Check: "SERVING", "NOT_SERVING", ... for `service`."""
        # Imported here: the health messages live in protobuf's default pool
        # under grpc.health.v1, as grpcio-health-checking's do; loading them
        # only when asked lets both packages be installed side by side.
        from crucible_client._gen.grpc_health.v1 import health_pb2, health_pb2_grpc

        stub: Any = health_pb2_grpc.HealthStub(self._channel)  # type: ignore[no-untyped-call]
        response = self._unary(
            stub.Check, health_pb2.HealthCheckRequest(service=service), retry=True)
        return str(health_pb2.HealthCheckResponse.ServingStatus.Name(response.status))

    # -- internals ---------------------------------------------------------

    def _read_artifact(self, task_id: str, path: str, attempt: int,
                       restart: Callable[[], None],
                       write: Callable[[bytes], object]) -> pb.ArtifactInfo:
        """Streams one artifact into `write`, checking it as it comes.

        The call is made again from the start (after `restart`) on
        UNAVAILABLE, up to retry_attempts; its deadline is stream_window.
        """
        request = pb.GetArtifactRequest(task_id=task_id, path=path, attempt=attempt)
        failures = 0
        while True:
            restart()
            call = self._stub.GetArtifact(
                request, timeout=self._stream_window, metadata=self._metadata)
            try:
                info: Optional[pb.ArtifactInfo] = None
                digest = hashlib.sha256()
                size = 0
                for response in call:
                    kind = response.WhichOneof("kind")
                    if info is None:
                        if kind != "info" or response.info.path != path:
                            raise _data_loss(path, "the stream did not start with its info")
                        info = response.info
                        _check_announced(info)
                        continue
                    chunk = response.chunk
                    if kind != "chunk" or chunk.path != path or chunk.offset != size:
                        raise _data_loss(path, f"a piece out of order where byte {size} was due")
                    if size + len(chunk.data) > info.size_bytes:
                        raise _data_loss(path, f"more than the announced {info.size_bytes} bytes")
                    digest.update(chunk.data)
                    write(chunk.data)
                    size += len(chunk.data)
                if info is None:
                    raise _data_loss(path, "the stream ended without it")
                if size != info.size_bytes or digest.hexdigest() != info.sha256:
                    raise _data_loss(
                        path, f"received {size} bytes with SHA-256 {digest.hexdigest()}, but "
                        f"the server announced {info.size_bytes} with {info.sha256}")
                return info
            except grpc.RpcError as error:
                if (_code(error) != grpc.StatusCode.UNAVAILABLE
                        or failures + 1 >= self._retry_attempts):
                    raise CrucibleError._from_rpc(error) from None
                time.sleep(self._delay(failures))
                failures += 1
            finally:
                call.cancel()

    def _download_artifact(self, task_id: str, path: str, attempt: int,
                           out_dir: pathlib.Path) -> pathlib.Path:
        """One artifact to out_dir/path through a temporary file beside it."""
        final = out_dir.joinpath(*path.split("/"))
        final.parent.mkdir(parents=True, exist_ok=True)
        # O_EXCL never opens what is there (a symbolic link included); mode
        # 0666 less the umask, as any file this user makes.
        temp = final.parent / f".{final.name[:100]}.crucible-{secrets.token_hex(8)}"
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
        try:
            with os.fdopen(fd, "wb") as f:
                def restart() -> None:
                    f.seek(0)
                    f.truncate()
                self._read_artifact(task_id, path, attempt, restart, f.write)
            os.replace(temp, final)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        return final

    def _unary(self, method: Callable[..., _T], request: Any, *, retry: bool) -> _T:
        attempts = self._retry_attempts if retry else 1
        for attempt in range(attempts):
            try:
                return method(request, timeout=self._call_timeout, metadata=self._metadata)
            except grpc.RpcError as error:
                if attempt + 1 >= attempts or _code(error) not in _RETRYABLE:
                    raise CrucibleError._from_rpc(error) from None
                time.sleep(self._delay(attempt))
        raise AssertionError("unreachable")

    def _delay(self, attempt: int) -> float:
        cap = min(self._max_backoff, self._initial_backoff * (2 ** attempt))
        return random.uniform(0, cap)

    def _window(self, deadline: Optional[float], what: str) -> float:
        if deadline is None:
            return self._stream_window
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise WaitTimeout(f"{what}: timeout elapsed")
        return min(self._stream_window, remaining)

    def _backoff_or_raise(self, failures: int, error: Optional[grpc.RpcError]) -> int:
        """After a stream broke: sleeps and returns the new failure count, or raises."""
        if error is not None and _code(error) != grpc.StatusCode.UNAVAILABLE:
            raise CrucibleError._from_rpc(error) from None
        if failures + 1 >= self._retry_attempts:
            if error is not None:
                raise CrucibleError._from_rpc(error) from None
            raise CrucibleError(grpc.StatusCode.UNAVAILABLE, "stream ended early, repeatedly")
        time.sleep(self._delay(failures))
        return failures + 1


def _check_artifact_path(path: str) -> None:
    """Refuses a path that would leave the directory it is written under."""
    why = None
    if not path:
        why = "is empty"
    elif "\0" in path:
        why = "has a NUL byte"
    elif path.startswith("/"):
        why = "is absolute"
    elif any(name in ("", ".", "..") for name in path.split("/")):
        why = 'has an empty, "." or ".." name'
    if why is not None:
        raise CrucibleError(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"artifact path {path!r} {why}: refused (only plain names under the directory)")


def _check_announced(info: pb.ArtifactInfo) -> None:
    sha = info.sha256
    if (info.status != pb.ARTIFACT_STATUS_COLLECTED or info.size_bytes < 0 or len(sha) != 64
            or any(c not in "0123456789abcdef" for c in sha)):
        raise _data_loss(info.path, f"the server announced no collected artifact ({info})")


def _data_loss(path: str, why: str) -> CrucibleError:
    return CrucibleError(grpc.StatusCode.DATA_LOSS, f"artifact {path}: {why}")


def _state(value: Union[State, int, str]) -> int:
    if isinstance(value, str):
        name = value.upper()
        if name.startswith("TASK_STATE_"):
            name = name[len("TASK_STATE_"):]
        return int(State[name])
    return int(State(value))


class Task:
    """A handle on one task: its id and the client that made it."""

    def __init__(self, client: Client, task_id: str, task: Optional[pb.Task] = None) -> None:
        self.client = client
        self.id = task_id
        self._initial = task

    def __repr__(self) -> str:
        return f"Task({self.id!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Task) and other.id == self.id

    def __hash__(self) -> int:
        return hash(self.id)

    @property
    def created(self) -> Optional[pb.Task]:
        """The task as CreateTask returned it (None for a handle from Client.task)."""
        return self._initial

    def get(self) -> pb.Task:
        """The task as stored now."""
        return self.client.get(self.id)

    def wait(self, timeout: Optional[Seconds] = None) -> pb.Task:
        """Follows WatchTask until a terminal state; returns the final task.

        Raises WaitTimeout if `timeout` seconds pass first (the task goes on).
        """
        for _ in self.client.events(self.id, timeout=timeout):
            pass
        return self.get()

    def events(self, timeout: Optional[Seconds] = None) -> Iterator[pb.TaskEvent]:
        """The current state, then every change, until a terminal state."""
        return self.client.events(self.id, timeout=timeout)

    def logs(
        self,
        *,
        follow: bool = True,
        stream: Optional[str] = None,
        attempt: int = 0,
        timeout: Optional[Seconds] = None,
    ) -> Iterator[bytes]:
        """The output's bytes, as the process wrote them (stdout and stderr
        interleaved unless `stream` is "stdout" or "stderr"). With `follow`,
        ends when the task does: b"".join(task.logs()) is the whole output."""
        for chunk in self.client.output(
                self.id, follow=follow, stream=stream, attempt=attempt, timeout=timeout):
            yield chunk.data

    def cancel(self, reason: str = "") -> pb.Task:
        """Cancels the task; returns it as recorded."""
        return self.client.cancel(self.id, reason)

    def get_artifact(self, path: str, attempt: int = 0) -> bytes:
        """client.get_artifact(task.id, path, attempt)."""
        return self.client.get_artifact(self.id, path, attempt)

    def download_artifacts(self, out_dir: Union[str, "os.PathLike[str]"],
                           attempt: int = 0) -> list[pathlib.Path]:
        """client.download_artifacts(task.id, out_dir, attempt)."""
        return self.client.download_artifacts(self.id, out_dir, attempt)
