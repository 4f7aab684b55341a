#pragma once
// train::CheckpointWriter<Master>: checkpoints written by a background thread while training
// goes on. The trainer copies the state once, between optimizer steps, into the writer's host
// snapshot (page-locked on the GPU, so the copy runs at bus speed); the thread then checksums
// it (XXH3), writes it atomically (temp file, fsync, rename) as a numbered checkpoint and points
// checkpoint.bin at it (RunDirectory::publish), pruning old ones.
//   - A new save waits only for the previous one (the snapshot is reused), and reports how long.
//   - A failed write is kept and thrown, naming the file, by the trainer's next call to
//     check() or wait(): the run stops with exit 1 at its next step; the previous checkpoint,
//     which publish() never removes before the new one is complete, stays loadable.
//   - The run's end waits for the last write (finish()); so does the destructor, silently.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdint>
#include <exception>
#include <filesystem>
#include <mutex>
#include <string>
#include <thread>
#include <utility>

#include "slm/core/config.hpp"
#include "slm/core/error.hpp"
#include "slm/core/host_block.hpp"
#include "slm/train/checkpoint.hpp"
#include "slm/train/run_directory.hpp"
#include "slm/train/shared_checkpoint.hpp"

namespace slm {

template <class Master>
class CheckpointWriter {
public:
    // What one save holds; the trainer fills params/m/v (n values each) between steps.
    struct Snapshot {
        ModelConfig config;
        std::string settings;
        CheckpointState state;
        Master* params = nullptr;
        Master* m = nullptr;
        Master* v = nullptr;  // params, m and v lie one after another (one host block)
        int64_t n = 0;
        uint64_t segment_bytes = default_segment_bytes;
        // A data-parallel rank's share instead (train/shared_checkpoint.hpp): `count` values
        // of the payload params|m|v from value `first` on, in `share`.
        Master* share = nullptr;
        int64_t first = 0, count = 0;
    };

    CheckpointWriter() = default;
    CheckpointWriter(const CheckpointWriter&) = delete;
    CheckpointWriter& operator=(const CheckpointWriter&) = delete;
    ~CheckpointWriter() {
        if (thread_.joinable()) thread_.join();
    }

    // The snapshot's host arrays, allocated on first use (by `backend`, page-locked where it
    // can) for n values each.
    template <class B>
    Snapshot& snapshot(B& backend, int64_t n) {
        wait();
        if (n != snap_.n || snap_.share) {
            block_ = host_block(backend, 3 * static_cast<size_t>(n) * sizeof(Master));
            auto* base = reinterpret_cast<Master*>(block_.get());
            snap_.params = base;
            snap_.m = base + n;
            snap_.v = base + 2 * n;
            snap_.n = n;
            snap_.share = nullptr;
        }
        return snap_;
    }
    // The same for a share of `count` values.
    template <class B>
    Snapshot& share_snapshot(B& backend, int64_t count) {
        wait();
        if (!snap_.share || count != snap_.count) {
            block_ = host_block(backend, static_cast<size_t>(count) * sizeof(Master));
            snap_.share = reinterpret_cast<Master*>(block_.get());
            snap_.params = snap_.m = snap_.v = nullptr;
            snap_.count = count;
        }
        return snap_;
    }

    // Writes the snapshot to `file` (numbered, in `dir`) on the background thread; then `dir`'s
    // pointer names it and all but the newest `keep` numbered files go.
    void start(RunDirectory& dir, const std::filesystem::path& file, int keep) {
        wait();
        done_ = false;  // before the thread starts: it may end before this thread goes on
        thread_ = std::thread([this, &dir, file, keep] {
            try {
                const auto begin = std::chrono::steady_clock::now();
                save_checkpoint(file, snap_.config, snap_.settings, snap_.state,
                                CheckpointPayload<Master>{snap_.params, snap_.n, snap_.segment_bytes});
                dir.publish(file, keep);
                const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count();
                const double gb = 3.0 * static_cast<double>(snap_.n) * sizeof(Master) / 1e9;
                std::fprintf(stderr, "step %6lld | checkpoint %s written in the background: %.1f GB in %.1f s\n",
                             (long long)snap_.state.step, file.c_str(), gb, s);
            } catch (...) {
                const std::lock_guard<std::mutex> guard(mutex_);
                error_ = std::current_exception();
            }
            done_ = true;
        });
    }

    // Writes this rank's share of the segments [first, last) of `plan` into `temp`, on the
    // background thread (train/shared_checkpoint.hpp).
    void start_share(const std::filesystem::path& temp, const CheckpointPlan& plan, uint64_t first, uint64_t last) {
        wait();
        done_ = false;
        thread_ = std::thread([this, temp, plan, first, last] {
            try {
                write_share(temp, plan, first, last, snap_.share, 4);
            } catch (...) {
                const std::lock_guard<std::mutex> guard(mutex_);
                error_ = std::current_exception();
            }
            done_ = true;
        });
    }

    // Whether the last write failed (not thrown yet).
    bool failed() {
        const std::lock_guard<std::mutex> guard(mutex_);
        return error_ != nullptr;
    }

    // Throws a failed background write's error (once), without waiting for one in flight.
    void check() {
        std::exception_ptr e;
        {
            const std::lock_guard<std::mutex> guard(mutex_);
            e = std::exchange(error_, nullptr);
        }
        if (e) {
            if (thread_.joinable()) thread_.join();
            rethrow(e);
        }
    }

    // Waits for the write in flight, if any; throws its failure. Returns the seconds waited.
    double wait() {
        const auto start = std::chrono::steady_clock::now();
        if (thread_.joinable()) thread_.join();
        check();
        return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    }
    bool busy() const { return thread_.joinable() && !done_; }
    // The step of the snapshot being (or last) written.
    int64_t writing_step() const { return snap_.state.step; }

private:
    static void rethrow(std::exception_ptr e) {
        try {
            std::rethrow_exception(e);
        } catch (const std::exception& x) {
            fail(std::string("the background checkpoint write failed, and the run stops: ") + x.what());
        }
    }

    Snapshot snap_;
    HostBlock block_{nullptr, [](std::byte*) {}};
    std::thread thread_;
    std::mutex mutex_;
    std::exception_ptr error_;
    std::atomic<bool> done_{true};
};

}  // namespace slm
