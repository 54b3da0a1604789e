/* The HTTP core: one libcurl easy handle per connection object, reused across
 * requests so the connection stays alive. Transfers never run Lua code: the
 * callbacks only fill C buffers, so no Lua error can unwind through curl. */
#include <ctype.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "core.h"

#define HTTP_MT "isc.http"

typedef struct {
	char *data;
	size_t len, cap;
} membuf;

typedef struct {
	CURL *curl;
	long connect_timeout_ms;
	long timeout_ms;
	int verify;
	curl_off_t max_body;   /* bytes of body or of headers a response may hold */
	int too_large;         /* the transfer was stopped at max_body */
	char user_agent[64];
	char errbuf[CURL_ERROR_SIZE];
	membuf body;
	membuf head; /* raw header lines of the final response */
	/* the request's header list; owned here so that an error raised while
	 * it is built leaves it to the next perform or to close */
	struct curl_slist *headers;
} http_conn;

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

/* Keeps a large buffer from one big response from pinning memory for good. */
static void membuf_reset(membuf *b)
{
	if (b->cap > (1u << 20)) {
		free(b->data);
		b->data = NULL;
		b->cap = 0;
	}
	b->len = 0;
}

/* Adds to one of the response's buffers, refusing (which stops the
 * transfer) past max_body so that a hostile or broken server cannot make the
 * client grow without bound. */
static size_t capped_add(http_conn *c, membuf *b, const char *p, size_t n)
{
	if ((curl_off_t)(b->len + n) > c->max_body) {
		c->too_large = 1;
		return 0;
	}
	return membuf_add(b, p, n) ? n : 0;
}

/* libcurl write callback: collects the response body. */
static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
	http_conn *c = ud;
	return capped_add(c, &c->body, p, size * n);
}

/* Keeps only the last response's headers (a 100 Continue or a redirect
 * starts a new status line). */
static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
	http_conn *c = ud;
	if (size * n > 5 && memcmp(p, "HTTP/", 5) == 0)
		c->head.len = 0;
	return capped_add(c, &c->head, p, size * n);
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
	if (!c->curl)
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
	c->curl = curl_easy_init();
	if (!c->curl)
		return luaL_error(L, "isc.http: cannot create a libcurl handle");
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

/* Appends one "Name: value" line to c->headers; raises when out of memory
 * rather than send the request without it. */
static void add_header(lua_State *L, http_conn *c, const char *line)
{
	struct curl_slist *l = curl_slist_append(c->headers, line);
	if (!l)
		luaL_error(L, "isc.http: out of memory");
	c->headers = l;
}

/* Builds c->headers from req.headers ({name=value}) of argument req. A line
 * break in a name or value would start a header of its own, so it is refused. */
static void request_headers(lua_State *L, http_conn *c, int req)
{
	curl_slist_free_all(c->headers);
	c->headers = NULL;
	add_header(L, c, "Expect:");
	lua_getfield(L, req, "headers");
	if (lua_istable(L, -1)) {
		lua_pushnil(L);
		while (lua_next(L, -2)) {
			if (lua_type(L, -2) == LUA_TSTRING && lua_isstring(L, -1)) {
				const char *line = lua_pushfstring(L, "%s: %s", lua_tostring(L, -2), lua_tostring(L, -1));
				if (strpbrk(line, "\r\n"))
					luaL_argerror(L, req, lua_pushfstring(L, "header '%s' holds a line break",
					                                      lua_tostring(L, -3)));
				add_header(L, c, line);
				lua_pop(L, 1);
			}
			lua_pop(L, 1);
		}
	}
	lua_pop(L, 1);
}

/* conn:perform{method=, url=, headers=, body=, timeout=, fresh=}
 *   -> status, headers, body, info | nil, network error
 * fresh = true sends the request on a new connection. libcurl resends a
 * request, silently, when a reused connection dies before any answer; the
 * server may have read and applied it, so a request that must not be sent
 * twice asks for a connection that has never carried one. A network error
 * says whether any of the request went out (sent), so a caller can tell
 * "not sent" from "outcome unknown". */
static int http_perform(lua_State *L)
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

	CURL *h = c->curl;
	curl_easy_reset(h); /* keeps the live connection */
	membuf_reset(&c->body);
	membuf_reset(&c->head);
	request_headers(L, c, 2);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, c->headers);
	curl_easy_setopt(h, CURLOPT_USERAGENT, c->user_agent);
	curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, "");
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, c->connect_timeout_ms);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, (long)c->verify);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, c->verify ? 2L : 0L);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_FRESH_CONNECT, fresh);
	curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, c->max_body);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, c->errbuf);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, c);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, c);
	curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
	if (strcmp(method, "HEAD") == 0)
		curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
	else if (strcmp(method, "GET") != 0 || body) /* a body alone would make it a POST */
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
	if (body || strcmp(method, "POST") == 0) {
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, body ? body : "");
	}
	c->errbuf[0] = '\0';
	c->too_large = 0;

	isc_sigsave save;
	isc_signals_enter(&save);
	CURLcode rc = curl_easy_perform(h);
	isc_signals_leave(&save);
	curl_slist_free_all(c->headers);
	c->headers = NULL;

	if (rc == CURLE_ABORTED_BY_CALLBACK && isc_pending_signal)
		return isc_raise_interrupted(L);
	if (rc != CURLE_OK) {
		long request_size = 0;
		curl_easy_getinfo(h, CURLINFO_REQUEST_SIZE, &request_size);
		lua_pushnil(L);
		if (c->too_large || rc == CURLE_FILESIZE_EXCEEDED)
			isc_push_error(L, "network", "the response is larger than the %I bytes allowed "
			               "(the client's max_response_bytes)", (lua_Integer)c->max_body);
		else
			isc_push_error(L, "network", "%s: %s", curl_easy_strerror(rc),
			               c->errbuf[0] ? c->errbuf : curl_easy_strerror(rc));
		lua_pushstring(L, c->too_large ? "too_large" : failure_cause(rc));
		lua_setfield(L, -2, "cause");
		lua_pushinteger(L, rc);
		lua_setfield(L, -2, "curl_code");
		lua_pushboolean(L, request_size > 0);
		lua_setfield(L, -2, "sent");
		return 2;
	}

	long status = 0;
	double total = 0;
	curl_off_t up = 0, down = 0;
	long connects = 0;
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_getinfo(h, CURLINFO_TOTAL_TIME, &total);
	curl_easy_getinfo(h, CURLINFO_SIZE_UPLOAD_T, &up);
	curl_easy_getinfo(h, CURLINFO_SIZE_DOWNLOAD_T, &down);
	curl_easy_getinfo(h, CURLINFO_NUM_CONNECTS, &connects);

	lua_pushinteger(L, status);
	isc_push_headers(L, c->head.data, c->head.len);
	lua_pushlstring(L, c->body.data ? c->body.data : "", c->body.len);
	lua_createtable(L, 0, 4);
	lua_pushnumber(L, total);
	lua_setfield(L, -2, "time");
	lua_pushinteger(L, (lua_Integer)up);
	lua_setfield(L, -2, "bytes_out");
	lua_pushinteger(L, (lua_Integer)down);
	lua_setfield(L, -2, "bytes_in");
	lua_pushinteger(L, connects);
	lua_setfield(L, -2, "new_connections");
	return 4;
}

/* conn:close(): frees the handle; later calls on conn raise. Idempotent. */
static int http_close(lua_State *L)
{
	http_conn *c = luaL_checkudata(L, 1, HTTP_MT);
	if (c->curl) {
		curl_easy_cleanup(c->curl);
		c->curl = NULL;
	}
	curl_slist_free_all(c->headers);
	c->headers = NULL;
	free(c->body.data);
	free(c->head.data);
	memset(&c->body, 0, sizeof c->body);
	memset(&c->head, 0, sizeof c->head);
	return 0;
}

/* __tostring: isc.http (open | closed) */
static int http_tostring(lua_State *L)
{
	http_conn *c = luaL_checkudata(L, 1, HTTP_MT);
	lua_pushfstring(L, "isc.http (%s)", c->curl ? "open" : "closed");
	return 1;
}

/* core.curl_version() -> "8.1.2": the libcurl isclua runs with (for --version). */
static int http_curl_version(lua_State *L)
{
	const curl_version_info_data *info = curl_version_info(CURLVERSION_NOW);
	lua_pushstring(L, info && info->version ? info->version : "unknown");
	return 1;
}

/* libcurl's process-wide set-up; a failure shows when a handle is made. */
static void init_curl(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

void isc_open_http(lua_State *L)
{
	static const luaL_Reg methods[] = {
		{"perform", http_perform},
		{"close", http_close},
		{NULL, NULL},
	};
	static const luaL_Reg meta[] = {
		{"__gc", http_close},
		{"__close", http_close},
		{"__tostring", http_tostring},
		{NULL, NULL},
	};
	/* once per process, whichever state opens the module first */
	static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
	pthread_once(&curl_once, init_curl);
	if (luaL_newmetatable(L, HTTP_MT)) {
		luaL_setfuncs(L, meta, 0);
		luaL_newlib(L, methods);
		lua_setfield(L, -2, "__index");
	}
	lua_pop(L, 1);
	lua_pushcfunction(L, http_new);
	lua_setfield(L, -2, "http_new");
	lua_pushcfunction(L, http_curl_version);
	lua_setfield(L, -2, "curl_version");
}
