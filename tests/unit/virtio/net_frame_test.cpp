// virtio-net's frame code without a tap: transmit chain parsing and the
// header checks that decide what the tap may see, receive header cleanup,
// the scatter into merged buffers, and the used-ring batch it relies on.
#include "devices/virtio/net/net_frame.hpp"

#include <gtest/gtest.h>

#include <numeric>

#include "tests/unit/virtio/queue_builder.hpp"

namespace devices::virtio {
namespace {

constexpr std::uint64_t kAllHost = feature_bit(kNetFeatureCsum) | feature_bit(kNetFeatureHostTso4) |
                                   feature_bit(kNetFeatureHostTso6) |
                                   feature_bit(kNetFeatureHostEcn);
constexpr std::uint64_t kAllGuest =
    feature_bit(kNetFeatureGuestCsum) | feature_bit(kNetFeatureGuestTso4) |
    feature_bit(kNetFeatureGuestTso6) | feature_bit(kNetFeatureGuestEcn);

struct NetFrameTest : ::testing::Test {
    vmm::GuestMemory memory = vmm::GuestMemory::create(
        std::array<std::pair<vmm::GuestAddress, std::uint64_t>, 1>{{{0, 1 << 20}}});
    std::uint64_t next = 0x1000;

    // A chain of buffers with these lengths, readable or writable, filled
    // with the bytes of `fill` in order when given.
    DescriptorChain chain(const std::vector<std::uint32_t>& lengths, bool writable,
                          std::span<const std::uint8_t> fill = {}, std::uint16_t head = 0) {
        DescriptorChain result;
        result.head = head;
        std::size_t at = 0;
        for (auto length : lengths) {
            Buffer buffer{next, memory.span(next, length)};
            next += length + 64;
            const std::size_t n =
                std::min<std::size_t>(length, fill.size() - std::min(at, fill.size()));
            if (n > 0) std::memcpy(buffer.bytes.data(), fill.data() + at, n);
            at += n;
            (writable ? result.writable : result.readable).push_back(buffer);
            (writable ? result.writable_bytes : result.readable_bytes) += length;
        }
        return result;
    }
};

std::vector<std::uint8_t> packet_bytes(const NetHeader& header, std::size_t frame_length) {
    std::vector<std::uint8_t> bytes(sizeof(header) + frame_length);
    std::memcpy(bytes.data(), &header, sizeof(header));
    for (std::size_t i = sizeof(header); i < bytes.size(); ++i)
        bytes[i] = static_cast<std::uint8_t>(i);
    return bytes;
}

TxFrame frame_of(NetHeader header, std::uint64_t length) {
    TxFrame frame;
    frame.header = header;
    frame.data_bytes = length;
    return frame;
}

NetHeader tso4() {
    NetHeader header{};
    header.flags = kNetHdrNeedsCsum;
    header.gso_type = kNetGsoTcpV4;
    header.hdr_len = 54;
    header.gso_size = 1448;
    header.csum_start = 34;
    header.csum_offset = 16;
    return header;
}

// ---- transmit ---------------------------------------------------------------

TEST_F(NetFrameTest, TransmitHeaderMayBeSplitAcrossBuffers) {
    NetHeader header = tso4();
    const auto bytes = packet_bytes(header, 100);
    const auto tx = chain({5, 4, 10, 93}, false, bytes);
    const TxFrame frame = parse_tx_chain(tx);
    EXPECT_EQ(std::memcmp(&frame.header, &header, sizeof(header)), 0);
    EXPECT_EQ(frame.data_bytes, 100u);
    ASSERT_EQ(frame.data.size(), 2u);  // 7 bytes left of the third buffer, then the fourth
    EXPECT_EQ(frame.data[0].size(), 7u);
    EXPECT_EQ(frame.data[1].size(), 93u);
    EXPECT_EQ(frame.data[0][0], bytes[12]);
    EXPECT_EQ(frame.data[1].back(), bytes.back());
}

TEST_F(NetFrameTest, TransmitChainMustHoldTheHeader) {
    EXPECT_THROW(parse_tx_chain(chain({11}, false)), DeviceError);
    EXPECT_THROW(parse_tx_chain(chain({4, 4}, false)), DeviceError);
    EXPECT_THROW(parse_tx_chain(chain({2048}, true)), DeviceError);  // nothing readable
    const TxFrame empty = parse_tx_chain(chain({12}, false));
    EXPECT_EQ(empty.data_bytes, 0u);
    EXPECT_TRUE(empty.data.empty());
    EXPECT_STREQ(tx_frame_problem(empty, kAllHost), "frame shorter than an Ethernet header");
}

TEST_F(NetFrameTest, TransmitFrameChecks) {
    const NetHeader plain{};
    NetHeader csum{};
    csum.flags = kNetHdrNeedsCsum;
    csum.csum_start = 34;
    csum.csum_offset = 16;
    struct Case {
        const char* what;
        NetHeader header;
        std::uint64_t length;
        std::uint64_t features;
        bool allowed;
    };
    auto with = [](NetHeader header, auto change) {
        change(header);
        return header;
    };
    const Case cases[] = {
        {"plain frame", plain, 60, 0, true},
        {"smallest frame", plain, 14, 0, true},
        {"runt", plain, 13, 0, false},
        {"largest frame", plain, kMaxFrameBytes, 0, true},
        {"oversize", plain, kMaxFrameBytes + 1, kAllHost, false},
        {"partial checksum", csum, 60, feature_bit(kNetFeatureCsum), true},
        {"partial checksum without CSUM", csum, 60, 0, false},
        {"checksum at the very end", csum, 52, feature_bit(kNetFeatureCsum), true},
        {"checksum past the end", csum, 51, feature_bit(kNetFeatureCsum), false},
        {"checksum offset overflow",
         with(csum, [](NetHeader& h) { h.csum_start = h.csum_offset = 0xffff; }), 65000, kAllHost,
         false},
        {"DATA_VALID from the driver",
         with(plain, [](NetHeader& h) { h.flags = kNetHdrDataValid; }), 60, kAllHost, false},
        {"unknown flag", with(plain, [](NetHeader& h) { h.flags = 0x10; }), 60, kAllHost, false},
        {"header length beyond the frame", with(plain, [](NetHeader& h) { h.hdr_len = 61; }), 60,
         kAllHost, false},
        {"TSO4", tso4(), 9000, kAllHost, true},
        {"TSO4 without HOST_TSO4", tso4(), 9000, kAllHost & ~feature_bit(kNetFeatureHostTso4),
         false},
        {"TSO6", with(tso4(), [](NetHeader& h) { h.gso_type = kNetGsoTcpV6; }), 9000, kAllHost,
         true},
        {"TSO6 without HOST_TSO6", with(tso4(), [](NetHeader& h) { h.gso_type = kNetGsoTcpV6; }),
         9000, kAllHost & ~feature_bit(kNetFeatureHostTso6), false},
        {"TSO with ECN", with(tso4(), [](NetHeader& h) { h.gso_type |= kNetGsoEcn; }), 9000,
         kAllHost, true},
        {"ECN without HOST_ECN", with(tso4(), [](NetHeader& h) { h.gso_type |= kNetGsoEcn; }), 9000,
         kAllHost & ~feature_bit(kNetFeatureHostEcn), false},
        {"ECN alone", with(plain, [](NetHeader& h) { h.gso_type = kNetGsoEcn; }), 60, kAllHost,
         false},
        {"UFO (not offered)", with(tso4(), [](NetHeader& h) { h.gso_type = kNetGsoUdp; }), 9000,
         kAllHost, false},
        {"unknown GSO type", with(tso4(), [](NetHeader& h) { h.gso_type = 5; }), 9000, kAllHost,
         false},
        {"GSO without a partial checksum", with(tso4(), [](NetHeader& h) { h.flags = 0; }), 9000,
         kAllHost, false},
        {"GSO with zero segment size", with(tso4(), [](NetHeader& h) { h.gso_size = 0; }), 9000,
         kAllHost, false},
    };
    for (const auto& c : cases) {
        const char* problem = tx_frame_problem(frame_of(c.header, c.length), c.features);
        EXPECT_EQ(problem == nullptr, c.allowed)
            << c.what << ": " << (problem != nullptr ? problem : "allowed");
    }
}

// ---- receive ----------------------------------------------------------------

TEST_F(NetFrameTest, ReceiveHeaderWithoutGuestCsumHasNoFlags) {
    NetHeader valid{};
    valid.flags = kNetHdrDataValid;
    EXPECT_TRUE(prepare_rx_header(valid, 0));
    EXPECT_EQ(valid.flags, 0);

    NetHeader partial{};
    partial.flags = kNetHdrNeedsCsum;
    EXPECT_FALSE(prepare_rx_header(partial, 0)) << "the guest cannot finish a checksum";

    NetHeader kept = partial;
    kept.flags |= kNetHdrDataValid | 0x40;
    EXPECT_TRUE(prepare_rx_header(kept, feature_bit(kNetFeatureGuestCsum)));
    EXPECT_EQ(kept.flags, kNetHdrNeedsCsum | kNetHdrDataValid);
}

TEST_F(NetFrameTest, ReceiveGsoNeedsTheMatchingGuestFeature) {
    NetHeader header = tso4();
    EXPECT_TRUE(prepare_rx_header(header, kAllGuest));
    header = tso4();
    EXPECT_FALSE(prepare_rx_header(header, kAllGuest & ~feature_bit(kNetFeatureGuestTso4)));
    header = tso4();
    header.gso_type = kNetGsoTcpV6 | kNetGsoEcn;
    EXPECT_TRUE(prepare_rx_header(header, kAllGuest));
    header.gso_type = kNetGsoTcpV6 | kNetGsoEcn;
    EXPECT_FALSE(prepare_rx_header(header, kAllGuest & ~feature_bit(kNetFeatureGuestEcn)));
    header.gso_type = kNetGsoUdp;
    EXPECT_FALSE(prepare_rx_header(header, kAllGuest));
}

TEST_F(NetFrameTest, ReceiveChainMustHoldTheHeader) {
    EXPECT_THROW(check_rx_chain(chain({11}, true)), DeviceError);
    EXPECT_THROW(check_rx_chain(chain({2048}, false)), DeviceError);  // no writable space
    EXPECT_NO_THROW(check_rx_chain(chain({6, 6}, true)));
}

TEST_F(NetFrameTest, ScatterFillsChainsInOrder) {
    NetHeader header{};
    header.num_buffers = 3;
    const auto packet = packet_bytes(header, 1000);
    const std::vector<DescriptorChain> chains = {
        chain({100, 300}, true, {}, 4), chain({500}, true, {}, 9), chain({200, 200}, true, {}, 2)};
    const auto used = scatter_rx(packet, chains);
    ASSERT_EQ(used.size(), 3u);
    EXPECT_EQ(used[0].id, 4u);
    EXPECT_EQ(used[0].length, 400u);
    EXPECT_EQ(used[1].id, 9u);
    EXPECT_EQ(used[1].length, 500u);
    EXPECT_EQ(used[2].id, 2u);
    EXPECT_EQ(used[2].length, 112u);
    std::vector<std::uint8_t> joined;
    for (const auto& c : chains) {
        for (const auto& buffer : c.writable)
            joined.insert(joined.end(), buffer.bytes.begin(), buffer.bytes.end());
    }
    joined.resize(packet.size());
    EXPECT_EQ(joined, packet);
}

TEST_F(NetFrameTest, UsedBatchIsPublishedAtOnce) {
    testing::QueueBuilder ring(memory, testing::default_queue(8));
    Virtqueue queue(memory, ring.config(), false, false);
    const UsedElement first[] = {{1, 10}, {2, 20}, {3, 30}};
    queue.push_used(first);
    EXPECT_EQ(ring.used_idx(), 3);
    EXPECT_EQ(queue.next_used(), 3);
    const UsedElement wrap[] = {{4, 40}, {5, 50}, {6, 60}, {7, 70}, {0, 1}, {1, 2}};
    queue.push_used(wrap);  // crosses the end of the ring
    EXPECT_EQ(ring.used_idx(), 9);
    EXPECT_EQ(ring.used(8).id, 1u);
    EXPECT_EQ(ring.used(8).length, 2u);
    EXPECT_EQ(ring.used(3).id, 4u);
    EXPECT_TRUE(queue.needs_interrupt());
}

}  // namespace
}  // namespace devices::virtio
