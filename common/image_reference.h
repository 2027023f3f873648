#ifndef CRUCIBLE_COMMON_IMAGE_REFERENCE_H_
#define CRUCIBLE_COMMON_IMAGE_REFERENCE_H_

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace common {

// OK if `reference` is a container image reference by the grammar of the
// distribution project (github.com/distribution/reference, reference.go),
// which Docker and Podman parse references with:
//
//   reference  := name [ ":" tag ] [ "@" digest ]
//   name       := [ domain "/" ] path            (at most 255 bytes)
//   domain     := host [ ":" port ]
//   host       := domain-component [ "." domain-component ]*
//                 | "[" IPv6 address "]"
//   domain-component := [a-zA-Z0-9] | [a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]
//   path       := path-component [ "/" path-component ]*
//   path-component := [a-z0-9]+ ( separator [a-z0-9]+ )*
//   separator  := "." | "_" | "__" | "-"+
//   tag        := [\w][\w.-]{0,127}
//   digest     := algorithm ":" [0-9a-fA-F]{32,}
//   algorithm  := [A-Za-z][A-Za-z0-9]* ( [+._-] [A-Za-z][A-Za-z0-9]* )*
//
// The first component is the domain when more follow. Otherwise
// INVALID_ARGUMENT saying what is wrong, without echoing the reference.
absl::Status ValidateImageReference(absl::string_view reference);

}  // namespace common

#endif  // CRUCIBLE_COMMON_IMAGE_REFERENCE_H_
