/* Fuzz target: a configuration file. Invariants: an error always comes
 * with a one-line message naming the file and line; a file that loads
 * writes out (ctd -t -v) as a file that loads again to the same
 * settings, so what ctd prints is what it runs. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctd/config/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *settings_text(const struct ctd_config *cfg, size_t *len)
{
	char *text = NULL;
	FILE *f = open_memstream(&text, len);

	if (!f)
		abort();
	ctd_config_write(cfg, f);
	if (fclose(f) != 0)
		abort();
	return text;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct ctd_config cfg, again;
	char err[CTD_CONFIG_ERR_MAX] = "";
	char *text, *text2;
	size_t len, len2;
	FILE *f;
	int r;

	if (size > 65536)
		return -1;
	ctd_config_defaults(&cfg);
	f = fmemopen((void *)data, size ? size : 1, "r");
	if (!f)
		abort();
	r = size ? ctd_config_read(&cfg, f, "fuzz.conf", err, sizeof(err)) : 0;
	fclose(f);
	if (r < 0) {
		if (strncmp(err, "fuzz.conf:", 10) != 0 || strchr(err, '\n'))
			abort();
		return 0;
	}
	ctd_config_finish(&cfg);
	text = settings_text(&cfg, &len);
	ctd_config_defaults(&again);
	f = fmemopen(text, len, "r");
	if (!f || ctd_config_read(&again, f, "out.conf", err, sizeof(err)) < 0)
		abort();
	fclose(f);
	ctd_config_finish(&again);
	text2 = settings_text(&again, &len2);
	if (len != len2 || memcmp(text, text2, len) != 0)
		abort();
	free(text);
	free(text2);
	return 0;
}
