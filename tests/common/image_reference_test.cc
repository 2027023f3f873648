#include "common/image_reference.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace common {
namespace {

using ::testing::HasSubstr;

TEST(ImageReferenceTest, AcceptsTheGrammarsForms) {
  const std::string digest(64, 'a');
  for (const std::string& ref :
       {std::string("busybox"), std::string("busybox:1.36"),
        std::string("library/busybox"),
        std::string("localhost/crucible/busybox:latest"),
        std::string("localhost:5000/a/b:v1"),
        std::string("registry.example.com/tools/python:3.12"),
        std::string("ghcr.io/acme/app-x__y.z_w---v"),
        std::string("a/b@sha256:") + digest,
        std::string("a:tag@sha256:") + digest,
        std::string("Registry.Example/x"), std::string("[fe80::1]:5000/x"),
        std::string("x:_TAG.1-2"), std::string(255, 'a'),
        std::string("a:") + std::string(128, 't')}) {
    EXPECT_TRUE(ValidateImageReference(ref).ok())
        << ref << ": " << ValidateImageReference(ref);
  }
}

TEST(ImageReferenceTest, RefusesWhatTheGrammarDoesNot) {
  const std::string digest(64, 'a');
  for (const std::string& ref :
       {std::string(""),
        std::string("   "),
        std::string("not a valid ref!!"),
        std::string("bad\0nul", 7),
        std::string("Upper/Case"),
        std::string("UPPER"),
        std::string("a//b"),
        std::string("a/"),
        std::string("/a"),
        std::string("a..b"),
        std::string("a_-b"),
        std::string("-a"),
        std::string("a-"),
        std::string("a:"),
        std::string("a:.tag"),
        std::string("a:-tag"),
        std::string("a:ta/g"),
        std::string("a@sha256:abc"),
        std::string("a@:") + digest,
        std::string("a@") + digest,
        std::string("host:port/a"),
        std::string("-host/a"),
        std::string("[zz]/a"),
        std::string(256, 'a'),
        std::string("a:") + std::string(129, 't'),
        std::string("a@sha256:") + digest + "@sha256:" + digest,
        std::string(":tag")}) {
    absl::Status s = ValidateImageReference(ref);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << ref;
    EXPECT_THAT(s.message(), HasSubstr("not a valid image reference")) << ref;
  }
}

TEST(ImageReferenceTest, NeverEchoesTheReference) {
  const std::string ref = "x:" + std::string(1000, '!');
  absl::Status s = ValidateImageReference(ref);
  EXPECT_FALSE(s.ok());
  EXPECT_LT(s.message().size(), 200u);
  EXPECT_THAT(s.message(), HasSubstr("tag"));
}

}  // namespace
}  // namespace common
