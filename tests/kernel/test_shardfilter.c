/* shardfilter: every program runs here through a small classic BPF
 * interpreter (the opcodes the programs use, the kernel's SKF_AD_NLATTR
 * emulated as nla_find from offset A) over ctnetlink messages laid out as
 * the kernel sends them. For every shard count up to the maximum, every
 * id tried lands in exactly one shard, the one ctd_shardfilter_shard
 * names: disjoint and complete. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <arpa/inet.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <linux/netlink.h>
#include <cmocka.h>

#include "ctd/kernel/shardfilter.h"

struct msg {
	uint8_t b[128];
	uint32_t len;
};

static void put_attr(struct msg *m, uint16_t type, const void *data,
		     uint16_t len)
{
	struct nlattr a = { .nla_len = (uint16_t)(NLA_HDRLEN + len),
			    .nla_type = type };

	memcpy(m->b + m->len, &a, sizeof(a));
	memcpy(m->b + m->len + NLA_HDRLEN, data, len);
	m->len += NLA_ALIGN(a.nla_len);
}

/* A DESTROY as the kernel lays it out: header, nfgenmsg, a nested tuple
 * and the status before the id (when it has one), the id big-endian. */
static void make_msg(struct msg *m, bool has_id, uint32_t id)
{
	uint32_t be = htonl(id), status = htonl(0x18e);
	uint8_t tuple[12] = { 0 };

	memset(m, 0, sizeof(*m));
	m->len = NLMSG_HDRLEN + sizeof(struct nfgenmsg);
	put_attr(m, CTA_TUPLE_ORIG | NLA_F_NESTED, tuple, sizeof(tuple));
	put_attr(m, CTA_STATUS, &status, sizeof(status));
	if (has_id)
		put_attr(m, CTA_ID, &be, sizeof(be));
	put_attr(m, CTA_USE, &status, sizeof(status));
	((struct nlmsghdr *)m->b)->nlmsg_len = m->len;
}

/* The kernel's SKF_AD_NLATTR: offset of attribute x from offset a. */
static uint32_t nlattr_at(const struct msg *m, uint32_t a, uint32_t x)
{
	uint32_t off = a;

	if (m->len < NLA_HDRLEN || a > m->len - NLA_HDRLEN)
		return 0;
	while (off + NLA_HDRLEN <= m->len) {
		struct nlattr at;

		memcpy(&at, m->b + off, sizeof(at));
		if (at.nla_len < NLA_HDRLEN || off + at.nla_len > m->len)
			return 0;
		if ((at.nla_type & NLA_TYPE_MASK) == x)
			return off;
		off += NLA_ALIGN(at.nla_len);
	}
	return 0;
}

static uint32_t load_word(const struct msg *m, uint32_t at, bool *ok)
{
	uint32_t w;

	*ok = at + 4 <= m->len;
	if (!*ok)
		return 0;
	memcpy(&w, m->b + at, 4);
	return ntohl(w);
}

/* Runs prog over m; fails the test on an opcode it does not know. */
static uint32_t run(const struct sock_filter *prog, size_t len,
		    const struct msg *m)
{
	uint32_t a = 0, x = 0;
	bool ok;

	for (size_t pc = 0; pc < len; pc++) {
		const struct sock_filter *f = &prog[pc];

		switch (f->code) {
		case BPF_LD | BPF_IMM: a = f->k; break;
		case BPF_LDX | BPF_IMM: x = f->k; break;
		case BPF_MISC | BPF_TAX: x = a; break;
		case BPF_ALU | BPF_MOD | BPF_K: a %= f->k; break;
		case BPF_RET | BPF_K: return f->k;
		case BPF_LD | BPF_B | BPF_ABS:
			assert_int_equal(f->k, (uint32_t)(SKF_AD_OFF + SKF_AD_NLATTR));
			a = nlattr_at(m, a, x);
			break;
		case BPF_LD | BPF_W | BPF_IND:
			a = load_word(m, x + f->k, &ok);
			if (!ok)
				return 0;
			break;
		case BPF_JMP | BPF_JEQ | BPF_K:
			pc += a == f->k ? f->jt : f->jf;
			break;
		default:
			fail_msg("opcode %#x at %zu", f->code, pc);
		}
	}
	fail_msg("ran off the end of the program");
	return 0;
}

/* The shards that keep m (a bitmask), each keeping all of it. */
static uint64_t keepers(const struct msg *m, unsigned n)
{
	struct sock_filter prog[CTD_SHARDFILTER_LEN];
	uint64_t mask = 0;

	for (unsigned k = 0; k < n; k++) {
		uint32_t r;

		assert_int_equal(ctd_shardfilter_build(k, n, prog), 0);
		r = run(prog, CTD_SHARDFILTER_LEN, m);
		assert_true(r == 0 || r >= m->len);
		if (r)
			mask |= 1ull << k;
	}
	return mask;
}

static void expect_one(uint32_t id, unsigned n)
{
	struct msg m;

	make_msg(&m, true, id);
	assert_int_equal(keepers(&m, n), 1ull << ctd_shardfilter_shard(id, n));
}

/* Every residue of every shard count, at both ends of the id range and
 * in between, then a spread of ids: each in exactly its shard. */
static void test_disjoint_and_complete(void **state)
{
	uint32_t id = 2463534242u;

	(void)state;
	for (unsigned n = 1; n <= CTD_SHARDS_MAX; n++) {
		for (unsigned r = 0; r < n; r++) {
			expect_one(r, n);
			expect_one(UINT32_MAX - r, n);
			expect_one(0x80000000u + r, n);
		}
		for (int i = 0; i < 2000; i++) {
			id ^= id << 13;
			id ^= id >> 17;
			id ^= id << 5;
			expect_one(id, n);
		}
	}
}

/* One id in every 262,139 across all 2^32, for the counts a box uses. */
static void test_sweep(void **state)
{
	static const unsigned counts[] = { 2, 3, 4, 8 };

	(void)state;
	for (size_t c = 0; c < sizeof(counts) / sizeof(*counts); c++)
		for (uint64_t id = 0; id <= UINT32_MAX; id += 262139)
			expect_one((uint32_t)id, counts[c]);
}

static void test_no_id_goes_to_shard_zero(void **state)
{
	struct msg m;

	(void)state;
	make_msg(&m, false, 0);
	for (unsigned n = 1; n <= CTD_SHARDS_MAX; n++)
		assert_int_equal(keepers(&m, n), 1);
}

static void test_bad_counts(void **state)
{
	struct sock_filter prog[CTD_SHARDFILTER_LEN];

	(void)state;
	assert_int_equal(ctd_shardfilter_build(0, 0, prog), -EINVAL);
	assert_int_equal(ctd_shardfilter_build(2, 2, prog), -EINVAL);
	assert_int_equal(ctd_shardfilter_build(0, CTD_SHARDS_MAX + 1, prog),
			 -EINVAL);
	assert_int_equal(ctd_shardfilter_attach(-1, 3, 2), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_disjoint_and_complete),
		cmocka_unit_test(test_sweep),
		cmocka_unit_test(test_no_id_goes_to_shard_zero),
		cmocka_unit_test(test_bad_counts),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
