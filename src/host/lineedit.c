/* isc.lineedit: line editing for the REPL through libedit's readline
 * interface: reading a line, history, and completion answered by a Lua
 * function. Host-only: the shared isc/core.so is not linked to libedit.
 *
 * libedit is opened with dlopen when the module is first required (by the
 * REPL, on a terminal), not linked: its dependencies would otherwise cost
 * every start of isclua, scripts included, several milliseconds in the
 * dynamic loader. Without it, require fails and the REPL reads plain lines.
 *
 * Signals: libedit is told to leave them alone (rl_catch_signals = 0), so the
 * host's recorder (no SA_RESTART) stays in place and a signal makes read()
 * fail with EINTR. Our key reader then ends the line, and read() reports
 * why; a Ctrl-C at the prompt abandons the line instead of reaching the next
 * statement as a pending interrupt. */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <editline/readline.h> /* for the types only: nothing is linked */

#include "core.h"

/* The library opened, overridable to test the fallback. */
#ifndef ISC_LIBEDIT
#define ISC_LIBEDIT "libedit.so.2"
#endif

/* libedit's functions, and the addresses of its variables, from dlsym. */
static struct {
	char *(*readline)(const char *);
	int (*add_history)(const char *);
	void (*stifle_history)(int);
	int (*read_history)(const char *);
	int (*write_history)(const char *);
	int *catch_signals;
	int (**getc_function)(FILE *);
	rl_completion_func_t **attempted_completion_function;
	int *attempted_completion_over;
	int *completion_append_character;
	const char **readline_name;
	const char **basic_word_break_characters;
	char **completer_word_break_characters;
	char **line_buffer;
} el;

/* Registry key of the Lua completion function. */
static const char completer_key = 'c';
/* The state that is inside readline(), for the completion callback. */
static lua_State *reading_L = NULL;
/* Characters that end a word for completion; owned copy. */
static char *word_breaks = NULL;

/* rl_getc_function: one byte of input, or EOF when a signal arrived, so
 * readline() returns at once instead of retrying the read. The wait for
 * input lets signals in only while it blocks, so a Ctrl-C just before it is
 * not left waiting for the next key. */
static int read_key(FILE *in)
{
	unsigned char c;
	for (;;) {
		if (isc_wait(fileno(in), HUGE_VAL) < 0)
			return EOF;
		ssize_t n = read(fileno(in), &c, 1);
		if (n == 1)
			return c;
		if (n == 0 || errno != EINTR)
			return EOF;
	}
}

/* Longest common prefix of the candidates in the list at the stack top. */
static size_t common_prefix(lua_State *L, lua_Integer n)
{
	lua_rawgeti(L, -1, 1);
	size_t len;
	const char *first = lua_tolstring(L, -1, &len);
	for (lua_Integer i = 2; i <= n && len > 0; i++) {
		lua_rawgeti(L, -2, i);
		const char *s = lua_tostring(L, -1);
		size_t j = 0;
		while (j < len && s[j] == first[j])
			j++;
		len = j;
		lua_pop(L, 1);
	}
	lua_pop(L, 1);
	return len;
}

/* Turns the list of candidate strings at the stack top into readline's
 * malloc'ed match array: the common prefix first, then each candidate.
 * Raw access only, so that nothing here can raise a Lua error while the
 * array is held or unwind through libedit. */
static char **to_matches(lua_State *L)
{
	lua_Integer n = (lua_Integer)lua_rawlen(L, -1);
	for (lua_Integer i = 1; i <= n; i++) {
		if (lua_rawgeti(L, -1, i) != LUA_TSTRING)
			n = 0; /* not a list of strings: offer nothing */
		lua_pop(L, 1);
	}
	if (n == 0)
		return NULL;
	char **m = calloc((size_t)n + 2, sizeof *m);
	if (!m)
		return NULL;
	size_t prefix = common_prefix(L, n);
	lua_rawgeti(L, -1, 1);
	m[0] = strndup(lua_tostring(L, -1), prefix);
	lua_pop(L, 1);
	int ok = m[0] != NULL;
	for (lua_Integer i = 1; ok && n > 1 && i <= n; i++) {
		lua_rawgeti(L, -1, i);
		ok = (m[i] = strdup(lua_tostring(L, -1))) != NULL;
		lua_pop(L, 1);
	}
	if (!ok) {
		for (lua_Integer i = 0; i <= n; i++)
			free(m[i]);
		free(m);
		return NULL;
	}
	return m;
}

/* What the completer is asked: the word, and the line before it. */
struct completion_query {
	const char *text, *line;
	size_t before;
};

/* Runs protected: completer(word, line_before_word) -> candidates. */
static int ask_completer(lua_State *L)
{
	const struct completion_query *q = lua_touserdata(L, 2);
	lua_settop(L, 1);
	lua_pushstring(L, q->text);
	lua_pushlstring(L, q->line, q->before);
	lua_call(L, 2, 1);
	return 1;
}

/* rl_attempted_completion_function: asks the Lua completer for the
 * candidates that may replace `text` (the word before the cursor). */
static char **complete(const char *text, int start, int end)
{
	(void)end;
	*el.attempted_completion_over = 1; /* never fall back to file names */
	lua_State *L = reading_L;
	if (!L || !lua_checkstack(L, 6))
		return NULL;
	int top = lua_gettop(L);
	char **matches = NULL;
	struct completion_query q = {text, *el.line_buffer, (size_t)start};
	lua_pushcfunction(L, ask_completer);
	lua_rawgetp(L, LUA_REGISTRYINDEX, &completer_key);
	if (lua_isfunction(L, -1)) {
		lua_pushlightuserdata(L, &q);
		/* No Lua error may unwind through libedit: even the arguments
		 * are made inside the protected call. */
		if (lua_pcall(L, 2, 1, 0) == LUA_OK && lua_istable(L, -1))
			matches = to_matches(L);
	}
	lua_settop(L, top);
	return matches;
}

/* Sets libedit up once, before its first use initialises it. */
static void setup(void)
{
	static int done = 0;
	if (done)
		return;
	done = 1;
	*el.catch_signals = 0;
	*el.getc_function = read_key;
	*el.attempted_completion_function = complete;
	*el.completion_append_character = '\0';
	*el.readline_name = "isclua";
}

/* lineedit.read(prompt) -> line | nil at the end of input | false, signal
 * when a signal (Ctrl-C: 2) ended the line, which is then abandoned. The
 * signal is consumed here, so it never reaches the next statement. */
static int le_read(lua_State *L)
{
	const char *prompt = luaL_checkstring(L, 1);
	setup();
	reading_L = L;
	char *line = el.readline(prompt);
	reading_L = NULL;
	int sig = isc_pending_signal;
	if (sig) {
		isc_pending_signal = 0;
		/* The host armed its stop hook when the signal came: disarm it,
		 * or the next statement would stop at its first instruction. */
		lua_sethook(L, NULL, 0, 0);
		free(line);
		lua_pushboolean(L, 0);
		lua_pushinteger(L, sig);
		return 2;
	}
	if (!line) {
		lua_pushnil(L);
		return 1;
	}
	lua_pushstring(L, line);
	free(line);
	return 1;
}

/* lineedit.set_completer(fn, word_breaks): fn(word, line_before_word) ->
 * list of candidates replacing word; word_breaks are the characters that
 * separate words (so "." and ":" can stay inside one) */
static int le_set_completer(lua_State *L)
{
	luaL_checktype(L, 1, LUA_TFUNCTION);
	const char *breaks = luaL_checkstring(L, 2);
	char *copy = strdup(breaks);
	if (!copy)
		return luaL_error(L, "out of memory");
	setup();
	free(word_breaks);
	word_breaks = copy;
	*el.basic_word_break_characters = word_breaks;
	*el.completer_word_break_characters = word_breaks;
	lua_settop(L, 1);
	lua_rawsetp(L, LUA_REGISTRYINDEX, &completer_key);
	return 0;
}

/* lineedit.add_history(line) */
static int le_add_history(lua_State *L)
{
	const char *line = luaL_checkstring(L, 1);
	setup();
	el.add_history(line);
	return 0;
}

/* lineedit.history_limit(n): keeps only the n most recent lines */
static int le_history_limit(lua_State *L)
{
	lua_Integer n = luaL_checkinteger(L, 1);
	luaL_argcheck(L, n > 0 && n <= 1000000, 1, "must be between 1 and 1000000");
	setup();
	el.stifle_history((int)n);
	return 0;
}

/* lineedit.load_history(path) -> true | nil, message */
static int le_load_history(lua_State *L)
{
	const char *path = luaL_checkstring(L, 1);
	setup();
	int rc = el.read_history(path);
	if (rc != 0)
		return luaL_fileresult(L, 0, path);
	lua_pushboolean(L, 1);
	return 1;
}

/* Creates the directories leading to path, private to the user. */
static void make_parents(const char *path)
{
	char buf[4096];
	size_t len = strlen(path);
	if (len >= sizeof buf)
		return;
	memcpy(buf, path, len + 1);
	for (char *p = buf + 1; *p; p++) {
		if (*p == '/') {
			*p = '\0';
			mkdir(buf, 0700);
			*p = '/';
		}
	}
}

/* lineedit.save_history(path) -> true | nil, message; the file (and any
 * directory created for it) is readable by the user only */
static int le_save_history(lua_State *L)
{
	const char *path = luaL_checkstring(L, 1);
	setup();
	make_parents(path);
	int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return luaL_fileresult(L, 0, path);
	int chmod_rc = fchmod(fd, 0600);
	close(fd);
	if (chmod_rc != 0 || el.write_history(path) != 0)
		return luaL_fileresult(L, 0, path);
	lua_pushboolean(L, 1);
	return 1;
}

/* Opens libedit and resolves every symbol used, once; NULL on success,
 * else why not. A failure is kept: it is not retried. */
static const char *load_libedit(void)
{
	static int tried = 0;
	static char why[512];
	if (tried)
		return why[0] ? why : NULL;
	tried = 1;
	/* ISCLUA_LIBEDIT names it where it has another name or place */
	const char *name = getenv("ISCLUA_LIBEDIT");
	void *h = dlopen(name && *name ? name : ISC_LIBEDIT, RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		snprintf(why, sizeof why, "%s", dlerror());
		return why;
	}
	/* dlsym's void * to a function pointer: POSIX guarantees it works. */
#define LOAD(field, name) \
	if (!(el.field = (__typeof__(el.field))dlsym(h, name))) \
		goto missing
	LOAD(readline, "readline");
	LOAD(add_history, "add_history");
	LOAD(stifle_history, "stifle_history");
	LOAD(read_history, "read_history");
	LOAD(write_history, "write_history");
	LOAD(catch_signals, "rl_catch_signals");
	LOAD(getc_function, "rl_getc_function");
	LOAD(attempted_completion_function, "rl_attempted_completion_function");
	LOAD(attempted_completion_over, "rl_attempted_completion_over");
	LOAD(completion_append_character, "rl_completion_append_character");
	LOAD(readline_name, "rl_readline_name");
	LOAD(basic_word_break_characters, "rl_basic_word_break_characters");
	LOAD(completer_word_break_characters, "rl_completer_word_break_characters");
	LOAD(line_buffer, "rl_line_buffer");
#undef LOAD
	return NULL;
missing:
	snprintf(why, sizeof why, "%s", dlerror());
	dlclose(h);
	return why;
}

/* package.preload["isc.lineedit"], registered by the host: fails, with
 * what to install, when libedit cannot be loaded. */
int isc_open_lineedit(lua_State *L)
{
	const char *why = load_libedit();
	if (why)
		return luaL_error(L, "no line editing (%s): install libedit "
		                  "(Debian: apt-get install libedit2)", why);

	static const luaL_Reg fns[] = {
		{"read", le_read},
		{"set_completer", le_set_completer},
		{"add_history", le_add_history},
		{"history_limit", le_history_limit},
		{"load_history", le_load_history},
		{"save_history", le_save_history},
		{NULL, NULL},
	};
	luaL_newlib(L, fns);
	return 1;
}
