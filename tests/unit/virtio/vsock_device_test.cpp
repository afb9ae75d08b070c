// VirtioVsock through the virtio-pci transport, over a recording backend:
// identity, the guest CID in config space, features, the backend started at
// DRIVER_OK with the queues' eventfds and stopped at reset, the event queue
// holding its buffers, and the guest mistakes that fail the device.
#include <gtest/gtest.h>
#include <sys/eventfd.h>

#include <mutex>

#include "base/error.hpp"
#include "base/unique_fd.hpp"
#include "devices/virtio/vsock/virtio_vsock.hpp"
#include "tests/unit/pci/fake_hypervisor.hpp"
#include "tests/unit/virtio/queue_builder.hpp"
#include "tests/unit/virtio/virtio_pci_driver.hpp"

namespace devices::virtio {
namespace {

using testing::eventually;
using testing::PciDriver;
using testing::readable;
using testing::signal_eventfd;

constexpr std::uint64_t kCid = 0x2345'6789;
constexpr std::uint64_t kSeqpacket = feature_bit(kVsockFeatureSeqpacket);

struct BackendLog {
    std::mutex mutex;
    int starts = 0;
    int stops = 0;
    bool running = false;
    std::uint64_t features = 0;
    std::vector<OffloadedQueue> queues;
    bool fail_start = false;
    base::UniqueFd error{::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)};

    int start_count() {
        std::lock_guard lock(mutex);
        return starts;
    }
    int stop_count() {
        std::lock_guard lock(mutex);
        return stops;
    }
};

class RecordingBackend : public VsockBackend {
  public:
    RecordingBackend(std::shared_ptr<BackendLog> log, std::uint64_t features)
        : log_(std::move(log)), features_(features) {}

    std::uint64_t guest_cid() const override { return kCid; }
    std::uint64_t device_features() const override { return features_; }
    void start(const vmm::GuestMemory&, std::uint64_t features,
               std::span<const OffloadedQueue, 2> queues) override {
        std::lock_guard lock(log_->mutex);
        if (log_->fail_start) throw base::Error("VHOST_SET_VRING_ADDR: Bad address");
        ++log_->starts;
        log_->running = true;
        log_->features = features;
        log_->queues.assign(queues.begin(), queues.end());
    }
    void stop() noexcept override {
        std::lock_guard lock(log_->mutex);
        if (!log_->running) return;
        log_->running = false;
        ++log_->stops;
    }
    int error_eventfd() const override { return log_->error.get(); }

  private:
    std::shared_ptr<BackendLog> log_;
    std::uint64_t features_;
};

const QueueConfig kRx{16, 0x1000, 0x2000, 0x3000};
const QueueConfig kTx{16, 0x4000, 0x5000, 0x6000};
const QueueConfig kEvent{8, 0x7000, 0x8000, 0x9000};

struct VsockDeviceTest : ::testing::Test {
    vmm::GuestMemory memory = vmm::GuestMemory::create(
        std::array<std::pair<vmm::GuestAddress, std::uint64_t>, 1>{{{0, 1 << 20}}});
    std::shared_ptr<pci::testing::FakeHypervisor> hypervisor =
        std::make_shared<pci::testing::FakeHypervisor>();
    std::shared_ptr<pci::MsiRouter> router = std::make_shared<pci::MsiRouter>(hypervisor);
    std::shared_ptr<BackendLog> log = std::make_shared<BackendLog>();

    std::shared_ptr<VirtioPciDevice> make(std::uint64_t backend_features = kSeqpacket) {
        return std::make_shared<VirtioPciDevice>(
            std::make_unique<VirtioVsock>(
                std::make_unique<RecordingBackend>(log, backend_features)),
            memory, router);
    }

    // Linux's order: MSI-X, features, config vector 0, rx/tx/event on 1/2/3.
    void bring_up(PciDriver& driver, std::uint64_t features, bool with_rx = true) {
        driver.enable_msix();
        ASSERT_TRUE(driver.negotiate(features) & kStatusFeaturesOk);
        driver.set_config_vector(0);
        if (with_rx) driver.setup_queue(kVsockRxQueue, kRx, 1);
        driver.setup_queue(kVsockTxQueue, kTx, 2);
        driver.setup_queue(kVsockEventQueue, kEvent, 3);
        driver.driver_ok();
    }
};

TEST_F(VsockDeviceTest, IdentityConfigAndFeatures) {
    auto device = make();
    std::array<std::uint8_t, 4> id{};
    device->config_read(0, id);
    EXPECT_EQ(id[2] | id[3] << 8, 0x1040 + 19);
    std::array<std::uint8_t, 4> class_code{};
    device->config_read(0x08, class_code);
    EXPECT_EQ(class_code[3], 0x07);  // communication controller
    EXPECT_EQ(class_code[2], 0x80);  // other
    PciDriver driver(*device);
    EXPECT_EQ(driver.read<std::uint16_t>(0x12), 3);  // rx, tx, event
    EXPECT_EQ(driver.read<std::uint64_t>(VirtioPciDevice::kDeviceConfigOffset), kCid);
    EXPECT_EQ(driver.read<std::uint32_t>(VirtioPciDevice::kDeviceConfigOffset), kCid & 0xffff'ffff);
    EXPECT_EQ(driver.read<std::uint32_t>(VirtioPciDevice::kDeviceConfigOffset + 4), kCid >> 32);
    // Read-only, and nothing past the 8 bytes.
    driver.write<std::uint64_t>(VirtioPciDevice::kDeviceConfigOffset, 99);
    EXPECT_EQ(driver.read<std::uint64_t>(VirtioPciDevice::kDeviceConfigOffset), kCid);
    EXPECT_EQ(driver.read<std::uint32_t>(VirtioPciDevice::kDeviceConfigOffset + 6), 0u);
    EXPECT_EQ(driver.device_features(), testing::kRingFeatures | kSeqpacket);
}

TEST_F(VsockDeviceTest, SeqpacketIsOfferedOnlyWhenTheBackendHasIt) {
    auto device = make(0);
    PciDriver driver(*device);
    EXPECT_EQ(driver.device_features(), testing::kRingFeatures);
    EXPECT_FALSE(driver.negotiate(testing::kRingFeatures | kSeqpacket) & kStatusFeaturesOk);
}

TEST_F(VsockDeviceTest, DriverOkStartsTheBackendWithTheQueuesEventfds) {
    auto device = make();
    PciDriver driver(*device);
    const std::uint64_t features = feature_bit(kFeatureVersion1) | kSeqpacket;
    bring_up(driver, features);
    ASSERT_TRUE(eventually([&] { return log->start_count() == 1; }));
    std::lock_guard lock(log->mutex);
    EXPECT_EQ(log->features, features);
    ASSERT_EQ(log->queues.size(), 2u);
    for (std::uint16_t i : {kVsockRxQueue, kVsockTxQueue}) {
        const auto& queue = log->queues[i];
        const QueueConfig& want = i == kVsockRxQueue ? kRx : kTx;
        EXPECT_EQ(queue.config.desc_table, want.desc_table) << "queue " << i;
        EXPECT_EQ(queue.config.used_ring, want.used_ring) << "queue " << i;
        EXPECT_EQ(queue.kick_fd, device->kick_fd(i)) << "queue " << i;
        EXPECT_EQ(queue.call_fd, device->msix().vector_eventfd(i + 1)) << "queue " << i;
    }
    EXPECT_EQ(device->status() & kStatusNeedsReset, 0);
}

TEST_F(VsockDeviceTest, EventQueueHoldsItsBuffersAndResetStopsTheBackend) {
    auto device = make();
    PciDriver driver(*device);
    bring_up(driver, testing::kRingFeatures);
    ASSERT_TRUE(eventually([&] { return log->start_count() == 1; }));
    testing::QueueBuilder events(memory, kEvent);
    for (std::uint16_t i = 0; i < 4; ++i) {
        events.set_descriptor(i, 0x10000 + 4u * i, 4, kDescWrite);
        events.publish(i);
    }
    driver.kick(kVsockEventQueue);
    ASSERT_TRUE(eventually([&] { return !readable(device->kick_fd(kVsockEventQueue)); }));
    driver.set_status(0);  // joins the worker: whatever it did is done
    EXPECT_EQ(log->stop_count(), 1);
    EXPECT_EQ(events.used_idx(), 0) << "an event buffer was consumed";
    EXPECT_FALSE(driver.wait_vector(3, 0));
    // And the device starts again after the reset.
    bring_up(driver, testing::kRingFeatures);
    ASSERT_TRUE(eventually([&] { return log->start_count() == 2; }));
}

TEST_F(VsockDeviceTest, BackendRefusingTheRingsNeedsReset) {
    log->fail_start = true;
    auto device = make();
    PciDriver driver(*device);
    bring_up(driver, testing::kRingFeatures);
    ASSERT_TRUE(driver.wait_vector(0));
    EXPECT_TRUE(device->status() & kStatusNeedsReset);
    EXPECT_EQ(log->start_count(), 0);
}

TEST_F(VsockDeviceTest, MissingRxQueueNeedsReset) {
    auto device = make();
    PciDriver driver(*device);
    bring_up(driver, testing::kRingFeatures, /*with_rx=*/false);
    ASSERT_TRUE(driver.wait_vector(0));
    EXPECT_TRUE(device->status() & kStatusNeedsReset);
    EXPECT_EQ(log->start_count(), 0);
}

TEST_F(VsockDeviceTest, KernelReportedRingErrorStopsTheDevice) {
    auto device = make();
    PciDriver driver(*device);
    bring_up(driver, testing::kRingFeatures);
    ASSERT_TRUE(eventually([&] { return log->start_count() == 1; }));
    signal_eventfd(log->error.get());  // vhost's vq_err()
    ASSERT_TRUE(driver.wait_vector(0));
    EXPECT_TRUE(device->status() & kStatusNeedsReset);
    EXPECT_EQ(log->stop_count(), 1);
    EXPECT_FALSE(readable(log->error.get()));
}

}  // namespace
}  // namespace devices::virtio
