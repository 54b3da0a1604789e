/* libFuzzer target: errors.retry_after(value, now) (lua/isc/errors.lua), the
 * wait a Retry-After header asks for, on any header value. It never raises,
 * and gives nil or a finite number of seconds, not negative. Where the value
 * is what RFC 9110 allows, delay-seconds or an IMF-fixdate, the wait is
 * exactly what C's own reading of it says. */
#include <ctype.h>
#include <math.h>
#include <string.h>
#include <time.h>

#include "fuzz.h"

#define NOW 1700000000 /* 2023-11-14T22:13:20Z */

/* The decimal number in s[0, n), all digits. */
static int number(const char *s, int n)
{
	int v = 0;
	for (int i = 0; i < n; i++)
		v = v * 10 + (s[i] - '0');
	return v;
}

/* Which of the 3-letter names in names s starts with (case-sensitive, as
 * RFC 9110 has them), or -1. */
static int name_index(const char *names, const char *s)
{
	for (int i = 0; names[3 * i]; i++)
		if (!memcmp(names + 3 * i, s, 3))
			return i;
	return -1;
}

/* The time of an IMF-fixdate such as "Sun, 06 Nov 1994 08:49:37 GMT", or -1
 * when s[0, len) is not one. */
static double imf_fixdate(const char *s, size_t len)
{
	static const char shape[] = "aaa, 99 aaa 9999 99:99:99 GMT";
	struct tm tm = {0};
	if (len != sizeof shape - 1)
		return -1;
	for (size_t i = 0; i < len; i++)
		if (shape[i] == '9' ? !isdigit((unsigned char)s[i]) : shape[i] != 'a' && s[i] != shape[i])
			return -1;
	tm.tm_mon = name_index("JanFebMarAprMayJunJulAugSepOctNovDec", s + 8);
	tm.tm_mday = number(s + 5, 2);
	tm.tm_year = number(s + 12, 4) - 1900;
	tm.tm_hour = number(s + 17, 2);
	tm.tm_min = number(s + 20, 2);
	tm.tm_sec = number(s + 23, 2);
	if (name_index("MonTueWedThuFriSatSun", s) < 0 || tm.tm_mon < 0 || tm.tm_mday < 1 ||
	    tm.tm_mday > 31 || tm.tm_hour > 23 || tm.tm_min > 59 || tm.tm_sec > 60)
		return -1;
	return (double)timegm(&tm);
}

/* The wait RFC 9110 gives value[0, len) (delay-seconds of up to 9 digits,
 * to stay within int), or -1 when it is not a valid one. */
static double rfc_wait(const char *value, size_t len)
{
	size_t digits = 0;
	while (digits < len && isdigit((unsigned char)value[digits]))
		digits++;
	if (digits == len && len > 0 && len <= 9)
		return number(value, (int)len);
	double t = imf_fixdate(value, len);
	return t < 0 ? -1 : fmax(0, t - NOW);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	lua_State *L = fuzz_state();
	const char *value = (const char *)data;
	fuzz_require(L, "isc.errors");
	lua_getfield(L, -1, "retry_after");
	lua_pushlstring(L, value, size);
	lua_pushinteger(L, NOW);
	fuzz_call(L, 2, "errors.retry_after");
	double want = rfc_wait(value, size);
	if (lua_isnil(L, -1)) {
		if (want >= 0)
			fuzz_fail("valid Retry-After gives nil, expected %.0f", want);
	} else if (lua_type(L, -1) != LUA_TNUMBER) {
		fuzz_fail("retry_after returned a %s", luaL_typename(L, -1));
	} else {
		double got = lua_tonumber(L, -1);
		if (!isfinite(got) || got < 0)
			fuzz_fail("retry_after gives %g seconds", got);
		if (want >= 0 && got != want)
			fuzz_fail("retry_after gives %.17g, expected %.0f", got, want);
	}
	lua_settop(L, 0);
	return 0;
}
