// Reading fields out of raw ACPI table bytes in tests.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "vmm/acpi/acpi_tables.hpp"

namespace vmm::acpi::test {

template <typename T>
T field(const std::vector<std::uint8_t>& bytes, std::size_t offset) {
    T value;
    std::memcpy(&value, bytes.data() + offset, sizeof(T));
    return value;
}

inline std::string text(const std::vector<std::uint8_t>& bytes, std::size_t offset,
                        std::size_t length) {
    return {reinterpret_cast<const char*>(bytes.data() + offset), length};  // bytes are chars
}

inline const PlacedTable& find(const std::vector<PlacedTable>& tables,
                               const std::string& signature) {
    for (const auto& table : tables) {
        if (table.signature == signature) return table;
    }
    throw std::runtime_error("no table " + signature);
}

}  // namespace vmm::acpi::test
