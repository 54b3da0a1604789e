/* The simulator's HTTP/1.1 server: one poll() loop per server, non-blocking
 * sockets, every request handed to a Lua handler function. core.serve runs
 * the loop in the calling state; core.serve_thread runs it on a pthread with
 * a fresh lua_State of its own. */
#include <errno.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <lualib.h>

#include "core.h"

#define SERVER_MT "isc.sim_server"
#define LOOP_MT "isc.sim_loop"

#define HEAD_MAX (64 * 1024)            /* request line + headers: 431 above */
#define HEADERS_MAX 100                 /* header fields per request: 431 above */
#define CHUNK_LINE_MAX 1024             /* a chunk-size line or trailer line */
#define DEFAULT_MAX_BODY (64 * 1024 * 1024)
#define DEFAULT_IDLE 60.0               /* seconds a quiet connection stays open */
#define DRAIN_SECONDS 2.0               /* lingering close before the last close() */
#define READ_MIN 16384                  /* free space wanted before each recv */
#define KEEP_BUFFER (1024 * 1024)       /* larger idle buffers are given back */
#define ACCEPT_BATCH 64

enum { ST_READ, ST_DELAY, ST_WRITE, ST_DRAIN, ST_CLOSED };
enum { BODY_NONE, BODY_LENGTH, BODY_CHUNKED };
enum { CH_SIZE, CH_DATA, CH_DATA_END, CH_TRAILER };
enum { FAULT_NONE, FAULT_RESET, FAULT_TRUNCATE };

struct field {
	const char *name, *value;
	size_t name_len, value_len;
};

/* The parsed head of the request being dispatched; pointers into conn.in. */
struct head {
	const char *method, *target;
	size_t method_len, target_len, path_len;
	int minor, body_mode, keep_alive, expect_continue;
	size_t content_length;
	size_t nfields;
	struct field fields[HEADERS_MAX];
};

/* One client connection: its buffers and where its request and response are. */
struct conn {
	int fd, state;
	double deadline;        /* idle limit, delay end or drain end, per state */
	char *in;               /* received bytes; the current request starts at 0 */
	size_t in_len, in_cap;
	char *out;              /* the unsent rest of a response */
	size_t out_len, out_off, out_cap;
	/* the request being read */
	size_t scan;            /* where the search for the end of the head resumes */
	size_t head_end;        /* 0 until the head is complete */
	int body_mode, minor, keep_alive, head_only;
	size_t body_len;        /* Content-Length, or bytes de-chunked so far */
	size_t chunk_pos, chunk_left;
	int chunk_phase;
	size_t req_end;         /* bytes the complete request occupies */
	/* the response in flight */
	int close_after, fault, status;
	size_t resp_bytes;
	double started;
	size_t target_len;      /* for the log line: the target sits in `in` */
	size_t method_len;
};

/* A response as the handler described it; the header section is in loop.hdr. */
struct resp {
	int status, fault;
	int close;              /* end the connection after it, whatever the client asked */
	const char *body;
	size_t body_len;
	double delay;
};

/* One server: the listening socket, its connections, the handler. */
struct loop {
	lua_State *L;           /* the state the handler runs in */
	int handler;            /* its stack index there */
	int listen_fd, wake_fd;
	int port, log, backlog;
	double idle;
	size_t max_body;
	const sigset_t *waitmask; /* signal mask while polling; NULL: ignore signals */
	int stopping;
	double now, accept_resume;
	struct conn **conns;
	size_t nconns, cap;
	struct pollfd *pfd;
	char *hdr;              /* the response head being built */
	size_t hdr_len, hdr_cap;
	struct head head;
	time_t date_time;
	char date[64];
	size_t date_len;
	uint64_t rng;
	char err[256];
};

/* The options core.serve and core.serve_thread share. */
struct opts {
	const char *host;
	int port, log, backlog;
	double idle;
	size_t max_body;
};

/* ---- small helpers ---- */

/* Grows *buf to hold at least need bytes; 0 on success. */
static int reserve(char **buf, size_t *cap, size_t need)
{
	if (need <= *cap)
		return 0;
	size_t n = *cap ? *cap * 2 : 4096;
	if (n < need) /* a known large size (a body's Content-Length): exactly that */
		n = need;
	char *p = realloc(*buf, n);
	if (!p)
		return -1;
	*buf = p;
	*cap = n;
	return 0;
}

/* Appends to the response head being built in lp->hdr. */
static int hdr_add(struct loop *lp, const char *s, size_t n)
{
	if (reserve(&lp->hdr, &lp->hdr_cap, lp->hdr_len + n))
		return -1;
	memcpy(lp->hdr + lp->hdr_len, s, n);
	lp->hdr_len += n;
	return 0;
}

/* Whether c may appear in an HTTP token (a method, a header name). */
static int is_tchar(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* Whether s[0, n) is a non-empty HTTP token. */
static int is_token(const char *s, size_t n)
{
	if (n == 0)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!is_tchar((unsigned char)s[i]))
			return 0;
	return 1;
}

/* Header values may hold anything visible, spaces and tabs, and obs-text. */
static int is_field_value(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return 0;
	}
	return 1;
}

/* Whether a[0, an) equals the string b, ignoring ASCII case. */
static int ieq(const char *a, size_t an, const char *b)
{
	size_t bn = strlen(b);
	return an == bn && strncasecmp(a, b, an) == 0;
}

/* Whether a comma-separated header value lists token (case-insensitively). */
static int has_token(const char *v, size_t n, const char *token)
{
	size_t i = 0;
	while (i < n) {
		while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
			i++;
		size_t start = i;
		while (i < n && v[i] != ',')
			i++;
		size_t end = i;
		while (end > start && (v[end - 1] == ' ' || v[end - 1] == '\t'))
			end--;
		if (end > start && ieq(v + start, end - start, token))
			return 1;
	}
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

/* ---- connections ---- */

/* Closes the socket; the loop frees the connection after the current pass. */
static void conn_close(struct conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	c->state = ST_CLOSED;
}

/* Closes the socket if still open and frees the connection. */
static void conn_free(struct conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	free(c->in);
	free(c->out);
	free(c);
}

/* Ends the connection with a TCP reset: the client sees no response at all. */
static void conn_reset(struct conn *c)
{
	struct linger lg = {1, 0};
	setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
	conn_close(c);
}

/* Forgets the request state, ready for the next request on the connection. */
static void request_reset(struct conn *c)
{
	c->scan = c->head_end = c->body_len = c->req_end = 0;
	c->chunk_pos = c->chunk_left = 0;
	c->body_mode = BODY_NONE;
	c->chunk_phase = CH_SIZE;
	c->head_only = 0;
}

/* Drops the answered request from c->in: the bytes after it, if any, move
 * to the front as the start of the next request. */
static void request_consume(struct conn *c)
{
	size_t rest = c->in_len - c->req_end;
	if (rest)
		memmove(c->in, c->in + c->req_end, rest);
	c->in_len = rest;
	request_reset(c);
}

/* The log line of a finished request: method target status bytes duration. */
static void log_request(const struct conn *c)
{
	const char *method = c->in, *target = c->in + c->method_len + 1;
	static const char *const fault_names[] = {"", " reset", " truncate"};
	fprintf(stderr, "%.*s %.*s %d %zu %.1fms%s\n", (int)c->method_len, method,
	        (int)c->target_len, target, c->status, c->resp_bytes,
	        (isc_monotonic() - c->started) * 1000.0, fault_names[c->fault]);
}

/* After the last byte of a response: a lingering close, or on to the next
 * request (whose bytes may already be buffered). */
static void response_done(struct loop *lp, struct conn *c)
{
	if (lp->log)
		log_request(c);
	if (c->close_after) {
		shutdown(c->fd, SHUT_WR);
		c->in_len = 0;
		c->state = ST_DRAIN;
		c->deadline = lp->now + DRAIN_SECONDS;
		return;
	}
	request_consume(c);
	if (!c->in_len && c->in_cap > KEEP_BUFFER) {
		free(c->in);
		c->in = NULL;
		c->in_cap = 0;
	}
	if (c->out_cap > KEEP_BUFFER) {
		free(c->out);
		c->out = NULL;
		c->out_cap = 0;
	}
	c->out_len = c->out_off = 0;
	c->state = ST_READ;
	c->deadline = lp->now + lp->idle;
}

/* Sends what is left in c->out; finishes the response when it is all out. */
static void conn_flush(struct loop *lp, struct conn *c)
{
	while (c->out_off < c->out_len) {
		ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				conn_close(c);
			return;
		}
		c->out_off += (size_t)n;
		c->deadline = lp->now + lp->idle;
	}
	response_done(lp, c);
}

/* Whether the connection ends after this response. */
static int closes_after(const struct conn *c, const struct resp *r)
{
	return r->close || r->fault != FAULT_NONE || !c->keep_alive;
}

/* Sends the head in lp->hdr and body bytes, directly when the socket takes
 * them, otherwise keeping the rest in c->out; or holds it all for a delay. */
static void send_response(struct loop *lp, struct conn *c, const struct resp *r)
{
	size_t body = c->head_only ? 0 : r->body_len;
	if (r->fault == FAULT_TRUNCATE)
		body /= 2;
	c->status = r->status;
	c->fault = r->fault;
	c->resp_bytes = r->body_len;
	c->close_after = closes_after(c, r);
	if (r->fault == FAULT_RESET && r->delay <= 0) {
		if (lp->log)
			log_request(c);
		conn_reset(c);
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
			conn_close(c);
			return;
		}
		sent = n > 0 ? (size_t)n : 0;
	}
	size_t total = lp->hdr_len + body;
	c->out_off = c->out_len = 0;
	if (sent < total) {
		if (reserve(&c->out, &c->out_cap, total - sent)) {
			conn_close(c);
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
		c->deadline = lp->now + r->delay;
	} else if (c->out_len) {
		c->state = ST_WRITE;
		c->deadline = lp->now + lp->idle;
	} else {
		response_done(lp, c);
	}
}

/* Starts the response head with the status line. */
static int head_begin(struct loop *lp, int status)
{
	char line[64];
	int n = snprintf(line, sizeof line, "HTTP/1.1 %d %s\r\n", status, reason_phrase(status));
	update_date(lp);
	lp->hdr_len = 0;
	return hdr_add(lp, line, (size_t)n);
}

/* Ends the response head with the framing headers the server owns. */
static int head_end(struct loop *lp, struct conn *c, const struct resp *r, int with_date)
{
	char line[128];
	int n = 0;
	if (with_date && hdr_add(lp, lp->date, lp->date_len))
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
	return hdr_add(lp, line, (size_t)n);
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
static void send_error(struct loop *lp, struct conn *c, int status, const char *detail,
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
		if (head_begin(lp, status) || hdr_add(lp, type, sizeof type - 1) || head_end(lp, c, &r, 1))
			rc = -1;
	}
	if (rc == LUA_OK)
		send_response(lp, c, &r);
	else
		conn_close(c);
	lua_settop(L, base);
}

/* Answers a request the server itself refuses, and closes. */
static void refuse(struct loop *lp, struct conn *c, int status, const char *text)
{
	char detail[64];
	snprintf(detail, sizeof detail, "%d %s", status, reason_phrase(status));
	if (!c->head_end) /* no usable request line: the log shows an empty one */
		c->method_len = c->target_len = 0;
	c->started = isc_monotonic();
	send_error(lp, c, status, detail, 0, text);
}

/* ---- request parsing ---- */

/* Parses the head in c->in[0, end) into lp->head. Header names are
 * lowercased in place, so parsing the same head again gives the same result.
 * Returns 0, or the status to refuse the request with (*why says why). */
static int parse_head(struct loop *lp, struct conn *c, size_t end, const char **why)
{
	struct head *h = &lp->head;
	char *p = c->in, *lim = c->in + end;
	memset(h, 0, offsetof(struct head, fields));
	*why = "malformed request line";
	char *nl = memchr(p, '\n', (size_t)(lim - p));
	char *eol = nl > p && nl[-1] == '\r' ? nl - 1 : nl;
	char *sp1 = memchr(p, ' ', (size_t)(eol - p));
	if (!sp1)
		return 400;
	char *sp2 = memchr(sp1 + 1, ' ', (size_t)(eol - sp1 - 1));
	if (!sp2 || eol - sp2 != 9 || memcmp(sp2 + 1, "HTTP/1.", 7) != 0 ||
	    (sp2[8] != '0' && sp2[8] != '1'))
		return 400;
	h->method = p;
	h->method_len = (size_t)(sp1 - p);
	h->target = sp1 + 1;
	h->target_len = (size_t)(sp2 - sp1 - 1);
	if (!is_token(h->method, h->method_len) || h->target_len == 0)
		return 400;
	for (size_t i = 0; i < h->target_len; i++)
		if ((unsigned char)h->target[i] <= ' ' || h->target[i] == 0x7f)
			return 400;
	const char *q = memchr(h->target, '?', h->target_len);
	h->path_len = q ? (size_t)(q - h->target) : h->target_len;
	h->minor = sp2[8] - '0';
	h->keep_alive = h->minor == 1;
	int has_length = 0, has_te = 0;
	for (p = nl + 1; p < lim; p = nl + 1) {
		nl = memchr(p, '\n', (size_t)(lim - p));
		eol = nl > p && nl[-1] == '\r' ? nl - 1 : nl;
		if (eol == p)
			break;
		*why = "malformed header field";
		char *colon = memchr(p, ':', (size_t)(eol - p));
		if (!colon || !is_token(p, (size_t)(colon - p)))
			return 400;
		if (h->nfields == HEADERS_MAX) {
			*why = "too many header fields";
			return 431;
		}
		for (char *s = p; s < colon; s++)
			if (*s >= 'A' && *s <= 'Z')
				*s = (char)(*s + 32);
		char *v = colon + 1, *ve = eol;
		while (v < ve && (*v == ' ' || *v == '\t'))
			v++;
		while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
			ve--;
		if (!is_field_value(v, (size_t)(ve - v)))
			return 400;
		struct field *f = &h->fields[h->nfields++];
		f->name = p;
		f->name_len = (size_t)(colon - p);
		f->value = v;
		f->value_len = (size_t)(ve - v);
		if (ieq(f->name, f->name_len, "content-length")) {
			size_t n = 0;
			*why = "invalid Content-Length";
			if (f->value_len == 0)
				return 400;
			for (size_t i = 0; i < f->value_len; i++) {
				if (v[i] < '0' || v[i] > '9')
					return 400;
				n = n > SIZE_MAX / 10 - 1 ? SIZE_MAX : n * 10 + (size_t)(v[i] - '0');
			}
			if (has_length && n != h->content_length)
				return 400;
			has_length = 1;
			h->content_length = n;
		} else if (ieq(f->name, f->name_len, "transfer-encoding")) {
			*why = "unsupported Transfer-Encoding";
			if (has_te || !ieq(v, f->value_len, "chunked"))
				return 501;
			has_te = 1;
		} else if (ieq(f->name, f->name_len, "connection")) {
			if (has_token(v, f->value_len, "close"))
				h->keep_alive = 0;
			else if (has_token(v, f->value_len, "keep-alive"))
				h->keep_alive = 1;
		} else if (ieq(f->name, f->name_len, "expect")) {
			h->expect_continue = h->minor == 1 && ieq(v, f->value_len, "100-continue");
		}
	}
	if (has_te) {
		h->body_mode = BODY_CHUNKED;
		/* both framings at once is a smuggling pattern: answer, then close */
		if (has_length)
			h->keep_alive = 0;
	} else if (has_length && h->content_length > 0) {
		h->body_mode = BODY_LENGTH;
	}
	return 0;
}

/* Finds the blank line ending the head; returns the offset after it or 0. */
static size_t find_head_end(struct conn *c)
{
	size_t i = c->scan;
	while (i < c->in_len) {
		char *nl = memchr(c->in + i, '\n', c->in_len - i);
		if (!nl)
			break;
		size_t at = (size_t)(nl - c->in);
		if ((at >= 1 && c->in[at - 1] == '\n') ||
		    (at >= 2 && c->in[at - 1] == '\r' && c->in[at - 2] == '\n'))
			return at + 1;
		i = at + 1;
	}
	c->scan = c->in_len;
	return 0;
}

/* Finds the end of a chunk-size or trailer line starting at pos; returns the
 * offset after its '\n', 0 if it has not all arrived, or -1 if too long. */
static long chunk_line(struct conn *c, size_t pos)
{
	size_t avail = c->in_len - pos;
	char *nl = memchr(c->in + pos, '\n', avail < CHUNK_LINE_MAX ? avail : CHUNK_LINE_MAX);
	if (nl)
		return (long)(nl - c->in) + 1;
	return avail >= CHUNK_LINE_MAX ? -1 : 0;
}

/* Decodes a chunked body in place: data moves down to c->in[head_end...],
 * over the chunk framing it replaces. Returns 1 when the body is complete,
 * 0 when more input is needed, or the status to refuse it with. */
static int dechunk(struct loop *lp, struct conn *c, const char **why)
{
	size_t pos = c->chunk_pos ? c->chunk_pos : c->head_end;
	*why = "malformed chunked body";
	for (;;) {
		if (c->chunk_phase == CH_DATA) {
			size_t n = c->in_len - pos < c->chunk_left ? c->in_len - pos : c->chunk_left;
			memmove(c->in + c->head_end + c->body_len, c->in + pos, n);
			c->body_len += n;
			pos += n;
			c->chunk_left -= n;
			if (c->chunk_left)
				break;
			c->chunk_phase = CH_DATA_END;
			continue;
		}
		long next = chunk_line(c, pos);
		if (next < 0)
			return 400;
		if (next == 0)
			break;
		const char *line = c->in + pos, *eol = c->in + next - 1;
		if (eol > line && eol[-1] == '\r')
			eol--;
		if (c->chunk_phase == CH_DATA_END) {
			if (eol != line)
				return 400;
			c->chunk_phase = CH_SIZE;
		} else if (c->chunk_phase == CH_SIZE) {
			size_t size = 0, digits = 0;
			for (; line + digits < eol; digits++) {
				char ch = line[digits];
				int d = ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
				      : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10 : -1;
				if (d < 0)
					break;
				if (size > lp->max_body) {
					*why = "request body too large";
					return 413;
				}
				size = size * 16 + (size_t)d;
			}
			char after = line + digits < eol ? line[digits] : ';';
			if (digits == 0 || (after != ';' && after != ' ' && after != '\t'))
				return 400;
			if (c->body_len + size > lp->max_body) {
				*why = "request body too large";
				return 413;
			}
			c->chunk_left = size;
			c->chunk_phase = size ? CH_DATA : CH_TRAILER;
		} else if (eol == line) { /* the blank line after the trailers */
			c->req_end = (size_t)next;
			return 1;
		}
		pos = (size_t)next;
	}
	/* keep only the unparsed tail after the decoded data, so a body sent in
	 * tiny chunks needs no more buffer than the body itself */
	size_t keep = c->head_end + c->body_len;
	if (pos > keep) {
		memmove(c->in + keep, c->in + pos, c->in_len - pos);
		c->in_len -= pos - keep;
		pos = keep;
	}
	c->chunk_pos = pos;
	return 0;
}

/* Advances the request being read, without touching the socket. Returns 1
 * when a complete request is in lp->head, 0 when more input is needed, or
 * the status to refuse it with (*why says why). */
static int parse_request(struct loop *lp, struct conn *c, const char **why)
{
	int status, fresh = 0;
	if (!c->head_end) {
		size_t skip = 0; /* blank lines before a request line are allowed */
		while (skip < c->in_len && (c->in[skip] == '\r' || c->in[skip] == '\n'))
			skip++;
		if (skip) {
			memmove(c->in, c->in + skip, c->in_len - skip);
			c->in_len -= skip;
		}
		size_t end = find_head_end(c);
		*why = "request head too large";
		if (!end)
			return c->in_len <= HEAD_MAX ? 0 : 431;
		if (end > HEAD_MAX)
			return 431;
		if ((status = parse_head(lp, c, end, why)) != 0)
			return status;
		struct head *h = &lp->head;
		c->head_end = end;
		c->method_len = h->method_len;
		c->target_len = h->target_len;
		c->minor = h->minor;
		c->keep_alive = h->keep_alive;
		c->head_only = ieq(h->method, h->method_len, "HEAD");
		c->body_mode = h->body_mode;
		c->body_len = h->body_mode == BODY_LENGTH ? h->content_length : 0;
		if (c->body_len > lp->max_body) {
			*why = "request body too large";
			return 413;
		}
		/* from here on: whether the client waits for 100 Continue to send the body */
		h->expect_continue = h->expect_continue && c->body_mode != BODY_NONE && c->in_len == end;
		fresh = 1;
	}
	if (c->body_mode == BODY_LENGTH) {
		if (c->in_len - c->head_end < c->body_len)
			return 0;
		c->req_end = c->head_end + c->body_len;
	} else if (c->body_mode == BODY_CHUNKED) {
		status = dechunk(lp, c, why);
		if (status != 1)
			return status;
	} else {
		c->req_end = c->head_end;
	}
	/* the pointers of an earlier parse went stale when the buffer grew */
	if (!fresh)
		parse_head(lp, c, c->head_end, why);
	return 1;
}

/* Advances the request being read. Returns 1 when a complete request is in
 * lp->head, 0 when more input is needed, -1 when it was refused. */
static int read_request(struct loop *lp, struct conn *c)
{
	const char *why;
	int had_head = c->head_end != 0;
	int status = parse_request(lp, c, &why);
	if (status > 1) {
		refuse(lp, c, status, why);
		return -1;
	}
	if (!had_head && c->head_end && lp->head.expect_continue) {
		/* 25 bytes on a connection with nothing else unsent always fit */
		static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
		ssize_t n = send(c->fd, cont, sizeof cont - 1, MSG_NOSIGNAL);
		(void)n;
	}
	return status;
}

/* ---- the handler ---- */

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
static void push_request(lua_State *L, struct conn *c, const struct head *h)
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
	if (head_begin(lp, r->status))
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
			if (!is_token(name, nlen) || !is_field_value(value, vlen))
				luaL_error(L, "invalid response header %s", name);
			if (ieq(name, nlen, "date"))
				with_date = 0;
			/* the server owns the framing */
			if (!ieq(name, nlen, "content-length") && !ieq(name, nlen, "connection") &&
			    !ieq(name, nlen, "transfer-encoding") &&
			    (hdr_add(lp, name, nlen) || hdr_add(lp, ": ", 2) ||
			     hdr_add(lp, value, vlen) || hdr_add(lp, "\r\n", 2)))
				luaL_error(L, "out of memory");
			lua_pop(L, 1);
		}
	}
	if (head_end(lp, c, r, with_date))
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
	push_request(L, k->c, &k->lp->head);
	lua_call(L, 1, 1);
	if (lua_type(L, 1) == LUA_TSTRING && !strcmp(lua_tostring(L, 1), "stop")) {
		k->stop = 1;
		return 0;
	}
	read_response(L, k->lp, k->c, 1, &k->r);
	return 1;
}

/* Answers the complete request in lp->head through the Lua handler. */
static void dispatch(struct loop *lp, struct conn *c)
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
		fprintf(stderr, "isc sim: handler error in %.*s %.*s: %s\n", (int)lp->head.method_len,
		        lp->head.method, (int)lp->head.target_len, lp->head.target,
		        tb ? tb : lua_tostring(L, -1));
		send_error(lp, c, 500, "500.0 Internal Fault", lua_gettop(L), NULL);
	} else if (k.stop) {
		struct resp r = {.status = 204, .close = 1};
		lp->stopping = 1;
		if (head_begin(lp, 204) || head_end(lp, c, &r, 1))
			conn_close(c);
		else
			send_response(lp, c, &r);
	} else {
		send_response(lp, c, &k.r);
	}
	lua_settop(L, base);
}

/* Answers every complete request buffered on c, in order, while the
 * connection is free to answer. */
static void conn_advance(struct loop *lp, struct conn *c)
{
	while (c->state == ST_READ && !lp->stopping && read_request(lp, c) == 1)
		dispatch(lp, c);
}

/* Reads what the socket has, then answers what became complete. */
static void conn_read(struct loop *lp, struct conn *c)
{
	size_t want = c->in_len + READ_MIN;
	if (c->head_end && c->body_mode == BODY_LENGTH && want < c->head_end + c->body_len)
		want = c->head_end + c->body_len;
	if (c->in_cap - c->in_len < READ_MIN && reserve(&c->in, &c->in_cap, want)) {
		conn_close(c);
		return;
	}
	ssize_t n = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, 0);
	if (n < 0) {
		if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
			conn_close(c);
		return;
	}
	if (n == 0) { /* the client is done; a partial request dies with it */
		conn_close(c);
		return;
	}
	c->in_len += (size_t)n;
	c->deadline = lp->now + lp->idle;
	conn_advance(lp, c);
}

/* Reads and drops input until the client closes (or the drain time ends),
 * so that closing does not reset a response the client has not read. */
static void conn_drain(struct conn *c)
{
	char sink[4096];
	ssize_t n;
	int reads = 16; /* a client that keeps sending must not hold the loop */
	while ((n = recv(c->fd, sink, sizeof sink, 0)) > 0 && --reads)
		;
	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
		conn_close(c);
}

/* A connection's deadline passed: per state, release or close it. */
static void conn_timeout(struct loop *lp, struct conn *c)
{
	if (c->state != ST_DELAY) {
		conn_close(c);
		return;
	}
	if (c->fault == FAULT_RESET) {
		if (lp->log)
			log_request(c);
		conn_reset(c);
		return;
	}
	c->state = ST_WRITE;
	c->deadline = lp->now + lp->idle;
	conn_flush(lp, c);
	if (c->state == ST_READ)
		conn_advance(lp, c);
}

/* Doubles the room for connections (and their poll entries); 0 on success. */
static int loop_grow(struct loop *lp)
{
	size_t cap = lp->cap ? lp->cap * 2 : 16;
	struct conn **cs = realloc(lp->conns, cap * sizeof *cs);
	if (!cs)
		return -1;
	lp->conns = cs;
	struct pollfd *pfd = realloc(lp->pfd, (cap + 2) * sizeof *pfd);
	if (!pfd)
		return -1;
	lp->pfd = pfd;
	lp->cap = cap;
	return 0;
}

/* Accepts the waiting connections. */
static void loop_accept(struct loop *lp)
{
	for (int i = 0; i < ACCEPT_BATCH; i++) {
		int fd = accept4(lp->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0 && (errno == EINTR || errno == ECONNABORTED))
			continue;
		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
				/* out of descriptors: let the open connections finish first */
				lp->accept_resume = lp->now + 0.1;
			}
			return;
		}
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		struct conn *c = calloc(1, sizeof *c);
		if (!c || (lp->nconns == lp->cap && loop_grow(lp))) {
			free(c);
			close(fd);
			return;
		}
		c->fd = fd;
		c->state = ST_READ;
		c->deadline = lp->now + lp->idle;
		lp->conns[lp->nconns++] = c;
	}
}

/* Runs the loop until the wake fd fires, the handler says "stop", or (when
 * lp->waitmask is set) SIGINT/SIGTERM arrives. Returns 0, the signal number,
 * or -1 with lp->err set. */
static int loop_run(struct loop *lp)
{
	int result = 0;
	for (;;) {
		if (lp->waitmask && isc_pending_signal) {
			result = isc_pending_signal;
			break;
		}
		if (lp->stopping)
			break;
		lp->now = isc_monotonic();
		double next = INFINITY;
		nfds_t n = 0;
		int accepting = lp->now >= lp->accept_resume;
		lp->pfd[n++] = (struct pollfd){.fd = accepting ? lp->listen_fd : -1, .events = POLLIN};
		lp->pfd[n++] = (struct pollfd){.fd = lp->wake_fd, .events = POLLIN};
		if (!accepting)
			next = lp->accept_resume;
		for (size_t i = 0; i < lp->nconns; i++) {
			struct conn *c = lp->conns[i];
			static const short events[] = {POLLIN, 0, POLLOUT, POLLIN};
			lp->pfd[n++] = (struct pollfd){.fd = c->fd, .events = events[c->state]};
			if (c->deadline < next)
				next = c->deadline;
		}
		struct timespec ts, *tsp = NULL;
		if (next < INFINITY) {
			double wait = next - lp->now;
			if (wait < 0)
				wait = 0;
			ts.tv_sec = (time_t)wait;
			ts.tv_nsec = (long)((wait - (double)ts.tv_sec) * 1e9) + 1000000; /* round up 1 ms */
			if (ts.tv_nsec >= 1000000000) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000;
			}
			tsp = &ts;
		}
		if (ppoll(lp->pfd, n, tsp, lp->waitmask) < 0) {
			if (errno == EINTR)
				continue;
			snprintf(lp->err, sizeof lp->err, "poll: %s", strerror(errno));
			result = -1;
			break;
		}
		if (lp->pfd[1].revents)
			break;
		lp->now = isc_monotonic();
		size_t polled = lp->nconns;
		for (size_t i = 0; i < polled && !lp->stopping; i++) {
			struct conn *c = lp->conns[i];
			short ev = lp->pfd[i + 2].revents;
			if (ev & (POLLERR | POLLNVAL))
				conn_close(c);
			else if (c->state == ST_READ && (ev & (POLLIN | POLLHUP)))
				conn_read(lp, c);
			else if (c->state == ST_WRITE && (ev & (POLLOUT | POLLHUP))) {
				conn_flush(lp, c);
				if (c->state == ST_READ)
					conn_advance(lp, c);
			} else if (c->state == ST_DRAIN && (ev & (POLLIN | POLLHUP)))
				conn_drain(c);
			else if (c->state == ST_DELAY && (ev & POLLHUP))
				conn_close(c);
			if (c->state != ST_CLOSED && lp->now >= c->deadline)
				conn_timeout(lp, c);
		}
		if (lp->pfd[0].revents & POLLIN)
			loop_accept(lp);
		size_t kept = 0;
		for (size_t i = 0; i < lp->nconns; i++) {
			if (lp->conns[i]->state == ST_CLOSED)
				conn_free(lp->conns[i]);
			else
				lp->conns[kept++] = lp->conns[i];
		}
		lp->nconns = kept;
	}
	return result;
}

/* ---- set-up and tear-down ---- */

/* Closes the listening socket and every connection. */
static void loop_shutdown(struct loop *lp)
{
	for (size_t i = 0; i < lp->nconns; i++)
		conn_free(lp->conns[i]);
	lp->nconns = 0;
	if (lp->listen_fd >= 0)
		close(lp->listen_fd);
	lp->listen_fd = -1;
}

/* Closes every descriptor of the loop and frees it; NULL is allowed. */
static void loop_free(struct loop *lp)
{
	if (!lp)
		return;
	loop_shutdown(lp);
	if (lp->wake_fd >= 0)
		close(lp->wake_fd);
	free(lp->conns);
	free(lp->pfd);
	free(lp->hdr);
	free(lp);
}

/* Allocates a loop that is not listening yet; NULL when out of memory or fds. */
static struct loop *loop_new(const struct opts *o)
{
	struct loop *lp = calloc(1, sizeof *lp);
	if (!lp)
		return NULL;
	lp->listen_fd = -1;
	lp->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	lp->pfd = malloc(2 * sizeof *lp->pfd);
	if (lp->wake_fd < 0 || !lp->pfd) {
		loop_free(lp);
		return NULL;
	}
	lp->log = o->log;
	lp->backlog = o->backlog;
	lp->idle = o->idle;
	lp->max_body = o->max_body;
	lp->rng = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)lp;
	lp->rng |= 1;
	return lp;
}

/* Binds and listens on host:port; 0, or -1 with lp->err set. */
static int loop_listen(struct loop *lp, const char *host, int port)
{
	char service[8];
	snprintf(service, sizeof service, "%d", port);
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
	                         .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
	struct addrinfo *ai, *a;
	int rc = getaddrinfo(host, service, &hints, &ai);
	if (rc != 0) {
		snprintf(lp->err, sizeof lp->err, "cannot listen on %s:%d: %s", host, port, gai_strerror(rc));
		return -1;
	}
	int err = 0;
	for (a = ai; a; a = a->ai_next) {
		int fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
		if (fd < 0) {
			err = errno;
			continue;
		}
		int one = 1;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
		if (bind(fd, a->ai_addr, a->ai_addrlen) == 0 && listen(fd, lp->backlog) == 0) {
			lp->listen_fd = fd;
			break;
		}
		err = errno;
		close(fd);
	}
	freeaddrinfo(ai);
	if (lp->listen_fd < 0) {
		snprintf(lp->err, sizeof lp->err, "cannot listen on %s:%d: %s", host, port, strerror(err));
		return -1;
	}
	struct sockaddr_storage ss;
	socklen_t len = sizeof ss;
	getsockname(lp->listen_fd, (struct sockaddr *)&ss, &len);
	lp->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
	                                          : ((struct sockaddr_in *)&ss)->sin_port);
	return 0;
}

/* Reads the options both entry points share from the table at idx. Leaves
 * the host string on the stack, so that o->host stays valid whatever the
 * table is made to hold meanwhile. */
static void read_opts(lua_State *L, int idx, struct opts *o)
{
	lua_getfield(L, idx, "host");
	o->host = lua_isnil(L, -1) ? "127.0.0.1" : lua_tostring(L, -1);
	luaL_argcheck(L, o->host && lua_type(L, -1) != LUA_TNUMBER, idx, "opts.host must be a string");
	lua_getfield(L, idx, "port");
	int isnum = 1;
	lua_Integer port = lua_isnil(L, -1) ? 0 : lua_tointegerx(L, -1, &isnum);
	luaL_argcheck(L, isnum && port >= 0 && port <= 65535, idx, "opts.port must be an integer in 0..65535");
	o->port = (int)port;
	lua_getfield(L, idx, "log");
	o->log = lua_toboolean(L, -1);
	lua_getfield(L, idx, "backlog");
	lua_Integer backlog = lua_isnil(L, -1) ? 511 : lua_tointegerx(L, -1, &isnum);
	luaL_argcheck(L, isnum && backlog > 0 && backlog <= 65535, idx, "opts.backlog must be a positive integer");
	o->backlog = (int)backlog;
	lua_getfield(L, idx, "idle_timeout");
	o->idle = lua_isnil(L, -1) ? DEFAULT_IDLE : lua_tonumberx(L, -1, &isnum);
	luaL_argcheck(L, isnum && o->idle > 0 && o->idle <= 86400, idx, "opts.idle_timeout must be seconds in (0, 86400]");
	lua_getfield(L, idx, "max_body");
	lua_Integer max_body = lua_isnil(L, -1) ? DEFAULT_MAX_BODY : lua_tointegerx(L, -1, &isnum);
	luaL_argcheck(L, isnum && max_body >= 0 && max_body <= (lua_Integer)1 << 32, idx,
	              "opts.max_body must be a byte count up to 4 GiB");
	o->max_body = (size_t)max_body;
	lua_pop(L, 5); /* all but the host */
}

/* ---- core.serve ---- */

/* What core.serve must undo however it ends: the loop, signal handlers and mask. */
struct serve_box {
	struct loop *lp;
	isc_sigsave save;
	sigset_t oldmask;
	int signals;
};

/* __close/__gc of the serve box. */
static int serve_box_close(lua_State *L)
{
	struct serve_box *box = luaL_checkudata(L, 1, LOOP_MT);
	if (box->signals) {
		pthread_sigmask(SIG_SETMASK, &box->oldmask, NULL);
		isc_signals_leave(&box->save);
		box->signals = 0;
	}
	loop_free(box->lp);
	box->lp = NULL;
	return 0;
}

/* core.serve(opts) -> signal | nil: serves in this state until SIGINT/SIGTERM
 * (returning its number, still pending) or until the handler returns "stop". */
static int server_serve(lua_State *L)
{
	luaL_checktype(L, 1, LUA_TTABLE);
	struct opts o;
	read_opts(L, 1, &o);
	lua_getfield(L, 1, "handler");
	luaL_argcheck(L, lua_isfunction(L, -1), 1, "opts.handler must be a function");
	int handler = lua_gettop(L);
	lua_getfield(L, 1, "on_listen");
	luaL_argcheck(L, lua_isnil(L, -1) || lua_isfunction(L, -1), 1, "opts.on_listen must be a function");
	int on_listen = lua_gettop(L);
	struct serve_box *box = lua_newuserdatauv(L, sizeof *box, 0);
	memset(box, 0, sizeof *box);
	if (luaL_newmetatable(L, LOOP_MT)) {
		lua_pushcfunction(L, serve_box_close);
		lua_setfield(L, -2, "__close");
		lua_pushcfunction(L, serve_box_close);
		lua_setfield(L, -2, "__gc");
	}
	lua_setmetatable(L, -2);
	lua_toclose(L, -1);
	if (!(box->lp = loop_new(&o)))
		return isc_raise(L, "sim", "cannot create a server: %s", strerror(errno));
	struct loop *lp = box->lp;
	if (loop_listen(lp, o.host, o.port))
		return isc_raise(L, "sim", "%s", lp->err);
	lp->L = L;
	lp->handler = handler;
	if (!lua_isnil(L, on_listen)) {
		lua_pushvalue(L, on_listen);
		lua_pushinteger(L, lp->port);
		lua_call(L, 1, 0);
	}
	/* SIGINT/SIGTERM are let in only while polling, so none slips in
	 * between the check of isc_pending_signal and the wait */
	sigset_t block;
	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	isc_signals_enter(&box->save);
	pthread_sigmask(SIG_BLOCK, &block, &box->oldmask);
	box->signals = 1;
	lp->waitmask = &box->oldmask;
	int sig = loop_run(lp);
	if (sig < 0)
		return isc_raise(L, "sim", "%s", lp->err);
	if (sig == 0)
		return 0;
	lua_pushinteger(L, sig);
	return 1;
}

/* ---- core.serve_thread ---- */

/* The userdata core.serve_thread returns. */
struct sim_server {
	struct loop *lp;
	lua_State *T;           /* the server thread's own state */
	pthread_t thread;
	int running;            /* thread started, not joined */
	int stopped;
	char url[300];
};

/* What the new state needs to load the handler (strings owned by the caller). */
struct setup_args {
	const char *module, *config, *path, *cpath;
	size_t config_len;
};

/* Message handler turning any error value into a string, in the state where
 * its __tostring lives. */
static int tostring_msgh(lua_State *L)
{
	luaL_tolstring(L, 1, NULL);
	return 1;
}

/* Runs in the new state, protected: libraries, paths, config, then
 * require(module).handler(config), leaving the handler function. */
static int thread_setup(lua_State *T)
{
	const struct setup_args *a = lua_touserdata(T, 1);
	luaL_openlibs(T);
	if (isc_state_init_hook)
		isc_state_init_hook(T);
	lua_getglobal(T, "package");
	if (a->path) {
		lua_pushstring(T, a->path);
		lua_setfield(T, -2, "path");
	}
	if (a->cpath) {
		lua_pushstring(T, a->cpath);
		lua_setfield(T, -2, "cpath");
	}
	lua_getglobal(T, "require");
	lua_pushstring(T, a->module);
	lua_call(T, 1, 1);
	lua_getfield(T, -1, "handler");
	if (!lua_isfunction(T, -1))
		return luaL_error(T, "module '%s' has no function 'handler'", a->module);
	if (a->config) {
		if (!isc_json_decode(T, a->config, a->config_len))
			return luaL_error(T, "config does not survive JSON: %s", lua_tostring(T, -1));
	} else {
		lua_newtable(T);
	}
	lua_call(T, 1, 1);
	if (!lua_isfunction(T, -1))
		return luaL_error(T, "%s.handler(config) returned %s, expected a function", a->module,
		                  luaL_typename(T, -1));
	return 1;
}

/* Runs in the server thread's state, protected: the loop itself. */
static int thread_main(lua_State *T)
{
	struct loop *lp = lua_touserdata(T, 2);
	lp->L = T;
	lp->handler = 1;
	if (loop_run(lp) < 0)
		return luaL_error(T, "%s", lp->err);
	return 0;
}

/* The server thread: runs thread_main(handler, loop) already on its state. */
static void *server_thread(void *arg)
{
	struct loop *lp = arg;
	lua_State *T = lp->L;
	if (lua_pcall(T, 2, 0, 0) != LUA_OK)
		fprintf(stderr, "isc sim: server on port %d failed: %s\n", lp->port, lua_tostring(T, -1));
	/* the loop may end before stop() (the handler said "stop", or an error):
	 * refuse new clients rather than leave them hanging */
	loop_shutdown(lp);
	return NULL;
}

/* Stops the thread if it runs and releases everything; idempotent. */
static void server_release(struct sim_server *s)
{
	if (s->running) {
		uint64_t one = 1;
		ssize_t n = write(s->lp->wake_fd, &one, sizeof one);
		(void)n;
		pthread_join(s->thread, NULL);
		s->running = 0;
	}
	loop_free(s->lp);
	s->lp = NULL;
	if (s->T)
		lua_close(s->T);
	s->T = NULL;
	s->stopped = 1;
}

/* Releases a server that failed to start, then raises the sim error whose
 * message is on top of the stack. */
static int start_failed(lua_State *L, struct sim_server *s)
{
	server_release(s);
	return isc_raise(L, "sim", "%s", lua_tostring(L, -1));
}

/* The server at argument 1, which must not be stopped. */
static struct sim_server *check_server(lua_State *L)
{
	struct sim_server *s = luaL_checkudata(L, 1, SERVER_MT);
	if (s->stopped)
		isc_raise(L, "sim", "the simulator server was stopped");
	return s;
}

/* core.serve_thread(opts) -> server: require(opts.module).handler(opts.config)
 * serving on a thread of its own; returns once it listens. The handler must
 * not block (core.sleep, HTTP, locks): those share the process's one pending
 * signal with the main thread, whose Ctrl-C they would swallow. */
static int server_serve_thread(lua_State *L)
{
	luaL_checktype(L, 1, LUA_TTABLE);
	struct opts o;
	read_opts(L, 1, &o);
	struct setup_args a = {0};
	lua_getfield(L, 1, "module");
	a.module = lua_tostring(L, -1);
	luaL_argcheck(L, lua_type(L, -1) == LUA_TSTRING, 1, "opts.module must be a module name");
	lua_getfield(L, 1, "config");
	if (!lua_isnil(L, -1)) {
		luaL_Buffer b;
		int cfg = lua_gettop(L);
		luaL_buffinit(L, &b);
		isc_json_encode(L, cfg, &b);
		luaL_pushresult(&b);
		a.config = lua_tolstring(L, -1, &a.config_len);
	}
	lua_getglobal(L, "package");
	if (lua_istable(L, -1)) {
		lua_getfield(L, -1, "path");
		a.path = lua_tostring(L, -1);
		lua_getfield(L, -2, "cpath");
		a.cpath = lua_tostring(L, -1);
	}

	struct sim_server *s = lua_newuserdatauv(L, sizeof *s, 0);
	memset(s, 0, sizeof *s);
	luaL_setmetatable(L, SERVER_MT);
	if (!(s->lp = loop_new(&o))) {
		lua_pushfstring(L, "cannot create a server: %s", strerror(errno));
		return start_failed(L, s);
	}
	if (loop_listen(s->lp, o.host, o.port)) {
		lua_pushstring(L, s->lp->err);
		return start_failed(L, s);
	}
	if (!(s->T = luaL_newstate())) {
		lua_pushliteral(L, "cannot create a Lua state for the server");
		return start_failed(L, s);
	}
	lua_State *T = s->T;
	lua_pushcfunction(T, tostring_msgh);
	lua_pushcfunction(T, thread_setup);
	lua_pushlightuserdata(T, &a);
	if (lua_pcall(T, 1, 1, 1) != LUA_OK) {
		lua_pushfstring(L, "simulator handler module '%s' failed: %s", a.module, lua_tostring(T, -1));
		return start_failed(L, s);
	}
	/* the thread calls thread_main(handler, loop) */
	lua_remove(T, 1);
	lua_pushcfunction(T, thread_main);
	lua_insert(T, -2);
	lua_pushlightuserdata(T, s->lp);
	s->lp->L = T;

	const char *host = o.host;
	if (!strcmp(host, "0.0.0.0"))
		host = "127.0.0.1";
	else if (!strcmp(host, "::"))
		host = "::1";
	snprintf(s->url, sizeof s->url, strchr(host, ':') ? "http://[%s]:%d" : "http://%s:%d", host, s->lp->port);

	/* signals belong to the caller's thread: the new one starts with them blocked */
	sigset_t block, old;
	sigemptyset(&block);
	int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGPIPE, SIGUSR1, SIGUSR2, SIGALRM, SIGCHLD, SIGWINCH};
	for (size_t i = 0; i < sizeof sigs / sizeof *sigs; i++)
		sigaddset(&block, sigs[i]);
	pthread_sigmask(SIG_BLOCK, &block, &old);
	int rc = pthread_create(&s->thread, NULL, server_thread, s->lp);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		lua_pushfstring(L, "cannot start the server thread: %s", strerror(rc));
		return start_failed(L, s);
	}
	s->running = 1;
	return 1;
}

/* server:port() -> the port it listens on */
static int server_port(lua_State *L)
{
	lua_pushinteger(L, check_server(L)->lp->port);
	return 1;
}

/* server:url() -> "http://127.0.0.1:PORT" */
static int server_url(lua_State *L)
{
	lua_pushstring(L, check_server(L)->url);
	return 1;
}

/* server:stop(): closes every connection, ends the thread; idempotent.
 * Also __gc and __close. */
static int server_stop(lua_State *L)
{
	server_release(luaL_checkudata(L, 1, SERVER_MT));
	return 0;
}

/* __tostring: isc.sim_server (url | stopped) */
static int server_tostring(lua_State *L)
{
	struct sim_server *s = luaL_checkudata(L, 1, SERVER_MT);
	if (s->stopped)
		lua_pushliteral(L, "isc.sim_server (stopped)");
	else
		lua_pushfstring(L, "isc.sim_server (%s)", s->url);
	return 1;
}

/* ---- the request reader alone, for the fuzz target ---- */

/* What isc_server_parse works on: a loop and a connection without sockets. */
struct parse_run {
	struct loop lp;
	struct conn c;
	const char *data;
	size_t len, step;
	int status;
};

/* Gives c->in room for exactly extra bytes more than it holds, so that a
 * read past the bytes held is caught by ASan; 0 on success. */
static int fit_input(struct conn *c, size_t extra)
{
	size_t n = c->in_len + extra;
	char *p = NULL;
	if (!n)
		free(c->in);
	else if (!(p = realloc(c->in, n)))
		return -1;
	c->in = p;
	c->in_cap = n;
	return 0;
}

/* Runs protected, as parse_requests(run): the loop of isc_server_parse. */
static int parse_requests(lua_State *L)
{
	struct parse_run *r = lua_touserdata(L, 1);
	struct conn *c = &r->c;
	size_t fed = 0;
	const char *why;
	lua_newtable(L);
	for (;;) {
		int status = parse_request(&r->lp, c, &why);
		if (status == 1) {
			push_request(L, c, &r->lp.head);
			lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
			if (!c->keep_alive)
				break;
			request_consume(c);
			if (fit_input(c, 0))
				return luaL_error(L, "out of memory");
		} else if (status > 1) {
			r->status = status;
			break;
		} else if (fed == r->len) {
			break;
		} else {
			size_t n = r->len - fed < r->step ? r->len - fed : r->step;
			if (fit_input(c, n))
				return luaL_error(L, "out of memory");
			memcpy(c->in + c->in_len, r->data + fed, n);
			c->in_len += n;
			fed += n;
		}
	}
	return 1;
}

int isc_server_parse(lua_State *L, const char *data, size_t len, size_t step, size_t max_body)
{
	struct parse_run r = {.data = data, .len = len, .step = step ? step : 1};
	r.lp.max_body = max_body;
	r.c.fd = -1;
	lua_pushcfunction(L, parse_requests);
	lua_pushlightuserdata(L, &r);
	int rc = lua_pcall(L, 1, 1, 0);
	free(r.c.in);
	if (rc != LUA_OK)
		lua_error(L);
	return r.status;
}

void isc_open_server(lua_State *L)
{
	static const luaL_Reg methods[] = {
		{"port", server_port},
		{"url", server_url},
		{"stop", server_stop},
		{NULL, NULL},
	};
	static const luaL_Reg metamethods[] = {
		{"__gc", server_stop},
		{"__close", server_stop},
		{"__tostring", server_tostring},
		{NULL, NULL},
	};
	static const luaL_Reg fns[] = {
		{"serve", server_serve},
		{"serve_thread", server_serve_thread},
		{NULL, NULL},
	};
	if (luaL_newmetatable(L, SERVER_MT)) {
		luaL_setfuncs(L, metamethods, 0);
		luaL_newlib(L, methods);
		lua_setfield(L, -2, "__index");
	}
	lua_pop(L, 1);
	luaL_setfuncs(L, fns, 0);
}
