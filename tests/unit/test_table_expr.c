/* SPDX-License-Identifier: MIT */
/*
 * The expression language (table/expr.h): condition/filter evaluation with DynamoDB's type
 * rules, update application, projection, key conditions, the legacy parameters, the
 * validation messages, and a parser fuzz pass. Tables write DynamoDB JSON with single quotes
 * (turned into double quotes by the helpers) to stay readable.
 */
#include "cpt.h"

#include "core/mem.h"
#include "table/expr.h"
#include "table/item.h"

/* ---- Helpers ---- */

static char *dq(const char *s)
{
    char *o = cp_strdup(s);
    for (char *p = o; *p; p++) {
        if (*p == '\'') {
            *p = '"';
        }
    }
    return o;
}

/* Parse DynamoDB JSON (single-quoted) into a new encoded item appended to out. */
static void item_of(const char *json, cp_buf *out)
{
    char *j = dq(json);
    cp_json_lexer lx;
    cp_json_lexer_init(&lx, cp_slice_str(j));
    cp_item_builder b;
    cp_item_builder_init(&b, out);
    cp_err err = {0};
    int rc = cp_item_from_json(&lx, &b, &err);
    if (rc) {
        CPT_FAIL_AT("bad test item %s: %s", json, err.msg);
    }
    cp_free(j);
}

static char *json_of(cp_slice item)
{
    cp_buf js = CP_BUF_INIT;
    cp_item_to_json(item, &js);
    return js.p ? js.p : cp_strdup("");
}

typedef struct xreq {
    cp_expr_op op;
    const char *update, *cond, *key, *filter, *proj;
    const char *names;  /* {'#n':'name'} */
    const char *values; /* {':v':{'S':'x'}} */
} xreq;

static cp_slice opt(const char *s)
{
    return s ? cp_slice_str(s) : (cp_slice){NULL, 0};
}

static int xcompile_in(cp_expr_input *in, const xreq *r, cp_expr **e, cp_err *err)
{
    cp_buf nb = CP_BUF_INIT, vb = CP_BUF_INIT;
    in->op = r->op ? r->op : CP_EXPR_OP_UPDATE;
    in->update = opt(r->update);
    in->condition = opt(r->cond);
    in->key_condition = opt(r->key);
    in->filter = opt(r->filter);
    in->projection = opt(r->proj);
    if (r->names) {
        char *j = dq(r->names);
        cp_json_lexer lx;
        cp_json_lexer_init(&lx, cp_slice_str(j));
        CPT_EQ_INT(cp_expr_names_from_json(&lx, &nb, err), CP_OK);
        cp_free(j);
        in->names = cp_buf_slice(&nb);
        if (!in->names.p) {
            in->names.p = "";
        }
    }
    if (r->values) {
        item_of(r->values, &vb);
        in->values = cp_buf_slice(&vb);
    }
    int rc = cp_expr_compile(in, e, err);
    cp_buf_free(&nb);
    cp_buf_free(&vb);
    return rc;
}

static int xcompile(const xreq *r, cp_expr **e, cp_err *err)
{
    cp_expr_input in = {0};
    return xcompile_in(&in, r, e, err);
}

static cp_expr *must_compile(const xreq *r)
{
    cp_expr *e = NULL;
    cp_err err = {0};
    int rc = xcompile(r, &e, &err);
    if (rc) {
        CPT_FAIL_AT("compile failed: %s", err.msg);
    }
    return e;
}

/* The item most condition cases read. */
static const char *const RICH =
    "{'pk':{'S':'p'},'n':{'N':'10'},'f':{'N':'-1.5'},'s':{'S':'banana'},'b':{'B':'AQID'},"
    "'t':{'BOOL':true},'z':{'NULL':true},'ss':{'SS':['red','green']},'ns':{'NS':['1','5']},"
    "'bs':{'BS':['AQ==','Ag==']},'l':{'L':[{'S':'a'},{'N':'3'},{'M':{'x':{'S':'y'}}}]},"
    "'m':{'M':{'nested':{'M':{'deep':{'S':'x'}}},'arr':{'L':[{'M':{'v':{'N':'1'}}},"
    "{'M':{'v':{'N':'2'}}}]}}},'dot.name':{'S':'yes'},'e':{'S':''}}";

/* ---- Conditions ---- */

typedef struct ccase {
    const char *cond, *names, *values;
    int want;
} ccase;

static const ccase cond_cases[] = {
    /* comparisons */
    {"n = :v", NULL, "{':v':{'N':'10'}}", 1},
    {"n = :v", NULL, "{':v':{'N':'10.000'}}", 1},
    {"n = :v", NULL, "{':v':{'N':'1E1'}}", 1},
    {"n <> :v", NULL, "{':v':{'N':'11'}}", 1},
    {"n <> :v", NULL, "{':v':{'N':'10'}}", 0},
    {"n < :v", NULL, "{':v':{'N':'11'}}", 1},
    {"n < :v", NULL, "{':v':{'N':'10'}}", 0},
    {"n < :v", NULL, "{':v':{'N':'9.5'}}", 0},
    {"n <= :v", NULL, "{':v':{'N':'10'}}", 1},
    {"n > :v", NULL, "{':v':{'N':'9'}}", 1},
    {"n > :v", NULL, "{':v':{'N':'100'}}", 0},
    {"n >= :v", NULL, "{':v':{'N':'10'}}", 1},
    {"f < :v", NULL, "{':v':{'N':'-1'}}", 1},
    {"f > :v", NULL, "{':v':{'N':'-2'}}", 1},
    {":v < n", NULL, "{':v':{'N':'9'}}", 1},
    {"s > :v", NULL, "{':v':{'S':'apple'}}", 1},
    {"s < :v", NULL, "{':v':{'S':'banana_'}}", 1},
    {"s = :v", NULL, "{':v':{'S':'banana'}}", 1},
    {"b > :v", NULL, "{':v':{'B':'AQI='}}", 1},
    {"b < :v", NULL, "{':v':{'B':'Ag=='}}", 1},
    {"t = :v", NULL, "{':v':{'BOOL':true}}", 1},
    {"t = :v", NULL, "{':v':{'BOOL':false}}", 0},
    {"z = :v", NULL, "{':v':{'NULL':true}}", 1},
    {"ss = :v", NULL, "{':v':{'SS':['green','red']}}", 1},
    {"ss = :v", NULL, "{':v':{'SS':['green']}}", 0},
    {"ns = :v", NULL, "{':v':{'NS':['5','1.0']}}", 1},
    {"l = :v", NULL, "{':v':{'L':[{'S':'a'},{'N':'3'},{'M':{'x':{'S':'y'}}}]}}", 1},
    {"l = :v", NULL, "{':v':{'L':[{'N':'3'},{'S':'a'},{'M':{'x':{'S':'y'}}}]}}", 0},
    {"m.nested = :v", NULL, "{':v':{'M':{'deep':{'S':'x'}}}}", 1},
    /* type mismatch and missing attributes are false, not errors */
    {"s > :v", NULL, "{':v':{'N':'1'}}", 0},
    {"s = :v", NULL, "{':v':{'N':'1'}}", 0},
    {"s <> :v", NULL, "{':v':{'N':'1'}}", 1},
    {"n = :v", NULL, "{':v':{'S':'10'}}", 0},
    {"t < :v", NULL, "{':v':{'S':'x'}}", 0},
    {"absent = :v", NULL, "{':v':{'N':'1'}}", 0},
    {"absent <> :v", NULL, "{':v':{'N':'1'}}", 1},
    {"absent < :v", NULL, "{':v':{'N':'1'}}", 0},
    {"absent >= :v", NULL, "{':v':{'N':'1'}}", 0},
    {"ss < :v", NULL, "{':v':{'S':'z'}}", 0},
    /* BETWEEN and IN */
    {"n BETWEEN :a AND :b", NULL, "{':a':{'N':'10'},':b':{'N':'20'}}", 1},
    {"n BETWEEN :a AND :b", NULL, "{':a':{'N':'11'},':b':{'N':'20'}}", 0},
    {"n BETWEEN :a AND :b", NULL, "{':a':{'N':'1'},':b':{'N':'10'}}", 1},
    {"s BETWEEN :a AND :b", NULL, "{':a':{'S':'a'},':b':{'S':'c'}}", 1},
    {"s BETWEEN :a AND :b", NULL, "{':a':{'N':'1'},':b':{'N':'2'}}", 0},
    {"absent BETWEEN :a AND :b", NULL, "{':a':{'N':'1'},':b':{'N':'2'}}", 0},
    {"s IN (:a, :b)", NULL, "{':a':{'S':'apple'},':b':{'S':'banana'}}", 1},
    {"s IN (:a)", NULL, "{':a':{'S':'apple'}}", 0},
    {"n IN (:a, :b)", NULL, "{':a':{'S':'10'},':b':{'N':'10.0'}}", 1},
    {"absent IN (:a)", NULL, "{':a':{'S':'apple'}}", 0},
    {"ss IN (:a)", NULL, "{':a':{'SS':['red','green']}}", 1},
    /* functions */
    {"attribute_exists(n)", NULL, NULL, 1},
    {"attribute_exists(z)", NULL, NULL, 1},
    {"attribute_exists(absent)", NULL, NULL, 0},
    {"attribute_not_exists(absent)", NULL, NULL, 1},
    {"attribute_not_exists(n)", NULL, NULL, 0},
    {"attribute_exists(m.nested.deep)", NULL, NULL, 1},
    {"attribute_exists(m.nested.nope)", NULL, NULL, 0},
    {"attribute_exists(l[2].x)", NULL, NULL, 1},
    {"attribute_exists(l[0].x)", NULL, NULL, 0},
    {"attribute_not_exists(l[9])", NULL, NULL, 1},
    {"attribute_exists(n[0])", NULL, NULL, 0},
    {"attribute_exists(l.x)", NULL, NULL, 0},
    {"attribute_type(ss, :t)", NULL, "{':t':{'S':'SS'}}", 1},
    {"attribute_type(z, :t)", NULL, "{':t':{'S':'NULL'}}", 1},
    {"attribute_type(m, :t)", NULL, "{':t':{'S':'M'}}", 1},
    {"attribute_type(n, :t)", NULL, "{':t':{'S':'S'}}", 0},
    {"attribute_type(absent, :t)", NULL, "{':t':{'S':'S'}}", 0},
    {"begins_with(s, :p)", NULL, "{':p':{'S':'ban'}}", 1},
    {"begins_with(s, :p)", NULL, "{':p':{'S':'nan'}}", 0},
    {"begins_with(s, :p)", NULL, "{':p':{'S':'banana!'}}", 0},
    {"begins_with(s, :p)", NULL, "{':p':{'S':''}}", 1},
    {"begins_with(b, :p)", NULL, "{':p':{'B':'AQI='}}", 1},
    {"begins_with(b, :p)", NULL, "{':p':{'S':'x'}}", 0},
    {"begins_with(absent, :p)", NULL, "{':p':{'S':'x'}}", 0},
    {"contains(s, :v)", NULL, "{':v':{'S':'nan'}}", 1},
    {"contains(s, :v)", NULL, "{':v':{'S':'nab'}}", 0},
    {"contains(ss, :v)", NULL, "{':v':{'S':'red'}}", 1},
    {"contains(ss, :v)", NULL, "{':v':{'S':'re'}}", 0},
    {"contains(ss, :v)", NULL, "{':v':{'N':'1'}}", 0},
    {"contains(ns, :v)", NULL, "{':v':{'N':'5'}}", 1},
    {"contains(ns, :v)", NULL, "{':v':{'N':'5.00'}}", 1},
    {"contains(ns, :v)", NULL, "{':v':{'S':'5'}}", 0},
    {"contains(bs, :v)", NULL, "{':v':{'B':'AQ=='}}", 1},
    {"contains(b, :v)", NULL, "{':v':{'B':'AgM='}}", 1},
    {"contains(l, :v)", NULL, "{':v':{'N':'3'}}", 1},
    {"contains(l, :v)", NULL, "{':v':{'S':'a'}}", 1},
    {"contains(l, :v)", NULL, "{':v':{'M':{'x':{'S':'y'}}}}", 1},
    {"contains(l, :v)", NULL, "{':v':{'S':'b'}}", 0},
    {"contains(n, :v)", NULL, "{':v':{'N':'1'}}", 0},
    {"contains(absent, :v)", NULL, "{':v':{'S':'a'}}", 0},
    {"size(s) = :v", NULL, "{':v':{'N':'6'}}", 1},
    {"size(s) > :v", NULL, "{':v':{'N':'5'}}", 1},
    {"size(ss) = :v", NULL, "{':v':{'N':'2'}}", 1},
    {"size(l) = :v", NULL, "{':v':{'N':'3'}}", 1},
    {"size(m) = :v", NULL, "{':v':{'N':'2'}}", 1},
    {"size(b) = :v", NULL, "{':v':{'N':'3'}}", 1},
    {"size(e) = :v", NULL, "{':v':{'N':'0'}}", 1},
    {"size(n) = :v", NULL, "{':v':{'N':'2'}}", 0},
    {"size(absent) = :v", NULL, "{':v':{'N':'0'}}", 0},
    {"size(s) = size(s)", NULL, NULL, 1},
    {"size(m.arr) BETWEEN :a AND :b", NULL, "{':a':{'N':'1'},':b':{'N':'2'}}", 1},
    {"size(s) IN (:a, :b)", NULL, "{':a':{'N':'1'},':b':{'N':'6'}}", 1},
    {"size(:v) = :n", NULL, "{':v':{'S':'abc'},':n':{'N':'3'}}", 1},
    /* document paths and names */
    {"m.nested.deep = :v", NULL, "{':v':{'S':'x'}}", 1},
    {"m.arr[1].v = :v", NULL, "{':v':{'N':'2'}}", 1},
    {"m . arr [ 0 ] . v = :v", NULL, "{':v':{'N':'1'}}", 1},
    {"l[0] = :v", NULL, "{':v':{'S':'a'}}", 1},
    {"l[1] = :v", NULL, "{':v':{'N':'3'}}", 1},
    {"#d = :v", "{'#d':'dot.name'}", "{':v':{'S':'yes'}}", 1},
    {"#m.#n.deep = :v", "{'#m':'m','#n':'nested'}", "{':v':{'S':'x'}}", 1},
    {"#s = :v", "{'#s':'s'}", "{':v':{'S':'banana'}}", 1},
    {"dot.label = :v", NULL, "{':v':{'S':'yes'}}", 0},
    /* logic and precedence */
    {"n = :a OR n = :a AND n = :b", NULL, "{':a':{'N':'10'},':b':{'N':'11'}}", 1},
    {"(n = :a OR n = :a) AND n = :b", NULL, "{':a':{'N':'10'},':b':{'N':'11'}}", 0},
    {"NOT n = :b AND n = :a", NULL, "{':a':{'N':'10'},':b':{'N':'11'}}", 1},
    {"NOT (n = :a)", NULL, "{':a':{'N':'10'}}", 0},
    {"NOT NOT n = :a", NULL, "{':a':{'N':'10'}}", 1},
    {"not attribute_exists(absent)", NULL, NULL, 1},
    {"n between :a and :b Or s in (:c)", NULL, "{':a':{'N':'1'},':b':{'N':'20'},':c':{'S':'x'}}",
     1},
    {"n = :a AND (s = :b OR s = :c) AND attribute_exists(l)", NULL,
     "{':a':{'N':'10'},':b':{'S':'no'},':c':{'S':'banana'}}", 1},
    {"n = (:a)", NULL, "{':a':{'N':'10'}}", 1},
    {"(n) = :a", NULL, "{':a':{'N':'10'}}", 1},
    {"(attribute_exists(n))", NULL, NULL, 1},
    {"(n = :a) AND ((s = :b))", NULL, "{':a':{'N':'10'},':b':{'S':'banana'}}", -1},
    {":a = :b", NULL, "{':a':{'N':'10'},':b':{'N':'10'}}", 1},
};

static void condition_table(void)
{
    cp_buf item = CP_BUF_INIT;
    item_of(RICH, &item);
    CPT_EQ_INT(cp_item_check(cp_buf_slice(&item)), CP_OK);
    for (size_t i = 0; i < sizeof(cond_cases) / sizeof(cond_cases[0]); i++) {
        const ccase *c = &cond_cases[i];
        xreq r = {.op = CP_EXPR_OP_UPDATE, .cond = c->cond, .names = c->names, .values = c->values};
        cp_expr *e = NULL;
        cp_err err = {0};
        int rc = xcompile(&r, &e, &err);
        if (c->want < 0) {
            if (rc == CP_OK) {
                CPT_FAIL_AT("case %zu (%s): compiled but should not", i, c->cond);
            }
            continue;
        }
        if (rc) {
            CPT_FAIL_AT("case %zu (%s): %s", i, c->cond, err.msg);
        }
        int got = cp_expr_eval_condition(e, cp_buf_slice(&item));
        if (got != c->want) {
            CPT_FAIL_AT("case %zu (%s): got %d, want %d", i, c->cond, got, c->want);
        }
        cp_expr_free(e);
    }
    cp_buf_free(&item);
}

static void condition_on_absent_item(void)
{
    cp_expr *e = must_compile(&(xreq){.op = CP_EXPR_OP_PUT, .cond = "attribute_not_exists(pk)"});
    CPT_CHECK(cp_expr_has_condition(e));
    CPT_EQ_INT(cp_expr_eval_condition(e, (cp_slice){NULL, 0}), 1);
    cp_buf item = CP_BUF_INIT;
    item_of("{'pk':{'S':'a'}}", &item);
    CPT_EQ_INT(cp_expr_eval_condition(e, cp_buf_slice(&item)), 0);
    cp_expr_free(e);
    e = must_compile(&(xreq){.op = CP_EXPR_OP_DELETE, .cond = "attribute_exists(pk)"});
    CPT_EQ_INT(cp_expr_eval_condition(e, (cp_slice){NULL, 0}), 0);
    CPT_EQ_INT(cp_expr_eval_condition(e, cp_buf_slice(&item)), 1);
    cp_expr_free(e);
    /* no condition at all holds */
    e = must_compile(&(xreq){.op = CP_EXPR_OP_PUT});
    CPT_CHECK(!cp_expr_has_condition(e));
    CPT_EQ_INT(cp_expr_eval_condition(e, cp_buf_slice(&item)), 1);
    cp_expr_free(e);
    cp_buf_free(&item);
}

static void filter_scan(void)
{
    const char *items[] = {"{'pk':{'S':'a'},'kept':{'N':'1'}}", "{'pk':{'S':'b'},'kept':{'N':'3'}}",
                           "{'pk':{'S':'c'}}", "{'pk':{'S':'d'},'kept':{'S':'3'}}",
                           "{'pk':{'S':'e'},'kept':{'N':'4'}}"};
    cp_expr *e = must_compile(
        &(xreq){.op = CP_EXPR_OP_SCAN, .filter = "kept > :two", .values = "{':two':{'N':'2'}}"});
    CPT_CHECK(cp_expr_has_filter(e));
    int n = 0;
    for (size_t i = 0; i < 5; i++) {
        cp_buf it = CP_BUF_INIT;
        item_of(items[i], &it);
        n += cp_expr_eval_filter(e, cp_buf_slice(&it)) << i;
        cp_buf_free(&it);
    }
    CPT_EQ_INT(n, 2 | 16);
    cp_expr_free(e);
}

/* ---- Updates ---- */

static const char *const BASE =
    "{'pk':{'S':'p'},'tally':{'N':'1'},'label':{'S':'x'},'letters':{'L':[{'N':'1'},{'N':'2'},"
    "{'N':'3'}]},'info':{'M':{'a':{'N':'1'}}},'tags':{'SS':['a','b']},'nums':{'NS':['1','2']}}";

typedef struct ucase {
    const char *old; /* NULL: the item does not exist; "" : BASE */
    const char *update, *names, *values;
    const char *want; /* the whole new item, or NULL when `error` */
    const char *error;
} ucase;

#define B ""
#define K "{'pk':{'S':'p'}}"
#define BASE_WITH(extra)                                                                           \
    "{'pk':{'S':'p'},'tally':{'N':'1'},'label':{'S':'x'},'letters':{'L':[{'N':'1'},{'N':'2'},"     \
    "{'N':'3'}]},'info':{'M':{'a':{'N':'1'}}},'tags':{'SS':['a','b']},'nums':{'NS':['1','2']"      \
    "}" extra "}"

static const ucase update_cases[] = {
    {B, "SET a = :a", NULL, "{':a':{'S':'A'}}", BASE_WITH(",'a':{'S':'A'}"), NULL},
    {B, "SET info.b = :b", NULL, "{':b':{'N':'2'}}",
     "{'pk':{'S':'p'},'tally':{'N':'1'},'label':{'S':'x'},'letters':{'L':[{'N':'1'},{'N':'2'},"
     "{'N':'3'}]},'info':{'M':{'a':{'N':'1'},'b':{'N':'2'}}},'tags':{'SS':['a','b']},"
     "'nums':{'NS':['1','2']}}",
     NULL},
    {B, "SET #l[0] = :z", "{'#l':'letters'}", "{':z':{'N':'0'}}",
     "{'pk':{'S':'p'},'tally':{'N':'1'},'label':{'S':'x'},'letters':{'L':[{'N':'0'},{'N':'2'},"
     "{'N':'3'}]},'info':{'M':{'a':{'N':'1'}}},'tags':{'SS':['a','b']},'nums':{'NS':['1','2']}}",
     NULL},
    {B, "SET letters[10] = :v", NULL, "{':v':{'N':'4'}}",
     "{'pk':{'S':'p'},'tally':{'N':'1'},'label':{'S':'x'},'letters':{'L':[{'N':'1'},{'N':'2'},"
     "{'N':'3'},{'N':'4'}]},'info':{'M':{'a':{'N':'1'}}},'tags':{'SS':['a','b']},"
     "'nums':{'NS':['1','2']}}",
     NULL},
    {B, "SET letters[9] = :x, letters[5] = :y", NULL, "{':x':{'S':'x'},':y':{'S':'y'}}",
     "{'pk':{'S':'p'},'tally':{'N':'1'},'label':{'S':'x'},'letters':{'L':[{'N':'1'},{'N':'2'},"
     "{'N':'3'},{'S':'y'},{'S':'x'}]},'info':{'M':{'a':{'N':'1'}}},'tags':{'SS':['a','b']},"
     "'nums':{'NS':['1','2']}}",
     NULL},
    {B, "SET tally = tally + :one", NULL, "{':one':{'N':'1'}}",
     "{'pk':{'S':'p'},'tally':{'N':'2'},'label':{'S':'x'},'letters':{'L':[{'N':'1'},{'N':'2'},"
     "{'N':'3'}]},'info':{'M':{'a':{'N':'1'}}},'tags':{'SS':['a','b']},'nums':{'NS':['1','2']}}",
     NULL},
    {K, "SET f = :a + :b, g = :a - :b, h = :c - :c", NULL,
     "{':a':{'N':'0.1'},':b':{'N':'0.2'},':c':{'N':'123456789012345678901234567890.12345678'}}",
     "{'pk':{'S':'p'},'f':{'N':'0.3'},'g':{'N':'-0.1'},'h':{'N':'0'}}", NULL},
    {B, "SET a = tally, tally = :ten", NULL, "{':ten':{'N':'10'}}",
     "{'pk':{'S':'p'},'tally':{'N':'10'},'label':{'S':'x'},'letters':{'L':[{'N':'1'},{'N':'2'},"
     "{'N':'3'}]},'info':{'M':{'a':{'N':'1'}}},'tags':{'SS':['a','b']},'nums':{'NS':['1','2']},"
     "'a':{'N':'1'}}",
     NULL},
    {B, "SET tally = if_not_exists(tally, :zero) + :one, fresh = if_not_exists(fresh, :zero)", NULL,
     "{':zero':{'N':'0'},':one':{'N':'1'}}", BASE_WITH(",'fresh':{'N':'0'}") /* tally below */,
     "patch:tally=2"},
    {K, "SET letters = list_append(:a, :b)", NULL,
     "{':a':{'L':[{'N':'1'}]},':b':{'L':[{'S':'x'},{'L':[]}]}}",
     "{'pk':{'S':'p'},'letters':{'L':[{'N':'1'},{'S':'x'},{'L':[]}]}}", NULL},
    {B,
     "SET letters = list_append(letters, :tail), alt = list_append(if_not_exists(alt, :empty), "
     ":tail), front = list_append(:head, letters)",
     NULL, "{':tail':{'L':[{'N':'9'}]},':empty':{'L':[]},':head':{'L':[{'N':'0'}]}}",
     "{'pk':{'S':'p'},'tally':{'N':'1'},'label':{'S':'x'},'letters':{'L':[{'N':'1'},{'N':'2'},"
     "{'N':'3'},{'N':'9'}]},'info':{'M':{'a':{'N':'1'}}},'tags':{'SS':['a','b']},"
     "'nums':{'NS':['1','2']},'alt':{'L':[{'N':'9'}]},'front':{'L':[{'N':'0'},{'N':'1'},"
     "{'N':'2'},{'N':'3'}]}}",
     NULL},
    {K, "SET x = list_append(list_append(:h, :t), list_append(:t, :h))", NULL,
     "{':h':{'L':[{'S':'h'}]},':t':{'L':[{'S':'t'}]}}",
     "{'pk':{'S':'p'},'x':{'L':[{'S':'h'},{'S':'t'},{'S':'t'},{'S':'h'}]}}", NULL},
    {B, "REMOVE #n, info.a, letters[0], letters[2]", "{'#n':'label'}", NULL,
     "{'pk':{'S':'p'},'tally':{'N':'1'},'letters':{'L':[{'N':'2'}]},'info':{'M':{}},"
     "'tags':{'SS':['a','b']},'nums':{'NS':['1','2']}}",
     NULL},
    {B, "REMOVE letters[1]", NULL, NULL,
     "{'pk':{'S':'p'},'tally':{'N':'1'},'label':{'S':'x'},'letters':{'L':[{'N':'1'},{'N':'3'}]},"
     "'info':{'M':{'a':{'N':'1'}}},'tags':{'SS':['a','b']},'nums':{'NS':['1','2']}}",
     NULL},
    {B, "REMOVE absent, info.nope, letters[9]", NULL, NULL, BASE_WITH(""), NULL},
    {B, "SET letters[1] = :v REMOVE letters[0]", NULL, "{':v':{'S':'v'}}",
     "{'pk':{'S':'p'},'tally':{'N':'1'},'label':{'S':'x'},'letters':{'L':[{'S':'v'},{'N':'3'}]},"
     "'info':{'M':{'a':{'N':'1'}}},'tags':{'SS':['a','b']},'nums':{'NS':['1','2']}}",
     NULL},
    {B, "ADD #c :five, newCount :five, tags :more, nums :ns, fresh :ns", "{'#c':'tally'}",
     "{':five':{'N':'5'},':more':{'SS':['b','c']},':ns':{'NS':['2','3']}}",
     "{'pk':{'S':'p'},'tally':{'N':'6'},'label':{'S':'x'},'letters':{'L':[{'N':'1'},{'N':'2'},"
     "{'N':'3'}]},'info':{'M':{'a':{'N':'1'}}},'tags':{'SS':['a','b','c']},"
     "'nums':{'NS':['1','2','3']},'newCount':{'N':'5'},'fresh':{'NS':['2','3']}}",
     NULL},
    {B, "ADD info.a :n, letters[1] :n", NULL, "{':n':{'N':'-0.5'}}",
     "{'pk':{'S':'p'},'tally':{'N':'1'},'label':{'S':'x'},'letters':{'L':[{'N':'1'},"
     "{'N':'1.5'},{'N':'3'}]},'info':{'M':{'a':{'N':'0.5'}}},'tags':{'SS':['a','b']},"
     "'nums':{'NS':['1','2']}}",
     NULL},
    {B, "DELETE tags :a, nums :n", NULL, "{':a':{'SS':['a','zz']},':n':{'NS':['1']}}",
     "{'pk':{'S':'p'},'tally':{'N':'1'},'label':{'S':'x'},'letters':{'L':[{'N':'1'},{'N':'2'},"
     "{'N':'3'}]},'info':{'M':{'a':{'N':'1'}}},'tags':{'SS':['b']},'nums':{'NS':['2']}}",
     NULL},
    {B, "DELETE tags :ab, absent :ab", NULL, "{':ab':{'SS':['a','b']}}",
     "{'pk':{'S':'p'},'tally':{'N':'1'},'label':{'S':'x'},'letters':{'L':[{'N':'1'},{'N':'2'},"
     "{'N':'3'}]},'info':{'M':{'a':{'N':'1'}}},'nums':{'NS':['1','2']}}",
     NULL},
    {B, "SET a = :a REMOVE info ADD #c :one DELETE tags :t", "{'#c':'tally'}",
     "{':a':{'N':'1'},':one':{'N':'1'},':t':{'SS':['a']}}",
     "{'pk':{'S':'p'},'tally':{'N':'2'},'label':{'S':'x'},'letters':{'L':[{'N':'1'},{'N':'2'},"
     "{'N':'3'}]},'tags':{'SS':['b']},'nums':{'NS':['1','2']},'a':{'N':'1'}}",
     NULL},
    {B, "set info.a = :m remove label", NULL, "{':m':{'M':{'deep':{'L':[]}}}}",
     "{'pk':{'S':'p'},'tally':{'N':'1'},'letters':{'L':[{'N':'1'},{'N':'2'},{'N':'3'}]},"
     "'info':{'M':{'a':{'M':{'deep':{'L':[]}}}}},'tags':{'SS':['a','b']},'nums':{'NS':['1','2']}}",
     NULL},
    {B, "SET a = (tally + :one), b = (tally) + :one", NULL, "{':one':{'N':'1'}}",
     BASE_WITH(",'a':{'N':'2'},'b':{'N':'2'}"), NULL},
    /* the item does not exist yet */
    {NULL, "SET v = :v", NULL, "{':v':{'N':'1'}}", "{'pk':{'S':'p'},'v':{'N':'1'}}", NULL},
    {NULL, "ADD c :one, s :ss", NULL, "{':one':{'N':'1'},':ss':{'SS':['x']}}",
     "{'pk':{'S':'p'},'c':{'N':'1'},'s':{'SS':['x']}}", NULL},
    {NULL, "REMOVE x DELETE y :ss", NULL, "{':ss':{'SS':['x']}}", "{'pk':{'S':'p'}}", NULL},
    {NULL, "SET v = if_not_exists(v, :d)", NULL, "{':d':{'S':'d'}}",
     "{'pk':{'S':'p'},'v':{'S':'d'}}", NULL},
    /* runtime errors */
    {B, "SET info.deep.x = :v", NULL, "{':v':{'N':'1'}}", NULL,
     "The document path provided in the update expression is invalid "
     "for update"},
    {B, "SET nope.child = :v", NULL, "{':v':{'N':'1'}}", NULL,
     "The document path provided in the update expression is invalid "
     "for update"},
    {B, "SET letters.x = :v", NULL, "{':v':{'N':'1'}}", NULL,
     "The document path provided in the update expression is invalid "
     "for update"},
    {B, "SET info[0] = :v", NULL, "{':v':{'N':'1'}}", NULL,
     "The document path provided in the update expression is invalid "
     "for update"},
    {B, "REMOVE label.x", NULL, NULL, NULL,
     "The document path provided in the update expression is invalid "
     "for update"},
    {B, "SET a = absent + :v", NULL, "{':v':{'N':'1'}}", NULL,
     "The provided expression refers to an attribute that does not "
     "exist in the item"},
    {B, "SET a = absent", NULL, NULL, NULL,
     "The provided expression refers to an attribute that does not "
     "exist in the item"},
    {B, "SET a = list_append(absent, :l)", NULL, "{':l':{'L':[]}}", NULL,
     "The provided expression refers to an attribute that does not "
     "exist in the item"},
    {B, "SET a = label + :v", NULL, "{':v':{'N':'1'}}", NULL,
     "An operand in the update expression has an incorrect data type"},
    {B, "SET a = :v - label", NULL, "{':v':{'N':'1'}}", NULL,
     "An operand in the update expression has an incorrect data type"},
    {B, "SET a = list_append(label, :l)", NULL, "{':l':{'L':[]}}", NULL,
     "An operand in the update expression has an incorrect data type"},
    {B, "ADD label :one", NULL, "{':one':{'N':'1'}}", NULL,
     "An operand in the update expression has an incorrect data type"},
    {B, "ADD tags :ns", NULL, "{':ns':{'NS':['1']}}", NULL,
     "An operand in the update expression has an incorrect data type"},
    {B, "DELETE label :ss", NULL, "{':ss':{'SS':['x']}}", NULL,
     "An operand in the update expression has an incorrect data type"},
    {B, "SET pk = :v", NULL, "{':v':{'S':'x'}}", NULL,
     "One or more parameter values were invalid: Cannot update attribute pk. This attribute is "
     "part of the key"},
    {B, "SET tally = :big + :big", NULL, "{':big':{'N':'9E+125'}}", NULL,
     "Number overflow. Attempting to store a number with magnitude larger than supported range"},
};

/* Expected JSON, with "patch:attr=N" meaning: the BASE_WITH item except attr's number. */
static void check_update_case(size_t i, const ucase *c)
{
    cp_buf old = CP_BUF_INIT, key = CP_BUF_INIT, out = CP_BUF_INIT, want = CP_BUF_INIT;
    if (c->old) {
        item_of(c->old[0] ? c->old : BASE, &old);
    }
    item_of(K, &key);
    xreq r = {.op = CP_EXPR_OP_UPDATE, .update = c->update, .names = c->names, .values = c->values};
    cp_expr *e = NULL;
    cp_err err = {0};
    int rc = xcompile(&r, &e, &err);
    if (rc) {
        CPT_FAIL_AT("case %zu (%s): compile: %s", i, c->update, err.msg);
    }
    rc = cp_expr_apply_update(e, cp_buf_slice(&old), cp_buf_slice(&key), &out, &err);
    if (c->error && (!c->want || strncmp(c->error, "patch:", 6) != 0)) {
        if (rc != CP_EINVAL) {
            char *js = json_of(cp_buf_slice(&out));
            CPT_FAIL_AT("case %zu (%s): want error, got rc %d %s", i, c->update, rc, js);
        }
        if (strcmp(err.msg, c->error) != 0) {
            CPT_FAIL_AT("case %zu (%s): error\n    %s\n != %s", i, c->update, err.msg, c->error);
        }
    } else {
        if (rc) {
            CPT_FAIL_AT("case %zu (%s): apply: %s", i, c->update, err.msg);
        }
        CPT_EQ_INT(cp_item_check(cp_buf_slice(&out)), CP_OK);
        item_of(c->want, &want);
        if (c->error) {
            /* patch:attr=N, used where only one number changes */
            cp_buf patched = CP_BUF_INIT;
            char attr[32], num[32];
            CPT_EQ_INT(sscanf(c->error, "patch:%31[^=]=%31s", attr, num), 2);
            cp_av v;
            CPT_CHECK(cp_item_find(cp_buf_slice(&out), cp_slice_str(attr), &v));
            CPT_CHECK(v.type == CP_AV_N);
            CPT_CHECK(cp_slice_eq(cp_av_bytes(v), cp_slice_str(num)));
            /* compare the rest by copying the number over */
            cp_item_builder b;
            cp_item_builder_init(&b, &patched);
            cp_item_begin(&b);
            cp_av_iter it;
            cp_slice nm;
            cp_av x;
            cp_item_iter_init(&it, cp_buf_slice(&want));
            while (cp_av_iter_next(&it, &nm, &x)) {
                cp_item_put_name(&b, nm);
                if (cp_slice_eq(nm, cp_slice_str(attr))) {
                    cp_item_put_scalar(&b, CP_AV_N, cp_slice_str(num));
                } else {
                    cp_item_put_av(&b, x);
                }
            }
            cp_item_end(&b);
            cp_buf_free(&want);
            want = patched;
        }
        if (!cp_item_equal(cp_buf_slice(&out), cp_buf_slice(&want))) {
            char *a = json_of(cp_buf_slice(&out)), *w = json_of(cp_buf_slice(&want));
            CPT_FAIL_AT("case %zu (%s):\n    got  %s\n    want %s", i, c->update, a, w);
        }
    }
    cp_expr_free(e);
    cp_buf_free(&old);
    cp_buf_free(&key);
    cp_buf_free(&out);
    cp_buf_free(&want);
}

static void update_table(void)
{
    for (size_t i = 0; i < sizeof(update_cases) / sizeof(update_cases[0]); i++) {
        check_update_case(i, &update_cases[i]);
    }
}

static void update_item_size_limit(void)
{
    /* a 300 KB string set twice exceeds 400 KB */
    size_t n = 300 * 1024;
    cp_buf bigb = CP_BUF_INIT;
    cp_buf_puts(&bigb, "{':v':{'S':'");
    for (size_t i = 0; i < n; i++) {
        cp_buf_putc(&bigb, 'x');
    }
    cp_buf_puts(&bigb, "'}}");
    const char *big = bigb.p;
    xreq r = {.update = "SET a = :v, b = :v", .values = big};
    cp_expr *e = must_compile(&r);
    cp_buf key = CP_BUF_INIT, out = CP_BUF_INIT;
    item_of(K, &key);
    cp_err err = {0};
    CPT_EQ_INT(cp_expr_apply_update(e, (cp_slice){NULL, 0}, cp_buf_slice(&key), &out, &err),
               CP_EINVAL);
    CPT_EQ_STR(err.msg, "Item size to update has exceeded the maximum allowed size");
    cp_expr_free(e);
    /* one copy fits */
    e = must_compile(&(xreq){.update = "SET a = :v", .values = big});
    cp_buf_reset(&out);
    CPT_EQ_INT(cp_expr_apply_update(e, (cp_slice){NULL, 0}, cp_buf_slice(&key), &out, &err), CP_OK);
    CPT_CHECK(cp_item_size(cp_buf_slice(&out)) > n - 64);
    cp_expr_free(e);
    cp_buf_free(&bigb);
    cp_buf_free(&key);
    cp_buf_free(&out);
}

static void update_large_sets(void)
{
    /* ADD/DELETE of many members against a big set take the sorted path */
    cp_buf vals = CP_BUF_INIT, old = CP_BUF_INIT, key = CP_BUF_INIT, out = CP_BUF_INIT;
    cp_buf_puts(&vals, "{':add':{'SS':[");
    for (int i = 0; i < 300; i++) {
        cp_buf_printf(&vals, "%s'm%03d'", i ? "," : "", i * 2);
    }
    cp_buf_puts(&vals, "]},':del':{'SS':[");
    for (int i = 0; i < 200; i++) {
        cp_buf_printf(&vals, "%s'm%03d'", i ? "," : "", i * 3);
    }
    cp_buf_puts(&vals, "]}}");
    cp_buf_puts(&old, "{'pk':{'S':'p'},'s':{'SS':[");
    for (int i = 0; i < 300; i++) {
        cp_buf_printf(&old, "%s'm%03d'", i ? "," : "", i);
    }
    cp_buf_puts(&old, "]},'d':{'SS':[");
    for (int i = 0; i < 300; i++) {
        cp_buf_printf(&old, "%s'm%03d'", i ? "," : "", i);
    }
    cp_buf_puts(&old, "]}}");
    cp_buf olditem = CP_BUF_INIT;
    item_of(old.p, &olditem);
    item_of(K, &key);
    cp_expr *e = must_compile(&(xreq){.update = "ADD s :add DELETE d :del", .values = vals.p});
    cp_err err = {0};
    CPT_EQ_INT(cp_expr_apply_update(e, cp_buf_slice(&olditem), cp_buf_slice(&key), &out, &err),
               CP_OK);
    cp_av s, d;
    CPT_CHECK(cp_item_find(cp_buf_slice(&out), CP_SLICE("s"), &s));
    CPT_CHECK(cp_item_find(cp_buf_slice(&out), CP_SLICE("d"), &d));
    /* 0..299 plus the even numbers 300..598 */
    CPT_EQ_INT(cp_av_count(s), 300 + 150);
    /* 0..299 minus the multiples of 3 */
    CPT_EQ_INT(cp_av_count(d), 300 - 100);
    CPT_EQ_INT(cp_item_check(cp_buf_slice(&out)), CP_OK);
    cp_expr_free(e);
    cp_buf_free(&vals);
    cp_buf_free(&old);
    cp_buf_free(&olditem);
    cp_buf_free(&key);
    cp_buf_free(&out);
}

static void update_without_expression_keeps_item(void)
{
    cp_expr *e = must_compile(&(xreq){.op = CP_EXPR_OP_UPDATE});
    CPT_CHECK(!cp_expr_has_update(e));
    cp_buf key = CP_BUF_INIT, out = CP_BUF_INIT, old = CP_BUF_INIT;
    item_of(K, &key);
    item_of(BASE, &old);
    cp_err err = {0};
    CPT_EQ_INT(cp_expr_apply_update(e, (cp_slice){NULL, 0}, cp_buf_slice(&key), &out, &err), CP_OK);
    CPT_CHECK(cp_item_equal(cp_buf_slice(&out), cp_buf_slice(&key)));
    cp_buf_reset(&out);
    CPT_EQ_INT(cp_expr_apply_update(e, cp_buf_slice(&old), cp_buf_slice(&key), &out, &err), CP_OK);
    CPT_CHECK(cp_item_equal(cp_buf_slice(&out), cp_buf_slice(&old)));
    cp_expr_free(e);
    cp_buf_free(&key);
    cp_buf_free(&out);
    cp_buf_free(&old);
}

static void updated_paths_projection(void)
{
    cp_expr *e = must_compile(&(xreq){.update = "SET info.a = :v, z = :v REMOVE letters[1]",
                                      .values = "{':v':{'N':'7'}}"});
    cp_buf old = CP_BUF_INIT, key = CP_BUF_INIT, out = CP_BUF_INIT, p = CP_BUF_INIT,
           want = CP_BUF_INIT;
    item_of(BASE, &old);
    item_of(K, &key);
    cp_err err = {0};
    CPT_EQ_INT(cp_expr_apply_update(e, cp_buf_slice(&old), cp_buf_slice(&key), &out, &err), CP_OK);
    cp_expr_project_updated(e, cp_buf_slice(&old), &p);
    item_of("{'info':{'M':{'a':{'N':'1'}}},'letters':{'L':[{'N':'2'}]}}", &want);
    CPT_CHECK(cp_item_equal(cp_buf_slice(&p), cp_buf_slice(&want)));
    cp_buf_reset(&p);
    cp_buf_reset(&want);
    cp_expr_project_updated(e, cp_buf_slice(&out), &p);
    item_of("{'info':{'M':{'a':{'N':'7'}}},'z':{'N':'7'},'letters':{'L':[{'N':'3'}]}}", &want);
    if (!cp_item_equal(cp_buf_slice(&p), cp_buf_slice(&want))) {
        CPT_FAIL_AT("UPDATED_NEW: %s", json_of(cp_buf_slice(&p)));
    }
    cp_expr_free(e);
    cp_buf_free(&old);
    cp_buf_free(&key);
    cp_buf_free(&out);
    cp_buf_free(&p);
    cp_buf_free(&want);
}

/* ---- Projection ---- */

typedef struct pcase {
    const char *proj, *names, *want;
} pcase;

static const char *const PITEM =
    "{'a':{'M':{'b':{'N':'1'},'c':{'N':'2'}}},'letters':{'L':[{'S':'x'},{'S':'y'},{'S':'z'}]},"
    "'alt':{'S':'o'},'n':{'L':[{'M':{'x':{'S':'n0'}}},{'M':{'x':{'S':'n1'},'y':{'S':'no'}}}]},"
    "'deep':{'M':{'l':{'L':[{'L':[{'N':'1'},{'N':'2'}]},{'N':'3'}]}}}}";

static const pcase proj_cases[] = {
    {"a.c, letters[2], letters[0], #o", "{'#o':'alt'}",
     "{'a':{'M':{'c':{'N':'2'}}},'letters':{'L':[{'S':'x'},{'S':'z'}]},'alt':{'S':'o'}}"},
    {"n[1].x", NULL, "{'n':{'L':[{'M':{'x':{'S':'n1'}}}]}}"},
    {"n[0].x, n[1].y", NULL, "{'n':{'L':[{'M':{'x':{'S':'n0'}}},{'M':{'y':{'S':'no'}}}]}}"},
    {"letters[ 1 ], a . b", NULL, "{'letters':{'L':[{'S':'y'}]},'a':{'M':{'b':{'N':'1'}}}}"},
    {"a.nope, absentx, letters[5], alt.x", NULL, "{}"},
    {"letters.x, a[0]", NULL, "{}"},
    {"a", NULL, "{'a':{'M':{'b':{'N':'1'},'c':{'N':'2'}}}}"},
    {"deep.l[0][1], deep.l[1]", NULL, "{'deep':{'M':{'l':{'L':[{'L':[{'N':'2'}]},{'N':'3'}]}}}}"},
    {"alt, a.b, a.c", NULL, "{'alt':{'S':'o'},'a':{'M':{'b':{'N':'1'},'c':{'N':'2'}}}}"},
};

static void projection_table(void)
{
    cp_buf item = CP_BUF_INIT;
    item_of(PITEM, &item);
    for (size_t i = 0; i < sizeof(proj_cases) / sizeof(proj_cases[0]); i++) {
        const pcase *c = &proj_cases[i];
        cp_expr *e =
            must_compile(&(xreq){.op = CP_EXPR_OP_GET, .proj = c->proj, .names = c->names});
        CPT_CHECK(cp_expr_has_projection(e));
        cp_buf out = CP_BUF_INIT, want = CP_BUF_INIT;
        cp_expr_project(e, cp_buf_slice(&item), &out);
        CPT_EQ_INT(cp_item_check(cp_buf_slice(&out)), CP_OK);
        item_of(c->want, &want);
        if (!cp_item_equal(cp_buf_slice(&out), cp_buf_slice(&want))) {
            CPT_FAIL_AT("case %zu (%s): got %s", i, c->proj, json_of(cp_buf_slice(&out)));
        }
        cp_buf_free(&out);
        cp_buf_free(&want);
        cp_expr_free(e);
    }
    /* without a projection the item is copied */
    cp_expr *e = must_compile(&(xreq){.op = CP_EXPR_OP_GET});
    cp_buf out = CP_BUF_INIT;
    cp_expr_project(e, cp_buf_slice(&item), &out);
    CPT_CHECK(cp_item_equal(cp_buf_slice(&out), cp_buf_slice(&item)));
    cp_expr_free(e);
    cp_buf_free(&out);
    cp_buf_free(&item);
}

/* ---- Key conditions ---- */

typedef struct kcase {
    const char *key, *filter, *names, *values;
    int range;           /* 0: hash-only table */
    cp_key_range_op op;  /* expected */
    const char *r1, *r2; /* expected S values of r1/r2 */
    const char *error;
} kcase;

static const kcase key_cases[] = {
    {"pk = :a", NULL, NULL, "{':a':{'S':'a'}}", 1, CP_KEY_RANGE_NONE, NULL, NULL, NULL},
    {"pk = :a", NULL, NULL, "{':a':{'S':'a'}}", 0, CP_KEY_RANGE_NONE, NULL, NULL, NULL},
    {"pk = :a AND sk = :x", NULL, NULL, "{':a':{'S':'a'},':x':{'S':'x'}}", 1, CP_KEY_RANGE_EQ, "x",
     NULL, NULL},
    {"pk = :a AND sk < :x", NULL, NULL, "{':a':{'S':'a'},':x':{'S':'x'}}", 1, CP_KEY_RANGE_LT, "x",
     NULL, NULL},
    {"pk = :a AND sk <= :x", NULL, NULL, "{':a':{'S':'a'},':x':{'S':'x'}}", 1, CP_KEY_RANGE_LE, "x",
     NULL, NULL},
    {"pk = :a AND sk > :x", NULL, NULL, "{':a':{'S':'a'},':x':{'S':'x'}}", 1, CP_KEY_RANGE_GT, "x",
     NULL, NULL},
    {"sk >= :x AND pk = :a", NULL, NULL, "{':a':{'S':'a'},':x':{'S':'x'}}", 1, CP_KEY_RANGE_GE, "x",
     NULL, NULL},
    {":a = pk AND :x > sk", NULL, NULL, "{':a':{'S':'a'},':x':{'S':'x'}}", 1, CP_KEY_RANGE_LT, "x",
     NULL, NULL},
    {"pk = :a AND sk BETWEEN :x AND :y", NULL, NULL,
     "{':a':{'S':'a'},':x':{'S':'x'},':y':{'S':'y'}}", 1, CP_KEY_RANGE_BETWEEN, "x", "y", NULL},
    {"(begins_with(sk, :b)) AND (#p = :a)", NULL, "{'#p':'pk'}", "{':a':{'S':'a'},':b':{'S':'b'}}",
     1, CP_KEY_RANGE_BEGINS_WITH, "b", NULL, NULL},
    {"pk = :a", "kept > :x", NULL, "{':a':{'S':'a'},':x':{'S':'x'}}", 1, CP_KEY_RANGE_NONE, NULL,
     NULL, NULL},
    /* errors */
    {"sk = :x", NULL, NULL, "{':x':{'S':'x'}}", 1, 0, NULL, NULL,
     "Query condition missed key schema element: pk"},
    {"pk = :a AND kept = :k", NULL, NULL, "{':a':{'S':'a'},':k':{'S':'k'}}", 1, 0, NULL, NULL,
     "Query condition missed key schema element: sk"},
    {"pk = :a AND sk = :x", NULL, NULL, "{':a':{'S':'a'},':x':{'S':'x'}}", 0, 0, NULL, NULL,
     "Query key condition not supported"},
    {"pk < :a", NULL, NULL, "{':a':{'S':'a'}}", 1, 0, NULL, NULL,
     "Query key condition not supported"},
    {"pk = :n", NULL, NULL, "{':n':{'N':'1'}}", 1, 0, NULL, NULL,
     "One or more parameter values were invalid: Condition parameter type does not match schema "
     "type"},
    {"pk = :a OR pk = :b", NULL, NULL, "{':a':{'S':'a'},':b':{'S':'b'}}", 1, 0, NULL, NULL,
     "Invalid operator used in KeyConditionExpression: OR"},
    {"pk = :a AND sk <> :x", NULL, NULL, "{':a':{'S':'a'},':x':{'S':'x'}}", 1, 0, NULL, NULL,
     "Invalid operator used in KeyConditionExpression: <>"},
    {"NOT pk = :a", NULL, NULL, "{':a':{'S':'a'}}", 1, 0, NULL, NULL,
     "Invalid operator used in KeyConditionExpression: NOT"},
    {"pk IN (:a)", NULL, NULL, "{':a':{'S':'a'}}", 1, 0, NULL, NULL,
     "Invalid operator used in KeyConditionExpression: IN"},
    {"attribute_exists(pk)", NULL, NULL, NULL, 1, 0, NULL, NULL,
     "Invalid operator used in KeyConditionExpression: attribute_exists"},
    {"pk = :a AND contains(sk, :a)", NULL, NULL, "{':a':{'S':'a'}}", 1, 0, NULL, NULL,
     "Invalid operator used in KeyConditionExpression: contains"},
    {"pk = :a AND pk = :b", NULL, NULL, "{':a':{'S':'a'},':b':{'S':'b'}}", 1, 0, NULL, NULL,
     "KeyConditionExpressions must only contain one condition per key"},
    {"pk.x = :a", NULL, NULL, "{':a':{'S':'a'}}", 1, 0, NULL, NULL,
     "KeyConditionExpressions cannot have conditions on nested attributes"},
    {"pk = sk", NULL, NULL, NULL, 1, 0, NULL, NULL,
     "Invalid condition in KeyConditionExpression: Multiple attribute names used in one "
     "condition"},
    {":a = :b", NULL, NULL, "{':a':{'S':'a'},':b':{'S':'b'}}", 1, 0, NULL, NULL,
     "Invalid condition in KeyConditionExpression: No key attribute specified"},
    {"size(pk) = :a", NULL, NULL, "{':a':{'N':'1'}}", 1, 0, NULL, NULL,
     "KeyConditionExpressions cannot contain nested operations"},
    {"pk = :a AND :x BETWEEN sk AND :y", NULL, NULL,
     "{':a':{'S':'a'},':x':{'S':'x'},':y':{'S':'y'}}", 1, 0, NULL, NULL,
     "Invalid condition in KeyConditionExpression: BETWEEN operator must have the key attribute "
     "as its first operand"},
    {"pk = :a AND sk = :x AND o = :y", NULL, NULL, "{':a':{'S':'a'},':x':{'S':'x'},':y':{'S':'y'}}",
     1, 0, NULL, NULL, "Conditions can be of length 1 or 2 only"},
    {"pk = :a", "sk > :x", NULL, "{':a':{'S':'a'},':x':{'S':'x'}}", 1, 0, NULL, NULL,
     "Filter Expression can only contain non-primary key attributes: Primary key attribute: sk"},
    {"pk = :a", "kept.x > :x OR pk = :a", NULL, "{':a':{'S':'a'},':x':{'S':'x'}}", 1, 0, NULL, NULL,
     "Filter Expression can only contain non-primary key attributes: Primary key attribute: pk"},
};

static void key_condition_table(void)
{
    for (size_t i = 0; i < sizeof(key_cases) / sizeof(key_cases[0]); i++) {
        const kcase *c = &key_cases[i];
        xreq r = {.op = CP_EXPR_OP_QUERY,
                  .key = c->key,
                  .filter = c->filter,
                  .names = c->names,
                  .values = c->values};
        cp_expr *e = NULL;
        cp_err err = {0};
        int rc = xcompile(&r, &e, &err);
        cp_key_cond kc;
        if (rc == CP_OK) {
            CPT_CHECK(cp_expr_has_key_condition(e));
            cp_expr_keys ks = {.hash_name = CP_SLICE("pk"), .hash_type = CP_AV_S};
            if (c->range) {
                ks.range_name = CP_SLICE("sk");
                ks.range_type = CP_AV_S;
            }
            rc = cp_expr_key_condition(e, &ks, &kc, &err);
        }
        if (c->error) {
            if (rc != CP_EINVAL || strcmp(err.msg, c->error) != 0) {
                CPT_FAIL_AT("case %zu (%s): rc %d\n    %s\n != %s", i, c->key, rc, err.msg,
                            c->error);
            }
            cp_expr_free(e);
            continue;
        }
        if (rc) {
            CPT_FAIL_AT("case %zu (%s): %s", i, c->key, err.msg);
        }
        CPT_EQ_INT(kc.hash.type, CP_AV_S);
        CPT_CHECK(cp_slice_eq(cp_av_bytes(kc.hash), CP_SLICE("a")));
        CPT_EQ_INT(kc.op, c->op);
        if (c->r1) {
            CPT_CHECK(cp_slice_eq(cp_av_bytes(kc.r1), cp_slice_str(c->r1)));
        }
        if (c->r2) {
            CPT_CHECK(cp_slice_eq(cp_av_bytes(kc.r2), cp_slice_str(c->r2)));
        }
        cp_expr_free(e);
    }
}

static void key_checks_for_writes(void)
{
    cp_expr_keys ks = {.hash_name = CP_SLICE("pk"),
                       .hash_type = CP_AV_S,
                       .range_name = CP_SLICE("sk"),
                       .range_type = CP_AV_N};
    struct {
        xreq r;
        const char *error;
    } cases[] = {
        {{.update = "SET a = :v", .values = "{':v':{'N':'1'}}"}, NULL},
        {{.update = "SET sk = :v", .values = "{':v':{'N':'1'}}"},
         "One or more parameter values were invalid: Cannot update attribute sk. This attribute "
         "is part of the key"},
        {{.update = "REMOVE pk.x"},
         "One or more parameter values were invalid: Cannot update attribute pk. This attribute "
         "is part of the key"},
        {{.update = "SET a = pk.x"},
         "Key attributes must be scalars; list random access '[]' and map lookup '.' are not "
         "allowed: Key: pk"},
        {{.op = CP_EXPR_OP_GET, .proj = "a, sk[0]"},
         "Key attributes must be scalars; list random access '[]' and map lookup '.' are not "
         "allowed: Key: sk"},
        {{.op = CP_EXPR_OP_GET, .proj = "a, sk"}, NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cp_expr *e = must_compile(&cases[i].r);
        cp_err err = {0};
        int rc = cp_expr_check_keys(e, &ks, &err);
        if (cases[i].error) {
            CPT_EQ_INT(rc, CP_EINVAL);
            CPT_EQ_STR(err.msg, cases[i].error);
        } else {
            CPT_EQ_INT(rc, CP_OK);
        }
        cp_expr_free(e);
    }
}

/* ---- Validation messages ---- */

typedef struct vcase {
    xreq r;
    const char *msg;
} vcase;

#define SYN(kind, tok, near)                                                                       \
    "Invalid " kind ": Syntax error; token: \"" tok "\", near: \"" near "\""

static const vcase valid_cases[] = {
    /* syntax */
    {{.cond = "a = = :v", .values = "{':v':{'N':'1'}}"}, SYN("ConditionExpression", "=", "= = :v")},
    {{.cond = "_hidden = :v", .values = "{':v':{'N':'1'}}"},
     SYN("ConditionExpression", "_", "_hidden")},
    {{.cond = "a =", .values = "{':v':{'N':'1'}}"}, SYN("ConditionExpression", "<EOF>", "=")},
    {{.cond = "a = :v b", .values = "{':v':{'N':'1'}}"}, SYN("ConditionExpression", "b", ":v b")},
    {{.cond = "a != :v", .values = "{':v':{'N':'1'}}"}, SYN("ConditionExpression", "!", "a !=")},
    {{.cond = "(a = :v", .values = "{':v':{'N':'1'}}"}, SYN("ConditionExpression", "<EOF>", ":v")},
    {{.cond = "a IN ()", .values = "{':v':{'N':'1'}}"}, SYN("ConditionExpression", ")", "()")},
    {{.cond = "a BETWEEN :v", .values = "{':v':{'N':'1'}}"},
     SYN("ConditionExpression", "<EOF>", ":v")},
    {{.cond = "a = 1"}, SYN("ConditionExpression", "1", "= 1")},
    {{.cond = "a[x] = :v", .values = "{':v':{'N':'1'}}"}, SYN("ConditionExpression", "x", "[x]")},
    {{.cond = ""}, "Invalid ConditionExpression: The expression can not be empty;"},
    {{.cond = "  \t "}, "Invalid ConditionExpression: The expression can not be empty;"},
    {{.update = "SET MyStr = myNum + 1"}, SYN("UpdateExpression", "1", "+ 1")},
    {{.update = "SET MyStr = myNum Mystr2 myNum2"},
     SYN("UpdateExpression", "Mystr2", "myNum Mystr2 myNum2")},
    {{.update = "SET MyStr = my Num"}, SYN("UpdateExpression", "Num", "my Num")},
    {{.update = "SET a = :v +", .values = "{':v':{'N':'1'}}"},
     SYN("UpdateExpression", "<EOF>", "+")},
    {{.update = "SET a = :v, b = numx / :v", .values = "{':v':{'N':'1'}}"},
     SYN("UpdateExpression", "/", "numx / :v")},
    {{.update = "SET"}, SYN("UpdateExpression", "<EOF>", "SET")},
    {{.update = "SET = :v", .values = "{':v':{'N':'1'}}"},
     SYN("UpdateExpression", "=", "SET = :v")},
    {{.update = "ADD a 5"}, SYN("UpdateExpression", "5", "a 5")},
    {{.update = "UPSERT a = :v", .values = "{':v':{'N':'1'}}"},
     SYN("UpdateExpression", "UPSERT", "UPSERT a")},
    {{.update = ""}, "Invalid UpdateExpression: The expression can not be empty;"},
    {{.op = CP_EXPR_OP_GET, .proj = "a b"}, SYN("ProjectionExpression", "b", "a b")},
    {{.op = CP_EXPR_OP_GET, .proj = "a,"}, SYN("ProjectionExpression", "<EOF>", ",")},
    {{.op = CP_EXPR_OP_GET, .proj = "!!!"}, SYN("ProjectionExpression", "!", "!!")},
    {{.op = CP_EXPR_OP_GET, .proj = ""},
     "Invalid ProjectionExpression: The expression can not be empty;"},
    {{.op = CP_EXPR_OP_QUERY, .key = "pk = :a AND", .values = "{':a':{'S':'a'}}"},
     SYN("KeyConditionExpression", "<EOF>", "AND")},
    {{.op = CP_EXPR_OP_SCAN, .filter = "a = :é", .values = "{':a':{'S':'a'}}"},
     SYN("FilterExpression", ":", "= :é")},
    /* names, values, reserved words */
    {{.cond = "status = :v", .values = "{':v':{'N':'1'}}"},
     "Invalid ConditionExpression: Attribute name is a reserved keyword; reserved keyword: "
     "status"},
    {{.cond = "a.Data = :v", .values = "{':v':{'N':'1'}}"},
     "Invalid ConditionExpression: Attribute name is a reserved keyword; reserved keyword: Data"},
    {{.update = "SET #s = :v, #t = :v, name = :v",
      .names = "{'#s':'status','#t':'ttl'}",
      .values = "{':v':{'N':'1'}}"},
     "Invalid UpdateExpression: Attribute name is a reserved keyword; reserved keyword: name"},
    {{.op = CP_EXPR_OP_GET, .proj = "a, timestamp"},
     "Invalid ProjectionExpression: Attribute name is a reserved keyword; reserved keyword: "
     "timestamp"},
    {{.cond = "#x = :v", .values = "{':v':{'N':'1'}}"},
     "Invalid ConditionExpression: An expression attribute name used in the document path is not "
     "defined; attribute name: #x"},
    {{.op = CP_EXPR_OP_GET, .proj = "#undef"},
     "Invalid ProjectionExpression: An expression attribute name used in the document path is "
     "not defined; attribute name: #undef"},
    {{.cond = "a = :absent", .values = "{':v':{'N':'1'}}"},
     "Invalid ConditionExpression: An expression attribute value used in expression is not "
     "defined; attribute value: :absent"},
    {{.update = "SET a = :absent", .values = "{':alt':{'N':'1'}}"},
     "Invalid UpdateExpression: An expression attribute value used in expression is not defined; "
     "attribute value: :absent"},
    {{.update = "SET a = :v", .values = "{':v':{'N':'1'},':unused':{'N':'2'},':u2':{'N':'2'}}"},
     "Value provided in ExpressionAttributeValues unused in expressions: keys: {:unused, :u2}"},
    {{.update = "SET a = :v", .names = "{'#n':'x'}", .values = "{':v':{'N':'1'}}"},
     "Value provided in ExpressionAttributeNames unused in expressions: keys: {#n}"},
    {{.update = "SET a = :v", .names = "{}", .values = "{':v':{'N':'1'}}"},
     "ExpressionAttributeNames must not be empty"},
    {{.update = "SET a = :v", .values = "{}"}, "ExpressionAttributeValues must not be empty"},
    {{.update = "SET a = :v", .names = "{'name':'x'}", .values = "{':v':{'N':'1'}}"},
     "ExpressionAttributeNames contains invalid key: Syntax error; key: \"name\""},
    {{.update = "SET a = :v", .values = "{'v':{'N':'1'}}"},
     "ExpressionAttributeValues contains invalid key: Syntax error; key: \"v\""},
    {{.op = CP_EXPR_OP_PUT, .values = "{':v':{'N':'1'}}"},
     "ExpressionAttributeValues can only be specified when using expressions: ConditionExpression "
     "is null"},
    {{.op = CP_EXPR_OP_UPDATE, .values = "{':v':{'N':'1'}}"},
     "ExpressionAttributeValues can only be specified when using expressions: UpdateExpression "
     "and ConditionExpression are null"},
    {{.op = CP_EXPR_OP_GET, .names = "{'#a':'a'}"},
     "ExpressionAttributeNames can only be specified when using expressions"},
    /* condition semantics */
    {{.cond = "starts_with(a, :v)", .values = "{':v':{'S':'x'}}"},
     "Invalid ConditionExpression: Invalid function name; function: starts_with"},
    {{.cond = "ATTRIBUTE_EXISTS(a)"},
     "Invalid ConditionExpression: Invalid function name; function: ATTRIBUTE_EXISTS"},
    {{.cond = "if_not_exists(a, :v) = :v", .values = "{':v':{'S':'x'}}"},
     "Invalid ConditionExpression: Invalid function name; function: if_not_exists"},
    {{.cond = "attribute_type(a, :t)", .values = "{':t':{'S':'STRING'}}"},
     "Invalid ConditionExpression: Invalid attribute type name found; type: STRING, valid types: "
     "{B,NULL,SS,BOOL,L,BS,N,NS,S,M}"},
    {{.cond = "attribute_type(a, :t)", .values = "{':t':{'N':'1'}}"},
     "Invalid ConditionExpression: Incorrect operand type for operator or function; operator or "
     "function: attribute_type, operand type: N"},
    {{.cond = "attribute_type(a, b)"},
     "Invalid ConditionExpression: Incorrect operand type for operator or function; operator or "
     "function: attribute_type, operand type: {NS,SS,L,BS,N,M,B,BOOL,NULL,S}"},
    {{.cond = "a BETWEEN :hi AND :lo", .values = "{':hi':{'N':'5'},':lo':{'N':'1'}}"},
     "Invalid ConditionExpression: The BETWEEN operator requires upper bound to be greater than "
     "or equal to lower bound; lower bound operand: AttributeValue: {N:5}, upper bound operand: "
     "AttributeValue: {N:1}"},
    {{.cond = "a BETWEEN :lo AND :s", .values = "{':lo':{'N':'1'},':s':{'S':'z'}}"},
     "Invalid ConditionExpression: The BETWEEN operator requires same data type for lower and "
     "upper bounds; lower bound operand: AttributeValue: {N:1}, upper bound operand: "
     "AttributeValue: {S:z}"},
    {{.cond = "a < :l", .values = "{':l':{'L':[{'N':'1'}]}}"},
     "Invalid ConditionExpression: Incorrect operand type for operator or function; operator or "
     "function: <, operand type: LIST"},
    {{.cond = "begins_with(a, :v) = :t", .values = "{':v':{'S':'x'},':t':{'BOOL':true}}"},
     "Invalid ConditionExpression: The function is not allowed to be used this way in an "
     "expression; function: begins_with"},
    {{.cond = "size(a)"},
     "Invalid ConditionExpression: The function is not allowed to be used this way in an "
     "expression; function: size"},
    {{.cond = "a = :v AND size(a)", .values = "{':v':{'S':'x'}}"},
     "Invalid ConditionExpression: The function is not allowed to be used this way in an "
     "expression; function: size"},
    {{.cond = "begins_with(a, :n)", .values = "{':n':{'N':'1'}}"},
     "Invalid ConditionExpression: Incorrect operand type for operator or function; operator or "
     "function: begins_with, operand type: N"},
    {{.cond = "contains(a, a)"},
     "Invalid ConditionExpression: The first operand must be distinct from the remaining operands "
     "for this operator or function; operator: contains, first operand: [a]"},
    {{.cond = "a.b[1] <> #x.b[1]", .names = "{'#x':'a'}"},
     "Invalid ConditionExpression: The first operand must be distinct from the remaining operands "
     "for this operator or function; operator: <>, first operand: [a, b, [1]]"},
    {{.cond = "attribute_exists(:v)", .values = "{':v':{'S':'x'}}"},
     "Invalid ConditionExpression: Operator or function requires a document path; operator or "
     "function: attribute_exists"},
    {{.cond = "attribute_exists(a, b)"},
     "Invalid ConditionExpression: Incorrect number of operands for operator or function; "
     "operator or function: attribute_exists, number of operands: 2"},
    {{.cond = "size(:n) > :n", .values = "{':n':{'N':'1'}}"},
     "Invalid ConditionExpression: Incorrect operand type for operator or function; operator or "
     "function: size, operand type: N"},
    {{.cond = "((a = :v))", .values = "{':v':{'N':'1'}}"},
     "Invalid ConditionExpression: The expression has redundant parentheses;"},
    {{.cond = "((a)) = :v", .values = "{':v':{'N':'1'}}"},
     "Invalid ConditionExpression: The expression has redundant parentheses;"},
    {{.cond = "status = :v AND foo(a)", .values = "{':v':{'N':'1'}}"},
     "Invalid ConditionExpression: Invalid function name; function: foo"},
    /* update semantics */
    {{.update = "SET a = :v SET b = :v", .values = "{':v':{'N':'1'}}"},
     "Invalid UpdateExpression: The \"SET\" section can only be used once in an update "
     "expression;"},
    {{.update = "REMOVE a ADD b :v remove c", .values = "{':v':{'N':'1'}}"},
     "Invalid UpdateExpression: The \"REMOVE\" section can only be used once in an update "
     "expression;"},
    {{.update = "SET info = :m, info.a = :v", .values = "{':m':{'M':{}},':v':{'N':'1'}}"},
     "Invalid UpdateExpression: Two document paths overlap with each other; must remove or "
     "rewrite one of these paths; path one: [info], path two: [info, a]"},
    {{.update = "SET a = :v REMOVE a", .values = "{':v':{'N':'1'}}"},
     "Invalid UpdateExpression: Two document paths overlap with each other; must remove or "
     "rewrite one of these paths; path one: [a], path two: [a]"},
    {{.update = "SET #a[1] = :v ADD a[1] :v", .names = "{'#a':'a'}", .values = "{':v':{'N':'1'}}"},
     "Invalid UpdateExpression: Two document paths overlap with each other; must remove or "
     "rewrite one of these paths; path one: [a, [1]], path two: [a, [1]]"},
    {{.update = "SET a.b = :v, a[0] = :v", .values = "{':v':{'N':'1'}}"},
     "Invalid UpdateExpression: Two document paths conflict with each other; must remove or "
     "rewrite one of these paths; path one: [a, b], path two: [a, [0]]"},
    {{.update = "ADD a :s", .values = "{':s':{'S':'x'}}"},
     "Invalid UpdateExpression: Incorrect operand type for operator or function; operator: ADD, "
     "operand type: STRING"},
    {{.update = "ADD a :s", .values = "{':s':{'L':[]}}"},
     "Invalid UpdateExpression: Incorrect operand type for operator or function; operator: ADD, "
     "operand type: LIST"},
    {{.update = "DELETE a :n", .values = "{':n':{'N':'1'}}"},
     "Invalid UpdateExpression: Incorrect operand type for operator or function; operator: "
     "DELETE, operand type: NUMBER"},
    {{.update = "SET a = size(b)"},
     "Invalid UpdateExpression: Invalid function name; function: size"},
    {{.update = "SET a = if_not_exists(:v, b)", .values = "{':v':{'N':'1'}}"},
     "Invalid UpdateExpression: Operator or function requires a document path; operator or "
     "function: if_not_exists"},
    {{.update = "SET a = if_not_exists(b)"},
     "Invalid UpdateExpression: Incorrect number of operands for operator or function; operator "
     "or function: if_not_exists, number of operands: 1"},
    {{.update = "SET a = list_append(:m, b)", .values = "{':m':{'M':{}}}"},
     "Invalid UpdateExpression: Incorrect operand type for operator or function; operator or "
     "function: list_append, operand type: M"},
    {{.update = "SET a = :s + b", .values = "{':s':{'S':'x'}}"},
     "Invalid UpdateExpression: Incorrect operand type for operator or function; operator or "
     "function: +, operand type: S"},
    {{.update = "SET status = :v", .values = "{':v':{'N':'1'}}"},
     "Invalid UpdateExpression: Attribute name is a reserved keyword; reserved keyword: status"},
    /* projection semantics */
    {{.op = CP_EXPR_OP_GET, .proj = "a, a"},
     "Invalid ProjectionExpression: Two document paths overlap with each other; must remove or "
     "rewrite one of these paths; path one: [a], path two: [a]"},
    {{.op = CP_EXPR_OP_GET, .proj = "a.b, a"},
     "Invalid ProjectionExpression: Two document paths overlap with each other; must remove or "
     "rewrite one of these paths; path one: [a, b], path two: [a]"},
    {{.op = CP_EXPR_OP_GET, .proj = "#a, #b", .names = "{'#a':'a','#b':'a'}"},
     "Invalid ProjectionExpression: Two document paths overlap with each other; must remove or "
     "rewrite one of these paths; path one: [a], path two: [a]"},
    {{.op = CP_EXPR_OP_GET, .proj = "a[0], a.b"},
     "Invalid ProjectionExpression: Two document paths conflict with each other; must remove or "
     "rewrite one of these paths; path one: [a, [0]], path two: [a, b]"},
    /* queries */
    {{.op = CP_EXPR_OP_QUERY, .filter = "a = :v", .values = "{':v':{'N':'1'}}"},
     "Either the KeyConditions or KeyConditionExpression parameter must be specified in the "
     "request."},
};

static void validation_messages(void)
{
    for (size_t i = 0; i < sizeof(valid_cases) / sizeof(valid_cases[0]); i++) {
        const vcase *c = &valid_cases[i];
        cp_expr *e = NULL;
        cp_err err = {0};
        int rc = xcompile(&c->r, &e, &err);
        if (rc != CP_EINVAL || strcmp(err.msg, c->msg) != 0) {
            CPT_FAIL_AT("case %zu: rc %d\n    got  %s\n    want %s", i, rc, err.msg, c->msg);
        }
        CPT_CHECK(e == NULL);
    }
}

static void limits(void)
{
    cp_buf x = CP_BUF_INIT, v = CP_BUF_INIT;
    cp_expr *e = NULL;
    cp_err err = {0};
    /* IN: 100 operands pass, 101 do not */
    for (int n = 100; n <= 101; n++) {
        cp_buf_reset(&x);
        cp_buf_reset(&v);
        cp_buf_puts(&x, "a IN (");
        cp_buf_puts(&v, "{");
        for (int i = 0; i < n; i++) {
            cp_buf_printf(&x, "%s:v%d", i ? ", " : "", i);
            cp_buf_printf(&v, "%s':v%d':{'N':'%d'}", i ? "," : "", i, i);
        }
        cp_buf_puts(&x, ")");
        cp_buf_puts(&v, "}");
        int rc = xcompile(&(xreq){.cond = x.p, .values = v.p}, &e, &err);
        if (n == 100) {
            CPT_EQ_INT(rc, CP_OK);
            cp_expr_free(e);
        } else {
            CPT_EQ_INT(rc, CP_EINVAL);
            CPT_EQ_STR(err.msg, "Invalid ConditionExpression: The IN operator is provided with too "
                                "many operands; number of operands: 101");
        }
    }
    /* operators: 150 comparisons + 149 ANDs pass, one more pair fails at 301 */
    for (int n = 150; n <= 151; n++) {
        cp_buf_reset(&x);
        for (int i = 0; i < n; i++) {
            cp_buf_printf(&x, "%sa%d = :v", i ? " AND " : "", i);
        }
        int rc = xcompile(
            &(xreq){.op = CP_EXPR_OP_SCAN, .filter = x.p, .values = "{':v':{'N':'1'}}"}, &e, &err);
        if (n == 150) {
            CPT_EQ_INT(rc, CP_OK);
            cp_expr_free(e);
        } else {
            CPT_EQ_INT(rc, CP_EINVAL);
            CPT_EQ_STR(err.msg, "Invalid FilterExpression: The expression contains too many "
                                "operators; operator count: 301");
        }
    }
    /* 4 KB of text */
    cp_buf_reset(&x);
    cp_buf_puts(&x, "SET a = :v");
    while (x.len < 4096) {
        cp_buf_putc(&x, ' ');
    }
    CPT_EQ_INT(xcompile(&(xreq){.update = x.p, .values = "{':v':{'N':'1'}}"}, &e, &err), CP_OK);
    cp_expr_free(e);
    cp_buf_putc(&x, ' ');
    CPT_EQ_INT(xcompile(&(xreq){.update = x.p, .values = "{':v':{'N':'1'}}"}, &e, &err), CP_EINVAL);
    CPT_EQ_STR(err.msg,
               "Invalid UpdateExpression: Expression size has exceeded the maximum allowed size;");
    /* deep nesting is refused, not a stack overflow */
    cp_buf_reset(&x);
    for (int i = 0; i < 1000; i++) {
        cp_buf_putc(&x, '(');
    }
    cp_buf_puts(&x, "a = :v");
    for (int i = 0; i < 1000; i++) {
        cp_buf_putc(&x, ')');
    }
    CPT_EQ_INT(xcompile(&(xreq){.cond = x.p, .values = "{':v':{'N':'1'}}"}, &e, &err), CP_EINVAL);
    cp_buf_free(&x);
    cp_buf_free(&v);
}

/* ---- Legacy parameters ---- */

static cp_av first_av(cp_slice item, const char *name)
{
    cp_av v = {0};
    CPT_CHECK(cp_item_find(item, cp_slice_str(name), &v));
    return v;
}

static void legacy_expected(void)
{
    cp_buf vals = CP_BUF_INIT;
    item_of("{'five':{'N':'5'},'three':{'N':'3'},'seven':{'N':'7'},'w':{'S':'w1'}}", &vals);
    cp_slice vs = cp_buf_slice(&vals);
    cp_av five = first_av(vs, "five"), three = first_av(vs, "three"), seven = first_av(vs, "seven");
    cp_av w = first_av(vs, "w");
    cp_av range[2] = {three, seven};

    cp_buf lease = CP_BUF_INIT;
    item_of("{'leaseKey':{'S':'shard-1'},'leaseCounter':{'N':'5'},'leaseOwner':{'S':'w1'}}",
            &lease);
    cp_slice li = cp_buf_slice(&lease), none = {NULL, 0};

    struct {
        cp_legacy_cond c[2];
        size_t n;
        cp_condop how;
        int on_item, on_absent;
    } cases[] = {
        {{{.attr = CP_SLICE("leaseKey"), .exists = 0}}, 1, 0, 0, 1},
        {{{.attr = CP_SLICE("leaseCounter"), .exists = -1, .value = &five}}, 1, 0, 1, 0},
        {{{.attr = CP_SLICE("leaseCounter"), .exists = 1, .value = &three}}, 1, 0, 0, 0},
        {{{.attr = CP_SLICE("leaseCounter"), .exists = -1, .value = &five},
          {.attr = CP_SLICE("leaseOwner"), .exists = -1, .value = &w}},
         2,
         CP_CONDOP_AND,
         1,
         0},
        {{{.attr = CP_SLICE("leaseCounter"), .exists = -1, .value = &three},
          {.attr = CP_SLICE("leaseOwner"), .exists = -1, .value = &w}},
         2,
         CP_CONDOP_OR,
         1,
         0},
        {{{.attr = CP_SLICE("leaseCounter"),
           .exists = -1,
           .op = CP_CMP_GT,
           .list = &three,
           .n_list = 1}},
         1,
         0,
         1,
         0},
        {{{.attr = CP_SLICE("leaseCounter"),
           .exists = -1,
           .op = CP_CMP_BETWEEN,
           .list = range,
           .n_list = 2}},
         1,
         0,
         1,
         0},
        {{{.attr = CP_SLICE("leaseCounter"), .exists = -1, .op = CP_CMP_NE, .value = &five}},
         1,
         0,
         0,
         1},
        {{{.attr = CP_SLICE("leaseOwner"), .exists = -1, .op = CP_CMP_NULL}}, 1, 0, 0, 1},
        {{{.attr = CP_SLICE("leaseOwner"), .exists = -1, .op = CP_CMP_NOT_NULL}}, 1, 0, 1, 0},
        {{{.attr = CP_SLICE("leaseOwner"), .exists = -1, .op = CP_CMP_NOT_CONTAINS, .value = &w}},
         1,
         0,
         0,
         1},
        {{{.attr = CP_SLICE("leaseOwner"), .exists = -1, .op = CP_CMP_BEGINS_WITH, .value = &w}},
         1,
         0,
         1,
         0},
        {{{.attr = CP_SLICE("leaseCounter"),
           .exists = -1,
           .op = CP_CMP_IN,
           .list = range,
           .n_list = 2}},
         1,
         0,
         0,
         0},
        {{{.op = 0}}, 0, 0, 1, 1},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cp_expr_input in = {.op = CP_EXPR_OP_UPDATE,
                            .expected = cases[i].c,
                            .n_expected = cases[i].n,
                            .conditional_op = cases[i].how};
        cp_expr *e = NULL;
        cp_err err = {0};
        if (cp_expr_compile(&in, &e, &err)) {
            CPT_FAIL_AT("case %zu: %s", i, err.msg);
        }
        CPT_CHECK(cp_expr_has_condition(e));
        int a = cp_expr_eval_condition(e, li), b = cp_expr_eval_condition(e, none);
        if (a != cases[i].on_item || b != cases[i].on_absent) {
            CPT_FAIL_AT("case %zu: got %d/%d want %d/%d", i, a, b, cases[i].on_item,
                        cases[i].on_absent);
        }
        cp_expr_free(e);
    }

    struct {
        cp_legacy_cond c;
        const char *msg;
    } bad[] = {
        {{.attr = CP_SLICE("a"), .exists = 1},
         "One or more parameter values were invalid: Value must be provided when Exists is true "
         "for Attribute: a"},
        {{.attr = CP_SLICE("a"), .exists = -1},
         "One or more parameter values were invalid: Value must be provided when Exists is null "
         "for Attribute: a"},
        {{.attr = CP_SLICE("a"), .exists = 0, .value = &five},
         "One or more parameter values were invalid: Value cannot be used when Exists is false "
         "for Attribute: a"},
        {{.attr = CP_SLICE("a"),
          .exists = -1,
          .op = CP_CMP_EQ,
          .value = &five,
          .list = range,
          .n_list = 2},
         "One or more parameter values were invalid: Value and AttributeValueList cannot be used "
         "together for Attribute: a"},
        {{.attr = CP_SLICE("a"), .exists = 1, .op = CP_CMP_EQ, .value = &five},
         "One or more parameter values were invalid: Exists and ComparisonOperator cannot be used "
         "together for Attribute: a"},
        {{.attr = CP_SLICE("a"), .exists = -1, .list = range, .n_list = 2},
         "One or more parameter values were invalid: AttributeValueList can only be used with a "
         "ComparisonOperator for Attribute: a"},
        {{.attr = CP_SLICE("a"), .exists = -1, .op = CP_CMP_EQ},
         "One or more parameter values were invalid: Value or AttributeValueList must be used "
         "with ComparisonOperator: EQ for Attribute: a"},
        {{.attr = CP_SLICE("a"), .exists = -1, .op = CP_CMP_BETWEEN, .value = &five},
         "One or more parameter values were invalid: Invalid number of argument(s) for the BETWEEN "
         "ComparisonOperator"},
        {{.attr = CP_SLICE("a"), .exists = -1, .op = CP_CMP_BEGINS_WITH, .value = &five},
         "One or more parameter values were invalid: ComparisonOperator BEGINS_WITH is not valid "
         "for N AttributeValue type"},
        {{.attr = CP_SLICE("a"), .exists = -1, .op = CP_CMP_NULL, .value = &five},
         "One or more parameter values were invalid: Invalid number of argument(s) for the NULL "
         "ComparisonOperator"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cp_expr_input in = {.op = CP_EXPR_OP_PUT, .expected = &bad[i].c, .n_expected = 1};
        cp_expr *e = NULL;
        cp_err err = {0};
        CPT_EQ_INT(cp_expr_compile(&in, &e, &err), CP_EINVAL);
        if (strcmp(err.msg, bad[i].msg) != 0) {
            CPT_FAIL_AT("bad %zu:\n    %s\n != %s", i, err.msg, bad[i].msg);
        }
    }
    cp_buf_free(&vals);
    cp_buf_free(&lease);
}

static void legacy_mixing(void)
{
    cp_legacy_cond c = {.attr = CP_SLICE("a"), .exists = 0};
    cp_expr *e = NULL;
    cp_err err = {0};
    cp_expr_input in = {.op = CP_EXPR_OP_PUT,
                        .expected = &c,
                        .n_expected = 1,
                        .condition = CP_SLICE("attribute_exists(a)")};
    CPT_EQ_INT(cp_expr_compile(&in, &e, &err), CP_EINVAL);
    CPT_EQ_STR(err.msg, "Can not use both expression and non-expression parameters in the same "
                        "request: Non-expression parameters: {Expected} Expression parameters: "
                        "{ConditionExpression}");
    cp_legacy_update u = {.attr = CP_SLICE("a"), .action = CP_LEGACY_DELETE};
    in = (cp_expr_input){.op = CP_EXPR_OP_UPDATE,
                         .attribute_updates = &u,
                         .n_attribute_updates = 1,
                         .expected = &c,
                         .n_expected = 1,
                         .update = CP_SLICE("REMOVE b"),
                         .condition = CP_SLICE("attribute_exists(a)")};
    CPT_EQ_INT(cp_expr_compile(&in, &e, &err), CP_EINVAL);
    CPT_EQ_STR(err.msg, "Can not use both expression and non-expression parameters in the same "
                        "request: Non-expression parameters: {AttributeUpdates, Expected} "
                        "Expression parameters: {UpdateExpression, ConditionExpression}");
    cp_slice attrs[] = {CP_SLICE("a")};
    in = (cp_expr_input){.op = CP_EXPR_OP_GET,
                         .attributes_to_get = attrs,
                         .n_attributes_to_get = 1,
                         .projection = CP_SLICE("a")};
    CPT_EQ_INT(cp_expr_compile(&in, &e, &err), CP_EINVAL);
    CPT_EQ_STR(err.msg, "Can not use both expression and non-expression parameters in the same "
                        "request: Non-expression parameters: {AttributesToGet} Expression "
                        "parameters: {ProjectionExpression}");
    /* KeyConditions may go with a FilterExpression, not with a KeyConditionExpression */
    cp_buf vals = CP_BUF_INIT;
    item_of("{':a':{'S':'a'}}", &vals);
    cp_av a = first_av(cp_buf_slice(&vals), ":a");
    cp_legacy_cond kc = {
        .attr = CP_SLICE("pk"), .exists = -1, .op = CP_CMP_EQ, .list = &a, .n_list = 1};
    in = (cp_expr_input){.op = CP_EXPR_OP_QUERY,
                         .key_conditions = &kc,
                         .n_key_conditions = 1,
                         .filter = CP_SLICE("x = :a"),
                         .values = cp_buf_slice(&vals)};
    CPT_EQ_INT(cp_expr_compile(&in, &e, &err), CP_OK);
    cp_expr_free(e);
    in.key_condition = CP_SLICE("pk = :a");
    in.filter = (cp_slice){NULL, 0};
    CPT_EQ_INT(cp_expr_compile(&in, &e, &err), CP_EINVAL);
    CPT_EQ_STR(err.msg, "Can not use both expression and non-expression parameters in the same "
                        "request: Non-expression parameters: {KeyConditions} Expression "
                        "parameters: {KeyConditionExpression}");
    in = (cp_expr_input){.op = CP_EXPR_OP_SCAN,
                         .filter_conds = &kc,
                         .n_filter_conds = 1,
                         .conditional_op = CP_CONDOP_AND,
                         .filter = CP_SLICE("x = :a"),
                         .values = cp_buf_slice(&vals)};
    CPT_EQ_INT(cp_expr_compile(&in, &e, &err), CP_EINVAL);
    CPT_EQ_STR(err.msg, "Can not use both expression and non-expression parameters in the same "
                        "request: Non-expression parameters: {ScanFilter, ConditionalOperator} "
                        "Expression parameters: {FilterExpression}");
    cp_buf_free(&vals);
}

static void legacy_attribute_updates(void)
{
    cp_buf vals = CP_BUF_INIT, old = CP_BUF_INIT, key = CP_BUF_INIT, out = CP_BUF_INIT,
           want = CP_BUF_INIT;
    item_of("{'one':{'N':'1'},'owner':{'S':'w2'},'ss':{'SS':['c','a']},'l':{'L':[{'S':'z'}]},"
            "'s':{'S':'s'}}",
            &vals);
    cp_slice vs = cp_buf_slice(&vals);
    cp_av one = first_av(vs, "one"), owner = first_av(vs, "owner"), ss = first_av(vs, "ss");
    cp_av l = first_av(vs, "l"), s = first_av(vs, "s");
    item_of("{'leaseKey':{'S':'k'},'leaseCounter':{'N':'5'},'leaseOwner':{'S':'w1'},"
            "'tags':{'SS':['a','b']},'hist':{'L':[{'S':'y'}]},'gone':{'S':'x'}}",
            &old);
    item_of("{'leaseKey':{'S':'k'}}", &key);
    cp_legacy_update ups[] = {
        {CP_SLICE("leaseOwner"), CP_LEGACY_PUT, &owner},
        {CP_SLICE("leaseCounter"), CP_LEGACY_ADD, &one},
        {CP_SLICE("ownerSwitches"), CP_LEGACY_ADD, &one},
        {CP_SLICE("tags"), CP_LEGACY_ADD, &ss},
        {CP_SLICE("hist"), CP_LEGACY_ADD, &l},
        {CP_SLICE("gone"), CP_LEGACY_DELETE, NULL},
        {CP_SLICE("fresh"), 0, &s},
    };
    cp_expr_input in = {
        .op = CP_EXPR_OP_UPDATE, .attribute_updates = ups, .n_attribute_updates = 7};
    cp_expr *e = NULL;
    cp_err err = {0};
    CPT_EQ_INT(cp_expr_compile(&in, &e, &err), CP_OK);
    CPT_EQ_INT(cp_expr_apply_update(e, cp_buf_slice(&old), cp_buf_slice(&key), &out, &err), CP_OK);
    item_of("{'leaseKey':{'S':'k'},'leaseCounter':{'N':'6'},'leaseOwner':{'S':'w2'},"
            "'tags':{'SS':['a','b','c']},'hist':{'L':[{'S':'y'},{'S':'z'}]},"
            "'ownerSwitches':{'N':'1'},'fresh':{'S':'s'}}",
            &want);
    if (!cp_item_equal(cp_buf_slice(&out), cp_buf_slice(&want))) {
        CPT_FAIL_AT("got %s", json_of(cp_buf_slice(&out)));
    }
    cp_buf upd = CP_BUF_INIT;
    cp_expr_project_updated(e, cp_buf_slice(&out), &upd);
    CPT_EQ_INT(cp_item_count(cp_buf_slice(&upd)), 6); /* "gone" is not there any more */
    cp_buf_free(&upd);
    cp_expr_free(e);

    /* DELETE with a set value, and the type mismatch message */
    cp_legacy_update del[] = {{CP_SLICE("tags"), CP_LEGACY_DELETE, &ss}};
    in = (cp_expr_input){
        .op = CP_EXPR_OP_UPDATE, .attribute_updates = del, .n_attribute_updates = 1};
    CPT_EQ_INT(cp_expr_compile(&in, &e, &err), CP_OK);
    cp_buf_reset(&out);
    CPT_EQ_INT(cp_expr_apply_update(e, cp_buf_slice(&old), cp_buf_slice(&key), &out, &err), CP_OK);
    cp_av tags;
    CPT_CHECK(cp_item_find(cp_buf_slice(&out), CP_SLICE("tags"), &tags));
    CPT_EQ_INT(cp_av_count(tags), 1);
    cp_expr_free(e);
    cp_legacy_update mis[] = {{CP_SLICE("leaseOwner"), CP_LEGACY_ADD, &one}};
    in.attribute_updates = mis;
    CPT_EQ_INT(cp_expr_compile(&in, &e, &err), CP_OK);
    cp_buf_reset(&out);
    CPT_EQ_INT(cp_expr_apply_update(e, cp_buf_slice(&old), cp_buf_slice(&key), &out, &err),
               CP_EINVAL);
    CPT_EQ_STR(err.msg, "Type mismatch for attribute to update");
    cp_expr_free(e);
    cp_legacy_update keyup[] = {{CP_SLICE("leaseKey"), CP_LEGACY_PUT, &s}};
    in.attribute_updates = keyup;
    CPT_EQ_INT(cp_expr_compile(&in, &e, &err), CP_OK);
    cp_expr_keys ks = {.hash_name = CP_SLICE("leaseKey"), .hash_type = CP_AV_S};
    CPT_EQ_INT(cp_expr_check_keys(e, &ks, &err), CP_EINVAL);
    CPT_EQ_STR(err.msg, "One or more parameter values were invalid: Cannot update attribute "
                        "leaseKey. This attribute is part of the key");
    cp_expr_free(e);

    struct {
        cp_legacy_update u;
        const char *msg;
    } bad[] = {
        {{CP_SLICE("a"), CP_LEGACY_PUT, NULL},
         "One or more parameter values were invalid: Only DELETE action is allowed when no "
         "attribute value is specified"},
        {{CP_SLICE("a"), CP_LEGACY_DELETE, &s},
         "One or more parameter values were invalid: DELETE action with value is not supported "
         "for the type S"},
        {{CP_SLICE("a"), CP_LEGACY_ADD, &s},
         "One or more parameter values were invalid: ADD action is not supported for the type S"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        in.attribute_updates = &bad[i].u;
        CPT_EQ_INT(cp_expr_compile(&in, &e, &err), CP_EINVAL);
        CPT_EQ_STR(err.msg, bad[i].msg);
    }
    cp_buf_free(&vals);
    cp_buf_free(&old);
    cp_buf_free(&key);
    cp_buf_free(&out);
    cp_buf_free(&want);
}

static void legacy_query_and_scan(void)
{
    cp_buf vals = CP_BUF_INIT;
    item_of("{'a':{'S':'a'},'b':{'S':'b'},'n':{'N':'2'},'ss':{'SS':['x']}}", &vals);
    cp_slice vs = cp_buf_slice(&vals);
    cp_av a = first_av(vs, "a"), b = first_av(vs, "b"), n = first_av(vs, "n"),
          ss = first_av(vs, "ss");
    cp_expr_keys ks = {.hash_name = CP_SLICE("pk"),
                       .hash_type = CP_AV_S,
                       .range_name = CP_SLICE("sk"),
                       .range_type = CP_AV_S};
    cp_expr *e = NULL;
    cp_err err = {0};
    cp_key_cond kc;

    cp_legacy_cond good[] = {
        {.attr = CP_SLICE("sk"), .op = CP_CMP_BEGINS_WITH, .list = &b, .n_list = 1},
        {.attr = CP_SLICE("pk"), .op = CP_CMP_EQ, .list = &a, .n_list = 1},
    };
    cp_legacy_cond qf[] = {{.attr = CP_SLICE("kept"), .op = CP_CMP_GT, .list = &n, .n_list = 1}};
    cp_slice attrs[] = {CP_SLICE("kept"), CP_SLICE("pk")};
    cp_expr_input in = {.op = CP_EXPR_OP_QUERY,
                        .key_conditions = good,
                        .n_key_conditions = 2,
                        .filter_conds = qf,
                        .n_filter_conds = 1,
                        .attributes_to_get = attrs,
                        .n_attributes_to_get = 2};
    CPT_EQ_INT(cp_expr_compile(&in, &e, &err), CP_OK);
    CPT_EQ_INT(cp_expr_key_condition(e, &ks, &kc, &err), CP_OK);
    CPT_CHECK(cp_slice_eq(cp_av_bytes(kc.hash), CP_SLICE("a")));
    CPT_EQ_INT(kc.op, CP_KEY_RANGE_BEGINS_WITH);
    CPT_CHECK(cp_slice_eq(cp_av_bytes(kc.r1), CP_SLICE("b")));
    cp_buf it = CP_BUF_INIT, out = CP_BUF_INIT, want = CP_BUF_INIT;
    item_of("{'pk':{'S':'a'},'sk':{'S':'b1'},'kept':{'N':'3'},'other':{'N':'1'}}", &it);
    CPT_EQ_INT(cp_expr_eval_filter(e, cp_buf_slice(&it)), 1);
    cp_expr_project(e, cp_buf_slice(&it), &out);
    item_of("{'pk':{'S':'a'},'kept':{'N':'3'}}", &want);
    CPT_CHECK(cp_item_equal(cp_buf_slice(&out), cp_buf_slice(&want)));
    cp_expr_free(e);

    /* a QueryFilter on a key attribute */
    qf[0].attr = CP_SLICE("sk");
    CPT_EQ_INT(cp_expr_compile(&in, &e, &err), CP_OK);
    CPT_EQ_INT(cp_expr_key_condition(e, &ks, &kc, &err), CP_EINVAL);
    CPT_EQ_STR(err.msg, "QueryFilter can only contain non-primary key attributes: Primary key "
                        "attribute: sk");
    cp_expr_free(e);
    in.filter_conds = NULL;
    in.attributes_to_get = NULL;

    struct {
        cp_legacy_cond c[2];
        size_t n;
        int compile_fails;
        const char *msg;
    } bad[] = {
        {{{.attr = CP_SLICE("pk"), .op = CP_CMP_NE, .list = &a, .n_list = 1}},
         1,
         0,
         "Attempted conditional constraint is not an indexable operation"},
        {{{.attr = CP_SLICE("pk"), .op = CP_CMP_GT, .list = &a, .n_list = 1}},
         1,
         0,
         "Query key condition not supported"},
        {{{.attr = CP_SLICE("sk"), .op = CP_CMP_EQ, .list = &a, .n_list = 1}},
         1,
         0,
         "Query condition missed key schema element: pk"},
        {{{.attr = CP_SLICE("pk"), .op = CP_CMP_EQ, .list = &n, .n_list = 1}},
         1,
         0,
         "One or more parameter values were invalid: Condition parameter type does not match "
         "schema type"},
        {{{.attr = CP_SLICE("pk"), .op = CP_CMP_LT, .list = &ss, .n_list = 1}},
         1,
         1,
         "One or more parameter values were invalid: ComparisonOperator LT is not valid for SS "
         "AttributeValue type"},
        {{{.attr = CP_SLICE("pk"), .op = CP_CMP_EQ}},
         1,
         1,
         "One or more parameter values were invalid: Invalid number of argument(s) for the EQ "
         "ComparisonOperator"},
        {{{.attr = CP_SLICE("pk")}},
         1,
         1,
         "1 validation error detected: Value null at 'keyConditions.pk.member.comparisonOperator' "
         "failed to satisfy constraint: Member must not be null"},
        {{{.op = 0}}, 0, 1, "Conditions can be of length 1 or 2 only"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        in.key_conditions = bad[i].c;
        in.n_key_conditions = bad[i].n;
        int rc = cp_expr_compile(&in, &e, &err);
        if (bad[i].compile_fails) {
            CPT_EQ_INT(rc, CP_EINVAL);
        } else {
            CPT_EQ_INT(rc, CP_OK);
            CPT_EQ_INT(cp_expr_key_condition(e, &ks, &kc, &err), CP_EINVAL);
            cp_expr_free(e);
        }
        if (strcmp(err.msg, bad[i].msg) != 0) {
            CPT_FAIL_AT("bad %zu:\n    %s\n != %s", i, err.msg, bad[i].msg);
        }
    }

    /* ScanFilter with OR, an empty ScanFilter, AttributesToGet duplicates */
    cp_legacy_cond sf[] = {
        {.attr = CP_SLICE("x"), .op = CP_CMP_EQ, .list = &a, .n_list = 1},
        {.attr = CP_SLICE("y"), .op = CP_CMP_NOT_NULL},
    };
    in = (cp_expr_input){.op = CP_EXPR_OP_SCAN,
                         .filter_conds = sf,
                         .n_filter_conds = 2,
                         .conditional_op = CP_CONDOP_OR};
    CPT_EQ_INT(cp_expr_compile(&in, &e, &err), CP_OK);
    cp_buf_reset(&it);
    item_of("{'y':{'N':'1'}}", &it);
    CPT_EQ_INT(cp_expr_eval_filter(e, cp_buf_slice(&it)), 1);
    cp_expr_free(e);
    in.conditional_op = CP_CONDOP_AND;
    CPT_EQ_INT(cp_expr_compile(&in, &e, &err), CP_OK);
    CPT_EQ_INT(cp_expr_eval_filter(e, cp_buf_slice(&it)), 0);
    cp_expr_free(e);
    in.n_filter_conds = 0;
    CPT_EQ_INT(cp_expr_compile(&in, &e, &err), CP_OK);
    CPT_EQ_INT(cp_expr_eval_filter(e, cp_buf_slice(&it)), 1);
    cp_expr_free(e);
    cp_slice dup[] = {CP_SLICE("a"), CP_SLICE("b"), CP_SLICE("a")};
    in = (cp_expr_input){.op = CP_EXPR_OP_SCAN, .attributes_to_get = dup, .n_attributes_to_get = 3};
    CPT_EQ_INT(cp_expr_compile(&in, &e, &err), CP_EINVAL);
    CPT_EQ_STR(err.msg,
               "One or more parameter values were invalid: Duplicate value in attribute name: a");
    cp_legacy_cond between[] = {{.attr = CP_SLICE("x"), .op = CP_CMP_BETWEEN, .list = NULL}};
    cp_av bw[2] = {b, a};
    between[0].list = bw;
    between[0].n_list = 2;
    in = (cp_expr_input){.op = CP_EXPR_OP_SCAN, .filter_conds = between, .n_filter_conds = 1};
    CPT_EQ_INT(cp_expr_compile(&in, &e, &err), CP_EINVAL);
    CPT_EQ_STR(err.msg, "The BETWEEN condition was provided a range where the lower bound is "
                        "greater than the upper bound");
    cp_buf_free(&vals);
    cp_buf_free(&it);
    cp_buf_free(&out);
    cp_buf_free(&want);
}

static void names_from_json_shapes(void)
{
    const char *bad[] = {"{\"#a\":1}", "{\"#a\":true}", "{\"#a\":{}}", "{\"#a\":[]}",
                         "[]",         "\"x\""};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cp_json_lexer lx;
        cp_json_lexer_init(&lx, cp_slice_str(bad[i]));
        cp_buf out = CP_BUF_INIT;
        cp_err err = {0};
        CPT_EQ_INT(cp_expr_names_from_json(&lx, &out, &err), CP_EINVAL);
        CPT_CHECK(strncmp(err.msg, "SerializationException: ", 24) == 0);
        cp_buf_free(&out);
    }
    cp_json_lexer lx;
    cp_json_lexer_init(&lx, CP_SLICE("{\"#a\":\"x\\u00e9\",\"#b\":null,\"#c\":\"\"}"));
    cp_buf out = CP_BUF_INIT;
    cp_err err = {0};
    CPT_EQ_INT(cp_expr_names_from_json(&lx, &out, &err), CP_OK);
    CPT_EQ_INT(cp_item_check(cp_buf_slice(&out)), CP_OK);
    CPT_EQ_INT(cp_item_count(cp_buf_slice(&out)), 2);
    cp_av v = first_av(cp_buf_slice(&out), "#a");
    CPT_CHECK(cp_slice_eq(cp_av_bytes(v), CP_SLICE("x\xc3\xa9")));
    cp_buf_free(&out);
}

/* ---- Fuzz ---- */

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static uint32_t rnd(uint32_t n)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t) (rng_state % n);
}

static const char *const seeds[] = {
    "a = :v AND (b < :n OR NOT attribute_exists(c.d[1]))",
    "size(#n) BETWEEN :n AND :n2 OR s IN (:v, :s, :n)",
    "begins_with(s, :s) AND contains(ss, :s) AND attribute_type(m, :t)",
    "SET a = b + :n, #n = list_append(if_not_exists(l, :l), :l) REMOVE c[1], m.x ADD b :n "
    "DELETE ss :ss",
    "SET l[3] = :v, m.#n = :s, n = n - :n",
    "a, b.c, l[0].x, #n",
    "pk = :v AND begins_with(sk, :s)",
};

static const char *const vocab[] = {
    "a",
    "b",
    "s",
    "n",
    "l",
    "m",
    "ss",
    ":v",
    ":n",
    ":s",
    ":l",
    ":ss",
    ":t",
    "#n",
    "#x",
    ":x",
    "(",
    ")",
    "[",
    "]",
    "0",
    "7",
    ".",
    ",",
    "=",
    "<>",
    "<",
    "<=",
    ">",
    ">=",
    "+",
    "-",
    "AND",
    "OR",
    "NOT",
    "IN",
    "SET",
    "REMOVE",
    "ADD",
    "DELETE",
    "BETWEEN",
    "size",
    "contains",
    "begins_with",
    "attribute_exists",
    "attribute_type",
    "if_not_exists",
    "list_append",
    "status",
    "!",
    "\xc3\xa9",
    "_",
    "#",
    ":",
};

static int fuzz_compiled[5]; /* per grammar: inputs that compiled */

/* Whether `tok` occurs in text as a whole placeholder token. */
static int uses(const char *text, const char *tok)
{
    size_t n = strlen(tok);
    for (const char *p = strstr(text, tok); p; p = strstr(p + 1, tok)) {
        char c = p[n];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_')) {
            return 1;
        }
    }
    return 0;
}

static void fuzz_one(const char *text, cp_slice item, cp_slice key)
{
    /* placeholder maps holding just the tokens the text uses, so that inputs are not all
     * rejected as "unused" */
    static const char *const name_defs[][2] = {{"#n", "'#n':'n'"}, {"#x", "'#x':'x.y'"}};
    static const char *const value_defs[][2] = {
        {":v", "':v':{'S':'v'}"},         {":n", "':n':{'N':'1'}"},
        {":n2", "':n2':{'N':'5'}"},       {":s", "':s':{'S':'s'}"},
        {":l", "':l':{'L':[{'N':'1'}]}"}, {":ss", "':ss':{'SS':['x','y']}"},
        {":t", "':t':{'S':'M'}"},         {":x", "':x':{'BOOL':true}"},
    };
    char names[256] = "{", values[512] = "{";
    for (size_t i = 0; i < sizeof(name_defs) / sizeof(name_defs[0]); i++) {
        if (uses(text, name_defs[i][0])) {
            strcat(strcat(names, names[1] ? "," : ""), name_defs[i][1]);
        }
    }
    for (size_t i = 0; i < sizeof(value_defs) / sizeof(value_defs[0]); i++) {
        if (uses(text, value_defs[i][0])) {
            strcat(strcat(values, values[1] ? "," : ""), value_defs[i][1]);
        }
    }
    strcat(names, "}");
    strcat(values, "}");
    for (int kind = 0; kind < 5; kind++) {
        xreq r = {0};
        switch (kind) {
        case 0:
            r = (xreq){.op = CP_EXPR_OP_UPDATE, .cond = text};
            break;
        case 1:
            r = (xreq){.op = CP_EXPR_OP_UPDATE, .update = text};
            break;
        case 2:
            r = (xreq){.op = CP_EXPR_OP_GET, .proj = text};
            break;
        case 3:
            r = (xreq){.op = CP_EXPR_OP_QUERY, .key = text};
            break;
        default:
            r = (xreq){.op = CP_EXPR_OP_SCAN, .filter = text};
            break;
        }
        /* with the placeholder maps the text needs, and with none */
        for (int maps = 0; maps < 2; maps++) {
            if (maps) {
                r.names = names[1] != '}' ? names : NULL;
                r.values = values[1] != '}' ? values : NULL;
            }
            cp_expr *e = NULL;
            cp_err err = {0};
            int rc = xcompile(&r, &e, &err);
            if (rc != CP_OK && rc != CP_EINVAL) {
                CPT_FAIL_AT("rc %d for %s", rc, text);
            }
            if (rc == CP_EINVAL && err.msg[0] == 0) {
                CPT_FAIL_AT("no message for %s", text);
            }
            if (rc) {
                if (getenv("CPT_FUZZ_DEBUG")) {
                    printf("  [%d/%d] %s -> %s\n", kind, maps, text, err.msg);
                }
                continue;
            }
            fuzz_compiled[kind]++;
            cp_buf out = CP_BUF_INIT;
            (void) cp_expr_eval_condition(e, item);
            (void) cp_expr_eval_filter(e, item);
            cp_expr_project(e, item, &out);
            CPT_EQ_INT(cp_item_check(cp_buf_slice(&out)), CP_OK);
            cp_buf_reset(&out);
            if (cp_expr_apply_update(e, item, key, &out, &err) == CP_OK) {
                CPT_EQ_INT(cp_item_check(cp_buf_slice(&out)), CP_OK);
            }
            cp_buf_reset(&out);
            cp_expr_project_updated(e, item, &out);
            cp_expr_keys ks = {.hash_name = CP_SLICE("pk"),
                               .hash_type = CP_AV_S,
                               .range_name = CP_SLICE("sk"),
                               .range_type = CP_AV_S};
            cp_key_cond kc;
            (void) cp_expr_key_condition(e, &ks, &kc, &err);
            (void) cp_expr_check_keys(e, &ks, &err);
            cp_buf_free(&out);
            cp_expr_free(e);
        }
    }
}

static void fuzz_parser(void)
{
    cp_buf item = CP_BUF_INIT, key = CP_BUF_INIT, text = CP_BUF_INIT;
    item_of("{'pk':{'S':'v'},'sk':{'S':'s'},'a':{'S':'v'},'b':{'N':'3'},'s':{'S':'sss'},"
            "'n':{'N':'2'},'l':{'L':[{'N':'1'},{'M':{'x':{'S':'y'}}},{'L':[]}]},"
            "'m':{'M':{'x':{'N':'1'},'n':{'S':'q'}}},'ss':{'SS':['x','z']},'c':{'M':{'d':{'L':[{'N'"
            ":'0'},"
            "{'N':'1'}]}}}}",
            &item);
    item_of("{'pk':{'S':'v'}}", &key);
    int iters = getenv("CPT_FUZZ_ITERS") ? atoi(getenv("CPT_FUZZ_ITERS")) : 4000;
    size_t nseeds = sizeof(seeds) / sizeof(seeds[0]), nvocab = sizeof(vocab) / sizeof(vocab[0]);
    for (int i = 0; i < iters; i++) {
        cp_buf_reset(&text);
        if (i % 2 == 0) {
            /* random token soup */
            int n = 1 + (int) rnd(14);
            for (int k = 0; k < n; k++) {
                cp_buf_puts(&text, vocab[rnd((uint32_t) nvocab)]);
                if (rnd(3)) {
                    cp_buf_putc(&text, ' ');
                }
            }
        } else {
            /* a valid expression with a few byte-level mutations */
            cp_buf_puts(&text, seeds[rnd((uint32_t) nseeds)]);
            int m = 1 + (int) rnd(4);
            for (int k = 0; k < m && text.len; k++) {
                size_t at = rnd((uint32_t) text.len);
                switch (rnd(4)) {
                case 0:
                    text.p[at] = (char) (32 + rnd(95));
                    break;
                case 1:
                    memmove(text.p + at, text.p + at + 1, text.len - at);
                    text.len--;
                    break;
                case 2: {
                    const char *w = vocab[rnd((uint32_t) nvocab)];
                    size_t wl = strlen(w);
                    cp_buf_reserve(&text, wl);
                    memmove(text.p + at + wl, text.p + at, text.len - at + 1);
                    memcpy(text.p + at, w, wl);
                    text.len += wl;
                    break;
                }
                default:
                    text.p[at] = (char) rnd(256);
                    if (text.p[at] == 0) {
                        text.p[at] = '\x80';
                    }
                    break;
                }
            }
        }
        fuzz_one(text.p, cp_buf_slice(&item), cp_buf_slice(&key));
    }
    /* the seeds themselves compile in their own grammar */
    for (size_t i = 0; i < nseeds; i++) {
        fuzz_one(seeds[i], cp_buf_slice(&item), cp_buf_slice(&key));
    }
    /* the mutations must reach the evaluators, not only the error paths */
    for (int k = 0; k < 5; k++) {
        if (fuzz_compiled[k] < iters / 500) {
            CPT_FAIL_AT("grammar %d: only %d of %d inputs compiled", k, fuzz_compiled[k], iters);
        }
    }
    printf("  fuzz: %d inputs; compiled cond %d, update %d, projection %d, key %d, filter %d\n",
           iters, fuzz_compiled[0], fuzz_compiled[1], fuzz_compiled[2], fuzz_compiled[3],
           fuzz_compiled[4]);
    cp_buf_free(&item);
    cp_buf_free(&key);
    cp_buf_free(&text);
}

/* ---- Generated valid expressions ---- */

static void gen_path(cp_buf *b)
{
    static const char *const heads[] = {"a", "b", "n", "s", "l", "m", "ss", "#n", "#x", "c"};
    static const char *const tails[] = {"",    "",   "",      ".x",    "[0]",   "[1]",
                                        "[5]", ".n", "[0].x", ".d[1]", "[2][0]"};
    cp_buf_puts(b, heads[rnd(10)]);
    cp_buf_puts(b, tails[rnd(11)]);
}

static void gen_value(cp_buf *b)
{
    static const char *const vals[] = {":v", ":n", ":n2", ":s", ":l", ":ss", ":t", ":x"};
    cp_buf_puts(b, vals[rnd(8)]);
}

static void gen_operand(cp_buf *b)
{
    switch (rnd(5)) {
    case 0:
        gen_value(b);
        break;
    case 1:
        cp_buf_puts(b, "size(");
        gen_path(b);
        cp_buf_puts(b, ")");
        break;
    default:
        gen_path(b);
        break;
    }
}

static void gen_cond(cp_buf *b, int depth)
{
    static const char *const cmps[] = {" = ", " <> ", " < ", " <= ", " > ", " >= "};
    switch (depth > 2 ? rnd(5) : rnd(9)) {
    case 0:
        gen_operand(b);
        cp_buf_puts(b, cmps[rnd(6)]);
        gen_operand(b);
        break;
    case 1:
        gen_operand(b);
        cp_buf_puts(b, " BETWEEN ");
        gen_value(b);
        cp_buf_puts(b, " AND ");
        gen_value(b);
        break;
    case 2:
        gen_operand(b);
        cp_buf_puts(b, " IN (");
        gen_value(b);
        cp_buf_puts(b, ", ");
        gen_operand(b);
        cp_buf_puts(b, ")");
        break;
    case 3: {
        static const char *const f1[] = {"attribute_exists(", "attribute_not_exists("};
        cp_buf_puts(b, f1[rnd(2)]);
        gen_path(b);
        cp_buf_puts(b, ")");
        break;
    }
    case 4: {
        static const char *const f2[] = {"begins_with(", "contains(", "attribute_type("};
        cp_buf_puts(b, f2[rnd(3)]);
        gen_path(b);
        cp_buf_puts(b, ", ");
        gen_value(b);
        cp_buf_puts(b, ")");
        break;
    }
    case 5:
        cp_buf_puts(b, "NOT ");
        gen_cond(b, depth + 1);
        break;
    case 6:
        cp_buf_puts(b, "(");
        gen_cond(b, depth + 1);
        cp_buf_puts(b, ")");
        break;
    default:
        gen_cond(b, depth + 1);
        cp_buf_puts(b, rnd(2) ? " AND " : " OR ");
        gen_cond(b, depth + 1);
        break;
    }
}

static void gen_setval(cp_buf *b, int depth)
{
    switch (depth > 1 ? rnd(2) : rnd(6)) {
    case 0:
        gen_value(b);
        break;
    case 1:
        gen_path(b);
        break;
    case 2:
        cp_buf_puts(b, "if_not_exists(");
        gen_path(b);
        cp_buf_puts(b, ", ");
        gen_setval(b, depth + 1);
        cp_buf_puts(b, ")");
        break;
    case 3:
        cp_buf_puts(b, "list_append(");
        gen_setval(b, depth + 1);
        cp_buf_puts(b, ", ");
        gen_setval(b, depth + 1);
        cp_buf_puts(b, ")");
        break;
    default:
        gen_setval(b, depth + 1);
        cp_buf_puts(b, rnd(2) ? " + " : " - ");
        gen_setval(b, depth + 1);
        break;
    }
}

static void gen_update(cp_buf *b)
{
    static const char *const kw[] = {"SET ", "REMOVE ", "ADD ", "DELETE "};
    int used = 0;
    int nsec = 1 + (int) rnd(3);
    for (int i = 0; i < nsec; i++) {
        int k = (int) rnd(4);
        if (used & (1 << k)) {
            continue;
        }
        used |= 1 << k;
        cp_buf_puts(b, kw[k]);
        int n = 1 + (int) rnd(3);
        for (int j = 0; j < n; j++) {
            cp_buf_puts(b, j ? ", " : "");
            gen_path(b);
            if (k == 0) {
                cp_buf_puts(b, " = ");
                gen_setval(b, 0);
            } else if (k >= 2) {
                cp_buf_putc(b, ' ');
                gen_value(b);
            }
        }
        cp_buf_putc(b, ' ');
    }
}

static void fuzz_generated(void)
{
    const char *items[] = {
        RICH, BASE, PITEM, K,
        "{'pk':{'S':'v'},'a':{'N':'1'},'b':{'SS':['x']},'n':{'M':{'x':{'N':'2'}}},"
        "'l':{'L':[{'L':[{'N':'1'}]},{'M':{'x':{'S':'q'}}}]},'ss':{'SS':['y']},"
        "'c':{'M':{'d':{'L':[{'N':'0'},{'N':'1'}]}}},'x.y':{'N':'9'}}"};
    cp_buf it[5], key = CP_BUF_INIT, text = CP_BUF_INIT;
    for (int i = 0; i < 5; i++) {
        it[i] = CP_BUF_INIT;
        item_of(items[i], &it[i]);
    }
    item_of("{'pk':{'S':'v'}}", &key);
    int iters = getenv("CPT_FUZZ_ITERS") ? atoi(getenv("CPT_FUZZ_ITERS")) : 4000;
    memset(fuzz_compiled, 0, sizeof(fuzz_compiled));
    for (int i = 0; i < iters; i++) {
        cp_buf_reset(&text);
        if (i % 2) {
            gen_update(&text);
        } else {
            gen_cond(&text, 0);
        }
        fuzz_one(text.p, cp_buf_slice(&it[rnd(5)]), cp_buf_slice(&key));
    }
    /* most generated conditions and many updates are valid */
    CPT_CHECK(fuzz_compiled[0] > iters / 8);
    CPT_CHECK(fuzz_compiled[1] > iters / 20);
    printf("  generated: %d; compiled cond %d, update %d, filter %d\n", iters, fuzz_compiled[0],
           fuzz_compiled[1], fuzz_compiled[4]);
    for (int i = 0; i < 5; i++) {
        cp_buf_free(&it[i]);
    }
    cp_buf_free(&key);
    cp_buf_free(&text);
}

CPT_LIST = {
    {"condition_table", condition_table},
    {"condition_on_absent_item", condition_on_absent_item},
    {"filter_scan", filter_scan},
    {"update_table", update_table},
    {"update_item_size_limit", update_item_size_limit},
    {"update_large_sets", update_large_sets},
    {"update_without_expression_keeps_item", update_without_expression_keeps_item},
    {"updated_paths_projection", updated_paths_projection},
    {"projection_table", projection_table},
    {"key_condition_table", key_condition_table},
    {"key_checks_for_writes", key_checks_for_writes},
    {"validation_messages", validation_messages},
    {"limits", limits},
    {"legacy_expected", legacy_expected},
    {"legacy_mixing", legacy_mixing},
    {"legacy_attribute_updates", legacy_attribute_updates},
    {"legacy_query_and_scan", legacy_query_and_scan},
    {"names_from_json_shapes", names_from_json_shapes},
    {"fuzz_parser", fuzz_parser},
    {"fuzz_generated", fuzz_generated},
    {0},
};
