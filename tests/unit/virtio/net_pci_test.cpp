// virtio-net behind the virtio-pci transport, as the Linux driver sees it:
// PCI identity, offered features, the config space (MAC, link up), frames
// with MSI-X interrupts, and a malformed chain that puts one NIC into
// NEEDS_RESET while another keeps forwarding and the failed one recovers
// after a reset.
#include <gtest/gtest.h>

#include "devices/virtio/net/virtio_net.hpp"
#include "devices/virtio/virtio_pci_device.hpp"
#include "tests/unit/pci/fake_hypervisor.hpp"
#include "tests/unit/virtio/net_test_tap.hpp"
#include "tests/unit/virtio/queue_builder.hpp"
#include "tests/unit/virtio/virtio_pci_driver.hpp"

namespace devices::virtio {
namespace {

using Dev = VirtioPciDevice;
using testing::PciDriver;
using testing::QueueBuilder;
using testing::test_frame;
using testing::TestTap;
using testing::with_header;

constexpr std::uint64_t kLinuxFeatures =
    testing::kRingFeatures | feature_bit(kNetFeatureMac) | feature_bit(kNetFeatureStatus) |
    feature_bit(kNetFeatureMrgRxbuf) | feature_bit(kNetFeatureCsum) |
    feature_bit(kNetFeatureGuestCsum) | feature_bit(kNetFeatureHostTso4) |
    feature_bit(kNetFeatureGuestTso4);

// The driver side of one NIC: its rings at `base` (rx), `base` + 0x4000 (tx)
// and its buffers from `base` + 0x10000.
class NicDriver : public PciDriver {
  public:
    NicDriver(Dev& device, const vmm::GuestMemory& memory, std::uint64_t base)
        : PciDriver(device),
          memory_(memory),
          rx(memory, QueueConfig{16, base, base + 0x1000, base + 0x2000}),
          tx(memory, QueueConfig{16, base + 0x4000, base + 0x5000, base + 0x6000}),
          buffers_(base + 0x10000) {}

    // Reset, negotiate, MSI-X vectors 1 (rx) and 2 (tx), both queues, DRIVER_OK.
    void bring_up(std::uint64_t features) {
        set_status(0);
        std::fill_n(memory_.span(rx.config().desc_table, 0x7000).begin(), 0x7000, 0);
        next_descriptor_ = {0, 0};
        enable_msix();
        ASSERT_TRUE(negotiate(features) & kStatusFeaturesOk);
        set_config_vector(0);
        setup_queue(0, rx.config(), 1);
        setup_queue(1, tx.config(), 2);
        driver_ok();
    }

    // One buffer per chain: writable for rx; for tx, `bytes` readable.
    std::uint64_t post(std::uint16_t queue, std::span<const std::uint8_t> bytes,
                       std::uint32_t length) {
        QueueBuilder& ring = queue == 0 ? rx : tx;
        const std::uint16_t index = next_descriptor_[queue]++;
        ring.set_descriptor(index, buffers_, length, queue == 0 ? kDescWrite : 0);
        if (!bytes.empty()) memory_.write_bytes(buffers_, bytes);
        // EVENT_IDX: interrupt me for every used buffer.
        ring.set_used_event(static_cast<std::uint16_t>(ring.used_idx()));
        ring.publish(index);
        const std::uint64_t at = buffers_;
        buffers_ += 0x11000;
        return at;
    }

  private:
    const vmm::GuestMemory& memory_;

  public:
    QueueBuilder rx;
    QueueBuilder tx;

  private:
    std::uint64_t buffers_;
    std::array<std::uint16_t, 2> next_descriptor_{};
};

class NetPciTest : public ::testing::Test {
  protected:
    void SetUp() override {
        const std::string why = testing::tap_unavailable();
        if (!why.empty()) GTEST_SKIP() << "no tap: " << why;
    }
    std::shared_ptr<Dev> make_nic(TestTap& tap, MacAddress mac) {
        return std::make_shared<Dev>(std::make_unique<VirtioNet>(tap.take(), mac), memory, router);
    }

    vmm::GuestMemory memory = vmm::GuestMemory::create(
        std::array<std::pair<vmm::GuestAddress, std::uint64_t>, 1>{{{0, 8 << 20}}});
    std::shared_ptr<pci::testing::FakeHypervisor> fake =
        std::make_shared<pci::testing::FakeHypervisor>();
    std::shared_ptr<pci::MsiRouter> router = std::make_shared<pci::MsiRouter>(fake);
};

TEST_F(NetPciTest, IdentityFeaturesAndConfig) {
    TestTap tap;
    const MacAddress mac{0x52, 0x54, 0x00, 0x12, 0x34, 0x56};
    auto nic = make_nic(tap, mac);
    std::array<std::uint8_t, 4> id{};
    nic->config_read(0, id);
    EXPECT_EQ(id[2] | id[3] << 8, 0x1041);  // 0x1040 + network
    std::array<std::uint8_t, 3> klass{};
    nic->config_read(0x09, klass);
    EXPECT_EQ(klass[2], 0x02);  // network controller
    EXPECT_EQ(klass[1], 0x00);  // Ethernet

    NicDriver driver(*nic, memory, 0x100000);
    const std::uint64_t offered = driver.device_features();
    EXPECT_EQ(offered & kLinuxFeatures, kLinuxFeatures);
    for (unsigned bit :
         {kNetFeatureHostTso6, kNetFeatureHostEcn, kNetFeatureGuestTso6, kNetFeatureGuestEcn}) {
        EXPECT_TRUE(offered & feature_bit(bit)) << bit;
    }
    EXPECT_FALSE(offered & feature_bit(22)) << "no MQ";
    EXPECT_FALSE(offered & feature_bit(17)) << "no control queue";

    for (std::size_t i = 0; i < mac.size(); ++i) {
        EXPECT_EQ(driver.read<std::uint8_t>(Dev::kDeviceConfigOffset + i), mac[i]);
    }
    EXPECT_EQ(driver.read<std::uint16_t>(Dev::kDeviceConfigOffset + 6), kNetStatusLinkUp);
    EXPECT_EQ(driver.read<std::uint16_t>(Dev::kDeviceConfigOffset + 8), 1);  // one queue pair
    // Past the end: zeros, no crash.
    EXPECT_EQ(driver.read<std::uint32_t>(Dev::kDeviceConfigOffset + 12), 0u);
}

TEST_F(NetPciTest, FramesBothWaysWithInterrupts) {
    TestTap tap;
    auto nic = make_nic(tap, default_mac(0));
    NicDriver driver(*nic, memory, 0x100000);
    driver.bring_up(kLinuxFeatures);
    const std::uint64_t buffer = driver.post(0, {}, 4096);
    driver.kick(0);

    const auto in = test_frame(1200, 1);
    tap.inject(in);
    ASSERT_TRUE(driver.wait_vector(1)) << "no receive interrupt";
    EXPECT_EQ(driver.rx.used(0).length, kNetHeaderBytes + in.size());
    const auto header = memory.read<NetHeader>(buffer);
    EXPECT_EQ(header.num_buffers, 1);
    EXPECT_EQ(header.gso_type, kNetGsoNone);
    EXPECT_TRUE(std::equal(in.begin(), in.end(), memory.span(buffer + 12, in.size()).begin()));

    const auto out = test_frame(700, 2);
    const auto bytes = with_header(out);
    driver.post(1, bytes, static_cast<std::uint32_t>(bytes.size()));
    driver.kick(1);
    const auto got = tap.receive();
    ASSERT_TRUE(got.has_value());
    EXPECT_EQ(*got, out);
    ASSERT_TRUE(driver.wait_vector(2)) << "no transmit interrupt";
    EXPECT_FALSE(driver.status() & kStatusNeedsReset);
}

TEST_F(NetPciTest, MalformedChainFailsOnlyThatNicUntilItsReset) {
    TestTap bad_tap;
    TestTap good_tap;
    auto bad = make_nic(bad_tap, default_mac(0));
    auto good = make_nic(good_tap, default_mac(1));
    NicDriver bad_driver(*bad, memory, 0x100000);
    NicDriver good_driver(*good, memory, 0x400000);
    bad_driver.bring_up(kLinuxFeatures);
    good_driver.bring_up(kLinuxFeatures);

    const std::vector<std::uint8_t> short_header(6, 0);
    bad_driver.post(1, short_header, 6);
    bad_driver.kick(1);
    ASSERT_TRUE(bad_driver.wait_vector(0)) << "no configuration interrupt";
    EXPECT_TRUE(bad_driver.status() & kStatusNeedsReset);

    const auto frame = test_frame(300, 5);
    const auto bytes = with_header(frame);
    bad_driver.post(1, bytes, static_cast<std::uint32_t>(bytes.size()));
    bad_driver.kick(1);  // ignored: the device waits for its reset
    good_driver.post(1, bytes, static_cast<std::uint32_t>(bytes.size()));
    good_driver.kick(1);
    const auto got = good_tap.receive();
    ASSERT_TRUE(got.has_value());
    EXPECT_EQ(*got, frame);
    EXPECT_FALSE(good_driver.status() & kStatusNeedsReset);
    EXPECT_FALSE(bad_tap.receive(200).has_value());

    // After a reset the failed NIC works again, on the same tap.
    bad_driver.bring_up(kLinuxFeatures);
    EXPECT_FALSE(bad_driver.status() & kStatusNeedsReset);
    bad_driver.post(1, bytes, static_cast<std::uint32_t>(bytes.size()));
    bad_driver.kick(1);
    const auto again = bad_tap.receive();
    ASSERT_TRUE(again.has_value());
    EXPECT_EQ(*again, frame);
}

}  // namespace
}  // namespace devices::virtio
