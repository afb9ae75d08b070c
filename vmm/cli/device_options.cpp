#include "vmm/cli/device_options.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <map>

#include "base/error.hpp"
#include "vmm/pci_address.hpp"

namespace vmm::cli {

namespace {

// Splits "a=1,b=2" into keys and values; a key given twice is an error.
std::map<std::string, std::string> split_pairs(const std::string& flag, const std::string& text) {
    std::map<std::string, std::string> pairs;
    std::size_t start = 0;
    while (start <= text.size()) {
        const std::size_t comma = text.find(',', start);
        const std::string item =
            text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
        const std::size_t equals = item.find('=');
        if (equals == std::string::npos || equals == 0) {
            throw base::Error("{} {}: '{}' is not KEY=VALUE", flag, text, item);
        }
        if (!pairs.emplace(item.substr(0, equals), item.substr(equals + 1)).second) {
            throw base::Error("{} {}: '{}' is given twice", flag, text, item.substr(0, equals));
        }
        if (comma == std::string::npos) break;
        start = comma + 1;
    }
    return pairs;
}

bool parse_on_off(const std::string& flag, const std::string& key, const std::string& value) {
    if (value == "on" || value == "true" || value == "yes") return true;
    if (value == "off" || value == "false" || value == "no") return false;
    throw base::Error("{}: {}={} is not on or off", flag, key, value);
}

// Six hex octets separated by ':'; a NIC's own address must be unicast
// and not all zeroes.
std::array<std::uint8_t, 6> parse_mac(const std::string& text, const std::string& value) {
    const base::Error malformed("--net {}: mac={} is not six hex octets like 52:54:00:12:34:56",
                                text, value);
    if (value.size() != 17) throw malformed;
    std::array<std::uint8_t, 6> mac{};
    for (std::size_t i = 0; i < mac.size(); ++i) {
        const char* start = value.data() + 3 * i;
        const auto [end, error] = std::from_chars(start, start + 2, mac[i], 16);
        if (error != std::errc() || end != start + 2 || (i < 5 && *end != ':')) throw malformed;
    }
    if ((mac[0] & 1) != 0) {
        throw base::Error("--net {}: mac={} is a multicast address", text, value);
    }
    if (mac == std::array<std::uint8_t, 6>{}) {
        throw base::Error("--net {}: mac={} is all zeroes", text, value);
    }
    return mac;
}

// What the kernel's dev_valid_name() accepts: 1-15 bytes, not "." or "..",
// no '/', ':' or whitespace.
bool valid_interface_name(const std::string& name) {
    if (name.empty() || name.size() > 15 || name == "." || name == "..") return false;
    return std::none_of(name.begin(), name.end(), [](char c) {
        return c == '/' || c == ':' || std::isspace(static_cast<unsigned char>(c)) != 0;
    });
}

}  // namespace

DiskConfig parse_disk(const std::string& text) {
    auto pairs = split_pairs("--disk", text);
    DiskConfig disk;
    for (const auto& [key, value] : pairs) {
        if (key == "path") {
            if (value.empty()) throw base::Error("--disk {}: path is empty", text);
            disk.path = value;
        } else if (key == "readonly") {
            disk.read_only = parse_on_off("--disk", key, value);
        } else if (key == "serial") {
            if (value.size() > 20) {
                throw base::Error("--disk {}: serial '{}' is longer than 20 bytes", text, value);
            }
            disk.serial = value;
        } else if (key == "queues") {
            unsigned queues = 0;
            const auto [end, error] =
                std::from_chars(value.data(), value.data() + value.size(), queues);
            if (error != std::errc() || end != value.data() + value.size() || queues < 1 ||
                queues > 16) {
                throw base::Error("--disk {}: queues={} is not a number from 1 to 16", text, value);
            }
            disk.queues = static_cast<std::uint16_t>(queues);
        } else {
            throw base::Error("--disk {}: unknown key '{}' (known: path, readonly, serial, queues)",
                              text, key);
        }
    }
    if (disk.path.empty()) throw base::Error("--disk {}: path=FILE is required", text);
    return disk;
}

NetConfig parse_net(const std::string& text) {
    auto pairs = split_pairs("--net", text);
    NetConfig net;
    for (const auto& [key, value] : pairs) {
        if (key == "tap") {
            if (!valid_interface_name(value)) {
                throw base::Error(
                    "--net {}: tap={} is not an interface name (1-15 characters, no '/', ':' or "
                    "spaces)",
                    text, value);
            }
            net.tap = value;
        } else if (key == "mac") {
            net.mac = parse_mac(text, value);
        } else {
            throw base::Error("--net {}: unknown key '{}' (known: tap, mac)", text, key);
        }
    }
    if (net.tap.empty()) throw base::Error("--net {}: tap=NAME is required", text);
    return net;
}

ConsoleConfig parse_console(const std::string& text) {
    if (text == "pty") return ConsoleConfig{ConsoleConfig::Mode::Pty, {}};
    const auto pairs = split_pairs("--console", text);
    if (pairs.size() != 1) {
        throw base::Error("--console {}: give one of socket=PATH, file=PATH or pty", text);
    }
    const auto& [key, value] = *pairs.begin();
    ConsoleConfig console;
    if (key == "socket") {
        console.mode = ConsoleConfig::Mode::Socket;
    } else if (key == "file") {
        console.mode = ConsoleConfig::Mode::File;
    } else if (key == "pty") {
        throw base::Error("--console {}: pty takes no value", text);
    } else {
        throw base::Error("--console {}: unknown key '{}' (known: socket=PATH, file=PATH, pty)",
                          text, key);
    }
    if (value.empty()) throw base::Error("--console {}: {} needs a path", text, key);
    console.path = value;
    return console;
}

PassthroughConfig parse_device(const std::string& text) {
    const auto pairs = split_pairs("--device", text);
    if (pairs.size() != 1 || pairs.begin()->first != "vfio") {
        throw base::Error(
            "--device {}: give vfio=ADDRESS (a host PCI address like 0000:00:10.0) or "
            "vfio=/dev/vfio/devices/vfioN (the only device type is vfio)",
            text);
    }
    const std::string& value = pairs.begin()->second;
    if (value.empty())
        throw base::Error("--device {}: vfio needs a PCI address or a cdev path", text);
    if (value.front() == '/') return PassthroughConfig{value};
    if (!canonical_pci_address(value)) {
        throw base::Error(
            "--device {}: '{}' is not a PCI address (DDDD:BB:DD.F like 0000:00:10.0, device at "
            "most 1f, function at most 7) nor a cdev path (/dev/vfio/devices/vfioN)",
            text, value);
    }
    return PassthroughConfig{value};
}

VsockConfig parse_vsock(const std::string& text) {
    const auto pairs = split_pairs("--vsock", text);
    VsockConfig vsock;
    for (const auto& [key, value] : pairs) {
        if (key != "cid") throw base::Error("--vsock {}: unknown key '{}' (known: cid)", text, key);
        std::uint64_t cid = 0;
        const auto [end, error] = std::from_chars(value.data(), value.data() + value.size(), cid);
        if (error != std::errc() || end != value.data() + value.size() || cid < 3 ||
            cid > 0xffff'fffe) {
            throw base::Error(
                "--vsock {}: cid={} is not a guest context ID from 3 to 4294967294 (0-2 and "
                "4294967295 are reserved)",
                text, value);
        }
        vsock.guest_cid = static_cast<std::uint32_t>(cid);
    }
    if (vsock.guest_cid == 0) throw base::Error("--vsock {}: cid=N is required", text);
    return vsock;
}

}  // namespace vmm::cli
