/* out_stream: JSON lines to local readers on a Unix stream socket. Owns
 * the listening socket, its path, and every connected reader with its
 * write buffer. A record is taken only when every reader has room for
 * it, so a slow reader holds records back (on the retry list) instead
 * of losing them, and no reader ever gets one twice. */
#ifndef CTD_OUT_STREAM_H
#define CTD_OUT_STREAM_H

#include <sys/types.h>

struct ctd_output;
struct ctd_output_desc;
struct ctd_setting_group;
struct ev_loop;

#define CTD_STREAM_MAX_READERS 16

/* Readers: root, and members of group unless it is (gid_t)-1; others
 * are refused (counted in refused). */
int ctd_out_stream_new(struct ev_loop *loop, const char *path, gid_t group,
		       struct ctd_output **ret);

/* The table's row (outputs.h): `stream`, events from `stream-events`. */
extern const struct ctd_output_desc ctd_out_stream_desc;
extern const struct ctd_setting_group ctd_out_stream_settings;

#endif
