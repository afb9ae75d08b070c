#include "vmm/acpi/table_writer.hpp"

#include <bit>
#include <cstddef>
#include <numeric>

#include "base/error.hpp"

namespace vmm::acpi {

namespace {

static_assert(std::endian::native == std::endian::little, "ACPI tables are little-endian");

// Copies `text` into a fixed-size, space-padded header field.
template <std::size_t N>
void set_field(char (&field)[N], std::string_view text, std::string_view what) {
    if (text.size() > N) throw base::Error("ACPI {} \"{}\" is longer than {} bytes", what, text, N);
    std::memset(field, ' ', N);
    std::memcpy(field, text.data(), text.size());
}

}  // namespace

std::uint8_t checksum_byte(std::span<const std::uint8_t> bytes) {
    const auto sum = std::accumulate(
        bytes.begin(), bytes.end(), std::uint8_t{0},
        [](std::uint8_t a, std::uint8_t b) { return static_cast<std::uint8_t>(a + b); });
    return static_cast<std::uint8_t>(0x100 - sum);
}

bool checksum_is_valid(std::span<const std::uint8_t> bytes) {
    return checksum_byte(bytes) == 0;
}

TableWriter::TableWriter(std::string_view signature, std::uint8_t revision,
                         std::string_view oem_table_id) {
    if (signature.size() != 4) throw base::Error("ACPI signature \"{}\" is not 4 bytes", signature);
    TableHeader header{};
    set_field(header.signature, signature, "signature");
    header.revision = revision;
    set_field(header.oem_id, kOemId, "OEM ID");
    set_field(header.oem_table_id, oem_table_id, "OEM table ID");
    header.oem_revision = kOemRevision;
    set_field(header.creator_id, kCreatorId, "creator ID");
    header.creator_revision = kCreatorRevision;
    append(header);
}

std::vector<std::uint8_t> TableWriter::finish() && {
    const auto length = static_cast<std::uint32_t>(bytes_.size());
    std::memcpy(bytes_.data() + offsetof(TableHeader, length), &length, sizeof(length));
    bytes_[offsetof(TableHeader, checksum)] = 0;
    bytes_[offsetof(TableHeader, checksum)] = checksum_byte(bytes_);
    return std::move(bytes_);
}

}  // namespace vmm::acpi
