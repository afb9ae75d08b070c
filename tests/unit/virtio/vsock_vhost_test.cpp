// VhostVsock and the vhost helpers. The address translation and the error
// for a missing module run anywhere; everything else needs the host's
// /dev/vhost-vsock and skips without it (the lab scenario virtio-vsock runs
// these tests in L1, where the module is loaded): claiming CIDs, and a real
// connection handshake between a host AF_VSOCK socket and rings that this
// test drives as the guest would.
#include <gtest/gtest.h>
#include <linux/virtio_vsock.h>
#include <linux/vm_sockets.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <string>

#include "base/error.hpp"
#include "base/unique_fd.hpp"
#include "devices/virtio/vhost/vhost_kernel.hpp"
#include "devices/virtio/vsock/vhost_vsock.hpp"
#include "devices/virtio/vsock/virtio_vsock.hpp"
#include "tests/unit/virtio/queue_builder.hpp"
#include "tests/unit/virtio/virtio_pci_driver.hpp"

namespace devices::virtio {
namespace {

using testing::QueueBuilder;
using testing::readable;
using testing::signal_eventfd;

std::string error_of(const std::function<void()>& action) {
    try {
        action();
    } catch (const base::Error& error) {
        return error.what();
    }
    return "";
}

// ---- anywhere --------------------------------------------------------------

TEST(VhostAddresses, MemoryTableIsEveryRegionAtItsHostAddress) {
    const std::array<std::pair<vmm::GuestAddress, std::uint64_t>, 2> layout{
        {{0, 1 << 20}, {4ull << 30, 2 << 20}}};
    const auto memory = vmm::GuestMemory::create(layout);
    const auto regions = vhost::memory_regions(memory);
    ASSERT_EQ(regions.size(), 2u);
    for (std::size_t i = 0; i < regions.size(); ++i) {
        EXPECT_EQ(regions[i].guest_phys_addr, layout[i].first);
        EXPECT_EQ(regions[i].memory_size, layout[i].second);
        EXPECT_EQ(regions[i].userspace_addr,
                  reinterpret_cast<std::uintptr_t>(memory.span(layout[i].first, 1).data()));
        EXPECT_EQ(regions[i].flags_padding, 0u);
    }
}

TEST(VhostAddresses, RingsTranslateToHostAddressesInsideGuestRam) {
    const std::array<std::pair<vmm::GuestAddress, std::uint64_t>, 2> layout{
        {{0, 1 << 20}, {4ull << 30, 1 << 20}}};
    const auto memory = vmm::GuestMemory::create(layout);
    const QueueConfig config{256, 0x1000, (4ull << 30) + 0x2000, 0x8000};
    const auto address = vhost::ring_addresses(1, memory, config);
    EXPECT_EQ(address.index, 1u);
    EXPECT_EQ(address.desc_user_addr,
              reinterpret_cast<std::uintptr_t>(memory.span(0x1000, 1).data()));
    EXPECT_EQ(address.avail_user_addr,
              reinterpret_cast<std::uintptr_t>(memory.span((4ull << 30) + 0x2000, 1).data()));
    EXPECT_EQ(address.used_user_addr,
              reinterpret_cast<std::uintptr_t>(memory.span(0x8000, 1).data()));
    EXPECT_EQ(address.flags, 0u);
    // A used ring that runs off the end of RAM (6 + 8 * 256 bytes).
    const QueueConfig off_the_end{256, 0x1000, 0x2000, (1 << 20) - 0x400};
    EXPECT_NE(error_of([&] { vhost::ring_addresses(0, memory, off_the_end); }).find("used ring"),
              std::string::npos);
}

TEST(VhostVsockSetup, MissingModuleIsOneLineNamingIt) {
    const std::string what = error_of([] { VhostVsock backend(3, "/nonexistent/vhost-vsock"); });
    EXPECT_NE(what.find("/nonexistent/vhost-vsock does not exist"), std::string::npos) << what;
    EXPECT_NE(what.find("modprobe vhost_vsock"), std::string::npos) << what;
    EXPECT_EQ(what.find('\n'), std::string::npos);
}

// ---- with /dev/vhost-vsock --------------------------------------------------

class VhostVsockKernel : public ::testing::Test {
  protected:
    void SetUp() override {
        if (::access(VhostVsock::kDevicePath, R_OK | W_OK) != 0) {
            GTEST_SKIP() << VhostVsock::kDevicePath << " is not available (modprobe vhost_vsock; "
                         << "the lab scenario virtio-vsock runs these tests)";
        }
    }
    // A CID no other test process picks at the same time.
    static std::uint32_t test_cid() { return 0x10'0000u + static_cast<std::uint32_t>(::getpid()); }
};

TEST_F(VhostVsockKernel, ClaimsItsCidAndOffersTheRingFeatures) {
    VhostVsock backend(test_cid());
    EXPECT_EQ(backend.guest_cid(), test_cid());
    EXPECT_EQ(backend.device_features() & ~feature_bit(kVsockFeatureSeqpacket), 0u);
    const std::string what = error_of([] { VhostVsock second(test_cid()); });
    EXPECT_NE(what.find("already in use"), std::string::npos) << what;
    EXPECT_EQ(what.find('\n'), std::string::npos);
}

TEST_F(VhostVsockKernel, ReservedCidsAreRefused) {
    for (std::uint32_t cid : {0u, 1u, 2u, 0xffff'ffffu}) {
        const std::string what = error_of([cid] { VhostVsock backend(cid); });
        EXPECT_NE(what.find("refuses the CID"), std::string::npos) << cid << ": " << what;
    }
}

virtio_vsock_hdr read_header(const vmm::GuestMemory& memory, std::uint64_t address) {
    virtio_vsock_hdr header{};
    std::memcpy(&header, memory.span(address, sizeof(header)).data(), sizeof(header));
    return header;
}

// The host connects to the "guest"; vhost puts the request in our rx ring,
// the guest's response goes out through tx, and data follows: the memory
// table, ring addresses, kick and call eventfds all work end to end.
TEST_F(VhostVsockKernel, HostConnectionHandshakesThroughTheRings) {
    constexpr std::uint32_t kPort = 5000;
    constexpr std::uint64_t kRxBuffers = 0x10000;
    constexpr std::uint32_t kRxBufferSize = 0x2000;
    constexpr std::uint64_t kTxBuffer = 0x40000;
    const auto memory = vmm::GuestMemory::create(
        std::array<std::pair<vmm::GuestAddress, std::uint64_t>, 1>{{{0, 1 << 20}}});
    const QueueConfig rx_config{16, 0x1000, 0x2000, 0x3000};
    const QueueConfig tx_config{16, 0x4000, 0x5000, 0x6000};
    std::array<base::UniqueFd, 4> fds;  // rx kick, rx call, tx kick, tx call
    for (auto& fd : fds) {
        fd = base::UniqueFd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
        ASSERT_TRUE(fd);
    }
    const std::array<OffloadedQueue, 2> queues{
        OffloadedQueue{rx_config, fds[0].get(), fds[1].get()},
        OffloadedQueue{tx_config, fds[2].get(), fds[3].get()}};
    QueueBuilder rx(memory, rx_config);
    QueueBuilder tx(memory, tx_config);
    for (std::uint16_t i = 0; i < 8; ++i) {
        rx.set_descriptor(i, kRxBuffers + i * kRxBufferSize, kRxBufferSize, kDescWrite);
        rx.publish(i);
    }

    VhostVsock backend(test_cid());
    backend.start(memory, feature_bit(kFeatureVersion1), queues);

    base::UniqueFd host(::socket(AF_VSOCK, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    ASSERT_TRUE(host) << std::strerror(errno);
    sockaddr_vm address{};
    address.svm_family = AF_VSOCK;
    address.svm_cid = test_cid();
    address.svm_port = kPort;
    ASSERT_NE(::connect(host.get(), reinterpret_cast<const sockaddr*>(&address), sizeof(address)),
              0);
    ASSERT_EQ(errno, EINPROGRESS) << std::strerror(errno);

    ASSERT_TRUE(readable(fds[1].get(), 5000)) << "vhost never signalled the rx call eventfd";
    ASSERT_EQ(rx.used_idx(), 1);
    EXPECT_GE(rx.used(0).length, sizeof(virtio_vsock_hdr));
    const auto request = read_header(memory, kRxBuffers + rx.used(0).id * kRxBufferSize);
    EXPECT_EQ(request.src_cid, VMADDR_CID_HOST);
    EXPECT_EQ(request.dst_cid, test_cid());
    EXPECT_EQ(request.dst_port, kPort);
    EXPECT_EQ(request.type, VIRTIO_VSOCK_TYPE_STREAM);
    EXPECT_EQ(request.op, VIRTIO_VSOCK_OP_REQUEST);

    // The guest accepts.
    virtio_vsock_hdr response{};
    response.src_cid = test_cid();
    response.dst_cid = VMADDR_CID_HOST;
    response.src_port = kPort;
    response.dst_port = request.src_port;
    response.type = VIRTIO_VSOCK_TYPE_STREAM;
    response.op = VIRTIO_VSOCK_OP_RESPONSE;
    response.buf_alloc = 64 * 1024;
    std::memcpy(memory.span(kTxBuffer, sizeof(response)).data(), &response, sizeof(response));
    tx.set_descriptor(0, kTxBuffer, sizeof(response));
    tx.publish(0);
    signal_eventfd(fds[2].get());
    ASSERT_TRUE(readable(fds[3].get(), 5000)) << "vhost never signalled the tx call eventfd";
    EXPECT_EQ(tx.used_idx(), 1);
    pollfd connected{host.get(), POLLOUT, 0};
    ASSERT_EQ(::poll(&connected, 1, 5000), 1) << "the host socket never connected";
    int error = -1;
    socklen_t length = sizeof(error);
    ASSERT_EQ(::getsockopt(host.get(), SOL_SOCKET, SO_ERROR, &error, &length), 0);
    ASSERT_EQ(error, 0) << std::strerror(error);

    // Host to guest data lands in the next rx buffer, after its header.
    std::uint64_t count;
    ASSERT_EQ(::read(fds[1].get(), &count, sizeof(count)), static_cast<ssize_t>(sizeof(count)));
    const std::string message = "hello through vhost-vsock";
    ASSERT_EQ(::send(host.get(), message.data(), message.size(), 0),
              static_cast<ssize_t>(message.size()));
    ASSERT_TRUE(readable(fds[1].get(), 5000));
    ASSERT_EQ(rx.used_idx(), 2);
    const std::uint64_t buffer = kRxBuffers + rx.used(1).id * kRxBufferSize;
    const auto data = read_header(memory, buffer);
    EXPECT_EQ(data.op, VIRTIO_VSOCK_OP_RW);
    ASSERT_EQ(data.len, message.size());
    const auto payload = memory.span(buffer + sizeof(virtio_vsock_hdr), message.size());
    EXPECT_EQ(std::string(payload.begin(), payload.end()), message);
    backend.stop();
}

}  // namespace
}  // namespace devices::virtio
