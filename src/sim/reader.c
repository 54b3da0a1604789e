/* The simulator's request reader: from the bytes a connection received to a
 * parsed head and a complete body, without touching a socket, so that the
 * fuzz target (isc_server_parse) reads exactly as a connection does. */
#include <stdlib.h>
#include <string.h>

#include "sim.h"

#define HEAD_MAX (64 * 1024)            /* request line + headers: 431 above */
#define CHUNK_LINE_MAX 1024             /* a chunk-size line or trailer line */

/* Whether c may appear in an HTTP token (a method, a header name). */
static int is_tchar(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* Whether s[0, n) is a non-empty HTTP token. */
int sim_is_token(const char *s, size_t n)
{
	if (n == 0)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!is_tchar((unsigned char)s[i]))
			return 0;
	return 1;
}

/* Header values may hold anything visible, spaces and tabs, and obs-text. */
int sim_is_field_value(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return 0;
	}
	return 1;
}

int sim_ieq(const char *a, size_t an, const char *b)
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
		if (end > start && sim_ieq(v + start, end - start, token))
			return 1;
	}
	return 0;
}

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
	if (!sim_is_token(h->method, h->method_len) || h->target_len == 0)
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
		if (!colon || !sim_is_token(p, (size_t)(colon - p)))
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
		if (!sim_is_field_value(v, (size_t)(ve - v)))
			return 400;
		struct field *f = &h->fields[h->nfields++];
		f->name = p;
		f->name_len = (size_t)(colon - p);
		f->value = v;
		f->value_len = (size_t)(ve - v);
		if (sim_ieq(f->name, f->name_len, "content-length")) {
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
		} else if (sim_ieq(f->name, f->name_len, "transfer-encoding")) {
			*why = "unsupported Transfer-Encoding";
			if (has_te || !sim_ieq(v, f->value_len, "chunked"))
				return 501;
			has_te = 1;
		} else if (sim_ieq(f->name, f->name_len, "connection")) {
			if (has_token(v, f->value_len, "close"))
				h->keep_alive = 0;
			else if (has_token(v, f->value_len, "keep-alive"))
				h->keep_alive = 1;
		} else if (sim_ieq(f->name, f->name_len, "expect")) {
			h->expect_continue = h->minor == 1 && sim_ieq(v, f->value_len, "100-continue");
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
				if (size > lp->o.max_body) {
					*why = "request body too large";
					return 413;
				}
				size = size * 16 + (size_t)d;
			}
			char after = line + digits < eol ? line[digits] : ';';
			if (digits == 0 || (after != ';' && after != ' ' && after != '\t'))
				return 400;
			if (c->body_len + size > lp->o.max_body) {
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
int sim_parse_request(struct loop *lp, struct conn *c, const char **why)
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
		c->head_only = sim_ieq(h->method, h->method_len, "HEAD");
		c->body_mode = h->body_mode;
		c->body_len = h->body_mode == BODY_LENGTH ? h->content_length : 0;
		if (c->body_len > lp->o.max_body) {
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
void sim_request_consume(struct conn *c)
{
	size_t rest = c->in_len - c->req_end;
	if (rest)
		memmove(c->in, c->in + c->req_end, rest);
	c->in_len = rest;
	request_reset(c);
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
		int status = sim_parse_request(&r->lp, c, &why);
		if (status == 1) {
			sim_push_request(L, c, &r->lp.head);
			lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
			if (!c->keep_alive)
				break;
			sim_request_consume(c);
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
	r.lp.o.max_body = max_body;
	r.c.fd = -1;
	lua_pushcfunction(L, parse_requests);
	lua_pushlightuserdata(L, &r);
	int rc = lua_pcall(L, 1, 1, 0);
	free(r.c.in);
	if (rc != LUA_OK)
		lua_error(L);
	return r.status;
}

