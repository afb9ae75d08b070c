// "512M", "4G", "1024K", "65536B" -> bytes. A bare number means MiB, as in QEMU's -m.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace vmm::cli {

std::optional<std::uint64_t> parse_size(std::string_view text);

}  // namespace vmm::cli
