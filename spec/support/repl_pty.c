/* A pseudo-terminal driver for specs: runs a program on a pty of its own,
 * as a user at a terminal would, so a spec can type into it, send it Ctrl-C
 * and read what it shows. Built by spec/support/repl_pty.lua on first use;
 * loaded into the busted process, never into isclua. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>

#define PTY_MT "repl_pty"

typedef struct {
	int master;   /* -1 once closed */
	pid_t pid;    /* 0 once reaped */
	int status;   /* exit code once reaped, 128 + signal if killed */
} pty_proc;

/* User value 1: output read but not yet consumed by expect. */

/* Monotonic seconds, for the safety limits of expect and wait. */
static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The proc argument of a method. */
static pty_proc *check_proc(lua_State *L)
{
	return luaL_checkudata(L, 1, PTY_MT);
}

/* Collects a Lua list of strings into a NULL-terminated array (in userdata
 * memory, so it is freed with the state even if exec never happens). */
static char **string_array(lua_State *L, int idx, int extra)
{
	lua_Integer n = luaL_len(L, idx);
	char **v = lua_newuserdatauv(L, sizeof(char *) * (size_t)(n + extra + 1), 0);
	for (lua_Integer i = 1; i <= n; i++) {
		lua_geti(L, idx, i);
		v[i - 1] = (char *)luaL_checkstring(L, -1);
		lua_pop(L, 1); /* the list keeps the string alive */
	}
	v[n] = NULL;
	return v;
}

/* In the child: makes the pty its controlling terminal and stdio, resets
 * signals, applies the environment changes and runs the program. */
static void child(const char *slave_name, char **argv, char **set, char **unset)
{
	setsid();
	int fd = open(slave_name, O_RDWR);
	if (fd < 0)
		_exit(126);
	ioctl(fd, TIOCSCTTY, 0);
	dup2(fd, 0);
	dup2(fd, 1);
	dup2(fd, 2);
	if (fd > 2)
		close(fd);
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGPIPE, SIG_DFL);
	for (char **u = unset; *u; u++)
		unsetenv(*u);
	for (char **s = set; *s; s += 2)
		setenv(s[0], s[1], 1);
	execvp(argv[0], argv);
	_exit(127);
}

/* pty.spawn(argv, env) -> proc; env maps names to values (false unsets) */
static int pty_spawn(lua_State *L)
{
	luaL_checktype(L, 1, LUA_TTABLE);
	luaL_argcheck(L, luaL_len(L, 1) >= 1, 1, "argv must name a program");
	lua_settop(L, 2);
	char **argv = string_array(L, 1, 0);
	lua_newtable(L); /* names and values to set, flattened */
	lua_newtable(L); /* names to unset */
	if (lua_istable(L, 2)) {
		lua_pushnil(L);
		while (lua_next(L, 2)) {
			int dest = lua_toboolean(L, -1) ? 4 : 5;
			lua_pushvalue(L, -2);
			lua_seti(L, dest, luaL_len(L, dest) + 1);
			if (dest == 4)
				lua_seti(L, dest, luaL_len(L, dest) + 1);
			else
				lua_pop(L, 1);
		}
	}
	char **set = string_array(L, 4, 1);
	char **unset = string_array(L, 5, 0);

	int master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (master < 0 || grantpt(master) != 0 || unlockpt(master) != 0)
		return luaL_error(L, "cannot open a pseudo-terminal: %s", strerror(errno));
	struct winsize ws = {.ws_row = 24, .ws_col = 100};
	ioctl(master, TIOCSWINSZ, &ws);
	const char *slave_name = ptsname(master);
	pid_t pid = fork();
	if (pid < 0) {
		close(master);
		return luaL_error(L, "fork: %s", strerror(errno));
	}
	if (pid == 0)
		child(slave_name, argv, set, unset);

	pty_proc *p = lua_newuserdatauv(L, sizeof *p, 1);
	p->master = master;
	p->pid = pid;
	p->status = -1;
	luaL_setmetatable(L, PTY_MT);
	lua_pushliteral(L, "");
	lua_setiuservalue(L, -2, 1);
	return 1;
}

/* Reads what is available within `wait` seconds onto the pending output.
 * Returns 1 if something was read, 0 on timeout, -1 at end of output. */
static int pump(lua_State *L, pty_proc *p, double wait)
{
	if (p->master < 0)
		return -1;
	struct pollfd pfd = {.fd = p->master, .events = POLLIN};
	int r = poll(&pfd, 1, wait > 0 ? (int)(wait * 1000) + 1 : 0);
	if (r < 0 && errno == EINTR)
		return 0;
	if (r <= 0)
		return 0;
	char buf[4096];
	ssize_t n = read(p->master, buf, sizeof buf);
	if (n <= 0) /* EIO: every copy of the slave side is closed */
		return -1;
	lua_getiuservalue(L, 1, 1);
	lua_pushlstring(L, buf, (size_t)n);
	lua_concat(L, 2);
	lua_setiuservalue(L, 1, 1);
	return 1;
}

/* proc:send(text): types text at the terminal (use "\3" for Ctrl-C) */
static int pty_send(lua_State *L)
{
	pty_proc *p = check_proc(L);
	size_t len;
	const char *s = luaL_checklstring(L, 2, &len);
	luaL_argcheck(L, p->master >= 0, 1, "the terminal is closed");
	while (len > 0) {
		ssize_t n = write(p->master, s, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return luaL_error(L, "write to the terminal: %s", strerror(errno));
		s += n;
		len -= (size_t)n;
	}
	return 0;
}

/* proc:expect(text [, seconds=20]) -> output up to and including text |
 * nil, everything shown since the last match. The limit only stops a
 * broken spec from hanging; it is never what a spec asserts on. */
static int pty_expect(lua_State *L)
{
	pty_proc *p = check_proc(L);
	size_t want_len;
	const char *want = luaL_checklstring(L, 2, &want_len);
	double deadline = now() + luaL_optnumber(L, 3, 20);
	for (;;) {
		lua_getiuservalue(L, 1, 1);
		size_t have_len;
		const char *have = lua_tolstring(L, -1, &have_len);
		const char *at = memmem(have, have_len, want, want_len);
		if (at) {
			size_t upto = (size_t)(at - have) + want_len;
			lua_pushlstring(L, have, upto);
			lua_pushlstring(L, have + upto, have_len - upto);
			lua_setiuservalue(L, 1, 1);
			return 1;
		}
		lua_pop(L, 1);
		double left = deadline - now();
		if (left <= 0 || pump(L, p, left) < 0)
			break;
	}
	lua_pushnil(L);
	lua_getiuservalue(L, 1, 1);
	return 2;
}

/* proc:await_raw_mode([seconds=20]) -> true once the program reads keys
 * one by one (a line editor is reading), nil if it never does. Ctrl-D is
 * only an end of input to a line editor: typed at a terminal still in
 * canonical mode, it would be taken by the terminal itself. */
static int pty_await_raw_mode(lua_State *L)
{
	pty_proc *p = check_proc(L);
	double deadline = now() + luaL_optnumber(L, 2, 20);
	struct termios t;
	while (tcgetattr(p->master, &t) == 0 && (t.c_lflag & ICANON)) {
		/* Keep reading, so that output never blocks the program. */
		if (now() >= deadline || pump(L, p, 0.001) < 0) {
			lua_pushnil(L);
			return 1;
		}
	}
	lua_pushboolean(L, 1);
	return 1;
}

/* proc:signal(signo): sends a signal to the program */
static int pty_signal(lua_State *L)
{
	pty_proc *p = check_proc(L);
	int sig = (int)luaL_checkinteger(L, 2);
	if (p->pid > 0)
		kill(p->pid, sig);
	return 0;
}

/* Collects the exit status of an ended program (flags as for waitpid). */
static void reap(pty_proc *p, int flags)
{
	int st;
	if (p->pid > 0 && waitpid(p->pid, &st, flags) == p->pid) {
		p->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
		p->pid = 0;
	}
}

/* proc:wait([seconds=20]) -> exit code (128 + signal if killed), all output
 * not yet consumed | nil, "timeout" (the program is then killed) */
static int pty_wait(lua_State *L)
{
	pty_proc *p = check_proc(L);
	double deadline = now() + luaL_optnumber(L, 2, 20);
	while (p->pid > 0 && now() < deadline) {
		/* Keep draining, so a program writing a lot never blocks. */
		if (pump(L, p, 0.05) < 0)
			reap(p, 0);
		else
			reap(p, WNOHANG);
	}
	if (p->pid > 0) {
		kill(p->pid, SIGKILL);
		reap(p, 0);
		lua_pushnil(L);
		lua_pushliteral(L, "timeout");
		return 2;
	}
	while (pump(L, p, 0) > 0)
		;
	lua_pushinteger(L, p->status);
	lua_getiuservalue(L, 1, 1);
	lua_pushliteral(L, "");
	lua_setiuservalue(L, 1, 1);
	return 2;
}

/* proc:pid() -> process id of the program (nil once it has been reaped) */
static int pty_pid(lua_State *L)
{
	pty_proc *p = check_proc(L);
	if (p->pid > 0)
		lua_pushinteger(L, p->pid);
	else
		lua_pushnil(L);
	return 1;
}

/* proc:close(): kills the program if it still runs; idempotent (also __gc) */
static int pty_close(lua_State *L)
{
	pty_proc *p = check_proc(L);
	if (p->pid > 0) {
		kill(p->pid, SIGKILL);
		reap(p, 0);
	}
	if (p->master >= 0) {
		close(p->master);
		p->master = -1;
	}
	return 0;
}

int luaopen_repl_pty(lua_State *L)
{
	static const luaL_Reg methods[] = {
		{"send", pty_send},
		{"expect", pty_expect},
		{"await_raw_mode", pty_await_raw_mode},
		{"signal", pty_signal},
		{"wait", pty_wait},
		{"pid", pty_pid},
		{"close", pty_close},
		{NULL, NULL},
	};
	if (luaL_newmetatable(L, PTY_MT)) {
		luaL_newlib(L, methods);
		lua_setfield(L, -2, "__index");
		lua_pushcfunction(L, pty_close);
		lua_setfield(L, -2, "__gc");
		lua_pushcfunction(L, pty_close);
		lua_setfield(L, -2, "__close");
	}
	lua_pop(L, 1);
	lua_newtable(L);
	lua_pushcfunction(L, pty_spawn);
	lua_setfield(L, -2, "spawn");
	return 1;
}
