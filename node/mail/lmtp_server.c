/* LMTP (RFC 2033, docs/LMTP.md): the unix socket an MTA in front of the node
 * (Postfix's mailbox_transport = lmtp:unix:PATH, OpenSMTPD, Exim) delivers
 * Internet mail to. Sessions, their input, timers and limits are
 * submission's (smtp_server.c, the same settings); the commands are in
 * lmtp_session.c, the message's way into the Maildir in lmtp_data.c.
 *
 * The socket is made 0660: the MTA runs as another user, and the owner lets
 * it in by putting it in the socket's group (or by choosing a path in a
 * directory only the two share). No AUTH: the file's mode is the access
 * control. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "smtp_int.h"

#define LMTP_SOCKET_MODE 0660

/* Whether something accepts connections on the socket at path. */
static bool socket_alive(const char *path) {
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    if (strlen(path) >= sizeof sa.sun_path)
        return false;
    memcpy(sa.sun_path, path, strlen(path));
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    bool alive = connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
    close(fd);
    return alive;
}

int pst_lmtp_server_start(pst_node *n, char *err, size_t errcap) {
    n->lmtp_path[0] = '\0';
    const char *p = n->cfg.lmtp_path;
    if (p[0] == '\0')
        return PST_OK; /* turned off */
    char path[PST_PATH_MAX];
    int len = p[0] == '/' ? snprintf(path, sizeof path, "%s", p)
                          : snprintf(path, sizeof path, "%s/%s", n->cfg.home, p);
    if (len < 0 || (size_t)len >= sizeof path || (size_t)len >= sizeof(struct sockaddr_un) - 2) {
        snprintf(err, errcap,
                 "LMTP socket path %s/%s is too long for a unix socket (set lmtp to "
                 "a shorter path)",
                 p[0] == '/' ? "" : n->cfg.home, p);
        return PST_E_NOSPACE;
    }
    struct stat st;
    if (lstat(path, &st) == 0) {
        /* a socket left by a crash: the home's lock keeps a second node of
         * this home away, and a path outside the home is checked live */
        if (!S_ISSOCK(st.st_mode)) {
            snprintf(err, errcap, "LMTP socket %s: a file that is not a socket is in the way",
                     path);
            return PST_E_EXISTS;
        }
        if (socket_alive(path)) {
            snprintf(err, errcap, "LMTP socket %s is in use by another program", path);
            return PST_E_BUSY;
        }
        unlink(path);
    }
    struct pst_smtp_server *srv = pst_smtp__server_new(n, true);
    if (srv == NULL)
        return PST_E_NOMEM;
    n->lmtp = srv;
    mode_t old = umask(0077); /* no window in which others may connect */
    int rc = uv_pipe_bind(&srv->listener.pipe, path);
    umask(old);
    if (rc == 0)
        rc = chmod(path, LMTP_SOCKET_MODE) == 0 ? 0 : uv_translate_sys_error(errno);
    if (rc == 0)
        rc = pst_smtp__server_listen(srv);
    if (rc != 0) {
        snprintf(err, errcap,
                 "cannot listen for LMTP on %s: %s (set lmtp to another path, or "
                 "off)",
                 path, uv_strerror(rc));
        pst_smtp__server_close(srv);
        return PST_E_IO;
    }
    snprintf(n->lmtp_path, sizeof n->lmtp_path, "%s", path);
    return PST_OK;
}

void pst_lmtp_server_stop(pst_node *n) {
    if (n->lmtp == NULL)
        return;
    if (n->lmtp_path[0] != '\0' && unlink(n->lmtp_path) != 0 && errno != ENOENT)
        pst_log_warn("lmtp: cannot remove %s: %s", n->lmtp_path, strerror(errno));
    n->lmtp_path[0] = '\0';
    pst_smtp__server_close(n->lmtp);
}
