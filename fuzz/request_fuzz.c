/* libFuzzer target: the simulator's request reader (src/sim/reader.c) on any bytes
 * a client may send on one connection. Whatever pieces recv happens to
 * return, the requests read are the same: the whole input at once, a byte at
 * a time and in pieces of 2 to 17 bytes give equal lists of requests and the
 * same refusal. Each request is one the handler can trust: a method token, a
 * target, lowercase header names, a body within the limit. */
#include <string.h>

#include "fuzz.h"
#include "server.h"

/* Small enough that inputs reach the "body too large" refusals. */
#define MAX_BODY 1000

/* Checks what the handler would get for the request table on top of the stack. */
static void check_request(lua_State *L)
{
	size_t len;
	const char *s;
	lua_getfield(L, -1, "method");
	s = lua_tolstring(L, -1, &len);
	if (!s || !len || strcspn(s, " \t\r\n") != len)
		fuzz_fail("bad method");
	lua_getfield(L, -2, "target");
	s = lua_tolstring(L, -1, &len);
	if (!s || !len || strcspn(s, " \t\r\n") != len)
		fuzz_fail("bad target");
	lua_getfield(L, -3, "body");
	if (lua_rawlen(L, -1) > MAX_BODY)
		fuzz_fail("body of %zu bytes over the limit of %d", (size_t)lua_rawlen(L, -1), MAX_BODY);
	lua_getfield(L, -4, "headers");
	lua_pushnil(L);
	while (lua_next(L, -2)) {
		s = lua_tolstring(L, -2, &len);
		for (size_t i = 0; i < len; i++)
			if ((s[i] >= 'A' && s[i] <= 'Z') || s[i] == ':' || s[i] == '\n')
				fuzz_fail("bad header name");
		if (memchr(lua_tostring(L, -1), '\n', lua_rawlen(L, -1)))
			fuzz_fail("line break in a header value");
		lua_pop(L, 1);
	}
	lua_pop(L, 4);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	lua_State *L = fuzz_state();
	const char *text = (const char *)data;
	size_t piece = 2 + size % 16;
	int whole = isc_server_parse(L, text, size, size, MAX_BODY);
	int bytes = isc_server_parse(L, text, size, 1, MAX_BODY);
	int pieces = isc_server_parse(L, text, size, piece, MAX_BODY);
	if (whole != bytes || whole != pieces)
		fuzz_fail("refusal depends on the pieces: %d whole, %d a byte at a time, %d in %zu-byte pieces",
		          whole, bytes, pieces, piece);
	if (!fuzz_same(L, 1, 2) || !fuzz_same(L, 1, 3))
		fuzz_fail("requests depend on the pieces recv returns (%zu-byte pieces)", piece);
	for (lua_Integer i = 1; lua_rawgeti(L, 1, i) == LUA_TTABLE; i++) {
		check_request(L);
		lua_pop(L, 1);
	}
	lua_settop(L, 0);
	return 0;
}
