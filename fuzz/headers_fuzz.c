/* libFuzzer target: isc_push_headers (http.c), which turns the response head
 * libcurl collected into the headers table scripts read, on any bytes. Names
 * come out lowercase, and no name or value holds a line break. */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"

/* Runs protected, as push(head, len): isc_push_headers on a copy of its own. */
static int push(lua_State *L)
{
	char *head = lua_touserdata(L, 1);
	isc_push_headers(L, head, (size_t)lua_tointeger(L, 2));
	return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	lua_State *L = fuzz_state();
	/* a copy of exactly size bytes: the parser writes to it, and ASan sees a
	 * read past its end */
	char *head = malloc(size ? size : 1);
	if (!head)
		return 0;
	memcpy(head, data, size);
	lua_pushcfunction(L, push);
	lua_pushlightuserdata(L, size ? head : NULL);
	lua_pushinteger(L, (lua_Integer)size);
	fuzz_call(L, 2, "isc_push_headers");
	free(head);
	lua_pushnil(L);
	while (lua_next(L, -2)) {
		size_t len;
		const char *name = lua_tolstring(L, -2, &len);
		for (size_t i = 0; i < len; i++)
			if ((name[i] >= 'A' && name[i] <= 'Z') || name[i] == '\n')
				fuzz_fail("header name not lowercase or with a line break");
		if (memchr(lua_tostring(L, -1), '\n', lua_rawlen(L, -1)))
			fuzz_fail("line break in a header value");
		lua_pop(L, 1);
	}
	lua_settop(L, 0);
	return 0;
}
