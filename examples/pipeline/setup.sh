#!/usr/bin/env bash
# The article's pipeline, command for command, against a changepipe server:
#   changepipe serve &            # listens on 127.0.0.1:4566
#   examples/pipeline/setup.sh    # then: changepipe load --verify
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
E="--endpoint-url ${ENDPOINT:-http://127.0.0.1:4566}"
export AWS_ACCESS_KEY_ID=${AWS_ACCESS_KEY_ID:-AKIDEXAMPLE}
export AWS_SECRET_ACCESS_KEY=${AWS_SECRET_ACCESS_KEY:-wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY}
export AWS_DEFAULT_REGION=ap-northeast-2 AWS_PAGER=""

aws $E s3api create-bucket --bucket chat-bucket --region ap-northeast-2 \
    --create-bucket-configuration LocationConstraint=ap-northeast-2
aws $E s3api create-bucket --bucket chat-bucket-by-time --region ap-northeast-2 \
    --create-bucket-configuration LocationConstraint=ap-northeast-2
aws $E dynamodb create-table --table-name ChatMessages \
    --attribute-definitions AttributeName=LivestreamID,AttributeType=S AttributeName=UID,AttributeType=N \
    --key-schema AttributeName=LivestreamID,KeyType=HASH AttributeName=UID,KeyType=RANGE \
    --billing-mode PAY_PER_REQUEST
aws $E kinesis create-stream --stream-name chat-cdc --stream-mode-details StreamMode=ON_DEMAND
aws $E dynamodb enable-kinesis-streaming-destination --table-name ChatMessages \
    --stream-arn arn:aws:kinesis:ap-northeast-2:000000000000:stream/chat-cdc

# The transform: the example C Lambda (examples/lambda), built by `make` as fn.zip.
zip=${FN_ZIP:-$here/../../build/release/examples/lambda/fn.zip}  # built by `make`
(cd "$here/../lambda" && aws $E lambda create-function --zip-file "fileb://$zip" \
    --cli-input-json file://deploy.json)
aws $E firehose create-delivery-stream --cli-input-json "file://$here/by-livestream.json"
aws $E firehose create-delivery-stream --cli-input-json "file://$here/by-time.json"
