#include "cli.h"

int pst_cmd_pow(int argc, char **argv) {
    (void)argc;
    (void)argv;
    pst_cli_error("pow: not implemented yet");
    return PST_EXIT_FAIL;
}
