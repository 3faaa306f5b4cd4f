#ifndef CHAPAR_COPENSSL_SHIM_H
#define CHAPAR_COPENSSL_SHIM_H
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

// EVP_sha256 is a function already; these wrappers keep C types out of Swift's public API.
static inline int copenssl_hmac_sha256(const void *key, int key_length, const unsigned char *data, size_t data_length,
                                       unsigned char *out32) {
    unsigned int out_length = 0;
    return HMAC(EVP_sha256(), key, key_length, data, data_length, out32, &out_length) != NULL && out_length == 32;
}

#endif
