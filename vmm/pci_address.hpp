// Host PCI addresses as users type them and sysfs spells them: the command
// line checks a --device vfio= address with the same rule the device code
// uses to find it under /sys/bus/pci/devices.
#pragma once

#include <cctype>
#include <optional>
#include <string>
#include <string_view>

namespace vmm {

// "DDDD:BB:DD.F" (domain, bus, device, function in hex) or "BB:DD.F" (domain
// 0) -> the lower-case, 12-character form sysfs uses. nullopt unless the
// device number is at most 0x1f and the function at most 7.
inline std::optional<std::string> canonical_pci_address(std::string_view text) {
    std::string address(text);
    if (address.size() == 7) address = "0000:" + address;
    if (address.size() != 12) return std::nullopt;
    for (std::size_t i = 0; i < address.size(); ++i) {
        const char c = address[i];
        const bool separator = i == 4 || i == 7 || i == 10;
        if (separator) {
            if (c != (i == 10 ? '.' : ':')) return std::nullopt;
        } else if (std::isxdigit(static_cast<unsigned char>(c)) == 0) {
            return std::nullopt;
        }
        address[i] = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    const auto hex = [](char c) { return c <= '9' ? c - '0' : c - 'a' + 10; };
    const int device = hex(address[8]) * 16 + hex(address[9]);
    if (device > 0x1f || address[11] > '7') return std::nullopt;
    return address;
}

}  // namespace vmm
