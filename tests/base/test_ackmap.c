/* Tests for src/base/ackmap.c: plaintext is acknowledged only with the
 * whole ciphertext of the write that carried it, never earlier, also
 * when the ring is full and marks are merged. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "ctd/base/ackmap.h"

static struct ctd_ackmap map;

static void test_nothing_before_a_whole_write(void **state)
{
	(void)state;
	ctd_ackmap_reset(&map);
	/* A handshake (300 bytes) before the first record. */
	ctd_ackmap_note(&map, 1000, 1322);
	ctd_ackmap_note(&map, 3000, 3366);
	assert_int_equal(ctd_ackmap_advance(&map, 0), 0);
	assert_int_equal(ctd_ackmap_advance(&map, 1321), 0);
	assert_int_equal(ctd_ackmap_advance(&map, 1322), 1000);
	assert_int_equal(ctd_ackmap_advance(&map, 3365), 1000);
	assert_int_equal(ctd_ackmap_advance(&map, 3366), 3000);
	/* Acknowledgement only grows; asking again changes nothing. */
	assert_int_equal(ctd_ackmap_advance(&map, 3366), 3000);
	assert_int_equal(ctd_ackmap_advance(&map, 100000), 3000);
}

static void test_reset_is_a_new_stream(void **state)
{
	(void)state;
	ctd_ackmap_reset(&map);
	ctd_ackmap_note(&map, 50, 100);
	assert_int_equal(ctd_ackmap_advance(&map, 100), 50);
	ctd_ackmap_reset(&map);
	assert_int_equal(ctd_ackmap_advance(&map, 100), 0);
	ctd_ackmap_note(&map, 10, 40);
	assert_int_equal(ctd_ackmap_advance(&map, 39), 0);
	assert_int_equal(ctd_ackmap_advance(&map, 40), 10);
}

/* A full ring moves the newest mark: later acknowledgement, never
 * earlier. */
static void test_full_ring_is_coarser_not_wrong(void **state)
{
	uint64_t p = 0, c = 0;

	(void)state;
	ctd_ackmap_reset(&map);
	for (int i = 0; i < CTD_ACKMAP_MARKS + 10; i++)
		ctd_ackmap_note(&map, p += 100, c += 130);
	/* The marks before the last one are exact. */
	assert_int_equal(ctd_ackmap_advance(&map, 130), 100);
	assert_int_equal(ctd_ackmap_advance(&map, 130 * (CTD_ACKMAP_MARKS - 1)),
			 100 * (CTD_ACKMAP_MARKS - 1));
	/* The merged writes come only with the last ciphertext byte. */
	assert_int_equal(ctd_ackmap_advance(&map, c - 1),
			 100 * (CTD_ACKMAP_MARKS - 1));
	assert_int_equal(ctd_ackmap_advance(&map, c), p);
	/* Room again after the head moved on. */
	ctd_ackmap_note(&map, p + 5, c + 30);
	assert_int_equal(ctd_ackmap_advance(&map, c + 30), p + 5);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_nothing_before_a_whole_write),
		cmocka_unit_test(test_reset_is_a_new_stream),
		cmocka_unit_test(test_full_ring_is_coarser_not_wrong),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
