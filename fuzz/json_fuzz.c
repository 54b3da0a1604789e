/* libFuzzer target: core.json_decode on any bytes, and the round trip of what
 * it accepts. Decoding does the same in a new state as in a used one (which
 * keeps a scratch buffer). A refusal names a byte of the input (or the end);
 * an accepted document encodes, compact and with sort_keys and indent, into
 * text that decodes to an equal document ([] apart from {}, integers exact,
 * -0.0 kept), and the sorted, indented text is a fixed point. */
#include <stdio.h>
#include <string.h>

#include "fuzz.h"

/* Checks the message a refused input left on top of the stack. */
static void check_refusal(lua_State *L, size_t size)
{
	const char *msg = lua_tostring(L, -1);
	unsigned long long at;
	int end;
	if (!msg || sscanf(msg, "invalid JSON at byte %llu: %n", &at, &end) != 1 || !msg[end])
		fuzz_fail("refusal without a position: %s", msg ? msg : "(not a string)");
	if (at < 1 || at > (unsigned long long)size + 1)
		fuzz_fail("refusal names byte %llu of %zu: %s", at, size, msg);
}

/* Pushes core.json_encode(value at idx, {sort_keys = pretty, indent = pretty and 2}). */
static void encode(lua_State *L, int idx, int pretty)
{
	fuzz_require(L, "isc.core");
	lua_getfield(L, -1, "json_encode");
	lua_remove(L, -2);
	lua_pushvalue(L, idx);
	lua_createtable(L, 0, 2);
	lua_pushboolean(L, pretty);
	lua_setfield(L, -2, "sort_keys");
	lua_pushinteger(L, pretty ? 2 : 0);
	lua_setfield(L, -2, "indent");
	fuzz_call(L, 2, "json_encode of a decoded document");
}

/* Decodes the text at idx, which must be valid, and checks that it is the
 * same document as the value at orig. */
static void decode_same(lua_State *L, int idx, int orig)
{
	size_t len;
	const char *text = lua_tolstring(L, idx, &len);
	if (!isc_json_decode(L, text, len))
		fuzz_fail("encoded text does not decode: %s\n%s", lua_tostring(L, -1), text);
	if (!fuzz_same(L, orig, -1))
		fuzz_fail("round trip changed the document:\n%s", text);
}

/* Decodes text in a new state too, where the codec has no scratch buffer yet
 * (the first escape in a new interpreter once hit UB there), and checks that
 * the outcome is the same as in L, whose refusal message is on top. */
static void check_new_state(lua_State *L, int ok, const char *text, size_t size)
{
	lua_State *fresh = luaL_newstate();
	if (!fresh)
		fuzz_fail("cannot create a Lua state");
	if (isc_json_decode(fresh, text, size) != ok)
		fuzz_fail("a new state %s what a used one %s", ok ? "refuses" : "accepts", ok ? "accepts" : "refuses");
	if (!ok && strcmp(lua_tostring(fresh, -1), lua_tostring(L, -1)))
		fuzz_fail("refused differently in a new state: %s", lua_tostring(fresh, -1));
	lua_close(fresh);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	lua_State *L = fuzz_state();
	const char *text = (const char *)data;
	int ok = isc_json_decode(L, text, size);
	check_new_state(L, ok, text, size);
	if (!ok) {
		check_refusal(L, size);
		lua_settop(L, 0);
		return 0;
	}
	encode(L, 1, 0);        /* 2 */
	decode_same(L, 2, 1);   /* 3 */
	encode(L, 1, 1);        /* 4 */
	decode_same(L, 4, 1);   /* 5 */
	encode(L, 5, 1);        /* 6 */
	if (!lua_rawequal(L, 4, 6))
		fuzz_fail("sorted, indented text is not stable:\n%s\n%s", lua_tostring(L, 4), lua_tostring(L, 6));
	lua_settop(L, 0);
	return 0;
}
