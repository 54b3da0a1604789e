/* The Lua side of each request: the request table the handler gets, the
 * call itself (protected, with a traceback for the log), and the reading of
 * the response table it returns. */
#include <stdio.h>
#include <string.h>

#include "sim.h"

/* Message handler: {message = tostring(err), traceback = ...}. */
static int handler_msgh(lua_State *L)
{
	const char *msg = luaL_tolstring(L, 1, NULL);
	lua_createtable(L, 0, 2);
	lua_pushvalue(L, -2);
	lua_setfield(L, -2, "message");
	luaL_traceback(L, L, msg, 1);
	lua_setfield(L, -2, "traceback");
	return 1;
}

/* Pushes the request table the handler receives. */
void sim_push_request(lua_State *L, const struct conn *c, const struct head *h)
{
	lua_createtable(L, 0, 6);
	lua_pushlstring(L, h->method, h->method_len);
	lua_setfield(L, -2, "method");
	lua_pushlstring(L, h->target, h->target_len);
	lua_setfield(L, -2, "target");
	lua_pushlstring(L, h->target, h->path_len);
	lua_setfield(L, -2, "path");
	size_t qlen = h->target_len > h->path_len ? h->target_len - h->path_len - 1 : 0;
	lua_pushlstring(L, h->target + h->target_len - qlen, qlen);
	lua_setfield(L, -2, "query");
	lua_createtable(L, 0, (int)h->nfields);
	for (size_t i = 0; i < h->nfields; i++) {
		const struct field *f = &h->fields[i];
		size_t j, k;
		for (j = 0; j < i; j++)
			if (h->fields[j].name_len == f->name_len && !memcmp(h->fields[j].name, f->name, f->name_len))
				break;
		if (j < i) /* joined into the first field of that name */
			continue;
		lua_pushlstring(L, f->name, f->name_len);
		for (k = i + 1; k < h->nfields; k++)
			if (h->fields[k].name_len == f->name_len && !memcmp(h->fields[k].name, f->name, f->name_len))
				break;
		if (k == h->nfields) {
			lua_pushlstring(L, f->value, f->value_len);
		} else {
			luaL_Buffer b;
			luaL_buffinit(L, &b);
			luaL_addlstring(&b, f->value, f->value_len);
			for (; k < h->nfields; k++) {
				const struct field *g = &h->fields[k];
				if (g->name_len == f->name_len && !memcmp(g->name, f->name, f->name_len)) {
					luaL_addlstring(&b, ", ", 2);
					luaL_addlstring(&b, g->value, g->value_len);
				}
			}
			luaL_pushresult(&b);
		}
		lua_rawset(L, -3);
	}
	lua_setfield(L, -2, "headers");
	lua_pushlstring(L, c->in + c->head_end, c->body_len);
	lua_setfield(L, -2, "body");
}

/* Reads the handler's response table at idx into *r and the head into
 * lp->hdr, raising on a malformed one. Leaves the body string on the stack:
 * r->body points into it. */
static void read_response(lua_State *L, struct loop *lp, struct conn *c, int idx, struct resp *r)
{
	if (!lua_istable(L, idx))
		luaL_error(L, "handler returned %s, expected a response table", luaL_typename(L, idx));
	int isnum;
	lua_getfield(L, idx, "status");
	lua_Integer status = lua_isnil(L, -1) ? 200 : lua_tointegerx(L, -1, &isnum);
	if (!lua_isnil(L, -1) && (!isnum || status < 200 || status > 599))
		luaL_error(L, "response status must be an integer in 200..599");
	r->status = (int)status;
	lua_getfield(L, idx, "fault");
	const char *fault = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "";
	if (lua_isnil(L, -1))
		r->fault = FAULT_NONE;
	else if (!strcmp(fault, "reset"))
		r->fault = FAULT_RESET;
	else if (!strcmp(fault, "truncate"))
		r->fault = FAULT_TRUNCATE;
	else
		luaL_error(L, "response fault must be nil, \"reset\" or \"truncate\"");
	lua_getfield(L, idx, "delay");
	if (!lua_isnil(L, -1)) {
		r->delay = lua_tonumberx(L, -1, &isnum);
		if (!isnum || !(r->delay >= 0 && r->delay <= 86400))
			luaL_error(L, "response delay must be a number of seconds in 0..86400");
	}
	lua_getfield(L, idx, "headers");
	if (!lua_isnil(L, -1) && !lua_istable(L, -1))
		luaL_error(L, "response headers must be a table, not %s", luaL_typename(L, -1));
	int headers = lua_gettop(L);
	lua_getfield(L, idx, "body");
	if (lua_isnil(L, -1))
		r->body = "";
	else if (lua_type(L, -1) == LUA_TSTRING)
		r->body = lua_tolstring(L, -1, &r->body_len);
	else
		luaL_error(L, "response body must be a string, not %s", luaL_typename(L, -1));
	if (r->status == 204 || r->status == 304)
		r->body_len = 0;
	if (sim_head_begin(lp, r->status))
		luaL_error(L, "out of memory");
	int with_date = 1;
	if (lua_istable(L, headers)) {
		lua_pushnil(L);
		while (lua_next(L, headers)) {
			size_t nlen, vlen;
			if (lua_type(L, -2) != LUA_TSTRING || !lua_isstring(L, -1))
				luaL_error(L, "response headers must map names to strings");
			const char *name = lua_tolstring(L, -2, &nlen);
			const char *value = lua_tolstring(L, -1, &vlen);
			if (!sim_is_token(name, nlen) || !sim_is_field_value(value, vlen))
				luaL_error(L, "invalid response header %s", name);
			if (sim_ieq(name, nlen, "date"))
				with_date = 0;
			/* the server owns the framing */
			if (!sim_ieq(name, nlen, "content-length") && !sim_ieq(name, nlen, "connection") &&
			    !sim_ieq(name, nlen, "transfer-encoding") &&
			    (sim_hdr_add(lp, name, nlen) || sim_hdr_add(lp, ": ", 2) ||
			     sim_hdr_add(lp, value, vlen) || sim_hdr_add(lp, "\r\n", 2)))
				luaL_error(L, "out of memory");
			lua_pop(L, 1);
		}
	}
	if (sim_head_end(lp, c, r, with_date))
		luaL_error(L, "out of memory");
}

/* One request's trip through the handler. */
struct call {
	struct loop *lp;
	struct conn *c;
	struct resp r;
	int stop;
};

/* Runs protected, as call_handler(handler, call): builds the request, calls
 * the handler, reads its response; returns the body string the send needs. */
static int call_handler(lua_State *L)
{
	struct call *k = lua_touserdata(L, 2);
	lua_settop(L, 1);
	sim_push_request(L, k->c, &k->lp->head);
	lua_call(L, 1, 1);
	if (lua_type(L, 1) == LUA_TSTRING && !strcmp(lua_tostring(L, 1), "stop")) {
		k->stop = 1;
		return 0;
	}
	read_response(L, k->lp, k->c, 1, &k->r);
	return 1;
}

/* The length of the valid UTF-8 sequence at p (end bounds it), or 0 for a
 * byte that starts none: overlong forms and surrogates are not valid. */
static size_t utf8_len(const unsigned char *p, const unsigned char *end)
{
	size_t len = *p < 0x80 ? 1 : *p >= 0xC2 && *p <= 0xDF ? 2 : *p >= 0xE0 && *p <= 0xEF ? 3
	           : *p >= 0xF0 && *p <= 0xF4 ? 4 : 0;
	if (!len || (size_t)(end - p) < len)
		return 0;
	for (size_t i = 1; i < len; i++)
		if ((p[i] & 0xC0) != 0x80)
			return 0;
	if ((*p == 0xE0 && p[1] < 0xA0) || (*p == 0xED && p[1] > 0x9F) || (*p == 0xF0 && p[1] < 0x90) ||
	    (*p == 0xF4 && p[1] > 0x8F))
		return 0;
	return len;
}

/* Writes n bytes of s to f, each byte that is not valid UTF-8 text (control
 * characters but newline and tab included) as \xHH: an error message may
 * carry any bytes, and the log must stay readable text. */
static void put_text(FILE *f, const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s, *end = p + n;
	while (p < end) {
		size_t len = utf8_len(p, end);
		if (len && ((*p >= 0x20 && *p != 0x7F) || *p == '\n' || *p == '\t')) {
			fwrite(p, 1, len, f);
			p += len;
		} else {
			fprintf(f, "\\x%02X", *p++);
		}
	}
}

/* Answers the complete request in lp->head through the Lua handler. */
void sim_dispatch(struct loop *lp, struct conn *c)
{
	lua_State *L = lp->L;
	int base = lua_gettop(L);
	struct call k = {.lp = lp, .c = c};
	c->started = isc_monotonic();
	luaL_checkstack(L, 8, "request");
	lua_pushcfunction(L, handler_msgh);
	lua_pushcfunction(L, call_handler);
	lua_pushvalue(L, lp->handler);
	lua_pushlightuserdata(L, &k);
	if (lua_pcall(L, 2, 1, base + 1) != LUA_OK) {
		const char *tb = NULL;
		if (lua_istable(L, -1)) {
			lua_getfield(L, -1, "traceback");
			tb = lua_tostring(L, -1);
			lua_getfield(L, -2, "message");
		} else { /* the message handler itself failed */
			lua_pushliteral(L, "error in the handler's error handling");
		}
		const char *msg = tb ? tb : lua_tostring(L, -1);
		if (!msg)
			msg = "(an error that is not a string)";
		fputs("isc sim: handler error in ", stderr);
		put_text(stderr, lp->head.method, lp->head.method_len);
		fputc(' ', stderr);
		put_text(stderr, lp->head.target, lp->head.target_len);
		fputs(": ", stderr);
		put_text(stderr, msg, strlen(msg));
		fputc('\n', stderr);
		sim_send_error(lp, c, 500, "500.0 Internal Fault", lua_gettop(L), NULL);
	} else if (k.stop) {
		struct resp r = {.status = 204, .close = 1};
		lp->stopping = 1;
		if (sim_head_begin(lp, 204) || sim_head_end(lp, c, &r, 1))
			sim_conn_close(c);
		else
			sim_send_response(lp, c, &r);
	} else {
		sim_send_response(lp, c, &k.r);
	}
	lua_settop(L, base);
}

