/* placeholder: postern inbox / read (being written) */
#include "cli.h"

int pst_cmd_inbox(int argc, char **argv) {
    (void)argc;
    (void)argv;
    pst_cli_error("inbox is not available in this version");
    return PST_EXIT_FAIL;
}
int pst_cmd_read(int argc, char **argv) {
    (void)argc;
    (void)argv;
    pst_cli_error("read is not available in this version");
    return PST_EXIT_FAIL;
}
