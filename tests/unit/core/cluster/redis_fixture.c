/* See redis_fixture.h. */
#include "tests/unit/core/cluster/redis_fixture.h"

#include <errno.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define FIXTURE_START_TIMEOUT_MS 10000

static long long fixture_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void fixture_sock_path(const struct redis_fixture *f, char *out, size_t size)
{
    snprintf(out, size, "%s/redis.sock", f->dir);
}

/* 1 when the server answers PING on its socket. */
static int fixture_pings(const struct redis_fixture *f)
{
    char sock[128];
    fixture_sock_path(f, sock, sizeof sock);
    struct timeval tv = {1, 0};
    redisContext *c = redisConnectUnixWithTimeout(sock, tv);
    int ok = 0;
    if (c && !c->err) {
        redisReply *r = redisCommand(c, "PING");
        ok = r && r->type == REDIS_REPLY_STATUS && strcmp(r->str, "PONG") == 0;
        if (r)
            freeReplyObject(r);
    }
    if (c)
        redisFree(c);
    return ok;
}

static void fixture_exec(const struct redis_fixture *f)
{
    char sock[128], log[128];
    fixture_sock_path(f, sock, sizeof sock);
    snprintf(log, sizeof log, "%s/redis.log", f->dir);
    int null = open("/dev/null", O_RDWR);
    if (null >= 0) {
        dup2(null, 0);
        dup2(null, 1);
        dup2(null, 2);
    }
    execlp("redis-server", "redis-server", "--port", "0", "--unixsocket", sock, "--unixsocketperm",
           "700", "--dir", f->dir, "--logfile", log, "--save", "", "--appendonly", "no",
           "--daemonize", "no", (char *)NULL);
    _exit(127);
}

/* Forks the server and polls PING until it answers, the child dies or the timeout passes. */
static int fixture_spawn(struct redis_fixture *f)
{
    char sock[128];
    fixture_sock_path(f, sock, sizeof sock);
    unlink(sock);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0)
        fixture_exec(f);
    f->pid = (int)pid;
    long long deadline = fixture_now_ms() + FIXTURE_START_TIMEOUT_MS;
    while (fixture_now_ms() < deadline) {
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            fprintf(stderr, "redis_fixture: redis-server exited (see %s/redis.log)\n", f->dir);
            f->pid = 0;
            return -1;
        }
        if (fixture_pings(f))
            return 0;
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    fprintf(stderr, "redis_fixture: no PONG within %d ms\n", FIXTURE_START_TIMEOUT_MS);
    return -1;
}

static void fixture_kill(struct redis_fixture *f)
{
    if (f->pid <= 0)
        return;
    kill((pid_t)f->pid, SIGKILL);
    while (waitpid((pid_t)f->pid, NULL, 0) < 0 && errno == EINTR)
        ;
    f->pid = 0;
}

int redis_fixture_start(struct redis_fixture *f)
{
    memset(f, 0, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/cobrowse-redis-XXXXXX");
    if (!mkdtemp(f->dir)) {
        f->dir[0] = '\0';
        return -1;
    }
    snprintf(f->url, sizeof f->url, "unix://%s/redis.sock", f->dir);
    if (fixture_spawn(f) < 0) {
        redis_fixture_stop(f);
        return -1;
    }
    return 0;
}

int redis_fixture_restart(struct redis_fixture *f)
{
    fixture_kill(f);
    return fixture_spawn(f);
}

void redis_fixture_stop(struct redis_fixture *f)
{
    fixture_kill(f);
    if (!f->dir[0])
        return;
    const char *names[] = {"redis.sock", "redis.log", "dump.rdb"};
    char path[128];
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", f->dir, names[i]);
        unlink(path);
    }
    rmdir(f->dir);
    f->dir[0] = '\0';
}
