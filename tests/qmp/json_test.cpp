#include "qmp/json.h"

#include <gtest/gtest.h>

namespace vmmd::qmp {
namespace {

Json parsed(std::string_view text) {
  Result<Json> r = parseJson(text);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message());
  return r.ok() ? std::move(*r) : Json();
}

TEST(Json, PrintsLikeQemuWithSpaceAfterColonAndComma) {
  EXPECT_EQ(toJson(parsed(R"({"return":{}})")), R"({"return": {}})");
  EXPECT_EQ(toJson(parsed(R"({"a":[1,{"b":2}],"c":null,"d":true,"e":false})")),
            R"({"a": [1, {"b": 2}], "c": null, "d": true, "e": false})");
  EXPECT_EQ(toJson(parsed("[]")), "[]");
}

TEST(Json, EscapesNonAsciiAndControlCharactersAsQemu) {
  EXPECT_EQ(toJson(parsed(R"("nope\u00e9")")), R"("nope\u00E9")");
  EXPECT_EQ(toJson(parsed("\"caf\xc3\xa9\"")), R"("caf\u00E9")");
  EXPECT_EQ(toJson(parsed(R"("a\u0000b")")), R"("a\u0000b")");
  EXPECT_EQ(toJson(parsed(R"("\"\\\/\b\f\n\r\t")")), R"("\"\\/\b\f\n\r\t")");
  EXPECT_EQ(toJson(parsed(R"("\ud83d\ude00")")), R"("\uD83D\uDE00")");
  EXPECT_EQ(toJson(parsed("\"\x7f\"")), R"("\u007F")");
}

TEST(Json, InvalidUtf8IsPrintedAsReplacementCharacter) {
  JsonValue v("\xff", 1);
  EXPECT_EQ(toJson(v), R"("\uFFFD")");
}

TEST(Json, NumbersKeepTheirKind) {
  EXPECT_EQ(toJson(parsed("-9223372036854775808")), "-9223372036854775808");
  EXPECT_EQ(toJson(parsed("18446744073709551615")), "18446744073709551615");
  EXPECT_EQ(toJson(parsed("1.5")), "1.5");
  EXPECT_EQ(toJson(parsed("0.1")), "0.10000000000000001");
  EXPECT_TRUE(parsed("99999999999999999999").IsDouble());
}

TEST(Json, EqualityIgnoresMemberOrderAndNumberRepresentation) {
  EXPECT_TRUE(jsonEqual(parsed(R"({"a":1,"b":[2.0]})"), parsed(R"({"b":[2],"a":1})")));
  EXPECT_FALSE(jsonEqual(parsed(R"({"a":1})"), parsed(R"({"a":"1"})")));
  EXPECT_FALSE(jsonEqual(parsed(R"({"a":1})"), parsed(R"({"a":1,"b":2})")));
  EXPECT_FALSE(jsonEqual(parsed("[1,2]"), parsed("[2,1]")));
}

TEST(Json, ParseReportsQemuErrors) {
  EXPECT_EQ(parseJson("{\"a\":1,\"a\":2}").error().message(), "JSON parse error, duplicate key");
  EXPECT_EQ(parseJson("{\"a\"").error().message(), "JSON parse error, premature EOI");
  EXPECT_EQ(parseJson("").error().message(), "JSON parse error, premature EOI");
  EXPECT_TRUE(parseJson("'single'").ok());
}

}  // namespace
}  // namespace vmmd::qmp
