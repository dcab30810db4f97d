/* placeholder: postern send / outbox / unsend (being written) */
#include "cli.h"

static int not_yet(const char *what) {
    pst_cli_error("%s is not available in this version", what);
    return PST_EXIT_FAIL;
}
int pst_cmd_send(int argc, char **argv) {
    (void)argc;
    (void)argv;
    return not_yet("send");
}
int pst_cmd_outbox(int argc, char **argv) {
    (void)argc;
    (void)argv;
    return not_yet("outbox");
}
int pst_cmd_unsend(int argc, char **argv) {
    (void)argc;
    (void)argv;
    return not_yet("unsend");
}
