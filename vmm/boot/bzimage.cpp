#include "vmm/boot/bzimage.hpp"

#include <asm/bootparam.h>

#include <algorithm>
#include <cstddef>
#include <cstring>

#include "base/checked_math.hpp"
#include "base/error.hpp"
#include "vmm/boot/cmdline.hpp"
#include "vmm/boot/e820.hpp"
#include "vmm/boot/initrd.hpp"
#include "vmm/boot/write_plan.hpp"
#include "vmm/x86/layout.hpp"

namespace vmm::boot {

namespace {

// Offsets and values from boot.rst, "The Real-Mode Kernel Header".
constexpr std::size_t kSetupHeaderOffset = 0x1f1;
constexpr std::size_t kJumpOffset = 0x200;  // short jmp; its byte at 0x201 sizes the header
constexpr std::size_t kHeaderMagicOffset = 0x202;
constexpr std::uint32_t kHeaderMagic = 0x53726448;  // "HdrS"
constexpr std::uint16_t kBootFlag = 0xaa55;
constexpr std::uint16_t kMinProtocol = 0x020c;  // 2.12: xloadflags (XLF_KERNEL_64)
constexpr std::size_t kSectorSize = 512;
constexpr std::uint8_t kDefaultSetupSects = 4;  // "if setup_sects == 0 the real value is 4"
constexpr std::uint64_t k64BitEntryOffset = 0x200;
constexpr std::uint8_t kUndefinedLoader = 0xff;

// The header may not grow into the fields that follow it in boot_params.
constexpr std::size_t kSetupHeaderLimit = offsetof(boot_params, edd_mbr_sig_buffer);
// Protocol 2.10 fields up to init_size are what this loader reads.
constexpr std::size_t kSetupHeaderMinEnd =
    kSetupHeaderOffset + offsetof(setup_header, init_size) + sizeof(std::uint32_t);

static_assert(sizeof(boot_params) == 4096, "boot_params is the 4 KiB zero page");
static_assert(offsetof(boot_params, hdr) == kSetupHeaderOffset);
static_assert(kSetupHeaderLimit == 0x290);
static_assert(x86::kZeroPageAddress + sizeof(boot_params) < x86::kBootStackTop,
              "the boot stack grows down towards the zero page, not into it");

template <typename T>
T read_le(std::span<const std::uint8_t> bytes, std::size_t offset) {
    T value;
    std::memcpy(&value, bytes.data() + offset, sizeof(T));
    return value;
}

bool is_power_of_two(std::uint64_t value) {
    return value != 0 && (value & (value - 1)) == 0;
}

// Everything decided about the image before guest memory is touched.
struct BzImageLayout {
    std::size_t header_end;       // file offset one past the setup header
    std::size_t kernel_offset;    // file offset of the protected-mode kernel
    std::uint64_t footprint_end;  // guest address one past all the kernel may use while booting
    setup_header header;
};

BzImageLayout validate_image(const BootRequest& request, const GuestMemory& memory) {
    const std::span<const std::uint8_t> image(request.kernel);
    const std::string& name = request.kernel_name;
    if (!looks_like_bzimage(image)) {
        throw base::Error("{} has no bzImage setup header signature", name);
    }

    const std::size_t header_end = kHeaderMagicOffset + image[kJumpOffset + 1];
    if (image.size() < header_end) {
        throw base::Error(
            "{} is truncated: its setup header ends at {:#x} but the file has {} bytes", name,
            header_end, image.size());
    }
    if (header_end > kSetupHeaderLimit || header_end < kSetupHeaderMinEnd) {
        throw base::Error(
            "{} has a malformed setup header: it ends at {:#x}, expected {:#x}..{:#x}", name,
            header_end, kSetupHeaderMinEnd, kSetupHeaderLimit);
    }

    // Fields past the header's end (a kernel with an older, shorter header)
    // read as zero, as they would in a fresh zero page.
    setup_header header{};
    const std::size_t header_bytes = std::min(header_end - kSetupHeaderOffset, sizeof(header));
    std::memcpy(&header, image.data() + kSetupHeaderOffset, header_bytes);

    if (header.boot_flag != kBootFlag) {
        throw base::Error("{} has no boot flag {:#x} (found {:#x})", name, kBootFlag,
                          std::uint16_t{header.boot_flag});
    }
    if (header.version < kMinProtocol) {
        throw base::Error("{} uses boot protocol {}.{:02}; at least 2.12 is required", name,
                          header.version >> 8, header.version & 0xff);
    }
    if ((header.loadflags & LOADED_HIGH) == 0) {
        throw base::Error("{} is a zImage, not a bzImage (LOADED_HIGH is clear)", name);
    }
    if ((header.xloadflags & XLF_KERNEL_64) == 0) {
        throw base::Error("{} has no 64-bit entry point (XLF_KERNEL_64 is clear)", name);
    }
    if (header.init_size == 0) {
        throw base::Error("{} has a malformed setup header: init_size is 0", name);
    }
    if (header.relocatable_kernel != 0 && !is_power_of_two(header.kernel_alignment)) {
        throw base::Error(
            "{} has a malformed setup header: kernel_alignment {:#x} is not a power "
            "of two",
            name, std::uint32_t{header.kernel_alignment});
    }

    const std::uint8_t setup_sects =
        header.setup_sects != 0 ? header.setup_sects : kDefaultSetupSects;
    const std::size_t kernel_offset = (std::size_t{setup_sects} + 1) * kSectorSize;
    if (image.size() <= kernel_offset) {
        throw base::Error("{} is truncated: the setup code takes {} bytes but the file has {}",
                          name, kernel_offset, image.size());
    }
    const std::uint64_t payload_size = image.size() - kernel_offset;
    const std::uint64_t declared_size = std::uint64_t{header.syssize} * 16;
    if (payload_size < declared_size) {
        throw base::Error(
            "{} is truncated: the header declares a {}-byte kernel but the file "
            "holds {} bytes after the setup code",
            name, declared_size, payload_size);
    }

    // The 64-bit entry decompresses into a buffer of init_size bytes at the
    // load address rounded up to kernel_alignment, but never below
    // pref_address (LOAD_PHYSICAL_ADDR); a non-relocatable kernel always uses
    // pref_address (arch/x86/boot/compressed/head_64.S). All of it must be RAM.
    // (Packed fields are copied out: fmt and std::max take references.)
    const std::uint64_t load = x86::kHighMemoryStart;
    const std::uint64_t pref_address = header.pref_address;
    const std::uint64_t init_size = header.init_size;
    const std::uint64_t decompress_base =
        header.relocatable_kernel != 0
            ? std::max(base::align_up(load, header.kernel_alignment), pref_address)
            : pref_address;
    const auto buffer_end = base::checked_add(decompress_base, init_size);
    if (!buffer_end) {
        throw base::Error("{} has a malformed setup header: pref_address {:#x} overflows", name,
                          pref_address);
    }
    const std::uint64_t footprint_end = std::max(load + payload_size, *buffer_end);
    const std::uint64_t ram_end = low_ram_end(memory);
    if (decompress_base < load || footprint_end > ram_end) {
        throw base::Error(
            "{} needs guest RAM [{:#x}, {:#x}) to boot (init_size {:#x} at {:#x}), "
            "but low RAM ends at {:#x}",
            name, load, footprint_end, init_size, decompress_base, ram_end);
    }
    return {header_end, kernel_offset, footprint_end, header};
}

}  // namespace

bool looks_like_bzimage(std::span<const std::uint8_t> image) {
    return image.size() >= kHeaderMagicOffset + sizeof(kHeaderMagic) &&
           read_le<std::uint32_t>(image, kHeaderMagicOffset) == kHeaderMagic;
}

BootEntry load_bzimage(GuestMemory& memory, const BootRequest& request) {
    const std::span<const std::uint8_t> image(request.kernel);
    const BzImageLayout layout = validate_image(request, memory);

    auto cmdline = cmdline_bytes(request.cmdline, layout.header.cmdline_size);

    std::uint64_t initrd_address = 0;
    std::uint64_t initrd_size = 0;
    if (request.initrd) {
        initrd_size = request.initrd->size();
        // initrd_addr_max is the highest address the initrd may occupy.
        const std::uint64_t limit =
            std::min(low_ram_end(memory), std::uint64_t{layout.header.initrd_addr_max} + 1);
        initrd_address =
            place_initrd(request.initrd_name, initrd_size, layout.footprint_end, limit);
    }

    const auto e820 = build_e820_map(memory);
    if (e820.size() > E820_MAX_ENTRIES_ZEROPAGE) {
        throw base::Error("the memory map has {} entries; the zero page holds {}", e820.size(),
                          E820_MAX_ENTRIES_ZEROPAGE);
    }

    // The zero page: a clean boot_params with the image's setup header
    // copied in unchanged (boot.rst, "64-bit Boot Protocol"), then the
    // fields a boot loader writes.
    boot_params params{};
    std::vector<std::uint8_t> zero_page(sizeof(params), 0);
    std::memcpy(zero_page.data() + kSetupHeaderOffset, image.data() + kSetupHeaderOffset,
                layout.header_end - kSetupHeaderOffset);
    std::memcpy(&params, zero_page.data(), sizeof(params));

    params.hdr.type_of_loader = kUndefinedLoader;
    params.hdr.code32_start = static_cast<std::uint32_t>(x86::kHighMemoryStart);
    params.hdr.cmd_line_ptr = static_cast<std::uint32_t>(x86::kCmdlineAddress);
    params.ext_cmd_line_ptr = static_cast<std::uint32_t>(x86::kCmdlineAddress >> 32);
    params.hdr.ramdisk_image = static_cast<std::uint32_t>(initrd_address);
    params.hdr.ramdisk_size = static_cast<std::uint32_t>(initrd_size);
    params.ext_ramdisk_image = static_cast<std::uint32_t>(initrd_address >> 32);
    params.ext_ramdisk_size = static_cast<std::uint32_t>(initrd_size >> 32);
    params.acpi_rsdp_addr = request.rsdp_address;
    params.e820_entries = static_cast<std::uint8_t>(e820.size());
    for (std::size_t i = 0; i < e820.size(); ++i) {
        params.e820_table[i].addr = e820[i].address;
        params.e820_table[i].size = e820[i].size;
        params.e820_table[i].type = static_cast<std::uint32_t>(e820[i].type);
    }
    std::memcpy(zero_page.data(), &params, sizeof(params));

    WritePlan plan;
    plan.add_copy(request.kernel_name + " protected-mode kernel", x86::kHighMemoryStart,
                  image.subspan(layout.kernel_offset));
    plan.add_owned("zero page", x86::kZeroPageAddress, std::move(zero_page));
    plan.add_owned("kernel command line", x86::kCmdlineAddress, std::move(cmdline));
    if (request.initrd) plan.add_copy(request.initrd_name, initrd_address, *request.initrd);
    plan.apply(memory);

    return BootEntry{BootEntry::Mode::Linux64, x86::kHighMemoryStart + k64BitEntryOffset,
                     x86::kZeroPageAddress};
}

}  // namespace vmm::boot
