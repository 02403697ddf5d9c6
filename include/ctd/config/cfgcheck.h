/* cfgcheck: what a configuration needs from the system, checked before
 * anything is opened: the user and groups it names exist, its Unix
 * socket paths fit in sun_path, and the directories its files go into
 * exist (or, for ctd's own defaults, can be created). `ctd -t` and the
 * daemon's start run the same function, so a configuration -t calls OK
 * does not stop the start on any of these. Owns nothing. */
#ifndef CTD_CFGCHECK_H
#define CTD_CFGCHECK_H

#include <stdbool.h>
#include <stddef.h>

struct ctd_check;
struct ctd_cli;
struct ctd_config;
struct ctd_tls_files;

/* One problem: a line naming the setting and where it was set
 * ("ctd.conf:4: user: no user 'flows'"). */
typedef void ctd_cfgcheck_fn(void *arg, const char *problem);

/* Calls fn once per problem; returns how many there were. */
size_t ctd_cfgcheck(const struct ctd_config *cfg, ctd_cfgcheck_fn *fn,
		    void *arg);
/* The same, each problem logged as an error (the daemon's start). */
size_t ctd_cfgcheck_log(const struct ctd_config *cfg);
/* `ctd -t`: the problems on stderr, or the OK line (and with -v the
 * settings in effect) on stdout. Returns the exit status. */
int ctd_cfgcheck_main(const struct ctd_cli *cli, const struct ctd_config *cfg);

/* For an output's check (setting.h): the configuration checked, one
 * problem about key ("what" then value), and the common checks. */
const struct ctd_config *ctd_check_config(const struct ctd_check *c);
void ctd_check_problem(struct ctd_check *c, const char *key, const char *what,
		       const char *value);
/* path's directory exists; with creatable it is a default directory
 * ctd makes itself, so its parent must. */
void ctd_check_dir(struct ctd_check *c, const char *key, const char *path,
		   bool creatable);
/* A Unix socket path that fits sun_path. */
void ctd_check_socket(struct ctd_check *c, const char *key, const char *path);
/* Group name exists, where socket is set. */
void ctd_check_group(struct ctd_check *c, const char *key, const char *name,
		     const char *socket);
/* A key only its owner reads, and files OpenSSL accepts (a server's
 * or a client's context); a problem names the setting of the file it is
 * about: names are the settings of f's ca, cert and key. */
void ctd_check_tls_files(struct ctd_check *c, const struct ctd_tls_files *f,
			 const char *const names[3], bool server);

#endif
