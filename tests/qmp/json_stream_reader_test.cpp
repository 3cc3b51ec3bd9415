#include "qmp/json_stream_reader.h"

#include <gtest/gtest.h>

#include <vector>

namespace vmmd::qmp {
namespace {

// Collects what the reader emits: the compact JSON of each value, or "error: <message>".
struct Collector {
  std::vector<std::string> items;
  JsonStreamReader reader{[this](Result<Json>&& r) {
    items.push_back(r.ok() ? toJson(*r) : "error: " + r.error().message());
  }};
  std::vector<std::string> feed(std::string_view bytes) {
    items.clear();
    reader.feed(bytes);
    return items;
  }
};

using Items = std::vector<std::string>;

TEST(JsonStreamReader, ObjectSplitAcrossReads) {
  Collector c;
  std::string msg = R"({"execute": "query-status", "arguments": {"a": [1, "x\"y"]}})";
  for (size_t i = 0; i + 1 < msg.size(); ++i) EXPECT_TRUE(c.feed(msg.substr(i, 1)).empty()) << i;
  EXPECT_EQ(c.feed(msg.substr(msg.size() - 1)), Items{msg});
}

TEST(JsonStreamReader, SeveralObjectsInOneReadAndCrlfBetween) {
  Collector c;
  EXPECT_EQ(c.feed("{\"a\":1}{\"b\":2}\r\n \t\r\n{\"c\":3}\r\n"), (Items{R"({"a": 1})", R"({"b": 2})", R"({"c": 3})"}));
}

TEST(JsonStreamReader, TopLevelScalarsAreEmittedWhenTerminated) {
  Collector c;
  EXPECT_EQ(c.feed("\"x\""), Items{"\"x\""});
  EXPECT_TRUE(c.feed("1").empty());  // a number needs lookahead, as in QEMU
  EXPECT_EQ(c.feed("n"), Items{"1"});
  EXPECT_EQ(c.feed("ull{"), Items{"null"});
  EXPECT_EQ(c.feed("}"), Items{"{}"});
}

TEST(JsonStreamReader, MalformedInputGetsQemuMessagesAndRecovers) {
  Collector c;
  EXPECT_EQ(c.feed("}"), Items{"error: JSON parse error, expecting value"});
  EXPECT_EQ(c.feed("{]"), Items{"error: JSON parse error, expecting value"});
  EXPECT_EQ(c.feed("@"), Items{"error: JSON parse error, stray '@'"});
  // In recovery, junk up to the next structural character is skipped silently.
  EXPECT_EQ(c.feed("#{\"a\":1}"), Items{R"({"a": 1})"});
  EXPECT_EQ(c.feed("\xff"), Items{"error: JSON parse error, stray '\xff'"});
  EXPECT_EQ(c.feed("{}"), Items{"{}"});
  EXPECT_TRUE(c.feed("abc").empty());
  EXPECT_EQ(c.feed("{\"a\":1}}"), (Items{"error: JSON parse error, invalid keyword 'abc'", R"({"a": 1})",
                                         "error: JSON parse error, expecting value"}));
  EXPECT_EQ(c.feed("{\"a\":1,\"a\":2}"), Items{"error: JSON parse error, duplicate key"});
  EXPECT_EQ(c.feed("{\"a\" 1}"), Items{"error: JSON parse error, missing : in object pair"});
  EXPECT_EQ(c.feed("{1:2}"), Items{"error: JSON parse error, key is not a string in object"});
  EXPECT_EQ(c.feed("{\"a\":1 \"b\":2}"), Items{"error: JSON parse error, expected separator in dict"});
  EXPECT_EQ(c.feed("[1 2]"), Items{"error: JSON parse error, expected separator in list"});
  EXPECT_EQ(c.feed("\"\xc3\""), Items{"error: JSON parse error, invalid UTF-8 sequence in string"});
  EXPECT_EQ(c.feed("\"\\ud800\""), Items{"error: JSON parse error, \\ud800 is not a valid Unicode character"});
  EXPECT_EQ(c.feed("\"a\x01"), Items{"error: JSON parse error, stray '\"a\x01'"});
  EXPECT_EQ(c.feed("{\"ok\":1}"), Items{R"({"ok": 1})"});
}

TEST(JsonStreamReader, SingleQuotedStringsAsQemu) {
  Collector c;
  EXPECT_EQ(c.feed("{'execute':'x\"y'}"), Items{R"({"execute": "x\"y"})"});
}

TEST(JsonStreamReader, NestingLimit) {
  Collector c;
  std::string deep(1025, '[');
  Items out = c.feed(deep);
  EXPECT_EQ(out, Items{"error: JSON nesting depth limit exceeded"});
}

TEST(JsonStreamReader, MessageOverTheLimitIsRejectedWithBoundedMemory) {
  std::vector<std::string> items;
  JsonStreamReader reader([&](Result<Json>&& r) { items.push_back(r.ok() ? toJson(*r) : r.error().message()); },
                          1 << 20);
  std::string head = R"({"execute": "x", "arguments": {"data": ")";
  reader.feed(head);
  std::string chunk(64 * 1024, 'a');
  size_t peak = 0;
  for (int i = 0; i < 100 * 16; ++i) {  // 100 MiB of string body
    reader.feed(chunk);
    peak = std::max(peak, reader.bufferedBytes());
  }
  reader.feed("\"}}");
  EXPECT_LE(peak, size_t{2} << 20);
  ASSERT_FALSE(items.empty());
  EXPECT_EQ(items.front(), "JSON token size limit exceeded");
  // The stream resynchronises: a following request parses.
  items.clear();
  reader.feed("\n{\"execute\": \"next\"}");
  ASSERT_FALSE(items.empty());
  EXPECT_EQ(items.back(), R"({"execute": "next"})");
}

TEST(JsonStreamReader, FinishFlushesPendingScalarAndReportsTruncation) {
  Collector c;
  c.reader.feed("42");
  c.reader.finish();
  EXPECT_EQ(c.items, Items{"42"});
  c.items.clear();
  c.reader.feed("{\"a\":");
  c.reader.finish();
  EXPECT_EQ(c.items, Items{"error: JSON parse error, premature EOI"});
}

}  // namespace
}  // namespace vmmd::qmp
