// Runs the virtio-net fuzz entry point under gtest in every build: seeds that
// reach deep (a TSO transmit chain, merged and single receive buffers),
// deterministic mutations of them, noise, and any saved inputs under
// tests/fuzz/corpus/net_fuzz/ (add crashers there once fixed).
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <vector>

#include "devices/virtio/net/net_spec.hpp"
#include "devices/virtio/virtio_spec.hpp"
#include "tests/fuzz/corpus_files.hpp"

extern "C" int net_fuzz_one(const std::uint8_t* data, std::size_t size);

namespace {

using devices::virtio::Descriptor;
using devices::virtio::NetHeader;

// Queue of 8 at desc 0x1000 / avail 0x2000 / used 0x3000; guest address A
// is input[16 + A]; the received packet's header is the 12 bytes at 0.
struct Seed {
    std::vector<std::uint8_t> input = std::vector<std::uint8_t>(16 + 0x6000, 0);

    explicit Seed(std::uint8_t selector) {
        input[0] = 3;  // size 8
        put16(2, 0x1000 / 2);
        put16(4, 0x2000 / 2);
        put16(6, 0x3000 / 2);
        input[8] = 3;  // event idx + indirect
        input[9] = selector;
    }
    void put16(std::size_t at, std::uint16_t value) { std::memcpy(&input[at], &value, 2); }
    std::uint8_t* guest(std::uint64_t address) { return &input[16 + address]; }
    void chains(std::initializer_list<Descriptor> descriptors, std::uint16_t heads) {
        std::size_t i = 0;
        for (const auto& d : descriptors) std::memcpy(guest(0x1000 + 16 * i++), &d, sizeof(d));
        std::uint16_t avail[2 + 8] = {0, heads};
        for (std::uint16_t h = 0; h < heads; ++h) avail[2 + h] = h;
        std::memcpy(guest(0x2000), avail, sizeof(avail));
    }
};

std::vector<std::uint8_t> tx_seed() {
    Seed seed(1 | 2 | 4);  // transmit, CSUM, HOST_TSO4
    NetHeader header{
        devices::virtio::kNetHdrNeedsCsum, devices::virtio::kNetGsoTcpV4, 54, 1448, 34, 16, 0};
    std::memcpy(seed.guest(0x4000), &header, sizeof(header));
    seed.chains({{0x4000, 12, devices::virtio::kDescNext, 1}, {0x4100, 600, 0, 0}}, 1);
    return seed.input;
}

std::vector<std::uint8_t> rx_seed(bool merged) {
    Seed seed(merged ? 64 | 32 : 32);
    NetHeader header{
        devices::virtio::kNetHdrNeedsCsum, devices::virtio::kNetGsoTcpV4, 1000, 1448, 34, 16, 0};
    std::memcpy(seed.guest(0), &header, sizeof(header));
    const std::uint16_t w = devices::virtio::kDescWrite;
    seed.chains(
        {{0x4000, 512, w, 0}, {0x4200, 512, w, 0}, {0x4400, 512, w, 0}, {0x4600, 512, w, 0}}, 4);
    return seed.input;
}

std::vector<std::vector<std::uint8_t>> corpus() {
    const std::vector<std::vector<std::uint8_t>> seeds = {tx_seed(), rx_seed(true), rx_seed(false)};
    std::vector<std::vector<std::uint8_t>> inputs = seeds;
    std::mt19937 random(20241122);
    for (int i = 0; i < 1500; ++i) {
        std::vector<std::uint8_t> input =
            (i % 4 != 3) ? seeds[i % 3] : std::vector<std::uint8_t>(64 + random() % 4096);
        const int flips = 1 + static_cast<int>(random() % 16);
        for (int f = 0; f < flips; ++f) {
            const std::size_t at = random() % std::min<std::size_t>(input.size(), 16 + 0x4800);
            input[at] = static_cast<std::uint8_t>(random());
        }
        inputs.push_back(std::move(input));
    }
    devices::virtio::fuzz::append_corpus_files("net_fuzz", inputs);
    return inputs;
}

TEST(FuzzReplay, NetFrames) {
    for (const auto& input : corpus()) {
        net_fuzz_one(input.empty() ? nullptr : input.data(), input.size());
    }
    net_fuzz_one(nullptr, 0);  // libFuzzer's empty input
}

}  // namespace
