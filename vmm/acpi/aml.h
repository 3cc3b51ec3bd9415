// A tiny AML encoder: just the terms the DSDT needs (names, integers, strings, packages, scopes,
// devices, resource templates). AML grammar from the ACPI specification, section 20.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace vmmd::acpi::aml {

using Bytes = std::vector<uint8_t>;

Bytes integer(uint64_t value);                  // ZeroOp/OneOp/Byte/Word/DWord/QWordConst
Bytes string(const std::string& text);          // StringPrefix ... NUL
Bytes eisaId(const std::string& id);            // "PNP0501" compressed into a DWordConst
Bytes name(const std::string& name, const Bytes& value);  // NameOp NameString DataRefObject
Bytes package(const std::vector<Bytes>& elements);
Bytes scope(const std::string& name, const Bytes& body);
Bytes device(const std::string& name, const Bytes& body);
// ResourceTemplate () { ... } from raw small resource descriptors; adds the end tag.
Bytes resourceTemplate(const Bytes& descriptors);
Bytes ioPort(uint16_t base, uint8_t length);    // IO (Decode16, base, base, 1, length)
Bytes irq(uint8_t line);                        // IRQNoFlags () { line }

// Memory32Fixed (ReadWrite, base, length): a device's register window.
Bytes memory32Fixed(uint32_t base, uint32_t length);
// Interrupt (ResourceConsumer, Level, ActiveHigh, Exclusive) { gsi }: an extended interrupt
// descriptor, which (unlike IRQNoFlags) reaches GSIs above 15.
Bytes levelInterrupt(uint32_t gsi);
// Interrupt (ResourceConsumer, Edge, ActiveHigh, Exclusive) { gsi }: a line the device pulses.
Bytes edgeInterrupt(uint32_t gsi);

// Address-space descriptors a host bridge produces for its children (ResourceProducer, fixed
// min and max, positive decode).
Bytes wordBusNumber(uint16_t min, uint16_t max);
Bytes wordIo(uint16_t min, uint16_t max);
Bytes dwordMemory(uint32_t min, uint32_t max);

// What a Generic Event Device's _EVT method needs (ACPI 6.4, 20.2.5): a register in system memory,
// a method, and "if these bits of that register are set, notify that device".
// OperationRegion (region, SystemMemory, base, length) + Field (region, DWordAcc, NoLock,
// WriteAsZeros) { field, 32 }: one 32-bit register named `field`.
Bytes memoryRegister32(const std::string& region, const std::string& field, uint32_t base);
// Method (name, argc, NotSerialized) { body }
Bytes method(const std::string& name, uint8_t argc, const Bytes& body);
// If (And (field, mask)) { Notify (target, value) }
Bytes notifyIfSet(const std::string& field, uint32_t mask, const std::string& target, uint8_t value);

// PkgLength encoding for a body of `length` bytes (the encoding counts itself).
Bytes pkgLength(size_t length);
// A NameString: "\\_SB" or "COM1" or "\\_SB.PCI0"; segments padded with '_' to 4 characters.
Bytes nameString(const std::string& path);

}  // namespace vmmd::acpi::aml
