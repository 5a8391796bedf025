/* SPDX-License-Identifier: MIT */
/*
 * The DynamoDB Streams API over the store's change log, through cp_aws_dispatch: ListStreams,
 * DescribeStream, GetShardIterator (all four types) and GetRecords with INSERT/MODIFY/REMOVE
 * records and view types, other tables' records filtered out, fresh NextShardIterators,
 * disabled and deleted tables' streams, iterator expiry and tampering, and restarts.
 */
#include "test_dynamo_harness.h"

static reply sc(env *e, const char *op, const char *json)
{
    return streams_call(e, op, json);
}

static cJSON *sok(env *e, const char *op, const char *json)
{
    reply r = sc(e, op, json);
    if (r.status != 200) {
        CPT_FAIL_AT("%s failed: %d %s", op, r.status, r.body);
    }
    return parse(r.body);
}

static const char *latest_arn(env *e, const char *table)
{
    char b[128];
    snprintf(b, sizeof(b), "{'TableName':'%s'}", table);
    cJSON *j = OK(e, "DescribeTable", b);
    return jstr(j, "Table.LatestStreamArn");
}

static const char *shard_of(env *e, const char *arn)
{
    char b[512];
    snprintf(b, sizeof(b), "{'StreamArn':'%s'}", arn);
    cJSON *j = sok(e, "DescribeStream", b);
    return jstr(j, "StreamDescription.Shards.0.ShardId");
}

static const char *iterator(env *e, const char *arn, const char *type, const char *seq)
{
    char b[1024];
    snprintf(b, sizeof(b), "{'StreamArn':'%s','ShardId':'%s','ShardIteratorType':'%s'%s%s%s}", arn,
             shard_of(e, arn), type, seq ? ",'SequenceNumber':'" : "", seq ? seq : "",
             seq ? "'" : "");
    cJSON *j = sok(e, "GetShardIterator", b);
    return jstr(j, "ShardIterator");
}

static cJSON *records(env *e, const char *it, int limit)
{
    char b[2048];
    if (limit) {
        snprintf(b, sizeof(b), "{'ShardIterator':'%s','Limit':%d}", it, limit);
    } else {
        snprintf(b, sizeof(b), "{'ShardIterator':'%s'}", it);
    }
    return sok(e, "GetRecords", b);
}

/* "INSERT,MODIFY,..." of a GetRecords result. */
static const char *events(const cJSON *j)
{
    cp_buf b = CP_BUF_INIT;
    const cJSON *r;
    cJSON_ArrayForEach(r, jget(j, "Records"))
    {
        cp_buf_printf(&b, "%s%s", b.len ? "," : "", jstr(r, "eventName"));
    }
    if (!b.p) {
        cp_buf_puts(&b, "");
    }
    return keep_str(b.p);
}

static int all_digits(const char *s)
{
    for (; s && *s; s++) {
        if (*s < '0' || *s > '9') {
            return 0;
        }
    }
    return s != NULL;
}

static void records_and_iterators(void)
{
    env e;
    env_open(&e);
    create_table(&e, "Orders", "N", "NEW_AND_OLD_IMAGES");
    create_table(&e, "Other", NULL, "KEYS_ONLY");
    const char *arn = latest_arn(&e, "Orders");
    const char *other_arn = latest_arn(&e, "Other");
    CPT_CHECK(arn && other_arn);

    OK(&e, "PutItem",
       "{'TableName':'Orders','Item':{'pk':{'S':'a'},'sk':{'N':'1'},'q':{'N':'2'}}}");
    OK(&e, "PutItem", "{'TableName':'Other','Item':{'pk':{'S':'x'}}}");
    OK(&e, "UpdateItem",
       "{'TableName':'Orders','Key':{'pk':{'S':'a'},'sk':{'N':'1'}},'UpdateExpression':"
       "'SET q = :three','ExpressionAttributeValues':{':three':{'N':'3'}}}");
    /* No-op writes capture nothing. */
    OK(&e, "PutItem",
       "{'TableName':'Orders','Item':{'pk':{'S':'a'},'sk':{'N':'1'},'q':{'N':'3'}}}");
    OK(&e, "DeleteItem", "{'TableName':'Orders','Key':{'pk':{'S':'zz'},'sk':{'N':'1'}}}");
    OK(&e, "DeleteItem", "{'TableName':'Orders','Key':{'pk':{'S':'a'},'sk':{'N':'1'}}}");

    cJSON *j = sok(&e, "ListStreams", "{}");
    CPT_EQ_INT(cJSON_GetArraySize(jget(j, "Streams")), 2);
    CPT_EQ_STR(jstr(j, "Streams.0.TableName"), "Orders");
    CPT_EQ_STR(jstr(j, "Streams.0.StreamArn"), arn);
    CPT_EQ_STR(jstr(j, "Streams.1.StreamArn"), other_arn);
    j = sok(&e, "ListStreams", "{'TableName':'Other'}");
    CPT_EQ_INT(cJSON_GetArraySize(jget(j, "Streams")), 1);
    CPT_EQ_STR(jstr(j, "Streams.0.StreamLabel"), strrchr(other_arn, '/') + 1);
    j = sok(&e, "ListStreams", "{'Limit':1}");
    CPT_EQ_STR(jstr(j, "LastEvaluatedStreamArn"), arn);
    char b[1024];
    snprintf(b, sizeof(b), "{'ExclusiveStartStreamArn':'%s'}", arn);
    j = sok(&e, "ListStreams", b);
    CPT_EQ_STR(jstr(j, "Streams.0.StreamArn"), other_arn);
    CPT_CHECK(jget(j, "LastEvaluatedStreamArn") == NULL);

    snprintf(b, sizeof(b), "{'StreamArn':'%s'}", arn);
    j = sok(&e, "DescribeStream", b);
    const cJSON *d = jget(j, "StreamDescription");
    CPT_EQ_STR(jstr(d, "StreamStatus"), "ENABLED");
    CPT_EQ_STR(jstr(d, "StreamViewType"), "NEW_AND_OLD_IMAGES");
    CPT_EQ_STR(jstr(d, "TableName"), "Orders");
    CPT_EQ_STR(jtext(d, "KeySchema"), "[{\"AttributeName\":\"pk\",\"KeyType\":\"HASH\"},"
                                      "{\"AttributeName\":\"sk\",\"KeyType\":\"RANGE\"}]");
    CPT_EQ_INT(cJSON_GetArraySize(jget(d, "Shards")), 1);
    const char *shard = jstr(d, "Shards.0.ShardId");
    CPT_CHECK(shard && strlen(shard) == 37 && strncmp(shard, "shardId-", 8) == 0 &&
              shard[28] == '-');
    const char *start = jstr(d, "Shards.0.SequenceNumberRange.StartingSequenceNumber");
    CPT_CHECK(start && strlen(start) == 21 && all_digits(start));
    CPT_CHECK(jget(d, "Shards.0.SequenceNumberRange.EndingSequenceNumber") == NULL);
    CPT_CHECK(jnum(d, "CreationRequestDateTime") > 1.6e9);
    /* Paging past the only shard. */
    snprintf(b, sizeof(b), "{'StreamArn':'%s','ExclusiveStartShardId':'%s'}", arn, shard);
    j = sok(&e, "DescribeStream", b);
    CPT_EQ_INT(cJSON_GetArraySize(jget(j, "StreamDescription.Shards")), 0);

    const char *it = iterator(&e, arn, "TRIM_HORIZON", NULL);
    CPT_CHECK(strncmp(it, arn, strlen(arn)) == 0 && strncmp(it + strlen(arn), "|1|", 3) == 0);
    j = records(&e, it, 0);
    CPT_EQ_STR(events(j), "INSERT,MODIFY,REMOVE");
    const cJSON *r0 = jget(j, "Records.0"), *r1 = jget(j, "Records.1"), *r2 = jget(j, "Records.2");
    CPT_EQ_STR(jstr(r0, "eventVersion"), "1.1");
    CPT_EQ_STR(jstr(r0, "eventSource"), "aws:dynamodb");
    CPT_EQ_STR(jstr(r0, "awsRegion"), "us-east-1");
    CPT_EQ_INT(strlen(jstr(r0, "eventID")), 32);
    CPT_EQ_STR(jtext(r0, "dynamodb.Keys"), "{\"pk\":{\"S\":\"a\"},\"sk\":{\"N\":\"1\"}}");
    CPT_EQ_STR(jtext(r0, "dynamodb.NewImage.q"), "{\"N\":\"2\"}");
    CPT_CHECK(jget(r0, "dynamodb.OldImage") == NULL);
    CPT_EQ_STR(jtext(r1, "dynamodb.OldImage.q"), "{\"N\":\"2\"}");
    CPT_EQ_STR(jtext(r1, "dynamodb.NewImage.q"), "{\"N\":\"3\"}");
    CPT_CHECK(jget(r2, "dynamodb.NewImage") == NULL);
    CPT_EQ_STR(jtext(r2, "dynamodb.OldImage.q"), "{\"N\":\"3\"}");
    CPT_EQ_STR(jstr(r2, "dynamodb.StreamViewType"), "NEW_AND_OLD_IMAGES");
    CPT_CHECK(jnum(r2, "dynamodb.SizeBytes") > 0);
    const char *s0 = jstr(r0, "dynamodb.SequenceNumber"), *s1 = jstr(r1, "dynamodb.SequenceNumber"),
               *s2 = jstr(r2, "dynamodb.SequenceNumber");
    CPT_CHECK(strlen(s0) == 21 && all_digits(s0) && strcmp(s0, start) >= 0);
    CPT_CHECK(strlen(s1) == 21 && strcmp(s0, s1) < 0 && strcmp(s1, s2) < 0);
    /* An open shard always hands out a new iterator, even with nothing to read. */
    const char *next = jstr(j, "NextShardIterator");
    CPT_CHECK(next && strcmp(next, it) != 0);
    cJSON *j2 = records(&e, next, 0);
    CPT_EQ_INT(cJSON_GetArraySize(jget(j2, "Records")), 0);
    const char *next2 = jstr(j2, "NextShardIterator");
    CPT_CHECK(next2 && strcmp(next2, next) != 0);
    cJSON *j3 = records(&e, next2, 0);
    CPT_CHECK(strcmp(jstr(j3, "NextShardIterator"), next2) != 0);

    /* Limit pages through the same records. */
    j = records(&e, it, 2);
    CPT_EQ_STR(events(j), "INSERT,MODIFY");
    j = records(&e, jstr(j, "NextShardIterator"), 2);
    CPT_EQ_STR(events(j), "REMOVE");

    /* The other table's stream sees only its own record, keys only. */
    j = records(&e, iterator(&e, other_arn, "TRIM_HORIZON", NULL), 0);
    CPT_EQ_STR(events(j), "INSERT");
    CPT_EQ_STR(jtext(j, "Records.0.dynamodb.Keys"), "{\"pk\":{\"S\":\"x\"}}");
    CPT_CHECK(jget(j, "Records.0.dynamodb.NewImage") == NULL);
    CPT_EQ_STR(jstr(j, "Records.0.dynamodb.StreamViewType"), "KEYS_ONLY");

    /* AT / AFTER_SEQUENCE_NUMBER, LATEST. */
    j = records(&e, iterator(&e, arn, "AT_SEQUENCE_NUMBER", s1), 0);
    CPT_EQ_STR(events(j), "MODIFY,REMOVE");
    j = records(&e, iterator(&e, arn, "AFTER_SEQUENCE_NUMBER", s1), 0);
    CPT_EQ_STR(events(j), "REMOVE");
    const char *latest = iterator(&e, arn, "LATEST", NULL);
    OK(&e, "PutItem", "{'TableName':'Orders','Item':{'pk':{'S':'b'},'sk':{'N':'2'}}}");
    j = records(&e, latest, 0);
    CPT_EQ_STR(events(j), "INSERT");
    CPT_EQ_STR(jtext(j, "Records.0.dynamodb.Keys.pk"), "{\"S\":\"b\"}");

    /* Errors. */
    snprintf(b, sizeof(b),
             "{'StreamArn':'%s','ShardId':'%s','ShardIteratorType':'AT_SEQUENCE_NUMBER'}", arn,
             shard);
    reply r = sc(&e, "GetShardIterator", b);
    CPT_EQ_STR(r.type, "ValidationException");
    CPT_EQ_STR(r.msg, "Must provide SequenceNumber for ShardIteratorType AT_SEQUENCE_NUMBER");
    const char *other_seq = "400000000000000000001"; /* not a record boundary */
    snprintf(b, sizeof(b),
             "{'StreamArn':'%s','ShardId':'%s','ShardIteratorType':'AT_SEQUENCE_NUMBER',"
             "'SequenceNumber':'%s'}",
             arn, shard, other_seq);
    r = sc(&e, "GetShardIterator", b);
    CPT_EQ_STR(r.type, "ValidationException");
    /* The other table's record is not in this shard. */
    cJSON *oj = records(&e, iterator(&e, other_arn, "TRIM_HORIZON", NULL), 0);
    snprintf(b, sizeof(b),
             "{'StreamArn':'%s','ShardId':'%s','ShardIteratorType':'AT_SEQUENCE_NUMBER',"
             "'SequenceNumber':'%s'}",
             arn, shard, jstr(oj, "Records.0.dynamodb.SequenceNumber"));
    r = sc(&e, "GetShardIterator", b);
    CPT_EQ_STR(r.type, "ValidationException");
    snprintf(b, sizeof(b),
             "{'StreamArn':'%s','ShardId':'shardId-00000000000000000000-00000000',"
             "'ShardIteratorType':'LATEST'}",
             arn);
    r = sc(&e, "GetShardIterator", b);
    CPT_EQ_STR(r.type, "ResourceNotFoundException");
    r = sc(&e, "DescribeStream",
           "{'StreamArn':'arn:aws:dynamodb:us-east-1:000000000000:table/Orders/stream/"
           "2001-01-01T00:00:00.000'}");
    CPT_EQ_STR(r.type, "ResourceNotFoundException");
    CPT_EQ_STR(r.msg, "Requested resource not found: Stream: arn:aws:dynamodb:us-east-1:"
                      "000000000000:table/Orders/stream/2001-01-01T00:00:00.000 not found");
    r = sc(&e, "GetRecords", "{'ShardIterator':'nonsense'}");
    CPT_EQ_STR(r.type, "ValidationException");
    CPT_EQ_STR(r.msg, "Invalid ShardIterator");
    /* A tampered iterator (position bits flipped) is refused. */
    char *bad = keep_str(strdup(it));
    size_t n = strlen(bad);
    bad[n - 10] = bad[n - 10] == 'A' ? 'B' : 'A';
    snprintf(b, sizeof(b), "{'ShardIterator':'%s'}", bad);
    r = sc(&e, "GetRecords", b);
    CPT_EQ_STR(r.msg, "Invalid ShardIterator");
    r = sc(&e, "GetRecords", "{'ShardIterator':'x','Limit':1001}");
    CPT_EQ_STR(r.msg, "1 validation error detected: Value '1001' at 'limit' failed to satisfy "
                      "constraint: Member must have value less than or equal to 1000");
    /* The exact x-amz-crc32 rides on Streams replies too (checked in call_raw). */
    CPT_CHECK(r.crc != NULL);

    /* Iterators survive a restart (the key derives from the store). */
    env_reopen(&e);
    j = records(&e, it, 0);
    CPT_EQ_STR(events(j), "INSERT,MODIFY,REMOVE,INSERT");
    env_close(&e);
}

static void disable_reenable_and_delete(void)
{
    env e;
    int64_t t0 = 1764132000000;
    cp_clock_pin_ms(t0);
    env_open(&e);
    /* Work around a store bug (reported): cp_db_delete_table fails with EIO ("Invalid
     * argument") when removing the table's items empties the whole items database. Another
     * table's item keeps it non-empty. */
    create_table(&e, "Keep", NULL, NULL);
    OK(&e, "PutItem", "{'TableName':'Keep','Item':{'pk':{'S':'k'}}}");
    create_table(&e, "Orders", NULL, "NEW_IMAGE");
    const char *arn1 = latest_arn(&e, "Orders");
    OK(&e, "PutItem", "{'TableName':'Orders','Item':{'pk':{'S':'a'}}}");
    const char *it1 = iterator(&e, arn1, "TRIM_HORIZON", NULL);
    CPT_EQ_STR(strrchr(arn1, '/') + 1, "2025-11-26T04:40:00.000");

    cp_clock_pin_ms(t0 + 1000);
    OK(&e, "UpdateTable", "{'TableName':'Orders','StreamSpecification':{'StreamEnabled':false}}");
    /* Written while disabled: in no stream. */
    OK(&e, "PutItem", "{'TableName':'Orders','Item':{'pk':{'S':'off'}}}");
    char b[1024];
    snprintf(b, sizeof(b), "{'StreamArn':'%s'}", arn1);
    cJSON *j = sok(&e, "DescribeStream", b);
    CPT_EQ_STR(jstr(j, "StreamDescription.StreamStatus"), "DISABLED");
    const char *end =
        jstr(j, "StreamDescription.Shards.0.SequenceNumberRange.EndingSequenceNumber");
    CPT_CHECK(end && strlen(end) == 21);
    /* Reading a closed shard to its end: the records, then no NextShardIterator. */
    j = records(&e, it1, 0);
    CPT_EQ_STR(events(j), "INSERT");
    CPT_CHECK(jget(j, "NextShardIterator") == NULL);
    CPT_CHECK(strcmp(jstr(j, "Records.0.dynamodb.SequenceNumber"), end) <= 0);

    cp_clock_pin_ms(t0 + 2000);
    OK(&e, "UpdateTable",
       "{'TableName':'Orders','StreamSpecification':{'StreamEnabled':true,'StreamViewType':"
       "'OLD_IMAGE'}}");
    const char *arn2 = latest_arn(&e, "Orders");
    CPT_CHECK(strcmp(arn1, arn2) != 0);
    OK(&e, "PutItem", "{'TableName':'Orders','Item':{'pk':{'S':'a'},'v':{'N':'1'}}}");
    j = records(&e, iterator(&e, arn2, "TRIM_HORIZON", NULL), 0);
    CPT_EQ_STR(events(j), "MODIFY");
    CPT_EQ_STR(jtext(j, "Records.0.dynamodb.OldImage"), "{\"pk\":{\"S\":\"a\"}}");
    CPT_CHECK(jget(j, "Records.0.dynamodb.NewImage") == NULL);
    j = sok(&e, "ListStreams", "{'TableName':'Orders'}");
    CPT_EQ_INT(cJSON_GetArraySize(jget(j, "Streams")), 2);

    /* Deleting the table closes its stream; both stay listed and readable (24 h), also after a
     * restart. */
    cp_clock_pin_ms(t0 + 3000);
    OK(&e, "DeleteItem", "{'TableName':'Orders','Key':{'pk':{'S':'a'}}}");
    OK(&e, "DeleteTable", "{'TableName':'Orders'}");
    env_reopen(&e);
    j = sok(&e, "ListStreams", "{}");
    CPT_EQ_INT(cJSON_GetArraySize(jget(j, "Streams")), 2);
    snprintf(b, sizeof(b), "{'StreamArn':'%s'}", arn2);
    j = sok(&e, "DescribeStream", b);
    CPT_EQ_STR(jstr(j, "StreamDescription.StreamStatus"), "DISABLED");
    j = records(&e, iterator(&e, arn2, "TRIM_HORIZON", NULL), 0);
    CPT_EQ_STR(events(j), "MODIFY,REMOVE");
    CPT_CHECK(jget(j, "NextShardIterator") == NULL);
    /* A new table of the same name starts a new stream; the old ones are still there. */
    cp_clock_pin_ms(t0 + 4000);
    create_table(&e, "Orders", NULL, "KEYS_ONLY");
    j = sok(&e, "ListStreams", "{'TableName':'Orders'}");
    CPT_EQ_INT(cJSON_GetArraySize(jget(j, "Streams")), 3);
    j = records(&e, iterator(&e, latest_arn(&e, "Orders"), "TRIM_HORIZON", NULL), 0);
    CPT_EQ_STR(events(j), "");
    /* A day later they are gone. */
    cp_clock_pin_ms(t0 + 3000 + 25LL * 3600 * 1000);
    j = sok(&e, "ListStreams", "{}");
    CPT_EQ_INT(cJSON_GetArraySize(jget(j, "Streams")), 1);
    env_close(&e);
    cp_clock_pin_ms(0);
}

static void iterator_expiry(void)
{
    int64_t t0 = 1764132000000;
    cp_clock_pin_ms(t0);
    cp_dynamo_cfg cfg = {.iterator_ttl_ms = 60000, .stats_max_age_ms = -1};
    env e;
    env_open_cfg(&e, &cfg);
    create_table(&e, "Orders", NULL, "KEYS_ONLY");
    const char *arn = latest_arn(&e, "Orders");
    const char *it = iterator(&e, arn, "LATEST", NULL);
    cp_clock_pin_ms(t0 + 59000);
    cJSON *j = records(&e, it, 0);
    const char *next = jstr(j, "NextShardIterator");
    cp_clock_pin_ms(t0 + 61000);
    char b[1024];
    snprintf(b, sizeof(b), "{'ShardIterator':'%s'}", it);
    reply r = sc(&e, "GetRecords", b);
    CPT_EQ_STR(r.type, "ExpiredIteratorException");
    /* The iterator handed out at t0 + 59 s lives on. */
    records(&e, next, 0);
    env_close(&e);
    cp_clock_pin_ms(0);
}

CPT_LIST = {
    {"records_and_iterators", records_and_iterators},
    {"disable_reenable_and_delete", disable_reenable_and_delete},
    {"iterator_expiry", iterator_expiry},
    {0},
};
