# SPDX-License-Identifier: MIT
"""Firehose black-box tests: the article's delivery streams through the real `aws` CLI.

DynamoDB -> Kinesis -> Firehose (with the example C Lambda in examples/lambda as a custom
runtime) -> S3, all against one `changepipe serve`, checked object by object in the bucket:
both of the article's layouts hold every item exactly once, keys have Firehose's shape, and
the content is the team's flat JSON, one item per line. Also the control plane, DirectPut,
error output (a second custom runtime written here, and jq partition keys) and SIGKILL during
delivery. Buffers are flushed with POST /changepipe/v1/drain (a changepipe extension), never
by waiting for a buffering interval.
"""
import base64
import collections
import datetime
import gzip
import hashlib
import hmac
import json
import os
import re
import shutil
import stat
import subprocess
import tempfile
import time
import unittest
import urllib.request
import zipfile

from harness import BINARY, AwsCli, Server, ServerTestCase, main, wait_for

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DEPLOY_JSON = os.path.join(ROOT, "examples", "lambda", "deploy.json")
ACCOUNT = "000000000000"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/firehose"
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
STAMP = r"(\d{4})-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)"

# A second custom runtime for the error-output test: Python behind the Lambda Runtime API.
# Per record (JSON with an "action"): "fail" -> ProcessingFailed, "drop" -> Dropped, otherwise
# Ok with the document plus "seen":true and a newline, and "k" (if any) as partition key.
FAIL_SOME_BOOTSTRAP = r'''#!/usr/bin/env python3
import base64, json, os, urllib.request
API = "http://%s/2018-06-01/runtime/invocation/" % os.environ["AWS_LAMBDA_RUNTIME_API"]
while True:
    try:
        with urllib.request.urlopen(API + "next") as r:
            rid = r.headers["Lambda-Runtime-Aws-Request-Id"]
            event = json.loads(r.read())
    except Exception:
        raise SystemExit(1)  # the server is gone: exit, as a runtime does
    out = []
    for rec in event["records"]:
        try:
            doc = json.loads(base64.b64decode(rec["data"]))
        except ValueError:
            doc = {"action": "fail"}
        action = doc.get("action", "ok")
        if action == "fail":
            out.append({"recordId": rec["recordId"], "result": "ProcessingFailed",
                        "data": rec["data"]})
        elif action == "drop":
            out.append({"recordId": rec["recordId"], "result": "Dropped"})
        else:
            doc["seen"] = True
            data = (json.dumps(doc, separators=(",", ":")) + "\n").encode()
            item = {"recordId": rec["recordId"], "result": "Ok",
                    "data": base64.b64encode(data).decode()}
            if "k" in doc:
                item["metadata"] = {"partitionKeys": {"k": doc["k"]}}
            out.append(item)
    req = urllib.request.Request(API + rid + "/response", method="POST",
                                 data=json.dumps({"records": out}).encode())
    try:
        urllib.request.urlopen(req).read()
    except Exception:
        raise SystemExit(1)
'''


def example_lambda_zip(dest):
    """fn.zip with the example Lambda's bootstrap, from the build that made CHANGEPIPE_BIN.

    The bootstrap (target example_lambda_bootstrap) is part of the default build; if it is
    missing, build it in that build directory. Zipped here so that the zip is never older
    than the binary."""
    build = os.path.dirname(os.path.abspath(shutil.which(BINARY) or BINARY))
    boot = os.path.join(build, "examples", "lambda", "bootstrap")
    if not os.path.exists(boot) and os.path.exists(os.path.join(build, "CMakeCache.txt")):
        subprocess.run(["cmake", "--build", build, "--target", "example_lambda_bootstrap",
                        "-j2"], check=True, capture_output=True, timeout=600)
    if not os.path.exists(boot):
        raise unittest.SkipTest(f"no example Lambda bootstrap next to {BINARY}")
    return zip_bootstrap(dest, boot)


def zip_bootstrap(dest, path):
    zpath = os.path.join(dest, "fn.zip")
    with zipfile.ZipFile(zpath, "w", zipfile.ZIP_DEFLATED) as z:
        info = zipfile.ZipInfo.from_file(path, "bootstrap")
        info.external_attr = (stat.S_IFREG | 0o755) << 16
        info.create_system = 3  # unix: the mode above is what Lambda applies
        with open(path, "rb") as f:
            z.writestr(info, f.read(), zipfile.ZIP_DEFLATED)
    return zpath


def write_json(dest, name, doc):
    path = os.path.join(dest, name)
    with open(path, "w") as f:
        json.dump(doc, f)
    return path


def b64(data):
    return base64.b64encode(data).decode()


def cli_blob_args():
    """Blob members given as raw text in --cli-input files: AWS CLI v1 base64-encodes them
    itself; v2 does so only with --cli-binary-format raw-in-base64-out."""
    p = subprocess.run(["aws", "--version"], capture_output=True, text=True)
    return [] if "aws-cli/1." in p.stdout + p.stderr else ["--cli-binary-format",
                                                           "raw-in-base64-out"]


def lambda_processor(arn):
    return {"Type": "Lambda", "Parameters": [
        {"ParameterName": "LambdaArn", "ParameterValue": arn},
        {"ParameterName": "NumberOfRetries", "ParameterValue": "3"},
        {"ParameterName": "BufferSizeInMBs", "ParameterValue": "1"},
        {"ParameterName": "BufferIntervalInSeconds", "ParameterValue": "60"}]}


def by_livestream(name, stream_arn, bucket, lambda_arn, hints=(128, 300)):
    """The article's delivery stream partitioned by LivestreamID (keys from the Lambda)."""
    return {
        "DeliveryStreamName": name,
        "DeliveryStreamType": "KinesisStreamAsSource",
        "KinesisStreamSourceConfiguration": {"KinesisStreamARN": stream_arn, "RoleARN": ROLE},
        "ExtendedS3DestinationConfiguration": {
            "RoleARN": ROLE,
            "BucketARN": f"arn:aws:s3:::{bucket}",
            "Prefix": "Livestreams/LivestreamID=!{partitionKeyFromLambda:LivestreamID}/",
            "ErrorOutputPrefix": "errors/!{firehose:error-output-type}/",
            "BufferingHints": {"SizeInMBs": hints[0], "IntervalInSeconds": hints[1]},
            "CompressionFormat": "UNCOMPRESSED",
            "ProcessingConfiguration": {"Enabled": True,
                                        "Processors": [lambda_processor(lambda_arn)]},
            "DynamicPartitioningConfiguration": {"Enabled": True,
                                                 "RetryOptions": {"DurationInSeconds": 300}},
        },
    }


def by_time(name, stream_arn, bucket, lambda_arn, hints=(128, 300)):
    """The article's delivery stream partitioned by time (no dynamic partitioning)."""
    return {
        "DeliveryStreamName": name,
        "DeliveryStreamType": "KinesisStreamAsSource",
        "KinesisStreamSourceConfiguration": {"KinesisStreamARN": stream_arn, "RoleARN": ROLE},
        "ExtendedS3DestinationConfiguration": {
            "RoleARN": ROLE,
            "BucketARN": f"arn:aws:s3:::{bucket}",
            "Prefix": "Livestreams/!{timestamp:yyyy/MM/dd/HH/mm/ss/}",
            "ErrorOutputPrefix": "errors/!{firehose:error-output-type}/",
            "BufferingHints": {"SizeInMBs": hints[0], "IntervalInSeconds": hints[1]},
            "ProcessingConfiguration": {"Enabled": True,
                                        "Processors": [lambda_processor(lambda_arn)]},
        },
    }


def chat_item(live, uid, i):
    # Text that tests the flattening: non-ASCII, quotes, a backslash; UIDs past 2^53.
    return {"LivestreamID": {"S": live}, "UID": {"N": str(uid)},
            "UserID": {"S": f"user-{i}"}, "Message": {"S": f"\uc548\ub155 \"hi\" \\ #{i}"},
            "CreatedAt": {"S": "2026-11-26T06:00:00Z"}}


def flat(item):
    """What the article's Lambda makes of an item: the team's flat JSON."""
    return {k: int(v["N"]) if "N" in v else v["S"] for k, v in item.items()}


def drain(endpoint):
    req = urllib.request.Request(endpoint + "/changepipe/v1/drain", data=b"", method="POST")
    with urllib.request.urlopen(req, timeout=330) as r:
        body = json.loads(r.read())
    if body != {"drained": True}:
        raise AssertionError(f"drain failed: {body}")


def delivery_stats(endpoint):
    with urllib.request.urlopen(endpoint + "/status.json", timeout=10) as r:
        doc = json.loads(r.read())
    return {d["name"]: d for d in doc.get("delivery", [])}


def stamp_of(m, first):
    return datetime.datetime(*(int(x) for x in m.groups()[first:first + 6]),
                             tzinfo=datetime.timezone.utc)


class Bucket:
    """Every object of a bucket, fetched through the CLI: keys with list-objects-v2, bodies
    with one recursive `aws s3 cp`."""

    def __init__(self, aws, name, dest):
        self.name = name
        listing = aws.ok("s3api", "list-objects-v2", "--bucket", name)
        self.keys = sorted(o["Key"] for o in listing.get("Contents", []))
        self.sizes = {o["Key"]: o["Size"] for o in listing.get("Contents", [])}
        self.dir = os.path.join(dest, name)
        if self.keys:
            aws.ok("s3", "cp", f"s3://{name}/", self.dir, "--recursive", "--only-show-errors")

    def body(self, key):
        with open(os.path.join(self.dir, key), "rb") as f:
            return f.read()

    def under(self, prefix):
        return [k for k in self.keys if k.startswith(prefix)]


def sign_and_post(endpoint, target, service, body, region="us-east-1"):
    """One AWS JSON request with a real SigV4 signature (fast bulk writes for the crash test)."""
    data = json.dumps(body).encode()
    amz = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    host = endpoint.split("//", 1)[1]
    version = "1.0" if service == "dynamodb" else "1.1"
    headers = {"content-type": f"application/x-amz-json-{version}", "host": host,
               "x-amz-date": amz, "x-amz-target": target}
    names = sorted(headers)
    canonical = "\n".join(["POST", "/", "", *[f"{h}:{headers[h]}" for h in names], "",
                           ";".join(names), hashlib.sha256(data).hexdigest()])
    scope = f"{amz[:8]}/{region}/{service}/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz, scope,
                         hashlib.sha256(canonical.encode()).hexdigest()])
    key = ("AWS4" + "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY").encode()
    for part in (amz[:8], region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    sig = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    headers["authorization"] = (f"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/{scope}, "
                                f"SignedHeaders={';'.join(names)}, Signature={sig}")
    req = urllib.request.Request(endpoint + "/", data=data, headers=headers, method="POST")
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.loads(r.read())


class PipelineMixin:
    """Creates the article's table, stream, buckets and function through the CLI."""

    def create_pipeline(self, aws, tmp, table, stream, buckets):
        for b in buckets:
            # The article's bucket command.
            aws.ok("s3api", "create-bucket", "--bucket", b, "--region", "ap-northeast-2",
                   "--create-bucket-configuration", "LocationConstraint=ap-northeast-2")
        aws.ok("kinesis", "create-stream", "--stream-name", stream,
               "--stream-mode-details", "StreamMode=ON_DEMAND")
        summary = aws.ok("kinesis", "describe-stream-summary", "--stream-name", stream)
        summary = summary["StreamDescriptionSummary"]
        self.assertEqual(summary["StreamStatus"], "ACTIVE")
        aws.ok("dynamodb", "create-table", "--table-name", table,
               "--attribute-definitions", "AttributeName=LivestreamID,AttributeType=S",
               "AttributeName=UID,AttributeType=N",
               "--key-schema", "AttributeName=LivestreamID,KeyType=HASH",
               "AttributeName=UID,KeyType=RANGE", "--billing-mode", "PAY_PER_REQUEST")
        aws.ok("dynamodb", "enable-kinesis-streaming-destination", "--table-name", table,
               "--stream-arn", summary["StreamARN"])
        # The article's Lambda command, with the example's deploy.json.
        fn = aws.ok("lambda", "create-function", "--zip-file",
                    "fileb://" + example_lambda_zip(tmp), "--cli-input-json",
                    "file://" + DEPLOY_JSON)
        self.assertEqual(fn["FunctionName"], "changepipe-flatten-chat")
        self.assertEqual(fn["Runtime"], "provided.al2023")
        return summary["StreamARN"], fn["FunctionArn"]

    def create_delivery_stream(self, aws, tmp, config):
        path = write_json(tmp, config["DeliveryStreamName"] + ".json", config)
        out = aws.ok("firehose", "create-delivery-stream", "--cli-input-json", "file://" + path)
        self.assertEqual(out["DeliveryStreamARN"],
                         f"arn:aws:firehose:us-east-1:{ACCOUNT}:deliverystream/"
                         + config["DeliveryStreamName"])
        return out["DeliveryStreamARN"]

    def check_article_layouts(self, aws, tmp, items, live_bucket, time_bucket, window,
                              live_stream="chat-by-livestream", time_stream="chat-by-time"):
        """Every item exactly once in both layouts, keys and lines as Firehose writes them."""
        expected = collections.Counter((it["LivestreamID"]["S"], int(it["UID"]["N"]))
                                       for it in items)
        by_uid = {int(it["UID"]["N"]): flat(it) for it in items}
        lo, hi = window
        for bucket, layout in ((live_bucket, "live"), (time_bucket, "time")):
            b = Bucket(aws, bucket, tmp)
            self.assertEqual(b.under("errors/"), [], f"error output in {bucket}")
            seen = collections.Counter()
            self.assertTrue(b.keys, f"nothing delivered to {bucket}")
            for key in b.keys:
                if layout == "live":
                    m = re.fullmatch(r"Livestreams/LivestreamID=([^/]+)/"
                                     + re.escape(live_stream) + "-1-" + STAMP + "-" + UUID, key)
                    self.assertIsNotNone(m, key)
                    suffix = stamp_of(m, 1)
                else:
                    m = re.fullmatch(r"Livestreams/(\d{4})/(\d\d)/(\d\d)/(\d\d)/(\d\d)/(\d\d)/"
                                     + re.escape(time_stream) + "-1-" + STAMP + "-" + UUID, key)
                    self.assertIsNotNone(m, key)
                    suffix = stamp_of(m, 6)
                    # The prefix's timestamp and the key's are the same instant (the oldest
                    # record's arrival).
                    self.assertEqual(stamp_of(m, 0), suffix, key)
                self.assertTrue(lo <= suffix <= hi, f"{key}: {suffix} not in {lo}..{hi}")
                body = b.body(key)
                self.assertEqual(len(body), b.sizes[key])
                self.assertTrue(body.endswith(b"\n"), key)
                for line in body.split(b"\n")[:-1]:
                    doc = json.loads(line)
                    self.assertIsInstance(doc, dict)
                    if layout == "live":
                        self.assertEqual(doc["LivestreamID"], m.group(1), key)
                    self.assertEqual(doc, by_uid[doc["UID"]])
                    # Numbers keep their exact text (UIDs are past 2^53).
                    self.assertIn(b'"UID":%d' % doc["UID"], line)
                    seen[(doc["LivestreamID"], doc["UID"])] += 1
            missing = sorted(expected - seen)
            duplicated = sorted(k for k, n in seen.items() if n > 1)
            unknown = sorted(set(seen) - set(expected))
            self.assertEqual((len(missing), len(duplicated), len(unknown)), (0, 0, 0),
                             f"{bucket}: missing {missing[:5]}, duplicated {duplicated[:5]}, "
                             f"unknown {unknown[:5]}")
            self.assertEqual(seen, expected)


class FirehoseTest(PipelineMixin, ServerTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.tmp = tempfile.mkdtemp(prefix="cp-fh-")
        cls.blob_args = cli_blob_args()

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)
        super().tearDownClass()

    def fh(self, *args, **kw):
        return self.aws.ok("firehose", *args, **kw)

    def fh_fails(self, *args, code):
        return self.aws.fails("firehose", *args, code=code)

    def put_batch(self, name, records):
        path = write_json(self.tmp, f"batch-{name}.json",
                          [{"Data": r.decode()} for r in records])
        out = self.fh("put-record-batch", "--delivery-stream-name", name, "--records",
                      "file://" + path, *self.blob_args)
        self.assertEqual(out["FailedPutCount"], 0)
        self.assertEqual(len(out["RequestResponses"]), len(records))
        self.assertEqual(len({r["RecordId"] for r in out["RequestResponses"]}), len(records))
        return out

    # -- the article, end to end ----------------------------------------------------------------

    def test_1_article_two_delivery_streams_with_a_custom_runtime_lambda(self):
        aws = self.aws
        stream_arn, fn_arn = self.create_pipeline(
            aws, self.tmp, "ChatMessages", "chat-cdc", ["chat-archive", "chat-archive-by-time"])
        self.assertEqual(fn_arn, f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:"
                                 "changepipe-flatten-chat")
        self.create_delivery_stream(aws, self.tmp, by_livestream(
            "chat-by-livestream", stream_arn, "chat-archive", fn_arn))
        self.create_delivery_stream(aws, self.tmp, by_time(
            "chat-by-time", stream_arn, "chat-archive-by-time", fn_arn))

        # The article's check: one BatchWriteItem of 25 items, here over 5 livestreams.
        base = 1767225600123000000
        items = [chat_item(f"live-{i % 5}", base + i, i) for i in range(25)]
        path = write_json(self.tmp, "items.json",
                          {"ChatMessages": [{"PutRequest": {"Item": it}} for it in items]})
        t0 = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
        out = aws.ok("dynamodb", "batch-write-item", "--request-items", "file://" + path)
        self.assertEqual(out.get("UnprocessedItems"), {})
        drain(self.server.endpoint)
        t1 = datetime.datetime.now(datetime.timezone.utc)
        self.check_article_layouts(aws, self.tmp, items, "chat-archive", "chat-archive-by-time",
                                   (t0 - datetime.timedelta(seconds=2), t1))
        # Five partitions: one object per livestream after one drain.
        live = Bucket(aws, "chat-archive", self.tmp)
        self.assertEqual(sorted({k.split("/")[1] for k in live.keys}),
                         [f"LivestreamID=live-{i}" for i in range(5)])

        # The transform really ran as a Lambda: the runtime API served it.
        with urllib.request.urlopen(self.server.endpoint + "/status.json", timeout=10) as r:
            status = json.loads(r.read())
        ops = {o["op"]: o["count"] for o in status["ops"]}
        self.assertGreater(ops.get("lambda.runtime", 0), 0, ops)
        stats = delivery_stats(self.server.endpoint)
        for name in ("chat-by-livestream", "chat-by-time"):
            st = stats[name]
            self.assertEqual((st["read"], st["delivered"], st["errored"], st["dropped"],
                              st["buffered"]), (25, 25, 0, 0, 0), name)

        # A second write (MODIFY through UpdateItem is a new change record) lands in new
        # objects, never rewriting the first ones.
        first = set(live.keys)
        aws.ok("dynamodb", "update-item", "--table-name", "ChatMessages", "--key",
               json.dumps({"LivestreamID": {"S": "live-0"}, "UID": {"N": str(base)}}),
               "--update-expression", "SET Message = :m",
               "--expression-attribute-values", '{":m":{"S":"edited"}}')
        drain(self.server.endpoint)
        after = Bucket(aws, "chat-archive", os.path.join(self.tmp, "after"))
        new = [k for k in after.keys if k not in first]
        self.assertEqual(len(new), 1, after.keys)
        self.assertTrue(new[0].startswith("Livestreams/LivestreamID=live-0/"))
        self.assertEqual(json.loads(after.body(new[0])),
                         dict(flat(items[0]), Message="edited"))
        for k in first:
            self.assertEqual(after.body(k), live.body(k))

    # -- control plane --------------------------------------------------------------------------

    def test_2_describe_list_delete_and_validation(self):
        aws = self.aws
        aws.ok("kinesis", "create-stream", "--stream-name", "ctl-cdc", "--shard-count", "1")
        arn = aws.ok("kinesis", "describe-stream-summary", "--stream-name",
                     "ctl-cdc")["StreamDescriptionSummary"]["StreamARN"]
        aws.ok("s3api", "create-bucket", "--bucket", "ctl-bucket")
        fn = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:changepipe-flatten-chat"
        cfg = by_livestream("ctl-by-livestream", arn, "ctl-bucket", fn, hints=(64, 60))
        self.create_delivery_stream(aws, self.tmp, cfg)
        self.create_delivery_stream(aws, self.tmp, {
            "DeliveryStreamName": "ctl-direct", "DeliveryStreamType": "DirectPut",
            "ExtendedS3DestinationConfiguration": {"RoleARN": ROLE,
                                                   "BucketARN": "arn:aws:s3:::ctl-bucket"}})

        d = self.fh("describe-delivery-stream", "--delivery-stream-name",
                    "ctl-by-livestream")["DeliveryStreamDescription"]
        self.assertEqual(d["DeliveryStreamStatus"], "ACTIVE")
        self.assertEqual(d["DeliveryStreamType"], "KinesisStreamAsSource")
        self.assertEqual(d["VersionId"], "1")
        self.assertEqual(d["Source"]["KinesisStreamSourceDescription"]["KinesisStreamARN"], arn)
        self.assertFalse(d["HasMoreDestinations"])
        dest = d["Destinations"][0]
        self.assertEqual(dest["DestinationId"], "destinationId-000000000001")
        ext = dest["ExtendedS3DestinationDescription"]
        want = cfg["ExtendedS3DestinationConfiguration"]
        for member in ("BucketARN", "Prefix", "ErrorOutputPrefix", "BufferingHints",
                       "DynamicPartitioningConfiguration"):
            self.assertEqual(ext[member], want[member], member)
        procs = ext["ProcessingConfiguration"]["Processors"]
        self.assertEqual([p["Type"] for p in procs], ["Lambda"])
        params = {p["ParameterName"]: p["ParameterValue"] for p in procs[0]["Parameters"]}
        self.assertEqual(params["LambdaArn"], fn)
        self.assertIn("S3DestinationDescription", dest)
        direct = self.fh("describe-delivery-stream", "--delivery-stream-name",
                         "ctl-direct")["DeliveryStreamDescription"]
        self.assertEqual(direct["DeliveryStreamType"], "DirectPut")
        ext = direct["Destinations"][0]["ExtendedS3DestinationDescription"]
        self.assertEqual(ext["CompressionFormat"], "UNCOMPRESSED")
        self.assertEqual(ext["BufferingHints"], {"SizeInMBs": 5, "IntervalInSeconds": 300})

        names = self.fh("list-delivery-streams", "--limit", "100")
        self.assertEqual(names["DeliveryStreamNames"], sorted(names["DeliveryStreamNames"]))
        self.assertIn("ctl-by-livestream", names["DeliveryStreamNames"])
        self.assertFalse(names["HasMoreDeliveryStreams"])
        typed = self.fh("list-delivery-streams", "--delivery-stream-type", "DirectPut",
                        "--limit", "100")["DeliveryStreamNames"]
        self.assertIn("ctl-direct", typed)
        self.assertNotIn("ctl-by-livestream", typed)
        one = self.fh("list-delivery-streams", "--limit", "1")
        self.assertEqual(len(one["DeliveryStreamNames"]), 1)
        self.assertTrue(one["HasMoreDeliveryStreams"])

        # Create-time validation, with AWS's error types.
        bad = by_livestream("ctl-bad", arn, "ctl-bucket", fn)
        del bad["ExtendedS3DestinationConfiguration"]["ErrorOutputPrefix"]
        err = self.fh_fails("create-delivery-stream", "--cli-input-json",
                            "file://" + write_json(self.tmp, "bad1.json", bad),
                            code="InvalidArgumentException")
        self.assertIn("ErrorOutputPrefix cannot be null or empty", err)
        nodp = by_livestream("ctl-bad", arn, "ctl-bucket", fn)
        del nodp["ExtendedS3DestinationConfiguration"]["DynamicPartitioningConfiguration"]
        err = self.fh_fails("create-delivery-stream", "--cli-input-json",
                            "file://" + write_json(self.tmp, "bad2.json", nodp),
                            code="InvalidArgumentException")
        self.assertIn("Dynamic Partitioning Namespaces can only be part of a prefix expression "
                      "when Dynamic Partitioning is enabled.", err)
        badname = by_time("bad name!", arn, "ctl-bucket", fn)
        err = self.fh_fails("create-delivery-stream", "--cli-input-json",
                            "file://" + write_json(self.tmp, "bad3.json", badname),
                            code="ValidationException")
        self.assertIn("deliveryStreamName", err)
        nosrc = by_time("ctl-bad", arn.replace("ctl-cdc", "no-such-stream"), "ctl-bucket", fn)
        self.fh_fails("create-delivery-stream", "--cli-input-json",
                      "file://" + write_json(self.tmp, "bad4.json", nosrc),
                      code="InvalidArgumentException")
        self.fh_fails("create-delivery-stream", "--cli-input-json",
                      "file://" + write_json(self.tmp, "dup.json", cfg),
                      code="ResourceInUseException")
        self.fh_fails("describe-delivery-stream", "--delivery-stream-name", "ctl-bad",
                      code="ResourceNotFoundException")

        # Put calls are for DirectPut streams only: AWS's message.
        rec = write_json(self.tmp, "rec.json", {"Data": '{"x":1}\n'})
        err = self.fh_fails("put-record", "--delivery-stream-name", "ctl-by-livestream",
                            "--record", "file://" + rec, *self.blob_args,
                            code="InvalidArgumentException")
        self.assertIn("This operation is not permitted on KinesisStreamAsSource delivery stream "
                      "type.", err)
        err = self.fh_fails("put-record", "--delivery-stream-name", "ctl-nope",
                            "--record", "file://" + rec, *self.blob_args,
                            code="ResourceNotFoundException")
        self.assertIn(f"Firehose ctl-nope under account {ACCOUNT} not found.", err)

        # Delete: gone from describe and list; the name can be used again.
        self.assertEqual(self.fh("delete-delivery-stream", "--delivery-stream-name",
                                 "ctl-by-livestream"), {})
        self.fh_fails("describe-delivery-stream", "--delivery-stream-name",
                      "ctl-by-livestream", code="ResourceNotFoundException")
        self.assertNotIn("ctl-by-livestream", self.fh("list-delivery-streams", "--limit",
                                                      "100")["DeliveryStreamNames"])
        self.fh_fails("delete-delivery-stream", "--delivery-stream-name", "ctl-by-livestream",
                      code="ResourceNotFoundException")
        self.create_delivery_stream(aws, self.tmp, cfg)
        self.fh("delete-delivery-stream", "--delivery-stream-name", "ctl-by-livestream")
        self.fh("delete-delivery-stream", "--delivery-stream-name", "ctl-direct")

    # -- DirectPut --------------------------------------------------------------------------------

    def test_3_direct_put_records_are_delivered_after_drain(self):
        aws = self.aws
        aws.ok("s3api", "create-bucket", "--bucket", "direct-bucket")
        self.create_delivery_stream(aws, self.tmp, {
            "DeliveryStreamName": "direct-put",
            "DeliveryStreamType": "DirectPut",
            "ExtendedS3DestinationConfiguration": {
                "RoleARN": ROLE, "BucketARN": "arn:aws:s3:::direct-bucket",
                "Prefix": "direct/", "CompressionFormat": "GZIP",
                "BufferingHints": {"SizeInMBs": 128, "IntervalInSeconds": 900}}})
        t0 = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
        one = write_json(self.tmp, "one.json", {"Data": '{"n":0}\n'})
        out = self.fh("put-record", "--delivery-stream-name", "direct-put",
                      "--record", "file://" + one, *self.blob_args)
        self.assertTrue(out["RecordId"])
        records = [b'{"n":%d,"text":"\xc3\xa9 %d"}\n' % (i, i) for i in range(1, 41)]
        self.put_batch("direct-put", records)
        # Nothing is written before the buffers are flushed (900 s interval, 128 MiB).
        self.assertEqual(Bucket(aws, "direct-bucket", self.tmp).keys, [])
        drain(self.server.endpoint)
        t1 = datetime.datetime.now(datetime.timezone.utc)
        b = Bucket(aws, "direct-bucket", self.tmp)
        self.assertEqual(len(b.keys), 1, b.keys)
        key = b.keys[0]
        # A static prefix gets the default yyyy/MM/dd/HH/ appended, with no '/' added.
        m = re.fullmatch(r"direct/(\d{4})/(\d\d)/(\d\d)/(\d\d)/direct-put-1-" + STAMP + "-"
                         + UUID + r"\.gz", key)
        self.assertIsNotNone(m, key)
        self.assertTrue(t0 - datetime.timedelta(seconds=2) <= stamp_of(m, 4) <= t1)
        head = aws.ok("s3api", "head-object", "--bucket", "direct-bucket", "--key", key)
        self.assertEqual(head.get("ContentEncoding"), "gzip")
        body = gzip.decompress(b.body(key))
        lines = body.split(b"\n")
        self.assertEqual(lines[-1], b"")
        self.assertEqual(collections.Counter(lines[:-1]),
                         collections.Counter([b'{"n":0}'] + [r[:-1] for r in records]))
        stats = delivery_stats(self.server.endpoint)["direct-put"]
        self.assertEqual((stats["read"], stats["delivered"], stats["buffered"]), (41, 41, 0))

        # A second drain with nothing new writes nothing.
        drain(self.server.endpoint)
        self.assertEqual(Bucket(aws, "direct-bucket", os.path.join(self.tmp, "again")).keys,
                         b.keys)

    # -- error output -----------------------------------------------------------------------------

    def test_4_error_output_from_a_lambda_and_from_jq_keys(self):
        aws = self.aws
        aws.ok("s3api", "create-bucket", "--bucket", "errors-bucket")
        boot = os.path.join(self.tmp, "fail-some", "bootstrap")
        os.makedirs(os.path.dirname(boot))
        with open(boot, "w") as f:
            f.write(FAIL_SOME_BOOTSTRAP)
        fn = aws.ok("lambda", "create-function", "--function-name", "fail-some",
                    "--runtime", "provided.al2023", "--handler", "bootstrap",
                    "--role", f"arn:aws:iam::{ACCOUNT}:role/lambda", "--timeout", "60",
                    "--zip-file", "fileb://" + zip_bootstrap(os.path.dirname(boot), boot))
        fn_arn = fn["FunctionArn"]
        self.create_delivery_stream(aws, self.tmp, {
            "DeliveryStreamName": "fail-some",
            "DeliveryStreamType": "DirectPut",
            "ExtendedS3DestinationConfiguration": {
                "RoleARN": ROLE, "BucketARN": "arn:aws:s3:::errors-bucket",
                "Prefix": "lambda/k=!{partitionKeyFromLambda:k}/",
                "ErrorOutputPrefix": "lambda-errors/!{firehose:error-output-type}/",
                "BufferingHints": {"SizeInMBs": 64, "IntervalInSeconds": 60},
                "ProcessingConfiguration": {"Enabled": True, "Processors": [
                    {"Type": "Lambda", "Parameters": [
                        {"ParameterName": "LambdaArn", "ParameterValue": fn_arn}]}]},
                "DynamicPartitioningConfiguration": {"Enabled": True}}})
        self.create_delivery_stream(aws, self.tmp, {
            "DeliveryStreamName": "jq-keys",
            "DeliveryStreamType": "DirectPut",
            "ExtendedS3DestinationConfiguration": {
                "RoleARN": ROLE, "BucketARN": "arn:aws:s3:::errors-bucket",
                "Prefix": "jq/customer=!{partitionKeyFromQuery:customer}/",
                "ErrorOutputPrefix": "jq-errors/!{firehose:error-output-type}/",
                "BufferingHints": {"SizeInMBs": 64, "IntervalInSeconds": 60},
                "ProcessingConfiguration": {"Enabled": True, "Processors": [
                    {"Type": "MetadataExtraction", "Parameters": [
                        {"ParameterName": "MetadataExtractionQuery",
                         "ParameterValue": "{customer:.customer}"},
                        {"ParameterName": "JsonParsingEngine", "ParameterValue": "JQ-1.6"}]},
                    {"Type": "AppendDelimiterToRecord", "Parameters": []}]},
                "DynamicPartitioningConfiguration": {"Enabled": True}}})

        def rec(**doc):
            return json.dumps(doc, separators=(",", ":")).encode()

        ok = [rec(k="a", n=1), rec(k="b", n=2), rec(k="a", n=3)]
        failed = [rec(action="fail", n=4), b"not json at all"]
        no_key = [rec(n=5)]
        dropped = [rec(action="drop", n=6)]
        t0 = int(time.time() * 1000) - 1000
        self.put_batch("fail-some", ok + failed + no_key + dropped)
        jq_ok = [rec(customer="c1", n=1), rec(customer="c2", n=2)]
        jq_bad = [rec(n=3), rec(customer="", n=4), b"{broken"]
        self.put_batch("jq-keys", jq_ok + jq_bad)
        drain(self.server.endpoint)
        t1 = int(time.time() * 1000) + 1000

        b = Bucket(aws, "errors-bucket", self.tmp)
        for key in b.keys:
            self.assertRegex(key, r"/(fail-some|jq-keys)-1-" + STAMP + "-" + UUID + "$")

        def lines(prefix):
            out = []
            for key in b.under(prefix):
                body = b.body(key)
                self.assertTrue(body.endswith(b"\n"), key)
                out += body.split(b"\n")[:-1]
            return out

        # Delivered records: the Lambda's output under the Lambda's keys.
        self.assertEqual(sorted(k.split("/")[1] for k in b.under("lambda/")), ["k=a", "k=b"])
        got = sorted(json.loads(x)["n"] for x in lines("lambda/"))
        self.assertEqual(got, [1, 2, 3])
        for x in lines("lambda/k=a/"):
            self.assertEqual(json.loads(x)["k"], "a")
            self.assertTrue(json.loads(x)["seen"])

        def docs(prefix):
            out = [json.loads(x) for x in lines(prefix)]
            for d in out:
                self.assertTrue(t0 <= d["arrivalTimestamp"] <= d["attemptEndingTimestamp"] <= t1,
                                d)
                self.assertEqual(d["attemptsMade"], 1, d)
                self.assertIsInstance(d["errorMessage"], str)
            return {base64.b64decode(d["rawData"]): d for d in out}

        # ProcessingFailed: the original bytes, Lambda's code and message, the function ARN.
        pf = docs("lambda-errors/processing-failed/")
        self.assertEqual(sorted(pf), sorted(failed))
        for d in pf.values():
            self.assertEqual(d["errorCode"], "Lambda.ProcessingFailedStatus")
            self.assertEqual(d["errorMessage"], "ProcessingFailed status set for record")
            self.assertEqual(d["lambdaARN"], fn_arn)
        # No partition key from the Lambda: partitioning-failed, the original bytes.
        part = docs("lambda-errors/partitioning-failed/")
        self.assertEqual(sorted(part), no_key)
        for d in part.values():
            self.assertEqual(d["errorCode"], "DynamicPartitioning.MetadataExtractionFailed")
            self.assertNotIn("lambdaARN", d)
        # Dropped: nowhere, and the counts reconcile.
        everything = b"".join(b.body(k) for k in b.keys)
        self.assertNotIn(b'"n":6', everything)
        self.assertNotIn(b64(dropped[0]).encode(), everything)
        stats = delivery_stats(self.server.endpoint)
        st = stats["fail-some"]
        self.assertEqual((st["read"], st["delivered"], st["errored"], st["dropped"]),
                         (7, 3, 3, 1))

        # jq keys: the same error types without a Lambda.
        self.assertEqual(sorted(b.under("jq/")),
                         sorted(b.under("jq/customer=c1/") + b.under("jq/customer=c2/")))
        self.assertEqual(sorted(json.loads(x)["n"] for x in lines("jq/")), [1, 2])
        jq = docs("jq-errors/partitioning-failed/")
        self.assertEqual(sorted(jq), sorted(jq_bad))
        for raw, d in jq.items():
            self.assertEqual(d["errorCode"], "DynamicPartitioning.MetadataExtractionFailed")
            self.assertNotIn("lambdaARN", d)
        self.assertIn("partitionKeys values must not be null or empty",
                      jq[jq_bad[0]]["errorMessage"])
        self.assertEqual(b.under("jq-errors/processing-failed/"), [])
        st = stats["jq-keys"]
        self.assertEqual((st["read"], st["delivered"], st["errored"], st["dropped"]),
                         (5, 2, 3, 0))


class CrashTest(PipelineMixin, unittest.TestCase):
    """SIGKILL the server again and again while it delivers; after the last restart and a
    drain, every item is in both buckets exactly once."""

    KILLS = 16
    BATCHES_PER_ROUND = 4  # x 25 items

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="cp-fh-crash-")
        self.server = Server().start()
        self.aws = AwsCli(self.server.endpoint)

    def tearDown(self):
        code = self.server.stop()
        log = self.server.read_log()
        self.server.cleanup()
        shutil.rmtree(self.tmp, ignore_errors=True)
        if "Sanitizer" in log or "runtime error:" in log:
            raise AssertionError("sanitizer report in the server log:\n" + log[-20000:])
        if code != 0:
            raise AssertionError(f"server exited with {code}:\n{log[-20000:]}")

    def run(self, result=None):
        before = len(result.failures) + len(result.errors) if result else 0
        out = super().run(result)
        if result and len(result.failures) + len(result.errors) > before:
            print("\n--- server log ---\n" + self.server.read_log()[-20000:])
        return out

    def write(self, items):
        for i in range(0, len(items), 25):
            req = {"RequestItems": {"ChatMessages": [{"PutRequest": {"Item": it}}
                                                     for it in items[i:i + 25]]}}
            out = sign_and_post(self.server.endpoint, "DynamoDB_20120810.BatchWriteItem",
                                "dynamodb", req)
            self.assertEqual(out.get("UnprocessedItems"), {})

    def test_sigkill_during_delivery_loses_and_duplicates_nothing(self):
        aws = self.aws
        stream_arn, fn_arn = self.create_pipeline(aws, self.tmp, "ChatMessages", "chat-cdc",
                                                  ["crash-live", "crash-time"])
        # By livestream: zero buffering (changepipe accepts the full ranges by default, also
        # with dynamic partitioning), so objects are written all the time and kills land in
        # flushes. By time: 1 s, so committed but unflushed buffers live across restarts.
        self.create_delivery_stream(aws, self.tmp, by_livestream(
            "chat-by-livestream", stream_arn, "crash-live", fn_arn, hints=(1, 0)))
        self.create_delivery_stream(aws, self.tmp, by_time(
            "chat-by-time", stream_arn, "crash-time", fn_arn, hints=(1, 1)))
        t0 = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
        items = []
        uid = 1767225600000000000
        per_round = self.BATCHES_PER_ROUND * 25
        interrupted = 0
        for round_ in range(self.KILLS):
            batch = [chat_item(f"live-{n % 7}", uid + n, n) for n in range(per_round)]
            uid += per_round
            items += batch
            before = delivery_stats(self.server.endpoint)
            read0 = before["chat-by-livestream"]["read"] if before else 0
            objects0 = sum(d["objects"] for d in before.values())
            self.write(batch)
            # Kill at a different point of delivery each round: right away, once some of this
            # round's records were read, once objects were written.
            if round_ % 3 == 1:
                wait_for(lambda: delivery_stats(self.server.endpoint)["chat-by-livestream"][
                    "read"] > read0, timeout=120, what="delivery reading")
            elif round_ % 3 == 2:
                wait_for(lambda: sum(d["objects"] for d in delivery_stats(
                    self.server.endpoint).values()) > objects0, timeout=120,
                    what="objects written")
            at_kill = delivery_stats(self.server.endpoint)
            interrupted += any(d["read"] < len(items) or d["buffered"] for d in at_kill.values())
            self.server.kill()
            self.server.start()
            aws.endpoint = self.server.endpoint
        # Otherwise this test would not test recovery at all.
        self.assertGreater(interrupted, 0, "no kill happened while records were in flight")
        drain(self.server.endpoint)
        t1 = datetime.datetime.now(datetime.timezone.utc)
        self.check_article_layouts(aws, self.tmp, items, "crash-live", "crash-time",
                                   (t0 - datetime.timedelta(seconds=2), t1))
        stats = delivery_stats(self.server.endpoint)
        for name in ("chat-by-livestream", "chat-by-time"):
            self.assertEqual(stats[name]["errored"], 0, stats[name])
            self.assertEqual(stats[name]["buffered"], 0, stats[name])


if __name__ == "__main__":
    main()
