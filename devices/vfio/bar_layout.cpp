#include "devices/vfio/bar_layout.hpp"

#include <algorithm>

namespace devices::vfio {

std::vector<BarSegment> plan_bar_segments(std::uint64_t bar_size, bool mappable,
                                          std::span<const ByteRange> trapped,
                                          std::uint64_t page_size) {
    if (bar_size == 0) return {};
    if (!mappable || bar_size < page_size || page_size == 0) return {{0, bar_size, false}};
    // Whole trapped pages, sorted and merged.
    std::vector<ByteRange> pages;
    for (const auto& range : trapped) {
        if (range.size == 0 || range.offset >= bar_size) continue;
        const std::uint64_t end = std::min(bar_size, range.offset + std::min(range.size, bar_size));
        const std::uint64_t first = range.offset & ~(page_size - 1);
        const std::uint64_t last = std::min(bar_size, (end + page_size - 1) & ~(page_size - 1));
        pages.push_back({first, last - first});
    }
    std::sort(pages.begin(), pages.end(),
              [](const ByteRange& a, const ByteRange& b) { return a.offset < b.offset; });
    std::vector<BarSegment> segments;
    std::uint64_t at = 0;
    for (const auto& page : pages) {
        if (page.offset + page.size <= at) continue;  // inside the previous trapped run
        const std::uint64_t start = std::max(at, page.offset);
        if (start > at) segments.push_back({at, start - at, true});
        const std::uint64_t end = page.offset + page.size;
        if (!segments.empty() && !segments.back().mapped &&
            segments.back().offset + segments.back().size == start) {
            segments.back().size = end - segments.back().offset;
        } else {
            segments.push_back({start, end - start, false});
        }
        at = end;
    }
    if (at < bar_size) {
        // A BAR whose size is not a multiple of the page (over a page, so
        // never for power-of-two sizes) would end in a partial page: trap it.
        const std::uint64_t whole = bar_size & ~(page_size - 1);
        if (whole > at) segments.push_back({at, whole - at, true});
        if (bar_size > std::max(at, whole)) {
            segments.push_back({std::max(at, whole), bar_size - std::max(at, whole), false});
        }
    }
    return segments;
}

}  // namespace devices::vfio
