/* The event loop: one libcurl multi handle per Lua state, on which every
 * request of that state is a transfer. Transfers never run Lua code (their
 * callbacks fill C buffers); Lua decides when to step the loop. */
#ifndef ISC_LOOP_H
#define ISC_LOOP_H

#include "curl_api.h"
#include "core.h"

typedef struct isc_loop isc_loop;

enum { XFER_IDLE, XFER_RUNNING, XFER_DONE };

/* What the loop knows of a transfer; the first member of its owner's
 * userdata, which the loop keeps referenced while it runs. */
typedef struct isc_xfer {
	CURL *curl;
	isc_loop *loop;              /* NULL once the loop is gone */
	struct isc_xfer *prev, *next; /* the loop's running transfers */
	int ref;                     /* registry reference while running */
	int state;
	CURLcode rc;                 /* libcurl's verdict, once XFER_DONE */
} isc_xfer;

/* The state's loop, made (and libcurl loaded) on first use. */
isc_loop *isc_loop_get(lua_State *L);
/* An easy handle set to the loop's defaults, from its pool when it has one. */
CURL *isc_loop_handle(lua_State *L, isc_loop *lp);
/* Gives x's easy handle back (to the pool, or frees it) and forgets it. */
void isc_loop_release(isc_xfer *x);
/* Starts x (the userdata at idx, whose curl is set up) on the loop. */
void isc_loop_start(lua_State *L, isc_loop *lp, isc_xfer *x, int idx);
/* Takes x off the loop unfinished (done, as aborted); nothing happens if it
 * is not running. */
void isc_loop_cancel(lua_State *L, isc_xfer *x);
/* Runs the loop until a transfer finishes or `seconds` pass; raises the
 * interrupted error when a signal arrives. Returns how many finished. */
int isc_loop_step(lua_State *L, isc_loop *lp, double seconds);

#endif
