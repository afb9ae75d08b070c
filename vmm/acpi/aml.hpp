// A small AML encoder (ACPI 6.5, chapter 20) for the objects the DSDT needs:
// names, integers, packages, scopes, devices and resource templates. Each
// function returns the encoded bytes of one term, so a namespace is written
// as nested calls that read like the ASL they replace.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

namespace vmm::acpi::aml {

using Bytes = std::vector<std::uint8_t>;

// PkgLength encoding of a package whose contents (after the PkgLength) are
// `body_length` bytes; the encoded value counts its own bytes too.
Bytes pkg_length(std::size_t body_length);

// A NameString: "\\" root prefix, then 1-4 character segments separated by
// '.', each padded with '_' ("\\_SB.COM1", "_S5"). Throws base::Error for
// characters AML does not allow.
Bytes name_string(std::string_view path);

// The shortest integer encoding: ZeroOp, OneOp, Byte/Word/DWord/QWordConst.
Bytes integer(std::uint64_t value);
// A compressed EISA ID such as "PNP0501", as a DWordConst (what iasl emits
// for EisaId()).
Bytes eisa_id(std::string_view id);
Bytes string(std::string_view text);

Bytes name(std::string_view path, const Bytes& object);             // Name (path, object)
Bytes package(std::span<const Bytes> elements);                     // Package () { ... }
Bytes buffer(std::span<const std::uint8_t> bytes);                  // Buffer () { ... }
Bytes scope(std::string_view path, std::span<const Bytes> terms);   // Scope (path) { ... }
Bytes device(std::string_view path, std::span<const Bytes> terms);  // Device (path) { ... }

// Resource descriptors (ACPI 6.5, 6.4) and ResourceTemplate (), which wraps
// them in a Buffer with an End Tag.
Bytes io_port_descriptor(std::uint16_t min, std::uint16_t max, std::uint8_t alignment,
                         std::uint8_t length);    // IO (Decode16, ...)
Bytes irq_no_flags_descriptor(std::uint8_t irq);  // IRQNoFlags () {irq}
// Memory32Fixed (ReadWrite, base, length): a fixed range a device consumes.
Bytes memory32_fixed_descriptor(std::uint32_t base, std::uint32_t length);
Bytes resource_template(std::span<const Bytes> descriptors);

}  // namespace vmm::acpi::aml
