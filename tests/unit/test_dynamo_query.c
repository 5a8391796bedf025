/* SPDX-License-Identifier: MIT */
/*
 * Query and Scan through cp_aws_dispatch: key conditions (expression and legacy), sort order,
 * filters (Count vs ScannedCount), projection, Select, Limit paging with LastEvaluatedKey
 * (including a page that ends exactly on the last item), the 1 MB read-size page boundary,
 * parallel scan segments, capacity, and the documented errors.
 */
#include "test_dynamo_harness.h"

/* Partition 'p' with sort keys 1..n and a 'even' attribute; partition 'q' with one item. */
static void fill(env *e, int n)
{
    char b[256];
    for (int i = 1; i <= n; i++) {
        snprintf(b, sizeof(b),
                 "{'TableName':'Tab','Item':{'pk':{'S':'p'},'sk':{'N':'%d'},'even':{'BOOL':%s},"
                 "'v':{'S':'val%d'}}}",
                 i, i % 2 ? "false" : "true", i);
        OK(e, "PutItem", b);
    }
    OK(e, "PutItem", "{'TableName':'Tab','Item':{'pk':{'S':'q'},'sk':{'N':'1'}}}");
}

/* The sort keys of Items, e.g. "1,2,3". */
static const char *sks(const cJSON *j)
{
    cp_buf b = CP_BUF_INIT;
    const cJSON *it;
    cJSON_ArrayForEach(it, jget(j, "Items"))
    {
        cp_buf_printf(&b, "%s%s", b.len ? "," : "", jstr(it, "sk.N"));
    }
    if (!b.p) {
        cp_buf_puts(&b, "");
    }
    return keep_str(b.p);
}

static void query_basics(void)
{
    env e;
    env_open(&e);
    create_table(&e, "Tab", "N", NULL);
    fill(&e, 10);
    cJSON *j =
        OK(&e, "Query",
           "{'TableName':'Tab','KeyConditionExpression':'pk = :p','ExpressionAttributeValues':"
           "{':p':{'S':'p'}}}");
    CPT_EQ_STR(sks(j), "1,2,3,4,5,6,7,8,9,10"); /* numeric order */
    CPT_EQ_INT(jnum(j, "Count"), 10);
    CPT_EQ_INT(jnum(j, "ScannedCount"), 10);
    CPT_CHECK(jget(j, "LastEvaluatedKey") == NULL);
    j = OK(&e, "Query",
           "{'TableName':'Tab','KeyConditionExpression':':p = pk AND sk BETWEEN :a AND :b',"
           "'ExpressionAttributeValues':{':p':{'S':'p'},':a':{'N':'3'},':b':{'N':'6'}},"
           "'ScanIndexForward':false}");
    CPT_EQ_STR(sks(j), "6,5,4,3");
    j = OK(&e, "Query",
           "{'TableName':'Tab','KeyConditionExpression':'pk = :p AND sk > :a','FilterExpression':"
           "'even = :t','ExpressionAttributeValues':{':p':{'S':'p'},':a':{'N':'4'},':t':"
           "{'BOOL':true}},'ProjectionExpression':'sk'}");
    CPT_EQ_STR(sks(j), "6,8,10");
    CPT_EQ_INT(jnum(j, "Count"), 3);
    CPT_EQ_INT(jnum(j, "ScannedCount"), 6);
    CPT_EQ_STR(jtext(j, "Items.0"), "{\"sk\":{\"N\":\"6\"}}");
    ERR(&e, "Query",
        "{'TableName':'Tab','KeyConditionExpression':'pk = :p','ExpressionAttributeValues':"
        "{':p':{'S':'p'}},'Select':'COUNT','FilterExpression':'even = :f'}",
        "ValidationException",
        "Invalid FilterExpression: An expression attribute value used in expression is not "
        "defined; attribute value: :f");
    env_close(&e);
}

static void query_select_count_and_legacy(void)
{
    env e;
    env_open(&e);
    create_table(&e, "Tab", "N", NULL);
    fill(&e, 10);
    reply r = ddb(&e, "Query",
                  "{'TableName':'Tab','KeyConditionExpression':'pk = :p','FilterExpression':"
                  "'even = :t','ExpressionAttributeValues':{':p':{'S':'p'},':t':{'BOOL':true}},"
                  "'Select':'COUNT'}");
    CPT_EQ_INT(r.status, 200);
    CPT_EQ_STR(r.body, "{\"Count\":5,\"ScannedCount\":10}");
    /* Legacy KeyConditions + QueryFilter + AttributesToGet (the KCL's dialect). */
    cJSON *j = OK(&e, "Query",
                  "{'TableName':'Tab','KeyConditions':{'pk':{'ComparisonOperator':'EQ',"
                  "'AttributeValueList':[{'S':'p'}]},'sk':{'ComparisonOperator':'LE',"
                  "'AttributeValueList':[{'N':'4'}]}},'QueryFilter':{'v':{'ComparisonOperator':"
                  "'IN','AttributeValueList':[{'S':'val1'},{'S':'val3'},{'S':'val9'}]}},"
                  "'AttributesToGet':['sk','v']}");
    CPT_EQ_STR(sks(j), "1,3");
    SAME(j, "Items.1", "{'sk':{'N':'3'},'v':{'S':'val3'}}");
    /* Errors. */
    ERR(&e, "Query", "{'TableName':'Tab'}", "ValidationException",
        "Either the KeyConditions or KeyConditionExpression parameter must be specified in the "
        "request.");
    ERR(&e, "Query",
        "{'TableName':'Tab','KeyConditionExpression':'sk = :a','ExpressionAttributeValues':"
        "{':a':{'N':'1'}}}",
        "ValidationException", "Query condition missed key schema element: pk");
    ERR(&e, "Query",
        "{'TableName':'Tab','KeyConditionExpression':'pk = :p','IndexName':'ByX',"
        "'ExpressionAttributeValues':{':p':{'S':'p'}}}",
        "ValidationException", "The table does not have the specified index: ByX");
    ERR(&e, "Query",
        "{'TableName':'Tab','KeyConditionExpression':'pk = :p','ExpressionAttributeValues':"
        "{':p':{'S':'p'}},'Select':'ALL_ATTRIBUTES','ProjectionExpression':'v'}",
        "ValidationException",
        "Cannot specify the ProjectionExpression when choosing to get ALL_ATTRIBUTES");
    ERR(&e, "Query",
        "{'TableName':'Tab','KeyConditionExpression':'pk = :p','ExpressionAttributeValues':"
        "{':p':{'S':'p'}},'Select':'SPECIFIC_ATTRIBUTES'}",
        "ValidationException",
        "Must specify the AttributesToGet or ProjectionExpression when choosing to get "
        "SPECIFIC_ATTRIBUTES");
    ERR(&e, "Query",
        "{'TableName':'Tab','KeyConditionExpression':'pk = :p','ExpressionAttributeValues':"
        "{':p':{'S':'p'}},'Limit':0}",
        "ValidationException",
        "1 validation error detected: Value '0' at 'limit' failed to satisfy constraint: Member "
        "must have value greater than or equal to 1");
    ERR(&e, "Query",
        "{'TableName':'Tab','KeyConditionExpression':'pk = :p','ExpressionAttributeValues':"
        "{':p':{'S':'p'}},'ExclusiveStartKey':{'pk':{'S':'q'},'sk':{'N':'1'}}}",
        "ValidationException",
        "The provided starting key is outside query boundaries based on provided conditions");
    ERR(&e, "Query",
        "{'TableName':'Tab','KeyConditionExpression':'pk = :p','ExpressionAttributeValues':"
        "{':p':{'S':'p'}},'ExclusiveStartKey':{'pk':{'S':'p'}}}",
        "ValidationException",
        "The provided starting key is invalid: The provided key element does not match the "
        "schema");
    ERR(&e, "Query",
        "{'TableName':'Tab','KeyConditionExpression':'pk = :p','FilterExpression':'sk > :a',"
        "'ExpressionAttributeValues':{':p':{'S':'p'},':a':{'N':'1'}}}",
        "ValidationException",
        "Filter Expression can only contain non-primary key attributes: Primary key attribute: "
        "sk");
    ERR(&e, "Query",
        "{'TableName':'Nope','KeyConditionExpression':'pk = :p','ExpressionAttributeValues':"
        "{':p':{'S':'p'}}}",
        "ResourceNotFoundException", "Requested resource not found");
    env_close(&e);
}

static void paging_with_limit(void)
{
    env e;
    env_open(&e);
    create_table(&e, "Tab", "N", NULL);
    fill(&e, 10);
    /* Pages of 3: 1-3, 4-6, 7-9, 10 (stops at Limit exactly on the last item: still a LEK),
     * then an empty page without one. */
    const char *want[] = {"1,2,3", "4,5,6", "7,8,9", "10", ""};
    char start[128] = "";
    for (int page = 0; page < 5; page++) {
        char b[512];
        int limit = page == 3 ? 1 : 3;
        snprintf(
            b, sizeof(b),
            "{'TableName':'Tab','KeyConditionExpression':'pk = :p','ExpressionAttributeValues':"
            "{':p':{'S':'p'}},'Limit':%d%s%s%s}",
            limit, start[0] ? ",'ExclusiveStartKey':" : "", start, "");
        cJSON *j = OK(&e, "Query", b);
        CPT_EQ_STR(sks(j), want[page]);
        const cJSON *lek = jget(j, "LastEvaluatedKey");
        if (page < 4) {
            CPT_CHECK(lek != NULL);
            char *t = cJSON_PrintUnformatted(lek);
            snprintf(start, sizeof(start), "%s", t);
            free(t);
            for (char *p = start; *p; p++) {
                *p = *p == '"' ? '\'' : *p;
            }
        } else {
            CPT_CHECK(lek == NULL);
            CPT_EQ_INT(jnum(j, "Count"), 0);
        }
    }
    CPT_EQ_STR(start, "{'pk':{'S':'p'},'sk':{'N':'10'}}");
    /* Backwards with a filter: Limit counts evaluated items, not matches. */
    cJSON *j = OK(&e, "Query",
                  "{'TableName':'Tab','KeyConditionExpression':'pk = :p','FilterExpression':"
                  "'even = :t','ExpressionAttributeValues':{':p':{'S':'p'},':t':{'BOOL':true}},"
                  "'ScanIndexForward':false,'Limit':3}");
    CPT_EQ_STR(sks(j), "10,8");
    CPT_EQ_INT(jnum(j, "ScannedCount"), 3);
    CPT_EQ_STR(jtext(j, "LastEvaluatedKey"), "{\"pk\":{\"S\":\"p\"},\"sk\":{\"N\":\"8\"}}");
    j = OK(
        &e, "Query",
        "{'TableName':'Tab','KeyConditionExpression':'pk = :p','FilterExpression':"
        "'even = :t','ExpressionAttributeValues':{':p':{'S':'p'},':t':{'BOOL':true}},"
        "'ScanIndexForward':false,'Limit':3,'ExclusiveStartKey':{'pk':{'S':'p'},'sk':{'N':'8'}}}");
    CPT_EQ_STR(sks(j), "6");
    CPT_EQ_STR(jtext(j, "LastEvaluatedKey"), "{\"pk\":{\"S\":\"p\"},\"sk\":{\"N\":\"5\"}}");
    env_close(&e);
}

static void one_megabyte_pages(void)
{
    env e;
    env_open(&e);
    create_table(&e, "Tab", "N", NULL);
    /* Five items of ~300 KB: three fit under 1 MiB of read size, the fourth reaches it. */
    size_t big = 300 * 1024;
    char *s = malloc(big + 1);
    memset(s, 'y', big);
    s[big] = 0;
    char *b = malloc(big + 256);
    for (int i = 1; i <= 5; i++) {
        snprintf(b, big + 256,
                 "{'TableName':'Tab','Item':{'pk':{'S':'p'},'sk':{'N':'%d'},'blob':{'S':'%s'}}}", i,
                 s);
        OK(&e, "PutItem", b);
    }
    free(s);
    free(b);
    cJSON *j =
        OK(&e, "Query",
           "{'TableName':'Tab','KeyConditionExpression':'pk = :p','ExpressionAttributeValues':"
           "{':p':{'S':'p'}},'ProjectionExpression':'sk','ReturnConsumedCapacity':'TOTAL'}");
    CPT_EQ_STR(sks(j), "1,2,3,4");
    CPT_EQ_INT(jnum(j, "ScannedCount"), 4);
    CPT_EQ_STR(jtext(j, "LastEvaluatedKey"), "{\"pk\":{\"S\":\"p\"},\"sk\":{\"N\":\"4\"}}");
    /* Capacity counts what was read (before projection): 4 x (300 KiB + names) rounded up to
     * 4 KB once, halved for an eventually consistent read. */
    size_t one = 2 + 1 + 2 + 2 + 4 + big; /* pk p, sk n, blob */
    double want = ((double) ((4 * one + 4095) / 4096)) * 0.5;
    CPT_CHECK(jnum(j, "ConsumedCapacity.CapacityUnits") == want);
    j = OK(&e, "Query",
           "{'TableName':'Tab','KeyConditionExpression':'pk = :p','ExpressionAttributeValues':"
           "{':p':{'S':'p'}},'ProjectionExpression':'sk','ExclusiveStartKey':{'pk':{'S':'p'},"
           "'sk':{'N':'4'}}}");
    CPT_EQ_STR(sks(j), "5");
    CPT_CHECK(jget(j, "LastEvaluatedKey") == NULL);
    /* Scan pages the same way, and Select COUNT still reads (and pages) by size. */
    j = OK(&e, "Scan", "{'TableName':'Tab','Select':'COUNT'}");
    CPT_EQ_INT(jnum(j, "Count"), 4);
    CPT_CHECK(jget(j, "LastEvaluatedKey") != NULL);
    CPT_CHECK(jget(j, "Items") == NULL);
    env_close(&e);
}

static void scan_segments(void)
{
    env e;
    env_open(&e);
    create_table(&e, "Tab", NULL, NULL);
    char b[256];
    for (int i = 0; i < 60; i++) {
        snprintf(b, sizeof(b), "{'TableName':'Tab','Item':{'pk':{'S':'item%02d'},'n':{'N':'%d'}}}",
                 i, i);
        OK(&e, "PutItem", b);
    }
    /* Every item in exactly one of 4 segments; resuming a segment stays inside it. */
    int seen[60] = {0};
    for (int seg = 0; seg < 4; seg++) {
        char start[128] = "";
        for (;;) {
            snprintf(b, sizeof(b),
                     "{'TableName':'Tab','Segment':%d,'TotalSegments':4,'Limit':7%s%s}", seg,
                     start[0] ? ",'ExclusiveStartKey':" : "", start);
            cJSON *j = OK(&e, "Scan", b);
            const cJSON *it;
            cJSON_ArrayForEach(it, jget(j, "Items"))
            {
                int n = atoi(jstr(it, "n.N"));
                CPT_CHECK(n >= 0 && n < 60);
                seen[n]++;
            }
            const cJSON *lek = jget(j, "LastEvaluatedKey");
            if (!lek) {
                break;
            }
            char *t = cJSON_PrintUnformatted(lek);
            snprintf(start, sizeof(start), "%s", t);
            free(t);
            for (char *p = start; *p; p++) {
                *p = *p == '"' ? '\'' : *p;
            }
        }
    }
    for (int i = 0; i < 60; i++) {
        CPT_EQ_INT(seen[i], 1);
    }
    cJSON *j = OK(&e, "Scan",
                  "{'TableName':'Tab','FilterExpression':'n < :ten','ExpressionAttributeValues':"
                  "{':ten':{'N':'10'}},'ReturnConsumedCapacity':'TOTAL','ConsistentRead':true}");
    CPT_EQ_INT(jnum(j, "Count"), 10);
    CPT_EQ_INT(jnum(j, "ScannedCount"), 60);
    CPT_CHECK(jnum(j, "ConsumedCapacity.CapacityUnits") == 1.0);
    ERR(&e, "Scan", "{'TableName':'Tab','Segment':1}", "ValidationException",
        "The TotalSegments parameter is required but was not present in the request when "
        "Segment parameter is present");
    ERR(&e, "Scan", "{'TableName':'Tab','TotalSegments':2}", "ValidationException",
        "The Segment parameter is required but was not present in the request when parameter "
        "TotalSegments is present");
    ERR(&e, "Scan", "{'TableName':'Tab','Segment':2,'TotalSegments':2}", "ValidationException",
        "The Segment parameter is zero-based and must be less than parameter TotalSegments: "
        "Segment: 2 is not less than TotalSegments: 2");
    ERR(&e, "Scan",
        "{'TableName':'Tab','ScanFilter':{'n':{'ComparisonOperator':'GT',"
        "'AttributeValueList':[{'N':'1'}]}},'FilterExpression':'n > :a',"
        "'ExpressionAttributeValues':{':a':{'N':'1'}}}",
        "ValidationException",
        "Can not use both expression and non-expression parameters in the same request: "
        "Non-expression parameters: {ScanFilter} Expression parameters: {FilterExpression}");
    /* Legacy ScanFilter alone. */
    j = OK(&e, "Scan",
           "{'TableName':'Tab','ScanFilter':{'n':{'ComparisonOperator':'GE',"
           "'AttributeValueList':[{'N':'55'}]}},'Select':'COUNT'}");
    CPT_EQ_INT(jnum(j, "Count"), 5);
    env_close(&e);
}

CPT_LIST = {
    {"query_basics", query_basics},
    {"query_select_count_and_legacy", query_select_count_and_legacy},
    {"paging_with_limit", paging_with_limit},
    {"one_megabyte_pages", one_megabyte_pages},
    {"scan_segments", scan_segments},
    {0},
};
