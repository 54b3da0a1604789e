/* The event loop (loop.h): libcurl's multi interface, with a pool of easy
 * handles, TLS sessions and DNS answers shared by all transfers, and waits
 * that a signal cuts short. Tasks, timers and the order things resume in are
 * Lua's (isc.loop): this file only moves bytes and says what finished. */
#include <math.h>
#include <string.h>

#include "loop.h"

#define LOOP_MT "isc.loop"
#define LOOP_KEY "isc.loop.instance" /* the state's loop, in the registry */
#define POOL_SIZE 16

struct isc_loop {
	CURLM *multi;
	CURLSH *share;
	isc_xfer *running; /* list of the transfers in flight */
	int count;
	CURL *pool[POOL_SIZE];
	int pooled;
};

/* Frees what the loop holds; the transfers still running are dropped (their
 * userdata outlives the loop only at the state's close). */
static int loop_gc(lua_State *L)
{
	isc_loop *lp = luaL_checkudata(L, 1, LOOP_MT);
	if (!lp->multi)
		return 0;
	for (isc_xfer *x = lp->running; x; x = x->next) {
		isc_curl.multi_remove_handle(lp->multi, x->curl);
		x->state = XFER_DONE;
		x->rc = CURLE_ABORTED_BY_CALLBACK;
		x->loop = NULL;
		/* before the share handle goes: a handle using it keeps it alive */
		isc_curl.easy_cleanup(x->curl);
		x->curl = NULL;
	}
	lp->running = NULL;
	for (int i = 0; i < lp->pooled; i++)
		isc_curl.easy_cleanup(lp->pool[i]);
	lp->pooled = 0;
	isc_curl.multi_cleanup(lp->multi);
	isc_curl.share_cleanup(lp->share);
	lp->multi = NULL;
	return 0;
}

isc_loop *isc_loop_get(lua_State *L)
{
	if (lua_getfield(L, LUA_REGISTRYINDEX, LOOP_KEY) == LUA_TUSERDATA) {
		isc_loop *lp = lua_touserdata(L, -1);
		lua_pop(L, 1);
		return lp;
	}
	lua_pop(L, 1);
	isc_curl_load(L);
	isc_loop *lp = lua_newuserdatauv(L, sizeof *lp, 0);
	memset(lp, 0, sizeof *lp);
	if (luaL_newmetatable(L, LOOP_MT)) {
		lua_pushcfunction(L, loop_gc);
		lua_setfield(L, -2, "__gc");
	}
	lua_setmetatable(L, -2);
	lp->multi = isc_curl.multi_init();
	lp->share = isc_curl.share_init();
	if (!lp->multi || !lp->share)
		luaL_error(L, "isc.loop: libcurl cannot make a multi or share handle");
	/* A fresh connection (every change goes on one) resumes a TLS session
	 * instead of a full handshake; single-threaded, so no locks. */
	isc_curl.share_setopt(lp->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
	isc_curl.share_setopt(lp->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
	lua_setfield(L, LUA_REGISTRYINDEX, LOOP_KEY);
	return lp;
}

CURL *isc_loop_handle(lua_State *L, isc_loop *lp)
{
	CURL *h;
	if (lp->pooled > 0) {
		h = lp->pool[--lp->pooled];
		isc_curl.easy_reset(h);
	} else if (!(h = isc_curl.easy_init())) {
		luaL_error(L, "isc.http: cannot create a libcurl handle");
	}
	isc_curl.easy_setopt(h, CURLOPT_SHARE, lp->share);
	return h;
}

void isc_loop_release(isc_xfer *x)
{
	if (!x->curl)
		return;
	isc_loop *lp = x->loop;
	if (lp && lp->multi && lp->pooled < POOL_SIZE)
		lp->pool[lp->pooled++] = x->curl;
	else
		isc_curl.easy_cleanup(x->curl);
	x->curl = NULL;
}

/* Takes x off the multi handle and the running list, and lets its userdata
 * be collected once Lua lets go of it. */
static void detach(lua_State *L, isc_xfer *x, CURLcode rc)
{
	isc_loop *lp = x->loop;
	isc_curl.multi_remove_handle(lp->multi, x->curl);
	if (x->prev)
		x->prev->next = x->next;
	else
		lp->running = x->next;
	if (x->next)
		x->next->prev = x->prev;
	x->prev = x->next = NULL;
	lp->count--;
	x->state = XFER_DONE;
	x->rc = rc;
	luaL_unref(L, LUA_REGISTRYINDEX, x->ref);
	x->ref = LUA_NOREF;
}

void isc_loop_start(lua_State *L, isc_loop *lp, isc_xfer *x, int idx)
{
	x->loop = lp;
	isc_curl.easy_setopt(x->curl, CURLOPT_PRIVATE, (void *)x);
	CURLMcode mc = isc_curl.multi_add_handle(lp->multi, x->curl);
	if (mc != CURLM_OK)
		luaL_error(L, "isc.loop: %s", isc_curl.multi_strerror(mc));
	lua_pushvalue(L, idx);
	x->ref = luaL_ref(L, LUA_REGISTRYINDEX);
	x->state = XFER_RUNNING;
	x->next = lp->running;
	x->prev = NULL;
	if (lp->running)
		lp->running->prev = x;
	lp->running = x;
	lp->count++;
	/* Sends the request now, so it travels while Lua does other work: on a
	 * kept-alive connection one pass writes it out. */
	int still;
	isc_curl.multi_perform(lp->multi, &still);
}

void isc_loop_cancel(lua_State *L, isc_xfer *x)
{
	if (x->state == XFER_RUNNING && x->loop)
		detach(L, x, CURLE_ABORTED_BY_CALLBACK);
}

/* Marks the transfers libcurl reports finished; returns how many. */
static int reap(lua_State *L, isc_loop *lp)
{
	int n = 0, left;
	CURLMsg *m;
	while ((m = isc_curl.multi_info_read(lp->multi, &left))) {
		if (m->msg != CURLMSG_DONE)
			continue;
		isc_xfer *x = NULL;
		CURLcode rc = m->data.result; /* m dies with the handle's removal */
		isc_curl.easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&x);
		detach(L, x, rc);
		n++;
	}
	return n;
}

int isc_loop_step(lua_State *L, isc_loop *lp, double seconds)
{
	double until = isc_monotonic() + seconds;
	int finished = 0;
	isc_sigsave save;
	isc_signals_enter(&save);
	for (;;) {
		int still;
		isc_curl.multi_perform(lp->multi, &still);
		finished += reap(L, lp);
		double left = until - isc_monotonic();
		if (finished || isc_pending_signal || left <= 0)
			break;
		if (lp->count == 0) {
			isc_wait(-1, left);
			continue;
		}
		/* poll returns at a signal (EINTR), and wakes every 100 ms in case
		 * one came just before it began */
		isc_curl.multi_poll(lp->multi, NULL, 0, (int)ceil(fmin(left, 0.1) * 1000), NULL);
	}
	isc_signals_leave(&save);
	if (isc_pending_signal)
		return isc_raise_interrupted(L);
	return finished;
}

/* core.loop_step(seconds) -> transfers finished: runs the loop until one
 * finishes, the time passes or a signal comes (which raises). */
static int l_loop_step(lua_State *L)
{
	double s = luaL_checknumber(L, 1);
	luaL_argcheck(L, s >= 0 && isfinite(s), 1, "seconds must be a finite number >= 0");
	lua_pushinteger(L, isc_loop_step(L, isc_loop_get(L), s));
	return 1;
}

/* core.loop_running() -> transfers in flight */
static int l_loop_running(lua_State *L)
{
	lua_getfield(L, LUA_REGISTRYINDEX, LOOP_KEY);
	isc_loop *lp = lua_touserdata(L, -1);
	lua_pushinteger(L, lp && lp->multi ? lp->count : 0);
	return 1;
}

void isc_open_loop(lua_State *L)
{
	lua_pushcfunction(L, l_loop_step);
	lua_setfield(L, -2, "loop_step");
	lua_pushcfunction(L, l_loop_running);
	lua_setfield(L, -2, "loop_running");
}
