/* SPDX-License-Identifier: MIT */
/*
 * The little XML the S3 REST API needs: a strict parser for the small request documents
 * (CreateBucketConfiguration, CompleteMultipartUpload, Delete) into a flat tree, and escaping
 * for the responses we write by hand. Not a general XML processor: DOCTYPE is refused (no
 * entity expansion), namespaces are reduced to local names, attributes are checked and skipped.
 */
#ifndef CP_OBJECTS_XML_H
#define CP_OBJECTS_XML_H

#include <stddef.h>

#include "core/buf.h"
#include "core/err.h"

/* One element. Nodes are numbered in document order; 0 is the root element. */
typedef struct cp_xml_node {
    cp_slice name; /* local name (any "prefix:" removed), borrowed from the parsed input */
    size_t text;   /* offset of its unescaped character data in cp_xml_doc.text */
    size_t text_len;
    int first_child; /* node index, -1 when none */
    int next;        /* next sibling, -1 when none */
} cp_xml_node;

typedef struct cp_xml_doc {
    cp_xml_node *nodes; /* nodes[0] is the root */
    size_t n, cap;
    cp_buf text; /* character data of all elements, NUL-separated */
} cp_xml_doc;

#define CP_XML_DOC_INIT ((cp_xml_doc){NULL, 0, 0, CP_BUF_INIT})

/* Maximum element nesting accepted by cp_xml_parse. */
#define CP_XML_MAX_DEPTH 32

/*
 * Parse one XML document. Element names borrow `in`, which must outlive the doc; character
 * data is unescaped (predefined entities, numeric character references, CDATA) into doc->text.
 * An element's text is the concatenation of its own character data, excluding children's.
 * Returns CP_OK, or CP_EINVAL with err->msg naming the problem (not well-formed, DOCTYPE,
 * nesting deeper than CP_XML_MAX_DEPTH, more than `max_nodes` elements when non-zero).
 * The doc must be cp_xml_doc_free()d in both cases.
 */
int cp_xml_parse(cp_slice in, size_t max_nodes, cp_xml_doc *doc, cp_err *err);
void cp_xml_doc_free(cp_xml_doc *doc);

/* First child of `node` named `name` (local name, exact), or -1. */
int cp_xml_child(const cp_xml_doc *doc, int node, const char *name);
/* Next sibling after `node` with the same name as `node`, or -1. */
int cp_xml_next_same(const cp_xml_doc *doc, int node);
/* The unescaped text of `node`, valid until the doc is freed. */
cp_slice cp_xml_text(const cp_xml_doc *doc, int node);
/* Name of node as a slice. */
cp_slice cp_xml_name(const cp_xml_doc *doc, int node);

/* Append `s` escaped for element content or attribute values (&, <, >, ", ' and control
 * characters as character references). */
void cp_xml_put_escaped(cp_buf *out, cp_slice s);
/* Append <name>escaped text</name>. */
void cp_xml_put_elem(cp_buf *out, const char *name, cp_slice text);

#endif
