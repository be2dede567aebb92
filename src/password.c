#include "password.h"

#include <argon2.h>
#include <string.h>
#include <sys/random.h>

int password_hash(const char *password, char *out, size_t size) {
  unsigned char salt[16];
  if (getrandom(salt, sizeof salt, 0) != (ssize_t)sizeof salt)
    return -1;
  return argon2id_hash_encoded(PASSWORD_T_COST, PASSWORD_M_COST_KIB, PASSWORD_LANES, password,
                               strlen(password), salt, sizeof salt, 32, out, size) == ARGON2_OK ? 0 : -1;
}

int password_verify(const char *encoded, const char *password) {
  return argon2id_verify(encoded, password, strlen(password)) == ARGON2_OK;
}
