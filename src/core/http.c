/* The HTTP core: a connection object holds a client's transfer settings;
 * each request is a transfer on the state's event loop (loop.c), so several
 * can be in flight at once and share kept-alive connections. Transfers never
 * run Lua code: the callbacks only fill C buffers, so no Lua error can unwind
 * through curl. */
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "loop.h"

#define HTTP_MT "isc.http"
#define TRANSFER_MT "isc.transfer"

typedef struct {
	char *data;
	size_t len, cap;
} membuf;

/* A connection's settings; the sockets themselves live in the loop's pool. */
typedef struct {
	long connect_timeout_ms;
	long timeout_ms;
	int verify;
	int closed;
	curl_off_t max_body;   /* bytes of body or of headers a response may hold */
	char user_agent[64];
} http_conn;

/* One request and, once it is done, its response. */
typedef struct {
	isc_xfer x; /* first: the loop sees only this */
	curl_off_t max_body;
	int too_large;         /* the transfer was stopped at max_body */
	int read;              /* result() has handed the response out */
	char errbuf[CURL_ERROR_SIZE];
	membuf body;
	membuf head; /* raw header lines of the final response */
	struct curl_slist *headers;
} http_transfer;

/* Appends to a growing buffer; returns 0 when memory runs out. */
static int membuf_add(membuf *b, const char *p, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		while (cap < b->len + n + 1)
			cap *= 2;
		char *d = realloc(b->data, cap);
		if (!d)
			return 0;
		b->data = d;
		b->cap = cap;
	}
	memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
	return 1;
}

/* Adds to one of the response's buffers, refusing (which stops the
 * transfer) past max_body so that a hostile or broken server cannot make the
 * client grow without bound. */
static size_t capped_add(http_transfer *t, membuf *b, const char *p, size_t n)
{
	if ((curl_off_t)(b->len + n) > t->max_body) {
		t->too_large = 1;
		return 0;
	}
	return membuf_add(b, p, n) ? n : 0;
}

/* libcurl write callback: collects the response body. */
static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
	http_transfer *t = ud;
	return capped_add(t, &t->body, p, size * n);
}

/* Keeps only the last response's headers (a 100 Continue or a redirect
 * starts a new status line). */
static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
	http_transfer *t = ud;
	if (size * n > 5 && memcmp(p, "HTTP/", 5) == 0)
		t->head.len = 0;
	return capped_add(t, &t->head, p, size * n);
}

/* Aborts a transfer as soon as Ctrl-C or SIGTERM arrives. */
static int on_progress(void *ud, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
	(void)ud, (void)dt, (void)dn, (void)ut, (void)un;
	return isc_pending_signal != 0;
}

/* The connection at argument 1, which must still be open. */
static http_conn *check_conn(lua_State *L)
{
	http_conn *c = luaL_checkudata(L, 1, HTTP_MT);
	if (c->closed)
		luaL_error(L, "isc.http: connection is closed");
	return c;
}

/* Reads the timeout t[key] in seconds (argument t) as milliseconds, def
 * when absent. At least 1 ms, as 0 would mean no limit to libcurl; at most
 * a year, which keeps math.huge from overflowing the conversion. */
static long opt_ms(lua_State *L, int t, const char *key, long def)
{
	lua_getfield(L, t, key);
	long ms = def;
	if (!lua_isnil(L, -1)) {
		int isnum;
		double s = lua_tonumberx(L, -1, &isnum);
		luaL_argcheck(L, isnum && s > 0, t,
		              lua_pushfstring(L, "field '%s' must be a number of seconds > 0", key));
		s = ceil(fmin(s, 365 * 86400.0) * 1000.0);
		ms = (long)s;
	}
	lua_pop(L, 1);
	return ms;
}

/* Reads the string field t[key] of argument t, leaving it on the stack so
 * that the pointer stays valid; NULL when absent and not required. */
static const char *field_string(lua_State *L, int t, const char *key, int required, size_t *len)
{
	int type = lua_getfield(L, t, key);
	if (type == LUA_TSTRING)
		return lua_tolstring(L, -1, len);
	if (type != LUA_TNIL || required)
		luaL_argerror(L, t, lua_pushfstring(L, "field '%s' must be a string, got %s", key,
		                                    luaL_typename(L, -1)));
	if (len)
		*len = 0;
	return NULL;
}

/* core.http_new{connect_timeout=10, timeout=120, verify=true,
 *               max_response_bytes=64 MiB} -> conn */
static int http_new(lua_State *L)
{
	lua_settop(L, 1);
	if (lua_isnil(L, 1)) {
		lua_newtable(L);
		lua_replace(L, 1);
	}
	luaL_checktype(L, 1, LUA_TTABLE);
	long connect_ms = opt_ms(L, 1, "connect_timeout", 10000);
	long total_ms = opt_ms(L, 1, "timeout", 120000);
	lua_getfield(L, 1, "verify");
	int verify = lua_isnil(L, -1) ? 1 : lua_toboolean(L, -1);
	lua_pop(L, 1);
	lua_getfield(L, 1, "max_response_bytes");
	lua_Integer max_body = 64 << 20;
	if (!lua_isnil(L, -1)) {
		int isint;
		max_body = lua_tointegerx(L, -1, &isint);
		luaL_argcheck(L, isint && max_body > 0, 1, "field 'max_response_bytes' must be an integer > 0");
	}
	lua_pop(L, 1);

	http_conn *c = lua_newuserdatauv(L, sizeof *c, 0);
	memset(c, 0, sizeof *c);
	luaL_setmetatable(L, HTTP_MT);
	c->connect_timeout_ms = connect_ms;
	c->timeout_ms = total_ms;
	c->verify = verify;
	c->max_body = (curl_off_t)max_body;
	snprintf(c->user_agent, sizeof c->user_agent, "isclua/%s", ISCLUA_VERSION);
	return 1;
}

/* Classifies a libcurl failure into the cause scripts can act on. */
static const char *failure_cause(CURLcode rc)
{
	switch (rc) {
	case CURLE_COULDNT_CONNECT: return "refused";
	case CURLE_OPERATION_TIMEDOUT: return "timeout";
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY: return "dns";
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_SSL_CACERT_BADFILE: return "tls";
	case CURLE_PARTIAL_FILE: return "truncated";
	case CURLE_GOT_NOTHING:
	case CURLE_RECV_ERROR:
	case CURLE_SEND_ERROR: return "reset";
	case CURLE_URL_MALFORMAT:
	case CURLE_UNSUPPORTED_PROTOCOL: return "url";
	case CURLE_FILESIZE_EXCEEDED: return "too_large";
	default: return "other";
	}
}

void isc_push_headers(lua_State *L, char *head, size_t len)
{
	lua_newtable(L);
	char *line = head, *end = head ? head + len : NULL;
	while (line && line < end) {
		char *eol = memchr(line, '\n', (size_t)(end - line));
		char *next = eol ? eol + 1 : end;
		char *colon = memchr(line, ':', (size_t)((eol ? eol : end) - line));
		/* a status line starts a new response; a line too short for one is a header */
		if (colon && (next - line < 5 || memcmp(line, "HTTP/", 5) != 0)) {
			char *v = colon + 1, *ve = eol ? eol : end;
			while (v < ve && (*v == ' ' || *v == '\t'))
				v++;
			while (ve > v && isspace((unsigned char)ve[-1]))
				ve--;
			for (char *k = line; k < colon; k++)
				*k = (char)tolower((unsigned char)*k);
			lua_pushlstring(L, line, (size_t)(colon - line));
			lua_pushvalue(L, -1);
			if (lua_rawget(L, -3) == LUA_TSTRING) {
				lua_pushliteral(L, ", ");
				lua_pushlstring(L, v, (size_t)(ve - v));
				lua_concat(L, 3);
			} else {
				lua_pop(L, 1);
				lua_pushlstring(L, v, (size_t)(ve - v));
			}
			lua_rawset(L, -3);
		}
		line = next;
	}
}

/* Appends one "Name: value" line to t->headers; raises when out of memory
 * rather than send the request without it. */
static void add_header(lua_State *L, http_transfer *t, const char *line)
{
	struct curl_slist *l = isc_curl.slist_append(t->headers, line);
	if (!l)
		luaL_error(L, "isc.http: out of memory");
	t->headers = l;
}

/* Builds t->headers from req.headers ({name=value}) of argument req. A line
 * break in a name or value would start a header of its own, so it is refused. */
static void request_headers(lua_State *L, http_transfer *t, int req)
{
	add_header(L, t, "Expect:");
	lua_getfield(L, req, "headers");
	if (lua_istable(L, -1)) {
		lua_pushnil(L);
		while (lua_next(L, -2)) {
			if (lua_type(L, -2) == LUA_TSTRING && lua_isstring(L, -1)) {
				const char *line = lua_pushfstring(L, "%s: %s", lua_tostring(L, -2), lua_tostring(L, -1));
				if (strpbrk(line, "\r\n"))
					luaL_argerror(L, req, lua_pushfstring(L, "header '%s' holds a line break",
					                                      lua_tostring(L, -3)));
				add_header(L, t, line);
				lua_pop(L, 1);
			}
			lua_pop(L, 1);
		}
	}
	lua_pop(L, 1);
}

/* Lets go of everything a transfer holds but its userdata. */
static void transfer_free(lua_State *L, http_transfer *t)
{
	isc_loop_cancel(L, &t->x);
	isc_loop_release(&t->x);
	isc_curl.slist_free_all(t->headers);
	t->headers = NULL;
	free(t->body.data);
	free(t->head.data);
	memset(&t->body, 0, sizeof t->body);
	memset(&t->head, 0, sizeof t->head);
}

/* conn:start{method=, url=, headers=, body=, timeout=, fresh=} -> transfer:
 * the request, on its way; transfer:result() gives what perform gives.
 * fresh = true sends the request on a new connection. libcurl resends a
 * request, silently, when a reused connection dies before any answer; the
 * server may have read and applied it, so a request that must not be sent
 * twice asks for a connection that has never carried one. */
static int http_start(lua_State *L)
{
	http_conn *c = check_conn(L);
	luaL_checktype(L, 2, LUA_TTABLE);
	const char *url = field_string(L, 2, "url", 1, NULL);
	const char *method = field_string(L, 2, "method", 0, NULL);
	if (!method)
		method = "GET";
	size_t body_len;
	const char *body = field_string(L, 2, "body", 0, &body_len);
	long timeout_ms = opt_ms(L, 2, "timeout", c->timeout_ms);
	lua_getfield(L, 2, "fresh");
	long fresh = lua_toboolean(L, -1);
	lua_pop(L, 1);
	if (isc_pending_signal)
		return isc_raise_interrupted(L);
	isc_loop *lp = isc_loop_get(L);

	http_transfer *t = lua_newuserdatauv(L, sizeof *t, 0);
	memset(t, 0, sizeof *t);
	t->x.ref = LUA_NOREF;
	luaL_setmetatable(L, TRANSFER_MT);
	t->max_body = c->max_body;
	t->x.curl = isc_loop_handle(L, lp);
	t->x.loop = lp;
	request_headers(L, t, 2);
	CURL *h = t->x.curl;
	isc_curl.easy_setopt(h, CURLOPT_URL, url);
	isc_curl.easy_setopt(h, CURLOPT_HTTPHEADER, t->headers);
	isc_curl.easy_setopt(h, CURLOPT_USERAGENT, c->user_agent);
	isc_curl.easy_setopt(h, CURLOPT_ACCEPT_ENCODING, "");
	isc_curl.easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	isc_curl.easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
	isc_curl.easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, c->connect_timeout_ms);
	isc_curl.easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms);
	isc_curl.easy_setopt(h, CURLOPT_SSL_VERIFYPEER, (long)c->verify);
	isc_curl.easy_setopt(h, CURLOPT_SSL_VERIFYHOST, c->verify ? 2L : 0L);
	isc_curl.easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	isc_curl.easy_setopt(h, CURLOPT_FRESH_CONNECT, fresh);
	/* requests starting together wait to learn whether the first connection
	 * multiplexes (HTTP/2) rather than each opening its own */
	isc_curl.easy_setopt(h, CURLOPT_PIPEWAIT, fresh ? 0L : 1L);
	isc_curl.easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, c->max_body);
	isc_curl.easy_setopt(h, CURLOPT_ERRORBUFFER, t->errbuf);
	isc_curl.easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	isc_curl.easy_setopt(h, CURLOPT_WRITEDATA, t);
	isc_curl.easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	isc_curl.easy_setopt(h, CURLOPT_HEADERDATA, t);
	isc_curl.easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
	isc_curl.easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
	if (strcmp(method, "HEAD") == 0)
		isc_curl.easy_setopt(h, CURLOPT_NOBODY, 1L);
	else if (strcmp(method, "GET") != 0 || body) /* a body alone would make it a POST */
		isc_curl.easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
	if (body || strcmp(method, "POST") == 0) {
		isc_curl.easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
		isc_curl.easy_setopt(h, CURLOPT_COPYPOSTFIELDS, body ? body : "");
	}
	isc_loop_start(L, lp, &t->x, -1);
	return 1;
}

/* The transfer at argument 1. */
static http_transfer *check_transfer(lua_State *L)
{
	return luaL_checkudata(L, 1, TRANSFER_MT);
}

/* transfer:done() -> whether the response (or the failure) is in */
static int transfer_done(lua_State *L)
{
	lua_pushboolean(L, check_transfer(L)->x.state == XFER_DONE);
	return 1;
}

/* transfer:cancel(): takes a request still in flight off the loop (its
 * answer, if any comes, is dropped); result() then says it was cancelled. */
static int transfer_cancel(lua_State *L)
{
	isc_loop_cancel(L, &check_transfer(L)->x);
	return 0;
}

/* Pushes the network error of a transfer that failed with rc. */
static int push_failure(lua_State *L, http_transfer *t, CURLcode rc)
{
	long request_size = 0;
	if (t->x.curl)
		isc_curl.easy_getinfo(t->x.curl, CURLINFO_REQUEST_SIZE, &request_size);
	lua_pushnil(L);
	if (t->too_large || rc == CURLE_FILESIZE_EXCEEDED)
		isc_push_error(L, "network", "the response is larger than the %I bytes allowed "
		               "(the client's max_response_bytes)", (lua_Integer)t->max_body);
	else
		isc_push_error(L, "network", "%s: %s", isc_curl.easy_strerror(rc),
		               t->errbuf[0] ? t->errbuf : isc_curl.easy_strerror(rc));
	lua_pushstring(L, t->too_large ? "too_large" : failure_cause(rc));
	lua_setfield(L, -2, "cause");
	lua_pushinteger(L, rc);
	lua_setfield(L, -2, "curl_code");
	lua_pushboolean(L, request_size > 0);
	lua_setfield(L, -2, "sent");
	return 2;
}

/* transfer:result() -> status, headers, body, info | nil, network error.
 * Once only: the response's memory goes with it. A network error says
 * whether any of the request went out (sent), so a caller can tell "not
 * sent" from "outcome unknown". */
static int transfer_result(lua_State *L)
{
	http_transfer *t = check_transfer(L);
	if (t->x.state != XFER_DONE)
		return luaL_error(L, "isc.transfer: the request is still in flight");
	if (t->read)
		return luaL_error(L, "isc.transfer: the result was already taken");
	t->read = 1;
	CURLcode rc = t->x.rc;
	if (rc == CURLE_ABORTED_BY_CALLBACK && isc_pending_signal)
		return isc_raise_interrupted(L);
	if (rc != CURLE_OK) {
		int n = push_failure(L, t, rc);
		transfer_free(L, t);
		return n;
	}
	CURL *h = t->x.curl;
	long status = 0, connects = 0;
	double total = 0;
	curl_off_t up = 0, down = 0;
	isc_curl.easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	isc_curl.easy_getinfo(h, CURLINFO_TOTAL_TIME, &total);
	isc_curl.easy_getinfo(h, CURLINFO_SIZE_UPLOAD_T, &up);
	isc_curl.easy_getinfo(h, CURLINFO_SIZE_DOWNLOAD_T, &down);
	isc_curl.easy_getinfo(h, CURLINFO_NUM_CONNECTS, &connects);

	lua_pushinteger(L, status);
	isc_push_headers(L, t->head.data, t->head.len);
	lua_pushlstring(L, t->body.data ? t->body.data : "", t->body.len);
	lua_createtable(L, 0, 4);
	lua_pushnumber(L, total);
	lua_setfield(L, -2, "time");
	lua_pushinteger(L, (lua_Integer)up);
	lua_setfield(L, -2, "bytes_out");
	lua_pushinteger(L, (lua_Integer)down);
	lua_setfield(L, -2, "bytes_in");
	lua_pushinteger(L, connects);
	lua_setfield(L, -2, "new_connections");
	transfer_free(L, t);
	return 4;
}

/* __gc of a transfer */
static int transfer_gc(lua_State *L)
{
	transfer_free(L, check_transfer(L));
	return 0;
}

/* __tostring: isc.transfer (in flight | done) */
static int transfer_tostring(lua_State *L)
{
	http_transfer *t = check_transfer(L);
	lua_pushfstring(L, "isc.transfer (%s)", t->x.state == XFER_RUNNING ? "in flight" : "done");
	return 1;
}

/* conn:perform{...} -> as transfer:result(): sends the request and runs
 * the loop until its answer is in (other transfers move on meanwhile). */
static int http_perform(lua_State *L)
{
	lua_settop(L, 2);
	http_start(L);
	lua_copy(L, -1, 1); /* the transfer, where its methods look */
	lua_settop(L, 1);
	http_transfer *t = lua_touserdata(L, 1);
	while (t->x.state != XFER_DONE)
		isc_loop_step(L, t->x.loop, 3600);
	return transfer_result(L);
}

/* conn:close(): later calls on conn raise. Idempotent. */
static int http_close(lua_State *L)
{
	http_conn *c = luaL_checkudata(L, 1, HTTP_MT);
	c->closed = 1;
	return 0;
}

/* __tostring: isc.http (open | closed) */
static int http_tostring(lua_State *L)
{
	http_conn *c = luaL_checkudata(L, 1, HTTP_MT);
	lua_pushfstring(L, "isc.http (%s)", c->closed ? "closed" : "open");
	return 1;
}

/* core.curl_version() -> "8.1.2": the libcurl isclua runs with (for --version). */
static int http_curl_version(lua_State *L)
{
	isc_curl_load(L);
	const curl_version_info_data *info = isc_curl.version_info(CURLVERSION_NOW);
	lua_pushstring(L, info && info->version ? info->version : "unknown");
	return 1;
}

void isc_open_http(lua_State *L)
{
	static const luaL_Reg conn_methods[] = {
		{"perform", http_perform},
		{"start", http_start},
		{"close", http_close},
		{NULL, NULL},
	};
	static const luaL_Reg conn_meta[] = {
		{"__close", http_close},
		{"__tostring", http_tostring},
		{NULL, NULL},
	};
	static const luaL_Reg transfer_methods[] = {
		{"done", transfer_done},
		{"result", transfer_result},
		{"cancel", transfer_cancel},
		{NULL, NULL},
	};
	static const luaL_Reg transfer_meta[] = {
		{"__gc", transfer_gc},
		{"__tostring", transfer_tostring},
		{NULL, NULL},
	};
	if (luaL_newmetatable(L, HTTP_MT)) {
		luaL_setfuncs(L, conn_meta, 0);
		luaL_newlib(L, conn_methods);
		lua_setfield(L, -2, "__index");
	}
	lua_pop(L, 1);
	if (luaL_newmetatable(L, TRANSFER_MT)) {
		luaL_setfuncs(L, transfer_meta, 0);
		luaL_newlib(L, transfer_methods);
		lua_setfield(L, -2, "__index");
	}
	lua_pop(L, 1);
	lua_pushcfunction(L, http_new);
	lua_setfield(L, -2, "http_new");
	lua_pushcfunction(L, http_curl_version);
	lua_setfield(L, -2, "curl_version");
}
