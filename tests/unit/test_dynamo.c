/* SPDX-License-Identifier: MIT */
/*
 * The DynamoDB API through cp_aws_dispatch: the control plane, single-item operations with
 * conditions and every ReturnValues variant, batch writes and reads, transactions with
 * cancellation reasons, consumed capacity, throughput emulation, Kinesis streaming
 * destinations, and the error shapes and messages.
 */
#include "test_dynamo_harness.h"

/* ------------------------------------------------------------------------------------------ */
/* Control plane                                                                               */

static void tables_lifecycle(void)
{
    env e;
    env_open(&e);
    /* An empty listing, with the CRC the wire reference quotes for exactly this body. */
    reply r = ddb(&e, "ListTables", "{}");
    CPT_EQ_INT(r.status, 200);
    CPT_EQ_STR(r.body, "{\"TableNames\":[]}");
    CPT_EQ_STR(r.crc, "1315925753");

    cJSON *j = OK(&e, "CreateTable",
                  "{'TableName':'Orders','AttributeDefinitions':[{'AttributeName':'pk',"
                  "'AttributeType':'S'},{'AttributeName':'sk','AttributeType':'N'}],"
                  "'KeySchema':[{'AttributeName':'pk','KeyType':'HASH'},{'AttributeName':'sk',"
                  "'KeyType':'RANGE'}],'BillingMode':'PAY_PER_REQUEST','StreamSpecification':"
                  "{'StreamEnabled':true,'StreamViewType':'NEW_AND_OLD_IMAGES'},"
                  "'Tags':[{'Key':'team','Value':'data'}]}");
    CPT_EQ_STR(jstr(j, "TableDescription.TableStatus"), "ACTIVE");
    CPT_EQ_STR(jstr(j, "TableDescription.TableArn"),
               "arn:aws:dynamodb:us-east-1:000000000000:table/Orders");
    const char *id = jstr(j, "TableDescription.TableId");
    CPT_CHECK(id && strlen(id) == 36 && id[8] == '-' && id[14] == '4');

    j = OK(&e, "DescribeTable", "{'TableName':'Orders'}");
    const cJSON *t = jget(j, "Table");
    CPT_EQ_STR(jstr(t, "TableName"), "Orders");
    CPT_EQ_STR(jstr(t, "TableStatus"), "ACTIVE");
    CPT_EQ_STR(jstr(t, "TableId"), id);
    CPT_EQ_STR(jtext(t, "KeySchema"), "[{\"AttributeName\":\"pk\",\"KeyType\":\"HASH\"},"
                                      "{\"AttributeName\":\"sk\",\"KeyType\":\"RANGE\"}]");
    CPT_EQ_STR(jtext(t, "AttributeDefinitions"),
               "[{\"AttributeName\":\"pk\",\"AttributeType\":\"S\"},"
               "{\"AttributeName\":\"sk\",\"AttributeType\":\"N\"}]");
    CPT_EQ_STR(jstr(t, "BillingModeSummary.BillingMode"), "PAY_PER_REQUEST");
    CPT_CHECK(jnum(t, "BillingModeSummary.LastUpdateToPayPerRequestDateTime") > 1e9);
    CPT_EQ_STR(jtext(t, "ProvisionedThroughput"),
               "{\"NumberOfDecreasesToday\":0,\"ReadCapacityUnits\":0,\"WriteCapacityUnits\":0}");
    double created = jnum(t, "CreationDateTime");
    CPT_CHECK(created > 1.6e9 && created < 1e11); /* epoch seconds, not milliseconds */
    CPT_EQ_INT(jnum(t, "ItemCount"), 0);
    CPT_EQ_STR(jtext(t, "StreamSpecification"),
               "{\"StreamEnabled\":true,\"StreamViewType\":\"NEW_AND_OLD_IMAGES\"}");
    const char *label = jstr(t, "LatestStreamLabel");
    CPT_CHECK(label && strlen(label) == 23 && label[10] == 'T' && label[19] == '.');
    char arn[256];
    snprintf(arn, sizeof(arn), "arn:aws:dynamodb:us-east-1:000000000000:table/Orders/stream/%s",
             label);
    CPT_EQ_STR(jstr(t, "LatestStreamArn"), arn);

    /* Items are counted. */
    OK(&e, "PutItem", "{'TableName':'Orders','Item':{'pk':{'S':'a'},'sk':{'N':'1'}}}");
    j = OK(&e, "DescribeTable", "{'TableName':'Orders'}");
    CPT_EQ_INT(jnum(j, "Table.ItemCount"), 1);
    CPT_EQ_INT(jnum(j, "Table.TableSizeBytes"), 2 + 1 + 2 + 2); /* pk a, sk 1 */

    ERR(&e, "CreateTable",
        "{'TableName':'Orders','AttributeDefinitions':[{'AttributeName':'pk','AttributeType':"
        "'S'}],'KeySchema':[{'AttributeName':'pk','KeyType':'HASH'}],'BillingMode':"
        "'PAY_PER_REQUEST'}",
        "ResourceInUseException", "Table already exists: Orders");

    /* ListTables pages in name order. */
    const char *names[] = {"t-c", "t-a", "t-b", "t-e", "t-d"};
    for (int i = 0; i < 5; i++) {
        create_table(&e, names[i], NULL, NULL);
    }
    j = OK(&e, "ListTables", "{'Limit':2}");
    CPT_EQ_STR(jtext(j, "TableNames"), "[\"Orders\",\"t-a\"]");
    CPT_EQ_STR(jstr(j, "LastEvaluatedTableName"), "t-a");
    j = OK(&e, "ListTables", "{'Limit':3,'ExclusiveStartTableName':'t-a'}");
    CPT_EQ_STR(jtext(j, "TableNames"), "[\"t-b\",\"t-c\",\"t-d\"]");
    CPT_EQ_STR(jstr(j, "LastEvaluatedTableName"), "t-d");
    j = OK(&e, "ListTables", "{'ExclusiveStartTableName':'t-d'}");
    CPT_EQ_STR(jtext(j, "TableNames"), "[\"t-e\"]");
    CPT_CHECK(jget(j, "LastEvaluatedTableName") == NULL);
    ERR(&e, "ListTables", "{'Limit':101}", "ValidationException",
        "1 validation error detected: Value '101' at 'limit' failed to satisfy constraint: "
        "Member must have value less than or equal to 100");

    j = OK(&e, "DeleteTable", "{'TableName':'t-a'}");
    CPT_EQ_STR(jstr(j, "TableDescription.TableStatus"), "DELETING");
    ERR(&e, "DescribeTable", "{'TableName':'t-a'}", "ResourceNotFoundException",
        "Requested resource not found: Table: t-a not found");
    ERR(&e, "DeleteTable", "{'TableName':'t-a'}", "ResourceNotFoundException",
        "Requested resource not found: Table: t-a not found");
    /* A table ARN works wherever a name does. */
    j = OK(&e, "DescribeTable",
           "{'TableName':'arn:aws:dynamodb:us-east-1:000000000000:table/t-b'}");
    CPT_EQ_STR(jstr(j, "Table.TableName"), "t-b");

    /* Metadata survives a restart. */
    env_reopen(&e);
    j = OK(&e, "DescribeTable", "{'TableName':'Orders'}");
    CPT_EQ_STR(jstr(j, "Table.TableId"), id);
    CPT_EQ_INT(jnum(j, "Table.ItemCount"), 1);
    env_close(&e);
}

static void create_table_validation(void)
{
    env e;
    env_open(&e);
    static const char defs[] =
        "'AttributeDefinitions':[{'AttributeName':'pk','AttributeType':'S'}]";
    static const char keys[] = "'KeySchema':[{'AttributeName':'pk','KeyType':'HASH'}]";
    char b[1024];

    snprintf(b, sizeof(b), "{%s,%s,'BillingMode':'PAY_PER_REQUEST'}", defs, keys);
    ERR(&e, "CreateTable", b, "ValidationException",
        "1 validation error detected: Value null at 'tableName' failed to satisfy constraint: "
        "Member must not be null");
    snprintf(b, sizeof(b), "{'TableName':'ab',%s,%s,'BillingMode':'PAY_PER_REQUEST'}", defs, keys);
    ERR(&e, "CreateTable", b, "ValidationException",
        "1 validation error detected: Value 'ab' at 'tableName' failed to satisfy constraint: "
        "Member must have length greater than or equal to 3");
    snprintf(b, sizeof(b), "{'TableName':'a b',%s,%s,'BillingMode':'BAD'}", defs, keys);
    ERR(&e, "CreateTable", b, "ValidationException",
        "2 validation errors detected: Value 'a b' at 'tableName' failed to satisfy constraint: "
        "Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+; Value 'BAD' at "
        "'billingMode' failed to satisfy constraint: Member must satisfy enum value set: "
        "[PROVISIONED, PAY_PER_REQUEST]");
    snprintf(b, sizeof(b), "{'TableName':'Tb1',%s,%s}", defs, keys);
    ERR(&e, "CreateTable", b, "ValidationException",
        "One or more parameter values were invalid: ReadCapacityUnits and WriteCapacityUnits "
        "must both be specified when BillingMode is PROVISIONED");
    snprintf(b, sizeof(b),
             "{'TableName':'Tb1',%s,%s,'BillingMode':'PAY_PER_REQUEST','ProvisionedThroughput':"
             "{'ReadCapacityUnits':1,'WriteCapacityUnits':1}}",
             defs, keys);
    ERR(&e, "CreateTable", b, "ValidationException",
        "One or more parameter values were invalid: Neither ReadCapacityUnits nor "
        "WriteCapacityUnits can be specified when BillingMode is PAY_PER_REQUEST");
    snprintf(b, sizeof(b),
             "{'TableName':'Tb1',%s,%s,'ProvisionedThroughput':{'ReadCapacityUnits':0,"
             "'WriteCapacityUnits':5}}",
             defs, keys);
    ERR(&e, "CreateTable", b, "ValidationException",
        "1 validation error detected: Value '0' at 'provisionedThroughput.readCapacityUnits' "
        "failed to satisfy constraint: Member must have value greater than or equal to 1");
    ERR(&e, "CreateTable",
        "{'TableName':'Tb1','AttributeDefinitions':[{'AttributeName':'x','AttributeType':'S'}],"
        "'KeySchema':[{'AttributeName':'pk','KeyType':'HASH'}],'BillingMode':'PAY_PER_REQUEST'}",
        "ValidationException",
        "One or more parameter values were invalid: Some index key attributes are not defined "
        "in AttributeDefinitions. Keys: [pk], AttributeDefinitions: [x]");
    ERR(&e, "CreateTable",
        "{'TableName':'Tb1','AttributeDefinitions':[{'AttributeName':'pk','AttributeType':'S'},"
        "{'AttributeName':'sk','AttributeType':'S'}],'KeySchema':[{'AttributeName':'pk',"
        "'KeyType':'RANGE'},{'AttributeName':'sk','KeyType':'HASH'}],'BillingMode':"
        "'PAY_PER_REQUEST'}",
        "ValidationException",
        "Invalid KeySchema: The first KeySchemaElement is not a HASH key type");
    ERR(&e, "CreateTable",
        "{'TableName':'Tb1','AttributeDefinitions':[{'AttributeName':'pk','AttributeType':'S'},"
        "{'AttributeName':'x','AttributeType':'S'}],'KeySchema':[{'AttributeName':'pk',"
        "'KeyType':'HASH'}],'BillingMode':'PAY_PER_REQUEST'}",
        "ValidationException",
        "One or more parameter values were invalid: Some AttributeDefinitions are not used. "
        "AttributeDefinitions: [pk, x], keys used: [pk]");
    ERR(&e, "CreateTable",
        "{'TableName':'Tb1','AttributeDefinitions':[{'AttributeName':'pk','AttributeType':'X'}],"
        "'KeySchema':[],'BillingMode':'PAY_PER_REQUEST'}",
        "ValidationException",
        "2 validation errors detected: Value 'X' at 'attributeDefinitions.1.member."
        "attributeType' failed to satisfy constraint: Member must satisfy enum value set: [B, N, "
        "S]; Value '[]' at 'keySchema' failed to satisfy constraint: Member must have length "
        "greater than or equal to 1");
    snprintf(b, sizeof(b),
             "{'TableName':'Tb1',%s,%s,'BillingMode':'PAY_PER_REQUEST','GlobalSecondaryIndexes':"
             "[{'IndexName':'ByX'}]}",
             defs, keys);
    ERR(&e, "CreateTable", b, "ValidationException",
        "changepipe does not support secondary indexes yet");
    snprintf(b, sizeof(b),
             "{'TableName':'Tb1',%s,%s,'BillingMode':'PAY_PER_REQUEST','StreamSpecification':"
             "{'StreamEnabled':true}}",
             defs, keys);
    ERR(&e, "CreateTable", b, "ValidationException",
        "One or more parameter values were invalid: Table is being created with a stream "
        "enabled, UpdateViewType is required");
    /* Wrong JSON types are SerializationExceptions (capital-M Message). */
    reply r = ddb(&e, "CreateTable", "{'TableName':5}");
    CPT_EQ_INT(r.status, 400);
    CPT_EQ_STR(r.body, "{\"__type\":\"com.amazon.coral.service#SerializationException\","
                       "\"Message\":\"class java.lang.Short can not be converted to an String\"}");
    r = ddb(&e, "CreateTable", "{'TableName':'Tb1','KeySchema':{}}");
    CPT_EQ_STR(r.type, "SerializationException");
    CPT_EQ_STR(r.msg, "Start of structure or map found where not expected.");
    r = call_raw(&e, "DynamoDB_20120810.PutItem", "{\"TableName\":\"T1\",");
    CPT_EQ_INT(r.status, 400);
    CPT_EQ_STR(r.body, "{\"__type\":\"com.amazon.coral.service#SerializationException\"}");
    /* Nothing was created by any of that. */
    cJSON *j = OK(&e, "ListTables", "{}");
    CPT_EQ_STR(jtext(j, "TableNames"), "[]");
    env_close(&e);
}

static void update_table(void)
{
    env e;
    env_open(&e);
    create_table(&e, "Tab", NULL, NULL);
    ERR(&e, "UpdateTable", "{'TableName':'Tab'}", "ValidationException",
        "At least one of ProvisionedThroughput, BillingMode, UpdateStreamEnabled, "
        "GlobalSecondaryIndexUpdates, SSESpecification, ReplicaUpdates, "
        "MultiAccountReplicaReady, ReplicaTransitRoleArn, MultiRegionConsistency, "
        "DeletionProtectionEnabled, OnDemandThroughput, WarmThroughput or TableClass is "
        "required");
    ERR(&e, "UpdateTable", "{'TableName':'Tab','StreamSpecification':{'StreamEnabled':false}}",
        "ValidationException", "Table has no stream to disable: TableName: Tab");
    ERR(&e, "UpdateTable", "{'TableName':'Tab','StreamSpecification':{'StreamEnabled':true}}",
        "ValidationException",
        "One or more parameter values were invalid: If stream is being enabled then "
        "UpdateViewType is required");
    cJSON *j = OK(&e, "UpdateTable",
                  "{'TableName':'Tab','StreamSpecification':{'StreamEnabled':true,"
                  "'StreamViewType':'KEYS_ONLY'}}");
    CPT_EQ_STR(jstr(j, "TableDescription.StreamSpecification.StreamViewType"), "KEYS_ONLY");
    CPT_CHECK(jstr(j, "TableDescription.LatestStreamArn") != NULL);
    ERR(&e, "UpdateTable",
        "{'TableName':'Tab','StreamSpecification':{'StreamEnabled':true,'StreamViewType':"
        "'NEW_IMAGE'}}",
        "ValidationException", "Table already has an enabled stream: TableName: Tab");
    j = OK(&e, "UpdateTable", "{'TableName':'Tab','StreamSpecification':{'StreamEnabled':false}}");
    CPT_EQ_STR(jtext(j, "TableDescription.StreamSpecification"), "{\"StreamEnabled\":false}");
    CPT_CHECK(jstr(j, "TableDescription.LatestStreamArn") != NULL); /* the last one stays */

    /* Billing: to PROVISIONED needs throughput, then throughput changes are tracked. */
    ERR(&e, "UpdateTable", "{'TableName':'Tab','BillingMode':'PROVISIONED'}", "ValidationException",
        "One or more parameter values were invalid: ProvisionedThroughput must be specified "
        "when BillingMode is PROVISIONED");
    j = OK(&e, "UpdateTable",
           "{'TableName':'Tab','BillingMode':'PROVISIONED','ProvisionedThroughput':"
           "{'ReadCapacityUnits':5,'WriteCapacityUnits':7}}");
    CPT_EQ_STR(jstr(j, "TableDescription.BillingModeSummary.BillingMode"), "PROVISIONED");
    CPT_EQ_INT(jnum(j, "TableDescription.ProvisionedThroughput.ReadCapacityUnits"), 5);
    CPT_EQ_INT(jnum(j, "TableDescription.ProvisionedThroughput.WriteCapacityUnits"), 7);
    ERR(&e, "UpdateTable",
        "{'TableName':'Tab','ProvisionedThroughput':{'ReadCapacityUnits':5,'WriteCapacityUnits':7}"
        "}",
        "ValidationException",
        "The provisioned throughput for the table will not change. The requested value equals "
        "the current value. Current ReadCapacityUnits provisioned for the table: 5. Requested "
        "ReadCapacityUnits: 5. Current WriteCapacityUnits provisioned for the table: 7. "
        "Requested WriteCapacityUnits: 7. Refer to the Amazon DynamoDB Developer Guide for "
        "current limits and how to request higher limits.");
    j = OK(&e, "UpdateTable",
           "{'TableName':'Tab','ProvisionedThroughput':{'ReadCapacityUnits':2,'WriteCapacityUnits':"
           "7}}");
    CPT_EQ_INT(jnum(j, "TableDescription.ProvisionedThroughput.NumberOfDecreasesToday"), 1);
    CPT_CHECK(jnum(j, "TableDescription.ProvisionedThroughput.LastDecreaseDateTime") > 1e9);

    /* Deletion protection blocks DeleteTable until turned off. */
    ERR(&e, "UpdateTable",
        "{'TableName':'Tab','DeletionProtectionEnabled':true,'BillingMode':'PAY_PER_REQUEST'}",
        "ValidationException",
        "One or more parameter values were invalid: DeletionProtection modification must be "
        "the only operation in the request");
    OK(&e, "UpdateTable", "{'TableName':'Tab','DeletionProtectionEnabled':true}");
    ERR(&e, "DeleteTable", "{'TableName':'Tab'}", "ValidationException",
        "Resource cannot be deleted as it is currently protected against deletion. Disable "
        "deletion protection first.");
    OK(&e, "UpdateTable", "{'TableName':'Tab','DeletionProtectionEnabled':false}");
    OK(&e, "DeleteTable", "{'TableName':'Tab'}");
    ERR(&e, "UpdateTable", "{'TableName':'Tab','DeletionProtectionEnabled':true}",
        "ResourceNotFoundException", "Requested resource not found: Table: Tab not found");
    env_close(&e);
}

/* ------------------------------------------------------------------------------------------ */
/* Items                                                                                       */

static void put_get_delete(void)
{
    env e;
    env_open(&e);
    create_table(&e, "Tab", "N", NULL);
    reply r =
        ddb(&e, "PutItem",
            "{'TableName':'Tab','Item':{'pk':{'S':'a'},'sk':{'N':'01.50'},'v':{'SS':['x','y']},"
            "'m':{'M':{'n':{'NULL':true}}}}}");
    CPT_EQ_INT(r.status, 200);
    CPT_EQ_STR(r.body, "{}");
    CPT_EQ_STR(r.crc, "2745614147");
    cJSON *j = OK(&e, "GetItem", "{'TableName':'Tab','Key':{'pk':{'S':'a'},'sk':{'N':'1.5'}}}");
    CPT_EQ_STR(jtext(j, "Item.sk"), "{\"N\":\"1.5\"}"); /* canonical number */
    CPT_EQ_STR(jtext(j, "Item.m"), "{\"M\":{\"n\":{\"NULL\":true}}}");
    j = OK(&e, "GetItem",
           "{'TableName':'Tab','Key':{'pk':{'S':'a'},'sk':{'N':'1.5'}},'ProjectionExpression':"
           "'#m.n, sk','ExpressionAttributeNames':{'#m':'m'},'ConsistentRead':true}");
    SAME(j, "Item", "{'sk':{'N':'1.5'},'m':{'M':{'n':{'NULL':true}}}}");
    j = OK(&e, "GetItem",
           "{'TableName':'Tab','Key':{'pk':{'S':'a'},'sk':{'N':'1.5'}},'AttributesToGet':['v']}");
    CPT_EQ_STR(jtext(j, "Item"), "{\"v\":{\"SS\":[\"x\",\"y\"]}}");
    r = ddb(&e, "GetItem", "{'TableName':'Tab','Key':{'pk':{'S':'b'},'sk':{'N':'1'}}}");
    CPT_EQ_STR(r.body, "{}");

    /* ReturnValues ALL_OLD on put and delete. */
    j = OK(&e, "PutItem",
           "{'TableName':'Tab','Item':{'pk':{'S':'a'},'sk':{'N':'1.5'},'n':{'N':'2'}},"
           "'ReturnValues':'ALL_OLD'}");
    CPT_EQ_STR(jtext(j, "Attributes.v"), "{\"SS\":[\"x\",\"y\"]}");
    j = OK(&e, "PutItem",
           "{'TableName':'Tab','Item':{'pk':{'S':'new'},'sk':{'N':'1'}},'ReturnValues':'ALL_OLD'}");
    CPT_CHECK(jget(j, "Attributes") == NULL);
    j = OK(&e, "DeleteItem",
           "{'TableName':'Tab','Key':{'pk':{'S':'a'},'sk':{'N':'1.5'}},'ReturnValues':'ALL_OLD'}");
    CPT_EQ_STR(jtext(j, "Attributes"),
               "{\"pk\":{\"S\":\"a\"},\"sk\":{\"N\":\"1.5\"},\"n\":{\"N\":\"2\"}}");
    r = ddb(&e, "DeleteItem",
            "{'TableName':'Tab','Key':{'pk':{'S':'a'},'sk':{'N':'1.5'}},'ReturnValues':'ALL_OLD'}");
    CPT_EQ_STR(r.body, "{}");

    /* Documented errors. */
    ERR(&e, "PutItem",
        "{'TableName':'Tab','Item':{'pk':{'S':'a'},'sk':{'N':'1'}},'ReturnValues':"
        "'ALL_NEW'}",
        "ValidationException", "ReturnValues can only be ALL_OLD or NONE");
    ERR(&e, "PutItem",
        "{'TableName':'Tab','Item':{'pk':{'S':'a'},'sk':{'N':'1'}},'ReturnValues':"
        "'SOME'}",
        "ValidationException",
        "1 validation error detected: Value 'SOME' at 'returnValues' failed to satisfy "
        "constraint: Member must satisfy enum value set: [NONE, ALL_OLD, UPDATED_OLD, ALL_NEW, "
        "UPDATED_NEW]");
    ERR(&e, "PutItem", "{'TableName':'Tab','Item':{'pk':{'S':'a'}}}", "ValidationException",
        "One or more parameter values were invalid: Missing the key sk in the item");
    ERR(&e, "PutItem", "{'TableName':'Tab','Item':{'pk':{'N':'1'},'sk':{'N':'1'}}}",
        "ValidationException",
        "One or more parameter values were invalid: Type mismatch for key pk expected: S "
        "actual: N");
    ERR(&e, "PutItem", "{'TableName':'Tab','Item':{'pk':{'S':''},'sk':{'N':'1'}}}",
        "ValidationException",
        "One or more parameter values are not valid. The AttributeValue for a key attribute "
        "cannot contain an empty string value. Key: pk");
    ERR(&e, "GetItem", "{'TableName':'Tab','Key':{'pk':{'S':'a'}}}", "ValidationException",
        "The provided key element does not match the schema");
    ERR(&e, "GetItem", "{'TableName':'Tab','Key':{'pk':{'S':'a'},'sk':{'N':'1'},'x':{'S':'y'}}}",
        "ValidationException", "The provided key element does not match the schema");
    ERR(&e, "GetItem", "{'TableName':'Nope','Key':{'pk':{'S':'a'}}}", "ResourceNotFoundException",
        "Requested resource not found");
    ERR(&e, "PutItem", "{'TableName':'Tab'}", "ValidationException",
        "1 validation error detected: Value null at 'item' failed to satisfy constraint: Member "
        "must not be null");
    ERR(&e, "PutItem", "{'TableName':'Tab','Item':{'pk':{'S':'a'},'sk':{'N':'x1'}}}",
        "ValidationException", "The parameter cannot be converted to a numeric value: x1");
    ERR(&e, "PutItem", "{'TableName':'Tab','Item':{'pk':{'S':'a'},'sk':{'N':'1'},'x':{}}}",
        "ValidationException",
        "Supplied AttributeValue is empty, must contain exactly one of the supported datatypes");
    /* A shape error later in the body wins over an earlier value error (AWS's order). */
    reply s = ddb(&e, "PutItem",
                  "{'TableName':'Tab','Item':{'pk':{'S':'a'},'sk':{'N':'x1'}},'ReturnValues':5}");
    CPT_EQ_STR(s.type, "SerializationException");
    ERR(&e, "PutItem",
        "{'TableName':'Tab','Item':{'pk':{'S':'a'},'sk':{'N':'1'}},'ConditionExpression':"
        "'attribute_exists(status)'}",
        "ValidationException",
        "Invalid ConditionExpression: Attribute name is a reserved keyword; reserved keyword: "
        "status");
    ERR(&e, "PutItem",
        "{'TableName':'Tab','Item':{'pk':{'S':'a'},'sk':{'N':'1'}},'ExpressionAttributeValues':"
        "{':x':{'S':'y'}}}",
        "ValidationException",
        "ExpressionAttributeValues can only be specified when using expressions: "
        "ConditionExpression is null");
    /* Members an operation does not have are ignored, as AWS ignores unknown members. */
    OK(&e, "PutItem",
       "{'TableName':'Tab','Item':{'pk':{'S':'z'},'sk':{'N':'1'}},'UpdateExpression':'SET a = b',"
       "'NewField':{'x':[1,2]}}");
    env_close(&e);
}

static void conditional_writes(void)
{
    env e;
    env_open(&e);
    create_table(&e, "Tab", NULL, NULL);
    static const char put_once[] =
        "{'TableName':'Tab','Item':{'pk':{'S':'a'},'v':{'N':'1'}},'ConditionExpression':"
        "'attribute_not_exists(pk)'}";
    OK(&e, "PutItem", put_once);
    reply r = ERR(&e, "PutItem", put_once, "ConditionalCheckFailedException",
                  "The conditional request failed");
    CPT_EQ_STR(r.body, "{\"__type\":\"com.amazonaws.dynamodb.v20120810#"
                       "ConditionalCheckFailedException\",\"message\":\"The conditional request "
                       "failed\"}");
    r = ERR(&e, "PutItem",
            "{'TableName':'Tab','Item':{'pk':{'S':'a'},'v':{'N':'9'}},'ConditionExpression':"
            "'v > :n','ExpressionAttributeValues':{':n':{'N':'5'}},"
            "'ReturnValuesOnConditionCheckFailure':'ALL_OLD'}",
            "ConditionalCheckFailedException", "The conditional request failed");
    cJSON *j = parse(r.body);
    CPT_EQ_STR(jtext(j, "Item"), "{\"pk\":{\"S\":\"a\"},\"v\":{\"N\":\"1\"}}");
    /* The failed writes changed nothing. */
    j = OK(&e, "GetItem", "{'TableName':'Tab','Key':{'pk':{'S':'a'}}}");
    CPT_EQ_STR(jtext(j, "Item.v"), "{\"N\":\"1\"}");
    /* Legacy Expected, as the KCL lease table uses it. */
    OK(&e, "PutItem",
       "{'TableName':'Tab','Item':{'pk':{'S':'a'},'v':{'N':'2'}},'Expected':{'v':{'Value':"
       "{'N':'1'}}}}");
    ERR(&e, "PutItem",
        "{'TableName':'Tab','Item':{'pk':{'S':'a'},'v':{'N':'3'}},'Expected':{'v':{'Value':"
        "{'N':'1'}}}}",
        "ConditionalCheckFailedException", "The conditional request failed");
    ERR(&e, "PutItem",
        "{'TableName':'Tab','Item':{'pk':{'S':'a'}},'Expected':{'v':{'ComparisonOperator':'XX'}}}",
        "ValidationException",
        "1 validation error detected: Value 'XX' at 'expected.v.member.comparisonOperator' "
        "failed to satisfy constraint: Member must satisfy enum value set: [IN, NULL, BETWEEN, "
        "LT, NOT_CONTAINS, EQ, GT, NOT_NULL, NE, LE, BEGINS_WITH, GE, CONTAINS]");
    ERR(&e, "PutItem",
        "{'TableName':'Tab','Item':{'pk':{'S':'a'}},'Expected':{'v':{'Exists':false}},"
        "'ConditionExpression':'attribute_exists(v)'}",
        "ValidationException",
        "Can not use both expression and non-expression parameters in the same request: "
        "Non-expression parameters: {Expected} Expression parameters: {ConditionExpression}");
    /* Delete with a condition. */
    ERR(&e, "DeleteItem",
        "{'TableName':'Tab','Key':{'pk':{'S':'a'}},'ConditionExpression':'v = :one',"
        "'ExpressionAttributeValues':{':one':{'N':'1'}}}",
        "ConditionalCheckFailedException", NULL);
    OK(&e, "DeleteItem",
       "{'TableName':'Tab','Key':{'pk':{'S':'a'}},'ConditionExpression':'v = :two',"
       "'ExpressionAttributeValues':{':two':{'N':'2'}}}");
    reply g = ddb(&e, "GetItem", "{'TableName':'Tab','Key':{'pk':{'S':'a'}}}");
    CPT_EQ_STR(g.body, "{}");
    env_close(&e);
}

static void update_item_return_values(void)
{
    env e;
    env_open(&e);
    create_table(&e, "Tab", NULL, NULL);
    OK(&e, "PutItem",
       "{'TableName':'Tab','Item':{'pk':{'S':'k'},'a':{'N':'1'},'b':{'S':'x'},'c':{'L':[]}}}");
    static const char upd[] =
        "{'TableName':'Tab','Key':{'pk':{'S':'k'}},'UpdateExpression':'SET a = a + :one, d = :d "
        "REMOVE b','ExpressionAttributeValues':{':one':{'N':'1'},':d':{'BOOL':true}},"
        "'ReturnValues':'%s'}";
    struct {
        const char *rv, *want;
    } cases[] = {
        {"UPDATED_OLD", "{\"a\":{\"N\":\"1\"},\"b\":{\"S\":\"x\"}}"},
        {"UPDATED_NEW", "{\"a\":{\"N\":\"3\"},\"d\":{\"BOOL\":true}}"},
        {"ALL_OLD", "{\"pk\":{\"S\":\"k\"},\"a\":{\"N\":\"3\"},\"c\":{\"L\":[]},\"d\":{\"BOOL\":"
                    "true}}"},
        {"ALL_NEW", "{\"pk\":{\"S\":\"k\"},\"a\":{\"N\":\"5\"},\"c\":{\"L\":[]},\"d\":{\"BOOL\":"
                    "true}}"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char b[512];
        snprintf(b, sizeof(b), upd, cases[i].rv);
        cJSON *j = OK(&e, "UpdateItem", b);
        const cJSON *attrs = jget(j, "Attributes");
        CPT_CHECK(attrs != NULL);
        /* Compare as sets of members: order is the item's, which the test need not know. */
        cJSON *want = parse(cases[i].want);
        if (!cJSON_Compare(attrs, want, 1)) {
            CPT_FAIL_AT("%s: got %s want %s", cases[i].rv, jtext(j, "Attributes"), cases[i].want);
        }
    }
    char b[512];
    snprintf(b, sizeof(b), upd, "NONE");
    reply r = ddb(&e, "UpdateItem", b);
    CPT_EQ_STR(r.body, "{}");

    /* UpdateItem on a missing key creates the item; without an update it holds just the key. */
    cJSON *j = OK(&e, "UpdateItem",
                  "{'TableName':'Tab','Key':{'pk':{'S':'new'}},'UpdateExpression':"
                  "'ADD n :five','ExpressionAttributeValues':{':five':{'N':'5'}},'ReturnValues':"
                  "'ALL_NEW'}");
    CPT_EQ_STR(jtext(j, "Attributes"), "{\"pk\":{\"S\":\"new\"},\"n\":{\"N\":\"5\"}}");
    j = OK(&e, "UpdateItem",
           "{'TableName':'Tab','Key':{'pk':{'S':'bare'}},'ReturnValues':'ALL_NEW'}");
    CPT_EQ_STR(jtext(j, "Attributes"), "{\"pk\":{\"S\":\"bare\"}}");
    /* Legacy AttributeUpdates. */
    j = OK(&e, "UpdateItem",
           "{'TableName':'Tab','Key':{'pk':{'S':'new'}},'AttributeUpdates':{'n':{'Action':'ADD',"
           "'Value':{'N':'2'}},'s':{'Value':{'S':'v'}}},'ReturnValues':'UPDATED_NEW'}");
    cJSON *want = parse("{\"n\":{\"N\":\"7\"},\"s\":{\"S\":\"v\"}}");
    CPT_CHECK(cJSON_Compare(jget(j, "Attributes"), want, 1));
    /* Errors. */
    ERR(&e, "UpdateItem",
        "{'TableName':'Tab','Key':{'pk':{'S':'k'}},'UpdateExpression':'SET pk = :v',"
        "'ExpressionAttributeValues':{':v':{'S':'z'}}}",
        "ValidationException",
        "One or more parameter values were invalid: Cannot update attribute pk. This attribute "
        "is part of the key");
    /* A literal of the wrong type is refused when compiled; an attribute of the wrong type only
     * when applied. */
    ERR(&e, "UpdateItem",
        "{'TableName':'Tab','Key':{'pk':{'S':'k'}},'UpdateExpression':'SET a = a + :s',"
        "'ExpressionAttributeValues':{':s':{'S':'z'}}}",
        "ValidationException",
        "Invalid UpdateExpression: Incorrect operand type for operator or function; operator or "
        "function: +, operand type: S");
    OK(&e, "PutItem", "{'TableName':'Tab','Item':{'pk':{'S':'k'},'b':{'S':'x'}}}");
    ERR(&e, "UpdateItem",
        "{'TableName':'Tab','Key':{'pk':{'S':'k'}},'UpdateExpression':'SET b = b + :one',"
        "'ExpressionAttributeValues':{':one':{'N':'1'}}}",
        "ValidationException", "An operand in the update expression has an incorrect data type");
    ERR(&e, "UpdateItem",
        "{'TableName':'Tab','Key':{'pk':{'S':'k'}},'UpdateExpression':'SET a = :v',"
        "'ConditionExpression':'a > :big','ExpressionAttributeValues':{':v':{'N':'0'},':big':"
        "{'N':'100'}},'ReturnValuesOnConditionCheckFailure':'ALL_OLD'}",
        "ConditionalCheckFailedException", "The conditional request failed");
    env_close(&e);
}

/* ------------------------------------------------------------------------------------------ */
/* Capacity                                                                                    */

static char *big_string(size_t n)
{
    char *s = malloc(n + 1);
    memset(s, 'x', n);
    s[n] = 0;
    return keep_str(s);
}

static void consumed_capacity(void)
{
    env e;
    env_open(&e);
    create_table(&e, "Tab", NULL, NULL);
    cJSON *j = OK(&e, "PutItem",
                  "{'TableName':'Tab','Item':{'pk':{'S':'a'}},'ReturnConsumedCapacity':'TOTAL'}");
    CPT_EQ_STR(jtext(j, "ConsumedCapacity"), "{\"TableName\":\"Tab\",\"CapacityUnits\":1}");
    reply r = ddb(&e, "PutItem",
                  "{'TableName':'Tab','Item':{'pk':{'S':'a'}},'ReturnConsumedCapacity':'INDEXES'}");
    CPT_EQ_STR(r.body, "{\"ConsumedCapacity\":{\"TableName\":\"Tab\",\"CapacityUnits\":1.0,"
                       "\"Table\":{\"CapacityUnits\":1.0}}}");
    /* 1,500 bytes of value plus names: two write units; reading it strongly costs one. */
    char b[4096];
    snprintf(b, sizeof(b),
             "{'TableName':'Tab','Item':{'pk':{'S':'b'},'v':{'S':'%s'}},'ReturnConsumedCapacity':"
             "'TOTAL'}",
             big_string(1500));
    j = OK(&e, "PutItem", b);
    CPT_EQ_INT(jnum(j, "ConsumedCapacity.CapacityUnits"), 2);
    /* Overwriting with a small item is charged by the larger (old) image. */
    j = OK(&e, "PutItem",
           "{'TableName':'Tab','Item':{'pk':{'S':'b'}},'ReturnConsumedCapacity':'TOTAL'}");
    CPT_EQ_INT(jnum(j, "ConsumedCapacity.CapacityUnits"), 2);
    j = OK(&e, "GetItem",
           "{'TableName':'Tab','Key':{'pk':{'S':'a'}},'ReturnConsumedCapacity':'TOTAL'}");
    CPT_CHECK(jnum(j, "ConsumedCapacity.CapacityUnits") == 0.5);
    j = OK(&e, "GetItem",
           "{'TableName':'Tab','Key':{'pk':{'S':'a'}},'ConsistentRead':true,"
           "'ReturnConsumedCapacity':'TOTAL'}");
    CPT_CHECK(jnum(j, "ConsumedCapacity.CapacityUnits") == 1.0);
    /* A missing item still costs one read step. */
    j = OK(&e, "GetItem",
           "{'TableName':'Tab','Key':{'pk':{'S':'none'}},'ReturnConsumedCapacity':'TOTAL'}");
    CPT_CHECK(jnum(j, "ConsumedCapacity.CapacityUnits") == 0.5);
    /* 9,000 bytes: three 4 KB steps strongly consistent, 1.5 eventually. */
    char *big = malloc(10000);
    snprintf(big, 10000,
             "{'TableName':'Tab','Item':{'pk':{'S':'c'},'v':{'S':'%s'}},'ReturnConsumedCapacity':"
             "'TOTAL'}",
             big_string(9000));
    j = OK(&e, "PutItem", big);
    free(big);
    CPT_EQ_INT(jnum(j, "ConsumedCapacity.CapacityUnits"), 9);
    j = OK(&e, "GetItem",
           "{'TableName':'Tab','Key':{'pk':{'S':'c'}},'ReturnConsumedCapacity':'TOTAL'}");
    CPT_CHECK(jnum(j, "ConsumedCapacity.CapacityUnits") == 1.5);
    j = OK(&e, "DeleteItem",
           "{'TableName':'Tab','Key':{'pk':{'S':'c'}},'ReturnConsumedCapacity':'TOTAL'}");
    CPT_EQ_INT(jnum(j, "ConsumedCapacity.CapacityUnits"), 9);
    /* Batches: per item rounding, summed per table. */
    j = OK(&e, "BatchWriteItem",
           "{'RequestItems':{'Tab':[{'PutRequest':{'Item':{'pk':{'S':'x1'}}}},{'PutRequest':"
           "{'Item':{'pk':{'S':'x2'}}}},{'DeleteRequest':{'Key':{'pk':{'S':'gone'}}}}]},"
           "'ReturnConsumedCapacity':'TOTAL'}");
    CPT_EQ_STR(jtext(j, "ConsumedCapacity"), "[{\"TableName\":\"Tab\",\"CapacityUnits\":3}]");
    j = OK(
        &e, "BatchGetItem",
        "{'RequestItems':{'Tab':{'Keys':[{'pk':{'S':'x1'}},{'pk':{'S':'x2'}},{'pk':{'S':'no'}}]}},"
        "'ReturnConsumedCapacity':'TOTAL'}");
    CPT_CHECK(jnum(j, "ConsumedCapacity.0.CapacityUnits") == 1.5);
    /* Transactions cost double. */
    j = OK(&e, "TransactWriteItems",
           "{'TransactItems':[{'Put':{'TableName':'Tab','Item':{'pk':{'S':'t1'}}}},{'Put':"
           "{'TableName':'Tab','Item':{'pk':{'S':'t2'}}}}],'ReturnConsumedCapacity':'TOTAL'}");
    CPT_EQ_STR(jtext(j, "ConsumedCapacity"), "[{\"TableName\":\"Tab\",\"CapacityUnits\":4}]");
    ERR(&e, "GetItem", "{'TableName':'Tab','Key':{'pk':{'S':'a'}},'ReturnConsumedCapacity':'ALL'}",
        "ValidationException",
        "1 validation error detected: Value 'ALL' at 'returnConsumedCapacity' failed to satisfy "
        "constraint: Member must satisfy enum value set: [INDEXES, TOTAL, NONE]");
    env_close(&e);
}

/* ------------------------------------------------------------------------------------------ */
/* Batches                                                                                     */

static char *write_batch(const char *table, int first, int n, int dup)
{
    cp_buf b = CP_BUF_INIT;
    cp_buf_printf(&b, "{'RequestItems':{'%s':[", table);
    for (int i = 0; i < n; i++) {
        cp_buf_printf(&b, "%s{'PutRequest':{'Item':{'pk':{'S':'k%d'},'v':{'N':'%d'}}}}",
                      i ? "," : "", dup && i == n - 1 ? first : first + i, i);
    }
    cp_buf_puts(&b, "]}}");
    return keep_str(b.p);
}

static void batch_write(void)
{
    env e;
    env_open(&e);
    create_table(&e, "Tab", NULL, NULL);
    create_table(&e, "Usr", NULL, NULL);
    reply r = ddb(&e, "BatchWriteItem", write_batch("Tab", 0, 25, 0));
    CPT_EQ_INT(r.status, 200);
    CPT_EQ_STR(r.body, "{\"UnprocessedItems\":{}}");
    cJSON *j = OK(&e, "Scan", "{'TableName':'Tab','Select':'COUNT'}");
    CPT_EQ_INT(jnum(j, "Count"), 25);

    ERR(&e, "BatchWriteItem", write_batch("Tab", 100, 26, 0), "ValidationException",
        "1 validation error detected: Value '{Tab=[...]}' at 'requestItems' failed to satisfy "
        "constraint: Map value must satisfy constraint: [Member must have length less than or "
        "equal to 25, Member must have length greater than or equal to 1]");
    ERR(&e, "BatchWriteItem", write_batch("Tab", 100, 3, 1), "ValidationException",
        "Provided list of item keys contains duplicates");
    /* A put and a delete of one key is a duplicate too; nothing of the batch is written. */
    ERR(&e, "BatchWriteItem",
        "{'RequestItems':{'Tab':[{'PutRequest':{'Item':{'pk':{'S':'dd'}}}},{'DeleteRequest':"
        "{'Key':{'pk':{'S':'dd'}}}}]}}",
        "ValidationException", "Provided list of item keys contains duplicates");
    reply g = ddb(&e, "GetItem", "{'TableName':'Tab','Key':{'pk':{'S':'dd'}}}");
    CPT_EQ_STR(g.body, "{}");
    ERR(&e, "BatchWriteItem", "{'RequestItems':{'Tab':[{'PutRequest':{'Item':{'x':{'S':'1'}}}}]}}",
        "ValidationException", "The provided key element does not match the schema");
    ERR(&e, "BatchWriteItem",
        "{'RequestItems':{'Nope':[{'PutRequest':{'Item':{'pk':{'S':'1'}}}}]}}",
        "ResourceNotFoundException", "Requested resource not found");
    ERR(&e, "BatchWriteItem", "{'RequestItems':{}}", "ValidationException",
        "1 validation error detected: Value '{}' at 'requestItems' failed to satisfy constraint: "
        "Member must have length greater than or equal to 1");
    ERR(&e, "BatchWriteItem",
        "{'RequestItems':{'Tab':[{'PutRequest':{'Item':{'pk':{'S':'1'}}},'DeleteRequest':{'Key':"
        "{'pk':{'S':'1'}}}}]}}",
        "ValidationException",
        "Supplied AttributeValue has more than one datatypes set, must contain exactly one of "
        "the supported datatypes");
    /* Two tables, 15 + 15 requests: over the call's total. */
    cp_buf b = CP_BUF_INIT;
    cp_buf_puts(&b, "{'RequestItems':{'Tab':[");
    for (int i = 0; i < 15; i++) {
        cp_buf_printf(&b, "%s{'DeleteRequest':{'Key':{'pk':{'S':'z%d'}}}}", i ? "," : "", i);
    }
    cp_buf_puts(&b, "],'Usr':[");
    for (int i = 0; i < 15; i++) {
        cp_buf_printf(&b, "%s{'DeleteRequest':{'Key':{'pk':{'S':'z%d'}}}}", i ? "," : "", i);
    }
    cp_buf_puts(&b, "]}}");
    ERR(&e, "BatchWriteItem", b.p, "ValidationException",
        "Too many items requested for the BatchWriteItem call");
    cp_buf_free(&b);
    /* Mixed tables and deletes. */
    j = OK(
        &e, "BatchWriteItem",
        "{'RequestItems':{'Tab':[{'DeleteRequest':{'Key':{'pk':{'S':'k0'}}}}],'Usr':[{'PutRequest':"
        "{'Item':{'pk':{'S':'u1'}}}}]}}");
    CPT_EQ_STR(jtext(j, "UnprocessedItems"), "{}");
    j = OK(&e, "Scan", "{'TableName':'Tab','Select':'COUNT'}");
    CPT_EQ_INT(jnum(j, "Count"), 24);
    env_close(&e);
}

static void batch_get(void)
{
    env e;
    env_open(&e);
    create_table(&e, "Tab", NULL, NULL);
    create_table(&e, "Usr", "S", NULL);
    OK(&e, "BatchWriteItem", write_batch("Tab", 0, 10, 0));
    OK(&e, "PutItem", "{'TableName':'Usr','Item':{'pk':{'S':'a'},'sk':{'S':'b'},'x':{'N':'1'}}}");
    cJSON *j = OK(&e, "BatchGetItem",
                  "{'RequestItems':{'Tab':{'Keys':[{'pk':{'S':'k1'}},{'pk':{'S':'k9'}},{'pk':"
                  "{'S':'missing'}}],'ProjectionExpression':'#v','ExpressionAttributeNames':"
                  "{'#v':'v'}},'Usr':{'Keys':[{'pk':{'S':'a'},'sk':{'S':'b'}}],'ConsistentRead':"
                  "true}}}");
    CPT_EQ_STR(jtext(j, "Responses.Tab"), "[{\"v\":{\"N\":\"1\"}},{\"v\":{\"N\":\"9\"}}]");
    CPT_EQ_STR(jtext(j, "Responses.Usr"),
               "[{\"pk\":{\"S\":\"a\"},\"sk\":{\"S\":\"b\"},\"x\":{\"N\":\"1\"}}]");
    CPT_EQ_STR(jtext(j, "UnprocessedKeys"), "{}");
    ERR(&e, "BatchGetItem",
        "{'RequestItems':{'Tab':{'Keys':[{'pk':{'S':'k1'}},{'pk':{'S':'k1'}}]}}}",
        "ValidationException", "Provided list of item keys contains duplicates");
    ERR(&e, "BatchGetItem", "{'RequestItems':{'Usr':{'Keys':[{'pk':{'S':'a'}}]}}}",
        "ValidationException", "The provided key element does not match the schema");
    cp_buf b = CP_BUF_INIT;
    cp_buf_puts(&b, "{'RequestItems':{'Tab':{'Keys':[");
    for (int i = 0; i < 101; i++) {
        cp_buf_printf(&b, "%s{'pk':{'S':'k%d'}}", i ? "," : "", i);
    }
    cp_buf_puts(&b, "]}}}");
    ERR(&e, "BatchGetItem", b.p, "ValidationException",
        "1 validation error detected: Value '[...]' at 'requestItems.Tab.member.keys' failed to "
        "satisfy constraint: Member must have length less than or equal to 100");
    cp_buf_free(&b);
    ERR(&e, "BatchGetItem",
        "{'RequestItems':{'Tab':{'Keys':[{'pk':{'S':'k1'}}],'ProjectionExpression':'v',"
        "'ExpressionAttributeNames':{'#unused':'v'}}}}",
        "ValidationException",
        "Value provided in ExpressionAttributeNames unused in expressions: keys: {#unused}");
    env_close(&e);
}

/* A throttle hook that refuses keys starting with "hot". */
static int refuse_hot(void *ctx, const cp_dynamo_usage *u)
{
    int *calls = ctx;
    (*calls)++;
    return u->hash_key.len >= 3 && memcmp(u->hash_key.p, "hot", 3) == 0 ? CP_EAGAIN : CP_OK;
}

static void throttling_hook(void)
{
    int calls = 0;
    cp_dynamo_throttle th = {CP_DYNAMO_THROTTLE_ABI, refuse_hot, &calls};
    cp_dynamo_cfg cfg = {.throttle = &th, .stats_max_age_ms = -1};
    env e;
    env_open_cfg(&e, &cfg);
    create_table(&e, "Tab", NULL, NULL);
    OK(&e, "CreateTable",
       "{'TableName':'Prv','AttributeDefinitions':[{'AttributeName':'pk','AttributeType':'S'}],"
       "'KeySchema':[{'AttributeName':'pk','KeyType':'HASH'}],'ProvisionedThroughput':"
       "{'ReadCapacityUnits':1,'WriteCapacityUnits':1}}");
    OK(&e, "PutItem", "{'TableName':'Tab','Item':{'pk':{'S':'cold'}}}");
    CPT_CHECK(calls > 0);
    reply r = ERR(&e, "PutItem", "{'TableName':'Tab','Item':{'pk':{'S':'hot1'}}}",
                  "ThrottlingException", NULL);
    CPT_CHECK(strstr(r.body, "com.amazon.coral.availability#ThrottlingException") != NULL);
    ERR(&e, "GetItem", "{'TableName':'Prv','Key':{'pk':{'S':'hot1'}}}",
        "ProvisionedThroughputExceededException",
        "The level of configured provisioned throughput for the table was exceeded. Consider "
        "increasing your provisioning level with the UpdateTable API.");
    cJSON *j = OK(&e, "BatchWriteItem",
                  "{'RequestItems':{'Tab':[{'PutRequest':{'Item':{'pk':{'S':'hot2'},'v':{'N':"
                  "'1'}}}},{'PutRequest':{'Item':{'pk':{'S':'ok'}}}},{'DeleteRequest':{'Key':"
                  "{'pk':{'S':'hot3'}}}}]}}");
    CPT_EQ_STR(
        jtext(j, "UnprocessedItems"),
        "{\"Tab\":[{\"PutRequest\":{\"Item\":{\"pk\":{\"S\":\"hot2\"},\"v\":{\"N\":\"1\"}}}},"
        "{\"DeleteRequest\":{\"Key\":{\"pk\":{\"S\":\"hot3\"}}}}]}");
    r = ddb(&e, "GetItem", "{'TableName':'Tab','Key':{'pk':{'S':'ok'}}}");
    CPT_EQ_STR(r.body, "{\"Item\":{\"pk\":{\"S\":\"ok\"}}}");
    ERR(&e, "BatchWriteItem",
        "{'RequestItems':{'Tab':[{'PutRequest':{'Item':{'pk':{'S':'hot'}}}}]}}",
        "ThrottlingException", NULL);
    j = OK(&e, "BatchGetItem",
           "{'RequestItems':{'Tab':{'Keys':[{'pk':{'S':'ok'}},{'pk':{'S':'hot9'}}],"
           "'ConsistentRead':true}}}");
    CPT_EQ_STR(jtext(j, "UnprocessedKeys"),
               "{\"Tab\":{\"Keys\":[{\"pk\":{\"S\":\"hot9\"}}],\"ConsistentRead\":true}}");
    r = ERR(&e, "TransactWriteItems",
            "{'TransactItems':[{'Put':{'TableName':'Tab','Item':{'pk':{'S':'ok2'}}}},{'Put':"
            "{'TableName':'Tab','Item':{'pk':{'S':'hot4'}}}}]}",
            "TransactionCanceledException",
            "Transaction cancelled, please refer cancellation reasons for specific reasons "
            "[None, ThrottlingError]");
    env_close(&e);
}

/* ------------------------------------------------------------------------------------------ */
/* Transactions                                                                                */

static void transactions(void)
{
    env e;
    env_open(&e);
    create_table(&e, "Accounts", NULL, NULL);
    create_table(&e, "Ledger", NULL, NULL);
    OK(&e, "PutItem", "{'TableName':'Accounts','Item':{'pk':{'S':'alice'},'balance':{'N':'50'}}}");
    OK(&e, "PutItem",
       "{'TableName':'Accounts','Item':{'pk':{'S':'bob'},'balance':{'N':'5'},'nick':{'S':'b'}}}");
    static const char transfer[] =
        "{'TransactItems':["
        "{'ConditionCheck':{'TableName':'Accounts','Key':{'pk':{'S':'alice'}},"
        "'ConditionExpression':'balance >= :amt','ExpressionAttributeValues':{':amt':{'N':'%s'}}}},"
        "{'Update':{'TableName':'Accounts','Key':{'pk':{'S':'bob'}},'UpdateExpression':"
        "'SET balance = balance + :amt','ExpressionAttributeValues':{':amt':{'N':'%s'}}}},"
        "{'Put':{'TableName':'Ledger','Item':{'pk':{'S':'%s'}},'ConditionExpression':"
        "'attribute_not_exists(pk)','ReturnValuesOnConditionCheckFailure':'ALL_OLD'}},"
        "{'Delete':{'TableName':'Accounts','Key':{'pk':{'S':'carol'}}}}],"
        "'ClientRequestToken':'c7a3f1d2-0000-4000-8000-000000000001'}";
    char b[2048];
    snprintf(b, sizeof(b), transfer, "10", "10", "tx1");
    reply r = ddb(&e, "TransactWriteItems", b);
    CPT_EQ_INT(r.status, 200);
    CPT_EQ_STR(r.body, "{}");
    cJSON *j = OK(&e, "GetItem", "{'TableName':'Accounts','Key':{'pk':{'S':'bob'}}}");
    CPT_EQ_STR(jtext(j, "Item.balance"), "{\"N\":\"15\"}");

    /* Both the check (alice has 50 < 100) and the ledger put (tx1 exists) fail: every reason
     * is reported, and nothing is written. */
    snprintf(b, sizeof(b), transfer, "100", "100", "tx1");
    r = ERR(&e, "TransactWriteItems", b, "TransactionCanceledException",
            "Transaction cancelled, please refer cancellation reasons for specific reasons "
            "[ConditionalCheckFailed, None, ConditionalCheckFailed, None]");
    CPT_CHECK(strstr(r.body, "\"Message\":\"Transaction cancelled") != NULL); /* capital M */
    j = parse(r.body);
    CPT_EQ_STR(jtext(j, "CancellationReasons"),
               "[{\"Code\":\"ConditionalCheckFailed\",\"Message\":\"The conditional request "
               "failed\"},{\"Code\":\"None\"},{\"Code\":\"ConditionalCheckFailed\",\"Message\":"
               "\"The conditional request failed\",\"Item\":{\"pk\":{\"S\":\"tx1\"}}},"
               "{\"Code\":\"None\"}]");
    j = OK(&e, "GetItem", "{'TableName':'Accounts','Key':{'pk':{'S':'bob'}}}");
    CPT_EQ_STR(jtext(j, "Item.balance"), "{\"N\":\"15\"}");

    /* Only the last action fails. */
    snprintf(b, sizeof(b), transfer, "10", "10", "tx1");
    r = ERR(&e, "TransactWriteItems", b, "TransactionCanceledException",
            "Transaction cancelled, please refer cancellation reasons for specific reasons "
            "[None, None, ConditionalCheckFailed, None]");
    /* A runtime validation failure cancels with ValidationError. */
    r = ERR(&e, "TransactWriteItems",
            "{'TransactItems':[{'Put':{'TableName':'Ledger','Item':{'pk':{'S':'tx9'}}}},"
            "{'Update':{'TableName':'Accounts','Key':{'pk':{'S':'bob'}},'UpdateExpression':"
            "'SET nick = nick + :one','ExpressionAttributeValues':{':one':{'N':'1'}}}}]}",
            "TransactionCanceledException",
            "Transaction cancelled, please refer cancellation reasons for specific reasons "
            "[None, ValidationError]");
    reply g = ddb(&e, "GetItem", "{'TableName':'Ledger','Key':{'pk':{'S':'tx9'}}}");
    CPT_EQ_STR(g.body, "{}");

    ERR(&e, "TransactWriteItems",
        "{'TransactItems':[{'Put':{'TableName':'Ledger','Item':{'pk':{'S':'a'}}}},{'Delete':"
        "{'TableName':'Ledger','Key':{'pk':{'S':'a'}}}}]}",
        "ValidationException",
        "Transaction request cannot include multiple operations on one item");
    ERR(&e, "TransactWriteItems", "{'TransactItems':[{'Nothing':{}}]}", "ValidationException",
        "The action or operation requested is invalid. Verify that the action is typed "
        "correctly.");
    ERR(&e, "TransactWriteItems", "{'TransactItems':[]}", "ValidationException",
        "1 validation error detected: Value '[...]' at 'transactItems' failed to satisfy "
        "constraint: Member must have length greater than or equal to 1");
    cp_buf many = CP_BUF_INIT;
    cp_buf_puts(&many, "{'TransactItems':[");
    for (int i = 0; i < 150; i++) {
        cp_buf_printf(&many, "%s{'Put':{'TableName':'Ledger','Item':{'pk':{'S':'m%d'}}}}",
                      i ? "," : "", i);
    }
    cp_buf_puts(&many, "]}");
    ERR(&e, "TransactWriteItems", many.p, "ValidationException",
        "1 validation error detected: Value '[...]' at 'transactItems' failed to satisfy "
        "constraint: Member must have length less than or equal to 100");
    cp_buf_free(&many);
    ERR(&e, "TransactWriteItems",
        "{'TransactItems':[{'Put':{'TableName':'Nope','Item':{'pk':{'S':'a'}}}}]}",
        "ResourceNotFoundException", "Requested resource not found");

    /* TransactGetItems answers in request order, {} for a missing item. */
    j = OK(&e, "TransactGetItems",
           "{'TransactItems':[{'Get':{'TableName':'Accounts','Key':{'pk':{'S':'bob'}},"
           "'ProjectionExpression':'balance'}},{'Get':{'TableName':'Ledger','Key':{'pk':"
           "{'S':'none'}}}},{'Get':{'TableName':'Ledger','Key':{'pk':{'S':'tx1'}}}}],"
           "'ReturnConsumedCapacity':'TOTAL'}");
    CPT_EQ_STR(jtext(j, "Responses"), "[{\"Item\":{\"balance\":{\"N\":\"15\"}}},{},{\"Item\":"
                                      "{\"pk\":{\"S\":\"tx1\"}}}]");
    CPT_EQ_STR(jtext(j, "ConsumedCapacity"),
               "[{\"TableName\":\"Accounts\",\"CapacityUnits\":2},{\"TableName\":\"Ledger\","
               "\"CapacityUnits\":4}]");
    env_close(&e);
}

/* ------------------------------------------------------------------------------------------ */
/* Kinesis streaming destinations                                                              */

static void kinesis_destinations(void)
{
    env e;
    env_open(&e);
    create_table(&e, "Orders", NULL, NULL);
    cp_err err = {0};
    CPT_EQ_INT(cp_streams_create(e.streams, CP_SLICE("orders-cdc"), CP_STREAM_ON_DEMAND, 0, &err),
               CP_OK);
    static const char arn[] = "arn:aws:kinesis:us-east-1:000000000000:stream/orders-cdc";
    char b[512];
    snprintf(b, sizeof(b), "{'TableName':'Orders','StreamArn':'%s'}", arn);
    cJSON *j = OK(&e, "DescribeKinesisStreamingDestination", "{'TableName':'Orders'}");
    CPT_EQ_STR(jtext(j, NULL), "{\"TableName\":\"Orders\",\"KinesisDataStreamDestinations\":[]}");
    reply r = ddb(&e, "EnableKinesisStreamingDestination", b);
    CPT_EQ_INT(r.status, 200);
    char want[512];
    snprintf(want, sizeof(want),
             "{\"TableName\":\"Orders\",\"StreamArn\":\"%s\",\"DestinationStatus\":\"ENABLING\"}",
             arn);
    CPT_EQ_STR(r.body, want);
    j = OK(&e, "DescribeKinesisStreamingDestination", "{'TableName':'Orders'}");
    CPT_EQ_STR(jstr(j, "KinesisDataStreamDestinations.0.DestinationStatus"), "ACTIVE");
    CPT_EQ_STR(jstr(j, "KinesisDataStreamDestinations.0.StreamArn"), arn);
    CPT_EQ_STR(jstr(j, "KinesisDataStreamDestinations.0.ApproximateCreationDateTimePrecision"),
               "MILLISECOND");
    /* The store now forwards this table's changes to the stream. */
    cp_table_info t = {0};
    CPT_EQ_INT(cp_db_get_table(e.db, "Orders", &t, &err), CP_OK);
    CPT_EQ_INT(t.ndest, 1);
    CPT_EQ_STR(t.dest[0].stream_name, "orders-cdc");
    CPT_EQ_INT(t.dest[0].active, 1);
    cp_table_info_clear(&t);
    ERR(&e, "EnableKinesisStreamingDestination", b, "ValidationException",
        "Table is not in a valid state to enable Kinesis Streaming Destination: "
        "EnableKinesisStreamingDestination must be DISABLED or ENABLE_FAILED to perform ENABLE "
        "operation.");
    snprintf(b, sizeof(b),
             "{'TableName':'Orders','StreamArn':'%s','UpdateKinesisStreamingConfiguration':"
             "{'ApproximateCreationDateTimePrecision':'MICROSECOND'}}",
             arn);
    j = OK(&e, "UpdateKinesisStreamingDestination", b);
    CPT_EQ_STR(jstr(j, "DestinationStatus"), "UPDATING");
    j = OK(&e, "DescribeKinesisStreamingDestination", "{'TableName':'Orders'}");
    CPT_EQ_STR(jstr(j, "KinesisDataStreamDestinations.0.ApproximateCreationDateTimePrecision"),
               "MICROSECOND");
    ERR(&e, "EnableKinesisStreamingDestination",
        "{'TableName':'Orders','StreamArn':'arn:aws:kinesis:us-east-1:000000000000:stream/nope'}",
        "ResourceNotFoundException", NULL);
    ERR(&e, "EnableKinesisStreamingDestination",
        "{'TableName':'Nope','StreamArn':'arn:aws:kinesis:us-east-1:000000000000:stream/"
        "orders-cdc'}",
        "ResourceNotFoundException", "Requested resource not found: Table: Nope not found");
    snprintf(b, sizeof(b), "{'TableName':'Orders','StreamArn':'%s'}", arn);
    j = OK(&e, "DisableKinesisStreamingDestination", b);
    CPT_EQ_STR(jstr(j, "DestinationStatus"), "DISABLING");
    j = OK(&e, "DescribeKinesisStreamingDestination", "{'TableName':'Orders'}");
    CPT_EQ_STR(jstr(j, "KinesisDataStreamDestinations.0.DestinationStatus"), "DISABLED");
    ERR(&e, "DisableKinesisStreamingDestination", b, "ValidationException",
        "Table is not in a valid state to enable Kinesis Streaming Destination: "
        "KinesisStreamingDestination must be ACTIVE to perform DISABLE operation.");
    /* Re-enabling reuses the destination. */
    OK(&e, "EnableKinesisStreamingDestination", b);
    j = OK(&e, "DescribeKinesisStreamingDestination", "{'TableName':'Orders'}");
    CPT_EQ_INT(cJSON_GetArraySize(jget(j, "KinesisDataStreamDestinations")), 1);
    CPT_EQ_STR(jstr(j, "KinesisDataStreamDestinations.0.DestinationStatus"), "ACTIVE");
    env_close(&e);
}

static void unknown_operation_and_framing(void)
{
    env e;
    env_open(&e);
    reply r = call_raw(&e, "DynamoDB_20120810.NoSuchOp", "{}");
    CPT_EQ_INT(r.status, 400);
    CPT_EQ_STR(r.type, "UnknownOperationException");
    r = call_raw(&e, "DynamoDB_20120810.Query", "[1]");
    CPT_EQ_STR(r.type, "SerializationException");
    r = call_raw(&e, "DynamoDB_20120810.BatchWriteItem", "{\"RequestItems\":{}} x");
    CPT_EQ_STR(r.type, "SerializationException");
    r = call_raw(&e, "DynamoDB_20120810.GetItem", "{\"TableName\":\"Tab\",\"Key\":[]}");
    CPT_EQ_STR(r.type, "SerializationException");
    CPT_EQ_STR(r.msg, "Start of list found where not expected");
    r = call_raw(&e, "DynamoDB_20120810.GetItem",
                 "{\"TableName\":\"Tab\",\"ConsistentRead\":\"yes\"}");
    CPT_EQ_STR(r.msg, "'YES' can not be converted to an Boolean");
    env_close(&e);
}

CPT_LIST = {
    {"tables_lifecycle", tables_lifecycle},
    {"create_table_validation", create_table_validation},
    {"update_table", update_table},
    {"put_get_delete", put_get_delete},
    {"conditional_writes", conditional_writes},
    {"update_item_return_values", update_item_return_values},
    {"consumed_capacity", consumed_capacity},
    {"batch_write", batch_write},
    {"batch_get", batch_get},
    {"throttling_hook", throttling_hook},
    {"transactions", transactions},
    {"kinesis_destinations", kinesis_destinations},
    {"unknown_operation_and_framing", unknown_operation_and_framing},
    {0},
};
