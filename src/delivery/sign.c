/*
 * sign.c -- Standard Webhooks signatures: base64(HMAC-SHA256(key,
 * "{id}.{timestamp}.{body}")) with the key the base64-decoded secret after
 * its "whsec_" prefix, sent as "v1,<signature>".  A receiver recomputes it
 * from the raw body and the webhook-id and webhook-timestamp headers.
 */
#include <inttypes.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <string.h>

#include "delivery/delivery.h"
#include "util/buf.h"
#include "util/util.h"

/* Decode standard base64 (padding required when the length needs it); -1 on bad input. */
static int b64_decode(const char *in, unsigned char *out, size_t outcap)
{
    size_t n = strlen(in);
    if (n == 0 || n % 4 || n / 4 * 3 > outcap)
        return -1;
    int len = EVP_DecodeBlock(out, (const unsigned char *)in, (int)n);
    if (len < 0)
        return -1;
    /* EVP_DecodeBlock counts the bytes that padding stands for; drop them. */
    if (in[n - 1] == '=')
        len--;
    if (in[n - 2] == '=')
        len--;
    return len;
}

int delivery_sign(const char *secret, const char *id, int64_t ts_seconds, const char *body,
                  size_t len, char *out, size_t outlen)
{
    unsigned char key[256], mac[EVP_MAX_MD_SIZE];
    unsigned maclen = 0;
    if (!secret || !id)
        return FW_EINVAL;
    if (!strncmp(secret, "whsec_", 6))
        secret += 6;
    int keylen = b64_decode(secret, key, sizeof key);
    if (keylen <= 0)
        return FW_EINVAL;
    struct buf msg;
    buf_init(&msg, 0);
    buf_printf(&msg, "%s.%" PRId64 ".", id, ts_seconds);
    buf_append(&msg, body ? body : "", body ? len : 0);
    int rc = 0;
    if (!HMAC(EVP_sha256(), key, keylen, (const unsigned char *)msg.data, msg.len, mac, &maclen))
        rc = FW_EINVAL;
    /* "v1," + base64 of 32 bytes (44 characters) + NUL. */
    else if (outlen < 3 + 4 * ((maclen + 2) / 3) + 1)
        rc = FW_ETOOBIG;
    else {
        memcpy(out, "v1,", 3);
        EVP_EncodeBlock((unsigned char *)out + 3, mac, (int)maclen);
    }
    buf_cleanup(&msg);
    return rc;
}
