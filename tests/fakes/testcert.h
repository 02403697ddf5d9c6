/* testcert: a throw-away PKI for unit tests, made with OpenSSL's API (no
 * openssl command, no network): a CA, a server certificate for
 * 127.0.0.1 and a client certificate, as PEM files in a directory. */
#ifndef CTD_TEST_TESTCERT_H
#define CTD_TEST_TESTCERT_H

/* Writes DIR/ca.pem, DIR/server.pem, DIR/server.key, DIR/client.pem,
 * DIR/client.key (keys mode 600), and DIR/otherca.pem (a CA that signed
 * nothing here); aborts the test on failure. */
void testcert_make(const char *dir);

#endif
