/* The short-lived node, when no posternd runs for the home: `posternd
 * --oneshot`, a program of its own, so that `postern` itself links only
 * what the control-socket client needs (docs/MAIL.md, "Where the time
 * goes"): no OpenDHT, GnuTLS, curl or libuv, and starts in about a
 * millisecond. */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "ctrl_client.h"
#include "pst_fetch.h"

/* set by meson: the build tree's posternd, this program's folder there, and
 * the installed posternd */
#ifndef PST_POSTERND_BUILD
#define PST_POSTERND_BUILD ""
#endif
#ifndef PST_POSTERN_BUILD_DIR
#define PST_POSTERN_BUILD_DIR ""
#endif
#ifndef PST_POSTERND_INSTALLED
#define PST_POSTERND_INSTALLED "/usr/bin/posternd"
#endif

/* At most 2 + 2 per flag + the terminating NULL. */
#define ONESHOT_ARGV_MAX (3 + 2 * PST_CLI_FLAGS_MAX)

static int find_posternd(char *out, size_t cap) {
    const char *env = getenv("POSTERN_POSTERND");
    if (env != NULL && env[0] != '\0')
        return snprintf(out, cap, "%s", env) < (int)cap ? 0 : -1;
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n > 0) {
        self[n] = '\0';
        char *slash = strrchr(self, '/');
        if (slash != NULL) {
            *slash = '\0';
            if (snprintf(out, cap, "%s/posternd", self) < (int)cap && access(out, X_OK) == 0)
                return 0;
            /* run from the build tree: its posternd, not an installed one */
            if (PST_POSTERN_BUILD_DIR[0] != '\0' && strcmp(self, PST_POSTERN_BUILD_DIR) == 0 &&
                access(PST_POSTERND_BUILD, X_OK) == 0)
                return snprintf(out, cap, "%s", PST_POSTERND_BUILD) < (int)cap ? 0 : -1;
        }
    }
    return snprintf(out, cap, "%s", PST_POSTERND_INSTALLED) < (int)cap ? 0 : -1;
}

int pst_cli_oneshot(const pst_cli_common *c, const pst_ctrl_request *req, pst_ctrl_response *resp) {
    memset(resp, 0, sizeof *resp);
    char prog[PATH_MAX];
    if (find_posternd(prog, sizeof prog) != 0) {
        pst_cli_error("the path of posternd is too long");
        return PST_EXIT_FAIL;
    }
    char *argv[ONESHOT_ARGV_MAX];
    char flags[PST_CLI_FLAGS_MAX][32];
    size_t k = 0;
    argv[k++] = prog;
    argv[k++] = "--oneshot";
    for (unsigned i = 0; i < c->n_flags; i++) {
        snprintf(flags[i], sizeof flags[i], "--%s", c->flag_names[i]);
        argv[k++] = flags[i];
        argv[k++] = (char *)c->flag_values[i];
    }
    argv[k] = NULL;
    uint8_t *buf = malloc(PST_FRAME_HEADER_BYTES + PST_CTRL_FRAME_MAX);
    size_t len = 0;
    if (buf == NULL || pst_ctrl_request_encode(req, buf + PST_FRAME_HEADER_BYTES,
                                               PST_CTRL_FRAME_MAX, &len) != PST_OK) {
        free(buf);
        pst_cli_error("request too large");
        return PST_EXIT_FAIL;
    }
    pst_frame_header_write((uint32_t)len, buf);
    /* one socket pair: the child's stdin and stdout */
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
        free(buf);
        pst_cli_error("cannot start the short-lived node: %s", strerror(errno));
        return PST_EXIT_FAIL;
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        if (dup2(sv[1], 0) < 0 || dup2(sv[1], 1) < 0)
            _exit(127);
        execv(prog, argv);
        fprintf(stderr, "postern: cannot run %s: %s (set POSTERN_POSTERND to its path)\n", prog,
                strerror(errno));
        _exit(127);
    }
    int e = errno;
    close(sv[1]);
    if (pid < 0) {
        pst_cli_error("cannot start the short-lived node: %s", strerror(e));
        close(sv[0]);
        free(buf);
        return PST_EXIT_FAIL;
    }
    /* the child reads the whole request before it answers */
    int r = pst_cli_write_all(sv[0], buf, len + PST_FRAME_HEADER_BYTES) == 0
                ? pst_cli_read_response(sv[0], buf, resp)
                : -1;
    close(sv[0]);
    free(buf);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (r == 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return 0;
    pst_ctrl_response_free(resp);
    if (WIFSIGNALED(status))
        pst_cli_error("the short-lived node (%s) died of signal %d", prog, WTERMSIG(status));
    else if (r == -3)
        pst_cli_error("the short-lived node sent an answer this CLI cannot read (is %s of "
                      "another version?)",
                      prog);
    /* else it said why on stderr */
    return PST_EXIT_FAIL;
}
