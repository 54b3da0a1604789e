/* The helpers of fuzz.h. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include <lualib.h>

#include "fuzz.h"

/* A Lua error outside a protected call is a finding too. */
static int panic(lua_State *L)
{
	fuzz_fail("unprotected Lua error: %s", lua_tostring(L, -1));
}

lua_State *fuzz_state(void)
{
	static lua_State *L;
	if (L)
		return L;
	L = luaL_newstate();
	if (!L)
		fuzz_fail("cannot create a Lua state");
	lua_atpanic(L, panic);
	luaL_openlibs(L);
	lua_getglobal(L, "package");
	lua_pushstring(L, ISC_LUA_DIR "/?.lua;" ISC_LUA_DIR "/?/init.lua");
	lua_setfield(L, -2, "path");
	lua_pushliteral(L, "");
	lua_setfield(L, -2, "cpath");
	lua_getfield(L, -1, "preload");
	lua_pushcfunction(L, luaopen_isc_core);
	lua_setfield(L, -2, "isc.core");
	lua_settop(L, 0);
	return L;
}

void fuzz_require(lua_State *L, const char *name)
{
	lua_getglobal(L, "require");
	lua_pushstring(L, name);
	fuzz_call(L, 1, name);
}

void fuzz_call(lua_State *L, int nargs, const char *what)
{
	if (lua_pcall(L, nargs, 1, 0) != LUA_OK)
		fuzz_fail("%s raised: %s", what, luaL_tolstring(L, -1, NULL));
}

/* Number of entries of table t. */
static size_t count_entries(lua_State *L, int t)
{
	size_t n = 0;
	lua_pushnil(L);
	while (lua_next(L, t)) {
		lua_pop(L, 1);
		n++;
	}
	return n;
}

/* Whether every key of table a has the same value in table b. */
static int same_entries(lua_State *L, int a, int b)
{
	lua_pushnil(L);
	while (lua_next(L, a)) {
		lua_pushvalue(L, -2);
		lua_rawget(L, b);
		if (!fuzz_same(L, -2, -1)) {
			lua_pop(L, 3);
			return 0;
		}
		lua_pop(L, 2);
	}
	return 1;
}

int fuzz_same(lua_State *L, int a, int b)
{
	a = lua_absindex(L, a);
	b = lua_absindex(L, b);
	luaL_checkstack(L, 6, "fuzz_same");
	if (lua_type(L, a) != lua_type(L, b))
		return 0;
	switch (lua_type(L, a)) {
	case LUA_TNUMBER:
		if (lua_isinteger(L, a) || lua_isinteger(L, b))
			return lua_isinteger(L, a) && lua_isinteger(L, b) &&
			       lua_tointeger(L, a) == lua_tointeger(L, b);
		return lua_tonumber(L, a) == lua_tonumber(L, b) &&
		       signbit(lua_tonumber(L, a)) == signbit(lua_tonumber(L, b));
	case LUA_TTABLE: {
		int ma = lua_getmetatable(L, a), mb = lua_getmetatable(L, b);
		int same_mt = ma == mb && (!ma || lua_rawequal(L, -1, -2));
		lua_pop(L, ma + mb);
		return same_mt && count_entries(L, a) == count_entries(L, b) && same_entries(L, a, b);
	}
	default:
		return lua_rawequal(L, a, b);
	}
}

void fuzz_fail(const char *fmt, ...)
{
	va_list ap;
	fputs("fuzz finding: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	abort();
}
