/* libcurl, loaded on first use. Linking it would make every start-up map
 * and relocate it and the thirty-odd libraries it pulls in (TLS, HTTP/2,
 * LDAP, Kerberos...), which costs more than starting Lua itself; a run that
 * makes no request (--help, the prompt, isclua sim) should not pay that. */
#ifndef ISC_CURL_API_H
#define ISC_CURL_API_H

#include <curl/curl.h>
#include <lua.h>

/* The libcurl functions isclua calls, resolved from the library. */
typedef struct {
	CURLcode (*global_init)(long flags);
	curl_version_info_data *(*version_info)(CURLversion);
	CURL *(*easy_init)(void);
	void (*easy_cleanup)(CURL *);
	void (*easy_reset)(CURL *);
	CURLcode (*easy_setopt)(CURL *, CURLoption, ...);
	CURLcode (*easy_getinfo)(CURL *, CURLINFO, ...);
	const char *(*easy_strerror)(CURLcode);
	struct curl_slist *(*slist_append)(struct curl_slist *, const char *);
	void (*slist_free_all)(struct curl_slist *);
	CURLM *(*multi_init)(void);
	CURLMcode (*multi_cleanup)(CURLM *);
	CURLMcode (*multi_add_handle)(CURLM *, CURL *);
	CURLMcode (*multi_remove_handle)(CURLM *, CURL *);
	CURLMcode (*multi_perform)(CURLM *, int *running);
	CURLMcode (*multi_poll)(CURLM *, struct curl_waitfd *, unsigned, int timeout_ms, int *numfds);
	CURLMsg *(*multi_info_read)(CURLM *, int *left);
	const char *(*multi_strerror)(CURLMcode);
	CURLSH *(*share_init)(void);
	CURLSHcode (*share_setopt)(CURLSH *, CURLSHoption, ...);
	CURLSHcode (*share_cleanup)(CURLSH *);
} isc_curl_api;

/* Valid once isc_curl_load has returned. */
extern isc_curl_api isc_curl;

/* Loads libcurl and runs its global set-up, once per process whichever
 * thread or state asks first; raises a "config" error saying what to
 * install when the library cannot be loaded. */
void isc_curl_load(lua_State *L);

#endif
