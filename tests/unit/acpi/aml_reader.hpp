// Reading AML back in tests: just enough of the encoding (ACPI 6.5, 20.2)
// to find a named package in a DSDT and decode its integer elements, so the
// tests check what the guest's interpreter will see, not how we built it.
#pragma once

#include <cstdint>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace vmm::acpi::test {

struct AmlPackage;
using AmlBuffer = std::vector<std::uint8_t>;
using AmlElement = std::variant<std::uint64_t, AmlBuffer, AmlPackage>;
struct AmlPackage {
    std::vector<AmlElement> elements;
};

class AmlReader {
  public:
    AmlReader(std::span<const std::uint8_t> bytes, std::size_t at) : bytes_(bytes), at_(at) {}

    std::uint8_t byte() {
        if (at_ >= bytes_.size()) throw std::runtime_error("AML ends early");
        return bytes_[at_++];
    }

    // Returns the end offset of the package whose PkgLength starts here.
    std::size_t package_end() {
        const std::size_t start = at_;
        const std::uint8_t lead = byte();
        const unsigned extra = lead >> 6;
        std::size_t length = extra == 0 ? lead & 0x3f : lead & 0x0f;
        for (unsigned i = 0; i < extra; ++i) length |= std::size_t{byte()} << (4 + 8 * i);
        return start + length;
    }

    std::uint64_t little_endian(unsigned size) {
        std::uint64_t value = 0;
        for (unsigned i = 0; i < size; ++i) value |= std::uint64_t{byte()} << (8 * i);
        return value;
    }

    AmlElement element() {
        switch (const std::uint8_t op = byte()) {
            case 0x00:
                return std::uint64_t{0};  // ZeroOp
            case 0x01:
                return std::uint64_t{1};  // OneOp
            case 0x0a:
                return little_endian(1);
            case 0x0b:
                return little_endian(2);
            case 0x0c:
                return little_endian(4);
            case 0x0e:
                return little_endian(8);
            case 0x11: {  // BufferOp: PkgLength, size, bytes
                const std::size_t end = package_end();
                const auto size = std::get<std::uint64_t>(element());
                if (size != end - at_) throw std::runtime_error("AML buffer length mismatch");
                AmlBuffer buffer(bytes_.begin() + at_, bytes_.begin() + end);
                at_ = end;
                return buffer;
            }
            case 0x12: {  // PackageOp
                const std::size_t end = package_end();
                const std::uint8_t count = byte();
                AmlPackage package;
                for (unsigned i = 0; i < count; ++i) package.elements.push_back(element());
                if (at_ != end) throw std::runtime_error("AML package length mismatch");
                return package;
            }
            default:
                throw std::runtime_error("unexpected AML opcode " + std::to_string(op));
        }
    }

  private:
    std::span<const std::uint8_t> bytes_;
    std::size_t at_;
};

// Offset of the first occurrence of `text` at or after `from`.
inline std::size_t offset_of(std::span<const std::uint8_t> table, std::string_view text,
                             std::size_t from = 0) {
    const std::string_view all(reinterpret_cast<const char*>(table.data()),  // bytes are chars
                               table.size());
    const auto at = all.find(text, from);
    if (at == std::string_view::npos) throw std::runtime_error("no " + std::string(text));
    return at;
}

// The object of the first `Name (name, object)` at or after `from` in
// `table` (a 4-character name such as "_PRT"), decoded.
inline AmlElement named_object(std::span<const std::uint8_t> table, std::string_view name,
                               std::size_t from = 0) {
    for (std::size_t at = from; at + 5 <= table.size(); ++at) {
        if (table[at] == 0x08 && std::string_view(reinterpret_cast<const char*>(&table[at + 1]),
                                                  4) == name) {  // bytes are chars
            return AmlReader(table, at + 5).element();
        }
    }
    throw std::runtime_error("no Name (" + std::string(name) + ") in the table");
}

}  // namespace vmm::acpi::test
