# SPDX-License-Identifier: MIT
"""DynamoDB and DynamoDB Streams black-box tests: the real `aws dynamodb` / `aws dynamodbstreams`
CLI against `changepipe serve`.

The CLI checks x-amz-crc32 on every DynamoDB reply, auto-paginates ListTables, Query and Scan
with the page tokens the server hands out, and runs the table waiters, so passing commands
exercise those paths too. Covers the control plane, item operations with conditions and
ReturnValues, batches, Query/Scan paging, transactions with cancellation reasons, consumed
capacity, Kinesis streaming destinations, the Streams API, documented errors, and raw
requests the CLI would never send.
"""
import json
import os
import shutil
import tempfile
import time
import urllib.error
import urllib.request

from harness import ServerTestCase, main


class DynamoDBTest(ServerTestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="cp-ddb-")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def d(self, *args, **kw):
        return self.aws.ok("dynamodb", *args, **kw)

    def dfails(self, *args, code):
        return self.aws.fails("dynamodb", *args, code=code)

    def file(self, name, obj):
        path = os.path.join(self.tmp, name)
        with open(path, "w") as f:
            json.dump(obj, f)
        return "file://" + path

    def create(self, name, sort=None, stream=None):
        attrs = ["AttributeName=pk,AttributeType=S"]
        keys = ["AttributeName=pk,KeyType=HASH"]
        if sort:
            attrs.append(f"AttributeName=sk,AttributeType={sort}")
            keys.append("AttributeName=sk,KeyType=RANGE")
        args = ["create-table", "--table-name", name, "--attribute-definitions", *attrs,
                "--key-schema", *keys, "--billing-mode", "PAY_PER_REQUEST"]
        if stream:
            args += ["--stream-specification", f"StreamEnabled=true,StreamViewType={stream}"]
        out = self.d(*args)
        self.d("wait", "table-exists", "--table-name", name)
        return out["TableDescription"]

    # -- control plane -------------------------------------------------------------------------

    def test_table_lifecycle(self):
        desc = self.create("Lifecycle", sort="N", stream="NEW_AND_OLD_IMAGES")
        self.assertEqual(desc["TableStatus"], "ACTIVE")
        t = self.d("describe-table", "--table-name", "Lifecycle")["Table"]
        self.assertEqual(t["TableArn"], "arn:aws:dynamodb:us-east-1:000000000000:table/Lifecycle")
        self.assertEqual(t["BillingModeSummary"]["BillingMode"], "PAY_PER_REQUEST")
        self.assertEqual(t["StreamSpecification"],
                         {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"})
        self.assertIn("/stream/", t["LatestStreamArn"])
        self.assertEqual(t["KeySchema"][1], {"AttributeName": "sk", "KeyType": "RANGE"})
        # Provisioned tables and throughput updates.
        self.d("create-table", "--table-name", "Prov", "--attribute-definitions",
               "AttributeName=pk,AttributeType=S", "--key-schema", "AttributeName=pk,KeyType=HASH",
               "--provisioned-throughput", "ReadCapacityUnits=5,WriteCapacityUnits=5")
        t = self.d("update-table", "--table-name", "Prov", "--provisioned-throughput",
                   "ReadCapacityUnits=10,WriteCapacityUnits=5")["TableDescription"]
        self.assertEqual(t["ProvisionedThroughput"]["ReadCapacityUnits"], 10)
        self.dfails("update-table", "--table-name", "Prov", "--provisioned-throughput",
                    "ReadCapacityUnits=10,WriteCapacityUnits=5", code="ValidationException")
        # ListTables auto-pagination with a small page size.
        for i in range(7):
            self.create(f"page-{i}")
        names = self.d("list-tables", "--page-size", "2")["TableNames"]
        self.assertEqual([n for n in names if n.startswith("page-")],
                         [f"page-{i}" for i in range(7)])
        self.assertEqual(names, sorted(names))
        # Streams off and on again, then delete.
        self.d("update-table", "--table-name", "Lifecycle", "--stream-specification",
               "StreamEnabled=false")
        err = self.dfails("update-table", "--table-name", "Lifecycle", "--stream-specification",
                          "StreamEnabled=false", code="ValidationException")
        self.assertIn("Table has no stream to disable", err)
        self.assertEqual(self.d("delete-table", "--table-name", "Prov")["TableDescription"]
                         ["TableStatus"], "DELETING")
        self.d("wait", "table-not-exists", "--table-name", "Prov")
        self.dfails("describe-table", "--table-name", "Prov", code="ResourceNotFoundException")
        err = self.dfails("create-table", "--table-name", "Lifecycle", "--attribute-definitions",
                          "AttributeName=pk,AttributeType=S", "--key-schema",
                          "AttributeName=pk,KeyType=HASH", "--billing-mode", "PAY_PER_REQUEST",
                          code="ResourceInUseException")
        self.assertIn("Table already exists: Lifecycle", err)
        err = self.dfails("create-table", "--table-name", "ab", "--attribute-definitions",
                          "AttributeName=pk,AttributeType=S", "--key-schema",
                          "AttributeName=pk,KeyType=HASH", "--billing-mode", "PAY_PER_REQUEST",
                          code="ValidationException")
        self.assertIn("Member must have length greater than or equal to 3", err)

    # -- items ---------------------------------------------------------------------------------

    def test_items_conditions_and_return_values(self):
        self.create("Items")
        self.assertEqual(self.d("put-item", "--table-name", "Items", "--item",
                                '{"pk":{"S":"a"},"n":{"N":"1"},"tags":{"SS":["x"]}}'), {})
        got = self.d("get-item", "--table-name", "Items", "--key", '{"pk":{"S":"a"}}',
                     "--projection-expression", "n", "--consistent-read",
                     "--return-consumed-capacity", "TOTAL")
        self.assertEqual(got["Item"], {"n": {"N": "1"}})
        self.assertEqual(got["ConsumedCapacity"], {"TableName": "Items", "CapacityUnits": 1.0})
        out = self.d("update-item", "--table-name", "Items", "--key", '{"pk":{"S":"a"}}',
                     "--update-expression", "SET n = n + :one ADD tags :t",
                     "--expression-attribute-values", '{":one":{"N":"1"},":t":{"SS":["y"]}}',
                     "--return-values", "UPDATED_NEW")
        self.assertEqual(out["Attributes"]["n"], {"N": "2"})
        self.assertEqual(sorted(out["Attributes"]["tags"]["SS"]), ["x", "y"])
        err = self.dfails("put-item", "--table-name", "Items", "--item", '{"pk":{"S":"a"}}',
                          "--condition-expression", "attribute_not_exists(pk)",
                          code="ConditionalCheckFailedException")
        self.assertIn("The conditional request failed", err)
        out = self.d("delete-item", "--table-name", "Items", "--key", '{"pk":{"S":"a"}}',
                     "--return-values", "ALL_OLD")
        self.assertEqual(out["Attributes"]["n"], {"N": "2"})
        self.assertEqual(self.d("get-item", "--table-name", "Items", "--key",
                                '{"pk":{"S":"a"}}'), {})
        self.dfails("get-item", "--table-name", "Items", "--key", '{"nope":{"S":"a"}}',
                    code="ValidationException")
        self.dfails("get-item", "--table-name", "Missing", "--key", '{"pk":{"S":"a"}}',
                    code="ResourceNotFoundException")
        err = self.dfails("put-item", "--table-name", "Items", "--item", '{"pk":{"S":"a"}}',
                          "--return-values", "ALL_NEW", code="ValidationException")
        self.assertIn("ReturnValues can only be ALL_OLD or NONE", err)

    def test_batches_query_and_scan_paging(self):
        self.create("Paged", sort="N")
        for start in (0, 25):
            reqs = [{"PutRequest": {"Item": {"pk": {"S": "p"}, "sk": {"N": str(i)},
                                             "odd": {"BOOL": i % 2 == 1}}}}
                    for i in range(start, start + 25)]
            out = self.d("batch-write-item", "--request-items", self.file("b.json", {"Paged": reqs}))
            self.assertEqual(out["UnprocessedItems"], {})
        too_many = [{"PutRequest": {"Item": {"pk": {"S": "q"}, "sk": {"N": str(i)}}}}
                    for i in range(26)]
        self.dfails("batch-write-item", "--request-items",
                    self.file("c.json", {"Paged": too_many}), code="ValidationException")
        dup = [{"DeleteRequest": {"Key": {"pk": {"S": "p"}, "sk": {"N": "1"}}}}] * 2
        err = self.dfails("batch-write-item", "--request-items", self.file("d.json", {"Paged": dup}),
                          code="ValidationException")
        self.assertIn("Provided list of item keys contains duplicates", err)
        got = self.d("batch-get-item", "--request-items", self.file("g.json", {"Paged": {
            "Keys": [{"pk": {"S": "p"}, "sk": {"N": "3"}}, {"pk": {"S": "p"}, "sk": {"N": "99"}}]}}))
        self.assertEqual(len(got["Responses"]["Paged"]), 1)
        self.assertEqual(got["UnprocessedKeys"], {})
        # The CLI follows LastEvaluatedKey across pages of 7 and reassembles all 50 items.
        out = self.d("query", "--table-name", "Paged", "--key-condition-expression", "pk = :p",
                     "--expression-attribute-values", '{":p":{"S":"p"}}', "--page-size", "7")
        self.assertEqual([int(i["sk"]["N"]) for i in out["Items"]], list(range(50)))
        out = self.d("query", "--table-name", "Paged", "--key-condition-expression",
                     "pk = :p AND sk >= :ten", "--filter-expression", "odd = :t",
                     "--expression-attribute-values",
                     '{":p":{"S":"p"},":ten":{"N":"10"},":t":{"BOOL":true}}', "--no-scan-index-forward")
        self.assertEqual([int(i["sk"]["N"]) for i in out["Items"]], list(range(49, 10, -2)))
        self.assertEqual(out["ScannedCount"], 40)
        out = self.d("scan", "--table-name", "Paged", "--select", "COUNT", "--page-size", "9")
        self.assertEqual(out["Count"], 50)
        seg = [self.d("scan", "--table-name", "Paged", "--segment", str(s), "--total-segments",
                      "3")["Count"] for s in range(3)]
        self.assertEqual(sum(seg), 50)
        # Raw paging: a page that ends exactly on the last item still carries LastEvaluatedKey.
        page = self.d("query", "--table-name", "Paged", "--key-condition-expression", "pk = :p",
                      "--expression-attribute-values", '{":p":{"S":"p"}}', "--limit", "50",
                      "--no-paginate")
        self.assertEqual(page["Count"], 50)
        self.assertEqual(page["LastEvaluatedKey"], {"pk": {"S": "p"}, "sk": {"N": "49"}})

    def test_transactions(self):
        self.create("Acct")
        self.d("put-item", "--table-name", "Acct", "--item", '{"pk":{"S":"alice"},"bal":{"N":"5"}}')
        items = [
            {"ConditionCheck": {"TableName": "Acct", "Key": {"pk": {"S": "alice"}},
                                "ConditionExpression": "bal >= :a",
                                "ExpressionAttributeValues": {":a": {"N": "10"}}}},
            {"Put": {"TableName": "Acct", "Item": {"pk": {"S": "bob"}}}},
        ]
        err = self.dfails("transact-write-items", "--transact-items", self.file("t.json", items),
                          code="TransactionCanceledException")
        self.assertIn("[ConditionalCheckFailed, None]", err)
        self.assertEqual(self.d("get-item", "--table-name", "Acct", "--key",
                                '{"pk":{"S":"bob"}}'), {})
        items[0]["ConditionCheck"]["ExpressionAttributeValues"][":a"]["N"] = "1"
        out = self.d("transact-write-items", "--transact-items", self.file("t2.json", items),
                     "--return-consumed-capacity", "TOTAL")
        self.assertEqual(out["ConsumedCapacity"], [{"TableName": "Acct", "CapacityUnits": 4.0}])
        got = self.d("transact-get-items", "--transact-items", self.file("g.json", [
            {"Get": {"TableName": "Acct", "Key": {"pk": {"S": "bob"}}}},
            {"Get": {"TableName": "Acct", "Key": {"pk": {"S": "carol"}}}}]))
        self.assertEqual(got["Responses"], [{"Item": {"pk": {"S": "bob"}}}, {}])

    # -- change data ---------------------------------------------------------------------------

    def test_kinesis_destination(self):
        self.create("Dest")
        self.aws.ok("kinesis", "create-stream", "--stream-name", "dest-cdc", "--shard-count", "1")
        arn = "arn:aws:kinesis:us-east-1:000000000000:stream/dest-cdc"
        out = self.d("enable-kinesis-streaming-destination", "--table-name", "Dest",
                     "--stream-arn", arn)
        self.assertEqual(out["DestinationStatus"], "ENABLING")
        dests = self.d("describe-kinesis-streaming-destination", "--table-name", "Dest")
        self.assertEqual(dests["KinesisDataStreamDestinations"][0]["DestinationStatus"], "ACTIVE")
        self.dfails("enable-kinesis-streaming-destination", "--table-name", "Dest", "--stream-arn",
                    "arn:aws:kinesis:us-east-1:000000000000:stream/none",
                    code="ResourceNotFoundException")
        out = self.d("disable-kinesis-streaming-destination", "--table-name", "Dest",
                     "--stream-arn", arn)
        self.assertEqual(out["DestinationStatus"], "DISABLING")

    def test_streams_api(self):
        self.create("Feed", stream="NEW_AND_OLD_IMAGES")
        self.d("put-item", "--table-name", "Feed", "--item", '{"pk":{"S":"a"},"v":{"N":"1"}}')
        self.d("put-item", "--table-name", "Feed", "--item", '{"pk":{"S":"a"},"v":{"N":"2"}}')
        self.d("delete-item", "--table-name", "Feed", "--key", '{"pk":{"S":"a"}}')
        s = lambda *a, **kw: self.aws.ok("dynamodbstreams", *a, **kw)  # noqa: E731
        streams = s("list-streams", "--table-name", "Feed")["Streams"]
        self.assertEqual(len(streams), 1)
        arn = streams[0]["StreamArn"]
        desc = s("describe-stream", "--stream-arn", arn)["StreamDescription"]
        self.assertEqual(desc["StreamStatus"], "ENABLED")
        shard = desc["Shards"][0]["ShardId"]
        it = s("get-shard-iterator", "--stream-arn", arn, "--shard-id", shard,
               "--shard-iterator-type", "TRIM_HORIZON")["ShardIterator"]
        out = s("get-records", "--shard-iterator", it)
        self.assertEqual([r["eventName"] for r in out["Records"]], ["INSERT", "MODIFY", "REMOVE"])
        self.assertEqual(out["Records"][1]["dynamodb"]["OldImage"]["v"], {"N": "1"})
        self.assertEqual(out["Records"][1]["dynamodb"]["NewImage"]["v"], {"N": "2"})
        seqs = [r["dynamodb"]["SequenceNumber"] for r in out["Records"]]
        self.assertEqual(seqs, sorted(seqs))
        self.assertNotEqual(out["NextShardIterator"], it)
        after = s("get-shard-iterator", "--stream-arn", arn, "--shard-id", shard,
                  "--shard-iterator-type", "AFTER_SEQUENCE_NUMBER", "--sequence-number",
                  seqs[0])["ShardIterator"]
        self.assertEqual(len(s("get-records", "--shard-iterator", after)["Records"]), 2)
        err = self.aws.fails("dynamodbstreams", "get-records", "--shard-iterator", "bogus",
                             code="ValidationException")
        self.assertIn("Invalid ShardIterator", err)

    # -- raw requests --------------------------------------------------------------------------

    def raw(self, target, body):
        # A well-formed signature: the server accepts any when no credentials are configured.
        now = time.gmtime()
        req = urllib.request.Request(self.server.endpoint + "/", data=body, method="POST", headers={
            "X-Amz-Target": target, "Content-Type": "application/x-amz-json-1.0",
            "Authorization": "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/"
                             + time.strftime("%Y%m%d", now) + "/us-east-1/dynamodb/aws4_request, "
                             "SignedHeaders=host;x-amz-date, Signature=" + "0" * 64,
            "X-Amz-Date": time.strftime("%Y%m%dT%H%M%SZ", now)})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, r.read(), dict(r.headers)
        except urllib.error.HTTPError as e:
            return e.code, e.read(), dict(e.headers)

    def test_malformed_requests_keep_the_server_healthy(self):
        for target, body in [("DynamoDB_20120810.PutItem", b"{"),
                             ("DynamoDB_20120810.BatchWriteItem", b'{"RequestItems":[1]}'),
                             ("DynamoDB_20120810.Query", b'{"TableName":7}'),
                             ("DynamoDBStreams_20120810.GetRecords", b'{"ShardIterator":{}}')]:
            status, payload, headers = self.raw(target, body)
            self.assertEqual(status, 400, payload)
            self.assertIn(b"SerializationException", payload)
            self.assertIn("x-amz-crc32", {k.lower() for k in headers})
        status, _ = self.server.get("/health")
        self.assertEqual(status, 200)


if __name__ == "__main__":
    main()
