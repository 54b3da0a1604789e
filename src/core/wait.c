/* The blocking wait behind c.propagation:wait(): polls a Lua function until it
 * reports a final stage, pausing between polls with backoff, within a timeout
 * on the caller's clock. Pausing and reading the time go through the caller's
 * functions (core.sleep and core.time in real use; specs pass functions that
 * move a simulated clock), so the loop costs no CPU while it waits. What a
 * stage is, which poll errors are worth retrying and what the line says are
 * the caller's business; this file only runs the loop. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core.h"

#define WAIT_MT "isc.wait"

/* Fixed stack slots of core.wait, the to-be-closed waiter last. */
enum {
	SLOT_OPTS = 1,
	SLOT_POLL,
	SLOT_SLEEP,
	SLOT_CLOCK,
	SLOT_PROGRESS, /* on_progress or nil */
	SLOT_RETRY,    /* retry or nil */
	SLOT_LABEL,
	SLOT_STATUS,   /* last status seen, nil before the first good poll */
	SLOT_STAGE,    /* its stage */
	SLOT_ERROR,    /* error of the last poll if it failed, else nil */
	SLOT_WAITER,
};

typedef struct {
	double start;    /* clock() when the wait began */
	double timeout;  /* seconds, HUGE_VAL for none */
	double interval; /* the next pause between polls */
	double factor;   /* growth of the pause after each poll */
	double cap;      /* the longest pause */
	lua_Integer polls;
	int line;        /* keep a progress line on stderr */
	int drawn;       /* that line is on the screen and not yet ended */
} waiter;

/* Ends the progress line, however the wait ends (__close of the waiter). */
static int waiter_close(lua_State *L)
{
	waiter *w = luaL_checkudata(L, 1, WAIT_MT);
	if (w->drawn) {
		fputs("\n", stderr);
		fflush(stderr);
		w->drawn = 0;
	}
	return 0;
}

/* Pushes the function in opts[key]; nil is allowed only when optional. */
static void push_function(lua_State *L, const char *key, int optional)
{
	int t = lua_getfield(L, SLOT_OPTS, key);
	if (t != LUA_TFUNCTION && !(optional && t == LUA_TNIL))
		luaL_error(L, "core.wait: %s must be a function, got %s", key, luaL_typename(L, -1));
}

/* Reads the positive number opts[key], def when absent. */
static double opt_number(lua_State *L, const char *key, double def)
{
	lua_getfield(L, SLOT_OPTS, key);
	double v = def;
	if (!lua_isnil(L, -1)) {
		int ok;
		v = lua_tonumberx(L, -1, &ok);
		if (!ok || !(v > 0) || !isfinite(v))
			luaL_error(L, "core.wait: %s must be a finite number > 0", key);
	}
	lua_pop(L, 1);
	return v;
}

/* The caller's clock, in seconds. */
static double now(lua_State *L)
{
	lua_pushvalue(L, SLOT_CLOCK);
	lua_call(L, 0, 1);
	int ok;
	double t = lua_tonumberx(L, -1, &ok);
	if (!ok)
		luaL_error(L, "core.wait: clock must return a number, got %s", luaL_typename(L, -1));
	lua_pop(L, 1);
	return t;
}

/* Redraws the progress line: label, stage and elapsed time, in place. */
static void draw(lua_State *L, waiter *w, double t)
{
	if (!w->line || lua_isnil(L, SLOT_STAGE))
		return;
	/* the caller's clock may say anything: keep the conversion defined */
	double e = t - w->start;
	long s = e > 0 && e < 1e12 ? (long)e : 0;
	char elapsed[32];
	if (s >= 3600)
		snprintf(elapsed, sizeof elapsed, "%ldh%02ldm%02lds", s / 3600, s / 60 % 60, s % 60);
	else
		snprintf(elapsed, sizeof elapsed, "%ldm%02lds", s / 60, s % 60);
	/* \r and erase-to-end-of-line: the line is rewritten, never scrolled. */
	fprintf(stderr, "\r%s: %s (%s)\033[K", lua_tostring(L, SLOT_LABEL), lua_tostring(L, SLOT_STAGE), elapsed);
	fflush(stderr);
	w->drawn = 1;
}

/* Pauses for delay seconds through the caller's sleep; with a progress line,
 * in steps of at most a second so that its elapsed time keeps counting. */
static void pause_for(lua_State *L, waiter *w, double delay)
{
	while (delay > 0) {
		double step = w->line && delay > 1 ? 1 : delay;
		lua_pushvalue(L, SLOT_SLEEP);
		lua_pushnumber(L, step);
		lua_call(L, 1, 0);
		delay -= step;
		if (w->line && delay > 0) /* the poll that follows draws the last */
			draw(L, w, now(L));
	}
}

/* Whether the value at idx is an "interrupted" error, never to be retried. */
static int is_interrupt(lua_State *L, int idx)
{
	if (!lua_istable(L, idx))
		return 0;
	lua_getfield(L, idx, "kind");
	const char *kind = lua_tostring(L, -1);
	int yes = kind && strcmp(kind, "interrupted") == 0;
	lua_pop(L, 1);
	return yes;
}

/* A failed poll, its error on top: asks retry(err, interval) for the pause
 * before the next attempt, or re-raises the error untouched. */
static double retry_or_raise(lua_State *L, waiter *w)
{
	if (is_interrupt(L, -1) || lua_isnil(L, SLOT_RETRY))
		lua_error(L);
	lua_pushvalue(L, SLOT_RETRY);
	lua_pushvalue(L, -2);
	lua_pushnumber(L, w->interval);
	lua_call(L, 2, 1);
	int ok;
	double delay = lua_tonumberx(L, -1, &ok);
	lua_pop(L, 1);
	if (!ok)
		lua_error(L);
	if (!(delay >= 0) || !isfinite(delay))
		luaL_error(L, "core.wait: retry must return a finite number of seconds >= 0");
	lua_replace(L, SLOT_ERROR);
	return delay;
}

/* Polls once, keeping the status and calling on_progress on a new stage.
 * Returns 1 when the stage is final, 0 when the wait goes on; *delay is
 * set when the poll failed and is to be retried after that pause. */
static int poll_once(lua_State *L, waiter *w, double *delay)
{
	w->polls++;
	lua_pushvalue(L, SLOT_POLL);
	if (lua_pcall(L, 0, 3, 0) != LUA_OK) {
		*delay = retry_or_raise(L, w);
		return 0;
	}
	if (!lua_istable(L, -3) || lua_type(L, -2) != LUA_TSTRING)
		luaL_error(L, "core.wait: poll must return a status table and a stage string");
	int done = lua_toboolean(L, -1);
	lua_pop(L, 1);
	int changed = !lua_rawequal(L, -1, SLOT_STAGE);
	lua_replace(L, SLOT_STAGE);
	lua_replace(L, SLOT_STATUS);
	lua_pushnil(L);
	lua_replace(L, SLOT_ERROR);
	if (changed && !lua_isnil(L, SLOT_PROGRESS)) {
		lua_pushvalue(L, SLOT_PROGRESS);
		lua_pushvalue(L, SLOT_STATUS);
		lua_call(L, 1, 0);
	}
	return done;
}

/* Raises {kind="timeout", last_status=, last_error=, timeout=, elapsed=, polls=}. */
static int raise_timeout(lua_State *L, waiter *w, double t)
{
	char limit[32];
	snprintf(limit, sizeof limit, "%g", w->timeout);
	if (lua_isnil(L, SLOT_STAGE))
		isc_push_error(L, "timeout", "%s did not finish within %s s (no poll succeeded)",
		               lua_tostring(L, SLOT_LABEL), limit);
	else
		isc_push_error(L, "timeout", "%s did not finish within %s s (last stage seen: %s)",
		               lua_tostring(L, SLOT_LABEL), limit, lua_tostring(L, SLOT_STAGE));
	lua_pushvalue(L, SLOT_STATUS);
	lua_setfield(L, -2, "last_status");
	lua_pushvalue(L, SLOT_ERROR);
	lua_setfield(L, -2, "last_error");
	lua_pushnumber(L, w->timeout);
	lua_setfield(L, -2, "timeout");
	lua_pushnumber(L, t - w->start);
	lua_setfield(L, -2, "elapsed");
	lua_pushinteger(L, w->polls);
	lua_setfield(L, -2, "polls");
	return lua_error(L);
}

/* core.wait{poll=fn() -> status, stage, done, sleep=fn(s), clock=fn() -> s,
 *           interval=5, backoff=1.5, max_interval=60, timeout=nil,
 *           on_progress=fn(status), retry=fn(err, interval) -> s | nil,
 *           label="wait", line=false} -> last status, polls */
static int wait_run(lua_State *L)
{
	luaL_checktype(L, 1, LUA_TTABLE);
	lua_settop(L, 1);
	push_function(L, "poll", 0);
	push_function(L, "sleep", 0);
	push_function(L, "clock", 0);
	push_function(L, "on_progress", 1);
	push_function(L, "retry", 1);
	if (lua_getfield(L, SLOT_OPTS, "label") == LUA_TNIL) {
		lua_pop(L, 1);
		lua_pushliteral(L, "wait");
	} else if (lua_type(L, -1) != LUA_TSTRING) {
		return luaL_error(L, "core.wait: label must be a string");
	}
	lua_pushnil(L); /* SLOT_STATUS */
	lua_pushnil(L); /* SLOT_STAGE */
	lua_pushnil(L); /* SLOT_ERROR */
	double interval = opt_number(L, "interval", 5);
	double factor = opt_number(L, "backoff", 1.5);
	double cap = opt_number(L, "max_interval", 60);
	double timeout = opt_number(L, "timeout", HUGE_VAL);
	if (factor < 1)
		return luaL_error(L, "core.wait: backoff must be >= 1");
	lua_getfield(L, SLOT_OPTS, "line");
	int line = lua_toboolean(L, -1);
	lua_pop(L, 1);

	waiter *w = lua_newuserdatauv(L, sizeof *w, 0);
	memset(w, 0, sizeof *w);
	luaL_setmetatable(L, WAIT_MT);
	lua_toclose(L, SLOT_WAITER);
	w->interval = interval;
	w->factor = factor;
	w->cap = cap > interval ? cap : interval;
	w->timeout = timeout;
	w->line = line;
	w->start = now(L);

	for (;;) {
		if (isc_pending_signal)
			return isc_raise_interrupted(L);
		double delay = w->interval;
		int done = poll_once(L, w, &delay);
		double t = now(L);
		draw(L, w, t);
		if (done)
			break;
		w->interval = fmin(w->interval * w->factor, w->cap);
		if (t - w->start >= w->timeout)
			return raise_timeout(L, w, t);
		pause_for(L, w, fmin(delay, w->start + w->timeout - t));
	}
	lua_Integer polls = w->polls;
	lua_closeslot(L, SLOT_WAITER);
	lua_pushvalue(L, SLOT_STATUS);
	lua_pushinteger(L, polls);
	return 2;
}

void isc_open_wait(lua_State *L)
{
	if (luaL_newmetatable(L, WAIT_MT)) {
		lua_pushcfunction(L, waiter_close);
		lua_setfield(L, -2, "__close");
	}
	lua_pop(L, 1);
	lua_pushcfunction(L, wait_run);
	lua_setfield(L, -2, "wait");
}
