#include "vmm/acpi/tables.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>

#include "tests/support/temp_dir.h"

namespace vmmd::acpi {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr uint64_t kBase = 0xE0000;  // where the machine puts the blob (legacy RSDP scan range)

template <typename T>
T get(const uint8_t* data, size_t offset) {
  T value;
  std::memcpy(&value, data + offset, sizeof(T));
  return value;
}

struct Table {
  const uint8_t* data = nullptr;
  uint32_t length = 0;
  std::string signature() const { return std::string(reinterpret_cast<const char*>(data), 4); }
  template <typename T>
  T field(size_t offset) const {
    EXPECT_LE(offset + sizeof(T), length) << signature() << " field at " << offset;
    return get<T>(data, offset);
  }
  std::vector<uint8_t> bytes() const { return {data, data + length}; }
};

// The parsed blob: every table located through the RSDP, the way a guest finds them.
class AcpiTablesTest : public ::testing::TestWithParam<uint32_t> {
 protected:
  void build(uint32_t vcpus) {
    AcpiLayout layout;
    layout.vcpus = vcpus;
    layout.base_address = kBase;
    auto tables = buildAcpiTables(layout);
    ASSERT_TRUE(tables.ok()) << tables.error().message();
    tables_ = std::move(*tables);
    ASSERT_EQ(tables_.rsdp_address, kBase);
    ASSERT_GE(tables_.blob.size(), 36u);
    rsdp_ = tables_.blob.data();
    xsdt_ = tableAt(get<uint64_t>(rsdp_, 24));
    ASSERT_EQ(xsdt_.length, 36u + 16u);
    fadt_ = tableAt(xsdt_.field<uint64_t>(36));
    madt_ = tableAt(xsdt_.field<uint64_t>(44));
    dsdt_ = tableAt(fadt_.field<uint64_t>(140));
    facs_address_ = fadt_.field<uint32_t>(36);
  }

  Table tableAt(uint64_t address) {
    Table table;
    EXPECT_GE(address, kBase);
    EXPECT_LE(address - kBase + 36, tables_.blob.size()) << "table at " << address << " outside the blob";
    if (address < kBase || address - kBase + 36 > tables_.blob.size()) return table;
    table.data = tables_.blob.data() + (address - kBase);
    table.length = get<uint32_t>(table.data, 4);
    EXPECT_LE(address - kBase + table.length, tables_.blob.size());
    return table;
  }

  AcpiTables tables_;
  const uint8_t* rsdp_ = nullptr;
  Table xsdt_, fadt_, madt_, dsdt_;
  uint64_t facs_address_ = 0;
};

TEST_P(AcpiTablesTest, RsdpHasBothChecksumsAndPointsAtTheXsdt) {
  build(GetParam());
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(rsdp_), 8), "RSD PTR ");
  EXPECT_EQ(checksum(rsdp_, 20), 0) << "ACPI 1.0 checksum over the first 20 bytes";
  EXPECT_EQ(checksum(rsdp_, 36), 0) << "extended checksum over all 36 bytes";
  EXPECT_EQ(rsdp_[15], 2) << "revision 2: has an XSDT";
  EXPECT_EQ(get<uint32_t>(rsdp_, 20), 36u);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(rsdp_ + 9), 6), "VMMD  ");
  EXPECT_EQ(xsdt_.signature(), "XSDT");
  // The RSDP must sit on a 16-byte boundary for the legacy scan.
  EXPECT_EQ(tables_.rsdp_address % 16, 0u);
}

TEST_P(AcpiTablesTest, EveryTableHasAValidChecksumAndHeader) {
  build(GetParam());
  for (const Table* table : {&xsdt_, &fadt_, &madt_, &dsdt_}) {
    SCOPED_TRACE(table->signature());
    EXPECT_EQ(checksum(table->data, table->length), 0);
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(table->data + 10), 6), "VMMD  ");
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(table->data + 16), 8), "VMMDMACH");
  }
}

TEST_P(AcpiTablesTest, XsdtListsFadtThenMadt) {
  build(GetParam());
  EXPECT_EQ(fadt_.signature(), "FACP");
  EXPECT_EQ(madt_.signature(), "APIC");
  EXPECT_EQ(dsdt_.signature(), "DSDT");
}

TEST_P(AcpiTablesTest, FadtDescribesThePmBlocksResetRegisterAndSci) {
  build(GetParam());
  EXPECT_EQ(fadt_.length, 276u);
  EXPECT_EQ(fadt_.data[8], 6) << "FADT revision";
  EXPECT_EQ(fadt_.field<uint16_t>(46), 9) << "SCI_INT";
  EXPECT_EQ(fadt_.field<uint32_t>(48), 0u) << "SMI_CMD: no SMM, always in ACPI mode";
  EXPECT_EQ(fadt_.field<uint32_t>(56), 0x600u) << "PM1a_EVT_BLK";
  EXPECT_EQ(fadt_.field<uint32_t>(64), 0x604u) << "PM1a_CNT_BLK";
  EXPECT_EQ(fadt_.field<uint32_t>(76), 0x608u) << "PM_TMR_BLK";
  EXPECT_EQ(fadt_.field<uint8_t>(88), 4) << "PM1_EVT_LEN";
  EXPECT_EQ(fadt_.field<uint8_t>(89), 2) << "PM1_CNT_LEN";
  EXPECT_EQ(fadt_.field<uint8_t>(91), 4) << "PM_TMR_LEN";
  EXPECT_EQ(fadt_.field<uint8_t>(108), 0x32) << "CENTURY";

  uint32_t flags = fadt_.field<uint32_t>(112);
  EXPECT_TRUE(flags & (1u << 10)) << "RESET_REG_SUP";
  EXPECT_FALSE(flags & (1u << 4)) << "PWR_BUTTON clear: fixed-feature power button";
  EXPECT_FALSE(flags & (1u << 8)) << "TMR_VAL_EXT clear: 24-bit PM timer";
  EXPECT_FALSE(flags & (1u << 20)) << "HW_REDUCED_ACPI clear";

  // RESET_REG: GAS in system I/O space at 0xCF9, 8 bits; RESET_VALUE 6.
  EXPECT_EQ(fadt_.field<uint8_t>(116), 1);
  EXPECT_EQ(fadt_.field<uint8_t>(117), 8);
  EXPECT_EQ(fadt_.field<uint64_t>(120), 0xCF9u);
  EXPECT_EQ(fadt_.field<uint8_t>(128), 6);

  // The 64-bit X_ blocks agree with the 32-bit ones.
  EXPECT_EQ(fadt_.field<uint8_t>(148), 1);
  EXPECT_EQ(fadt_.field<uint8_t>(149), 32);
  EXPECT_EQ(fadt_.field<uint64_t>(152), 0x600u);
  EXPECT_EQ(fadt_.field<uint8_t>(172), 1);
  EXPECT_EQ(fadt_.field<uint8_t>(173), 16);
  EXPECT_EQ(fadt_.field<uint64_t>(176), 0x604u);
  EXPECT_EQ(fadt_.field<uint8_t>(208), 1);
  EXPECT_EQ(fadt_.field<uint64_t>(212), 0x608u);

  // DSDT and X_DSDT agree; FACS is there, 64-byte aligned.
  EXPECT_EQ(fadt_.field<uint32_t>(40), fadt_.field<uint64_t>(140));
  ASSERT_GE(facs_address_, kBase);
  EXPECT_EQ(facs_address_ % 64, 0u);
  const uint8_t* facs = tables_.blob.data() + (facs_address_ - kBase);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(facs), 4), "FACS");
  EXPECT_EQ(get<uint32_t>(facs, 4), 64u);
}

TEST_P(AcpiTablesTest, MadtHasOneEnabledLocalApicPerVcpu) {
  uint32_t vcpus = GetParam();
  build(vcpus);
  EXPECT_EQ(madt_.field<uint32_t>(36), 0xFEE00000u) << "local APIC address";
  EXPECT_EQ(madt_.field<uint32_t>(40), 1u) << "PCAT_COMPAT";
  uint32_t lapics = 0, ioapics = 0, overrides = 0, nmis = 0;
  bool sci_level_high = false;
  for (uint32_t at = 44; at < madt_.length;) {
    uint8_t type = madt_.data[at];
    uint8_t length = madt_.data[at + 1];
    ASSERT_GE(length, 2) << "entry at " << at;
    ASSERT_LE(at + length, madt_.length);
    switch (type) {
      case 0:
        ASSERT_EQ(length, 8);
        EXPECT_EQ(madt_.data[at + 2], lapics) << "ACPI processor id";
        EXPECT_EQ(madt_.data[at + 3], lapics) << "APIC id";
        EXPECT_EQ(get<uint32_t>(madt_.data, at + 4), 1u) << "enabled";
        ++lapics;
        break;
      case 1:
        ASSERT_EQ(length, 12);
        EXPECT_EQ(get<uint32_t>(madt_.data, at + 4), 0xFEC00000u);
        EXPECT_EQ(get<uint32_t>(madt_.data, at + 8), 0u) << "GSI base";
        ++ioapics;
        break;
      case 2:
        ASSERT_EQ(length, 10);
        if (madt_.data[at + 3] == 9) {
          EXPECT_EQ(get<uint32_t>(madt_.data, at + 4), 9u);
          sci_level_high = get<uint16_t>(madt_.data, at + 8) == 0x0D;
        }
        if (madt_.data[at + 3] == 0) {
          EXPECT_EQ(get<uint32_t>(madt_.data, at + 4), 2u) << "IRQ0 -> GSI 2";
        }
        ++overrides;
        break;
      case 4:
        ASSERT_EQ(length, 6);
        ++nmis;
        break;
      default:
        ADD_FAILURE() << "unexpected MADT entry type " << int{type};
    }
    at += length;
  }
  EXPECT_EQ(lapics, vcpus);
  EXPECT_EQ(ioapics, 1u);
  EXPECT_EQ(overrides, 2u);
  EXPECT_EQ(nmis, 1u);
  EXPECT_TRUE(sci_level_high) << "the SCI (IRQ 9) must be level-triggered, active high";
}

TEST_P(AcpiTablesTest, DsdtDefinesS5) {
  build(GetParam());
  std::string aml(reinterpret_cast<const char*>(dsdt_.data + 36), dsdt_.length - 36);
  // Name (\_S5_, Package (4) { 5, 5, 0, 0 })
  const char s5[] = {0x08, 0x5C, '_', 'S', '5', '_', 0x12, 0x08, 0x04, 0x0A, 0x05, 0x0A, 0x05, 0x00, 0x00};
  EXPECT_NE(aml.find(std::string(s5, sizeof s5)), std::string::npos);
  EXPECT_NE(aml.find("COM1"), std::string::npos);
  EXPECT_NE(aml.find("RTC_"), std::string::npos);
  EXPECT_EQ(dsdt_.data[8], 2) << "revision 2: 64-bit integers";
}

TEST_P(AcpiTablesTest, TablesDoNotOverlapAndFitTheBiosArea) {
  build(GetParam());
  EXPECT_LE(tables_.blob.size(), 0x100000u - kBase);
  struct Span {
    uint64_t start, end;
    std::string name;
  };
  std::vector<Span> spans = {{kBase, kBase + 36, "RSDP"}, {facs_address_, facs_address_ + 64, "FACS"}};
  for (const Table* t : {&xsdt_, &fadt_, &madt_, &dsdt_}) {
    uint64_t start = kBase + static_cast<uint64_t>(t->data - tables_.blob.data());
    spans.push_back({start, start + t->length, t->signature()});
  }
  for (size_t i = 0; i < spans.size(); ++i) {
    for (size_t j = i + 1; j < spans.size(); ++j) {
      EXPECT_TRUE(spans[i].end <= spans[j].start || spans[j].end <= spans[i].start)
          << spans[i].name << " overlaps " << spans[j].name;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Vcpus, AcpiTablesTest, ::testing::Values(1u, 2u, 64u, 254u));

TEST(AcpiTables, RejectsUnsupportedCpuCounts) {
  AcpiLayout layout;
  layout.vcpus = 0;
  auto none = buildAcpiTables(layout);
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.error().message(), "ACPI: unsupported CPU count 0");
  layout.vcpus = 255;
  auto too_many = buildAcpiTables(layout);
  ASSERT_FALSE(too_many.ok());
  EXPECT_EQ(too_many.error().message(), "ACPI: unsupported CPU count 255");
}

TEST(AcpiTables, ChecksumIsTheByteSum) {
  const uint8_t bytes[] = {0x01, 0x02, 0xFD};
  EXPECT_EQ(checksum(bytes, 3), 0);
  EXPECT_EQ(checksum(bytes, 2), 3);
  EXPECT_EQ(checksum(bytes, 0), 0);
}

TEST(AcpiTables, LayoutChangesReachTheTables) {
  AcpiLayout layout;
  layout.base_address = 0xF0000;
  layout.sci_irq = 10;
  layout.reset_value = 0x0E;
  auto tables = buildAcpiTables(layout);
  ASSERT_TRUE(tables.ok());
  const uint8_t* blob = tables->blob.data();
  uint64_t xsdt = get<uint64_t>(blob, 24);
  ASSERT_GE(xsdt, 0xF0000u);
  uint64_t fadt = get<uint64_t>(blob + (xsdt - 0xF0000), 36);
  const uint8_t* f = blob + (fadt - 0xF0000);
  EXPECT_EQ(get<uint16_t>(f, 46), 10);
  EXPECT_EQ(f[128], 0x0E);
}

// The real ACPI compiler: each table disassembles cleanly and the result compiles back.

std::string findIasl() {
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path ? path : "/usr/bin:/bin");
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    std::string candidate = dir + "/iasl";
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return {};
}

struct IaslResult {
  int status;
  std::string log;
  std::string dsl;
};

class IaslTest : public ::testing::Test {
 protected:
  void SetUp() override {
    iasl_ = findIasl();
    if (iasl_.empty()) GTEST_SKIP() << "iasl not found: install acpica-tools (scripts/install-deps.sh)";
    dir_.emplace("vmm_iasl");
  }

  static std::string slurp(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
  }

  int run(const std::string& args, const std::string& log) {
    std::string command = "cd '" + dir_->path() + "' && '" + iasl_ + "' " + args + " > '" + log + "' 2>&1";
    return std::system(command.c_str());
  }

  // iasl -d NAME.dat → NAME.dsl, then iasl NAME.dsl must compile it back.
  IaslResult disassemble(const std::string& name, const std::vector<uint8_t>& table) {
    {
      std::ofstream out(dir_->file(name + ".dat"), std::ios::binary);
      out.write(reinterpret_cast<const char*>(table.data()), static_cast<std::streamsize>(table.size()));
    }
    IaslResult result;
    result.status = run("-d " + name + ".dat", name + ".dis.log");
    result.log = slurp(dir_->file(name + ".dis.log"));
    result.dsl = slurp(dir_->file(name + ".dsl"));
    return result;
  }
  IaslResult recompile(const std::string& name) {
    IaslResult result;
    result.status = run("-p " + name + ".re " + name + ".dsl", name + ".asm.log");
    result.log = slurp(dir_->file(name + ".asm.log"));
    return result;
  }

  void expectClean(const std::string& name, const std::vector<uint8_t>& table, IaslResult* out = nullptr) {
    SCOPED_TRACE(name);
    IaslResult dis = disassemble(name, table);
    EXPECT_EQ(dis.status, 0) << dis.log;
    ASSERT_FALSE(dis.dsl.empty()) << "no disassembly: " << dis.log;
    for (const char* bad : {"Error", "Warning", "Incorrect", "Invalid", "Unknown"}) {
      EXPECT_THAT(dis.log, Not(HasSubstr(bad))) << dis.log;
      EXPECT_THAT(dis.dsl, Not(HasSubstr(bad))) << dis.dsl;
    }
    IaslResult re = recompile(name);
    EXPECT_EQ(re.status, 0) << "the disassembly does not compile back:\n" << re.log << "\n" << dis.dsl;
    EXPECT_THAT(re.log, Not(HasSubstr("Error "))) << re.log;
    if (out) *out = dis;
  }

  std::string iasl_;
  std::optional<test_support::TempDir> dir_;  // made once iasl is known to be there
};

class IaslTables : public IaslTest, public ::testing::WithParamInterface<uint32_t> {};

TEST_P(IaslTables, DsdtFadtMadtDisassembleCleanly) {
  AcpiLayout layout;
  layout.vcpus = GetParam();
  layout.base_address = kBase;
  auto tables = buildAcpiTables(layout);
  ASSERT_TRUE(tables.ok());
  const auto& blob = tables->blob;
  auto table = [&](uint64_t address) {
    const uint8_t* data = blob.data() + (address - kBase);
    return std::vector<uint8_t>(data, data + get<uint32_t>(data, 4));
  };
  uint64_t xsdt = get<uint64_t>(blob.data(), 24);
  std::vector<uint8_t> xsdt_bytes = table(xsdt);
  uint64_t fadt = get<uint64_t>(xsdt_bytes.data(), 36);
  uint64_t madt = get<uint64_t>(xsdt_bytes.data(), 44);
  std::vector<uint8_t> fadt_bytes = table(fadt);
  uint64_t dsdt = get<uint64_t>(fadt_bytes.data(), 140);

  IaslResult dsdt_dis;
  expectClean("dsdt", table(dsdt), &dsdt_dis);
  EXPECT_THAT(dsdt_dis.dsl, HasSubstr("Name (\\_S5, Package (0x04)"));
  EXPECT_THAT(dsdt_dis.dsl, HasSubstr("EisaId (\"PNP0501\")"));
  EXPECT_THAT(dsdt_dis.dsl, HasSubstr("EisaId (\"PNP0B00\")"));
  EXPECT_THAT(dsdt_dis.dsl, HasSubstr("Device (COM1)"));
  EXPECT_THAT(dsdt_dis.dsl, HasSubstr("Device (RTC)"));
  EXPECT_THAT(dsdt_dis.dsl, HasSubstr("IRQNoFlags ()\n                    {4}"));

  IaslResult fadt_dis;
  expectClean("facp", fadt_bytes, &fadt_dis);
  EXPECT_THAT(fadt_dis.dsl, HasSubstr("Reset Register Supported (V2) : 1"));

  IaslResult madt_dis;
  expectClean("apic", table(madt), &madt_dis);
  size_t lapics = 0;
  for (size_t at = madt_dis.dsl.find("Processor Local APIC"); at != std::string::npos;
       at = madt_dis.dsl.find("Processor Local APIC", at + 1)) {
    ++lapics;
  }
  EXPECT_EQ(lapics, GetParam());

  expectClean("xsdt", xsdt_bytes);
}

INSTANTIATE_TEST_SUITE_P(Vcpus, IaslTables, ::testing::Values(1u, 254u));

// The FADT and DSDT of a blob built at kBase, found as a guest finds them (RSDP → XSDT → FADT).
struct FadtAndDsdt {
  const uint8_t* fadt;
  std::vector<uint8_t> dsdt;
};
FadtAndDsdt findFadtAndDsdt(const std::vector<uint8_t>& tables) {
  const uint8_t* blob = tables.data();
  uint64_t xsdt = get<uint64_t>(blob, 24);
  uint64_t fadt = get<uint64_t>(blob + (xsdt - kBase), 36);
  uint64_t dsdt = get<uint64_t>(blob + (fadt - kBase), 140);
  const uint8_t* d = blob + (dsdt - kBase);
  return {blob + (fadt - kBase), std::vector<uint8_t>(d, d + get<uint32_t>(d, 4))};
}

// microvm: no PCI, no RTC, the virtio-mmio transports as QEMU's microvm announces them.
TEST_F(IaslTest, MicrovmDsdtHasTheVirtioMmioDevicesAndNoPci) {
  AcpiLayout layout;
  layout.base_address = kBase;
  layout.rtc = false;
  layout.virtio_mmio = {{0xFEB00000, 0x200, 16, 0}, {0xFEB00600, 0x200, 19, 3}};
  auto tables = buildAcpiTables(layout);
  ASSERT_TRUE(tables.ok());
  FadtAndDsdt found = findFadtAndDsdt(tables->blob);
  IaslResult dis;
  expectClean("microvm", found.dsdt, &dis);
  EXPECT_THAT(dis.dsl, HasSubstr("Device (VR00)"));
  EXPECT_THAT(dis.dsl, HasSubstr("Device (VR03)"));
  EXPECT_THAT(dis.dsl, HasSubstr("Name (_HID, \"LNRO0005\")"));
  EXPECT_THAT(dis.dsl, HasSubstr("0xFEB00600,         // Address Base"));
  EXPECT_THAT(dis.dsl, HasSubstr("Interrupt (ResourceConsumer, Level, ActiveHigh, Exclusive, ,, )"));
  EXPECT_THAT(dis.dsl, HasSubstr("0x00000013,"));
  EXPECT_THAT(dis.dsl, Not(HasSubstr("PNP0A03")));
  EXPECT_THAT(dis.dsl, Not(HasSubstr("PNP0B00")));
  // Without an RTC the FADT says so (IAPC_BOOT_ARCH bit 5), so the guest does not probe CMOS.
  EXPECT_EQ(get<uint16_t>(found.fadt, 109) & (1u << 5), 1u << 5);
}

// Hardware-reduced (microvm, as QEMU's): no PM1 blocks, PM timer or SCI; the sleep and reset
// registers in MMIO; a Generic Event Device whose _EVT notifies the power button.
AcpiLayout hardwareReducedLayout() {
  AcpiLayout layout;
  layout.base_address = kBase;
  layout.hardware_reduced = true;
  layout.virtio_mmio = {{0xFEB00000, 0x200, 16, 0}};
  return layout;
}

TEST(AcpiTables, HardwareReducedFadtPointsAtTheSleepAndResetRegistersOnly) {
  auto tables = buildAcpiTables(hardwareReducedLayout());
  ASSERT_TRUE(tables.ok());
  const uint8_t* fadt = findFadtAndDsdt(tables->blob).fadt;
  uint32_t flags = get<uint32_t>(fadt, 112);
  EXPECT_TRUE(flags & (1u << 20)) << "HW_REDUCED_ACPI";
  EXPECT_TRUE(flags & (1u << 4)) << "PWR_BUTTON: a control-method power button (the GED's PNP0C0C)";
  EXPECT_TRUE(flags & (1u << 10)) << "RESET_REG_SUP";
  EXPECT_EQ(get<uint16_t>(fadt, 46), 0) << "no SCI";
  for (size_t field : {56u, 64u, 76u}) EXPECT_EQ(get<uint32_t>(fadt, field), 0u) << "no PM1/PM timer block at " << field;
  for (size_t field : {88u, 89u, 91u}) EXPECT_EQ(fadt[field], 0) << "no block length at " << field;
  for (size_t field : {148u, 172u, 208u}) EXPECT_EQ(get<uint64_t>(fadt, field + 4), 0u) << "no X_ block at " << field;
  // Sleep control, sleep status and reset: bytes of system memory at QEMU microvm's addresses.
  for (auto [field, address] : {std::pair{244u, 0xFEA00200ull}, std::pair{256u, 0xFEA00201ull}, std::pair{116u, 0xFEA00202ull}}) {
    EXPECT_EQ(fadt[field], 0) << "system memory, field " << field;
    EXPECT_EQ(fadt[field + 1], 8) << "8 bits, field " << field;
    EXPECT_EQ(get<uint64_t>(fadt, field + 4), address) << "field " << field;
  }
  EXPECT_EQ(fadt[128], 0x42) << "RESET_VALUE";
}

TEST(AcpiTables, HardwareReducedMadtHasNoSciOverride) {
  auto tables = buildAcpiTables(hardwareReducedLayout());
  ASSERT_TRUE(tables.ok());
  const uint8_t* blob = tables->blob.data();
  uint64_t xsdt = get<uint64_t>(blob, 24);
  const uint8_t* madt = blob + (get<uint64_t>(blob + (xsdt - kBase), 44) - kBase);
  uint32_t length = get<uint32_t>(madt, 4);
  int overrides = 0;
  for (uint32_t at = 44; at + 2 <= length; at += madt[at + 1]) {
    ASSERT_GT(madt[at + 1], 0);
    if (madt[at] == 2) {
      ++overrides;
      EXPECT_EQ(madt[at + 3], 0) << "only IRQ0 -> GSI 2 is overridden";
    }
  }
  EXPECT_EQ(overrides, 1);
}

TEST_F(IaslTest, HardwareReducedDsdtDeclaresTheGedAndThePowerButton) {
  auto tables = buildAcpiTables(hardwareReducedLayout());
  ASSERT_TRUE(tables.ok());
  FadtAndDsdt found = findFadtAndDsdt(tables->blob);
  IaslResult dis;
  expectClean("reduced", found.dsdt, &dis);
  EXPECT_THAT(dis.dsl, HasSubstr("Device (GED)"));
  EXPECT_THAT(dis.dsl, HasSubstr("Name (_HID, \"ACPI0013\" /* Generic Event Device */)"));
  EXPECT_THAT(dis.dsl, HasSubstr("Interrupt (ResourceConsumer, Edge, ActiveHigh, Exclusive, ,, )"));
  EXPECT_THAT(dis.dsl, HasSubstr("OperationRegion (EREG, SystemMemory, 0xFEA00000, 0x04)"));
  EXPECT_THAT(dis.dsl, HasSubstr("Field (EREG, DWordAcc, NoLock, WriteAsZeros)"));
  EXPECT_THAT(dis.dsl, HasSubstr("ESEL,   32"));
  EXPECT_THAT(dis.dsl, HasSubstr("Method (_EVT, 1, NotSerialized)"));
  EXPECT_THAT(dis.dsl, HasSubstr("If ((ESEL & 0x02))"));
  EXPECT_THAT(dis.dsl, HasSubstr("Notify (\\_SB.PWRB, 0x80)"));
  EXPECT_THAT(dis.dsl, HasSubstr("Device (PWRB)"));
  EXPECT_THAT(dis.dsl, HasSubstr("EisaId (\"PNP0C0C\")"));

  std::vector<uint8_t> fadt(found.fadt, found.fadt + get<uint32_t>(found.fadt, 4));
  IaslResult fadt_dis;
  expectClean("reduced-facp", fadt, &fadt_dis);
  EXPECT_THAT(fadt_dis.dsl, HasSubstr("Hardware Reduced (V5) : 1"));
}

TEST_F(IaslTest, CatchesACorruptTable) {
  // The check itself can fail: a table with a wrong checksum is reported.
  AcpiLayout layout;
  layout.base_address = kBase;
  auto tables = buildAcpiTables(layout);
  ASSERT_TRUE(tables.ok());
  std::vector<uint8_t> bytes = findFadtAndDsdt(tables->blob).dsdt;
  bytes[9] ^= 0x5A;
  IaslResult dis = disassemble("corrupt", bytes);
  EXPECT_THAT(dis.log + dis.dsl, HasSubstr("Incorrect checksum"));
}

}  // namespace
}  // namespace vmmd::acpi
