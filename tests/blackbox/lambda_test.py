# SPDX-License-Identifier: MIT
"""Lambda black-box tests: the real `aws lambda` CLI against `changepipe serve`.

The function is a custom runtime in POSIX sh + curl (tests/data/lambda/echo/bootstrap, the
runtime the unit tests use), zipped here with the executable bit kept. Covers the article's
`create-function --zip-file fileb://fn.zip --cli-input-json file://deploy.json`, GetFunction
(and the package behind Code.Location), ListFunctions with the CLI's own paging,
Invoke (RequestResponse round trip, function errors through the CLI and as the raw
X-Amz-Function-Error header, a crashing runtime replaced on the next call), DeleteFunction, and
the documented errors: an unsupported runtime, a missing function, a duplicate name and a zip
whose entries try to escape the function directory. The server must answer /health after each.
"""
import json
import os
import shutil
import stat
import tempfile
import urllib.error
import urllib.request
import uuid
import zipfile

from harness import ServerTestCase, main, wait_for

HERE = os.path.dirname(os.path.abspath(__file__))
ECHO_BOOTSTRAP = os.path.join(HERE, "..", "data", "lambda", "echo", "bootstrap")
ACCOUNT = "000000000000"
REGION = "us-east-1"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/blackbox-lambda"


def add_file(z, name, data, mode=0o644):
    """Add a regular file with unix permission bits (what `zip` on Linux records)."""
    info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
    info.create_system = 3  # unix: external_attr's high half is st_mode
    info.external_attr = (stat.S_IFREG | mode) << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    z.writestr(info, data)


class LambdaTest(ServerTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.tmp = tempfile.mkdtemp(prefix="cp-lambda-")
        # The runtime is copied into a fresh directory and zipped from there, as a user would
        # package a function: fn.zip holds one executable `bootstrap`.
        src = os.path.join(cls.tmp, "src")
        os.makedirs(src)
        boot = os.path.join(src, "bootstrap")
        shutil.copyfile(ECHO_BOOTSTRAP, boot)
        os.chmod(boot, 0o755)
        cls.zip_path = os.path.join(cls.tmp, "fn.zip")
        with open(boot, "rb") as f:
            boot_bytes = f.read()
        with zipfile.ZipFile(cls.zip_path, "w") as z:
            add_file(z, "bootstrap", boot_bytes, 0o755)
        with open(cls.zip_path, "rb") as f:
            cls.zip_bytes = f.read()

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)
        super().tearDownClass()

    # -- helpers ------------------------------------------------------------------------------

    def lam(self, *args, **kw):
        return self.aws.ok("lambda", *args, **kw)

    def lfails(self, *args, code):
        return self.aws.fails("lambda", *args, code=code)

    def write(self, name, data):
        path = os.path.join(self.tmp, name)
        with open(path, "wb" if isinstance(data, bytes) else "w") as f:
            f.write(data)
        return path

    def deploy_json(self, name, **overrides):
        doc = {
            "FunctionName": name,
            "Runtime": "provided.al2023",
            "Handler": "bootstrap",
            "Role": ROLE,
            "Description": "echo runtime for the black-box tests",
            "Timeout": 30,
            "MemorySize": 256,
            "Architectures": ["x86_64"],
            "Environment": {"Variables": {"GREETING": "hello from deploy.json"}},
        }
        doc.update(overrides)
        return self.write(name + "-deploy.json", json.dumps(doc))

    def create(self, name, **overrides):
        """The article's command: the package as fileb://, everything else from deploy.json."""
        return self.lam("create-function", "--zip-file", "fileb://" + self.zip_path,
                        "--cli-input-json", "file://" + self.deploy_json(name, **overrides))

    def invoke(self, name, payload):
        """aws lambda invoke: returns (CLI output, the response payload bytes)."""
        event = self.write(name + "-event.json", payload)
        out = os.path.join(self.tmp, name + "-out.json")
        if os.path.exists(out):
            os.unlink(out)
        meta = self.lam("invoke", "--function-name", name, "--payload", "fileb://" + event, out)
        with open(out, "rb") as f:
            return meta, f.read()

    def raw_invoke(self, name, body):
        """POST .../invocations without the CLI, to see the HTTP status and headers."""
        req = urllib.request.Request(
            f"{self.server.endpoint}/2015-03-31/functions/{name}/invocations",
            data=body, method="POST", headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                return r.status, dict(r.headers), r.read()
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), e.read()

    def assert_healthy(self):
        status, body = wait_for(lambda: self.server.get("/health"), timeout=30,
                                what="/health")
        self.assertEqual(status, 200)
        self.assertEqual(json.loads(body)["status"], "ok")

    def arn(self, name):
        return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"

    def fn_dir(self, name):
        return os.path.join(self.server.data, "lambda", name)

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="cp-lambda-case-")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    # -- the article's command, get, list, invoke, delete --------------------------------------

    def test_create_get_invoke_delete(self):
        name = "bb-echo"
        fn = self.create(name)
        self.assertEqual(fn["FunctionName"], name)
        self.assertEqual(fn["FunctionArn"], self.arn(name))
        self.assertEqual(fn["Runtime"], "provided.al2023")
        self.assertEqual(fn["Handler"], "bootstrap")
        self.assertEqual(fn["Role"], ROLE)
        self.assertEqual(fn["Timeout"], 30)
        self.assertEqual(fn["MemorySize"], 256)
        self.assertEqual(fn["Architectures"], ["x86_64"])
        self.assertEqual(fn["Environment"]["Variables"], {"GREETING": "hello from deploy.json"})
        self.assertEqual(fn["CodeSize"], len(self.zip_bytes))
        self.assertEqual(fn["State"], "Active")
        self.assertEqual(fn["Version"], "$LATEST")
        # The package was extracted with the executable bit kept.
        boot = os.path.join(self.fn_dir(name), "code", "bootstrap")
        self.assertTrue(os.access(boot, os.X_OK), boot)
        self.assert_healthy()

        got = self.lam("get-function", "--function-name", name)
        self.assertEqual(got["Configuration"]["FunctionArn"], self.arn(name))
        self.assertEqual(got["Configuration"]["CodeSha256"], fn["CodeSha256"])
        self.assertEqual(got["Configuration"]["RevisionId"], fn["RevisionId"])
        # Code.Location serves the package that was uploaded, byte for byte.
        with urllib.request.urlopen(got["Code"]["Location"], timeout=30) as r:
            self.assertEqual(r.read(), self.zip_bytes)
        by_arn = self.lam("get-function", "--function-name", self.arn(name))
        self.assertEqual(by_arn["Configuration"]["FunctionName"], name)
        conf = self.lam("get-function-configuration", "--function-name", name)
        self.assertEqual(conf["CodeSha256"], fn["CodeSha256"])
        self.assert_healthy()

        # RequestResponse: the event reaches the runtime unchanged and its answer comes back.
        event = {"msg": "round trip", "n": [1, 2.5, None, True], "nested": {"k": "v\u00fc"}}
        meta, payload = self.invoke(name, json.dumps(event).encode())
        self.assertEqual(meta["StatusCode"], 200)
        self.assertNotIn("FunctionError", meta)
        self.assertEqual(meta.get("ExecutedVersion"), "$LATEST")
        answer = json.loads(payload)
        self.assertEqual(answer["echo"], event)
        self.assertEqual(answer["fn"], name)
        self.assertEqual(answer["arn"], self.arn(name))
        self.assertEqual(answer["greeting"], "hello from deploy.json")
        self.assertEqual(answer["handler"], "bootstrap")
        self.assertEqual(answer["memory"], "256")
        self.assertEqual(answer["region"], REGION)
        self.assert_healthy()

        # Newer CLI models surface DeleteFunction's 204 as StatusCode; older ones print nothing.
        self.assertEqual(self.lam("delete-function", "--function-name", name).get("StatusCode",
                                                                                   204), 204)
        self.assertFalse(os.path.exists(self.fn_dir(name)))
        self.lfails("get-function", "--function-name", name, code="ResourceNotFoundException")
        names = [f["FunctionName"] for f in self.lam("list-functions")["Functions"]]
        self.assertNotIn(name, names)
        self.lfails("invoke", "--function-name", name, os.path.join(self.tmp, "gone.json"),
                    code="ResourceNotFoundException")
        self.assert_healthy()

    def test_list_functions_pages(self):
        names = [f"bb-list-{i}" for i in (3, 1, 2)]
        for n in names:
            self.create(n)
        listed = self.lam("list-functions")["Functions"]
        mine = [f["FunctionName"] for f in listed if f["FunctionName"].startswith("bb-list-")]
        self.assertEqual(mine, sorted(names))
        for f in listed:
            if f["FunctionName"] in names:
                self.assertEqual(f["FunctionArn"], self.arn(f["FunctionName"]))
                self.assertEqual(f["Runtime"], "provided.al2023")
        # --page-size 1 makes the CLI follow NextMarker one function at a time.
        paged = self.lam("list-functions", "--page-size", "1")["Functions"]
        self.assertEqual([f["FunctionName"] for f in paged], [f["FunctionName"] for f in listed])
        first = self.lam("list-functions", "--max-items", "1")
        self.assertEqual(len(first["Functions"]), 1)
        self.assertIn("NextToken", first)
        self.assert_healthy()
        for n in names:
            self.lam("delete-function", "--function-name", n)
        left = [f["FunctionName"] for f in self.lam("list-functions")["Functions"]]
        self.assertFalse(set(left) & set(names))
        self.assert_healthy()

    # -- function errors ----------------------------------------------------------------------

    def test_function_error(self):
        name = "bb-fails"
        self.create(name)
        # The echo runtime posts /invocation/{id}/error for an event containing "fail".
        meta, payload = self.invoke(name, b'{"please":"fail"}')
        self.assertEqual(meta["StatusCode"], 200)
        self.assertEqual(meta["FunctionError"], "Unhandled")
        err = json.loads(payload)
        self.assertEqual(err["errorType"], "Test.Failure")
        self.assertEqual(err["errorMessage"], "failed on purpose")
        self.assert_healthy()

        status, headers, body = self.raw_invoke(name, b'{"please":"fail"}')
        headers = {k.lower(): v for k, v in headers.items()}
        self.assertEqual(status, 200)
        self.assertEqual(headers.get("x-amz-function-error"), "Unhandled")
        self.assertEqual(json.loads(body)["errorType"], "Test.Failure")
        # A successful call has no X-Amz-Function-Error.
        status, headers, body = self.raw_invoke(name, b'{"fine":true}')
        self.assertEqual(status, 200)
        self.assertNotIn("x-amz-function-error", {k.lower() for k in headers})
        self.assertEqual(json.loads(body)["echo"], {"fine": True})
        self.assert_healthy()

        # A runtime that dies mid-invocation is a function error; the next call gets a new one.
        before = json.loads(self.invoke(name, b'{"who":1}')[1])["pid"]
        meta, payload = self.invoke(name, b'{"then":"crash"}')
        self.assertEqual(meta["FunctionError"], "Unhandled")
        self.assertEqual(json.loads(payload)["errorType"], "Runtime.ExitError")
        self.assert_healthy()
        after = json.loads(self.invoke(name, b'{"who":2}')[1])
        self.assertEqual(after["echo"], {"who": 2})
        self.assertNotEqual(after["pid"], before)
        self.lam("delete-function", "--function-name", name)
        self.assert_healthy()

    # -- documented errors --------------------------------------------------------------------

    def test_unsupported_runtime(self):
        for runtime in ("python3.12", "nodejs20.x"):
            err = self.lfails("create-function", "--zip-file", "fileb://" + self.zip_path,
                              "--cli-input-json",
                              "file://" + self.deploy_json("bb-rt", Runtime=runtime),
                              code="InvalidParameterValueException")
            self.assertIn(runtime, err)
            self.assertIn("provided.al2023", err)
            self.lfails("get-function", "--function-name", "bb-rt",
                        code="ResourceNotFoundException")
            self.assert_healthy()
        # Every custom runtime is accepted.
        for runtime in ("provided", "provided.al2"):
            name = "bb-rt-" + runtime.replace(".", "-")
            self.assertEqual(self.create(name, Runtime=runtime)["Runtime"], runtime)
            self.lam("delete-function", "--function-name", name)
        self.assert_healthy()

    def test_missing_function(self):
        name = "bb-never-created"
        self.lfails("get-function", "--function-name", name, code="ResourceNotFoundException")
        self.lfails("get-function-configuration", "--function-name", name,
                    code="ResourceNotFoundException")
        self.lfails("delete-function", "--function-name", name,
                    code="ResourceNotFoundException")
        self.lfails("invoke", "--function-name", name, os.path.join(self.tmp, "out.json"),
                    code="ResourceNotFoundException")
        status, headers, _ = self.raw_invoke(name, b"{}")
        self.assertEqual(status, 404)
        self.assertEqual({k.lower(): v for k, v in headers.items()}.get("x-amzn-errortype"),
                         "ResourceNotFoundException")
        self.assert_healthy()

    def test_duplicate_name(self):
        name = "bb-dup"
        first = self.create(name)
        self.lfails("create-function", "--zip-file", "fileb://" + self.zip_path,
                    "--cli-input-json", "file://" + self.deploy_json(name, Timeout=5),
                    code="ResourceConflictException")
        # The first function is untouched.
        conf = self.lam("get-function-configuration", "--function-name", name)
        self.assertEqual(conf["Timeout"], 30)
        self.assertEqual(conf["RevisionId"], first["RevisionId"])
        self.assertEqual(json.loads(self.invoke(name, b'{"still":"here"}')[1])["echo"],
                         {"still": "here"})
        self.lam("delete-function", "--function-name", name)
        self.assert_healthy()

    def test_zip_path_traversal_is_refused(self):
        marker = "evil-" + uuid.uuid4().hex
        outside = os.path.join(tempfile.gettempdir(), marker + "-abs")
        with open(ECHO_BOOTSTRAP, "rb") as f:
            boot = f.read()
        hostile = {
            "dotdot": "../" + marker,
            "deep": "a/../../../" + marker,
            "absolute": outside,
        }
        for what, entry in hostile.items():
            with self.subTest(what):
                path = os.path.join(self.tmp, what + ".zip")
                with zipfile.ZipFile(path, "w") as z:
                    add_file(z, "bootstrap", boot, 0o755)
                    add_file(z, entry, b"#!/bin/sh\necho pwned\n", 0o755)
                name = "bb-traversal-" + what
                err = self.lfails("create-function", "--zip-file", "fileb://" + path,
                                  "--cli-input-json", "file://" + self.deploy_json(name),
                                  code="InvalidParameterValueException")
                self.assertIn("Could not unzip uploaded file", err)
                self.lfails("get-function", "--function-name", name,
                            code="ResourceNotFoundException")
                self.assertFalse(os.path.exists(self.fn_dir(name)))
                self.assert_healthy()
        # Nothing was written anywhere: not in the server's directories, not at the absolute
        # path, and no half-made function directory remains.
        for root, dirs, files in os.walk(self.server.tmp):
            for n in dirs + files:
                self.assertNotIn(marker, n, os.path.join(root, n))
        self.assertFalse(os.path.exists(outside))
        names = [f["FunctionName"] for f in self.lam("list-functions")["Functions"]]
        self.assertFalse([n for n in names if n.startswith("bb-traversal-")])
        self.assert_healthy()


if __name__ == "__main__":
    main()
