# SPDX-License-Identifier: MIT
"""Throughput emulation (`serve --emulate-limits`) against a real server.

With the option, one DynamoDB partition key takes about 1,000 WCU/s and one Kinesis shard
1 MiB/s and 1,000 records/s of writes and 5 GetRecords calls/s: `changepipe load` hammering one
livestream gets UnprocessedItems and ThrottlingException, single writes past the budget get
ThrottlingException (on demand) or ProvisionedThroughputExceededException (provisioned), and a
PutRecords past a shard's budget gets per-record ProvisionedThroughputExceededException. The
admitted amounts never exceed the budget for the time the test took. Without the option the
same traffic goes through untouched.
"""
import base64
import json
import os
import re
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

from harness import BINARY, ServerTestCase, main

PARTITION_WCU = 1000          # per partition key per second (AWS on demand)
SHARD_BYTES = 1 << 20         # per shard per second (writes)
SHARD_RECORDS = 1000
SHARD_READS = 5               # GetRecords calls per shard per second
THROTTLE_MESSAGE = "Rate exceeded for shard shardId-000000000000 in stream"


class LimitsCase(ServerTestCase):
    """Helpers shared by the two server configurations."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="cp-limits-")

    def tearDown(self):
        import shutil
        shutil.rmtree(self.tmp, ignore_errors=True)

    def create_table(self, name, provisioned=False):
        billing = (["--billing-mode", "PROVISIONED", "--provisioned-throughput",
                    "ReadCapacityUnits=5,WriteCapacityUnits=5"] if provisioned
                   else ["--billing-mode", "PAY_PER_REQUEST"])
        self.aws.ok("dynamodb", "create-table", "--table-name", name,
                    "--attribute-definitions", "AttributeName=LivestreamID,AttributeType=S",
                    "AttributeName=UID,AttributeType=N",
                    "--key-schema", "AttributeName=LivestreamID,KeyType=HASH",
                    "AttributeName=UID,KeyType=RANGE", *billing)
        self.aws.ok("dynamodb", "wait", "table-exists", "--table-name", name)

    def load(self, table):
        """`changepipe load` at 2,000 requests/s x 25 items on ONE livestream for 3 s."""
        p = subprocess.run([BINARY, "load", "--endpoint", self.server.endpoint, "--table", table,
                            "--rate", "2000", "--livestreams", "1", "--duration", "3s",
                            "--quiet"], capture_output=True, text=True, timeout=300)
        out = p.stdout
        sent = re.search(r"\((\d+) items\) in ([\d.]+) s", out)
        summary = re.search(r"errors (\d+), UnprocessedItems resent (\d+) times", out)
        self.assertTrue(sent and summary, out + p.stderr)
        return {"items": int(sent.group(1)), "seconds": float(sent.group(2)),
                "errors": int(summary.group(1)), "resent": int(summary.group(2)),
                "status": p.returncode, "output": out + p.stderr}

    def throttles(self, op):
        """changepipe_request_throttles_total for one operation, from /metrics."""
        _, body = self.server.get("/metrics")
        m = re.search(r'changepipe_request_throttles_total\{op="%s"\} (\d+)' % re.escape(op),
                      body.decode())
        return int(m.group(1)) if m else 0

    def raw(self, service, target, body):
        """One request with a well-formed signature (any is accepted without credentials)."""
        date = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        auth = ("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/%s/us-east-1/%s/aws4_request, "
                "SignedHeaders=host;x-amz-date;x-amz-target, Signature=%s"
                % (date[:8], service, "0" * 64))
        ctype = "1.0" if service == "dynamodb" else "1.1"
        req = urllib.request.Request(
            self.server.endpoint + "/", data=json.dumps(body).encode(), method="POST",
            headers={"X-Amz-Target": target, "X-Amz-Date": date, "Authorization": auth,
                     "Content-Type": "application/x-amz-json-" + ctype})
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status, json.loads(r.read() or b"{}")
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"{}")

    def put_records_file(self, stream, n, size):
        """A put-records --cli-input-json file of n records of `size` bytes (base64 text)."""
        data = base64.b64encode(b"x" * size).decode()
        path = os.path.join(self.tmp, stream + ".json")
        with open(path, "w") as f:
            json.dump({"StreamName": stream,
                       "Records": [{"Data": data, "PartitionKey": "k%03d" % i}
                                   for i in range(n)]}, f)
        return "file://" + path

    def stored_size(self, stream):
        """Bytes the server stored for the first record (CLI versions differ in how they
        treat blobs given in --cli-input-json)."""
        it = self.aws.ok("kinesis", "get-shard-iterator", "--stream-name", stream, "--shard-id",
                         "shardId-000000000000", "--shard-iterator-type",
                         "TRIM_HORIZON")["ShardIterator"]
        recs = self.aws.ok("kinesis", "get-records", "--shard-iterator", it, "--limit", "1")
        return len(base64.b64decode(recs["Records"][0]["Data"]))


class EmulatedLimitsTest(LimitsCase):
    server_args = ("--emulate-limits",)

    def test_load_on_one_livestream_is_throttled(self):
        self.create_table("ChatMessages")
        r = self.load("ChatMessages")
        # 50,000 items/s offered on one partition key: partly processed batches come back with
        # UnprocessedItems (resent by load), fully refused ones with ThrottlingException.
        throttled = self.throttles("dynamodb.BatchWriteItem")
        self.assertGreater(r["resent"], 0, r["output"])
        self.assertGreater(throttled, 0, r["output"])
        self.assertLessEqual(r["errors"], throttled, r["output"])  # every failure a throttle
        # Never more than the bucket's first second plus 1,000 WCU/s (1 WCU per chat item).
        # (load prints the seconds rounded to 0.1.)
        budget = PARTITION_WCU + PARTITION_WCU * (r["seconds"] + 0.05) * 1.02 + 25
        self.assertGreater(r["items"], 0, r["output"])
        self.assertLessEqual(r["items"], budget, r["output"])

    def hammer_put_item(self, table):
        """PutItem ~98 WCU items on one key until refused; returns (puts, seconds, error).
        Items this big exhaust the first second's 1,000 WCU in about ten puts, however slowly
        the server writes."""
        big = "y" * 100000
        t0 = time.monotonic()
        for n in range(200):
            status, body = self.raw("dynamodb", "DynamoDB_20120810.PutItem", {
                "TableName": table,
                "Item": {"LivestreamID": {"S": "hot"}, "UID": {"N": str(n)},
                         "Message": {"S": big}}})
            if status != 200:
                self.assertEqual(status, 400, body)
                return n, time.monotonic() - t0, body
        self.fail("PutItem was never throttled")

    def test_single_writes_throttled_with_the_billing_mode_error(self):
        self.create_table("OnDemand")
        self.create_table("Provisioned", provisioned=True)
        for table, error in [("OnDemand", "ThrottlingException"),
                             ("Provisioned", "ProvisionedThroughputExceededException")]:
            n, seconds, body = self.hammer_put_item(table)
            self.assertTrue(body["__type"].endswith(error), body)
            self.assertIn("message", {k.lower() for k in body})
            # Each put is at least 97 WCU (a 100,000-byte attribute).
            self.assertGreater(n, 0, table)
            self.assertLessEqual(n * 97, PARTITION_WCU * (1 + seconds * 1.02) + 100, (table, n))
        # The refusal is per partition key: another livestream still writes at once.
        status, body = self.raw("dynamodb", "DynamoDB_20120810.PutItem", {
            "TableName": "OnDemand",
            "Item": {"LivestreamID": {"S": "cold"}, "UID": {"N": "1"}}})
        self.assertEqual(status, 200, body)

    def test_put_records_past_a_shard_budget(self):
        self.aws.ok("kinesis", "create-stream", "--stream-name", "hot", "--shard-count", "1")
        self.aws.ok("kinesis", "wait", "stream-exists", "--stream-name", "hot")
        # 500 records of 4,000+ bytes in one call: about 2 MB against 1 MiB/s.
        path = self.put_records_file("hot", 500, 4000)
        t0 = time.monotonic()
        out = self.aws.ok("kinesis", "put-records", "--cli-input-json", path)
        seconds = time.monotonic() - t0
        failed = [r for r in out["Records"] if "ErrorCode" in r]
        self.assertEqual(out["FailedRecordCount"], len(failed))
        self.assertGreater(len(failed), 0)
        for r in failed:
            self.assertEqual(r["ErrorCode"], "ProvisionedThroughputExceededException", r)
            self.assertIn(THROTTLE_MESSAGE, r["ErrorMessage"])
        # The records that went in fill the bucket's first second, plus at most what refilled
        # while the call ran.
        cost = self.stored_size("hot") + len("k000")
        ok = 500 - len(failed)
        self.assertGreaterEqual(ok, SHARD_BYTES // cost, out)
        self.assertLessEqual(ok, (SHARD_BYTES * (1 + seconds * 1.02)) // cost + 1, out)

    def test_records_per_second_per_shard(self):
        self.aws.ok("kinesis", "create-stream", "--stream-name", "many", "--shard-count", "1")
        self.aws.ok("kinesis", "wait", "stream-exists", "--stream-name", "many")
        batch = {"StreamName": "many",
                 "Records": [{"Data": "eA==", "PartitionKey": "p%d" % i} for i in range(500)]}
        t0 = time.monotonic()
        acked = 0
        for _ in range(40):
            status, out = self.raw("kinesis", "Kinesis_20131202.PutRecords", batch)
            self.assertEqual(status, 200, out)
            acked += 500 - out["FailedRecordCount"]
            codes = {r.get("ErrorCode") for r in out["Records"]} - {None}
            if codes:
                self.assertEqual(codes, {"ProvisionedThroughputExceededException"})
                break
        else:
            self.fail("1,000 records/s per shard was never enforced")
        seconds = time.monotonic() - t0
        self.assertLessEqual(acked, SHARD_RECORDS * (1 + seconds * 1.02) + 10, acked)

    def test_get_records_calls_per_shard(self):
        self.aws.ok("kinesis", "create-stream", "--stream-name", "reads", "--shard-count", "1")
        self.aws.ok("kinesis", "wait", "stream-exists", "--stream-name", "reads")
        status, out = self.raw("kinesis", "Kinesis_20131202.GetShardIterator", {
            "StreamName": "reads", "ShardId": "shardId-000000000000",
            "ShardIteratorType": "TRIM_HORIZON"})
        self.assertEqual(status, 200, out)
        it = out["ShardIterator"]
        t0 = time.monotonic()
        for calls in range(100):
            status, out = self.raw("kinesis", "Kinesis_20131202.GetRecords", {"ShardIterator": it})
            if status != 200:
                break
            it = out["NextShardIterator"]
        else:
            self.fail("5 GetRecords calls/s per shard was never enforced")
        seconds = time.monotonic() - t0
        self.assertEqual(status, 400, out)
        self.assertTrue(out["__type"].endswith("ProvisionedThroughputExceededException"), out)
        self.assertIn(THROTTLE_MESSAGE, out["message"])
        self.assertGreaterEqual(calls, SHARD_READS)
        self.assertLessEqual(calls, SHARD_READS * (1 + seconds * 1.02) + 1)
        self.assertGreater(self.throttles("kinesis.GetRecords"), 0)


class NoLimitsTest(LimitsCase):
    """The default: the same traffic is never throttled."""

    def test_load_on_one_livestream_is_not_throttled(self):
        self.create_table("ChatMessages")
        r = self.load("ChatMessages")
        self.assertEqual(r["status"], 0, r["output"])
        self.assertEqual((r["errors"], r["resent"]), (0, 0), r["output"])
        self.assertEqual(self.throttles("dynamodb.BatchWriteItem"), 0)
        # More than two seconds of one partition's budget went in (the server's speed, not a
        # limit, is what bounds it here).
        self.assertGreater(r["items"], 2 * PARTITION_WCU, r["output"])

    def test_put_records_burst_goes_in(self):
        self.aws.ok("kinesis", "create-stream", "--stream-name", "hot", "--shard-count", "1")
        self.aws.ok("kinesis", "wait", "stream-exists", "--stream-name", "hot")
        out = self.aws.ok("kinesis", "put-records", "--cli-input-json",
                          self.put_records_file("hot", 500, 4000))
        self.assertEqual(out["FailedRecordCount"], 0)


if __name__ == "__main__":
    main()
