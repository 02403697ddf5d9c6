/* Tests for src/connlabel.c: a connlabel.conf read as
 * libnetfilter_conntrack reads it (comments, hex bit numbers, trimmed
 * names, first definition wins, unusable lines counted), from a real
 * file and from none; the bit layout of a ctnetlink label bitmap. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "ctd/kernel/connlabel.h"
#include "tmpdir.h"

static size_t read_text(struct ctd_connlabel *m, const char *text)
{
	FILE *f = fmemopen((void *)text, strlen(text), "r");
	size_t skipped;

	assert_non_null(f);
	skipped = ctd_connlabel_read(m, f);
	fclose(f);
	return skipped;
}

static void test_syntax(void **state)
{
	struct ctd_connlabel *m = ctd_connlabel_new();

	(void)state;
	assert_non_null(m);
	assert_int_equal(read_text(m,
		"# comment\n"
		"\n"
		"0\teth0-in\n"
		"1 web  \n"
		"  0x10   vpn customer-a\r\n"
		"7\n"                      /* no name */
		"word\n"                   /* no number */
		"1 other\n"                /* bit 1 taken: the first wins */
		"2 web\n"                  /* name taken */
		"3 semi;colon\n"           /* not a sane name */
		"128 too-high\n"
		"4 a-name-of-33-characters-is-longer\n"
		"5 a-name-of-32-characters-is-fine1\n"
		"127 last"),               /* no newline at the end */
		7);
	assert_string_equal(ctd_connlabel_name(m, 0), "eth0-in");
	assert_string_equal(ctd_connlabel_name(m, 1), "web");
	assert_string_equal(ctd_connlabel_name(m, 16), "vpn customer-a");
	assert_string_equal(ctd_connlabel_name(m, 5),
			    "a-name-of-32-characters-is-fine1");
	assert_string_equal(ctd_connlabel_name(m, 127), "last");
	assert_null(ctd_connlabel_name(m, 2));
	assert_null(ctd_connlabel_name(m, 3));
	assert_null(ctd_connlabel_name(m, 4));
	assert_null(ctd_connlabel_name(m, 7));
	assert_null(ctd_connlabel_name(m, 128));
	assert_int_equal(ctd_connlabel_count(m), 5);
	ctd_connlabel_free(m);
}

/* A line longer than libnetfilter_conntrack's buffer is one unused
 * line, and the next line still counts. */
static void test_long_line(void **state)
{
	struct ctd_connlabel *m = ctd_connlabel_new();
	char text[3000];

	(void)state;
	memset(text, 'a', sizeof(text));
	memcpy(text, "9 ", 2);
	strcpy(text + 2000, "\n8 after\n");
	assert_int_equal(read_text(m, text), 1);
	assert_null(ctd_connlabel_name(m, 9));
	assert_string_equal(ctd_connlabel_name(m, 8), "after");
	ctd_connlabel_free(m);
}

static void test_file(void **state)
{
	char dir[TMPDIR_MAX], path[TMPDIR_MAX + 32];
	struct ctd_connlabel *m = ctd_connlabel_new();
	size_t skipped = 99;
	FILE *f;

	(void)state;
	tmpdir_make(dir, "connlabel");
	snprintf(path, sizeof(path), "%s/connlabel.conf", dir);
	assert_int_equal(ctd_connlabel_load(m, path, &skipped), -ENOENT);
	assert_int_equal(skipped, 99);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("# names\n5 web\n100 blocked\nbad\n", f);
	fclose(f);
	assert_int_equal(ctd_connlabel_load(m, path, &skipped), 0);
	assert_int_equal(skipped, 1);
	assert_string_equal(ctd_connlabel_name(m, 5), "web");
	assert_string_equal(ctd_connlabel_name(m, 100), "blocked");
	assert_int_equal(ctd_connlabel_count(m), 2);
	ctd_connlabel_free(m);
	tmpdir_remove(dir);
}

/* An empty table names nothing; NULL (record-labels off) neither. */
static void test_empty(void **state)
{
	struct ctd_connlabel *m = ctd_connlabel_new();

	(void)state;
	for (unsigned b = 0; b < CTD_CONNLABEL_BITS; b++)
		assert_null(ctd_connlabel_name(m, b));
	assert_int_equal(ctd_connlabel_count(m), 0);
	assert_null(ctd_connlabel_name(NULL, 0));
	ctd_connlabel_free(m);
	ctd_connlabel_free(NULL);
}

/* CTA_LABELS is the kernel's bitmap of host-order words: on this
 * (little-endian) machine bit N is bit N % 8 of byte N / 8. */
static void test_bits(void **state)
{
	uint8_t labels[16] = { 0 };
	uint32_t words[4] = { 1u << 5, 0, 0, 1u << 31 };

	(void)state;
	assert_false(ctd_connlabel_any(labels));
	memcpy(labels, words, sizeof(labels));
	assert_true(ctd_connlabel_any(labels));
	for (unsigned b = 0; b < CTD_CONNLABEL_BITS + 8; b++)
		assert_int_equal(ctd_connlabel_test(labels, b), b == 5 || b == 127);
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	assert_int_equal(labels[0], 0x20);
	assert_int_equal(labels[15], 0x80);
#endif
}

/* The system's file, whatever this machine has: a table either way. */
static void test_system(void **state)
{
	struct ctd_connlabel *m = NULL;
	const char *path = "unset";
	size_t skipped;

	(void)state;
	assert_int_equal(ctd_connlabel_system(&m, &path, &skipped), 0);
	assert_non_null(m);
	if (!path)
		assert_int_equal(ctd_connlabel_count(m), 0);
	else
		assert_true(strstr(path, "connlabel.conf") != NULL);
	ctd_connlabel_free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_syntax),
		cmocka_unit_test(test_long_line),
		cmocka_unit_test(test_file),
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_bits),
		cmocka_unit_test(test_system),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
