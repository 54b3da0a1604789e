/* isc.core: the native half of the isc module, and its structured errors. */
#include <stdarg.h>

#include "core.h"

void (*isc_state_init_hook)(lua_State *L) = NULL;

/* Pushes the error table {kind=, message=} with the isc.error metatable. */
static void push_verror(lua_State *L, const char *kind, const char *fmt, va_list ap)
{
	lua_createtable(L, 0, 4);
	lua_pushstring(L, kind);
	lua_setfield(L, -2, "kind");
	lua_pushvfstring(L, fmt, ap);
	lua_setfield(L, -2, "message");
	luaL_setmetatable(L, ISC_ERROR_MT);
}

void isc_push_error(lua_State *L, const char *kind, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	push_verror(L, kind, fmt, ap);
	va_end(ap);
}

int isc_raise(lua_State *L, const char *kind, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	push_verror(L, kind, fmt, ap);
	va_end(ap);
	return lua_error(L);
}

/* Fallback __tostring until lua/isc/errors.lua installs the full one. */
static int error_tostring(lua_State *L)
{
	luaL_checktype(L, 1, LUA_TTABLE);
	lua_getfield(L, 1, "kind");
	lua_getfield(L, 1, "message");
	lua_pushfstring(L, "isc %s error: %s", luaL_optstring(L, -2, "?"),
	                luaL_optstring(L, -1, "?"));
	return 1;
}

/* How this module was built, for --version: the compiler, and the date and
 * `git describe` the Makefile passes (ISCLUA_BUILD). */
#if defined(__clang__)
#define ISCLUA_COMPILER "clang " __clang_version__
#elif defined(__GNUC__)
#define ISCLUA_COMPILER "gcc " __VERSION__
#else
#define ISCLUA_COMPILER "an unknown compiler"
#endif
#ifndef ISCLUA_BUILD
#define ISCLUA_BUILD "built on an unknown date"
#endif

int luaopen_isc_core(lua_State *L)
{
	if (luaL_newmetatable(L, ISC_ERROR_MT)) {
		lua_pushcfunction(L, error_tostring);
		lua_setfield(L, -2, "__tostring");
		lua_pushstring(L, "isc.error");
		lua_setfield(L, -2, "__name");
	}
	lua_newtable(L);
	lua_pushvalue(L, -2);
	lua_setfield(L, -2, "error_mt");
	lua_remove(L, -2);
	lua_pushstring(L, ISCLUA_VERSION);
	lua_setfield(L, -2, "version");
	lua_pushstring(L, ISCLUA_BUILD ", " ISCLUA_COMPILER);
	lua_setfield(L, -2, "build");
	lua_pushstring(L, LUA_RELEASE); /* the headers built against: 5.4.x */
	lua_setfield(L, -2, "lua_release");
	isc_open_sys(L);
	isc_open_json(L);
	isc_open_http(L);
	isc_open_pager(L);
	isc_open_cron(L);
	isc_open_wait(L);
	isc_open_loop(L);
	return 1;
}
