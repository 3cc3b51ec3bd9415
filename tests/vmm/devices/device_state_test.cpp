// Saved device state: fields read back as written, broken states refused with a reason, and a
// device without state support says so instead of saving nothing.
#include "vmm/devices/device.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace vmmd {
namespace {

using ::testing::HasSubstr;

TEST(DeviceState, FieldsReadBackInOrder) {
  StateWriter out;
  out.u8(7);
  out.u16(0xBEEF);
  out.u32(0xDEADBEEF);
  out.u64(0x0123456789ABCDEFull);
  out.boolean(true);
  out.string("port0");
  out.state({"inner", 3, {1, 2, 3}});
  auto bytes = out.take();

  StateReader in(bytes);
  EXPECT_EQ(in.u8(), 7);
  EXPECT_EQ(in.u16(), 0xBEEF);
  EXPECT_EQ(in.u32(), 0xDEADBEEFu);
  EXPECT_EQ(in.u64(), 0x0123456789ABCDEFull);
  EXPECT_TRUE(in.boolean());
  EXPECT_EQ(in.string(), "port0");
  DeviceState nested = in.state();
  EXPECT_EQ(nested.kind, "inner");
  EXPECT_EQ(nested.version, 3u);
  EXPECT_EQ(nested.bytes, (std::vector<uint8_t>{1, 2, 3}));
  EXPECT_TRUE(in.finish("test").ok());
}

TEST(DeviceState, TruncatedLeftOverAndMalformedStatesAreRefused) {
  StateWriter out;
  out.u32(5);
  auto bytes = out.take();

  StateReader short_read(bytes);
  EXPECT_EQ(short_read.u64(), 0u);
  EXPECT_EQ(short_read.u8(), 0u);  // every read after a failure is zero
  EXPECT_THAT(short_read.finish("dev").error().message(), HasSubstr("dev: bad state: truncated at byte 0"));

  StateReader left_over(bytes);
  (void)left_over.u16();
  EXPECT_THAT(left_over.finish("dev").error().message(), HasSubstr("2 bytes left over"));

  StateReader length_too_big(bytes);  // a length prefix of 5 with nothing after it
  EXPECT_TRUE(length_too_big.bytes().empty());
  EXPECT_FALSE(length_too_big.finish("dev").ok());

  std::vector<uint8_t> two{2};
  StateReader not_bool(two);
  (void)not_bool.boolean();
  EXPECT_THAT(not_bool.finish("dev").error().message(), HasSubstr("not a boolean"));
}

TEST(DeviceState, KindAndVersionAreChecked) {
  EXPECT_TRUE(checkState({"virtio-net-pci", 1, {}}, "virtio-net-pci", 1).ok());
  EXPECT_THAT(checkState({"virtio-rng-pci", 1, {}}, "virtio-net-pci", 1).error().message(),
              HasSubstr("the state is for virtio-rng-pci"));
  EXPECT_THAT(checkState({"virtio-net-pci", 2, {}}, "virtio-net-pci", 1).error().message(),
              HasSubstr("state version 2 is not supported"));
}

struct StatelessDevice : Device {
  const char* name() const override { return "stateless"; }
  void reset() override {}
};

TEST(Device, WithoutStateSupportSavingAndLoadingFailSayingSo) {
  StatelessDevice device;
  auto saved = device.saveState();
  ASSERT_FALSE(saved.ok());
  EXPECT_EQ(saved.error().message(), "stateless: saving device state is not supported");
  auto loaded = device.loadState({"stateless", 1, {}});
  ASSERT_FALSE(loaded.ok());
  EXPECT_EQ(loaded.error().message(), "stateless: loading device state is not supported");
}

}  // namespace
}  // namespace vmmd
