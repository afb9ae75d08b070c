#include <gtest/gtest.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstring>

#include "devices/virtio/blk/virtio_blk.hpp"
#include "devices/virtio/rng/virtio_rng.hpp"
#include "devices/virtio/virtio_pci_device.hpp"
#include "tests/unit/pci/fake_hypervisor.hpp"
#include "tests/unit/virtio/memory_backend.hpp"
#include "tests/unit/virtio/queue_builder.hpp"
#include "tests/unit/virtio/virtio_pci_driver.hpp"

namespace devices::virtio {
namespace {

using testing::eventually;
using testing::kRingFeatures;
using testing::MemoryBackend;
using testing::msi_data;
using testing::PciDriver;
using testing::QueueBuilder;
using Dev = VirtioPciDevice;

struct VirtioPciTest : ::testing::Test {
    vmm::GuestMemory memory = vmm::GuestMemory::create(
        std::array<std::pair<vmm::GuestAddress, std::uint64_t>, 1>{{{0, 4 << 20}}});
    std::shared_ptr<pci::testing::FakeHypervisor> fake =
        std::make_shared<pci::testing::FakeHypervisor>();
    pci::testing::FakeHypervisor& hypervisor = *fake;
    std::shared_ptr<pci::MsiRouter> router = std::make_shared<pci::MsiRouter>(fake);

    std::shared_ptr<Dev> make_rng() {
        return std::make_shared<Dev>(std::make_unique<VirtioRng>(), memory, router);
    }
};

TEST_F(VirtioPciTest, PciIdentityAndCapabilities) {
    auto device = make_rng();
    std::array<std::uint8_t, 4> id{};
    device->config_read(0, id);
    EXPECT_EQ(id[0] | id[1] << 8, kPciVendorId);
    EXPECT_EQ(id[2] | id[3] << 8, 0x1044);  // 0x1040 + rng
    std::array<std::uint8_t, 1> byte{};
    device->config_read(0x08, byte);
    EXPECT_EQ(byte[0], 1);  // modern-only revision
    // Walk the capability list: MSI-X then common, notify, ISR, PCI cfg.
    std::vector<std::uint8_t> kinds;
    device->config_read(0x34, byte);
    for (std::uint8_t at = byte[0]; at != 0;) {
        std::array<std::uint8_t, 4> head{};
        device->config_read(at, head);
        kinds.push_back(head[0] == pci::kCapabilityVendor ? head[3] : head[0]);
        at = head[1];
    }
    const std::vector<std::uint8_t> expected{pci::kCapabilityMsix, kPciCapCommonCfg,
                                             kPciCapNotifyCfg, kPciCapIsrCfg, kPciCapPciCfg};
    EXPECT_EQ(kinds, expected);
    ASSERT_EQ(device->bars().size(), 2u);
}

TEST_F(VirtioPciTest, FeatureNegotiation) {
    auto device = make_rng();
    PciDriver driver(*device);
    EXPECT_EQ(driver.device_features(), kRingFeatures);
    // A feature that was not offered: FEATURES_OK does not stick.
    EXPECT_FALSE(driver.negotiate(kRingFeatures | feature_bit(40)) & kStatusFeaturesOk);
    // Legacy (no VERSION_1) is refused too.
    EXPECT_FALSE(driver.negotiate(feature_bit(kFeatureEventIdx)) & kStatusFeaturesOk);
    EXPECT_TRUE(driver.negotiate(feature_bit(kFeatureVersion1)) & kStatusFeaturesOk);
    // Features are frozen after FEATURES_OK.
    driver.write<std::uint32_t>(0x08, 0);
    driver.write<std::uint32_t>(0x0c, 0xffff'ffff);
    EXPECT_EQ(driver.read<std::uint32_t>(0x0c), 0u);
}

TEST_F(VirtioPciTest, QueueRegistersValidateTheGuest) {
    auto device = make_rng();
    PciDriver driver(*device);
    driver.negotiate(kRingFeatures);
    EXPECT_EQ(driver.read<std::uint16_t>(0x12), 1);  // num_queues
    driver.write<std::uint16_t>(0x16, 5);            // a queue that does not exist
    EXPECT_EQ(driver.read<std::uint16_t>(0x18), 0);
    driver.write<std::uint16_t>(0x18, 8);  // ignored
    driver.write<std::uint16_t>(0x16, 0);
    EXPECT_EQ(driver.read<std::uint16_t>(0x18), 256);
    driver.write<std::uint16_t>(0x1a, 77);  // no such MSI-X vector
    EXPECT_EQ(driver.read<std::uint16_t>(0x1a), kMsiNoVector);
    driver.write<std::uint16_t>(0x10, 1);
    EXPECT_EQ(driver.read<std::uint16_t>(0x10), 1);
    // Once enabled, a queue's addresses are frozen.
    driver.setup_queue(0, testing::default_queue(), 1);
    driver.write<std::uint64_t>(0x20, 0xdead'0000);
    EXPECT_EQ(driver.read<std::uint64_t>(0x20), 0x1000u);
    // Writes that straddle fields or fall outside do nothing.
    driver.write<std::uint64_t>(0x1c, ~std::uint64_t{0});
    driver.write<std::uint32_t>(0x3e, 0xffff'ffff);
    EXPECT_EQ(driver.read<std::uint16_t>(0x1c), 1);
}

TEST_F(VirtioPciTest, RngServesRandomBytesThroughMsix) {
    auto device = make_rng();
    PciDriver driver(*device);
    driver.enable_msix();
    ASSERT_TRUE(driver.negotiate(kRingFeatures) & kStatusFeaturesOk);
    driver.set_config_vector(0);
    driver.setup_queue(0, testing::default_queue(), 1);
    driver.driver_ok();
    QueueBuilder queue(memory, testing::default_queue());
    queue.set_descriptor(0, 0x10000, 64, kDescWrite);
    queue.publish(0);
    driver.kick(0);
    ASSERT_TRUE(driver.wait_vector(1));
    EXPECT_EQ(queue.used_idx(), 1);
    EXPECT_EQ(queue.used(0).length, 64u);
    const auto bytes = memory.span(0x10000, 64);
    EXPECT_NE(std::count(bytes.begin(), bytes.end(), 0), 64);
    EXPECT_EQ(device->status() & kStatusNeedsReset, 0);
    // The MSI route reached KVM lazily, with the data the guest programmed.
    bool found = false;
    for (const auto& entry : hypervisor.routing) {
        if (entry.type == KVM_IRQ_ROUTING_MSI && entry.u.msi.data == msi_data(1)) found = true;
    }
    EXPECT_TRUE(found);
}

TEST_F(VirtioPciTest, BadRingsAtDriverOkNeedReset) {
    auto device = make_rng();
    PciDriver driver(*device);
    driver.enable_msix();
    driver.negotiate(kRingFeatures);
    driver.set_config_vector(0);
    driver.setup_queue(0, QueueConfig{16, 0x7fff'0000, 0x3000, 0x4000}, 1);  // outside RAM
    driver.driver_ok();
    EXPECT_TRUE(driver.status() & kStatusNeedsReset);
    EXPECT_TRUE(driver.wait_vector(0));  // config change interrupt
    // Reset recovers the device completely.
    driver.set_status(0);
    EXPECT_EQ(driver.status(), 0);
    driver.negotiate(kRingFeatures);
    driver.setup_queue(0, testing::default_queue(), 1);
    driver.driver_ok();
    EXPECT_FALSE(driver.status() & kStatusNeedsReset);
}

TEST_F(VirtioPciTest, QueueSizeAboveMaximumNeedsReset) {
    auto device = make_rng();
    PciDriver driver(*device);
    driver.negotiate(kRingFeatures);
    driver.setup_queue(0, QueueConfig{1024, 0x10000, 0x20000, 0x30000}, 1);
    driver.driver_ok();
    EXPECT_TRUE(driver.status() & kStatusNeedsReset);
}

TEST_F(VirtioPciTest, MalformedChainFailsOnlyThatDevice) {
    auto bad = make_rng();
    auto good = make_rng();
    PciDriver bad_driver(*bad);
    PciDriver good_driver(*good);
    const QueueConfig bad_queue = testing::default_queue();
    const QueueConfig good_queue{16, 0x101000, 0x103000, 0x104000};
    for (auto [driver, config] :
         {std::pair{&bad_driver, bad_queue}, std::pair{&good_driver, good_queue}}) {
        driver->enable_msix();
        driver->negotiate(kRingFeatures);
        driver->set_config_vector(0);
        driver->setup_queue(0, config, 1);
        driver->driver_ok();
    }
    QueueBuilder bad_ring(memory, bad_queue);
    bad_ring.set_descriptor(0, 0x10000, 16, kDescNext | kDescWrite, 0);  // loops
    bad_ring.publish(0);
    bad_driver.kick(0);
    ASSERT_TRUE(bad_driver.wait_vector(0));
    EXPECT_TRUE(bad_driver.status() & kStatusNeedsReset);
    // Further kicks of the failed device are ignored, and the other device works.
    bad_driver.kick(0);
    QueueBuilder good_ring(memory, good_queue);
    good_ring.set_descriptor(0, 0x120000, 32, kDescWrite);
    good_ring.publish(0);
    good_driver.kick(0);
    ASSERT_TRUE(good_driver.wait_vector(1));
    EXPECT_EQ(good_ring.used(0).length, 32u);
    EXPECT_FALSE(good_driver.status() & kStatusNeedsReset);
}

TEST_F(VirtioPciTest, BlkReadsConfigAndSurvivesResetMidRequest) {
    auto backend = std::make_unique<MemoryBackend>(1 << 20);
    auto* disk = backend.get();
    BlockDeviceOptions options;
    options.serial = "abc";
    options.queues = 2;
    auto device = std::make_shared<Dev>(std::make_unique<VirtioBlk>(std::move(backend), options),
                                        memory, router);
    PciDriver driver(*device);
    EXPECT_EQ(driver.read<std::uint64_t>(Dev::kDeviceConfigOffset), (1u << 20) / 512);
    EXPECT_EQ(driver.read<std::uint16_t>(Dev::kDeviceConfigOffset + 34), 2);
    // Past the end of device config: zeros, no crash.
    EXPECT_EQ(driver.read<std::uint64_t>(Dev::kDeviceConfigOffset + 56), 0u);
    const std::uint64_t features = driver.device_features();
    EXPECT_TRUE(features & feature_bit(kBlkFeatureFlush));
    EXPECT_TRUE(features & feature_bit(kBlkFeatureMq));
    EXPECT_FALSE(features & feature_bit(kBlkFeatureRo));

    driver.enable_msix();
    driver.negotiate(features);
    driver.setup_queue(0, testing::default_queue(), 1);
    driver.driver_ok();
    // Many writes in flight, then a reset while the worker runs them.
    QueueBuilder ring(memory, testing::default_queue());
    for (std::uint16_t i = 0; i < 5; ++i) {
        const std::uint64_t base = 0x20000 + i * 0x2000;
        memory.write<std::uint32_t>(base, kBlkTypeOut);
        memory.write<std::uint64_t>(base + 8, i);
        ring.set_descriptor(3 * i, base, 16, kDescNext, 3 * i + 1);
        ring.set_descriptor(3 * i + 1, base + 0x100, 512, kDescNext, 3 * i + 2);
        ring.set_descriptor(3 * i + 2, base + 0x400, 1, kDescWrite);
        ring.publish(3 * i);
    }
    driver.kick(0);
    driver.set_status(0);
    EXPECT_EQ(driver.status(), 0);
    EXPECT_EQ(disk->flushes, 0);
    // And the device comes back after the reset.
    memory.write<std::uint16_t>(0x3002, 0);  // driver re-initializes its rings
    std::fill_n(memory.span(0x4000, 0x100).begin(), 0x100, 0);
    driver.negotiate(features);
    driver.setup_queue(0, testing::default_queue(), 1);
    driver.driver_ok();
    QueueBuilder fresh(memory, testing::default_queue());
    memory.write<std::uint32_t>(0x20000, kBlkTypeFlush);
    fresh.set_descriptor(0, 0x20000, 16, kDescNext, 1);
    fresh.set_descriptor(1, 0x20400, 1, kDescWrite);
    fresh.publish(0);
    driver.wait_vector(1, 0);  // drop an interrupt left from before the reset
    driver.kick(0);
    ASSERT_TRUE(driver.wait_vector(1));
    EXPECT_EQ(fresh.used_idx(), 1);
    EXPECT_EQ(disk->flushes, 1);
    EXPECT_EQ(memory.read<std::uint8_t>(0x20400), kBlkStatusOk);
}

TEST_F(VirtioPciTest, NotificationsUseIoeventfdsAtTheBarAddress) {
    auto device = make_rng();
    device->bar_moved(Dev::kBarRegisters, std::nullopt, 0x40'0000'0000);
    EXPECT_TRUE(hypervisor.ioeventfds.count({device->kick_fd(0), 0x40'0000'3000, 2}));
    device->bar_moved(Dev::kBarRegisters, 0x40'0000'0000, 0x50'0000'0000);
    EXPECT_FALSE(hypervisor.ioeventfds.count({device->kick_fd(0), 0x40'0000'3000, 2}));
    EXPECT_TRUE(hypervisor.ioeventfds.count({device->kick_fd(0), 0x50'0000'3000, 2}));
    device.reset();
    EXPECT_TRUE(hypervisor.ioeventfds.empty());
    EXPECT_TRUE(hypervisor.irqfds.empty());
}

TEST_F(VirtioPciTest, PciCfgWindowReachesTheBar) {
    auto device = make_rng();
    std::uint16_t cap = 0;
    std::array<std::uint8_t, 1> byte{};
    device->config_read(0x34, byte);
    for (std::uint8_t at = byte[0]; at != 0;) {
        std::array<std::uint8_t, 4> head{};
        device->config_read(at, head);
        if (head[0] == pci::kCapabilityVendor && head[3] == kPciCapPciCfg) cap = at;
        at = head[1];
    }
    ASSERT_NE(cap, 0);
    const std::array<std::uint8_t, 1> bar{0};
    device->config_write(cap + 4, bar);
    const std::uint32_t offset = 0x12, length = 2;  // num_queues
    std::array<std::uint8_t, 4> word{};
    std::memcpy(word.data(), &offset, 4);
    device->config_write(cap + 8, word);
    std::memcpy(word.data(), &length, 4);
    device->config_write(cap + 12, word);
    device->config_read(cap + 16, word);
    EXPECT_EQ(word[0], 1);
    // A bad length does nothing.
    const std::uint32_t bad_length = 3;
    std::memcpy(word.data(), &bad_length, 4);
    device->config_write(cap + 12, word);
    device->config_write(cap + 16, word);
}

TEST_F(VirtioPciTest, IntxWhenMsixIsOff) {
    auto device = make_rng();
    device->attached(3, 19);
    PciDriver driver(*device);
    driver.negotiate(kRingFeatures);
    driver.setup_queue(0, testing::default_queue(), 0);
    driver.driver_ok();
    QueueBuilder queue(memory, testing::default_queue());
    queue.set_descriptor(0, 0x10000, 8, kDescWrite);
    queue.publish(0);
    driver.kick(0);
    // The worker sets the ISR bit before it raises the line: once the line
    // is up, the ISR read below cannot beat it.
    const auto line = [&](bool level) {
        std::lock_guard lock(hypervisor.mutex);
        return std::find(hypervisor.lines.begin(), hypervisor.lines.end(),
                         std::make_pair(std::uint32_t{19}, level)) != hypervisor.lines.end();
    };
    ASSERT_TRUE(eventually([&] { return line(true); }));
    EXPECT_EQ(queue.used_idx(), 1);
    EXPECT_TRUE(driver.pci_status() & pci::kStatusInterrupt);
    EXPECT_EQ(driver.read<std::uint8_t>(Dev::kIsrOffset), 1);  // read clears
    EXPECT_EQ(driver.read<std::uint8_t>(Dev::kIsrOffset), 0);
    EXPECT_FALSE(driver.pci_status() & pci::kStatusInterrupt);
    std::lock_guard lock(hypervisor.mutex);
    // Asserted once by the used buffer, deasserted once by the ISR read.
    const std::vector<std::pair<std::uint32_t, bool>> expected{{19, true}, {19, false}};
    EXPECT_EQ(hypervisor.lines, expected);
}

TEST_F(VirtioPciTest, IntxDisableHoldsTheLineLowWhileStatusShowsThePending) {
    auto device = make_rng();
    device->attached(3, 19);
    PciDriver driver(*device);
    driver.set_command(pci::kCommandMemory | pci::kCommandBusMaster | pci::kCommandIntxDisable);
    driver.negotiate(kRingFeatures);
    driver.setup_queue(0, testing::default_queue(), 0);
    driver.driver_ok();
    QueueBuilder queue(memory, testing::default_queue());
    queue.set_descriptor(0, 0x10000, 8, kDescWrite);
    queue.publish(0);
    driver.kick(0);
    // Status.Interrupt reports the pending INTx even though it is disabled.
    ASSERT_TRUE(eventually([&] { return (driver.pci_status() & pci::kStatusInterrupt) != 0; }));
    {
        std::lock_guard lock(hypervisor.mutex);
        EXPECT_TRUE(hypervisor.lines.empty());
    }
    // Enabling INTx with the interrupt pending asserts the line at once;
    // disabling it again deasserts it; the ISR read finds the bit.
    driver.set_command(pci::kCommandMemory | pci::kCommandBusMaster);
    driver.set_command(pci::kCommandMemory | pci::kCommandBusMaster | pci::kCommandIntxDisable);
    EXPECT_EQ(driver.read<std::uint8_t>(Dev::kIsrOffset), 1);
    EXPECT_FALSE(driver.pci_status() & pci::kStatusInterrupt);
    std::lock_guard lock(hypervisor.mutex);
    const std::vector<std::pair<std::uint32_t, bool>> expected{{19, true}, {19, false}};
    EXPECT_EQ(hypervisor.lines, expected);
}

// A device that counts its activations and how many workers run it at once.
class CountingDevice : public VirtioDevice {
  public:
    std::string name() const override { return "counting"; }
    std::uint16_t device_type() const override { return kDeviceRng; }
    std::uint32_t pci_class_code() const override { return 0; }
    std::uint64_t device_features() const override { return 0; }
    std::uint16_t queue_count() const override { return 1; }
    std::size_t config_size() const override { return 0; }
    void read_config(std::uint64_t, std::span<std::uint8_t>) override {}
    void activate(VirtioContext&) override { ++activations; }
    void queue_notified(VirtioContext&, std::uint16_t) override {}
    void reset() override { ++resets; }
    std::atomic<int> activations{0};
    std::atomic<int> resets{0};
};

TEST_F(VirtioPciTest, ClearingStatusBitsWithoutResetFailsTheDevice) {
    auto counting = std::make_unique<CountingDevice>();
    auto* counter = counting.get();
    auto device = std::make_shared<Dev>(std::move(counting), memory, router);
    PciDriver driver(*device);
    driver.enable_msix();
    driver.negotiate(kRingFeatures);
    driver.set_config_vector(0);
    driver.setup_queue(0, testing::default_queue(), 1);
    driver.driver_ok();
    ASSERT_TRUE(eventually([&] { return counter->activations.load() == 1; }));
    // DRIVER_OK cleared, then set again: once two workers ran one device.
    driver.set_status(kStatusAcknowledge | kStatusDriver | kStatusFeaturesOk);
    EXPECT_TRUE(driver.status() & kStatusNeedsReset);
    EXPECT_TRUE(driver.status() & kStatusDriverOk);  // the write was ignored
    EXPECT_TRUE(driver.wait_vector(0));
    EXPECT_FALSE(device->active());  // a failed device stops
    driver.driver_ok();
    EXPECT_FALSE(device->active());
    EXPECT_EQ(counter->activations.load(), 1);
    // Setting bits is fine; a reset recovers.
    driver.set_status(0);
    driver.negotiate(kRingFeatures);
    driver.setup_queue(0, testing::default_queue(), 1);
    driver.driver_ok();
    driver.set_status(kStatusAcknowledge | kStatusDriver | kStatusFeaturesOk | kStatusDriverOk |
                      kStatusFailed);
    EXPECT_FALSE(driver.status() & kStatusNeedsReset);
    ASSERT_TRUE(eventually([&] { return counter->activations.load() == 2; }));
    EXPECT_TRUE(device->active());
    // NEEDS_RESET is the device's bit: a driver cannot set it.
    driver.set_status(0);
    driver.set_status(kStatusAcknowledge | kStatusNeedsReset);
    EXPECT_EQ(driver.status(), kStatusAcknowledge);
}

std::size_t count_of(const std::string& text, const std::string& what) {
    std::size_t count = 0;
    for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++count;
    return count;
}

TEST_F(VirtioPciTest, RepeatedRefusalsAndFailuresAreRateLimited) {
    auto device = make_rng();
    PciDriver driver(*device);
    ::testing::internal::CaptureStderr();
    for (int i = 0; i < 100; ++i) {
        EXPECT_FALSE(driver.negotiate(kRingFeatures | feature_bit(40)) & kStatusFeaturesOk);
        driver.negotiate(kRingFeatures);
        driver.setup_queue(0, QueueConfig{16, 0x7fff'0000, 0x3000, 0x4000}, 1);  // outside RAM
        driver.driver_ok();
        EXPECT_TRUE(driver.status() & kStatusNeedsReset);
    }
    const std::string log = ::testing::internal::GetCapturedStderr();
    // 100 each: 5 in full, then at 8, 16, 32 and 64.
    EXPECT_EQ(count_of(log, "refused"), 9u) << log;
    EXPECT_EQ(count_of(log, "needs a reset"), 9u) << log;
    EXPECT_NE(log.find("(64 times so far)"), std::string::npos) << log;
}

TEST_F(VirtioPciTest, NoWorkerThreadFailsTheDeviceNotTheVm) {
#ifdef __SANITIZE_ADDRESS__
    // UBSan's vptr check probes memory through a pipe of its own, which
    // EMFILE denies: it would report the probe, not our code.
    GTEST_SKIP() << "EMFILE cannot be staged under the sanitizers";
#endif
    auto device = make_rng();
    PciDriver driver(*device);
    driver.negotiate(kRingFeatures);
    driver.setup_queue(0, testing::default_queue(), 0);
    // No fd left for the worker's epoll and eventfd: what EMFILE looks like.
    rlimit saved{};
    ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &saved), 0);
    const int lowest_free = ::dup(0);
    ASSERT_GE(lowest_free, 0);
    ::close(lowest_free);
    rlimit tight = saved;
    tight.rlim_cur = static_cast<rlim_t>(lowest_free);
    ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &tight), 0);
    EXPECT_NO_THROW(driver.driver_ok());
    ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &saved), 0);
    EXPECT_TRUE(driver.status() & kStatusNeedsReset);
    EXPECT_FALSE(device->active());
    // Once the host has fds again, a reset brings the device back.
    driver.negotiate(kRingFeatures);
    driver.setup_queue(0, testing::default_queue(), 0);
    driver.driver_ok();
    EXPECT_TRUE(device->active());
    EXPECT_FALSE(driver.status() & kStatusNeedsReset);
}

TEST_F(VirtioPciTest, RefusedMsiRouteOnUnmaskFailsOnlyThisDevice) {
    auto device = make_rng();
    auto other = make_rng();
    PciDriver driver(*device);
    PciDriver other_driver(*other);
    driver.enable_msix();
    driver.negotiate(kRingFeatures);
    driver.set_config_vector(0);
    driver.setup_queue(0, testing::default_queue(), 1);
    driver.driver_ok();
    driver.mask_vector(1, true);
    QueueBuilder queue(memory, testing::default_queue());
    queue.set_descriptor(0, 0x10000, 8, kDescWrite);
    queue.publish(0);
    driver.kick(0);
    ASSERT_TRUE(eventually([&] { return device->msix().pending(1); }));
    // The guest rewrites the vector to something KVM refuses, then unmasks:
    // the vCPU's MMIO write must not throw into the vCPU loop.
    driver.write_vector_data(1, 0xbad);
    {
        std::lock_guard lock(hypervisor.mutex);
        hypervisor.fail_routing = true;
    }
    EXPECT_NO_THROW(driver.mask_vector(1, false));
    {
        std::lock_guard lock(hypervisor.mutex);
        hypervisor.fail_routing = false;
    }
    EXPECT_TRUE(driver.status() & kStatusNeedsReset);
    EXPECT_FALSE(device->active());
    // The refused route did not stay in the table for the next device.
    other_driver.enable_msix();
    other_driver.negotiate(kRingFeatures);
    other_driver.setup_queue(0, QueueConfig{16, 0x101000, 0x103000, 0x104000}, 1);
    other_driver.driver_ok();
    QueueBuilder other_queue(memory, QueueConfig{16, 0x101000, 0x103000, 0x104000});
    other_queue.set_descriptor(0, 0x120000, 8, kDescWrite);
    other_queue.publish(0);
    other_driver.kick(0);
    ASSERT_TRUE(other_driver.wait_vector(1));
    std::lock_guard lock(hypervisor.mutex);
    for (const auto& entry : hypervisor.routing) {
        EXPECT_FALSE(entry.type == KVM_IRQ_ROUTING_MSI && entry.u.msi.data == 0xbad);
    }
}

TEST_F(VirtioPciTest, NoDmaAndNoMsiWithoutBusMastering) {
    auto device = make_rng();
    PciDriver driver(*device);
    driver.set_command(pci::kCommandMemory);
    driver.enable_msix();
    driver.negotiate(kRingFeatures);
    driver.set_config_vector(0);
    driver.setup_queue(0, testing::default_queue(), 1);
    QueueBuilder queue(memory, testing::default_queue());
    queue.set_descriptor(0, 0x10000, 8, kDescWrite);
    queue.publish(0);
    // DRIVER_OK without BME: no worker, so nothing can touch guest memory.
    driver.driver_ok();
    driver.kick(0);
    EXPECT_FALSE(device->active());
    EXPECT_EQ(queue.used_idx(), 0);
    // Bus mastering starts it, and it serves what was posted.
    driver.set_command(pci::kCommandMemory | pci::kCommandBusMaster);
    EXPECT_TRUE(device->active());
    ASSERT_TRUE(driver.wait_vector(1));
    EXPECT_EQ(queue.used_idx(), 1);
    // Clearing BME while it runs stops it at once and fails it; the
    // failure's interrupt is held (pending), not sent.
    driver.set_command(pci::kCommandMemory);
    EXPECT_FALSE(device->active());
    EXPECT_TRUE(driver.status() & kStatusNeedsReset);
    EXPECT_FALSE(testing::readable(device->msix().vector_eventfd(0)));
    EXPECT_TRUE(device->msix().pending(0));
    queue.set_descriptor(1, 0x10100, 8, kDescWrite);
    queue.publish(1);
    driver.kick(0);
    EXPECT_EQ(queue.used_idx(), 1);
    // Setting BME again delivers the held interrupt but does not restart a
    // failed device.
    driver.set_command(pci::kCommandMemory | pci::kCommandBusMaster);
    EXPECT_TRUE(driver.wait_vector(0, 0));
    EXPECT_FALSE(device->active());
    EXPECT_EQ(queue.used_idx(), 1);
}

}  // namespace
}  // namespace devices::virtio
