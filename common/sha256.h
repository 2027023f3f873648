#ifndef CRUCIBLE_COMMON_SHA256_H_
#define CRUCIBLE_COMMON_SHA256_H_

#include <memory>
#include <string>

#include "absl/strings/string_view.h"

typedef struct evp_md_ctx_st EVP_MD_CTX;

namespace common {

// SHA-256 of bytes fed in pieces (OpenSSL): artifacts are hashed as their
// chunks stream by, without holding the whole file.
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(Sha256&&) noexcept;
  Sha256& operator=(Sha256&&) noexcept;

  void Update(absl::string_view data);
  // Lowercase hex of the digest of everything fed so far; the object then
  // starts over, as if new.
  std::string HexDigest();

 private:
  struct Free {
    void operator()(EVP_MD_CTX* ctx) const;
  };
  std::unique_ptr<EVP_MD_CTX, Free> ctx_;
};

// Lowercase hex SHA-256 of `data`.
std::string Sha256Hex(absl::string_view data);

}  // namespace common

#endif  // CRUCIBLE_COMMON_SHA256_H_
