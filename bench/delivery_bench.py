# SPDX-License-Identifier: MIT
"""Delivery throughput: records/s from the first table write until every record is an object.

Starts `changepipe serve`, creates the article's by-livestream pipeline with either the native
DynamoDBChangeRecord processor or a real custom-runtime Lambda (examples/lambda, run as local
processes through the Lambda Runtime API), drives `changepipe load` at a fixed rate, then flushes
and reads the delivery counters. Not a test: results go to BENCHMARKS.md.

  python3 bench/delivery_bench.py BUILD_DIR [native|lambda] [rate] [seconds] [runs]
"""
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

build = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "build/release")
os.environ["CHANGEPIPE_BIN"] = os.path.join(build, "changepipe")  # read by the harness
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "blackbox"))
from harness import AwsCli, Server  # noqa: E402

mode = sys.argv[2] if len(sys.argv) > 2 else "native"
rate = sys.argv[3] if len(sys.argv) > 3 else "1000"
seconds = sys.argv[4] if len(sys.argv) > 4 else "10"
runs = int(sys.argv[5]) if len(sys.argv) > 5 else 3
binary = os.environ["CHANGEPIPE_BIN"]
REGION = "us-east-1"


def delivery_config(lambda_arn):
    if lambda_arn:
        processors = [{"Type": "Lambda", "Parameters": [
            {"ParameterName": "LambdaArn", "ParameterValue": lambda_arn},
            {"ParameterName": "BufferSizeInMBs", "ParameterValue": "1"}]}]
    else:
        processors = [{"Type": "DynamoDBChangeRecord", "Parameters": [
            {"ParameterName": "PartitionKeyAttributes", "ParameterValue": "LivestreamID"}]}]
    return {
        "DeliveryStreamName": "bench", "DeliveryStreamType": "KinesisStreamAsSource",
        "KinesisStreamSourceConfiguration": {
            "KinesisStreamARN": f"arn:aws:kinesis:{REGION}:000000000000:stream/cdc",
            "RoleARN": "arn:aws:iam::000000000000:role/firehose"},
        "ExtendedS3DestinationConfiguration": {
            "RoleARN": "arn:aws:iam::000000000000:role/firehose",
            "BucketARN": "arn:aws:s3:::chat-bucket",
            "Prefix": "Livestreams/LivestreamID=!{partitionKeyFromLambda:LivestreamID}/",
            "ErrorOutputPrefix": "errors/!{firehose:error-output-type}/",
            "BufferingHints": {"SizeInMBs": 64, "IntervalInSeconds": 60},
            "ProcessingConfiguration": {"Enabled": True, "Processors": processors},
            "DynamicPartitioningConfiguration": {"Enabled": True}}}


def one_run():
    srv = Server().start()
    aws = AwsCli(srv.endpoint, REGION)
    try:
        aws.ok("s3api", "create-bucket", "--bucket", "chat-bucket")
        aws.ok("kinesis", "create-stream", "--stream-name", "cdc", "--stream-mode-details",
               "StreamMode=ON_DEMAND")
        aws.ok("dynamodb", "create-table", "--table-name", "ChatMessages",
               "--attribute-definitions", "AttributeName=LivestreamID,AttributeType=S",
               "AttributeName=UID,AttributeType=N", "--key-schema",
               "AttributeName=LivestreamID,KeyType=HASH", "AttributeName=UID,KeyType=RANGE",
               "--billing-mode", "PAY_PER_REQUEST")
        aws.ok("dynamodb", "enable-kinesis-streaming-destination", "--table-name",
               "ChatMessages", "--stream-arn", f"arn:aws:kinesis:{REGION}:000000000000:stream/cdc")
        arn = None
        if mode == "lambda":
            zipf = os.path.join(build, "examples", "lambda", "fn.zip")
            subprocess.run(["cmake", "--build", build, "--target", "example_lambda_zip"],
                           check=True, capture_output=True)
            fn = aws.ok("lambda", "create-function", "--function-name", "flatten",
                        "--runtime", "provided.al2023", "--handler", "bootstrap",
                        "--role", "arn:aws:iam::000000000000:role/lambda",
                        "--timeout", "60", "--environment",
                        "Variables={PARTITION_KEY_ATTRIBUTES=LivestreamID}",
                        "--zip-file", f"fileb://{zipf}")
            arn = fn["FunctionArn"]
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
            json.dump(delivery_config(arn), f)
        aws.ok("firehose", "create-delivery-stream", "--cli-input-json", f"file://{f.name}")
        t0 = time.monotonic()
        subprocess.run([binary, "load", "--endpoint", srv.endpoint, "--rate", rate,
                        "--duration", f"{seconds}s", "--quiet"], check=True,
                       capture_output=True)
        req = urllib.request.Request(srv.endpoint + "/changepipe/v1/drain", method="POST")
        urllib.request.urlopen(req, timeout=600).read()
        elapsed = time.monotonic() - t0
        st = json.loads(srv.get("/status.json")[1])
        d = [x for x in st["delivery"] if x["name"] == "bench"][0]
        return d["delivered"], elapsed
    finally:
        srv.stop()
        srv.cleanup()


results = []
for i in range(runs):
    delivered, elapsed = one_run()
    results.append(delivered / elapsed)
    print(f"run {i + 1}: {delivered} records delivered in {elapsed:.2f} s "
          f"= {delivered / elapsed:.0f} records/s", flush=True)
print(f"{mode}: median {statistics.median(results):.0f} records/s "
      f"(offered {float(rate) * 25:.0f} items/s for {seconds} s)")
