/* The Lua sources compiled into the isclua binary (build/embedded.c). */
#ifndef ISC_EMBEDDED_H
#define ISC_EMBEDDED_H
#include <stddef.h>

struct isc_embedded {
	const char *name;  /* module name, e.g. "isc.roles" */
	const char *chunk; /* chunk name, e.g. "@lua/isc/roles.lua" */
	const char *src;
	size_t len;
};

extern const struct isc_embedded isc_embedded[];
#endif
