#pragma once
// Per-op wall-clock timing for the CPU backend (ops run synchronously, so a steady clock around
// each one is exact). Off by default; costs one branch per op when off.
#include <chrono>

#include "slm/core/op_profile.hpp"

namespace slm::cpu {

class OpTimer {
public:
    class Scope {
    public:
        Scope(OpTimer* t, Op op) : timer_(t && t->enabled_ ? t : nullptr), op_(op) {
            if (timer_) start_ = std::chrono::steady_clock::now();
        }
        ~Scope() {
            if (timer_)
                timer_->seconds_[static_cast<size_t>(op_)] +=
                    std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
        }
        Scope(const Scope&) = delete;
        Scope& operator=(const Scope&) = delete;

    private:
        OpTimer* timer_;
        Op op_;
        std::chrono::steady_clock::time_point start_;
    };

    Scope scope(Op op) { return Scope(this, op); }
    void enable(bool on) { enabled_ = on; }
    bool enabled() const { return enabled_; }
    // Op seconds since the last collect(); resets them.
    std::array<double, op_count> collect() {
        auto s = seconds_;
        seconds_ = {};
        return s;
    }

private:
    bool enabled_ = false;
    std::array<double, op_count> seconds_{};
};

}  // namespace slm::cpu
