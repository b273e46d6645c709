/* Checks of the names that go into certificates.  They are strict on purpose:
 * a CN becomes an identity the daemon authorises, and a SAN is matched by
 * every TLS client, so nothing ambiguous gets in. */
#include <errno.h>
#include <string.h>
#ifdef _WIN32
#include <ws2tcpip.h>
#else
#include <arpa/inet.h>
#endif

#include "certs/certs.h"

/* A copy of s safe to echo in an error: at most 64 chars, non-printables as '?'. */
static const char *shown(const char *s, char out[68])
{
	size_t i = 0;

	for (; s != NULL && s[i] != '\0' && i < 64; i++)
		out[i] = (s[i] >= 0x20 && s[i] <= 0x7e) ? s[i] : '?';
	if (s != NULL && s[i] != '\0') {
		memcpy(out + i, "...", 3);
		i += 3;
	}
	out[i] = '\0';
	return out;
}

static bool ldh_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '-';
}

/* One label of at most 63 letters, digits or hyphens, no hyphen at the ends. */
static bool label_ok(const char *s, size_t n)
{
	if (n == 0 || n > 63 || s[0] == '-' || s[n - 1] == '-')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!ldh_char(s[i]))
			return false;
	return true;
}

int pki_check_host(const char *host, struct bh_err *err)
{
	size_t len = host ? strlen(host) : 0;
	const char *s = host;
	char tmp[68];

	if (len == 0 || len > 253)
		return bh_err_set(err, EINVAL, "invalid host name \"%s\": length must be 1-253",
		                  shown(host, tmp));
	if (bh_str_has_prefix(s, "*.")) /* a wildcard only as the whole first label */
		s += 2;
	for (;;) {
		const char *dot = strchr(s, '.');
		size_t n = dot ? (size_t)(dot - s) : strlen(s);

		if (!label_ok(s, n))
			return bh_err_set(err, EINVAL,
			                  "invalid host name \"%s\": use letters, digits, '-' "
			                  "and '.' (labels of 1-63, no '-' at either end)",
			                  shown(host, tmp));
		if (dot == NULL)
			return 0;
		s = dot + 1;
	}
}

int pki_check_ip(const char *ip, struct bh_err *err)
{
	unsigned char raw[16];
	char tmp[68];

	if (ip != NULL && strlen(ip) < 64 &&
	    (inet_pton(AF_INET, ip, raw) == 1 || inet_pton(AF_INET6, ip, raw) == 1))
		return 0;
	return bh_err_set(err, EINVAL, "invalid IP address \"%s\": want IPv4 or IPv6 text",
	                  shown(ip, tmp));
}

int pki_check_name(const char *name, struct bh_err *err)
{
	size_t len = name ? strlen(name) : 0;
	char tmp[68];

	if (len == 0 || len > PKI_MAX_NAME)
		return bh_err_set(err, EINVAL, "invalid name \"%s\": length must be 1-%d",
		                  shown(name, tmp), PKI_MAX_NAME);
	if (name[0] == ' ' || name[len - 1] == ' ')
		return bh_err_set(err, EINVAL, "invalid name \"%s\": no leading or trailing spaces",
		                  name);
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)name[i];

		/* DN syntax characters would let a name forge extra RDNs. */
		if (c < 0x20 || c > 0x7e || strchr(",=+\\\"<>;#/", c) != NULL)
			return bh_err_set(err, EINVAL,
			                  "invalid name \"%s\": only printable ASCII without "
			                  ",=+\\\"<>;#/",
			                  shown(name, tmp));
	}
	return 0;
}
