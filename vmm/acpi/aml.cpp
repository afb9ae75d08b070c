#include "vmm/acpi/aml.hpp"

#include "base/error.hpp"

namespace vmm::acpi::aml {

namespace {

// Opcodes (ACPI 6.5, 20.3).
constexpr std::uint8_t kZeroOp = 0x00;
constexpr std::uint8_t kOneOp = 0x01;
constexpr std::uint8_t kNameOp = 0x08;
constexpr std::uint8_t kBytePrefix = 0x0a;
constexpr std::uint8_t kWordPrefix = 0x0b;
constexpr std::uint8_t kDWordPrefix = 0x0c;
constexpr std::uint8_t kStringPrefix = 0x0d;
constexpr std::uint8_t kQWordPrefix = 0x0e;
constexpr std::uint8_t kScopeOp = 0x10;
constexpr std::uint8_t kBufferOp = 0x11;
constexpr std::uint8_t kPackageOp = 0x12;
constexpr std::uint8_t kExtOpPrefix = 0x5b;
constexpr std::uint8_t kDeviceOp = 0x82;  // after kExtOpPrefix
constexpr std::uint8_t kRootChar = '\\';
constexpr std::uint8_t kDualNamePrefix = 0x2e;
constexpr std::uint8_t kMultiNamePrefix = 0x2f;

// Small resource items (ACPI 6.5, 6.4.2): tag byte = type << 3 | length.
constexpr std::uint8_t kIrqNoFlagsTag = 0x22;  // IRQ, 2 bytes
constexpr std::uint8_t kIoPortTag = 0x47;      // I/O port, 7 bytes
constexpr std::uint8_t kEndTag = 0x79;         // End tag, 1 byte
constexpr std::uint8_t kIoDecode16 = 0x01;
// Large resource items (ACPI 6.5, 6.4.3): tag byte, then a 16-bit length.
constexpr std::uint8_t kMemory32FixedTag = 0x86;
constexpr std::uint16_t kMemory32FixedLength = 9;
constexpr std::uint8_t kMemoryReadWrite = 0x01;

constexpr std::size_t kNameSegLength = 4;
constexpr std::size_t kMaxPkgLength = (1u << 28) - 1;

void append(Bytes& out, const Bytes& bytes) {
    out.insert(out.end(), bytes.begin(), bytes.end());
}

template <typename T>
void append_le(Bytes& out, T value) {
    for (std::size_t i = 0; i < sizeof(T); ++i) {
        out.push_back(static_cast<std::uint8_t>(value >> (8 * i)));
    }
}

bool is_lead_char(char c) {
    return (c >= 'A' && c <= 'Z') || c == '_';
}
bool is_name_char(char c) {
    return is_lead_char(c) || (c >= '0' && c <= '9');
}

void append_name_seg(Bytes& out, std::string_view segment, std::string_view path) {
    if (segment.empty() || segment.size() > kNameSegLength || !is_lead_char(segment[0])) {
        throw base::Error("\"{}\" is not a valid AML name", path);
    }
    for (const char c : segment) {
        if (!is_name_char(c)) throw base::Error("\"{}\" is not a valid AML name", path);
        out.push_back(static_cast<std::uint8_t>(c));
    }
    for (std::size_t i = segment.size(); i < kNameSegLength; ++i) out.push_back('_');
}

// Opcode bytes, PkgLength, then the body: the shape of Scope, Device,
// Package and Buffer.
Bytes with_pkg_length(std::initializer_list<std::uint8_t> opcode, const Bytes& body) {
    Bytes out(opcode);
    append(out, pkg_length(body.size()));
    append(out, body);
    return out;
}

Bytes terms_body(std::string_view path, std::span<const Bytes> terms) {
    Bytes body = name_string(path);
    for (const auto& term : terms) append(body, term);
    return body;
}

}  // namespace

Bytes pkg_length(std::size_t body_length) {
    // One byte holds up to 63; longer lengths use 1-3 extra bytes, the lead
    // byte's bits 7-6 counting them and its bits 3-0 holding the low nibble.
    if (body_length + 1 <= 0x3f) return {static_cast<std::uint8_t>(body_length + 1)};
    for (std::size_t extra = 1; extra <= 3; ++extra) {
        const std::size_t total = body_length + 1 + extra;
        if (total < (std::size_t{1} << (4 + 8 * extra))) {
            Bytes out{static_cast<std::uint8_t>((extra << 6) | (total & 0x0f))};
            for (std::size_t i = 0; i < extra; ++i) {
                out.push_back(static_cast<std::uint8_t>(total >> (4 + 8 * i)));
            }
            return out;
        }
    }
    throw base::Error("AML package of {} bytes exceeds the {} byte limit", body_length,
                      kMaxPkgLength);
}

Bytes name_string(std::string_view path) {
    Bytes out;
    std::string_view rest = path;
    if (!rest.empty() && rest.front() == '\\') {
        out.push_back(kRootChar);
        rest.remove_prefix(1);
    }
    std::vector<std::string_view> segments;
    while (!rest.empty()) {
        const auto dot = rest.find('.');
        segments.push_back(rest.substr(0, dot));
        rest = dot == std::string_view::npos ? std::string_view{} : rest.substr(dot + 1);
    }
    if (segments.empty() || segments.size() > 255) {
        throw base::Error("\"{}\" is not a valid AML name", path);
    }
    if (segments.size() == 2) out.push_back(kDualNamePrefix);
    if (segments.size() > 2) {
        out.push_back(kMultiNamePrefix);
        out.push_back(static_cast<std::uint8_t>(segments.size()));
    }
    for (const auto segment : segments) append_name_seg(out, segment, path);
    return out;
}

Bytes integer(std::uint64_t value) {
    if (value == 0) return {kZeroOp};
    if (value == 1) return {kOneOp};
    Bytes out;
    if (value <= 0xff) {
        out.push_back(kBytePrefix);
        append_le(out, static_cast<std::uint8_t>(value));
    } else if (value <= 0xffff) {
        out.push_back(kWordPrefix);
        append_le(out, static_cast<std::uint16_t>(value));
    } else if (value <= 0xffff'ffff) {
        out.push_back(kDWordPrefix);
        append_le(out, static_cast<std::uint32_t>(value));
    } else {
        out.push_back(kQWordPrefix);
        append_le(out, value);
    }
    return out;
}

Bytes eisa_id(std::string_view id) {
    const auto hex = [&](char c) -> std::uint32_t {
        if (c >= '0' && c <= '9') return static_cast<std::uint32_t>(c - '0');
        if (c >= 'A' && c <= 'F') return static_cast<std::uint32_t>(c - 'A' + 10);
        throw base::Error("\"{}\" is not an EISA ID (three letters, four hex digits)", id);
    };
    if (id.size() != 7)
        throw base::Error("\"{}\" is not an EISA ID (three letters, four hex digits)", id);
    std::uint32_t value = 0;
    for (std::size_t i = 0; i < 3; ++i) {
        if (id[i] < 'A' || id[i] > 'Z') {
            throw base::Error("\"{}\" is not an EISA ID (three letters, four hex digits)", id);
        }
        value |= static_cast<std::uint32_t>(id[i] - 0x40) << (26 - 5 * i);
    }
    for (std::size_t i = 3; i < 7; ++i) value |= hex(id[i]) << (4 * (6 - i));
    // The compressed ID is stored big-endian.
    Bytes out{kDWordPrefix};
    append_le(out, __builtin_bswap32(value));
    return out;
}

Bytes string(std::string_view text) {
    // Reserved up front: also keeps GCC 12's -Warray-bounds from a false
    // positive on inserting into a one-element vector.
    Bytes out;
    out.reserve(text.size() + 2);
    out.push_back(kStringPrefix);
    out.insert(out.end(), text.begin(), text.end());
    out.push_back(0);
    return out;
}

Bytes name(std::string_view path, const Bytes& object) {
    Bytes out{kNameOp};
    append(out, name_string(path));
    append(out, object);
    return out;
}

Bytes package(std::span<const Bytes> elements) {
    if (elements.size() > 255)
        throw base::Error("AML package of {} elements is too large", elements.size());
    Bytes body{static_cast<std::uint8_t>(elements.size())};
    for (const auto& element : elements) append(body, element);
    return with_pkg_length({kPackageOp}, body);
}

Bytes buffer(std::span<const std::uint8_t> bytes) {
    Bytes body = integer(bytes.size());
    body.insert(body.end(), bytes.begin(), bytes.end());
    return with_pkg_length({kBufferOp}, body);
}

Bytes scope(std::string_view path, std::span<const Bytes> terms) {
    return with_pkg_length({kScopeOp}, terms_body(path, terms));
}

Bytes device(std::string_view path, std::span<const Bytes> terms) {
    return with_pkg_length({kExtOpPrefix, kDeviceOp}, terms_body(path, terms));
}

Bytes io_port_descriptor(std::uint16_t min, std::uint16_t max, std::uint8_t alignment,
                         std::uint8_t length) {
    Bytes out{kIoPortTag, kIoDecode16};
    append_le(out, min);
    append_le(out, max);
    out.push_back(alignment);
    out.push_back(length);
    return out;
}

Bytes irq_no_flags_descriptor(std::uint8_t irq) {
    if (irq > 15) throw base::Error("IRQ descriptors cover ISA IRQs 0-15, not {}", irq);
    Bytes out{kIrqNoFlagsTag};
    append_le(out, static_cast<std::uint16_t>(1u << irq));
    return out;
}

Bytes memory32_fixed_descriptor(std::uint32_t base, std::uint32_t length) {
    Bytes out{kMemory32FixedTag};
    append_le(out, kMemory32FixedLength);
    out.push_back(kMemoryReadWrite);
    append_le(out, base);
    append_le(out, length);
    return out;
}

Bytes resource_template(std::span<const Bytes> descriptors) {
    Bytes bytes;
    for (const auto& descriptor : descriptors) append(bytes, descriptor);
    // A zero End Tag checksum means "treat the template as valid".
    bytes.push_back(kEndTag);
    bytes.push_back(0);
    return buffer(bytes);
}

}  // namespace vmm::acpi::aml
