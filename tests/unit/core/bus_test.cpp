// vmm::Bus: range validation on insert, dispatch, unclaimed and straddling
// accesses, removal, and a device's lifetime while another thread (or the
// device itself) removes it mid-access.
#include "vmm/bus.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <cstring>
#include <limits>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include "base/error.hpp"

namespace {

using ::testing::Each;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr std::uint64_t kMax = std::numeric_limits<std::uint64_t>::max();

// Records every access; reads answer `fill + offset` in each byte.
class RecordingDevice : public vmm::BusDevice {
  public:
    struct Access {
        std::uint64_t offset;
        std::vector<std::uint8_t> bytes;
    };

    explicit RecordingDevice(std::uint8_t fill = 0x10) : fill_(fill) {}

    void read(std::uint64_t offset, std::span<std::uint8_t> data) override {
        for (std::size_t i = 0; i < data.size(); ++i) {
            data[i] = static_cast<std::uint8_t>(fill_ + offset + i);
        }
        reads.push_back({offset, {data.begin(), data.end()}});
    }
    void write(std::uint64_t offset, std::span<const std::uint8_t> data) override {
        writes.push_back({offset, {data.begin(), data.end()}});
    }

    std::vector<Access> reads;
    std::vector<Access> writes;

  private:
    std::uint8_t fill_;
};

template <typename Fn>
std::string error_message(Fn&& fn) {
    try {
        fn();
    } catch (const base::Error& error) {
        return error.what();
    }
    ADD_FAILURE() << "no base::Error thrown";
    return {};
}

TEST(Bus, KeepsItsName) {
    vmm::Bus bus("pio");
    EXPECT_EQ(bus.name(), "pio");
}

TEST(Bus, InsertRejectsNullDevice) {
    vmm::Bus bus("pio");
    EXPECT_THROW(bus.insert(nullptr, 0x3f8, 8), base::Error);
}

TEST(Bus, InsertRejectsEmptyRange) {
    vmm::Bus bus("mmio");
    const auto message =
        error_message([&] { bus.insert(std::make_shared<RecordingDevice>(), 0x1000, 0); });
    EXPECT_THAT(message, HasSubstr("mmio bus"));
    EXPECT_THAT(message, HasSubstr("0x1000"));
    std::array<std::uint8_t, 1> byte{};
    EXPECT_FALSE(bus.read(0x1000, byte));
}

TEST(Bus, InsertRejectsRangeThatOverflows) {
    vmm::Bus bus("mmio");
    auto device = std::make_shared<RecordingDevice>();
    EXPECT_THROW(bus.insert(device, kMax, 2), base::Error);
    EXPECT_THROW(bus.insert(device, kMax - 7, 16), base::Error);
    EXPECT_THROW(bus.insert(device, 1, kMax), base::Error);
    // Ending exactly at 2^64 is also unrepresentable and refused.
    EXPECT_THROW(bus.insert(device, kMax - 15, 16), base::Error);
}

TEST(Bus, InsertAcceptsRangeEndingJustBelowTopOfAddressSpace) {
    vmm::Bus bus("mmio");
    auto device = std::make_shared<RecordingDevice>();
    bus.insert(device, kMax - 16, 16);  // [2^64 - 17, 2^64 - 1)
    std::array<std::uint8_t, 1> byte{};
    EXPECT_TRUE(bus.read(kMax - 1, byte));
    ASSERT_EQ(device->reads.size(), 1u);
    EXPECT_EQ(device->reads[0].offset, 15u);
    EXPECT_FALSE(bus.read(kMax, byte));
    // An access whose end would wrap around is unclaimed, not dispatched.
    std::array<std::uint8_t, 8> wide{};
    EXPECT_FALSE(bus.read(kMax - 3, wide));
    EXPECT_THAT(wide, Each(0xff));
    EXPECT_EQ(device->reads.size(), 1u);
}

class BusOverlap : public ::testing::Test {
  protected:
    void SetUp() override { bus.insert(existing, 0x100, 0x10); }  // [0x100, 0x110)

    void expect_rejected(std::uint64_t base, std::uint64_t size) {
        SCOPED_TRACE(::testing::Message() << "base " << std::hex << base << " size " << size);
        const auto message =
            error_message([&] { bus.insert(std::make_shared<RecordingDevice>(), base, size); });
        EXPECT_THAT(message, HasSubstr("overlaps the range at 0x100"));
        // The bus is unchanged: the existing device still owns its range and
        // nothing new answers around it.
        std::array<std::uint8_t, 1> byte{};
        EXPECT_TRUE(bus.read(0x100, byte));
        EXPECT_EQ(byte[0], 0x10);
        if (base < 0x100) {
            EXPECT_FALSE(bus.read(base, byte));
        }
    }

    vmm::Bus bus{"pio"};
    std::shared_ptr<RecordingDevice> existing = std::make_shared<RecordingDevice>();
};

TEST_F(BusOverlap, SameBase) {
    expect_rejected(0x100, 0x10);
}
TEST_F(BusOverlap, SameBaseSmaller) {
    expect_rejected(0x100, 1);
}
TEST_F(BusOverlap, StartsInside) {
    expect_rejected(0x108, 0x10);
}
TEST_F(BusOverlap, StartsAtLastByte) {
    expect_rejected(0x10f, 1);
}
TEST_F(BusOverlap, EndsInside) {
    expect_rejected(0xf8, 0x10);
}
TEST_F(BusOverlap, EndsAtFirstByte) {
    expect_rejected(0xff, 2);
}
TEST_F(BusOverlap, Encloses) {
    expect_rejected(0x80, 0x100);
}
TEST_F(BusOverlap, Inside) {
    expect_rejected(0x104, 4);
}

TEST_F(BusOverlap, AdjacentRangesAreAccepted) {
    auto below = std::make_shared<RecordingDevice>(0x20);
    auto above = std::make_shared<RecordingDevice>(0x30);
    bus.insert(below, 0xf0, 0x10);   // ends where `existing` starts
    bus.insert(above, 0x110, 0x10);  // starts where `existing` ends
    std::array<std::uint8_t, 1> byte{};
    ASSERT_TRUE(bus.read(0xff, byte));
    EXPECT_EQ(byte[0], 0x20 + 0xf);
    ASSERT_TRUE(bus.read(0x100, byte));
    EXPECT_EQ(byte[0], 0x10);
    ASSERT_TRUE(bus.read(0x110, byte));
    EXPECT_EQ(byte[0], 0x30);
}

TEST_F(BusOverlap, OverlapWithPreviousButNotNextIsRejected) {
    bus.insert(std::make_shared<RecordingDevice>(), 0x200, 0x10);
    // Starts inside [0x100, 0x110), ends well before 0x200.
    EXPECT_THROW(bus.insert(std::make_shared<RecordingDevice>(), 0x10c, 0x20), base::Error);
    // Fits in the gap exactly.
    EXPECT_NO_THROW(bus.insert(std::make_shared<RecordingDevice>(), 0x110, 0xf0));
}

TEST(Bus, DispatchesReadsAndWritesWithRangeRelativeOffset) {
    vmm::Bus bus("pio");
    auto serial = std::make_shared<RecordingDevice>(0x40);
    auto other = std::make_shared<RecordingDevice>(0x80);
    bus.insert(serial, 0x3f8, 8);
    bus.insert(other, 0x60, 5);

    std::array<std::uint8_t, 2> data{};
    EXPECT_TRUE(bus.read(0x3fd, data));
    EXPECT_THAT(data, ElementsAre(0x45, 0x46));
    ASSERT_EQ(serial->reads.size(), 1u);
    EXPECT_EQ(serial->reads[0].offset, 5u);
    EXPECT_EQ(serial->reads[0].bytes.size(), 2u);

    const std::array<std::uint8_t, 1> byte{0xfe};
    EXPECT_TRUE(bus.write(0x64, byte));
    ASSERT_EQ(other->writes.size(), 1u);
    EXPECT_EQ(other->writes[0].offset, 4u);
    EXPECT_THAT(other->writes[0].bytes, ElementsAre(0xfe));

    EXPECT_TRUE(serial->writes.empty());
    EXPECT_TRUE(other->reads.empty());
}

TEST(Bus, AccessFillingTheRangeToItsLastByteIsClaimed) {
    vmm::Bus bus("mmio");
    auto device = std::make_shared<RecordingDevice>();
    bus.insert(device, 0x1000, 0x10);
    std::array<std::uint8_t, 8> data{};
    EXPECT_TRUE(bus.read(0x1008, data));
    std::array<std::uint8_t, 1> byte{};
    EXPECT_TRUE(bus.read(0x100f, byte));
    EXPECT_TRUE(bus.write(0x100f, byte));
    ASSERT_EQ(device->reads.size(), 2u);
    EXPECT_EQ(device->reads[0].offset, 8u);
    EXPECT_EQ(device->reads[1].offset, 15u);
    ASSERT_EQ(device->writes.size(), 1u);
    EXPECT_EQ(device->writes[0].offset, 15u);
}

TEST(Bus, UnclaimedReadsReturnAllOnesAndTouchNoDevice) {
    vmm::Bus bus("pio");
    auto a = std::make_shared<RecordingDevice>();
    auto b = std::make_shared<RecordingDevice>();
    bus.insert(a, 0x100, 0x10);
    bus.insert(b, 0x200, 0x10);
    for (std::uint64_t address : {std::uint64_t{0}, std::uint64_t{0xff}, std::uint64_t{0x110},
                                  std::uint64_t{0x1ff}, std::uint64_t{0x210}, kMax}) {
        SCOPED_TRACE(address);
        std::array<std::uint8_t, 4> data{1, 2, 3, 4};
        EXPECT_FALSE(bus.read(address, data));
        EXPECT_THAT(data, Each(0xff));
        const std::array<std::uint8_t, 4> out{1, 2, 3, 4};
        EXPECT_FALSE(bus.write(address, out));
    }
    EXPECT_TRUE(a->reads.empty());
    EXPECT_TRUE(a->writes.empty());
    EXPECT_TRUE(b->reads.empty());
    EXPECT_TRUE(b->writes.empty());
}

TEST(Bus, EmptyBusClaimsNothing) {
    vmm::Bus bus("pio");
    std::array<std::uint8_t, 8> data{};
    EXPECT_FALSE(bus.read(0, data));
    EXPECT_THAT(data, Each(0xff));
    EXPECT_FALSE(bus.write(0, data));
    EXPECT_FALSE(bus.remove(0));
}

TEST(Bus, AccessStraddlingTheEndOfARangeIsUnclaimed) {
    vmm::Bus bus("mmio");
    auto device = std::make_shared<RecordingDevice>();
    auto next = std::make_shared<RecordingDevice>();
    bus.insert(device, 0x1000, 0x10);
    bus.insert(next, 0x1010, 0x10);  // adjacent: a straddle must not be split
    std::array<std::uint8_t, 4> data{};
    EXPECT_FALSE(bus.read(0x100e, data));
    EXPECT_THAT(data, Each(0xff));
    EXPECT_FALSE(bus.write(0x100e, data));
    std::array<std::uint8_t, 8> wide{};
    EXPECT_FALSE(bus.read(0x1009, wide));
    EXPECT_TRUE(device->reads.empty());
    EXPECT_TRUE(device->writes.empty());
    EXPECT_TRUE(next->reads.empty());
    EXPECT_TRUE(next->writes.empty());
}

TEST(Bus, AccessStartingBeforeARangeIsUnclaimed) {
    vmm::Bus bus("mmio");
    auto device = std::make_shared<RecordingDevice>();
    bus.insert(device, 0x1000, 0x10);
    std::array<std::uint8_t, 4> data{};
    EXPECT_FALSE(bus.read(0xffe, data));
    EXPECT_TRUE(device->reads.empty());
}

TEST(Bus, RemoveOnlyByExactBase) {
    vmm::Bus bus("pio");
    auto device = std::make_shared<RecordingDevice>();
    bus.insert(device, 0x100, 0x10);
    EXPECT_FALSE(bus.remove(0x101));  // inside, but not the base
    EXPECT_FALSE(bus.remove(0xff));
    std::array<std::uint8_t, 1> byte{};
    EXPECT_TRUE(bus.read(0x100, byte));

    EXPECT_TRUE(bus.remove(0x100));
    EXPECT_FALSE(bus.remove(0x100));
    EXPECT_FALSE(bus.read(0x100, byte));
    EXPECT_EQ(byte[0], 0xff);
    EXPECT_FALSE(bus.write(0x105, byte));
    EXPECT_EQ(device->reads.size(), 1u);
}

TEST(Bus, RemoveReleasesTheBusReference) {
    vmm::Bus bus("pio");
    auto device = std::make_shared<RecordingDevice>();
    std::weak_ptr<RecordingDevice> weak = device;
    bus.insert(std::move(device), 0x100, 0x10);
    EXPECT_FALSE(weak.expired());
    ASSERT_TRUE(bus.remove(0x100));
    EXPECT_TRUE(weak.expired());
}

TEST(Bus, RangeCanBeReusedAfterRemoval) {
    vmm::Bus bus("pio");
    auto first = std::make_shared<RecordingDevice>(0x10);
    auto second = std::make_shared<RecordingDevice>(0x50);
    bus.insert(first, 0x100, 0x10);
    ASSERT_TRUE(bus.remove(0x100));
    bus.insert(second, 0x108, 0x10);  // overlaps the removed range
    std::array<std::uint8_t, 1> byte{};
    EXPECT_FALSE(bus.read(0x100, byte));
    ASSERT_TRUE(bus.read(0x108, byte));
    EXPECT_EQ(byte[0], 0x50);
    EXPECT_TRUE(first->reads.empty());
}

// A device that removes itself from the bus from inside its own read(), as a
// vCPU's BAR write might while another vCPU is mid-access. It is owned only by
// the bus, so without the bus's in-flight reference it would be destroyed by
// the remove() and the rest of read() would touch freed memory.
class SelfRemovingDevice : public vmm::BusDevice,
                           public std::enable_shared_from_this<SelfRemovingDevice> {
  public:
    struct Observations {
        bool removed = false;
        bool alive_after_remove = false;
        bool canary_intact = false;
        bool destroyed = false;
        bool destroyed_during_read = false;
    };

    SelfRemovingDevice(vmm::Bus& bus, std::uint64_t base, Observations& seen)
        : bus_(bus), base_(base), seen_(seen) {}
    ~SelfRemovingDevice() override {
        canary_ = 0;
        seen_.destroyed = true;
    }

    void read(std::uint64_t, std::span<std::uint8_t> data) override {
        seen_.removed = bus_.remove(base_);
        seen_.destroyed_during_read = seen_.destroyed;
        seen_.alive_after_remove = !weak_from_this().expired();
        seen_.canary_intact = canary_ == kCanary;
        std::fill(data.begin(), data.end(), static_cast<std::uint8_t>(canary_));
    }
    void write(std::uint64_t, std::span<const std::uint8_t>) override {}

  private:
    static constexpr std::uint64_t kCanary = 0x5a5a5a5a5a5a5a5a;
    vmm::Bus& bus_;
    std::uint64_t base_;
    Observations& seen_;
    std::uint64_t canary_ = kCanary;
};

TEST(Bus, DeviceStaysAliveWhenItRemovesItselfDuringDispatch) {
    vmm::Bus bus("mmio");
    SelfRemovingDevice::Observations seen;
    bus.insert(std::make_shared<SelfRemovingDevice>(bus, 0x2000, seen), 0x2000, 0x100);

    std::array<std::uint8_t, 4> data{};
    EXPECT_TRUE(bus.read(0x2010, data));
    EXPECT_TRUE(seen.removed);
    EXPECT_FALSE(seen.destroyed_during_read);
    EXPECT_TRUE(seen.alive_after_remove);
    EXPECT_TRUE(seen.canary_intact);
    EXPECT_THAT(data, Each(0x5a));
    // The in-flight reference was the last one: the device is gone now.
    EXPECT_TRUE(seen.destroyed);
    EXPECT_FALSE(bus.read(0x2010, data));
}

// A BAR move from inside a dispatch: remove and re-insert elsewhere.
class MovingDevice : public vmm::BusDevice, public std::enable_shared_from_this<MovingDevice> {
  public:
    explicit MovingDevice(vmm::Bus& bus) : bus_(bus) {}
    void read(std::uint64_t offset, std::span<std::uint8_t> data) override {
        std::fill(data.begin(), data.end(), static_cast<std::uint8_t>(offset));
    }
    void write(std::uint64_t, std::span<const std::uint8_t> data) override {
        std::uint64_t new_base = 0;
        std::memcpy(&new_base, data.data(), std::min(data.size(), sizeof(new_base)));
        ASSERT_TRUE(bus_.remove(base_));
        bus_.insert(shared_from_this(), new_base, 0x1000);
        base_ = new_base;
    }
    std::uint64_t base_ = 0;

  private:
    vmm::Bus& bus_;
};

TEST(Bus, DeviceCanMoveItsOwnRangeDuringDispatch) {
    vmm::Bus bus("mmio");
    auto device = std::make_shared<MovingDevice>(bus);
    device->base_ = 0x10000;
    bus.insert(device, 0x10000, 0x1000);

    const std::uint64_t new_base = 0x40000;
    std::array<std::uint8_t, 8> value{};
    std::memcpy(value.data(), &new_base, sizeof(new_base));
    EXPECT_TRUE(bus.write(0x10000, value));

    std::array<std::uint8_t, 1> byte{};
    EXPECT_FALSE(bus.read(0x10004, byte));
    ASSERT_TRUE(bus.read(0x40004, byte));
    EXPECT_EQ(byte[0], 4);
}

// Many readers dispatch while mutators insert and remove overlapping ranges.
// Every device checks that it is alive and that each offset it receives lies
// inside its own range; run under ASan this also catches use-after-free.
class StressDevice : public vmm::BusDevice {
  public:
    StressDevice(std::uint32_t id, std::uint64_t size, std::atomic<std::uint64_t>& accesses,
                 std::atomic<std::uint64_t>& errors)
        : id_(id), size_(size), accesses_(accesses), errors_(errors) {}
    ~StressDevice() override { canary_ = 0; }

    void read(std::uint64_t offset, std::span<std::uint8_t> data) override {
        check(offset, data.size());
        // Answer with (id, offset) so the reader can check the routing.
        const std::uint32_t answer[2] = {id_, static_cast<std::uint32_t>(offset)};
        std::memcpy(data.data(), answer, std::min(data.size(), sizeof(answer)));
    }
    void write(std::uint64_t offset, std::span<const std::uint8_t> data) override {
        check(offset, data.size());
    }

  private:
    void check(std::uint64_t offset, std::size_t length) {
        accesses_.fetch_add(1, std::memory_order_relaxed);
        if (canary_ != kCanary || offset >= size_ || length > size_ - offset) {
            errors_.fetch_add(1, std::memory_order_relaxed);
        }
    }

    static constexpr std::uint64_t kCanary = 0xc0ffee;
    std::uint32_t id_;
    std::uint64_t size_;
    std::atomic<std::uint64_t>& accesses_;
    std::atomic<std::uint64_t>& errors_;
    volatile std::uint64_t canary_ = kCanary;
};

TEST(Bus, ConcurrentInsertRemoveAndDispatchStayConsistent) {
    vmm::Bus bus("mmio");
    constexpr std::uint64_t kWindow = 0x800;
    constexpr int kReaders = 3;
    constexpr int kMutators = 2;
    constexpr int kMutations = 20000;

    std::atomic<std::uint64_t> device_accesses{0};
    std::atomic<std::uint64_t> device_errors{0};
    std::atomic<std::uint64_t> claimed{0};
    std::atomic<std::uint64_t> routing_errors{0};
    std::atomic<bool> done{false};

    struct Placed {
        std::uint32_t id;
        std::uint64_t base;
        std::uint64_t size;
    };
    std::vector<std::vector<Placed>> survivors(kMutators);

    std::vector<std::thread> threads;
    for (int r = 0; r < kReaders; ++r) {
        threads.emplace_back([&, r] {
            std::mt19937_64 random(1000 + r);
            while (!done.load(std::memory_order_acquire)) {
                const std::uint64_t address = random() % (kWindow + 16);
                const std::size_t length = std::size_t{1} << (random() % 4);  // 1, 2, 4, 8
                std::array<std::uint8_t, 8> data{};
                std::span<std::uint8_t> access(data.data(), length);
                if (random() % 4 == 0) {
                    if (bus.write(address, access)) claimed.fetch_add(1, std::memory_order_relaxed);
                    continue;
                }
                if (bus.read(address, access)) {
                    claimed.fetch_add(1, std::memory_order_relaxed);
                    if (length == 8) {
                        std::uint32_t answer[2];
                        std::memcpy(answer, data.data(), sizeof(answer));
                        if (answer[0] == 0) routing_errors.fetch_add(1);  // ids start at 1
                    }
                } else if (!std::all_of(access.begin(), access.end(),
                                        [](std::uint8_t b) { return b == 0xff; })) {
                    routing_errors.fetch_add(1);
                }
            }
        });
    }
    for (int m = 0; m < kMutators; ++m) {
        threads.emplace_back([&, m] {
            std::mt19937_64 random(m);
            std::vector<Placed>& mine = survivors[m];
            std::uint32_t next_id = static_cast<std::uint32_t>(m + 1);
            for (int i = 0; i < kMutations; ++i) {
                if (!mine.empty() && random() % 2 == 0) {
                    const std::size_t victim = random() % mine.size();
                    if (!bus.remove(mine[victim].base)) routing_errors.fetch_add(1);
                    mine.erase(mine.begin() + static_cast<std::ptrdiff_t>(victim));
                    continue;
                }
                const std::uint64_t base = random() % kWindow;
                const std::uint64_t size = 1 + random() % 64;
                const std::uint32_t id = next_id;
                next_id += kMutators;
                try {
                    bus.insert(
                        std::make_shared<StressDevice>(id, size, device_accesses, device_errors),
                        base, size);
                    mine.push_back({id, base, size});
                } catch (const base::Error&) {
                    // Overlaps someone else's range: expected and frequent.
                }
            }
        });
    }
    for (int i = kReaders; i < kReaders + kMutators; ++i)
        threads[static_cast<std::size_t>(i)].join();
    done.store(true, std::memory_order_release);
    for (int i = 0; i < kReaders; ++i) threads[static_cast<std::size_t>(i)].join();

    EXPECT_EQ(device_errors.load(), 0u);
    EXPECT_EQ(routing_errors.load(), 0u);
    EXPECT_EQ(claimed.load(), device_accesses.load());
    EXPECT_GT(claimed.load(), 0u);

    // No two concurrent inserts may both have won an overlapping range: every
    // byte of every surviving range must reach exactly its own device.
    std::size_t survivor_count = 0;
    for (const auto& mine : survivors) {
        for (const Placed& placed : mine) {
            ++survivor_count;
            for (std::uint64_t offset = 0; offset < placed.size; ++offset) {
                std::array<std::uint8_t, 1> byte{};
                std::array<std::uint8_t, 8> wide{};
                ASSERT_TRUE(bus.read(placed.base + offset, byte));
                ASSERT_EQ(byte[0], static_cast<std::uint8_t>(placed.id));
                if (offset + 8 <= placed.size) {
                    ASSERT_TRUE(bus.read(placed.base + offset, wide));
                    std::uint32_t answer[2];
                    std::memcpy(answer, wide.data(), sizeof(answer));
                    ASSERT_EQ(answer[0], placed.id);
                    ASSERT_EQ(answer[1], offset);
                }
            }
        }
    }
    EXPECT_GT(survivor_count, 0u);
    for (const auto& mine : survivors) {
        for (const Placed& placed : mine) EXPECT_TRUE(bus.remove(placed.base));
    }
    std::array<std::uint8_t, 1> byte{};
    for (std::uint64_t address = 0; address < kWindow + 64; ++address) {
        ASSERT_FALSE(bus.read(address, byte)) << address;
    }
}

}  // namespace
