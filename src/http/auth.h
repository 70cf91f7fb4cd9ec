/*
 * http/auth.h -- who is calling: roles, principals, API tokens.
 *
 * A token is "fw_" followed by 43 characters of base64url (32 bytes from
 * the kernel's CSPRNG); the prefix makes a leaked token recognisable to
 * people and secret scanners.  Only the SHA-256 of the whole text is
 * stored.  Presented tokens are hashed and the digests compared in
 * constant time.
 */
#ifndef FW_HTTP_AUTH_H
#define FW_HTTP_AUTH_H

#include <stddef.h>

enum role { ROLE_VIEWER = 1, ROLE_AGENT = 2, ROLE_LEAD = 4, ROLE_ADMIN = 8, ROLE_SERVICE = 16 };

#define ROLES_READ (ROLE_VIEWER | ROLE_AGENT | ROLE_LEAD | ROLE_ADMIN)
#define ROLES_WORK (ROLE_AGENT | ROLE_LEAD | ROLE_ADMIN)
#define ROLES_LEAD (ROLE_LEAD | ROLE_ADMIN)
#define ROLES_ADMIN ROLE_ADMIN
#define ROLES_INGEST (ROLE_SERVICE | ROLE_ADMIN)

struct principal {
    char name[64];     /* user name; "admin" for the shared config token; "anonymous" without auth */
    enum role role;
    int authenticated; /* 0 when authentication is off */
};

/* "viewer", "agent", "lead", "admin", "service"; "?" for anything else. */
const char *role_name(enum role r);
/* Parse a role name (exactly as role_name prints it): 0 or FW_EINVAL. */
int role_parse(const char *s, enum role *out);
/*
 * Write the names of the roles in mask to out as "a, b or c" (for error
 * messages); truncated to cap.
 */
void role_mask_names(int mask, char *out, size_t cap);

#define AUTH_TOKEN_PREFIX "fw_"
#define AUTH_TOKEN_LEN (3 + 43) /* prefix + base64url of 32 bytes, no padding */
#define AUTH_DIGEST_LEN 32

/*
 * A new token (AUTH_TOKEN_LEN characters and a NUL in out) and its digest.
 * The secret comes from getrandom(2).  Returns 0 or FW_EIO when the kernel
 * gives no randomness (never a weaker source).
 */
int auth_token_new(char out[AUTH_TOKEN_LEN + 1], unsigned char digest[AUTH_DIGEST_LEN]);
/* The SHA-256 of the n bytes of token. */
void auth_token_digest(const char *token, size_t n, unsigned char digest[AUTH_DIGEST_LEN]);
/* 1 when the digests are equal; the time taken does not depend on where they differ. */
int auth_digest_equal(const unsigned char a[AUTH_DIGEST_LEN], const unsigned char b[AUTH_DIGEST_LEN]);
/* 1 when text looks like a token of ours (prefix, length, alphabet); says nothing of validity. */
int auth_token_wellformed(const char *text, size_t n);
/* A user name: 1-63 characters of [A-Za-z0-9._@-]. 1 when valid. */
int auth_name_valid(const char *name);

#endif
