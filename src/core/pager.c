/* The pagination iterator shared by every offset/limit list endpoint. It holds
 * one page at a time, so walking any number of items takes constant memory.
 * Fetching a page is the caller's Lua function (it knows the endpoint); the
 * pager decides when to fetch, what offset and limit to ask for, when the
 * listing has ended, and where it goes on from after a page failed. */
#include <string.h>

#include "core.h"

#define PAGER_MT "isc.pager"

typedef struct {
	lua_Integer start;     /* offset of the first item of the listing */
	lua_Integer limit;     /* page size asked of the server */
	lua_Integer max;       /* stop after this many items; -1 for all */
	lua_Integer offset;    /* server offset of the next page to fetch */
	lua_Integer yielded;   /* items handed out so far */
	lua_Integer total;     /* latest X-Total-Count, -1 while unknown */
	lua_Integer page_at;   /* server offset of the page held */
	lua_Integer page_len;  /* items in the page held */
	lua_Integer page_pos;  /* next item of that page to hand out */
	lua_Integer pages;     /* pages fetched */
	int failed;            /* the page at offset did not arrive: reading fetches it again */
	int count_first;       /* ask the first page for the total */
	int done;
	int closed;
} pager;

/* User values: 1 fetch function, 2 current page, 3 on_page callback, 4 label,
 * 5 on_close callback */
enum { UV_FETCH = 1, UV_PAGE, UV_ON_PAGE, UV_LABEL, UV_ON_CLOSE, UV_COUNT = UV_ON_CLOSE };

/* What one call of the fetch function came to. */
enum { FETCHED, PAST_END, FAILED };

/* The pager at argument 1, which must not be closed. */
static pager *check_pager(lua_State *L)
{
	pager *p = luaL_checkudata(L, 1, PAGER_MT);
	if (p->closed)
		luaL_error(L, "isc.pager: the listing is closed");
	return p;
}

/* Reads the integer t[key] (>= min), def when absent. */
static lua_Integer opt_count(lua_State *L, int t, const char *key, lua_Integer def, lua_Integer min)
{
	lua_getfield(L, t, key);
	lua_Integer v = def;
	if (!lua_isnil(L, -1)) {
		int ok;
		v = lua_tointegerx(L, -1, &ok);
		if (!ok || v < min)
			luaL_error(L, "isc.pager: %s must be an integer >= %d", key, (int)min);
	}
	lua_pop(L, 1);
	return v;
}

/* core.pager{fetch=fn(offset, limit, want_total, probe) -> items, total|nil,
 *            limit=, offset=0, max=nil, on_page=fn(info), label=,
 *            on_close=fn(), count_first=true} -> pager
 * probe is true for the one-page looks of count and peek, which are not
 * the listing's own reading (a fetcher that reads ahead leaves them be);
 * on_close runs once when the listing is closed or collected; count_first
 * = false leaves the total unasked on the first page, for a listing that
 * has no use for it (ISC advises against counting then). */
static int pager_new(lua_State *L)
{
	luaL_checktype(L, 1, LUA_TTABLE);
	lua_getfield(L, 1, "fetch");
	luaL_argexpected(L, lua_isfunction(L, -1), 1, "a fetch function in field 'fetch'");
	lua_Integer limit = opt_count(L, 1, "limit", 250, 1);
	lua_Integer offset = opt_count(L, 1, "offset", 0, 0);
	lua_Integer max = opt_count(L, 1, "max", -1, 0);
	lua_getfield(L, 1, "on_page");
	luaL_argcheck(L, lua_isnil(L, -1) || lua_isfunction(L, -1), 1, "field 'on_page' must be a function");
	lua_getfield(L, 1, "label");
	lua_getfield(L, 1, "on_close");
	luaL_argcheck(L, lua_isnil(L, -1) || lua_isfunction(L, -1), 1, "field 'on_close' must be a function");
	lua_getfield(L, 1, "count_first");
	int count_first = lua_isnil(L, -1) || lua_toboolean(L, -1);
	lua_pop(L, 1);

	pager *p = lua_newuserdatauv(L, sizeof *p, UV_COUNT);
	memset(p, 0, sizeof *p);
	p->start = p->offset = offset;
	p->limit = limit;
	p->max = max;
	p->total = -1;
	p->done = max == 0;
	p->count_first = count_first;
	luaL_setmetatable(L, PAGER_MT);
	lua_rotate(L, -5, 1); /* pager under fetch, on_page, label, on_close */
	lua_setiuservalue(L, -5, UV_ON_CLOSE);
	lua_setiuservalue(L, -4, UV_LABEL);
	lua_setiuservalue(L, -3, UV_ON_PAGE);
	lua_setiuservalue(L, -2, UV_FETCH);
	return 1;
}

/* Lets go of the page held, read or not. */
static void drop_page(lua_State *L, int idx, pager *p)
{
	p->page_len = p->page_pos = 0;
	lua_pushnil(L);
	lua_setiuservalue(L, idx, UV_PAGE);
}

/* Drops the page held, marking the listing finished. */
static void finish(lua_State *L, int idx, pager *p)
{
	p->done = 1;
	drop_page(L, idx, p);
}

/* Server offset of the next item to hand out. */
static lua_Integer next_offset(const pager *p)
{
	return p->page_pos < p->page_len ? p->page_at + p->page_pos : p->offset;
}

/* Puts the listing back at server offset `at` with `read` items handed out,
 * holding no page: reading it again fetches from there. */
static void rewind_to(lua_State *L, int idx, pager *p, lua_Integer at, lua_Integer read)
{
	drop_page(L, idx, p);
	p->offset = at;
	p->yielded = read;
}

/* How many items lie between the listing's start and server offset `end`. */
static lua_Integer from_start(const pager *p, lua_Integer end)
{
	return end > p->start ? end - p->start : 0;
}

/* n items, or fewer if max says so. */
static lua_Integer within_max(const pager *p, lua_Integer n)
{
	return p->max >= 0 && n > p->max ? p->max : n;
}

/* Is the listing over before fetching the page at p->offset? */
static int ended(pager *p)
{
	if (p->max >= 0 && p->yielded >= p->max)
		return 1;
	return p->total >= 0 && p->offset >= p->total;
}

/* Whether the error on the stack top means "past the end": ISC answers 400
 * "Specified offset is invalid." to an offset equal to the total. */
static int is_past_end_error(lua_State *L)
{
	if (!lua_istable(L, -1))
		return 0;
	lua_getfield(L, -1, "status");
	lua_getfield(L, -2, "message");
	const char *msg = lua_tostring(L, -1);
	int past = lua_tointeger(L, -2) == 400 && msg && strcasestr(msg, "offset");
	lua_pop(L, 2);
	return past;
}

/* Checks what fetch returned at idx (a list of items) and gives its length,
 * which must leave the next offset, at + length, a valid integer. */
static lua_Integer page_length(lua_State *L, int idx, lua_Integer at)
{
	if (!lua_istable(L, idx))
		luaL_error(L, "isc.pager: fetch must return a list of items, got %s", luaL_typename(L, idx));
	lua_Integer n = luaL_len(L, idx);
	if (n < 0 || n > LUA_MAXINTEGER - at)
		luaL_error(L, "isc.pager: a page of %I items at offset %I runs past the largest offset", n, at);
	return n;
}

/* Calls fetch(at, want, want_total) of the pager at idx. FETCHED leaves the
 * page on the stack with its length in *len and the total the server gave
 * in *total (-1 for none); FAILED leaves the error; PAST_END, nothing (only
 * an offset past the listing's start can be past the end). */
static int call_fetch(lua_State *L, int idx, const pager *p, lua_Integer at, lua_Integer want,
                      int want_total, int probe, lua_Integer *len, lua_Integer *total)
{
	lua_getiuservalue(L, idx, UV_FETCH);
	lua_pushinteger(L, at);
	lua_pushinteger(L, want);
	lua_pushboolean(L, want_total);
	lua_pushboolean(L, probe);
	if (lua_pcall(L, 4, 2, 0) != LUA_OK) {
		if (at > p->start && is_past_end_error(L)) {
			lua_pop(L, 1);
			return PAST_END;
		}
		return FAILED;
	}
	*len = page_length(L, -2, at);
	*total = lua_isinteger(L, -1) && lua_tointeger(L, -1) >= 0 ? lua_tointeger(L, -1) : -1;
	lua_pop(L, 1);
	return FETCHED;
}

/* Adds to the error table on the stack top where the listing stands: the
 * server offset to read again from and the items handed out before it. */
static void mark_error(lua_State *L, lua_Integer offset, lua_Integer read)
{
	if (!lua_istable(L, -1))
		return;
	/* raw: no metamethod may replace the error being raised */
	lua_pushliteral(L, "offset");
	lua_pushinteger(L, offset);
	lua_rawset(L, -3);
	lua_pushliteral(L, "read");
	lua_pushinteger(L, read);
	lua_rawset(L, -3);
}

/* Calls on_page, if any, with what the page just fetched (n items) brought. */
static void report_page(lua_State *L, int idx, pager *p, lua_Integer n)
{
	if (lua_getiuservalue(L, idx, UV_ON_PAGE) != LUA_TFUNCTION) {
		lua_pop(L, 1);
		return;
	}
	lua_createtable(L, 0, 4);
	lua_pushinteger(L, p->page_at);
	lua_setfield(L, -2, "offset");
	lua_pushinteger(L, n);
	lua_setfield(L, -2, "count");
	lua_pushinteger(L, within_max(p, p->yielded + n));
	lua_setfield(L, -2, "read");
	if (p->total >= 0) {
		lua_pushinteger(L, within_max(p, from_start(p, p->total)));
		lua_setfield(L, -2, "total");
	}
	lua_call(L, 1, 0);
}

/* Fetches the page at p->offset into the pager (at stack index idx).
 * Returns 1 if a non-empty page is held afterwards, 0 at the end. A fetch
 * that fails leaves the pager at that page, so reading on asks for it again,
 * and raises its error marked with mark_error. */
static int fetch_page(lua_State *L, int idx, pager *p)
{
	lua_Integer want = p->limit;
	if (p->max >= 0 && p->max - p->yielded < want)
		want = p->max - p->yielded;
	/* The total is asked for on the first page, and again on the page it
	 * says is the last, so that items added meanwhile are not left out. */
	int want_total = (p->pages == 0 && p->count_first) || (p->total >= 0 && p->total - p->offset <= want);
	lua_Integer n, total;
	drop_page(L, idx, p);
	p->failed = 1;
	switch (call_fetch(L, idx, p, p->offset, want, want_total, 0, &n, &total)) {
	case PAST_END:
		p->failed = 0;
		finish(L, idx, p);
		return 0;
	case FAILED:
		mark_error(L, p->offset, p->yielded);
		return lua_error(L);
	}
	p->failed = 0;
	if (total >= 0)
		p->total = total;
	p->pages++;
	p->page_at = p->offset;
	p->offset += n;
	/* An empty page ends the listing even when the total said more: items
	 * were deleted meanwhile. */
	if (n == 0) {
		lua_pop(L, 1);
		finish(L, idx, p);
		return 0;
	}
	p->page_len = n;
	p->page_pos = 0;
	lua_setiuservalue(L, idx, UV_PAGE);
	/* A short page is the last one when no total says otherwise (ISC's
	 * rule); with a total, a gateway may have lowered the limit, so the rest
	 * is asked for. */
	if (n < want && p->total < 0)
		p->total = p->offset;
	report_page(L, idx, p, n);
	return 1;
}

/* Makes sure an unread item is held; returns 0 at the end of the listing. */
static int ensure_item(lua_State *L, int idx, pager *p)
{
	if (p->done)
		return 0;
	if (p->max >= 0 && p->yielded >= p->max) {
		finish(L, idx, p);
		return 0;
	}
	if (p->page_pos < p->page_len)
		return 1;
	if (ended(p)) {
		finish(L, idx, p);
		return 0;
	}
	return fetch_page(L, idx, p);
}

/* pager:next() -> item | nil; also the generic-for iterator (__call) */
static int pager_next(lua_State *L)
{
	pager *p = check_pager(L);
	if (!ensure_item(L, 1, p)) {
		lua_pushnil(L);
		return 1;
	}
	lua_getiuservalue(L, 1, UV_PAGE);
	lua_geti(L, -1, ++p->page_pos);
	p->yielded++;
	return 1;
}

/* pager:next_page() -> {items=, offset=, total=} | nil: the unread part of
 * the page held, or the next page */
static int pager_next_page(lua_State *L)
{
	pager *p = check_pager(L);
	if (!ensure_item(L, 1, p)) {
		lua_pushnil(L);
		return 1;
	}
	lua_Integer take = p->page_len - p->page_pos;
	if (p->max >= 0 && p->max - p->yielded < take)
		take = p->max - p->yielded;
	lua_getiuservalue(L, 1, UV_PAGE);
	lua_createtable(L, 0, 3);
	lua_createtable(L, (int)take, 0);
	for (lua_Integer i = 1; i <= take; i++) {
		lua_geti(L, -3, p->page_pos + i);
		lua_seti(L, -2, i);
	}
	luaL_setmetatable(L, ISC_ARRAY_MT);
	lua_setfield(L, -2, "items");
	lua_pushinteger(L, p->page_at + p->page_pos);
	lua_setfield(L, -2, "offset");
	if (p->total >= 0) {
		lua_pushinteger(L, p->total);
		lua_setfield(L, -2, "total");
	}
	p->page_pos += take;
	p->yielded += take;
	return 1;
}

/* pager:pages() -> iterator over pages (for page in p:pages() do ... end) */
static int pager_pages(lua_State *L)
{
	check_pager(L);
	lua_pushcfunction(L, pager_next_page);
	lua_pushvalue(L, 1);
	lua_pushnil(L);
	lua_pushvalue(L, 1);
	return 4;
}

/* Appends every item not yet read to the list at index 2. */
static int collect_into(lua_State *L)
{
	pager *p = check_pager(L);
	lua_Integer n = 0;
	while (ensure_item(L, 1, p)) {
		lua_getiuservalue(L, 1, UV_PAGE);
		while (p->page_pos < p->page_len && (p->max < 0 || p->yielded < p->max)) {
			lua_geti(L, -1, ++p->page_pos);
			lua_seti(L, 2, ++n);
			p->yielded++;
		}
		lua_pop(L, 1);
	}
	return 0;
}

/* pager:collect() -> list of every item not yet read. All or nothing: when
 * a page fails, the items gathered go with the error, so the listing goes
 * back to where collect began (the error's offset and read say where). */
static int pager_collect(lua_State *L)
{
	pager *p = check_pager(L);
	lua_Integer at = next_offset(p), read = p->yielded;
	lua_settop(L, 1);
	lua_pushcfunction(L, collect_into);
	lua_pushvalue(L, 1);
	lua_newtable(L);
	luaL_setmetatable(L, ISC_ARRAY_MT);
	lua_pushvalue(L, -1);
	lua_insert(L, 2); /* the list stays below the call */
	if (lua_pcall(L, 2, 0, 0) != LUA_OK) {
		rewind_to(L, 1, p, at, read);
		mark_error(L, at, read);
		return lua_error(L);
	}
	return 1;
}

/* pager:count() -> how many items the whole listing holds (from its start,
 * within max). Asks the server for X-Total-Count with a one-item page, or
 * walks the listing in a separate pass when the endpoint gives no total.
 * The iterator's own position does not move. */
static int pager_count(lua_State *L)
{
	pager *p = check_pager(L);
	lua_Integer total = p->total, n;
	if (total < 0) {
		/* at the start: never PAST_END */
		if (call_fetch(L, 1, p, p->start, 1, 1, 1, &n, &total) == FAILED)
			return lua_error(L);
		lua_pop(L, 1);
		if (total < 0 && n == 0)
			total = p->start;
	}
	if (total < 0) {
		lua_Integer at = p->start, ignored;
		for (;;) {
			int got = call_fetch(L, 1, p, at, p->limit, 0, 1, &n, &ignored);
			if (got == FAILED)
				return lua_error(L);
			if (got == PAST_END)
				break;
			lua_pop(L, 1);
			at += n;
			if (n < p->limit || (p->max >= 0 && at - p->start >= p->max))
				break;
		}
		total = at;
	}
	lua_pushinteger(L, within_max(p, from_start(p, total)));
	return 1;
}

/* pager:peek(n) -> the listing's first n items (at most), its total | nil:
 * one page fetched apart (as count does), so the listing keeps its place
 * and what it holds; the REPL's preview of a listing. */
static int pager_peek(lua_State *L)
{
	pager *p = check_pager(L);
	lua_Integer want = luaL_checkinteger(L, 2), n, total;
	luaL_argcheck(L, want >= 1, 2, "must be >= 1");
	want = within_max(p, want < p->limit ? want : p->limit);
	if (want == 0) {
		lua_newtable(L);
		lua_pushinteger(L, 0);
		return 2;
	}
	if (call_fetch(L, 1, p, p->start, want, 1, 1, &n, &total) == FAILED)
		return lua_error(L);
	if (total >= 0)
		lua_pushinteger(L, within_max(p, from_start(p, total)));
	else
		lua_pushnil(L);
	return 2;
}

/* pager:total() -> X-Total-Count of the listing (from its start) | nil */
static int pager_total(lua_State *L)
{
	pager *p = luaL_checkudata(L, 1, PAGER_MT);
	if (p->total < 0)
		lua_pushnil(L);
	else
		lua_pushinteger(L, from_start(p, p->total));
	return 1;
}

/* pager:read() -> items handed out so far */
static int pager_read(lua_State *L)
{
	pager *p = luaL_checkudata(L, 1, PAGER_MT);
	lua_pushinteger(L, p->yielded);
	return 1;
}

/* pager:close(): releases the page held; idempotent. Also __gc. */
static int pager_close(lua_State *L)
{
	pager *p = luaL_checkudata(L, 1, PAGER_MT);
	if (!p->closed) {
		finish(L, 1, p);
		p->closed = 1;
		if (lua_getiuservalue(L, 1, UV_ON_CLOSE) == LUA_TFUNCTION)
			lua_call(L, 0, 0);
	}
	return 0;
}

/* __close: a generic for left by break closes the listing; one left by an
 * error only lets go of the page held and keeps the listing's place, so that
 * reading it again (after a failed page, say) goes on from there. */
static int pager_close_tbc(lua_State *L)
{
	pager *p = luaL_checkudata(L, 1, PAGER_MT);
	if (lua_isnoneornil(L, 2))
		return pager_close(L);
	if (!p->closed && !p->done)
		rewind_to(L, 1, p, next_offset(p), p->yielded);
	return 0;
}

/* __call: the pager as its own generic-for iterator */
static int pager_call(lua_State *L)
{
	lua_settop(L, 1);
	return pager_next(L);
}

/* __tostring: isc.pager(label: state, read counts) */
static int pager_tostring(lua_State *L)
{
	pager *p = luaL_checkudata(L, 1, PAGER_MT);
	lua_getiuservalue(L, 1, UV_LABEL);
	const char *label = lua_isstring(L, -1) ? lua_tostring(L, -1) : "listing";
	if (!p->closed && !p->done && p->failed)
		lua_pushfstring(L, "failed at offset %I", p->offset);
	else
		lua_pushstring(L, p->closed ? "closed" : p->done ? "finished" : p->pages ? "reading" : "not started");
	const char *state = lua_tostring(L, -1);
	if (p->total >= 0)
		lua_pushfstring(L, "isc.pager(%s: %s, %I of %I read)", label, state,
		                p->yielded, from_start(p, p->total));
	else
		lua_pushfstring(L, "isc.pager(%s: %s, %I read)", label, state, p->yielded);
	return 1;
}

void isc_open_pager(lua_State *L)
{
	static const luaL_Reg methods[] = {
		{"next", pager_next},
		{"next_page", pager_next_page},
		{"pages", pager_pages},
		{"collect", pager_collect},
		{"count", pager_count},
		{"peek", pager_peek},
		{"total", pager_total},
		{"read", pager_read},
		{"close", pager_close},
		{NULL, NULL},
	};
	static const luaL_Reg meta[] = {
		{"__call", pager_call},
		{"__close", pager_close_tbc},
		{"__gc", pager_close},
		{"__tostring", pager_tostring},
		{NULL, NULL},
	};
	if (luaL_newmetatable(L, PAGER_MT)) {
		luaL_setfuncs(L, meta, 0);
		luaL_newlib(L, methods);
		lua_setfield(L, -2, "__index");
	}
	lua_pop(L, 1);
	lua_pushcfunction(L, pager_new);
	lua_setfield(L, -2, "pager");
}
