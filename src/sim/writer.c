/* The simulator's response writer: status line and framing headers, the
 * ISC ErrorResponseDto bodies of the server's own refusals and of handler
 * errors, and sending (or holding, for a delay) each response. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "sim.h"

/* Grows *buf to hold at least need bytes; 0 on success. */
int sim_reserve(char **buf, size_t *cap, size_t need)
{
	if (need <= *cap)
		return 0;
	size_t n = *cap ? *cap * 2 : 4096;
	if (n < need) /* more than twice as much at once (a large response): exactly that */
		n = need;
	char *p = realloc(*buf, n);
	if (!p)
		return -1;
	*buf = p;
	*cap = n;
	return 0;
}

/* Appends to the response head being built in lp->hdr. */
int sim_hdr_add(struct loop *lp, const char *s, size_t n)
{
	if (sim_reserve(&lp->hdr, &lp->hdr_cap, lp->hdr_len + n))
		return -1;
	memcpy(lp->hdr + lp->hdr_len, s, n);
	lp->hdr_len += n;
	return 0;
}

/* The reason phrase of a status line (200..599). */
static const char *reason_phrase(int status)
{
	switch (status) {
	case 200: return "OK";
	case 201: return "Created";
	case 202: return "Accepted";
	case 204: return "No Content";
	case 206: return "Partial Content";
	case 301: return "Moved Permanently";
	case 302: return "Found";
	case 303: return "See Other";
	case 304: return "Not Modified";
	case 307: return "Temporary Redirect";
	case 308: return "Permanent Redirect";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 406: return "Not Acceptable";
	case 408: return "Request Timeout";
	case 409: return "Conflict";
	case 410: return "Gone";
	case 411: return "Length Required";
	case 412: return "Precondition Failed";
	case 413: return "Content Too Large";
	case 415: return "Unsupported Media Type";
	case 422: return "Unprocessable Content";
	case 429: return "Too Many Requests";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	}
	static const char *const by_class[] = {"Success", "Redirection", "Client Error", "Server Error"};
	return by_class[status / 100 - 2];
}

/* Keeps lp->date a ready "Date: ...\r\n" line for the current second; by
 * hand because strftime's names follow the locale. */
static void update_date(struct loop *lp)
{
	static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
	static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
	                                   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
	time_t t = time(NULL);
	if (t == lp->date_time)
		return;
	struct tm tm;
	gmtime_r(&t, &tm);
	int n = snprintf(lp->date, sizeof lp->date, "Date: %s, %02d %s %04d %02d:%02d:%02d GMT\r\n",
	                 days[tm.tm_wday], tm.tm_mday, months[tm.tm_mon], tm.tm_year + 1900,
	                 tm.tm_hour, tm.tm_min, tm.tm_sec);
	lp->date_len = (size_t)n;
	lp->date_time = t;
}

/* Writes a fresh 32-hex-digit id, like the trackingId of real ISC errors. */
static void tracking_id(struct loop *lp, char out[33])
{
	static const char hex[] = "0123456789abcdef";
	for (int half = 0; half < 2; half++) {
		lp->rng ^= lp->rng >> 12;
		lp->rng ^= lp->rng << 25;
		lp->rng ^= lp->rng >> 27;
		uint64_t v = lp->rng * 0x2545F4914F6CDD1DULL;
		for (int i = 0; i < 16; i++)
			out[half * 16 + i] = hex[(v >> (i * 4)) & 15];
	}
	out[32] = '\0';
}

/* The log line of a finished request: method target status bytes duration. */
void sim_log_request(const struct conn *c)
{
	const char *method = c->in, *target = c->in + c->method_len + 1;
	static const char *const fault_names[] = {"", " reset", " truncate"};
	fprintf(stderr, "%.*s %.*s %d %zu %.1fms%s\n", (int)c->method_len, method,
	        (int)c->target_len, target, c->status, c->resp_bytes,
	        (isc_monotonic() - c->started) * 1000.0, fault_names[c->fault]);
}

/* Whether the connection ends after this response. */
static int closes_after(const struct conn *c, const struct resp *r)
{
	return r->close || r->fault != FAULT_NONE || !c->keep_alive;
}

/* Sends the head in lp->hdr and body bytes, directly when the socket takes
 * them, otherwise keeping the rest in c->out; or holds it all for a delay. */
void sim_send_response(struct loop *lp, struct conn *c, const struct resp *r)
{
	size_t body = c->head_only ? 0 : r->body_len;
	if (r->fault == FAULT_TRUNCATE)
		body /= 2;
	c->status = r->status;
	c->fault = r->fault;
	c->resp_bytes = r->body_len;
	c->close_after = closes_after(c, r);
	if (r->fault == FAULT_RESET && r->delay <= 0) {
		if (lp->o.log)
			sim_log_request(c);
		sim_conn_reset(c);
		return;
	}
	size_t sent = 0;
	if (r->delay <= 0) {
		struct iovec iov[2] = {{lp->hdr, lp->hdr_len}, {(void *)r->body, body}};
		struct msghdr msg = {.msg_iov = iov, .msg_iovlen = body ? 2 : 1};
		ssize_t n;
		do
			n = sendmsg(c->fd, &msg, MSG_NOSIGNAL);
		while (n < 0 && errno == EINTR);
		if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
			sim_conn_close(c);
			return;
		}
		sent = n > 0 ? (size_t)n : 0;
	}
	size_t total = lp->hdr_len + body;
	c->out_off = c->out_len = 0;
	if (sent < total) {
		if (sim_reserve(&c->out, &c->out_cap, total - sent)) {
			sim_conn_close(c);
			return;
		}
		size_t from_hdr = sent < lp->hdr_len ? lp->hdr_len - sent : 0;
		memcpy(c->out, lp->hdr + (lp->hdr_len - from_hdr), from_hdr);
		size_t body_sent = sent > lp->hdr_len ? sent - lp->hdr_len : 0;
		if (body > body_sent)
			memcpy(c->out + from_hdr, r->body + body_sent, body - body_sent);
		c->out_len = total - sent;
	}
	if (r->delay > 0) {
		c->state = ST_DELAY;
		/* from now, not from the loop's earlier reading: the handler's own
		 * time must not eat into the latency */
		c->deadline = isc_monotonic() + r->delay;
	} else if (c->out_len) {
		c->state = ST_WRITE;
		c->deadline = lp->now + lp->o.idle;
	} else {
		sim_response_done(lp, c);
	}
}

/* Starts the response head with the status line. */
int sim_head_begin(struct loop *lp, int status)
{
	char line[64];
	int n = snprintf(line, sizeof line, "HTTP/1.1 %d %s\r\n", status, reason_phrase(status));
	update_date(lp);
	lp->hdr_len = 0;
	return sim_hdr_add(lp, line, (size_t)n);
}

/* Ends the response head with the framing headers the server owns. */
int sim_head_end(struct loop *lp, struct conn *c, const struct resp *r, int with_date)
{
	char line[128];
	int n = 0;
	if (with_date && sim_hdr_add(lp, lp->date, lp->date_len))
		return -1;
	if (r->status != 204 && r->status != 304) {
		/* an empty body announces one byte when truncated, to stay short */
		size_t announced = r->fault == FAULT_TRUNCATE && r->body_len == 0 ? 1 : r->body_len;
		n = snprintf(line, sizeof line, "Content-Length: %zu\r\n", announced);
	}
	if (closes_after(c, r))
		n += snprintf(line + n, sizeof line - (size_t)n, "Connection: close\r\n");
	else if (c->minor == 0)
		n += snprintf(line + n, sizeof line - (size_t)n, "Connection: keep-alive\r\n");
	n += snprintf(line + n, sizeof line - (size_t)n, "\r\n");
	return sim_hdr_add(lp, line, (size_t)n);
}

/* What an ErrorResponseDto body is made of. */
struct error_spec {
	const char *detail, *text;
	char id[33];
};

/* Runs protected: the ErrorResponseDto body, whose text is the value at 2 or,
 * when that is nil, spec->text. */
static int error_body(lua_State *L)
{
	const struct error_spec *e = lua_touserdata(L, 1);
	if (lua_isnil(L, 2)) {
		lua_pushstring(L, e->text);
		lua_replace(L, 2);
	}
	luaL_Buffer b;
	luaL_buffinit(L, &b);
	luaL_addstring(&b, "{\"detailCode\":\"");
	luaL_addstring(&b, e->detail);
	luaL_addstring(&b, "\",\"trackingId\":\"");
	luaL_addstring(&b, e->id);
	luaL_addstring(&b, "\",\"messages\":[{\"locale\":\"en-US\",\"localeOrigin\":\"DEFAULT\",\"text\":");
	isc_json_encode(L, 2, &b);
	luaL_addstring(&b, "}]}");
	luaL_pushresult(&b);
	return 1;
}

/* Answers with an ISC-style ErrorResponseDto whose text is the Lua value at
 * text_idx, or the C string text when text_idx is 0. */
void sim_send_error(struct loop *lp, struct conn *c, int status, const char *detail,
                       int text_idx, const char *text)
{
	lua_State *L = lp->L;
	int base = lua_gettop(L);
	struct error_spec e = {detail, text, {0}};
	tracking_id(lp, e.id);
	int rc;
	for (;;) {
		lua_pushcfunction(L, error_body);
		lua_pushlightuserdata(L, &e);
		if (text_idx)
			lua_pushvalue(L, text_idx);
		else
			lua_pushnil(L);
		rc = lua_pcall(L, 2, 1, 0);
		if (rc == LUA_OK || !text_idx)
			break;
		/* JSON cannot hold that text (invalid UTF-8): say so instead */
		lua_settop(L, base);
		text_idx = 0;
		e.text = "(the error message is not valid UTF-8)";
	}
	/* the server's own refusals end the connection; a handler's 500 does not */
	struct resp r = {.status = status, .close = status != 500};
	static const char type[] = "Content-Type: application/json;charset=UTF-8\r\n";
	if (rc == LUA_OK) {
		r.body = lua_tolstring(L, -1, &r.body_len);
		if (sim_head_begin(lp, status) || sim_hdr_add(lp, type, sizeof type - 1) || sim_head_end(lp, c, &r, 1))
			rc = -1;
	}
	if (rc == LUA_OK)
		sim_send_response(lp, c, &r);
	else
		sim_conn_close(c);
	lua_settop(L, base);
}

/* Answers a request the server itself refuses, and closes. */
void sim_refuse(struct loop *lp, struct conn *c, int status, const char *text)
{
	char detail[64];
	snprintf(detail, sizeof detail, "%d %s", status, reason_phrase(status));
	if (!c->head_end) /* no usable request line: the log shows an empty one */
		c->method_len = c->target_len = 0;
	c->started = isc_monotonic();
	sim_send_error(lp, c, status, detail, 0, text);
}

