#include "vmm/boot/elf_pvh.hpp"

#include <elf.h>

#include <algorithm>
#include <cstring>
#include <string_view>

#include "base/checked_math.hpp"
#include "base/error.hpp"
#include "vmm/boot/cmdline.hpp"
#include "vmm/boot/e820.hpp"
#include "vmm/boot/initrd.hpp"
#include "vmm/boot/pvh_start_info.hpp"
#include "vmm/boot/write_plan.hpp"
#include "vmm/x86/layout.hpp"

namespace vmm::boot {

namespace {

// vmlinux has a handful; anything far beyond is not a kernel.
constexpr std::uint16_t kMaxProgramHeaders = 128;
constexpr std::uint64_t k32BitLimit = 1ULL << 32;
constexpr std::string_view kXenNoteName{"Xen\0", 4};
constexpr std::uint64_t kNoteAlignment = 4;  // ELF64 notes in vmlinux use 4-byte padding

template <typename T>
T read_struct(std::span<const std::uint8_t> bytes, std::uint64_t offset) {
    T value;
    std::memcpy(&value, bytes.data() + offset, sizeof(T));
    return value;
}

struct LoadSegment {
    std::uint64_t file_offset;
    std::uint64_t file_size;
    std::uint64_t address;
    std::uint64_t memory_size;
};

struct ElfLayout {
    std::vector<LoadSegment> segments;
    std::uint64_t pvh_entry;
    std::uint64_t kernel_end;  // highest segment end
};

// Returns the PVH entry from a PT_NOTE segment's bytes, if the Xen
// PHYS32_ENTRY note is among them.
std::optional<std::uint64_t> find_pvh_entry(std::span<const std::uint8_t> notes,
                                            const std::string& name) {
    std::uint64_t offset = 0;
    while (notes.size() - offset >= sizeof(Elf64_Nhdr)) {
        const auto note = read_struct<Elf64_Nhdr>(notes, offset);
        const std::uint64_t name_offset = offset + sizeof(Elf64_Nhdr);
        const std::uint64_t desc_offset =
            name_offset + base::align_up(note.n_namesz, kNoteAlignment);
        // 32-bit sizes added to a 64-bit offset below the file size: no overflow.
        if (desc_offset > notes.size() || note.n_descsz > notes.size() - desc_offset) {
            throw base::Error("{} has a malformed ELF note at offset {:#x} of a PT_NOTE segment",
                              name, offset);
        }
        const auto note_name = notes.subspan(name_offset, note.n_namesz);
        const bool is_xen =
            note_name.size() == kXenNoteName.size() &&
            std::memcmp(note_name.data(), kXenNoteName.data(), note_name.size()) == 0;
        if (is_xen && note.n_type == pvh::kElfNotePhys32Entry) {
            // Linux emits the entry as _ASM_PTR (8 bytes); Xen also accepts 4.
            if (note.n_descsz == sizeof(std::uint32_t)) {
                return read_struct<std::uint32_t>(notes, desc_offset);
            }
            if (note.n_descsz == sizeof(std::uint64_t)) {
                return read_struct<std::uint64_t>(notes, desc_offset);
            }
            throw base::Error("{} has a PVH entry note of {} bytes; expected 4 or 8", name,
                              note.n_descsz);
        }
        offset = desc_offset + base::align_up(note.n_descsz, kNoteAlignment);
        if (offset > notes.size()) break;  // the last note's padding may be cut
    }
    return std::nullopt;
}

ElfLayout validate_elf(const BootRequest& request, const GuestMemory& memory) {
    const std::span<const std::uint8_t> image(request.kernel);
    const std::string& name = request.kernel_name;

    if (image.size() < sizeof(Elf64_Ehdr)) {
        throw base::Error("{} is truncated: {} bytes cannot hold an ELF64 header", name,
                          image.size());
    }
    const auto header = read_struct<Elf64_Ehdr>(image, 0);
    if (std::memcmp(header.e_ident, ELFMAG, SELFMAG) != 0) {
        throw base::Error("{} is not an ELF file", name);
    }
    if (header.e_ident[EI_CLASS] != ELFCLASS64 || header.e_ident[EI_DATA] != ELFDATA2LSB ||
        header.e_ident[EI_VERSION] != EV_CURRENT || header.e_machine != EM_X86_64) {
        throw base::Error("{} is not a little-endian x86-64 ELF64 file", name);
    }
    if (header.e_type != ET_EXEC) {
        throw base::Error("{} is an ELF file of type {}, not an executable", name, header.e_type);
    }
    if (header.e_phentsize != sizeof(Elf64_Phdr) || header.e_phnum == 0 ||
        header.e_phnum > kMaxProgramHeaders) {
        throw base::Error("{} has a malformed ELF header: {} program headers of {} bytes", name,
                          header.e_phnum, header.e_phentsize);
    }
    const std::uint64_t table_size = std::uint64_t{header.e_phnum} * sizeof(Elf64_Phdr);
    if (!base::range_within(header.e_phoff, table_size, image.size())) {
        throw base::Error("{} is truncated: its program headers at {:#x} lie outside the file",
                          name, header.e_phoff);
    }

    ElfLayout layout{{}, 0, 0};
    std::optional<std::uint64_t> pvh_entry;
    for (std::uint16_t i = 0; i < header.e_phnum; ++i) {
        const auto segment =
            read_struct<Elf64_Phdr>(image, header.e_phoff + std::uint64_t{i} * sizeof(Elf64_Phdr));
        if (segment.p_type != PT_LOAD && segment.p_type != PT_NOTE) continue;
        if (!base::range_within(segment.p_offset, segment.p_filesz, image.size())) {
            throw base::Error(
                "{} is truncated or malformed: segment {} at file offset {:#x} "
                "(+{:#x}) lies outside the file",
                name, i, segment.p_offset, segment.p_filesz);
        }
        if (segment.p_type == PT_NOTE) {
            if (!pvh_entry) {
                pvh_entry = find_pvh_entry(image.subspan(segment.p_offset, segment.p_filesz), name);
            }
            continue;
        }
        if (segment.p_filesz > segment.p_memsz) {
            throw base::Error(
                "{} has a malformed segment {}: {:#x} bytes in the file but {:#x} in "
                "memory",
                name, i, segment.p_filesz, segment.p_memsz);
        }
        if (segment.p_memsz == 0) continue;
        // The PVH entry runs with 32-bit addresses and paging off, so the
        // image must sit in RAM below 4 GiB, above the boot data of the first MiB.
        const auto end = base::checked_add(segment.p_paddr, segment.p_memsz);
        if (!end || *end > k32BitLimit || segment.p_paddr < x86::kHighMemoryStart ||
            !memory.contains(segment.p_paddr, segment.p_memsz)) {
            throw base::Error(
                "{} segment {} at [{:#x}, +{:#x}) is outside the guest RAM usable "
                "for the kernel ([{:#x}, {:#x}))",
                name, i, segment.p_paddr, segment.p_memsz, x86::kHighMemoryStart,
                low_ram_end(memory));
        }
        layout.segments.push_back(
            {segment.p_offset, segment.p_filesz, segment.p_paddr, segment.p_memsz});
        layout.kernel_end = std::max(layout.kernel_end, *end);
    }

    if (layout.segments.empty()) throw base::Error("{} has no loadable segment", name);
    if (!pvh_entry) {
        throw base::Error(
            "{} is an ELF kernel without a Xen PVH entry note "
            "(XEN_ELFNOTE_PHYS32_ENTRY); build it with CONFIG_PVH=y",
            name);
    }
    const bool entry_loaded = std::any_of(
        layout.segments.begin(), layout.segments.end(), [&](const LoadSegment& segment) {
            return *pvh_entry >= segment.address &&
                   *pvh_entry - segment.address < segment.file_size;
        });
    if (!entry_loaded) {
        throw base::Error("{} has its PVH entry point {:#x} outside its loaded segments", name,
                          *pvh_entry);
    }
    layout.pvh_entry = *pvh_entry;
    return layout;
}

// hvm_start_info, the module list and the memory map, packed one after the
// other so the whole block is written at kPvhStartInfoAddress in one go.
std::vector<std::uint8_t> build_start_info(const BootRequest& request,
                                           const std::vector<E820Entry>& e820,
                                           std::uint64_t initrd_address) {
    const std::uint64_t base = x86::kPvhStartInfoAddress;
    const std::uint32_t module_count = request.initrd ? 1 : 0;
    const std::uint64_t modlist_offset = sizeof(pvh::StartInfo);
    const std::uint64_t memmap_offset = modlist_offset + module_count * sizeof(pvh::ModlistEntry);
    const std::uint64_t total = memmap_offset + e820.size() * sizeof(pvh::MemmapEntry);
    if (base + total > x86::kZeroPageAddress) {
        throw base::Error("the PVH start info with {} memory map entries does not fit below {:#x}",
                          e820.size(), x86::kZeroPageAddress);
    }

    std::vector<std::uint8_t> bytes(total, 0);
    pvh::StartInfo info{};
    info.magic = pvh::kStartMagic;
    info.version = pvh::kStartInfoVersion;
    info.nr_modules = module_count;
    info.modlist_paddr = module_count != 0 ? base + modlist_offset : 0;
    info.cmdline_paddr = x86::kCmdlineAddress;
    info.rsdp_paddr = request.rsdp_address;
    info.memmap_paddr = base + memmap_offset;
    info.memmap_entries = static_cast<std::uint32_t>(e820.size());
    std::memcpy(bytes.data(), &info, sizeof(info));

    if (request.initrd) {
        const pvh::ModlistEntry module{initrd_address, request.initrd->size(), 0, 0};
        std::memcpy(bytes.data() + modlist_offset, &module, sizeof(module));
    }
    for (std::size_t i = 0; i < e820.size(); ++i) {
        const pvh::MemmapEntry entry{e820[i].address, e820[i].size,
                                     static_cast<std::uint32_t>(e820[i].type), 0};
        std::memcpy(bytes.data() + memmap_offset + i * sizeof(entry), &entry, sizeof(entry));
    }
    return bytes;
}

}  // namespace

bool looks_like_elf(std::span<const std::uint8_t> image) {
    return image.size() >= SELFMAG && std::memcmp(image.data(), ELFMAG, SELFMAG) == 0;
}

BootEntry load_elf_pvh(GuestMemory& memory, const BootRequest& request) {
    const std::span<const std::uint8_t> image(request.kernel);
    const ElfLayout layout = validate_elf(request, memory);
    // PVH has no kernel-side limit; the address map's reserved area is the limit.
    auto cmdline = cmdline_bytes(request.cmdline, x86::kCmdlineMaxSize - 1);

    std::uint64_t initrd_address = 0;
    if (request.initrd) {
        initrd_address = place_initrd(request.initrd_name, request.initrd->size(),
                                      layout.kernel_end, low_ram_end(memory));
    }
    auto start_info = build_start_info(request, build_e820_map(memory), initrd_address);

    WritePlan plan;
    for (std::size_t i = 0; i < layout.segments.size(); ++i) {
        const auto& segment = layout.segments[i];
        const std::string what = fmt::format("{} segment {}", request.kernel_name, i);
        plan.add_copy(what, segment.address, image.subspan(segment.file_offset, segment.file_size));
        plan.add_zeros(what + " (bss)", segment.address + segment.file_size,
                       segment.memory_size - segment.file_size);
    }
    plan.add_owned("PVH start info", x86::kPvhStartInfoAddress, std::move(start_info));
    plan.add_owned("kernel command line", x86::kCmdlineAddress, std::move(cmdline));
    if (request.initrd) plan.add_copy(request.initrd_name, initrd_address, *request.initrd);
    plan.apply(memory);

    return BootEntry{BootEntry::Mode::Pvh32, layout.pvh_entry, x86::kPvhStartInfoAddress};
}

}  // namespace vmm::boot
