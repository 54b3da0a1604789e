/* Time, sleeping and interrupts: the process-level mechanism under every
 * blocking call of the isc module. */
#include <errno.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core.h"

volatile sig_atomic_t isc_pending_signal = 0;

static void (*signal_extra)(int) = NULL;
static int signals_owned_by_host = 0;

/* Records the signal; the blocking call that was interrupted does the rest. */
static void record_signal(int sig)
{
	isc_pending_signal = sig;
	if (signal_extra)
		signal_extra(sig);
}

/* Makes record_signal the handler of sig, saving the old action in *old. */
static void set_recorder(int sig, struct sigaction *old)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = record_signal;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = 0; /* no SA_RESTART: a sleeping syscall must wake at once */
	sigaction(sig, &sa, old);
}

void isc_signals_install(void (*extra)(int))
{
	signal_extra = extra;
	signals_owned_by_host = 1;
	set_recorder(SIGINT, NULL);
	set_recorder(SIGTERM, NULL);
}

void isc_signals_enter(isc_sigsave *save)
{
	save->active = !signals_owned_by_host;
	if (save->active) {
		set_recorder(SIGINT, &save->intr);
		set_recorder(SIGTERM, &save->term);
	}
}

void isc_signals_leave(isc_sigsave *save)
{
	if (save->active) {
		sigaction(SIGINT, &save->intr, NULL);
		sigaction(SIGTERM, &save->term, NULL);
		save->active = 0;
	}
}

int isc_raise_interrupted(lua_State *L)
{
	int sig = isc_pending_signal;
	isc_pending_signal = 0;
	if (sig == SIGALRM)
		isc_push_error(L, "interrupted", "interrupted: the run's deadline (--timeout) passed");
	else
		isc_push_error(L, "interrupted", "interrupted by %s", sig == SIGTERM ? "SIGTERM" : "SIGINT");
	lua_pushinteger(L, sig);
	lua_setfield(L, -2, "signal");
	return lua_error(L);
}

double isc_monotonic(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int isc_wait(int fd, double seconds)
{
	sigset_t block, old;
	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGALRM);
	pthread_sigmask(SIG_BLOCK, &block, &old);
	double until = isc_monotonic() + seconds;
	int result = 0;
	for (;;) {
		if (isc_pending_signal) {
			result = -1;
			break;
		}
		double left = until - isc_monotonic();
		if (!(left > 0))
			break;
		if (left > 86400) /* a day per round keeps the conversion in range */
			left = 86400;
		struct timespec ts;
		ts.tv_sec = (time_t)left;
		ts.tv_nsec = (long)((left - (double)ts.tv_sec) * 1e9);
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		int n = ppoll(&pfd, fd >= 0 ? 1 : 0, &ts, &old);
		if (n > 0) {
			result = 1;
			break;
		}
		if (n < 0 && errno != EINTR)
			break;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return result;
}

/* core.sleep(seconds): sleeps without burning CPU; Ctrl-C ends it at once. */
static int sys_sleep(lua_State *L)
{
	double s = luaL_checknumber(L, 1);
	luaL_argcheck(L, s >= 0 && isfinite(s), 1, "seconds must be a finite number >= 0");
	isc_sigsave save;
	isc_signals_enter(&save);
	int rc = isc_wait(-1, s);
	isc_signals_leave(&save);
	if (rc < 0)
		return isc_raise_interrupted(L);
	return 0;
}

/* core.monotonic() -> seconds from an arbitrary start, never going back */
static int sys_monotonic(lua_State *L)
{
	lua_pushnumber(L, isc_monotonic());
	return 1;
}

/* core.time() -> wall-clock seconds since the epoch, with fractions */
static int sys_time(lua_State *L)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	lua_pushnumber(L, (double)ts.tv_sec + (double)ts.tv_nsec / 1e9);
	return 1;
}

/* core.check_interrupt(): raises the interrupted error if a signal is pending */
static int sys_check_interrupt(lua_State *L)
{
	if (isc_pending_signal)
		return isc_raise_interrupted(L);
	return 0;
}

/* core.isatty(fd) -> boolean; fd is 0, 1, 2 or a file handle's number */
static int sys_isatty(lua_State *L)
{
	lua_pushboolean(L, isatty((int)luaL_checkinteger(L, 1)));
	return 1;
}

/* core.file_mode(path) -> permission bits, owner uid | nil, message */
static int sys_file_mode(lua_State *L)
{
	struct stat st;
	if (stat(luaL_checkstring(L, 1), &st) != 0) {
		lua_pushnil(L);
		lua_pushstring(L, strerror(errno));
		return 2;
	}
	lua_pushinteger(L, st.st_mode & 07777);
	lua_pushinteger(L, st.st_uid);
	return 2;
}

/* core.getpid() -> the process id */
static int sys_getpid(lua_State *L)
{
	lua_pushinteger(L, getpid());
	return 1;
}

void isc_open_sys(lua_State *L)
{
	static const luaL_Reg fns[] = {
		{"sleep", sys_sleep},
		{"monotonic", sys_monotonic},
		{"time", sys_time},
		{"check_interrupt", sys_check_interrupt},
		{"isatty", sys_isatty},
		{"file_mode", sys_file_mode},
		{"getpid", sys_getpid},
		{NULL, NULL},
	};
	luaL_setfuncs(L, fns, 0);
}
