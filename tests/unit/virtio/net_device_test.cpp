// VirtioNet on a real tap, driven through its worker thread: frames in both
// directions byte for byte, merged receive buffers, a receive queue without
// buffers, the tap offloads that follow the negotiated features, EAGAIN on
// transmit, and guest mistakes that cost a frame or the device, never more.
#include <gtest/gtest.h>
#include <sys/resource.h>

#include <numeric>

#include "devices/virtio/net/net_frame.hpp"
#include "tests/unit/virtio/net_test_rig.hpp"
#include "tests/unit/virtio/net_test_tap.hpp"

namespace devices::virtio {
namespace {

using namespace std::chrono_literals;
using testing::NetRig;
using testing::test_frame;
using testing::TestTap;
using testing::with_header;

constexpr std::uint64_t kMergeable = testing::kNetBase | feature_bit(kNetFeatureMrgRxbuf);

NetHeader read_header(const vmm::GuestMemory& memory, std::uint64_t address) {
    return memory.read<NetHeader>(address);
}

std::vector<std::uint8_t> guest_bytes(const vmm::GuestMemory& memory, std::uint64_t address,
                                      std::size_t length) {
    auto bytes = memory.span(address, length);
    return {bytes.begin(), bytes.end()};
}

double cpu_seconds() {
    rusage usage{};
    ::getrusage(RUSAGE_SELF, &usage);
    return static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
           static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
}

class NetDeviceTest : public ::testing::Test {
  protected:
    void SetUp() override {
        const std::string why = testing::tap_unavailable();
        if (!why.empty()) GTEST_SKIP() << "no tap: " << why;
        tap_.emplace();
        rig_.emplace(tap_->take());
    }
    void TearDown() override { rig_.reset(); }

    TestTap& tap() { return *tap_; }
    NetRig& rig() { return *rig_; }

  private:
    std::optional<TestTap> tap_;
    std::optional<NetRig> rig_;
};

// ---- transmit ---------------------------------------------------------------

TEST_F(NetDeviceTest, TransmittedFramesReachTheTapIntact) {
    rig().start(testing::kNetBase);
    const auto small = test_frame(60, 1);
    const auto split = test_frame(1000, 2);
    const auto full = test_frame(1514, 3);
    rig().post_tx(with_header(small));
    rig().post_tx(with_header(split), {5, 7, 2, 300});  // the header itself in two pieces
    rig().post_tx(with_header(full), {12});
    rig().kick(NetRig::kTxQueue);

    for (const auto* frame : {&small, &split, &full}) {
        const auto got = tap().receive();
        ASSERT_TRUE(got.has_value()) << "frame " << int((*frame)[11]) << " never reached the tap";
        EXPECT_EQ(*got, *frame);
    }
    ASSERT_TRUE(rig().wait_used(NetRig::kTxQueue, 3));
    for (std::uint16_t i = 0; i < 3; ++i) EXPECT_EQ(rig().tx.used(i).length, 0u);
    const auto stats = rig().device->stats();
    EXPECT_EQ(stats.tx_frames, 3u);
    EXPECT_EQ(stats.tx_bytes, 60u + 1000 + 1514);
    EXPECT_EQ(stats.tx_dropped + stats.tx_errors, 0u);
    EXPECT_GE(rig().interrupts(NetRig::kTxQueue), 1);
}

TEST_F(NetDeviceTest, MalformedTransmitFramesAreDroppedAndCounted) {
    rig().start(testing::kNetBase);  // no CSUM, no HOST_TSO
    NetHeader gso{};
    gso.flags = kNetHdrNeedsCsum;
    gso.gso_type = kNetGsoTcpV4;
    gso.gso_size = 1448;
    gso.csum_start = 34;
    gso.csum_offset = 16;
    rig().post_tx(with_header(test_frame(1514, 1), gso));                 // TSO not negotiated
    rig().post_tx(with_header(test_frame(kMaxFrameBytes + 1, 2)), {12});  // oversize
    rig().post_tx(with_header(test_frame(10, 3)));                        // runt
    const auto good = test_frame(200, 4);
    rig().post_tx(with_header(good));
    rig().kick(NetRig::kTxQueue);

    const auto got = tap().receive();
    ASSERT_TRUE(got.has_value());
    EXPECT_EQ(*got, good) << "only the well-formed frame may reach the tap";
    ASSERT_TRUE(rig().wait_used(NetRig::kTxQueue, 4));
    const auto stats = rig().device->stats();
    EXPECT_EQ(stats.tx_dropped, 3u);
    EXPECT_EQ(stats.tx_frames, 1u);
    EXPECT_TRUE(rig().error().empty()) << rig().error();
}

TEST_F(NetDeviceTest, FramesTheTapRefusesAreCounted) {
    tap().set_up(false);  // a tap that is down answers EIO
    rig().start(testing::kNetBase);
    rig().post_tx(with_header(test_frame(100, 1)));
    rig().kick(NetRig::kTxQueue);
    ASSERT_TRUE(rig().wait_used(NetRig::kTxQueue, 1));
    EXPECT_EQ(rig().device->stats().tx_errors, 1u);

    tap().set_up(true);
    const auto frame = test_frame(100, 2);
    rig().post_tx(with_header(frame));
    rig().kick(NetRig::kTxQueue);
    const auto got = tap().receive();
    ASSERT_TRUE(got.has_value());
    EXPECT_EQ(*got, frame);
    EXPECT_TRUE(rig().error().empty()) << rig().error();
}

TEST_F(NetDeviceTest, TransmitChainShorterThanTheHeaderFailsTheDevice) {
    rig().start(testing::kNetBase);
    const std::vector<std::uint8_t> eight(8, 0);
    rig().post_tx(eight);
    rig().kick(NetRig::kTxQueue);
    ASSERT_TRUE(rig().wait_error());
    EXPECT_NE(rig().error().find("less than the 12-byte header"), std::string::npos)
        << rig().error();
}

// ---- receive ----------------------------------------------------------------

TEST_F(NetDeviceTest, ReceivedFramesLandInGuestBuffersWithAHeader) {
    rig().start(testing::kNetBase);
    const auto first = rig().post_rx({12, 1600});  // header and data apart, as Linux may
    const auto second = rig().post_rx({2048});
    rig().kick(NetRig::kRxQueue);
    const auto a = test_frame(1514, 1);
    const auto b = test_frame(64, 2);
    tap().inject(a);
    tap().inject(b);

    ASSERT_TRUE(rig().wait_used(NetRig::kRxQueue, 2));
    EXPECT_EQ(rig().rx.used(0).length, 12u + a.size());
    EXPECT_EQ(rig().rx.used(1).length, 12u + b.size());
    const NetHeader header = read_header(rig().memory, first[0]);
    EXPECT_EQ(header.num_buffers, 1);
    EXPECT_EQ(header.flags, 0);
    EXPECT_EQ(header.gso_type, kNetGsoNone);
    EXPECT_EQ(guest_bytes(rig().memory, first[1], a.size()), a);
    EXPECT_EQ(read_header(rig().memory, second[0]).num_buffers, 1);
    EXPECT_EQ(guest_bytes(rig().memory, second[0] + 12, b.size()), b);
    const auto stats = rig().device->stats();
    EXPECT_EQ(stats.rx_frames, 2u);
    EXPECT_EQ(stats.rx_bytes, a.size() + b.size());
}

TEST_F(NetDeviceTest, MergedBuffersCarryOneFrameAcrossSeveralChains) {
    rig().start(kMergeable);
    std::vector<std::uint64_t> buffers;
    for (int i = 0; i < 5; ++i) buffers.push_back(rig().post_rx({512})[0]);
    rig().kick(NetRig::kRxQueue);
    const auto frame = test_frame(1400, 7);
    tap().inject(frame);

    ASSERT_TRUE(rig().wait_used(NetRig::kRxQueue, 3));
    EXPECT_EQ(rig().rx.used_idx(), 3) << "three buffers, published together";
    EXPECT_EQ(read_header(rig().memory, buffers[0]).num_buffers, 3);
    const std::uint32_t lengths[] = {512, 512, 12 + 1400 - 1024};
    std::vector<std::uint8_t> joined;
    for (std::uint16_t i = 0; i < 3; ++i) {
        EXPECT_EQ(rig().rx.used(i).length, lengths[i]);
        const auto part = guest_bytes(rig().memory, buffers[i], lengths[i]);
        joined.insert(joined.end(), part.begin(), part.end());
    }
    EXPECT_EQ(std::vector<std::uint8_t>(joined.begin() + 12, joined.end()), frame);

    // The rest of the buffers serve the next frame.
    const auto next = test_frame(300, 8);
    tap().inject(next);
    ASSERT_TRUE(rig().wait_used(NetRig::kRxQueue, 4));
    EXPECT_EQ(read_header(rig().memory, buffers[3]).num_buffers, 1);
    EXPECT_EQ(guest_bytes(rig().memory, buffers[3] + 12, next.size()), next);
}

TEST_F(NetDeviceTest, WithoutBuffersTheTapWaitsForAKickAndLosesNothing) {
    rig().start(kMergeable);
    const auto cpu_before = cpu_seconds();
    std::vector<std::vector<std::uint8_t>> frames;
    for (std::uint8_t i = 0; i < 3; ++i) {
        frames.push_back(test_frame(100 + i, i));
        tap().inject(frames.back());
    }
    // Nothing can happen without buffers; a worker spinning on the readable
    // tap would burn this whole wait in CPU time.
    EXPECT_FALSE(rig().wait_used(NetRig::kRxQueue, 1, 300ms));
    EXPECT_LT(cpu_seconds() - cpu_before, 0.15) << "the worker spins on a tap it cannot serve";

    std::vector<std::uint64_t> buffers;
    for (int i = 0; i < 3; ++i) buffers.push_back(rig().post_rx({2048})[0]);
    rig().kick(NetRig::kRxQueue);
    ASSERT_TRUE(rig().wait_used(NetRig::kRxQueue, 3));
    for (std::size_t i = 0; i < 3; ++i) {
        EXPECT_EQ(guest_bytes(rig().memory, buffers[i] + 12, frames[i].size()), frames[i]);
    }
    EXPECT_EQ(rig().device->stats().rx_dropped, 0u);
}

TEST_F(NetDeviceTest, AFrameTooBigForItsBufferIsDroppedAndTheBufferKept) {
    rig().start(testing::kNetBase);  // no merging: one chain per frame
    const auto buffer = rig().post_rx({512})[0];
    rig().kick(NetRig::kRxQueue);
    tap().inject(test_frame(1000, 1));
    const auto small = test_frame(200, 2);
    tap().inject(small);
    ASSERT_TRUE(rig().wait_used(NetRig::kRxQueue, 1));
    EXPECT_EQ(rig().rx.used(0).length, 12u + small.size());
    EXPECT_EQ(guest_bytes(rig().memory, buffer + 12, small.size()), small);
    EXPECT_EQ(rig().device->stats().rx_dropped, 1u);
}

TEST_F(NetDeviceTest, ReceiveChainWithoutWritableSpaceFailsTheDevice) {
    rig().start(testing::kNetBase);
    rig().post(NetRig::kRxQueue, {2048}, 0);  // device-readable only
    rig().kick(NetRig::kRxQueue);
    tap().inject(test_frame(100, 1));
    ASSERT_TRUE(rig().wait_error());
    EXPECT_NE(rig().error().find("receive chain"), std::string::npos) << rig().error();
}

TEST_F(NetDeviceTest, ReceiveChainSmallerThanTheHeaderFailsTheDevice) {
    rig().start(kMergeable);
    rig().post_rx({8});
    rig().kick(NetRig::kRxQueue);
    tap().inject(test_frame(100, 1));
    ASSERT_TRUE(rig().wait_error());
    EXPECT_NE(rig().error().find("less than the 12-byte header"), std::string::npos)
        << rig().error();
}

// ---- offloads ---------------------------------------------------------------

TEST_F(NetDeviceTest, NegotiatedGuestOffloadsBecomeTapOffloads) {
    const std::uint64_t offloads = kMergeable | feature_bit(kNetFeatureGuestCsum) |
                                   feature_bit(kNetFeatureGuestTso4) |
                                   feature_bit(kNetFeatureGuestTso6);
    rig().start(offloads);
    rig().post_rx({64});
    rig().kick(NetRig::kRxQueue);
    // Activation happens on the worker; a frame through it orders us after it.
    tap().inject(test_frame(20, 1));
    ASSERT_TRUE(rig().wait_used(NetRig::kRxQueue, 1));
    EXPECT_TRUE(tap().ethtool(ETHTOOL_GTXCSUM));
    EXPECT_TRUE(tap().ethtool(ETHTOOL_GTSO));
    EXPECT_EQ(rig().device->tap().offload(), kTunOffloadCsum | kTunOffloadTso4 | kTunOffloadTso6);

    // A driver reset and renegotiation without them turns them off again.
    rig().stop();
    rig().start(kMergeable);
    rig().post_rx({64});
    rig().kick(NetRig::kRxQueue);
    tap().inject(test_frame(20, 2));
    ASSERT_TRUE(rig().wait_used(NetRig::kRxQueue, 1));
    EXPECT_FALSE(tap().ethtool(ETHTOOL_GTXCSUM));
    EXPECT_FALSE(tap().ethtool(ETHTOOL_GTSO));
    EXPECT_EQ(rig().device->tap().offload(), 0u);
}

TEST_F(NetDeviceTest, TsoWithoutChecksumOffloadIsNotAskedOfTheTap) {
    rig().start(kMergeable | feature_bit(kNetFeatureGuestTso4));  // invalid without GUEST_CSUM
    rig().post_rx({64});
    rig().kick(NetRig::kRxQueue);
    tap().inject(test_frame(20, 1));
    ASSERT_TRUE(rig().wait_used(NetRig::kRxQueue, 1));
    EXPECT_EQ(rig().device->tap().offload(), 0u);
    EXPECT_FALSE(tap().ethtool(ETHTOOL_GTSO));
}

// The host's TCP stack hands the tap one 8000-byte segment. A guest that
// took TSO gets it whole, in merged buffers, still to be checksummed; one
// that did not gets MSS-sized frames the kernel cut and checksummed for it.
TEST_F(NetDeviceTest, TsoSegmentsReachAGuestThatTookTsoWhole) {
    rig().start(kMergeable | feature_bit(kNetFeatureGuestCsum) | feature_bit(kNetFeatureGuestTso4));
    std::vector<std::uint64_t> buffers;
    for (int i = 0; i < 8; ++i) buffers.push_back(rig().post_rx({4096})[0]);
    rig().kick(NetRig::kRxQueue);
    tap().inject(test_frame(20, 1));  // ordered after activation, so after TUNSETOFFLOAD
    ASSERT_TRUE(rig().wait_used(NetRig::kRxQueue, 1));

    tap().inject_tcp_gso(8000);
    ASSERT_TRUE(rig().wait_used(NetRig::kRxQueue, 3));
    const NetHeader header = read_header(rig().memory, buffers[1]);
    EXPECT_EQ(header.gso_type, kNetGsoTcpV4);
    EXPECT_EQ(header.gso_size, 1448);
    EXPECT_EQ(header.flags & kNetHdrNeedsCsum, kNetHdrNeedsCsum);
    EXPECT_EQ(header.csum_start, 34);
    EXPECT_EQ(header.csum_offset, 16);
    EXPECT_EQ(header.num_buffers, 2);
    EXPECT_EQ(rig().rx.used(1).length + rig().rx.used(2).length, 12u + 54 + 8000);
    EXPECT_EQ(rig().device->stats().rx_dropped, 0u);
}

TEST_F(NetDeviceTest, TsoSegmentsAreCutForAGuestWithoutTso) {
    rig().start(kMergeable);
    std::vector<std::uint64_t> buffers;
    for (int i = 0; i < 12; ++i) buffers.push_back(rig().post_rx({2048})[0]);
    rig().kick(NetRig::kRxQueue);
    tap().inject_tcp_gso(8000);
    const std::uint16_t segments = (8000 + 1447) / 1448;
    ASSERT_TRUE(rig().wait_used(NetRig::kRxQueue, segments));
    std::uint32_t payload = 0;
    for (std::uint16_t i = 0; i < segments; ++i) {
        const NetHeader header = read_header(rig().memory, buffers[i]);
        EXPECT_EQ(header.gso_type, kNetGsoNone);
        EXPECT_EQ(header.flags, 0) << "fully checksummed: the guest took no checksum offload";
        EXPECT_EQ(header.num_buffers, 1);
        payload += rig().rx.used(i).length - 12 - 54;
    }
    EXPECT_EQ(payload, 8000u);
}

}  // namespace
}  // namespace devices::virtio
