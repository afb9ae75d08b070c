// The checked-in corpus of a fuzz target (tests/fuzz/corpus/<target>/),
// shared by the gtest replays.
#pragma once

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <vector>

namespace devices::virtio::fuzz {

// Appends every file of corpus/<target>/ to `inputs` (none if it is missing).
inline void append_corpus_files(const char* target,
                                std::vector<std::vector<std::uint8_t>>& inputs) {
    const auto dir = std::filesystem::path(VMM_FUZZ_CORPUS_DIR) / target;
    if (!std::filesystem::is_directory(dir)) return;
    for (const auto& file : std::filesystem::directory_iterator(dir)) {
        std::ifstream in(file.path(), std::ios::binary);
        inputs.emplace_back(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    }
}

}  // namespace devices::virtio::fuzz
