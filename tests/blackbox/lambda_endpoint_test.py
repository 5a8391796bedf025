# SPDX-License-Identifier: MIT
"""Delivery invoking a function served by another Lambda Invoke endpoint (--lambda-endpoints).

The other endpoint here is a second changepipe server hosting the example transform under the
name "function" — the path the Runtime Interface Emulator serves
(/2015-03-31/functions/function/invocations), which is what --lambda-endpoints calls.
"""
import json
import os
import tempfile
import unittest

from firehose_test import cli_blob_args, drain, example_lambda_zip, write_json
from harness import AwsCli, Server, main


class LambdaEndpoint(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="cp-le-")
        self.fn_server = Server().start()
        fn = AwsCli(self.fn_server.endpoint)
        fn.ok("lambda", "create-function", "--function-name", "function",
              "--runtime", "provided.al2023", "--handler", "bootstrap",
              "--role", "arn:aws:iam::000000000000:role/lambda", "--timeout", "30",
              "--environment", "Variables={PARTITION_KEY_ATTRIBUTES=LivestreamID}",
              "--zip-file", "fileb://" + example_lambda_zip(self.tmp))
        self.server = Server("--lambda-endpoints",
                             f"flatten={self.fn_server.endpoint}").start()
        self.aws = AwsCli(self.server.endpoint)

    def tearDown(self):
        for s in (self.server, self.fn_server):
            code = s.stop()
            log = s.read_log()
            s.cleanup()
            self.assertEqual(code, 0, log)
            self.assertNotIn("Sanitizer", log)

    def test_delivery_uses_the_mapped_endpoint(self):
        aws = self.aws
        aws.ok("s3api", "create-bucket", "--bucket", "out")
        cfg = {
            "DeliveryStreamName": "direct", "DeliveryStreamType": "DirectPut",
            "ExtendedS3DestinationConfiguration": {
                "RoleARN": "arn:aws:iam::000000000000:role/firehose",
                "BucketARN": "arn:aws:s3:::out", "Prefix": "flat/",
                "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 60},
                "ProcessingConfiguration": {"Enabled": True, "Processors": [{
                    "Type": "Lambda", "Parameters": [{
                        "ParameterName": "LambdaArn",
                        "ParameterValue":
                            "arn:aws:lambda:us-east-1:000000000000:function:flatten"}]}]}}}
        aws.ok("firehose", "create-delivery-stream", "--cli-input-json",
               "file://" + write_json(self.tmp, "direct.json", cfg))
        records = []
        for i in range(20):
            change = {"eventName": "INSERT", "tableName": "Chat", "dynamodb": {
                "NewImage": {"LivestreamID": {"S": f"live-{i % 3}"},
                             "UID": {"N": str(1764132000000000 + i)},
                             "Message": {"S": "hello"}}}}
            records.append({"Data": json.dumps(change)})
        batch = write_json(self.tmp, "batch.json",
                           {"DeliveryStreamName": "direct", "Records": records})
        out = aws.ok("firehose", "put-record-batch", "--cli-input-json", f"file://{batch}",
                     *cli_blob_args())
        self.assertEqual(out["FailedPutCount"], 0)
        drain(self.server.endpoint)
        keys = [o["Key"] for o in aws.ok("s3api", "list-objects-v2", "--bucket", "out")
                .get("Contents", [])]
        self.assertTrue(keys and all(k.startswith("flat/") for k in keys), keys)
        lines = []
        for k in keys:
            dest = os.path.join(self.tmp, "obj")
            aws.ok("s3api", "get-object", "--bucket", "out", "--key", k, dest)
            with open(dest) as f:
                lines += [json.loads(line) for line in f.read().splitlines()]
        self.assertTrue(all("UID" in line for line in lines), lines[:3])
        self.assertEqual(sorted(line["UID"] for line in lines),
                         [1764132000000000 + i for i in range(20)])
        self.assertTrue(all(set(line) == {"LivestreamID", "UID", "Message"} for line in lines))
        # The invocations ran on the other server, not on this one.
        with open(self.fn_server.log_path) as f:
            self.assertNotIn("ERROR", f.read())
        metrics = json.loads(self.fn_server.get("/status.json")[1])
        self.assertTrue(any(o["op"] == "lambda.POST" and o["count"] > 0 for o in metrics["ops"]),
                        metrics["ops"])


if __name__ == "__main__":
    main()
