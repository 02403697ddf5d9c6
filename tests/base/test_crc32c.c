/* Tests for src/base/crc32c.c: the check values of CRC-32C (RFC 3720,
 * B.4: 32 bytes of zeros, of ones, ascending and descending; "123456789"
 * from the CRC catalogue), the same from the instruction and the table
 * at every length and alignment, and parts fed one after another equal
 * to the whole. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "ctd/base/crc32c.h"

static void test_check_values(void **state)
{
	uint8_t b[32];

	(void)state;
	assert_int_equal(ctd_crc32c(0, "123456789", 9), 0xe3069283);
	memset(b, 0, sizeof(b));
	assert_int_equal(ctd_crc32c(0, b, 32), 0x8a9136aa);
	memset(b, 0xff, sizeof(b));
	assert_int_equal(ctd_crc32c(0, b, 32), 0x62a8ab43);
	for (int i = 0; i < 32; i++)
		b[i] = (uint8_t)i;
	assert_int_equal(ctd_crc32c(0, b, 32), 0x46dd794e);
	for (int i = 0; i < 32; i++)
		b[i] = (uint8_t)(31 - i);
	assert_int_equal(ctd_crc32c(0, b, 32), 0x113fdb5c);
	assert_int_equal(ctd_crc32c(0, b, 0), 0);
}

static void test_table_and_parts(void **state)
{
	uint8_t b[300];

	(void)state;
	for (size_t i = 0; i < sizeof(b); i++)
		b[i] = (uint8_t)(i * 131 + 7);
	for (size_t off = 0; off < 8; off++)
		for (size_t len = 0; len + off <= sizeof(b); len += 13) {
			uint32_t whole = ctd_crc32c(0, b + off, len);
			size_t cut = len / 3;

			assert_int_equal(ctd_crc32c_table(0, b + off, len), whole);
			assert_int_equal(ctd_crc32c(ctd_crc32c(0, b + off, cut),
						    b + off + cut, len - cut),
					 whole);
		}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_check_values),
		cmocka_unit_test(test_table_and_parts),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
