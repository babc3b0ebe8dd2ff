/* A private redis-server for unit tests (tests only): started on a unix socket in its own
 * mkdtemp dir with --port 0 (no TCP listener at all), --save "" and --appendonly no, so a test
 * never touches the system's Redis nor the disk beyond that dir. The server's log is
 * <dir>/redis.log (kept until redis_fixture_stop, for a failing test to look at).
 * Threading: any one thread at a time (a cmocka setup/teardown or the test itself); it forks and
 * waits on the child, so not from a thread that must not block. */
#ifndef COBROWSE_TESTS_CORE_CLUSTER_REDIS_FIXTURE_H
#define COBROWSE_TESTS_CORE_CLUSTER_REDIS_FIXTURE_H

struct redis_fixture {
    char dir[64];
    char url[160];
    int pid;
};

/* Starts a private redis-server (--port 0, a unix socket in a new mkdtemp dir, --save "",
 * --appendonly no), waits until it answers PING; f->url is unix://<dir>/redis.sock. 0 or -1. */
int redis_fixture_start(struct redis_fixture *f);
/* Kills it (SIGKILL) and starts it again on the same socket, empty. 0 or -1. */
int redis_fixture_restart(struct redis_fixture *f);
/* Stops it and removes the dir. */
void redis_fixture_stop(struct redis_fixture *f);

#endif
