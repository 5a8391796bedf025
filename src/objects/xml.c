/* SPDX-License-Identifier: MIT */
/*
 * A strict, small XML parser for S3 request bodies, and the escaping used by S3 responses.
 * Strictness is deliberate: S3 answers MalformedXML for anything not well formed, and refusing
 * DOCTYPE avoids entity-expansion tricks entirely.
 */
#include "objects/xml.h"

#include <string.h>

#include "core/mem.h"

typedef struct parser {
    const char *p, *end;
    cp_xml_doc *doc;
    size_t max_nodes;
    cp_err *err;
    /* Per open element: its raw name (for the end tag), the last child appended, and the
     * character data gathered so far (text may be split around child elements). */
    struct level {
        int node;
        cp_slice raw;
        int last_child;
        cp_buf text;
    } st[CP_XML_MAX_DEPTH];
    int depth;
} parser;

static int fail(parser *ps, const char *what)
{
    return cp_err_set(ps->err, CP_EINVAL, "malformed XML: %s", what);
}

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static void skip_space(parser *ps)
{
    while (ps->p < ps->end && is_space(*ps->p)) {
        ps->p++;
    }
}

static int starts(parser *ps, const char *s)
{
    size_t n = strlen(s);
    return (size_t) (ps->end - ps->p) >= n && memcmp(ps->p, s, n) == 0;
}

/* Skip past the next occurrence of `term`; CP_EINVAL when it never comes. */
static int skip_past(parser *ps, const char *term, const char *what)
{
    size_t n = strlen(term);
    while ((size_t) (ps->end - ps->p) >= n) {
        if (memcmp(ps->p, term, n) == 0) {
            ps->p += n;
            return CP_OK;
        }
        ps->p++;
    }
    return fail(ps, what);
}

static int name_char(char c)
{
    return !is_space(c) && c != '/' && c != '>' && c != '=' && c != '<' && c != '"' && c != '\'' &&
           c != '&' && c != 0;
}

static int read_name(parser *ps, cp_slice *out)
{
    const char *s = ps->p;
    while (ps->p < ps->end && name_char(*ps->p)) {
        ps->p++;
    }
    if (ps->p == s || (*s >= '0' && *s <= '9') || *s == '-' || *s == '.' || *s == ':') {
        return fail(ps, "bad element or attribute name");
    }
    *out = cp_slice_of(s, (size_t) (ps->p - s));
    return CP_OK;
}

static void put_utf8(cp_buf *b, unsigned long cp)
{
    if (cp < 0x80) {
        cp_buf_putc(b, (char) cp);
    } else if (cp < 0x800) {
        cp_buf_putc(b, (char) (0xC0 | (cp >> 6)));
        cp_buf_putc(b, (char) (0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
        cp_buf_putc(b, (char) (0xE0 | (cp >> 12)));
        cp_buf_putc(b, (char) (0x80 | ((cp >> 6) & 0x3F)));
        cp_buf_putc(b, (char) (0x80 | (cp & 0x3F)));
    } else {
        cp_buf_putc(b, (char) (0xF0 | (cp >> 18)));
        cp_buf_putc(b, (char) (0x80 | ((cp >> 12) & 0x3F)));
        cp_buf_putc(b, (char) (0x80 | ((cp >> 6) & 0x3F)));
        cp_buf_putc(b, (char) (0x80 | (cp & 0x3F)));
    }
}

/* Decode one reference at ps->p ('&' ... ';') into b. */
static int read_ref(parser *ps, cp_buf *b)
{
    static const struct {
        const char *name;
        char c;
    } ents[] = {{"&lt;", '<'}, {"&gt;", '>'}, {"&amp;", '&'}, {"&quot;", '"'}, {"&apos;", '\''}};
    for (size_t i = 0; i < sizeof(ents) / sizeof(ents[0]); i++) {
        if (starts(ps, ents[i].name)) {
            cp_buf_putc(b, ents[i].c);
            ps->p += strlen(ents[i].name);
            return CP_OK;
        }
    }
    if (!starts(ps, "&#")) {
        return fail(ps, "unknown entity");
    }
    ps->p += 2;
    int hex = 0;
    if (ps->p < ps->end && *ps->p == 'x') {
        hex = 1;
        ps->p++;
    }
    unsigned long cp = 0;
    int digits = 0;
    while (ps->p < ps->end && *ps->p != ';') {
        char c = *ps->p++;
        int v;
        if (c >= '0' && c <= '9') {
            v = c - '0';
        } else if (hex && c >= 'a' && c <= 'f') {
            v = c - 'a' + 10;
        } else if (hex && c >= 'A' && c <= 'F') {
            v = c - 'A' + 10;
        } else {
            return fail(ps, "bad character reference");
        }
        cp = cp * (hex ? 16 : 10) + (unsigned long) v;
        if (++digits > 8) {
            return fail(ps, "bad character reference");
        }
    }
    if (ps->p >= ps->end || digits == 0 || cp == 0 || cp > 0x10FFFF ||
        (cp >= 0xD800 && cp <= 0xDFFF)) {
        return fail(ps, "bad character reference");
    }
    ps->p++; /* ';' */
    put_utf8(b, cp);
    return CP_OK;
}

static int new_node(parser *ps, cp_slice name, int *out)
{
    cp_xml_doc *d = ps->doc;
    if (ps->max_nodes && d->n >= ps->max_nodes) {
        return cp_err_set(ps->err, CP_EINVAL, "malformed XML: too many elements");
    }
    if (d->n == d->cap) {
        d->cap = d->cap ? d->cap * 2 : 16;
        d->nodes = cp_realloc(d->nodes, d->cap * sizeof(*d->nodes));
    }
    const char *colon = memchr(name.p, ':', name.len);
    if (colon) {
        name = cp_slice_of(colon + 1, name.len - (size_t) (colon + 1 - name.p));
    }
    d->nodes[d->n] = (cp_xml_node){name, 0, 0, -1, -1};
    *out = (int) d->n++;
    return CP_OK;
}

/* A start tag after its '<': name, attributes, then '>' or '/>'. */
static int read_start_tag(parser *ps)
{
    cp_slice raw;
    int rc = read_name(ps, &raw);
    if (rc < 0) {
        return rc;
    }
    int node = -1;
    if ((rc = new_node(ps, raw, &node)) < 0) {
        return rc;
    }
    if (ps->depth > 0) {
        struct level *up = &ps->st[ps->depth - 1];
        if (up->last_child < 0) {
            ps->doc->nodes[up->node].first_child = node;
        } else {
            ps->doc->nodes[up->last_child].next = node;
        }
        up->last_child = node;
    }
    for (;;) {
        int had_space = ps->p < ps->end && is_space(*ps->p);
        skip_space(ps);
        if (ps->p >= ps->end) {
            return fail(ps, "unterminated start tag");
        }
        if (*ps->p == '>' || starts(ps, "/>")) {
            break;
        }
        if (!had_space) {
            return fail(ps, "missing space before attribute");
        }
        cp_slice aname;
        if ((rc = read_name(ps, &aname)) < 0) {
            return rc;
        }
        skip_space(ps);
        if (ps->p >= ps->end || *ps->p != '=') {
            return fail(ps, "attribute without value");
        }
        ps->p++;
        skip_space(ps);
        if (ps->p >= ps->end || (*ps->p != '"' && *ps->p != '\'')) {
            return fail(ps, "unquoted attribute value");
        }
        char q = *ps->p++;
        while (ps->p < ps->end && *ps->p != q) {
            if (*ps->p == '<') {
                return fail(ps, "'<' in attribute value");
            }
            ps->p++;
        }
        if (ps->p >= ps->end) {
            return fail(ps, "unterminated attribute value");
        }
        ps->p++;
    }
    if (*ps->p == '/') {
        ps->p += 2;
        ps->doc->nodes[node].text = ps->doc->text.len;
        ps->doc->nodes[node].text_len = 0;
        cp_buf_putc(&ps->doc->text, 0);
        return CP_OK;
    }
    ps->p++;
    if (ps->depth >= CP_XML_MAX_DEPTH) {
        return cp_err_set(ps->err, CP_EINVAL, "malformed XML: nested too deeply");
    }
    struct level *lv = &ps->st[ps->depth++];
    lv->node = node;
    lv->raw = raw;
    lv->last_child = -1;
    cp_buf_reset(&lv->text);
    return CP_OK;
}

static int read_end_tag(parser *ps)
{
    cp_slice raw;
    int rc = read_name(ps, &raw);
    if (rc < 0) {
        return rc;
    }
    skip_space(ps);
    if (ps->p >= ps->end || *ps->p != '>') {
        return fail(ps, "unterminated end tag");
    }
    ps->p++;
    if (ps->depth == 0 || !cp_slice_eq(raw, ps->st[ps->depth - 1].raw)) {
        return fail(ps, "mismatched end tag");
    }
    struct level *lv = &ps->st[--ps->depth];
    cp_xml_node *n = &ps->doc->nodes[lv->node];
    n->text = ps->doc->text.len;
    n->text_len = lv->text.len;
    if (lv->text.len) {
        cp_buf_append(&ps->doc->text, lv->text.p, lv->text.len);
    }
    cp_buf_putc(&ps->doc->text, 0);
    return CP_OK;
}

/* Comments, processing instructions and white space outside the root element. */
static int skip_misc(parser *ps)
{
    for (;;) {
        skip_space(ps);
        int rc;
        if (starts(ps, "<?")) {
            rc = skip_past(ps, "?>", "unterminated processing instruction");
        } else if (starts(ps, "<!--")) {
            rc = skip_past(ps, "-->", "unterminated comment");
        } else if (starts(ps, "<!")) {
            return fail(ps, "DOCTYPE and declarations are not accepted");
        } else {
            return CP_OK;
        }
        if (rc < 0) {
            return rc;
        }
    }
}

static int parse(parser *ps)
{
    if (starts(ps, "\xEF\xBB\xBF")) {
        ps->p += 3;
    }
    int rc = skip_misc(ps);
    if (rc < 0) {
        return rc;
    }
    if (ps->p >= ps->end || *ps->p != '<') {
        return fail(ps, "no root element");
    }
    ps->p++;
    if ((rc = read_start_tag(ps)) < 0) {
        return rc;
    }
    while (ps->depth > 0) {
        if (ps->p >= ps->end) {
            return fail(ps, "unexpected end of document");
        }
        struct level *lv = &ps->st[ps->depth - 1];
        if (starts(ps, "</")) {
            ps->p += 2;
            rc = read_end_tag(ps);
        } else if (starts(ps, "<!--")) {
            rc = skip_past(ps, "-->", "unterminated comment");
        } else if (starts(ps, "<![CDATA[")) {
            ps->p += 9;
            const char *s = ps->p;
            rc = skip_past(ps, "]]>", "unterminated CDATA section");
            if (rc == CP_OK) {
                cp_buf_append(&lv->text, s, (size_t) (ps->p - 3 - s));
            }
        } else if (starts(ps, "<?")) {
            rc = skip_past(ps, "?>", "unterminated processing instruction");
        } else if (starts(ps, "<!")) {
            rc = fail(ps, "declaration inside an element");
        } else if (*ps->p == '<') {
            ps->p++;
            rc = read_start_tag(ps);
        } else if (*ps->p == '&') {
            rc = read_ref(ps, &lv->text);
        } else {
            const char *s = ps->p;
            while (ps->p < ps->end && *ps->p != '<' && *ps->p != '&') {
                if (*ps->p == 0) {
                    return fail(ps, "NUL character");
                }
                ps->p++;
            }
            cp_buf_append(&lv->text, s, (size_t) (ps->p - s));
            rc = CP_OK;
        }
        if (rc < 0) {
            return rc;
        }
    }
    if ((rc = skip_misc(ps)) < 0) {
        return rc;
    }
    if (ps->p != ps->end) {
        return fail(ps, "content after the root element");
    }
    return CP_OK;
}

int cp_xml_parse(cp_slice in, size_t max_nodes, cp_xml_doc *doc, cp_err *err)
{
    parser *ps = cp_calloc(1, sizeof(*ps));
    ps->p = in.p ? in.p : "";
    ps->end = ps->p + in.len;
    ps->doc = doc;
    ps->max_nodes = max_nodes;
    ps->err = err;
    doc->n = 0;
    cp_buf_reset(&doc->text);
    int rc = parse(ps);
    for (int i = 0; i < CP_XML_MAX_DEPTH; i++) {
        cp_buf_free(&ps->st[i].text);
    }
    cp_free(ps);
    return rc;
}

void cp_xml_doc_free(cp_xml_doc *doc)
{
    cp_free(doc->nodes);
    cp_buf_free(&doc->text);
    *doc = CP_XML_DOC_INIT;
}

int cp_xml_child(const cp_xml_doc *doc, int node, const char *name)
{
    if (node < 0 || (size_t) node >= doc->n) {
        return -1;
    }
    cp_slice want = cp_slice_str(name);
    for (int c = doc->nodes[node].first_child; c >= 0; c = doc->nodes[c].next) {
        if (cp_slice_eq(doc->nodes[c].name, want)) {
            return c;
        }
    }
    return -1;
}

int cp_xml_next_same(const cp_xml_doc *doc, int node)
{
    if (node < 0 || (size_t) node >= doc->n) {
        return -1;
    }
    for (int c = doc->nodes[node].next; c >= 0; c = doc->nodes[c].next) {
        if (cp_slice_eq(doc->nodes[c].name, doc->nodes[node].name)) {
            return c;
        }
    }
    return -1;
}

cp_slice cp_xml_text(const cp_xml_doc *doc, int node)
{
    if (node < 0 || (size_t) node >= doc->n) {
        return cp_slice_of("", 0);
    }
    return cp_slice_of(doc->text.p + doc->nodes[node].text, doc->nodes[node].text_len);
}

cp_slice cp_xml_name(const cp_xml_doc *doc, int node)
{
    if (node < 0 || (size_t) node >= doc->n) {
        return cp_slice_of("", 0);
    }
    return doc->nodes[node].name;
}

void cp_xml_put_escaped(cp_buf *out, cp_slice s)
{
    cp_buf_reserve(out, s.len);
    for (size_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char) s.p[i];
        switch (c) {
        case '&':
            cp_buf_puts(out, "&amp;");
            break;
        case '<':
            cp_buf_puts(out, "&lt;");
            break;
        case '>':
            cp_buf_puts(out, "&gt;");
            break;
        case '"':
            cp_buf_puts(out, "&quot;");
            break;
        case '\'':
            cp_buf_puts(out, "&apos;");
            break;
        default:
            /* Control characters as references, as S3 writes them: a raw \r would be
             * normalised away by the client's parser. */
            if (c < 0x20 || c == 0x7F) {
                cp_buf_printf(out, "&#x%X;", c);
            } else {
                cp_buf_putc(out, (char) c);
            }
        }
    }
}

void cp_xml_put_elem(cp_buf *out, const char *name, cp_slice text)
{
    cp_buf_printf(out, "<%s>", name);
    cp_xml_put_escaped(out, text);
    cp_buf_printf(out, "</%s>", name);
}
