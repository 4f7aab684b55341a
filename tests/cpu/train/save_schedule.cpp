// train::SaveSchedule: which steps save, and what a save that falls due during a write does.
#include <doctest/doctest.h>

#include <vector>

#include "slm/train/save_schedule.hpp"

using slm::SaveSchedule;
using slm::WhenBusy;

namespace {
// Steps 1..steps with a save due every `interval`; busy_until: the write started by a save at
// step s is in flight up to step s + write_steps (exclusive). Returns {step, due_step} per save.
std::vector<std::pair<int64_t, int64_t>> saves(WhenBusy policy, int64_t steps, int64_t interval,
                                               int64_t write_steps, int* busy_questions = nullptr) {
    SaveSchedule schedule(interval, policy);
    std::vector<std::pair<int64_t, int64_t>> out;
    int64_t written_at = -1000;
    for (int64_t step = 1; step <= steps; ++step) {
        const auto d = schedule.at(step, step == steps, false, [&] {
            if (busy_questions) ++*busy_questions;
            return step < written_at + write_steps;
        });
        if (d.save) {
            out.push_back({step, d.due_step});
            written_at = step;
        }
    }
    return out;
}
using Saves = std::vector<std::pair<int64_t, int64_t>>;
}  // namespace

TEST_CASE("save schedule: with writes shorter than the interval, every due step saves") {
    CHECK(saves(WhenBusy::defer, 12, 4, 3) == Saves{{4, 4}, {8, 8}, {12, 12}});
    CHECK(saves(WhenBusy::wait, 12, 4, 3) == Saves{{4, 4}, {8, 8}, {12, 12}});
}

TEST_CASE("save schedule: defer takes a save due during a write at the step that write ends") {
    // Saves due every 2 steps, each write lasting 5: due at 2 (saved), 4 (deferred: the write of
    // 2 runs to 7), saved at 7 naming 4; 8 and 10 fall due meanwhile; 12 is saved as pending 8.
    const Saves got = saves(WhenBusy::defer, 13, 2, 5);
    CHECK(got == Saves{{2, 2}, {7, 4}, {12, 8}, {13, 13}});
    // wait saves at every due step, whatever the writes take.
    CHECK(saves(WhenBusy::wait, 13, 2, 5) == Saves{{2, 2}, {4, 4}, {6, 6}, {8, 8}, {10, 10}, {12, 12}, {13, 13}});
}

TEST_CASE("save schedule: the last step always saves, naming a pending save's due step") {
    CHECK(saves(WhenBusy::defer, 5, 2, 10) == Saves{{2, 2}, {5, 4}});
    CHECK(saves(WhenBusy::defer, 3, 0, 10) == Saves{{3, 3}});
}

TEST_CASE("save schedule: busy is asked only when a save is due or pending, never under wait") {
    int asked = 0;
    saves(WhenBusy::defer, 12, 4, 1, &asked);
    CHECK(asked == 2);  // steps 4 and 8; the last step does not ask
    asked = 0;
    saves(WhenBusy::wait, 12, 4, 10, &asked);
    CHECK(asked == 0);
}

TEST_CASE("save schedule: a save due by time defers like one due by steps") {
    SaveSchedule s(0, WhenBusy::defer);
    bool busy = true;
    auto d = s.at(3, false, true, [&] { return busy; });
    CHECK(!d.save);
    CHECK(d.deferred_now);
    CHECK(s.pending() == 3);
    d = s.at(4, false, false, [&] { return busy; });
    CHECK(!d.save);
    CHECK(!d.deferred_now);
    busy = false;
    d = s.at(5, false, false, [&] { return busy; });
    CHECK(d.save);
    CHECK(d.due_step == 3);
    CHECK(s.pending() == -1);
}

TEST_CASE("save schedule: the busy policy by name") {
    CHECK(slm::when_busy_from_name("defer") == WhenBusy::defer);
    CHECK(slm::when_busy_from_name("wait") == WhenBusy::wait);
    CHECK_THROWS_WITH(slm::when_busy_from_name("later"), doctest::Contains("defer or wait"));
}
