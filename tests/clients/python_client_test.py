#!/usr/bin/python3
"""crucible_client (clients/python) installed as a user would, against the real stack.

Run by ctest (python_client_test) with Debian's /usr/bin/python3:
  1. makes a venv with --system-site-packages in a temp dir and installs
     clients/python into it offline (pip --no-build-isolation --no-index: a
     download would fail the test);
  2. re-runs this file with the venv's python, which starts crucible-server,
     crucible-worker and crucible-executor from $CRUCIBLE_BIN_DIR on ephemeral
     ports against $CRUCIBLE_TEST_DOCKER_HOST (the engine fixture's proxy) and
     runs the tests below through the installed package.
Outside CI a missing prerequisite skips (exit 77); with CI=true it fails.
"""
import importlib.util
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.environ.get("CRUCIBLE_SOURCE_DIR") or os.path.abspath(os.path.join(HERE, "../.."))
BIN_DIR = os.environ.get("CRUCIBLE_BIN_DIR") or os.path.join(SOURCE_DIR, "build/bin")
DOCKER_HOST = os.environ.get("CRUCIBLE_TEST_DOCKER_HOST", "")
IN_CI = os.environ.get("CI") == "true"
IMAGE = "localhost/crucible/busybox:latest"
INNER = "_CRUCIBLE_PY_CLIENT_VENV"
SKIPPED = 77  # ctest's SKIP_RETURN_CODE (tests/clients/CMakeLists.txt)


def missing_prerequisites():
    missing = []
    for name in ("crucible-server", "crucible-worker", "crucible-executor"):
        if not os.access(os.path.join(BIN_DIR, name), os.X_OK):
            missing.append(f"{BIN_DIR}/{name} (build the project)")
    if not DOCKER_HOST:
        missing.append("CRUCIBLE_TEST_DOCKER_HOST (run through ctest: engine fixture)")
    for module, package in (("grpc", "python3-grpcio"), ("google.protobuf", "python3-protobuf"),
                            ("venv", "python3-venv"), ("ensurepip", "python3-venv"),
                            ("setuptools", "python3-setuptools"), ("pip", "python3-pip")):
        try:
            found = importlib.util.find_spec(module) is not None
        except ImportError:
            found = False
        if not found:
            missing.append(f"python module {module} ({package}; scripts/bootstrap)")
    return missing


def outer():
    """Step 1: the venv and the offline install; then step 2 in the venv."""
    missing = missing_prerequisites()
    if missing:
        print("python_client_test: missing:\n  " + "\n  ".join(missing), file=sys.stderr)
        if IN_CI:
            print("python_client_test: FAILED (CI=true: nothing may be missing)", file=sys.stderr)
            return 1
        print("python_client_test: SKIPPED (not in CI)", file=sys.stderr)
        return SKIPPED
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="crucible-pyclient-") as tmp:
        venv = os.path.join(tmp, "venv")
        # --without-pip: Debian's pip (python3-pip) is seen through the system
        # site-packages; copying a pip into the venv would take ~7 s more.
        subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip",
                        venv], check=True)
        # A copy, so that the build writes nothing into the checkout.
        src = os.path.join(tmp, "src")
        shutil.copytree(os.path.join(SOURCE_DIR, "clients/python"), src,
                        ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__",
                                                      ".mypy_cache"))
        python = os.path.join(venv, "bin", "python")
        subprocess.run([python, "-m", "pip", "install", "--quiet", "--no-build-isolation",
                        "--no-index", "--disable-pip-version-check", src], check=True)
        print(f"python_client_test: venv and install took {time.monotonic() - start:.1f}s",
              file=sys.stderr)
        env = dict(os.environ, **{INNER: venv})
        return subprocess.run([python, os.path.abspath(__file__)] + sys.argv[1:],
                              env=env, cwd=tmp).returncode


class Stack:
    """crucible-server, -executor and -worker on ephemeral ports, as LocalStack does."""

    def __init__(self, directory):
        self.dir = directory
        self.procs = []

    def start_one(self, name, args):
        port_file = os.path.join(self.dir, f"{name}.port")
        log = open(os.path.join(self.dir, f"{name}.log"), "wb")
        # --insecure: plaintext on loopback, asked for explicitly; the
        # server takes calls without credentials (--allow_anonymous), as
        # tests/testing/process_flags.cc does for the C++ tests.
        argv = [os.path.join(BIN_DIR, f"crucible-{name}")] + args + [
            "--listen=127.0.0.1:0", f"--port_file={port_file}", "--insecure"]
        if name == "server":
            argv.append("--allow_anonymous")
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
        log.close()
        self.procs.append((name, proc))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with open(port_file) as f:
                    text = f.read().strip()
                if text.isdigit() and int(text) > 0:
                    return int(text)
            except FileNotFoundError:
                pass
            if proc.poll() is not None:
                raise RuntimeError(f"crucible-{name} exited ({proc.returncode}):\n" + self.logs())
            time.sleep(0.01)
        raise RuntimeError(f"crucible-{name} wrote no port in 30s:\n" + self.logs())

    def start(self):
        self.server_port = self.start_one("server", [f"--db={self.dir}/crucible.db"])
        executor_port = self.start_one("executor", [f"--docker_host={DOCKER_HOST}"])
        self.start_one("worker", [f"--server=127.0.0.1:{self.server_port}",
                                  f"--executors=127.0.0.1:{executor_port}"])

    def stop(self):
        """SIGTERM in the order worker, executor, server; returns the problems."""
        problems = []
        for name in ("worker", "executor", "server"):
            for n, proc in self.procs:
                if n != name or proc.poll() is not None:
                    if n == name and proc.returncode != 0:
                        problems.append(f"{name} had exited with {proc.returncode}")
                    continue
                proc.send_signal(signal.SIGTERM)
                try:
                    code = proc.wait(timeout=15)
                    if code != 0:
                        problems.append(f"{name} exited with {code}")
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
                    problems.append(f"{name} ignored SIGTERM")
        return problems

    def logs(self):
        out = []
        for name in ("server", "executor", "worker"):
            path = os.path.join(self.dir, f"{name}.log")
            if os.path.exists(path):
                with open(path, errors="replace") as f:
                    out.append(f"==== {name} log\n{f.read()}")
        return "\n".join(out)


STACK = None


def setUpModule():
    global STACK
    STACK = Stack(tempfile.mkdtemp(prefix="stack-", dir=os.getcwd()))
    STACK.start()


def tearDownModule():
    problems = STACK.stop()
    if problems:
        print(STACK.logs(), file=sys.stderr)
        raise AssertionError("stack did not stop cleanly: " + "; ".join(problems))


class InstalledPackageTest(unittest.TestCase):
    def test_imported_from_the_venv_not_the_checkout(self):
        import crucible_client
        venv = os.environ[INNER]
        self.assertTrue(crucible_client.__file__.startswith(venv), crucible_client.__file__)
        package = os.path.dirname(crucible_client.__file__)
        self.assertTrue(os.path.exists(os.path.join(package, "py.typed")))
        self.assertTrue(os.path.exists(
            os.path.join(package, "_gen", "crucible", "v1", "task_pb2.pyi")))
        # The health stubs load under the package, next to the real `grpc`.
        from crucible_client._gen.grpc_health.v1 import health_pb2_grpc
        import grpc
        self.assertTrue(hasattr(health_pb2_grpc, "HealthStub"))
        self.assertTrue(hasattr(grpc, "insecure_channel"))

    def test_state_matches_the_proto_enum(self):
        from crucible_client import State, pb
        for value in pb.TaskState.values():
            name = pb.TaskState.Name(value)
            self.assertEqual(State[name[len("TASK_STATE_"):]], value)


class RealStackTest(unittest.TestCase):
    def setUp(self):
        from crucible_client import Client
        self.client = Client(f"127.0.0.1:{STACK.server_port}", call_timeout=10)
        self.addCleanup(self.client.close)

    def test_echo_succeeds_with_its_output(self):
        from crucible_client import State
        task = self.client.submit(IMAGE, ["echo", "hi"])
        self.assertEqual(len(task.id), 32)
        final = task.wait(timeout=30)
        self.assertEqual(final.state, State.SUCCEEDED, final)
        self.assertEqual(final.result.exit_code, 0)
        self.assertEqual(b"".join(task.logs(timeout=10)), b"hi\n")
        self.assertEqual(b"".join(task.logs(follow=False, stream="stderr", timeout=10)), b"")

    def test_nonzero_exit_is_failed_with_the_code(self):
        from crucible_client import State, pb
        task = self.client.submit(IMAGE, ["sh", "-c", "echo oops >&2; exit 3"],
                                  env={"X": "1"}, timeout=20)
        final = task.wait(timeout=30)
        self.assertEqual(final.state, State.FAILED, final)
        self.assertEqual(final.result.exit_code, 3)
        self.assertEqual(final.result.reason, pb.TERMINATION_REASON_EXITED)
        self.assertEqual(b"".join(task.logs(stream="stderr", timeout=10)), b"oops\n")

    def test_stdin_reaches_the_process(self):
        from crucible_client import State
        task = self.client.submit(IMAGE, ["cat"], stdin="from stdin")
        self.assertEqual(task.wait(timeout=30).state, State.SUCCEEDED)
        self.assertEqual(b"".join(task.logs(timeout=10)), b"from stdin")

    def test_cancel_a_running_sleep(self):
        from crucible_client import State
        task = self.client.submit(IMAGE, ["sleep", "60"])
        seen = []
        for event in task.events(timeout=30):
            seen.append(State(event.state))
            if event.state == State.RUNNING:
                break
        self.assertIn(State.RUNNING, seen)
        task.cancel("python client test")
        started = time.monotonic()
        final = task.wait(timeout=30)
        self.assertEqual(final.state, State.CANCELLED, final)
        self.assertLess(time.monotonic() - started, 30)
        # The events of a finished task: its terminal state, and the end.
        self.assertEqual([State(e.state) for e in task.events(timeout=10)], [State.CANCELLED])
        # Cancelling it again is a user error with its gRPC code.
        from crucible_client import CrucibleError
        import grpc
        with self.assertRaises(CrucibleError) as caught:
            task.cancel()
        self.assertEqual(caught.exception.code, grpc.StatusCode.FAILED_PRECONDITION)

    def test_events_include_running(self):
        from crucible_client import State
        task = self.client.submit(IMAGE, ["true"])
        states = [State(e.state) for e in task.events(timeout=30)]
        self.assertIn(State.RUNNING, states)
        self.assertEqual(states[-1], State.SUCCEEDED)

    def test_same_request_id_same_task(self):
        request_id = str(uuid.uuid4())
        first = self.client.submit(IMAGE, ["true"], request_id=request_id)
        second = self.client.submit(IMAGE, ["true"], request_id=request_id)
        self.assertEqual(first.id, second.id)
        self.assertEqual(first.created.request_id, request_id)
        other = self.client.submit(IMAGE, ["true"])  # a generated request_id
        self.assertNotEqual(other.id, first.id)
        self.assertTrue(other.created.request_id)

    def test_submit_batch_answers_each_spec(self):
        import grpc
        from crucible_client import CrucibleError, State, pb
        good = pb.TaskSpec(image=IMAGE, command=["echo", "batch"])
        bad = pb.TaskSpec(command=["no image"])
        other = pb.TaskSpec(image=IMAGE, command=["true"])
        rid = str(uuid.uuid4())
        results = self.client.submit_batch(
            [good, bad, good, other],
            request_ids=[rid, str(uuid.uuid4()), rid, rid])
        self.assertEqual(len(results), 4)
        first, refused, repeat, conflict = results
        self.assertIsInstance(refused, CrucibleError)
        self.assertEqual(refused.code, grpc.StatusCode.INVALID_ARGUMENT)
        # The same request_id and spec: the same task; another spec: refused.
        self.assertEqual(repeat.id, first.id)
        self.assertIsInstance(conflict, CrucibleError)
        self.assertEqual(conflict.code, grpc.StatusCode.ALREADY_EXISTS)
        self.assertEqual(first.wait(timeout=30).state, State.SUCCEEDED)
        self.assertEqual(b"".join(first.logs(timeout=10)), b"batch\n")
        with self.assertRaises(ValueError):
            self.client.submit_batch([good], request_ids=[])

    def test_list_finds_the_task(self):
        from crucible_client import State
        label = uuid.uuid4().hex
        task = self.client.submit(IMAGE, ["true"], labels={"pytest": label})
        task.wait(timeout=30)
        found = [t.id for t in self.client.list(labels={"pytest": label})]
        self.assertEqual(found, [task.id])
        self.assertIn(task.id, [t.id for t in self.client.list(states=[State.SUCCEEDED])])
        self.assertEqual([t.id for t in self.client.list(
            labels={"pytest": label}, states=["failed"])], [])
        # Paging: page_size 1 still walks every page.
        self.assertGreaterEqual(len(list(self.client.list(page_size=1, limit=3))), 3)
        self.assertEqual(self.client.get(task.id).spec.labels["pytest"], label)

    def test_errors_carry_code_and_message(self):
        import grpc
        from crucible_client import CrucibleError, WaitTimeout
        with self.assertRaises(CrucibleError) as caught:
            self.client.get("0" * 32)
        self.assertEqual(caught.exception.code, grpc.StatusCode.NOT_FOUND)
        self.assertIn("not found", caught.exception.message)
        with self.assertRaises(TypeError):
            self.client.submit(IMAGE, "echo hi")  # argv, not a string
        task = self.client.submit(IMAGE, ["sleep", "30"])
        with self.assertRaises(WaitTimeout):
            task.wait(timeout=0.5)
        task.cancel()

    def test_a_file_path_out_of_the_working_directory_is_refused(self):
        import grpc
        from crucible_client import CrucibleError
        for path in ("../escape", "/etc/passwd", "a//b"):
            with self.assertRaises(CrucibleError) as caught:
                self.client.submit(IMAGE, ["true"], files={path: "x"})
            self.assertEqual(caught.exception.code, grpc.StatusCode.INVALID_ARGUMENT)
            self.assertIn("spec.files[0].path", caught.exception.message)

    def test_artifacts_come_back_byte_identical(self):
        import hashlib
        from crucible_client import State, pb
        data = bytes(range(256)) * 300  # 76800 bytes: two chunks
        task = self.client.submit(
            IMAGE, ["sh", "-c", "mkdir out && cp in/data.bin out/copy.bin && "
                    "head -c 300000 /dev/urandom > out/big.bin"],
            files={"in/data.bin": data}, artifacts=["out/*", "missing.txt"])
        final = task.wait(timeout=60)
        self.assertEqual(final.state, State.SUCCEEDED, final)
        infos = {a.path: a for a in final.result.artifacts}
        self.assertEqual(infos["missing.txt"].status, pb.ARTIFACT_STATUS_NOT_FOUND)
        self.assertEqual(infos["out/big.bin"].size_bytes, 300000)
        self.assertEqual(task.get_artifact("out/copy.bin"), data)
        big = self.client.get_artifact(task.id, "out/big.bin")
        self.assertEqual(hashlib.sha256(big).hexdigest(), infos["out/big.bin"].sha256)
        with tempfile.TemporaryDirectory() as out:
            written = task.download_artifacts(out)
            self.assertEqual(sorted(str(p.relative_to(out)) for p in written),
                             ["out/big.bin", "out/copy.bin"])
            with open(os.path.join(out, "out/copy.bin"), "rb") as f:
                self.assertEqual(f.read(), data)
            with open(os.path.join(out, "out/big.bin"), "rb") as f:
                self.assertEqual(f.read(), big)
            self.assertEqual(sorted(os.listdir(os.path.join(out, "out"))),
                             ["big.bin", "copy.bin"])  # no temporary file left
        import grpc
        from crucible_client import CrucibleError
        with self.assertRaises(CrucibleError) as caught:
            self.client.get_artifact(task.id, "missing.txt")
        self.assertEqual(caught.exception.code, grpc.StatusCode.NOT_FOUND)

    def test_readme_example(self):
        import contextlib
        import io
        import re
        with open(os.path.join(SOURCE_DIR, "clients/python/README.md")) as f:
            example = re.search(r"```python\n(.*?)```", f.read(), re.S).group(1)
        self.assertIn('Client("127.0.0.1:8080")', example)
        example = example.replace("127.0.0.1:8080", f"127.0.0.1:{STACK.server_port}")
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exec(compile(example, "clients/python/README.md", "exec"), {})
        text = out.getvalue()
        self.assertRegex(text, r"[0-9a-f]{32} FAILED 3\n")
        self.assertIn("b'hi\\n'\n", text)
        self.assertIn("CANCELLED\n", text)
        self.assertRegex(text, r"\n[0-9a-f]{32} \['sh', '-c', 'echo hi; exit 3'\]\n")
        self.assertIn("StatusCode.NOT_FOUND", text)
        # And the top-level README's "From Python" example.
        with open(os.path.join(SOURCE_DIR, "README.md")) as f:
            section = f.read().split("### From Python", 1)[1]
        example = re.search(r"```python\n(.*?)```", section, re.S).group(1)
        example = example.replace("127.0.0.1:8080", f"127.0.0.1:{STACK.server_port}")
        scope = {}
        exec(compile(example, "README.md", "exec"), scope)
        self.assertEqual(scope["output"], b"hi\n")
        self.assertEqual(scope["final"].result.exit_code, 0)

    def test_health(self):
        self.assertEqual(self.client.health(), "SERVING")


class SubmitRetryTest(unittest.TestCase):
    """submit against an in-process TaskService that fails the first calls."""

    def test_retries_with_the_same_request_id(self):
        import grpc
        from concurrent import futures
        from crucible_client import Client, CrucibleError, pb
        from crucible_client._gen.crucible.v1 import task_service_pb2_grpc

        seen = []

        class Flaky(task_service_pb2_grpc.TaskServiceServicer):
            def CreateTask(self, request, context):
                seen.append(request.request_id)
                if len(seen) == 1:
                    context.abort(grpc.StatusCode.UNAVAILABLE, "not yet")
                if len(seen) == 2:
                    time.sleep(0.5)  # past the client's deadline
                return pb.CreateTaskResponse(task=pb.Task(id="t-" + request.request_id))

        server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        task_service_pb2_grpc.add_TaskServiceServicer_to_server(Flaky(), server)
        port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        self.addCleanup(server.stop, None)
        with Client(f"127.0.0.1:{port}", call_timeout=0.2, retry_initial_backoff=0.01,
                    retry_max_backoff=0.05) as client:
            task = client.submit(IMAGE, ["true"])
            self.assertEqual(len(seen), 3)
            self.assertEqual(len(set(seen)), 1)
            self.assertEqual(task.id, "t-" + seen[0])
            uuid.UUID(seen[0])  # a generated uuid
            # A user error is not retried.
            seen.clear()

        class Refusing(task_service_pb2_grpc.TaskServiceServicer):
            def CreateTask(self, request, context):
                seen.append(request.request_id)
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, "image is required")

        server2 = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        task_service_pb2_grpc.add_TaskServiceServicer_to_server(Refusing(), server2)
        port2 = server2.add_insecure_port("127.0.0.1:0")
        server2.start()
        self.addCleanup(server2.stop, None)
        with Client(f"127.0.0.1:{port2}") as client:
            with self.assertRaises(CrucibleError) as caught:
                client.submit("", ["true"])
            self.assertEqual(caught.exception.code, grpc.StatusCode.INVALID_ARGUMENT)
            self.assertEqual(caught.exception.message, "image is required")
            self.assertEqual(len(seen), 1)


class ArtifactCheckTest(unittest.TestCase):
    """get_artifact and download_artifacts against an in-process TaskService
    that serves what a broken or hostile server might."""

    def setUp(self):
        import grpc
        from concurrent import futures
        from crucible_client import Client, pb
        from crucible_client._gen.crucible.v1 import task_service_pb2_grpc

        self.pb = pb
        self.served = {}  # path -> (info, [chunk data])
        self.asked = []
        self.outages = 0
        self.task = pb.Task(id="t1", state=pb.TASK_STATE_SUCCEEDED,
                            spec=pb.TaskSpec(image=IMAGE, artifacts=["*"]))
        test = self

        class Fake(task_service_pb2_grpc.TaskServiceServicer):
            def GetTask(self, request, context):
                return pb.GetTaskResponse(task=test.task)

            def GetArtifact(self, request, context):
                test.asked.append((request.path, request.attempt))
                if test.outages > 0:
                    test.outages -= 1
                    context.abort(grpc.StatusCode.UNAVAILABLE, "try again")
                if request.path not in test.served:
                    context.abort(grpc.StatusCode.NOT_FOUND, "no such artifact")
                info, chunks = test.served[request.path]
                yield pb.GetArtifactResponse(info=info)
                offset = 0
                for data in chunks:
                    yield pb.GetArtifactResponse(chunk=pb.ArtifactChunk(
                        path=info.path, data=data, offset=offset))
                    offset += len(data)

        server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        task_service_pb2_grpc.add_TaskServiceServicer_to_server(Fake(), server)
        port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        self.addCleanup(server.stop, None)
        self.client = Client(f"127.0.0.1:{port}", call_timeout=5, retry_initial_backoff=0.01,
                             retry_max_backoff=0.05)
        self.addCleanup(self.client.close)
        self.out = tempfile.mkdtemp(prefix="artifacts-", dir=os.getcwd())
        self.addCleanup(shutil.rmtree, self.out)

    def collected(self, path, data, served=None, listed=True):
        """Announces `data` at `path`; serves `served` (default: data) in two pieces."""
        import hashlib
        pb = self.pb
        info = pb.ArtifactInfo(path=path, status=pb.ARTIFACT_STATUS_COLLECTED,
                               size_bytes=len(data), sha256=hashlib.sha256(data).hexdigest())
        body = data if served is None else served
        self.served[path] = (info, [body[:len(body) // 2], body[len(body) // 2:]])
        if listed:
            self.task.result.artifacts.append(info)

    def tree(self):
        return sorted(os.path.relpath(os.path.join(d, n), self.out)
                      for d, dirs, files in os.walk(self.out) for n in dirs + files)

    def test_pieces_in_order_make_the_file_and_an_outage_is_retried(self):
        self.collected("out/a.bin", b"x" * 100000)
        self.task.result.artifacts.append(self.pb.ArtifactInfo(
            path="big.bin", status=self.pb.ARTIFACT_STATUS_SKIPPED_OVER_LIMIT, size_bytes=9))
        self.outages = 1
        self.assertEqual(self.client.get_artifact("t1", "out/a.bin", attempt=2), b"x" * 100000)
        self.assertEqual(self.asked, [("out/a.bin", 2), ("out/a.bin", 2)])
        written = self.client.download_artifacts("t1", self.out)
        self.assertEqual(written, [pathlib.Path(self.out, "out/a.bin")])
        with open(os.path.join(self.out, "out/a.bin"), "rb") as f:
            self.assertEqual(f.read(), b"x" * 100000)
        self.assertEqual(self.tree(), ["out", "out/a.bin"])

    def test_bytes_that_do_not_match_are_data_loss_and_leave_no_file(self):
        import grpc
        from crucible_client import CrucibleError
        for name, served in (("sha.bin", b"wrong"), ("short.bin", b"righ"),
                             ("long.bin", b"right!")):
            with self.subTest(name):
                self.task.result.ClearField("artifacts")
                self.collected(name, b"right", served=served)
                with self.assertRaises(CrucibleError) as caught:
                    self.client.get_artifact("t1", name)
                self.assertEqual(caught.exception.code, grpc.StatusCode.DATA_LOSS)
                with self.assertRaises(CrucibleError) as caught:
                    self.client.download_artifacts("t1", self.out)
                self.assertEqual(caught.exception.code, grpc.StatusCode.DATA_LOSS)
                self.assertEqual(self.tree(), [])

    def test_a_path_out_of_the_directory_is_refused_before_anything_is_written(self):
        import grpc
        from crucible_client import CrucibleError
        self.collected("good.txt", b"fine")
        for path in ("../evil", "/tmp/evil", "a//b", "a/./b", "a/.."):
            with self.subTest(path):
                self.asked.clear()
                del self.task.result.artifacts[1:]
                self.collected(path, b"evil")
                with self.assertRaises(CrucibleError) as caught:
                    self.client.download_artifacts("t1", self.out)
                self.assertEqual(caught.exception.code, grpc.StatusCode.INVALID_ARGUMENT)
                self.assertIn(repr(path), caught.exception.message)
                self.assertEqual(self.asked, [])
                self.assertEqual(self.tree(), [])

    def test_no_result_yet_is_failed_precondition_and_no_artifacts_asked_is_empty(self):
        import grpc
        from crucible_client import CrucibleError
        self.task.state = self.pb.TASK_STATE_RUNNING
        with self.assertRaises(CrucibleError) as caught:
            self.client.download_artifacts("t1", self.out)
        self.assertEqual(caught.exception.code, grpc.StatusCode.FAILED_PRECONDITION)
        self.task.spec.ClearField("artifacts")
        self.assertEqual(self.client.download_artifacts("t1", self.out), [])


if __name__ == "__main__":
    if not os.environ.get(INNER):
        sys.exit(outer())
    started = time.monotonic()
    program = unittest.main(exit=False, verbosity=2)
    print(f"python_client_test: tests took {time.monotonic() - started:.1f}s", file=sys.stderr)
    if not program.result.wasSuccessful():
        print(STACK.logs() if STACK else "", file=sys.stderr)
        sys.exit(1)
    sys.exit(0)
