/* isc.sim.server: the Lua face of the simulator's HTTP/1.1 server. serve
 * runs the loop in the calling state until a signal or a "stop" answer;
 * serve_thread runs it on a pthread with a fresh lua_State of its own and
 * returns a server object (port, url, stats, stop). */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lualib.h>

#include "sim.h"

#define SERVER_MT "isc.sim_server"
#define LOOP_MT "isc.sim_loop"

#define DEFAULT_MAX_CONNECTIONS 256
#define DEFAULT_MAX_BODY (64 * 1024 * 1024)
#define DEFAULT_IDLE 60.0         /* seconds a connection may wait for a request */
#define DEFAULT_HEAD_TIMEOUT 10.0 /* seconds from a request's first byte to its blank line */
#define DEFAULT_BODY_TIMEOUT 10.0 /* seconds for a body, plus one per 64 KiB received */

/* opts[name] as an integer in lo..hi, def when nil. */
static lua_Integer opt_integer(lua_State *L, int idx, const char *name, lua_Integer def, lua_Integer lo,
                               lua_Integer hi)
{
	int isnum = 1;
	lua_getfield(L, idx, name);
	lua_Integer v = lua_isnil(L, -1) ? def : lua_tointegerx(L, -1, &isnum);
	lua_pop(L, 1);
	if (!isnum || v < lo || v > hi)
		luaL_argerror(L, idx, lua_pushfstring(L, "opts.%s must be an integer in %I..%I", name, lo, hi));
	return v;
}

/* opts[name] as seconds in (0, 86400], def when nil. */
static double opt_seconds(lua_State *L, int idx, const char *name, double def)
{
	int isnum = 1;
	lua_getfield(L, idx, name);
	double v = lua_isnil(L, -1) ? def : lua_tonumberx(L, -1, &isnum);
	lua_pop(L, 1);
	if (!isnum || !(v > 0 && v <= 86400))
		luaL_argerror(L, idx, lua_pushfstring(L, "opts.%s must be seconds in (0, 86400]", name));
	return v;
}

/* Reads the options both entry points share from the table at idx. Leaves
 * the host string on the stack, so that o->host stays valid whatever the
 * table is made to hold meanwhile. */
static void read_opts(lua_State *L, int idx, struct opts *o)
{
	o->port = (int)opt_integer(L, idx, "port", 0, 0, 65535);
	o->backlog = (int)opt_integer(L, idx, "backlog", 511, 1, 65535);
	o->max_connections = (size_t)opt_integer(L, idx, "max_connections", DEFAULT_MAX_CONNECTIONS, 1, 65536);
	o->max_body = (size_t)opt_integer(L, idx, "max_body", DEFAULT_MAX_BODY, 0, (lua_Integer)1 << 32);
	o->idle = opt_seconds(L, idx, "idle_timeout", DEFAULT_IDLE);
	o->head_timeout = opt_seconds(L, idx, "head_timeout", DEFAULT_HEAD_TIMEOUT);
	o->body_timeout = opt_seconds(L, idx, "body_timeout", DEFAULT_BODY_TIMEOUT);
	lua_getfield(L, idx, "log");
	o->log = lua_toboolean(L, -1);
	lua_pop(L, 1);
	lua_getfield(L, idx, "host");
	o->host = lua_isnil(L, -1) ? "127.0.0.1" : lua_tostring(L, -1);
	luaL_argcheck(L, o->host && lua_type(L, -1) != LUA_TNUMBER, idx, "opts.host must be a string");
}

/* ---- serve ---- */

/* What serve must undo however it ends: the loop, signal handlers and mask. */
struct serve_box {
	struct loop *lp;
	isc_sigsave save;
	sigset_t oldmask;
	int signals;
};

/* __close/__gc of the serve box. */
static int serve_box_close(lua_State *L)
{
	struct serve_box *box = luaL_checkudata(L, 1, LOOP_MT);
	if (box->signals) {
		pthread_sigmask(SIG_SETMASK, &box->oldmask, NULL);
		isc_signals_leave(&box->save);
		box->signals = 0;
	}
	sim_loop_free(box->lp);
	box->lp = NULL;
	return 0;
}

/* serve(opts) -> signal | nil: serves in this state until SIGINT/SIGTERM
 * (returning its number, still pending) or until the handler returns "stop". */
static int server_serve(lua_State *L)
{
	luaL_checktype(L, 1, LUA_TTABLE);
	struct opts o;
	read_opts(L, 1, &o);
	lua_getfield(L, 1, "handler");
	luaL_argcheck(L, lua_isfunction(L, -1), 1, "opts.handler must be a function");
	int handler = lua_gettop(L);
	lua_getfield(L, 1, "on_listen");
	luaL_argcheck(L, lua_isnil(L, -1) || lua_isfunction(L, -1), 1, "opts.on_listen must be a function");
	int on_listen = lua_gettop(L);
	struct serve_box *box = lua_newuserdatauv(L, sizeof *box, 0);
	memset(box, 0, sizeof *box);
	if (luaL_newmetatable(L, LOOP_MT)) {
		lua_pushcfunction(L, serve_box_close);
		lua_setfield(L, -2, "__close");
		lua_pushcfunction(L, serve_box_close);
		lua_setfield(L, -2, "__gc");
	}
	lua_setmetatable(L, -2);
	lua_toclose(L, -1);
	if (!(box->lp = sim_loop_new(&o)))
		return isc_raise(L, "sim", "cannot create a server: %s", strerror(errno));
	struct loop *lp = box->lp;
	if (sim_loop_listen(lp, o.host, o.port))
		return isc_raise(L, "sim", "%s", lp->err);
	lp->L = L;
	lp->handler = handler;
	if (!lua_isnil(L, on_listen)) {
		lua_pushvalue(L, on_listen);
		lua_pushinteger(L, lp->port);
		lua_call(L, 1, 0);
	}
	/* SIGINT/SIGTERM are let in only while polling, so none slips in
	 * between the check of isc_pending_signal and the wait */
	sigset_t block;
	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	isc_signals_enter(&box->save);
	pthread_sigmask(SIG_BLOCK, &block, &box->oldmask);
	box->signals = 1;
	lp->waitmask = &box->oldmask;
	int sig = sim_loop_run(lp);
	if (sig < 0)
		return isc_raise(L, "sim", "%s", lp->err);
	if (sig == 0)
		return 0;
	lua_pushinteger(L, sig);
	return 1;
}

/* ---- serve_thread ---- */

/* The userdata serve_thread returns. */
struct sim_server {
	struct loop *lp;
	lua_State *T;           /* the server thread's own state */
	pthread_t thread;
	int running;            /* thread started, not joined */
	int stopped;
	char url[300];
};

/* What the new state needs to load the handler (strings owned by the caller). */
struct setup_args {
	const char *module, *config, *path, *cpath;
	size_t config_len;
	int port; /* the port it listens on */
};

/* Message handler turning any error value into a string, in the state where
 * its __tostring lives. */
static int tostring_msgh(lua_State *L)
{
	luaL_tolstring(L, 1, NULL);
	return 1;
}

/* Runs in the new state, protected: libraries, paths, config, then
 * require(module).handler(config, port), leaving the handler function. */
static int thread_setup(lua_State *T)
{
	const struct setup_args *a = lua_touserdata(T, 1);
	luaL_openlibs(T);
	if (isc_state_init_hook)
		isc_state_init_hook(T);
	lua_getglobal(T, "package");
	if (a->path) {
		lua_pushstring(T, a->path);
		lua_setfield(T, -2, "path");
	}
	if (a->cpath) {
		lua_pushstring(T, a->cpath);
		lua_setfield(T, -2, "cpath");
	}
	lua_getglobal(T, "require");
	lua_pushstring(T, a->module);
	lua_call(T, 1, 1);
	lua_getfield(T, -1, "handler");
	if (!lua_isfunction(T, -1))
		return luaL_error(T, "module '%s' has no function 'handler'", a->module);
	if (a->config) {
		if (!isc_json_decode(T, a->config, a->config_len))
			return luaL_error(T, "config does not survive JSON: %s", lua_tostring(T, -1));
	} else {
		lua_newtable(T);
	}
	lua_pushinteger(T, a->port);
	lua_call(T, 2, 1);
	if (!lua_isfunction(T, -1))
		return luaL_error(T, "%s.handler(config) returned %s, expected a function", a->module,
		                  luaL_typename(T, -1));
	return 1;
}

/* Runs in the server thread's state, protected: the loop itself. */
static int thread_main(lua_State *T)
{
	struct loop *lp = lua_touserdata(T, 2);
	lp->L = T;
	lp->handler = 1;
	if (sim_loop_run(lp) < 0)
		return luaL_error(T, "%s", lp->err);
	return 0;
}

/* The server thread: runs thread_main(handler, loop) already on its state. */
static void *server_thread(void *arg)
{
	struct loop *lp = arg;
	lua_State *T = lp->L;
	if (lua_pcall(T, 2, 0, 0) != LUA_OK)
		fprintf(stderr, "isc sim: server on port %d failed: %s\n", lp->port, lua_tostring(T, -1));
	/* the loop may end before stop() (the handler said "stop", or an error):
	 * refuse new clients rather than leave them hanging */
	sim_loop_shutdown(lp);
	return NULL;
}

/* Stops the thread if it runs and releases everything; idempotent. */
static void server_release(struct sim_server *s)
{
	if (s->running) {
		uint64_t one = 1;
		ssize_t n = write(s->lp->wake_fd, &one, sizeof one);
		(void)n;
		pthread_join(s->thread, NULL);
		s->running = 0;
	}
	sim_loop_free(s->lp);
	s->lp = NULL;
	if (s->T)
		lua_close(s->T);
	s->T = NULL;
	s->stopped = 1;
}

/* Releases a server that failed to start, then raises the sim error whose
 * message is on top of the stack. */
static int start_failed(lua_State *L, struct sim_server *s)
{
	server_release(s);
	return isc_raise(L, "sim", "%s", lua_tostring(L, -1));
}

/* The server at argument 1, which must not be stopped. */
static struct sim_server *check_server(lua_State *L)
{
	struct sim_server *s = luaL_checkudata(L, 1, SERVER_MT);
	if (s->stopped)
		isc_raise(L, "sim", "the simulator server was stopped");
	return s;
}

/* serve_thread(opts) -> server: require(opts.module).handler(opts.config,
 * port) serving on a thread of its own; returns once it listens. The handler must
 * not block (core.sleep, HTTP, locks): those share the process's one pending
 * signal with the main thread, whose Ctrl-C they would swallow. */
static int server_serve_thread(lua_State *L)
{
	luaL_checktype(L, 1, LUA_TTABLE);
	struct opts o;
	read_opts(L, 1, &o);
	struct setup_args a = {0};
	lua_getfield(L, 1, "module");
	a.module = lua_tostring(L, -1);
	luaL_argcheck(L, lua_type(L, -1) == LUA_TSTRING, 1, "opts.module must be a module name");
	lua_getfield(L, 1, "config");
	if (!lua_isnil(L, -1)) {
		luaL_Buffer b;
		int cfg = lua_gettop(L);
		luaL_buffinit(L, &b);
		isc_json_encode(L, cfg, &b);
		luaL_pushresult(&b);
		a.config = lua_tolstring(L, -1, &a.config_len);
	}
	lua_getglobal(L, "package");
	if (lua_istable(L, -1)) {
		lua_getfield(L, -1, "path");
		a.path = lua_tostring(L, -1);
		lua_getfield(L, -2, "cpath");
		a.cpath = lua_tostring(L, -1);
	}

	struct sim_server *s = lua_newuserdatauv(L, sizeof *s, 0);
	memset(s, 0, sizeof *s);
	luaL_setmetatable(L, SERVER_MT);
	if (!(s->lp = sim_loop_new(&o))) {
		lua_pushfstring(L, "cannot create a server: %s", strerror(errno));
		return start_failed(L, s);
	}
	if (sim_loop_listen(s->lp, o.host, o.port)) {
		lua_pushstring(L, s->lp->err);
		return start_failed(L, s);
	}
	if (!(s->T = luaL_newstate())) {
		lua_pushliteral(L, "cannot create a Lua state for the server");
		return start_failed(L, s);
	}
	lua_State *T = s->T;
	a.port = s->lp->port;
	lua_pushcfunction(T, tostring_msgh);
	lua_pushcfunction(T, thread_setup);
	lua_pushlightuserdata(T, &a);
	if (lua_pcall(T, 1, 1, 1) != LUA_OK) {
		lua_pushfstring(L, "simulator handler module '%s' failed: %s", a.module, lua_tostring(T, -1));
		return start_failed(L, s);
	}
	/* the thread calls thread_main(handler, loop) */
	lua_remove(T, 1);
	lua_pushcfunction(T, thread_main);
	lua_insert(T, -2);
	lua_pushlightuserdata(T, s->lp);
	s->lp->L = T;

	const char *host = o.host;
	if (!strcmp(host, "0.0.0.0"))
		host = "127.0.0.1";
	else if (!strcmp(host, "::"))
		host = "::1";
	snprintf(s->url, sizeof s->url, strchr(host, ':') ? "http://[%s]:%d" : "http://%s:%d", host, s->lp->port);

	/* signals belong to the caller's thread: the new one starts with them blocked */
	sigset_t block, old;
	sigemptyset(&block);
	int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGPIPE, SIGUSR1, SIGUSR2, SIGALRM, SIGCHLD, SIGWINCH};
	for (size_t i = 0; i < sizeof sigs / sizeof *sigs; i++)
		sigaddset(&block, sigs[i]);
	pthread_sigmask(SIG_BLOCK, &block, &old);
	int rc = pthread_create(&s->thread, NULL, server_thread, s->lp);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		lua_pushfstring(L, "cannot start the server thread: %s", strerror(rc));
		return start_failed(L, s);
	}
	s->running = 1;
	return 1;
}

/* server:port() -> the port it listens on */
static int server_port(lua_State *L)
{
	lua_pushinteger(L, check_server(L)->lp->port);
	return 1;
}

/* server:url() -> "http://127.0.0.1:PORT" */
static int server_url(lua_State *L)
{
	lua_pushstring(L, check_server(L)->url);
	return 1;
}

/* server:stats() -> {connections=, buffered=, accepted=, evicted=, refused=,
 * timed_out=, heads=, received=}: open connections and the bytes of their
 * input buffers now; connections accepted, evicted at the cap, closed at
 * once at the cap, cut off by a deadline; request heads and bytes read. */
static int server_stats(lua_State *L)
{
	const struct sim_stats *st = &check_server(L)->lp->stats;
	const struct { const char *name; const atomic_size_t *v; } fields[] = {
		{"connections", &st->connections}, {"buffered", &st->buffered},
		{"accepted", &st->accepted},       {"evicted", &st->evicted},
		{"refused", &st->refused},         {"timed_out", &st->timed_out},
		{"heads", &st->heads},             {"received", &st->received},
	};
	lua_createtable(L, 0, sizeof fields / sizeof *fields);
	for (size_t i = 0; i < sizeof fields / sizeof *fields; i++) {
		lua_pushinteger(L, (lua_Integer)atomic_load_explicit(fields[i].v, memory_order_relaxed));
		lua_setfield(L, -2, fields[i].name);
	}
	return 1;
}

/* server:stop(): closes every connection, ends the thread; idempotent.
 * Also __gc and __close. */
static int server_stop(lua_State *L)
{
	server_release(luaL_checkudata(L, 1, SERVER_MT));
	return 0;
}

/* __tostring: isc.sim_server (url | stopped) */
static int server_tostring(lua_State *L)
{
	struct sim_server *s = luaL_checkudata(L, 1, SERVER_MT);
	if (s->stopped)
		lua_pushliteral(L, "isc.sim_server (stopped)");
	else
		lua_pushfstring(L, "isc.sim_server (%s)", s->url);
	return 1;
}


int luaopen_isc_sim_server(lua_State *L)
{
	static const luaL_Reg methods[] = {
		{"port", server_port},
		{"url", server_url},
		{"stats", server_stats},
		{"stop", server_stop},
		{NULL, NULL},
	};
	static const luaL_Reg metamethods[] = {
		{"__gc", server_stop},
		{"__close", server_stop},
		{"__tostring", server_tostring},
		{NULL, NULL},
	};
	static const luaL_Reg fns[] = {
		{"serve", server_serve},
		{"serve_thread", server_serve_thread},
		{NULL, NULL},
	};
	/* the errors raised here carry isc.core's metatable */
	luaL_requiref(L, "isc.core", luaopen_isc_core, 0);
	lua_pop(L, 1);
	if (luaL_newmetatable(L, SERVER_MT)) {
		luaL_setfuncs(L, metamethods, 0);
		luaL_newlib(L, methods);
		lua_setfield(L, -2, "__index");
	}
	lua_pop(L, 1);
	luaL_newlib(L, fns);
	return 1;
}
