/* conninfo: hides the passwords of a PostgreSQL connection string.
 *
 * libpq takes two syntaxes (its manual, "Connection Strings"): keyword
 * = value pairs, a value bare or in single quotes with \' and \\, and
 * a postgresql:// URI with user:password@ and ?keyword=value&...
 * Both are walked here token by token and copied, except the value of a
 * keyword naming a password (password, sslpassword) and the URI's
 * password, written as CTD_CONNINFO_HIDDEN. A string that does not
 * parse is still masked as far as it goes: the point is that no secret
 * reaches a terminal or the journal, not to validate (libpq does). */
#include <stdbool.h>
#include <string.h>

#include "ctd/config/conninfo.h"

struct out {
	char *buf;
	size_t len, pos;
};

static void put(struct out *o, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++, o->pos++)
		if (o->pos + 1 < o->len)
			o->buf[o->pos] = s[i];
}

static void put_str(struct out *o, const char *s)
{
	put(o, s, strlen(s));
}

static bool secret_key(const char *key, size_t n)
{
	return n >= 8 && memcmp(key + n - 8, "password", 8) == 0;
}

/* The end of a keyword's value: quoted with escapes, or bare to the
 * next blank (a backslash escapes there too). */
static const char *value_end(const char *p)
{
	bool quoted = *p == '\'';

	for (p += quoted; *p; p++) {
		if (*p == '\\' && p[1]) {
			p++;
			continue;
		}
		if (quoted ? *p == '\'' : strchr(" \t\n\r\f\v", *p) != NULL)
			return p + quoted;
	}
	return p;
}

/* One "key = value" and the blanks before it; returns what follows. */
static const char *keyword(struct out *o, const char *p)
{
	const char *key, *end;
	size_t klen;

	end = p + strspn(p, " \t\n\r\f\v");
	key = end;
	klen = strcspn(key, "= \t\n\r\f\v");
	end = key + klen;
	end += strspn(end, " \t\n\r\f\v");
	if (*end != '=') {
		end += *end != '\0';
		put(o, p, (size_t)(end - p));
		return end;
	}
	end++;
	end += strspn(end, " \t\n\r\f\v");
	put(o, p, (size_t)(end - p));
	p = end;
	end = value_end(p);
	if (secret_key(key, klen))
		put_str(o, CTD_CONNINFO_HIDDEN);
	else
		put(o, p, (size_t)(end - p));
	return end;
}

/* user[:password]@: libpq ends the user part at the first @ or /. */
static const char *uri_user(struct out *o, const char *p)
{
	size_t n = strcspn(p, "@/");
	const char *colon = memchr(p, ':', n);

	if (p[n] != '@' || !colon)
		return p;
	put(o, p, (size_t)(colon + 1 - p));
	put_str(o, CTD_CONNINFO_HIDDEN);
	return p + n;
}

/* ?a=b&c=d: each parameter as a keyword would be. */
static void uri_params(struct out *o, const char *p)
{
	while (*p) {
		size_t n = strcspn(p, "&"), k = strcspn(p, "=&");

		put(o, p, k < n ? k + 1 : n);
		if (k < n && secret_key(p, k))
			put_str(o, CTD_CONNINFO_HIDDEN);
		else if (k < n)
			put(o, p + k + 1, n - k - 1);
		p += n;
		if (*p)
			put(o, p++, 1);
	}
}

static bool uri_scheme(const char *s, size_t *ret_len)
{
	static const char *const schemes[] = { "postgresql://", "postgres://" };

	for (size_t i = 0; i < 2; i++) {
		*ret_len = strlen(schemes[i]);
		if (strncmp(s, schemes[i], *ret_len) == 0)
			return true;
	}
	return false;
}

static void uri(struct out *o, const char *s, size_t scheme)
{
	const char *p;
	size_t n;

	put(o, s, scheme);
	p = uri_user(o, s + scheme);
	n = strcspn(p, "?");
	put(o, p, n);
	if (p[n] == '?') {
		put(o, "?", 1);
		uri_params(o, p + n + 1);
	}
}

size_t ctd_conninfo_mask(const char *conninfo, char *buf, size_t len)
{
	struct out o = { buf, len, 0 };
	size_t scheme;

	if (uri_scheme(conninfo, &scheme))
		uri(&o, conninfo, scheme);
	else
		for (const char *p = conninfo; *p;)
			p = keyword(&o, p);
	if (len)
		buf[o.pos < len ? o.pos : len - 1] = '\0';
	return o.pos;
}
