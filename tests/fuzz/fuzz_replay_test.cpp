// Runs the fuzz entry points under gtest in every build (gcc included): a
// deterministic pseudo-random corpus, structured seeds that reach deep into
// the parsers, and any saved inputs under tests/fuzz/corpus/<target>/ (add
// crashers there once fixed, so they stay fixed).
#include <gtest/gtest.h>

#include <random>
#include <vector>

#include "devices/virtio/blk/block_request.hpp"
#include "devices/virtio/virtio_spec.hpp"
#include "tests/fuzz/corpus_files.hpp"

extern "C" int virtqueue_fuzz_one(const std::uint8_t* data, std::size_t size);
extern "C" int blk_request_fuzz_one(const std::uint8_t* data, std::size_t size);

namespace {

using Entry = int (*)(const std::uint8_t*, std::size_t);
using devices::virtio::Descriptor;

// A well-formed input: queue of 8 at desc 0x1000 / avail 0x2000 / used
// 0x3000, one blk request (header, 512 data bytes, status) of `type`.
std::vector<std::uint8_t> blk_seed(std::uint32_t type, std::uint16_t flags_extra) {
    std::vector<std::uint8_t> input(16 + 0x6000, 0);
    input[0] = 3;  // size 8
    auto put16 = [&](std::size_t at, std::uint16_t v) { std::memcpy(&input[at], &v, 2); };
    put16(2, 0x1000 / 2);
    put16(4, 0x2000 / 2);
    put16(6, 0x3000 / 2);
    input[8] = 3;  // event idx + indirect
    input[9] = 6;  // discard + write zeroes negotiated
    auto memory = [&](std::uint64_t address) { return &input[16 + address]; };
    const Descriptor chain[] = {
        {0x4000, 16, devices::virtio::kDescNext, 1},
        {0x4100, 512, static_cast<std::uint16_t>(devices::virtio::kDescNext | flags_extra), 2},
        {0x4400, 1, devices::virtio::kDescWrite, 0},
    };
    std::memcpy(memory(0x1000), chain, sizeof(chain));
    const std::uint16_t avail[] = {0, 1, 0};
    std::memcpy(memory(0x2000), avail, sizeof(avail));
    std::memcpy(memory(0x4000), &type, 4);
    return input;
}

std::vector<std::vector<std::uint8_t>> corpus(const char* name) {
    std::vector<std::vector<std::uint8_t>> inputs;
    for (std::uint32_t type : {0u, 1u, 4u, 8u, 11u, 13u, 99u}) {
        const std::uint16_t extra = (type == 0 || type == 8) ? devices::virtio::kDescWrite : 0;
        inputs.push_back(blk_seed(type, extra));
    }
    std::mt19937 random(20240601);
    for (int i = 0; i < 1500; ++i) {
        // Mutate a seed, or pure noise.
        std::vector<std::uint8_t> input =
            (i % 2 == 0) ? blk_seed(i % 14, 0) : std::vector<std::uint8_t>(64 + random() % 4096);
        const int flips = 1 + static_cast<int>(random() % 16);
        for (int f = 0; f < flips; ++f) {
            const std::size_t at = random() % std::min<std::size_t>(input.size(), 16 + 0x4500);
            input[at] = static_cast<std::uint8_t>(random());
        }
        inputs.push_back(std::move(input));
    }
    devices::virtio::fuzz::append_corpus_files(name, inputs);
    return inputs;
}

void replay(Entry entry, const char* name) {
    for (const auto& input : corpus(name)) entry(input.data(), input.size());
    const std::uint8_t nothing = 0;
    entry(&nothing, 0);
}

TEST(FuzzReplay, Virtqueue) {
    replay(virtqueue_fuzz_one, "virtqueue_fuzz");
}
TEST(FuzzReplay, BlockRequests) {
    replay(blk_request_fuzz_one, "blk_request_fuzz");
}

}  // namespace
