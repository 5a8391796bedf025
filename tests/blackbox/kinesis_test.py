# SPDX-License-Identifier: MIT
"""Kinesis Data Streams black-box tests: the real `aws kinesis` CLI against `changepipe serve`.

Covers the article's create-stream command verbatim, every Kinesis operation the server
implements (with the CLI's own pagination: DescribeStream by ExclusiveStartShardId, ListShards
by StreamName + NextToken, ListStreams by NextToken), all iterator types, resharding with
ChildShards, and the documented errors; plus raw requests the CLI would never send (malformed
JSON, wrong member types) to check the server answers them and stays healthy.
"""
import base64
import json
import os
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

from harness import ServerTestCase, main


def cli_is_v1():
    p = subprocess.run(["aws", "--version"], capture_output=True, text=True)
    return "aws-cli/1." in (p.stdout + p.stderr)


class KinesisTest(ServerTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # CLI v1 base64-encodes blob arguments itself; v2 expects them already in base64.
        cls.v1 = cli_is_v1()

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="cp-kinesis-")

    def tearDown(self):
        import shutil
        shutil.rmtree(self.tmp, ignore_errors=True)

    def k(self, *args, **kw):
        return self.aws.ok("kinesis", *args, **kw)

    def kfails(self, *args, code):
        return self.aws.fails("kinesis", *args, code=code)

    def sent(self, b64text):
        """The bytes the server stores for a blob argument given as base64 text."""
        return b64text.encode() if self.v1 else base64.b64decode(b64text)

    def fileb(self, name, data):
        path = os.path.join(self.tmp, name)
        with open(path, "wb") as f:
            f.write(data)
        return "fileb://" + path

    def create(self, name, shards):
        self.assertEqual(self.k("create-stream", "--stream-name", name, "--shard-count",
                                str(shards)), {})

    def iterator(self, stream, shard, kind, *extra):
        return self.k("get-shard-iterator", "--stream-name", stream, "--shard-id", shard,
                      "--shard-iterator-type", kind, *extra)["ShardIterator"]

    def read_all(self, it):
        """Follow NextShardIterator until a page comes back empty; returns (records, last)."""
        out = []
        while True:
            page = self.k("get-records", "--shard-iterator", it)
            out += page["Records"]
            if not page["Records"] or "NextShardIterator" not in page:
                return out, page
            it = page["NextShardIterator"]

    # -- control plane -------------------------------------------------------------------------

    def test_article_create_stream_on_demand(self):
        # The article's command, verbatim apart from --endpoint-url.
        self.assertEqual(self.k("create-stream", "--stream-name", "chat-stream",
                                "--stream-mode-details", "StreamMode=ON_DEMAND"), {})
        self.aws.ok("kinesis", "wait", "stream-exists", "--stream-name", "chat-stream")
        s = self.k("describe-stream-summary", "--stream-name", "chat-stream")
        s = s["StreamDescriptionSummary"]
        self.assertEqual(s["StreamModeDetails"]["StreamMode"], "ON_DEMAND")
        self.assertEqual(s["StreamStatus"], "ACTIVE")
        self.assertEqual(s["OpenShardCount"], 4)
        self.assertEqual(s["StreamARN"],
                         "arn:aws:kinesis:us-east-1:000000000000:stream/chat-stream")
        self.assertAlmostEqual(s["StreamCreationTimestamp"], time.time(), delta=120)
        self.kfails("update-shard-count", "--stream-name", "chat-stream", "--target-shard-count",
                    "8", "--scaling-type", "UNIFORM_SCALING", code="ValidationException")
        self.kfails("create-stream", "--stream-name", "chat-stream", "--shard-count", "1",
                    code="ResourceInUseException")

    def test_describe_and_list_shards_paginate(self):
        self.create("paged", 5)
        d = self.k("describe-stream", "--stream-name", "paged", "--page-size", "2")
        ids = [s["ShardId"] for s in d["StreamDescription"]["Shards"]]
        self.assertEqual(ids, ["shardId-%012d" % i for i in range(5)])
        self.assertEqual(d["StreamDescription"]["Shards"][4]["HashKeyRange"]["EndingHashKey"],
                         str(2 ** 128 - 1))
        # The CLI resends StreamName with NextToken while paging ListShards.
        shards = self.k("list-shards", "--stream-name", "paged", "--page-size", "2")["Shards"]
        self.assertEqual([s["ShardId"] for s in shards], ids)
        page = self.k("list-shards", "--stream-name", "paged", "--max-results", "2")
        self.assertEqual(len(page["Shards"]), 2)
        self.assertIn("NextToken", page)
        rest = self.k("list-shards", "--next-token", page["NextToken"])["Shards"]
        self.assertEqual([s["ShardId"] for s in rest], ids[2:])
        latest = self.k("list-shards", "--stream-name", "paged", "--shard-filter",
                        "Type=AT_LATEST")["Shards"]
        self.assertEqual(len(latest), 5)

    def test_list_streams_paginates(self):
        names = ["ls-%d" % i for i in range(4)]
        for n in names:
            self.create(n, 1)
        got = self.k("list-streams", "--page-size", "1")
        self.assertTrue(set(names) <= set(got["StreamNames"]))
        self.assertEqual(len(got["StreamNames"]), len(got["StreamSummaries"]))
        one = self.k("list-streams", "--limit", "1", "--exclusive-start-stream-name", "ls-1")
        self.assertEqual(one["StreamNames"], ["ls-2"])
        self.assertTrue(one["HasMoreStreams"])

    def test_retention_tags_and_delete(self):
        self.create("ret", 1)
        self.k("increase-stream-retention-period", "--stream-name", "ret",
               "--retention-period-hours", "48")
        s = self.k("describe-stream-summary", "--stream-name", "ret")
        self.assertEqual(s["StreamDescriptionSummary"]["RetentionPeriodHours"], 48)
        err = self.kfails("decrease-stream-retention-period", "--stream-name", "ret",
                          "--retention-period-hours", "12", code="InvalidArgumentException")
        self.assertIn("Minimum allowed retention period is 24 hours", err)
        self.k("decrease-stream-retention-period", "--stream-name", "ret",
               "--retention-period-hours", "24")
        self.k("add-tags-to-stream", "--stream-name", "ret", "--tags", "team=data,env=dev")
        self.k("remove-tags-from-stream", "--stream-name", "ret", "--tag-keys", "env")
        tags = self.k("list-tags-for-stream", "--stream-name", "ret")
        self.assertEqual(tags["Tags"], [{"Key": "team", "Value": "data"}])
        self.assertFalse(tags["HasMoreTags"])
        self.k("delete-stream", "--stream-name", "ret", "--enforce-consumer-deletion")
        err = self.kfails("describe-stream", "--stream-name", "ret",
                          code="ResourceNotFoundException")
        self.assertIn("Stream ret under account 000000000000 not found.", err)

    def test_stream_arn_instead_of_name(self):
        self.create("by-arn", 1)
        arn = "arn:aws:kinesis:us-east-1:000000000000:stream/by-arn"
        s = self.k("describe-stream-summary", "--stream-arn", arn)
        self.assertEqual(s["StreamDescriptionSummary"]["StreamName"], "by-arn")
        put = self.k("put-record", "--stream-arn", arn, "--partition-key", "k", "--data",
                     self.fileb("a", b"by arn"))
        self.assertEqual(put["ShardId"], "shardId-000000000000")
        self.kfails("describe-stream", "--stream-arn",
                    "arn:aws:kinesis:us-east-1:123456789012:stream/by-arn",
                    code="ResourceNotFoundException")

    # -- data plane ----------------------------------------------------------------------------

    def test_put_and_read_every_iterator_type(self):
        self.create("data", 1)
        sh = "shardId-000000000000"
        first = self.k("put-record", "--stream-name", "data", "--partition-key", "user-42",
                       "--data", self.fileb("first", b"\x00first\xff"))
        self.assertEqual(first["ShardId"], sh)
        self.assertEqual(first["EncryptionType"], "NONE")
        batch = self.k("put-records", "--stream-name", "data", "--records",
                       "Data=c2Vjb25k,PartitionKey=a", "Data=dGhpcmQ=,PartitionKey=b")
        self.assertEqual(batch["FailedRecordCount"], 0)
        seqs = [first["SequenceNumber"]] + [r["SequenceNumber"] for r in batch["Records"]]
        self.assertEqual(seqs, sorted(seqs))
        want = [b"\x00first\xff", self.sent("c2Vjb25k"), self.sent("dGhpcmQ=")]

        it = self.iterator("data", sh, "TRIM_HORIZON")
        page = self.k("get-records", "--shard-iterator", it)
        self.assertEqual([base64.b64decode(r["Data"]) for r in page["Records"]], want)
        self.assertEqual([r["SequenceNumber"] for r in page["Records"]], seqs)
        self.assertEqual(page["Records"][0]["PartitionKey"], "user-42")
        self.assertAlmostEqual(page["Records"][0]["ApproximateArrivalTimestamp"], time.time(),
                               delta=120)
        self.assertEqual(page["MillisBehindLatest"], 0)
        self.assertNotEqual(page["NextShardIterator"], it)

        it = self.iterator("data", sh, "AT_SEQUENCE_NUMBER", "--starting-sequence-number",
                           seqs[1])
        recs, _ = self.read_all(it)
        self.assertEqual([r["SequenceNumber"] for r in recs], seqs[1:])
        it = self.iterator("data", sh, "AFTER_SEQUENCE_NUMBER", "--starting-sequence-number",
                           seqs[1])
        recs, _ = self.read_all(it)
        self.assertEqual([r["SequenceNumber"] for r in recs], seqs[2:])
        it = self.iterator("data", sh, "AT_TIMESTAMP", "--timestamp", "%.3f" % (time.time() - 3600))
        recs, _ = self.read_all(it)
        self.assertEqual(len(recs), 3)

        latest = self.iterator("data", sh, "LATEST")
        empty = self.k("get-records", "--shard-iterator", latest)
        self.assertEqual(empty["Records"], [])
        self.k("put-record", "--stream-name", "data", "--partition-key", "k", "--data",
               self.fileb("later", b"later"))
        page = self.k("get-records", "--shard-iterator", empty["NextShardIterator"],
                      "--limit", "10")
        self.assertEqual([base64.b64decode(r["Data"]) for r in page["Records"]], [b"later"])

    def test_resharding_hands_over_to_children(self):
        self.create("grow", 1)
        self.k("put-record", "--stream-name", "grow", "--partition-key", "k", "--data",
               self.fileb("p", b"parent"))
        it = self.iterator("grow", "shardId-000000000000", "TRIM_HORIZON")
        out = self.k("update-shard-count", "--stream-name", "grow", "--target-shard-count", "2",
                     "--scaling-type", "UNIFORM_SCALING")
        self.assertEqual((out["CurrentShardCount"], out["TargetShardCount"]), (1, 2))
        recs, last = self.read_all(it)
        self.assertEqual([base64.b64decode(r["Data"]) for r in recs], [b"parent"])
        # The parent is read to its end: no next iterator, the children instead.
        while "NextShardIterator" in last:
            last = self.k("get-records", "--shard-iterator", last["NextShardIterator"])
        kids = last["ChildShards"]
        self.assertEqual([c["ShardId"] for c in kids],
                         ["shardId-000000000001", "shardId-000000000002"])
        self.assertEqual(kids[0]["ParentShards"], ["shardId-000000000000"])
        shards = self.k("describe-stream", "--stream-name", "grow")["StreamDescription"]["Shards"]
        self.assertIn("EndingSequenceNumber", shards[0]["SequenceNumberRange"])
        self.assertEqual(shards[1]["ParentShardId"], "shardId-000000000000")

    def test_documented_errors(self):
        self.create("errs", 1)
        self.kfails("describe-stream", "--stream-name", "nope", code="ResourceNotFoundException")
        err = self.kfails("create-stream", "--stream-name", "bad name!", "--shard-count", "1",
                          code="ValidationException")
        self.assertIn("Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+", err)
        err = self.kfails("get-shard-iterator", "--stream-name", "errs", "--shard-id",
                          "shardId-000000000007", "--shard-iterator-type", "LATEST",
                          code="ResourceNotFoundException")
        self.assertIn("Shard shardId-000000000007 in stream errs under account", err)
        self.kfails("get-shard-iterator", "--stream-name", "errs", "--shard-id",
                    "shardId-000000000000", "--shard-iterator-type", "AT_SEQUENCE_NUMBER",
                    code="InvalidArgumentException")
        err = self.kfails("get-records", "--shard-iterator", "AAAAAAAAAAE=",
                          code="InvalidArgumentException")
        self.assertIn("Invalid ShardIterator.", err)
        self.kfails("put-record", "--stream-name", "errs", "--partition-key", "k", "--data",
                    self.fileb("ehk", b"x"), "--explicit-hash-key", str(2 ** 128),
                    code="InvalidArgumentException")
        big = self.fileb("big", b"x" * (1024 * 1024 + 1))
        err = self.kfails("put-record", "--stream-name", "errs", "--partition-key", "k",
                          "--data", big, code="ValidationException")
        self.assertIn("Member must have length less than or equal to 1048576", err)
        records = [{"Data": "YQ==", "PartitionKey": "k"}] * 501
        path = os.path.join(self.tmp, "recs.json")
        with open(path, "w") as f:
            json.dump({"StreamName": "errs", "Records": records}, f)
        err = self.kfails("put-records", "--cli-input-json", "file://" + path,
                          code="ValidationException")
        self.assertIn("less than or equal to 500", err)

    # -- raw requests --------------------------------------------------------------------------

    def raw(self, op, body):
        date = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        auth = ("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/%s/us-east-1/kinesis/aws4_request, "
                "SignedHeaders=host;x-amz-date;x-amz-target, Signature=%s" % (date[:8], "0" * 64))
        req = urllib.request.Request(
            self.server.endpoint + "/", data=body, method="POST",
            headers={"X-Amz-Target": "Kinesis_20131202." + op, "X-Amz-Date": date,
                     "Content-Type": "application/x-amz-json-1.1", "Authorization": auth})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, json.loads(r.read() or b"{}")
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"{}")

    def test_malformed_requests_leave_the_server_healthy(self):
        self.create("raw", 1)
        for op, body in [("PutRecords", b'{"StreamName":"raw","Records":[{"Data":'),
                         ("PutRecord", b"\xff\xfe"),
                         ("CreateStream", b'{"StreamName":'),
                         ("GetRecords", b"[]")]:
            status, reply = self.raw(op, body)
            self.assertEqual((status, reply.get("__type")), (400, "SerializationException"), op)
        status, reply = self.raw("DescribeStream", b'{"StreamName":7}')
        self.assertEqual(status, 400)
        self.assertEqual(reply["message"],
                         "class java.math.BigDecimal can not be converted to an String")
        status, reply = self.raw("PutRecords", b'{"StreamName":"raw","Records":[{"Data":"YQ=",'
                                                b'"PartitionKey":"k"}]}')
        self.assertEqual((status, reply["__type"]), (400, "SerializationException"))
        status, reply = self.raw("PutRecords", b'{"StreamName":"raw","Records":[{"Data":"YQ==",'
                                                b'"PartitionKey":"k"}]}')
        self.assertEqual((status, reply["FailedRecordCount"]), (200, 0))
        self.assertEqual(self.server.get("/health")[0], 200)


if __name__ == "__main__":
    main()
