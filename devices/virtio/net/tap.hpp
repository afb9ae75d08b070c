// A tap interface opened for virtio-net: /dev/net/tun with IFF_TAP |
// IFF_NO_PI | IFF_VNET_HDR, so every frame read or written carries the
// 12-byte virtio_net_hdr_v1 in front (TUNSETVNETHDRSZ) and the tap can pass
// checksum and segmentation offloads through instead of doing the work.
// The fd is non-blocking: the device's worker thread polls it.
#pragma once

#include <string>

#include "base/unique_fd.hpp"

namespace devices::virtio {

class Tap {
  public:
    // Attaches to the tap interface `name`, creating it when it does not
    // exist (the kernel then removes it when the fd closes). Throws
    // base::Error with one line naming the tap: no /dev/net/tun, the tap in
    // use by another process (EBUSY), not a tap, no permission.
    static Tap open(const std::string& name);

    // Wraps an fd that already carries frames behind a 12-byte vnet header,
    // one per read/write. Tests use a datagram socketpair to reach what a
    // real tap only does under memory pressure (EAGAIN on write).
    static Tap adopt(base::UniqueFd fd, std::string name);

    int fd() const { return fd_.get(); }
    const std::string& name() const { return name_; }

    // TUNSETOFFLOAD with kTunOffload* flags, issued only when they change
    // (a fresh tap starts with none). Throws base::Error.
    void set_offload(unsigned flags);
    unsigned offload() const { return offload_; }

  private:
    Tap(base::UniqueFd fd, std::string name) : fd_(std::move(fd)), name_(std::move(name)) {}

    base::UniqueFd fd_;
    std::string name_;
    unsigned offload_ = 0;
};

}  // namespace devices::virtio
