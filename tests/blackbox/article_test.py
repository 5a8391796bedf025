# SPDX-License-Identifier: MIT
"""The article's commands, verbatim but for --endpoint-url, against a real server."""
import base64
import json
import os
import subprocess
import tempfile

from harness import ServerTestCase, main, wait_for


class ArticleCommands(ServerTestCase):
    def test_1_write_path_change_capture_into_kinesis(self):
        aws = self.aws
        out = aws.ok("s3api", "create-bucket", "--bucket", "chat-bucket", "--region",
                     "ap-northeast-2", "--create-bucket-configuration",
                     "LocationConstraint=ap-northeast-2")
        self.assertEqual(out["Location"], "/chat-bucket")
        aws.ok("kinesis", "create-stream", "--stream-name", "chat-cdc",
               "--stream-mode-details", "StreamMode=ON_DEMAND")
        summary = aws.ok("kinesis", "describe-stream-summary", "--stream-name", "chat-cdc")
        desc = summary["StreamDescriptionSummary"]
        self.assertEqual(desc["StreamModeDetails"]["StreamMode"], "ON_DEMAND")
        self.assertEqual(desc["OpenShardCount"], 4)
        arn = desc["StreamARN"]
        aws.ok("dynamodb", "create-table", "--table-name", "ChatMessages",
               "--attribute-definitions", "AttributeName=LivestreamID,AttributeType=S",
               "AttributeName=UID,AttributeType=N",
               "--key-schema", "AttributeName=LivestreamID,KeyType=HASH",
               "AttributeName=UID,KeyType=RANGE", "--billing-mode", "PAY_PER_REQUEST")
        aws.ok("dynamodb", "enable-kinesis-streaming-destination", "--table-name",
               "ChatMessages", "--stream-arn", arn)
        dests = aws.ok("dynamodb", "describe-kinesis-streaming-destination", "--table-name",
                       "ChatMessages")["KinesisDataStreamDestinations"]
        self.assertEqual([d["DestinationStatus"] for d in dests], ["ACTIVE"])

        # The article's first check: 25 items of one livestream in one BatchWriteItem.
        items = [{"PutRequest": {"Item": {
            "LivestreamID": {"S": "live-1"}, "UID": {"N": str(1764132000000000 + i)},
            "UserID": {"S": f"user-{i}"}, "Message": {"S": "\uc548\ub155 hello"},
            "CreatedAt": {"S": "2026-11-26T06:00:00Z"}}}} for i in range(25)]
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
            json.dump({"ChatMessages": items}, f)
        out = aws.ok("dynamodb", "batch-write-item", "--request-items", f"file://{f.name}")
        os.unlink(f.name)
        self.assertEqual(out.get("UnprocessedItems"), {})
        count = aws.ok("dynamodb", "query", "--table-name", "ChatMessages",
                       "--key-condition-expression", "LivestreamID = :l",
                       "--expression-attribute-values", '{":l":{"S":"live-1"}}',
                       "--select", "COUNT")
        self.assertEqual(count["Count"], 25)

        # Every change record reaches the stream exactly once, as DynamoDB renders it.
        shards = aws.ok("kinesis", "list-shards", "--stream-name", "chat-cdc")["Shards"]
        self.assertEqual(len(shards), 4)

        def all_records():
            records = []
            for s in shards:
                it = aws.ok("kinesis", "get-shard-iterator", "--stream-name", "chat-cdc",
                            "--shard-id", s["ShardId"], "--shard-iterator-type",
                            "TRIM_HORIZON")["ShardIterator"]
                records += aws.ok("kinesis", "get-records", "--shard-iterator", it)["Records"]
            return records if len(records) >= 25 else None

        records = wait_for(all_records, what="25 change records in the stream")
        self.assertEqual(len(records), 25)
        uids = set()
        for r in records:
            doc = json.loads(base64.b64decode(r["Data"]))
            self.assertEqual(doc["eventName"], "INSERT")
            self.assertEqual(doc["tableName"], "ChatMessages")
            self.assertIsNone(doc["userIdentity"])
            self.assertEqual(doc["eventSource"], "aws:dynamodb")
            self.assertEqual(doc["dynamodb"]["Keys"]["LivestreamID"], {"S": "live-1"})
            self.assertEqual(len(r["PartitionKey"]), 32)
            uids.add(doc["dynamodb"]["NewImage"]["UID"]["N"])
        self.assertEqual(len(uids), 25)

    def test_2_errors_keep_the_server_healthy(self):
        aws = self.aws
        aws.fails("dynamodb", "describe-table", "--table-name", "Nope",
                  code="ResourceNotFoundException")
        aws.fails("kinesis", "describe-stream", "--stream-name", "nope",
                  code="ResourceNotFoundException")
        aws.fails("s3api", "head-bucket", "--bucket", "no-such-bucket")
        # Malformed JSON straight at the endpoint.
        p = subprocess.run(["curl", "-s", "-X", "POST", self.server.endpoint + "/",
                            "-H", "X-Amz-Target: DynamoDB_20120810.ListTables",
                            "-H", "Content-Type: application/x-amz-json-1.0",
                            "-d", "{not json"], capture_output=True, text=True)
        self.assertIn("SerializationException", p.stdout)
        self.assertEqual(self.server.get("/health")[0], 200)


if __name__ == "__main__":
    main()
