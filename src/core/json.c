/* JSON codec of isc.core: strict RFC 8259 decoding, and encoding that keeps
 * [] apart from {} (an array metatable marks arrays) and null as core.null. */
#include <locale.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"

/* Deeper input is refused rather than risking the C stack; also how cycles end. */
#define MAX_DEPTH 512
#define STRINGIFY(x) #x
#define DEPTH_TEXT(x) STRINGIFY(x)
/* A scratch buffer that grew past this is dropped after use, not kept. */
#define KEEP_SCRATCH (1u << 20)
#define SCRATCH_START 1024 /* bytes of a new scratch buffer */
#define MAX_INDENT 32
/* Stack slots of decoded elements waiting for their table to be made: at
 * most this many for all levels together, but at least MIN_FLUSH for each
 * (see add_element). */
#define MAX_PENDING 4096
#define MIN_FLUSH 64
#define ROOM_STEP 256 /* stack slots asked for at a time (see reserve) */

/* The per-state scratch buffer waits in the registry under this address
 * between calls, so encoding needs no allocation once it has grown, and an
 * error anywhere leaves nothing to free. */
static const char scratch_key = 0;

typedef struct {
	lua_State *L;
	char *p;
	size_t n, cap;
	int slot; /* stack index anchoring the buffer */
} jbuf;

/* Takes the scratch buffer out of the registry (or makes one: a buffer is
 * never NULL, which memcpy and pointer arithmetic do not allow even for 0
 * bytes) and anchors it on the stack for this call. A finalizer that runs
 * during a GC step of this call and encodes or decodes too then gets a
 * buffer of its own instead of writing over this one. */
static void jbuf_open(lua_State *L, jbuf *b)
{
	b->L = L;
	b->n = 0;
	if (lua_rawgetp(L, LUA_REGISTRYINDEX, &scratch_key) != LUA_TUSERDATA) {
		lua_pop(L, 1);
		lua_newuserdatauv(L, SCRATCH_START, 0);
	}
	b->p = lua_touserdata(L, -1);
	b->cap = lua_rawlen(L, -1);
	b->slot = lua_gettop(L);
	lua_pushnil(L);
	lua_rawsetp(L, LUA_REGISTRYINDEX, &scratch_key);
}

/* Replaces the scratch buffer by one with room for need more bytes. */
static void jbuf_grow(jbuf *b, size_t need)
{
	size_t cap = b->cap;
	char *p;
	if (need > ((size_t)-1 >> 2) - b->n)
		luaL_error(b->L, "json: text too large");
	while (cap - b->n < need)
		cap *= 2;
	p = lua_newuserdatauv(b->L, cap, 0);
	memcpy(p, b->p, b->n);
	/* The old buffer stays anchored until it is replaced here. */
	lua_replace(b->L, b->slot);
	b->p = p;
	b->cap = cap;
}

/* Returns where need more bytes can be written. */
static inline char *jbuf_reserve(jbuf *b, size_t need)
{
	if (b->cap - b->n < need)
		jbuf_grow(b, need);
	return b->p + b->n;
}

/* Appends len bytes. */
static inline void jbuf_add(jbuf *b, const void *s, size_t len)
{
	memcpy(jbuf_reserve(b, len), s, len);
	b->n += len;
}

/* Appends one byte. */
static inline void jbuf_addc(jbuf *b, char c)
{
	*jbuf_reserve(b, 1) = c;
	b->n++;
}

/* Puts the scratch buffer back in the registry for the next call, unless
 * it grew unusually large; its stack slot is the caller's to pop. */
static void jbuf_close(jbuf *b)
{
	if (b->cap <= KEEP_SCRATCH) {
		lua_pushvalue(b->L, b->slot);
		lua_rawsetp(b->L, LUA_REGISTRYINDEX, &scratch_key);
	}
}

/* True for a byte that stands for itself inside a JSON string. */
static inline int plain_byte(unsigned char c)
{
	return c >= 0x20 && c < 0x80 && c != '"' && c != '\\';
}

/* Length of the well-formed UTF-8 sequence at p (whose first byte is >= 0x80),
 * or 0: overlong forms, surrogates and code points past U+10FFFF are refused. */
static size_t utf8_len(const unsigned char *p, const unsigned char *end)
{
	unsigned long cp;
	size_t n, i;
	if (p[0] >= 0xC2 && p[0] <= 0xDF)
		n = 2, cp = p[0] & 0x1F;
	else if (p[0] >= 0xE0 && p[0] <= 0xEF)
		n = 3, cp = p[0] & 0x0F;
	else if (p[0] >= 0xF0 && p[0] <= 0xF4)
		n = 4, cp = p[0] & 0x07;
	else
		return 0;
	if ((size_t)(end - p) < n)
		return 0;
	for (i = 1; i < n; i++) {
		if ((p[i] & 0xC0) != 0x80)
			return 0;
		cp = cp << 6 | (p[i] & 0x3F);
	}
	if (n == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF)))
		return 0;
	if (n == 4 && (cp < 0x10000 || cp > 0x10FFFF))
		return 0;
	return n;
}

/* ---- decoding ---- */

typedef struct {
	lua_State *L;
	const char *p, *end;
	jbuf scratch;
	int array_mt; /* stack index */
	int depth;
	int drop_nulls; /* leave out object members whose value is null */
	int pending;    /* stack slots of all levels waiting to go into tables */
	int room;       /* the stack has room up to this index (see reserve) */
	const char *err_at, *err;
} decoder;

/* Records the first error; returns 0 so that callers can return it. */
static int fail(decoder *d, const char *at, const char *msg)
{
	d->err_at = at;
	d->err = msg;
	return 0;
}

/* Steps over the white space JSON allows between tokens. */
static void skip_space(decoder *d)
{
	while (d->p < d->end && (*d->p == ' ' || *d->p == '\n' || *d->p == '\r' || *d->p == '\t'))
		d->p++;
}

/* True when p is inside the input and at an ASCII digit. */
static int is_digit(decoder *d, const char *p)
{
	return p < d->end && *p >= '0' && *p <= '9';
}

/* Value of one hex digit, or -1. */
static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Reads the 4 hex digits after "\u" at p. */
static int read_hex4(decoder *d, const char *p, unsigned long *cp)
{
	int i, v;
	*cp = 0;
	for (i = 0; i < 4; i++) {
		if (p + i == d->end || (v = hex_value(p[i])) < 0)
			return fail(d, p + i, "expected 4 hex digits after \\u");
		*cp = *cp << 4 | (unsigned long)v;
	}
	return 1;
}

/* Appends the UTF-8 form of a code point. */
static void put_utf8(jbuf *b, unsigned long cp)
{
	char *o = jbuf_reserve(b, 4);
	if (cp < 0x80) {
		o[0] = (char)cp;
		b->n += 1;
	} else if (cp < 0x800) {
		o[0] = (char)(0xC0 | cp >> 6);
		o[1] = (char)(0x80 | (cp & 0x3F));
		b->n += 2;
	} else if (cp < 0x10000) {
		o[0] = (char)(0xE0 | cp >> 12);
		o[1] = (char)(0x80 | (cp >> 6 & 0x3F));
		o[2] = (char)(0x80 | (cp & 0x3F));
		b->n += 3;
	} else {
		o[0] = (char)(0xF0 | cp >> 18);
		o[1] = (char)(0x80 | (cp >> 12 & 0x3F));
		o[2] = (char)(0x80 | (cp >> 6 & 0x3F));
		o[3] = (char)(0x80 | (cp & 0x3F));
		b->n += 4;
	}
}

/* Decodes the escape whose backslash is at d->p into the scratch buffer. */
static int decode_escape(decoder *d)
{
	const char *bs = d->p, *p = bs + 1;
	static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
	const char *hit;
	unsigned long cp, low;
	if (p == d->end)
		return fail(d, p, "expected an escape character");
	if (*p != 'u') {
		if (*p == '\0' || !(hit = strchr(from, *p)))
			return fail(d, p, "invalid escape character");
		jbuf_addc(&d->scratch, to[hit - from]);
		d->p = p + 1;
		return 1;
	}
	if (!read_hex4(d, p + 1, &cp))
		return 0;
	p += 5;
	if (cp >= 0xDC00 && cp <= 0xDFFF)
		return fail(d, bs, "unpaired surrogate in \\u escape");
	if (cp >= 0xD800 && cp <= 0xDBFF) {
		/* A high surrogate counts only with a low one right after it. */
		if (d->end - p < 2 || p[0] != '\\' || p[1] != 'u')
			return fail(d, bs, "unpaired surrogate in \\u escape");
		if (!read_hex4(d, p + 2, &low))
			return 0;
		if (low < 0xDC00 || low > 0xDFFF)
			return fail(d, bs, "unpaired surrogate in \\u escape");
		cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
		p += 6;
	}
	put_utf8(&d->scratch, cp);
	d->p = p;
	return 1;
}

/* Pushes the string whose opening quote is at d->p. */
static int decode_string(decoder *d)
{
	const unsigned char *p = (const unsigned char *)d->p + 1, *run = p;
	const unsigned char *end = (const unsigned char *)d->end;
	int escaped = 0;
	size_t n;
	for (;;) {
		while (p < end && plain_byte(*p))
			p++;
		if (p == end)
			return fail(d, d->end, "expected '\"'");
		if (*p == '"')
			break;
		if (*p < 0x20)
			return fail(d, (const char *)p, "unescaped control character in a string");
		if (*p >= 0x80) {
			if (!(n = utf8_len(p, end)))
				return fail(d, (const char *)p, "invalid UTF-8 in a string");
			p += n;
			continue;
		}
		/* A backslash: from here on the string is built in the scratch buffer. */
		if (!escaped)
			d->scratch.n = 0;
		escaped = 1;
		jbuf_add(&d->scratch, run, (size_t)(p - run));
		d->p = (const char *)p;
		if (!decode_escape(d))
			return 0;
		p = run = (const unsigned char *)d->p;
	}
	if (escaped) {
		jbuf_add(&d->scratch, run, (size_t)(p - run));
		lua_pushlstring(d->L, d->scratch.p, d->scratch.n);
	} else {
		lua_pushlstring(d->L, (const char *)run, (size_t)(p - run));
	}
	d->p = (const char *)p + 1;
	return 1;
}

/* Pushes the number at d->p: an integer when it has neither fraction nor
 * exponent and fits lua_Integer, a float otherwise. */
static int decode_number(decoder *d)
{
	const char *s = d->p, *p = s;
	int neg = 0, is_float = 0;
	lua_Unsigned u = 0, limit;
	char small[64], *text, *stop;
	size_t len;
	double x;
	if (*p == '-')
		neg = 1, p++;
	if (!is_digit(d, p))
		return fail(d, p, "expected a digit");
	if (*p == '0') {
		if (is_digit(d, ++p))
			return fail(d, p - 1, "leading zeros are not allowed");
	} else {
		while (is_digit(d, p))
			p++;
	}
	if (p < d->end && *p == '.') {
		if (!is_digit(d, ++p))
			return fail(d, p, "expected a digit after '.'");
		while (is_digit(d, p))
			p++;
		is_float = 1;
	}
	if (p < d->end && (*p == 'e' || *p == 'E')) {
		p++;
		if (p < d->end && (*p == '+' || *p == '-'))
			p++;
		if (!is_digit(d, p))
			return fail(d, p, "expected a digit in the exponent");
		while (is_digit(d, p))
			p++;
		is_float = 1;
	}
	d->p = p;
	if (!is_float) {
		const char *q;
		limit = neg ? (lua_Unsigned)LUA_MAXINTEGER + 1 : (lua_Unsigned)LUA_MAXINTEGER;
		for (q = s + neg; q < p; q++) {
			unsigned digit = (unsigned)(*q - '0');
			if (u > (limit - digit) / 10)
				break;
			u = u * 10 + digit;
		}
		/* "-0" becomes -0.0 so that the sign survives a round trip. */
		if (q == p && !(neg && u == 0)) {
			lua_pushinteger(d->L, neg ? (lua_Integer)(0u - u) : (lua_Integer)u);
			return 1;
		}
	}
	len = (size_t)(p - s);
	if (len < sizeof small) {
		text = small;
	} else {
		d->scratch.n = 0;
		text = jbuf_reserve(&d->scratch, len + 1);
	}
	memcpy(text, s, len);
	text[len] = '\0';
	/* strtod follows the C locale's decimal point, which a script may change. */
	if ((stop = strchr(text, '.')))
		*stop = lua_getlocaledecpoint();
	x = strtod(text, &stop);
	if (stop != text + len)
		return fail(d, s, "invalid number");
	if (isinf(x))
		return fail(d, s, "number out of range");
	lua_pushnumber(d->L, x);
	return 1;
}

/* Steps over the literal word at d->p; msg says what was expected. */
static int expect_word(decoder *d, const char *word, const char *msg)
{
	size_t i;
	for (i = 0; word[i]; i++) {
		if (d->p + i == d->end || d->p[i] != word[i])
			return fail(d, d->p + i, msg);
	}
	d->p += i;
	return 1;
}

static int decode_value(decoder *d);

/* Makes room for one more level of nesting (a container, a key, a value;
 * what waits for a table has its room made by reserve). */
static int enter(decoder *d)
{
	if (d->depth == MAX_DEPTH)
		return fail(d, d->p, "nesting deeper than " DEPTH_TEXT(MAX_DEPTH) " levels");
	if (!lua_checkstack(d->L, 4))
		return fail(d, d->p, "nesting too deep for the Lua stack");
	d->depth++;
	d->p++;
	return 1;
}

/* Makes sure that the stack has room for the element or pair about to be
 * decoded above top, and for make_table's copies of a pair. Asking
 * lua_checkstack for every element would cost as much as presizing saves,
 * so it is asked for ROOM_STEP more slots at a time; what it gives stays
 * for the whole call, as a C function's frame only grows. */
static int reserve(decoder *d, int top)
{
	if (top + 4 <= d->room)
		return 1;
	if (!lua_checkstack(d->L, 4 + ROOM_STEP))
		return fail(d, d->p, "nesting too deep for the Lua stack");
	d->room = top + 4 + ROOM_STEP;
	return 1;
}

/* A container being decoded. Its elements (or key/value pairs) wait on the
 * Lua stack above slot until their count is known, so that the table is made
 * once with lua_createtable at its final size instead of being rehashed as it
 * grows. */
typedef struct {
	int slot;        /* stack index of the table, or of the nil keeping its place */
	int made;        /* whether the table is at slot yet */
	int pending;     /* stack slots above slot waiting to go into the table */
	lua_Integer len; /* array: elements already in the table */
} container;

/* Starts the container whose opening bracket is at d->p. */
static int open_container(decoder *d, container *c)
{
	if (!enter(d))
		return 0;
	lua_pushnil(d->L);
	c->slot = lua_gettop(d->L);
	c->made = 0;
	c->pending = 0;
	c->len = 0;
	return 1;
}

/* Makes c's table, sized for exactly the elements waiting above it (its
 * final size, unless a long array is made at its first chunk), and moves
 * them in. */
static void make_table(decoder *d, container *c, int is_array)
{
	lua_State *L = d->L;
	int i;
	if (is_array) {
		lua_createtable(L, c->pending, 0);
		lua_pushvalue(L, d->array_mt);
		lua_setmetatable(L, -2);
		lua_replace(L, c->slot);
		/* Popped from the top, last first: all fit the array part made. */
		for (i = c->pending; i > 0; i--)
			lua_rawseti(L, c->slot, i);
		c->len = c->pending;
	} else {
		lua_createtable(L, 0, c->pending / 2);
		lua_replace(L, c->slot);
		/* In the text's order, so that the last of duplicate keys wins. */
		for (i = 1; i < c->pending; i += 2) {
			lua_pushvalue(L, c->slot + i);
			lua_pushvalue(L, c->slot + i + 1);
			lua_rawset(L, c->slot);
		}
		lua_settop(L, c->slot);
	}
	c->made = 1;
	d->pending -= c->pending;
	c->pending = 0;
}

/* Takes the element (or key and value) just pushed for c: it waits on the
 * stack while c's table is not made yet, and goes straight in once it is,
 * as there is no size left to learn then. Waiting elements of all levels
 * are moved into their tables when they reach MAX_PENDING stack slots: that
 * bounds the Lua stack (LUAI_MAXSTACK) and its memory for an array of any
 * length, which is then sized for its first chunk and grows past it. A level
 * holding fewer than MIN_FLUSH slots keeps them even then, so that a
 * container nested under long ones still gets a useful size; the stack
 * then stays within about MAX_PENDING + MAX_DEPTH * MIN_FLUSH slots. */
static void add_element(decoder *d, container *c, int is_array)
{
	int n = is_array ? 1 : 2;
	if (c->made) {
		if (is_array)
			lua_rawseti(d->L, c->slot, ++c->len);
		else
			lua_rawset(d->L, c->slot);
		return;
	}
	c->pending += n;
	d->pending += n;
	if (d->pending >= MAX_PENDING && c->pending >= MIN_FLUSH)
		make_table(d, c, is_array);
}

/* Ends container c (its closing bracket is at d->p), leaving its table at
 * the top of the stack. */
static void close_container(decoder *d, container *c, int is_array)
{
	if (!c->made)
		make_table(d, c, is_array);
	d->p++;
	d->depth--;
}

/* Pushes the array whose '[' is at d->p. */
static int decode_array(decoder *d)
{
	container c;
	if (!open_container(d, &c))
		return 0;
	skip_space(d);
	if (d->p < d->end && *d->p == ']') {
		close_container(d, &c, 1);
		return 1;
	}
	for (;;) {
		/* Once the table is made, elements go in as they come and need
		 * no more room than enter made. */
		if (!c.made && !reserve(d, c.slot + c.pending))
			return 0;
		if (!decode_value(d))
			return 0;
		add_element(d, &c, 1);
		skip_space(d);
		if (d->p < d->end && *d->p == ',') {
			d->p++;
			continue;
		}
		if (d->p < d->end && *d->p == ']')
			break;
		return fail(d, d->p, "expected ',' or ']'");
	}
	close_container(d, &c, 1);
	return 1;
}

/* Pushes the object whose '{' is at d->p. */
static int decode_object(decoder *d)
{
	const char *expected = "expected a string key or '}'";
	container c;
	if (!open_container(d, &c))
		return 0;
	skip_space(d);
	if (d->p < d->end && *d->p == '}') {
		close_container(d, &c, 0);
		return 1;
	}
	for (;;) {
		skip_space(d);
		if (d->p == d->end || *d->p != '"')
			return fail(d, d->p, expected);
		if (!c.made && !reserve(d, c.slot + c.pending))
			return 0;
		if (!decode_string(d))
			return 0;
		skip_space(d);
		if (d->p == d->end || *d->p != ':')
			return fail(d, d->p, "expected ':'");
		d->p++;
		if (!decode_value(d))
			return 0;
		if (d->drop_nulls && lua_islightuserdata(d->L, -1) && !lua_touserdata(d->L, -1))
			lua_pop(d->L, 2);
		else
			add_element(d, &c, 0);
		skip_space(d);
		if (d->p < d->end && *d->p == ',') {
			d->p++;
			expected = "expected a string key";
			continue;
		}
		if (d->p < d->end && *d->p == '}')
			break;
		return fail(d, d->p, "expected ',' or '}'");
	}
	close_container(d, &c, 0);
	return 1;
}

/* Pushes the value that starts at d->p (after optional white space). */
static int decode_value(decoder *d)
{
	skip_space(d);
	if (d->p == d->end)
		return fail(d, d->p, "expected a value");
	switch (*d->p) {
	case '{':
		return decode_object(d);
	case '[':
		return decode_array(d);
	case '"':
		return decode_string(d);
	case 't':
		if (!expect_word(d, "true", "expected 'true'"))
			return 0;
		lua_pushboolean(d->L, 1);
		return 1;
	case 'f':
		if (!expect_word(d, "false", "expected 'false'"))
			return 0;
		lua_pushboolean(d->L, 0);
		return 1;
	case 'n':
		if (!expect_word(d, "null", "expected 'null'"))
			return 0;
		lua_pushlightuserdata(d->L, NULL);
		return 1;
	default:
		if (*d->p == '-' || (*d->p >= '0' && *d->p <= '9'))
			return decode_number(d);
		return fail(d, d->p, "expected a value");
	}
}

/* Decodes s as isc_json_decode does; drop_nulls leaves out the members of
 * objects whose value is null, so that a script's `if role.owner then`
 * reads a null as the absence it means. */
static int decode(lua_State *L, const char *s, size_t len, int drop_nulls)
{
	decoder d = {.L = L, .p = s, .end = s + len, .drop_nulls = drop_nulls};
	int base = lua_gettop(L), ok;
	luaL_checkstack(L, 6, "json");
	luaL_newmetatable(L, ISC_ARRAY_MT);
	d.array_mt = base + 1;
	jbuf_open(L, &d.scratch); /* at base + 2; the value goes above */
	ok = decode_value(&d);
	if (ok) {
		skip_space(&d);
		if (d.p != d.end)
			ok = fail(&d, d.p, "expected end of input");
	}
	jbuf_close(&d.scratch);
	if (ok) {
		lua_replace(L, d.array_mt);
		lua_settop(L, d.array_mt);
		return 1;
	}
	lua_settop(L, base);
	/* Byte positions count from 1, as string.sub does. */
	lua_pushfstring(L, "invalid JSON at byte %I: %s%s", (lua_Integer)(d.err_at - s) + 1,
	                d.err_at == d.end ? "unexpected end of input, " : "", d.err);
	return 0;
}

int isc_json_decode(lua_State *L, const char *s, size_t len)
{
	return decode(L, s, len, 0);
}

/* ---- encoding ---- */

typedef struct {
	lua_State *L;
	jbuf out;
	int array_mt; /* stack index */
	int sort_keys, indent;
	int depth;
	/* What leads to the value being encoded, for error messages: the stack
	 * index of an object key, or 0 and an array index. */
	struct {
		int key;
		lua_Integer index;
	} path[MAX_DEPTH];
} encoder;

/* Raises "json: <message> at <path of the first levels entries>". */
static void encode_error(encoder *e, int levels, const char *fmt, ...)
{
	lua_State *L = e->L;
	luaL_Buffer b;
	va_list ap;
	int i, msg;
	va_start(ap, fmt);
	lua_pushvfstring(L, fmt, ap);
	va_end(ap);
	msg = lua_gettop(L);
	luaL_buffinit(L, &b);
	luaL_addstring(&b, "json: ");
	luaL_addstring(&b, lua_tostring(L, msg));
	if (levels > 0)
		luaL_addstring(&b, " at ");
	for (i = 0; i < levels; i++) {
		if (e->path[i].key) {
			size_t len;
			const char *key = lua_tolstring(L, e->path[i].key, &len);
			luaL_addchar(&b, '.');
			luaL_addlstring(&b, key, len);
		} else {
			char index[32];
			snprintf(index, sizeof index, "[" LUA_INTEGER_FMT "]", (LUAI_UACINT)e->path[i].index);
			luaL_addstring(&b, index);
		}
	}
	luaL_pushresult(&b);
	lua_error(L);
}

/* Starts a new line indented for the current depth (pretty output only). */
static void newline(encoder *e, int depth)
{
	size_t n = (size_t)depth * (size_t)e->indent;
	char *o;
	if (!e->indent)
		return;
	o = jbuf_reserve(&e->out, n + 1);
	*o = '\n';
	memset(o + 1, ' ', n);
	e->out.n += n + 1;
}

/* Writes a quoted string: control characters, '"' and '\\' escaped, UTF-8
 * checked and kept as it is. */
static void encode_string(encoder *e, const char *s, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = (const unsigned char *)s, *end = p + len, *run;
	size_t n;
	char *o;
	jbuf_addc(&e->out, '"');
	for (;;) {
		run = p;
		while (p < end) {
			if (plain_byte(*p))
				p++;
			else if (*p < 0x80)
				break;
			else if ((n = utf8_len(p, end)))
				p += n;
			else
				encode_error(e, e->depth, "cannot encode a string with invalid UTF-8");
		}
		jbuf_add(&e->out, run, (size_t)(p - run));
		if (p == end)
			break;
		o = jbuf_reserve(&e->out, 6);
		o[0] = '\\';
		switch (*p) {
		case '"': o[1] = '"'; n = 2; break;
		case '\\': o[1] = '\\'; n = 2; break;
		case '\b': o[1] = 'b'; n = 2; break;
		case '\f': o[1] = 'f'; n = 2; break;
		case '\n': o[1] = 'n'; n = 2; break;
		case '\r': o[1] = 'r'; n = 2; break;
		case '\t': o[1] = 't'; n = 2; break;
		default:
			memcpy(o + 1, "u00", 3);
			o[4] = hex[*p >> 4];
			o[5] = hex[*p & 15];
			n = 6;
		}
		e->out.n += n;
		p++;
	}
	jbuf_addc(&e->out, '"');
}

/* Writes an integer in decimal. */
static void encode_integer(encoder *e, lua_Integer i)
{
	char digits[24], *q = digits + sizeof digits;
	lua_Unsigned u = i < 0 ? 0u - (lua_Unsigned)i : (lua_Unsigned)i;
	do {
		*--q = (char)('0' + u % 10);
		u /= 10;
	} while (u);
	if (i < 0)
		*--q = '-';
	jbuf_add(&e->out, q, (size_t)(digits + sizeof digits - q));
}

/* Writes the shortest form that reads back as the same float, and keeps it
 * a float: an integral value gets ".0" (2.0 -> "2.0", not "2"). */
static void encode_float(encoder *e, lua_Number x)
{
	char text[40], *c;
	int prec;
	if (isnan(x))
		encode_error(e, e->depth, "cannot encode NaN");
	if (isinf(x))
		encode_error(e, e->depth, "cannot encode %s", x > 0 ? "inf" : "-inf");
	for (prec = 15; prec < 17; prec++) {
		snprintf(text, sizeof text, "%.*g", prec, (double)x);
		if (strtod(text, NULL) == (double)x)
			break;
	}
	if (prec == 17)
		snprintf(text, sizeof text, "%.17g", (double)x);
	if ((c = strchr(text, lua_getlocaledecpoint())))
		*c = '.';
	if (strspn(text, "-0123456789") == strlen(text))
		strcat(text, ".0");
	jbuf_add(&e->out, text, strlen(text));
}

static void encode_value(encoder *e, int idx);

/* Raises the error for key k (a stack index), neither a string nor fitting
 * an array, of the table at path length levels. */
static void key_error(encoder *e, int k, int levels)
{
	if (lua_isinteger(e->L, k))
		encode_error(e, levels, "cannot encode a table with both integer and string keys");
	encode_error(e, levels, "cannot encode a table with a %s key", luaL_typename(e->L, k));
}

/* Writes table t (keys exactly 1..n) as an array. All keys are looked at
 * first, so that the message does not depend on their order. */
static void encode_array(encoder *e, int t, int marked)
{
	lua_State *L = e->L;
	lua_Integer n = (lua_Integer)lua_rawlen(L, t), count = 0, i;
	int sparse = 0, strings = 0;
	lua_pushnil(L);
	while (lua_next(L, t)) {
		lua_pop(L, 1);
		if (lua_isinteger(L, -1)) {
			i = lua_tointeger(L, -1);
			sparse |= i < 1 || i > n;
			count++;
		} else if (lua_type(L, -1) == LUA_TSTRING) {
			strings = 1;
		} else {
			key_error(e, -1, e->depth);
		}
	}
	if (strings)
		encode_error(e, e->depth, marked ? "cannot encode an array with string keys"
		                                 : "cannot encode a table with both integer and string keys");
	if (sparse || count != n)
		encode_error(e, e->depth, "cannot encode a sparse array");
	jbuf_addc(&e->out, '[');
	e->depth++;
	for (i = 1; i <= n; i++) {
		if (i > 1)
			jbuf_addc(&e->out, ',');
		newline(e, e->depth);
		e->path[e->depth - 1].key = 0;
		e->path[e->depth - 1].index = i;
		lua_rawgeti(L, t, i);
		encode_value(e, lua_gettop(L));
		lua_pop(L, 1);
	}
	e->depth--;
	newline(e, e->depth);
	jbuf_addc(&e->out, ']');
}

/* Writes one "key":value pair of an object; both are stack indices. */
static void encode_member(encoder *e, int key, int value, int first)
{
	size_t len;
	const char *s;
	if (lua_type(e->L, key) != LUA_TSTRING)
		key_error(e, key, e->depth - 1);
	if (!first)
		jbuf_addc(&e->out, ',');
	newline(e, e->depth);
	e->path[e->depth - 1].key = key;
	s = lua_tolstring(e->L, key, &len);
	encode_string(e, s, len);
	if (e->indent)
		jbuf_add(&e->out, ": ", 2);
	else
		jbuf_addc(&e->out, ':');
	encode_value(e, value);
}

typedef struct {
	const char *s;
	size_t len;
} keyref;

/* Byte order of two keys, for sort_keys. */
static int compare_keys(const void *a, const void *b)
{
	const keyref *x = a, *y = b;
	int c = memcmp(x->s, y->s, x->len < y->len ? x->len : y->len);
	return c ? c : (x->len > y->len) - (x->len < y->len);
}

/* Writes the members of object t in key order. */
static void encode_sorted_members(encoder *e, int t)
{
	lua_State *L = e->L;
	size_t n = 0, i;
	keyref *keys;
	lua_pushnil(L);
	while (lua_next(L, t)) {
		lua_pop(L, 1);
		if (lua_type(L, -1) != LUA_TSTRING)
			key_error(e, -1, e->depth - 1);
		n++;
	}
	keys = lua_newuserdatauv(L, n * sizeof *keys, 0);
	i = 0;
	lua_pushnil(L);
	/* The table holds the key strings, so their addresses stay valid. */
	while (lua_next(L, t)) {
		lua_pop(L, 1);
		keys[i].s = lua_tolstring(L, -1, &keys[i].len);
		i++;
	}
	qsort(keys, n, sizeof *keys, compare_keys);
	for (i = 0; i < n; i++) {
		lua_pushlstring(L, keys[i].s, keys[i].len);
		lua_pushvalue(L, -1);
		lua_rawget(L, t);
		encode_member(e, lua_gettop(L) - 1, lua_gettop(L), i == 0);
		lua_pop(L, 2);
	}
	lua_pop(L, 1);
}

/* Writes table t as an array or an object, as its marker or keys say. */
static void encode_table(encoder *e, int t)
{
	lua_State *L = e->L;
	int marked = 0;
	if (e->depth == MAX_DEPTH)
		encode_error(e, 0, "cannot encode tables nested deeper than " DEPTH_TEXT(MAX_DEPTH)
		             " levels (is there a cycle?)");
	if (!lua_checkstack(L, 10))
		encode_error(e, 0, "cannot encode tables nested this deep");
	if (lua_getmetatable(L, t)) {
		marked = lua_rawequal(L, -1, e->array_mt);
		lua_pop(L, 1);
	}
	lua_pushnil(L);
	if (!lua_next(L, t)) {
		jbuf_add(&e->out, marked ? "[]" : "{}", 2);
		return;
	}
	if (marked || lua_type(L, -2) == LUA_TNUMBER) {
		lua_pop(L, 2);
		encode_array(e, t, marked);
		return;
	}
	jbuf_addc(&e->out, '{');
	e->depth++;
	if (e->sort_keys) {
		lua_pop(L, 2);
		encode_sorted_members(e, t);
	} else {
		/* The first pair, already on the stack, starts the walk. */
		int first = 1;
		do {
			encode_member(e, lua_gettop(L) - 1, lua_gettop(L), first);
			lua_pop(L, 1);
			first = 0;
		} while (lua_next(L, t));
	}
	e->depth--;
	newline(e, e->depth);
	jbuf_addc(&e->out, '}');
}

/* Writes any value; the stack is left as it was. */
static void encode_value(encoder *e, int idx)
{
	lua_State *L = e->L;
	switch (lua_type(L, idx)) {
	case LUA_TNIL:
		jbuf_add(&e->out, "null", 4);
		break;
	case LUA_TBOOLEAN:
		if (lua_toboolean(L, idx))
			jbuf_add(&e->out, "true", 4);
		else
			jbuf_add(&e->out, "false", 5);
		break;
	case LUA_TNUMBER:
		if (lua_isinteger(L, idx))
			encode_integer(e, lua_tointeger(L, idx));
		else
			encode_float(e, lua_tonumber(L, idx));
		break;
	case LUA_TSTRING: {
		size_t len;
		const char *s = lua_tolstring(L, idx, &len);
		encode_string(e, s, len);
		break;
	}
	case LUA_TTABLE:
		encode_table(e, idx);
		break;
	case LUA_TLIGHTUSERDATA:
		if (lua_touserdata(L, idx) == NULL) {
			jbuf_add(&e->out, "null", 4);
			break;
		}
		/* fall through */
	default:
		encode_error(e, e->depth, "cannot encode a %s", luaL_typename(L, idx));
	}
}

/* Encodes the value at idx and pushes the text, the scratch buffer given
 * back: the stack holds three more values than before, the text on top. */
static void encode_root(encoder *e, int idx)
{
	lua_State *L = e->L;
	int top = lua_gettop(L);
	idx = lua_absindex(L, idx);
	luaL_checkstack(L, 8, "json");
	luaL_newmetatable(L, ISC_ARRAY_MT);
	e->array_mt = top + 1;
	jbuf_open(L, &e->out);
	encode_value(e, idx);
	lua_settop(L, top + 2);
	lua_pushlstring(L, e->out.p, e->out.n);
	jbuf_close(&e->out);
}

/* As the header says; idx may also be the top of the stack, above the
 * buffer, as with luaL_addvalue: the value is then popped. */
void isc_json_encode(lua_State *L, int idx, luaL_Buffer *b)
{
	encoder e = {.L = L};
	int top = lua_gettop(L);
	idx = lua_absindex(L, idx);
	encode_root(&e, idx);
	/* the text goes in with luaL_addvalue, which wants it right above b */
	lua_replace(L, top + 1);
	lua_settop(L, top + 1);
	if (idx == top)
		lua_remove(L, idx);
	luaL_addvalue(b);
}

/* Reads json_encode's options table {sort_keys=, indent=} at arg. */
static void read_options(lua_State *L, int arg, encoder *e)
{
	if (lua_isnoneornil(L, arg))
		return;
	luaL_checktype(L, arg, LUA_TTABLE);
	lua_pushnil(L);
	while (lua_next(L, arg)) {
		const char *name = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "";
		if (strcmp(name, "sort_keys") == 0) {
			e->sort_keys = lua_toboolean(L, -1);
		} else if (strcmp(name, "indent") == 0) {
			if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 0 ||
			    lua_tointeger(L, -1) > MAX_INDENT)
				luaL_argerror(L, arg, "indent must be an integer from 0 to 32");
			e->indent = (int)lua_tointeger(L, -1);
		} else {
			luaL_argerror(L, arg, lua_pushfstring(L, "unknown option '%s'",
			                                      luaL_tolstring(L, -2, NULL)));
		}
		lua_pop(L, 1);
	}
}

/* core.json_encode(value [, opts]) -> string */
static int json_encode(lua_State *L)
{
	encoder e = {.L = L};
	luaL_checkany(L, 1);
	read_options(L, 2, &e);
	encode_root(&e, 1);
	return 1;
}

/* core.json_decode(s [, {drop_nulls=false}]) -> value | nil, message */
static int json_decode(lua_State *L)
{
	size_t len;
	const char *s = luaL_checklstring(L, 1, &len);
	int drop_nulls = 0;
	if (!lua_isnoneornil(L, 2)) {
		luaL_checktype(L, 2, LUA_TTABLE);
		lua_pushnil(L);
		while (lua_next(L, 2)) {
			if (lua_type(L, -2) != LUA_TSTRING || strcmp(lua_tostring(L, -2), "drop_nulls") != 0)
				luaL_argerror(L, 2, lua_pushfstring(L, "unknown option '%s'", luaL_tolstring(L, -2, NULL)));
			drop_nulls = lua_toboolean(L, -1);
			lua_pop(L, 1);
		}
	}
	lua_settop(L, 1);
	if (decode(L, s, len, drop_nulls))
		return 1;
	lua_pushnil(L);
	lua_insert(L, -2);
	return 2;
}

/* core.json_array([t]) -> t, marked as a JSON array */
static int json_array(lua_State *L)
{
	if (lua_isnoneornil(L, 1)) {
		lua_settop(L, 0);
		lua_newtable(L);
	} else {
		luaL_checktype(L, 1, LUA_TTABLE);
		lua_settop(L, 1);
	}
	luaL_newmetatable(L, ISC_ARRAY_MT);
	if (lua_getmetatable(L, 1) && !lua_rawequal(L, -1, -2))
		luaL_argerror(L, 1, "table already has another metatable");
	lua_settop(L, 2);
	lua_setmetatable(L, 1);
	return 1;
}

void isc_open_json(lua_State *L)
{
	static const luaL_Reg funcs[] = {
		{"json_decode", json_decode},
		{"json_encode", json_encode},
		{"json_array", json_array},
		{NULL, NULL},
	};
	luaL_setfuncs(L, funcs, 0);
	luaL_newmetatable(L, ISC_ARRAY_MT);
	lua_setfield(L, -2, "array_mt");
	lua_pushlightuserdata(L, NULL);
	lua_setfield(L, -2, "null");
}
