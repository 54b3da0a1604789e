/* Time, sleeping and interrupts: the process-level mechanism under every
 * blocking call of the isc module; and the few file calls Lua's io lacks. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core.h"

volatile sig_atomic_t isc_pending_signal = 0;
volatile sig_atomic_t isc_held_stop = 0;
volatile sig_atomic_t isc_stop_unwinding = 0;

static void (*signal_extra)(int) = NULL;
static int signals_owned_by_host = 0;

/* Held stops (core.hold_stops): whether they are on, the exit code of each
 * signal, and the watchdog that ends a run which does not unwind in time. */
static volatile sig_atomic_t holding = 0;
static int stop_codes[NSIG];
static double stop_grace;
static sem_t stop_posted;
static int watchdog_started = 0;

void isc_record_signal(int sig)
{
	/* A held stop keeps its own signal; the watchdog bounds how long it takes. */
	if (isc_held_stop)
		return;
	isc_pending_signal = sig;
	if (holding) {
		isc_held_stop = sig;
		isc_stop_unwinding = 1;
		sem_post(&stop_posted);
	}
	if (signal_extra)
		signal_extra(sig);
}

/* Makes isc_record_signal the handler of sig, saving the old action in *old. */
static void set_recorder(int sig, struct sigaction *old)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = isc_record_signal;
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

/* The message of the interrupt by sig. */
static const char *interrupt_message(int sig)
{
	if (sig == SIGALRM)
		return "interrupted: the run's deadline (--timeout) passed";
	return sig == SIGTERM ? "interrupted by SIGTERM" : "interrupted by SIGINT";
}

/* Pushes {kind="interrupted", message=, signal=sig}. */
static void push_interrupted(lua_State *L, int sig)
{
	isc_push_error(L, "interrupted", "%s", interrupt_message(sig));
	lua_pushinteger(L, sig);
	lua_setfield(L, -2, "signal");
}

int isc_raise_interrupted(lua_State *L)
{
	int sig = isc_held_stop;
	if (!sig) { /* a held stop stays pending, so the next call raises too */
		sig = isc_pending_signal;
		isc_pending_signal = 0;
	}
	push_interrupted(L, sig);
	return lua_error(L);
}

int isc_stop_exit_code(int sig)
{
	return sig > 0 && sig < NSIG && stop_codes[sig] ? stop_codes[sig] : 128 + sig;
}

/* Flushes f unless another thread holds it (the script may be stuck writing). */
static void flush_if_free(FILE *f)
{
	if (ftrylockfile(f) == 0) {
		fflush_unlocked(f);
		funlockfile(f);
	}
}

/* The backstop of a held stop: a grace after the signal, ends the process
 * with the stop's exit code, whatever the script is doing (stuck in a C
 * call, or looping in a coroutine the host's hook does not reach). A run
 * that unwound in time has ended by then, or is about to. */
static void *watchdog(void *unused)
{
	(void)unused;
	while (sem_wait(&stop_posted) != 0)
		;
	struct timespec until;
	clock_gettime(CLOCK_MONOTONIC, &until);
	double whole = floor(stop_grace);
	until.tv_sec += (time_t)whole;
	until.tv_nsec += (long)((stop_grace - whole) * 1e9);
	if (until.tv_nsec >= 1000000000) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000;
	}
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &until, NULL) == EINTR)
		;
	int sig = isc_held_stop;
	flush_if_free(stdout);
	if (isc_stop_unwinding) {
		char msg[160];
		int n = snprintf(msg, sizeof msg, "isclua: %s; the script did not stop within %g s\n",
		                 interrupt_message(sig), stop_grace);
		ssize_t written = write(STDERR_FILENO, msg, n > 0 && (size_t)n < sizeof msg ? (size_t)n : 0);
		(void)written; /* nothing more can be done about a lost message */
	}
	flush_if_free(stderr);
	_exit(isc_stop_exit_code(sig));
}

/* Starts the watchdog thread with every signal blocked, so that signals
 * keep reaching the main thread and waking its blocking calls. */
static int start_watchdog(void)
{
	if (sem_init(&stop_posted, 0, 0) != 0)
		return errno;
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	pthread_t t;
	int rc = pthread_create(&t, NULL, watchdog, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc == 0)
		pthread_detach(t);
	return rc;
}

/* core.hold_stops({[signal] = exit code}, grace_seconds) | core.hold_stops(nil)
 * From now on the first SIGINT, SIGTERM or deadline stops the whole run (in
 * isclua only, whose hook stops Lua code): every isc call raises
 * "interrupted" at once, and the host's hook raises it at every Lua
 * instruction, until a core.stop_handler has it. If that takes longer than
 * the grace, the process ends with the exit code of the signal. nil: each
 * signal stops only the call it lands in (the prompt). */
static int sys_hold_stops(lua_State *L)
{
	if (lua_isnoneornil(L, 1)) {
		holding = 0;
		isc_held_stop = 0;
		isc_stop_unwinding = 0;
		return 0;
	}
	luaL_checktype(L, 1, LUA_TTABLE);
	double grace = luaL_checknumber(L, 2);
	luaL_argcheck(L, grace > 0 && grace <= 3600, 2, "grace must be more than 0 seconds, at most an hour");
	if (!signals_owned_by_host)
		return luaL_error(L, "core.hold_stops: only isclua can hold a stop (it needs the host's signal hook)");
	for (lua_pushnil(L); lua_next(L, 1); lua_pop(L, 1)) {
		lua_Integer sig = lua_isinteger(L, -2) ? lua_tointeger(L, -2) : 0;
		luaL_argcheck(L, sig > 0 && sig < NSIG && lua_isinteger(L, -1), 1, "exit codes must be {[signal] = code}");
		stop_codes[sig] = (int)lua_tointeger(L, -1);
	}
	stop_grace = grace;
	if (!watchdog_started) {
		int rc = start_watchdog();
		if (rc != 0)
			return luaL_error(L, "core.hold_stops: cannot start the watchdog: %s", strerror(rc));
		watchdog_started = 1;
	}
	holding = 1;
	return 0;
}

/* The message handler core.stop_handler makes: a held stop ends its
 * unwinding here (the hook lets Lua code run again), and becomes the error
 * handled, whatever error it cut short; then handler(err) runs. */
static int stop_msgh(lua_State *L)
{
	lua_settop(L, 1);
	if (isc_held_stop) {
		isc_stop_unwinding = 0;
		push_interrupted(L, isc_held_stop);
		lua_replace(L, 1);
	}
	lua_pushvalue(L, lua_upvalueindex(1));
	lua_insert(L, 1);
	lua_call(L, 1, 1);
	return 1;
}

/* core.stop_handler(handler) -> a message handler for xpcall that catches a
 * held stop: the top level of a run, where its report is made */
static int sys_stop_handler(lua_State *L)
{
	luaL_checktype(L, 1, LUA_TFUNCTION);
	lua_settop(L, 1);
	lua_pushcclosure(L, stop_msgh, 1);
	return 1;
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

/* The close function of a file from core.open_append, as liolib's own. */
static int append_close(lua_State *L)
{
	luaL_Stream *s = (luaL_Stream *)luaL_checkudata(L, 1, LUA_FILEHANDLE);
	return luaL_fileresult(L, fclose(s->f) == 0, NULL);
}

/* core.open_append(path) -> file | nil, message, errno
 * A Lua file (as io.open's) that writes only at the end of path, creating it
 * readable and writable by its owner alone (0600; io.open cannot say so). */
static int sys_open_append(lua_State *L)
{
	const char *path = luaL_checkstring(L, 1);
	if (luaL_getmetatable(L, LUA_FILEHANDLE) != LUA_TTABLE)
		return luaL_error(L, "core.open_append: the io library is not loaded");
	lua_pop(L, 1);
	luaL_Stream *s = (luaL_Stream *)lua_newuserdatauv(L, sizeof(luaL_Stream), 0);
	s->closef = NULL; /* a closed file until fdopen succeeds */
	luaL_setmetatable(L, LUA_FILEHANDLE);
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return luaL_fileresult(L, 0, path);
	s->f = fdopen(fd, "a");
	if (!s->f) {
		int saved = errno;
		close(fd);
		errno = saved;
		return luaL_fileresult(L, 0, path);
	}
	s->closef = append_close;
	return 1;
}

/* Writes all of buf to fd, through short writes and EINTR; 0, or -1 with errno. */
static int write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* core.write_new_file(path, data) -> true | nil, message, errno
 * Creates path, which must not exist yet (0600; a symlink there is not
 * followed), writes data, fsyncs and closes it: true only when every step
 * succeeded. On a failure the file is removed, so no partial file is left. */
static int sys_write_new_file(lua_State *L)
{
	const char *path = luaL_checkstring(L, 1);
	size_t len;
	const char *data = luaL_checklstring(L, 2, &len);
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return luaL_fileresult(L, 0, path);
	int ok = write_all(fd, data, len) == 0 && fsync(fd) == 0;
	int err = errno;
	if (close(fd) != 0 && ok) {
		ok = 0;
		err = errno;
	}
	if (!ok)
		unlink(path);
	errno = err;
	return luaL_fileresult(L, ok, path);
}

/* core.release_stdout() -> true | nil, message, errno
 * Flushes standard output and points it at /dev/null, so that a reader
 * waiting for its end (the shell's $(...)) gets it while the process goes on. */
static int sys_release_stdout(lua_State *L)
{
	fflush(stdout);
	int fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return luaL_fileresult(L, 0, "/dev/null");
	int ok = dup2(fd, STDOUT_FILENO) >= 0;
	int err = errno;
	close(fd);
	errno = err;
	return luaL_fileresult(L, ok, "standard output");
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
		{"hold_stops", sys_hold_stops},
		{"stop_handler", sys_stop_handler},
		{"isatty", sys_isatty},
		{"file_mode", sys_file_mode},
		{"getpid", sys_getpid},
		{"open_append", sys_open_append},
		{"write_new_file", sys_write_new_file},
		{"release_stdout", sys_release_stdout},
		{NULL, NULL},
	};
	luaL_setfuncs(L, fns, 0);
}
