from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Iterable as _Iterable, Mapping as _Mapping, Optional as _Optional, Union as _Union

ARTIFACT_STATUS_COLLECTED: ArtifactStatus
ARTIFACT_STATUS_INCOMPLETE: ArtifactStatus
ARTIFACT_STATUS_NOT_FOUND: ArtifactStatus
ARTIFACT_STATUS_NOT_REGULAR: ArtifactStatus
ARTIFACT_STATUS_SKIPPED_OVER_LIMIT: ArtifactStatus
ARTIFACT_STATUS_UNSPECIFIED: ArtifactStatus
CALLBACK_STATE_DELIVERED: CallbackState
CALLBACK_STATE_GAVE_UP: CallbackState
CALLBACK_STATE_PENDING: CallbackState
CALLBACK_STATE_UNSPECIFIED: CallbackState
DESCRIPTOR: _descriptor.FileDescriptor
OUTPUT_STREAM_STDERR: OutputStream
OUTPUT_STREAM_STDOUT: OutputStream
OUTPUT_STREAM_UNSPECIFIED: OutputStream
TASK_STATE_CANCELLED: TaskState
TASK_STATE_FAILED: TaskState
TASK_STATE_LEASED: TaskState
TASK_STATE_QUEUED: TaskState
TASK_STATE_RUNNING: TaskState
TASK_STATE_SUCCEEDED: TaskState
TASK_STATE_TIMED_OUT: TaskState
TASK_STATE_UNSPECIFIED: TaskState
TERMINATION_REASON_CANCELLED: TerminationReason
TERMINATION_REASON_EXITED: TerminationReason
TERMINATION_REASON_INFRASTRUCTURE: TerminationReason
TERMINATION_REASON_OOM_KILLED: TerminationReason
TERMINATION_REASON_OUTPUT_LIMIT: TerminationReason
TERMINATION_REASON_REJECTED: TerminationReason
TERMINATION_REASON_TIMEOUT: TerminationReason
TERMINATION_REASON_UNSPECIFIED: TerminationReason

class ArtifactChunk(_message.Message):
    __slots__ = ["data", "offset", "path"]
    DATA_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    offset: int
    path: str
    def __init__(self, path: _Optional[str] = ..., data: _Optional[bytes] = ..., offset: _Optional[int] = ...) -> None: ...

class ArtifactInfo(_message.Message):
    __slots__ = ["path", "sha256", "size_bytes", "status"]
    PATH_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    path: str
    sha256: str
    size_bytes: int
    status: ArtifactStatus
    def __init__(self, path: _Optional[str] = ..., status: _Optional[_Union[ArtifactStatus, str]] = ..., size_bytes: _Optional[int] = ..., sha256: _Optional[str] = ...) -> None: ...

class CallbackDelivery(_message.Message):
    __slots__ = ["attempts", "end_time", "last_error", "state"]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    LAST_ERROR_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    attempts: int
    end_time: _timestamp_pb2.Timestamp
    last_error: str
    state: CallbackState
    def __init__(self, state: _Optional[_Union[CallbackState, str]] = ..., attempts: _Optional[int] = ..., last_error: _Optional[str] = ..., end_time: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class InputFile(_message.Message):
    __slots__ = ["content", "mode", "path"]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    content: bytes
    mode: int
    path: str
    def __init__(self, path: _Optional[str] = ..., content: _Optional[bytes] = ..., mode: _Optional[int] = ...) -> None: ...

class OutputChunk(_message.Message):
    __slots__ = ["attempt", "data", "offset", "stream"]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    STREAM_FIELD_NUMBER: _ClassVar[int]
    attempt: int
    data: bytes
    offset: int
    stream: OutputStream
    def __init__(self, stream: _Optional[_Union[OutputStream, str]] = ..., data: _Optional[bytes] = ..., offset: _Optional[int] = ..., attempt: _Optional[int] = ...) -> None: ...

class Resources(_message.Message):
    __slots__ = ["cpu_millis", "memory_bytes", "pids_limit", "scratch_bytes", "tmpfs_bytes"]
    CPU_MILLIS_FIELD_NUMBER: _ClassVar[int]
    MEMORY_BYTES_FIELD_NUMBER: _ClassVar[int]
    PIDS_LIMIT_FIELD_NUMBER: _ClassVar[int]
    SCRATCH_BYTES_FIELD_NUMBER: _ClassVar[int]
    TMPFS_BYTES_FIELD_NUMBER: _ClassVar[int]
    cpu_millis: int
    memory_bytes: int
    pids_limit: int
    scratch_bytes: int
    tmpfs_bytes: int
    def __init__(self, memory_bytes: _Optional[int] = ..., cpu_millis: _Optional[int] = ..., pids_limit: _Optional[int] = ..., tmpfs_bytes: _Optional[int] = ..., scratch_bytes: _Optional[int] = ...) -> None: ...

class RetryPolicy(_message.Message):
    __slots__ = ["initial_backoff", "max_attempts", "max_backoff", "retry_on_nonzero_exit"]
    INITIAL_BACKOFF_FIELD_NUMBER: _ClassVar[int]
    MAX_ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    MAX_BACKOFF_FIELD_NUMBER: _ClassVar[int]
    RETRY_ON_NONZERO_EXIT_FIELD_NUMBER: _ClassVar[int]
    initial_backoff: _duration_pb2.Duration
    max_attempts: int
    max_backoff: _duration_pb2.Duration
    retry_on_nonzero_exit: bool
    def __init__(self, max_attempts: _Optional[int] = ..., retry_on_nonzero_exit: bool = ..., initial_backoff: _Optional[_Union[_duration_pb2.Duration, _Mapping]] = ..., max_backoff: _Optional[_Union[_duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class Task(_message.Message):
    __slots__ = ["attempt", "callback", "create_time", "end_time", "id", "infrastructure_failing_since", "infrastructure_failures", "last_error", "next_attempt_time", "request_id", "result", "spec", "state", "tenant", "trace_id", "update_time"]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    CALLBACK_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    INFRASTRUCTURE_FAILING_SINCE_FIELD_NUMBER: _ClassVar[int]
    INFRASTRUCTURE_FAILURES_FIELD_NUMBER: _ClassVar[int]
    LAST_ERROR_FIELD_NUMBER: _ClassVar[int]
    NEXT_ATTEMPT_TIME_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    TRACE_ID_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    attempt: int
    callback: CallbackDelivery
    create_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    id: str
    infrastructure_failing_since: _timestamp_pb2.Timestamp
    infrastructure_failures: int
    last_error: str
    next_attempt_time: _timestamp_pb2.Timestamp
    request_id: str
    result: TaskResult
    spec: TaskSpec
    state: TaskState
    tenant: str
    trace_id: str
    update_time: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., spec: _Optional[_Union[TaskSpec, _Mapping]] = ..., state: _Optional[_Union[TaskState, str]] = ..., attempt: _Optional[int] = ..., create_time: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., result: _Optional[_Union[TaskResult, _Mapping]] = ..., tenant: _Optional[str] = ..., request_id: _Optional[str] = ..., last_error: _Optional[str] = ..., next_attempt_time: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., infrastructure_failures: _Optional[int] = ..., infrastructure_failing_since: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., trace_id: _Optional[str] = ..., callback: _Optional[_Union[CallbackDelivery, _Mapping]] = ...) -> None: ...

class TaskEvent(_message.Message):
    __slots__ = ["attempt", "event_time", "message", "result", "state", "task_id"]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    EVENT_TIME_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    attempt: int
    event_time: _timestamp_pb2.Timestamp
    message: str
    result: TaskResult
    state: TaskState
    task_id: str
    def __init__(self, task_id: _Optional[str] = ..., state: _Optional[_Union[TaskState, str]] = ..., attempt: _Optional[int] = ..., event_time: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., message: _Optional[str] = ..., result: _Optional[_Union[TaskResult, _Mapping]] = ...) -> None: ...

class TaskResult(_message.Message):
    __slots__ = ["artifacts", "error_message", "exit_code", "finish_time", "output_truncated", "reason", "start_time"]
    ARTIFACTS_FIELD_NUMBER: _ClassVar[int]
    ERROR_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    EXIT_CODE_FIELD_NUMBER: _ClassVar[int]
    FINISH_TIME_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_TRUNCATED_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    artifacts: _containers.RepeatedCompositeFieldContainer[ArtifactInfo]
    error_message: str
    exit_code: int
    finish_time: _timestamp_pb2.Timestamp
    output_truncated: bool
    reason: TerminationReason
    start_time: _timestamp_pb2.Timestamp
    def __init__(self, exit_code: _Optional[int] = ..., reason: _Optional[_Union[TerminationReason, str]] = ..., error_message: _Optional[str] = ..., start_time: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., finish_time: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., output_truncated: bool = ..., artifacts: _Optional[_Iterable[_Union[ArtifactInfo, _Mapping]]] = ...) -> None: ...

class TaskSpec(_message.Message):
    __slots__ = ["artifacts", "callback_url", "command", "env", "files", "image", "labels", "max_artifact_bytes", "max_output_bytes", "not_before", "priority", "resources", "retry_policy", "stdin", "timeout", "working_dir"]
    class EnvEntry(_message.Message):
        __slots__ = ["key", "value"]
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class LabelsEntry(_message.Message):
        __slots__ = ["key", "value"]
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ARTIFACTS_FIELD_NUMBER: _ClassVar[int]
    CALLBACK_URL_FIELD_NUMBER: _ClassVar[int]
    COMMAND_FIELD_NUMBER: _ClassVar[int]
    ENV_FIELD_NUMBER: _ClassVar[int]
    FILES_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    MAX_ARTIFACT_BYTES_FIELD_NUMBER: _ClassVar[int]
    MAX_OUTPUT_BYTES_FIELD_NUMBER: _ClassVar[int]
    NOT_BEFORE_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    RESOURCES_FIELD_NUMBER: _ClassVar[int]
    RETRY_POLICY_FIELD_NUMBER: _ClassVar[int]
    STDIN_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    WORKING_DIR_FIELD_NUMBER: _ClassVar[int]
    artifacts: _containers.RepeatedScalarFieldContainer[str]
    callback_url: str
    command: _containers.RepeatedScalarFieldContainer[str]
    env: _containers.ScalarMap[str, str]
    files: _containers.RepeatedCompositeFieldContainer[InputFile]
    image: str
    labels: _containers.ScalarMap[str, str]
    max_artifact_bytes: int
    max_output_bytes: int
    not_before: _timestamp_pb2.Timestamp
    priority: int
    resources: Resources
    retry_policy: RetryPolicy
    stdin: bytes
    timeout: _duration_pb2.Duration
    working_dir: str
    def __init__(self, image: _Optional[str] = ..., command: _Optional[_Iterable[str]] = ..., env: _Optional[_Mapping[str, str]] = ..., stdin: _Optional[bytes] = ..., working_dir: _Optional[str] = ..., resources: _Optional[_Union[Resources, _Mapping]] = ..., timeout: _Optional[_Union[_duration_pb2.Duration, _Mapping]] = ..., max_output_bytes: _Optional[int] = ..., priority: _Optional[int] = ..., retry_policy: _Optional[_Union[RetryPolicy, _Mapping]] = ..., labels: _Optional[_Mapping[str, str]] = ..., not_before: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., files: _Optional[_Iterable[_Union[InputFile, _Mapping]]] = ..., artifacts: _Optional[_Iterable[str]] = ..., max_artifact_bytes: _Optional[int] = ..., callback_url: _Optional[str] = ...) -> None: ...

class TaskState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = []

class OutputStream(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = []

class TerminationReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = []

class ArtifactStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = []

class CallbackState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = []
