/* filter: conntrackd's Filter section, without its grammar.
 *
 * A flow is recorded when every criterion that is set accepts it:
 * protocol in the set; original source in a "src" prefix (when any) and
 * in no "ignore-src" prefix; the same for the destination; for TCP, the
 * state the record carries in the set; zone in the set; mark & mask ==
 * value; the namespace's name (as records show it: the /run/netns name,
 * "nsid:N" without one, "self" for ctd's own) in the "netns" list and
 * not in the "ignore-netns" one. Addresses are compared as the kernel keys them: IPv4 in the
 * first 4 bytes of a 16-byte field, so a prefix matches only its own
 * family. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "ctd/flows/filter.h"
#include "ctd/flows/record.h"
#include "ctd/kernel/ctevent.h"

struct prefix {
	uint8_t addr[16];
	uint8_t family;
	uint8_t len;             /* bits */
};

struct prefixes {
	struct prefix p[CTD_FILTER_MAX_PREFIXES];
	size_t n;
};

struct names {
	char name[CTD_FILTER_MAX_NETNS][CTD_NETNS_NAME_MAX];
	size_t n;
};

struct ctd_filter {
	uint32_t set;            /* 1 << enum ctd_filter_key */
	uint8_t proto[32];       /* bitmap */
	uint16_t tcp_states;     /* bitmap */
	struct prefixes src, dst, ignore_src, ignore_dst;
	uint16_t zones[CTD_FILTER_MAX_ZONES];
	size_t nzones;
	uint32_t mark, mask;
	struct names netns, ignore_netns;
};

struct ctd_filter *ctd_filter_new(void)
{
	return calloc(1, sizeof(struct ctd_filter));
}

void ctd_filter_free(struct ctd_filter *f)
{
	free(f);
}

bool ctd_filter_active(const struct ctd_filter *f)
{
	return f->set != 0;
}

static bool in_prefix(const struct prefix *p, uint8_t family,
		      const uint8_t *addr)
{
	size_t bytes = p->len / 8;
	unsigned bits = p->len % 8;

	if (p->family != family || memcmp(p->addr, addr, bytes))
		return false;
	return !bits || !((p->addr[bytes] ^ addr[bytes]) & (0xff00u >> bits));
}

static bool in_any(const struct prefixes *ps, uint8_t family,
		   const uint8_t *addr)
{
	for (size_t i = 0; i < ps->n; i++)
		if (in_prefix(&ps->p[i], family, addr))
			return true;
	return false;
}

static bool is_set(const struct ctd_filter *f, enum ctd_filter_key k)
{
	return f->set & 1u << k;
}

static bool zone_ok(const struct ctd_filter *f, uint16_t zone)
{
	for (size_t i = 0; i < f->nzones; i++)
		if (f->zones[i] == zone)
			return true;
	return false;
}

static bool in_names(const struct names *ns, const char *name)
{
	for (size_t i = 0; i < ns->n; i++)
		if (strcmp(ns->name[i], name) == 0)
			return true;
	return false;
}

/* Only when a netns criterion is set: the label costs a copy. */
static bool netns_ok(const struct ctd_filter *f, const struct ctd_record *rec)
{
	char label[CTD_NETNS_NAME_MAX];

	if (!f->netns.n && !f->ignore_netns.n)
		return true;
	if (rec->nsid == CTD_NSID_SELF)
		strcpy(label, CTD_FILTER_NETNS_SELF);
	else
		ctd_record_netns_label(rec, label, sizeof(label));
	return (!is_set(f, CTD_FILTER_NETNS) || in_names(&f->netns, label)) &&
	       !in_names(&f->ignore_netns, label);
}

bool ctd_filter_match(const struct ctd_filter *f, const struct ctd_record *rec)
{
	const struct ctd_tuple *o = &rec->tuple[CTD_DIR_ORIG];

	if (!f->set)
		return true;
	if (is_set(f, CTD_FILTER_PROTO) &&
	    !(f->proto[rec->proto / 8] & 1u << (rec->proto % 8)))
		return false;
	if ((is_set(f, CTD_FILTER_SRC) && !in_any(&f->src, rec->family, o->src)) ||
	    (is_set(f, CTD_FILTER_DST) && !in_any(&f->dst, rec->family, o->dst)) ||
	    in_any(&f->ignore_src, rec->family, o->src) ||
	    in_any(&f->ignore_dst, rec->family, o->dst))
		return false;
	if (is_set(f, CTD_FILTER_TCP_STATE) && rec->proto == IPPROTO_TCP &&
	    (!(rec->flags & CTD_REC_TCPSTATE) || rec->tcp_state >= 16 ||
	     !(f->tcp_states & 1u << rec->tcp_state)))
		return false;
	if ((is_set(f, CTD_FILTER_ZONE) && !zone_ok(f, rec->zone)) ||
	    !netns_ok(f, rec))
		return false;
	return !is_set(f, CTD_FILTER_MARK) || (rec->mark & f->mask) == f->mark;
}

bool ctd_filter_match_event(const struct ctd_filter *f,
			    const struct ctd_event *ev, const char *netns)
{
	struct ctd_record rec;

	if (!f->set)
		return true;
	/* The record a DESTROY with only these attributes would give. */
	ctd_record_from_destroy(NULL, ev, 0, &rec);
	snprintf(rec.netns, sizeof(rec.netns), "%s", netns ? netns : "");
	return ctd_filter_match(f, &rec);
}

static int parse_u32(const char *s, unsigned long max, uint32_t *ret)
{
	unsigned long v;
	char *end;

	if (!*s || *s == '-')
		return -EINVAL;
	errno = 0;
	v = strtoul(s, &end, 0);
	if (errno || *end || v > max)
		return -EINVAL;
	*ret = (uint32_t)v;
	return 0;
}

static int parse_proto(struct ctd_filter *f, const char *tok)
{
	uint32_t n;

	for (unsigned p = 0; p < 256; p++) {
		const char *name = ctd_proto_name((uint8_t)p);

		if (name && strcmp(name, tok) == 0) {
			f->proto[p / 8] |= (uint8_t)(1u << (p % 8));
			return 0;
		}
	}
	if (parse_u32(tok, 255, &n) < 0)
		return -EINVAL;
	f->proto[n / 8] |= (uint8_t)(1u << (n % 8));
	return 0;
}

static int parse_prefix(struct prefixes *ps, const char *tok)
{
	char addr[64];
	const char *slash = strchr(tok, '/');
	size_t alen = slash ? (size_t)(slash - tok) : strlen(tok);
	struct prefix p = { { 0 }, 0, 0 };
	uint32_t len;
	unsigned max;

	if (ps->n == CTD_FILTER_MAX_PREFIXES || alen >= sizeof(addr))
		return -EINVAL;
	memcpy(addr, tok, alen);
	addr[alen] = '\0';
	if (inet_pton(AF_INET, addr, p.addr) == 1)
		p.family = AF_INET, max = 32;
	else if (inet_pton(AF_INET6, addr, p.addr) == 1)
		p.family = AF_INET6, max = 128;
	else
		return -EINVAL;
	len = max;
	if (slash && parse_u32(slash + 1, max, &len) < 0)
		return -EINVAL;
	p.len = (uint8_t)len;
	ps->p[ps->n++] = p;
	return 0;
}

static int parse_state(struct ctd_filter *f, const char *tok)
{
	for (unsigned s = 0; s < 16; s++) {
		const char *name = ctd_tcp_state_name((uint8_t)s);

		if (name && strcasecmp(name, tok) == 0) {
			f->tcp_states |= (uint16_t)(1u << s);
			return 0;
		}
	}
	return -EINVAL;
}

static int parse_zone(struct ctd_filter *f, const char *tok)
{
	uint32_t z;

	if (f->nzones == CTD_FILTER_MAX_ZONES || parse_u32(tok, 65535, &z) < 0)
		return -EINVAL;
	f->zones[f->nzones++] = (uint16_t)z;
	return 0;
}

/* A name as records show it: /run/netns names are at most
 * CTD_NETNS_NAME_MAX - 1 bytes there (longer ones show as "nsid:N"). */
static int parse_name(struct names *ns, const char *tok)
{
	if (ns->n == CTD_FILTER_MAX_NETNS || strlen(tok) >= CTD_NETNS_NAME_MAX ||
	    strchr(tok, '/') || !strcmp(tok, ".") || !strcmp(tok, ".."))
		return -EINVAL;
	strcpy(ns->name[ns->n++], tok);
	return 0;
}

static int parse_mark(struct ctd_filter *f, const char *text)
{
	char value[32];
	const char *slash = strchr(text, '/');
	size_t n = slash ? (size_t)(slash - text) : strlen(text);

	if (n >= sizeof(value))
		return -EINVAL;
	memcpy(value, text, n);
	value[n] = '\0';
	f->mask = UINT32_MAX;
	if (parse_u32(value, UINT32_MAX, &f->mark) < 0 ||
	    (slash && parse_u32(slash + 1, UINT32_MAX, &f->mask) < 0))
		return -EINVAL;
	f->mark &= f->mask;
	return 0;
}

static int parse_token(struct ctd_filter *f, enum ctd_filter_key key,
		       const char *tok)
{
	switch (key) {
	case CTD_FILTER_PROTO: return parse_proto(f, tok);
	case CTD_FILTER_SRC: return parse_prefix(&f->src, tok);
	case CTD_FILTER_DST: return parse_prefix(&f->dst, tok);
	case CTD_FILTER_IGNORE_SRC: return parse_prefix(&f->ignore_src, tok);
	case CTD_FILTER_IGNORE_DST: return parse_prefix(&f->ignore_dst, tok);
	case CTD_FILTER_TCP_STATE: return parse_state(f, tok);
	case CTD_FILTER_ZONE: return parse_zone(f, tok);
	case CTD_FILTER_NETNS: return parse_name(&f->netns, tok);
	case CTD_FILTER_IGNORE_NETNS: return parse_name(&f->ignore_netns, tok);
	default: return -EINVAL;
	}
}

static void clear(struct ctd_filter *f, enum ctd_filter_key key)
{
	switch (key) {
	case CTD_FILTER_PROTO: memset(f->proto, 0, sizeof(f->proto)); break;
	case CTD_FILTER_SRC: f->src.n = 0; break;
	case CTD_FILTER_DST: f->dst.n = 0; break;
	case CTD_FILTER_IGNORE_SRC: f->ignore_src.n = 0; break;
	case CTD_FILTER_IGNORE_DST: f->ignore_dst.n = 0; break;
	case CTD_FILTER_TCP_STATE: f->tcp_states = 0; break;
	case CTD_FILTER_ZONE: f->nzones = 0; break;
	case CTD_FILTER_NETNS: f->netns.n = 0; break;
	case CTD_FILTER_IGNORE_NETNS: f->ignore_netns.n = 0; break;
	default: f->mark = f->mask = 0; break;
	}
	f->set &= ~(1u << key);
}

static const char *const expected[CTD_FILTER__COUNT] = {
	[CTD_FILTER_PROTO] = "protocol names or numbers (tcp,udp,47)",
	[CTD_FILTER_SRC] = "up to 64 prefixes (10.0.0.0/8,2001:db8::/32)",
	[CTD_FILTER_DST] = "up to 64 prefixes (10.0.0.0/8,2001:db8::/32)",
	[CTD_FILTER_IGNORE_SRC] = "up to 64 prefixes (10.0.0.0/8,2001:db8::/32)",
	[CTD_FILTER_IGNORE_DST] = "up to 64 prefixes (10.0.0.0/8,2001:db8::/32)",
	[CTD_FILTER_TCP_STATE] = "TCP states (ESTABLISHED,TIME_WAIT,CLOSE,...)",
	[CTD_FILTER_ZONE] = "up to 64 zone numbers (0,7)",
	[CTD_FILTER_MARK] = "a mark and optional mask (0x10/0xf0)",
	[CTD_FILTER_NETNS] = "up to 64 namespace names of at most 47 bytes "
			     "(self,qrouter-1,nsid:7)",
	[CTD_FILTER_IGNORE_NETNS] = "up to 64 namespace names of at most 47 "
				    "bytes (self,qrouter-1,nsid:7)",
};

/* Each comma-separated token adds to the criterion; none is an error. */
static int parse_list(struct ctd_filter *f, enum ctd_filter_key key,
		      const char *text)
{
	char buf[1024], *tok, *save;
	int r = -EINVAL;

	if (strlen(text) >= sizeof(buf))
		return -EINVAL;
	strcpy(buf, text);
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
		if ((r = parse_token(f, key, tok)) < 0)
			break;
	return r;
}

int ctd_filter_set(struct ctd_filter *f, enum ctd_filter_key key,
		   const char *text, char *err, size_t errlen)
{
	int r;

	clear(f, key);
	if (strcmp(text, "any") == 0)
		return 0;
	r = key == CTD_FILTER_MARK ? parse_mark(f, text) : parse_list(f, key, text);
	if (r < 0) {
		clear(f, key);
		snprintf(err, errlen, "%s or any", expected[key]);
		return -EINVAL;
	}
	f->set |= 1u << key;
	return 0;
}
