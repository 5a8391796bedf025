# SPDX-License-Identifier: MIT
"""Black-box harness: a real `changepipe serve` process driven by the real `aws` CLI.

Each test class gets a fresh server on a free port with its own data directory. The server
writes its bound address to a ready file; the harness then polls /health with a deadline (never
a fixed sleep). On failure the server's log is printed; at teardown the log is checked for
sanitizer reports.
"""
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import unittest
import urllib.request

BINARY = os.environ.get("CHANGEPIPE_BIN", "changepipe")


def wait_for(predicate, timeout=30.0, interval=0.05, what="condition"):
    """Poll predicate() until it returns a truthy value or the deadline passes."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
            if last:
                return last
        except Exception as e:  # noqa: BLE001 - keep polling through transient errors
            last = e
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


class Server:
    def __init__(self, *extra_args, data=None):
        self.tmp = tempfile.mkdtemp(prefix="cp-bb-")
        self.data = data or os.path.join(self.tmp, "data")
        self.ready = os.path.join(self.tmp, "ready")
        self.log_path = os.path.join(self.tmp, "server.log")
        self.extra = list(extra_args)
        self.proc = None
        self.endpoint = None

    def start(self):
        if os.path.exists(self.ready):
            os.unlink(self.ready)
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [BINARY, "serve", "--listen", "127.0.0.1:0", "--data", self.data,
             "--ready-file", self.ready, *self.extra],
            stdout=self.log, stderr=subprocess.STDOUT)

        def ready():
            if self.proc.poll() is not None:
                raise AssertionError("server exited early:\n" + self.read_log())
            with open(self.ready) as f:
                return f.read().strip()

        addr = wait_for(ready, what="the ready file")
        self.endpoint = f"http://{addr}"
        wait_for(lambda: self.get("/health")[0] == 200, what="/health")
        return self

    def get(self, path):
        with urllib.request.urlopen(self.endpoint + path, timeout=5) as r:
            return r.status, r.read()

    def stop(self, sig=signal.SIGTERM, timeout=30):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("server did not stop on SIGTERM")
        code = self.proc.returncode if self.proc else 0
        if self.proc:
            self.log.close()
        return code

    def kill(self):
        self.proc.kill()
        self.proc.wait()
        self.log.close()

    def read_log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def cleanup(self):
        shutil.rmtree(self.tmp, ignore_errors=True)


class AwsCli:
    """Runs the aws CLI against a server with dummy credentials."""

    def __init__(self, endpoint, region="us-east-1"):
        self.endpoint = endpoint
        self.env = dict(os.environ)
        self.env.update({
            "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE",
            "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            "AWS_DEFAULT_REGION": region,
            "AWS_PAGER": "",
            "AWS_CONFIG_FILE": "/dev/null",
            "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
            "AWS_MAX_ATTEMPTS": "1",
        })

    def run(self, *args, check=True, input=None, env=None):
        """Returns (returncode, parsed JSON or text, stderr)."""
        cmd = ["aws", "--endpoint-url", self.endpoint, "--output", "json", *args]
        p = subprocess.run(cmd, capture_output=True, text=True, input=input,
                           env={**self.env, **(env or {})}, timeout=120)
        out = p.stdout
        try:
            out = json.loads(out) if out.strip() else {}
        except ValueError:
            pass
        if check and p.returncode != 0:
            raise AssertionError(f"{' '.join(args)} failed ({p.returncode}): {p.stderr}")
        return p.returncode, out, p.stderr

    def ok(self, *args, **kw):
        return self.run(*args, **kw)[1]

    def fails(self, *args, code=None, **kw):
        """Run a command that must fail; returns stderr. `code` is the expected AWS error."""
        rc, _, err = self.run(*args, check=False, **kw)
        if rc == 0:
            raise AssertionError(f"{' '.join(args)} succeeded but should have failed")
        if code and f"({code})" not in err:
            raise AssertionError(f"expected {code}, got: {err}")
        return err


class ServerTestCase(unittest.TestCase):
    """A test class with one server shared by its tests."""

    server_args = ()

    @classmethod
    def setUpClass(cls):
        cls.server = Server(*cls.server_args).start()
        cls.aws = AwsCli(cls.server.endpoint)

    @classmethod
    def tearDownClass(cls):
        code = cls.server.stop()
        log = cls.server.read_log()
        cls.server.cleanup()
        if "Sanitizer" in log or "runtime error:" in log:
            raise AssertionError("sanitizer report in the server log:\n" + log)
        if code != 0:
            raise AssertionError(f"server exited with {code}:\n{log}")

    def run(self, result=None):
        # Print the server log when a test fails, like Redis's --dump-logs.
        before = len(result.failures) + len(result.errors) if result else 0
        out = super().run(result)
        if result and len(result.failures) + len(result.errors) > before:
            print("\n--- server log ---\n" + self.server.read_log()[-20000:])
        return out


def main():
    unittest.main(verbosity=2)
