#include "base/key_values.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

namespace vmmd {
namespace {

using ::testing::HasSubstr;

KeyValues parseOk(std::string_view text, std::string_view implied_key = {}) {
  auto kv = KeyValues::parse("-opt", text, implied_key);
  EXPECT_TRUE(kv.ok()) << (kv.ok() ? "" : kv.error().message());
  return kv.ok() ? std::move(*kv) : KeyValues();
}

TEST(KeyValues, TakesValuesByKeyAndFinishesWhenAllAreTaken) {
  KeyValues kv = parseOk("id=c0,path=/tmp/s");
  EXPECT_TRUE(kv.has("id"));
  EXPECT_FALSE(kv.has("server"));
  EXPECT_EQ(kv.take("path"), "/tmp/s");
  EXPECT_EQ(kv.take("id"), "c0");
  EXPECT_EQ(kv.take("server"), std::nullopt);
  EXPECT_TRUE(kv.finish().ok());
}

TEST(KeyValues, DoubleCommaIsALiteralComma) {
  KeyValues kv = parseOk("path=/tmp/a,,b,,,id=x");
  EXPECT_EQ(kv.take("path"), "/tmp/a,b,");
  EXPECT_EQ(kv.take("id"), "x");
  EXPECT_TRUE(kv.finish().ok());
}

TEST(KeyValues, DoubleCommaInsideTheImpliedValue) {
  KeyValues kv = parseOk("a,,b,c=d", "name");
  EXPECT_EQ(kv.take("name"), "a,b");
  EXPECT_EQ(kv.take("c"), "d");
}

TEST(KeyValues, FirstBareWordGoesToTheImpliedKey) {
  KeyValues kv = parseOk("socket,id=c0", "backend");
  EXPECT_EQ(kv.take("backend"), "socket");
  EXPECT_EQ(kv.take("id"), "c0");
  EXPECT_TRUE(kv.takeFlags().empty());
  EXPECT_TRUE(kv.finish().ok());
}

TEST(KeyValues, LaterBareWordsAreFlagsNotTheImpliedKey) {
  KeyValues kv = parseOk("host,-cx16,+vmx", "model");
  EXPECT_EQ(kv.take("model"), "host");
  EXPECT_EQ(kv.takeFlags(), (std::vector<std::string>{"-cx16", "+vmx"}));
  EXPECT_TRUE(kv.finish().ok());
}

TEST(KeyValues, ExplicitKeyInFirstPositionIsNotImplied) {
  KeyValues kv = parseOk("cpus=4,sockets=1", "cpus");
  EXPECT_EQ(kv.take("cpus"), "4");
  EXPECT_EQ(kv.take("sockets"), "1");
}

TEST(KeyValues, WithoutImpliedKeyABareFirstWordIsAFlag) {
  KeyValues kv = parseOk("server,nowait");
  EXPECT_EQ(kv.takeFlags(), (std::vector<std::string>{"server", "nowait"}));
}

TEST(KeyValues, LastOccurrenceOfAKeyWins) {
  KeyValues kv = parseOk("a=1,a=2");
  EXPECT_EQ(kv.take("a"), "2");
  EXPECT_TRUE(kv.finish().ok());
}

TEST(KeyValues, EmptyValueIsKept) {
  KeyValues kv = parseOk("path=");
  EXPECT_EQ(kv.take("path"), "");
}

TEST(KeyValues, EmptyTextHasNoItems) {
  KeyValues kv = parseOk("");
  EXPECT_TRUE(kv.takeRemaining().empty());
  EXPECT_TRUE(kv.finish().ok());
}

TEST(KeyValues, UnknownKeyMakesFinishFailNamingIt) {
  KeyValues kv = parseOk("id=c0,pth=/tmp/s");
  (void)kv.take("id");
  auto st = kv.finish();
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().message(), "-opt: invalid parameter 'pth'");
}

TEST(KeyValues, UntakenFlagMakesFinishFail) {
  KeyValues kv = parseOk("id=c0,bogus");
  (void)kv.take("id");
  auto st = kv.finish();
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().message(), "-opt: unexpected item 'bogus'");
}

TEST(KeyValues, EmptyItemIsAnError) {
  auto kv = KeyValues::parse("-chardev", "a=1,,,", {});
  // ",,," is an escaped comma followed by an empty item.
  ASSERT_FALSE(kv.ok());
  EXPECT_THAT(kv.error().message(), HasSubstr("-chardev: empty item in 'a=1,,,'"));
  auto trailing = KeyValues::parse("-m", "512,", "size");
  ASSERT_FALSE(trailing.ok());
  EXPECT_THAT(trailing.error().message(), HasSubstr("empty item"));
}

TEST(KeyValues, ItemWithoutKeyIsAnError) {
  auto kv = KeyValues::parse("-device", "virtio-blk,=x", "driver");
  ASSERT_FALSE(kv.ok());
  EXPECT_EQ(kv.error().message(), "-device: item '=x' has no key");
}

TEST(KeyValues, BoolsAcceptOnOffYesNoTrueFalse) {
  KeyValues kv = parseOk("a=on,b=off,c=yes,d=no,e=true,f=false,g=y,h=n");
  EXPECT_TRUE(*kv.takeBool("a", false));
  EXPECT_FALSE(*kv.takeBool("b", true));
  EXPECT_TRUE(*kv.takeBool("c", false));
  EXPECT_FALSE(*kv.takeBool("d", true));
  EXPECT_TRUE(*kv.takeBool("e", false));
  EXPECT_FALSE(*kv.takeBool("f", true));
  EXPECT_TRUE(*kv.takeBool("g", false));
  EXPECT_FALSE(*kv.takeBool("h", true));
  EXPECT_TRUE(kv.finish().ok());
}

TEST(KeyValues, AbsentBoolGivesTheFallback) {
  KeyValues kv = parseOk("");
  EXPECT_TRUE(*kv.takeBool("server", true));
  EXPECT_FALSE(*kv.takeBool("server", false));
}

TEST(KeyValues, MalformedBoolIsAnErrorNamingKeyAndValue) {
  KeyValues kv = parseOk("server=maybe");
  auto b = kv.takeBool("server", false);
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.error().message(), "-opt: parameter 'server' expects 'on' or 'off', not 'maybe'");
}

TEST(KeyValues, TakeRemainingReturnsOnlyUntakenPairsInOrder) {
  KeyValues kv = parseOk("virtio-blk-pci,drive=d0,id=disk0,flag", "driver");
  EXPECT_EQ(kv.take("driver"), "virtio-blk-pci");
  auto rest = kv.takeRemaining();
  ASSERT_EQ(rest.size(), 2u);
  EXPECT_EQ(rest[0], (std::pair<std::string, std::string>{"drive", "d0"}));
  EXPECT_EQ(rest[1], (std::pair<std::string, std::string>{"id", "disk0"}));
  EXPECT_TRUE(kv.takeRemaining().empty());
  // The bare flag is not a pair: it is still untaken.
  EXPECT_FALSE(kv.finish().ok());
  EXPECT_EQ(kv.takeFlags(), std::vector<std::string>{"flag"});
  EXPECT_TRUE(kv.finish().ok());
}

TEST(KeyValues, FromPairsTakesAndFinishesLikeParsedText) {
  KeyValues kv = KeyValues::fromPairs("-device virtio-serial-pci", {{"id", "s0"}, {"max_ports", "4"}, {"vectorz", "2"}});
  EXPECT_EQ(kv.option(), "-device virtio-serial-pci");
  EXPECT_TRUE(kv.has("max_ports"));
  EXPECT_EQ(kv.take("id"), "s0");
  EXPECT_EQ(kv.take("max_ports"), "4");
  auto st = kv.finish();
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().message(), "-device virtio-serial-pci: invalid parameter 'vectorz'");
}

}  // namespace
}  // namespace vmmd
