// iommufd_map_bench: how long it takes to make N GiB of memfd-backed guest
// RAM DMA-able through an IOAS (IOMMU_IOAS_MAP: pin every page, fill the
// IOMMU page table, flush) and to undo it (IOMMU_IOAS_UNMAP). This is the
// per-VM cost a KVM-managed HWPT removes (docs/IOMMUFD.md).
//
//   iommufd_map_bench --device vfio:0000:00:03.0 --sizes 1,4,16
//   iommufd_map_bench --device mock --sizes 1        (selftest driver, <= 1.9 GiB)
//   iommufd_map_bench --device none --sizes 1,4      (no domain: bookkeeping only)
// Options: --method map|map_file (default map), --hugetlb (MFD_HUGETLB 2M
// pages), --no-prefault (let the map fault pages in), --repeat N,
// --iommu-4k (IOMMU_OPTION_HUGE_PAGES=0: one IOMMU PTE per 4K page, as with
// fragmented host memory, instead of merging contiguous runs).
// One result line per size: "iommufd_map size_gib=... map_s=... unmap_s=...".
#include <sys/mman.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "base/mapped_region.hpp"
#include "base/unique_fd.hpp"
#include "iommufd_backend/ioas.hpp"
#include "iommufd_backend/iommu_fd.hpp"
#include "iommufd_backend/selftest_device.hpp"
#include "iommufd_backend/vfio_device.hpp"

namespace {

using namespace iommufd_backend;
using Clock = std::chrono::steady_clock;

constexpr std::uint64_t kGiB = 1ull << 30;

struct Options {
    std::string device = "none";
    std::vector<double> sizes_gib{1};
    bool map_file = false;
    bool hugetlb = false;
    bool prefault = true;
    bool iommu_4k = false;
    int repeat = 1;
};

double seconds_since(Clock::time_point start) {
    return std::chrono::duration<double>(Clock::now() - start).count();
}

std::vector<double> parse_sizes(const std::string& text) {
    std::vector<double> sizes;
    std::stringstream list(text);
    std::string item;
    while (std::getline(list, item, ',')) sizes.push_back(std::stod(item));
    return sizes;
}

Options parse(int argc, char** argv) {
    Options options;
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) throw base::Error("{} needs a value", arg);
            return argv[++i];
        };
        if (arg == "--device")
            options.device = value();
        else if (arg == "--sizes")
            options.sizes_gib = parse_sizes(value());
        else if (arg == "--method")
            options.map_file = value() == "map_file";
        else if (arg == "--hugetlb")
            options.hugetlb = true;
        else if (arg == "--no-prefault")
            options.prefault = false;
        else if (arg == "--iommu-4k")
            options.iommu_4k = true;
        else if (arg == "--repeat")
            options.repeat = std::stoi(value());
        else
            throw base::Error(
                "unknown option {} (see the comment at the top of iommufd_map_bench.cpp)", arg);
    }
    return options;
}

// Whatever keeps a domain attached to the IOAS so that IOAS_MAP really pins
// and maps: a VFIO device, a selftest mock device, or nothing.
struct Attachment {
    std::optional<VfioDevice> vfio;
    std::optional<SelftestDevice> mock;
    std::uint64_t iova_base = 0;
    std::uint64_t iova_limit = ~0ull;
    std::string description = "no device (IOAS bookkeeping only, nothing pinned)";
};

Attachment attach(const Options& options, const IommuFd& iommufd, Ioas& ioas) {
    Attachment attachment;
    if (options.device.rfind("vfio:", 0) == 0) {
        const std::string bdf = options.device.substr(5);
        attachment.vfio.emplace(VfioDevice::open_pci(bdf));
        attachment.vfio->bind(iommufd);
        attachment.vfio->attach(ioas.id());
        attachment.description = "VFIO " + bdf;
        attachment.iova_base = 4 * kGiB;  // above the x86 MSI window
    } else if (options.device == "mock") {
        attachment.mock.emplace(SelftestDevice::create(iommufd, ioas.id()));
        attachment.description = "iommufd selftest mock device";
        attachment.iova_base = MOCK_APERTURE_START;
        attachment.iova_limit = MOCK_APERTURE_LAST;
    } else if (options.device != "none") {
        throw base::Error("--device must be vfio:<bdf>, mock or none, not '{}'", options.device);
    }
    return attachment;
}

}  // namespace

int main(int argc, char** argv) try {
    const Options options = parse(argc, argv);
    const auto iommufd = IommuFd::open();
    Ioas ioas = Ioas::allocate(iommufd);
    if (options.iommu_4k) ioas.set_huge_pages(false);
    Attachment attachment = attach(options, iommufd, ioas);
    const long page = ::sysconf(_SC_PAGESIZE);
    std::printf("# device: %s; method: %s; pages: %s; prefault: %s\n",
                attachment.description.c_str(),
                options.map_file ? "IOMMU_IOAS_MAP_FILE" : "IOMMU_IOAS_MAP",
                options.hugetlb ? "hugetlb 2M" : "4K shmem", options.prefault ? "yes" : "no");

    for (const double gib : options.sizes_gib) {
        const auto size = static_cast<std::uint64_t>(gib * static_cast<double>(kGiB));
        if (attachment.iova_base + size - 1 > attachment.iova_limit) {
            std::printf("iommufd_map size_gib=%g skipped=\"beyond the device aperture\"\n", gib);
            continue;
        }
        base::UniqueFd memfd(
            ::memfd_create("guest-ram", MFD_CLOEXEC | (options.hugetlb ? MFD_HUGETLB : 0)));
        if (!memfd.valid()) base::throw_errno("memfd_create");
        if (::ftruncate(memfd.get(), static_cast<off_t>(size)) != 0)
            base::throw_errno("ftruncate to {} GiB", gib);
        // Safe: a fresh shared mapping of our own memfd, owned by `ram`.
        base::MappedRegion ram = base::MappedRegion::map(size, PROT_READ | PROT_WRITE,
                                                         MAP_SHARED | MAP_NORESERVE, memfd.get());

        double prefault_s = 0;
        if (options.prefault) {
            const auto start = Clock::now();
            for (std::uint64_t offset = 0; offset < size;
                 offset += static_cast<std::uint64_t>(page)) {
                ram.data()[offset] = 1;
            }
            prefault_s = seconds_since(start);
        }
        for (int round = 0; round < options.repeat; ++round) {
            auto start = Clock::now();
            if (options.map_file) {
                ioas.map_file(memfd.get(), 0, size, attachment.iova_base);
            } else {
                ioas.map(ram.bytes(), attachment.iova_base);
            }
            const double map_s = seconds_since(start);
            start = Clock::now();
            const std::uint64_t unmapped = ioas.unmap(attachment.iova_base, size);
            const double unmap_s = seconds_since(start);
            if (unmapped != size)
                throw base::Error("unmapped {:#x} of {:#x} bytes", unmapped, size);
            std::printf(
                "iommufd_map size_gib=%g round=%d prefault_s=%.3f map_s=%.3f unmap_s=%.3f "
                "map_gib_per_s=%.2f unmap_gib_per_s=%.2f\n",
                gib, round, prefault_s, map_s, unmap_s, gib / map_s, gib / unmap_s);
            std::fflush(stdout);
        }
    }
    return 0;
} catch (const std::exception& error) {
    std::fprintf(stderr, "iommufd_map_bench: %s\n", error.what());
    return 1;
}
