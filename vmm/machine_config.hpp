// Everything a user decides about one VM, after CLI and config-file parsing.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "vmm/x86/layout.hpp"

namespace vmm {

struct SerialConfig {
    enum class Mode { Stdio, File, None };
    Mode mode = Mode::Stdio;
    std::string path;  // for Mode::File
};

inline constexpr const char* kDefaultCmdline = "console=ttyS0 panic=1";
inline constexpr std::uint32_t kMaxCpus = 64;
inline constexpr std::uint64_t kMinMemory = 16 * x86::MiB;
inline constexpr std::uint64_t kMaxMemory = x86::kMaxRamSize;  // 255 GiB

// A virtio-blk disk (--disk path=FILE[,readonly=on][,serial=ID][,queues=N]).
struct DiskConfig {
    std::string path;
    bool read_only = false;
    std::string serial;  // GET_ID answer, up to 20 bytes; empty: derived from the file name
    std::uint16_t queues = 1;
};

// A virtio-net NIC on a tap (--net tap=NAME[,mac=52:54:00:12:34:56]).
struct NetConfig {
    std::string tap;                                 // interface name, 1-15 characters
    std::optional<std::array<std::uint8_t, 6>> mac;  // empty: a fixed default per NIC index
};

// The host end of the virtio-console (--console socket=PATH|file=PATH|pty).
struct ConsoleConfig {
    enum class Mode { Socket, File, Pty };
    Mode mode = Mode::Socket;
    std::string path;  // the socket or the file; empty for a pty
};

// virtio-vsock run by the host's vhost-vsock (--vsock cid=N).
struct VsockConfig {
    std::uint32_t guest_cid = 0;  // 3 to 2^32 - 2: 0-2 and 2^32 - 1 are reserved
};

// A host PCI function passed through with VFIO (--device vfio=ADDRESS|CDEV).
struct PassthroughConfig {
    // As given: a PCI address ("0000:00:10.0", or "00:10.0" for domain 0) or
    // the path of its VFIO cdev ("/dev/vfio/devices/vfio0"). Which host
    // device that is, and whether it can be passed through, is decided when
    // the machine is built.
    std::string host;
};

struct MachineConfig {
    std::string kernel_path;
    std::optional<std::string> initrd_path;
    std::string cmdline = kDefaultCmdline;
    std::uint64_t memory_bytes = 512 * x86::MiB;
    std::uint32_t cpus = 1;
    SerialConfig serial;
    std::vector<DiskConfig> disks;  // virtio-blk, in PCI slot order
    std::vector<NetConfig> nets;    // virtio-net, in PCI slot order after the disks
    bool virtio_rng = false;        // --rng
    // virtio-console (--console), after the other PCI devices; none without the flag
    std::optional<ConsoleConfig> console;
    std::optional<VsockConfig> vsock;  // --vsock: one device, after the console
    // VFIO passthrough (--device vfio=...), last on the bus, in flag order
    std::vector<PassthroughConfig> passthrough;
};

}  // namespace vmm
