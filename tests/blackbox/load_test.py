# SPDX-License-Identifier: MIT
"""`changepipe load --verify` against a real server running the article's pipeline."""
import json
import os
import subprocess
import tempfile

from harness import BINARY, ServerTestCase, main

REGION = "us-east-1"
STREAM_ARN = f"arn:aws:kinesis:{REGION}:000000000000:stream/chat-cdc"


class LoadVerify(ServerTestCase):
    def setUp(self):
        aws = self.aws
        aws.ok("s3api", "create-bucket", "--bucket", "chat-bucket")
        aws.ok("kinesis", "create-stream", "--stream-name", "chat-cdc",
               "--stream-mode-details", "StreamMode=ON_DEMAND")
        aws.ok("dynamodb", "create-table", "--table-name", "ChatMessages",
               "--attribute-definitions", "AttributeName=LivestreamID,AttributeType=S",
               "AttributeName=UID,AttributeType=N", "--key-schema",
               "AttributeName=LivestreamID,KeyType=HASH", "AttributeName=UID,KeyType=RANGE",
               "--billing-mode", "PAY_PER_REQUEST")
        aws.ok("dynamodb", "enable-kinesis-streaming-destination", "--table-name",
               "ChatMessages", "--stream-arn", STREAM_ARN)
        cfg = {
            "DeliveryStreamName": "by-live", "DeliveryStreamType": "KinesisStreamAsSource",
            "KinesisStreamSourceConfiguration": {
                "KinesisStreamARN": STREAM_ARN,
                "RoleARN": "arn:aws:iam::000000000000:role/firehose"},
            "ExtendedS3DestinationConfiguration": {
                "RoleARN": "arn:aws:iam::000000000000:role/firehose",
                "BucketARN": "arn:aws:s3:::chat-bucket",
                "Prefix": "Livestreams/LivestreamID=!{partitionKeyFromLambda:LivestreamID}/",
                "ErrorOutputPrefix": "errors/!{firehose:error-output-type}/",
                "BufferingHints": {"SizeInMBs": 64, "IntervalInSeconds": 60},
                "CompressionFormat": "GZIP",
                "ProcessingConfiguration": {"Enabled": True, "Processors": [{
                    "Type": "DynamoDBChangeRecord", "Parameters": [{
                        "ParameterName": "PartitionKeyAttributes",
                        "ParameterValue": "LivestreamID"}]}]},
                "DynamicPartitioningConfiguration": {"Enabled": True}}}
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
            json.dump(cfg, f)
        aws.ok("firehose", "create-delivery-stream", "--cli-input-json", f"file://{f.name}")
        os.unlink(f.name)

    def test_every_item_arrives_exactly_once(self):
        p = subprocess.run([BINARY, "load", "--endpoint", self.server.endpoint, "--rate", "200",
                            "--duration", "3s", "--livestreams", "4", "--quiet", "--verify"],
                           capture_output=True, text=True, timeout=300)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("errors 0", p.stdout)
        self.assertIn("lost = 0, duplicated = 0", p.stdout)
        # 200 requests/s x 25 items x 3 s, over 4 livestreams.
        written = [int(line.split()[2]) for line in p.stdout.splitlines()
                   if line.strip().startswith("live-")]
        self.assertEqual(len(written), 4)
        self.assertGreater(sum(written), 10000)
        # The per-stage counters balance: every record read was delivered.
        status = json.loads(self.server.get("/status.json")[1])
        d = [x for x in status["delivery"] if x["name"] == "by-live"][0]
        self.assertEqual(d["read"], d["delivered"] + d["errored"] + d["dropped"] + d["buffered"])
        self.assertEqual(d["delivered"], sum(written))
        self.assertEqual(status["table"]["changes"], sum(written))


if __name__ == "__main__":
    main()
