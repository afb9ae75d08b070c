// The transport's offloaded queues (what vhost-vsock, and later vhost-net,
// run in the host kernel): which eventfds a device is handed, that the
// worker leaves such a queue alone, eager MSI routes for vectors the kernel
// writes, the INTx/NO_VECTOR relay, and a driver that changes vectors or
// disables MSI-X under a running kernel queue.
#include <gtest/gtest.h>

#include <condition_variable>
#include <mutex>

#include "tests/unit/pci/fake_hypervisor.hpp"
#include "tests/unit/virtio/queue_builder.hpp"
#include "tests/unit/virtio/virtio_pci_driver.hpp"

namespace devices::virtio {
namespace {

using testing::eventually;
using testing::msi_data;
using testing::PciDriver;
using testing::readable;
using testing::signal_eventfd;

// What the device saw, shared with the test (the transport owns the device).
struct Observed {
    std::mutex mutex;
    int activations = 0;
    int resets = 0;
    std::optional<OffloadedQueue> offloaded[2];
    bool worker_queue_visible[2] = {false, false};
    std::vector<std::uint16_t> notified;

    int count_notified(std::uint16_t queue) {
        std::lock_guard lock(mutex);
        return static_cast<int>(std::count(notified.begin(), notified.end(), queue));
    }
    int activation_count() {
        std::lock_guard lock(mutex);
        return activations;
    }
    int reset_count() {
        std::lock_guard lock(mutex);
        return resets;
    }
};

// Queue 0 is offloaded (as a vhost device's would be), queue 1 is served by
// the worker.
class OffloadingDevice : public VirtioDevice {
  public:
    explicit OffloadingDevice(std::shared_ptr<Observed> observed)
        : observed_(std::move(observed)) {}

    std::string name() const override { return "offload-test"; }
    std::uint16_t device_type() const override { return kDeviceVsock; }
    std::uint32_t pci_class_code() const override { return 0x078000; }
    std::uint64_t device_features() const override { return 0; }
    std::uint16_t queue_count() const override { return 2; }
    bool queue_offloaded(std::uint16_t index) const override { return index == 0; }
    std::size_t config_size() const override { return 0; }
    void read_config(std::uint64_t, std::span<std::uint8_t>) override {}

    void activate(VirtioContext& context) override {
        std::lock_guard lock(observed_->mutex);
        ++observed_->activations;
        for (std::uint16_t i = 0; i < 2; ++i) {
            observed_->offloaded[i] = context.offloaded_queue(i);
            observed_->worker_queue_visible[i] = context.queue(i) != nullptr;
        }
    }
    void queue_notified(VirtioContext&, std::uint16_t index) override {
        std::lock_guard lock(observed_->mutex);
        observed_->notified.push_back(index);
    }
    void reset() override {
        std::lock_guard lock(observed_->mutex);
        ++observed_->resets;
    }

  private:
    std::shared_ptr<Observed> observed_;
};

const QueueConfig kOffloaded{16, 0x1000, 0x2000, 0x3000};
const QueueConfig kServed{16, 0x5000, 0x6000, 0x7000};

struct OffloadTest : ::testing::Test {
    vmm::GuestMemory memory = vmm::GuestMemory::create(
        std::array<std::pair<vmm::GuestAddress, std::uint64_t>, 1>{{{0, 1 << 20}}});
    std::shared_ptr<pci::testing::FakeHypervisor> hypervisor =
        std::make_shared<pci::testing::FakeHypervisor>();
    std::shared_ptr<pci::MsiRouter> router = std::make_shared<pci::MsiRouter>(hypervisor);
    std::shared_ptr<Observed> observed = std::make_shared<Observed>();
    std::shared_ptr<VirtioPciDevice> device = std::make_shared<VirtioPciDevice>(
        std::make_unique<OffloadingDevice>(observed), memory, router);
    PciDriver driver{*device};

    // Brings the device to DRIVER_OK with queue 0 on vector `offloaded_vector`
    // and queue 1 on vector 2; waits until the device is activated.
    void start(bool msix, std::uint16_t offloaded_vector = 1) {
        if (msix) driver.enable_msix();
        ASSERT_TRUE(driver.negotiate(testing::kRingFeatures) & kStatusFeaturesOk);
        driver.set_config_vector(msix ? 0 : kMsiNoVector);
        driver.setup_queue(0, kOffloaded, offloaded_vector);
        driver.setup_queue(1, kServed, msix ? 2 : kMsiNoVector);
        driver.driver_ok();
        ASSERT_TRUE(eventually([&] { return observed->activation_count() == 1; }));
        // The worker's first poll of its own queue follows activate().
        ASSERT_TRUE(eventually([&] { return observed->count_notified(1) == 1; }));
    }

    bool routed(std::uint32_t data) {
        std::lock_guard lock(hypervisor->mutex);
        return std::any_of(hypervisor->routing.begin(), hypervisor->routing.end(), [&](auto& e) {
            return e.type == KVM_IRQ_ROUTING_MSI && e.u.msi.data == data;
        });
    }
    bool line_raised(std::uint32_t gsi) {
        std::lock_guard lock(hypervisor->mutex);
        return std::find(hypervisor->lines.begin(), hypervisor->lines.end(),
                         std::make_pair(gsi, true)) != hypervisor->lines.end();
    }
    std::optional<OffloadedQueue> offloaded(std::uint16_t index) {
        std::lock_guard lock(observed->mutex);
        return observed->offloaded[index];
    }
};

TEST_F(OffloadTest, OffloadedQueueGetsItsKickFdAndTheVectorsIrqfd) {
    start(true);
    const auto queue = offloaded(0);
    ASSERT_TRUE(queue.has_value());
    EXPECT_EQ(queue->config.size, kOffloaded.size);
    EXPECT_EQ(queue->config.desc_table, kOffloaded.desc_table);
    EXPECT_EQ(queue->config.avail_ring, kOffloaded.avail_ring);
    EXPECT_EQ(queue->config.used_ring, kOffloaded.used_ring);
    EXPECT_EQ(queue->kick_fd, device->kick_fd(0));                // the KVM ioeventfd
    EXPECT_EQ(queue->call_fd, device->msix().vector_eventfd(1));  // the KVM irqfd
    EXPECT_FALSE(offloaded(1).has_value());
    {
        std::lock_guard lock(observed->mutex);
        EXPECT_FALSE(observed->worker_queue_visible[0]);
        EXPECT_TRUE(observed->worker_queue_visible[1]);
    }
    // The kernel will write vector 1's eventfd without asking us, so its
    // route is in KVM already; vector 2 stays lazy until first used.
    EXPECT_TRUE(routed(msi_data(1)));
    EXPECT_FALSE(routed(msi_data(2)));
}

TEST_F(OffloadTest, WorkerLeavesAnOffloadedQueueToItsRunner) {
    start(true);
    driver.kick(0);
    driver.kick(1);
    // The worker handles the served queue's kick, which came after the
    // offloaded queue's: had it watched queue 0, it would have seen it first.
    ASSERT_TRUE(eventually([&] { return observed->count_notified(1) == 2; }));
    EXPECT_EQ(observed->count_notified(0), 0);
    EXPECT_TRUE(readable(device->kick_fd(0))) << "the worker consumed the kernel's kick";
    EXPECT_FALSE(readable(device->kick_fd(1)));
}

TEST_F(OffloadTest, SharedVectorRouteFollowsTheGuestOnUnmask) {
    start(true);
    // Linux moves a vector: mask, rewrite the message, unmask.
    driver.mask_vector(1, true);
    driver.write_vector_data(1, 0x77);
    EXPECT_FALSE(routed(0x77)) << "route pushed while the entry was masked";
    driver.mask_vector(1, false);
    EXPECT_TRUE(routed(0x77));
    EXPECT_FALSE(routed(msi_data(1)));
    EXPECT_EQ(device->status() & kStatusNeedsReset, 0);
}

TEST_F(OffloadTest, IntxGuestGetsKernelInterruptsThroughTheRelay) {
    device->attached(3, 19);
    start(false);
    const auto queue = offloaded(0);
    ASSERT_TRUE(queue.has_value());
    for (std::uint16_t v = 0; v < device->msix().vector_count(); ++v) {
        EXPECT_NE(queue->call_fd, device->msix().vector_eventfd(v));
    }
    signal_eventfd(queue->call_fd);  // what vhost does after using a buffer
    ASSERT_TRUE(eventually([&] { return line_raised(19); }));
    EXPECT_EQ(driver.read<std::uint8_t>(VirtioPciDevice::kIsrOffset), 1);
    EXPECT_FALSE(readable(queue->call_fd));
}

TEST_F(OffloadTest, NoVectorMeansTheKernelsInterruptsAreDropped) {
    start(true, kMsiNoVector);
    const auto queue = offloaded(0);
    ASSERT_TRUE(queue.has_value());
    signal_eventfd(queue->call_fd);
    ASSERT_TRUE(eventually([&] { return !readable(queue->call_fd); }));
    for (std::uint16_t v = 0; v < device->msix().vector_count(); ++v) {
        EXPECT_FALSE(readable(device->msix().vector_eventfd(v))) << "vector " << v;
    }
    EXPECT_EQ(device->status() & kStatusNeedsReset, 0);
}

TEST_F(OffloadTest, ChangingTheVectorOfARunningKernelQueueFailsTheDevice) {
    start(true);
    const int resets = observed->reset_count();  // negotiate() resets first
    driver.set_queue_vector(0, 1);               // the same vector again: harmless
    EXPECT_EQ(device->status() & kStatusNeedsReset, 0);
    driver.set_queue_vector(0, 2);
    EXPECT_TRUE(device->status() & kStatusNeedsReset);
    EXPECT_EQ(observed->reset_count(), resets + 1) << "the kernel's runner was not stopped at once";
    EXPECT_TRUE(driver.wait_vector(0));  // configuration change
    // The driver's reset brings it back.
    driver.set_status(0);
    EXPECT_EQ(driver.status(), 0);
    driver.negotiate(testing::kRingFeatures);
    driver.setup_queue(0, kOffloaded, 1);
    driver.setup_queue(1, kServed, 2);
    driver.driver_ok();
    ASSERT_TRUE(eventually([&] { return observed->activation_count() == 2; }));
    EXPECT_EQ(device->status() & kStatusNeedsReset, 0);
}

TEST_F(OffloadTest, DisablingMsixUnderARunningKernelQueueFailsTheDevice) {
    device->attached(3, 19);
    start(true);
    const int resets = observed->reset_count();
    driver.disable_msix();
    EXPECT_TRUE(device->status() & kStatusNeedsReset);
    EXPECT_EQ(observed->reset_count(), resets + 1);
    // With MSI-X off, the configuration change goes out on INTx.
    EXPECT_TRUE(line_raised(19));
    EXPECT_EQ(driver.read<std::uint8_t>(VirtioPciDevice::kIsrOffset), 2);
}

TEST_F(OffloadTest, ResetReturnsSharedVectorsToLazyRouting) {
    start(true);
    driver.set_status(0);
    int updates = 0;
    {
        std::lock_guard lock(hypervisor->mutex);
        updates = hypervisor->routing_updates;
    }
    driver.program_vector(1, 0x99, false);
    std::lock_guard lock(hypervisor->mutex);
    EXPECT_EQ(hypervisor->routing_updates, updates);
}

TEST_F(OffloadTest, OffloadedRingOutsideGuestRamNeverReachesTheDevice) {
    driver.enable_msix();
    driver.negotiate(testing::kRingFeatures);
    driver.set_config_vector(0);
    driver.setup_queue(0, QueueConfig{16, 0x7fff'0000, 0x2000, 0x3000}, 1);
    driver.setup_queue(1, kServed, 2);
    driver.driver_ok();
    EXPECT_TRUE(device->status() & kStatusNeedsReset);
    EXPECT_TRUE(driver.wait_vector(0));
    EXPECT_EQ(observed->activation_count(), 0);
    // Nothing was shared with a kernel that never started.
    driver.program_vector(1, 0x99, false);
    EXPECT_FALSE(routed(0x99));
}

}  // namespace
}  // namespace devices::virtio
