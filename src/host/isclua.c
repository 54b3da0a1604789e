/* isclua: a Lua 5.4 interpreter with the isc module built in. main() only
 * creates the state and runs everything else protected; the command line
 * itself is handled in Lua (lua/isc/cli.lua). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "core.h"
#include "embedded.h"
#include "server.h"

static lua_State *global_L = NULL;

/* The REPL's line editing (lineedit.c), in the host only. */
int isc_open_lineedit(lua_State *L);

/* Raises "interrupted" at the next Lua instruction after Ctrl-C/SIGTERM,
 * unless a blocking call has already turned the signal into an error. A
 * held stop keeps the hook armed until it reaches its stop handler, so a
 * script that catches the error meets it again at once. */
static void stop_hook(lua_State *L, lua_Debug *ar)
{
	(void)ar;
	if (isc_stop_unwinding)
		isc_raise_interrupted(L);
	lua_sethook(L, NULL, 0, 0);
	if (isc_pending_signal && !isc_held_stop)
		isc_raise_interrupted(L);
}

/* Runs in the signal handler, after the signal is recorded. No call events,
 * so a C function (a __close of isc's, the stop handler) is never cut short
 * before it runs; return events catch one that returned instead of raising,
 * such as isc.sim.server's serve, inside the pcall that called it. */
static void arm_stop_hook(int sig)
{
	(void)sig;
	if (global_L)
		lua_sethook(global_L, stop_hook, LUA_MASKRET | LUA_MASKCOUNT, 1);
}

/* package.searchers entry: finds a module among the embedded sources. */
static int embedded_searcher(lua_State *L)
{
	const char *name = luaL_checkstring(L, 1);
	for (const struct isc_embedded *e = isc_embedded; e->name; e++) {
		if (strcmp(e->name, name) == 0) {
			if (luaL_loadbuffer(L, e->src, e->len, e->chunk) != LUA_OK)
				return lua_error(L);
			lua_pushstring(L, e->chunk + 1);
			return 2;
		}
	}
	lua_pushfstring(L, "no module '%s' embedded in isclua", name);
	return 1;
}

/* Puts ISCLUA_LUA_DIR (development) first on the package.path of the
 * package table on top of the stack, so a working tree's lua/ is run
 * without a rebuild. Returns whether it is set. */
static int prefix_dev_path(lua_State *L)
{
	const char *dev = getenv("ISCLUA_LUA_DIR");
	if (!dev || !*dev)
		return 0;
	lua_getfield(L, -1, "path");
	lua_pushfstring(L, "%s/?.lua;%s/?/init.lua;%s", dev, dev, lua_tostring(L, -1));
	lua_setfield(L, -3, "path");
	lua_pop(L, 1);
	return 1;
}

/* Makes require find isc.core, isc.sim.server and the embedded Lua sources. */
static void install_modules(lua_State *L)
{
	lua_getglobal(L, "package");
	lua_getfield(L, -1, "preload");
	lua_pushcfunction(L, luaopen_isc_core);
	lua_setfield(L, -2, "isc.core");
	lua_pushcfunction(L, luaopen_isc_sim_server);
	lua_setfield(L, -2, "isc.sim.server");
	lua_pop(L, 1);

	int dev = prefix_dev_path(L);
	/* After preload (and the dev path), before the user's package.path, so
	 * no stray isc.lua on LUA_PATH shadows the built-in module. */
	lua_getfield(L, -1, "searchers");
	int pos = dev ? 3 : 2;
	for (lua_Integer i = (lua_Integer)luaL_len(L, -1); i >= pos; i--) {
		lua_geti(L, -1, i);
		lua_seti(L, -2, i + 1);
	}
	lua_pushcfunction(L, embedded_searcher);
	lua_seti(L, -2, pos);
	lua_pop(L, 2);
}

/* Opens the package library in a state of its own told to ignore the
 * environment, and returns its path and cpath. */
static int noenv_paths(lua_State *L)
{
	lua_pushboolean(L, 1);
	lua_setfield(L, LUA_REGISTRYINDEX, "LUA_NOENV");
	luaL_requiref(L, LUA_LOADLIBNAME, luaopen_package, 0);
	lua_getfield(L, -1, "path");
	lua_getfield(L, -2, "cpath");
	return 2;
}

/* isc.host.ignore_env(): lua(1)'s -E, after the fact. package.path and
 * cpath go back to liblua's defaults, as LUA_PATH and LUA_CPATH had never
 * been set (ISCLUA_LUA_DIR, isclua's own, stays first). */
static int host_ignore_env(lua_State *L)
{
	lua_State *fresh = luaL_newstate();
	if (!fresh)
		return luaL_error(L, "cannot create a Lua state: out of memory");
	lua_pushcfunction(fresh, noenv_paths);
	if (lua_pcall(fresh, 0, 2, 0) != LUA_OK) {
		lua_close(fresh);
		return luaL_error(L, "cannot find Lua's default module paths");
	}
	lua_getglobal(L, "package");
	lua_pushstring(L, lua_tostring(fresh, -2));
	lua_setfield(L, -2, "path");
	lua_pushstring(L, lua_tostring(fresh, -1));
	lua_setfield(L, -2, "cpath");
	lua_close(fresh);
	prefix_dev_path(L);
	lua_pushboolean(L, 1);
	lua_setfield(L, LUA_REGISTRYINDEX, "LUA_NOENV");
	return 0;
}

/* package.preload["isc.host"]: what only the isclua host can do. */
static int open_host(lua_State *L)
{
	lua_newtable(L);
	lua_pushcfunction(L, host_ignore_env);
	lua_setfield(L, -2, "ignore_env");
	return 1;
}

/* Runs the whole program inside lua_pcall; returns the exit code. */
static int pmain(lua_State *L)
{
	int argc = (int)lua_tointeger(L, 1);
	char **argv = lua_touserdata(L, 2);
	luaL_checkversion(L);
	luaL_openlibs(L);
	install_modules(L);
	isc_state_init_hook = install_modules;
	luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
	lua_pushcfunction(L, isc_open_lineedit);
	lua_setfield(L, -2, "isc.lineedit");
	lua_pushcfunction(L, open_host);
	lua_setfield(L, -2, "isc.host");
	lua_pop(L, 1);
	isc_signals_install(arm_stop_hook);

	lua_getglobal(L, "require");
	lua_pushliteral(L, "isc.cli");
	lua_call(L, 1, 1);
	lua_getfield(L, -1, "main");
	lua_createtable(L, argc, 0);
	for (int i = 1; i < argc; i++) {
		lua_pushstring(L, argv[i]);
		lua_seti(L, -2, i);
	}
	lua_call(L, 1, 1);
	lua_pushinteger(L, lua_isinteger(L, -1) ? lua_tointeger(L, -1) : 0);
	return 1;
}

/* Message handler of the outermost call: the error as a string, made while
 * still protected, since a __tostring may fail too. */
static int to_message(lua_State *L)
{
	isc_stop_unwinding = 0; /* a held stop ends here too: __tostring may be Lua */
	luaL_tolstring(L, 1, NULL);
	return 1;
}

/* Last resort when an error escapes every protected call. */
static int on_panic(lua_State *L)
{
	const char *msg = lua_tostring(L, -1);
	fprintf(stderr, "isclua: fatal: %s\n", msg ? msg : "(error object is not a string)");
	return 0;
}

int main(int argc, char **argv)
{
	lua_State *L = luaL_newstate();
	if (!L) {
		fprintf(stderr, "isclua: cannot create the Lua state: out of memory\n");
		return 1;
	}
	global_L = L;
	lua_atpanic(L, on_panic);
	lua_pushcfunction(L, to_message);
	lua_pushcfunction(L, pmain);
	lua_pushinteger(L, argc);
	lua_pushlightuserdata(L, argv);
	int code;
	if (lua_pcall(L, 2, 1, 1) == LUA_OK) {
		code = (int)lua_tointeger(L, -1);
	} else {
		const char *msg = lua_tostring(L, -1);
		fprintf(stderr, "isclua: %s\n", msg ? msg : "(error object is not a string)");
		/* a stop that landed outside every protected call of the command line */
		code = isc_held_stop ? isc_stop_exit_code(isc_held_stop) : 1;
	}
	global_L = NULL;
	lua_close(L);
	return code;
}
