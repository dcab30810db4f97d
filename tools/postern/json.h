/* JSON output of the CLI (`--json`): a control response body written as
 * compact JSON. Only the CLI prints JSON, so it lives here and not in proto/
 * (proto/ holds wire formats; JSON is never parsed and never on the wire). */
#ifndef PST_CLI_JSON_H
#define PST_CLI_JSON_H

#include <stdio.h>

#include "pst_envelope.h"

/* Writes v as compact JSON: uint as a decimal number, bool, str escaped
 * (", \, \n, \t, \r, other control bytes as \u00XX; UTF-8 passes through,
 * the tree only holds valid UTF-8), bin as a lowercase hex string, arrays,
 * maps in their insertion order. PST_E_IO when the stream fails (part of the
 * JSON may be written), PST_E_INVAL for NULL. */
int pst_value_write_json(const pst_value *v, FILE *f);

#endif
