/* Shared by the files of the config reader (config.c, config_mail.c). */
#ifndef PST_CONFIG_INT_H
#define PST_CONFIG_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pst_config.h"

/* s as a number up to max (decimal, or 0x hex) into *out: PST_OK, or
 * PST_E_INVAL (empty, a sign, trailing bytes, over max). */
int pst_config__parse_u64(const char *s, uint64_t max, uint64_t *out);
/* 1/yes/true/on or 0/no/false/off, any case: PST_OK, else PST_E_INVAL. */
int pst_config__parse_bool(const char *s, bool *out);
/* name is underscored as written or with '-' for each '_' (flag spelling). */
bool pst_config__name_is(const char *name, const char *underscored);
/* One SMTP, LMTP or smarthost setting (config_mail.c): PST_OK,
 * PST_E_INVAL with err saying what the value must be, or PST_E_NOTFOUND
 * for a name it does not know (config.c reports it as unknown). */
int pst_config__apply_mail_setting(pst_node_config *cfg, const char *name, const char *value,
                                   char *err, size_t errcap);

#endif
