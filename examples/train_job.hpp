#pragma once
// What one rank of train_llama does once the flags are read: build the model with the attention
// and precision policies the flags name, train it under the parallel policy, and report.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <string>
#include <type_traits>
#include <vector>

#include "cli.hpp"
#include "model_choice.hpp"
#include "precision_report.hpp"
#include "slm/cpu/fp8_linear.hpp"
#include "slm/data/loader.hpp"
#include "slm/data/rank_data.hpp"
#include "slm/names.hpp"
#include "slm/slm.hpp"
#include "slm/train/memory_estimate.hpp"
#include "slm/train/trainer.hpp"
#if defined(__CUDACC__)
#include "slm/cuda/attention.cuh"
#include "slm/cuda/backend.cuh"
#include "slm/cuda/fp8_linear.cuh"
#endif

namespace train_job {

namespace fs = std::filesystem;
// What every rank trains, once the flags are read.
struct Job {
    const slm::cli::Flags& flags;
    slm::ModelConfig model;
    slm::RunConfig run;
    std::vector<fs::path> shards;
    std::string attention;
    std::string precision;
    fs::path init_from;
};

template <class Backend, class Attention, class Precision, class Policy>
int train(const Job& job, Policy policy) {
    using Model = typename slm::Llama<Backend, Attention>::template with_precision<Precision>;
    const slm::ModelConfig& model = job.model;
    const slm::RunConfig& run = job.run;
    const int rank = policy.rank(), world = policy.world_size();
    const bool lead = rank == 0;  // alone prints, and writes metrics and checkpoints
    slm::data::Loader loader(job.shards, {run.batch, run.seq, run.seed, rank, world, 0.05});
    if (loader.vocab() > model.vocab)
        throw slm::Error("the data's vocabulary (" + std::to_string(loader.vocab()) +
                         ") is larger than model " + model.name + "'s (" +
                         std::to_string(model.vocab) + "): prepare text with --vocab " +
                         std::to_string(model.vocab) + " or less, or train a model whose vocab_size "
                         "covers it (--model config.json)");
    slm::data::RankData data(loader);
    slm::Trainer<Model, Policy> trainer(model, run, std::move(policy));
    const auto estimate = slm::estimate_memory<Model>(model, run.batch, run.seq, run.recompute);
    if (lead)
        std::fprintf(stderr,
                     "model %s: %.2fM parameters, %.1f MFLOP/token, attention %s, precision %s, device %s\n"
                     "run: batch %lld x seq %lld x accum %lld x %d rank(s) = %lld tokens/step "
                     "(global batch %lld), %lld steps, parallel %s, recompute %s; memory estimate %s%s\n"
                     "data: %lld training tokens, %lld validation tokens, vocab %lld\n",
                     model.name.c_str(), static_cast<double>(slm::parameter_count(model)) / 1e6,
                     slm::flops_per_token(model, run.seq) / 1e6, std::string(Attention::name).c_str(),
                     std::string(Precision::name).c_str(), Backend::name, (long long)run.batch, (long long)run.seq,
                     (long long)run.grad_accum, world,
                     (long long)(run.tokens_per_step() * world),
                     (long long)(run.batch * world * run.grad_accum), (long long)run.steps,
                     std::string(Policy::name).c_str(), slm::recompute_name(run.recompute),
                     slm::format_gib(estimate.total()).c_str(),
                     world > 1 ? " per rank, before sharding" : "",
                     (long long)loader.train_tokens(), (long long)loader.validation_tokens(),
                     (long long)loader.vocab());
    if constexpr (requires(Backend& b) { b.gemm().choices(); }) {
        // Not when the trainer dropped the file's picks (made on another GPU) and said so.
        const bool replay = !trainer.backend().gemm().replay_source().empty();
        const std::string timed = run.backend.gemm_candidates > 1
                                      ? std::to_string(run.backend.gemm_candidates) + " candidates timed"
                                      : "the heuristic's first";
        if (lead && replay)
            std::fprintf(stderr, "gemm: algorithm picks replayed from %s (a shape not there: %s), "
                                 "picks kept in %s\n",
                         run.backend.gemm_choices_read.c_str(), timed.c_str(), run.backend.gemm_choices_write.c_str());
        else if (lead && run.backend.gemm_candidates > 1)
            std::fprintf(stderr, "gemm: %s per GEMM shape, picks kept in %s\n", timed.c_str(),
                         run.backend.gemm_choices_write.c_str());
    }
    double start_loss = NAN;
    if (job.flags.on("--resume")) {
        const auto from = trainer.resume_latest(data);
        if (lead)
            std::fprintf(stderr, "resumed from %s at step %lld\n", from.c_str(),
                         (long long)trainer.step());
        if (trainer.step() >= run.steps) {
            if (lead)
                std::printf("the run in %s is finished: it is at step %lld of --steps %lld; give a "
                            "larger --steps to train it further\n",
                            run.out_dir.c_str(), (long long)trainer.step(), (long long)run.steps);
            return 0;
        }
    } else {
        if (!job.init_from.empty()) {
            trainer.model().set_parameters(
                slm::cli::initial_weights<typename slm::Trainer<Model, Policy>::Master>(job.init_from, model).data());
            if (lead) std::fprintf(stderr, "init: weights from %s\n", job.init_from.c_str());
        }
        start_loss = trainer.evaluate(data);
    }
    // Its settings beside its outputs (resume accepted): --config RUN/config.toml repeats the run.
    if (lead) job.flags.write_config(run.out_dir / "config.toml", {"--resume", "--overwrite", "--list-names"});
    const double end_loss = trainer.fit(data);
    if (!lead) return 0;
    if (std::isfinite(start_loss))
        std::printf("validation loss: %.4f at start (ln vocab = %.4f) -> %.4f after %lld steps\n",
                    start_loss, std::log(static_cast<double>(model.vocab)), end_loss,
                    (long long)run.steps);
    else
        std::printf("validation loss: %.4f after %lld steps\n", end_loss, (long long)run.steps);
    std::printf("checkpoint: %s\n", trainer.checkpoint_path().c_str());
    if constexpr (requires { trainer.model().linear().cast_report(); })
        precision_report::print_and_write(trainer.model().linear().cast_report(), run.out_dir / "fp8_casts.json");
    return 0;
}

template <class Backend, class Attention, class Policy>
int train_precision(const Job& job, Policy policy) {
    return slm::names::with_precision(job.precision, [&](auto tag) {
        using Precision = typename decltype(tag)::type;
        return train<Backend, Attention, Precision>(job, std::move(policy));
    });
}

template <class Backend, class Policy>
int train_attention(const Job& job, Policy policy) {
    return slm::names::with_attention(job.attention, [&](auto tag) {
        using Attention = typename decltype(tag)::type;
        if constexpr (std::is_same_v<Attention, slm::attention::FlashDeterministic> &&
                      std::is_same_v<Backend, slm::cpu::Backend<float>>) {
            // Not a second CPU model to compile: the CPU Flash repeats its bits already.
            if (policy.rank() == 0)
                std::fprintf(stderr, "attention flash_deterministic: on the CPU that is flash, "
                                     "which gives the same bits on every run\n");
            return train_precision<Backend, slm::attention::Flash>(job, std::move(policy));
        } else {
            return train_precision<Backend, Attention>(job, std::move(policy));
        }
    });
}


}  // namespace train_job
