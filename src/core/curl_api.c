/* Loads libcurl with dlopen the first time a request needs it (curl_api.h
 * says why), and resolves the functions isclua calls. */
#include <dlfcn.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"
#include "curl_api.h"

isc_curl_api isc_curl;

/* The sonames Debian's libcurl packages install, most usual first. */
static const char *const libraries[] = {"libcurl.so.4", "libcurl-gnutls.so.4", "libcurl.so", NULL};

static const struct {
	const char *name;
	size_t offset;
} symbols[] = {
#define SYM(field) {"curl_" #field, offsetof(isc_curl_api, field)}
	SYM(global_init), SYM(version_info), SYM(easy_init), SYM(easy_cleanup), SYM(easy_reset),
	SYM(easy_setopt), SYM(easy_getinfo), SYM(easy_strerror), SYM(slist_append),
	SYM(slist_free_all), SYM(multi_init), SYM(multi_cleanup), SYM(multi_add_handle),
	SYM(multi_remove_handle), SYM(multi_perform), SYM(multi_poll), SYM(multi_info_read),
	SYM(multi_strerror), SYM(share_init), SYM(share_setopt), SYM(share_cleanup),
#undef SYM
};

/* Why the load failed, for every state that asks; NULL once it worked. */
static char failure[512] = "libcurl was never loaded";
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void load(void)
{
	/* ISCLUA_LIBCURL names it where it has another name or place */
	const char *chosen = getenv("ISCLUA_LIBCURL");
	void *lib = NULL;
	if (chosen && *chosen)
		lib = dlopen(chosen, RTLD_NOW | RTLD_LOCAL);
	for (const char *const *name = libraries; !(chosen && *chosen) && *name && !lib; name++)
		lib = dlopen(*name, RTLD_NOW | RTLD_LOCAL);
	if (!lib) {
		snprintf(failure, sizeof failure, "cannot load libcurl (%s); install it: apt-get install libcurl4",
		         dlerror());
		return;
	}
	for (size_t i = 0; i < sizeof symbols / sizeof symbols[0]; i++) {
		void *f = dlsym(lib, symbols[i].name);
		if (!f) {
			snprintf(failure, sizeof failure, "the libcurl found lacks %s (isclua needs 7.68 or later)",
			         symbols[i].name);
			return;
		}
		/* POSIX guarantees a function pointer round-trips through void * */
		memcpy((char *)&isc_curl + symbols[i].offset, &f, sizeof f);
	}
	if (isc_curl.global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		snprintf(failure, sizeof failure, "libcurl's global set-up failed");
		return;
	}
	failure[0] = '\0';
}

void isc_curl_load(lua_State *L)
{
	pthread_once(&once, load);
	if (failure[0])
		isc_raise(L, "config", "%s", failure);
}
