#!/usr/bin/python3
"""clients/python without a running stack: the committed stubs are what
clients/python/generate makes from proto/ today, and mypy --strict accepts the
wrapper and a typical user's code (typed_usage.py). Outside CI a missing tool
skips; with CI=true it fails."""
import filecmp
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.environ.get("CRUCIBLE_SOURCE_DIR") or os.path.abspath(os.path.join(HERE, "../.."))
PACKAGE = os.path.join(SOURCE_DIR, "clients/python")
IN_CI = os.environ.get("CI") == "true"


def require(condition, what):
    if condition:
        return
    if IN_CI:
        raise AssertionError(f"missing {what} (CI=true: nothing may be missing; scripts/bootstrap)")
    raise unittest.SkipTest(f"missing {what} (scripts/bootstrap installs it)")


def differences(a, b, rel=""):
    cmp = filecmp.dircmp(a, b, ignore=["__pycache__"])
    out = [f"only in committed: {rel}{n}" for n in cmp.left_only]
    out += [f"only in regenerated: {rel}{n}" for n in cmp.right_only]
    _, mismatch, errors = filecmp.cmpfiles(a, b, cmp.common_files, shallow=False)
    out += [f"differs: {rel}{n}" for n in mismatch + errors]
    for d in cmp.common_dirs:
        out += differences(os.path.join(a, d), os.path.join(b, d), f"{rel}{d}/")
    return out


class StaticTest(unittest.TestCase):
    def test_generated_stubs_are_current(self):
        for tool in ("protoc", "grpc_python_plugin"):
            require(shutil.which(tool), tool)
        with tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, "_gen")
            subprocess.run([os.path.join(PACKAGE, "generate"), out], check=True)
            diff = differences(os.path.join(PACKAGE, "crucible_client/_gen"), out)
            self.assertEqual(diff, [], "run clients/python/generate and commit the result")

    def test_pb_exports_every_message_and_enum(self):
        try:
            import google.protobuf  # noqa: F401
        except ImportError:
            require(False, "python3-protobuf")
        sys.path.insert(0, PACKAGE)
        try:
            from crucible_client import pb
            from crucible_client._gen.crucible.v1 import task_pb2, task_service_pb2
        finally:
            sys.path.remove(PACKAGE)
        for module in (task_pb2, task_service_pb2):
            public = {n for n in module.DESCRIPTOR.message_types_by_name}
            public |= set(module.DESCRIPTOR.enum_types_by_name)
            for enum in module.DESCRIPTOR.enum_types_by_name.values():
                public |= {v.name for v in enum.values}
            self.assertEqual(public - set(pb.__all__), set(), "add them to crucible_client/pb.py")

    def test_mypy_strict(self):
        try:
            import mypy  # noqa: F401
        except ImportError:
            require(False, "mypy (Debian: mypy)")
        with tempfile.TemporaryDirectory() as cache:
            # The package's own [tool.mypy] settings (pyproject.toml): strict.
            result = subprocess.run(
                [sys.executable, "-m", "mypy", "--cache-dir", cache,
                 "--config-file", os.path.join(PACKAGE, "pyproject.toml"),
                 "crucible_client", os.path.join(HERE, "typed_usage.py")],
                cwd=PACKAGE, capture_output=True, text=True)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
