// train_llama: the main job. Trains a LLaMA preset on token shards made by prepare_data, with
// progress lines, periodic validation, checkpoints and exact resume.
//
//   train_llama --preset tiny --data data/kjv --out runs/tiny --steps 300
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "cli.hpp"
#include "device_choice.hpp"
#include "slm/data/find_shards.hpp"
#include "slm/core/config_io.hpp"
#include "slm/data/loader.hpp"
#include "slm/parallel/launch.hpp"
#include "slm/slm.hpp"
#include "slm/train/memory_estimate.hpp"
#include "slm/train/trainer.hpp"
#if defined(__CUDACC__)  // built by nvcc when the CUDA toolkit is there: the GPU backend too
#include <cuda_runtime.h>

#include "slm/attention/cuda/flash.cuh"
#include "slm/attention/cuda/naive.cuh"
#include "slm/cuda/backend.cuh"
#endif

namespace fs = std::filesystem;

namespace {

slm::cli::Flags make_flags() {
    return slm::cli::Flags(
        "train_llama", "train a small LLaMA on token shards (prepare_data makes them)",
        {{"--preset", "tiny", "model: tiny, llama_100m, llama_500m, llama_1b, llama_2b"},
         {"--attention", "flash", "attention policy: naive|flash"},
         {"--device", "auto", "auto|cpu|cuda"},
         {"--data", "data/kjv", "directory with tokens*.bin from prepare_data"},
         {"--out", "", "run directory for metrics.jsonl and checkpoint.bin (default runs/<preset>)"},
         {"--resume", "false", "continue from <out>/checkpoint.bin", true},
         {"--batch", "16", "sequences per micro-batch"},
         {"--seq", "", "tokens per sequence (default: the preset's max_seq)"},
         {"--grad-accum", "1", "micro-batches per optimizer step"},
         {"--steps", "120", "optimizer steps"},
         {"--lr", "3e-3", "peak learning rate"},
         {"--min-lr", "", "final learning rate of the cosine (default lr/10)"},
         {"--warmup", "12", "linear warmup steps"},
         {"--weight-decay", "0.1", "AdamW decoupled weight decay on matrices"},
         {"--clip", "1.0", "global gradient-norm clipping (0: off)"},
         {"--log-interval", "10", "steps between progress lines"},
         {"--eval-interval", "40", "steps between validation losses (0: start and end only)"},
         {"--eval-batches", "8", "validation batches per evaluation"},
         {"--checkpoint-interval", "40", "steps between checkpoints (0: end only)"},
         {"--profile", "0", "time this many steps op by op after the first, and print where the time goes"},
         {"--seed", "1234", "seed for initialisation and data order"}});
}

template <class Backend, class Attention>
int train(const slm::cli::Flags& f, const slm::ModelConfig& model, const slm::RunConfig& run,
          slm::data::Loader& loader) {
    slm::Trainer<slm::Llama<Backend, Attention>> trainer(model, run);
    const auto estimate = slm::estimate_memory<slm::Llama<Backend, Attention>>(model, run.batch, run.seq);
    std::fprintf(stderr,
                 "model %s: %.2fM parameters, %.1f MFLOP/token, attention %s, device %s\n"
                 "run: batch %lld x seq %lld x accum %lld = %lld tokens/step, %lld steps; "
                 "memory estimate %s\n"
                 "data: %lld training tokens, %lld validation tokens, vocab %lld\n",
                 model.name.c_str(), static_cast<double>(slm::parameter_count(model)) / 1e6,
                 slm::flops_per_token(model, run.seq) / 1e6, std::string(Attention::name).c_str(),
                 Backend::name,
                 (long long)run.batch, (long long)run.seq, (long long)run.grad_accum,
                 (long long)run.tokens_per_step(), (long long)run.steps,
                 slm::format_gib(estimate.total()).c_str(), (long long)loader.train_tokens(),
                 (long long)loader.validation_tokens(), (long long)loader.vocab());
    double start_loss = NAN;
    if (f.on("--resume")) {
        trainer.resume(trainer.checkpoint_path(), loader);
        std::fprintf(stderr, "resumed from %s at step %lld\n",
                     trainer.checkpoint_path().c_str(), (long long)trainer.step());
    } else {
        start_loss = trainer.evaluate(loader);
    }
    const double end_loss = trainer.fit(loader);
    if (std::isfinite(start_loss))
        std::printf("validation loss: %.4f at start (ln vocab = %.4f) -> %.4f after %lld steps\n",
                    start_loss, std::log(static_cast<double>(model.vocab)), end_loss,
                    (long long)run.steps);
    else
        std::printf("validation loss: %.4f after %lld steps\n", end_loss, (long long)run.steps);
    std::printf("checkpoint: %s\n", trainer.checkpoint_path().c_str());
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    auto flags = make_flags();
    try {
        if (!flags.parse(argc, argv)) return 0;
        // Started by mpirun, srun or a torchrun-style launcher? Inconsistent launcher variables
        // are an error here rather than a silent single-process run.
        const slm::parallel::LaunchInfo launch = slm::parallel::from_environment();
        if (!launch.alone())
            throw slm::Error(
                "started as rank " + std::to_string(launch.rank) + " of " +
                std::to_string(launch.world_size) + " by " +
                std::string(slm::parallel::launcher_name(launch.launcher)) +
                ", but train_llama does not train data-parallel yet: every rank would train "
                "the same model alone into the same --out. Start one process (README: "
                "\"Data-parallel launch\" says what exists)");
        const std::string preset = flags.text("--preset");
        const std::string device = flags.choice("--device", {"auto", "cpu", "cuda"});
        if (device == "cuda" && !slm::cli::built_with_cuda())
            throw slm::cli::UsageError(
                "--device cuda: this build of train_llama has no CUDA backend (build with the "
                "cuda preset on a machine with nvcc), or use --device cpu");
        if (device == "cuda" && !slm::cli::gpu_present())
            throw slm::cli::UsageError("--device cuda: no GPU is visible (check nvidia-smi and "
                                       "CUDA_VISIBLE_DEVICES), or use --device cpu");
        const bool on_gpu = device == "cuda" || (device == "auto" && slm::cli::gpu_present());
        const std::string attention = flags.choice("--attention", {"naive", "flash"});
        slm::ModelConfig model;
        try {
            model = slm::presets::by_name(preset);
        } catch (const slm::Error& e) {
            throw slm::cli::UsageError(std::string("--preset: ") + e.what());
        }
        slm::RunConfig run;
        run.batch = flags.integer("--batch", 1);
        run.seq = flags.given("--seq") ? flags.integer("--seq", 1) : model.max_seq;
        if (run.seq > model.max_seq)
            throw slm::cli::UsageError("--seq " + std::to_string(run.seq) +
                                       " is longer than preset " + preset + "'s max_seq " +
                                       std::to_string(model.max_seq));
        run.grad_accum = flags.integer("--grad-accum", 1);
        run.steps = flags.integer("--steps", 1);
        run.lr = flags.real("--lr");
        run.min_lr = flags.given("--min-lr") ? flags.real("--min-lr") : run.lr / 10;
        if (!(run.lr > 0) || run.min_lr < 0 || run.min_lr > run.lr)
            throw slm::cli::UsageError("need --lr > 0 and 0 <= --min-lr <= --lr");
        run.warmup = flags.integer("--warmup", 0);
        run.adamw.weight_decay = flags.real("--weight-decay");
        run.adamw.max_grad_norm = flags.real("--clip");
        run.log_interval = flags.integer("--log-interval", 1);
        run.eval_interval = flags.integer("--eval-interval", 0);
        run.eval_batches = flags.integer("--eval-batches", 1);
        run.checkpoint_interval = flags.integer("--checkpoint-interval", 0);
        run.seed = static_cast<uint64_t>(flags.integer("--seed", 0));
        run.profile_steps = flags.integer("--profile", 0);
        run.out_dir = flags.given("--out") ? fs::path(flags.text("--out")) : fs::path("runs") / preset;
        if (flags.on("--resume") && !fs::exists(run.out_dir / "checkpoint.bin"))
            throw slm::cli::UsageError("--resume: there is no " +
                                       (run.out_dir / "checkpoint.bin").string() +
                                       " to resume from (check --out)");

        slm::data::Loader loader(slm::data::find_shards(flags.text("--data")),
                                 {run.batch, run.seq, run.seed, 0, 1, 0.05});
        if (loader.vocab() > model.vocab)
            throw slm::Error("the data's vocabulary (" + std::to_string(loader.vocab()) +
                             ") is larger than preset " + preset + "'s (" +
                             std::to_string(model.vocab) +
                             "); prepare the data with --vocab " + std::to_string(model.vocab) +
                             " or less");
#if defined(__CUDACC__)
        if (on_gpu)
            return attention == "naive"
                       ? train<slm::cuda::Backend, slm::attention::Naive>(flags, model, run, loader)
                       : train<slm::cuda::Backend, slm::attention::Flash>(flags, model, run, loader);
#endif
        using Cpu = slm::cpu::Backend<float>;
        return attention == "naive" ? train<Cpu, slm::attention::Naive>(flags, model, run, loader)
                                    : train<Cpu, slm::attention::Flash>(flags, model, run, loader);
    } catch (const slm::cli::UsageError& e) {
        std::fprintf(stderr, "train_llama: %s\n\n%s", e.what(), flags.usage().c_str());
        return 2;
    } catch (const slm::Error& e) {
        std::fprintf(stderr, "train_llama: error: %s\n", e.what());
        return 1;
    }
}
