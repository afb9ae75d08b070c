// A real tap for the virtio-net tests, and the host's view of it: the tap
// is created in a private network namespace (when the process may make
// one), brought up with IPv6 off so the host stack sends nothing of its
// own, and an AF_PACKET socket bound to it injects frames towards the
// device and captures the frames the device sends.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/ethtool.h>
#include <linux/if_packet.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <fstream>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "base/error.hpp"
#include "base/unique_fd.hpp"
#include "devices/virtio/net/net_spec.hpp"
#include "devices/virtio/net/tap.hpp"

namespace devices::virtio::testing {

// An EtherType for local experiments (IEEE 802): nothing else on the tap uses it.
inline constexpr std::uint16_t kTestEtherType = 0x88b5;

// Why no tap can be made here, or empty when one can. Enters a private
// network namespace first (once per process) so the tests never touch the
// host's interfaces; without CAP_SYS_ADMIN they use the host's, with unique names.
inline std::string tap_unavailable() {
    static const std::string why = [] {
        ::unshare(CLONE_NEWNET);
        base::UniqueFd tun(::open("/dev/net/tun", O_RDWR | O_CLOEXEC));
        if (!tun) return std::string("cannot open /dev/net/tun: ") + std::strerror(errno);
        return std::string();
    }();
    return why;
}

// An Ethernet frame of `length` bytes with the test EtherType and a
// payload pattern that depends on `seed`.
inline std::vector<std::uint8_t> test_frame(std::size_t length, std::uint8_t seed) {
    std::vector<std::uint8_t> frame(length);
    const std::uint8_t header[14] = {0x52,
                                     0x54,
                                     0x00,
                                     0x76,
                                     0x6d,
                                     0x00,
                                     0x02,
                                     0x00,
                                     0x00,
                                     0x00,
                                     0x00,
                                     seed,
                                     kTestEtherType >> 8,
                                     kTestEtherType & 0xff};
    std::memcpy(frame.data(), header, std::min(length, sizeof(header)));
    for (std::size_t i = sizeof(header); i < length; ++i) {
        frame[i] = static_cast<std::uint8_t>(seed * 31 + i * 7);
    }
    return frame;
}

// `frame` behind a virtio-net header, as a driver transmits it.
inline std::vector<std::uint8_t> with_header(std::span<const std::uint8_t> frame,
                                             const NetHeader& header = {}) {
    std::vector<std::uint8_t> bytes(sizeof(header) + frame.size());
    std::memcpy(bytes.data(), &header, sizeof(header));
    if (!frame.empty()) std::memcpy(bytes.data() + sizeof(header), frame.data(), frame.size());
    return bytes;
}

class TestTap {
  public:
    TestTap() : name_(unique_name()), tap_(Tap::open(name_)) {
        std::ofstream(std::string("/proc/sys/net/ipv6/conf/") + name_ + "/disable_ipv6") << "1";
        control_ = base::UniqueFd(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
        if (!control_) base::throw_errno("control socket");
        set_up(true);
        index_ = static_cast<int>(::if_nametoindex(name_.c_str()));
        packets_ = base::UniqueFd(
            ::socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, htons(ETH_P_ALL)));
        if (!packets_) base::throw_errno("AF_PACKET socket");
        sockaddr_ll address{};
        address.sll_family = AF_PACKET;
        address.sll_protocol = htons(ETH_P_ALL);
        address.sll_ifindex = index_;
        if (::bind(packets_.get(), reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
            base::throw_errno("bind AF_PACKET to {}", name_);
        }
    }

    const std::string& name() const { return name_; }
    // The device's end; the interface lives as long as the device holds it.
    Tap take() { return std::move(tap_); }

    void set_up(bool up) {
        ifreq request = this->request();
        if (::ioctl(control_.get(), SIOCGIFFLAGS, &request) != 0) base::throw_errno("SIOCGIFFLAGS");
        request.ifr_flags =
            static_cast<short>(up ? (request.ifr_flags | IFF_UP) : (request.ifr_flags & ~IFF_UP));
        if (::ioctl(control_.get(), SIOCSIFFLAGS, &request) != 0) base::throw_errno("SIOCSIFFLAGS");
    }

    // An ethtool feature of the interface: ETHTOOL_GTXCSUM, ETHTOOL_GTSO, ...
    bool ethtool(std::uint32_t command) {
        ethtool_value value{command, 0};
        ifreq request = this->request();
        request.ifr_data = reinterpret_cast<char*>(&value);
        if (::ioctl(control_.get(), SIOCETHTOOL, &request) != 0) base::throw_errno("SIOCETHTOOL");
        return value.data != 0;
    }

    // Sends `frame` out of the interface: the device reads it from the tap.
    void inject(std::span<const std::uint8_t> frame) {
        if (::send(packets_.get(), frame.data(), frame.size(), 0) !=
            static_cast<ssize_t>(frame.size())) {
            base::throw_errno("inject into {}", name_);
        }
    }

    // Sends one TCP/IPv4 packet with `payload` bytes as a single GSO
    // segment (MSS 1448, partial checksum), as the host's TCP stack hands
    // large sends to a device: the tap passes it on whole if the guest took
    // TSO, or the kernel cuts it into MSS-sized frames first.
    void inject_tcp_gso(std::size_t payload) {
        if (!gso_) {
            gso_ = base::UniqueFd(::socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_IP)));
            if (!gso_) base::throw_errno("AF_PACKET socket");
            const int on = 1;
            if (::setsockopt(gso_.get(), SOL_PACKET, PACKET_VNET_HDR, &on, sizeof(on)) != 0) {
                base::throw_errno("PACKET_VNET_HDR");
            }
            sockaddr_ll address{};
            address.sll_family = AF_PACKET;
            address.sll_protocol = htons(ETH_P_IP);
            address.sll_ifindex = index_;
            if (::bind(gso_.get(), reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
                base::throw_errno("bind AF_PACKET to {}", name_);
            }
        }
        // struct virtio_net_hdr (10 bytes, no num_buffers), then the frame.
        std::vector<std::uint8_t> packet(10 + 54 + payload);
        const std::uint16_t vnet[] = {kNetHdrNeedsCsum | (kNetGsoTcpV4 << 8), 54, 1448, 34, 16};
        std::memcpy(packet.data(), vnet, sizeof(vnet));
        std::uint8_t* frame = packet.data() + 10;
        const std::uint8_t ethernet[14] = {0x52, 0x54, 0x00, 0x76, 0x6d, 0x00, 0x02,
                                           0,    0,    0,    0,    1,    0x08, 0x00};
        std::memcpy(frame, ethernet, sizeof(ethernet));
        std::uint8_t* ip = frame + 14;
        const auto total = static_cast<std::uint16_t>(40 + payload);
        const std::uint8_t ipv4[20] = {0x45,
                                       0,
                                       std::uint8_t(total >> 8),
                                       std::uint8_t(total),
                                       0,
                                       1,
                                       0x40,
                                       0,
                                       64,
                                       6,
                                       0,
                                       0,
                                       10,
                                       0,
                                       0,
                                       1,
                                       10,
                                       0,
                                       0,
                                       2};
        std::memcpy(ip, ipv4, sizeof(ipv4));
        std::uint32_t sum = 0;
        for (int i = 0; i < 20; i += 2) sum += (ip[i] << 8) | ip[i + 1];
        while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
        ip[10] = static_cast<std::uint8_t>(~sum >> 8);
        ip[11] = static_cast<std::uint8_t>(~sum);
        const std::uint8_t tcp[20] = {0x30, 0x39, 0x00, 0x50, 0,    0,    0, 1, 0, 0,
                                      0,    1,    0x50, 0x18, 0xff, 0xff, 0, 0, 0, 0};
        std::memcpy(ip + 20, tcp, sizeof(tcp));
        for (std::size_t i = 0; i < payload; ++i) ip[40 + i] = static_cast<std::uint8_t>(i * 13);
        if (::send(gso_.get(), packet.data(), packet.size(), 0) != ssize_t(packet.size())) {
            base::throw_errno("inject a TSO packet into {}", name_);
        }
    }

    // The next test-EtherType frame the device wrote to the tap, or nullopt
    // after `timeout_ms`.
    std::optional<std::vector<std::uint8_t>> receive(int timeout_ms = 5000) {
        std::vector<std::uint8_t> frame(70000);
        for (;;) {
            pollfd ready{packets_.get(), POLLIN, 0};
            if (::poll(&ready, 1, timeout_ms) != 1) return std::nullopt;
            sockaddr_ll from{};
            socklen_t from_length = sizeof(from);
            const ssize_t got = ::recvfrom(packets_.get(), frame.data(), frame.size(), 0,
                                           reinterpret_cast<sockaddr*>(&from), &from_length);
            if (got < 14 || from.sll_pkttype == PACKET_OUTGOING) continue;
            if (frame[12] != (kTestEtherType >> 8) || frame[13] != (kTestEtherType & 0xff)) {
                continue;
            }
            frame.resize(static_cast<std::size_t>(got));
            return frame;
        }
    }

  private:
    static std::string unique_name() {
        static std::atomic<int> count{0};
        return "vnt" + std::to_string(::getpid() % 100000) + "-" + std::to_string(count++);
    }
    ifreq request() const {
        ifreq request{};
        std::memcpy(request.ifr_name, name_.data(),
                    std::min(name_.size(), sizeof(request.ifr_name) - 1));
        return request;
    }

    std::string name_;
    Tap tap_;
    base::UniqueFd control_;
    base::UniqueFd packets_;
    base::UniqueFd gso_;
    int index_ = 0;
};

}  // namespace devices::virtio::testing
