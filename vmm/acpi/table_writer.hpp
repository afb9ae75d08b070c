// Byte-buffer builder for one ACPI system description table: the standard
// 36-byte header, a body appended field by field, and the length and
// checksum filled in by finish(). Tables are built off to the side and only
// copied into guest memory once all of them are laid out.
#pragma once

#include <cstdint>
#include <cstring>
#include <span>
#include <string_view>
#include <type_traits>
#include <vector>

namespace vmm::acpi {

// Identity of this VMM in every table header (ACPI 6.5, 5.2.6).
inline constexpr std::string_view kOemId = "KVMVMM";    // 6 bytes
inline constexpr std::string_view kCreatorId = "KVMV";  // 4 bytes
inline constexpr std::uint32_t kOemRevision = 1;
inline constexpr std::uint32_t kCreatorRevision = 1;

struct [[gnu::packed]] TableHeader {
    char signature[4];
    std::uint32_t length;
    std::uint8_t revision;
    std::uint8_t checksum;
    char oem_id[6];
    char oem_table_id[8];
    std::uint32_t oem_revision;
    char creator_id[4];
    std::uint32_t creator_revision;
};
static_assert(sizeof(TableHeader) == 36);

// Generic Address Structure (ACPI 6.5, 5.2.3.2).
struct [[gnu::packed]] GenericAddress {
    std::uint8_t space_id;
    std::uint8_t bit_width;
    std::uint8_t bit_offset;
    std::uint8_t access_size;
    std::uint64_t address;
};
static_assert(sizeof(GenericAddress) == 12);

inline constexpr std::uint8_t kSpaceSystemIo = 1;
inline constexpr std::uint8_t kAccessByte = 1;

// A byte-wide register in port I/O space.
constexpr GenericAddress io_port_register(std::uint16_t port) {
    return GenericAddress{kSpaceSystemIo, 8, 0, kAccessByte, port};
}

// The byte that makes `bytes` sum to zero modulo 256 when added to it.
std::uint8_t checksum_byte(std::span<const std::uint8_t> bytes);
// True when `bytes` sums to zero modulo 256, as every ACPI checksum requires.
bool checksum_is_valid(std::span<const std::uint8_t> bytes);

class TableWriter {
  public:
    // `signature` is 4 characters and `oem_table_id` at most 8 (space padded).
    TableWriter(std::string_view signature, std::uint8_t revision, std::string_view oem_table_id);

    void append_bytes(std::span<const std::uint8_t> bytes) {
        bytes_.insert(bytes_.end(), bytes.begin(), bytes.end());
    }

    // Appends the object representation of `value`; ACPI is little-endian,
    // like the only host this VMM runs on.
    template <typename T>
    requires std::is_trivially_copyable_v<T>
    void append(const T& value) {
        const auto offset = bytes_.size();
        bytes_.resize(offset + sizeof(T));
        std::memcpy(bytes_.data() + offset, &value, sizeof(T));
    }

    std::size_t size() const { return bytes_.size(); }

    // Sets the header's length and checksum and returns the table.
    std::vector<std::uint8_t> finish() &&;

  private:
    std::vector<std::uint8_t> bytes_;
};

}  // namespace vmm::acpi
