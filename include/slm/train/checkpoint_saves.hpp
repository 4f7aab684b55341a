#pragma once
// train::CheckpointSaves<Master>: how the trainer's state becomes checkpoint files, in the
// background (train/checkpoint_writer.hpp), one of two ways:
//   - gathered: the state goes to rank 0's host snapshot (ZeRO ranks gather their shards; alone,
//     or with a policy that holds the whole state, rank 0 copies it), and rank 0's writer thread
//     writes the file, with several threads, and publishes it;
//   - shared: with several ranks that each hold the whole state (Ddp), every rank copies only
//     its share of the segments and writes it into one temporary file at once
//     (train/shared_checkpoint.hpp); rank 0 closes and publishes the file once every rank is
//     done, which the trainer asks between steps (poll).
// Either way the file is the same bytes for the same state: a run resumes at any world size.
// Every public call is made by every rank, in the same order (some are collectives).
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <string>

#include "slm/core/config.hpp"
#include "slm/parallel/policy.hpp"
#include "slm/train/checkpoint.hpp"
#include "slm/train/checkpoint_writer.hpp"
#include "slm/train/run_directory.hpp"
#include "slm/train/shared_checkpoint.hpp"

namespace slm {

template <class Master>
class CheckpointSaves {
public:
    // What a save records besides the arrays.
    struct Meta {
        ModelConfig config;
        std::string settings;
        CheckpointState state;
        uint64_t segment_bytes = default_segment_bytes;
    };

    // Before the steps: the host snapshot, so that no save's stall includes allocating it.
    // `shared`: this run writes shares (several ranks, each holding the whole state).
    template <class P, class B>
    void prepare(const P& parallel, B& backend, int64_t n, uint64_t segment_bytes, bool shared) {
        shared_ = shared;
        if (shared_) writer_.share_snapshot(backend, share_range(parallel, n, segment_bytes).count);
        else writer_.snapshot(backend, parallel.rank() == 0 ? n : 0);
    }

    // Collective: whether any rank still writes a checkpoint (a save due now is deferred).
    template <class P>
    bool busy(const P& parallel) {
        if (shared_) return pending_.has_value();
        return parallel.sum_across_ranks(parallel.rank() == 0 && writer_.busy() ? 1.0 : 0.0) > 0;
    }

    // Between steps: throws a failed write; with shares in flight, closes the file once every
    // rank is done (a collective).
    template <class P>
    void poll(const P& parallel, RunDirectory& dir, int keep) {
        if (!pending_) {
            writer_.check();
            return;
        }
        const double state = writer_.failed() ? 2.0 : writer_.busy() ? 1.0 : 0.0;
        const double all = parallel.sum_across_ranks(state >= 2 ? 1000.0 : state);
        writer_.check();  // this rank's own failure, with its message
        require(all < 1000, "another rank's checkpoint write failed, and the run stops (its message is in its log)");
        if (all == 0) finish_pending(parallel, dir, keep);
    }

    // Waits for every write in flight and closes a pending shared file. Returns the seconds
    // waited (on this rank).
    template <class P>
    double wait(const P& parallel, RunDirectory& dir, int keep) {
        const double waited = writer_.wait();
        if (pending_) {
            parallel.sum_across_ranks(0.0);  // every rank's share is written
            finish_pending(parallel, dir, keep);
        }
        return waited;
    }

    // Saves the state in the background as `file` (numbered, in dir; rank 0's dir is the open
    // run directory). `copy(whole_or_nullptr)` fills a gathered snapshot (a collective);
    // `copy_range(out, first, count)` copies values [first, first + count) of params|m|v.
    template <class P, class B, class Gather, class CopyRange>
    void save(const P& parallel, B& backend, const std::filesystem::path& file, RunDirectory& dir, int keep,
              const Meta& meta, int64_t n, Gather&& gather, CopyRange&& copy_range) {
        if (!shared_) {
            auto& snap = writer_.snapshot(backend, parallel.rank() == 0 ? n : 0);
            gather(parallel.rank() == 0 ? snap.params : nullptr);
            fill(snap, meta);
            if (parallel.rank() == 0) writer_.start(dir, file, keep);
            return;
        }
        wait(parallel, dir, keep);
        std::optional<checkpoint_detail::Header> header;
        if (parallel.rank() == 0) {
            header = checkpoint_detail::header(meta.config, meta.settings, meta.state, sizeof(Master), n,
                                               meta.segment_bytes);
            create_shared(shared_temp(file), *header);
        }
        // Collective: the others learn where the payload starts once rank 0 made the file.
        const auto offset = static_cast<uint64_t>(
            parallel.sum_across_ranks(header ? static_cast<double>(header->bytes.size()) : 0.0));
        const CheckpointPlan plan(offset, 3 * static_cast<uint64_t>(n), sizeof(Master), meta.segment_bytes);
        const auto range = share_range(parallel, n, meta.segment_bytes);
        auto& snap = writer_.share_snapshot(backend, range.count);
        copy_range(snap.share, range.first, range.count);
        fill(snap, meta);
        writer_.start_share(shared_temp(file), plan, range.segments.first, range.segments.second);
        pending_ = Pending{file, std::move(header)};
    }

    int64_t writing_step() const { return writer_.writing_step(); }
    bool shared() const { return shared_; }

private:
    struct Range {
        std::pair<uint64_t, uint64_t> segments;
        int64_t first = 0, count = 0;  // values of params|m|v
    };
    struct Pending {
        std::filesystem::path file;
        std::optional<checkpoint_detail::Header> header;  // rank 0's
    };

    template <class P>
    static Range share_range(const P& parallel, int64_t n, uint64_t segment_bytes) {
        // The plan's segments do not depend on where the payload starts.
        const CheckpointPlan plan(0, 3 * static_cast<uint64_t>(n), sizeof(Master), segment_bytes);
        Range r;
        r.segments = plan.share(parallel.rank(), parallel.world_size());
        const uint64_t per = plan.segment_bytes / sizeof(Master);
        const auto total = 3 * static_cast<uint64_t>(n);
        const uint64_t begin = std::min(total, r.segments.first * per), end = std::min(total, r.segments.second * per);
        r.first = static_cast<int64_t>(begin);
        r.count = static_cast<int64_t>(end - begin);
        return r;
    }

    // The arrays' size stays what snapshot() allocated (0 on a rank that gathers nothing).
    static void fill(typename CheckpointWriter<Master>::Snapshot& snap, const Meta& meta) {
        snap.config = meta.config;
        snap.settings = meta.settings;
        snap.state = meta.state;
        snap.segment_bytes = meta.segment_bytes;
    }

    template <class P>
    void finish_pending(const P& parallel, RunDirectory& dir, int keep) {
        const Pending p = std::move(*pending_);
        pending_.reset();
        if (parallel.rank() != 0) return;
        finish_shared(shared_temp(p.file), p.file, *p.header);
        dir.publish(p.file, keep);
        std::fprintf(stderr, "step %6lld | checkpoint %s written in the background by %d ranks\n",
                     (long long)writer_.writing_step(), p.file.c_str(), parallel.world_size());
    }

    bool shared_ = false;
    std::optional<Pending> pending_;
    CheckpointWriter<Master> writer_;  // last: its destructor waits for a write in flight
};

}  // namespace slm
