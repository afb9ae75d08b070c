// Reads a whole user-supplied file with a size limit, so a wrong path (a
// device, a directory, a huge file) fails with one clear line.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace vmm {

std::vector<std::uint8_t> read_file(const std::string& path, const char* what,
                                    std::uint64_t max_size);

}  // namespace vmm
