#pragma once
// train::SaveSchedule: at which steps the trainer saves. A save falls due every
// checkpoint_interval steps, when checkpoint_minutes have passed since the last one, and at the
// run's last step. What happens when one falls due while the previous checkpoint is still being
// written in the background is the policy (RunConfig::when_busy):
//   - defer (the default): the save is put off, not waited for, and taken at the first step
//     after that write ends; the training loop never waits for the disk except at the run's end.
//     A 2B model's 24.8 GB take 20-30 s to write at ~1 GB/s while five steps take 2 s: waiting
//     would block each save for the whole write. Saves come as often as the disk allows, and
//     the message says so.
//   - wait: the save waits for the previous write and is taken at the step it fell due (every
//     checkpoint_interval steps exactly, for runs that study each one).
// The run's last step always saves, waiting for any write in flight.
// Every rank asks the same questions in the same order: `busy` may be a collective.
#include <cstdint>
#include <string>
#include <string_view>

#include "slm/core/error.hpp"

namespace slm {

enum class WhenBusy { defer, wait };

inline WhenBusy when_busy_from_name(std::string_view name) {
    if (name == "defer") return WhenBusy::defer;
    if (name == "wait") return WhenBusy::wait;
    fail("unknown checkpoint busy policy '" + std::string(name) + "' (defer or wait)");
}

class SaveSchedule {
public:
    struct Decision {
        bool save = false;
        int64_t due_step = -1;      // the step the save fell due at (== the step unless deferred)
        bool deferred_now = false;  // a save fell due at this step and was put off
    };

    SaveSchedule(int64_t interval, WhenBusy when_busy) : interval_(interval), when_busy_(when_busy) {}

    // After step `step`: whether to save now. `time_due`: checkpoint_minutes have passed.
    // `busy()`: whether the previous save is still being written (asked only when it matters).
    template <class Busy>
    Decision at(int64_t step, bool last, bool time_due, Busy&& busy) {
        const bool due = (interval_ > 0 && step % interval_ == 0) || last || time_due;
        if (!due && pending_ < 0) return {};
        const int64_t due_step = pending_ >= 0 ? pending_ : step;
        if (last || when_busy_ == WhenBusy::wait || !busy()) {
            pending_ = -1;
            return {true, due_step, false};
        }
        const bool now = pending_ < 0;
        if (now) pending_ = step;
        return {false, pending_, now};
    }

    // The step a deferred save fell due at, or -1.
    int64_t pending() const { return pending_; }

private:
    int64_t interval_;
    WhenBusy when_busy_;
    int64_t pending_ = -1;
};

}  // namespace slm
