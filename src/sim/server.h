/* isc.sim.server: the simulated tenant's HTTP/1.1 server, a native module of
 * its own so that the client's isc.core does not carry it. Linked into the
 * isclua host and built as isc/sim/server.so for stock lua5.4. */
#ifndef ISC_SIM_SERVER_H
#define ISC_SIM_SERVER_H

#include <stddef.h>

#include <lua.h>

int luaopen_isc_sim_server(lua_State *L);

/* The request reader (reader.c) without a socket or a handler, for the fuzz
 * target: reads the requests in data[0, len) as a connection does when each
 * recv brings step bytes. Pushes the list of request tables the handler
 * would get, and returns 0, or the status the server would refuse the next
 * request with. Stops after a request that ends the connection. */
int isc_server_parse(lua_State *L, const char *data, size_t len, size_t step, size_t max_body);

#endif
