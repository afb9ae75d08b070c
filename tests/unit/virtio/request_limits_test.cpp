// A guest that keeps posting must not keep a device's worker to itself: each
// device serves at most kRequestBatch requests (virtio-net: kBatch frames)
// per wake-up and asks to be resumed, and stops between requests once the
// worker is told to stop (a reset joins it). Host I/O errors of a disk are
// logged, rate-limited, while the guest gets IOERR.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <filesystem>

#include "base/event_fd.hpp"
#include "devices/virtio/blk/virtio_blk.hpp"
#include "devices/virtio/device_worker.hpp"
#include "devices/virtio/net/virtio_net.hpp"
#include "devices/virtio/rng/virtio_rng.hpp"
#include "tests/unit/virtio/fake_context.hpp"
#include "tests/unit/virtio/memory_backend.hpp"
#include "tests/unit/virtio/queue_builder.hpp"
#include "tests/unit/virtio/virtio_pci_driver.hpp"

namespace devices::virtio {
namespace {

using testing::eventually;
using testing::FakeContext;
using testing::MemoryBackend;
using testing::QueueBuilder;

constexpr std::uint16_t kQueueSize = 256;
constexpr std::uint64_t kBuffers = 0x10000;

struct RequestLimitsTest : ::testing::Test {
    vmm::GuestMemory memory = vmm::GuestMemory::create(
        std::array<std::pair<vmm::GuestAddress, std::uint64_t>, 1>{{{0, 4 << 20}}});
    QueueConfig config = testing::default_queue(kQueueSize);
    QueueBuilder ring{memory, config};

    // One context with `queues` queues, all on `config`'s rings for queue
    // `index` (the others absent).
    FakeContext context(std::uint16_t queues = 1, std::uint16_t index = 0) {
        std::vector<std::optional<Virtqueue>> list(queues);
        list[index].emplace(memory, config, false, false);
        return FakeContext(memory, feature_bit(kFeatureVersion1), std::move(list));
    }
    // `count` single-buffer device-writable chains of 16 bytes.
    void post_writable(unsigned count) {
        for (unsigned i = 0; i < count; ++i) {
            const auto head = static_cast<std::uint16_t>(i);
            ring.set_descriptor(head, kBuffers + 16ull * i, 16, kDescWrite);
            ring.publish(head);
        }
    }
    // `count` blk FLUSH requests: header then status, one chain each.
    void post_flushes(unsigned count) {
        for (unsigned i = 0; i < count; ++i) {
            const auto head = static_cast<std::uint16_t>(2 * i);
            const std::uint64_t header = kBuffers + 32ull * i;
            memory.write<std::uint32_t>(header, kBlkTypeFlush);
            ring.set_descriptor(head, header, 16, kDescNext, head + 1);
            ring.set_descriptor(head + 1, header + 16, 1, kDescWrite);
            ring.publish(head);
        }
    }
};

TEST_F(RequestLimitsTest, RngServesOneBatchPerWakeup) {
    VirtioRng rng;
    auto ctx = context();
    post_writable(200);
    rng.queue_notified(ctx, 0);
    EXPECT_EQ(ring.used_idx(), kRequestBatch);
    ASSERT_EQ(ctx.resumed, std::vector<std::uint16_t>{0});
    EXPECT_FALSE(ctx.notified.empty());  // the batch is signalled, not held back
    rng.queue_notified(ctx, 0);
    rng.queue_notified(ctx, 0);
    EXPECT_EQ(ring.used_idx(), 3 * kRequestBatch);
    ctx.resumed.clear();
    rng.queue_notified(ctx, 0);
    EXPECT_EQ(ring.used_idx(), 200);
    EXPECT_TRUE(ctx.resumed.empty());  // nothing left: no resume
}

TEST_F(RequestLimitsTest, RngStopsBetweenRequests) {
    VirtioRng rng;
    auto ctx = context();
    post_writable(10);
    ctx.stop.request_stop();
    rng.queue_notified(ctx, 0);
    EXPECT_EQ(ring.used_idx(), 0);
}

TEST_F(RequestLimitsTest, BlkServesOneBatchPerWakeupAndStops) {
    auto backend = std::make_unique<MemoryBackend>(1 << 20);
    auto* disk = backend.get();
    VirtioBlk blk(std::move(backend), {});
    auto ctx = context();
    blk.activate(ctx);
    post_flushes(100);
    blk.queue_notified(ctx, 0);
    EXPECT_EQ(disk->flushes, static_cast<int>(kRequestBatch));
    EXPECT_EQ(ring.used_idx(), kRequestBatch);
    EXPECT_EQ(ctx.resumed, std::vector<std::uint16_t>{0});
    ctx.stop.request_stop();
    blk.queue_notified(ctx, 0);
    EXPECT_EQ(disk->flushes, static_cast<int>(kRequestBatch));
}

TEST_F(RequestLimitsTest, BlkLogsHostErrorsRateLimited) {
    auto backend = std::make_unique<MemoryBackend>(1 << 20);
    backend->failure = std::make_error_code(std::errc::io_error);
    VirtioBlk blk(std::move(backend), BlockDeviceOptions{.serial = "disk7"});
    auto ctx = context();
    blk.activate(ctx);
    post_flushes(60);
    ::testing::internal::CaptureStderr();
    blk.queue_notified(ctx, 0);
    const std::string log = ::testing::internal::GetCapturedStderr();
    ASSERT_EQ(ring.used_idx(), 60);
    for (unsigned i = 0; i < 60; ++i) {
        EXPECT_EQ(memory.read<std::uint8_t>(kBuffers + 32ull * i + 16), kBlkStatusIoErr);
    }
    // The host's errno is in the line, with the disk and the operation.
    EXPECT_NE(log.find("virtio-blk disk7: flush at sector 0 failed: Input/output error"),
              std::string::npos)
        << log;
    // 60 failures: 5 lines in full, then at 8, 16 and 32.
    std::size_t lines = 0;
    for (std::size_t at = log.find("failed"); at != std::string::npos;
         at = log.find("failed", at + 1)) {
        ++lines;
    }
    EXPECT_EQ(lines, 8u) << log;
}

TEST_F(RequestLimitsTest, NetTransmitServesOneBatchPerWakeupAndStops) {
    int fds[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds), 0);
    base::UniqueFd peer(fds[1]);
    VirtioNet net(Tap::adopt(base::UniqueFd(fds[0]), "pair"), default_mac(0), 512);
    // A ring larger than the batch, or the limit would never be reached.
    const QueueConfig big{512, 0x1000, 0x3000, 0x4000};
    QueueBuilder tx(memory, big);
    std::vector<std::optional<Virtqueue>> queues(2);
    queues[VirtioNet::kTxQueue].emplace(memory, big, false, false);
    FakeContext ctx(memory, feature_bit(kFeatureVersion1), std::move(queues));
    net.activate(ctx);
    // Frames shorter than an Ethernet header: dropped and returned without
    // reaching the "tap", so only the limit stops the loop.
    for (unsigned i = 0; i < 400; ++i) {
        const auto head = static_cast<std::uint16_t>(i);
        tx.set_descriptor(head, kBuffers + 32ull * i, kNetHeaderBytes + 1);
        tx.publish(head);
    }
    static_assert(VirtioNet::kBatch < 400);
    net.queue_notified(ctx, VirtioNet::kTxQueue);
    EXPECT_EQ(tx.used_idx(), VirtioNet::kBatch);
    EXPECT_EQ(ctx.resumed, std::vector<std::uint16_t>{VirtioNet::kTxQueue});
    ctx.stop.request_stop();
    net.queue_notified(ctx, VirtioNet::kTxQueue);
    EXPECT_EQ(tx.used_idx(), VirtioNet::kBatch);
    net.reset();
}

// A guest that never stops posting, as the worker sees it: queue 0 always
// has more and asks to be resumed; queue 1 counts its kicks.
class EndlessDevice : public VirtioDevice {
  public:
    std::string name() const override { return "endless"; }
    std::uint16_t device_type() const override { return kDeviceRng; }
    std::uint32_t pci_class_code() const override { return 0; }
    std::uint64_t device_features() const override { return 0; }
    std::uint16_t queue_count() const override { return 2; }
    std::size_t config_size() const override { return 0; }
    void read_config(std::uint64_t, std::span<std::uint8_t>) override {}
    void queue_notified(VirtioContext& context, std::uint16_t index) override {
        if (index == 0) {
            ++rounds;
            context.resume_later(0);
        } else {
            ++kicks;
        }
    }
    std::atomic<unsigned> rounds{0};
    std::atomic<unsigned> kicks{0};
};

TEST_F(RequestLimitsTest, WorkerServesOtherQueuesAndStopsWhileOneNeverEnds) {
    EndlessDevice device;
    std::vector<std::optional<Virtqueue>> queues(2);
    queues[0].emplace(memory, config, false, false);
    queues[1].emplace(memory, QueueConfig{16, 0x20000, 0x21000, 0x22000}, false, false);
    const auto kick0 = base::make_eventfd("test kick 0");
    const auto kick1 = base::make_eventfd("test kick 1");
    auto worker = std::make_unique<DeviceWorker>(
        "endless", device, memory, 0, std::move(queues), std::vector<int>{kick0.get(), kick1.get()},
        std::vector<std::optional<OffloadedQueue>>(2), std::vector<DeviceWorker::InterruptRelay>{},
        [](std::uint16_t) {}, [](const std::string&) {});
    ASSERT_TRUE(eventually([&] { return device.rounds.load() > 100; }));
    const unsigned kicks = device.kicks.load();  // the first poll after activation
    base::signal_eventfd(kick1.get());
    ASSERT_TRUE(eventually([&] { return device.kicks.load() > kicks; }));
    // Joins: the stop is seen between two rounds.
    worker.reset();
    const unsigned rounds = device.rounds.load();
    EXPECT_EQ(device.rounds.load(), rounds);
}

TEST_F(RequestLimitsTest, ResumedBatchesServeEverythingThroughTheTransport) {
    auto device = std::make_shared<VirtioPciDevice>(std::make_unique<VirtioRng>(), memory, nullptr);
    testing::PciDriver driver(*device);
    ASSERT_TRUE(driver.negotiate(testing::kRingFeatures) & kStatusFeaturesOk);
    driver.setup_queue(0, config, 0);
    driver.driver_ok();
    post_writable(200);
    driver.kick(0);
    ASSERT_TRUE(eventually([&] { return ring.used_idx() == 200; }));
    EXPECT_FALSE(driver.status() & kStatusNeedsReset);
}

// The write-zeroes fallback (a filesystem without fallocate) writes up to
// 32 GiB per request: it must stop when the worker is told to.
TEST(RawFileBackendZeroes, FallbackStopsWhenAsked) {
    char name[] = "/tmp/vmm-zeroes-test.XXXXXX";
    const int fd = ::mkstemp(name);
    ASSERT_GE(fd, 0);
    const std::filesystem::path path = name;
    std::vector<std::uint8_t> ones(3 * RawFileBackend::kZeroChunkBytes, 0x11);
    ASSERT_EQ(::write(fd, ones.data(), ones.size()), static_cast<ssize_t>(ones.size()));
    ::close(fd);
    {
        RawFileBackend backend(path, false);
        std::stop_source stop;
        stop.request_stop();
        EXPECT_EQ(backend.write_zeroes_by_writing(0, ones.size(), stop.get_token()),
                  std::errc::operation_canceled);
        std::array<std::uint8_t, 16> head{};
        const iovec vec{head.data(), head.size()};
        ASSERT_FALSE(backend.read(0, std::span(&vec, 1)));
        EXPECT_EQ(head[0], 0x11);  // nothing written
        // Without a stop: every chunk, the last one short.
        const std::uint64_t length = 2 * RawFileBackend::kZeroChunkBytes + 512;
        EXPECT_FALSE(backend.write_zeroes_by_writing(512, length, std::stop_token{}));
        std::vector<std::uint8_t> back(ones.size());
        const iovec all{back.data(), back.size()};
        ASSERT_FALSE(backend.read(0, std::span(&all, 1)));
        EXPECT_EQ(back[511], 0x11);
        EXPECT_EQ(back[512], 0);
        EXPECT_EQ(back[512 + length - 1], 0);
        EXPECT_EQ(back[512 + length], 0x11);
    }
    std::filesystem::remove(path);
}

}  // namespace
}  // namespace devices::virtio
