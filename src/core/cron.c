/* The native part of cron mode: the run lock (--lock, --lock-wait) and the
 * run deadline (--timeout). Policy - messages, exit codes - is in
 * lua/isc/cron.lua.
 *
 * The lock is flock(2) on a file: the kernel drops it when its holder exits
 * in any way, so a crashed run never leaves a lock that blocks the next. The
 * file itself stays (with the holder's pid, for messages): removing it would
 * let two runs lock two different files of the same name. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/time.h>
#include <unistd.h>

#include "core.h"

#define LOCK_MT "isc.lock"
/* How long one step of waiting for a lock sleeps; signals end it at once. */
#define LOCK_STEP 0.1

typedef struct {
	int fd;   /* -1 once closed */
	int held;
} run_lock;

/* User value 1: the path, for messages. */

/* The lock argument of a method, which must still be open. */
static run_lock *check_lock(lua_State *L)
{
	run_lock *lk = luaL_checkudata(L, 1, LOCK_MT);
	if (lk->fd < 0)
		luaL_error(L, "isc.lock: the lock file is closed");
	return lk;
}

/* core.lock_open(path) -> lock (not yet acquired); creates the file */
static int lock_open(lua_State *L)
{
	const char *path = luaL_checkstring(L, 1);
	run_lock *lk = lua_newuserdatauv(L, sizeof *lk, 1);
	lk->fd = -1;
	lk->held = 0;
	luaL_setmetatable(L, LOCK_MT);
	lua_pushvalue(L, 1);
	lua_setiuservalue(L, -2, 1);
	/* CLOEXEC: a program the script starts must not inherit the lock. */
	lk->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (lk->fd < 0)
		return isc_raise(L, "config", "cannot open the lock file %s: %s", path, strerror(errno));
	return 1;
}

/* Pushes the pid recorded in the lock file, or nil. */
static void push_holder(lua_State *L, run_lock *lk)
{
	char buf[32];
	ssize_t n = pread(lk->fd, buf, sizeof buf - 1, 0);
	long pid = 0;
	if (n > 0) {
		buf[n] = '\0';
		pid = strtol(buf, NULL, 10);
	}
	if (pid > 0)
		lua_pushinteger(L, pid);
	else
		lua_pushnil(L);
}

/* Records who holds the lock (0: nobody) for messages; best effort, as the
 * lock holds whether or not the pid could be written. */
static int record_holder(int fd, long pid)
{
	char buf[32];
	int len = pid > 0 ? snprintf(buf, sizeof buf, "%ld\n", pid) : 0;
	return ftruncate(fd, 0) == 0 && pwrite(fd, buf, (size_t)len, 0) == len;
}

/* Takes the lock if it is free. */
static int try_lock(run_lock *lk)
{
	while (flock(lk->fd, LOCK_EX | LOCK_NB) != 0) {
		if (errno != EINTR)
			return 0;
	}
	lk->held = 1;
	record_holder(lk->fd, (long)getpid());
	return 1;
}

/* lock:acquire([wait_seconds=0]) -> true | false, holder pid|nil
 * Waits in short steps for a held lock; Ctrl-C, SIGTERM or the deadline
 * end the wait with an "interrupted" error. */
static int lock_acquire(lua_State *L)
{
	run_lock *lk = check_lock(L);
	double wait = luaL_optnumber(L, 2, 0);
	luaL_argcheck(L, wait >= 0 && isfinite(wait), 2, "wait must be a finite number >= 0");
	if (lk->held || try_lock(lk)) {
		lua_pushboolean(L, 1);
		return 1;
	}
	double until = isc_monotonic() + wait;
	isc_sigsave save;
	isc_signals_enter(&save);
	int got = 0;
	for (double left = wait; !got && left > 0 && !isc_pending_signal; left = until - isc_monotonic()) {
		isc_wait(-1, left < LOCK_STEP ? left : LOCK_STEP);
		got = !isc_pending_signal && try_lock(lk);
	}
	isc_signals_leave(&save);
	if (isc_pending_signal)
		return isc_raise_interrupted(L);
	lua_pushboolean(L, got);
	if (got)
		return 1;
	push_holder(L, lk);
	return 2;
}

/* lock:holder() -> pid recorded in the lock file | nil */
static int lock_holder(lua_State *L)
{
	push_holder(L, check_lock(L));
	return 1;
}

/* lock:held() -> whether this lock object holds the lock */
static int lock_held(lua_State *L)
{
	run_lock *lk = luaL_checkudata(L, 1, LOCK_MT);
	lua_pushboolean(L, lk->held);
	return 1;
}

/* Empties the file and unlocks it, if held. */
static void unlock(run_lock *lk)
{
	if (lk->held) {
		record_holder(lk->fd, 0);
		flock(lk->fd, LOCK_UN);
		lk->held = 0;
	}
}

/* lock:release(): lets the next run in; the lock can be acquired again */
static int lock_release(lua_State *L)
{
	unlock(check_lock(L));
	return 0;
}

/* lock:close(): releases and closes the file; idempotent (also __close, __gc) */
static int lock_close(lua_State *L)
{
	run_lock *lk = luaL_checkudata(L, 1, LOCK_MT);
	if (lk->fd >= 0) {
		unlock(lk);
		close(lk->fd);
		lk->fd = -1;
	}
	return 0;
}

/* __tostring: isc.lock(path, held | not held | closed) */
static int lock_tostring(lua_State *L)
{
	run_lock *lk = luaL_checkudata(L, 1, LOCK_MT);
	lua_getiuservalue(L, 1, 1);
	lua_pushfstring(L, "isc.lock(%s, %s)", lua_tostring(L, -1),
	                lk->fd < 0 ? "closed" : lk->held ? "held" : "not held");
	return 1;
}

static volatile sig_atomic_t deadline_passed = 0;

/* SIGALRM handler: the deadline is recorded as an interrupt, so every
 * blocking call ends as it does on Ctrl-C (the error carries signal 14). */
static void on_deadline(int sig)
{
	deadline_passed = 1;
	isc_record_signal(sig);
}

/* core.deadline(seconds): arms the run's deadline, seconds from now; 0 or
 * nil disarms it. When it passes, blocking calls and (in isclua) running
 * Lua code stop with an "interrupted" error whose signal is 14 (SIGALRM). */
static int deadline_set(lua_State *L)
{
	double s = luaL_optnumber(L, 1, 0);
	luaL_argcheck(L, s >= 0 && isfinite(s) && s < 1e9, 1, "seconds must be a number from 0 to 1e9");
	struct itimerval it;
	memset(&it, 0, sizeof it);
	if (s > 0) {
		struct sigaction sa;
		memset(&sa, 0, sizeof sa);
		sa.sa_handler = on_deadline;
		sigemptyset(&sa.sa_mask);
		sa.sa_flags = 0; /* no SA_RESTART: a sleeping syscall must wake */
		sigaction(SIGALRM, &sa, NULL);
		it.it_value.tv_sec = (time_t)s;
		it.it_value.tv_usec = (suseconds_t)((s - (double)it.it_value.tv_sec) * 1e6);
		if (it.it_value.tv_sec == 0 && it.it_value.tv_usec == 0)
			it.it_value.tv_usec = 1;
		deadline_passed = 0;
	}
	setitimer(ITIMER_REAL, &it, NULL);
	return 0;
}

/* core.deadline_passed() -> whether the last deadline armed has passed
 * (disarming keeps the answer, so it can be asked after the run) */
static int deadline_check(lua_State *L)
{
	lua_pushboolean(L, deadline_passed);
	return 1;
}

void isc_open_cron(lua_State *L)
{
	static const luaL_Reg methods[] = {
		{"acquire", lock_acquire},
		{"release", lock_release},
		{"holder", lock_holder},
		{"held", lock_held},
		{"close", lock_close},
		{NULL, NULL},
	};
	static const luaL_Reg meta[] = {
		{"__close", lock_close},
		{"__gc", lock_close},
		{"__tostring", lock_tostring},
		{NULL, NULL},
	};
	static const luaL_Reg fns[] = {
		{"lock_open", lock_open},
		{"deadline", deadline_set},
		{"deadline_passed", deadline_check},
		{NULL, NULL},
	};
	if (luaL_newmetatable(L, LOCK_MT)) {
		luaL_setfuncs(L, meta, 0);
		luaL_newlib(L, methods);
		lua_setfield(L, -2, "__index");
	}
	lua_pop(L, 1);
	luaL_setfuncs(L, fns, 0);
}
