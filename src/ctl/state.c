#include "ctl/state.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/err.h"
#include "common/log.h"
#include "common/util.h"

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static char *path;
static bool serving, drained;

static int write_state(char *err, size_t errlen)
{
    if (!path)
        return 0;
    const char *text = serving && !drained ? "up\n" : "down\n";
    char tmp[4200];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        goto fail;
    ssize_t n = write(fd, text, strlen(text));
    if (n != (ssize_t)strlen(text) || fsync(fd) < 0) {
        close(fd);
        goto fail;
    }
    close(fd);
    if (rename(tmp, path) < 0)
        goto fail;
    return 0;
fail:;
    char buf[128];
    snprintf(err, errlen, "state file %s: %s", path, strerror_r(errno, buf, sizeof(buf)));
    unlink(tmp);
    return ERR_IO;
}

int ctl_state_init(const char *p, char *err, size_t errlen)
{
    pthread_mutex_lock(&lock);
    free(path);
    path = p ? xstrdup(p) : NULL;
    serving = drained = false;
    int rc = write_state(err, errlen);
    pthread_mutex_unlock(&lock);
    return rc;
}

static void update(bool *field, bool value, const char *what)
{
    char err[512];
    pthread_mutex_lock(&lock);
    bool was_up = serving && !drained;
    *field = value;
    bool up = serving && !drained;
    if (up != was_up || !path) {
        if (write_state(err, sizeof(err)) < 0)
            log_err("%s", err);
        else if (path && up != was_up)
            log_info("state %s (%s)", up ? "up" : "down", what);
    }
    pthread_mutex_unlock(&lock);
}

void ctl_state_serving(bool s)
{
    update(&serving, s, s ? "serving" : "stopping");
}

void ctl_state_drain(bool d)
{
    update(&drained, d, d ? "drained by the operator" : "undrained by the operator");
}

bool ctl_state_is_up(void)
{
    pthread_mutex_lock(&lock);
    bool up = serving && !drained;
    pthread_mutex_unlock(&lock);
    return up;
}

bool ctl_state_is_drained(void)
{
    pthread_mutex_lock(&lock);
    bool d = drained;
    pthread_mutex_unlock(&lock);
    return d;
}

const char *ctl_state_path(void)
{
    return path;
}
