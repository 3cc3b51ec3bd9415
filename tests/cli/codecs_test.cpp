// vmctl's base64 (RFC 4648 section 10 test vectors) and SHA-256 (FIPS 180-4 / NIST examples),
// both from nettle.
#include "cli/codecs.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

namespace vmmd::cli {
namespace {

TEST(Base64, Rfc4648Vectors) {
  const std::pair<const char*, const char*> vectors[] = {{"", ""},         {"f", "Zg=="},     {"fo", "Zm8="},
                                                         {"foo", "Zm9v"},  {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="},
                                                         {"foobar", "Zm9vYmFy"}};
  for (auto [plain, encoded] : vectors) {
    EXPECT_EQ(base64Encode(plain), encoded);
    auto decoded = base64Decode(encoded);
    ASSERT_TRUE(decoded.ok()) << encoded << ": " << decoded.error().message();
    EXPECT_EQ(*decoded, plain);
  }
}

TEST(Base64, RoundTripsEveryByteValue) {
  std::string all;
  for (int i = 0; i < 256; ++i) all += static_cast<char>(i);
  for (size_t len = 0; len <= all.size(); len += 37) {
    std::string part = all.substr(0, len);
    auto decoded = base64Decode(base64Encode(part));
    ASSERT_TRUE(decoded.ok()) << len;
    EXPECT_EQ(*decoded, part);
  }
}

TEST(Base64, RejectsWhatIsNotCanonical) {
  for (const char* bad : {"Zg=", "Z===", "Zm9v\n", "Zm 9", "Zg==Zg==", "Zm9*", "=Zm9", "Zg=a", "Zh==", "Zm9=", "Zg",
                          "Zm9v====", "Zm9-", "Zm9_"}) {
    auto decoded = base64Decode(bad);
    ASSERT_FALSE(decoded.ok()) << bad << " decoded as " << *decoded;
    EXPECT_THAT(decoded.error().message(), ::testing::StartsWith("not base64: ")) << bad;
  }
}

TEST(Base64, ErrorsSayWhatAndWhere) {
  EXPECT_EQ(base64Decode("Zm9*").error().message(), "not base64: '*' at offset 3");
  EXPECT_EQ(base64Decode("Zm9v\n").error().message(), "not base64: byte 10 at offset 4");
  EXPECT_EQ(base64Decode("Zg=").error().message(), "not base64: length 3 is not a multiple of 4");
  EXPECT_EQ(base64Decode("Zg==Zg==").error().message(), "not base64: '=' at offset 2 before the end");
  EXPECT_EQ(base64Decode("Zh==").error().message(), "not base64: the last group is malformed");
}

std::string sha256(std::string_view data) {
  Sha256 h;
  h.update(data);
  return h.hexDigest();
}

TEST(Sha256, NistVectors) {
  EXPECT_EQ(sha256(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(sha256(std::string(1000000, 'a')), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(Sha256, DigestStartsOver) {
  Sha256 h;
  h.update("abc");
  EXPECT_EQ(h.hexDigest(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(h.hexDigest(), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST(Sha256, PiecesHashLikeTheWhole) {
  std::string data;
  for (int i = 0; i < 1000; ++i) data += static_cast<char>(i * 7);
  for (size_t split : {0u, 1u, 55u, 56u, 63u, 64u, 65u, 999u}) {
    Sha256 h;
    h.update(std::string_view(data).substr(0, split));
    h.update(std::string_view(data).substr(split));
    EXPECT_EQ(h.hexDigest(), sha256(data)) << split;
  }
}

}  // namespace
}  // namespace vmmd::cli
